//! All of GitHub's REST API that openim-release uses, through octocrab's
//! typed builders and models: pull requests (list, create, update),
//! labels, requested reviewers. Retries transport failures, 5xx and rate
//! limits honouring `retry-after` / `x-ratelimit-reset` (read from the
//! headers octocrab keeps in its error); resolves 422 "already exists" by
//! finding the existing pull request. Counts calls and logs each one (at
//! debug: method, route, outcome, waits; at trace: rate-limit headers).

mod releases;

pub use releases::{ReleaseAction, ReleaseSpec};

use crate::secret::Secret;
use anyhow::{Context, Result};
use http::{HeaderMap, StatusCode};
use octocrab::models::pulls::PullRequest;
use octocrab::params::State;
use octocrab::Octocrab;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tracing::{debug, trace};

/// Attempts for one API call (5xx, rate limits).
const MAX_ATTEMPTS: u32 = 5;
/// Longest wait honoured from `retry-after` / `x-ratelimit-reset`.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// An answer from GitHub that is not a success.
#[derive(Debug, thiserror::Error)]
#[error("GitHub answered {method} {path} with HTTP {status}: {message}{hint}")]
pub struct GitHubError {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub message: String,
    pub hint: String,
}

pub struct GitHub {
    client: Octocrab,
    pub owner: String,
    pub repo: String,
    calls: AtomicUsize,
    min_wait: Duration,
}

/// What `ensure_pull_request` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrAction {
    Created,
    Updated,
    UpToDate,
}

/// How one typed call ended, after the retries.
enum Failure {
    /// GitHub answered with a status that is not a success.
    Answer(Box<octocrab::GitHubError>),
    /// No usable answer: transport, or a body octocrab could not read.
    Other(anyhow::Error),
}

impl GitHub {
    /// `api_url` like `https://api.github.com` (GITHUB_API_URL); `repository` `owner/name`.
    pub fn new(api_url: &str, token: &Secret, repository: &str) -> Result<GitHub> {
        let (owner, repo) = repository
            .split_once('/')
            .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
            .with_context(|| format!("deploy.repository `{repository}` is not owner/name"))?;
        let client = Octocrab::builder()
            .base_uri(api_url.trim_end_matches('/'))
            .with_context(|| format!("GitHub API URL `{api_url}`"))?
            .personal_token(token.expose().to_string())
            .build()
            .context("setting up the GitHub client")?;
        debug!(
            "API at {}, repository {owner}/{repo}",
            crate::secret::scrub(api_url, &[])
        );
        Ok(GitHub {
            client,
            owner: owner.to_string(),
            repo: repo.to_string(),
            calls: AtomicUsize::new(0),
            min_wait: Duration::from_millis(500),
        })
    }

    /// API calls made so far (each retry counts).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn repo_path(&self, rest: &str) -> String {
        format!("/repos/{}/{}/{rest}", self.owner, self.repo)
    }

    /// One typed API call with retries: `send` makes the request afresh for
    /// each attempt; `method` and `path` name it in the log and in errors.
    async fn call<T, F, Fut>(&self, method: &str, path: &str, send: F) -> Result<T, Failure>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = octocrab::Result<T>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.calls.fetch_add(1, Ordering::SeqCst);
            debug!("{method} {path} (attempt {attempt}/{MAX_ATTEMPTS})");
            let error = match send().await {
                Ok(answer) => {
                    debug!("{method} {path} -> success");
                    return Ok(answer);
                }
                Err(e) => e,
            };
            let answer = match error {
                octocrab::Error::GitHub { source, .. } => source,
                e @ (octocrab::Error::Json { .. } | octocrab::Error::Serde { .. }) => {
                    debug!("{method} {path}: unreadable answer: {e}");
                    return Err(Failure::Other(
                        anyhow::Error::new(e)
                            .context(format!("reading GitHub's answer to {method} {path}")),
                    ));
                }
                e if attempt < MAX_ATTEMPTS => {
                    let wait = self.min_wait * attempt;
                    debug!("{method} {path} failed ({e}); retrying in {wait:?}");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                e => {
                    debug!("{method} {path} failed ({e}); giving up");
                    return Err(Failure::Other(
                        anyhow::Error::new(e).context(format!("calling GitHub: {method} {path}")),
                    ));
                }
            };
            let headers = answer.headers.clone().unwrap_or_default();
            debug!(
                "{method} {path} -> HTTP {}: {}",
                answer.status_code.as_u16(),
                answer.message
            );
            trace_rate_limit(&headers);
            if attempt < MAX_ATTEMPTS {
                if let Some((wait, why)) =
                    self.retry_wait(answer.status_code, &headers, &answer.message, attempt)
                {
                    debug!(
                        "{why}: waiting {wait:?} before attempt {}/{MAX_ATTEMPTS}",
                        attempt + 1
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            return Err(Failure::Answer(answer));
        }
    }

    /// How long to wait before retrying and why, or `None` when not retryable.
    fn retry_wait(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        message: &str,
        attempt: u32,
    ) -> Option<(Duration, String)> {
        let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::trim);
        if let Some(secs) = header("retry-after").and_then(|v| v.parse::<u64>().ok()) {
            if status == StatusCode::FORBIDDEN
                || status == StatusCode::TOO_MANY_REQUESTS
                || status.is_server_error()
            {
                let wait = Duration::from_secs(secs).clamp(self.min_wait, MAX_WAIT);
                let why = if status.is_server_error() {
                    format!("HTTP {} with retry-after: {secs}", status.as_u16())
                } else {
                    format!("secondary rate limit (retry-after: {secs})")
                };
                return Some((wait, why));
            }
        }
        let rate_limited = header("x-ratelimit-remaining") == Some("0")
            || message.to_ascii_lowercase().contains("rate limit");
        if (status == StatusCode::FORBIDDEN || status == StatusCode::TOO_MANY_REQUESTS)
            && rate_limited
        {
            let reset = header("x-ratelimit-reset").and_then(|v| v.parse::<i64>().ok());
            let now = chrono::Utc::now().timestamp();
            let wait = reset.map_or(60, |r| (r - now).max(1) as u64);
            let why = match reset {
                Some(r) => format!("rate limit (x-ratelimit-reset in {}s)", r - now),
                None => "rate limit (no reset time given)".to_string(),
            };
            return Some((
                Duration::from_secs(wait).clamp(self.min_wait, MAX_WAIT),
                why,
            ));
        }
        if status.is_server_error() {
            let wait = self.min_wait * 2u32.pow(attempt.min(5));
            return Some((wait, format!("HTTP {} (server error)", status.as_u16())));
        }
        None
    }

    fn error(&self, method: &str, path: &str, answer: &octocrab::GitHubError) -> GitHubError {
        let mut message = if answer.message.is_empty() {
            "no message".to_string()
        } else {
            answer.message.clone()
        };
        if let Some(errors) = &answer.errors {
            let details: Vec<&str> = errors
                .iter()
                .filter_map(|e| e.get("message").and_then(serde_json::Value::as_str))
                .collect();
            if !details.is_empty() {
                message = format!("{message} ({})", details.join("; "));
            }
        }
        let hint = match answer.status_code.as_u16() {
            401 => "; GitHub refused the token: check GITHUB_TOKEN (or GH_TOKEN)".to_string(),
            403 => "; the token lacks permission (contents: write, pull-requests: write)".to_string(),
            404 => format!(
                "; repository {}/{} not found, or the token cannot see it (check deploy.repository and GITHUB_API_URL)",
                self.owner, self.repo
            ),
            _ => String::new(),
        };
        GitHubError {
            method: method.to_string(),
            path: path.to_string(),
            status: answer.status_code.as_u16(),
            message,
            hint,
        }
    }

    /// [`GitHub::call`], with a non-success answer as a [`GitHubError`].
    async fn expect<T, F, Fut>(&self, method: &str, path: &str, send: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = octocrab::Result<T>>,
    {
        match self.call(method, path, send).await {
            Ok(answer) => Ok(answer),
            Err(Failure::Answer(answer)) => Err(self.error(method, path, &answer).into()),
            Err(Failure::Other(e)) => Err(e),
        }
    }

    /// The open pull request from `head` (a branch of this repository) into `base`.
    pub async fn find_open_pr(&self, head: &str, base: &str) -> Result<Option<PullRequest>> {
        let head = format!("{}:{head}", self.owner);
        let path = self.repo_path(&format!(
            "pulls?state=open&head={head}&base={base}&per_page=10"
        ));
        let page = self
            .expect("GET", &path, || async {
                self.client
                    .pulls(&self.owner, &self.repo)
                    .list()
                    .state(State::Open)
                    .head(head.as_str())
                    .base(base)
                    .per_page(10u8)
                    .send()
                    .await
            })
            .await?;
        let found = page.items.into_iter().next();
        match &found {
            Some(pr) => debug!("open pull request #{} from {head}", pr.number),
            None => debug!("no open pull request from {head} into {base}"),
        }
        Ok(found)
    }

    /// Create the pull request, or update the open one from the same branch.
    /// Never creates a second one.
    pub async fn ensure_pull_request(
        &self,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<(PullRequest, PrAction)> {
        self.ensure_pull_request_with(head, base, title, |_| body.to_string())
            .await
    }

    /// [`Self::ensure_pull_request`], the body made from the open pull
    /// request's (`None` when it is created): what a run left in it stays.
    pub async fn ensure_pull_request_with(
        &self,
        head: &str,
        base: &str,
        title: &str,
        body_for: impl Fn(Option<&str>) -> String,
    ) -> Result<(PullRequest, PrAction)> {
        if let Some(pr) = self.find_open_pr(head, base).await? {
            let body = body_for(Some(pr.body.as_deref().unwrap_or("")));
            return self.update_if_needed(pr, title, &body).await;
        }
        let body = &body_for(None);
        let path = self.repo_path("pulls");
        let created = self
            .call("POST", &path, || async {
                self.client
                    .pulls(&self.owner, &self.repo)
                    .create(title, head, base)
                    .body(body)
                    .maintainer_can_modify(true)
                    .send()
                    .await
            })
            .await;
        let answer = match created {
            Ok(pr) => {
                debug!("created pull request #{}", pr.number);
                return Ok((pr, PrAction::Created));
            }
            Err(Failure::Other(e)) => return Err(e),
            Err(Failure::Answer(answer)) => answer,
        };
        let errors = serde_json::to_string(&answer.errors).unwrap_or_default();
        let already = answer.status_code == StatusCode::UNPROCESSABLE_ENTITY
            && format!("{} {errors}", answer.message)
                .to_ascii_lowercase()
                .contains("already exists");
        if already {
            // Someone (a concurrent run) opened it first: update that one.
            debug!("the pull request from {head} already exists (a concurrent run?): updating it");
            if let Some(pr) = self.find_open_pr(head, base).await? {
                let body = body_for(Some(pr.body.as_deref().unwrap_or("")));
                return self.update_if_needed(pr, title, &body).await;
            }
        }
        Err(self.error("POST", &path, &answer).into())
    }

    /// Set the body of the pull request.
    pub async fn set_body(&self, pr: &PullRequest, body: &str) -> Result<PullRequest> {
        let path = self.repo_path(&format!("pulls/{}", pr.number));
        self.expect("PATCH", &path, || async {
            self.client
                .pulls(&self.owner, &self.repo)
                .update(pr.number)
                .body(body)
                .send()
                .await
        })
        .await
    }

    async fn update_if_needed(
        &self,
        pr: PullRequest,
        title: &str,
        body: &str,
    ) -> Result<(PullRequest, PrAction)> {
        let same = pr.title.as_deref() == Some(title) && pr.body.as_deref().unwrap_or("") == body;
        if same {
            debug!("pull request #{} is up to date", pr.number);
            return Ok((pr, PrAction::UpToDate));
        }
        let path = self.repo_path(&format!("pulls/{}", pr.number));
        let pr = self
            .expect("PATCH", &path, || async {
                self.client
                    .pulls(&self.owner, &self.repo)
                    .update(pr.number)
                    .title(title)
                    .body(body)
                    .send()
                    .await
            })
            .await?;
        Ok((pr, PrAction::Updated))
    }

    /// Add the labels the pull request lacks (one call, none when all are there).
    pub async fn add_labels(&self, pr: &PullRequest, labels: &[String]) -> Result<()> {
        let have = pr
            .labels
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|l| l.name.as_str());
        let missing = missing(have, labels);
        if missing.is_empty() {
            return Ok(());
        }
        let path = self.repo_path(&format!("issues/{}/labels", pr.number));
        self.expect("POST", &path, || async {
            self.client
                .issues(&self.owner, &self.repo)
                .add_labels(pr.number, &missing)
                .await
        })
        .await?;
        Ok(())
    }

    /// Request the reviewers not yet requested (one call, none when all are).
    pub async fn request_reviewers(&self, pr: &PullRequest, reviewers: &[String]) -> Result<()> {
        let have = pr
            .requested_reviewers
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|u| u.login.as_str());
        let missing = missing(have, reviewers);
        if missing.is_empty() {
            return Ok(());
        }
        let path = self.repo_path(&format!("pulls/{}/requested_reviewers", pr.number));
        // GitHub answers with the pull request; octocrab reads that into its
        // `Review` model (whose fields a pull request has too). Unused here.
        self.expect("POST", &path, || async {
            self.client
                .pulls(&self.owner, &self.repo)
                .request_reviews(pr.number, missing.clone(), Vec::<String>::new())
                .await
        })
        .await?;
        Ok(())
    }
}

/// The `wanted` names not in `have`.
fn missing<'a>(have: impl Iterator<Item = &'a str>, wanted: &[String]) -> Vec<String> {
    let have: Vec<&str> = have.collect();
    wanted
        .iter()
        .filter(|w| !have.contains(&w.as_str()))
        .cloned()
        .collect()
}

/// GitHub's rate-limit headers of an answer, at trace level.
fn trace_rate_limit(headers: &HeaderMap) {
    if !tracing::enabled!(tracing::Level::TRACE) {
        return;
    }
    const SHOWN: &[&str] = &[
        "retry-after",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-used",
        "x-ratelimit-reset",
        "x-ratelimit-resource",
        "x-github-request-id",
    ];
    let shown: Vec<String> = SHOWN
        .iter()
        .filter_map(|k| {
            let v = headers.get(*k)?.to_str().ok()?;
            Some(format!("{k}: {v}"))
        })
        .collect();
    if !shown.is_empty() {
        trace!("  {}", shown.join("; "));
    }
}

/// The API base: GITHUB_API_URL, else api.github.com.
pub fn api_url_from_env() -> String {
    std::env::var("GITHUB_API_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "https://api.github.com".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gh() -> GitHub {
        let token = Secret::new("t").unwrap();
        GitHub::new("http://127.0.0.1:9", &token, "o/r").unwrap()
    }

    #[test]
    fn a_pull_request_reads_as_the_review_octocrab_returns_for_requested_reviewers() {
        // POST .../requested_reviewers answers with the pull request, which
        // octocrab's `request_reviews` reads into its `Review` model.
        let text = include_str!("../../tests/fixtures/github/pull_request.json");
        serde_json::from_str::<octocrab::models::pulls::Review>(text).unwrap();
    }

    #[tokio::test]
    async fn retry_waits() {
        let gh = gh();
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        let wait = |status: u16, h: &HeaderMap, message: &str, attempt: u32| {
            gh.retry_wait(StatusCode::from_u16(status).unwrap(), h, message, attempt)
                .map(|(d, _)| d)
        };
        let none = HeaderMap::new();
        // Secondary rate limit: retry-after, at least min_wait.
        let h = headers(&[("retry-after", "1")]);
        assert_eq!(
            wait(403, &h, "secondary rate limit", 1),
            Some(Duration::from_secs(1))
        );
        let h = headers(&[("retry-after", "0")]);
        assert_eq!(wait(429, &h, "", 1), Some(Duration::from_millis(500)));
        let h = headers(&[("retry-after", "999")]);
        assert_eq!(wait(503, &h, "", 1), Some(MAX_WAIT));
        // Primary: until x-ratelimit-reset, clamped.
        let reset = (chrono::Utc::now().timestamp() + 3600).to_string();
        let h = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &reset),
        ]);
        assert_eq!(wait(403, &h, "", 1), Some(MAX_WAIT));
        assert_eq!(
            wait(403, &none, "API rate limit exceeded", 1),
            Some(MAX_WAIT)
        );
        // 5xx: exponential; 4xx otherwise: no retry.
        assert_eq!(wait(502, &none, "", 1), Some(Duration::from_secs(1)));
        assert_eq!(wait(502, &none, "", 2), Some(Duration::from_secs(2)));
        assert_eq!(wait(403, &none, "Resource not accessible", 1), None);
        assert_eq!(wait(422, &none, "Validation Failed", 1), None);
        assert_eq!(wait(404, &none, "Not Found", 1), None);
    }
}

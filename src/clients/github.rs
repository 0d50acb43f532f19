//! All of GitHub's REST API that openim-release uses, through octocrab:
//! pull requests, labels, reviewers. Retries 5xx and rate limits honouring
//! `retry-after` / `x-ratelimit-reset`; resolves 422 "already exists" by
//! finding the existing pull request. Counts calls.

use crate::secret::Secret;
use anyhow::{Context, Result};
use http::{HeaderMap, Method, StatusCode};
use octocrab::models::pulls::PullRequest;
use octocrab::Octocrab;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

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

    /// One API call with retries; returns status and parsed JSON body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.calls.fetch_add(1, Ordering::SeqCst);
            let sent = match method {
                Method::GET => self.client._get(path).await,
                Method::POST => self.client._post(path, body).await,
                Method::PATCH => self.client._patch(path, body).await,
                Method::PUT => self.client._put(path, body).await,
                Method::DELETE => self.client._delete(path, body).await,
                _ => unreachable!("no other methods are used"),
            };
            let response = match sent {
                Ok(r) => r,
                Err(e) if attempt < MAX_ATTEMPTS => {
                    let _ = e;
                    tokio::time::sleep(self.min_wait * attempt).await;
                    continue;
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e))
                        .with_context(|| format!("calling GitHub: {method} {path}"))
                }
            };
            let status = response.status();
            let headers = response.headers().clone();
            let text = self
                .client
                .body_to_string(response)
                .await
                .with_context(|| format!("reading GitHub's answer to {method} {path}"))?;
            let json: Value = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text.clone()))
            };
            if status.is_success() {
                return Ok((status, json));
            }
            if attempt < MAX_ATTEMPTS {
                if let Some(wait) = self.retry_wait(status, &headers, &json, attempt) {
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            return Ok((status, json));
        }
    }

    /// How long to wait before retrying, or `None` when not retryable.
    fn retry_wait(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &Value,
        attempt: u32,
    ) -> Option<Duration> {
        let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::trim);
        if let Some(secs) = header("retry-after").and_then(|v| v.parse::<u64>().ok()) {
            if status == StatusCode::FORBIDDEN
                || status == StatusCode::TOO_MANY_REQUESTS
                || status.is_server_error()
            {
                return Some(Duration::from_secs(secs).clamp(self.min_wait, MAX_WAIT));
            }
        }
        let rate_limited = header("x-ratelimit-remaining") == Some("0")
            || body
                .get("message")
                .and_then(Value::as_str)
                .is_some_and(|m| m.to_ascii_lowercase().contains("rate limit"));
        if (status == StatusCode::FORBIDDEN || status == StatusCode::TOO_MANY_REQUESTS)
            && rate_limited
        {
            let reset = header("x-ratelimit-reset").and_then(|v| v.parse::<i64>().ok());
            let now = chrono::Utc::now().timestamp();
            let wait = reset.map_or(60, |r| (r - now).max(1) as u64);
            return Some(Duration::from_secs(wait).clamp(self.min_wait, MAX_WAIT));
        }
        if status.is_server_error() {
            return Some(self.min_wait * 2u32.pow(attempt.min(5)));
        }
        None
    }

    fn error(&self, method: &str, path: &str, status: StatusCode, body: &Value) -> GitHubError {
        let mut message = body
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_string();
        if let Some(errors) = body.get("errors").and_then(Value::as_array) {
            let details: Vec<&str> = errors
                .iter()
                .filter_map(|e| e.get("message").and_then(Value::as_str))
                .collect();
            if !details.is_empty() {
                message = format!("{message} ({})", details.join("; "));
            }
        }
        let hint = match status.as_u16() {
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
            status: status.as_u16(),
            message,
            hint,
        }
    }

    async fn expect(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let (status, json) = self.call(method.clone(), path, body).await?;
        if status.is_success() {
            Ok(json)
        } else {
            Err(self.error(method.as_str(), path, status, &json).into())
        }
    }

    /// The open pull request from `head` (a branch of this repository) into `base`.
    pub async fn find_open_pr(&self, head: &str, base: &str) -> Result<Option<PullRequest>> {
        let path = self.repo_path(&format!(
            "pulls?state=open&head={}:{}&base={}&per_page=10",
            self.owner,
            encode(head),
            encode(base)
        ));
        let json = self.expect(Method::GET, &path, None).await?;
        let list: Vec<PullRequest> =
            serde_json::from_value(json).context("reading GitHub's list of pull requests")?;
        Ok(list.into_iter().next())
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
        if let Some(pr) = self.find_open_pr(head, base).await? {
            return self.update_if_needed(pr, title, body).await;
        }
        let path = self.repo_path("pulls");
        let request = serde_json::json!({"title": title, "head": head, "base": base, "body": body, "maintainer_can_modify": true});
        let (status, json) = self.call(Method::POST, &path, Some(&request)).await?;
        if status.is_success() {
            let pr: PullRequest =
                serde_json::from_value(json).context("reading the created pull request")?;
            return Ok((pr, PrAction::Created));
        }
        let already = status == StatusCode::UNPROCESSABLE_ENTITY
            && json
                .to_string()
                .to_ascii_lowercase()
                .contains("already exists");
        if already {
            // Someone (a concurrent run) opened it first: update that one.
            if let Some(pr) = self.find_open_pr(head, base).await? {
                return self.update_if_needed(pr, title, body).await;
            }
        }
        Err(self.error("POST", &path, status, &json).into())
    }

    async fn update_if_needed(
        &self,
        pr: PullRequest,
        title: &str,
        body: &str,
    ) -> Result<(PullRequest, PrAction)> {
        let same = pr.title.as_deref() == Some(title) && pr.body.as_deref().unwrap_or("") == body;
        if same {
            return Ok((pr, PrAction::UpToDate));
        }
        let path = self.repo_path(&format!("pulls/{}", pr.number));
        let json = self
            .expect(
                Method::PATCH,
                &path,
                Some(&serde_json::json!({"title": title, "body": body})),
            )
            .await?;
        let pr: PullRequest =
            serde_json::from_value(json).context("reading the updated pull request")?;
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
        self.post_missing(
            &format!("issues/{}/labels", pr.number),
            "labels",
            have,
            labels,
        )
        .await
    }

    /// Request the reviewers not yet requested (one call, none when all are).
    pub async fn request_reviewers(&self, pr: &PullRequest, reviewers: &[String]) -> Result<()> {
        let have = pr
            .requested_reviewers
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|u| u.login.as_str());
        let path = format!("pulls/{}/requested_reviewers", pr.number);
        self.post_missing(&path, "reviewers", have, reviewers).await
    }

    /// POST `{key: [...]}` to `rest` with the `wanted` names not in `have`;
    /// no call when nothing is missing.
    async fn post_missing<'a>(
        &self,
        rest: &str,
        key: &str,
        have: impl Iterator<Item = &'a str>,
        wanted: &[String],
    ) -> Result<()> {
        let have: Vec<&str> = have.collect();
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|w| !have.contains(&w.as_str()))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let path = self.repo_path(rest);
        self.expect(
            Method::POST,
            &path,
            Some(&serde_json::json!({ key: missing })),
        )
        .await?;
        Ok(())
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The API base: GITHUB_API_URL, else api.github.com.
pub fn api_url_from_env() -> String {
    std::env::var("GITHUB_API_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "https://api.github.com".into())
}

//! Notifications: when a `release` of rc, release, patch or nightly
//! finishes or fails, a message to every `notify:` destination that wants
//! it (the formats: [`formats`]), with the version, the images and the
//! deploy pull request. The webhook URLs and signing secrets come from the
//! environment, are [`Secret`]s (masked in GitHub Actions, never printed)
//! and never appear in a warning. A notification that fails is a warning:
//! it never fails the release.

pub mod formats;

use crate::clients::webhook;
use crate::config::notes::{NotifyKind, NotifyOn, NotifyTarget};
use crate::notes::ShippedImage;
use crate::output::actions;
use crate::release::ReleaseReport;
use crate::secret::{scrub_known, Secret};
use crate::tag::apply::TagReport;
use crate::tag::stage::Stage;
use crate::workspace::Workspace;
use serde::Serialize;

/// What a message tells.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// The project: the repository's name.
    pub project: String,
    pub stage: String,
    pub outcome: NotifyOn,
    pub version: Option<String>,
    pub git_tag: Option<String>,
    pub tags: Vec<String>,
    /// `(service, digest)` of every image built.
    pub digests: Vec<(String, String)>,
    pub images: Vec<ShippedImage>,
    pub pr_url: Option<String>,
    pub release_url: Option<String>,
    /// The GitHub Actions run, when there is one.
    pub run_url: Option<String>,
    /// Why the run failed.
    pub error: Option<String>,
}

/// What became of one destination's message (the `notifications` of
/// `release --output json`).
#[derive(Debug, Clone, Serialize)]
pub struct Sent {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: NotifyKind,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Event {
    fn new(ws: &Workspace, stage: Stage, outcome: NotifyOn, tag: Option<&TagReport>) -> Event {
        Event {
            project: project(ws),
            stage: stage.to_string(),
            outcome,
            version: tag.and_then(|t| t.version.clone()),
            git_tag: tag.and_then(|t| t.git_tag.clone()),
            tags: tag.map(|t| t.tags.clone()).unwrap_or_default(),
            digests: Vec::new(),
            images: Vec::new(),
            pr_url: None,
            release_url: None,
            run_url: run_url(),
            error: None,
        }
    }

    /// A release that finished.
    pub fn finished(ws: &Workspace, r: &ReleaseReport) -> Event {
        let mut e = Event::new(ws, r.stage, NotifyOn::Success, Some(&r.tag));
        if let Some(b) = &r.build {
            e.digests = b.digests().into_iter().collect();
            e.images = crate::notes::shipped_images(b);
        }
        e.pr_url = r.gitops.as_ref().and_then(|g| g.pr_url.clone());
        e.release_url = r.github_release.as_ref().and_then(|g| g.url.clone());
        e
    }

    /// A release that failed, with what its tag step computed.
    pub fn failed(
        ws: &Workspace,
        stage: Stage,
        tag: Option<&TagReport>,
        error: &anyhow::Error,
    ) -> Event {
        let mut e = Event::new(ws, stage, NotifyOn::Failure, tag);
        e.error = Some(scrub_known(&crate::error::one_line(error)));
        e
    }
}

/// The repository's name (`github_release.repository`, GITHUB_REPOSITORY,
/// origin), else its directory's.
fn project(ws: &Workspace) -> String {
    crate::notes::repository(ws)
        .and_then(|r| r.split('/').nth(1).map(str::to_string))
        .or_else(|| {
            ws.root()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "release".into())
}

/// `$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID`.
fn run_url() -> Option<String> {
    let repo = std::env::var("GITHUB_REPOSITORY").ok()?;
    let id = std::env::var("GITHUB_RUN_ID").ok()?;
    Some(format!(
        "{}/{repo}/actions/runs/{id}",
        crate::notes::web_url()
    ))
}

/// Send `event` to every destination that wants it. Failures are warnings
/// (on stderr, and as annotations in GitHub Actions).
pub fn send_all(ws: &Workspace, event: &Event) -> Vec<Sent> {
    let targets: Vec<&NotifyTarget> = ws
        .config()
        .notify
        .iter()
        .filter(|t| t.wants(&event.stage, event.outcome))
        .collect();
    if targets.is_empty() {
        return Vec::new();
    }
    ws.step(&format!(
        "notifying {}",
        targets
            .iter()
            .map(|t| t.display_name())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            warn(&format!(
                "notifications not sent: starting the async runtime: {e}"
            ));
            return Vec::new();
        }
    };
    let now_ms = crate::workspace::real_time_ms();
    let sent = runtime.block_on(futures_util::future::join_all(
        targets.iter().map(|t| send_one(t, event, now_ms)),
    ));
    for s in sent.iter().filter(|s| !s.ok) {
        warn(&format!(
            "notification {} ({}) not sent: {}; the release is not affected",
            s.name,
            s.kind.as_str(),
            s.error.as_deref().unwrap_or("?")
        ));
    }
    sent
}

fn warn(message: &str) {
    crate::say!("warning: {message}");
    if actions::in_actions() {
        actions::command(&actions::annotation("warning", message, None, None));
    }
}

/// A secret from the environment variable `name`, masked in Actions.
fn secret_from(name: &str) -> Option<Secret> {
    let s = std::env::var(name).ok().and_then(Secret::new)?;
    actions::mask(&s);
    Some(s)
}

/// The parts of a webhook URL that a library's log could show alone (the
/// path of Slack's and Feishu's URLs, DingTalk's `access_token`, WeCom's
/// `key`): secrets too, so the debug log scrubs them wherever they appear.
fn remember_url_parts(url: &Secret) {
    let Ok(parsed) = reqwest::Url::parse(url.expose()) else {
        return;
    };
    let path = parsed.path();
    let mut parts: Vec<String> = Vec::new();
    if path.len() > 1 {
        parts.push(path.to_string());
    }
    if let Some(q) = parsed.query() {
        parts.push(q.to_string());
    }
    parts.extend(parsed.query_pairs().map(|(_, v)| v.into_owned()));
    if let Some(p) = parsed.password() {
        parts.push(p.to_string());
    }
    for p in parts.into_iter().filter(|p| p.len() >= 8) {
        if let Some(s) = Secret::new(p) {
            actions::mask(&s);
        }
    }
}

async fn send_one(t: &NotifyTarget, event: &Event, now_ms: i64) -> Sent {
    let mut sent = Sent {
        name: t.display_name(),
        kind: t.kind,
        ok: false,
        error: None,
    };
    let Some(url) = secret_from(&t.url_env) else {
        sent.error = Some(format!("{} is not set (the webhook URL)", t.url_env));
        return sent;
    };
    remember_url_parts(&url);
    let secret = match &t.secret_env {
        Some(name) => match secret_from(name) {
            Some(s) => Some(s),
            None => {
                sent.error = Some(format!("{name} is not set (the signing secret)"));
                return sent;
            }
        },
        None => None,
    };
    let message = formats::message(t.kind, event, secret.as_ref().map(Secret::expose), now_ms);
    let query: Vec<(&str, String)> = message.query.clone();
    let headers: Vec<(&str, String)> = message.headers.clone();
    let result = webhook::post_json(&url, &query, &headers, &message.body.to_string()).await;
    let secrets: Vec<&Secret> = [Some(&url), secret.as_ref()]
        .into_iter()
        .flatten()
        .collect();
    match result {
        Ok(answer) => match formats::accepted(t.kind, &answer.body) {
            Ok(()) => sent.ok = true,
            Err(e) => sent.error = Some(crate::secret::scrub(&e, &secrets)),
        },
        Err(e) => sent.error = Some(crate::secret::scrub(&e.to_string(), &secrets)),
    }
    sent
}

//! Posting JSON to a webhook (chat bots, a team's own receiver). The URL is
//! a secret (Slack's path, DingTalk's `access_token`, WeCom's `key`): it is
//! never part of an error or a log line, only of the request. Transport
//! failures, 429 and 5xx are retried (3 attempts).

use crate::secret::Secret;
use std::time::Duration;
use tracing::debug;

/// Attempts for one message.
const ATTEMPTS: u32 = 3;

/// How a post ended when it did not get a 2xx answer.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The URL is not one (said without the URL).
    #[error("the webhook URL is not a valid http(s) URL")]
    BadUrl,
    /// No answer (connection, TLS, timeout); the URL left out.
    #[error("no answer: {0}")]
    Transport(String),
    /// An answer that is not a success.
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
}

/// A webhook's answer: its status and body (at most 2 KiB of it).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// POST `body` (JSON) to `url` with `query` added to it and `headers`.
pub async fn post_json(
    url: &Secret,
    query: &[(&str, String)],
    headers: &[(&str, String)],
    body: &str,
) -> Result<Answer, WebhookError> {
    let mut parsed = reqwest::Url::parse(url.expose()).map_err(|_| WebhookError::BadUrl)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(WebhookError::BadUrl);
    }
    if !query.is_empty() {
        let mut pairs = parsed.query_pairs_mut();
        for (k, v) in query {
            pairs.append_pair(k, v);
        }
    }
    let client = reqwest::Client::builder()
        .user_agent(concat!("openim-release/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| WebhookError::Transport(e.without_url().to_string()))?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut req = client
            .post(parsed.clone())
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let outcome = match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let mut text = resp.text().await.unwrap_or_default();
                if text.len() > 2048 {
                    let mut cut = 2048;
                    while !text.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    text.truncate(cut);
                }
                if (200..300).contains(&status) {
                    return Ok(Answer { status, body: text });
                }
                let retry = status == 429 || status >= 500;
                (
                    WebhookError::Status {
                        status,
                        body: one_line(&text),
                    },
                    retry,
                )
            }
            Err(e) => (WebhookError::Transport(e.without_url().to_string()), true),
        };
        let (error, retry) = outcome;
        debug!("webhook attempt {attempt}/{ATTEMPTS}: {error}");
        if !retry || attempt >= ATTEMPTS {
            return Err(error);
        }
        tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
    }
}

fn one_line(text: &str) -> String {
    let t = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if t.is_empty() {
        "no message".into()
    } else {
        t
    }
}

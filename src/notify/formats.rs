//! Each destination's message (and signature) for one run. Pure: the
//! clock and the secret come in.
//!
//! - `webhook`: the run as JSON; with a secret, the header
//!   `X-Openim-Release-Signature: sha256=<hex HMAC-SHA256(secret, body)>`.
//! - `slack`: an incoming-webhook message (`text` and `blocks`, mrkdwn).
//! - `feishu` / `lark`: a custom bot's `post` message; with a secret,
//!   `timestamp` (seconds) and `sign` = base64(HMAC-SHA256(key =
//!   "{timestamp}\n{secret}", message = "")) in the body.
//! - `dingtalk`: a custom robot's `markdown` message; with a secret, the
//!   query parameters `timestamp` (milliseconds) and `sign` =
//!   base64(HMAC-SHA256(key = secret, message = "{timestamp}\n{secret}")).
//! - `wecom`: a group robot's `markdown` message (at most 4096 bytes).

use super::Event;
use crate::config::notes::{NotifyKind, NotifyOn};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What to send: the body, query parameters and headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub body: Value,
    pub query: Vec<(&'static str, String)>,
    pub headers: Vec<(&'static str, String)>,
}

/// The message of `event` in `kind`'s format, signed with `secret` when
/// given; `now_ms` is the time in milliseconds since the epoch.
pub fn message(kind: NotifyKind, event: &Event, secret: Option<&str>, now_ms: i64) -> Message {
    let mut m = Message {
        body: Value::Null,
        query: Vec::new(),
        headers: Vec::new(),
    };
    match kind {
        NotifyKind::Webhook => {
            m.body = webhook(event);
            if let Some(s) = secret {
                let sig = hmac(s.as_bytes(), m.body.to_string().as_bytes());
                m.headers.push((
                    "x-openim-release-signature",
                    format!("sha256={}", hex(&sig)),
                ));
            }
        }
        NotifyKind::Slack => m.body = slack(event),
        NotifyKind::Feishu | NotifyKind::Lark => {
            m.body = feishu(event);
            if let Some(s) = secret {
                let ts = (now_ms / 1000).to_string();
                let sign = base64(&hmac(format!("{ts}\n{s}").as_bytes(), b""));
                let obj = m.body.as_object_mut().expect("an object");
                obj.insert("timestamp".into(), json!(ts));
                obj.insert("sign".into(), json!(sign));
            }
        }
        NotifyKind::Dingtalk => {
            m.body = json!({
                "msgtype": "markdown",
                "markdown": { "title": title(event), "text": markdown(event, 20_000) },
            });
            if let Some(s) = secret {
                let ts = now_ms.to_string();
                let sign = base64(&hmac(s.as_bytes(), format!("{ts}\n{s}").as_bytes()));
                m.query.push(("timestamp", ts));
                m.query.push(("sign", sign));
            }
        }
        NotifyKind::Wecom => {
            m.body = json!({
                "msgtype": "markdown",
                "markdown": { "content": markdown(event, 4096) },
            });
        }
    }
    m
}

/// Whether the answer of `kind` says the message was taken: Feishu, Lark,
/// DingTalk and WeCom answer HTTP 200 with an error code in the body.
pub fn accepted(kind: NotifyKind, body: &str) -> Result<(), String> {
    let code_keys: &[&str] = match kind {
        NotifyKind::Feishu | NotifyKind::Lark => &["code", "StatusCode"],
        NotifyKind::Dingtalk | NotifyKind::Wecom => &["errcode"],
        NotifyKind::Webhook | NotifyKind::Slack => return Ok(()),
    };
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return Err(format!("an answer that is not JSON: {}", body.trim()));
    };
    for key in code_keys {
        if let Some(code) = v.get(*key).and_then(Value::as_i64) {
            if code != 0 {
                let msg = ["msg", "errmsg", "StatusMessage"]
                    .iter()
                    .find_map(|k| v.get(*k).and_then(Value::as_str))
                    .unwrap_or("no message");
                return Err(format!("error {code}: {msg}"));
            }
            return Ok(());
        }
    }
    Ok(())
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `openim-server release v3.8.1 finished` / `… failed`.
pub fn title(e: &Event) -> String {
    let what = e
        .git_tag
        .clone()
        .or_else(|| e.version.clone())
        .map(|v| format!(" {v}"))
        .unwrap_or_default();
    let how = match e.outcome {
        NotifyOn::Success => "finished",
        NotifyOn::Failure => "failed",
    };
    format!("{} {}{what} {how}", e.project, e.stage)
}

/// The lines every format shows, as `(label, text, link)`.
fn facts(e: &Event) -> Vec<(String, String, Option<String>)> {
    let mut out = Vec::new();
    if let Some(v) = &e.version {
        out.push(("version".into(), v.clone(), None));
    }
    if !e.tags.is_empty() {
        out.push(("image tags".into(), e.tags.join(", "), None));
    }
    for (service, digest) in &e.digests {
        out.push((service.clone(), digest.clone(), None));
    }
    if let Some(u) = &e.pr_url {
        out.push(("deploy".into(), "pull request".into(), Some(u.clone())));
    }
    if let Some(u) = &e.release_url {
        out.push((
            "GitHub Release".into(),
            e.git_tag.clone().unwrap_or_default(),
            Some(u.clone()),
        ));
    }
    if let Some(err) = &e.error {
        out.push(("error".into(), err.clone(), None));
    }
    if let Some(u) = &e.run_url {
        out.push(("run".into(), "workflow run".into(), Some(u.clone())));
    }
    out
}

/// Markdown (DingTalk, WeCom), cut to `max` bytes.
fn markdown(e: &Event, max: usize) -> String {
    let mut md = format!("### {}\n", title(e));
    for (label, text, link) in facts(e) {
        let text = match link {
            Some(u) => format!("[{text}]({u})"),
            None => text,
        };
        md.push_str(&format!("\n- **{label}**: {text}"));
    }
    md.push('\n');
    if md.len() > max {
        let mut cut = max.saturating_sub(4);
        while !md.is_char_boundary(cut) {
            cut -= 1;
        }
        md.truncate(cut);
        md.push_str("\n…");
    }
    md
}

fn slack(e: &Event) -> Value {
    let lines: Vec<String> = facts(e)
        .into_iter()
        .map(|(label, text, link)| match link {
            Some(u) => format!("*{label}*: <{u}|{}>", slack_escape(&text)),
            None => format!("*{label}*: {}", slack_escape(&text)),
        })
        .collect();
    json!({
        "text": title(e),
        "blocks": [
            { "type": "header", "text": { "type": "plain_text", "text": title(e) } },
            { "type": "section", "text": { "type": "mrkdwn", "text": lines.join("\n") } },
        ],
    })
}

/// `&`, `<`, `>` as Slack wants them in mrkdwn.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn feishu(e: &Event) -> Value {
    let lines: Vec<Value> = facts(e)
        .into_iter()
        .map(|(label, text, link)| match link {
            Some(u) => json!([
                { "tag": "text", "text": format!("{label}: ") },
                { "tag": "a", "text": text, "href": u },
            ]),
            None => json!([{ "tag": "text", "text": format!("{label}: {text}") }]),
        })
        .collect();
    json!({
        "msg_type": "post",
        "content": { "post": { "zh_cn": { "title": title(e), "content": lines } } },
    })
}

fn webhook(e: &Event) -> Value {
    json!({
        "schema_version": 1,
        "event": match e.outcome {
            NotifyOn::Success => "release.finished",
            NotifyOn::Failure => "release.failed",
        },
        "outcome": e.outcome,
        "project": e.project,
        "stage": e.stage,
        "version": e.version,
        "git_tag": e.git_tag,
        "tags": e.tags,
        "images": e.images,
        "pull_request": e.pr_url,
        "release_url": e.release_url,
        "run_url": e.run_url,
        "error": e.error,
        "title": title(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event {
            project: "openim-server".into(),
            stage: "release".into(),
            outcome: NotifyOn::Success,
            version: Some("3.8.1".into()),
            git_tag: Some("v3.8.1".into()),
            tags: vec!["v3.8.1".into(), "latest".into()],
            digests: vec![("openim-api".into(), "sha256:ab".into())],
            images: Vec::new(),
            pr_url: Some("https://github.com/o/charts/pull/7".into()),
            release_url: None,
            run_url: None,
            error: None,
        }
    }

    #[test]
    fn dingtalk_signs_in_the_query() {
        let m = message(
            NotifyKind::Dingtalk,
            &event(),
            Some("SECxyz"),
            1_700_000_000_123,
        );
        assert_eq!(m.query[0], ("timestamp", "1700000000123".to_string()));
        // Computed apart (Python's hmac and base64), as DingTalk does.
        assert_eq!(
            m.query[1],
            (
                "sign",
                "xh8ClKxXkGcVcMyoCVaoyF/wqY5Q4Hajbs0xYHUZLa4=".to_string()
            )
        );
        assert_eq!(m.body["msgtype"], "markdown");
        assert!(m.body["markdown"]["text"]
            .as_str()
            .unwrap()
            .contains("[pull request](https://github.com/o/charts/pull/7)"));
    }

    #[test]
    fn feishu_signs_in_the_body() {
        let m = message(
            NotifyKind::Feishu,
            &event(),
            Some("s3cret"),
            1_599_360_473_000,
        );
        assert_eq!(m.body["timestamp"], "1599360473");
        // Computed apart (Python's hmac and base64), as Feishu does.
        assert_eq!(
            m.body["sign"],
            "QQHOl6fWr0/7EF26jw8goDL6Cc0vHLHZYLDituMJB4s="
        );
        assert_eq!(m.body["msg_type"], "post");
        assert!(m.query.is_empty());
    }

    #[test]
    fn answers_with_an_error_code_are_refusals() {
        assert!(accepted(NotifyKind::Feishu, r#"{"code":0,"msg":"success"}"#).is_ok());
        assert_eq!(
            accepted(
                NotifyKind::Feishu,
                r#"{"code":19021,"msg":"sign match fail"}"#
            ),
            Err("error 19021: sign match fail".into())
        );
        assert!(accepted(
            NotifyKind::Dingtalk,
            r#"{"errcode":310000,"errmsg":"sign not match"}"#
        )
        .is_err());
        assert!(accepted(NotifyKind::Wecom, r#"{"errcode":0,"errmsg":"ok"}"#).is_ok());
        assert!(accepted(NotifyKind::Slack, "ok").is_ok());
    }

    #[test]
    fn the_generic_webhook_signs_its_body_in_a_header() {
        assert_eq!(
            hex(&hmac(b"k", br#"{"a":1}"#)),
            "c3a92ff9e274cdcce27a58c15a78ec6dcbbdbd0038a87e7a11baef2028fd8bff"
        );
        let m = message(NotifyKind::Webhook, &event(), Some("k"), 0);
        let sig = hex(&hmac(b"k", m.body.to_string().as_bytes()));
        assert_eq!(
            m.headers,
            [("x-openim-release-signature", format!("sha256={sig}"))]
        );
        assert_eq!(m.body["event"], "release.finished");
        assert_eq!(m.body["version"], "3.8.1");
        let unsigned = message(NotifyKind::Webhook, &event(), None, 0);
        assert!(unsigned.headers.is_empty());
    }

    #[test]
    fn wecom_markdown_fits_4096_bytes() {
        let mut e = event();
        e.digests = (0..400)
            .map(|i| (format!("svc-{i}"), "sha256:".repeat(4)))
            .collect();
        let m = message(NotifyKind::Wecom, &e, None, 0);
        assert!(m.body["markdown"]["content"].as_str().unwrap().len() <= 4096);
    }
}

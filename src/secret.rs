//! Keeping secrets out of output: a token type that never prints itself, a
//! scrubber for text that may carry credentials (URLs with user info), and
//! the set of every secret this process has held, which the debug log
//! (`output::log`) removes from each line it writes.

use regex::Regex;
use std::sync::{Mutex, OnceLock};

/// A token or password. `Debug` and `Display` print `***`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// A secret from a non-blank value (trimmed). Every secret made is
    /// remembered for [`scrub_known`].
    pub fn new(value: impl Into<String>) -> Option<Secret> {
        let value = value.into();
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return None;
        }
        remember(trimmed);
        Some(Secret(trimmed.to_string()))
    }

    /// The secret itself: only for handing to a transport, never for output.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// The token from `GITHUB_TOKEN` or `GH_TOKEN`, if set.
pub fn github_token_from_env() -> Option<Secret> {
    ["GITHUB_TOKEN", "GH_TOKEN"]
        .iter()
        .find_map(|k| std::env::var(k).ok().and_then(Secret::new))
}

/// Replace the user-info part of every URL in `text` with `***`, and every
/// occurrence of the given secrets.
pub fn scrub(text: &str, secrets: &[&Secret]) -> String {
    static URL_USERINFO: OnceLock<Regex> = OnceLock::new();
    let re = URL_USERINFO.get_or_init(|| {
        Regex::new(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@").expect("static regex")
    });
    let mut out = re.replace_all(text, "${1}***@").into_owned();
    for s in secrets {
        if !s.0.is_empty() {
            out = out.replace(&s.0, "***");
        }
    }
    out
}

/// Every secret value made so far in this process.
fn known() -> &'static Mutex<Vec<String>> {
    static KNOWN: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    KNOWN.get_or_init(|| Mutex::new(Vec::new()))
}

fn remember(value: &str) {
    let mut known = known().lock().unwrap_or_else(|e| e.into_inner());
    if !known.iter().any(|k| k == value) {
        known.push(value.to_string());
    }
}

/// Make a [`Secret`] of every credential the environment holds
/// (`GITHUB_TOKEN`, `GH_TOKEN`, `OPENIM_RELEASE_REGISTRY_*_PASSWORD`), so
/// that [`scrub_known`] removes them even before anything reads them.
pub fn remember_env_secrets() {
    for (key, value) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let secret = key == "GITHUB_TOKEN"
            || key == "GH_TOKEN"
            || (key.starts_with("OPENIM_RELEASE_REGISTRY_") && key.ends_with("_PASSWORD"));
        if secret {
            let _ = Secret::new(value.to_string_lossy().into_owned());
        }
    }
}

/// [`scrub`] with every secret this process has held, plus the values of
/// `Authorization` headers and `Bearer`/`Basic` credentials, whatever they
/// are: for the debug log, where any line may come from a dependency.
pub fn scrub_known(text: &str) -> String {
    let known = known().lock().unwrap_or_else(|e| e.into_inner()).clone();
    let secrets: Vec<Secret> = known.into_iter().map(Secret).collect();
    scrub_log(text, &secrets.iter().collect::<Vec<_>>())
}

/// [`scrub`], then any `Authorization` value and `Bearer`/`Basic`
/// credential (16 characters or more: not a word of prose) becomes `***`.
fn scrub_log(text: &str, secrets: &[&Secret]) -> String {
    static AUTH: OnceLock<Regex> = OnceLock::new();
    let auth = AUTH.get_or_init(|| {
        Regex::new(
            r"(?i)\b(authorization[\x22']?\s*[:=]\s*[\x22']?)[^\x22'\r\n;,]+|\b(bearer|basic)(\s+)[A-Za-z0-9._~+/-]{16,}=*",
        )
        .expect("static regex")
    });
    let out = scrub(text, secrets);
    auth.replace_all(&out, |c: &regex::Captures| match c.get(1) {
        Some(head) => format!("{}***", head.as_str()),
        None => format!("{}{}***", &c[2], &c[3]),
    })
    .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_itself() {
        let s = Secret::new("ghp_abc").unwrap();
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert!(Secret::new("  ").is_none());
    }

    #[test]
    fn scrubs_urls_and_values() {
        let s = Secret::new("tok123").unwrap();
        let text = "failed https://x-access-token:tok123@example.test/a.git and tok123";
        assert_eq!(
            scrub(text, &[&s]),
            "failed https://***@example.test/a.git and ***"
        );
    }

    #[test]
    fn remembers_every_secret_made() {
        let _ = Secret::new("  pw-made-elsewhere-42 ");
        assert!(!scrub_known("sent pw-made-elsewhere-42").contains("pw-made-elsewhere-42"));
    }

    #[test]
    fn the_log_loses_secrets_and_auth_values() {
        let s = Secret("pw-given-42".into());
        let line = "sent pw-given-42; Authorization: Bearer abcdefghijklmnop; \
                    authorization=\"Basic dXNlcjpwYXNz\" then bearer zyxwvutsrqponmlk0";
        let clean = scrub_log(line, &[&s]);
        for leaked in [
            "pw-given-42",
            "abcdefghijklmnop",
            "dXNlcjpwYXNz",
            "zyxwvutsrqponmlk0",
        ] {
            assert!(!clean.contains(leaked), "{clean}");
        }
        // A challenge's parameters are no credential, nor is prose.
        for text in [
            "challenge Bearer realm=\"http://x/token\",service=\"x\"",
            "challenge Basic realm=Registry",
            "answered 401 with a Basic challenge",
        ] {
            assert_eq!(scrub_log(text, &[]), text);
        }
    }
}

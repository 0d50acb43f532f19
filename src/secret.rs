//! Keeping secrets out of output: a token type that never prints itself and
//! a scrubber for text that may carry credentials (URLs with user info).

use regex::Regex;
use std::sync::OnceLock;

/// A token or password. `Debug` and `Display` print `***`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Option<Secret> {
        let value = value.into();
        let trimmed = value.trim();
        (!trimmed.is_empty()).then(|| Secret(trimmed.to_string()))
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
}

//! OCI labels and annotations of built images. Pure logic.

use std::collections::BTreeMap;

pub const SOURCE: &str = "org.opencontainers.image.source";
pub const REVISION: &str = "org.opencontainers.image.revision";
pub const VERSION: &str = "org.opencontainers.image.version";
pub const CREATED: &str = "org.opencontainers.image.created";
pub const TITLE: &str = "org.opencontainers.image.title";
/// Digest of a service's build inputs (see `context::inputs_digest`).
pub const INPUTS: &str = "org.openim-release.inputs";

/// What the labels say about a build.
#[derive(Debug, Clone, Default)]
pub struct BuildInfo {
    pub source: Option<String>,
    pub revision: String,
    pub version: String,
    /// RFC 3339, the commit time (reproducible, unlike the wall clock).
    pub created: String,
}

/// The OCI labels of one service's image, plus the configured extras
/// (which may not override the standard ones).
pub fn labels(
    info: &BuildInfo,
    service: &str,
    extra: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out = extra.clone();
    if let Some(s) = &info.source {
        out.insert(SOURCE.into(), s.clone());
    }
    out.insert(REVISION.into(), info.revision.clone());
    out.insert(VERSION.into(), info.version.clone());
    out.insert(CREATED.into(), info.created.clone());
    out.insert(TITLE.into(), service.to_string());
    out
}

/// A browsable https URL for a git remote URL, without credentials:
/// `git@github.com:openimsdk/open-im-server.git` →
/// `https://github.com/openimsdk/open-im-server`.
pub fn source_url(remote: &str) -> Option<String> {
    let remote = remote.trim();
    let (host, path) = if let Some(rest) = remote
        .strip_prefix("https://")
        .or_else(|| remote.strip_prefix("http://"))
        .or_else(|| remote.strip_prefix("ssh://"))
    {
        let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
        rest.split_once('/')?
    } else if let Some((userhost, path)) = remote.split_once(':') {
        let host = userhost.rsplit_once('@').map_or(userhost, |(_, h)| h);
        if host.contains('/') || path.starts_with("//") {
            return None;
        }
        (host, path)
    } else {
        return None;
    };
    let host = host.split(':').next().unwrap_or(host);
    let path = path.trim_matches('/').trim_end_matches(".git");
    if host.is_empty() || path.is_empty() {
        return None;
    }
    Some(format!("https://{host}/{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_urls() {
        for (input, want) in [
            (
                "git@github.com:openimsdk/open-im-server.git",
                "https://github.com/openimsdk/open-im-server",
            ),
            (
                "https://x-access-token:tok@github.com/openimsdk/chat.git",
                "https://github.com/openimsdk/chat",
            ),
            ("ssh://git@github.com:22/a/b.git", "https://github.com/a/b"),
            ("https://github.com/a/b", "https://github.com/a/b"),
        ] {
            assert_eq!(source_url(input).as_deref(), Some(want), "{input}");
        }
        assert_eq!(source_url("/srv/git/repo.git"), None);
    }

    #[test]
    fn standard_labels_win() {
        let extra = [
            (TITLE.to_string(), "x".to_string()),
            ("team".to_string(), "im".to_string()),
        ]
        .into();
        let info = BuildInfo {
            revision: "abc".into(),
            ..BuildInfo::default()
        };
        let l = labels(&info, "openim-api", &extra);
        assert_eq!(l[TITLE], "openim-api");
        assert_eq!(l["team"], "im");
        assert!(!l.contains_key(SOURCE));
    }
}

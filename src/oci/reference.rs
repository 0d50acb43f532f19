//! Image references: registries as written in the config
//! (`ghcr.io/openimsdk`, `docker.io/openim`, `127.0.0.1:5000`), the
//! repositories under them, and the API endpoint each one is reached at.
//! Pure logic, following the normalization of docker's reference package.

use regex::Regex;
use std::fmt;
use std::sync::OnceLock;

/// Longest tag the OCI distribution spec allows.
pub const MAX_TAG_LEN: usize = 128;

/// An image tag by the OCI distribution grammar:
/// `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    match bytes.first() {
        Some(b) if b.is_ascii_alphanumeric() || *b == b'_' => {}
        _ => return false,
    }
    bytes.len() <= MAX_TAG_LEN && bytes.iter().all(|b| is_tag_byte(*b))
}

/// A byte an image tag may hold.
pub fn is_tag_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-'
}

/// Docker Hub as users write it, and where its API lives.
const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A registry plus an optional namespace under it, e.g. `ghcr.io/openimsdk`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegistryPrefix {
    /// The host as written (`docker.io`, `ghcr.io`, `127.0.0.1:5000`).
    pub host: String,
    /// The path below the host (`openimsdk`), possibly empty.
    pub namespace: String,
}

/// `<registry>/<namespace>/<service>:<tag>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    pub registry: RegistryPrefix,
    pub service: String,
    pub tag: String,
}

fn component_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$").expect("static regex"))
}

/// Whether `name` is a valid repository path component (lowercase, digits,
/// single separators).
pub fn is_valid_component(name: &str) -> bool {
    component_re().is_match(name)
}

impl RegistryPrefix {
    /// Parse a registry entry of the config. The first part is a host when it
    /// has a `.` or `:` or is `localhost`; otherwise the entry is a Docker Hub
    /// namespace (`openim` means `docker.io/openim`).
    pub fn parse(text: &str) -> Result<RegistryPrefix, String> {
        let trimmed = text.trim().trim_end_matches('/');
        if trimmed.is_empty() {
            return Err("empty registry".into());
        }
        if trimmed.contains("://") {
            return Err(format!(
                "registry `{text}`: write it without a scheme, e.g. ghcr.io/openimsdk"
            ));
        }
        let (first, rest) = match trimmed.split_once('/') {
            Some((a, b)) => (a, b),
            None => (trimmed, ""),
        };
        let is_host = first.contains('.') || first.contains(':') || first == "localhost";
        let (host, namespace) = if is_host {
            (first.to_string(), rest.to_string())
        } else {
            (DOCKER_HUB.to_string(), trimmed.to_string())
        };
        for part in namespace.split('/').filter(|p| !p.is_empty()) {
            if !is_valid_component(part) {
                return Err(format!(
                    "registry `{text}`: `{part}` is not a valid repository path \
                     component (lowercase letters, digits and . _ - separators)"
                ));
            }
        }
        Ok(RegistryPrefix { host, namespace })
    }

    /// The host the registry API is reached at.
    pub fn api_host(&self) -> &str {
        if self.host == DOCKER_HUB || self.host == "index.docker.io" {
            DOCKER_HUB_API
        } else {
            &self.host
        }
    }

    /// Loopback registries speak plain HTTP, as docker allows for them.
    pub fn is_loopback(&self) -> bool {
        let host = self
            .host
            .rsplit_once(':')
            .map_or(self.host.as_str(), |(h, p)| {
                if p.bytes().all(|b| b.is_ascii_digit()) {
                    h
                } else {
                    self.host.as_str()
                }
            });
        host == "localhost" || host.starts_with("127.") || host == "[::1]"
    }

    /// The repository path of `service` in this registry.
    pub fn repository(&self, service: &str) -> String {
        let path = if self.namespace.is_empty() {
            service.to_string()
        } else {
            format!("{}/{service}", self.namespace)
        };
        if self.api_host() == DOCKER_HUB_API && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        }
    }

    /// The key under which docker's config.json stores credentials.
    pub fn auth_key(&self) -> &str {
        if self.api_host() == DOCKER_HUB_API {
            "https://index.docker.io/v1/"
        } else {
            &self.host
        }
    }
}

impl fmt::Display for RegistryPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.host)
        } else {
            write!(f, "{}/{}", self.host, self.namespace)
        }
    }
}

impl ImageRef {
    pub fn repository(&self) -> String {
        self.registry.repository(&self.service)
    }

    /// `<registry>/<service>` without a tag.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.service)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.registry, self.service, self.tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_and_hub_namespaces() {
        let ghcr = RegistryPrefix::parse("ghcr.io/openimsdk").unwrap();
        assert_eq!(
            (ghcr.host.as_str(), ghcr.namespace.as_str()),
            ("ghcr.io", "openimsdk")
        );
        assert_eq!(ghcr.repository("openim-api"), "openimsdk/openim-api");
        assert_eq!(ghcr.api_host(), "ghcr.io");

        let hub = RegistryPrefix::parse("docker.io/openim").unwrap();
        assert_eq!(hub.api_host(), "registry-1.docker.io");
        assert_eq!(hub.auth_key(), "https://index.docker.io/v1/");
        assert_eq!(RegistryPrefix::parse("openim").unwrap(), hub);

        let bare_hub = RegistryPrefix::parse("docker.io").unwrap();
        assert_eq!(bare_hub.repository("redis"), "library/redis");

        let local = RegistryPrefix::parse("127.0.0.1:5000").unwrap();
        assert!(local.is_loopback());
        assert_eq!(local.repository("openim-api"), "openim-api");
        assert!(RegistryPrefix::parse("localhost:5000/a/b")
            .unwrap()
            .is_loopback());
        assert!(!ghcr.is_loopback());
    }

    #[test]
    fn rejects_bad_entries() {
        assert!(RegistryPrefix::parse("https://ghcr.io/x")
            .unwrap_err()
            .contains("scheme"));
        assert!(RegistryPrefix::parse("ghcr.io/OpenIM")
            .unwrap_err()
            .contains("OpenIM"));
        assert!(RegistryPrefix::parse(" ").is_err());
    }

    #[test]
    fn displays_references() {
        let r = ImageRef {
            registry: RegistryPrefix::parse("ghcr.io/openimsdk").unwrap(),
            service: "openim-api".into(),
            tag: "v3.8.1".into(),
        };
        assert_eq!(r.to_string(), "ghcr.io/openimsdk/openim-api:v3.8.1");
        assert_eq!(r.name(), "ghcr.io/openimsdk/openim-api");
        assert!(is_valid_component("openim-rpc-user"));
        assert!(!is_valid_component("Openim"));
        assert!(!is_valid_component("-x"));
    }
}

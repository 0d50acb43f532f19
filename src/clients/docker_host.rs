//! Where the Docker engine is, read as the docker CLI reads it: `DOCKER_HOST`
//! (with `DOCKER_TLS_VERIFY`, `DOCKER_TLS` and `DOCKER_CERT_PATH`), else the
//! current docker context (`DOCKER_CONTEXT`, else `currentContext` in
//! config.json, as `docker context use` writes it), else the default socket.
//! Pure over the environment and the files it names; `clients::engine`
//! connects.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The socket the docker CLI uses when nothing else is said.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Where the engine is and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `unix:///path` or `tcp://host:port` (port filled in as docker does).
    pub host: String,
    /// TLS with the engine's certificate checked against `ca`.
    pub tls: Option<Tls>,
    /// Where the host came from, for messages.
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub ca: PathBuf,
    /// The client certificate and key, when there are any.
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    DockerHost,
    /// A docker context, and what chose it (`DOCKER_CONTEXT` or the
    /// config file's `currentContext`).
    Context {
        name: String,
        chosen_by: String,
    },
    Default,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::DockerHost => f.write_str("DOCKER_HOST"),
            Origin::Context { name, chosen_by } => {
                write!(f, "docker context `{name}`, from {chosen_by}")
            }
            Origin::Default => f.write_str("the default: no DOCKER_HOST, no docker context"),
        }
    }
}

impl Endpoint {
    /// What to do when the engine there does not answer.
    pub fn remedy(&self) -> String {
        match &self.origin {
            Origin::DockerHost => "start it, or point DOCKER_HOST at a running engine".into(),
            Origin::Context { .. } => "start it, or choose another docker context \
                 (`docker context use NAME`, or DOCKER_CONTEXT), or set DOCKER_HOST"
                .into(),
            Origin::Default => "start dockerd, or point DOCKER_HOST at the engine (e.g. \
                 unix:///run/user/1000/docker.sock, unix:///run/podman/podman.sock, or \
                 tcp://HOST:2376 with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH), or \
                 `docker context use NAME`"
                .into(),
        }
    }
}

/// The engine cannot be used as configured: the user changes the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

/// The docker CLI's configuration directory: `DOCKER_CONFIG`, else
/// `~/.docker`.
pub fn config_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(dir) = env("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir));
    }
    env("HOME").map(|h| PathBuf::from(h).join(".docker"))
}

/// The endpoint, from the environment (`env` returns non-empty values only)
/// and the docker CLI's files.
pub fn resolve(env: &dyn Fn(&str) -> Option<String>) -> Result<Endpoint, Unsupported> {
    let env = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(host) = env("DOCKER_HOST") {
        let cert_dir = env("DOCKER_CERT_PATH")
            .map(PathBuf::from)
            .or_else(|| config_dir(&env));
        let tls = if env("DOCKER_TLS_VERIFY").is_some() {
            TlsWanted::Verify(cert_dir)
        } else if env("DOCKER_TLS").is_some() {
            TlsWanted::NoVerify
        } else {
            TlsWanted::No
        };
        return endpoint(&host, tls, Origin::DockerHost, "DOCKER_HOST");
    }
    let dir = config_dir(&env);
    let (name, chosen_by) = match env("DOCKER_CONTEXT") {
        Some(name) => (name, "DOCKER_CONTEXT".to_string()),
        None => match current_context(dir.as_deref())? {
            Some(found) => found,
            None => return endpoint(DEFAULT_HOST, TlsWanted::No, Origin::Default, ""),
        },
    };
    if name == "default" {
        // The default context is DOCKER_HOST's (unset here), so the socket.
        return endpoint(DEFAULT_HOST, TlsWanted::No, Origin::Default, "");
    }
    let Some(dir) = dir else {
        return Err(Unsupported(format!(
            "docker context `{name}` (from {chosen_by}): no docker configuration directory \
             (neither DOCKER_CONFIG nor HOME is set)"
        )));
    };
    context_endpoint(&dir, &name, &chosen_by)
}

enum TlsWanted {
    No,
    NoVerify,
    /// With the directory holding ca.pem, cert.pem, key.pem.
    Verify(Option<PathBuf>),
}

/// `currentContext` of config.json, with what chose it.
fn current_context(dir: Option<&Path>) -> Result<Option<(String, String)>, Unsupported> {
    let Some(path) = dir.map(|d| d.join("config.json")).filter(|p| p.is_file()) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Unsupported(format!("reading {}: {e}", path.display())))?;
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(default, rename = "currentContext")]
        current_context: Option<String>,
    }
    let config: Config = serde_json::from_str(&text)
        .map_err(|e| Unsupported(format!("parsing {}: {e}", path.display())))?;
    Ok(config
        .current_context
        .filter(|c| !c.is_empty())
        .map(|c| (c, format!("currentContext in {}", path.display()))))
}

/// A context's directory name in the store: the SHA-256 of its name.
pub fn context_id(name: &str) -> String {
    Sha256::digest(name.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn context_endpoint(dir: &Path, name: &str, chosen_by: &str) -> Result<Endpoint, Unsupported> {
    let id = context_id(name);
    let meta = dir
        .join("contexts")
        .join("meta")
        .join(&id)
        .join("meta.json");
    let origin = Origin::Context {
        name: name.to_string(),
        chosen_by: chosen_by.to_string(),
    };
    let text = std::fs::read_to_string(&meta).map_err(|e| {
        Unsupported(format!(
            "docker context `{name}` (from {chosen_by}) not found: cannot read {} ({e}); \
             `docker context ls` lists the contexts",
            meta.display()
        ))
    })?;
    #[derive(serde::Deserialize)]
    struct Meta {
        #[serde(default, rename = "Endpoints")]
        endpoints: std::collections::BTreeMap<String, DockerEndpoint>,
    }
    #[derive(serde::Deserialize)]
    struct DockerEndpoint {
        #[serde(default, rename = "Host")]
        host: Option<String>,
        #[serde(default, rename = "SkipTLSVerify")]
        skip_tls_verify: bool,
    }
    let meta_doc: Meta = serde_json::from_str(&text)
        .map_err(|e| Unsupported(format!("parsing {}: {e}", meta.display())))?;
    let docker = meta_doc.endpoints.get("docker");
    let host = docker
        .and_then(|d| d.host.clone())
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            Unsupported(format!(
                "docker context `{name}` (from {chosen_by}) has no docker endpoint host in {}",
                meta.display()
            ))
        })?;
    let tls_dir = dir.join("contexts").join("tls").join(&id).join("docker");
    let has_tls = ["ca.pem", "cert.pem", "key.pem"]
        .iter()
        .any(|f| tls_dir.join(f).is_file());
    let tls = if docker.is_some_and(|d| d.skip_tls_verify) {
        TlsWanted::NoVerify
    } else if has_tls {
        TlsWanted::Verify(Some(tls_dir))
    } else {
        TlsWanted::No
    };
    endpoint(
        &host,
        tls,
        origin,
        &format!("the docker endpoint of context `{name}`"),
    )
}

fn endpoint(
    host: &str,
    tls: TlsWanted,
    origin: Origin,
    named_by: &str,
) -> Result<Endpoint, Unsupported> {
    let (scheme, rest) = host.split_once("://").ok_or_else(|| {
        Unsupported(format!(
            "{named_by} `{host}` is not an engine address: use unix:///path/to/docker.sock or \
             tcp://HOST:PORT"
        ))
    })?;
    match scheme {
        "unix" => {
            if !matches!(tls, TlsWanted::No) {
                // The docker CLI ignores TLS settings for a socket too.
                tracing::debug!("TLS settings do not apply to {host}: ignored");
            }
            if rest.is_empty() {
                return Err(Unsupported(format!("{named_by} `{host}` names no socket")));
            }
            Ok(Endpoint {
                host: host.to_string(),
                tls: None,
                origin,
            })
        }
        "tcp" | "http" => {
            let authority = rest.trim_end_matches('/');
            if authority.is_empty() || authority.contains('/') {
                return Err(Unsupported(format!(
                    "{named_by} `{host}`: expected tcp://HOST:PORT"
                )));
            }
            let tls = match tls {
                TlsWanted::No => None,
                TlsWanted::NoVerify => {
                    return Err(Unsupported(format!(
                        "{named_by} `{host}` asks for TLS without checking the engine's \
                         certificate ({}), which openim-release does not do: set \
                         DOCKER_TLS_VERIFY=1 and put the CA that signed the engine's \
                         certificate in DOCKER_CERT_PATH/ca.pem (with cert.pem and key.pem \
                         for the client)",
                        if matches!(origin, Origin::DockerHost) {
                            "DOCKER_TLS without DOCKER_TLS_VERIFY"
                        } else {
                            "SkipTLSVerify"
                        }
                    )))
                }
                TlsWanted::Verify(dir) => Some(tls_files(dir, &origin)?),
            };
            // The docker CLI's default ports.
            let has_port = if authority.starts_with('[') {
                authority.contains("]:")
            } else {
                authority.contains(':')
            };
            let host = if has_port {
                format!("tcp://{authority}")
            } else {
                format!(
                    "tcp://{authority}:{}",
                    if tls.is_some() { 2376 } else { 2375 }
                )
            };
            Ok(Endpoint { host, tls, origin })
        }
        "ssh" => Err(Unsupported(format!(
            "{named_by} `{host}`: engines over SSH are not supported. Forward the remote \
             engine's socket and point DOCKER_HOST at the local end: \
             `ssh -nNT -L /tmp/remote-docker.sock:/var/run/docker.sock {rest} &` and \
             DOCKER_HOST=unix:///tmp/remote-docker.sock"
        ))),
        "npipe" => Err(Unsupported(format!(
            "{named_by} `{host}`: named pipes are Windows only"
        ))),
        "fd" => Err(Unsupported(format!(
            "{named_by} `{host}`: fd:// is for dockerd's own listeners, not for clients"
        ))),
        other => Err(Unsupported(format!(
            "{named_by} `{host}`: unknown scheme `{other}`; use unix:///path/to/docker.sock or \
             tcp://HOST:PORT"
        ))),
    }
}

/// ca.pem, cert.pem, key.pem in `dir`, as the docker CLI reads them: the CA
/// is needed to check the engine; the client pair is optional, but not half.
fn tls_files(dir: Option<PathBuf>, origin: &Origin) -> Result<Tls, Unsupported> {
    let Some(dir) = dir else {
        return Err(Unsupported(
            "DOCKER_TLS_VERIFY is set, but neither DOCKER_CERT_PATH nor DOCKER_CONFIG nor HOME \
             says where the certificates are"
                .into(),
        ));
    };
    let from = match origin {
        Origin::DockerHost => {
            "the directory is DOCKER_CERT_PATH, else DOCKER_CONFIG, else ~/.docker".to_string()
        }
        other => other.to_string(),
    };
    let tls = Tls {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    if !tls.ca.is_file() {
        return Err(Unsupported(format!(
            "TLS to the engine needs the CA certificate {}, which does not exist ({from})",
            tls.ca.display()
        )));
    }
    if tls.cert.is_file() != tls.key.is_file() {
        return Err(Unsupported(format!(
            "TLS to the engine: {} and {} ({from}) go together; one of them is missing",
            tls.cert.display(),
            tls.key.display()
        )));
    }
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn docker_host_forms() {
        let e = resolve(&env_of(&[("DOCKER_HOST", "unix:///run/x.sock")])).unwrap();
        assert_eq!(
            (e.host.as_str(), e.tls.is_none()),
            ("unix:///run/x.sock", true)
        );
        assert_eq!(e.origin, Origin::DockerHost);
        let e = resolve(&env_of(&[("DOCKER_HOST", "tcp://10.0.0.1")])).unwrap();
        assert_eq!(e.host, "tcp://10.0.0.1:2375");
        let e = resolve(&env_of(&[("DOCKER_HOST", "tcp://10.0.0.1:4243/")])).unwrap();
        assert_eq!(e.host, "tcp://10.0.0.1:4243");
        let e = resolve(&env_of(&[("DOCKER_HOST", "tcp://[::1]")])).unwrap();
        assert_eq!(e.host, "tcp://[::1]:2375");
        let e = resolve(&env_of(&[("DOCKER_HOST", "tcp://[::1]:99")])).unwrap();
        assert_eq!(e.host, "tcp://[::1]:99");
        for bad in [
            "ssh://me@box",
            "npipe:////./pipe/docker_engine",
            "fd://",
            "ftp://x",
            "box:2375",
        ] {
            let err = resolve(&env_of(&[("DOCKER_HOST", bad)])).unwrap_err();
            assert!(err.0.contains(bad), "{err}");
        }
        let err = resolve(&env_of(&[("DOCKER_HOST", "ssh://me@box")])).unwrap_err();
        assert!(err.0.contains("ssh -nNT -L"), "{err}");
        let e = resolve(&env_of(&[])).unwrap();
        assert_eq!(
            (e.host.as_str(), &e.origin),
            (DEFAULT_HOST, &Origin::Default)
        );
        // Empty counts as unset, as for the docker CLI.
        let e = resolve(&env_of(&[("DOCKER_HOST", "")])).unwrap();
        assert_eq!(e.origin, Origin::Default);
    }

    #[test]
    fn tls_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let err = resolve(&env_of(&[
            ("DOCKER_HOST", "tcp://h"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", d),
        ]))
        .unwrap_err();
        assert!(err.0.contains("ca.pem"), "{err}");
        std::fs::write(dir.path().join("ca.pem"), "x").unwrap();
        let e = resolve(&env_of(&[
            ("DOCKER_HOST", "tcp://h"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", d),
        ]))
        .unwrap();
        assert_eq!(e.host, "tcp://h:2376");
        assert_eq!(e.tls.unwrap().ca, dir.path().join("ca.pem"));
        std::fs::write(dir.path().join("cert.pem"), "x").unwrap();
        let err = resolve(&env_of(&[
            ("DOCKER_HOST", "tcp://h"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", d),
        ]))
        .unwrap_err();
        assert!(err.0.contains("key.pem"), "{err}");
        // Without DOCKER_CERT_PATH: the config directory.
        let e = resolve(&env_of(&[
            ("DOCKER_HOST", "tcp://h:1"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CONFIG", d),
        ]))
        .unwrap_err();
        assert!(e.0.contains("key.pem"), "{e}");
        let err = resolve(&env_of(&[("DOCKER_HOST", "tcp://h"), ("DOCKER_TLS", "1")])).unwrap_err();
        assert!(err.0.contains("DOCKER_TLS_VERIFY=1"), "{err}");
    }

    fn write_context(dir: &Path, name: &str, host: &str, tls: bool) {
        let id = context_id(name);
        let meta = dir.join("contexts/meta").join(&id);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            format!(
                r#"{{"Name":"{name}","Metadata":{{"Description":""}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#
            ),
        )
        .unwrap();
        if tls {
            let t = dir.join("contexts/tls").join(&id).join("docker");
            std::fs::create_dir_all(&t).unwrap();
            for f in ["ca.pem", "cert.pem", "key.pem"] {
                std::fs::write(t.join(f), "x").unwrap();
            }
        }
    }

    #[test]
    fn contexts_as_the_docker_cli_keeps_them() {
        // The id is the SHA-256 of the name (as `docker context create` does).
        assert_eq!(
            context_id("default"),
            "37a8eec1ce19687d132fe29051dca629d164e2c4958ba141d5f4133a33f0688f"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        write_context(dir.path(), "remote", "tcp://10.1.1.1:2376", true);
        write_context(dir.path(), "local", "unix:///run/other.sock", false);
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{},"currentContext":"remote"}"#,
        )
        .unwrap();
        let e = resolve(&env_of(&[("DOCKER_CONFIG", d)])).unwrap();
        assert_eq!(e.host, "tcp://10.1.1.1:2376");
        let tls = e.tls.unwrap();
        assert!(tls
            .ca
            .ends_with(format!("{}/docker/ca.pem", context_id("remote"))));
        assert!(
            e.origin.to_string().contains("currentContext in"),
            "{}",
            e.origin
        );
        // DOCKER_CONTEXT wins over currentContext; DOCKER_HOST over both.
        let e = resolve(&env_of(&[
            ("DOCKER_CONFIG", d),
            ("DOCKER_CONTEXT", "local"),
        ]))
        .unwrap();
        assert_eq!(
            (e.host.as_str(), e.tls.is_none()),
            ("unix:///run/other.sock", true)
        );
        assert!(e.origin.to_string().contains("DOCKER_CONTEXT"));
        let e = resolve(&env_of(&[
            ("DOCKER_CONFIG", d),
            ("DOCKER_CONTEXT", "local"),
            ("DOCKER_HOST", "unix:///x.sock"),
        ]))
        .unwrap();
        assert_eq!(e.host, "unix:///x.sock");
        let e = resolve(&env_of(&[
            ("DOCKER_CONFIG", d),
            ("DOCKER_CONTEXT", "default"),
        ]))
        .unwrap();
        assert_eq!(e.host, DEFAULT_HOST);
        let err =
            resolve(&env_of(&[("DOCKER_CONFIG", d), ("DOCKER_CONTEXT", "gone")])).unwrap_err();
        assert!(
            err.0.contains("`gone`")
                && err.0.contains("DOCKER_CONTEXT")
                && err.0.contains("docker context ls"),
            "{err}"
        );
    }
}

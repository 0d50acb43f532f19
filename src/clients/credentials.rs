//! Registry credentials: environment variables per registry, then docker's
//! `config.json` (`auths`, `credHelpers`, `credsStore`). Passwords are
//! [`Secret`]s from the moment they are read. An identity token (what
//! `docker login` stores for registries whose token service hands out
//! refresh tokens, e.g. `az acr login`) is kept apart from a password: it is
//! an OAuth2 refresh token, exchanged at the token service, never sent as a
//! Basic password.

use crate::oci::reference::RegistryPrefix;
use crate::secret::Secret;
use anyhow::{Context, Result};
use base64::Engine;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    /// The password, or the identity token when `identity_token` is set.
    pub password: Secret,
    /// Where they came from, for messages (never the secret itself).
    pub source: String,
    /// `password` is an identity token (an OAuth2 refresh token): docker
    /// config's `identitytoken`, or a credential helper's answer with the
    /// user name `<token>`.
    pub identity_token: bool,
}

/// The user name docker's credential helpers give with an identity token.
pub const TOKEN_USERNAME: &str = "<token>";

/// `OPENIM_RELEASE_REGISTRY_<HOST>_USERNAME` / `_PASSWORD`, where `<HOST>` is
/// the host uppercased with every other character turned into `_`
/// (`ghcr.io` → `GHCR_IO`, `127.0.0.1:5000` → `127_0_0_1_5000`).
pub fn env_prefix(host: &str) -> String {
    let key: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("OPENIM_RELEASE_REGISTRY_{key}")
}

#[derive(Debug, Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(Debug, Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// `https://ghcr.io/v1/` → `ghcr.io`.
fn normalize_key(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

/// Credentials for a registry, or `None` to go anonymous.
pub fn lookup(registry: &RegistryPrefix) -> Result<Option<Credentials>> {
    let found = find(registry);
    match &found {
        Ok(Some(c)) => tracing::debug!(
            "credentials for {}: user {:?} from {}",
            registry.host,
            c.username,
            c.source
        ),
        Ok(None) => tracing::debug!("credentials for {}: none (anonymous)", registry.host),
        Err(e) => tracing::debug!("credentials for {}: {e:#}", registry.host),
    }
    found
}

fn find(registry: &RegistryPrefix) -> Result<Option<Credentials>> {
    let prefix = env_prefix(&registry.host);
    // Empty counts as unset: a workflow's `${{ vars.X }}` of a variable
    // that does not exist is an empty string.
    let user = std::env::var(format!("{prefix}_USERNAME"))
        .ok()
        .filter(|u| !u.is_empty());
    let pass = std::env::var(format!("{prefix}_PASSWORD"))
        .ok()
        .and_then(Secret::new);
    match (user, pass) {
        (Some(username), Some(password)) => {
            return Ok(Some(Credentials {
                username,
                password,
                source: format!("{prefix}_USERNAME/_PASSWORD"),
                identity_token: false,
            }))
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(crate::error::BadInput(format!(
                "{prefix}_USERNAME and {prefix}_PASSWORD must be set together"
            ))
            .into())
        }
        (None, None) => {}
    }
    let Some(path) = docker_config_path().filter(|p| p.is_file()) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading docker config {}", path.display()))?;
    let config: DockerConfig = serde_json::from_str(&text).map_err(|e| {
        crate::error::BadInput(format!(
            "parsing docker config {}: {}",
            path.display(),
            crate::output::text::serde_message(&without_values(&e.to_string()), "an object")
        ))
    })?;
    from_config(&config, registry, &path.display().to_string())
}

/// serde's message without the value it quotes (`invalid type: string
/// "user:password"` → `invalid type: string`): in a credentials file that
/// value may be the secret itself.
fn without_values(msg: &str) -> String {
    static QUOTED: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    QUOTED
        .get_or_init(|| {
            regex::Regex::new(
                r#"(invalid (?:type|value|length): [a-z ]+?) (?:"(?:[^"\\]|\\.)*"|`[^`]*`)"#,
            )
            .expect("static regex")
        })
        .replace_all(msg, "$1")
        .into_owned()
}

fn from_config(
    config: &DockerConfig,
    registry: &RegistryPrefix,
    path: &str,
) -> Result<Option<Credentials>> {
    let want = normalize_key(registry.auth_key());
    let host = registry.host.as_str();
    let matches = |key: &str| {
        let k = normalize_key(key);
        k == want || k == host
    };
    if let Some((_, helper)) = config.cred_helpers.iter().find(|(k, _)| matches(k)) {
        return run_helper(helper, registry).map(Some);
    }
    if let Some((key, entry)) = config.auths.iter().find(|(k, _)| matches(k)) {
        let source = format!("{path} auths[{key}]");
        if let Some(token) = entry.identitytoken.as_deref().and_then(Secret::new) {
            // `auth` may carry the user name beside it (`user:` with no
            // password); only for messages.
            let username = entry
                .username
                .clone()
                .filter(|u| !u.is_empty())
                .or_else(|| {
                    entry
                        .auth
                        .as_deref()
                        .and_then(|a| {
                            base64::engine::general_purpose::STANDARD
                                .decode(a.trim())
                                .ok()
                        })
                        .and_then(|b| String::from_utf8(b).ok())
                        .and_then(|d| d.split_once(':').map(|(u, _)| u.to_string()))
                        .filter(|u| !u.is_empty())
                })
                .unwrap_or_else(|| TOKEN_USERNAME.into());
            return Ok(Some(Credentials {
                username,
                password: token,
                source: format!("{source} identitytoken"),
                identity_token: true,
            }));
        }
        if let (Some(u), Some(p)) = (
            &entry.username,
            entry.password.as_deref().and_then(Secret::new),
        ) {
            return Ok(Some(Credentials {
                username: u.clone(),
                password: p,
                source,
                identity_token: false,
            }));
        }
        if let Some(auth) = &entry.auth {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    crate::error::BadInput(format!(
                        "{source}: `auth` is not base64 of user:password; run `docker login {host}` again"
                    ))
                })?;
            let (u, p) = decoded.split_once(':').ok_or_else(|| {
                crate::error::BadInput(format!(
                    "{source}: `auth` is not base64 of user:password; run `docker login {host}` again"
                ))
            })?;
            if let Some(password) = Secret::new(p) {
                return Ok(Some(Credentials {
                    username: u.to_string(),
                    password,
                    source,
                    identity_token: false,
                }));
            }
        }
    }
    if let Some(store) = &config.creds_store {
        // A store that has nothing for this registry is not an error; one
        // that is not installed is (docker itself fails the same way).
        return match run_helper(store, registry) {
            Ok(c) => Ok(Some(c)),
            Err(e) if helper_missing(&e) => Err(crate::error::BadInput(format!(
                "{path} names the credential store `{store}`, but docker-credential-{store} is \
                 not installed (not on PATH); install it, remove `credsStore`, or set \
                 {prefix}_USERNAME and {prefix}_PASSWORD",
                prefix = env_prefix(host)
            ))
            .into()),
            Err(_) => Ok(None),
        };
    }
    Ok(None)
}

/// Whether a helper failed because its program is not installed.
fn helper_missing(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::NotFound)
}

/// `docker-credential-<helper> get`, given the server URL on stdin.
fn run_helper(helper: &str, registry: &RegistryPrefix) -> Result<Credentials> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running credential helper {program} for {}", registry.host))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(registry.auth_key().as_bytes())
            .with_context(|| format!("talking to credential helper {program}"))?;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("running credential helper {program}"))?;
    if !out.status.success() {
        anyhow::bail!(
            "credential helper {program} has no credentials for {} ({})",
            registry.host,
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("reading the answer of credential helper {program}"))?;
    let password = Secret::new(answer.secret)
        .with_context(|| format!("credential helper {program} returned an empty secret"))?;
    // Docker's convention: the user name `<token>` marks the secret as an
    // identity token.
    let identity_token = answer.username == TOKEN_USERNAME;
    Ok(Credentials {
        username: answer.username,
        password,
        source: program,
        identity_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(s: &str) -> RegistryPrefix {
        RegistryPrefix::parse(s).unwrap()
    }

    /// Regression (corpus docker-config/auth-entry-a-string and
    /// password-a-number): serde quoted the wrong-typed value, which in
    /// config.json may be the password.
    #[test]
    fn parse_errors_never_quote_the_value() {
        for text in [
            r#"{"auths": {"h": "user:hunter2"}}"#,
            r#"{"auths": {"h": {"password": 8675309}}}"#,
            r#"{"auths": {"h": {"auth": true}}}"#,
            r#"{"credsStore": 3.25}"#,
        ] {
            let e = serde_json::from_str::<DockerConfig>(text).unwrap_err();
            let m = without_values(&e.to_string());
            assert!(m.starts_with("invalid type: "), "{m}");
            for value in ["hunter2", "8675309", "true", "3.25"] {
                assert!(!m.contains(value), "{m}");
            }
        }
    }

    #[test]
    fn env_keys() {
        assert_eq!(env_prefix("ghcr.io"), "OPENIM_RELEASE_REGISTRY_GHCR_IO");
        assert_eq!(
            env_prefix("127.0.0.1:5000"),
            "OPENIM_RELEASE_REGISTRY_127_0_0_1_5000"
        );
    }

    #[test]
    fn reads_auths_in_every_form() {
        let cfg: DockerConfig = serde_json::from_str(
            r#"{"auths":{
                "https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},
                "ghcr.io":{"username":"bot","password":"pw"},
                "https://quay.io":{"identitytoken":"tok"}}}"#,
        )
        .unwrap();
        let hub = from_config(&cfg, &reg("docker.io/openim"), "cfg")
            .unwrap()
            .unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.expose()),
            ("user", "pass")
        );
        let gh = from_config(&cfg, &reg("ghcr.io/openimsdk"), "cfg")
            .unwrap()
            .unwrap();
        assert_eq!(gh.username, "bot");
        let quay = from_config(&cfg, &reg("quay.io/x"), "cfg")
            .unwrap()
            .unwrap();
        assert!(quay.identity_token);
        assert_eq!(quay.password.expose(), "tok");
        assert!(!hub.identity_token && !gh.identity_token);
        assert!(from_config(&cfg, &reg("127.0.0.1:5000"), "cfg")
            .unwrap()
            .is_none());
        assert!(!format!("{hub:?}").contains("pass\""));
    }

    /// `docker login` to a registry whose token service returned a refresh
    /// token stores it as `identitytoken`, with `auth` holding `user:` (no
    /// password): the token is the credential, the user name only a label.
    #[test]
    fn identity_token_as_docker_login_stores_it() {
        let cfg: DockerConfig = serde_json::from_str(
            r#"{"auths":{"myreg.azurecr.io":{"auth":"MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwOg==",
                "identitytoken":"eyJhbGciOi.refresh"}}}"#,
        )
        .unwrap();
        let c = from_config(&cfg, &reg("myreg.azurecr.io/openim"), "cfg")
            .unwrap()
            .unwrap();
        assert!(c.identity_token);
        assert_eq!(c.password.expose(), "eyJhbGciOi.refresh");
        assert_eq!(c.username, "00000000-0000-0000-0000-000000000000");
        assert!(c.source.contains("identitytoken"), "{}", c.source);
    }
}

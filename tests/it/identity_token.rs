//! Credentials as Docker stores them: `docker login` to a registry whose
//! token service hands out refresh tokens (Azure's, and the test token
//! server) writes an `identitytoken` to config.json, which is exchanged at
//! the token service with the OAuth2 refresh-token grant, never sent as a
//! Basic password.

use crate::build::fixture;
use crate::common::*;
use crate::need_services;
use crate::services::{self, Services};
use std::path::Path;

/// `docker login` (the CLI, through the test dockerd, which does the
/// login) into a fresh DOCKER_CONFIG directory; returns config.json.
fn docker_login(s: &Services, config_dir: &Path) -> serde_json::Value {
    use std::io::Write;
    let docker = if Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    };
    let mut child = std::process::Command::new(docker)
        .env("DOCKER_HOST", &s.docker_host)
        .env("DOCKER_CONFIG", config_dir)
        .args([
            "login",
            "--username",
            &s.auth_user,
            "--password-stdin",
            &s.token_registry,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(s.auth_password.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docker login: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(config_dir.join("config.json")).unwrap()).unwrap()
}

/// The token server's log lines about `path` (a repository namespace).
fn token_log_lines(s: &Services, path: &str) -> Vec<String> {
    std::fs::read_to_string(&s.token_log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&format!("repository%3A{}", path.replace('/', "%2F"))))
        .map(str::to_string)
        .collect()
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn identity_token_from_docker_login_is_exchanged_as_a_refresh_token() {
    let s = need_services!();
    let path = services::unique_namespace("identity");
    let ns = format!("{}/{path}", s.token_registry);
    let repo = fixture(std::slice::from_ref(&ns), &["linux/amd64"]);
    let config_dir = tempfile::tempdir().unwrap();
    let config = docker_login(s, config_dir.path());
    let entry = &config["auths"][&s.token_registry];
    let token = entry["identitytoken"]
        .as_str()
        .unwrap_or_else(|| {
            panic!(
                "docker login stored no identitytoken ({config}): the token server of the \
                 services predates refresh tokens; restart them (scripts/services start)"
            )
        })
        .to_string();

    let out = repo
        .bin()
        .env("DOCKER_HOST", &s.docker_host)
        .env("DOCKER_CONFIG", config_dir.path())
        .env("GITHUB_ACTIONS", "true")
        .args(["build", "--tag", "v1", "--output", "json"])
        .args(["--service", "openim-api"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let digest = json["images"][0]["digest"].as_str().unwrap();
    let login = Some((s.auth_user.as_str(), s.auth_password.as_str()));
    assert_eq!(
        services::digest_of(&format!("{ns}/openim-api:v1"), login).unwrap(),
        digest
    );
    // The token came from the refresh-token grant, with the scope and
    // service the registry named; the refresh token never went as a
    // password, and was masked for the Actions log but never printed.
    let lines = token_log_lines(s, &path);
    assert!(
        lines.iter().any(|l| l.starts_with("POST /token?")
            && l.contains("grant_type=refresh_token")
            && l.contains("service=openim-release-test-registry")
            && l.contains("client_id=")
            && l.ends_with(&format!("user={} 200", s.auth_user))),
        "{lines:#?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("refresh-token-as-password")),
        "a refresh token was sent as a Basic password: {lines:#?}"
    );
    assert!(stderr.contains(&format!("::add-mask::{token}")), "{stderr}");
    assert_eq!(stderr.matches(&token).count(), 1, "{stderr}");

    // The token service refuses a refresh token sent as a Basic password:
    // what the build would have met had it sent one.
    let realm_out = std::process::Command::new("curl")
        .args(["-q", "--noproxy", "*", "-s", "-D", "-", "-o", "/dev/null"])
        .arg(format!("http://{}/v2/", s.token_registry))
        .output()
        .unwrap();
    let headers = String::from_utf8_lossy(&realm_out.stdout).to_string();
    let realm = headers
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("www-authenticate:")
                .then(|| l.split("realm=\"").nth(1)?.split('"').next())
                .flatten()
        })
        .unwrap_or_else(|| panic!("no bearer realm in {headers}"))
        .to_string();
    let basic = std::process::Command::new("curl")
        .args([
            "-q",
            "--noproxy",
            "*",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(["-u", &format!("{}:{token}", s.auth_user)])
        .arg(format!("{realm}?service=openim-release-test-registry"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&basic.stdout), "401");

    // A revoked (unknown) identity token: refused, the registry and the
    // remedy named, the token not shown.
    let revoked = "rt.0000000000000000000000000000000000000000";
    let mut cfg = config.clone();
    cfg["auths"][&s.token_registry]["identitytoken"] = revoked.into();
    std::fs::write(
        config_dir.path().join("config.json"),
        serde_json::to_string(&cfg).unwrap(),
    )
    .unwrap();
    let err = fails_with(
        repo.bin()
            .env("DOCKER_HOST", &s.docker_host)
            .env("DOCKER_CONFIG", config_dir.path())
            .args(["build", "--tag", "v2", "--service", "openim-api"]),
        1,
    );
    assert!(
        err.contains(&s.token_registry)
            && err.contains("identity token")
            && err.contains("docker login"),
        "{err}"
    );
    assert!(!err.contains(revoked), "{err}");
    assert!(services::inspect_raw(&format!("{ns}/openim-api:v2"), login).is_err());

    // A registry that asks for Basic auth (htpasswd) is not sent the
    // identity token as a password: refused, saying why.
    let basic_ns = format!("{}/{path}", s.auth_registry);
    let repo = fixture(std::slice::from_ref(&basic_ns), &["linux/amd64"]);
    std::fs::write(
        config_dir.path().join("config.json"),
        serde_json::json!({"auths": {&s.auth_registry: {"identitytoken": token}}}).to_string(),
    )
    .unwrap();
    let err = fails_with(
        repo.bin()
            .env("DOCKER_HOST", &s.docker_host)
            .env("DOCKER_CONFIG", config_dir.path())
            .args(["build", "--tag", "v1", "--service", "openim-api"]),
        1,
    );
    assert!(
        err.contains(&s.auth_registry) && err.contains("Basic") && err.contains("identity token"),
        "{err}"
    );
    assert!(!err.contains(&token), "{err}");
}

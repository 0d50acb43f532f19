//! The debug log (`-v`, `-vv`, `RUST_LOG`): on stderr only, showing what
//! each step sends and receives, and never a secret, with the real servers:
//! the htpasswd and token registries, the git server and the fake GitHub.

use crate::common::*;
use crate::fake_github::FakeGitHub;
use crate::need_services;
use crate::services::{self, Services};
use base64::Engine;

/// The two ways of asking for everything: `-vv` and `RUST_LOG=trace`
/// (every crate, not only ours).
fn loudest(cmd: &mut assert_cmd::Command, how: &str) {
    match how {
        "-vv" => {
            cmd.arg("-vv");
        }
        _ => {
            cmd.env("RUST_LOG", "trace");
        }
    }
}

/// Asserts that none of `secrets` (nor a JWT, as the token server issues)
/// is in `text`.
fn assert_clean(text: &str, secrets: &[&str], what: &str) {
    for s in secrets {
        assert!(!text.contains(s), "{what} shows a secret:\n{text}");
    }
    let jwt = regex::Regex::new(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ").unwrap();
    assert!(!jwt.is_match(text), "{what} shows a bearer token:\n{text}");
}

#[test]
fn without_v_there_is_no_log_and_with_it_stdout_is_unchanged() {
    let repo = TestRepo::new();
    let plain = repo.bin().args(["tag", "--stage", "dev"]).output().unwrap();
    assert!(plain.status.success());
    assert!(!String::from_utf8_lossy(&plain.stderr).contains("DEBUG"));
    for how in ["-v", "-vv"] {
        let out = repo
            .bin()
            .args([how, "tag", "--stage", "dev"])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, plain.stdout, "{how}: the log went to stdout");
    }
}

#[test]
fn quiet_and_verbose_together_are_refused() {
    let repo = TestRepo::new();
    for args in [["-q", "-v"], ["-v", "--quiet"]] {
        let err = fails_with(repo.bin().args(args).args(["tag", "--stage", "dev"]), 2);
        assert!(err.contains("cannot be used with"), "{err}");
    }
}

fn build_fixture(s: &Services) -> (TestRepo, String, String) {
    let auth_ns = services::fresh_namespace(&s.auth_registry, "log");
    let token_ns = services::fresh_namespace(&s.token_registry, "log");
    let repo = crate::build::fixture(&[auth_ns.clone(), token_ns.clone()], &["linux/amd64"]);
    (repo, auth_ns, token_ns)
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn build_logs_registry_traffic_without_credentials() {
    let s = need_services!();
    let (repo, _, _) = build_fixture(s);
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", s.auth_user, s.auth_password));
    let token = "ghp_debuglogtoken0123456789";
    for (n, how) in ["-vv", "RUST_LOG"].into_iter().enumerate() {
        // New inputs each time, so that the image is built (not only tagged).
        repo.write("cmd/openim-api/main.txt", &format!("build {n}\n"));
        repo.git(&["commit", "-q", "-am", "change"]);
        let mut cmd = repo.bin();
        cmd.env("DOCKER_HOST", &s.docker_host)
            .env("GITHUB_TOKEN", token)
            .args([
                "build",
                "--service",
                "openim-api",
                "--tag",
                &format!("v{n}"),
            ]);
        for registry in [&s.auth_registry, &s.token_registry] {
            let key = crate::build::credentials_key(registry);
            cmd.env(format!("{key}_USERNAME"), &s.auth_user)
                .env(format!("{key}_PASSWORD"), &s.auth_password);
        }
        loudest(&mut cmd, how);
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{how}: {stderr}");
        assert_clean(&stderr, &[&s.auth_password, &basic, token], how);
        assert_clean(&stdout, &[&s.auth_password, &basic, token], how);
        assert!(!stdout.contains("DEBUG"), "{how}: log on stdout: {stdout}");
        // What was sent and received, and the auth flow, by name only.
        for expected in [
            "API version",
            "HTTP 401",
            "challenge",
            "token service",
            "got a bearer token",
            "-> HTTP 201",
            &format!("user {:?}", s.auth_user),
            "step: ",
        ] {
            assert!(
                stderr.contains(expected),
                "{how}: no `{expected}`:\n{stderr}"
            );
        }
    }
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn gitops_logs_git_and_github_traffic_without_the_token() {
    let s = need_services!();
    let (url, name) = crate::gitops::deploy_remote(s, "ghcr.io/openimsdk");
    let repository = format!("openimsdk/{name}");
    let src = crate::chart::source_repo(
        "ghcr.io/openimsdk",
        &url,
        &repository,
        "gitops:\n  labels: [release]\n  reviewers: [reviewer-bot]\n",
    );
    src.atag(&["v3.8.0"]);
    src.commit("fix");
    src.atag(&["v3.8.1-rc.0"]);
    let gh = FakeGitHub::start(&s.git_token);
    for (n, how) in ["-vv", "RUST_LOG"].into_iter().enumerate() {
        // Retries to log: a 502, then a secondary rate limit.
        gh.faults(serde_json::json!([
            {"method": "GET", "path_regex": "/pulls", "times": 1, "status": 502},
            {"method": "POST", "path_regex": "/pulls$", "times": 1, "kind": "secondary_rate_limit", "retry_after": 1}
        ]));
        let mut cmd = src.bin();
        cmd.env("GITHUB_TOKEN", &s.git_token)
            .env("GITHUB_API_URL", &gh.url)
            .args(["gitops", "--stage", "rc", "--no-verify"])
            .args(["--image-tag", &format!("v3.8.1-rc.{n}")]);
        loudest(&mut cmd, how);
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{how}: {stderr}");
        assert_clean(&stderr, &[&s.git_token], how);
        assert_clean(&stdout, &[&s.git_token], how);
        let pulls = format!("/repos/{repository}/pulls");
        let mut expected = vec![
            "clone ",
            "offering GITHUB_TOKEN/GH_TOKEN as user x-access-token",
            "push ",
            &pulls,
            "-> HTTP 502",
            "waiting",
        ];
        if n == 0 {
            expected.extend(["secondary rate limit", "requested_reviewers", "labels"]);
        }
        for e in expected {
            assert!(stderr.contains(e), "{how}: no `{e}`:\n{stderr}");
        }
    }
    assert_eq!(gh.pulls(&repository).len(), 1);
}

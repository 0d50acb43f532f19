//! Many at once (docs/safety.md § Many at once): concurrent rc reservations
//! over GitHub's transport (smart HTTP with a token), concurrent builds of
//! the same services to the same registry, and concurrent releases of one
//! repository into one deploy repository.

use crate::common::*;
use crate::release::{world_with, World};
use crate::services::{self, Services};
use std::path::Path;
use std::process::Stdio;

/// Start `n` processes from `make`, wait for all; their outputs.
fn all_at_once(
    n: usize,
    make: impl Fn(usize) -> std::process::Command,
) -> Vec<std::process::Output> {
    let children: Vec<_> = (0..n)
        .map(|i| {
            make(i)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A clone of `url` on the git server whose origin carries no credentials
/// (the token comes from GITHUB_TOKEN, as in Actions).
fn http_clone(s: &Services, url: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(
        Path::new("/"),
        &[
            "clone",
            "-q",
            &services::authed(s, url),
            dir.path().to_str().unwrap(),
        ],
    );
    git(dir.path(), &["remote", "set-url", "origin", url]);
    dir
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn twenty_concurrent_rc_reservations_over_smart_http_claim_distinct_numbers() {
    let s = services::services();
    let (_, url) = services::git_server_repo(s, "rc20");
    let seed = TestRepo::new();
    seed.atag(&["v3.8.0"]);
    seed.git(&["push", "-q", &services::authed(s, &url), "main", "--tags"]);
    let clones: Vec<_> = (0..20).map(|_| http_clone(s, &url)).collect();
    let outs = all_at_once(20, |i| {
        let mut cmd = std_bin(clones[i].path());
        cmd.env("GITHUB_TOKEN", &s.git_token)
            .args(["tag", "--stage", "rc", "--push", "--output", "json", "-q"]);
        cmd
    });
    let mut claimed: Vec<String> = outs
        .iter()
        .map(|o| json_of(o)["git_tag"].as_str().unwrap().to_string())
        .collect();
    claimed.sort_by_key(|t| t.rsplit('.').next().unwrap().parse::<u32>().unwrap());
    let expected: Vec<String> = (0..20).map(|n| format!("v3.8.1-rc.{n}")).collect();
    assert_eq!(claimed, expected, "20 runs, 20 distinct numbers, none lost");
    let listed = git(
        Path::new("/"),
        &["ls-remote", "--tags", &services::authed(s, &url)],
    );
    let mut on_server: Vec<String> = listed
        .lines()
        .filter_map(|l| l.split("refs/tags/").nth(1))
        .filter(|t| t.starts_with("v3.8.1-rc.") && !t.ends_with("^{}"))
        .map(str::to_string)
        .collect();
    on_server.sort_by_key(|t| t.rsplit('.').next().unwrap().parse::<u32>().unwrap());
    assert_eq!(on_server, expected);
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn five_concurrent_builds_of_the_same_services_leave_complete_indexes() {
    let s = services::services();
    let ns = services::fresh_namespace(&s.registry, "build5");
    let repo = crate::build::fixture(std::slice::from_ref(&ns), &["linux/amd64", "linux/arm64"]);
    let outs = all_at_once(5, |_| {
        let mut cmd = std_bin(repo.path());
        cmd.env("DOCKER_HOST", &s.docker_host).args([
            "build", "--tag", "v1", "--tag", "latest", "--output", "json", "-q",
        ]);
        cmd
    });
    for out in &outs {
        json_of(out);
    }
    for svc in crate::build::SERVICES {
        let v1 = services::digest_of(&format!("{ns}/{svc}:v1"), None).unwrap();
        assert_eq!(
            services::digest_of(&format!("{ns}/{svc}:latest"), None).unwrap(),
            v1,
            "{svc}: the tags of one run point at one index"
        );
        let index = services::inspect_raw(&format!("{ns}/{svc}@{v1}"), None).unwrap();
        let platforms: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["platform"]["architecture"].as_str())
            .collect();
        assert_eq!(platforms, ["amd64", "arm64"], "{svc}: a complete index");
        for m in index["manifests"].as_array().unwrap() {
            let child = format!("{ns}/{svc}@{}", m["digest"].as_str().unwrap());
            services::inspect_raw(&child, None)
                .unwrap_or_else(|e| panic!("{svc}: {child} missing: {e}"));
        }
    }
}

fn world() -> World {
    world_with(|s, ns| {
        let (deploy_url, name) = crate::gitops::deploy_remote(s, ns);
        let cfg = format!(
            "deploy:\n  url: {deploy_url}\n  repository: openimsdk/{name}\n  base: main\n  charts:\n    - path: charts/openim-server\n  manifests: [k8s/openim-api.yaml]\n"
        );
        (deploy_url, name, cfg)
    })
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn ten_concurrent_rc_releases_end_with_one_pull_request_for_the_highest() {
    let w = world();
    // Ten CI jobs: ten checkouts of one origin.
    let clones: Vec<_> = (0..10).map(|_| clone_of(w.origin.path(), &[])).collect();
    let outs = all_at_once(10, |i| {
        let mut cmd = std_bin(clones[i].path());
        cmd.env("DOCKER_HOST", &w.s.docker_host)
            .env("GITHUB_TOKEN", &w.s.git_token)
            .env("GITHUB_API_URL", &w.gh.url)
            .args(["release", "--stage", "rc", "--output", "json", "-q"]);
        cmd
    });
    let reports: Vec<serde_json::Value> = outs.iter().map(json_of).collect();
    let mut numbers: Vec<u64> = reports
        .iter()
        .map(|r| r["tag"]["rc"].as_u64().unwrap())
        .collect();
    numbers.sort();
    assert_eq!(
        numbers,
        (0..10).collect::<Vec<u64>>(),
        "each run its own rc"
    );
    let highest = "v3.8.1-rc.9";
    // One pull request; its branch is one commit on main, deploying the
    // highest rc with that run's digest.
    let pulls = w.gh.pulls(&w.repository);
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    let branch = w.deploy_branch("openim-release/rc");
    let log = git(branch.path(), &["log", "--format=%B", "origin/main..HEAD"]);
    assert!(
        log.contains(&format!("Openim-Release-Tag: {highest}")),
        "the branch deploys another candidate: {log}"
    );
    let manifest = std::fs::read_to_string(branch.path().join("k8s/openim-api.yaml")).unwrap();
    let winner = reports
        .iter()
        .find(|r| r["tag"]["git_tag"] == highest)
        .unwrap();
    let digest = winner["build"]["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["service"] == "openim-api")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        manifest.contains(&format!(":{highest}@{digest}")),
        "{manifest}"
    );
    // The pull request describes what its branch deploys.
    let body = pulls[0]["body"].as_str().unwrap_or_default();
    assert!(body.contains(highest), "{body}");
}

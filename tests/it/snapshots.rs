//! What people read, as insta snapshots (tests/it/snapshots/*.snap): the
//! `--help` of every command, and the unified diffs and notes of `chart
//! apply --dry-run` on the helm-charts fixture. (The plan's text is in
//! release.rs, the pull request body and step summary in gitops.rs: they
//! need the test services.)
//!
//! A change to any of them shows as a failing snapshot with its diff; when
//! the new text is right, `INSTA_UPDATE=always cargo test` (or `cargo insta
//! review`) rewrites the .snap files, which are reviewed like code.

use crate::common::*;
use clap::CommandFactory;
use std::path::Path;

/// Every command path: `[]` (the binary), `["tag"]`, `["build", "matrix"]`, …
fn command_paths() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(path.clone());
        for sub in cmd.get_subcommands() {
            let mut p = path.clone();
            p.push(sub.get_name().to_string());
            walk(sub, p, out);
        }
    }
    let mut out = Vec::new();
    walk(&openim_release::cli::Cli::command(), Vec::new(), &mut out);
    out
}

#[test]
fn help_of_every_command() {
    let paths = command_paths();
    assert!(paths.len() > 10, "{paths:?}");
    let dir = tempfile::tempdir().unwrap();
    for path in paths {
        let mut cmd = bin(dir.path());
        let out = stdout_ok(cmd.args(&path).arg("--help"));
        let name = if path.is_empty() {
            "help".to_string()
        } else {
            format!("help_{}", path.join("_"))
        };
        insta::assert_snapshot!(
            name,
            out,
            &format!("openim-release {} --help", path.join(" "))
        );
    }
}

/// A source repository (open-im-server's shape) pushing to `registries` (a
/// YAML list) whose HEAD carries the rc v3.8.1-rc.0, with `deploy` as its
/// deploy section.
fn source(registries: &str, deploy: &str) -> TestRepo {
    let repo = TestRepo::new();
    let services: String = [
        "openim-api",
        "openim-msggateway",
        "openim-msgtransfer",
        "openim-push",
        "openim-rpc-user",
    ]
    .iter()
    .map(|s| format!("    - {{ name: {s}, dockerfile: Dockerfile }}\n"))
    .collect();
    repo.write(
        "openim-release.yaml",
        &format!("images:\n  registries: {registries}\n  services:\n{services}{deploy}"),
    );
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "config"]);
    repo.atag(&["v3.8.0"]);
    repo.commit("fix");
    repo.atag(&["v3.8.1-rc.0"]);
    repo
}

/// `chart apply --stage rc --dry-run` on a copy of tests/fixtures/helm-charts:
/// stdout (the diffs) and stderr (skipped subcharts, warnings, the closing
/// line), and that nothing was written.
fn apply_dry_run(registries: &str, deploy: &str) -> String {
    let src = source(registries, deploy);
    let dir = crate::deploy_fixture::fixture("helm-charts");
    let before = crate::deploy_fixture::snapshot(dir.path());
    let out = src
        .bin()
        .args([
            "chart",
            "apply",
            "--stage",
            "rc",
            "--no-verify",
            "--dry-run",
        ])
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(crate::deploy_fixture::snapshot(dir.path()), before);
    let text = format!(
        "$ openim-release chart apply --dir helm-charts --stage rc --no-verify --dry-run\n{}\n-- stderr --\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    scrub_dir(&text, dir.path())
}

fn scrub_dir(text: &str, dir: &Path) -> String {
    text.replace(&format!("{}/", dir.display()), "")
        .replace(&dir.display().to_string(), "helm-charts")
}

/// openimsdk/helm-charts' server umbrella and the installation's override
/// file (whose images come from a mirror registry, also pushed to): every
/// service subchart found by its image, the override file's
/// `<subchart>.image.tag`, the chart bumped once; the infra subchart, the
/// image the source does not build and the foreign registry named.
#[test]
fn chart_apply_dry_run_diffs_of_the_server_umbrella() {
    insta::assert_snapshot!(apply_dry_run(
        "[ghcr.io/openimsdk, registry.example.org/openimsdk]",
        "deploy:\n  charts:\n    - path: charts/openim-server\n      values: [charts/openim-server/values.yaml, k8s-open-im-server-config.yaml]\n",
    ));
}

/// The chat umbrella, whose subcharts deploy the placeholder `nginx`: only
/// the override file names real images, which are not this source's
/// services, so nothing changes and the warning says why.
#[test]
fn chart_apply_dry_run_of_a_chart_that_deploys_none_of_the_services() {
    insta::assert_snapshot!(apply_dry_run(
        "[ghcr.io/openimsdk]",
        "deploy:\n  charts:\n    - path: charts/openim-chat\n      values: [charts/openim-chat/values.yaml, k8s-chat-server-config.yaml]\n",
    ));
}

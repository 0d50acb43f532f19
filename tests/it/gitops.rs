//! `gitops`: the real smart-HTTP git server and the fake GitHub API.

use crate::chart::source_repo;
use crate::common::*;
use crate::deploy_fixture::{read, write_layout};
use crate::fake_github::FakeGitHub;
use crate::services::{self, authed, Services};
use std::path::Path;

/// A deploy repository on the git server, seeded with the OpenIM layout
/// whose images live in `registry`. Returns (URL without credentials, name).
pub fn deploy_remote(s: &Services, registry: &str) -> (String, String) {
    let (_, url) = services::git_server_repo(s, "deploy");
    let seed = TestRepo::empty();
    write_layout(seed.path(), registry);
    seed.git(&["add", "-A"]);
    seed.git(&["commit", "-q", "-m", "seed"]);
    seed.git(&["push", "-q", &authed(s, &url), "main"]);
    let name = url
        .rsplit('/')
        .next()
        .unwrap()
        .trim_end_matches(".git")
        .to_string();
    (url, name)
}

/// Clone the deploy repository's branch into a temp dir (for assertions).
pub fn clone_branch(s: &Services, url: &str, branch: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(
        Path::new("/"),
        &[
            "clone",
            "-q",
            "-b",
            branch,
            &authed(s, url),
            dir.path().to_str().unwrap(),
        ],
    );
    dir
}

fn remote_sha(s: &Services, url: &str, branch: &str) -> Option<String> {
    let out = git(
        Path::new("/"),
        &[
            "ls-remote",
            &authed(s, url),
            &format!("refs/heads/{branch}"),
        ],
    );
    out.split_whitespace().next().map(str::to_string)
}

struct Setup {
    s: &'static Services,
    url: String,
    repository: String,
    gh: FakeGitHub,
    src: TestRepo,
}

fn setup(extra_config: &str) -> Setup {
    let s = crate::services::services();
    let (url, name) = deploy_remote(s, "ghcr.io/openimsdk");
    let repository = format!("openimsdk/{name}");
    let src = source_repo("ghcr.io/openimsdk", &url, &repository, extra_config);
    src.atag(&["v3.8.0"]);
    src.commit("fix");
    // The rc being deployed: `--stage rc` means the one HEAD carries.
    src.atag(&["v3.8.1-rc.0"]);
    let gh = FakeGitHub::start(&s.git_token);
    Setup {
        s,
        url,
        repository,
        gh,
        src,
    }
}

impl Setup {
    fn gitops(&self) -> assert_cmd::Command {
        let mut cmd = self.src.bin();
        cmd.env("GITHUB_TOKEN", &self.s.git_token)
            .env("GITHUB_API_URL", &self.gh.url)
            .args(["gitops", "--stage", "rc", "--no-verify"]);
        cmd
    }
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn opens_one_pull_request_and_a_rerun_changes_nothing() {
    let t = setup("gitops:\n  labels: [release, rc]\n  reviewers: [reviewer-bot]\n");
    let main_before = remote_sha(t.s, &t.url, "main").unwrap();
    let json = json_ok(&mut t.gitops());
    assert_eq!(json["changed"], true);
    assert_eq!(json["pr_action"], "created");
    assert!(json["api_calls"].as_u64().unwrap() <= 5, "{json}");
    // The branch: one commit on top of main, exactly the deploy edits.
    let checkout = clone_branch(t.s, &t.url, "openim-release/rc");
    let root = checkout.path();
    assert_eq!(git(root, &["rev-parse", "HEAD~1"]), main_before);
    assert_eq!(
        git(root, &["log", "-1", "--format=%s"]),
        "deploy(rc): v3.8.1-rc.0"
    );
    let changed = git(root, &["diff", "--name-only", "HEAD~1", "HEAD"]);
    let mut files: Vec<&str> = changed.lines().collect();
    files.sort();
    assert_eq!(
        files,
        [
            "charts/openim-server/Chart.yaml",
            "charts/openim-server/charts/openim-api/Chart.yaml",
            "charts/openim-server/charts/openim-api/values.yaml",
            "charts/openim-server/charts/openim-push/Chart.yaml",
            "charts/openim-server/charts/openim-push/values.yaml",
            "charts/openim-server/charts/openim-rpc-user/Chart.yaml",
            "charts/openim-server/charts/openim-rpc-user/values.yaml",
            "docker-compose/.env",
            "k8s-open-im-server-config.yaml",
            "k8s/openim-api.yaml",
        ]
    );
    assert!(read(root, "docker-compose/.env").contains("openim-api:v3.8.1-rc.0\n"));
    // main itself is untouched.
    assert_eq!(remote_sha(t.s, &t.url, "main").unwrap(), main_before);

    let pulls = t.gh.pulls(&t.repository);
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    let pr = &pulls[0];
    assert_eq!(pr["head"], "openim-release/rc");
    assert_eq!(pr["base"], "main");
    let body = pr["body"].as_str().unwrap();
    assert!(
        body.contains("| openim-push |") && body.contains("`v3.8.1-rc.0`"),
        "{body}"
    );
    assert!(body.contains("`v3.8.0`"), "old tag listed: {body}");
    assert_eq!(pr["reviewers"], serde_json::json!(["reviewer-bot"]));
    let labels: Vec<&str> = pr["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().or(l["name"].as_str()).unwrap())
        .collect();
    assert_eq!(labels, ["release", "rc"]);

    // Re-run: branch and PR up to date; no push, no new commit, no new PR.
    let tip = remote_sha(t.s, &t.url, "openim-release/rc").unwrap();
    let again = json_ok(&mut t.gitops());
    assert_eq!(again["pushed"], false);
    assert_eq!(again["pr_action"], "up-to-date");
    assert_eq!(remote_sha(t.s, &t.url, "openim-release/rc").unwrap(), tip);
    assert_eq!(t.gh.pulls(&t.repository).len(), 1);
    assert!(again["api_calls"].as_u64().unwrap() <= 2, "{again}");

    // The reviewer reviewed (GitHub drops them from the requested list); a
    // new candidate updates the PR without asking them again.
    let number = pr["number"].as_u64().unwrap();
    t.gh.reviewed(&t.repository, number, "reviewer-bot", &t.s.git_token);
    let next = json_ok(t.gitops().args(["--image-tag", "v3.8.1-rc.1"]));
    assert_eq!(next["pr_action"], "updated");
    let pulls = t.gh.pulls(&t.repository);
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0]["reviewers"], serde_json::json!([]), "{}", pulls[0]);
    assert!(pulls[0]["body"].as_str().unwrap().contains("v3.8.1-rc.1"));
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn github_faults_are_retried_and_already_exists_is_resolved() {
    let t = setup("");
    t.gh.faults(serde_json::json!([
        {"method": "GET", "path_regex": "/pulls", "times": 1, "status": 502},
        {"method": "POST", "path_regex": "/pulls$", "times": 1, "kind": "secondary_rate_limit", "retry_after": 1},
        {"method": "POST", "path_regex": "/pulls$", "times": 1, "kind": "already_exists", "create_first": true}
    ]));
    let json = json_ok(&mut t.gitops());
    assert_eq!(json["changed"], true);
    assert_eq!(t.gh.pulls(&t.repository).len(), 1);
    assert!(
        matches!(
            json["pr_action"].as_str(),
            Some("updated") | Some("up-to-date")
        ),
        "{json}"
    );
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn concurrent_runs_open_one_pull_request() {
    let t = setup("");
    let spawn = || {
        let mut cmd = std_bin(t.src.path());
        cmd.env("GITHUB_TOKEN", &t.s.git_token)
            .env("GITHUB_API_URL", &t.gh.url)
            .args(["gitops", "--stage", "rc", "--no-verify", "-q"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(t.gh.pulls(&t.repository).len(), 1);
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn dry_run_shows_the_diff_and_the_pr_and_touches_nothing() {
    let t = setup("");
    let out = stdout_ok(t.gitops().arg("--dry-run"));
    assert!(
        out.contains("diff --git a/docker-compose/.env b/docker-compose/.env"),
        "{out}"
    );
    assert!(
        out.contains("+OPENIM_API_IMAGE=ghcr.io/openimsdk/openim-api:v3.8.1-rc.0"),
        "{out}"
    );
    assert!(out.contains("would push branch openim-release/rc"), "{out}");
    assert!(remote_sha(t.s, &t.url, "openim-release/rc").is_none());
    assert!(t.gh.pulls(&t.repository).is_empty());
    assert_eq!(
        t.gh.state()["requests"].as_array().map_or(0, |r| r.len()),
        0
    );
}

/// What reviewers read: the pull request (title and body), and what the
/// Actions step gets (its outputs and the step summary), as snapshots
/// (tests/it/snapshots/). The run's own names are scrubbed: the deploy
/// repository, the fake GitHub's port, commit shas.
#[test]
#[ignore = "needs the services of scripts/test"]
fn the_pull_request_and_the_step_outputs_as_people_read_them() {
    let t = setup("gitops:\n  labels: [release]\n");
    let dir = tempfile::tempdir().unwrap();
    let (summary, outputs) = (dir.path().join("summary.md"), dir.path().join("output"));
    std::fs::write(&summary, "").unwrap();
    std::fs::write(&outputs, "").unwrap();
    stdout_ok(
        t.gitops()
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_OUTPUT", &outputs),
    );
    let pulls = t.gh.pulls(&t.repository);
    assert_eq!(pulls.len(), 1);
    // The fake keeps a branch as a name or as GitHub's {"ref": …}.
    let text = |v: &serde_json::Value| {
        v.as_str()
            .or_else(|| v["ref"].as_str())
            .or_else(|| v["name"].as_str())
            .map_or_else(|| v.to_string(), str::to_string)
    };
    let labels: Vec<String> = pulls[0]["labels"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    let pr = format!(
        "title: {}\nhead: {}\nbase: {}\nlabels: {}\n\n{}",
        text(&pulls[0]["title"]),
        text(&pulls[0]["head"]),
        text(&pulls[0]["base"]),
        labels.join(", "),
        text(&pulls[0]["body"])
    );
    insta::with_settings!({filters => vec![
        (r"deploy-\d+-\d+", "deploy-[n]"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[port]"),
        (r"\b[0-9a-f]{40}\b", "[sha]"),
        (r"ghadelimiter_[0-9a-f-]+", "ghadelimiter_[id]"),
        (r#""commit":"[0-9a-f]{7,40}""#, r#""commit":"[sha]""#),
    ]}, {
        insta::assert_snapshot!("gitops_pull_request", pr);
        insta::assert_snapshot!("gitops_github_output", std::fs::read_to_string(&outputs).unwrap());
        insta::assert_snapshot!("gitops_step_summary", std::fs::read_to_string(&summary).unwrap());
    });
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn wrong_token_is_a_clear_error_and_never_printed() {
    let t = setup("");
    let err = fails_with(t.gitops().env("GITHUB_TOKEN", "wrong-token-abc"), 1);
    assert!(
        err.contains("cloning") && err.contains("GITHUB_TOKEN"),
        "{err}"
    );
    assert!(!err.contains("wrong-token-abc"), "{err}");
    assert!(t.gh.pulls(&t.repository).is_empty());
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn push_mode_commits_on_main_and_survives_a_moving_base() {
    let t = setup("");
    // The first push finds main moved: a hook on the server commits to main
    // (as a concurrent pusher would) and refuses that push once.
    let name = t.url.rsplit('/').next().unwrap();
    let hook = t.s.git_root.join(name).join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\nset -e\nif [ ! -f moved ]; then\n  touch moved\n  unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES\n  c=$(git commit-tree -p refs/heads/main -m 'concurrent change' 'refs/heads/main^{tree}')\n  git update-ref refs/heads/main \"$c\"\n  echo 'main moved meanwhile' >&2\n  exit 1\nfi\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();

    let out = t
        .gitops()
        .args(["--mode", "push", "--output", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("moved meanwhile"), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["pushed"], true);
    let after = clone_branch(t.s, &t.url, "main");
    assert_eq!(
        git(after.path(), &["log", "-1", "--format=%s"]),
        "deploy(rc): v3.8.1-rc.0"
    );
    // Nobody's commit is lost: the concurrent one is the parent.
    assert_eq!(
        git(after.path(), &["log", "-1", "--format=%s", "HEAD~1"]),
        "concurrent change"
    );
    assert!(read(after.path(), "docker-compose/.env").contains("openim-api:v3.8.1-rc.0"));
    // A re-run has nothing to do.
    let again = json_ok(t.gitops().args(["--mode", "push"]));
    assert_eq!(again["changed"], false);
    assert!(t.gh.pulls(&t.repository).is_empty());
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn the_stage_picks_its_environment_from_stages() {
    // rc (configured by its alias `test`) deploys by pull request into
    // `test`, dev by a commit on `dev`, nightly not at all; --base / --mode
    // on the command line still win.
    let t = setup(
        "stages:\n  test: { base: test, mode: pr }\n  dev: { base: dev, mode: push }\n  nightly: { deploy: false }\n",
    );
    let seed = clone_branch(t.s, &t.url, "main");
    for env in ["test", "dev"] {
        git(
            seed.path(),
            &["push", "-q", "origin", &format!("main:{env}")],
        );
    }
    let rc = json_ok(&mut t.gitops());
    assert_eq!(
        (rc["base"].as_str(), rc["mode"].as_str()),
        (Some("test"), Some("pr"))
    );
    let pulls = t.gh.pulls(&t.repository);
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0]["base"], "test", "{}", pulls[0]);

    let dev = json_ok(
        t.src
            .bin()
            .env("GITHUB_TOKEN", &t.s.git_token)
            .env("GITHUB_API_URL", &t.gh.url)
            .args([
                "gitops",
                "--stage",
                "dev",
                "--no-verify",
                "--image-tag",
                "feature-x",
            ]),
    );
    assert_eq!(
        (dev["base"].as_str(), dev["mode"].as_str()),
        (Some("dev"), Some("push"))
    );
    let on_dev = clone_branch(t.s, &t.url, "dev");
    assert!(read(on_dev.path(), "docker-compose/.env").contains("openim-api:feature-x"));
    assert_eq!(t.gh.pulls(&t.repository).len(), 1, "push mode opens no PR");

    // A stage that deploys nothing is refused, and nothing happens.
    let err = fails_with(
        t.src
            .bin()
            .env("GITHUB_TOKEN", &t.s.git_token)
            .env("GITHUB_API_URL", &t.gh.url)
            .args(["gitops", "--stage", "nightly", "--no-verify"]),
        2,
    );
    assert!(err.contains("stages.nightly.deploy is false"), "{err}");
    assert!(remote_sha(t.s, &t.url, "openim-release/nightly").is_none());

    let overridden = json_ok(t.gitops().args(["--base", "main", "--mode", "push"]));
    assert_eq!(overridden["base"], "main");
    assert_eq!(overridden["mode"], "push");
}

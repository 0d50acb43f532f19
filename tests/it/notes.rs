//! `notes`: release notes of a fixture history with pull requests, merges,
//! reverts, breaking changes and exclusions (a snapshot), and the GitHub
//! Release `notes --publish` (and `release`) creates or updates on the fake
//! GitHub: one per tag, a re-run edits it or leaves it alone.

use crate::common::*;
use crate::fake_github::FakeGitHub;
use serde_json::Value;

const REPOSITORY: &str = "openimsdk/open-im-server";
const TOKEN: &str = "notes-test-token";

/// Commit `files` (path → text) as `author`, with `message`.
fn commit_as(repo: &TestRepo, author: &str, message: &str, files: &[(&str, &str)]) -> String {
    for (path, text) in files {
        repo.write(path, text);
        repo.git(&["add", path]);
    }
    repo.git(&["commit", "-q", "--author", author, "-m", message]);
    repo.head()
}

/// open-im-server's shape (three services, one Dockerfile copying
/// `config/` and `cmd/<service>/`), v3.8.0 released, then a history of
/// every kind of change, tagged v3.8.1.
pub fn history() -> TestRepo {
    let repo = crate::build::fixture(&["ghcr.io/openimsdk".into()], &["linux/amd64"]);
    let mut cfg = std::fs::read_to_string(repo.path().join("openim-release.yaml")).unwrap();
    cfg.push_str("changelog:\n  exclude:\n    scopes: [deps]\n");
    repo.write("openim-release.yaml", &cfg);
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "chore: changelog config"]);
    let old_fix = commit_as(
        &repo,
        "Erin <erin@example.com>",
        "fix: an old bug",
        &[("cmd/openim-api/old.txt", "old fix\n")],
    );
    repo.atag(&["v3.8.0"]);
    let alice = "Alice <1234+alice@users.noreply.github.com>";
    commit_as(
        &repo,
        alice,
        "feat(api): login with SSO (#12)",
        &[("cmd/openim-api/sso.txt", "sso\n")],
    );
    commit_as(
        &repo,
        "Bob <bob@example.com>",
        "fix(push): retry offline pushes\n\nCo-authored-by: Carol <carol@example.com>\n",
        &[("cmd/openim-push/retry.txt", "retry\n")],
    );
    // A pull request merged with a merge commit.
    repo.git(&["checkout", "-q", "-b", "groups"]);
    let dan = "Dan <98+dan@users.noreply.github.com>";
    commit_as(
        &repo,
        dan,
        "wip",
        &[("cmd/openim-rpc-user/roles.txt", "roles\n")],
    );
    commit_as(
        &repo,
        dan,
        "more roles",
        &[("cmd/openim-rpc-user/roles.txt", "roles 2\n")],
    );
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&[
        "merge",
        "-q",
        "--no-ff",
        "groups",
        "-m",
        "Merge pull request #15 from dan/groups\n\nfeat(user)!: group roles replace admins\n\nBREAKING CHANGE: the admin flag is gone; give users the owner role\n",
    ]);
    // A branch merged without a pull request: its commits, each.
    repo.git(&["checkout", "-q", "-b", "release-v3.7"]);
    commit_as(
        &repo,
        alice,
        "fix(api): port the 3.7 token fix",
        &[("cmd/openim-api/token.txt", "token\n")],
    );
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&[
        "merge",
        "-q",
        "--no-ff",
        "release-v3.7",
        "-m",
        "Merge branch 'release-v3.7'",
    ]);
    // A change and its revert: neither is in the notes.
    commit_as(
        &repo,
        alice,
        "feat: experimental cache",
        &[("config/openim.yaml", "api:\n  port: 10002\ncache: true\n")],
    );
    repo.git(&["revert", "--no-edit", "HEAD"]);
    // A revert of a change released before.
    repo.git(&["revert", "--no-edit", &old_fix]);
    commit_as(
        &repo,
        "dependabot[bot] <49699333+dependabot[bot]@users.noreply.github.com>",
        "chore(deps): bump the base image",
        &[("build/images/openim-server/Dockerfile", "FROM scratch\nARG BINARY_NAME\nARG CMD_PATH\nCOPY config/ /openim/config/\nCOPY ${CMD_PATH}/ /openim/bin/${BINARY_NAME}/\n# bumped\n")],
    );
    commit_as(
        &repo,
        alice,
        "docs: how to log in with SSO",
        &[("docs/sso.md", "# SSO\n")],
    );
    commit_as(
        &repo,
        "Bob <bob@example.com>",
        "Tidy the Makefile",
        &[("Makefile", "all:\n")],
    );
    repo.atag(&["v3.8.1"]);
    repo
}

fn notes(repo: &TestRepo, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = repo.bin();
    cmd.env("GITHUB_REPOSITORY", REPOSITORY)
        .arg("notes")
        .args(args);
    cmd
}

#[test]
fn the_notes_of_a_history_with_merges_and_reverts() {
    let repo = history();
    let text = stdout_ok(&mut notes(&repo, &["--tag", "v3.8.1"]));
    insta::with_settings!({filters => vec![(r"\b[0-9a-f]{7}\b", "[sha7]"), (r"\b[0-9a-f]{40}\b", "[sha]")]}, {
        insta::assert_snapshot!(text);
    });
    let json = json_ok(&mut notes(&repo, &["--tag", "v3.8.1"]));
    assert_eq!(json["previous"], "v3.8.0");
    assert_eq!(json["counts"]["reverted"], 2, "{json}");
    assert_eq!(json["counts"]["excluded"], 1, "{json}");
    let changes = |svc: &str| {
        json["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["service"] == svc)
            .unwrap()["changes"]
            .as_u64()
            .unwrap()
    };
    // openim-api: SSO, the 3.7 port, the revert of the old fix.
    assert_eq!(changes("openim-api"), 3, "{json}");
    assert_eq!(changes("openim-push"), 1);
    assert_eq!(changes("openim-rpc-user"), 1);
    let people: Vec<&str> = json["contributors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        people,
        ["Alice", "Bob", "Carol", "Dan", "Test Author"],
        "{json}"
    );
}

#[test]
fn the_previous_release_is_of_the_same_line() {
    let repo = TestRepo::new();
    repo.atag(&["v3.8.0"]);
    repo.git(&["checkout", "-q", "-b", "release-v3.8"]);
    repo.commit("fix: on 3.8");
    repo.atag(&["v3.8.1"]);
    repo.git(&["checkout", "-q", "main"]);
    repo.commit("feat: on main");
    repo.atag(&["v3.9.0-rc.0"]);
    // v3.8.1 is no ancestor of main: 3.9's notes start at v3.8.0.
    let json = json_ok(&mut notes(&repo, &["--tag", "v3.9.0-rc.0"]));
    assert_eq!(json["previous"], "v3.8.0");
    assert_eq!(json["entries"][0]["description"], "on main");
    repo.git(&["checkout", "-q", "release-v3.8"]);
    repo.commit("fix: a hotfix");
    repo.atag(&["v3.8.1-patch.1"]);
    let json = json_ok(&mut notes(&repo, &["--tag", "v3.8.1-patch.1"]));
    assert_eq!(json["previous"], "v3.8.1");
    // A tag not made yet: the notes end at HEAD, and say so.
    let text = stdout_ok(&mut notes(&repo, &["--tag", "v3.8.1-patch.2"]));
    assert!(text.contains("v3.8.1-patch.2 does not exist yet"), "{text}");
    let err = fails_with(&mut notes(&repo, &["--tag", "nightly"]), 2);
    assert!(err.contains("not a version's git tag"), "{err}");
}

fn publish(repo: &TestRepo, gh: &FakeGitHub, args: &[&str]) -> Value {
    json_ok(
        notes(repo, args)
            .args(["--publish"])
            .env("GITHUB_TOKEN", TOKEN)
            .env("GITHUB_API_URL", &gh.url),
    )
}

fn releases(gh: &FakeGitHub) -> Vec<Value> {
    gh.releases(REPOSITORY)
}

/// The API calls made to releases so far: `(method, path)`.
fn release_calls(gh: &FakeGitHub) -> Vec<(String, String)> {
    gh.state()["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"].as_str().unwrap().contains("/releases"))
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_string(),
                r["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn publishing_creates_one_release_per_tag_and_a_rerun_edits_it() {
    let repo = history();
    let gh = FakeGitHub::start(TOKEN);
    let json = publish(&repo, &gh, &["--tag", "v3.8.1"]);
    assert_eq!(json["github_release"]["action"], "created", "{json}");
    let url = json["github_release"]["url"].as_str().unwrap();
    assert_eq!(url, format!("{}/{REPOSITORY}/releases/tag/v3.8.1", gh.url));
    let rels = releases(&gh);
    assert_eq!(rels.len(), 1);
    assert_eq!(rels[0]["name"], "v3.8.1");
    assert_eq!(rels[0]["prerelease"], false);
    assert_eq!(rels[0]["latest"], true);
    let body = rels[0]["body"].as_str().unwrap();
    assert!(
        body.starts_with("<!-- openim-release:notes -->\n"),
        "{body}"
    );
    assert!(body.contains("group roles replace admins"), "{body}");

    // A re-run: found by its tag, nothing to change, no write.
    let before = release_calls(&gh).len();
    let json = publish(&repo, &gh, &["--tag", "v3.8.1"]);
    assert_eq!(json["github_release"]["action"], "up-to-date");
    let calls = release_calls(&gh);
    assert_eq!(
        calls[before..],
        [(
            "GET".to_string(),
            format!("/repos/{REPOSITORY}/releases/tags/v3.8.1")
        )]
    );

    // Someone writes highlights above the notes; new notes (the commits up
    // to a later HEAD) replace only the notes.
    let id = rels[0]["id"].as_u64().unwrap();
    let edited = format!("Highlights: SSO login.\n\n{body}");
    let (status, _) = gh.api(
        TOKEN,
        "PATCH",
        &format!("/repos/{REPOSITORY}/releases/{id}"),
        Some(&serde_json::json!({ "body": edited })),
    );
    assert_eq!(status, 200);
    repo.commit("fix: one more");
    let json = publish(&repo, &gh, &["--tag", "v3.8.1", "--to", "HEAD"]);
    assert_eq!(json["github_release"]["action"], "updated");
    let rels = releases(&gh);
    assert_eq!(rels.len(), 1, "never a second release");
    let body = rels[0]["body"].as_str().unwrap();
    assert!(
        body.starts_with("Highlights: SSO login.\n\n<!-- openim-release:notes -->"),
        "{body}"
    );
    assert!(body.contains("one more"), "{body}");
    assert_eq!(
        body.matches("<!-- openim-release:notes -->").count(),
        1,
        "{body}"
    );
}

#[test]
fn an_rc_is_a_prerelease_and_a_concurrent_creator_is_updated_not_duplicated() {
    let repo = history();
    repo.commit("feat: 3.8.2 work");
    repo.atag(&["v3.8.2-rc.0"]);
    let gh = FakeGitHub::start(TOKEN);
    publish(&repo, &gh, &["--tag", "v3.8.1"]);
    // Another run creates the release between our lookup and our create.
    gh.faults(serde_json::json!([{
        "kind": "already_exists", "method": "POST", "path_regex": "/releases$", "create_first": true
    }]));
    let json = publish(&repo, &gh, &["--tag", "v3.8.2-rc.0"]);
    assert_ne!(json["github_release"]["action"], "created", "{json}");
    let rels = releases(&gh);
    assert_eq!(rels.len(), 2, "{rels:?}");
    let rc = rels
        .iter()
        .find(|r| r["tag_name"] == "v3.8.2-rc.0")
        .unwrap();
    assert_eq!(rc["prerelease"], true);
    assert_eq!(rc["latest"], false);
    assert!(rc["body"].as_str().unwrap().contains("3.8.2 work"));
    let latest = rels.iter().find(|r| r["tag_name"] == "v3.8.1").unwrap();
    assert_eq!(
        latest["latest"], true,
        "an rc never becomes the latest release"
    );
}

#[test]
fn a_draft_is_found_again_and_never_duplicated() {
    let repo = history();
    let mut cfg = std::fs::read_to_string(repo.path().join("openim-release.yaml")).unwrap();
    cfg.push_str("github_release:\n  draft: true\n  name: \"OpenIM Server {version}\"\n");
    repo.write("openim-release.yaml", &cfg);
    let gh = FakeGitHub::start(TOKEN);
    let json = publish(&repo, &gh, &["--tag", "v3.8.1"]);
    assert_eq!(json["github_release"]["draft"], true);
    let json = publish(&repo, &gh, &["--tag", "v3.8.1"]);
    assert_eq!(json["github_release"]["action"], "up-to-date", "{json}");
    let rels = releases(&gh);
    assert_eq!(rels.len(), 1);
    assert_eq!(rels[0]["name"], "OpenIM Server 3.8.1");
    assert_eq!(rels[0]["draft"], true);
}

#[test]
fn publishing_needs_the_tag_and_the_token_and_never_prints_it() {
    let repo = history();
    let gh = FakeGitHub::start(TOKEN);
    let err = fails_with(
        notes(&repo, &["--tag", "v3.8.1", "--publish"]).env("GITHUB_API_URL", &gh.url),
        2,
    );
    assert!(err.contains("GITHUB_TOKEN"), "{err}");
    let err = fails_with(
        notes(&repo, &["--tag", "v3.9.0", "--publish"])
            .env("GITHUB_TOKEN", TOKEN)
            .env("GITHUB_API_URL", &gh.url),
        2,
    );
    assert!(err.contains("v3.9.0 does not exist"), "{err}");
    let out = notes(&repo, &["--tag", "v3.8.1", "--publish"])
        .env("GITHUB_TOKEN", "wrong-token-123")
        .env("GITHUB_API_URL", &gh.url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains("wrong-token-123"), "{err}");
    assert!(releases(&gh).is_empty());
}

#[test]
fn a_server_error_is_retried_and_one_that_stays_fails_without_a_second_release() {
    let repo = history();
    let gh = FakeGitHub::start(TOKEN);
    // A 502 on the create: retried, one release.
    gh.faults(serde_json::json!([{
        "status": 502, "method": "POST", "path_regex": "/releases$"
    }]));
    let json = publish(&repo, &gh, &["--tag", "v3.8.1"]);
    assert_eq!(json["github_release"]["action"], "created", "{json}");
    let posts = release_calls(&gh)
        .iter()
        .filter(|(m, _)| m == "POST")
        .count();
    assert_eq!(posts, 2, "the 502, then the retry");
    assert_eq!(releases(&gh).len(), 1);

    // GitHub keeps failing the update: exit 1 naming the status; the
    // release is left as it was, still one.
    repo.commit("fix: one more");
    gh.faults(serde_json::json!([{
        "status": 503, "method": "PATCH", "path_regex": "/releases/", "times": null
    }]));
    let out = notes(&repo, &["--tag", "v3.8.1", "--to", "HEAD", "--publish"])
        .env("GITHUB_TOKEN", TOKEN)
        .env("GITHUB_API_URL", &gh.url)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("503"), "{err}");
    assert!(!err.contains(TOKEN), "{err}");
    let rels = releases(&gh);
    assert_eq!(rels.len(), 1);
    assert!(!rels[0]["body"].as_str().unwrap().contains("one more"));
}

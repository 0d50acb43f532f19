//! The GitHub fixtures in tests/fixtures/github, and the fake's answers built
//! from them, deserialize into octocrab's models as a real answer would, and
//! the fake finds them on its own (no directory outside the repository).

use crate::fake_github::FakeGitHub;
use octocrab::models::{
    commits::CommitComparison, pulls::PullRequest, repos::Release, Author, Label, UserProfile,
};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture_dir() -> PathBuf {
    root().join("tests/fixtures/github")
}

fn fixture(name: &str) -> Value {
    let path = fixture_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `doc` as octocrab's `T`, or a panic naming what failed and why.
fn decode<T: DeserializeOwned>(what: &str, doc: &Value) -> T {
    serde_json::from_value(doc.clone()).unwrap_or_else(|e| {
        panic!(
            "{what} does not deserialize as octocrab's {}: {e}",
            std::any::type_name::<T>()
        )
    })
}

/// The file names in `FIXTURE_FILES` of tests/fake_github.py.
fn fake_fixture_files() -> BTreeSet<String> {
    let script = std::fs::read_to_string(root().join("tests/fake_github.py")).unwrap();
    let block = script
        .split_once("FIXTURE_FILES = {")
        .and_then(|(_, rest)| rest.split_once('}'))
        .map(|(block, _)| block)
        .expect("FIXTURE_FILES in tests/fake_github.py");
    let names: BTreeSet<String> = block
        .split('"')
        .filter(|s| s.ends_with(".json"))
        .map(str::to_string)
        .collect();
    assert!(names.len() >= 7, "FIXTURE_FILES parsed as {names:?}");
    names
}

#[test]
fn the_fixture_directory_holds_exactly_the_files_the_fake_loads() {
    let wanted = fake_fixture_files();
    let present: BTreeSet<String> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(present, wanted, "tests/fixtures/github vs FIXTURE_FILES");
    let readme = std::fs::read_to_string(fixture_dir().join("README.md")).unwrap();
    for name in &wanted {
        assert!(
            readme.contains(&format!("| `{name}` |")),
            "tests/fixtures/github/README.md has no table row for {name}"
        );
    }
}

#[test]
fn every_fixture_deserializes_into_its_octocrab_model() {
    let user = fixture("user_data.json");
    let me: UserProfile = decode("user_data.json", &user);
    let _: Author = decode("user_data.json", &user);
    assert_eq!(me.login, "openim-robot");

    let labels: Vec<Label> = decode(
        "issues_remove_label.json",
        &fixture("issues_remove_label.json"),
    );
    assert!(!labels.is_empty(), "issues_remove_label.json has no label");

    let pr: PullRequest = decode("pull_request.json", &fixture("pull_request.json"));
    let base = pr.base.repo.as_ref().expect("pull_request.json base.repo");
    assert_eq!(base.full_name.as_deref(), Some("openimsdk/helm-charts"));
    assert!(pr.milestone.is_some() && pr.requested_teams.is_some_and(|t| !t.is_empty()));
    let reviewers = pr.requested_reviewers.unwrap_or_default();
    assert!(
        reviewers.iter().all(|r| r.login != me.login),
        "the fake tells the author from reviewers by login: {reviewers:?}"
    );

    let release: Release = decode(
        "repos_releases_get_by_tag.json",
        &fixture("repos_releases_get_by_tag.json"),
    );
    assert!(
        !release.assets.is_empty(),
        "an asset keeps the Asset model checked"
    );
    let releases: Vec<Release> = decode(
        "repos_releases_list.json",
        &fixture("repos_releases_list.json"),
    );
    assert!(!releases.is_empty());

    let cmp: CommitComparison = decode(
        "repo_compare_commits.json",
        &fixture("repo_compare_commits.json"),
    );
    assert_eq!(cmp.total_commits as usize, cmp.commits.len());
    assert!(cmp.files.is_some_and(|f| !f.is_empty()));
}

#[test]
fn the_error_fixtures_carry_what_the_fake_and_the_retries_read() {
    let errors = fixture("errors.json");
    let errors = errors.as_object().expect("errors.json is an object");
    for key in [
        "bad_credentials",
        "secondary_rate_limit",
        "primary_rate_limit",
        "not_found",
        "pull_request_already_exists",
        "bad_gateway",
    ] {
        let entry = errors
            .get(key)
            .unwrap_or_else(|| panic!("errors.json lacks {key}"));
        let status = entry["status"].as_u64().unwrap_or(0);
        assert!((400..600).contains(&status), "{key}: status {status}");
        assert!(entry["body"]["message"].is_string(), "{key}: no message");
        if let Some(headers) = entry.get("headers") {
            let headers = headers.as_object().expect("headers is an object");
            assert!(headers.values().all(Value::is_string), "{key}: {headers:?}");
        }
    }
    assert!(errors["secondary_rate_limit"]["headers"]["retry-after"].is_string());
    assert_eq!(
        errors["primary_rate_limit"]["headers"]["x-ratelimit-remaining"],
        "0"
    );
    // A bare `{"status": 403}` fault answers the first 403 entry in file order
    // (serde_json's map is sorted, so look at the text).
    let text = std::fs::read_to_string(fixture_dir().join("errors.json")).unwrap();
    let at = |key: &str| text.find(&format!("\"{key}\":")).unwrap();
    assert!(
        at("secondary_rate_limit") < at("primary_rate_limit"),
        "errors.json: keep secondary_rate_limit before primary_rate_limit"
    );
}

#[test]
fn the_fakes_answers_deserialize_into_octocrab_models() {
    let token = "fixture-shapes-token";
    let gh = FakeGitHub::start(token);
    let call = |method: &str, path: &str, body: Option<Value>, want: u16| -> Value {
        let (status, doc) = gh.api(token, method, path, body.as_ref());
        assert_eq!(status, want, "{method} {path}: {doc}");
        assert!(
            !doc.to_string().contains("https://api.github.com"),
            "{method} {path} points at the real GitHub: {doc}"
        );
        doc
    };
    let me: UserProfile = decode("GET /user", &call("GET", "/user", None, 200));
    let repo = "/repos/acme/widgets";

    let created = call(
        "POST",
        &format!("{repo}/pulls"),
        Some(
            json!({"title": "release v1.2.0", "head": "acme:rel", "base": "main", "body": "notes"}),
        ),
        201,
    );
    let pr: PullRequest = decode("POST pulls", &created);
    assert_eq!(
        (pr.number, pr.title.as_deref()),
        (1, Some("release v1.2.0"))
    );
    assert_eq!(
        pr.user.as_ref().map(|u| u.login.as_str()),
        Some(me.login.as_str())
    );
    assert_eq!(pr.head.ref_field, "rel");
    let head_repo = pr.head.repo.as_ref().expect("head.repo");
    assert_eq!(head_repo.full_name.as_deref(), Some("acme/widgets"));
    assert!(pr.html_url.is_some_and(|u| u.as_str().starts_with(&gh.url)));

    let reviewed = call(
        "POST",
        &format!("{repo}/pulls/1/requested_reviewers"),
        Some(json!({"reviewers": ["alice"], "team_reviewers": ["ops"]})),
        201,
    );
    let pr: PullRequest = decode("POST requested_reviewers", &reviewed);
    let logins: Vec<String> = pr
        .requested_reviewers
        .unwrap_or_default()
        .into_iter()
        .map(|a| a.login)
        .collect();
    assert_eq!(logins, ["alice"]);
    let teams: Vec<String> = pr
        .requested_teams
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.slug)
        .collect();
    assert_eq!(teams, ["ops"]);

    let labels = call(
        "POST",
        &format!("{repo}/issues/1/labels"),
        Some(json!({"labels": ["release", "gitops"]})),
        200,
    );
    let labels: Vec<Label> = decode("POST labels", &labels);
    let names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["release", "gitops"]);

    let pr: PullRequest = decode(
        "GET pull",
        &call("GET", &format!("{repo}/pulls/1"), None, 200),
    );
    assert_eq!(pr.merged, Some(false));
    let listed: Vec<PullRequest> = decode(
        "GET pulls",
        &call("GET", &format!("{repo}/pulls"), None, 200),
    );
    assert_eq!(listed.len(), 1);

    let release = call(
        "POST",
        &format!("{repo}/releases"),
        Some(json!({"tag_name": "v1.2.0", "name": "v1.2.0", "body": "notes"})),
        201,
    );
    let release: Release = decode("POST releases", &release);
    assert_eq!(release.tag_name, "v1.2.0");
    assert_eq!(release.author.map(|a| a.login), Some(me.login.clone()));
    let by_tag: Release = decode(
        "GET release by tag",
        &call("GET", &format!("{repo}/releases/tags/v1.2.0"), None, 200),
    );
    assert_eq!(by_tag.id, release.id);
    let releases: Vec<Release> = decode(
        "GET releases",
        &call("GET", &format!("{repo}/releases"), None, 200),
    );
    assert_eq!(releases.len(), 1);

    let cmp: CommitComparison = decode(
        "GET compare",
        &call("GET", &format!("{repo}/compare/v1.2.0...main"), None, 200),
    );
    assert!(
        cmp.url
            .ends_with("/repos/acme/widgets/compare/v1.2.0...main"),
        "{}",
        cmp.url
    );
}

#[test]
fn the_fakes_self_test_passes_with_its_default_fixtures() {
    // From an unrelated directory and without FAKE_GITHUB_FIXTURES: the fake
    // must find tests/fixtures/github next to itself.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("python3")
        .arg(root().join("tests/fake_github.py"))
        .arg("--self-test")
        .env_remove("FAKE_GITHUB_FIXTURES")
        .current_dir(elsewhere.path())
        .output()
        .expect("running python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(", 0 failed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

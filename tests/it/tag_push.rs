//! `--push`: against real remotes, concurrency, shallow clones, secrets.

use crate::common::*;

/// A bare origin holding one commit tagged `tags`, and a clone of it.
fn origin_with(tags: &[&str]) -> (tempfile::TempDir, TestRepo) {
    let origin = bare_remote();
    let seed = TestRepo::new();
    seed.atag(tags);
    seed.git(&["remote", "add", "origin", origin.path().to_str().unwrap()]);
    seed.git(&["push", "-q", "origin", "main", "--tags"]);
    (origin, seed)
}

#[test]
fn push_sends_the_annotated_tag_to_origin() {
    let (origin, seed) = origin_with(&["v3.8.0"]);
    seed.commit("fix");
    seed.git(&["push", "-q", "origin", "main"]);
    let json = json_ok(seed.bin().args(["tag", "--stage", "rc", "--push"]));
    assert_eq!(json["git_tag"], "v3.8.1-rc.0");
    assert_eq!(json["created"], true);
    assert_eq!(json["pushed"], true);
    assert_eq!(
        git(origin.path(), &["rev-parse", "v3.8.1-rc.0^{commit}"]),
        seed.head()
    );
    assert_eq!(
        git(origin.path(), &["cat-file", "-t", "v3.8.1-rc.0"]),
        "tag"
    );
    // Pushing a release tag twice is safe.
    for _ in 0..2 {
        let json = json_ok(seed.bin().args(["tag", "--stage", "release", "--push"]));
        assert_eq!(json["git_tag"], "v3.8.1");
        assert_eq!(json["pushed"], true);
    }
    assert_eq!(tag_list(origin.path()), ["v3.8.0", "v3.8.1", "v3.8.1-rc.0"]);
}

#[test]
fn rc_numbers_taken_on_the_remote_are_seen_before_pushing() {
    let (origin, seed) = origin_with(&["v1.2.0"]);
    let other = clone_of(origin.path(), &[]);
    stdout_ok(bin(other.path()).args(["tag", "--stage", "rc", "--push"]));
    // `seed` has no local rc tag yet, but --push consults the remote first.
    let json = json_ok(seed.bin().args(["tag", "--stage", "rc", "--push"]));
    assert_eq!(json["git_tag"], "v1.2.1-rc.1");
    assert_eq!(
        tag_list(origin.path()),
        ["v1.2.0", "v1.2.1-rc.0", "v1.2.1-rc.1"]
    );
}

#[test]
fn concurrent_rc_pushes_claim_distinct_numbers() {
    let (origin, _seed) = origin_with(&["v3.8.0"]);
    let clones: Vec<_> = (0..8).map(|_| clone_of(origin.path(), &[])).collect();
    let mut claimed = claim_at_once(&clones, "rc");
    claimed.sort();
    let expected: Vec<String> = (0..8).map(|n| format!("v3.8.1-rc.{n}")).collect();
    assert_eq!(claimed, expected);
    let mut remote = tag_list(origin.path());
    remote.retain(|t| t != "v3.8.0");
    assert_eq!(remote, expected);
}

#[test]
fn shallow_clone_reads_tags_from_the_remote_or_names_fetch_depth() {
    let (origin, seed) = origin_with(&["v2.0.0"]);
    seed.commit("next");
    seed.atag(&["v2.0.1-rc.4"]);
    seed.git(&["push", "-q", "origin", "main", "--tags"]);
    let shallow = clone_of(origin.path(), &["--depth", "1", "--no-tags"]);
    assert!(tag_list(shallow.path()).is_empty());
    let json = json_ok(bin(shallow.path()).args(["tag", "--stage", "rc"]));
    assert_eq!(json["git_tag"], "v2.0.1-rc.5");
    let json = json_ok(bin(shallow.path()).args(["tag", "--stage", "release"]));
    assert_eq!(json["git_tag"], "v2.0.1");

    git(
        shallow.path(),
        &["remote", "set-url", "origin", "/nonexistent/origin.git"],
    );
    let err = fails_with(bin(shallow.path()).args(["tag", "--stage", "rc"]), 2);
    assert!(err.contains("fetch-depth: 0"), "{err}");
    assert_eq!(lines(&err).len(), 1, "{err}");
}

#[test]
fn release_tag_taken_elsewhere_on_the_remote_is_refused_cleanly() {
    let (origin, seed) = origin_with(&["v1.0.0"]);
    let other = clone_of(origin.path(), &[]);
    let other_repo = other.path();
    std::fs::write(other_repo.join("x"), "x").unwrap();
    git(other_repo, &["add", "x"]);
    git(other_repo, &["commit", "-q", "-m", "other"]);
    git(other_repo, &["tag", "-a", "-m", "v1.1.0", "v1.1.0"]);
    git(
        other_repo,
        &["push", "-q", "origin", "HEAD:refs/heads/other", "v1.1.0"],
    );
    seed.commit("mine");
    let err = fails_with(
        seed.bin()
            .args(["tag", "--stage", "release", "--version", "1.1.0", "--push"]),
        2,
    );
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(seed.tags(), ["v1.0.0"]);
}

#[test]
fn push_errors_never_show_the_token() {
    let repo = TestRepo::new();
    repo.atag(&["v1.0.0"]);
    repo.git(&[
        "remote",
        "add",
        "origin",
        "http://x-access-token:s3cr3t-t0ken@127.0.0.1:9/none.git",
    ]);
    let err = fails_with(
        repo.bin()
            .args(["tag", "--stage", "rc", "--push"])
            .env("GITHUB_TOKEN", "env-t0ken-value"),
        1,
    );
    assert!(!err.contains("s3cr3t-t0ken"), "{err}");
    assert!(!err.contains("env-t0ken-value"), "{err}");
    assert!(err.contains("127.0.0.1"), "{err}");
    assert_eq!(repo.tags(), ["v1.0.0"]);
}

#[test]
fn nightly_prune_keeps_the_newest_dated_tags_on_the_remote() {
    let (origin, seed) = origin_with(&["v1.0.0"]);
    seed.write("openim-release.yaml", "tags:\n  nightly:\n    keep: 2\n");
    for day in 20..=23 {
        seed.commit(&format!("day {day}"));
        seed.git(&["push", "-q", "origin", "main"]);
        let date = format!("2026-11-{day}");
        stdout_ok(seed.bin().args([
            "tag", "--stage", "nightly", "--date", &date, "--push", "--prune",
        ]));
    }
    let nightlies: Vec<String> = tag_list(origin.path())
        .into_iter()
        .filter(|t| t.starts_with("nightly-"))
        .collect();
    assert_eq!(nightlies.len(), 2, "{nightlies:?}");
    assert!(
        nightlies[0].starts_with("nightly-20261122-")
            && nightlies[1].starts_with("nightly-20261123-")
    );
    assert!(
        tag_list(origin.path()).contains(&"v1.0.0".to_string()),
        "other tags untouched"
    );
    let local: Vec<String> = seed
        .tags()
        .into_iter()
        .filter(|t| t.starts_with("nightly-"))
        .collect();
    assert_eq!(local, nightlies);
}

/// Another checkout (an earlier run, a GitHub release) put the stage's tag on
/// the remote at HEAD; this checkout has not fetched it. --push finds it there
/// and succeeds without pushing (a re-run of a nightly or release job).
#[test]
fn a_tag_only_on_the_remote_at_head_counts_as_pushed() {
    let (origin, seed) = origin_with(&["v1.0.0"]);
    seed.commit("work");
    seed.git(&["push", "-q", "origin", "main"]);
    let other = clone_of(origin.path(), &[]);
    let date = ["--date", "2026-11-20"];
    let first = json_ok(
        bin(other.path())
            .args(["tag", "--stage", "nightly", "--push"])
            .args(date),
    );
    assert_eq!(first["pushed"], true);
    git(other.path(), &["tag", "-a", "-m", "v1.0.1", "v1.0.1"]);
    git(other.path(), &["push", "-q", "origin", "v1.0.1"]);
    let before = git(origin.path(), &["for-each-ref", "refs/tags"]);

    let nightly = json_ok(
        seed.bin()
            .args(["tag", "--stage", "nightly", "--push"])
            .args(date),
    );
    assert_eq!(nightly["git_tag"], first["git_tag"]);
    assert_eq!(nightly["created"], false);
    assert_eq!(nightly["pushed"], true);
    let release =
        json_ok(
            seed.bin()
                .args(["tag", "--stage", "release", "--version", "1.0.1", "--push"]),
        );
    assert_eq!(release["git_tag"], "v1.0.1");
    assert_eq!(release["created"], false);
    assert_eq!(release["pushed"], true);
    assert_eq!(
        git(origin.path(), &["for-each-ref", "refs/tags"]),
        before,
        "the remote's tags are untouched"
    );
    assert_eq!(seed.tags(), ["v1.0.0"], "nothing created locally");
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn push_over_smart_http_with_a_token() {
    let s = crate::services::services();
    let (bare, url) = crate::services::git_server_repo(s, "tagpush");
    let repo = TestRepo::new();
    repo.atag(&["v2.0.0"]);
    repo.git(&[
        "push",
        "-q",
        &crate::services::authed(s, &url),
        "main",
        "--tags",
    ]);
    // origin without credentials: the token comes from GITHUB_TOKEN.
    repo.git(&["remote", "add", "origin", &url]);
    let json = json_ok(
        repo.bin()
            .args(["tag", "--stage", "rc", "--push"])
            .env("GITHUB_TOKEN", &s.git_token),
    );
    assert_eq!(json["git_tag"], "v2.0.1-rc.0");
    assert!(tag_list(&bare).contains(&"v2.0.1-rc.0".to_string()));
    // A wrong token: refused, not shown, and the local tag is rolled back.
    repo.commit("next");
    let err = fails_with(
        repo.bin()
            .args(["tag", "--stage", "rc", "--push"])
            .env("GITHUB_TOKEN", "not-the-token-123"),
        1,
    );
    assert!(!err.contains("not-the-token-123"), "{err}");
    assert!(!repo.tags().contains(&"v2.0.1-rc.1".to_string()));
}

//! Bad input: a one-line error that says what to do, exit code 2, nothing
//! created or pushed.

use crate::common::*;

fn one_line(stderr: &str) -> &str {
    let l = lines(stderr);
    assert_eq!(l.len(), 1, "expected one line, got: {stderr}");
    assert!(l[0].starts_with("error: "), "{stderr}");
    l[0]
}

#[test]
fn unknown_stage() {
    let repo = TestRepo::new();
    let err = fails_with(repo.bin().args(["tag", "--stage", "staging"]), 2);
    assert!(err.contains("invalid value 'staging'"), "{err}");
    assert!(err.contains("dev, rc, release, patch, nightly"), "{err}");
    // In GitHub Actions the usage error is an annotation too.
    let out = repo
        .bin()
        .args(["tag", "--stage", "staging"])
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "stdout carries results only");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("::error::invalid value 'staging'") && l.contains("nightly")),
        "{stderr}"
    );
}

#[test]
fn malformed_version() {
    let repo = TestRepo::new();
    for bad in ["3.8", "three", "3.8.1-rc.1"] {
        let err = fails_with(
            repo.bin()
                .args(["tag", "--stage", "rc", "--create", "--version", bad]),
            2,
        );
        assert!(one_line(&err).contains("--version"), "{err}");
    }
    // dev and nightly have no version: refused, not silently ignored.
    for stage in ["dev", "nightly"] {
        let err = fails_with(
            repo.bin()
                .args(["tag", "--stage", stage, "--version", "3.9.0"]),
            2,
        );
        assert!(one_line(&err).contains("--version applies to"), "{err}");
    }
    // Options of other stages: refused, not silently ignored.
    for (args, needle) in [
        (&["--stage", "rc", "--prune"][..], "--prune"),
        (&["--stage", "release", "--prune"][..], "--prune"),
        (&["--stage", "rc", "--no-aliases"][..], "--no-aliases"),
        (&["--stage", "dev", "--no-aliases"][..], "--no-aliases"),
        (&["--stage", "release", "--bump", "minor"][..], "--bump"),
        (&["--stage", "nightly", "--bump", "minor"][..], "--bump"),
    ] {
        let err = fails_with(repo.bin().arg("tag").args(args), 2);
        assert!(one_line(&err).contains(needle), "{args:?}: {err}");
    }
    assert!(repo.tags().is_empty());
}

#[test]
fn malformed_date() {
    let repo = TestRepo::new();
    let err = fails_with(
        repo.bin()
            .args(["tag", "--stage", "nightly", "--date", "25.11.2026"]),
        2,
    );
    assert!(one_line(&err).contains("YYYY-MM-DD"), "{err}");
}

#[test]
fn not_a_git_repository() {
    let dir = tempfile::tempdir().unwrap();
    let err = fails_with(bin(dir.path()).args(["tag", "--stage", "dev"]), 2);
    assert!(
        one_line(&err).contains("not inside a git repository"),
        "{err}"
    );
    let err = fails_with(
        bin(dir.path()).args(["-C", "/nonexistent/dir", "tag", "--stage", "dev"]),
        2,
    );
    assert!(
        one_line(&err).contains("/nonexistent/dir does not exist"),
        "{err}"
    );
}

#[test]
fn repository_without_commits() {
    let repo = TestRepo::empty();
    let err = fails_with(repo.bin().args(["tag", "--stage", "rc", "--create"]), 2);
    assert!(one_line(&err).contains("no commits yet"), "{err}");
}

#[test]
fn broken_config_names_file_key_and_line_and_creates_nothing() {
    let repo = TestRepo::new();
    repo.atag(&["v1.0.0"]);
    repo.write(
        "openim-release.yaml",
        "tags:\n  prefix: v\n  rc:\n    tagz: [x]\n",
    );
    let err = fails_with(repo.bin().args(["tag", "--stage", "rc", "--create"]), 2);
    let line = one_line(&err);
    assert!(line.contains("openim-release.yaml:4"), "{line}");
    assert!(line.contains("unknown field `tagz`"), "{line}");
    assert_eq!(repo.tags(), ["v1.0.0"]);

    repo.write(
        "openim-release.yaml",
        "tags:\n  rc:\n    tags: [\"v{version}-rc.{m}\"]\n",
    );
    let err = fails_with(repo.bin().args(["tag", "--stage", "rc"]), 2);
    let line = one_line(&err);
    assert!(line.contains("openim-release.yaml:3"), "{line}");
    assert!(
        line.contains("tags.rc.tags[0]") && line.contains("{m}"),
        "{line}"
    );

    repo.write("openim-release.yaml", "tags: [unclosed\n");
    let err = fails_with(repo.bin().args(["tag", "--stage", "rc"]), 2);
    assert!(one_line(&err).contains("openim-release.yaml"), "{err}");

    let err = fails_with(
        repo.bin()
            .args(["--config", "missing.yaml", "tag", "--stage", "rc"]),
        2,
    );
    assert!(one_line(&err).contains("missing.yaml"), "{err}");
}

#[test]
fn template_rendering_an_invalid_tag_is_refused() {
    let repo = TestRepo::new();
    repo.write(
        "openim-release.yaml",
        "tags:\n  dev:\n    tags: [\"-{branch}\"]\n",
    );
    let err = fails_with(repo.bin().args(["tag", "--stage", "dev"]), 2);
    assert!(one_line(&err).contains("not a valid image tag"), "{err}");
}

#[test]
fn dev_has_no_git_tag_to_create() {
    let repo = TestRepo::new();
    let err = fails_with(repo.bin().args(["tag", "--stage", "dev", "--create"]), 2);
    assert!(one_line(&err).contains("creates no git tag"), "{err}");
}

#[test]
fn help_teaches_the_stages() {
    let repo = TestRepo::new();
    let out = stdout_ok(repo.bin().args(["tag", "--help"]));
    for needle in [
        "release-vX.Y.Z",
        "nightly-YYYYMMDD",
        "--create",
        "GITHUB_OUTPUT",
        "Examples",
    ] {
        assert!(out.contains(needle), "help lacks {needle}:\n{out}");
    }
}

/// `openim-release tag --stage dev | head -0`: the reader is gone before
/// anything is printed; no panic, exit 0.
#[test]
fn a_closed_stdout_ends_quietly() {
    let repo = TestRepo::new();
    for _ in 0..3 {
        let mut child = std_bin(repo.path())
            .args(["tag", "--stage", "dev"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(out.status.code(), Some(0), "{stderr}");
    }
}

#[test]
fn newer_releases_in_a_form_not_read_refuse_rather_than_go_backwards() {
    // openim-docker's tags: server-and-chat versions and a two-part tag
    // above the newest vX.Y.Z.
    let repo = TestRepo::new();
    repo.tag(&["v3.5.0"]);
    repo.commit("3.6");
    repo.tag(&["v3.6.0-v1.6.0"]);
    repo.commit("3.8");
    repo.tag(&["v3.8", "v3.9.0-alpha.1"]);
    repo.commit("work");
    for stage in ["rc", "patch"] {
        let err = fails_with(repo.bin().args(["tag", "--stage", stage, "--create"]), 2);
        let line = one_line(&err);
        assert!(line.contains("v3.8, v3.6.0-v1.6.0"), "{line}");
        assert!(line.contains("--version X.Y.Z"), "{line}");
    }
    assert_eq!(repo.git(&["tag", "--points-at", "HEAD"]).trim(), "");
    // Saying which version it is works.
    let out = stdout_ok(
        repo.bin()
            .args(["tag", "--stage", "rc", "--version", "3.9.0"]),
    );
    assert_eq!(lines(&out), ["v3.9.0-rc.0", "rc0"]);
}

/// `openim-release … 2>&1 | head -1`: the reader of stdout and stderr goes
/// away early. The work still happens (progress and notes are for people)
/// and the exit code is the command's: never a panic's 101.
#[test]
fn closed_output_streams_neither_panic_nor_stop_the_work() {
    let repo = TestRepo::new();
    repo.git(&["tag", "v1.0.0"]);
    repo.git(&["commit", "-q", "--allow-empty", "-m", "next"]);
    let mut child = std_bin(repo.path())
        // A debug log, notes and the tags: plenty to write after the close.
        .args(["-vv", "tag", "--stage", "rc", "--create"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert!(
        tag_list(repo.path()).contains(&"v1.0.1-rc.0".to_string()),
        "{:?}",
        tag_list(repo.path())
    );
}

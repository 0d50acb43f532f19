//! The tag rules on histories shaped like OpenIM's real repositories: release
//! branches that never merge back, an abandoned rc series off main, patch
//! branches, clones without tags or history, and branch names that are tags
//! of other stages.

use crate::common::*;

/// The first line of stdout.
fn first(cmd: &mut assert_cmd::Command) -> String {
    lines(&stdout_ok(cmd))[0].to_string()
}

/// open-im-server's shape, in small: main carries v3.8.0 and v3.8.1 (from
/// its rcs); v3.8.2/v3.8.3 were made on release branches that never merged
/// back; a v3.3.3 rc series was abandoned on a side branch; patches of 3.8.3
/// live on `3.8.3-patch`. HEAD: main, one commit past v3.8.1.
fn openim_shaped() -> TestRepo {
    let repo = TestRepo::new();
    repo.atag(&["v3.3.2"]);
    repo.git(&["checkout", "-q", "-b", "test/release-v3.3"]);
    repo.commit("abandoned candidate");
    repo.atag(&["v3.3.3-rc.4", "v3.3.3-rc.5"]);
    repo.git(&["checkout", "-q", "main"]);
    repo.commit("3.8 work");
    repo.atag(&["v3.8.0-rc.0", "v3.8.0"]);
    repo.commit("3.8.1 candidate");
    repo.atag(&["v3.8.1-rc.1", "v3.8.1-rc.4", "v3.8.1"]);
    repo.git(&["checkout", "-q", "-b", "release-v3.8.3"]);
    repo.commit("3.8.3");
    repo.atag(&["v3.8.2", "v3.8.3"]);
    repo.git(&["checkout", "-q", "-b", "3.8.3-patch"]);
    repo.commit("hotfix");
    repo.atag(&["v3.8.3-patch.1"]);
    repo.commit("hotfix 2");
    repo.atag(&["v3.8.3-patch.2"]);
    repo.git(&["checkout", "-q", "main"]);
    repo.commit("main moves on");
    repo
}

#[test]
fn release_on_main_never_promotes_a_foreign_or_stale_rc() {
    let repo = openim_shaped();
    let err = fails_with(repo.bin().args(["tag", "--stage", "release"]), 2);
    assert!(err.contains("--version"), "{err}");
    assert!(err.contains("v3.8.3"), "{err}");
    // Nothing was created by a refused --create.
    let before = tag_list(repo.path());
    fails_with(
        repo.bin().args(["tag", "--stage", "release", "--create"]),
        2,
    );
    assert_eq!(tag_list(repo.path()), before);
    // rc on main: after the latest release anywhere (3.8.3 via its patches).
    assert_eq!(
        first(repo.bin().args(["tag", "--stage", "rc"])),
        "v3.8.4-rc.0"
    );
    // The candidate, once tagged here, is what release promotes later on.
    repo.atag(&["v3.8.4-rc.0"]);
    repo.commit("fix after the rc");
    assert_eq!(
        first(repo.bin().args(["tag", "--stage", "rc"])),
        "v3.8.4-rc.1"
    );
    assert_eq!(
        first(repo.bin().args(["tag", "--stage", "release"])),
        "release-v3.8.4"
    );
}

#[test]
fn an_rc_series_of_another_branch_is_neither_continued_nor_promoted() {
    let repo = TestRepo::new();
    repo.atag(&["v3.7.1"]);
    repo.git(&["checkout", "-q", "-b", "release-v3.8"]);
    repo.commit("3.8 candidate");
    repo.atag(&["v3.8.0-rc.0"]);
    repo.git(&["checkout", "-q", "main"]);
    repo.commit("main work");
    // main does not contain the 3.8.0 candidate.
    assert_eq!(
        first(repo.bin().args(["tag", "--stage", "rc"])),
        "v3.7.2-rc.0"
    );
    fails_with(repo.bin().args(["tag", "--stage", "release"]), 2);
    // A branch made from the candidate continues its series.
    repo.git(&["checkout", "-q", "-b", "fix-on-rc", "v3.8.0-rc.0"]);
    repo.commit("fix");
    assert_eq!(
        first(repo.bin().args(["tag", "--stage", "rc"])),
        "v3.8.0-rc.1"
    );
    // On the release branch itself (refs/heads/ form, as github.ref gives it).
    assert_eq!(
        first(repo.bin().args([
            "tag",
            "--stage",
            "rc",
            "--branch",
            "refs/heads/release-v3.8"
        ])),
        "v3.8.0-rc.1"
    );
}

#[test]
fn patch_releases_on_openims_branches() {
    let repo = openim_shaped();
    repo.git(&["checkout", "-q", "3.8.3-patch"]);
    repo.commit("hotfix 3");
    let json = json_ok(repo.bin().args(["tag", "--stage", "patch"]));
    assert_eq!(json["stage"], "patch");
    assert_eq!(json["version"], "3.8.3");
    assert_eq!(json["git_tag"], "v3.8.3-patch.3");
    assert_eq!(json["rc"], 3);
    assert_eq!(
        json["tags"],
        serde_json::json!(["v3.8.3-patch.3", "3.8.3-patch.3", "3.8", "3", "latest"])
    );
    // `hotfix` is the same stage; rc on a patch branch points to it.
    assert_eq!(
        first(repo.bin().args(["tag", "--stage", "hotfix"])),
        "v3.8.3-patch.3"
    );
    let err = fails_with(repo.bin().args(["tag", "--stage", "rc"]), 2);
    assert!(err.contains("--stage patch"), "{err}");
    // On main, whose history holds 3.8.1 while 3.8.3 is out: refused.
    repo.git(&["checkout", "-q", "main"]);
    let err = fails_with(repo.bin().args(["tag", "--stage", "patch"]), 2);
    assert!(err.contains("--version 3.8.1"), "{err}");
    assert_eq!(
        first(
            repo.bin()
                .args(["tag", "--stage", "patch", "--version", "3.8.1"])
        ),
        "v3.8.1-patch.1"
    );
    let err = fails_with(
        repo.bin()
            .args(["tag", "--stage", "patch", "--version", "3.9.0"]),
        2,
    );
    assert!(err.contains("not released"), "{err}");
}

#[test]
fn concurrent_patch_pushes_claim_distinct_numbers() {
    let origin = bare_remote();
    let seed = TestRepo::new();
    seed.atag(&["v3.8.3", "v3.8.3-patch.16"]);
    seed.git(&["checkout", "-q", "-b", "3.8.3-patch"]);
    seed.commit("hotfix");
    seed.git(&["remote", "add", "origin", origin.path().to_str().unwrap()]);
    seed.git(&["push", "-q", "origin", "3.8.3-patch", "--tags"]);
    let clones: Vec<_> = (0..4)
        .map(|_| clone_of(origin.path(), &["-b", "3.8.3-patch"]))
        .collect();
    let mut claimed = claim_at_once(&clones, "patch");
    claimed.sort();
    let expected: Vec<String> = (17..21).map(|n| format!("v3.8.3-patch.{n}")).collect();
    assert_eq!(claimed, expected);
    let mut remote = tag_list(origin.path());
    remote.retain(|t| t.starts_with("v3.8.3-patch.") && t != "v3.8.3-patch.16");
    remote.sort();
    assert_eq!(remote, expected);
}

#[test]
fn dev_tags_of_branches_named_like_other_stages_tags() {
    let repo = TestRepo::new();
    let sha7 = &repo.head()[..7];
    for branch in [
        "release-v3.8.3",
        "latest",
        "v3.8.3",
        "3.8",
        "nightly",
        "rc0",
    ] {
        let out = repo
            .bin()
            .args(["tag", "--stage", "dev", "--branch", branch])
            .output()
            .unwrap();
        assert!(out.status.success());
        let stdout = String::from_utf8(out.stdout).unwrap();
        let tags = lines(&stdout);
        assert!(
            tags[0].starts_with(&format!("branch-{branch}-")),
            "{tags:?}"
        );
        assert_eq!(tags[1], format!("sha-{sha7}"));
        // Deterministic, and the note says why.
        let again = stdout_ok(
            repo.bin()
                .args(["tag", "--stage", "dev", "--branch", branch]),
        );
        assert_eq!(lines(&again)[0], tags[0]);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains("owns"), "{stderr}");
    }
    // OpenIM's real branch names that are no other stage's tag stay readable.
    for branch in ["main", "3.8.3-patch", "pre-release-v3.8.4", "release-v3.8"] {
        assert_eq!(
            first(
                repo.bin()
                    .args(["tag", "--stage", "dev", "--branch", branch])
            ),
            branch
        );
    }
}

#[test]
fn a_clone_without_tags_gives_the_answer_push_acts_on() {
    let origin = bare_remote();
    let seed = openim_shaped();
    seed.git(&["remote", "add", "origin", origin.path().to_str().unwrap()]);
    seed.git(&["push", "-q", "origin", "--all"]);
    seed.git(&["push", "-q", "origin", "--tags"]);
    let dir = clone_of(origin.path(), &["--no-tags"]);

    assert!(tag_list(dir.path()).is_empty());
    let out = bin(dir.path())
        .args(["tag", "--stage", "rc"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        lines(&String::from_utf8(out.stdout).unwrap())[0],
        "v3.8.4-rc.0"
    );
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("this clone has no version tags"));
    // The remote gone: refused with the fix, not rc.0 of 0.0.1.
    git(
        dir.path(),
        &["remote", "set-url", "origin", "/nonexistent/origin.git"],
    );
    let err = fails_with(bin(dir.path()).args(["tag", "--stage", "rc"]), 2);
    assert!(err.contains("git fetch --tags"), "{err}");
    assert!(err.contains("--version"), "{err}");
    // Without any remote, a new project starts from 0.0.0 as before.
    git(dir.path(), &["remote", "remove", "origin"]);
    assert_eq!(
        first(bin(dir.path()).args(["tag", "--stage", "rc"])),
        "v0.0.1-rc.0"
    );
}

#[test]
fn a_shallow_clone_refuses_what_only_the_history_can_tell() {
    let origin = bare_remote();
    let seed = TestRepo::new();
    seed.atag(&["v3.7.1"]);
    seed.commit("candidate");
    seed.atag(&["v3.8.0-rc.0"]);
    seed.commit("fix");
    seed.git(&["remote", "add", "origin", origin.path().to_str().unwrap()]);
    seed.git(&["push", "-q", "origin", "main", "--tags"]);
    let dir = clone_of(origin.path(), &["--depth", "1", "--no-tags"]);

    // Whether v3.8.0-rc.0 is on HEAD's history decides between v3.8.0-rc.1
    // and v3.7.2-rc.0: a shallow clone cannot tell, so it says so.
    let err = fails_with(bin(dir.path()).args(["tag", "--stage", "rc"]), 2);
    assert!(err.contains("fetch-depth: 0"), "{err}");
    assert!(err.contains("v3.8.0-rc.0"), "{err}");
    // The full history answers.
    git(dir.path(), &["fetch", "-q", "--unshallow", "--tags"]);
    assert_eq!(
        first(bin(dir.path()).args(["tag", "--stage", "rc"])),
        "v3.8.0-rc.1"
    );
}

#[test]
fn releases_tagged_without_a_prefix_are_seen_and_followed() {
    let repo = TestRepo::new();
    repo.atag(&["v1.2.0", "v1.2.1"]);
    repo.commit("3.0");
    repo.atag(&["3.0.0"]);
    repo.commit("next");
    let out = repo
        .bin()
        .args(["tag", "--stage", "rc", "--create"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        lines(&stdout)[0],
        "v3.0.1-rc.0",
        "image tags keep their template"
    );
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("without a prefix"));
    // The git tag follows the repository's convention.
    assert!(tag_list(repo.path()).contains(&"3.0.1-rc.0".to_string()));
    // A configured `v` that would skip 3.0.0 is refused, naming it.
    repo.write("openim-release.yaml", "tags:\n  prefix: v\n");
    let err = fails_with(repo.bin().args(["tag", "--stage", "rc"]), 2);
    assert!(
        err.contains("`3.0.0`") && err.contains("tags.prefix"),
        "{err}"
    );
}

#[test]
fn a_version_tag_of_a_blob_or_tree_is_no_release() {
    let repo = TestRepo::new();
    repo.atag(&["v1.0.0"]);
    let blob = repo.git(&["hash-object", "-w", "file.txt"]);
    repo.git(&["tag", "v9.9.9", &blob]);
    let tree = repo.git(&["rev-parse", "HEAD^{tree}"]);
    repo.git(&["tag", "-a", "-m", "tree", "v8.0.0", &tree]);
    assert_eq!(
        first(repo.bin().args(["tag", "--stage", "rc"])),
        "v1.0.1-rc.0"
    );
}

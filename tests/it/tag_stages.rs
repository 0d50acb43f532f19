//! `tag --stage …`: every rule of every stage, on real repositories.

use crate::common::*;

#[test]
fn dev_uses_the_checked_out_branch_and_the_sha() {
    let repo = TestRepo::new();
    repo.git(&["checkout", "-q", "-b", "my/feature#1245"]);
    let sha = repo.head();
    let out = stdout_ok(repo.bin().args(["tag", "--stage", "dev"]));
    assert_eq!(
        lines(&out),
        ["my-feature-1245", &format!("sha-{}", &sha[..7])]
    );
}

#[test]
fn dev_branch_precedence_flag_then_pr_head_then_ref_name() {
    let repo = TestRepo::new();
    let first = |cmd: &mut assert_cmd::Command| lines(&stdout_ok(cmd))[0].to_string();
    assert_eq!(first(repo.bin().args(["tag", "--stage", "dev"])), "main");
    assert_eq!(
        first(
            repo.bin()
                .args(["tag", "--stage", "dev"])
                .env("GITHUB_REF_NAME", "feat/x")
        ),
        "feat-x"
    );
    // A tag push names a tag in GITHUB_REF_NAME: not a branch.
    assert_eq!(
        first(
            repo.bin()
                .args(["tag", "--stage", "dev"])
                .env("GITHUB_REF_NAME", "v1.0.0")
                .env("GITHUB_REF_TYPE", "tag")
        ),
        "main"
    );
    assert_eq!(
        first(
            repo.bin()
                .args(["tag", "--stage", "dev"])
                .env("GITHUB_REF_NAME", "12/merge")
                .env("GITHUB_HEAD_REF", "fix/pr-branch")
        ),
        "fix-pr-branch"
    );
    assert_eq!(
        first(
            repo.bin()
                .args(["tag", "--stage", "dev", "--branch", "given"])
                .env("GITHUB_HEAD_REF", "fix/pr-branch")
        ),
        "given"
    );
    // In a pull_request workflow the build is of the merge commit: `pr-N`,
    // never the head branch's tag (a PR from `main` into a release branch
    // would replace `:main`), with a note; `--branch` still decides.
    let pr = |cmd: &mut assert_cmd::Command| {
        cmd.env("GITHUB_REF", "refs/pull/2708/merge")
            .env("GITHUB_REF_NAME", "2708/merge")
            .env("GITHUB_HEAD_REF", "main")
            .env("GITHUB_BASE_REF", "release-v3.8");
    };
    let mut cmd = repo.bin();
    cmd.args(["tag", "--stage", "dev"]);
    pr(&mut cmd);
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(lines(&stdout)[0], "pr-2708", "{stdout}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pull request #2708 (head branch `main`)"),
        "{out:?}"
    );
    let mut cmd = repo.bin();
    cmd.args(["tag", "--stage", "dev", "--branch", "main"]);
    pr(&mut cmd);
    assert_eq!(first(&mut cmd), "main");
}

#[test]
fn dev_non_ascii_branches_get_distinct_valid_tags() {
    let repo = TestRepo::new();
    let tag_of = |branch: &str| {
        lines(&stdout_ok(
            repo.bin()
                .args(["tag", "--stage", "dev", "--branch", branch]),
        ))[0]
            .to_string()
    };
    let a = tag_of("功能/登录");
    let b = tag_of("功能/注册");
    assert_ne!(a, b);
    for t in [&a, &b] {
        assert!(
            t.starts_with("branch-") && t.len() == "branch-".len() + 10,
            "{t}"
        );
    }
    // The same name gives the same tag on every run.
    assert_eq!(a, tag_of("功能/登录"));
    let long = tag_of(&format!("feature/{}", "x".repeat(300)));
    assert_eq!(long.len(), 128);
}

#[test]
fn dev_detached_head_without_branch_is_a_usage_error() {
    let repo = TestRepo::new();
    let sha = repo.head();
    repo.git(&["checkout", "-q", "--detach", &sha]);
    let err = fails_with(repo.bin().args(["tag", "--stage", "dev"]), 2);
    assert!(err.contains("--branch"), "{err}");
    // CI gives the branch through the environment.
    let out = stdout_ok(
        repo.bin()
            .args(["tag", "--stage", "dev"])
            .env("GITHUB_REF_NAME", "main"),
    );
    assert_eq!(lines(&out)[0], "main");
}

#[test]
fn rc_numbers_count_up_from_existing_candidates() {
    let repo = TestRepo::new();
    repo.atag(&["v3.8.0"]);
    let first = stdout_ok(repo.bin().args(["tag", "--stage", "rc"]));
    assert_eq!(lines(&first), ["v3.8.1-rc.0", "rc0"]);
    repo.commit("fix");
    repo.atag(&["v3.8.1-rc.0"]);
    repo.commit("fix 2");
    repo.tag(&["v3.8.1-rc.1"]);
    let json = json_ok(repo.bin().args(["tag", "--stage", "test"]));
    assert_eq!(json["stage"], "rc");
    assert_eq!(json["version"], "3.8.1");
    assert_eq!(json["git_tag"], "v3.8.1-rc.2");
    assert_eq!(json["tags"], serde_json::json!(["v3.8.1-rc.2", "rc2"]));
    assert_eq!(json["sha"], repo.head());
    assert_eq!(json["branch"], "main");
    assert_eq!(json["rc"], 2);
}

#[test]
fn rc_bump_and_explicit_version() {
    let repo = TestRepo::new();
    repo.atag(&["v3.8.0", "v3.9.0-rc.0"]);
    let tags = |args: &[&str]| {
        let mut cmd = repo.bin();
        cmd.args(["tag", "--stage", "rc"]).args(args);
        lines(&stdout_ok(&mut cmd))[0].to_string()
    };
    // The open series on HEAD's history is continued; --bump starts one.
    assert_eq!(tags(&[]), "v3.9.0-rc.1");
    assert_eq!(tags(&["--bump", "patch"]), "v3.8.1-rc.0");
    assert_eq!(tags(&["--bump", "minor"]), "v3.9.0-rc.1");
    assert_eq!(tags(&["--bump", "major"]), "v4.0.0-rc.0");
    assert_eq!(tags(&["--version", "3.10.0"]), "v3.10.0-rc.0");
    assert_eq!(tags(&["--version", "v3.9.0"]), "v3.9.0-rc.1");
}

#[test]
fn rc_on_a_release_branch_follows_its_line() {
    let repo = TestRepo::new();
    repo.atag(&["v3.7.2", "v3.8.0"]);
    repo.git(&["checkout", "-q", "-b", "release-v3.7"]);
    repo.commit("backport");
    let out = stdout_ok(repo.bin().args(["tag", "--stage", "rc"]));
    assert_eq!(lines(&out), ["v3.7.3-rc.0", "rc0"]);
    // A new line starts at .0.
    let out = stdout_ok(
        repo.bin()
            .args(["tag", "--stage", "rc", "--branch", "release-v3.9"]),
    );
    assert_eq!(lines(&out)[0], "v3.9.0-rc.0");
}

#[test]
fn openim_patch_alpha_and_foreign_tags_in_version_math() {
    let repo = TestRepo::new();
    repo.atag(&["v3.8.3"]);
    for n in 1..=16 {
        repo.commit(&format!("patch {n}"));
        repo.tag(&[&format!("v3.8.3-patch.{n}")]);
    }
    repo.tag(&[
        "v3.9.0-alpha.1",
        "openim-api-0.1.13",
        "nightly",
        "v3.8",
        "latest",
    ]);
    // patch.N counts as 3.8.3 released; alpha and foreign tags are ignored.
    let out = stdout_ok(repo.bin().args(["tag", "--stage", "rc"]));
    assert_eq!(lines(&out)[0], "v3.8.4-rc.0");
    // A patch tag at HEAD is not a release of its own.
    let err = fails_with(repo.bin().args(["tag", "--stage", "release"]), 2);
    assert!(err.contains("--version"), "{err}");
}

#[test]
fn rc_of_a_released_version_is_refused() {
    let repo = TestRepo::new();
    repo.atag(&["v3.8.0"]);
    let err = fails_with(
        repo.bin()
            .args(["tag", "--stage", "rc", "--version", "3.8.0"]),
        2,
    );
    assert!(err.contains("already released"), "{err}");
}

#[test]
fn release_promotes_the_rc_at_head_with_aliases() {
    let repo = TestRepo::new();
    repo.atag(&["v3.7.0"]);
    repo.commit("work");
    repo.atag(&["v3.8.0-rc.0"]);
    repo.commit("more");
    repo.atag(&["v3.8.0-rc.1"]);
    let json = json_ok(repo.bin().args(["tag", "--stage", "prod"]));
    assert_eq!(json["stage"], "release");
    assert_eq!(json["version"], "3.8.0");
    assert_eq!(json["git_tag"], "v3.8.0");
    assert_eq!(
        json["tags"],
        serde_json::json!(["release-v3.8.0", "v3.8.0", "3.8.0", "3.8", "3", "latest"])
    );
    assert_eq!(json["git_tag_state"], "new");
    let out = stdout_ok(
        repo.bin()
            .args(["tag", "--stage", "release", "--no-aliases"]),
    );
    assert_eq!(lines(&out), ["release-v3.8.0", "v3.8.0", "3.8.0"]);
}

#[test]
fn release_uses_heads_own_tag_and_a_hotfix_does_not_move_aliases() {
    let repo = TestRepo::new();
    repo.atag(&["v3.7.4"]);
    repo.git(&["checkout", "-q", "-b", "release-v3.7"]);
    repo.git(&["checkout", "-q", "main"]);
    repo.commit("next");
    repo.atag(&["v3.8.0"]);
    repo.git(&["checkout", "-q", "release-v3.7"]);
    repo.commit("hotfix");
    repo.tag(&["v3.7.5"]);
    let json = json_ok(repo.bin().args(["tag", "--stage", "release"]));
    assert_eq!(json["version"], "3.7.5");
    assert_eq!(json["git_tag_state"], "at-head");
    assert_eq!(
        json["tags"],
        serde_json::json!(["release-v3.7.5", "v3.7.5", "3.7.5"])
    );
}

#[test]
fn release_alias_policy_per_line_is_configurable() {
    let repo = TestRepo::new();
    repo.atag(&["v3.8.0"]);
    repo.commit("hotfix");
    repo.write(
        "openim-release.yaml",
        "tags:\n  release:\n    alias_policy: per-line\n",
    );
    let out = stdout_ok(
        repo.bin()
            .args(["tag", "--stage", "release", "--version", "3.7.5"]),
    );
    assert_eq!(lines(&out), ["release-v3.7.5", "v3.7.5", "3.7.5", "3.7"]);
}

#[test]
fn release_promotion_on_a_release_branch_picks_its_line() {
    let repo = TestRepo::new();
    repo.atag(&["v3.7.0", "v3.8.0"]);
    repo.commit("rc on 3.7");
    repo.atag(&["v3.7.1-rc.0"]);
    repo.commit("rc on 3.8");
    repo.atag(&["v3.8.1-rc.3"]);
    repo.commit("later");
    let line = json_ok(
        repo.bin()
            .args(["tag", "--stage", "release", "--branch", "release-v3.7"]),
    );
    assert_eq!(line["version"], "3.7.1");
    let main = json_ok(repo.bin().args(["tag", "--stage", "release"]));
    assert_eq!(main["version"], "3.8.1");
}

#[test]
fn nightly_tags_and_changed_flag() {
    let repo = TestRepo::new();
    let sha = repo.head();
    let json = json_ok(
        repo.bin()
            .args(["tag", "--stage", "nightly", "--date", "2026-11-25"]),
    );
    let dated = format!("nightly-20261125-{}", &sha[..7]);
    assert_eq!(json["tags"], serde_json::json!([dated, "nightly"]));
    assert_eq!(json["version"], serde_json::Value::Null);
    assert_eq!(json["git_tag"], dated);
    assert_eq!(json["changed"], true);

    // Record the nightly, then run again: nothing changed.
    stdout_ok(repo.bin().args([
        "tag",
        "--stage",
        "nightly",
        "--date",
        "2026-11-25",
        "--create",
    ]));
    assert_eq!(repo.git(&["cat-file", "-t", &dated]), "tag");
    let again = json_ok(
        repo.bin()
            .args(["tag", "--stage", "nightly", "--date", "2026-11-26"]),
    );
    assert_eq!(again["changed"], false);
    assert_eq!(again["previous_nightly"], dated);

    repo.commit("new work");
    let moved = json_ok(
        repo.bin()
            .args(["tag", "--stage", "nightly", "--date", "2026-11-26"]),
    );
    assert_eq!(moved["changed"], true);

    // A `nightly` marker tag (an older workflow's) does not hide the dated
    // nightlies; it counts only in a repository that has none.
    repo.tag(&["nightly"]);
    let marker = json_ok(
        repo.bin()
            .args(["tag", "--stage", "nightly", "--date", "2026-11-26"]),
    );
    assert_eq!(marker["changed"], true);
    assert_eq!(marker["previous_nightly"], dated);
    let fresh = TestRepo::new();
    fresh.tag(&["nightly"]);
    let only_marker =
        json_ok(
            fresh
                .bin()
                .args(["tag", "--stage", "nightly", "--date", "2026-11-26"]),
        );
    assert_eq!(only_marker["changed"], false);
    assert_eq!(only_marker["previous_nightly"], "nightly");
}

#[test]
fn dev_json_contract() {
    let repo = TestRepo::new();
    let json = json_ok(repo.bin().args(["tag", "--stage", "dev"]));
    for key in ["stage", "version", "git_tag", "tags", "sha", "branch"] {
        assert!(json.get(key).is_some(), "missing {key}: {json}");
    }
    assert_eq!(json["version"], serde_json::Value::Null);
    assert_eq!(json["git_tag"], serde_json::Value::Null);
    assert_eq!(json["schema_version"], 1);
}

#[test]
fn create_makes_an_annotated_tag_at_head_and_is_idempotent() {
    let repo = TestRepo::new();
    repo.atag(&["v1.0.0"]);
    repo.commit("next");
    let json = json_ok(repo.bin().args(["tag", "--stage", "rc", "--create"]));
    assert_eq!(json["created"], true);
    assert_eq!(repo.git(&["cat-file", "-t", "v1.0.1-rc.0"]), "tag");
    assert_eq!(
        repo.git(&["rev-parse", "v1.0.1-rc.0^{commit}"]),
        repo.head()
    );

    // Release of that rc; twice: the second run finds the tag at HEAD.
    let first = json_ok(repo.bin().args(["tag", "--stage", "release", "--create"]));
    assert_eq!(first["git_tag"], "v1.0.1");
    assert_eq!(first["created"], true);
    let second = json_ok(repo.bin().args(["tag", "--stage", "release", "--create"]));
    assert_eq!(second["created"], false);
    assert_eq!(second["git_tag_state"], "at-head");
    assert_eq!(repo.tags(), ["v1.0.0", "v1.0.1", "v1.0.1-rc.0"]);
}

#[test]
fn release_tag_on_another_commit_is_refused_and_nothing_is_created() {
    let repo = TestRepo::new();
    repo.atag(&["v1.0.0"]);
    repo.commit("later");
    let err = fails_with(
        repo.bin().args([
            "tag",
            "--stage",
            "release",
            "--version",
            "1.0.0",
            "--create",
        ]),
        2,
    );
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(repo.tags(), ["v1.0.0"]);
}

#[test]
fn templates_come_from_the_config() {
    let repo = TestRepo::new();
    repo.atag(&["v2.0.0"]);
    repo.write(
        "openim-release.yaml",
        "# team conventions\ntags:\n  rc:\n    tags: [\"{version}-rc{n}\", \"test-{sha7}\"]\n  dev:\n    tags: [\"dev-{branch}\"]\n",
    );
    let sha = repo.head();
    let out = stdout_ok(repo.bin().args(["tag", "--stage", "rc"]));
    assert_eq!(lines(&out), ["2.0.1-rc0", &format!("test-{}", &sha[..7])]);
    let out = stdout_ok(repo.bin().args(["tag", "--stage", "dev"]));
    assert_eq!(lines(&out), ["dev-main"]);
    // -C and --config point elsewhere.
    let other = tempfile::tempdir().unwrap();
    let cfg = other.path().join("custom.yaml");
    std::fs::write(&cfg, "tags:\n  dev:\n    tags: [\"x-{branch}\"]\n").unwrap();
    let out = stdout_ok(bin(other.path()).args([
        "-C",
        repo.path().to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "tag",
        "--stage",
        "dev",
    ]));
    assert_eq!(lines(&out), ["x-main"]);
}

#[test]
fn packed_tags_are_peeled_like_loose_ones() {
    let repo = TestRepo::new();
    repo.atag(&["v3.7.0"]);
    repo.commit("release");
    repo.atag(&["v3.8.0-rc.1", "v3.8.0"]);
    repo.tag(&["nightly-20261124-aaaaaaa"]);
    repo.commit("after");
    repo.atag(&["nightly-20261125-bbbbbbb"]);
    repo.git(&["pack-refs", "--all"]);
    repo.git(&["checkout", "-q", "HEAD~1"]);
    let json = json_ok(
        repo.bin()
            .args(["tag", "--stage", "release", "--branch", "main"]),
    );
    assert_eq!(json["git_tag"], "v3.8.0");
    assert_eq!(json["git_tag_state"], "at-head");
    // The newest nightly is on the next commit: HEAD changed relative to it.
    let nightly = json_ok(
        repo.bin()
            .args(["tag", "--stage", "nightly", "--branch", "main"]),
    );
    assert_eq!(nightly["changed"], true);
    repo.git(&["checkout", "-q", "main"]);
    let nightly = json_ok(repo.bin().args(["tag", "--stage", "nightly"]));
    assert_eq!(nightly["changed"], false);
}

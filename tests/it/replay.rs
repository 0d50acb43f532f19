//! `scripts/replay` on a fixture shaped like OpenIM's history, where every
//! version tag was made the way the tool says: the replay must agree on all
//! of them, report a planted wrong tag, and leave the repository untouched.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A repository whose commits and tags carry a clock that only moves when
/// told to, so that the creation order of the tags is exact.
struct Fixture {
    repo: TestRepo,
    /// Seconds since the epoch of the next commit or tag.
    clock: i64,
}

impl Fixture {
    fn new() -> Fixture {
        let mut f = Fixture {
            repo: TestRepo::empty(),
            clock: 1_672_531_200, // 2023-01-01
        };
        f.commit("initial");
        f
    }

    fn tick(&mut self) {
        self.clock += 3600;
    }

    fn git(&self, args: &[&str]) -> String {
        let date = format!("@{} +0000", self.clock);
        let mut cmd = Command::new("git");
        base_env(&mut cmd);
        let out = cmd
            .current_dir(self.repo.path())
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn commit(&mut self, message: &str) {
        self.tick();
        let file = self.repo.path().join("file.txt");
        let mut text = std::fs::read_to_string(&file).unwrap_or_default();
        text.push_str(message);
        text.push('\n');
        std::fs::write(&file, text).unwrap();
        self.git(&["add", "file.txt"]);
        self.git(&["commit", "-q", "-m", message]);
    }

    /// Check out `branch`, creating it at HEAD if it does not exist.
    fn on(&self, branch: &str) {
        let exists = self
            .git(&["branch", "--list", branch])
            .trim_start_matches(['*', ' '])
            .eq(branch);
        if exists {
            self.git(&["checkout", "-q", branch]);
        } else {
            self.git(&["checkout", "-q", "-b", branch]);
        }
    }

    /// Tag HEAD with what `tag --stage STAGE` says here (`extra`: e.g.
    /// `--branch` on a detached commit), annotated or lightweight. A
    /// lightweight tag's time is its commit's: only on a commit of its own.
    fn tool_tag(&mut self, stage: &str, annotated: bool, extra: &[&str]) -> String {
        let doc = json_ok(self.repo.bin().args(["tag", "--stage", stage]).args(extra));
        assert_eq!(doc["git_tag_state"], "new", "{doc}");
        let name = doc["git_tag"].as_str().unwrap().to_string();
        self.tag(&name, annotated);
        name
    }

    fn tag(&mut self, name: &str, annotated: bool) {
        self.tick();
        if annotated {
            self.git(&["tag", "-a", "-m", name, name]);
        } else {
            self.git(&["tag", name]);
        }
    }

    /// OpenIM's release workflow: a commit of its own ("Update version to
    /// …") that only the tag holds, made from `branch`.
    fn tool_tag_on_version_commit(&mut self, stage: &str, branch: &str) -> String {
        self.git(&["checkout", "-q", "--detach"]);
        self.commit("Update version");
        let name = self.tool_tag(stage, true, &["--branch", branch]);
        self.git(&["checkout", "-q", branch]);
        name
    }
}

/// The history: release lines with rc series, an rc abandoned on main, an
/// rc series on a release branch never released, two rcs on one commit,
/// releases at their rc and after fixes on top of it, patch tags on
/// `3.8.3-patch` (one on a version commit of its own), and odd tags.
fn openim_like() -> (Fixture, Vec<String>) {
    let mut f = Fixture::new();
    let mut made = Vec::new();
    f.tag("v2.04", false);
    f.on("release-v3.7");
    f.commit("3.7 work");
    made.push(f.tool_tag("rc", true, &[]));
    // A second candidate of the same commit, at the same second.
    f.clock -= 3600;
    made.push(f.tool_tag("rc", true, &[]));
    made.push(f.tool_tag("release", true, &[]));
    f.on("main");
    f.git(&["merge", "-q", "--no-ff", "-m", "merge 3.7", "release-v3.7"]);
    f.commit("main work");
    f.tag("v3.8.0-alpha.1", true);
    f.commit("more main work");
    f.tag("v3.2.0-rc0", false);
    // An rc on main, abandoned for the 3.8 line.
    made.push(f.tool_tag("rc", false, &[]));
    f.on("release-v3.8");
    f.commit("3.8 work");
    made.push(f.tool_tag("rc", true, &[]));
    f.commit("3.8 fix");
    made.push(f.tool_tag("rc", true, &[]));
    made.push(f.tool_tag("release", true, &[]));
    f.commit("3.8.1 work");
    made.push(f.tool_tag("rc", true, &[]));
    // Released after a fix on top of its candidate.
    f.commit("3.8.1 fix");
    made.push(f.tool_tag("release", true, &[]));
    // A line prepared and never released.
    f.on("main");
    f.on("release-v3.9");
    f.commit("3.9 work");
    made.push(f.tool_tag("rc", true, &[]));
    f.commit("3.9 more");
    made.push(f.tool_tag("rc", false, &[]));
    f.on("release-v3.8");
    f.commit("3.8.2 work");
    made.push(f.tool_tag("rc", true, &[]));
    made.push(f.tool_tag("release", true, &[]));
    f.on("release-v3.8.3");
    f.commit("3.8.3 work");
    made.push(f.tool_tag("rc", true, &[]));
    f.commit("3.8.3 fix");
    made.push(f.tool_tag("rc", true, &[]));
    made.push(f.tool_tag("release", true, &[]));
    f.on("3.8.3-patch");
    f.commit("hotfix 1");
    made.push(f.tool_tag("patch", false, &[]));
    f.commit("hotfix 2");
    made.push(f.tool_tag_on_version_commit("patch", "3.8.3-patch"));
    f.on("main");
    f.git(&["merge", "-q", "--no-ff", "-m", "merge 3.8", "release-v3.8"]);
    f.commit("main after 3.8");
    made.push(f.tool_tag("rc", true, &[]));
    f.on("3.8.3-patch");
    f.commit("hotfix 3");
    made.push(f.tool_tag("patch", true, &[]));
    f.on("main");
    f.tag("v3.8.4-alpha.1", true);
    f.on("pre-release-v3.8.4");
    f.commit("3.8.4 work");
    made.push(f.tool_tag("rc", true, &[]));
    made.push(f.tool_tag("release", true, &[]));
    (f, made)
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/replay")
}

/// Run the replay; returns (exit code, stdout, stderr). Its temporary
/// directory goes under `tmp`, so that the test sees it removed.
fn run_replay(args: &[&str], repo: &Path, tmp: &Path) -> (i32, String, String) {
    let out = Command::new(script())
        .args(["--bin", env!("CARGO_BIN_EXE_openim-release")])
        .args(args)
        .arg(repo)
        .env("TMPDIR", tmp)
        // Nothing of a CI run may leak into the tool's answers.
        .env("GITHUB_REF_NAME", "main")
        .env("OPENIM_RELEASE_STAGE", "dev")
        .output()
        .expect("running scripts/replay");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn replay_json(repo: &Path) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run_replay(&["--json"], repo, tmp.path());
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// Everything of the repository a replay could change.
fn snapshot(dir: &Path) -> String {
    [
        git(dir, &["for-each-ref", "--format=%(refname) %(objectname)"]),
        git(dir, &["symbolic-ref", "-q", "HEAD"]),
        git(dir, &["rev-parse", "HEAD"]),
        git(dir, &["status", "--porcelain", "--ignored"]),
        std::fs::read_to_string(dir.join(".git/config")).unwrap(),
    ]
    .join("\n")
}

fn rows(doc: &Value) -> &Vec<Value> {
    doc["rows"].as_array().unwrap()
}

#[test]
fn replay_agrees_with_a_history_the_tool_made_and_reports_a_wrong_tag() {
    let (mut f, made) = openim_like();
    let dir = f.repo.path().to_path_buf();
    let before = snapshot(&dir);
    let doc = replay_json(&dir);
    assert_eq!(snapshot(&dir), before, "the replay changed the repository");

    let tags: Vec<&str> = rows(&doc)
        .iter()
        .map(|r| r["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, made, "every stage tag, in creation order");
    for r in rows(&doc) {
        assert_eq!(r["verdict"], "agree", "{r}");
    }
    assert_eq!(doc["agreement"]["agree"], made.len());
    assert_eq!(doc["agreement"]["total"], made.len());
    assert_eq!(doc["agreement"]["percent"], 100.0);
    assert_eq!(doc["stages"]["rc"]["total"], 13);
    assert_eq!(doc["stages"]["release"]["total"], 6);
    assert_eq!(doc["stages"]["patch"]["total"], 3);
    let skipped: Vec<&str> = doc["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        skipped,
        ["v2.04", "v3.8.0-alpha.1", "v3.2.0-rc0", "v3.8.4-alpha.1"]
    );
    // The branch each tag was made on, found again; the version commit of
    // its own through its parent.
    let row = |tag: &str| {
        rows(&doc)
            .iter()
            .find(|r| r["tag"] == tag)
            .unwrap_or_else(|| panic!("no row {tag}"))
            .clone()
    };
    for (tag, branch, via) in [
        ("v3.7.0-rc.1", "release-v3.7", 0),
        ("v3.7.1-rc.0", "main", 0),
        ("v3.8.1", "release-v3.8", 0),
        ("v3.9.0-rc.1", "release-v3.9", 0),
        ("v3.8.3-patch.1", "3.8.3-patch", 0),
        ("v3.8.3-patch.2", "3.8.3-patch", 1),
        // Made on main, which pre-release-v3.8.4 forked from later: a
        // branch naming the version is preferred (the answer is the same).
        ("v3.8.4-rc.0", "pre-release-v3.8.4", 0),
        ("v3.8.4-rc.1", "pre-release-v3.8.4", 0),
    ] {
        let r = row(tag);
        assert_eq!(r["branch"], branch, "{r}");
        assert_eq!(r["branch_via"], via, "{r}");
    }

    // A maintainer skips a number: rc.1 of a new line without rc.0.
    f.on("main");
    f.on("release-v3.10");
    f.commit("3.10 work");
    f.tag("v3.10.0-rc.1", true);
    let planted_state = snapshot(&dir);
    // The table this time: the planted row, then the summary lines.
    let tmp = tempfile::tempdir().unwrap();
    let (code, text, stderr) = run_replay(&[], &dir, tmp.path());
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(snapshot(&dir), planted_state);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    let planted = text
        .lines()
        .find(|l| l.starts_with("v3.10.0-rc.1 "))
        .unwrap_or_else(|| panic!("no row of the planted tag:\n{text}"));
    let cells: Vec<&str> = planted.split_whitespace().collect();
    assert_eq!(
        cells[2..],
        ["release-v3.10", "rc", "v3.10.0-rc.0", "disagree"],
        "{text}"
    );
    let n = made.len();
    let pct = format!("{:.1}", 100.0 * n as f64 / (n + 1) as f64);
    let pct = pct.trim_end_matches(".0");
    assert!(
        text.contains(&format!("agreement: {n} of {} ({pct}%)", n + 1)),
        "{text}"
    );
    assert!(
        text.contains("per stage: rc 13 of 14; release 6 of 6; patch 3 of 3"),
        "{text}"
    );
    assert!(
        text.contains("not a stage's tag, skipped: 4 (v2.04, "),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("v3.8.3-patch.2 ") && l.contains("3.8.3-patch (~1)")),
        "{text}"
    );
}

#[test]
fn replay_refuses_bad_usage_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let not_git = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run_replay(&[], not_git.path(), tmp.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not a git repository"), "{stderr}");
    let (code, _, stderr) = run_replay(&["--no-such-option"], not_git.path(), tmp.path());
    assert_eq!(code, 2, "{stderr}");
}

/// The script's copies of the tool's defaults stay the tool's.
#[test]
fn replay_uses_the_tools_release_branch_pattern_and_config_files() {
    let text = std::fs::read_to_string(script()).unwrap();
    let pattern = openim_release::config::DEFAULT_RELEASE_BRANCH;
    assert!(
        text.contains(&format!("RELEASE_BRANCH = r\"{pattern}\"")),
        "scripts/replay's RELEASE_BRANCH differs from DEFAULT_RELEASE_BRANCH {pattern}"
    );
    for name in openim_release::config::FILE_NAMES {
        assert!(text.contains(&format!("\"{name}\"")), "{name}");
    }
}

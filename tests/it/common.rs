//! Test helpers: real git repositories with pinned dates, and the binary run
//! with a scrubbed environment so results do not depend on where tests run.

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

pub const DATE: &str = "2026-11-25T12:00:00Z";

/// A home directory shared by all tests: empty, so no global git config leaks in.
fn test_home() -> PathBuf {
    let home = std::env::temp_dir().join("openim-release-test-home");
    std::fs::create_dir_all(&home).unwrap();
    home
}

pub fn base_env(cmd: &mut std::process::Command) {
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", test_home())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.test")
        .env("GIT_COMMITTER_NAME", "Test Committer")
        .env("GIT_COMMITTER_EMAIL", "committer@example.test")
        .env("GIT_AUTHOR_DATE", DATE)
        .env("GIT_COMMITTER_DATE", DATE);
}

/// The binary under test, in `dir`, with no GITHUB_*/RUNNER_*/CI variables.
pub fn bin(dir: &Path) -> Command {
    Command::from_std(std_bin(dir))
}

/// The same as a plain `std::process::Command`, for spawning.
pub fn std_bin(dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_openim-release"));
    base_env(&mut cmd);
    cmd.current_dir(dir);
    cmd
}

/// Run git in `dir`; panics with its stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let mut cmd = std::process::Command::new("git");
    base_env(&mut cmd);
    let out = cmd
        .current_dir(dir)
        .args(args)
        .output()
        .expect("running git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub struct TestRepo {
    pub dir: TempDir,
}

impl TestRepo {
    /// A repository on `main` with one commit.
    pub fn new() -> TestRepo {
        let repo = TestRepo::empty();
        repo.commit("initial");
        repo
    }

    /// A repository with no commits.
    pub fn empty() -> TestRepo {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q", "-b", "main"]);
        TestRepo { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn git(&self, args: &[&str]) -> String {
        git(self.path(), args)
    }

    /// Commit a change; returns the new HEAD sha.
    pub fn commit(&self, message: &str) -> String {
        let file = self.path().join("file.txt");
        let mut text = std::fs::read_to_string(&file).unwrap_or_default();
        text.push_str(message);
        text.push('\n');
        std::fs::write(&file, text).unwrap();
        self.git(&["add", "file.txt"]);
        self.git(&["commit", "-q", "-m", message]);
        self.head()
    }

    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    /// Lightweight tags at HEAD.
    pub fn tag(&self, names: &[&str]) {
        for n in names {
            self.git(&["tag", n]);
        }
    }

    /// Annotated tags at HEAD.
    pub fn atag(&self, names: &[&str]) {
        for n in names {
            self.git(&["tag", "-a", "-m", n, n]);
        }
    }

    /// Write a file (and its directories) in the work tree.
    pub fn write(&self, rel: &str, text: &str) {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Tag names in the repository, sorted.
    pub fn tags(&self) -> Vec<String> {
        tag_list(self.path())
    }

    pub fn bin(&self) -> Command {
        bin(self.path())
    }
}

pub fn tag_list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = git(dir, &["tag", "--list"])
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// A bare repository to serve as `origin`.
pub fn bare_remote() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "--bare", "-b", "main"]);
    dir
}

/// Run and return stdout as text, asserting success.
pub fn stdout_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Run with `--output json` appended and parse stdout.
pub fn json_ok(cmd: &mut Command) -> serde_json::Value {
    let text = stdout_ok(cmd.args(["--output", "json"]));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Run, expect failure with `code`; returns stderr.
pub fn fails_with(cmd: &mut Command, code: i32) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

pub fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

/// A clone of `origin` (a local bare repository, over `file://`), with
/// `extra` arguments to `git clone`.
pub fn clone_of(origin: &Path, extra: &[&str]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", origin.display());
    let mut args = vec!["clone", "-q"];
    args.extend_from_slice(extra);
    args.extend([url.as_str(), dir.path().to_str().unwrap()]);
    git(Path::new("/"), &args);
    dir
}

/// `tag --stage STAGE --push` in every clone at once; the git tag each
/// claimed.
pub fn claim_at_once(clones: &[TempDir], stage: &str) -> Vec<String> {
    let children: Vec<_> = clones
        .iter()
        .map(|c| {
            std_bin(c.path())
                .args(["tag", "--stage", stage, "--push", "--output", "json", "-q"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            json["git_tag"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Start `python3 <script> <args>` (a server of tests/, the script's path
/// relative to the repository root) and wait for the `READY <url>` line it
/// prints once it listens: the child (to kill) and the URL.
pub fn start_ready_server<I, S>(script: &str, args: I) -> (std::process::Child, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(script))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {script}: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("{script} did not start: {line:?}"))
        .to_string();
    (child, url)
}

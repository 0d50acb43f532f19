//! Runs tests/fake_github.py (a stateful fake of GitHub's REST API built on
//! the response shapes in tests/fixtures/github) for one test.

use serde_json::Value;

use std::process::{Child, Command};

pub struct FakeGitHub {
    pub url: String,
    child: Child,
}

impl FakeGitHub {
    pub fn start(token: &str) -> FakeGitHub {
        let (child, url) = crate::common::start_ready_server(
            "tests/fake_github.py",
            ["--port", "0", "--token", token],
        );
        FakeGitHub { url, child }
    }

    fn control(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sS",
            "--noproxy",
            "*",
            "-X",
            method,
            &format!("{}{path}", self.url),
        ]);
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "-d", &b.to_string()]);
        }
        let out = cmd.output().unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    /// A reviewer reviewed: GitHub then drops them from the requested
    /// reviewers (the API call a review amounts to, made with `token`).
    pub fn reviewed(&self, repository: &str, number: u64, reviewer: &str, token: &str) {
        let out = Command::new("curl")
            .args(["-sS", "--fail", "--noproxy", "*", "-X", "DELETE"])
            .args(["-H", &format!("Authorization: token {token}")])
            .args(["-H", "Content-Type: application/json"])
            .args([
                "-d",
                &serde_json::json!({ "reviewers": [reviewer] }).to_string(),
            ])
            .arg(format!(
                "{}/repos/{repository}/pulls/{number}/requested_reviewers",
                self.url
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// One authenticated API call: the status and the parsed JSON answer.
    pub fn api(&self, token: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--noproxy", "*", "-X", method])
            .args(["-H", &format!("Authorization: token {token}")])
            .args(["-w", "\n%{http_code}"]);
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "-d", &b.to_string()]);
        }
        let out = cmd.arg(format!("{}{path}", self.url)).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let (json, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        let status = status.trim().parse().unwrap_or_else(|_| {
            panic!(
                "{method} {path}: no status from curl: {text:?} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (status, serde_json::from_str(json).unwrap_or(Value::Null))
    }

    pub fn state(&self) -> Value {
        self.control("GET", "/_fake/state", None)
    }

    pub fn faults(&self, rules: Value) {
        self.control(
            "POST",
            "/_fake/faults",
            Some(&serde_json::json!({ "rules": rules })),
        );
    }

    /// Open pull requests of owner/repo.
    pub fn pulls(&self, repository: &str) -> Vec<Value> {
        let state = self.state();
        let repos = &state["repos"];
        let pulls = repos[repository]["pulls"].clone();
        match pulls {
            Value::Array(a) => a,
            Value::Object(m) => m.into_iter().map(|(_, v)| v).collect(),
            _ => Vec::new(),
        }
    }

    /// GitHub Releases of owner/repo (drafts included).
    pub fn releases(&self, repository: &str) -> Vec<Value> {
        self.state()["repos"][repository]["releases"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

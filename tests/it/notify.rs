//! Notifications and the GitHub Release of `release`, end to end without
//! the Docker services: a release of stage `release` (no build: the images
//! exist; the deploy pushed to a local deploy repository) publishes the
//! GitHub Release on the fake GitHub and tells a local receiver
//! (tests/fake_webhooks.py) in every format, which checks each message's
//! shape and signature as the service would. A destination that fails is a
//! warning; a release that fails is told too; no secret is ever printed.

use crate::common::*;
use crate::fake_github::FakeGitHub;
use serde_json::Value;
use std::process::{Child, Command};

const TOKEN: &str = "notify-test-token";
const REPOSITORY: &str = "openimsdk/open-im-server";
const DINGTALK_SECRET: &str = "SECdingtalk0123456789";
const FEISHU_SECRET: &str = "feishu-secret-0123456789";
const WEBHOOK_SECRET: &str = "webhook-secret-0123456789";

/// tests/fake_webhooks.py, for one test.
pub struct Receiver {
    pub url: String,
    child: Child,
}

impl Receiver {
    pub fn start(secrets: &[(&str, &str)]) -> Receiver {
        let mut args = vec!["--port".to_string(), "0".to_string()];
        for (kind, secret) in secrets {
            args.push("--secret".into());
            args.push(format!("{kind}={secret}"));
        }
        let (child, url) = crate::common::start_ready_server("tests/fake_webhooks.py", args);
        Receiver { url, child }
    }

    pub fn received(&self) -> Vec<Value> {
        let out = Command::new("curl")
            .args(["-sS", "--noproxy", "*", &format!("{}/_received", self.url)])
            .output()
            .unwrap();
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        doc["received"].as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Setup {
    src: TestRepo,
    _origin: tempfile::TempDir,
    _deploy: tempfile::TempDir,
    deploy_path: String,
    gh: FakeGitHub,
    rx: Receiver,
}

/// open-im-server's shape with v3.8.0 released and a fix after it; origin
/// and the deploy repository are local; `notify:` names every format.
fn setup() -> Setup {
    let src = crate::build::fixture(&["ghcr.io/openimsdk".into()], &["linux/amd64"]);
    let deploy = bare_remote();
    let seed = TestRepo::empty();
    seed.write(
        "docker-compose/.env",
        "OPENIM_API_IMAGE=ghcr.io/openimsdk/openim-api:v3.8.0\n",
    );
    seed.git(&["add", "-A"]);
    seed.git(&["commit", "-q", "-m", "seed"]);
    seed.git(&["push", "-q", deploy.path().to_str().unwrap(), "main"]);
    let deploy_path = deploy.path().display().to_string();
    let mut cfg = std::fs::read_to_string(src.path().join("openim-release.yaml")).unwrap();
    cfg.push_str(&format!(
        "deploy:\n  url: {deploy_path}\n  base: main\n  mode: push\n  env_files: [docker-compose/.env]\n\
         notify:\n\
         \x20 - type: slack\n    url_env: SLACK_URL\n\
         \x20 - type: feishu\n    url_env: FEISHU_URL\n    secret_env: FEISHU_SECRET\n\
         \x20 - type: dingtalk\n    url_env: DINGTALK_URL\n    secret_env: DINGTALK_SECRET\n\
         \x20 - type: wecom\n    url_env: WECOM_URL\n\
         \x20 - type: webhook\n    url_env: HOOK_URL\n    secret_env: HOOK_SECRET\n\
         \x20 - name: broken\n    type: slack\n    url_env: BROKEN_URL\n    on: [success]\n"
    ));
    src.write("openim-release.yaml", &cfg);
    src.git(&["add", "-A"]);
    src.git(&["commit", "-q", "-m", "chore: release config"]);
    src.atag(&["v3.8.0"]);
    src.write("cmd/openim-api/fix.txt", "fix\n");
    src.git(&["add", "-A"]);
    src.git(&["commit", "-q", "-m", "fix(api): the fix for 3.8.1 (#21)"]);
    let origin = bare_remote();
    src.git(&["remote", "add", "origin", origin.path().to_str().unwrap()]);
    src.git(&["push", "-q", "origin", "main", "--tags"]);
    let gh = FakeGitHub::start(TOKEN);
    let rx = Receiver::start(&[
        ("dingtalk", DINGTALK_SECRET),
        ("feishu", FEISHU_SECRET),
        ("webhook", WEBHOOK_SECRET),
    ]);
    Setup {
        src,
        _origin: origin,
        _deploy: deploy,
        deploy_path,
        gh,
        rx,
    }
}

impl Setup {
    fn release(&self, args: &[&str]) -> assert_cmd::Command {
        let rx = &self.rx.url;
        let mut cmd = self.src.bin();
        cmd.env("GITHUB_TOKEN", TOKEN)
            .env("GITHUB_API_URL", &self.gh.url)
            .env("GITHUB_REPOSITORY", REPOSITORY)
            .env(
                "SLACK_URL",
                format!("{rx}/slack/T000/B000/slack-path-secret"),
            )
            .env(
                "FEISHU_URL",
                format!("{rx}/feishu/open-apis/bot/v2/hook/feishu-hook-secret"),
            )
            .env("FEISHU_SECRET", FEISHU_SECRET)
            .env(
                "DINGTALK_URL",
                format!("{rx}/dingtalk?access_token=dingtalk-token-secret"),
            )
            .env("DINGTALK_SECRET", DINGTALK_SECRET)
            .env("WECOM_URL", format!("{rx}/wecom?key=wecom-key-secret"))
            .env("HOOK_URL", format!("{rx}/webhook/ci"))
            .env("HOOK_SECRET", WEBHOOK_SECRET)
            .env("BROKEN_URL", format!("{rx}/status/500/broken-path-secret"))
            .arg("release")
            .args(args);
        cmd
    }
}

const SECRETS: &[&str] = &[
    TOKEN,
    DINGTALK_SECRET,
    FEISHU_SECRET,
    WEBHOOK_SECRET,
    "slack-path-secret",
    "feishu-hook-secret",
    "dingtalk-token-secret",
    "wecom-key-secret",
    "broken-path-secret",
];

fn assert_no_secret(text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{s} printed:\n{text}");
    }
}

#[test]
fn a_release_publishes_its_github_release_and_tells_every_destination() {
    let w = setup();
    let outputs = tempfile::tempdir().unwrap();
    let release_3_8_1 = [
        "--stage",
        "release",
        "--version",
        "3.8.1",
        "--skip-build",
        "--no-verify",
        "--output",
        "json",
    ];
    let out = w
        .release(&release_3_8_1)
        .env("GITHUB_OUTPUT", outputs.path().join("out"))
        .env("GITHUB_STEP_SUMMARY", outputs.path().join("summary"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_no_secret(&stdout);
    assert_no_secret(&stderr);
    let json: Value = serde_json::from_str(&stdout).unwrap();

    // The GitHub Release of v3.8.1, with the notes and the deploy.
    let rel = &json["github_release"];
    assert_eq!(rel["action"], "created", "{json}");
    let url = format!("{}/{REPOSITORY}/releases/tag/v3.8.1", w.gh.url);
    assert_eq!(rel["url"], url);
    let releases = w.gh.state()["repos"][REPOSITORY]["releases"].clone();
    assert_eq!(releases.as_array().unwrap().len(), 1);
    let body = releases[0]["body"].as_str().unwrap();
    assert!(body.contains("the fix for 3.8.1"), "{body}");
    assert!(body.contains(&format!("/{REPOSITORY}/pull/21")), "{body}");
    assert!(body.contains("on `main` of"), "{body}");
    assert_eq!(releases[0]["latest"], true);
    let written = std::fs::read_to_string(outputs.path().join("out")).unwrap();
    assert!(written.contains("release-url<<"), "{written}");
    assert!(written.contains(&url), "{written}");
    let summary = std::fs::read_to_string(outputs.path().join("summary")).unwrap();
    assert!(
        summary.contains("| notifications | 5 told; not told: broken (slack) |"),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("| GitHub Release | [v3.8.1]({url}) |")),
        "{summary}"
    );
    assert_no_secret(&summary);

    // Every format received, each valid and signed as its service wants.
    let got = w.rx.received();
    let kinds: Vec<&str> = got.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    // Five destinations once each; the broken one three times (a 5xx is
    // retried).
    assert_eq!(got.len(), 8, "{got:#?}");
    assert_eq!(got.iter().filter(|r| r["kind"] == "status").count(), 3);
    for kind in ["slack", "feishu", "dingtalk", "wecom", "webhook"] {
        let r = got
            .iter()
            .find(|r| r["kind"] == kind)
            .unwrap_or_else(|| panic!("{kind}: {kinds:?}"));
        assert_eq!(r["ok"], true, "{kind}: {:?}", r["problems"]);
    }
    let slack = got.iter().find(|r| r["kind"] == "slack").unwrap();
    assert_eq!(
        slack["body"]["text"],
        "open-im-server release v3.8.1 finished"
    );
    let hook = got.iter().find(|r| r["kind"] == "webhook").unwrap();
    assert_eq!(hook["body"]["event"], "release.finished");
    assert_eq!(hook["body"]["version"], "3.8.1");
    assert_eq!(hook["body"]["release_url"], url.as_str());
    let ding = got.iter().find(|r| r["kind"] == "dingtalk").unwrap();
    assert!(ding["body"]["markdown"]["text"]
        .as_str()
        .unwrap()
        .contains("3.8.1"));

    // The broken destination: a warning naming it, never its URL.
    let sent = json["notifications"].as_array().unwrap();
    assert_eq!(sent.len(), 6);
    let broken = sent.iter().find(|s| s["name"] == "broken").unwrap();
    assert_eq!(broken["ok"], false);
    assert!(
        broken["error"].as_str().unwrap().contains("HTTP 500"),
        "{broken}"
    );
    assert!(
        stderr.contains("warning: notification broken (slack) not sent: HTTP 500"),
        "{stderr}"
    );
    assert_eq!(sent.iter().filter(|s| s["ok"] == true).count(), 5);

    // A re-run, logging everything every crate logs: the release is found
    // and left as it is, never a second; no URL or secret in the log.
    let before = w.rx.received().len();
    let out = w
        .release(&release_3_8_1)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("TRACE"), "{stderr}");
    assert_no_secret(&stderr);
    assert_eq!(w.rx.received().len(), before + 8);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["github_release"]["action"], "up-to-date", "{json}");
    assert_eq!(
        w.gh.state()["repos"][REPOSITORY]["releases"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_failed_release_is_told_and_secrets_are_masked_in_actions() {
    let w = setup();
    // The deploy repository is gone: the checks fail before anything changes.
    std::fs::remove_dir_all(&w.deploy_path).unwrap();
    let summary = tempfile::NamedTempFile::new().unwrap();
    let out = w
        .release(&[
            "--stage",
            "release",
            "--version",
            "3.8.1",
            "--skip-build",
            "--no-verify",
        ])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", summary.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // In Actions the runner is told to mask every secret first.
    for s in [DINGTALK_SECRET, FEISHU_SECRET, WEBHOOK_SECRET] {
        assert!(stderr.contains(&format!("::add-mask::{s}")), "{stderr}");
    }
    let masked: String = stderr
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_no_secret(&masked);
    let got = w.rx.received();
    // `broken` is told of successes only.
    assert_eq!(got.len(), 5, "{got:#?}");
    for r in &got {
        assert_eq!(r["ok"], true, "{}: {:?}", r["kind"], r["problems"]);
    }
    let hook = got.iter().find(|r| r["kind"] == "webhook").unwrap();
    assert_eq!(hook["body"]["event"], "release.failed");
    assert_eq!(hook["body"]["outcome"], "failure");
    assert_eq!(hook["body"]["version"], "3.8.1");
    assert!(
        hook["body"]["error"]
            .as_str()
            .unwrap()
            .contains("deploy repository"),
        "{hook}"
    );
    let wecom = got.iter().find(|r| r["kind"] == "wecom").unwrap();
    assert!(wecom["body"]["markdown"]["content"]
        .as_str()
        .unwrap()
        .contains("open-im-server release v3.8.1 failed"));
    // Nothing was released: no GitHub Release.
    assert!(w.gh.state()["repos"][REPOSITORY]["releases"]
        .as_array()
        .is_none_or(|r| r.is_empty()));
}

#[test]
fn an_rc_release_publishes_a_prerelease_when_configured() {
    let w = setup();
    let path = w.src.path().join("openim-release.yaml");
    let mut cfg = std::fs::read_to_string(&path).unwrap();
    cfg.push_str("github_release:\n  stages: [rc, release, patch]\n");
    w.src.write("openim-release.yaml", &cfg);
    w.src.git(&["add", "-A"]);
    w.src.git(&["commit", "-q", "-m", "chore: rc releases too"]);
    let json = json_ok(&mut w.release(&["--stage", "rc", "--skip-build", "--no-verify"]));
    let rel = &json["github_release"];
    assert_eq!(rel["tag"], "v3.8.1-rc.0", "{json}");
    assert_eq!(rel["prerelease"], true, "{json}");
    assert_eq!(rel["action"], "created", "{json}");
    let releases = w.gh.state()["repos"][REPOSITORY]["releases"].clone();
    assert_eq!(releases.as_array().unwrap().len(), 1);
    assert_eq!(releases[0]["prerelease"], true);
    assert_eq!(releases[0]["latest"], false, "an rc is never the latest");
    // rc is told too (the destinations without `stages` take every stage).
    let sent = json["notifications"].as_array().unwrap();
    assert_eq!(sent.iter().filter(|s| s["ok"] == true).count(), 5, "{json}");
}

/// A nightly is told as a nightly (its dated tag, no version) and gets no
/// GitHub Release: a Release is of a version's git tag.
#[test]
fn a_nightly_is_told_and_publishes_no_github_release() {
    let w = setup();
    let json = json_ok(&mut w.release(&["--stage", "nightly", "--skip-build", "--no-verify"]));
    assert!(json["github_release"].is_null(), "{json}");
    assert!(w.gh.releases(REPOSITORY).is_empty());
    let sent = json["notifications"].as_array().unwrap();
    assert_eq!(sent.iter().filter(|s| s["ok"] == true).count(), 5, "{json}");
    let got = w.rx.received();
    let slack = got.iter().find(|r| r["kind"] == "slack").unwrap();
    let text = slack["body"]["text"].as_str().unwrap();
    let git_tag = json["tag"]["git_tag"].as_str().unwrap();
    assert!(git_tag.starts_with("nightly-"), "{json}");
    assert!(text.contains("nightly"), "{text}");
    let hook = got.iter().find(|r| r["kind"] == "webhook").unwrap();
    assert_eq!(hook["ok"], true, "{:?}", hook["problems"]);
    assert_eq!(hook["body"]["event"], "release.finished", "{hook}");
    assert_eq!(hook["body"]["stage"], "nightly", "{hook}");
    assert_eq!(hook["body"]["git_tag"], git_tag, "{hook}");
    assert!(hook["body"]["version"].is_null(), "{hook}");
    assert_eq!(
        hook["body"]["title"],
        format!("open-im-server nightly {git_tag} finished")
    );
}

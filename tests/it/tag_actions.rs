//! The GitHub Actions protocol: outputs, step summary, annotations.

use crate::common::*;

/// Parse `$GITHUB_OUTPUT` text (delimiter and `k=v` forms).
fn parse_outputs(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delim)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
                value.push(l);
            }
            out.insert(name.to_string(), value.join("\n"));
        } else if let Some((k, v)) = line.split_once('=') {
            out.insert(k.to_string(), v.to_string());
        }
    }
    out
}

#[test]
fn writes_outputs_and_summary() {
    let repo = TestRepo::new();
    repo.atag(&["v3.8.0"]);
    let gh = tempfile::tempdir().unwrap();
    let output = gh.path().join("output");
    let summary = gh.path().join("summary");
    stdout_ok(
        repo.bin()
            .args(["tag", "--stage", "rc"])
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", &output)
            .env("GITHUB_STEP_SUMMARY", &summary),
    );
    let outputs = parse_outputs(&std::fs::read_to_string(&output).unwrap());
    assert_eq!(outputs["tags"], "v3.8.1-rc.0\nrc0");
    assert_eq!(outputs["version"], "3.8.1");
    assert_eq!(outputs["git_tag"], "v3.8.1-rc.0");
    let json: serde_json::Value = serde_json::from_str(&outputs["json"]).unwrap();
    assert_eq!(json["git_tag"], "v3.8.1-rc.0");
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("| version | 3.8.1 |"), "{md}");
    assert!(md.contains("`v3.8.1-rc.0`"), "{md}");
}

#[test]
fn nightly_output_says_whether_anything_changed() {
    let repo = TestRepo::new();
    let gh = tempfile::tempdir().unwrap();
    let output = gh.path().join("output");
    stdout_ok(
        repo.bin()
            .args([
                "tag",
                "--stage",
                "nightly",
                "--date",
                "2026-11-25",
                "--create",
            ])
            .env("GITHUB_OUTPUT", &output),
    );
    stdout_ok(
        repo.bin()
            .args(["tag", "--stage", "nightly", "--date", "2026-11-26"])
            .env("GITHUB_OUTPUT", &output),
    );
    let text = std::fs::read_to_string(&output).unwrap();
    // Two runs appended; the last value of `changed` is the second run's.
    let changed: Vec<&str> = text
        .lines()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0].starts_with("changed<<"))
        .map(|w| w[1])
        .collect();
    assert_eq!(changed, ["true", "false"]);
}

#[test]
fn config_errors_become_annotations() {
    let repo = TestRepo::new();
    repo.write("openim-release.yaml", "tags:\n  bogus: 1\n");
    let out = repo
        .bin()
        .args(["tag", "--stage", "rc"])
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "stdout carries results only");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.lines().any(|l| l.starts_with("::error file=")),
        "{stderr}"
    );
    assert!(stderr.contains("openim-release.yaml,line=2::"), "{stderr}");
}

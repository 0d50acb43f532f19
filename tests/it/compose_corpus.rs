//! The compose corpus (tests/fixtures/compose/): one directory per case,
//! each a small project with compose files and a `case.yaml` that says what
//! is read (`compose`, `env_file`, `profiles`, the `environment`) and what
//! comes out: the services with their context, Dockerfile, args, target and
//! platforms, the warnings and notes; or the `error`.
//!
//! Each case is read twice: by the compose reader itself, and by the binary
//! (`build --dry-run` and `build matrix` on a repository holding the case and
//! an openim-release.yaml naming its files), which must refuse exactly what
//! the reader refuses, both with the same message.

use crate::common::*;
use openim_release::build::compose;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    #[allow(dead_code)]
    description: String,
    compose: Vec<PathBuf>,
    #[serde(default)]
    env_file: Option<Vec<PathBuf>>,
    #[serde(default)]
    profiles: Option<Vec<String>>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    expect: Option<Expect>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    services: Vec<Service>,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    notes: Vec<String>,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Service {
    name: String,
    #[serde(default)]
    image: Option<String>,
    context: PathBuf,
    dockerfile: PathBuf,
    #[serde(default)]
    args: BTreeMap<String, String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    platforms: Vec<String>,
}

fn corpus() -> Vec<(String, PathBuf, Case)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compose");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&root).unwrap() {
        let dir = e.unwrap().path();
        let text = std::fs::read_to_string(dir.join("case.yaml"))
            .unwrap_or_else(|e| panic!("{}: case.yaml: {e}", dir.display()));
        let case: Case = serde_yaml_ng::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: case.yaml: {e}", dir.display()));
        assert!(
            case.expect.is_some() != case.error.is_some(),
            "{}: a case has `expect` or `error`",
            dir.display()
        );
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        out.push((name, dir, case));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 30, "the corpus lost cases: {}", out.len());
    out
}

fn contains_all(what: &str, expected: &[String], actual: &[String]) -> Result<(), String> {
    for e in expected {
        if !actual.iter().any(|a| a.contains(e.as_str())) {
            return Err(format!("no {what} contains `{e}`; {what}s: {actual:#?}"));
        }
    }
    if expected.is_empty() && !actual.is_empty() {
        return Err(format!("unexpected {what}s: {actual:#?}"));
    }
    Ok(())
}

/// The reader's answer for one case.
fn read(dir: &Path, case: &Case) -> Result<(), String> {
    let opts = compose::Options {
        files: case.compose.clone(),
        env_files: case.env_file.clone(),
        profiles: case.profiles.clone(),
    };
    let env = |k: &str| case.environment.get(k).cloned();
    match (compose::load(dir, &opts, &env), &case.error, &case.expect) {
        (Err(e), Some(want), _) if e.contains(want.as_str()) => Ok(()),
        (Err(e), Some(want), _) => Err(format!("error `{e}` does not contain `{want}`")),
        (Err(e), None, _) => Err(format!("unexpected error: {e}")),
        (Ok(p), Some(want), _) => Err(format!(
            "read {:?}, expected the error `{want}`",
            p.services
        )),
        (Ok(p), None, Some(expect)) => {
            let got: Vec<Service> = p
                .services
                .iter()
                .map(|s| Service {
                    name: s.name.clone(),
                    image: s.image.clone(),
                    context: s.context.clone(),
                    dockerfile: s.dockerfile.clone(),
                    args: s.args.clone(),
                    target: s.target.clone(),
                    platforms: s.platforms.clone(),
                })
                .collect();
            if got != expect.services {
                return Err(format!(
                    "services differ:\n  got      {got:?}\n  expected {:?}",
                    expect.services
                ));
            }
            contains_all("warning", &expect.warnings, &p.warnings)?;
            contains_all("note", &expect.notes, &p.notes)
        }
        (Ok(_), None, None) => unreachable!(),
    }
}

/// The binary's answer: `build --dry-run` and `build matrix` agree with the
/// reader, refusals included.
fn run(dir: &Path, case: &Case) -> Result<(), String> {
    let repo = TestRepo::new();
    crate::fixtures::copy_with(
        &format!("compose/{}", dir.file_name().unwrap().to_string_lossy()),
        repo.path(),
        &[],
    );
    let list = |l: &[PathBuf]| {
        l.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut config = format!(
        "images:\n  registries: [registry.example.test/corpus]\n  compose: [{}]\n",
        list(&case.compose)
    );
    if let Some(e) = &case.env_file {
        config.push_str(&format!("  compose_env_file: [{}]\n", list(e)));
    }
    if let Some(p) = &case.profiles {
        config.push_str(&format!("  compose_profiles: [{}]\n", p.join(", ")));
    }
    repo.write("openim-release.yaml", &config);
    let cmd = |args: &[&str]| {
        let mut c = bin(repo.path());
        c.args(args).envs(&case.environment);
        c.output().unwrap()
    };
    let build = cmd(&["build", "--dry-run", "--tag", "v1", "--output", "json"]);
    let matrix = cmd(&["build", "matrix"]);
    let first_error = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stderr)
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_default()
            .to_string()
    };
    if let Some(want) = &case.error {
        for (what, out) in [("build", &build), ("build matrix", &matrix)] {
            let err = first_error(out);
            if out.status.code() != Some(2) || !err.contains(want.as_str()) {
                return Err(format!(
                    "{what}: exit {:?}, `{err}`; expected exit 2 with `{want}`",
                    out.status.code()
                ));
            }
        }
        if first_error(&build) != first_error(&matrix) {
            return Err(format!(
                "build and build matrix refuse differently: `{}` / `{}`",
                first_error(&build),
                first_error(&matrix)
            ));
        }
        return Ok(());
    }
    let expect = case.expect.as_ref().unwrap();
    for (what, out) in [("build", &build), ("build matrix", &matrix)] {
        if !out.status.success() {
            return Err(format!(
                "{what} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let json: serde_json::Value = serde_json::from_slice(&build.stdout).unwrap();
    let planned: Vec<(String, Vec<String>)> = json["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["service"].as_str().unwrap().to_string(),
                i["platforms"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    let expected: Vec<(String, Vec<String>)> = expect
        .services
        .iter()
        .map(|s| {
            let p = if s.platforms.is_empty() {
                vec!["linux/amd64".to_string()]
            } else {
                s.platforms.clone()
            };
            (s.name.clone(), p)
        })
        .collect();
    if planned != expected {
        return Err(format!(
            "build --dry-run planned {planned:?}, expected {expected:?}"
        ));
    }
    let m: serde_json::Value = serde_json::from_slice(&matrix.stdout).unwrap();
    let legs: Vec<(String, String)> = m["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["service"].as_str().unwrap().to_string(),
                l["platform"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = expected
        .iter()
        .flat_map(|(s, ps)| ps.iter().map(move |p| (s.clone(), p.clone())))
        .collect();
    if legs != want {
        return Err(format!("build matrix lists {legs:?}, expected {want:?}"));
    }
    let stderr = String::from_utf8_lossy(&build.stderr);
    for w in &expect.warnings {
        if !stderr.contains(w.as_str()) {
            return Err(format!("build: no warning `{w}` on stderr: {stderr}"));
        }
    }
    for n in &expect.notes {
        if !stderr.contains(n.as_str()) {
            return Err(format!("build: no note `{n}` on stderr: {stderr}"));
        }
    }
    Ok(())
}

#[test]
fn the_compose_reader_reads_the_corpus_as_described() {
    let failures: Vec<String> = corpus()
        .iter()
        .filter_map(|(name, dir, case)| read(dir, case).err().map(|e| format!("{name}: {e}")))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn build_and_build_matrix_read_the_corpus_alike() {
    let failures: Vec<String> = corpus()
        .iter()
        .filter_map(|(name, dir, case)| run(dir, case).err().map(|e| format!("{name}: {e}")))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

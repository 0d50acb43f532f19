//! The corpus of broken input (tests/corpus/, described in its README):
//! every case is something a user can get wrong. Each is run twice — as a
//! user runs it, and inside GitHub Actions with a GitHub token, a registry
//! password and a signing key in the environment — and must:
//!
//! - exit with the expected code, its first `error: ` line exactly the
//!   expected one, and nothing on stdout;
//! - write nothing: the work tree's bytes, `.git/HEAD`, `.git/config` and
//!   every ref are as they were;
//! - name no Rust type, print no Debug output and never panic;
//! - show no secret on stdout, stderr, GITHUB_OUTPUT or GITHUB_STEP_SUMMARY,
//!   except in an `::add-mask::` line on stderr (which is what masks it).

use crate::common::*;
use crate::services::Services;
use base64::Engine as _;
use regex::Regex;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const GITHUB_TOKEN: &str = "ghp_corpusSECRETtoken0123456789abcdefABCD";
const REGISTRY_PASSWORD: &str = "corpus-registry-SECRET-pw-4242";
const SIGN_KEY: &str = "-----BEGIN PRIVATE KEY-----corpusSECRETsigningkey0123456789";
/// What `{secret}` stands for in a case: a secret the case itself plants
/// (a wrong password, a token in a URL, a password in config.json).
const CASE_SECRET: &str = "corpus-case-SECRET-0xC0FFEE";
/// The registry whose password is in the environment of the second run
/// (the cases' configurations push there).
const SECRET_HOST: &str = "registry.example.test";

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

#[derive(Debug, Default)]
struct Case {
    name: String,
    about: String,
    run: String,
    git: String,
    env: Vec<(String, String)>,
    services: bool,
    exit: i32,
    error: String,
    tree: Option<PathBuf>,
}

fn read_case(dir: &Path, name: String) -> Case {
    let text = std::fs::read_to_string(dir.join("case"))
        .unwrap_or_else(|e| panic!("{name}: reading its `case` file: {e}"));
    let mut case = Case {
        name: name.clone(),
        git: "init; commit".into(),
        exit: -1,
        ..Case::default()
    };
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("{name}: `{line}` is not `key: value`"));
        match key {
            "about" => case.about = value.to_string(),
            "run" => case.run = value.to_string(),
            "git" => case.git = value.to_string(),
            "env" => {
                let (k, v) = value.split_once('=').expect("env: KEY=VALUE");
                case.env.push((k.to_string(), v.to_string()));
            }
            "services" => case.services = value == "yes",
            "exit" => case.exit = value.parse().expect("exit: a number"),
            "message" => case.error = value.to_string(),
            other => panic!("{name}: unknown key `{other}`"),
        }
    }
    assert!(
        !case.about.is_empty(),
        "{name}: `about:` says what is wrong"
    );
    assert!(!case.run.is_empty(), "{name}: `run:` is missing");
    if std::env::var_os("OPENIM_RELEASE_CORPUS_BLESS").is_none() {
        assert!(case.exit > 0, "{name}: `exit:` is missing");
        assert!(
            case.error.starts_with("error: "),
            "{name}: `message:` is the first `error: ` line of stderr"
        );
    }
    let tree = dir.join("tree");
    case.tree = tree.is_dir().then_some(tree);
    case
}

/// Every case: `<kind>/<name>/case`.
fn cases() -> Vec<(String, Case)> {
    let mut out = Vec::new();
    let mut kinds: Vec<_> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    kinds.sort();
    for kind in kinds {
        let mut dirs: Vec<_> = std::fs::read_dir(&kind)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("case").is_file())
            .collect();
        dirs.sort();
        let kind_name = kind.file_name().unwrap().to_string_lossy().to_string();
        for dir in dirs {
            let name = format!("{kind_name}/{}", dir.file_name().unwrap().to_string_lossy());
            out.push((kind_name.clone(), read_case(&dir, name)));
        }
    }
    out
}

/// `{dir}`, `{secret}` and the services' addresses.
fn expand(text: &str, dir: &Path, services: Option<&Services>) -> String {
    let mut out = text
        .replace("{dir}", &dir.display().to_string())
        .replace("{secret}", CASE_SECRET)
        .replace(
            "{secret_auth}",
            &base64::engine::general_purpose::STANDARD.encode(format!("ci-user:{CASE_SECRET}")),
        );
    if let Some(s) = services {
        out = out
            .replace("{registry}", &s.registry)
            .replace("{auth_registry}", &s.auth_registry)
            .replace("{auth_registry_env}", &env_key(&s.auth_registry))
            .replace("{auth_user}", &s.auth_user)
            .replace("{git_url}", &s.git_url);
    }
    out
}

/// `127.0.0.1:5000` → `127_0_0_1_5000`, as the credential variables name hosts.
fn env_key(host: &str) -> String {
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

fn copy_tree(from: &Path, to: &Path, dir: &Path, services: Option<&Services>) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target, dir, services);
        } else {
            let bytes = std::fs::read(entry.path()).unwrap();
            let bytes = match String::from_utf8(bytes) {
                Ok(text) => expand(&text, dir, services).into_bytes(),
                Err(e) => e.into_bytes(),
            };
            std::fs::write(&target, bytes).unwrap();
        }
    }
}

/// Lay the case out in a fresh directory: its tree, then its git steps.
fn lay_out(case: &Case, services: Option<&Services>) -> tempfile::TempDir {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("work");
    std::fs::create_dir_all(&dir).unwrap();
    if let Some(tree) = &case.tree {
        copy_tree(tree, &dir, &dir, services);
    }
    for step in case.git.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (verb, arg) = step.split_once(' ').unwrap_or((step, ""));
        match verb {
            "none" => {}
            "init" => {
                git(&dir, &["init", "-q", "-b", "main"]);
            }
            "commit" => {
                git(&dir, &["add", "-A"]);
                git(&dir, &["commit", "-q", "--allow-empty", "-m", "corpus"]);
            }
            "tag" => {
                git(&dir, &["tag", arg]);
            }
            "blob-tag" => {
                std::fs::write(temp.path().join("blob"), "not a commit\n").unwrap();
                let blob = git(&dir, &["hash-object", "-w", "../blob"]);
                git(&dir, &["tag", arg, &blob]);
            }
            "detach" => {
                git(&dir, &["checkout", "-q", "--detach"]);
            }
            "remote" => {
                let (name, url) = arg.split_once(' ').expect("remote NAME URL");
                git(&dir, &["remote", "add", name, &expand(url, &dir, services)]);
            }
            // The work dir becomes a shallow clone (depth 1) of what it
            // holds, whose origin can no longer be reached.
            "shallow" => {
                let origin = temp.path().join("origin.git");
                git(
                    temp.path(),
                    &["clone", "-q", "--bare", dir.to_str().unwrap(), "origin.git"],
                );
                std::fs::remove_dir_all(&dir).unwrap();
                let url = format!("file://{}", origin.display());
                git(
                    temp.path(),
                    &["clone", "-q", "--depth", "1", &url, dir.to_str().unwrap()],
                );
                std::fs::remove_dir_all(&origin).unwrap();
                git(
                    &dir,
                    &[
                        "remote",
                        "set-url",
                        "origin",
                        "file:///nonexistent/origin.git",
                    ],
                );
            }
            other => panic!("{}: unknown git step `{other}`", case.name),
        }
    }
    temp
}

/// The bytes of every file outside `.git`, and the repository's HEAD,
/// config and refs.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .to_string();
            if rel == ".git" {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                walk(root, &path, out);
            } else {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    for file in ["HEAD", "config", "packed-refs", "shallow"] {
        if let Ok(bytes) = std::fs::read(dir.join(".git").join(file)) {
            out.insert(format!(".git/{file}"), bytes);
        }
    }
    if dir.join(".git").is_dir() {
        let refs = std::process::Command::new("git")
            .args(["for-each-ref", "--format=%(refname) %(objectname)"])
            .current_dir(dir)
            .output()
            .unwrap();
        out.insert(".git refs".into(), refs.stdout);
    }
    out
}

/// What a message must never show: Rust types, Debug output, libgit2's
/// error codes, panics.
fn rust_isms() -> Vec<(Regex, &'static str)> {
    [
        (r"panicked at|RUST_BACKTRACE", "a panic"),
        (r"\b(Some|Ok|Err)\(|\bNone\b", "an Option or Result"),
        (r"\b[A-Z][A-Za-z]+ \{ [a-z_]+: ", "a Debug struct"),
        (r"\bclass=[A-Za-z]+ \(\d+\)|\bcode=[A-Za-z]+ \(-?\d+\)", "libgit2's error codes"),
        (
            r"\b(std|core|alloc|anyhow|serde|serde_json|serde_yaml_ng|git2|bollard|reqwest|octocrab|tokio|openim_release)::",
            "a Rust path",
        ),
        (r"\b(struct|enum) [A-Z][A-Za-z]+|\bvariant [`A-Z]", "a Rust type"),
        (r"\b[uif](8|16|32|64|128|size)\b", "a Rust number type"),
        (r"\(os error \d+\)", "an OS error code"),
    ]
    .into_iter()
    .map(|(re, what)| (Regex::new(re).unwrap(), what))
    .collect()
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    outputs: String,
}

fn run(
    case: &Case,
    dir: &Path,
    services: Option<&Services>,
    secrets: bool,
    files: &Path,
) -> Outcome {
    let mut cmd = std_bin(dir);
    let args = expand(&case.run, dir, services);
    cmd.args(args.split_whitespace());
    if let Some(s) = services {
        cmd.env("DOCKER_HOST", &s.docker_host);
    }
    let (output, summary) = (files.join("output"), files.join("summary"));
    if secrets {
        let host = env_key(SECRET_HOST);
        cmd.env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", &output)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_TOKEN", GITHUB_TOKEN)
            .env(format!("OPENIM_RELEASE_REGISTRY_{host}_USERNAME"), "ci")
            .env(
                format!("OPENIM_RELEASE_REGISTRY_{host}_PASSWORD"),
                REGISTRY_PASSWORD,
            )
            .env("OPENIM_RELEASE_SIGN_KEY", SIGN_KEY);
    }
    for (k, v) in &case.env {
        cmd.env(expand(k, dir, services), expand(v, dir, services));
    }
    let out = cmd.output().unwrap();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        outputs: format!("{}{}", read(&output), read(&summary)),
    }
}

/// OPENIM_RELEASE_CORPUS_BLESS=1: write what the case did into its `exit:`
/// and `message:` lines (review the diff before committing it).
fn bless(case: &Case, dir: &Path, services: Option<&Services>, out: &Outcome) {
    let file = corpus_dir().join(&case.name).join("case");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut line = first_error(&out.stderr)
        .unwrap_or("error: (none)")
        .replace(&dir.display().to_string(), "{dir}");
    if let Some(s) = services {
        line = line
            .replace(&s.auth_registry, "{auth_registry}")
            .replace(&env_key(&s.auth_registry), "{auth_registry_env}")
            .replace(&s.registry, "{registry}")
            .replace(&s.git_url, "{git_url}");
    }
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("exit: ") && !l.starts_with("message: "))
        .map(str::to_string)
        .collect();
    lines.push(format!("exit: {}", out.code.unwrap_or(-1)));
    lines.push(format!("message: {line}"));
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
}

/// The first `error: ` line of stderr.
fn first_error(stderr: &str) -> Option<&str> {
    stderr.lines().find(|l| l.starts_with("error: "))
}

fn check(case: &Case, services: Option<&Services>, secrets: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let temp = lay_out(case, services);
    let dir = temp.path().join("work");
    let files = tempfile::tempdir().unwrap();
    let before = snapshot(&dir);
    let out = run(case, &dir, services, secrets, files.path());
    let run_name = if secrets {
        "in Actions with secrets"
    } else {
        "plain"
    };
    let mut fail = |what: String| problems.push(format!("{} ({run_name}): {what}", case.name));
    if out.code != Some(case.exit) {
        fail(format!("exit {:?}, expected {}", out.code, case.exit));
    }
    if !secrets && std::env::var_os("OPENIM_RELEASE_CORPUS_BLESS").is_some() {
        bless(case, &dir, services, &out);
    }
    let expected = expand(&case.error, &dir, services);
    match first_error(&out.stderr) {
        Some(line) if line == expected => {}
        Some(line) => fail(format!(
            "error line\n  got:      {line}\n  expected: {expected}"
        )),
        None => fail("no `error: ` line".into()),
    }
    // Results only: `--check` and `plan` print their report (which
    // failed), every other failure prints nothing on stdout.
    let report = case.run.contains("--check") || case.run.starts_with("plan ");
    if !report && !out.stdout.is_empty() {
        fail(format!("stdout is not empty: {}", out.stdout));
    }
    let after = snapshot(&dir);
    if before != after {
        let changed: Vec<&String> = before
            .keys()
            .chain(after.keys())
            .filter(|k| before.get(*k) != after.get(*k))
            .collect();
        fail(format!("something was written: {changed:?}"));
    }
    for (re, what) in rust_isms() {
        if let Some(m) = re.find(&out.stderr) {
            fail(format!(
                "stderr shows {what} (`{}`):\n{}",
                m.as_str(),
                out.stderr
            ));
        }
    }
    if secrets {
        let basic =
            |u: &str, p: &str| base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        let planted = [
            GITHUB_TOKEN.to_string(),
            REGISTRY_PASSWORD.to_string(),
            SIGN_KEY.to_string(),
            // Parts that would show if a message cut it short.
            "SECRET".to_string(),
            basic("ci", REGISTRY_PASSWORD),
            basic("x-access-token", GITHUB_TOKEN),
            basic("ci-user", CASE_SECRET),
        ];
        for secret in &planted {
            for (name, text) in [
                ("stdout", &out.stdout),
                ("GITHUB_OUTPUT/STEP_SUMMARY", &out.outputs),
            ] {
                if text.contains(secret.as_str()) {
                    fail(format!("{name} shows a secret ({secret}):\n{text}"));
                }
            }
            for line in out.stderr.lines().filter(|l| l.contains(secret.as_str())) {
                let masked = planted[..3]
                    .iter()
                    .chain(&planted[4..])
                    .chain(std::iter::once(&CASE_SECRET.to_string()))
                    .any(|s| line == format!("::add-mask::{s}"));
                if !masked {
                    fail(format!("stderr shows a secret ({secret}): {line}"));
                }
            }
        }
    }
    problems
}

#[test]
fn every_case_of_the_corpus_fails_cleanly_writes_nothing_and_leaks_nothing() {
    run_corpus(false);
}

/// The cases that need the test services (a registry, the engine).
#[test]
#[ignore = "needs the services of scripts/test"]
fn every_case_of_the_corpus_that_needs_the_services_fails_cleanly() {
    run_corpus(true);
}

/// Run the cases that need the services (`with_services`) or the others.
fn run_corpus(with_services: bool) {
    let cases = cases();
    let services = with_services.then(crate::services::services);
    let runnable: Vec<&(String, Case)> = cases
        .iter()
        .filter(|(_, c)| c.services == with_services)
        .collect();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (kind, _) in &runnable {
        *counts.entry(kind.clone()).or_default() += 1;
    }
    // Most of a case's time is spent waiting for git and the binary: a few
    // at a time.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let problems: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let mut found = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some((_, case)) = runnable.get(i) else {
                            return found;
                        };
                        for secrets in [false, true] {
                            found.extend(check(case, services, secrets));
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    eprintln!("corpus: {} cases run, by kind: {counts:?}", runnable.len());
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert!(cases.len() >= 40, "{} cases", cases.len());
}

/// docs/safety.md gives the number of cases of each kind.
#[test]
fn docs_safety_counts_the_corpus() {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (kind, _) in cases() {
        *counts.entry(kind).or_default() += 1;
    }
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/safety.md"))
        .unwrap();
    let row = Regex::new(r"(?m)^\| `tests/corpus/([a-z-]+)/` \| (\d+) \|").unwrap();
    let listed: BTreeMap<String, usize> = row
        .captures_iter(&doc)
        .map(|c| (c[1].to_string(), c[2].parse().unwrap()))
        .collect();
    assert_eq!(listed, counts, "docs/safety.md's corpus table");
}

/// Every case is a distinct mistake: no two share their command, files and
/// git state, and every `about` is different.
#[test]
fn corpus_cases_are_distinct() {
    let cases = cases();
    let mut seen = BTreeMap::new();
    let mut abouts = BTreeMap::new();
    for (_, case) in &cases {
        let mut key = format!("{}|{}|{:?}", case.run, case.git, case.env);
        if let Some(tree) = &case.tree {
            key.push_str(&format!("{:?}", snapshot(tree)));
        }
        if let Some(other) = seen.insert(key, case.name.clone()) {
            panic!("{} repeats {other}", case.name);
        }
        if let Some(other) = abouts.insert(case.about.clone(), case.name.clone()) {
            panic!("{} has the `about` of {other}", case.name);
        }
    }
}

//! Every command example of README.md, docs/*.md and docs/config/*.md runs
//! here, so the docs cannot drift from the binary.
//!
//! An example is a line of a fenced block: `$ openim-release …` in a
//! ```console block (the lines after it, up to the next `$`, are its
//! output), or `openim-release …` in a ```sh block (no output shown: it must
//! succeed). Each runs with `sh -c`, the binary first on PATH, in the
//! situation its comment or text describes, which [`CASES`] builds: a git
//! repository shaped like OpenIM's, with the tags and branch the example
//! assumes. A new example without a case, or a case whose example is gone,
//! fails [`every_example_has_a_case`].
//!
//! Output shown is compared line by line with stdout; lines starting with
//! `error:`, `warning:` or `note:` must appear on stderr, in that order
//! (stderr's other lines, progress and notes the docs leave out, are not
//! checked). `…` stands for any text within a line, and a
//! line of only `…` for any number of lines. Values that differ from run to
//! run (the commit, today's date) are shown as the docs write them, each
//! replacement listed by its case. The examples that need the test
//! services (dockerd, the registries, the git server and the fake GitHub
//! API) run in a test of their own, ignored by a plain `cargo test`; there
//! the services stand in for ghcr.io, Docker Hub and GitHub, and their
//! addresses are shown as the docs' names.

use crate::common::*;
use std::path::{Path, PathBuf};

/// One example as the docs write it.
#[derive(Debug, Clone)]
struct Example {
    file: String,
    line: usize,
    /// The command line (without `$ `, the shell comment kept).
    command: String,
    /// The output shown (console blocks only).
    output: Option<Vec<String>>,
}

const PAGES: &[&str] = &["README.md", "docs", "docs/config"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn pages() -> Vec<String> {
    let mut out = Vec::new();
    for p in PAGES {
        let path = root().join(p);
        if path.is_file() {
            out.push(p.to_string());
            continue;
        }
        let mut files: Vec<String> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".md"))
            .map(|n| format!("{p}/{n}"))
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

/// The examples of one page.
fn examples_of(file: &str) -> Vec<Example> {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    let mut out: Vec<Example> = Vec::new();
    let mut lang: Option<String> = None;
    let mut pending = String::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            lang = match lang {
                Some(_) => None,
                None => Some(trimmed.trim_start_matches('`').to_string()),
            };
            continue;
        }
        match lang.as_deref() {
            Some("console") => {
                if let Some(cmd) = line.strip_prefix("$ ") {
                    out.push(Example {
                        file: file.to_string(),
                        line: i + 1,
                        command: cmd.trim_end().to_string(),
                        output: Some(Vec::new()),
                    });
                } else if let Some(last) = out.last_mut().filter(|e| e.output.is_some()) {
                    last.output.as_mut().unwrap().push(line.to_string());
                }
            }
            Some("sh" | "bash" | "shell") => {
                let joined = format!("{pending}{}", line.trim());
                if let Some(cont) = joined.strip_suffix('\\') {
                    pending = format!("{} ", cont.trim_end());
                    continue;
                }
                pending.clear();
                // `VAR=value openim-release …` counts too.
                let command = joined
                    .split_whitespace()
                    .skip_while(|w| w.contains('=') && !w.starts_with('-'))
                    .collect::<Vec<_>>();
                if command.first() == Some(&"openim-release") {
                    out.push(Example {
                        file: file.to_string(),
                        line: i + 1,
                        command: joined.split_whitespace().collect::<Vec<_>>().join(" "),
                        output: None,
                    });
                }
            }
            _ => {}
        }
    }
    // Console output ends at the block's end; drop trailing blank lines.
    for e in &mut out {
        if let Some(o) = &mut e.output {
            while o.last().is_some_and(|l| l.trim().is_empty()) {
                o.pop();
            }
        }
    }
    out
}

fn examples() -> Vec<Example> {
    pages().iter().flat_map(|p| examples_of(p)).collect()
}

/// The command without its shell comment, whitespace normalised (how
/// [`CASES`] name an example).
fn key(command: &str) -> String {
    let mut cut = command.len();
    let b = command.as_bytes();
    for i in 1..b.len() {
        if b[i] == b'#' && b[i - 1].is_ascii_whitespace() {
            cut = i;
            break;
        }
    }
    command[..cut]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A check after the run: the directory it ran in, and its output.
pub type Check = Box<dyn Fn(&Path, &std::process::Output)>;

/// Where and how an example runs.
pub struct Fixture {
    /// The directory the command runs in.
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    /// `(as it runs, as the docs show it)`, applied to the output.
    pub shown: Vec<(String, String)>,
    /// The expected exit code.
    pub exit: i32,
    /// Replacements in the command line before it runs: `(from, to)`.
    pub run_as: Vec<(String, String)>,
    /// More to check after the run (what an example's comment promises).
    pub check: Option<Check>,
    /// Kept alive while the example runs.
    pub keep: Vec<Box<dyn std::any::Any>>,
}

impl Fixture {
    pub fn in_repo(repo: TestRepo) -> Fixture {
        Fixture {
            cwd: repo.path().to_path_buf(),
            env: Vec::new(),
            shown: Vec::new(),
            exit: 0,
            run_as: Vec::new(),
            check: None,
            keep: vec![Box::new(repo)],
        }
    }

    /// Show HEAD's commit as `short` (and its full sha as `full`).
    fn head_shown_as(mut self, short: &str) -> Fixture {
        let head = git(&self.cwd, &["rev-parse", "HEAD"]);
        self.shown.push((head[..7].to_string(), short.to_string()));
        self
    }

    fn exit(mut self, code: i32) -> Fixture {
        self.exit = code;
        self
    }

    fn run_as(mut self, from: &str, to: &str) -> Fixture {
        self.run_as.push((from.to_string(), to.to_string()));
        self
    }

    fn check(mut self, f: impl Fn(&Path, &std::process::Output) + 'static) -> Fixture {
        self.check = Some(Box::new(f));
        self
    }
}

pub enum How {
    /// Runs on any machine.
    Run(fn() -> Fixture),
    /// Needs the test services.
    Services(fn() -> Fixture),
    /// Not run, for the reason given.
    NotRun(&'static str),
}

/// `(page, command as written without its comment, how)`.
type Case = (&'static str, &'static str, How);

// ---- fixtures -------------------------------------------------------------

/// A repository on branch `feature/login#42`.
fn on_feature_branch() -> Fixture {
    let repo = TestRepo::new();
    repo.git(&["checkout", "-q", "-b", "feature/login#42"]);
    Fixture::in_repo(repo).head_shown_as("d4517f8")
}

/// v3.8.3 and its hotfixes v3.8.3-patch.1 … 16, then a commit on main; an
/// origin (shown as open-im-server's) with the same tags.
fn after_patches() -> Fixture {
    let repo = TestRepo::new();
    repo.atag(&["v3.8.3"]);
    for n in 1..=16 {
        repo.commit(&format!("hotfix {n}"));
        repo.atag(&[&format!("v3.8.3-patch.{n}")]);
    }
    repo.git(&["branch", "3.8.3-patch"]);
    repo.commit("next feature");
    let origin = bare_remote();
    repo.git(&["remote", "add", "origin", origin.path().to_str().unwrap()]);
    repo.git(&["push", "-q", "origin", "main", "--tags"]);
    let mut f = Fixture::in_repo(repo).head_shown_as("7848d7c");
    f.shown.push((
        origin.path().display().to_string(),
        "https://github.com/openimsdk/open-im-server.git".into(),
    ));
    f.keep.push(Box::new(origin));
    f
}

fn patch_branch() -> Fixture {
    let f = after_patches();
    git(&f.cwd, &["checkout", "-q", "3.8.3-patch"]);
    git(
        &f.cwd,
        &["commit", "-q", "--allow-empty", "-m", "hotfix 17"],
    );
    f
}

/// HEAD carries the release candidate v3.9.0-rc.2, after v3.8.3.
fn rc_at_head() -> Fixture {
    let repo = TestRepo::new();
    repo.atag(&["v3.8.3"]);
    repo.commit("3.9 work");
    repo.atag(&["v3.9.0-rc.0", "v3.9.0-rc.1", "v3.9.0-rc.2"]);
    Fixture::in_repo(repo)
}

/// A nightly run on 2026-11-25 (the run's clock, OPENIM_RELEASE_CLOCK).
fn nightly() -> Fixture {
    let mut f = Fixture::in_repo(TestRepo::new()).head_shown_as("d4517f8");
    let head = git(&f.cwd, &["rev-parse", "HEAD"]);
    f.shown.insert(0, (head, "d4517f8…".to_string()));
    f.env
        .push(("OPENIM_RELEASE_CLOCK".into(), "2026-11-25T12:00:00Z".into()));
    f
}

/// A repository whose openim-release.yaml is `config` (shown as
/// /home/me/open-im-server).
fn with_config(config: &str) -> Fixture {
    let repo = TestRepo::new();
    repo.write("openim-release.yaml", config);
    let mut f = Fixture::in_repo(repo).exit(2);
    f.shown.push((
        f.cwd.display().to_string(),
        "/home/me/open-im-server".into(),
    ));
    f
}

/// The nightly of 2026-11-24 is at HEAD.
fn nightly_at_head() -> Fixture {
    let repo = TestRepo::new();
    let head = repo.head();
    repo.tag(&[&format!("nightly-20261124-{}", &head[..7])]);
    Fixture::in_repo(repo).head_shown_as("d4517f8")
}

/// open-im-server's shape (tests/it/build.rs): three services, one
/// Dockerfile, pushed to ghcr.io/openimsdk and docker.io/openim for two
/// platforms; v3.8.3 released, HEAD carries v3.8.4-rc.0.
fn server_with_rc() -> TestRepo {
    let repo = crate::build::fixture(
        &["ghcr.io/openimsdk".into(), "docker.io/openim".into()],
        &["linux/amd64", "linux/arm64"],
    );
    repo.atag(&["v3.8.3"]);
    repo.commit("fix");
    repo.atag(&["v3.8.4-rc.0"]);
    repo
}

/// `notes`' situation (tests/it/notes.rs): open-im-server's shape, v3.8.0,
/// then features, fixes, a merged pull request, reverts, tagged v3.8.1.
fn notes_history() -> Fixture {
    let mut f = Fixture::in_repo(crate::notes::history());
    f.env.push((
        "GITHUB_REPOSITORY".into(),
        "openimsdk/open-im-server".into(),
    ));
    f
}

/// The same, with the fake GitHub API and a token (`notes --publish`).
fn notes_on_github() -> Fixture {
    let mut f = notes_history();
    let gh = crate::fake_github::FakeGitHub::start("notes-doc-token");
    f.env
        .push(("GITHUB_TOKEN".into(), "notes-doc-token".into()));
    f.env.push(("GITHUB_API_URL".into(), gh.url.clone()));
    f.shown.push((gh.url.clone(), "https://github.com".into()));
    f.keep.push(Box::new(gh));
    f
}

/// The notes are Markdown of the expected shape.
fn notes_markdown(_: &Path, out: &std::process::Output) {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("### Breaking changes"), "{text}");
    assert!(text.contains("| openim-api |"), "{text}");
}

fn server_rc() -> Fixture {
    Fixture::in_repo(server_with_rc())
}

/// `chart bump`'s situation: a checkout of openimsdk/helm-charts
/// (tests/fixtures/helm-charts), no configuration.
fn helm_charts() -> Fixture {
    let dir = crate::deploy_fixture::fixture("helm-charts");
    Fixture {
        cwd: dir.path().to_path_buf(),
        env: Vec::new(),
        shown: Vec::new(),
        exit: 0,
        run_as: Vec::new(),
        check: None,
        keep: vec![Box::new(dir)],
    }
}

/// `chart apply`'s situation: the source repository (HEAD carries
/// v3.8.1-rc.0) with a `deploy:` section for helm-charts, checked out
/// beside it as ../helm-charts; build.json holds digests of a build.
fn source_beside_helm_charts() -> Fixture {
    let parent = tempfile::tempdir().unwrap();
    let src = parent.path().join("open-im-server");
    std::fs::create_dir(&src).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    let helm = crate::deploy_fixture::fixture("helm-charts");
    crate::deploy_fixture::copy_dir(helm.path(), &parent.path().join("helm-charts"));
    let services: String = [
        "openim-api",
        "openim-msggateway",
        "openim-push",
        "openim-rpc-user",
    ]
    .iter()
    .map(|s| format!("    - {{ name: {s}, dockerfile: Dockerfile }}\n"))
    .collect();
    crate::deploy_fixture::write(
        &src,
        "openim-release.yaml",
        &format!(
            "images:\n  registries: [ghcr.io/openimsdk, registry.example.org/openimsdk]\n  services:\n{services}\
             deploy:\n  charts:\n    - path: charts/openim-server\n      values: [charts/openim-server/values.yaml, k8s-open-im-server-config.yaml]\n"
        ),
    );
    git(&src, &["add", "-A"]);
    git(&src, &["commit", "-q", "-m", "config"]);
    git(&src, &["tag", "-a", "-m", "v3.8.0", "v3.8.0"]);
    git(&src, &["commit", "-q", "--allow-empty", "-m", "fix"]);
    git(&src, &["tag", "-a", "-m", "v3.8.1-rc.0", "v3.8.1-rc.0"]);
    let digests: Vec<String> = ["openim-api", "openim-msggateway", "openim-push", "openim-rpc-user"]
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                r#"{{"service":"{s}","references":["ghcr.io/openimsdk/{s}:v3.8.1"],"digest":"sha256:{}","platforms":["linux/amd64"],"status":"built"}}"#,
                format!("{i}").repeat(64)
            )
        })
        .collect();
    crate::deploy_fixture::write(
        &src,
        "build.json",
        &format!(
            r#"{{"schema_version":1,"dry_run":false,"tags":["v3.8.1"],"images":[{}]}}"#,
            digests.join(",")
        ),
    );
    Fixture {
        cwd: src,
        env: Vec::new(),
        shown: Vec::new(),
        exit: 0,
        run_as: Vec::new(),
        check: None,
        keep: vec![Box::new(parent), Box::new(helm)],
    }
}

/// A copy of open-im-server's shape for `init` (tests/fixtures/init/server).
fn init_server() -> Fixture {
    Fixture::in_repo(crate::fixtures::repo("init/server", "ghcr.io/openimsdk"))
}

/// The repository of openim-release itself (for `schema`).
fn any_repo() -> Fixture {
    Fixture::in_repo(TestRepo::new())
}

// ---- with the test services ---------------------------------------------------

/// open-im-server's shape against the test services: the source repository
/// (tests/it/build.rs's fixture: three services, two platforms) pushing to
/// two namespaces of the test registry shown as ghcr.io/openimsdk and
/// docker.io/openim, with a `deploy:` section for a deploy repository on the
/// test git server (shown as openimsdk/helm-charts), the fake GitHub API
/// (shown as api.github.com), an origin (shown as open-im-server's); v3.8.3
/// released, one fix after it on main.
fn world_with(platforms: &[&str], registries: &[(&str, &str)]) -> Fixture {
    let s = crate::services::services();
    let mut shown = Vec::new();
    let mut regs = Vec::new();
    for (host, name) in registries {
        let ns = format!("{host}/{}", crate::services::unique_namespace("doc"));
        let show = match *name {
            "ghcr" => "ghcr.io/openimsdk",
            _ => "docker.io/openim",
        };
        shown.push((ns.clone(), show.to_string()));
        regs.push(ns);
    }
    for (host, name) in registries {
        let show = if *name == "ghcr" {
            "ghcr.io"
        } else {
            "docker.io"
        };
        shown.push((
            crate::build::credentials_key(host),
            crate::build::credentials_key(show),
        ));
        shown.push((host.to_string(), show.to_string()));
    }
    let (deploy_url, name) = crate::gitops::deploy_remote(s, &regs[0]);
    let repository = format!("openimsdk/{name}");
    let src = crate::build::fixture(&regs, platforms);
    let mut cfg = crate::deploy_fixture::read(src.path(), "openim-release.yaml");
    cfg.push_str(&format!(
        "deploy:\n  url: {deploy_url}\n  repository: {repository}\n  base: main\n  charts:\n    - path: charts/openim-server\n  manifests: [k8s/openim-api.yaml]\n  env_files: [docker-compose/.env]\n"
    ));
    src.write("openim-release.yaml", &cfg);
    src.git(&["add", "-A"]);
    src.git(&["commit", "-q", "-m", "deploy config"]);
    src.atag(&["v3.8.3"]);
    let released = src.head();
    src.commit("the fix for 3.8.4");
    let origin = bare_remote();
    src.git(&["remote", "add", "origin", origin.path().to_str().unwrap()]);
    src.git(&["push", "-q", "origin", "main", "--tags"]);
    let gh = crate::fake_github::FakeGitHub::start(&s.git_token);
    let api_version =
        crate::services::docker(s, &["version", "--format", "{{.Server.APIVersion}}"])
            .expect("the engine's API version");
    shown.extend([
        (
            format!("{}/{repository}/pull/", gh.url),
            "https://github.com/openimsdk/helm-charts/pull/".to_string(),
        ),
        (
            deploy_url,
            "https://github.com/openimsdk/helm-charts.git".to_string(),
        ),
        (repository, "openimsdk/helm-charts".to_string()),
        (
            origin.path().display().to_string(),
            "https://github.com/openimsdk/open-im-server.git".to_string(),
        ),
        (gh.url.clone(), "https://api.github.com".to_string()),
        (
            s.docker_host.clone(),
            "unix:///var/run/docker.sock".to_string(),
        ),
        (format!("(API {api_version})"), "(API 1.47)".to_string()),
        (released[..7].to_string(), "cb4ac19".to_string()),
    ]);
    let env = vec![
        ("DOCKER_HOST".to_string(), s.docker_host.clone()),
        ("GITHUB_TOKEN".to_string(), s.git_token.clone()),
        ("GITHUB_API_URL".to_string(), gh.url.clone()),
    ];
    let mut f = Fixture::in_repo(src).head_shown_as("7848d7c");
    f.shown.extend(shown);
    f.env = env;
    f.keep.push(Box::new(origin));
    f.keep.push(Box::new(gh));
    f
}

fn world() -> Fixture {
    let s = crate::services::services();
    world_with(
        &["linux/amd64", "linux/arm64"],
        &[(&s.registry, "ghcr"), (&s.registry, "hub")],
    )
}

/// The same with the rc v3.8.4-rc.0 at HEAD (`tag --stage rc --push` ran).
fn world_rc() -> Fixture {
    let f = world();
    git(&f.cwd, &["tag", "-a", "-m", "v3.8.4-rc.0", "v3.8.4-rc.0"]);
    git(&f.cwd, &["push", "-q", "origin", "v3.8.4-rc.0"]);
    f
}

/// The same with v3.8.3 built (every tag and alias, both registries) and
/// deployed by push to the deploy repository's main.
fn world_released() -> Fixture {
    let f = world();
    let run = |args: &[&str]| {
        let mut cmd = std_bin(&f.cwd);
        cmd.envs(f.env.iter().map(|(k, v)| (k, v))).args(args);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&f.cwd, &["checkout", "-q", "v3.8.3"]);
    run(&["build", "--stage", "release"]);
    git(&f.cwd, &["checkout", "-q", "main"]);
    run(&[
        "gitops",
        "--version",
        "3.8.3",
        "--image-tag",
        "release-v3.8.3",
        "--mode",
        "push",
    ]);
    f
}

/// The registry namespace shown as `shown` (docker.io/openim, ghcr.io/openimsdk).
fn namespace(f: &Fixture, shown: &str) -> String {
    f.shown
        .iter()
        .find(|(ns, s)| s == shown && ns.contains('/'))
        .map(|(ns, _)| ns.clone())
        .unwrap()
}

/// `audit` found nothing.
fn agrees(_: &Path, out: &std::process::Output) {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("ok: 1 release × 3 services × 2 registries ("),
        "{text}"
    );
}

/// Images are built: some references end in a digest.
fn pushed(_: &Path, out: &std::process::Output) {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("@sha256:"), "{text}");
}

/// The tree of `dir` as sorted relative paths (files only).
fn files(dir: &Path) -> Vec<String> {
    crate::deploy_fixture::snapshot(dir).into_keys().collect()
}

/// An openssl key pair (as docs/supply-chain.md makes it) in a directory of
/// its own, out of the build context; `names` (`cosign.key`, `cosign.pub`)
/// in the command name them.
fn signing(mut f: Fixture, names: &[&str]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        [
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
            "cosign.key",
        ]
        .as_slice(),
        ["ec", "-in", "cosign.key", "-pubout", "-out", "cosign.pub"].as_slice(),
    ] {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    for name in names {
        f = f.run_as(name, &dir.path().join(name).display().to_string());
    }
    f.env.push((
        "OPENIM_RELEASE_TEST_KEY_DIR".into(),
        dir.path().display().to_string(),
    ));
    f.keep.push(Box::new(dir));
    f
}

/// The private key of [`signing`].
fn key_of(f: &Fixture) -> PathBuf {
    let dir = &f
        .env
        .iter()
        .find(|(k, _)| k == "OPENIM_RELEASE_TEST_KEY_DIR")
        .unwrap()
        .1;
    Path::new(dir).join("cosign.key")
}

/// world_rc, with a key, built (signed with it, or not).
fn built_rc(signed: bool, names: &[&str]) -> Fixture {
    let f = signing(world_rc(), names);
    let mut cmd = std_bin(&f.cwd);
    cmd.envs(f.env.iter().map(|(k, v)| (k, v)))
        .args(["build", "--stage", "rc"]);
    if signed {
        cmd.arg("--sign-key").arg(key_of(&f));
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    f
}

/// A release v3.8.1 of the three services of tests/it/build.rs at
/// ghcr.io/openimsdk (a namespace of the test registry: two platforms, a
/// signature, an SBOM), shown as the docs name them; docker.io/openim and
/// registry.lan:5000/openim are fresh namespaces of it. The source
/// repository has no images.mirrors.
fn released_in_ghcr(target: Option<&str>) -> Fixture {
    let s = crate::services::services();
    let ns = |p: &str| format!("{}/{}", s.registry, crate::services::unique_namespace(p));
    let (ghcr, hub, lan) = (ns("doc-ghcr"), ns("doc-hub"), ns("doc-lan"));
    crate::mirror::push_release(&ghcr, &["v3.8.1"], 4096);
    let repo = crate::build::fixture(std::slice::from_ref(&ghcr), &["linux/amd64", "linux/arm64"]);
    let mut f = Fixture::in_repo(repo);
    match target {
        Some("docker.io/openim") => f = f.run_as("docker.io/openim", &hub),
        Some(t) => f = f.run_as(t, &lan),
        None => {}
    }
    f.shown = vec![
        (hub, "docker.io/openim".into()),
        (lan, "registry.lan:5000/openim".into()),
        (ghcr, "ghcr.io/openimsdk".into()),
    ];
    f
}

/// open-im-server's shape with images.mirrors: ghcr.io/openimsdk →
/// docker.io/openim and Aliyun.
fn with_mirrors() -> Fixture {
    let repo = crate::build::fixture(
        &["ghcr.io/openimsdk".into()],
        &["linux/amd64", "linux/arm64"],
    );
    let cfg = std::fs::read_to_string(repo.path().join("openim-release.yaml")).unwrap();
    repo.write(
        "openim-release.yaml",
        &cfg.replace(
            "  platforms:",
            "  mirrors:\n    ghcr.io/openimsdk: [docker.io/openim, registry.cn-hangzhou.aliyuncs.com/openimsdk]\n  platforms:",
        ),
    );
    Fixture::in_repo(repo)
}

// ---- the cases --------------------------------------------------------------

/// Examples that contact ghcr.io to check images run with `--no-verify`
/// (the registry check is tested against the test registry in chart.rs and
/// gitops.rs).
const NO_VERIFY: (&str, &str) = ("--app-version 3.8.1", "--no-verify --app-version 3.8.1");

const CASES: &[Case] = &[
    // README.md
    ("README.md", "openim-release tag --stage dev", How::Run(on_feature_branch)),
    ("README.md", "openim-release tag --stage rc", How::Run(after_patches)),
    (
        "README.md",
        "openim-release tag --stage rc --create --push",
        How::Run(after_patches),
    ),
    ("README.md", "openim-release tag --stage patch", How::Run(patch_branch)),
    ("README.md", "openim-release tag --stage release", How::Run(rc_at_head)),
    (
        "README.md",
        "openim-release build --stage rc --dry-run",
        How::Run(server_rc),
    ),
    (
        "README.md",
        "openim-release tag --stage nightly --output json",
        How::Run(nightly),
    ),
    ("README.md", "openim-release init", How::Run(|| init_server().check(init_wrote))),
    ("README.md", "openim-release plan --stage rc", How::Services(world)),
    // docs/tag.md
    (
        "docs/tag.md",
        "openim-release tag --stage nightly --date 2026-11-25 --output json",
        How::Run(nightly_at_head),
    ),
    // docs/exit-codes.md
    (
        "docs/exit-codes.md",
        "openim-release tag --stage rc",
        How::Run(|| with_config("tags:\n  prefix: v\n  rc:\n    tagz: [x]\n")),
    ),
    (
        "docs/exit-codes.md",
        "openim-release tag --stage release",
        How::Run(|| with_config("deploy:\n  mode: [pr]\n")),
    ),
    (
        "docs/exit-codes.md",
        "openim-release tag --stage dev",
        How::Run(|| {
            let repo = TestRepo::new();
            repo.git(&["checkout", "-q", "--detach"]);
            Fixture::in_repo(repo).exit(2)
        }),
    ),
    (
        "docs/tag.md",
        "openim-release tag --stage dev|rc|release|patch|nightly [options]",
        How::NotRun("the synopsis of the command, not an example"),
    ),
    // docs/notes.md
    (
        "docs/notes.md",
        "openim-release notes --tag v3.8.1",
        How::Run(|| notes_history().check(notes_markdown)),
    ),
    (
        "docs/notes.md",
        "openim-release notes --tag v3.8.1 --output json",
        How::Run(|| notes_history().check(|_, out| {
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(json["previous"], "v3.8.0", "{json}");
            assert!(json["entries"].as_array().unwrap().len() > 3, "{json}");
        })),
    ),
    (
        "docs/notes.md",
        "openim-release notes --tag v3.9.0 --from v3.8.0",
        How::Run(|| notes_history().check(|_, out| {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("v3.9.0 does not exist yet"), "{text}");
        })),
    ),
    (
        "docs/notes.md",
        "openim-release notes --tag v3.8.1 --publish",
        How::Run(|| notes_on_github().check(|_, out| {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("created"), "{err}");
        })),
    ),
    // docs/build.md
    (
        "docs/build.md",
        "openim-release build --stage release --dry-run",
        How::Run(|| server_rc().check(|_, out| {
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(text.lines().count(), 3 * 2 * 6, "{text}");
            assert!(text.contains("ghcr.io/openimsdk/openim-api:release-v3.8.4\n"), "{text}");
            assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was built or pushed"));
        })),
    ),
    (
        "docs/build.md",
        "openim-release build matrix",
        How::Run(|| server_rc().check(|_, out| {
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let first = &json["include"][0];
            assert_eq!(first["service"], "openim-api", "{json}");
            assert_eq!(first["platform"], "linux/amd64", "{json}");
            assert_eq!(first["slug"], "openim-api-linux-amd64", "{json}");
            assert_eq!(json["include"].as_array().unwrap().len(), 6, "{json}");
        })),
    ),
    // docs/chart.md
    (
        "docs/chart.md",
        "openim-release chart bump charts/openim-server --app-version 3.8.1 --image-tag v3.8.1-rc.2",
        How::Run(|| helm_charts().run_as(NO_VERIFY.0, NO_VERIFY.1).check(|dir, _| {
            let values = crate::deploy_fixture::read(dir, "charts/openim-server/charts/openim-push/values.yaml");
            assert!(values.contains("tag: \"v3.8.1-rc.2\""), "{values}");
        })),
    ),
    (
        "docs/chart.md",
        "openim-release chart bump charts/openim-server --app-version 3.8.1 --image-tag v3.8.1 --digest sha256:… --pin tag",
        How::Run(|| helm_charts()
            .run_as(NO_VERIFY.0, NO_VERIFY.1)
            .run_as("sha256:…", "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
            .check(|dir, _| {
                let values = crate::deploy_fixture::read(dir, "charts/openim-server/values.yaml");
                assert!(values.contains("tag: \"v3.8.1@sha256:0123456789abcdef"), "{values}");
            })),
    ),
    (
        "docs/chart.md",
        "openim-release chart bump charts/openim-server --app-version 3.8.1 --image-tag v3.8.1 --config ../open-im-server/openim-release.yaml",
        How::Run(|| {
            let f = source_beside_helm_charts();
            let mut f = Fixture { cwd: f.cwd.parent().unwrap().join("helm-charts"), ..f };
            f.run_as.push((NO_VERIFY.0.into(), NO_VERIFY.1.into()));
            f.check(|dir, _| {
                // The mirror registry of the config counts: the override
                // file is not read by `chart bump`, the subcharts are.
                let values = crate::deploy_fixture::read(dir, "charts/openim-server/charts/openim-push/values.yaml");
                assert!(values.contains("tag: \"v3.8.1\""), "{values}");
            })
        }),
    ),
    (
        "docs/chart.md",
        "openim-release chart apply --dir ../helm-charts --stage rc",
        How::Run(|| source_beside_helm_charts().run_as("--stage rc", "--stage rc --no-verify").check(|dir, _| {
            let o = crate::deploy_fixture::read(&dir.join("../helm-charts"), "k8s-open-im-server-config.yaml");
            assert!(o.contains("v3.8.1-rc.0"), "{o}");
        })),
    ),
    (
        "docs/chart.md",
        "openim-release chart apply --dir ../helm-charts --version 3.8.1 --image-tag v3.8.1 --digests build.json",
        How::Run(|| source_beside_helm_charts().run_as("--version", "--no-verify --version").check(|dir, _| {
            let v = crate::deploy_fixture::read(&dir.join("../helm-charts"), "charts/openim-server/values.yaml");
            assert!(v.contains("tag: \"v3.8.1\""), "{v}");
        })),
    ),
    // docs/init.md
    ("docs/init.md", "openim-release init", How::Run(|| init_server().check(init_wrote))),
    (
        "docs/init.md",
        "openim-release init --print",
        How::Run(|| init_server().check(|dir, out| {
            assert!(String::from_utf8_lossy(&out.stdout).contains("images:"));
            assert!(!dir.join("openim-release.yaml").exists());
        })),
    ),
    (
        "docs/init.md",
        "openim-release --config ci/openim-release.yaml init",
        How::Run(|| init_server().check(|dir, _| {
            assert!(dir.join("ci/openim-release.yaml").exists(), "{:?}", files(dir));
            assert!(!dir.join("openim-release.yaml").exists());
        })),
    ),
    (
        "docs/init.md",
        "openim-release schema > openim-release.schema.json",
        How::Run(|| any_repo().check(|dir, _| {
            let written = std::fs::read_to_string(dir.join("openim-release.schema.json")).unwrap();
            let committed = std::fs::read_to_string(root().join("docs/openim-release.schema.json")).unwrap();
            assert_eq!(written.trim_end(), committed.trim_end());
        })),
    ),
    (
        "docs/init.md",
        "openim-release completions bash > /etc/bash_completion.d/openim-release",
        How::Run(|| any_repo()
            .run_as("/etc/bash_completion.d/openim-release", "openim-release.bash")
            .check(|dir, _| {
                let text = std::fs::read_to_string(dir.join("openim-release.bash")).unwrap();
                assert!(text.contains("complete -F"), "{text}");
            })),
    ),
    // docs/debugging.md
    (
        "docs/debugging.md",
        "openim-release -v release --stage rc",
        How::Services(world),
    ),
    (
        "docs/debugging.md",
        "openim-release -vv release --stage rc",
        How::Services(world),
    ),
    (
        "docs/debugging.md",
        "RUST_LOG=openim_release::clients::github=trace openim-release gitops --stage rc",
        How::Services(|| world_rc().run_as("gitops --stage", "gitops --no-verify --stage").check(|_, out| {
            let log = String::from_utf8_lossy(&out.stderr);
            assert!(log.contains(" openim_release::clients::github: "), "{log}");
        })),
    ),
    // docs/promote.md
    (
        "docs/promote.md",
        "openim-release mirror --tag v3.8.1 --tag latest --dry-run",
        How::Run(with_mirrors),
    ),
    (
        "docs/promote.md",
        "openim-release mirror --tag v3.8.1 --to docker.io/openim",
        How::Services(|| released_in_ghcr(Some("docker.io/openim"))),
    ),
    (
        "docs/promote.md",
        "openim-release bundle export --tag v3.8.1 --no-charts openim-v3.8.1.tar",
        How::Services(|| released_in_ghcr(None).check(|dir, _| {
            assert!(dir.join("openim-v3.8.1.tar").is_file());
        })),
    ),
    (
        "docs/promote.md",
        "openim-release bundle import openim-v3.8.1.tar --registry registry.lan:5000/openim",
        How::Services(|| {
            let f = released_in_ghcr(Some("registry.lan:5000/openim"));
            let out = std_bin(&f.cwd)
                .args(["bundle", "export", "--tag", "v3.8.1", "--no-charts", "openim-v3.8.1.tar"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            f
        }),
    ),
    // With the test services.
    ("README.md", "openim-release build --stage rc", How::Services(|| world_rc().check(pushed))),
    ("README.md", "openim-release plan --stage rc", How::Services(world)),
    ("README.md", "openim-release release --stage rc", How::Services(world)),
    ("docs/build.md", "openim-release build --stage rc", How::Services(|| world_rc().check(pushed))),
    ("docs/build.md", "openim-release build --tag v3.8.1 --tag latest", How::Services(|| world().check(pushed))),
    (
        "docs/build.md",
        "openim-release build --tag dev --service openim-api --platform linux/amd64 --no-push",
        How::Services(world),
    ),
    (
        "docs/build.md",
        "openim-release build --load --tag dev",
        How::Services(|| world().check(|_, out| {
            let s = crate::services::services();
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(text.lines().count(), 3 * 2, "{text}");
            for reference in text.lines() {
                assert!(reference.ends_with(":dev"), "{text}");
                crate::services::docker(s, &["image", "inspect", reference])
                    .unwrap_or_else(|e| panic!("{reference} not in the engine: {e}"));
                assert!(crate::services::inspect_raw(reference, None).is_err(), "{reference} was pushed");
            }
        })),
    ),
    (
        "docs/build.md",
        "openim-release build --check",
        How::Services(|| {
            let s = crate::services::services();
            world_with(&["linux/amd64", "linux/arm64"], &[(&s.auth_registry, "ghcr")]).exit(1)
        }),
    ),
    (
        "docs/build.md",
        "openim-release build --service S --platform P --push-by-digest --output json > leg-S-P.json",
        How::Services(|| world()
            .run_as(" S ", " openim-api ")
            .run_as(" P ", " linux/amd64 ")
            .check(|dir, _| {
                let leg = std::fs::read_to_string(dir.join("leg-S-P.json")).unwrap();
                let json: serde_json::Value = serde_json::from_str(&leg).unwrap();
                assert!(json["legs"].is_array(), "{json}");
            })),
    ),
    (
        "docs/build.md",
        "openim-release build merge --stage rc leg-*.json",
        How::Services(|| {
            let s = crate::services::services();
            let f = world_with(&["linux/amd64"], &[(&s.registry, "ghcr")]);
            git(&f.cwd, &["tag", "-a", "-m", "v3.8.4-rc.0", "v3.8.4-rc.0"]);
            for svc in crate::build::SERVICES {
                let mut cmd = std_bin(&f.cwd);
                cmd.envs(f.env.iter().map(|(k, v)| (k, v)))
                    .args(["build", "--service", svc, "--platform", "linux/amd64", "--push-by-digest", "--output", "json"]);
                let out = cmd.output().unwrap();
                assert!(out.status.success(), "{out:?}");
                std::fs::write(f.cwd.join(format!("leg-{svc}.json")), out.stdout).unwrap();
            }
            f.check(pushed)
        }),
    ),
    ("docs/gitops.md", "openim-release gitops --stage rc --dry-run", How::Services(|| world_rc().run_as("gitops", "gitops --no-verify"))),
    (
        "docs/gitops.md",
        "openim-release gitops --stage rc",
        How::Services(|| world_rc().run_as("gitops", "gitops --no-verify")),
    ),
    (
        "docs/gitops.md",
        "openim-release gitops --stage release --digests build.json",
        How::Services(|| {
            let f = world_rc().run_as("gitops", "gitops --no-verify");
            let images: Vec<String> = crate::build::SERVICES
                .iter()
                .map(|s| format!(r#"{{"service":"{s}","references":[],"digest":"sha256:{}","platforms":["linux/amd64"],"status":"built"}}"#, "1".repeat(64)))
                .collect();
            std::fs::write(
                f.cwd.join("build.json"),
                format!(r#"{{"schema_version":1,"dry_run":false,"tags":["release-v3.8.4"],"images":[{}]}}"#, images.join(",")),
            )
            .unwrap();
            f
        }),
    ),
    (
        "docs/gitops.md",
        "openim-release gitops --version 3.8.1 --image-tag v3.8.1-rc.2 --mode push",
        How::Services(|| world().run_as("gitops", "gitops --no-verify")),
    ),
    (
        "docs/gitops.md",
        "openim-release gitops --stage rc --service openim-push",
        How::Services(|| world_rc().run_as("gitops", "gitops --no-verify")),
    ),
    ("docs/release.md", "openim-release plan --stage rc", How::Services(world)),
    ("docs/release.md", "openim-release release --stage rc", How::Services(world)),
    ("docs/release.md", "openim-release release --stage release", How::Services(world_rc)),
    ("docs/release.md", "openim-release release --stage nightly", How::Services(world)),
    ("docs/release.md", "openim-release release --stage dev --skip-gitops", How::Services(world)),
    (
        "docs/release.md",
        "openim-release plan --stage release --version 3.8.3",
        How::Services(|| {
            // ghcr.io takes credentials: the registry with htpasswd.
            let s = crate::services::services();
            let mut f = world_with(&["linux/amd64", "linux/arm64"], &[(&s.auth_registry, "ghcr")]);
            let key = crate::build::credentials_key(&s.auth_registry);
            f.env.push((format!("{key}_USERNAME"), s.auth_user.clone()));
            f.env.push((format!("{key}_PASSWORD"), s.auth_password.clone()));
            f.exit(2)
        }),
    ),
    // docs/audit.md
    ("docs/audit.md", "openim-release audit", How::Services(|| world_released().check(agrees))),
    (
        "docs/audit.md",
        "openim-release audit --last 3 --deploy",
        How::Services(|| world_released().check(|dir, out| {
            agrees(dir, out);
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains(", 5 deploy references on 1 branch agree"), "{text}");
        })),
    ),
    (
        "docs/audit.md",
        "openim-release audit --tag v3.8.3 --output json",
        How::Services(|| world_released().check(|_, out| {
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(json["ok"], true, "{json}");
            assert_eq!(json["releases"][0]["aliases"], serde_json::json!(["3", "3.8", "latest"]));
        })),
    ),
    (
        "docs/audit.md",
        "openim-release audit --fix",
        How::Services(|| {
            // Someone pointed latest at the amd64 image alone in docker.io/openim.
            let f = world_released();
            let hub = namespace(&f, "docker.io/openim");
            let amd64 = crate::audit::platform_digest(&hub, "openim-api", "v3.8.3", "amd64");
            crate::audit::retag(&hub, "openim-api", &amd64, "latest");
            f.check(move |_, out| {
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(text.contains("fixed (retag "), "{text}");
                assert!(text.lines().last().unwrap().starts_with("ok after --fix: 1 repair made;"), "{text}");
                assert_eq!(
                    crate::audit::digest(&hub, "openim-api", "latest"),
                    crate::audit::digest(&hub, "openim-api", "v3.8.3")
                );
            })
        }),
    ),
    ("docs/supply-chain.md", "openim-release build --stage rc --sign-key cosign.key", How::Services(|| signing(world_rc(), &["cosign.key"]).check(pushed))),
    (
        "docs/supply-chain.md",
        "openim-release release --stage rc",
        How::Services(|| {
            // The key in the variable, as the `export` line before it sets it.
            let mut f = signing(world(), &[]);
            let pem = std::fs::read_to_string(key_of(&f)).unwrap();
            f.env.push(("OPENIM_RELEASE_SIGN_KEY".into(), pem));
            f
        }),
    ),
    (
        "docs/supply-chain.md",
        "openim-release attest --tag v3.8.4-rc.0 --sign-key cosign.key",
        How::Services(|| built_rc(false, &["cosign.key"]).check(|_, out| {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("attached provenance, signature"), "{text}");
        })),
    ),
    (
        "docs/supply-chain.md",
        "openim-release verify --tag v3.8.4-rc.0 --key cosign.pub",
        How::Services(|| built_rc(true, &["cosign.pub"]).check(|_, out| {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("verified: 6 images"), "{text}");
        })),
    ),
];

fn init_wrote(dir: &Path, out: &std::process::Output) {
    let config = std::fs::read_to_string(dir.join("openim-release.yaml")).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    assert!(
        config.contains("compose: build/images/openim-server/docker-compose"),
        "{config}"
    );
}

// ---- running ----------------------------------------------------------------

fn case_for(e: &Example) -> Option<&'static Case> {
    CASES
        .iter()
        .find(|(file, command, _)| *file == e.file && *command == key(&e.command))
}

#[test]
fn every_example_has_a_case() {
    let examples = examples();
    assert!(examples.len() > 30, "{examples:#?}");
    let mut problems = Vec::new();
    for e in &examples {
        if case_for(e).is_none() {
            problems.push(format!(
                "{}:{}: `{}` has no case in tests/it/doc_examples.rs",
                e.file,
                e.line,
                key(&e.command)
            ));
        }
    }
    for (file, command, _) in CASES {
        if !examples
            .iter()
            .any(|e| e.file == *file && key(&e.command) == *command)
        {
            problems.push(format!(
                "{file}: the case `{command}` has no example any more"
            ));
        }
    }
    let not_run: Vec<String> = CASES
        .iter()
        .filter_map(|(file, command, how)| match how {
            How::NotRun(why) => Some(format!("{file}: `{command}`: {why}")),
            _ => None,
        })
        .collect();
    eprintln!("not run:\n  {}", not_run.join("\n  "));
    let not_run = not_run.len();
    assert!(
        not_run <= 6,
        "{not_run} examples are not run: keep that list short"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Whether `actual` matches `expected`, `…` standing for any text in a line
/// and a line of only `…` for any number of lines.
fn matches(expected: &[String], actual: &[String]) -> bool {
    fn line(e: &str, a: &str) -> bool {
        let parts: Vec<&str> = e.split('…').collect();
        if parts.len() == 1 {
            return e == a;
        }
        let mut rest = a;
        for (i, p) in parts.iter().enumerate() {
            if i == 0 {
                let Some(r) = rest.strip_prefix(p) else {
                    return false;
                };
                rest = r;
            } else if i == parts.len() - 1 {
                return rest.ends_with(p);
            } else {
                let Some(at) = rest.find(p) else { return false };
                rest = &rest[at + p.len()..];
            }
        }
        true
    }
    match expected.split_first() {
        None => actual.is_empty(),
        Some((e, rest)) if e.trim() == "…" => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((e, rest)) => {
            !actual.is_empty()
                && line(e.trim_end(), actual[0].trim_end())
                && matches(rest, &actual[1..])
        }
    }
}

fn is_stderr_line(l: &str) -> bool {
    ["error:", "warning:", "note:"]
        .iter()
        .any(|p| l.starts_with(p))
}

/// Run one example; `Err` says how it disagrees with the docs.
fn run(e: &Example, f: Fixture) -> Result<(), String> {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_openim-release"))
        .parent()
        .unwrap()
        .to_path_buf();
    let mut command = e.command.clone();
    for (from, to) in &f.run_as {
        assert!(command.contains(from.as_str()), "{command}: no {from}");
        command = command.replace(from.as_str(), to);
    }
    let mut cmd = std::process::Command::new("sh");
    base_env(&mut cmd);
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.env("PATH", path)
        .current_dir(&f.cwd)
        .args(["-c", &command]);
    for (k, v) in &f.env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let show = |bytes: &[u8]| {
        let mut text = String::from_utf8_lossy(bytes).into_owned();
        for (from, to) in &f.shown {
            text = text.replace(from.as_str(), to);
        }
        text
    };
    let (stdout, stderr) = (show(&out.stdout), show(&out.stderr));
    let here = format!("{}:{}: `{}`", e.file, e.line, e.command);
    if out.status.code() != Some(f.exit) {
        return Err(format!(
            "{here}: exit {:?}, the docs expect {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status.code(),
            f.exit
        ));
    }
    if let Some(expected) = &e.output {
        let (err_lines, out_lines): (Vec<String>, Vec<String>) =
            expected.iter().cloned().partition(|l| is_stderr_line(l));
        let actual_out: Vec<String> = stdout.lines().map(str::to_string).collect();
        if !matches(&out_lines, &actual_out) {
            return Err(format!(
                "{here}: stdout differs from the docs\n--- docs\n{}\n--- binary\n{stdout}\nstderr:\n{stderr}",
                out_lines.join("\n")
            ));
        }
        if !err_lines.is_empty() {
            // The lines shown appear in this order (the docs may leave out
            // notes and progress).
            let mut actual_err = stderr.lines();
            let found = err_lines
                .iter()
                .all(|e| actual_err.any(|a| matches(std::slice::from_ref(e), &[a.to_string()])));
            if !found {
                return Err(format!(
                    "{here}: stderr differs from the docs\n--- docs\n{}\n--- binary\n{stderr}",
                    err_lines.join("\n")
                ));
            }
        }
    }
    if let Some(check) = &f.check {
        check(&f.cwd, &out);
    }
    Ok(())
}

fn run_all(services: bool) {
    let mut failures = Vec::new();
    let mut ran = 0;
    // OPENIM_RELEASE_DOC_EXAMPLE=TEXT runs only the examples containing TEXT.
    let only = std::env::var("OPENIM_RELEASE_DOC_EXAMPLE").unwrap_or_default();
    for e in examples() {
        let Some((_, _, how)) = case_for(&e) else {
            continue;
        };
        if !e.command.contains(&only) {
            continue;
        }
        let fixture = match (how, services) {
            (How::Run(f), false) | (How::Services(f), true) => f(),
            _ => continue,
        };
        ran += 1;
        if let Err(msg) = run(&e, fixture) {
            failures.push(msg);
        }
    }
    assert!(ran > 0 || !only.is_empty());
    assert!(
        failures.is_empty(),
        "{} of {ran} doc examples disagree with the binary:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn doc_examples_run_as_documented() {
    run_all(false);
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn doc_examples_with_the_test_services_run_as_documented() {
    crate::services::services();
    run_all(true);
}

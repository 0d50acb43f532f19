//! `release` end to end: real dockerd, registry, git server, fake GitHub.

use crate::common::*;
use crate::deploy_fixture::read;
use crate::fake_github::FakeGitHub;
use crate::services::{self, Services};

struct World {
    s: &'static Services,
    ns: String,
    deploy_url: String,
    repository: String,
    origin: tempfile::TempDir,
    src: TestRepo,
    gh: FakeGitHub,
}

/// An OpenIM-shaped source repository (images) with an origin, a deploy
/// repository on the git server, and the fake GitHub.
fn world() -> Option<World> {
    let s = services::services()?;
    let ns = format!("{}/{}", s.registry, services::unique_namespace("rel"));
    let (deploy_url, name) = crate::gitops::deploy_remote(s, &ns);

    let src = crate::build::fixture(std::slice::from_ref(&ns), &["linux/amd64", "linux/arm64"]);
    let mut cfg = read(src.path(), "openim-release.yaml");
    cfg.push_str(&format!(
        "deploy:\n  url: {deploy_url}\n  repository: openimsdk/{name}\n  base: main\n  charts:\n    - path: charts/openim-server\n  manifests: [k8s/openim-api.yaml]\n  env_files: [docker-compose/.env]\nstages:\n  dev: {{ deploy: false }}\n"
    ));
    src.write("openim-release.yaml", &cfg);
    src.git(&["add", "-A"]);
    src.git(&["commit", "-q", "-m", "deploy config"]);
    src.atag(&["v3.8.0"]);
    src.commit("the fix for 3.8.1");
    let origin = bare_remote();
    src.git(&["remote", "add", "origin", origin.path().to_str().unwrap()]);
    src.git(&["push", "-q", "origin", "main", "--tags"]);
    let gh = FakeGitHub::start(&s.git_token);
    Some(World {
        s,
        ns,
        deploy_url,
        repository: format!("openimsdk/{name}"),
        origin,
        src,
        gh,
    })
}

impl World {
    fn release(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = self.src.bin();
        cmd.env("DOCKER_HOST", &self.s.docker_host)
            .env("GITHUB_TOKEN", &self.s.git_token)
            .env("GITHUB_API_URL", &self.gh.url)
            .args(args);
        cmd
    }

    fn deploy_branch(&self, branch: &str) -> tempfile::TempDir {
        crate::gitops::clone_branch(self.s, &self.deploy_url, branch)
    }
}

#[test]
fn plan_shows_everything_and_changes_nothing() {
    let Some(w) = world() else { return };
    let out = stdout_ok(&mut w.release(&["plan", "--stage", "rc"]));
    assert!(out.contains("# rc: tags\nv3.8.1-rc.0\nrc0\n"), "{out}");
    assert!(
        out.contains(&format!(
            "{}/openim-api:v3.8.1-rc.0  (linux/amd64, linux/arm64)",
            w.ns
        )),
        "{out}"
    );
    assert!(out.contains("+          image: "), "{out}");
    assert!(out.contains("would push branch openim-release/rc"), "{out}");
    assert!(tag_list(w.origin.path()).iter().all(|t| !t.contains("rc")));
    assert!(services::inspect_raw(&format!("{}/openim-api:rc0", w.ns), None).is_err());
    assert!(w.gh.pulls(&w.repository).is_empty());
    // The stage from the environment (as the Action passes it) reaches no
    // step that takes --tag.
    let via_env = stdout_ok(w.release(&["plan"]).env("OPENIM_RELEASE_STAGE", "rc"));
    assert!(
        via_env.contains("# rc: tags\nv3.8.1-rc.0\nrc0\n"),
        "{via_env}"
    );
}

#[test]
fn rc_then_release_end_to_end() {
    let Some(w) = world() else { return };
    let gh_out = tempfile::tempdir().unwrap();
    let output = gh_out.path().join("out");
    let json = json_ok(
        w.release(&["release", "--stage", "rc"])
            .env("GITHUB_OUTPUT", &output),
    );
    assert_eq!(json["tag"]["git_tag"], "v3.8.1-rc.0");
    // The rc git tag on the remote, images (all platforms) in the registry.
    assert!(tag_list(w.origin.path()).contains(&"v3.8.1-rc.0".to_string()));
    for svc in crate::build::SERVICES {
        let index = services::inspect_raw(&format!("{}/{svc}:v3.8.1-rc.0", w.ns), None).unwrap();
        assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{svc}");
    }
    // One deploy PR with exactly the expected edits.
    let pulls = w.gh.pulls(&w.repository);
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0]["head"], "openim-release/rc");
    let branch = w.deploy_branch("openim-release/rc");
    let env = read(branch.path(), "docker-compose/.env");
    let api_digest = json["build"]["images"][0]["digest"].as_str().unwrap();
    assert_eq!(
        env,
        format!("# images\nOPENIM_API_IMAGE={}/openim-api:v3.8.1-rc.0@{api_digest}\nMONGO_IMAGE=mongo:7.0\n", w.ns)
    );
    let outputs = std::fs::read_to_string(&output).unwrap();
    assert!(outputs.contains("v3.8.1-rc.0\nrc0\n"), "{outputs}");
    assert!(outputs.contains("pr-url<<"), "{outputs}");

    // Promote: the release tag after the images, a PR for the release branch.
    let json = json_ok(&mut w.release(&["release", "--stage", "release"]));
    assert_eq!(json["tag"]["git_tag"], "v3.8.1");
    assert!(tag_list(w.origin.path()).contains(&"v3.8.1".to_string()));
    assert_eq!(
        services::digest_of(&format!("{}/openim-push:latest", w.ns), None).unwrap(),
        services::digest_of(&format!("{}/openim-push:v3.8.1-rc.0", w.ns), None).unwrap(),
        "unchanged inputs: the rc image is promoted, not rebuilt"
    );
    let pulls = w.gh.pulls(&w.repository);
    assert_eq!(pulls.len(), 2);
    let release_branch = w.deploy_branch("openim-release/release");
    assert!(read(release_branch.path(), "k8s/openim-api.yaml").contains(":release-v3.8.1@sha256:"));

    // A re-run of the release finds everything done: no new PR, no error.
    let again = json_ok(&mut w.release(&["release", "--stage", "release"]));
    assert_eq!(again["gitops"]["pr_action"], "up-to-date");
    assert_eq!(w.gh.pulls(&w.repository).len(), 2);
}

#[test]
fn a_failed_build_deploys_nothing_and_a_rerun_finishes() {
    let Some(w) = world() else { return };
    let broken = w.src.path().join("cmd/openim-push/main.txt");
    std::fs::remove_file(&broken).unwrap();
    std::fs::remove_dir(broken.parent().unwrap()).unwrap();
    let err = fails_with(
        &mut w.release(&["release", "--stage", "release", "--version", "3.8.1"]),
        1,
    );
    assert!(err.contains("the build step failed"), "{err}");
    // No release tag, no deploy change: the deploy repository never points
    // at images that do not exist.
    assert!(!tag_list(w.origin.path()).contains(&"v3.8.1".to_string()));
    assert!(w.gh.pulls(&w.repository).is_empty());
    // Tags are all or none: the services that did build are not tagged
    // either, so `latest` never mixes the new release with the old one.
    for tag in ["v3.8.1", "latest"] {
        let reference = format!("{}/openim-api:{tag}", w.ns);
        assert!(
            services::inspect_raw(&reference, None).is_err(),
            "{reference} was tagged although openim-push failed"
        );
    }
    // Fixed and re-run: finishes, with the images already pushed reused.
    crate::deploy_fixture::write(
        w.src.path(),
        "cmd/openim-push/main.txt",
        "openim-push binary\n",
    );
    let json = json_ok(&mut w.release(&["release", "--stage", "release", "--version", "3.8.1"]));
    let statuses: Vec<&str> = json["build"]["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "unchanged").count(),
        2,
        "{statuses:?}"
    );
    assert!(tag_list(w.origin.path()).contains(&"v3.8.1".to_string()));
    assert_eq!(w.gh.pulls(&w.repository).len(), 1);
}

#[test]
fn a_run_killed_halfway_is_finished_by_a_rerun() {
    let Some(w) = world() else { return };
    // Kill the release while it builds (after the rc number is reserved).
    let mut cmd = std_bin(w.src.path());
    cmd.env("DOCKER_HOST", &w.s.docker_host)
        .env("GITHUB_TOKEN", &w.s.git_token)
        .env("GITHUB_API_URL", &w.gh.url)
        .args(["release", "--stage", "rc"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut reader = std::io::BufReader::new(stderr);
    let mut line = String::new();
    loop {
        line.clear();
        use std::io::BufRead;
        if reader.read_line(&mut line).unwrap() == 0 || line.contains("building and pushing images")
        {
            break;
        }
    }
    // The whole process group: the build step is a child process.
    let _ = std::process::Command::new("pkill")
        .args(["-KILL", "-P", &child.id().to_string()])
        .status();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        w.gh.pulls(&w.repository).is_empty(),
        "nothing deployed by the killed run"
    );

    let json = json_ok(&mut w.release(&["release", "--stage", "rc"]));
    // The killed run's rc number stays used; the re-run takes the next one
    // and finishes: images for every service, one PR.
    assert_eq!(json["tag"]["git_tag"], "v3.8.1-rc.1");
    for svc in crate::build::SERVICES {
        assert!(
            services::inspect_raw(&format!("{}/{svc}:v3.8.1-rc.1", w.ns), None).is_ok(),
            "{svc}"
        );
    }
    assert_eq!(w.gh.pulls(&w.repository).len(), 1);
    let tags = tag_list(w.origin.path());
    assert!(tags.contains(&"v3.8.1-rc.0".to_string()) && tags.contains(&"v3.8.1-rc.1".to_string()));
}

/// Whatever the later steps would trip over is found before the rc number is
/// reserved: nothing is tagged, pushed or opened, and no number is burnt.
#[test]
fn bad_input_is_found_before_anything_is_reserved() {
    let Some(w) = world() else { return };
    let rc = ["release", "--stage", "rc"];
    let err = fails_with(w.release(&rc).args(["--service", "nope"]), 2);
    assert!(err.contains("nope"), "{err}");
    let err = fails_with(w.release(&rc).env_remove("GITHUB_TOKEN"), 2);
    assert!(err.contains("GITHUB_TOKEN"), "{err}");
    let err = fails_with(
        w.release(&rc)
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
        1,
    );
    assert!(
        err.contains("DOCKER_HOST") || err.contains("engine"),
        "{err}"
    );
    std::fs::remove_file(w.src.path().join("build/images/openim-server/Dockerfile")).unwrap();
    let err = fails_with(&mut w.release(&rc), 2);
    assert!(err.contains("Dockerfile"), "{err}");

    assert_eq!(tag_list(w.origin.path()), ["v3.8.0"], "no rc number taken");
    assert!(services::inspect_raw(&format!("{}/openim-api:rc0", w.ns), None).is_err());
    assert!(w.gh.pulls(&w.repository).is_empty());
}

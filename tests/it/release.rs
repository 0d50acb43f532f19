//! `release` end to end: real dockerd, registry, git server, fake GitHub.

use crate::common::*;
use crate::deploy_fixture::read;
use crate::fake_github::FakeGitHub;
use crate::services::{self, Services};

pub struct World {
    pub s: &'static Services,
    pub ns: String,
    pub deploy_url: String,
    pub repository: String,
    pub origin: tempfile::TempDir,
    pub src: TestRepo,
    pub gh: FakeGitHub,
}

/// An OpenIM-shaped source repository (images) with an origin, a deploy
/// repository on the git server, and the fake GitHub.
fn world() -> World {
    world_with(|s, ns| {
        let (deploy_url, name) = crate::gitops::deploy_remote(s, ns);
        let cfg = format!(
            "deploy:\n  url: {deploy_url}\n  repository: openimsdk/{name}\n  base: main\n  charts:\n    - path: charts/openim-server\n  manifests: [k8s/openim-api.yaml]\n  env_files: [docker-compose/.env]\nstages:\n  dev: {{ deploy: false }}\n"
        );
        (deploy_url, name, cfg)
    })
}

/// The same source repository deploying to a repository in helm-charts'
/// shape (tests/fixtures/release/helm-charts): the umbrella chart deploys
/// openim-api with `tag: ""`, its image following the umbrella's appVersion.
fn helm_world() -> World {
    world_with(|s, ns| {
        let (_, deploy_url) = services::git_server_repo(s, "deploy");
        let seed = TestRepo::empty();
        crate::fixtures::copy("release/helm-charts", seed.path(), ns);
        seed.git(&["add", "-A"]);
        seed.git(&["commit", "-q", "-m", "seed"]);
        seed.git(&["push", "-q", &services::authed(s, &deploy_url), "main"]);
        let name = deploy_url
            .rsplit('/')
            .next()
            .unwrap()
            .trim_end_matches(".git")
            .to_string();
        let repository = format!("openimsdk/{name}");
        let cfg = crate::fixtures::text(
            "release/deploy-helm-charts.yaml",
            &[("@DEPLOY_URL@", &deploy_url), ("@REPOSITORY@", &repository)],
        );
        (deploy_url, name, cfg)
    })
}

/// `deploy(services, registry namespace)` sets up the deploy repository
/// and returns its URL, name and the `deploy:` config for it.
pub fn world_with(
    deploy: impl FnOnce(&'static Services, &str) -> (String, String, String),
) -> World {
    let s = services::services();
    let ns = services::fresh_namespace(&s.registry, "rel");
    let (deploy_url, name, deploy_cfg) = deploy(s, &ns);

    let src = crate::build::fixture(std::slice::from_ref(&ns), &["linux/amd64", "linux/arm64"]);
    let mut cfg = read(src.path(), "openim-release.yaml");
    cfg.push_str(&deploy_cfg);
    src.write("openim-release.yaml", &cfg);
    src.git(&["add", "-A"]);
    src.git(&["commit", "-q", "-m", "deploy config"]);
    src.atag(&["v3.8.0"]);
    src.commit("the fix for 3.8.1");
    let origin = bare_remote();
    src.git(&["remote", "add", "origin", origin.path().to_str().unwrap()]);
    src.git(&["push", "-q", "origin", "main", "--tags"]);
    let gh = FakeGitHub::start(&s.git_token);
    World {
        s,
        ns,
        deploy_url,
        repository: format!("openimsdk/{name}"),
        origin,
        src,
        gh,
    }
}

impl World {
    pub fn release(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = self.src.bin();
        cmd.env("DOCKER_HOST", &self.s.docker_host)
            .env("GITHUB_TOKEN", &self.s.git_token)
            .env("GITHUB_API_URL", &self.gh.url)
            .args(args);
        cmd
    }

    /// `images.mirrors` of the world's registry, committed.
    pub fn add_mirrors(&self, mirrors: &[&str]) {
        let cfg = read(self.src.path(), "openim-release.yaml");
        self.src.write(
            "openim-release.yaml",
            &cfg.replacen(
                "  platforms:",
                &format!(
                    "  mirrors:\n    {}: [{}]\n  platforms:",
                    self.ns,
                    mirrors.join(", ")
                ),
                1,
            ),
        );
        self.src.git(&["commit", "-q", "-am", "mirrors"]);
    }

    pub fn deploy_branch(&self, branch: &str) -> tempfile::TempDir {
        crate::gitops::clone_branch(self.s, &self.deploy_url, branch)
    }
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn plan_shows_everything_and_changes_nothing() {
    let w = world();
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

/// The plan as people read it, as a snapshot (tests/it/snapshots/): the
/// tags, the checks, every image, the deploy diff and the pull request. The
/// run's own names are scrubbed (registry namespace, ports, repository
/// names, commits).
#[test]
#[ignore = "needs the services of scripts/test"]
fn the_plan_as_people_read_it() {
    let w = world();
    let out = stdout_ok(&mut w.release(&["plan", "--stage", "rc"]));
    let text = out
        .replace(&w.ns, "[registry]/[namespace]")
        .replace(&w.deploy_url, "[deploy repository URL]")
        .replace(&w.repository, "openimsdk/[deploy repository]")
        .replace(w.origin.path().to_str().unwrap(), "[origin]")
        .replace(&w.s.docker_host, "[engine]");
    insta::with_settings!({filters => vec![
        (r"\(API [0-9.]+\)", "(API [version])"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[port]"),
        (r"\b[0-9a-f]{7}\b", "[sha7]"),
    ]}, {
        insta::assert_snapshot!(text);
    });
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn rc_then_release_end_to_end() {
    let w = world();
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

/// OpenIM's patch releases: on `3.8.0-patch` after v3.8.0, `release
/// --stage patch` reserves `v3.8.0-patch.1` (race-safe, like an rc), pushes
/// its images and opens the deploy PR; the release's own tags never move.
#[test]
#[ignore = "needs the services of scripts/test"]
fn patch_release_end_to_end() {
    let w = world();
    let v380 = |svc: &str| format!("{}/{svc}:v3.8.0", w.ns);
    w.src.git(&["checkout", "-q", "-b", "3.8.0-patch"]);
    let json = json_ok(&mut w.release(&["release", "--stage", "hotfix"]));
    assert_eq!(json["tag"]["stage"], "patch");
    assert_eq!(json["tag"]["git_tag"], "v3.8.0-patch.1");
    assert_eq!(
        json["tag"]["tags"],
        serde_json::json!(["v3.8.0-patch.1", "3.8.0-patch.1", "3.8", "3", "latest"])
    );
    assert!(tag_list(w.origin.path()).contains(&"v3.8.0-patch.1".to_string()));
    for svc in crate::build::SERVICES {
        let patch = format!("{}/{svc}:v3.8.0-patch.1", w.ns);
        let index = services::inspect_raw(&patch, None).unwrap();
        assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{svc}");
        assert_eq!(
            services::digest_of(&format!("{}/{svc}:latest", w.ns), None).unwrap(),
            services::digest_of(&patch, None).unwrap()
        );
        // v3.8.0 itself was never pushed by this run.
        assert!(services::inspect_raw(&v380(svc), None).is_err());
    }
    let pulls = w.gh.pulls(&w.repository);
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0]["head"], "openim-release/patch");
    let branch = w.deploy_branch("openim-release/patch");
    assert!(read(branch.path(), "k8s/openim-api.yaml").contains(":v3.8.0-patch.1@sha256:"));
    // The next hotfix takes the next number.
    w.src.commit("hotfix 2");
    let json = json_ok(&mut w.release(&["release", "--stage", "patch"]));
    assert_eq!(json["tag"]["git_tag"], "v3.8.0-patch.2");
    assert_eq!(w.gh.pulls(&w.repository).len(), 1, "the PR is updated");
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn a_failed_build_deploys_nothing_and_a_rerun_finishes() {
    let w = world();
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
#[ignore = "needs the services of scripts/test"]
fn a_run_killed_halfway_is_finished_by_a_rerun() {
    let w = world();
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
#[ignore = "needs the services of scripts/test"]
fn bad_input_is_found_before_anything_is_reserved() {
    let w = world();
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

/// `release --service` builds that service only, and deploys only it: in
/// helm-charts' shape the umbrella's appVersion is openim-api's image tag,
/// so it must not move either.
#[test]
#[ignore = "needs the services of scripts/test"]
fn a_release_of_one_service_deploys_only_that_service() {
    let w = helm_world();
    let one = ["--stage", "rc", "--service", "openim-push"];
    let plan = stdout_ok(w.release(&["plan"]).args(one));
    assert!(
        plan.contains("+++ b/charts/openim-server/charts/openim-push/values.yaml"),
        "{plan}"
    );
    assert!(plan.contains("ok      services: 1 service, "), "{plan}");
    assert!(!plan.contains("+appVersion"), "{plan}");
    assert!(!plan.contains("+OPENIM_API_IMAGE"), "{plan}");
    assert!(plan.contains("+OPENIM_PUSH_IMAGE"), "{plan}");

    let json = json_ok(w.release(&["release"]).args(one));
    let built: Vec<&str> = json["build"]["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["service"].as_str().unwrap())
        .collect();
    assert_eq!(built, ["openim-push"]);
    let digest = json["build"]["images"][0]["digest"].as_str().unwrap();
    assert_eq!(w.gh.pulls(&w.repository).len(), 1);

    let branch = w.deploy_branch("openim-release/rc");
    let fixture = tempfile::tempdir().unwrap();
    crate::fixtures::copy("release/helm-charts", fixture.path(), &w.ns);
    let before = |f: &str| read(fixture.path(), f);
    let after = |f: &str| read(branch.path(), f);
    let push_values = "charts/openim-server/charts/openim-push/values.yaml";
    assert_eq!(
        after(push_values),
        before(push_values).replace("tag: \"\"", "tag: \"v3.8.1-rc.0\"")
    );
    // Nothing of the services not built: openim-api (the umbrella's image,
    // whose tag is the umbrella's appVersion) and openim-rpc-user.
    for f in [
        "charts/openim-server/values.yaml",
        "charts/openim-server/charts/openim-push/Chart.yaml",
        "charts/openim-server/charts/openim-rpc-user/Chart.yaml",
        "charts/openim-server/charts/openim-rpc-user/values.yaml",
    ] {
        assert_eq!(after(f), before(f), "{f}");
    }
    let chart = after("charts/openim-server/Chart.yaml");
    assert!(chart.contains("appVersion: \"3.8.0\""), "{chart}");
    assert!(chart.contains("version: 0.1.18"), "{chart}");
    let env = after("docker-compose/.env");
    assert!(
        env.contains(&format!("OPENIM_API_IMAGE={}/openim-api:v3.8.0 ", w.ns)),
        "{env}"
    );
    assert!(
        env.contains(&format!(
            "OPENIM_PUSH_IMAGE={}/openim-push:v3.8.1-rc.0@{digest}",
            w.ns
        )),
        "{env}"
    );
}

/// Shaped like open-im-server's history: v3.8.0 released, hotfixes tagged
/// v3.8.0-patch.N on later commits. `--version 3.8.0` on a hotfix commit is
/// a version already released from another commit: refused by the checks,
/// before any image (`latest` among them) is pushed; `plan` shows it.
#[test]
#[ignore = "needs the services of scripts/test"]
fn a_version_released_from_another_commit_is_refused_before_anything_is_pushed() {
    let w = world();
    w.src.tag(&["v3.8.0-patch.1"]);
    w.src.git(&["push", "-q", "origin", "v3.8.0-patch.1"]);
    let origin_tags = tag_list(w.origin.path());
    let nothing_pushed = |version: &str| {
        for tag in [
            format!("v{version}"),
            format!("release-v{version}"),
            version.to_string(),
            "latest".to_string(),
        ] {
            let reference = format!("{}/openim-api:{tag}", w.ns);
            assert!(
                services::inspect_raw(&reference, None).is_err(),
                "{reference} was pushed"
            );
        }
        assert_eq!(tag_list(w.origin.path()), origin_tags, "no git tag pushed");
        assert!(w.gh.pulls(&w.repository).is_empty());
    };

    let release = ["--stage", "release", "--version", "3.8.0"];
    let out = w.release(&["plan"]).args(release).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("FAILED  git tag: v3.8.0 already exists at "),
        "{stdout}"
    );
    let err = fails_with(w.release(&["release"]).args(release), 2);
    assert!(err.contains("git tag: v3.8.0 already exists at"), "{err}");
    nothing_pushed("3.8.0");

    // Released on origin only (this clone has not fetched the tag).
    w.src.git(&["tag", "v3.8.1", "HEAD~1"]);
    w.src.git(&["push", "-q", "origin", "v3.8.1"]);
    w.src.git(&["tag", "-d", "v3.8.1"]);
    let origin_tags = tag_list(w.origin.path());
    let err = fails_with(
        &mut w.release(&["release", "--stage", "release", "--version", "3.8.1"]),
        2,
    );
    assert!(err.contains("v3.8.1 already exists on "), "{err}");
    for tag in ["v3.8.1", "latest"] {
        let reference = format!("{}/openim-api:{tag}", w.ns);
        assert!(
            services::inspect_raw(&reference, None).is_err(),
            "{reference}"
        );
    }
    assert_eq!(tag_list(w.origin.path()), origin_tags);
}

/// `plan` runs the checks `release` runs before its first side effect and
/// shows each; it fails exactly when `release` would stop at them.
#[test]
#[ignore = "needs the services of scripts/test"]
fn plan_shows_every_check_and_fails_when_release_would() {
    let w = world();
    let out = stdout_ok(&mut w.release(&["plan", "--stage", "rc"]));
    for check in [
        "ok      token: ",
        "ok      services: 3 services",
        "ok      engine: ",
        &format!("ok      registry {}: ", w.ns),
        "ok      git tag: ",
        "ok      deploy repository: ",
    ] {
        assert!(out.contains(check), "{check} in:\n{out}");
    }
    let json = json_ok(&mut w.release(&["plan", "--stage", "rc"]));
    assert!(
        json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ok"] == true),
        "{json}"
    );
    // -q: nothing on stderr when all is well.
    let quiet = w
        .release(&["-q", "plan", "--stage", "rc"])
        .output()
        .unwrap();
    assert!(quiet.status.success());
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");

    // No token: the plan is still shown, the check fails, exit 2.
    let out = w
        .release(&["plan", "--stage", "rc"])
        .env_remove("GITHUB_TOKEN")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stdout.contains("FAILED  token: GITHUB_TOKEN"), "{stdout}");
    assert!(stdout.contains("ok      engine: "), "{stdout}");
    assert!(
        stdout.contains(&format!("{}/openim-api:v3.8.1-rc.0  (", w.ns)),
        "the images are still planned: {stdout}"
    );
    assert!(stderr.contains("`release` would stop there"), "{stderr}");
    let out = w
        .release(&["plan", "--stage", "rc", "--output", "json"])
        .env_remove("GITHUB_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "token")
        .unwrap();
    assert_eq!(token["ok"], false, "{json}");

    // No engine: exit 1, as release would.
    let out = w
        .release(&["plan", "--stage", "rc"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAILED  engine: cannot reach"), "{stdout}");
    assert!(
        stdout.contains("+          image: "),
        "the deploy diff: {stdout}"
    );

    // A registry that needs credentials, without them; then with them.
    let auth_ns = services::fresh_namespace(&w.s.auth_registry, "rel");
    let cfg = read(w.src.path(), "openim-release.yaml").replace(
        &format!("    - {}\n", w.ns),
        &format!("    - {}\n    - {auth_ns}\n", w.ns),
    );
    w.src.write("openim-release.yaml", &cfg);
    let out = w.release(&["plan", "--stage", "rc"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("FAILED  registry {auth_ns}: ")),
        "{stdout}"
    );
    let key = crate::build::credentials_key(&w.s.auth_registry);
    stdout_ok(
        w.release(&["plan", "--stage", "rc"])
            .env(format!("{key}_USERNAME"), &w.s.auth_user)
            .env(format!("{key}_PASSWORD"), &w.s.auth_password),
    );

    // An unknown service: exit 2, and nothing planned for the images.
    let out = w
        .release(&["plan", "--stage", "rc", "--service", "nope"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("FAILED  services: unknown service `nope`"),
        "{stdout}"
    );
    assert!(tag_list(w.origin.path()).iter().all(|t| !t.contains("rc")));
}

/// -q: nothing on stderr but errors.
#[test]
fn quiet_means_nothing_on_stderr() {
    let repo = crate::build::fixture(&["127.0.0.1:9/none".to_string()], &["linux/amd64"]);
    for args in [
        &["-q", "build", "--tag", "x", "--dry-run"][..],
        &["-q", "build", "--stage", "dev", "--dry-run"][..],
        &["-q", "tag", "--stage", "rc"][..],
    ] {
        let out = repo.bin().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
    }
}

/// Options that would be silently ignored are refused (exit 2), before
/// anything is looked at.
#[test]
fn options_that_do_not_apply_are_refused() {
    let repo = crate::build::fixture(&["127.0.0.1:9/none".to_string()], &["linux/amd64"]);
    for (args, needle) in [
        (&["release", "--stage", "rc", "--force"][..], "--force"),
        (
            &["plan", "--stage", "dev", "--no-git-tag"][..],
            "--no-git-tag",
        ),
        (
            &["release", "--stage", "rc", "--skip-build", "--jobs", "2"][..],
            "--jobs",
        ),
        (
            &["release", "--stage", "rc", "--skip-gitops", "--no-verify"][..],
            "--no-verify",
        ),
        (&["plan", "--stage", "rc", "--no-verify"][..], "--no-verify"),
        (
            &["build", "--tag", "x", "--version", "3.9.0"][..],
            "--version",
        ),
        (&["build", "--tag", "x", "--branch", "main"][..], "--branch"),
        (
            &["build", "--stage", "dev", "--version", "3.9.0"][..],
            "--version",
        ),
        (
            &[
                "build",
                "--push-by-digest",
                "--tag",
                "x",
                "--platform",
                "linux/amd64",
            ][..],
            "--tag",
        ),
        (
            &["build", "--tag", "x", "--no-push", "--all-or-none"][..],
            "--all-or-none",
        ),
    ] {
        let err = fails_with(repo.bin().args(args), 2);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// A nightly started a second before midnight UTC: every step dates it the
/// same day. The run's clock is read once, when the workspace opens; the
/// system clock (a later day) must not reach any step: the images and the
/// git tag carry the injected date.
#[test]
#[ignore = "needs the services of scripts/test"]
fn a_nightly_that_crosses_midnight_dates_its_images_and_git_tag_alike() {
    let w = world();
    let json = json_ok(
        w.release(&["release", "--stage", "nightly", "--skip-gitops"])
            .env("OPENIM_RELEASE_CLOCK", "2026-11-30T23:59:59Z"),
    );
    let sha7 = &w.src.head()[..7];
    let dated = format!("nightly-20261130-{sha7}");
    assert_eq!(json["tag"]["tags"][0], dated.as_str());
    assert_eq!(json["git_tag_pushed"]["git_tag"], dated.as_str());
    assert!(tag_list(w.origin.path()).contains(&dated));
    for svc in crate::build::SERVICES {
        assert!(
            services::inspect_raw(&format!("{}/{svc}:{dated}", w.ns), None).is_ok(),
            "{svc}:{dated}"
        );
    }
}

/// Nothing but the workspace reads the clock for a date: a second reading
/// is how a nightly crossing midnight got two dates.
#[test]
fn only_the_workspace_reads_the_clock() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for (n, line) in text.lines().enumerate() {
                let clock = line.contains("Utc::now()") || line.contains("Local::now()");
                // Rate-limit waits compare with GitHub's reset time: real time.
                let allowed = path.ends_with("workspace.rs")
                    || (path.ends_with("github.rs") && line.contains("timestamp()"));
                if clock && !allowed {
                    offenders.push(format!("{}:{}", path.display(), n + 1));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "clock read outside the workspace: {offenders:?}"
    );
}

/// `images.mirrors`: the plan lists the mirror references and checks the
/// mirrors; `release` builds once, pushes to images.registries, then copies
/// the images by digest to the htpasswd and the token registry before the
/// git tag; a mirror whose credentials are refused stops the release at its
/// checks, before anything is built or tagged.
#[test]
#[ignore = "needs the services of scripts/test"]
fn release_builds_once_and_mirrors_by_digest() {
    let w = world();
    let s = w.s;
    let auth = services::fresh_namespace(&s.auth_registry, "relmirror");
    let token = services::fresh_namespace(&s.token_registry, "relmirror");
    w.add_mirrors(&[&auth, &token]);
    let creds = crate::mirror::creds_env(s);

    // A refused mirror: found by the checks, nothing built or tagged.
    let key = crate::build::credentials_key(&s.token_registry);
    let out = w
        .release(&["release", "--stage", "nightly", "--skip-gitops"])
        .envs(creds.clone())
        .env(format!("{key}_PASSWORD"), "wrong-password-xyz")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains(&format!("mirror of {}", w.ns)), "{err}");
    assert!(!err.contains("wrong-password-xyz"), "{err}");
    assert!(tag_list(w.origin.path())
        .iter()
        .all(|t| !t.starts_with("nightly")));
    assert!(services::inspect_raw(&format!("{}/openim-api:nightly", w.ns), None).is_err());

    let plan = stdout_ok(
        w.release(&["plan", "--stage", "nightly", "--skip-gitops"])
            .envs(creds.clone()),
    );
    assert!(
        plan.contains("# mirrors (copied by digest after the build)"),
        "{plan}"
    );
    assert!(
        plan.contains(&format!("{auth}/openim-api:nightly  (from {})", w.ns)),
        "{plan}"
    );

    let json = json_ok(
        w.release(&["release", "--stage", "nightly", "--skip-gitops"])
            .envs(creds.clone()),
    );
    let login = Some((s.auth_user.as_str(), s.auth_password.as_str()));
    let dated = json["tag"]["tags"][0].as_str().unwrap().to_string();
    assert!(tag_list(w.origin.path()).contains(&dated));
    for image in json["build"]["images"].as_array().unwrap() {
        let svc = image["service"].as_str().unwrap();
        let digest = image["digest"].as_str().unwrap();
        for r in [&auth, &token] {
            for tag in [dated.as_str(), "nightly"] {
                assert_eq!(
                    services::digest_of(&format!("{r}/{svc}:{tag}"), login).unwrap(),
                    services::digest_of(&format!("{}/{svc}:{tag}", w.ns), None).unwrap(),
                    "{r}/{svc}:{tag}"
                );
            }
        }
        // The mirror copied what the build reported, by digest.
        let mirrored = json["mirror"]["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["service"] == svc)
            .unwrap();
        assert_eq!(mirrored["digest"], digest, "{mirrored}");
        assert_eq!(mirrored["status"], "copied", "{mirrored}");
    }
    assert_eq!(
        json["mirror"]["images"].as_array().unwrap().len(),
        3,
        "{json}"
    );
    assert!(
        json["mirror"]["moved"]["bytes_sent"].as_u64().unwrap() > 0,
        "{json}"
    );
}

/// A deploy whose files hold no image of the configured services (the
/// deploy repository names another registry) would deploy nothing: the
/// plan's deploy check fails and says why, instead of "0 files would
/// change" under "ok"; `release` stops there with nothing made.
#[test]
#[ignore = "needs the services of scripts/test"]
fn a_deploy_that_would_change_no_file_is_a_failed_check() {
    let w = world_with(|s, _| {
        let (deploy_url, name) = crate::gitops::deploy_remote(s, "127.0.0.1:1/elsewhere");
        let cfg = format!(
            "deploy:\n  url: {deploy_url}\n  repository: openimsdk/{name}\n  base: main\n  env_files: [docker-compose/.env]\n"
        );
        (deploy_url, name, cfg)
    });
    let out = w.release(&["plan", "--stage", "rc"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("the deploy would change no file: docker-compose/.env:"),
        "{stdout}"
    );
    let out = w.release(&["release", "--stage", "rc"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(tag_list(w.origin.path()).iter().all(|t| !t.contains("rc")));
    assert!(w.gh.pulls(&w.repository).is_empty());
}

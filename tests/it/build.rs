//! `build`: real BuildKit builds on the test dockerd, pushed to the real
//! registries, checked with skopeo.

use crate::common::*;
use crate::need_services;
use crate::services::{self, Services};
use serde_json::Value;

pub const SERVICES: &[&str] = &["openim-api", "openim-rpc-user", "openim-push"];

/// An OpenIM-shaped project: one Dockerfile, services selected by build
/// args, FROM scratch so every platform builds without pulling anything.
pub fn fixture(registries: &[String], platforms: &[&str]) -> TestRepo {
    let repo = TestRepo::new();
    let root = repo.path();
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "build/images/openim-server/Dockerfile",
        "FROM scratch\nARG BINARY_NAME\nARG CMD_PATH\nCOPY config/ /openim/config/\nCOPY ${CMD_PATH}/ /openim/bin/${BINARY_NAME}/\n",
    );
    write(".dockerignore", "*.log\ntmp/\n");
    write("config/openim.yaml", "api:\n  port: 10002\n");
    write("tmp/big.bin", "ignored by .dockerignore\n");
    write("debug.log", "ignored\n");
    let mut services_yaml = String::new();
    for s in SERVICES {
        write(&format!("cmd/{s}/main.txt"), &format!("{s} binary\n"));
        services_yaml.push_str(&format!(
            "    - name: {s}\n      dockerfile: build/images/openim-server/Dockerfile\n      context: .\n      args: {{ CMD_PATH: cmd/{s}, BINARY_NAME: {s} }}\n"
        ));
    }
    let regs: Vec<String> = registries.iter().map(|r| format!("    - {r}\n")).collect();
    write(
        "openim-release.yaml",
        &format!(
            "images:\n  registries:\n{}  platforms: [{}]\n  services:\n{services_yaml}",
            regs.concat(),
            platforms.join(", ")
        ),
    );
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "fixture"]);
    repo
}

fn build_cmd(s: &Services, repo: &TestRepo) -> assert_cmd::Command {
    let mut cmd = repo.bin();
    cmd.env("DOCKER_HOST", &s.docker_host).arg("build");
    cmd
}

fn images(json: &Value) -> &Vec<Value> {
    json["images"].as_array().unwrap()
}

fn image<'a>(json: &'a Value, service: &str) -> &'a Value {
    images(json)
        .iter()
        .find(|i| i["service"] == service)
        .unwrap()
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn builds_every_service_for_every_platform_and_pushes_indexes() {
    let s = need_services!();
    let ns = services::fresh_namespace(&s.registry, "multi");
    let repo = fixture(std::slice::from_ref(&ns), &["linux/amd64", "linux/arm64"]);
    let json = json_ok(build_cmd(s, &repo).args(["--tag", "v1.0.0", "--tag", "rc0"]));
    assert_eq!(images(&json).len(), 3);
    for svc in SERVICES {
        let img = image(&json, svc);
        assert_eq!(img["status"], "built", "{img}");
        let digest = img["digest"].as_str().unwrap();
        for tag in ["v1.0.0", "rc0"] {
            let reference = format!("{ns}/{svc}:{tag}");
            let index = services::inspect_raw(&reference, None).unwrap();
            assert_eq!(
                index["mediaType"],
                "application/vnd.oci.image.index.v1+json"
            );
            let platforms: Vec<String> = index["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    format!(
                        "{}/{}",
                        m["platform"]["os"].as_str().unwrap(),
                        m["platform"]["architecture"].as_str().unwrap()
                    )
                })
                .collect();
            assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
            // The digest the registry reports for the tag is the one we printed.
            let raw = std::process::Command::new("skopeo")
                .args([
                    "inspect",
                    "--tls-verify=false",
                    "--raw",
                    &format!("docker://{reference}"),
                ])
                .output()
                .unwrap();
            let registry_digest = format!("sha256:{}", sha256_hex(&raw.stdout));
            assert_eq!(registry_digest, digest);
            let refs: Vec<&str> = img["references"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            assert!(refs.contains(&reference.as_str()), "{refs:?}");
        }
        // OCI labels on the image config of each platform.
        for arch in ["amd64", "arm64"] {
            let cfg = services::inspect_config(&format!("{ns}/{svc}:v1.0.0"), arch).unwrap();
            assert_eq!(cfg["architecture"], arch);
            let labels = &cfg["config"]["Labels"];
            assert_eq!(labels["org.opencontainers.image.title"], *svc);
            assert_eq!(labels["org.opencontainers.image.revision"], repo.head());
            assert_eq!(labels["org.opencontainers.image.version"], "v1.0.0");
            assert_eq!(
                labels["org.opencontainers.image.created"],
                "2026-11-25T12:00:00Z"
            );
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn rerun_with_nothing_changed_only_adds_tags_and_a_change_rebuilds_one_service() {
    let s = need_services!();
    let ns = services::fresh_namespace(&s.registry, "rerun");
    let repo = fixture(std::slice::from_ref(&ns), &["linux/amd64"]);
    let first = json_ok(build_cmd(s, &repo).args(["--tag", "nightly-1"]));
    let second = json_ok(build_cmd(s, &repo).args(["--tag", "nightly-2"]));
    for svc in SERVICES {
        assert_eq!(image(&second, svc)["status"], "unchanged");
        assert_eq!(image(&second, svc)["digest"], image(&first, svc)["digest"]);
        assert_eq!(
            services::digest_of(&format!("{ns}/{svc}:nightly-2"), None).unwrap(),
            image(&first, svc)["digest"].as_str().unwrap()
        );
    }
    // Files ignored by .dockerignore change nothing.
    repo.write("debug.log", "more noise\n");
    let third = json_ok(build_cmd(s, &repo).args(["--tag", "nightly-3"]));
    assert!(
        images(&third).iter().all(|i| i["status"] == "unchanged"),
        "{third}"
    );
    // A source change rebuilds exactly that service.
    repo.write("cmd/openim-api/main.txt", "openim-api binary v2\n");
    let out = build_cmd(s, &repo)
        .args(["--tag", "nightly-4", "--output", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let fourth: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The shared config/ layer is already in the registry: not uploaded again.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("openim-api: ") && stderr.contains("2 of 3 blobs uploaded"),
        "{stderr}"
    );
    // What goes to the engine is said before it goes: the files the
    // Dockerfile reads (not tmp/, not the other services' binaries).
    let said = stderr
        .find("openim-api: build context ")
        .unwrap_or_else(|| panic!("no context size line: {stderr}"));
    let line = stderr[said..].lines().next().unwrap();
    assert!(line.ends_with(" B (4 files)"), "{line}");
    assert!(
        said < stderr.find("2 of 3 blobs uploaded").unwrap(),
        "{stderr}"
    );
    assert_eq!(image(&fourth, "openim-api")["status"], "built");
    assert_ne!(
        image(&fourth, "openim-api")["digest"],
        image(&first, "openim-api")["digest"]
    );
    assert_eq!(image(&fourth, "openim-push")["status"], "unchanged");
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn dry_run_lists_every_reference_and_touches_nothing() {
    let s = need_services!();
    let ns = services::fresh_namespace(&s.registry, "dry");
    let other = "ghcr.io/openimsdk".to_string();
    let repo = fixture(&[ns.clone(), other], &["linux/amd64", "linux/arm64"]);
    // An unreachable engine proves nothing is contacted.
    let out = stdout_ok(
        repo.bin()
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .args(["build", "--tag", "v9.9.9", "--dry-run"]),
    );
    let refs = lines(&out);
    assert_eq!(refs.len(), 3 * 2);
    assert!(refs.contains(&format!("{ns}/openim-api:v9.9.9").as_str()));
    assert!(refs.contains(&"ghcr.io/openimsdk/openim-rpc-user:v9.9.9"));
    let json = json_ok(repo.bin().args(["build", "--tag", "v9.9.9", "--dry-run"]));
    assert_eq!(json["dry_run"], true);
    assert_eq!(
        image(&json, "openim-api")["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
    assert!(services::inspect_raw(&format!("{ns}/openim-api:v9.9.9"), None).is_err());
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn stage_tags_come_from_git() {
    let s = need_services!();
    let ns = services::fresh_namespace(&s.registry, "stage");
    let repo = fixture(std::slice::from_ref(&ns), &["linux/amd64"]);
    repo.atag(&["v3.8.0"]);
    repo.commit("fix");
    // The rc being built is the one HEAD carries: without it, refused.
    let err = fails_with(
        build_cmd(s, &repo).args(["--stage", "rc", "--service", "openim-api"]),
        2,
    );
    assert!(err.contains("tag --stage rc --push"), "{err}");
    assert!(services::inspect_raw(&format!("{ns}/openim-api:rc0"), None).is_err());
    repo.atag(&["v3.8.1-rc.0"]);
    let json = json_ok(build_cmd(s, &repo).args(["--stage", "rc", "--service", "openim-api"]));
    assert_eq!(json["tags"], serde_json::json!(["v3.8.1-rc.0", "rc0"]));
    assert_eq!(images(&json).len(), 1);
    let digest = image(&json, "openim-api")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        services::digest_of(&format!("{ns}/openim-api:rc0"), None).unwrap(),
        digest
    );
    let cfg = services::inspect_config(&format!("{ns}/openim-api:v3.8.1-rc.0"), "amd64").unwrap();
    assert_eq!(
        cfg["config"]["Labels"]["org.opencontainers.image.version"],
        "3.8.1"
    );
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn auth_registry_needs_credentials_and_never_shows_them() {
    let s = need_services!();
    let ns = services::fresh_namespace(&s.auth_registry, "auth");
    let repo = fixture(std::slice::from_ref(&ns), &["linux/amd64"]);
    let err = fails_with(
        build_cmd(s, &repo).args(["--tag", "v1", "--service", "openim-api"]),
        1,
    );
    assert!(err.contains(&s.auth_registry), "{err}");
    assert!(
        err.contains("docker login") || err.contains("_USERNAME"),
        "{err}"
    );

    let key = credentials_key(&s.auth_registry);
    // Half a pair is a configuration error; an empty pair (a workflow's
    // unset `${{ vars.X }}`) means no credentials.
    let err = fails_with(
        build_cmd(s, &repo)
            .args(["--tag", "v1", "--service", "openim-api"])
            .env(format!("{key}_USERNAME"), &s.auth_user),
        2,
    );
    assert!(err.contains("must be set together"), "{err}");
    let err = fails_with(
        build_cmd(s, &repo)
            .args(["--tag", "v1", "--service", "openim-api"])
            .env(format!("{key}_USERNAME"), "")
            .env(format!("{key}_PASSWORD"), ""),
        1,
    );
    assert!(
        err.contains("docker login") || err.contains("_USERNAME"),
        "{err}"
    );
    let out = build_cmd(s, &repo)
        .args(["--tag", "v1", "--service", "openim-api", "--output", "json"])
        .env(format!("{key}_USERNAME"), &s.auth_user)
        .env(format!("{key}_PASSWORD"), &s.auth_password)
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    // Masked for the Actions log (a command on stderr, which the runner
    // reads too), never printed otherwise; stdout is the JSON alone.
    assert!(stderr.contains(&format!("::add-mask::{}", s.auth_password)));
    assert_eq!(stderr.matches(&s.auth_password).count(), 1, "{stderr}");
    assert!(!stdout.contains(&s.auth_password));
    serde_json::from_str::<serde_json::Value>(&stdout).expect("stdout is one JSON object");
    let creds = Some((s.auth_user.as_str(), s.auth_password.as_str()));
    assert!(services::inspect_raw(&format!("{ns}/openim-api:v1"), creds).is_ok());

    wrong_password_is_a_hidden_401(s, &repo, &s.auth_registry);
}

/// `OPENIM_RELEASE_REGISTRY_<HOST>` of a registry host.
pub fn credentials_key(registry: &str) -> String {
    format!(
        "OPENIM_RELEASE_REGISTRY_{}",
        registry.to_uppercase().replace(['.', ':'], "_")
    )
}

/// A wrong password: exit 1, a 401 naming the registry, the password hidden,
/// and no v2 tag.
fn wrong_password_is_a_hidden_401(s: &Services, repo: &TestRepo, registry: &str) {
    let key = credentials_key(registry);
    let err = fails_with(
        build_cmd(s, repo)
            .args(["--tag", "v2", "--service", "openim-api"])
            .env(format!("{key}_USERNAME"), &s.auth_user)
            .env(format!("{key}_PASSWORD"), "wrong-password-xyz"),
        1,
    );
    assert!(err.contains("401") && err.contains(registry), "{err}");
    assert!(!err.contains("wrong-password-xyz"), "{err}");
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn a_failing_service_does_not_stop_the_others_and_gets_no_tag() {
    let s = need_services!();
    let ns = services::fresh_namespace(&s.registry, "fail");
    let repo = fixture(std::slice::from_ref(&ns), &["linux/amd64"]);
    std::fs::remove_dir_all(repo.path().join("cmd/openim-push")).unwrap();
    let out = build_cmd(s, &repo)
        .args(["--tag", "v1", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(image(&json, "openim-push")["status"], "failed");
    assert_eq!(image(&json, "openim-api")["status"], "built");
    assert_eq!(image(&json, "openim-rpc-user")["status"], "built");
    assert!(
        stderr.contains("1 of 3 services failed: openim-push"),
        "{stderr}"
    );
    assert!(
        stderr.contains("last lines of the openim-push build"),
        "{stderr}"
    );
    assert!(services::inspect_raw(&format!("{ns}/openim-push:v1"), None).is_err());
    assert!(services::inspect_raw(&format!("{ns}/openim-api:v1"), None).is_ok());
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn bad_input_is_refused_before_building() {
    let s = need_services!();
    let ns = services::fresh_namespace(&s.registry, "bad");
    let repo = fixture(std::slice::from_ref(&ns), &["linux/amd64"]);
    let err = fails_with(
        build_cmd(s, &repo).args(["--tag", "v1", "--service", "openim-nope"]),
        2,
    );
    assert!(
        err.contains("unknown service `openim-nope`") && err.contains("openim-api"),
        "{err}"
    );
    let err = fails_with(build_cmd(s, &repo).args(["--service", "openim-api"]), 2);
    assert!(err.contains("--stage") && err.contains("--tag"), "{err}");
    let err = fails_with(build_cmd(s, &repo).args(["--tag", "bad/tag"]), 2);
    assert!(err.contains("bad/tag"), "{err}");
    std::fs::remove_file(repo.path().join("build/images/openim-server/Dockerfile")).unwrap();
    let err = fails_with(build_cmd(s, &repo).args(["--tag", "v1"]), 2);
    assert!(
        err.contains("Dockerfile") && err.contains("openim-api"),
        "{err}"
    );
}

#[test]
fn unreachable_engine_names_docker_host() {
    let repo = fixture(&["127.0.0.1:9/x".to_string()], &["linux/amd64"]);
    let err = fails_with(
        repo.bin()
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .args(["build", "--tag", "v1"]),
        1,
    );
    assert!(
        err.contains("DOCKER_HOST") && err.contains("/nonexistent/docker.sock"),
        "{err}"
    );
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn matrix_legs_pushed_by_digest_merge_into_one_index() {
    let s = need_services!();
    let ns = services::fresh_namespace(&s.registry, "legs");
    let repo = fixture(std::slice::from_ref(&ns), &["linux/amd64", "linux/arm64"]);
    let matrix = json_ok(
        repo.bin()
            .args(["build", "matrix", "--service", "openim-api"]),
    );
    let include = matrix["include"].as_array().unwrap();
    assert_eq!(include.len(), 2);
    let work = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for entry in include {
        let platform = entry["platform"].as_str().unwrap();
        let out = stdout_ok(build_cmd(s, &repo).args([
            "--service",
            entry["service"].as_str().unwrap(),
            "--platform",
            platform,
            "--push-by-digest",
            "--output",
            "json",
        ]));
        let path = work
            .path()
            .join(format!("{}.json", entry["slug"].as_str().unwrap()));
        std::fs::write(&path, &out).unwrap();
        files.push(path);
    }
    // Nothing is tagged before the merge.
    assert!(services::inspect_raw(&format!("{ns}/openim-api:v2.0.0"), None).is_err());
    // A lost leg (arm64) or a service without legs: refused, nothing tagged.
    let merge_api = |legs: &[std::path::PathBuf]| {
        let mut cmd = repo.bin();
        cmd.args(["build", "merge", "--tag", "v2.0.0"])
            .args(["--service", "openim-api"])
            .args(legs);
        cmd
    };
    let err = fails_with(&mut merge_api(&files[..1]), 2);
    assert!(err.contains("openim-api linux/arm64"), "{err}");
    let mut all_services = repo.bin();
    all_services
        .args(["build", "merge", "--tag", "v2.0.0"])
        .args(&files);
    let err = fails_with(&mut all_services, 2);
    assert!(err.contains("openim-push linux/amd64"), "{err}");
    assert!(services::inspect_raw(&format!("{ns}/openim-api:v2.0.0"), None).is_err());
    let json = json_ok(&mut merge_api(&files));
    assert_eq!(image(&json, "openim-api")["status"], "built");
    let index = services::inspect_raw(&format!("{ns}/openim-api:v2.0.0"), None).unwrap();
    let archs: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"]);
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn transient_registry_faults_are_retried() {
    use crate::proxy::{Fault, Proxy};
    let s = need_services!();
    // Every third request fails: 503, 502 or a dropped connection.
    let proxy = Proxy::start(
        &s.registry,
        Box::new(|n, _, _| match n % 9 {
            2 => Fault::Status(503),
            5 => Fault::Reset,
            8 => Fault::Status(502),
            _ => Fault::Pass,
        }),
    );
    let ns = format!(
        "127.0.0.1:{}/{}",
        proxy.addr.port(),
        services::unique_namespace("flaky")
    );
    let repo = fixture(std::slice::from_ref(&ns), &["linux/amd64", "linux/arm64"]);
    let json = json_ok(build_cmd(s, &repo).args(["--tag", "v1", "--service", "openim-api"]));
    assert_eq!(image(&json, "openim-api")["status"], "built");
    let faults = proxy.faults.load(std::sync::atomic::Ordering::SeqCst);
    assert!(faults > 2, "only {faults} faults injected");
    assert!(proxy.requests.load(std::sync::atomic::Ordering::SeqCst) > faults);
    // Seen directly in the registry, behind the proxy.
    let direct = ns.replacen(&format!("127.0.0.1:{}", proxy.addr.port()), &s.registry, 1);
    let index = services::inspect_raw(&format!("{direct}/openim-api:v1"), None).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn a_registry_that_rejects_uploads_leaves_no_tag() {
    use crate::proxy::{Fault, Proxy};
    let s = need_services!();
    let proxy = Proxy::start(
        &s.registry,
        Box::new(|_, method, path| {
            if method == "PUT" && path.contains("/blobs/uploads/") {
                Fault::Status(500)
            } else {
                Fault::Pass
            }
        }),
    );
    // Different repositories: blobs are linked per repository, so the
    // registry behind the proxy has none of them.
    let name = services::unique_namespace("reject");
    let via_proxy = format!("127.0.0.1:{}/{name}-p", proxy.addr.port());
    let direct = format!("{}/{name}", s.registry);
    let repo = fixture(&[direct.clone(), via_proxy.clone()], &["linux/amd64"]);
    let err = fails_with(
        build_cmd(s, &repo).args(["--tag", "v1", "--service", "openim-api"]),
        1,
    );
    assert!(
        err.contains("openim-api") && err.contains(&format!("127.0.0.1:{}", proxy.addr.port())),
        "{err}"
    );
    assert!(err.contains("HTTP 500"), "{err}");
    // Neither registry got the tag: the other one was fine, but tags are
    // written only when every registry has everything.
    assert!(services::inspect_raw(&format!("{direct}/openim-api:v1"), None).is_err());
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn builds_on_a_locally_imported_base_image() {
    let s = need_services!();
    services::ensure_base_images(s);
    let ns = services::fresh_namespace(&s.registry, "base");
    let repo = fixture(std::slice::from_ref(&ns), &["linux/amd64"]);
    repo.write(
        "build/images/openim-server/Dockerfile",
        "FROM openim-test-base-amd64:latest\nARG BINARY_NAME\nARG CMD_PATH\nCOPY ${CMD_PATH}/ /openim/bin/${BINARY_NAME}/\n",
    );
    let json = json_ok(build_cmd(s, &repo).args(["--tag", "v1", "--service", "openim-api"]));
    assert_eq!(image(&json, "openim-api")["status"], "built");
    // Two layers: the imported base and the COPY.
    let manifest = services::inspect_raw(&format!("{ns}/openim-api:v1"), None).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["layers"].as_array().unwrap().len(),
        2,
        "{manifest}"
    );
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn credentials_from_docker_config_json() {
    use base64::Engine;
    let s = need_services!();
    let ns = services::fresh_namespace(&s.auth_registry, "cfg");
    let repo = fixture(std::slice::from_ref(&ns), &["linux/amd64"]);
    let docker_config = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", s.auth_user, s.auth_password));
    std::fs::write(
        docker_config.path().join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
            s.auth_registry
        ),
    )
    .unwrap();
    let json = json_ok(
        build_cmd(s, &repo)
            .args(["--tag", "v1", "--service", "openim-api"])
            .env("DOCKER_CONFIG", docker_config.path()),
    );
    assert_eq!(image(&json, "openim-api")["status"], "built");
    let creds = Some((s.auth_user.as_str(), s.auth_password.as_str()));
    assert!(services::inspect_raw(&format!("{ns}/openim-api:v1"), creds).is_ok());
}

/// On a terminal (outside CI) progress is live: one spinner line per
/// service, redrawn in place, ending in ✓; the plain timestamped lines are
/// for logs only. `script` gives the build a pseudo-terminal.
#[test]
#[ignore = "needs the services of scripts/test"]
fn progress_is_live_on_a_terminal() {
    let s = need_services!();
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("`script` (util-linux) is needed for the terminal test");
    }
    let ns = services::fresh_namespace(&s.registry, "tty");
    let repo = fixture(std::slice::from_ref(&ns), &["linux/amd64"]);
    // The environment of every test run (no CI, no GITHUB_*), on a pty.
    let mut script = std::process::Command::new("script");
    base_env(&mut script);
    script
        .current_dir(repo.path())
        .env("DOCKER_HOST", &s.docker_host)
        .env("TERM", "xterm")
        .env("COLUMNS", "120")
        .args([
            "-qefc",
            &format!(
                "{} build --tag tty-1 --service openim-api --service openim-push",
                env!("CARGO_BIN_EXE_openim-release")
            ),
            "/dev/null",
        ]);
    let out = script.output().unwrap();
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{tty}");
    assert!(
        tty.contains("\x1b["),
        "no terminal control sequences: {tty}"
    );
    for svc in ["openim-api", "openim-push"] {
        assert!(
            tty.lines().any(|l| l.contains(svc) && l.contains('✓')),
            "no finished spinner for {svc}: {tty}"
        );
    }
    assert!(
        !tty.contains("s] openim-api:"),
        "plain log lines on a terminal: {tty}"
    );
    // What the build did is real: the tag is in the registry.
    assert!(services::inspect_raw(&format!("{ns}/openim-api:tty-1"), None).is_ok());
}

/// The bearer flow of ghcr.io and Docker Hub against a real registry: a 401
/// names the token realm, the token server is asked with the credentials for
/// the repository's pull,push scope, and the registry accepts the JWT.
#[test]
#[ignore = "needs the services of scripts/test"]
fn bearer_token_registry_like_ghcr() {
    let s = need_services!();
    let path = services::unique_namespace("bearer");
    let ns = format!("{}/{path}", s.token_registry);
    let repo = fixture(std::slice::from_ref(&ns), &["linux/amd64", "linux/arm64"]);
    let key = credentials_key(&s.token_registry);
    let token_requests = |user: &str, status: u16| -> usize {
        let log = std::fs::read_to_string(&s.token_log).unwrap_or_default();
        log.lines()
            .filter(|l| {
                l.contains(&format!("scope=repository%3A{}", path.replace('/', "%2F")))
                    || l.contains(&format!("scope=repository:{path}"))
            })
            .filter(|l| l.contains(&format!("user={user} ")) && l.ends_with(&status.to_string()))
            .count()
    };

    // Without credentials the token grants nothing: refused, registry named.
    let err = fails_with(
        build_cmd(s, &repo).args(["--tag", "v1", "--service", "openim-api"]),
        1,
    );
    assert!(err.contains(&s.token_registry), "{err}");

    let creds = [
        (format!("{key}_USERNAME"), s.auth_user.clone()),
        (format!("{key}_PASSWORD"), s.auth_password.clone()),
    ];
    let json = json_ok(
        build_cmd(s, &repo)
            .args([
                "--tag",
                "v1",
                "--service",
                "openim-api",
                "--service",
                "openim-push",
            ])
            .envs(creds.clone()),
    );
    let login = Some((s.auth_user.as_str(), s.auth_password.as_str()));
    for svc in ["openim-api", "openim-push"] {
        let digest = image(&json, svc)["digest"].as_str().unwrap().to_string();
        let reference = format!("{ns}/{svc}:v1");
        assert_eq!(services::digest_of(&reference, login).unwrap(), digest);
        let raw = services::inspect_raw(&reference, login).unwrap();
        let platforms: Vec<String> = raw["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["platform"]["architecture"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(platforms.len(), 2, "{raw}");
    }
    assert!(
        token_requests(&s.auth_user, 200) >= 2,
        "no token requests for {path} in {}",
        std::fs::read_to_string(&s.token_log).unwrap_or_default()
    );

    // A re-run reuses the images (HEAD requests with tokens) and adds a tag.
    let again = json_ok(
        build_cmd(s, &repo)
            .args(["--tag", "v1-again", "--service", "openim-api"])
            .envs(creds.clone()),
    );
    assert_eq!(
        image(&again, "openim-api")["status"],
        "unchanged",
        "{again}"
    );
    assert!(services::inspect_raw(&format!("{ns}/openim-api:v1-again"), login).is_ok());

    // A wrong password: the token server says 401; the error names the
    // registry and hides the password.
    let before = token_requests(&s.auth_user, 401);
    wrong_password_is_a_hidden_401(s, &repo, &s.token_registry);
    assert!(token_requests(&s.auth_user, 401) > before);
    assert!(services::inspect_raw(&format!("{ns}/openim-api:v2"), login).is_err());
}

/// Skip-unchanged against the real engine: a Dockerfile that reads the
/// context through a JSON-form COPY with a space, a global ARG declared
/// again in its stage, ENV over ARG, a wildcard, a COPY in another stage
/// taken with `COPY --from`, and a `Dockerfile.dockerignore` that BuildKit
/// prefers to the root `.dockerignore`. Changing a file it reads rebuilds,
/// and the pushed image holds the new content; changing one it does not
/// read reuses the image. (`RUN --mount` is covered by the unit property
/// test only: the test dockerd has no network, so BuildKit cannot RUN.)
#[test]
#[ignore = "needs the services of scripts/test"]
fn skip_unchanged_never_skips_a_change_the_build_reads() {
    let s = need_services!();
    let tools = services::ensure_tools_image(s);
    let ns = services::fresh_namespace(&s.registry, "reads");
    let repo = fixture(std::slice::from_ref(&ns), &["linux/amd64"]);
    let dockerfile = format!(
        "ARG DIR=other\nARG UNUSED=cache\nFROM {tools} AS tools\nCOPY mnt/data.txt /tmp/mnt.txt\nFROM scratch\nARG DIR\nCOPY [\"a b/x.txt\", \"/app/ab.txt\"]\nCOPY ${{DIR}} /app/dir/\nARG E=other\nENV E=cfg\nCOPY $E/app.yaml /app/cfg.yaml\nCOPY --from=tools /tmp/mnt.txt /app/mnt.txt\nCOPY docs /app/docs\nCOPY src /app/src\nCOPY gl/*.txt /app/gl/\n"
    );
    repo.write("build/images/openim-server/Dockerfile", &dockerfile);
    // The root ignore file leaves docs/ out; the Dockerfile's own one,
    // which BuildKit reads instead, leaves src/util/ out.
    repo.write(".dockerignore", "docs\n");
    repo.write(
        "build/images/openim-server/Dockerfile.dockerignore",
        "src/util\n",
    );
    let read = [
        ("a b/x.txt", "app/ab.txt"),
        ("other/o.txt", "app/dir/o.txt"),
        ("cfg/app.yaml", "app/cfg.yaml"),
        ("mnt/data.txt", "app/mnt.txt"),
        ("docs/readme.md", "app/docs/readme.md"),
        ("gl/one.txt", "app/gl/one.txt"),
    ];
    for (file, _) in read {
        repo.write(file, &format!("{file} v1\n"));
    }
    for file in ["src/main.go", "src/util/u.go", "cache/c.txt", "gl/notes.md"] {
        repo.write(file, &format!("{file} v1\n"));
    }
    let build = |tag: &str| -> Value {
        json_ok(build_cmd(s, &repo).args(["--tag", tag, "--service", "openim-api"]))
    };
    let first = build("r1");
    assert_eq!(image(&first, "openim-api")["status"], "built", "{first}");
    let files = services::image_files(&format!("{ns}/openim-api:r1"));
    for (file, inside) in read {
        assert_eq!(
            String::from_utf8_lossy(&files[inside]),
            format!("{file} v1\n"),
            "{inside} in {files:?}"
        );
    }
    assert!(files.contains_key("app/src/main.go"));
    assert!(!files.contains_key("app/src/util/u.go"), "{files:?}");

    // Files the build does not read: the image is reused.
    repo.write("src/util/u.go", "changed\n");
    repo.write("cache/c.txt", "changed\n");
    let second = build("r2");
    assert_eq!(
        image(&second, "openim-api")["status"],
        "unchanged",
        "{second}"
    );

    // Each file it reads: rebuilt, with the new content inside.
    for (n, (file, inside)) in read.iter().enumerate() {
        repo.write(file, &format!("{file} v2\n"));
        let tag = format!("c{n}");
        let out = build(&tag);
        assert_eq!(
            image(&out, "openim-api")["status"],
            "built",
            "{file}: {out}"
        );
        let files = services::image_files(&format!("{ns}/openim-api:{tag}"));
        assert_eq!(
            String::from_utf8_lossy(&files[*inside]),
            format!("{file} v2\n"),
            "{file}"
        );
    }
}

/// A base image with an `ONBUILD COPY` trigger reads the context during
/// this build, though the Dockerfile never names the file: a change to it
/// rebuilds, with the new content in the image.
#[test]
#[ignore = "needs the services of scripts/test"]
fn onbuild_triggers_of_a_base_image_are_inputs() {
    let s = need_services!();
    let base = "openim-test-onbuild:latest";
    if services::docker(s, &["image", "inspect", base]).is_err() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/os-release"), "NAME=onbuild\n").unwrap();
        let tar = dir.path().join("rootfs.tar");
        let ok = std::process::Command::new("tar")
            .args([
                "-C",
                root.to_str().unwrap(),
                "-cf",
                tar.to_str().unwrap(),
                ".",
            ])
            .status()
            .unwrap();
        assert!(ok.success());
        services::docker(
            s,
            &[
                "import",
                "--platform",
                "linux/amd64",
                "--change",
                "ONBUILD COPY other /app/other",
                tar.to_str().unwrap(),
                base,
            ],
        )
        .unwrap();
    }
    let ns = services::fresh_namespace(&s.registry, "onbuild");
    let repo = fixture(std::slice::from_ref(&ns), &["linux/amd64"]);
    repo.write(
        "build/images/openim-server/Dockerfile",
        &format!("FROM {base}\nCOPY config/ /openim/config/\n"),
    );
    repo.write("other/o.txt", "v1\n");
    let build = |tag: &str| -> Value {
        json_ok(build_cmd(s, &repo).args(["--tag", tag, "--service", "openim-api"]))
    };
    let first = build("o1");
    assert_eq!(image(&first, "openim-api")["status"], "built", "{first}");
    let files = services::image_files(&format!("{ns}/openim-api:o1"));
    assert_eq!(String::from_utf8_lossy(&files["app/other/o.txt"]), "v1\n");
    repo.write("other/o.txt", "v2\n");
    let second = build("o2");
    assert_eq!(image(&second, "openim-api")["status"], "built", "{second}");
    let files = services::image_files(&format!("{ns}/openim-api:o2"));
    assert_eq!(String::from_utf8_lossy(&files["app/other/o.txt"]), "v2\n");
}

/// `build matrix --registry` would be ignored (the matrix names services and
/// platforms): refused.
#[test]
fn matrix_refuses_a_registry_it_would_ignore() {
    let repo = fixture(&["127.0.0.1:9/openimsdk".to_string()], &["linux/amd64"]);
    let err = fails_with(
        bin(repo.path()).args(["build", "matrix", "--registry", "127.0.0.1:9/other"]),
        2,
    );
    assert!(err.contains("--push-by-digest"), "{err}");
}

/// A context or Dockerfile outside the repository (a path out of it, or a
/// symlink out of it) is refused before anything is built: a pull request
/// must not send the build machine's files.
#[test]
fn a_context_or_dockerfile_outside_the_repository_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let repo = fixture(&["127.0.0.1:9/openimsdk".to_string()], &["linux/amd64"]);
    std::os::unix::fs::symlink(outside.path(), repo.path().join("elsewhere")).unwrap();
    for (service, needle) in [
        (
            format!(
                "{{ name: a, context: {}, dockerfile: Dockerfile }}",
                outside.path().display()
            ),
            "build context",
        ),
        (
            "{ name: a, context: elsewhere, dockerfile: Dockerfile }".to_string(),
            "build context",
        ),
        (
            "{ name: a, context: ., dockerfile: elsewhere/Dockerfile }".to_string(),
            "Dockerfile elsewhere/Dockerfile",
        ),
    ] {
        repo.write(
            "openim-release.yaml",
            &format!(
                "images:\n  registries: [127.0.0.1:9/openimsdk]\n  services:\n    - {service}\n"
            ),
        );
        let err = fails_with(
            bin(repo.path()).args(["build", "--tag", "t", "--dry-run"]),
            2,
        );
        assert!(
            err.contains(needle) && err.contains("leaves the repository"),
            "{service}: {err}"
        );
    }
}

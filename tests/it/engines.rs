//! Reaching the engine as the docker CLI does: `DOCKER_HOST` (`unix://`,
//! `tcp://` with `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`), docker contexts
//! (`DOCKER_CONTEXT`, `docker context use`); and what is refused, with
//! what to do instead.

use crate::build::fixture;
use crate::common::*;
use crate::need_services;
use crate::services;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

fn docker_bin() -> &'static str {
    if Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    }
}

/// The state directory of scripts/services (its containerd is shared).
fn services_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("OPENIM_RELEASE_SERVICES_DIR")
            .unwrap_or_else(|_| "/tmp/openim-release-services".into()),
    )
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA in `dir` (ca.pem, ca-key.pem).
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
        ],
    );
}

/// A certificate signed by the CA in `dir`: `<stem>-cert.pem`, `<stem>-key.pem`.
fn sign(dir: &Path, stem: &str, subject: &str, extensions: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            subject,
            "-keyout",
            &format!("{stem}-key.pem"),
            "-out",
            &format!("{stem}.csr"),
        ],
    );
    std::fs::write(dir.join(format!("{stem}.ext")), extensions).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{stem}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{stem}.ext"),
            "-out",
            &format!("{stem}-cert.pem"),
        ],
    );
}

/// A second dockerd, listening on 127.0.0.1 with TLS only (client
/// certificates required, as `dockerd --tlsverify` does), on its own data
/// and exec roots, with the containerd of scripts/services (its own
/// namespace). Stopped when dropped.
pub struct TlsEngine {
    pub host: String,
    /// ca.pem, cert.pem, key.pem for the client: DOCKER_CERT_PATH.
    pub client_certs: PathBuf,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl TlsEngine {
    pub fn start() -> TlsEngine {
        // Short: dockerd nests unix sockets under its exec root.
        let dir = tempfile::Builder::new()
            .prefix("oir-tls-")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        make_ca(d, "openim-release-test-engine-ca");
        sign(
            d,
            "server",
            "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        sign(d, "client", "/CN=client", "extendedKeyUsage=clientAuth\n");
        let client = d.join("client");
        std::fs::create_dir_all(&client).unwrap();
        std::fs::copy(d.join("ca.pem"), client.join("ca.pem")).unwrap();
        std::fs::copy(d.join("client-cert.pem"), client.join("cert.pem")).unwrap();
        std::fs::copy(d.join("client-key.pem"), client.join("key.pem")).unwrap();
        std::fs::write(d.join("daemon.json"), "{}").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("tcp://127.0.0.1:{port}");
        let containerd = services_dir().join("containerd.sock");
        assert!(
            containerd.exists(),
            "no containerd of scripts/services at {}",
            containerd.display()
        );
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let p = |name: &str| d.join(name).to_str().unwrap().to_string();
        let child = Command::new("/usr/sbin/dockerd")
            .args(["--config-file", &p("daemon.json")])
            .args([
                "--storage-driver=vfs",
                "--iptables=false",
                "--ip6tables=false",
            ])
            .args(["--bridge=none", "--host", &host, "--tlsverify"])
            .args(["--tlscacert", &p("ca.pem")])
            .args(["--tlscert", &p("server-cert.pem")])
            .args(["--tlskey", &p("server-key.pem")])
            .args(["--data-root", &p("data"), "--exec-root", &p("exec")])
            .args(["--pidfile", &p("docker.pid")])
            .args(["--containerd", containerd.to_str().unwrap()])
            .args(["--containerd-namespace", "openim-release-test-tls"])
            .args([
                "--containerd-plugins-namespace",
                "openim-release-test-tls-plugins",
            ])
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting a second dockerd");
        let engine = TlsEngine {
            host,
            client_certs: client,
            dir,
            child,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while engine
            .docker(&["version", "--format", "{{.Server.Version}}"])
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the TLS dockerd did not answer in 60s: {}",
                std::fs::read_to_string(engine.dir.path().join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        engine
    }

    /// The docker CLI against this engine, over TLS.
    pub fn docker(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(docker_bin())
            .env("DOCKER_HOST", &self.host)
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", &self.client_certs)
            .env("DOCKER_CONFIG", self.dir.path())
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }
}

impl Drop for TlsEngine {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Whatever it left mounted under its roots, deepest first.
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let mut under: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .filter(|m| m.starts_with(&format!("{}/", self.dir.path().display())))
            .collect();
        under.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in under {
            let _ = Command::new("umount").arg(m).status();
        }
    }
}

/// `docker context create NAME --docker host=…` in `config_dir`, by the
/// docker CLI itself.
fn docker_context_create(config_dir: &Path, name: &str, docker_endpoint: &str) {
    let out = Command::new(docker_bin())
        .env("DOCKER_CONFIG", config_dir)
        .env_remove("DOCKER_HOST")
        .args(["context", "create", name, "--docker", docker_endpoint])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker context create {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `build --check` with `envs`, its JSON.
fn check_json(repo: &TestRepo, envs: &[(&str, &str)]) -> serde_json::Value {
    let mut cmd = repo.bin();
    cmd.envs(envs.iter().copied())
        .args(["build", "--check", "--tag", "x"]);
    json_ok(&mut cmd)
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn tcp_with_tls_from_docker_host_and_from_docker_contexts() {
    let s = need_services!();
    let engine = TlsEngine::start();
    let ns = services::fresh_namespace(&s.registry, "tls");
    let repo = fixture(std::slice::from_ref(&ns), &["linux/amd64"]);
    let certs = engine.client_certs.to_str().unwrap();
    let tls_env = [
        ("DOCKER_HOST", engine.host.as_str()),
        ("DOCKER_TLS_VERIFY", "1"),
        ("DOCKER_CERT_PATH", certs),
    ];

    // DOCKER_HOST=tcp:// with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH: built
    // by that engine (the image is in it, not in the services' dockerd) and
    // pushed.
    let json = json_ok(repo.bin().envs(tls_env).args([
        "build",
        "--tag",
        "v1",
        "--service",
        "openim-api",
        "--no-push",
    ]));
    assert_eq!(json["images"][0]["status"], "built", "{json}");
    let local = format!("{ns}/openim-api:v1");
    assert!(engine.docker(&["image", "inspect", &local]).is_ok());
    assert!(services::docker(s, &["image", "inspect", &local]).is_err());
    let json =
        json_ok(
            repo.bin()
                .envs(tls_env)
                .args(["build", "--tag", "v1", "--service", "openim-api"]),
        );
    let digest = json["images"][0]["digest"].as_str().unwrap();
    assert_eq!(
        services::digest_of(&format!("{ns}/openim-api:v1"), None).unwrap(),
        digest
    );
    let check = check_json(&repo, &tls_env);
    let engine_line = check["checks"][1]["detail"].as_str().unwrap();
    assert!(
        engine_line.contains(&engine.host) && engine_line.contains("TLS"),
        "{check}"
    );

    // Without DOCKER_TLS_VERIFY: plain HTTP to a TLS port, told so.
    let err = fails_with(
        repo.bin().env("DOCKER_HOST", &engine.host).args([
            "build",
            "--tag",
            "v2",
            "--service",
            "openim-api",
        ]),
        1,
    );
    assert!(
        err.contains(&engine.host) && err.contains("DOCKER_TLS_VERIFY=1"),
        "{err}"
    );
    // Certificates of another CA: the engine's certificate is not trusted.
    let other = tempfile::tempdir().unwrap();
    make_ca(other.path(), "another-ca");
    let err = fails_with(
        repo.bin()
            .envs(tls_env)
            .env("DOCKER_CERT_PATH", other.path())
            .args(["build", "--tag", "v2", "--service", "openim-api"]),
        1,
    );
    assert!(
        err.contains("ca.pem") && err.contains("not one") && err.contains(&engine.host),
        "{err}"
    );
    // The right CA, no client certificate: the engine wants one.
    let ca_only = tempfile::tempdir().unwrap();
    std::fs::copy(
        engine.client_certs.join("ca.pem"),
        ca_only.path().join("ca.pem"),
    )
    .unwrap();
    let err = fails_with(
        repo.bin()
            .envs(tls_env)
            .env("DOCKER_CERT_PATH", ca_only.path())
            .args(["build", "--tag", "v2", "--service", "openim-api"]),
        1,
    );
    assert!(err.contains("client certificate"), "{err}");

    // Docker contexts, made by the docker CLI: `docker context use` (the
    // config's currentContext) picks the TLS engine, with its certificates
    // from the context store; DOCKER_CONTEXT overrides it; DOCKER_HOST
    // overrides both.
    let config = tempfile::tempdir().unwrap();
    let cfg = config.path().to_str().unwrap();
    docker_context_create(
        config.path(),
        "tls-engine",
        &format!(
            "host={},ca={certs}/ca.pem,cert={certs}/cert.pem,key={certs}/key.pem",
            engine.host
        ),
    );
    docker_context_create(
        config.path(),
        "services-engine",
        &format!("host={}", s.docker_host),
    );
    let used = Command::new(docker_bin())
        .env("DOCKER_CONFIG", config.path())
        .env_remove("DOCKER_HOST")
        .args(["context", "use", "tls-engine"])
        .output()
        .unwrap();
    assert!(used.status.success());
    let json = json_ok(
        repo.bin()
            .env("DOCKER_CONFIG", cfg)
            .args(["build", "--tag", "ctx", "--service", "openim-api"])
            .arg("--no-push"),
    );
    assert_eq!(json["images"][0]["status"], "built", "{json}");
    assert!(engine
        .docker(&["image", "inspect", &format!("{ns}/openim-api:ctx")])
        .is_ok());
    let check = check_json(&repo, &[("DOCKER_CONFIG", cfg)]);
    let detail = check["checks"][1]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&engine.host) && detail.contains("TLS") && detail.contains("tls-engine"),
        "{check}"
    );
    let check = check_json(
        &repo,
        &[
            ("DOCKER_CONFIG", cfg),
            ("DOCKER_CONTEXT", "services-engine"),
        ],
    );
    let detail = check["checks"][1]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&s.docker_host) && detail.contains("services-engine"),
        "{check}"
    );
    let check = check_json(
        &repo,
        &[
            ("DOCKER_CONFIG", cfg),
            ("DOCKER_CONTEXT", "services-engine"),
            ("DOCKER_HOST", s.docker_host.as_str()),
        ],
    );
    let detail = check["checks"][1]["detail"].as_str().unwrap();
    assert!(!detail.contains("context"), "{check}");
    // A context that does not exist is named, with where it came from.
    let err = fails_with(
        repo.bin()
            .env("DOCKER_CONFIG", cfg)
            .env("DOCKER_CONTEXT", "gone")
            .args(["build", "--tag", "v3", "--no-push"]),
        2,
    );
    assert!(
        err.contains("docker context `gone`") && err.contains("DOCKER_CONTEXT"),
        "{err}"
    );
    // An engine in a context that does not answer: the context is named,
    // and how to choose another.
    docker_context_create(
        config.path(),
        "stopped",
        "host=unix:///nonexistent/stopped.sock",
    );
    let err = fails_with(
        repo.bin()
            .env("DOCKER_CONFIG", cfg)
            .env("DOCKER_CONTEXT", "stopped")
            .args(["build", "--tag", "v3", "--no-push"]),
        1,
    );
    assert!(
        err.contains("/nonexistent/stopped.sock")
            && err.contains("docker context `stopped`")
            && err.contains("docker context use"),
        "{err}"
    );
}

/// Settings the tool cannot follow are refused before anything runs, each
/// with what to do instead.
#[test]
fn engine_settings_it_cannot_follow_say_what_to_do() {
    let repo = fixture(&["127.0.0.1:9/x".to_string()], &["linux/amd64"]);
    let run = |envs: &[(&str, &str)], code: i32| {
        let mut cmd = repo.bin();
        cmd.envs(envs.iter().copied())
            .args(["build", "--tag", "v1", "--no-push"]);
        fails_with(&mut cmd, code)
    };
    let err = run(&[("DOCKER_HOST", "ssh://builder@build-box")], 2);
    assert!(
        err.contains("SSH") && err.contains("ssh -nNT -L") && err.contains("DOCKER_HOST=unix://"),
        "{err}"
    );
    let err = run(
        &[("DOCKER_HOST", "tcp://127.0.0.1:9"), ("DOCKER_TLS", "1")],
        2,
    );
    assert!(err.contains("DOCKER_TLS_VERIFY=1"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let err = run(
        &[
            ("DOCKER_HOST", "tcp://127.0.0.1:9"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", empty.path().to_str().unwrap()),
        ],
        2,
    );
    assert!(
        err.contains(&format!("{}/ca.pem", empty.path().display())),
        "{err}"
    );
    // tcp:// is followed (not the default socket): nothing listens there.
    let err = run(&[("DOCKER_HOST", "tcp://127.0.0.1:9")], 1);
    assert!(
        err.contains("tcp://127.0.0.1:9") && !err.contains("docker.sock"),
        "{err}"
    );
    // No DOCKER_HOST and no context: the default socket (said to be the
    // default when nothing answers there).
    let cfg = tempfile::tempdir().unwrap();
    let out = repo
        .bin()
        .env("DOCKER_CONFIG", cfg.path())
        .args([
            "build",
            "--check",
            "--no-push",
            "--tag",
            "v1",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    let check: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let engine = &check["checks"][1];
    let detail = engine["detail"].as_str().unwrap();
    assert!(detail.contains("unix:///var/run/docker.sock"), "{check}");
    if engine["ok"] == false {
        assert!(detail.contains("no DOCKER_HOST"), "{check}");
    }
}

/// `docker image inspect` of a local image, through `docker` (a closure
/// running the CLI against the engine at hand).
fn inspect_local(
    docker: &dyn Fn(&[&str]) -> Result<String, String>,
    reference: &str,
) -> serde_json::Value {
    let text = docker(&["image", "inspect", reference])
        .unwrap_or_else(|e| panic!("{reference} is not in the engine: {e}"));
    serde_json::from_str::<serde_json::Value>(&text).unwrap()[0].clone()
}

/// `build --load`: each service built for the engine's platform into the
/// engine, under every reference a push would write (or `<service>:<tag>`
/// without registries), with the release's labels; nothing pushed.
pub fn load_puts_release_images_in_the_engine(
    s: &crate::services::Services,
    engine_env: &[(&str, &str)],
    docker: &dyn Fn(&[&str]) -> Result<String, String>,
    engine_arch: &str,
) {
    let ns = services::fresh_namespace(&s.registry, "load");
    let elsewhere = format!("ghcr.io/{}", services::unique_namespace("load"));
    let repo = fixture(
        &[ns.clone(), elsewhere.clone()],
        &["linux/amd64", "linux/arm64"],
    );
    let tag = services::unique_namespace("x");
    let mut cmd = repo.bin();
    cmd.envs(engine_env.iter().copied()).args([
        "build",
        "--load",
        "--tag",
        &tag,
        "--tag",
        "latest-load",
    ]);
    let json = json_ok(&mut cmd);
    for svc in crate::build::SERVICES {
        let img = json["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["service"] == *svc)
            .unwrap();
        assert_eq!(img["status"], "built", "{json}");
        assert_eq!(
            img["platforms"],
            serde_json::json!([format!("linux/{engine_arch}")])
        );
        let expected: Vec<String> = [&ns, &elsewhere]
            .iter()
            .flat_map(|r| [format!("{r}/{svc}:{tag}"), format!("{r}/{svc}:latest-load")])
            .collect();
        assert_eq!(img["references"], serde_json::json!(expected), "{json}");
        let first = inspect_local(docker, &expected[0]);
        for reference in &expected {
            let i = inspect_local(docker, reference);
            assert_eq!(i["Id"], first["Id"], "{reference} is another image");
            assert_eq!(i["Architecture"], engine_arch);
            let labels = &i["Config"]["Labels"];
            assert_eq!(labels["org.opencontainers.image.title"], *svc, "{i}");
            assert_eq!(labels["org.opencontainers.image.version"], tag.as_str());
            assert_eq!(labels["org.opencontainers.image.revision"], repo.head());
            assert_eq!(
                labels["org.opencontainers.image.created"],
                "2026-11-25T12:00:00Z"
            );
        }
        let tags: Vec<&str> = first["RepoTags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        for reference in &expected {
            assert!(
                tags.iter().any(|t| t.ends_with(reference.as_str())),
                "{reference} not in {tags:?}"
            );
        }
        // Nothing pushed: the registry has no such repository.
        assert!(services::inspect_raw(&format!("{ns}/{svc}:{tag}"), None).is_err());
        for reference in &expected {
            let _ = docker(&["image", "rm", reference]);
        }
    }

    // Without registries: `<service>:<tag>`.
    let cfg = std::fs::read_to_string(repo.path().join("openim-release.yaml")).unwrap();
    let cfg = cfg
        .replace(&format!("    - {ns}\n"), "")
        .replace(&format!("    - {elsewhere}\n"), "")
        .replace("  registries:\n", "");
    repo.write("openim-release.yaml", &cfg);
    let mut cmd = repo.bin();
    cmd.envs(engine_env.iter().copied()).args([
        "build",
        "--load",
        "--tag",
        &tag,
        "--service",
        "openim-push",
    ]);
    let out = stdout_ok(&mut cmd);
    let bare = format!("openim-push:{tag}");
    assert_eq!(out.trim(), bare);
    let i = inspect_local(docker, &bare);
    assert_eq!(
        i["Config"]["Labels"]["org.opencontainers.image.title"],
        "openim-push"
    );
    let _ = docker(&["image", "rm", &bare]);
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn load_builds_into_dockerd_and_pushes_nothing() {
    let s = need_services!();
    let arch = services::docker(s, &["version", "--format", "{{.Server.Arch}}"]).unwrap();
    load_puts_release_images_in_the_engine(
        s,
        &[("DOCKER_HOST", s.docker_host.as_str())],
        &|args| services::docker(s, args),
        &arch,
    );
}

/// `--load` refuses what it would not do.
#[test]
fn load_refuses_what_it_would_not_do() {
    let repo = fixture(&["127.0.0.1:9/x".to_string()], &["linux/amd64"]);
    let err = fails_with(
        repo.bin().args([
            "build",
            "--load",
            "--tag",
            "v1",
            "--platform",
            "linux/amd64",
            "--platform",
            "linux/arm64",
        ]),
        2,
    );
    assert!(err.contains("--platform"), "{err}");
    let err = fails_with(
        repo.bin().args([
            "build",
            "--load",
            "--push-by-digest",
            "--platform",
            "linux/amd64",
        ]),
        2,
    );
    assert!(err.contains("--push-by-digest"), "{err}");
    // The dry run names the images as they would be in the engine.
    let out = stdout_ok(repo.bin().args([
        "build",
        "--load",
        "--tag",
        "v1",
        "--service",
        "openim-api",
        "--dry-run",
    ]));
    assert_eq!(out.trim(), "127.0.0.1:9/x/openim-api:v1");
}

/// podman's Docker API (`podman system service`, which builds with
/// Buildah): build for two platforms, export and push through it, as with
/// dockerd; `--load` into its image store; the engine named as podman.
#[test]
#[ignore = "needs the services of scripts/test"]
fn podman_builds_exports_and_pushes() {
    let s = need_services!();
    let podman = s.podman_host.clone().expect(
        "no podman in the services' env file (OPENIM_RELEASE_TEST_PODMAN_HOST): \
         restart them with scripts/services start",
    );
    let ns = services::fresh_namespace(&s.registry, "podman");
    let repo = fixture(std::slice::from_ref(&ns), &["linux/amd64", "linux/arm64"]);
    let check = check_json(&repo, &[("DOCKER_HOST", podman.as_str())]);
    let detail = check["checks"][1]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&podman) && detail.contains("podman "),
        "{check}"
    );

    let json = json_ok(repo.bin().env("DOCKER_HOST", &podman).args([
        "build",
        "--tag",
        "v1",
        "--service",
        "openim-api",
        "--service",
        "openim-push",
    ]));
    for svc in ["openim-api", "openim-push"] {
        let img = json["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["service"] == svc)
            .unwrap();
        assert_eq!(img["status"], "built", "{json}");
        let reference = format!("{ns}/{svc}:v1");
        assert_eq!(
            services::digest_of(&reference, None).unwrap(),
            img["digest"].as_str().unwrap()
        );
        let index = services::inspect_raw(&reference, None).unwrap();
        let archs: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["platform"]["architecture"].as_str().unwrap())
            .collect();
        assert_eq!(archs, ["amd64", "arm64"], "{index}");
        for arch in ["amd64", "arm64"] {
            let cfg = services::inspect_config(&reference, arch).unwrap();
            assert_eq!(cfg["architecture"], arch);
            let labels = &cfg["config"]["Labels"];
            assert_eq!(labels["org.opencontainers.image.title"], svc);
            assert_eq!(labels["org.opencontainers.image.revision"], repo.head());
            // Built by Buildah, not BuildKit.
            assert!(labels["io.buildah.version"].is_string(), "{cfg}");
        }
        let files = services::image_files(&format!("{ns}/{svc}:v1"));
        assert_eq!(
            String::from_utf8_lossy(&files[&format!("openim/bin/{svc}/main.txt")]),
            format!("{svc} binary\n")
        );
    }
    // A second run finds the inputs unchanged, as with dockerd.
    let again = json_ok(repo.bin().env("DOCKER_HOST", &podman).args([
        "build",
        "--tag",
        "v2",
        "--service",
        "openim-api",
    ]));
    assert_eq!(again["images"][0]["status"], "unchanged", "{again}");

    // --load into podman's store, seen through its Docker API.
    let arch = docker_at(&podman, &["version", "--format", "{{.Server.Arch}}"]).unwrap();
    load_puts_release_images_in_the_engine(
        s,
        &[("DOCKER_HOST", podman.as_str())],
        &|args| docker_at(&podman, args),
        &arch,
    );

    // A feature only BuildKit knows (a heredoc, which Buildah reads only
    // from 1.33 on): the failure says the engine is podman building with
    // Buildah.
    repo.write(
        "build/images/openim-server/Dockerfile",
        "FROM scratch\nCOPY <<EOF /hello.txt\nhello\nEOF\n",
    );
    let err = fails_with(
        repo.bin().env("DOCKER_HOST", &podman).args([
            "build",
            "--tag",
            "v3",
            "--service",
            "openim-api",
            "--no-push",
        ]),
        1,
    );
    assert!(
        err.contains("the engine is podman") && err.contains("Buildah, not BuildKit"),
        "{err}"
    );
}

/// The docker CLI against the engine at `host`.
fn docker_at(host: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(docker_bin())
        .env("DOCKER_HOST", host)
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

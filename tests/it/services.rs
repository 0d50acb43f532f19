//! The real servers started by `scripts/services` (dockerd, registries, git
//! server), found through the env file it writes.
//!
//! A test that needs them says so twice:
//!
//! ```ignore
//! #[test]
//! #[ignore = "needs the services of scripts/test"]
//! fn builds_every_service() {
//!     let s = need_services!();
//! ```
//!
//! so a plain `cargo test` lists it as ignored (not as passed), and
//! `scripts/test` starts the services and runs `cargo test -- --include-ignored`,
//! where a missing service fails the test instead of skipping it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

#[derive(Debug, Clone)]
#[allow(dead_code)] // the git server fields serve the gitops tests
pub struct Services {
    pub docker_host: String,
    pub registry: String,
    pub auth_registry: String,
    pub auth_user: String,
    pub auth_password: String,
    /// A registry with bearer-token auth (auth_user/auth_password at its
    /// token server), as ghcr.io and Docker Hub work.
    pub token_registry: String,
    /// The token server's request log (`GET /token?… user=… status`).
    pub token_log: PathBuf,
    pub git_url: String,
    pub git_root: PathBuf,
    pub git_token: String,
    /// podman's Docker API (`podman system service`), the second engine;
    /// `None` in an env file written before scripts/services started it.
    pub podman_host: Option<String>,
}

fn from_env_file() -> Option<HashMap<String, String>> {
    let dir = std::env::var("OPENIM_RELEASE_SERVICES_DIR")
        .unwrap_or_else(|_| "/tmp/openim-release-services".into());
    let text = std::fs::read_to_string(Path::new(&dir).join("env")).ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect(),
    )
}

fn load() -> Option<Services> {
    let file = from_env_file().unwrap_or_default();
    let get = |k: &str| std::env::var(k).ok().or_else(|| file.get(k).cloned());
    let s = Services {
        docker_host: get("DOCKER_HOST")?,
        registry: get("OPENIM_RELEASE_TEST_REGISTRY")?,
        auth_registry: get("OPENIM_RELEASE_TEST_AUTH_REGISTRY")?,
        auth_user: get("OPENIM_RELEASE_TEST_AUTH_USER")?,
        auth_password: get("OPENIM_RELEASE_TEST_AUTH_PASSWORD")?,
        token_registry: get("OPENIM_RELEASE_TEST_TOKEN_REGISTRY")?,
        token_log: PathBuf::from(get("OPENIM_RELEASE_TEST_TOKEN_LOG")?),
        git_url: get("OPENIM_RELEASE_TEST_GIT_URL")?,
        git_root: PathBuf::from(get("OPENIM_RELEASE_TEST_GIT_ROOT")?),
        git_token: get("OPENIM_RELEASE_TEST_GIT_TOKEN")?,
        podman_host: get("OPENIM_RELEASE_TEST_PODMAN_HOST"),
    };
    // Only count them when the engine really answers.
    let ok = docker(&s, &["version", "--format", "{{.Server.Version}}"]).is_ok();
    ok.then_some(s)
}

/// The services; a test that asks for them fails when they are not running
/// (it only runs when they are wanted: see the module's doc).
pub fn services() -> &'static Services {
    static S: OnceLock<Option<Services>> = OnceLock::new();
    S.get_or_init(load).as_ref().expect(
        "this test needs the test services, which are not running: \
         `scripts/test` starts them (or `scripts/services start`, then source the env file it prints)",
    )
}

/// The services, for a test marked as needing them (see the module's doc).
#[macro_export]
macro_rules! need_services {
    () => {
        $crate::services::services()
    };
}

fn docker_bin() -> &'static str {
    if Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    }
}

/// Trimmed stdout on success, trimmed stderr otherwise.
fn text_of(out: std::process::Output) -> Result<String, String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Run the docker CLI against the test engine.
pub fn docker(s: &Services, args: &[&str]) -> Result<String, String> {
    let out = Command::new(docker_bin())
        .env("DOCKER_HOST", &s.docker_host)
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    text_of(out)
}

/// `skopeo inspect` of a reference; `raw` gives the manifest or index itself.
pub fn skopeo(args: &[&str]) -> Result<serde_json::Value, String> {
    let out = Command::new("skopeo")
        .args(["--insecure-policy"])
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("skopeo output is not JSON: {e}"))
}

pub fn inspect_raw(
    reference: &str,
    creds: Option<(&str, &str)>,
) -> Result<serde_json::Value, String> {
    let c;
    let mut args = vec!["inspect", "--tls-verify=false", "--raw"];
    if let Some((u, p)) = creds {
        c = format!("{u}:{p}");
        args.extend(["--creds", c.as_str()]);
    }
    let r = format!("docker://{reference}");
    args.push(&r);
    skopeo(&args)
}

/// The config of one platform's image (labels etc.).
pub fn inspect_config(reference: &str, platform_arch: &str) -> Result<serde_json::Value, String> {
    let r = format!("docker://{reference}");
    skopeo(&[
        "--override-arch",
        platform_arch,
        "--override-os",
        "linux",
        "inspect",
        "--tls-verify=false",
        "--config",
        &r,
    ])
}

/// The digest of a reference as the registry reports it.
pub fn digest_of(reference: &str, creds: Option<(&str, &str)>) -> Result<String, String> {
    let c;
    let mut args = vec!["inspect", "--tls-verify=false", "--format", "{{.Digest}}"];
    if let Some((u, p)) = creds {
        c = format!("{u}:{p}");
        args.extend(["--creds", c.as_str()]);
    }
    let r = format!("docker://{reference}");
    args.push(&r);
    // --format output is not JSON; run directly.
    let out = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "--override-os",
            "linux",
            "--override-arch",
            "amd64",
        ])
        .args(&args)
        .output()
        .map_err(|e| e.to_string())?;
    text_of(out)
}

/// Make the local base images (one per architecture) once per engine:
/// a tiny rootfs imported with `docker import`, never pulled.
pub fn ensure_base_images(s: &Services) {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        for arch in ["amd64", "arm64"] {
            let name = format!("openim-test-base-{arch}:latest");
            if docker(s, &["image", "inspect", &name]).is_ok() {
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("root");
            std::fs::create_dir_all(root.join("etc")).unwrap();
            std::fs::write(
                root.join("etc/os-release"),
                format!("NAME=openim-test-base\nARCH={arch}\n"),
            )
            .unwrap();
            let tar = dir.path().join("rootfs.tar");
            let status = Command::new("tar")
                .args([
                    "-C",
                    root.to_str().unwrap(),
                    "-cf",
                    tar.to_str().unwrap(),
                    ".",
                ])
                .status()
                .unwrap();
            assert!(status.success());
            docker(
                s,
                &[
                    "import",
                    "--platform",
                    &format!("linux/{arch}"),
                    tar.to_str().unwrap(),
                    &name,
                ],
            )
            .unwrap_or_else(|e| panic!("docker import {name}: {e}"));
        }
    });
}

/// `<registry>/<a namespace no other test uses>`.
pub fn fresh_namespace(registry: &str, prefix: &str) -> String {
    format!("{registry}/{}", unique_namespace(prefix))
}

/// A registry namespace no other test uses.
pub fn unique_namespace(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{}",
        nanos % 1_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A new bare repository on the smart-HTTP git server (push enabled).
/// Returns its path on disk and its URL (without credentials).
pub fn git_server_repo(s: &Services, prefix: &str) -> (PathBuf, String) {
    let name = unique_namespace(prefix);
    let bare = s.git_root.join(format!("{name}.git"));
    let run = |dir: &Path, args: &[&str]| {
        let ok = Command::new("git")
            .current_dir(dir)
            .args(args)
            .status()
            .map(|st| st.success());
        assert!(matches!(ok, Ok(true)), "git {args:?} failed");
    };
    run(
        Path::new("/"),
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    );
    run(&bare, &["config", "http.receivepack", "true"]);
    (bare, format!("{}/{name}.git", s.git_url))
}

/// `url` with the test token as user info, as GitHub's HTTPS does it.
pub fn authed(s: &Services, url: &str) -> String {
    url.replacen(
        "http://",
        &format!("http://x-access-token:{}@", s.git_token),
        1,
    )
}

/// Static programs for images without a libc (built with `cc -static`, so
/// gcc and libc6-dev are needed): `cat FILE…` prints files, `cp SRC DST`
/// copies one.
pub fn static_tool(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("openim-release-it-tools-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let programs = [
            ("cat", "#include <stdio.h>\nint main(int c, char **v) {\n  for (int i = 1; i < c; i++) {\n    FILE *f = fopen(v[i], \"r\");\n    if (!f) { printf(\"missing %s\\n\", v[i]); continue; }\n    int ch; while ((ch = fgetc(f)) != EOF) putchar(ch);\n    fclose(f);\n  }\n  return 0;\n}\n"),
            ("cp", "#include <stdio.h>\nint main(int c, char **v) {\n  if (c != 3) return 2;\n  FILE *in = fopen(v[1], \"r\"), *out = fopen(v[2], \"w\");\n  if (!in || !out) { perror(\"cp\"); return 1; }\n  int ch; while ((ch = fgetc(in)) != EOF) fputc(ch, out);\n  return fclose(out) != 0;\n}\n"),
        ];
        for (tool, source) in programs {
            let src = dir.join(format!("{tool}.c"));
            std::fs::write(&src, source).unwrap();
            let out = Command::new("cc")
                .args(["-static", "-Os", "-o"])
                .arg(dir.join(tool))
                .arg(&src)
                .output()
                .expect("running cc");
            assert!(
                out.status.success(),
                "cc -static {tool} (gcc and libc6-dev are needed): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        dir
    });
    dir.join(name)
}

/// A local image `openim-test-tools:latest` (linux/amd64) with `/cp` and
/// `/cat`, for Dockerfiles that `RUN` something; made once, never pulled.
pub fn ensure_tools_image(s: &Services) -> &'static str {
    static DONE: OnceLock<()> = OnceLock::new();
    const NAME: &str = "openim-test-tools:latest";
    DONE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        for tool in ["cp", "cat"] {
            std::fs::copy(static_tool(tool), root.join(tool)).unwrap();
        }
        let tar = dir.path().join("rootfs.tar");
        let status = Command::new("tar")
            .args([
                "-C",
                root.to_str().unwrap(),
                "-cf",
                tar.to_str().unwrap(),
                ".",
            ])
            .status()
            .unwrap();
        assert!(status.success());
        docker(
            s,
            &[
                "import",
                "--platform",
                "linux/amd64",
                tar.to_str().unwrap(),
                NAME,
            ],
        )
        .unwrap_or_else(|e| panic!("docker import {NAME}: {e}"));
    });
    NAME
}

/// The files of an image as a user sees them: every layer fetched with
/// skopeo and unpacked in order (a later layer's file wins).
pub fn image_files(reference: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
    let out = tempfile::tempdir().unwrap();
    let copy = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("dir:{}", out.path().display()))
        .output()
        .unwrap();
    assert!(
        copy.status.success(),
        "skopeo copy {reference}: {}",
        String::from_utf8_lossy(&copy.stderr)
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("manifest.json")).unwrap()).unwrap();
    let mut files = std::collections::BTreeMap::new();
    for layer in manifest["layers"].as_array().unwrap() {
        let digest = layer["digest"].as_str().unwrap();
        let blob = std::fs::File::open(out.path().join(&digest[7..])).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(blob));
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            files.insert(path, bytes);
        }
    }
    files
}

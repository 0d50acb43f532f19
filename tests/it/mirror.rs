//! `mirror`: a release copied by digest between the real test registries
//! (plain, htpasswd, bearer token). The source images are written here as
//! an OCI image layout by hand (two platforms, a layer every service
//! shares, a cosign signature tag, an SBOM referrer kept under the
//! referrers tag, as registries without the referrers API keep them) and
//! pushed with skopeo, so the copy is checked against content that no code
//! of ours made; skopeo reads the result.

use crate::build::{credentials_key, fixture};
use crate::common::*;
use crate::need_services;
use crate::services::{self, Services};
use serde_json::{json, Value};
use std::io::Write;
use std::process::Command;

pub const MT_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MT_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

pub fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::build::sha256_hex(bytes))
}

/// Bytes that do not compress (xorshift from a seed).
pub fn noise(seed: &str, n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in seed.bytes() {
        x = (x ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// A gzip layer holding one file, and its diff_id.
fn layer(path: &str, content: &[u8]) -> (Vec<u8>, String) {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o755);
    h.set_mtime(0);
    b.append_data(&mut h, path, content).unwrap();
    let plain = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    (gz.finish().unwrap(), sha(&plain))
}

/// An OCI image layout being written, pushed with skopeo.
pub struct Layout {
    pub dir: tempfile::TempDir,
}

impl Default for Layout {
    fn default() -> Self {
        Self::new()
    }
}

impl Layout {
    pub fn new() -> Layout {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
        std::fs::write(
            dir.path().join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        Layout { dir }
    }

    /// Store `bytes`; its descriptor.
    pub fn put(&self, media_type: &str, bytes: &[u8]) -> Value {
        let d = sha(bytes);
        std::fs::write(
            self.dir
                .path()
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:")),
            bytes,
        )
        .unwrap();
        json!({"mediaType": media_type, "digest": d, "size": bytes.len()})
    }

    fn put_json(&self, media_type: &str, v: &Value) -> Value {
        self.put(media_type, &serde_json::to_vec(v).unwrap())
    }

    /// A two-platform image: a base layer every image of every seed shares
    /// (`shared` bytes) and a layer of its own (`own` bytes per platform).
    /// Returns the index's descriptor.
    pub fn multi_arch(&self, seed: &str, shared: usize, own: usize) -> Value {
        let (base, base_id) = layer("etc/base.bin", &noise("base", shared));
        let base = self.put("application/vnd.oci.image.layer.v1.tar+gzip", &base);
        let manifests: Vec<Value> = ["amd64", "arm64"]
            .iter()
            .map(|arch| {
                let (app, app_id) = layer(
                    &format!("app/{seed}"),
                    &noise(&format!("{seed}/{arch}"), own),
                );
                let app = self.put("application/vnd.oci.image.layer.v1.tar+gzip", &app);
                let config = self.put_json(
                    "application/vnd.oci.image.config.v1+json",
                    &json!({"architecture": arch, "os": "linux",
                        "config": {"Entrypoint": [format!("/app/{seed}")]},
                        "rootfs": {"type": "layers", "diff_ids": [base_id, app_id]}}),
                );
                let mut d = self.put_json(
                    MT_MANIFEST,
                    &json!({"schemaVersion": 2, "mediaType": MT_MANIFEST,
                        "config": config, "layers": [base.clone(), app]}),
                );
                d["platform"] = json!({"os": "linux", "architecture": arch});
                d
            })
            .collect();
        self.put_json(
            MT_INDEX,
            &json!({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": manifests}),
        )
    }

    /// A cosign signature of `subject` (the shape `cosign sign` pushes
    /// under `sha256-<hex>.sig`).
    pub fn signature(&self, subject: &str) -> Value {
        let payload = json!({"critical": {"identity": {"docker-reference": "x"},
            "image": {"docker-manifest-digest": subject}, "type": "cosign container image signature"},
            "optional": null});
        let mut layer = self.put_json("application/vnd.dev.cosign.simplesigning.v1+json", &payload);
        layer["annotations"] = json!({"dev.cosignproject.cosign/signature": "MEUCIQDtest"});
        let config = self.put_json("application/vnd.oci.image.config.v1+json", &json!({}));
        self.put_json(
            MT_MANIFEST,
            &json!({"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": config, "layers": [layer]}),
        )
    }

    /// An SBOM about `subject` (an OCI 1.1 `subject` manifest), and the
    /// referrers tag's index that lists it. Returns (sbom, index).
    pub fn sbom_referrer(&self, subject: &Value) -> (Value, Value) {
        let empty = self.put("application/vnd.oci.empty.v1+json", b"{}");
        let doc = self.put_json(
            "application/spdx+json",
            &json!({"spdxVersion": "SPDX-2.3", "name": "test"}),
        );
        let subject = json!({"mediaType": subject["mediaType"], "digest": subject["digest"], "size": subject["size"]});
        let sbom = self.put_json(
            MT_MANIFEST,
            &json!({"schemaVersion": 2, "mediaType": MT_MANIFEST,
                "artifactType": "application/spdx+json", "config": empty,
                "layers": [doc], "subject": subject}),
        );
        let mut listed = sbom.clone();
        listed["artifactType"] = json!("application/spdx+json");
        let index = self.put_json(
            MT_INDEX,
            &json!({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [listed]}),
        );
        (sbom, index)
    }

    /// A manifest and what it points to, pushed with plain HTTP requests
    /// (curl) to a registry without authentication: for what skopeo does
    /// not push as it is (an index of artifacts without platforms).
    pub fn push_http(&self, top: &Value, host: &str, repo: &str, reference: &str) {
        let path = |d: &Value| {
            self.dir
                .path()
                .join("blobs/sha256")
                .join(d["digest"].as_str().unwrap().trim_start_matches("sha256:"))
        };
        let curl = |args: &[&str]| {
            let out = Command::new("curl")
                .args(["-sS", "-f"])
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "curl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let m: Value = serde_json::from_slice(&std::fs::read(path(top)).unwrap()).unwrap();
        for child in m["manifests"].as_array().into_iter().flatten() {
            self.push_http(child, host, repo, child["digest"].as_str().unwrap());
        }
        let blobs = m["config"].as_object().map(|_| m["config"].clone());
        for b in blobs
            .iter()
            .chain(m["layers"].as_array().into_iter().flatten())
        {
            let headers = curl(&[
                "-X",
                "POST",
                "-D",
                "-",
                "-o",
                "/dev/null",
                &format!("http://{host}/v2/{repo}/blobs/uploads/"),
            ]);
            let location = headers
                .lines()
                .find_map(|l| {
                    l.strip_prefix("Location: ")
                        .or_else(|| l.strip_prefix("location: "))
                })
                .unwrap()
                .trim()
                .to_string();
            let location = if location.starts_with("http") {
                location
            } else {
                format!("http://{host}{location}")
            };
            let sep = if location.contains('?') { '&' } else { '?' };
            curl(&[
                "-X",
                "PUT",
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
                &format!("@{}", path(b).display()),
                &format!("{location}{sep}digest={}", b["digest"].as_str().unwrap()),
            ]);
        }
        curl(&[
            "-X",
            "PUT",
            "-H",
            &format!("Content-Type: {}", top["mediaType"].as_str().unwrap()),
            "--data-binary",
            &format!("@{}", path(top).display()),
            &format!("http://{host}/v2/{repo}/manifests/{reference}"),
        ]);
    }

    /// `skopeo copy --all` of `top` to `dest` (`host/repo:tag`).
    pub fn push(&self, top: &Value, dest: &str) {
        let mut entry = top.clone();
        entry["annotations"] = json!({"org.opencontainers.image.ref.name": "top"});
        std::fs::write(
            self.dir.path().join("index.json"),
            serde_json::to_vec(
                &json!({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [entry]}),
            )
            .unwrap(),
        )
        .unwrap();
        let out = Command::new("skopeo")
            .args([
                "--insecure-policy",
                "copy",
                "--all",
                "--preserve-digests",
                "-q",
                "--dest-tls-verify=false",
            ])
            .arg(format!("oci:{}:top", self.dir.path().display()))
            .arg(format!("docker://{dest}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo copy to {dest}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The digest a tag names, as the registry says (skopeo --raw, hashed).
fn raw_digest(reference: &str, creds: Option<(&str, &str)>) -> Option<String> {
    let c;
    let mut args = vec![
        "--insecure-policy",
        "inspect",
        "--tls-verify=false",
        "--raw",
    ];
    if let Some((u, p)) = creds {
        c = format!("{u}:{p}");
        args.extend(["--creds", c.as_str()]);
    }
    let r = format!("docker://{reference}");
    args.push(&r);
    let out = Command::new("skopeo").args(&args).output().unwrap();
    out.status.success().then(|| sha(&out.stdout))
}

/// A source release: every service of the build fixture as a two-platform
/// image under `tag` in `ns`; openim-api signed and with an SBOM. Returns
/// service → index digest, and the artifacts' digests of openim-api.
pub struct Source {
    pub digests: std::collections::BTreeMap<String, String>,
    pub signature: String,
    pub sbom: String,
}

pub fn push_release(ns: &str, tags: &[&str], own: usize) -> Source {
    let l = Layout::new();
    let mut digests = std::collections::BTreeMap::new();
    let mut artifacts = (String::new(), String::new());
    for svc in crate::build::SERVICES {
        let top = l.multi_arch(svc, 64 * 1024, own);
        for t in tags {
            l.push(&top, &format!("{ns}/{svc}:{t}"));
        }
        let d = top["digest"].as_str().unwrap().to_string();
        if *svc == "openim-api" {
            let sig = l.signature(&d);
            l.push(&sig, &format!("{ns}/{svc}:{}.sig", d.replacen(':', "-", 1)));
            let (sbom, index) = l.sbom_referrer(&top);
            let (host, path) = ns.split_once('/').unwrap();
            l.push_http(
                &index,
                host,
                &format!("{path}/{svc}"),
                &d.replacen(':', "-", 1),
            );
            artifacts = (
                sig["digest"].as_str().unwrap().to_string(),
                sbom["digest"].as_str().unwrap().to_string(),
            );
        }
        digests.insert(svc.to_string(), d);
    }
    Source {
        digests,
        signature: artifacts.0,
        sbom: artifacts.1,
    }
}

pub fn creds_env(s: &Services) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for r in [&s.auth_registry, &s.token_registry] {
        let key = credentials_key(r);
        out.push((format!("{key}_USERNAME"), s.auth_user.clone()));
        out.push((format!("{key}_PASSWORD"), s.auth_password.clone()));
    }
    out
}

fn target<'a>(json: &'a Value, registry: &str) -> &'a Value {
    json["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["registry"] == registry)
        .unwrap_or_else(|| panic!("no target {registry} in {json}"))
}

/// Every service, both platforms, two tags, a signature and an SBOM:
/// copied from the plain registry to another repository of it (mounted,
/// nothing sent), to the htpasswd registry and to the token registry, with
/// the digests skopeo reads identical everywhere; a re-run sends nothing.
#[test]
#[ignore = "needs the services of scripts/test"]
fn mirror_copies_every_platform_and_artifact_by_digest_and_a_rerun_moves_nothing() {
    let s = need_services!();
    let from = services::fresh_namespace(&s.registry, "mirror-src");
    let same = services::fresh_namespace(&s.registry, "mirror-dst");
    let auth = services::fresh_namespace(&s.auth_registry, "mirror");
    let token = services::fresh_namespace(&s.token_registry, "mirror");
    let src = push_release(&from, &["v1.0.0", "1.0"], 256 * 1024);
    let repo = fixture(std::slice::from_ref(&from), &["linux/amd64", "linux/arm64"]);
    let login = Some((s.auth_user.as_str(), s.auth_password.as_str()));
    let mirror = |extra: &[&str]| {
        let mut cmd = repo.bin();
        cmd.args(["mirror", "--tag", "v1.0.0", "--tag", "1.0"])
            .args(["--to", &same, "--to", &auth, "--to", &token])
            .args(extra)
            .envs(creds_env(s));
        cmd
    };

    let json = json_ok(&mut mirror(&["--jobs", "4"]));
    assert_eq!(json["schema_version"], 1);
    for image in json["images"].as_array().unwrap() {
        assert_eq!(image["status"], "copied", "{image}");
        let svc = image["service"].as_str().unwrap();
        assert_eq!(image["digest"], src.digests[svc].as_str());
    }
    // Same registry: every blob mounted from the source repository.
    let t = target(&json, &same);
    assert_eq!(t["bytes_sent"], 0, "{t}");
    assert!(t["blobs_mounted"].as_u64().unwrap() > 0, "{t}");
    // Another registry: the shared base layer is sent once, then mounted
    // into the other services' repositories.
    for r in [&auth, &token] {
        let t = target(&json, r);
        assert!(
            t["bytes_sent"].as_u64().unwrap() > 3 * 2 * 256 * 1024,
            "{t}"
        );
        assert!(t["blobs_mounted"].as_u64().unwrap() >= 2, "{t}");
        assert_eq!(t["artifacts"], 2, "{t}");
    }
    let sig_tag = |d: &str| format!("{}.sig", d.replacen(':', "-", 1));
    for (r, creds) in [(&same, None), (&auth, login), (&token, login)] {
        for (svc, digest) in &src.digests {
            for tag in ["v1.0.0", "1.0"] {
                let reference = format!("{r}/{svc}:{tag}");
                assert_eq!(
                    raw_digest(&reference, creds).as_deref(),
                    Some(digest.as_str()),
                    "{reference}"
                );
            }
            let raw = services::inspect_raw(&format!("{r}/{svc}:v1.0.0"), creds).unwrap();
            let platforms: Vec<&str> = raw["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["platform"]["architecture"].as_str().unwrap())
                .collect();
            assert_eq!(platforms, ["amd64", "arm64"]);
            // Every platform's image is there, config and layers.
            for arch in ["amd64", "arm64"] {
                let out = Command::new("skopeo")
                    .args(["--insecure-policy", "--override-arch", arch])
                    .args(["inspect", "--tls-verify=false"])
                    .args(creds.map(|(u, p)| format!("--creds={u}:{p}")))
                    .arg(format!("docker://{r}/{svc}:v1.0.0"))
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        let api = &src.digests["openim-api"];
        assert_eq!(
            raw_digest(&format!("{r}/openim-api:{}", sig_tag(api)), creds).as_deref(),
            Some(src.signature.as_str())
        );
        let referrers = services::inspect_raw(
            &format!("{r}/openim-api:{}", api.replacen(':', "-", 1)),
            creds,
        )
        .unwrap();
        assert_eq!(
            referrers["manifests"][0]["digest"],
            src.sbom.as_str(),
            "{referrers}"
        );
        assert_eq!(
            raw_digest(&format!("{r}/openim-api@{}", src.sbom), creds).as_deref(),
            Some(src.sbom.as_str())
        );
    }
    // Text: one reference per line with its digest.
    let start = std::time::Instant::now();
    let out = mirror(&[]).output().unwrap();
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(&format!(
            "{auth}/openim-api:1.0@{}",
            src.digests["openim-api"]
        )),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 3 * 3 * 2, "{stdout}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!("{auth}: 0 blobs sent (0 B)")),
        "{stderr}"
    );
    assert!(took.as_secs() < 10, "re-run took {took:?}");

    // A re-run: nothing sent, no manifest written, every tag in place.
    let again = json_ok(&mut mirror(&[]));
    let moved = &again["moved"];
    assert_eq!(moved["bytes_sent"], 0, "{moved}");
    assert_eq!(moved["blobs_sent"], 0, "{moved}");
    assert_eq!(moved["blobs_mounted"], 0, "{moved}");
    assert_eq!(moved["manifests_copied"], 0, "{moved}");
    assert_eq!(moved["tags_written"], 0, "{moved}");
    assert_eq!(moved["tags_present"], 3 * 3 * 2 + 3, "{moved}");
}

/// A tag missing at the source for one service: exit 1 naming it, and no
/// service gets the tag in the target (tags are all or none); the content
/// of the others is there, so a re-run after the fix only tags.
#[test]
#[ignore = "needs the services of scripts/test"]
fn a_missing_image_fails_the_mirror_and_tags_nothing() {
    let s = need_services!();
    let from = services::fresh_namespace(&s.registry, "mirror-src");
    let to = services::fresh_namespace(&s.auth_registry, "mirror");
    let l = Layout::new();
    let mut digests = Vec::new();
    for svc in ["openim-api", "openim-rpc-user"] {
        let top = l.multi_arch(svc, 1024, 1024);
        l.push(&top, &format!("{from}/{svc}:v2"));
        digests.push(top["digest"].as_str().unwrap().to_string());
    }
    let repo = fixture(std::slice::from_ref(&from), &["linux/amd64"]);
    let login = Some((s.auth_user.as_str(), s.auth_password.as_str()));
    let err = fails_with(
        repo.bin()
            .args(["mirror", "--tag", "v2", "--to", &to])
            .envs(creds_env(s)),
        1,
    );
    assert!(
        err.contains(&format!("{from}/openim-push:v2 does not exist")),
        "{err}"
    );
    assert!(err.contains("copied but not tagged"), "{err}");
    for svc in ["openim-api", "openim-rpc-user"] {
        assert_eq!(raw_digest(&format!("{to}/{svc}:v2"), login), None);
    }
    // The content is there; pushing the missing image and running again
    // tags all three.
    assert!(raw_digest(&format!("{to}/openim-api@{}", digests[0]), login).is_some());
    let top = l.multi_arch("openim-push", 1024, 1024);
    l.push(&top, &format!("{from}/openim-push:v2"));
    let json = json_ok(
        repo.bin()
            .args(["mirror", "--tag", "v2", "--to", &to])
            .envs(creds_env(s)),
    );
    assert_eq!(json["moved"]["tags_written"], 3, "{json}");
    assert_eq!(
        raw_digest(&format!("{to}/openim-api:v2"), login).as_deref(),
        Some(digests[0].as_str())
    );
}

/// Wrong credentials for a target: exit 1, the registry named, the
/// password never shown, and nothing copied anywhere.
#[test]
#[ignore = "needs the services of scripts/test"]
fn refused_credentials_stop_before_anything_moves() {
    let s = need_services!();
    let from = services::fresh_namespace(&s.registry, "mirror-src");
    let to = services::fresh_namespace(&s.token_registry, "mirror");
    let other = services::fresh_namespace(&s.registry, "mirror-dst");
    push_release(&from, &["v3"], 1024);
    let repo = fixture(std::slice::from_ref(&from), &["linux/amd64"]);
    let key = credentials_key(&s.token_registry);
    let err = fails_with(
        repo.bin()
            .args(["mirror", "--tag", "v3", "--to", &other, "--to", &to])
            .env(format!("{key}_USERNAME"), &s.auth_user)
            .env(format!("{key}_PASSWORD"), "wrong-password-xyz"),
        1,
    );
    assert!(err.contains(&s.token_registry), "{err}");
    assert!(!err.contains("wrong-password-xyz"), "{err}");
    assert_eq!(raw_digest(&format!("{other}/openim-api:v3"), None), None);
}

/// `images.mirrors` routes, `--dry-run` (no registry is asked) and the
/// input errors (exit 2).
#[test]
fn routes_dry_run_and_input_errors() {
    let repo = fixture(&["127.0.0.1:9/openimsdk".to_string()], &["linux/amd64"]);
    let cfg = std::fs::read_to_string(repo.path().join("openim-release.yaml")).unwrap();
    let text = stdout_ok(repo.bin().args([
        "mirror",
        "--tag",
        "v1",
        "--to",
        "127.0.0.1:9/other",
        "--dry-run",
    ]));
    assert_eq!(
        lines(&text),
        [
            "127.0.0.1:9/other/openim-api:v1",
            "127.0.0.1:9/other/openim-rpc-user:v1",
            "127.0.0.1:9/other/openim-push:v1"
        ]
    );
    // Nothing configured and no --to.
    let err = fails_with(repo.bin().args(["mirror", "--tag", "v1"]), 2);
    assert!(
        err.contains("pass --to REGISTRY, or configure images.mirrors"),
        "{err}"
    );
    let err = fails_with(
        repo.bin()
            .args(["mirror", "--tag", "v1", "--to", "127.0.0.1:9/openimsdk"]),
        2,
    );
    assert!(err.contains("is the registry copied from"), "{err}");
    let err = fails_with(
        repo.bin().args([
            "mirror",
            "--tag",
            "v1",
            "--to",
            "127.0.0.1:9/x",
            "--service",
            "openim-nope",
        ]),
        2,
    );
    assert!(err.contains("unknown service `openim-nope`"), "{err}");
    let err = fails_with(repo.bin().args(["mirror", "--to", "127.0.0.1:9/x"]), 2);
    assert!(err.contains("--tag"), "{err}");

    // images.mirrors: the routes when neither --from nor --to is given.
    std::fs::write(
        repo.path().join("openim-release.yaml"),
        cfg.replace(
            "  platforms:",
            "  mirrors:\n    127.0.0.1:9/openimsdk: [127.0.0.1:9/openim, 127.0.0.1:8/mirror]\n  platforms:",
        ),
    )
    .unwrap();
    let json = json_ok(repo.bin().args([
        "mirror",
        "--tag",
        "v1",
        "--service",
        "openim-api",
        "--dry-run",
    ]));
    assert_eq!(json["dry_run"], true);
    assert_eq!(json["routes"][0]["from"], "127.0.0.1:9/openimsdk");
    assert_eq!(
        json["images"][0]["references"],
        json!([
            "127.0.0.1:9/openim/openim-api:v1",
            "127.0.0.1:8/mirror/openim-api:v1"
        ])
    );
}

/// A registry that refuses cross-repository mounts (403) and fails some
/// blob uploads (503, a cut connection): the blobs are uploaded instead of
/// mounted, the failed uploads started again with a new stream, and the
/// copy is complete, with the same digests.
#[test]
#[ignore = "needs the services of scripts/test"]
fn refused_mounts_fall_back_to_uploads_and_failed_uploads_are_retried() {
    use crate::proxy::{Fault, Proxy};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let s = need_services!();
    let from = services::fresh_namespace(&s.registry, "mirror-src");
    let src = push_release(&from, &["v4"], 32 * 1024);
    let puts = AtomicUsize::new(0);
    let proxy = Proxy::start(
        &s.registry,
        Box::new(move |_, method, path| {
            if method == "POST" && path.contains("mount=") {
                return Fault::Status(403);
            }
            if method == "PUT" && path.contains("/blobs/uploads/") {
                match puts.fetch_add(1, Ordering::SeqCst) {
                    1 => return Fault::Status(503),
                    4 => return Fault::Reset,
                    _ => {}
                }
            }
            Fault::Pass
        }),
    );
    let to = services::fresh_namespace(&proxy.addr.to_string(), "mirror");
    let repo = fixture(std::slice::from_ref(&from), &["linux/amd64"]);
    let json = json_ok(repo.bin().args(["mirror", "--tag", "v4", "--to", &to]));
    let t = &json["targets"][0];
    assert_eq!(t["blobs_mounted"], 0, "{t}");
    assert!(proxy.faults.load(Ordering::SeqCst) >= 3, "{t}");
    // Read from the registry behind the proxy.
    let behind = to.replace(&proxy.addr.to_string(), &s.registry);
    for (svc, digest) in &src.digests {
        assert_eq!(
            raw_digest(&format!("{behind}/{svc}:v4"), None).as_deref(),
            Some(digest.as_str()),
            "{svc}"
        );
    }
}

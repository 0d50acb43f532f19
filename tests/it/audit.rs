//! `audit` against the real registries (the plain one and the one with
//! htpasswd, one namespace each) and a real deploy repository on the git
//! server: two releases made by `release` are clean; then each drift
//! OpenIM's users report is injected through the registry API (or, for a
//! tag alone, on the registry's disk: docker-registry 2.8 deletes only
//! whole manifests), and every one is found, with nothing else; `--fix`
//! repairs the two it safely can.

use crate::common::*;
use crate::services::{self, Services};
use openim_release::clients::credentials::Credentials;
use openim_release::clients::registry::Registry;
use openim_release::oci::reference::RegistryPrefix;
use openim_release::oci::{self, Encoded};
use openim_release::secret::Secret;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

struct Released {
    s: &'static Services,
    plain: String,
    auth: String,
    deploy_url: String,
    src: TestRepo,
    _origin: tempfile::TempDir,
    /// The commit of v3.8.0.
    v380: String,
}

impl Released {
    fn bin(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = self.src.bin();
        let key = crate::build::credentials_key(&self.s.auth_registry);
        cmd.env("DOCKER_HOST", &self.s.docker_host)
            .env("GITHUB_TOKEN", &self.s.git_token)
            .env(format!("{key}_USERNAME"), &self.s.auth_user)
            .env(format!("{key}_PASSWORD"), &self.s.auth_password)
            .args(args);
        cmd
    }

    /// `audit ARGS --output json`: the exit code and the report.
    fn audit(&self, args: &[&str]) -> (i32, Value) {
        let out = self
            .bin(&["audit"])
            .args(args)
            .args(["--output", "json"])
            .output()
            .unwrap();
        let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap(), json)
    }

    /// The registry client of the test (with credentials for the auth one).
    fn registry(&self, ns: &str) -> (Registry, String) {
        let prefix = RegistryPrefix::parse(ns).unwrap();
        let creds = (prefix.host == self.s.auth_registry).then(|| Credentials {
            username: self.s.auth_user.clone(),
            password: Secret::new(self.s.auth_password.clone()).unwrap(),
            identity_token: false,
            source: "test".into(),
        });
        let ns_path = prefix.namespace.clone();
        (Registry::new(prefix, creds, false), ns_path)
    }

    fn manifest(&self, ns: &str, service: &str, reference: &str) -> Encoded {
        let (r, path) = self.registry(ns);
        let f = rt()
            .block_on(r.get_manifest(&format!("{path}/{service}"), reference))
            .unwrap()
            .unwrap_or_else(|| panic!("{ns}/{service}:{reference} is not there"));
        Encoded {
            media_type: f.media_type,
            bytes: f.bytes,
            digest: f.digest,
        }
    }

    fn put(&self, ns: &str, service: &str, reference: &str, m: &Encoded) {
        let (r, path) = self.registry(ns);
        rt().block_on(r.put_manifest(&format!("{path}/{service}"), reference, m))
            .unwrap();
    }

    /// DELETE a manifest by digest (what docker-registry 2.8 can delete).
    fn delete(&self, ns: &str, service: &str, digest: &str) {
        let (r, path) = self.registry(ns);
        let host = ns.split('/').next().unwrap();
        let url = format!("http://{host}/v2/{path}/{service}/manifests/{digest}");
        let mut req = r.request(reqwest::Method::DELETE, &url);
        if host == self.s.auth_registry {
            req = req.basic_auth(&self.s.auth_user, Some(&self.s.auth_password));
        }
        let resp = rt().block_on(async { req.send().await }).unwrap();
        assert_eq!(resp.status().as_u16(), 202, "DELETE {url}");
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Delete one tag on the disk of the test registry serving `host` (its
/// API deletes whole manifests, with every tag of them).
fn delete_tag_on_disk(host: &str, repo: &str, tag: &str) {
    let dir = PathBuf::from(
        std::env::var("OPENIM_RELEASE_SERVICES_DIR")
            .unwrap_or_else(|_| "/tmp/openim-release-services".into()),
    );
    let root = ["plain", "auth"]
        .iter()
        .filter_map(|kind| std::fs::read_to_string(dir.join(format!("registry-{kind}.yml"))).ok())
        .find(|cfg| cfg.contains(&format!("addr: {host}")))
        .and_then(|cfg| {
            cfg.lines()
                .find_map(|l| l.trim().strip_prefix("rootdirectory: ").map(PathBuf::from))
        })
        .unwrap_or_else(|| panic!("no registry config for {host} in {}", dir.display()));
    let path = root.join(format!(
        "docker/registry/v2/repositories/{repo}/_manifests/tags/{tag}"
    ));
    std::fs::remove_dir_all(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// v3.8.0, then v3.8.1 (only openim-api changed: the other services'
/// images are reused, their revision label v3.8.0's commit), each made by
/// `release --stage release` into both registries, deployed by push to the
/// deploy repository's main.
fn released() -> Released {
    let s = services::services();
    let plain = services::fresh_namespace(&s.registry, "audit");
    let auth = services::fresh_namespace(&s.auth_registry, "audit");
    let (deploy_url, name) = crate::gitops::deploy_remote(s, &plain);
    let src = crate::build::fixture(
        &[plain.clone(), auth.clone()],
        &["linux/amd64", "linux/arm64"],
    );
    let mut cfg = crate::deploy_fixture::read(src.path(), "openim-release.yaml");
    cfg.push_str(&format!(
        "deploy:\n  url: {deploy_url}\n  repository: openimsdk/{name}\n  base: main\n  mode: push\n  charts:\n    - path: charts/openim-server\n  manifests: [k8s/openim-api.yaml]\n  env_files: [docker-compose/.env]\nstages:\n  dev: {{ deploy: false }}\n  nightly: {{ deploy: false }}\n"
    ));
    src.write("openim-release.yaml", &cfg);
    src.git(&["add", "-A"]);
    src.git(&["commit", "-q", "-m", "deploy config"]);
    src.atag(&["v3.8.0"]);
    let v380 = src.head();
    let origin = bare_remote();
    src.git(&["remote", "add", "origin", origin.path().to_str().unwrap()]);
    src.git(&["push", "-q", "origin", "main", "--tags"]);
    let w = Released {
        s,
        plain,
        auth,
        deploy_url,
        src,
        _origin: origin,
        v380,
    };
    stdout_ok(&mut w.bin(&["release", "--stage", "release"]));
    w.src.write(
        "cmd/openim-api/main.txt",
        "openim-api binary, the fix for 3.8.1\n",
    );
    w.src.git(&["commit", "-q", "-am", "the fix for 3.8.1"]);
    stdout_ok(&mut w.bin(&["release", "--stage", "release", "--version", "3.8.1"]));
    w
}

/// A finding as the assertions name it: (kind, release or deploy branch,
/// service, registry, tag or platform).
type Seen = (String, String, String, String, String);

fn seen(report: &Value, w: &Released) -> BTreeSet<Seen> {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let registry = match f["registry"].as_str() {
                Some(r) if r == w.plain => "plain".to_string(),
                Some(r) if r == w.auth => "auth".to_string(),
                other => other.unwrap_or("-").to_string(),
            };
            let what = match f["release"].as_str() {
                Some(r) => r.to_string(),
                None => format!("deploy {}", s(&f["place"])),
            };
            let detail = if f["platform"].is_string() {
                s(&f["platform"])
            } else {
                s(&f["tag"])
            };
            (s(&f["kind"]), what, s(&f["service"]), registry, detail)
        })
        .collect()
}

fn set(items: &[(&str, &str, &str, &str, &str)]) -> BTreeSet<Seen> {
    items
        .iter()
        .map(|(a, b, c, d, e)| {
            (
                a.to_string(),
                b.to_string(),
                c.to_string(),
                d.to_string(),
                e.to_string(),
            )
        })
        .collect()
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn every_injected_drift_is_found_and_a_clean_release_has_none() {
    let w = released();

    // Clean: both releases, every service, both registries, the deploy.
    let (code, clean) = w.audit(&["--deploy"]);
    assert_eq!(code, 0, "{clean:#}");
    assert_eq!(clean["ok"], true);
    assert_eq!(clean["findings"], serde_json::json!([]), "{clean:#}");
    assert_eq!(clean["checked"]["releases"], 2);
    assert_eq!(clean["checked"]["services"], 3);
    assert_eq!(clean["checked"]["registries"], 2);
    // 2 × 3 own tags + the 3 aliases of v3.8.1, × 3 services × 2 registries.
    assert_eq!(clean["checked"]["tags"], (6 + 3) * 3 * 2);
    assert_eq!(
        clean["releases"][1]["aliases"],
        serde_json::json!(["3", "3.8", "latest"])
    );
    // Values of 3 subcharts × 2 registries? No: each names its repository;
    // the manifest and the .env name openim-api.
    assert_eq!(clean["checked"]["deploy_references"], 5, "{clean:#}");
    let text = stdout_ok(&mut w.bin(&["audit", "--deploy"]));
    assert!(
        text.starts_with("ok: 2 releases × 3 services × 2 registries (54 tags, "),
        "{text}"
    );

    // a. A deleted tag: 3.8.1 of openim-push in the plain registry.
    let plain_path = RegistryPrefix::parse(&w.plain).unwrap().namespace;
    delete_tag_on_disk(&w.s.registry, &format!("{plain_path}/openim-push"), "3.8.1");

    // b. Without arm64: the htpasswd registry loses the arm64 image of
    // openim-api v3.8.0.
    let index: Value =
        serde_json::from_slice(&w.manifest(&w.auth, "openim-api", "v3.8.0").bytes).unwrap();
    let arm64 = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == "arm64")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    w.delete(&w.auth, "openim-api", &arm64);

    // c. Diverging digests: v3.8.1 of openim-rpc-user names another index
    // in the htpasswd registry (same images, one more annotation).
    let original = w.manifest(&w.auth, "openim-rpc-user", "v3.8.1");
    let mut other: Value = serde_json::from_slice(&original.bytes).unwrap();
    other["annotations"]["org.example.pushed-by"] = "someone else".into();
    let other = Encoded::of(oci::MT_OCI_INDEX, &other);
    w.put(&w.auth, "openim-rpc-user", &other.digest, &other);
    w.put(&w.auth, "openim-rpc-user", "v3.8.1", &other);

    // d. latest on the older release: openim-api in the plain registry.
    let older = w.manifest(&w.plain, "openim-api", "v3.8.0");
    w.put(&w.plain, "openim-api", "latest", &older);

    // e. The deploy repository points at a tag that was never pushed.
    let deploy = crate::gitops::clone_branch(w.s, &w.deploy_url, "main");
    let manifest = crate::deploy_fixture::read(deploy.path(), "k8s/openim-api.yaml");
    let (line, _) = manifest
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("openim-api:release-v3.8.1@sha256:"))
        .unwrap_or_else(|| panic!("{manifest}"));
    let edited: String = manifest
        .lines()
        .map(|l| {
            if l.contains("openim-api:release-v3.8.1@") {
                format!("          image: {}/openim-api:v3.8.9", w.plain)
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    std::fs::write(deploy.path().join("k8s/openim-api.yaml"), edited).unwrap();
    git(
        deploy.path(),
        &["commit", "-q", "-am", "pin a version by hand"],
    );
    git(deploy.path(), &["push", "-q", "origin", "main"]);

    // f. A wrong revision label: v3.8.0 of openim-push rebuilt from a
    // commit off its history where openim-push's sources differ, and pushed
    // under its tags to both registries.
    w.src.git(&["checkout", "-q", "-b", "side", &w.v380]);
    w.src.write(
        "cmd/openim-push/main.txt",
        "openim-push binary, an experiment\n",
    );
    w.src.git(&["commit", "-q", "-am", "an experiment"]);
    let side = w.src.head();
    stdout_ok(&mut w.bin(&[
        "build",
        "--tag",
        "release-v3.8.0",
        "--tag",
        "v3.8.0",
        "--tag",
        "3.8.0",
        "--service",
        "openim-push",
        "--rebuild",
    ]));
    w.src.git(&["checkout", "-q", "main"]);

    let place = format!("deploy main: k8s/openim-api.yaml:{}", line + 1);
    let injected = set(&[
        ("missing-tag", "v3.8.1", "openim-push", "plain", "3.8.1"),
        (
            "missing-platform",
            "v3.8.0",
            "openim-api",
            "auth",
            "linux/arm64",
        ),
        (
            "digest-mismatch",
            "v3.8.1",
            "openim-rpc-user",
            "auth",
            "v3.8.1",
        ),
        ("alias", "v3.8.1", "openim-api", "plain", "latest"),
        ("deploy-missing", &place, "openim-api", "plain", "v3.8.9"),
        ("revision", "v3.8.0", "openim-push", "plain", "-"),
        ("revision", "v3.8.0", "openim-push", "auth", "-"),
    ]);
    let (code, drift) = w.audit(&["--deploy"]);
    assert_eq!(code, 1, "{drift:#}");
    assert_eq!(drift["ok"], false);
    assert_eq!(seen(&drift, &w), injected, "{drift:#}");
    let by_kind = |kind: &str| -> Vec<Value> {
        drift["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == kind)
            .cloned()
            .collect()
    };
    let revision = &by_kind("revision")[0];
    assert_eq!(revision["found"], side.as_str());
    assert_eq!(revision["expected"], w.v380.as_str());
    assert_eq!(revision["fix"]["action"], "needs-rebuild");
    assert!(
        revision["detail"].as_str().unwrap().ends_with(&format!(
            "was built from {}, not from the release's commit {}: cmd/openim-push/main.txt differs",
            &side[..7],
            &w.v380[..7]
        )),
        "{revision}"
    );
    assert_eq!(by_kind("missing-tag")[0]["fix"]["action"], "retag");
    assert_eq!(by_kind("alias")[0]["fix"]["action"], "retag");
    let platform = &by_kind("missing-platform")[0];
    assert_eq!(platform["fix"]["action"], "needs-mirror");
    assert_eq!(platform["fix"]["from"], w.plain.as_str());
    assert_eq!(
        by_kind("digest-mismatch")[0]["found"],
        other.digest.as_str()
    );
    assert_eq!(by_kind("digest-mismatch")[0]["fix"]["action"], "review");
    // The table says the same, one row each.
    let out = w.bin(&["audit", "--deploy"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout)
        .replace(&w.plain, "[plain]")
        .replace(&w.auth, "[auth]");
    assert_eq!(table.lines().count(), 1 + 7 + 1, "{table}");
    assert!(table.lines().last().unwrap().starts_with("drift: 7 problems (2 repairable with --fix, 1 needs a mirror, 2 need a rebuild, 1 needs a review, 1 other)"), "{table}");

    // --fix: the tag written again, latest re-pointed; the rest stays.
    let (code, fixed) = w.audit(&["--deploy", "--fix"]);
    assert_eq!(code, 1, "{fixed:#}");
    assert_eq!(fixed["fixed"], 2, "{fixed:#}");
    let (code, after) = w.audit(&["--deploy"]);
    assert_eq!(code, 1);
    let mut left = injected.clone();
    left.retain(|(kind, ..)| kind != "missing-tag" && kind != "alias");
    assert_eq!(seen(&after, &w), left, "{after:#}");
    assert_eq!(
        w.manifest(&w.plain, "openim-api", "latest").digest,
        w.manifest(&w.plain, "openim-api", "v3.8.1").digest
    );
    assert_eq!(
        w.manifest(&w.plain, "openim-push", "3.8.1").digest,
        w.manifest(&w.plain, "openim-push", "v3.8.1").digest
    );

    // One release, one service: only what is theirs.
    let (code, one) = w.audit(&["--tag", "v3.8.1", "--service", "openim-rpc-user"]);
    assert_eq!(code, 1);
    assert_eq!(
        seen(&one, &w),
        set(&[(
            "digest-mismatch",
            "v3.8.1",
            "openim-rpc-user",
            "auth",
            "v3.8.1"
        )])
    );
    let (code, last) = w.audit(&["--last", "1", "--service", "openim-api"]);
    assert_eq!(code, 0, "{last:#}");
    assert_eq!(last["releases"][0]["git_tag"], "v3.8.1");
}

/// Bad input is exit 2, before any registry is asked.
#[test]
fn bad_input_is_exit_2() {
    let repo = crate::build::fixture(&["127.0.0.1:9/x".into()], &["linux/amd64"]);
    repo.atag(&["v1.0.0"]);
    repo.commit("next");
    repo.atag(&["v1.0.1-rc.0"]);
    let err = fails_with(repo.bin().args(["audit", "--tag", "v9.9.9"]), 2);
    assert!(
        err.contains("--tag v9.9.9 is not a release tag of this repository; the newest are v1.0.0"),
        "{err}"
    );
    let err = fails_with(repo.bin().args(["audit", "--tag", "v1.0.1-rc.0"]), 2);
    assert!(
        err.contains("is not a release: the audit checks releases (vX.Y.Z) and patches"),
        "{err}"
    );
    let err = fails_with(repo.bin().args(["audit", "--last", "0"]), 2);
    assert!(err.contains("--last 0 audits nothing"), "{err}");
    let err = fails_with(repo.bin().args(["audit", "--service", "nope"]), 2);
    assert!(err.contains("--service nope: no such service"), "{err}");
    let err = fails_with(repo.bin().args(["audit", "--deploy"]), 2);
    assert!(err.contains("--deploy: no `deploy:` section"), "{err}");
    let err = fails_with(
        repo.bin().args(["audit", "--tag", "v1.0.0", "--last", "1"]),
        2,
    );
    assert!(err.contains("cannot be used with"), "{err}");

    let untagged = crate::build::fixture(&["127.0.0.1:9/x".into()], &["linux/amd64"]);
    let err = fails_with(untagged.bin().arg("audit"), 2);
    assert!(
        err.contains("no release tags (vX.Y.Z, vX.Y.Z-patch.N) in this clone"),
        "{err}"
    );

    let origin = bare_remote();
    repo.git(&["remote", "add", "origin", origin.path().to_str().unwrap()]);
    repo.git(&["push", "-q", "origin", "main", "--tags"]);
    let shallow = clone_of(origin.path(), &["--depth", "1"]);
    let err = fails_with(bin(shallow.path()).arg("audit"), 2);
    assert!(err.contains("this clone is shallow"), "{err}");
}

/// A registry that does not answer is a failure (exit 1), named.
#[test]
fn an_unreachable_registry_is_exit_1() {
    let repo = crate::build::fixture(&["127.0.0.1:9/x".into()], &["linux/amd64"]);
    repo.atag(&["v1.0.0"]);
    let err = fails_with(repo.bin().arg("audit"), 1);
    assert!(
        err.contains("registry 127.0.0.1:9/x is not usable"),
        "{err}"
    );
}

/// A plain-registry client for the other tests' fixtures.
fn plain(ns: &str) -> (Registry, String) {
    let prefix = RegistryPrefix::parse(ns).unwrap();
    let path = prefix.namespace.clone();
    (Registry::new(prefix, None, false), path)
}

/// The digest of `arch`'s image in the index `ns/service:reference` (the
/// plain registry).
pub fn platform_digest(ns: &str, service: &str, reference: &str, arch: &str) -> String {
    let (r, path) = plain(ns);
    let f = rt()
        .block_on(r.get_manifest(&format!("{path}/{service}"), reference))
        .unwrap()
        .unwrap();
    let index: Value = serde_json::from_slice(&f.bytes).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == arch)
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Point `ns/service:tag` at what `reference` names (the plain registry).
pub fn retag(ns: &str, service: &str, reference: &str, tag: &str) {
    let (r, path) = plain(ns);
    let repo = format!("{path}/{service}");
    rt().block_on(async {
        let f = r.get_manifest(&repo, reference).await.unwrap().unwrap();
        let m = Encoded {
            media_type: f.media_type,
            bytes: f.bytes,
            digest: f.digest,
        };
        r.put_manifest(&repo, tag, &m).await.unwrap();
    });
}

/// The digest `ns/service:reference` names (the plain registry).
pub fn digest(ns: &str, service: &str, reference: &str) -> String {
    let (r, path) = plain(ns);
    rt().block_on(r.manifest_digest(&format!("{path}/{service}"), reference))
        .unwrap()
        .unwrap()
}

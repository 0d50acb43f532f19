//! Cross-repository blob mounts in `build`'s push, against the three real
//! registries (plain, htpasswd, bearer token): the services' shared layer
//! is sent once per registry and mounted into the other repositories, the
//! bytes sent are reported, and every image is complete. Also the fallback:
//! a registry that does not mount (202) gets the bytes.

use crate::build::{credentials_key, fixture, SERVICES};
use crate::common::*;
use crate::need_services;
use crate::services::{self, Services};
use openim_release::clients::credentials::Credentials;
use openim_release::clients::registry::{BlobPush, Registry};
use openim_release::oci::reference::RegistryPrefix;
use openim_release::secret::Secret;
use serde_json::Value;
use std::collections::BTreeMap;

/// The three registries, each with its namespace and login.
fn registries(s: &Services, prefix: &str) -> Vec<(String, Option<(String, String)>)> {
    let login = Some((s.auth_user.clone(), s.auth_password.clone()));
    vec![
        (
            format!("{}/{}", s.registry, services::unique_namespace(prefix)),
            None,
        ),
        (
            format!("{}/{}", s.auth_registry, services::unique_namespace(prefix)),
            login.clone(),
        ),
        (
            format!(
                "{}/{}",
                s.token_registry,
                services::unique_namespace(prefix)
            ),
            login,
        ),
    ]
}

fn build(
    s: &Services,
    repo: &TestRepo,
    regs: &[(String, Option<(String, String)>)],
) -> assert_cmd::Command {
    let mut cmd = repo.bin();
    cmd.env("DOCKER_HOST", &s.docker_host);
    for (ns, login) in regs {
        if let Some((user, password)) = login {
            let key = credentials_key(ns.split('/').next().unwrap());
            cmd.env(format!("{key}_USERNAME"), user)
                .env(format!("{key}_PASSWORD"), password);
        }
    }
    cmd.arg("build");
    cmd
}

/// The distinct blobs (config and layers) of the images pushed under `tag`
/// in `ns`: digest → size, from the registry's own manifests.
fn distinct_blobs(ns: &str, tag: &str, login: Option<(&str, &str)>) -> BTreeMap<String, u64> {
    let mut blobs = BTreeMap::new();
    for svc in SERVICES {
        let m = services::inspect_raw(&format!("{ns}/{svc}:{tag}"), login).unwrap();
        for d in std::iter::once(&m["config"]).chain(m["layers"].as_array().unwrap()) {
            blobs.insert(
                d["digest"].as_str().unwrap().to_string(),
                d["size"].as_u64().unwrap(),
            );
        }
    }
    blobs
}

/// Every layer of the image can be read back from its repository.
fn assert_complete(reference: &str, login: Option<(&str, &str)>) {
    let out = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new("skopeo");
    cmd.args(["--insecure-policy", "copy", "--src-tls-verify=false"]);
    if let Some((u, p)) = login {
        cmd.arg(format!("--src-creds={u}:{p}"));
    }
    let copy = cmd
        .arg(format!("docker://{reference}"))
        .arg(format!("dir:{}", out.path().display()))
        .output()
        .unwrap();
    assert!(
        copy.status.success(),
        "skopeo copy {reference}: {}",
        String::from_utf8_lossy(&copy.stderr)
    );
}

fn uploads<'a>(json: &'a Value, ns: &str) -> &'a Value {
    json["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["registry"] == ns)
        .unwrap_or_else(|| panic!("no uploads for {ns} in {json}"))
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn shared_layers_are_sent_once_per_registry_and_mounted_elsewhere() {
    let s = need_services!();
    let regs = registries(s, "mount");
    let names: Vec<String> = regs.iter().map(|(n, _)| n.clone()).collect();
    let repo = fixture(&names, &["linux/amd64"]);
    // All three services at once: they race for the shared layer.
    let json = json_ok(build(s, &repo, &regs).args(["--tag", "v1", "--jobs", "3"]));
    for (ns, login) in &regs {
        let login = login.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        let blobs = distinct_blobs(ns, "v1", login);
        // 3 configs + 3 binary layers + 1 config/ layer shared by all.
        assert_eq!(blobs.len(), 7, "{ns}: {blobs:?}");
        let u = uploads(&json, ns);
        assert_eq!(u["uploaded"], 7, "{ns}: {u}");
        assert_eq!(u["mounted"], 2, "{ns}: {u}");
        assert_eq!(u["present"], 0, "{ns}: {u}");
        assert_eq!(u["bytes"], blobs.values().sum::<u64>(), "{ns}: {u}");
        for svc in SERVICES {
            assert_complete(&format!("{ns}/{svc}:v1"), login);
        }
    }
    // The token server was asked for a token that may pull from the
    // repository the blob came from and push to the one it went to.
    let token_ns = &regs[2].0;
    let path = token_ns.split_once('/').unwrap().1.replace('/', "%2F");
    let log = std::fs::read_to_string(&s.token_log).unwrap_or_default();
    assert!(
        log.lines()
            .any(|l| l.contains(&format!("scope=repository%3A{path}"))
                && l.contains("%3Apull&")
                && l.matches("scope=").count() == 2
                && l.ends_with(" 200")),
        "no two-scope token request for {path}: {log}"
    );

    // Without mounts (OPENIM_RELEASE_NO_BLOB_MOUNT), into new repositories:
    // the shared layer is sent to each of them.
    let fresh = registries(s, "nomount");
    let names: Vec<String> = fresh.iter().map(|(n, _)| n.clone()).collect();
    let repo2 = fixture(&names, &["linux/amd64"]);
    let without = json_ok(
        build(s, &repo2, &fresh)
            .env("OPENIM_RELEASE_NO_BLOB_MOUNT", "1")
            .args(["--tag", "v1", "--jobs", "3"]),
    );
    for ((ns, _), (old, _)) in fresh.iter().zip(&regs) {
        let u = uploads(&without, ns);
        assert_eq!(u["uploaded"], 9, "{ns}: {u}");
        assert_eq!(u["mounted"], 0, "{ns}: {u}");
        let shared_layer = uploads(&json, old)["bytes"].as_u64().unwrap();
        assert!(u["bytes"].as_u64().unwrap() > shared_layer, "{u}");
    }
}

/// A registry that does not mount answers 202 and opens an upload session:
/// the blob is sent there. Here the repository named as the source lacks
/// the blob, which every registry answers that way; with a bearer token, the
/// token asked for covers both repositories.
#[test]
#[ignore = "needs the services of scripts/test"]
fn a_refused_mount_falls_back_to_an_upload() {
    let s = need_services!();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let body = format!("a blob of {}", services::unique_namespace("fallback"));
    let path = dir.path().join("blob");
    std::fs::write(&path, &body).unwrap();
    let digest = format!("sha256:{}", crate::build::sha256_hex(body.as_bytes()));
    for (ns, login) in registries(s, "fallback") {
        let prefix = RegistryPrefix::parse(&ns).unwrap();
        let creds = login.map(|(username, password)| Credentials {
            username,
            password: Secret::new(password).unwrap(),
            source: "the test".into(),
            identity_token: false,
        });
        let registry = Registry::new(prefix.clone(), creds, true);
        let to = prefix.repository("to");
        let from = prefix.repository("empty");
        rt.block_on(async {
            let done = registry
                .push_blob_mounting(&to, &digest, &path, Some(&from))
                .await
                .unwrap();
            assert_eq!(done, BlobPush::Uploaded, "{ns}");
            assert!(registry.has_blob(&to, &digest).await.unwrap(), "{ns}");
            // Now `to` has it: a mount from there is a mount.
            let other = prefix.repository("other");
            let done = registry
                .push_blob_mounting(&other, &digest, &path, Some(&to))
                .await
                .unwrap();
            assert_eq!(done, BlobPush::Mounted, "{ns}");
            assert!(registry.has_blob(&other, &digest).await.unwrap(), "{ns}");
        });
    }
}

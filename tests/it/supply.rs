//! Supply-chain attachments (docs/supply-chain.md): SBOMs, provenance and
//! cosign-compatible signatures beside the images, in the real registries
//! (docker-registry has no referrers API: cosign's tag scheme), signatures
//! checked with the openssl CLI, a registry that refuses them behind the
//! fault proxy, `attest` and `verify`.

use crate::build::{fixture, sha256_hex};
use crate::common::*;
use crate::need_services;
use crate::services::{self, Services};
use base64::Engine as _;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const MODINFO: &str = "path\tgithub.com/openimsdk/open-im-server/v3/cmd/openim-api\nmod\tgithub.com/openimsdk/open-im-server/v3\t(devel)\t\ndep\tgithub.com/gin-gonic/gin\tv1.9.1\th1:4idEAncQnU5cB7BeOkPtxjfCSye0AAm1R0RVIqJ+Jmg=\n";

/// An ECDSA P-256 key pair made by openssl: (private PEM, public PEM).
fn openssl_keys(dir: &Path) -> (PathBuf, PathBuf) {
    let key = dir.join("cosign.key");
    let public = dir.join("cosign.pub");
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    run(&[
        "ecparam",
        "-genkey",
        "-name",
        "prime256v1",
        "-noout",
        "-out",
        key.to_str().unwrap(),
    ]);
    run(&[
        "ec",
        "-in",
        key.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    (key, public)
}

/// `message` signed by `sig_der` under `public`, as openssl checks it.
fn openssl_verifies(dir: &Path, public: &Path, message: &[u8], sig_b64: &str) -> bool {
    let msg = dir.join("message");
    let sig = dir.join("sig.der");
    std::fs::write(&msg, message).unwrap();
    std::fs::write(
        &sig,
        base64::engine::general_purpose::STANDARD
            .decode(sig_b64)
            .unwrap(),
    )
    .unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public)
        .arg("-signature")
        .arg(&sig)
        .arg(&msg)
        .output()
        .unwrap();
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verified OK")
}

/// A blob of a plain (no auth) registry, over HTTP.
fn blob(registry: &str, repo: &str, digest: &str) -> Vec<u8> {
    let out = Command::new("curl")
        .args([
            "-sSfL",
            &format!("http://{registry}/v2/{repo}/blobs/{digest}"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(format!("sha256:{}", sha256_hex(&out.stdout)), digest);
    out.stdout
}

fn cosign_tag(digest: &str, suffix: &str) -> String {
    format!("{}.{suffix}", digest.replace(':', "-"))
}

/// The SLSA statement attached as cosign's `.att` of `digest` in `ns` (on
/// the plain registry), from its DSSE envelope (the signature unchecked).
fn provenance_statement(registry: &str, ns: &str, service: &str, digest: &str) -> Value {
    let att = attachment_layers(ns, service, digest, "att");
    let path = ns.split_once('/').unwrap().1;
    let envelope: Value = serde_json::from_slice(&blob(
        registry,
        &format!("{path}/{service}"),
        att[0]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    let statement = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&statement).unwrap()
}

/// The layers of the manifest under cosign's tag for `digest`.
fn attachment_layers(ns: &str, service: &str, digest: &str, suffix: &str) -> Vec<Value> {
    let m = services::inspect_raw(
        &format!("{ns}/{service}:{}", cosign_tag(digest, suffix)),
        None,
    )
    .unwrap_or_else(|e| panic!("no {suffix} of {digest}: {e}"));
    m["layers"].as_array().unwrap().clone()
}

/// `attest --tag v1 --service openim-api --sign-key KEY` in `repo`.
fn attest_v1(repo: &TestRepo, key: &Path) -> assert_cmd::Command {
    let mut cmd = repo.bin();
    cmd.args([
        "attest",
        "--tag",
        "v1",
        "--service",
        "openim-api",
        "--sign-key",
    ])
    .arg(key);
    cmd
}

/// `verify --tag v1 --service openim-api --key PUBLIC` in `repo`.
fn verify_v1(repo: &TestRepo, public: &Path) -> assert_cmd::Command {
    let mut cmd = repo.bin();
    cmd.args(["verify", "--tag", "v1", "--service", "openim-api", "--key"])
        .arg(public);
    cmd
}

fn build(s: &Services, repo: &TestRepo) -> assert_cmd::Command {
    let mut cmd = repo.bin();
    cmd.env("DOCKER_HOST", &s.docker_host).arg("build");
    cmd
}

/// One service, a Go binary in it, two platforms.
fn go_fixture(registries: &[String]) -> TestRepo {
    let repo = fixture(registries, &["linux/amd64", "linux/arm64"]);
    let go = openim_release::supply::gobuild::fake_go_binary("go1.22.5", MODINFO, true);
    std::fs::write(repo.path().join("cmd/openim-api/openim-api"), go).unwrap();
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "a Go binary"]);
    repo
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn build_signs_attests_and_attaches_sboms_as_cosign_tags_verified_by_openssl() {
    let s = need_services!();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = openssl_keys(keys.path());
    let ns = services::fresh_namespace(&s.registry, "supply");
    let repo = go_fixture(std::slice::from_ref(&ns));
    let json = json_ok(
        build(s, &repo)
            .args(["--tag", "v1", "--service", "openim-api", "--sign-key"])
            .arg(&key),
    );
    let img = &json["images"][0];
    let digest = img["digest"].as_str().unwrap().to_string();
    let sc = &img["supply_chain"];
    assert_eq!(sc["signed"], true, "{sc}");
    let r = &sc["registries"][0];
    assert_eq!(r["scheme"], "tags", "{sc}");
    assert!(r.get("error").is_none(), "{sc}");
    for want in [
        "signature",
        "provenance",
        "sbom linux/amd64",
        "sbom linux/arm64",
    ] {
        assert!(
            r["attached"].as_array().unwrap().iter().any(|a| a == want),
            "{want}: {sc}"
        );
    }
    let path = ns.split_once('/').unwrap().1;
    let repository = format!("{path}/openim-api");

    // The signature: cosign's payload naming the digest, signed by the key
    // (checked by openssl, not by our code).
    let sig = attachment_layers(&ns, "openim-api", &digest, "sig");
    assert_eq!(
        sig[0]["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let payload = blob(&s.registry, &repository, sig[0]["digest"].as_str().unwrap());
    let p: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(p["critical"]["image"]["docker-manifest-digest"], digest);
    assert_eq!(
        p["critical"]["identity"]["docker-reference"],
        format!("{ns}/openim-api")
    );
    let signature = sig[0]["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .unwrap();
    assert!(openssl_verifies(keys.path(), &public, &payload, signature));
    assert!(!openssl_verifies(
        keys.path(),
        &public,
        b"another payload",
        signature
    ));

    // The provenance: a DSSE envelope (signature checked by openssl over
    // its pre-authentication encoding) of an SLSA v1 statement.
    let att = attachment_layers(&ns, "openim-api", &digest, "att");
    assert_eq!(
        att[0]["annotations"]["predicateType"],
        "https://slsa.dev/provenance/v1"
    );
    let envelope: Value = serde_json::from_slice(&blob(
        &s.registry,
        &repository,
        att[0]["digest"].as_str().unwrap(),
    ))
    .unwrap();
    let statement = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    let mut pae = format!(
        "DSSEv1 28 application/vnd.in-toto+json {} ",
        statement.len()
    )
    .into_bytes();
    pae.extend_from_slice(&statement);
    assert!(openssl_verifies(
        keys.path(),
        &public,
        &pae,
        envelope["signatures"][0]["sig"].as_str().unwrap()
    ));
    let st: Value = serde_json::from_slice(&statement).unwrap();
    assert_eq!(st["subject"][0]["name"], format!("{ns}/openim-api"));
    assert_eq!(
        st["subject"][0]["digest"]["sha256"],
        digest.trim_start_matches("sha256:")
    );
    let def = &st["predicate"]["buildDefinition"];
    assert_eq!(
        def["resolvedDependencies"][0]["digest"]["gitCommit"],
        repo.head()
    );
    assert_eq!(
        def["externalParameters"]["args"]["BINARY_NAME"],
        "openim-api"
    );
    assert_eq!(
        def["externalParameters"]["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
    let dockerfile =
        std::fs::read(repo.path().join("build/images/openim-server/Dockerfile")).unwrap();
    assert_eq!(
        def["resolvedDependencies"][1]["digest"]["sha256"],
        sha256_hex(&dockerfile)
    );

    // An SBOM per platform manifest, with the Go modules of the binary.
    let index = services::inspect_raw(&format!("{ns}/openim-api:v1"), None).unwrap();
    for m in index["manifests"].as_array().unwrap() {
        let layers = attachment_layers(&ns, "openim-api", m["digest"].as_str().unwrap(), "sbom");
        let doc: Value = serde_json::from_slice(&blob(
            &s.registry,
            &repository,
            layers[0]["digest"].as_str().unwrap(),
        ))
        .unwrap();
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        let text = doc.to_string();
        assert!(
            text.contains("pkg:golang/github.com/gin-gonic/gin@v1.9.1"),
            "{text}"
        );
        assert!(text.contains("/openim/config/openim.yaml"), "{text}");
        assert!(text.contains(&format!(
            "@sha256%3A{}",
            m["digest"].as_str().unwrap().trim_start_matches("sha256:")
        )));
    }

    // `verify` with the public key: everything there.
    let out = stdout_ok(&mut verify_v1(&repo, &public));
    assert!(out.contains("verified: 1 image"), "{out}");
    // Another key: the signature does not verify; exit 1, the table says so.
    let other = tempfile::tempdir().unwrap();
    let (_, other_public) = openssl_keys(other.path());
    let out = verify_v1(&repo, &other_public).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("MISSING") && text.contains("none by this key"),
        "{text}"
    );

    // A re-run: unchanged, the same digest; nothing new to attach.
    let again = json_ok(
        build(s, &repo)
            .args(["--tag", "v1", "--service", "openim-api", "--sign-key"])
            .arg(&key),
    );
    assert_eq!(again["images"][0]["status"], "unchanged");
    assert_eq!(again["images"][0]["digest"], digest);
    let out = stdout_ok(&mut attest_v1(&repo, &key));
    assert!(out.contains("complete, nothing to add"), "{out}");
    assert_eq!(
        services::digest_of(&format!("{ns}/openim-api:v1"), None).unwrap(),
        digest
    );
    // The key never shows, even in the debug log.
    let key_text = std::fs::read_to_string(&key).unwrap();
    let secret_line = key_text.lines().nth(1).unwrap();
    let out = repo
        .bin()
        .args(["-vv", "attest", "--tag", "v1", "--service", "openim-api"])
        .env("OPENIM_RELEASE_SIGN_KEY", &key_text)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for stream in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains(secret_line));
    }
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn a_registry_that_refuses_attachments_keeps_images_and_tags_and_is_reported() {
    use crate::proxy::{Fault, Proxy};
    let s = need_services!();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = openssl_keys(keys.path());
    // Refuses every manifest under a cosign tag (`sha256-<hex>.sig`), as a
    // registry that takes images only.
    let proxy = Proxy::start(
        &s.registry,
        Box::new(|_, method, path| {
            if method == "PUT" && path.contains("/manifests/sha256-") {
                Fault::Status(400)
            } else {
                Fault::Pass
            }
        }),
    );
    let name = services::unique_namespace("refuse");
    let direct = format!("{}/{name}", s.registry);
    let via_proxy = format!("127.0.0.1:{}/{name}-p", proxy.addr.port());
    let repo = fixture(
        &[direct.clone(), via_proxy.clone()],
        &["linux/amd64", "linux/arm64"],
    );
    let out = build(s, &repo)
        .args([
            "--tag",
            "v1",
            "--service",
            "openim-api",
            "--output",
            "json",
            "--sign-key",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{via_proxy} refused the supply-chain attachments")),
        "{stderr}"
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let img = &json["images"][0];
    let digest = img["digest"].as_str().unwrap();
    let regs = img["supply_chain"]["registries"].as_array().unwrap();
    let of = |r: &str| regs.iter().find(|x| x["registry"] == r).unwrap().clone();
    assert!(of(&direct).get("error").is_none(), "{regs:?}");
    assert!(
        of(&via_proxy)["error"]
            .as_str()
            .unwrap()
            .contains("HTTP 400"),
        "{regs:?}"
    );
    // Both registries have the image and the tag, with the same digest:
    // attachments never change it.
    assert_eq!(
        services::digest_of(&format!("{direct}/openim-api:v1"), None).unwrap(),
        digest
    );
    let behind = via_proxy.replacen(&format!("127.0.0.1:{}", proxy.addr.port()), &s.registry, 1);
    assert_eq!(
        services::digest_of(&format!("{behind}/openim-api:v1"), None).unwrap(),
        digest
    );

    // `verify` in both: exit 1, the table names what is missing where.
    let out = verify_v1(&repo, &public).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let table = String::from_utf8_lossy(&out.stdout);
    let line_of = |r: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{r}/openim-api:v1")))
            .unwrap_or_else(|| panic!("{r}: {table}"))
            .to_string()
    };
    assert!(!line_of(&direct).contains("MISSING"), "{table}");
    assert_eq!(line_of(&via_proxy).matches("MISSING").count(), 3, "{table}");
    assert!(table.contains("not verified: 1 of 2 images"), "{table}");
    // Only the registry that has them: verified.
    let out = stdout_ok(
        repo.bin()
            .args([
                "verify",
                "--tag",
                "v1",
                "--service",
                "openim-api",
                "--registry",
                &direct,
                "--key",
            ])
            .arg(&public),
    );
    assert!(out.contains("verified: 1 image"), "{out}");
    // `attest` retries without rebuilding: the refusing registry refuses
    // again (exit 1), the other has everything.
    let out = attest_v1(&repo, &key).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{direct} openim-api v1 {digest}: complete")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{via_proxy} openim-api v1 {digest}: refused")),
        "{text}"
    );
    // The same registry without the proxy takes them: attached there now.
    let out = stdout_ok(attest_v1(&repo, &key).args(["--registry", &behind]));
    assert!(
        out.contains("attached sbom linux/amd64, sbom linux/arm64, provenance, signature"),
        "{out}"
    );
    let out = stdout_ok(
        repo.bin()
            .args([
                "verify",
                "--tag",
                "v1",
                "--service",
                "openim-api",
                "--registry",
                &behind,
                "--key",
            ])
            .arg(&public),
    );
    assert!(out.contains("verified: 1 image"), "{out}");
    assert_eq!(
        services::digest_of(&format!("{behind}/openim-api:v1"), None).unwrap(),
        digest
    );
    // The provenance `attest` wrote names the Dockerfile by its digest at
    // the image's revision, as a fresh build's does.
    let st = provenance_statement(&s.registry, &behind, "openim-api", digest);
    let deps = st["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap()
        .clone();
    let dockerfile =
        std::fs::read(repo.path().join("build/images/openim-server/Dockerfile")).unwrap();
    assert!(
        deps.iter().any(|d| d["annotations"]["role"] == "dockerfile"
            && d["digest"]["sha256"] == sha256_hex(&dockerfile).as_str()),
        "{deps:?}"
    );
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn attachments_in_htpasswd_and_token_registries() {
    let s = need_services!();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = openssl_keys(keys.path());
    let auth = services::fresh_namespace(&s.auth_registry, "sc-auth");
    let token = services::fresh_namespace(&s.token_registry, "sc-token");
    let repo = fixture(&[auth.clone(), token.clone()], &["linux/amd64"]);
    let creds = |cmd: &mut assert_cmd::Command| {
        for r in [&s.auth_registry, &s.token_registry] {
            let k = crate::build::credentials_key(r);
            cmd.env(format!("{k}_USERNAME"), &s.auth_user)
                .env(format!("{k}_PASSWORD"), &s.auth_password);
        }
    };
    let mut cmd = build(s, &repo);
    creds(&mut cmd);
    let json = json_ok(
        cmd.args(["--tag", "v1", "--service", "openim-api", "--sign-key"])
            .arg(&key),
    );
    let regs = json["images"][0]["supply_chain"]["registries"]
        .as_array()
        .unwrap();
    assert_eq!(regs.len(), 2);
    for r in regs {
        assert!(r.get("error").is_none(), "{r}");
        assert_eq!(r["scheme"], "tags", "{r}");
        assert_eq!(r["attached"].as_array().unwrap().len(), 3, "{r}");
    }
    let mut cmd = verify_v1(&repo, &public);
    creds(&mut cmd);
    let out = stdout_ok(&mut cmd);
    assert!(out.contains("verified: 2 images"), "{out}");
    assert!(!out.contains(&s.auth_password), "{out}");
    // The signature tag is there, as cosign names it.
    let digest = json["images"][0]["digest"].as_str().unwrap();
    let sig = services::inspect_raw(
        &format!("{auth}/openim-api:{}", cosign_tag(digest, "sig")),
        Some((&s.auth_user, &s.auth_password)),
    )
    .unwrap();
    assert_eq!(sig["layers"].as_array().unwrap().len(), 1);
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn a_registry_with_the_referrers_api_gets_oci_referrers_and_no_cosign_tags() {
    use crate::proxy::{Fault, Proxy};
    let s = need_services!();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = openssl_keys(keys.path());
    let proxy = Proxy::with_referrers(&s.registry, Box::new(|_, _, _| Fault::Pass));
    let ns = format!(
        "127.0.0.1:{}/{}",
        proxy.addr.port(),
        services::unique_namespace("referrers")
    );
    let repo = fixture(std::slice::from_ref(&ns), &["linux/amd64", "linux/arm64"]);
    let json = json_ok(
        build(s, &repo)
            .args(["--tag", "v1", "--service", "openim-api", "--sign-key"])
            .arg(&key),
    );
    let img = &json["images"][0];
    let digest = img["digest"].as_str().unwrap();
    let r = &img["supply_chain"]["registries"][0];
    assert_eq!(r["scheme"], "referrers", "{r}");
    assert_eq!(r["attached"].as_array().unwrap().len(), 4, "{r}");
    // No cosign tags: the attachments are found through their subject.
    for suffix in ["sig", "att"] {
        assert!(services::inspect_raw(
            &format!("{ns}/openim-api:{}", cosign_tag(digest, suffix)),
            None
        )
        .is_err());
    }
    let out = stdout_ok(&mut verify_v1(&repo, &public));
    assert!(out.contains("verified (OCI referrer)"), "{out}");
    assert!(out.contains("verified: 1 image"), "{out}");
    // The image itself is untouched: the same digest behind the proxy.
    let behind = ns.replacen(&format!("127.0.0.1:{}", proxy.addr.port()), &s.registry, 1);
    assert_eq!(
        services::digest_of(&format!("{behind}/openim-api:v1"), None).unwrap(),
        digest
    );
    let out = stdout_ok(&mut attest_v1(&repo, &key));
    assert!(out.contains("complete, nothing to add"), "{out}");
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn build_merge_attaches_to_the_merged_index() {
    let s = need_services!();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = openssl_keys(keys.path());
    let ns = services::fresh_namespace(&s.registry, "sc-merge");
    let repo = go_fixture(std::slice::from_ref(&ns));
    let mut legs = Vec::new();
    for platform in ["linux/amd64", "linux/arm64"] {
        let out = build(s, &repo)
            .args(["--service", "openim-api", "--platform", platform])
            .args(["--push-by-digest", "--output", "json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let file = repo
            .path()
            .join(format!("leg-{}.json", platform.replace('/', "-")));
        std::fs::write(&file, &out.stdout).unwrap();
        legs.push(file);
    }
    let json = json_ok(
        repo.bin()
            .args(["build", "merge", "--partial", "--tag", "v1", "--sign-key"])
            .arg(&key)
            .args(&legs),
    );
    let img = &json["images"][0];
    let r = &img["supply_chain"]["registries"][0];
    assert!(r.get("error").is_none(), "{img}");
    assert_eq!(r["attached"].as_array().unwrap().len(), 4, "{img}");
    // The SBOM was made from the layers in the registry: the Go modules are there.
    assert_eq!(img["supply_chain"]["sboms"][0]["go_modules"], 1, "{img}");
    let out = stdout_ok(&mut verify_v1(&repo, &public));
    assert!(out.contains("verified: 1 image"), "{out}");
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn an_image_promoted_unchanged_gets_the_signature_of_the_later_run() {
    let s = need_services!();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = openssl_keys(keys.path());
    let ns = services::fresh_namespace(&s.registry, "sc-promote");
    let repo = fixture(std::slice::from_ref(&ns), &["linux/amd64"]);
    // The rc, built without a key: SBOM and unsigned provenance.
    let rc = json_ok(build(s, &repo).args(["--tag", "v1-rc.0", "--service", "openim-api"]));
    assert_eq!(rc["images"][0]["supply_chain"]["signed"], false);
    // The release of the same commit, with the key: not rebuilt, signed.
    let release = json_ok(
        build(s, &repo)
            .args(["--tag", "v1", "--service", "openim-api", "--sign-key"])
            .arg(&key),
    );
    let img = &release["images"][0];
    assert_eq!(img["status"], "unchanged");
    assert_eq!(img["digest"], rc["images"][0]["digest"]);
    let r = &img["supply_chain"]["registries"][0];
    assert_eq!(
        r["attached"],
        serde_json::json!(["provenance", "signature"]),
        "{img}"
    );
    assert_eq!(
        r["present"],
        serde_json::json!(["sbom linux/amd64"]),
        "{img}"
    );
    let out = stdout_ok(&mut verify_v1(&repo, &public));
    assert!(out.contains("verified: 1 image"), "{out}");
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn verify_accepts_an_image_reused_from_a_commit_that_builds_the_same() {
    let s = need_services!();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = openssl_keys(keys.path());
    let ns = services::fresh_namespace(&s.registry, "sc-reuse");
    let repo = fixture(std::slice::from_ref(&ns), &["linux/amd64"]);
    let built_at = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    json_ok(build(s, &repo).args(["--tag", "v1-rc.0", "--service", "openim-api"]));
    // The release commit changes nothing the build reads: the image is
    // reused, its signed provenance names the commit that built it.
    repo.write("README.md", "release notes\n");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "docs"]);
    repo.git(&["tag", "v1"]);
    let release = json_ok(
        build(s, &repo)
            .args(["--tag", "v1", "--service", "openim-api", "--sign-key"])
            .arg(&key),
    );
    assert_eq!(release["images"][0]["status"], "unchanged");
    let verify = |extra: &[&str]| {
        let mut cmd = verify_v1(&repo, &public);
        cmd.args(extra);
        cmd
    };
    let out = stdout_ok(&mut verify(&[]));
    assert!(
        out.contains(&format!("commit {}", &built_at[..12])),
        "{out}"
    );
    assert!(
        out.contains("reused unchanged for git tag v1: no file its build reads differs"),
        "{out}"
    );
    // A commit whose build reads another file is not that image's.
    repo.write("config/openim.yaml", "api:\n  port: 10003\n");
    repo.git(&["commit", "-q", "-am", "config"]);
    let changed = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    let out = verify(&["--commit", &changed]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "commit {} is not {}",
            &built_at[..12],
            &changed[..12]
        )),
        "{text}"
    );
}

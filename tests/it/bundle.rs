//! `bundle export` / `bundle import`: a release (two platforms, a cosign
//! signature, an SBOM referrer, a chart) written from the plain test
//! registry into one OCI image layout tar, read back by skopeo, and pushed
//! into the htpasswd and the token registry: the digests skopeo reads are
//! those of the source.

use crate::build::fixture;
use crate::common::*;
use crate::mirror::{creds_env, push_release};
use crate::need_services;
use crate::services;
use std::process::Command;

fn chart(dir: &std::path::Path) {
    let write = |rel: &str, text: &str| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "Chart.yaml",
        "apiVersion: v2\nname: openim-server\nversion: 1.2.3\nappVersion: v3.8.1\n",
    );
    write("values.yaml", "image:\n  tag: v3.8.1\n");
    write(
        "templates/deployment.yaml",
        "kind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n",
    );
}

fn raw_sha(args: &[&str]) -> Option<String> {
    let out = Command::new("skopeo")
        .args(["--insecure-policy", "inspect", "--raw"])
        .args(args)
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| crate::mirror::sha(&out.stdout))
}

/// Export, then import into two registries: every image, platform and
/// artifact keeps its digest; the bundle is an OCI layout skopeo reads;
/// the chart is a Helm OCI chart; a second import sends nothing.
#[test]
#[ignore = "needs the services of scripts/test"]
fn a_bundle_round_trips_with_the_same_digests() {
    let s = need_services!();
    let from = services::fresh_namespace(&s.registry, "bundle-src");
    let src = push_release(&from, &["v3.8.1", "latest"], 64 * 1024);
    let repo = fixture(std::slice::from_ref(&from), &["linux/amd64", "linux/arm64"]);
    chart(&repo.path().join("charts/openim-server"));

    let json = json_ok(repo.bin().args([
        "bundle",
        "export",
        "--tag",
        "v3.8.1",
        "--tag",
        "latest",
        "--chart",
        "charts/openim-server",
        "openim.tar",
    ]));
    let file = repo.path().join("openim.tar");
    assert!(file.is_file());
    assert!(!repo.path().join("openim.tar.partial").exists());
    assert_eq!(json["action"], "export");
    assert_eq!(json["images"].as_array().unwrap().len(), 3, "{json}");
    assert_eq!(json["charts"][0]["name"], "openim-server", "{json}");
    assert_eq!(json["charts"][0]["version"], "1.2.3", "{json}");
    for image in json["images"].as_array().unwrap() {
        let svc = image["service"].as_str().unwrap();
        assert_eq!(
            image["tags"]["v3.8.1"],
            src.digests[svc].as_str(),
            "{image}"
        );
        assert_eq!(
            image["platforms"],
            serde_json::json!(["linux/amd64", "linux/arm64"])
        );
    }
    // skopeo reads the bundle as an OCI archive, by the names index.json gives.
    let archive = format!("oci-archive:{}:openim-api:v3.8.1", file.display());
    assert_eq!(
        raw_sha(&[&archive]).as_deref(),
        Some(src.digests["openim-api"].as_str())
    );

    let login = Some((s.auth_user.as_str(), s.auth_password.as_str()));
    for host in [&s.auth_registry, &s.token_registry] {
        let to = format!("{host}/{}", services::unique_namespace("bundle"));
        let import = |repo: &TestRepo| {
            let mut cmd = repo.bin();
            cmd.args(["bundle", "import", "openim.tar", "--registry", &to])
                .envs(creds_env(s));
            cmd
        };
        let out = stdout_ok(&mut import(&repo));
        assert!(
            out.contains(&format!(
                "{to}/openim-api:v3.8.1@{}",
                src.digests["openim-api"]
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!("{to}/charts/openim-server:1.2.3@")),
            "{out}"
        );
        let c = format!("{}:{}", s.auth_user, s.auth_password);
        for (svc, digest) in &src.digests {
            for tag in ["v3.8.1", "latest"] {
                let r = format!("docker://{to}/{svc}:{tag}");
                assert_eq!(
                    raw_sha(&["--tls-verify=false", "--creds", &c, &r]).as_deref(),
                    Some(digest.as_str()),
                    "{r}"
                );
            }
        }
        let api = &src.digests["openim-api"];
        let sig = format!("docker://{to}/openim-api:{}.sig", api.replacen(':', "-", 1));
        assert_eq!(
            raw_sha(&["--tls-verify=false", "--creds", &c, &sig]).as_deref(),
            Some(src.signature.as_str())
        );
        let referrers = services::inspect_raw(
            &format!("{to}/openim-api:{}", api.replacen(':', "-", 1)),
            login,
        )
        .unwrap();
        assert_eq!(referrers["manifests"][0]["digest"], src.sbom.as_str());
        let chart =
            services::inspect_raw(&format!("{to}/charts/openim-server:1.2.3"), login).unwrap();
        assert_eq!(
            chart["config"]["mediaType"],
            "application/vnd.cncf.helm.config.v1+json"
        );
        // Again: nothing sent, every tag in place.
        let again = json_ok(&mut import(&repo));
        assert_eq!(again["moved"]["bytes_sent"], 0, "{again}");
        assert_eq!(again["moved"]["tags_written"], 0, "{again}");
    }
}

/// `--dry-run` reads nothing; a file that is not a bundle is refused with
/// exit 2; an image missing at the source fails (exit 1) and leaves no file.
#[test]
#[ignore = "needs the services of scripts/test"]
fn bundle_refusals() {
    let s = need_services!();
    let from = services::fresh_namespace(&s.registry, "bundle-src");
    let repo = fixture(std::slice::from_ref(&from), &["linux/amd64"]);
    let text = stdout_ok(repo.bin().args([
        "bundle",
        "export",
        "--tag",
        "v9",
        "--no-charts",
        "--dry-run",
        "b.tar",
    ]));
    assert_eq!(
        lines(&text),
        [
            format!("{from}/openim-api:v9"),
            format!("{from}/openim-rpc-user:v9"),
            format!("{from}/openim-push:v9"),
        ]
    );
    assert!(!repo.path().join("b.tar").exists());
    let err = fails_with(
        repo.bin()
            .args(["bundle", "export", "--tag", "v9", "--no-charts", "b.tar"]),
        1,
    );
    assert!(err.contains("openim-api:v9 does not exist"), "{err}");
    assert!(!repo.path().join("b.tar").exists());
    assert!(!repo.path().join("b.tar.partial").exists());

    repo.write("not-a-bundle.tar", "hello\n");
    let err = fails_with(
        repo.bin().args([
            "bundle",
            "import",
            "not-a-bundle.tar",
            "--registry",
            &format!("{}/x", s.registry),
        ]),
        2,
    );
    assert!(err.contains("not-a-bundle.tar"), "{err}");
}

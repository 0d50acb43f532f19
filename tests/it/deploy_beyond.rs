//! Deploy edits on a deploy repository that looks a little different from
//! OpenIM's (tests/fixtures/beyond/demo-deploy, in the shape of a large
//! microservice demo): a compose `.env` keeping repositories and tags in
//! separate variables, a chart whose templates derive every image from
//! appVersion, charts with a values.schema.json. Each edit keeps the deploy
//! valid, or is refused with nothing written.

use crate::common::*;
use std::path::Path;

const SOURCE: &str = "images:\n  registries: [ghcr.io/example]\n  services:\n    - { name: ad, dockerfile: Dockerfile }\n    - { name: cart, dockerfile: Dockerfile }\n    - { name: email, dockerfile: Dockerfile }\n    - { name: frontend, dockerfile: Dockerfile }\n";

/// A source repository with `deploy` (YAML lines) below SOURCE, and a copy
/// of the deploy fixture.
fn setup(deploy: &str) -> (TestRepo, tempfile::TempDir) {
    let src = TestRepo::new();
    src.write("openim-release.yaml", &format!("{SOURCE}{deploy}"));
    src.git(&["add", "-A"]);
    src.git(&["commit", "-q", "-m", "config"]);
    let dir = tempfile::tempdir().unwrap();
    crate::fixtures::copy_with("beyond/demo-deploy", dir.path(), &[]);
    (src, dir)
}

fn apply(src: &TestRepo, root: &Path, extra: &[&str]) -> assert_cmd::Command {
    let mut cmd = bin(src.path());
    cmd.args([
        "chart",
        "apply",
        "--dir",
        root.to_str().unwrap(),
        "--no-verify",
    ])
    .args(extra);
    cmd
}

fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap()
}

fn snapshot(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.push((rel, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    walk(root, root, &mut out);
    out.sort();
    out
}

fn digests(dir: &Path, services: &[(&str, char)]) -> String {
    let images: Vec<serde_json::Value> = services
        .iter()
        .map(|(s, c)| {
            serde_json::json!({"service": s, "digest": format!("sha256:{}", c.to_string().repeat(64))})
        })
        .collect();
    let path = dir.join("build.json");
    std::fs::write(&path, serde_json::json!({ "images": images }).to_string()).unwrap();
    path.display().to_string()
}

#[test]
fn a_repository_only_env_value_never_gets_a_tag_its_tag_variable_does() {
    let (src, dir) =
        setup("deploy:\n  env_files: [compose/.env]\n  env_tags: { AD_IMAGE: AD_TAG }\n");
    let root = dir.path();
    let before = read(root, "compose/.env");
    let out = apply(&src, root, &["--image-tag", "2.0.0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        read(root, "compose/.env"),
        before
            .replace("AD_TAG=1.0.0", "AD_TAG=2.0.0")
            .replace("cart:1.0.0", "cart:2.0.0"),
        "AD_IMAGE and EMAIL_IMAGE keep their repository alone"
    );
    // EMAIL_IMAGE has no tag variable configured: named, left alone.
    assert!(
        stderr.contains("warning: compose/.env: line 6: EMAIL_IMAGE holds only the repository ghcr.io/example/email, no tag")
            && stderr.contains("deploy.env_tags (EMAIL_IMAGE: <TAG_VARIABLE>)"),
        "{stderr}"
    );

    // With digests, the tag variable pins it: ${AD_IMAGE}:${AD_TAG} is
    // repo:tag@digest.
    let build = digests(root, &[("ad", 'a'), ("cart", 'c')]);
    let json = json_ok(&mut apply(
        &src,
        root,
        &["--image-tag", "2.0.0", "--digests", &build],
    ));
    let env = read(root, "compose/.env");
    assert!(
        env.contains(&format!("AD_TAG=2.0.0@sha256:{}\n", "a".repeat(64))),
        "{env}"
    );
    assert!(env.contains("AD_IMAGE=ghcr.io/example/ad\n"), "{env}");
    let refs: Vec<&str> = json["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["new"].as_str().unwrap())
        .collect();
    assert!(
        refs.contains(&format!("ghcr.io/example/ad:2.0.0@sha256:{}", "a".repeat(64)).as_str()),
        "{refs:?}"
    );
}

#[test]
fn a_configured_tag_variable_that_is_missing_is_refused() {
    let (src, dir) =
        setup("deploy:\n  env_files: [compose/.env]\n  env_tags: { AD_IMAGE: AD_VERSION }\n");
    let before = snapshot(dir.path());
    let err = fails_with(&mut apply(&src, dir.path(), &["--image-tag", "2.0.0"]), 2);
    assert!(
        err.contains("compose/.env: AD_IMAGE holds only the repository ghcr.io/example/ad and deploy.env_tags names AD_VERSION as its tag, but there is no AD_VERSION= line"),
        "{err}"
    );
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn two_services_with_different_values_for_one_key_are_refused() {
    let (src, dir) = setup(
        "deploy:\n  charts:\n    - path: charts/shop\n      images: { ad: image.tag, cart: image.tag }\n      digest: tag\n",
    );
    let before = snapshot(dir.path());
    digests(src.path(), &[("ad", 'a'), ("cart", 'c')]);
    let err = fails_with(
        &mut apply(
            &src,
            dir.path(),
            &["--image-tag", "2.0.0", "--digests", "build.json"],
        ),
        2,
    );
    assert!(
        err.contains("charts/shop/values.yaml: `image.tag` is the image of both ad and cart, which get different values")
            && err.contains("give each service its own key"),
        "{err}"
    );
    assert_eq!(snapshot(dir.path()), before);
    // The same value for both (no digests): nothing is lost, it is set.
    let out = apply(&src, dir.path(), &["--image-tag", "2.0.0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn an_edit_the_chart_schema_forbids_is_refused_as_helm_would() {
    let (src, dir) = setup(
        "deploy:\n  charts:\n    - path: charts/shop\n      images: { ad: image.tag }\n      digest: key\n",
    );
    let before = snapshot(dir.path());
    digests(src.path(), &[("ad", 'a')]);
    let err = fails_with(
        &mut apply(
            &src,
            dir.path(),
            &["--image-tag", "2.0.0", "--digests", "build.json"],
        ),
        2,
    );
    assert!(
        err.contains("charts/shop/values.schema.json: the edited values (charts/shop/values.yaml) would not validate against it, and Helm would refuse to install them: at /image:")
            && err.contains("digest"),
        "{err}"
    );
    assert_eq!(snapshot(dir.path()), before, "nothing is written");

    // `digest: tag` keeps the values valid: done.
    let (src, dir) = setup(
        "deploy:\n  charts:\n    - path: charts/shop\n      images: { ad: image.tag }\n      digest: tag\n",
    );
    digests(src.path(), &[("ad", 'a')]);
    let out = apply(
        &src,
        dir.path(),
        &["--image-tag", "2.0.0", "--digests", "build.json"],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(read(dir.path(), "charts/shop/values.yaml")
        .contains(&format!("tag: \"2.0.0@sha256:{}\"", "a".repeat(64))));
}

#[test]
fn a_chart_whose_images_follow_app_version_is_deployed_by_app_version() {
    let deploy = "deploy:\n  charts:\n    - path: charts/demo\n      image_pattern: \"ghcr.io/example/demo:{appVersion}-{service}\"\n      services: [ad, cart]\n";
    let (src, dir) = setup(deploy);
    let root = dir.path();
    let before = snapshot(root);
    let json = json_ok(&mut apply(
        &src,
        root,
        &["--version", "2.1.0", "--image-tag", "v2.1.0"],
    ));
    let after = snapshot(root);
    let changed: Vec<&String> = after
        .iter()
        .zip(&before)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| &a.0)
        .collect();
    assert_eq!(
        changed,
        ["charts/demo/Chart.yaml"],
        "only appVersion and version move"
    );
    let chart = read(root, "charts/demo/Chart.yaml");
    assert!(
        chart.contains("appVersion: \"2.1.0\"") && chart.contains("version: 0.30.1"),
        "{chart}"
    );
    let images: Vec<(&str, &str)> = json["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["service"].as_str().unwrap(), i["new"].as_str().unwrap()))
        .collect();
    assert_eq!(images, [("ad", "2.1.0"), ("cart", "2.1.0")]);

    // What is verified is what the chart pulls, not repo:version.
    let loaded = openim_release::config::load(None, src.path()).unwrap();
    let inputs = openim_release::deploy::plan::deploy_inputs(&loaded, src.path()).unwrap();
    let fresh = tempfile::tempdir().unwrap();
    crate::fixtures::copy_with("beyond/demo-deploy", fresh.path(), &[]);
    let plan = openim_release::deploy::edits::plan(
        fresh.path(),
        &inputs,
        &openim_release::deploy::edits::Release {
            tag: "v2.1.0".into(),
            app_version: Some("2.1.0".into()),
            digests: Default::default(),
        },
    )
    .unwrap();
    assert_eq!(
        plan.verify.iter().collect::<Vec<_>>(),
        [
            "ghcr.io/example/demo:2.1.0-ad",
            "ghcr.io/example/demo:2.1.0-cart"
        ]
    );

    // The version it already runs: nothing changes, no version creep.
    let out = apply(&src, root, &["--version", "2.1.0", "--image-tag", "v2.1.0"])
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.contains("nothing to change: every file is up to date"),
        "{said}"
    );
    assert_eq!(snapshot(root), after);

    // No version (a dev deploy): refused, nothing written.
    let err = fails_with(&mut apply(&src, root, &["--image-tag", "sha-0123456"]), 2);
    assert!(
        err.contains("charts/demo: its images follow its appVersion") && err.contains("--version"),
        "{err}"
    );
    assert_eq!(snapshot(root), after);
}

#[test]
fn an_image_pattern_is_checked_when_the_config_loads() {
    for (pattern, extra, needle) in [
        (
            "ghcr.io/example/demo:{version}-{service}",
            "",
            "unknown placeholder `{version}`",
        ),
        (
            "ghcr.io/example/demo:latest-{service}",
            "",
            "has no {appVersion}",
        ),
        (
            "ghcr.io/example/demo:{appVersion}-{service}",
            "      images: { ad: image.tag }\n",
            "and `images` both name",
        ),
    ] {
        let (src, dir) = setup(&format!(
            "deploy:\n  charts:\n    - path: charts/demo\n      image_pattern: \"{pattern}\"\n{extra}"
        ));
        let err = fails_with(&mut apply(&src, dir.path(), &["--version", "2.1.0"]), 2);
        assert!(
            err.contains("deploy.charts[0].image_pattern") && err.contains(needle),
            "{err}"
        );
    }
}

#[test]
fn a_deploy_url_path_that_does_not_exist_says_so() {
    let src = TestRepo::new();
    src.write(
        "openim-release.yaml",
        &format!("{SOURCE}deploy:\n  url: ../no-such-deploy-repo\n  mode: push\n"),
    );
    src.git(&["add", "-A"]);
    src.git(&["commit", "-q", "-m", "config"]);
    let err = fails_with(
        src.bin()
            .args(["gitops", "--image-tag", "v1.0.0", "--no-verify"]),
        2,
    );
    assert!(
        err.contains("deploy.url: ../no-such-deploy-repo is a local path")
            && err.contains("that does not exist")
            && !err.contains("unsupported URL protocol"),
        "{err}"
    );
}

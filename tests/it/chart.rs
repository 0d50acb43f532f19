//! `chart bump` and `chart apply` on an OpenIM-shaped deploy layout: exact
//! diffs, formatting kept, idempotence, verification.

use crate::common::*;
use crate::deploy_fixture::{read, write_layout};
use std::path::Path;

fn layout() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_layout(dir.path(), "ghcr.io/openimsdk");
    dir
}

#[test]
fn bump_updates_the_umbrella_and_its_subcharts_preserving_format() {
    let dir = layout();
    let root = dir.path();
    let before_redis = read(root, "charts/openim-server/charts/redis/values.yaml");
    let json = json_ok(bin(root).args([
        "chart",
        "bump",
        "charts/openim-server",
        "--registry",
        "ghcr.io/openimsdk",
        "--app-version",
        "3.8.1",
        "--image-tag",
        "v3.8.1-rc.2",
        "--no-verify",
    ]));
    assert_eq!(json["changed"], true);
    // Parent: version bumped once, appVersion quoted as before, still no final newline.
    assert_eq!(
        read(root, "charts/openim-server/Chart.yaml"),
        "apiVersion: v2\nname: openim-server\ndescription: OpenIM server umbrella chart\n\n# This is the chart version.\nversion: 0.1.18\n\n# It is recommended to use it with quotes.\nappVersion: \"3.8.1\"\n\ndependencies:\n  - name: openim-api\n    version: 0.1.17\n  - name: redis\n    version: 18.0.0"
    );
    for s in crate::deploy_fixture::SERVICES {
        let values = read(
            root,
            &format!("charts/openim-server/charts/{s}/values.yaml"),
        );
        assert!(values.contains("  # Overrides the image tag whose default is the chart appVersion.\n  tag: \"v3.8.1-rc.2\"\n"), "{values}");
        assert_eq!(
            read(root, &format!("charts/openim-server/charts/{s}/Chart.yaml")),
            format!("apiVersion: v2\nname: {s}\nversion: 0.1.17\nappVersion: \"3.8.1\"\n")
        );
    }
    // The infra subchart keeps its own release.
    assert_eq!(
        read(root, "charts/openim-server/charts/redis/values.yaml"),
        before_redis
    );

    // A re-run changes nothing, and never creeps the chart version.
    let again = json_ok(bin(root).args([
        "chart",
        "bump",
        "charts/openim-server",
        "--registry",
        "ghcr.io/openimsdk",
        "--app-version",
        "3.8.1",
        "--image-tag",
        "v3.8.1-rc.2",
        "--no-verify",
    ]));
    assert_eq!(again["changed"], false);
    assert!(read(root, "charts/openim-server/Chart.yaml").contains("version: 0.1.18\n"));
    let out = bin(root)
        .args([
            "chart",
            "bump",
            "charts/openim-server",
            "--registry",
            "ghcr.io/openimsdk",
            "--app-version",
            "3.8.1",
            "--image-tag",
            "v3.8.1-rc.2",
            "--no-verify",
            "--exit-code",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

/// In a git checkout the chart version moves once per commit: a second
/// `chart bump` before committing (the tag corrected) keeps the version the
/// first one gave; after a commit the next bump moves it again.
#[test]
fn a_second_bump_before_a_commit_does_not_move_the_version_again() {
    let repo = TestRepo::empty();
    let root = repo.path();
    write_layout(root, "ghcr.io/openimsdk");
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "charts"]);
    let bump = |tag: &str| {
        json_ok(bin(root).args([
            "chart",
            "bump",
            "charts/openim-server",
            "--registry",
            "ghcr.io/openimsdk",
            "--app-version",
            "3.8.1",
            "--image-tag",
            tag,
            "--no-verify",
        ]))
    };
    let version = || {
        read(root, "charts/openim-server/Chart.yaml")
            .lines()
            .find(|l| l.starts_with("version:"))
            .unwrap()
            .to_string()
    };
    bump("v3.8.1-rc.1");
    assert_eq!(version(), "version: 0.1.18");
    let again = bump("v3.8.1-rc.2");
    assert_eq!(again["changed"], true);
    assert_eq!(version(), "version: 0.1.18");
    assert!(
        read(root, "charts/openim-server/charts/openim-api/values.yaml")
            .contains("tag: \"v3.8.1-rc.2\"")
    );
    repo.git(&["commit", "-q", "-am", "rc.2"]);
    bump("v3.8.1-rc.3");
    assert_eq!(version(), "version: 0.1.19");
}

#[test]
fn bump_dry_run_prints_the_diff_and_writes_nothing() {
    let dir = layout();
    let root = dir.path();
    let before = read(root, "charts/openim-server/Chart.yaml");
    let out = stdout_ok(bin(root).args([
        "chart",
        "bump",
        "charts/openim-server",
        "--registry",
        "ghcr.io/openimsdk",
        "--app-version",
        "3.8.1",
        "--image-tag",
        "v3.8.1",
        "--no-verify",
        "--dry-run",
    ]));
    assert!(
        out.contains(
            "diff --git a/charts/openim-server/Chart.yaml b/charts/openim-server/Chart.yaml"
        ),
        "{out}"
    );
    assert!(
        out.contains("-version: 0.1.17\n+version: 0.1.18\n"),
        "{out}"
    );
    assert!(out.contains("-  tag: \"\"\n+  tag: \"v3.8.1\"\n"), "{out}");
    assert_eq!(read(root, "charts/openim-server/Chart.yaml"), before);
}

#[test]
fn bump_refuses_bad_input_and_changes_nothing() {
    let dir = layout();
    let root = dir.path();
    // chart dir, --app-version, --image-tag, more arguments.
    let bump = |chart: &str, app: &str, tag: &str, extra: &[&str]| {
        let mut cmd = bin(root);
        cmd.args([
            "chart",
            "bump",
            chart,
            "--registry",
            "ghcr.io/openimsdk",
            "--app-version",
            app,
            "--image-tag",
            tag,
        ])
        .args(extra);
        cmd
    };
    let err = fails_with(&mut bump("charts/nope", "3.8.1", "v1", &[]), 2);
    assert!(err.contains("Chart.yaml"), "{err}");
    let server = "charts/openim-server";
    let err = fails_with(&mut bump(server, "3.8", "v1", &["--no-verify"]), 2);
    assert!(err.contains("--app-version"), "{err}");
    let err = fails_with(&mut bump(server, "3.8.1", "bad/tag", &["--no-verify"]), 2);
    assert!(err.contains("--image-tag"), "{err}");
    assert!(read(root, "charts/openim-server/Chart.yaml").contains("version: 0.1.17"));

    // The files themselves: a values key that is not there, a chart version
    // that is not semver. Bad input too (exit 2), and nothing written.
    let values_before = read(root, "charts/openim-server/values.yaml");
    let bump = |extra: &[&str]| {
        let mut cmd = bump(server, "3.8.1", "v1", &["--no-verify"]);
        cmd.args(extra);
        cmd
    };
    let err = fails_with(&mut bump(&["--key", "no.such.key"]), 2);
    assert!(err.contains("no.such.key"), "{err}");
    let chart = read(root, "charts/openim-server/Chart.yaml");
    std::fs::write(
        root.join("charts/openim-server/Chart.yaml"),
        chart.replace("version: 0.1.17", "version: latest"),
    )
    .unwrap();
    let err = fails_with(&mut bump(&[]), 2);
    assert!(
        err.contains("not a semantic version") && err.contains("bump: none"),
        "{err}"
    );
    assert_eq!(
        read(root, "charts/openim-server/values.yaml"),
        values_before
    );
}

/// A source repository whose config names the deploy surfaces.
pub fn source_repo(registry: &str, deploy_url: &str, repository: &str, extra: &str) -> TestRepo {
    let repo = TestRepo::new();
    let services: Vec<String> = crate::deploy_fixture::SERVICES
        .iter()
        .map(|s| format!("    - {{ name: {s}, dockerfile: Dockerfile }}\n"))
        .collect();
    repo.write(
        "openim-release.yaml",
        &format!(
            "images:\n  registries: [{registry}]\n  services:\n{}deploy:\n  url: {deploy_url}\n  repository: {repository}\n  base: main\n  mode: pr\n  charts:\n    - path: charts/openim-server\n      values: k8s-open-im-server-config.yaml\n      images: {{ openim-api: openim-api.image.tag, openim-push: openim-push.image.tag }}\n  manifests: [k8s/openim-api.yaml]\n  env_files: [docker-compose/.env]\n{extra}",
            services.concat()
        ),
    );
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "config"]);
    repo
}

/// Tag the source v3.8.0, add a fix tagged v3.8.1-rc.0, `chart apply
/// --stage rc` (the rc HEAD carries) on the deploy checkout `root`,
/// unverified; its JSON.
fn apply_first_rc(src: &TestRepo, root: &Path) -> serde_json::Value {
    src.atag(&["v3.8.0"]);
    src.commit("fix");
    src.atag(&["v3.8.1-rc.0"]);
    json_ok(bin(src.path()).args([
        "chart",
        "apply",
        "--dir",
        root.to_str().unwrap(),
        "--stage",
        "rc",
        "--no-verify",
    ]))
}

#[test]
fn apply_edits_every_surface_from_the_config() {
    let dir = layout();
    let root = dir.path();
    let src = source_repo(
        "ghcr.io/openimsdk",
        "http://127.0.0.1:9/none.git",
        "openimsdk/helm-charts",
        "",
    );
    let json = apply_first_rc(&src, root);
    assert_eq!(json["changed"], true);
    assert_eq!(
        read(root, "k8s/openim-api.yaml").lines().nth(9).unwrap(),
        "          image: ghcr.io/openimsdk/openim-api:v3.8.1-rc.0 # do not edit by hand"
    );
    assert!(read(root, "k8s/openim-api.yaml").contains("image: busybox:1.36\n"));
    assert_eq!(
        read(root, "docker-compose/.env"),
        "# images\nOPENIM_API_IMAGE=ghcr.io/openimsdk/openim-api:v3.8.1-rc.0\nMONGO_IMAGE=mongo:7.0\n"
    );
    assert!(read(root, "charts/openim-server/Chart.yaml").contains("appVersion: \"3.8.1\""));
    assert!(
        read(root, "charts/openim-server/charts/openim-push/values.yaml")
            .contains("tag: \"v3.8.1-rc.0\"")
    );
    // The global override file: CRLF kept, single quotes kept, flow mapping edited in place.
    assert_eq!(
        read(root, "k8s-open-im-server-config.yaml"),
        "# OpenIM global config\r\nopenim-api:\r\n  image:\r\n    repository: ghcr.io/openimsdk/openim-api\r\n    tag: 'v3.8.1-rc.0'\r\nopenim-push:\r\n  image: { repository: ghcr.io/openimsdk/openim-push, tag: v3.8.1-rc.0 }\r\nmongo:\r\n  image: mongo:7\r\n"
    );
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn verification_refuses_missing_images_and_pins_digests_of_pushed_ones() {
    let s = crate::need_services!();
    let ns = crate::services::fresh_namespace(&s.registry, "verify");
    // Only openim-api is pushed at first.
    let project = crate::build::fixture(std::slice::from_ref(&ns), &["linux/amd64", "linux/arm64"]);
    let mut build = project.bin();
    build.env("DOCKER_HOST", &s.docker_host).args([
        "build",
        "--tag",
        "v3.8.1",
        "--service",
        "openim-api",
    ]);
    stdout_ok(&mut build);

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_layout(root, &ns);
    let before = read(root, "charts/openim-server/Chart.yaml");
    let err = fails_with(
        bin(root).args([
            "chart",
            "bump",
            "charts/openim-server",
            "--registry",
            &ns,
            "--app-version",
            "3.8.1",
            "--image-tag",
            "v3.8.1",
        ]),
        1,
    );
    assert!(
        err.contains(&format!("{ns}/openim-push:v3.8.1 (no such tag)")),
        "{err}"
    );
    assert!(
        err.contains("openim-rpc-user") && !err.contains(&format!("{ns}/openim-api:v3.8.1 ")),
        "{err}"
    );
    assert_eq!(
        read(root, "charts/openim-server/Chart.yaml"),
        before,
        "nothing written"
    );

    // All pushed: verified, written, digests pinned from the build output.
    let mut build = project.bin();
    build
        .env("DOCKER_HOST", &s.docker_host)
        .args(["build", "--tag", "v3.8.1", "--output", "json"]);
    let out = stdout_ok(&mut build);
    let digests = root.join("build.json");
    std::fs::write(&digests, &out).unwrap();
    let built: serde_json::Value = serde_json::from_str(&out).unwrap();
    let push_digest = built["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["service"] == "openim-push")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();

    let src = source_repo(
        &ns,
        "http://127.0.0.1:9/none.git",
        "openimsdk/helm-charts",
        "",
    );
    // Pin as tag@digest in the chart target.
    let cfg = read(src.path(), "openim-release.yaml")
        .replace("      images: {", "      digest: tag\n      images: {");
    src.write("openim-release.yaml", &cfg);
    let json = json_ok(bin(src.path()).args([
        "chart",
        "apply",
        "--dir",
        root.to_str().unwrap(),
        "--version",
        "3.8.1",
        "--image-tag",
        "v3.8.1",
        "--digests",
        digests.to_str().unwrap(),
    ]));
    assert_eq!(json["changed"], true);
    let global = read(root, "k8s-open-im-server-config.yaml");
    assert!(
        global.contains(&format!("tag: v3.8.1@{push_digest} }}")),
        "{global}"
    );
}

/// OpenIM's own layout: the services come from the compose build file alone
/// (`images.compose`, what `init` proposes); the deploy edits know them too.
#[test]
fn apply_knows_the_services_of_the_compose_file() {
    let dir = layout();
    let root = dir.path();
    let src = TestRepo::new();
    let mut compose = String::from("services:\n");
    for s in crate::deploy_fixture::SERVICES {
        compose.push_str(&format!(
            "  {s}:\n    image: ${{IMAGE_REGISTRY:-ghcr.io/openimsdk}}/{s}:${{TAG:-dev}}\n    build:\n      context: ../../..\n      dockerfile: build/images/openim-server/Dockerfile\n      args: {{ BINARY_NAME: {s} }}\n"
        ));
    }
    src.write(
        "build/images/openim-server/docker-compose.build.yml",
        &compose,
    );
    src.write(
        "build/images/openim-server/Dockerfile",
        "FROM scratch\nARG BINARY_NAME\n",
    );
    src.write(
        "openim-release.yaml",
        "images:\n  registries: [ghcr.io/openimsdk]\n  compose: build/images/openim-server/docker-compose.build.yml\ndeploy:\n  url: http://127.0.0.1:9/none.git\n  charts:\n    - path: charts/openim-server\n  manifests: [k8s/openim-api.yaml]\n  env_files: [docker-compose/.env]\n",
    );
    src.git(&["add", "-A"]);
    src.git(&["commit", "-q", "-m", "config"]);
    let json = apply_first_rc(&src, root);
    assert_eq!(json["changed"], true);
    for svc in crate::deploy_fixture::SERVICES {
        let values = read(
            root,
            &format!("charts/openim-server/charts/{svc}/values.yaml"),
        );
        assert!(values.contains("tag: \"v3.8.1-rc.0\""), "{svc}: {values}");
    }
    assert!(read(root, "k8s/openim-api.yaml")
        .contains("image: ghcr.io/openimsdk/openim-api:v3.8.1-rc.0"));
    assert!(read(root, "docker-compose/.env")
        .contains("OPENIM_API_IMAGE=ghcr.io/openimsdk/openim-api:v3.8.1-rc.0"));
}

/// A registry that cannot be reached is not reported as missing images.
#[test]
fn an_unreachable_registry_is_named_as_such() {
    let dir = layout();
    let root = dir.path();
    let src = source_repo(
        "127.0.0.1:9/openimsdk",
        "http://127.0.0.1:9/none.git",
        "openimsdk/helm-charts",
        "",
    );
    src.atag(&["v3.8.0"]);
    src.commit("fix");
    src.atag(&["v3.8.1-rc.0"]);
    let before = read(root, "docker-compose/.env");
    let err = fails_with(
        bin(src.path())
            .args(["chart", "apply", "--dir", root.to_str().unwrap()])
            .args(["--stage", "rc"]),
        1,
    );
    assert!(
        err.contains("could not check that the images exist"),
        "{err}"
    );
    assert!(!err.contains("do not exist"), "{err}");
    assert_eq!(read(root, "docker-compose/.env"), before);
}

//! Image naming schemes other than `<registry>/<service>:<tag>`: one
//! repository for every service with the service in the tag
//! (`ghcr.io/example/demo:v1.2.3-ad`, `latest-ad`), and services whose image
//! is named otherwise (`frontendTests` → `frontend-tests`). Build, merge and
//! deploy agree on the references; `init` proposes the scheme the compose
//! file's `image:` fields show.

use crate::common::*;
use std::path::Path;

/// A one-repository configuration: every tag names the service.
const SHARED: &str = "images:\n  registries: [ghcr.io/example]\n  repository: demo\n  image_names: { frontendTests: frontend-tests }\n  services:\n    - { name: ad, dockerfile: Dockerfile }\n    - { name: frontendTests, dockerfile: Dockerfile }\ntags:\n  dev:\n    tags: [\"{branch}-{service}\", \"sha-{sha7}-{service}\"]\n  rc:\n    tags: [\"v{version}-rc.{n}-{service}\"]\n  release:\n    tags: [\"v{version}-{service}\", \"{version}-{service}\"]\n    aliases: [\"latest-{service}\"]\n  patch:\n    tags: [\"v{version}-patch.{n}-{service}\"]\n    aliases: []\n  nightly:\n    tags: [\"nightly-{date}-{service}\"]\n";

fn repo_with(config: &str) -> TestRepo {
    let repo = TestRepo::new();
    repo.write("Dockerfile", "FROM scratch\n");
    repo.write("openim-release.yaml", config);
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "config"]);
    repo
}

#[test]
fn one_repository_with_the_service_in_the_tag() {
    let repo = repo_with(SHARED);
    let out = stdout_ok(repo.bin().args([
        "build",
        "--dry-run",
        "--tag",
        "v1.2.3-{service}",
        "--tag",
        "latest-{service}",
    ]));
    assert_eq!(
        lines(&out),
        [
            "ghcr.io/example/demo:v1.2.3-ad",
            "ghcr.io/example/demo:latest-ad",
            "ghcr.io/example/demo:v1.2.3-frontend-tests",
            "ghcr.io/example/demo:latest-frontend-tests",
        ]
    );
    // A stage's tags name each service.
    let json = json_ok(repo.bin().args(["build", "--dry-run", "--stage", "dev"]));
    let refs: Vec<&str> = json["images"][1]["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let sha7 = &repo.head()[..7];
    assert_eq!(
        refs,
        [
            "ghcr.io/example/demo:main-frontend-tests".to_string(),
            format!("ghcr.io/example/demo:sha-{sha7}-frontend-tests")
        ]
    );
    assert_eq!(json["images"][1]["service"], "frontendTests");

    // A tag without the service would be pushed by both: refused.
    let err = fails_with(
        repo.bin().args(["build", "--dry-run", "--tag", "v1.2.3"]),
        2,
    );
    assert!(
        err.contains("ad and frontendTests would both push ghcr.io/example/demo:v1.2.3"),
        "{err}"
    );
}

#[test]
fn a_shared_repository_needs_the_service_in_every_tag_template() {
    let config = SHARED.replace("aliases: [\"latest-{service}\"]", "aliases: [latest]");
    let repo = TestRepo::new();
    repo.write("openim-release.yaml", &config);
    let err = fails_with(repo.bin().args(["build", "matrix"]), 2);
    assert!(
        err.contains("images.repository: `demo` is one repository for every service")
            && err.contains("tags.release.aliases[0] `latest` does not"),
        "{err}"
    );
    // `{service}` is for image tags, not for the git tag of a nightly.
    let repo = TestRepo::new();
    repo.write(
        "openim-release.yaml",
        "tags:\n  nightly:\n    git_tag: \"nightly-{date}-{service}\"\n",
    );
    let err = fails_with(repo.bin().args(["tag", "--stage", "nightly"]), 2);
    assert!(err.contains("tags.nightly.git_tag"), "{err}");
}

#[test]
fn a_compose_service_named_otherwise_than_its_image() {
    let repo = TestRepo::new();
    repo.write("Dockerfile", "FROM scratch\n");
    repo.write(
        "compose.yaml",
        "services:\n  frontendTests:\n    build: .\n  cart:\n    build: .\n",
    );
    repo.write(
        "openim-release.yaml",
        "images:\n  registries: [ghcr.io/example]\n  compose: compose.yaml\n",
    );
    let err = fails_with(repo.bin().args(["build", "matrix"]), 2);
    assert!(
        err.contains("service name `frontendTests` is not a valid image name")
            && err.contains("images.image_names (`frontendTests: frontend-tests`)"),
        "{err}"
    );
    repo.write(
        "openim-release.yaml",
        "images:\n  registries: [ghcr.io/example]\n  compose: compose.yaml\n  image_names: { frontendTests: frontend-tests }\n",
    );
    let out = stdout_ok(repo.bin().args(["build", "--dry-run", "--tag", "v1"]));
    assert_eq!(
        lines(&out),
        [
            "ghcr.io/example/frontend-tests:v1",
            "ghcr.io/example/cart:v1"
        ]
    );
}

fn write(root: &Path, rel: &str, text: &str) {
    crate::deploy_fixture::write(root, rel, text);
}

#[test]
fn deploy_edits_tell_the_services_of_a_shared_repository_by_their_tag() {
    let repo = repo_with(&format!(
        "{SHARED}deploy:\n  manifests: [k8s.yaml]\n  env_files: [.env]\n  charts:\n    - path: charts/shop\n      images: {{ ad: ad.image.tag, frontendTests: tests.image.tag }}\n"
    ));
    let deploy = tempfile::tempdir().unwrap();
    let root = deploy.path();
    write(
        root,
        "k8s.yaml",
        "containers:\n  - image: ghcr.io/example/demo:v1.0.0-ad\n  - image: ghcr.io/example/demo:v1.0.0-frontend-tests\n  - image: ghcr.io/example/demo:latest\n  - image: valkey/valkey:8\n",
    );
    write(
        root,
        ".env",
        "AD_IMAGE=ghcr.io/example/demo:1.0.0-ad\nTESTS_IMAGE=ghcr.io/example/demo:1.0.0-frontend-tests\n",
    );
    write(
        root,
        "charts/shop/Chart.yaml",
        "apiVersion: v2\nname: shop\nversion: 1.0.0\n",
    );
    write(
        root,
        "charts/shop/values.yaml",
        "ad:\n  image:\n    repository: ghcr.io/example/demo\n    tag: v1.0.0-ad\ntests:\n  image:\n    repository: ghcr.io/example/demo\n    tag: v1.0.0-frontend-tests\n",
    );
    let out = repo
        .bin()
        .args([
            "chart",
            "apply",
            "--dir",
            root.to_str().unwrap(),
            "--no-verify",
        ])
        .args(["--version", "1.1.0", "--image-tag", "v1.1.0-{service}"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let read = |rel: &str| std::fs::read_to_string(root.join(rel)).unwrap();
    assert_eq!(
        read("k8s.yaml"),
        "containers:\n  - image: ghcr.io/example/demo:v1.1.0-ad\n  - image: ghcr.io/example/demo:v1.1.0-frontend-tests\n  - image: ghcr.io/example/demo:latest\n  - image: valkey/valkey:8\n"
    );
    assert_eq!(
        read(".env"),
        "AD_IMAGE=ghcr.io/example/demo:v1.1.0-ad\nTESTS_IMAGE=ghcr.io/example/demo:v1.1.0-frontend-tests\n"
    );
    let values = read("charts/shop/values.yaml");
    assert!(
        values.contains("tag: v1.1.0-ad\n") && values.contains("tag: v1.1.0-frontend-tests\n"),
        "{values}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "line 4: ghcr.io/example/demo:latest is in the repository of several services"
        ),
        "{stderr}"
    );

    // Verification looks up each service's own tag.
    let loaded = openim_release::config::load(None, repo.path()).unwrap();
    let inputs = openim_release::deploy::plan::deploy_inputs(&loaded, repo.path()).unwrap();
    let fresh = tempfile::tempdir().unwrap();
    write(
        fresh.path(),
        "k8s.yaml",
        "image: ghcr.io/example/demo:v1.0.0-ad\n",
    );
    write(
        fresh.path(),
        ".env",
        "TESTS_IMAGE=ghcr.io/example/demo:1.0.0-frontend-tests\n",
    );
    write(
        fresh.path(),
        "charts/shop/Chart.yaml",
        "apiVersion: v2\nname: shop\nversion: 1.0.0\n",
    );
    write(
        fresh.path(),
        "charts/shop/values.yaml",
        "ad:\n  image:\n    tag: v1.0.0-ad\ntests:\n  image:\n    tag: v1.0.0-frontend-tests\n",
    );
    let plan = openim_release::deploy::edits::plan(
        fresh.path(),
        &inputs,
        &openim_release::deploy::edits::Release {
            tag: "v1.1.0-{service}".into(),
            app_version: None,
            digests: Default::default(),
        },
    )
    .unwrap();
    assert_eq!(
        plan.verify.iter().collect::<Vec<_>>(),
        [
            "ghcr.io/example/demo:v1.1.0-ad",
            "ghcr.io/example/demo:v1.1.0-frontend-tests"
        ]
    );
}

#[test]
fn init_proposes_the_naming_scheme_the_compose_images_show() {
    let repo = crate::fixtures::repo("init/demo", "unused");
    let out = stdout_ok(repo.bin().args(["init"]));
    for needle in [
        "compose: docker-compose.yml\n",
        "    - ghcr.io/example\n",
        "  repository: demo\n",
        "  image_names:",
        "    frontendTests: frontend-tests\n",
        "    tags: [\"{branch}-{service}\", \"sha-{sha7}-{service}\"]\n",
        "    aliases: [\"{major}.{minor}-{service}\", \"{major}-{service}\", \"latest-{service}\"]\n",
    ] {
        assert!(out.contains(needle), "`{needle}` not in:\n{out}");
    }
    // The proposal builds as it is, in a dry run, without an edit.
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "init"]);
    let json = json_ok(repo.bin().args(["build", "--dry-run", "--stage", "dev"]));
    let refs: Vec<String> = json["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["references"][0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        refs,
        [
            "ghcr.io/example/demo:main-ad",
            "ghcr.io/example/demo:main-cart",
            "ghcr.io/example/demo:main-frontend-tests"
        ]
    );
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
}

#[test]
#[ignore = "needs the services of scripts/test"]
fn services_built_into_one_repository_keep_their_own_tags_inputs_and_legs() {
    use crate::services;
    let s = crate::need_services!();
    let ns = services::fresh_namespace(&s.registry, "shared");
    let repo = crate::build::fixture(std::slice::from_ref(&ns), &["linux/amd64"]);
    let config = std::fs::read_to_string(repo.path().join("openim-release.yaml")).unwrap();
    let tags = &SHARED[SHARED.find("tags:\n").unwrap()..];
    repo.write(
        "openim-release.yaml",
        &format!(
            "{}{tags}",
            config.replace("images:\n", "images:\n  repository: server\n")
        ),
    );
    repo.git(&["commit", "-qam", "one repository"]);
    let build = |args: &[&str]| {
        let mut cmd = repo.bin();
        cmd.env("DOCKER_HOST", &s.docker_host)
            .arg("build")
            .args(args);
        json_ok(&mut cmd)
    };
    let first = build(&["--tag", "v1-{service}"]);
    let digest = |json: &serde_json::Value, svc: &str| {
        json["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["service"] == svc)
            .unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for svc in crate::build::SERVICES {
        assert_eq!(
            services::digest_of(&format!("{ns}/server:v1-{svc}"), None).unwrap(),
            digest(&first, svc),
            "{svc}"
        );
    }
    assert_ne!(digest(&first, "openim-api"), digest(&first, "openim-push"));
    // The inputs tags of the services differ: a re-run reuses each one's own.
    let second = build(&["--tag", "v2-{service}"]);
    for svc in crate::build::SERVICES {
        assert_eq!(digest(&second, svc), digest(&first, svc));
        assert_eq!(
            services::digest_of(&format!("{ns}/server:v2-{svc}"), None).unwrap(),
            digest(&first, svc)
        );
    }
    // A matrix leg and its merge land in the shared repository too.
    let leg = build(&[
        "--service",
        "openim-push",
        "--platform",
        "linux/amd64",
        "--push-by-digest",
    ]);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("leg.json");
    std::fs::write(&file, leg.to_string()).unwrap();
    let merged = json_ok(
        repo.bin()
            .args([
                "build",
                "merge",
                "--tag",
                "v3-{service}",
                "--service",
                "openim-push",
            ])
            .arg(&file),
    );
    assert_eq!(
        merged["images"][0]["references"][0],
        format!("{ns}/server:v3-openim-push")
    );
    assert!(services::inspect_raw(&format!("{ns}/server:v3-openim-push"), None).is_ok());
}

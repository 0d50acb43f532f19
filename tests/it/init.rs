//! `init` on OpenIM-shaped layouts.

use crate::common::*;

fn openim_layout(with_compose: bool) -> TestRepo {
    let repo = TestRepo::new();
    let w = |rel: &str, text: &str| crate::deploy_fixture::write(repo.path(), rel, text);
    w(
        "build/images/openim-server/Dockerfile",
        "FROM golang:alpine AS builder\nCOPY . .\nARG CMD_PATH\nARG BINARY_NAME\nRUN go build -o _output/${BINARY_NAME} ./${CMD_PATH}\n",
    );
    for s in ["openim-api", "openim-push", "openim-rpc/openim-rpc-user"] {
        w(&format!("cmd/{s}/main.go"), "package main\n");
    }
    if with_compose {
        w(
            "build/images/openim-server/docker-compose.build.yml",
            "services:\n  openim-api:\n    build:\n      context: ../../..\n      dockerfile: build/images/openim-server/Dockerfile\n      args:\n        CMD_PATH: cmd/openim-api\n        BINARY_NAME: openim-api\n        RELEASE: ${RELEASE:-false}\n    image: openim-api:test\n  openim-push:\n    build:\n      context: ../../..\n      dockerfile: build/images/openim-server/Dockerfile\n      args:\n        CMD_PATH: cmd/openim-push\n        BINARY_NAME: openim-push\n    image: openim-push:test\n",
        );
    }
    w(
        "charts/openim-server/Chart.yaml",
        "apiVersion: v2\nname: openim-server\nversion: 0.1.0\n",
    );
    w(
        "charts/openim-server/charts/openim-api/Chart.yaml",
        "apiVersion: v2\nname: openim-api\nversion: 0.1.0\n",
    );
    repo.git(&[
        "remote",
        "add",
        "origin",
        "git@github.com:OpenIMSDK/open-im-server.git",
    ]);
    repo
}

#[test]
fn init_uses_the_compose_build_file_and_the_origin() {
    let repo = openim_layout(true);
    let out = stdout_ok(repo.bin().args(["init"]));
    assert!(
        out.contains("compose: build/images/openim-server/docker-compose.build.yml"),
        "{out}"
    );
    assert!(out.contains("- ghcr.io/openimsdk\n"), "{out}");
    assert!(
        out.contains("    - path: charts/openim-server\n") && !out.contains("charts/openim-api"),
        "{out}"
    );
    // The written file drives build as it is.
    let refs = stdout_ok(repo.bin().args(["build", "--tag", "v3.8.4", "--dry-run"]));
    assert_eq!(
        lines(&refs),
        [
            "ghcr.io/openimsdk/openim-api:v3.8.4",
            "ghcr.io/openimsdk/openim-push:v3.8.4"
        ]
    );
    // Not overwritten without --force.
    let err = fails_with(repo.bin().args(["init"]), 2);
    assert!(err.contains("--force"), "{err}");
}

#[test]
fn init_finds_services_from_cmd_when_there_is_no_compose_file() {
    let repo = openim_layout(false);
    let out = stdout_ok(repo.bin().args(["init", "--print"]));
    assert!(
        !repo.path().join("openim-release.yaml").exists(),
        "--print writes nothing"
    );
    // `--dry-run`, as the other commands spell it, is the same.
    assert_eq!(stdout_ok(repo.bin().args(["init", "--dry-run"])), out);
    assert!(!repo.path().join("openim-release.yaml").exists());
    for (name, cmd) in [
        ("openim-api", "cmd/openim-api"),
        ("openim-push", "cmd/openim-push"),
        ("openim-rpc-user", "cmd/openim-rpc/openim-rpc-user"),
    ] {
        assert!(
            out.contains(&format!("    - name: {name}\n      dockerfile: build/images/openim-server/Dockerfile\n      context: .\n      args: {{ CMD_PATH: {cmd}, BINARY_NAME: {name} }}\n")),
            "{out}"
        );
    }
}

/// The proposal of `init --print` in a copy of fixture `name` whose origin
/// is `origin` (none when None); asserts it loads and never shows a Rust
/// debug value or an internal error.
fn proposal(name: &str, origin: Option<&str>) -> String {
    let repo = crate::fixtures::repo(name, "");
    if let Some(url) = origin {
        repo.git(&["remote", "add", "origin", url]);
    }
    let out = stdout_ok(repo.bin().args(["init", "--print"]));
    for bad in ["Some(", "internal error"] {
        assert!(
            !out.lines()
                .any(|l| !l.trim_start().starts_with('#') && l.contains(bad)),
            "{bad} in:\n{out}"
        );
    }
    // What is printed is what `init` writes: it loads as it is.
    repo.write("openim-release.yaml", &out);
    stdout_ok(repo.bin().args(["tag", "--stage", "dev"]));
    out
}

/// The uncommented registries of a proposal, in order.
fn registries(out: &str) -> Vec<String> {
    out.lines()
        .skip_while(|l| !l.starts_with("  registries:"))
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .filter(|l| l.trim_start().starts_with("- "))
        .map(|l| {
            l.trim_start()[2..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn init_proposes_the_registries_the_workflows_push_to() {
    // open-im-server's shape: a registry list with an expression for the
    // owner, one only known from a secret, logins, a test workflow using
    // others' images.
    let out = proposal(
        "init/server",
        Some("git@github.com:OpenIMSDK/open-im-server.git"),
    );
    assert_eq!(
        registries(&out),
        ["ghcr.io/openimsdk", "registry.example.test/openimsdk"],
        "{out}"
    );
    assert!(
        out.contains("#") && out.contains("${{ secrets.DOCKER_USERNAME }}"),
        "the registry it cannot resolve is named in a comment:\n{out}"
    );
    assert!(
        !out.contains("bitnami") && !out.contains("some-vendor"),
        "{out}"
    );
    assert!(
        out.contains("compose: build/images/openim-server/docker-compose.build.yml"),
        "{out}"
    );
    // The source repository's own .env (third-party images) is no deploy target.
    assert!(!out.contains("env_files"), "{out}");

    // chat's shape: docker/metadata-action's image list, Docker Hub without host.
    let out = proposal("init/chat", Some("https://github.com/openimsdk/chat.git"));
    assert_eq!(
        registries(&out),
        [
            "docker.io/openim",
            "ghcr.io/openimsdk",
            "registry.example.test/openimsdk"
        ],
        "{out}"
    );
    // …and the all-in-one image its workflow builds from the root
    // Dockerfile, besides the compose services (openim-docker deploys it).
    assert!(
        out.contains("  services:\n    # built from the root Dockerfile by .github/workflows/build-image.yml\n    - { name: openim-chat, dockerfile: Dockerfile, context: . }\n"),
        "{out}"
    );
    let repo = crate::fixtures::repo("init/chat", "");
    repo.write("openim-release.yaml", &out);
    let planned = stdout_ok(repo.bin().args(["build", "--dry-run", "--stage", "dev"]));
    assert!(
        planned.contains("ghcr.io/openimsdk/openim-chat:main"),
        "{planned}"
    );
    assert!(
        planned.contains("ghcr.io/openimsdk/openim-chat-api:main"),
        "{planned}"
    );
}

#[test]
fn init_works_without_a_github_origin_or_any_origin() {
    for origin in [
        Some("https://git.example.test/openim/open-im-server.git"),
        None,
    ] {
        let out = proposal("init/server", origin);
        // The owner of ghcr.io/${{ github.repository_owner }} is unknown
        // here: the registry named outright is proposed, the other shown.
        assert_eq!(
            registries(&out),
            ["registry.example.test/openimsdk"],
            "{origin:?}: {out}"
        );
        assert!(
            out.contains(
                "# also ghcr.io/${{ github.repository_owner }} in .github/workflows/images.yml"
            ),
            "{origin:?}: {out}"
        );
    }
    // Nothing names a registry and the origin is not on GitHub: an empty
    // list to fill in, which `build` refuses with a clear message.
    let repo = TestRepo::new();
    repo.write("Dockerfile", "FROM scratch\nCOPY app /app\n");
    repo.git(&["remote", "add", "origin", "/srv/git/app.git"]);
    let out = stdout_ok(repo.bin().args(["init"]));
    assert!(out.contains("  registries: []"), "{out}");
    let err = fails_with(repo.bin().args(["build", "--tag", "v1", "--dry-run"]), 2);
    assert!(err.contains("no registries"), "{err}");
}

#[test]
fn init_in_a_deploy_repository_proposes_the_deploy_section_only() {
    // helm-charts' shape: umbrella charts with subcharts, third-party charts
    // under infra/, no Dockerfile; the origin not on GitHub.
    let out = proposal(
        "init/helm-charts",
        Some("ssh://git.example.test/openim/helm-charts.git"),
    );
    assert!(!out.lines().any(|l| l.starts_with("images:")), "{out}");
    assert!(
        out.contains("  url: ssh://git.example.test/openim/helm-charts.git\n"),
        "{out}"
    );
    let charts: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("    - path: "))
        .collect();
    assert_eq!(
        charts,
        ["charts/openim-chat", "charts/openim-server"],
        "{out}"
    );

    // openim-docker's shape: a compose deployment with image lines in .env.
    let out = proposal("init/compose-deploy", None);
    assert!(out.contains("  env_files:"), "{out}");
    assert!(out.contains("    - .env\n"), "{out}");
    assert!(
        out.contains("  url: https://github.com/YOUR-ORG/helm-charts.git"),
        "{out}"
    );
}

#[test]
fn init_writes_where_config_points_and_is_quiet_with_q() {
    let repo = crate::fixtures::repo("init/chat", "");
    let out = repo
        .bin()
        .args(["-q", "--config", "ci/release.yaml", "init"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "-q prints nothing on stderr"
    );
    assert!(repo.path().join("ci/release.yaml").is_file());
    assert!(!repo.path().join("openim-release.yaml").exists());
    let refs = stdout_ok(repo.bin().args([
        "--config",
        "ci/release.yaml",
        "build",
        "--tag",
        "v1.8.4",
        "--dry-run",
    ]));
    assert!(
        refs.contains("ghcr.io/openimsdk/openim-chat-api:v1.8.4\n"),
        "{refs}"
    );
    let err = fails_with(repo.bin().args(["--config", "ci/release.yaml", "init"]), 2);
    assert!(err.contains("ci/release.yaml exists"), "{err}");
}

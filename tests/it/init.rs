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

//! `chart bump` and `chart apply` on deploy repositories shaped like the
//! ones OpenIM deploys from (tests/fixtures/): umbrella charts whose service
//! subcharts keep `helm create`'s appVersion, override files, infra
//! subcharts, a `.env` that runs the whole server as one image. Every
//! subchart is edited or named as skipped, nothing is a silent no-op, and a
//! wrong key path or service name changes nothing.

use crate::common::*;
use crate::deploy_fixture::{fixture, read, snapshot};
use std::path::Path;

const SUB: &str = "charts/openim-server/charts";
/// What the source repository (open-im-server) builds, as far as the
/// fixtures go: not `openim-msggateway-proxy`.
const SERVER: &[&str] = &[
    "openim-api",
    "openim-msggateway",
    "openim-msgtransfer",
    "openim-push",
    "openim-rpc-user",
];

/// A source repository whose openim-release.yaml builds SERVER into
/// `registries` (a YAML list) and has `deploy` (YAML lines, may be empty).
fn source(registries: &str, deploy: &str) -> TestRepo {
    let repo = TestRepo::new();
    let services: String = SERVER
        .iter()
        .map(|s| format!("    - {{ name: {s}, dockerfile: Dockerfile }}\n"))
        .collect();
    repo.write(
        "openim-release.yaml",
        &format!("images:\n  registries: {registries}\n  services:\n{services}{deploy}"),
    );
    repo.git(&["add", "-A"]);
    repo.git(&["commit", "-q", "-m", "config"]);
    repo
}

fn bump(root: &Path, chart: &str, extra: &[&str]) -> assert_cmd::Command {
    let mut cmd = bin(root);
    cmd.args(["chart", "bump", chart, "--app-version", "3.8.1"])
        .args(["--image-tag", "v3.8.1"])
        .args(extra);
    cmd
}

fn apply(src: &TestRepo, root: &Path, extra: &[&str]) -> assert_cmd::Command {
    let mut cmd = bin(src.path());
    cmd.args(["chart", "apply", "--dir", root.to_str().unwrap()])
        .args(["--version", "3.8.1", "--image-tag", "v3.8.1", "--no-verify"])
        .args(extra);
    cmd
}

fn stderr_of(cmd: &mut assert_cmd::Command) -> (String, String) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn names(list: &serde_json::Value, field: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v[field].as_str().unwrap().to_string())
        .collect()
}

fn bumped_values(before: &str) -> String {
    assert!(before.contains("  tag: \"\"\n"), "{before}");
    before.replace("  tag: \"\"\n", "  tag: \"v3.8.1\"\n")
}

fn bumped_chart(before: &str) -> String {
    assert!(before.contains("appVersion: \"1.16.0\"\n"), "{before}");
    before.replace("appVersion: \"1.16.0\"\n", "appVersion: \"3.8.1\"\n")
}

/// The umbrella of openimsdk/helm-charts: subcharts at appVersion 1.16.0
/// under a parent at 3.6.0. Each one that deploys an image of the parent's
/// registry moves; the others are named with the reason.
#[test]
fn bump_moves_every_service_subchart_of_an_umbrella_by_its_image() {
    let dir = fixture("helm-charts");
    let root = dir.path();
    let before = snapshot(root);
    let json = json_ok(&mut bump(root, "charts/openim-server", &["--no-verify"]));
    let after = snapshot(root);
    for s in [
        "openim-msggateway",
        "openim-push",
        "openim-rpc-user",
        "openim-msggateway-proxy",
    ] {
        let v = format!("{SUB}/{s}/values.yaml");
        assert_eq!(after[&v], bumped_values(&before[&v]), "{v}");
        let c = format!("{SUB}/{s}/Chart.yaml");
        assert_eq!(after[&c], bumped_chart(&before[&c]), "{c}");
    }
    let v = "charts/openim-server/values.yaml";
    assert_eq!(after[v], bumped_values(&before[v]));
    let c = "charts/openim-server/Chart.yaml";
    assert_eq!(
        after[c],
        before[c]
            .replace("version: 0.1.17\n", "version: 0.1.18\n")
            .replace("appVersion: \"3.6.0\"", "appVersion: \"3.8.1\"")
    );
    // Somebody else's registry and the infra subchart: left, and named.
    let changed: Vec<&String> = after.keys().filter(|k| after[*k] != before[*k]).collect();
    assert_eq!(changed.len(), 10, "{changed:?}");
    assert_eq!(
        names(&json["skipped"], "name"),
        ["openim-msgtransfer", "redis"]
    );
    let reasons = names(&json["skipped"], "reason");
    assert!(
        reasons[0].contains("registry.example.net/someone/openim-msgtransfer")
            && reasons[0].contains("ghcr.io/openimsdk"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("docker.io/bitnami/redis"),
        "{reasons:?}"
    );
    assert_eq!(json["skipped"][1]["subchart"], format!("{SUB}/redis"));
    assert_eq!(json["warnings"], serde_json::json!([]));
    assert_eq!(json["images"].as_array().unwrap().len(), 5);

    // Text: the same names on stderr; a re-run changes nothing and says so.
    let (out, err) = stderr_of(&mut bump(root, "charts/openim-server", &["--no-verify"]));
    assert_eq!(out, "");
    assert!(
        err.contains(&format!(
            "skipped subchart {SUB}/redis (redis): it deploys docker.io/bitnami/redis, not an image in ghcr.io/openimsdk"
        )),
        "{err}"
    );
    assert!(
        err.contains("skipped subchart charts/openim-server/charts/openim-msgtransfer"),
        "{err}"
    );
    assert!(
        err.contains("nothing to change: every file is up to date"),
        "{err}"
    );
    assert_eq!(snapshot(root), after);
}

/// With the source repository's configuration, its services and registries
/// decide: a companion image it does not build is skipped, a service in a
/// registry it does not push to is a warning (an error with --strict).
#[test]
fn bump_with_the_source_configuration_warns_about_other_registries() {
    let src = source("[ghcr.io/openimsdk]", "");
    let config = src.path().join("openim-release.yaml");
    let config = config.to_str().unwrap();
    let dir = fixture("helm-charts");
    let root = dir.path();
    let before = snapshot(root);

    let err = fails_with(
        &mut bump(
            root,
            "charts/openim-server",
            &["--config", config, "--no-verify", "--strict"],
        ),
        2,
    );
    assert!(
        err.contains("refusing to edit anything with 1 warning (--strict)")
            && err.contains(&format!("{SUB}/openim-msgtransfer/values.yaml"))
            && err.contains("registry.example.net/someone/openim-msgtransfer"),
        "{err}"
    );
    assert_eq!(snapshot(root), before, "nothing written");

    let json = json_ok(&mut bump(
        root,
        "charts/openim-server",
        &["--config", config, "--no-verify"],
    ));
    assert_eq!(
        names(&json["warnings"], "file"),
        [format!("{SUB}/openim-msgtransfer/values.yaml")]
    );
    assert!(json["warnings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("in a registry that is not configured (ghcr.io/openimsdk)"));
    assert_eq!(
        names(&json["skipped"], "name"),
        ["openim-msggateway-proxy", "openim-msgtransfer", "redis"]
    );
    assert!(json["skipped"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("not one of the configured services"));
    let after = snapshot(root);
    for s in ["openim-msggateway-proxy", "openim-msgtransfer", "redis"] {
        let v = format!("{SUB}/{s}/values.yaml");
        assert_eq!(after[&v], before[&v], "{v}");
    }
    for s in ["openim-msggateway", "openim-push", "openim-rpc-user"] {
        let v = format!("{SUB}/{s}/values.yaml");
        assert_eq!(after[&v], bumped_values(&before[&v]), "{v}");
    }
}

/// An umbrella whose images are all the placeholder `nginx` (openim-chat):
/// nothing tells which subcharts are the services'. Refused, with the way out.
#[test]
fn bump_asks_for_the_registry_when_nothing_names_it() {
    let dir = fixture("helm-charts");
    let root = dir.path();
    let before = snapshot(root);
    let err = fails_with(&mut bump(root, "charts/openim-chat", &["--no-verify"]), 2);
    assert!(
        err.contains("cannot tell which subcharts of charts/openim-chat deploy your services: the image of charts/openim-chat/values.yaml (`nginx`) names no registry; pass --registry"),
        "{err}"
    );
    // An umbrella whose own values have no image at all.
    let other = tempfile::tempdir().unwrap();
    crate::deploy_fixture::write_layout(other.path(), "ghcr.io/openimsdk");
    let err = fails_with(
        &mut bump(other.path(), "charts/openim-server", &["--no-verify"]),
        2,
    );
    assert!(
        err.contains("charts/openim-server/values.yaml names no repository beside `image.tag`; pass --registry"),
        "{err}"
    );
    // With a registry: the chart's own key is set as asked, but it deploys
    // nginx, and no subchart deploys a service: said, and --strict refuses.
    let err = fails_with(
        &mut bump(
            root,
            "charts/openim-chat",
            &["--registry", "ghcr.io/openimsdk", "--no-verify", "--strict"],
        ),
        2,
    );
    assert!(
        err.contains("charts/openim-chat/values.yaml: `image.tag` (nginx) deploys nginx"),
        "{err}"
    );
    for s in ["admin-rpc", "chat-api", "chat-rpc"] {
        assert!(
            err.contains(&format!(
                "skipped subchart charts/openim-chat/charts/{s} ({s}): it deploys nginx, not an image in ghcr.io/openimsdk"
            )),
            "{err}"
        );
    }
    assert_eq!(snapshot(root), before, "nothing written");
}

/// A key path that would write a tag where none belongs changes nothing:
/// a look-alike of an existing key, a number, a boolean, a list, a mapping.
#[test]
fn wrong_key_paths_are_refused_and_nothing_is_written() {
    let dir = fixture("helm-charts");
    let root = dir.path();
    let before = snapshot(root);
    let values = "charts/openim-server/values.yaml";
    for (key, needle) in [
        (
            "image.Tag",
            "there is no `Tag` but there is `tag` (line 9); refusing to add `Tag` beside it (keys are case-sensitive): did you mean `image.tag`?",
        ),
        (
            "replicaCount",
            "(line 3) holds the integer `1`, not an image tag",
        ),
        ("autoscaling.enabled", "holds the boolean `false`"),
        ("autoscaling.targetCPUUtilizationPercentage", "holds the integer `80`"),
        ("ingress.hosts", "holds a list"),
        ("image", "holds a mapping, not an image tag; refusing to overwrite it; did you mean `image.tag`?"),
    ] {
        let err = fails_with(
            &mut bump(root, "charts/openim-server", &["--key", key, "--no-verify"]),
            2,
        );
        assert!(
            err.contains(&format!("error: {values}: key path `{key}`")) && err.contains(needle),
            "{key}: {err}"
        );
        assert_eq!(snapshot(root), before, "{key}: nothing written");
    }
}

/// The installation's override file and the chart's own values, in one
/// entry: every service's tag in both, the chart's version bumped once.
#[test]
fn apply_edits_a_chart_through_several_values_files_and_bumps_it_once() {
    let src = source(
        "[ghcr.io/openimsdk, registry.example.org/openimsdk]",
        "deploy:\n  charts:\n    - path: charts/openim-server\n      values: [charts/openim-server/values.yaml, k8s-open-im-server-config.yaml]\n",
    );
    let dir = fixture("helm-charts");
    let root = dir.path();
    let before = snapshot(root);
    let json = json_ok(&mut apply(&src, root, &[]));
    let after = snapshot(root);
    let c = "charts/openim-server/Chart.yaml";
    assert!(after[c].contains("\nversion: 0.1.18\n"), "{}", after[c]);
    let o = "k8s-open-im-server-config.yaml";
    assert_eq!(
        after[o],
        before[o].replace("tag: \"release-v3.6\"", "tag: \"v3.8.1\""),
        "every service's override, not the proxy's"
    );
    assert!(after[o].contains("    tag: \"v3.5.0\"\n"));
    let v = "charts/openim-server/values.yaml";
    assert_eq!(after[v], bumped_values(&before[v]));
    let services: std::collections::BTreeSet<String> =
        names(&json["images"], "service").into_iter().collect();
    assert_eq!(services.into_iter().collect::<Vec<_>>(), SERVER);
    // The service whose subchart points elsewhere: its override moved, its
    // own default did not, and that is a warning naming the file; so did
    // the subchart's appVersion, which that default's empty tag follows.
    let m = format!("{SUB}/openim-msgtransfer/values.yaml");
    let mc = format!("{SUB}/openim-msgtransfer/Chart.yaml");
    assert_eq!(after[&m], before[&m]);
    assert_eq!(after[&mc], before[&mc]);
    assert_eq!(names(&json["warnings"], "file"), [m.clone(), mc.clone()]);
    assert_eq!(
        names(&json["skipped"], "name"),
        ["openim-msggateway-proxy", "redis"]
    );

    // A re-run: nothing to change, the version does not creep, and the
    // warning still stands, so the files are not all "up to date".
    let (_, err) = stderr_of(&mut apply(&src, root, &[]));
    assert_eq!(snapshot(root), after);
    assert!(
        err.contains(&format!(
            "warning: {m}: `image.tag` deploys registry.example.net/someone/openim-msgtransfer"
        )) && err.contains("nothing to change, but see the 2 warnings above")
            && !err.contains("up to date"),
        "{err}"
    );
}

/// Two entries for one chart (the chart's values, then the override file
/// with its own keys): its version moves once in a run.
#[test]
fn a_chart_named_by_several_entries_is_bumped_once() {
    let src = source(
        "[ghcr.io/openimsdk]",
        "deploy:\n  charts:\n    - path: charts/openim-server\n    - path: charts/openim-server/\n      values: k8s-open-im-server-config.yaml\n      images: { openim-api: image.tag }\n      bump: minor\n",
    );
    let dir = fixture("helm-charts");
    let root = dir.path();
    let json = json_ok(&mut apply(&src, root, &[]));
    let chart = read(root, "charts/openim-server/Chart.yaml");
    assert!(chart.contains("\nversion: 0.2.0\n"), "{chart}");
    let versions: Vec<&serde_json::Value> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["key"] == "version")
        .collect();
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert!(read(root, "k8s-open-im-server-config.yaml")
        .contains("image:\n  repository: registry.example.org/openimsdk/openim-api\n  pullPolicy: Always\n  tag: \"v3.8.1\"\n"));
    // The override file names a registry that is not configured: its
    // `image.tag` is set as configured, the subcharts' overrides are left,
    // each with a warning.
    let mut files = names(&json["warnings"], "file");
    files.dedup();
    assert_eq!(
        files,
        [
            format!("{SUB}/openim-msgtransfer/values.yaml"),
            "k8s-open-im-server-config.yaml".to_string(),
        ]
    );
    assert!(read(root, "k8s-open-im-server-config.yaml").contains("openim-push:\n  image:\n    repository: registry.example.org/openimsdk/openim-push\n    tag: \"release-v3.6\"\n"));
    let skipped = names(&json["skipped"], "name");
    assert_eq!(
        skipped,
        ["openim-msggateway-proxy", "openim-msgtransfer", "redis"]
    );
}

/// A compose `.env` whose images are not the services' (the whole server
/// as one image), and a chart where nothing deploys a service: warnings
/// naming them, never "up to date"; --strict refuses.
#[test]
fn files_and_charts_where_nothing_matched_are_warnings() {
    let src = source("[docker.io/openim]", "deploy:\n  env_files: [.env]\n");
    let dir = fixture("openim-docker");
    let root = dir.path();
    let before = snapshot(root);
    let json = json_ok(&mut apply(&src, root, &[]));
    assert_eq!(json["changed"], false);
    assert_eq!(names(&json["warnings"], "file"), [".env"]);
    let message = json["warnings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("no image of a configured service in it")
            && message.contains("openim/openim-web-front, openim/openim-server, openim/openim-chat, which are not a configured service"),
        "{message}"
    );
    let (_, err) = stderr_of(&mut apply(&src, root, &[]));
    assert!(
        err.contains("warning: .env: no image of a configured service")
            && !err.contains("every file is up to date"),
        "{err}"
    );
    let err = fails_with(&mut apply(&src, root, &["--strict"]), 2);
    assert!(err.contains("(--strict): .env: "), "{err}");
    assert_eq!(snapshot(root), before);

    // A chart whose subcharts and values deploy only nginx.
    let src = source(
        "[ghcr.io/openimsdk]",
        "deploy:\n  charts:\n    - path: charts/openim-chat\n",
    );
    let dir = fixture("helm-charts");
    let root = dir.path();
    let before = snapshot(root);
    let json = json_ok(&mut apply(&src, root, &[]));
    assert_eq!(json["changed"], false);
    assert_eq!(names(&json["warnings"], "file"), ["charts/openim-chat"]);
    assert!(json["warnings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("none of its 3 subcharts deploys a configured service"));
    assert_eq!(
        names(&json["skipped"], "name"),
        ["admin-rpc", "chat-api", "chat-rpc"]
    );
    assert_eq!(snapshot(root), before, "not even the appVersion");
    // deploy.strict does what --strict does (for `release`, which runs gitops).
    let strict = source(
        "[ghcr.io/openimsdk]",
        "deploy:\n  strict: true\n  charts:\n    - path: charts/openim-chat\n",
    );
    let err = fails_with(&mut apply(&strict, root, &[]), 2);
    assert!(
        err.contains("refusing to edit anything with 1 warning"),
        "{err}"
    );
}

/// A name under deploy.charts[].images that is not a service: refused with
/// the file, the line, the name and the nearest service.
#[test]
fn unknown_service_names_in_deploy_are_refused() {
    let src = source(
        "[ghcr.io/openimsdk]",
        "deploy:\n  charts:\n    - path: charts/openim-server\n      images:\n        openim-api: image.tag\n        openim-pushh: openim-push.image.tag\n",
    );
    let dir = fixture("helm-charts");
    let root = dir.path();
    let before = snapshot(root);
    let err = fails_with(&mut apply(&src, root, &[]), 2);
    assert!(
        err.contains("openim-release.yaml:14: deploy.charts[0].images: `openim-pushh` is not a service; the services are openim-api, openim-msggateway, openim-msgtransfer, openim-push, openim-rpc-user; did you mean `openim-push`?"),
        "{err}"
    );
    assert_eq!(snapshot(root), before);
}

/// "1 file", not "1 files".
#[test]
fn a_dry_run_of_one_file_says_so() {
    let dir = fixture("helm-charts");
    let root = dir.path();
    let mut cmd = bin(root);
    cmd.args(["chart", "bump", &format!("{SUB}/openim-push")])
        .args(["--app-version", "1.16.0", "--image-tag", "v3.8.1"])
        .args(["--chart-bump", "none", "--no-verify", "--dry-run"]);
    let (out, err) = stderr_of(&mut cmd);
    assert!(out.contains("+  tag: \"v3.8.1\"\n"), "{out}");
    assert!(
        err.contains("dry run: 1 file would change; nothing was written"),
        "{err}"
    );
}

/// `chart apply --stage dev`, unverified; its JSON.
fn apply_dev(src: &TestRepo, root: &Path) -> serde_json::Value {
    json_ok(bin(src.path()).args([
        "chart",
        "apply",
        "--dir",
        root.to_str().unwrap(),
        "--stage",
        "dev",
        "--no-verify",
    ]))
}

/// Dev builds of one branch all get the branch tag; the deploy files get
/// the tag naming the commit, so each new commit changes the deploy.
#[test]
fn dev_deploys_the_tag_of_the_commit_so_each_commit_changes_the_deploy() {
    let deploy = "deploy:\n  charts:\n    - path: charts/openim-server\n";
    let src = source("[ghcr.io/openimsdk]", deploy);
    let dir = fixture("helm-charts");
    let root = dir.path();
    let push = format!("{SUB}/openim-push/values.yaml");
    for _ in 0..2 {
        let sha7 = src.head()[..7].to_string();
        let json = apply_dev(&src, root);
        assert_eq!(json["changed"], true);
        assert!(
            read(root, &push).contains(&format!("  tag: \"sha-{sha7}\"\n")),
            "{}",
            read(root, &push)
        );
        assert!(read(root, "charts/openim-server/values.yaml")
            .contains(&format!("  tag: \"sha-{sha7}\"\n")));
        src.commit("more work on main");
    }

    // deploy_tag: first deploys the branch tag, as before.
    let src = source(
        "[ghcr.io/openimsdk]",
        &format!("{deploy}stages:\n  dev: {{ deploy_tag: first }}\n"),
    );
    let dir = fixture("helm-charts");
    let root = dir.path();
    assert_eq!(apply_dev(&src, root)["changed"], true);
    assert!(read(root, &push).contains("  tag: \"main\"\n"));
    src.commit("later");
    assert_eq!(apply_dev(&src, root)["changed"], false);

    // Dev tags without the sha: said, not silent; refused when asked for.
    let no_sha = "tags:\n  dev:\n    tags: [\"{branch}\"]\n";
    let src = source("[ghcr.io/openimsdk]", &format!("{deploy}{no_sha}"));
    let dir = fixture("helm-charts");
    let root = dir.path();
    let mut cmd = bin(src.path());
    cmd.args(["chart", "apply", "--dir", root.to_str().unwrap()])
        .args(["--stage", "dev", "--no-verify"]);
    let (_, err) = stderr_of(&mut cmd);
    assert!(
        err.contains(
            "warning: deploying the moving tag main: none of the dev tags (main) names the commit"
        ),
        "{err}"
    );
    assert!(read(root, &push).contains("  tag: \"main\"\n"));
    let src = source(
        "[ghcr.io/openimsdk]",
        &format!("{deploy}{no_sha}stages:\n  dev: {{ deploy_tag: commit }}\n"),
    );
    let before = snapshot(root);
    let err = fails_with(
        bin(src.path())
            .args(["chart", "apply", "--dir", root.to_str().unwrap()])
            .args(["--stage", "dev", "--no-verify"]),
        2,
    );
    assert!(
        err.contains(
            "stages.dev.deploy_tag is commit, but none of the dev tags (main) names the commit"
        ),
        "{err}"
    );
    assert_eq!(snapshot(root), before);
}

/// `plan --stage dev` (what `release` runs) deploys the commit's tag too.
#[test]
#[ignore = "needs the services of scripts/test"]
fn the_dev_release_plan_deploys_the_tag_of_the_commit() {
    let s = crate::need_services!();
    let ns = crate::services::fresh_namespace(&s.registry, "devtag");
    let (deploy_url, name) = crate::gitops::deploy_remote(s, &ns);
    let src = crate::build::fixture(std::slice::from_ref(&ns), &["linux/amd64"]);
    let mut cfg = read(src.path(), "openim-release.yaml");
    cfg.push_str(&format!(
        "deploy:\n  url: {deploy_url}\n  repository: openimsdk/{name}\n  mode: push\n  charts:\n    - path: charts/openim-server\n"
    ));
    src.write("openim-release.yaml", &cfg);
    src.git(&["add", "-A"]);
    src.git(&["commit", "-q", "-m", "deploy config"]);
    let sha7 = src.head()[..7].to_string();
    let out = stdout_ok(
        src.bin()
            .env("DOCKER_HOST", &s.docker_host)
            .env("GITHUB_TOKEN", &s.git_token)
            .args(["plan", "--stage", "dev"]),
    );
    assert!(
        out.contains(&format!("# dev: tags\nmain\nsha-{sha7}\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!("+  tag: \"sha-{sha7}\"\n")) && !out.contains("+  tag: \"main\""),
        "{out}"
    );
}

/// gitops reports the same warnings and skipped subcharts (JSON fields
/// `warnings`, `skipped`), and refuses with --strict.
#[test]
#[ignore = "needs the services of scripts/test"]
fn gitops_reports_warnings_and_skipped_subcharts_and_strict_refuses() {
    let s = crate::need_services!();
    let (deploy_url, name) = crate::gitops::deploy_remote(s, "ghcr.io/openimsdk");
    // The infra subchart alone, as if it were a chart of ours.
    let src = source(
        "[ghcr.io/openimsdk]",
        &format!(
            "deploy:\n  url: {deploy_url}\n  repository: openimsdk/{name}\n  charts:\n    - path: charts/openim-server\n    - path: charts/openim-server/charts/redis\n"
        ),
    );
    let gitops = |extra: &[&str]| {
        let mut cmd = bin(src.path());
        cmd.env("GITHUB_TOKEN", &s.git_token)
            .args(["gitops", "--version", "3.8.1", "--image-tag", "v3.8.1"])
            .args(["--stage-name", "rc", "--dry-run", "--no-verify"])
            .args(extra);
        cmd
    };
    let json = json_ok(&mut gitops(&[]));
    assert_eq!(json["changed"], true);
    assert_eq!(
        names(&json["warnings"], "file"),
        ["charts/openim-server/charts/redis"]
    );
    assert_eq!(names(&json["skipped"], "name"), ["redis"]);
    let err = fails_with(&mut gitops(&["--strict"]), 2);
    assert!(
        err.contains("(--strict): charts/openim-server/charts/redis: its values"),
        "{err}"
    );
}

/// Helm needs no `values.yaml`: an umbrella chart without its own is edited
/// through its subcharts; a values file the configuration names must exist.
#[test]
fn a_chart_without_values_yaml_is_fine_unless_one_is_configured() {
    let dir = fixture("helm-charts");
    let root = dir.path();
    std::fs::remove_file(root.join("charts/openim-server/values.yaml")).unwrap();
    let src = source(
        "[ghcr.io/openimsdk]",
        "deploy:\n  charts:\n    - path: charts/openim-server\n",
    );
    let json = json_ok(&mut apply(&src, root, &[]));
    assert_eq!(json["changed"], true);
    let api = read(root, &format!("{SUB}/openim-push/values.yaml"));
    assert!(api.contains("tag: \"v3.8.1\""), "{api}");
    let before = snapshot(root);
    let named = source(
        "[ghcr.io/openimsdk]",
        "deploy:\n  charts:\n    - path: charts/openim-server\n      values: [charts/openim-server/values.yaml]\n",
    );
    let err = fails_with(&mut apply(&named, root, &[]), 2);
    assert!(
        err.contains("charts/openim-server/values.yaml not found"),
        "{err}"
    );
    assert_eq!(snapshot(root), before);
}

/// The override file deploys msgtransfer from a configured registry, but
/// the subchart's own values name another one with an empty tag (which
/// defaults to the subchart's appVersion): the override is set, and the
/// subchart's appVersion stays, or installing without the override file
/// would pull that other registry's image at the new version.
#[test]
fn a_subchart_whose_own_image_is_left_alone_keeps_its_app_version() {
    let src = source("[registry.example.org/openimsdk]", "");
    let config = src.path().join("openim-release.yaml");
    let config = config.to_str().unwrap();
    let dir = fixture("helm-charts");
    let root = dir.path();
    let before = snapshot(root);
    let json = json_ok(&mut bump(
        root,
        "charts/openim-server",
        &[
            "--config",
            config,
            "--no-verify",
            "--values",
            "k8s-open-im-server-config.yaml",
        ],
    ));
    let after = snapshot(root);
    let chart = format!("{SUB}/openim-msgtransfer/Chart.yaml");
    assert_eq!(after[&chart], before[&chart], "appVersion moved: {json}");
    assert!(
        after["k8s-open-im-server-config.yaml"].contains(
            "openim-msgtransfer:\n  image:\n    repository: registry.example.org/openimsdk/openim-msgtransfer\n    tag: \"v3.8.1\""
        ),
        "{}",
        after["k8s-open-im-server-config.yaml"]
    );
    let warned: Vec<&str> = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["file"] == chart.as_str())
        .map(|w| w["message"].as_str().unwrap())
        .collect();
    assert!(
        warned.len() == 1 && warned[0].starts_with("appVersion left as it is"),
        "{json}"
    );
}

/// `--pin key` (the default) writes `image.digest`, which pins only where a
/// template reads it: openimsdk/helm-charts' templates write
/// `repository:tag`. Said with the way out; not when a template reads it.
#[test]
fn a_digest_key_no_template_reads_is_a_warning() {
    let dir = fixture("helm-charts");
    let root = dir.path();
    let digest = format!("sha256:{}", "a".repeat(64));
    let args = [
        "--registry",
        "ghcr.io/openimsdk",
        "--digest",
        digest.as_str(),
        "--no-verify",
    ];
    let json = json_ok(&mut bump(root, "charts/openim-server", &args));
    let warned: Vec<&str> = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["file"] == "charts/openim-server")
        .map(|w| w["message"].as_str().unwrap())
        .collect();
    assert!(
        warned.len() == 1 && warned[0].contains("pin with `digest: tag`"),
        "{json}"
    );
    // A template that reads it: no warning.
    let other = fixture("helm-charts");
    let t = other
        .path()
        .join("charts/openim-server/charts/openim-api/templates");
    std::fs::create_dir_all(&t).unwrap();
    std::fs::write(
        t.join("deployment.yaml"),
        "image: \"{{ .Values.image.repository }}@{{ .Values.image.digest }}\"\n",
    )
    .unwrap();
    let json = json_ok(&mut bump(other.path(), "charts/openim-server", &args));
    assert!(
        !json["warnings"]
            .to_string()
            .contains("pin with `digest: tag`"),
        "{json}"
    );
}

/// A values file listed for a chart that no image of a service is set in
/// (helm-charts' config-imserver.yaml holds the server's settings): a
/// warning naming it, not a silent no-op.
#[test]
fn a_listed_values_file_that_nothing_is_set_in_is_a_warning() {
    let src = source(
        "[ghcr.io/openimsdk, registry.example.org/openimsdk]",
        "deploy:\n  charts:\n    - path: charts/openim-server\n      values: [charts/openim-server/values.yaml, k8s-open-im-server-config.yaml, config-imserver.yaml]\n",
    );
    let dir = fixture("helm-charts");
    let root = dir.path();
    std::fs::write(
        root.join("config-imserver.yaml"),
        "# the server's own settings\nmongo:\n  address: [mongo:27017]\n",
    )
    .unwrap();
    let json = json_ok(&mut apply(&src, root, &[]));
    let warned: Vec<&str> = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["file"] == "config-imserver.yaml")
        .map(|w| w["message"].as_str().unwrap())
        .collect();
    assert!(
        warned.len() == 1 && warned[0].contains("no image of a configured service is set in it"),
        "{json}"
    );
    assert!(
        !json["warnings"]
            .to_string()
            .contains("k8s-open-im-server-config.yaml: listed"),
        "{json}"
    );
}

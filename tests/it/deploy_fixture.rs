//! A deploy repository in OpenIM's helm-charts layout: an umbrella chart
//! with subcharts (one per service, plus an infra subchart that must never
//! be touched), a global override file, a Kubernetes manifest and a compose
//! .env file. Written with the quirks users' files have: comments, quoted
//! appVersion, `tag: ""`, a Chart.yaml without final newline, CRLF.

use std::path::Path;

pub const SERVICES: &[&str] = &["openim-api", "openim-push", "openim-rpc-user"];

pub fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

pub fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap()
}

/// Write the layout under `root`; image repositories live in `registry`
/// (e.g. `ghcr.io/openimsdk`).
pub fn write_layout(root: &Path, registry: &str) {
    write(
        root,
        "charts/openim-server/Chart.yaml",
        "apiVersion: v2\nname: openim-server\ndescription: OpenIM server umbrella chart\n\n# This is the chart version.\nversion: 0.1.17\n\n# It is recommended to use it with quotes.\nappVersion: \"3.8.0\"\n\ndependencies:\n  - name: openim-api\n    version: 0.1.17\n  - name: redis\n    version: 18.0.0",
    );
    write(
        root,
        "charts/openim-server/values.yaml",
        "# Global values of the umbrella chart.\nglobal:\n  imageRegistry: \"\"\n\nopenim-api:\n  replicaCount: 2   # scaled for tests\n",
    );
    for s in SERVICES {
        write(
            root,
            &format!("charts/openim-server/charts/{s}/Chart.yaml"),
            &format!("apiVersion: v2\nname: {s}\nversion: 0.1.17\nappVersion: \"3.8.0\"\n"),
        );
        write(
            root,
            &format!("charts/openim-server/charts/{s}/values.yaml"),
            &format!(
                "# Default values for {s}.\nreplicaCount: 1\n\nimage:\n  repository: {registry}/{s}\n  pullPolicy: IfNotPresent\n  # Overrides the image tag whose default is the chart appVersion.\n  tag: \"\"\n\nservice:\n  type: ClusterIP\n"
            ),
        );
    }
    write(
        root,
        "charts/openim-server/charts/redis/Chart.yaml",
        "apiVersion: v2\nname: redis\nversion: 18.0.0\nappVersion: \"7.2.0\"\n",
    );
    write(
        root,
        "charts/openim-server/charts/redis/values.yaml",
        "image:\n  repository: bitnami/redis\n  tag: 7.2.0\n",
    );
    // The global override file of openimsdk/helm-charts, with CRLF endings.
    let global = format!(
        "# OpenIM global config\nopenim-api:\n  image:\n    repository: {registry}/openim-api\n    tag: 'v3.8.0'\nopenim-push:\n  image: {{ repository: {registry}/openim-push, tag: v3.8.0 }}\nmongo:\n  image: mongo:7\n"
    )
    .replace('\n', "\r\n");
    write(root, "k8s-open-im-server-config.yaml", &global);
    write(
        root,
        "k8s/openim-api.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: openim-api\nspec:\n  template:\n    spec:\n      containers:\n        - name: openim-api\n          image: {registry}/openim-api:v3.8.0 # do not edit by hand\n        - name: sidecar\n          image: busybox:1.36\n"
        ),
    );
    write(
        root,
        "docker-compose/.env",
        &format!(
            "# images\nOPENIM_API_IMAGE={registry}/openim-api:v3.8.0\nMONGO_IMAGE=mongo:7.0\n"
        ),
    );
}

/// A copy of `tests/fixtures/<name>` in a temporary directory.
pub fn fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    copy_dir(&from, dir.path());
    dir
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Every file under `root` (relative path → content), to show that a
/// refused command wrote nothing.
pub fn snapshot(root: &Path) -> std::collections::BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != ".git") {
                    walk(root, &path, out);
                }
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(root, root, &mut out);
    out
}

//! What `build` pushes when the engine's image export carries layers that
//! are already compressed (the containerd image store): synthetic
//! `docker save` tars of both shapes, with a plain, a gzip and a zstd layer,
//! read by `build::export`, pushed to the test registry with the registry
//! client `build` uses, then checked as a user sees them: skopeo (digests,
//! media types, diff_ids) and, for what dockerd 20.10 can pull, `docker pull`
//! and `docker run` of the image.

use crate::need_services;
use crate::services::{self, Services};
use openim_release::build::export::{read_export, ExportedImage};
use openim_release::clients::registry::Registry;
use openim_release::oci::reference::RegistryPrefix;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::Command;

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::build::sha256_hex(bytes))
}

/// A layer tar of (path, mode, content) entries.
fn layer(files: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, mode, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(*mode);
        h.set_mtime(0);
        b.append_data(&mut h, path, *content).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(plain: &[u8]) -> Vec<u8> {
    // Another level than the one `build` gzips with: a blob that was
    // compressed again would not have these bytes.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(plain).unwrap();
    gz.finish().unwrap()
}

fn zstd(plain: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(plain, 3).unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Plain,
    Gzip,
    Zstd,
}

/// A layer as the engine exports it: its plain tar and the bytes in the export.
struct Layer {
    plain: Vec<u8>,
    stored: Vec<u8>,
    kind: Kind,
}

fn layer_of(kind: Kind, files: &[(&str, u32, &[u8])]) -> Layer {
    let plain = layer(files);
    let stored = match kind {
        Kind::Plain => plain.clone(),
        Kind::Gzip => gzip(&plain),
        Kind::Zstd => zstd(&plain),
    };
    Layer {
        plain,
        stored,
        kind,
    }
}

fn config(layers: &[Layer]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha(&l.plain)).collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/cat"], "Labels": {"test": "export"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": layers.iter().map(|_| serde_json::json!({"created_by": "test"})).collect::<Vec<_>>()
    }))
    .unwrap()
}

fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// Graphdriver `docker save`: `<id>/layer.tar`, `<id>.json`, `manifest.json`
/// with `LayerSources`, `repositories`.
fn classic_export(layers: &[Layer]) -> Vec<u8> {
    let mut files = Vec::new();
    let mut names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let name = format!("{:064x}/layer.tar", i + 1);
        files.push((name.clone(), l.stored.clone()));
        names.push(name);
    }
    let cfg = config(layers);
    let cfg_name = format!("{}.json", &sha(&cfg)[7..]);
    files.push((cfg_name.clone(), cfg));
    files.push((
        "manifest.json".into(),
        serde_json::to_vec(
            &serde_json::json!([{"Config": cfg_name, "RepoTags": ["t:1"],
            "Layers": names, "LayerSources": {}}]),
        )
        .unwrap(),
    ));
    files.push(("repositories".into(), br#"{"t":{"1":"x"}}"#.to_vec()));
    tar_of(&files)
}

/// containerd image store `docker save`: OCI layout, `index.json` pointing
/// to a nested index (the image and an attestation manifest), `manifest.json`
/// without `LayerSources`, no `repositories`.
fn containerd_export(layers: &[Layer]) -> Vec<u8> {
    let mut files: Vec<(String, Vec<u8>)> = vec![(
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    )];
    let mut add = |bytes: Vec<u8>| -> (String, usize) {
        let d = sha(&bytes);
        let n = bytes.len();
        files.push((format!("blobs/sha256/{}", &d[7..]), bytes));
        (d, n)
    };
    let (cfg, cfg_size) = add(config(layers));
    let mut descs = Vec::new();
    for l in layers {
        let mt = match l.kind {
            Kind::Plain => "application/vnd.oci.image.layer.v1.tar",
            Kind::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Kind::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        };
        let (d, n) = add(l.stored.clone());
        descs.push(serde_json::json!({"mediaType": mt, "digest": d, "size": n}));
    }
    let (m, m_size) = add(
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": cfg_size},
            "layers": descs}))
        .unwrap(),
    );
    let (empty, _) = add(b"{}".to_vec());
    let (att, att_size) = add(
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": empty, "size": 2},
            "layers": []}))
        .unwrap(),
    );
    let (nested, nested_size) = add(
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": m, "size": m_size,
                 "platform": {"architecture": "amd64", "os": "linux"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": att, "size": att_size,
                 "platform": {"architecture": "unknown", "os": "unknown"},
                 "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                                 "vnd.docker.reference.digest": m}}]}))
        .unwrap(),
    );
    let layer_paths: Vec<String> = layers
        .iter()
        .map(|l| format!("blobs/sha256/{}", &sha(&l.stored)[7..]))
        .collect();
    files.push((
        "index.json".into(),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
                           "digest": nested, "size": nested_size,
                           "annotations": {"io.containerd.image.name": "docker.io/library/t:1"}}]}))
        .unwrap(),
    ));
    files.push((
        "manifest.json".into(),
        serde_json::to_vec(
            &serde_json::json!([{"Config": format!("blobs/sha256/{}", &cfg[7..]),
            "RepoTags": ["t:1"], "Layers": layer_paths}]),
        )
        .unwrap(),
    ));
    tar_of(&files)
}

/// Read `export` as `build` does and push it as `<ns>/<name>:<tag>`.
fn push(export: &[u8], ns: &str, name: &str, tag: &str) -> ExportedImage {
    let dir = tempfile::tempdir().unwrap();
    let img = read_export(export, dir.path(), BTreeMap::new()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let prefix = RegistryPrefix::parse(ns).unwrap();
        let repo = prefix.repository(name);
        let registry = Registry::new(prefix, None, true);
        for blob in std::iter::once(&img.config).chain(&img.layers) {
            registry
                .push_blob(&repo, &blob.digest, &blob.path)
                .await
                .unwrap();
        }
        registry
            .put_manifest(&repo, tag, &img.manifest)
            .await
            .unwrap();
    });
    img
}

/// The pushed manifest's layers as skopeo sees them, checked against what
/// the export held: compressed layers byte for byte, plain ones gzipped;
/// and every layer, fetched from the registry and unpacked, hashes to the
/// config's diff_id.
fn check_in_registry(reference: &str, layers: &[Layer]) {
    let raw = services::inspect_raw(reference, None).unwrap();
    let pushed = raw["layers"].as_array().unwrap();
    assert_eq!(pushed.len(), layers.len(), "{raw}");
    let out = tempfile::tempdir().unwrap();
    let copy = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("dir:{}", out.path().display()))
        .output()
        .unwrap();
    assert!(
        copy.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&copy.stderr)
    );
    let cfg_digest = raw["config"]["digest"].as_str().unwrap();
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join(&cfg_digest[7..])).unwrap()).unwrap();
    for (i, (p, l)) in pushed.iter().zip(layers).enumerate() {
        let digest = p["digest"].as_str().unwrap();
        let media_type = p["mediaType"].as_str().unwrap();
        let blob = std::fs::read(out.path().join(&digest[7..])).unwrap();
        assert_eq!(sha(&blob), digest);
        let unpacked = match l.kind {
            Kind::Plain | Kind::Gzip => {
                assert_eq!(media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut v)
                    .unwrap();
                v
            }
            Kind::Zstd => {
                assert_eq!(media_type, "application/vnd.oci.image.layer.v1.tar+zstd");
                zstd::stream::decode_all(&blob[..]).unwrap()
            }
        };
        if l.kind != Kind::Plain {
            assert_eq!(
                digest,
                sha(&l.stored),
                "layer {i} was not pushed as exported"
            );
        }
        assert_eq!(unpacked, l.plain, "layer {i}");
        assert_eq!(cfg["rootfs"]["diff_ids"][i], sha(&unpacked), "layer {i}");
    }
}

fn docker_run(s: &Services, reference: &str, files: &[&str]) -> Result<String, String> {
    services::docker(s, &["pull", "-q", reference])?;
    let mut args = vec!["run", "--rm", reference];
    args.extend(files);
    let out = services::docker(s, &args);
    let _ = services::docker(s, &["rmi", reference]);
    out
}

fn image_layers(kinds: &[Kind]) -> Vec<Layer> {
    let cat = std::fs::read(services::static_tool("cat")).unwrap();
    let mut layers = vec![layer_of(
        Kind::Plain,
        &[("cat", 0o755, &cat), ("app/order.txt", 0o644, b"first\n")],
    )];
    for (i, kind) in kinds.iter().enumerate() {
        let name = format!("app/{kind:?}.txt");
        let text = format!("from a {kind:?} layer\n");
        let order = format!("layer {}\n", i + 2);
        layers.push(layer_of(
            *kind,
            &[
                (&name, 0o644, text.as_bytes()),
                ("app/order.txt", 0o644, order.as_bytes()),
            ],
        ));
    }
    layers
}

/// Plain and gzip layers: pushed, pulled and run by dockerd, in both shapes.
#[test]
#[ignore = "needs the services of scripts/test"]
fn gzip_layers_of_both_export_shapes_are_pushed_as_exported_and_run() {
    let s = need_services!();
    let ns = services::fresh_namespace(&s.registry, "gzlayers");
    let layers = image_layers(&[Kind::Gzip, Kind::Plain]);
    for (shape, export) in [
        ("classic", classic_export(&layers)),
        ("containerd", containerd_export(&layers)),
    ] {
        let img = push(&export, &ns, "app", shape);
        assert_eq!(img.platform.to_string(), "linux/amd64");
        let reference = format!("{ns}/app:{shape}");
        check_in_registry(&reference, &layers);
        let out = docker_run(
            s,
            &reference,
            &["/app/Gzip.txt", "/app/Plain.txt", "/app/order.txt"],
        )
        .unwrap_or_else(|e| panic!("{shape}: pulling and running {reference}: {e}"));
        assert_eq!(
            out, "from a Gzip layer\nfrom a Plain layer\nlayer 3",
            "{shape}"
        );
    }
}

/// A zstd layer (with plain and gzip ones): pushed byte for byte with the
/// zstd media type in both shapes; the registry's blobs unpack to the
/// config's diff_ids (skopeo). dockerd 20.10 cannot unpack zstd layers
/// (zstd came with Docker 23), so the pull is only expected to refuse
/// cleanly there, and to run on an engine that can.
#[test]
#[ignore = "needs the services of scripts/test"]
fn zstd_layers_of_both_export_shapes_are_pushed_as_exported() {
    let s = need_services!();
    let ns = services::fresh_namespace(&s.registry, "zstdlayers");
    let layers = image_layers(&[Kind::Gzip, Kind::Zstd]);
    for (shape, export) in [
        ("classic", classic_export(&layers)),
        ("containerd", containerd_export(&layers)),
    ] {
        push(&export, &ns, "app", shape);
        let reference = format!("{ns}/app:{shape}");
        check_in_registry(&reference, &layers);
        match docker_run(s, &reference, &["/app/Zstd.txt", "/app/order.txt"]) {
            Ok(out) => assert_eq!(out, "from a Zstd layer\nlayer 3", "{shape}"),
            Err(e) => {
                // dockerd 20.10 takes the zstd blob for a plain tar.
                let version = services::docker(s, &["version", "--format", "{{.Server.Version}}"])
                    .unwrap_or_default();
                assert!(
                    version.starts_with("20.") && e.contains("failed to register layer"),
                    "dockerd {version} could not pull or run {reference}: {e}"
                );
            }
        }
    }
}

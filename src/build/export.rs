//! Turn a `docker save` stream into registry-ready blobs on disk: the image
//! config, and each layer as the engine compressed it (gzip or zstd, kept
//! byte for byte) or, when it is a plain tar, gzipped reproducibly (same
//! content, same digest, so registries skip blobs they already have).

use crate::build::pgzip;
use crate::oci::{self, Descriptor, Encoded, ImageConfig, Manifest, Platform};
use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// A blob ready to upload.
#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: String,
    pub size: u64,
    pub path: PathBuf,
    pub media_type: String,
}

/// One platform's image, ready to push.
#[derive(Debug, Clone)]
pub struct ExportedImage {
    pub config: Blob,
    pub layers: Vec<Blob>,
    pub manifest: Encoded,
    pub platform: Platform,
    pub labels: BTreeMap<String, String>,
}

/// Read a `docker save` tar stream into `dir` (see [`read_export`]).
pub async fn export(
    mut stream: impl Stream<Item = Result<Bytes, bollard::errors::Error>> + Unpin,
    dir: &Path,
    annotations: BTreeMap<String, String>,
) -> Result<ExportedImage> {
    // The stream borrows the engine client, so it is pumped here while a
    // blocking thread reads the tar (and gzips the layers).
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
    let dir = dir.to_path_buf();
    let worker = tokio::task::spawn_blocking(move || {
        read_export(
            ChannelReader {
                rx,
                current: Bytes::new(),
            },
            &dir,
            annotations,
        )
    });
    while let Some(chunk) = stream.next().await {
        let failed = chunk.is_err();
        if tx.send(chunk.map_err(std::io::Error::other)).await.is_err() || failed {
            break;
        }
    }
    drop(tx);
    worker.await.context("exporting the image")?
}

/// A blocking reader over chunks sent from async code.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// One entry of `manifest.json` (both shapes write it; only the classic one
/// has `LayerSources` and a `repositories` file beside it).
#[derive(serde::Deserialize)]
struct SaveManifest {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Largest file kept in memory as a candidate config, manifest or index.
const SMALL: u64 = 4 * 1024 * 1024;

/// How a layer blob of the export is compressed, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar: gzipped here.
    None,
    /// Kept as it is (`1f 8b`).
    Gzip,
    /// Kept as it is (`28 b5 2f fd`, or a skippable frame `5? 2a 4d 18`).
    Zstd,
}

impl Compression {
    /// The compression of a blob that starts with `head` (at least 6 bytes
    /// unless the blob is shorter). bzip2 and xz, which `docker load`
    /// accepts but registries and the OCI spec do not, are refused.
    pub fn sniff(head: &[u8]) -> Result<Compression> {
        match head {
            [0x1f, 0x8b, ..] => Ok(Compression::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Ok(Compression::Zstd),
            [b, 0x2a, 0x4d, 0x18, ..] if b & 0xf0 == 0x50 => Ok(Compression::Zstd),
            [b'B', b'Z', b'h', ..] => Err(anyhow!(
                "the layer is bzip2-compressed, which registries do not take"
            )),
            [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Err(anyhow!(
                "the layer is xz-compressed, which registries do not take"
            )),
            _ => Ok(Compression::None),
        }
    }

    /// The OCI media type the pushed blob gets (the manifest is OCI's).
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None | Compression::Gzip => oci::MT_OCI_LAYER_GZIP,
            Compression::Zstd => oci::MT_OCI_LAYER_ZSTD,
        }
    }
}

/// A layer of the export stored as a registry blob, with the digest of its
/// uncompressed tar (the config's `diff_id`).
#[derive(Debug, Clone)]
struct Layer {
    blob: Blob,
    diff_id: String,
    compression: Compression,
}

/// Read a `docker save` tar into `dir`: the image config and each layer as a
/// registry blob. Both shapes engines write are read: the classic one
/// (`manifest.json` + `<id>/layer.tar` + `<id>.json`, layers plain tars) and
/// the OCI layout of Docker 25+ and of the containerd image store
/// (`index.json`, maybe pointing to a nested index, `blobs/sha256/…`, layers
/// plain, gzip or zstd). Plain layers are gzipped reproducibly; compressed
/// ones are kept byte for byte (compressing them again would make an image
/// whose layers unpack to a compressed file). Every layer is unpacked while
/// it is read to check its digest against the config's `diff_ids`: an
/// export that does not add up fails here instead of in a later pull.
pub fn read_export(
    input: impl Read,
    dir: &Path,
    annotations: BTreeMap<String, String>,
) -> Result<ExportedImage> {
    let mut archive = tar::Archive::new(input);
    let mut small: HashMap<String, Vec<u8>> = HashMap::new();
    // Every other blob, stored as a layer; the error of one that could not
    // be matters only if the image lists it as a layer.
    let mut layers: HashMap<String, Result<Layer, String>> = HashMap::new();
    // Classic exports write a repeated layer once and link the others to it.
    let mut links: HashMap<String, String> = HashMap::new();
    for (n, entry) in archive
        .entries()
        .context("reading the image export")?
        .enumerate()
    {
        let mut entry = entry.context("reading the image export")?;
        let name = clean(&entry.path()?.to_string_lossy());
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            if let Some(target) = entry.link_name()? {
                let target = target.to_string_lossy().into_owned();
                let resolved = if kind.is_symlink() {
                    match name.rsplit_once('/') {
                        Some((parent, _)) => clean(&format!("{parent}/{target}")),
                        None => clean(&target),
                    }
                } else {
                    clean(&target)
                };
                links.insert(name, resolved);
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let size = entry.size();
        if size < SMALL && !name.ends_with("layer.tar") {
            let mut bytes = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut bytes)?;
            let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
            if first == Some(b'{') || first == Some(b'[') {
                small.insert(name, bytes);
            } else {
                let layer = store_layer(&mut &bytes[..], dir, n).map_err(|e| format!("{e:#}"));
                layers.insert(name, layer);
            }
            continue;
        }
        let layer = store_layer(&mut entry, dir, n).map_err(|e| format!("{e:#}"));
        layers.insert(name, layer);
    }
    let (config_name, layer_names) = locate_image(&small)?;
    let resolve = |name: &str| -> String {
        let mut name = name.to_string();
        for _ in 0..8 {
            match links.get(&name) {
                Some(next) => name = next.clone(),
                None => break,
            }
        }
        name
    };
    let config_bytes = small
        .get(&resolve(&config_name))
        .ok_or_else(|| anyhow!("the image export lacks its config {config_name}"))?;
    let config: ImageConfig =
        serde_json::from_slice(config_bytes).context("parsing the image config")?;
    let config_path = dir.join("config.json");
    std::fs::write(&config_path, config_bytes)
        .with_context(|| format!("writing {}", config_path.display()))?;
    let config_blob = Blob {
        digest: oci::sha256_digest(config_bytes),
        size: config_bytes.len() as u64,
        path: config_path,
        media_type: oci::MT_OCI_CONFIG.into(),
    };
    let mut ordered: Vec<Layer> = Vec::new();
    for (i, l) in layer_names.iter().enumerate() {
        let name = resolve(l);
        let layer = match layers.get(&name) {
            Some(Ok(layer)) => layer.clone(),
            Some(Err(e)) => anyhow::bail!("reading layer {name} of the image export: {e}"),
            // A layer whose first bytes looked like JSON (a tar whose first
            // file name starts with `{`) was kept in memory.
            None => match small.get(&name) {
                Some(bytes) => store_layer(&mut &bytes[..], dir, 1_000_000 + i)
                    .with_context(|| format!("reading layer {name} of the image export"))?,
                None => anyhow::bail!("the image export lacks layer {l}"),
            },
        };
        ordered.push(layer);
    }
    let diff_ids = config
        .rootfs
        .as_ref()
        .map(|r| r.diff_ids.clone())
        .unwrap_or_default();
    if diff_ids.len() != ordered.len() {
        anyhow::bail!(
            "the image export has {} layers but its config lists {} diff_ids",
            ordered.len(),
            diff_ids.len()
        );
    }
    for (i, (layer, expected)) in ordered.iter().zip(&diff_ids).enumerate() {
        if &layer.diff_id != expected {
            anyhow::bail!(
                "layer {} of the image export ({:?}) unpacks to {} but the image config says {expected}",
                i + 1,
                layer.compression,
                layer.diff_id
            );
        }
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: oci::MT_OCI_MANIFEST.into(),
        config: Descriptor::new(
            oci::MT_OCI_CONFIG,
            config_blob.digest.clone(),
            config_blob.size,
        ),
        layers: ordered
            .iter()
            .map(|l| Descriptor::new(&l.blob.media_type, l.blob.digest.clone(), l.blob.size))
            .collect(),
        annotations,
    };
    let platform = Platform {
        os: config.os.clone(),
        architecture: config.architecture.clone(),
        variant: config.variant.clone().filter(|v| !v.is_empty()),
    };
    let labels = config.config.and_then(|c| c.labels).unwrap_or_default();
    Ok(ExportedImage {
        manifest: Encoded::of(oci::MT_OCI_MANIFEST, &manifest),
        config: config_blob,
        layers: ordered.into_iter().map(|l| l.blob).collect(),
        platform,
        labels,
    })
}

/// A path inside the export without `./` and `..` segments.
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// The config and the layers (paths inside the export) of the one image in
/// it: from `manifest.json` when there is one, else from the OCI layout's
/// `index.json`, following nested indexes.
fn locate_image(small: &HashMap<String, Vec<u8>>) -> Result<(String, Vec<String>)> {
    if let Some(manifest_json) = small.get("manifest.json") {
        let mut save: Vec<SaveManifest> = serde_json::from_slice(manifest_json)
            .context("parsing manifest.json of the image export")?;
        if save.len() > 1 {
            anyhow::bail!(
                "the image export holds {} images; one was asked for",
                save.len()
            );
        }
        let save = save
            .pop()
            .ok_or_else(|| anyhow!("the image export lists no image"))?;
        return Ok((
            clean(&save.config),
            save.layers.iter().map(|l| clean(l)).collect(),
        ));
    }
    let index = small
        .get("index.json")
        .ok_or_else(|| anyhow!("the image export has neither manifest.json nor index.json"))?;
    let mut found: Vec<(String, Vec<String>)> = Vec::new();
    walk_index(small, index, 0, &mut found)?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(anyhow!(
            "the image export's index.json leads to no image whose config is in the export"
        )),
        n => Err(anyhow!(
            "the image export's index.json leads to {n} images; one was asked for"
        )),
    }
}

#[derive(serde::Deserialize)]
struct AnyManifest {
    #[serde(default, rename = "mediaType")]
    media_type: String,
    #[serde(default)]
    manifests: Vec<Descriptor>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

fn blob_path(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

fn walk_index(
    small: &HashMap<String, Vec<u8>>,
    bytes: &[u8],
    depth: usize,
    found: &mut Vec<(String, Vec<String>)>,
) -> Result<()> {
    if depth > 4 {
        anyhow::bail!("the image export's indexes nest too deep");
    }
    let index: AnyManifest =
        serde_json::from_slice(bytes).context("parsing an index of the image export")?;
    for d in &index.manifests {
        // BuildKit's provenance and SBOM attachments are not images.
        if d.annotations
            .get("vnd.docker.reference.type")
            .map(String::as_str)
            == Some("attestation-manifest")
        {
            continue;
        }
        let Some(child) = small.get(&blob_path(&d.digest)) else {
            continue; // a platform the export does not carry
        };
        let parsed: AnyManifest =
            serde_json::from_slice(child).context("parsing a manifest of the image export")?;
        let media_type = if d.media_type.is_empty() {
            parsed.media_type.as_str()
        } else {
            d.media_type.as_str()
        };
        if media_type == oci::MT_OCI_INDEX
            || media_type == oci::MT_DOCKER_LIST
            || !parsed.manifests.is_empty()
        {
            walk_index(small, child, depth + 1, found)?;
        } else if let Some(config) = &parsed.config {
            let config_path = blob_path(&config.digest);
            if !small.contains_key(&config_path) {
                continue;
            }
            let layers = parsed.layers.iter().map(|l| blob_path(&l.digest)).collect();
            if !found.iter().any(|(c, _)| *c == config_path) {
                found.push((config_path, layers));
            }
        }
    }
    Ok(())
}

/// Store one layer blob of the export in `dir`, in one pass: a plain tar is
/// gzipped reproducibly on every core (no name, mtime 0, fixed level and
/// block size: `pgzip`) and hashed as it goes in; a compressed one is written as it is and unpacked on the way to
/// hash its content.
fn store_layer(input: &mut impl Read, dir: &Path, n: usize) -> Result<Layer> {
    let mut head = [0u8; 6];
    let mut got = 0;
    while got < head.len() {
        let read = input.read(&mut head[got..])?;
        if read == 0 {
            break;
        }
        got += read;
    }
    let compression = Compression::sniff(&head[..got])?;
    let mut input = std::io::Cursor::new(head[..got].to_vec()).chain(input);
    let extension = match compression {
        Compression::None | Compression::Gzip => "tar.gz",
        Compression::Zstd => "tar.zst",
    };
    let path = dir.join(format!("layer-{n}.{extension}"));
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut stored = HashingWriter {
        inner: std::io::BufWriter::new(file),
        hasher: Sha256::new(),
        size: 0,
    };
    let mut content = HashingWriter {
        inner: std::io::sink(),
        hasher: Sha256::new(),
        size: 0,
    };
    match compression {
        Compression::None => {
            // Gzipped on every core, reproducibly (see `pgzip`).
            pgzip::compress(
                &mut input,
                &mut stored,
                pgzip::default_threads(),
                pgzip::LEVEL,
                |block| content.hasher.update(block),
            )?;
        }
        Compression::Gzip | Compression::Zstd => {
            let mut tee = TeeReader {
                inner: &mut input,
                copy: &mut stored,
            };
            {
                let mut unpacked: Box<dyn Read + '_> = match compression {
                    Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&mut tee)),
                    _ => Box::new(
                        zstd::stream::read::Decoder::new(&mut tee)
                            .context("starting zstd decompression")?,
                    ),
                };
                std::io::copy(&mut unpacked, &mut content).with_context(|| {
                    format!("decompressing a {compression:?} layer of the image export")
                })?;
            }
            // Whatever the decoder left unread is part of the blob too.
            std::io::copy(&mut tee, &mut std::io::sink())?;
        }
    }
    stored.inner.flush()?;
    Ok(Layer {
        blob: Blob {
            digest: format!("sha256:{}", oci::hex(&stored.hasher.finalize())),
            size: stored.size,
            path,
            media_type: compression.media_type().into(),
        },
        diff_id: format!("sha256:{}", oci::hex(&content.hasher.finalize())),
        compression,
    })
}

/// Copies what is read through it to `copy`.
struct TeeReader<'a, R: Read, W: Write> {
    inner: &'a mut R,
    copy: &'a mut W,
}

impl<R: Read, W: Write> Read for TeeReader<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer_tar(path: &str, content: &str) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        b.append_data(&mut h, path, content.as_bytes()).unwrap();
        b.into_inner().unwrap()
    }

    fn gzip(plain: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(plain).unwrap();
        gz.finish().unwrap()
    }

    fn zstd(plain: &[u8]) -> Vec<u8> {
        zstd::stream::encode_all(plain, 3).unwrap()
    }

    fn sha(bytes: &[u8]) -> String {
        oci::sha256_digest(bytes)
    }

    /// Plain, gzip and zstd layers: (plain tar, bytes as exported).
    fn three_layers() -> Vec<(Vec<u8>, Vec<u8>)> {
        let plain = layer_tar("app/plain.txt", "plain");
        let gz = layer_tar("app/gzip.txt", "gzip");
        let zs = layer_tar("app/zstd.txt", "zstd");
        vec![
            (plain.clone(), plain),
            (gz.clone(), gzip(&gz)),
            (zs.clone(), zstd(&zs)),
        ]
    }

    fn config_json(layers: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        let diff_ids: Vec<String> = layers.iter().map(|(p, _)| sha(p)).collect();
        serde_json::to_vec(&serde_json::json!({
            "architecture": "arm64", "os": "linux",
            "config": {"Labels": {"a": "b"}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids}
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

    /// `docker save` of a graphdriver engine: `<id>/layer.tar`, `<id>.json`,
    /// `manifest.json` (last), `repositories`.
    fn classic(layers: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        let mut files = Vec::new();
        let mut names = Vec::new();
        for (i, (_, stored)) in layers.iter().enumerate() {
            let name = format!("{i:064x}/layer.tar");
            files.push((name.clone(), stored.clone()));
            names.push(name);
        }
        files.push(("abc.json".into(), config_json(layers)));
        let manifest = serde_json::json!([{"Config": "abc.json", "RepoTags": ["x:y"],
            "Layers": names, "LayerSources": {}}]);
        files.push((
            "manifest.json".into(),
            serde_json::to_vec(&manifest).unwrap(),
        ));
        files.push(("repositories".into(), br#"{"x":{"y":"abc"}}"#.to_vec()));
        tar_of(&files)
    }

    /// `docker save` of the containerd image store: an OCI layout whose
    /// index.json points to a nested index (the image and an attestation),
    /// `manifest.json` without `LayerSources` (unless `with_manifest_json`
    /// is false), no `repositories`.
    fn containerd(layers: &[(Vec<u8>, Vec<u8>)], with_manifest_json: bool) -> Vec<u8> {
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let blob = |files: &mut Vec<(String, Vec<u8>)>, bytes: Vec<u8>| -> String {
            let d = sha(&bytes);
            files.push((blob_path(&d), bytes));
            d
        };
        let config = config_json(layers);
        let config_size = config.len();
        let config_digest = blob(&mut files, config);
        let mut descs = Vec::new();
        for (_, stored) in layers {
            let mt = match Compression::sniff(stored).unwrap() {
                Compression::None => "application/vnd.oci.image.layer.v1.tar",
                c => c.media_type(),
            };
            let size = stored.len();
            let d = blob(&mut files, stored.clone());
            descs.push(serde_json::json!({"mediaType": mt, "digest": d, "size": size}));
        }
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": oci::MT_OCI_MANIFEST,
            "config": {"mediaType": oci::MT_OCI_CONFIG, "digest": config_digest, "size": config_size},
            "layers": descs
        }))
        .unwrap();
        let manifest_size = manifest.len();
        let manifest_digest = blob(&mut files, manifest);
        let attestation = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": oci::MT_OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha(b"{}"), "size": 2},
            "layers": []
        }))
        .unwrap();
        let att_size = attestation.len();
        let att_digest = blob(&mut files, attestation);
        blob(&mut files, b"{}".to_vec());
        let nested = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": oci::MT_OCI_INDEX,
            "manifests": [
                {"mediaType": oci::MT_OCI_MANIFEST, "digest": manifest_digest, "size": manifest_size,
                 "platform": {"architecture": "arm64", "os": "linux"}},
                {"mediaType": oci::MT_OCI_MANIFEST, "digest": att_digest, "size": att_size,
                 "platform": {"architecture": "unknown", "os": "unknown"},
                 "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                                 "vnd.docker.reference.digest": manifest_digest}}
            ]
        }))
        .unwrap();
        let nested_size = nested.len();
        let nested_digest = blob(&mut files, nested);
        files.push((
            "index.json".into(),
            serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2, "mediaType": oci::MT_OCI_INDEX,
                "manifests": [{"mediaType": oci::MT_OCI_INDEX, "digest": nested_digest,
                               "size": nested_size,
                               "annotations": {"io.containerd.image.name": "docker.io/library/x:y"}}]
            }))
            .unwrap(),
        ));
        files.push((
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ));
        if with_manifest_json {
            let layer_paths: Vec<String> = layers.iter().map(|(_, s)| blob_path(&sha(s))).collect();
            files.push((
                "manifest.json".into(),
                serde_json::to_vec(&serde_json::json!([{
                    "Config": blob_path(&config_digest), "RepoTags": ["x:y"], "Layers": layer_paths
                }]))
                .unwrap(),
            ));
        }
        tar_of(&files)
    }

    fn check(export: &[u8], layers: &[(Vec<u8>, Vec<u8>)]) -> ExportedImage {
        let d1 = tempfile::tempdir().unwrap();
        let d2 = tempfile::tempdir().unwrap();
        let a = read_export(export, d1.path(), BTreeMap::new()).unwrap();
        let b = read_export(export, d2.path(), BTreeMap::new()).unwrap();
        assert_eq!(a.platform.to_string(), "linux/arm64");
        assert_eq!(a.labels["a"], "b");
        assert_eq!(a.manifest.digest, b.manifest.digest, "reproducible");
        assert_eq!(a.layers.len(), layers.len());
        for (blob, (plain, stored)) in a.layers.iter().zip(layers) {
            let pushed = std::fs::read(&blob.path).unwrap();
            assert_eq!(sha(&pushed), blob.digest);
            assert_eq!(pushed.len() as u64, blob.size);
            match Compression::sniff(stored).unwrap() {
                Compression::None => {
                    assert_eq!(blob.media_type, oci::MT_OCI_LAYER_GZIP);
                    let mut unpacked = Vec::new();
                    flate2::read::GzDecoder::new(&pushed[..])
                        .read_to_end(&mut unpacked)
                        .unwrap();
                    assert_eq!(&unpacked, plain);
                }
                c => {
                    // Compressed layers are pushed byte for byte.
                    assert_eq!(&pushed, stored);
                    assert_eq!(blob.media_type, c.media_type());
                }
            }
        }
        let m: serde_json::Value = serde_json::from_slice(&a.manifest.bytes).unwrap();
        let types: Vec<&str> = m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["mediaType"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                oci::MT_OCI_LAYER_GZIP,
                oci::MT_OCI_LAYER_GZIP,
                oci::MT_OCI_LAYER_ZSTD
            ]
        );
        a
    }

    #[test]
    fn sniffs_compression_from_magic_numbers() {
        assert_eq!(Compression::sniff(&gzip(b"x")).unwrap(), Compression::Gzip);
        assert_eq!(Compression::sniff(&zstd(b"x")).unwrap(), Compression::Zstd);
        // A skippable frame first (zstd:chunked writes them).
        assert_eq!(
            Compression::sniff(&[0x5e, 0x2a, 0x4d, 0x18, 4, 0]).unwrap(),
            Compression::Zstd
        );
        assert_eq!(
            Compression::sniff(&layer_tar("a", "b")).unwrap(),
            Compression::None
        );
        assert!(Compression::sniff(b"BZh91AY").is_err());
        assert!(Compression::sniff(&[0xfd, b'7', b'z', b'X', b'Z', 0]).is_err());
    }

    #[test]
    fn reads_a_classic_save_with_plain_gzip_and_zstd_layers() {
        let layers = three_layers();
        check(&classic(&layers), &layers);
    }

    #[test]
    fn reads_a_containerd_store_save_with_nested_index() {
        let layers = three_layers();
        let with = check(&containerd(&layers, true), &layers);
        let without = check(&containerd(&layers, false), &layers);
        // manifest.json or index.json: the same image.
        assert_eq!(with.manifest.digest, without.manifest.digest);
        // And the same blobs as the classic shape.
        let classic = check(&classic(&layers), &layers);
        assert_eq!(with.manifest.digest, classic.manifest.digest);
    }

    #[test]
    fn repeated_layers_linked_in_a_classic_save_are_read() {
        let plain = layer_tar("a", "same");
        let layers = vec![(plain.clone(), plain.clone()), (plain.clone(), plain)];
        let mut files = vec![(format!("{:064x}/layer.tar", 1), layers[0].1.clone())];
        files.push(("abc.json".into(), config_json(&layers)));
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in &files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, &data[..]).unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(
            &mut h,
            format!("{:064x}/layer.tar", 2),
            format!("../{:064x}/layer.tar", 1),
        )
        .unwrap();
        let manifest = serde_json::json!([{"Config": "abc.json",
            "Layers": [format!("{:064x}/layer.tar", 1), format!("{:064x}/layer.tar", 2)]}]);
        let data = serde_json::to_vec(&manifest).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, "manifest.json", &data[..]).unwrap();
        let export = b.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let img = read_export(&export[..], dir.path(), BTreeMap::new()).unwrap();
        assert_eq!(img.layers.len(), 2);
        assert_eq!(img.layers[0].digest, img.layers[1].digest);
    }

    #[test]
    fn an_xz_blob_fails_only_when_it_is_a_layer() {
        let layers = three_layers();
        let xz = vec![0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2, 3];
        let mut export = containerd(&layers, true);
        // An unreferenced blob: ignored. Appended before the tar's end.
        export.truncate(export.len() - 1024);
        let mut extra = tar_of(&[("blobs/sha256/unlisted".into(), xz.clone())]);
        export.append(&mut extra);
        check(&export, &layers);
        let mut files = vec![("0/layer.tar".to_string(), xz)];
        let mut cfg: serde_json::Value = serde_json::from_slice(&config_json(&layers)).unwrap();
        cfg["rootfs"]["diff_ids"] = serde_json::json!([sha(b"x")]);
        files.push(("c.json".into(), serde_json::to_vec(&cfg).unwrap()));
        files.push((
            "manifest.json".into(),
            br#"[{"Config":"c.json","Layers":["0/layer.tar"]}]"#.to_vec(),
        ));
        let dir = tempfile::tempdir().unwrap();
        let err = read_export(&tar_of(&files)[..], dir.path(), BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("xz"), "{err}");
    }

    #[test]
    fn a_layer_that_does_not_match_the_config_is_refused() {
        let mut layers = three_layers();
        // The config says the gzip layer unpacks to something else.
        let wrong = layer_tar("app/other.txt", "other");
        let export_layers = layers.clone();
        layers[1].0 = wrong;
        let mut files = Vec::new();
        let mut names = Vec::new();
        for (i, (_, stored)) in export_layers.iter().enumerate() {
            let name = format!("{i}/layer.tar");
            files.push((name.clone(), stored.clone()));
            names.push(name);
        }
        files.push(("c.json".into(), config_json(&layers)));
        files.push((
            "manifest.json".into(),
            serde_json::to_vec(&serde_json::json!([{"Config": "c.json", "Layers": names}]))
                .unwrap(),
        ));
        let dir = tempfile::tempdir().unwrap();
        let err = read_export(&tar_of(&files)[..], dir.path(), BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("layer 2") && err.contains("Gzip"), "{err}");
    }
}

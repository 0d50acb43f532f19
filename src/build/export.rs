//! Turn a `docker save` stream into registry-ready blobs on disk: the image
//! config, and each layer compressed with a reproducible gzip (same content,
//! same digest, so registries skip blobs they already have).

use crate::oci::{self, Descriptor, Encoded, ImageConfig, Manifest, Platform};
use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use flate2::{Compression, GzBuilder};
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

/// Read a `docker save` tar stream into `dir`. Handles the classic layout
/// (`manifest.json` + `<id>/layer.tar`) and the OCI layout of newer engines
/// (`blobs/sha256/…`).
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
        read_save(
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

#[derive(serde::Deserialize)]
struct SaveManifest {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Largest file kept in memory as a candidate config or manifest.
const SMALL: u64 = 4 * 1024 * 1024;

fn read_save(
    input: impl Read,
    dir: &Path,
    annotations: BTreeMap<String, String>,
) -> Result<ExportedImage> {
    let mut archive = tar::Archive::new(input);
    let mut small: HashMap<String, Vec<u8>> = HashMap::new();
    let mut layers: HashMap<String, Blob> = HashMap::new();
    for (n, entry) in archive
        .entries()
        .context("reading the image export")?
        .enumerate()
    {
        let mut entry = entry.context("reading the image export")?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path()?.to_string_lossy().into_owned();
        let size = entry.size();
        if size < SMALL && !name.ends_with("layer.tar") {
            let mut bytes = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut bytes)?;
            let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
            if first == Some(b'{') || first == Some(b'[') {
                small.insert(name, bytes);
            } else {
                // A small layer (OCI layout names layers by digest only).
                layers.insert(name, compress_layer(&mut &bytes[..], dir, n)?);
            }
            continue;
        }
        let blob = compress_layer(&mut entry, dir, n)
            .with_context(|| format!("compressing layer {name}"))?;
        layers.insert(name, blob);
    }
    let manifest_json = small
        .get("manifest.json")
        .ok_or_else(|| anyhow!("the image export has no manifest.json"))?;
    let mut save: Vec<SaveManifest> = serde_json::from_slice(manifest_json)
        .context("parsing manifest.json of the image export")?;
    let save = save
        .pop()
        .ok_or_else(|| anyhow!("the image export lists no image"))?;
    let config_bytes = small
        .get(&save.config)
        .ok_or_else(|| anyhow!("the image export lacks its config {}", save.config))?;
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
    let mut ordered = Vec::new();
    for l in &save.layers {
        let blob = layers
            .get(l)
            .ok_or_else(|| anyhow!("the image export lacks layer {l}"))?;
        ordered.push(blob.clone());
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
            .map(|b| Descriptor::new(&b.media_type, b.digest.clone(), b.size))
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
        layers: ordered,
        platform,
        labels,
    })
}

/// Gzip a layer tar into `dir` reproducibly (no name, mtime 0, fixed level)
/// while hashing the compressed bytes.
fn compress_layer(input: &mut impl Read, dir: &Path, n: usize) -> Result<Blob> {
    let path = dir.join(format!("layer-{n}.tar.gz"));
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let hashing = HashingWriter {
        inner: std::io::BufWriter::new(file),
        hasher: Sha256::new(),
        size: 0,
    };
    let mut gz = GzBuilder::new()
        .mtime(0)
        .write(hashing, Compression::new(6));
    std::io::copy(input, &mut gz)?;
    let mut hashing = gz.finish()?;
    hashing.inner.flush()?;
    Ok(Blob {
        digest: format!("sha256:{}", oci::hex(&hashing.hasher.finalize())),
        size: hashing.size,
        path,
        media_type: oci::MT_OCI_LAYER_GZIP.into(),
    })
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

    fn layer_tar(content: &str) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        b.append_data(&mut h, "app/file.txt", content.as_bytes())
            .unwrap();
        b.into_inner().unwrap()
    }

    fn save_tar(layer: &[u8]) -> Vec<u8> {
        let config = br#"{"architecture":"arm64","os":"linux","config":{"Labels":{"a":"b"}},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let manifest = br#"[{"Config":"abc.json","RepoTags":null,"Layers":["l1/layer.tar"]}]"#;
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in [
            ("l1/layer.tar", layer),
            ("abc.json", &config[..]),
            ("manifest.json", &manifest[..]),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn reads_a_classic_save_reproducibly() {
        let layer = layer_tar("hello");
        let save = save_tar(&layer);
        let d1 = tempfile::tempdir().unwrap();
        let d2 = tempfile::tempdir().unwrap();
        let a = read_save(&save[..], d1.path(), BTreeMap::new()).unwrap();
        let b = read_save(&save[..], d2.path(), BTreeMap::new()).unwrap();
        assert_eq!(a.platform.to_string(), "linux/arm64");
        assert_eq!(a.labels["a"], "b");
        assert_eq!(a.layers.len(), 1);
        assert_eq!(a.layers[0].digest, b.layers[0].digest);
        assert_eq!(a.manifest.digest, b.manifest.digest);
        let gz = std::fs::read(&a.layers[0].path).unwrap();
        assert_eq!(oci::sha256_digest(&gz), a.layers[0].digest);
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, layer);
    }
}

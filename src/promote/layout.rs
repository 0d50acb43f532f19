//! A bundle: one tar holding an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/<hex>`), written as a copy's sink and read
//! as its source. `index.json` lists every image reference, artifact and
//! chart, each annotated with its repository and tag (`org.openim-release.*`,
//! `org.opencontainers.image.ref.name` as `<repository>:<tag>`,
//! `io.containerd.image.name` as the full source reference).
//!
//! Blobs are streamed into the tar as they arrive (each checked against its
//! digest); the tar is written beside the destination and renamed into
//! place only when complete. Reading scans the tar's headers once (seeking
//! over the data) and then reads each blob at its offset.

use crate::clients::registry::{ByteStream, Fetched};
use crate::oci::{self, Encoded};
use crate::promote::copy::{BlobMove, Referrers, Sink, Source};
use crate::promote::graph::Desc;
use anyhow::{anyhow, bail, Context, Result};
use futures_util::StreamExt;
use sha2::{Digest as _, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};

pub const KIND: &str = "org.openim-release.kind";
pub const SERVICE: &str = "org.openim-release.service";
pub const REPOSITORY: &str = "org.openim-release.repository";
pub const TAG: &str = "org.openim-release.tag";
pub const SUBJECT: &str = "org.openim-release.subject";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// `kind`s of index entries.
pub const KIND_IMAGE: &str = "image";
pub const KIND_ARTIFACT: &str = "artifact";
pub const KIND_REFERRERS: &str = "referrers";
pub const KIND_CHART: &str = "chart";

/// The bundle's own summary, beside the layout.
pub const SUMMARY: &str = "openim-release-bundle.json";

const BLOCK: usize = 512;

fn blob_path(digest: &str) -> Result<String> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|_| oci::is_digest(digest))
        .ok_or_else(|| anyhow!("`{digest}` is not a sha256 digest"))?;
    Ok(format!("blobs/sha256/{hex}"))
}

fn header(path: &str, size: u64) -> Result<[u8; BLOCK]> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path)
        .with_context(|| format!("the tar entry {path}"))?;
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut out = [0u8; BLOCK];
    out.copy_from_slice(h.as_bytes());
    Ok(out)
}

fn padding(size: u64) -> usize {
    (BLOCK - (size % BLOCK as u64) as usize) % BLOCK
}

struct TarOut {
    file: BufWriter<tokio::fs::File>,
    bytes: u64,
}

/// A bundle being written.
pub struct LayoutWriter {
    out: tokio::sync::Mutex<TarOut>,
    partial: PathBuf,
    dest: PathBuf,
    written: Mutex<HashSet<String>>,
    entries: Mutex<Vec<Desc>>,
}

impl LayoutWriter {
    /// Start `dest` (written as `<dest>.partial` until [`Self::finish`]).
    pub async fn create(dest: &Path) -> Result<LayoutWriter> {
        let mut name = dest
            .file_name()
            .ok_or_else(|| anyhow!("{} is not a file name", dest.display()))?
            .to_os_string();
        name.push(".partial");
        let partial = dest.with_file_name(name);
        let file = tokio::fs::File::create(&partial)
            .await
            .with_context(|| format!("creating {}", partial.display()))?;
        let w = LayoutWriter {
            out: tokio::sync::Mutex::new(TarOut {
                file: BufWriter::with_capacity(1 << 20, file),
                bytes: 0,
            }),
            partial,
            dest: dest.to_path_buf(),
            written: Mutex::new(HashSet::new()),
            entries: Mutex::new(Vec::new()),
        };
        w.write_file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
            .await?;
        Ok(w)
    }

    async fn write_file(&self, path: &str, bytes: &[u8]) -> Result<()> {
        let mut out = self.out.lock().await;
        Self::append(&mut out, path, bytes).await
    }

    async fn append(out: &mut TarOut, path: &str, bytes: &[u8]) -> Result<()> {
        let size = bytes.len() as u64;
        out.file.write_all(&header(path, size)?).await?;
        out.file.write_all(bytes).await?;
        out.file.write_all(&[0u8; BLOCK][..padding(size)]).await?;
        out.bytes += BLOCK as u64 + size + padding(size) as u64;
        Ok(())
    }

    fn has(&self, digest: &str) -> bool {
        self.written.lock().expect("written lock").contains(digest)
    }

    /// A small blob (a manifest, a chart) from memory.
    pub async fn put_bytes(&self, bytes: &[u8]) -> Result<String> {
        let digest = oci::sha256_digest(bytes);
        let mut out = self.out.lock().await;
        if !self.has(&digest) {
            Self::append(&mut out, &blob_path(&digest)?, bytes).await?;
            self.written
                .lock()
                .expect("written lock")
                .insert(digest.clone());
        }
        Ok(digest)
    }

    /// An entry of `index.json`; one per kind, repository, tag and digest.
    pub fn add_entry(&self, desc: Desc) {
        let mut entries = self.entries.lock().expect("entries lock");
        let same = |e: &Desc| {
            e.digest == desc.digest
                && [KIND, REPOSITORY, TAG, SUBJECT]
                    .iter()
                    .all(|k| e.annotation(k) == desc.annotation(k))
        };
        if !entries.iter().any(same) {
            entries.push(desc);
        }
    }

    /// Write `index.json`, then `files` (the summary, charts), close the
    /// tar and move it into place. Returns its size.
    pub async fn finish(self, files: &[(String, Vec<u8>)]) -> Result<u64> {
        let mut entries = self.entries.lock().expect("entries lock").clone();
        // The same bundle whatever order the copies finished in.
        entries.sort_by(|a, b| {
            let key = |d: &Desc| {
                [KIND, REPOSITORY, TAG, SUBJECT]
                    .map(|k| d.annotation(k).unwrap_or_default().to_string())
            };
            key(a).cmp(&key(b)).then_with(|| a.digest.cmp(&b.digest))
        });
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct IndexJson<'a> {
            schema_version: u32,
            media_type: &'a str,
            manifests: &'a [Desc],
        }
        let index = serde_json::to_vec_pretty(&IndexJson {
            schema_version: 2,
            media_type: oci::MT_OCI_INDEX,
            manifests: &entries,
        })?;
        let mut out = self.out.into_inner();
        Self::append(&mut out, "index.json", &index).await?;
        for (path, bytes) in files {
            Self::append(&mut out, path, bytes).await?;
        }
        out.file.write_all(&[0u8; 2 * BLOCK]).await?;
        out.bytes += 2 * BLOCK as u64;
        out.file.flush().await?;
        out.file.get_ref().sync_all().await?;
        tokio::fs::rename(&self.partial, &self.dest)
            .await
            .with_context(|| format!("moving {} into place", self.partial.display()))?;
        Ok(out.bytes)
    }

    /// Remove the partial file (a failed export).
    pub async fn abandon(self) {
        let _ = tokio::fs::remove_file(&self.partial).await;
    }
}

/// An entry's descriptor with its annotations.
pub fn entry(desc: &Desc, annotations: &[(&str, &str)]) -> Desc {
    let mut d = desc.clone();
    for (k, v) in annotations {
        d.set_annotation(k, v);
    }
    d
}

impl Sink for LayoutWriter {
    async fn has_manifest(&self, _repo: &str, digest: &str) -> Result<bool> {
        Ok(self.has(digest))
    }

    async fn put_manifest(&self, _repo: &str, m: &Encoded) -> Result<()> {
        self.put_bytes(&m.bytes).await.map(|_| ())
    }

    async fn put_blob<S: Source>(
        &self,
        _repo: &str,
        desc: &Desc,
        src: &S,
        src_repo: &str,
    ) -> Result<BlobMove> {
        if self.has(&desc.digest) {
            return Ok(BlobMove::Present);
        }
        let mut out = self.out.lock().await;
        if self.has(&desc.digest) {
            return Ok(BlobMove::Present);
        }
        let path = blob_path(&desc.digest)?;
        let mut stream = src.blob(src_repo, desc).await?;
        out.file.write_all(&header(&path, desc.size)?).await?;
        let mut hasher = Sha256::new();
        let mut got = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.with_context(|| format!("reading blob {}", desc.digest))?;
            got += chunk.len() as u64;
            if got > desc.size {
                bail!(
                    "blob {} is larger than the {} bytes its descriptor says",
                    desc.digest,
                    desc.size
                );
            }
            hasher.update(&chunk);
            out.file.write_all(&chunk).await?;
        }
        if got != desc.size {
            bail!(
                "blob {} ended after {got} of its {} bytes",
                desc.digest,
                desc.size
            );
        }
        let digest = format!("sha256:{}", oci::hex(&hasher.finalize()));
        if digest != desc.digest {
            bail!("blob {} arrived with the digest {digest}", desc.digest);
        }
        out.file
            .write_all(&[0u8; BLOCK][..padding(desc.size)])
            .await?;
        out.bytes += BLOCK as u64 + desc.size + padding(desc.size) as u64;
        self.written
            .lock()
            .expect("written lock")
            .insert(desc.digest.clone());
        Ok(BlobMove::Sent(desc.size))
    }

    async fn put_artifact_tag(
        &self,
        repo: &str,
        tag: &str,
        m: &Encoded,
        subject: &str,
    ) -> Result<bool> {
        self.add_entry(entry(
            &Desc::new(&m.media_type, &m.digest, m.bytes.len() as u64),
            &[
                (KIND, KIND_ARTIFACT),
                (REPOSITORY, repo),
                (TAG, tag),
                (SUBJECT, subject),
                (REF_NAME, &format!("{repo}:{tag}")),
            ],
        ));
        Ok(true)
    }

    async fn add_referrers(&self, repo: &str, subject: &str, referrers: &Referrers) -> Result<()> {
        for r in &referrers.listed {
            self.add_entry(entry(
                r,
                &[
                    (KIND, KIND_ARTIFACT),
                    (REPOSITORY, repo),
                    (SUBJECT, subject),
                ],
            ));
        }
        if let Some(f) = &referrers.fallback {
            let digest = self.put_bytes(&f.bytes).await?;
            let tag = crate::promote::graph::fallback_tag(subject);
            self.add_entry(entry(
                &Desc::new(oci::MT_OCI_INDEX, &digest, f.bytes.len() as u64),
                &[
                    (KIND, KIND_REFERRERS),
                    (REPOSITORY, repo),
                    (TAG, &tag),
                    (SUBJECT, subject),
                    (REF_NAME, &format!("{repo}:{tag}")),
                ],
            ));
        }
        Ok(())
    }
}

/// A bundle being read.
pub struct LayoutReader {
    path: PathBuf,
    /// Entry path → (offset of the data, size).
    files: HashMap<String, (u64, u64)>,
    /// `index.json`'s entries.
    pub entries: Vec<Desc>,
}

impl LayoutReader {
    /// Scan the tar's headers; read `oci-layout` and `index.json`.
    pub fn open(path: &Path) -> Result<LayoutReader> {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut archive = tar::Archive::new(file);
        let mut files = HashMap::new();
        let not_a_bundle = || {
            anyhow!(
                "{} is not a bundle of `openim-release bundle export` (not a tar)",
                path.display()
            )
        };
        for e in archive.entries_with_seek().map_err(|_| not_a_bundle())? {
            let e = e.map_err(|_| not_a_bundle())?;
            if !e.header().entry_type().is_file() {
                continue;
            }
            let name = e
                .path()?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            files.insert(name, (e.raw_file_position(), e.size()));
        }
        let mut r = LayoutReader {
            path: path.to_path_buf(),
            files,
            entries: Vec::new(),
        };
        if !r.files.contains_key("oci-layout") || !r.files.contains_key("index.json") {
            bail!(
                "{} holds no OCI image layout (no oci-layout and index.json): not a bundle of \
                 `openim-release bundle export`",
                path.display()
            );
        }
        #[derive(serde::Deserialize)]
        struct IndexJson {
            #[serde(default)]
            manifests: Vec<Desc>,
        }
        let index: IndexJson = serde_json::from_slice(&r.read("index.json")?)
            .with_context(|| format!("{}: index.json", path.display()))?;
        r.entries = index.manifests;
        Ok(r)
    }

    /// A small file of the tar, whole.
    pub fn read(&self, name: &str) -> Result<Vec<u8>> {
        let (offset, size) = *self
            .files
            .get(name)
            .ok_or_else(|| anyhow!("{}: no {name} in the bundle", self.path.display()))?;
        let mut f = std::fs::File::open(&self.path)?;
        f.seek(SeekFrom::Start(offset))?;
        let mut buf = Vec::with_capacity(size as usize);
        f.take(size).read_to_end(&mut buf)?;
        if buf.len() as u64 != size {
            bail!("{}: {name} is cut short", self.path.display());
        }
        Ok(buf)
    }

    pub fn has_file(&self, name: &str) -> bool {
        self.files.contains_key(name)
    }

    fn fetched(&self, digest: &str, media_type: Option<&str>) -> Result<Option<Fetched>> {
        let path = blob_path(digest)?;
        if !self.files.contains_key(&path) {
            return Ok(None);
        }
        let bytes = self.read(&path)?;
        let actual = oci::sha256_digest(&bytes);
        if actual != digest {
            bail!("{}: {path} does not match its digest", self.path.display());
        }
        let media_type = media_type
            .map(str::to_string)
            .or_else(|| {
                self.entries
                    .iter()
                    .find(|e| e.digest == digest)
                    .map(|e| e.media_type.clone())
            })
            .unwrap_or_default();
        Ok(Some(Fetched {
            media_type,
            bytes,
            digest: actual,
        }))
    }

    /// The entries of one kind.
    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Desc> + 'a {
        self.entries
            .iter()
            .filter(move |e| e.annotation(KIND) == Some(kind))
    }
}

/// A referrer's descriptor as the source listed it: the annotations the
/// bundle added taken off again.
fn as_listed(e: &Desc) -> Desc {
    let mut d = e.clone();
    if let Some(serde_json::Value::Object(a)) = d.rest.get_mut("annotations") {
        for k in [
            KIND,
            REPOSITORY,
            SUBJECT,
            TAG,
            SERVICE,
            REF_NAME,
            CONTAINERD_NAME,
        ] {
            a.remove(k);
        }
        if a.is_empty() {
            d.rest.remove("annotations");
        }
    }
    d
}

impl Source for LayoutReader {
    fn host(&self) -> Option<&str> {
        None
    }

    async fn manifest(&self, repo: &str, reference: &str) -> Result<Option<Fetched>> {
        if oci::is_digest(reference) {
            let media_type = self
                .entries
                .iter()
                .find(|e| e.digest == reference)
                .map(|e| e.media_type.clone());
            return self.fetched(reference, media_type.as_deref());
        }
        let found = self.entries.iter().find(|e| {
            e.annotation(REPOSITORY) == Some(repo) && e.annotation(TAG) == Some(reference)
        });
        match found {
            Some(e) => self.fetched(&e.digest, Some(&e.media_type)),
            None => Ok(None),
        }
    }

    async fn blob(&self, _repo: &str, desc: &Desc) -> Result<ByteStream> {
        let path = blob_path(&desc.digest)?;
        let (offset, size) = *self.files.get(&path).ok_or_else(|| {
            anyhow!(
                "{}: blob {} is missing from the bundle",
                self.path.display(),
                desc.digest
            )
        })?;
        let mut f = tokio::fs::File::open(&self.path).await?;
        f.seek(SeekFrom::Start(offset)).await?;
        Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(
            f.take(size),
            1 << 16,
        )))
    }

    async fn referrers(&self, repo: &str, digest: &str) -> Result<Referrers> {
        let mine = |e: &&Desc| {
            e.annotation(REPOSITORY) == Some(repo) && e.annotation(SUBJECT) == Some(digest)
        };
        let listed = self
            .of_kind(KIND_ARTIFACT)
            .filter(mine)
            .filter(|e| e.annotation(TAG).is_none())
            .map(as_listed)
            .collect();
        let fallback = match self.of_kind(KIND_REFERRERS).find(mine) {
            Some(e) => self.fetched(&e.digest, Some(oci::MT_OCI_INDEX))?,
            None => None,
        };
        Ok(Referrers { listed, fallback })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_padding() {
        assert_eq!(padding(0), 0);
        assert_eq!(padding(1), 511);
        assert_eq!(padding(512), 0);
        let h = header("blobs/sha256/00", 3).unwrap();
        let parsed = tar::Header::from_byte_slice(&h);
        assert_eq!(parsed.size().unwrap(), 3);
        assert_eq!(parsed.path().unwrap().to_str(), Some("blobs/sha256/00"));
        assert!(blob_path("sha256:xyz").is_err());
    }

    #[test]
    fn listed_referrers_lose_only_the_bundles_annotations() {
        let mut d = Desc::new(oci::MT_OCI_MANIFEST, "sha256:a", 1);
        let plain = d.clone();
        let e = entry(&d, &[(KIND, KIND_ARTIFACT), (SUBJECT, "sha256:b")]);
        assert_eq!(as_listed(&e), plain);
        d.set_annotation("org.opencontainers.image.created", "now");
        let e = entry(&d, &[(KIND, KIND_ARTIFACT)]);
        assert_eq!(as_listed(&e), d);
    }

    #[tokio::test]
    async fn writes_a_tar_that_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("b.tar");
        let w = LayoutWriter::create(&dest).await.unwrap();
        let digest = w.put_bytes(b"{\"schemaVersion\":2}").await.unwrap();
        w.add_entry(entry(
            &Desc::new(oci::MT_OCI_MANIFEST, &digest, 19),
            &[(KIND, KIND_IMAGE), (REPOSITORY, "a"), (TAG, "v1")],
        ));
        assert!(dir.path().join("b.tar.partial").exists());
        let size = w
            .finish(&[(SUMMARY.to_string(), b"{}".to_vec())])
            .await
            .unwrap();
        assert_eq!(std::fs::metadata(&dest).unwrap().len(), size);
        assert!(!dir.path().join("b.tar.partial").exists());
        let r = LayoutReader::open(&dest).unwrap();
        assert_eq!(r.read(SUMMARY).unwrap(), b"{}");
        let m = r.manifest("a", "v1").await.unwrap().unwrap();
        assert_eq!(m.digest, digest);
        assert_eq!(m.media_type, oci::MT_OCI_MANIFEST);
        assert!(r.manifest("a", "v2").await.unwrap().is_none());
        let mut s = r.blob("a", &Desc::new("x", &digest, 19)).await.unwrap();
        let mut got = Vec::new();
        while let Some(c) = s.next().await {
            got.extend_from_slice(&c.unwrap());
        }
        assert_eq!(got, b"{\"schemaVersion\":2}");
        // `tar` itself reads it.
        let listed = std::process::Command::new("tar")
            .arg("-tf")
            .arg(&dest)
            .output()
            .unwrap();
        let names = String::from_utf8_lossy(&listed.stdout);
        assert!(names.starts_with("oci-layout\n"), "{names}");
        assert!(names.contains("index.json"), "{names}");
    }
}

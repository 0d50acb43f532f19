//! Copying content by digest from a source (a registry, or a bundle being
//! imported) to a sink (a registry, or a bundle being written): a manifest
//! and everything it points to, children before parents, so a sink never
//! holds a manifest whose content it lacks; then the artifacts attached to
//! every manifest copied (OCI referrers and cosign's tags). Bytes are never
//! changed, so digests stay what they were.
//!
//! Nothing is sent twice: a manifest the sink has is not copied again (its
//! content is there: registries refuse a manifest whose blobs they lack),
//! and the sink decides per blob (HEAD, mount, upload). A re-run of a copy
//! that finished reads manifests and sends no blob.

use crate::clients::registry::{ByteStream, Fetched};
use crate::oci::{self, Encoded};
use crate::promote::graph::{self, Desc, Node};
use anyhow::{anyhow, bail, Context, Result};
use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

/// How deep artifacts of artifacts are followed (a signature of an SBOM).
const ARTIFACT_DEPTH: u32 = 3;
/// How deep indexes nest (an index of indexes).
const MANIFEST_DEPTH: u32 = 4;

/// The referrers a source lists for a manifest, and the fallback tag's
/// index it keeps them in (registries without the referrers API), if any.
#[derive(Debug, Default)]
pub struct Referrers {
    pub listed: Vec<Desc>,
    pub fallback: Option<Fetched>,
}

/// Where content comes from.
pub trait Source: Sync {
    /// The registry host, when the source is a registry (a sink on the same
    /// host mounts instead of uploading).
    fn host(&self) -> Option<&str>;
    /// A manifest by digest or tag; `None` when there is none.
    fn manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> impl Future<Output = Result<Option<Fetched>>> + Send;
    /// A blob's bytes.
    fn blob(&self, repo: &str, desc: &Desc) -> impl Future<Output = Result<ByteStream>> + Send;
    /// The artifacts whose subject is `digest`.
    fn referrers(&self, repo: &str, digest: &str)
        -> impl Future<Output = Result<Referrers>> + Send;
}

/// What happened to one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobMove {
    /// The sink had it.
    Present,
    /// Linked from another repository of the same registry.
    Mounted,
    /// Sent, this many bytes.
    Sent(u64),
}

/// Where content goes.
pub trait Sink: Sync {
    fn has_manifest(&self, repo: &str, digest: &str) -> impl Future<Output = Result<bool>> + Send;
    /// A manifest under its digest.
    fn put_manifest(&self, repo: &str, m: &Encoded) -> impl Future<Output = Result<()>> + Send;
    fn put_blob<S: Source>(
        &self,
        repo: &str,
        desc: &Desc,
        src: &S,
        src_repo: &str,
    ) -> impl Future<Output = Result<BlobMove>> + Send;
    /// An artifact's tag (cosign's `sha256-<hex>.sig`), `subject` being the
    /// manifest it is about. Moved only when it points elsewhere; returns
    /// whether it was written.
    fn put_artifact_tag(
        &self,
        repo: &str,
        tag: &str,
        m: &Encoded,
        subject: &str,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// Make the referrers of `subject` findable here (the referrers tag
    /// where there is no referrers API); their manifests are copied already.
    fn add_referrers(
        &self,
        repo: &str,
        subject: &str,
        referrers: &Referrers,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// What a copy moved (one sink).
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    /// Blobs sent, and their bytes.
    pub blobs_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    /// Blobs linked from another repository of the same registry.
    pub blobs_mounted: AtomicU64,
    /// Blobs the sink had.
    pub blobs_present: AtomicU64,
    /// Manifests written, and those the sink had.
    pub manifests_copied: AtomicU64,
    pub manifests_present: AtomicU64,
    /// Artifact manifests (signatures, attestations, SBOMs) found and copied.
    pub artifacts: AtomicU64,
    /// Tags written, and tags that pointed where they should already.
    pub tags_written: AtomicU64,
    pub tags_present: AtomicU64,
}

/// [`Stats`] as plain numbers, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Moved {
    pub blobs_sent: u64,
    pub bytes_sent: u64,
    pub blobs_mounted: u64,
    pub blobs_present: u64,
    pub manifests_copied: u64,
    pub manifests_present: u64,
    pub artifacts: u64,
    pub tags_written: u64,
    pub tags_present: u64,
}

impl Stats {
    pub fn snapshot(&self) -> Moved {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Moved {
            blobs_sent: g(&self.blobs_sent),
            bytes_sent: g(&self.bytes_sent),
            blobs_mounted: g(&self.blobs_mounted),
            blobs_present: g(&self.blobs_present),
            manifests_copied: g(&self.manifests_copied),
            manifests_present: g(&self.manifests_present),
            artifacts: g(&self.artifacts),
            tags_written: g(&self.tags_written),
            tags_present: g(&self.tags_present),
        }
    }

    pub fn tag(&self, written: bool) {
        let counter = if written {
            &self.tags_written
        } else {
            &self.tags_present
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Moved {
    pub fn add(&mut self, o: &Moved) {
        self.blobs_sent += o.blobs_sent;
        self.bytes_sent += o.bytes_sent;
        self.blobs_mounted += o.blobs_mounted;
        self.blobs_present += o.blobs_present;
        self.manifests_copied += o.manifests_copied;
        self.manifests_present += o.manifests_present;
        self.artifacts += o.artifacts;
        self.tags_written += o.tags_written;
        self.tags_present += o.tags_present;
    }
}

/// A manifest as fetched, checked against the digest it was asked by.
pub fn encoded(f: &Fetched) -> Result<(Encoded, Node)> {
    let node = graph::parse(&f.bytes, &f.media_type).map_err(|e| anyhow!("{}: {e}", f.digest))?;
    Ok((
        Encoded {
            media_type: node.media_type.clone(),
            bytes: f.bytes.clone(),
            digest: oci::sha256_digest(&f.bytes),
        },
        node,
    ))
}

/// One copy from `src` to `sink`; `jobs` bounds the blobs and manifests
/// in flight per manifest.
pub struct Copier<'a, S: Source, K: Sink> {
    pub src: &'a S,
    pub sink: &'a K,
    pub stats: &'a Stats,
    pub jobs: usize,
}

type Boxed<'f, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'f>>;

impl<'a, S: Source, K: Sink> Copier<'a, S, K> {
    /// Copy the manifest `digest` (and all it points to) from `src_repo`
    /// to `dst_repo`; returns it, and every manifest digest of its tree
    /// (itself first), whose artifacts [`Self::copy_artifacts`] copies.
    pub async fn copy_manifest(
        &self,
        src_repo: &str,
        dst_repo: &str,
        digest: &str,
    ) -> Result<(Encoded, Vec<String>)> {
        let fetched = self.fetch(src_repo, digest).await?;
        self.copy_fetched(src_repo, dst_repo, fetched, 0).await
    }

    async fn fetch(&self, src_repo: &str, digest: &str) -> Result<Fetched> {
        let f =
            self.src.manifest(src_repo, digest).await?.ok_or_else(|| {
                anyhow!("manifest {digest} of {src_repo} is missing at the source")
            })?;
        if f.digest != digest {
            bail!(
                "the source answered {digest} of {src_repo} with content whose digest is {}",
                f.digest
            );
        }
        Ok(f)
    }

    fn copy_fetched<'f>(
        &'f self,
        src_repo: &'f str,
        dst_repo: &'f str,
        fetched: Fetched,
        depth: u32,
    ) -> Boxed<'f, (Encoded, Vec<String>)> {
        Box::pin(async move {
            if depth > MANIFEST_DEPTH {
                bail!(
                    "{}: indexes nested deeper than {MANIFEST_DEPTH}",
                    fetched.digest
                );
            }
            let (m, node) = encoded(&fetched)?;
            let mut tree = vec![m.digest.clone()];
            let present = self.sink.has_manifest(dst_repo, &m.digest).await?;
            // Children first (their digests are wanted even when present,
            // for their artifacts).
            let children: Vec<Boxed<'f, Vec<String>>> = node
                .manifests
                .iter()
                .filter(|d| d.is_manifest())
                .map(|d| self.copy_child(src_repo, dst_repo, d.digest.clone(), depth + 1))
                .collect();
            let children: Vec<Vec<String>> = futures_util::stream::iter(children)
                .buffer_unordered(self.jobs.max(1))
                .try_collect()
                .await?;
            tree.extend(children.into_iter().flatten());
            if present {
                self.stats.manifests_present.fetch_add(1, Ordering::Relaxed);
                return Ok((m, tree));
            }
            let blobs: Vec<Boxed<'f, ()>> = node
                .blobs
                .iter()
                .chain(node.manifests.iter().filter(|d| !d.is_manifest()))
                .map(|b| self.copy_blob(src_repo, dst_repo, b.clone(), m.digest.clone()))
                .collect();
            futures_util::stream::iter(blobs)
                .buffer_unordered(self.jobs.max(1))
                .try_collect::<Vec<()>>()
                .await?;
            self.sink.put_manifest(dst_repo, &m).await?;
            self.stats.manifests_copied.fetch_add(1, Ordering::Relaxed);
            Ok((m, tree))
        })
    }

    fn copy_child<'f>(
        &'f self,
        src_repo: &'f str,
        dst_repo: &'f str,
        digest: String,
        depth: u32,
    ) -> Boxed<'f, Vec<String>> {
        Box::pin(async move {
            let f = self.fetch(src_repo, &digest).await?;
            let (_, tree) = self.copy_fetched(src_repo, dst_repo, f, depth).await?;
            Ok(tree)
        })
    }

    fn copy_blob<'f>(
        &'f self,
        src_repo: &'f str,
        dst_repo: &'f str,
        b: Desc,
        of: String,
    ) -> Boxed<'f, ()> {
        Box::pin(async move {
            let moved = self
                .sink
                .put_blob(dst_repo, &b, self.src, src_repo)
                .await
                .with_context(|| format!("blob {} of {of}", b.digest))?;
            let s = self.stats;
            match moved {
                BlobMove::Present => s.blobs_present.fetch_add(1, Ordering::Relaxed),
                BlobMove::Mounted => s.blobs_mounted.fetch_add(1, Ordering::Relaxed),
                BlobMove::Sent(n) => {
                    s.bytes_sent.fetch_add(n, Ordering::Relaxed);
                    s.blobs_sent.fetch_add(1, Ordering::Relaxed)
                }
            };
            Ok(())
        })
    }

    /// Copy the artifacts of each manifest of `tree`: its referrers (and
    /// the referrers tag where the sink needs one) and the cosign tags
    /// `sha256-<hex>.sig`, `.att`, `.sbom`; then theirs, a few levels deep.
    pub async fn copy_artifacts(
        &self,
        src_repo: &str,
        dst_repo: &str,
        tree: &[String],
    ) -> Result<()> {
        futures_util::stream::iter(tree)
            .map(|d| self.artifacts_of(src_repo, dst_repo, d.clone(), 0))
            .buffer_unordered(self.jobs.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    fn artifacts_of<'f>(
        &'f self,
        src_repo: &'f str,
        dst_repo: &'f str,
        subject: String,
        depth: u32,
    ) -> Boxed<'f, ()> {
        Box::pin(async move {
            if depth >= ARTIFACT_DEPTH {
                return Ok(());
            }
            let referrers = self
                .src
                .referrers(src_repo, &subject)
                .await
                .with_context(|| format!("listing the artifacts of {subject}"))?;
            for r in referrers.listed.iter().filter(|r| r.is_manifest()) {
                let f = self.fetch(src_repo, &r.digest).await?;
                let (_, tree) = self.copy_fetched(src_repo, dst_repo, f, 0).await?;
                self.stats.artifacts.fetch_add(1, Ordering::Relaxed);
                for d in tree {
                    self.artifacts_of(src_repo, dst_repo, d, depth + 1).await?;
                }
            }
            if !referrers.listed.is_empty() {
                self.sink
                    .add_referrers(dst_repo, &subject, &referrers)
                    .await
                    .with_context(|| format!("listing the referrers of {subject}"))?;
            }
            for tag in graph::cosign_tags(&subject) {
                let Some(f) = self.src.manifest(src_repo, &tag).await? else {
                    continue;
                };
                let (m, tree) = self.copy_fetched(src_repo, dst_repo, f, 0).await?;
                self.stats.artifacts.fetch_add(1, Ordering::Relaxed);
                let written = self
                    .sink
                    .put_artifact_tag(dst_repo, &tag, &m, &subject)
                    .await?;
                self.stats.tag(written);
                for d in tree {
                    self.artifacts_of(src_repo, dst_repo, d, depth + 1).await?;
                }
            }
            Ok(())
        })
    }
}

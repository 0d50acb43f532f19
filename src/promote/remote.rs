//! A registry as the source and as the sink of a copy
//! ([`crate::promote::copy`]): blobs streamed from one registry into
//! another, a blob the sink has not sent again (HEAD first), a blob another
//! repository of the sink's registry has mounted from there, the referrers
//! tag kept where a registry has no referrers API.

use crate::clients::registry::{self, ByteStream, Fetched, Registry, UploadStart};
use crate::oci::Encoded;
use crate::promote::copy::{encoded, BlobMove, Referrers, Sink, Source};
use crate::promote::graph::{self, Desc};
use anyhow::{Context, Result};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// One registry, with what a copy learns about it as it goes.
pub struct RegistryEnd {
    pub registry: Arc<Registry>,
    /// Whether it answers the referrers API (unknown until asked).
    referrers_api: Mutex<Option<bool>>,
    /// Repositories known to hold each blob (found, mounted or sent).
    known: Mutex<HashMap<String, HashSet<String>>>,
    /// One transfer per blob at a time, so a second repository waiting for
    /// the same blob mounts it instead of sending it again.
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Bounds the uploads in flight.
    transfers: Semaphore,
}

impl RegistryEnd {
    pub fn new(registry: Arc<Registry>, jobs: usize) -> RegistryEnd {
        RegistryEnd {
            registry,
            referrers_api: Mutex::new(None),
            known: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            transfers: Semaphore::new(jobs.max(1)),
        }
    }

    fn knows(&self, repo: &str, digest: &str) -> bool {
        self.known
            .lock()
            .expect("known lock")
            .get(digest)
            .is_some_and(|r| r.contains(repo))
    }

    fn learn(&self, repo: &str, digest: &str) {
        self.known
            .lock()
            .expect("known lock")
            .entry(digest.to_string())
            .or_default()
            .insert(repo.to_string());
    }

    /// Another repository of this registry that holds `digest`.
    fn holder(&self, repo: &str, digest: &str) -> Option<String> {
        let known = self.known.lock().expect("known lock");
        let mut holders: Vec<&String> = known.get(digest)?.iter().filter(|r| *r != repo).collect();
        holders.sort();
        holders.first().map(|s| s.to_string())
    }

    /// The referrers API's answer for `digest`, remembering whether there
    /// is one (asked once per registry when there is not).
    async fn referrers_api(&self, repo: &str, digest: &str) -> Result<Option<Vec<u8>>> {
        if *self.referrers_api.lock().expect("api lock") == Some(false) {
            return Ok(None);
        }
        let answer = self.registry.referrers_index(repo, digest).await?;
        *self.referrers_api.lock().expect("api lock") = Some(answer.is_some());
        Ok(answer)
    }
}

impl Source for RegistryEnd {
    fn host(&self) -> Option<&str> {
        Some(&self.registry.prefix().host)
    }

    async fn manifest(&self, repo: &str, reference: &str) -> Result<Option<Fetched>> {
        Ok(self.registry.get_manifest(repo, reference).await?)
    }

    async fn blob(&self, repo: &str, desc: &Desc) -> Result<ByteStream> {
        Ok(self.registry.blob_stream(repo, &desc.digest).await?)
    }

    /// The referrers API's list, and the referrers tag's (read too: content
    /// copied from a registry without the API keeps its list there).
    async fn referrers(&self, repo: &str, digest: &str) -> Result<Referrers> {
        let mut listed = match self.referrers_api(repo, digest).await? {
            Some(bytes) => graph::referrers_of_index(&bytes)
                .map_err(|e| anyhow::anyhow!("the referrers of {digest}: {e}"))?,
            None => Vec::new(),
        };
        let fallback = self
            .registry
            .get_manifest(repo, &graph::fallback_tag(digest))
            .await?;
        if let Some(f) = &fallback {
            let tagged = graph::referrers_of_index(&f.bytes)
                .map_err(|e| anyhow::anyhow!("{repo}:{}: {e}", graph::fallback_tag(digest)))?;
            if let Some(all) = graph::merge_referrers(&listed, &tagged) {
                listed = all;
            }
        }
        Ok(Referrers { listed, fallback })
    }
}

impl Sink for RegistryEnd {
    async fn has_manifest(&self, repo: &str, digest: &str) -> Result<bool> {
        Ok(self.registry.manifest_digest(repo, digest).await?.is_some())
    }

    async fn put_manifest(&self, repo: &str, m: &Encoded) -> Result<()> {
        Ok(self.registry.put_manifest(repo, &m.digest, m).await?)
    }

    async fn put_blob<S: Source>(
        &self,
        repo: &str,
        desc: &Desc,
        src: &S,
        src_repo: &str,
    ) -> Result<BlobMove> {
        let digest = desc.digest.as_str();
        if self.knows(repo, digest) {
            return Ok(BlobMove::Present);
        }
        let lock = self
            .inflight
            .lock()
            .expect("inflight lock")
            .entry(digest.to_string())
            .or_default()
            .clone();
        let _one = lock.lock().await;
        if self.knows(repo, digest) {
            return Ok(BlobMove::Present);
        }
        if self.registry.has_blob(repo, digest).await? {
            self.learn(repo, digest);
            return Ok(BlobMove::Present);
        }
        let mut mount_from = self.holder(repo, digest);
        if mount_from.is_none() && src.host() == Some(&self.registry.prefix().host) {
            mount_from = Some(src_repo.to_string());
        }
        let _permit = self
            .transfers
            .acquire()
            .await
            .context("the transfer limit")?;
        let backoff = registry::Backoff::default();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let start = self
                .registry
                .start_upload(repo, digest, mount_from.take().as_deref())
                .await?;
            let session = match start {
                UploadStart::Mounted => {
                    self.learn(repo, digest);
                    return Ok(BlobMove::Mounted);
                }
                UploadStart::Session(url) => url,
            };
            crate::failpoint::crash_point("mirror.blob");
            let body = src.blob(src_repo, desc).await?;
            match self
                .registry
                .finish_upload(repo, &session, digest, desc.size, body)
                .await
            {
                Ok(()) => {
                    self.learn(repo, digest);
                    return Ok(BlobMove::Sent(desc.size));
                }
                Err(e)
                    if attempt < registry::MAX_ATTEMPTS
                        && (e.is_transient() || (e.is_unauthorized() && attempt == 1)) =>
                {
                    tracing::debug!("{e} (attempt {attempt}); starting the upload again");
                    tokio::time::sleep(
                        backoff
                            .base
                            .saturating_mul(1 << attempt.min(5))
                            .min(backoff.max),
                    )
                    .await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn put_artifact_tag(
        &self,
        repo: &str,
        tag: &str,
        m: &Encoded,
        _subject: &str,
    ) -> Result<bool> {
        if self.registry.manifest_digest(repo, tag).await?.as_deref() == Some(m.digest.as_str()) {
            return Ok(false);
        }
        self.registry.put_manifest(repo, tag, m).await?;
        Ok(true)
    }

    /// With a referrers API the registry lists them by their subject; else
    /// the referrers tag `sha256-<hex>` is written: the source's own index
    /// when this registry has none (same bytes, same digest), else what it
    /// has with the missing ones added.
    async fn add_referrers(&self, repo: &str, subject: &str, referrers: &Referrers) -> Result<()> {
        if self.referrers_api(repo, subject).await?.is_some() {
            return Ok(());
        }
        let tag = graph::fallback_tag(subject);
        let current = self.registry.get_manifest(repo, &tag).await?;
        let index = match current {
            None => match &referrers.fallback {
                Some(f)
                    if graph::merge_referrers(
                        &graph::referrers_of_index(&f.bytes).unwrap_or_default(),
                        &referrers.listed,
                    )
                    .is_none() =>
                {
                    encoded(f)?.0
                }
                _ => graph::index_of(&referrers.listed),
            },
            Some(c) => {
                let have = graph::referrers_of_index(&c.bytes)
                    .map_err(|e| anyhow::anyhow!("{repo}:{tag}: {e}"))?;
                match graph::merge_referrers(&have, &referrers.listed) {
                    Some(all) => graph::index_of(&all),
                    None => return Ok(()),
                }
            }
        };
        self.registry.put_manifest(repo, &tag, &index).await?;
        Ok(())
    }
}

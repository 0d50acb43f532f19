//! Blobs shared between the images of one build. OpenIM's services share
//! their base and config layers; each such blob is uploaded once per
//! registry and mounted into the other repositories of that registry
//! (`POST …/blobs/uploads/?mount=…&from=…`). Services push at the same
//! time, so the first one to need a blob on a registry owns it: the others
//! wait until it is there, then mount it. When the owner fails, the next
//! one takes over. Counts what was sent, per registry.

use crate::build::export::Blob;
use crate::clients::registry::{BlobPush, Registry, RegistryError};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Set (to anything but `0` or empty) to upload every blob to every
/// repository instead of mounting it: for registries that mishandle
/// mounts, and to measure what the mounts save.
pub const NO_MOUNT_ENV: &str = "OPENIM_RELEASE_NO_BLOB_MOUNT";

/// What one registry received in a build (`--output json`: `uploads`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Uploads {
    /// The registry prefix, as configured.
    pub registry: String,
    /// Bytes of blobs sent (manifests not counted).
    pub bytes: u64,
    /// Blobs sent.
    pub uploaded: usize,
    /// Blobs mounted from another repository of the registry: not sent.
    pub mounted: usize,
    /// Blobs the repository already had.
    pub present: usize,
}

/// The repository of a registry that has a blob, once one does; locked
/// while the owner uploads it.
type Slot = Arc<tokio::sync::Mutex<Option<String>>>;

/// Where each blob is known to be, per registry host, for one build.
pub struct Ledger {
    mount: bool,
    /// (registry host, digest) → the repository that has the blob, once one
    /// does; the lock is held while the owner uploads it.
    slots: Mutex<HashMap<(String, String), Slot>>,
    stats: Mutex<BTreeMap<String, Uploads>>,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger::new(true)
    }
}

impl Ledger {
    pub fn new(mount: bool) -> Ledger {
        Ledger {
            mount,
            slots: Mutex::new(HashMap::new()),
            stats: Mutex::new(BTreeMap::new()),
        }
    }

    /// Mounting unless [`NO_MOUNT_ENV`] says not to.
    pub fn from_env() -> Ledger {
        let off = std::env::var(NO_MOUNT_ENV).is_ok_and(|v| !v.is_empty() && v != "0");
        Ledger::new(!off)
    }

    /// Push `blob` to `repo` (a full repository path) of `registry`:
    /// mounted from a repository of the same registry that got it in this
    /// build, else uploaded unless the repository has it, waiting while
    /// another service uploads it.
    pub async fn push(
        &self,
        registry: &Registry,
        repo: &str,
        blob: &Blob,
    ) -> Result<BlobPush, RegistryError> {
        let result = if self.mount {
            self.push_shared(registry, repo, blob).await
        } else {
            registry
                .push_blob_mounting(repo, &blob.digest, &blob.path, None)
                .await
        };
        if let Ok(done) = &result {
            self.count(&registry.prefix().to_string(), *done, blob.size);
        }
        result
    }

    async fn push_shared(
        &self,
        registry: &Registry,
        repo: &str,
        blob: &Blob,
    ) -> Result<BlobPush, RegistryError> {
        let key = (registry.prefix().host.clone(), blob.digest.clone());
        let slot = self
            .slots
            .lock()
            .expect("ledger lock")
            .entry(key)
            .or_default()
            .clone();
        // Held by the owner while it uploads: the others wait here.
        let mut owner = slot.lock().await;
        if let Some(from) = owner.clone() {
            drop(owner);
            return registry
                .push_blob_mounting(repo, &blob.digest, &blob.path, Some(&from))
                .await;
        }
        let done = registry
            .push_blob_mounting(repo, &blob.digest, &blob.path, None)
            .await?;
        *owner = Some(repo.to_string());
        Ok(done)
    }

    fn count(&self, registry: &str, done: BlobPush, size: u64) {
        let mut stats = self.stats.lock().expect("ledger lock");
        let s = stats
            .entry(registry.to_string())
            .or_insert_with(|| Uploads {
                registry: registry.to_string(),
                ..Uploads::default()
            });
        match done {
            BlobPush::Uploaded => {
                s.uploaded += 1;
                s.bytes += size;
            }
            BlobPush::Mounted => s.mounted += 1,
            BlobPush::Present => s.present += 1,
        }
    }

    /// What each registry received so far, in the order given.
    pub fn uploads(&self, registries: &[String]) -> Vec<Uploads> {
        let stats = self.stats.lock().expect("ledger lock");
        registries
            .iter()
            .filter_map(|r| stats.get(r).cloned())
            .collect()
    }
}

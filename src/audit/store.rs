//! Reading the registries for the audit: tags and digests looked up, index
//! entries and image configs fetched, all of it concurrently (at most
//! `jobs` requests at a time) and each thing once. Whether a repository
//! has a tag or a manifest is asked of each registry with `HEAD` (Docker
//! Hub does not count it as a pull); a manifest's or config's bytes are
//! content-addressed, so they are read from one registry only.

use crate::clients::registry::Registry;
use crate::oci::{self, ImageConfig, Index, Manifest, Platform};
use futures_util::StreamExt;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// A repository in a registry: (host, repository path).
pub type Loc = (String, String);

/// What a repository holds under a tag or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Missing,
    Found(String),
    /// The registry did not answer (after its retries), or refused.
    Failed(String),
}

/// A manifest as read: an index of platform images, or one image.
#[derive(Debug, Clone)]
pub enum Parsed {
    Index(Vec<Entry>),
    Image {
        config: String,
    },
    /// Not a manifest we understand, or not readable.
    Other(String),
}

/// One entry of an index.
#[derive(Debug, Clone)]
pub struct Entry {
    pub platform: Option<Platform>,
    pub digest: String,
}

/// What an image config says.
#[derive(Debug, Clone, Default)]
pub struct ConfigFacts {
    pub platform: Option<Platform>,
    pub labels: BTreeMap<String, String>,
}

/// Everything read so far.
#[derive(Debug, Default)]
pub struct Store {
    /// (repository, tag or digest) → what it holds.
    pub refs: HashMap<(Loc, String), Lookup>,
    /// manifest digest → parsed.
    pub manifests: HashMap<String, Parsed>,
    /// config digest → facts, or why they could not be read.
    pub configs: HashMap<String, Result<ConfigFacts, String>>,
    /// Requests sent.
    pub requests: usize,
}

/// The registry clients by host, and how many requests run at once.
pub struct Reader {
    pub clients: BTreeMap<String, Arc<Registry>>,
    pub jobs: usize,
}

impl Store {
    pub fn lookup(&self, loc: &Loc, reference: &str) -> Option<&Lookup> {
        self.refs.get(&(loc.clone(), reference.to_string()))
    }

    /// Whether `loc` has the manifest `digest` (as far as it was asked).
    pub fn has(&self, loc: &Loc, digest: &str) -> Option<bool> {
        match self.lookup(loc, digest)? {
            Lookup::Found(_) => Some(true),
            Lookup::Missing => Some(false),
            Lookup::Failed(_) => None,
        }
    }

    /// Every (repository, digest) known to be there.
    fn found(&self) -> BTreeSet<(Loc, String)> {
        self.refs
            .iter()
            .filter_map(|((loc, _), l)| match l {
                Lookup::Found(d) => Some((loc.clone(), d.clone())),
                _ => None,
            })
            .collect()
    }

    fn record(&mut self, loc: Loc, reference: String, lookup: Lookup) {
        if let Lookup::Found(digest) = &lookup {
            // A digest found under a tag is there by itself too.
            if reference != *digest {
                self.refs
                    .entry((loc.clone(), digest.clone()))
                    .or_insert_with(|| Lookup::Found(digest.clone()));
            }
        }
        self.refs.insert((loc, reference), lookup);
    }
}

/// Read a manifest's shape from its bytes.
pub fn parse(media_type: &str, bytes: &[u8]) -> Parsed {
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => return Parsed::Other(format!("not JSON: {e}")),
    };
    let kind = value["mediaType"]
        .as_str()
        .unwrap_or(media_type)
        .to_string();
    if value.get("manifests").is_some() || kind.contains("index") || kind.contains("list") {
        return match serde_json::from_value::<Index>(value) {
            Ok(i) => Parsed::Index(
                i.manifests
                    .into_iter()
                    // Attestation manifests (BuildKit's `unknown/unknown`)
                    // are not platforms.
                    .filter(|d| {
                        d.platform.as_ref().is_none_or(|p| p.os != "unknown")
                            && !d.annotations.contains_key("vnd.docker.reference.type")
                    })
                    .map(|d| Entry {
                        platform: d.platform,
                        digest: d.digest,
                    })
                    .collect(),
            ),
            Err(e) => Parsed::Other(format!("an index that cannot be read ({e})")),
        };
    }
    match serde_json::from_value::<Manifest>(value) {
        Ok(m) => Parsed::Image {
            config: m.config.digest,
        },
        Err(e) => Parsed::Other(format!("a manifest that cannot be read ({e})")),
    }
}

impl Reader {
    fn client(&self, host: &str) -> Result<&Arc<Registry>, String> {
        self.clients
            .get(host)
            .ok_or_else(|| format!("no client for {host}"))
    }

    /// Look up `(repository, tag or digest)` pairs not asked yet (`HEAD`).
    pub async fn lookup(&self, store: &mut Store, wanted: impl IntoIterator<Item = (Loc, String)>) {
        self.lookup_or_read(store, wanted.into_iter().map(|(l, r)| (l, r, false)))
            .await;
    }

    /// Look up pairs not asked yet: with `true`, by reading the manifest
    /// (`GET`: its bytes come along), else by `HEAD`.
    pub async fn lookup_or_read(
        &self,
        store: &mut Store,
        wanted: impl IntoIterator<Item = (Loc, String, bool)>,
    ) {
        let mut todo: BTreeMap<(Loc, String), bool> = BTreeMap::new();
        for (loc, reference, read) in wanted {
            let key = (loc, reference);
            if !store.refs.contains_key(&key) {
                *todo.entry(key).or_insert(false) |= read;
            }
        }
        store.requests += todo.len();
        let answers: Vec<(Loc, String, Lookup, Option<Parsed>)> = futures_util::stream::iter(todo)
            .map(|((loc, reference), read)| async move {
                let (answer, parsed) = match self.client(&loc.0) {
                    Err(e) => (Lookup::Failed(e), None),
                    Ok(r) if read => match r.get_manifest(&loc.1, &reference).await {
                        Ok(None) => (Lookup::Missing, None),
                        Ok(Some(f)) => (
                            Lookup::Found(f.digest),
                            Some(parse(&f.media_type, &f.bytes)),
                        ),
                        Err(e) => (Lookup::Failed(e.to_string()), None),
                    },
                    Ok(r) => match r.manifest_digest(&loc.1, &reference).await {
                        Ok(None) => (Lookup::Missing, None),
                        Ok(Some(d)) => (Lookup::Found(d), None),
                        Err(e) => (Lookup::Failed(e.to_string()), None),
                    },
                };
                (loc, reference, answer, parsed)
            })
            .buffer_unordered(self.jobs.max(1))
            .collect()
            .await;
        for (loc, reference, answer, parsed) in answers {
            if let (Lookup::Found(d), Some(p)) = (&answer, parsed) {
                store.manifests.entry(d.clone()).or_insert(p);
            }
            store.record(loc, reference, answer);
        }
    }

    /// Whether a repository is on Docker Hub (where a manifest `GET` is a
    /// pull, counted against a rate limit).
    pub fn on_hub(&self, loc: &Loc) -> bool {
        self.clients
            .get(&loc.0)
            .is_some_and(|r| r.prefix().api_host() == "registry-1.docker.io")
    }

    /// Read the manifests found but not read yet, each once, preferring a
    /// registry other than Docker Hub (where a manifest `GET` is a pull).
    async fn read_manifests(&self, store: &mut Store) {
        let mut from: BTreeMap<String, Loc> = BTreeMap::new();
        for (loc, digest) in store.found() {
            if store.manifests.contains_key(&digest) {
                continue;
            }
            let hub = |l: &Loc| self.on_hub(l);
            let better = match from.get(&digest) {
                None => true,
                Some(l) => hub(l) && !hub(&loc),
            };
            if better {
                from.insert(digest, loc);
            }
        }
        store.requests += from.len();
        let read: Vec<(String, Parsed)> = futures_util::stream::iter(from)
            .map(|(digest, loc)| async move {
                let parsed = match self.client(&loc.0) {
                    Err(e) => Parsed::Other(e),
                    Ok(r) => match r.get_manifest(&loc.1, &digest).await {
                        Ok(Some(f)) if f.digest == digest => parse(&f.media_type, &f.bytes),
                        Ok(Some(f)) => Parsed::Other(format!(
                            "answered with {} when asked for it",
                            short(&f.digest)
                        )),
                        Ok(None) => Parsed::Other("gone while the audit read it".into()),
                        Err(e) => Parsed::Other(format!("not readable: {e}")),
                    },
                };
                (digest, parsed)
            })
            .buffer_unordered(self.jobs.max(1))
            .collect()
            .await;
        store.manifests.extend(read);
    }

    /// Follow everything found: read each manifest, look up the entries of
    /// each index in its repository, read those, then the config of every
    /// image (once).
    pub async fn follow(&self, store: &mut Store) {
        self.read_manifests(store).await;
        // Each entry is read (GET) in one repository that lists it, the
        // others only asked whether they have it (HEAD).
        let mut children: Vec<(Loc, String, bool)> = Vec::new();
        let mut reader_of: BTreeMap<String, usize> = BTreeMap::new();
        for (loc, digest) in store.found() {
            let Some(Parsed::Index(entries)) = store.manifests.get(&digest) else {
                continue;
            };
            for e in entries {
                if store.manifests.contains_key(&e.digest) {
                    children.push((loc.clone(), e.digest.clone(), false));
                    continue;
                }
                match reader_of.get(&e.digest) {
                    Some(&i) if !self.on_hub(&children[i].0) || self.on_hub(&loc) => {
                        children.push((loc.clone(), e.digest.clone(), false));
                    }
                    Some(&i) => {
                        children[i].2 = false;
                        reader_of.insert(e.digest.clone(), children.len());
                        children.push((loc.clone(), e.digest.clone(), true));
                    }
                    None => {
                        reader_of.insert(e.digest.clone(), children.len());
                        children.push((loc.clone(), e.digest.clone(), true));
                    }
                }
            }
        }
        self.lookup_or_read(store, children).await;
        self.read_manifests(store).await;
        // config digest → one repository that has an image using it.
        let mut configs: BTreeMap<String, Loc> = BTreeMap::new();
        for (loc, digest) in store.found() {
            if let Some(Parsed::Image { config }) = store.manifests.get(&digest) {
                if !store.configs.contains_key(config) {
                    configs.entry(config.clone()).or_insert(loc);
                }
            }
        }
        store.requests += configs.len();
        let read: Vec<(String, Result<ConfigFacts, String>)> = futures_util::stream::iter(configs)
            .map(|(digest, loc)| async move {
                let facts = match self.client(&loc.0) {
                    Err(e) => Err(e),
                    Ok(r) => match r.get_blob(&loc.1, &digest).await {
                        Ok(Some(bytes)) => config_facts(&bytes),
                        Ok(None) => Err(format!("config blob {} is missing", short(&digest))),
                        Err(e) => Err(e.to_string()),
                    },
                };
                (digest, facts)
            })
            .buffer_unordered(self.jobs.max(1))
            .collect()
            .await;
        store.configs.extend(read);
    }
}

fn config_facts(bytes: &[u8]) -> Result<ConfigFacts, String> {
    let c: ImageConfig = serde_json::from_slice(bytes)
        .map_err(|e| format!("an image config that cannot be read ({e})"))?;
    let platform = (!c.os.is_empty() && !c.architecture.is_empty()).then(|| Platform {
        os: c.os.clone(),
        architecture: c.architecture.clone(),
        variant: c.variant.clone(),
    });
    Ok(ConfigFacts {
        platform,
        labels: c.config.and_then(|c| c.labels).unwrap_or_default(),
    })
}

/// `sha256:0123456789ab…` → `0123456789ab`.
pub fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

/// Whether an index entry's platform is the configured one: the same OS
/// and architecture, and the same variant when one is configured.
pub fn platform_matches(want: &Platform, have: Option<&Platform>) -> bool {
    have.is_some_and(|h| {
        h.os == want.os
            && h.architecture == want.architecture
            && want
                .variant
                .as_ref()
                .is_none_or(|v| h.variant.as_ref() == Some(v))
    })
}

/// A manifest as the registry holds it, for re-tagging.
pub async fn manifest_bytes(
    registry: &Registry,
    repo: &str,
    digest: &str,
) -> Result<oci::Encoded, String> {
    match registry.get_manifest(repo, digest).await {
        Ok(Some(f)) if f.digest == digest => Ok(oci::Encoded {
            media_type: f.media_type,
            bytes: f.bytes,
            digest: f.digest,
        }),
        Ok(Some(f)) => Err(format!(
            "asked for {digest}, the registry answered {}",
            f.digest
        )),
        Ok(None) => Err(format!("{digest} is not in {repo}")),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_indexes_images_and_skips_attestations() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:a","size":1,"platform":{"os":"linux","architecture":"amd64"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:b","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:c","size":1,"platform":{"os":"unknown","architecture":"unknown"}}]}"#;
        let Parsed::Index(entries) = parse(oci::MT_OCI_INDEX, index) else {
            panic!("not an index")
        };
        assert_eq!(entries.len(), 2);
        let arm = Platform::parse("linux/arm64").unwrap();
        assert!(platform_matches(&arm, entries[1].platform.as_ref()));
        assert!(!platform_matches(&arm, entries[0].platform.as_ref()));
        let v7 = Platform::parse("linux/arm64/v7").unwrap();
        assert!(!platform_matches(&v7, entries[1].platform.as_ref()));
        let image = br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:cfg","size":1},"layers":[]}"#;
        assert!(
            matches!(parse(oci::MT_OCI_MANIFEST, image), Parsed::Image { config } if config == "sha256:cfg")
        );
        assert!(matches!(parse("", b"<html>"), Parsed::Other(_)));
    }

    #[test]
    fn reads_labels_and_platform_of_a_config() {
        let facts = config_facts(
            br#"{"architecture":"arm64","os":"linux","config":{"Labels":{"org.opencontainers.image.revision":"abc"}}}"#,
        )
        .unwrap();
        assert_eq!(facts.platform.unwrap().to_string(), "linux/arm64");
        assert_eq!(facts.labels["org.opencontainers.image.revision"], "abc");
    }
}

//! What a manifest points to, read without changing a byte of it: the
//! manifests of an index, the config and layers of an image, the subject of
//! an artifact; the tags artifacts are found under (cosign's
//! `sha256-<hex>.sig`/`.att`/`.sbom`, the referrers fallback tag
//! `sha256-<hex>`). Pure.

use crate::oci;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A descriptor as a manifest carries it, every field kept (`artifactType`,
/// `annotations`, `platform`, `urls`, …), so an index made of descriptors
/// read elsewhere says what they said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Desc {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl Desc {
    pub fn new(media_type: &str, digest: &str, size: u64) -> Desc {
        Desc {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size,
            rest: Map::new(),
        }
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.rest.get("annotations")?.get(key)?.as_str()
    }

    pub fn set_annotation(&mut self, key: &str, value: &str) {
        let entry = self
            .rest
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(key.to_string(), Value::String(value.to_string()));
        }
    }

    /// Whether this names a manifest (an index or an image), not a blob.
    pub fn is_manifest(&self) -> bool {
        is_manifest_type(&self.media_type)
    }
}

/// Media types of manifests (indexes, images, the OCI 1.1-rc artifact
/// manifest), not blobs.
pub fn is_manifest_type(media_type: &str) -> bool {
    oci::ACCEPT_MANIFESTS.contains(&media_type)
        || media_type == MT_OCI_ARTIFACT
        || media_type == MT_DOCKER_MANIFEST_V1
        || media_type == MT_DOCKER_MANIFEST_V1_SIGNED
}

pub const MT_OCI_ARTIFACT: &str = "application/vnd.oci.artifact.manifest.v1+json";
const MT_DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const MT_DOCKER_MANIFEST_V1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// A manifest read for what it points to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    /// Its media type: the `mediaType` field, else the one the registry gave.
    pub media_type: String,
    /// An index's manifests.
    pub manifests: Vec<Desc>,
    /// An image's (or artifact's) config and layers, or an artifact
    /// manifest's blobs: everything that is a blob.
    pub blobs: Vec<Desc>,
    /// The manifest this one is about (OCI 1.1 `subject`).
    pub subject: Option<Desc>,
    /// `artifactType`, else an image's config media type.
    pub artifact_type: Option<String>,
    pub annotations: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Desc>,
    #[serde(default)]
    config: Option<Desc>,
    #[serde(default)]
    layers: Vec<Desc>,
    #[serde(default)]
    blobs: Vec<Desc>,
    #[serde(default)]
    subject: Option<Desc>,
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    annotations: Map<String, Value>,
}

/// Read a manifest. `given` is the media type the registry said it is.
pub fn parse(bytes: &[u8], given: &str) -> Result<Node, String> {
    let raw: Raw = serde_json::from_slice(bytes).map_err(|e| format!("not a manifest: {e}"))?;
    if raw.schema_version == Some(1)
        || given == MT_DOCKER_MANIFEST_V1
        || given == MT_DOCKER_MANIFEST_V1_SIGNED
    {
        return Err(
            "a Docker schema 1 manifest, which registries no longer take; push the image again \
             with a current client"
                .into(),
        );
    }
    let media_type = raw
        .media_type
        .filter(|m| !m.is_empty())
        .or_else(|| (!given.is_empty()).then(|| given.to_string()))
        .unwrap_or_else(|| {
            if raw.manifests.is_empty() {
                oci::MT_OCI_MANIFEST.to_string()
            } else {
                oci::MT_OCI_INDEX.to_string()
            }
        });
    let artifact_type = raw
        .artifact_type
        .or_else(|| raw.config.as_ref().map(|c| c.media_type.clone()));
    let mut blobs: Vec<Desc> = raw.config.into_iter().collect();
    blobs.extend(raw.layers);
    blobs.extend(raw.blobs);
    // Foreign layers (Windows base images) live elsewhere: not copied.
    blobs.retain(|b| !b.media_type.contains("foreign"));
    Ok(Node {
        media_type,
        manifests: raw.manifests,
        blobs,
        subject: raw.subject,
        artifact_type,
        annotations: raw.annotations,
    })
}

/// `sha256-<hex>`: the tag that lists the referrers of `digest` where a
/// registry has no referrers API (OCI distribution 1.1, "referrers tag
/// schema").
pub fn fallback_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// The tags cosign keeps beside an image for `digest`: signatures,
/// attestations, SBOMs.
pub fn cosign_tags(digest: &str) -> Vec<String> {
    let base = fallback_tag(digest);
    ["sig", "att", "sbom"]
        .iter()
        .map(|s| format!("{base}.{s}"))
        .collect()
}

/// The descriptor of an artifact manifest in a referrers list: its media
/// type, digest, size, `artifactType` and annotations (OCI 1.1).
pub fn referrer_descriptor(media_type: &str, digest: &str, size: u64, node: &Node) -> Desc {
    let mut d = Desc::new(media_type, digest, size);
    if let Some(t) = &node.artifact_type {
        d.rest
            .insert("artifactType".into(), Value::String(t.clone()));
    }
    if !node.annotations.is_empty() {
        d.rest.insert(
            "annotations".into(),
            Value::Object(node.annotations.clone()),
        );
    }
    d
}

/// The referrers an index lists (the referrers API's answer, or the
/// fallback tag's index).
pub fn referrers_of_index(bytes: &[u8]) -> Result<Vec<Desc>, String> {
    Ok(parse(bytes, oci::MT_OCI_INDEX)?.manifests)
}

/// An OCI image index of `descriptors`, serialized once.
pub fn index_of(descriptors: &[Desc]) -> oci::Encoded {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Index<'a> {
        schema_version: u32,
        media_type: &'a str,
        manifests: &'a [Desc],
    }
    oci::Encoded::of(
        oci::MT_OCI_INDEX,
        &Index {
            schema_version: 2,
            media_type: oci::MT_OCI_INDEX,
            manifests: descriptors,
        },
    )
}

/// The fallback tag's index a target should hold: what it has (`current`,
/// kept first) with the `wanted` referrers it lacks; `None` when it has
/// them all already.
pub fn merge_referrers(current: &[Desc], wanted: &[Desc]) -> Option<Vec<Desc>> {
    let missing: Vec<&Desc> = wanted
        .iter()
        .filter(|w| !current.iter().any(|c| c.digest == w.digest))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let mut out = current.to_vec();
    let mut seen: std::collections::HashSet<&str> =
        current.iter().map(|c| c.digest.as_str()).collect();
    for m in missing {
        if seen.insert(&m.digest) {
            out.push(m.clone());
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn reads_indexes_images_and_artifacts() {
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","digest":"{D}","size":5,"platform":{{"os":"linux","architecture":"arm64"}}}}]}}"#,
            oci::MT_OCI_INDEX,
            oci::MT_OCI_MANIFEST
        );
        let n = parse(index.as_bytes(), "").unwrap();
        assert_eq!(n.media_type, oci::MT_OCI_INDEX);
        assert_eq!(n.manifests.len(), 1);
        assert!(n.manifests[0].is_manifest());
        // Every field of the descriptor is kept.
        assert_eq!(n.manifests[0].rest["platform"]["architecture"], "arm64");

        let image = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"{D}","size":2}},"layers":[{{"mediaType":"{}","digest":"{D}","size":3}},{{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{D}","size":9}}],"subject":{{"mediaType":"{}","digest":"{D}","size":4}},"annotations":{{"a":"b"}}}}"#,
            oci::MT_OCI_LAYER_GZIP,
            oci::MT_OCI_INDEX
        );
        let n = parse(image.as_bytes(), oci::MT_OCI_MANIFEST).unwrap();
        assert_eq!(n.media_type, oci::MT_OCI_MANIFEST);
        assert_eq!(
            n.blobs.len(),
            2,
            "config and layer; the foreign layer is left out"
        );
        assert_eq!(
            n.artifact_type.as_deref(),
            Some("application/vnd.dev.cosign.simplesigning.v1+json")
        );
        assert_eq!(n.subject.as_ref().unwrap().size, 4);
        let d = referrer_descriptor(oci::MT_OCI_MANIFEST, D, 10, &n);
        assert_eq!(
            d.rest["artifactType"],
            "application/vnd.dev.cosign.simplesigning.v1+json"
        );
        assert_eq!(d.annotation("a"), Some("b"));

        assert!(parse(br#"{"schemaVersion":1,"fsLayers":[]}"#, "")
            .unwrap_err()
            .contains("schema 1"));
        assert!(parse(b"<html>", "").is_err());
    }

    #[test]
    fn artifact_tags() {
        assert_eq!(fallback_tag(D), format!("sha256-{}", &D[7..]));
        let tags = cosign_tags(D);
        assert_eq!(tags[0], format!("sha256-{}.sig", &D[7..]));
        assert_eq!(tags.len(), 3);
        assert!(tags.iter().all(|t| crate::oci::reference::is_valid_tag(t)));
    }

    #[test]
    fn merges_referrers_keeping_what_is_there() {
        let a = Desc::new(oci::MT_OCI_MANIFEST, "sha256:a", 1);
        let b = Desc::new(oci::MT_OCI_MANIFEST, "sha256:b", 2);
        let one = std::slice::from_ref(&a);
        assert_eq!(merge_referrers(one, one), None);
        assert_eq!(
            merge_referrers(one, &[b.clone(), a.clone(), b.clone()]),
            Some(vec![a.clone(), b.clone()])
        );
        let index = index_of(one);
        let v: Value = serde_json::from_slice(&index.bytes).unwrap();
        assert_eq!(v["schemaVersion"], 2);
        assert_eq!(v["manifests"][0]["digest"], "sha256:a");
        assert_eq!(referrers_of_index(&index.bytes).unwrap(), vec![a]);
    }
}

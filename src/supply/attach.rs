//! Attachments beside an image in a registry, never inside it: OCI 1.1
//! artifact manifests whose `subject` is the image where the registry has
//! the referrers API, else cosign's tag scheme (`sha256-<hex>.sig`, `.att`,
//! `.sbom` in the image's repository). The image's own manifests are never
//! touched, so its digest is the same with or without attachments.

use crate::clients::registry::{Registry, RegistryError};
use crate::oci::{self, Descriptor, Encoded};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What kind of attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// cosign's simple-signing payload with its signature annotation.
    Signature,
    /// A DSSE envelope of the SLSA provenance statement.
    Provenance,
    /// The SPDX JSON document of a platform image.
    Sbom,
}

impl Kind {
    /// cosign's tag suffix.
    pub fn suffix(self) -> &'static str {
        match self {
            Kind::Signature => "sig",
            Kind::Provenance => "att",
            Kind::Sbom => "sbom",
        }
    }

    /// The `artifactType` of the referrer.
    pub fn artifact_type(self) -> &'static str {
        match self {
            Kind::Signature => "application/vnd.dev.cosign.artifact.sig.v1+json",
            Kind::Provenance => super::sign::DSSE,
            Kind::Sbom => super::sbom::MEDIA_TYPE,
        }
    }

    /// The media type of the layer holding the content.
    pub fn layer_type(self, scheme: Scheme) -> &'static str {
        match (self, scheme) {
            (Kind::Signature, _) => super::sign::SIMPLE_SIGNING,
            (Kind::Provenance, _) => super::sign::DSSE,
            // cosign's SBOM spec names `text/spdx+json`.
            (Kind::Sbom, Scheme::Tags) => "text/spdx+json",
            (Kind::Sbom, Scheme::Referrers) => super::sbom::MEDIA_TYPE,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Signature => "signature",
            Kind::Provenance => "provenance",
            Kind::Sbom => "SBOM",
        }
    }
}

/// How a registry holds attachments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// OCI 1.1: manifests with a `subject`, found by the referrers API.
    Referrers,
    /// cosign's tags: `sha256-<hex>.sig|.att|.sbom`.
    Tags,
}

/// cosign's tag for an attachment of `digest`.
pub fn tag_for(digest: &str, kind: Kind) -> String {
    format!("{}.{}", digest.replace(':', "-"), kind.suffix())
}

/// The OCI empty descriptor's content (`{}`).
const EMPTY: &[u8] = b"{}";
const MT_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// A layer of an attachment: content, media type, annotations.
#[derive(Debug, Clone)]
pub struct Content {
    pub bytes: Vec<u8>,
    pub annotations: BTreeMap<String, String>,
}

impl Content {
    fn descriptor(&self, media_type: &str) -> Value {
        let mut d = json!({
            "mediaType": media_type,
            "digest": oci::sha256_digest(&self.bytes),
            "size": self.bytes.len(),
        });
        if !self.annotations.is_empty() {
            d["annotations"] = json!(self.annotations);
        }
        d
    }
}

/// The config blob of a tag-scheme manifest, as cosign writes it: an image
/// config whose layers are the attachments.
fn cosign_config(layers: &[Value]) -> Vec<u8> {
    let diff_ids: Vec<&Value> = layers.iter().map(|l| &l["digest"]).collect();
    serde_json::to_vec(&json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("JSON values serialize")
}

/// The manifest of a referrer: `artifactType`, the empty config, the layer
/// and the subject.
pub fn referrer_manifest(kind: Kind, content: &Content, subject: &Descriptor) -> Encoded {
    let v = json!({
        "schemaVersion": 2,
        "mediaType": oci::MT_OCI_MANIFEST,
        "artifactType": kind.artifact_type(),
        "config": {"mediaType": MT_EMPTY, "digest": oci::sha256_digest(EMPTY), "size": EMPTY.len()},
        "layers": [content.descriptor(kind.layer_type(Scheme::Referrers))],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
    });
    Encoded::of(oci::MT_OCI_MANIFEST, &v)
}

/// A tag-scheme manifest with `layers` (descriptors) and its config blob.
fn tag_manifest(layers: Vec<Value>) -> (Encoded, Vec<u8>) {
    let config = cosign_config(&layers);
    let v = json!({
        "schemaVersion": 2,
        "mediaType": oci::MT_OCI_MANIFEST,
        "config": {"mediaType": oci::MT_OCI_CONFIG, "digest": oci::sha256_digest(&config), "size": config.len()},
        "layers": layers,
    });
    (Encoded::of(oci::MT_OCI_MANIFEST, &v), config)
}

/// Which scheme a registry takes for a repository: referrers when it
/// answers the referrers API for `digest`.
pub async fn scheme(r: &Registry, repo: &str, digest: &str) -> Result<Scheme, RegistryError> {
    Ok(match r.referrers(repo, digest).await? {
        Some(_) => Scheme::Referrers,
        None => Scheme::Tags,
    })
}

/// Push `content` as a `kind` attachment of `subject`. With the tag scheme,
/// a signature or provenance joins the layers already under the tag (as
/// cosign adds signatures); an SBOM replaces the one there.
pub async fn push(
    r: &Registry,
    repo: &str,
    scheme: Scheme,
    kind: Kind,
    content: &Content,
    subject: &Descriptor,
) -> Result<(), RegistryError> {
    let digest = oci::sha256_digest(&content.bytes);
    r.push_bytes(repo, &digest, &content.bytes).await?;
    match scheme {
        Scheme::Referrers => {
            r.push_bytes(repo, &oci::sha256_digest(EMPTY), EMPTY)
                .await?;
            let m = referrer_manifest(kind, content, subject);
            r.put_artifact(repo, &m.digest, &m).await
        }
        Scheme::Tags => {
            let tag = tag_for(&subject.digest, kind);
            let ours = content.descriptor(kind.layer_type(Scheme::Tags));
            let mut layers = Vec::new();
            if kind != Kind::Sbom {
                if let Some(existing) = r.get_manifest(repo, &tag).await? {
                    let v: Value = serde_json::from_slice(&existing.bytes).unwrap_or_default();
                    for l in v["layers"].as_array().into_iter().flatten() {
                        if *l == ours {
                            return Ok(()); // already there, as it is
                        }
                        if l["digest"] != ours["digest"] {
                            layers.push(l.clone());
                        }
                    }
                }
            }
            layers.push(ours);
            let (m, config) = tag_manifest(layers);
            r.push_bytes(repo, &oci::sha256_digest(&config), &config)
                .await?;
            r.put_artifact(repo, &tag, &m).await
        }
    }
}

/// An attachment found: its layer's media type, annotations and content.
#[derive(Debug, Clone)]
pub struct Found {
    pub scheme: Scheme,
    pub media_type: String,
    pub annotations: BTreeMap<String, String>,
    pub bytes: Vec<u8>,
}

/// Largest attachment read back.
const MAX_ATTACHMENT: u64 = 64 * 1024 * 1024;

/// Every `kind` attachment of `digest`: by the referrers API (when the
/// registry has it, i.e. `referrers` is `Some`) and by cosign's tag.
pub async fn find(
    r: &Registry,
    repo: &str,
    digest: &str,
    kind: Kind,
    referrers: Option<&[crate::clients::registry::Referrer]>,
) -> Result<Vec<Found>, RegistryError> {
    let mut manifests: Vec<(Scheme, Vec<u8>)> = Vec::new();
    for m in referrers.into_iter().flatten() {
        if m.artifact_type.as_deref() == Some(kind.artifact_type()) {
            if let Some(f) = r.get_manifest(repo, &m.digest).await? {
                manifests.push((Scheme::Referrers, f.bytes));
            }
        }
    }
    if let Some(f) = r.get_manifest(repo, &tag_for(digest, kind)).await? {
        manifests.push((Scheme::Tags, f.bytes));
    }
    let mut out = Vec::new();
    for (scheme, bytes) in manifests {
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        for l in v["layers"].as_array().into_iter().flatten() {
            let (Some(d), Some(mt)) = (l["digest"].as_str(), l["mediaType"].as_str()) else {
                continue;
            };
            let Some(content) = r.blob_bytes(repo, d, MAX_ATTACHMENT).await? else {
                continue;
            };
            let annotations = l["annotations"]
                .as_object()
                .map(|a| {
                    a.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            out.push(Found {
                scheme,
                media_type: mt.to_string(),
                annotations,
                bytes: content,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_manifests_as_cosign_and_oci_name_them() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            tag_for(&d, Kind::Signature),
            format!("sha256-{}.sig", "ab".repeat(32))
        );
        assert_eq!(
            tag_for(&d, Kind::Provenance),
            format!("sha256-{}.att", "ab".repeat(32))
        );
        assert_eq!(
            tag_for(&d, Kind::Sbom),
            format!("sha256-{}.sbom", "ab".repeat(32))
        );
        let subject = Descriptor::new(oci::MT_OCI_INDEX, d.clone(), 123);
        let content = Content {
            bytes: b"payload".to_vec(),
            annotations: [(
                "dev.cosignproject.cosign/signature".to_string(),
                "MEUC".to_string(),
            )]
            .into(),
        };
        let m = referrer_manifest(Kind::Signature, &content, &subject);
        let v: Value = serde_json::from_slice(&m.bytes).unwrap();
        assert_eq!(v["subject"]["digest"], d);
        assert_eq!(
            v["artifactType"],
            "application/vnd.dev.cosign.artifact.sig.v1+json"
        );
        assert_eq!(
            v["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(
            v["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"],
            "MEUC"
        );
        let (tm, config) =
            tag_manifest(vec![content.descriptor(super::super::sign::SIMPLE_SIGNING)]);
        let v: Value = serde_json::from_slice(&tm.bytes).unwrap();
        assert!(v.get("subject").is_none());
        assert_eq!(v["config"]["digest"], oci::sha256_digest(&config));
        let c: Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(c["rootfs"]["diff_ids"][0], oci::sha256_digest(b"payload"));
    }
}

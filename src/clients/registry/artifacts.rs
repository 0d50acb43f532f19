//! What supply-chain attachments need from a registry besides images:
//! the OCI 1.1 referrers API, small blobs pushed from memory and read back,
//! layers downloaded to a file, and artifact manifests (signatures,
//! attestations, SBOMs) put under a digest or a cosign tag.

use super::{short, transport_detail, Registry, RegistryError};
use crate::oci::{self, Encoded};
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use tokio::io::AsyncWriteExt;

/// One manifest that names a subject (`GET /v2/<name>/referrers/<digest>`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Referrer {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl Registry {
    /// The manifests naming `digest` as their subject, when the registry
    /// has the referrers API; `None` when it has not (it answers 404, 405
    /// or 400 there, as registries before OCI 1.1 do).
    pub async fn referrers(
        &self,
        repo: &str,
        digest: &str,
    ) -> Result<Option<Vec<Referrer>>, RegistryError> {
        let url = self.url(repo, &format!("referrers/{digest}"));
        let what = format!("listing the referrers of {} in {repo}", short(digest));
        let resp = self
            .send(repo, &what, || {
                self.http().get(&url).header(ACCEPT, oci::MT_OCI_INDEX)
            })
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED | StatusCode::BAD_REQUEST => {
                return Ok(None)
            }
            _ => {}
        }
        let resp = self.expect(resp, &what, &[StatusCode::OK]).await?;
        #[derive(serde::Deserialize)]
        struct Listing {
            #[serde(default)]
            manifests: Vec<Referrer>,
        }
        let text = resp
            .text()
            .await
            .map_err(|e| self.error(&what, None, transport_detail(&e)))?;
        match serde_json::from_str::<Listing>(&text) {
            Ok(l) => Ok(Some(l.manifests)),
            // A 200 that is no index (a catch-all page) is no referrers API.
            Err(_) => Ok(None),
        }
    }

    /// A blob's bytes (at most `max`), checked against its digest; `None`
    /// when the repository has no such blob.
    pub async fn blob_bytes(
        &self,
        repo: &str,
        digest: &str,
        max: u64,
    ) -> Result<Option<Vec<u8>>, RegistryError> {
        let url = self.url(repo, &format!("blobs/{digest}"));
        let what = format!("reading blob {} of {repo}", short(digest));
        let resp = self.send(repo, &what, || self.http().get(&url)).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = self.expect(resp, &what, &[StatusCode::OK]).await?;
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(self.error(&what, Some(200), format!("larger than {max} bytes")));
        }
        let mut out = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.error(&what, None, transport_detail(&e)))?;
            out.extend_from_slice(&chunk);
            if out.len() as u64 > max {
                return Err(self.error(&what, Some(200), format!("larger than {max} bytes")));
            }
        }
        if oci::sha256_digest(&out) != digest {
            return Err(self.error(&what, Some(200), "the content does not match its digest"));
        }
        Ok(Some(out))
    }

    /// Download a blob into `dest`, checked against its digest.
    pub async fn download_blob(
        &self,
        repo: &str,
        digest: &str,
        dest: &Path,
    ) -> Result<(), RegistryError> {
        let url = self.url(repo, &format!("blobs/{digest}"));
        let what = format!("downloading blob {} of {repo}", short(digest));
        let resp = self.send(repo, &what, || self.http().get(&url)).await?;
        let resp = self.expect(resp, &what, &[StatusCode::OK]).await?;
        let io = |e: std::io::Error| self.error(&what, Some(0), format!("{}: {e}", dest.display()));
        let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
        let mut hash = Sha256::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.error(&what, None, transport_detail(&e)))?;
            hash.update(&chunk);
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        if format!("sha256:{}", oci::hex(&hash.finalize())) != digest {
            return Err(self.error(&what, Some(200), "the content does not match its digest"));
        }
        Ok(())
    }

    /// Upload a small blob from memory unless the repository has it.
    pub async fn push_bytes(
        &self,
        repo: &str,
        digest: &str,
        bytes: &[u8],
    ) -> Result<bool, RegistryError> {
        if self.has_blob(repo, digest).await? {
            return Ok(false);
        }
        crate::failpoint::crash_point("registry.attach");
        let what = format!("uploading blob {} to {repo}", short(digest));
        let start_url = self.url(repo, "blobs/uploads/");
        let resp = self
            .send(repo, &what, || {
                self.http().post(&start_url).header("Content-Length", "0")
            })
            .await?;
        let resp = self.expect(resp, &what, &[StatusCode::ACCEPTED]).await?;
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                self.error(&what, Some(202), "upload started without a Location header")
            })?
            .to_string();
        let mut put_url = if location.starts_with("http://") || location.starts_with("https://") {
            location
        } else {
            format!("{}{}", self.base, location)
        };
        put_url.push(if put_url.contains('?') { '&' } else { '?' });
        put_url.push_str(&format!("digest={}", digest.replace(':', "%3A")));
        let resp = self
            .send(repo, &what, || {
                self.http()
                    .put(&put_url)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(bytes.to_vec())
            })
            .await?;
        self.expect(resp, &what, &[StatusCode::CREATED]).await?;
        Ok(true)
    }

    /// Put an artifact manifest (a signature, attestation or SBOM) under
    /// `reference`: its digest, or a cosign tag (`sha256-<hex>.sig`).
    pub async fn put_artifact(
        &self,
        repo: &str,
        reference: &str,
        manifest: &Encoded,
    ) -> Result<(), RegistryError> {
        crate::failpoint::crash_point("registry.attach");
        let url = self.url(repo, &format!("manifests/{reference}"));
        let what = format!("pushing {repo}:{reference}");
        let resp = self
            .send(repo, &what, || {
                self.http()
                    .put(&url)
                    .header(CONTENT_TYPE, manifest.media_type.as_str())
                    .body(manifest.bytes.clone())
            })
            .await?;
        self.expect(resp, &what, &[StatusCode::CREATED, StatusCode::OK])
            .await
            .map(|_| ())
    }
}

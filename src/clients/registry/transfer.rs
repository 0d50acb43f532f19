//! Moving content between registries without holding it: a blob read as a
//! stream, an upload from a stream (after a cross-repository mount was
//! tried), a manifest looked up by HEAD, the referrers API. `build` pushes
//! files (`push_blob`); `mirror` and `bundle` use these.

use super::{log_response, short, transport_detail, Mount, Registry, RegistryError};
use crate::oci;
use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use std::pin::Pin;
use tracing::debug;

/// A blob's bytes as they arrive.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// How an upload started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadStart {
    /// The registry mounted the blob from the other repository: nothing to send.
    Mounted,
    /// An upload session: send the bytes to this URL.
    Session(String),
}

impl Registry {
    /// A blob's content as a stream (never whole in memory). Redirects to
    /// storage are followed, without the credentials.
    pub async fn blob_stream(&self, repo: &str, digest: &str) -> Result<ByteStream, RegistryError> {
        let url = self.url(repo, &format!("blobs/{digest}"));
        let what = format!("reading blob {} of {repo}", short(digest));
        let resp = self.send(repo, &what, || self.http().get(&url)).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(self.error(
                &what,
                Some(404),
                "the registry does not have it (a manifest names a blob it lost?)",
            ));
        }
        let resp = self.expect(resp, &what, &[StatusCode::OK]).await?;
        Ok(Box::pin(
            resp.bytes_stream()
                .map_err(|e| std::io::Error::other(transport_detail(&e))),
        ))
    }

    /// Start a blob upload to `repo`; with `mount_from` (a repository of
    /// this registry that has the blob), ask for a cross-repository mount
    /// first: the registry links the blob and nothing is sent. A registry
    /// that does not mount (or a token that may not read `mount_from`)
    /// starts a plain upload session instead.
    pub async fn start_upload(
        &self,
        repo: &str,
        digest: &str,
        mount_from: Option<&str>,
    ) -> Result<UploadStart, RegistryError> {
        if let Some(from) = mount_from.filter(|f| *f != repo) {
            match self.try_mount(repo, digest, from).await? {
                Mount::Mounted => return Ok(UploadStart::Mounted),
                Mount::Session(session) => return Ok(UploadStart::Session(session)),
                Mount::Refused => {}
            }
        }
        let url = self.url(repo, "blobs/uploads/");
        let what = format!("uploading blob {} to {repo}", short(digest));
        let resp = self
            .send(repo, &what, || {
                self.http().post(&url).header("Content-Length", "0")
            })
            .await?;
        let resp = self.expect(resp, &what, &[StatusCode::ACCEPTED]).await?;
        self.session_location(&what, &resp)
            .map(UploadStart::Session)
    }

    /// Send a blob's bytes to an upload session, in one request (`size`
    /// bytes, checked by the registry against `digest`). One attempt: a
    /// stream cannot be sent twice, so the caller starts again, with a new
    /// stream and session. A 401 forgets the token, so that the next attempt
    /// asks for a new one (tokens expire during long copies).
    pub async fn finish_upload(
        &self,
        repo: &str,
        session: &str,
        digest: &str,
        size: u64,
        body: ByteStream,
    ) -> Result<(), RegistryError> {
        let what = format!("uploading blob {} to {repo}", short(digest));
        let mut url = session.to_string();
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("digest={}", digest.replace(':', "%3A")));
        let auth = self.auth_header(repo).await?;
        let mut req = self
            .http()
            .put(&url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header("Content-Length", size.to_string())
            .body(reqwest::Body::wrap_stream(body));
        if let Some(h) = auth {
            req = req.header(AUTHORIZATION, h);
        }
        debug!(
            "{what}: PUT {} ({size} bytes)",
            crate::output::log::url(&url)
        );
        let resp = req.send().await.map_err(|e| {
            let err = self.error(&what, None, transport_detail(&e));
            debug!("{what}: PUT failed: {}", err.detail);
            err
        })?;
        log_response(&self.prefix.host, "PUT", &url, &resp, 1);
        if resp.status() == StatusCode::UNAUTHORIZED {
            self.tokens
                .lock()
                .expect("token lock")
                .remove(&super::scope(repo));
        }
        self.expect(resp, &what, &[StatusCode::CREATED]).await?;
        Ok(())
    }

    /// The referrers of a manifest (`GET /v2/<repo>/referrers/<digest>`) as
    /// bytes: the image index the registry answers, or `None` when it has no
    /// referrers API (OCI distribution 1.1; older registries answer 404,
    /// and clients then read the `sha256-<hex>` tag instead).
    pub async fn referrers_index(
        &self,
        repo: &str,
        digest: &str,
    ) -> Result<Option<Vec<u8>>, RegistryError> {
        let url = self.url(repo, &format!("referrers/{digest}"));
        let what = format!("listing the referrers of {} in {repo}", short(digest));
        let resp = self
            .send(repo, &what, || {
                self.http().get(&url).header(ACCEPT, oci::MT_OCI_INDEX)
            })
            .await?;
        match resp.status() {
            StatusCode::OK => {
                let is_index = resp
                    .headers()
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|t| t.starts_with(oci::MT_OCI_INDEX));
                let bytes = resp
                    .bytes()
                    .await
                    .map_err(|e| self.error(&what, None, transport_detail(&e)))?;
                Ok(is_index.then(|| bytes.to_vec()))
            }
            StatusCode::NOT_FOUND
            | StatusCode::BAD_REQUEST
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::NOT_IMPLEMENTED => Ok(None),
            _ => Err(self.status_error(&what, resp).await),
        }
    }
}

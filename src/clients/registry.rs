//! A client for the OCI distribution API: blobs, manifests, tags, with basic
//! and bearer-token authentication and retries of transient failures.
//! Everything that talks to a registry goes through here.
//!
//! Bearer tokens are asked for as Docker asks: `GET realm?service&scope`
//! with the user name and password as Basic credentials, or, with an
//! identity token (an OAuth2 refresh token from `docker login`), `POST realm`
//! with the form `grant_type=refresh_token&refresh_token&service&scope&client_id`.

use crate::clients::credentials::Credentials;
use crate::oci::reference::RegistryPrefix;
use crate::oci::{self, Encoded};
use crate::output::log;
use crate::secret::Secret;
use base64::Engine;
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tracing::{debug, trace};

mod artifacts;
pub use artifacts::Referrer;

/// How often a transient failure (5xx, 429, connection reset, timeout) is tried.
pub const MAX_ATTEMPTS: u32 = 5;

/// A registry request that failed.
#[derive(Debug, thiserror::Error)]
#[error("{what} at {registry}: {detail}")]
pub struct RegistryError {
    pub registry: String,
    pub what: String,
    pub status: Option<u16>,
    pub detail: String,
}

impl RegistryError {
    /// Worth another try: server errors, throttling, transport problems.
    pub fn is_transient(&self) -> bool {
        match self.status {
            None => true,
            Some(s) => s == 429 || s == 408 || (500..600).contains(&s),
        }
    }

    pub fn is_unauthorized(&self) -> bool {
        matches!(self.status, Some(401) | Some(403))
    }
}

/// A manifest refused because content it names is unknown to the registry
/// (`MANIFEST_BLOB_UNKNOWN`, and the `DIGEST_INVALID` that comes with it).
fn names_unknown_content(e: &RegistryError) -> bool {
    e.detail.contains("BLOB_UNKNOWN") || e.detail.contains("MANIFEST_UNKNOWN")
}

/// Retry timing; tests shorten it.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(250),
            max: Duration::from_secs(8),
        }
    }
}

impl Backoff {
    fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.base.saturating_mul(1 << attempt.min(10));
        retry_after.unwrap_or(exp).min(self.max)
    }
}

#[derive(Debug, Clone)]
enum AuthMode {
    /// Not challenged yet: try anonymously.
    Unknown,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// A client for one registry (host), shared by all repositories on it.
pub struct Registry {
    /// Built on first use: it loads the CA certificates.
    http: OnceLock<reqwest::Client>,
    prefix: RegistryPrefix,
    base: String,
    credentials: Option<Credentials>,
    mode: Mutex<AuthMode>,
    /// Bearer tokens by scope.
    tokens: Mutex<HashMap<String, Secret>>,
    /// With an identity token: the refresh token to use next (a token
    /// service may hand out a new one with each answer, as Docker keeps it).
    refresh_token: Mutex<Option<Secret>>,
    backoff: Backoff,
}

/// The `client_id` of the OAuth2 token requests.
pub const OAUTH_CLIENT_ID: &str = "openim-release";

/// What the registry answered a cross-repository mount
/// ([`Registry::try_mount`]).
pub(crate) enum Mount {
    /// Linked: nothing to send.
    Mounted,
    /// Not mounted; the bytes go to this upload session.
    Session(String),
    /// Not mounted and no session: start a plain upload.
    Refused,
}

/// What [`Registry::push_blob_mounting`] did with a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobPush {
    /// The repository had it already.
    Present,
    /// Mounted from another repository of the registry: nothing sent.
    Mounted,
    /// Its bytes were sent.
    Uploaded,
}

/// What the registry holds under a manifest reference.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub digest: String,
}

impl Registry {
    pub fn new(
        prefix: RegistryPrefix,
        credentials: Option<Credentials>,
        insecure: bool,
    ) -> Registry {
        let scheme = if insecure || prefix.is_loopback() {
            "http"
        } else {
            "https"
        };
        let base = format!("{scheme}://{}", prefix.api_host());
        if let Some(c) = credentials.as_ref().filter(|c| !c.identity_token) {
            // The Basic header's value, so that the debug log knows it too.
            let raw = format!("{}:{}", c.username, c.password.expose());
            let _ = Secret::new(base64::engine::general_purpose::STANDARD.encode(raw));
        }
        let refresh_token = credentials
            .as_ref()
            .filter(|c| c.identity_token)
            .map(|c| c.password.clone());
        Registry {
            http: OnceLock::new(),
            prefix,
            base,
            credentials,
            mode: Mutex::new(AuthMode::Unknown),
            tokens: Mutex::new(HashMap::new()),
            refresh_token: Mutex::new(refresh_token),
            backoff: Backoff::default(),
        }
    }

    /// The HTTP client, made on first use. TLS is rustls (ring) with the
    /// system's CA certificates, or those `SSL_CERT_FILE` / `SSL_CERT_DIR`
    /// name, as for the GitHub and Docker Engine clients.
    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            let builder = || {
                reqwest::Client::builder()
                    .user_agent(concat!("openim-release/", env!("CARGO_PKG_VERSION")))
                    .connect_timeout(Duration::from_secs(15))
                    .timeout(Duration::from_secs(600))
            };
            builder().build().unwrap_or_else(|e| {
                // Only when every CA certificate found is unusable: HTTPS
                // then fails at the handshake, for the reason given here.
                crate::say!("warning: no usable CA certificates for HTTPS: {e}");
                builder()
                    .tls_built_in_root_certs(false)
                    .build()
                    .expect("static reqwest configuration")
            })
        })
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Registry {
        self.backoff = backoff;
        self
    }

    pub fn prefix(&self) -> &RegistryPrefix {
        &self.prefix
    }

    /// Whether credentials were found for this registry.
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    fn error(&self, what: &str, status: Option<u16>, detail: impl Into<String>) -> RegistryError {
        RegistryError {
            registry: self.prefix.host.clone(),
            what: what.to_string(),
            status,
            detail: detail.into(),
        }
    }

    fn url(&self, repo: &str, rest: &str) -> String {
        format!("{}/v2/{repo}/{rest}", self.base)
    }

    /// `GET /v2/`: reachable, and are the credentials accepted?
    pub async fn check(&self, repo: &str) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base);
        let resp = self
            .send(repo, "checking access", || self.http().get(&url))
            .await?;
        self.expect(resp, "checking access", &[StatusCode::OK])
            .await
            .map(|_| ())
    }

    /// Whether the repository already has a blob.
    pub async fn has_blob(&self, repo: &str, digest: &str) -> Result<bool, RegistryError> {
        let url = self.url(repo, &format!("blobs/{digest}"));
        let what = format!("checking blob {} in {repo}", short(digest));
        let resp = self.send(repo, &what, || self.http().head(&url)).await?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.status_error(&what, resp).await),
        }
    }

    /// Upload a blob from a file unless the repository has it. Returns
    /// whether bytes were sent.
    pub async fn push_blob(
        &self,
        repo: &str,
        digest: &str,
        path: &Path,
    ) -> Result<bool, RegistryError> {
        if self.has_blob(repo, digest).await? {
            return Ok(false);
        }
        self.upload_blob(repo, digest, path).await?;
        Ok(true)
    }

    /// Push a blob from a file to `repo`, mounting it from `from` (another
    /// repository of this registry that has it) when given: the registry
    /// links the blob and nothing is sent (`POST
    /// /v2/<repo>/blobs/uploads/?mount=<digest>&from=<from>`, with a token
    /// that may push to `repo` and pull from `from`). A registry that
    /// refuses the mount answers 202 with an upload session, and the bytes
    /// go there; a token that may not read `from` (401, 403) gives a plain
    /// upload. Without `from`, a HEAD first, as [`Registry::push_blob`].
    pub async fn push_blob_mounting(
        &self,
        repo: &str,
        digest: &str,
        path: &Path,
        from: Option<&str>,
    ) -> Result<BlobPush, RegistryError> {
        let Some(from) = from.filter(|f| *f != repo) else {
            return Ok(if self.push_blob(repo, digest, path).await? {
                BlobPush::Uploaded
            } else {
                BlobPush::Present
            });
        };
        crate::failpoint::crash_point("registry.mount");
        let refused = match self.try_mount(repo, digest, from).await? {
            Mount::Mounted => return Ok(BlobPush::Mounted),
            Mount::Session(session) => Some(session),
            Mount::Refused => None,
        };
        if let Some(session) = refused {
            crate::failpoint::crash_point("registry.blob");
            let what = format!("uploading blob {} to {repo}", short(digest));
            match self.put_blob(repo, &what, &session, digest, path).await {
                Ok(()) => return Ok(BlobPush::Uploaded),
                Err(e) if e.is_transient() => debug!("{what}: {e}; starting a new upload"),
                Err(e) => return Err(e),
            }
        }
        self.upload_blob(repo, digest, path).await?;
        Ok(BlobPush::Uploaded)
    }

    /// Ask the registry to mount `digest` into `repo` from `from`
    /// (`POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<from>`, with a
    /// token that may push to `repo` and pull from `from`): 201 mounted; 202
    /// not mounted, with the upload session it opened instead; a refusal of
    /// the token (401, 403) or another answer is no mount, for the caller to
    /// upload.
    pub(crate) async fn try_mount(
        &self,
        repo: &str,
        digest: &str,
        from: &str,
    ) -> Result<Mount, RegistryError> {
        let url = format!(
            "{}?mount={}&from={from}",
            self.url(repo, "blobs/uploads/"),
            digest.replace(':', "%3A"),
        );
        let what = format!("mounting blob {} from {from} into {repo}", short(digest));
        // The token must allow pulling from `from` too: ask for both.
        let both = format!("{repo} {from}");
        match self
            .send(&both, &what, || {
                self.http().post(&url).header("Content-Length", "0")
            })
            .await
        {
            Ok(resp) if resp.status() == StatusCode::CREATED => {
                debug!("{what}: mounted");
                Ok(Mount::Mounted)
            }
            Ok(resp) if resp.status() == StatusCode::ACCEPTED => {
                debug!("{what}: the registry did not mount it; uploading to the session it opened");
                Ok(Mount::Session(self.session_location(&what, &resp)?))
            }
            Ok(resp) => {
                let e = self.status_error(&what, resp).await;
                debug!("{what}: {e}; uploading instead");
                Ok(Mount::Refused)
            }
            Err(e) if e.is_unauthorized() => {
                debug!("{what}: {e}; uploading instead");
                Ok(Mount::Refused)
            }
            Err(e) => Err(e),
        }
    }

    /// Upload a blob from a file (no HEAD first), restarting the upload
    /// session on transient failures.
    async fn upload_blob(
        &self,
        repo: &str,
        digest: &str,
        path: &Path,
    ) -> Result<(), RegistryError> {
        crate::failpoint::crash_point("registry.blob");
        let what = format!("uploading blob {} to {repo}", short(digest));
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.upload_once(repo, digest, path, &what).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_transient() && attempt < MAX_ATTEMPTS => {
                    tokio::time::sleep(self.backoff.delay(attempt, None)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn upload_once(
        &self,
        repo: &str,
        digest: &str,
        path: &Path,
        what: &str,
    ) -> Result<(), RegistryError> {
        let start_url = self.url(repo, "blobs/uploads/");
        let resp = self
            .send(repo, what, || {
                self.http().post(&start_url).header("Content-Length", "0")
            })
            .await?;
        let resp = self.expect(resp, what, &[StatusCode::ACCEPTED]).await?;
        let session = self.session_location(what, &resp)?;
        self.put_blob(repo, what, &session, digest, path).await
    }

    /// The upload session a 202 names (its `Location`, made absolute).
    fn session_location(&self, what: &str, resp: &Response) -> Result<String, RegistryError> {
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                self.error(what, Some(202), "upload started without a Location header")
            })?;
        Ok(
            if location.starts_with("http://") || location.starts_with("https://") {
                location.to_string()
            } else {
                format!("{}{}", self.base, location)
            },
        )
    }

    /// Send a file's bytes to an upload session and close it with the digest.
    async fn put_blob(
        &self,
        repo: &str,
        what: &str,
        session: &str,
        digest: &str,
        path: &Path,
    ) -> Result<(), RegistryError> {
        let mut put_url = session.to_string();
        put_url.push(if put_url.contains('?') { '&' } else { '?' });
        put_url.push_str(&format!("digest={}", digest.replace(':', "%3A")));
        let size = std::fs::metadata(path)
            .map_err(|e| self.error(what, Some(0), format!("reading {}: {e}", path.display())))?
            .len();
        let resp = self
            .send_with_body(repo, what, &put_url, path, size)
            .await?;
        self.expect(resp, what, &[StatusCode::CREATED]).await?;
        Ok(())
    }

    async fn send_with_body(
        &self,
        repo: &str,
        what: &str,
        url: &str,
        path: &Path,
        size: u64,
    ) -> Result<Response, RegistryError> {
        // One attempt: a failed PUT restarts the upload session (caller).
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| self.error(what, Some(0), format!("opening {}: {e}", path.display())))?;
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
        let auth = self.auth_header(repo).await?;
        let mut req = self
            .http()
            .put(url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header("Content-Length", size.to_string())
            .body(body);
        if let Some(h) = auth {
            req = req.header(AUTHORIZATION, h);
        }
        debug!("{what}: PUT {} ({size} bytes)", log::url(url));
        let resp = req.send().await.map_err(|e| {
            let err = self.error(what, None, transport_detail(&e));
            debug!("{what}: PUT failed: {}", err.detail);
            err
        })?;
        log_response(&self.prefix.host, "PUT", url, &resp, 1);
        Ok(resp)
    }

    /// Put a manifest under `reference` (a tag or its digest).
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        manifest: &Encoded,
    ) -> Result<(), RegistryError> {
        let url = self.url(repo, &format!("manifests/{reference}"));
        let what = if oci::is_digest(reference) {
            format!("pushing manifest {} to {repo}", short(reference))
        } else {
            format!("tagging {repo}:{reference}")
        };
        crate::failpoint::crash_point(match (oci::is_digest(reference), &manifest.media_type) {
            (false, _) => "registry.tag",
            (true, m) if m.contains("index") || m.contains("manifest.list") => "registry.index",
            (true, _) => "registry.manifest",
        });
        // A registry may not see a blob or manifest it just stored yet
        // (eventually consistent storage; the distribution registry's
        // filesystem driver rewrites link files in place, so a concurrent
        // push of the same content can read one half-written): a manifest
        // refused for naming unknown content is tried again.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let resp = self
                .send(repo, &what, || {
                    self.http()
                        .put(&url)
                        .header(CONTENT_TYPE, manifest.media_type.as_str())
                        .body(manifest.bytes.clone())
                })
                .await?;
            match self
                .expect(resp, &what, &[StatusCode::CREATED, StatusCode::OK])
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if attempt < 5 && e.status == Some(400) && names_unknown_content(&e) => {
                    debug!("{what}: {} (attempt {attempt}); trying again", e.detail);
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The manifest under `reference`, or `None` when there is none.
    pub async fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<Fetched>, RegistryError> {
        let url = self.url(repo, &format!("manifests/{reference}"));
        let what = format!("reading manifest {repo}:{reference}");
        let accept = oci::ACCEPT_MANIFESTS.join(", ");
        let resp = self
            .send(repo, &what, || {
                self.http().get(&url).header(ACCEPT, accept.as_str())
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = self.expect(resp, &what, &[StatusCode::OK]).await?;
        let media_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| self.error(&what, None, transport_detail(&e)))?
            .to_vec();
        Ok(Some(Fetched {
            digest: oci::sha256_digest(&bytes),
            media_type,
            bytes,
        }))
    }

    /// The digest of the manifest under `reference` (a tag or a digest),
    /// or `None` when there is none: a `HEAD` request (which Docker Hub
    /// does not count as a pull), a `GET` when the registry names no digest.
    pub async fn manifest_digest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<String>, RegistryError> {
        let url = self.url(repo, &format!("manifests/{reference}"));
        let what = format!("looking up {repo}:{reference}");
        let accept = oci::ACCEPT_MANIFESTS.join(", ");
        let resp = self
            .send(repo, &what, || {
                self.http().head(&url).header(ACCEPT, accept.as_str())
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = self.expect(resp, &what, &[StatusCode::OK]).await?;
        let named = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .filter(|d| oci::is_digest(d))
            .map(str::to_string);
        match named {
            Some(d) => Ok(Some(d)),
            None => Ok(self.get_manifest(repo, reference).await?.map(|f| f.digest)),
        }
    }

    /// A blob's bytes (an image config), or `None` when the repository has
    /// no such blob. Checked against its digest.
    pub async fn get_blob(
        &self,
        repo: &str,
        digest: &str,
    ) -> Result<Option<Vec<u8>>, RegistryError> {
        let url = self.url(repo, &format!("blobs/{digest}"));
        let what = format!("reading blob {} in {repo}", short(digest));
        let resp = self.send(repo, &what, || self.http().get(&url)).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = self.expect(resp, &what, &[StatusCode::OK]).await?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| self.error(&what, None, transport_detail(&e)))?
            .to_vec();
        if oci::sha256_digest(&bytes) != digest {
            return Err(self.error(&what, Some(200), "the content does not match its digest"));
        }
        Ok(Some(bytes))
    }

    /// Send a request built by `build`, answering auth challenges and
    /// retrying transient failures.
    async fn send(
        &self,
        repo: &str,
        what: &str,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let mut attempt = 0;
        let mut challenged = false;
        loop {
            attempt += 1;
            let mut req = build();
            if let Some(h) = self.auth_header(repo).await? {
                req = req.header(AUTHORIZATION, h);
            }
            let (result, method, url) = match req.build() {
                Ok(request) => {
                    let (method, url) = (request.method().to_string(), request.url().to_string());
                    debug!(
                        "{what}: {method} {} (attempt {attempt}/{MAX_ATTEMPTS})",
                        log::url(&url)
                    );
                    (self.http().execute(request).await, method, url)
                }
                Err(e) => (Err(e), String::new(), String::new()),
            };
            let resp = match result {
                Ok(r) => r,
                Err(e) => {
                    let err = self.error(what, None, transport_detail(&e));
                    if attempt < MAX_ATTEMPTS {
                        let delay = self.backoff.delay(attempt, None);
                        debug!(
                            "{what}: {method} failed ({}); retrying in {delay:?}",
                            err.detail
                        );
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    debug!(
                        "{what}: {method} failed ({}); giving up after {attempt} attempts",
                        err.detail
                    );
                    return Err(err);
                }
            };
            log_response(&self.prefix.host, &method, &url, &resp, attempt);
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !challenged {
                challenged = true;
                if self.answer_challenge(repo, what, resp.headers()).await? {
                    continue;
                }
                return Err(self.unauthorized(what));
            }
            if status == StatusCode::UNAUTHORIZED {
                return Err(self.unauthorized(what));
            }
            let transient = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
            if transient && attempt < MAX_ATTEMPTS {
                let retry_after = retry_after(resp.headers());
                let delay = self.backoff.delay(attempt, retry_after);
                debug!(
                    "{what}: HTTP {} is transient; retrying in {delay:?}{}",
                    status.as_u16(),
                    if retry_after.is_some() {
                        " (retry-after)"
                    } else {
                        ""
                    }
                );
                tokio::time::sleep(delay).await;
                continue;
            }
            return Ok(resp);
        }
    }

    fn unauthorized(&self, what: &str) -> RegistryError {
        let hint = match &self.credentials {
            Some(c) if c.identity_token => format!(
                "the token service refused the identity token (an OAuth2 refresh token) from {}; \
                 it may have expired or been revoked: run `docker login {}` again",
                c.source, self.prefix.host
            ),
            Some(c) => format!("the registry refused the credentials from {}", c.source),
            None => format!(
                "no credentials for {}: run `docker login {}` or set {}_USERNAME and {}_PASSWORD",
                self.prefix.host,
                self.prefix.host,
                crate::clients::credentials::env_prefix(&self.prefix.host),
                crate::clients::credentials::env_prefix(&self.prefix.host)
            ),
        };
        self.error(
            what,
            Some(401),
            format!("authentication required (HTTP 401); {hint}"),
        )
    }

    /// Learn the auth scheme from a 401. Returns whether a retry makes sense.
    async fn answer_challenge(
        &self,
        repo: &str,
        what: &str,
        headers: &HeaderMap,
    ) -> Result<bool, RegistryError> {
        let Some(challenge) = headers.get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()) else {
            debug!(
                "{what}: {} answered 401 without a challenge; {}",
                self.prefix.host,
                self.credentials_note()
            );
            return Ok(self.credentials.is_some() && self.set_mode(AuthMode::Basic));
        };
        let (scheme, params) = parse_challenge(challenge);
        debug!(
            "{what}: {} answered 401 with a challenge: {scheme} (realm {:?}, service {:?}); {}",
            self.prefix.host,
            params.get("realm").map(|r| log::url(r)).unwrap_or_default(),
            params
                .get("service")
                .map(String::as_str)
                .unwrap_or_default(),
            self.credentials_note()
        );
        if scheme.eq_ignore_ascii_case("basic") {
            if let Some(c) = self.credentials.as_ref().filter(|c| c.identity_token) {
                // A refresh token is no password: Docker never sends it as one.
                return Err(self.error(
                    what,
                    Some(401),
                    format!(
                        "the registry asks for a user name and password (Basic), and the \
                         credentials from {} are an identity token (an OAuth2 refresh token), \
                         which only a token service takes; run `docker login {}` with a \
                         password, or set {}_USERNAME and _PASSWORD",
                        c.source,
                        self.prefix.host,
                        crate::clients::credentials::env_prefix(&self.prefix.host)
                    ),
                ));
            }
            return Ok(self.credentials.is_some() && self.set_mode(AuthMode::Basic));
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            let realm = params
                .get("realm")
                .cloned()
                .ok_or_else(|| self.error(what, Some(401), "bearer challenge without a realm"))?;
            self.set_mode(AuthMode::Bearer {
                realm,
                service: params.get("service").cloned(),
            });
            self.tokens.lock().expect("token lock").remove(&scope(repo));
            self.fetch_token(repo, what).await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Which credentials answer a challenge, for the log (never the secret).
    fn credentials_note(&self) -> String {
        match &self.credentials {
            Some(c) => format!("credentials of user {:?} from {}", c.username, c.source),
            None => "no credentials: anonymous".to_string(),
        }
    }

    /// Switch auth mode; false when it was already that (no point retrying).
    fn set_mode(&self, mode: AuthMode) -> bool {
        let mut m = self.mode.lock().expect("auth lock");
        let changed = !matches!((&*m, &mode), (AuthMode::Basic, AuthMode::Basic));
        *m = mode;
        changed
    }

    /// The Basic header of the user name and password; none for an
    /// identity token (never sent as a password).
    fn basic_value(&self) -> Option<HeaderValue> {
        let c = self.credentials.as_ref().filter(|c| !c.identity_token)?;
        let raw = format!("{}:{}", c.username, c.password.expose());
        let mut v = HeaderValue::from_str(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ))
        .ok()?;
        v.set_sensitive(true);
        Some(v)
    }

    async fn auth_header(&self, repo: &str) -> Result<Option<HeaderValue>, RegistryError> {
        let mode = self.mode.lock().expect("auth lock").clone();
        match mode {
            AuthMode::Unknown => Ok(None),
            AuthMode::Basic => Ok(self.basic_value()),
            AuthMode::Bearer { .. } => {
                let cached = self
                    .tokens
                    .lock()
                    .expect("token lock")
                    .get(&scope(repo))
                    .cloned();
                let token = match cached {
                    Some(t) => t,
                    None => self.fetch_token(repo, "authenticating").await?,
                };
                let mut v =
                    HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                        self.error(
                            "authenticating",
                            Some(401),
                            "the token service returned an unusable token",
                        )
                    })?;
                v.set_sensitive(true);
                Ok(Some(v))
            }
        }
    }

    async fn fetch_token(&self, repo: &str, what: &str) -> Result<Secret, RegistryError> {
        let AuthMode::Bearer { realm, service } = self.mode.lock().expect("auth lock").clone()
        else {
            return Err(self.error(what, Some(401), "no bearer realm known"));
        };
        let refresh = self.refresh_token.lock().expect("refresh lock").clone();
        if let Some(refresh) = refresh {
            return self
                .fetch_token_oauth(repo, what, &realm, service, &refresh)
                .await;
        }
        // One `scope` parameter per scope, as Docker asks.
        let mut query: Vec<(&str, String)> = scope(repo)
            .split(' ')
            .map(|s| ("scope", s.to_string()))
            .collect();
        if let Some(s) = service {
            query.push(("service", s));
        }
        let mut req = self.http().get(&realm).query(&query);
        let basic = self.basic_value();
        debug!(
            "{what}: asking the token service {} for scope {} ({})",
            log::url(&realm),
            scope(repo),
            if basic.is_some() {
                "with credentials"
            } else {
                "anonymously"
            }
        );
        if let Some(b) = basic {
            req = req.header(AUTHORIZATION, b);
        }
        let resp = req.send().await.map_err(|e| {
            let err = self.error(
                what,
                None,
                format!("token service: {}", transport_detail(&e)),
            );
            debug!("{what}: {}", err.detail);
            err
        })?;
        debug!(
            "{what}: token service answered HTTP {}",
            resp.status().as_u16()
        );
        if resp.status() == StatusCode::UNAUTHORIZED || resp.status() == StatusCode::FORBIDDEN {
            return Err(self.unauthorized(what));
        }
        let resp = self.expect(resp, what, &[StatusCode::OK]).await?;
        self.keep_token(repo, what, resp).await
    }

    /// The OAuth2 refresh-token grant, as Docker asks with an identity token:
    /// `POST realm` with `grant_type=refresh_token`, the token, the service,
    /// the scope and a client id. A new refresh token in the answer replaces
    /// the old one for the rest of the run.
    async fn fetch_token_oauth(
        &self,
        repo: &str,
        what: &str,
        realm: &str,
        service: Option<String>,
        refresh: &Secret,
    ) -> Result<Secret, RegistryError> {
        let mut form = vec![
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", refresh.expose().to_string()),
            ("scope", scope(repo)),
            ("client_id", OAUTH_CLIENT_ID.to_string()),
        ];
        if let Some(s) = service {
            form.push(("service", s));
        }
        debug!(
            "{what}: asking the token service {} for scope {} (OAuth2 refresh-token grant, identity token)",
            log::url(realm),
            scope(repo),
        );
        let resp = self
            .http()
            .post(realm)
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                let err = self.error(
                    what,
                    None,
                    format!("token service: {}", transport_detail(&e)),
                );
                debug!("{what}: {}", err.detail);
                err
            })?;
        let status = resp.status();
        debug!("{what}: token service answered HTTP {}", status.as_u16());
        // RFC 6749: a refused grant is 400 `invalid_grant`; some answer 401.
        if matches!(
            status,
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            let body = resp.text().await.unwrap_or_default();
            debug!(
                "{what}: refused: {}",
                oauth_error(&body).unwrap_or_else(|| body.chars().take(200).collect())
            );
            return Err(self.unauthorized(what));
        }
        if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED {
            let c = self.credentials.as_ref();
            return Err(self.error(
                what,
                Some(status.as_u16()),
                format!(
                    "the token service at {} does not take OAuth2 requests (HTTP {}), so the \
                     identity token from {} cannot be used there; run `docker login {}` with \
                     a password, or set {}_USERNAME and _PASSWORD",
                    log::url(realm),
                    status.as_u16(),
                    c.map_or("docker's config", |c| c.source.as_str()),
                    self.prefix.host,
                    crate::clients::credentials::env_prefix(&self.prefix.host)
                ),
            ));
        }
        let resp = self.expect(resp, what, &[StatusCode::OK]).await?;
        self.keep_token(repo, what, resp).await
    }

    /// Read a token service's answer, keep the bearer token for the scope
    /// (and a new refresh token, if any).
    async fn keep_token(
        &self,
        repo: &str,
        what: &str,
        resp: Response,
    ) -> Result<Secret, RegistryError> {
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
            refresh_token: Option<String>,
        }
        let answer: TokenAnswer = resp
            .json()
            .await
            .map_err(|e| self.error(what, None, format!("token service answer: {e}")))?;
        if let Some(new) = answer.refresh_token.and_then(Secret::new) {
            let mut current = self.refresh_token.lock().expect("refresh lock");
            if current.is_some() {
                debug!("{what}: the token service handed out a new refresh token");
                *current = Some(new);
            }
        }
        let token = answer
            .token
            .or(answer.access_token)
            .and_then(Secret::new)
            .ok_or_else(|| self.error(what, Some(200), "the token service returned no token"))?;
        debug!("{what}: got a bearer token for {}", scope(repo));
        self.tokens
            .lock()
            .expect("token lock")
            .insert(scope(repo), token.clone());
        Ok(token)
    }

    async fn expect(
        &self,
        resp: Response,
        what: &str,
        ok: &[StatusCode],
    ) -> Result<Response, RegistryError> {
        if ok.contains(&resp.status()) {
            Ok(resp)
        } else {
            Err(self.status_error(what, resp).await)
        }
    }

    async fn status_error(&self, what: &str, resp: Response) -> RegistryError {
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED {
            return self.unauthorized(what);
        }
        let body = resp.text().await.unwrap_or_default();
        let detail = registry_errors(&body).unwrap_or_else(|| body.chars().take(300).collect());
        let hint = if status == StatusCode::FORBIDDEN {
            "; the credentials lack push access to this repository"
        } else {
            ""
        };
        self.error(
            what,
            Some(status.as_u16()),
            format!(
                "HTTP {}{}{hint}",
                status.as_u16(),
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(": {detail}")
                }
            ),
        )
    }

    /// Method for tests of the auth flow.
    #[doc(hidden)]
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.http().request(method, url)
    }
}

mod transfer;
pub use transfer::{ByteStream, UploadStart};

/// One answer in the log: status at debug, the headers worth knowing at
/// trace (never `Authorization`, cookies or anything not listed).
fn log_response(host: &str, method: &str, url: &str, resp: &Response, attempt: u32) {
    debug!(
        "{method} {} -> HTTP {} (attempt {attempt})",
        log::url(url),
        resp.status().as_u16()
    );
    if tracing::enabled!(tracing::Level::TRACE) {
        const SHOWN: &[&str] = &[
            "content-type",
            "content-length",
            "docker-content-digest",
            "docker-distribution-api-version",
            "docker-upload-uuid",
            "location",
            "range",
            "retry-after",
            "www-authenticate",
        ];
        let shown: Vec<String> = resp
            .headers()
            .iter()
            .filter(|(name, _)| SHOWN.contains(&name.as_str()))
            .map(|(name, value)| {
                let value = value.to_str().unwrap_or("(binary)");
                if name == LOCATION {
                    format!("{name}: {}", log::url(value))
                } else {
                    format!("{name}: {value}")
                }
            })
            .collect();
        trace!("  headers from {host}: {}", shown.join("; "));
    }
}

/// The token scope a request on `repo` needs. `repo` may be `TO FROM` (a
/// blob mount, [`Registry::start_upload`]): push to one repository, pull from
/// the other, in one token; scopes are separated by a space, as the OAuth2
/// form of the token request writes them.
fn scope(repo: &str) -> String {
    match repo.split_once(' ') {
        Some((to, from)) => format!("repository:{to}:pull,push repository:{from}:pull"),
        None => format!("repository:{repo}:pull,push"),
    }
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

/// Transport errors without URLs' query strings (upload state) or secrets.
fn transport_detail(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_request() {
        "connection broken"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut root = String::new();
    while let Some(s) = source {
        root = s.to_string();
        source = s.source();
    }
    if root.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({root})")
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// `{"error":"invalid_grant","error_description":"…"}` (RFC 6749) → `invalid_grant: …`.
fn oauth_error(body: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct OAuthError {
        error: String,
        error_description: Option<String>,
    }
    let e: OAuthError = serde_json::from_str(body).ok()?;
    Some(match e.error_description {
        Some(d) => format!("{}: {d}", e.error),
        None => e.error,
    })
}

/// `{"errors":[{"code":"DENIED","message":"…"}]}` → `DENIED: …`.
fn registry_errors(body: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        code: Option<String>,
        message: Option<String>,
    }
    let parsed: Errors = serde_json::from_str(body).ok()?;
    let parts: Vec<String> = parsed
        .errors
        .into_iter()
        .map(|i| match (i.code, i.message) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c,
            (None, Some(m)) => m,
            (None, None) => String::new(),
        })
        .collect();
    Some(parts.join("; "))
}

/// `Bearer realm="x",service="y"` → ("Bearer", {realm: x, service: y}).
pub fn parse_challenge(text: &str) -> (String, HashMap<String, String>) {
    let text = text.trim();
    let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.insert(key, value.to_string());
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    (scheme.to_string(), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull""#,
        );
        assert_eq!(s, "Bearer");
        assert_eq!(p["realm"], "https://ghcr.io/token");
        assert_eq!(p["service"], "ghcr.io");
        assert_eq!(p["scope"], "repository:a/b:pull");
        let (s, p) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(s, "Basic");
        assert_eq!(p["realm"], "Registry Realm");
    }

    #[test]
    fn summarizes_registry_errors() {
        assert_eq!(
            registry_errors(r#"{"errors":[{"code":"DENIED","message":"no push"}]}"#).unwrap(),
            "DENIED: no push"
        );
        assert!(registry_errors("<html>").is_none());
    }

    #[test]
    fn transient_kinds() {
        let e = |s| RegistryError {
            registry: "r".into(),
            what: "w".into(),
            status: s,
            detail: String::new(),
        };
        assert!(e(None).is_transient());
        assert!(e(Some(503)).is_transient());
        assert!(e(Some(429)).is_transient());
        assert!(!e(Some(401)).is_transient());
        assert!(!e(Some(400)).is_transient());
    }
}

//! The Docker Engine API (bollard): connecting, BuildKit builds, exporting
//! built images. Nothing else in the crate talks to the engine. Where the
//! engine is comes from `clients::docker_host` (DOCKER_HOST, TLS, docker
//! contexts, as the docker CLI reads them). Docker's engine builds with
//! BuildKit; podman's Docker API (`podman system service`) takes the same
//! requests and builds with Buildah.

use crate::clients::docker_host;
use anyhow::{Context, Result};
use bollard::models::BuildInfoAux;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, BuilderVersion, RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
use bollard::{body_try_stream, Docker};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::collections::{BTreeMap, HashMap, VecDeque};
use tracing::{debug, trace};

/// Lines of build output kept to show when a build fails.
const LOG_TAIL: usize = 25;

pub struct Engine {
    docker: Docker,
    /// Where the engine was reached, for messages.
    pub host: String,
    /// The negotiated API version.
    pub api_version: String,
    /// How it was found and reached: TLS, a docker context (for messages).
    pub via: String,
    /// Which engine: Docker's or podman's, and its version.
    pub kind: EngineKind,
    pub version: String,
    /// The engine's own platform (`linux/amd64`): what `build --load` builds.
    pub os: String,
    pub arch: String,
}

/// Which engine answers the Docker API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// dockerd: builds with BuildKit.
    Docker,
    /// `podman system service`: builds with Buildah, not BuildKit.
    Podman,
}

impl Engine {
    /// `unix:///var/run/docker.sock (API 1.47)`, with what is worth knowing
    /// besides: `, podman 4.3.1`, `, TLS`, `, docker context NAME`.
    pub fn describe(&self) -> String {
        format!(
            "{} (API {}{}{})",
            self.host,
            self.api_version,
            match self.kind {
                EngineKind::Docker => String::new(),
                EngineKind::Podman => format!(", podman {}", self.version),
            },
            self.via
        )
    }

    /// A note for build failures on an engine without BuildKit.
    pub fn builder_note(&self) -> Option<String> {
        (self.kind == EngineKind::Podman).then(|| {
            format!(
                "the engine is podman {}, which builds with Buildah, not BuildKit: a \
                 Dockerfile feature only BuildKit knows fails there (heredocs before \
                 Buildah 1.33; `# syntax=` frontends, which Buildah ignores); build such a \
                 Dockerfile with dockerd",
                self.version
            )
        })
    }
}

/// The engine could not be reached: a setup problem the user fixes.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach the Docker engine at {host} ({origin}): {reason}; {remedy}")]
pub struct EngineUnreachable {
    pub host: String,
    pub origin: String,
    pub reason: String,
    pub remedy: String,
}

/// An error and its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// A build error with what the engine lacks, when that is the cause: an
/// engine without BuildKit (dockerd before 18.09, or on Windows), or
/// podman's Buildah (`note`) meeting a feature only BuildKit knows.
fn explain_build_error(message: &str, host: &str, note: Option<String>) -> String {
    let message = message.trim();
    let lower = message.to_ascii_lowercase();
    let no_buildkit = (lower.contains("buildkit")
        && (lower.contains("not supported") || lower.contains("unsupported")))
        || lower.contains("builder version");
    if no_buildkit {
        return format!(
            "{message} (the engine at {host} cannot build with BuildKit, which openim-release \
             asks for: use dockerd 18.09 or later on Linux, or podman's Docker API)"
        );
    }
    match note {
        Some(note) => format!("{message} ({note})"),
        None => message.to_string(),
    }
}

/// What to do about a failed connection: the TLS problems by name, else
/// the endpoint's general remedy.
fn remedy_for(reason: &str, endpoint: &docker_host::Endpoint) -> String {
    let tls = endpoint.tls.as_ref();
    let certs = tls.map(|t| {
        t.ca.parent()
            .map_or_else(String::new, |d| d.display().to_string())
    });
    if reason.contains("HTTP request to an HTTPS server") {
        return "the engine speaks TLS: set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the \
                directory with its ca.pem (and the client's cert.pem and key.pem)"
            .into();
    }
    if let Some(dir) = certs {
        if reason.contains("UnknownIssuer") || reason.contains("invalid peer certificate") {
            return format!(
                "the engine's certificate is not one {dir}/ca.pem signed (or does not name this \
                 host): use the CA of the engine"
            );
        }
        // TLS 1.3: the engine's refusal of the client certificate comes
        // after the handshake, so the client may only see the connection
        // closed before its request was answered.
        let refused = reason.contains("BadCertificate")
            || reason.contains("CertificateRequired")
            || reason.contains("UnknownCA")
            || reason.contains("connection was not ready")
            || reason.contains("connection closed before message completed");
        if refused && tls.is_some_and(|t| !t.cert.is_file()) {
            return format!(
                "the engine asks for a client certificate, and {dir} has no cert.pem and \
                 key.pem: put there a client certificate signed by the CA the engine trusts"
            );
        }
        if refused {
            return format!(
                "the engine refused the client certificate: {dir}/cert.pem and key.pem must \
                 be a client certificate signed by the CA the engine trusts (its --tlscacert)"
            );
        }
    }
    endpoint.remedy()
}

/// The time bollard gives one request (its default).
const REQUEST_TIMEOUT_SECS: u64 = 120;

/// One image build for one platform.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// Local name the result is tagged with.
    pub local_tag: String,
    /// The Dockerfile's path inside the context tar.
    pub dockerfile: String,
    pub platform: String,
    pub args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
}

/// A failed build, with the end of its log.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BuildFailed {
    pub message: String,
    pub log_tail: Vec<String>,
    /// The engine failed before the build started (a dropped or refused
    /// connection under load): worth another try, unlike a failed build.
    pub transient: bool,
}

impl Engine {
    /// Connect where the docker CLI would (DOCKER_HOST with its TLS
    /// settings, the current docker context, or the default socket),
    /// negotiate the API version, and check that the engine answers.
    pub async fn connect() -> Result<Engine> {
        let endpoint = docker_host::resolve(&|k| std::env::var(k).ok())
            .map_err(|e| crate::error::BadInput(e.0))?;
        let host = endpoint.host.clone();
        let unreachable = |reason: String| EngineUnreachable {
            host: host.clone(),
            origin: endpoint.origin.to_string(),
            remedy: remedy_for(&reason, &endpoint),
            reason: reason.trim().trim_end_matches('.').to_string(),
        };
        let shown = crate::secret::scrub(&host, &[]);
        debug!(
            "connecting to {shown} ({}{})",
            endpoint.origin,
            if endpoint.tls.is_some() { ", TLS" } else { "" }
        );
        let version = bollard::API_DEFAULT_VERSION;
        let docker = match (&endpoint.tls, host.strip_prefix("unix://")) {
            (_, Some(path)) => Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, version),
            (None, None) => Docker::connect_with_http(&host, REQUEST_TIMEOUT_SECS, version),
            (Some(tls), None) => Docker::connect_with_ssl(
                &host,
                &tls.key,
                &tls.cert,
                &tls.ca,
                REQUEST_TIMEOUT_SECS,
                version,
            ),
        }
        .map_err(|e| unreachable(chain(&e)))?;
        let offered = docker.client_version().to_string();
        let docker = docker.negotiate_version().await.map_err(|e| {
            debug!("negotiating the API version with {shown} failed: {e}");
            unreachable(chain(&e))
        })?;
        let api_version = docker.client_version().to_string();
        debug!("API version {api_version} negotiated (client offers {offered})");
        docker.ping().await.map_err(|e| {
            debug!("ping failed: {e}");
            unreachable(chain(&e))
        })?;
        debug!("ping answered");
        let about = docker.version().await.map_err(|e| unreachable(chain(&e)))?;
        let podman = about
            .components
            .iter()
            .flatten()
            .find(|c| c.name.to_ascii_lowercase().contains("podman"));
        let (kind, version) = match podman {
            Some(c) => (EngineKind::Podman, c.version.clone()),
            None => (
                EngineKind::Docker,
                about.version.clone().unwrap_or_default(),
            ),
        };
        debug!(
            "the engine is {kind:?} {version} on {}/{}",
            about.os.as_deref().unwrap_or("?"),
            about.arch.as_deref().unwrap_or("?")
        );
        let mut via = String::new();
        if endpoint.tls.is_some() {
            via.push_str(", TLS");
        }
        if let docker_host::Origin::Context { name, .. } = &endpoint.origin {
            via.push_str(&format!(", docker context {name}"));
        }
        Ok(Engine {
            docker,
            host,
            api_version,
            via,
            kind,
            version,
            os: about.os.unwrap_or_else(|| "linux".into()),
            arch: about.arch.unwrap_or_else(|| "amd64".into()),
        })
    }

    /// Build with BuildKit from a context tar stream; returns the image id.
    /// `progress` receives one line per build step as it starts.
    pub async fn build(
        &self,
        spec: &BuildSpec,
        context: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
        mut progress: impl FnMut(&str),
    ) -> Result<String, BuildFailed> {
        let session = format!("openim-release-{}", uniq());
        let args: HashMap<String, String> = spec.args.clone().into_iter().collect();
        let labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
        let mut options = BuildImageOptionsBuilder::default()
            .dockerfile(&spec.dockerfile)
            .t(&spec.local_tag)
            .platform(&spec.platform)
            .buildargs(&args)
            .labels(&labels)
            .nocache(spec.no_cache)
            .rm(true)
            .version(BuilderVersion::BuilderBuildKit)
            .session(&session);
        if let Some(t) = &spec.target {
            options = options.target(t);
        }
        debug!(
            "build {} for {} from {} (target {:?}, build args {:?}, no-cache {}, BuildKit session {session})",
            spec.local_tag,
            spec.platform,
            spec.dockerfile,
            spec.target.as_deref().unwrap_or("-"),
            spec.args.keys().collect::<Vec<_>>(),
            spec.no_cache
        );
        let mut stream =
            self.docker
                .build_image(options.build(), None, Some(body_try_stream(context)));
        let mut tail: VecDeque<String> = VecDeque::new();
        let keep = |line: String, tail: &mut VecDeque<String>| {
            if tail.len() == LOG_TAIL {
                tail.pop_front();
            }
            tail.push_back(line);
        };
        let mut seen_vertices = std::collections::HashSet::new();
        let mut done_vertices = std::collections::HashSet::new();
        let mut vertex_errors = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(s) = info.stream {
                        for l in s.lines().filter(|l| !l.trim().is_empty()) {
                            trace!("{}: {l}", spec.local_tag);
                            keep(l.to_string(), &mut tail);
                        }
                    }
                    if let Some(BuildInfoAux::BuildKit(status)) = info.aux {
                        for v in &status.vertexes {
                            if !v.error.is_empty() {
                                debug!("{}: step failed: {}: {}", spec.local_tag, v.name, v.error);
                                vertex_errors.push(format!("{}: {}", v.name, v.error));
                            }
                            if v.completed.is_some()
                                && v.error.is_empty()
                                && done_vertices.insert(v.digest.clone())
                            {
                                trace!(
                                    "{}: step done: {}{}",
                                    spec.local_tag,
                                    v.name,
                                    if v.cached { " (cached)" } else { "" }
                                );
                            }
                            if v.started.is_some() && seen_vertices.insert(v.digest.clone()) {
                                let line = if v.cached {
                                    format!("{} (cached)", v.name)
                                } else {
                                    v.name.clone()
                                };
                                trace!("{}: step: {line}", spec.local_tag);
                                progress(&line);
                                keep(line, &mut tail);
                            }
                        }
                        for l in &status.logs {
                            for line in String::from_utf8_lossy(&l.msg).lines() {
                                if !line.trim().is_empty() {
                                    trace!("{}: {line}", spec.local_tag);
                                    keep(line.to_string(), &mut tail);
                                }
                            }
                        }
                    }
                }
                Err(e) => {
                    let connection = matches!(
                        e,
                        bollard::errors::Error::HyperLegacyError { .. }
                            | bollard::errors::Error::RequestTimeoutError
                            | bollard::errors::Error::IOError { .. }
                    );
                    let started = !tail.is_empty() || !seen_vertices.is_empty();
                    let message = match e {
                        bollard::errors::Error::DockerStreamError { error } => error,
                        other => other.to_string(),
                    };
                    // Another build removed the image this one produced too
                    // (same content, same id) while it was being stored.
                    let store_race = message.contains("failed to get digest")
                        && message.contains("no such file or directory");
                    debug!("build {} failed: {message}", spec.local_tag);
                    let mut log_tail: Vec<String> = tail.into_iter().collect();
                    log_tail.extend(vertex_errors);
                    return Err(BuildFailed {
                        message: self.explain_build_error(message),
                        log_tail,
                        transient: (connection && !started) || store_race,
                    });
                }
            }
        }
        if let Some(err) = vertex_errors.first() {
            return Err(BuildFailed {
                message: err.clone(),
                log_tail: tail.into_iter().collect(),
                transient: false,
            });
        }
        let inspect = self
            .docker
            .inspect_image(&spec.local_tag)
            .await
            .map_err(|e| BuildFailed {
                message: format!(
                    "the build finished but image {} is missing: {e}",
                    spec.local_tag
                ),
                log_tail: tail.iter().cloned().collect(),
                // Another build of the same content (same image id) stored
                // and removed it at the same moment: building again works.
                transient: matches!(
                    e,
                    bollard::errors::Error::DockerResponseServerError {
                        status_code: 404,
                        ..
                    }
                ),
            })?;
        debug!(
            "built {} ({})",
            spec.local_tag,
            inspect.id.as_deref().unwrap_or("no id")
        );
        inspect.id.ok_or_else(|| BuildFailed {
            message: format!("image {} has no id", spec.local_tag),
            log_tail: tail.into_iter().collect(),
            transient: false,
        })
    }

    /// A build error with what the engine lacks, when that may be the cause.
    fn explain_build_error(&self, message: String) -> String {
        explain_build_error(&message, &self.host, self.builder_note())
    }

    /// The `ONBUILD` triggers of an image the engine has, or `None` when it
    /// does not have it.
    pub async fn onbuild_triggers(&self, image: &str) -> Result<Option<Vec<String>>> {
        match self.docker.inspect_image(image).await {
            Ok(i) => Ok(Some(i.config.and_then(|c| c.on_build).unwrap_or_default())),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("inspecting image {image}")),
        }
    }

    /// `docker save` of one image, as a stream.
    pub fn export(
        &self,
        image: &str,
    ) -> impl Stream<Item = Result<Bytes, bollard::errors::Error>> + '_ {
        debug!("exporting {image}");
        self.docker.export_image(image)
    }

    /// The engine's own platform, `linux/amd64`: what runs there natively.
    pub fn platform(&self) -> String {
        format!("{}/{}", self.os, self.arch)
    }

    /// Give `image` (a name or id) another name, `repository:tag`.
    pub async fn tag(&self, image: &str, reference: &str) -> Result<()> {
        let (repo, tag) = reference
            .rsplit_once(':')
            .filter(|(_, t)| !t.contains('/'))
            .unwrap_or((reference, "latest"));
        debug!("tagging {image} as {repo}:{tag}");
        let opts = TagImageOptionsBuilder::default()
            .repo(repo)
            .tag(tag)
            .build();
        self.docker
            .tag_image(image, Some(opts))
            .await
            .with_context(|| format!("tagging {image} as {reference}"))
    }

    /// Remove a local tag (not the image layers other tags share).
    pub async fn untag(&self, name: &str) -> Result<()> {
        debug!("removing local tag {name}");
        let opts = RemoveImageOptionsBuilder::default().noprune(true).build();
        self.docker
            .remove_image(name, Some(opts), None)
            .await
            .with_context(|| format!("removing local tag {name}"))?;
        Ok(())
    }
}

/// A process-unique suffix.
pub fn uniq() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_errors_say_what_the_engine_lacks() {
        // dockerd on Windows, and API versions before BuildKit.
        for refusal in [
            "buildkit not supported by daemon",
            "unsupported builder version \"2\"",
        ] {
            let e = explain_build_error(refusal, "tcp://win:2376", None);
            assert!(
                e.starts_with(refusal) && e.contains("tcp://win:2376 cannot build with BuildKit"),
                "{e}"
            );
        }
        let e = explain_build_error("COPY failed\n", "unix:///p.sock", Some("podman".into()));
        assert_eq!(e, "COPY failed (podman)");
        assert_eq!(explain_build_error("x", "h", None), "x");
    }
}

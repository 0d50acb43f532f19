//! The Docker Engine API (bollard): connecting, BuildKit builds, exporting
//! built images. Nothing else in the crate talks to the engine.

use anyhow::{Context, Result};
use bollard::models::BuildInfoAux;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, BuilderVersion, RemoveImageOptionsBuilder,
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
}

/// The engine could not be reached: a setup problem the user fixes.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot reach the Docker engine at {host} ({reason}); start dockerd, or point \
     DOCKER_HOST at it (e.g. unix:///var/run/docker.sock)"
)]
pub struct EngineUnreachable {
    pub host: String,
    pub reason: String,
}

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
    /// Connect through DOCKER_HOST (or the default socket), negotiate the API
    /// version, and check that the engine answers.
    pub async fn connect() -> Result<Engine> {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".into());
        let unreachable = |reason: String| EngineUnreachable {
            host: host.clone(),
            reason,
        };
        let shown = crate::secret::scrub(&host, &[]);
        debug!("connecting to {shown}");
        let docker =
            Docker::connect_with_local_defaults().map_err(|e| unreachable(e.to_string()))?;
        let offered = docker.client_version().to_string();
        let docker = docker.negotiate_version().await.map_err(|e| {
            debug!("negotiating the API version with {shown} failed: {e}");
            unreachable(e.to_string())
        })?;
        let api_version = docker.client_version().to_string();
        debug!("API version {api_version} negotiated (client offers {offered})");
        docker.ping().await.map_err(|e| {
            debug!("ping failed: {e}");
            unreachable(e.to_string())
        })?;
        debug!("ping answered");
        Ok(Engine {
            docker,
            host,
            api_version,
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
                        message,
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
                transient: false,
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

//! `mirror` (also `promote`): a release copied by digest from the registry
//! `build` pushed it to into other registries, nothing rebuilt. For each
//! service: the manifest (or index) each tag names, every platform
//! manifest, config and layer, and the artifacts attached to each of them
//! (referrers, cosign's `sha256-<hex>.sig`/`.att`/`.sbom` tags); then, once
//! every service is copied everywhere, the tags. Digests stay the same.
//!
//! Which registries: `--from` (default: the first of `images.registries`)
//! and `--to`, else the routes of `images.mirrors`. `release` runs this
//! after its build, before the git tag.

use crate::build::plan::ServiceSpec;
use crate::build::run::{self as build, TagChoice};
use crate::checks::Check;
use crate::clients::registry::Registry;
use crate::config::ImagesConfig;
use crate::error::BadInput;
use crate::oci::reference::{is_valid_tag, RegistryPrefix};
use crate::oci::Encoded;
use crate::output::progress::Progress;
use crate::output::text;
use crate::promote::copy::{Copier, Moved, Stats};
use crate::promote::remote::RegistryEnd;
use crate::tag::template::for_service;
use crate::workspace::Workspace;
use anyhow::{anyhow, Context, Result};
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Blobs and manifests in flight at once, by default.
pub const DEFAULT_JOBS: usize = 8;

/// What `mirror` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct MirrorRequest {
    pub tags: TagChoice,
    /// The registry to copy from [default: the first of images.registries,
    /// or every route of images.mirrors when `to` is empty too].
    pub from: Option<String>,
    /// The registries to copy to [default: images.mirrors of `from`].
    pub to: Vec<String>,
    /// Only these services.
    pub services: Vec<String>,
    pub jobs: Option<usize>,
    pub dry_run: bool,
    /// service → the digest to copy (what the release built), instead of
    /// what the source's tags name.
    pub digests: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MirrorStatus {
    Planned,
    Copied,
    Failed,
}

/// One service copied along one route.
#[derive(Debug, Clone, Serialize)]
pub struct MirrorImage {
    pub service: String,
    /// The registry it was copied from.
    pub from: String,
    /// The digest its first tag names.
    pub digest: Option<String>,
    /// tag → digest, for every tag.
    pub digests: BTreeMap<String, String>,
    /// `<registry>/<repository>:<tag>` in every registry copied to.
    pub references: Vec<String>,
    pub status: MirrorStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One registry copied from, and those copied to.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    pub from: String,
    pub to: Vec<String>,
}

/// What one registry received.
#[derive(Debug, Clone, Serialize)]
pub struct TargetMoved {
    pub registry: String,
    pub from: String,
    #[serde(flatten)]
    pub moved: Moved,
}

/// The result of `mirror`: the `--output json` document (fields are a
/// contract: add, never remove).
#[derive(Debug, Clone, Serialize)]
pub struct MirrorReport {
    pub schema_version: u32,
    pub dry_run: bool,
    pub tags: Vec<String>,
    pub routes: Vec<Route>,
    pub images: Vec<MirrorImage>,
    /// Per registry copied to.
    pub targets: Vec<TargetMoved>,
    /// Over every registry copied to.
    pub moved: Moved,
}

impl MirrorReport {
    pub fn failed(&self) -> Vec<&MirrorImage> {
        self.images
            .iter()
            .filter(|i| i.status == MirrorStatus::Failed)
            .collect()
    }
}

type Routes = Vec<(RegistryPrefix, Vec<RegistryPrefix>)>;

fn parse(r: &str, what: &str) -> Result<RegistryPrefix> {
    RegistryPrefix::parse(r).map_err(|e| BadInput(format!("{what}: {e}")).into())
}

/// The routes of `images.mirrors`, parsed (validated when loaded).
pub fn configured(images: &ImagesConfig) -> Routes {
    images
        .mirrors
        .iter()
        .filter_map(|(from, to)| {
            Some((
                RegistryPrefix::parse(from).ok()?,
                to.iter()
                    .filter_map(|t| RegistryPrefix::parse(t).ok())
                    .collect(),
            ))
        })
        .collect()
}

/// Which registries to copy from and to: `--from` and `--to` as given,
/// completed from the configuration.
pub fn routes(images: &ImagesConfig, from: Option<&str>, to: &[String]) -> Result<Routes> {
    let config = configured(images);
    let targets: Vec<RegistryPrefix> =
        to.iter().map(|t| parse(t, "--to")).collect::<Result<_>>()?;
    let source = match from {
        Some(f) => Some(parse(f, "--from")?),
        None if !targets.is_empty() => Some(
            images
                .registries
                .first()
                .map(|r| parse(r, "images.registries"))
                .transpose()?
                .ok_or_else(|| {
                    BadInput(
                        "no registry to copy from: pass --from REGISTRY, or list the registry \
                         build pushes to in images.registries"
                            .into(),
                    )
                })?,
        ),
        None => None,
    };
    let routes: Routes = match (source, targets.is_empty()) {
        (Some(s), false) => vec![(s, targets)],
        (Some(s), true) => {
            let to = config
                .iter()
                .find(|(f, _)| *f == s)
                .map(|(_, t)| t.clone())
                .ok_or_else(|| {
                    BadInput(format!(
                        "images.mirrors names no registry to copy {s} to: pass --to REGISTRY"
                    ))
                })?;
            vec![(s, to)]
        }
        (None, _) if config.is_empty() => {
            return Err(BadInput(
                "nothing to copy to: pass --to REGISTRY, or configure images.mirrors \
                 (see docs/promote.md)"
                    .into(),
            )
            .into())
        }
        (None, _) => config,
    };
    for (from, to) in &routes {
        if let Some(same) = to.iter().find(|t| *t == from) {
            return Err(BadInput(format!("--to {same} is the registry copied from")).into());
        }
    }
    Ok(routes)
}

/// The selected services, in the configuration's order.
pub fn select(all: Vec<ServiceSpec>, names: &[String]) -> Result<Vec<ServiceSpec>> {
    if let Some(unknown) = names.iter().find(|n| !all.iter().any(|s| &s.name == *n)) {
        return Err(BadInput(format!(
            "unknown service `{unknown}`; known services: {}",
            all.iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into());
    }
    Ok(all
        .into_iter()
        .filter(|s| names.is_empty() || names.contains(&s.name))
        .collect())
}

/// The tags asked for, checked: each service's are valid image tags.
pub fn tags_of(ws: &Workspace, choice: &TagChoice) -> Result<Vec<String>> {
    build::refuse_inapplicable_tags(choice, "--tag")?;
    let (tags, _) = build::resolve_tags(ws, choice)?;
    if tags.is_empty() {
        return Err(BadInput("no image tags: pass --tag TAG or --stage STAGE".into()).into());
    }
    if let Some(bad) = tags
        .iter()
        .find(|t| !is_valid_tag(&for_service(t, "service")))
    {
        return Err(BadInput(format!("`{bad}` is not a valid image tag")).into());
    }
    Ok(tags)
}

/// Connect to registries as `build` does (credentials, insecure hosts).
pub async fn connect(images: &ImagesConfig, prefix: &RegistryPrefix) -> Result<Arc<Registry>> {
    let mut regs = build::connect_registries(images, std::slice::from_ref(prefix)).await?;
    Ok(regs.remove(0))
}

/// The mirror targets of `images.mirrors`, each checked as `build --check`
/// checks registries (for `release`'s checks).
pub async fn check_targets(ws: &Workspace) -> Vec<Check> {
    let Some(images) = ws.config().images.clone() else {
        return Vec::new();
    };
    let probe = build::services(ws)
        .ok()
        .and_then(|s| s.first().map(|s| s.repository.clone()))
        .unwrap_or_else(|| "check".into());
    let mut checks = Vec::new();
    for (from, to) in configured(&images) {
        for target in to {
            let name = format!("registry {target} (mirror of {from})");
            let usable = async {
                let r = connect(&images, &target).await?;
                r.check(&target.repository(&probe)).await?;
                anyhow::Ok(r.has_credentials())
            };
            checks.push(match usable.await {
                Ok(true) => Check::passed(name, "answers; credentials accepted"),
                Ok(false) => {
                    Check::passed(name, "answers without credentials (none configured for it)")
                }
                Err(e) => Check::failed(name, &e),
            });
        }
    }
    checks
}

/// `mirror`: copy, then tag (or plan, with `dry_run`).
pub async fn run(ws: &Workspace, req: &MirrorRequest) -> Result<MirrorReport> {
    let images = build::images(ws)?;
    let services = select(build::services(ws)?, &req.services)?;
    let tags = tags_of(ws, &req.tags)?;
    let routes = routes(&images, req.from.as_deref(), &req.to)?;
    let jobs = req.jobs.unwrap_or(DEFAULT_JOBS).max(1);
    let own_tags = |s: &ServiceSpec| -> Vec<String> {
        tags.iter().map(|t| for_service(t, &s.image)).collect()
    };
    let planned = |from: &RegistryPrefix, to: &[RegistryPrefix], s: &ServiceSpec| MirrorImage {
        service: s.name.clone(),
        from: from.to_string(),
        digest: req.digests.get(&s.name).cloned(),
        digests: BTreeMap::new(),
        references: to
            .iter()
            .flat_map(|t| {
                own_tags(s)
                    .into_iter()
                    .map(move |tag| format!("{t}/{}:{tag}", s.repository))
            })
            .collect(),
        status: MirrorStatus::Planned,
        error: None,
    };
    let mut report = MirrorReport {
        schema_version: 1,
        dry_run: req.dry_run,
        tags: tags.clone(),
        routes: routes
            .iter()
            .map(|(f, t)| Route {
                from: f.to_string(),
                to: t.iter().map(ToString::to_string).collect(),
            })
            .collect(),
        images: Vec::new(),
        targets: Vec::new(),
        moved: Moved::default(),
    };
    if req.dry_run {
        for (from, to) in &routes {
            report
                .images
                .extend(services.iter().map(|s| planned(from, to, s)));
        }
        return Ok(report);
    }
    let progress = Progress::new(ws.quiet);
    let probe = services
        .first()
        .map(|s| s.repository.clone())
        .unwrap_or_else(|| "check".into());
    for (from, to) in &routes {
        // Every registry answers, with its credentials, before anything moves.
        let src = connect(&images, from).await?;
        src.check(&from.repository(&probe))
            .await
            .with_context(|| format!("registry {from} is not usable"))?;
        let mut sinks = Vec::new();
        for t in to {
            let r = connect(&images, t).await?;
            r.check(&t.repository(&probe))
                .await
                .with_context(|| format!("registry {t} is not usable"))?;
            sinks.push((RegistryEnd::new(r, jobs), Stats::default()));
        }
        let src = RegistryEnd::new(src, jobs);
        let copies: Vec<(MirrorImage, Vec<(String, Encoded)>)> =
            futures_util::stream::iter(services.iter())
                .map(|s| {
                    let (src, sinks, progress) = (&src, &sinks, &progress);
                    let mut image = planned(from, to, s);
                    let given = req.digests.get(&s.name).cloned();
                    let tags = own_tags(s);
                    async move {
                        match copy_service(src, sinks, s, &tags, given.as_deref(), jobs, progress)
                            .await
                        {
                            Ok(tops) => {
                                image.digests = tops
                                    .iter()
                                    .map(|(t, m)| (t.clone(), m.digest.clone()))
                                    .collect();
                                image.digest = tops.first().map(|(_, m)| m.digest.clone());
                                image.status = MirrorStatus::Copied;
                                (image, tops)
                            }
                            Err(e) => {
                                progress.failed(&s.name, &format!("{e:#}"));
                                image.status = MirrorStatus::Failed;
                                image.error = Some(format!("{e:#}"));
                                (image, Vec::new())
                            }
                        }
                    }
                })
                .buffered(jobs)
                .collect()
                .await;
        let failed: Vec<String> = copies
            .iter()
            .filter(|(i, _)| i.status == MirrorStatus::Failed)
            .map(|(i, _)| i.service.clone())
            .collect();
        let mut images_out = Vec::new();
        if failed.is_empty() {
            // Every service is everywhere: now the tags.
            let written: Vec<(MirrorImage, Result<()>)> = futures_util::stream::iter(copies)
                .map(|(image, tops)| {
                    let (sinks, progress, s) = (
                        &sinks,
                        &progress,
                        services.iter().find(|s| s.name == image.service),
                    );
                    async move {
                        let Some(s) = s else {
                            return (image, Ok(()));
                        };
                        let r = write_tags(sinks, s, &tops).await;
                        if r.is_ok() {
                            progress.done(
                                &s.name,
                                &format!(
                                    "{} at {}",
                                    image.digest.as_deref().map(short).unwrap_or_default(),
                                    sinks
                                        .iter()
                                        .map(|(e, _)| e.registry.prefix().to_string())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            );
                        }
                        (image, r)
                    }
                })
                .buffered(jobs)
                .collect()
                .await;
            for (mut image, r) in written {
                if let Err(e) = r {
                    progress.failed(&image.service, &format!("{e:#}"));
                    image.status = MirrorStatus::Failed;
                    image.error = Some(format!("{e:#}"));
                }
                images_out.push(image);
            }
        } else {
            for (mut image, _) in copies {
                if image.status != MirrorStatus::Failed {
                    let why = format!(
                        "copied but not tagged: {} failed, and tags are all or none",
                        failed.join(", ")
                    );
                    progress.line(&image.service, &why);
                    image.status = MirrorStatus::Failed;
                    image.error = Some(why);
                }
                images_out.push(image);
            }
        }
        report.images.extend(images_out);
        for (end, stats) in &sinks {
            let moved = stats.snapshot();
            report.moved.add(&moved);
            report.targets.push(TargetMoved {
                registry: end.registry.prefix().to_string(),
                from: from.to_string(),
                moved,
            });
        }
    }
    Ok(report)
}

fn short(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("sha256:{}", &hex[..hex.len().min(12)])
}

/// Copy one service (every digest its tags name, with their artifacts) to
/// every sink; returns each tag with the manifest it names.
async fn copy_service(
    src: &RegistryEnd,
    sinks: &[(RegistryEnd, Stats)],
    s: &ServiceSpec,
    tags: &[String],
    given: Option<&str>,
    jobs: usize,
    progress: &Progress,
) -> Result<Vec<(String, Encoded)>> {
    let from = src.registry.prefix();
    let src_repo = from.repository(&s.repository);
    let mut by_tag: Vec<(String, String)> = Vec::new();
    for t in tags {
        let digest = match given {
            Some(d) => d.to_string(),
            None => src
                .registry
                .manifest_digest(&src_repo, t)
                .await?
                .ok_or_else(|| anyhow!("{from}/{}:{t} does not exist", s.repository))?,
        };
        by_tag.push((t.clone(), digest));
    }
    let mut digests: Vec<&str> = Vec::new();
    for (_, d) in &by_tag {
        if !digests.contains(&d.as_str()) {
            digests.push(d);
        }
    }
    let src_repo = src_repo.as_str();
    let copied: Vec<BTreeMap<String, Encoded>> =
        futures_util::future::try_join_all(sinks.iter().map(|(sink, stats)| {
            let digests = digests.clone();
            async move {
                let dst = sink.registry.prefix();
                let dst_repo = dst.repository(&s.repository);
                let copier = Copier {
                    src,
                    sink,
                    stats,
                    jobs,
                };
                let mut tops = BTreeMap::new();
                for d in digests {
                    let (m, tree) = copier
                        .copy_manifest(src_repo, &dst_repo, d)
                        .await
                        .with_context(|| format!("copying {} {} to {dst}", s.name, short(d)))?;
                    copier
                        .copy_artifacts(src_repo, &dst_repo, &tree)
                        .await
                        .with_context(|| {
                            format!("copying the artifacts of {} {} to {dst}", s.name, short(d))
                        })?;
                    tops.insert(d.to_string(), m);
                }
                progress.line(&s.name, &format!("copied to {dst}"));
                anyhow::Ok(tops)
            }
        }))
        .await?;
    let tops = copied.into_iter().next().unwrap_or_default();
    by_tag
        .into_iter()
        .map(|(t, d)| {
            let m = tops
                .get(&d)
                .cloned()
                .ok_or_else(|| anyhow!("{}: nothing copied for {t}", s.name))?;
            Ok((t, m))
        })
        .collect()
}

/// Point each tag at its manifest in every sink (left alone where it does
/// already).
async fn write_tags(
    sinks: &[(RegistryEnd, Stats)],
    s: &ServiceSpec,
    tops: &[(String, Encoded)],
) -> Result<()> {
    futures_util::future::try_join_all(sinks.iter().map(|(sink, stats)| async move {
        let r = &sink.registry;
        let repo = r.prefix().repository(&s.repository);
        for (tag, m) in tops {
            let now = r.manifest_digest(&repo, tag).await?;
            if now.as_deref() == Some(m.digest.as_str()) {
                stats.tag(false);
                continue;
            }
            r.put_manifest(&repo, tag, m)
                .await
                .with_context(|| format!("tagging {}/{}:{tag}", r.prefix(), s.repository))?;
            stats.tag(true);
        }
        anyhow::Ok(())
    }))
    .await?;
    Ok(())
}

/// One line per registry copied to: what it received.
pub fn moved_line(m: &Moved) -> String {
    format!(
        "{} sent ({}), {} mounted, {} there already; {} copied, {} there already; {}; {} written, {} there already",
        text::count(m.blobs_sent as usize, "blob"),
        text::bytes(m.bytes_sent),
        m.blobs_mounted,
        m.blobs_present,
        text::count(m.manifests_copied as usize, "manifest"),
        m.manifests_present,
        text::count(m.artifacts as usize, "artifact"),
        text::count(m.tags_written as usize, "tag"),
        m.tags_present,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(mirrors: &[(&str, &[&str])]) -> ImagesConfig {
        ImagesConfig {
            registries: vec!["ghcr.io/openimsdk".into()],
            mirrors: mirrors
                .iter()
                .map(|(f, t)| (f.to_string(), t.iter().map(|s| s.to_string()).collect()))
                .collect(),
            ..ImagesConfig::default()
        }
    }

    fn shown(r: &Routes) -> Vec<String> {
        r.iter()
            .map(|(f, t)| {
                format!(
                    "{f} -> {}",
                    t.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect()
    }

    #[test]
    fn routes_from_flags_and_config() {
        let cfg = images(&[(
            "ghcr.io/openimsdk",
            &[
                "docker.io/openim",
                "registry.cn-hangzhou.aliyuncs.com/openimsdk",
            ],
        )]);
        assert_eq!(
            shown(&routes(&cfg, None, &[]).unwrap()),
            ["ghcr.io/openimsdk -> docker.io/openim, registry.cn-hangzhou.aliyuncs.com/openimsdk"]
        );
        assert_eq!(
            shown(&routes(&cfg, Some("ghcr.io/openimsdk"), &[]).unwrap()),
            ["ghcr.io/openimsdk -> docker.io/openim, registry.cn-hangzhou.aliyuncs.com/openimsdk"]
        );
        assert_eq!(
            shown(&routes(&cfg, None, &["quay.io/openim".into()]).unwrap()),
            ["ghcr.io/openimsdk -> quay.io/openim"]
        );
        assert_eq!(
            shown(&routes(&cfg, Some("docker.io/openim"), &["quay.io/openim".into()]).unwrap()),
            ["docker.io/openim -> quay.io/openim"]
        );
        let none = images(&[]);
        let e = routes(&none, None, &[]).unwrap_err().to_string();
        assert!(
            e.contains("pass --to REGISTRY, or configure images.mirrors"),
            "{e}"
        );
        let e = routes(&cfg, Some("quay.io/x"), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("names no registry to copy quay.io/x to"), "{e}");
        let e = routes(&cfg, None, &["ghcr.io/openimsdk".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("is the registry copied from"), "{e}");
        let e = routes(&cfg, None, &["https://x".into()])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--to: "), "{e}");
    }
}

//! `bundle export` and `bundle import`: a release as one file, for
//! machines without access to the public registries (air-gapped sites,
//! users in China). Export copies every service image of the tags (all
//! platforms, with their signatures, attestations and SBOMs) and the deploy
//! charts into an OCI image layout tar ([`crate::promote::layout`]); import
//! pushes it into a registry and names what it pushed. Digests are those of
//! the source registry.

use crate::build::run::{self as build, TagChoice};
use crate::clients::registry::Registry;
use crate::deploy::gitops::Checkout;
use crate::error::BadInput;
use crate::oci::reference::RegistryPrefix;
use crate::oci::Encoded;
use crate::output::progress::Progress;
use crate::promote::copy::{Copier, Moved, Sink, Stats};
use crate::promote::graph::{self, Desc};
use crate::promote::helm::{self, Packaged};
use crate::promote::layout::{self, entry, LayoutReader, LayoutWriter};
use crate::promote::mirror;
use crate::promote::remote::RegistryEnd;
use crate::tag::template::for_service;
use crate::workspace::Workspace;
use anyhow::{anyhow, Context, Result};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// What `bundle export` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct ExportRequest {
    pub file: PathBuf,
    pub tags: TagChoice,
    /// The registry to read from [default: the first of images.registries].
    pub from: Option<String>,
    pub services: Vec<String>,
    /// Chart directories [default: those of deploy.charts in the deploy
    /// repository].
    pub charts: Vec<PathBuf>,
    /// A checkout of the deploy repository instead of a clone of deploy.url.
    pub deploy_dir: Option<PathBuf>,
    pub no_charts: bool,
    pub jobs: Option<usize>,
    pub dry_run: bool,
}

/// What `bundle import` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    pub file: PathBuf,
    pub registry: String,
    /// Plain HTTP (besides loopback registries and images.insecure_registries).
    pub insecure: bool,
    pub jobs: Option<usize>,
    pub dry_run: bool,
}

/// One service image of a bundle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleImage {
    pub service: String,
    pub repository: String,
    /// tag → digest.
    pub tags: BTreeMap<String, String>,
    pub platforms: Vec<String>,
    /// Where it was read from, or pushed to (`<registry>/<repository>:<tag>`).
    pub references: Vec<String>,
}

/// One chart of a bundle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleChart {
    pub name: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// Its repository in a registry (`charts/<name>`) and tag.
    pub repository: String,
    pub tag: String,
    pub digest: String,
    /// The `.tgz` in the bundle, beside the layout.
    pub file: String,
    /// Where it was pushed (`oci://<registry>/charts/<name>`), on import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BundleAction {
    #[default]
    Export,
    Import,
}

/// The result of `bundle export` and `bundle import`, and the summary a
/// bundle carries (`openim-release-bundle.json`): the `--output json`
/// document (fields are a contract: add, never remove).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleReport {
    pub schema_version: u32,
    pub action: BundleAction,
    pub dry_run: bool,
    pub file: String,
    /// The registry the images were read from (export), or pushed to (import).
    pub registry: String,
    pub tags: Vec<String>,
    pub images: Vec<BundleImage>,
    pub charts: Vec<BundleChart>,
    /// Size of the bundle file (export).
    #[serde(default)]
    pub bytes: u64,
    /// What was moved into the bundle (export) or the registry (import).
    #[serde(default)]
    pub moved: Moved,
}

/// The chart directories to bundle, packaged.
fn charts(ws: &Workspace, req: &ExportRequest) -> Result<Vec<Packaged>> {
    if req.no_charts {
        return Ok(Vec::new());
    }
    let dirs: Vec<PathBuf> = if !req.charts.is_empty() {
        req.charts.iter().map(|c| ws.dir.join(c)).collect()
    } else {
        let Some(deploy) = &ws.config().deploy else {
            return Ok(Vec::new());
        };
        if deploy.charts.is_empty() {
            return Ok(Vec::new());
        }
        let (root, _kept): (PathBuf, Option<Checkout>) = match &req.deploy_dir {
            Some(d) => (ws.dir.join(d), None),
            None => {
                let url = deploy.url.clone().ok_or_else(|| {
                    BadInput(
                        "deploy.url is not set: pass --deploy-dir DIR (a checkout of the deploy \
                         repository), --chart DIR or --no-charts"
                            .into(),
                    )
                })?;
                let base = deploy.base.clone().unwrap_or_else(|| "main".into());
                let c = Checkout::clone(&url, &base, ws.quiet)?;
                (c.dir().to_path_buf(), Some(c))
            }
        };
        return deploy
            .charts
            .iter()
            .map(|c| {
                helm::package(&root.join(&c.path)).map_err(|e| {
                    BadInput(format!("deploy.charts {}: {e:#}", c.path.display())).into()
                })
            })
            .collect();
    };
    dirs.iter()
        .map(|d| helm::package(d).map_err(|e| BadInput(format!("--chart: {e:#}")).into()))
        .collect()
}

/// `bundle export`.
pub async fn export(ws: &Workspace, req: &ExportRequest) -> Result<BundleReport> {
    let images = build::images(ws)?;
    let services = mirror::select(build::services(ws)?, &req.services)?;
    let tags = mirror::tags_of(ws, &req.tags)?;
    let from = match &req.from {
        Some(f) => RegistryPrefix::parse(f).map_err(|e| BadInput(format!("--from: {e}")))?,
        None => images
            .registries
            .first()
            .map(|r| RegistryPrefix::parse(r).map_err(BadInput))
            .transpose()?
            .ok_or_else(|| {
                BadInput(
                    "no registry to read the images from: pass --from REGISTRY, or set \
                     images.registries"
                        .into(),
                )
            })?,
    };
    if req.file.is_dir() {
        return Err(BadInput(format!(
            "{} is a directory; name the bundle file (e.g. openim-{}.tar)",
            req.file.display(),
            tags[0]
        ))
        .into());
    }
    let charts = charts(ws, req)?;
    let jobs = req.jobs.unwrap_or(mirror::DEFAULT_JOBS).max(1);
    let mut report = BundleReport {
        schema_version: 1,
        action: BundleAction::Export,
        dry_run: req.dry_run,
        file: req.file.display().to_string(),
        registry: from.to_string(),
        tags: tags.clone(),
        images: services
            .iter()
            .map(|s| {
                let own: Vec<String> = tags.iter().map(|t| for_service(t, &s.image)).collect();
                BundleImage {
                    service: s.name.clone(),
                    repository: s.repository.clone(),
                    references: own
                        .iter()
                        .map(|t| format!("{from}/{}:{t}", s.repository))
                        .collect(),
                    tags: own.into_iter().map(|t| (t, String::new())).collect(),
                    platforms: Vec::new(),
                }
            })
            .collect(),
        charts: Vec::new(),
        bytes: 0,
        moved: Moved::default(),
    };
    if req.dry_run {
        for c in &charts {
            report.charts.push(chart_entry(c, &c.manifest()));
        }
        return Ok(report);
    }
    let src = mirror::connect(&images, &from).await?;
    if let Some(first) = services.first() {
        src.check(&from.repository(&first.repository))
            .await
            .with_context(|| format!("registry {from} is not usable"))?;
    }
    let src = RegistryEnd::new(src, jobs);
    let writer = LayoutWriter::create(&req.file).await?;
    let stats = Stats::default();
    let progress = Progress::new(ws.quiet);
    let filled = fill(&src, &writer, &stats, &progress, &mut report, &charts, jobs).await;
    if let Err(e) = filled {
        writer.abandon().await;
        return Err(e);
    }
    report.moved = stats.snapshot();
    let mut summary = report.clone();
    summary.file = req
        .file
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut files = vec![(
        layout::SUMMARY.to_string(),
        serde_json::to_vec_pretty(&summary)?,
    )];
    for c in &charts {
        files.push((format!("charts/{}", c.file_name()), c.archive.clone()));
    }
    report.bytes = writer.finish(&files).await?;
    Ok(report)
}

async fn fill(
    src: &RegistryEnd,
    writer: &LayoutWriter,
    stats: &Stats,
    progress: &Progress,
    report: &mut BundleReport,
    charts: &[Packaged],
    jobs: usize,
) -> Result<()> {
    let from = src.registry.prefix().clone();
    let done: Vec<Result<BundleImage>> = futures_util::stream::iter(report.images.clone())
        .map(|mut image| {
            let from = &from;
            async move {
                let repo = from.repository(&image.repository);
                let copier = Copier {
                    src,
                    sink: writer,
                    stats,
                    jobs,
                };
                let mut tops: BTreeMap<String, (Encoded, Vec<String>)> = BTreeMap::new();
                for (tag, digest) in image.tags.iter_mut() {
                    let d = src
                        .registry
                        .manifest_digest(&repo, tag)
                        .await?
                        .ok_or_else(|| {
                            anyhow!("{from}/{}:{tag} does not exist", image.repository)
                        })?;
                    if !tops.contains_key(&d) {
                        let (m, tree) = copier
                            .copy_manifest(&repo, &repo, &d)
                            .await
                            .with_context(|| format!("{}: {d}", image.service))?;
                        copier
                            .copy_artifacts(&repo, &image.repository, &tree)
                            .await
                            .with_context(|| format!("{}: the artifacts of {d}", image.service))?;
                        tops.insert(d.clone(), (m, tree));
                    }
                    let (m, _) = &tops[&d];
                    writer.add_entry(entry(
                        &Desc::new(&m.media_type, &m.digest, m.bytes.len() as u64),
                        &[
                            (layout::KIND, layout::KIND_IMAGE),
                            (layout::SERVICE, &image.service),
                            (layout::REPOSITORY, &image.repository),
                            (layout::TAG, tag),
                            (layout::REF_NAME, &format!("{}:{tag}", image.repository)),
                            (
                                layout::CONTAINERD_NAME,
                                &format!("{from}/{}:{tag}", image.repository),
                            ),
                        ],
                    ));
                    *digest = d;
                }
                image.platforms = platforms(tops.values().map(|(m, _)| m));
                progress.done(
                    &image.service,
                    &format!(
                        "{} ({})",
                        image
                            .tags
                            .values()
                            .next()
                            .map(String::as_str)
                            .unwrap_or_default(),
                        image.platforms.join(", ")
                    ),
                );
                anyhow::Ok(image)
            }
        })
        .buffered(jobs)
        .collect()
        .await;
    report.images = done.into_iter().collect::<Result<_>>()?;
    for c in charts {
        writer.put_bytes(&c.config).await?;
        writer.put_bytes(&c.archive).await?;
        let m = c.manifest();
        writer.put_manifest("", &m).await?;
        let e = chart_entry(c, &m);
        writer.add_entry(entry(
            &Desc::new(&m.media_type, &m.digest, m.bytes.len() as u64),
            &[
                (layout::KIND, layout::KIND_CHART),
                (layout::REPOSITORY, &e.repository),
                (layout::TAG, &e.tag),
                (layout::REF_NAME, &format!("{}:{}", e.repository, e.tag)),
            ],
        ));
        progress.done(&format!("chart {}", c.name), &c.version);
        report.charts.push(e);
    }
    Ok(())
}

fn chart_entry(c: &Packaged, m: &Encoded) -> BundleChart {
    BundleChart {
        name: c.name.clone(),
        version: c.version.clone(),
        app_version: c.app_version.clone(),
        repository: format!("charts/{}", c.name),
        tag: c.tag(),
        digest: m.digest.clone(),
        file: format!("charts/{}", c.file_name()),
        reference: None,
    }
}

/// The platforms of an image's manifests (`os/arch[/variant]`; attestation
/// entries, `unknown/unknown`, left out).
fn platforms<'a>(tops: impl Iterator<Item = &'a Encoded>) -> Vec<String> {
    let mut out = Vec::new();
    for m in tops {
        let Ok(node) = graph::parse(&m.bytes, &m.media_type) else {
            continue;
        };
        for d in &node.manifests {
            let Some(p) = d.rest.get("platform") else {
                continue;
            };
            let os = p.get("os").and_then(|v| v.as_str()).unwrap_or("unknown");
            let arch = p
                .get("architecture")
                .and_then(|v| v.as_str())
                .unwrap_or("unknown");
            if os == "unknown" {
                continue;
            }
            let mut s = format!("{os}/{arch}");
            if let Some(v) = p.get("variant").and_then(|v| v.as_str()) {
                s.push_str(&format!("/{v}"));
            }
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

/// `bundle import`: push everything into `registry`, tags last.
pub async fn import(ws: &Workspace, req: &ImportRequest) -> Result<BundleReport> {
    let target =
        RegistryPrefix::parse(&req.registry).map_err(|e| BadInput(format!("--registry: {e}")))?;
    let file = req.file.clone();
    let reader = tokio::task::spawn_blocking(move || LayoutReader::open(&file))
        .await?
        .map_err(|e| BadInput(format!("{e:#}")))?;
    let summary: Option<BundleReport> = reader
        .has_file(layout::SUMMARY)
        .then(|| reader.read(layout::SUMMARY))
        .transpose()?
        .and_then(|b| serde_json::from_slice(&b).ok());
    // Images, grouped by repository, in the order of the bundle.
    let mut images: Vec<BundleImage> = Vec::new();
    for e in reader.of_kind(layout::KIND_IMAGE) {
        let (Some(repo), Some(tag)) = (e.annotation(layout::REPOSITORY), e.annotation(layout::TAG))
        else {
            continue;
        };
        let service = e.annotation(layout::SERVICE).unwrap_or(repo).to_string();
        let image = match images.iter_mut().find(|i| i.repository == repo) {
            Some(i) => i,
            None => {
                images.push(BundleImage {
                    service,
                    repository: repo.to_string(),
                    tags: BTreeMap::new(),
                    platforms: Vec::new(),
                    references: Vec::new(),
                });
                images.last_mut().expect("just pushed")
            }
        };
        image.tags.insert(tag.to_string(), e.digest.clone());
        image.references.push(format!("{target}/{repo}:{tag}"));
    }
    if let Some(s) = &summary {
        for i in &mut images {
            if let Some(known) = s.images.iter().find(|k| k.repository == i.repository) {
                i.platforms = known.platforms.clone();
            }
        }
        // In the order of the export (the configuration's), not the order
        // the images were finished in.
        images.sort_by_key(|i| {
            s.images
                .iter()
                .position(|k| k.repository == i.repository)
                .unwrap_or(usize::MAX)
        });
    }
    let charts: Vec<(BundleChart, Desc)> = reader
        .of_kind(layout::KIND_CHART)
        .filter_map(|e| {
            let repo = e.annotation(layout::REPOSITORY)?;
            let tag = e.annotation(layout::TAG)?;
            let known = summary.as_ref().and_then(|s| {
                s.charts
                    .iter()
                    .find(|c| c.repository == repo && c.tag == tag)
            });
            let name = repo.strip_prefix("charts/").unwrap_or(repo).to_string();
            Some((
                BundleChart {
                    version: known.map_or_else(|| tag.to_string(), |k| k.version.clone()),
                    app_version: known.and_then(|k| k.app_version.clone()),
                    file: known.map(|k| k.file.clone()).unwrap_or_default(),
                    repository: repo.to_string(),
                    tag: tag.to_string(),
                    digest: e.digest.clone(),
                    reference: Some(format!("oci://{target}/{repo}")),
                    name,
                },
                e.clone(),
            ))
        })
        .collect();
    if images.is_empty() && charts.is_empty() {
        return Err(BadInput(format!(
            "{}: the bundle lists no images and no charts",
            req.file.display()
        ))
        .into());
    }
    let mut report = BundleReport {
        schema_version: 1,
        action: BundleAction::Import,
        dry_run: req.dry_run,
        file: req.file.display().to_string(),
        registry: target.to_string(),
        tags: summary.as_ref().map(|s| s.tags.clone()).unwrap_or_default(),
        images,
        charts: charts.iter().map(|(c, _)| c.clone()).collect(),
        bytes: std::fs::metadata(&req.file).map(|m| m.len()).unwrap_or(0),
        moved: Moved::default(),
    };
    if req.dry_run {
        return Ok(report);
    }
    let jobs = req.jobs.unwrap_or(mirror::DEFAULT_JOBS).max(1);
    let mut images_cfg = ws.config().images.clone().unwrap_or_default();
    if req.insecure {
        images_cfg.insecure_registries.push(target.host.clone());
    }
    let registry: Arc<Registry> = mirror::connect(&images_cfg, &target).await?;
    let probe = report
        .images
        .first()
        .map(|i| i.repository.clone())
        .unwrap_or_else(|| "charts".into());
    registry
        .check(&target.repository(&probe))
        .await
        .with_context(|| format!("registry {target} is not usable"))?;
    let sink = RegistryEnd::new(registry.clone(), jobs);
    let stats = Stats::default();
    let progress = Progress::new(ws.quiet);
    let copier = Copier {
        src: &reader,
        sink: &sink,
        stats: &stats,
        jobs,
    };
    // Content first, every image and chart; then the tags.
    let mut tags: Vec<(String, String, Encoded)> = Vec::new();
    let copied: Vec<Result<Vec<(String, String, Encoded)>>> =
        futures_util::stream::iter(report.images.iter())
            .map(|i| {
                let (copier, target, progress) = (&copier, &target, &progress);
                async move {
                    let dst = target.repository(&i.repository);
                    let mut out = Vec::new();
                    let mut done: BTreeMap<&str, Encoded> = BTreeMap::new();
                    for (tag, digest) in &i.tags {
                        if !done.contains_key(digest.as_str()) {
                            let (m, tree) = copier
                                .copy_manifest(&i.repository, &dst, digest)
                                .await
                                .with_context(|| format!("{}: {digest}", i.service))?;
                            copier
                                .copy_artifacts(&i.repository, &dst, &tree)
                                .await
                                .with_context(|| {
                                    format!("{}: the artifacts of {digest}", i.service)
                                })?;
                            done.insert(digest, m);
                        }
                        out.push((dst.clone(), tag.clone(), done[digest.as_str()].clone()));
                    }
                    progress.line(&i.service, &format!("copied to {target}"));
                    anyhow::Ok(out)
                }
            })
            .buffered(jobs)
            .collect()
            .await;
    for c in copied {
        tags.extend(c?);
    }
    for (c, e) in &charts {
        let dst = target.repository(&c.repository);
        let (m, _) = copier
            .copy_manifest(&c.repository, &dst, &e.digest)
            .await
            .with_context(|| format!("chart {}", c.name))?;
        tags.push((dst, c.tag.clone(), m));
    }
    futures_util::stream::iter(tags)
        .map(|(repo, tag, m)| {
            let (registry, stats) = (&registry, &stats);
            async move {
                if registry.manifest_digest(&repo, &tag).await?.as_deref()
                    == Some(m.digest.as_str())
                {
                    stats.tag(false);
                } else {
                    registry
                        .put_manifest(&repo, &tag, &m)
                        .await
                        .with_context(|| format!("tagging {repo}:{tag}"))?;
                    stats.tag(true);
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(jobs)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<()>>>()?;
    for i in &report.images {
        progress.done(&i.service, &i.references.join(", "));
    }
    report.moved = stats.snapshot();
    Ok(report)
}

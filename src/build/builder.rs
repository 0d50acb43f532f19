//! Applying a build plan: build each service for each platform, push blobs
//! and manifests by digest to every registry, then write the tags. Talks to
//! the engine (`clients::engine`) and registries (`clients::registry`); the plan is pure
//! (`build::plan`).

use crate::build::blobs::Ledger;
use crate::build::context::{self, BuildContext};
use crate::build::export::{self, ExportedImage};
use crate::build::labels::{self, BuildInfo};
use crate::build::plan::{BuildPlan, ImagePlan};
use crate::clients::engine::{uniq, BuildSpec, Engine};
use crate::clients::registry::{BlobPush, Registry};
use crate::oci::{self, Descriptor, Encoded, Index, Platform};
use crate::output::progress::Progress;
use anyhow::{anyhow, Context, Result};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// What happens to built images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushMode {
    /// Push by digest, then tag: the normal run.
    Tags,
    /// Push platform manifests by digest only (a matrix leg).
    DigestOnly,
    /// Keep the images in the local engine.
    None,
    /// Keep the images in the local engine under the references a push
    /// would write (`build --load`): one platform, the engine's.
    Load,
}

/// The names `build --load` gives an image in the engine: every reference
/// of the plan, or `<service>:<tag>` when there are no registries.
pub fn local_references(image: &ImagePlan, tags: &[String]) -> Vec<String> {
    if image.references.is_empty() {
        tags.iter()
            .map(|t| format!("{}:{t}", image.service.name))
            .collect()
    } else {
        image.references.iter().map(ToString::to_string).collect()
    }
}

/// Everything the per-image work shares.
pub struct Shared {
    pub engine: Option<Engine>,
    pub registries: Vec<Arc<Registry>>,
    pub workdir: PathBuf,
    pub root: PathBuf,
    pub info: BuildInfo,
    pub extra_labels: BTreeMap<String, String>,
    /// Look for an image with the same inputs before building.
    pub skip_unchanged: bool,
    /// Write the `inputs-…` tag that later runs look for.
    pub record_inputs: bool,
    pub no_cache: bool,
    pub mode: PushMode,
    /// Write the tags only when every service succeeded (`release`): one
    /// failed service leaves all untagged, so `latest` never mixes versions.
    pub all_or_none: bool,
    pub progress: Progress,
    /// Attach an SBOM per platform, the provenance and (with a key) a
    /// signature beside every image pushed with tags (docs/supply-chain.md).
    pub supply: Option<Arc<crate::supply::Supply>>,
    /// Blobs shared between the services: uploaded once per registry,
    /// mounted into the other repositories; what was sent.
    pub ledger: Ledger,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Only planned (dry run).
    Planned,
    Built,
    /// Inputs unchanged since a pushed image: tagged, not rebuilt.
    Unchanged,
    Failed,
}

/// One platform image pushed by digest: what `build merge` needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Leg {
    pub service: String,
    pub platform: String,
    pub manifest: Descriptor,
    pub registries: Vec<String>,
    pub inputs: String,
}

/// A build context this large is worth a warning.
const LARGE_CONTEXT: u64 = 500 * 1024 * 1024;

/// What is about to be sent to the engine, said before it is: a context
/// that drags in gigabytes (no .dockerignore) is seen at once, not after an
/// upload.
fn context_line(files: usize, bytes: u64) -> String {
    let size = crate::output::text::bytes(bytes);
    let files = crate::output::text::count(files, "file");
    if bytes >= LARGE_CONTEXT {
        format!(
            "warning: the build context is {size} ({files}); a .dockerignore would leave out \
             what the build does not need"
        )
    } else {
        format!("build context {size} ({files})")
    }
}

/// How often a build the engine dropped before it started is tried.
const ENGINE_ATTEMPTS: u32 = 4;

/// The result for one service.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub service: String,
    pub references: Vec<String>,
    pub digest: Option<String>,
    pub platforms: Vec<String>,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip)]
    pub log_tail: Vec<String>,
    #[serde(skip)]
    pub legs: Vec<Leg>,
    /// With `all_or_none`: the manifest to tag once every service is done.
    #[serde(skip)]
    pub pending: Option<Encoded>,
    /// The SBOMs, provenance and signature attached beside the image, and
    /// the registries that refused them (docs/supply-chain.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supply_chain: Option<crate::supply::SupplyOutcome>,
}

impl Outcome {
    /// An outcome with nothing done yet: no digest, error, log or legs.
    pub fn new(
        service: String,
        references: Vec<String>,
        platforms: Vec<String>,
        status: Status,
    ) -> Outcome {
        Outcome {
            service,
            references,
            digest: None,
            platforms,
            status,
            error: None,
            log_tail: Vec::new(),
            legs: Vec::new(),
            pending: None,
            supply_chain: None,
        }
    }

    pub fn planned(image: &ImagePlan) -> Outcome {
        Outcome::new(
            image.service.name.clone(),
            image.references.iter().map(ToString::to_string).collect(),
            image
                .service
                .platforms
                .iter()
                .map(ToString::to_string)
                .collect(),
            Status::Planned,
        )
    }
}

/// The tag that records which inputs an image was built from.
pub fn inputs_tag(inputs: &str) -> String {
    let hex = inputs.strip_prefix("sha256:").unwrap_or(inputs);
    format!("inputs-{}", &hex[..hex.len().min(20)])
}

/// Build (or reuse) every image of the plan, `jobs` at a time.
pub async fn run(shared: &Shared, plan: &BuildPlan, jobs: usize) -> Vec<Outcome> {
    let mut outcomes: Vec<Outcome> = futures_util::stream::iter(plan.images.iter())
        .map(|image| async move {
            let mut outcome = Outcome::planned(image);
            if shared.mode == PushMode::Load {
                outcome.references = local_references(image, &image.tags);
            }
            match build_image(shared, image, &image.tags, &mut outcome).await {
                Ok(status) => {
                    outcome.status = status;
                    shared
                        .progress
                        .done(&image.service.name, &summary_line(shared.mode, &outcome));
                }
                Err(e) => {
                    outcome.status = Status::Failed;
                    outcome.error = Some(format!("{e:#}"));
                    if let Some(f) = e.downcast_ref::<crate::clients::engine::BuildFailed>() {
                        outcome.log_tail = f.log_tail.clone();
                    }
                    shared
                        .progress
                        .failed(&image.service.name, &format!("{e:#}"));
                }
            }
            outcome
        })
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    let order: Vec<&str> = plan
        .images
        .iter()
        .map(|i| i.service.name.as_str())
        .collect();
    outcomes.sort_by_key(|o| order.iter().position(|n| *n == o.service));
    if shared.all_or_none {
        tag_all_or_none(shared, &mut outcomes, plan).await;
    }
    outcomes
}

/// The deferred tags: all of them when every service succeeded, else none
/// (the images stay pushed by digest with their `inputs-` tag, so a re-run
/// only tags them).
async fn tag_all_or_none(shared: &Shared, outcomes: &mut [Outcome], plan: &BuildPlan) {
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| o.status == Status::Failed)
        .map(|o| o.service.clone())
        .collect();
    for o in outcomes.iter_mut() {
        let Some(top) = o.pending.take() else {
            continue;
        };
        if !failed.is_empty() {
            let why = format!(
                "not tagged: {} failed, and tags are all or none",
                failed.join(", ")
            );
            shared.progress.line(&o.service, &why);
            o.error = Some(why);
            continue;
        }
        let Some(image) = plan.images.iter().find(|i| i.service.name == o.service) else {
            continue;
        };
        let repo = image.service.repository.as_str();
        if let Err(e) = write_tags(shared, &o.service, repo, &top, &image.tags).await {
            o.status = Status::Failed;
            o.error = Some(format!("{e:#}"));
            shared.progress.failed(&o.service, &format!("{e:#}"));
        }
    }
}

fn summary_line(mode: PushMode, o: &Outcome) -> String {
    let digest = o.digest.as_deref().unwrap_or("-");
    match (o.status, mode) {
        (Status::Unchanged, _) => format!("unchanged, tagged {digest}"),
        (Status::Built, PushMode::Load) => {
            format!("in the engine as {}", o.references.join(", "))
        }
        (Status::Built, PushMode::None) => "built; nothing pushed".to_string(),
        (Status::Built, _) => format!("pushed {digest}"),
        _ => String::new(),
    }
}

async fn build_image(
    shared: &Shared,
    image: &ImagePlan,
    tags: &[String],
    outcome: &mut Outcome,
) -> Result<Status> {
    let s = &image.service;
    let name = s.name.as_str();
    let repo = s.repository.as_str();
    let context_dir = shared.root.join(&s.context);
    let dockerfile = shared.root.join(&s.dockerfile);
    let ctx = {
        let (c, d) = (context_dir.clone(), dockerfile.clone());
        tokio::task::spawn_blocking(move || context::scan(&c, &d))
            .await?
            .with_context(|| format!("reading the build context of {name}"))?
    };
    let mut extra: Vec<(String, String)> = vec![
        ("service".into(), name.to_string()),
        ("dockerfile".into(), ctx.dockerfile_in_tar.clone()),
        ("target".into(), s.target.clone().unwrap_or_default()),
        (
            "platforms".into(),
            s.platforms
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ),
    ];
    extra.extend(s.args.iter().map(|(k, v)| (format!("arg:{k}"), v.clone())));
    extra.extend(
        shared
            .extra_labels
            .iter()
            .map(|(k, v)| (format!("label:{k}"), v.clone())),
    );
    let dockerfile_text = tokio::fs::read_to_string(&dockerfile)
        .await
        .with_context(|| format!("reading {}", dockerfile.display()))?;
    let mut sources = crate::build::dockerfile::context_sources(&dockerfile_text, &s.args);
    if sources.is_some() && !bases_without_onbuild(shared, &dockerfile_text, &s.args).await {
        sources = None;
    }
    // The engine gets only what the build reads, when that is known.
    let sent = ctx.narrowed(sources.as_deref());
    // What will be sent, said before it is: a context that drags in
    // gigabytes (no .dockerignore) is seen at once, not after an upload.
    let (files, bytes) = sent.size();
    shared.progress.line(name, &context_line(files, bytes));
    let inputs = {
        let c = ctx.clone();
        tokio::task::spawn_blocking(move || c.inputs_digest(&extra, sources.as_deref()))
            .await?
            .with_context(|| format!("hashing the inputs of {name}"))?
    };
    let cache_tag = inputs_tag(&inputs);

    if shared.mode == PushMode::Tags && shared.skip_unchanged {
        if let Some(existing) = find_existing(shared, name, repo, &cache_tag).await? {
            shared.progress.line(
                name,
                &format!(
                    "inputs unchanged ({cache_tag}); tagging {}",
                    short(&existing.digest)
                ),
            );
            outcome.digest = Some(existing.digest.clone());
            // Attached when it was built; what is missing now (a signature
            // by this run's key, a registry that refused then) is added.
            if let Some(supply) = &shared.supply {
                let base = facts(shared, image, &dockerfile_text, &inputs);
                outcome.supply_chain = Some(
                    supply
                        .attach_existing(
                            &shared.registries,
                            name,
                            crate::supply::Pushed {
                                repository: repo,
                                top: &existing,
                                base: &base,
                                workdir: &shared.workdir,
                                sources: None,
                            },
                            &shared.progress,
                        )
                        .await,
                );
            }
            if shared.all_or_none {
                outcome.pending = Some(existing);
            } else {
                write_tags(shared, name, repo, &existing, tags).await?;
            }
            return Ok(Status::Unchanged);
        }
    }

    let mut annotations = BTreeMap::new();
    annotations.insert(labels::INPUTS.to_string(), inputs.clone());
    let labels = labels::labels(&shared.info, name, &shared.extra_labels);
    let mut manifests: Vec<(Platform, ExportedImage)> = Vec::new();
    // SBOMs read the layers: made while the image is pushed, not after.
    let mut sboms = Vec::new();
    for platform in &s.platforms {
        let exported =
            build_platform(shared, image, &sent, platform, &labels, &annotations, tags).await?;
        if let Some(img) = exported {
            if let (Some(supply), PushMode::Tags) = (&shared.supply, shared.mode) {
                sboms.push(supply.start_sbom(
                    &shared.registries,
                    name,
                    repo,
                    &platform_image(platform, &img),
                    &shared.info.created,
                ));
            }
            if matches!(shared.mode, PushMode::Tags | PushMode::DigestOnly) {
                push_platform(shared, name, repo, &img).await?;
            }
            if shared.mode == PushMode::DigestOnly {
                outcome.legs.push(Leg {
                    service: name.to_string(),
                    platform: platform.to_string(),
                    manifest: img.manifest.descriptor(),
                    registries: shared
                        .registries
                        .iter()
                        .map(|r| r.prefix().to_string())
                        .collect(),
                    inputs: inputs.clone(),
                });
            }
            manifests.push((platform.clone(), img));
        }
    }
    match shared.mode {
        PushMode::None | PushMode::Load => return Ok(Status::Built),
        PushMode::DigestOnly => {
            outcome.digest = manifests.first().map(|(_, m)| m.manifest.digest.clone());
            return Ok(Status::Built);
        }
        PushMode::Tags => {}
    }
    let platform_images: Vec<crate::supply::PlatformImage> = manifests
        .iter()
        .map(|(p, m)| platform_image(p, m))
        .collect();
    let top = if manifests.len() == 1 {
        manifests.remove(0).1.manifest
    } else {
        let descriptors = manifests
            .iter()
            .map(|(p, m)| {
                let mut d = m.manifest.descriptor();
                d.platform = Some(p.clone());
                d
            })
            .collect();
        let mut index_annotations = annotations.clone();
        index_annotations.extend(standard_annotations(&shared.info, name));
        Encoded::of(
            oci::MT_OCI_INDEX,
            &Index::new(descriptors, index_annotations),
        )
    };
    for r in &shared.registries {
        let path = r.prefix().repository(repo);
        r.put_manifest(&path, &top.digest, &top)
            .await
            .with_context(|| format!("pushing {name} to {}", r.prefix()))?;
    }
    outcome.digest = Some(top.digest.clone());
    // Beside the image, before its tags move: a consumer that verifies the
    // tag finds them. Never fails the build (refusals are in the outcome).
    if let Some(supply) = &shared.supply {
        let built = crate::supply::Built {
            repository: repo.to_string(),
            top: top.descriptor(),
            platforms: platform_images,
            facts: facts(shared, image, &dockerfile_text, &inputs),
            created: shared.info.created.clone(),
        };
        outcome.supply_chain = Some(
            supply
                .attach_built(&shared.registries, name, built, sboms, &shared.progress)
                .await,
        );
    }
    let mut now: Vec<String> = if shared.all_or_none {
        Vec::new()
    } else {
        tags.to_vec()
    };
    if shared.record_inputs {
        now.push(cache_tag);
    }
    write_tags(shared, name, repo, &top, &now).await?;
    if shared.all_or_none {
        outcome.pending = Some(top);
    }
    Ok(Status::Built)
}

/// One platform of a built image, as the supply chain reads it.
fn platform_image(platform: &Platform, image: &ExportedImage) -> crate::supply::PlatformImage {
    crate::supply::PlatformImage {
        platform: platform.clone(),
        manifest: image.manifest.descriptor(),
        layers: image.layers.iter().map(|l| l.path.clone()).collect(),
    }
}

/// What the provenance says of the build of `image`.
fn facts(
    shared: &Shared,
    image: &ImagePlan,
    dockerfile_text: &str,
    inputs: &str,
) -> crate::supply::provenance::BuildFacts {
    let s = &image.service;
    crate::supply::provenance::BuildFacts {
        service: s.name.clone(),
        source: shared.info.source.clone(),
        revision: shared.info.revision.clone(),
        dockerfile: s.dockerfile.display().to_string(),
        dockerfile_digest: Some(oci::sha256_digest(dockerfile_text.as_bytes())),
        inputs: Some(inputs.to_string()),
        args: s.args.clone(),
        target: s.target.clone(),
        platforms: s.platforms.iter().map(ToString::to_string).collect(),
        ..Default::default()
    }
}

/// Whether every image the Dockerfile's stages are based on is in the
/// engine without `ONBUILD` triggers. A trigger runs in this build and may
/// read any of the context, and a base the engine does not have (BuildKit
/// pulls it while building) cannot be looked at beforehand: then the whole
/// context counts for the inputs digest.
async fn bases_without_onbuild(
    shared: &Shared,
    dockerfile: &str,
    args: &BTreeMap<String, String>,
) -> bool {
    let (Some(engine), Some(bases)) = (
        shared.engine.as_ref(),
        crate::build::dockerfile::base_images(dockerfile, args),
    ) else {
        return false;
    };
    for base in bases {
        match engine.onbuild_triggers(&base).await {
            Ok(Some(triggers)) if triggers.is_empty() => {}
            _ => return false,
        }
    }
    true
}

fn standard_annotations(info: &BuildInfo, service: &str) -> BTreeMap<String, String> {
    labels::labels(info, service, &BTreeMap::new())
}

/// Build one platform; with a push mode, export it into registry blobs.
async fn build_platform(
    shared: &Shared,
    image: &ImagePlan,
    ctx: &BuildContext,
    platform: &Platform,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    tags: &[String],
) -> Result<Option<ExportedImage>> {
    let name = image.service.name.as_str();
    let engine = shared
        .engine
        .as_ref()
        .ok_or_else(|| anyhow!("no Docker engine connected"))?;
    let multi = image.service.platforms.len() > 1;
    let load_as = match shared.mode {
        PushMode::Load => local_references(image, tags),
        _ => Vec::new(),
    };
    let local_tag = match shared.mode {
        PushMode::Load => load_as
            .first()
            .cloned()
            .ok_or_else(|| anyhow!("{name}: no tags to load the image as"))?,
        PushMode::None => {
            let first = image
                .references
                .first()
                .map(|r| r.name())
                .unwrap_or_else(|| name.to_string());
            let tag = tags.first().cloned().unwrap_or_else(|| "latest".into());
            if multi {
                format!("{first}:{tag}-{}", platform.slug())
            } else {
                format!("{first}:{tag}")
            }
        }
        _ => format!("openim-release-build/{name}:{}-{}", platform.slug(), uniq()),
    };
    let spec = BuildSpec {
        local_tag: local_tag.clone(),
        dockerfile: ctx.dockerfile_in_tar.clone(),
        platform: platform.to_string(),
        args: image.service.args.clone(),
        labels: labels.clone(),
        target: image.service.target.clone(),
        no_cache: shared.no_cache,
    };
    let label = if multi {
        format!("{name} {platform}")
    } else {
        name.to_string()
    };
    shared.progress.line(&label, "building");
    let progress = &shared.progress;
    // A connection the engine drops before the build starts (many builds
    // at once) is tried again; a build that failed is not.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match engine
            .build(&spec, ctx.tar_stream(), |step| progress.line(&label, step))
            .await
        {
            Ok(_) => break,
            Err(e) if e.transient && attempt < ENGINE_ATTEMPTS => {
                progress.line(
                    &label,
                    &format!(
                        "the engine dropped the connection ({}); trying again",
                        e.message
                    ),
                );
                tokio::time::sleep(std::time::Duration::from_millis(500 * u64::from(attempt)))
                    .await;
            }
            Err(e) => {
                return Err(anyhow::Error::new(e))
                    .with_context(|| format!("building {name} for {platform}"))
            }
        }
    }
    if shared.mode == PushMode::Load {
        for other in load_as.iter().skip(1) {
            engine.tag(&local_tag, other).await?;
        }
        return Ok(None);
    }
    if shared.mode == PushMode::None {
        return Ok(None);
    }
    shared.progress.line(&label, "exporting layers");
    let dir = shared.workdir.join(name).join(platform.slug());
    tokio::fs::create_dir_all(&dir).await?;
    let exported = export::export(
        Box::pin(engine.export(&local_tag)),
        &dir,
        annotations.clone(),
    )
    .await
    .with_context(|| format!("exporting {name} for {platform}"))?;
    let _ = engine.untag(&local_tag).await;
    if exported.platform.os != platform.os
        || exported.platform.architecture != platform.architecture
    {
        anyhow::bail!(
            "building {name} for {platform} produced an image for {}; does the Dockerfile pin --platform?",
            exported.platform
        );
    }
    Ok(Some(exported))
}

/// Upload one platform image (blobs, then its manifest by digest) to every
/// registry; registries and blobs in parallel.
async fn push_platform(
    shared: &Shared,
    service: &str,
    repository: &str,
    img: &ExportedImage,
) -> Result<()> {
    let pushes = shared.registries.iter().map(|r| async move {
        let repo = r.prefix().repository(repository);
        let ctx = || format!("pushing {service} to {}", r.prefix());
        let blobs = std::iter::once(&img.config).chain(img.layers.iter());
        let pushed = futures_util::future::try_join_all(
            blobs.map(|blob| shared.ledger.push(r, &repo, blob)),
        )
        .await
        .with_context(ctx)?;
        let sent = pushed.iter().filter(|p| **p == BlobPush::Uploaded).count();
        let mounted = pushed.iter().filter(|p| **p == BlobPush::Mounted).count();
        r.put_manifest(&repo, &img.manifest.digest, &img.manifest)
            .await
            .with_context(ctx)?;
        shared.progress.line(
            service,
            &format!(
                "{} {}: {} of {} uploaded{}, manifest {}",
                r.prefix(),
                img.platform,
                sent,
                crate::output::text::count(img.layers.len() + 1, "blob"),
                if mounted > 0 {
                    format!(", {mounted} mounted")
                } else {
                    String::new()
                },
                short(&img.manifest.digest)
            ),
        );
        anyhow::Ok(())
    });
    futures_util::future::try_join_all(pushes).await?;
    Ok(())
}

/// The image recorded under `cache_tag` in every registry, when all of them
/// have the same one.
async fn find_existing(
    shared: &Shared,
    service: &str,
    repository: &str,
    cache_tag: &str,
) -> Result<Option<Encoded>> {
    let mut found: Option<Encoded> = None;
    for r in &shared.registries {
        let repo = r.prefix().repository(repository);
        let fetched = r
            .get_manifest(&repo, cache_tag)
            .await
            .with_context(|| format!("looking up {service}:{cache_tag} in {}", r.prefix()))?;
        let Some(f) = fetched else { return Ok(None) };
        match &found {
            Some(prev) if prev.digest != f.digest => return Ok(None),
            Some(_) => {}
            None => {
                found = Some(Encoded {
                    media_type: f.media_type,
                    bytes: f.bytes,
                    digest: f.digest,
                })
            }
        }
    }
    Ok(found)
}

/// Point every tag at `top` in every registry. Called only once everything
/// `top` refers to is present in all of them.
async fn write_tags(
    shared: &Shared,
    service: &str,
    repository: &str,
    top: &Encoded,
    tags: &[String],
) -> Result<()> {
    let writes = shared.registries.iter().map(|r| async move {
        let repo = r.prefix().repository(repository);
        for tag in tags {
            r.put_manifest(&repo, tag, top).await.with_context(|| {
                format!("tagging {}/{repository}:{tag} ({service})", r.prefix())
            })?;
        }
        anyhow::Ok(())
    });
    futures_util::future::try_join_all(writes).await?;
    Ok(())
}

/// `build merge`: assemble each service's index from its legs and tag it
/// with its tags (`{service}` filled in with its image name) in its
/// repository: `names` maps a service to (repository, image name); a
/// service it does not know is its own repository and image name.
pub async fn merge(
    shared: &Shared,
    legs: &[Leg],
    tags: &[String],
    names: &BTreeMap<String, (String, String)>,
) -> Vec<Outcome> {
    let mut services: Vec<&str> = legs.iter().map(|l| l.service.as_str()).collect();
    services.dedup();
    services.sort();
    services.dedup();
    let mut out = Vec::new();
    for service in services {
        let mine: Vec<&Leg> = legs.iter().filter(|l| l.service == service).collect();
        let (repo, image) = names
            .get(service)
            .cloned()
            .unwrap_or_else(|| (service.to_string(), service.to_string()));
        let own: Vec<String> = tags
            .iter()
            .map(|t| crate::tag::template::for_service(t, &image))
            .collect();
        let mut outcome = Outcome::new(
            service.to_string(),
            shared
                .registries
                .iter()
                .flat_map(|r| own.iter().map(|t| format!("{}/{repo}:{t}", r.prefix())))
                .collect(),
            mine.iter().map(|l| l.platform.clone()).collect(),
            Status::Built,
        );
        match merge_one(shared, service, &repo, &mine, &own).await {
            Ok(digest) => {
                outcome.digest = Some(digest);
                shared
                    .progress
                    .done(service, &summary_line(shared.mode, &outcome));
            }
            Err(e) => {
                outcome.status = Status::Failed;
                outcome.error = Some(format!("{e:#}"));
                shared.progress.failed(service, &format!("{e:#}"));
            }
        }
        out.push(outcome);
    }
    out
}

async fn merge_one(
    shared: &Shared,
    service: &str,
    repository: &str,
    legs: &[&Leg],
    tags: &[String],
) -> Result<String> {
    let mut seen = std::collections::HashSet::new();
    for l in legs {
        if !seen.insert(&l.platform) {
            anyhow::bail!("{service}: two legs for platform {}", l.platform);
        }
    }
    let inputs: std::collections::BTreeSet<&str> = legs.iter().map(|l| l.inputs.as_str()).collect();
    // Every manifest must be present in every registry before any tag moves.
    let mut single: Option<Encoded> = None;
    for r in &shared.registries {
        let repo = r.prefix().repository(repository);
        for l in legs {
            let fetched = r
                .get_manifest(&repo, &l.manifest.digest)
                .await
                .with_context(|| format!("checking {service} {} in {}", l.platform, r.prefix()))?
                .ok_or_else(|| {
                    anyhow!(
                        "{service} {} ({}) is missing in {}; re-run that leg with --push-by-digest",
                        l.platform,
                        short(&l.manifest.digest),
                        r.prefix()
                    )
                })?;
            if legs.len() == 1 {
                single = Some(Encoded {
                    media_type: fetched.media_type,
                    bytes: fetched.bytes,
                    digest: fetched.digest,
                });
            }
        }
    }
    let top = match single {
        Some(m) => m,
        None => {
            let mut descriptors = Vec::new();
            let mut sorted: Vec<&&Leg> = legs.iter().collect();
            sorted.sort_by(|a, b| a.platform.cmp(&b.platform));
            for l in sorted {
                let mut d = l.manifest.clone();
                d.platform =
                    Some(Platform::parse(&l.platform).map_err(|e| anyhow!("{service}: {e}"))?);
                descriptors.push(d);
            }
            let mut annotations = standard_annotations(&shared.info, service);
            if inputs.len() == 1 {
                annotations.insert(
                    labels::INPUTS.into(),
                    inputs
                        .iter()
                        .next()
                        .map(|s| s.to_string())
                        .unwrap_or_default(),
                );
            }
            Encoded::of(oci::MT_OCI_INDEX, &Index::new(descriptors, annotations))
        }
    };
    for r in &shared.registries {
        let repo = r.prefix().repository(repository);
        r.put_manifest(&repo, &top.digest, &top)
            .await
            .with_context(|| format!("pushing the {service} index to {}", r.prefix()))?;
    }
    write_tags(shared, service, repository, &top, tags).await?;
    Ok(top.digest)
}

fn short(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("sha256:{}", &hex[..hex.len().min(12)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_size_is_said_and_a_large_one_is_a_warning() {
        assert_eq!(context_line(1, 26), "build context 26 B (1 file)");
        assert_eq!(
            context_line(3, 5 * 1024 * 1024),
            "build context 5.0 MiB (3 files)"
        );
        let large = context_line(8, 8 * 128 * 1024 * 1024);
        assert!(
            large.starts_with("warning: the build context is 1.0 GiB (8 files);"),
            "{large}"
        );
        assert!(context_line(1, LARGE_CONTEXT - 1).starts_with("build context"));
        assert!(context_line(1, LARGE_CONTEXT).starts_with("warning:"));
    }
}

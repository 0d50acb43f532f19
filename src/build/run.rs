//! Running `build`, `build --check`, `build matrix` and `build merge` in a
//! workspace: the services of the config, the tags (given, or a stage's),
//! the plan, then the engine and the registries. Returns typed reports; the
//! output layer renders them.

use crate::build::blobs::{Ledger, Uploads};
use crate::build::builder::{self, Leg, Outcome, PushMode, Shared, Status};
use crate::build::compose;
use crate::build::labels::{self, BuildInfo};
use crate::build::plan::{self, BuildPlan, ServiceSpec};
use crate::checks::Check;
use crate::clients::credentials;
use crate::clients::engine::Engine;
use crate::clients::registry::Registry;
use crate::config::ImagesConfig;
use crate::error::BadInput;
use crate::oci::reference::RegistryPrefix;
use crate::output::actions;
use crate::output::progress::Progress;
use crate::output::text;
use crate::tag::apply::stage_tags;
use crate::tag::stage::Stage;
use crate::workspace::Workspace;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which tags the images get.
#[derive(Debug, Clone, Default)]
pub struct TagChoice {
    /// A stage's tags (rc and patch: the candidate HEAD carries).
    pub stage: Option<Stage>,
    /// Tags given by hand.
    pub tags: Vec<String>,
    /// With `stage`: its version (X.Y.Z).
    pub version: Option<String>,
    /// With `stage`: compute as if on this branch.
    pub branch: Option<String>,
}

/// Which images.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub services: Vec<String>,
    pub platforms: Vec<String>,
    /// Instead of `images.registries`.
    pub registries: Vec<String>,
}

/// What `build` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    pub tags: TagChoice,
    pub select: Selection,
    pub jobs: Option<usize>,
    pub dry_run: bool,
    pub all_or_none: bool,
    pub no_push: bool,
    pub rebuild: bool,
    pub no_cache: bool,
    pub push_by_digest: bool,
    /// Build for the engine's platform into its image store under the
    /// computed references; push nothing (`build --load`).
    pub load: bool,
    /// The signing key's file (`--sign-key`); else `OPENIM_RELEASE_SIGN_KEY`.
    pub sign_key: Option<PathBuf>,
}

/// What `build merge` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct MergeRequest {
    pub files: Vec<PathBuf>,
    pub tags: TagChoice,
    pub services: Vec<String>,
    pub partial: bool,
    pub dry_run: bool,
    /// The signing key's file (`--sign-key`); else `OPENIM_RELEASE_SIGN_KEY`.
    pub sign_key: Option<PathBuf>,
}

/// The result of `build` and `build merge`: the `--output json` document
/// (fields are a contract: add, never remove).
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub schema_version: u32,
    pub dry_run: bool,
    pub tags: Vec<String>,
    pub images: Vec<Outcome>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub legs: Vec<Leg>,
    /// What each registry received: bytes and blobs sent, blobs mounted
    /// from another repository, blobs already there.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub uploads: Vec<Uploads>,
}

impl BuildReport {
    /// The services that failed.
    pub fn failed(&self) -> Vec<&Outcome> {
        self.images
            .iter()
            .filter(|o| o.status == Status::Failed)
            .collect()
    }

    /// service → digest of every image pushed.
    pub fn digests(&self) -> std::collections::BTreeMap<String, String> {
        self.images
            .iter()
            .filter_map(|o| Some((o.service.clone(), o.digest.clone()?)))
            .collect()
    }
}

/// `build --check`: each need checked on its own.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub schema_version: u32,
    pub ready: bool,
    pub images: usize,
    pub engine: Option<String>,
    pub registries: Vec<String>,
    pub checks: Vec<Check>,
}

/// `build matrix`: the GitHub Actions matrix.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct MatrixReport(pub serde_json::Value);

/// The `images:` section, or the error that says it is missing.
pub fn images(ws: &Workspace) -> Result<ImagesConfig> {
    ws.config().images.clone().ok_or_else(|| {
        BadInput(format!(
            "no `images:` section in {}; list the services to build (see docs/build.md)",
            ws.loaded.path.as_ref().map_or_else(
                || "openim-release.yaml (not found)".to_string(),
                |p| p.display().to_string()
            )
        ))
        .into()
    })
}

/// The services of the workspace's configuration.
pub fn services(ws: &Workspace) -> Result<Vec<ServiceSpec>> {
    service_specs(ws.root(), &images(ws)?)
}

/// The services of `images:`, with those of `images.compose` (read from the
/// repository at `root`, with the process's environment). The compose
/// files' warnings (unset variables) and notes (services of inactive
/// profiles) go to stderr, once per process.
pub fn service_specs(root: &Path, images: &ImagesConfig) -> Result<Vec<ServiceSpec>> {
    let compose = match &images.compose {
        Some(files) => {
            let opts = compose::Options {
                files: files.0.clone(),
                env_files: images.compose_env_file.as_ref().map(|f| f.0.clone()),
                profiles: images.compose_profiles.clone(),
            };
            let project = compose::load(root, &opts, &|k| std::env::var(k).ok())
                .map_err(|e| BadInput(format!("images.compose: {e}")))?;
            for w in &project.warnings {
                once("warning", w);
            }
            for n in &project.notes {
                once("note", n);
            }
            if project.services.is_empty() {
                return Err(BadInput(format!(
                    "images.compose: no service of {} has `build:`, so there is nothing to \
                     build; add `build:` to the services this repository builds, or list them \
                     in images.services",
                    files
                        .0
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .into());
            }
            project.services
        }
        None => Vec::new(),
    };
    plan::services(images, &compose).map_err(|e| BadInput(format!("images: {e}")).into())
}

/// `kind: message` on stderr (an annotation in GitHub Actions for a
/// warning), once per process however often the services are read.
fn once(kind: &str, message: &str) {
    static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if seen.iter().any(|s| s == message) {
        return;
    }
    seen.push(message.to_string());
    crate::say!("{kind}: {message}");
    if kind == "warning" && actions::in_actions() {
        actions::command(&actions::annotation("warning", message, None, None));
    }
}

/// Tags from `tags`, or as the stage gives them.
pub(crate) fn resolve_tags(
    ws: &Workspace,
    src: &TagChoice,
) -> Result<(Vec<String>, Option<String>)> {
    if !src.tags.is_empty() {
        return Ok((src.tags.clone(), None));
    }
    match src.stage {
        Some(stage) => {
            let plan = stage_tags(ws, stage, src.version.as_deref(), src.branch.as_deref())?;
            Ok((plan.tags, plan.version.map(|v| v.to_string())))
        }
        None => Ok((Vec::new(), None)),
    }
}

/// The plan of the selected services, platforms and registries.
fn plan_of(
    all: &[ServiceSpec],
    select: &Selection,
    registries: &[String],
    tags: &[String],
) -> Result<BuildPlan> {
    plan::plan(all, &select.services, &select.platforms, registries, tags)
        .map_err(|e| BadInput(e.to_string()).into())
}

fn registries_of(images: &ImagesConfig, select: &Selection) -> Vec<String> {
    if select.registries.is_empty() {
        images.registries.clone()
    } else {
        select.registries.clone()
    }
}

fn check_files(root: &Path, plan: &BuildPlan) -> Result<()> {
    for i in &plan.images {
        let s = &i.service;
        let context = root.join(&s.context);
        if !context.is_dir() {
            let shown = s.context.display().to_string();
            let why = if context.exists() {
                "is a file, not a directory".to_string()
            } else if shown.contains('$') {
                "does not exist (variables such as `${VAR}` are not substituted: write the path \
                 itself)"
                    .to_string()
            } else {
                "does not exist".to_string()
            };
            return Err(
                BadInput(format!("service {}: build context {shown} {why}", s.name)).into(),
            );
        }
        let dockerfile = root.join(&s.dockerfile);
        // A context or Dockerfile outside the repository (`../..`, or a
        // symlink out of it) would send files the repository does not hold
        // — from a pull request, anything on the build machine.
        let inside = |p: &Path| match (p.canonicalize(), root.canonicalize()) {
            (Ok(p), Ok(r)) => p.starts_with(r),
            _ => true, // not there: said below
        };
        if !inside(&context) {
            return Err(BadInput(format!(
                "service {}: build context {} leaves the repository; a build reads only files \
                 of the repository",
                s.name,
                s.context.display()
            ))
            .into());
        }
        if !inside(&dockerfile) {
            return Err(BadInput(format!(
                "service {}: Dockerfile {} leaves the repository",
                s.name,
                s.dockerfile.display()
            ))
            .into());
        }
        if !dockerfile.is_file() {
            let why = if dockerfile.is_dir() {
                "is a directory; name the Dockerfile itself"
            } else {
                "does not exist"
            };
            return Err(BadInput(format!(
                "service {}: Dockerfile {} {why}",
                s.name,
                s.dockerfile.display()
            ))
            .into());
        }
    }
    Ok(())
}

fn build_info(
    ws: &Workspace,
    images: &ImagesConfig,
    version: Option<String>,
    tags: &[String],
) -> Result<BuildInfo> {
    let git = ws.repo()?;
    let head = git.head()?;
    let created = git
        .commit_time(&head.sha)?
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let source = images.source.clone().or_else(|| {
        match (
            std::env::var("GITHUB_SERVER_URL"),
            std::env::var("GITHUB_REPOSITORY"),
        ) {
            (Ok(server), Ok(repo)) if !server.is_empty() && !repo.is_empty() => {
                Some(format!("{}/{repo}", server.trim_end_matches('/')))
            }
            _ => git
                .remote_url("origin")
                .and_then(|u| labels::source_url(&u)),
        }
    });
    Ok(BuildInfo {
        source,
        revision: head.sha,
        version: version.unwrap_or_else(|| tags.first().cloned().unwrap_or_default()),
        created,
    })
}

pub async fn connect_registries(
    images: &ImagesConfig,
    prefixes: &[RegistryPrefix],
) -> Result<Vec<Arc<Registry>>> {
    let mut out = Vec::new();
    for prefix in prefixes {
        let creds = credentials::lookup(prefix)
            .with_context(|| format!("reading credentials for {prefix}"))?;
        if let Some(c) = &creds {
            actions::mask(&c.password);
        }
        let insecure = images.insecure_registries.iter().any(|h| h == &prefix.host);
        out.push(Arc::new(Registry::new(prefix.clone(), creds, insecure)));
    }
    Ok(out)
}

/// Fail fast, before any build, when a registry cannot be reached or
/// refuses the credentials.
async fn check_registries(registries: &[Arc<Registry>], probe_service: &str) -> Result<()> {
    for r in registries {
        let repo = r.prefix().repository(probe_service);
        r.check(&repo)
            .await
            .with_context(|| format!("registry {} is not usable", r.prefix()))?;
    }
    Ok(())
}

/// Options that would be silently ignored in this combination: refused.
fn refuse_inapplicable(args: &BuildRequest) -> Result<()> {
    let src = &args.tags;
    refuse_inapplicable_tags(
        src,
        if args.push_by_digest {
            "--push-by-digest"
        } else {
            "--tag"
        },
    )?;
    if args.push_by_digest && !src.tags.is_empty() {
        return Err(BadInput(
            "--push-by-digest pushes no tags (`build merge` tags the legs); drop --tag".into(),
        )
        .into());
    }
    if args.all_or_none && (args.no_push || args.push_by_digest || args.load) {
        return Err(BadInput(format!(
            "--all-or-none is about writing tags, and {} writes none; drop one of them",
            if args.no_push {
                "--no-push"
            } else if args.load {
                "--load"
            } else {
                "--push-by-digest"
            }
        ))
        .into());
    }
    if args.load && args.push_by_digest {
        return Err(
            BadInput("--load pushes nothing, --push-by-digest pushes: drop one".into()).into(),
        );
    }
    if args.load && args.select.platforms.len() > 1 {
        return Err(BadInput(
            "--load puts one image per service in the engine: give at most one --platform \
             (without it, the engine's own)"
                .into(),
        )
        .into());
    }
    Ok(())
}

/// `--version`/`--branch` apply to the tags `--stage` computes.
pub(crate) fn refuse_inapplicable_tags(src: &TagChoice, given: &str) -> Result<()> {
    if src.stage.is_none() {
        for (set, option) in [
            (src.version.is_some(), "--version"),
            (src.branch.is_some(), "--branch"),
        ] {
            if set {
                return Err(BadInput(format!(
                    "{option} applies with --stage (the tags it computes); with {given} it \
                     would be ignored: drop {option}, or use --stage instead"
                ))
                .into());
            }
        }
    }
    if let (Some(stage), Some(_)) = (src.stage, &src.version) {
        if matches!(stage, Stage::Dev | Stage::Nightly) {
            return Err(BadInput(format!(
                "--version applies to the rc and release stages; the {stage} stage has no version"
            ))
            .into());
        }
    }
    Ok(())
}

/// Build, push and tag (or plan, with `dry_run`).
pub async fn build(ws: &Workspace, args: &BuildRequest) -> Result<BuildReport> {
    refuse_inapplicable(args)?;
    let images = images(ws)?;
    let all = service_specs(ws.root(), &images)?;
    let (tags, version) = if args.push_by_digest {
        (vec!["by-digest".to_string()], None)
    } else {
        resolve_tags(ws, &args.tags)?
    };
    let registries = registries_of(&images, &args.select);
    if registries.is_empty() && !args.no_push && !args.load {
        return Err(BadInput(
            "no registries: add `images.registries` or pass --registry, or build locally with --no-push or --load".into(),
        )
        .into());
    }
    let mut plan = plan_of(&all, &args.select, &registries, &tags)?;
    check_files(ws.root(), &plan)?;
    if args.load && args.select.platforms.is_empty() {
        // The engine's platform; the dry run, which contacts no engine,
        // shows this machine's.
        set_platforms(&mut plan, &machine_platform());
    }
    if args.push_by_digest && plan.images.iter().any(|i| i.service.platforms.len() != 1) {
        return Err(BadInput(
            "--push-by-digest builds one platform per run: pass --platform (see `build matrix`)"
                .into(),
        )
        .into());
    }
    let tags_shown: Vec<String> = if args.push_by_digest {
        Vec::new()
    } else {
        tags.clone()
    };

    if args.dry_run {
        return Ok(BuildReport {
            schema_version: 1,
            dry_run: true,
            tags: tags_shown,
            images: plan
                .images
                .iter()
                .map(|i| {
                    let mut o = Outcome::planned(i);
                    if args.load {
                        o.references = builder::local_references(i, &plan.tags);
                    }
                    o
                })
                .collect(),
            legs: Vec::new(),
            uploads: Vec::new(),
        });
    }

    // A key that does not load stops the build before it starts.
    let supply = if matches!(mode_of(args), PushMode::Tags) {
        Some(Arc::new(crate::supply::Supply::load(
            args.sign_key.as_deref(),
        )?))
    } else {
        None
    };
    let progress = Progress::new(ws.quiet);
    let engine = Engine::connect().await?;
    progress.note(&format!("engine {}", engine.describe()));
    if args.load && args.select.platforms.is_empty() {
        let own = crate::oci::Platform::parse(&engine.platform())
            .map_err(|e| anyhow::anyhow!("the engine's platform: {e}"))?;
        set_platforms(&mut plan, &own);
    }
    let regs = if args.no_push || args.load {
        Vec::new()
    } else {
        connect_registries(&images, &plan.registries).await?
    };
    if let Some(first) = plan.images.first() {
        check_registries(&regs, &first.service.repository).await?;
    }
    let workdir = tempfile::Builder::new()
        .prefix("openim-release-build-")
        .tempdir()
        .context("creating a work directory")?;
    let mode = mode_of(args);
    let shared = Shared {
        engine: Some(engine),
        registries: regs,
        workdir: workdir.path().to_path_buf(),
        root: ws.root().to_path_buf(),
        info: build_info(ws, &images, version, &tags)?,
        extra_labels: images.labels.clone(),
        skip_unchanged: images.skip_unchanged.unwrap_or(true) && !args.rebuild && !args.no_cache,
        record_inputs: images.skip_unchanged.unwrap_or(true),
        no_cache: args.no_cache,
        mode,
        all_or_none: args.all_or_none && mode == PushMode::Tags,
        progress,
        supply,
        ledger: Ledger::from_env(),
    };
    let jobs = args.jobs.unwrap_or_else(default_jobs).max(1);
    let outcomes = builder::run(&shared, &plan, jobs).await;
    let legs: Vec<Leg> = outcomes.iter().flat_map(|o| o.legs.clone()).collect();
    let prefixes: Vec<String> = shared
        .registries
        .iter()
        .map(|r| r.prefix().to_string())
        .collect();
    Ok(BuildReport {
        schema_version: 1,
        dry_run: false,
        tags: tags_shown,
        images: outcomes,
        legs,
        uploads: shared.ledger.uploads(&prefixes),
    })
}

fn mode_of(args: &BuildRequest) -> PushMode {
    if args.load {
        PushMode::Load
    } else if args.no_push {
        PushMode::None
    } else if args.push_by_digest {
        PushMode::DigestOnly
    } else {
        PushMode::Tags
    }
}

/// `build --check`: what a build needs, each part checked on its own (the
/// services and their files, the engine, every registry with its
/// credentials), so that one failure does not hide another.
pub async fn check(ws: &Workspace, args: &BuildRequest) -> Result<CheckReport> {
    refuse_inapplicable(args)?;
    let images = images(ws)?;
    let registries = registries_of(&images, &args.select);
    let mut checks = Vec::new();
    let planned = (|| -> Result<BuildPlan> {
        let all = service_specs(ws.root(), &images)?;
        let (mut tags, _) = resolve_tags(ws, &args.tags)?;
        if tags.is_empty() {
            tags.push("check".into());
        }
        let plan = plan_of(&all, &args.select, &registries, &tags)?;
        check_files(ws.root(), &plan)?;
        Ok(plan)
    })();
    let (count, probe) = match &planned {
        Ok(plan) => {
            let names: Vec<&str> = plan
                .images
                .iter()
                .map(|i| i.service.name.as_str())
                .collect();
            checks.push(Check::passed(
                "services",
                format!(
                    "{}, Dockerfiles and contexts present: {}",
                    text::count(names.len(), "service"),
                    names.join(", ")
                ),
            ));
            (
                plan.images.len(),
                plan.images
                    .first()
                    .map_or("check", |i| i.service.repository.as_str())
                    .to_string(),
            )
        }
        Err(e) => {
            checks.push(Check::failed("services", e));
            (0, "check".to_string())
        }
    };
    let mut engine_host = None;
    match Engine::connect().await {
        Ok(engine) => {
            checks.push(Check::passed("engine", engine.describe()));
            engine_host = Some(engine.host);
        }
        Err(e) => checks.push(Check::failed("engine", &e)),
    }
    let prefixes: Vec<RegistryPrefix> = match &planned {
        Ok(plan) => plan.registries.clone(),
        Err(_) => registries
            .iter()
            .filter_map(|r| RegistryPrefix::parse(r).ok())
            .collect(),
    };
    if args.no_push || args.load {
    } else if prefixes.is_empty() {
        checks.push(Check::failed(
            "registries",
            &BadInput("none: add `images.registries` or pass --registry (or --no-push)".into())
                .into(),
        ));
    } else {
        for prefix in &prefixes {
            let name = format!("registry {prefix}");
            let usable = async {
                let regs = connect_registries(&images, std::slice::from_ref(prefix)).await?;
                regs[0].check(&prefix.repository(&probe)).await?;
                anyhow::Ok(regs[0].has_credentials())
            };
            match usable.await {
                Ok(true) => checks.push(Check::passed(name, "answers; credentials accepted")),
                Ok(false) => checks.push(Check::passed(
                    name,
                    "answers without credentials (none configured for it)",
                )),
                Err(e) => checks.push(Check::failed(name, &e)),
            }
        }
    }
    let ready = checks.iter().all(|c| c.ok);
    Ok(CheckReport {
        schema_version: 1,
        ready,
        images: count,
        engine: engine_host,
        registries: prefixes.iter().map(ToString::to_string).collect(),
        checks,
    })
}

/// Every service of the plan built for `platform` alone.
fn set_platforms(plan: &mut BuildPlan, platform: &crate::oci::Platform) {
    for i in &mut plan.images {
        i.service.platforms = vec![platform.clone()];
    }
}

/// This machine's platform, as Go (and so the engine) names it.
fn machine_platform() -> crate::oci::Platform {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    crate::oci::Platform {
        os: "linux".into(),
        architecture: arch.into(),
        variant: None,
    }
}

/// `build matrix`: one entry per service and platform.
pub fn matrix(ws: &Workspace, select: &Selection) -> Result<MatrixReport> {
    if !select.registries.is_empty() {
        return Err(BadInput(
            "the matrix lists services and platforms only; pass --registry to each leg's \
             `build --push-by-digest` (and `build merge` reads it from the legs)"
                .into(),
        )
        .into());
    }
    let images = images(ws)?;
    let all = service_specs(ws.root(), &images)?;
    let registries = registries_of(&images, select);
    let plan = plan_of(&all, select, &registries, &["matrix".into()])?;
    // A leg would refuse a missing Dockerfile or context: so does the matrix.
    check_files(ws.root(), &plan)?;
    Ok(MatrixReport(plan::matrix(&plan)))
}

#[derive(serde::Deserialize)]
struct LegFile {
    #[serde(default)]
    legs: Vec<Leg>,
}

/// `service platform` pairs of the config that no leg covers.
fn missing_legs(services: &[ServiceSpec], legs: &[Leg]) -> Vec<String> {
    services
        .iter()
        .flat_map(|s| {
            s.platforms
                .iter()
                .map(move |p| (s.name.as_str(), p.to_string()))
        })
        .filter(|(name, platform)| {
            !legs
                .iter()
                .any(|l| l.service == *name && l.platform == *platform)
        })
        .map(|(name, platform)| format!("{name} {platform}"))
        .collect()
}

/// `build merge`: the indexes of the legs, tagged.
pub async fn merge(ws: &Workspace, args: &MergeRequest) -> Result<BuildReport> {
    refuse_inapplicable_tags(&args.tags, "--tag")?;
    let images = images(ws)?;
    let mut legs = Vec::new();
    for f in &args.files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| BadInput(format!("reading {}: {e}", f.display())))?;
        let parsed: LegFile = serde_json::from_str(&text).map_err(|e| {
            BadInput(format!(
                "{}: not the JSON of `build --push-by-digest --output json`: {}",
                f.display(),
                text::serde_message(&e.to_string(), "an object")
            ))
        })?;
        legs.extend(parsed.legs);
    }
    if legs.is_empty() {
        return Err(BadInput("the leg files list no images".into()).into());
    }
    if !args.partial {
        let mut expected = service_specs(ws.root(), &images)?;
        if let Some(unknown) = args
            .services
            .iter()
            .find(|n| !expected.iter().any(|s| &s.name == *n))
        {
            return Err(BadInput(format!("--service {unknown}: no such service")).into());
        }
        if !args.services.is_empty() {
            expected.retain(|s| args.services.contains(&s.name));
        }
        let missing = missing_legs(&expected, &legs);
        if !missing.is_empty() {
            return Err(BadInput(format!(
                "no leg for {}: every service x platform of `build matrix` needs its leg file \
                 (a failed or lost matrix job?); re-run it, or pass --partial to merge what is here",
                missing.join(", ")
            ))
            .into());
        }
    }
    let (tags, version) = resolve_tags(ws, &args.tags)?;
    if tags.is_empty() {
        return Err(BadInput("no image tags: pass --stage STAGE or --tag TAG".into()).into());
    }
    if let Some(bad) = tags.iter().find(|t| {
        !crate::oci::reference::is_valid_tag(&crate::tag::template::for_service(t, "service"))
    }) {
        return Err(BadInput(format!("`{bad}` is not a valid image tag")).into());
    }
    // Each service's repository and image name, for its references.
    let names: std::collections::BTreeMap<String, (String, String)> =
        service_specs(ws.root(), &images)?
            .into_iter()
            .map(|s| (s.name, (s.repository, s.image)))
            .collect();
    let mut registry_names: Vec<String> = legs.iter().flat_map(|l| l.registries.clone()).collect();
    registry_names.sort();
    registry_names.dedup();
    let prefixes: Vec<RegistryPrefix> = registry_names
        .iter()
        .map(|r| RegistryPrefix::parse(r).map_err(|e| BadInput(e).into()))
        .collect::<Result<_>>()?;
    if args.dry_run {
        return Ok(BuildReport {
            schema_version: 1,
            dry_run: true,
            images: group_planned(&legs, &prefixes, &tags, &names),
            tags,
            legs: Vec::new(),
            uploads: Vec::new(),
        });
    }
    let supply = crate::supply::Supply::load(args.sign_key.as_deref())?;
    let regs = connect_registries(&images, &prefixes).await?;
    let shared = Shared {
        engine: None,
        registries: regs,
        workdir: std::env::temp_dir(),
        root: ws.root().to_path_buf(),
        info: build_info(ws, &images, version, &tags)?,
        extra_labels: images.labels.clone(),
        skip_unchanged: false,
        record_inputs: false,
        no_cache: false,
        mode: PushMode::Tags,
        all_or_none: false,
        progress: Progress::new(ws.quiet),
        supply: None,
        ledger: Ledger::default(),
    };
    let mut outcomes = builder::merge(&shared, &legs, &tags, &names).await;
    attach_merged(ws, &images, &shared, &supply, &mut outcomes).await?;
    Ok(BuildReport {
        schema_version: 1,
        dry_run: false,
        tags,
        images: outcomes,
        legs: Vec::new(),
        uploads: Vec::new(),
    })
}

/// The SBOMs, provenance and signature of each merged image, made from
/// what the registries hold (the legs' layers are not here): as `attest`
/// does. Never fails a service (refusals are in its outcome).
async fn attach_merged(
    ws: &Workspace,
    images: &ImagesConfig,
    shared: &Shared,
    supply: &crate::supply::Supply,
    outcomes: &mut [builder::Outcome],
) -> Result<()> {
    let specs = service_specs(ws.root(), images)?;
    let workdir = tempfile::Builder::new()
        .prefix("openim-release-merge-")
        .tempdir()
        .context("creating a work directory")?;
    let Some(first) = shared.registries.first() else {
        return Ok(());
    };
    for o in outcomes.iter_mut() {
        let (Some(digest), Some(spec)) =
            (o.digest.clone(), specs.iter().find(|s| s.name == o.service))
        else {
            continue;
        };
        let top = match first
            .get_manifest(&first.prefix().repository(&spec.repository), &digest)
            .await
        {
            Ok(Some(f)) => crate::oci::Encoded {
                media_type: f.media_type,
                bytes: f.bytes,
                digest: f.digest,
            },
            _ => continue,
        };
        let base = crate::supply::provenance::BuildFacts {
            service: spec.name.clone(),
            dockerfile: spec.dockerfile.display().to_string(),
            dockerfile_digest: std::fs::read(ws.root().join(&spec.dockerfile))
                .ok()
                .map(|b| crate::oci::sha256_digest(&b)),
            args: spec.args.clone(),
            target: spec.target.clone(),
            ..Default::default()
        };
        o.supply_chain = Some(
            supply
                .attach_existing(
                    &shared.registries,
                    &o.service,
                    crate::supply::Pushed {
                        repository: &spec.repository,
                        top: &top,
                        base: &base,
                        workdir: workdir.path(),
                        sources: None,
                    },
                    &shared.progress,
                )
                .await,
        );
    }
    Ok(())
}

fn group_planned(
    legs: &[Leg],
    prefixes: &[RegistryPrefix],
    tags: &[String],
    names: &std::collections::BTreeMap<String, (String, String)>,
) -> Vec<Outcome> {
    let mut services: Vec<&str> = legs.iter().map(|l| l.service.as_str()).collect();
    services.sort();
    services.dedup();
    services
        .into_iter()
        .map(|s| {
            let (repo, image) = names
                .get(s)
                .cloned()
                .unwrap_or_else(|| (s.to_string(), s.to_string()));
            Outcome::new(
                s.to_string(),
                prefixes
                    .iter()
                    .flat_map(|r| {
                        tags.iter().map({
                            let (repo, image) = (repo.clone(), image.clone());
                            move |t| {
                                format!(
                                    "{r}/{repo}:{}",
                                    crate::tag::template::for_service(t, &image)
                                )
                            }
                        })
                    })
                    .collect(),
                legs.iter()
                    .filter(|l| l.service == s)
                    .map(|l| l.platform.clone())
                    .collect(),
                Status::Planned,
            )
        })
        .collect()
}

/// Services built at the same time by default: four per core, 4 to 16. A
/// build mostly waits (on the engine writing and exporting layers, on the
/// registries), so more builds than cores keep both busy: on 2 cores, 12
/// OpenIM services took 0.48× the shell loop's time with 2 at once, 0.35×
/// with 8 (docs/benchmarks.md).
pub fn default_jobs() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (4 * cores).clamp(4, 16)
}

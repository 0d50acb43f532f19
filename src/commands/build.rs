//! `openim-release build` (and `build matrix`, `build merge`): load the
//! config, plan, and either print the plan or apply it.

use crate::build::builder::{self, Leg, Outcome, PushMode, Shared, Status};
use crate::build::labels::{self, BuildInfo};
use crate::build::plan::{self, BuildPlan, ServiceSpec};
use crate::checks::{Check, ChecksFailed};
use crate::cli::{
    BuildAction, BuildArgs, BuildCmd, GlobalArgs, ImageSelect, MatrixArgs, MergeArgs, OutputFormat,
    TagSource,
};
use crate::clients::credentials;
use crate::clients::engine::Engine;
use crate::clients::git::Repo;
use crate::clients::registry::Registry;
use crate::commands::tag::plan_stage;
use crate::config::{self, Config, ImagesConfig};
use crate::error::{self, BadInput};
use crate::oci::reference::RegistryPrefix;
use crate::output::actions;
use crate::output::progress::Progress;
use crate::output::text;
use crate::tag::stage::Stage;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

pub fn run(global: &GlobalArgs, cmd: &BuildCmd) -> Result<i32> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match &cmd.action {
        None => runtime.block_on(build(global, &cmd.run)),
        Some(BuildAction::Matrix(args)) => matrix(global, args),
        Some(BuildAction::Merge(args)) => runtime.block_on(merge(global, args)),
    }
}

/// The repository, its config and its `images` section.
struct Project {
    repo: Repo,
    config: Config,
    images: ImagesConfig,
}

fn open(global: &GlobalArgs) -> Result<Project> {
    let dir = match &global.directory {
        Some(d) => d.clone(),
        None => std::env::current_dir().context("reading the current directory")?,
    };
    let repo = Repo::discover(&dir)?;
    let loaded = config::load(global.config.as_deref(), repo.root())?;
    let images = loaded.config.images.clone().ok_or_else(|| {
        BadInput(format!(
            "no `images:` section in {}; list the services to build (see docs/build.md)",
            loaded.path.as_ref().map_or_else(
                || "openim-release.yaml (not found)".to_string(),
                |p| p.display().to_string()
            )
        ))
    })?;
    Ok(Project {
        repo,
        config: loaded.config,
        images,
    })
}

fn services(p: &Project) -> Result<Vec<ServiceSpec>> {
    service_specs(p.repo.root(), &p.images)
}

/// The services of `images:`, with those of `images.compose` (read from the
/// repository at `root`).
pub fn service_specs(root: &Path, images: &ImagesConfig) -> Result<Vec<ServiceSpec>> {
    let compose = match &images.compose {
        Some(path) => {
            let full = root.join(path);
            let text = std::fs::read_to_string(&full).map_err(|e| {
                BadInput(format!(
                    "images.compose: cannot read {}: {e}",
                    full.display()
                ))
            })?;
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            Some((dir, text))
        }
        None => None,
    };
    plan::services(
        images,
        compose.as_ref().map(|(d, t)| (d.as_path(), t.as_str())),
    )
    .map_err(|e| BadInput(format!("images: {e}")).into())
}

/// Tags from --tag, or as `tag --stage` computes them.
fn resolve_tags(
    p: &Project,
    src: &TagSource,
    quiet: bool,
) -> Result<(Vec<String>, Option<String>)> {
    if !src.tag.is_empty() {
        return Ok((src.tag.clone(), None));
    }
    match src.stage {
        Some(stage) => {
            let plan = plan_stage(
                &p.repo,
                &p.config,
                stage,
                src.version.as_deref(),
                src.branch.as_deref(),
                quiet,
            )?;
            Ok((plan.tags, plan.version.map(|v| v.to_string())))
        }
        None => Ok((Vec::new(), None)),
    }
}

fn registries_of(p: &Project, select: &ImageSelect) -> Vec<String> {
    if select.registry.is_empty() {
        p.images.registries.clone()
    } else {
        select.registry.clone()
    }
}

fn check_files(p: &Project, plan: &BuildPlan) -> Result<()> {
    for i in &plan.images {
        let s = &i.service;
        let context = p.repo.root().join(&s.context);
        if !context.is_dir() {
            return Err(BadInput(format!(
                "service {}: build context {} does not exist",
                s.name,
                s.context.display()
            ))
            .into());
        }
        if !p.repo.root().join(&s.dockerfile).is_file() {
            return Err(BadInput(format!(
                "service {}: Dockerfile {} does not exist",
                s.name,
                s.dockerfile.display()
            ))
            .into());
        }
    }
    Ok(())
}

fn build_info(p: &Project, version: Option<String>, tags: &[String]) -> Result<BuildInfo> {
    let head = p.repo.head()?;
    let created = p
        .repo
        .commit_time(&head.sha)?
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let source = p.images.source.clone().or_else(|| {
        match (
            std::env::var("GITHUB_SERVER_URL"),
            std::env::var("GITHUB_REPOSITORY"),
        ) {
            (Ok(server), Ok(repo)) if !server.is_empty() && !repo.is_empty() => {
                Some(format!("{}/{repo}", server.trim_end_matches('/')))
            }
            _ => p
                .repo
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

async fn connect_registries(
    p: &Project,
    prefixes: &[RegistryPrefix],
) -> Result<Vec<Arc<Registry>>> {
    let mut out = Vec::new();
    for prefix in prefixes {
        let creds = credentials::lookup(prefix)
            .with_context(|| format!("reading credentials for {prefix}"))?;
        if let Some(c) = &creds {
            actions::mask(&c.password);
        }
        let insecure = p
            .images
            .insecure_registries
            .iter()
            .any(|h| h == &prefix.host);
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

#[derive(Serialize)]
struct BuildOutput<'a> {
    schema_version: u32,
    dry_run: bool,
    tags: &'a [String],
    images: &'a [Outcome],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    legs: Vec<Leg>,
}

/// Options that would be silently ignored in this combination: refused.
fn refuse_inapplicable(args: &BuildArgs) -> Result<()> {
    let src = &args.tags;
    refuse_inapplicable_tags(
        src,
        if args.push_by_digest {
            "--push-by-digest"
        } else {
            "--tag"
        },
    )?;
    if args.push_by_digest && !src.tag.is_empty() {
        return Err(BadInput(
            "--push-by-digest pushes no tags (`build merge` tags the legs); drop --tag".into(),
        )
        .into());
    }
    if args.all_or_none && (args.no_push || args.push_by_digest) {
        return Err(BadInput(format!(
            "--all-or-none is about writing tags, and {} writes none; drop one of them",
            if args.no_push {
                "--no-push"
            } else {
                "--push-by-digest"
            }
        ))
        .into());
    }
    Ok(())
}

/// `--version`/`--branch` apply to the tags `--stage` computes.
fn refuse_inapplicable_tags(src: &TagSource, given: &str) -> Result<()> {
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

async fn build(global: &GlobalArgs, args: &BuildArgs) -> Result<i32> {
    refuse_inapplicable(args)?;
    let p = open(global)?;
    if args.check {
        return check(global, &p, args).await;
    }
    let all = services(&p)?;
    let (tags, version) = if args.push_by_digest {
        (vec!["by-digest".to_string()], None)
    } else {
        resolve_tags(&p, &args.tags, global.quiet)?
    };
    let registries = registries_of(&p, &args.select);
    if registries.is_empty() && !args.no_push {
        return Err(BadInput(
            "no registries: add `images.registries` or pass --registry, or build locally with --no-push".into(),
        )
        .into());
    }
    let plan = plan::plan(
        &all,
        &args.select.service,
        &args.select.platform,
        &registries,
        &tags,
    )
    .map_err(|e| BadInput(e.to_string()))?;
    check_files(&p, &plan)?;
    if args.push_by_digest && plan.images.iter().any(|i| i.service.platforms.len() != 1) {
        return Err(BadInput(
            "--push-by-digest builds one platform per run: pass --platform (see `build matrix`)"
                .into(),
        )
        .into());
    }
    let tags_shown: &[String] = if args.push_by_digest { &[] } else { &tags };

    if args.dry_run {
        let outcomes: Vec<Outcome> = plan.images.iter().map(Outcome::planned).collect();
        print_outcomes(
            global.quiet,
            args.output,
            tags_shown,
            &outcomes,
            true,
            Vec::new(),
        )?;
        return Ok(error::OK);
    }

    let progress = Progress::new(global.quiet);
    let engine = Engine::connect().await?;
    progress.note(&format!(
        "engine {} (API {})",
        engine.host, engine.api_version
    ));
    let regs = if args.no_push {
        Vec::new()
    } else {
        connect_registries(&p, &plan.registries).await?
    };
    if let Some(first) = plan.images.first() {
        check_registries(&regs, &first.service.name).await?;
    }
    let workdir = tempfile::Builder::new()
        .prefix("openim-release-build-")
        .tempdir()
        .context("creating a work directory")?;
    let mode = if args.no_push {
        PushMode::None
    } else if args.push_by_digest {
        PushMode::DigestOnly
    } else {
        PushMode::Tags
    };
    let shared = Shared {
        engine: Some(engine),
        registries: regs,
        workdir: workdir.path().to_path_buf(),
        root: p.repo.root().to_path_buf(),
        info: build_info(&p, version, &tags)?,
        extra_labels: p.images.labels.clone(),
        skip_unchanged: p.images.skip_unchanged.unwrap_or(true) && !args.rebuild && !args.no_cache,
        record_inputs: p.images.skip_unchanged.unwrap_or(true),
        no_cache: args.no_cache,
        mode,
        all_or_none: args.all_or_none && mode == PushMode::Tags,
        progress,
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let outcomes = builder::run(&shared, &plan, jobs).await;
    let legs: Vec<Leg> = outcomes.iter().flat_map(|o| o.legs.clone()).collect();
    print_outcomes(
        global.quiet,
        args.output,
        tags_shown,
        &outcomes,
        false,
        legs,
    )?;
    Ok(finish(&outcomes))
}

/// `build --check`: what a build needs, each part checked on its own (the
/// services and their files, the engine, every registry with its
/// credentials), so that one failure does not hide another.
async fn check(global: &GlobalArgs, p: &Project, args: &BuildArgs) -> Result<i32> {
    let registries = registries_of(p, &args.select);
    let mut checks = Vec::new();
    let planned = (|| -> Result<BuildPlan> {
        let all = services(p)?;
        let (mut tags, _) = resolve_tags(p, &args.tags, global.quiet)?;
        if tags.is_empty() {
            tags.push("check".into());
        }
        let plan = plan::plan(
            &all,
            &args.select.service,
            &args.select.platform,
            &registries,
            &tags,
        )
        .map_err(|e| BadInput(e.to_string()))?;
        check_files(p, &plan)?;
        Ok(plan)
    })();
    let (images, probe) = match &planned {
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
                names.first().map_or("check", |n| n).to_string(),
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
            checks.push(Check::passed(
                "engine",
                format!("{} (API {})", engine.host, engine.api_version),
            ));
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
    if args.no_push {
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
                let regs = connect_registries(p, std::slice::from_ref(prefix)).await?;
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
    let shown: Vec<String> = prefixes.iter().map(ToString::to_string).collect();
    let doc = serde_json::json!({
        "schema_version": 1,
        "ready": ready,
        "images": images,
        "engine": engine_host,
        "registries": shown,
        "checks": checks,
    });
    match args.output {
        OutputFormat::Json => println!("{doc}"),
        OutputFormat::Text => {
            for c in &checks {
                println!("{}", c.line());
            }
            if ready {
                println!(
                    "ready to build {}: engine {}, registries {}",
                    text::count(images, "image"),
                    engine_host.as_deref().unwrap_or_default(),
                    if shown.is_empty() {
                        "none (--no-push)".to_string()
                    } else {
                        shown.join(", ")
                    }
                );
            }
        }
    }
    if ready {
        Ok(error::OK)
    } else {
        Err(ChecksFailed {
            consequence: "so the build stopped before changing anything".into(),
            checks,
        }
        .into())
    }
}

fn finish(outcomes: &[Outcome]) -> i32 {
    let failed: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.status == Status::Failed)
        .collect();
    for f in &failed {
        eprintln!(
            "error: {}: {}",
            f.service,
            f.error.as_deref().unwrap_or("failed")
        );
        if !f.log_tail.is_empty() {
            eprintln!("  last lines of the {} build:", f.service);
            for l in &f.log_tail {
                eprintln!("  | {l}");
            }
        }
    }
    if failed.is_empty() {
        error::OK
    } else {
        eprintln!(
            "{} of {} failed: {}",
            failed.len(),
            text::count(outcomes.len(), "service"),
            failed
                .iter()
                .map(|f| f.service.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        error::FAILURE
    }
}

fn print_outcomes(
    quiet: bool,
    format: OutputFormat,
    tags: &[String],
    outcomes: &[Outcome],
    dry_run: bool,
    legs: Vec<Leg>,
) -> Result<()> {
    let doc = BuildOutput {
        schema_version: 1,
        dry_run,
        tags,
        images: outcomes,
        legs,
    };
    let json = serde_json::to_string(&doc).context("serializing the build output")?;
    match format {
        OutputFormat::Json => println!("{json}"),
        OutputFormat::Text => {
            for o in outcomes {
                match (&o.status, &o.digest) {
                    (Status::Failed, _) => {}
                    (_, Some(d))
                        if !o.references.is_empty()
                            && !doc.legs.iter().any(|l| l.service == o.service) =>
                    {
                        for r in &o.references {
                            println!("{r}@{d}");
                        }
                    }
                    (_, Some(d)) => println!("{} {}@{d}", o.service, o.platforms.join(",")),
                    (_, None) => {
                        for r in &o.references {
                            println!("{r}");
                        }
                    }
                }
            }
            if dry_run && !quiet {
                eprintln!(
                    "dry run: {}, platforms {}; nothing was built or pushed",
                    text::count(outcomes.len(), "service"),
                    outcomes
                        .iter()
                        .flat_map(|o| o.platforms.iter().cloned())
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    let digests: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.digest.as_ref().map(|d| format!("{}={d}", o.service)))
        .collect();
    if actions::write_outputs(&[("json", json.clone()), ("digests", digests.join("\n"))])? {
        let mut md = String::from(
            "### openim-release build\n\n| service | status | digest |\n|---|---|---|\n",
        );
        for o in outcomes {
            // The status as the JSON names it (`built`, `unchanged`, …).
            let status = serde_json::to_value(o.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            md.push_str(&format!(
                "| {} | {status} | `{}` |\n",
                o.service,
                o.digest.as_deref().unwrap_or("-")
            ));
        }
        actions::write_summary(&md)?;
    }
    Ok(())
}

fn matrix(global: &GlobalArgs, args: &MatrixArgs) -> Result<i32> {
    let p = open(global)?;
    let all = services(&p)?;
    let registries = registries_of(&p, &args.select);
    let plan = plan::plan(
        &all,
        &args.select.service,
        &args.select.platform,
        &registries,
        &["matrix".into()],
    )
    .map_err(|e| BadInput(e.to_string()))?;
    let m = plan::matrix(&plan);
    let text = serde_json::to_string(&m).context("serializing the matrix")?;
    match args.output {
        OutputFormat::Json => println!("{text}"),
        OutputFormat::Text => {
            for entry in m["include"].as_array().into_iter().flatten() {
                println!(
                    "{} {}",
                    entry["service"].as_str().unwrap_or_default(),
                    entry["platform"].as_str().unwrap_or_default()
                );
            }
        }
    }
    actions::write_outputs(&[("matrix", text)])?;
    Ok(error::OK)
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

async fn merge(global: &GlobalArgs, args: &MergeArgs) -> Result<i32> {
    refuse_inapplicable_tags(&args.tags, "--tag")?;
    let p = open(global)?;
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
        let mut expected = services(&p)?;
        if let Some(unknown) = args
            .service
            .iter()
            .find(|n| !expected.iter().any(|s| &s.name == *n))
        {
            return Err(BadInput(format!("--service {unknown}: no such service")).into());
        }
        if !args.service.is_empty() {
            expected.retain(|s| args.service.contains(&s.name));
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
    let (tags, version) = resolve_tags(&p, &args.tags, global.quiet)?;
    if tags.is_empty() {
        return Err(BadInput("no image tags: pass --stage STAGE or --tag TAG".into()).into());
    }
    if let Some(bad) = tags
        .iter()
        .find(|t| !crate::oci::reference::is_valid_tag(t))
    {
        return Err(BadInput(format!("`{bad}` is not a valid image tag")).into());
    }
    let mut registry_names: Vec<String> = legs.iter().flat_map(|l| l.registries.clone()).collect();
    registry_names.sort();
    registry_names.dedup();
    let prefixes: Vec<RegistryPrefix> = registry_names
        .iter()
        .map(|r| RegistryPrefix::parse(r).map_err(|e| BadInput(e).into()))
        .collect::<Result<_>>()?;
    if args.dry_run {
        let outcomes: Vec<Outcome> = group_planned(&legs, &prefixes, &tags);
        print_outcomes(
            global.quiet,
            args.output,
            &tags,
            &outcomes,
            true,
            Vec::new(),
        )?;
        return Ok(error::OK);
    }
    let regs = connect_registries(&p, &prefixes).await?;
    let shared = Shared {
        engine: None,
        registries: regs,
        workdir: std::env::temp_dir(),
        root: p.repo.root().to_path_buf(),
        info: build_info(&p, version, &tags)?,
        extra_labels: p.images.labels.clone(),
        skip_unchanged: false,
        record_inputs: false,
        no_cache: false,
        mode: PushMode::Tags,
        all_or_none: false,
        progress: Progress::new(global.quiet),
    };
    let outcomes = builder::merge(&shared, &legs, &tags).await;
    print_outcomes(
        global.quiet,
        args.output,
        &tags,
        &outcomes,
        false,
        Vec::new(),
    )?;
    Ok(finish(&outcomes))
}

fn group_planned(legs: &[Leg], prefixes: &[RegistryPrefix], tags: &[String]) -> Vec<Outcome> {
    let mut services: Vec<&str> = legs.iter().map(|l| l.service.as_str()).collect();
    services.sort();
    services.dedup();
    services
        .into_iter()
        .map(|s| {
            Outcome::new(
                s.to_string(),
                prefixes
                    .iter()
                    .flat_map(|r| tags.iter().map(move |t| format!("{r}/{s}:{t}")))
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

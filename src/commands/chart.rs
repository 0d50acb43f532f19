//! `openim-release chart bump|apply`: edit deploy files in a local checkout.

use crate::cli::{
    ChartApplyArgs, ChartBumpArgs, ChartCmd, EditArgs, GlobalArgs, OutputFormat, ReleaseArgs,
};
use crate::clients::git::Repo;
use crate::commands::tag::plan_stage;
use crate::config::{self, Config};
use crate::deploy::chart::{DigestPin, ImageMatcher};
use crate::deploy::edits::{self, ChartSpec, DeployInputs, DeployPlan, Release};
use crate::error::{self, BadInput};
use crate::output::actions;
use crate::tag::stage::PlanError;
use crate::tag::stage::Stage;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Exit code of `--exit-code` when there is nothing to change.
pub const NOTHING_TO_CHANGE: i32 = 3;

pub fn run(global: &GlobalArgs, cmd: &ChartCmd) -> Result<i32> {
    match cmd {
        ChartCmd::Bump(args) => bump(global, args),
        ChartCmd::Apply(args) => apply(global, args),
    }
}

fn cwd(global: &GlobalArgs) -> Result<PathBuf> {
    match &global.directory {
        Some(d) => Ok(d.clone()),
        None => std::env::current_dir().context("reading the current directory"),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn bump(global: &GlobalArgs, args: &ChartBumpArgs) -> Result<i32> {
    let root = cwd(global)?;
    if !root.join(&args.chart_dir).join("Chart.yaml").is_file() {
        return Err(BadInput(format!(
            "{} has no Chart.yaml; pass a Helm chart directory",
            args.chart_dir.display()
        ))
        .into());
    }
    crate::tag::version::parse_user_version(&args.app_version)
        .map_err(|e| BadInput(format!("--app-version: {e}")))?;
    if !crate::oci::reference::is_valid_tag(&args.image_tag) {
        return Err(BadInput(format!(
            "--image-tag `{}` is not a valid image tag",
            args.image_tag
        ))
        .into());
    }
    if let Some(d) = &args.digest {
        if !crate::oci::is_digest(d) {
            return Err(BadInput(format!("--digest `{d}` is not sha256:<64 hex>")).into());
        }
    }
    for r in &args.registry {
        crate::oci::reference::RegistryPrefix::parse(r)
            .map_err(|e| BadInput(format!("--registry `{r}`: {e}")))?;
    }
    let chart_name = crate::yamledit::get(
        &std::fs::read_to_string(root.join(&args.chart_dir).join("Chart.yaml"))?,
        &["name".to_string()],
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| "chart".into());
    let values = args
        .values
        .clone()
        .unwrap_or_else(|| args.chart_dir.join("values.yaml"));
    let values_name = values.display().to_string();
    let values_text = std::fs::read_to_string(root.join(&values)).map_err(|e| {
        BadInput(format!(
            "{values_name}: {e}; pass the chart's values file with --values"
        ))
    })?;
    // A key path that cannot hold a tag is refused before anything else.
    crate::deploy::chart::check_image_key(&values_text, &values_name, &args.key)
        .map_err(|e| BadInput(e.to_string()))?;
    // Which images are the services': the configuration's registries and
    // services when there is one (here or --config), --registry, else the
    // registry of the chart's own image.
    let loaded = config::load(global.config.as_deref(), &root)?;
    let (mut registries, services, insecure) = match (&loaded.path, &loaded.config.images) {
        (Some(path), Some(images)) => {
            let config_root = path.parent().unwrap_or(&root);
            (
                images.registries.clone(),
                known_services(&loaded.config, config_root)?,
                images.insecure_registries.clone(),
            )
        }
        _ => (Vec::new(), Vec::new(), Vec::new()),
    };
    if !args.registry.is_empty() {
        registries = args.registry.clone();
    }
    let own_repo = crate::deploy::chart::repository_beside(&values_text, &values_name, &args.key)
        .ok()
        .flatten();
    if registries.is_empty() {
        if let Some((registry, _)) = own_repo.as_deref().and_then(|r| r.rsplit_once('/')) {
            registries.push(registry.to_string());
        }
    }
    let has_subcharts = std::fs::read_dir(root.join(&args.chart_dir).join("charts"))
        .map(|entries| {
            entries
                .flatten()
                .any(|e| e.path().join("Chart.yaml").is_file())
        })
        .unwrap_or(false);
    if has_subcharts && registries.is_empty() && services.is_empty() {
        let why = match &own_repo {
            Some(r) => format!("the image of {values_name} (`{r}`) names no registry"),
            None => format!("{values_name} names no repository beside `{}`", args.key),
        };
        return Err(BadInput(format!(
            "cannot tell which subcharts of {} deploy your services: {why}; pass --registry \
             with the registry of your images (e.g. --registry ghcr.io/openimsdk), or --config \
             with your openim-release.yaml",
            args.chart_dir.display(),
        ))
        .into());
    }
    let matcher = if services.is_empty() {
        ImageMatcher::any_service(&registries)
    } else {
        ImageMatcher::new(&registries, &services)
    };
    // The chart's own image: the service its repository names.
    let own_service = own_repo
        .as_deref()
        .and_then(|r| r.rsplit('/').next())
        .map_or(chart_name, str::to_string);
    let mut digests = BTreeMap::new();
    if let Some(d) = &args.digest {
        digests.insert(own_service.clone(), d.clone());
    }
    let spec = ChartSpec {
        dir: args.chart_dir.clone(),
        values: vec![values],
        values_configured: true,
        images: vec![(own_service, args.key.clone())],
        bump: args.chart_bump,
        pin: if args.digest.is_some() {
            args.pin
        } else {
            DigestPin::None
        },
        subchart_key: args.key.clone(),
        optional_images: has_subcharts,
    };
    let release = Release {
        tag: args.image_tag.clone(),
        app_version: Some(args.app_version.trim_start_matches('v').to_string()),
        digests,
    };
    let inputs = DeployInputs {
        charts: vec![spec],
        manifests: Vec::new(),
        env_files: Vec::new(),
        matcher,
        registries,
        insecure,
        strict: false,
    };
    let plan = plan_edits(&root, &inputs, &release)?;
    if plan.images.is_empty() {
        // Neither the chart's values nor a subchart's have an image of ours:
        // nothing would move.
        let skipped: Vec<String> = plan
            .skipped
            .iter()
            .map(|s| format!("{} ({})", s.subchart, s.reason))
            .collect();
        return Err(BadInput(format!(
            "nothing to bump: no `{}` in {values_name}{}; pass --key (or --values, --registry)",
            args.key,
            if skipped.is_empty() {
                String::new()
            } else {
                format!(
                    ", and no subchart deploys a service: {}",
                    skipped.join("; ")
                )
            }
        ))
        .into());
    }
    finish(&root, &plan, &args.edit, &inputs, global.quiet)
}

/// The edits of the deploy files under `root`. What stops them is the files'
/// content against the inputs (no Chart.yaml, a version that is not semver,
/// a key that is missing or cannot be edited safely): bad input, exit 2.
pub fn plan_edits(root: &Path, inputs: &DeployInputs, release: &Release) -> Result<DeployPlan> {
    edits::plan(root, inputs, release).map_err(|e| BadInput(format!("{e:#}")).into())
}

/// The services of the configuration: `images.services` or the compose
/// file, read in `root` (the source repository).
fn known_services(config: &Config, root: &Path) -> Result<Vec<String>> {
    let images = config.images.clone().unwrap_or_default();
    let mut services: Vec<String> = super::build::service_specs(root, &images)?
        .into_iter()
        .map(|s| s.name)
        .collect();
    services.sort();
    services.dedup();
    Ok(services)
}

/// The closest of `names` to `name`, when it is close enough to be a typo.
fn closest<'a>(name: &str, names: &'a [String]) -> Option<&'a str> {
    names
        .iter()
        .map(|n| (strsim_distance(name, n), n))
        .filter(|(d, n)| *d <= 2.max(n.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n.as_str())
}

fn strsim_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// What the deploy edits need; `root` is the source repository, where
/// `images.compose` (whose services count too) is read.
pub fn deploy_inputs(loaded: &config::Loaded, root: &Path) -> Result<DeployInputs> {
    let config = &loaded.config;
    let deploy = config.deploy.clone().ok_or_else(|| {
        BadInput("no `deploy:` section in openim-release.yaml; see docs/gitops.md".into())
    })?;
    let images = config.images.clone().unwrap_or_default();
    let mut services = known_services(config, root)?;
    // A name under deploy.charts[].images must be a service, when the
    // configuration has any: a typo would deploy nothing, silently.
    let file = loaded.path.as_ref().map_or_else(
        || "openim-release.yaml".to_string(),
        |p| p.display().to_string(),
    );
    let text = loaded
        .path
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    if !services.is_empty() {
        for (i, c) in deploy.charts.iter().enumerate() {
            for name in c.images.keys() {
                if services.contains(name) {
                    continue;
                }
                let line = text
                    .lines()
                    .position(|l| {
                        let t = l.trim_start().trim_start_matches(['{', '-', ' ']);
                        t.starts_with(&format!("{name}:"))
                            || l.contains(&format!("{{ {name}:"))
                            || l.contains(&format!(", {name}:"))
                            || l.contains(&format!("{{{name}:"))
                    })
                    .map(|n| format!(":{}", n + 1))
                    .unwrap_or_default();
                let hint = match closest(name, &services) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => "add it to images.services (or the compose file), or fix the name"
                        .to_string(),
                };
                return Err(BadInput(format!(
                    "{file}{line}: deploy.charts[{i}].images: `{name}` is not a service; the \
                     services are {}; {hint}",
                    services.join(", ")
                ))
                .into());
            }
        }
    }
    for c in &deploy.charts {
        services.extend(c.images.keys().cloned());
    }
    services.sort();
    services.dedup();
    let charts = deploy
        .charts
        .iter()
        .map(|c| ChartSpec {
            dir: c.path.clone(),
            values: match &c.values {
                Some(v) => v.0.clone(),
                None => vec![c.path.join("values.yaml")],
            },
            values_configured: c.values.is_some(),
            images: c
                .images
                .iter()
                .map(|(s, k)| (s.clone(), k.clone()))
                .collect(),
            bump: c.bump.unwrap_or(crate::deploy::chart::ChartBump::Patch),
            pin: c.digest.unwrap_or_default(),
            subchart_key: c.subchart_key.clone().unwrap_or_else(|| "image.tag".into()),
            optional_images: false,
        })
        .collect();
    Ok(DeployInputs {
        charts,
        manifests: deploy.manifests.clone(),
        env_files: deploy.env_files.clone(),
        matcher: ImageMatcher::new(&images.registries, &services),
        registries: images.registries.clone(),
        insecure: images.insecure_registries.clone(),
        strict: deploy.strict,
    })
}

/// The tag a stage deploys, from the tags `tag --stage` computed for the
/// commit `sha`: as `stages.<stage>.deploy_tag` says; by default the dev
/// stage deploys the tag naming the commit (`sha-<sha7>`), not the moving
/// branch tag, which would leave every later deploy with nothing to change.
pub fn deploy_tag(config: &Config, stage: Stage, tags: &[String], sha: &str) -> Result<String> {
    use crate::config::DeployTag;
    let first = tags
        .first()
        .cloned()
        .ok_or_else(|| BadInput(format!("the {stage} stage computed no image tag")))?;
    let configured = config.stages.get(stage.as_str()).and_then(|s| s.deploy_tag);
    let rule = configured.unwrap_or(if stage == Stage::Dev {
        DeployTag::Commit
    } else {
        DeployTag::First
    });
    if rule == DeployTag::First {
        return Ok(first);
    }
    let short = &sha[..sha.len().min(7)];
    if let Some(t) = tags
        .iter()
        .find(|t| !short.is_empty() && (t.contains(sha) || t.contains(short)))
    {
        return Ok(t.clone());
    }
    let why = format!(
        "none of the {stage} tags ({}) names the commit {short}: add a tag with {{sha7}} to \
         tags.{stage}.tags (as `sha-{{sha7}}`)",
        tags.join(", ")
    );
    if configured.is_some() {
        return Err(BadInput(format!(
            "stages.{stage}.deploy_tag is commit, but {why}, or set deploy_tag: first"
        ))
        .into());
    }
    eprintln!(
        "warning: deploying the moving tag {first}: {why}; otherwise a deploy of a later commit \
         finds nothing to change"
    );
    Ok(first)
}

/// The release from --stage (in the source repository) and overrides.
pub struct Resolved {
    pub release: Release,
    pub stage: Option<Stage>,
    pub version: Option<String>,
}

pub fn resolve_release(
    repo: Option<&Repo>,
    config: &Config,
    args: &ReleaseArgs,
    quiet: bool,
) -> Result<Resolved> {
    let (mut tag, mut version) = (None, None);
    if let Some(stage) = args.stage {
        let repo =
            repo.ok_or_else(|| BadInput("--stage needs a git repository (use -C)".into()))?;
        match plan_stage(repo, config, stage, args.version.as_deref(), None, quiet) {
            Ok(plan) => {
                tag = match &args.image_tag {
                    Some(t) => Some(t.clone()),
                    None => Some(deploy_tag(config, stage, &plan.tags, &plan.sha)?),
                };
                version = plan.version.map(|v| v.to_string());
            }
            // With --image-tag the stage only names the environment: an rc
            // not created yet (release checks before reserving it) is fine.
            Err(e)
                if args.image_tag.is_some()
                    && e.chain().any(|c| {
                        matches!(c.downcast_ref(), Some(PlanError::NoCurrentTag { .. }))
                    }) => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(v) = &args.version {
        let v = crate::tag::version::parse_user_version(v)
            .map_err(|e| BadInput(format!("--version: {e}")))?;
        version = Some(v.to_string());
    }
    if let Some(t) = &args.image_tag {
        tag = Some(t.clone());
    }
    let tag =
        tag.ok_or_else(|| BadInput("no image tag: pass --stage STAGE or --image-tag TAG".into()))?;
    if !crate::oci::reference::is_valid_tag(&tag) {
        return Err(BadInput(format!("--image-tag `{tag}` is not a valid image tag")).into());
    }
    let digests = match &args.digests {
        Some(f) => read_digests(f)?,
        None => BTreeMap::new(),
    };
    Ok(Resolved {
        release: Release {
            tag,
            app_version: version.clone(),
            digests,
        },
        stage: args.stage,
        version,
    })
}

/// service -> digest from `build --output json`.
pub fn read_digests(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BadInput(format!("reading {}: {e}", path.display())))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        BadInput(format!(
            "{}: not the JSON of `build --output json`: {e}",
            path.display()
        ))
    })?;
    let mut out = BTreeMap::new();
    for image in json["images"].as_array().into_iter().flatten() {
        if let (Some(s), Some(d)) = (image["service"].as_str(), image["digest"].as_str()) {
            out.insert(s.to_string(), d.to_string());
        }
    }
    Ok(out)
}

fn apply(global: &GlobalArgs, args: &ChartApplyArgs) -> Result<i32> {
    let dir = cwd(global)?;
    let repo = Repo::discover(&dir).ok();
    let root_for_config = repo
        .as_ref()
        .map_or(dir.clone(), |r| r.root().to_path_buf());
    let loaded = config::load(global.config.as_deref(), &root_for_config)?;
    let inputs = deploy_inputs(&loaded, &root_for_config)?;
    let resolved = resolve_release(repo.as_ref(), &loaded.config, &args.release, global.quiet)?;
    let deploy_dir = if args.dir.is_absolute() {
        args.dir.clone()
    } else {
        dir.join(&args.dir)
    };
    let plan = plan_edits(&deploy_dir, &inputs, &resolved.release)?;
    finish(&deploy_dir, &plan, &args.edit, &inputs, global.quiet)
}

#[derive(Serialize)]
struct ChartOutput<'a> {
    schema_version: u32,
    changed: bool,
    dry_run: bool,
    files: Vec<&'a str>,
    changes: &'a [crate::deploy::chart::ScalarChange],
    references: &'a [crate::deploy::chart::RefChange],
    images: &'a [crate::deploy::edits::ImageChange],
    warnings: &'a [crate::deploy::edits::Warning],
    skipped: &'a [crate::deploy::edits::SkippedChart],
}

/// Tell what was left alone and what deserves a look (stderr; warnings
/// also as annotations in GitHub Actions). Warnings are printed even with
/// `-q`.
pub fn report(plan: &DeployPlan, quiet: bool) {
    if !quiet {
        for s in &plan.skipped {
            eprintln!("skipped subchart {} ({}): {}", s.subchart, s.name, s.reason);
        }
    }
    for w in &plan.warnings {
        eprintln!("warning: {w}");
        if actions::in_actions() {
            println!(
                "{}",
                actions::annotation("warning", &w.message, Some(&w.file), None)
            );
        }
    }
}

/// `--strict` (or `deploy.strict`): a warning stops everything, before
/// anything is written.
pub fn refuse_warnings(plan: &DeployPlan, strict: bool) -> Result<()> {
    if strict && !plan.warnings.is_empty() {
        return Err(BadInput(format!(
            "refusing to edit anything with {} (--strict): {}",
            edits::count(plan.warnings.len(), "warning", "warnings"),
            plan.warnings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ))
        .into());
    }
    Ok(())
}

/// The closing line when nothing changes: "up to date" only when it is true.
pub fn nothing_to_change(plan: &DeployPlan) -> String {
    if plan.warnings.is_empty() {
        "nothing to change: every file is up to date".to_string()
    } else {
        format!(
            "nothing to change, but see the {} above: something configured deploys no configured service",
            edits::count(plan.warnings.len(), "warning", "warnings")
        )
    }
}

/// Verify, then print and (unless a dry run) write.
pub fn finish(
    root: &Path,
    plan: &DeployPlan,
    edit: &EditArgs,
    inputs: &DeployInputs,
    quiet: bool,
) -> Result<i32> {
    report(plan, quiet);
    refuse_warnings(plan, edit.strict || inputs.strict)?;
    if plan.changed() && !edit.no_verify {
        check_images(plan, &inputs.insecure)?;
    }
    if plan.changed() && !edit.dry_run {
        edits::write(root, plan)?;
    }
    let doc = ChartOutput {
        schema_version: 1,
        changed: plan.changed(),
        dry_run: edit.dry_run,
        files: plan.files.iter().map(|f| f.path.as_str()).collect(),
        changes: &plan.scalars,
        references: &plan.references,
        images: &plan.images,
        warnings: &plan.warnings,
        skipped: &plan.skipped,
    };
    let json = serde_json::to_string(&doc).context("serializing the chart output")?;
    match edit.output {
        OutputFormat::Json => println!("{json}"),
        OutputFormat::Text => {
            if plan.changed() {
                print!("{}", edits::unified_diff(plan));
            } else if !quiet {
                eprintln!("{}", nothing_to_change(plan));
            }
            if edit.dry_run && plan.changed() && !quiet {
                eprintln!(
                    "dry run: {} would change; nothing was written",
                    edits::count(plan.files.len(), "file", "files")
                );
            }
        }
    }
    actions::write_outputs(&[("json", json), ("changed", plan.changed().to_string())])?;
    Ok(if !plan.changed() && edit.exit_code {
        NOTHING_TO_CHANGE
    } else {
        error::OK
    })
}

/// Refuse (exit 1) when an image the edits reference is not in its registry.
pub fn check_images(plan: &DeployPlan, insecure: &[String]) -> Result<()> {
    if !plan.unverifiable.is_empty() {
        return Err(BadInput(format!(
            "cannot tell which image {} names (no `repository` beside the tag and no images.registries); \
             add one, or pass --no-verify",
            plan.unverifiable.join(", ")
        ))
        .into());
    }
    let found = runtime()?.block_on(edits::verify(&plan.verify, insecure))?;
    if !found.missing.is_empty() {
        anyhow::bail!(
            "refusing to point the deploy files at images that do not exist (nothing was written): {}; \
             build and push them first, or pass --no-verify",
            found.missing.join(", ")
        );
    }
    if !found.unchecked.is_empty() {
        anyhow::bail!(
            "could not check that the images exist (nothing was written): {}; check the \
             registry's address, credentials and network, or pass --no-verify",
            found.unchecked.join(", ")
        );
    }
    Ok(())
}

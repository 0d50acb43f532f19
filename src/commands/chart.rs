//! `openim-release chart bump|apply`: edit deploy files in a local checkout.

use crate::actions;
use crate::chart::{DigestPin, ImageMatcher};
use crate::cli::{
    ChartApplyArgs, ChartBumpArgs, ChartCmd, EditArgs, GlobalArgs, OutputFormat, ReleaseArgs,
};
use crate::commands::tag::plan_stage;
use crate::config::{self, Config};
use crate::deploy::{self, ChartSpec, DeployInputs, DeployPlan, Release, Subcharts};
use crate::exit::{self, BadInput};
use crate::git::Repo;
use crate::stage::PlanError;
use crate::stage::Stage;
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
    crate::version::parse_user_version(&args.app_version)
        .map_err(|e| BadInput(format!("--app-version: {e}")))?;
    if !crate::imagetag::is_valid_tag(&args.image_tag) {
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
    let mut digests = BTreeMap::new();
    if let Some(d) = &args.digest {
        digests.insert(chart_name.clone(), d.clone());
    }
    let spec_values = values.clone();
    let spec = ChartSpec {
        dir: args.chart_dir.clone(),
        values,
        images: vec![(chart_name, args.key.clone())],
        bump: args.chart_bump,
        pin: if args.digest.is_some() {
            args.pin
        } else {
            DigestPin::None
        },
        subcharts: Subcharts::SameAppVersion,
        subchart_key: args.key.clone(),
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
        matcher: ImageMatcher::new(&[], &[]),
        registries: Vec::new(),
        insecure: Vec::new(),
    };
    let plan = plan_edits(&root, &inputs, &release)?;
    if plan.images.is_empty() {
        // Neither the chart's values nor a subchart's have the key: the
        // image would silently stay where it is.
        return Err(BadInput(format!(
            "no `{}` in {} or in the values of a subchart released with it; pass --key (or --values)",
            args.key,
            spec_values.display()
        ))
        .into());
    }
    finish(&root, &plan, &args.edit, &[])
}

/// The edits of the deploy files under `root`. What stops them is the files'
/// content against the inputs (no Chart.yaml, a version that is not semver,
/// a key that is missing or cannot be edited safely): bad input, exit 2.
pub fn plan_edits(root: &Path, inputs: &DeployInputs, release: &Release) -> Result<DeployPlan> {
    deploy::plan(root, inputs, release).map_err(|e| BadInput(format!("{e:#}")).into())
}

/// What the deploy edits need; `root` is the source repository, where
/// `images.compose` (whose services count too) is read.
pub fn deploy_inputs(config: &Config, root: &Path) -> Result<DeployInputs> {
    let deploy = config.deploy.clone().ok_or_else(|| {
        BadInput("no `deploy:` section in openim-release.yaml; see docs/gitops.md".into())
    })?;
    let images = config.images.clone().unwrap_or_default();
    let mut services: Vec<String> = super::build::service_specs(root, &images)?
        .into_iter()
        .map(|s| s.name)
        .collect();
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
            values: c
                .values
                .clone()
                .unwrap_or_else(|| c.path.join("values.yaml")),
            images: c
                .images
                .iter()
                .map(|(s, k)| (s.clone(), k.clone()))
                .collect(),
            bump: c.bump.unwrap_or(crate::chart::ChartBump::Patch),
            pin: c.digest.unwrap_or_default(),
            subcharts: Subcharts::Named(services.clone()),
            subchart_key: c.subchart_key.clone().unwrap_or_else(|| "image.tag".into()),
        })
        .collect();
    Ok(DeployInputs {
        charts,
        manifests: deploy.manifests.clone(),
        env_files: deploy.env_files.clone(),
        matcher: ImageMatcher::new(&images.registries, &services),
        registries: images.registries.clone(),
        insecure: images.insecure_registries.clone(),
    })
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
                tag = plan.tags.first().cloned();
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
        let v = crate::version::parse_user_version(v)
            .map_err(|e| BadInput(format!("--version: {e}")))?;
        version = Some(v.to_string());
    }
    if let Some(t) = &args.image_tag {
        tag = Some(t.clone());
    }
    let tag =
        tag.ok_or_else(|| BadInput("no image tag: pass --stage STAGE or --image-tag TAG".into()))?;
    if !crate::imagetag::is_valid_tag(&tag) {
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
    let inputs = deploy_inputs(&loaded.config, &root_for_config)?;
    let resolved = resolve_release(repo.as_ref(), &loaded.config, &args.release, global.quiet)?;
    let deploy_dir = if args.dir.is_absolute() {
        args.dir.clone()
    } else {
        dir.join(&args.dir)
    };
    let plan = plan_edits(&deploy_dir, &inputs, &resolved.release)?;
    finish(&deploy_dir, &plan, &args.edit, &inputs.insecure)
}

#[derive(Serialize)]
struct ChartOutput<'a> {
    schema_version: u32,
    changed: bool,
    dry_run: bool,
    files: Vec<&'a str>,
    changes: &'a [crate::chart::ScalarChange],
    references: &'a [crate::chart::RefChange],
    images: &'a [crate::deploy::ImageChange],
}

/// Verify, then print and (unless a dry run) write.
pub fn finish(root: &Path, plan: &DeployPlan, edit: &EditArgs, insecure: &[String]) -> Result<i32> {
    if plan.changed() && !edit.no_verify {
        check_images(plan, insecure)?;
    }
    if plan.changed() && !edit.dry_run {
        deploy::write(root, plan)?;
    }
    let doc = ChartOutput {
        schema_version: 1,
        changed: plan.changed(),
        dry_run: edit.dry_run,
        files: plan.files.iter().map(|f| f.path.as_str()).collect(),
        changes: &plan.scalars,
        references: &plan.references,
        images: &plan.images,
    };
    let json = serde_json::to_string(&doc).context("serializing the chart output")?;
    match edit.output {
        OutputFormat::Json => println!("{json}"),
        OutputFormat::Text => {
            if plan.changed() {
                print!("{}", deploy::unified_diff(plan));
            } else {
                eprintln!("nothing to change: every file is up to date");
            }
            if edit.dry_run && plan.changed() {
                eprintln!(
                    "dry run: {} files would change; nothing was written",
                    plan.files.len()
                );
            }
        }
    }
    actions::write_outputs(&[("json", json), ("changed", plan.changed().to_string())])?;
    Ok(if !plan.changed() && edit.exit_code {
        NOTHING_TO_CHANGE
    } else {
        exit::OK
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
    let found = runtime()?.block_on(deploy::verify(&plan.verify, insecure))?;
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

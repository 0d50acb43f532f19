//! `chart bump` (one chart directory) and `chart apply` (every deploy
//! surface of the configuration) in a checkout: plan the edits, vet them,
//! write them unless a dry run, and report.

use crate::deploy::chart::{DigestPin, ImageMatcher};
use crate::deploy::edits::{self, ChartSpec, DeployInputs, DeployPlan, Release};
use crate::deploy::plan::{
    deploy_inputs, known_services, plan_edits, report, resolve_release, vet, EditOptions,
    ReleaseChoice,
};
use crate::error::BadInput;
use crate::workspace::Workspace;
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What `chart bump` is asked to do.
#[derive(Debug, Clone)]
pub struct BumpRequest {
    pub chart_dir: PathBuf,
    pub app_version: String,
    pub image_tag: String,
    pub values: Option<PathBuf>,
    pub key: String,
    pub chart_bump: crate::deploy::chart::ChartBump,
    pub digest: Option<String>,
    pub pin: DigestPin,
    pub registry: Vec<String>,
    pub edit: EditOptions,
}

/// What `chart apply` is asked to do.
#[derive(Debug, Clone)]
pub struct ApplyRequest {
    /// The deploy checkout (relative to the workspace directory).
    pub dir: PathBuf,
    pub release: ReleaseChoice,
    pub edit: EditOptions,
}

/// The result of `chart bump` / `chart apply`: the `--output json`
/// document (fields are a contract: add, never remove).
#[derive(Debug, Clone, Serialize)]
pub struct ChartReport {
    pub schema_version: u32,
    pub changed: bool,
    pub dry_run: bool,
    pub files: Vec<String>,
    pub changes: Vec<crate::deploy::chart::ScalarChange>,
    pub references: Vec<crate::deploy::chart::RefChange>,
    pub images: Vec<crate::deploy::edits::ImageChange>,
    pub warnings: Vec<crate::deploy::edits::Warning>,
    pub skipped: Vec<crate::deploy::edits::SkippedChart>,
    /// The unified diff of the edits (text output).
    #[serde(skip)]
    pub diff: String,
}

/// `chart bump`.
pub fn bump(ws: &Workspace, args: &BumpRequest) -> Result<ChartReport> {
    let root = ws.dir.clone();
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
    let loaded = &ws.loaded;
    let (mut registries, services, insecure) = match (&loaded.path, &loaded.config.images) {
        (Some(path), Some(images)) => {
            let config_root = path.parent().unwrap_or(&root);
            (
                images.all_registries(),
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
        image_pattern: None,
        pattern_services: Vec::new(),
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
        env_tags: BTreeMap::new(),
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
    finish(&root, &plan, &args.edit, &inputs, ws.quiet)
}

/// `chart apply`.
pub fn apply(ws: &Workspace, args: &ApplyRequest) -> Result<ChartReport> {
    let inputs = deploy_inputs(&ws.loaded, ws.root())?;
    let resolved = resolve_release(ws, &args.release)?;
    let deploy_dir = if args.dir.is_absolute() {
        args.dir.clone()
    } else {
        ws.dir.join(&args.dir)
    };
    if !deploy_dir.is_dir() {
        return Err(BadInput(format!(
            "--dir {}: no such directory; pass the deploy checkout",
            args.dir.display()
        ))
        .into());
    }
    let plan = plan_edits(&deploy_dir, &inputs, &resolved.release)?;
    finish(&deploy_dir, &plan, &args.edit, &inputs, ws.quiet)
}

/// Vet, then (unless a dry run) write; the report.
fn finish(
    root: &std::path::Path,
    plan: &DeployPlan,
    edit: &EditOptions,
    inputs: &DeployInputs,
    quiet: bool,
) -> Result<ChartReport> {
    report(plan, quiet);
    vet(plan, inputs, edit)?;
    if plan.changed() && !edit.dry_run {
        edits::write(root, plan)?;
    }
    Ok(ChartReport {
        schema_version: 1,
        changed: plan.changed(),
        dry_run: edit.dry_run,
        files: plan.files.iter().map(|f| f.path.clone()).collect(),
        changes: plan.scalars.clone(),
        references: plan.references.clone(),
        images: plan.images.clone(),
        warnings: plan.warnings.clone(),
        skipped: plan.skipped.clone(),
        diff: edits::unified_diff(plan),
    })
}

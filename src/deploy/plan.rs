//! What a deploy needs, worked out before anything is written: the deploy
//! inputs of the configuration (charts, manifests, `.env` files, which images
//! are the services'), the release being deployed (tag, appVersion,
//! digests), the edits, and the checks on them (warnings, `--strict`, the
//! images existing in their registries).

use crate::config::{self, Config};
use crate::deploy::chart::{ImageMatcher, ServiceImage};
use crate::deploy::edits::{self, ChartSpec, DeployInputs, DeployPlan, Release};
use crate::error::BadInput;
use crate::output::actions;
use crate::tag::apply::stage_tags;
use crate::tag::stage::{PlanError, Stage};
use crate::workspace::Workspace;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which release is deployed.
#[derive(Debug, Clone, Default)]
pub struct ReleaseChoice {
    /// Take version and tags from this stage.
    pub stage: Option<Stage>,
    /// The version (X.Y.Z) for appVersion.
    pub version: Option<String>,
    /// The image tag [default: the stage's deploy tag].
    pub image_tag: Option<String>,
    /// `build --output json` whose digests are pinned.
    pub digests_file: Option<PathBuf>,
    /// service → digest, as a build in the same run reported them.
    pub digests: BTreeMap<String, String>,
}

/// How edits are made.
#[derive(Debug, Clone, Copy, Default)]
pub struct EditOptions {
    /// Do not check that the images exist first.
    pub no_verify: bool,
    /// Write nothing.
    pub dry_run: bool,
    /// Warnings are errors.
    pub strict: bool,
}

/// The edits of the deploy files under `root`. What stops them is the files'
/// content against the inputs (no Chart.yaml, a version that is not semver,
/// a key that is missing or cannot be edited safely): bad input, exit 2.
pub fn plan_edits(root: &Path, inputs: &DeployInputs, release: &Release) -> Result<DeployPlan> {
    edits::plan(root, inputs, release).map_err(|e| {
        // What the files say is for the user to fix; a file that cannot be
        // read (permissions, I/O) is a failure, reported as such.
        if e.chain().any(|c| c.is::<std::io::Error>()) {
            e
        } else {
            BadInput(format!("{e:#}")).into()
        }
    })
}

/// The services of the configuration: `images.services` or the compose
/// file, read in `root` (the source repository).
pub fn known_services(config: &Config, root: &Path) -> Result<Vec<String>> {
    let images = config.images.clone().unwrap_or_default();
    let mut services: Vec<String> = crate::build::run::service_specs(root, &images)?
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
    let all_services = services.clone();
    if !services.is_empty() {
        for (i, c) in deploy.charts.iter().enumerate() {
            for name in c.images.keys().chain(c.services.iter().flatten()) {
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
                let key = if c.images.contains_key(name) {
                    "images"
                } else {
                    "services"
                };
                return Err(BadInput(format!(
                    "{file}{line}: deploy.charts[{i}].{key}: `{name}` is not a service; the \
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
            image_pattern: c.image_pattern.clone(),
            pattern_services: c.services.clone().unwrap_or_else(|| all_services.clone()),
        })
        .collect();
    // Each service's image name and repository (images.image_names,
    // images.repository); names only the charts know are their own.
    let specs = crate::build::run::service_specs(root, &images)?;
    let service_images: Vec<ServiceImage> = services
        .iter()
        .map(|name| match specs.iter().find(|s| &s.name == name) {
            Some(s) => ServiceImage {
                name: s.name.clone(),
                image: s.image.clone(),
                repository: s.repository.clone(),
            },
            None => ServiceImage::named(name),
        })
        .collect();
    let t = &config.tags;
    let tag_templates: Vec<String> = [
        &t.dev.tags,
        &t.rc.tags,
        &t.release.tags,
        &t.release.aliases,
        &t.patch.tags,
        &t.patch.aliases,
        &t.nightly.tags,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    Ok(DeployInputs {
        charts,
        manifests: deploy.manifests.clone(),
        env_files: deploy.env_files.clone(),
        // The registries build pushes to and those they are mirrored to.
        matcher: ImageMatcher::with_images(
            &images.all_registries(),
            service_images,
            &tag_templates,
        ),
        registries: images.all_registries(),
        insecure: images.insecure_registries.clone(),
        strict: deploy.strict,
        env_tags: deploy.env_tags.clone(),
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
    crate::say!(
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

pub fn resolve_release(ws: &Workspace, args: &ReleaseChoice) -> Result<Resolved> {
    let config = ws.config();
    let (mut tag, mut version) = (None, None);
    if let Some(stage) = args.stage {
        if ws.repo_opt().is_none() {
            return Err(BadInput("--stage needs a git repository (use -C)".into()).into());
        }
        match stage_tags(ws, stage, args.version.as_deref(), None) {
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
    if !crate::oci::reference::is_valid_tag(&crate::tag::template::for_service(&tag, "service")) {
        return Err(BadInput(format!("--image-tag `{tag}` is not a valid image tag")).into());
    }
    let mut digests = match &args.digests_file {
        Some(f) => read_digests(f)?,
        None => BTreeMap::new(),
    };
    digests.extend(args.digests.clone());
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

/// Tell what was left alone and what deserves a look (stderr; warnings
/// also as annotations in GitHub Actions). Warnings are printed even with
/// `-q`.
pub fn report(plan: &DeployPlan, quiet: bool) {
    if !quiet {
        for s in &plan.skipped {
            crate::say!("skipped subchart {} ({}): {}", s.subchart, s.name, s.reason);
        }
    }
    for w in &plan.warnings {
        crate::say!("warning: {w}");
        if actions::in_actions() {
            actions::command(&actions::annotation(
                "warning",
                &w.message,
                Some(&w.file),
                None,
            ));
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
        crate::output::text::nothing_but_warnings(plan.warnings.len())
    }
}

/// `--strict` (or `deploy.strict`) and the images: what stops the edits
/// before anything is written.
pub fn vet(plan: &DeployPlan, inputs: &DeployInputs, opts: &EditOptions) -> Result<()> {
    refuse_warnings(plan, opts.strict || inputs.strict)?;
    if plan.changed() && !opts.no_verify {
        check_images(plan, &inputs.insecure)?;
    }
    Ok(())
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

/// Narrow the deploy to `selected` services: the deploy edits see a
/// configuration whose services are those alone (the chart keys of the
/// others dropped), so nothing of the others is edited.
pub fn only_services(
    config: &mut config::Config,
    root: &std::path::Path,
    selected: &[String],
) -> Result<()> {
    let images = config.images.clone().unwrap_or_default();
    let mut known: Vec<String> = crate::build::run::service_specs(root, &images)?
        .into_iter()
        .map(|s| s.name)
        .collect();
    for c in config.deploy.iter().flat_map(|d| &d.charts) {
        known.extend(c.images.keys().cloned());
    }
    known.sort();
    known.dedup();
    if let Some(unknown) = selected.iter().find(|s| !known.contains(s)) {
        return Err(BadInput(format!(
            "--service {unknown}: no such service; known services: {}",
            known.join(", ")
        ))
        .into());
    }
    let images = config.images.get_or_insert_with(Default::default);
    images.compose = None;
    images.services = selected
        .iter()
        .map(|name| config::ServiceConfig {
            name: name.clone(),
            dockerfile: None,
            context: None,
            args: Default::default(),
            target: None,
            platforms: None,
        })
        .collect();
    for chart in config.deploy.iter_mut().flat_map(|d| &mut d.charts) {
        chart.images.retain(|service, _| selected.contains(service));
    }
    Ok(())
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

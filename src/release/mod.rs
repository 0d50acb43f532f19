//! `release` (and `plan`): the whole pipeline in one process, each step a
//! library call on the same [`Workspace`], each result typed:
//!
//! 0. the checks (`checks`): what the later steps need, before the first
//!    side effect, so that bad input changes nothing and burns no rc number;
//! 1. tags ([`crate::tag::apply`]); rc and patch: the git tag is created
//!    and pushed first, which reserves the number race-free;
//! 2. images ([`crate::build::run`]), pushed, and tagged only when every
//!    service built; then copied by digest to the registries of
//!    `images.mirrors` ([`crate::promote::mirror`]);
//! 3. release and nightly: the git tag, once every image exists;
//! 4. deploy ([`crate::deploy::gitops`]) in the clone the checks made,
//!    verifying the images again before editing;
//! 5. release, patch (and rc where configured): the GitHub Release of the
//!    git tag with its notes ([`crate::notes`]), created or updated.
//!
//! When the run finishes or fails, the `notify:` destinations are told
//! ([`crate::notify`]); a notification that fails is only a warning.
//!
//! A failure never leaves the deploy repository pointing at images that do
//! not exist: the deploy runs last and only after every image is pushed. A
//! re-run finishes what is missing: unchanged images are only re-tagged, the
//! pull request is updated, not duplicated.

pub mod checks;

use crate::build::run::{self as build, BuildReport, BuildRequest, Selection, TagChoice};
use crate::checks::{Check, ChecksFailed};
use crate::config::{self, StageConfig};
use crate::deploy::gitops::{self, Checkout, GitopsReport, GitopsRequest};
use crate::deploy::plan::{deploy_tag, EditOptions, ReleaseChoice};
use crate::error::BadInput;
use crate::promote::mirror::{MirrorReport, MirrorRequest};
use crate::tag::apply::{self as tag, TagReport, TagRequest};
use crate::tag::stage::Stage;
use crate::workspace::Workspace;
use anyhow::{Context, Result};
use serde::Serialize;

/// What `release` (or `plan`, with `dry_run`) is asked to do.
#[derive(Debug, Clone)]
pub struct ReleaseRequest {
    pub stage: Stage,
    pub version: Option<String>,
    /// Only these services (built and deployed).
    pub services: Vec<String>,
    pub jobs: Option<usize>,
    pub dry_run: bool,
    pub skip_build: bool,
    pub skip_gitops: bool,
    pub no_git_tag: bool,
    pub no_verify: bool,
    /// nightly: run although nothing changed.
    pub force: bool,
    /// The signing key's file (`--sign-key`).
    pub sign_key: Option<std::path::PathBuf>,
}

/// The result of `release` / `plan`: the `--output json` document (fields
/// are a contract: add, never remove).
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseReport {
    pub schema_version: u32,
    pub stage: Stage,
    pub dry_run: bool,
    pub tag: TagReport,
    /// nightly: whether HEAD moved since the previous nightly (always true
    /// for the other stages).
    pub changed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<Check>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildReport>,
    /// The images copied to the registries of `images.mirrors`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<MirrorReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_tag_pushed: Option<TagReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gitops: Option<GitopsReport>,
    /// The GitHub Release of the git tag (planned, in a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_release: Option<crate::notes::publish::GithubReleaseReport>,
    /// What became of each notification.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<crate::notify::Sent>,
    /// Why a step was not planned (a dry run whose check failed): step →
    /// reason, for the text output.
    #[serde(skip)]
    pub not_planned: Vec<(&'static str, String)>,
}

impl ReleaseReport {
    /// The checks that failed.
    pub fn failed_checks(&self) -> Vec<&Check> {
        self.checks.iter().flatten().filter(|c| !c.ok).collect()
    }
}

/// A step of the pipeline failed: its error, with what to do.
#[derive(Debug, thiserror::Error)]
#[error("the {step} step failed; fix it and re-run: finished steps are not repeated")]
pub struct StepFailed {
    pub step: &'static str,
}

/// Run the pipeline, then tell the `notify:` destinations how it ended. A
/// dry run (`plan`) changes nothing, notifies nobody and returns the report
/// even when checks failed (the caller shows it, then fails).
pub fn run(ws: &Workspace, req: &ReleaseRequest) -> Result<ReleaseReport> {
    let mut computed = None;
    let result = pipeline(ws, req, &mut computed);
    if req.dry_run {
        return result;
    }
    match result {
        Ok(mut report) => {
            if report.changed {
                let event = crate::notify::Event::finished(ws, &report);
                report.notifications = crate::notify::send_all(ws, &event);
            }
            Ok(report)
        }
        Err(e) => {
            let event = crate::notify::Event::failed(ws, req.stage, computed.as_ref(), &e);
            crate::notify::send_all(ws, &event);
            Err(e)
        }
    }
}

/// The steps; `computed` gets the tag step's result as soon as there is one
/// (what a failure notification tells).
fn pipeline(
    ws: &Workspace,
    req: &ReleaseRequest,
    computed: &mut Option<TagReport>,
) -> Result<ReleaseReport> {
    refuse_inapplicable(req)?;
    let cfg = ws.config();
    let stage_cfg = cfg
        .stages
        .get(req.stage.as_str())
        .cloned()
        .unwrap_or_default();
    let deploy_enabled =
        cfg.deploy.is_some() && stage_cfg.deploy.unwrap_or(true) && !req.skip_gitops;
    let build_enabled = cfg.images.is_some() && !req.skip_build;
    if !build_enabled && !deploy_enabled && !req.dry_run {
        return Err(BadInput(
            "nothing to release: openim-release.yaml has neither `images:` nor `deploy:`".into(),
        )
        .into());
    }
    if req.no_verify && !deploy_enabled {
        return Err(BadInput(format!(
            "--no-verify skips the image check before the deploy edits; the {} stage \
             deploys nothing here",
            req.stage
        ))
        .into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let pull_request = deploy_enabled
        && stage_cfg
            .mode
            .or(cfg.deploy.as_ref().and_then(|d| d.mode))
            .unwrap_or(config::DeployMode::Pr)
            == config::DeployMode::Pr;
    let mut kept: Option<Checkout> = None;
    let preflight = checks::Preflight {
        ws,
        req,
        stage_cfg: &stage_cfg,
        build_enabled,
        deploy_enabled,
        pull_request,
        runtime: &runtime,
    };

    // 1. Tags; rc and patch reserve their number first, after the checks.
    let reserve = req.stage.is_numbered() && !req.dry_run && !req.no_git_tag;
    let mut checks = Vec::new();
    if reserve {
        checks = preflight.run(None, &mut kept);
        stop_on_failure(&checks, "so the release stopped before changing anything")?;
        ws.step(&format!("reserving the {} number (git tag)", req.stage));
    }
    let mut tag_req = TagRequest::compute(req.stage);
    tag_req.version = req.version.clone();
    tag_req.push = reserve;
    let tag = tag::run(ws, &tag_req).map_err(|e| e.context(StepFailed { step: "tag" }))?;
    *computed = Some(tag.clone());
    let tags = tag.tags.clone();
    tags.first().context("the tag step returned no tags")?;
    let mut report = ReleaseReport {
        schema_version: 1,
        stage: req.stage,
        dry_run: req.dry_run,
        tag: tag.clone(),
        changed: true,
        checks: None,
        build: None,
        mirror: None,
        git_tag_pushed: None,
        gitops: None,
        github_release: None,
        notifications: Vec::new(),
        not_planned: Vec::new(),
    };
    if req.stage == Stage::Nightly && tag.changed == Some(false) && !req.force {
        ws.step("nothing changed since the previous nightly; skipping (use --force to run anyway)");
        report.changed = false;
        return Ok(report);
    }
    if !reserve {
        checks = preflight.run(Some(&tag), &mut kept);
        if !req.dry_run {
            stop_on_failure(&checks, "so the release stopped before changing anything")?;
        }
    }
    let failed = |name: &str| checks.iter().any(|c| !c.ok && c.name == name);

    // 2. Images, tagged all or none: a failed service must not leave
    // `latest` (or any tag of this run) on a mix of new and old images.
    if build_enabled && req.dry_run && failed("services") {
        report
            .not_planned
            .push(("images", "the services check failed".into()));
    } else if build_enabled {
        ws.step(&format!(
            "{} images as {}",
            if req.dry_run {
                "planning the"
            } else {
                "building and pushing"
            },
            tags.join(", ")
        ));
        let build_req = BuildRequest {
            tags: TagChoice {
                tags: tags.clone(),
                ..TagChoice::default()
            },
            select: Selection {
                services: req.services.clone(),
                ..Selection::default()
            },
            jobs: req.jobs,
            dry_run: req.dry_run,
            all_or_none: true,
            sign_key: req.sign_key.clone(),
            ..BuildRequest::default()
        };
        let built = runtime
            .block_on(build::build(ws, &build_req))
            .map_err(|e| e.context(StepFailed { step: "build" }))?;
        if !built.failed().is_empty() {
            crate::output::render::build::report_failures(&built);
            return Err(anyhow::anyhow!(
                "{} did not build, so nothing was tagged, released or deployed",
                built
                    .failed()
                    .iter()
                    .map(|o| o.service.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
            .context(StepFailed { step: "build" }));
        }
        // Built once, pushed to images.registries: copied by digest to the
        // registries of images.mirrors, before the git tag and the deploy.
        let mirrors = cfg.images.as_ref().is_some_and(|i| !i.mirrors.is_empty());
        if mirrors {
            ws.step(&format!(
                "{} the images to {}",
                if req.dry_run {
                    "planning the copy of"
                } else {
                    "copying"
                },
                cfg.images
                    .as_ref()
                    .map(|i| i
                        .mirrors
                        .values()
                        .flatten()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default()
            ));
            let mirror_req = MirrorRequest {
                tags: TagChoice {
                    tags: tags.clone(),
                    ..TagChoice::default()
                },
                services: req.services.clone(),
                jobs: None,
                dry_run: req.dry_run,
                digests: if req.dry_run {
                    Default::default()
                } else {
                    built.digests()
                },
                ..MirrorRequest::default()
            };
            let copied = runtime
                .block_on(crate::promote::mirror::run(ws, &mirror_req))
                .map_err(|e| e.context(StepFailed { step: "mirror" }))?;
            if !copied.failed().is_empty() {
                crate::output::render::promote::report_mirror_failures(&copied);
                return Err(anyhow::anyhow!(
                    "{} could not be copied to every mirror, so nothing was released or \
                     deployed (the images are pushed to {}; a re-run copies what is missing)",
                    copied
                        .failed()
                        .iter()
                        .map(|i| i.service.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    cfg.images
                        .as_ref()
                        .map(|i| i.registries.join(", "))
                        .unwrap_or_default()
                )
                .context(StepFailed { step: "mirror" }));
            }
            report.mirror = Some(copied);
        }
        report.build = Some(built);
    }

    // 3. The git tag of release and nightly, once every image exists.
    if matches!(req.stage, Stage::Release | Stage::Nightly) && !req.dry_run && !req.no_git_tag {
        ws.step(&format!(
            "pushing git tag {}",
            tag.git_tag.as_deref().unwrap_or("?")
        ));
        let mut push = TagRequest::compute(req.stage);
        push.push = true;
        push.prune = req.stage == Stage::Nightly;
        if req.stage == Stage::Release {
            push.version = tag.version.clone();
        }
        report.git_tag_pushed =
            Some(tag::run(ws, &push).map_err(|e| e.context(StepFailed { step: "tag" }))?);
    }

    // 4. Deploy: only what this run built (with --service, the others are
    // left as they are).
    if deploy_enabled && req.dry_run && failed("deploy repository") {
        report
            .not_planned
            .push(("deploy", "the deploy repository check failed".into()));
    } else if deploy_enabled {
        ws.step(if req.dry_run {
            "planning the deploy change"
        } else {
            "updating the deploy repository"
        });
        let mut deploy = || -> Result<GitopsReport> {
            // dev deploys `sha-<sha7>`, not the moving branch tag.
            let image_tag = deploy_tag(cfg, req.stage, &tags, &tag.sha)?;
            let digests = match &report.build {
                Some(b) if !req.dry_run => b.digests(),
                _ => Default::default(),
            };
            let mut gitops_req =
                deploy_request(req, &stage_cfg, image_tag, tag.version.clone(), digests);
            // The checks showed the warnings and skipped subcharts already.
            gitops_req.quiet_report = true;
            // rc and patch candidates replace the pull request branch only
            // with a newer one.
            if req.stage.is_numbered() {
                gitops_req.order = tag.git_tag.clone();
            }
            gitops::run_with(ws, &gitops_req, &mut kept)
        };
        report.gitops = Some(deploy().map_err(|e| e.context(StepFailed { step: "gitops" }))?);
    }

    // 5. The GitHub Release of the git tag, with the notes.
    if crate::notes::publish::publishes(ws, req.stage, req.no_git_tag) {
        ws.step(if req.dry_run {
            "planning the GitHub Release"
        } else {
            "publishing the GitHub Release"
        });
        report.github_release =
            Some(crate::notes::publish::of_release(ws, &report).map_err(|e| {
                e.context(StepFailed {
                    step: "GitHub Release",
                })
            })?);
    }
    report.checks = Some(checks);
    Ok(report)
}

/// The deploy step's request (and its check's): the stage's environment,
/// this run's tag, version and digests (a plan verifies nothing: the images
/// do not exist yet).
pub(crate) fn deploy_request(
    req: &ReleaseRequest,
    stage_cfg: &StageConfig,
    image_tag: String,
    version: Option<String>,
    digests: std::collections::BTreeMap<String, String>,
) -> GitopsRequest {
    GitopsRequest {
        release: ReleaseChoice {
            stage: None,
            version,
            image_tag: Some(image_tag),
            digests_file: None,
            digests,
        },
        mode: stage_cfg.mode,
        base: stage_cfg.base.clone(),
        stage_name: Some(req.stage.to_string()),
        services: req.services.clone(),
        edit: EditOptions {
            no_verify: req.no_verify || req.dry_run,
            dry_run: req.dry_run,
            strict: false,
        },
        quiet_report: false,
        order: None,
    }
}

/// Options that would be silently ignored: refused.
fn refuse_inapplicable(req: &ReleaseRequest) -> Result<()> {
    let refuse = |m: String| Err(BadInput(m).into());
    if req.force && req.stage != Stage::Nightly {
        return refuse(format!(
            "--force applies to the nightly stage (run although nothing changed); the {} \
             stage always runs",
            req.stage
        ));
    }
    if req.no_git_tag && req.stage == Stage::Dev {
        return refuse("--no-git-tag: the dev stage creates no git tag anyway".into());
    }
    if req.jobs.is_some() && req.skip_build {
        return refuse(
            "--jobs sets how many images build at once; with --skip-build none do".into(),
        );
    }
    if req.no_verify && req.skip_gitops {
        return refuse(
            "--no-verify skips the image check before the deploy edits; with --skip-gitops \
             there are none"
                .into(),
        );
    }
    Ok(())
}

/// Stop when any check failed (each is named in the error).
pub fn stop_on_failure(checks: &[Check], consequence: &str) -> Result<()> {
    if checks.iter().all(|c| c.ok) {
        return Ok(());
    }
    Err(ChecksFailed {
        consequence: consequence.into(),
        checks: checks.to_vec(),
    }
    .into())
}

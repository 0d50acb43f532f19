//! `openim-release gitops`: clone the deploy repository, apply the deploy
//! edits, commit, push, and open or update the pull request (or commit on
//! the base branch in push mode). Idempotent: a re-run with nothing new
//! changes nothing and says so.

use crate::cli::{GitopsArgs, GlobalArgs, OutputFormat};
use crate::clients::git::{Author, PushError, Repo};
use crate::clients::github::{api_url_from_env, GitHub, PrAction};
use crate::commands::chart::{
    check_images, deploy_inputs, plan_edits, refuse_warnings, report, resolve_release,
    NOTHING_TO_CHANGE,
};
use crate::config::{self, DeployMode, GitopsConfig};
use crate::deploy::edits::{self, DeployPlan};
use crate::error::{self, BadInput};
use crate::output::actions;
use crate::secret::{github_token_from_env, scrub};
use anyhow::{Context, Result};
use serde::Serialize;

/// How often push mode re-applies the edits after the base moved.
const PUSH_ATTEMPTS: u32 = 5;

#[derive(Debug, Serialize, Default)]
struct GitopsOutput {
    schema_version: u32,
    changed: bool,
    dry_run: bool,
    mode: Option<DeployMode>,
    branch: String,
    base: String,
    commit: Option<String>,
    pushed: bool,
    pr_number: Option<u64>,
    pr_url: Option<String>,
    pr_action: Option<PrAction>,
    files: Vec<String>,
    images: Vec<crate::deploy::edits::ImageChange>,
    api_calls: usize,
    warnings: Vec<crate::deploy::edits::Warning>,
    skipped: Vec<crate::deploy::edits::SkippedChart>,
}

fn template(t: &str, stage: &str, version: &str, tag: &str, services: &str) -> String {
    t.replace("{stage}", stage)
        .replace("{version}", version)
        .replace("{tag}", tag)
        .replace("{services}", services)
}

fn author(cfg: &GitopsConfig) -> Author {
    let (dn, de) = if actions::in_actions() {
        (
            "github-actions[bot]",
            "41898282+github-actions[bot]@users.noreply.github.com",
        )
    } else {
        ("openim-release", "openim-release@users.noreply.github.com")
    };
    Author {
        name: cfg.author_name.clone().unwrap_or_else(|| dn.into()),
        email: cfg.author_email.clone().unwrap_or_else(|| de.into()),
    }
}

/// `https://github.com/openimsdk/helm-charts.git` → `openimsdk/helm-charts`.
fn repository_from_url(url: &str) -> Option<String> {
    let trimmed = url.trim_end_matches('/').trim_end_matches(".git");
    let mut parts = trimmed.rsplit('/');
    let name = parts.next()?;
    let owner = parts.next()?.rsplit(':').next()?;
    (!owner.is_empty() && !name.is_empty()).then(|| format!("{owner}/{name}"))
}

/// Narrow the deploy to `selected` services: the deploy edits see a
/// configuration whose services are those alone (the chart keys of the
/// others dropped), so nothing of the others is edited.
fn only_services(
    config: &mut config::Config,
    root: &std::path::Path,
    selected: &[String],
) -> Result<()> {
    let images = config.images.clone().unwrap_or_default();
    let mut known: Vec<String> = crate::commands::build::service_specs(root, &images)?
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

pub fn run(global: &GlobalArgs, args: &GitopsArgs) -> Result<i32> {
    let dir = match &global.directory {
        Some(d) => d.clone(),
        None => std::env::current_dir().context("reading the current directory")?,
    };
    let repo = Repo::discover(&dir).ok();
    let root = repo
        .as_ref()
        .map_or(dir.clone(), |r| r.root().to_path_buf());
    let mut loaded = config::load(global.config.as_deref(), &root)?;
    let deploy_cfg = loaded.config.deploy.clone().ok_or_else(|| {
        BadInput("no `deploy:` section in openim-release.yaml; see docs/gitops.md".into())
    })?;
    let gitops_cfg = loaded.config.gitops.clone().unwrap_or_default();
    let url = deploy_cfg
        .url
        .clone()
        .ok_or_else(|| BadInput("deploy.url is not set: the deploy repository to clone".into()))?;
    let mut resolved = resolve_release(repo.as_ref(), &loaded.config, &args.release, global.quiet)?;
    if !args.service.is_empty() {
        only_services(&mut loaded.config, &root, &args.service)?;
        // A chart's appVersion is the default tag of every image in it that
        // has no tag of its own: moving it would deploy the others too.
        resolved.release.app_version = None;
    }
    let inputs = deploy_inputs(&loaded, &root)?;
    // The stage's environment (`stages.<stage>`), then `deploy:`.
    let stage_cfg = resolved
        .stage
        .and_then(|s| loaded.config.stages.get(&s.to_string()))
        .cloned()
        .unwrap_or_default();
    if let (Some(stage), Some(false)) = (resolved.stage, stage_cfg.deploy) {
        return Err(BadInput(format!(
            "stages.{stage}.deploy is false: the {stage} stage deploys nothing (release \
             skips this step); set it to true to deploy {stage} builds"
        ))
        .into());
    }
    let base = args
        .base
        .clone()
        .or(stage_cfg.base)
        .or_else(|| deploy_cfg.base.clone())
        .unwrap_or_else(|| "main".into());
    let mode = args
        .mode
        .or(stage_cfg.mode)
        .or(deploy_cfg.mode)
        .unwrap_or(DeployMode::Pr);
    let token = github_token_from_env();
    if let Some(t) = &token {
        actions::mask(t);
    }
    // owner/name for the GitHub API: needed for pull requests only; push
    // mode names the repository by its URL in messages.
    let repository = match (
        deploy_cfg
            .repository
            .clone()
            .or_else(|| repository_from_url(&url)),
        mode,
    ) {
        (Some(r), _) => r,
        (None, DeployMode::Push) => scrub(&url, &[]),
        (None, DeployMode::Pr) => {
            return Err(BadInput(
                "deploy.repository is not set (owner/name): the pull request needs it".into(),
            )
            .into())
        }
    };
    if mode == DeployMode::Pr && token.is_none() && !args.edit.dry_run {
        return Err(BadInput(
            "GITHUB_TOKEN (or GH_TOKEN) is needed to open the pull request; set it, or use --dry-run".into(),
        )
        .into());
    }
    let stage = resolved
        .stage
        .map(|s| s.to_string())
        .or_else(|| args.stage_name.clone())
        .unwrap_or_else(|| "manual".to_string());
    let version = resolved.version.clone().unwrap_or_default();
    let tag = resolved.release.tag.clone();
    let branch = template(
        gitops_cfg
            .branch
            .as_deref()
            .unwrap_or("openim-release/{stage}"),
        &stage,
        &version,
        &tag,
        "",
    );
    let note = |m: &str| {
        if !global.quiet {
            eprintln!("{m}");
        }
    };

    let work = tempfile::Builder::new()
        .prefix("openim-release-deploy-")
        .tempdir()
        .context("creating a work directory")?;
    let checkout = work.path().join("deploy");
    note(&format!("cloning {} ({base})", scrub(&url, &[])));
    let deploy_repo = Repo::clone_shallow(&url, &base, &checkout)?;
    let base_sha = deploy_repo.head()?.sha;

    let mut out = GitopsOutput {
        schema_version: 1,
        dry_run: args.edit.dry_run,
        mode: Some(mode),
        branch: if mode == DeployMode::Pr {
            branch.clone()
        } else {
            base.clone()
        },
        base: base.clone(),
        ..GitopsOutput::default()
    };
    let make_plan = || plan_edits(&checkout, &inputs, &resolved.release);
    let plan = make_plan()?;
    out.changed = plan.changed();
    out.files = plan.files.iter().map(|f| f.path.clone()).collect();
    out.images = plan.images.clone();
    out.warnings = plan.warnings.clone();
    out.skipped = plan.skipped.clone();
    report(&plan, global.quiet);
    refuse_warnings(&plan, args.edit.strict || inputs.strict)?;
    if plan.changed() && !args.edit.no_verify {
        check_images(&plan, &inputs.insecure)?;
    }
    let mut services: Vec<&str> = plan.images.iter().map(|i| i.service.as_str()).collect();
    services.sort();
    services.dedup();
    let services = services.join(", ");
    let default_message = "deploy({stage}): {tag}\n\nServices: {services}";
    let mut message = template(
        gitops_cfg
            .commit_message
            .as_deref()
            .unwrap_or(default_message),
        &stage,
        &version,
        &tag,
        &services,
    );
    let who = author(&gitops_cfg);
    if gitops_cfg.signoff {
        message.push_str(&format!("\n\nSigned-off-by: {} <{}>", who.name, who.email));
    }
    let title = match &gitops_cfg.title {
        Some(t) => template(t, &stage, &version, &tag, &services),
        None => message.lines().next().unwrap_or("deploy").to_string(),
    };
    let body = edits::pr_body(&plan, &stage, resolved.version.as_deref(), &tag);

    if args.edit.dry_run {
        if args.edit.output == OutputFormat::Text {
            print!("{}", edits::unified_diff(&plan));
            if plan.changed() {
                match mode {
                    DeployMode::Pr => println!(
                        "\nwould push branch {branch} and open or update the pull request into {base} of {repository}:\n\ntitle: {title}\n\n{body}"
                    ),
                    DeployMode::Push => println!("\nwould commit on {base} of {repository}: {title}"),
                }
            } else {
                note(&up_to_date(&plan, &format!("{base} already deploys {tag}")));
            }
        }
        return emit(&out, &args.edit.output, args.edit.exit_code);
    }
    if !plan.changed() {
        note(&up_to_date(
            &plan,
            &format!("{base} of {repository} already deploys {tag}"),
        ));
        return emit(&out, &args.edit.output, args.edit.exit_code);
    }

    match mode {
        DeployMode::Pr => {
            edits::write(&checkout, &plan)?;
            let paths: Vec<String> = plan.files.iter().map(|f| f.path.clone()).collect();
            let sha = deploy_repo
                .commit_paths(&paths, &message, &who)?
                .context("the edits produced no change to commit")?;
            out.commit = Some(sha.clone());
            // The branch is rebuilt from the fresh base; it is left alone when
            // it already holds the same change on the same base (re-runs, or a
            // concurrent run that pushed first).
            let same_as_remote = |tip: &Option<String>| -> Result<bool> {
                Ok(match tip {
                    Some(tip) => {
                        deploy_repo.tree_of(tip)? == deploy_repo.tree_of(&sha)?
                            && deploy_repo.parents_of(tip)? == vec![base_sha.clone()]
                    }
                    None => false,
                })
            };
            let mut attempt = 0;
            loop {
                attempt += 1;
                let remote_tip = deploy_repo.fetch_branch("origin", &branch)?;
                if same_as_remote(&remote_tip)? {
                    note(&format!("branch {branch} is already up to date"));
                    out.commit = remote_tip;
                    break;
                }
                match deploy_repo.push_commit("origin", &sha, &branch, true) {
                    Ok(()) => {
                        out.pushed = true;
                        note(&format!("pushed {} to {branch}", &sha[..7]));
                        break;
                    }
                    Err(PushError::Rejected { .. }) if attempt < PUSH_ATTEMPTS => {
                        std::thread::sleep(std::time::Duration::from_millis(
                            200 * u64::from(attempt),
                        ));
                    }
                    Err(e) => {
                        return Err(anyhow::anyhow!(
                            "pushing branch {branch} to {}: {e}",
                            scrub(&url, &[])
                        ));
                    }
                }
            }
            let token = token.as_ref().context("GITHUB_TOKEN is needed")?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            // octocrab spawns its request buffer onto the runtime it is built in.
            let _entered = runtime.enter();
            let gh = GitHub::new(&api_url_from_env(), token, &repository)?;
            let (pr, action) = runtime.block_on(async {
                let (pr, action) = gh
                    .ensure_pull_request(&branch, &base, &title, &body)
                    .await?;
                gh.add_labels(&pr, &gitops_cfg.labels).await?;
                // Reviewers are asked once, when the PR is opened: GitHub drops
                // them from the requested list when they review, and asking
                // again on every update would ping them for each candidate.
                let reviewers: &[String] = if action == PrAction::Created {
                    &gitops_cfg.reviewers
                } else {
                    &[]
                };
                if let Err(e) = gh.request_reviewers(&pr, reviewers).await {
                    // The pull request stands; a reviewer GitHub refuses
                    // (the author, a non-collaborator) is worth a warning.
                    eprintln!(
                        "warning: requesting reviewers {}: {e:#}",
                        gitops_cfg.reviewers.join(", ")
                    );
                }
                anyhow::Ok((pr, action))
            })?;
            out.pr_number = Some(pr.number);
            out.pr_url = pr.html_url.as_ref().map(ToString::to_string);
            out.pr_action = Some(action);
            out.api_calls = gh.calls();
            let what = match action {
                PrAction::Created => "opened",
                PrAction::Updated => "updated",
                PrAction::UpToDate => "already up to date:",
            };
            note(&format!(
                "pull request #{} {what} {}",
                pr.number,
                out.pr_url.as_deref().unwrap_or_default()
            ));
        }
        DeployMode::Push => {
            let mut plan: DeployPlan = plan;
            let mut attempt = 0;
            loop {
                attempt += 1;
                edits::write(&checkout, &plan)?;
                let paths: Vec<String> = plan.files.iter().map(|f| f.path.clone()).collect();
                let Some(sha) = deploy_repo.commit_paths(&paths, &message, &who)? else {
                    break;
                };
                match deploy_repo.push_commit("origin", &sha, &base, false) {
                    Ok(()) => {
                        out.commit = Some(sha.clone());
                        out.pushed = true;
                        note(&format!("pushed {} to {base}", &sha[..7]));
                        break;
                    }
                    Err(PushError::Rejected { .. }) if attempt < PUSH_ATTEMPTS => {
                        note(&format!("{base} moved meanwhile; re-applying on the new tip (attempt {attempt})"));
                        let tip =
                            deploy_repo
                                .fetch_branch("origin", &base)?
                                .with_context(|| {
                                    format!("branch {base} vanished from the deploy repository")
                                })?;
                        deploy_repo.reset_hard(&tip)?;
                        plan = make_plan()?;
                        if !plan.changed() {
                            note(&format!("nothing to change: {base} already deploys {tag}"));
                            out.changed = false;
                            break;
                        }
                    }
                    Err(e) => {
                        return Err(anyhow::anyhow!(
                            "pushing to {base} of {}: {e}",
                            scrub(&url, &[])
                        ));
                    }
                }
            }
        }
    }
    emit(&out, &args.edit.output, false)
}

/// "nothing to change: main already deploys v1", unless there are warnings:
/// then what is configured is not all up to date.
fn up_to_date(plan: &DeployPlan, what: &str) -> String {
    if plan.warnings.is_empty() {
        format!("nothing to change: {what}")
    } else {
        format!(
            "nothing to change, but see the {} above: something configured deploys no configured service",
            edits::count(plan.warnings.len(), "warning", "warnings")
        )
    }
}

fn emit(out: &GitopsOutput, format: &OutputFormat, exit_code: bool) -> Result<i32> {
    let json = serde_json::to_string(out).context("serializing the gitops output")?;
    if *format == OutputFormat::Json {
        println!("{json}");
    } else if let Some(url) = &out.pr_url {
        println!("{url}");
    }
    actions::write_outputs(&[
        ("json", json),
        ("pr-url", out.pr_url.clone().unwrap_or_default()),
        ("changed", out.changed.to_string()),
    ])?;
    Ok(if !out.changed && exit_code {
        NOTHING_TO_CHANGE
    } else {
        error::OK
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_from_urls() {
        assert_eq!(
            repository_from_url("https://github.com/openimsdk/helm-charts.git").as_deref(),
            Some("openimsdk/helm-charts")
        );
        assert_eq!(
            repository_from_url("git@github.com:openimsdk/helm-charts.git").as_deref(),
            Some("openimsdk/helm-charts")
        );
    }
}

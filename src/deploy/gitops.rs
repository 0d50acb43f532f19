//! The deploy as a change in git: clone the deploy repository, apply the
//! edits, commit, push, and open or update the pull request (or commit on
//! the base branch in push mode). Idempotent: a re-run with nothing new
//! changes nothing and says so; concurrent runs end with one pull request.

use crate::clients::git::{Author, PushError, Repo};
use crate::clients::github::{api_url_from_env, GitHub, PrAction};
use crate::config::{DeployMode, GitopsConfig};
use crate::deploy::edits::{self, DeployInputs, DeployPlan, Release};
use crate::deploy::plan::{
    deploy_inputs, only_services, plan_edits, report, resolve_release, vet, EditOptions,
    ReleaseChoice,
};
use crate::error::BadInput;
use crate::failpoint::crash_point;
use crate::output::actions;
use crate::secret::{github_token_from_env, scrub, Secret};
use crate::tag::version;
use crate::workspace::Workspace;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;

/// How often push mode re-applies the edits after the base moved, and pr
/// mode re-pushes its branch after a concurrent run moved it.
const PUSH_ATTEMPTS: u32 = 5;

/// In the pull request's body once its reviewers were asked (invisible in
/// the rendered body).
const REVIEWERS_ASKED: &str = "<!-- openim-release: reviewers requested -->";

/// What `gitops` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct GitopsRequest {
    pub release: ReleaseChoice,
    /// Instead of the stage's or `deploy.mode`.
    pub mode: Option<DeployMode>,
    /// Instead of the stage's or `deploy.base`.
    pub base: Option<String>,
    /// The stage's name in branch names and messages without `release.stage`.
    pub stage_name: Option<String>,
    /// Deploy only these services.
    pub services: Vec<String>,
    pub edit: EditOptions,
    /// Do not show the warnings and skipped subcharts again (a run that
    /// showed them for the same deploy already).
    pub quiet_report: bool,
    /// The git tag this deploy is of (`v3.8.1-rc.3`): recorded in the deploy
    /// commit, so that concurrent runs never replace the pull request branch
    /// of a newer candidate with an older one.
    pub order: Option<String>,
}

/// The trailer of the deploy commit naming the git tag it deploys.
const ORDER_TRAILER: &str = "Openim-Release-Tag";

/// Whether the deploy commit `message` (the branch's tip) is of a newer
/// candidate than `ours`.
fn newer_than(message: &str, ours: &str) -> Option<String> {
    let theirs = message
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(&format!("{ORDER_TRAILER}: ")))?
        .trim();
    let (a, b) = (version::order_of(theirs)?, version::order_of(ours)?);
    (version::compare(&a, &b) == std::cmp::Ordering::Greater).then(|| theirs.to_string())
}

/// The result of `gitops`: the `--output json` document (fields are a
/// contract: add, never remove), and what the text output shows.
#[derive(Debug, Clone, Serialize, Default)]
pub struct GitopsReport {
    pub schema_version: u32,
    pub changed: bool,
    pub dry_run: bool,
    pub mode: Option<DeployMode>,
    pub branch: String,
    pub base: String,
    pub commit: Option<String>,
    pub pushed: bool,
    pub pr_number: Option<u64>,
    pub pr_url: Option<String>,
    pub pr_action: Option<PrAction>,
    pub files: Vec<String>,
    pub images: Vec<crate::deploy::edits::ImageChange>,
    pub api_calls: usize,
    pub warnings: Vec<crate::deploy::edits::Warning>,
    pub skipped: Vec<crate::deploy::edits::SkippedChart>,
    /// The unified diff, the repository (owner/name), the tag deployed, the
    /// pull request's title and body: what a dry run shows.
    #[serde(skip)]
    pub diff: String,
    #[serde(skip)]
    pub repository: String,
    /// The deploy repository's URL (it may carry credentials: scrub before
    /// showing).
    #[serde(skip)]
    pub url: String,
    #[serde(skip)]
    pub tag: String,
    #[serde(skip)]
    pub title: String,
    #[serde(skip)]
    pub body: String,
    /// "nothing to change: …" (when `changed` is false).
    #[serde(skip)]
    pub up_to_date: String,
    /// `(Chart.yaml, version)` of every chart whose version the edits move.
    #[serde(skip)]
    pub chart_versions: Vec<(String, String)>,
    /// The newer candidate (git tag) the pull request branch already
    /// proposes, left as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
}

/// Everything a deploy run works with, worked out before the clone.
struct Setup {
    url: String,
    repository: String,
    base: String,
    mode: DeployMode,
    branch: String,
    stage: String,
    version: String,
    release: Release,
    inputs: DeployInputs,
    gitops: GitopsConfig,
    token: Option<Secret>,
}

/// A clone of the deploy repository's base branch, kept for the run: the
/// checks of `release` plan the edits in it, and its deploy step uses it
/// again (fetching the base first), so a run clones once.
pub struct Checkout {
    _work: tempfile::TempDir,
    dir: std::path::PathBuf,
    repo: Repo,
    url: String,
    base: String,
    base_sha: String,
}

impl Checkout {
    /// Shallow clone of `base` of `url`.
    pub fn clone(url: &str, base: &str, quiet: bool) -> Result<Checkout> {
        let work = tempfile::Builder::new()
            .prefix("openim-release-deploy-")
            .tempdir()
            .context("creating a work directory")?;
        let dir = work.path().join("deploy");
        let cwd = std::env::current_dir().unwrap_or_default();
        if let Some(path) = crate::clients::git::local_path(url, &cwd) {
            if !path.exists() {
                return Err(BadInput(format!(
                    "deploy.url: {url} is a local path ({}) that does not exist; write the \
                     deploy repository's path or URL (https://…, git@host:owner/name.git)",
                    path.display()
                ))
                .into());
            }
        }
        if !quiet {
            crate::say!("cloning {} ({base})", scrub(url, &[]));
        }
        let repo = Repo::clone_shallow(url, base, &dir)?;
        let base_sha = repo.head()?.sha;
        Ok(Checkout {
            _work: work,
            dir,
            repo,
            url: url.to_string(),
            base: base.to_string(),
            base_sha,
        })
    }

    /// The checkout's directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Bring the checkout to the base's tip on the remote again.
    fn refresh(&mut self) -> Result<()> {
        let tip = self
            .repo
            .fetch_branch("origin", &self.base)?
            .with_context(|| format!("branch {} vanished from the deploy repository", self.base))?;
        self.repo.reset_hard(&tip)?;
        self.base_sha = tip;
        Ok(())
    }
}

/// Clone, edit, commit, push, and open or update the pull request.
pub fn run(ws: &Workspace, req: &GitopsRequest) -> Result<GitopsReport> {
    run_with(ws, req, &mut None)
}

/// [`run`] in the clone `kept` holds when it is of the same repository and
/// base (brought to the base's tip first, unless a dry run), else in a new
/// clone, which `kept` then holds.
pub fn run_with(
    ws: &Workspace,
    req: &GitopsRequest,
    kept: &mut Option<Checkout>,
) -> Result<GitopsReport> {
    let setup = prepare(ws, req)?;
    match kept {
        Some(c) if c.url == setup.url && c.base == setup.base => {
            if !req.edit.dry_run {
                c.refresh()?;
            }
        }
        _ => *kept = Some(Checkout::clone(&setup.url, &setup.base, ws.quiet)?),
    }
    let checkout = kept.as_ref().context("the deploy checkout")?;
    deploy(ws, req, &setup, checkout)
}

fn deploy(
    ws: &Workspace,
    req: &GitopsRequest,
    setup: &Setup,
    co: &Checkout,
) -> Result<GitopsReport> {
    let Setup {
        url,
        repository,
        base,
        mode,
        branch,
        stage,
        version,
        release,
        inputs,
        gitops,
        token,
    } = setup;
    let note = |m: &str| {
        if !ws.quiet {
            crate::say!("{m}");
        }
    };
    let checkout = &co.dir;
    let deploy_repo = &co.repo;
    let base_sha = &co.base_sha;

    let tag = release.tag.clone();
    let mut out = GitopsReport {
        schema_version: 1,
        dry_run: req.edit.dry_run,
        mode: Some(*mode),
        branch: if *mode == DeployMode::Pr {
            branch.clone()
        } else {
            base.clone()
        },
        base: base.clone(),
        repository: repository.clone(),
        url: url.clone(),
        tag: tag.clone(),
        ..GitopsReport::default()
    };
    let plan = plan_edits(checkout, inputs, release)?;
    out.changed = plan.changed();
    out.files = plan.files.iter().map(|f| f.path.clone()).collect();
    out.images = plan.images.clone();
    out.warnings = plan.warnings.clone();
    out.skipped = plan.skipped.clone();
    out.chart_versions = plan
        .scalars
        .iter()
        .filter(|s| s.key == "version" && s.file.ends_with("Chart.yaml"))
        .map(|s| (s.file.clone(), s.new.clone()))
        .collect();
    out.diff = edits::unified_diff(&plan);
    if !req.quiet_report {
        report(&plan, ws.quiet);
    }
    vet(&plan, inputs, &req.edit)?;
    let mut services: Vec<&str> = plan.images.iter().map(|i| i.service.as_str()).collect();
    services.sort();
    services.dedup();
    let services = services.join(", ");
    let default_message = "deploy({stage}): {tag}\n\nServices: {services}";
    let mut message = template(
        gitops.commit_message.as_deref().unwrap_or(default_message),
        stage,
        version,
        &tag,
        &services,
    );
    let who = author(gitops);
    if let Some(order) = &req.order {
        message.push_str(&format!("\n\n{ORDER_TRAILER}: {order}"));
    }
    if gitops.signoff {
        message.push_str(&format!("\n\nSigned-off-by: {} <{}>", who.name, who.email));
    }
    out.title = match &gitops.title {
        Some(t) => template(t, stage, version, &tag, &services),
        None => message.lines().next().unwrap_or("deploy").to_string(),
    };
    let shown_version = (!version.is_empty()).then_some(version.as_str());
    out.body = edits::pr_body(&plan, stage, shown_version, &tag);
    out.up_to_date = up_to_date(&plan, &format!("{base} already deploys {tag}"));

    if req.edit.dry_run {
        return Ok(out);
    }
    if !plan.changed() {
        note(&up_to_date(
            &plan,
            &format!("{base} of {repository} already deploys {tag}"),
        ));
        return Ok(out);
    }
    let commit = Commit {
        repo: deploy_repo,
        root: checkout,
        message: &message,
        author: &who,
        url,
        quiet: ws.quiet,
    };
    match mode {
        DeployMode::Pr => {
            let sha = commit
                .make(&plan)?
                .context("the edits produced no change to commit")?;
            match commit.push_branch(&sha, branch, base_sha, req.order.as_deref())? {
                Branch::Newer(theirs) => {
                    // The pull request is the newer candidate's to keep.
                    note(&format!(
                        "branch {branch} already proposes {theirs}, newer than this run's {}: \
                         left as it is",
                        req.order.as_deref().unwrap_or_default()
                    ));
                    out.superseded_by = Some(theirs);
                }
                Branch::Ours { tip, pushed } => {
                    out.commit = Some(tip.clone());
                    out.pushed = pushed;
                    let token = token.as_ref().context("GITHUB_TOKEN is needed")?;
                    // Only the run whose commit is the branch's tip writes the
                    // pull request (a newer run may have replaced it since).
                    if deploy_repo.remote_branch_tip("origin", branch)?.as_deref() == Some(&tip) {
                        open_pull_request(
                            &mut out, token, repository, branch, base, gitops, ws.quiet,
                        )?;
                    } else {
                        note(&format!(
                            "branch {branch} was replaced by a newer candidate meanwhile; its \
                             run writes the pull request"
                        ));
                    }
                }
            }
        }
        DeployMode::Push => {
            let replan = || plan_edits(checkout, inputs, release);
            match commit.push_to_base(plan, base, replan)? {
                Some(sha) => {
                    out.commit = Some(sha);
                    out.pushed = true;
                }
                None => {
                    note(&format!("nothing to change: {base} already deploys {tag}"));
                    out.changed = false;
                }
            }
        }
    }
    Ok(out)
}

/// The configuration, the stage's environment and the release, checked
/// before anything is cloned.
fn prepare(ws: &Workspace, req: &GitopsRequest) -> Result<Setup> {
    let mut config = ws.config().clone();
    let deploy_cfg = config.deploy.clone().ok_or_else(|| {
        BadInput("no `deploy:` section in openim-release.yaml; see docs/gitops.md".into())
    })?;
    let gitops = config.gitops.clone().unwrap_or_default();
    let url = deploy_cfg
        .url
        .clone()
        .ok_or_else(|| BadInput("deploy.url is not set: the deploy repository to clone".into()))?;
    let resolved = resolve_release(ws, &req.release)?;
    let mut release = resolved.release;
    if !req.services.is_empty() {
        only_services(&mut config, ws.root(), &req.services)?;
        // A chart's appVersion is the default tag of every image in it that
        // has no tag of its own: moving it would deploy the others too.
        release.app_version = None;
    }
    let loaded = crate::config::Loaded {
        config,
        path: ws.loaded.path.clone(),
    };
    let inputs = deploy_inputs(&loaded, ws.root())?;
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
    let base = req
        .base
        .clone()
        .or(stage_cfg.base)
        .or_else(|| deploy_cfg.base.clone())
        .unwrap_or_else(|| "main".into());
    let mode = req
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
            let why = if crate::clients::git::local_path(&url, Path::new("/")).is_some() {
                " (deploy.url is a path on this machine, which names no GitHub repository); \
                 set it, or deploy with mode: push"
            } else {
                ""
            };
            return Err(BadInput(format!(
                "deploy.repository is not set (owner/name): the pull request needs it{why}"
            ))
            .into());
        }
    };
    if mode == DeployMode::Pr && token.is_none() && !req.edit.dry_run {
        return Err(BadInput(
            "GITHUB_TOKEN (or GH_TOKEN) is needed to open the pull request; set it, or use --dry-run".into(),
        )
        .into());
    }
    let stage = resolved
        .stage
        .map(|s| s.to_string())
        .or_else(|| req.stage_name.clone())
        .unwrap_or_else(|| "manual".to_string());
    let version = resolved.version.clone().unwrap_or_default();
    let branch = template(
        gitops.branch.as_deref().unwrap_or("openim-release/{stage}"),
        &stage,
        &version,
        &release.tag,
        "",
    );
    Ok(Setup {
        url,
        repository,
        base,
        mode,
        branch,
        stage,
        version,
        release,
        inputs,
        gitops,
        token,
    })
}

/// What became of the pull request branch.
enum Branch {
    /// It holds this run's change: `tip`, pushed by this run or already there.
    Ours { tip: String, pushed: bool },
    /// It holds a newer candidate's (that git tag): left alone.
    Newer(String),
}

/// Committing the edits in the deploy checkout and pushing them.
struct Commit<'a> {
    repo: &'a Repo,
    root: &'a Path,
    message: &'a str,
    author: &'a Author,
    url: &'a str,
    quiet: bool,
}

impl Commit<'_> {
    fn note(&self, m: &str) {
        if !self.quiet {
            crate::say!("{m}");
        }
    }

    /// Write the edits and commit them; `None` when that changes nothing.
    fn make(&self, plan: &DeployPlan) -> Result<Option<String>> {
        crash_point("deploy.commit");
        edits::write(self.root, plan)?;
        let paths: Vec<String> = plan.files.iter().map(|f| f.path.clone()).collect();
        self.repo.commit_paths(&paths, self.message, self.author)
    }

    /// pr mode: replace `branch` with `sha` (one commit on the fresh base),
    /// unless the branch already holds the same change on the same base
    /// (re-runs, or a concurrent run that pushed first), or a newer
    /// candidate than `order`. The replacement is a compare-and-swap against
    /// the tip read here, so a newer candidate pushed meanwhile is never
    /// overwritten by an older one.
    fn push_branch(
        &self,
        sha: &str,
        branch: &str,
        base_sha: &str,
        order: Option<&str>,
    ) -> Result<Branch> {
        let same_as_remote = |tip: &Option<String>| -> Result<bool> {
            Ok(match tip {
                Some(tip) => {
                    self.repo.tree_of(tip)? == self.repo.tree_of(sha)?
                        && self.repo.parents_of(tip)? == vec![base_sha.to_string()]
                }
                None => false,
            })
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let remote_tip = self.repo.fetch_branch("origin", branch)?;
            if same_as_remote(&remote_tip)? {
                self.note(&format!("branch {branch} is already up to date"));
                return Ok(Branch::Ours {
                    tip: remote_tip.unwrap_or_else(|| sha.to_string()),
                    pushed: false,
                });
            }
            if let (Some(tip), Some(ours)) = (&remote_tip, order) {
                if let Some(theirs) = newer_than(&self.repo.commit_message(tip)?, ours) {
                    return Ok(Branch::Newer(theirs));
                }
            }
            crash_point("deploy.push");
            match self
                .repo
                .push_commit_replacing("origin", sha, branch, remote_tip.as_deref())
            {
                Ok(()) => {
                    crash_point("deploy.pushed");
                    self.note(&format!("pushed {} to {branch}", &sha[..7]));
                    return Ok(Branch::Ours {
                        tip: sha.to_string(),
                        pushed: true,
                    });
                }
                Err(PushError::Rejected { .. }) if attempt < PUSH_ATTEMPTS * 4 => {
                    std::thread::sleep(std::time::Duration::from_millis(200 * u64::from(attempt)));
                }
                Err(e) => {
                    return Err(anyhow::anyhow!(
                        "pushing branch {branch} to {}: {e}",
                        scrub(self.url, &[])
                    ));
                }
            }
        }
    }

    /// push mode: commit on `base` and push; when the base moved meanwhile,
    /// re-apply on its new tip (`replan`). The pushed commit, or `None` when
    /// the new tip already deploys this.
    fn push_to_base(
        &self,
        mut plan: DeployPlan,
        base: &str,
        replan: impl Fn() -> Result<DeployPlan>,
    ) -> Result<Option<String>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let Some(sha) = self.make(&plan)? else {
                return Ok(None);
            };
            crash_point("deploy.push");
            match self.repo.push_commit("origin", &sha, base, false) {
                Ok(()) => {
                    crash_point("deploy.pushed");
                    self.note(&format!("pushed {} to {base}", &sha[..7]));
                    return Ok(Some(sha));
                }
                Err(PushError::Rejected { .. }) if attempt < PUSH_ATTEMPTS => {
                    self.note(&format!(
                        "{base} moved meanwhile; re-applying on the new tip (attempt {attempt})"
                    ));
                    let tip = self.repo.fetch_branch("origin", base)?.with_context(|| {
                        format!("branch {base} vanished from the deploy repository")
                    })?;
                    self.repo.reset_hard(&tip)?;
                    plan = replan()?;
                    if !plan.changed() {
                        return Ok(None);
                    }
                }
                Err(e) => {
                    return Err(anyhow::anyhow!(
                        "pushing to {base} of {}: {e}",
                        scrub(self.url, &[])
                    ));
                }
            }
        }
    }
}

/// Open or update the pull request of `branch` into `base`, with labels,
/// and reviewers when it is new.
fn open_pull_request(
    out: &mut GitopsReport,
    token: &Secret,
    repository: &str,
    branch: &str,
    base: &str,
    gitops: &GitopsConfig,
    quiet: bool,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // octocrab spawns its request buffer onto the runtime it is built in.
    let _entered = runtime.enter();
    let gh = GitHub::new(&api_url_from_env(), token, repository)?;
    // Reviewers are asked once: GitHub drops them from the requested list
    // when they review, and asking again on every update would ping them
    // for each candidate. The body records that they were asked (a hidden
    // marker, kept on every update), so a run that stopped between opening
    // the pull request and asking them asks on the next run.
    let asked = |body: Option<&str>| body.is_some_and(|b| b.contains(REVIEWERS_ASKED));
    let with_marker = |asked: bool| {
        if asked {
            format!("{}\n{REVIEWERS_ASKED}\n", out.body.trim_end())
        } else {
            out.body.clone()
        }
    };
    let (pr, action) = runtime.block_on(async {
        crash_point("github.pr");
        let (mut pr, action) = gh
            .ensure_pull_request_with(branch, base, &out.title, |old| with_marker(asked(old)))
            .await?;
        crash_point("github.labels");
        gh.add_labels(&pr, &gitops.labels).await?;
        if !gitops.reviewers.is_empty() && !asked(pr.body.as_deref()) {
            crash_point("github.reviewers");
            if let Err(e) = gh.request_reviewers(&pr, &gitops.reviewers).await {
                // The pull request stands; a reviewer GitHub refuses
                // (the author, a non-collaborator) is worth a warning.
                crate::say!(
                    "warning: requesting reviewers {}: {e:#}",
                    gitops.reviewers.join(", ")
                );
            }
            pr = gh.set_body(&pr, &with_marker(true)).await?;
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
    if !quiet {
        crate::say!(
            "pull request #{} {what} {}",
            pr.number,
            out.pr_url.as_deref().unwrap_or_default()
        );
    }
    Ok(())
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
/// The path a `deploy.url` names on this machine: `file://…`, or anything
/// that is neither a URL with a scheme nor scp-like `[user@]host:path`.
fn repository_from_url(url: &str) -> Option<String> {
    // A path on this machine names no GitHub repository (`/srv/git/x.git`
    // is not owner `git`, name `x`).
    if crate::clients::git::local_path(url, Path::new("/")).is_some() {
        return None;
    }
    let trimmed = url.trim_end_matches('/').trim_end_matches(".git");
    let mut parts = trimmed.rsplit('/');
    let name = parts.next()?;
    let owner = parts.next()?.rsplit(':').next()?;
    (!owner.is_empty() && !name.is_empty()).then(|| format!("{owner}/{name}"))
}

/// "nothing to change: main already deploys v1", unless there are warnings:
/// then what is configured is not all up to date.
fn up_to_date(plan: &DeployPlan, what: &str) -> String {
    if plan.warnings.is_empty() {
        format!("nothing to change: {what}")
    } else {
        crate::output::text::nothing_but_warnings(plan.warnings.len())
    }
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
        for local in [
            "/tmp/rv/deploy6.git",
            "../helm-charts",
            "file:///srv/git/x.git",
        ] {
            assert_eq!(repository_from_url(local), None, "{local}");
        }
    }
}

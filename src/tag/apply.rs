//! Applying the tag rules to a repository: gather the facts from git (tags,
//! which of them are on HEAD's history, the remote's tags where they count),
//! run the pure rules of [`crate::tag::stage`], and with `create`/`push`
//! create and push the stage's git tag — race-safe for rc and patch numbers.

use crate::clients::git::{GitError, Head, Repo};
use crate::config::Config;
use crate::error::BadInput;
use crate::failpoint::crash_point;
use crate::tag::stage::{self, Facts, GitTagState, Request, Stage, TagPlan};
use crate::tag::template::Template;
use crate::tag::version::{self, parse_user_version, Bump};
use crate::workspace::Workspace;
use anyhow::{Context, Result};
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// How often a push of a taken rc number is recomputed and retried.
const MAX_ATTEMPTS: u32 = 20;

/// What `tag` is asked to do.
#[derive(Debug, Clone)]
pub struct TagRequest {
    pub stage: Stage,
    /// `--version` as given (X.Y.Z, a leading `v` accepted).
    pub version: Option<String>,
    pub bump: Option<Bump>,
    /// `--date` (YYYY-MM-DD); default: the workspace's date.
    pub date: Option<String>,
    pub aliases: bool,
    pub branch: Option<String>,
    pub create: bool,
    pub push: bool,
    pub prune: bool,
    pub remote: String,
}

impl TagRequest {
    /// Compute the tags of `stage`, creating nothing.
    pub fn compute(stage: Stage) -> TagRequest {
        TagRequest {
            stage,
            version: None,
            bump: None,
            date: None,
            aliases: true,
            branch: None,
            create: false,
            push: false,
            prune: false,
            remote: "origin".into(),
        }
    }
}

/// What `tag` computed and did: the `--output json` document (fields are a
/// contract: add, never remove).
#[derive(Debug, Clone, Serialize)]
pub struct TagReport {
    pub schema_version: u32,
    pub stage: Stage,
    pub version: Option<String>,
    pub git_tag: Option<String>,
    pub tags: Vec<String>,
    pub sha: String,
    pub branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rc: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_nightly: Option<String>,
    pub git_tag_state: Option<GitTagState>,
    pub created: bool,
    pub pushed: bool,
    /// Nightly git tags deleted by --prune.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<String>,
}

/// What applying the plan did.
#[derive(Debug, Default, Clone, Copy)]
struct Applied {
    created: bool,
    pushed: bool,
}

/// Compute the stage's tags and, as asked, create, push and prune git tags.
pub fn run(ws: &Workspace, req: &TagRequest) -> Result<TagReport> {
    refuse_inapplicable(req)?;
    let request = Request {
        stage: req.stage,
        version: parse_version(req.version.as_deref())?,
        bump: req.bump,
        date: parse_date(ws, req.date.as_deref())?,
        aliases: req.aliases,
        existing: false,
    };
    let repo = ws.repo()?;
    let head = repo.head()?;
    let ctx = Ctx {
        repo,
        config: ws.config(),
        head: &head,
        branch: resolve_branch(req.branch.as_deref(), &head),
        pull_request: resolve_pull_request(req.branch.as_deref()),
        git: GitAction {
            create: req.create,
            push: req.push,
            remote: req.remote.clone(),
        },
        quiet: ws.quiet,
        run_id: &ws.run_id,
    };
    let (plan, applied) = ctx.plan_and_apply(&request)?;
    ctx.note_all(&plan.notes);
    let pruned = if req.prune && plan.stage == Stage::Nightly {
        ctx.prune_nightlies()?
    } else {
        Vec::new()
    };
    Ok(TagReport {
        schema_version: 1,
        stage: plan.stage,
        version: plan.version.as_ref().map(ToString::to_string),
        git_tag: plan.git_tag.clone(),
        tags: plan.tags.clone(),
        sha: plan.sha.clone(),
        branch: plan.branch.clone(),
        rc: plan.rc,
        changed: plan.changed,
        previous_nightly: plan.previous.clone(),
        git_tag_state: plan.git_tag_state,
        created: applied.created,
        pushed: applied.pushed,
        pruned,
    })
}

/// Options that would be silently ignored in this stage: refused.
fn refuse_inapplicable(req: &TagRequest) -> Result<()> {
    let refuse = |m: String| Err(BadInput(m).into());
    if req.version.is_some() && matches!(req.stage, Stage::Dev | Stage::Nightly) {
        return refuse(format!(
            "--version applies to the rc, release and patch stages; the {} stage has no version",
            req.stage
        ));
    }
    if req.prune && req.stage != Stage::Nightly {
        return refuse(format!(
            "--prune deletes old nightly git tags; the {} stage has none to prune",
            req.stage
        ));
    }
    if !req.aliases && !matches!(req.stage, Stage::Release | Stage::Patch) {
        return refuse(format!(
            "--no-aliases applies to the release and patch stages; the {} stage moves no alias",
            req.stage
        ));
    }
    if req.stage == Stage::Dev && (req.create || req.push) {
        return refuse("the dev stage creates no git tag; drop --create/--push".into());
    }
    Ok(())
}

/// The tags of a stage for the steps that build or deploy with them,
/// creating nothing. rc and patch mean the candidate HEAD already carries
/// (the one being built or deployed), not the next number `tag` gives.
pub fn stage_tags(
    ws: &Workspace,
    stage: Stage,
    version: Option<&str>,
    branch: Option<&str>,
) -> Result<TagPlan> {
    let request = Request {
        stage,
        version: parse_version(version)?,
        bump: None,
        date: ws.now.date_naive(),
        aliases: true,
        existing: true,
    };
    let repo = ws.repo()?;
    let head = repo.head()?;
    let ctx = Ctx {
        repo,
        config: ws.config(),
        head: &head,
        branch: resolve_branch(branch, &head),
        pull_request: resolve_pull_request(branch),
        git: GitAction {
            remote: "origin".into(),
            ..GitAction::default()
        },
        quiet: ws.quiet,
        run_id: &ws.run_id,
    };
    let (plan, _) = ctx.plan_and_apply(&request)?;
    ctx.note_all(&plan.notes);
    Ok(plan)
}

fn parse_version(text: Option<&str>) -> Result<Option<semver::Version>> {
    text.map(parse_user_version)
        .transpose()
        .map_err(|e| BadInput(format!("--version: {e}")).into())
}

fn parse_date(ws: &Workspace, text: Option<&str>) -> Result<NaiveDate> {
    match text {
        None => Ok(ws.now.date_naive()),
        Some(t) => NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|e| {
            BadInput(format!(
                "--date `{t}`: {e}; expected YYYY-MM-DD, e.g. 2026-11-25"
            ))
            .into()
        }),
    }
}

/// `--branch`, else GITHUB_HEAD_REF (pull requests), else GITHUB_REF_NAME
/// (unless the workflow runs for a tag), else the checked-out branch. A full
/// ref name (`refs/heads/x`, as `github.ref` gives it) names branch `x`.
fn resolve_branch(explicit: Option<&str>, head: &Head) -> Option<String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    explicit
        .map(str::to_string)
        .or_else(|| env("GITHUB_HEAD_REF"))
        .or_else(|| {
            let is_tag = env("GITHUB_REF_TYPE").is_some_and(|t| t == "tag");
            (!is_tag).then(|| env("GITHUB_REF_NAME")).flatten()
        })
        .or_else(|| head.branch.clone())
        .map(|b| {
            b.strip_prefix("refs/heads/")
                .map(str::to_string)
                .unwrap_or(b)
        })
}

/// The pull request a GitHub Actions run builds (`GITHUB_REF` is
/// `refs/pull/<N>/merge` or `/head` in `pull_request` workflows), unless
/// `--branch` says which branch this is.
fn resolve_pull_request(explicit: Option<&str>) -> Option<u64> {
    if explicit.is_some() {
        return None;
    }
    let reference = std::env::var("GITHUB_REF").ok()?;
    let rest = reference.strip_prefix("refs/pull/")?;
    let (n, kind) = rest.split_once('/')?;
    matches!(kind, "merge" | "head")
        .then(|| n.parse().ok())
        .flatten()
}

struct Ctx<'a> {
    repo: &'a Repo,
    config: &'a Config,
    head: &'a Head,
    branch: Option<String>,
    pull_request: Option<u64>,
    git: GitAction,
    quiet: bool,
    run_id: &'a str,
}

/// What to do with the stage's git tag.
#[derive(Debug, Clone, Default)]
struct GitAction {
    create: bool,
    push: bool,
    remote: String,
}

impl Ctx<'_> {
    fn note(&self, text: &str) {
        if !self.quiet {
            crate::say!("note: {text}");
        }
    }

    fn note_all(&self, notes: &[String]) {
        for n in notes {
            self.note(n);
        }
    }

    /// Compute the plan; with --create/--push, apply it. A push of an rc tag
    /// that a concurrent run took first is recomputed and retried.
    fn plan_and_apply(&self, request: &Request) -> Result<(TagPlan, Applied)> {
        let create = self.git.create || self.git.push;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let facts = self.facts(request.stage)?;
            let plan = stage::plan(&facts, request, &self.config.tags)?;
            if !create {
                return Ok((plan, Applied::default()));
            }
            let git_tag = plan
                .git_tag
                .clone()
                .ok_or_else(|| BadInput(format!("the {} stage creates no git tag", plan.stage)))?;
            let created = self.create_local(&plan, &git_tag)?;
            if !self.git.push {
                return Ok((
                    plan,
                    Applied {
                        created,
                        pushed: false,
                    },
                ));
            }
            let remote = &self.git.remote;
            // Only on the remote, at HEAD (another run pushed it; this
            // checkout has not fetched it): already where it belongs.
            let only_remote = !created && self.repo.tag_commit(&git_tag)?.is_none();
            let pushed = if only_remote {
                Ok(())
            } else {
                crash_point("tag.push");
                self.repo.push_tag(remote, &git_tag)
            };
            match pushed {
                Ok(()) => {
                    crash_point("tag.pushed");
                    let at = self.repo.remote_display(remote);
                    self.note(&if only_remote {
                        format!("git tag {git_tag} is already on {at} at HEAD")
                    } else {
                        format!("pushed git tag {git_tag} to {at}")
                    });
                    return Ok((
                        plan,
                        Applied {
                            created,
                            pushed: true,
                        },
                    ));
                }
                Err(err) => {
                    if created {
                        self.repo.delete_tag(&git_tag)?;
                    }
                    let retry = request.stage.is_numbered()
                        && !err.is_auth()
                        && attempt < MAX_ATTEMPTS
                        && self.remote_reachable(remote);
                    if !retry {
                        return Err(anyhow::Error::new(err).context(format!(
                            "pushing git tag {git_tag} to {}",
                            self.repo.remote_display(remote)
                        )));
                    }
                    self.note(&format!(
                        "{git_tag} could not be pushed ({err}); a concurrent run may have \
                         taken it, recomputing (attempt {attempt} of {MAX_ATTEMPTS})"
                    ));
                    std::thread::sleep(backoff(attempt));
                }
            }
        }
    }

    /// Delete the dated nightly git tags beyond `tags.nightly.keep`.
    fn prune_nightlies(&self) -> Result<Vec<String>> {
        let cfg = &self.config.tags.nightly;
        let re = Template::parse(&cfg.git_tag)
            .context("parsing tags.nightly.git_tag")?
            .matcher();
        let facts = self.facts(Stage::Nightly)?;
        let mut dated: Vec<(String, String)> = facts
            .tags
            .iter()
            .filter_map(|t| {
                let date = re.captures(t)?.name("date")?.as_str().to_string();
                Some((date, t.clone()))
            })
            .collect();
        dated.sort_by(|a, b| b.cmp(a));
        let doomed: Vec<String> = dated
            .into_iter()
            .skip(cfg.keep as usize)
            .map(|(_, t)| t)
            .filter(|t| !facts.head_tags.contains(t))
            .collect();
        for t in &doomed {
            if self.repo.tag_commit(t)?.is_some() {
                self.repo.delete_tag(t)?;
            }
            if self.git.push {
                self.repo
                    .delete_remote_tag(&self.git.remote, t)
                    .map_err(|e| {
                        anyhow::anyhow!("deleting old nightly tag {t} on {}: {e}", self.git.remote)
                    })?;
            }
            self.note(&format!("pruned old nightly tag {t}"));
        }
        Ok(doomed)
    }

    fn remote_reachable(&self, remote: &str) -> bool {
        self.repo.remote_tags(remote).is_ok()
    }

    /// Create the local tag unless it already points at HEAD. Returns whether
    /// it was created.
    fn create_local(&self, plan: &TagPlan, git_tag: &str) -> Result<bool> {
        match self.repo.tag_commit(git_tag)? {
            Some(c) if c == self.head.sha => {
                self.note(&format!("git tag {git_tag} already exists at HEAD"));
                Ok(false)
            }
            Some(c) => Err(BadInput(format!(
                "git tag {git_tag} already exists at {} (not HEAD {}); a version is \
                 released from one commit only — pick another --version or check out {}",
                short(&c),
                short(&self.head.sha),
                short(&c)
            ))
            .into()),
            None if plan.git_tag_state == Some(GitTagState::Elsewhere) => Err(BadInput(format!(
                "git tag {git_tag} already exists on remote `{}` at another commit than \
                 HEAD; pick another --version",
                self.git.remote
            ))
            .into()),
            None if plan.git_tag_state == Some(GitTagState::AtHead) => {
                // Only on the remote, at HEAD: nothing to create.
                Ok(false)
            }
            None => {
                let title = match &plan.version {
                    Some(v) => format!("openim-release {} {v}", plan.stage),
                    None => format!("openim-release {}", plan.stage),
                };
                // The run line makes every tag object unique: two concurrent
                // runs in the same second must not produce the same object,
                // or both would see their push of it succeed.
                let message = format!("{title}\n\nrun: {}\n", self.run_id);
                self.repo.create_tag(git_tag, &self.head.sha, &message)?;
                self.note(&format!(
                    "created git tag {git_tag} at {}",
                    short(&self.head.sha)
                ));
                Ok(true)
            }
        }
    }

    /// The facts the rules need. Tags come from the local repository; the
    /// remote's are added when pushing (to see concurrent runs), in a
    /// shallow clone (which lacks them) and in a clone without version tags
    /// (`git clone --no-tags`), so that every way of asking gives the answer
    /// `--push` acts on.
    fn facts(&self, stage: Stage) -> Result<Facts> {
        let mut facts = Facts {
            head_sha: self.head.sha.clone(),
            branch: self.branch.clone(),
            pull_request: self.pull_request,
            ..Facts::default()
        };
        if stage == Stage::Dev {
            return Ok(facts);
        }
        if stage == Stage::Patch {
            facts.branches = self.repo.branch_names()?;
        }
        let local = self.repo.tags()?;
        let tags_cfg = &self.config.tags;
        let nightly = Template::parse(&tags_cfg.nightly.git_tag)
            .context("parsing tags.nightly.git_tag")?
            .matcher();
        let prefixes = stage::candidate_prefixes(tags_cfg);
        let is_version = |name: &str| {
            prefixes
                .iter()
                .any(|p| version::classify(name, p).is_some())
        };
        let relevant = |name: &str| match stage {
            Stage::Release | Stage::Rc | Stage::Patch => is_version(name),
            Stage::Nightly => name == tags_cfg.nightly.marker || nightly.is_match(name),
            Stage::Dev => false,
        };
        let mut head_tags = self
            .repo
            .tags_pointing_at(&self.head.sha, local.iter().filter(|t| relevant(&t.name)))?;
        // A version tag of a tree or a blob is no release: left out.
        let mut names: BTreeSet<String> = local
            .into_iter()
            .map(|t| t.name)
            .filter(|n| !is_version(n) || self.repo.tag_is_commit(n))
            .collect();
        // Commits of the tags only the remote has, for the ancestry questions.
        let mut remote_only: HashMap<String, String> = HashMap::new();

        let remote = &self.git.remote;
        let shallow = self.repo.is_shallow();
        let versioned = matches!(stage, Stage::Rc | Stage::Release | Stage::Patch);
        let untagged =
            versioned && !names.iter().any(|n| is_version(n)) && self.repo.has_remote(remote);
        if shallow || self.git.push || untagged {
            let listed = match self.repo.remote_tags(remote) {
                Ok(listed) => listed,
                Err(e) if shallow => {
                    return Err(GitError::ShallowWithoutTags {
                        remote: remote.clone(),
                        reason: format!("{e:#}"),
                    }
                    .into())
                }
                Err(e) if untagged && !self.git.push => {
                    return Err(GitError::NoVersionTags {
                        remote: remote.clone(),
                        prefix: tags_cfg.prefix().to_string(),
                        reason: format!("{e:#}"),
                    }
                    .into())
                }
                Err(e) => return Err(e),
            };
            if untagged && listed.iter().any(|t| is_version(&t.name)) {
                self.note(&format!(
                    "this clone has no version tags; using the tags of {}",
                    self.repo.remote_display(remote)
                ));
            }
            for t in listed {
                if t.commit == self.head.sha && relevant(&t.name) && !head_tags.contains(&t.name) {
                    head_tags.push(t.name.clone());
                }
                if !names.contains(&t.name) {
                    remote_only.insert(t.name.clone(), t.commit);
                }
                names.insert(t.name);
            }
        }
        facts.tags = names.into_iter().collect();
        facts.head_tags = head_tags;
        let asked =
            stage::ancestry_questions(stage, &facts.tags, tags_cfg, facts.branch.as_deref());
        (facts.reachable, facts.unknown) =
            self.repo
                .reachable_from(&self.head.sha, &asked, &remote_only)?;
        Ok(facts)
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

/// Growing, jittered waits so concurrent runs spread out.
fn backoff(attempt: u32) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = u64::from((nanos ^ std::process::id().wrapping_mul(2_654_435_761)) % 200);
    Duration::from_millis(50 * u64::from(attempt.min(10)) + jitter)
}

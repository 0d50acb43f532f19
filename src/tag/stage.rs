//! The tag rules of each stage: from plain facts about a repository to the
//! version, git tag and image tags of a stage. Pure logic, no I/O.
//!
//! The rules, each stated in docs/tag.md:
//! - dev: the branch as a tag, never one that another stage owns;
//! - rc: continue an open candidate series on HEAD's history, else the next
//!   version of the branch's release line, else a bump of the highest release;
//! - release: the stable tag at HEAD, the rc at HEAD, or an rc on HEAD's
//!   history newer than every release of its line — never a foreign rc;
//! - patch: the next `vX.Y.Z-patch.N` of a released X.Y.Z;
//! - nightly: date and sha, `changed` against the previous nightly.

use crate::config::{AliasPolicy, TagsConfig};
use crate::oci::reference::is_valid_tag;
use crate::tag::branch::{distinct_branch_tag, sanitize_branch};
use crate::tag::template::{Template, TemplateError, Values};
use crate::tag::version::{bump, classify, unread_releases_from, Bump, TagKind, VersionTags};
use chrono::NaiveDate;
use regex::Regex;
use semver::Version;
use serde::Serialize;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Branch builds: the branch name and `sha-<7 hex>`.
    Dev,
    /// Release candidates of the upcoming version: `vX.Y.Z-rc.N`, `rcN` (alias: test).
    #[value(alias = "test")]
    Rc,
    /// Production releases: `release-vX.Y.Z`, `vX.Y.Z`, `X.Y.Z` and aliases (alias: prod).
    #[value(alias = "prod")]
    Release,
    /// Hotfixes of a released X.Y.Z: `vX.Y.Z-patch.N` (alias: hotfix).
    #[value(alias = "hotfix")]
    Patch,
    /// Scheduled builds: `nightly-YYYYMMDD-<sha7>` and `nightly`.
    Nightly,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Dev => "dev",
            Stage::Rc => "rc",
            Stage::Release => "release",
            Stage::Patch => "patch",
            Stage::Nightly => "nightly",
        }
    }

    /// Stages whose git tag takes the next free number (`-rc.N`, `-patch.N`):
    /// reserved by pushing it, race-safe.
    pub fn is_numbered(self) -> bool {
        matches!(self, Stage::Rc | Stage::Patch)
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the rules need to know about the repository.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Full sha of HEAD.
    pub head_sha: String,
    /// The branch being built, if known.
    pub branch: Option<String>,
    /// The pull request being built (GitHub Actions), if any: its merge
    /// commit is no branch's code.
    pub pull_request: Option<u64>,
    /// Every tag name in the repository (and its remote, where consulted).
    pub tags: Vec<String>,
    /// The tags that point at HEAD (peeled).
    pub head_tags: Vec<String>,
    /// The answers to [`ancestry_questions`]: those of the asked tags whose
    /// commit is HEAD or one of its ancestors.
    pub reachable: BTreeSet<String>,
    /// Asked tags whose place cannot be told here (a shallow clone's history
    /// is cut): a rule that depends on one refuses rather than guess.
    pub unknown: BTreeSet<String>,
    /// The repository's branch names, local and remote-tracking (patch:
    /// to name the branch of a release in a hint). May be empty.
    pub branches: Vec<String>,
}

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct Request {
    pub stage: Stage,
    pub version: Option<Version>,
    /// `--bump`; `None` when not given (patch where a bump applies).
    pub bump: Option<Bump>,
    pub date: NaiveDate,
    pub aliases: bool,
    /// rc and patch: the tag HEAD already carries (the candidate being
    /// built or deployed), not the next number.
    pub existing: bool,
}

/// Where the stage's git tag stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GitTagState {
    /// It does not exist yet.
    New,
    /// It exists and points at HEAD: creating it again is a no-op.
    AtHead,
    /// It exists and points at another commit.
    Elsewhere,
}

/// The result of the rules for one stage.
#[derive(Debug, Clone)]
pub struct TagPlan {
    pub stage: Stage,
    pub version: Option<Version>,
    pub git_tag: Option<String>,
    pub git_tag_state: Option<GitTagState>,
    pub tags: Vec<String>,
    pub sha: String,
    pub branch: Option<String>,
    /// rc and patch stages: the candidate or patch number.
    pub rc: Option<u64>,
    /// nightly stage: whether HEAD differs from the previous nightly.
    pub changed: Option<bool>,
    /// nightly stage: the git tag taken as the previous nightly.
    pub previous: Option<String>,
    /// Things worth telling the user (on stderr).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "cannot tell which branch this is: HEAD is detached and neither --branch, \
         GITHUB_HEAD_REF nor a branch GITHUB_REF_NAME is set (a tag's GITHUB_REF_NAME \
         names no branch); pass --branch NAME"
    )]
    NoBranch,
    #[error("version {0} is already released (tag {1} exists); {2}")]
    AlreadyReleased(Version, String, String),
    #[error(
        "cannot tell which version to release: {0}; pass --version X.Y.Z \
         (or check out the commit of the release candidate to promote)"
    )]
    NoReleaseVersion(String),
    #[error("cannot tell which release to patch: {0}")]
    NoPatchVersion(String),
    #[error("cannot tell which version this candidate is of: {0}")]
    StaleLine(String),
    #[error(
        "version {0} is not released (no tag {1}); a patch follows a release: pass \
         --version of a released X.Y.Z, or use --stage rc / release"
    )]
    NotReleased(Version, String),
    #[error("{0}; pass --version X.Y.Z to say which")]
    SeveralCarried(String),
    #[error("--bump does not apply {0}; leave it out")]
    BumpNotApplicable(String),
    #[error(
        "HEAD carries no {stage} tag{of}; this command uses the {stage} this commit already \
         carries: create it first with `openim-release tag --stage {stage} --push` \
         (`openim-release release --stage {stage}` does both)"
    )]
    NoCurrentTag { stage: Stage, of: String },
    #[error(
        "this clone's history is cut short (shallow), so it cannot tell whether {0} is on \
         HEAD's history, and the {1} depends on it; fetch the history with \
         `git fetch --unshallow` (in GitHub Actions `fetch-depth: 0` on actions/checkout), \
         or pass --version X.Y.Z"
    )]
    UnknownHistory(String, &'static str),
    #[error("{0}")]
    PrefixMismatch(String),
    #[error(
        "the answer would be {computed}, but tags in a form `tag` does not read name it or a \
         newer version: {tags}; computed from the tags it reads, the version would go \
         backwards. Pass --version X.Y.Z to say which version this is{hint} (see \
         docs/tag.md, \"Tags that are not read\")"
    )]
    UnreadReleases {
        tags: String,
        computed: String,
        hint: String,
    },
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("tag template `{template}` renders `{rendered}`, which is not a valid image tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})")]
    InvalidTag { template: String, rendered: String },
    #[error(
        "dev tag `{0}` is a tag the {1} stage owns, even in its hashed form; change \
         tags.dev.tags"
    )]
    ReservedDevTag(String, String),
}

/// What a release branch name fixes: a line X.Y, or one version X.Y.Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BranchTarget {
    pub major: u64,
    pub minor: u64,
    pub patch: Option<u64>,
}

impl BranchTarget {
    fn contains(&self, v: &Version) -> bool {
        v.major == self.major && v.minor == self.minor && self.patch.is_none_or(|p| v.patch == p)
    }

    fn in_line(&self, v: &Version) -> bool {
        v.major == self.major && v.minor == self.minor
    }
}

impl std::fmt::Display for BranchTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.patch {
            Some(p) => write!(f, "{}.{}.{p}", self.major, self.minor),
            None => write!(f, "{}.{}", self.major, self.minor),
        }
    }
}

/// The line or version a branch name fixes through `tags.release_branch`
/// (named groups `major`, `minor` and the optional `patch`).
pub fn branch_target(branch: Option<&str>, pattern: &str) -> Option<BranchTarget> {
    let re = Regex::new(pattern).ok()?;
    let branch = branch?;
    let caps = re.captures(branch)?;
    let num = |name: &str| caps.name(name).and_then(|m| m.as_str().parse::<u64>().ok());
    Some(BranchTarget {
        major: num("major")?,
        minor: num("minor")?,
        patch: num("patch"),
    })
}

/// The tags whose place in HEAD's history the rules of `stage` need
/// ([`Facts::reachable`]): the rc tags of unreleased versions (rc, release),
/// the stable tags (patch). Asking only these keeps `tag` fast on large
/// repositories.
pub fn ancestry_questions(
    stage: Stage,
    tags: &[String],
    cfg: &TagsConfig,
    branch: Option<&str>,
) -> Vec<String> {
    let prefix = resolve_prefix(tags, cfg.prefix.as_deref())
        .map(|(p, _)| p)
        .unwrap_or_else(|_| cfg.prefix().to_string());
    let versions = VersionTags::from_names(tags.iter().map(String::as_str), &prefix);
    // rc on a line branch: also the line's releases (is the latest one on
    // HEAD's history?).
    let line = match (stage, branch_target(branch, &cfg.release_branch)) {
        (Stage::Rc, Some(t)) if t.patch.is_none() => Some(t),
        _ => None,
    };
    match stage {
        Stage::Rc | Stage::Release => versions
            .unreleased_rc_tags()
            .map(|(name, _, _)| name.to_string())
            .chain(
                versions
                    .stable_tags()
                    .filter(|(_, v)| line.is_some_and(|t| t.in_line(v)))
                    .map(|(name, _)| name.to_string()),
            )
            .collect(),
        Stage::Patch => versions
            .stable_tags()
            .map(|(name, _)| name.to_string())
            .collect(),
        Stage::Dev | Stage::Nightly => Vec::new(),
    }
}

/// The prefixes a version tag may carry under `cfg`: the configured one, or
/// both usual conventions (`v3.8.1`, `3.8.1`) while detecting.
pub fn candidate_prefixes(cfg: &TagsConfig) -> Vec<&str> {
    match &cfg.prefix {
        Some(p) => vec![p.as_str()],
        None => vec!["v", ""],
    }
}

/// The prefix of the repository's version tags: the configured one, else
/// the convention of its releases (`v`, or none), with a note saying so
/// where it is not the usual `v`. Refused when releases exist under a
/// convention the configured prefix skips, newer than any it sees: their
/// versions would be invisible (an rc of a released version, `latest`
/// moved below the newest release).
pub fn resolve_prefix(
    tags: &[String],
    configured: Option<&str>,
) -> Result<(String, Option<String>), PlanError> {
    let highest = |prefix: &str| {
        VersionTags::from_names(tags.iter().map(String::as_str), prefix)
            .highest_released(|_| true)
            .cloned()
    };
    let shown = |prefix: &str, v: &Version| format!("{prefix}{v}");
    let name = |prefix: &str| {
        if prefix.is_empty() {
            "no prefix".to_string()
        } else {
            format!("prefix `{prefix}`")
        }
    };
    let (v, bare) = (highest("v"), highest(""));
    match configured {
        Some(p) => {
            let mine = highest(p);
            for alt in ["v", ""].into_iter().filter(|alt| *alt != p) {
                let Some(theirs) = highest(alt) else { continue };
                if mine.as_ref().is_none_or(|m| &theirs > m) {
                    return Err(PlanError::PrefixMismatch(format!(
                        "tags.prefix is `{p}`, but the newest release is tagged `{}` ({}){}: \
                         set tags.prefix to `{alt}` (or remove it, and the convention is \
                         detected from the tags)",
                        shown(alt, &theirs),
                        name(alt),
                        match &mine {
                            Some(m) => format!(", newer than `{}`", shown(p, m)),
                            None => String::new(),
                        }
                    )));
                }
            }
            Ok((p.to_string(), None))
        }
        None => match (v, bare) {
            (_, None) => Ok(("v".to_string(), None)),
            (None, Some(b)) => Ok((
                String::new(),
                Some(format!(
                    "version tags have no prefix here (`{b}`): git tags are created the same way"
                )),
            )),
            (Some(v), Some(b)) if b > v => Ok((
                String::new(),
                Some(format!(
                    "the newest releases are tagged without a prefix (`{b}`; the `v` tags end at \
                     `v{v}`): using no prefix, for git tags too (set tags.prefix to choose)"
                )),
            )),
            (Some(v), Some(b)) => Ok((
                "v".to_string(),
                Some(format!(
                    "the newest releases are tagged `v{v}` (the tags without a prefix end at \
                     `{b}`): using `v` (set tags.prefix to choose)"
                )),
            )),
        },
    }
}

/// Apply the rules of `req.stage` to `facts`.
pub fn plan(facts: &Facts, req: &Request, cfg: &TagsConfig) -> Result<TagPlan, PlanError> {
    let (prefix, prefix_note) = match resolve_prefix(&facts.tags, cfg.prefix.as_deref()) {
        Ok(found) => found,
        // dev and nightly have no version: a mismatch is not theirs to refuse.
        Err(_) if matches!(req.stage, Stage::Dev | Stage::Nightly) => (cfg.prefix().into(), None),
        Err(e) => return Err(e),
    };
    let resolved = TagsConfig {
        prefix: Some(prefix),
        ..cfg.clone()
    };
    let cfg = &resolved;
    let mut values = Values::default();
    let sha7: String = facts.head_sha.chars().take(7).collect();
    values
        .set("sha", facts.head_sha.clone())
        .set("sha7", sha7)
        .set("date", req.date.format("%Y%m%d").to_string());
    if let Some(b) = &facts.branch {
        values.set("branch", sanitize_branch(b));
    }
    let mut plan = TagPlan {
        stage: req.stage,
        version: None,
        git_tag: None,
        git_tag_state: None,
        tags: Vec::new(),
        sha: facts.head_sha.clone(),
        branch: facts.branch.clone(),
        rc: None,
        changed: None,
        previous: None,
        notes: Vec::new(),
    };
    if matches!(req.stage, Stage::Rc | Stage::Release | Stage::Patch) {
        plan.notes.extend(prefix_note);
    }
    let stage = req.stage.as_str();
    if req.bump.is_some() && req.stage != Stage::Rc {
        return Err(PlanError::BumpNotApplicable(format!(
            "to the {stage} stage (only rc versions are bumped)"
        )));
    }
    let versions = VersionTags::from_names(facts.tags.iter().map(String::as_str), cfg.prefix());
    let target = branch_target(facts.branch.as_deref(), &cfg.release_branch);
    match req.stage {
        Stage::Dev => {
            let Some(branch) = &facts.branch else {
                return Err(PlanError::NoBranch);
            };
            // A pull request's build is of its merge commit, not of its head
            // branch: `pr-N`, as docker/metadata-action tags it, so that the
            // branch's own image (`main`, a fork's `main`) is not replaced.
            if let Some(n) = facts.pull_request {
                values.set("branch", format!("pr-{n}"));
                plan.notes.push(format!(
                    "pull request #{n} (head branch `{branch}`): its dev tag is `pr-{n}`, \
                     not the branch's; pass --branch to tag it as a branch"
                ));
            }
            if let Some((tag, owner)) = reserved_branch_tag(&values, cfg) {
                let distinct = distinct_branch_tag(branch);
                plan.notes.push(format!(
                    "branch `{branch}` gives `{tag}`, a tag the {owner} stage owns; its dev \
                     tag is `{distinct}` instead"
                ));
                values.set("branch", distinct);
                if let Some((tag, owner)) = reserved_branch_tag(&values, cfg) {
                    return Err(PlanError::ReservedDevTag(tag, owner.to_string()));
                }
            }
            plan.tags = render_all(&cfg.dev.tags, &values, stage)?;
        }
        Stage::Rc | Stage::Patch if req.existing => {
            let (version, n) = carried(facts, req, cfg)?;
            set_version(&mut values, &version);
            values.set("n", n.to_string());
            let git_tag = numbered_tag(cfg, req.stage, &version, n);
            plan.git_tag_state = Some(state_of(facts, &git_tag));
            plan.git_tag = Some(git_tag);
            plan.rc = Some(n);
            let req = &without_superseded_aliases(req, cfg, &versions, &version, n, &mut plan);
            plan.tags = numbered_image_tags(cfg, req, &values, &version, &versions)?;
            plan.version = Some(version);
        }
        Stage::Rc => {
            let version = rc_version(facts, req, cfg, &versions, target, &mut plan.notes)?;
            if let Some(tag) = versions.release_tag(&version) {
                return Err(PlanError::AlreadyReleased(
                    version,
                    tag.to_string(),
                    match target {
                        Some(t) if t.patch.is_some() => format!(
                            "branch {} releases {t} only: make hotfixes with --stage patch, \
                             or pass --version for another version",
                            facts.branch.as_deref().unwrap_or_default()
                        ),
                        _ => "pass a higher --version or --bump to pick the next version".into(),
                    },
                ));
            }
            let n = versions.highest_rc(&version).map_or(0, |n| n + 1);
            set_version(&mut values, &version);
            values.set("n", n.to_string());
            let git_tag = numbered_tag(cfg, Stage::Rc, &version, n);
            plan.git_tag_state = Some(state_of(facts, &git_tag));
            plan.git_tag = Some(git_tag);
            plan.rc = Some(n);
            plan.tags = render_all(&cfg.rc.tags, &values, stage)?;
            plan.version = Some(version);
        }
        Stage::Patch => {
            let version = patch_version(facts, req, cfg, &versions, target)?;
            let n = versions.highest_patch(&version).map_or(1, |n| n + 1);
            set_version(&mut values, &version);
            values.set("n", n.to_string());
            let git_tag = numbered_tag(cfg, Stage::Patch, &version, n);
            plan.git_tag_state = Some(state_of(facts, &git_tag));
            plan.git_tag = Some(git_tag);
            plan.rc = Some(n);
            // A new patch of the code of an older patch (HEAD carries it).
            let carried =
                VersionTags::from_names(facts.head_tags.iter().map(String::as_str), cfg.prefix())
                    .highest_patch(&version);
            let req = match carried {
                Some(m) => &without_superseded_aliases(req, cfg, &versions, &version, m, &mut plan),
                None => req,
            };
            plan.tags = numbered_image_tags(cfg, req, &values, &version, &versions)?;
            plan.version = Some(version);
        }
        Stage::Release => {
            let version = release_version(facts, req, cfg, &versions, target)?;
            set_version(&mut values, &version);
            let git_tag = format!("{}{version}", cfg.prefix());
            let state = state_of(facts, &git_tag);
            if state == GitTagState::Elsewhere {
                plan.notes.push(format!(
                    "git tag {git_tag} already exists on another commit than HEAD"
                ));
            }
            plan.git_tag_state = Some(state);
            plan.git_tag = Some(git_tag.clone());
            plan.tags = render_all(&cfg.release.tags, &values, stage)?;
            // A patch of this version is newer content than the release: the
            // aliases stay with the patch that moved them (a re-run of the
            // release must not move `latest` back to older images).
            let patched = versions.highest_patch(&version);
            if let (true, Some(n)) = (req.aliases, patched) {
                plan.notes.push(format!(
                    "aliases left out: {git_tag}-patch.{n} is newer than {git_tag}, so they stay with its patches"
                ));
            }
            if req.aliases && patched.is_none() {
                add_aliases(
                    &mut plan.tags,
                    &cfg.release.aliases,
                    cfg,
                    &values,
                    &version,
                    &versions,
                )?;
            }
            plan.version = Some(version);
        }
        Stage::Nightly => {
            plan.tags = render_all(&cfg.nightly.tags, &values, stage)?;
            let tpl = Template::parse(&cfg.nightly.git_tag)?;
            let git_tag = render_one(&tpl, &values, stage)?;
            let previous = previous_nightly(facts, &tpl, &cfg.nightly.marker);
            plan.changed = Some(match &previous {
                Some(p) => !facts.head_tags.contains(p),
                None => true,
            });
            plan.previous = previous;
            plan.git_tag_state = Some(state_of(facts, &git_tag));
            plan.git_tag = Some(git_tag);
        }
    }
    if let (Stage::Rc | Stage::Release | Stage::Patch, false, Some(v)) =
        (req.stage, req.existing, &plan.version)
    {
        check_unread_releases(facts, req, cfg, v, &mut plan.notes)?;
    }
    Ok(plan)
}

/// A patch whose code is patch `m`'s moves no alias when a newer patch of
/// the version exists: re-running an old patch's job (to rebuild it, to add
/// a platform), or patching its commit again, must not move `latest`, `X.Y`
/// and `X` back to older code. The request without aliases then, and a note.
fn without_superseded_aliases(
    req: &Request,
    cfg: &TagsConfig,
    versions: &VersionTags,
    version: &Version,
    m: u64,
    plan: &mut TagPlan,
) -> Request {
    let newest = versions.highest_patch(version);
    match newest {
        Some(h) if req.stage == Stage::Patch && req.aliases && h > m => {
            let p = cfg.prefix();
            plan.notes.push(format!(
                "aliases left out: HEAD is {p}{version}-patch.{m}, and {p}{version}-patch.{h} \
                 is newer, so they stay with it"
            ));
            Request {
                aliases: false,
                ..req.clone()
            }
        }
        _ => req.clone(),
    }
}

/// The git tag of an rc or patch: `v3.8.4-rc.0`, `v3.8.3-patch.17`.
fn numbered_tag(cfg: &TagsConfig, stage: Stage, version: &Version, n: u64) -> String {
    format!("{}{version}-{}.{n}", cfg.prefix(), stage.as_str())
}

/// Image tags of an rc or patch (a patch adds the aliases it may move).
fn numbered_image_tags(
    cfg: &TagsConfig,
    req: &Request,
    values: &Values,
    version: &Version,
    versions: &VersionTags,
) -> Result<Vec<String>, PlanError> {
    let stage = req.stage.as_str();
    if req.stage == Stage::Rc {
        return render_all(&cfg.rc.tags, values, stage);
    }
    let mut tags = render_all(&cfg.patch.tags, values, stage)?;
    if req.aliases {
        add_aliases(
            &mut tags,
            &cfg.patch.aliases,
            cfg,
            values,
            version,
            versions,
        )?;
    }
    Ok(tags)
}

fn add_aliases(
    tags: &mut Vec<String>,
    aliases: &[String],
    cfg: &TagsConfig,
    values: &Values,
    version: &Version,
    versions: &VersionTags,
) -> Result<(), PlanError> {
    for source in aliases {
        let tpl = Template::parse(source)?;
        if alias_allowed(&tpl, version, versions, cfg.release.alias_policy) {
            push_unique(tags, render_one(&tpl, values, "release")?);
        }
    }
    Ok(())
}

fn set_version(values: &mut Values, v: &Version) {
    values
        .set("version", v.to_string())
        .set("major", v.major.to_string())
        .set("minor", v.minor.to_string())
        .set("patch", v.patch.to_string());
}

fn state_of(facts: &Facts, git_tag: &str) -> GitTagState {
    if facts.head_tags.iter().any(|t| t == git_tag) {
        GitTagState::AtHead
    } else if facts.tags.iter().any(|t| t == git_tag) {
        GitTagState::Elsewhere
    } else {
        GitTagState::New
    }
}

/// The rc or patch tag HEAD carries: `(version, n)`, the highest when it
/// carries several, of `--version` when given.
fn carried(facts: &Facts, req: &Request, cfg: &TagsConfig) -> Result<(Version, u64), PlanError> {
    let carried: Vec<(Version, u64)> = facts
        .head_tags
        .iter()
        .filter_map(|t| match (req.stage, classify(t, cfg.prefix())?) {
            (Stage::Rc, TagKind::Rc { version, n })
            | (Stage::Patch, TagKind::Patch { version, n }) => Some((version, n)),
            _ => None,
        })
        .filter(|(v, _)| req.version.as_ref().is_none_or(|want| want == v))
        .collect();
    let mut of: Vec<&Version> = carried.iter().map(|(v, _)| v).collect();
    of.sort();
    of.dedup();
    if of.len() > 1 {
        return Err(PlanError::SeveralCarried(several_at_head(&of, cfg)));
    }
    let best = carried.into_iter().max();
    best.ok_or_else(|| PlanError::NoCurrentTag {
        stage: req.stage,
        of: req
            .version
            .as_ref()
            .map(|v| format!(" of {v}"))
            .unwrap_or_default(),
    })
}

/// The open candidate series on HEAD's history, lowest first: the unreleased
/// versions that `keep` accepts, newer than every release `floor` names,
/// whose newest rc is on HEAD's history. `what` names the answer that
/// depends on them, for the error when a candidate's place in the history
/// cannot be told (shallow clone); `highest_wins` says whether only the
/// highest series decides (rc continues it) or every one does (a release
/// refuses to choose between several).
fn open_series<'a>(
    facts: &Facts,
    versions: &'a VersionTags,
    keep: impl Fn(&Version) -> bool,
    floor: Option<&Version>,
    what: &'static str,
    highest_wins: bool,
) -> Result<Vec<&'a Version>, PlanError> {
    // Each unreleased version by its newest rc: the last one tested. A
    // version whose newest rc is not on HEAD's history was carried on
    // elsewhere (OpenIM's v3.3.3-rc.2..5 off main, rc.0..1 on it).
    let mut newest: std::collections::BTreeMap<&Version, (u64, &str)> = Default::default();
    for (name, v, n) in versions.unreleased_rc_tags() {
        if !keep(v) || floor.is_some_and(|f| v <= f) {
            continue;
        }
        let entry = newest.entry(v).or_insert((n, name));
        if n > entry.0 {
            *entry = (n, name);
        }
    }
    let candidates: Vec<(&str, &Version)> =
        newest.iter().map(|(v, (_, name))| (*name, *v)).collect();
    // Ascending (the map's order).
    let found: Vec<&Version> = candidates
        .iter()
        .filter(|(name, _)| facts.reachable.contains(*name))
        .map(|(_, v)| *v)
        .collect();
    // An undecided candidate matters unless the answer is the highest
    // series and a decided one is at least as high.
    let highest = found.last().copied();
    if let Some((name, _)) = candidates
        .iter()
        .filter(|(name, v)| {
            facts.unknown.contains(*name) && (!highest_wins || highest.is_none_or(|f| *v > f))
        })
        .max_by(|a, b| a.1.cmp(b.1))
    {
        return Err(PlanError::UnknownHistory(name.to_string(), what));
    }
    Ok(found)
}

fn rc_version(
    facts: &Facts,
    req: &Request,
    cfg: &TagsConfig,
    versions: &VersionTags,
    target: Option<BranchTarget>,
    notes: &mut Vec<String>,
) -> Result<Version, PlanError> {
    if let Some(v) = &req.version {
        if req.bump.is_some() {
            return Err(PlanError::BumpNotApplicable(
                "together with --version".into(),
            ));
        }
        return Ok(v.clone());
    }
    if let Some(t) = target {
        if req.bump.is_some() {
            return Err(PlanError::BumpNotApplicable(format!(
                "on branch {}, which fixes the version to {t}; pass --version to choose another",
                facts.branch.as_deref().unwrap_or_default()
            )));
        }
        if let Some(p) = t.patch {
            return Ok(Version::new(t.major, t.minor, p));
        }
        let highest = versions.highest_released(|v| t.in_line(v));
        let open = open_series(facts, versions, |v| t.in_line(v), highest, "next rc", true)?;
        if let Some(v) = open.last() {
            return Ok((*v).clone());
        }
        let next = Version::new(t.major, t.minor, highest.map_or(0, |v| v.patch + 1));
        // The candidate of X.Y.(Z+1) holds X.Y.Z's code.
        if let Some(latest) = highest {
            line_release_on_history(facts, cfg, versions, t, latest.clone(), &next)?;
        }
        return Ok(next);
    }
    let highest = versions.highest_released(|_| true);
    if req.bump.is_none() {
        let open = open_series(facts, versions, |_| true, highest, "next rc", true)?;
        if let Some(v) = open.last() {
            return Ok((*v).clone());
        }
    }
    let part = req.bump.unwrap_or(Bump::Patch);
    // Pre-releases named by a word (`v2.0.0-alpha.1`) of a version above
    // the answer: they name the upcoming version.
    let announced = |floor: &Version| -> Option<(&str, Version)> {
        versions
            .iter()
            .filter_map(|(name, kind)| match kind {
                TagKind::OtherPre(v) => {
                    Some((name.as_str(), Version::new(v.major, v.minor, v.patch)))
                }
                _ => None,
            })
            .filter(|(_, v)| v > floor && !versions.is_released(v))
            .max_by(|a, b| a.1.cmp(&b.1))
    };
    match highest {
        Some(v) => {
            let next = bump(v, part);
            if let Some((name, announced)) = announced(&next) {
                notes.push(format!(
                    "{name} announces {announced}, above {next}: pass --version {announced} if \
                     this is its candidate"
                ));
            }
            Ok(next)
        }
        None => {
            // No release yet: a pre-release names the first one.
            let first = announced(&Version::new(0, 0, 0)).filter(|_| req.bump.is_none());
            if let Some((name, v)) = first {
                notes.push(format!(
                    "no release yet; {name} names the upcoming version {v}"
                ));
                return Ok(v);
            }
            notes.push(
                "no stable version tag found; bumping from 0.0.0 (pass --version to choose)"
                    .to_string(),
            );
            Ok(bump(&Version::new(0, 0, 0), part))
        }
    }
}

fn release_version(
    facts: &Facts,
    req: &Request,
    cfg: &TagsConfig,
    versions: &VersionTags,
    target: Option<BranchTarget>,
) -> Result<Version, PlanError> {
    if let Some(v) = &req.version {
        return Ok(v.clone());
    }
    let at_head = VersionTags::from_names(facts.head_tags.iter().map(String::as_str), cfg.prefix());
    if let Some((_, v)) = at_head.stable_tags().max_by(|a, b| a.1.cmp(b.1)) {
        return Ok(v.clone());
    }
    // Promotion: the rc that was tested on this very commit first — when
    // the commit carries candidates of several versions, which one was
    // meant is for the user to say.
    let tested: Vec<&Version> = at_head.unreleased_rc_versions(|v| !versions.is_released(v));
    match tested.as_slice() {
        [v] => return Ok((*v).clone()),
        [] => {}
        several => return Err(PlanError::NoReleaseVersion(several_at_head(several, cfg))),
    }
    // Else an rc on HEAD's history, newer than every release of the line
    // this branch releases (of all releases outside release branches): never
    // an rc of another branch, nor a stale one an old release overtook.
    let highest = versions.highest_released(|v| target.is_none_or(|t| t.in_line(v)));
    let keep = |v: &Version| target.is_none_or(|t| t.contains(v));
    match open_series(facts, versions, keep, highest, "version to release", false)?.as_slice() {
        [v] => return Ok((*v).clone()),
        [] => {}
        several => {
            let names: Vec<String> = several
                .iter()
                .map(|v| format!("{}{v}", cfg.prefix()))
                .collect();
            return Err(PlanError::NoReleaseVersion(format!(
                "release candidates of several versions are open on HEAD's history ({})",
                names.join(", ")
            )));
        }
    }
    let scope = match target {
        Some(t) if t.patch.is_some() => format!(" of {t}"),
        Some(t) => format!(" of the {t} line"),
        None => String::new(),
    };
    let mut why = format!(
        "HEAD carries no `{p}X.Y.Z` or `{p}X.Y.Z-rc.N` tag, and ",
        p = cfg.prefix()
    );
    match highest {
        Some(h) => why.push_str(&format!(
            "no release candidate{scope} on its history is newer than the latest release {}{h}",
            cfg.prefix()
        )),
        None => why.push_str(&format!(
            "there is no release candidate{scope} on its history"
        )),
    }
    let foreign: Vec<String> = versions
        .unreleased_rc_versions(|v| keep(v))
        .into_iter()
        .take(3)
        .map(|v| format!("{}{v}", cfg.prefix()))
        .collect();
    if !foreign.is_empty() {
        why.push_str(&format!(
            " (unreleased candidates elsewhere or older: {})",
            foreign.join(", ")
        ));
    }
    Err(PlanError::NoReleaseVersion(why))
}

/// "HEAD carries release candidates of several versions (…)".
fn several_at_head(versions: &[&Version], cfg: &TagsConfig) -> String {
    let mut sorted = versions.to_vec();
    sorted.sort();
    let names: Vec<String> = sorted
        .iter()
        .map(|v| format!("{}{v}", cfg.prefix()))
        .collect();
    format!(
        "HEAD carries release candidates of several versions ({})",
        names.join(", ")
    )
}

fn patch_version(
    facts: &Facts,
    req: &Request,
    cfg: &TagsConfig,
    versions: &VersionTags,
    target: Option<BranchTarget>,
) -> Result<Version, PlanError> {
    let released = |v: &Version| -> Result<Version, PlanError> {
        match versions.is_released(v) {
            true => Ok(v.clone()),
            false => Err(PlanError::NotReleased(
                v.clone(),
                format!("{}{v}", cfg.prefix()),
            )),
        }
    };
    if let Some(v) = &req.version {
        return released(v);
    }
    if let Some(t) = target {
        if let Some(p) = t.patch {
            return released(&Version::new(t.major, t.minor, p));
        }
        let latest = versions
            .highest_released(|v| t.in_line(v))
            .cloned()
            .ok_or_else(|| {
                PlanError::NoPatchVersion(format!(
                    "nothing of the {t} line is released; pass --version X.Y.Z of a released \
                     version"
                ))
            })?;
        let next = latest.clone();
        return line_release_on_history(facts, cfg, versions, t, latest, &next);
    }
    // The release HEAD is built on: a stable or patch tag at HEAD, else the
    // highest stable tag on HEAD's history.
    let at_head = VersionTags::from_names(facts.head_tags.iter().map(String::as_str), cfg.prefix());
    if let Some(v) = at_head.highest_released(|_| true) {
        return Ok(v.clone());
    }
    let nearest = versions
        .stable_tags()
        .filter(|(name, _)| facts.reachable.contains(*name))
        .map(|(_, v)| v)
        .max();
    if let Some((name, _)) = versions
        .stable_tags()
        .filter(|(name, v)| facts.unknown.contains(*name) && nearest.is_none_or(|n| *v > n))
        .max_by(|a, b| a.1.cmp(b.1))
    {
        return Err(PlanError::UnknownHistory(
            name.to_string(),
            "release to patch",
        ));
    }
    let nearest = nearest.ok_or_else(|| {
        PlanError::NoPatchVersion(format!(
            "no `{}X.Y.Z` tag is on HEAD's history and the branch names no version; pass \
                 --version X.Y.Z of a released version",
            cfg.prefix()
        ))
    })?;
    // A patch of 3.8.1 when 3.8.3 is out is almost always the wrong branch.
    match versions.highest_released(|v| v.major == nearest.major && v.minor == nearest.minor) {
        Some(newest) if newest > nearest => Err(PlanError::NoPatchVersion(format!(
            "HEAD's history holds {p}{nearest}, but {p}{newest} is the latest release of its \
             line; check out the branch of {p}{newest} ({branches}), or patch {nearest} on \
             purpose with --version {nearest}",
            p = cfg.prefix(),
            branches = branches_of(&facts.branches, newest, &cfg.release_branch)
        ))),
        _ => Ok(nearest.clone()),
    }
}

/// The line branch's latest release, when HEAD's history holds it. A line
/// branch that does not (OpenIM's `release-v3.8` predates v3.8.0; chat's
/// `release-v1.4` stops at v1.4.0 while v1.4.1 was tagged elsewhere) would
/// otherwise tag older code as a patch of the newer release, and move
/// `latest` to it: refused, naming the branch of that release and the
/// `--version` that patches on purpose.
fn line_release_on_history(
    facts: &Facts,
    cfg: &TagsConfig,
    versions: &VersionTags,
    line: BranchTarget,
    latest: Version,
    next: &Version,
) -> Result<Version, PlanError> {
    let rc = next != &latest;
    let p = cfg.prefix();
    let name = versions
        .release_tag(&latest)
        .map_or_else(|| format!("{p}{latest}"), str::to_string);
    if facts.reachable.contains(&name) {
        return Ok(latest);
    }
    if facts.unknown.contains(&name) {
        let what = if rc { "next rc" } else { "release to patch" };
        return Err(PlanError::UnknownHistory(name, what));
    }
    let others: Vec<String> = facts
        .branches
        .iter()
        .filter(|b| Some(b.as_str()) != facts.branch.as_deref())
        .cloned()
        .collect();
    let branches = branches_of(&others, &latest, &cfg.release_branch);
    let held = versions
        .stable_tags()
        .filter(|(n, v)| line.in_line(v) && facts.reachable.contains(*n))
        .map(|(_, v)| v)
        .max();
    let claim = match (rc, held) {
        (false, Some(h)) => format!(
            "a patch from here would ship {h}'s code as a patch of {latest}; check out the \
             branch of {p}{latest} ({branches}), or patch {h} on purpose with --version {h}"
        ),
        (false, None) => format!(
            "check out the branch of {p}{latest} ({branches}), or pass --version {latest} to \
             patch it from this code on purpose"
        ),
        (true, _) => {
            let named = if branches.starts_with("such as") {
                String::new()
            } else {
                format!(" ({branches})")
            };
            format!(
                "a candidate of {next} from here would lack what {latest} shipped; check out \
                 a branch that holds {p}{latest}{named}, or pass --version {next} to make it \
                 from this code on purpose"
            )
        }
    };
    let holds = match held {
        Some(h) => format!("HEAD's history holds {p}{h}, not {p}{latest}"),
        None => "no release of that line is on HEAD's history (the branch is older than the \
                 line's first release, or its releases were tagged on another branch)"
            .to_string(),
    };
    let message =
        format!("{p}{latest} is the latest release of the {line} line, but {holds}: {claim}");
    Err(if rc {
        PlanError::StaleLine(message)
    } else {
        PlanError::NoPatchVersion(message)
    })
}

/// Refuses a version computed from history when a tag shaped like a release
/// of it or a newer one is in a form the rules do not read (the answer
/// would go backwards); with `--version` the user has said which version it
/// is, and a note lists them.
fn check_unread_releases(
    facts: &Facts,
    req: &Request,
    cfg: &TagsConfig,
    computed: &Version,
    notes: &mut Vec<String>,
) -> Result<(), PlanError> {
    let unread = unread_releases_from(
        facts.tags.iter().map(String::as_str),
        cfg.prefix(),
        computed,
    );
    if unread.is_empty() {
        return Ok(());
    }
    let mut tags: Vec<String> = unread.iter().take(3).map(|(n, _)| n.to_string()).collect();
    if unread.len() > 3 {
        tags.push(format!("and {} more", unread.len() - 3));
    }
    let tags = tags.join(", ");
    let computed = format!("{}{computed}", cfg.prefix());
    if req.version.is_some() {
        notes.push(format!(
            "tags in a form `tag` does not read name {computed} or a newer version: {tags}; \
             the aliases (latest, X.Y, X) are computed without them"
        ));
        return Ok(());
    }
    // `server/v1.3.0`: the repository's releases may carry a path.
    let hint = unread
        .iter()
        .find_map(|(name, _)| {
            let (path, last) = name.rsplit_once('/')?;
            let v = if last.starts_with('v') { "v" } else { "" };
            Some(format!(
                ", or set tags.prefix to `{path}/{v}` if those are this repository's releases"
            ))
        })
        .unwrap_or_default();
    Err(PlanError::UnreadReleases {
        tags,
        computed,
        hint,
    })
}

/// The branches that release `v` (by `tags.release_branch`), as a hint:
/// those of the version itself, else those of its line, else an example.
fn branches_of(branches: &[String], v: &Version, pattern: &str) -> String {
    let of = |exact: bool| -> Vec<String> {
        branches
            .iter()
            .filter(|b| {
                branch_target(Some(b), pattern).is_some_and(|t| {
                    t.in_line(v)
                        && if exact {
                            t.patch == Some(v.patch)
                        } else {
                            t.patch.is_none()
                        }
                })
            })
            .map(|b| format!("`{b}`"))
            .collect()
    };
    let exact = of(true);
    let found = if exact.is_empty() { of(false) } else { exact };
    if found.is_empty() {
        format!("such as `{v}-patch`")
    } else {
        found.join(" or ")
    }
}

fn alias_allowed(tpl: &Template, v: &Version, versions: &VersionTags, policy: AliasPolicy) -> bool {
    let highest_where =
        |f: &dyn Fn(&Version) -> bool| versions.highest_released(|x| f(x)).is_none_or(|h| h <= v);
    match policy {
        AliasPolicy::Highest => highest_where(&|_| true),
        AliasPolicy::PerLine if tpl.uses("minor") => {
            highest_where(&|x| x.major == v.major && x.minor == v.minor)
        }
        AliasPolicy::PerLine if tpl.uses("major") => highest_where(&|x| x.major == v.major),
        AliasPolicy::PerLine => highest_where(&|_| true),
    }
}

/// The first tag made from the branch (by a `{branch}` template of
/// tags.dev.tags) that another stage could publish — a release, rc, patch or
/// nightly tag, an alias, a version-shaped tag, or dev's own `sha-…` tag of
/// another commit — with the stage that owns it.
fn reserved_branch_tag(values: &Values, cfg: &TagsConfig) -> Option<(String, &'static str)> {
    let shapes = owned_shapes(cfg);
    let from_branch = cfg
        .dev
        .tags
        .iter()
        .filter_map(|s| Template::parse(s).ok())
        .filter(|t| t.uses("branch"))
        .filter_map(|t| t.render(values, "dev").ok());
    for tag in from_branch {
        // Any `vX.Y.Z…` is a version tag, whichever pipeline pushed it.
        if classify(&tag, cfg.prefix()).is_some() {
            return Some((tag, "release"));
        }
        if let Some((_, owner)) = shapes.iter().find(|(re, _)| re.is_match(&tag)) {
            return Some((tag, owner));
        }
    }
    None
}

/// Matchers of every tag the stages other than dev's branch tags produce.
fn owned_shapes(cfg: &TagsConfig) -> Vec<(Regex, &'static str)> {
    let dev_own: Vec<String> = cfg
        .dev
        .tags
        .iter()
        .filter(|s| Template::parse(s).is_ok_and(|t| !t.uses("branch")))
        .cloned()
        .collect();
    let groups: [(&[String], &'static str); 7] = [
        (&cfg.release.tags, "release"),
        (&cfg.release.aliases, "release"),
        (&cfg.rc.tags, "rc"),
        (&cfg.patch.tags, "patch"),
        (&cfg.patch.aliases, "patch"),
        (&cfg.nightly.tags, "nightly"),
        (&dev_own, "dev (another commit's)"),
    ];
    let mut out = Vec::new();
    for (sources, owner) in groups {
        for source in sources {
            if let Ok(tpl) = Template::parse(source) {
                out.push((tpl.matcher(), owner));
            }
        }
    }
    if let Ok(tpl) = Template::parse(&cfg.nightly.git_tag) {
        out.push((tpl.matcher(), "nightly"));
    }
    out
}

/// The newest dated nightly git tag; the marker tag (e.g. a `nightly` tag an
/// older workflow moved along) only when there is no dated one yet, so that
/// a stale marker never hides the nightlies made since.
fn previous_nightly(facts: &Facts, tpl: &Template, marker: &str) -> Option<String> {
    let re = tpl.matcher();
    facts
        .tags
        .iter()
        .filter_map(|t| {
            let caps = re.captures(t)?;
            let date = caps.name("date")?.as_str().to_string();
            // Same day twice: prefer the one at HEAD (a re-run).
            let at_head = facts.head_tags.contains(t);
            Some(((date, at_head), t))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, t)| t.clone())
        .or_else(|| {
            (!marker.is_empty() && facts.tags.iter().any(|t| t == marker))
                .then(|| marker.to_string())
        })
}

fn render_one(tpl: &Template, values: &Values, stage: &str) -> Result<String, PlanError> {
    // `{service}` stays in the stage's tags; each service's build and
    // deploy fill it in (crate::tag::template::for_service).
    let mut values = values.clone();
    values.set("service", crate::tag::template::SERVICE);
    let rendered = tpl.render(&values, stage).map_err(|e| match e {
        TemplateError::Unavailable { ref name, .. } if name == "branch" => PlanError::NoBranch,
        other => PlanError::Template(other),
    })?;
    if !is_valid_tag(&crate::tag::template::for_service(&rendered, "service")) {
        return Err(PlanError::InvalidTag {
            template: tpl.source().to_string(),
            rendered,
        });
    }
    Ok(rendered)
}

fn render_all(sources: &[String], values: &Values, stage: &str) -> Result<Vec<String>, PlanError> {
    let mut out = Vec::new();
    for source in sources {
        let tpl = Template::parse(source)?;
        push_unique(&mut out, render_one(&tpl, values, stage)?);
    }
    Ok(out)
}

fn push_unique(list: &mut Vec<String>, tag: String) {
    if !list.contains(&tag) {
        list.push(tag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    /// Facts where every tag is on HEAD's history (as on a linear main).
    fn facts(branch: Option<&str>, tags: &[&str], head: &[&str]) -> Facts {
        let mut f = facts_off_history(branch, tags, head);
        f.reachable = f.tags.iter().cloned().collect();
        f
    }

    /// Facts where only the tags at HEAD are on its history.
    fn facts_off_history(branch: Option<&str>, tags: &[&str], head: &[&str]) -> Facts {
        Facts {
            head_sha: SHA.into(),
            branch: branch.map(str::to_string),
            tags: tags.iter().chain(head).map(|s| s.to_string()).collect(),
            head_tags: head.iter().map(|s| s.to_string()).collect(),
            reachable: head.iter().map(|s| s.to_string()).collect(),
            unknown: BTreeSet::new(),
            branches: Vec::new(),
            pull_request: None,
        }
    }

    fn req(stage: Stage) -> Request {
        Request {
            stage,
            version: None,
            bump: None,
            date: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
            aliases: true,
            existing: false,
        }
    }

    fn run(f: &Facts, r: &Request) -> TagPlan {
        plan(f, r, &TagsConfig::default()).unwrap()
    }

    #[test]
    fn a_pull_request_is_tagged_pr_n_not_as_its_head_branch() {
        let mut f = facts(Some("main"), &[], &[]);
        f.pull_request = Some(2708);
        let p = run(&f, &req(Stage::Dev));
        assert_eq!(p.tags, ["pr-2708", "sha-0123456"]);
        assert!(p.notes[0].contains("head branch `main`"), "{:?}", p.notes);
    }

    #[test]
    fn a_pre_release_names_the_upcoming_version() {
        // Only `v2.0.0-alpha.1`: its version, not 0.0.1.
        let p = run(
            &facts(Some("main"), &["v2.0.0-alpha.1"], &[]),
            &req(Stage::Rc),
        );
        assert_eq!(p.git_tag.as_deref(), Some("v2.0.0-rc.0"));
        assert!(p.notes[0].contains("v2.0.0-alpha.1 names"), "{:?}", p.notes);
        // After releases: the bump, with a note when one is announced above.
        let f = facts(Some("main"), &["v1.5.0", "v2.0.0-beta.1"], &[]);
        let p = run(&f, &req(Stage::Rc));
        assert_eq!(p.git_tag.as_deref(), Some("v1.5.1-rc.0"));
        assert!(
            p.notes.iter().any(|n| n.contains("--version 2.0.0")),
            "{:?}",
            p.notes
        );
        // open-im-server: v3.8.4-alpha.1 is the version the bump gives.
        let f = facts(Some("main"), &["v3.8.3", "v3.8.4-alpha.1"], &[]);
        let p = run(&f, &req(Stage::Rc));
        assert_eq!(p.git_tag.as_deref(), Some("v3.8.4-rc.0"));
        assert!(p.notes.is_empty(), "{:?}", p.notes);
    }

    #[test]
    fn dev_uses_sanitized_branch_and_sha() {
        let p = run(&facts(Some("my/feature#1245"), &[], &[]), &req(Stage::Dev));
        assert_eq!(p.tags, ["my-feature-1245", "sha-0123456"]);
        assert_eq!(p.version, None);
        assert_eq!(p.git_tag, None);
        let err = plan(
            &facts(None, &[], &[]),
            &req(Stage::Dev),
            &TagsConfig::default(),
        );
        assert_eq!(err.unwrap_err(), PlanError::NoBranch);
    }

    #[test]
    fn rc_counts_up_per_version() {
        let f = facts(
            Some("main"),
            &["v3.8.0", "v3.8.1-rc.0", "v3.8.1-rc.1", "nightly"],
            &[],
        );
        let p = run(&f, &req(Stage::Rc));
        assert_eq!(p.git_tag.as_deref(), Some("v3.8.1-rc.2"));
        assert_eq!(p.tags, ["v3.8.1-rc.2", "rc2"]);
        let mut r = req(Stage::Rc);
        r.bump = Some(Bump::Minor);
        assert_eq!(run(&f, &r).tags, ["v3.9.0-rc.0", "rc0"]);
        r.bump = None;
        r.version = Some(Version::new(4, 0, 0));
        assert_eq!(run(&f, &r).git_tag.as_deref(), Some("v4.0.0-rc.0"));
    }

    #[test]
    fn rc_on_release_branch_follows_its_line() {
        let f = facts(
            Some("release-v3.7"),
            &["v3.8.0", "v3.7.2", "v3.7.3-rc.0", "v3.7.10-alpha.1"],
            &[],
        );
        assert_eq!(
            run(&f, &req(Stage::Rc)).git_tag.as_deref(),
            Some("v3.7.3-rc.1")
        );
        let fresh = facts(Some("release-v3.9"), &["v3.8.0"], &[]);
        assert_eq!(
            run(&fresh, &req(Stage::Rc)).git_tag.as_deref(),
            Some("v3.9.0-rc.0")
        );
    }

    #[test]
    fn rc_after_openim_patch_tags() {
        let f = facts(
            Some("main"),
            &["v3.8.3", "v3.8.3-patch.1", "v3.8.3-patch.16"],
            &[],
        );
        assert_eq!(
            run(&f, &req(Stage::Rc)).git_tag.as_deref(),
            Some("v3.8.4-rc.0")
        );
    }

    #[test]
    fn rc_of_released_version_is_refused() {
        let mut r = req(Stage::Rc);
        r.version = Some(Version::new(3, 8, 0));
        let err = plan(
            &facts(Some("main"), &["v3.8.0"], &[]),
            &r,
            &TagsConfig::default(),
        );
        assert!(matches!(err, Err(PlanError::AlreadyReleased(..))));
    }

    #[test]
    fn release_from_head_tag_or_promoted_rc() {
        let p = run(
            &facts(Some("main"), &["v3.7.0"], &["v3.8.0"]),
            &req(Stage::Release),
        );
        assert_eq!(p.git_tag.as_deref(), Some("v3.8.0"));
        assert_eq!(p.git_tag_state, Some(GitTagState::AtHead));
        assert_eq!(
            p.tags,
            ["release-v3.8.0", "v3.8.0", "3.8.0", "3.8", "3", "latest"]
        );
        let promoted = run(
            &facts(Some("main"), &["v3.8.0", "v3.8.1-rc.0"], &["v3.8.1-rc.1"]),
            &req(Stage::Release),
        );
        assert_eq!(promoted.version, Some(Version::new(3, 8, 1)));
        assert_eq!(promoted.git_tag_state, Some(GitTagState::New));
        let line = run(
            &facts(
                Some("release-v3.7"),
                &["v3.8.0", "v3.7.1-rc.2", "v3.8.1-rc.0"],
                &[],
            ),
            &req(Stage::Release),
        );
        assert_eq!(line.version, Some(Version::new(3, 7, 1)));
        let none = plan(
            &facts(Some("main"), &["v3.8.0"], &[]),
            &req(Stage::Release),
            &TagsConfig::default(),
        );
        assert!(matches!(none, Err(PlanError::NoReleaseVersion(_))));
    }

    #[test]
    fn hotfix_on_old_line_does_not_move_aliases() {
        let f = facts(Some("release-v3.7"), &["v3.8.0", "v3.7.4"], &["v3.7.5"]);
        let p = run(&f, &req(Stage::Release));
        assert_eq!(p.tags, ["release-v3.7.5", "v3.7.5", "3.7.5"]);
        let mut cfg = TagsConfig::default();
        cfg.release.alias_policy = AliasPolicy::PerLine;
        let p = plan(&f, &req(Stage::Release), &cfg).unwrap();
        assert_eq!(p.tags, ["release-v3.7.5", "v3.7.5", "3.7.5", "3.7"]);
        let mut r = req(Stage::Release);
        r.aliases = false;
        let p = run(&facts(Some("main"), &[], &["v3.9.0"]), &r);
        assert_eq!(p.tags, ["release-v3.9.0", "v3.9.0", "3.9.0"]);
    }

    #[test]
    fn patching_an_old_release_names_the_branch_of_the_latest() {
        let mut f = facts(Some("main"), &["v1.8.2", "v1.8.4"], &[]);
        f.reachable.remove("v1.8.4");
        let err = |f: &Facts| {
            plan(f, &req(Stage::Patch), &TagsConfig::default())
                .unwrap_err()
                .to_string()
        };
        // No branch of 1.8.4 known: an example.
        assert!(err(&f).contains("(such as `1.8.4-patch`)"), "{}", err(&f));
        // chat's own: `v1.8.4-patch` and `release-v1.8.4`, before the line's.
        f.branches = [
            "main",
            "release-v1.8",
            "release-v1.8.4",
            "v1.8.4-patch",
            "v1.8.2-patch",
        ]
        .map(String::from)
        .to_vec();
        assert!(
            err(&f).contains("check out the branch of v1.8.4 (`release-v1.8.4` or `v1.8.4-patch`)"),
            "{}",
            err(&f)
        );
        f.branches = vec!["main".into(), "release-v1.8".into()];
        assert!(err(&f).contains("(`release-v1.8`)"), "{}", err(&f));
    }

    /// A repository whose releases carry a path (`server/v1.3.0`, as
    /// monorepos tag them): not read silently as "no release yet".
    #[test]
    fn path_prefixed_releases_are_unread_until_the_prefix_says_so() {
        let only = facts(Some("main"), &["server/v1.2.3", "server/v1.3.0"], &[]);
        let mixed = facts(Some("main"), &["v0.9.0", "server/v1.3.0"], &[]);
        for (stage, f) in [
            (Stage::Rc, &only),
            (Stage::Rc, &mixed),
            (Stage::Patch, &mixed),
        ] {
            let e = err(f, &req(stage));
            assert!(
                matches!(&e, PlanError::UnreadReleases { tags, .. } if tags.starts_with("server/v1.3.0")),
                "{stage:?}: {e}"
            );
            assert!(
                e.to_string().contains("set tags.prefix to `server/v`"),
                "{e}"
            );
        }
        let cfg = TagsConfig {
            prefix: Some("server/v".into()),
            ..TagsConfig::default()
        };
        let p = plan(&only, &req(Stage::Rc), &cfg).unwrap();
        assert_eq!(p.git_tag.as_deref(), Some("server/v1.3.1-rc.0"));
        assert_eq!(p.tags, ["v1.3.1-rc.0", "rc0"]);
        // Another component's releases are not this one's.
        let two = facts(Some("main"), &["server/v1.3.0", "client/v2.0.0"], &[]);
        let p = plan(&two, &req(Stage::Rc), &cfg).unwrap();
        assert_eq!(p.git_tag.as_deref(), Some("server/v1.3.1-rc.0"));
    }

    #[test]
    fn newer_releases_in_an_unread_form_stop_the_computation() {
        // openim-docker: v3.7.0-v1.7.0 and v3.8 above the v3.5.0 it reads.
        let f = facts(
            Some("main"),
            &[
                "v3.5.0",
                "v3.6.0-v1.6.0",
                "v3.7.0-v1.7.0",
                "v3.8",
                "v3.3.0-beta.1",
            ],
            &[],
        );
        // A release promoting an rc of 3.5.1 goes backwards too.
        let at_rc = facts(
            Some("main"),
            &["v3.5.0", "v3.7.0-v1.7.0", "v3.8"],
            &["v3.5.1-rc.0"],
        );
        for (stage, f) in [
            (Stage::Rc, &f),
            (Stage::Patch, &f),
            (Stage::Release, &at_rc),
        ] {
            let err = plan(f, &req(stage), &TagsConfig::default()).unwrap_err();
            assert!(
                matches!(&err, PlanError::UnreadReleases { tags, .. } if tags.starts_with("v3.8, v3.7.0-v1.7.0")),
                "{stage:?}: {err}"
            );
        }
        // --version says which: computed; below those tags with a note.
        let mut r = req(Stage::Rc);
        r.version = Some(Version::new(3, 9, 0));
        let p = plan(&f, &r, &TagsConfig::default()).unwrap();
        assert_eq!(p.tags, ["v3.9.0-rc.0", "rc0"]);
        assert!(p.notes.is_empty(), "{:?}", p.notes);
        r.version = Some(Version::new(3, 7, 1));
        let p = plan(&f, &r, &TagsConfig::default()).unwrap();
        assert_eq!(p.tags, ["v3.7.1-rc.0", "rc0"]);
        assert!(p.notes.iter().any(|n| n.contains("v3.8")), "{:?}", p.notes);
        // On a branch of a newer line the answer is ahead of them.
        let on_line = facts(Some("release-v3.9"), &["v3.5.0", "v3.8"], &[]);
        let p = plan(&on_line, &req(Stage::Rc), &TagsConfig::default()).unwrap();
        assert_eq!(p.tags, ["v3.9.0-rc.0", "rc0"]);
        // dev and nightly have no version to get wrong.
        assert!(plan(&f, &req(Stage::Nightly), &TagsConfig::default()).is_ok());
    }

    #[test]
    fn a_patched_release_moves_no_alias_when_run_again() {
        // Re-running the release of 3.8.3 after its patches: `latest` stays
        // with v3.8.3-patch.16.
        let f = facts(
            Some("release-v3.8.3"),
            &["v3.8.2", "v3.8.3-patch.15", "v3.8.3-patch.16"],
            &["v3.8.3"],
        );
        let p = run(&f, &req(Stage::Release));
        assert_eq!(p.tags, ["release-v3.8.3", "v3.8.3", "3.8.3"]);
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains("v3.8.3-patch.16 is newer")),
            "{:?}",
            p.notes
        );
        // Before its first patch, the release moves them.
        let f = facts(Some("release-v3.8.3"), &["v3.8.2"], &["v3.8.3"]);
        let p = run(&f, &req(Stage::Release));
        assert_eq!(
            p.tags,
            ["release-v3.8.3", "v3.8.3", "3.8.3", "3.8", "3", "latest"]
        );
    }

    #[test]
    fn nightly_changed_follows_previous_nightly() {
        let r = req(Stage::Nightly);
        let first = run(&facts(Some("main"), &[], &[]), &r);
        assert_eq!(first.tags, ["nightly-20261125-0123456", "nightly"]);
        assert_eq!(first.git_tag.as_deref(), Some("nightly-20261125-0123456"));
        assert_eq!(first.changed, Some(true));
        let same = run(
            &facts(
                None,
                &["nightly-20261123-aaaaaaa"],
                &["nightly-20261124-0123456"],
            ),
            &r,
        );
        assert_eq!(same.changed, Some(false));
        assert_eq!(same.previous.as_deref(), Some("nightly-20261124-0123456"));
        let moved = run(
            &facts(
                None,
                &["nightly-20261124-bbbbbbb"],
                &["nightly-20261120-0123456"],
            ),
            &r,
        );
        assert_eq!(moved.changed, Some(true));
        // A marker tag counts only while there is no dated nightly: a stale
        // one (nothing moves it) never hides the dated ones.
        let marker_only = run(&facts(None, &[], &["nightly"]), &r);
        assert_eq!(marker_only.previous.as_deref(), Some("nightly"));
        assert_eq!(marker_only.changed, Some(false));
        let stale_marker = run(
            &facts(None, &["nightly", "nightly-20261124-bbbbbbb"], &[]),
            &r,
        );
        assert_eq!(
            stale_marker.previous.as_deref(),
            Some("nightly-20261124-bbbbbbb")
        );
        assert_eq!(stale_marker.changed, Some(true));
    }
    fn err(f: &Facts, r: &Request) -> PlanError {
        plan(f, r, &TagsConfig::default()).unwrap_err()
    }

    #[test]
    fn release_never_promotes_a_foreign_rc() {
        // open-im-server's main: v3.3.3-rc.0..1 are on its history, rc.2..5
        // and the 3.8.2/3.8.3 releases are on release branches only.
        let mut f = facts_off_history(
            Some("main"),
            &[
                "v3.3.2",
                "v3.3.3-rc.0",
                "v3.3.3-rc.1",
                "v3.3.3-rc.5",
                "v3.8.1",
                "v3.8.3",
                "v3.8.3-patch.16",
            ],
            &[],
        );
        f.reachable = ["v3.3.3-rc.0", "v3.3.3-rc.1"].map(String::from).into();
        let e = err(&f, &req(Stage::Release));
        assert!(matches!(e, PlanError::NoReleaseVersion(_)), "{e}");
        assert!(e.to_string().contains("--version"), "{e}");
        assert!(e.to_string().contains("v3.8.3"), "{e}");
        // chat's main: v1.5.1-rc.0 is on its history but 1.8.4 is out.
        let chat = facts(Some("main"), &["v1.5.0", "v1.5.1-rc.0", "v1.8.4"], &[]);
        assert!(matches!(
            err(&chat, &req(Stage::Release)),
            PlanError::NoReleaseVersion(_)
        ));
        // An rc on HEAD's history, newer than every release: promoted.
        let ok = facts(Some("main"), &["v3.8.3", "v3.8.4-rc.0", "v3.8.4-rc.1"], &[]);
        assert_eq!(
            run(&ok, &req(Stage::Release)).version,
            Some(Version::new(3, 8, 4))
        );
        // The same rc off HEAD's history (another branch's): refused.
        let off = facts_off_history(Some("main"), &["v3.8.3", "v3.8.4-rc.1"], &[]);
        assert!(matches!(
            err(&off, &req(Stage::Release)),
            PlanError::NoReleaseVersion(_)
        ));
        // An rc at HEAD is always the one to promote, even an old one.
        let at_head = facts_off_history(Some("main"), &["v3.8.3"], &["v3.3.3-rc.5"]);
        assert_eq!(
            run(&at_head, &req(Stage::Release)).tags,
            ["release-v3.3.3", "v3.3.3", "3.3.3"]
        );
    }

    #[test]
    fn release_on_a_branch_of_one_version_promotes_only_that_version() {
        let f = facts(
            Some("release-v3.8.1"),
            &["v3.8.0", "v3.8.1-rc.4", "v3.8.2-rc.0"],
            &[],
        );
        assert_eq!(
            run(&f, &req(Stage::Release)).version,
            Some(Version::new(3, 8, 1))
        );
        let released = facts(Some("release-v3.8.1"), &["v3.8.1", "v3.8.2-rc.0"], &[]);
        let e = err(&released, &req(Stage::Release));
        assert!(e.to_string().contains("of 3.8.1"), "{e}");
    }

    #[test]
    fn dev_tags_never_take_another_stages_tag() {
        for (branch, owner) in [
            ("release-v3.8.3", "release"),
            ("latest", "release"),
            ("v3.8.3", "release"),
            ("3.8.3", "release"),
            ("3.8", "release"),
            ("3", "release"),
            ("v3.8.3-alpha.1", "release"),
            ("v3.8.1-rc.2", "release"),
            ("rc0", "rc"),
            ("nightly", "nightly"),
            ("nightly-20261124-abcdef0", "nightly"),
            ("3.8.3-patch.2", "patch"),
            ("sha-1234567", "dev (another commit's)"),
        ] {
            let p = run(&facts(Some(branch), &[], &[]), &req(Stage::Dev));
            let expected = distinct_branch_tag(branch);
            assert_eq!(p.tags, [expected.as_str(), "sha-0123456"], "{branch}");
            assert!(p.tags[0].starts_with("branch-"), "{branch}");
            assert!(
                p.notes.iter().any(|n| n.contains(owner)),
                "{branch}: {:?}",
                p.notes
            );
        }
        // Ordinary names, OpenIM's odd ones included, stay as they are.
        for branch in [
            "main",
            "3.8.3-patch",
            "pre-release-v3.8.4",
            "test-v3dev1",
            "js-server",
        ] {
            let p = run(&facts(Some(branch), &[], &[]), &req(Stage::Dev));
            assert_eq!(p.tags[0], branch);
            assert!(p.notes.is_empty());
        }
        // With a prefixed template, `latest` is harmless.
        let mut cfg = TagsConfig::default();
        cfg.dev.tags = vec!["dev-{branch}".into()];
        let p = plan(&facts(Some("latest"), &[], &[]), &req(Stage::Dev), &cfg).unwrap();
        assert_eq!(p.tags, ["dev-latest"]);
    }

    #[test]
    fn rc_continues_an_open_series_on_heads_history() {
        let f = facts(Some("main"), &["v3.7.1", "v3.8.0-rc.0"], &[]);
        assert_eq!(
            run(&f, &req(Stage::Rc)).git_tag.as_deref(),
            Some("v3.8.0-rc.1")
        );
        // A series of another branch is not this branch's.
        let off = facts_off_history(Some("main"), &["v3.7.1", "v3.8.0-rc.0"], &[]);
        assert_eq!(
            run(&off, &req(Stage::Rc)).git_tag.as_deref(),
            Some("v3.7.2-rc.0")
        );
        // A stale series below the latest release is closed.
        let stale = facts(Some("main"), &["v3.3.3-rc.1", "v3.8.3"], &[]);
        assert_eq!(
            run(&stale, &req(Stage::Rc)).git_tag.as_deref(),
            Some("v3.8.4-rc.0")
        );
        // An explicit --bump starts a new series.
        let mut r = req(Stage::Rc);
        r.bump = Some(Bump::Minor);
        assert_eq!(run(&f, &r).git_tag.as_deref(), Some("v3.8.0-rc.1"));
        r.bump = Some(Bump::Major);
        assert_eq!(run(&f, &r).git_tag.as_deref(), Some("v4.0.0-rc.0"));
        // On a release line, an open series of the line is continued.
        let line = facts(Some("release-v3.8"), &["v3.8.1", "v3.8.3-rc.0"], &[]);
        assert_eq!(
            run(&line, &req(Stage::Rc)).git_tag.as_deref(),
            Some("v3.8.3-rc.1")
        );
    }

    #[test]
    fn bump_where_it_does_not_apply_is_refused() {
        let f = facts(Some("release-v3.8"), &["v3.8.1"], &[]);
        let mut r = req(Stage::Rc);
        r.bump = Some(Bump::Minor);
        assert!(matches!(err(&f, &r), PlanError::BumpNotApplicable(_)));
        let main = facts(Some("main"), &["v3.8.1"], &[]);
        r.version = Some(Version::new(3, 9, 0));
        assert!(matches!(err(&main, &r), PlanError::BumpNotApplicable(_)));
        for stage in [Stage::Dev, Stage::Release, Stage::Patch, Stage::Nightly] {
            let mut r = req(stage);
            r.bump = Some(Bump::Patch);
            let e = err(&main, &r);
            assert!(matches!(e, PlanError::BumpNotApplicable(_)), "{stage}: {e}");
        }
    }

    #[test]
    fn existing_means_the_candidate_head_carries() {
        let mut r = req(Stage::Rc);
        r.existing = true;
        let f = facts(
            Some("main"),
            &["v3.8.3", "v3.8.4-rc.0", "v3.8.4-rc.2"],
            &["v3.8.4-rc.1"],
        );
        let p = run(&f, &r);
        assert_eq!(p.git_tag.as_deref(), Some("v3.8.4-rc.1"));
        assert_eq!(p.tags, ["v3.8.4-rc.1", "rc1"]);
        assert_eq!(p.git_tag_state, Some(GitTagState::AtHead));
        let none = facts(Some("main"), &["v3.8.3", "v3.8.4-rc.0"], &[]);
        let e = err(&none, &r);
        assert!(matches!(e, PlanError::NoCurrentTag { .. }), "{e}");
        assert!(e.to_string().contains("tag --stage rc --push"), "{e}");
        let mut p = req(Stage::Patch);
        p.existing = true;
        let patched = facts(Some("3.8.3-patch"), &["v3.8.3"], &["v3.8.3-patch.16"]);
        assert_eq!(
            run(&patched, &p).git_tag.as_deref(),
            Some("v3.8.3-patch.16")
        );
    }

    /// Found on open-im-server and chat: re-running an old patch's job, or
    /// patching its commit again, moved `latest` back 11 patches.
    #[test]
    fn an_older_patch_moves_no_alias() {
        let mut tags = vec!["v3.8.3".to_string()];
        tags.extend((1..=16).map(|n| format!("v3.8.3-patch.{n}")));
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        let at_5 = facts(Some("3.8.3-patch"), &tags, &["v3.8.3-patch.5"]);
        let mut r = req(Stage::Patch);
        r.existing = true;
        let p = run(&at_5, &r);
        assert_eq!(p.tags, ["v3.8.3-patch.5", "3.8.3-patch.5"]);
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains("v3.8.3-patch.16 is newer")),
            "{:?}",
            p.notes
        );
        // A new patch of that commit: a number, no alias.
        let p = run(&at_5, &req(Stage::Patch));
        assert_eq!(p.git_tag.as_deref(), Some("v3.8.3-patch.17"));
        assert_eq!(p.tags, ["v3.8.3-patch.17", "3.8.3-patch.17"]);
        // The newest patch, re-run or patched again: the aliases move.
        let at_16 = facts(Some("3.8.3-patch"), &tags, &["v3.8.3-patch.16"]);
        assert_eq!(
            run(&at_16, &r).tags,
            ["v3.8.3-patch.16", "3.8.3-patch.16", "3.8", "3", "latest"]
        );
        assert_eq!(
            run(&at_16, &req(Stage::Patch)).tags,
            ["v3.8.3-patch.17", "3.8.3-patch.17", "3.8", "3", "latest"]
        );
        // rc numbers are not patches: an older rc re-run is unchanged.
        let mut rc = req(Stage::Rc);
        rc.existing = true;
        let older_rc = facts(Some("main"), &["v3.8.4-rc.2"], &["v3.8.4-rc.1"]);
        assert_eq!(run(&older_rc, &rc).tags, ["v3.8.4-rc.1", "rc1"]);
    }

    /// Found on open-im-server's `release-v3.8` (pre-3.8.0 code) and chat's
    /// `release-v1.4` (at v1.4.0, while v1.4.1 was tagged elsewhere): a
    /// line branch whose history lacks the line's latest release.
    #[test]
    fn a_line_branch_without_its_latest_release_is_refused() {
        let e = |f: &Facts| err(f, &req(Stage::Patch)).to_string();
        let stale = facts_off_history(Some("release-v3.8"), &["v3.7.1", "v3.8.0", "v3.8.3"], &[]);
        let msg = e(&stale);
        assert!(
            msg.contains("no release of that line is on HEAD's history"),
            "{msg}"
        );
        assert!(msg.contains("--version 3.8.3"), "{msg}");
        assert!(
            !msg.contains("`release-v3.8`"),
            "not the branch it is on: {msg}"
        );
        let mut at_140 = facts_off_history(Some("release-v1.4"), &["v1.4.1"], &["v1.4.0"]);
        at_140.branches = vec!["release-v1.4".into(), "release-v1.4.1".into()];
        let msg = e(&at_140);
        assert!(msg.contains("holds v1.4.0, not v1.4.1"), "{msg}");
        assert!(msg.contains("(`release-v1.4.1`)"), "{msg}");
        assert!(msg.contains("--version 1.4.0"), "{msg}");
        // --version says which, on purpose.
        let mut r = req(Stage::Patch);
        r.version = Some(Version::new(1, 4, 0));
        assert_eq!(run(&at_140, &r).git_tag.as_deref(), Some("v1.4.0-patch.1"));
        // A shallow clone that cannot tell: refused as such.
        let mut cut = stale.clone();
        cut.unknown.insert("v3.8.3".into());
        assert!(matches!(
            err(&cut, &req(Stage::Patch)),
            PlanError::UnknownHistory(..)
        ));
        // The line's latest on the history: patched (release-v3.7 holds v3.7.1).
        let mut ok = facts_off_history(Some("release-v3.7"), &["v3.7.0", "v3.8.3"], &[]);
        ok.reachable
            .extend(["v3.7.0".to_string(), "v3.7.1".to_string()]);
        ok.tags.push("v3.7.1".into());
        assert_eq!(
            run(&ok, &req(Stage::Patch)).git_tag.as_deref(),
            Some("v3.7.1-patch.1")
        );
    }

    /// The same for an rc on a line branch: `release-v3.8` (pre-3.8.0
    /// code) answered `v3.8.4-rc.0`, a candidate lacking what 3.8.3 shipped.
    #[test]
    fn an_rc_on_a_line_branch_without_its_latest_release_is_refused() {
        let stale = facts_off_history(Some("release-v3.8"), &["v3.7.1", "v3.8.0", "v3.8.3"], &[]);
        let e = err(&stale, &req(Stage::Rc));
        assert!(matches!(e, PlanError::StaleLine(_)), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("a candidate of 3.8.4 from here would lack what 3.8.3 shipped"),
            "{msg}"
        );
        assert!(msg.contains("--version 3.8.4"), "{msg}");
        let mut r = req(Stage::Rc);
        r.version = Some(Version::new(3, 8, 4));
        assert_eq!(run(&stale, &r).git_tag.as_deref(), Some("v3.8.4-rc.0"));
        // Holding it: the next candidate; an open series still continues.
        let mut ok = stale.clone();
        ok.reachable.insert("v3.8.3".into());
        assert_eq!(
            run(&ok, &req(Stage::Rc)).git_tag.as_deref(),
            Some("v3.8.4-rc.0")
        );
        let mut open = facts_off_history(Some("release-v3.8"), &["v3.8.3", "v3.8.4-rc.1"], &[]);
        open.reachable.insert("v3.8.4-rc.1".into());
        assert_eq!(
            run(&open, &req(Stage::Rc)).git_tag.as_deref(),
            Some("v3.8.4-rc.2")
        );
        // A line with no release yet: its first candidate.
        let first = facts_off_history(Some("release-v3.9"), &["v3.8.3"], &[]);
        assert_eq!(
            run(&first, &req(Stage::Rc)).git_tag.as_deref(),
            Some("v3.9.0-rc.0")
        );
        // The release of the line is asked about.
        let tags: Vec<String> = ["v3.8.0", "v3.8.3", "v3.7.1", "v3.8.4-rc.0"]
            .map(String::from)
            .to_vec();
        let asked = ancestry_questions(
            Stage::Rc,
            &tags,
            &TagsConfig::default(),
            Some("release-v3.8"),
        );
        assert!(
            asked.contains(&"v3.8.3".to_string()) && !asked.contains(&"v3.7.1".to_string()),
            "{asked:?}"
        );
        let asked = ancestry_questions(Stage::Rc, &tags, &TagsConfig::default(), Some("main"));
        assert_eq!(asked, ["v3.8.4-rc.0"]);
    }

    #[test]
    fn patch_follows_openim_patch_releases() {
        let mut tags = vec!["v3.8.2".to_string(), "v3.8.3".to_string()];
        tags.extend((1..=16).map(|n| format!("v3.8.3-patch.{n}")));
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        let f = facts(Some("3.8.3-patch"), &tags, &[]);
        let p = run(&f, &req(Stage::Patch));
        assert_eq!(p.git_tag.as_deref(), Some("v3.8.3-patch.17"));
        assert_eq!(p.rc, Some(17));
        assert_eq!(
            p.tags,
            ["v3.8.3-patch.17", "3.8.3-patch.17", "3.8", "3", "latest"]
        );
        // The first patch is .1; a patch of an older line moves no alias
        // that a newer release holds.
        let old = facts(Some("release-v3.7"), &["v3.7.1", "v3.8.3"], &[]);
        let p = run(&old, &req(Stage::Patch));
        assert_eq!(p.git_tag.as_deref(), Some("v3.7.1-patch.1"));
        assert_eq!(p.tags, ["v3.7.1-patch.1", "3.7.1-patch.1"]);
        // Without a branch that names it: the release on HEAD's history.
        let detached = facts(None, &["v3.8.3", "v3.8.3-patch.1"], &[]);
        assert_eq!(
            run(&detached, &req(Stage::Patch)).git_tag.as_deref(),
            Some("v3.8.3-patch.2")
        );
        // …unless a newer release of its line is out (main at 3.8.1).
        let mut main = facts_off_history(Some("main"), &["v3.8.1", "v3.8.3"], &[]);
        main.reachable.insert("v3.8.1".into());
        let e = err(&main, &req(Stage::Patch));
        assert!(e.to_string().contains("--version 3.8.1"), "{e}");
        // Only released versions are patched.
        let e = err(
            &facts(Some("pre-release-v3.8.4"), &["v3.8.3"], &[]),
            &req(Stage::Patch),
        );
        assert!(matches!(e, PlanError::NotReleased(..)), "{e}");
        // An rc on a patch branch is refused with the way out.
        let e = err(&f, &req(Stage::Rc));
        assert!(e.to_string().contains("--stage patch"), "{e}");
    }

    #[test]
    fn default_release_branch_matches_openims_names() {
        let pattern = &TagsConfig::default().release_branch;
        let t = |b: &str| branch_target(Some(b), pattern).map(|t| t.to_string());
        for (branch, want) in [
            ("release-v3.0", Some("3.0")),
            ("release-v3.7", Some("3.7")),
            ("release-v3.8.1", Some("3.8.1")),
            ("release-v3.8.3", Some("3.8.3")),
            ("pre-release-v3.8.4", Some("3.8.4")),
            ("3.8.3-patch", Some("3.8.3")),
            ("v1.8.4-patch", Some("1.8.4")),
            ("release/v3.9", Some("3.9")),
            ("3.8", Some("3.8")),
            ("main", None),
            ("3.8.3-patch-bak", None),
            ("test/release-v3.3", None),
            ("v3.8-js-sdk-only", None),
            ("changelog-v3.8.2", None),
            ("test-v2.3.0release", None),
        ] {
            assert_eq!(t(branch).as_deref(), want, "{branch}");
        }
    }
    #[test]
    fn a_cut_history_refuses_rather_than_guess() {
        // Shallow clone: v3.8.4-rc.0's place is unknown; it decides the rc.
        let mut f = facts_off_history(Some("main"), &["v3.8.3", "v3.8.4-rc.0"], &[]);
        f.unknown.insert("v3.8.4-rc.0".into());
        let e = err(&f, &req(Stage::Rc));
        assert!(matches!(e, PlanError::UnknownHistory(..)), "{e}");
        assert!(e.to_string().contains("fetch-depth: 0"), "{e}");
        assert!(matches!(
            err(&f, &req(Stage::Release)),
            PlanError::UnknownHistory(..)
        ));
        // …unless the answer does not depend on it: the rc at HEAD, an
        // explicit version, or a stale candidate below the latest release.
        let mut at_head = f.clone();
        at_head.head_tags.push("v3.8.4-rc.1".into());
        at_head.tags.push("v3.8.4-rc.1".into());
        assert_eq!(
            run(&at_head, &req(Stage::Release)).version,
            Some(Version::new(3, 8, 4))
        );
        let mut r = req(Stage::Rc);
        r.version = Some(Version::new(3, 9, 0));
        assert_eq!(run(&f, &r).git_tag.as_deref(), Some("v3.9.0-rc.0"));
        let mut stale = facts_off_history(Some("main"), &["v3.3.3-rc.5", "v3.8.3"], &[]);
        stale.unknown.insert("v3.3.3-rc.5".into());
        assert_eq!(
            run(&stale, &req(Stage::Rc)).git_tag.as_deref(),
            Some("v3.8.4-rc.0")
        );
    }
    #[test]
    fn a_version_whose_newest_rc_is_elsewhere_is_not_this_historys() {
        // v3.4.0's commit on main: v3.3.3-rc.0..1 on its history, rc.2..5
        // on a side branch; 3.3.2 the latest release.
        let mut f = facts_off_history(
            Some("main"),
            &["v3.3.2", "v3.3.3-rc.0", "v3.3.3-rc.1", "v3.3.3-rc.5"],
            &[],
        );
        f.reachable = ["v3.3.3-rc.0", "v3.3.3-rc.1"].map(String::from).into();
        assert!(matches!(
            err(&f, &req(Stage::Release)),
            PlanError::NoReleaseVersion(_)
        ));
        // With the newest on the history too, it is promoted.
        f.reachable.insert("v3.3.3-rc.5".into());
        assert_eq!(
            run(&f, &req(Stage::Release)).version,
            Some(Version::new(3, 3, 3))
        );
    }
    #[test]
    fn candidates_of_several_versions_at_head_are_for_the_user_to_choose() {
        // chat: v1.5.0-rc.6 and v1.5.1-rc.0 on one commit, 88 s apart.
        let f = facts(Some("main"), &["v1.4.1"], &["v1.5.0-rc.6", "v1.5.1-rc.0"]);
        let e = err(&f, &req(Stage::Release));
        assert!(e.to_string().contains("v1.5.0, v1.5.1"), "{e}");
        let mut r = req(Stage::Release);
        r.version = Some(Version::new(1, 5, 0));
        assert_eq!(run(&f, &r).git_tag.as_deref(), Some("v1.5.0"));
        let mut r = req(Stage::Rc);
        r.existing = true;
        assert!(matches!(err(&f, &r), PlanError::SeveralCarried(_)));
        r.version = Some(Version::new(1, 5, 1));
        assert_eq!(run(&f, &r).git_tag.as_deref(), Some("v1.5.1-rc.0"));
    }
    #[test]
    fn several_open_series_on_the_history_are_for_the_user_to_choose() {
        // chat's v1.5.0 commit: v1.5.0-rc.6 and v1.5.1-rc.0 both behind it.
        let f = facts(Some("main"), &["v1.4.1", "v1.5.0-rc.6", "v1.5.1-rc.0"], &[]);
        let e = err(&f, &req(Stage::Release));
        assert!(e.to_string().contains("v1.5.0, v1.5.1"), "{e}");
        // The rc stage continues the highest series.
        assert_eq!(
            run(&f, &req(Stage::Rc)).git_tag.as_deref(),
            Some("v1.5.1-rc.1")
        );
    }
    #[test]
    fn the_tag_convention_is_detected_from_the_tags() {
        // A project that moved from v-tags to bare ones at 3.0.0.
        let f = facts(Some("main"), &["v1.2.0", "v1.2.1", "3.0.0"], &[]);
        let p = run(&f, &req(Stage::Rc));
        assert_eq!(p.git_tag.as_deref(), Some("3.0.1-rc.0"));
        assert_eq!(p.version, Some(Version::new(3, 0, 1)));
        assert!(
            p.notes.iter().any(|n| n.contains("without a prefix")),
            "{:?}",
            p.notes
        );
        // `latest` stays with 3.0.0 when 2.0.0 is released afterwards.
        let mut r = req(Stage::Release);
        r.version = Some(Version::new(2, 0, 0));
        let p = run(&f, &r);
        assert_eq!(p.git_tag.as_deref(), Some("2.0.0"));
        assert!(!p.tags.contains(&"latest".to_string()), "{:?}", p.tags);
        // An rc of the released 3.0.0 is refused.
        let mut r = req(Stage::Rc);
        r.version = Some(Version::new(3, 0, 0));
        assert!(matches!(err(&f, &r), PlanError::AlreadyReleased(..)));
        // Only bare tags: no prefix, said once.
        let bare = facts(Some("main"), &["0.9.0", "1.0.0"], &[]);
        assert_eq!(
            run(&bare, &req(Stage::Rc)).git_tag.as_deref(),
            Some("1.0.1-rc.0")
        );
        // OpenIM's v-tags: v, no note.
        let v = facts(Some("main"), &["v3.8.3"], &[]);
        let p = run(&v, &req(Stage::Rc));
        assert_eq!(p.git_tag.as_deref(), Some("v3.8.4-rc.0"));
        assert!(p.notes.is_empty(), "{:?}", p.notes);
    }

    #[test]
    fn a_configured_prefix_that_skips_newer_releases_is_refused() {
        let f = facts(Some("main"), &["v1.2.1", "3.0.0"], &[]);
        let mut cfg = TagsConfig {
            prefix: Some("v".into()),
            ..TagsConfig::default()
        };
        let e = plan(&f, &req(Stage::Rc), &cfg).unwrap_err();
        assert!(matches!(e, PlanError::PrefixMismatch(_)), "{e}");
        assert!(e.to_string().contains("`3.0.0`"), "{e}");
        // dev and nightly need no version: not refused.
        assert!(plan(&f, &req(Stage::Dev), &cfg).is_ok());
        // The configured prefix that sees the newest release is fine.
        cfg.prefix = Some(String::new());
        assert_eq!(
            plan(&f, &req(Stage::Rc), &cfg).unwrap().git_tag.as_deref(),
            Some("3.0.1-rc.0")
        );
        // Another prefix altogether (`server-v`): only its own tags count.
        cfg.prefix = Some("server-v".into());
        let own = facts(Some("main"), &["server-v2.0.0", "chart-0.1.0"], &[]);
        assert_eq!(
            plan(&own, &req(Stage::Rc), &cfg)
                .unwrap()
                .git_tag
                .as_deref(),
            Some("server-v2.0.1-rc.0")
        );
    }
}

//! The tag rules of each stage: from plain facts about a repository to the
//! version, git tag and image tags of a stage. Pure logic, no I/O.

use crate::config::{AliasPolicy, TagsConfig};
use crate::imagetag::{is_valid_tag, sanitize_branch};
use crate::template::{Template, TemplateError, Values};
use crate::version::{bump, Bump, VersionTags};
use chrono::NaiveDate;
use regex::Regex;
use semver::Version;
use serde::Serialize;

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
    /// Scheduled builds: `nightly-YYYYMMDD-<sha7>` and `nightly`.
    Nightly,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Dev => "dev",
            Stage::Rc => "rc",
            Stage::Release => "release",
            Stage::Nightly => "nightly",
        }
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
    /// Every tag name in the repository (and its remote, where consulted).
    pub tags: Vec<String>,
    /// The tags that point at HEAD (peeled).
    pub head_tags: Vec<String>,
}

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct Request {
    pub stage: Stage,
    pub version: Option<Version>,
    pub bump: Bump,
    pub date: NaiveDate,
    pub aliases: bool,
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
    /// rc stage: the candidate number.
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
    #[error(
        "version {0} is already released (tag {1} exists); pass a higher --version \
         or --bump to pick the next version"
    )]
    AlreadyReleased(Version, String),
    #[error(
        "cannot tell which version to release: HEAD has no stable version tag and no \
         unreleased release candidate exists{0}; pass --version X.Y.Z"
    )]
    NoReleaseVersion(String),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("tag template `{template}` renders `{rendered}`, which is not a valid image tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})")]
    InvalidTag { template: String, rendered: String },
}

/// Apply the rules of `req.stage` to `facts`.
pub fn plan(facts: &Facts, req: &Request, cfg: &TagsConfig) -> Result<TagPlan, PlanError> {
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
    let stage = req.stage.as_str();
    match req.stage {
        Stage::Dev => {
            if facts.branch.is_none() {
                return Err(PlanError::NoBranch);
            }
            plan.tags = render_all(&cfg.dev.tags, &values, stage)?;
        }
        Stage::Rc => {
            let versions =
                VersionTags::from_names(facts.tags.iter().map(String::as_str), &cfg.prefix);
            let version = rc_version(facts, req, cfg, &versions, &mut plan.notes)?;
            if versions.is_released(&version) {
                return Err(PlanError::AlreadyReleased(
                    version.clone(),
                    format!("{}{version}", cfg.prefix),
                ));
            }
            let n = versions.highest_rc(&version).map_or(0, |n| n + 1);
            set_version(&mut values, &version);
            values.set("n", n.to_string());
            let git_tag = format!("{}{version}-rc.{n}", cfg.prefix);
            plan.git_tag_state = Some(state_of(facts, &git_tag));
            plan.git_tag = Some(git_tag);
            plan.rc = Some(n);
            plan.tags = render_all(&cfg.rc.tags, &values, stage)?;
            plan.version = Some(version);
        }
        Stage::Release => {
            let versions =
                VersionTags::from_names(facts.tags.iter().map(String::as_str), &cfg.prefix);
            let version = release_version(facts, req, cfg, &versions)?;
            set_version(&mut values, &version);
            let git_tag = format!("{}{version}", cfg.prefix);
            let state = state_of(facts, &git_tag);
            if state == GitTagState::Elsewhere {
                plan.notes.push(format!(
                    "git tag {git_tag} already exists on another commit than HEAD"
                ));
            }
            plan.git_tag_state = Some(state);
            plan.git_tag = Some(git_tag);
            plan.tags = render_all(&cfg.release.tags, &values, stage)?;
            if req.aliases {
                for source in &cfg.release.aliases {
                    let tpl = Template::parse(source)?;
                    if alias_allowed(&tpl, &version, &versions, cfg.release.alias_policy) {
                        push_unique(&mut plan.tags, render_one(&tpl, &values, stage)?);
                    }
                }
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
    Ok(plan)
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

/// `(major, minor)` of a release branch such as `release-v3.8`.
fn release_line(branch: Option<&str>, pattern: &str) -> Option<(u64, u64)> {
    let re = Regex::new(pattern).ok()?;
    let caps = re.captures(branch?)?;
    let major = caps.name("major")?.as_str().parse().ok()?;
    let minor = caps.name("minor")?.as_str().parse().ok()?;
    Some((major, minor))
}

fn rc_version(
    facts: &Facts,
    req: &Request,
    cfg: &TagsConfig,
    versions: &VersionTags,
    notes: &mut Vec<String>,
) -> Result<Version, PlanError> {
    if let Some(v) = &req.version {
        return Ok(v.clone());
    }
    if let Some((major, minor)) = release_line(facts.branch.as_deref(), &cfg.release_branch) {
        let next = versions
            .highest_released(|v| v.major == major && v.minor == minor)
            .map_or(0, |v| v.patch + 1);
        return Ok(Version::new(major, minor, next));
    }
    match versions.highest_released(|_| true) {
        Some(v) => Ok(bump(v, req.bump)),
        None => {
            let start = Version::new(0, 0, 0);
            notes.push(format!(
                "no stable `{}X.Y.Z` tag found; bumping from 0.0.0 (pass --version to choose)",
                cfg.prefix
            ));
            Ok(bump(&start, req.bump))
        }
    }
}

fn release_version(
    facts: &Facts,
    req: &Request,
    cfg: &TagsConfig,
    versions: &VersionTags,
) -> Result<Version, PlanError> {
    if let Some(v) = &req.version {
        return Ok(v.clone());
    }
    let at_head = VersionTags::from_names(facts.head_tags.iter().map(String::as_str), &cfg.prefix);
    if let Some(v) = at_head
        .iter()
        .filter_map(|(_, k)| match k {
            crate::version::TagKind::Stable(v) => Some(v),
            _ => None,
        })
        .max()
    {
        return Ok(v.clone());
    }
    // Promotion: the rc that was tested on this very commit first.
    if let Some(v) = at_head
        .unreleased_rc_versions(|_| true)
        .into_iter()
        .find(|v| !versions.is_released(v))
    {
        return Ok(v.clone());
    }
    let line = release_line(facts.branch.as_deref(), &cfg.release_branch);
    let candidates = versions.unreleased_rc_versions(|v| match line {
        Some((major, minor)) => v.major == major && v.minor == minor,
        None => true,
    });
    match candidates.first() {
        Some(v) => Ok((*v).clone()),
        None => Err(PlanError::NoReleaseVersion(match line {
            Some((x, y)) => format!(" on the {x}.{y} line"),
            None => String::new(),
        })),
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
    let rendered = tpl.render(values, stage).map_err(|e| match e {
        TemplateError::Unavailable { ref name, .. } if name == "branch" => PlanError::NoBranch,
        other => PlanError::Template(other),
    })?;
    if !is_valid_tag(&rendered) {
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

    fn facts(branch: Option<&str>, tags: &[&str], head: &[&str]) -> Facts {
        Facts {
            head_sha: SHA.into(),
            branch: branch.map(str::to_string),
            tags: tags.iter().chain(head).map(|s| s.to_string()).collect(),
            head_tags: head.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn req(stage: Stage) -> Request {
        Request {
            stage,
            version: None,
            bump: Bump::Patch,
            date: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
            aliases: true,
        }
    }

    fn run(f: &Facts, r: &Request) -> TagPlan {
        plan(f, r, &TagsConfig::default()).unwrap()
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
        r.bump = Bump::Minor;
        assert_eq!(run(&f, &r).tags, ["v3.9.0-rc.0", "rc0"]);
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
}

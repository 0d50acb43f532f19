//! The GitHub Release of a version's git tag, with the notes as its body:
//! created, or updated when it exists (a re-run edits it, never makes a
//! second one). What a person wrote in the body outside the notes' markers
//! stays; the notes between the markers are replaced.

use super::render::Parts;
use super::Notes;
use crate::clients::github::{api_url_from_env, GitHub, ReleaseAction, ReleaseSpec};
use crate::error::BadInput;
use crate::failpoint::crash_point;
use crate::output::actions;
use crate::secret::github_token_from_env;
use crate::tag::stage::Stage;
use crate::workspace::Workspace;
use anyhow::{Context, Result};
use serde::Serialize;

/// Where the notes start and end in the release's body (invisible there).
pub const START: &str = "<!-- openim-release:notes -->";
pub const END: &str = "<!-- /openim-release:notes -->";
/// Where what was shipped (images, deploy) starts and ends within the notes.
pub const SHIPPED_START: &str = "<!-- openim-release:shipped -->";
pub const SHIPPED_END: &str = "<!-- /openim-release:shipped -->";

/// What was done to the GitHub Release (the `github_release` of `release
/// --output json`; fields are a contract: add, never remove).
#[derive(Debug, Clone, Serialize)]
pub struct GithubReleaseReport {
    pub repository: String,
    pub tag: String,
    pub name: String,
    pub prerelease: bool,
    pub draft: bool,
    /// `created`, `updated`, `up-to-date`; `None` in a dry run.
    pub action: Option<ReleaseAction>,
    pub url: Option<String>,
    pub id: Option<u64>,
    pub api_calls: usize,
}

/// How the release is published.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    pub stage: Stage,
    /// Whether it becomes the repository's latest release (a release whose
    /// images get `latest`).
    pub latest: bool,
    pub dry_run: bool,
}

/// Whether `release` of `stage` publishes a GitHub Release: rc, release
/// and patch as `github_release.stages` says (default: release and patch),
/// with a git tag; without a `github_release:` section only when the
/// repository is known (GITHUB_REPOSITORY, or `origin` on GitHub).
pub fn publishes(ws: &Workspace, stage: Stage, no_git_tag: bool) -> bool {
    if no_git_tag || !matches!(stage, Stage::Rc | Stage::Release | Stage::Patch) {
        return false;
    }
    match &ws.config().github_release {
        Some(cfg) => cfg.publishes(stage.as_str()),
        None => {
            crate::config::notes::DEFAULT_RELEASE_STAGES.contains(&stage.as_str())
                && super::repository(ws).is_some()
        }
    }
}

/// The check `release` runs before changing anything: the repository known
/// and the token set, when it will publish.
pub fn check(ws: &Workspace, stage: Stage, no_git_tag: bool) -> Option<crate::checks::Check> {
    if !publishes(ws, stage, no_git_tag) {
        return None;
    }
    let name = "GitHub Release";
    let repository = match release_repository(ws) {
        Ok(r) => r,
        Err(e) => return Some(crate::checks::Check::failed(name, &e)),
    };
    Some(match github_token_from_env() {
        Some(_) => crate::checks::Check::passed(
            name,
            format!("of {repository}; GITHUB_TOKEN (or GH_TOKEN) is set"),
        ),
        None => crate::checks::Check::failed(
            name,
            &BadInput(format!(
                "GITHUB_TOKEN (or GH_TOKEN) is needed to publish the GitHub Release of \
                 {repository}; set it, or github_release.stages: [] to publish none"
            ))
            .into(),
        ),
    })
}

/// The GitHub Release step of `release`: the notes of its git tag, with
/// what it built and deployed.
pub fn of_release(
    ws: &Workspace,
    r: &crate::release::ReleaseReport,
) -> Result<GithubReleaseReport> {
    let tag = r
        .tag
        .git_tag
        .clone()
        .context("the stage has no git tag for a GitHub Release")?;
    let mut shipped = super::Shipped::default();
    if let Some(b) = &r.build {
        shipped.images = super::shipped_images(b);
    }
    if let Some(g) = &r.gitops {
        let (charts, deploy) = super::shipped_deploy(g);
        shipped.charts = charts;
        shipped.deploy = deploy;
    }
    let repo = ws.repo()?;
    let to = match repo.tag_commit(&tag)? {
        Some(_) => None,
        None => Some(r.tag.sha.clone()),
    };
    let notes = super::collect(
        ws,
        &super::NotesRequest {
            tag,
            from: None,
            to,
            shipped,
        },
    )?;
    publish(
        ws,
        &notes,
        &PublishRequest {
            stage: r.stage,
            latest: r.tag.tags.iter().any(|t| t == "latest"),
            dry_run: r.dry_run,
        },
    )
}

/// `notes --publish`: the GitHub Release of the notes' tag, as `release`
/// publishes it (an rc as a pre-release; the latest release when no
/// released version is higher). For a tag that exists only.
pub fn for_tag(ws: &Workspace, notes: &Notes) -> Result<GithubReleaseReport> {
    if !notes.tag_exists {
        return Err(BadInput(format!(
            "{} does not exist: a GitHub Release is of a pushed git tag; `release` creates it",
            notes.tag
        ))
        .into());
    }
    let prefix = ws.config().tags.prefix().to_string();
    let kind = super::classify(&notes.tag, &prefix).context("a version's git tag")?;
    let stage = match kind {
        crate::tag::version::TagKind::Rc { .. } => Stage::Rc,
        crate::tag::version::TagKind::Patch { .. } => Stage::Patch,
        _ => Stage::Release,
    };
    let mut highest = true;
    for t in ws.repo()?.tags()? {
        if let Some(k) = super::classify(&t.name, &prefix) {
            if k.is_released()
                && crate::tag::version::compare(&k, &kind) == std::cmp::Ordering::Greater
            {
                highest = false;
            }
        }
    }
    publish(
        ws,
        notes,
        &PublishRequest {
            stage,
            latest: highest && kind.is_released(),
            dry_run: false,
        },
    )
}

/// The repository the release belongs to, or why there is none.
pub fn release_repository(ws: &Workspace) -> Result<String> {
    super::repository(ws).ok_or_else(|| {
        BadInput(
            "no repository for the GitHub Release: set github_release.repository (owner/name), \
             or GITHUB_REPOSITORY, or an `origin` on GitHub"
                .into(),
        )
        .into()
    })
}

/// Create or update the GitHub Release of `notes.tag`.
pub fn publish(ws: &Workspace, notes: &Notes, req: &PublishRequest) -> Result<GithubReleaseReport> {
    let cfg = ws.config().github_release.clone().unwrap_or_default();
    let repository = release_repository(ws)?;
    let version = notes.version.clone().unwrap_or_default();
    let name = cfg
        .name
        .as_deref()
        .unwrap_or("{tag}")
        .replace("{tag}", &notes.tag)
        .replace("{version}", &version)
        .replace("{stage}", req.stage.as_str());
    let prerelease = req.stage == Stage::Rc;
    let mut report = GithubReleaseReport {
        repository: repository.clone(),
        tag: notes.tag.clone(),
        name: name.clone(),
        prerelease,
        draft: cfg.draft,
        action: None,
        url: None,
        id: None,
        api_calls: 0,
    };
    if req.dry_run {
        return Ok(report);
    }
    let token = github_token_from_env().ok_or_else(|| {
        BadInput("GITHUB_TOKEN (or GH_TOKEN) is needed to publish the GitHub Release".into())
    })?;
    actions::mask(&token);
    let spec = ReleaseSpec {
        tag: notes.tag.clone(),
        target: notes.sha.clone(),
        name,
        prerelease,
        draft: cfg.draft,
        latest: req.latest,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let _entered = runtime.enter();
    let gh = GitHub::new(&api_url_from_env(), &token, &repository)?;
    crash_point("github.release");
    let (release, action) =
        runtime.block_on(gh.ensure_release(&spec, |old| body(old, &notes.parts)))?;
    report.action = Some(action);
    report.url = Some(release.html_url.to_string());
    report.id = Some(release.id.into_inner());
    report.draft = release.draft;
    report.api_calls = gh.calls();
    Ok(report)
}

/// The release's body: the notes between the markers; what else the body
/// held (a person's words) stays, before or after them. The shipped part
/// (images, deploy) is marked too: notes that shipped nothing (a re-run
/// whose images and deploy were done before) keep the one the body had.
pub fn body(old: Option<&str>, notes: &Parts) -> String {
    let old = old.filter(|o| !o.trim().is_empty());
    let old_block = old.and_then(|o| between(o, START, END));
    let shipped = if notes.shipped.trim().is_empty() {
        old_block
            .and_then(|(_, inner, _)| between(inner, SHIPPED_START, SHIPPED_END))
            .map(|(_, s, _)| s.trim_matches('\n').to_string())
            .unwrap_or_default()
    } else {
        notes.shipped.trim_matches('\n').to_string()
    };
    let shipped = if shipped.is_empty() {
        String::new()
    } else {
        format!("\n{SHIPPED_START}\n{shipped}\n{SHIPPED_END}\n")
    };
    let inner = format!("{}{shipped}{}", notes.changes, notes.end);
    let block = format!("{START}\n{}\n{END}\n", inner.trim_end());
    let Some(old) = old else {
        return block;
    };
    match old_block {
        Some((before, _, after)) => {
            let after = after.strip_prefix('\n').unwrap_or(after);
            format!("{before}{block}{after}")
        }
        None => format!("{}\n\n{block}", old.trim_end()),
    }
}

/// `text` split around the first `start`…`end`: (before `start`, between
/// them, after `end`).
fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<(&'a str, &'a str, &'a str)> {
    let s = text.find(start)?;
    let e = s + text[s..].find(end)?;
    Some((
        &text[..s],
        &text[s + start.len()..e],
        &text[e + end.len()..],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(changes: &str, shipped: &str) -> Parts {
        Parts {
            changes: changes.into(),
            shipped: shipped.into(),
            end: "\n### Contributors\n\n@alice\n".into(),
        }
    }

    #[test]
    fn the_notes_replace_their_block_and_keep_what_people_wrote() {
        let first = body(None, &parts("notes 1\n", ""));
        assert_eq!(
            first,
            format!("{START}\nnotes 1\n\n### Contributors\n\n@alice\n{END}\n")
        );
        assert_eq!(body(Some(&first), &parts("notes 1\n", "")), first);
        let edited = format!("Highlights: SSO.\n\n{first}\nThanks!\n");
        let again = body(Some(&edited), &parts("notes 2\n", ""));
        assert_eq!(
            again,
            format!(
                "Highlights: SSO.\n\n{START}\nnotes 2\n\n### Contributors\n\n@alice\n{END}\n\nThanks!\n"
            )
        );
        assert_eq!(
            body(Some("Written by hand."), &parts("n\n", "")),
            format!("Written by hand.\n\n{START}\nn\n\n### Contributors\n\n@alice\n{END}\n")
        );
    }

    #[test]
    fn notes_that_shipped_nothing_keep_what_the_release_shipped() {
        let shipped = "\n### Images\n\n| a | b |\n";
        let first = body(None, &parts("notes\n", shipped));
        assert!(
            first.contains(&format!("{SHIPPED_START}\n### Images")),
            "{first}"
        );
        // A re-run that built and deployed nothing: the same body.
        assert_eq!(body(Some(&first), &parts("notes\n", "")), first);
        // One that built again: the new images.
        let again = body(
            Some(&first),
            &parts("notes\n", "\n### Images\n\n| c | d |\n"),
        );
        assert!(
            again.contains("| c | d |") && !again.contains("| a | b |"),
            "{again}"
        );
    }
}

//! Release notes of a version's git tag: the commits since the previous
//! release of the same line (the highest released tag below it whose commit
//! is an ancestor), grouped by conventional-commit type, with their pull
//! requests, contributors and the services each one touched (the paths a
//! service's build reads: its Dockerfile, its context, narrowed to what the
//! Dockerfile copies, less its ignore file), and what was shipped: every
//! image with its tags and digest in each registry, chart versions, the
//! deploy pull request. `notes` prints them; `release` publishes them as
//! the GitHub Release of the tag ([`publish`]).

pub mod commits;
pub mod publish;
pub mod render;

use crate::build::dockerfile::{self, Source};
use crate::build::plan::ServiceSpec;
use crate::clients::git::Repo;
use crate::error::BadInput;
use crate::tag::version::{self, TagKind};
use crate::workspace::Workspace;
use anyhow::{Context, Result};
use commits::{Counts, Entry, Person};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What `notes` is asked for.
#[derive(Debug, Clone, Default)]
pub struct NotesRequest {
    /// The version's git tag (`v3.8.1`, `v3.8.1-rc.2`, `v3.8.1-patch.1`).
    pub tag: String,
    /// The previous release's tag, instead of the one found.
    pub from: Option<String>,
    /// The commit the notes end at when the tag does not exist yet
    /// [default: HEAD].
    pub to: Option<String>,
    /// What was shipped (`release` fills it in; `notes --digests`).
    pub shipped: Shipped,
}

/// What a release shipped, for the notes' images and deploy lines.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Shipped {
    pub images: Vec<ShippedImage>,
    /// Chart versions the deploy set.
    pub charts: Vec<ChartVersion>,
    /// The deploy pull request (its URL), or the deploy commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Deploy>,
}

/// One service's image in one registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShippedImage {
    pub service: String,
    /// `ghcr.io/openimsdk/openim-api`.
    pub repository: String,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// A chart whose version the deploy moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChartVersion {
    /// The chart's `Chart.yaml`, in the deploy repository.
    pub chart: String,
    pub version: String,
}

/// Where the deploy went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deploy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pr_number: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pr_url: Option<String>,
    /// push mode: the commit on the base branch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub base: String,
    pub repository: String,
}

/// How many entries a service has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceChanges {
    pub service: String,
    pub changes: usize,
}

/// The notes: the `notes --output json` document (fields are a contract:
/// add, never remove) and their Markdown.
#[derive(Debug, Clone, Serialize)]
pub struct Notes {
    pub schema_version: u32,
    pub tag: String,
    pub version: Option<String>,
    /// The previous release the notes start after (`None`: since the first commit).
    pub previous: Option<String>,
    /// The commit the notes end at.
    pub sha: String,
    /// Whether `tag` exists (else the notes end at `sha`, HEAD or `--to`).
    pub tag_exists: bool,
    /// owner/name, for links.
    pub repository: Option<String>,
    pub counts: Counts,
    pub entries: Vec<Entry>,
    pub contributors: Vec<Person>,
    /// Every configured service (without `changelog.services: false`).
    pub services: Vec<ServiceChanges>,
    #[serde(flatten)]
    pub shipped: Shipped,
    pub markdown: String,
    /// `markdown` in its parts (the GitHub Release's body is made of them).
    #[serde(skip)]
    pub parts: render::Parts,
    /// `notes --publish`: the GitHub Release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_release: Option<publish::GithubReleaseReport>,
}

/// Work out the notes of `req.tag`.
pub fn collect(ws: &Workspace, req: &NotesRequest) -> Result<Notes> {
    let repo = ws.repo()?;
    let cfg = ws.config().changelog.clone().unwrap_or_default();
    let prefix = ws.config().tags.prefix().to_string();
    let kind = classify(&req.tag, &prefix).ok_or_else(|| {
        BadInput(format!(
            "`{}` is not a version's git tag (vX.Y.Z, vX.Y.Z-rc.N, vX.Y.Z-patch.N): notes are of \
             a release",
            req.tag
        ))
    })?;
    let tag_sha = repo.tag_commit(&req.tag)?;
    let sha = match (&tag_sha, &req.to) {
        (Some(s), None) => s.clone(),
        (_, Some(to)) => repo.resolve_commit(to)?,
        (None, None) => repo.head()?.sha,
    };
    let previous = match &req.from {
        Some(from) => {
            repo.resolve_commit(from)?;
            Some(from.clone())
        }
        None => previous_release(repo, &prefix, &kind, &sha)?,
    };
    let from_sha = previous
        .as_deref()
        .map(|p| repo.resolve_commit(p))
        .transpose()?;
    let history = repo.history(from_sha.as_deref(), &sha)?;
    let specs = service_specs(ws);
    let matchers: Vec<ServicePaths> = specs
        .iter()
        .map(|s| ServicePaths::of(ws.root(), s))
        .collect();
    let touched = |files: &[String]| -> Vec<String> {
        matchers
            .iter()
            .filter(|m| files.iter().any(|f| m.touches(f)))
            .map(|m| m.service.clone())
            .collect()
    };
    let (entries, counts) = commits::entries(&history, &cfg, &touched);
    let contributors = if cfg.contributors.unwrap_or(true) {
        commits::unique(entries.iter().flat_map(|e| e.authors.clone()))
    } else {
        Vec::new()
    };
    let services = if cfg.services.unwrap_or(true) {
        specs
            .iter()
            .map(|s| ServiceChanges {
                service: s.name.clone(),
                changes: entries
                    .iter()
                    .filter(|e| e.services.contains(&s.name))
                    .count(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut notes = Notes {
        schema_version: 1,
        tag: req.tag.clone(),
        version: Some(kind.base().to_string()),
        previous,
        sha,
        tag_exists: tag_sha.is_some(),
        repository: repository(ws),
        counts,
        entries,
        contributors,
        services,
        shipped: req.shipped.clone(),
        markdown: String::new(),
        parts: render::Parts::default(),
        github_release: None,
    };
    notes.parts = render::parts(&notes, &cfg, &web_url());
    notes.markdown = notes.parts.joined();
    Ok(notes)
}

/// The services of the configuration (none without `images:`).
fn service_specs(ws: &Workspace) -> Vec<ServiceSpec> {
    match &ws.config().images {
        Some(images) => crate::build::run::service_specs(ws.root(), images).unwrap_or_default(),
        None => Vec::new(),
    }
}

/// The version a tag names, with the configured prefix or the usual ones.
fn classify(tag: &str, prefix: &str) -> Option<TagKind> {
    version::classify(tag, prefix)
        .or_else(|| version::classify(tag, "v"))
        .or_else(|| version::classify(tag, ""))
}

/// The highest released tag (a release or a patch) ordered below `kind`
/// whose commit is `sha` or an ancestor of it: the previous release of the
/// same line (another line's releases are not ancestors).
fn previous_release(
    repo: &Repo,
    prefix: &str,
    kind: &TagKind,
    sha: &str,
) -> Result<Option<String>> {
    let mut best: Option<(TagKind, String)> = None;
    for t in repo.tags()? {
        let Some(k) = classify(&t.name, prefix) else {
            continue;
        };
        if !k.is_released() || version::compare(&k, kind) != std::cmp::Ordering::Less {
            continue;
        }
        if best
            .as_ref()
            .is_some_and(|(b, _)| version::compare(&k, b) != std::cmp::Ordering::Greater)
        {
            continue;
        }
        let Ok(Some(commit)) = repo.tag_commit(&t.name) else {
            continue;
        };
        if repo.is_ancestor(&commit, sha)? {
            best = Some((k, t.name));
        }
    }
    Ok(best.map(|(_, name)| name))
}

/// owner/name of the repository the notes link to:
/// `github_release.repository`, else GITHUB_REPOSITORY, else `origin`'s URL
/// when it is on GitHub (or GITHUB_SERVER_URL's host).
pub fn repository(ws: &Workspace) -> Option<String> {
    if let Some(r) = ws
        .config()
        .github_release
        .as_ref()
        .and_then(|g| g.repository.clone())
    {
        return Some(r);
    }
    if let Some(r) = std::env::var("GITHUB_REPOSITORY")
        .ok()
        .filter(|r| crate::config::notes::is_owner_name(r))
    {
        return Some(r);
    }
    let url = ws.repo_opt()?.remote_url("origin")?;
    let host = web_url()
        .split("://")
        .nth(1)
        .unwrap_or("github.com")
        .to_string();
    repository_on(&url, &host)
}

/// `https://github.com/o/r.git`, `git@github.com:o/r.git`, `ssh://git@github.com/o/r` → `o/r`.
fn repository_on(url: &str, host: &str) -> Option<String> {
    let rest = if let Some((_, after)) = url.split_once("://") {
        let after = after.rsplit_once('@').map_or(after, |(_, h)| h);
        after.strip_prefix(host)?.strip_prefix(['/', ':'])?
    } else {
        let after = url.rsplit_once('@').map_or(url, |(_, h)| h);
        after.strip_prefix(host)?.strip_prefix(':')?
    };
    let name = rest.trim_end_matches('/').trim_end_matches(".git");
    crate::config::notes::is_owner_name(name).then(|| name.to_string())
}

/// The GitHub web address: GITHUB_SERVER_URL, else https://github.com.
pub fn web_url() -> String {
    std::env::var("GITHUB_SERVER_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .map(|u| u.trim_end_matches('/').to_string())
        .unwrap_or_else(|| "https://github.com".into())
}

/// The paths of the repository whose change changes a service's image.
struct ServicePaths {
    service: String,
    dockerfile: String,
    ignore_file: Option<String>,
    /// The context, relative to the repository root (`""` for the root).
    context: String,
    /// What the Dockerfile reads of the context (`None`: all of it).
    sources: Option<Vec<Source>>,
    ignore: dockerignore::DockerIgnore,
}

impl ServicePaths {
    fn of(root: &Path, s: &ServiceSpec) -> ServicePaths {
        let dockerfile_path = root.join(&s.dockerfile);
        let context_path = root.join(&s.context);
        let sources = std::fs::read_to_string(&dockerfile_path)
            .ok()
            .and_then(|text| dockerfile::context_sources(&text, &s.args));
        let ignore_path = crate::build::context::ignore_file(&context_path, &dockerfile_path);
        let ignore = ignore_path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| dockerignore::DockerIgnore::parse(&t).ok())
            .unwrap_or_else(dockerignore::DockerIgnore::empty);
        ServicePaths {
            service: s.name.clone(),
            dockerfile: rel(&s.dockerfile),
            ignore_file: ignore_path.map(|p| rel(p.strip_prefix(root).unwrap_or(&p))),
            context: rel(&s.context),
            sources,
            ignore,
        }
    }

    /// Whether a change of `file` (relative to the repository root) changes the image.
    fn touches(&self, file: &str) -> bool {
        if file == self.dockerfile || Some(file) == self.ignore_file.as_deref() {
            return true;
        }
        let inside = if self.context.is_empty() {
            Some(file)
        } else {
            file.strip_prefix(&self.context)
                .and_then(|r| r.strip_prefix('/'))
        };
        let Some(inside) = inside else {
            return false;
        };
        !self.ignore.is_excluded(inside)
            && self
                .sources
                .as_ref()
                .is_none_or(|s| dockerfile::is_under(inside, s) || pattern_under(inside, s))
    }
}

/// Below the prefix of a wildcard source.
fn pattern_under(rel: &str, sources: &[Source]) -> bool {
    sources
        .iter()
        .any(|s| s.pattern && (s.path.is_empty() || dockerfile::under(rel, &s.path)))
}

/// A relative path, `/`-separated, without `./`; `""` for the root.
fn rel(p: &Path) -> String {
    let norm: PathBuf = p
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    norm.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// The shipped images of a build report: one per service and registry
/// repository, with the tags pushed there.
pub fn shipped_images(build: &crate::build::run::BuildReport) -> Vec<ShippedImage> {
    group_images(
        build
            .images
            .iter()
            .map(|o| (o.service.clone(), o.references.clone(), o.digest.clone())),
    )
}

/// `(service, references, digest)` → one row per service and repository.
fn group_images(
    images: impl IntoIterator<Item = (String, Vec<String>, Option<String>)>,
) -> Vec<ShippedImage> {
    let mut out: Vec<ShippedImage> = Vec::new();
    for (service, references, digest) in images {
        for r in &references {
            let (repository, tag) = match r.rsplit_once(':') {
                Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
                _ => (r.clone(), String::new()),
            };
            match out
                .iter_mut()
                .find(|i| i.service == service && i.repository == repository)
            {
                Some(i) => {
                    if !tag.is_empty() && !i.tags.contains(&tag) {
                        i.tags.push(tag);
                    }
                }
                None => out.push(ShippedImage {
                    service: service.clone(),
                    repository,
                    tags: if tag.is_empty() {
                        Vec::new()
                    } else {
                        vec![tag]
                    },
                    digest: digest.clone(),
                }),
            }
        }
    }
    out
}

/// The shipped images of a `build --output json` file (`notes --digests`).
pub fn shipped_from_file(path: &Path) -> Result<Vec<ShippedImage>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        BadInput(format!(
            "{}: not the JSON of `build --output json`: {e}",
            path.display()
        ))
    })?;
    let images = json["images"].as_array().ok_or_else(|| {
        BadInput(format!(
            "{}: no `images` list: expected the JSON of `build --output json`",
            path.display()
        ))
    })?;
    Ok(group_images(images.iter().map(|i| {
        let refs: Vec<String> = i["references"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(str::to_string))
            .collect();
        (
            i["service"].as_str().unwrap_or_default().to_string(),
            refs,
            i["digest"].as_str().map(str::to_string),
        )
    })))
}

/// The chart versions and deploy of a deploy step.
pub fn shipped_deploy(
    g: &crate::deploy::gitops::GitopsReport,
) -> (Vec<ChartVersion>, Option<Deploy>) {
    let charts = g
        .chart_versions
        .iter()
        .map(|(chart, version)| ChartVersion {
            chart: chart.clone(),
            version: version.clone(),
        })
        .collect();
    let deploy = (g.pr_url.is_some() || g.commit.is_some()).then(|| Deploy {
        pr_number: g.pr_number,
        pr_url: g.pr_url.clone(),
        commit: if g.pr_url.is_none() && g.pushed {
            g.commit.clone()
        } else {
            None
        },
        base: g.base.clone(),
        repository: g.repository.clone(),
    });
    (charts, deploy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_from_remote_urls() {
        let on = |u: &str| repository_on(u, "github.com");
        assert_eq!(
            on("https://github.com/openimsdk/open-im-server.git").as_deref(),
            Some("openimsdk/open-im-server")
        );
        assert_eq!(
            on("https://x-access-token:t@github.com/o/r").as_deref(),
            Some("o/r")
        );
        assert_eq!(on("git@github.com:o/r.git").as_deref(), Some("o/r"));
        assert_eq!(on("ssh://git@github.com/o/r.git").as_deref(), Some("o/r"));
        assert_eq!(on("https://gitlab.com/o/r.git"), None);
        assert_eq!(on("/srv/git/r.git"), None);
    }

    #[test]
    fn a_service_is_touched_by_what_its_build_reads() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("build")).unwrap();
        std::fs::write(
            root.join("build/Dockerfile"),
            "FROM scratch\nARG CMD_PATH\nCOPY config/ /c/\nCOPY ${CMD_PATH}/ /bin/\nCOPY internal/api/ /src/\n",
        )
        .unwrap();
        std::fs::write(root.join(".dockerignore"), "**/*.md\n").unwrap();
        let spec = ServiceSpec {
            name: "openim-api".into(),
            image: "openim-api".into(),
            repository: "openim-api".into(),
            dockerfile: "build/Dockerfile".into(),
            context: ".".into(),
            args: [("CMD_PATH".to_string(), "cmd/openim-api".to_string())].into(),
            target: None,
            platforms: Vec::new(),
        };
        let m = ServicePaths::of(root, &spec);
        for yes in [
            "cmd/openim-api/main.go",
            "internal/api/login.go",
            "config/openim.yaml",
            "build/Dockerfile",
            ".dockerignore",
        ] {
            assert!(m.touches(yes), "{yes}");
        }
        for no in [
            "cmd/openim-push/main.go",
            "internal/push/x.go",
            "README.md",
            "cmd/openim-api/README.md",
        ] {
            assert!(!m.touches(no), "{no}");
        }
    }
}

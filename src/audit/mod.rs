//! `audit`: git tags ↔ registries ↔ deploy repository. For every release
//! (a `vX.Y.Z` or `vX.Y.Z-patch.N` git tag), what git says the registries
//! should hold ([`expect`]: the tags the configured templates give, the
//! aliases as the alias policy moved them) against what they hold
//! ([`store`], read concurrently), judged by [`check`]; with `--deploy`,
//! every image the deploy repository references ([`deploy`]). `--fix`
//! makes the repairs that are safe: an alias re-pointed, a missing tag
//! written again, both only within a registry that has the image.

pub mod check;
pub mod deploy;
pub mod expect;
pub mod store;

use crate::build::run::{images, services};
use crate::build::same_build::SameBuild;
use crate::clients::credentials;
use crate::clients::registry::Registry;
use crate::error::BadInput;
use crate::oci::reference::RegistryPrefix;
use crate::oci::Platform;
use crate::output::actions;
use crate::tag::stage::resolve_prefix;
use crate::tag::version::classify;
use crate::workspace::Workspace;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use store::{Loc, Reader, Store};

/// Requests sent at once by default.
pub const DEFAULT_JOBS: usize = 32;

/// What `audit` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct AuditRequest {
    /// Only these releases (git tags).
    pub tags: Vec<String>,
    /// Only the N highest releases.
    pub last: Option<usize>,
    /// Only these services.
    pub services: Vec<String>,
    /// Instead of `images.registries`.
    pub registries: Vec<String>,
    /// Check the deploy repository's references too.
    pub deploy: bool,
    /// The deploy branches instead of the stages' bases.
    pub deploy_branches: Vec<String>,
    /// Make the safe repairs.
    pub fix: bool,
    /// Requests at once.
    pub jobs: Option<usize>,
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A tag of the release is not in the registry.
    MissingTag,
    /// A tag of the release names another image than the release's.
    DigestMismatch,
    /// A configured platform is missing from the image or the registry.
    MissingPlatform,
    /// The revision label names a commit whose build differs from the
    /// release's (or one this repository does not have).
    Revision,
    /// An alias is missing or points at another release's image.
    Alias,
    /// An image the deploy repository references does not exist.
    DeployMissing,
    /// An image the deploy repository references lacks a platform.
    DeployPlatform,
    /// A pinned digest is not what its tag names any more.
    DeployDigest,
    /// Could not be checked (the registry did not answer, or refused).
    Unchecked,
}

impl Kind {
    /// The word in the table.
    pub fn word(self) -> &'static str {
        match self {
            Kind::MissingTag => "tag",
            Kind::DigestMismatch => "digest",
            Kind::MissingPlatform => "platform",
            Kind::Revision => "revision",
            Kind::Alias => "alias",
            Kind::DeployMissing => "deploy",
            Kind::DeployPlatform => "deploy platform",
            Kind::DeployDigest => "deploy digest",
            Kind::Unchecked => "unchecked",
        }
    }
}

/// The repair of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FixAction {
    /// Write the tag again, pointing at the release's image, in this
    /// registry (which has it): `--fix` does it.
    Retag,
    /// The image is only in another registry: copying it is `mirror`'s job.
    NeedsMirror,
    /// No registry has a right image: build the release again.
    NeedsRebuild,
    /// Two images claim the release: which is right is for a person to say
    /// (a release's own tag is never moved by `--fix`).
    Review,
    /// Nothing this tool repairs (a deploy file names an image that does
    /// not exist: change the file, or push the image).
    None,
}

impl FixAction {
    pub fn word(self) -> &'static str {
        match self {
            FixAction::Retag => "retag",
            FixAction::NeedsMirror => "needs mirror",
            FixAction::NeedsRebuild => "needs rebuild",
            FixAction::Review => "review",
            FixAction::None => "-",
        }
    }
}

/// Whether a repair was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FixStatus {
    /// Not made (without `--fix`, or not one `--fix` makes).
    NotApplied,
    Applied,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct Fix {
    pub action: FixAction,
    /// The image the tag should name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// A registry that has it (needs mirror, a missing platform).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub status: FixStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Fix {
    pub fn of(action: FixAction, digest: Option<String>, from: Option<String>) -> Fix {
        Fix {
            action,
            digest,
            from,
            status: FixStatus::NotApplied,
            error: None,
        }
    }

    pub fn none() -> Fix {
        Fix::of(FixAction::None, None, None)
    }
}

/// One disagreement.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: Kind,
    /// The release (git tag); `None` for a deploy reference.
    pub release: Option<String>,
    pub service: String,
    /// The registry (as configured, or as the deploy file names it).
    pub registry: Option<String>,
    pub tag: Option<String>,
    pub platform: Option<String>,
    /// What it should be (a digest, a commit).
    pub expected: Option<String>,
    /// What it is.
    pub found: Option<String>,
    /// A deploy reference's branch, file and line or key.
    pub place: Option<String>,
    pub detail: String,
    pub fix: Fix,
    /// The repository, for the repair.
    #[serde(skip)]
    pub loc: Option<Loc>,
}

/// A release as the report lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseRow {
    pub git_tag: String,
    pub version: String,
    pub commit: String,
    /// Its own image tags.
    pub tags: Vec<String>,
    /// The aliases that should point at it now.
    pub aliases: Vec<String>,
    /// No finding about it.
    pub ok: bool,
}

/// How much was looked at.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Checked {
    pub releases: usize,
    pub services: usize,
    pub registries: usize,
    /// Tags looked up (service × registry × tag).
    pub tags: usize,
    /// Distinct images (repository × digest) of the releases checked.
    pub images: usize,
    /// Their platform images checked (present, revision label).
    pub platforms: usize,
    /// Images the deploy repository references.
    pub deploy_references: usize,
    /// Registry requests sent.
    pub requests: usize,
}

/// The result of `audit`: the `--output json` document (fields are a
/// contract: add, never remove).
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub schema_version: u32,
    /// Nothing disagrees (or `--fix` repaired all of it).
    pub ok: bool,
    pub releases: Vec<ReleaseRow>,
    pub services: Vec<String>,
    pub registries: Vec<String>,
    pub checked: Checked,
    /// `--deploy`: the environment branches read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Vec<deploy::Environment>>,
    pub findings: Vec<Finding>,
    /// Repairs `--fix` made.
    pub fixed: usize,
    /// What the audit does not check yet.
    pub not_checked: Vec<String>,
    /// `--fix` was given.
    #[serde(skip)]
    pub fix: bool,
}

impl AuditReport {
    /// Findings not repaired.
    pub fn open(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.fix.status != FixStatus::Applied)
    }
}

/// What the audit does not look at (yet): the documented hook of
/// [`check::image_problems`].
const NOT_CHECKED: &[&str] = &["signatures and attestations"];

/// Run the audit.
pub fn run(ws: &Workspace, req: &AuditRequest) -> Result<AuditReport> {
    let config = ws.config();
    let images_cfg = images(ws)?;
    let mut specs = services(ws)?;
    if !req.services.is_empty() {
        let known: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        if let Some(unknown) = req.services.iter().find(|s| !known.contains(s)) {
            return Err(BadInput(format!(
                "--service {unknown}: no such service; known services: {}",
                known.join(", ")
            ))
            .into());
        }
        specs.retain(|s| req.services.contains(&s.name));
    }
    let service_list: Vec<(String, Vec<Platform>)> = specs
        .iter()
        .map(|s| (s.name.clone(), s.platforms.clone()))
        .collect();
    let registry_names = if req.registries.is_empty() {
        images_cfg.registries.clone()
    } else {
        req.registries.clone()
    };
    if registry_names.is_empty() {
        return Err(BadInput(
            "no registry to audit: images.registries is empty (or pass --registry)".into(),
        )
        .into());
    }
    let registries: Vec<RegistryPrefix> = registry_names
        .iter()
        .map(|r| RegistryPrefix::parse(r).map_err(BadInput))
        .collect::<Result<_, _>>()?;

    // What git says.
    let repo = ws.repo()?;
    if repo.is_shallow() {
        return Err(BadInput(
            "this clone is shallow: the audit compares each image's revision label with the \
             history of its release; fetch it (`git fetch --unshallow --tags`, in GitHub Actions \
             `fetch-depth: 0` on actions/checkout)"
                .into(),
        )
        .into());
    }
    let names: Vec<String> = repo.tags()?.into_iter().map(|t| t.name).collect();
    let (prefix, _) = resolve_prefix(&names, config.tags.prefix.as_deref())?;
    let mut releases = Vec::new();
    for name in &names {
        let Some(kind) = classify(name, &prefix).filter(expect::is_release) else {
            continue;
        };
        let (Some(commit), Some(time)) =
            (repo.tag_commit(name).ok().flatten(), repo.tag_time(name))
        else {
            continue;
        };
        releases.push(expect::GitRelease {
            name: name.clone(),
            kind,
            commit,
            time,
        });
    }
    if releases.is_empty() {
        return Err(BadInput(format!(
            "no release tags ({prefix}X.Y.Z, {prefix}X.Y.Z-patch.N) in this clone: nothing to \
             audit; fetch the tags (`git fetch --tags`, in GitHub Actions `fetch-depth: 0`)"
        ))
        .into());
    }
    let expect = expect::expectations(&releases, &config.tags, &prefix)?;
    let selected = select(&expect, req, &prefix)?;

    // The deploy repository's references.
    let (environments, references) = if req.deploy {
        let deploy_cfg = config.deploy.clone().ok_or_else(|| {
            BadInput("--deploy: no `deploy:` section in openim-release.yaml".into())
        })?;
        let url = deploy_cfg
            .url
            .clone()
            .ok_or_else(|| BadInput("--deploy: deploy.url is not set".into()))?;
        let inputs = crate::deploy::plan::deploy_inputs(&ws.loaded, ws.root())?;
        let branches = if req.deploy_branches.is_empty() {
            deploy::environments(config)
        } else {
            req.deploy_branches
                .iter()
                .map(|b| (b.clone(), Vec::new()))
                .collect()
        };
        let (envs, refs) = deploy::references(&url, &inputs, &branches, ws.quiet)?;
        (Some(envs), refs)
    } else {
        (None, Vec::new())
    };

    // The registries.
    let mut clients: BTreeMap<String, Arc<Registry>> = BTreeMap::new();
    let hosts = registries
        .iter()
        .cloned()
        .chain(references.iter().map(|r| r.registry.clone()));
    for prefix in hosts {
        if clients.contains_key(&prefix.host) {
            continue;
        }
        let creds = credentials::lookup(&prefix)
            .with_context(|| format!("reading credentials for {prefix}"))?;
        if let Some(c) = &creds {
            actions::mask(&c.password);
        }
        let insecure = images_cfg
            .insecure_registries
            .iter()
            .any(|h| h == &prefix.host);
        clients.insert(
            prefix.host.clone(),
            Arc::new(Registry::new(prefix.clone(), creds, insecure)),
        );
    }
    let reader = Reader {
        clients,
        jobs: req.jobs.unwrap_or(DEFAULT_JOBS).max(1),
    };
    let scope = check::Scope {
        expect: &expect,
        selected: &selected,
        services: &service_list,
        registries: &registries,
    };
    if !ws.quiet {
        crate::say!(
            "auditing {} × {} × {}{}",
            crate::output::text::count(selected.len(), "release"),
            crate::output::text::count(service_list.len(), "service"),
            crate::output::text::count(registries.len(), "registry"),
            if req.deploy {
                format!(
                    ", and {} of the deploy repository",
                    crate::output::text::count(references.len(), "image reference")
                )
            } else {
                String::new()
            }
        );
    }
    let runtime = crate::deploy::plan::runtime()?;
    let probe = service_list
        .first()
        .map(|s| s.0.clone())
        .unwrap_or_default();
    let mut store = runtime.block_on(async {
        for r in &registries {
            let client = &reader.clients[&r.host];
            client
                .check(&r.repository(&probe))
                .await
                .with_context(|| format!("registry {r} is not usable"))?;
        }
        let mut store = Store::default();
        let wanted = scope
            .tag_lookups()
            .into_iter()
            .chain(check::deploy_lookups(&references));
        reader.lookup_or_read(&mut store, wanted).await;
        reader.follow(&mut store).await;
        anyhow::Ok(store)
    })?;

    // Where the images come from, judged once per (revision, commit, service).
    let provenance = SameBuild::new(repo, &specs);
    let ancestry =
        |revision: &str, commit: &str, service: &str| provenance.judge(revision, commit, service);
    let canon = check::canonical(&scope, &store, &ancestry);
    runtime.block_on(reader.lookup(&mut store, check::presence_lookups(&scope, &canon)));
    let mut counts = check::Counts::default();
    let mut findings = check::findings(&scope, &store, &canon, &ancestry, &mut counts);
    let platforms_of = |service: &str| -> Vec<Platform> {
        specs
            .iter()
            .find(|s| s.name == service)
            .map(|s| s.platforms.clone())
            .unwrap_or_default()
    };
    findings.extend(check::deploy_findings(
        &references,
        &store,
        &platforms_of,
        &ancestry,
        &mut check::Counts::default(),
    ));

    let mut report = AuditReport {
        schema_version: 1,
        ok: false,
        releases: selected
            .iter()
            .map(|&i| {
                let r = &expect.releases[i];
                ReleaseRow {
                    git_tag: r.name.clone(),
                    version: r.version.clone(),
                    commit: r.commit.clone(),
                    tags: r.tags.clone(),
                    aliases: expect.aliases_of(i).iter().map(|a| a.to_string()).collect(),
                    ok: !findings
                        .iter()
                        .any(|f| f.release.as_deref() == Some(r.name.as_str())),
                }
            })
            .collect(),
        services: service_list.iter().map(|s| s.0.clone()).collect(),
        registries: registries.iter().map(ToString::to_string).collect(),
        checked: Checked {
            releases: selected.len(),
            services: service_list.len(),
            registries: registries.len(),
            tags: counts.tags,
            images: counts.images,
            platforms: counts.platforms,
            deploy_references: references.len(),
            requests: store.requests,
        },
        deploy: environments,
        findings,
        fixed: 0,
        not_checked: NOT_CHECKED.iter().map(|s| s.to_string()).collect(),
        fix: req.fix,
    };
    if req.fix {
        repair(ws, &reader, &runtime, &mut report);
    }
    let open = report.open().count();
    report.ok = open == 0;
    Ok(report)
}

/// The releases asked for: `--tag`, `--last N`, else all.
fn select(expect: &expect::Expectations, req: &AuditRequest, prefix: &str) -> Result<Vec<usize>> {
    if !req.tags.is_empty() && req.last.is_some() {
        return Err(
            BadInput("--tag and --last choose the releases two ways; give one".into()).into(),
        );
    }
    if let Some(n) = req.last {
        if n == 0 {
            return Err(BadInput("--last 0 audits nothing; give 1 or more".into()).into());
        }
        let all = expect.releases.len();
        return Ok((all.saturating_sub(n)..all).collect());
    }
    if req.tags.is_empty() {
        return Ok((0..expect.releases.len()).collect());
    }
    let mut out = Vec::new();
    for t in &req.tags {
        let i = expect.index_of(t).ok_or_else(|| {
            let what = match classify(t, prefix) {
                Some(k) if !expect::is_release(&k) => format!(
                    "{t} is not a release: the audit checks releases ({prefix}X.Y.Z) and patches \
                     ({prefix}X.Y.Z-patch.N)"
                ),
                _ => format!("{t} is not a release tag of this repository"),
            };
            let known: Vec<&str> = expect
                .releases
                .iter()
                .rev()
                .take(5)
                .map(|r| r.name.as_str())
                .collect();
            BadInput(format!("--tag {what}; the newest are {}", known.join(", ")))
        })?;
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// `--fix`: print the plan, then write each tag that a registry's own image
/// repairs. Nothing is copied between registries, nothing rebuilt.
fn repair(
    ws: &Workspace,
    reader: &Reader,
    runtime: &tokio::runtime::Runtime,
    report: &mut AuditReport,
) {
    let todo: Vec<usize> = report
        .findings
        .iter()
        .enumerate()
        .filter(|(_, f)| f.fix.action == FixAction::Retag && f.loc.is_some() && f.tag.is_some())
        .map(|(i, _)| i)
        .collect();
    let left = report.findings.len() - todo.len();
    if !ws.quiet {
        if todo.is_empty() {
            crate::say!(
                "fix: nothing to repair here{}",
                if left > 0 {
                    " (see the table: the rest needs a mirror, a rebuild or a person)"
                } else {
                    ""
                }
            );
        } else {
            crate::say!("fix: {}:", crate::output::text::count(todo.len(), "repair"));
            for &i in &todo {
                let f = &report.findings[i];
                crate::say!(
                    "  {}/{}:{} -> {}",
                    f.registry.as_deref().unwrap_or_default(),
                    f.service,
                    f.tag.as_deref().unwrap_or_default(),
                    store::short(f.fix.digest.as_deref().unwrap_or_default())
                );
            }
        }
    }
    let results: Vec<(usize, Result<(), String>)> = runtime.block_on(async {
        let mut out = Vec::new();
        for &i in &todo {
            let f = &report.findings[i];
            let (Some((host, repo)), Some(tag), Some(digest)) =
                (f.loc.as_ref(), f.tag.as_deref(), f.fix.digest.as_deref())
            else {
                continue;
            };
            let result = match reader.clients.get(host) {
                None => Err(format!("no client for {host}")),
                Some(r) => match store::manifest_bytes(r, repo, digest).await {
                    Ok(m) => r
                        .put_manifest(repo, tag, &m)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                },
            };
            out.push((i, result));
        }
        out
    });
    for (i, result) in results {
        let f = &mut report.findings[i];
        match result {
            Ok(()) => {
                f.fix.status = FixStatus::Applied;
                report.fixed += 1;
            }
            Err(e) => {
                f.fix.status = FixStatus::Failed;
                f.fix.error = Some(e);
            }
        }
    }
    for row in &mut report.releases {
        row.ok = !report.findings.iter().any(|f| {
            f.release.as_deref() == Some(row.git_tag.as_str()) && f.fix.status != FixStatus::Applied
        });
    }
}

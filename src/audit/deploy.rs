//! `audit --deploy`: every image the deploy repository references, on each
//! environment branch (`stages.<stage>.base`, and `deploy.base`). The
//! repository is cloned as `gitops` clones it, and the references are found
//! by the very code that edits them (`deploy::edits::plan`, asked to set a
//! tag no file holds: every place it would change is a place that deploys
//! an image, and what it would replace is what is deployed there).

use crate::clients::git::Repo;
use crate::deploy::chart;
use crate::deploy::edits::{split_reference, DeployInputs, Release};
use crate::deploy::plan::plan_edits;
use crate::error::BadInput;
use crate::oci::reference::RegistryPrefix;
use crate::secret::scrub;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;

/// A tag no deploy file holds (and no image has: it is never looked up).
const PROBE: &str = "openim-release-audit-probe";

/// One environment branch of the deploy repository.
#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    pub branch: String,
    /// The stages that deploy there.
    pub stages: Vec<String>,
    /// The commit read; `None` when the branch does not exist.
    pub commit: Option<String>,
    /// Image references found.
    pub references: usize,
    /// Places whose image could not be told (no tag, the chart's
    /// appVersion outside a chart directory): not checked.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unchecked: Vec<String>,
}

/// An image the deploy repository references.
#[derive(Debug, Clone)]
pub struct Reference {
    pub branch: String,
    /// `k8s/openim-api.yaml:12`, `charts/openim-server/values.yaml: image.tag`.
    pub place: String,
    pub service: String,
    /// As deployed: `ghcr.io/openimsdk/openim-api:v3.8.1[@sha256:…]`.
    pub image: String,
    pub registry: RegistryPrefix,
    pub name: String,
    pub tag: String,
    pub digest: Option<String>,
}

/// The environment branches: each stage's base (stages that deploy), and
/// `deploy.base` (default `main`), each once, with the stages that use it.
pub fn environments(config: &crate::config::Config) -> Vec<(String, Vec<String>)> {
    let deploy_base = config
        .deploy
        .as_ref()
        .and_then(|d| d.base.clone())
        .unwrap_or_else(|| "main".to_string());
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut add = |branch: String, stage: Option<&str>| {
        let entry = match out.iter().position(|(b, _)| *b == branch) {
            Some(i) => &mut out[i],
            None => {
                out.push((branch, Vec::new()));
                out.last_mut().expect("just pushed")
            }
        };
        if let Some(s) = stage {
            entry.1.push(s.to_string());
        }
    };
    add(deploy_base.clone(), None);
    for (stage, cfg) in &config.stages {
        if cfg.deploy == Some(false) {
            continue;
        }
        add(
            cfg.base.clone().unwrap_or_else(|| deploy_base.clone()),
            Some(stage),
        );
    }
    out
}

/// Clone the deploy repository and read every image reference of each
/// branch.
pub fn references(
    url: &str,
    inputs: &DeployInputs,
    branches: &[(String, Vec<String>)],
    quiet: bool,
) -> Result<(Vec<Environment>, Vec<Reference>)> {
    let work = tempfile::Builder::new()
        .prefix("openim-release-audit-")
        .tempdir()
        .context("creating a work directory")?;
    let dir = work.path().join("deploy");
    let (first, _) = branches.first().context("no deploy branch")?;
    if !quiet {
        crate::say!("cloning {} ({first})", scrub(url, &[]));
    }
    let repo = Repo::clone_shallow(url, first, &dir)?;
    // The edits without side effects on versions: a chart's version that
    // is no semver must not stop an audit.
    let mut inputs = inputs.clone();
    for c in &mut inputs.charts {
        c.bump = chart::ChartBump::None;
    }
    let probe = Release {
        tag: PROBE.to_string(),
        app_version: None,
        digests: Default::default(),
    };
    let mut envs = Vec::new();
    let mut refs = Vec::new();
    for (i, (branch, stages)) in branches.iter().enumerate() {
        let commit = if i == 0 {
            Some(repo.head()?.sha)
        } else {
            match repo.fetch_branch("origin", branch)? {
                Some(tip) => {
                    repo.reset_hard(&tip)?;
                    Some(tip)
                }
                None => None,
            }
        };
        let mut env = Environment {
            branch: branch.clone(),
            stages: stages.clone(),
            commit: commit.clone(),
            references: 0,
            unchecked: Vec::new(),
        };
        if commit.is_none() {
            if !quiet {
                crate::say!(
                    "note: the deploy repository has no branch {branch} (stages {}): nothing deployed there to check",
                    stages.join(", ")
                );
            }
            envs.push(env);
            continue;
        }
        let plan = plan_edits(&dir, &inputs, &probe)
            .with_context(|| format!("reading the deploy files of branch {branch}"))?;
        for image in &plan.images {
            let Some((file, key)) = image.file.split_once(": ") else {
                continue;
            };
            match values_reference(
                &dir,
                file,
                key,
                &image.service,
                image.old.as_deref(),
                &inputs,
            )? {
                Ok(found) => {
                    for (image_ref, digest) in found {
                        refs.push(reference(
                            branch,
                            &image.file,
                            &image.service,
                            &image_ref,
                            digest,
                        )?);
                    }
                }
                Err(why) => env.unchecked.push(format!("{}: {why}", image.file)),
            }
        }
        for r in &plan.references {
            let (repo_tag, digest) = match r.old.split_once('@') {
                Some((a, d)) => (a.to_string(), Some(d.to_string())),
                None => (r.old.clone(), None),
            };
            let place = format!("{}:{}", r.file, r.line);
            if split_reference(&repo_tag).is_err() {
                env.unchecked
                    .push(format!("{place}: {} names no tag", r.old));
                continue;
            }
            refs.push(reference(branch, &place, &r.service, &repo_tag, digest)?);
        }
        env.references = refs.iter().filter(|r| r.branch == *branch).count();
        envs.push(env);
    }
    Ok((envs, refs))
}

fn reference(
    branch: &str,
    place: &str,
    service: &str,
    repo_tag: &str,
    digest: Option<String>,
) -> Result<Reference> {
    let (registry, name, tag) = split_reference(repo_tag)
        .map_err(|e| BadInput(format!("branch {branch}, {place}: {e:#}")))?;
    Ok(Reference {
        branch: branch.to_string(),
        place: place.to_string(),
        service: service.to_string(),
        image: match &digest {
            Some(d) => format!("{repo_tag}@{d}"),
            None => repo_tag.to_string(),
        },
        registry,
        name,
        tag,
        digest,
    })
}

/// The images a values file deploys at `key`: `repository:tag` (the
/// configured registries × the service when the file names no
/// repository), with the digest pinned beside the tag or in it; `Err` says
/// why it cannot be told.
#[allow(clippy::type_complexity)]
fn values_reference(
    root: &Path,
    file: &str,
    key: &str,
    service: &str,
    old: Option<&str>,
    inputs: &DeployInputs,
) -> Result<Result<Vec<(String, Option<String>)>, String>> {
    let text =
        std::fs::read_to_string(root.join(file)).with_context(|| format!("reading {file}"))?;
    let get = |k: &str| -> Option<String> {
        let path = crate::yamledit::parse_path(k).ok()?;
        crate::yamledit::get(&text, &path).ok().flatten()
    };
    let (mut tag, mut digest) = match old.unwrap_or_default().split_once('@') {
        Some((t, d)) => (t.to_string(), Some(d.to_string())),
        None => (old.unwrap_or_default().to_string(), None),
    };
    if digest.is_none() {
        let digest_key = match key.rsplit_once('.') {
            Some((parent, _)) => format!("{parent}.digest"),
            None => "digest".to_string(),
        };
        digest = get(&digest_key).filter(|d| crate::oci::is_digest(d));
    }
    if tag.is_empty() {
        match app_version(root, file, key) {
            Some(v) => tag = v,
            None => {
                return Ok(Err(
                    "no tag, and no chart appVersion in its directory to default to".to_string(),
                ))
            }
        }
    }
    let repos =
        match chart::repository_beside(&text, file, key).map_err(|e| anyhow::anyhow!("{e}"))? {
            Some(r) => vec![r],
            None if inputs.registries.is_empty() => {
                return Ok(Err(
                    "no repository beside the tag and no images.registries".into()
                ))
            }
            None => inputs
                .registries
                .iter()
                .map(|r| format!("{}/{service}", r.trim_end_matches('/')))
                .collect(),
        };
    Ok(Ok(repos
        .into_iter()
        .map(|r| (format!("{r}:{tag}"), digest.clone()))
        .collect()))
}

/// The appVersion a chart's image tag defaults to: the chart whose
/// directory holds the values file, or, for an override of one of its
/// subcharts (`openim-api.image.tag`), that subchart's.
fn app_version(root: &Path, file: &str, key: &str) -> Option<String> {
    let dir = Path::new(file).parent()?;
    let chart_yaml = |d: &Path| std::fs::read_to_string(root.join(d).join("Chart.yaml")).ok();
    let own = chart_yaml(dir)?;
    let first = key.split('.').next().unwrap_or_default();
    let text = chart_yaml(&dir.join("charts").join(first)).unwrap_or(own);
    crate::yamledit::get(&text, &["appVersion".to_string()])
        .ok()
        .flatten()
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, DeployConfig, StageConfig};

    #[test]
    fn environments_are_the_stages_bases_each_once() {
        let mut config = Config {
            deploy: Some(DeployConfig {
                base: Some("main".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let stage = |base: Option<&str>, deploy: Option<bool>| StageConfig {
            base: base.map(str::to_string),
            deploy,
            ..Default::default()
        };
        config.stages.insert("dev".into(), stage(Some("dev"), None));
        config
            .stages
            .insert("nightly".into(), stage(None, Some(false)));
        config.stages.insert("rc".into(), stage(Some("test"), None));
        config.stages.insert("release".into(), stage(None, None));
        assert_eq!(
            environments(&config),
            [
                ("main".to_string(), vec!["release".to_string()]),
                ("dev".to_string(), vec!["dev".to_string()]),
                ("test".to_string(), vec!["rc".to_string()]),
            ]
        );
    }

    #[test]
    fn an_empty_tag_is_the_charts_app_version() {
        let dir = tempfile::tempdir().unwrap();
        let write = |p: &str, t: &str| {
            let f = dir.path().join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, t).unwrap();
        };
        write(
            "charts/s/Chart.yaml",
            "name: s\nversion: 1.0.0\nappVersion: \"3.8.0\"\n",
        );
        write(
            "charts/s/charts/openim-api/Chart.yaml",
            "name: openim-api\nappVersion: 3.8.1\n",
        );
        assert_eq!(
            app_version(dir.path(), "charts/s/values.yaml", "image.tag").as_deref(),
            Some("3.8.0")
        );
        assert_eq!(
            app_version(dir.path(), "charts/s/values.yaml", "openim-api.image.tag").as_deref(),
            Some("3.8.1")
        );
        assert_eq!(app_version(dir.path(), "override.yaml", "image.tag"), None);
    }
}

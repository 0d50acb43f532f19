//! Planning and applying deploy edits in a checkout of the deploy repository:
//! which files change and how (via the pure `chart` functions), checking
//! that every referenced image exists, the unified diff, and writing.
//! Nothing is written until every edit is computed and verified.

use crate::chart::{self, ChartBump, DigestPin, ImageMatcher, RefChange, ScalarChange};
use crate::imageref::RegistryPrefix;
use crate::registry::Registry;
use anyhow::{anyhow, Context, Result};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What is being deployed.
#[derive(Debug, Clone, Default)]
pub struct Release {
    /// The image tag every service gets.
    pub tag: String,
    /// Chart appVersion (X.Y.Z), when known.
    pub app_version: Option<String>,
    /// service -> manifest digest (from `build --output json`).
    pub digests: BTreeMap<String, String>,
}

/// Which subcharts of an umbrella chart get the new tag and appVersion.
#[derive(Debug, Clone)]
pub enum Subcharts {
    /// Subcharts named after these services.
    Named(Vec<String>),
    /// Subcharts released with the parent: same appVersion as the parent
    /// before the edit, and an image tag key (the one-off `chart bump`).
    SameAppVersion,
}

/// One chart to edit.
#[derive(Debug, Clone)]
pub struct ChartSpec {
    /// Chart directory, relative to the checkout root.
    pub dir: PathBuf,
    /// Values file, relative to the checkout root.
    pub values: PathBuf,
    /// (service, key path) pairs in the values file.
    pub images: Vec<(String, String)>,
    pub bump: ChartBump,
    pub pin: DigestPin,
    pub subcharts: Subcharts,
    pub subchart_key: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileEdit {
    pub path: String,
    #[serde(skip)]
    pub before: String,
    #[serde(skip)]
    pub after: String,
}

/// Every edit, computed before anything is written.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeployPlan {
    pub files: Vec<FileEdit>,
    pub scalars: Vec<ScalarChange>,
    pub references: Vec<RefChange>,
    /// Image references (`repo:tag`) the edits point at, for verification.
    pub verify: BTreeSet<String>,
    /// Per service: old tag → new tag (for the PR body).
    pub images: Vec<ImageChange>,
    /// Edited image keys whose repository is unknown (cannot be verified).
    pub unverifiable: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ImageChange {
    pub service: String,
    pub file: String,
    pub old: Option<String>,
    pub new: String,
    pub digest: Option<String>,
}

impl DeployPlan {
    pub fn changed(&self) -> bool {
        !self.files.is_empty()
    }
}

fn rel(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "/")
}

fn read(root: &Path, p: &Path) -> Result<String> {
    let full = root.join(p);
    std::fs::read_to_string(&full).with_context(|| format!("reading {}", rel(p)))
}

/// Keep the newest text of each file across several edits.
struct Texts {
    root: PathBuf,
    files: BTreeMap<String, (String, String)>,
}

impl Texts {
    fn get(&mut self, p: &Path) -> Result<String> {
        let key = rel(p);
        if let Some((_, after)) = self.files.get(&key) {
            return Ok(after.clone());
        }
        let text = read(&self.root, p)?;
        self.files.insert(key, (text.clone(), text.clone()));
        Ok(text)
    }

    fn put(&mut self, p: &Path, text: String) {
        let key = rel(p);
        if let Some(entry) = self.files.get_mut(&key) {
            entry.1 = text;
        }
    }

    fn changed_under(&self, dir: &Path) -> bool {
        let prefix = format!("{}/", rel(dir).trim_end_matches('/'));
        self.files
            .iter()
            .any(|(k, (b, a))| b != a && (k.starts_with(&prefix) || prefix == "./"))
    }

    fn into_edits(self) -> Vec<FileEdit> {
        self.files
            .into_iter()
            .filter(|(_, (b, a))| b != a)
            .map(|(path, (before, after))| FileEdit {
                path,
                before,
                after,
            })
            .collect()
    }
}

/// Every deploy surface to edit (from `deploy:` of the config, or one chart).
#[derive(Debug, Clone)]
pub struct DeployInputs {
    pub charts: Vec<ChartSpec>,
    pub manifests: Vec<PathBuf>,
    pub env_files: Vec<PathBuf>,
    pub matcher: ImageMatcher,
    /// Where images live when a values file names no repository.
    pub registries: Vec<String>,
    /// Registries reached over plain HTTP (verification).
    pub insecure: Vec<String>,
}

/// Plan every edit of `inputs` in the checkout at `root`.
pub fn plan(root: &Path, inputs: &DeployInputs, release: &Release) -> Result<DeployPlan> {
    let mut texts = Texts {
        root: root.to_path_buf(),
        files: BTreeMap::new(),
    };
    let mut out = DeployPlan::default();
    for spec in &inputs.charts {
        plan_chart(&mut texts, spec, &inputs.registries, release, &mut out)?;
    }
    let digest_of = |s: &str| release.digests.get(s).cloned();
    let surfaces = inputs
        .manifests
        .iter()
        .map(|p| {
            (
                p,
                chart::rewrite_manifest
                    as fn(&str, &chart::RefTarget, &mut Vec<RefChange>) -> String,
            )
        })
        .chain(
            inputs
                .env_files
                .iter()
                .map(|p| (p, chart::rewrite_env as _)),
        );
    for (path, rewrite) in surfaces {
        let text = texts.get(path)?;
        let file = rel(path);
        let target = chart::RefTarget {
            file: &file,
            matcher: &inputs.matcher,
            tag: &release.tag,
            digest_of: &digest_of,
        };
        let mut refs = Vec::new();
        let new = rewrite(&text, &target, &mut refs);
        texts.put(path, new);
        collect_refs(&mut out, refs);
    }
    out.files = texts.into_edits();
    Ok(out)
}

fn collect_refs(out: &mut DeployPlan, refs: Vec<RefChange>) {
    for r in refs {
        let without_digest = r.new.split('@').next().unwrap_or(&r.new).to_string();
        out.verify.insert(without_digest);
        let (old_tag, new_tag) = (tag_of(&r.old), tag_of(&r.new));
        out.images.push(ImageChange {
            service: r.service.clone(),
            file: format!("{}:{}", r.file, r.line),
            old: old_tag,
            new: new_tag.unwrap_or_default(),
            digest: r.new.split_once('@').map(|(_, d)| d.to_string()),
        });
        out.references.push(r);
    }
}

fn tag_of(reference: &str) -> Option<String> {
    let no_digest = reference.split('@').next()?;
    let (_, tag) = no_digest.rsplit_once(':')?;
    (!tag.contains('/')).then(|| tag.to_string())
}

fn has_subcharts(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("charts"))
        .map(|entries| {
            entries
                .flatten()
                .any(|e| e.path().join("Chart.yaml").is_file())
        })
        .unwrap_or(false)
}

fn plan_chart(
    texts: &mut Texts,
    spec: &ChartSpec,
    registries: &[String],
    release: &Release,
    out: &mut DeployPlan,
) -> Result<()> {
    let chart_yaml = spec.dir.join("Chart.yaml");
    if !texts.root.join(&chart_yaml).is_file() {
        return Err(anyhow!(
            "{} not found: is {} a Helm chart?",
            rel(&chart_yaml),
            rel(&spec.dir)
        ));
    }
    let values_name = rel(&spec.values);
    // Values of the chart itself.
    for (service, key) in &spec.images {
        // `chart bump` of an umbrella whose own values have no image: its
        // subcharts carry the images.
        let skip_missing = matches!(spec.subcharts, Subcharts::SameAppVersion)
            && has_subcharts(&texts.root.join(&spec.dir));
        let target = ValuesImage {
            values: &spec.values,
            service,
            key,
        };
        edit_image(texts, out, &target, spec, release, registries, skip_missing)?;
    }
    // Subcharts of an umbrella chart.
    let parent_text = texts.get(&chart_yaml)?;
    let parent_app = crate::yamledit::get(&parent_text, &["appVersion".to_string()])
        .ok()
        .flatten();
    let charts_dir = texts.root.join(&spec.dir).join("charts");
    if let Ok(entries) = std::fs::read_dir(&charts_dir) {
        let mut dirs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("Chart.yaml").is_file())
            .collect();
        dirs.sort();
        for dir in dirs {
            let sub_rel = spec
                .dir
                .join("charts")
                .join(dir.file_name().unwrap_or_default());
            let sub_chart = sub_rel.join("Chart.yaml");
            let sub_values = sub_rel.join("values.yaml");
            let sub_text = texts.get(&sub_chart)?;
            let name = crate::yamledit::get(&sub_text, &["name".to_string()])
                .ok()
                .flatten()
                .unwrap_or_else(|| {
                    dir.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned()
                });
            let selected = match &spec.subcharts {
                Subcharts::Named(services) => services.contains(&name),
                Subcharts::SameAppVersion => {
                    let app = crate::yamledit::get(&sub_text, &["appVersion".to_string()])
                        .ok()
                        .flatten();
                    app.is_some() && app == parent_app
                }
            };
            if !selected || !texts.root.join(&sub_values).is_file() {
                continue;
            }
            // Released with the parent but without an image of its own: skip.
            let skip_missing = matches!(spec.subcharts, Subcharts::SameAppVersion);
            let target = ValuesImage {
                values: &sub_values,
                service: &name,
                key: &spec.subchart_key,
            };
            if !edit_image(texts, out, &target, spec, release, registries, skip_missing)? {
                continue;
            }
            let sub_new = chart::set_app_version(
                &sub_text,
                &rel(&sub_chart),
                release.app_version.as_deref(),
                &mut out.scalars,
            )?;
            texts.put(&sub_chart, sub_new);
        }
    }
    // The chart itself: appVersion, and the version bumped once when
    // anything in the chart changed (never on a re-run with nothing to do).
    let with_app = chart::set_app_version(
        &parent_text,
        &rel(&chart_yaml),
        release.app_version.as_deref(),
        &mut out.scalars,
    )?;
    texts.put(&chart_yaml, with_app.clone());
    if texts.changed_under(&spec.dir) || texts.files.get(&values_name).is_some_and(|(b, a)| b != a)
    {
        let bumped =
            chart::bump_version(&with_app, &rel(&chart_yaml), spec.bump, &mut out.scalars)?;
        texts.put(&chart_yaml, bumped);
    }
    Ok(())
}

/// An image key in a values file: which service's tag goes where.
struct ValuesImage<'a> {
    values: &'a Path,
    service: &'a str,
    key: &'a str,
}

/// Set the tag (and digest, as `spec.pin` says) at `target` and record the
/// change. False when the key is missing and `skip_missing` allows that.
fn edit_image(
    texts: &mut Texts,
    out: &mut DeployPlan,
    target: &ValuesImage<'_>,
    spec: &ChartSpec,
    release: &Release,
    registries: &[String],
    skip_missing: bool,
) -> Result<bool> {
    let text = texts.get(target.values)?;
    let name = rel(target.values);
    let digest = release.digests.get(target.service).map(String::as_str);
    let mut changes = Vec::new();
    let new = match chart::set_image(
        &text,
        &name,
        target.key,
        &release.tag,
        digest,
        spec.pin,
        &mut changes,
    ) {
        Ok(t) => t,
        Err(e) if e.is_not_found() && skip_missing => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    // What the PR body lists, and what verification will look up.
    let (service, key, tag) = (target.service, target.key, &release.tag);
    let old = crate::yamledit::get(
        &text,
        &crate::yamledit::parse_path(key).map_err(|e| anyhow!("{e}"))?,
    )
    .ok()
    .flatten();
    out.images.push(ImageChange {
        service: service.to_string(),
        file: format!("{name}: {key}"),
        old,
        new: tag.clone(),
        digest: (spec.pin != DigestPin::None)
            .then(|| digest.map(str::to_string))
            .flatten(),
    });
    match chart::repository_beside(&text, &name, key)? {
        Some(repo) => {
            out.verify.insert(format!("{repo}:{tag}"));
        }
        None if registries.is_empty() => out.unverifiable.push(format!("{name}: {key}")),
        None => {
            for r in registries {
                out.verify
                    .insert(format!("{}/{service}:{tag}", r.trim_end_matches('/')));
            }
        }
    }
    out.scalars.extend(changes);
    texts.put(target.values, new);
    Ok(true)
}

/// `ghcr.io/openimsdk/openim-api:v1` → (registry prefix, name, tag).
pub fn split_reference(reference: &str) -> Result<(RegistryPrefix, String, String)> {
    let (repo, tag) = reference
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .ok_or_else(|| anyhow!("`{reference}` has no tag"))?;
    let (prefix, name) = match repo.rsplit_once('/') {
        Some((p, n)) => (
            RegistryPrefix::parse(p).map_err(|e| anyhow!(e))?,
            n.to_string(),
        ),
        None => (
            RegistryPrefix::parse("docker.io/library").map_err(|e| anyhow!(e))?,
            repo.to_string(),
        ),
    };
    Ok((prefix, name, tag.to_string()))
}

/// Check that every reference exists, with every platform of an index.
/// Returns the missing ones (with why); empty means all good.
/// What `verify` found wrong: images (or platforms) the registries do not
/// have, and references that could not be checked at all.
#[derive(Debug, Default)]
pub struct Verification {
    pub missing: Vec<String>,
    pub unchecked: Vec<String>,
}

pub async fn verify(references: &BTreeSet<String>, insecure: &[String]) -> Result<Verification> {
    let mut clients: BTreeMap<String, Registry> = BTreeMap::new();
    let mut missing = Vec::new();
    let mut unchecked = Vec::new();
    // A registry that failed once (after its retries) is not asked again.
    let mut failed_hosts: BTreeSet<String> = BTreeSet::new();
    for reference in references {
        let (prefix, name, tag) = split_reference(reference)?;
        let key = prefix.host.clone();
        if failed_hosts.contains(&key) {
            unchecked.push(format!("{reference}: {key} did not answer"));
            continue;
        }
        if !clients.contains_key(&key) {
            let creds = crate::credentials::lookup(&prefix)?;
            if let Some(c) = &creds {
                crate::actions::mask(&c.password);
            }
            let insecure = insecure.iter().any(|h| h == &prefix.host);
            clients.insert(key.clone(), Registry::new(prefix.clone(), creds, insecure));
        }
        let client = &clients[&key];
        let repo = prefix.repository(&name);
        match client.get_manifest(&repo, &tag).await {
            Ok(Some(found)) => {
                if let Ok(index) = serde_json::from_slice::<crate::oci::Index>(&found.bytes) {
                    for m in &index.manifests {
                        match client.get_manifest(&repo, &m.digest).await {
                            Ok(Some(_)) => {}
                            Ok(None) => missing.push(format!(
                                "{reference} ({} missing)",
                                m.platform
                                    .as_ref()
                                    .map(ToString::to_string)
                                    .unwrap_or_else(|| m.digest.clone())
                            )),
                            Err(e) => unchecked.push(format!("{reference}: {e}")),
                        }
                    }
                }
            }
            Ok(None) => missing.push(format!("{reference} (no such tag)")),
            Err(e) => {
                unchecked.push(format!("{reference}: {e}"));
                failed_hosts.insert(key);
            }
        }
    }
    Ok(Verification { missing, unchecked })
}

/// Write every edited file (temp file + rename: a file is never half written).
pub fn write(root: &Path, plan: &DeployPlan) -> Result<()> {
    for f in &plan.files {
        let full = root.join(&f.path);
        let tmp = full.with_extension(format!(
            "{}.openim-release.tmp",
            full.extension()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        std::fs::write(&tmp, &f.after).with_context(|| format!("writing {}", f.path))?;
        if let Ok(meta) = std::fs::metadata(&full) {
            let _ = std::fs::set_permissions(&tmp, meta.permissions());
        }
        std::fs::rename(&tmp, &full).with_context(|| format!("writing {}", f.path))?;
    }
    Ok(())
}

/// The unified diff of every edit (a/ and b/ prefixes, as git prints it).
pub fn unified_diff(plan: &DeployPlan) -> String {
    let mut out = String::new();
    for f in &plan.files {
        let diff = similar::TextDiff::from_lines(&f.before, &f.after);
        out.push_str(&format!("diff --git a/{0} b/{0}\n", f.path));
        out.push_str(
            &diff
                .unified_diff()
                .context_radius(3)
                .header(&format!("a/{}", f.path), &format!("b/{}", f.path))
                .to_string(),
        );
    }
    out
}

/// The pull request body: every service with old → new tag and digest.
pub fn pr_body(plan: &DeployPlan, stage: &str, version: Option<&str>, tag: &str) -> String {
    let mut md = format!(
        "Deploys **{}** (stage `{stage}`{}).\n\n| service | where | old | new | digest |\n|---|---|---|---|---|\n",
        tag,
        version.map(|v| format!(", version {v}")).unwrap_or_default()
    );
    for i in &plan.images {
        md.push_str(&format!(
            "| {} | `{}` | {} | `{}` | {} |\n",
            i.service,
            i.file,
            match i.old.as_deref() {
                None => "—".to_string(),
                Some("") => "`\"\"`".to_string(),
                Some(o) => format!("`{o}`"),
            },
            i.new,
            i.digest
                .as_deref()
                .map(|d| format!("`{d}`"))
                .unwrap_or_else(|| "—".into())
        ));
    }
    md.push_str("\nFiles: ");
    md.push_str(
        &plan
            .files
            .iter()
            .map(|f| format!("`{}`", f.path))
            .collect::<Vec<_>>()
            .join(", "),
    );
    md.push_str("\n\n<sub>Opened by openim-release; re-running updates this pull request.</sub>\n");
    md
}

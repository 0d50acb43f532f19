//! Planning and applying deploy edits in a checkout of the deploy repository:
//! which files change and how (via the pure `chart` functions), checking
//! that every referenced image exists, the unified diff, and writing.
//! Nothing is written until every edit is computed and verified.
//!
//! Nothing is skipped silently: a subchart that is not edited is listed in
//! [`DeployPlan::skipped`] with the reason, and a configured file or chart
//! where no image of a configured service was found, or an image of a
//! service in a registry that is not configured, is a [`Warning`].

use crate::clients::registry::Registry;
use crate::deploy::chart::{
    self, ChartBump, DigestPin, ImageClass, ImageMatcher, RefChange, RefScan, ScalarChange,
};
use crate::oci::reference::RegistryPrefix;
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

/// One chart to edit.
#[derive(Debug, Clone)]
pub struct ChartSpec {
    /// Chart directory, relative to the checkout root.
    pub dir: PathBuf,
    /// Values files, relative to the checkout root (at least one).
    pub values: Vec<PathBuf>,
    /// Whether `values` was configured (each must exist) or is the default
    /// `values.yaml` (skipped when the chart has none).
    pub values_configured: bool,
    /// (service, key path) pairs, each set in every values file that has it.
    pub images: Vec<(String, String)>,
    pub bump: ChartBump,
    pub pin: DigestPin,
    /// Key path of the image tag in each subchart's values (and, for a
    /// chart without `images`, in its own values).
    pub subchart_key: String,
    /// `images` keys may be missing from every values file (`chart bump` of
    /// an umbrella whose own values have no image: its subcharts carry them).
    pub optional_images: bool,
    /// A chart whose templates derive every image from its appVersion: the
    /// image each service runs (`{appVersion}`, `{service}`). The deploy
    /// sets appVersion and verifies these images; no values key is edited.
    pub image_pattern: Option<String>,
    /// With `image_pattern`: the services the chart deploys.
    pub pattern_services: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileEdit {
    pub path: String,
    #[serde(skip)]
    pub before: String,
    #[serde(skip)]
    pub after: String,
}

/// Something that deserves a look: a configured file or chart where no
/// image of a configured service was found, an image of a service in a
/// registry that is not configured. `--strict` refuses to go on.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Warning {
    pub file: String,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

/// A subchart of an umbrella chart that was left alone, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SkippedChart {
    /// The umbrella chart's directory.
    pub chart: String,
    /// The subchart's directory.
    pub subchart: String,
    /// Its `name`.
    pub name: String,
    /// The image repository its values name, if any.
    pub image: Option<String>,
    pub reason: String,
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
    pub warnings: Vec<Warning>,
    pub skipped: Vec<SkippedChart>,
    /// (values file, key) → (service, value) written there: one key never
    /// takes two services' different values.
    #[serde(skip)]
    written: BTreeMap<(String, String), (String, String)>,
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

    fn warn(&mut self, file: impl Into<String>, message: impl Into<String>) {
        let w = Warning {
            file: file.into(),
            message: message.into(),
        };
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }
}

/// `1 file`, `2 files`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn rel(p: &Path) -> String {
    let s = p.to_string_lossy().replace('\\', "/");
    let s = s.trim_end_matches('/');
    s.strip_prefix("./").unwrap_or(s).to_string()
}

/// A file of the deploy checkout. One that is not there is a configuration
/// problem (exit 2); one that cannot be read is a failure (exit 1).
fn read(root: &Path, p: &Path) -> Result<String> {
    let full = root.join(p);
    match std::fs::read_to_string(&full) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(crate::error::BadInput(format!(
            "{} not found in the deploy checkout",
            rel(p)
        ))
        .into()),
        other => other.with_context(|| format!("reading {}", rel(p))),
    }
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

    /// The text of `p` before any edit (from the disk when not read yet).
    fn original(&self, p: &Path) -> Option<String> {
        match self.files.get(&rel(p)) {
            Some((before, _)) => Some(before.clone()),
            None => std::fs::read_to_string(self.root.join(p)).ok(),
        }
    }

    /// The text of `p` with the edits so far.
    fn current(&self, p: &Path) -> Option<String> {
        match self.files.get(&rel(p)) {
            Some((_, after)) => Some(after.clone()),
            None => std::fs::read_to_string(self.root.join(p)).ok(),
        }
    }

    fn changed(&self, p: &Path) -> bool {
        self.files.get(&rel(p)).is_some_and(|(b, a)| b != a)
    }

    fn changed_under(&self, dir: &Path) -> bool {
        let dir = rel(dir);
        let prefix = format!("{dir}/");
        self.files
            .iter()
            .any(|(k, (b, a))| b != a && (k.starts_with(&prefix) || dir.is_empty()))
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
    /// Which images are the services' (subcharts, manifests, .env files).
    pub matcher: ImageMatcher,
    /// Where images live when a values file names no repository.
    pub registries: Vec<String>,
    /// Registries reached over plain HTTP (verification).
    pub insecure: Vec<String>,
    /// Warnings are errors (`deploy.strict`).
    pub strict: bool,
    /// `.env`: repository variable → its tag variable.
    pub env_tags: BTreeMap<String, String>,
}

impl DeployInputs {
    /// `ghcr.io/openimsdk, docker.io/openim`, for messages.
    fn registry_list(&self) -> String {
        let r = self.matcher.registries();
        if r.is_empty() {
            "no registry is configured".to_string()
        } else {
            r.join(", ")
        }
    }
}

fn bump_rank(b: ChartBump) -> u8 {
    match b {
        ChartBump::None => 0,
        ChartBump::Patch => 1,
        ChartBump::Minor => 2,
        ChartBump::Major => 3,
    }
}

/// Whether any template of the chart at `dir` (its `templates/`, and its
/// subcharts') mentions a digest.
fn templates_read_digest(dir: &Path) -> bool {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.components().any(|c| c.as_os_str() == "templates")
                && std::fs::read_to_string(&p).is_ok_and(|t| t.to_lowercase().contains("digest"))
            {
                return true;
            }
        }
    }
    false
}

/// Plan every edit of `inputs` in the checkout at `root`.
pub fn plan(root: &Path, inputs: &DeployInputs, release: &Release) -> Result<DeployPlan> {
    let mut texts = Texts {
        root: root.to_path_buf(),
        files: BTreeMap::new(),
    };
    let mut out = DeployPlan::default();
    // chart directory -> (the largest bump asked, its values files)
    let mut charts: Vec<(String, ChartBump, Vec<PathBuf>)> = Vec::new();
    for spec in &inputs.charts {
        plan_chart(&mut texts, spec, inputs, release, &mut out)?;
        let dir = rel(&spec.dir);
        match charts.iter_mut().find(|(d, ..)| *d == dir) {
            Some((_, bump, values)) => {
                if bump_rank(spec.bump) > bump_rank(*bump) {
                    *bump = spec.bump;
                }
                values.extend(spec.values.iter().cloned());
            }
            None => charts.push((dir, spec.bump, spec.values.clone())),
        }
    }
    // `digest: key` writes `image.digest`, which pins only where a template
    // reads it (openimsdk/helm-charts' templates use `repository:tag`).
    if !release.digests.is_empty() {
        let mut warned: Vec<&PathBuf> = Vec::new();
        for spec in inputs.charts.iter().filter(|c| c.pin == DigestPin::Key) {
            if warned.contains(&&spec.dir) || templates_read_digest(&texts.root.join(&spec.dir)) {
                continue;
            }
            warned.push(&spec.dir);
            out.warn(
                rel(&spec.dir),
                "no template of the chart (or its subcharts) reads a digest, so the `digest` \
                 keys written pin nothing: pin with `digest: tag` (tag@sha256) in \
                 deploy.charts[] (`--pin tag` for chart bump)"
                    .to_string(),
            );
        }
    }
    // What Helm checks at install: the values against the chart's
    // values.schema.json (and each subchart's against its own).
    for (dir, _, values) in &charts {
        check_schemas(&texts, Path::new(dir), values)?;
    }
    // A chart's version moves once per run (however many entries or values
    // files edit it), and only when something in it changed: a re-run with
    // nothing to do never creeps it. Nor does a second run before a commit
    // (a tag corrected): a version that already differs from the committed
    // one has moved, by a run or by hand, and stays.
    let repo = crate::clients::git::Repo::discover(root).ok();
    for (dir, bump, values) in &charts {
        let dir = Path::new(dir);
        if texts.changed_under(dir) || values.iter().any(|v| texts.changed(v)) {
            let chart_yaml = dir.join("Chart.yaml");
            let text = texts.get(&chart_yaml)?;
            let version_of = |t: &str| yamledit::get(t, &["version".to_string()]).ok().flatten();
            let committed = repo
                .as_ref()
                .and_then(|r| r.committed_text(&root.join(&chart_yaml)));
            if committed.is_some_and(|c| version_of(&c) != version_of(&text)) {
                continue;
            }
            let bumped = chart::bump_version(&text, &rel(&chart_yaml), *bump, &mut out.scalars)?;
            texts.put(&chart_yaml, bumped);
        }
    }
    let digest_of = |s: &str| release.digests.get(s).cloned();
    let surfaces = inputs
        .manifests
        .iter()
        .map(|p| {
            (
                p,
                chart::rewrite_manifest as fn(&str, &chart::RefTarget) -> RefScan,
            )
        })
        .chain(
            inputs
                .env_files
                .iter()
                .map(|p| (p, chart::rewrite_env as _)),
        );
    for (path, rewrite) in surfaces {
        if !root.join(path).is_file() {
            return Err(anyhow!(
                "{} not found: it is listed in deploy: of openim-release.yaml",
                rel(path)
            ));
        }
        let text = texts.get(path)?;
        let file = rel(path);
        let target = chart::RefTarget {
            file: &file,
            matcher: &inputs.matcher,
            tag: &release.tag,
            digest_of: &digest_of,
            env_tags: &inputs.env_tags,
        };
        let scan = rewrite(&text, &target);
        if let Some(e) = scan.errors.first() {
            return Err(anyhow!("{file}: {e}"));
        }
        for (line, var, repo) in &scan.repository_only {
            out.warn(
                &file,
                format!(
                    "line {line}: {var} holds only the repository {repo}, no tag; it is left as \
                     it is (a tag appended there would break `${{{var}}}:${{…}}`): name the \
                     variable that holds its tag in deploy.env_tags ({var}: <TAG_VARIABLE>)"
                ),
            );
        }
        texts.put(path, scan.text);
        for (line, reference) in &scan.shared {
            out.warn(
                &file,
                format!(
                    "line {line}: {reference} is in the repository of several services, and its \
                     tag tells none of them (images.repository, tags with {{service}}): left as \
                     it is"
                ),
            );
        }
        for (line, repo, service) in &scan.elsewhere {
            out.warn(
                &file,
                format!(
                    "line {line}: {repo} is {service} in a registry that is not configured \
                     ({}); left as it is: add the registry to images.registries, or fix the line",
                    inputs.registry_list()
                ),
            );
        }
        if scan.matched == 0 {
            let near = if scan.not_services.is_empty() {
                String::new()
            } else {
                format!(
                    "; it names {}, which {} not a configured service",
                    scan.not_services.join(", "),
                    if scan.not_services.len() == 1 {
                        "is"
                    } else {
                        "are"
                    }
                )
            };
            out.warn(
                &file,
                format!(
                    "no image of a configured service in it (<registry>/<service> for {}){near}: \
                     nothing to change there; is it listed by mistake?",
                    inputs.registry_list()
                ),
            );
        }
        collect_refs(&mut out, scan.changes);
    }
    out.files = texts.into_edits();
    Ok(out)
}

/// Helm merges a chart's values.yaml and the `-f` files in order, then
/// validates the result against values.schema.json (a subchart: its own
/// values.yaml with its section of the parent's, against its own schema)
/// and refuses to install when it does not validate. An edit that makes a
/// valid chart invalid (an `image.digest` where the schema allows no other
/// key) is refused here, before anything is written; what was invalid
/// before the edit is not ours to judge.
fn check_schemas(texts: &Texts, dir: &Path, values: &[PathBuf]) -> Result<()> {
    let own = dir.join("values.yaml");
    let mut files: Vec<PathBuf> = vec![own.clone()];
    for v in values {
        if rel(v) != rel(&own) && !files.iter().any(|f| rel(f) == rel(v)) {
            files.push(v.clone());
        }
    }
    let merged = |text_of: &dyn Fn(&Path) -> Option<String>, section: Option<&str>| {
        let mut out = serde_json::Value::Object(Default::default());
        for f in &files {
            let Some(text) = text_of(f) else { continue };
            let mut v = yaml_to_json(&text);
            if let Some(name) = section {
                let global = v.get("global").cloned();
                v = v.get(name).cloned().unwrap_or_default();
                if let (Some(g), serde_json::Value::Object(m)) = (global, &mut v) {
                    m.entry("global").or_insert(g);
                }
            }
            merge_json(&mut out, v);
        }
        out
    };
    let mut targets: Vec<(PathBuf, Option<String>, Option<PathBuf>)> =
        vec![(dir.to_path_buf(), None, None)];
    for sub in subchart_dirs(&texts.root, dir) {
        let name = texts
            .current(&sub.join("Chart.yaml"))
            .and_then(|t| {
                crate::yamledit::get(&t, &["name".to_string()])
                    .ok()
                    .flatten()
            })
            .unwrap_or_else(|| sub.file_name().unwrap_or_default().to_string_lossy().into());
        targets.push((sub.clone(), Some(name), Some(sub.join("values.yaml"))));
    }
    for (chart, section, sub_values) in targets {
        let schema_path = chart.join("values.schema.json");
        let Ok(schema_text) = std::fs::read_to_string(texts.root.join(&schema_path)) else {
            continue;
        };
        let touched = files.iter().any(|f| texts.changed(f))
            || sub_values.as_ref().is_some_and(|v| texts.changed(v));
        if !touched {
            continue;
        }
        let schema: serde_json::Value = serde_json::from_str(&schema_text).map_err(|e| {
            anyhow!(
                "{}: not JSON ({e}); Helm would refuse the chart",
                rel(&schema_path)
            )
        })?;
        let validator = jsonschema::validator_for(&schema)
            .map_err(|e| anyhow!("{}: not a JSON Schema Helm can use: {e}", rel(&schema_path)))?;
        let values_of = |text_of: &dyn Fn(&Path) -> Option<String>| {
            let mut v = match &sub_values {
                Some(own) => text_of(own).map(|t| yaml_to_json(&t)).unwrap_or_default(),
                None => serde_json::Value::Object(Default::default()),
            };
            merge_json(&mut v, merged(text_of, section.as_deref()));
            v
        };
        let errors = |v: &serde_json::Value| -> Vec<String> {
            validator
                .iter_errors(v)
                .map(|e| {
                    let at = e.instance_path().to_string();
                    format!("at {}: {e}", if at.is_empty() { "/" } else { &at })
                })
                .collect()
        };
        let before = errors(&values_of(&|p| texts.original(p)));
        let after = errors(&values_of(&|p| texts.current(p)));
        let new: Vec<&String> = after.iter().filter(|e| !before.contains(e)).collect();
        if !new.is_empty() {
            let edited: Vec<String> = files
                .iter()
                .chain(sub_values.iter())
                .filter(|f| texts.changed(f))
                .map(|f| rel(f))
                .collect();
            return Err(crate::error::BadInput(format!(
                "{}: the edited values ({}) would not validate against it, and Helm would refuse \
                 to install them: {}; nothing was written (with `digest: key`, the schema may \
                 not allow an `image.digest`: use `digest: tag` or `none`, or add `digest` to \
                 the schema)",
                rel(&schema_path),
                edited.join(", "),
                new.iter()
                    .map(|e| e.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
            .into());
        }
    }
    Ok(())
}

/// A values file as JSON (what Helm validates); `{}` when it is empty or
/// not a mapping.
fn yaml_to_json(text: &str) -> serde_json::Value {
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).unwrap_or_default();
    match serde_json::to_value(&v) {
        Ok(j @ serde_json::Value::Object(_)) => j,
        _ => serde_json::Value::Object(Default::default()),
    }
}

/// Helm's coalescing of values: mappings key by key, the later file wins;
/// a null removes the key.
fn merge_json(base: &mut serde_json::Value, over: serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    b.remove(&k);
                    continue;
                }
                match b.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        merge_json(existing, v)
                    }
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
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

/// The subchart directories of `dir` (those with a Chart.yaml), sorted.
fn subchart_dirs(root: &Path, dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join(dir).join("charts"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().join("Chart.yaml").is_file())
                .map(|e| dir.join("charts").join(e.file_name()))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

/// The key beside the tag key that names the repository (`image.repository`
/// for `image.tag`), for messages.
fn repository_key(tag_key: &str) -> String {
    match tag_key.rsplit_once('.') {
        Some((parent, _)) => format!("{parent}.repository"),
        None => "repository".to_string(),
    }
}

fn plan_chart(
    texts: &mut Texts,
    spec: &ChartSpec,
    inputs: &DeployInputs,
    release: &Release,
    out: &mut DeployPlan,
) -> Result<()> {
    let chart_yaml = spec.dir.join("Chart.yaml");
    let dir = rel(&spec.dir);
    if !texts.root.join(&chart_yaml).is_file() {
        return Err(anyhow!(
            "{} not found: is {dir} a Helm chart?",
            rel(&chart_yaml),
        ));
    }
    // A configured values file must exist; the default `values.yaml` is
    // optional, as in Helm (an umbrella may have none of its own).
    let mut values: Vec<PathBuf> = Vec::new();
    for v in &spec.values {
        if texts.root.join(v).is_file() {
            values.push(v.clone());
        } else if spec.values_configured {
            return Err(anyhow!(
                "{} not found: it is a values file of the chart {dir}",
                rel(v)
            ));
        }
    }
    if let Some(pattern) = &spec.image_pattern {
        let images: BTreeMap<String, String> = spec
            .pattern_services
            .iter()
            .map(|s| (s.clone(), inputs.matcher.image_of(s)))
            .collect();
        return plan_pattern_chart(texts, spec, pattern, &images, release, out);
    }
    let regs = inputs.registry_list();
    // Whether anything in the chart deploys a service.
    let mut matched = false;
    // (values file, key) already set, so that a subchart's override is not
    // set twice.
    let mut done: BTreeSet<(String, String)> = BTreeSet::new();

    // 1. The chart's own values: the keys the configuration names.
    for (service, key) in &spec.images {
        let mut found = 0;
        let mut first_missing = None;
        for values in &values {
            let target = ValuesImage {
                values,
                service,
                key,
            };
            match edit_image(texts, out, &target, spec, release, inputs)? {
                Edit::Done => {
                    found += 1;
                    matched = true;
                    done.insert((rel(values), key.clone()));
                    check_named_image(texts, out, &target, inputs)?;
                }
                Edit::Missing(e) => {
                    first_missing.get_or_insert(e);
                }
            }
        }
        if found == 0 && !spec.optional_images {
            let e = first_missing.expect("no values file and no edit");
            if values.len() == 1 {
                return Err(e);
            }
            return Err(anyhow!(
                "`{key}` (the image of {service}) is in none of the values files of {dir} ({}): {e:#}",
                values.iter().map(|v| rel(v)).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    if !spec.images.is_empty() && values.len() > 1 {
        for values in &values {
            let name = rel(values);
            if !spec
                .images
                .iter()
                .any(|(_, k)| done.contains(&(name.clone(), k.clone())))
            {
                out.warn(
                    &name,
                    format!(
                        "none of the image keys of the chart {dir} ({}) is in it: nothing to change there",
                        spec.images
                            .iter()
                            .map(|(_, k)| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
    }

    // 2. No keys configured: the chart's own image, if its values name one
    // of a configured service at the subchart key.
    if spec.images.is_empty() {
        for values in &values {
            let name = rel(values);
            let text = texts.get(values)?;
            let Some(repo) = chart::repository_beside(&text, &name, &spec.subchart_key)? else {
                continue;
            };
            let old_tag = crate::yamledit::parse_path(&spec.subchart_key)
                .ok()
                .and_then(|p| crate::yamledit::get(&text, &p).ok().flatten());
            match inputs.matcher.classify_ref(&repo, old_tag.as_deref()) {
                ImageClass::Service(service) => {
                    let target = ValuesImage {
                        values,
                        service: &service,
                        key: &spec.subchart_key,
                    };
                    if let Edit::Missing(e) =
                        edit_image(texts, out, &target, spec, release, inputs)?
                    {
                        return Err(e);
                    }
                    matched = true;
                    done.insert((name, spec.subchart_key.clone()));
                }
                ImageClass::Elsewhere(service) => out.warn(
                    &name,
                    format!(
                        "`{}` deploys {repo}: {service} in a registry that is not configured \
                         ({regs}); left as it is: add the registry to images.registries, or fix \
                         `{}`",
                        spec.subchart_key,
                        repository_key(&spec.subchart_key)
                    ),
                ),
                ImageClass::Shared(_) => out.warn(
                    &name,
                    format!(
                        "`{}` deploys {repo}, the repository of several services, and its tag \
                         does not tell which: left as it is; name the key in \
                         deploy.charts[].images",
                        spec.subchart_key
                    ),
                ),
                ImageClass::NotAService | ImageClass::Other => {}
            }
        }
    }

    // 3. Subcharts of an umbrella chart, each identified by the image it
    // deploys: in its own values.yaml, and where the chart's values files
    // override it (`openim-push.image.tag` in the umbrella's values).
    let subcharts = subchart_dirs(&texts.root, &spec.dir);
    let tag_path = crate::yamledit::parse_path(&spec.subchart_key).map_err(|e| anyhow!("{e}"))?;
    for sub in &subcharts {
        let sub_chart = sub.join("Chart.yaml");
        let sub_values = sub.join("values.yaml");
        let sub_text = texts.get(&sub_chart)?;
        let name = crate::yamledit::get(&sub_text, &["name".to_string()])
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                sub.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            });
        // Every place that names the subchart's image: (values file, key
        // path, whether the key may be added, the repository named there).
        let mut places: Vec<(PathBuf, String, bool, Option<String>)> = Vec::new();
        if texts.root.join(&sub_values).is_file() {
            let text = texts.get(&sub_values)?;
            let repo = chart::repository_beside(&text, &rel(&sub_values), &spec.subchart_key)?;
            places.push((sub_values.clone(), spec.subchart_key.clone(), true, repo));
        }
        let mut keys = vec![name.clone()];
        keys.extend(tag_path.iter().cloned());
        let override_key = crate::yamledit::format_path(&keys);
        for values in &values {
            let file = rel(values);
            if done.contains(&(file.clone(), override_key.clone())) {
                continue;
            }
            let text = texts.get(values)?;
            let repo = chart::repository_beside(&text, &file, &override_key)?;
            let has_tag = crate::yamledit::kind(&text, &keys).ok().flatten().is_some();
            if has_tag || repo.is_some() {
                places.push((values.clone(), override_key.clone(), repo.is_some(), repo));
            }
        }
        // The subchart's own image decides for an override that names no
        // repository; a subchart without one is known by its name.
        let own_class = match places.first() {
            Some((v, _, _, Some(r))) if *v == sub_values => inputs.matcher.classify(r),
            _ => match inputs.matcher.service_named(&name) {
                Some(service) => ImageClass::Service(service),
                None => ImageClass::Other,
            },
        };
        let mut edited = false;
        // The subchart's own image left alone (another registry's): its
        // appVersion, which an empty tag there defaults to, stays too.
        let mut own_left = false;
        let mut seen: Vec<String> = Vec::new();
        for (values, key, may_add, repo) in &places {
            let file = rel(values);
            let class = match repo {
                Some(r) => inputs.matcher.classify(r),
                None => own_class.clone(),
            };
            if let Some(r) = repo {
                if !seen.contains(r) {
                    seen.push(r.clone());
                }
            }
            match class {
                ImageClass::Service(service) => {
                    let target = ValuesImage {
                        values,
                        service: &service,
                        key,
                    };
                    match edit_image(texts, out, &target, spec, release, inputs)? {
                        Edit::Done => {
                            edited = true;
                            done.insert((file, key.clone()));
                        }
                        Edit::Missing(e) if *may_add => return Err(e),
                        Edit::Missing(_) => {}
                    }
                }
                ImageClass::Elsewhere(service) => {
                    own_left |= *values == sub_values;
                    out.warn(
                        &file,
                        format!(
                            "`{key}` deploys {}: {service} in a registry that is not configured \
                             ({regs}); left as it is: add the registry to images.registries, or \
                             fix `{}`",
                            repo.as_deref().unwrap_or(&name),
                            repository_key(key)
                        ),
                    )
                }
                ImageClass::NotAService | ImageClass::Shared(_) | ImageClass::Other => {}
            }
        }
        if edited && own_left {
            matched = true;
            if release.app_version.is_some() {
                out.warn(
                    rel(&sub_chart),
                    format!(
                        "appVersion left as it is: the subchart's own image (in {}) was left \
                         alone, and a tag it leaves empty defaults to appVersion, so moving it \
                         would change that image",
                        rel(&sub_values)
                    ),
                );
            }
            continue;
        }
        if edited {
            matched = true;
            let sub_new = chart::set_app_version(
                &sub_text,
                &rel(&sub_chart),
                release.app_version.as_deref(),
                &mut out.scalars,
            )?;
            texts.put(&sub_chart, sub_new);
            continue;
        }
        let reason = if places.is_empty() {
            format!("it has no values.yaml and the chart's values do not set `{override_key}`")
        } else if seen.is_empty() {
            format!(
                "its values name no `{}` beside `{}` and `{name}` is not a service name: cannot \
                 tell which image it deploys",
                repository_key(&spec.subchart_key),
                spec.subchart_key
            )
        } else {
            let (mut not_services, mut others, mut elsewhere) =
                (Vec::new(), Vec::new(), Vec::new());
            for r in &seen {
                match inputs.matcher.classify(r) {
                    ImageClass::NotAService => not_services.push(r.as_str()),
                    ImageClass::Shared(_) => elsewhere.push(format!(
                        "{r}, the repository of several services, which only the tag tells \
                         apart: name the key in deploy.charts[].images"
                    )),
                    ImageClass::Elsewhere(s) => elsewhere.push(format!(
                        "{r}: {s} in a registry that is not configured ({regs})"
                    )),
                    _ => others.push(r.as_str()),
                }
            }
            let mut why = Vec::new();
            if !not_services.is_empty() {
                why.push(format!(
                    "{}, not one of the configured services",
                    not_services.join(", ")
                ));
            }
            why.extend(elsewhere);
            if !others.is_empty() {
                why.push(format!("{}, not an image in {regs}", others.join(", ")));
            }
            format!("it deploys {}", why.join("; "))
        };
        if out.skipped.iter().any(|s| s.subchart == rel(sub)) {
            continue;
        }
        out.skipped.push(SkippedChart {
            chart: dir.clone(),
            subchart: rel(sub),
            name: name.clone(),
            image: seen.first().cloned(),
            reason,
        });
    }

    if !matched {
        let what = if subcharts.is_empty() {
            format!(
                "its values ({}) name no image of a configured service at `{}`",
                spec.values
                    .iter()
                    .map(|v| rel(v))
                    .collect::<Vec<_>>()
                    .join(", "),
                spec.subchart_key
            )
        } else {
            format!(
                "none of its {} deploys a configured service (see the skipped subcharts), nor do its own values",
                count(subcharts.len(), "subchart", "subcharts")
            )
        };
        out.warn(
            &dir,
            format!(
                "{what}: nothing to change in this chart; name the keys in deploy.charts[].images, \
                 or check images.registries and the services"
            ),
        );
        return Ok(());
    }
    // A values file listed for the chart that nothing was set in, nor
    // warned about: `-f config-imserver.yaml` of another kind of settings.
    if spec.values_configured {
        for v in &values {
            let file = rel(v);
            let used =
                done.iter().any(|(f, _)| *f == file) || out.warnings.iter().any(|w| w.file == file);
            if !used {
                out.warn(
                    &file,
                    format!(
                        "listed as a values file of {dir}, but no image of a configured \
                         service is set in it: nothing changes there; take it out of \
                         deploy.charts[].values if it holds other settings"
                    ),
                );
            }
        }
    }
    // The chart's appVersion; its version moves in `plan`, once.
    let parent_text = texts.get(&chart_yaml)?;
    let with_app = chart::set_app_version(
        &parent_text,
        &rel(&chart_yaml),
        release.app_version.as_deref(),
        &mut out.scalars,
    )?;
    texts.put(&chart_yaml, with_app);
    Ok(())
}

/// A chart whose templates derive every image from its appVersion
/// (`{repository}:{appVersion}-{component}`): the deploy sets appVersion,
/// and the images it will pull are the pattern's for each service. Nothing
/// else in the chart is edited; the same version again changes nothing.
fn plan_pattern_chart(
    texts: &mut Texts,
    spec: &ChartSpec,
    pattern: &str,
    images: &BTreeMap<String, String>,
    release: &Release,
    out: &mut DeployPlan,
) -> Result<()> {
    let dir = rel(&spec.dir);
    let chart_yaml = spec.dir.join("Chart.yaml");
    let version = release.app_version.as_deref().ok_or_else(|| {
        anyhow!(
            "{dir}: its images follow its appVersion (deploy.charts[].image_pattern `{pattern}`), \
             and this deploy has no version (the dev and nightly stages have none): pass \
             --version, or turn this stage's deploy off (stages.<stage>.deploy: false)"
        )
    })?;
    let text = texts.get(&chart_yaml)?;
    let file = rel(&chart_yaml);
    let image_of = |s: &str| images.get(s).cloned().unwrap_or_else(|| s.to_string());
    let old = crate::yamledit::get(&text, &["appVersion".to_string()])
        .ok()
        .flatten();
    let new = chart::set_app_version(&text, &file, Some(version), &mut out.scalars)?;
    texts.put(&chart_yaml, new);
    if spec.pattern_services.is_empty() {
        return Err(anyhow!(
            "{dir}: deploy.charts[].image_pattern names the images of the services, and there \
             are none: list them in deploy.charts[].services or images.services"
        ));
    }
    for service in &spec.pattern_services {
        let reference = pattern
            .replace("{appVersion}", version)
            .replace("{service}", &image_of(service));
        if split_reference(&reference).is_err() || !reference.contains(':') {
            return Err(anyhow!(
                "{dir}: deploy.charts[].image_pattern `{pattern}` gives `{reference}` for \
                 {service}, which is not an image reference with a tag"
            ));
        }
        out.verify.insert(reference);
        out.images.push(ImageChange {
            service: service.clone(),
            file: format!("{file}: appVersion"),
            old: old.clone(),
            new: version.to_string(),
            digest: None,
        });
    }
    Ok(())
}

/// An image key in a values file: which service's tag goes where.
struct ValuesImage<'a> {
    values: &'a Path,
    service: &'a str,
    key: &'a str,
}

/// What `edit_image` did.
enum Edit {
    /// Set (or already the value).
    Done,
    /// The key path is not in the file (and cannot be added there).
    Missing(anyhow::Error),
}

/// A configured key whose values name a repository: warn when that is not
/// the configured service's image (a registry that is not configured, or
/// the key of another service).
fn check_named_image(
    texts: &mut Texts,
    out: &mut DeployPlan,
    target: &ValuesImage<'_>,
    inputs: &DeployInputs,
) -> Result<()> {
    let name = rel(target.values);
    let text = texts.get(target.values)?;
    let Some(repo) = chart::repository_beside(&text, &name, target.key)? else {
        return Ok(());
    };
    let (service, key) = (target.service, target.key);
    match inputs.matcher.classify(&repo) {
        ImageClass::Service(s) if s == service => {}
        ImageClass::Shared(r) if r == inputs.matcher.repository_of(service) => {}
        ImageClass::Service(s) => out.warn(
            &name,
            format!("`{key}` is configured as the image of {service}, but it deploys {repo} ({s})"),
        ),
        ImageClass::Elsewhere(_)
        | ImageClass::NotAService
        | ImageClass::Shared(_)
        | ImageClass::Other => out.warn(
            &name,
            format!(
                "`{key}` ({service}) deploys {repo}, which is not in a configured registry \
                 ({}); its tag is set anyway and verification looks it up there",
                inputs.registry_list()
            ),
        ),
    }
    Ok(())
}

/// Set the tag (and digest, as `spec.pin` says) at `target` and record the
/// change; `Edit::Missing` when the key is not there.
fn edit_image(
    texts: &mut Texts,
    out: &mut DeployPlan,
    target: &ValuesImage<'_>,
    spec: &ChartSpec,
    release: &Release,
    inputs: &DeployInputs,
) -> Result<Edit> {
    let text = texts.get(target.values)?;
    let name = rel(target.values);
    let digest = release.digests.get(target.service).map(String::as_str);
    // This service's tag (`{service}` of the stage's tags filled in).
    let release = &Release {
        tag: inputs.matcher.tag_for(&release.tag, target.service),
        ..release.clone()
    };
    // What this edit writes where: another service's different value at the
    // same key would leave only the last one, silently.
    let mut writes = vec![(
        target.key.to_string(),
        match (spec.pin, digest) {
            (DigestPin::Tag, Some(d)) => format!("{}@{d}", release.tag),
            _ => release.tag.clone(),
        },
    )];
    if let (DigestPin::Key, Some(d)) = (spec.pin, digest) {
        let digest_key = match target.key.rsplit_once('.') {
            Some((parent, _)) => format!("{parent}.digest"),
            None => "digest".to_string(),
        };
        writes.push((digest_key, d.to_string()));
    }
    for (key, value) in &writes {
        let at = (name.clone(), key.clone());
        match out.written.get(&at) {
            Some((other, v)) if other != target.service && v != value => {
                return Err(crate::error::BadInput(format!(
                    "{name}: `{key}` is the image of both {other} and {}, which get different \
                     values ({v}, {value}); one key cannot hold both, and the last would win \
                     silently: give each service its own key in deploy.charts[].images",
                    target.service
                ))
                .into());
            }
            _ => {
                out.written
                    .insert(at, (target.service.to_string(), value.clone()));
            }
        }
    }
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
        Err(e) if e.is_not_found() => return Ok(Edit::Missing(e.into())),
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
    let file = format!("{name}: {key}");
    if out.images.iter().any(|i| i.file == file) {
        // Set again by another entry of the same chart: listed once.
        out.scalars.extend(changes);
        texts.put(target.values, new);
        return Ok(Edit::Done);
    }
    out.images.push(ImageChange {
        service: service.to_string(),
        file,
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
        None if inputs.registries.is_empty() => out.unverifiable.push(format!("{name}: {key}")),
        None => {
            let repository = inputs.matcher.repository_of(service);
            for r in &inputs.registries {
                out.verify
                    .insert(format!("{}/{repository}:{tag}", r.trim_end_matches('/')));
            }
        }
    }
    out.scalars.extend(changes);
    texts.put(target.values, new);
    Ok(Edit::Done)
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
            let creds = crate::clients::credentials::lookup(&prefix)?;
            if let Some(c) = &creds {
                crate::output::actions::mask(&c.password);
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

//! `openim-release.yaml`: the project's release configuration.
//!
//! Every section is optional; unknown keys are refused with the key and line.
//! Sections: `tags` (tag rules and templates), `images` (services, registries,
//! platforms), `deploy` (the deploy repository and its charts) and `gitops`
//! (how changes are proposed). Later commands fill in the latter three.

pub mod notes;

use crate::tag::template::{Template, TemplateError};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// File names looked for at the repository root, in order.
pub const FILE_NAMES: &[&str] = &["openim-release.yaml", "openim-release.yml"];

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping of the sections tags, images, deploy, gitops, stages, changelog, github_release, notify"
)]
pub struct Config {
    pub tags: TagsConfig,
    pub images: Option<ImagesConfig>,
    pub deploy: Option<DeployConfig>,
    pub gitops: Option<GitopsConfig>,
    /// Per-stage overrides for `release`: `dev`, `rc`, `release`, `patch`, `nightly`.
    pub stages: BTreeMap<String, StageConfig>,
    /// What the release notes hold (`notes`, the GitHub Release).
    pub changelog: Option<notes::ChangelogConfig>,
    /// The GitHub Release `release` publishes for its git tag.
    pub github_release: Option<notes::GithubReleaseConfig>,
    /// Where a run says it finished or failed (chat bots, webhooks).
    pub notify: Vec<notes::NotifyTarget>,
}

/// How `release` deploys one stage (stage → environment).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping with base, mode, deploy, deploy_tag"
)]
pub struct StageConfig {
    /// The deploy branch this stage changes (its environment) [default: deploy.base].
    pub base: Option<String>,
    /// `pr` or `push` [default: deploy.mode].
    pub mode: Option<DeployMode>,
    /// Whether this stage touches the deploy repository at all [default: true].
    pub deploy: Option<bool>,
    /// Which of the stage's image tags the deploy files get: `commit`, the first tag naming the commit (`sha-<sha7>`), so every deploy of new code changes them; `first`, the stage's first tag [default: commit for dev, first for the others].
    pub deploy_tag: Option<DeployTag>,
}

/// Which of a stage's tags goes into the deploy files.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum DeployTag {
    /// The first tag that names the commit (holds its short or full sha).
    Commit,
    /// The stage's first tag.
    First,
}

/// Tag rules. Defaults reproduce the documented behaviour of `tag`.
#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping with prefix, release_branch, dev, rc, release, patch, nightly"
)]
pub struct TagsConfig {
    /// Prefix of version git tags (`v` in `v3.8.1`, empty for `3.8.1`)
    /// [default: detected from the repository's tags: `v`, or none when its
    /// releases are tagged `X.Y.Z`].
    pub prefix: Option<String>,
    /// Branches whose name fixes the release line; named groups `major` and
    /// `minor` give X and Y, the optional group `patch` gives Z (a branch
    /// of one version, such as `release-v3.8.3` or `3.8.3-patch`).
    pub release_branch: String,
    pub dev: StageTags,
    pub rc: StageTags,
    pub release: ReleaseTags,
    /// Hotfixes of a released version (`vX.Y.Z-patch.N`).
    pub patch: PatchTags,
    pub nightly: NightlyTags,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping with tags, aliases"
)]
pub struct PatchTags {
    /// Image tag templates, primary first.
    pub tags: Vec<String>,
    /// Moving aliases, added only where `tags.release.alias_policy` allows
    /// (a patch of an older line never moves `latest`).
    pub aliases: Vec<String>,
}

impl Default for PatchTags {
    fn default() -> Self {
        PatchTags {
            tags: vec!["v{version}-patch.{n}".into(), "{version}-patch.{n}".into()],
            aliases: vec!["{major}.{minor}".into(), "{major}".into(), "latest".into()],
        }
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping with `tags`")]
pub struct StageTags {
    /// Image tag templates, primary first.
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping with tags, aliases, alias_policy"
)]
pub struct ReleaseTags {
    pub tags: Vec<String>,
    /// Moving aliases, added only where `alias_policy` allows.
    pub aliases: Vec<String>,
    pub alias_policy: AliasPolicy,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum AliasPolicy {
    /// Aliases only when the version is the highest stable one in the repository.
    Highest,
    /// An alias using `{minor}` when the version is the highest of its X.Y
    /// line, one using only `{major}` when highest of its X line, others
    /// (such as `latest`) when highest overall.
    PerLine,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping with tags, git_tag, marker, keep"
)]
pub struct NightlyTags {
    pub tags: Vec<String>,
    /// The git tag a nightly creates (with `--create`).
    pub git_tag: String,
    /// A git tag marking the previous nightly (as older workflows kept one);
    /// counts only while no tag matches `git_tag`.
    pub marker: String,
    /// How many dated nightly git tags `tag --stage nightly --prune` keeps [default: 14].
    pub keep: u32,
}

/// `release-v3.8`, `release/v3.8`, `release-v3.8.3`, `pre-release-v3.8.4`,
/// `3.8`, `v3.8.3`, `3.8.3-patch`: OpenIM's branch names and the usual ones.
pub const DEFAULT_RELEASE_BRANCH: &str =
    r"^(?:(?:pre-)?release[-/])?v?(?P<major>\d+)\.(?P<minor>\d+)(?:\.(?P<patch>\d+))?(?:-patch)?$";

impl TagsConfig {
    /// The prefix of version git tags as configured, else `v` (what the tag
    /// rules detect from the tags replaces it: [`crate::tag::stage::resolve_prefix`]).
    pub fn prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or("v")
    }
}

impl Default for TagsConfig {
    fn default() -> Self {
        TagsConfig {
            prefix: None,
            release_branch: DEFAULT_RELEASE_BRANCH.into(),
            dev: StageTags {
                tags: vec!["{branch}".into(), "sha-{sha7}".into()],
            },
            rc: StageTags {
                tags: vec!["v{version}-rc.{n}".into(), "rc{n}".into()],
            },
            release: ReleaseTags::default(),
            patch: PatchTags::default(),
            nightly: NightlyTags::default(),
        }
    }
}

impl Default for ReleaseTags {
    fn default() -> Self {
        ReleaseTags {
            tags: vec![
                "release-v{version}".into(),
                "v{version}".into(),
                "{version}".into(),
            ],
            aliases: vec!["{major}.{minor}".into(), "{major}".into(), "latest".into()],
            alias_policy: AliasPolicy::Highest,
        }
    }
}

impl Default for NightlyTags {
    fn default() -> Self {
        NightlyTags {
            tags: vec!["nightly-{date}-{sha7}".into(), "nightly".into()],
            git_tag: "nightly-{date}-{sha7}".into(),
            marker: "nightly".into(),
            keep: 14,
        }
    }
}

/// `images:` — what `build` builds and where it pushes.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping with registries, repository, image_names, platforms, services, compose, labels, …"
)]
pub struct ImagesConfig {
    /// Each image is pushed as `<registry>/<repository>:<tag>`.
    pub registries: Vec<String>,
    /// The repository of each service under every registry, a template with `{service}` (the service's image name) [default: `{service}`]. Without `{service}` (`app`) every service goes to one repository, and every image tag template must then name the service (`v{version}-{service}`).
    pub repository: Option<String>,
    /// Service → its image name, when that is not the service's own name (a compose service `frontendTests` whose image is `frontend-tests`) [default: the service's name].
    pub image_names: BTreeMap<String, String>,
    pub platforms: Vec<String>,
    pub services: Vec<ServiceConfig>,
    /// Compose files to take the services from, merged in order as `docker compose -f a -f b` does.
    pub compose: Option<PathList>,
    /// Env files for the compose files' variables, as `docker compose --env-file` [default: `.env` beside the first compose file, when there is one].
    pub compose_env_file: Option<PathList>,
    /// Compose profiles that are active, as `docker compose --profile` [default: `COMPOSE_PROFILES`].
    pub compose_profiles: Option<Vec<String>>,
    /// Extra labels on every image.
    pub labels: BTreeMap<String, String>,
    /// `org.opencontainers.image.source` [default: `$GITHUB_SERVER_URL/$GITHUB_REPOSITORY` in Actions, else the origin remote as https].
    pub source: Option<String>,
    /// Skip services whose inputs are unchanged since an image was pushed
    /// (recorded by an `inputs-<digest>` tag per service) [default: true].
    pub skip_unchanged: Option<bool>,
    /// Registries reached over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// A registry of `registries` → the registries its images are copied to by digest (`mirror`, and `release` after its build) instead of being pushed there by `build`.
    pub mirrors: BTreeMap<String, Vec<String>>,
}

impl ImagesConfig {
    /// Every registry that holds the project's images: those `build`
    /// pushes to, then those they are mirrored to.
    pub fn all_registries(&self) -> Vec<String> {
        let mut out = self.registries.clone();
        for r in self.mirrors.values().flatten() {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
        out
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `name` (and dockerfile, context, args, target, platforms)"
)]
pub struct ServiceConfig {
    pub name: String,
    pub dockerfile: Option<PathBuf>,
    #[serde(default)]
    pub context: Option<PathBuf>,
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    /// Build stage (`--target`).
    #[serde(default)]
    pub target: Option<String>,
    /// Platforms of this service instead of `images.platforms`.
    #[serde(default)]
    pub platforms: Option<Vec<String>>,
}

/// One path, or several (`compose: [a.yaml, b.yaml]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathList(pub Vec<PathBuf>);

impl<'de> Deserialize<'de> for PathList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ValuesFiles::deserialize(d).map(|v| PathList(v.0))
    }
}

impl schemars::JsonSchema for PathList {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PathList".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "One path, or a list of them.",
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" }, "minItems": 1 }
            ]
        })
    }
}

/// `deploy:` — the deploy repository that `chart`/`gitops` edit.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping with url, repository, base, mode, charts, manifests, env_files, env_tags, strict"
)]
pub struct DeployConfig {
    pub url: Option<String>,
    /// `owner/name`, for the GitHub API.
    pub repository: Option<String>,
    pub base: Option<String>,
    pub mode: Option<DeployMode>,
    pub charts: Vec<ChartTarget>,
    /// Kubernetes manifests (or compose files) whose `image:` lines name a service.
    pub manifests: Vec<PathBuf>,
    /// Compose `.env` files with `KEY=repo:tag` lines.
    pub env_files: Vec<PathBuf>,
    /// `.env` variables that hold only a repository (`AD_IMAGE=ghcr.io/org/ad`, used as `${AD_IMAGE}:${AD_TAG}`) → the variable beside it that holds the tag, which is the one edited.
    pub env_tags: BTreeMap<String, String>,
    /// Refuse to edit anything when there is a warning (a file or chart where no image of a configured service was found, an image in a registry that is not configured), as `--strict` does [default: false].
    pub strict: bool,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Deserialize,
    clap::ValueEnum,
    serde::Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum DeployMode {
    Pr,
    Push,
}

/// One values file, or several (`values: [a.yaml, b.yaml]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValuesFiles(pub Vec<PathBuf>);

impl<'de> Deserialize<'de> for ValuesFiles {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ValuesFiles;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a path or a list of paths")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ValuesFiles, E> {
                Ok(ValuesFiles(vec![PathBuf::from(v)]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ValuesFiles, A::Error> {
                let mut out = Vec::new();
                while let Some(p) = seq.next_element::<String>()? {
                    out.push(PathBuf::from(p));
                }
                if out.is_empty() {
                    return Err(serde::de::Error::custom(
                        "an empty list; name at least one file, or leave the key out",
                    ));
                }
                Ok(ValuesFiles(out))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl schemars::JsonSchema for ValuesFiles {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ValuesFiles".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "One values file, or a list of them.",
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" }, "minItems": 1 }
            ]
        })
    }
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `path` (and values, images, bump, digest, subchart_key, image_pattern, services)"
)]
pub struct ChartTarget {
    pub path: PathBuf,
    /// The values file(s) whose `images` keys are set [default: <path>/values.yaml].
    #[serde(default)]
    pub values: Option<ValuesFiles>,
    /// service name -> key path of its image tag in the values files.
    #[serde(default)]
    pub images: BTreeMap<String, String>,
    /// How the chart version moves when something in it changed [default: patch].
    #[serde(default)]
    pub bump: Option<crate::deploy::chart::ChartBump>,
    /// Record digests from `build`: `key` (image.digest) or `tag` (tag@sha256:…) [default: none].
    #[serde(default)]
    pub digest: Option<crate::deploy::chart::DigestPin>,
    /// Key path of the image tag inside each subchart's values [default: image.tag].
    #[serde(default)]
    pub subchart_key: Option<String>,
    /// For a chart whose templates derive every image from its `appVersion`: the image each service runs, with `{appVersion}` and `{service}` (`ghcr.io/org/demo:{appVersion}-{service}`). The deploy sets `appVersion` and checks these images; no values key is edited.
    #[serde(default)]
    pub image_pattern: Option<String>,
    /// With `image_pattern`: the services the chart deploys [default: every service of the configuration].
    #[serde(default)]
    pub services: Option<Vec<String>>,
}

/// `gitops:` — how deploy changes are proposed.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping with branch, labels, reviewers, commit_message, title, …"
)]
pub struct GitopsConfig {
    /// The pull request branch, a template with {stage} [default: openim-release/{stage}].
    pub branch: Option<String>,
    pub labels: Vec<String>,
    pub reviewers: Vec<String>,
    /// Commit message template: {stage}, {version}, {tag}, {services} [default below].
    pub commit_message: Option<String>,
    /// Pull request title template [default: the commit message's first line].
    pub title: Option<String>,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    /// Add a Signed-off-by line.
    pub signoff: bool,
}

/// A configuration problem: the file, the line where known, what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

/// Where the configuration came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub path: Option<PathBuf>,
}

/// Load `explicit`, or the first of [`FILE_NAMES`] found in `root`, or the
/// defaults when there is none.
pub fn load(explicit: Option<&Path>, root: &Path) -> Result<Loaded, ConfigError> {
    let path = match explicit {
        Some(p) => {
            let p = if p.is_absolute() {
                p.to_path_buf()
            } else {
                root.join(p)
            };
            if !p.is_file() {
                return Err(ConfigError {
                    path: p,
                    line: None,
                    message: "config file not found; check --config or OPENIM_RELEASE_CONFIG"
                        .into(),
                });
            }
            Some(p)
        }
        None => FILE_NAMES
            .iter()
            .map(|n| root.join(n))
            .find(|p| p.is_file()),
    };
    let Some(path) = path else {
        return Ok(Loaded {
            config: Config::default(),
            path: None,
        });
    };
    let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
        path: path.clone(),
        line: None,
        message: if e.kind() == std::io::ErrorKind::InvalidData {
            "not UTF-8 text; save the file as UTF-8".to_string()
        } else {
            format!("cannot read: {e}")
        },
    })?;
    let config = parse(&text).map_err(|(line, message)| ConfigError {
        path: path.clone(),
        line,
        message,
    })?;
    Ok(Loaded {
        config,
        path: Some(path),
    })
}

/// Parse and validate configuration text. Errors carry the 1-based line.
pub fn parse(text: &str) -> Result<Config, (Option<usize>, String)> {
    // libyaml drops content after a blank line when a BOM leads the file.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // An empty file (or one of only comments) is the default configuration.
    let mut config: Config = if text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#')
    }) {
        Config::default()
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| {
            let line = e.location().map(|l| l.line());
            // The library appends " at line L column C"; we report the line ourselves.
            let msg = e.to_string();
            let msg = match msg.find(" at line ") {
                Some(i) => msg[..i].to_string(),
                None => msg,
            };
            let msg = readable(&msg);
            match crate::output::text::yaml_syntax_hint(&msg, text, line) {
                Some(hint) => (line, format!("{msg}; {hint}")),
                None => (line, msg),
            }
        })?
    };
    validate(&config)
        .map_err(|(key, value, message)| (line_of(text, &value), format!("{key}: {message}")))?;
    // The command line's stage aliases name the same stages here.
    for (alias, stage) in [("test", "rc"), ("prod", "release"), ("hotfix", "patch")] {
        if let Some(entry) = config.stages.remove(alias) {
            if config.stages.contains_key(stage) {
                return Err((
                    line_of(text, &format!("{alias}:")),
                    format!("stages.{alias}: `{alias}` is `{stage}`, which is configured too"),
                ));
            }
            config.stages.insert(stage.to_string(), entry);
        }
    }
    Ok(config)
}

/// serde's message in the file's terms: the allowed words of a field that
/// takes one (an enum given a mapping or list), no Rust type names.
fn readable(msg: &str) -> String {
    const TAG: &str = "a YAML tag starting with '!'";
    let path = msg.split_once(": ").map(|(p, _)| p).filter(|p| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-[]".contains(c))
    });
    let msg = match (msg.contains(TAG), path.and_then(allowed_words)) {
        (true, Some(words)) => msg.replace(
            TAG,
            &format!(
                "one of {}",
                words
                    .iter()
                    .map(|w| format!("`{w}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        _ => msg.to_string(),
    };
    if path.is_none() && msg.contains("expected struct Config") {
        return msg.replace(
            "expected struct Config",
            "expected a mapping of the sections tags, images, deploy, gitops, stages, changelog, github_release, notify",
        );
    }
    crate::output::text::serde_message(&msg, "a mapping")
}

/// The words a field takes (`deploy.mode` → pr, push), from the schema.
fn allowed_words(path: &str) -> Option<Vec<String>> {
    let schema: serde_json::Value = serde_json::from_str(&json_schema()).ok()?;
    let defs = schema.get("$defs").cloned().unwrap_or_default();
    fn resolve(defs: &serde_json::Value, start: &serde_json::Value) -> serde_json::Value {
        let mut node = start;
        for _ in 0..8 {
            if let Some(r) = node.get("$ref").and_then(|r| r.as_str()) {
                match r.strip_prefix("#/$defs/").and_then(|n| defs.get(n)) {
                    Some(d) => node = d,
                    None => break,
                }
            } else if let Some(options) = node.get("anyOf").and_then(|a| a.as_array()) {
                match options
                    .iter()
                    .find(|o| o.get("type") != Some(&"null".into()))
                {
                    Some(o) => node = o,
                    None => break,
                }
            } else {
                break;
            }
        }
        node.clone()
    }
    let resolve = |node: &serde_json::Value| resolve(&defs, node);
    let mut node = resolve(&schema);
    for segment in path.split('.') {
        let (key, indexes) = match segment.find('[') {
            Some(i) => (&segment[..i], segment[i..].matches('[').count()),
            None => (segment, 0),
        };
        if !key.is_empty() {
            let next = node
                .get("properties")
                .and_then(|p| p.get(key))
                .or_else(|| node.get("additionalProperties"))?;
            node = resolve(next);
        }
        for _ in 0..indexes {
            node = resolve(node.get("items")?);
        }
    }
    if let Some(list) = node.get("enum").and_then(|e| e.as_array()) {
        return Some(
            list.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        );
    }
    let consts: Vec<String> = node
        .get("oneOf")?
        .as_array()?
        .iter()
        .filter_map(|o| o.get("const").and_then(|c| c.as_str()).map(str::to_string))
        .collect();
    (!consts.is_empty()).then_some(consts)
}

/// The first line (1-based) whose text contains `needle`.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

/// The JSON Schema of the configuration file (docs/openim-release.schema.json).
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Config);
    let mut text = serde_json::to_string_pretty(&schema).expect("schemas serialize");
    text.push('\n');
    text
}

/// Placeholders each stage offers to its templates.
pub const DEV_VARS: &[&str] = &["branch", "sha", "sha7", "date"];
pub const NIGHTLY_VARS: &[&str] = &["branch", "sha", "sha7", "date"];
pub const RELEASE_VARS: &[&str] = &[
    "branch", "sha", "sha7", "date", "version", "major", "minor", "patch",
];
pub const RC_VARS: &[&str] = &[
    "branch", "sha", "sha7", "date", "version", "major", "minor", "patch", "n",
];

type Invalid = (String, String, String);

/// Typical placeholder values, to try templates on at load time.
fn sample_values() -> crate::tag::template::Values {
    let mut v = crate::tag::template::Values::default();
    v.set("branch", "main")
        .set("sha", "0123456789abcdef0123456789abcdef01234567")
        .set("sha7", "0123456")
        .set("date", "20260101")
        .set("version", "1.2.3")
        .set("major", "1")
        .set("minor", "2")
        .set("patch", "3")
        .set("n", "0")
        .set("service", "api");
    v
}

fn validate(config: &Config) -> Result<(), Invalid> {
    let t = &config.tags;
    let prefix = t.prefix();
    let ref_safe = prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
    if !ref_safe
        || prefix.starts_with(['/', '.', '-'])
        || prefix.contains("//")
        || prefix.contains("..")
        || prefix.contains("/.")
    {
        return Err((
            "tags.prefix".into(),
            prefix.to_string(),
            "must be letters, digits, `.`, `_`, `-` and `/` between path parts (`v`, \
             `server/v`): it starts git tag names"
                .into(),
        ));
    }
    let groups: [(&str, &[String], &[&str]); 8] = [
        ("tags.dev.tags", &t.dev.tags, DEV_VARS),
        ("tags.rc.tags", &t.rc.tags, RC_VARS),
        ("tags.release.tags", &t.release.tags, RELEASE_VARS),
        ("tags.release.aliases", &t.release.aliases, RELEASE_VARS),
        ("tags.patch.tags", &t.patch.tags, RC_VARS),
        ("tags.patch.aliases", &t.patch.aliases, RELEASE_VARS),
        ("tags.nightly.tags", &t.nightly.tags, NIGHTLY_VARS),
        (
            "tags.nightly.git_tag",
            std::slice::from_ref(&t.nightly.git_tag),
            NIGHTLY_VARS,
        ),
    ];
    for (key, templates, offered) in groups {
        // Image tags may name the service (`v{version}-{service}`); the git
        // tag is one per release and may not.
        let mut offered = offered.to_vec();
        if key != "tags.nightly.git_tag" {
            offered.push("service");
        }
        let offered = offered.as_slice();
        if templates.is_empty() && !key.ends_with("aliases") {
            return Err((
                key.into(),
                String::new(),
                "needs at least one tag template".into(),
            ));
        }
        for (i, source) in templates.iter().enumerate() {
            let stage = key.split('.').nth(1).unwrap_or("?");
            let tpl = Template::parse(source)
                .and_then(|tpl| tpl.check_offered(offered, stage).map(|()| tpl))
                .map_err(|e: TemplateError| {
                    (format!("{key}[{i}]"), source.clone(), e.to_string())
                })?;
            // A template whose fixed text can never form an image tag (a `/`,
            // a `+`, a leading `.`) is caught here, with its line, rather
            // than when tags are computed. Branch names are sanitized, so a
            // plain one stands for them.
            if let Ok(sample) = tpl.render(&sample_values(), stage) {
                if !crate::oci::reference::is_valid_tag(&sample) {
                    return Err((
                        format!("{key}[{i}]"),
                        source.clone(),
                        format!(
                            "renders tags such as `{sample}`, which is not a valid image tag \
                             ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})"
                        ),
                    ));
                }
            }
        }
    }
    if let Some(images) = &config.images {
        validate_images(images)?;
        validate_image_names(images, t)?;
    }
    for name in config.stages.keys() {
        if ![
            "dev", "rc", "release", "patch", "nightly", "test", "prod", "hotfix",
        ]
        .contains(&name.as_str())
        {
            return Err((
                format!("stages.{name}"),
                format!("{name}:"),
                "unknown stage; stages are dev, rc (or test), release (or prod), patch (or \
                 hotfix), nightly"
                    .into(),
            ));
        }
    }
    if let Some(g) = &config.gitops {
        validate_gitops(g)?;
    }
    if let Some(d) = &config.deploy {
        validate_deploy(d)?;
    }
    notes::validate(
        config.changelog.as_ref(),
        config.github_release.as_ref(),
        &config.notify,
    )?;
    let branch_line = regex::Regex::new(&t.release_branch).map_err(|e| {
        (
            "tags.release_branch".to_string(),
            t.release_branch.clone(),
            format!(
                "not a valid regular expression: {}",
                one_line_regex_error(&e)
            ),
        )
    })?;
    let names: Vec<&str> = branch_line.capture_names().flatten().collect();
    if !names.contains(&"major") || !names.contains(&"minor") {
        return Err((
            "tags.release_branch".into(),
            t.release_branch.clone(),
            "needs the named groups (?P<major>…) and (?P<minor>…): they give the release line"
                .into(),
        ));
    }
    let git_tag = Template::parse(&t.nightly.git_tag).map_err(|e| {
        (
            "tags.nightly.git_tag".to_string(),
            t.nightly.git_tag.clone(),
            e.to_string(),
        )
    })?;
    if !git_tag.uses("date") {
        return Err((
            "tags.nightly.git_tag".into(),
            t.nightly.git_tag.clone(),
            "must use {date} so nightlies can be ordered".into(),
        ));
    }
    Ok(())
}

/// regex's syntax errors draw the pattern with a caret over several lines;
/// their last line says what is wrong.
fn one_line_regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    last.trim().trim_start_matches("error: ").to_string()
}

/// gitops templates: only the placeholders they are given, and a branch
/// that git accepts.
fn validate_gitops(g: &GitopsConfig) -> Result<(), Invalid> {
    let placeholder = regex::Regex::new(r"\{([^{}]*)\}").expect("static regex");
    let fields = [
        ("gitops.branch", &g.branch, &["stage", "version", "tag"][..]),
        (
            "gitops.commit_message",
            &g.commit_message,
            &["stage", "version", "tag", "services"][..],
        ),
        (
            "gitops.title",
            &g.title,
            &["stage", "version", "tag", "services"][..],
        ),
    ];
    for (key, value, offered) in fields {
        let Some(text) = value else { continue };
        for cap in placeholder.captures_iter(text) {
            if !offered.contains(&&cap[1]) {
                return Err((
                    key.into(),
                    text.clone(),
                    format!(
                        "unknown placeholder `{{{}}}`; {key} offers {}",
                        &cap[1],
                        offered
                            .iter()
                            .map(|o| format!("{{{o}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    }
    if let Some(branch) = &g.branch {
        let sample = branch
            .replace("{stage}", "rc")
            .replace("{version}", "1.2.3")
            .replace("{tag}", "v1.2.3-rc.0");
        if !crate::clients::git::is_valid_branch_name(&sample) {
            return Err((
                "gitops.branch".into(),
                branch.clone(),
                format!("renders `{sample}`, which is not a valid branch name"),
            ));
        }
    }
    Ok(())
}

/// `images.repository` and `images.image_names` give valid repository
/// paths; one repository for every service needs `{service}` in every tag.
fn validate_image_names(images: &ImagesConfig, t: &TagsConfig) -> Result<(), Invalid> {
    for (service, name) in &images.image_names {
        if !crate::oci::reference::is_valid_component(name) {
            return Err((
                format!("images.image_names.{service}"),
                name.clone(),
                format!(
                    "`{name}` is not a valid image name (lowercase letters, digits, . _ - \
                     separators)"
                ),
            ));
        }
    }
    let Some(repo) = &images.repository else {
        return Ok(());
    };
    let rest = repo.replace("{service}", "api");
    if rest.contains('{') || rest.contains('}') {
        return Err((
            "images.repository".into(),
            repo.clone(),
            "unknown placeholder; images.repository offers {service}".into(),
        ));
    }
    if rest.is_empty()
        || !rest
            .split('/')
            .all(crate::oci::reference::is_valid_component)
    {
        return Err((
            "images.repository".into(),
            repo.clone(),
            format!(
                "`{repo}` does not make a repository path (lowercase components with . _ - \
                 separators, joined by /)"
            ),
        ));
    }
    if repo.contains("{service}") {
        return Ok(());
    }
    let groups: [(&str, &[String]); 7] = [
        ("tags.dev.tags", &t.dev.tags),
        ("tags.rc.tags", &t.rc.tags),
        ("tags.release.tags", &t.release.tags),
        ("tags.release.aliases", &t.release.aliases),
        ("tags.patch.tags", &t.patch.tags),
        ("tags.patch.aliases", &t.patch.aliases),
        ("tags.nightly.tags", &t.nightly.tags),
    ];
    for (key, templates) in groups {
        for (i, tpl) in templates.iter().enumerate() {
            if !tpl.contains("{service}") {
                return Err((
                    "images.repository".into(),
                    repo.clone(),
                    format!(
                        "`{repo}` is one repository for every service, so each image tag must \
                         name the service, and {key}[{i}] `{tpl}` does not: every service would \
                         push the same tag; add {{service}} to it (`{tpl}-{{service}}`)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Image patterns of appVersion charts: `{appVersion}` (what the deploy
/// moves) and `{service}` only, and not beside `images` keys.
fn validate_deploy(d: &DeployConfig) -> Result<(), Invalid> {
    let placeholder = regex::Regex::new(r"\{([^{}]*)\}").expect("static regex");
    for (i, c) in d.charts.iter().enumerate() {
        let key = format!("deploy.charts[{i}].image_pattern");
        let Some(pattern) = &c.image_pattern else {
            if c.services.is_some() {
                return Err((
                    format!("deploy.charts[{i}].services"),
                    "services:".into(),
                    "applies with image_pattern (a chart whose images follow its appVersion)"
                        .into(),
                ));
            }
            continue;
        };
        for cap in placeholder.captures_iter(pattern) {
            if !["appVersion", "service"].contains(&&cap[1]) {
                return Err((
                    key,
                    pattern.clone(),
                    format!(
                        "unknown placeholder `{{{}}}`; an image pattern offers {{appVersion}} and \
                         {{service}}",
                        &cap[1]
                    ),
                ));
            }
        }
        if !pattern.contains("{appVersion}") {
            return Err((
                key,
                pattern.clone(),
                "has no {appVersion}: the deploy moves the chart's appVersion, which would change \
                 no image"
                    .into(),
            ));
        }
        if !c.images.is_empty() {
            return Err((
                key,
                pattern.clone(),
                "and `images` both name where the chart's images come from; a chart whose \
                 templates derive them from appVersion has no image keys: keep one"
                    .into(),
            ));
        }
    }
    Ok(())
}

fn validate_images(images: &ImagesConfig) -> Result<(), Invalid> {
    for (i, r) in images.registries.iter().enumerate() {
        crate::oci::reference::RegistryPrefix::parse(r)
            .map_err(|e| (format!("images.registries[{i}]"), r.clone(), e))?;
    }
    let platform_lists = std::iter::once(("images.platforms".to_string(), &images.platforms))
        .chain(images.services.iter().enumerate().filter_map(|(i, s)| {
            s.platforms
                .as_ref()
                .map(|p| (format!("images.services[{i}].platforms"), p))
        }));
    for (key, list) in platform_lists {
        for p in list {
            crate::oci::Platform::parse(p).map_err(|e| (key.clone(), p.clone(), e))?;
        }
    }
    validate_mirrors(images)?;
    let mut seen = std::collections::HashSet::new();
    for (i, s) in images.services.iter().enumerate() {
        if !crate::oci::reference::is_valid_component(&s.name)
            && !images.image_names.contains_key(&s.name)
        {
            return Err((
                format!("images.services[{i}].name"),
                s.name.clone(),
                format!(
                    "`{}` is not a valid image name (lowercase letters, digits, . _ - separators)",
                    s.name
                ),
            ));
        }
        if !seen.insert(&s.name) {
            return Err((
                format!("images.services[{i}].name"),
                s.name.clone(),
                format!("service `{}` is listed twice", s.name),
            ));
        }
    }
    Ok(())
}

/// `images.mirrors`: from a registry `build` pushes to, to registries it
/// does not push to, each mirrored from one registry only.
fn validate_mirrors(images: &ImagesConfig) -> Result<(), Invalid> {
    use crate::oci::reference::RegistryPrefix;
    let parse = |key: String, r: &String| RegistryPrefix::parse(r).map_err(|e| (key, r.clone(), e));
    let built: Vec<RegistryPrefix> = images
        .registries
        .iter()
        .filter_map(|r| RegistryPrefix::parse(r).ok())
        .collect();
    let mut targets: Vec<(RegistryPrefix, &String)> = Vec::new();
    for (from, to) in &images.mirrors {
        let key = format!("images.mirrors.{from}");
        let source = parse(key.clone(), from)?;
        if !built.contains(&source) {
            return Err((
                key,
                from.clone(),
                format!(
                    "`{from}` is not in images.registries; a mirror copies the images `build` \
                     pushes to one of them"
                ),
            ));
        }
        if to.is_empty() {
            return Err((key, from.clone(), "lists no registry to mirror to".into()));
        }
        for r in to {
            let target = parse(key.clone(), r)?;
            if target == source {
                return Err((key, r.clone(), format!("`{r}` is mirrored to itself")));
            }
            if built.contains(&target) {
                return Err((
                    key,
                    r.clone(),
                    format!(
                        "`{r}` is in images.registries too, so `build` would push there and \
                         the mirror copy it again: take it out of images.registries"
                    ),
                ));
            }
            if let Some((_, other)) = targets.iter().find(|(t, _)| *t == target) {
                return Err((
                    key,
                    r.clone(),
                    format!(
                        "`{r}` is the mirror of `{other}` already; a registry mirrors one registry"
                    ),
                ));
            }
            targets.push((target, from));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_copy_from_a_built_registry_to_others() {
        let ok = parse(
            "images:\n  registries: [ghcr.io/openimsdk]\n  mirrors:\n    ghcr.io/openimsdk: [docker.io/openim, registry.cn-hangzhou.aliyuncs.com/openimsdk]\n",
        )
        .unwrap();
        let images = ok.images.unwrap();
        assert_eq!(
            images.all_registries(),
            [
                "ghcr.io/openimsdk",
                "docker.io/openim",
                "registry.cn-hangzhou.aliyuncs.com/openimsdk"
            ]
        );
        let refused = |text: &str| parse(text).unwrap_err();
        let (line, msg) = refused(
            "images:\n  registries: [ghcr.io/openimsdk]\n  mirrors:\n    quay.io/openim: [docker.io/openim]\n",
        );
        assert_eq!(line, Some(4));
        assert!(
            msg.contains(
                "images.mirrors.quay.io/openim: `quay.io/openim` is not in images.registries"
            ),
            "{msg}"
        );
        let (_, msg) = refused(
            "images:\n  registries: [ghcr.io/openimsdk, docker.io/openim]\n  mirrors:\n    ghcr.io/openimsdk: [docker.io/openim]\n",
        );
        assert!(msg.contains("is in images.registries too"), "{msg}");
        let (_, msg) = refused(
            "images:\n  registries: [ghcr.io/openimsdk]\n  mirrors:\n    ghcr.io/openimsdk: [ghcr.io/openimsdk]\n",
        );
        assert!(msg.contains("mirrored to itself"), "{msg}");
        let (_, msg) = refused(
            "images:\n  registries: [ghcr.io/openimsdk]\n  mirrors:\n    ghcr.io/openimsdk: [docker.io/OpenIM]\n",
        );
        assert!(
            msg.contains("not a valid repository path component"),
            "{msg}"
        );
        let (_, msg) = refused(
            "images:\n  registries: [ghcr.io/openimsdk]\n  mirrors:\n    ghcr.io/openimsdk: []\n",
        );
        assert!(msg.contains("lists no registry"), "{msg}");
    }

    #[test]
    fn the_documented_example_config_loads() {
        let doc = include_str!("../../docs/config.md");
        let start = doc
            .find("```yaml\n")
            .expect("docs/config.md has a yaml block")
            + 8;
        let end = start + doc[start..].find("```").expect("closed yaml block");
        let c = parse(&doc[start..end]).unwrap_or_else(|e| panic!("docs/config.md example: {e:?}"));
        assert_eq!(c.tags.nightly.keep, 14);
        assert_eq!(c.stages["dev"].mode, Some(DeployMode::Push));
        assert_eq!(
            c.deploy.unwrap().charts[0].values,
            Some(ValuesFiles(vec![
                "charts/openim-server/values.yaml".into(),
                "k8s-open-im-server-config.yaml".into()
            ]))
        );
    }

    #[test]
    fn values_take_one_file_or_several_and_type_errors_name_no_rust_types() {
        let c = parse("deploy:\n  charts:\n    - path: a\n      values: a/v.yaml\n    - path: b\n      values: [b/v.yaml, k8s.yaml]\n    - path: c\n").unwrap();
        let charts = c.deploy.unwrap().charts;
        assert_eq!(charts[0].values, Some(ValuesFiles(vec!["a/v.yaml".into()])));
        assert_eq!(
            charts[1].values,
            Some(ValuesFiles(vec!["b/v.yaml".into(), "k8s.yaml".into()]))
        );
        assert_eq!(charts[2].values, None);
        refused(
            "deploy:\n  charts:\n    - path: a\n      values: []\n",
            4,
            &["deploy.charts[0].values", "at least one file"],
        );
        for text in [
            "deploy: x\n",
            "deploy:\n  charts: [x]\n",
            "images:\n  services: [x]\n",
            "stages:\n  dev: x\n",
            "gitops: 3\n",
            "tags:\n  dev: 1\n",
            "tags:\n  release: 1\n",
            "tags:\n  nightly: 1\n",
            "tags:\n  patch: 1\n",
            "tags: 1\n",
            "images: 1\n",
            "- a\n",
            "deploy:\n  charts:\n    - path: a\n      values: 3\n",
        ] {
            let (_, msg) = parse(text).unwrap_err();
            assert!(
                msg.contains("expected a") && !msg.contains("struct") && !msg.contains("enum"),
                "{text}: {msg}"
            );
        }
    }

    #[test]
    fn committed_json_schema_is_current() {
        let committed = include_str!("../../docs/openim-release.schema.json");
        assert!(
            committed == json_schema(),
            "docs/openim-release.schema.json is stale: run `cargo run -- schema > docs/openim-release.schema.json`"
        );
    }

    /// `text` is refused, at `line`, with a message holding every needle.
    fn refused(text: &str, line: usize, needles: &[&str]) {
        let (at, msg) = parse(text).unwrap_err();
        assert_eq!(at, Some(line), "{msg}");
        for n in needles {
            assert!(msg.contains(n), "`{n}` not in: {msg}");
        }
    }

    #[test]
    fn a_template_that_cannot_form_an_image_tag_is_refused_at_load() {
        refused(
            "tags:\n  rc:\n    tags: [\"v{version}+rc{n}\"]\n",
            3,
            &["tags.rc.tags[0]", "v1.2.3+rc0"],
        );
        parse("tags:\n  rc:\n    tags: [\"v{version}-rc.{n}\", \"{branch}-rc{n}\"]\n").unwrap();
    }

    #[test]
    fn gitops_templates_offer_their_placeholders_only() {
        refused(
            "gitops:\n  branch: deploy/{services}\n",
            2,
            &["gitops.branch", "{services}", "{stage}"],
        );
        refused(
            "gitops:\n  title: \"{stag}: {tag}\"\n",
            2,
            &["gitops.title", "{stag}"],
        );
        refused(
            "gitops:\n  branch: \"deploy {stage}\"\n",
            2,
            &["not a valid branch"],
        );
        parse("gitops:\n  branch: deploy/{stage}-{version}\n  title: \"{services}: {tag}\"\n")
            .unwrap();
    }

    #[test]
    fn a_broken_release_branch_regex_is_one_line() {
        refused(
            "tags:\n  release_branch: \"([\"\n",
            2,
            &["not a valid regular expression: unclosed character class"],
        );
        let (_, msg) = parse("tags:\n  release_branch: \"([\"\n").unwrap_err();
        assert!(!msg.contains('\n'), "{msg}");
    }

    #[test]
    fn stage_aliases_name_the_same_stages() {
        let c = parse("stages:\n  test: { base: test }\n  prod: { base: main }\n").unwrap();
        assert_eq!(c.stages["rc"].base.as_deref(), Some("test"));
        assert_eq!(c.stages["release"].base.as_deref(), Some("main"));
        assert!(!c.stages.contains_key("test"));
        refused(
            "stages:\n  rc: { base: a }\n  test: { base: b }\n",
            3,
            &["stages.test", "rc"],
        );
    }

    #[test]
    fn a_release_branch_pattern_needs_major_and_minor() {
        refused(
            "tags:\n  release_branch: '^release-(\\d+)$'\n",
            2,
            &["tags.release_branch", "major"],
        );
        parse("tags:\n  release_branch: '^rel/(?P<major>\\d+)\\.(?P<minor>\\d+)$'\n").unwrap();
    }

    #[test]
    fn a_leading_bom_loses_nothing() {
        let c = parse("\u{feff}tags:\n  prefix: v\n\n  dev:\n    tags: [\"x-{sha7}\"]\n").unwrap();
        assert_eq!(c.tags.dev.tags, ["x-{sha7}"]);
    }

    #[test]
    fn defaults_when_empty() {
        let c = parse("# nothing here\n").unwrap();
        assert_eq!(c.tags.prefix, None);
        assert_eq!(c.tags.prefix(), "v");
        assert_eq!(c.tags.rc.tags[0], "v{version}-rc.{n}");
    }

    #[test]
    fn type_errors_name_no_rust_types() {
        for (text, line, needles) in [
            (
                "images: []\n",
                1,
                &["images: invalid type: sequence, expected a mapping"][..],
            ),
            (
                "images:\n  services:\n    - x\n",
                3,
                &["images.services[0]: invalid type: string \"x\", expected a mapping"],
            ),
            (
                "deploy:\n  mode: {a: 1}\n",
                2,
                &["deploy.mode: invalid type: mapping, expected one of `pr`, `push`"],
            ),
            (
                "deploy:\n  charts:\n    - path: x\n      bump: [1]\n",
                4,
                &["expected one of `major`, `minor`, `patch`, `none`"],
            ),
            (
                "tags:\n  release:\n    alias_policy: []\n",
                3,
                &["expected one of `highest`, `per-line`"],
            ),
            (
                "stages:\n  rc:\n    mode: [x]\n",
                3,
                &["stages.rc.mode: invalid type: sequence, expected one of `pr`, `push`"],
            ),
            (
                "- a\n",
                1,
                &["expected a mapping of the sections tags, images"],
            ),
            (
                "tags:\n  nightly:\n    keep: -1\n",
                3,
                &["expected a whole number"],
            ),
        ] {
            refused(text, line, needles);
            let (_, msg) = parse(text).unwrap_err();
            for rust in ["struct ", "enum ", "YAML tag", "u32", "Config"] {
                assert!(!msg.contains(rust), "{rust} in {msg}");
            }
        }
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let (line, msg) = parse("tags:\n  prefix: v\n  prefx: x\n").unwrap_err();
        assert_eq!(line, Some(3));
        assert!(msg.contains("unknown field `prefx`"), "{msg}");
    }

    #[test]
    fn bad_template_names_key_and_line() {
        let text = "tags:\n  dev:\n    tags: [\"{branch}\", \"{version}\"]\n";
        let (line, msg) = parse(text).unwrap_err();
        assert_eq!(line, Some(3));
        assert!(msg.starts_with("tags.dev.tags[1]:"), "{msg}");
        assert!(msg.contains("{version}"), "{msg}");
    }

    #[test]
    fn issue_examples_parse() {
        let text = r#"
images:
  registries:            # each image is pushed as <registry>/<service>:<tag>
    - ghcr.io/openimsdk
    - docker.io/openim
  platforms: [linux/amd64, linux/arm64]
  services:
    - name: openim-api
      dockerfile: build/images/openim-server/Dockerfile
      context: .
      args: { CMD_PATH: cmd/openim-api, BINARY_NAME: openim-api }
deploy:
  url: https://github.com/openimsdk/helm-charts.git
  repository: openimsdk/helm-charts      # for the GitHub API
  base: main
  mode: pr                               # or push
  charts:
    - path: charts/openim-server
      values: charts/openim-server/values.yaml
      images: { openim-api: image.tag }  # service -> key path
"#;
        let c = parse(text).unwrap();
        let images = c.images.unwrap();
        assert_eq!(images.services[0].args["BINARY_NAME"], "openim-api");
        assert_eq!(c.deploy.unwrap().mode, Some(DeployMode::Pr));
    }
}

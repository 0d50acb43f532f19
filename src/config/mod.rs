//! `openim-release.yaml`: the project's release configuration.
//!
//! Every section is optional; unknown keys are refused with the key and line.
//! Sections: `tags` (tag rules and templates), `images` (services, registries,
//! platforms), `deploy` (the deploy repository and its charts) and `gitops`
//! (how changes are proposed). Later commands fill in the latter three.

mod load;
pub mod notes;
mod validate;

pub use load::{json_schema, load, parse, ConfigError, Loaded};
pub use validate::{DEV_VARS, NIGHTLY_VARS, RC_VARS, RELEASE_VARS};

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
    /// Prefix of version git tags (`v` in `v3.8.1`, empty for `3.8.1`,
    /// `server/v` for a component's `server/v3.8.1`) [default: detected from
    /// the repository's tags: `v`, or none when its releases are tagged
    /// `X.Y.Z`].
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

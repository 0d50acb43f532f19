//! The sections about what a release tells: `changelog:` (the release
//! notes), `github_release:` (the GitHub Release `release` publishes) and
//! `notify:` (chat and webhook messages when a run finishes or fails).

use serde::Deserialize;

/// `changelog:` — what the release notes hold (`notes`, and the GitHub Release of `release`).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping with groups, breaking, other, exclude, services, contributors"
)]
pub struct ChangelogConfig {
    /// The groups of commits, in the order they are shown: a title and the conventional-commit types it takes [default: Features (feat), Fixes (fix)].
    pub groups: Option<Vec<ChangelogGroup>>,
    /// Title of the group of breaking changes (`feat!:`, a `BREAKING CHANGE:` footer), shown first; an empty title leaves them in their own groups [default: Breaking changes].
    pub breaking: Option<String>,
    /// Title of the group of every other commit (other types, and messages that are no conventional commit); an empty title leaves them out [default: Other changes].
    pub other: Option<String>,
    /// Commits left out of the notes.
    pub exclude: ChangelogExclude,
    /// Whether the notes have a section per service, from the paths each commit touched [default: true].
    pub services: Option<bool>,
    /// Whether the notes list the contributors [default: true].
    pub contributors: Option<bool>,
}

/// One group of the notes.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a mapping with title, types")]
pub struct ChangelogGroup {
    /// The group's heading.
    pub title: String,
    /// Conventional-commit types it takes (`feat`, `fix`, `perf`, …).
    pub types: Vec<String>,
}

/// Commits the notes leave out.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping with types, scopes, authors, messages"
)]
pub struct ChangelogExclude {
    /// Conventional-commit types left out (`chore`, `ci`, `docs`, …).
    pub types: Vec<String>,
    /// Scopes left out (`deps` in `chore(deps): …`).
    pub scopes: Vec<String>,
    /// Authors left out, by name or email (`dependabot[bot]`).
    pub authors: Vec<String>,
    /// Regular expressions: a commit whose subject matches one is left out.
    pub messages: Vec<String>,
}

impl ChangelogConfig {
    /// The groups, with the defaults.
    pub fn groups(&self) -> Vec<ChangelogGroup> {
        self.groups.clone().unwrap_or_else(|| {
            vec![
                ChangelogGroup {
                    title: "Features".into(),
                    types: vec!["feat".into()],
                },
                ChangelogGroup {
                    title: "Fixes".into(),
                    types: vec!["fix".into()],
                },
            ]
        })
    }

    /// The title of the breaking changes' group (`None`: no such group).
    pub fn breaking_title(&self) -> Option<String> {
        let t = self
            .breaking
            .clone()
            .unwrap_or_else(|| "Breaking changes".into());
        (!t.is_empty()).then_some(t)
    }

    /// The title of the group of the rest (`None`: left out).
    pub fn other_title(&self) -> Option<String> {
        let t = self.other.clone().unwrap_or_else(|| "Other changes".into());
        (!t.is_empty()).then_some(t)
    }
}

/// `github_release:` — the GitHub Release `release` creates or updates for its git tag.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping with stages, repository, name, draft"
)]
pub struct GithubReleaseConfig {
    /// The stages whose `release` publishes a GitHub Release: `release`, `patch`, `rc` (as a pre-release); `[]` for none [default: release, patch].
    pub stages: Option<Vec<String>>,
    /// The repository (owner/name) the release belongs to [default: GITHUB_REPOSITORY, else the `origin` remote's URL].
    pub repository: Option<String>,
    /// The release's title, a template with {tag}, {version}, {stage} [default: {tag}].
    pub name: Option<String>,
    /// Create the release as a draft (an existing release keeps its state) [default: false].
    pub draft: bool,
}

/// The stages that publish a GitHub Release without a `github_release.stages`.
pub const DEFAULT_RELEASE_STAGES: &[&str] = &["release", "patch"];

impl GithubReleaseConfig {
    /// Whether `stage` publishes a GitHub Release.
    pub fn publishes(&self, stage: &str) -> bool {
        match &self.stages {
            Some(list) => list.iter().any(|s| canonical_stage(s) == Some(stage)),
            None => DEFAULT_RELEASE_STAGES.contains(&stage),
        }
    }
}

/// One destination of `notify:`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with type, url_env, secret_env, name, stages, on"
)]
pub struct NotifyTarget {
    /// The message format: `webhook` (JSON), `slack`, `feishu`, `lark`, `dingtalk`, `wecom`.
    #[serde(rename = "type")]
    pub kind: NotifyKind,
    /// The environment variable holding the webhook URL (a secret: never written in this file, never printed).
    pub url_env: String,
    /// The environment variable holding the signing secret: `dingtalk`, `feishu`/`lark` (their bots' signature), `webhook` (an `X-Openim-Release-Signature` header).
    #[serde(default)]
    pub secret_env: Option<String>,
    /// The name messages and warnings give this destination [default: its type].
    #[serde(default)]
    pub name: Option<String>,
    /// The stages that notify it: `rc`, `release`, `patch`, `nightly` [default: all four].
    #[serde(default)]
    pub stages: Option<Vec<String>>,
    /// When: `success`, `failure` [default: both].
    #[serde(default)]
    pub on: Option<Vec<NotifyOn>>,
}

/// A message format.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum NotifyKind {
    /// A JSON document of the run (for your own receiver).
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// A Feishu custom bot.
    Feishu,
    /// A Lark custom bot (Feishu's international edition).
    Lark,
    /// A DingTalk custom robot.
    Dingtalk,
    /// A WeCom (WeChat Work) group robot.
    Wecom,
}

impl NotifyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyKind::Webhook => "webhook",
            NotifyKind::Slack => "slack",
            NotifyKind::Feishu => "feishu",
            NotifyKind::Lark => "lark",
            NotifyKind::Dingtalk => "dingtalk",
            NotifyKind::Wecom => "wecom",
        }
    }

    /// Whether the format has a signature (and so takes `secret_env`).
    pub fn signs(self) -> bool {
        matches!(
            self,
            NotifyKind::Webhook | NotifyKind::Feishu | NotifyKind::Lark | NotifyKind::Dingtalk
        )
    }
}

/// When a destination is notified.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum NotifyOn {
    /// The run finished.
    Success,
    /// The run failed.
    Failure,
}

/// The stages that notify without `stages`.
pub const NOTIFY_STAGES: &[&str] = &["rc", "release", "patch", "nightly"];

impl NotifyTarget {
    /// The name shown for this destination.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.kind.as_str().to_string())
    }

    /// Whether a run of `stage` that ended as `on` notifies this destination.
    pub fn wants(&self, stage: &str, on: NotifyOn) -> bool {
        let stage_ok = match &self.stages {
            Some(list) => list.iter().any(|s| canonical_stage(s) == Some(stage)),
            None => NOTIFY_STAGES.contains(&stage),
        };
        stage_ok && self.on.as_ref().is_none_or(|list| list.contains(&on))
    }
}

/// A stage's name, its aliases (`test`, `prod`, `hotfix`) resolved.
pub fn canonical_stage(name: &str) -> Option<&'static str> {
    Some(match name {
        "dev" => "dev",
        "rc" | "test" => "rc",
        "release" | "prod" => "release",
        "patch" | "hotfix" => "patch",
        "nightly" => "nightly",
        _ => return None,
    })
}

type Invalid = (String, String, String);

/// Regular expressions that compile, stages that exist, secrets only
/// where the format signs, environment variable names.
pub fn validate(
    changelog: Option<&ChangelogConfig>,
    release: Option<&GithubReleaseConfig>,
    notify: &[NotifyTarget],
) -> Result<(), Invalid> {
    if let Some(c) = changelog {
        for (i, m) in c.exclude.messages.iter().enumerate() {
            if let Err(e) = regex::Regex::new(m) {
                return Err((
                    format!("changelog.exclude.messages[{i}]"),
                    m.clone(),
                    format!(
                        "not a valid regular expression: {}",
                        e.to_string().lines().last().unwrap_or_default().trim()
                    ),
                ));
            }
        }
        for (i, g) in c.groups().iter().enumerate() {
            if g.title.trim().is_empty() {
                return Err((
                    format!("changelog.groups[{i}].title"),
                    "title:".into(),
                    "a group needs a title".into(),
                ));
            }
        }
    }
    if let Some(r) = release {
        for (i, s) in r.stages.iter().flatten().enumerate() {
            if !matches!(canonical_stage(s), Some("rc" | "release" | "patch")) {
                return Err((
                    format!("github_release.stages[{i}]"),
                    s.clone(),
                    format!(
                        "`{s}`: a GitHub Release is of a version's git tag: rc (a pre-release), \
                         release, patch"
                    ),
                ));
            }
        }
        if let Some(repo) = &r.repository {
            if !is_owner_name(repo) {
                return Err((
                    "github_release.repository".into(),
                    repo.clone(),
                    format!("`{repo}` is not owner/name"),
                ));
            }
        }
        if let Some(name) = &r.name {
            let placeholder = regex::Regex::new(r"\{([^{}]*)\}").expect("static regex");
            for cap in placeholder.captures_iter(name) {
                if !["tag", "version", "stage"].contains(&&cap[1]) {
                    return Err((
                        "github_release.name".into(),
                        name.clone(),
                        format!(
                            "unknown placeholder `{{{}}}`; github_release.name offers {{tag}}, \
                             {{version}}, {{stage}}",
                            &cap[1]
                        ),
                    ));
                }
            }
        }
    }
    for (i, t) in notify.iter().enumerate() {
        for (key, value) in [
            ("url_env", Some(&t.url_env)),
            ("secret_env", t.secret_env.as_ref()),
        ] {
            let Some(v) = value else { continue };
            if !is_env_name(v) {
                return Err((
                    format!("notify[{i}].{key}"),
                    v.clone(),
                    format!(
                        "`{v}` is not an environment variable's name (letters, digits, _): \
                         {key} names the variable that holds the value, which is a secret and \
                         never written here"
                    ),
                ));
            }
        }
        if t.secret_env.is_some() && !t.kind.signs() {
            return Err((
                format!("notify[{i}].secret_env"),
                "secret_env".into(),
                format!(
                    "a {} webhook has no signature; its URL is the secret (url_env)",
                    t.kind.as_str()
                ),
            ));
        }
        for (j, s) in t.stages.iter().flatten().enumerate() {
            if !matches!(
                canonical_stage(s),
                Some("rc" | "release" | "patch" | "nightly" | "dev")
            ) {
                return Err((
                    format!("notify[{i}].stages[{j}]"),
                    s.clone(),
                    format!("unknown stage `{s}`; stages are dev, rc, release, patch, nightly"),
                ));
            }
        }
    }
    Ok(())
}

/// `owner/name`.
pub fn is_owner_name(text: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    matches!(text.split_once('/'), Some((o, n)) if ok(o) && ok(n))
}

fn is_env_name(text: &str) -> bool {
    !text.is_empty()
        && !text.starts_with(|c: char| c.is_ascii_digit())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    #[test]
    fn notify_targets_load_and_are_checked() {
        let c = parse(
            "notify:\n  - type: dingtalk\n    url_env: DINGTALK_URL\n    secret_env: DINGTALK_SECRET\n    on: [failure]\n  - type: slack\n    url_env: SLACK_URL\n    stages: [prod]\n",
        )
        .unwrap();
        assert_eq!(c.notify.len(), 2);
        assert!(c.notify[0].wants("nightly", super::NotifyOn::Failure));
        assert!(!c.notify[0].wants("nightly", super::NotifyOn::Success));
        assert!(!c.notify[0].wants("dev", super::NotifyOn::Failure));
        assert!(c.notify[1].wants("release", super::NotifyOn::Success));
        assert!(!c.notify[1].wants("rc", super::NotifyOn::Success));
        let (line, msg) =
            parse("notify:\n  - type: slack\n    url_env: U\n    secret_env: S\n").unwrap_err();
        assert_eq!(line, Some(4), "{msg}");
        assert!(msg.contains("notify[0].secret_env"), "{msg}");
        let (_, msg) =
            parse("notify:\n  - type: slack\n    url_env: https://hooks.example/T0\n").unwrap_err();
        assert!(msg.contains("not an environment variable"), "{msg}");
        let (_, msg) = parse("notify:\n  - type: teams\n    url_env: U\n").unwrap_err();
        assert!(msg.contains("`slack`"), "{msg}");
    }

    #[test]
    fn github_release_and_changelog_are_checked() {
        let c = parse("github_release:\n  stages: [hotfix, test]\n").unwrap();
        let r = c.github_release.unwrap();
        assert!(r.publishes("patch") && r.publishes("rc") && !r.publishes("release"));
        assert!(super::GithubReleaseConfig::default().publishes("release"));
        assert!(!super::GithubReleaseConfig::default().publishes("rc"));
        let (_, msg) = parse("github_release:\n  stages: [nightly]\n").unwrap_err();
        assert!(msg.contains("github_release.stages[0]"), "{msg}");
        let (_, msg) = parse("github_release:\n  name: \"{tga}\"\n").unwrap_err();
        assert!(msg.contains("{tga}"), "{msg}");
        let (line, msg) = parse("changelog:\n  exclude:\n    messages: [\"(\"]\n").unwrap_err();
        assert_eq!(line, Some(3), "{msg}");
        assert!(msg.contains("changelog.exclude.messages[0]"), "{msg}");
    }
}

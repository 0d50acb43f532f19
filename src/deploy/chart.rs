//! Deploy-surface edits: Helm Chart.yaml (version, appVersion), values
//! files (image tags and digests at key paths), Kubernetes manifests
//! (`image: repo:tag`) and compose `.env` files. Pure functions from file
//! text to file text; formatting is preserved by `yamledit` (YAML) and by
//! touching only the matched characters (manifests, .env).

use crate::yamledit::{self, YamlEditError};
use regex::Regex;
use semver::Version;
use serde::Serialize;

/// How a chart's `version` moves when something in the chart changed.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    serde::Deserialize,
    clap::ValueEnum,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ChartBump {
    Major,
    Minor,
    Patch,
    None,
}

/// How an image digest (from `build --output json`) is recorded.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    serde::Deserialize,
    clap::ValueEnum,
    Default,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum DigestPin {
    /// Tags only.
    #[default]
    None,
    /// A sibling `digest` key next to the tag key (`image.digest`).
    Key,
    /// `tag@sha256:…` in the tag key itself.
    Tag,
}

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("{file}: {error}")]
    Yaml { file: String, error: YamlEditError },
    #[error(
        "{file}: `version: {version}` is not a semantic version; fix it, or leave the chart version alone (`--chart-bump none`, or `bump: none` in deploy.charts)"
    )]
    BadChartVersion { file: String, version: String },
    #[error("{file}: has no `version`; a Chart.yaml needs one")]
    NoChartVersion { file: String },
    /// A key path an image tag must not be written to: it holds a number,
    /// a boolean, a list or a mapping, or it is missing beside a look-alike.
    #[error("{file}: key path `{key}`{detail}")]
    KeyRefused {
        file: String,
        key: String,
        detail: String,
    },
}

/// One scalar that changed, for the diff summary and the PR body.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ScalarChange {
    pub file: String,
    pub key: String,
    pub old: Option<String>,
    pub new: String,
}

impl ChartError {
    /// The key path does not exist in the file.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            ChartError::Yaml {
                error: YamlEditError::NotFound { .. },
                ..
            }
        )
    }
}

fn yaml_err(file: &str) -> impl Fn(YamlEditError) -> ChartError + '_ {
    move |error| ChartError::Yaml {
        file: file.to_string(),
        error,
    }
}

fn path(p: &str, file: &str) -> Result<Vec<String>, ChartError> {
    yamledit::parse_path(p).map_err(yaml_err(file))
}

/// Set `key` in `text` (a YAML file named `file`); records the change.
pub fn set_value(
    text: &str,
    file: &str,
    key: &str,
    value: &str,
    changes: &mut Vec<ScalarChange>,
) -> Result<String, ChartError> {
    let p = path(key, file)?;
    let old = yamledit::get(text, &p).map_err(yaml_err(file))?;
    let (new_text, changed) = yamledit::set(text, &p, value).map_err(yaml_err(file))?;
    if changed {
        changes.push(ScalarChange {
            file: file.to_string(),
            key: key.to_string(),
            old,
            new: value.to_string(),
        });
    }
    Ok(new_text)
}

/// Two keys that are probably meant to be the same: equal but for case,
/// `-` and `_`, or one edit apart (a typo such as `tga` for `tag`).
fn similar_keys(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| !matches!(c, '-' | '_'))
            .flat_map(char::to_lowercase)
            .collect::<Vec<char>>()
    };
    let (x, y) = (norm(a), norm(b));
    if x == y {
        return true;
    }
    x.len().min(y.len()) >= 3 && edit_distance(&x, &y) <= 1
}

/// Optimal string alignment distance (an adjacent swap counts as one edit).
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// Refuse a key path an image tag (or digest) must not be written to: one
/// holding a number, a boolean, a list or a mapping, and a missing key whose
/// sibling looks like the one meant (`image.Tag` beside `tag: ""`), which
/// would otherwise be added as a new key that nothing reads.
pub fn check_image_key(text: &str, file: &str, key: &str) -> Result<(), ChartError> {
    let p = path(key, file)?;
    let err = yaml_err(file);
    match yamledit::kind(text, &p).map_err(&err)? {
        Some((yamledit::ValueKind::String(_) | yamledit::ValueKind::Null, _)) => Ok(()),
        Some((found, line)) => {
            let hint = match &found {
                yamledit::ValueKind::Mapping => {
                    let inner = yamledit::keys(text, &p).map_err(&err)?.unwrap_or_default();
                    match inner.iter().find(|(k, _)| k == "tag") {
                        Some(_) => format!("; did you mean `{key}.tag`?"),
                        None => "; pass the key path of the tag itself".to_string(),
                    }
                }
                _ => "; is the key path right?".to_string(),
            };
            Err(ChartError::KeyRefused {
                file: file.to_string(),
                key: key.to_string(),
                detail: format!(
                    " (line {line}) holds {}, not an image tag; refusing to overwrite it{hint}",
                    found.describe()
                ),
            })
        }
        None => {
            let (parent, last) = p.split_at(p.len() - 1);
            let siblings = yamledit::keys(text, parent)
                .map_err(&err)?
                .unwrap_or_default();
            match siblings
                .into_iter()
                .find(|(k, _)| similar_keys(k, &last[0]))
            {
                Some((existing, line)) => {
                    let mut fixed = parent.to_vec();
                    fixed.push(existing.clone());
                    let why = if existing.to_lowercase() == last[0].to_lowercase() {
                        " (keys are case-sensitive)"
                    } else {
                        ""
                    };
                    Err(ChartError::KeyRefused {
                        file: file.to_string(),
                        key: key.to_string(),
                        detail: format!(
                            ": there is no `{missing}` but there is `{existing}` (line {line}); \
                             refusing to add `{missing}` beside it{why}: did you mean `{}`?",
                            yamledit::format_path(&fixed),
                            missing = last[0]
                        ),
                    })
                }
                None => Ok(()),
            }
        }
    }
}

/// Set the image tag at `key` (and the digest, as `pin` says).
pub fn set_image(
    text: &str,
    file: &str,
    key: &str,
    tag: &str,
    digest: Option<&str>,
    pin: DigestPin,
    changes: &mut Vec<ScalarChange>,
) -> Result<String, ChartError> {
    check_image_key(text, file, key)?;
    match (pin, digest) {
        (DigestPin::Tag, Some(d)) => set_value(text, file, key, &format!("{tag}@{d}"), changes),
        (DigestPin::Key, Some(d)) => {
            let text = set_value(text, file, key, tag, changes)?;
            let digest_key = match key.rsplit_once('.') {
                Some((parent, _)) => format!("{parent}.digest"),
                None => "digest".to_string(),
            };
            check_image_key(&text, file, &digest_key)?;
            set_value(&text, file, &digest_key, d, changes)
        }
        _ => set_value(text, file, key, tag, changes),
    }
}

/// The image repository configured next to a tag key: `image.repository`
/// (with `image.registry` in front when present) for `image.tag`.
pub fn repository_beside(text: &str, file: &str, key: &str) -> Result<Option<String>, ChartError> {
    let parent = key.rsplit_once('.').map(|(p, _)| p.to_string());
    let join = |leaf: &str| match &parent {
        Some(p) => format!("{p}.{leaf}"),
        None => leaf.to_string(),
    };
    let get = |k: String| -> Result<Option<String>, ChartError> {
        yamledit::get(text, &path(&k, file)?).map_err(yaml_err(file))
    };
    let repo = get(join("repository")).unwrap_or_default();
    let registry = get(join("registry")).unwrap_or(None);
    Ok(match (registry, repo) {
        (Some(reg), Some(repo)) if !reg.is_empty() => {
            Some(format!("{}/{repo}", reg.trim_end_matches('/')))
        }
        (_, repo) => repo.filter(|r| !r.is_empty()),
    })
}

/// Chart.yaml: set `appVersion` (keeping its quoting), when one is given.
pub fn set_app_version(
    text: &str,
    file: &str,
    app_version: Option<&str>,
    changes: &mut Vec<ScalarChange>,
) -> Result<String, ChartError> {
    match app_version {
        Some(v) => set_value(text, file, "appVersion", v, changes),
        None => Ok(text.to_string()),
    }
}

/// Chart.yaml: move `version` as `bump` says (nothing for `None`).
pub fn bump_version(
    text: &str,
    file: &str,
    bump: ChartBump,
    changes: &mut Vec<ScalarChange>,
) -> Result<String, ChartError> {
    if bump == ChartBump::None {
        return Ok(text.to_string());
    }
    let current = yamledit::get(text, &path("version", file)?)
        .map_err(yaml_err(file))?
        .ok_or_else(|| ChartError::NoChartVersion {
            file: file.to_string(),
        })?;
    let next = bump_chart_version(&current, bump).ok_or_else(|| ChartError::BadChartVersion {
        file: file.to_string(),
        version: current.clone(),
    })?;
    set_value(text, file, "version", &next, changes)
}

/// `0.1.13` → `0.1.14` (patch). Pre-release and build parts are dropped on a
/// bump; a `v` prefix is kept.
pub fn bump_chart_version(current: &str, bump: ChartBump) -> Option<String> {
    let (prefix, rest) = match current.strip_prefix('v') {
        Some(r) => ("v", r),
        None => ("", current),
    };
    let v = Version::parse(rest).ok()?;
    let next = match bump {
        ChartBump::Major => Version::new(v.major + 1, 0, 0),
        ChartBump::Minor => Version::new(v.major, v.minor + 1, 0),
        ChartBump::Patch if v.pre.is_empty() => Version::new(v.major, v.minor, v.patch + 1),
        // 1.2.0-rc.1 → 1.2.0: the release of that pre-release.
        ChartBump::Patch => Version::new(v.major, v.minor, v.patch),
        ChartBump::None => return Some(current.to_string()),
    };
    Some(format!("{prefix}{next}"))
}

/// Which image repositories count as a service's: `<registry>/<service>`
/// for every configured registry (Docker Hub names with and without
/// `docker.io/`) and service.
#[derive(Debug, Clone)]
pub struct ImageMatcher {
    /// (prefix as written in an image reference, registry as configured)
    prefixes: Vec<(String, String)>,
    /// None: any name in a configured registry is a service (`chart bump`
    /// without a configuration).
    services: Option<Vec<ServiceImage>>,
    /// Tag shapes with a `service` group, made from the tag templates that
    /// use `{service}`: they tell which service a tag of a repository that
    /// several services share is.
    tag_shapes: Vec<Regex>,
}

/// A service, its image name and its repository under each registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceImage {
    pub name: String,
    pub image: String,
    pub repository: String,
}

impl ServiceImage {
    /// A service whose image and repository are its name.
    pub fn named(name: &str) -> ServiceImage {
        ServiceImage {
            name: name.to_string(),
            image: name.to_string(),
            repository: name.to_string(),
        }
    }
}

/// What an image repository is, for the deploy edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageClass {
    /// `<registry>/<repository>` of a configured registry and service.
    Service(String),
    /// In a configured registry, but not a configured service.
    NotAService,
    /// The repository of several services (`images.repository` without
    /// `{service}`), with a tag that names none of them.
    Shared(String),
    /// Named like a service, in a registry that is not configured.
    Elsewhere(String),
    /// Anything else (`redis`, `bitnami/redis`).
    Other,
}

impl ImageMatcher {
    /// From registries (`ghcr.io/openimsdk`, `docker.io/openim`) × services
    /// (each its own repository). Docker Hub names match with and without
    /// `docker.io/`.
    pub fn new(registries: &[String], services: &[String]) -> ImageMatcher {
        let list: Vec<ServiceImage> = services.iter().map(|s| ServiceImage::named(s)).collect();
        ImageMatcher::with_images(registries, list, &[])
    }

    /// Services with their image names and repositories; `tag_templates`
    /// (every image tag template of the configuration) tell the services of
    /// a shared repository apart.
    pub fn with_images(
        registries: &[String],
        services: Vec<ServiceImage>,
        tag_templates: &[String],
    ) -> ImageMatcher {
        let mut m = ImageMatcher::any_service(registries);
        let mut images: Vec<&str> = services.iter().map(|s| s.image.as_str()).collect();
        images.sort_by_key(|i| std::cmp::Reverse(i.len()));
        let alternation = images
            .iter()
            .map(|i| regex::escape(i))
            .collect::<Vec<_>>()
            .join("|");
        let placeholder = Regex::new(r"\{([a-z0-9]+)\}").expect("static regex");
        for t in tag_templates.iter().filter(|t| t.contains("{service}")) {
            let mut pattern = String::from("^");
            let mut last = 0;
            let mut service_seen = false;
            for c in placeholder.captures_iter(t) {
                let m0 = c.get(0).expect("whole match");
                pattern.push_str(&regex::escape(&t[last..m0.start()]));
                pattern.push_str(match &c[1] {
                    "service" if !service_seen => {
                        service_seen = true;
                        "(?P<service>__ALT__)"
                    }
                    "service" => "(?:__ALT__)",
                    "sha7" => "[0-9a-f]{7}",
                    "sha" => "[0-9a-f]{40}",
                    "date" => r"\d{8}",
                    "n" | "major" | "minor" | "patch" => r"\d+",
                    "version" => r"\d+\.\d+\.\d+",
                    _ => "[A-Za-z0-9._-]+?",
                });
                last = m0.end();
            }
            pattern.push_str(&regex::escape(&t[last..]));
            pattern.push('$');
            if let Ok(re) = Regex::new(&pattern.replace("__ALT__", &alternation)) {
                m.tag_shapes.push(re);
            }
        }
        m.services = Some(services);
        m
    }

    /// Every name in these registries counts as a service.
    pub fn any_service(registries: &[String]) -> ImageMatcher {
        let mut prefixes = Vec::new();
        for r in registries {
            let r = r.trim_end_matches('/').to_string();
            prefixes.push((r.clone(), r.clone()));
            if let Some(short) = r.strip_prefix("docker.io/") {
                prefixes.push((short.to_string(), r.clone()));
            } else if !r.contains('.') && !r.contains(':') && r != "localhost" {
                // `openim` means docker.io/openim
                prefixes.push((format!("docker.io/{r}"), r.clone()));
            }
        }
        ImageMatcher {
            prefixes,
            services: None,
            tag_shapes: Vec::new(),
        }
    }

    /// The registries as configured, for messages.
    pub fn registries(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for (_, r) in &self.prefixes {
            if !out.contains(&r.as_str()) {
                out.push(r);
            }
        }
        out
    }

    fn find(&self, name: &str) -> Option<&ServiceImage> {
        self.services
            .as_ref()?
            .iter()
            .find(|s| s.name == name || s.image == name)
    }

    /// Whether `name` is a service, by its name or its image name.
    pub fn is_service(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// The service called `name` or whose image name is `name`.
    pub fn service_named(&self, name: &str) -> Option<String> {
        self.find(name).map(|s| s.name.clone())
    }

    /// The image name of a service (what `{service}` stands for).
    pub fn image_of(&self, service: &str) -> String {
        self.find(service)
            .map_or_else(|| service.to_string(), |s| s.image.clone())
    }

    /// The repository of a service under each registry.
    pub fn repository_of(&self, service: &str) -> String {
        self.find(service)
            .map_or_else(|| service.to_string(), |s| s.repository.clone())
    }

    /// A stage's tag for `service`: `{service}` filled in.
    pub fn tag_for(&self, tag: &str, service: &str) -> String {
        crate::tag::template::for_service(tag, &self.image_of(service))
    }

    pub fn classify(&self, repository: &str) -> ImageClass {
        self.classify_ref(repository, None)
    }

    /// What `repository` (with `tag`, when known) is: a repository several
    /// services share is told apart by its tag.
    pub fn classify_ref(&self, repository: &str, tag: Option<&str>) -> ImageClass {
        for (prefix, _) in &self.prefixes {
            let Some(rest) = repository
                .strip_prefix(prefix.as_str())
                .and_then(|r| r.strip_prefix('/'))
            else {
                continue;
            };
            if rest.is_empty() {
                continue;
            }
            let Some(list) = &self.services else {
                if rest.contains('/') {
                    continue;
                }
                return ImageClass::Service(rest.to_string());
            };
            let owners: Vec<&ServiceImage> = list.iter().filter(|s| s.repository == rest).collect();
            match owners.as_slice() {
                [one] => return ImageClass::Service(one.name.clone()),
                [] if rest.contains('/') => continue,
                [] => return ImageClass::NotAService,
                several => {
                    let by_tag = tag.and_then(|t| {
                        self.tag_shapes
                            .iter()
                            .find_map(|re| re.captures(t))
                            .and_then(|c| {
                                let image = c.name("service")?.as_str();
                                several.iter().find(|s| s.image == image)
                            })
                    });
                    return match by_tag {
                        Some(s) => ImageClass::Service(s.name.clone()),
                        None => ImageClass::Shared(rest.to_string()),
                    };
                }
            }
        }
        match repository.rsplit_once('/') {
            Some((_, name)) if !repository.contains("://") => match self.service_named(name) {
                Some(s) => ImageClass::Elsewhere(s),
                None => ImageClass::Other,
            },
            _ => ImageClass::Other,
        }
    }

    pub fn service_of(&self, repository: &str) -> Option<String> {
        match self.classify(repository) {
            ImageClass::Service(s) => Some(s),
            _ => None,
        }
    }
}

/// A rewritten image reference in a manifest or .env file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RefChange {
    pub file: String,
    pub line: usize,
    pub service: String,
    pub old: String,
    pub new: String,
}

fn image_ref_re() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        // repository[:tag][@digest]
        Regex::new(r"(?P<repo>[a-z0-9][a-z0-9._/:-]*?[a-z0-9])(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9._-]{0,127}))?(?P<digest>@sha256:[0-9a-f]{64})?$")
            .expect("static regex")
    })
}

/// What to rewrite and what with: one target per call.
pub struct RefTarget<'a> {
    pub file: &'a str,
    pub matcher: &'a ImageMatcher,
    pub tag: &'a str,
    pub digest_of: &'a dyn Fn(&str) -> Option<String>,
    /// `.env` only: a variable holding only a repository → the variable
    /// beside it holding its tag (`AD_IMAGE` → `AD_TAG`).
    pub env_tags: &'a std::collections::BTreeMap<String, String>,
}

/// The result of rewriting a manifest or `.env` file.
#[derive(Debug, Clone, Default)]
pub struct RefScan {
    pub text: String,
    /// References that changed.
    pub changes: Vec<RefChange>,
    /// Lines that reference a service image (changed or already up to date).
    pub matched: usize,
    /// (line, repository, service): a service's name in a registry that is
    /// not configured; left as it is.
    pub elsewhere: Vec<(usize, String, String)>,
    /// Repositories in a configured registry that are not services.
    pub not_services: Vec<String>,
    /// `.env` lines holding only a service's repository, left as they are
    /// since no tag variable is configured for them: (line, variable, repository).
    pub repository_only: Vec<(usize, String, String)>,
    /// What stops the edit of this file (a configured tag variable that is
    /// missing, two values for one variable).
    pub errors: Vec<String>,
    /// (line, reference): a repository several services share, with a tag
    /// that tells none of them; left as it is.
    pub shared: Vec<(usize, String)>,
}

/// Kubernetes manifests (and compose files): `image: repo:tag` lines whose
/// repository is a known service get the new tag; everything else stays.
pub fn rewrite_manifest(text: &str, target: &RefTarget) -> RefScan {
    static LINE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let line_re = LINE.get_or_init(|| {
        // A block key (`image: x`, `- image: x`) or a key of a flow mapping
        // (`- {name: api, image: x}`).
        Regex::new(r#"(?:^\s*(?:-\s+)?|[{,]\s*)image:\s*["']?(?P<val>[^"'\s#,}]+)"#)
            .expect("static regex")
    });
    rewrite_refs(text, line_re, target)
}

/// Compose `.env` files: `KEY=repo:tag` lines. A line holding only a
/// repository (`AD_IMAGE=ghcr.io/org/ad`, used as `${AD_IMAGE}:${AD_TAG}`)
/// never gets a tag appended: the tag variable configured for it
/// (`target.env_tags`) gets the tag, or the line is reported.
pub fn rewrite_env(text: &str, target: &RefTarget) -> RefScan {
    static LINE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let line_re = LINE.get_or_init(|| {
        Regex::new(
            r#"^\s*(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*["']?(?P<val>[^"'\s#]*)"#,
        )
        .expect("static regex")
    });
    // 1. Variables holding only a service's repository: which tag variable
    // gets which value.
    let mut tag_vars: Vec<(String, String, String, String)> = Vec::new(); // (tag var, service, repo, repo var)
    let mut scan = RefScan::default();
    for (i, line) in text.lines().enumerate() {
        let Some(c) = line_re.captures(line) else {
            continue;
        };
        let (key, val) = (&c["key"], &c["val"]);
        if val.is_empty() || val.contains(':') || val.contains('@') {
            continue;
        }
        let service = match target.matcher.classify(val) {
            ImageClass::Service(s) => s,
            _ => continue,
        };
        match target.env_tags.get(key) {
            Some(tag_var) => {
                tag_vars.push((tag_var.clone(), service, val.to_string(), key.to_string()))
            }
            None => scan
                .repository_only
                .push((i + 1, key.to_string(), val.to_string())),
        }
    }
    // 2. The `repo:tag` lines, as in manifests; repository-only ones are
    // left (the regex of a reference would read them as untagged).
    let only: std::collections::BTreeSet<String> = tag_vars
        .iter()
        .map(|t| t.3.clone())
        .chain(scan.repository_only.iter().map(|r| r.1.clone()))
        .collect();
    let mut rest = rewrite_refs_filtered(text, line_re, target, &|line| {
        line_re
            .captures(line)
            .is_some_and(|c| only.contains(&c["key"]))
    });
    rest.repository_only = scan.repository_only;
    // 3. The tag variables.
    let mut values: std::collections::BTreeMap<String, (String, String)> = Default::default();
    for (tag_var, service, _, _) in &tag_vars {
        let tag = target.matcher.tag_for(target.tag, service);
        let value = match (target.digest_of)(service) {
            Some(d) => format!("{tag}@{d}"),
            None => tag,
        };
        match values.get(tag_var) {
            Some((other, v)) if *v != value => rest.errors.push(format!(
                "{tag_var} is the tag variable of both {other} and {service}, which get different \
                 values ({v}, {value}); one variable cannot hold both: give each its own"
            )),
            _ => {
                values.insert(tag_var.clone(), (service.clone(), value));
            }
        }
    }
    // The tag variables' lines and values as they are.
    let mut current: std::collections::BTreeMap<String, (usize, String)> = Default::default();
    for (i, line) in rest.text.lines().enumerate() {
        if let Some(c) = line_re.captures(line) {
            if values.contains_key(&c["key"]) && !current.contains_key(&c["key"]) {
                current.insert(c["key"].to_string(), (i + 1, c["val"].to_string()));
            }
        }
    }
    for (tag_var, service, repo, repo_var) in &tag_vars {
        let Some((line, old)) = current.get(tag_var) else {
            rest.errors.push(format!(
                "{repo_var} holds only the repository {repo} and deploy.env_tags names {tag_var} \
                 as its tag, but there is no {tag_var}= line: add it, or fix deploy.env_tags"
            ));
            continue;
        };
        rest.matched += 1;
        let (_, value) = &values[tag_var];
        if old != value {
            rest.changes.push(RefChange {
                file: target.file.to_string(),
                line: *line,
                service: service.clone(),
                old: format!("{repo}:{old}"),
                new: format!("{repo}:{value}"),
            });
        }
    }
    rest.text = rewrite_lines(&rest.text, |n, line| {
        let c = line_re.captures(line)?;
        let (at, _) = current.get(&c["key"])?;
        if *at != n {
            return None;
        }
        let (_, value) = values.get(&c["key"])?;
        let val = c.name("val")?;
        (val.as_str() != value.as_str())
            .then(|| format!("{}{value}{}", &line[..val.start()], &line[val.end()..]))
    });
    rest
}

/// Replace the `val` group of every matching line that names a service.
fn rewrite_refs(text: &str, line_re: &Regex, target: &RefTarget) -> RefScan {
    rewrite_refs_filtered(text, line_re, target, &|_| false)
}

/// As [`rewrite_refs`], lines for which `skip` holds left alone.
fn rewrite_refs_filtered(
    text: &str,
    line_re: &Regex,
    target: &RefTarget,
    skip: &dyn Fn(&str) -> bool,
) -> RefScan {
    let mut scan = RefScan::default();
    scan.text = rewrite_lines(text, |n, line| {
        if skip(line) {
            return None;
        }
        let val = line_re.captures(line)?.name("val")?;
        let caps = image_ref_re().captures(val.as_str())?;
        let repo = caps.name("repo")?.as_str();
        let old_tag = caps.name("tag").map(|t| t.as_str());
        let service = match target.matcher.classify_ref(repo, old_tag) {
            ImageClass::Service(s) => s,
            ImageClass::Elsewhere(s) => {
                scan.elsewhere.push((n, repo.to_string(), s));
                return None;
            }
            ImageClass::NotAService => {
                if !scan.not_services.iter().any(|r| r == repo) {
                    scan.not_services.push(repo.to_string());
                }
                return None;
            }
            ImageClass::Shared(_) => {
                scan.shared.push((n, val.as_str().to_string()));
                return None;
            }
            ImageClass::Other => return None,
        };
        scan.matched += 1;
        let tag = target.matcher.tag_for(target.tag, &service);
        let new = match (target.digest_of)(&service) {
            Some(d) => format!("{repo}:{tag}@{d}"),
            None => format!("{repo}:{tag}"),
        };
        if val.as_str() == new {
            return None;
        }
        scan.changes.push(RefChange {
            file: target.file.to_string(),
            line: n,
            service,
            old: val.as_str().to_string(),
            new: new.clone(),
        });
        Some(format!(
            "{}{new}{}",
            &line[..val.start()],
            &line[val.end()..]
        ))
    });
    scan
}

/// Apply `f` to each line (without its ending); endings are kept as they
/// were (LF, CRLF, none at the end).
fn rewrite_lines(text: &str, mut f: impl FnMut(usize, &str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let (body, ending) = if let Some(b) = raw.strip_suffix("\r\n") {
            (b, "\r\n")
        } else if let Some(b) = raw.strip_suffix('\n') {
            (b, "\n")
        } else {
            (raw, "")
        };
        match f(i + 1, body) {
            Some(new) => {
                out.push_str(&new);
                out.push_str(ending);
            }
            None => out.push_str(raw),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher() -> ImageMatcher {
        ImageMatcher::new(
            &["docker.io/openim".into(), "ghcr.io/openimsdk".into()],
            &["openim-api".into(), "openim-push".into()],
        )
    }

    #[test]
    fn chart_versions_bump() {
        assert_eq!(
            bump_chart_version("0.1.13", ChartBump::Patch).unwrap(),
            "0.1.14"
        );
        assert_eq!(
            bump_chart_version("0.1.13", ChartBump::Minor).unwrap(),
            "0.2.0"
        );
        assert_eq!(
            bump_chart_version("v1.2.3", ChartBump::Major).unwrap(),
            "v2.0.0"
        );
        assert_eq!(
            bump_chart_version("1.2.0-rc.1", ChartBump::Patch).unwrap(),
            "1.2.0"
        );
        assert!(bump_chart_version("latest", ChartBump::Patch).is_none());
    }

    #[test]
    fn manifests_only_touch_known_services() {
        let text = "apiVersion: apps/v1\r\nkind: Deployment\r\nspec:\r\n  containers:\r\n    - name: api\r\n      image: openim/openim-api:v3.8.3 # pinned\r\n    - name: redis\r\n      image: redis:7\r\n    - image: \"ghcr.io/openimsdk/openim-push:v3.8.3\"\r\n      name: push";
        let m = matcher();
        let target = RefTarget {
            file: "k8s.yaml",
            matcher: &m,
            tag: "v3.8.4",
            digest_of: &|_| None,
            env_tags: &Default::default(),
        };
        let scan = rewrite_manifest(text, &target);
        let out = scan.text;
        assert_eq!(
            out,
            text.replace("openim-api:v3.8.3", "openim-api:v3.8.4")
                .replace("openim-push:v3.8.3", "openim-push:v3.8.4")
        );
        assert_eq!(scan.changes.len(), 2);
        assert_eq!(scan.matched, 2);
        assert_eq!(scan.changes[0].line, 6);
        assert_eq!(scan.changes[0].service, "openim-api");
        // Rerun: nothing to change, but the images still match.
        let again = rewrite_manifest(&out, &target);
        assert_eq!(again.text, out);
        assert!(again.changes.is_empty());
        assert_eq!(again.matched, 2);

        // Flow mappings too, the rest of the line as it was.
        let flow = "containers:\n  - {name: api, image: ghcr.io/openimsdk/openim-api:v3.8.3}\n  - {image: 'redis:7', name: r}\n";
        let scan = rewrite_manifest(flow, &target);
        assert_eq!(
            scan.text,
            flow.replace("openim-api:v3.8.3", "openim-api:v3.8.4")
        );
        assert_eq!(scan.changes.len(), 1);

        // A service in a registry that is not configured: left, and reported.
        let other = "image: registry.example.com/team/openim-api:v1\nimage: bitnami/redis:7\n";
        let scan = rewrite_manifest(other, &target);
        assert_eq!(scan.text, other);
        assert_eq!(scan.matched, 0);
        assert_eq!(
            scan.elsewhere,
            [(
                1,
                "registry.example.com/team/openim-api".to_string(),
                "openim-api".to_string()
            )]
        );
    }

    #[test]
    fn images_are_classified_by_registry_and_service() {
        let m = matcher();
        assert_eq!(
            m.classify("openim/openim-api"),
            ImageClass::Service("openim-api".into())
        );
        assert_eq!(
            m.classify("docker.io/openim/openim-push"),
            ImageClass::Service("openim-push".into())
        );
        assert_eq!(
            m.classify("ghcr.io/openimsdk/openim-api"),
            ImageClass::Service("openim-api".into())
        );
        assert_eq!(
            m.classify("ghcr.io/openimsdk/openim-gateway-proxy"),
            ImageClass::NotAService
        );
        assert_eq!(
            m.classify("ghcr.io/openimsdk/sub/openim-api"),
            ImageClass::Elsewhere("openim-api".into())
        );
        assert_eq!(
            m.classify("registry.example.com/someone/openim-push"),
            ImageClass::Elsewhere("openim-push".into())
        );
        assert_eq!(m.classify("bitnami/redis"), ImageClass::Other);
        assert_eq!(m.classify("openim-api"), ImageClass::Other);
        let any = ImageMatcher::any_service(&["ghcr.io/openimsdk/".into()]);
        assert_eq!(
            any.classify("ghcr.io/openimsdk/whatever"),
            ImageClass::Service("whatever".into())
        );
        assert_eq!(any.classify("bitnami/redis"), ImageClass::Other);
        assert_eq!(any.registries(), ["ghcr.io/openimsdk"]);
    }

    #[test]
    fn env_files_and_digests() {
        let text = "# images\nOPENIM_SERVER_IMAGE=openim/openim-server:v3.8.3\nOPENIM_API_IMAGE=openim/openim-api:v3.8.3\nMONGO_IMAGE=mongo:7\n";
        let d = "sha256:".to_string() + &"a".repeat(64);
        let m = matcher();
        let digest_of = |s: &str| (s == "openim-api").then(|| d.clone());
        let target = RefTarget {
            file: ".env",
            matcher: &m,
            tag: "v3.8.4",
            digest_of: &digest_of,
            env_tags: &Default::default(),
        };
        let scan = rewrite_env(text, &target);
        let out = &scan.text;
        assert!(out.contains(&format!("OPENIM_API_IMAGE=openim/openim-api:v3.8.4@{d}\n")));
        assert!(out.contains("OPENIM_SERVER_IMAGE=openim/openim-server:v3.8.3\n"));
        assert!(out.contains("MONGO_IMAGE=mongo:7\n"));
        assert_eq!(scan.changes.len(), 1);
        // The digest is part of what is compared: a re-run is a no-op.
        let again = rewrite_env(out, &target);
        assert!(again.changes.is_empty() && again.matched == 1);
    }

    #[test]
    fn image_keys_that_cannot_hold_a_tag_are_refused() {
        let values = "replicaCount: 1\nimage:\n  repository: ghcr.io/openimsdk/openim-api\n  tag: \"\"\nautoscaling:\n  enabled: false\n  cpu: 0.5\nhosts: [a]\nplain:\n  repository: x\n";
        let refused = |key: &str| {
            let mut changes = Vec::new();
            let e = set_image(
                values,
                "values.yaml",
                key,
                "v1",
                None,
                DigestPin::None,
                &mut changes,
            )
            .unwrap_err()
            .to_string();
            assert!(changes.is_empty());
            e
        };
        let e = refused("image.Tag");
        assert!(
            e.contains("there is no `Tag` but there is `tag` (line 4)")
                && e.contains("case-sensitive")
                && e.contains("did you mean `image.tag`?"),
            "{e}"
        );
        let e = refused("image.tga");
        assert!(
            e.contains("did you mean `image.tag`?") && !e.contains("case"),
            "{e}"
        );
        let e = refused("image_.TAG");
        assert!(e.contains("not found"), "{e}");
        let e = refused("replicaCount");
        assert!(e.contains("holds the integer `1`, not an image tag"), "{e}");
        assert!(refused("autoscaling.enabled").contains("the boolean `false`"));
        assert!(refused("autoscaling.cpu").contains("the number `0.5`"));
        assert!(refused("hosts").contains("a list"));
        let e = refused("image");
        assert!(
            e.contains("a mapping") && e.contains("did you mean `image.tag`?"),
            "{e}"
        );
        // What may be written: a string, an empty value, a new `tag` (or
        // `digest`) under a block mapping with no look-alike.
        let mut changes = Vec::new();
        let out = set_image(
            values,
            "v",
            "image.tag",
            "v1",
            None,
            DigestPin::None,
            &mut changes,
        )
        .unwrap();
        assert!(out.contains("  tag: \"v1\"\n"));
        let d = format!("sha256:{}", "a".repeat(64));
        let out = set_image(
            values,
            "v",
            "plain.tag",
            "v1",
            Some(&d),
            DigestPin::Key,
            &mut changes,
        )
        .unwrap();
        assert!(
            out.ends_with(&format!(
                "plain:\n  repository: x\n  tag: v1\n  digest: {d}\n"
            )),
            "{out}"
        );
    }

    #[test]
    fn look_alike_keys() {
        assert!(similar_keys("Tag", "tag"));
        assert!(similar_keys("image_tag", "imageTag"));
        assert!(similar_keys("tga", "tag"));
        assert!(similar_keys("digest", "digests"));
        assert!(!similar_keys("tag", "digest"));
        assert!(!similar_keys("tag", "repository"));
        assert!(!similar_keys("ab", "ac"));
    }
}

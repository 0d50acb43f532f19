//! What the types cannot say: the checks a loaded configuration must pass
//! (templates, regexes, names, paths, registries), each naming its key.

use super::*;

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

pub(super) fn validate(config: &Config) -> Result<(), Invalid> {
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

//! `openim-release init`: write openim-release.yaml from what a repository
//! already has — a compose build file, Dockerfiles with per-service build
//! args, Helm charts, compose `.env` files — and the registries its own
//! workflows and compose files push to (else the origin's, on GitHub).

use crate::cli::{GlobalArgs, InitArgs};
use crate::clients::git::Repo;
use crate::config;
use crate::error::{self, BadInput};
use crate::oci::reference::{is_valid_component, RegistryPrefix};
use anyhow::{Context, Result};
use regex::Regex;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod root_image;

pub fn run(global: &GlobalArgs, args: &InitArgs) -> Result<i32> {
    let dir = match &global.directory {
        Some(d) => d.clone(),
        None => std::env::current_dir().context("reading the current directory")?,
    };
    let repo = Repo::discover(&dir)?;
    let root = repo.root().to_path_buf();
    // --config names the file to write (as it names the file to read for
    // every other command).
    let target = match &global.config {
        Some(p) if p.is_absolute() => p.clone(),
        Some(p) => root.join(p),
        None => root.join(config::FILE_NAMES[0]),
    };
    if target.exists() && !args.force && !args.print {
        return Err(BadInput(format!(
            "{} exists; pass --force to overwrite it or --print to only show the proposal",
            target.display()
        ))
        .into());
    }
    let text = propose(&root, repo.remote_url("origin").as_deref())?;
    // What we write must load.
    config::parse(&text).map_err(|(line, e)| {
        anyhow::anyhow!(
            "the proposed configuration does not load ({}{e}); this is a bug in \
             openim-release, please report it with `init --print` of this repository",
            line.map(|l| format!("line {l}: ")).unwrap_or_default()
        )
    })?;
    if args.print {
        print!("{text}");
    } else {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&target, &text).with_context(|| format!("writing {}", target.display()))?;
        if !global.quiet {
            let config_flag = if global.config.is_some() {
                format!(" --config {}", target.display())
            } else {
                String::new()
            };
            crate::say!(
                "wrote {}; review it, then try `openim-release{config_flag} plan --stage rc`",
                target.display()
            );
        }
        print!("{text}");
    }
    Ok(error::OK)
}

/// Files below `root` (depth-limited, skipping VCS and vendored trees).
fn walk(root: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if path.is_dir() {
            if depth > 0
                && !matches!(
                    name.as_str(),
                    ".git" | "node_modules" | "vendor" | "target" | "_output"
                )
            {
                walk(&path, depth - 1, out);
            }
        } else {
            out.push(path);
        }
    }
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn is_yaml(name: &str) -> bool {
    name.ends_with(".yml") || name.ends_with(".yaml")
}

fn is_compose(name: &str) -> bool {
    (name.starts_with("docker-compose") || name.starts_with("compose")) && is_yaml(name)
}

/// The GitHub owner of the origin, lowercased (`openimsdk`), if it is on GitHub.
fn github_owner(origin: Option<&str>) -> Option<String> {
    let url = crate::build::labels::source_url(origin?)?;
    let path = url.strip_prefix("https://github.com/")?;
    let owner = path.split('/').next()?.to_ascii_lowercase();
    is_valid_component(&owner).then_some(owner)
}

/// A registry prefix found in the repository, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    prefix: String,
    file: String,
}

/// What registries the repository's workflows and compose files use:
/// registry lists (`IMAGE_REGISTRIES`, `registries:`), image lists
/// (`images:` of docker/metadata-action) and `image:` values naming one of
/// `services`. `${{ github.repository_owner }}` is the origin's owner when
/// known; other expressions cannot be resolved and are returned apart, as
/// they are written.
fn registries_used(
    root: &Path,
    files: &[PathBuf],
    owner: Option<&str>,
    services: &[String],
) -> (Vec<Found>, Vec<Found>) {
    let mut found: Vec<Found> = Vec::new();
    let mut unresolved: Vec<Found> = Vec::new();
    let workflows = root.join(".github").join("workflows");
    for path in files {
        let name = file_name(path);
        let workflow = path.parent() == Some(workflows.as_path()) && is_yaml(&name);
        if !workflow && !is_compose(&name) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let file = rel(root, path);
        let (f, u) = scan(&text, owner, services);
        for prefix in f {
            if !found.iter().any(|x| x.prefix == prefix) {
                found.push(Found {
                    prefix,
                    file: file.clone(),
                });
            }
        }
        for prefix in u {
            if !unresolved.iter().any(|x| x.prefix == prefix) {
                unresolved.push(Found {
                    prefix,
                    file: file.clone(),
                });
            }
        }
    }
    // `ghcr.io/${{ github.repository_owner }}` beside a `ghcr.io/openimsdk`
    // found elsewhere adds nothing.
    let host = |p: &str| {
        p.split_once('/')
            .map(|(h, _)| h.to_string())
            .filter(|h| h.contains('.') || h.contains(':'))
    };
    unresolved.retain(|u| {
        let h = host(&u.prefix);
        !found
            .iter()
            .any(|f| f.prefix == u.prefix || (h.is_some() && host(&f.prefix) == h))
    });
    (found, unresolved)
}

/// How a value names images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A registry with its namespace (`ghcr.io/openimsdk`).
    Registry,
    /// A list of image repositories that the workflow pushes.
    Images,
    /// One image (`image:` of a compose service): counts when it is one of
    /// ours.
    Image,
}

fn kind_of(key: &str) -> Option<Kind> {
    let k = key.to_ascii_lowercase();
    if k.contains("registr") {
        Some(Kind::Registry)
    } else if k == "images" || k.ends_with("_images") || k.ends_with("-images") {
        Some(Kind::Images)
    } else if k == "image" {
        Some(Kind::Image)
    } else {
        None
    }
}

/// The registry prefixes one YAML text names, and the expressions it
/// names them with that cannot be resolved here.
fn scan(text: &str, owner: Option<&str>, services: &[String]) -> (Vec<String>, Vec<String>) {
    static KEY: OnceLock<Regex> = OnceLock::new();
    static OWNER: OnceLock<Regex> = OnceLock::new();
    static TOKEN: OnceLock<Regex> = OnceLock::new();
    let key_re = KEY.get_or_init(|| {
        Regex::new(r#"^(?:-\s+)?["']?([A-Za-z0-9_.-]+)["']?\s*:(?:\s|$)"#).expect("static regex")
    });
    let owner_re = OWNER.get_or_init(|| {
        Regex::new(r"\$\{\{\s*github\.repository_owner\s*\}\}").expect("static regex")
    });
    // A reference as written in YAML or shell: up to a quote, space, comma,
    // bracket or the end.
    let token_re = TOKEN.get_or_init(|| {
        Regex::new(r#"(?:\$\{\{[^}]*\}\}|\$\{[^}]*\}|[^\s"',()\[\]{}=])+"#).expect("static regex")
    });
    let mut found = Vec::new();
    let mut unresolved = Vec::new();
    // The keys enclosing the current line: (indent, key).
    let mut keys: Vec<(usize, String)> = Vec::new();
    for raw in text.lines() {
        let content = raw.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let indent = raw.len() - content.len();
        let item = content.starts_with("- ");
        while keys
            .last()
            .is_some_and(|(i, _)| *i > indent || (*i == indent && !item))
        {
            keys.pop();
        }
        let mut value = content;
        let line_key = key_re.captures(content).map(|c| {
            let m = c.get(0).expect("whole match");
            value = &content[m.end()..];
            c[1].to_string()
        });
        let kind = match &line_key {
            Some(k) => kind_of(k),
            None => keys.last().and_then(|(_, k)| kind_of(k)),
        };
        if let Some(k) = line_key {
            keys.push((indent, k));
        }
        let Some(kind) = kind else { continue };
        let value = strip_comment(value.trim_start_matches("- "));
        let value = match owner {
            Some(o) => owner_re.replace_all(value, o).into_owned(),
            None => value.to_string(),
        };
        for m in token_re.find_iter(&value) {
            let token = m.as_str().trim_matches(['|', '>', '-', '.'].as_slice());
            if token.is_empty() {
                continue;
            }
            match prefix_of(token, kind, services) {
                Some(Ok(p)) if !found.contains(&p) => found.push(p),
                Some(Err(expr)) if !unresolved.contains(&expr) => unresolved.push(expr),
                _ => {}
            }
        }
    }
    (found, unresolved)
}

/// ` value  # comment` → `value`.
fn strip_comment(v: &str) -> &str {
    match v.find(" #") {
        Some(i) => v[..i].trim(),
        None => v.trim(),
    }
}

/// The registry prefix a token names: Ok(prefix), Err(the token as written
/// when an expression hides the registry or its namespace), or None (not an
/// image of ours).
fn prefix_of(token: &str, kind: Kind, services: &[String]) -> Option<Result<String, String>> {
    // Workflow expressions and shell/compose variables: a registry whose
    // namespace we cannot know here.
    if token.contains("${") || token.contains("$(") {
        if kind == Kind::Image {
            return None;
        }
        // An image list names repositories: `ghcr.io/openimsdk/${{
        // env.IMAGE_NAME }}` is the namespace `ghcr.io/openimsdk` with a
        // variable image name.
        let namespace = match kind {
            Kind::Images => token.rsplit_once('/').map_or(token, |(n, _)| n),
            _ => token,
        };
        if !namespace.contains("${") {
            return valid(namespace).map(Ok);
        }
        return Some(Err(namespace.to_string()));
    }
    if token.starts_with('$') {
        return None;
    }
    // Without a tag or digest.
    let no_digest = token.split('@').next().unwrap_or(token);
    let repo = match no_digest.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => r,
        _ => no_digest,
    };
    let first = repo.split('/').next().unwrap_or_default();
    let has_host = first.contains('.') || first.contains(':') || first == "localhost";
    match kind {
        Kind::Registry => {
            // A bare host (`registry: ghcr.io` of docker/login-action) says
            // nothing about the namespace.
            if !repo.contains('/') {
                return None;
            }
            valid(repo).map(Ok)
        }
        Kind::Images | Kind::Image => {
            let (namespace, name) = repo.rsplit_once('/')?;
            if kind == Kind::Image && !services.iter().any(|s| s == name) {
                return None;
            }
            // `ghcr.io/x` has no namespace to push services under.
            if has_host && !namespace.contains('/') {
                return None;
            }
            valid(namespace).map(Ok)
        }
    }
}

/// `prefix` as the config writes it, when it is a valid registry prefix.
fn valid(prefix: &str) -> Option<String> {
    let p = RegistryPrefix::parse(prefix).ok()?;
    if p.namespace.is_empty() {
        return None;
    }
    let first = prefix.split('/').next().unwrap_or_default();
    let has_host = first.contains('.') || first.contains(':') || first == "localhost";
    Some(if has_host {
        p.to_string()
    } else {
        format!("docker.io/{}", p.namespace)
    })
}

/// `.env` files whose `*_IMAGE=` lines name images (a compose deployment):
/// with `services`, only those naming one of them (a source repository's
/// own `.env` of third-party images is no deploy target).
fn env_files(root: &Path, files: &[PathBuf], services: &[String]) -> Vec<String> {
    files
        .iter()
        .filter(|p| file_name(p) == ".env")
        .filter_map(|p| {
            let text = std::fs::read_to_string(p).ok()?;
            let named = text.lines().any(|l| {
                let Some((k, v)) = l.trim().split_once('=') else {
                    return false;
                };
                let v = v.split_whitespace().next().unwrap_or_default();
                let name = v.split(['@', ':']).next().unwrap_or_default();
                let name = name.rsplit('/').next().unwrap_or_default();
                k.ends_with("_IMAGE")
                    && !k.starts_with('#')
                    && v.contains(':')
                    && (services.is_empty() || services.iter().any(|s| s == name))
            });
            named.then(|| rel(root, p))
        })
        .collect()
}

/// The proposed configuration text.
/// Images the repository's workflows build from its root Dockerfile that
/// are not services of the compose file (OpenIM's all-in-one images), with
/// the workflow that builds each.
fn root_images(root: &Path, files: &[PathBuf], known: &[String]) -> Vec<(String, String)> {
    if !root.join("Dockerfile").is_file() {
        return Vec::new();
    }
    let workflows = root.join(".github").join("workflows");
    let mut out: Vec<(String, String)> = Vec::new();
    for path in files {
        if path.parent() != Some(workflows.as_path()) || !is_yaml(&file_name(path)) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        if let Some(name) = root_image::built_from_root(&text) {
            if !known.contains(&name) && !out.iter().any(|(n, _)| *n == name) {
                out.push((name, rel(root, path)));
            }
        }
    }
    out
}

pub fn propose(root: &Path, origin: Option<&str>) -> Result<String> {
    let mut files = Vec::new();
    walk(root, 5, &mut files);
    // A compose build file; else a compose file whose services build.
    let compose = files
        .iter()
        .find(|p| {
            let name = file_name(p);
            is_compose(&name) && name.contains("build")
        })
        .or_else(|| {
            files.iter().find(|p| {
                is_compose(&file_name(p))
                    && std::fs::read_to_string(p).is_ok_and(|t| {
                        serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&t)
                            .ok()
                            .and_then(|d| {
                                d.get("services")?
                                    .as_mapping()
                                    .map(|m| m.values().any(|s| s.get("build").is_some()))
                            })
                            .unwrap_or(false)
                    })
            })
        });
    let dockerfiles: Vec<&PathBuf> = files
        .iter()
        .filter(|p| file_name(p).starts_with("Dockerfile"))
        .collect();
    let all_charts: Vec<String> = files
        .iter()
        .filter(|p| file_name(p) == "Chart.yaml")
        .filter_map(|p| p.parent().map(|d| rel(root, d)))
        // Subcharts come with their umbrella.
        .filter(|d| !d.contains("/charts/"))
        .collect();
    // Charts in a `charts/` directory are the project's; others (an
    // `infra/` of third-party charts) only when there are none.
    let ours: Vec<String> = all_charts
        .iter()
        .filter(|d| d.starts_with("charts/"))
        .cloned()
        .collect();
    let charts = if ours.is_empty() { all_charts } else { ours };
    let owner = github_owner(origin);

    // The compose services as Compose reads them (with .env), and what their
    // `image:` fields say about the naming scheme.
    let read_compose = compose.and_then(|c| {
        let opts = crate::build::compose::Options {
            files: vec![PathBuf::from(rel(root, c))],
            env_files: None,
            profiles: None,
        };
        crate::build::compose::load(root, &opts, &|k| std::env::var(k).ok()).ok()
    });
    let naming = read_compose
        .as_ref()
        .map(|p| naming_scheme(&p.services))
        .unwrap_or_default();
    let compose_services: Vec<String> = compose
        .and_then(|c| {
            let text = std::fs::read_to_string(c).ok()?;
            let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).ok()?;
            Some(
                doc.get("services")?
                    .as_mapping()?
                    .keys()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect(),
            )
        })
        .unwrap_or_default();
    let cmd_services = if compose.is_none() {
        services_from_cmd(root, &dockerfiles)
    } else {
        Vec::new()
    };
    let service_names: Vec<String> = compose_services
        .iter()
        .cloned()
        .chain(cmd_services.iter().map(|(n, _, _)| n.clone()))
        .collect();
    let (mut found, unresolved) = registries_used(root, &files, owner.as_deref(), &service_names);
    if let (Some(ns), Some(c)) = (&naming.namespace, compose) {
        if !found.iter().any(|f| &f.prefix == ns) {
            found.push(Found {
                prefix: ns.clone(),
                file: rel(root, c),
            });
        }
    }
    let builds = compose.is_some() || !dockerfiles.is_empty();
    let envs = if builds && service_names.is_empty() {
        Vec::new()
    } else {
        env_files(root, &files, &service_names)
    };

    let mut y = String::from(
        "# openim-release configuration, proposed by `openim-release init`.\n\
         # Docs: docs/config.md; schema: docs/openim-release.schema.json\n\n",
    );
    if builds {
        y.push_str("images:\n");
        if found.is_empty() && owner.is_none() {
            y.push_str(
                "  registries: []         # CHANGE-ME: where images go, e.g. [ghcr.io/<org>]; no workflow or compose file here names one\n",
            );
        } else {
            y.push_str(
                "  registries:            # each image is pushed as <registry>/<service>:<tag>\n",
            );
        }
        if let (true, Some(o)) = (found.is_empty(), &owner) {
            y.push_str(&format!(
                "    # the origin is on GitHub; no workflow or compose file here names a registry\n    - ghcr.io/{o}\n"
            ));
        }
        let mut sources: Vec<&str> = Vec::new();
        for f in &found {
            if !sources.contains(&f.file.as_str()) {
                sources.push(&f.file);
            }
        }
        if !sources.is_empty() {
            y.push_str(&format!("    # found in {}\n", sources.join(", ")));
        }
        for f in &found {
            y.push_str(&format!("    - {}\n", f.prefix));
        }
        for u in &unresolved {
            y.push_str(&format!(
                "    # also {} in {}: add it, written out, if images go there too\n",
                u.prefix, u.file
            ));
        }
        if let Some(repo) = &naming.repository {
            y.push_str(&format!(
                "  # the compose file's images share one repository, the service in the tag\n  repository: {repo}\n"
            ));
        }
        if !naming.image_names.is_empty() {
            y.push_str(
                "  image_names:           # compose services whose image is named otherwise\n",
            );
            for (service, image) in &naming.image_names {
                y.push_str(&format!("    {service}: {image}\n"));
            }
        }
        y.push_str("  platforms: [linux/amd64, linux/arm64]\n");
        match compose {
            Some(c) => {
                y.push_str(&format!("  # services, build args and contexts come from the compose build file\n  compose: {}\n", rel(root, c)));
                let root_images = root_images(root, &files, &compose_services);
                if !root_images.is_empty() {
                    y.push_str("  services:\n");
                }
                for (name, workflow) in &root_images {
                    y.push_str(&format!(
                        "    # built from the root Dockerfile by {workflow}\n    - {{ name: {name}, dockerfile: Dockerfile, context: . }}\n"
                    ));
                }
            }
            None => {
                y.push_str("  services:\n");
                if cmd_services.is_empty() {
                    y.push_str("    - name: change-me           # one entry per image\n      dockerfile: Dockerfile\n      context: .\n");
                }
                for (name, dockerfile, cmd) in &cmd_services {
                    y.push_str(&format!(
                        "    - name: {name}\n      dockerfile: {dockerfile}\n      context: .\n"
                    ));
                    if let Some(cmd) = cmd {
                        y.push_str(&format!(
                            "      args: {{ CMD_PATH: {cmd}, BINARY_NAME: {name} }}\n"
                        ));
                    }
                }
            }
        }
    } else {
        y.push_str(
            "# images:                # nothing to build here: no Dockerfile or compose build file\n\
             #   registries: [ghcr.io/YOUR-ORG]\n\
             #   services:\n\
             #     - { name: YOUR-SERVICE, dockerfile: Dockerfile, context: . }\n",
        );
    }
    y.push('\n');
    if naming.repository.is_some() {
        y.push_str(&service_tags(naming.service_first));
        y.push('\n');
    }
    let url = origin
        .map(|o| crate::secret::scrub(o, &[]))
        .unwrap_or_else(|| "https://github.com/YOUR-ORG/helm-charts.git   # CHANGE-ME".into());
    if charts.is_empty() && envs.is_empty() {
        y.push_str("# deploy:                # the deploy repository (see docs/gitops.md)\n#   url: https://github.com/YOUR-ORG/helm-charts.git\n#   base: main\n#   charts:\n#     - path: charts/YOUR-CHART\n");
    } else {
        if !builds {
            y.push_str(
                "# This looks like a deploy repository: this `deploy:` section belongs in the\n\
                 # openim-release.yaml of the repository whose images it deploys.\n",
            );
        }
        y.push_str("deploy:                  # the deploy files found here; point url at the deploy repository\n");
        y.push_str(&format!("  url: {url}\n  base: main\n  mode: pr\n"));
        if !charts.is_empty() {
            y.push_str("  charts:\n");
            for c in &charts {
                y.push_str(&format!("    - path: {c}\n"));
            }
        }
        if !envs.is_empty() {
            y.push_str("  env_files:             # their KEY=image:tag lines naming a service of `images:` change\n");
            for file in &envs {
                y.push_str(&format!("    - {file}\n"));
            }
        }
    }
    Ok(y)
}

/// What the compose file's `image:` fields show about image names.
#[derive(Debug, Default, PartialEq, Eq)]
struct Naming {
    /// The registry and namespace in front of the images (`ghcr.io/example`).
    namespace: Option<String>,
    /// One repository for every service (`demo`), the service in the tag.
    repository: Option<String>,
    /// The service first in the tag (`ad-1.0`), not last (`1.0-ad`).
    service_first: bool,
    /// Services whose image name is not their name.
    image_names: Vec<(String, String)>,
}

/// Read the naming scheme from the compose services' images: a repository
/// shared by several services with the service at one end of the tag
/// (`ghcr.io/example/demo:latest-ad`), and services whose image (or tag
/// part) is named otherwise (`frontendTests` → `frontend-tests`).
fn naming_scheme(services: &[crate::build::compose::ComposeService]) -> Naming {
    let mut out = Naming::default();
    let split = |image: &str| -> Option<(String, String)> {
        let no_digest = image.split('@').next()?;
        match no_digest.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => Some((r.to_string(), t.to_string())),
            _ => Some((no_digest.to_string(), String::new())),
        }
    };
    let images: Vec<(&str, String, String)> = services
        .iter()
        .filter_map(|s| {
            let (r, t) = split(s.image.as_deref()?)?;
            Some((s.name.as_str(), r, t))
        })
        .collect();
    let mut repos: Vec<&String> = images.iter().map(|(_, r, _)| r).collect();
    repos.sort();
    repos.dedup();
    let shared = images.len() >= 2 && repos.len() == 1;
    if shared {
        let repo = repos[0];
        // The service's part of each tag, at its end or at its start.
        let part = |name: &str, tag: &str, first: bool| -> Option<String> {
            let kebab = kebab(name);
            for cand in [name.to_string(), kebab] {
                let hit = if first {
                    tag.starts_with(&format!("{cand}-"))
                } else {
                    tag.ends_with(&format!("-{cand}"))
                };
                if hit && is_valid_component(&cand) {
                    return Some(cand);
                }
            }
            None
        };
        for first in [false, true] {
            let parts: Option<Vec<(String, String)>> = images
                .iter()
                .map(|(n, _, t)| part(n, t, first).map(|p| (n.to_string(), p)))
                .collect();
            if let Some(parts) = parts {
                let (ns, name) = match repo.rsplit_once('/') {
                    Some((ns, name)) => (Some(ns.to_string()), name.to_string()),
                    None => (None, repo.clone()),
                };
                out.namespace = ns.and_then(|n| valid(&n));
                out.repository = is_valid_component(&name).then_some(name);
                out.service_first = first;
                out.image_names = parts.into_iter().filter(|(n, p)| n != p).collect();
                if out.repository.is_some() {
                    return out;
                }
            }
        }
        return Naming::default();
    }
    for (name, repo, _) in &images {
        let last = repo.rsplit('/').next().unwrap_or(repo);
        if last != *name && is_valid_component(last) && !is_valid_component(name) {
            out.image_names.push((name.to_string(), last.to_string()));
        }
    }
    out
}

/// `frontendTests` → `frontend-tests`.
fn kebab(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() && !out.is_empty() {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out.replace('_', "-")
}

/// Tag templates with the service in every one, for one repository shared
/// by every service: the default templates with `-{service}` after them
/// (or `{service}-` in front).
fn service_tags(first: bool) -> String {
    let d = config::TagsConfig::default();
    let with = |list: &[String]| -> String {
        list.iter()
            .map(|t| {
                if first {
                    format!("\"{{service}}-{t}\"")
                } else {
                    format!("\"{t}-{{service}}\"")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "tags:                    # one repository for every service: each tag names the service\n  dev:\n    tags: [{}]\n  rc:\n    tags: [{}]\n  release:\n    tags: [{}]\n    aliases: [{}]\n  patch:\n    tags: [{}]\n    aliases: [{}]\n  nightly:\n    tags: [{}]\n",
        with(&d.dev.tags),
        with(&d.rc.tags),
        with(&d.release.tags),
        with(&d.release.aliases),
        with(&d.patch.tags),
        with(&d.patch.aliases),
        with(&d.nightly.tags),
    )
}

/// `cmd/<name>/main.go` style services when a Dockerfile takes CMD_PATH or
/// BINARY_NAME args; else one service per Dockerfile directory.
fn services_from_cmd(
    root: &Path,
    dockerfiles: &[&PathBuf],
) -> Vec<(String, String, Option<String>)> {
    let Some(df) = dockerfiles.first() else {
        return Vec::new();
    };
    let text = std::fs::read_to_string(df).unwrap_or_default();
    let parametrized = text.contains("ARG CMD_PATH") || text.contains("ARG BINARY_NAME");
    let mut out = Vec::new();
    if parametrized {
        let mut mains = Vec::new();
        walk(&root.join("cmd"), 3, &mut mains);
        for m in mains.iter().filter(|p| file_name(p) == "main.go") {
            let Some(dir) = m.parent() else { continue };
            let name = file_name(dir).to_ascii_lowercase();
            if is_valid_component(&name) && dir != root.join("cmd") {
                out.push((name, rel(root, df), Some(rel(root, dir))));
            }
        }
    }
    if out.is_empty() {
        for d in dockerfiles {
            let dir = d.parent().unwrap_or(root);
            let name = if dir == root {
                root.file_name()
                    .map(|n| n.to_string_lossy().to_ascii_lowercase())
                    .unwrap_or_else(|| "app".into())
            } else {
                file_name(dir).to_ascii_lowercase()
            };
            if is_valid_component(&name) && !out.iter().any(|(n, _, _)| n == &name) {
                out.push((name, rel(root, d), None));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str, owner: Option<&str>) -> (Vec<String>, Vec<String>) {
        scan(text, owner, &["openim-api".to_string()])
    }

    #[test]
    fn a_registry_list_with_expressions() {
        let text = "    env:\n      IMAGE_REGISTRIES: |\n        ${{ secrets.DOCKER_USERNAME }}\n        ghcr.io/${{ github.repository_owner }}\n        registry.example.test/openimsdk\n      PUSH: \"true\"\n";
        assert_eq!(
            names(text, Some("openimsdk")),
            (
                vec![
                    "ghcr.io/openimsdk".to_string(),
                    "registry.example.test/openimsdk".to_string()
                ],
                vec!["${{ secrets.DOCKER_USERNAME }}".to_string()]
            )
        );
        let (found, unresolved) = names(text, None);
        assert_eq!(found, ["registry.example.test/openimsdk"]);
        assert!(unresolved.contains(&"ghcr.io/${{ github.repository_owner }}".to_string()));
    }

    #[test]
    fn an_image_list_names_repositories() {
        let text = "      - uses: docker/metadata-action@v6\n        with:\n          images: |\n            openim/openim-chat\n            ghcr.io/openimsdk/openim-chat\n          tags: |\n            type=ref,event=tag\n";
        assert_eq!(
            names(text, None).0,
            ["docker.io/openim", "ghcr.io/openimsdk"]
        );
    }

    #[test]
    fn images_of_others_and_actions_are_not_registries() {
        let text = "jobs:\n  build-images:\n    steps:\n      - uses: docker/login-action@v4\n        with:\n          registry: ghcr.io\n    services:\n      mongo:\n        image: bitnami/mongodb:7\n  api:\n    image: openim-api:test\n    build: .\n  other:\n    image: ghcr.io/openimsdk/openim-api:v3.8.3\n";
        assert_eq!(names(text, None).0, ["ghcr.io/openimsdk"]);
    }
}

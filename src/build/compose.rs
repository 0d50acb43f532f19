//! Compose files as Docker Compose reads them, for what `build` needs: the
//! services with a `build:` section, their context, Dockerfile, build args,
//! target and platforms.
//!
//! What Compose does and this reader does too: variable interpolation in
//! every value (`$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?message}`, `${VAR?message}`, `${VAR:+replacement}`,
//! `${VAR+replacement}`, `$$`, nested defaults) from the environment and the
//! project's `.env` (or the configured env files), the environment winning;
//! an unset variable is a warning and a blank string, as in Compose;
//! several files merged in order (`-f a -f b`), `extends` (in the file or
//! from another one), top-level `include`, `profiles`, YAML merge keys and
//! the `!reset` / `!override` tags, `args` as a mapping or a list (`KEY` alone
//! taken from the environment, left out when unset), `build.platforms` and
//! the service's `platform`.
//!
//! What would build something else than Compose builds is refused with the
//! service and the key: `dockerfile_inline`, `tags`, `labels`,
//! `additional_contexts`, `secrets`, `ssh`, `network`, … and a remote
//! context. Cache settings (`cache_from`, `cache_to`, `no_cache`, `pull`)
//! change how, not what, and are ignored. Pure, but for reading files.

use crate::build::plan::normalize;
use serde_yaml_ng::{Mapping, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What to read: the files (`-f`, in order), the env files (`--env-file`;
/// default `<project directory>/.env` when it exists) and the active
/// profiles (`--profile`; default `COMPOSE_PROFILES`). Paths are relative
/// to the repository root.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub files: Vec<PathBuf>,
    pub env_files: Option<Vec<PathBuf>>,
    pub profiles: Option<Vec<String>>,
}

/// One service to build, as Compose would build it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ComposeService {
    pub name: String,
    /// The service's `image:` (interpolated), if any.
    pub image: Option<String>,
    /// Relative to the repository root.
    pub context: PathBuf,
    /// Relative to the repository root.
    pub dockerfile: PathBuf,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    /// `build.platforms`, else the service's `platform`; empty: the default.
    pub platforms: Vec<String>,
}

/// The services, and what deserves a word.
#[derive(Debug, Clone, Default)]
pub struct Project {
    pub services: Vec<ComposeService>,
    /// Unset variables, as Compose warns about them.
    pub warnings: Vec<String>,
    /// Services with a build that are not built, and why (inactive profiles).
    pub notes: Vec<String>,
}

/// Keys of `build:` that this reader passes on to the build.
const BUILD_SUPPORTED: &[&str] = &["context", "dockerfile", "args", "target", "platforms"];
/// Keys of `build:` about the cache: how, not what, is built.
const BUILD_IGNORED: &[&str] = &["cache_from", "cache_to", "no_cache", "pull"];

/// The environment interpolation reads: the process's, then the env files'.
struct Env<'a> {
    os: &'a dyn Fn(&str) -> Option<String>,
    file: BTreeMap<String, String>,
}

impl Env<'_> {
    fn get(&self, name: &str) -> Option<String> {
        (self.os)(name).or_else(|| self.file.get(name).cloned())
    }
}

/// The state of one load: warnings, and what is being read (cycles).
struct Loader<'a> {
    root: &'a Path,
    warnings: Vec<String>,
    warned: BTreeSet<String>,
    stack: Vec<String>,
}

/// Read the compose project of `opts` in the repository at `root`.
pub fn load(
    root: &Path,
    opts: &Options,
    os: &dyn Fn(&str) -> Option<String>,
) -> Result<Project, String> {
    let first = opts
        .files
        .first()
        .ok_or("images.compose: no compose file given")?;
    let project_dir = parent(first);
    let env_files = match &opts.env_files {
        Some(list) => list.clone(),
        None => {
            let default = project_dir.join(".env");
            if root.join(&default).is_file() {
                vec![default]
            } else {
                Vec::new()
            }
        }
    };
    let env = Env {
        os,
        file: read_env_files(root, &env_files, os, opts.env_files.is_some())?,
    };
    let mut loader = Loader {
        root,
        warnings: Vec::new(),
        warned: BTreeSet::new(),
        stack: Vec::new(),
    };
    let mut services = Mapping::new();
    for file in &opts.files {
        let loaded = loader.file(file, &project_dir, &env)?;
        merge_services(&mut services, loaded);
    }
    default_contexts(&mut services, &project_dir);
    let profiles: Vec<String> = match &opts.profiles {
        Some(p) => p.clone(),
        None => env
            .get("COMPOSE_PROFILES")
            .map(|p| {
                p.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
    };
    let mut project = Project {
        warnings: loader.warnings,
        ..Project::default()
    };
    for (name, svc) in &services {
        let name = name.as_str().unwrap_or_default().to_string();
        let Some(build) = svc.get("build") else {
            continue; // services without a build (databases…) are not ours
        };
        let svc_profiles = strings(svc.get("profiles"))
            .map_err(|e| format!("compose service {name}: `profiles`: {e}"))?;
        if !svc_profiles.is_empty()
            && !profiles
                .iter()
                .any(|p| p == "*" || svc_profiles.contains(p))
        {
            project.notes.push(format!(
                "compose service {name} is not built: its profiles ({}) are not active \
                 (images.compose_profiles, or COMPOSE_PROFILES, as `docker compose --profile`)",
                svc_profiles.join(", ")
            ));
            continue;
        }
        project.services.push(
            build_spec(&name, svc, build).map_err(|e| format!("compose service {name}: {e}"))?,
        );
    }
    Ok(project)
}

fn parent(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn display(p: &Path) -> String {
    let s = p.to_string_lossy().replace('\\', "/");
    if s.is_empty() {
        ".".into()
    } else {
        s
    }
}

impl Loader<'_> {
    /// One compose file: parsed, interpolated, its includes and extends
    /// resolved, its contexts made relative to the repository root (paths
    /// in it are relative to `base`). Returns its `services`.
    fn file(&mut self, path: &Path, base: &Path, env: &Env) -> Result<Mapping, String> {
        let path = normalize(path);
        let label = display(&path);
        if self.stack.contains(&label) {
            return Err(format!(
                "{label}: read again while it is being read ({}): an include or extends loop",
                self.stack.join(" → ")
            ));
        }
        let text = std::fs::read_to_string(self.root.join(&path))
            .map_err(|e| format!("cannot read {label}: {e}"))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let mut doc: Value = if text.trim().is_empty() {
            Value::Mapping(Mapping::new())
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| {
                let line = e.location().map(|l| l.line());
                match crate::output::text::yaml_syntax_hint(&e.to_string(), text, line) {
                    Some(hint) => format!("{label}: {e}; {hint}"),
                    None => format!("{label}: {e}"),
                }
            })?
        };
        doc.apply_merge()
            .map_err(|e| format!("{label}: merge key: {e}"))?;
        let Value::Mapping(mut doc) = doc else {
            return Err(format!("{label}: a compose file is a mapping"));
        };
        // Interpolation: every value, never a key, before anything else.
        for (key, value) in doc.iter_mut() {
            let k = key.as_str().unwrap_or_default().to_string();
            self.interpolate_value(value, &label, &k, env)?;
        }
        let mut services = match doc.remove("services") {
            None | Some(Value::Null) => Mapping::new(),
            Some(Value::Mapping(m)) => m,
            Some(_) => return Err(format!("{label}: `services` must be a mapping")),
        };
        let dir = parent(&path);
        for (name, svc) in services.iter_mut() {
            let name = name.as_str().unwrap_or_default().to_string();
            normalize_service(svc, base, env)
                .map_err(|e| format!("{label}: service {name}: {e}"))?;
        }
        self.stack.push(label.clone());
        let result = (|| {
            self.extends(&mut services, &label, &dir, env)?;
            if let Some(include) = doc.remove("include") {
                self.include(&mut services, include, &label, &dir, env)?;
            }
            Ok(services)
        })();
        self.stack.pop();
        result
    }

    fn interpolate_value(
        &mut self,
        v: &mut Value,
        file: &str,
        at: &str,
        env: &Env,
    ) -> Result<(), String> {
        match v {
            Value::String(s) => {
                let mut unset = Vec::new();
                *s = interpolate(s, &|k| env.get(k), &mut unset)
                    .map_err(|e| format!("{file}: {at}: {e}"))?;
                for name in unset {
                    if self.warned.insert(name.clone()) {
                        self.warnings.push(format!(
                            "{file}: the \"{name}\" variable is not set ({at}); a blank string \
                             is used, as docker compose does: set it, or give a default \
                             (${{{name}:-…}})"
                        ));
                    }
                }
            }
            Value::Sequence(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.interpolate_value(item, file, &format!("{at}[{i}]"), env)?;
                }
            }
            Value::Mapping(m) => {
                for (k, item) in m.iter_mut() {
                    let k = match k {
                        Value::String(s) => s.clone(),
                        other => serde_yaml_ng::to_string(other)
                            .unwrap_or_default()
                            .trim()
                            .to_string(),
                    };
                    self.interpolate_value(item, file, &format!("{at}.{k}"), env)?;
                }
            }
            Value::Tagged(t) => self.interpolate_value(&mut t.value, file, at, env)?,
            _ => {}
        }
        Ok(())
    }

    /// `extends`: the base service (in this file or in `file:`, whose paths
    /// are relative to its own directory) under this one.
    fn extends(
        &mut self,
        services: &mut Mapping,
        label: &str,
        dir: &Path,
        env: &Env,
    ) -> Result<(), String> {
        let names: Vec<String> = services
            .keys()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect();
        let mut done: BTreeMap<String, Value> = BTreeMap::new();
        for name in &names {
            let resolved =
                self.resolve_extends(services, name, label, dir, env, &mut Vec::new())?;
            done.insert(name.clone(), resolved);
        }
        for (name, svc) in done {
            services.insert(Value::String(name), svc);
        }
        Ok(())
    }

    fn resolve_extends(
        &mut self,
        services: &Mapping,
        name: &str,
        label: &str,
        dir: &Path,
        env: &Env,
        chain: &mut Vec<String>,
    ) -> Result<Value, String> {
        let mut svc = services
            .get(name)
            .cloned()
            .ok_or_else(|| format!("{label}: extends: no service `{name}` in it"))?;
        let Some(ext) = svc.as_mapping_mut().and_then(|m| m.remove("extends")) else {
            return Ok(svc);
        };
        if chain.iter().any(|c| c == name) {
            chain.push(name.to_string());
            return Err(format!(
                "{label}: service {name}: `extends` goes round in a circle ({})",
                chain.join(" → ")
            ));
        }
        chain.push(name.to_string());
        let (base_name, file) = match &ext {
            Value::String(s) => (s.clone(), None),
            Value::Mapping(m) => (
                m.get("service")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{label}: service {name}: `extends` needs `service`"))?
                    .to_string(),
                m.get("file").and_then(Value::as_str).map(str::to_string),
            ),
            _ => {
                return Err(format!(
                    "{label}: service {name}: `extends` is a service name or a mapping"
                ))
            }
        };
        let base = match file {
            None => self.resolve_extends(services, &base_name, label, dir, env, chain)?,
            Some(f) => {
                let path = normalize(&dir.join(&f));
                let other_dir = parent(&path);
                let mut other = self.file(&path, &other_dir, env)?;
                default_contexts(&mut other, &other_dir);
                other.get(base_name.as_str()).cloned().ok_or_else(|| {
                    format!(
                        "{label}: service {name} extends `{base_name}`, which is not a service \
                         of {}",
                        display(&path)
                    )
                })?
            }
        };
        chain.pop();
        let mut merged = base;
        merge_service(&mut merged, svc);
        Ok(merged)
    }

    /// Top-level `include`: each item a path, a list of paths, or a mapping
    /// with `path`, `project_directory`, `env_file`. Its services join this
    /// file's; a name defined twice is an error, as in Compose.
    fn include(
        &mut self,
        services: &mut Mapping,
        include: Value,
        label: &str,
        dir: &Path,
        env: &Env,
    ) -> Result<(), String> {
        let Value::Sequence(items) = include else {
            return Err(format!("{label}: `include` must be a list"));
        };
        for item in items {
            let (paths, project_dir, env_files) = match &item {
                Value::String(s) => (vec![s.clone()], None, None),
                Value::Mapping(m) => {
                    let paths = match m.get("path") {
                        Some(Value::String(s)) => vec![s.clone()],
                        Some(v @ Value::Sequence(_)) => strings(Some(v))
                            .map_err(|e| format!("{label}: include: `path`: {e}"))?,
                        _ => return Err(format!("{label}: include: an entry needs `path`")),
                    };
                    for key in m.keys().filter_map(Value::as_str) {
                        if !["path", "project_directory", "env_file"].contains(&key) {
                            return Err(format!("{label}: include: unknown key `{key}`"));
                        }
                    }
                    let project_dir = m
                        .get("project_directory")
                        .and_then(Value::as_str)
                        .map(|p| normalize(&dir.join(p)));
                    let env_files = match m.get("env_file") {
                        None => None,
                        v => Some(
                            strings(v).map_err(|e| format!("{label}: include: `env_file`: {e}"))?,
                        ),
                    };
                    (paths, project_dir, env_files)
                }
                _ => return Err(format!("{label}: include: an entry is a path or a mapping")),
            };
            let paths: Vec<PathBuf> = paths.iter().map(|p| normalize(&dir.join(p))).collect();
            let Some(first) = paths.first() else {
                return Err(format!("{label}: include: an empty `path`"));
            };
            let inc_dir = project_dir.unwrap_or_else(|| parent(first));
            let env_files: Vec<PathBuf> = match env_files {
                Some(list) => list.iter().map(|p| normalize(&dir.join(p))).collect(),
                None => {
                    let d = inc_dir.join(".env");
                    if self.root.join(&d).is_file() {
                        vec![d]
                    } else {
                        Vec::new()
                    }
                }
            };
            let inc_env = Env {
                os: env.os,
                file: read_env_files(self.root, &env_files, env.os, true)?,
            };
            let mut included = Mapping::new();
            for p in &paths {
                let loaded = self.file(p, &inc_dir, &inc_env)?;
                merge_services(&mut included, loaded);
            }
            default_contexts(&mut included, &inc_dir);
            for (name, svc) in included {
                if services.contains_key(&name) {
                    return Err(format!(
                        "{label}: service {} is defined here and in the included {}: Compose \
                         refuses such a conflict",
                        name.as_str().unwrap_or_default(),
                        display(first)
                    ));
                }
                services.insert(name, svc);
            }
        }
        Ok(())
    }
}

/// Before merging: `build: path` as `build: {context: path}`, `args` as a
/// mapping (`KEY` alone with the environment's value, or none), and a
/// context made relative to the repository root.
fn normalize_service(svc: &mut Value, base: &Path, env: &Env) -> Result<(), String> {
    let Some(m) = svc.as_mapping_mut() else {
        if svc.is_null() {
            *svc = Value::Mapping(Mapping::new());
            return Ok(());
        }
        return Err("a service is a mapping".into());
    };
    let Some(build) = m.get_mut("build") else {
        return Ok(());
    };
    if let Value::String(ctx) = build {
        let mut b = Mapping::new();
        b.insert("context".into(), Value::String(ctx.clone()));
        *build = Value::Mapping(b);
    }
    let Value::Mapping(b) = untagged_mut(build) else {
        return Err("`build` must be a path or a mapping".into());
    };
    if let Some(args) = b.get_mut("args") {
        let inner = untagged_mut(args);
        if let Value::Sequence(items) = inner {
            let mut map = Mapping::new();
            for item in items.iter() {
                let s = scalar(item).ok_or("build args list items must be KEY=VALUE strings")?;
                match s.split_once('=') {
                    Some((k, v)) => map.insert(k.into(), Value::String(v.into())),
                    None => map.insert(s.as_str().into(), Value::Null),
                };
            }
            *inner = Value::Mapping(map);
        }
        if let Value::Mapping(map) = untagged_mut(args) {
            for (k, v) in map.iter_mut() {
                if v.is_null() {
                    if let Some(value) = k.as_str().and_then(|k| env.get(k)) {
                        *v = Value::String(value);
                    }
                }
            }
        }
    }
    if let Some(Value::String(ctx)) = b.get_mut("context").map(untagged_mut) {
        if ctx.trim().is_empty() {
            // An unset variable (`build: ${API_CONTEXT}`) would build the
            // compose file's directory: never a guess.
            return Err(
                "the build context is empty (an unset variable?); set it, or write the path".into(),
            );
        }
        if !is_remote(ctx) {
            let p = Path::new(ctx.as_str());
            let joined = if p.is_absolute() {
                return Err(format!(
                    "build context `{ctx}` is an absolute path; write it relative to the compose \
                     file, inside the repository"
                ));
            } else {
                normalize(&base.join(p))
            };
            *ctx = display(&joined);
        }
    }
    Ok(())
}

fn untagged_mut(v: &mut Value) -> &mut Value {
    let tagged =
        matches!(v, Value::Tagged(t) if tag_is(&t.tag, "override") || tag_is(&t.tag, "reset"));
    if tagged {
        if let Value::Tagged(t) = v {
            return &mut t.value;
        }
    }
    v
}

fn tag_is(tag: &serde_yaml_ng::value::Tag, name: &str) -> bool {
    tag == &serde_yaml_ng::value::Tag::new(name)
}

/// A git URL or other remote context.
fn is_remote(ctx: &str) -> bool {
    ctx.contains("://") || ctx.starts_with("git@") || ctx.contains(".git#") || ctx.ends_with(".git")
}

/// A service with a build and no context builds `dir`.
fn default_contexts(services: &mut Mapping, dir: &Path) {
    for (_, svc) in services.iter_mut() {
        if let Some(Value::Mapping(b)) = svc.get_mut("build").map(untagged_mut) {
            if !b.contains_key("context") {
                b.insert("context".into(), Value::String(display(dir)));
            }
        }
    }
}

/// Services of a later file over those of an earlier one.
fn merge_services(into: &mut Mapping, later: Mapping) {
    for (name, svc) in later {
        match into.get_mut(&name) {
            Some(existing) => merge_service(existing, svc),
            None => {
                let mut svc = svc;
                strip_tags(&mut svc);
                into.insert(name, svc);
            }
        }
    }
}

/// Compose's merge: mappings key by key, lists of build platforms and
/// profiles joined without repeats, anything else replaced; `!reset`
/// removes, `!override` replaces.
fn merge_service(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                if let Value::Tagged(t) = &v {
                    if tag_is(&t.tag, "reset") {
                        b.remove(&k);
                        continue;
                    }
                    if tag_is(&t.tag, "override") {
                        let mut inner = t.value.clone();
                        strip_tags(&mut inner);
                        b.insert(k, inner);
                        continue;
                    }
                }
                match b.get_mut(&k) {
                    Some(existing) => merge_value(existing, v),
                    None => {
                        let mut v = v;
                        strip_tags(&mut v);
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, mut o) => {
            strip_tags(&mut o);
            *b = o;
        }
    }
}

fn merge_value(base: &mut Value, over: Value) {
    match (&mut *base, over) {
        (Value::Mapping(_), o @ Value::Mapping(_)) => merge_service(base, o),
        (Value::Sequence(b), Value::Sequence(o)) => {
            for mut item in o {
                strip_tags(&mut item);
                if !b.contains(&item) {
                    b.push(item);
                }
            }
        }
        (b, mut o) => {
            strip_tags(&mut o);
            *b = o;
        }
    }
}

fn strip_tags(v: &mut Value) {
    match v {
        Value::Tagged(t) => {
            let mut inner = std::mem::take(&mut t.value);
            strip_tags(&mut inner);
            *v = inner;
        }
        Value::Sequence(items) => items.iter_mut().for_each(strip_tags),
        Value::Mapping(m) => m.iter_mut().for_each(|(_, x)| strip_tags(x)),
        _ => {}
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn strings(v: Option<&Value>) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|i| scalar(i).ok_or_else(|| "a list of strings".to_string()))
            .collect(),
        Some(_) => Err("a string or a list of strings".into()),
    }
}

/// The build of one merged service.
fn build_spec(name: &str, svc: &Value, build: &Value) -> Result<ComposeService, String> {
    let Value::Mapping(b) = build else {
        return Err("`build` must be a path or a mapping".into());
    };
    for key in b.keys() {
        let key = key.as_str().unwrap_or_default();
        if BUILD_SUPPORTED.contains(&key) || BUILD_IGNORED.contains(&key) || key.starts_with("x-") {
            continue;
        }
        let why = match key {
            "dockerfile_inline" => {
                "openim-release builds from a Dockerfile in the repository (its inputs digest \
                 and the build read it there): write it to a file and name it in \
                 `build.dockerfile`"
            }
            "tags" => {
                "openim-release names the images (<registry>/<service>:<tag> from \
                 openim-release.yaml) and would not push these: remove them, or add the \
                 registries to images.registries"
            }
            "labels" => "put image labels in images.labels of openim-release.yaml",
            "additional_contexts" | "secrets" | "ssh" => {
                "the build would not get them, and would build something else than Compose does"
            }
            "network" | "extra_hosts" | "shm_size" | "isolation" | "privileged" | "ulimits"
            | "entitlements" => "builds run with the engine's defaults, not this setting",
            "provenance" | "sbom" => "openim-release pushes no attestations",
            _ => "not a key of the compose build section this reader knows",
        };
        return Err(format!("`build.{key}` is not supported: {why}"));
    }
    let context = match b.get("context").and_then(scalar) {
        Some(c) if is_remote(&c) => {
            return Err(format!(
                "build context `{c}` is a remote (git) context, which is not supported: build \
                 from a directory of the repository"
            ))
        }
        Some(c) => PathBuf::from(c),
        None => PathBuf::from("."),
    };
    let dockerfile = match b.get("dockerfile") {
        None | Some(Value::Null) => context.join("Dockerfile"),
        Some(v) => {
            let d = scalar(v).ok_or("`build.dockerfile` must be a path")?;
            if Path::new(&d).is_absolute() {
                return Err(format!(
                    "`build.dockerfile` `{d}` is an absolute path; write it relative to the \
                     context"
                ));
            }
            context.join(d)
        }
    };
    let mut args = BTreeMap::new();
    match b.get("args") {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(m)) => {
            for (k, v) in m {
                let k = scalar(k).ok_or("build args keys must be strings")?;
                match v {
                    // `KEY` (or `KEY:`) that the environment does not set:
                    // not passed, the Dockerfile's default applies.
                    Value::Null => {}
                    v => {
                        let v =
                            scalar(v).ok_or_else(|| format!("build arg {k} must be a scalar"))?;
                        args.insert(k, v);
                    }
                }
            }
        }
        Some(_) => return Err("build args must be a mapping or a list".into()),
    }
    let target = match b.get("target") {
        None | Some(Value::Null) => None,
        Some(v) => Some(scalar(v).ok_or("`build.target` must be a string")?),
    }
    .filter(|t| !t.is_empty());
    let mut platforms = strings(b.get("platforms")).map_err(|e| format!("build.platforms: {e}"))?;
    let own = svc
        .get("platform")
        .and_then(scalar)
        .filter(|p| !p.is_empty());
    match own {
        Some(p) if platforms.is_empty() => platforms.push(p),
        Some(p) if !platforms.contains(&p) => {
            return Err(format!(
                "`platform: {p}` is not one of `build.platforms` ({}), which Compose refuses",
                platforms.join(", ")
            ))
        }
        _ => {}
    }
    for p in &platforms {
        crate::oci::Platform::parse(p).map_err(|e| format!("build.platforms: {e}"))?;
    }
    let image = svc.get("image").and_then(scalar).filter(|i| !i.is_empty());
    Ok(ComposeService {
        name: name.to_string(),
        image,
        context: normalize(&context),
        dockerfile: normalize(&dockerfile),
        args,
        target,
        platforms,
    })
}

/// The variables of env files, in order (a later file wins), each line
/// interpolated with the environment and the lines before it.
fn read_env_files(
    root: &Path,
    files: &[PathBuf],
    os: &dyn Fn(&str) -> Option<String>,
    required: bool,
) -> Result<BTreeMap<String, String>, String> {
    let mut vars = BTreeMap::new();
    for f in files {
        let label = display(f);
        let text = match std::fs::read_to_string(root.join(f)) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
            Err(e) => return Err(format!("env file {label}: cannot read it: {e}")),
        };
        parse_env(&text, &label, os, &mut vars)?;
    }
    Ok(vars)
}

/// One `.env` file as Compose reads it: `KEY=VALUE` lines (`export ` in
/// front allowed), `#` comments, `'single'` quotes taken as written,
/// `"double"` quotes with `\n`-style escapes, `${VAR}` interpolated (not in
/// single quotes), a ` #` after an unquoted value a comment; `KEY` alone
/// takes the environment's value.
pub fn parse_env(
    text: &str,
    label: &str,
    os: &dyn Fn(&str) -> Option<String>,
    vars: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let at = format!("{label}:{}", i + 1);
        let Some((key, value)) = line.split_once('=') else {
            let key = line.trim();
            if let Some(v) = os(key) {
                vars.insert(key.to_string(), v);
            }
            continue;
        };
        let key = key.trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
        {
            return Err(format!("{at}: `{key}` is not a variable name"));
        }
        let value = value.trim_start();
        let lookup = |k: &str| os(k).or_else(|| vars.get(k).cloned());
        let mut unset = Vec::new();
        let value = if let Some(rest) = value.strip_prefix('\'') {
            let end = rest
                .find('\'')
                .ok_or_else(|| format!("{at}: unclosed single quote"))?;
            rest[..end].to_string()
        } else if let Some(rest) = value.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = rest.chars();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        Some('r') => out.push('\r'),
                        Some(other) => out.push(other),
                        None => out.push('\\'),
                    },
                    c => out.push(c),
                }
            }
            if !closed {
                return Err(format!("{at}: unclosed double quote"));
            }
            interpolate(&out, &lookup, &mut unset).map_err(|e| format!("{at}: {e}"))?
        } else {
            let v = match value.find(" #").or_else(|| value.find("\t#")) {
                Some(i) => &value[..i],
                None => value,
            };
            interpolate(v.trim_end(), &lookup, &mut unset).map_err(|e| format!("{at}: {e}"))?
        };
        vars.insert(key.to_string(), value);
    }
    Ok(())
}

/// Compose variable interpolation. `unset` collects the variables used
/// without a value or a default (a blank string each, as Compose does).
pub fn interpolate(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = closing_brace(r).ok_or_else(|| {
                format!("invalid interpolation format in `{text}`: an unclosed `${{`")
            })?;
            out.push_str(&braced(&r[..end], text, env, unset)?);
            rest = &r[end + 1..];
        } else {
            let len = name_len(after);
            if len == 0 {
                return Err(format!(
                    "invalid interpolation format in `{text}`: a `$` that starts no variable; \
                     write `$$` for a `$`"
                ));
            }
            let name = &after[..len];
            match env(name) {
                Some(v) => out.push_str(&v),
                None => unset.push(name.to_string()),
            }
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn name_len(s: &str) -> usize {
    let mut n = 0;
    for (i, c) in s.char_indices() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        n = i + c.len_utf8();
    }
    n
}

/// The `}` closing a `${`, nested `${…}` skipped.
fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 2;
                continue;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn braced(
    inner: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, String> {
    let len = name_len(inner);
    let name = &inner[..len];
    if name.is_empty() {
        return Err(format!(
            "invalid interpolation format in `{text}`: `${{{inner}}}` names no variable"
        ));
    }
    let op = &inner[len..];
    let value = env(name);
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let sub = |s: &str, unset: &mut Vec<String>| interpolate(s, env, unset);
    if op.is_empty() {
        return Ok(match value {
            Some(v) => v,
            None => {
                unset.push(name.to_string());
                String::new()
            }
        });
    }
    let (kind, arg) = if let Some(a) = op.strip_prefix(":-") {
        (":-", a)
    } else if let Some(a) = op.strip_prefix(":?") {
        (":?", a)
    } else if let Some(a) = op.strip_prefix(":+") {
        (":+", a)
    } else if let Some(a) = op.strip_prefix('-') {
        ("-", a)
    } else if let Some(a) = op.strip_prefix('?') {
        ("?", a)
    } else if let Some(a) = op.strip_prefix('+') {
        ("+", a)
    } else {
        return Err(format!(
            "invalid interpolation format in `{text}`: `${{{inner}}}`"
        ));
    };
    Ok(match kind {
        ":-" if set_nonempty => value.unwrap_or_default(),
        ":-" => sub(arg, unset)?,
        "-" => match value {
            Some(v) => v,
            None => sub(arg, unset)?,
        },
        ":?" | "?" => {
            let ok = if kind == ":?" {
                set_nonempty
            } else {
                value.is_some()
            };
            if ok {
                value.unwrap_or_default()
            } else {
                let msg = sub(arg, unset)?;
                return Err(if msg.is_empty() {
                    format!("required variable {name} is missing a value")
                } else {
                    format!("required variable {name} is missing a value: {msg}")
                });
            }
        }
        ":+" if set_nonempty => sub(arg, unset)?,
        "+" if value.is_some() => sub(arg, unset)?,
        _ => String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "SET" => Some("yes".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn i(text: &str) -> (Result<String, String>, Vec<String>) {
        let mut unset = Vec::new();
        (interpolate(text, &env, &mut unset), unset)
    }

    #[test]
    fn interpolation_as_compose_does_it() {
        assert_eq!(i("${RELEASE:-false}").0.unwrap(), "false");
        assert_eq!(i("${SET:-false}").0.unwrap(), "yes");
        assert_eq!(i("${EMPTY:-d}").0.unwrap(), "d");
        assert_eq!(i("${EMPTY-d}").0.unwrap(), "");
        assert_eq!(i("${NOPE-d}").0.unwrap(), "d");
        assert_eq!(i("a-$SET-b").0.unwrap(), "a-yes-b");
        assert_eq!(i("$$HOME").0.unwrap(), "$HOME");
        assert_eq!(i("${NOPE:-${SET}}").0.unwrap(), "yes");
        assert_eq!(i("${NOPE:-${ALSO:-x}y}").0.unwrap(), "xy");
        assert_eq!(i("${SET:+on}").0.unwrap(), "on");
        assert_eq!(i("${EMPTY:+on}").0.unwrap(), "");
        assert_eq!(i("${EMPTY+on}").0.unwrap(), "on");
        assert_eq!(i("${NOPE+on}").0.unwrap(), "");
        let (v, unset) = i("x${NOPE}y$ALSO");
        assert_eq!(v.unwrap(), "xy");
        assert_eq!(unset, ["NOPE", "ALSO"]);
        assert_eq!(
            i("${NOPE:?set NOPE to the release}").0.unwrap_err(),
            "required variable NOPE is missing a value: set NOPE to the release"
        );
        assert_eq!(
            i("${EMPTY:?}").0.unwrap_err(),
            "required variable EMPTY is missing a value"
        );
        assert_eq!(i("${EMPTY?}").0.unwrap(), "");
        assert!(i("${OPEN").0.is_err());
        assert!(i("cost: 5$").0.is_err());
        assert!(i("${}").0.is_err());
        assert!(i("${SET%x}").0.is_err());
    }

    #[test]
    fn env_files_as_compose_reads_them() {
        let text = "# c\nexport A=1\nB = two words # comment\nC='${A} raw'\nD=\"x\\ny ${A}\"\nE=${A}${SET}\nSET\nNOPE\n";
        let mut vars = BTreeMap::new();
        parse_env(text, ".env", &env, &mut vars).unwrap();
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "${A} raw");
        assert_eq!(vars["D"], "x\ny 1");
        assert_eq!(vars["E"], "1yes");
        assert_eq!(vars["SET"], "yes");
        assert!(!vars.contains_key("NOPE"));
    }
}

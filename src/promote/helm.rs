//! A chart directory packaged as `helm package` does (a `.tgz` whose top
//! directory is the chart's name, `.helmignore` applied), and as Helm keeps
//! charts in OCI registries: a manifest whose config is the chart's
//! metadata (`application/vnd.cncf.helm.config.v1+json`) and whose one layer
//! is the `.tgz` (`application/vnd.cncf.helm.chart.content.v1.tar+gzip`), so
//! `helm pull oci://…` reads what `bundle import` pushes. The archive is
//! reproducible (sorted entries, owner 0, mtime 0), so the same chart gives
//! the same digest.

use crate::oci::{self, Descriptor, Encoded, Manifest};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

pub const MT_HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
pub const MT_HELM_CHART: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// A packaged chart.
#[derive(Debug, Clone)]
pub struct Packaged {
    pub name: String,
    pub version: String,
    pub app_version: Option<String>,
    /// The `.tgz`.
    pub archive: Vec<u8>,
    /// Chart.yaml as JSON: the OCI config.
    pub config: Vec<u8>,
}

impl Packaged {
    /// The tag Helm gives a chart version in a registry (`+` is no tag
    /// character: Helm writes `_`).
    pub fn tag(&self) -> String {
        self.version.replace('+', "_")
    }

    /// The OCI manifest Helm pushes for it.
    pub fn manifest(&self) -> Encoded {
        let mut annotations = BTreeMap::new();
        annotations.insert(
            "org.opencontainers.image.title".to_string(),
            self.name.clone(),
        );
        annotations.insert(
            "org.opencontainers.image.version".to_string(),
            self.version.clone(),
        );
        Encoded::of(
            oci::MT_OCI_MANIFEST,
            &Manifest {
                schema_version: 2,
                media_type: oci::MT_OCI_MANIFEST.to_string(),
                config: Descriptor::new(
                    MT_HELM_CONFIG,
                    oci::sha256_digest(&self.config),
                    self.config.len() as u64,
                ),
                layers: vec![Descriptor::new(
                    MT_HELM_CHART,
                    oci::sha256_digest(&self.archive),
                    self.archive.len() as u64,
                )],
                annotations,
            },
        )
    }

    /// `<name>-<version>.tgz`, as `helm package` names it.
    pub fn file_name(&self) -> String {
        format!("{}-{}.tgz", self.name, self.version)
    }
}

/// Package the chart in `dir`.
pub fn package(dir: &Path) -> Result<Packaged> {
    let chart_yaml = dir.join("Chart.yaml");
    let text = std::fs::read_to_string(&chart_yaml).with_context(|| {
        format!(
            "{} is not a chart directory (no readable Chart.yaml)",
            dir.display()
        )
    })?;
    let meta: serde_json::Value = serde_yaml_ng::from_str::<serde_json::Value>(&text)
        .with_context(|| format!("reading {}", chart_yaml.display()))?;
    let field = |k: &str| meta.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let name = field("name").ok_or_else(|| anyhow!("{}: no `name`", chart_yaml.display()))?;
    let version =
        field("version").ok_or_else(|| anyhow!("{}: no `version`", chart_yaml.display()))?;
    if !crate::oci::reference::is_valid_component(&name) {
        bail!(
            "{}: the chart name `{name}` cannot be a repository name",
            chart_yaml.display()
        );
    }
    let ignore = match std::fs::read_to_string(dir.join(".helmignore")) {
        Ok(t) => Rules::parse(&t),
        Err(_) => Rules::parse(""),
    };
    let mut files = Vec::new();
    walk(dir, "", &ignore, &mut files)?;
    files.sort();
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for rel in &files {
        let path = dir.join(rel);
        let data = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(if is_executable(&path) { 0o755 } else { 0o644 });
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, format!("{name}/{rel}"), data.as_slice())?;
    }
    let mut gz = tar.into_inner()?;
    gz.flush()?;
    let archive = gz.finish()?;
    Ok(Packaged {
        app_version: field("appVersion"),
        config: serde_json::to_vec(&meta)?,
        name,
        version,
        archive,
    })
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(_: &Path) -> bool {
    false
}

/// Every file under `dir` (symlinks followed, as Helm does), relative,
/// `/`-separated; `.git` and what `.helmignore` ignores left out.
fn walk(root: &Path, rel: &str, ignore: &Rules, out: &mut Vec<String>) -> Result<()> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let meta = std::fs::metadata(e.path())
            .with_context(|| format!("reading {}", e.path().display()))?;
        if name == ".git" || ignore.ignores(&path, meta.is_dir()) {
            continue;
        }
        if meta.is_dir() {
            walk(root, &path, ignore, out)?;
        } else if meta.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

/// `.helmignore`, read as Helm reads it (`pkg/ignore`): a pattern without
/// a `/` matches the base name, one with a `/` the path from the chart's
/// root (a leading `/` anchors it there too), a trailing `/` only
/// directories, `!` negates; `templates/.?*` is always ignored.
#[derive(Debug, Clone)]
struct Rules(Vec<Rule>);

#[derive(Debug, Clone)]
struct Rule {
    pattern: String,
    negate: bool,
    dir_only: bool,
    base_name: bool,
}

impl Rules {
    fn parse(text: &str) -> Rules {
        let mut rules = Vec::new();
        for line in text.lines().chain(std::iter::once("templates/.?*")) {
            let mut p = line.trim();
            if p.is_empty() || p.starts_with('#') || p == "!" {
                continue;
            }
            let negate = p.starts_with('!');
            if negate {
                p = &p[1..];
            }
            let dir_only = p.ends_with('/') && p.len() > 1;
            let p = p.trim_end_matches('/');
            let p = p.strip_prefix('/').unwrap_or(p);
            if p.is_empty() {
                continue;
            }
            rules.push(Rule {
                base_name: !p.contains('/')
                    && !line.trim().trim_start_matches('!').starts_with('/'),
                pattern: p.to_string(),
                negate,
                dir_only,
            });
        }
        Rules(rules)
    }

    /// Helm's `Rules.Ignore`, rule for rule.
    fn ignores(&self, path: &str, is_dir: bool) -> bool {
        for r in &self.0 {
            let name = if r.base_name {
                path.rsplit('/').next().unwrap_or(path)
            } else {
                path
            };
            let hit = glob(&r.pattern, name);
            if r.negate {
                if r.dir_only && !is_dir {
                    return true;
                }
                if !hit {
                    return true;
                }
                continue;
            }
            if r.dir_only && !is_dir {
                continue;
            }
            if hit {
                return true;
            }
        }
        false
    }
}

/// Go's `filepath.Match`: `*` (not across `/`), `?`, `[…]` (ranges, `^`
/// or `!` negating), `\` escaping.
fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    fn at(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != '/')
                .any(|i| at(&p[1..], &n[i..])),
            Some('?') => n.first().is_some_and(|c| *c != '/') && at(&p[1..], &n[1..]),
            Some('[') => {
                let Some(c) = n.first() else { return false };
                let mut i = 1;
                let negate = matches!(p.get(1), Some('^') | Some('!'));
                if negate {
                    i += 1;
                }
                let mut hit = false;
                let mut first = true;
                while i < p.len() && (p[i] != ']' || first) {
                    first = false;
                    let lo = if p[i] == '\\' && i + 1 < p.len() {
                        i += 1;
                        p[i]
                    } else {
                        p[i]
                    };
                    let hi =
                        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|c| *c != ']') {
                            i += 2;
                            p[i]
                        } else {
                            lo
                        };
                    if lo <= *c && *c <= hi {
                        hit = true;
                    }
                    i += 1;
                }
                if i >= p.len() {
                    return false; // unclosed class: Go reports a bad pattern
                }
                hit != negate && *c != '/' && at(&p[i + 1..], &n[1..])
            }
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && at(&p[2..], &n[1..]),
            Some(c) => n.first() == Some(c) && at(&p[1..], &n[1..]),
        }
    }
    at(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_as_go_does() {
        assert!(glob("*.swp", "a.swp"));
        assert!(!glob("*.swp", "dir/a.swp"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "a/c"));
        assert!(glob("[a-c]x", "bx"));
        assert!(!glob("[^a-c]x", "bx"));
        assert!(glob("[!a-c]x", "dx"));
        assert!(glob("\\*", "*"));
        assert!(glob("templates/*.yaml", "templates/a.yaml"));
        assert!(!glob("[a-", "a"));
    }

    #[test]
    fn helmignore_rules() {
        let r = Rules::parse("# comment\n*.swp\n/ci/\ndocs/*.md\n.vscode/\n");
        assert!(r.ignores("templates/x.swp", false));
        assert!(r.ignores("ci", true));
        assert!(!r.ignores("sub/ci", true), "anchored at the root");
        assert!(r.ignores("docs/a.md", false));
        assert!(r.ignores(".vscode", true));
        assert!(!r.ignores(".vscode", false), "a file, not a directory");
        assert!(r.ignores("templates/.hidden", false), "the default rule");
        assert!(!r.ignores("templates/deployment.yaml", false));
    }

    #[test]
    fn packages_reproducibly_as_helm_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let chart = dir.path().join("openim-server");
        std::fs::create_dir_all(chart.join("templates")).unwrap();
        std::fs::create_dir_all(chart.join("charts/sub")).unwrap();
        std::fs::write(
            chart.join("Chart.yaml"),
            "apiVersion: v2\nname: openim-server\nversion: 1.2.3+build.1\nappVersion: \"3.8.1\"\n",
        )
        .unwrap();
        std::fs::write(chart.join("values.yaml"), "image:\n  tag: v3.8.1\n").unwrap();
        std::fs::write(chart.join("templates/deploy.yaml"), "kind: Deployment\n").unwrap();
        std::fs::write(chart.join("templates/.notes.swp"), "x").unwrap();
        std::fs::write(
            chart.join("charts/sub/Chart.yaml"),
            "name: sub\nversion: 0.1.0\n",
        )
        .unwrap();
        std::fs::write(chart.join("README.md~"), "x").unwrap();
        std::fs::write(chart.join(".helmignore"), "*~\n").unwrap();
        let a = package(&chart).unwrap();
        let b = package(&chart).unwrap();
        assert_eq!(a.archive, b.archive, "reproducible");
        assert_eq!(a.name, "openim-server");
        assert_eq!(a.tag(), "1.2.3_build.1");
        assert_eq!(a.app_version.as_deref(), Some("3.8.1"));
        assert_eq!(a.file_name(), "openim-server-1.2.3+build.1.tgz");
        let config: serde_json::Value = serde_json::from_slice(&a.config).unwrap();
        assert_eq!(config["apiVersion"], "v2");
        let mut names = Vec::new();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(a.archive.as_slice()));
        for e in archive.entries().unwrap() {
            names.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
        }
        assert_eq!(
            names,
            [
                "openim-server/.helmignore",
                "openim-server/Chart.yaml",
                "openim-server/charts/sub/Chart.yaml",
                "openim-server/templates/deploy.yaml",
                "openim-server/values.yaml",
            ]
        );
        let m: serde_json::Value = serde_json::from_slice(&a.manifest().bytes).unwrap();
        assert_eq!(m["config"]["mediaType"], MT_HELM_CONFIG);
        assert_eq!(m["layers"][0]["mediaType"], MT_HELM_CHART);
        assert!(package(dir.path())
            .unwrap_err()
            .to_string()
            .contains("no readable Chart.yaml"));
    }
}

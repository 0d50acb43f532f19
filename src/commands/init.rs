//! `openim-release init`: write openim-release.yaml from what a repository
//! already has — a compose build file, Dockerfiles with per-service build
//! args, Helm charts — and the origin remote (for the registry).

use crate::cli::{GlobalArgs, InitArgs};
use crate::config;
use crate::exit::{self, BadInput};
use crate::git::Repo;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

pub fn run(global: &GlobalArgs, args: &InitArgs) -> Result<i32> {
    let dir = match &global.directory {
        Some(d) => d.clone(),
        None => std::env::current_dir().context("reading the current directory")?,
    };
    let repo = Repo::discover(&dir)?;
    let root = repo.root().to_path_buf();
    let target = root.join(config::FILE_NAMES[0]);
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
        anyhow::anyhow!("internal error: proposed config line {line:?}: {e}")
    })?;
    if args.print {
        print!("{text}");
    } else {
        std::fs::write(&target, &text).with_context(|| format!("writing {}", target.display()))?;
        eprintln!(
            "wrote {}; review it, then try `openim-release plan --stage rc`",
            target.display()
        );
        print!("{text}");
    }
    Ok(exit::OK)
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

/// The registry namespace for a GitHub origin: `ghcr.io/<owner>`.
fn registry_from_origin(url: Option<&str>) -> String {
    url.and_then(crate::labels::source_url)
        .and_then(|u| {
            let path = u.strip_prefix("https://github.com/")?;
            let owner = path.split('/').next()?.to_ascii_lowercase();
            Some(format!("ghcr.io/{owner}"))
        })
        .unwrap_or_else(|| "ghcr.io/YOUR-ORG".into())
}

/// The proposed configuration text.
pub fn propose(root: &Path, origin: Option<&str>) -> Result<String> {
    let mut files = Vec::new();
    walk(root, 5, &mut files);
    let compose = files.iter().find(|p| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (name.starts_with("docker-compose") || name.starts_with("compose"))
            && name.contains("build")
            && (name.ends_with(".yml") || name.ends_with(".yaml"))
    });
    let dockerfiles: Vec<&PathBuf> = files
        .iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("Dockerfile"))
        })
        .collect();
    let charts: Vec<String> = files
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "Chart.yaml"))
        .filter_map(|p| p.parent().map(|d| rel(root, d)))
        // Subcharts come with their umbrella.
        .filter(|d| !d.contains("/charts/"))
        .collect();
    let registry = registry_from_origin(origin);

    let mut y = String::from("# openim-release configuration, proposed by `openim-release init`.\n# Docs: docs/config.md; schema: docs/openim-release.schema.json\n\nimages:\n");
    y.push_str(&format!("  registries:            # each image is pushed as <registry>/<service>:<tag>\n    - {registry}\n"));
    y.push_str("  platforms: [linux/amd64, linux/arm64]\n");
    match compose {
        Some(c) => {
            y.push_str(&format!("  # services, build args and contexts come from the compose build file\n  compose: {}\n", rel(root, c)));
        }
        None => {
            y.push_str("  services:\n");
            let services = services_from_cmd(root, &dockerfiles);
            if services.is_empty() {
                y.push_str("    - name: CHANGE-ME           # one entry per image\n      dockerfile: Dockerfile\n      context: .\n");
            }
            for (name, dockerfile, cmd) in services {
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
    y.push('\n');
    if charts.is_empty() {
        y.push_str("# deploy:                # the deploy repository (see docs/gitops.md)\n#   url: https://github.com/YOUR-ORG/helm-charts.git\n#   base: main\n#   charts:\n#     - path: charts/YOUR-CHART\n");
    } else {
        y.push_str("deploy:                  # the charts found here; point url at the deploy repository\n");
        y.push_str(&format!(
            "  url: {}\n  base: main\n  mode: pr\n  charts:\n",
            origin
                .map(|o| crate::secret::scrub(o, &[]))
                .unwrap_or_else(|| "https://github.com/YOUR-ORG/helm-charts.git".into())
        ));
        for c in charts {
            y.push_str(&format!("    - path: {c}\n"));
        }
    }
    Ok(y)
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
        for m in mains
            .iter()
            .filter(|p| p.file_name().is_some_and(|n| n == "main.go"))
        {
            let Some(dir) = m.parent() else { continue };
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            if crate::imageref::is_valid_component(&name) && dir != root.join("cmd") {
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
                dir.file_name()
                    .map(|n| n.to_string_lossy().to_ascii_lowercase())
                    .unwrap_or_default()
            };
            if crate::imageref::is_valid_component(&name) && !out.iter().any(|(n, _, _)| n == &name)
            {
                out.push((name, rel(root, d), None));
            }
        }
    }
    out
}

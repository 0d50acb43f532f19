//! Reading `openim-release.yaml`: finding the file, parsing it with the
//! line of every error, and the JSON schema of its types.

use super::validate::validate;
use super::*;

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

//! The reference pages docs/config/<section>.md against the committed JSON
//! Schema (docs/openim-release.schema.json, itself checked against the config
//! types by `committed_json_schema_is_current`): every key path of a section
//! is documented on its page, every key path the pages name exists, and every
//! page's example is a valid configuration.
//!
//! Key paths are dotted; array items are written `[]`
//! (`deploy.charts[].path`); a mapping with free-form keys is written with a
//! placeholder in angle brackets (`images.labels.<label>`,
//! `stages.<stage>.base`), any name between the brackets will do.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

const SECTIONS: &[&str] = &[
    "tags",
    "images",
    "deploy",
    "stages",
    "gitops",
    "changelog",
    "github_release",
    "notify",
];

/// Stands for a placeholder segment in the paths computed from the schema.
const ANY: &str = "<*>";

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn schema() -> Value {
    serde_json::from_str(&read("docs/openim-release.schema.json"))
        .expect("docs/openim-release.schema.json is JSON")
}

/// The schema a node stands for: `$ref`s followed (`#/$defs/…`,
/// `#/definitions/…`), and an `anyOf`/`oneOf`/`allOf` of one schema (plus
/// `null`, for optional keys) replaced by that schema. Enums stay as they are.
fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    if let Some(r) = node.get("$ref").and_then(Value::as_str) {
        let target = r
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer))
            .unwrap_or_else(|| panic!("schema: unresolvable $ref {r}"));
        return resolve(root, target);
    }
    for combinator in ["anyOf", "oneOf", "allOf"] {
        if let Some(variants) = node.get(combinator).and_then(Value::as_array) {
            let not_null: Vec<&Value> = variants
                .iter()
                .filter(|v| v.get("type").and_then(Value::as_str) != Some("null"))
                .collect();
            if let [only] = not_null.as_slice() {
                return resolve(root, only);
            }
        }
    }
    node
}

/// Push every key path below `path` (not `path` itself).
fn walk(root: &Value, node: &Value, path: &str, out: &mut Vec<String>) {
    let node = resolve(root, node);
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (key, child) in props {
            let p = format!("{path}.{key}");
            out.push(p.clone());
            walk(root, child, &p, out);
        }
    } else if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
        // Free-form keys: one placeholder entry, then what each value holds.
        let p = format!("{path}.{ANY}");
        out.push(p.clone());
        walk(root, values, &p, out);
    } else if let Some(items) = node.get("items") {
        walk(root, items, &format!("{path}[]"), out);
    }
}

/// Every key path of `section` in the schema.
fn section_paths(root: &Value, section: &str) -> Vec<String> {
    let node = root
        .pointer(&format!("/properties/{section}"))
        .unwrap_or_else(|| panic!("the schema has no top-level `{section}`"));
    let mut out = Vec::new();
    walk(root, node, section, &mut out);
    assert!(!out.is_empty(), "schema: `{section}` has no keys");
    out
}

/// The page's text outside fenced code blocks.
fn prose(page: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in page.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The contents of the inline code spans of `text` (CommonMark: a run of N
/// backticks up to the next run of exactly N; one space each side stripped).
fn code_spans(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let run_at = |i: usize| b[i..].iter().take_while(|&&c| c == b'`').count();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'`' {
            i += 1;
            continue;
        }
        let n = run_at(i);
        let start = i + n;
        let mut j = start;
        let mut end = None;
        while j < b.len() {
            if b[j] == b'`' {
                let m = run_at(j);
                if m == n {
                    end = Some(j);
                    break;
                }
                j += m;
            } else {
                j += 1;
            }
        }
        match end {
            Some(e) => {
                let s = &text[start..e];
                let s = if s.len() > 2 && s.starts_with(' ') && s.ends_with(' ') {
                    &s[1..s.len() - 1]
                } else {
                    s
                };
                spans.push(s.to_string());
                i = e + n;
            }
            None => i = start,
        }
    }
    spans
}

/// Split a key path into segments, a placeholder (`<stage>`) becoming [`ANY`].
fn segments(path: &str) -> Vec<String> {
    path.split('.')
        .map(|s| {
            if s.starts_with('<') && s.ends_with('>') {
                ANY.to_string()
            } else {
                s.to_string()
            }
        })
        .collect()
}

/// Whether the documented `path` is the schema path `pattern` with its
/// placeholders written out (or left as placeholders). With `open_end`, a
/// placeholder ending the pattern takes the rest of the path (label names
/// contain dots).
fn matches(pattern: &str, path: &str, open_end: bool) -> bool {
    let (p, d) = (segments(pattern), segments(path));
    for (i, seg) in p.iter().enumerate() {
        let Some(doc) = d.get(i) else { return false };
        if seg == ANY {
            if open_end && i == p.len() - 1 {
                return true;
            }
            continue;
        }
        if seg != doc {
            return false;
        }
    }
    p.len() == d.len()
}

/// The example of a page: its first ```yaml block.
fn example(page: &str) -> Option<String> {
    let start = page.find("```yaml\n")? + "```yaml\n".len();
    let end = start + page[start..].find("```")?;
    Some(page[start..end].to_string())
}

#[test]
fn every_schema_key_is_documented_on_its_page() {
    let root = schema();
    let documented: BTreeSet<&str> = root["properties"]
        .as_object()
        .expect("schema properties")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        documented,
        SECTIONS.iter().copied().collect(),
        "the top-level sections changed: add or remove a page in docs/config/ and update SECTIONS"
    );
    let mut missing = Vec::new();
    for section in SECTIONS {
        let file = format!("docs/config/{section}.md");
        let spans = code_spans(&prose(&read(&file)));
        for path in section_paths(&root, section) {
            if !spans
                .iter()
                .any(|s| segments(s) == segments(&path) && (path.contains(ANY) || *s == path))
            {
                missing.push(format!("{file}: `{}`", path.replace(ANY, "<name>")));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "key paths of docs/openim-release.schema.json not documented (in backticks) on their page:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn every_documented_key_exists_in_the_schema() {
    let root = schema();
    let known: Vec<String> = SECTIONS
        .iter()
        .flat_map(|s| section_paths(&root, s))
        .collect();
    let key_path = regex::Regex::new(&format!(
        r"^(?:{})(?:\.(?:[A-Za-z0-9_-]+|<[A-Za-z0-9_-]+>)|\[[0-9]*\])+$",
        SECTIONS.join("|")
    ))
    .expect("static regex");
    let index = regex::Regex::new(r"\[[0-9]+\]").expect("static regex");
    let mut unknown = Vec::new();
    for section in SECTIONS {
        let file = format!("docs/config/{section}.md");
        for span in code_spans(&prose(&read(&file))) {
            if !key_path.is_match(&span) {
                continue;
            }
            // Error messages name items by index: `images.services[0].name`.
            let path = index.replace_all(&span, "[]");
            let path = path.trim_end_matches("[]");
            let found = known.iter().any(|k| {
                // A map of plain values (no key path goes below it).
                let open_end = !known.iter().any(|o| o.starts_with(&format!("{k}.")));
                matches(k, path, open_end)
            });
            if !found {
                unknown.push(format!("{file}: `{span}`"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "key paths named on the docs/config/ pages that docs/openim-release.schema.json does not have:\n  {}",
        unknown.join("\n  ")
    );
}

#[test]
fn every_page_example_is_a_valid_config_with_every_key() {
    let root = schema();
    let mut problems = Vec::new();
    for section in SECTIONS {
        let file = format!("docs/config/{section}.md");
        let Some(yaml) = example(&read(&file)) else {
            problems.push(format!("{file}: no ```yaml example"));
            continue;
        };
        if let Err((line, message)) = openim_release::config::parse(&yaml) {
            problems.push(format!(
                "{file}: the example does not load (line {} of the block): {message}",
                line.map_or_else(|| "?".to_string(), |l| l.to_string())
            ));
        }
        if !yaml.lines().any(|l| l.starts_with(&format!("{section}:"))) {
            problems.push(format!("{file}: the example has no `{section}:` section"));
        }
        // Every key name of the section appears in the example (commented
        // alternatives count).
        for path in section_paths(&root, section) {
            let key = path.rsplit('.').next().unwrap_or(&path);
            if key == ANY {
                continue;
            }
            if !yaml.contains(&format!("{key}:")) {
                problems.push(format!("{file}: the example lacks `{path}`"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

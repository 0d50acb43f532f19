//! Property tests: generated documents (block and flow mappings, sequences,
//! comments, blank lines, every quoting style, block scalars, anchors and
//! aliases, `!!str` tags, directives, later documents, CRLF, a BOM), one
//! scalar edited. An edit that succeeds reads back, through an independent
//! YAML reader, as the original with only that scalar changed, and leaves
//! every byte outside the scalar as it was; an edit that is refused is one
//! the crate documents as refused (a block scalar, a value shared through an
//! anchor), and a refusal carries no text.

use proptest::prelude::*;
use serde::Deserialize;
use yamledit::{get, set, YamlEditError};

/// Cases per property (docs/safety.md lists them).
pub const EDIT_CASES: u32 = 800;
pub const PARSE_CASES: u32 = 500;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// The document model

#[derive(Debug, Clone, Copy, PartialEq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

#[derive(Debug, Clone)]
enum Node {
    Scalar {
        value: String,
        style: Style,
        str_tag: bool,
    },
    Map {
        entries: Vec<Entry>,
        flow: bool,
    },
    Seq {
        items: Vec<Node>,
        flow: bool,
    },
    /// An alias to the anchor numbered `pick` modulo the anchors defined
    /// before it (a plain scalar when there is none).
    Alias {
        pick: usize,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    key: String,
    quoted_key: bool,
    /// A comment line (and a blank line) before the entry.
    comment_before: bool,
    blank_before: bool,
    /// A comment after a scalar value.
    comment_after: bool,
    anchor: bool,
    value: Node,
}

#[derive(Debug, Clone)]
struct Doc {
    root: Vec<Entry>,
    indent: usize,
    crlf: bool,
    bom: bool,
    directive: bool,
    later_doc: bool,
    final_newline: bool,
}

/// Values as a plain scalar may hold them (block context).
fn plain_value(in_flow: bool) -> BoxedStrategy<String> {
    let common = prop_oneof![
        Just("v1".to_string()),
        Just("3.10".to_string()),
        Just("1234".to_string()),
        Just("true".to_string()),
        Just("~".to_string()),
        Just("null".to_string()),
        Just("hello world".to_string()),
        Just("v3.8.1-rc.2".to_string()),
        Just("ghcr.io/openimsdk/openim-api".to_string()),
        Just("ünïcødé".to_string()),
        "[a-z][a-z0-9._-]{0,10}",
    ];
    if in_flow {
        common.boxed()
    } else {
        prop_oneof![
            4 => common,
            1 => Just("x:y".to_string()),
            1 => Just("a, b [c] {d}".to_string()),
            1 => Just("".to_string()),
        ]
        .boxed()
    }
}

/// Anything printable on one line (quoted styles).
fn quoted_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,12}",
        Just("it's".to_string()),
        Just("say \"hi\"".to_string()),
        Just("back\\slash".to_string()),
        Just("# not a comment".to_string()),
        Just("été 🚀".to_string()),
    ]
}

fn scalar(in_flow: bool) -> impl Strategy<Value = Node> {
    prop_oneof![
        3 => (plain_value(in_flow), any::<bool>()).prop_map(|(value, tag)| Node::Scalar {
            // An empty scalar cannot carry a tag.
            str_tag: tag && !value.is_empty() && value != "~" && value != "null",
            value,
            style: Style::Plain,
        }),
        2 => quoted_value().prop_map(|value| Node::Scalar { value, style: Style::Single, str_tag: false }),
        2 => (quoted_value(), "[\t\u{1}\u{85}\n]{0,1}").prop_map(|(v, c)| Node::Scalar {
            value: format!("{v}{c}"),
            style: Style::Double,
            str_tag: false,
        }),
        (if in_flow { 0 } else { 1 }) => "[a-z]([a-z ]{0,8}[a-z])?".prop_map(|value| Node::Scalar {
            value,
            style: Style::Literal,
            str_tag: false,
        }),
        1 => (0usize..8).prop_map(|pick| Node::Alias { pick }),
    ]
}

fn key() -> impl Strategy<Value = String> {
    // A leading `k` keeps keys strings for every YAML reader (no `y`, `no`…).
    "k[a-z0-9_-]{0,5}"
}

fn entries(value: BoxedStrategy<Node>, max: usize) -> impl Strategy<Value = Vec<Entry>> {
    prop::collection::vec(
        (
            key(),
            any::<bool>(),
            prop::bool::weighted(0.2),
            prop::bool::weighted(0.2),
            prop::bool::weighted(0.3),
            prop::bool::weighted(0.2),
            value,
        ),
        1..max,
    )
    .prop_map(|list| {
        list.into_iter()
            .enumerate()
            .map(
                |(
                    i,
                    (key, quoted_key, comment_before, blank_before, comment_after, anchor, value),
                )| {
                    Entry {
                        // Unique within the mapping.
                        key: format!("{key}{i}"),
                        quoted_key,
                        comment_before,
                        blank_before,
                        comment_after,
                        anchor,
                        value,
                    }
                },
            )
            .collect()
    })
}

fn flow_collection() -> impl Strategy<Value = Node> {
    prop_oneof![
        entries(scalar(true).boxed(), 4).prop_map(|entries| Node::Map {
            entries: entries
                .into_iter()
                .map(|mut e| {
                    // No comments or anchors inside the generated flow text.
                    e.comment_before = false;
                    e.blank_before = false;
                    e.comment_after = false;
                    e.anchor = false;
                    if matches!(e.value, Node::Alias { .. }) {
                        e.value = Node::Scalar {
                            value: "x".into(),
                            style: Style::Plain,
                            str_tag: false,
                        };
                    }
                    e
                })
                .collect(),
            flow: true,
        }),
        prop::collection::vec(plain_value(true), 0..4).prop_map(|items| Node::Seq {
            items: items
                .into_iter()
                .filter(|v| !v.is_empty())
                .map(|value| Node::Scalar {
                    value,
                    style: Style::Plain,
                    str_tag: false
                })
                .collect(),
            flow: true,
        }),
    ]
}

fn block_value() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        6 => scalar(false).boxed(),
        1 => flow_collection().boxed(),
        1 => prop::collection::vec(plain_value(false), 1..4).prop_map(|items| Node::Seq {
            items: items
                .into_iter()
                .map(|value| Node::Scalar { value, style: Style::Plain, str_tag: false })
                .collect(),
            flow: false,
        }).boxed(),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        entries(inner.boxed(), 5).prop_map(|entries| Node::Map {
            entries,
            flow: false,
        })
    })
}

fn doc() -> impl Strategy<Value = Doc> {
    (
        entries(block_value().boxed(), 6),
        prop_oneof![Just(2usize), Just(4)],
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.9),
    )
        .prop_map(
            |(root, indent, crlf, bom, directive, later_doc, final_newline)| Doc {
                root,
                indent,
                crlf,
                bom,
                directive,
                later_doc,
                final_newline,
            },
        )
}

// ---------------------------------------------------------------------------
// Rendering, with the byte range and the facts of every scalar reachable by
// a key path

#[derive(Debug, Clone)]
struct Target {
    path: Vec<String>,
    /// Byte range of the scalar's text (quotes included; empty right after
    /// the `:` for an empty value).
    start: usize,
    end: usize,
    value: String,
    style: Style,
    str_tag: bool,
    /// Anchor ids on the value and on every mapping on the way to it.
    anchors: Vec<usize>,
}

struct Writer {
    out: String,
    eol: &'static str,
    anchors: usize,
    /// Anchors whose node is complete (an alias to an open one would be
    /// recursive).
    closed: Vec<usize>,
    used: Vec<usize>,
    targets: Vec<Target>,
}

fn single_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn double_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{85}' => out.push_str("\\N"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Writer {
    fn new_anchor(&mut self) -> usize {
        self.anchors += 1;
        self.anchors
    }

    /// Write a scalar; returns its byte range.
    fn scalar(
        &mut self,
        value: &str,
        style: Style,
        str_tag: bool,
        indent: usize,
    ) -> (usize, usize) {
        if str_tag {
            self.out.push_str("!!str ");
        }
        let start = self.out.len();
        match style {
            Style::Plain => self.out.push_str(value),
            Style::Single => self.out.push_str(&single_quote(value)),
            Style::Double => self.out.push_str(&double_quote(value)),
            Style::Literal => {
                self.out.push_str("|-");
                self.out.push_str(self.eol);
                self.out.push_str(&" ".repeat(indent + 2));
                self.out.push_str(value);
            }
        }
        (start, self.out.len())
    }

    fn flow(&mut self, node: &Node) {
        match node {
            Node::Map { entries, .. } => {
                self.out.push('{');
                for (i, e) in entries.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.out.push_str(&e.key);
                    self.out.push_str(": ");
                    if let Node::Scalar {
                        value,
                        style,
                        str_tag,
                    } = &e.value
                    {
                        self.scalar(value, *style, *str_tag, 0);
                    }
                }
                self.out.push('}');
            }
            Node::Seq { items, .. } => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    if let Node::Scalar {
                        value,
                        style,
                        str_tag,
                    } = item
                    {
                        self.scalar(value, *style, *str_tag, 0);
                    }
                }
                self.out.push(']');
            }
            _ => unreachable!("flow collections hold scalars"),
        }
    }

    fn map(
        &mut self,
        entries: &[Entry],
        indent: usize,
        step: usize,
        path: &[String],
        anchors: &[usize],
    ) {
        let pad = " ".repeat(indent);
        for e in entries {
            if e.blank_before {
                self.out.push_str(self.eol);
            }
            if e.comment_before {
                self.out
                    .push_str(&format!("{pad}# about {}{}", e.key, self.eol));
            }
            self.out.push_str(&pad);
            if e.quoted_key {
                self.out.push_str(&single_quote(&e.key));
            } else {
                self.out.push_str(&e.key);
            }
            self.out.push(':');
            let mut path = path.to_vec();
            path.push(e.key.clone());
            let mut anchors = anchors.to_vec();
            let value = match &e.value {
                Node::Alias { pick } if !self.closed.is_empty() => {
                    let id = self.closed[pick % self.closed.len()];
                    self.used.push(id);
                    self.out.push_str(&format!(" *a{id}"));
                    self.out.push_str(self.eol);
                    continue;
                }
                Node::Alias { .. } => &Node::Scalar {
                    value: "x".into(),
                    style: Style::Plain,
                    str_tag: false,
                },
                v => v,
            };
            let anchor = match value {
                // An empty scalar with an anchor cannot be edited in place;
                // keep anchors where an edit is possible.
                Node::Scalar { value, .. } if value.is_empty() => None,
                _ if e.anchor => Some(self.new_anchor()),
                _ => None,
            };
            if let Some(id) = anchor {
                anchors.push(id);
                self.out.push_str(&format!(" &a{id}"));
            }
            match value {
                Node::Scalar {
                    value,
                    style,
                    str_tag,
                } => {
                    let (start, end) = if value.is_empty() && *style == Style::Plain {
                        let at = self.out.len();
                        (at, at)
                    } else {
                        self.out.push(' ');
                        self.scalar(value, *style, *str_tag, indent)
                    };
                    self.targets.push(Target {
                        path,
                        start,
                        end,
                        value: value.clone(),
                        style: *style,
                        str_tag: *str_tag,
                        anchors,
                    });
                    if e.comment_after && *style != Style::Literal {
                        self.out.push_str(" # note");
                    }
                    self.out.push_str(self.eol);
                }
                Node::Map {
                    entries,
                    flow: false,
                } => {
                    self.out.push_str(self.eol);
                    self.map(entries, indent + step, step, &path, &anchors);
                }
                Node::Seq { items, flow: false } => {
                    self.out.push_str(self.eol);
                    for item in items {
                        self.out.push_str(&format!("{pad}- "));
                        if let Node::Scalar {
                            value,
                            style,
                            str_tag,
                        } = item
                        {
                            self.scalar(value, *style, *str_tag, indent);
                        }
                        self.out.push_str(self.eol);
                    }
                }
                flow => {
                    self.out.push(' ');
                    // Scalars of a flow mapping are reachable too.
                    let before = self.out.len();
                    self.flow(flow);
                    if let Node::Map { entries, .. } = flow {
                        self.flow_targets(before, entries, &path, &anchors);
                    }
                    self.out.push_str(self.eol);
                }
            }
            self.closed.extend(anchor);
        }
    }

    /// Record the scalars of a flow mapping written at `from`.
    fn flow_targets(&mut self, from: usize, entries: &[Entry], path: &[String], anchors: &[usize]) {
        let mut at = from + 1;
        for (i, e) in entries.iter().enumerate() {
            if i > 0 {
                at += 2;
            }
            at += e.key.len() + 2;
            let Node::Scalar {
                value,
                style,
                str_tag,
            } = &e.value
            else {
                unreachable!()
            };
            if *str_tag {
                at += "!!str ".len();
            }
            let len = match style {
                Style::Plain => value.len(),
                Style::Single => single_quote(value).len(),
                Style::Double => double_quote(value).len(),
                Style::Literal => unreachable!(),
            };
            let mut p = path.to_vec();
            p.push(e.key.clone());
            self.targets.push(Target {
                path: p,
                start: at,
                end: at + len,
                value: value.clone(),
                style: *style,
                str_tag: *str_tag,
                anchors: anchors.to_vec(),
            });
            at += len;
        }
    }
}

fn render(doc: &Doc) -> (String, Vec<Target>, Vec<usize>) {
    let eol = if doc.crlf { "\r\n" } else { "\n" };
    let mut w = Writer {
        out: String::new(),
        eol,
        anchors: 0,
        closed: Vec::new(),
        used: Vec::new(),
        targets: Vec::new(),
    };
    if doc.bom {
        w.out.push('\u{feff}');
    }
    if doc.directive {
        w.out.push_str(&format!("%YAML 1.2{eol}---{eol}"));
    }
    w.map(&doc.root, 0, doc.indent, &[], &[]);
    if doc.later_doc {
        w.out.push_str(&format!("---{eol}other: doc{eol}"));
    }
    if !doc.final_newline && !doc.later_doc {
        let trimmed = w.out.trim_end_matches(['\r', '\n']).len();
        w.out.truncate(trimmed);
    }
    (w.out, w.targets, w.used)
}

// ---------------------------------------------------------------------------
// An independent reader

fn first_doc(text: &str) -> serde_yaml_ng::Value {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let de = serde_yaml_ng::Deserializer::from_str(text)
        .next()
        .expect("one document");
    serde_yaml_ng::Value::deserialize(de).expect("serde_yaml_ng reads the document")
}

fn set_in(value: &mut serde_yaml_ng::Value, path: &[String], new: &str) {
    let map = value.as_mapping_mut().expect("a mapping on the path");
    let key = serde_yaml_ng::Value::String(path[0].clone());
    if path.len() == 1 {
        map.insert(key, serde_yaml_ng::Value::String(new.to_string()));
    } else {
        set_in(map.get_mut(&key).expect("the path exists"), &path[1..], new);
    }
}

/// The crate's documented exceptions to "the new value reads as a
/// string": a plain boolean set to `true`/`false` and a plain small integer
/// set to a small integer stay plain, keeping their type.
fn stays_typed(target: &Target, new: &str) -> Option<serde_yaml_ng::Value> {
    const BOOLS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
        "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
    ];
    if target.style != Style::Plain || target.str_tag {
        return None;
    }
    let small = |s: &str| {
        let digits = s.strip_prefix('-').unwrap_or(s);
        digits == "0"
            || (!digits.is_empty()
                && digits.len() <= 6
                && !digits.starts_with('0')
                && digits.bytes().all(|b| b.is_ascii_digit()))
    };
    if BOOLS.contains(&target.value.as_str()) && matches!(new, "true" | "false") {
        return Some(serde_yaml_ng::Value::Bool(new == "true"));
    }
    if small(&target.value) && small(new) {
        return Some(serde_yaml_ng::Value::Number(
            new.parse::<i64>().ok()?.into(),
        ));
    }
    None
}

fn set_value(value: &mut serde_yaml_ng::Value, path: &[String], new: serde_yaml_ng::Value) {
    let map = value.as_mapping_mut().expect("a mapping on the path");
    let key = serde_yaml_ng::Value::String(path[0].clone());
    if path.len() == 1 {
        map.insert(key, new);
    } else {
        set_value(map.get_mut(&key).expect("the path exists"), &path[1..], new);
    }
}

fn new_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9._-]{1,12}",
        2 => "[ -~]{0,12}",
        1 => any::<String>(),
        2 => prop::sample::select(vec![
            "v3.8.1", "3.10", "1234", "true", "no", "null", "~", "", "a: b", "#x", "x #y",
            "it's", "say \"hi\"", "line1\nline2", "tab\there", " lead", "trail ", "-",
            "- item", "?", ":", "{a}", "[x]", "a,b", "*star", "&amp", "!bang", "%pct",
            "`tick", "@at", "---", "...", "<<", "0x1F", "1e3", ".inf", "2024-01-01",
            "back\\slash", "ünï", "\u{85}", "\u{feff}x", "ctrl\u{7}", "\r", "v3.8.1@sha256:ab",
        ])
        .prop_map(str::to_string),
    ]
}

proptest! {
    #![proptest_config(config(EDIT_CASES))]

    #[test]
    fn one_scalar_edit_changes_that_scalar_and_nothing_else(
        doc in doc(),
        pick in any::<prop::sample::Index>(),
        value in new_value(),
    ) {
        let (text, targets, used) = render(&doc);
        prop_assume!(!targets.is_empty());
        // The generator writes valid YAML that this crate and the
        // independent reader both read.
        let before = first_doc(&text);
        let target = pick.get(&targets).clone();
        let read = get(&text, &target.path)?;
        prop_assert_eq!(read.as_deref(), Some(target.value.as_str()), "{}", text);
        let shared = target.anchors.iter().any(|a| used.contains(a));
        match set(&text, &target.path, &value) {
            Ok((out, changed)) => {
                prop_assert!(!shared || target.value == value, "edited a shared anchor:\n{}\n->\n{}", text, out);
                prop_assert!(target.style != Style::Literal || target.value == value);
                prop_assert_eq!(changed, target.value != value);
                if !changed {
                    prop_assert_eq!(&out, &text);
                    return Ok(());
                }
                // Bytes outside the scalar are unchanged; the scalar stays
                // on its line.
                let tail = text.len() - target.end;
                prop_assert!(out.len() >= target.start + tail);
                prop_assert_eq!(&out[..target.start], &text[..target.start]);
                prop_assert_eq!(&out[out.len() - tail..], &text[target.end..]);
                let written = &out[target.start..out.len() - tail];
                prop_assert!(!written.contains(['\n', '\r']), "{:?}", written);
                // It reads back, here and in another reader, as the original
                // with that one scalar changed (to a string).
                prop_assert_eq!(get(&out, &target.path)?, Some(value.clone()));
                let mut expected = before.clone();
                set_in(&mut expected, &target.path, &value);
                if let Some(typed) = stays_typed(&target, &value) {
                    prop_assert_eq!(written, value.as_str(), "a documented plain exception");
                    set_value(&mut expected, &target.path, typed);
                }
                prop_assert_eq!(first_doc(&out), expected, "{}\n->\n{}", text, out);
                for other in targets.iter().filter(|t| t.path != target.path) {
                    prop_assert_eq!(
                        get(&out, &other.path)?,
                        Some(other.value.clone())
                    );
                }
            }
            Err(e) => {
                let documented = match &e {
                    YamlEditError::Alias { .. } => shared,
                    YamlEditError::Unsupported { reason, .. } => {
                        target.style == Style::Literal && reason.contains("block scalar")
                    }
                    _ => false,
                };
                prop_assert!(documented, "refused `{}` = {:?}: {}\n{}", target.path.join("."), value, e, text);
            }
        }
    }
}

proptest! {
    #![proptest_config(config(PARSE_CASES))]

    /// Arbitrary text (mostly YAML-ish) never panics the reader or the
    /// editor, and an edit that succeeds reads back.
    #[test]
    fn arbitrary_text_never_panics(
        text in prop_oneof![
            "[a-z:#&*!|>'\"{}\\[\\], \n\t-]{0,60}",
            any::<String>(),
        ],
        key in "[a-z]{1,3}",
        value in new_value(),
    ) {
        let path = vec![key];
        let _ = get(&text, &path);
        let _ = yamledit::kind(&text, &path);
        let _ = yamledit::keys(&text, &[]);
        if let Ok((out, true)) = set(&text, &path, &value) {
            prop_assert_eq!(get(&out, &path)?, Some(value));
        }
    }

    /// Paths round-trip through their dotted form, dots and backslashes in
    /// keys included.
    #[test]
    fn key_paths_round_trip(keys in prop::collection::vec("[a-z.\\\\]{1,5}", 1..5)) {
        let text = yamledit::format_path(&keys);
        prop_assert_eq!(yamledit::parse_path(&text)?, keys);
    }
}

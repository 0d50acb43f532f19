//! Format-preserving edits of scalar values in YAML files.
//!
//! Helm `Chart.yaml`, `values.yaml` and global override files belong to the
//! user: a release tool may change the one value it was asked to change and
//! nothing else. This module therefore never re-serialises a document. It
//! parses the text with an event parser (`saphyr-parser`, which reports the
//! position of every node), locates the bytes of the target scalar, and splices
//! the new scalar in. Comments, key order, quoting style, indentation, blank
//! lines, CRLF line endings, a byte-order mark and a missing final newline all
//! stay exactly as they were; only the edited scalar changes (or, for an
//! insertion, one line is added).
//!
//! Every edit is checked before it is returned: the edited text is parsed
//! again and its node tree (values, styles, tags, anchors, structure) must
//! equal the original tree with only the target changed, and [`get`] must read
//! the new value back. When anything is uncertain the edit is refused with a
//! [`YamlEditError`] naming the key path and the line; the text is never
//! returned half-edited.
//!
//! Rules worth knowing:
//!
//! * **Paths** are dotted (`openim-rpc-user.image.tag`); a dot inside a key is
//!   written `\.` and a backslash `\\` (see [`parse_path`]). Paths only go
//!   through mappings; keys are matched by their value, whatever their quoting
//!   (`"image":` matches `image`).
//! * **Multi-document files**: only the first document is read and edited;
//!   later documents are left byte for byte as they are (a syntax error in a
//!   later document does not prevent editing the first one).
//! * **Quoting** ([`set`]): the existing style is kept. A plain scalar stays
//!   plain when the new value is safe as a plain scalar and still reads as a
//!   string (`v3.8.1`, `3.8.1`); a value that a YAML 1.1 or 1.2 reader would
//!   take as a number, boolean, null or timestamp (`3.10`, `1234`, `yes`,
//!   `~`, `2024-01-01`) gets double quotes, so `3.10` can never become the
//!   float 3.1. Two exceptions keep a plain value plain because quoting would
//!   change the type a template sees: a plain boolean set to `true`/`false`,
//!   and a plain integer set to a small decimal integer (at most six digits:
//!   larger ones are printed in exponent form by Helm, so they get quoted). A
//!   plain scalar with an explicit `!!str` tag stays plain when syntactically
//!   safe. Single-quoted stays single-quoted (`'` doubled) unless the value
//!   holds characters single quotes cannot carry (control characters, line
//!   breaks, tabs), in which case double quotes are used; double-quoted stays
//!   double-quoted with escapes. An empty value (`tag:`) is filled in place
//!   (`tag: v1`).
//! * **Refused edits**: block scalars (`|`, `>`), multi-line plain or quoted
//!   scalars, duplicate keys, empty values that carry a tag or anchor.
//! * **Missing keys** ([`set`]): when every parent exists and the last parent
//!   is a block mapping, `key: value` is inserted as a new line right after
//!   the last line of that mapping's last entry, indented like its siblings,
//!   with the line ending of the line above (or the file's, at a final line
//!   without newline, which stays without newline). A parent written `{}`,
//!   a flow mapping, or an empty (null) parent is refused: add the key by hand.
//!   A missing intermediate mapping is a [`YamlEditError::NotFound`] naming the
//!   first missing key. An inserted key and value are plain when safe, double
//!   quoted otherwise (so a missing `replicas` set to `3` is written `"3"`).
//! * **Anchors and aliases**: [`get`] reads through aliases and merge keys.
//!   [`set`] refuses ([`YamlEditError::Alias`]) when the path goes through an
//!   alias, when the target is an alias, and when the target *or any mapping
//!   on the path to it* carries an anchor that is referenced elsewhere in the
//!   document: editing there would change every user of the anchor. An anchor
//!   that is never referenced is edited normally (the `&name` stays).
//! * **Merge keys** (`<<: *base`): a key written in the mapping itself wins
//!   over merged ones and is edited normally. When the *last* key of the path
//!   exists only through a merge, [`set`] never touches the anchor: it inserts
//!   a local override (`tag: v2`) into the merging mapping, following the
//!   insertion rules above (an explicit key overrides merged keys in every YAML
//!   reader that supports `<<`). When an *intermediate* key exists only
//!   through a merge, the edit is refused with [`YamlEditError::Alias`] (a local
//!   override would have to copy the whole merged mapping).
//! * **Same value**: when the value read at the path (through aliases and
//!   merges) already equals the new one, [`set`] returns the text unchanged,
//!   byte for byte, without any other check.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Why a YAML edit or read was refused. Every message names the key path and,
/// where there is one, the line (1-based).
#[derive(Debug, thiserror::Error)]
pub enum YamlEditError {
    /// The dotted key path itself is malformed.
    #[error("invalid key path `{path}`: {reason}")]
    InvalidPath { path: String, reason: String },
    /// The YAML text does not parse.
    #[error("the YAML does not parse (line {line}, column {column}): {message}")]
    Parse {
        line: usize,
        column: usize,
        message: String,
    },
    /// A key of the path does not exist (for [`set`]: an intermediate key, or
    /// a key whose parent cannot take an inserted line).
    #[error("key path `{path}`: key `{missing_key}` not found in {} (line {line})", in_parent(.parent))]
    NotFound {
        path: String,
        missing_key: String,
        /// The dotted path of the mapping searched (empty for the top level).
        parent: String,
        line: usize,
    },
    /// The path goes through a sequence or a non-null scalar.
    #[error("key path `{path}`: {} (line {line}) is {found}, not a mapping, so the path cannot go through it", node_name(.key))]
    NotAMapping {
        path: String,
        /// The dotted path of the node (empty for the document's top level).
        key: String,
        line: usize,
        found: String,
    },
    /// The path ends at a mapping or a sequence.
    #[error("key path `{path}`: the value at line {line} is {found}, not a scalar")]
    NotAScalar {
        path: String,
        line: usize,
        found: String,
    },
    /// The edit would change a value shared through an anchor.
    #[error("key path `{path}` (line {line}): {detail}")]
    Alias {
        path: String,
        /// The anchor's name, without `&`/`*`.
        anchor: String,
        line: usize,
        detail: String,
    },
    /// A construct this module does not edit (block scalars, multi-line
    /// scalars, flow or empty parents for an insertion, duplicate keys, ...).
    #[error("key path `{path}` (line {line}): {reason}")]
    Unsupported {
        path: String,
        line: usize,
        reason: String,
    },
    /// The edited text did not read back as expected; nothing was written.
    #[error("key path `{path}`: refusing the edit because the result did not read back as expected ({reason}); the text was left unchanged")]
    Verify { path: String, reason: String },
}

fn node_name(key: &str) -> String {
    if key.is_empty() {
        "the document's top-level node".to_string()
    } else {
        format!("`{key}`")
    }
}

fn in_parent(parent: &str) -> String {
    if parent.is_empty() {
        "the top level of the document".to_string()
    } else {
        format!("`{parent}`")
    }
}

/// A dotted key path: `image.tag`, `openim-rpc-user.image.tag`; a literal dot
/// inside a key is written `\.` (and a literal backslash `\\`).
pub fn parse_path(path: &str) -> Result<Vec<String>, YamlEditError> {
    let invalid = |reason: &str| YamlEditError::InvalidPath {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if path.is_empty() {
        return Err(invalid("the path is empty"));
    }
    let mut keys = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('.') => current.push('.'),
                Some('\\') => current.push('\\'),
                _ => return Err(invalid(
                    "a backslash must be followed by `.` (literal dot) or `\\` (literal backslash)",
                )),
            },
            '.' => {
                if current.is_empty() {
                    return Err(invalid("empty key (leading, trailing or doubled `.`)"));
                }
                keys.push(std::mem::take(&mut current));
            }
            c => current.push(c),
        }
    }
    if current.is_empty() {
        return Err(invalid("empty key (leading, trailing or doubled `.`)"));
    }
    keys.push(current);
    Ok(keys)
}

/// The inverse of [`parse_path`]: keys joined with `.`, dots and backslashes
/// inside keys escaped.
pub fn format_path(path: &[String]) -> String {
    path.iter()
        .map(|k| k.replace('\\', "\\\\").replace('.', "\\."))
        .collect::<Vec<_>>()
        .join(".")
}

/// The scalar at `path` in the first document, as a string (None if the path
/// does not exist). Errors if the path goes through a non-mapping, or the
/// target is not a scalar.
///
/// Aliases and merge keys (`<<`) are followed. The value is returned as
/// written, unescaped but without type resolution: `tag:` gives `Some("")`,
/// `tag: ~` gives `Some("~")`. A null parent (`image:` with nothing under it)
/// counts as missing: `get("image:\n", image.tag)` is `None`.
pub fn get(text: &str, path: &[String]) -> Result<Option<String>, YamlEditError> {
    check_path(path)?;
    let parsed = parse(text)?;
    let doc = Doc::new(text, &parsed);
    doc.read(path)
}

/// Set the scalar at `path` to `value`. Returns the new text and whether it
/// changed (setting the same value returns the text unchanged, byte for byte).
///
/// Quoting: keep the existing style (plain stays plain when the new value is
/// safe as a plain scalar — e.g. `v3.8.1`, `3.8.1`; a value that would
/// otherwise read as a number/bool/null keeps or gains quotes: if the old value
/// was plain and the new one needs quotes, double quotes are used).
/// Single-quoted stays single-quoted, double-quoted stays double-quoted, with
/// correct escaping. `tag: ""` becomes `tag: "v3.8.1"`.
///
/// Missing key: when all parents exist and the last parent is a block
/// mapping, `key: value` is inserted as a new line after the last entry of
/// that mapping; a flow or empty parent is refused. See the module
/// documentation for anchors, aliases, merge keys and multi-document files.
pub fn set(text: &str, path: &[String], value: &str) -> Result<(String, bool), YamlEditError> {
    check_path(path)?;
    let parsed = parse(text)?;
    let doc = Doc::new(text, &parsed);
    if doc.read(path)?.as_deref() == Some(value) {
        return Ok((text.to_string(), false));
    }
    let plan = match doc.write_target(path)? {
        Target::Existing { node, key, index } => doc.plan_replace(path, node, key, index, value)?,
        Target::Missing { parent, index } => doc.plan_insert(path, parent, index, value)?,
    };
    let mut last_failure = String::new();
    for candidate in &plan.candidates {
        let mut new_text = String::with_capacity(text.len() + candidate.replacement.len());
        new_text.push_str(&text[..plan.start]);
        new_text.push_str(&candidate.replacement);
        new_text.push_str(&text[plan.end..]);
        match verify(
            &parsed,
            &new_text,
            &plan.index,
            &candidate.patch,
            path,
            value,
        ) {
            Ok(()) => return Ok((new_text, true)),
            Err(reason) => last_failure = reason,
        }
    }
    Err(YamlEditError::Verify {
        path: format_path(path),
        reason: last_failure,
    })
}

/// What a key holds, as a YAML reader would type it: callers that write
/// strings (image tags) refuse to overwrite a number, a boolean or a mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueKind {
    /// A quoted scalar, a plain one that reads as a string, or one tagged `!!str`.
    String(String),
    /// Empty, `~` or `null`.
    Null,
    Bool(String),
    Int(String),
    Float(String),
    Mapping,
    Sequence,
}

impl ValueKind {
    /// `the integer `1``, `a mapping`, … for messages.
    pub fn describe(&self) -> String {
        match self {
            ValueKind::String(v) => format!("the string `{v}`"),
            ValueKind::Null => "nothing (null)".to_string(),
            ValueKind::Bool(v) => format!("the boolean `{v}`"),
            ValueKind::Int(v) => format!("the integer `{v}`"),
            ValueKind::Float(v) => format!("the number `{v}`"),
            ValueKind::Mapping => "a mapping".to_string(),
            ValueKind::Sequence => "a list".to_string(),
        }
    }
}

/// The kind of value at `path` and the line of its key (None if the path
/// does not exist). Aliases and merge keys are followed, as by [`get`].
pub fn kind(text: &str, path: &[String]) -> Result<Option<(ValueKind, usize)>, YamlEditError> {
    check_path(path)?;
    let parsed = parse(text)?;
    let doc = Doc::new(text, &parsed);
    let Some((node, line)) = doc.node_at(path)? else {
        return Ok(None);
    };
    let kind = match &node.kind {
        Kind::Mapping { .. } => ValueKind::Mapping,
        Kind::Sequence { .. } => ValueKind::Sequence,
        Kind::Alias(_) => unreachable!("node_at dereferences aliases"),
        Kind::Scalar { value, style } => {
            let tag = node.tag.as_deref();
            if *style != ScalarStyle::Plain || tag == Some("tag:yaml.org,2002:str") {
                ValueKind::String(value.clone())
            } else if node.is_null() {
                ValueKind::Null
            } else {
                match (tag, classify(value)) {
                    (Some("tag:yaml.org,2002:bool"), _) | (None, Class::Bool) => {
                        ValueKind::Bool(value.clone())
                    }
                    (Some("tag:yaml.org,2002:int"), _) | (None, Class::Int) => {
                        ValueKind::Int(value.clone())
                    }
                    (Some("tag:yaml.org,2002:float"), _) | (None, Class::Float) => {
                        ValueKind::Float(value.clone())
                    }
                    _ => ValueKind::String(value.clone()),
                }
            }
        }
    };
    Ok(Some((kind, line)))
}

/// The keys of the mapping at `path` (the top level for an empty path), each
/// with its line; merged keys (`<<`) included. None when the path does not
/// exist or does not hold a mapping.
pub fn keys(text: &str, path: &[String]) -> Result<Option<Vec<(String, usize)>>, YamlEditError> {
    if path.iter().any(String::is_empty) {
        check_path(path)?;
    }
    let parsed = parse(text)?;
    let doc = Doc::new(text, &parsed);
    let node = if path.is_empty() {
        match doc.root {
            Some(root) => doc.deref(root, path)?,
            None => return Ok(None),
        }
    } else {
        match doc.node_at(path)? {
            Some((node, _)) => node,
            None => return Ok(None),
        }
    };
    let mut out = Vec::new();
    doc.collect_keys(node, path, 0, &mut out)?;
    Ok(matches!(node.kind, Kind::Mapping { .. }).then_some(out))
}

fn check_path(path: &[String]) -> Result<(), YamlEditError> {
    if path.is_empty() {
        return Err(YamlEditError::InvalidPath {
            path: String::new(),
            reason: "the path is empty".to_string(),
        });
    }
    if path.iter().any(String::is_empty) {
        return Err(YamlEditError::InvalidPath {
            path: format_path(path),
            reason: "a key is empty".to_string(),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Node tree built from the parser's events, with byte positions.

const MAX_DEPTH: usize = 256;
const MAX_MERGE_DEPTH: usize = 32;

#[derive(Debug)]
struct Node {
    kind: Kind,
    /// Anchor id from the parser (0: none).
    anchor: usize,
    /// Resolved tag (`tag:yaml.org,2002:str`), if any.
    tag: Option<String>,
    /// Byte offset where the node starts (at its first property, if any).
    start: usize,
    /// Byte offset where the parser says the node ends (unreliable for quoted
    /// scalars, which may include trailing blanks).
    end: usize,
    /// 1-based line of `start`.
    line: usize,
    /// 0-based column of `start`, in characters.
    col: usize,
    /// 1-based line of `end`.
    end_line: usize,
    /// Whether the node sits inside a flow collection.
    in_flow: bool,
    /// Byte offset just after the node's last content byte.
    content_end: usize,
}

#[derive(Debug)]
enum Kind {
    Scalar {
        value: String,
        style: ScalarStyle,
    },
    Mapping {
        flow: bool,
        entries: Vec<(Node, Node)>,
    },
    Sequence {
        flow: bool,
        items: Vec<Node>,
    },
    Alias(usize),
}

impl Node {
    fn describe(&self) -> &'static str {
        match self.kind {
            Kind::Scalar { .. } => "a scalar",
            Kind::Mapping { .. } => "a mapping",
            Kind::Sequence { .. } => "a sequence",
            Kind::Alias(_) => "an alias",
        }
    }

    fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { value, style: ScalarStyle::Plain }
            if self.tag.is_none() && matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    fn is_merge_key(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { value, style: ScalarStyle::Plain } if value == "<<")
            && self
                .tag
                .as_deref()
                .is_none_or(|t| t == "tag:yaml.org,2002:merge")
    }

    fn scalar_value(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }
}

struct Parsed {
    docs: Vec<Node>,
    /// A syntax error after the first document was complete.
    later_error: Option<String>,
}

enum BuildError {
    Truncated,
    TooDeep(usize),
    Unexpected(usize),
}

struct Builder<'t> {
    text: &'t str,
    offsets: Vec<usize>,
    events: std::iter::Peekable<std::vec::IntoIter<(Event<'t>, Span)>>,
}

impl<'t> Builder<'t> {
    fn off(&self, char_index: usize) -> usize {
        self.offsets
            .get(char_index)
            .copied()
            .unwrap_or(self.text.len())
    }

    fn next(&mut self) -> Result<(Event<'t>, Span), BuildError> {
        self.events.next().ok_or(BuildError::Truncated)
    }

    fn node(&mut self, in_flow: bool, depth: usize) -> Result<Node, BuildError> {
        let (event, span) = self.next()?;
        let start = self.off(span.start.index());
        let end = self.off(span.end.index()).max(start);
        let line = span.start.line();
        if depth > MAX_DEPTH {
            return Err(BuildError::TooDeep(line));
        }
        let mut node = Node {
            kind: Kind::Alias(0),
            anchor: 0,
            tag: None,
            start,
            end,
            line,
            col: span.start.col(),
            end_line: span.end.line(),
            in_flow,
            content_end: end,
        };
        let opener = self.text[start..end].trim_end();
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                node.anchor = anchor;
                node.tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                match style {
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
                        let body = skip_properties(self.text, start, in_flow);
                        if let Some((quoted_end, _)) = scan_quoted(self.text, body, style) {
                            node.content_end = quoted_end;
                        }
                    }
                    ScalarStyle::Literal | ScalarStyle::Folded => {
                        node.content_end = block_scalar_end(self.text, start, end);
                    }
                    ScalarStyle::Plain => {}
                }
                node.kind = Kind::Scalar {
                    value: value.into_owned(),
                    style,
                };
            }
            Event::Alias(id) => node.kind = Kind::Alias(id),
            Event::MappingStart(anchor, tag) => {
                node.anchor = anchor;
                node.tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                let flow = in_flow || opener.ends_with('{');
                let mut entries = Vec::new();
                let close_end = loop {
                    match self.events.peek() {
                        None => return Err(BuildError::Truncated),
                        Some((Event::MappingEnd, _)) => {
                            let (_, s) = self.next()?;
                            break self.off(s.end.index());
                        }
                        Some(_) => {
                            let k = self.node(flow, depth + 1)?;
                            let v = self.node(flow, depth + 1)?;
                            entries.push((k, v));
                        }
                    }
                };
                node.content_end = if flow {
                    close_end
                } else {
                    entries
                        .iter()
                        .map(|(k, v)| k.content_end.max(v.content_end))
                        .max()
                        .unwrap_or(start)
                };
                node.kind = Kind::Mapping { flow, entries };
            }
            Event::SequenceStart(anchor, tag) => {
                node.anchor = anchor;
                node.tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                let flow = in_flow || opener.ends_with('[');
                let mut items = Vec::new();
                let close_end = loop {
                    match self.events.peek() {
                        None => return Err(BuildError::Truncated),
                        Some((Event::SequenceEnd, _)) => {
                            let (_, s) = self.next()?;
                            break self.off(s.end.index());
                        }
                        Some(_) => items.push(self.node(flow, depth + 1)?),
                    }
                };
                node.content_end = if flow {
                    close_end
                } else {
                    items.iter().map(|n| n.content_end).max().unwrap_or(start)
                };
                node.kind = Kind::Sequence { flow, items };
            }
            _ => return Err(BuildError::Unexpected(line)),
        }
        Ok(node)
    }
}

/// Parse every document of `text`. An error inside the first document is a
/// [`YamlEditError::Parse`]; an error after it is only recorded.
fn parse(text: &str) -> Result<Parsed, YamlEditError> {
    // The parser's markers count characters; this maps them to byte offsets.
    let offsets: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect();
    let mut parser = Parser::new_from_str(text);
    let mut events = Vec::new();
    let mut scan_error = None;
    while let Some(item) = parser.next_event() {
        match item {
            Ok(event) => events.push(event),
            Err(e) => {
                scan_error = Some(e);
                break;
            }
        }
    }
    let mut builder = Builder {
        text,
        offsets,
        events: events.into_iter().peekable(),
    };
    let mut docs = Vec::new();
    let mut failure = None;
    match builder.next() {
        Ok((Event::StreamStart, _)) => {}
        Ok((_, span)) => failure = Some(BuildError::Unexpected(span.start.line())),
        Err(e) => failure = Some(e),
    }
    while failure.is_none() {
        match builder.next() {
            Ok((Event::DocumentStart(_), _)) => match builder.node(false, 0) {
                Ok(root) => match builder.next() {
                    Ok((Event::DocumentEnd, _)) => docs.push(root),
                    Ok((_, span)) => failure = Some(BuildError::Unexpected(span.start.line())),
                    Err(e) => failure = Some(e),
                },
                Err(e) => failure = Some(e),
            },
            Ok((Event::StreamEnd, _)) => break,
            Ok((_, span)) => failure = Some(BuildError::Unexpected(span.start.line())),
            Err(e) => failure = Some(e),
        }
    }
    let Some(failure) = failure else {
        return Ok(Parsed {
            docs,
            later_error: None,
        });
    };
    let error = match (failure, scan_error) {
        (BuildError::TooDeep(line), _) => YamlEditError::Parse {
            line,
            column: 1,
            message: format!("nesting deeper than {MAX_DEPTH} levels"),
        },
        (_, Some(e)) => YamlEditError::Parse {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: if e.info().contains("found a tab") {
                // What to change: the parser only says where.
                format!("{}: YAML indents with spaces only", e.info())
            } else {
                e.info().to_string()
            },
        },
        (BuildError::Unexpected(line), None) => YamlEditError::Parse {
            line,
            column: 1,
            message: "unexpected parser event".to_string(),
        },
        (BuildError::Truncated, None) => YamlEditError::Parse {
            line: text.lines().count().max(1),
            column: 1,
            message: "unexpected end of the event stream".to_string(),
        },
    };
    if docs.is_empty() {
        Err(error)
    } else {
        Ok(Parsed {
            docs,
            later_error: Some(error.to_string()),
        })
    }
}

// ---------------------------------------------------------------------------
// Navigation.

/// An alias use: the anchor's name and the line of the first `*name`.
struct AliasUse {
    name: String,
    line: usize,
}

struct Doc<'a> {
    text: &'a str,
    root: Option<&'a Node>,
    anchors: HashMap<usize, &'a Node>,
    aliases: HashMap<usize, AliasUse>,
}

enum Target<'a> {
    Existing {
        node: &'a Node,
        key: &'a Node,
        index: Vec<usize>,
    },
    Missing {
        parent: &'a Node,
        index: Vec<usize>,
    },
}

/// Where a key was found: locally (with its entry index) or through a merge.
struct Found<'a> {
    node: &'a Node,
    local: Option<usize>,
    merge: Option<MergeVia>,
}

#[derive(Clone)]
struct MergeVia {
    /// Name of the merged anchor (`None` for an inline mapping after `<<:`).
    anchor: Option<String>,
    line: usize,
}

impl<'a> Doc<'a> {
    fn new(text: &'a str, parsed: &'a Parsed) -> Self {
        let mut doc = Doc {
            text,
            root: parsed.docs.first(),
            anchors: HashMap::new(),
            aliases: HashMap::new(),
        };
        if let Some(root) = doc.root {
            doc.index(root);
        }
        doc
    }

    fn index(&mut self, node: &'a Node) {
        if node.anchor != 0 {
            self.anchors.insert(node.anchor, node);
        }
        match &node.kind {
            Kind::Alias(id) => {
                let name = self.alias_name(node);
                self.aliases.entry(*id).or_insert(AliasUse {
                    name,
                    line: node.line,
                });
            }
            Kind::Mapping { entries, .. } => {
                for (k, v) in entries {
                    self.index(k);
                    self.index(v);
                }
            }
            Kind::Sequence { items, .. } => {
                for item in items {
                    self.index(item);
                }
            }
            Kind::Scalar { .. } => {}
        }
    }

    fn alias_name(&self, node: &Node) -> String {
        self.text[node.start..node.end]
            .trim()
            .trim_start_matches('*')
            .to_string()
    }

    fn deref(&self, mut node: &'a Node, path: &[String]) -> Result<&'a Node, YamlEditError> {
        for _ in 0..MAX_MERGE_DEPTH {
            let Kind::Alias(id) = node.kind else {
                return Ok(node);
            };
            node = self
                .anchors
                .get(&id)
                .copied()
                .ok_or_else(|| YamlEditError::Unsupported {
                    path: format_path(path),
                    line: node.line,
                    reason: format!(
                        "the alias `*{}` does not refer to an anchor of this document",
                        self.alias_name(node)
                    ),
                })?;
        }
        Err(YamlEditError::Unsupported {
            path: format_path(path),
            line: node.line,
            reason: "aliases nest too deeply".to_string(),
        })
    }

    /// The mappings merged into `map` by `<<` keys, in precedence order.
    fn merge_sources(
        &self,
        map: &'a Node,
        path: &[String],
    ) -> Result<Vec<(&'a Node, MergeVia)>, YamlEditError> {
        let mut sources = Vec::new();
        let Kind::Mapping { entries, .. } = &map.kind else {
            return Ok(sources);
        };
        for (key, value) in entries.iter().filter(|(k, _)| k.is_merge_key()) {
            let items: Vec<&'a Node> = match &value.kind {
                Kind::Sequence { items, .. } => items.iter().collect(),
                _ => vec![value],
            };
            for item in items {
                let via = MergeVia {
                    anchor: matches!(item.kind, Kind::Alias(_)).then(|| self.alias_name(item)),
                    line: key.line,
                };
                let target = self.deref(item, path)?;
                if matches!(target.kind, Kind::Mapping { .. }) {
                    sources.push((target, via));
                }
            }
        }
        Ok(sources)
    }

    /// Look `key` up in the mapping `map`: its own entries first, then the
    /// mappings merged by `<<` keys.
    fn lookup(
        &self,
        map: &'a Node,
        key: &str,
        path: &[String],
        depth: usize,
    ) -> Result<Option<Found<'a>>, YamlEditError> {
        let Kind::Mapping { entries, .. } = &map.kind else {
            return Ok(None);
        };
        let mut local = entries
            .iter()
            .enumerate()
            .filter(|(_, (k, _))| k.scalar_value() == Some(key) && !k.is_merge_key());
        if let Some((index, (_, value))) = local.next() {
            if let Some((_, (dup, _))) = local.next() {
                return Err(YamlEditError::Unsupported {
                    path: format_path(path),
                    line: dup.line,
                    reason: format!(
                        "the key `{key}` appears twice in the same mapping (lines {} and {}); fix the duplicate by hand",
                        entries[index].0.line, dup.line
                    ),
                });
            }
            return Ok(Some(Found {
                node: value,
                local: Some(index),
                merge: None,
            }));
        }
        if depth >= MAX_MERGE_DEPTH {
            return Ok(None);
        }
        for (source, via) in self.merge_sources(map, path)? {
            if let Some(found) = self.lookup(source, key, path, depth + 1)? {
                return Ok(Some(Found {
                    node: found.node,
                    local: None,
                    merge: Some(via),
                }));
            }
        }
        Ok(None)
    }

    /// The node at `path` (aliases followed) and the line of its key.
    fn node_at(&self, path: &[String]) -> Result<Option<(&'a Node, usize)>, YamlEditError> {
        let Some(mut current) = self.root else {
            return Ok(None);
        };
        let mut line = current.line;
        for (i, key) in path.iter().enumerate() {
            current = self.deref(current, path)?;
            if current.is_null() {
                return Ok(None);
            }
            if !matches!(current.kind, Kind::Mapping { .. }) {
                return Err(not_a_mapping(path, i, current));
            }
            match self.lookup(current, key, path, 0)? {
                Some(found) => {
                    if let (Some(j), Kind::Mapping { entries, .. }) = (found.local, &current.kind) {
                        line = entries[j].0.line;
                    } else {
                        line = found.node.line;
                    }
                    current = found.node;
                }
                None => return Ok(None),
            }
        }
        Ok(Some((self.deref(current, path)?, line)))
    }

    /// The keys of `map`, its own first, then those merged in by `<<`.
    fn collect_keys(
        &self,
        map: &'a Node,
        path: &[String],
        depth: usize,
        out: &mut Vec<(String, usize)>,
    ) -> Result<(), YamlEditError> {
        let Kind::Mapping { entries, .. } = &map.kind else {
            return Ok(());
        };
        for (k, _) in entries.iter().filter(|(k, _)| !k.is_merge_key()) {
            if let Some(v) = k.scalar_value() {
                if !out.iter().any(|(seen, _)| seen == v) {
                    out.push((v.to_string(), k.line));
                }
            }
        }
        if depth < MAX_MERGE_DEPTH {
            for (source, _) in self.merge_sources(map, path)? {
                self.collect_keys(source, path, depth + 1, out)?;
            }
        }
        Ok(())
    }

    /// Read the scalar at `path`, following aliases and merge keys.
    fn read(&self, path: &[String]) -> Result<Option<String>, YamlEditError> {
        let Some((current, _)) = self.node_at(path)? else {
            return Ok(None);
        };
        match &current.kind {
            Kind::Scalar { value, .. } => Ok(Some(value.clone())),
            _ => Err(YamlEditError::NotAScalar {
                path: format_path(path),
                line: current.line,
                found: current.describe().to_string(),
            }),
        }
    }

    /// Refuse nodes whose edit would reach other places of the document.
    fn check_writable(
        &self,
        node: &Node,
        path: &[String],
        depth: usize,
    ) -> Result<(), YamlEditError> {
        let what = if depth == path.len() {
            "the value".to_string()
        } else if depth == 0 {
            "the document's top-level node".to_string()
        } else {
            format!("`{}`", format_path(&path[..depth]))
        };
        if let Kind::Alias(_) = node.kind {
            let name = self.alias_name(node);
            return Err(YamlEditError::Alias {
                path: format_path(path),
                anchor: name.clone(),
                line: node.line,
                detail: format!(
                    "{what} is the alias `*{name}`; editing through it would change every user of the anchor `&{name}`: edit the anchor's definition or replace the alias by hand"
                ),
            });
        }
        if node.anchor != 0 {
            if let Some(used) = self.aliases.get(&node.anchor) {
                return Err(YamlEditError::Alias {
                    path: format_path(path),
                    anchor: used.name.clone(),
                    line: node.line,
                    detail: format!(
                        "{what} (line {}) carries the anchor `&{}`, which is used elsewhere (`*{}` at line {}); editing it would change every user of the anchor: edit by hand",
                        node.line, used.name, used.name, used.line
                    ),
                });
            }
        }
        Ok(())
    }

    /// Find what `set` should change, refusing shared (anchored) values.
    fn write_target(&self, path: &[String]) -> Result<Target<'a>, YamlEditError> {
        let Some(mut current) = self.root else {
            return Err(YamlEditError::Unsupported {
                path: format_path(path),
                line: 1,
                reason: "the document is empty; add the key by hand".to_string(),
            });
        };
        let mut index = Vec::new();
        let mut current_key: Option<&'a Node> = None;
        for (i, key) in path.iter().enumerate() {
            self.check_writable(current, path, i)?;
            let last = i + 1 == path.len();
            if current.is_null() {
                let line = current_key.map_or(current.line, |k| k.line);
                if last {
                    let parent = if i == 0 {
                        "the document".to_string()
                    } else {
                        format!("`{}`", format_path(&path[..i]))
                    };
                    return Err(YamlEditError::Unsupported {
                        path: format_path(path),
                        line,
                        reason: format!(
                            "{parent} is empty (no mapping under it), so there is no sibling to copy the layout from; add `{key}` by hand"
                        ),
                    });
                }
                return Err(not_found(path, i, line));
            }
            if !matches!(current.kind, Kind::Mapping { .. }) {
                return Err(not_a_mapping(path, i, current));
            }
            match self.lookup(current, key, path, 0)? {
                Some(Found {
                    node,
                    local: Some(j),
                    ..
                }) => {
                    let Kind::Mapping { entries, .. } = &current.kind else {
                        unreachable!("checked above");
                    };
                    index.push(j);
                    current_key = Some(&entries[j].0);
                    current = node;
                }
                Some(Found {
                    merge: Some(via), ..
                }) if !last => {
                    let prefix = format_path(&path[..=i]);
                    return Err(match via.anchor {
                        Some(anchor) => YamlEditError::Alias {
                            path: format_path(path),
                            line: via.line,
                            detail: format!(
                                "`{prefix}` exists only through the merge key `<<: *{anchor}` (line {}); editing it would change every user of the anchor `&{anchor}`: add a local `{key}:` mapping by hand",
                                via.line
                            ),
                            anchor,
                        },
                        None => YamlEditError::Unsupported {
                            path: format_path(path),
                            line: via.line,
                            reason: format!(
                                "`{prefix}` exists only through the merge key `<<` (line {}); edit by hand",
                                via.line
                            ),
                        },
                    });
                }
                // Missing, or the last key exists only through a merge: a
                // local entry is inserted (it overrides the merged one).
                Some(_) | None if last => {
                    return Ok(Target::Missing {
                        parent: current,
                        index,
                    })
                }
                _ => {
                    let line = current_key.map_or(current.line, |k| k.line);
                    return Err(not_found(path, i, line));
                }
            }
        }
        self.check_writable(current, path, path.len())?;
        Ok(Target::Existing {
            node: current,
            key: current_key.expect("the path is not empty"),
            index,
        })
    }

    fn unsupported(
        &self,
        path: &[String],
        line: usize,
        reason: impl Into<String>,
    ) -> YamlEditError {
        YamlEditError::Unsupported {
            path: format_path(path),
            line,
            reason: reason.into(),
        }
    }

    fn plan_replace(
        &self,
        path: &[String],
        node: &Node,
        key: &Node,
        index: Vec<usize>,
        value: &str,
    ) -> Result<Plan, YamlEditError> {
        let Kind::Scalar { value: old, style } = &node.kind else {
            return Err(YamlEditError::NotAScalar {
                path: format_path(path),
                line: key.line,
                found: node.describe().to_string(),
            });
        };
        let text = self.text;
        let line = key.line;
        let (start, end, prefix) = match style {
            ScalarStyle::Literal | ScalarStyle::Folded => {
                return Err(self.unsupported(
                    path,
                    line,
                    "the value is a block scalar (`|` or `>`); edit it by hand",
                ))
            }
            ScalarStyle::Plain if old.is_empty() => {
                if node.end > node.start {
                    return Err(self.unsupported(
                        path,
                        line,
                        "the value is empty but carries a tag or an anchor; edit it by hand",
                    ));
                }
                // `key:` with nothing after it: write ` value` after the colon.
                let colon = scalar_extent(text, key)
                    .map(|(_, key_end)| skip_blanks(text, key_end))
                    .filter(|&at| text.as_bytes().get(at) == Some(&b':'))
                    .ok_or_else(|| {
                        self.unsupported(
                            path,
                            line,
                            "cannot locate the `:` after the key of this empty value; edit it by hand",
                        )
                    })?;
                (colon + 1, colon + 1, " ")
            }
            _ => {
                let multi_line = || {
                    self.unsupported(path, line, "the value spans several lines; edit it by hand")
                };
                if *style == ScalarStyle::Plain && node.end_line != node.line {
                    return Err(multi_line());
                }
                let body = skip_properties(text, node.start, node.in_flow);
                let end = match style {
                    ScalarStyle::Plain => {
                        let end = scan_plain(text, body, node.in_flow);
                        if text[body..end] != **old {
                            return Err(self.unsupported(
                                path,
                                line,
                                "cannot locate the value's text exactly; edit it by hand",
                            ));
                        }
                        end
                    }
                    _ => match scan_quoted(text, body, *style) {
                        Some((end, false)) => end,
                        Some((_, true)) => return Err(multi_line()),
                        None => {
                            return Err(self.unsupported(
                                path,
                                line,
                                "cannot locate the value's quotes; edit it by hand",
                            ))
                        }
                    },
                };
                (body, end, "")
            }
        };
        let forced_str = node.tag.as_deref() == Some("tag:yaml.org,2002:str");
        let mut candidates = Vec::new();
        let (repr, new_style) = render(value, *style, old, forced_str, node.in_flow);
        let fallback = new_style != ScalarStyle::DoubleQuoted;
        candidates.push(Candidate {
            replacement: format!("{prefix}{repr}"),
            patch: Patch::Replace {
                value: value.to_string(),
                style: new_style,
            },
        });
        if fallback {
            candidates.push(Candidate {
                replacement: format!("{prefix}{}", double_quote(value)),
                patch: Patch::Replace {
                    value: value.to_string(),
                    style: ScalarStyle::DoubleQuoted,
                },
            });
        }
        Ok(Plan {
            start,
            end,
            index,
            candidates,
        })
    }

    fn plan_insert(
        &self,
        path: &[String],
        parent: &Node,
        index: Vec<usize>,
        value: &str,
    ) -> Result<Plan, YamlEditError> {
        let key = path.last().expect("the path is not empty");
        let Kind::Mapping { flow, entries } = &parent.kind else {
            return Err(not_a_mapping(path, path.len() - 1, parent));
        };
        let parent_name = if path.len() == 1 {
            "the top-level mapping".to_string()
        } else {
            format!("`{}`", format_path(&path[..path.len() - 1]))
        };
        if *flow || entries.is_empty() {
            let written = if entries.is_empty() {
                "an empty mapping (`{}`)"
            } else {
                "a flow mapping (`{ ... }`)"
            };
            return Err(self.unsupported(
                path,
                parent.line,
                format!("{parent_name} is {written}; add `{key}` by hand"),
            ));
        }
        let text = self.text;
        let bytes = text.as_bytes();
        let indent = " ".repeat(entries[0].0.col);
        let last_end = parent.content_end;
        let (at, leading_eol) = if last_end > 0 && bytes[last_end - 1] == b'\n' {
            (last_end, false)
        } else {
            match text[last_end..].find('\n') {
                Some(k) => (last_end + k + 1, false),
                None => (text.len(), true),
            }
        };
        if leading_eol && ends_in_block_scalar(parent) {
            return Err(self.unsupported(
                path,
                parent.line,
                format!(
                    "{parent_name} ends with a block scalar (`|` or `>`) on the file's last line, which has no final newline; adding a line after it would change that value: add `{key}` by hand"
                ),
            ));
        }
        let eol = if !leading_eol {
            if at >= 2 && bytes[at - 2] == b'\r' {
                "\r\n"
            } else {
                "\n"
            }
        } else if text.contains("\r\n") {
            "\r\n"
        } else {
            "\n"
        };
        let (key_repr, key_style) = render_new(key);
        let mut candidates = Vec::new();
        let (value_repr, value_style) = render_new(value);
        let mut styles = vec![(value_repr, value_style)];
        if value_style != ScalarStyle::DoubleQuoted {
            styles.push((double_quote(value), ScalarStyle::DoubleQuoted));
        }
        for (value_repr, value_style) in styles {
            let line = format!("{indent}{key_repr}: {value_repr}");
            candidates.push(Candidate {
                replacement: if leading_eol {
                    format!("{eol}{line}")
                } else {
                    format!("{line}{eol}")
                },
                patch: Patch::Append {
                    key: key.clone(),
                    key_style,
                    value: value.to_string(),
                    value_style,
                },
            });
        }
        Ok(Plan {
            start: at,
            end: at,
            index,
            candidates,
        })
    }
}

/// Whether the last line of a block collection's content belongs to a block
/// scalar (whose value would take in a line break added after it).
fn ends_in_block_scalar(node: &Node) -> bool {
    let last = match &node.kind {
        Kind::Mapping {
            flow: false,
            entries,
        } => entries
            .iter()
            .flat_map(|(k, v)| [k, v])
            .max_by_key(|n| n.content_end),
        Kind::Sequence { flow: false, items } => items.iter().max_by_key(|n| n.content_end),
        Kind::Scalar {
            style: ScalarStyle::Literal | ScalarStyle::Folded,
            ..
        } => return true,
        _ => None,
    };
    last.is_some_and(ends_in_block_scalar)
}

fn not_found(path: &[String], i: usize, line: usize) -> YamlEditError {
    YamlEditError::NotFound {
        path: format_path(path),
        missing_key: path[i].clone(),
        parent: format_path(&path[..i]),
        line,
    }
}

fn not_a_mapping(path: &[String], i: usize, node: &Node) -> YamlEditError {
    YamlEditError::NotAMapping {
        path: format_path(path),
        key: format_path(&path[..i]),
        line: node.line,
        found: node.describe().to_string(),
    }
}

// ---------------------------------------------------------------------------
// Edit plans and the read-back check.

struct Plan {
    /// Byte range replaced (empty for an insertion).
    start: usize,
    end: usize,
    /// Entry indexes from the root to the edited scalar (or to the mapping
    /// that receives an inserted entry).
    index: Vec<usize>,
    /// Replacements to try in order; the first that reads back wins.
    candidates: Vec<Candidate>,
}

struct Candidate {
    replacement: String,
    patch: Patch,
}

enum Patch {
    Replace {
        value: String,
        style: ScalarStyle,
    },
    Append {
        key: String,
        key_style: ScalarStyle,
        value: String,
        value_style: ScalarStyle,
    },
}

/// Parse `new_text` and check it equals the original documents with only the
/// patch applied, and that `get` reads `value` back.
fn verify(
    original: &Parsed,
    new_text: &str,
    index: &[usize],
    patch: &Patch,
    path: &[String],
    value: &str,
) -> Result<(), String> {
    let new = parse(new_text).map_err(|e| format!("the edited text does not parse: {e}"))?;
    if new.docs.len() != original.docs.len()
        || new.later_error.is_some() != original.later_error.is_some()
    {
        return Err("the number of documents changed".to_string());
    }
    if !same_patched(&original.docs[0], &new.docs[0], index, patch) {
        return Err("the document's structure or other values changed".to_string());
    }
    if !original.docs[1..]
        .iter()
        .zip(&new.docs[1..])
        .all(|(a, b)| same(a, b))
    {
        return Err("a later document changed".to_string());
    }
    let doc = Doc::new(new_text, &new);
    match doc.read(path) {
        Ok(Some(v)) if v == value => Ok(()),
        Ok(Some(other)) => Err(format!("reading the path back gives `{other}`")),
        Ok(None) => Err("reading the path back finds nothing".to_string()),
        Err(e) => Err(format!("reading the path back fails: {e}")),
    }
}

fn same(a: &Node, b: &Node) -> bool {
    a.anchor == b.anchor
        && a.tag == b.tag
        && match (&a.kind, &b.kind) {
            (
                Kind::Scalar {
                    value: va,
                    style: sa,
                },
                Kind::Scalar {
                    value: vb,
                    style: sb,
                },
            ) => va == vb && sa == sb,
            (
                Kind::Mapping {
                    flow: fa,
                    entries: ea,
                },
                Kind::Mapping {
                    flow: fb,
                    entries: eb,
                },
            ) => {
                fa == fb
                    && ea.len() == eb.len()
                    && ea
                        .iter()
                        .zip(eb)
                        .all(|((ka, va), (kb, vb))| same(ka, kb) && same(va, vb))
            }
            (
                Kind::Sequence {
                    flow: fa,
                    items: ia,
                },
                Kind::Sequence {
                    flow: fb,
                    items: ib,
                },
            ) => fa == fb && ia.len() == ib.len() && ia.iter().zip(ib).all(|(x, y)| same(x, y)),
            (Kind::Alias(x), Kind::Alias(y)) => x == y,
            _ => false,
        }
}

fn is_plain_scalar(node: &Node, value: &str, style: ScalarStyle) -> bool {
    node.anchor == 0
        && node.tag.is_none()
        && matches!(&node.kind, Kind::Scalar { value: v, style: s } if v == value && *s == style)
}

fn same_patched(a: &Node, b: &Node, index: &[usize], patch: &Patch) -> bool {
    if a.anchor != b.anchor || a.tag != b.tag {
        return false;
    }
    match (&a.kind, &b.kind, index.split_first()) {
        (
            Kind::Mapping {
                flow: fa,
                entries: ea,
            },
            Kind::Mapping {
                flow: fb,
                entries: eb,
            },
            Some((&target, rest)),
        ) => {
            fa == fb
                && ea.len() == eb.len()
                && ea
                    .iter()
                    .zip(eb)
                    .enumerate()
                    .all(|(j, ((ka, va), (kb, vb)))| {
                        same(ka, kb)
                            && if j == target {
                                same_patched(va, vb, rest, patch)
                            } else {
                                same(va, vb)
                            }
                    })
        }
        (Kind::Scalar { .. }, Kind::Scalar { value, style }, None) => {
            matches!(patch, Patch::Replace { value: v, style: s } if v == value && s == style)
        }
        (
            Kind::Mapping {
                flow: fa,
                entries: ea,
            },
            Kind::Mapping {
                flow: fb,
                entries: eb,
            },
            None,
        ) => {
            let Patch::Append {
                key,
                key_style,
                value,
                value_style,
            } = patch
            else {
                return false;
            };
            fa == fb
                && eb.len() == ea.len() + 1
                && ea
                    .iter()
                    .zip(eb)
                    .all(|((ka, va), (kb, vb))| same(ka, kb) && same(va, vb))
                && is_plain_scalar(&eb[ea.len()].0, key, *key_style)
                && is_plain_scalar(&eb[ea.len()].1, value, *value_style)
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// Locating scalars in the text.

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn is_break(b: u8) -> bool {
    b == b'\n' || b == b'\r'
}

fn is_flow_indicator(b: u8) -> bool {
    matches!(b, b',' | b'[' | b']' | b'{' | b'}')
}

fn skip_blanks(text: &str, mut at: usize) -> usize {
    let bytes = text.as_bytes();
    while at < bytes.len() && is_blank(bytes[at]) {
        at += 1;
    }
    at
}

/// Skip the anchor (`&a`) and tag (`!!str`, `!<...>`) in front of a node, and
/// the blanks after them (not line breaks).
fn skip_properties(text: &str, start: usize, in_flow: bool) -> usize {
    let bytes = text.as_bytes();
    let mut at = start;
    loop {
        match bytes.get(at) {
            Some(b'!') if bytes.get(at + 1) == Some(&b'<') => match text[at..].find('>') {
                Some(k) => at += k + 1,
                None => return at,
            },
            Some(b'&' | b'!') => {
                at += 1;
                while let Some(&b) = bytes.get(at) {
                    if is_blank(b) || is_break(b) || (in_flow && is_flow_indicator(b)) {
                        break;
                    }
                    at += 1;
                }
            }
            _ => return at,
        }
        at = skip_blanks(text, at);
    }
}

/// End of a single-line plain scalar starting at `start` (trailing blanks
/// excluded): it stops at a line break, ` #`, `: ` and, in flow context, at
/// flow indicators.
fn scan_plain(text: &str, start: usize, in_flow: bool) -> usize {
    let bytes = text.as_bytes();
    let mut at = start;
    let mut end = start;
    while at < bytes.len() {
        let b = bytes[at];
        if is_break(b) {
            break;
        }
        if b == b'#' && at > start && is_blank(bytes[at - 1]) {
            break;
        }
        if b == b':' {
            match bytes.get(at + 1) {
                None => break,
                Some(&n) if is_blank(n) || is_break(n) || (in_flow && is_flow_indicator(n)) => {
                    break
                }
                _ => {}
            }
        }
        if in_flow && is_flow_indicator(b) {
            break;
        }
        at += 1;
        if !is_blank(b) {
            end = at;
        }
    }
    end
}

/// End (after the closing quote) of a quoted scalar starting at `start`, and
/// whether it spans several lines. None if `start` is not at a quote or the
/// quote is not closed.
fn scan_quoted(text: &str, start: usize, style: ScalarStyle) -> Option<(usize, bool)> {
    let bytes = text.as_bytes();
    let quote = match style {
        ScalarStyle::SingleQuoted => b'\'',
        ScalarStyle::DoubleQuoted => b'"',
        _ => return None,
    };
    if bytes.get(start) != Some(&quote) {
        return None;
    }
    let mut multi_line = false;
    let mut at = start + 1;
    while at < bytes.len() {
        let b = bytes[at];
        if is_break(b) {
            multi_line = true;
        } else if quote == b'\'' && b == b'\'' {
            if bytes.get(at + 1) == Some(&b'\'') {
                at += 1;
            } else {
                return Some((at + 1, multi_line));
            }
        } else if quote == b'"' && b == b'\\' {
            if bytes.get(at + 1).is_some_and(|&n| is_break(n)) {
                multi_line = true;
            }
            at += 1;
        } else if quote == b'"' && b == b'"' {
            return Some((at + 1, multi_line));
        }
        at += 1;
    }
    None
}

/// End of a block scalar's content whose span is `start..end`: after the line
/// break of its last non-blank line at least as indented as its first one.
/// (The parser's span may run on over the comment lines that follow.)
fn block_scalar_end(text: &str, start: usize, end: usize) -> usize {
    let mut indent = None;
    let mut content_end = start;
    let mut line_start = text[..start].rfind('\n').map_or(0, |k| k + 1);
    while line_start < end {
        let line_end = text[line_start..]
            .find('\n')
            .map_or(text.len(), |k| line_start + k + 1);
        let line = &text[line_start..line_end];
        let body = line.trim_start_matches(' ');
        if !body.trim().is_empty() {
            let width = line.len() - body.len();
            let required = *indent.get_or_insert(width);
            if width < required {
                break;
            }
            content_end = line_end;
        }
        line_start = line_end;
    }
    content_end.max(start)
}

/// The byte range of a single-line scalar's text (quotes included).
fn scalar_extent(text: &str, node: &Node) -> Option<(usize, usize)> {
    let Kind::Scalar { value, style } = &node.kind else {
        return None;
    };
    let body = skip_properties(text, node.start, node.in_flow);
    match style {
        ScalarStyle::Plain => {
            let end = scan_plain(text, body, node.in_flow);
            (text[body..end] == **value).then_some((body, end))
        }
        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
            match scan_quoted(text, body, *style) {
                Some((end, false)) => Some((body, end)),
                _ => None,
            }
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Writing scalars.

/// What a plain scalar would be read as by a YAML 1.1 or 1.2 reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Str,
    Null,
    Bool,
    Int,
    Float,
    Other,
}

static NULL_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(~|null|Null|NULL)?$").unwrap());
static BOOL_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$",
    )
    .unwrap()
});
static INT_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^[-+]?(0b[01_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*|[1-9][0-9_]*(:[0-5]?[0-9])+)$",
    )
    .unwrap()
});
static FLOAT_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^([-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+]?[0-9]+)?",
        r"|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+",
        r"|[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*",
        r"|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$"
    ))
    .unwrap()
});
static OTHER_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt \t].*)?|<<|=)$").unwrap());
static SMALL_INT_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^-?(0|[1-9][0-9]{0,5})$").unwrap());

fn classify(s: &str) -> Class {
    if NULL_RE.is_match(s) {
        Class::Null
    } else if BOOL_RE.is_match(s) {
        Class::Bool
    } else if INT_RE.is_match(s) {
        Class::Int
    } else if s != "." && FLOAT_RE.is_match(s) {
        Class::Float
    } else if OTHER_RE.is_match(s) {
        Class::Other
    } else {
        Class::Str
    }
}

/// Characters that may appear unescaped inside a scalar on one line.
fn is_safe_char(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// Whether `s` can be written as a plain scalar (conservatively; type
/// resolution is checked separately with [`classify`]).
fn plain_ok(s: &str, in_flow: bool) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) || first == ' ' {
        return false;
    }
    !s.ends_with(' ')
        && !s.ends_with(':')
        && s.chars().all(is_safe_char)
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.starts_with("---")
        && !s.starts_with("...")
        // In flow context libyaml refuses a `:` followed by `?` (or by a
        // flow indicator, excluded above) inside a plain scalar: `{k: x:?}`
        // is "found unexpected ':'". `reg:5000/x` stays plain.
        && !(in_flow && (s.contains([',', '[', ']', '{', '}']) || s.contains(":?")))
}

fn single_ok(s: &str) -> bool {
    s.chars().all(is_safe_char)
}

fn double_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if is_safe_char(c) => out.push(c),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02X}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Whether a plain scalar of the same type may stay plain (see the module
/// docs): booleans set to `true`/`false`, small integers set to small
/// decimal integers.
fn keeps_plain_type(old: &str, new: &str) -> bool {
    match classify(old) {
        Class::Bool => matches!(new, "true" | "false"),
        Class::Int => SMALL_INT_RE.is_match(old) && SMALL_INT_RE.is_match(new),
        _ => false,
    }
}

/// The text of `value` for a scalar written in `old_style`, and its style.
fn render(
    value: &str,
    old_style: ScalarStyle,
    old_value: &str,
    forced_str: bool,
    in_flow: bool,
) -> (String, ScalarStyle) {
    match old_style {
        ScalarStyle::Plain
            if plain_ok(value, in_flow)
                && (forced_str
                    || classify(value) == Class::Str
                    || keeps_plain_type(old_value, value)) =>
        {
            (value.to_string(), ScalarStyle::Plain)
        }
        ScalarStyle::SingleQuoted if single_ok(value) => (
            format!("'{}'", value.replace('\'', "''")),
            ScalarStyle::SingleQuoted,
        ),
        _ => (double_quote(value), ScalarStyle::DoubleQuoted),
    }
}

/// The text of a new key or value in block context: plain when it is safe
/// and reads as a string, double-quoted otherwise.
fn render_new(s: &str) -> (String, ScalarStyle) {
    if plain_ok(s, false) && classify(s) == Class::Str {
        (s.to_string(), ScalarStyle::Plain)
    } else {
        (double_quote(s), ScalarStyle::DoubleQuoted)
    }
}

/// The README's examples, run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod tests {
    /// Found by the property test: `{k0: v1}` edited to `𑀀:?` wrote
    /// `{k0: 𑀀:?}`, which libyaml refuses.
    #[test]
    fn a_colon_in_a_flow_value_is_quoted() {
        assert!(plain_ok("x:?", false));
        assert!(plain_ok("reg:5000/x", true));
        assert!(!plain_ok("x:?", true));
        assert!(!plain_ok("\u{11000}:?", true));
        let doc = "k:\n  m: {a: v1, b: v1}\n";
        let (out, _) = set(doc, &["k".into(), "m".into(), "a".into()], "x:?").unwrap();
        assert_eq!(out, "k:\n  m: {a: \"x:?\", b: v1}\n");
    }

    use super::*;

    fn p(path: &str) -> Vec<String> {
        parse_path(path).unwrap()
    }

    /// `set` must succeed, report a change, and `get` must read it back.
    fn set_ok(text: &str, path: &str, value: &str) -> String {
        let (out, changed) = set(text, &p(path), value)
            .unwrap_or_else(|e| panic!("set {path}={value:?} failed: {e}\n{text}"));
        assert!(changed, "set {path}={value:?} reported no change");
        assert_eq!(get(&out, &p(path)).unwrap().as_deref(), Some(value));
        out
    }

    fn set_err(text: &str, path: &str, value: &str) -> YamlEditError {
        match set(text, &p(path), value) {
            Ok((out, _)) => panic!("set {path}={value:?} should fail, got:\n{out}"),
            Err(e) => e,
        }
    }

    const VALUES: &str = "\
# Default values for openim.
replicaCount: 1

image:
  repository: openim/openim-server # the registry path
  pullPolicy: IfNotPresent
  # Overrides the image tag whose default is the chart appVersion.
  tag: \"\"

service:
  type: ClusterIP
  port: 80
";

    #[test]
    fn parse_path_splits_and_unescapes() {
        assert_eq!(p("image.tag"), vec!["image", "tag"]);
        assert_eq!(
            p("openim-rpc-user.image.tag"),
            vec!["openim-rpc-user", "image", "tag"]
        );
        assert_eq!(
            p(r"podAnnotations.prometheus\.io/scrape"),
            vec!["podAnnotations", "prometheus.io/scrape"]
        );
        assert_eq!(p(r"a\\b.c"), vec![r"a\b", "c"]);
        for bad in ["", ".a", "a.", "a..b", r"a\b", "a\\"] {
            assert!(
                matches!(parse_path(bad), Err(YamlEditError::InvalidPath { .. })),
                "{bad:?} should be rejected"
            );
        }
        let keys = vec!["a.b".to_string(), r"c\d".to_string(), "e".to_string()];
        assert_eq!(parse_path(&format_path(&keys)).unwrap(), keys);
    }

    #[test]
    fn plain_value_is_replaced_in_place() {
        let text = "image:\n  repository: openim/openim-server\n  tag: v3.8.0\n";
        let out = set_ok(text, "image.tag", "v3.8.1");
        assert_eq!(
            out,
            "image:\n  repository: openim/openim-server\n  tag: v3.8.1\n"
        );
        let out = set_ok(text, "image.tag", "3.8.1");
        assert_eq!(
            out,
            "image:\n  repository: openim/openim-server\n  tag: 3.8.1\n"
        );
    }

    #[test]
    fn single_quoted_stays_single_quoted() {
        let text = "image:\n  tag: 'v1'   # pinned\n";
        assert_eq!(
            set_ok(text, "image.tag", "v2"),
            "image:\n  tag: 'v2'   # pinned\n"
        );
        assert_eq!(
            set_ok(text, "image.tag", "it's"),
            "image:\n  tag: 'it''s'   # pinned\n"
        );
        // Single quotes cannot carry a line break: double quotes are used.
        assert_eq!(
            set_ok(text, "image.tag", "a\nb"),
            "image:\n  tag: \"a\\nb\"   # pinned\n"
        );
        let text = "a: 'it''s'\n";
        assert_eq!(get(text, &p("a")).unwrap().as_deref(), Some("it's"));
        assert_eq!(set_ok(text, "a", "x"), "a: 'x'\n");
    }

    #[test]
    fn double_quoted_stays_double_quoted_with_escapes() {
        let text = "image:\n  tag: \"v1\"\n  other: x\n";
        assert_eq!(
            set_ok(text, "image.tag", "v2"),
            "image:\n  tag: \"v2\"\n  other: x\n"
        );
        assert_eq!(
            set_ok(text, "image.tag", r#"say "hi" \o/"#),
            "image:\n  tag: \"say \\\"hi\\\" \\\\o/\"\n  other: x\n"
        );
        assert_eq!(
            set_ok(text, "image.tag", "tab\there\u{1}"),
            "image:\n  tag: \"tab\\there\\x01\"\n  other: x\n"
        );
        let text = "a: \"x\\\"y\"  # c\n";
        assert_eq!(set_ok(text, "a", "z"), "a: \"z\"  # c\n");
    }

    #[test]
    fn chart_yaml_without_final_newline_and_quoted_app_version() {
        let chart = "apiVersion: v2\nname: openim\ndescription: OpenIM server\ntype: application\nversion: 0.1.0\nappVersion: \"3.8.1\"";
        let out = set_ok(chart, "appVersion", "3.8.2");
        assert_eq!(out, chart.replace("\"3.8.1\"", "\"3.8.2\""));
        assert!(!out.ends_with('\n'));
        let out = set_ok(&out, "version", "0.1.1");
        assert!(out.contains("\nversion: 0.1.1\n"), "{out}");
        assert!(out.ends_with("appVersion: \"3.8.2\""));
        // An inserted line at the end keeps the file without a final newline.
        let out = set_ok(&out, "kubeVersion", ">=1.24.0");
        assert!(
            out.ends_with("appVersion: \"3.8.2\"\nkubeVersion: \">=1.24.0\""),
            "{out}"
        );
    }

    #[test]
    fn crlf_line_endings_are_kept_including_inserted_line() {
        let text = "image:\r\n  repository: openim/openim-server\r\n  pullPolicy: IfNotPresent\r\n\r\nservice:\r\n  port: 80\r\n";
        let out = set_ok(text, "image.repository", "ghcr.io/openimsdk/openim-server");
        assert_eq!(
            out,
            text.replace("openim/openim-server", "ghcr.io/openimsdk/openim-server")
        );
        let out = set_ok(&out, "image.tag", "v3.8.1");
        assert_eq!(
            out,
            "image:\r\n  repository: ghcr.io/openimsdk/openim-server\r\n  pullPolicy: IfNotPresent\r\n  tag: v3.8.1\r\n\r\nservice:\r\n  port: 80\r\n"
        );
        assert_eq!(out.matches('\n').count(), out.matches("\r\n").count());
        // Without a final newline, the inserted line is preceded by CRLF.
        let out = set_ok("a: 1\r\nb:\r\n  c: x", "b.d", "v");
        assert_eq!(out, "a: 1\r\nb:\r\n  c: x\r\n  d: v");
    }

    #[test]
    fn comments_and_blank_lines_are_kept() {
        let out = set_ok(VALUES, "image.tag", "v3.8.1");
        assert_eq!(out, VALUES.replace("tag: \"\"", "tag: \"v3.8.1\""));
        let out = set_ok(
            VALUES,
            "image.repository",
            "ghcr.io/openimsdk/openim-server",
        );
        assert_eq!(
            out,
            VALUES.replace(
                "repository: openim/openim-server # the registry path",
                "repository: ghcr.io/openimsdk/openim-server # the registry path"
            )
        );
        let text = "# top\n\nimage:\n  # above\n  tag: v1 # pinned\n\n\n# end\n";
        assert_eq!(
            set_ok(text, "image.tag", "v2"),
            "# top\n\nimage:\n  # above\n  tag: v2 # pinned\n\n\n# end\n"
        );
        // `#` without a blank before it is part of a plain scalar.
        let text = "a: b#c # comment\n";
        assert_eq!(get(text, &p("a")).unwrap().as_deref(), Some("b#c"));
        assert_eq!(set_ok(text, "a", "d"), "a: d # comment\n");
    }

    #[test]
    fn empty_string_tag_gains_the_value_in_its_quotes() {
        assert_eq!(set_ok("tag: \"\"\n", "tag", "v3.8.1"), "tag: \"v3.8.1\"\n");
        assert_eq!(set_ok("tag: ''\n", "tag", "v3.8.1"), "tag: 'v3.8.1'\n");
    }

    #[test]
    fn empty_value_is_filled_after_the_colon() {
        assert_eq!(
            set_ok("image:\n  tag:\n", "image.tag", "v1"),
            "image:\n  tag: v1\n"
        );
        assert_eq!(
            set_ok("image:\n  tag: # set by CI\n  x: y\n", "image.tag", "v1"),
            "image:\n  tag: v1 # set by CI\n  x: y\n"
        );
        assert_eq!(set_ok("\"tag\" :\n", "tag", "3.10"), "\"tag\" : \"3.10\"\n");
        assert_eq!(set_ok("tag: ~\n", "tag", "v1"), "tag: v1\n");
        assert_eq!(set_ok("tag: null\n", "tag", "3.10"), "tag: \"3.10\"\n");
        assert!(matches!(
            set_err("tag: !!str\nx: 1\n", "tag", "v1"),
            YamlEditError::Unsupported { .. }
        ));
    }

    #[test]
    fn setting_the_same_value_returns_the_text_unchanged() {
        for (text, path, value) in [
            (VALUES, "image.tag", ""),
            (VALUES, "image.pullPolicy", "IfNotPresent"),
            ("a: 'x'\r\nb: |\n  block\n", "b", "block\n"),
            ("base: &b {tag: v1}\nsvc: *b\n", "svc.tag", "v1"),
            ("v: 3.10", "v", "3.10"),
        ] {
            let (out, changed) = set(text, &p(path), value).unwrap();
            assert!(!changed);
            assert_eq!(out, text);
        }
    }

    #[test]
    fn flow_mapping_is_edited_in_place() {
        let text = "image: {repository: openim/openim-server, tag: v1}  # flow\n";
        assert_eq!(
            set_ok(text, "image.tag", "v3.8.1"),
            "image: {repository: openim/openim-server, tag: v3.8.1}  # flow\n"
        );
        assert_eq!(
            set_ok(text, "image.repository", "reg:5000/x"),
            "image: {repository: reg:5000/x, tag: v1}  # flow\n"
        );
        assert_eq!(
            set_ok(text, "image.tag", "v3.8.1@sha256:2d47"),
            "image: {repository: openim/openim-server, tag: v3.8.1@sha256:2d47}  # flow\n"
        );
        assert_eq!(
            set_ok(text, "image.tag", "v1:"),
            "image: {repository: openim/openim-server, tag: \"v1:\"}  # flow\n"
        );
        assert_eq!(
            set_ok(text, "image.tag", "a,b"),
            "image: {repository: openim/openim-server, tag: \"a,b\"}  # flow\n"
        );
        let text = "images: { api: { tag: 'v1' }, rpc: {tag: \"v2\" } }\n";
        assert_eq!(
            set_ok(text, "images.rpc.tag", "v3"),
            "images: { api: { tag: 'v1' }, rpc: {tag: \"v3\" } }\n"
        );
        assert_eq!(
            set_ok(text, "images.api.tag", "v3"),
            "images: { api: { tag: 'v3' }, rpc: {tag: \"v2\" } }\n"
        );
        // A missing key in a flow mapping is not inserted.
        let err = set_err(text, "images.api.digest", "sha256:x");
        assert!(matches!(err, YamlEditError::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains("by hand"), "{err}");
    }

    const OPENIM_GLOBAL: &str = "\
global:
  imageRegistry: ghcr.io/openimsdk
  # shared settings for every subchart
  imagePullSecrets: []

openim-api:
  image:
    repository: openim-api
    tag: \"v3.8.0\"
  replicaCount: 2

openim-rpc-user:
  image:
    repository: openim-rpc-user
    tag: v3.8.0 # keep in sync with openim-api
  config:
    mongo.address: mongo:27017

openim-msggateway:
  image: {repository: openim-msggateway, tag: 'v3.8.0'}
";

    #[test]
    fn nested_subchart_paths_in_a_global_override_file() {
        let out = set_ok(OPENIM_GLOBAL, "openim-rpc-user.image.tag", "v3.8.1");
        assert_eq!(
            out,
            OPENIM_GLOBAL.replace("tag: v3.8.0 # keep in sync", "tag: v3.8.1 # keep in sync")
        );
        let out = set_ok(&out, "openim-api.image.tag", "v3.8.1");
        let out = set_ok(&out, "openim-msggateway.image.tag", "v3.8.1");
        assert_eq!(out, OPENIM_GLOBAL.replace("v3.8.0", "v3.8.1"));
        assert_eq!(
            get(OPENIM_GLOBAL, &p(r"openim-rpc-user.config.mongo\.address"))
                .unwrap()
                .as_deref(),
            Some("mongo:27017")
        );
        let out = set_ok(
            OPENIM_GLOBAL,
            r"openim-rpc-user.config.mongo\.address",
            "mongo-0.mongo:27017",
        );
        assert!(out.contains("    mongo.address: mongo-0.mongo:27017\n"));
        // A missing subchart is named.
        match set_err(OPENIM_GLOBAL, "openim-push.image.tag", "v1") {
            YamlEditError::NotFound {
                missing_key,
                parent,
                ..
            } => {
                assert_eq!(missing_key, "openim-push");
                assert_eq!(parent, "");
            }
            e => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn missing_tag_is_inserted_after_the_last_entry() {
        let text = "\
image:
  repository: openim/openim-server
  pullPolicy: IfNotPresent # always pull in dev
  # Overrides the image tag whose default is the chart appVersion.

service:
  port: 80
";
        let out = set_ok(text, "image.tag", "v3.8.1");
        assert_eq!(
            out,
            "\
image:
  repository: openim/openim-server
  pullPolicy: IfNotPresent # always pull in dev
  tag: v3.8.1
  # Overrides the image tag whose default is the chart appVersion.

service:
  port: 80
"
        );
        // After the last descendant line of a nested last entry.
        let text = "svc:\n  image:\n    repository: x\n    extra:\n      a: 1\n      b: |\n        block\n  # note\nnext: 1\n";
        assert_eq!(
            set_ok(text, "svc.image.tag", "3.10"),
            "svc:\n  image:\n    repository: x\n    extra:\n      a: 1\n      b: |\n        block\n    tag: \"3.10\"\n  # note\nnext: 1\n"
        );
        // Keys needing quotes are quoted; the top level works too.
        assert_eq!(set_ok("a: 1\n", "b: c", "d"), "a: 1\n\"b: c\": d\n");
        assert_eq!(set_ok("a: 1\n", "true", "yes"), "a: 1\n\"true\": \"yes\"\n");
    }

    #[test]
    fn insertion_after_a_final_block_scalar_without_newline_is_refused() {
        // The inserted line would need a line break after `text`, which would
        // become part of the block scalar's value.
        let text = "svc:\n  script: |\n    text";
        let err = set_err(text, "svc.tag", "v1");
        assert!(matches!(err, YamlEditError::Unsupported { .. }), "{err}");
        // With a final newline it is fine.
        assert_eq!(
            set_ok("svc:\n  script: |\n    text\n", "svc.tag", "v1"),
            "svc:\n  script: |\n    text\n  tag: v1\n"
        );
    }

    #[test]
    fn insertion_into_empty_or_missing_parents_is_refused() {
        for text in ["image: {}\n", "image:\n", "image: ~\n"] {
            let err = set_err(text, "image.tag", "v1");
            assert!(matches!(err, YamlEditError::Unsupported { .. }), "{err}");
            assert!(err.to_string().contains("by hand"), "{err}");
            assert!(err.to_string().contains("image.tag"), "{err}");
            assert_eq!(get(text, &p("image.tag")).unwrap(), None);
        }
        match set_err("image:\n  repository: x\n", "image.foo.tag", "v1") {
            YamlEditError::NotFound {
                missing_key,
                parent,
                line,
                ..
            } => {
                assert_eq!(
                    (missing_key.as_str(), parent.as_str(), line),
                    ("foo", "image", 1)
                );
            }
            e => panic!("unexpected {e}"),
        }
        let err = set_err("", "tag", "v1");
        assert!(matches!(err, YamlEditError::Unsupported { .. }), "{err}");
        let err = set_err("# only a comment\n", "image.tag", "v1");
        assert!(matches!(err, YamlEditError::Unsupported { .. }), "{err}");
    }

    #[test]
    fn aliases_and_referenced_anchors_are_refused() {
        let text = "\
base: &base
  image:
    tag: v1
svc: *base
ver: &ver v1
other:
  tag: *ver
pinned:
  tag: *ver
";
        // Through an alias.
        match set_err(text, "svc.image.tag", "v2") {
            YamlEditError::Alias { anchor, line, .. } => {
                assert_eq!((anchor.as_str(), line), ("base", 4));
            }
            e => panic!("unexpected {e}"),
        }
        // The target is an alias.
        let err = set_err(text, "other.tag", "v2");
        assert!(
            matches!(&err, YamlEditError::Alias { anchor, .. } if anchor == "ver"),
            "{err}"
        );
        assert!(
            err.to_string().contains("every user of the anchor"),
            "{err}"
        );
        // The target carries a referenced anchor.
        let err = set_err(text, "ver", "v2");
        assert!(
            matches!(&err, YamlEditError::Alias { anchor, .. } if anchor == "ver"),
            "{err}"
        );
        // A mapping on the path carries a referenced anchor.
        let err = set_err(text, "base.image.tag", "v2");
        assert!(
            matches!(&err, YamlEditError::Alias { anchor, .. } if anchor == "base"),
            "{err}"
        );
        // Insertion under an alias or a referenced anchor is refused too.
        assert!(matches!(
            set_err(text, "svc.image.digest", "x"),
            YamlEditError::Alias { .. }
        ));
        assert!(matches!(
            set_err(text, "base.image.digest", "x"),
            YamlEditError::Alias { .. }
        ));
        // Reading goes through aliases.
        assert_eq!(
            get(text, &p("svc.image.tag")).unwrap().as_deref(),
            Some("v1")
        );
        assert_eq!(get(text, &p("pinned.tag")).unwrap().as_deref(), Some("v1"));
    }

    #[test]
    fn unreferenced_anchor_is_edited_and_kept() {
        let text = "image:\n  tag: &t v1 # anchor never used\n  repo: &r !!str x\n";
        assert_eq!(
            set_ok(text, "image.tag", "v2"),
            "image:\n  tag: &t v2 # anchor never used\n  repo: &r !!str x\n"
        );
        assert_eq!(
            set_ok(text, "image.repo", "y"),
            "image:\n  tag: &t v1 # anchor never used\n  repo: &r !!str y\n"
        );
        let text = "base: &base\n  tag: v1\n";
        assert_eq!(set_ok(text, "base.tag", "v2"), "base: &base\n  tag: v2\n");
    }

    #[test]
    fn merge_keys() {
        let text = "\
defaults: &defaults
  pullPolicy: IfNotPresent
  tag: v1
  resources:
    cpu: 100m
api:
  <<: *defaults
  repository: openim-api
  tag: v2 # local override
rpc:
  <<: *defaults
  repository: openim-rpc
";
        // Reads follow the merge; local keys win.
        assert_eq!(get(text, &p("rpc.tag")).unwrap().as_deref(), Some("v1"));
        assert_eq!(get(text, &p("api.tag")).unwrap().as_deref(), Some("v2"));
        assert_eq!(
            get(text, &p("rpc.resources.cpu")).unwrap().as_deref(),
            Some("100m")
        );
        // A local key is edited in place.
        let out = set_ok(text, "api.tag", "v3");
        assert_eq!(out, text.replace("tag: v2 # local", "tag: v3 # local"));
        // A key present only through the merge gets a local override; the
        // anchor is untouched.
        let out = set_ok(text, "rpc.tag", "v3");
        assert_eq!(
            out,
            text.replace(
                "  repository: openim-rpc\n",
                "  repository: openim-rpc\n  tag: v3\n"
            )
        );
        assert_eq!(
            get(&out, &p("api.pullPolicy")).unwrap().as_deref(),
            Some("IfNotPresent")
        );
        // Below a merged-only intermediate key: refused, naming the anchor.
        match set_err(text, "rpc.resources.cpu", "200m") {
            YamlEditError::Alias { anchor, detail, .. } => {
                assert_eq!(anchor, "defaults");
                assert!(detail.contains("<<: *defaults"), "{detail}");
            }
            e => panic!("unexpected {e}"),
        }
        // The anchor itself is shared: refused.
        assert!(matches!(
            set_err(text, "defaults.tag", "v9"),
            YamlEditError::Alias { .. }
        ));
        // A sequence of merges, first one wins for reading.
        let text = "a: &a {k: 1}\nb: &b {k: 2, m: 3}\nc:\n  <<: [*a, *b]\n  z: 0\n";
        assert_eq!(get(text, &p("c.k")).unwrap().as_deref(), Some("1"));
        assert_eq!(get(text, &p("c.m")).unwrap().as_deref(), Some("3"));
        assert_eq!(
            set_ok(text, "c.m", "4"),
            "a: &a {k: 1}\nb: &b {k: 2, m: 3}\nc:\n  <<: [*a, *b]\n  z: 0\n  m: \"4\"\n"
        );
    }

    #[test]
    fn numbers_bools_and_nulls_get_quotes() {
        // Plain string -> value that would read as a number: double quotes.
        assert_eq!(set_ok("tag: latest\n", "tag", "3.10"), "tag: \"3.10\"\n");
        assert_eq!(set_ok("tag: latest\n", "tag", "1234"), "tag: \"1234\"\n");
        assert_eq!(set_ok("tag: latest\n", "tag", "yes"), "tag: \"yes\"\n");
        assert_eq!(set_ok("tag: latest\n", "tag", "~"), "tag: \"~\"\n");
        assert_eq!(
            set_ok("tag: latest\n", "tag", "2024-01-01"),
            "tag: \"2024-01-01\"\n"
        );
        assert_eq!(set_ok("tag: latest\n", "tag", "1e3"), "tag: \"1e3\"\n");
        assert_eq!(set_ok("tag: latest\n", "tag", "0x1F"), "tag: \"0x1F\"\n");
        // A plain float is never rewritten into a lossy float.
        assert_eq!(
            set_ok("appVersion: 3.8\n", "appVersion", "3.10"),
            "appVersion: \"3.10\"\n"
        );
        // Quoted stays quoted.
        assert_eq!(
            set_ok("appVersion: \"3.9\"\n", "appVersion", "3.10"),
            "appVersion: \"3.10\"\n"
        );
        assert_eq!(
            set_ok("appVersion: '3.9'\n", "appVersion", "3.10"),
            "appVersion: '3.10'\n"
        );
        // Versions that are not numbers stay plain.
        assert_eq!(
            set_ok("version: 0.1.0\n", "version", "0.1.1"),
            "version: 0.1.1\n"
        );
        assert_eq!(
            set_ok("version: 0.1.0\n", "version", "v3.8.1"),
            "version: v3.8.1\n"
        );
        // Plain ints and bools keep their type.
        assert_eq!(
            set_ok("replicaCount: 1\n", "replicaCount", "3"),
            "replicaCount: 3\n"
        );
        assert_eq!(
            set_ok("enabled: true\n", "enabled", "false"),
            "enabled: false\n"
        );
        assert_eq!(
            set_ok("enabled: true\n", "enabled", "no"),
            "enabled: \"no\"\n"
        );
        assert_eq!(
            set_ok("tag: 20240101\n", "tag", "20240102"),
            "tag: \"20240102\"\n"
        );
        // `!!str` keeps plain numbers strings.
        assert_eq!(
            set_ok("tag: !!str 3.9\n", "tag", "3.10"),
            "tag: !!str 3.10\n"
        );
        // Values unsafe as plain scalars are double-quoted.
        for (value, expected) in [
            ("a: b", "\"a: b\""),
            ("#x", "\"#x\""),
            ("x #y", "\"x #y\""),
            ("*star", "\"*star\""),
            ("", "\"\""),
            (" lead", "\" lead\""),
            ("- item", "\"- item\""),
        ] {
            assert_eq!(
                set_ok("tag: latest\n", "tag", value),
                format!("tag: {expected}\n")
            );
        }
    }

    #[test]
    fn quoted_keys_and_dotted_keys() {
        let text = "\"image\":\n  'tag': v1\npodAnnotations:\n  prometheus.io/scrape: \"true\"\n";
        assert_eq!(
            set_ok(text, "image.tag", "v2"),
            "\"image\":\n  'tag': v2\npodAnnotations:\n  prometheus.io/scrape: \"true\"\n"
        );
        assert_eq!(
            set_ok(text, r"podAnnotations.prometheus\.io/scrape", "false"),
            "\"image\":\n  'tag': v1\npodAnnotations:\n  prometheus.io/scrape: \"false\"\n"
        );
        assert_eq!(
            get(text, &p("podAnnotations.prometheus.io/scrape")).unwrap(),
            None
        );
    }

    #[test]
    fn only_the_first_document_is_considered() {
        let text = "image:\n  tag: v1\n---\nimage:\n  tag: other\n...\n";
        assert_eq!(get(text, &p("image.tag")).unwrap().as_deref(), Some("v1"));
        assert_eq!(
            set_ok(text, "image.tag", "v2"),
            "image:\n  tag: v2\n---\nimage:\n  tag: other\n...\n"
        );
        let text = "---\na: 1\n---\nb: [unclosed\n";
        assert_eq!(set_ok(text, "a", "x"), "---\na: x\n---\nb: [unclosed\n");
    }

    #[test]
    fn block_and_multi_line_scalars_are_refused() {
        let text =
            "a: |\n  line\nb: >-\n  folded\nc: plain\n  continued\nd: \"dq\n  x\"\ne: 'sq\n  y'\n";
        for path in ["a", "b", "c", "d", "e"] {
            let err = set_err(text, path, "v");
            assert!(
                matches!(err, YamlEditError::Unsupported { .. }),
                "{path}: {err}"
            );
        }
        assert_eq!(
            get(text, &p("c")).unwrap().as_deref(),
            Some("plain continued")
        );
    }

    #[test]
    fn odd_layouts() {
        // Verbatim tag.
        assert_eq!(
            set_ok("a: !<tag:yaml.org,2002:str> 3.9\n", "a", "3.10"),
            "a: !<tag:yaml.org,2002:str> 3.10\n"
        );
        // Insertion after a flow mapping spanning several lines.
        assert_eq!(
            set_ok(
                "image:\n  a: {x: 1,\n      y: 2}  # c\nz: 1\n",
                "image.b",
                "v"
            ),
            "image:\n  a: {x: 1,\n      y: 2}  # c\n  b: v\nz: 1\n"
        );
        // Insertion after a multi-line double-quoted scalar.
        assert_eq!(
            set_ok("image:\n  a: \"x\n    y\"\nz: 1\n", "image.b", "v"),
            "image:\n  a: \"x\n    y\"\n  b: v\nz: 1\n"
        );
        // Explicit (`?`) keys: the value is edited; an empty one is refused.
        assert_eq!(set_ok("? a\n: b\n", "a", "c"), "? a\n: c\n");
        assert!(matches!(
            set_err("? a\nb: 1\n", "a", "c"),
            YamlEditError::Unsupported { .. }
        ));
        // Trailing comment without final newline.
        assert_eq!(
            set_ok("a:\n  b: 1 # c", "a.d", "x"),
            "a:\n  b: 1 # c\n  d: x"
        );
        assert_eq!(set_ok("a: 1\n# end", "b", "x"), "a: 1\nb: x\n# end");
        // Directives and explicit document markers.
        assert_eq!(
            set_ok("%YAML 1.2\n---\na: 1\n...\n", "b", "x"),
            "%YAML 1.2\n---\na: 1\nb: x\n...\n"
        );
        // Deeper, unusual indentation is copied from the siblings.
        assert_eq!(
            set_ok("a:\n     b: 1\n     c: 2\n", "a.d", "x"),
            "a:\n     b: 1\n     c: 2\n     d: x\n"
        );
    }

    #[test]
    fn wrong_shapes_and_parse_errors() {
        let text = "image:\n  tag: v1\nlist:\n  - a\n";
        assert!(matches!(
            set_err(text, "image", "v"),
            YamlEditError::NotAScalar { line: 2, .. }
        ));
        assert!(matches!(
            get(text, &p("image")),
            Err(YamlEditError::NotAScalar { .. })
        ));
        assert!(matches!(
            get(text, &p("list.0")),
            Err(YamlEditError::NotAMapping { .. })
        ));
        assert!(matches!(
            set_err(text, "image.tag.x", "v"),
            YamlEditError::NotAMapping { .. }
        ));
        assert_eq!(get(text, &p("image.digest")).unwrap(), None);
        assert_eq!(get(text, &p("nothing.here")).unwrap(), None);
        let err = set_err("a: [1, 2\nb: 1\n", "b", "2");
        assert!(matches!(err, YamlEditError::Parse { .. }), "{err}");
        let err = set_err("a: 1\na: 2\n", "a", "3");
        assert!(
            matches!(err, YamlEditError::Unsupported { line: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn bom_tabs_and_unicode_are_kept() {
        let text = "\u{feff}name: été\nimage:\n  tag: \tv1\t# tabbed\n";
        let out = set_ok(text, "image.tag", "v2");
        assert_eq!(out, "\u{feff}name: été\nimage:\n  tag: \tv2\t# tabbed\n");
        assert_eq!(
            set_ok(text, "name", "ünï"),
            "\u{feff}name: ünï\nimage:\n  tag: \tv1\t# tabbed\n"
        );
        assert_eq!(
            set_ok(text, "image.digest", "x"),
            "\u{feff}name: été\nimage:\n  tag: \tv1\t# tabbed\n  digest: x\n"
        );
        // What the parser rejects (a tab right after `:`) is a parse error.
        assert!(matches!(
            set_err("tag:\tv1\n", "tag", "v2"),
            YamlEditError::Parse { .. }
        ));
        // Regression (corpus charts/chart-yaml-tab): it says what to change.
        let msg = set_err("a: 1\n\tb: 2\n", "a", "3").to_string();
        assert!(
            msg.contains("found a tab: YAML indents with spaces only"),
            "{msg}"
        );
    }

    /// Regression (corpus charts/chart-is-a-list): the top level was
    /// written in backticks, as if it were a key.
    #[test]
    fn a_top_level_sequence_is_named_in_words() {
        let msg = set_err("- a: 1\n", "a", "2").to_string();
        assert_eq!(
            msg,
            "key path `a`: the document's top-level node (line 1) is a sequence, not a mapping, so the path cannot go through it"
        );
        let msg = set_err("a: [1]\n", "a.b", "2").to_string();
        assert!(msg.contains(": `a` (line 1) is a sequence"), "{msg}");
    }

    #[test]
    fn error_messages_name_path_and_line() {
        let err = set_err("a:\n  b: |\n    x\n", "a.b", "y");
        let msg = err.to_string();
        assert!(msg.contains("`a.b`") && msg.contains("line 2"), "{msg}");
        let err = set_err("a:\n  b: 1\n", "a.c.d", "y");
        let msg = err.to_string();
        assert!(
            msg.contains("`a.c.d`") && msg.contains("`c`") && msg.contains("line 1"),
            "{msg}"
        );
    }

    // ---------------------------------------------------------------------
    // Property-style check over a corpus of tricky files.

    fn first_doc(text: &str) -> serde_yaml_ng::Value {
        use serde::Deserialize;
        // libyaml (behind serde_yaml_ng) loses everything after the first
        // blank line of a file that starts with a BOM: read without it.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let de = serde_yaml_ng::Deserializer::from_str(text)
            .next()
            .expect("one document");
        serde_yaml_ng::Value::deserialize(de).expect("serde_yaml_ng reads the document")
    }

    fn set_in(value: &mut serde_yaml_ng::Value, path: &[String], new: &str) {
        let map = value.as_mapping_mut().expect("mapping");
        let key = serde_yaml_ng::Value::String(path[0].clone());
        if path.len() == 1 {
            map.insert(key, serde_yaml_ng::Value::String(new.to_string()));
        } else {
            let keys = format!("{:?}", map.keys().collect::<Vec<_>>());
            let parent = map
                .get_mut(&key)
                .unwrap_or_else(|| panic!("parent {key:?} exists in {keys}"));
            set_in(parent, &path[1..], new);
        }
    }

    fn variants(base: &str) -> Vec<String> {
        let crlf = base.replace('\n', "\r\n");
        vec![
            base.to_string(),
            base.trim_end_matches('\n').to_string(),
            crlf.clone(),
            crlf.trim_end_matches("\r\n").to_string(),
            format!("\u{feff}{base}"),
        ]
    }

    #[test]
    fn corpus_set_then_get_and_the_rest_of_the_tree_is_unchanged() {
        let corpus: &[(&str, &[&str])] = &[
            (
                VALUES,
                &["image.tag", "image.repository", "image.pullPolicy", "service.type", "image.digest", "service.nodePort"],
            ),
            (
                OPENIM_GLOBAL,
                &[
                    "openim-api.image.tag",
                    "openim-rpc-user.image.tag",
                    "openim-msggateway.image.tag",
                    "openim-msggateway.image.repository",
                    r"openim-rpc-user.config.mongo\.address",
                    "global.imageRegistry",
                    "openim-api.image.digest",
                    "global.newKey",
                ],
            ),
            (
                "# chart\napiVersion: v2\nname: 'openim'\nversion: 0.1.0 # bump me\nappVersion: \"3.8.1\"\n\n# trailing comment\n",
                &["name", "version", "appVersion", "kubeVersion"],
            ),
            (
                "images: { api: {repository: a, tag: v1}, rpc: {tag: 'v2'} }\nlist: [a, b]\nx: &x !!str anchored\ny: {\"k\": \"v\"}\n",
                &["images.api.tag", "images.api.repository", "images.rpc.tag", "x", "y.k"],
            ),
            (
                "base: &base\n  repository: r\n  tag: v1\nsvc:\n  <<: *base\n  nested:\n    deep:\n      value: |\n        text\n  name: s\n",
                &["svc.name", "svc.tag", "svc.repository", "svc.nested.deep.other"],
            ),
            (
                "a:\n    b:\n        c: plain value with spaces   # comment: with colon\n        d: \"\" \n    e: x\nf: g\n---\nsecond: doc\n",
                &["a.b.c", "a.b.d", "a.e", "f", "a.b.new", "a.new"],
            ),
        ];
        let values = [
            "v3.8.1",
            "3.8.1",
            "3.10",
            "1234",
            "true",
            "yes",
            "null",
            "~",
            "",
            "with space",
            "it's",
            "say \"hi\"",
            "a: b",
            "#hash",
            "x #y",
            "ünïcødé",
            "line1\nline2",
            "tab\there",
            "-leading-dash",
            "trailing:",
            "{braces}",
            "[x]",
            "a,b",
            "back\\slash",
            " lead",
            "trail ",
            "2024-01-01",
            "0x1F",
            "1e3",
            ".inf",
            "@sha256:abc",
            "*star",
            "&amp",
            "!bang",
            "%pct",
            "`tick",
            "---",
            "...",
            "=",
            "<<",
            "1_000",
            "+1",
            "-.5",
            ".nan",
            "registry.example.com:5000/openim/openim-server:v3.8.1",
            "a\u{85}b",
            "\u{feff}x",
            "ctrl\u{7}",
            "emoji 🚀",
        ];
        let mut checked = 0;
        for (base, paths) in corpus {
            for text in variants(base) {
                let crlf = text.contains("\r\n");
                for path in paths.iter().map(|s| p(s)) {
                    let before = first_doc(&text);
                    for value in values {
                        let (out, changed) = set(&text, &path, value).unwrap_or_else(|e| {
                            panic!("set {path:?}={value:?} failed: {e}\n{text}")
                        });
                        let previous = get(&text, &path).unwrap();
                        assert_eq!(changed, previous.as_deref() != Some(value));
                        assert_eq!(get(&out, &path).unwrap().as_deref(), Some(value));
                        // An independent reader sees the same tree with only
                        // the target changed, as a string.
                        let mut expected = before.clone();
                        set_in(&mut expected, &path, value);
                        assert_eq!(first_doc(&out), expected, "{path:?}={value:?}\n{out}");
                        // Only one scalar (or one line) changed.
                        let prefix = text
                            .bytes()
                            .zip(out.bytes())
                            .take_while(|(a, b)| a == b)
                            .count();
                        let suffix = text.as_bytes()[prefix..]
                            .iter()
                            .rev()
                            .zip(out.as_bytes()[prefix..].iter().rev())
                            .take_while(|(a, b)| a == b)
                            .count();
                        let removed = &text[prefix..text.len() - suffix];
                        let added = &out[prefix..out.len() - suffix];
                        assert!(!removed.contains('\n'), "{removed:?} -> {added:?}");
                        assert!(added.matches('\n').count() <= 1, "{removed:?} -> {added:?}");
                        if crlf {
                            assert_eq!(out.matches('\n').count(), out.matches("\r\n").count());
                        }
                        assert_eq!(out.ends_with('\n'), text.ends_with('\n'));
                        assert_eq!(out.starts_with('\u{feff}'), text.starts_with('\u{feff}'));
                        // Setting it again is a no-op.
                        let (again, changed) = set(&out, &path, value).unwrap();
                        assert!(!changed);
                        assert_eq!(again, out);
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    #[test]
    fn kinds_and_keys_are_read_as_a_yaml_reader_types_them() {
        let text = "a: 1\nb: true\nc: 1.5\nd: \"1\"\ne: v1\nf:\ng: [x]\nh: {i: 1}\nj: !!str 2\nk: ~\nbase: &b\n  m: 1\nn:\n  <<: *b\n  o: 2\n";
        let kind_of = |k: &str| kind(text, &p(k)).unwrap().map(|(v, _)| v);
        assert_eq!(kind_of("a"), Some(ValueKind::Int("1".into())));
        assert_eq!(kind_of("b"), Some(ValueKind::Bool("true".into())));
        assert_eq!(kind_of("c"), Some(ValueKind::Float("1.5".into())));
        assert_eq!(kind_of("d"), Some(ValueKind::String("1".into())));
        assert_eq!(kind_of("e"), Some(ValueKind::String("v1".into())));
        assert_eq!(kind_of("f"), Some(ValueKind::Null));
        assert_eq!(kind_of("g"), Some(ValueKind::Sequence));
        assert_eq!(kind_of("h"), Some(ValueKind::Mapping));
        assert_eq!(kind_of("j"), Some(ValueKind::String("2".into())));
        assert_eq!(kind_of("k"), Some(ValueKind::Null));
        assert_eq!(kind_of("n.m"), Some(ValueKind::Int("1".into())));
        assert_eq!(kind_of("zz"), None);
        assert_eq!(kind(text, &p("h.i")).unwrap().unwrap().1, 8);
        let names = |path: &[String]| {
            keys(text, path)
                .unwrap()
                .map(|ks| ks.into_iter().map(|(k, _)| k).collect::<Vec<_>>())
        };
        assert_eq!(names(&p("n")), Some(vec!["o".to_string(), "m".to_string()]));
        assert_eq!(names(&p("a")), None);
        assert_eq!(names(&p("missing")), None);
        assert_eq!(names(&[]).unwrap().len(), 12);
    }
}

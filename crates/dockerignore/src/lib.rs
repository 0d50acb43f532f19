//! `.dockerignore` files, read and matched exactly as Docker does it.
//!
//! Docker (the CLI, BuildKit and the classic builder alike) reads the file
//! with `ignorefile.ReadAll` and matches paths with
//! `github.com/moby/patternmatcher`. This module is a pure re-implementation
//! of both (no I/O), following the Linux behaviour:
//!
//! * Reading: a UTF-8 BOM is dropped; a line whose first character is `#` is
//!   a comment (a `#` after leading blanks is not); surrounding whitespace is
//!   trimmed; a leading `!` marks an exclusion (a re-include) and the
//!   whitespace after it is trimmed too; the rest is cleaned like Go's
//!   `filepath.Clean` (`./a` → `a`, `a//b/` → `a/b`, `a/../b` → `b`) and one
//!   leading `/` is dropped.
//! * Checking: every pattern must be valid for Go's `filepath.Match`, which
//!   (since golang/go#28614) checks the whole pattern: e.g. an unclosed `[`,
//!   `[]a]`, `[a-]` or a trailing `\` is an error.
//! * Matching: moby turns a pattern into one of four matchers. A pattern of
//!   plain characters must equal the path; `lit/**` (plain text, then `**` at
//!   the end) is a string-prefix test; `**…` (starting with `**`, then plain
//!   text) is a string-suffix test (`**/foo` also matches `foo` itself); any
//!   other pattern becomes a Go regular expression: `*` → `[^/]*`,
//!   `?` → `[^/]`, `**` → `(.*/)?` (or `.*` at the end), `.+()$` are
//!   escaped and everything else, `[`, `]`, `\x`, `^`, and also `|`, `{` and
//!   `}` (moby means to escape those three but its escape table overflows),
//!   is passed through. That regular expression is then read with Go's RE2
//!   syntax, which is what gives `[...]` classes their meaning: `[^…]`
//!   negates but `[!…]` does not (the `!` is an ordinary member),
//!   `[[:alpha:]]` is a POSIX class, an escape such as `\d` is a digit class,
//!   `a|b` is an alternation and `x{2}` a repetition, as in Go. Here that Go
//!   expression is parsed and re-emitted as an equivalent `regex::Regex`.
//! * Deciding: a path is excluded when the last pattern that matches the path
//!   or one of its parent directories is not a `!` pattern
//!   (`MatchesOrParentMatches`).
//!
//! A pattern that Go's regexp package would refuse (say `foo\p`, or a class
//! range written backwards such as `[z-a]`) makes Docker fail the build as
//! soon as the pattern is used; [`DockerIgnore::parse`] reports it up front.

use std::collections::HashSet;
use std::fmt::Write as _;

use regex::Regex;

/// Parsed .dockerignore patterns.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

impl DockerIgnore {
    /// Parse the text of a .dockerignore file (comments '#', blank lines,
    /// leading '!' exclusions, whitespace trimmed, patterns cleaned like Go
    /// filepath.Clean, a leading '/' dropped, as ignorefile.ReadAll does).
    /// Errors (e.g. a bad pattern like an unclosed '[') return Err(String)
    /// naming the line number and the pattern.
    pub fn parse(text: &str) -> Result<DockerIgnore, String> {
        let mut patterns = Vec::new();
        for line in read_lines(text) {
            match Pattern::new(&line.pattern) {
                Ok(Some(pattern)) => patterns.push(pattern),
                Ok(None) => {}
                Err(reason) => {
                    return Err(format!(
                        ".dockerignore line {}: pattern {:?}: {}",
                        line.number, line.written, reason
                    ))
                }
            }
        }
        Ok(DockerIgnore { patterns })
    }

    /// An empty matcher (no .dockerignore): excludes nothing.
    pub fn empty() -> DockerIgnore {
        DockerIgnore::default()
    }

    /// Whether `rel_path` (relative to the context root, '/'-separated, no
    /// leading './') is excluded, with moby's MatchesOrParentMatches
    /// semantics: the last pattern that matches the path or one of its parent
    /// directories wins; '!' patterns re-include.
    ///
    /// The path is cleaned first (so `./a/` is `a`); the context root itself
    /// (`""`, `.`) is never excluded.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        let Some(path) = normalize(rel_path) else {
            return false;
        };
        let parents = parent_dirs(&path);
        // moby's loop: an inclusion pattern is only tried while the path is
        // not excluded, an exclusion pattern only while it is.
        let mut excluded = false;
        for pattern in &self.patterns {
            if pattern.exclusion != excluded {
                continue;
            }
            if pattern.matches_path_or_parent(&path, &parents) {
                excluded = !pattern.exclusion;
            }
        }
        excluded
    }

    /// Whether a directory that is itself excluded may still contain
    /// re-included files (i.e. there are exclusion ('!') patterns at all that
    /// could match below it). A walker uses this to skip whole excluded
    /// directories when it is false.
    ///
    /// When `rel_dir` is excluded, only the `!` patterns after the last
    /// pattern that excludes it are considered (earlier ones are overridden
    /// for everything below it as well). Whether a `!` pattern can match some
    /// path below `rel_dir` is decided exactly (only Go's `\b`/`\B` escapes
    /// are approximated, towards `true`), so `false` guarantees that every
    /// path below an excluded `rel_dir` is excluded too.
    pub fn may_reinclude_under(&self, rel_dir: &str) -> bool {
        if !self.patterns.iter().any(|p| p.exclusion) {
            return false;
        }
        let Some(dir) = normalize(rel_dir) else {
            return true;
        };
        let parents = parent_dirs(&dir);
        let first = match self
            .patterns
            .iter()
            .rposition(|p| p.matches_path_or_parent(&dir, &parents))
        {
            Some(last) if !self.patterns[last].exclusion => last + 1,
            _ => 0,
        };
        let prefix = format!("{dir}/");
        self.patterns[first..]
            .iter()
            .any(|p| p.exclusion && p.matcher.can_match_under(&prefix))
    }
}

/// Clean a path given by the caller; `None` for the context root.
fn normalize(rel_path: &str) -> Option<String> {
    let cleaned = go_clean(rel_path);
    let relative = cleaned.trim_start_matches('/');
    if relative.is_empty() || relative == "." {
        None
    } else {
        Some(relative.to_string())
    }
}

/// The parent directories of a clean relative path, outermost first:
/// `a/b/c` → `a`, `a/b` (what moby builds from `filepath.Dir`).
fn parent_dirs(path: &str) -> Vec<&str> {
    path.match_indices('/').map(|(i, _)| &path[..i]).collect()
}

/// Go's `filepath.Clean` for '/'-separated paths.
fn go_clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    if rooted {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

// ---------------------------------------------------------------------------
// Reading the file (ignorefile.ReadAll)

/// A line that `ReadAll` keeps as a pattern.
struct Line {
    /// 1-based line number in the file.
    number: usize,
    /// The line as written, trimmed (for error messages).
    written: String,
    /// The pattern as `ReadAll` returns it (with its `!`, if any).
    pattern: String,
}

fn read_lines(text: &str) -> Vec<Line> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut raw: Vec<&str> = text.split('\n').collect();
    if raw.last() == Some(&"") {
        // No line after the final newline (bufio.ScanLines).
        raw.pop();
    }
    let mut lines = Vec::new();
    for (index, line) in raw.into_iter().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('#') {
            continue;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let (invert, body) = match trimmed.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, trimmed),
        };
        let mut pattern = String::new();
        if invert {
            pattern.push('!');
        }
        if !body.is_empty() {
            let cleaned = go_clean(body);
            match cleaned.strip_prefix('/') {
                Some(rest) if !rest.is_empty() => pattern.push_str(rest),
                _ => pattern.push_str(&cleaned),
            }
        }
        lines.push(Line {
            number: index + 1,
            written: trimmed.to_string(),
            pattern,
        });
    }
    lines
}

// ---------------------------------------------------------------------------
// One pattern (patternmatcher.New and Pattern.compile)

#[derive(Debug, Clone)]
struct Pattern {
    /// A `!` pattern: re-includes what it matches.
    exclusion: bool,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    /// The path equals the pattern.
    Exact(String),
    /// The path starts with this text (the pattern without its final `**`).
    Prefix(String),
    /// The path ends with these bytes (the pattern without its leading `**`;
    /// bytes because Go slices the pattern by bytes), or, when they start
    /// with `/`, equals them without it.
    Suffix(Vec<u8>),
    /// Moby's Go regular expression, as a Rust regex for matching and as an
    /// automaton for [`Matcher::can_match_under`].
    Regex { re: Regex, nfa: Nfa },
}

impl Pattern {
    /// `patternmatcher.New` for one pattern as `ReadAll` returned it.
    fn new(pattern: &str) -> Result<Option<Pattern>, String> {
        let pattern = pattern.trim();
        if pattern.is_empty() {
            return Ok(None);
        }
        let cleaned = go_clean(pattern);
        let (exclusion, body) = match cleaned.strip_prefix('!') {
            Some("") => return Err(r#"illegal exclusion pattern: "!""#.to_string()),
            Some(rest) => (true, rest),
            None => (false, cleaned.as_str()),
        };
        if !glob_syntax_ok(body) {
            return Err("syntax error in pattern".to_string());
        }
        let matcher = Matcher::compile(body)?;
        Ok(Some(Pattern { exclusion, matcher }))
    }

    fn matches_path_or_parent(&self, path: &str, parents: &[&str]) -> bool {
        self.matcher.matches(path) || parents.iter().any(|dir| self.matcher.matches(dir))
    }
}

impl Matcher {
    fn compile(pattern: &str) -> Result<Matcher, String> {
        let (kind, go_regex) = moby_regex(pattern);
        Ok(match kind {
            Kind::Exact => Matcher::Exact(pattern.to_string()),
            Kind::Prefix => {
                Matcher::Prefix(pattern.strip_suffix("**").unwrap_or(pattern).to_string())
            }
            Kind::Suffix => {
                Matcher::Suffix(pattern.as_bytes().get(2..).unwrap_or_default().to_vec())
            }
            Kind::Regexp => {
                let bad = |reason: String| {
                    format!(
                        "syntax error in pattern (Docker reads it as the Go regular \
                         expression `{go_regex}`, which is invalid: {reason})"
                    )
                };
                let nodes = parse_go_regex(&go_regex).map_err(bad)?;
                let mut rust_regex = String::new();
                emit_nodes(&nodes, &mut rust_regex);
                let re = Regex::new(&rust_regex).map_err(|e| bad(e.to_string()))?;
                Matcher::Regex {
                    re,
                    nfa: Nfa::build(&nodes),
                }
            }
        })
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            Matcher::Exact(text) => path == text,
            Matcher::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Matcher::Suffix(suffix) => {
                let path = path.as_bytes();
                path.ends_with(suffix) || (suffix.first() == Some(&b'/') && path == &suffix[1..])
            }
            Matcher::Regex { re, .. } => re.is_match(path),
        }
    }

    /// Whether some path that starts with `prefix` (a directory plus `/`)
    /// and goes on below it matches.
    fn can_match_under(&self, prefix: &str) -> bool {
        match self {
            // A clean pattern never ends with '/', so it is longer.
            Matcher::Exact(text) => text.starts_with(prefix),
            Matcher::Prefix(start) => {
                start.starts_with(prefix) || prefix.starts_with(start.as_str())
            }
            // `<prefix>x<suffix>` always matches.
            Matcher::Suffix(_) => true,
            Matcher::Regex { nfa, .. } => nfa.can_match_with_prefix(prefix),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regexp,
}

/// Moby's `Pattern.compile` for '/' as the separator: the kind of matcher
/// and, for [`Kind::Regexp`], the Go regular expression.
fn moby_regex(pattern: &str) -> (Kind, String) {
    // text/scanner skips a byte order mark at the start.
    let body = pattern.strip_prefix('\u{feff}').unwrap_or(pattern);
    let chars: Vec<char> = body.chars().collect();
    let mut regex = String::from("^");
    let mut kind = Kind::Exact;
    let mut pos = 0;
    let mut step = 0;
    while pos < chars.len() {
        let ch = chars[pos];
        pos += 1;
        match ch {
            '*' if chars.get(pos) == Some(&'*') => {
                pos += 1;
                if chars.get(pos) == Some(&'/') {
                    pos += 1;
                }
                if pos == chars.len() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        regex.push_str(".*");
                        kind = Kind::Regexp;
                    }
                } else {
                    regex.push_str("(.*/)?");
                    kind = Kind::Regexp;
                }
                if step == 0 {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                regex.push_str("[^/]*");
                kind = Kind::Regexp;
            }
            '?' => {
                regex.push_str("[^/]");
                kind = Kind::Regexp;
            }
            // moby's escape table also lists `|`, `{` and `}`, but its bitmap
            // drops every byte from 64 up: only these are escaped.
            '.' | '+' | '(' | ')' | '$' => {
                regex.push('\\');
                regex.push(ch);
            }
            '\\' => match chars.get(pos) {
                Some(&next) => {
                    pos += 1;
                    regex.push('\\');
                    regex.push(next);
                    kind = Kind::Regexp;
                }
                None => regex.push('\\'),
            },
            '[' | ']' => {
                regex.push(ch);
                kind = Kind::Regexp;
            }
            _ => regex.push(ch),
        }
        step += 1;
    }
    if kind == Kind::Regexp {
        regex.push('$');
    }
    (kind, regex)
}

// ---------------------------------------------------------------------------
// Syntax check of Go's filepath.Match (what patternmatcher.New runs)

fn glob_syntax_ok(pattern: &str) -> bool {
    let mut rest = pattern.as_bytes();
    while !rest.is_empty() {
        let (chunk, tail) = glob_chunk(rest);
        if !glob_chunk_ok(chunk) {
            return false;
        }
        rest = tail;
    }
    true
}

/// Go's `scanChunk`: skip leading stars, then take up to the next star that
/// is not inside `[...]`.
fn glob_chunk(pattern: &[u8]) -> (&[u8], &[u8]) {
    let mut pattern = pattern;
    while let [b'*', tail @ ..] = pattern {
        pattern = tail;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    pattern.split_at(i)
}

/// The error checks of Go's `matchChunk`.
fn glob_chunk_ok(chunk: &[u8]) -> bool {
    let mut chunk = chunk;
    while let Some(&byte) = chunk.first() {
        match byte {
            b'[' => {
                chunk = &chunk[1..];
                if chunk.first() == Some(&b'^') {
                    chunk = &chunk[1..];
                }
                let mut ranges = 0;
                loop {
                    if ranges > 0 && chunk.first() == Some(&b']') {
                        chunk = &chunk[1..];
                        break;
                    }
                    let Some(rest) = glob_class_char(chunk) else {
                        return false;
                    };
                    chunk = rest;
                    if chunk[0] == b'-' {
                        let Some(rest) = glob_class_char(&chunk[1..]) else {
                            return false;
                        };
                        chunk = rest;
                    }
                    ranges += 1;
                }
            }
            b'\\' => {
                if chunk.len() < 2 {
                    return false;
                }
                chunk = &chunk[2..];
            }
            _ => chunk = &chunk[1..],
        }
    }
    true
}

/// Go's `getEsc`: one (possibly escaped) character of a class, which must be
/// followed by more of the pattern.
fn glob_class_char(chunk: &[u8]) -> Option<&[u8]> {
    let mut chunk = match chunk.first() {
        None | Some(b'-') | Some(b']') => return None,
        Some(_) => chunk,
    };
    if chunk[0] == b'\\' {
        chunk = &chunk[1..];
        if chunk.is_empty() {
            return None;
        }
    }
    let width = match chunk[0] {
        b if b < 0x80 => 1,
        b if b >= 0xF0 => 4,
        b if b >= 0xE0 => 3,
        _ => 2,
    };
    let rest = chunk.get(width..)?;
    if rest.is_empty() {
        None
    } else {
        Some(rest)
    }
}

// ---------------------------------------------------------------------------
// Go's regular expression syntax (regexp.Compile: Perl flags, one line)

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Assertion {
    BeginText,
    EndText,
    /// ASCII word boundary, as in Go.
    WordBoundary,
    NotWordBoundary,
}

#[derive(Debug, Clone)]
enum Node {
    Chars(CharSet),
    Assert(Assertion),
    /// A group (or the whole expression): alternatives, each a sequence.
    Alt(Vec<Vec<Node>>),
    /// `min` to `max` (unbounded: `None`) times.
    Repeat(Box<Node>, u32, Option<u32>),
}

/// A set of characters: a literal, `.`, or a `[...]` class.
#[derive(Debug, Clone)]
struct CharSet {
    negated: bool,
    items: Vec<ClassItem>,
}

#[derive(Debug, Clone)]
enum ClassItem {
    /// Code points `lo..=hi` (may include surrogates, which match nothing).
    Range(u32, u32),
    /// A Perl (`\d`) or POSIX (`[:alpha:]`) class: ASCII only, as in Go.
    Ascii {
        negated: bool,
        ranges: &'static [(u32, u32)],
    },
    /// `\pN`, `\p{Greek}`.
    Unicode {
        negated: bool,
        name: String,
        re: Regex,
    },
}

impl CharSet {
    fn literal(c: u32) -> CharSet {
        CharSet {
            negated: false,
            items: vec![ClassItem::Range(c, c)],
        }
    }

    fn any_but_newline() -> CharSet {
        CharSet {
            negated: true,
            items: vec![ClassItem::Range(0x0A, 0x0A)],
        }
    }

    fn contains(&self, c: char) -> bool {
        let code = c as u32;
        let in_ranges =
            |ranges: &[(u32, u32)]| ranges.iter().any(|&(lo, hi)| lo <= code && code <= hi);
        let hit = self.items.iter().any(|item| match item {
            ClassItem::Range(lo, hi) => *lo <= code && code <= *hi,
            ClassItem::Ascii { negated, ranges } => *negated != in_ranges(ranges),
            ClassItem::Unicode { negated, re, .. } => {
                *negated != re.is_match(c.encode_utf8(&mut [0; 4]))
            }
        });
        hit != self.negated
    }
}

const DIGIT: &[(u32, u32)] = &[(0x30, 0x39)];
const PERL_SPACE: &[(u32, u32)] = &[(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)];
const WORD: &[(u32, u32)] = &[(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)];

fn perl_class(c: char) -> Option<ClassItem> {
    let (negated, ranges) = match c {
        'd' => (false, DIGIT),
        'D' => (true, DIGIT),
        's' => (false, PERL_SPACE),
        'S' => (true, PERL_SPACE),
        'w' => (false, WORD),
        'W' => (true, WORD),
        _ => return None,
    };
    Some(ClassItem::Ascii { negated, ranges })
}

/// `[:name:]` or `[:^name:]`, brackets included.
fn posix_class(spec: &str) -> Option<ClassItem> {
    let inner = spec.strip_prefix("[:")?.strip_suffix(":]")?;
    let (negated, name) = match inner.strip_prefix('^') {
        Some(name) => (true, name),
        None => (false, inner),
    };
    let ranges: &'static [(u32, u32)] = match name {
        "alnum" => &[(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
        "alpha" => &[(0x41, 0x5A), (0x61, 0x7A)],
        "ascii" => &[(0x00, 0x7F)],
        "blank" => &[(0x09, 0x09), (0x20, 0x20)],
        "cntrl" => &[(0x00, 0x1F), (0x7F, 0x7F)],
        "digit" => DIGIT,
        "graph" => &[(0x21, 0x7E)],
        "lower" => &[(0x61, 0x7A)],
        "print" => &[(0x20, 0x7E)],
        "punct" => &[(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
        "space" => &[(0x09, 0x0D), (0x20, 0x20)],
        "upper" => &[(0x41, 0x5A)],
        "word" => WORD,
        "xdigit" => &[(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
        _ => return None,
    };
    Some(ClassItem::Ascii { negated, ranges })
}

fn text(chars: &[char]) -> String {
    chars.iter().collect()
}

/// Parse a regular expression as Go's `regexp.Compile` does, for the
/// constructs moby's expressions can contain (a `(` in them always starts
/// moby's own `(.*/)?`, so `(?…)` groups never occur).
fn parse_go_regex(source: &str) -> Result<Vec<Node>, String> {
    let t: Vec<char> = source.chars().collect();
    // Open groups, innermost last; each holds its alternatives so far.
    let mut groups: Vec<Vec<Vec<Node>>> = vec![vec![Vec::new()]];
    let mut i = 0;
    let mut after_repeat = false;
    while i < t.len() {
        let mut is_repeat = false;
        let depth = groups.len() - 1;
        let seq = groups[depth]
            .last_mut()
            .expect("a group has an alternative");
        match t[i] {
            '(' => {
                if t.get(i + 1) == Some(&'?') {
                    return Err("unsupported group `(?`".to_string());
                }
                groups.push(vec![Vec::new()]);
                i += 1;
            }
            ')' => {
                if depth == 0 {
                    return Err(format!("unexpected ): `{source}`"));
                }
                let alternatives = groups.pop().unwrap_or_default();
                if let Some(seq) = groups[depth - 1].last_mut() {
                    seq.push(Node::Alt(alternatives));
                }
                i += 1;
            }
            '|' => {
                groups[depth].push(Vec::new());
                i += 1;
            }
            '^' => {
                seq.push(Node::Assert(Assertion::BeginText));
                i += 1;
            }
            '$' => {
                seq.push(Node::Assert(Assertion::EndText));
                i += 1;
            }
            '.' => {
                seq.push(Node::Chars(CharSet::any_but_newline()));
                i += 1;
            }
            '[' => {
                let (set, next) = parse_class(&t, i)?;
                seq.push(Node::Chars(set));
                i = next;
            }
            op @ ('*' | '+' | '?' | '{') => {
                let (min, max, mut next) = if op == '{' {
                    let Some((min, max, next)) = parse_repeat(&t, i) else {
                        // Not a valid `{n,m}`: a literal brace.
                        seq.push(Node::Chars(CharSet::literal('{' as u32)));
                        i += 1;
                        after_repeat = false;
                        continue;
                    };
                    let too_big = |n: i64| !(0..=1000).contains(&n);
                    if too_big(min) || max > 1000 || (max >= 0 && min > max) {
                        return Err(format!("invalid repeat count: `{}`", text(&t[i..next])));
                    }
                    // In range 0..=1000 by now.
                    let max = u32::try_from(max).ok();
                    (min as u32, max, next)
                } else {
                    let (min, max) = match op {
                        '*' => (0, None),
                        '+' => (1, None),
                        _ => (0, Some(1)),
                    };
                    (min, max, i + 1)
                };
                if t.get(next) == Some(&'?') {
                    next += 1; // non-greedy: same language
                }
                if after_repeat {
                    return Err(format!(
                        "invalid nested repetition operator: `{}`",
                        text(&t[i..next])
                    ));
                }
                let Some(node) = seq.pop() else {
                    return Err(format!(
                        "missing argument to repetition operator: `{}`",
                        text(&t[i..next])
                    ));
                };
                seq.push(Node::Repeat(Box::new(node), min, max));
                is_repeat = true;
                i = next;
            }
            '\\' => i = parse_backslash(&t, i, seq)?,
            c => {
                seq.push(Node::Chars(CharSet::literal(c as u32)));
                i += 1;
            }
        }
        after_repeat = is_repeat;
    }
    if groups.len() != 1 {
        return Err(format!("missing closing ): `{source}`"));
    }
    Ok(vec![Node::Alt(groups.pop().unwrap_or_default())])
}

/// Go's `parseRepeat` at `t[i] == '{'`: `{n}`, `{n,}` or `{n,m}` as
/// (min, max or -1, index after); `None` when it is not one (then the `{`
/// is a literal). A number of 10^8 or more reads as -1.
fn parse_repeat(t: &[char], i: usize) -> Option<(i64, i64, usize)> {
    let (mut min, mut j) = parse_repeat_int(t, i + 1)?;
    let max = if *t.get(j)? == ',' {
        j += 1;
        if *t.get(j)? == '}' {
            -1
        } else {
            let (max, next) = parse_repeat_int(t, j)?;
            j = next;
            if max < 0 {
                min = -1;
            }
            max
        }
    } else {
        min
    };
    if *t.get(j)? != '}' {
        return None;
    }
    Some((min, max, j + 1))
}

/// Go's `parseInt`: decimal digits without a leading zero.
fn parse_repeat_int(t: &[char], j: usize) -> Option<(i64, usize)> {
    if !t.get(j)?.is_ascii_digit() {
        return None;
    }
    if t[j] == '0' && t.get(j + 1).is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut end = j;
    while t.get(end).is_some_and(|c| c.is_ascii_digit()) {
        end += 1;
    }
    let mut n: i64 = 0;
    for c in &t[j..end] {
        if n >= 100_000_000 {
            n = -1;
            break;
        }
        n = n * 10 + i64::from(c.to_digit(10).unwrap_or(0));
    }
    Some((n, end))
}

/// A `\` outside a class; returns the index after it.
fn parse_backslash(t: &[char], i: usize, seq: &mut Vec<Node>) -> Result<usize, String> {
    let assertion = match t.get(i + 1) {
        Some('A') => Some(Assertion::BeginText),
        Some('z') => Some(Assertion::EndText),
        Some('b') => Some(Assertion::WordBoundary),
        Some('B') => Some(Assertion::NotWordBoundary),
        _ => None,
    };
    if let Some(assertion) = assertion {
        seq.push(Node::Assert(assertion));
        return Ok(i + 2);
    }
    match t.get(i + 1) {
        Some('C') => Err(r"invalid escape sequence: `\C`".to_string()),
        Some('Q') => {
            // Literal text up to `\E` or the end.
            let mut j = i + 2;
            while j < t.len() && !(t[j] == '\\' && t.get(j + 1) == Some(&'E')) {
                seq.push(Node::Chars(CharSet::literal(t[j] as u32)));
                j += 1;
            }
            Ok(if j < t.len() { j + 2 } else { j })
        }
        Some('p' | 'P') => {
            let (item, next) = parse_unicode_class(t, i)?;
            seq.push(Node::Chars(CharSet {
                negated: false,
                items: vec![item],
            }));
            Ok(next)
        }
        Some(&c) if perl_class(c).is_some() => {
            seq.push(Node::Chars(CharSet {
                negated: false,
                items: perl_class(c).into_iter().collect(),
            }));
            Ok(i + 2)
        }
        _ => {
            let (code, next) = parse_escape(t, i)?;
            seq.push(Node::Chars(CharSet::literal(code)));
            Ok(next)
        }
    }
}

/// Go's `parseEscape`: a single-character escape at `t[i] == '\\'`.
fn parse_escape(t: &[char], i: usize) -> Result<(u32, usize), String> {
    let Some(&c) = t.get(i + 1) else {
        return Err("trailing backslash at end of expression".to_string());
    };
    let mut j = i + 2;
    let invalid = |end: usize| {
        Err(format!(
            "invalid escape sequence: `{}`",
            text(&t[i..end.min(t.len())])
        ))
    };
    let octal = |k: usize| t.get(k).and_then(|d| d.to_digit(8));
    let hex = |k: usize| t.get(k).and_then(|d| d.to_digit(16));
    match c {
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok((c as u32, j)),
        '1'..='7' if octal(j).is_none() => invalid(j),
        '0'..='7' => {
            let mut code = c as u32 - '0' as u32;
            for _ in 1..3 {
                let Some(digit) = octal(j) else { break };
                code = code * 8 + digit;
                j += 1;
            }
            Ok((code, j))
        }
        'x' if t.get(j) == Some(&'{') => {
            j += 1;
            let mut code: u32 = 0;
            let mut digits = 0;
            loop {
                match t.get(j) {
                    Some('}') if digits > 0 => return Ok((code, j + 1)),
                    Some(_) if hex(j).is_some() => {
                        code = code * 16 + hex(j).unwrap_or(0);
                        j += 1;
                        digits += 1;
                        if code > 0x10FFFF {
                            return invalid(j);
                        }
                    }
                    _ => return invalid(j + 1),
                }
            }
        }
        'x' => match (hex(j), hex(j + 1)) {
            (Some(hi), Some(lo)) => Ok((hi * 16 + lo, j + 2)),
            _ => invalid(j + 2),
        },
        'a' => Ok((0x07, j)),
        'f' => Ok((0x0C, j)),
        'n' => Ok((0x0A, j)),
        'r' => Ok((0x0D, j)),
        't' => Ok((0x09, j)),
        'v' => Ok((0x0B, j)),
        _ => invalid(j),
    }
}

/// `\pL`, `\p{Name}`, `\PL`, `\p{^Name}` at `t[i] == '\\'`.
fn parse_unicode_class(t: &[char], i: usize) -> Result<(ClassItem, usize), String> {
    let mut negated = t[i + 1] == 'P';
    let (name, next) = match t.get(i + 2) {
        Some('{') => {
            let Some(end) = (i + 3..t.len()).find(|&k| t[k] == '}') else {
                return Err(format!(
                    "invalid character class range: `{}`",
                    text(&t[i..])
                ));
            };
            (text(&t[i + 3..end]), end + 1)
        }
        Some(&c) => (c.to_string(), i + 3),
        None => (String::new(), i + 2),
    };
    let bad = || format!("invalid character class range: `{}`", text(&t[i..next]));
    let name = match name.strip_prefix('^') {
        Some(rest) => {
            negated = !negated;
            rest.to_string()
        }
        None => name,
    };
    // Go knows "Any", the general categories ("L", "Lu", …) and the scripts
    // ("Greek", "Old_Italic", …): all capitalised ASCII names.
    let plausible = name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !plausible {
        return Err(bad());
    }
    let re = Regex::new(&format!(r"\A\p{{{name}}}\z")).map_err(|_| bad())?;
    Ok((ClassItem::Unicode { negated, name, re }, next))
}

/// Go's `parseClass` at `t[i] == '['`; returns the index after the `]`.
fn parse_class(t: &[char], i: usize) -> Result<(CharSet, usize), String> {
    let missing = || format!("missing closing ]: `{}`", text(&t[i..]));
    let mut j = i + 1;
    let mut negated = false;
    if t.get(j) == Some(&'^') {
        negated = true;
        j += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    loop {
        match t.get(j) {
            None => return Err(missing()),
            Some(']') if !first => {
                j += 1;
                break;
            }
            _ => {}
        }
        first = false;
        if t.len() - j > 2 && t[j] == '[' && t[j + 1] == ':' {
            if let Some(end) = (j + 2..t.len() - 1).find(|&k| t[k] == ':' && t[k + 1] == ']') {
                let spec = text(&t[j..end + 2]);
                let Some(item) = posix_class(&spec) else {
                    return Err(format!("invalid character class range: `{spec}`"));
                };
                items.push(item);
                j = end + 2;
                continue;
            }
        }
        if t[j] == '\\' {
            if let Some('p' | 'P') = t.get(j + 1) {
                let (item, next) = parse_unicode_class(t, j)?;
                items.push(item);
                j = next;
                continue;
            }
            if let Some(item) = t.get(j + 1).and_then(|&c| perl_class(c)) {
                items.push(item);
                j += 2;
                continue;
            }
        }
        let range_start = j;
        let (lo, next) = parse_class_char(t, j).ok_or_else(missing)??;
        j = next;
        let mut hi = lo;
        if t.len() - j >= 2 && t[j] == '-' && t[j + 1] != ']' {
            let (end, next) = parse_class_char(t, j + 1).ok_or_else(missing)??;
            if end < lo {
                return Err(format!(
                    "invalid character class range: `{}`",
                    text(&t[range_start..next])
                ));
            }
            hi = end;
            j = next;
        }
        items.push(ClassItem::Range(lo, hi));
    }
    Ok((CharSet { negated, items }, j))
}

/// One character of a class; `None` at the end of the expression.
fn parse_class_char(t: &[char], j: usize) -> Option<Result<(u32, usize), String>> {
    match t.get(j)? {
        '\\' => Some(parse_escape(t, j)),
        &c => Some(Ok((c as u32, j + 1))),
    }
}

// ---------------------------------------------------------------------------
// Writing the parsed expression as a Rust regex

fn emit_nodes(nodes: &[Node], out: &mut String) {
    for node in nodes {
        emit_node(node, out);
    }
}

fn emit_node(node: &Node, out: &mut String) {
    match node {
        Node::Chars(set) => emit_set(set, out),
        Node::Assert(assertion) => out.push_str(match assertion {
            Assertion::BeginText => r"\A",
            Assertion::EndText => r"\z",
            Assertion::WordBoundary => r"(?-u:\b)",
            Assertion::NotWordBoundary => r"(?-u:\B)",
        }),
        Node::Alt(alternatives) => {
            out.push_str("(?:");
            for (k, seq) in alternatives.iter().enumerate() {
                if k > 0 {
                    out.push('|');
                }
                emit_nodes(seq, out);
            }
            out.push(')');
        }
        Node::Repeat(node, min, max) => {
            out.push_str("(?:");
            emit_node(node, out);
            out.push(')');
            let _ = match max {
                Some(max) => write!(out, "{{{min},{max}}}"),
                None => write!(out, "{{{min},}}"),
            };
        }
    }
}

fn emit_set(set: &CharSet, out: &mut String) {
    let mut body = String::new();
    for item in &set.items {
        match item {
            ClassItem::Range(lo, hi) => {
                // Surrogate code points are not characters: leave them out.
                if *lo <= 0xD7FF {
                    emit_range(*lo, (*hi).min(0xD7FF), &mut body);
                }
                if *hi >= 0xE000 {
                    emit_range((*lo).max(0xE000), *hi, &mut body);
                }
            }
            ClassItem::Ascii { negated, ranges } => {
                body.push('[');
                if *negated {
                    body.push('^');
                }
                for &(lo, hi) in *ranges {
                    emit_range(lo, hi, &mut body);
                }
                body.push(']');
            }
            ClassItem::Unicode { negated, name, .. } => {
                let p = if *negated { 'P' } else { 'p' };
                let _ = write!(body, r"\{p}{{{name}}}");
            }
        }
    }
    if body.is_empty() {
        // Only surrogates: matches nothing (or, negated, any character).
        out.push_str(if set.negated {
            r"[\x{0}-\x{10FFFF}]"
        } else {
            r"[^\x{0}-\x{10FFFF}]"
        });
        return;
    }
    out.push('[');
    if set.negated {
        out.push('^');
    }
    out.push_str(&body);
    out.push(']');
}

fn emit_range(lo: u32, hi: u32, out: &mut String) {
    if lo == hi {
        let _ = write!(out, r"\x{{{lo:X}}}");
    } else {
        let _ = write!(out, r"\x{{{lo:X}}}-\x{{{hi:X}}}");
    }
}

// ---------------------------------------------------------------------------
// An automaton for the same expression, to decide what can match below a
// directory

#[derive(Debug, Clone)]
struct Nfa {
    states: Vec<State>,
    start: usize,
}

#[derive(Debug, Clone)]
enum State {
    Chars(CharSet, usize),
    Split(usize, usize),
    Assert(Assertion, usize),
    Match,
}

impl Nfa {
    fn build(nodes: &[Node]) -> Nfa {
        let mut states = vec![State::Match];
        let start = Nfa::compile_seq(&mut states, nodes, 0);
        Nfa { states, start }
    }

    /// Add states for `nodes` followed by state `next`; returns the entry.
    fn compile_seq(states: &mut Vec<State>, nodes: &[Node], next: usize) -> usize {
        nodes
            .iter()
            .rev()
            .fold(next, |next, node| Nfa::compile_node(states, node, next))
    }

    fn compile_node(states: &mut Vec<State>, node: &Node, next: usize) -> usize {
        match node {
            Node::Chars(set) => {
                states.push(State::Chars(set.clone(), next));
                states.len() - 1
            }
            Node::Assert(assertion) => {
                states.push(State::Assert(*assertion, next));
                states.len() - 1
            }
            Node::Alt(alternatives) => {
                let entries: Vec<usize> = alternatives
                    .iter()
                    .map(|seq| Nfa::compile_seq(states, seq, next))
                    .collect();
                let mut entry = *entries.last().unwrap_or(&next);
                for &other in entries.iter().rev().skip(1) {
                    states.push(State::Split(other, entry));
                    entry = states.len() - 1;
                }
                entry
            }
            Node::Repeat(body, min, max) => {
                // The optional or unbounded tail first, then `min` copies.
                let mut entry = match max {
                    None => {
                        states.push(State::Split(next, next));
                        let split = states.len() - 1;
                        let body_entry = Nfa::compile_node(states, body, split);
                        states[split] = State::Split(body_entry, next);
                        split
                    }
                    Some(max) => {
                        let mut entry = next;
                        for _ in *min..*max {
                            let body_entry = Nfa::compile_node(states, body, entry);
                            states.push(State::Split(body_entry, next));
                            entry = states.len() - 1;
                        }
                        entry
                    }
                };
                for _ in 0..*min {
                    entry = Nfa::compile_node(states, body, entry);
                }
                entry
            }
        }
    }

    /// The character-consuming states reachable from `roots` without
    /// consuming, and whether the match state is reachable.
    fn closure(&self, roots: Vec<usize>, holds: &dyn Fn(Assertion) -> bool) -> (Vec<usize>, bool) {
        let mut seen = vec![false; self.states.len()];
        let mut stack = roots;
        let mut consuming = Vec::new();
        let mut matched = false;
        while let Some(s) = stack.pop() {
            if std::mem::replace(&mut seen[s], true) {
                continue;
            }
            match &self.states[s] {
                State::Match => matched = true,
                State::Chars(..) => consuming.push(s),
                State::Split(a, b) => {
                    stack.push(*b);
                    stack.push(*a);
                }
                State::Assert(assertion, next) => {
                    if holds(*assertion) {
                        stack.push(*next);
                    }
                }
            }
        }
        (consuming, matched)
    }

    fn step(&self, consuming: &[usize], c: char) -> Vec<usize> {
        consuming
            .iter()
            .filter_map(|&s| match &self.states[s] {
                State::Chars(set, next) if set.contains(c) => Some(*next),
                _ => None,
            })
            .collect()
    }

    /// Unanchored search, like `Regexp.MatchString` (used by the tests to
    /// check the automaton against the emitted regex).
    #[cfg(test)]
    fn is_match(&self, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        let mut pending = Vec::new();
        for pos in 0..=chars.len() {
            let prev = pos.checked_sub(1).map(|k| chars[k]);
            let next = chars.get(pos).copied();
            pending.push(self.start);
            let (consuming, matched) = self.closure(pending, &|a| assertion_holds(a, prev, next));
            if matched {
                return true;
            }
            let Some(c) = next else { break };
            pending = self.step(&consuming, c);
        }
        false
    }

    /// Whether some text that starts with `prefix` and has at least one more
    /// character matches.
    fn can_match_with_prefix(&self, prefix: &str) -> bool {
        let chars: Vec<char> = prefix.chars().collect();
        let mut pending = Vec::new();
        for (pos, &c) in chars.iter().enumerate() {
            let prev = pos.checked_sub(1).map(|k| chars[k]);
            pending.push(self.start);
            let (consuming, matched) =
                self.closure(pending, &|a| assertion_holds(a, prev, Some(c)));
            if matched {
                // Already matched inside the prefix: any text will do.
                return true;
            }
            pending = self.step(&consuming, c);
        }
        // Past the prefix the characters are ours to choose. Word-boundary
        // assertions are assumed satisfiable and every set non-empty, which
        // can only err towards "yes".
        let mut seen = HashSet::new();
        let mut stack: Vec<(usize, bool)> = pending.into_iter().map(|s| (s, false)).collect();
        // The search may also start right after the prefix, or later.
        stack.push((self.start, false));
        stack.push((self.start, true));
        while let Some((s, consumed)) = stack.pop() {
            if !seen.insert((s, consumed)) {
                continue;
            }
            match &self.states[s] {
                State::Match => return true,
                State::Chars(_, next) => stack.push((*next, true)),
                State::Split(a, b) => {
                    stack.push((*a, consumed));
                    stack.push((*b, consumed));
                }
                State::Assert(assertion, next) => {
                    let possible = match assertion {
                        Assertion::BeginText => false,
                        Assertion::EndText => consumed,
                        Assertion::WordBoundary | Assertion::NotWordBoundary => true,
                    };
                    if possible {
                        stack.push((*next, consumed));
                    }
                }
            }
        }
        false
    }
}

fn assertion_holds(assertion: Assertion, prev: Option<char>, next: Option<char>) -> bool {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    match assertion {
        Assertion::BeginText => prev.is_none(),
        Assertion::EndText => next.is_none(),
        Assertion::WordBoundary => word(prev) != word(next),
        Assertion::NotWordBoundary => word(prev) == word(next),
    }
}

/// The README's examples, run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
    }

    #[track_caller]
    fn check(text: &str, excluded: &[&str], kept: &[&str]) {
        let di = ignore(text);
        for path in excluded {
            assert!(di.is_excluded(path), "{text:?} should exclude {path:?}");
        }
        for path in kept {
            assert!(!di.is_excluded(path), "{text:?} should keep {path:?}");
        }
    }

    #[test]
    fn empty_matcher_excludes_nothing() {
        let di = DockerIgnore::empty();
        assert!(!di.is_excluded("a"));
        assert!(!di.is_excluded("a/b/c.txt"));
        assert!(!di.may_reinclude_under("a"));
        check("", &[], &["a", "b/c"]);
        check("\n\n", &[], &["a"]);
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let text = "# a comment\n\n   \n\t\n*.log\n# another: *.txt\n";
        check(text, &["x.log"], &["x.txt", "# a comment", "#"]);
        // Only a '#' in the first column starts a comment.
        check("  #keep\n", &["#keep"], &["keep"]);
        // A '#' that is escaped or not first is part of the pattern.
        check("\\#x\nfoo#bar\n", &["#x", "foo#bar"], &["x", "foo"]);
    }

    #[test]
    fn whitespace_bom_and_crlf() {
        check(
            "\u{feff}first\r\n  second  \r\n\tthird\t",
            &["first", "second", "third/x"],
            &["\u{feff}first", " second"],
        );
        // Whitespace after '!' is dropped too.
        check("*.md\n!   README.md\n", &["a.md"], &["README.md"]);
    }

    #[test]
    fn star_matches_within_one_segment() {
        check(
            "*.md",
            &["README.md", "a.md", ".md", "x.md/inside.txt"],
            &["docs/a.md", "a.mdx", "md", "a/b.md"],
        );
        check("*", &["a", "a/b/c", ".hidden"], &[]);
        check("a*/b", &["abc/b", "a/b", "a/b/c"], &["a/c/b", "b"]);
    }

    #[test]
    fn exclusion_re_includes() {
        let text = "*.md\n!README.md\n";
        check(
            text,
            &["CHANGELOG.md", "a.md"],
            &["README.md", "docs/README.md", "src/x.rs"],
        );
    }

    #[test]
    fn a_directory_pattern_excludes_everything_below() {
        check(
            "docs",
            &["docs", "docs/a.txt", "docs/a/b.txt", "docs/a/b/c/d"],
            &["docsx", "a/docs", "doc", "src/docs/x"],
        );
        check("docs/", &["docs/a/b.txt"], &["docsx"]);
        check("a/b", &["a/b", "a/b/c/d"], &["a", "a/bc", "a/c"]);
    }

    #[test]
    fn double_star_prefix() {
        check(
            "**/*.go",
            &["main.go", "a/b/c.go", "a/.go", "vendor/x.go/y"],
            &["main.go.txt", "a/b/c.gox", "go"],
        );
        check(
            "**/node_modules",
            &["node_modules", "a/node_modules", "a/b/node_modules/x/y"],
            &["node_modulesx", "xnode_modules/a"],
        );
        check("**", &["a", "a/b/c"], &[]);
        check(
            "**/dir2/*",
            &["dir/dir2/file", "dir2/file"],
            &["dir/dir2", "dir2"],
        );
    }

    #[test]
    fn double_star_suffix() {
        check(
            "foo/**",
            &["foo/a", "foo/a/b", "foo/.x"],
            &["foo", "foobar/x", "a/foo/b"],
        );
        check(
            "a/**/b",
            &["a/b", "a/x/b", "a/x/y/b", "a/x/b/c"],
            &["a/xb", "b"],
        );
        // `foo**` is a plain string prefix, as in moby.
        check("foo**", &["foo", "foobar", "foo/x"], &["fo", "x/foo"]);
    }

    #[test]
    fn leading_double_star_is_a_plain_suffix_test() {
        // moby: "**" then plain text is a string-suffix test, not a regex.
        check("**foo", &["foo", "xfoo", "a/bfoo", "a/foo"], &["foox"]);
        check("**/.foo", &[".foo", "a/.foo"], &["bar.foo"]);
    }

    #[test]
    fn leading_slash_is_dropped() {
        check("/build", &["build", "build/out/a.o"], &["src/build"]);
        check(
            "/build\n!/build/keep\n",
            &["build/x"],
            &["build/keep", "build/keep/y"],
        );
        check("//a///b//", &["a/b", "a/b/c"], &["b"]);
        // A lone "/" stays "/" and matches no relative path.
        check("/", &[], &["a", "b/c"]);
    }

    #[test]
    fn patterns_are_cleaned() {
        check("./x", &["x", "x/y"], &["y"]);
        check("a/./b/../c", &["a/c"], &["a/b", "a/b/c"]);
        check("./*.tmp\n!./keep.tmp", &["a.tmp"], &["keep.tmp"]);
        check("a/..", &[], &["a"]); // cleans to ".", which matches no path
                                    // Paths are cleaned as well.
        check("docs", &["./docs/a", "docs/", "docs//a"], &["./a"]);
    }

    #[test]
    fn question_mark_is_one_character_but_not_a_slash() {
        check(
            "file?.txt",
            &["file1.txt", "fileé.txt", "file?.txt"],
            &["file.txt", "file12.txt", "file/.txt"],
        );
        check("a???b", &["a123b"], &["a☺b", "ab"]);
    }

    #[test]
    fn character_classes() {
        check(
            "[abc].txt",
            &["a.txt", "c.txt"],
            &["d.txt", "ab.txt", "[abc].txt"],
        );
        check("a[b-d]e", &["ace", "abe", "ade"], &["ae", "aae", "aee"]);
        check("a[^b-d]e", &["aze", "a/e"], &["ace"]);
        check("[a-ζ]*", &["α", "abc", "Α"], &["A", "B/c"]);
        check("[\\]a]", &["]", "a"], &["b"]);
        check("[x\\-]", &["x", "-"], &["z"]);
        // moby hands classes to Go's regexp: only '^' negates, so "[!a]"
        // is the set {'!', 'a'} (unlike .gitignore).
        check("[!a]x", &["!x", "ax"], &["bx"]);
        // ... and POSIX classes work inside brackets.
        check("[[:digit:]]*", &["1abc", "9"], &["a1"]);
        check("v[[:^alpha:]]", &["v1", "v-"], &["va"]);
    }

    #[test]
    fn escaped_characters() {
        check("\\*.txt", &["*.txt"], &["a.txt"]);
        check("a\\*b", &["a*b"], &["ab", "axb"]);
        check("a\\[b", &["a[b"], &["ab"]);
        check("a\\?", &["a?"], &["ab"]);
        check("a\\\\", &["a\\"], &["a"]);
        // Characters special to regexes but not to patterns are literal.
        check("a.|)$(}+{bc", &["a.|)$(}+{bc"], &["aX|)$(}+{bc"]);
        check("a(b)c/d?f", &["a(b)c/def"], &["abc/def"]);
        check(".*", &[".foo", ".a/b"], &["foo"]);
        // An escaped letter keeps Go's regexp meaning, as in Docker.
        check("v\\d", &["v1"], &["vd"]);
        check("\\x41*", &["A", "Abc"], &["x41"]);
    }

    #[test]
    fn last_match_wins() {
        check("!keep.txt\n*.txt\n", &["keep.txt", "a.txt"], &[]);
        check("*.txt\n!keep.txt\n", &["a.txt"], &["keep.txt"]);
        check("*.txt\n!keep.txt\nkeep.txt\n", &["keep.txt"], &[]);
        check("docs\n!docs/README.md\n", &["docs/a"], &["docs/README.md"]);
        check(
            "docs/*\n!docs/README.md\n",
            &["docs/a"],
            &["docs/README.md"],
        );
        // A re-include of a directory covers what is below it ...
        check("**\n!src\n", &["README.md"], &["src", "src/a/b.rs"]);
        // ... until a later pattern excludes again.
        check(
            "**\n!util/docker/web\nutil/docker/web/foo\n",
            &["util/docker/web/foo", "util/docker/web/foo/x"],
            &["util/docker/web/bar"],
        );
    }

    #[test]
    fn context_root_is_never_excluded() {
        let di = ignore("**\n*\n.\n");
        assert!(!di.is_excluded(""));
        assert!(!di.is_excluded("."));
        assert!(!di.is_excluded("./"));
        assert!(di.is_excluded("a"));
    }

    #[test]
    fn may_reinclude_under_directories() {
        let di = ignore("docs\n!docs/README.md\n");
        assert!(di.is_excluded("docs"));
        assert!(di.may_reinclude_under("docs"));
        assert!(!di.may_reinclude_under("docs/sub"));
        assert!(!di.may_reinclude_under("other"));

        // No '!' pattern at all: nothing is ever re-included.
        let di = ignore("node_modules\n*.log\n");
        assert!(!di.may_reinclude_under("node_modules"));

        // Wildcards are decided exactly.
        let di = ignore("build\n!build/*/keep\n!**/*.keep\n");
        assert!(di.may_reinclude_under("build"));
        assert!(di.may_reinclude_under("build/a"));
        assert!(di.may_reinclude_under("build/a/b")); // via **/*.keep
        let di = ignore("build\n!build/*/keep\n");
        assert!(di.may_reinclude_under("build/a"));
        assert!(!di.may_reinclude_under("build/a/b"));
        assert!(!di.may_reinclude_under("build/a/keep")); // keep itself is the match
        let di = ignore("**\n!src/*.rs\n");
        assert!(di.may_reinclude_under("src"));
        assert!(!di.may_reinclude_under("srcx"));
        assert!(!di.may_reinclude_under("target"));
        let di = ignore("**\n!src**\n");
        assert!(di.may_reinclude_under("src"));
        assert!(di.may_reinclude_under("src2/a"));
        assert!(!di.may_reinclude_under("sr"));

        // A '!' pattern before the one that excludes the directory is
        // overridden for everything below it too.
        let di = ignore("!docs/README.md\ndocs\n");
        assert!(di.is_excluded("docs/README.md"));
        assert!(!di.may_reinclude_under("docs"));
        let di = ignore("!docs/README.md\ndocs\n!docs/x/**\n");
        assert!(di.may_reinclude_under("docs"));
        assert!(di.may_reinclude_under("docs/x"));
        assert!(!di.may_reinclude_under("docs/y"));
    }

    #[test]
    fn may_reinclude_under_is_sound() {
        // Whenever it says no for an excluded directory, every path below it
        // in the sample is excluded.
        let texts = [
            "docs\n!docs/README.md",
            "**\n!src/*.rs\n!**/keep",
            "a\n!a/b?/c\n!a/[xy]/**",
            "*\n!*/b\n",
            "x*\n!x*/y*\n!**z",
            "a\n!a/\\d\n",
            "a/**\n!a/**/b\n",
            "*/*\n!a/b[^c]/d",
        ];
        let paths = [
            "a",
            "a/b",
            "a/b1",
            "a/b1/c",
            "a/x",
            "a/x/y",
            "a/1",
            "a/bd/d",
            "a/bc/d",
            "a/z",
            "docs",
            "docs/README.md",
            "docs/x",
            "src",
            "src/a.rs",
            "src/a/b.rs",
            "keep",
            "t/keep",
            "x1",
            "x1/y2",
            "x1/q",
            "x1/qz",
            "a/b/c/b",
        ];
        for text in texts {
            let di = ignore(text);
            for dir in paths {
                if di.is_excluded(dir) && !di.may_reinclude_under(dir) {
                    let prefix = format!("{dir}/");
                    for path in paths.iter().filter(|p| p.starts_with(&prefix)) {
                        assert!(
                            di.is_excluded(path),
                            "{text:?}: {dir:?} skipped, {path:?} kept"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn bad_pattern_reports_its_line() {
        let err = DockerIgnore::parse("ok\n# comment\n\nfoo[\nbar\n").unwrap_err();
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains("\"foo[\""), "{err}");
        assert!(err.contains("syntax error in pattern"), "{err}");

        let err = DockerIgnore::parse("a\n!\n").unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("illegal exclusion pattern"),
            "{err}"
        );
        let err = DockerIgnore::parse("a\n  !  \n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");

        for bad in [
            "[", "[^", "[^bc", "a[", "[]a]", "[-]", "[x-]", "[-x]", "[a-b-c]", "a\\",
        ] {
            assert!(
                DockerIgnore::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
        // Accepted by filepath.Match but not by Go's regexp: Docker fails
        // the build when it uses them, so they are rejected here.
        for bad in ["[Local-Only]/", "[z-a]", "foo\\p", "a\\q*", "[[:nope:]]"] {
            let err = DockerIgnore::parse(bad).unwrap_err();
            assert!(err.contains("line 1"), "{err}");
        }
    }

    #[test]
    fn read_all_like_ignorefile() {
        let text =
            "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n";
        let lines: Vec<(usize, String)> = read_lines(text)
            .into_iter()
            .map(|l| (l.number, l.pattern))
            .collect();
        let expected = [
            (1, "test1"),
            (2, "test2"),
            (3, "a/file/here"),
            (5, "lastfile"),
            (7, "!inverted/abs/path"),
        ];
        let expected: Vec<(usize, String)> =
            expected.iter().map(|(n, p)| (*n, p.to_string())).collect();
        assert_eq!(lines, expected);
        let patterns: Vec<String> = read_lines("!\n! \n!!a\n")
            .into_iter()
            .map(|l| l.pattern)
            .collect();
        assert_eq!(patterns, ["!", "!", "!!a"]);
    }

    #[test]
    fn go_clean() {
        for (input, output) in [
            ("", "."),
            (".", "."),
            ("a/b", "a/b"),
            ("a//b/", "a/b"),
            ("./a/./b/.", "a/b"),
            ("a/../b", "b"),
            ("a/../..", ".."),
            ("../a/..", ".."),
            ("/../a", "/a"),
            ("/", "/"),
            ("//", "/"),
        ] {
            assert_eq!(super::go_clean(input), output, "{input:?}");
        }
    }

    #[test]
    fn moby_compile_kinds() {
        for (pattern, kind, regex) in [
            ("*", Kind::Regexp, "^[^/]*$"),
            ("a*/b", Kind::Regexp, "^a[^/]*/b$"),
            ("**", Kind::Suffix, ""),
            ("**/**", Kind::Regexp, "^(.*/)?.*$"),
            ("dir/**", Kind::Prefix, ""),
            ("**/dir", Kind::Suffix, ""),
            ("**/dir2/*", Kind::Regexp, "^(.*/)?dir2/[^/]*$"),
            ("**/dir2/**", Kind::Regexp, "^(.*/)?dir2/.*$"),
            ("**file", Kind::Suffix, ""),
            ("**/**/*.txt", Kind::Regexp, r"^(.*/)?(.*/)?[^/]*\.txt$"),
            ("a[b-d]e", Kind::Regexp, "^a[b-d]e$"),
            (".*", Kind::Regexp, r"^\.[^/]*$"),
            ("abc.def", Kind::Exact, ""),
            ("abc?def", Kind::Regexp, "^abc[^/]def$"),
            ("a(b)c/def", Kind::Exact, ""),
        ] {
            let (got_kind, got_regex) = moby_regex(pattern);
            assert_eq!(got_kind, kind, "{pattern:?}");
            if kind == Kind::Regexp {
                assert_eq!(got_regex, regex, "{pattern:?}");
            }
        }
    }

    /// moby/patternmatcher's own MatchesOrParentMatches and filepath.Match
    /// expectations.
    #[test]
    fn moby_test_vectors() {
        let cases: &[(&str, &str, bool)] = &[
            ("**", "file", true),
            ("**", "file/", true),
            ("**/", "file", true),
            ("**/", "file/", true),
            ("**", "dir/file", true),
            ("**/", "dir/file", true),
            ("**", "dir/file/", true),
            ("**/", "dir/file/", true),
            ("**/**", "dir/file", true),
            ("**/**", "dir/file/", true),
            ("dir/**", "dir/file", true),
            ("dir/**", "dir/file/", true),
            ("dir/**", "dir/dir2/file", true),
            ("dir/**", "dir/dir2/file/", true),
            ("**/dir", "dir", true),
            ("**/dir", "dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/*", "dir/dir2/file/", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file/", true),
            ("**file", "file", true),
            ("**file", "dir/file", true),
            ("**/file", "dir/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file", "dir/dir/file", true),
            ("**/file*", "dir/dir/file", true),
            ("**/file*", "dir/dir/file.txt", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/file*.txt", "dir/dir/file.txt", true),
            ("**/file*.txt*", "dir/dir/file.txt", true),
            ("**/**/*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/*.txt", "file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/file.txt", true),
            ("a**/*.txt", "a/dir/file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt", "a/file.txt", true),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ae", false),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcdef", false),
            ("abc.def", "abc.def", true),
            ("abc.def", "abcZdef", false),
            ("abc?def", "abcZdef", true),
            ("abc?def", "abcdef", false),
            ("a\\\\", "a\\", true),
            ("**/foo/bar", "foo/bar", true),
            ("**/foo/bar", "dir/foo/bar", true),
            ("**/foo/bar", "dir/dir2/foo/bar", true),
            ("abc/**", "abc", false),
            ("abc/**", "abc/def", true),
            ("abc/**", "abc/def/ghi", true),
            ("**/.foo", ".foo", true),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a(b)c/def", "a(b)c/xyz", false),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            ("a\\*b", "a*b", true),
            // filepath.Match's own table
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", true),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a[^a][^a][^a]b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "x", true),
            ("[\\-x]", "-", true),
            ("[\\-x]", "a", false),
            ("*x", "xxx", true),
        ];
        for &(pattern, path, expected) in cases {
            let di = ignore(pattern);
            assert_eq!(
                di.is_excluded(path),
                expected,
                "pattern {pattern:?}, path {path:?}"
            );
        }
        let multi: &[(&str, &str, bool)] = &[
            ("**\n!util/docker/web", "util/docker/web/foo", false),
            (
                "**\n!util/docker/web\nutil/docker/web/foo",
                "util/docker/web/foo",
                true,
            ),
            (
                "**\n!dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                false,
            ),
            ("!fileutils.go\n*.go", "fileutils.go", true),
            ("*.go\n!fileutils.go", "fileutils.go", false),
            ("docs\n!docs/README.md", "docs/README.md", false),
            ("docs/\n!docs/README.md", "docs/README.md", false),
            ("docs/*\n!docs/README.md", "docs/README.md", false),
        ];
        for &(text, path, expected) in multi {
            assert_eq!(
                ignore(text).is_excluded(path),
                expected,
                "{text:?}, path {path:?}"
            );
        }
    }

    #[test]
    fn go_regexp_quirks_are_kept() {
        // `[*]` becomes `[[^/]*]` in moby's regex: a class of '[', '^' and
        // '/' repeated, then a literal ']'.
        check("[*]", &["]", "[]", "^/]"], &["*", "a]"]);
        // `\Q` quotes the rest, including the closing `$`: a prefix test.
        check("a\\Q*", &["a[^/]*$", "a[^/]*$xyz"], &["a", "ab"]);
        // `\b` is an (ASCII) word boundary, so `src\bin` never matches.
        check("src\\bin*", &[], &["src\\bin", "srcbin", "src/bin"]);
        check("a\\b*", &["a", "a.x", "aé"], &["ab"]);
        // Octal escapes.
        check("\\101?", &["AB"], &["A"]);
        // moby leaves `|`, `{` and `}` unescaped: in a regex pattern they
        // are Go's alternation and repetition. `^[^/]*\.md|[^/]*\.txt$`:
        check(
            "*.md|*.txt",
            &["a.md", "a.mdx", "x/y.txt"],
            &["a/b.md", "txt"],
        );
        check("x{2}*", &["xx", "xxa"], &["x", "x{2}", "xa"]);
        check("x{,2}*", &["x{,2}", "x{,2}a"], &["xx"]);
        // Without a wildcard the pattern is plain text.
        check("a|b", &["a|b"], &["a", "b"]);
        check("x{2}", &["x{2}"], &["xx"]);
        // A leading `|` gives an empty alternative: everything matches.
        check("|x]", &["a", "b/c"], &[]);
        assert!(DockerIgnore::parse("x{1001}*").is_err());
        assert!(DockerIgnore::parse("x{2}{3}*").is_err());
        assert!(DockerIgnore::parse("|{2}*").is_err());
    }

    #[test]
    fn automaton_agrees_with_regex() {
        let patterns = [
            "*",
            "a*/b",
            "**/dir2/*",
            "**/**/*.txt",
            "a[b-d]e",
            "a[^b-d]e",
            ".*",
            "abc?def",
            "a**/*.txt",
            "a/*.txt**",
            "[*]",
            "a\\Q*",
            "src\\bin*",
            "a\\b*",
            "\\101?",
            "v\\d",
            "[[:digit:]]*",
            "v[[:^alpha:]]",
            "[!a]x",
            "x[\\pL]?",
            "y\\PL*",
            "a\\Bb*",
            "\\s?",
            "[^\\w]*",
            "[\\D]?",
            "é[α-ω]*",
            "a/**/b",
            "**/x/**",
            "a?\\z*",
            "*.md|*.txt",
            "x{2}*",
            "a{1,3}?",
            "|x*",
            "x{0}*",
            "b{2,}?",
            "x*|a?",
        ];
        let paths = [
            "",
            "a",
            "b",
            "ab",
            "a/b",
            "abc/b",
            "a/c/b",
            "dir2/x",
            "d/dir2/x",
            "x.txt",
            "a/b/c.txt",
            "ace",
            "aze",
            ".foo",
            "abcZdef",
            "a/x.txt",
            "]",
            "[]",
            "^/]",
            "a[^/]*$",
            "src\\bin",
            "aé",
            "a.x",
            "AB",
            "v1",
            "vd",
            "1x",
            "v-",
            "va",
            "!x",
            "ax",
            "xé",
            "y1",
            "y",
            " ",
            "\t",
            "ééα",
            "a/q/b",
            "x",
            "q/x/r",
            "a\n",
            "a ",
            "ab b",
            "a.md",
            "b/c.txt",
            "xx",
            "xxx",
            "aaa",
            "aaaa",
            "bb",
            "bbbb",
        ];
        for pattern in patterns {
            let Matcher::Regex { re, nfa } = Matcher::compile(pattern).unwrap() else {
                panic!("{pattern:?} should be a regex pattern");
            };
            for path in paths {
                assert_eq!(
                    nfa.is_match(path),
                    re.is_match(path),
                    "pattern {pattern:?} ({re}), path {path:?}"
                );
            }
        }
    }
}

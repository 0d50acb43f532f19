//! Just enough Dockerfile reading to know which context paths a build can
//! read: the sources of `COPY`/`ADD` (not `--from` another stage or an
//! image) and of `RUN --mount=type=bind`, with variables substituted as
//! BuildKit does (global `ARG`s only where a stage declares them again,
//! `ENV` over `ARG`, stage scope). Used to narrow a service's inputs digest in
//! monorepos where every service shares one context. Pure logic, and
//! conservative: whenever the reading is not certain (a variable whose value
//! is not known here, `ONBUILD`, a frontend other than Docker's, anything
//! unexpected) it answers "the whole context".
//!
//! Lines are joined and split as BuildKit's parser does: parser directives
//! (`# escape=`, `# syntax=`), continuation lines (comments and empty lines
//! inside them skipped, no space added), heredoc bodies skipped, flags with
//! quoted values, the JSON and the whitespace-separated forms.

use std::collections::BTreeMap;

/// A context path the build reads: that file or directory and everything
/// below it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Source {
    /// Relative to the context root, `/`-separated, never `.` or `..`.
    pub path: String,
    /// Only a prefix of a wildcard source: anything below it may match,
    /// and a symlink below it may be followed.
    pub pattern: bool,
}

/// The context paths the Dockerfile reads, or `None` when it may read
/// anything (`COPY . .`, a variable not known here, a bind mount of the
/// whole context, `ONBUILD`, another frontend…).
pub fn context_sources(text: &str, build_args: &BTreeMap<String, String>) -> Option<Vec<Source>> {
    let directives = directives(text)?;
    let mut reader = Reader::new(build_args, directives.escape);
    for instruction in instructions(text, directives.escape)? {
        reader.instruction(&instruction)?;
    }
    let mut sources = reader.sources;
    sources.sort();
    sources.dedup();
    Some(sources)
}

/// The images the stages are based on (not `scratch`, not another stage),
/// with global `ARG`s substituted; `None` when one is not known here. Their
/// `ONBUILD` triggers run in this build and may read the context.
pub fn base_images(text: &str, build_args: &BTreeMap<String, String>) -> Option<Vec<String>> {
    let directives = directives(text)?;
    let mut reader = Reader::new(build_args, directives.escape);
    for instruction in instructions(text, directives.escape)? {
        match instruction.keyword.as_str() {
            "ARG" | "FROM" => reader.instruction(&instruction)?,
            _ => {}
        }
    }
    let mut bases = Vec::new();
    for base in reader.bases {
        bases.push(base?);
    }
    bases.sort();
    bases.dedup();
    Some(bases)
}

/// Whether `rel` (a context path) is one of `sources` or below one.
pub fn is_under(rel: &str, sources: &[Source]) -> bool {
    sources.iter().any(|s| under(rel, &s.path))
}

/// `rel` is `base` or below it.
pub fn under(rel: &str, base: &str) -> bool {
    rel == base || rel.strip_prefix(base).is_some_and(|r| r.starts_with('/'))
}

struct Directives {
    escape: char,
}

/// The parser directives at the top of the file; `None` for a frontend
/// other than Docker's Dockerfile frontend (it may read anything).
fn directives(text: &str) -> Option<Directives> {
    let mut d = Directives { escape: '\\' };
    for line in text.lines() {
        let Some(body) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = body.split_once('=') else {
            break;
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
            break;
        }
        let value = value.trim();
        match key.to_ascii_lowercase().as_str() {
            "escape" => match value {
                "`" => d.escape = '`',
                "\\" => d.escape = '\\',
                _ => return None,
            },
            "syntax" => {
                let image = value.to_ascii_lowercase();
                let image = image.strip_prefix("docker.io/").unwrap_or(&image);
                let name = image.split(['@', ':']).next().unwrap_or_default();
                if name != "docker/dockerfile" && name != "docker/dockerfile-upstream" {
                    return None;
                }
            }
            _ => {}
        }
    }
    Some(d)
}

/// One logical instruction.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    /// After the keyword, flags included.
    rest: String,
    /// Names of the heredocs it declares (their bodies are skipped).
    heredocs: Vec<String>,
}

/// Logical instructions as BuildKit's parser makes them; `None` when the
/// text is not certain to parse the same way (an unterminated heredoc, a
/// heredoc body that reads like instructions).
fn instructions(text: &str, escape: char) -> Option<Vec<Instruction>> {
    let lines: Vec<&str> = text.lines().collect();
    let is_comment = |l: &str| l.trim_start().starts_with('#');
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let first = lines[i].trim_start();
        i += 1;
        if first.trim().is_empty() || is_comment(first) {
            continue;
        }
        let (mut line, mut done) = trim_continuation(first, escape);
        while !done && i < lines.len() {
            let next = lines[i];
            i += 1;
            if is_comment(next) || next.trim().is_empty() {
                continue;
            }
            let (part, end) = trim_continuation(next, escape);
            line.push_str(&part);
            done = end;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (keyword, rest) = match line.split_once(char::is_whitespace) {
            Some((k, r)) => (k.to_ascii_uppercase(), r.trim().to_string()),
            None => (line.to_ascii_uppercase(), String::new()),
        };
        let mut heredocs = Vec::new();
        if matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") && rest.contains("<<") {
            for word in raw_words(&rest, escape) {
                let Some((name, chomp)) = heredoc_name(&word) else {
                    continue;
                };
                let mut terminated = false;
                while i < lines.len() {
                    let body = lines[i];
                    i += 1;
                    let candidate = if chomp {
                        body.trim_start_matches('\t')
                    } else {
                        body
                    };
                    if candidate == name {
                        terminated = true;
                        break;
                    }
                    // A body line that reads like an instruction: an
                    // engine whose frontend has no heredocs would run it.
                    let head = body.split_whitespace().next().unwrap_or_default();
                    if matches!(
                        head.to_ascii_uppercase().as_str(),
                        "FROM" | "ARG" | "ENV" | "COPY" | "ADD" | "RUN" | "ONBUILD"
                    ) {
                        return None;
                    }
                }
                if !terminated {
                    return None;
                }
                heredocs.push(name);
            }
        }
        out.push(Instruction {
            keyword,
            rest,
            heredocs,
        });
    }
    Some(out)
}

/// A line without its continuation escape (and the blanks after it), and
/// whether the instruction ends on it.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let trimmed = line.trim_end_matches([' ', '\t', '\r']);
    match trimmed.strip_suffix(escape) {
        Some(part) => (part.to_string(), false),
        None => (line.trim_end_matches(['\r', '\n']).to_string(), true),
    }
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `2<<'EOF'`: the heredoc's name and
/// whether leading tabs are chomped.
fn heredoc_name(word: &str) -> Option<(String, bool)> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = rest.strip_prefix("<<")?;
    let (rest, chomp) = match rest.strip_prefix('-') {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let rest = rest.trim_start();
    if rest.contains('<') {
        return None;
    }
    let name: String = rest.chars().filter(|c| *c != '"' && *c != '\'').collect();
    (!name.is_empty()).then_some((name, chomp))
}

/// Words with their quotes kept (BuildKit's `parseWords`).
fn raw_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    let mut started = false;
    while let Some(c) = chars.next() {
        match quote {
            None if c.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            None => {
                started = true;
                if c == '\'' || c == '"' {
                    quote = Some(c);
                }
                word.push(c);
                if c == escape {
                    if let Some(n) = chars.next() {
                        word.push(n);
                    }
                }
            }
            Some(q) => {
                word.push(c);
                if c == q {
                    quote = None;
                } else if c == escape && q != '\'' {
                    if let Some(n) = chars.next() {
                        word.push(n);
                    }
                }
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

/// The leading `--flag[=value]` words (quotes removed) and what follows
/// them (BuildKit's `extractBuilderFlags`).
fn leading_flags(text: &str, escape: char) -> (Vec<String>, String) {
    let mut flags = Vec::new();
    let mut chars = text.char_indices().peekable();
    loop {
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            chars.next();
        }
        let Some(&(start, _)) = chars.peek() else {
            return (flags, String::new());
        };
        if !text[start..].starts_with("--") {
            return (flags, text[start..].to_string());
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(&(_, c)) = chars.peek() {
            if quote.is_none() && c.is_whitespace() {
                break;
            }
            chars.next();
            match quote {
                None if c == '\'' || c == '"' => quote = Some(c),
                Some(q) if c == q => quote = None,
                _ if c == escape => {
                    if let Some((_, n)) = chars.next() {
                        word.push(n);
                    }
                }
                _ => word.push(c),
            }
        }
        if word == "--" {
            let rest = chars.peek().map(|(p, _)| &text[*p..]).unwrap_or("");
            return (flags, rest.to_string());
        }
        flags.push(word);
    }
}

/// A variable's value in a stage.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    /// Declared without a value: expands to nothing.
    Unset,
    Known(String),
    /// Its value is not known here (an automatic platform arg, a value
    /// built from an unknown one).
    Unknown,
}

#[derive(Debug, Clone, Default)]
struct Stage {
    name: Option<String>,
    args: BTreeMap<String, Value>,
    env: BTreeMap<String, Value>,
    /// Variables not declared here come from the base image's `ENV`,
    /// unknown unless the base is `scratch` or an earlier stage.
    base_known: bool,
}

impl Stage {
    fn lookup(&self, name: &str) -> Value {
        if let Some(v) = self.env.get(name) {
            return v.clone();
        }
        if let Some(v) = self.args.get(name) {
            return v.clone();
        }
        if self.base_known {
            Value::Unset
        } else {
            Value::Unknown
        }
    }
}

/// Arguments BuildKit gives a value to when they are declared.
const AUTOMATIC_ARGS: &[&str] = &[
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "FTP_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "ftp_proxy",
    "no_proxy",
    "all_proxy",
];

struct Reader<'a> {
    build_args: &'a BTreeMap<String, String>,
    escape: char,
    /// `ARG`s before the first `FROM`.
    global: BTreeMap<String, Value>,
    stages: Vec<Stage>,
    stage: Option<Stage>,
    sources: Vec<Source>,
    /// The images stages are based on (`None`: not known here).
    bases: Vec<Option<String>>,
}

impl<'a> Reader<'a> {
    fn new(build_args: &'a BTreeMap<String, String>, escape: char) -> Reader<'a> {
        Reader {
            build_args,
            escape,
            global: BTreeMap::new(),
            stages: Vec::new(),
            stage: None,
            sources: Vec::new(),
            bases: Vec::new(),
        }
    }

    /// Read one instruction; `None` means "the whole context".
    fn instruction(&mut self, ins: &Instruction) -> Option<()> {
        match ins.keyword.as_str() {
            "ARG" => self.arg(&ins.rest),
            "ENV" => self.env(&ins.rest),
            "FROM" => self.from(&ins.rest),
            "COPY" | "ADD" => self.copy(ins),
            "RUN" => self.run(&ins.rest),
            // Its trigger runs in the stages built on this one, with their
            // variables: not followed here.
            "ONBUILD" => None,
            "CMD" | "ENTRYPOINT" | "EXPOSE" | "HEALTHCHECK" | "LABEL" | "MAINTAINER" | "SHELL"
            | "STOPSIGNAL" | "USER" | "VOLUME" | "WORKDIR" => Some(()),
            _ => None,
        }
    }

    fn stage(&self) -> Option<&Stage> {
        self.stage.as_ref()
    }

    fn lookup(&self, name: &str) -> Value {
        match self.stage() {
            Some(s) => s.lookup(name),
            None => self.global.get(name).cloned().unwrap_or(Value::Unset),
        }
    }

    /// A word after BuildKit's word processing: quotes, escapes, `$X`,
    /// `${X}`, `${X:-d}`, `${X:+d}`, `${X-d}`, `${X+d}`. `None` when a value
    /// is unknown or the form is one not handled here.
    fn expand(&self, word: &str) -> Option<String> {
        let escape = self.escape;
        let mut out = String::new();
        let chars: Vec<char> = word.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            if c == escape {
                if i < chars.len() {
                    out.push(chars[i]);
                    i += 1;
                }
            } else if c == '\'' {
                let end = chars[i..].iter().position(|&x| x == '\'')?;
                out.extend(&chars[i..i + end]);
                i += end + 1;
            } else if c == '"' {
                loop {
                    let c = *chars.get(i)?;
                    i += 1;
                    if c == '"' {
                        break;
                    } else if c == escape
                        && matches!(chars.get(i), Some(&n) if n == '"' || n == '$' || n == escape)
                    {
                        out.push(chars[i]);
                        i += 1;
                    } else if c == '$' {
                        i = self.variable(&chars, i, &mut out)?;
                    } else {
                        out.push(c);
                    }
                }
            } else if c == '$' {
                i = self.variable(&chars, i, &mut out)?;
            } else {
                out.push(c);
            }
        }
        Some(out)
    }

    /// Expand the variable after a `$` at `chars[i..]` into `out`; the
    /// index after it.
    fn variable(&self, chars: &[char], mut i: usize, out: &mut String) -> Option<usize> {
        let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
        if chars.get(i) == Some(&'{') {
            i += 1;
            let start = i;
            while chars.get(i).is_some_and(|&c| is_name(c)) {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            if name.is_empty() {
                return None;
            }
            // The operator and its word, up to the matching brace.
            let mut depth = 1;
            let op_start = i;
            while i < chars.len() {
                match chars[i] {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            if i >= chars.len() {
                return None;
            }
            let op: String = chars[op_start..i].iter().collect();
            i += 1;
            let value = self.lookup(&name);
            let text = if op.is_empty() {
                match value {
                    Value::Unknown => return None,
                    Value::Unset => String::new(),
                    Value::Known(v) => v,
                }
            } else {
                let (kind, word) = if let Some(w) = op.strip_prefix(":-") {
                    ("default-empty", w)
                } else if let Some(w) = op.strip_prefix(":+") {
                    ("alt-empty", w)
                } else if let Some(w) = op.strip_prefix('-') {
                    ("default", w)
                } else if let Some(w) = op.strip_prefix('+') {
                    ("alt", w)
                } else {
                    return None; // ${X#p}, ${X%p}, ${X/a/b}…
                };
                let set = match &value {
                    Value::Unknown => return None,
                    Value::Unset => false,
                    Value::Known(v) => !(kind.ends_with("empty") && v.is_empty()),
                };
                let current = match value {
                    Value::Known(v) => v,
                    _ => String::new(),
                };
                match (kind.starts_with("default"), set) {
                    (true, true) => current,
                    (true, false) | (false, true) => self.expand(word)?,
                    (false, false) => String::new(),
                }
            };
            out.push_str(&text);
            return Some(i);
        }
        let start = i;
        while chars.get(i).is_some_and(|&c| is_name(c)) {
            i += 1;
        }
        if i == start {
            out.push('$');
            return Some(i);
        }
        let name: String = chars[start..i].iter().collect();
        match self.lookup(&name) {
            Value::Unknown => None,
            Value::Unset => Some(i),
            Value::Known(v) => {
                out.push_str(&v);
                Some(i)
            }
        }
    }

    /// `ARG a[=v] b…`: a build arg given for it wins over its default.
    fn arg(&mut self, rest: &str) -> Option<()> {
        for word in raw_words(rest, self.escape) {
            let (name, default) = match word.split_once('=') {
                Some((n, d)) => (n.to_string(), Some(d.to_string())),
                None => (word.clone(), None),
            };
            let value = if let Some(v) = self.build_args.get(&name) {
                Value::Known(v.clone())
            } else if let Some(d) = default {
                self.expand(&d).map(Value::Known).unwrap_or(Value::Unknown)
            } else if AUTOMATIC_ARGS.contains(&name.as_str()) {
                Value::Unknown
            } else if self.stage.is_some() {
                // A global ARG declared again in a stage takes its value.
                self.global.get(&name).cloned().unwrap_or(Value::Unset)
            } else {
                Value::Unset
            };
            match self.stage.as_mut() {
                Some(s) => {
                    s.args.insert(name, value);
                }
                None => {
                    self.global.insert(name, value);
                }
            }
        }
        Some(())
    }

    /// `ENV a=b c=d` or `ENV a b c`: overrides an `ARG` of that name.
    fn env(&mut self, rest: &str) -> Option<()> {
        let words = raw_words(rest, self.escape);
        let mut pairs = Vec::new();
        if words.first().is_some_and(|w| !w.contains('=')) {
            let (name, value) = rest.trim().split_once(char::is_whitespace)?;
            pairs.push((name.to_string(), value.trim().to_string()));
        } else {
            for w in words {
                let (n, v) = w.split_once('=')?;
                pairs.push((n.to_string(), v.to_string()));
            }
        }
        for (name, value) in pairs {
            let value = self
                .expand(&value)
                .map(Value::Known)
                .unwrap_or(Value::Unknown);
            self.stage.as_mut()?.env.insert(name, value);
        }
        Some(())
    }

    /// `FROM [--platform=…] base [AS name]`: a new stage whose variables
    /// are its base's `ENV` (a stage's, or none for `scratch`).
    fn from(&mut self, rest: &str) -> Option<()> {
        if let Some(done) = self.stage.take() {
            self.stages.push(done);
        }
        let (_, rest) = leading_flags(rest, self.escape);
        let words = raw_words(&rest, self.escape);
        let base = words.first()?.to_ascii_lowercase();
        let is_stage = self
            .stages
            .iter()
            .any(|s| s.name.as_deref() == Some(base.as_str()));
        if base != "scratch" && !is_stage {
            // FROM sees the global ARGs only (no stage is current here).
            self.bases.push(self.expand(words.first()?));
        }
        let name = match words.as_slice() {
            [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
            _ => None,
        };
        let mut stage = Stage {
            name,
            base_known: base == "scratch",
            ..Stage::default()
        };
        if let Some(parent) = self
            .stages
            .iter()
            .rev()
            .find(|s| s.name.as_deref() == Some(base.as_str()))
        {
            stage.env = parent.env.clone();
            stage.base_known = parent.base_known;
            // Whether a base stage's ARGs carry over depends on the
            // BuildKit version: unknown either way.
            for name in parent.args.keys() {
                stage.args.insert(name.clone(), Value::Unknown);
            }
        } else if base.contains('$') {
            stage.base_known = false;
        }
        self.stage = Some(stage);
        Some(())
    }

    fn add_source(&mut self, path: &str, remote_ok: bool) -> Option<()> {
        if remote_ok
            && ["http://", "https://", "git://", "ssh://", "git@"]
                .iter()
                .any(|p| path.starts_with(p))
        {
            return Some(()); // ADD of a URL: not from the context
        }
        if path.contains("://") {
            return None;
        }
        // A wildcard: everything under the path before it.
        let (prefix, pattern) = match path.find(['*', '?', '[']) {
            Some(i) => (&path[..path[..i].rfind('/').map_or(0, |s| s)], true),
            None => (path, false),
        };
        let mut parts: Vec<&str> = Vec::new();
        for part in prefix.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    parts.pop()?;
                }
                p => parts.push(p),
            }
        }
        if parts.is_empty() {
            return None; // the whole context
        }
        self.sources.push(Source {
            path: parts.join("/"),
            pattern,
        });
        Some(())
    }

    /// `COPY`/`ADD [flags] src… dest`, shell or JSON form; heredoc sources
    /// are inline text.
    fn copy(&mut self, ins: &Instruction) -> Option<()> {
        self.stage.as_ref()?;
        let (flags, rest) = leading_flags(&ins.rest, self.escape);
        for flag in &flags {
            if let Some(from) = flag.strip_prefix("--from=") {
                match self.expand(from) {
                    // Another stage or an image: not the context.
                    Some(f) if !f.is_empty() => return Some(()),
                    // Empty or unknown: read as the context, to be safe.
                    _ => {}
                }
            }
        }
        let rest = rest.trim();
        let (args, json) = if rest.starts_with('[') {
            match serde_json::from_str::<Vec<String>>(rest) {
                Ok(a) => (a, true),
                Err(_) => (rest.split_whitespace().map(String::from).collect(), false),
            }
        } else {
            (rest.split_whitespace().map(String::from).collect(), false)
        };
        if args.len() < 2 {
            return None;
        }
        for src in &args[..args.len() - 1] {
            if !json {
                if let Some((name, _)) = heredoc_name(src) {
                    if ins.heredocs.contains(&name) {
                        continue;
                    }
                    return None;
                }
            }
            let path = self.expand(src)?;
            self.add_source(&path, ins.keyword == "ADD")?;
        }
        Some(())
    }

    /// `RUN --mount=…`: a bind mount without `from` reads the context.
    fn run(&mut self, rest: &str) -> Option<()> {
        self.stage.as_ref()?;
        let (flags, _) = leading_flags(rest, self.escape);
        for flag in flags {
            if flag == "--mount" {
                return None; // the value as the next word: not parsed here
            }
            let Some(spec) = flag.strip_prefix("--mount=") else {
                continue;
            };
            if spec.contains('$') {
                return None; // expanded by some BuildKit versions, not others
            }
            let mut kind = "bind".to_string();
            let mut from = None;
            let mut source = None;
            for field in csv_fields(spec)? {
                let (key, value) = match field.split_once('=') {
                    Some((k, v)) => (k.to_ascii_lowercase(), v.to_string()),
                    None => (field.to_ascii_lowercase(), String::new()),
                };
                match key.as_str() {
                    "type" => kind = value.to_ascii_lowercase(),
                    "from" => from = Some(value),
                    "source" | "src" => source = Some(value),
                    _ => {}
                }
            }
            let from_context = from.as_deref().is_none_or(str::is_empty);
            match kind.as_str() {
                "bind" if from_context => {
                    let src = self.expand(source.as_deref().unwrap_or(""))?;
                    self.add_source(&src, false)?;
                }
                "bind" => {}
                "cache" if from_context && from.is_some() => return None,
                "cache" | "secret" | "ssh" | "tmpfs" => {}
                _ => return None,
            }
        }
        Some(())
    }
}

/// The comma-separated fields of a `--mount` value (CSV quoting).
fn csv_fields(spec: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = spec.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    if quoted {
        return None;
    }
    fields.push(field);
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn paths(df: &str, a: &[(&str, &str)]) -> Option<Vec<String>> {
        context_sources(df, &args(a)).map(|s| s.into_iter().map(|s| s.path).collect())
    }

    #[test]
    fn per_service_copies_are_narrowed() {
        let df = "FROM scratch\nARG BINARY_NAME\nARG CMD_PATH\nCOPY ${CMD_PATH}/ /openim/bin/${BINARY_NAME}/\nCOPY config/ /openim/config/\n";
        let got = context_sources(
            df,
            &args(&[
                ("CMD_PATH", "cmd/openim-api"),
                ("BINARY_NAME", "openim-api"),
            ]),
        )
        .unwrap();
        assert_eq!(
            got.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(),
            ["cmd/openim-api", "config"]
        );
        assert!(is_under("cmd/openim-api/main.go", &got));
        assert!(!is_under("cmd/openim-api2/main.go", &got));
        assert!(is_under("config", &got));
    }

    #[test]
    fn whole_context_when_in_doubt() {
        let none = |df: &str| paths(df, &[]);
        for df in [
            "FROM golang AS b\nCOPY . .\nRUN go build ./cmd/x\n",
            "FROM x\nCOPY *.go /src/\n",
            "FROM x\nCOPY $UNKNOWN /src/\n",
            // A variable of the base image's ENV, maybe.
            "FROM golang\nCOPY $GOPATH/x /x\n",
            "FROM x\nRUN --mount=type=bind,target=/src make\n",
            "FROM x\nRUN --mount=target=/src make\n",
            "FROM x\nCOPY ../outside /x\n",
            "FROM x\nARG TARGETARCH\nCOPY bin/$TARGETARCH/app /app\n",
            "FROM x AS base\nONBUILD COPY other /o\nFROM base\nCOPY cfg /c\n",
            "# syntax=example.invalid/other-frontend\nFROM x\nCOPY cfg /c\n",
            "FROM x\nCOPY ${X%%.go} /x\n",
            "FROM x\nFROBNICATE cfg\n",
            // An empty line inside a continuation does not end the RUN.
            "FROM x\nRUN \\\n\n  --mount=type=bind,target=/s true\n",
            // A heredoc body that an older frontend would read as instructions.
            "FROM scratch\nCOPY <<EOF /x\nARG D=other\nEOF\nCOPY $D /d\n",
            "FROM scratch\nCOPY <<EOF /x\nnever terminated\n",
        ] {
            assert_eq!(none(df), None, "{df}");
        }
    }

    #[test]
    fn stages_json_form_defaults_and_continuations() {
        let df = r#"
# build stage
FROM golang AS builder
ARG DIR=pkg
COPY --chown=1000:1000 go.mod \
     go.sum /src/
COPY ${DIR} /src/pkg
FROM scratch
COPY --from=builder /out/app /app
COPY --from=alpine:3 /etc/os-release /x
COPY ["scripts/start.sh", "/start.sh"]
ADD https://example.invalid/x.tar.gz /tmp/
"#;
        assert_eq!(
            paths(df, &[]).unwrap(),
            ["go.mod", "go.sum", "pkg", "scripts/start.sh"]
        );
        assert_eq!(paths(df, &[("DIR", "internal")]).unwrap()[2], "internal");
    }

    #[test]
    fn quoted_json_and_flagged_forms() {
        assert_eq!(
            paths(
                "FROM scratch\nCOPY --chown=1:1 --chmod=644 --link [\"a b/x.txt\", \"/x\"]\n",
                &[]
            )
            .unwrap(),
            ["a b/x.txt"]
        );
        assert_eq!(
            paths("FROM scratch\nCOPY \"cfg/app.yaml\" 'other' /dst/\n", &[]).unwrap(),
            ["cfg/app.yaml", "other"]
        );
        // A continuation adds no space: `a\` + `b` is `ab`.
        assert_eq!(
            paths("FROM scratch\nCOPY src/a\\\nb /x\n", &[]).unwrap(),
            ["src/ab"]
        );
        // Another escape character.
        assert_eq!(
            paths(
                "# escape=`\nFROM scratch\nCOPY src\\win `\n  cfg C:\\dst\n",
                &[]
            )
            .unwrap(),
            ["cfg", "src\\win"]
        );
        // A wildcard reads what is under the path before it.
        assert_eq!(
            context_sources("FROM scratch\nCOPY gl/*.txt /g/\n", &BTreeMap::new()).unwrap(),
            [Source {
                path: "gl".into(),
                pattern: true
            }]
        );
    }

    #[test]
    fn variables_follow_buildkit_scopes() {
        // A global ARG is not seen in a stage unless declared there again.
        assert_eq!(
            paths("ARG DIR=other\nFROM scratch\nCOPY ${DIR:-cfg} /x\n", &[]).unwrap(),
            ["cfg"]
        );
        assert_eq!(
            paths(
                "ARG DIR=other\nFROM scratch\nARG DIR\nCOPY ${DIR} /x\n",
                &[]
            )
            .unwrap(),
            ["other"]
        );
        assert_eq!(
            paths(
                "ARG DIR=other\nFROM scratch\nARG DIR\nCOPY ${DIR} /x\n",
                &[("DIR", "given")]
            )
            .unwrap(),
            ["given"]
        );
        // A stage's ARG does not leak into the next stage.
        assert_eq!(
            paths(
                "FROM scratch AS a\nARG D=src\nCOPY $D /s\nFROM scratch\nCOPY ${D:-cfg} /c\n",
                &[]
            )
            .unwrap(),
            ["cfg", "src"]
        );
        // ENV wins over ARG, and a stage based on another keeps its ENV.
        assert_eq!(
            paths("FROM scratch\nARG D=src\nENV D=cfg\nCOPY $D /x\n", &[]).unwrap(),
            ["cfg"]
        );
        assert_eq!(
            paths(
                "FROM scratch AS a\nENV D=cfg\nFROM a\nCOPY ${D}/app.yaml /x\n",
                &[]
            )
            .unwrap(),
            ["cfg/app.yaml"]
        );
        // Single quotes do not expand; `${X:+w}`.
        assert_eq!(
            paths("FROM scratch\nARG D=x\nCOPY '$D' ${D:+alt} /x\n", &[]).unwrap(),
            ["$D", "alt"]
        );
    }

    #[test]
    fn base_images_are_the_external_ones() {
        let df = "ARG BASE=alpine:3\nFROM golang:1.22 AS b\nFROM b AS c\nFROM scratch\nFROM ${BASE}\nFROM c\n";
        assert_eq!(
            base_images(df, &BTreeMap::new()).unwrap(),
            ["alpine:3", "golang:1.22"]
        );
        assert_eq!(
            base_images(df, &args(&[("BASE", "debian")])).unwrap(),
            ["debian", "golang:1.22"]
        );
        assert_eq!(base_images("FROM ${NOPE:?}x\n", &BTreeMap::new()), None);
        assert_eq!(
            base_images("FROM scratch\nCOPY . .\n", &BTreeMap::new()).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn mounts_heredocs_and_other_stages() {
        let df = "# syntax=docker/dockerfile:1\nFROM alpine AS b\nRUN --mount=type=bind,source=mnt,target=/m \\\n    --mount=type=cache,target=/root/.cache \\\n    --mount=type=bind,from=other,source=/x,target=/y \\\n    --mount=type=secret,id=s cp /m/data.txt /out\nRUN <<EOF\nset -e\necho hi > /x\nEOF\nCOPY <<EOF /etc/x\nhello\nEOF\nCOPY <<-EOT cfg /dst/\n\tinline\n\tEOT\nFROM scratch\nCOPY --from=b /out /out\n";
        assert_eq!(paths(df, &[]).unwrap(), ["cfg", "mnt"]);
        // A cache mount based on the context (from= unknown) and an
        // unknown mount type: the whole context.
        assert_eq!(
            paths(
                "FROM x\nRUN --mount=type=cache,from=$X,target=/c true\n",
                &[]
            ),
            None
        );
        assert_eq!(
            paths("FROM x\nRUN --mount=type=weird,target=/c true\n", &[]),
            None
        );
        // `--from=` with an empty value reads the context.
        assert_eq!(
            paths("FROM scratch\nARG S\nCOPY --from=$S cfg /c\n", &[]).unwrap(),
            ["cfg"]
        );
    }
}

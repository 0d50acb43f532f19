//! Just enough Dockerfile reading to know which context paths a build can
//! see: the sources of `COPY`/`ADD` (not `--from` another stage), with build
//! args substituted. Used to narrow a service's inputs digest in monorepos
//! where every service shares one context. Pure logic; conservative: when in
//! doubt it answers "the whole context".

use std::collections::BTreeMap;

/// The context paths the Dockerfile reads, or `None` when it may read
/// anything (`COPY . .`, wildcards, `RUN --mount`, unresolved variables,
/// remote sources…).
pub fn context_sources(text: &str, build_args: &BTreeMap<String, String>) -> Option<Vec<String>> {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut sources: Vec<String> = Vec::new();
    for instruction in instructions(text) {
        let (keyword, rest) = match instruction.split_once(char::is_whitespace) {
            Some((k, r)) => (k.to_ascii_uppercase(), r.trim().to_string()),
            None => (instruction.to_ascii_uppercase(), String::new()),
        };
        match keyword.as_str() {
            "ARG" => {
                for decl in rest.split_whitespace() {
                    let (name, default) = match decl.split_once('=') {
                        Some((n, d)) => (n, Some(d.trim_matches('"').to_string())),
                        None => (decl, None),
                    };
                    let value = build_args.get(name).cloned().or(default);
                    if let Some(v) = value {
                        vars.insert(name.to_string(), v);
                    }
                }
            }
            "FROM" => {
                // Each stage starts with the global ARGs only; keep them.
            }
            "COPY" | "ADD" => {
                let mut args = split_args(&rest)?;
                // Flags come first.
                let mut from_stage = false;
                while args.first().is_some_and(|a| a.starts_with("--")) {
                    let flag = args.remove(0);
                    if flag.starts_with("--from") {
                        from_stage = true;
                    }
                }
                if from_stage {
                    continue;
                }
                if args.len() < 2 {
                    return None;
                }
                args.pop(); // destination
                for src in args {
                    let src = substitute(&src, &vars)?;
                    if src.contains("://") || src.starts_with("git@") {
                        if keyword == "ADD" {
                            continue; // remote: not from the context
                        }
                        return None;
                    }
                    if src.contains(['*', '?', '[']) {
                        return None;
                    }
                    let clean = crate::build::plan::normalize(std::path::Path::new(
                        src.trim_start_matches('/'),
                    ));
                    let clean = clean.to_string_lossy().replace('\\', "/");
                    if clean == "." || clean.starts_with("..") {
                        return None;
                    }
                    sources.push(clean);
                }
            }
            "RUN" if rest.contains("--mount") => return None,
            "ONBUILD" => return None,
            _ => {}
        }
    }
    sources.sort();
    sources.dedup();
    Some(sources)
}

/// Whether `rel` (a context path) is one of `sources` or below one.
pub fn is_under(rel: &str, sources: &[String]) -> bool {
    sources.iter().any(|s| {
        rel == s
            || rel
                .strip_prefix(s.as_str())
                .is_some_and(|r| r.starts_with('/'))
    })
}

/// Logical instructions: comments dropped, `\` continuations joined.
fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if !current.is_empty() && trimmed.starts_with('#') {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

/// Shell-ish words, or the JSON array form.
fn split_args(rest: &str) -> Option<Vec<String>> {
    let trimmed = rest.trim();
    if trimmed.starts_with('[') {
        // Flags may not precede the JSON form in practice; parse it whole.
        return serde_json::from_str::<Vec<String>>(trimmed).ok();
    }
    if trimmed.contains("<<") {
        return None; // heredocs
    }
    Some(
        trimmed
            .split_whitespace()
            .map(|w| w.trim_matches('"').to_string())
            .collect(),
    )
}

/// `$X`, `${X}`, `${X:-d}` with known variables; `None` when one is unknown.
fn substitute(text: &str, vars: &BTreeMap<String, String>) -> Option<String> {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let (name, default) = if chars.peek() == Some(&'{') {
            chars.next();
            let mut inner = String::new();
            for c in chars.by_ref() {
                if c == '}' {
                    break;
                }
                inner.push(c);
            }
            match inner.split_once(":-") {
                Some((n, d)) => (n.to_string(), Some(d.to_string())),
                None => (inner, None),
            }
        } else {
            let mut name = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    name.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            (name, None)
        };
        match vars
            .get(&name)
            .filter(|v| !v.is_empty())
            .cloned()
            .or(default)
        {
            Some(v) => out.push_str(&v),
            None => return None,
        }
    }
    Some(out)
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

    #[test]
    fn per_service_copies_are_narrowed() {
        let df = "FROM scratch\nARG BINARY_NAME\nARG CMD_PATH\nCOPY ${CMD_PATH}/ /openim/bin/${BINARY_NAME}/\nCOPY config/ /openim/config/\n";
        let got = context_sources(
            df,
            &args(&[
                ("CMD_PATH", "cmd/openim-api"),
                ("BINARY_NAME", "openim-api"),
            ]),
        );
        assert_eq!(
            got,
            Some(vec!["cmd/openim-api".to_string(), "config".to_string()])
        );
        assert!(is_under("cmd/openim-api/main.go", &got.clone().unwrap()));
        assert!(!is_under("cmd/openim-api2/main.go", &got.clone().unwrap()));
        assert!(is_under("config", &got.unwrap()));
    }

    #[test]
    fn whole_context_when_in_doubt() {
        let none = |df: &str| context_sources(df, &BTreeMap::new());
        assert_eq!(
            none("FROM golang AS b\nCOPY . .\nRUN go build ./cmd/x\n"),
            None
        );
        assert_eq!(none("FROM x\nCOPY *.go /src/\n"), None);
        assert_eq!(none("FROM x\nCOPY $UNKNOWN /src/\n"), None);
        assert_eq!(
            none("FROM x\nRUN --mount=type=bind,target=/src make\n"),
            None
        );
        assert_eq!(none("FROM x\nCOPY ../outside /x\n"), None);
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
COPY ["scripts/start.sh", "/start.sh"]
ADD https://example.invalid/x.tar.gz /tmp/
"#;
        assert_eq!(
            context_sources(df, &BTreeMap::new()),
            Some(vec![
                "go.mod".into(),
                "go.sum".into(),
                "pkg".into(),
                "scripts/start.sh".into()
            ])
        );
        assert_eq!(
            context_sources(df, &args(&[("DIR", "internal")])).unwrap()[2],
            "internal"
        );
    }
}

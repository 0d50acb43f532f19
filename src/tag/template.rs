//! Tag templates such as `v{version}-rc.{n}`: parsing, checking which
//! placeholders a stage offers, rendering, and matching rendered names back.
//! Pure logic.

use regex::Regex;
use std::collections::BTreeMap;

/// Every placeholder a template may use.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    ("branch", "branch name made into a valid tag"),
    ("sha", "full commit sha"),
    ("sha7", "first 7 hex digits of the commit sha"),
    ("date", "UTC date as YYYYMMDD"),
    ("version", "X.Y.Z"),
    ("major", "X"),
    ("minor", "Y"),
    ("patch", "Z"),
    ("n", "release candidate number"),
    (
        "service",
        "the service's image name (image tags only; each service gets its own)",
    ),
];

/// What `{service}` renders to in the tags of a stage: the placeholder
/// itself, filled per service by [`for_service`].
pub const SERVICE: &str = "{service}";

/// A stage's tag for one service: `{service}` replaced by its image name.
pub fn for_service(tag: &str, image_name: &str) -> String {
    tag.replace(SERVICE, image_name)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed `{{` in template `{0}`")]
    Unclosed(String),
    #[error("unknown placeholder `{{{name}}}` in template `{template}`; known: {known}")]
    Unknown {
        name: String,
        template: String,
        known: String,
    },
    #[error("placeholder `{{{name}}}` in template `{template}` has no value at stage {stage}")]
    Unavailable {
        name: String,
        template: String,
        stage: String,
    },
}

impl Template {
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| TemplateError::Unclosed(source.to_string()))?;
            let name = &after[..close];
            if !PLACEHOLDERS.iter().any(|(p, _)| *p == name) {
                return Err(TemplateError::Unknown {
                    name: name.to_string(),
                    template: source.to_string(),
                    known: PLACEHOLDERS
                        .iter()
                        .map(|(p, _)| format!("{{{p}}}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            pieces.push(Piece::Var(name.to_string()));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Template {
            source: source.to_string(),
            pieces,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn uses(&self, name: &str) -> bool {
        self.vars().any(|v| v == name)
    }

    fn vars(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var(v) => Some(v.as_str()),
            Piece::Text(_) => None,
        })
    }

    /// Fail when the template uses a placeholder outside `offered`.
    pub fn check_offered(&self, offered: &[&str], stage: &str) -> Result<(), TemplateError> {
        match self.vars().find(|v| !offered.contains(v)) {
            Some(name) => Err(TemplateError::Unavailable {
                name: name.to_string(),
                template: self.source.clone(),
                stage: stage.to_string(),
            }),
            None => Ok(()),
        }
    }

    pub fn render(&self, values: &Values, stage: &str) -> Result<String, TemplateError> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => out.push_str(values.0.get(v.as_str()).ok_or_else(|| {
                    TemplateError::Unavailable {
                        name: v.clone(),
                        template: self.source.clone(),
                        stage: stage.to_string(),
                    }
                })?),
            }
        }
        Ok(out)
    }

    /// A regex that matches names this template renders; the first
    /// `{date}` is captured as group `date` (a repeated one just matches).
    pub fn matcher(&self) -> Regex {
        let mut pattern = String::from("^");
        let mut date_captured = false;
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => pattern.push_str(&regex::escape(t)),
                Piece::Var(v) => pattern.push_str(match v.as_str() {
                    "date" if !date_captured => {
                        date_captured = true;
                        r"(?P<date>\d{8})"
                    }
                    "date" => r"\d{8}",
                    "sha7" => "[0-9a-f]{7}",
                    "sha" => "[0-9a-f]{40}",
                    "n" | "major" | "minor" | "patch" => r"\d+",
                    "version" => r"\d+\.\d+\.\d+",
                    _ => r"[A-Za-z0-9._-]+",
                }),
            }
        }
        pattern.push('$');
        Regex::new(&pattern).expect("escaped template always forms a valid regex")
    }
}

/// Placeholder values for one render.
#[derive(Debug, Default, Clone)]
pub struct Values(BTreeMap<&'static str, String>);

impl Values {
    pub fn set(&mut self, name: &'static str, value: impl Into<String>) -> &mut Self {
        self.0.insert(name, value.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_date_is_captured_once() {
        let t = Template::parse("n-{date}-{date}").unwrap();
        let caps = t.matcher().captures("n-20261124-20261124").unwrap();
        assert_eq!(&caps["date"], "20261124");
    }

    #[test]
    fn renders_and_matches() {
        let t = Template::parse("nightly-{date}-{sha7}").unwrap();
        let mut v = Values::default();
        v.set("date", "20261125").set("sha7", "abcdef0");
        assert_eq!(t.render(&v, "nightly").unwrap(), "nightly-20261125-abcdef0");
        let caps = t.matcher().captures("nightly-20261124-0123456").unwrap();
        assert_eq!(&caps["date"], "20261124");
        assert!(!t.matcher().is_match("nightly"));
        assert!(!t.matcher().is_match("nightly-2026112-0123456"));
    }

    #[test]
    fn rejects_unknown_and_unavailable() {
        let err = Template::parse("v{verison}").unwrap_err();
        assert!(err.to_string().contains("unknown placeholder `{verison}`"));
        assert!(Template::parse("v{version").is_err());
        let t = Template::parse("{version}-{branch}").unwrap();
        let err = t.check_offered(&["branch"], "dev").unwrap_err();
        assert!(err.to_string().contains("`{version}`"), "{err}");
        assert!(t.uses("branch") && !t.uses("sha"));
    }
}

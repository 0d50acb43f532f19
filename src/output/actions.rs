//! The GitHub Actions runner protocol: step outputs, the step summary,
//! annotations and secret masking. Active only where the runner sets the
//! corresponding environment variables.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::PathBuf;

/// Whether we run inside GitHub Actions (or act).
pub fn in_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

fn env_path(key: &str) -> Option<PathBuf> {
    std::env::var_os(key)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Format outputs for `$GITHUB_OUTPUT`. Every value uses the multi-line
/// delimiter form, with a delimiter that does not occur in the value.
pub fn format_outputs(outputs: &[(&str, String)]) -> String {
    let mut text = String::new();
    for (name, value) in outputs {
        let mut delimiter = format!("ghadelimiter_{}", short_digest(value));
        while value.contains(&delimiter) {
            delimiter.push('_');
        }
        text.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
    }
    text
}

fn short_digest(value: &str) -> String {
    Sha256::digest(value.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Append outputs to `$GITHUB_OUTPUT` when it is set. Returns whether it was.
pub fn write_outputs(outputs: &[(&str, String)]) -> Result<bool> {
    let Some(path) = env_path("GITHUB_OUTPUT") else {
        return Ok(false);
    };
    append(&path, &format_outputs(outputs))
        .with_context(|| format!("writing step outputs to GITHUB_OUTPUT ({})", path.display()))?;
    Ok(true)
}

/// Append Markdown to `$GITHUB_STEP_SUMMARY` when it is set.
pub fn write_summary(markdown: &str) -> Result<()> {
    if let Some(path) = env_path("GITHUB_STEP_SUMMARY") {
        append(&path, markdown).with_context(|| {
            format!(
                "writing the step summary to GITHUB_STEP_SUMMARY ({})",
                path.display()
            )
        })?;
    }
    Ok(())
}

fn append(path: &PathBuf, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// Escape a message for a workflow command (`::error::…`).
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// An `::error::` annotation, with file and line when known.
pub fn error_annotation(message: &str, file: Option<&str>, line: Option<usize>) -> String {
    annotation("error", message, file, line)
}

/// A `::<kind>::` annotation (`error`, `warning`, `notice`).
pub fn annotation(kind: &str, message: &str, file: Option<&str>, line: Option<usize>) -> String {
    let mut props = Vec::new();
    if let Some(f) = file {
        props.push(format!("file={}", escape_property(f)));
    }
    if let Some(l) = line {
        props.push(format!("line={l}"));
    }
    let props = if props.is_empty() {
        String::new()
    } else {
        format!(" {}", props.join(","))
    };
    format!("::{kind}{props}::{}", escape_data(message))
}

/// Send a workflow command (`::add-mask::…`, `::error::…`) to the runner,
/// on stderr: the runner reads commands on both streams, and stdout carries
/// the result alone (`--output json > file` stays JSON, with no secret).
pub fn command(line: &str) {
    crate::say!("{line}");
}

/// Tell the runner to mask a secret in logs.
pub fn mask(secret: &crate::secret::Secret) {
    if in_actions() {
        command(&format!("::add-mask::{}", secret.expose()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_use_delimiters() {
        let text = format_outputs(&[("tags", "a\nb".into()), ("version", "1.2.3".into())]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("tags<<ghadelimiter_"));
        assert_eq!(lines[1..3], ["a", "b"]);
        assert_eq!(lines[3], &lines[0][6..]);
        assert!(lines[4].starts_with("version<<"));
    }

    #[test]
    fn annotations_escape() {
        assert_eq!(
            error_annotation("bad\nthing: 100%", Some("a,b.yaml"), Some(3)),
            "::error file=a%2Cb.yaml,line=3::bad%0Athing: 100%25"
        );
    }
}

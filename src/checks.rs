//! The checks run before the first side effect (`build --check`, and
//! `release`/`plan` step 0): each one named, passed or failed with what was
//! found, and the exit code its failure stands for.

use serde::{Deserialize, Serialize};

/// One thing a release needs, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// What was checked: `engine`, `registry ghcr.io/openimsdk`, `token`, …
    pub name: String,
    pub ok: bool,
    /// What was found (on failure: what is wrong and what to do).
    pub detail: String,
    /// The exit code this failure stands for (0 when passed): 2 for input
    /// the user fixes, 1 for something that did not answer.
    #[serde(default)]
    pub exit_code: i32,
}

impl Check {
    pub fn passed(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            ok: true,
            detail: detail.into(),
            exit_code: crate::error::OK,
        }
    }

    /// A failure, its exit code as the error would have had.
    pub fn failed(name: impl Into<String>, err: &anyhow::Error) -> Check {
        Check {
            name: name.into(),
            ok: false,
            detail: crate::error::one_line(err),
            exit_code: crate::error::code_for(err),
        }
    }

    /// A failure reported by another step (its message and exit code).
    pub fn failed_with(
        name: impl Into<String>,
        detail: impl Into<String>,
        exit_code: i32,
    ) -> Check {
        Check {
            name: name.into(),
            ok: false,
            detail: detail.into(),
            exit_code,
        }
    }

    /// The same result under another name.
    pub fn named(self, name: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            ..self
        }
    }

    /// One line for people: `ok      engine: …` / `FAILED  token: …`.
    pub fn line(&self) -> String {
        format!(
            "{:<7} {}: {}",
            if self.ok { "ok" } else { "FAILED" },
            self.name,
            self.detail
        )
    }
}

/// The exit code of a list of checks: 0 when all passed, 2 when any failure
/// is an input problem (fixing the input is the next step either way), else 1.
pub fn exit_code(checks: &[Check]) -> i32 {
    let failed: Vec<&Check> = checks.iter().filter(|c| !c.ok).collect();
    if failed.is_empty() {
        crate::error::OK
    } else if failed.iter().any(|c| c.exit_code == crate::error::USAGE) {
        crate::error::USAGE
    } else {
        crate::error::FAILURE
    }
}

/// Checks failed: nothing was changed. The exit code is [`exit_code`]'s.
#[derive(Debug, thiserror::Error)]
#[error("{}", summary(.checks, .consequence))]
pub struct ChecksFailed {
    /// What follows, e.g. `so the build stopped before changing anything`.
    pub consequence: String,
    pub checks: Vec<Check>,
}

impl ChecksFailed {
    pub fn code(&self) -> i32 {
        exit_code(&self.checks)
    }
}

fn summary(checks: &[Check], consequence: &str) -> String {
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    format!(
        "{} of {} failed, {consequence}: {}",
        failed.len(),
        crate::output::text::count(checks.len(), "check"),
        failed.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_code_prefers_input_problems() {
        let ok = Check::passed("engine", "up");
        let down = Check {
            exit_code: 1,
            ..Check::failed("engine", &anyhow::anyhow!("down"))
        };
        let bad = Check::failed("token", &crate::error::BadInput("missing".into()).into());
        assert_eq!(exit_code(std::slice::from_ref(&ok)), 0);
        assert_eq!(exit_code(&[ok.clone(), down.clone()]), 1);
        assert_eq!(exit_code(&[down, bad.clone(), ok]), 2);
        assert_eq!(bad.line(), "FAILED  token: missing");
    }

    #[test]
    fn the_summary_counts_in_words() {
        let e = ChecksFailed {
            consequence: "so the release stopped before changing anything".into(),
            checks: vec![
                Check::passed("engine", "up"),
                Check::failed("token", &crate::error::BadInput("missing".into()).into()),
            ],
        };
        assert_eq!(
            e.to_string(),
            "1 of 2 checks failed, so the release stopped before changing anything: token: missing"
        );
    }
}

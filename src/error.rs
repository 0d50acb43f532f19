//! Exit codes that scripts can trust, and which errors map to which.

use crate::clients::git::GitError;
use crate::config::ConfigError;
use crate::tag::stage::PlanError;

/// Success.
pub const OK: i32 = 0;
/// A failure while doing the work: git, network, registry, GitHub.
pub const FAILURE: i32 = 1;
/// Bad usage, configuration or repository state: fix the input and re-run.
pub const USAGE: i32 = 2;
/// `--exit-code` of `chart` and `gitops`: there was nothing to change.
pub const NOTHING_TO_CHANGE: i32 = 3;

/// An input problem the user has to fix (maps to exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// An error as the one line people read: its causes joined (`{err:#}`),
/// the GitHub token and every URL's user info scrubbed, and the numeric code
/// the OS appends to its messages (`No such file or directory (os error
/// 2)`) left out.
pub fn one_line(err: &anyhow::Error) -> String {
    static OS_CODE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let token = crate::secret::github_token_from_env();
    let secrets: Vec<&crate::secret::Secret> = token.iter().collect();
    let text = crate::secret::scrub(&format!("{err:#}"), &secrets);
    OS_CODE
        .get_or_init(|| regex::Regex::new(r" \(os error \d+\)").expect("static regex"))
        .replace_all(&text, "")
        .into_owned()
}

/// The exit code for an error, from the kinds of its causes: the checks'
/// code when checks failed, [`USAGE`] when any cause is an input problem
/// (bad input, configuration, tag rules, repository state), else
/// [`FAILURE`].
pub fn code_for(err: &anyhow::Error) -> i32 {
    if let Some(failed) = err
        .chain()
        .find_map(|c| c.downcast_ref::<crate::checks::ChecksFailed>())
    {
        return failed.code();
    }
    let input = err.chain().any(|c| {
        c.is::<BadInput>() || c.is::<ConfigError>() || c.is::<PlanError>() || c.is::<GitError>()
    });
    if input {
        USAGE
    } else {
        FAILURE
    }
}

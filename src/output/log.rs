//! The debug log: what each step sends and receives (registry requests, git
//! transport, GitHub API calls, the Docker engine), for when a release fails
//! and the error line alone does not tell why.
//!
//! Off unless asked for: `-v` (debug), `-vv` (trace), `-vvv` (trace for the
//! libraries too), or `RUST_LOG` (which then decides alone), or
//! `RUNNER_DEBUG=1` (GitHub Actions' "debug logging" re-run) as `-v`. Lines
//! go to stderr, never stdout, and every line passes through
//! [`secret::scrub_known`] on its way out: URL user info, every secret the
//! process has held and any `Authorization`/`Bearer`/`Basic` value become
//! `***`, whichever crate wrote the line. docs/debugging.md describes it.

use crate::secret;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_subscriber::EnvFilter;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether a debug log is being written (live progress spinners would
/// garble it: progress then prints plain lines).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The filter for `-v` given `verbose` times, `RUST_LOG` and `RUNNER_DEBUG`;
/// `None` when nothing is to be logged.
pub fn filter_directives(
    verbose: u8,
    rust_log: Option<&str>,
    runner_debug: bool,
) -> Option<String> {
    if let Some(directives) = rust_log.map(str::trim).filter(|d| !d.is_empty()) {
        return Some(directives.to_string());
    }
    match verbose {
        0 if runner_debug => Some("openim_release=debug".into()),
        0 => None,
        1 => Some("openim_release=debug".into()),
        2 => Some("openim_release=trace".into()),
        _ => Some("trace".into()),
    }
}

/// Start the log for this process (once, from main, before any work).
pub fn init(verbose: u8) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let runner_debug = std::env::var("RUNNER_DEBUG").is_ok_and(|v| v.trim() == "1");
    let Some(directives) = filter_directives(verbose, rust_log.as_deref(), runner_debug) else {
        return;
    };
    secret::remember_env_secrets();
    let filter = EnvFilter::builder().parse_lossy(directives);
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| ScrubbedStderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_timer(Uptime(std::time::Instant::now()))
        .try_init()
        .is_ok();
    ENABLED.store(installed, Ordering::Relaxed);
}

/// Seconds since start, as progress lines show them.
struct Uptime(std::time::Instant);

impl tracing_subscriber::fmt::time::FormatTime for Uptime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        write!(w, "[{:>6.3}s]", self.0.elapsed().as_secs_f64())
    }
}

/// stderr, with each write (one whole log line: the formatter writes an
/// event at once) scrubbed of credentials.
struct ScrubbedStderr;

impl Write for ScrubbedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let clean = secret::scrub_known(&String::from_utf8_lossy(buf));
        std::io::stderr().lock().write_all(clean.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// A URL for the log: no user info, and the values of query parameters
/// other than the harmless ones (`scope`, `service`, `digest`, paging,
/// filters) replaced by `***` (upload state, signatures, tokens).
pub fn url(raw: &str) -> String {
    const SHOWN: &[&str] = &[
        "scope",
        "service",
        "digest",
        "mount",
        "from",
        "n",
        "last",
        "state",
        "head",
        "base",
        "per_page",
        "page",
        "sort",
        "direction",
    ];
    let raw = secret::scrub(raw, &[]);
    let Some((path, query)) = raw.split_once('?') else {
        return raw;
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if !SHOWN.contains(&k) => format!("{k}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_and_rust_log() {
        assert_eq!(filter_directives(0, None, false), None);
        assert_eq!(filter_directives(0, Some("  "), false), None);
        assert_eq!(
            filter_directives(0, None, true).as_deref(),
            Some("openim_release=debug")
        );
        assert_eq!(
            filter_directives(1, None, false).as_deref(),
            Some("openim_release=debug")
        );
        assert_eq!(
            filter_directives(2, None, false).as_deref(),
            Some("openim_release=trace")
        );
        assert_eq!(filter_directives(3, None, false).as_deref(), Some("trace"));
        assert_eq!(
            filter_directives(2, Some("openim_release::clients::github=trace"), false).as_deref(),
            Some("openim_release::clients::github=trace")
        );
    }

    #[test]
    fn urls_lose_credentials_and_opaque_query_values() {
        assert_eq!(
            url("https://u:p@r.test/v2/a/blobs/uploads/x?_state=abc&digest=sha256%3A12"),
            "https://***@r.test/v2/a/blobs/uploads/x?_state=***&digest=sha256%3A12"
        );
        assert_eq!(
            url("http://t.test/token?scope=repository:a:pull,push&service=r&access_token=zz"),
            "http://t.test/token?scope=repository:a:pull,push&service=r&access_token=***"
        );
        assert_eq!(url("http://x.test/v2/"), "http://x.test/v2/");
    }
}

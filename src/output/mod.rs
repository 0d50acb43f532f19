//! What people and machines read. Every command computes a typed report
//! (the domains own those types); this layer renders it once, in the form
//! asked for: text on stdout (`--output text`), one JSON object
//! (`--output json`), and in GitHub Actions the step outputs and the step
//! summary. Also here: the Actions runner protocol (`actions`), progress on
//! stderr (`progress`), the debug log on stderr (`log`) and words in
//! messages (`text`).

/// A line on stderr that never panics: `eprintln!` panics when stderr is
/// gone (`2>&1 | head -1` closes it), which would stop a release midway.
/// Progress and notes are for people; without a reader the work goes on.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// [`say!`] without the newline.
#[macro_export]
macro_rules! say_part {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

pub mod actions;
pub mod log;
pub mod progress;
pub mod render;
pub mod text;

use anyhow::{Context, Result};
use serde::Serialize;
use std::io::Write;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Human text on stdout
    Text,
    /// One JSON object on stdout
    Json,
}

/// A report people and machines read.
pub trait Render: Serialize {
    /// The text form on `out` (stdout); notes for people go on stderr,
    /// unless `quiet`.
    fn text(&self, out: &mut dyn Write, quiet: bool) -> std::io::Result<()>;

    /// GitHub Actions step outputs; `json` is the report's JSON form.
    fn outputs(&self, json: &str) -> Vec<(&'static str, String)> {
        vec![("json", json.to_string())]
    }

    /// Markdown for the GitHub Actions step summary.
    fn summary(&self) -> Option<String> {
        None
    }
}

/// Render `report` as `format` on stdout, and in GitHub Actions as step
/// outputs and a step summary.
pub fn emit<R: Render>(report: &R, format: OutputFormat, quiet: bool) -> Result<()> {
    let json = serde_json::to_string(report).context("serializing the report")?;
    match format {
        OutputFormat::Json => println!("{json}"),
        OutputFormat::Text => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            match report.text(&mut lock, quiet).and_then(|()| lock.flush()) {
                // `| head`: the reader is gone; what was left has no reader.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                other => other.context("writing the report")?,
            }
        }
    }
    if actions::write_outputs(&report.outputs(&json))? {
        if let Some(md) = report.summary() {
            actions::write_summary(&md)?;
        }
    }
    Ok(())
}

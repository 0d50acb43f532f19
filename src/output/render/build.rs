//! `build`, `build merge`, `build --check`, `build matrix`.

use crate::build::builder::Status;
use crate::build::run::{BuildReport, CheckReport, MatrixReport};
use crate::error;
use crate::output::{text, Render};
use std::io::Write;

impl Render for BuildReport {
    /// Each reference with its digest (or the planned references); a leg
    /// (pushed by digest) as `service platforms@digest`.
    fn text(&self, out: &mut dyn Write, quiet: bool) -> std::io::Result<()> {
        for o in &self.images {
            match (&o.status, &o.digest) {
                (Status::Failed, _) => {}
                (_, Some(d))
                    if !o.references.is_empty()
                        && !self.legs.iter().any(|l| l.service == o.service) =>
                {
                    for r in &o.references {
                        writeln!(out, "{r}@{d}")?;
                    }
                }
                (_, Some(d)) => writeln!(out, "{} {}@{d}", o.service, o.platforms.join(","))?,
                (_, None) => {
                    for r in &o.references {
                        writeln!(out, "{r}")?;
                    }
                }
            }
        }
        if self.dry_run && !quiet {
            crate::say!(
                "dry run: {}, platforms {}; nothing was built or pushed",
                text::count(self.images.len(), "service"),
                self.images
                    .iter()
                    .flat_map(|o| o.platforms.iter().cloned())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(())
    }

    fn outputs(&self, json: &str) -> Vec<(&'static str, String)> {
        vec![("json", json.to_string()), ("digests", digest_lines(self))]
    }

    fn summary(&self) -> Option<String> {
        Some(format!(
            "### openim-release build\n\n{}",
            images_table(self)
        ))
    }
}

/// A Markdown table of every service with its status and digest.
pub fn images_table(report: &BuildReport) -> String {
    let mut md = String::from("| service | status | digest |\n|---|---|---|\n");
    for o in &report.images {
        // The status as the JSON names it (`built`, `unchanged`, …).
        let status = serde_json::to_value(o.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        md.push_str(&format!(
            "| {} | {status} | `{}` |\n",
            o.service,
            o.digest.as_deref().unwrap_or("-")
        ));
    }
    md
}

/// `service=digest` lines: the `digests` output.
pub fn digest_lines(report: &BuildReport) -> String {
    report
        .images
        .iter()
        .filter_map(|o| o.digest.as_ref().map(|d| format!("{}={d}", o.service)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Name each failed service, with the last lines of its build, on stderr;
/// the exit code: 1 when any failed.
pub fn report_failures(report: &BuildReport) -> i32 {
    let failed = report.failed();
    for f in &failed {
        crate::say!(
            "error: {}: {}",
            f.service,
            f.error.as_deref().unwrap_or("failed")
        );
        if !f.log_tail.is_empty() {
            crate::say!("  last lines of the {} build:", f.service);
            for l in &f.log_tail {
                crate::say!("  | {l}");
            }
        }
    }
    if failed.is_empty() {
        return error::OK;
    }
    crate::say!(
        "{} of {} failed: {}",
        failed.len(),
        text::count(report.images.len(), "service"),
        failed
            .iter()
            .map(|f| f.service.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    error::FAILURE
}

impl Render for CheckReport {
    fn text(&self, out: &mut dyn Write, _quiet: bool) -> std::io::Result<()> {
        for c in &self.checks {
            writeln!(out, "{}", c.line())?;
        }
        if self.ready {
            writeln!(
                out,
                "ready to build {}: engine {}, registries {}",
                text::count(self.images, "image"),
                self.engine.as_deref().unwrap_or_default(),
                if self.registries.is_empty() {
                    "none (--no-push)".to_string()
                } else {
                    self.registries.join(", ")
                }
            )?;
        }
        Ok(())
    }
}

impl Render for MatrixReport {
    /// One `service platform` line per entry.
    fn text(&self, out: &mut dyn Write, _quiet: bool) -> std::io::Result<()> {
        for entry in self.0["include"].as_array().into_iter().flatten() {
            writeln!(
                out,
                "{} {}",
                entry["service"].as_str().unwrap_or_default(),
                entry["platform"].as_str().unwrap_or_default()
            )?;
        }
        Ok(())
    }

    fn outputs(&self, json: &str) -> Vec<(&'static str, String)> {
        vec![("matrix", json.to_string())]
    }
}

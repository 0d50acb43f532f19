//! `mirror` and `bundle export|import`: each reference written (or read)
//! with its digest on stdout, what moved on stderr; outputs `json` and
//! `references`; a step summary.

use crate::error;
use crate::output::{text, Render};
use crate::promote::bundle::{BundleAction, BundleReport};
use crate::promote::mirror::{moved_line, MirrorReport, MirrorStatus};
use std::io::Write;

/// `reference@digest`, the digest of the reference's tag when known.
fn with_digest(reference: &str, digests: &std::collections::BTreeMap<String, String>) -> String {
    let tag = reference.rsplit_once(':').map_or("", |(_, t)| t);
    match digests.get(tag).filter(|d| !d.is_empty()) {
        Some(d) => format!("{reference}@{d}"),
        None => reference.to_string(),
    }
}

fn mirror_lines(r: &MirrorReport) -> Vec<String> {
    r.images
        .iter()
        .filter(|i| i.status != MirrorStatus::Failed)
        .flat_map(|i| i.references.iter().map(|x| with_digest(x, &i.digests)))
        .collect()
}

impl Render for MirrorReport {
    fn text(&self, out: &mut dyn Write, quiet: bool) -> std::io::Result<()> {
        for l in mirror_lines(self) {
            writeln!(out, "{l}")?;
        }
        if quiet {
            return Ok(());
        }
        if self.dry_run {
            let mut services: Vec<&str> = self.images.iter().map(|i| i.service.as_str()).collect();
            services.dedup();
            for route in &self.routes {
                crate::say!(
                    "dry run: {} from {} to {}; nothing was copied",
                    text::count(services.len(), "service"),
                    route.from,
                    route.to.join(", ")
                );
            }
            return Ok(());
        }
        for t in &self.targets {
            crate::say!("{}: {}", t.registry, moved_line(&t.moved));
        }
        Ok(())
    }

    fn outputs(&self, json: &str) -> Vec<(&'static str, String)> {
        vec![
            ("json", json.to_string()),
            ("references", mirror_lines(self).join("\n")),
        ]
    }

    fn summary(&self) -> Option<String> {
        let mut md = String::from("### openim-release mirror\n\n");
        md.push_str("| service | from | status | digest |\n|---|---|---|---|\n");
        for i in &self.images {
            let status = serde_json::to_value(i.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            md.push_str(&format!(
                "| {} | {} | {status} | `{}` |\n",
                i.service,
                i.from,
                i.digest.as_deref().unwrap_or("-")
            ));
        }
        if !self.targets.is_empty() {
            md.push_str("\n| registry | moved |\n|---|---|\n");
            for t in &self.targets {
                md.push_str(&format!("| {} | {} |\n", t.registry, moved_line(&t.moved)));
            }
        }
        Some(md)
    }
}

/// Name each service that failed on stderr; the exit code.
pub fn report_mirror_failures(r: &MirrorReport) -> i32 {
    let failed = r.failed();
    for f in &failed {
        crate::say!(
            "error: {}: {}",
            f.service,
            f.error.as_deref().unwrap_or("failed")
        );
    }
    if failed.is_empty() {
        error::OK
    } else {
        error::FAILURE
    }
}

fn bundle_lines(r: &BundleReport) -> Vec<String> {
    let mut out: Vec<String> = r
        .images
        .iter()
        .flat_map(|i| i.references.iter().map(|x| with_digest(x, &i.tags)))
        .collect();
    for c in &r.charts {
        let at = match r.action {
            BundleAction::Export => String::new(),
            BundleAction::Import => format!("{}/", r.registry),
        };
        out.push(format!("{at}{}:{}@{}", c.repository, c.tag, c.digest));
    }
    out
}

impl Render for BundleReport {
    fn text(&self, out: &mut dyn Write, quiet: bool) -> std::io::Result<()> {
        for l in bundle_lines(self) {
            writeln!(out, "{l}")?;
        }
        if quiet {
            return Ok(());
        }
        let what = format!(
            "{}, {}",
            text::count(self.images.len(), "image"),
            text::count(self.charts.len(), "chart")
        );
        match (self.action, self.dry_run) {
            (BundleAction::Export, true) => {
                crate::say!(
                    "dry run: {} would hold {what}; nothing was read or written",
                    self.file
                )
            }
            (BundleAction::Import, true) => crate::say!(
                "dry run: {} holds {what} for {}; nothing was pushed",
                self.file,
                self.registry
            ),
            (BundleAction::Export, false) => crate::say!(
                "wrote {} ({}): {what}, {}",
                self.file,
                text::bytes(self.bytes),
                text::count(self.moved.artifacts as usize, "artifact")
            ),
            (BundleAction::Import, false) => {
                crate::say!("{}: {}", self.registry, moved_line(&self.moved));
                for c in &self.charts {
                    if let Some(r) = &c.reference {
                        crate::say!("note: helm install {} {r} --version {}", c.name, c.version);
                    }
                }
            }
        }
        Ok(())
    }

    fn outputs(&self, json: &str) -> Vec<(&'static str, String)> {
        vec![
            ("json", json.to_string()),
            ("references", bundle_lines(self).join("\n")),
        ]
    }
}

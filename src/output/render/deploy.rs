//! `chart bump`, `chart apply`, `gitops`.

use crate::config::DeployMode;
use crate::deploy::apply::ChartReport;
use crate::deploy::gitops::GitopsReport;
use crate::output::{text, Render};
use std::io::Write;

impl Render for ChartReport {
    /// The unified diff; what a dry run would write, or that nothing
    /// changes (stderr).
    fn text(&self, out: &mut dyn Write, quiet: bool) -> std::io::Result<()> {
        if self.changed {
            write!(out, "{}", self.diff)?;
        } else if !quiet {
            crate::say!("{}", nothing_to_change(self.warnings.len()));
        }
        if self.dry_run && self.changed && !quiet {
            crate::say!(
                "dry run: {} would change; nothing was written",
                text::count(self.files.len(), "file")
            );
        }
        Ok(())
    }

    fn outputs(&self, json: &str) -> Vec<(&'static str, String)> {
        vec![
            ("json", json.to_string()),
            ("changed", self.changed.to_string()),
        ]
    }

    fn summary(&self) -> Option<String> {
        Some(deploy_summary(
            "chart",
            self.changed,
            self.dry_run,
            &self.files,
            &self.images,
            self.warnings.len(),
            None,
        ))
    }
}

/// The closing line when nothing changes: "up to date" only when it is true.
fn nothing_to_change(warnings: usize) -> String {
    if warnings == 0 {
        "nothing to change: every file is up to date".to_string()
    } else {
        text::nothing_but_warnings(warnings)
    }
}

impl Render for GitopsReport {
    /// A dry run: the diff and the pull request (or commit) it would make;
    /// else the pull request's URL.
    fn text(&self, out: &mut dyn Write, quiet: bool) -> std::io::Result<()> {
        if self.dry_run {
            gitops_plan_text(self, out, quiet)?;
        } else if let Some(url) = &self.pr_url {
            writeln!(out, "{url}")?;
        }
        Ok(())
    }

    fn outputs(&self, json: &str) -> Vec<(&'static str, String)> {
        vec![
            ("json", json.to_string()),
            ("pr-url", self.pr_url.clone().unwrap_or_default()),
            ("changed", self.changed.to_string()),
        ]
    }

    fn summary(&self) -> Option<String> {
        let pr = self.pr_url.as_ref().map(|url| {
            format!(
                "pull request [#{}]({url}) ({})",
                self.pr_number.unwrap_or_default(),
                match self.pr_action {
                    Some(crate::clients::github::PrAction::Created) => "opened",
                    Some(crate::clients::github::PrAction::Updated) => "updated",
                    _ => "up to date",
                }
            )
        });
        Some(deploy_summary(
            "gitops",
            self.changed,
            self.dry_run,
            &self.files,
            &self.images,
            self.warnings.len(),
            pr.or_else(|| {
                self.commit
                    .as_ref()
                    .map(|c| format!("commit `{}` on {}", &c[..c.len().min(7)], self.branch))
            }),
        ))
    }
}

/// What a gitops dry run shows: the diff and the change it would make.
pub fn gitops_plan_text(r: &GitopsReport, out: &mut dyn Write, quiet: bool) -> std::io::Result<()> {
    write!(out, "{}", r.diff)?;
    if r.changed {
        match r.mode {
            Some(DeployMode::Push) => writeln!(
                out,
                "\nwould commit on {} of {}: {}",
                r.base, r.repository, r.title
            )?,
            _ => writeln!(
                out,
                "\nwould push branch {} and open or update the pull request into {} of {}:\n\ntitle: {}\n\n{}",
                r.branch, r.base, r.repository, r.title, r.body
            )?,
        }
    } else if !quiet {
        crate::say!("{}", r.up_to_date);
    }
    Ok(())
}

/// The step summary of a deploy: the images it points at, the files, and
/// the change it made.
fn deploy_summary(
    what: &str,
    changed: bool,
    dry_run: bool,
    files: &[String],
    images: &[crate::deploy::edits::ImageChange],
    warnings: usize,
    change: Option<String>,
) -> String {
    let mut md = format!("### openim-release {what}\n\n");
    if !changed {
        md.push_str("Nothing to change: the deploy files already point at these images.\n\n");
    } else if dry_run {
        md.push_str(&format!(
            "Dry run: {} would change; nothing was written.\n\n",
            text::count(files.len(), "file")
        ));
    }
    if let Some(c) = change {
        md.push_str(&format!("{c}\n\n"));
    }
    if !images.is_empty() {
        // One row per place an image is set (a service may be set in
        // several files): where, so no row reads as a duplicate.
        md.push_str("| service | where | image |\n|---|---|---|\n");
        for i in images {
            let pin = i
                .digest
                .as_deref()
                .map(|d| format!("@{d}"))
                .unwrap_or_default();
            md.push_str(&format!(
                "| {} | `{}` | `{}{pin}` |\n",
                i.service, i.file, i.new
            ));
        }
        md.push('\n');
    }
    if !files.is_empty() {
        md.push_str(&format!(
            "Files: {}\n\n",
            files
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if warnings > 0 {
        md.push_str(&format!(
            "{} (see the log).\n\n",
            text::count(warnings, "warning")
        ));
    }
    md
}

//! `tag`: the tags one per line; outputs `tags`, `version`, `git_tag`,
//! `json` (and `changed` for nightly); a summary table.

use crate::output::Render;
use crate::tag::apply::TagReport;
use std::io::Write;

impl Render for TagReport {
    fn text(&self, out: &mut dyn Write, _quiet: bool) -> std::io::Result<()> {
        for tag in &self.tags {
            writeln!(out, "{tag}")?;
        }
        Ok(())
    }

    fn outputs(&self, json: &str) -> Vec<(&'static str, String)> {
        let mut outputs = vec![
            ("tags", self.tags.join("\n")),
            ("version", self.version.clone().unwrap_or_default()),
            ("git_tag", self.git_tag.clone().unwrap_or_default()),
            ("json", json.to_string()),
        ];
        if let Some(changed) = self.changed {
            outputs.push(("changed", changed.to_string()));
        }
        outputs
    }

    fn summary(&self) -> Option<String> {
        let o = self;
        let mut md = format!("### openim-release tag: {}\n\n| | |\n|---|---|\n", o.stage);
        if let Some(v) = &o.version {
            md.push_str(&format!("| version | {v} |\n"));
        }
        if let Some(t) = &o.git_tag {
            let mut done = Vec::new();
            if o.created {
                done.push("created");
            }
            if o.pushed {
                done.push("pushed");
            }
            let done = if done.is_empty() {
                String::new()
            } else {
                format!(" ({})", done.join(", "))
            };
            md.push_str(&format!("| git tag | `{t}`{done} |\n"));
        }
        let tags: Vec<String> = o.tags.iter().map(|t| format!("`{t}`")).collect();
        md.push_str(&format!("| image tags | {} |\n", tags.join(" ")));
        md.push_str(&format!(
            "| commit | `{}`{} |\n",
            &o.sha[..o.sha.len().min(7)],
            o.branch
                .as_ref()
                .map(|b| format!(" on {b}"))
                .unwrap_or_default()
        ));
        if let Some(c) = o.changed {
            md.push_str(&format!("| changed since last nightly | {c} |\n"));
        }
        md.push('\n');
        Some(md)
    }
}

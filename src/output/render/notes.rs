//! `notes`: the Markdown on stdout; outputs `notes`, `json`; the notes as
//! the step summary.

use crate::notes::Notes;
use crate::output::Render;
use std::io::Write;

impl Render for Notes {
    fn text(&self, out: &mut dyn Write, quiet: bool) -> std::io::Result<()> {
        write!(out, "{}", self.markdown)?;
        if !quiet {
            let since = self
                .previous
                .as_deref()
                .map_or_else(|| "the first commit".to_string(), str::to_string);
            let published = match self
                .github_release
                .as_ref()
                .and_then(|r| Some((r.action?, r.url.clone()?)))
            {
                Some((action, url)) => format!(
                    "GitHub Release {}: {url}",
                    match action {
                        crate::clients::github::ReleaseAction::Created => "created",
                        crate::clients::github::ReleaseAction::Updated => "updated",
                        crate::clients::github::ReleaseAction::UpToDate => "already up to date",
                    }
                ),
                None => "nothing was published".to_string(),
            };
            crate::say!(
                "notes of {}: {} since {since}; {published}",
                self.tag,
                crate::output::text::count(self.entries.len(), "change")
            );
        }
        Ok(())
    }

    fn outputs(&self, json: &str) -> Vec<(&'static str, String)> {
        vec![
            ("notes", self.markdown.clone()),
            (
                "release-url",
                self.github_release
                    .as_ref()
                    .and_then(|r| r.url.clone())
                    .unwrap_or_default(),
            ),
            ("json", json.to_string()),
        ]
    }

    fn summary(&self) -> Option<String> {
        Some(format!(
            "### Release notes of {}\n\n{}\n",
            self.tag, self.markdown
        ))
    }
}

//! `release` and `plan`: a plan shows tags, checks, images and the deploy
//! change on stdout; a release prints the pull request's URL on stdout and
//! ends with a summary on stderr (tags, images with digests, git tag,
//! deploy, GitHub Release). Outputs `tags`, `version`, `git_tag`,
//! `digests`, `pr-url`, `release-url`, `changed`, `json`; a step summary.

use crate::output::render::build::{digest_lines, images_table};
use crate::output::render::deploy::gitops_plan_text;
use crate::output::Render;
use crate::release::ReleaseReport;
use std::io::Write;

impl Render for ReleaseReport {
    fn text(&self, out: &mut dyn Write, quiet: bool) -> std::io::Result<()> {
        if !self.changed {
            return Ok(());
        }
        if !self.dry_run {
            if let Some(url) = self.gitops.as_ref().and_then(|g| g.pr_url.as_ref()) {
                writeln!(out, "{url}")?;
            }
            if !quiet {
                crate::say_part!("{}", terminal_summary(self));
            }
            return Ok(());
        }
        writeln!(out, "# {}: tags", self.stage)?;
        for t in &self.tag.tags {
            writeln!(out, "{t}")?;
        }
        if let Some(g) = &self.tag.git_tag {
            writeln!(out, "git tag: {g}")?;
        }
        writeln!(
            out,
            "\n# checks (what `release` needs before it changes anything)"
        )?;
        for c in self.checks.iter().flatten() {
            writeln!(out, "{}", c.line())?;
        }
        if let Some(b) = &self.build {
            writeln!(out, "\n# images")?;
            for image in &b.images {
                for r in &image.references {
                    writeln!(out, "{r}  ({})", image.platforms.join(", "))?;
                }
            }
        }
        if let Some(m) = &self.mirror {
            writeln!(out, "\n# mirrors (copied by digest after the build)")?;
            for image in &m.images {
                for r in &image.references {
                    writeln!(out, "{r}  (from {})", image.from)?;
                }
            }
        }
        for (step, why) in &self.not_planned {
            writeln!(out, "\n# {step}\n(not planned: {why})")?;
        }
        if let Some(g) = &self.gitops {
            writeln!(out, "\n# deploy")?;
            gitops_plan_text(g, out, quiet)?;
        }
        if let Some(r) = &self.github_release {
            writeln!(out, "\n# GitHub Release")?;
            writeln!(
                out,
                "would create or update the {}release {} of {} (`{}`), its notes as \
                 `openim-release notes --tag {}` prints them",
                if r.prerelease { "pre-" } else { "" },
                r.tag,
                r.repository,
                r.name,
                r.tag
            )?;
        }
        if !quiet {
            crate::say!("plan only: nothing was built, tagged or pushed");
        }
        Ok(())
    }

    fn outputs(&self, json: &str) -> Vec<(&'static str, String)> {
        vec![
            ("tags", self.tag.tags.join("\n")),
            ("version", self.tag.version.clone().unwrap_or_default()),
            ("git_tag", self.tag.git_tag.clone().unwrap_or_default()),
            (
                "digests",
                self.build.as_ref().map(digest_lines).unwrap_or_default(),
            ),
            (
                "pr-url",
                self.gitops
                    .as_ref()
                    .and_then(|g| g.pr_url.clone())
                    .unwrap_or_default(),
            ),
            (
                "release-url",
                self.github_release
                    .as_ref()
                    .and_then(|r| r.url.clone())
                    .unwrap_or_default(),
            ),
            ("changed", self.changed.to_string()),
            ("json", json.to_string()),
        ]
    }

    fn summary(&self) -> Option<String> {
        let mut md = format!(
            "### openim-release {}: {}\n\n",
            if self.dry_run { "plan" } else { "release" },
            self.stage
        );
        if !self.changed {
            md.push_str("Nothing changed since the previous nightly: nothing was built.\n");
            return Some(md);
        }
        md.push_str("| | |\n|---|---|\n");
        if let Some(v) = &self.tag.version {
            md.push_str(&format!("| version | {v} |\n"));
        }
        if let Some(g) = &self.tag.git_tag {
            let pushed = self.tag.pushed || self.git_tag_pushed.as_ref().is_some_and(|t| t.pushed);
            md.push_str(&format!(
                "| git tag | `{g}`{} |\n",
                if pushed { " (pushed)" } else { "" }
            ));
        }
        let tags: Vec<String> = self.tag.tags.iter().map(|t| format!("`{t}`")).collect();
        md.push_str(&format!("| image tags | {} |\n", tags.join(" ")));
        if let Some(g) = &self.gitops {
            let deploy = match (&g.pr_url, &g.commit) {
                (Some(url), _) => format!("pull request [#{}]({url})", g.pr_number.unwrap_or(0)),
                (None, Some(c)) if g.pushed => format!("`{}` on {}", &c[..c.len().min(7)], g.base),
                _ if !g.changed => format!("{} already up to date", g.base),
                _ => "planned".to_string(),
            };
            md.push_str(&format!("| deploy | {deploy} |\n"));
        }
        if let Some(r) = &self.github_release {
            let shown = match &r.url {
                Some(url) => format!("[{}]({url})", r.name),
                None => format!("{} (planned)", r.name),
            };
            md.push_str(&format!("| GitHub Release | {shown} |\n"));
        }
        if !self.notifications.is_empty() {
            let told = self.notifications.iter().filter(|n| n.ok).count();
            let failed: Vec<String> = self
                .notifications
                .iter()
                .filter(|n| !n.ok)
                .map(|n| format!("{} ({})", n.name, n.kind.as_str()))
                .collect();
            let mut cell = format!("{told} told");
            if !failed.is_empty() {
                cell.push_str(&format!("; not told: {}", failed.join(", ")));
            }
            md.push_str(&format!("| notifications | {cell} |\n"));
        }
        if let Some(b) = &self.build {
            md.push('\n');
            md.push_str(&images_table(b));
        }
        if let Some(c) = &self.checks {
            let failed: Vec<&crate::checks::Check> = c.iter().filter(|c| !c.ok).collect();
            if !failed.is_empty() {
                md.push_str("\n**Checks that failed:**\n\n");
                for f in failed {
                    md.push_str(&format!("- {}: {}\n", f.name, f.detail));
                }
            }
        }
        md.push('\n');
        Some(md)
    }
}

/// The closing lines of a release in the terminal.
fn terminal_summary(r: &ReleaseReport) -> String {
    let mut s = format!("\nreleased {}", r.stage);
    if let Some(v) = &r.tag.version {
        s.push_str(&format!(" {v}"));
    }
    s.push('\n');
    s.push_str(&format!("  tags:    {}\n", r.tag.tags.join(", ")));
    if let Some(g) = &r.tag.git_tag {
        let pushed = r.tag.pushed || r.git_tag_pushed.as_ref().is_some_and(|t| t.pushed);
        s.push_str(&format!(
            "  git tag: {g}{}\n",
            if pushed { " (pushed)" } else { "" }
        ));
    }
    if let Some(b) = &r.build {
        for o in &b.images {
            s.push_str(&format!(
                "  image:   {} {}\n",
                o.service,
                o.digest.as_deref().unwrap_or("-")
            ));
        }
    }
    if let Some(m) = &r.mirror {
        for t in &m.targets {
            s.push_str(&format!(
                "  mirror:  {} ({})\n",
                t.registry,
                crate::promote::mirror::moved_line(&t.moved)
            ));
        }
    }
    if let Some(g) = &r.gitops {
        match (&g.pr_url, &g.commit) {
            (Some(url), _) => s.push_str(&format!("  deploy:  {url}\n")),
            (None, Some(c)) if g.pushed => s.push_str(&format!(
                "  deploy:  {} on {}\n",
                &c[..c.len().min(7)],
                g.base
            )),
            _ if !g.changed => s.push_str(&format!("  deploy:  {} already up to date\n", g.base)),
            _ => {}
        }
    }
    if let Some(url) = r.github_release.as_ref().and_then(|g| g.url.as_ref()) {
        s.push_str(&format!("  release: {url}\n"));
    }
    for n in r.notifications.iter().filter(|n| n.ok) {
        s.push_str(&format!("  told:    {} ({})\n", n.name, n.kind.as_str()));
    }
    s
}

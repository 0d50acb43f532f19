//! The notes as Markdown (the GitHub Release's body, a changelog entry).
//! Pure.

use super::commits::Entry;
use super::Notes;
use crate::config::notes::ChangelogConfig;
use std::fmt::Write;

/// The Markdown of the notes in three parts: the changes (summary, groups,
/// services), what was shipped (images, deploy; empty when nothing was)
/// and the end (contributors, full changelog). A GitHub Release re-published
/// by a run that shipped nothing keeps the shipped part it had.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parts {
    pub changes: String,
    pub shipped: String,
    pub end: String,
}

impl Parts {
    /// The whole Markdown.
    pub fn joined(&self) -> String {
        format!("{}{}{}", self.changes, self.shipped, self.end)
    }
}

/// The Markdown of `notes`, grouped as `cfg` says; `web` is the GitHub web
/// address links start with.
pub fn markdown(notes: &Notes, cfg: &ChangelogConfig, web: &str) -> String {
    parts(notes, cfg, web).joined()
}

/// [`markdown`], in its [`Parts`].
pub fn parts(notes: &Notes, cfg: &ChangelogConfig, web: &str) -> Parts {
    let repo_url = notes.repository.as_ref().map(|r| format!("{web}/{r}"));
    let link = |text: &str, path: &str| match &repo_url {
        Some(base) => format!("[{text}]({base}/{path})"),
        None => text.to_string(),
    };
    let mut md = String::new();
    let n = notes.entries.len();
    let since = match &notes.previous {
        Some(p) => format!("since {}", link(p, &format!("releases/tag/{p}"))),
        None => "since the first commit".to_string(),
    };
    let _ = writeln!(
        md,
        "{} {since} ({}).",
        count(n, "change", "changes"),
        count(notes.counts.commits, "commit", "commits")
    );
    if !notes.tag_exists {
        let _ = writeln!(
            md,
            "\n> {} does not exist yet: these notes end at {}.",
            notes.tag,
            short(&notes.sha)
        );
    }

    let entry_line = |e: &Entry, with_type: bool| -> String {
        let mut line = String::from("- ");
        match (&e.kind, with_type) {
            (Some(_), true) | (None, _) => line.push_str(&e.subject),
            (Some(_), false) => {
                if let Some(scope) = &e.scope {
                    let _ = write!(line, "**{scope}:** ");
                }
                line.push_str(&e.description);
            }
        }
        for pr in &e.pull_requests {
            let _ = write!(
                line,
                " ({})",
                link(&format!("#{pr}"), &format!("pull/{pr}"))
            );
        }
        let _ = write!(
            line,
            " ({})",
            link(short(&e.sha), &format!("commit/{}", e.sha))
        );
        if let Some(note) = &e.breaking_note {
            let _ = write!(line, "\n  {note}");
        }
        line
    };

    // Each entry goes into its first group: breaking, the configured
    // groups in order, then the rest.
    let groups = cfg.groups();
    let mut placed = vec![false; n];
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    if let Some(title) = cfg.breaking_title() {
        let lines: Vec<String> = notes
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.breaking)
            .map(|(i, e)| {
                placed[i] = true;
                entry_line(e, !groups.iter().any(|g| in_group(e, &g.types)))
            })
            .collect();
        sections.push((title, lines));
    }
    for g in &groups {
        let mut lines = Vec::new();
        for (i, e) in notes.entries.iter().enumerate() {
            if !placed[i] && in_group(e, &g.types) {
                placed[i] = true;
                lines.push(entry_line(e, false));
            }
        }
        sections.push((g.title.clone(), lines));
    }
    if let Some(title) = cfg.other_title() {
        let lines: Vec<String> = notes
            .entries
            .iter()
            .enumerate()
            .filter(|(i, _)| !placed[*i])
            .map(|(_, e)| entry_line(e, true))
            .collect();
        sections.push((title, lines));
    }
    for (title, lines) in sections.iter().filter(|(_, l)| !l.is_empty()) {
        let _ = writeln!(md, "\n### {title}\n");
        for l in lines {
            let _ = writeln!(md, "{l}");
        }
    }

    if !notes.services.is_empty() {
        let _ = writeln!(md, "\n### Services\n");
        let _ = writeln!(md, "| service | changes |\n|---|---|");
        for s in &notes.services {
            let changes: Vec<String> = notes
                .entries
                .iter()
                .filter(|e| e.services.contains(&s.service))
                .map(|e| {
                    let prs: Vec<String> = e
                        .pull_requests
                        .iter()
                        .map(|p| link(&format!("#{p}"), &format!("pull/{p}")))
                        .collect();
                    let what = cell(&e.subject);
                    if prs.is_empty() {
                        what
                    } else {
                        format!("{what} ({})", prs.join(", "))
                    }
                })
                .collect();
            let shown = if changes.is_empty() {
                "no changes".to_string()
            } else {
                changes.join("<br>")
            };
            let _ = writeln!(md, "| {} | {shown} |", s.service);
        }
    }

    let changes = std::mem::take(&mut md);
    let shipped = &notes.shipped;
    if !shipped.images.is_empty() {
        let _ = writeln!(md, "\n### Images\n");
        let _ = writeln!(md, "| service | image | tags | digest |\n|---|---|---|---|");
        for i in &shipped.images {
            let tags: Vec<String> = i.tags.iter().map(|t| format!("`{t}`")).collect();
            let _ = writeln!(
                md,
                "| {} | `{}` | {} | {} |",
                i.service,
                i.repository,
                tags.join(" "),
                i.digest
                    .as_deref()
                    .map_or_else(|| "—".to_string(), |d| format!("`{d}`"))
            );
        }
    }
    if !shipped.charts.is_empty() || shipped.deploy.is_some() {
        let _ = writeln!(md, "\n### Deploy\n");
        for c in &shipped.charts {
            let chart = c.chart.trim_end_matches("/Chart.yaml");
            let _ = writeln!(md, "- chart `{chart}` version {}", c.version);
        }
        if let Some(d) = &shipped.deploy {
            match (&d.pr_url, &d.commit) {
                (Some(url), _) => {
                    let number = d.pr_number.map(|n| format!(" #{n}")).unwrap_or_default();
                    let _ = writeln!(
                        md,
                        "- deploy pull request [{}{number}]({url}) into `{}`",
                        d.repository, d.base
                    );
                }
                (None, Some(c)) => {
                    let _ = writeln!(
                        md,
                        "- deployed by {} on `{}` of {}",
                        short(c),
                        d.base,
                        d.repository
                    );
                }
                _ => {}
            }
        }
    }

    let shipped_md = std::mem::take(&mut md);
    if !notes.contributors.is_empty() {
        let _ = writeln!(md, "\n### Contributors\n");
        let people: Vec<String> = notes.contributors.iter().map(|p| p.shown()).collect();
        let _ = writeln!(md, "{}", people.join(", "));
    }
    if let (Some(p), Some(_)) = (&notes.previous, &repo_url) {
        let to = if notes.tag_exists {
            notes.tag.clone()
        } else {
            notes.sha.clone()
        };
        let _ = writeln!(
            md,
            "\n**Full changelog**: {}",
            link(&format!("{p}...{to}"), &format!("compare/{p}...{to}"))
        );
    }
    Parts {
        changes,
        shipped: shipped_md,
        end: md,
    }
}

fn in_group(e: &Entry, types: &[String]) -> bool {
    e.kind
        .as_deref()
        .is_some_and(|k| types.iter().any(|t| t.eq_ignore_ascii_case(k)))
}

/// Text for a table cell: no `|` or newline breaks the table.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notes::commits::{Counts, Person};
    use crate::notes::{ChartVersion, Deploy, ServiceChanges, Shipped, ShippedImage};

    fn notes() -> Notes {
        let entry = Entry {
            sha: "0123456789abcdef0123456789abcdef01234567".into(),
            kind: Some("fix".into()),
            scope: Some("api".into()),
            description: "a | pipe".into(),
            subject: "fix(api): a | pipe".into(),
            breaking: false,
            breaking_note: None,
            pull_requests: vec![9],
            authors: vec![Person {
                name: "Alice".into(),
                email: "a@example.com".into(),
                login: None,
            }],
            files: Vec::new(),
            services: vec!["openim-api".into()],
            reverts: None,
        };
        Notes {
            schema_version: 1,
            tag: "v3.8.1".into(),
            version: Some("3.8.1".into()),
            previous: Some("v3.8.0".into()),
            sha: entry.sha.clone(),
            tag_exists: true,
            repository: Some("o/r".into()),
            counts: Counts {
                commits: 1,
                ..Counts::default()
            },
            entries: vec![entry],
            contributors: Vec::new(),
            services: vec![
                ServiceChanges {
                    service: "openim-api".into(),
                    changes: 1,
                },
                ServiceChanges {
                    service: "openim-push".into(),
                    changes: 0,
                },
            ],
            shipped: Shipped {
                images: vec![ShippedImage {
                    service: "openim-api".into(),
                    repository: "ghcr.io/o/openim-api".into(),
                    tags: vec!["v3.8.1".into(), "latest".into()],
                    digest: Some("sha256:ab".into()),
                }],
                charts: vec![ChartVersion {
                    chart: "charts/openim-server/Chart.yaml".into(),
                    version: "1.2.4".into(),
                }],
                deploy: Some(Deploy {
                    pr_number: Some(7),
                    pr_url: Some("https://github.com/o/charts/pull/7".into()),
                    commit: None,
                    base: "main".into(),
                    repository: "o/charts".into(),
                }),
            },
            markdown: String::new(),
            parts: Parts::default(),
            github_release: None,
        }
    }

    #[test]
    fn untouched_services_images_and_the_deploy() {
        let p = parts(&notes(), &ChangelogConfig::default(), "https://github.com");
        assert!(
            p.changes
                .contains("### Fixes\n\n- **api:** a | pipe ([#9](https://github.com/o/r/pull/9))"),
            "{}",
            p.changes
        );
        // A table cell escapes `|`; an untouched service says so.
        assert!(
            p.changes.contains(
                "| openim-api | fix(api): a \\| pipe ([#9](https://github.com/o/r/pull/9)) |"
            ),
            "{}",
            p.changes
        );
        assert!(
            p.changes.contains("| openim-push | no changes |"),
            "{}",
            p.changes
        );
        assert_eq!(
            p.shipped,
            "\n### Images\n\n| service | image | tags | digest |\n|---|---|---|---|\n\
             | openim-api | `ghcr.io/o/openim-api` | `v3.8.1` `latest` | `sha256:ab` |\n\
             \n### Deploy\n\n- chart `charts/openim-server` version 1.2.4\n\
             - deploy pull request [o/charts #7](https://github.com/o/charts/pull/7) into `main`\n"
        );
        assert!(p.end.ends_with("**Full changelog**: [v3.8.0...v3.8.1](https://github.com/o/r/compare/v3.8.0...v3.8.1)\n"), "{}", p.end);
    }

    #[test]
    fn groups_and_other_come_from_the_config() {
        let cfg: ChangelogConfig = serde_yaml_ng::from_str(
            "groups:\n  - { title: Bug fixes, types: [fix, perf] }\nother: ''\n",
        )
        .unwrap();
        let mut n = notes();
        n.entries[0].kind = Some("perf".into());
        let md = markdown(&n, &cfg, "https://github.com");
        assert!(md.contains("### Bug fixes\n"), "{md}");
        n.entries[0].kind = Some("chore".into());
        let md = markdown(&n, &cfg, "https://github.com");
        assert!(
            !md.contains("a | pipe ("),
            "other: '' leaves the rest out: {md}"
        );
    }
}

//! `audit`: one table of what disagrees (text and step summary), the
//! closing line that says what was checked.

use crate::audit::store::short;
use crate::audit::{AuditReport, Finding, FixAction, FixStatus, Kind};
use crate::output::{text, Render};
use std::io::Write;

/// A row of the table: findings that differ only in their tag are one row.
struct Row {
    what: String,
    service: String,
    registry: String,
    check: String,
    fix: String,
    problem: String,
}

const HEADER: [&str; 6] = ["RELEASE", "SERVICE", "REGISTRY", "CHECK", "FIX", "PROBLEM"];

fn fix_word(f: &Finding) -> String {
    let action = match (f.fix.action, &f.fix.digest, &f.fix.from) {
        (FixAction::Retag, Some(d), _) => format!("retag {}", short(d)),
        (FixAction::NeedsMirror, _, Some(from)) => format!("needs mirror from {from}"),
        (a, _, _) => a.word().to_string(),
    };
    match f.fix.status {
        FixStatus::NotApplied => action,
        FixStatus::Applied => format!("fixed ({action})"),
        FixStatus::Failed => format!(
            "failed ({action}): {}",
            f.fix.error.as_deref().unwrap_or("unknown error")
        ),
    }
}

fn rows(findings: &[Finding]) -> Vec<Row> {
    let mut out: Vec<(Row, Vec<String>, Kind)> = Vec::new();
    for f in findings {
        let what = match (&f.release, &f.place) {
            (Some(r), _) => r.clone(),
            (None, Some(p)) => format!("deploy {}", p.split(": ").next().unwrap_or(p)),
            (None, None) => "-".into(),
        };
        let problem = match (&f.place, f.release.is_none()) {
            (Some(p), true) => format!(
                "{}: {}",
                p.split_once(": ").map_or(p.as_str(), |(_, rest)| rest),
                f.detail
            ),
            _ => f.detail.clone(),
        };
        let row = Row {
            what,
            service: f.service.clone(),
            registry: f.registry.clone().unwrap_or_else(|| "-".into()),
            check: match &f.platform {
                Some(p) => format!("{} {p}", f.kind.word()),
                None => f.kind.word().to_string(),
            },
            fix: fix_word(f),
            problem,
        };
        // Missing tags of one release in one place: one row.
        if f.kind == Kind::MissingTag {
            if let Some((_, tags, _)) = out.iter_mut().find(|(r, _, k)| {
                *k == Kind::MissingTag
                    && r.what == row.what
                    && r.service == row.service
                    && r.registry == row.registry
                    && r.fix == row.fix
            }) {
                tags.extend(f.tag.clone());
                continue;
            }
        }
        out.push((row, f.tag.iter().cloned().collect(), f.kind));
    }
    out.into_iter()
        .map(|(mut row, tags, kind)| {
            if kind == Kind::MissingTag && tags.len() > 1 {
                row.problem = format!("{} do not exist", tags.join(", "));
            }
            row
        })
        .collect()
}

impl AuditReport {
    /// `2 releases × 3 services × 2 registries (36 tags, 12 images, 24
    /// platform images)`, with the deploy's references.
    fn scope(&self) -> String {
        let c = &self.checked;
        let mut s = format!(
            "{} × {} × {} ({}, {}, {})",
            text::count(c.releases, "release"),
            text::count(c.services, "service"),
            text::count(c.registries, "registry"),
            text::count(c.tags, "tag"),
            text::count(c.images, "image"),
            text::count(c.platforms, "platform image"),
        );
        if let Some(envs) = &self.deploy {
            let read = envs.iter().filter(|e| e.commit.is_some()).count();
            s.push_str(&format!(
                ", {} on {}",
                text::count(c.deploy_references, "deploy reference"),
                text::count(read, "branch")
            ));
        }
        s
    }

    /// The closing line.
    pub fn verdict(&self) -> String {
        let open: Vec<&Finding> = self.open().collect();
        if open.is_empty() && self.fixed == 0 {
            return format!("ok: {} agree", self.scope());
        }
        if open.is_empty() {
            return format!(
                "ok after --fix: {} made; {} agree now",
                text::count(self.fixed, "repair"),
                self.scope()
            );
        }
        let count = |a: FixAction| open.iter().filter(|f| f.fix.action == a).count();
        let needs = |n: usize| if n == 1 { "needs" } else { "need" };
        let mut parts = Vec::new();
        let retag = count(FixAction::Retag);
        if retag > 0 {
            parts.push(if self.fix {
                format!("{retag} failed to repair")
            } else {
                format!("{retag} repairable with --fix")
            });
        }
        for (a, what) in [
            (FixAction::NeedsMirror, "a mirror"),
            (FixAction::NeedsRebuild, "a rebuild"),
            (FixAction::Review, "a review"),
        ] {
            let n = count(a);
            if n > 0 {
                parts.push(format!("{n} {} {what}", needs(n)));
            }
        }
        let other = open.len()
            - retag
            - count(FixAction::NeedsMirror)
            - count(FixAction::NeedsRebuild)
            - count(FixAction::Review);
        if other > 0 {
            parts.push(format!("{other} other"));
        }
        format!(
            "drift: {}{} ({}) in {}",
            text::count(open.len(), "problem"),
            if self.fixed > 0 {
                format!(" left after {}", text::count(self.fixed, "repair"))
            } else {
                String::new()
            },
            parts.join(", "),
            self.scope()
        )
    }
}

impl Render for AuditReport {
    /// The table of findings (none when all agree), then the verdict.
    fn text(&self, out: &mut dyn Write, _quiet: bool) -> std::io::Result<()> {
        let rows = rows(&self.findings);
        if !rows.is_empty() {
            let cells = |r: &Row| -> [String; 6] {
                [
                    r.what.clone(),
                    r.service.clone(),
                    r.registry.clone(),
                    r.check.clone(),
                    r.fix.clone(),
                    r.problem.clone(),
                ]
            };
            let mut widths = HEADER.map(str::len);
            for r in &rows {
                for (w, c) in widths.iter_mut().zip(cells(r)) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let line = |c: [String; 6]| {
                let mut s = String::new();
                for (i, cell) in c.iter().enumerate() {
                    if i == 5 {
                        s.push_str(cell);
                    } else {
                        s.push_str(&format!("{cell:<w$}  ", w = widths[i]));
                    }
                }
                s.trim_end().to_string()
            };
            writeln!(out, "{}", line(HEADER.map(str::to_string)))?;
            for r in &rows {
                writeln!(out, "{}", line(cells(r)))?;
            }
        }
        writeln!(out, "{}", self.verdict())
    }

    fn outputs(&self, json: &str) -> Vec<(&'static str, String)> {
        vec![("json", json.to_string()), ("ok", self.ok.to_string())]
    }

    fn summary(&self) -> Option<String> {
        let mut md = format!("### openim-release audit\n\n{}\n\n", self.verdict());
        let rows = rows(&self.findings);
        const SHOWN: usize = 200;
        if !rows.is_empty() {
            md.push_str("| release | service | registry | check | fix | problem |\n|---|---|---|---|---|---|\n");
            let cell = |s: &str| s.replace('|', "\\|");
            for r in rows.iter().take(SHOWN) {
                md.push_str(&format!(
                    "| {} | {} | `{}` | {} | {} | {} |\n",
                    cell(&r.what),
                    cell(&r.service),
                    cell(&r.registry),
                    cell(&r.check),
                    cell(&r.fix),
                    cell(&r.problem)
                ));
            }
            if rows.len() > SHOWN {
                md.push_str(&format!(
                    "\n… and {} more (the `json` output has all of them)\n",
                    rows.len() - SHOWN
                ));
            }
            md.push('\n');
        }
        if !self.not_checked.is_empty() {
            md.push_str(&format!(
                "Not checked yet: {}.\n",
                self.not_checked.join(", ")
            ));
        }
        Some(md)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Checked, Fix, FixStatus};

    fn finding(kind: Kind, tag: &str, action: FixAction) -> Finding {
        Finding {
            kind,
            release: Some("v3.8.1".into()),
            service: "openim-api".into(),
            registry: Some("ghcr.io/openimsdk".into()),
            tag: Some(tag.into()),
            platform: None,
            expected: None,
            found: None,
            place: None,
            detail: format!("{tag} does not exist"),
            fix: Fix::of(action, Some(format!("sha256:{}", "a".repeat(64))), None),
            loc: None,
        }
    }

    fn report(findings: Vec<Finding>) -> AuditReport {
        AuditReport {
            schema_version: 1,
            ok: findings.is_empty(),
            releases: Vec::new(),
            services: vec!["openim-api".into()],
            registries: vec!["ghcr.io/openimsdk".into()],
            checked: Checked {
                releases: 1,
                services: 1,
                registries: 1,
                tags: 6,
                images: 1,
                platforms: 2,
                ..Checked::default()
            },
            deploy: None,
            findings,
            fixed: 0,
            not_checked: vec!["signatures and attestations".into()],
            fix: false,
        }
    }

    fn text(r: &AuditReport) -> String {
        let mut out = Vec::new();
        r.text(&mut out, true).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_clean_audit_is_one_line() {
        assert_eq!(
            text(&report(Vec::new())),
            "ok: 1 release × 1 service × 1 registry (6 tags, 1 image, 2 platform images) agree\n"
        );
    }

    #[test]
    fn missing_tags_of_one_place_are_one_row() {
        let mut r = report(vec![
            finding(Kind::MissingTag, "v3.8.1", FixAction::Retag),
            finding(Kind::MissingTag, "3.8.1", FixAction::Retag),
            finding(Kind::Alias, "latest", FixAction::NeedsRebuild),
        ]);
        let t = text(&r);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(
            lines[0].starts_with("RELEASE  SERVICE     REGISTRY           CHECK  FIX"),
            "{t}"
        );
        assert!(
            lines[1].ends_with("retag aaaaaaaaaaaa  v3.8.1, 3.8.1 do not exist"),
            "{t}"
        );
        assert_eq!(
            lines[3],
            "drift: 3 problems (2 repairable with --fix, 1 needs a rebuild) in 1 release × 1 service × 1 registry (6 tags, 1 image, 2 platform images)"
        );
        let md = r.summary().unwrap();
        assert!(md.contains("| v3.8.1 | openim-api | `ghcr.io/openimsdk` | tag | retag aaaaaaaaaaaa | v3.8.1, 3.8.1 do not exist |"), "{md}");
        assert!(
            md.contains("Not checked yet: signatures and attestations."),
            "{md}"
        );

        // After --fix repaired the tags, the alias is left.
        r.fix = true;
        r.fixed = 2;
        for f in &mut r.findings[..2] {
            f.fix.status = FixStatus::Applied;
        }
        let t = text(&r);
        assert!(t.contains("fixed (retag aaaaaaaaaaaa)"), "{t}");
        assert!(
            t.lines()
                .last()
                .unwrap()
                .starts_with("drift: 1 problem left after 2 repairs (1 needs a rebuild)"),
            "{t}"
        );
    }
}

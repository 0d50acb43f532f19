//! `attest` and `verify`.

use crate::output::Render;
use crate::supply::run::AttestReport;
use crate::supply::verify::{ImageCheck, VerifyReport};
use std::io::Write;

impl Render for AttestReport {
    /// One line per image and registry: what was attached, what was there,
    /// or what the registry refused.
    fn text(&self, out: &mut dyn Write, _quiet: bool) -> std::io::Result<()> {
        for i in &self.images {
            let digest = i.digest.as_deref().unwrap_or("-");
            if i.supply_chain.registries.is_empty() {
                writeln!(out, "{} {} {digest}: no registry has it", i.service, i.tag)?;
            }
            for r in &i.supply_chain.registries {
                let what = match &r.error {
                    Some(e) => format!("refused: {e}"),
                    None if r.attached.is_empty() => "complete, nothing to add".to_string(),
                    None => format!("attached {}", r.attached.join(", ")),
                };
                writeln!(
                    out,
                    "{} {} {} {digest}: {what}",
                    r.registry, i.service, i.tag
                )?;
            }
            if let Some(e) = &i.supply_chain.error {
                writeln!(out, "{} {}: {e}", i.service, i.tag)?;
            }
        }
        Ok(())
    }
}

/// The first line of a verdict, for a table cell.
fn cell(ok: bool, detail: &str) -> String {
    format!(
        "{} {}",
        if ok { "ok" } else { "MISSING" },
        detail.replace('|', "/")
    )
}

fn row(i: &ImageCheck) -> [String; 4] {
    [
        i.reference.clone(),
        cell(i.signature.ok, &i.signature.detail),
        cell(i.provenance.ok, &i.provenance.detail),
        cell(i.sbom.ok, &i.sbom.detail),
    ]
}

impl Render for VerifyReport {
    /// A table: image, signature, provenance, SBOM; then what is missing.
    fn text(&self, out: &mut dyn Write, _quiet: bool) -> std::io::Result<()> {
        let header = [
            "image".to_string(),
            "signature".to_string(),
            "provenance".to_string(),
            "sbom".to_string(),
        ];
        let rows: Vec<[String; 4]> = self.images.iter().map(row).collect();
        let mut widths = header.clone().map(|h| h.len());
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.len());
            }
        }
        for r in std::iter::once(&header).chain(&rows) {
            let line: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            writeln!(out, "{}", line.join("  ").trim_end())?;
        }
        let failed = self.failed().len();
        if failed == 0 {
            writeln!(
                out,
                "verified: {}",
                crate::output::text::count(self.images.len(), "image")
            )?;
        } else {
            writeln!(
                out,
                "not verified: {} of {}",
                failed,
                crate::output::text::count(self.images.len(), "image")
            )?;
        }
        Ok(())
    }

    fn summary(&self) -> Option<String> {
        let mut md = String::from(
            "### openim-release verify\n\n| image | signature | provenance | sbom |\n|---|---|---|---|\n",
        );
        for r in self.images.iter().map(row) {
            md.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                r[0], r[1], r[2], r[3]
            ));
        }
        Some(md)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supply::verify::Verdict;

    fn image(reference: &str, ok: bool) -> ImageCheck {
        let v = |d: &str| Verdict {
            ok,
            detail: d.to_string(),
        };
        ImageCheck {
            service: "openim-api".into(),
            reference: reference.into(),
            digest: None,
            signature: v(if ok {
                "verified (cosign tag)"
            } else {
                "missing"
            }),
            provenance: v(if ok { "commit 7848d7c1a2b3" } else { "missing" }),
            sbom: v(if ok {
                "linux/amd64"
            } else {
                "linux/amd64: missing"
            }),
            ok,
            built_from: None,
        }
    }

    #[test]
    fn the_verify_table_names_what_is_missing_where() {
        let report = VerifyReport {
            schema_version: 1,
            ok: false,
            key: Some("cosign.pub".into()),
            expected: None,
            images: vec![
                image("ghcr.io/openimsdk/openim-api:v1", true),
                image("docker.io/openim/openim-api:v1", false),
            ],
        };
        let mut out = Vec::new();
        report.text(&mut out, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("image") && lines[0].contains("signature"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("ghcr.io/openimsdk/openim-api:v1  ok verified"),
            "{text}"
        );
        assert_eq!(lines[2].matches("MISSING").count(), 3, "{text}");
        assert!(lines[2].ends_with("MISSING linux/amd64: missing"), "{text}");
        // The columns line up.
        assert_eq!(lines[1].find("ok linux"), lines[2].find("MISSING linux"));
        assert_eq!(lines[3], "not verified: 1 of 2 images");
        let md = report.summary().unwrap();
        assert!(
            md.contains("| `docker.io/openim/openim-api:v1` | MISSING missing |"),
            "{md}"
        );
    }
}

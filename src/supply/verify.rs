//! `verify`: what a consumer checks before deploying a release: for each
//! image in each registry, the signature (with the public key: ECDSA P-256
//! over cosign's payload naming the image's digest), the provenance (its
//! subject is the image; its commit is the release's; signed by the key),
//! and an SBOM for every platform (the one the signed provenance lists).

use super::attach::{self, Kind};
use super::{provenance, sign};
use crate::build::labels;
use crate::clients::registry::Registry;
use crate::oci::Encoded;
use serde::Serialize;
use std::sync::Arc;

/// One image to check.
#[derive(Clone)]
pub struct Target {
    pub service: String,
    pub registry: Arc<Registry>,
    /// The repository name in the registry (`openim-api`).
    pub repository: String,
    /// A tag or a digest.
    pub reference: String,
}

/// The commit the provenance must name, and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Expected {
    pub commit: String,
    /// `git tag v3.8.1`, or `--commit`.
    pub from: String,
    /// Other commits whose build of the service is the same (no file it
    /// reads differs): an image `build` reused unchanged names the commit
    /// that built it (see `build::same_build`).
    #[serde(skip)]
    pub equivalent: Vec<String>,
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub ok: bool,
    pub detail: String,
}

impl Verdict {
    fn ok(detail: impl Into<String>) -> Verdict {
        Verdict {
            ok: true,
            detail: detail.into(),
        }
    }
    fn bad(detail: impl Into<String>) -> Verdict {
        Verdict {
            ok: false,
            detail: detail.into(),
        }
    }
}

/// One image's checks.
#[derive(Debug, Clone, Serialize)]
pub struct ImageCheck {
    pub service: String,
    pub reference: String,
    pub digest: Option<String>,
    pub signature: Verdict,
    pub provenance: Verdict,
    pub sbom: Verdict,
    pub ok: bool,
    /// The commit a signed provenance (matching the image's revision label)
    /// names when it is not the expected one: to judge whether it builds
    /// the same image, then check again.
    #[serde(skip)]
    pub built_from: Option<String>,
}

/// The result of `verify`: the `--output json` document (fields are a
/// contract: add, never remove).
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub schema_version: u32,
    pub ok: bool,
    /// Where the public key came from; none: signatures only looked for.
    pub key: Option<String>,
    pub expected: Option<Expected>,
    pub images: Vec<ImageCheck>,
}

impl VerifyReport {
    pub fn failed(&self) -> Vec<&ImageCheck> {
        self.images.iter().filter(|i| !i.ok).collect()
    }
}

/// Check one image.
pub async fn check(
    t: &Target,
    key: Option<&sign::PublicKey>,
    expected: Option<&Expected>,
) -> ImageCheck {
    let repo = t.registry.prefix().repository(&t.repository);
    let sep = if crate::oci::is_digest(&t.reference) {
        "@"
    } else {
        ":"
    };
    let reference = format!(
        "{}/{}{sep}{}",
        t.registry.prefix(),
        t.repository,
        t.reference
    );
    let mut out = ImageCheck {
        service: t.service.clone(),
        reference,
        digest: None,
        signature: Verdict::bad("not checked"),
        provenance: Verdict::bad("not checked"),
        sbom: Verdict::bad("not checked"),
        ok: false,
        built_from: None,
    };
    let fail_all = |out: &mut ImageCheck, why: String| {
        out.signature = Verdict::bad(why.clone());
        out.provenance = Verdict::bad(why.clone());
        out.sbom = Verdict::bad(why);
    };
    let top = match t.registry.get_manifest(&repo, &t.reference).await {
        Ok(Some(f)) => Encoded {
            media_type: f.media_type,
            bytes: f.bytes,
            digest: f.digest,
        },
        Ok(None) => {
            fail_all(&mut out, "no such image".into());
            return out;
        }
        Err(e) => {
            fail_all(&mut out, e.to_string());
            return out;
        }
    };
    out.digest = Some(top.digest.clone());
    let r = &t.registry;
    let listing = match r.referrers(&repo, &top.digest).await {
        Ok(l) => l,
        Err(e) => {
            fail_all(&mut out, e.to_string());
            return out;
        }
    };
    // Signature.
    out.signature =
        match attach::find(r, &repo, &top.digest, Kind::Signature, listing.as_deref()).await {
            Err(e) => Verdict::bad(e.to_string()),
            Ok(found) if found.is_empty() => Verdict::bad("missing"),
            Ok(found) => {
                let for_this: Vec<&attach::Found> = found
                    .iter()
                    .filter(|f| sign::read_payload(&f.bytes).is_some_and(|(d, _)| d == top.digest))
                    .collect();
                match key {
                    _ if for_this.is_empty() => {
                        Verdict::bad("the signatures found name another digest")
                    }
                    Some(k) => {
                        if for_this.iter().any(|f| {
                            f.annotations
                                .get(sign::SIGNATURE_ANNOTATION)
                                .is_some_and(|s| k.verify(&f.bytes, s))
                        }) {
                            Verdict::ok(format!("verified ({})", scheme_name(for_this[0].scheme)))
                        } else {
                            Verdict::bad(format!(
                                "{} found, none by this key",
                                crate::output::text::count(for_this.len(), "signature")
                            ))
                        }
                    }
                    None => Verdict::ok("present (not checked: no --key)"),
                }
            }
        };
    // The image's platforms and labels.
    let image = match super::read_image(r, &repo, &top).await {
        Ok(i) => Some(i),
        Err(e) => {
            out.sbom = Verdict::bad(format!("{e:#}"));
            None
        }
    };
    // Provenance.
    let mut listed_sboms: Option<Vec<String>> = None;
    let mut built_from = None;
    out.provenance = match attach::find(r, &repo, &top.digest, Kind::Provenance, listing.as_deref())
        .await
    {
        Err(e) => Verdict::bad(e.to_string()),
        Ok(found) if found.is_empty() => Verdict::bad("missing"),
        Ok(found) => {
            let label_commit = image
                .as_ref()
                .and_then(|i| i.labels.get(labels::REVISION).cloned());
            let mut problems = Vec::new();
            let mut good = None;
            for f in &found {
                let Some((statement, signed)) = sign::open_envelope(&f.bytes, key) else {
                    problems.push("not a DSSE envelope of an in-toto statement".to_string());
                    continue;
                };
                let Some(p) = provenance::read(&statement) else {
                    continue; // another predicate (an SBOM attestation, …)
                };
                if !p.digests.iter().any(|d| d == &top.digest) {
                    problems.push("its subject is another image".into());
                    continue;
                }
                if signed == Some(false) {
                    problems.push("not signed by this key".into());
                    continue;
                }
                let commit = p.revision.clone().unwrap_or_default();
                let (want, mut from) = match (expected, &label_commit) {
                    (Some(e), _) => (Some(e.commit.clone()), e.from.clone()),
                    (None, Some(l)) => (Some(l.clone()), "the image's revision label".to_string()),
                    (None, None) => (None, String::new()),
                };
                let reused =
                    !commit.is_empty() && expected.is_some_and(|e| e.equivalent.contains(&commit));
                if reused {
                    from = format!("reused unchanged for {from}: no file its build reads differs");
                } else if label_commit.as_deref() == Some(commit.as_str()) && !commit.is_empty() {
                    built_from = Some(commit.clone());
                }
                if let (Some(w), false) = (&want, reused) {
                    if !w.starts_with(&commit) || commit.is_empty() {
                        problems.push(format!(
                            "commit {} is not {} of {from}",
                            &commit[..commit.len().min(12)],
                            &w[..w.len().min(12)]
                        ));
                        continue;
                    }
                }
                listed_sboms = Some(p.sboms.clone());
                good = Some(format!(
                    "commit {}{}{}",
                    &commit[..commit.len().min(12)],
                    if want.is_some() {
                        format!(" ({from})")
                    } else {
                        String::new()
                    },
                    match signed {
                        Some(true) => ", signed",
                        _ => "",
                    }
                ));
                break;
            }
            match good {
                Some(d) => Verdict::ok(d),
                None if problems.is_empty() => {
                    Verdict::bad("no SLSA provenance among the attestations")
                }
                None => {
                    problems.dedup();
                    Verdict::bad(problems.join("; "))
                }
            }
        }
    };
    // SBOMs, one per platform.
    if let Some(image) = &image {
        let mut missing = Vec::new();
        let mut found_for = Vec::new();
        for p in &image.platforms {
            let listing = match r.referrers(&repo, &p.manifest.digest).await {
                Ok(l) => l,
                Err(e) => {
                    missing.push(format!("{}: {e}", p.platform));
                    continue;
                }
            };
            let found =
                match attach::find(r, &repo, &p.manifest.digest, Kind::Sbom, listing.as_deref())
                    .await
                {
                    Ok(f) => f,
                    Err(e) => {
                        missing.push(format!("{}: {e}", p.platform));
                        continue;
                    }
                };
            let spdx: Vec<&attach::Found> = found
                .iter()
                .filter(|f| {
                    serde_json::from_slice::<serde_json::Value>(&f.bytes).is_ok_and(|v| {
                        v["spdxVersion"]
                            .as_str()
                            .is_some_and(|s| s.starts_with("SPDX-2."))
                    })
                })
                .collect();
            let listed = |f: &&&attach::Found| {
                listed_sboms.as_ref().is_none_or(|l| {
                    l.is_empty() || l.contains(&crate::oci::sha256_digest(&f.bytes))
                })
            };
            if spdx.is_empty() {
                missing.push(format!("{}: missing", p.platform));
            } else if !spdx.iter().any(|f| listed(&f)) {
                missing.push(format!("{}: not the one the provenance lists", p.platform));
            } else {
                found_for.push(p.platform.to_string());
            }
        }
        out.sbom = if missing.is_empty() {
            Verdict::ok(format!(
                "{}{}",
                found_for.join(", "),
                if listed_sboms.as_ref().is_some_and(|l| !l.is_empty()) {
                    " (as the provenance lists)"
                } else {
                    ""
                }
            ))
        } else {
            Verdict::bad(missing.join("; "))
        };
    }
    out.ok = out.signature.ok && out.provenance.ok && out.sbom.ok;
    if !out.provenance.ok {
        out.built_from = built_from;
    }
    out
}

fn scheme_name(s: attach::Scheme) -> &'static str {
    match s {
        attach::Scheme::Referrers => "OCI referrer",
        attach::Scheme::Tags => "cosign tag",
    }
}

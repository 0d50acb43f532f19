//! `attest` and `verify` in a workspace: the services of the config, the
//! tags given, every registry; the work itself is in `mod.rs` (attaching)
//! and `verify.rs` (checking).

use super::provenance::BuildFacts;
use super::verify::{self, Expected, Target, VerifyReport};
use super::{sign, RegistryOutcome, Supply, SupplyOutcome};
use crate::build::plan::ServiceSpec;
use crate::build::run as build;
use crate::clients::registry::Registry;
use crate::error::BadInput;
use crate::oci::reference::RegistryPrefix;
use crate::oci::Encoded;
use crate::output::progress::Progress;
use crate::workspace::Workspace;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;

/// What `attest` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct AttestRequest {
    pub tags: Vec<String>,
    pub services: Vec<String>,
    pub registries: Vec<String>,
    pub sign_key: Option<PathBuf>,
}

/// The result of `attest`: the `--output json` document (fields are a
/// contract: add, never remove).
#[derive(Debug, Clone, Serialize)]
pub struct AttestReport {
    pub schema_version: u32,
    pub images: Vec<AttestedImage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttestedImage {
    pub service: String,
    pub tag: String,
    pub digest: Option<String>,
    pub supply_chain: SupplyOutcome,
}

impl AttestReport {
    /// Whether every registry has every attachment now.
    pub fn complete(&self) -> bool {
        self.images.iter().all(|i| {
            i.digest.is_some()
                && i.supply_chain.error.is_none()
                && i.supply_chain.refused().next().is_none()
        })
    }
}

/// What `verify` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct VerifyRequest {
    pub tags: Vec<String>,
    pub services: Vec<String>,
    pub registries: Vec<String>,
    pub key: Option<PathBuf>,
    pub commit: Option<String>,
}

/// The selected services, or the error naming an unknown one.
fn selected(ws: &Workspace, names: &[String]) -> Result<Vec<ServiceSpec>> {
    let mut all = build::services(ws)?;
    if let Some(unknown) = names.iter().find(|n| !all.iter().any(|s| &s.name == *n)) {
        return Err(BadInput(format!(
            "--service {unknown}: no such service (services: {})",
            all.iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into());
    }
    if !names.is_empty() {
        all.retain(|s| names.contains(&s.name));
    }
    Ok(all)
}

/// The registries to look in: `--registry`, else `images.registries`.
async fn registries(ws: &Workspace, given: &[String]) -> Result<Vec<Arc<Registry>>> {
    let images = build::images(ws)?;
    let names = if given.is_empty() {
        images.registries.clone()
    } else {
        given.to_vec()
    };
    if names.is_empty() {
        return Err(
            BadInput("no registries: add `images.registries` or pass --registry".into()).into(),
        );
    }
    let prefixes: Vec<RegistryPrefix> = names
        .iter()
        .map(|r| RegistryPrefix::parse(r).map_err(|e| BadInput(format!("{r}: {e}")).into()))
        .collect::<Result<_>>()?;
    build::connect_registries(&images, &prefixes).await
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `attest`: attach what each image under the tags lacks, in every
/// registry. Never stops at a registry that refuses.
pub fn attest(ws: &Workspace, req: &AttestRequest) -> Result<AttestReport> {
    let services = selected(ws, &req.services)?;
    let supply = Supply::load(req.sign_key.as_deref())?;
    let rt = runtime()?;
    rt.block_on(async {
        let regs = registries(ws, &req.registries).await?;
        let progress = Progress::new(ws.quiet);
        let workdir = tempfile::Builder::new()
            .prefix("openim-release-attest-")
            .tempdir()
            .context("creating a work directory")?;
        let mut images = Vec::new();
        for s in &services {
            for t in &req.tags {
                let tag = crate::tag::template::for_service(t, &s.image);
                let dirs = (workdir.path(), ws.root());
                images.push(attest_one(&supply, &regs, s, &tag, dirs, &progress).await);
            }
        }
        Ok(AttestReport {
            schema_version: 1,
            images,
        })
    })
}

async fn attest_one(
    supply: &Supply,
    regs: &[Arc<Registry>],
    s: &ServiceSpec,
    tag: &str,
    (workdir, sources): (&std::path::Path, &std::path::Path),
    progress: &Progress,
) -> AttestedImage {
    // The image under the tag in each registry: the first one found is the
    // one attested; a registry without it, or with another, is reported.
    let mut top: Option<Encoded> = None;
    let mut usable = Vec::new();
    let mut problems = Vec::new();
    for r in regs {
        let repo = r.prefix().repository(&s.repository);
        match r.get_manifest(&repo, tag).await {
            Ok(Some(f)) => match &top {
                Some(t) if t.digest != f.digest => problems.push((
                    r,
                    format!(
                        "holds another image under {tag} ({}, not {})",
                        super::short(&f.digest),
                        super::short(&t.digest)
                    ),
                )),
                _ => {
                    if top.is_none() {
                        top = Some(Encoded {
                            media_type: f.media_type,
                            bytes: f.bytes,
                            digest: f.digest,
                        });
                    }
                    usable.push(r.clone());
                }
            },
            Ok(None) => problems.push((r, format!("has no {}:{tag}", s.repository))),
            Err(e) => problems.push((r, e.to_string())),
        }
    }
    let mut outcome = match &top {
        Some(top) => {
            let base = BuildFacts {
                service: s.name.clone(),
                dockerfile: s.dockerfile.display().to_string(),
                args: s.args.clone(),
                target: s.target.clone(),
                ..BuildFacts::default()
            };
            supply
                .attach_existing(
                    &usable,
                    &s.name,
                    super::Pushed {
                        repository: &s.repository,
                        top,
                        base: &base,
                        workdir,
                        sources: Some(sources),
                    },
                    progress,
                )
                .await
        }
        None => SupplyOutcome::default(),
    };
    for (r, why) in problems {
        progress.line(&s.name, &format!("warning: {}: {why}", r.prefix()));
        outcome.registries.push(RegistryOutcome {
            registry: r.prefix().to_string(),
            scheme: None,
            attached: Vec::new(),
            present: Vec::new(),
            error: Some(why),
        });
    }
    AttestedImage {
        service: s.name.clone(),
        tag: tag.to_string(),
        digest: top.map(|t| t.digest),
        supply_chain: outcome,
    }
}

/// `verify`: check every image under the tags in every registry.
pub fn verify(ws: &Workspace, req: &VerifyRequest) -> Result<VerifyReport> {
    let services = selected(ws, &req.services)?;
    let key = match &req.key {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| BadInput(format!("--key {}: {e}", path.display())))?;
            Some(sign::PublicKey::from_pem(
                &text,
                &format!("--key {}", path.display()),
            )?)
        }
        None => None,
    };
    let rt = runtime()?;
    rt.block_on(async {
        let regs = registries(ws, &req.registries).await?;
        let mut targets = Vec::new();
        let mut expected = Vec::new();
        for t in &req.tags {
            let want = match &req.commit {
                Some(c) => Some(Expected {
                    commit: c.clone(),
                    from: "--commit".into(),
                    equivalent: Vec::new(),
                }),
                None => ws
                    .repo_opt()
                    .and_then(|g| g.tag_commit(t).ok().flatten())
                    .map(|c| Expected {
                        commit: c,
                        from: format!("git tag {t}"),
                        equivalent: Vec::new(),
                    }),
            };
            for s in &services {
                for r in &regs {
                    targets.push(Target {
                        service: s.name.clone(),
                        registry: r.clone(),
                        repository: s.repository.clone(),
                        reference: crate::tag::template::for_service(t, &s.image),
                    });
                    expected.push(want.clone());
                }
            }
        }
        let checks = targets
            .iter()
            .zip(&expected)
            .map(|(t, e)| verify::check(t, key.as_ref(), e.as_ref()));
        let mut images = futures_util::future::join_all(checks).await;
        // An image `build` reused unchanged names the commit that built it:
        // right when no file the service's build reads differs from the
        // expected commit's (as `audit` judges it). Checked again with that.
        if let Some(repo) = ws.repo_opt() {
            let same = crate::build::same_build::SameBuild::new(repo, &services);
            for (i, image) in images.iter_mut().enumerate() {
                let (Some(built), Some(want)) = (&image.built_from, &expected[i]) else {
                    continue;
                };
                if !same
                    .judge(built, &want.commit, &targets[i].service)
                    .builds_the_same()
                {
                    continue;
                }
                let mut want = want.clone();
                want.equivalent.push(built.clone());
                *image = verify::check(&targets[i], key.as_ref(), Some(&want)).await;
            }
        }
        Ok(VerifyReport {
            schema_version: 1,
            ok: images.iter().all(|i| i.ok),
            key: req.key.as_ref().map(|k| k.display().to_string()),
            expected: expected.into_iter().flatten().next(),
            images,
        })
    })
}

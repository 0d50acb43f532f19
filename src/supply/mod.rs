//! Supply-chain attachments of every image pushed: an SPDX SBOM per
//! platform image (`sbom`, from the layers: Go modules, OS packages,
//! files), the SLSA v1 provenance of the service image (`provenance`), and
//! a cosign-compatible signature when a key is given (`sign`), attached
//! beside the image in every registry (`attach`), and checked by `verify`.
//!
//! Attaching never fails a build: a registry that refuses attachments keeps
//! its images and tags, and the outcome says what it refused.

pub mod attach;
pub mod gobuild;
pub mod ospkg;
pub mod provenance;
pub mod run;
pub mod sbom;
pub mod sign;
pub mod verify;

use crate::build::labels;
use crate::clients::registry::Registry;
use crate::oci::{self, Descriptor, Encoded, Platform};
use crate::output::progress::Progress;
use anyhow::{anyhow, Context, Result};
use attach::{Content, Kind, Scheme};
use provenance::BuildFacts;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The annotation cosign puts on attestation layers.
const PREDICATE_ANNOTATION: &str = "predicateType";

/// What attaching needs for a whole run.
#[derive(Debug)]
pub struct Supply {
    /// The signing key, when one is given.
    pub key: Option<sign::Key>,
    /// The GitHub Actions run, when in one.
    pub workflow: Option<provenance::Workflow>,
}

impl Supply {
    /// With the key of `--sign-key FILE` or `OPENIM_RELEASE_SIGN_KEY`.
    pub fn load(key_file: Option<&Path>) -> Result<Supply> {
        Ok(Supply {
            key: sign::Key::load(key_file)?,
            workflow: provenance::Workflow::from_env(&|k| std::env::var(k).ok()),
        })
    }
}

/// One platform image as the build pushed it.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    pub platform: Platform,
    pub manifest: Descriptor,
    /// The layer blobs on disk, bottom first.
    pub layers: Vec<PathBuf>,
}

/// What the build of one service image knows.
#[derive(Debug, Clone)]
pub struct Built {
    /// The repository name in each registry (`openim-api`).
    pub repository: String,
    pub top: Descriptor,
    pub platforms: Vec<PlatformImage>,
    /// Without repositories, digest and SBOMs (filled in here).
    pub facts: BuildFacts,
    /// RFC 3339, the commit time.
    pub created: String,
}

/// An image pushed before, to attach to.
#[derive(Debug, Clone, Copy)]
pub struct Pushed<'a> {
    /// The repository name in each registry (`openim-api`).
    pub repository: &'a str,
    /// Its index (or manifest) as the registry holds it.
    pub top: &'a Encoded,
    /// What the configuration says of its build (the image's labels and
    /// annotations fill in the rest).
    pub base: &'a BuildFacts,
    /// Where its layers are downloaded for the SBOMs.
    pub workdir: &'a Path,
    /// The repository it was built from, when `base` has no Dockerfile
    /// digest: the Dockerfile is read there at the image's revision.
    pub sources: Option<&'a Path>,
}

/// What was attached for one image: the `supply_chain` field of a build's
/// image (fields are a contract: add, never remove).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SupplyOutcome {
    /// Whether a key signed the image and its provenance.
    pub signed: bool,
    pub sboms: Vec<SbomInfo>,
    pub registries: Vec<RegistryOutcome>,
    /// Why something could not be made (an SBOM of a layer that did not
    /// read): attached without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl SupplyOutcome {
    /// The registries that refused an attachment.
    pub fn refused(&self) -> impl Iterator<Item = &RegistryOutcome> {
        self.registries.iter().filter(|r| r.error.is_some())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SbomInfo {
    pub platform: String,
    /// The platform manifest it describes.
    pub manifest: String,
    /// The SBOM's own digest.
    pub digest: String,
    #[serde(flatten)]
    pub counts: sbom::Counts,
}

/// One registry's attachments of one image.
#[derive(Debug, Clone, Serialize)]
pub struct RegistryOutcome {
    pub registry: String,
    /// `referrers` (OCI 1.1 subject) or `tags` (cosign's `sha256-<hex>.sig`).
    pub scheme: Option<Scheme>,
    /// What this run attached: `signature`, `provenance`, `sbom linux/amd64`.
    pub attached: Vec<String>,
    /// What was there already.
    pub present: Vec<String>,
    /// The registry refused (or failed) an attachment: its images and tags
    /// stay, the attachments from here on are missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One attachment to push: what, of which subject, the content.
struct Item {
    label: String,
    kind: Kind,
    subject: Descriptor,
    content: Content,
}

fn short(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("sha256:{}", &hex[..hex.len().min(12)])
}

/// The name of `repository` in `r`, as signatures and provenance name it
/// (`ghcr.io/openimsdk/openim-api`).
pub fn image_name(r: &Registry, repository: &str) -> String {
    format!("{}/{repository}", r.prefix())
}

impl Supply {
    /// The signature item of `top` in `r` (with a key).
    fn signature(&self, r: &Registry, repository: &str, top: &Descriptor) -> Option<Item> {
        let key = self.key.as_ref()?;
        let payload = sign::payload(&image_name(r, repository), &top.digest);
        let sig = key.sign(&payload);
        Some(Item {
            label: "signature".into(),
            kind: Kind::Signature,
            subject: top.clone(),
            content: Content {
                bytes: payload,
                annotations: [(sign::SIGNATURE_ANNOTATION.to_string(), sig)].into(),
            },
        })
    }

    fn provenance_item(&self, statement: &[u8], top: &Descriptor) -> Item {
        Item {
            label: "provenance".into(),
            kind: Kind::Provenance,
            subject: top.clone(),
            content: Content {
                bytes: sign::envelope(statement, self.key.as_ref()),
                annotations: [(
                    PREDICATE_ANNOTATION.to_string(),
                    provenance::PREDICATE_TYPE.to_string(),
                )]
                .into(),
            },
        }
    }

    /// Start making the SBOM of one platform of a freshly built image, on a
    /// blocking thread: it reads the layers, which takes seconds for a large
    /// image, so it runs while the image is pushed. [`Supply::attach_built`]
    /// takes the result.
    pub fn start_sbom(
        &self,
        registries: &[Arc<Registry>],
        service: &str,
        repository: &str,
        platform: &PlatformImage,
        created: &str,
    ) -> SbomTask {
        let repositories: Vec<String> = registries
            .iter()
            .map(|r| image_name(r, repository))
            .collect();
        let (service, platform, created) =
            (service.to_string(), platform.clone(), created.to_string());
        SbomTask(tokio::spawn(async move {
            make_sbom(&service, &platform, &repositories, &created).await
        }))
    }

    /// Attach the SBOMs (`sboms`, one task per platform of `built`, from
    /// [`Supply::start_sbom`]), the provenance and (with a key) the
    /// signature of a freshly built image to every registry. Never fails:
    /// what a registry refused is in its outcome.
    pub async fn attach_built(
        &self,
        registries: &[Arc<Registry>],
        service: &str,
        built: Built,
        sboms: Vec<SbomTask>,
        progress: &Progress,
    ) -> SupplyOutcome {
        let mut outcome = SupplyOutcome {
            signed: self.key.is_some(),
            ..SupplyOutcome::default()
        };
        let repositories: Vec<String> = registries
            .iter()
            .map(|r| image_name(r, &built.repository))
            .collect();
        let mut sbom_items = Vec::new();
        for (p, task) in built.platforms.iter().zip(sboms) {
            let made = match task.0.await {
                Ok(made) => made,
                Err(e) => Err(anyhow::anyhow!("the SBOM task stopped: {e}")),
            };
            take_sbom(
                &mut outcome,
                &mut sbom_items,
                made,
                &p.platform,
                service,
                progress,
            );
        }
        let mut facts = built.facts.clone();
        facts.repositories = repositories;
        facts.digest = built.top.digest.clone();
        facts.sboms = sbom_refs(&outcome.sboms, &sbom_items);
        let statement = provenance::statement(&facts, self.workflow.as_ref());
        let pushes = registries.iter().map(|r| {
            let mut items: Vec<Item> = sbom_items
                .iter()
                .map(|i| Item {
                    label: i.label.clone(),
                    kind: i.kind,
                    subject: i.subject.clone(),
                    content: i.content.clone(),
                })
                .collect();
            items.push(self.provenance_item(&statement, &built.top));
            items.extend(self.signature(r, &built.repository, &built.top));
            let repo = r.prefix().repository(&built.repository);
            let top = built.top.digest.clone();
            async move { push_items(r, &repo, &top, items, Vec::new()).await }
        });
        outcome.registries = futures_util::future::join_all(pushes).await;
        report(service, &outcome, progress);
        outcome
    }

    /// Attach what an image already pushed lacks, in every registry: the
    /// SBOM of each platform (from its layers, downloaded into `workdir`),
    /// the provenance (from the image's labels and `base`), the signature
    /// (with a key; one by another key does not count). What is there is
    /// left as it is.
    pub async fn attach_existing(
        &self,
        registries: &[Arc<Registry>],
        service: &str,
        pushed: Pushed<'_>,
        progress: &Progress,
    ) -> SupplyOutcome {
        let Pushed {
            repository,
            top,
            base,
            workdir,
            sources,
        } = pushed;
        let mut outcome = SupplyOutcome {
            signed: self.key.is_some(),
            ..SupplyOutcome::default()
        };
        let Some(first) = registries.first() else {
            return outcome;
        };
        let image = match read_image(first, &first.prefix().repository(repository), top).await {
            Ok(i) => i,
            Err(e) => {
                outcome.error = Some(format!("{e:#}"));
                progress.line(service, &format!("warning: nothing attached: {e:#}"));
                return outcome;
            }
        };
        // What each registry has.
        let mut have: Vec<Result<(Scheme, Vec<String>), String>> = Vec::new();
        for r in registries {
            let repo = r.prefix().repository(repository);
            have.push(
                self.present(r, &repo, &image)
                    .await
                    .map_err(|e| format!("{e:#}")),
            );
        }
        let wanted = |label: &str| {
            have.iter()
                .any(|h| matches!(h, Ok((_, p)) if !p.iter().any(|x| x == label)))
        };
        // Make what some registry lacks.
        let repositories: Vec<String> = registries
            .iter()
            .map(|r| image_name(r, repository))
            .collect();
        let mut sbom_items = Vec::new();
        for p in &image.platforms {
            let label = format!("sbom {}", p.platform);
            if !wanted(&label) {
                continue;
            }
            let made = async {
                let dir = workdir.join(format!("{service}-{}", p.platform.slug()));
                tokio::fs::create_dir_all(&dir).await?;
                let mut layers = Vec::new();
                for (i, l) in p.layers.iter().enumerate() {
                    let path = dir.join(format!("layer-{i}"));
                    first
                        .download_blob(&first.prefix().repository(repository), &l.digest, &path)
                        .await?;
                    layers.push(path);
                }
                let pi = PlatformImage {
                    platform: p.platform.clone(),
                    manifest: p.manifest.clone(),
                    layers,
                };
                let created = image
                    .labels
                    .get(labels::CREATED)
                    .cloned()
                    .unwrap_or_default();
                let r = make_sbom(service, &pi, &repositories, &created).await;
                let _ = tokio::fs::remove_dir_all(&dir).await;
                r
            };
            let made = made.await;
            take_sbom(
                &mut outcome,
                &mut sbom_items,
                made,
                &p.platform,
                service,
                progress,
            );
        }
        let statement = wanted("provenance").then(|| {
            let mut facts = base.clone();
            facts.repositories = repositories.clone();
            facts.digest = top.digest.clone();
            facts.revision = image
                .labels
                .get(labels::REVISION)
                .cloned()
                .unwrap_or(facts.revision);
            facts.source = image.labels.get(labels::SOURCE).cloned().or(facts.source);
            if facts.dockerfile_digest.is_none() {
                facts.dockerfile_digest = sources.and_then(|root| {
                    let repo = crate::clients::git::Repo::discover(root).ok()?;
                    let text = repo.file_at(&facts.revision, &facts.dockerfile)?;
                    Some(oci::sha256_digest(text.as_bytes()))
                });
            }
            if let Some(i) = &image.inputs {
                facts.inputs = Some(i.clone());
            }
            facts.platforms = image
                .platforms
                .iter()
                .map(|p| p.platform.to_string())
                .collect();
            facts.sboms = sbom_refs(&outcome.sboms, &sbom_items);
            provenance::statement(&facts, self.workflow.as_ref())
        });
        let top_desc = top.descriptor();
        let pushes = registries.iter().zip(have).map(|(r, had)| {
            let repo = r.prefix().repository(repository);
            let name = r.prefix().to_string();
            let mut items: Vec<Item> = Vec::new();
            if let Ok((_, present)) = &had {
                for i in &sbom_items {
                    if !present.contains(&i.label) {
                        items.push(Item {
                            label: i.label.clone(),
                            kind: i.kind,
                            subject: i.subject.clone(),
                            content: i.content.clone(),
                        });
                    }
                }
                if let Some(s) = &statement {
                    if !present.iter().any(|p| p == "provenance") {
                        items.push(self.provenance_item(s, &top_desc));
                    }
                }
                if !present.iter().any(|p| p == "signature") {
                    items.extend(self.signature(r, repository, &top_desc));
                }
            }
            let digest = top.digest.clone();
            async move {
                match had {
                    Ok((_, present)) => push_items(r, &repo, &digest, items, present).await,
                    Err(e) => RegistryOutcome {
                        registry: name,
                        scheme: None,
                        attached: Vec::new(),
                        present: Vec::new(),
                        error: Some(e),
                    },
                }
            }
        });
        outcome.registries = futures_util::future::join_all(pushes).await;
        report(service, &outcome, progress);
        outcome
    }

    /// The labels of what `r` holds for `image` (`signature` only when our
    /// key verifies it; provenance only signed by it, with a key).
    async fn present(
        &self,
        r: &Registry,
        repo: &str,
        image: &RemoteImage,
    ) -> Result<(Scheme, Vec<String>)> {
        let top = &image.top;
        let listing = r.referrers(repo, top).await?;
        let scheme = if listing.is_some() {
            Scheme::Referrers
        } else {
            Scheme::Tags
        };
        let public = self.key.as_ref().map(|k| k.public());
        let mut present = Vec::new();
        let sigs = attach::find(r, repo, top, Kind::Signature, listing.as_deref()).await?;
        let ours = match &public {
            Some(k) => sigs.iter().any(|f| {
                f.annotations
                    .get(sign::SIGNATURE_ANNOTATION)
                    .is_some_and(|s| k.verify(&f.bytes, s))
                    && sign::read_payload(&f.bytes).is_some_and(|(d, _)| &d == top)
            }),
            None => !sigs.is_empty(),
        };
        if ours {
            present.push("signature".to_string());
        }
        let atts = attach::find(r, repo, top, Kind::Provenance, listing.as_deref()).await?;
        let good = atts.iter().any(|f| {
            sign::open_envelope(&f.bytes, public.as_ref()).is_some_and(|(s, ok)| {
                ok != Some(false)
                    && provenance::read(&s).is_some_and(|p| p.digests.iter().any(|d| d == top))
            })
        });
        if good {
            present.push("provenance".to_string());
        }
        for p in &image.platforms {
            let listing = r.referrers(repo, &p.manifest.digest).await?;
            if !attach::find(r, repo, &p.manifest.digest, Kind::Sbom, listing.as_deref())
                .await?
                .is_empty()
            {
                present.push(format!("sbom {}", p.platform));
            }
        }
        Ok((scheme, present))
    }
}

/// Make the SBOM of one platform image (blocking work on a thread).
/// Keep an SBOM that was made, or record why it was not (a warning; the
/// image is attached without it).
fn take_sbom(
    outcome: &mut SupplyOutcome,
    items: &mut Vec<Item>,
    made: Result<(SbomInfo, Item)>,
    platform: &impl std::fmt::Display,
    service: &str,
    progress: &Progress,
) {
    match made {
        Ok((info, item)) => {
            outcome.sboms.push(info);
            items.push(item);
        }
        Err(e) => {
            let msg = format!("no SBOM for {platform}: {e:#}");
            progress.line(service, &format!("warning: {msg}"));
            outcome.error = Some(msg);
        }
    }
}

/// What the provenance says of the SBOMs: (platform, digest, size).
fn sbom_refs(sboms: &[SbomInfo], items: &[Item]) -> Vec<(String, String, u64)> {
    sboms
        .iter()
        .zip(items)
        .map(|(s, i)| {
            (
                s.platform.clone(),
                s.digest.clone(),
                i.content.bytes.len() as u64,
            )
        })
        .collect()
}

/// An SBOM being made (see [`Supply::start_sbom`]).
pub struct SbomTask(tokio::task::JoinHandle<Result<(SbomInfo, Item)>>);

async fn make_sbom(
    service: &str,
    p: &PlatformImage,
    repositories: &[String],
    created: &str,
) -> Result<(SbomInfo, Item)> {
    let (service_c, p_c, repos, created_c) = (
        service.to_string(),
        p.clone(),
        repositories.to_vec(),
        created.to_string(),
    );
    let made = tokio::task::spawn_blocking(move || {
        let layers: Vec<&Path> = p_c.layers.iter().map(PathBuf::as_path).collect();
        sbom::from_layers(
            &layers,
            &sbom::Subject {
                service: &service_c,
                platform: &p_c.platform,
                digest: &p_c.manifest.digest,
                repositories: &repos,
                created: &created_c,
            },
        )
    })
    .await
    .context("making the SBOM")??;
    let info = SbomInfo {
        platform: p.platform.to_string(),
        manifest: p.manifest.digest.clone(),
        digest: oci::sha256_digest(&made.json),
        counts: made.counts,
    };
    let item = Item {
        label: format!("sbom {}", p.platform),
        kind: Kind::Sbom,
        subject: p.manifest.clone(),
        content: Content {
            bytes: made.json,
            annotations: BTreeMap::new(),
        },
    };
    Ok((info, item))
}

/// Push `items` to one registry, in the scheme it takes; stop at its first
/// refusal.
async fn push_items(
    r: &Registry,
    repo: &str,
    top: &str,
    items: Vec<Item>,
    present: Vec<String>,
) -> RegistryOutcome {
    let mut out = RegistryOutcome {
        registry: r.prefix().to_string(),
        scheme: None,
        attached: Vec::new(),
        present,
        error: None,
    };
    let scheme = match attach::scheme(r, repo, top).await {
        Ok(s) => s,
        Err(e) => {
            out.error = Some(e.to_string());
            return out;
        }
    };
    out.scheme = Some(scheme);
    for i in items {
        match attach::push(r, repo, scheme, i.kind, &i.content, &i.subject).await {
            Ok(()) => out.attached.push(i.label),
            Err(e) => {
                out.error = Some(format!("{}: {e}", i.label));
                break;
            }
        }
    }
    out
}

/// A progress line per registry: what was attached, or what was refused.
fn report(service: &str, outcome: &SupplyOutcome, progress: &Progress) {
    for r in &outcome.registries {
        match &r.error {
            Some(e) => {
                let message = format!(
                    "{} refused the supply-chain attachments of {service} ({e}); its images \
                     and tags are pushed; `openim-release attest` adds them later",
                    r.registry
                );
                progress.line(service, &format!("warning: {message}"));
                if crate::output::actions::in_actions() {
                    crate::output::actions::command(&crate::output::actions::annotation(
                        "warning", &message, None, None,
                    ));
                }
            }
            None if !r.attached.is_empty() => progress.line(
                service,
                &format!(
                    "{}: attached {} ({})",
                    r.registry,
                    r.attached.join(", "),
                    match r.scheme {
                        Some(Scheme::Referrers) => "OCI referrers",
                        _ => "cosign tags",
                    }
                ),
            ),
            None => {}
        }
    }
}

/// An image pushed before, as the registry holds it.
#[derive(Debug, Clone)]
pub struct RemoteImage {
    pub top: String,
    pub platforms: Vec<RemotePlatform>,
    /// The labels of the first platform's config.
    pub labels: BTreeMap<String, String>,
    /// `org.openim-release.inputs` of the index or manifest.
    pub inputs: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RemotePlatform {
    pub platform: Platform,
    pub manifest: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// Read an image (index or manifest) and its platforms' manifests and the
/// first config from `r`.
pub async fn read_image(r: &Registry, repo: &str, top: &Encoded) -> Result<RemoteImage> {
    let v: serde_json::Value =
        serde_json::from_slice(&top.bytes).context("the image's manifest is not JSON")?;
    let inputs = v["annotations"][labels::INPUTS]
        .as_str()
        .map(str::to_string);
    let mut entries: Vec<(Option<Platform>, Descriptor)> = Vec::new();
    if let Some(list) = v["manifests"].as_array() {
        for m in list {
            let d: Descriptor = serde_json::from_value(m.clone()).context("an index entry")?;
            // Attestation manifests (BuildKit's `unknown/unknown`) are no platform.
            if d.platform.as_ref().is_some_and(|p| p.os == "unknown") {
                continue;
            }
            entries.push((d.platform.clone(), d));
        }
    } else {
        entries.push((None, top.descriptor()));
    }
    let mut platforms = Vec::new();
    let mut labels_found = BTreeMap::new();
    let mut inputs = inputs;
    for (platform, d) in entries {
        let bytes = if d.digest == top.digest {
            top.bytes.clone()
        } else {
            r.get_manifest(repo, &d.digest)
                .await?
                .ok_or_else(|| anyhow!("{repo}@{} is missing", short(&d.digest)))?
                .bytes
        };
        let m: oci::Manifest =
            serde_json::from_slice(&bytes).context("a platform manifest that does not parse")?;
        if inputs.is_none() {
            inputs = m.annotations.get(labels::INPUTS).cloned();
        }
        let platform = match platform {
            Some(p) if labels_found.is_empty() => {
                labels_found = config_labels(r, repo, &m.config.digest).await?.1;
                p
            }
            Some(p) => p,
            None => {
                let (p, l) = config_labels(r, repo, &m.config.digest).await?;
                labels_found = l;
                p
            }
        };
        platforms.push(RemotePlatform {
            platform,
            manifest: Descriptor::new(&d.media_type, d.digest.clone(), d.size),
            layers: m.layers,
        });
    }
    Ok(RemoteImage {
        top: top.digest.clone(),
        platforms,
        labels: labels_found,
        inputs,
    })
}

async fn config_labels(
    r: &Registry,
    repo: &str,
    digest: &str,
) -> Result<(Platform, BTreeMap<String, String>)> {
    let bytes = r
        .blob_bytes(repo, digest, 16 * 1024 * 1024)
        .await?
        .ok_or_else(|| anyhow!("the image config {} is missing", short(digest)))?;
    let c: oci::ImageConfig = serde_json::from_slice(&bytes).context("the image config")?;
    let labels = c.config.and_then(|c| c.labels).unwrap_or_default();
    Ok((
        Platform {
            os: c.os,
            architecture: c.architecture,
            variant: c.variant,
        },
        labels,
    ))
}

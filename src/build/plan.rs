//! What `build` will do, computed before anything runs: the services (from
//! the config or a compose build file), the platforms, and every image
//! reference. Pure logic over plain data; the dry run prints this plan.

use crate::config::ImagesConfig;
use crate::oci::reference::{is_valid_component, ImageRef, RegistryPrefix};
use crate::oci::Platform;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One service image to build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceSpec {
    pub name: String,
    /// Its image name (`images.image_names`, else the name): what `{service}`
    /// stands for in `images.repository` and the tag templates.
    pub image: String,
    /// The repository under each registry (`images.repository` filled in).
    pub repository: String,
    /// Relative to the repository root.
    pub dockerfile: PathBuf,
    /// Relative to the repository root.
    pub context: PathBuf,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    #[serde(serialize_with = "platform_strings")]
    pub platforms: Vec<Platform>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImagePlan {
    pub service: ServiceSpec,
    /// This service's tags (`{service}` of the stage's tags filled in).
    pub tags: Vec<String>,
    pub references: Vec<ImageRef>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildPlan {
    pub tags: Vec<String>,
    pub registries: Vec<RegistryPrefix>,
    pub images: Vec<ImagePlan>,
}

impl Serialize for ImageRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl Serialize for RegistryPrefix {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

fn platform_strings<S: serde::Serializer>(list: &[Platform], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(list.iter().map(ToString::to_string))
}

/// The default platform when none is configured.
pub fn default_platform() -> Platform {
    Platform {
        os: "linux".into(),
        architecture: "amd64".into(),
        variant: None,
    }
}

fn parse_platforms(list: &[String]) -> Result<Vec<Platform>, String> {
    let mut out: Vec<Platform> = Vec::new();
    for p in list {
        let p = Platform::parse(p)?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// The services of the config, plus those of the compose files (read by
/// [`crate::build::compose::load`]); a name in both is the config's.
pub fn services(
    images: &ImagesConfig,
    compose: &[crate::build::compose::ComposeService],
) -> Result<Vec<ServiceSpec>, String> {
    let default_platforms = if images.platforms.is_empty() {
        vec![default_platform()]
    } else {
        parse_platforms(&images.platforms)?
    };
    let mut out: Vec<ServiceSpec> = Vec::new();
    for s in &images.services {
        let context = s.context.clone().unwrap_or_else(|| PathBuf::from("."));
        let dockerfile = s
            .dockerfile
            .clone()
            .unwrap_or_else(|| context.join("Dockerfile"));
        let platforms = match &s.platforms {
            Some(p) => parse_platforms(p)?,
            None => default_platforms.clone(),
        };
        out.push(ServiceSpec {
            name: s.name.clone(),
            image: String::new(),
            repository: String::new(),
            dockerfile: normalize(&dockerfile),
            context: normalize(&context),
            args: s.args.clone(),
            target: s.target.clone(),
            platforms,
        });
    }
    for c in compose {
        if out.iter().any(|o| o.name == c.name) {
            continue;
        }
        let platforms = if c.platforms.is_empty() {
            default_platforms.clone()
        } else {
            parse_platforms(&c.platforms).map_err(|e| format!("compose service {}: {e}", c.name))?
        };
        out.push(ServiceSpec {
            name: c.name.clone(),
            image: String::new(),
            repository: String::new(),
            dockerfile: c.dockerfile.clone(),
            context: c.context.clone(),
            args: c.args.clone(),
            target: c.target.clone(),
            platforms,
        });
    }
    for s in &mut out {
        s.image = images
            .image_names
            .get(&s.name)
            .cloned()
            .unwrap_or_else(|| s.name.clone());
        if !is_valid_component(&s.image) {
            // `frontendTests` → `frontend-tests`; `OpenIM-API` → `openim-api`.
            let suggestion = s
                .name
                .chars()
                .enumerate()
                .fold(String::new(), |mut acc, (i, c)| {
                    let after_lower = i > 0
                        && s.name[..i]
                            .chars()
                            .last()
                            .is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit());
                    if c.is_ascii_uppercase() && after_lower {
                        acc.push('-');
                    }
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                        acc.push(c.to_ascii_lowercase());
                    } else {
                        acc.push('-');
                    }
                    acc
                });
            return Err(format!(
                "service name `{}` is not a valid image name (lowercase letters, digits, . _ -): \
                 name its image in images.image_names (`{}: {suggestion}`)",
                s.name, s.name
            ));
        }
        s.repository = repository_of(images, &s.image);
    }
    Ok(out)
}

/// The repository of the service whose image name is `image`:
/// `images.repository` with `{service}` filled in, by default the image name.
pub fn repository_of(images: &ImagesConfig, image: &str) -> String {
    match &images.repository {
        Some(template) => crate::tag::template::for_service(template, image),
        None => image.to_string(),
    }
}

/// `a/./b/../c` → `a/c`, without touching the file system.
pub fn normalize(p: &Path) -> PathBuf {
    let mut out: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if out.last().is_some_and(|l| l != "..") {
                    out.pop();
                } else {
                    out.push("..".into());
                }
            }
            other => out.push(other.as_os_str().to_string_lossy().into_owned()),
        }
    }
    if out.is_empty() {
        PathBuf::from(".")
    } else {
        out.iter().collect()
    }
}

/// Problems with what the user asked `build` for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildPlanError {
    #[error("unknown service `{0}`; known services: {1}")]
    UnknownService(String, String),
    #[error(
        "no services to build: add `images.services` (or `images.compose`) to openim-release.yaml"
    )]
    NoServices,
    #[error("no image tags: pass --stage STAGE or --tag TAG")]
    NoTags,
    #[error("`{0}` is not a valid image tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})")]
    InvalidTag(String),
    #[error("{0}")]
    Invalid(String),
}

/// Select services, apply overrides, and list every reference.
pub fn plan(
    all: &[ServiceSpec],
    selected: &[String],
    platform_override: &[String],
    registries: &[String],
    tags: &[String],
) -> Result<BuildPlan, BuildPlanError> {
    if all.is_empty() {
        return Err(BuildPlanError::NoServices);
    }
    if tags.is_empty() {
        return Err(BuildPlanError::NoTags);
    }
    if let Some(bad) = tags.iter().find(|t| {
        !crate::oci::reference::is_valid_tag(&crate::tag::template::for_service(t, "service"))
    }) {
        return Err(BuildPlanError::InvalidTag(bad.clone()));
    }
    let known = || {
        all.iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut chosen: Vec<ServiceSpec> = Vec::new();
    if selected.is_empty() {
        chosen = all.to_vec();
    } else {
        for name in selected {
            let s = all
                .iter()
                .find(|s| &s.name == name)
                .ok_or_else(|| BuildPlanError::UnknownService(name.clone(), known()))?;
            if !chosen.contains(s) {
                chosen.push(s.clone());
            }
        }
    }
    if !platform_override.is_empty() {
        let platforms = parse_platforms(platform_override).map_err(BuildPlanError::Invalid)?;
        for s in &mut chosen {
            s.platforms = platforms.clone();
        }
    }
    let registries: Vec<RegistryPrefix> = registries
        .iter()
        .map(|r| RegistryPrefix::parse(r))
        .collect::<Result<_, _>>()
        .map_err(BuildPlanError::Invalid)?;
    let images: Vec<ImagePlan> = chosen
        .into_iter()
        .map(|service| {
            let own: Vec<String> = tags
                .iter()
                .map(|t| crate::tag::template::for_service(t, &service.image))
                .collect();
            ImagePlan {
                references: registries
                    .iter()
                    .flat_map(|r| {
                        own.iter().map(|t| ImageRef {
                            registry: r.clone(),
                            service: service.repository.clone(),
                            tag: t.clone(),
                        })
                    })
                    .collect(),
                tags: own,
                service,
            }
        })
        .collect();
    // One repository for several services: a tag without the service
    // would be pushed by each of them, the last one winning.
    let mut seen: std::collections::BTreeMap<String, &str> = Default::default();
    for i in &images {
        for r in &i.references {
            if let Some(other) = seen.insert(r.to_string(), &i.service.name) {
                return Err(BuildPlanError::Invalid(format!(
                    "{other} and {} would both push {r}: they share the repository {}, so each \
                     tag must name the service (`{}-{{service}}`)",
                    i.service.name,
                    i.service.repository,
                    tags.iter()
                        .find(|t| !t.contains(crate::tag::template::SERVICE))
                        .map_or("tag", String::as_str)
                )));
            }
        }
    }
    Ok(BuildPlan {
        tags: tags.to_vec(),
        registries,
        images,
    })
}

/// The GitHub Actions matrix fanning the plan out per service and platform:
/// `{"include":[{"service":…,"platform":…,"slug":…}]}`.
pub fn matrix(plan: &BuildPlan) -> serde_json::Value {
    let include: Vec<serde_json::Value> = plan
        .images
        .iter()
        .flat_map(|i| {
            i.service.platforms.iter().map(move |p| {
                serde_json::json!({
                    "service": i.service.name,
                    "platform": p.to_string(),
                    "slug": format!("{}-{}", i.service.name, p.slug()),
                })
            })
        })
        .collect();
    serde_json::json!({ "include": include })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServiceConfig;

    fn images() -> ImagesConfig {
        ImagesConfig {
            registries: vec!["ghcr.io/openimsdk".into(), "docker.io/openim".into()],
            platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
            services: vec![ServiceConfig {
                name: "openim-api".into(),
                dockerfile: Some("build/images/openim-server/Dockerfile".into()),
                context: Some(".".into()),
                args: [("BINARY_NAME".to_string(), "openim-api".to_string())].into(),
                target: None,
                platforms: None,
            }],
            ..ImagesConfig::default()
        }
    }

    #[test]
    fn references_are_registry_times_tag() {
        let cfg = images();
        let all = services(&cfg, &[]).unwrap();
        let p = plan(
            &all,
            &[],
            &[],
            &cfg.registries,
            &["v1.0.0".into(), "rc0".into()],
        )
        .unwrap();
        let refs: Vec<String> = p.images[0]
            .references
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(
            refs,
            [
                "ghcr.io/openimsdk/openim-api:v1.0.0",
                "ghcr.io/openimsdk/openim-api:rc0",
                "docker.io/openim/openim-api:v1.0.0",
                "docker.io/openim/openim-api:rc0"
            ]
        );
        assert_eq!(p.images[0].service.platforms.len(), 2);
        let m = matrix(&p);
        assert_eq!(m["include"][1]["slug"], "openim-api-linux-arm64");
    }

    #[test]
    fn selection_errors() {
        let cfg = images();
        let all = services(&cfg, &[]).unwrap();
        let err = plan(
            &all,
            &["openim-push".into()],
            &[],
            &cfg.registries,
            &["x".into()],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown service `openim-push`; known services: openim-api"
        );
        assert_eq!(
            plan(&all, &[], &[], &cfg.registries, &[]).unwrap_err(),
            BuildPlanError::NoTags
        );
        assert!(matches!(
            plan(&all, &[], &[], &cfg.registries, &["bad/tag".into()]),
            Err(BuildPlanError::InvalidTag(_))
        ));
        assert!(plan(&all, &[], &["linux".into()], &cfg.registries, &["x".into()]).is_err());
    }
}

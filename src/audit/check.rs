//! The audit's rules, from what git expects ([`super::expect`]) and what the
//! registries hold ([`super::store`]) to findings, each with the repair that
//! is safe to make. Pure logic: no request is sent here.
//!
//! - every own tag of a release (`release-vX.Y.Z`, `vX.Y.Z`, `X.Y.Z`, patch
//!   tags) exists in every registry, for every service;
//! - all of them name one image, the same in every registry (the release's
//!   image: the one most of its tags name, preferring an image without
//!   problems);
//! - that image has every configured platform, each present in the
//!   registry, and each platform's `org.opencontainers.image.revision` label
//!   is the release's commit, or a commit where nothing the service's build
//!   reads differs (an image reused because its inputs had not changed);
//! - every alias points at the image of the release that moved it last.
//!
//! Image signatures and attestations are not checked yet: a check of them
//! belongs in [`image_problems`], beside the platforms and the revision.

use super::expect::Expectations;
use super::store::{platform_matches, short, Loc, Lookup, Parsed, Store};
use super::{Finding, Fix, FixAction, Kind};
use crate::build::labels::REVISION;
use crate::oci::reference::RegistryPrefix;
use crate::oci::Platform;
use std::collections::{BTreeMap, BTreeSet};

/// How an image's revision (the commit it was built from) relates to its
/// release's commit, for one service's build (`build::same_build`).
pub use crate::build::same_build::Sameness as Verdict;

/// `(revision, release commit, service)` → [`Verdict`].
pub type Ancestry<'a> = &'a dyn Fn(&str, &str, &str) -> Verdict;

/// What is audited.
pub struct Scope<'a> {
    pub expect: &'a Expectations,
    /// Indexes into `expect.releases`.
    pub selected: &'a [usize],
    /// Each service with its platforms.
    pub services: &'a [(String, Vec<Platform>)],
    pub registries: &'a [RegistryPrefix],
}

/// How much was looked at.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Counts {
    /// Tags looked up (service × registry × tag).
    pub tags: usize,
    /// Distinct images (repository × digest) checked.
    pub images: usize,
    /// Platform images checked (present, revision label).
    pub platforms: usize,
}

impl Scope<'_> {
    pub fn loc(&self, service: usize, registry: usize) -> Loc {
        let r = &self.registries[registry];
        (r.host.clone(), r.repository(&self.services[service].0))
    }

    fn aliases(&self, release: usize) -> Vec<&str> {
        self.expect.aliases_of(release)
    }

    /// Every (repository, tag) to look up, and whether to read the
    /// manifest while at it: the primary tag of each release and service,
    /// in the first registry (not Docker Hub, where a read is a pull, when
    /// another is configured); the rest is only looked up.
    pub fn tag_lookups(&self) -> Vec<(Loc, String, bool)> {
        let reader = self
            .registries
            .iter()
            .position(|r| r.api_host() != "registry-1.docker.io")
            .unwrap_or(0);
        let mut out = Vec::new();
        for &r in self.selected {
            let rel = &self.expect.releases[r];
            let tags = rel.tags.iter().map(String::as_str).chain(self.aliases(r));
            for (t, tag) in tags.enumerate() {
                for s in 0..self.services.len() {
                    for g in 0..self.registries.len() {
                        out.push((self.loc(s, g), tag.to_string(), t == 0 && g == reader));
                    }
                }
            }
        }
        out
    }
}

/// A problem of one image (a repository's digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageProblem {
    /// A configured platform is not in the image, or its manifest is not
    /// in the repository (`elsewhere`: another registry has it).
    Platform {
        platform: String,
        detail: String,
        elsewhere: Option<String>,
    },
    /// The revision label names a commit whose build differs.
    Revision {
        platform: Option<String>,
        found: Option<String>,
        detail: String,
    },
    /// The manifest or a config could not be read or understood.
    Unreadable(String),
}

/// One image to check: the manifest `digest` in `loc`, of a service built
/// for `platforms` from `commit` (a release's; `None`: the revision is not
/// checked); `others` are the service's repositories in the other
/// registries (where a missing platform may still be).
pub struct Image<'a> {
    pub service: &'a str,
    pub loc: &'a Loc,
    pub digest: &'a str,
    pub platforms: &'a [Platform],
    pub commit: Option<&'a str>,
    pub others: &'a [(String, Loc)],
}

/// The problems of one image.
pub fn image_problems(
    store: &Store,
    image: &Image<'_>,
    ancestry: Ancestry<'_>,
    counts: &mut Counts,
) -> Vec<ImageProblem> {
    let Image {
        service,
        loc,
        digest,
        platforms,
        commit,
        others,
    } = *image;
    let mut out = Vec::new();
    // (platform as configured, its manifest digest) present in `loc`.
    let mut images: Vec<(String, String)> = Vec::new();
    match store.manifests.get(digest) {
        None => out.push(ImageProblem::Unreadable(format!(
            "{} was not read",
            short(digest)
        ))),
        Some(Parsed::Other(why)) => out.push(ImageProblem::Unreadable(format!(
            "{} is {why}",
            short(digest)
        ))),
        Some(Parsed::Index(entries)) => {
            for want in platforms {
                counts.platforms += 1;
                let Some(entry) = entries
                    .iter()
                    .find(|e| platform_matches(want, e.platform.as_ref()))
                else {
                    let listed: Vec<String> = entries
                        .iter()
                        .filter_map(|e| e.platform.as_ref().map(ToString::to_string))
                        .collect();
                    out.push(ImageProblem::Platform {
                        platform: want.to_string(),
                        detail: format!(
                            "the index has no {want} (it lists {})",
                            if listed.is_empty() {
                                "no platform".to_string()
                            } else {
                                listed.join(", ")
                            }
                        ),
                        elsewhere: None,
                    });
                    continue;
                };
                match store.lookup(loc, &entry.digest) {
                    Some(Lookup::Found(_)) => images.push((want.to_string(), entry.digest.clone())),
                    Some(Lookup::Missing) => out.push(ImageProblem::Platform {
                        platform: want.to_string(),
                        detail: format!(
                            "the index lists {want} as {}, which is not in this registry",
                            short(&entry.digest)
                        ),
                        elsewhere: others
                            .iter()
                            .find(|(_, o)| store.has(o, &entry.digest) == Some(true))
                            .map(|(name, _)| name.clone()),
                    }),
                    Some(Lookup::Failed(e)) => out.push(ImageProblem::Unreadable(format!(
                        "{want} ({}): {e}",
                        short(&entry.digest)
                    ))),
                    None => out.push(ImageProblem::Unreadable(format!(
                        "{want} ({}) was not looked up",
                        short(&entry.digest)
                    ))),
                }
            }
        }
        Some(Parsed::Image { config }) => {
            let have = match store.configs.get(config) {
                Some(Ok(c)) => c.platform.clone(),
                _ => None,
            };
            for want in platforms {
                counts.platforms += 1;
                if platform_matches(want, have.as_ref()) {
                    images.push((want.to_string(), digest.to_string()));
                } else {
                    out.push(ImageProblem::Platform {
                        platform: want.to_string(),
                        detail: format!(
                            "a single-platform image ({}), not an index with {want}",
                            have.as_ref().map_or_else(
                                || "platform unknown".to_string(),
                                ToString::to_string
                            )
                        ),
                        elsewhere: None,
                    });
                }
            }
        }
    }
    // The revision label of each platform image (of a release: an image
    // a deploy names has no commit to compare with).
    let Some(commit) = commit else {
        return out;
    };
    let mut bad: BTreeMap<Option<String>, (Vec<String>, String)> = BTreeMap::new();
    for (platform, manifest) in &images {
        let config = match store.manifests.get(manifest) {
            Some(Parsed::Image { config }) => config,
            Some(Parsed::Index(_)) => {
                out.push(ImageProblem::Unreadable(format!(
                    "{platform} ({}) is an index inside an index",
                    short(manifest)
                )));
                continue;
            }
            Some(Parsed::Other(why)) => {
                out.push(ImageProblem::Unreadable(format!("{platform}: {why}")));
                continue;
            }
            None => continue,
        };
        let labels = match store.configs.get(config) {
            Some(Ok(c)) => &c.labels,
            Some(Err(e)) => {
                out.push(ImageProblem::Unreadable(format!("{platform}: {e}")));
                continue;
            }
            None => {
                out.push(ImageProblem::Unreadable(format!(
                    "{platform}: config {} was not read",
                    short(config)
                )));
                continue;
            }
        };
        let found = labels.get(REVISION).cloned();
        let why = match found.as_deref() {
            None | Some("") => Some(format!("has no {REVISION} label")),
            Some(r) if r == commit => None,
            Some(r) => match ancestry(r, commit, service) {
                Verdict::Same | Verdict::Equivalent => None,
                Verdict::Differs(paths) => Some(format!(
                    "was built from {}, not from the release's commit {}: {} differ{}",
                    short_sha(r),
                    short_sha(commit),
                    shown_paths(&paths),
                    if paths.len() == 1 { "s" } else { "" }
                )),
                Verdict::Unknown => Some(format!(
                    "was built from {}, which is not a commit of this repository (the release is {})",
                    short_sha(r),
                    short_sha(commit)
                )),
            },
        };
        if let Some(why) = why {
            let entry = bad.entry(found).or_insert_with(|| (Vec::new(), why));
            entry.0.push(platform.clone());
        }
    }
    let all = images.len();
    for (found, (platforms, why)) in bad {
        // Said once when every platform is alike.
        let platform = (platforms.len() != all).then(|| platforms.join(", "));
        out.push(ImageProblem::Revision {
            platform,
            found,
            detail: why,
        });
    }
    out
}

/// `a, b, c and 4 more`.
fn shown_paths(paths: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut out = paths
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > SHOWN {
        out.push_str(&format!(" and {} more", paths.len() - SHOWN));
    }
    out
}

pub fn short_sha(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

/// Each selected release's image per service: the digest most of its tags
/// name across the registries, preferring one without problems, then the
/// first registry's.
pub fn canonical(
    scope: &Scope<'_>,
    store: &Store,
    ancestry: Ancestry<'_>,
) -> BTreeMap<(usize, usize), String> {
    let mut out = BTreeMap::new();
    for &r in scope.selected {
        let rel = &scope.expect.releases[r];
        for (s, (_, platforms)) in scope.services.iter().enumerate() {
            // digest → (problem-free somewhere, count, first position)
            let mut seen: BTreeMap<String, (bool, usize, usize)> = BTreeMap::new();
            let mut position = 0;
            for g in 0..scope.registries.len() {
                let loc = scope.loc(s, g);
                for tag in &rel.tags {
                    position += 1;
                    if let Some(Lookup::Found(d)) = store.lookup(&loc, tag) {
                        let ok = image_problems(
                            store,
                            &Image {
                                service: &scope.services[s].0,
                                loc: &loc,
                                digest: d,
                                platforms,
                                commit: Some(&rel.commit),
                                others: &[],
                            },
                            ancestry,
                            &mut Counts::default(),
                        )
                        .is_empty();
                        let e = seen.entry(d.clone()).or_insert((false, 0, position));
                        e.0 |= ok;
                        e.1 += 1;
                    }
                }
            }
            if let Some((d, _)) = seen.into_iter().max_by(|a, b| {
                (a.1 .0, a.1 .1, std::cmp::Reverse(a.1 .2)).cmp(&(
                    b.1 .0,
                    b.1 .1,
                    std::cmp::Reverse(b.1 .2),
                ))
            }) {
                out.insert((r, s), d);
            }
        }
    }
    out
}

/// The (repository, digest) pairs whose presence the fixes need to know:
/// each release's image in every registry.
pub fn presence_lookups(
    scope: &Scope<'_>,
    canon: &BTreeMap<(usize, usize), String>,
) -> Vec<(Loc, String)> {
    let mut out = Vec::new();
    for ((_, s), digest) in canon {
        for g in 0..scope.registries.len() {
            out.push((scope.loc(*s, g), digest.clone()));
        }
    }
    out
}

/// Every finding of the release checks.
pub fn findings(
    scope: &Scope<'_>,
    store: &Store,
    canon: &BTreeMap<(usize, usize), String>,
    ancestry: Ancestry<'_>,
    counts: &mut Counts,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let reg_name = |g: usize| scope.registries[g].to_string();
    // Whose image a digest is, for messages: (service, digest) → release.
    let mut owner_of: BTreeMap<(usize, &str), &str> = BTreeMap::new();
    for ((r, s), d) in canon {
        owner_of
            .entry((*s, d.as_str()))
            .or_insert(scope.expect.releases[*r].name.as_str());
    }
    for &r in scope.selected {
        let rel = &scope.expect.releases[r];
        for (s, (service, platforms)) in scope.services.iter().enumerate() {
            let image = canon.get(&(r, s));
            let base = |kind: Kind, g: usize| Finding {
                kind,
                release: Some(rel.name.clone()),
                service: service.clone(),
                registry: Some(reg_name(g)),
                tag: None,
                platform: None,
                expected: None,
                found: None,
                place: None,
                detail: String::new(),
                fix: Fix::none(),
                loc: Some(scope.loc(s, g)),
            };
            // Where the release's image is present.
            let present: Vec<usize> = match image {
                Some(d) => (0..scope.registries.len())
                    .filter(|g| store.has(&scope.loc(s, *g), d) == Some(true))
                    .collect(),
                None => Vec::new(),
            };
            for g in 0..scope.registries.len() {
                let loc = scope.loc(s, g);
                let mut checked_images: BTreeSet<String> = BTreeSet::new();
                for tag in &rel.tags {
                    counts.tags += 1;
                    let mut f = base(Kind::MissingTag, g);
                    f.tag = Some(tag.clone());
                    match store.lookup(&loc, tag) {
                        Some(Lookup::Found(d)) => {
                            checked_images.insert(d.clone());
                            if Some(d) != image {
                                let expected = image.expect("a found tag makes an image");
                                f.kind = Kind::DigestMismatch;
                                f.expected = Some(expected.clone());
                                f.found = Some(d.clone());
                                f.detail = format!(
                                    "{tag} is {}, but the release's image is {} ({})",
                                    short(d),
                                    short(expected),
                                    where_else(scope, store, rel, s, expected)
                                );
                                f.fix = Fix::of(FixAction::Review, None, None);
                                out.push(f);
                            }
                        }
                        Some(Lookup::Missing) => {
                            f.detail = format!("{tag} does not exist");
                            f.expected = image.cloned();
                            f.fix = retag_or_mirror(scope, image, &present, g);
                            out.push(f);
                        }
                        Some(Lookup::Failed(e)) => {
                            f.kind = Kind::Unchecked;
                            f.detail = format!("{tag}: {e}");
                            out.push(f);
                        }
                        None => {}
                    }
                }
                let others: Vec<(String, Loc)> = (0..scope.registries.len())
                    .filter(|o| *o != g)
                    .map(|o| (reg_name(o), scope.loc(s, o)))
                    .collect();
                for d in &checked_images {
                    counts.images += 1;
                    for p in image_problems(
                        store,
                        &Image {
                            service,
                            loc: &loc,
                            digest: d,
                            platforms,
                            commit: Some(&rel.commit),
                            others: &others,
                        },
                        ancestry,
                        counts,
                    ) {
                        let mut f = base(Kind::MissingPlatform, g);
                        f.found = Some(d.clone());
                        let not_the_image = Some(d) != image;
                        match p {
                            ImageProblem::Platform {
                                platform,
                                detail,
                                elsewhere,
                            } => {
                                f.platform = Some(platform);
                                f.detail = format!("{}: {detail}", short(d));
                                f.fix = match (not_the_image, elsewhere) {
                                    (true, _) => Fix::of(FixAction::Review, None, None),
                                    (false, Some(from)) => {
                                        Fix::of(FixAction::NeedsMirror, None, Some(from))
                                    }
                                    (false, None) => Fix::of(FixAction::NeedsRebuild, None, None),
                                };
                            }
                            ImageProblem::Revision {
                                platform,
                                found,
                                detail,
                            } => {
                                f.kind = Kind::Revision;
                                f.platform = platform;
                                f.expected = Some(rel.commit.clone());
                                f.found = found;
                                f.detail = format!("{} {detail}", short(d));
                                f.fix = Fix::of(
                                    if not_the_image {
                                        FixAction::Review
                                    } else {
                                        FixAction::NeedsRebuild
                                    },
                                    None,
                                    None,
                                );
                            }
                            ImageProblem::Unreadable(why) => {
                                f.kind = Kind::Unchecked;
                                f.detail = why;
                            }
                        }
                        out.push(f);
                    }
                }
                // The aliases this release should own.
                for alias in scope.aliases(r) {
                    counts.tags += 1;
                    let Some(expected) = image else { continue };
                    let mut f = base(Kind::Alias, g);
                    f.tag = Some(alias.to_string());
                    f.expected = Some(expected.clone());
                    match store.lookup(&loc, alias) {
                        Some(Lookup::Found(d)) if d == expected => continue,
                        Some(Lookup::Found(d)) => {
                            let whose = owner_of
                                .get(&(s, d.as_str()))
                                .map(|n| format!("{n}'s image"))
                                .unwrap_or_else(|| "an image of no audited release".into());
                            f.found = Some(d.clone());
                            f.detail = format!(
                                "{alias} points at {} ({whose}), not at {} ({}'s)",
                                short(d),
                                short(expected),
                                rel.name
                            );
                        }
                        Some(Lookup::Missing) => {
                            f.detail = format!(
                                "{alias} does not exist; it should point at {} ({}'s)",
                                short(expected),
                                rel.name
                            );
                        }
                        Some(Lookup::Failed(e)) => {
                            f.kind = Kind::Unchecked;
                            f.detail = format!("{alias}: {e}");
                            out.push(f);
                            continue;
                        }
                        None => continue,
                    }
                    f.fix = retag_or_mirror(scope, image, &present, g);
                    out.push(f);
                }
            }
        }
    }
    out
}

/// Re-tag in this registry when the image is there, else it needs copying
/// from a registry that has it (issue 12's `mirror`), else a rebuild.
fn retag_or_mirror(scope: &Scope<'_>, image: Option<&String>, present: &[usize], g: usize) -> Fix {
    match image {
        Some(d) if present.contains(&g) => Fix::of(FixAction::Retag, Some(d.clone()), None),
        Some(d) => Fix::of(
            FixAction::NeedsMirror,
            Some(d.clone()),
            present.first().map(|o| scope.registries[*o].to_string()),
        ),
        None => Fix::of(FixAction::NeedsRebuild, None, None),
    }
}

/// "as its other tags here and in ghcr.io/openimsdk are" for a message.
fn where_else(
    scope: &Scope<'_>,
    store: &Store,
    rel: &super::expect::Expected,
    s: usize,
    digest: &str,
) -> String {
    let mut places = Vec::new();
    for g in 0..scope.registries.len() {
        let loc = scope.loc(s, g);
        let n = rel
            .tags
            .iter()
            .filter(|t| matches!(store.lookup(&loc, t), Some(Lookup::Found(d)) if d == digest))
            .count();
        if n > 0 {
            places.push(format!("{} of its tags in {}", n, scope.registries[g]));
        }
    }
    if places.is_empty() {
        "named by none of its tags".into()
    } else {
        places.join(", ")
    }
}

/// The lookups the deploy's references need: each tag, and each pinned
/// digest.
pub fn deploy_lookups(refs: &[super::deploy::Reference]) -> Vec<(Loc, String, bool)> {
    let mut out = Vec::new();
    for r in refs {
        let loc = (r.registry.host.clone(), r.registry.repository(&r.name));
        out.push((loc.clone(), r.tag.clone(), false));
        if let Some(d) = &r.digest {
            out.push((loc, d.clone(), false));
        }
    }
    out
}

/// Every finding of the deploy's references: the image exists (the pinned
/// digest, else the tag's), with every platform of its service, and a
/// pinned digest is what its tag names.
pub fn deploy_findings(
    refs: &[super::deploy::Reference],
    store: &Store,
    platforms_of: &dyn Fn(&str) -> Vec<Platform>,
    ancestry: Ancestry<'_>,
    counts: &mut Counts,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for r in refs {
        let loc = (r.registry.host.clone(), r.registry.repository(&r.name));
        let mut f = Finding {
            kind: Kind::DeployMissing,
            release: None,
            service: r.service.clone(),
            registry: Some(r.registry.to_string()),
            tag: Some(r.tag.clone()),
            platform: None,
            expected: r.digest.clone(),
            found: None,
            place: Some(format!("{}: {}", r.branch, r.place)),
            detail: String::new(),
            fix: Fix::of(FixAction::None, None, None),
            loc: None,
        };
        let tagged = match store.lookup(&loc, &r.tag) {
            Some(Lookup::Found(d)) => Some(d.clone()),
            Some(Lookup::Missing) => None,
            Some(Lookup::Failed(e)) => {
                f.kind = Kind::Unchecked;
                f.detail = format!("{}: {e}", r.image);
                out.push(f);
                continue;
            }
            None => continue,
        };
        let image = match (&r.digest, &tagged) {
            (Some(pinned), _) => match store.has(&loc, pinned) {
                Some(true) => {
                    if tagged.as_deref().is_some_and(|t| t != pinned) {
                        let mut g = f.clone();
                        g.kind = Kind::DeployDigest;
                        g.found = tagged.clone();
                        g.detail = format!(
                            "{} pins {}, but the tag {} now names {}",
                            r.image,
                            short(pinned),
                            r.tag,
                            short(tagged.as_deref().unwrap_or_default())
                        );
                        out.push(g);
                    }
                    pinned.clone()
                }
                _ => {
                    f.detail = format!(
                        "{} does not exist: the registry has no {}{}",
                        r.image,
                        short(pinned),
                        if tagged.is_some() {
                            ""
                        } else {
                            " and no such tag"
                        }
                    );
                    out.push(f);
                    continue;
                }
            },
            (None, Some(d)) => d.clone(),
            (None, None) => {
                f.detail = format!("{} does not exist", r.image);
                out.push(f);
                continue;
            }
        };
        counts.images += 1;
        for p in image_problems(
            store,
            &Image {
                service: &r.service,
                loc: &loc,
                digest: &image,
                platforms: &platforms_of(&r.service),
                commit: None,
                others: &[],
            },
            ancestry,
            counts,
        ) {
            let mut g = f.clone();
            g.found = Some(image.clone());
            match p {
                ImageProblem::Platform {
                    platform, detail, ..
                } => {
                    g.kind = Kind::DeployPlatform;
                    g.platform = Some(platform);
                    g.detail = format!("{}: {detail}", r.image);
                }
                ImageProblem::Revision { .. } => continue,
                ImageProblem::Unreadable(why) => {
                    g.kind = Kind::Unchecked;
                    g.detail = format!("{}: {why}", r.image);
                }
            }
            out.push(g);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::expect::{expectations, GitRelease};
    use super::super::store::{ConfigFacts, Entry};
    use super::*;
    use crate::config::TagsConfig;
    use crate::tag::version::classify;

    const C1: &str = "1111111111111111111111111111111111111111";
    const C2: &str = "2222222222222222222222222222222222222222";
    const C3: &str = "3333333333333333333333333333333333333333";

    struct World {
        expect: Expectations,
        services: Vec<(String, Vec<Platform>)>,
        registries: Vec<RegistryPrefix>,
        store: Store,
    }

    fn plat(p: &str) -> Platform {
        Platform::parse(p).unwrap()
    }

    impl World {
        /// v3.8.0 (C1) and v3.8.1 (C2), one service for two platforms,
        /// two registries, everything pushed as `release` would.
        fn clean() -> World {
            let releases = [("v3.8.0", C1, 1), ("v3.8.1", C2, 2)].map(|(n, c, t)| GitRelease {
                name: n.into(),
                kind: classify(n, "v").unwrap(),
                commit: c.into(),
                time: t,
            });
            let expect = expectations(&releases, &TagsConfig::default(), "v").unwrap();
            let mut w = World {
                expect,
                services: vec![(
                    "openim-api".into(),
                    vec![plat("linux/amd64"), plat("linux/arm64")],
                )],
                registries: vec![
                    RegistryPrefix::parse("ghcr.io/openimsdk").unwrap(),
                    RegistryPrefix::parse("docker.io/openim").unwrap(),
                ],
                store: Store::default(),
            };
            for (i, commit) in [(0, C1), (1, C2)] {
                let index = w.image(&format!("{i}"), commit);
                let mut tags = w.expect.releases[i].tags.clone();
                tags.extend(w.expect.aliases_of(i).iter().map(|a| a.to_string()));
                for g in 0..2 {
                    for t in &tags {
                        w.tag(g, t, &index);
                    }
                }
            }
            w
        }

        fn loc(&self, g: usize) -> Loc {
            let r = &self.registries[g];
            (r.host.clone(), r.repository("openim-api"))
        }

        /// An index of two platform images built from `commit`, present in
        /// both registries.
        fn image(&mut self, name: &str, commit: &str) -> String {
            let mut entries = Vec::new();
            for p in ["linux/amd64", "linux/arm64"] {
                let (m, c) = (
                    format!("sha256:m-{name}-{p}"),
                    format!("sha256:c-{name}-{p}"),
                );
                self.store
                    .manifests
                    .insert(m.clone(), Parsed::Image { config: c.clone() });
                let mut labels = BTreeMap::new();
                labels.insert(REVISION.to_string(), commit.to_string());
                self.store.configs.insert(
                    c,
                    Ok(ConfigFacts {
                        platform: Some(plat(p)),
                        labels,
                    }),
                );
                for g in 0..2 {
                    let loc = self.loc(g);
                    self.store
                        .refs
                        .insert((loc, m.clone()), Lookup::Found(m.clone()));
                }
                entries.push(Entry {
                    platform: Some(plat(p)),
                    digest: m,
                });
            }
            let d = format!("sha256:index-{name}");
            self.store
                .manifests
                .insert(d.clone(), Parsed::Index(entries));
            d
        }

        fn tag(&mut self, g: usize, tag: &str, digest: &str) {
            let loc = self.loc(g);
            self.store
                .refs
                .insert((loc.clone(), tag.into()), Lookup::Found(digest.into()));
            self.store
                .refs
                .insert((loc, digest.into()), Lookup::Found(digest.into()));
        }

        fn run(&self) -> Vec<Finding> {
            let selected: Vec<usize> = (0..self.expect.releases.len()).collect();
            let scope = Scope {
                expect: &self.expect,
                selected: &selected,
                services: &self.services,
                registries: &self.registries,
            };
            // Between C1 and C2 nothing openim-api's build reads changed;
            // C3 changed its sources.
            let ancestry = |r: &str, c: &str, _: &str| match (r, c) {
                (a, b) if a == b => Verdict::Same,
                (C1, C2) => Verdict::Equivalent,
                (C3, _) => Verdict::Differs(vec!["cmd/openim-api/main.go".into()]),
                _ => Verdict::Unknown,
            };
            let canon = canonical(&scope, &self.store, &ancestry);
            findings(
                &scope,
                &self.store,
                &canon,
                &ancestry,
                &mut Counts::default(),
            )
        }
    }

    fn kinds(f: &[Finding]) -> Vec<(Kind, Option<&str>, Option<&str>, FixAction)> {
        f.iter()
            .map(|f| {
                (
                    f.kind,
                    f.registry.as_deref(),
                    f.tag.as_deref(),
                    f.fix.action,
                )
            })
            .collect()
    }

    #[test]
    fn a_clean_release_has_no_findings() {
        assert!(World::clean().run().is_empty());
    }

    #[test]
    fn an_image_reused_from_an_earlier_commit_is_no_drift() {
        let mut w = World::clean();
        // v3.8.1 is v3.8.0's image: its inputs had not changed.
        let v0 = w.expect.releases[0].clone();
        let index = match w.store.lookup(&w.loc(0), &v0.tags[0]) {
            Some(Lookup::Found(d)) => d.clone(),
            _ => unreachable!(),
        };
        for g in 0..2 {
            for t in ["release-v3.8.1", "v3.8.1", "3.8.1", "3.8", "3", "latest"] {
                w.tag(g, t, &index);
            }
        }
        assert!(w.run().is_empty(), "{:#?}", w.run());
    }

    #[test]
    fn a_deleted_tag_is_retagged_from_the_image_in_the_same_registry() {
        let mut w = World::clean();
        let loc = w.loc(1);
        w.store.refs.insert((loc, "3.8.1".into()), Lookup::Missing);
        let f = w.run();
        assert_eq!(
            kinds(&f),
            [(
                Kind::MissingTag,
                Some("docker.io/openim"),
                Some("3.8.1"),
                FixAction::Retag
            )]
        );
        assert_eq!(f[0].fix.digest.as_deref(), Some("sha256:index-1"));
    }

    #[test]
    fn an_image_only_another_registry_has_needs_a_mirror() {
        let mut w = World::clean();
        let loc = w.loc(1);
        for t in [
            "release-v3.8.1",
            "v3.8.1",
            "3.8.1",
            "3.8",
            "3",
            "latest",
            "sha256:index-1",
        ] {
            w.store
                .refs
                .insert((loc.clone(), t.into()), Lookup::Missing);
        }
        let f = w.run();
        assert_eq!(f.len(), 6, "{f:#?}");
        assert!(f.iter().all(|f| f.fix.action == FixAction::NeedsMirror
            && f.fix.from.as_deref() == Some("ghcr.io/openimsdk")));
    }

    #[test]
    fn diverging_digests_between_registries() {
        let mut w = World::clean();
        let other = w.image("other", C2);
        w.tag(1, "v3.8.1", &other);
        let f = w.run();
        assert_eq!(
            kinds(&f),
            [(
                Kind::DigestMismatch,
                Some("docker.io/openim"),
                Some("v3.8.1"),
                FixAction::Review
            )]
        );
        assert!(
            f[0].detail
                .contains("3 of its tags in ghcr.io/openimsdk, 2 of its tags in docker.io/openim"),
            "{}",
            f[0].detail
        );
    }

    #[test]
    fn a_missing_platform_in_the_index_or_in_the_registry() {
        let mut w = World::clean();
        // ghcr.io lost the arm64 manifest of v3.8.0's image.
        let loc = w.loc(0);
        w.store
            .refs
            .insert((loc, "sha256:m-0-linux/arm64".into()), Lookup::Missing);
        let f = w.run();
        assert_eq!(
            kinds(&f),
            [(
                Kind::MissingPlatform,
                Some("ghcr.io/openimsdk"),
                None,
                FixAction::NeedsMirror
            )]
        );
        assert_eq!(f[0].platform.as_deref(), Some("linux/arm64"));
        assert_eq!(f[0].fix.from.as_deref(), Some("docker.io/openim"));

        // An amd64-only index under all of v3.8.1's tags, in both registries.
        let mut w = World::clean();
        w.store.manifests.insert(
            "sha256:index-1".into(),
            Parsed::Index(vec![Entry {
                platform: Some(plat("linux/amd64")),
                digest: "sha256:m-1-linux/amd64".into(),
            }]),
        );
        let f = w.run();
        assert_eq!(f.len(), 2, "{f:#?}");
        assert!(f.iter().all(|f| f.kind == Kind::MissingPlatform
            && f.fix.action == FixAction::NeedsRebuild
            && f.detail
                .contains("the index has no linux/arm64 (it lists linux/amd64)")));
    }

    #[test]
    fn latest_on_an_older_release() {
        let mut w = World::clean();
        w.tag(0, "latest", "sha256:index-0");
        let f = w.run();
        assert_eq!(
            kinds(&f),
            [(
                Kind::Alias,
                Some("ghcr.io/openimsdk"),
                Some("latest"),
                FixAction::Retag
            )]
        );
        assert!(f[0].detail.contains("v3.8.0's image"), "{}", f[0].detail);
    }

    #[test]
    fn a_wrong_revision_label() {
        let mut w = World::clean();
        // v3.8.0's image says it was built from C3, where openim-api's
        // sources differ.
        let rebuilt = w.image("rebuilt", C3);
        for g in 0..2 {
            for t in ["release-v3.8.0", "v3.8.0", "3.8.0"] {
                w.tag(g, t, &rebuilt);
            }
        }
        let f = w.run();
        assert_eq!(
            kinds(&f),
            [
                (
                    Kind::Revision,
                    Some("ghcr.io/openimsdk"),
                    None,
                    FixAction::NeedsRebuild
                ),
                (
                    Kind::Revision,
                    Some("docker.io/openim"),
                    None,
                    FixAction::NeedsRebuild
                ),
            ]
        );
        assert_eq!(f[0].found.as_deref(), Some(C3));
        assert!(
            f[0].detail.ends_with(
                "was built from 3333333, not from the release's commit 1111111: cmd/openim-api/main.go differs"
            ),
            "{}",
            f[0].detail
        );
        assert_eq!(f[0].platform, None, "both platforms: said once");
        // A commit the repository does not know.
        let mut w = World::clean();
        let stranger = w.image("stranger", &"4".repeat(40));
        for g in 0..2 {
            w.tag(g, "v3.8.0", &stranger);
        }
        let f = w.run();
        assert!(
            f.iter().any(|f| f.kind == Kind::Revision
                && f.detail.contains("not a commit of this repository")),
            "{f:#?}"
        );
    }
}

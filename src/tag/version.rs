//! Version tags: which git tags take part in version math, and how they order.
//!
//! Pure logic, no I/O. A git tag takes part when it is the configured prefix
//! (`v` by default) followed by a semantic version. Everything else
//! (`nightly`, chart tags such as `openim-api-0.1.13`, `v3.8`) is ignored.
//!
//! Ordering decisions (documented in docs/tag.md):
//! - `vX.Y.Z` is a **stable** release.
//! - `vX.Y.Z-rc.N` is release candidate N of X.Y.Z; it orders before X.Y.Z
//!   (semver) and is the only pre-release kind that drives rc numbering.
//! - `vX.Y.Z-patch.N` is OpenIM's post-release hotfix of X.Y.Z. Unlike plain
//!   semver it orders **after** `vX.Y.Z` and before `vX.Y.(Z+1)`; it counts as
//!   "X.Y.Z is released" for the rc and release rules.
//! - any other pre-release (`-alpha.N`, `-beta.N`, `-rc1`, …) orders by
//!   semver (rc tags included: `-rc.0` < `-rc1` < `-z`) but is ignored by
//!   version math, and so is any tag with build metadata.

use semver::{BuildMetadata, Prerelease, Version};
use std::cmp::Ordering;
use std::collections::HashSet;

/// What a git tag means for version math.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagKind {
    Stable(Version),
    Rc {
        version: Version,
        n: u64,
    },
    Patch {
        version: Version,
        n: u64,
    },
    /// A pre-release of another kind: known, but ignored by the rules.
    OtherPre(Version),
}

impl TagKind {
    /// The release (X.Y.Z, no pre-release) this tag belongs to; for another
    /// kind of pre-release, the version as written (`3.9.0-alpha.1`).
    pub fn base(&self) -> &Version {
        match self {
            TagKind::Stable(v) | TagKind::OtherPre(v) => v,
            TagKind::Rc { version, .. } | TagKind::Patch { version, .. } => version,
        }
    }

    /// Whether this tag says that its base version has been released.
    pub fn is_released(&self) -> bool {
        matches!(self, TagKind::Stable(_) | TagKind::Patch { .. })
    }

    /// The semver version this tag orders as, and the patch number of an
    /// OpenIM patch tag (which orders right after its release).
    fn order_key(&self) -> (Version, Option<u64>) {
        match self {
            TagKind::Stable(v) | TagKind::OtherPre(v) => (v.clone(), None),
            TagKind::Rc { version, n } => {
                let mut v = version.clone();
                v.pre = Prerelease::new(&format!("rc.{n}")).expect("rc.N is a pre-release");
                (v, None)
            }
            TagKind::Patch { version, n } => (version.clone(), Some(*n)),
        }
    }
}

/// Total order of the tags we understand, as documented in the module header:
/// semver, except that `X.Y.Z-patch.N` follows `X.Y.Z` (by N) and precedes
/// everything semver puts after `X.Y.Z`.
pub fn compare(a: &TagKind, b: &TagKind) -> Ordering {
    a.order_key().cmp(&b.order_key())
}

/// Classify a git tag name. `prefix` is the version tag prefix (`v`).
pub fn classify(tag: &str, prefix: &str) -> Option<TagKind> {
    let rest = tag.strip_prefix(prefix)?;
    // Cheap rejection before the semver parser: most non-version tags fail here.
    if !rest.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let parsed = Version::parse(rest).ok()?;
    if !parsed.build.is_empty() {
        return None;
    }
    let base = Version::new(parsed.major, parsed.minor, parsed.patch);
    if parsed.pre.is_empty() {
        return Some(TagKind::Stable(base));
    }
    let pre = parsed.pre.as_str();
    if let Some(n) = numbered(pre, "rc.") {
        return Some(TagKind::Rc { version: base, n });
    }
    if let Some(n) = numbered(pre, "patch.") {
        return Some(TagKind::Patch { version: base, n });
    }
    Some(TagKind::OtherPre(parsed))
}

fn numbered(pre: &str, kind: &str) -> Option<u64> {
    let digits = pre.strip_prefix(kind)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The place of a tag such as `v3.8.1-rc.3` or `3.8.1-rc.3` in the order
/// of [`compare`], with the usual prefixes (`v`, none).
pub fn order_of(tag: &str) -> Option<TagKind> {
    classify(tag, "v").or_else(|| classify(tag, ""))
}

/// Parse a user-supplied version (`--version`): `X.Y.Z`, with an optional
/// leading `v`. Pre-release and build parts are refused: the stage decides them.
pub fn parse_user_version(text: &str) -> Result<Version, String> {
    let trimmed = text.strip_prefix('v').unwrap_or(text);
    let v = Version::parse(trimmed).map_err(|e| {
        format!("`{text}` is not a version ({e}); expected X.Y.Z, for example 3.8.1")
    })?;
    if v.pre != Prerelease::EMPTY || v.build != BuildMetadata::EMPTY {
        return Err(format!(
            "`{text}` carries a pre-release or build part; give the plain X.Y.Z \
             (the stage adds -rc.N itself)"
        ));
    }
    Ok(v)
}

/// Tags that look like releases but are in a form the rules do not read
/// (`v3.8`, `v3.7.0-v1.7.0` — openim-docker's server-and-chat tags —,
/// `v3.8.3.1`, `v3.9.0-1`, `server/v1.3.0` unless the prefix has a path)
/// whose version is `floor` or above: a version
/// computed as `floor` from the tags the rules read would go backwards.
/// Pre-releases named by a word (`-alpha.1`, `-beta.2`, `-bate.4`, `-rc0`)
/// are pre-releases, not listed. Highest first.
pub fn unread_releases_from<'a>(
    names: impl IntoIterator<Item = &'a str>,
    prefix: &str,
    floor: &Version,
) -> Vec<(&'a str, Version)> {
    let mut found: Vec<(&str, Version)> = names
        .into_iter()
        .filter_map(|name| {
            let version = release_shaped(name, prefix)?;
            (version >= *floor).then_some((name, version))
        })
        .collect();
    found.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    found
}

/// The X.Y.Z of a tag shaped like a release the rules do not read.
fn release_shaped(name: &str, prefix: &str) -> Option<Version> {
    if let Some(kind) = classify(name, prefix) {
        // Read ones are no concern; another pre-release only when its first
        // identifier is a version or a number rather than a word.
        let TagKind::OtherPre(v) = kind else {
            return None;
        };
        let first = v.pre.as_str().split('.').next().unwrap_or_default();
        let versionish = first.bytes().all(|b| b.is_ascii_digit())
            || (first.starts_with(['v', 'V']) && first[1..].bytes().all(|b| b.is_ascii_digit()));
        return versionish.then(|| Version::new(v.major, v.minor, v.patch));
    }
    // `server/v1.3.0`: a release of a path-prefixed convention, unread
    // unless the prefix is one (then the other paths are other components).
    if let Some((_, last)) = name.rsplit_once('/') {
        if prefix.contains('/') {
            return None;
        }
        return ["v", ""]
            .into_iter()
            .find_map(|p| match classify(last, p)? {
                TagKind::Stable(v) | TagKind::Patch { version: v, .. } => Some(v),
                _ => None,
            });
    }
    let rest = name.strip_prefix(prefix)?;
    let mut parts = rest.splitn(4, '.');
    let num = |p: Option<&str>| -> Option<u64> {
        let p = p?;
        (!p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    let major = num(parts.next())?;
    let minor = num(parts.next())?;
    match (parts.next(), parts.next()) {
        // `v3.8`
        (None, None) => Some(Version::new(major, minor, 0)),
        // `v3.8.3.1`
        (Some(patch), Some(fourth)) if num(Some(fourth)).is_some() => {
            Some(Version::new(major, minor, num(Some(patch))?))
        }
        _ => None,
    }
}

/// Which part of a version to bump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Bump {
    Major,
    Minor,
    Patch,
}

pub fn bump(v: &Version, part: Bump) -> Version {
    match part {
        Bump::Major => Version::new(v.major + 1, 0, 0),
        Bump::Minor => Version::new(v.major, v.minor + 1, 0),
        Bump::Patch => Version::new(v.major, v.minor, v.patch + 1),
    }
}

/// The version tags of a repository, classified once.
#[derive(Debug, Default)]
pub struct VersionTags {
    tags: Vec<(String, TagKind)>,
    released: HashSet<Version>,
}

impl VersionTags {
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>, prefix: &str) -> Self {
        let tags: Vec<(String, TagKind)> = names
            .into_iter()
            .filter_map(|name| classify(name, prefix).map(|k| (name.to_string(), k)))
            .collect();
        let released = tags
            .iter()
            .filter(|(_, k)| k.is_released())
            .map(|(_, k)| k.base().clone())
            .collect();
        VersionTags { tags, released }
    }

    pub fn iter(&self) -> impl Iterator<Item = &(String, TagKind)> {
        self.tags.iter()
    }

    /// The highest released version (stable or OpenIM patch tag), optionally
    /// restricted to a filter on the version.
    pub fn highest_released(&self, filter: impl Fn(&Version) -> bool) -> Option<&Version> {
        self.tags
            .iter()
            .map(|(_, k)| k)
            .filter(|k| k.is_released() && filter(k.base()))
            .map(|k| k.base())
            .max()
    }

    pub fn is_released(&self, v: &Version) -> bool {
        self.released.contains(v)
    }

    /// A tag that shows `v` released: its stable tag, else its first patch tag.
    pub fn release_tag(&self, v: &Version) -> Option<&str> {
        let of = |want_stable: bool| {
            self.tags.iter().find(|(_, k)| {
                k.base() == v && k.is_released() && matches!(k, TagKind::Stable(_)) == want_stable
            })
        };
        of(true)
            .or_else(|| of(false))
            .map(|(name, _)| name.as_str())
    }

    /// Highest rc number of `v`, if any rc of it exists.
    pub fn highest_rc(&self, v: &Version) -> Option<u64> {
        self.tags
            .iter()
            .filter_map(|(_, k)| match k {
                TagKind::Rc { version, n } if version == v => Some(*n),
                _ => None,
            })
            .max()
    }

    /// Highest patch number of `v` (`vX.Y.Z-patch.N`), if any patch of it exists.
    pub fn highest_patch(&self, v: &Version) -> Option<u64> {
        self.tags
            .iter()
            .filter_map(|(_, k)| match k {
                TagKind::Patch { version, n } if version == v => Some(*n),
                _ => None,
            })
            .max()
    }

    /// The rc tags `(name, version, n)` of versions that are not released yet.
    pub fn unreleased_rc_tags(&self) -> impl Iterator<Item = (&str, &Version, u64)> {
        self.tags.iter().filter_map(|(name, k)| match k {
            TagKind::Rc { version, n } if !self.is_released(version) => {
                Some((name.as_str(), version, *n))
            }
            _ => None,
        })
    }

    /// The stable tags (name, version): `vX.Y.Z` without a pre-release.
    pub fn stable_tags(&self) -> impl Iterator<Item = (&str, &Version)> {
        self.tags.iter().filter_map(|(name, k)| match k {
            TagKind::Stable(v) => Some((name.as_str(), v)),
            _ => None,
        })
    }

    /// Versions that have an rc but no release yet, highest first, filtered.
    pub fn unreleased_rc_versions(&self, filter: impl Fn(&Version) -> bool) -> Vec<&Version> {
        let mut out: Vec<&Version> = self
            .tags
            .iter()
            .filter_map(|(_, k)| match k {
                TagKind::Rc { version, .. } if filter(version) && !self.is_released(version) => {
                    Some(version)
                }
                _ => None,
            })
            .collect();
        out.sort_by(|a, b| b.cmp(a));
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unread_release_shapes_from_a_version() {
        // openim-docker's tags: v3.5.0 is the highest it reads.
        let tags = [
            "v3.5.0",
            "v3.3.0-beta.2",
            "v3.6.0-v1.6.0",
            "v3.6.1-beta.0-v1.6.1-beta.0",
            "v3.7.0-v1.7.0",
            "v3.8",
            "v2.04",
            "v3.9.0-alpha.1",
            "v3.3.3-bate.4",
            "v2.3.0-rc0",
            "v3.8.3.1",
            "v3.9.0-1",
            "openim-api-0.1.13",
            "nightly",
            "v3.x",
        ];
        let found: Vec<&str> = unread_releases_from(tags, "v", &Version::new(3, 5, 1))
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            found,
            [
                "v3.9.0-1",
                "v3.8.3.1",
                "v3.8",
                "v3.7.0-v1.7.0",
                "v3.6.0-v1.6.0"
            ]
        );
        // `v3.8` is 3.8.0: computing 3.8.0 goes back to it too.
        assert_eq!(
            unread_releases_from(["v3.8"], "v", &Version::new(3, 8, 0)).len(),
            1
        );
        // open-im-server's odd ones are all below its 3.8.4.
        let odd = ["v2.04", "v3.3.3-bate.4", "v2.3.0-rc0"];
        assert!(unread_releases_from(odd, "v", &Version::new(3, 8, 4)).is_empty());
        // Without a prefix.
        assert_eq!(
            unread_releases_from(["3.1", "v9.9"], "", &Version::new(1, 0, 0)).len(),
            1
        );
    }

    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn classifies_openim_tags() {
        assert_eq!(classify("v3.8.3", "v"), Some(TagKind::Stable(v("3.8.3"))));
        assert_eq!(
            classify("v3.8.3-rc.2", "v"),
            Some(TagKind::Rc {
                version: v("3.8.3"),
                n: 2
            })
        );
        assert_eq!(
            classify("v3.8.3-patch.16", "v"),
            Some(TagKind::Patch {
                version: v("3.8.3"),
                n: 16
            })
        );
        assert_eq!(
            classify("v3.8.0-alpha.1", "v"),
            Some(TagKind::OtherPre(v("3.8.0-alpha.1")))
        );
        // rc without the dot is not ours.
        assert_eq!(
            classify("v3.8.0-rc1", "v"),
            Some(TagKind::OtherPre(v("3.8.0-rc1")))
        );
        for ignored in [
            "nightly",
            "openim-api-0.1.13",
            "v3.8",
            "3.8.3",
            "v3.8.3+meta",
            "vx",
        ] {
            assert_eq!(classify(ignored, "v"), None, "{ignored}");
        }
        assert_eq!(classify("3.8.3", ""), Some(TagKind::Stable(v("3.8.3"))));
    }

    #[test]
    fn patch_tags_order_after_their_release_and_before_the_next() {
        let mut tags: Vec<TagKind> = [
            "v3.8.4-rc.0",
            "v3.8.3-patch.10",
            "v3.8.3",
            "v3.8.3-patch.2",
            "v3.8.3-rc.1",
            "v3.8.3-alpha.3",
            "v3.8.4",
        ]
        .iter()
        .map(|t| classify(t, "v").unwrap())
        .collect();
        tags.sort_by(compare);
        let names: Vec<String> = tags
            .iter()
            .map(|k| match k {
                TagKind::Stable(v) => format!("{v}"),
                TagKind::Rc { version, n } => format!("{version}-rc.{n}"),
                TagKind::Patch { version, n } => format!("{version}-patch.{n}"),
                TagKind::OtherPre(v) => format!("{v}"),
            })
            .collect();
        assert_eq!(
            names,
            [
                "3.8.3-alpha.3",
                "3.8.3-rc.1",
                "3.8.3",
                "3.8.3-patch.2",
                "3.8.3-patch.10",
                "3.8.4-rc.0",
                "3.8.4"
            ]
        );
    }

    /// Regression (property test `compare_is_semver_…`): other
    /// pre-releases used to order before every rc tag, against semver
    /// (`-rc.0` < `-rc1`, `-rc.1` < `-z`).
    #[test]
    fn rc_tags_order_among_other_pre_releases_by_semver() {
        let k = |t: &str| classify(t, "v").unwrap();
        for (lower, higher) in [
            ("v3.8.3-rc.0", "v3.8.3-rc1"),
            ("v3.8.3-rc.1", "v3.8.3-z"),
            ("v3.8.3-rc.1", "v3.8.3-rc.1.2"),
            ("v3.8.3-rc.1.2", "v3.8.3-rc.2"),
            ("v3.8.3-rc.99", "v3.8.3-rc.18446744073709551616"),
            ("v3.8.3-beta.9", "v3.8.3-rc.0"),
        ] {
            assert_eq!(
                compare(&k(lower), &k(higher)),
                Ordering::Less,
                "{lower} < {higher}"
            );
            assert_eq!(compare(&k(higher), &k(lower)), Ordering::Greater);
        }
    }

    #[test]
    fn highest_released_counts_patch_tags_and_skips_prereleases() {
        let t = VersionTags::from_names(
            [
                "v3.8.2",
                "v3.8.3-patch.4",
                "v3.9.0-rc.0",
                "v4.0.0-alpha.1",
                "nightly",
            ],
            "v",
        );
        assert_eq!(t.highest_released(|_| true), Some(&v("3.8.3")));
        assert_eq!(t.highest_rc(&v("3.9.0")), Some(0));
        assert_eq!(t.highest_rc(&v("3.8.3")), None);
        assert_eq!(t.unreleased_rc_versions(|_| true), vec![&v("3.9.0")]);
    }

    #[test]
    fn user_versions() {
        assert_eq!(parse_user_version("3.8.1").unwrap(), v("3.8.1"));
        assert_eq!(parse_user_version("v3.8.1").unwrap(), v("3.8.1"));
        assert!(parse_user_version("3.8").unwrap_err().contains("X.Y.Z"));
        assert!(parse_user_version("3.8.1-rc.1")
            .unwrap_err()
            .contains("pre-release"));
    }

    #[test]
    fn bumps() {
        assert_eq!(bump(&v("3.8.3"), Bump::Patch), v("3.8.4"));
        assert_eq!(bump(&v("3.8.3"), Bump::Minor), v("3.9.0"));
        assert_eq!(bump(&v("3.8.3"), Bump::Major), v("4.0.0"));
    }
}

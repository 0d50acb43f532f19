//! What the registries should hold, from git alone: every release (a
//! `vX.Y.Z` or `vX.Y.Z-patch.N` git tag), the image tags it pushed and the
//! aliases it moved, computed by the very rules `tag` and `release` use
//! (`tag::stage::plan` with the configured templates), replayed in the
//! order the releases were made. Pure logic.

use crate::config::TagsConfig;
use crate::tag::stage::{self, Facts, PlanError, Request, Stage};
use crate::tag::version::{compare, TagKind};
use chrono::NaiveDate;
use std::collections::BTreeMap;

/// A release as git knows it.
#[derive(Debug, Clone)]
pub struct GitRelease {
    /// The git tag (`v3.8.1`, `v3.8.3-patch.2`).
    pub name: String,
    pub kind: TagKind,
    /// The commit it points at.
    pub commit: String,
    /// When it was made (seconds since the epoch): the tagger's time, else
    /// the commit's.
    pub time: i64,
}

/// What one release should have pushed.
#[derive(Debug, Clone)]
pub struct Expected {
    pub name: String,
    /// `3.8.1`, `3.8.3-patch.2`.
    pub version: String,
    pub commit: String,
    /// Its own image tags, primary first (`release-v3.8.1`, `v3.8.1`,
    /// `3.8.1`): they never move.
    pub tags: Vec<String>,
    /// The aliases it moved when it was made (`3.8`, `3`, `latest`), as
    /// `tags.release.alias_policy` allowed then.
    pub aliases: Vec<String>,
}

/// Every release, in version order, and which release each alias should
/// point at now: the last one (in the order the releases were made) that
/// moved it.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    pub releases: Vec<Expected>,
    /// alias → index in `releases`.
    pub alias_owner: BTreeMap<String, usize>,
}

impl Expectations {
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.releases.iter().position(|r| r.name == name)
    }

    /// The aliases that should point at release `i`.
    pub fn aliases_of(&self, i: usize) -> Vec<&str> {
        self.alias_owner
            .iter()
            .filter(|(_, owner)| **owner == i)
            .map(|(a, _)| a.as_str())
            .collect()
    }
}

/// Whether a git tag is a release the audit checks (stable or patch).
pub fn is_release(kind: &TagKind) -> bool {
    matches!(kind, TagKind::Stable(_) | TagKind::Patch { .. })
}

/// The expectations of `releases` (each with its `prefix`) under `cfg`.
pub fn expectations(
    releases: &[GitRelease],
    cfg: &TagsConfig,
    prefix: &str,
) -> Result<Expectations, PlanError> {
    let resolved = TagsConfig {
        prefix: Some(prefix.to_string()),
        ..cfg.clone()
    };
    // The order the releases were made in: by time, and by version within
    // one second (tags made by one script).
    let mut made: Vec<&GitRelease> = releases.iter().filter(|r| is_release(&r.kind)).collect();
    made.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| compare(&a.kind, &b.kind)));
    let mut replayed: Vec<(String, Expected, i64)> = Vec::new();
    let mut owner_by_name: BTreeMap<String, String> = BTreeMap::new();
    for (i, r) in made.iter().enumerate() {
        let known: Vec<String> = made[..=i].iter().map(|x| x.name.clone()).collect();
        let facts = Facts {
            head_sha: r.commit.clone(),
            branch: None,
            tags: known,
            head_tags: vec![r.name.clone()],
            ..Facts::default()
        };
        let (stage, version) = match &r.kind {
            TagKind::Stable(v) => (Stage::Release, v.clone()),
            TagKind::Patch { version, .. } => (Stage::Patch, version.clone()),
            _ => continue,
        };
        let date = chrono::DateTime::from_timestamp(r.time, 0)
            .map(|t| t.date_naive())
            .unwrap_or(NaiveDate::MIN);
        let request = |aliases: bool| Request {
            stage,
            version: Some(version.clone()),
            bump: None,
            date,
            aliases,
            existing: stage == Stage::Patch,
        };
        let own = stage::plan(&facts, &request(false), &resolved)?.tags;
        let all = stage::plan(&facts, &request(true), &resolved)?.tags;
        let aliases: Vec<String> = all.into_iter().filter(|t| !own.contains(t)).collect();
        for a in &aliases {
            owner_by_name.insert(a.clone(), r.name.clone());
        }
        let shown = r.name.strip_prefix(prefix).unwrap_or(&r.name).to_string();
        replayed.push((
            r.name.clone(),
            Expected {
                name: r.name.clone(),
                version: shown,
                commit: r.commit.clone(),
                tags: own,
                aliases,
            },
            r.time,
        ));
    }
    // Version order for the report.
    let kinds: BTreeMap<&str, &TagKind> = made.iter().map(|r| (r.name.as_str(), &r.kind)).collect();
    replayed.sort_by(|a, b| compare(kinds[a.0.as_str()], kinds[b.0.as_str()]));
    let releases: Vec<Expected> = replayed.into_iter().map(|(_, e, _)| e).collect();
    let alias_owner = owner_by_name
        .into_iter()
        .filter_map(|(alias, name)| Some((alias, releases.iter().position(|r| r.name == name)?)))
        .collect();
    Ok(Expectations {
        releases,
        alias_owner,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AliasPolicy;
    use crate::tag::version::classify;

    fn rel(name: &str, time: i64) -> GitRelease {
        GitRelease {
            name: name.to_string(),
            kind: classify(name, "v").unwrap(),
            commit: format!("{:0>40}", time),
            time,
        }
    }

    fn owner<'a>(e: &'a Expectations, alias: &str) -> &'a str {
        &e.releases[e.alias_owner[alias]].name
    }

    #[test]
    fn tags_come_from_the_templates_and_aliases_follow_the_highest() {
        let releases = [rel("v3.8.0", 1), rel("v3.8.1", 2), rel("v3.9.0", 3)];
        let e = expectations(&releases, &TagsConfig::default(), "v").unwrap();
        let names: Vec<&str> = e.releases.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["v3.8.0", "v3.8.1", "v3.9.0"]);
        assert_eq!(e.releases[1].tags, ["release-v3.8.1", "v3.8.1", "3.8.1"]);
        assert_eq!(e.releases[1].version, "3.8.1");
        assert_eq!(owner(&e, "latest"), "v3.9.0");
        assert_eq!(owner(&e, "3"), "v3.9.0");
        assert_eq!(owner(&e, "3.9"), "v3.9.0");
        assert_eq!(owner(&e, "3.8"), "v3.8.1");
        assert_eq!(e.aliases_of(2), ["3", "3.9", "latest"]);
    }

    #[test]
    fn a_hotfix_of_an_older_line_made_later_moves_its_line_only_per_line() {
        // 3.8.2 was released after 3.9.0.
        let releases = [rel("v3.8.1", 1), rel("v3.9.0", 2), rel("v3.8.2", 3)];
        let highest = expectations(&releases, &TagsConfig::default(), "v").unwrap();
        assert_eq!(owner(&highest, "3.8"), "v3.8.1");
        assert_eq!(owner(&highest, "latest"), "v3.9.0");
        assert!(
            highest.releases[1].aliases.is_empty(),
            "{:?}",
            highest.releases[1]
        );
        let mut cfg = TagsConfig::default();
        cfg.release.alias_policy = AliasPolicy::PerLine;
        let per_line = expectations(&releases, &cfg, "v").unwrap();
        assert_eq!(owner(&per_line, "3.8"), "v3.8.2");
        assert_eq!(owner(&per_line, "3"), "v3.9.0");
        assert_eq!(owner(&per_line, "latest"), "v3.9.0");
    }

    #[test]
    fn patches_take_the_aliases_of_their_release() {
        let releases = [
            rel("v3.8.3", 1),
            rel("v3.8.3-patch.1", 2),
            rel("v3.8.3-patch.2", 3),
        ];
        let e = expectations(&releases, &TagsConfig::default(), "v").unwrap();
        let names: Vec<&str> = e.releases.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["v3.8.3", "v3.8.3-patch.1", "v3.8.3-patch.2"]);
        assert_eq!(e.releases[2].tags, ["v3.8.3-patch.2", "3.8.3-patch.2"]);
        assert_eq!(owner(&e, "latest"), "v3.8.3-patch.2");
        assert_eq!(e.releases[0].tags, ["release-v3.8.3", "v3.8.3", "3.8.3"]);
    }

    #[test]
    fn releases_made_in_one_second_order_by_version() {
        let releases = [rel("v3.9.0", 5), rel("v3.8.0", 5)];
        let e = expectations(&releases, &TagsConfig::default(), "v").unwrap();
        assert_eq!(owner(&e, "latest"), "v3.9.0");
        assert_eq!(owner(&e, "3.8"), "v3.8.0");
    }

    #[test]
    fn custom_templates_are_followed() {
        let mut cfg = TagsConfig::default();
        cfg.release.tags = vec!["v{version}".into()];
        cfg.release.aliases = vec!["stable".into()];
        let releases = [rel("v1.0.0", 1), rel("v1.1.0", 2)];
        let e = expectations(&releases, &cfg, "v").unwrap();
        assert_eq!(e.releases[0].tags, ["v1.0.0"]);
        assert_eq!(owner(&e, "stable"), "v1.1.0");
        assert_eq!(e.alias_owner.len(), 1);
    }
}

//! Reading history for release notes: the commits between two releases
//! (first parent, merges with the commits they brought in) and the paths
//! each one changed.

use super::Repo;
use anyhow::{Context, Result};
use git2::{Oid, Sort};

/// One commit between two releases, as the notes read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryCommit {
    pub sha: String,
    pub message: String,
    pub author_name: String,
    pub author_email: String,
    /// Seconds since the epoch (author time).
    pub time: i64,
    /// How many parents it has (2 or more: a merge).
    pub parents: usize,
    /// The paths it changed against its first parent (both sides of a
    /// rename), `/`-separated, sorted.
    pub files: Vec<String>,
    /// A merge: the commits it brought in (reachable from its other parents,
    /// neither from its first parent nor from the previous release), newest
    /// first.
    pub merged: Vec<HistoryCommit>,
}

impl Repo {
    /// The commit a revision names (a tag, a branch, a sha, `HEAD`).
    pub fn resolve_commit(&self, rev: &str) -> Result<String> {
        let object = self
            .repo
            .revparse_single(rev)
            .with_context(|| format!("`{rev}` names no commit of this repository"))?;
        let commit = object
            .peel_to_commit()
            .with_context(|| format!("`{rev}` is not a commit"))?;
        Ok(commit.id().to_string())
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors.
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool> {
        let a = Oid::from_str(ancestor).context("parsing a commit sha")?;
        let d = Oid::from_str(descendant).context("parsing a commit sha")?;
        Ok(a == d || self.repo.graph_descendant_of(d, a).unwrap_or(false))
    }

    /// The first-parent history of `to` back to `from` (excluded, with its
    /// ancestors), newest first; without `from`, back to the first commit.
    pub fn history(&self, from: Option<&str>, to: &str) -> Result<Vec<HistoryCommit>> {
        let to = Oid::from_str(to).context("parsing a commit sha")?;
        let from = from
            .map(Oid::from_str)
            .transpose()
            .context("parsing a commit sha")?;
        let mut walk = self.repo.revwalk().context("walking history")?;
        walk.set_sorting(Sort::TOPOLOGICAL)?;
        walk.simplify_first_parent()?;
        walk.push(to)?;
        if let Some(f) = from {
            walk.hide(f)?;
        }
        let mut out = Vec::new();
        for oid in walk {
            let oid = oid.context("walking history")?;
            let commit = self.repo.find_commit(oid)?;
            let mut entry = self.history_commit(&commit)?;
            if commit.parent_count() > 1 {
                let mut side = self.repo.revwalk()?;
                side.set_sorting(Sort::TOPOLOGICAL)?;
                for p in commit.parent_ids().skip(1) {
                    side.push(p)?;
                }
                side.hide(commit.parent_id(0)?)?;
                if let Some(f) = from {
                    side.hide(f)?;
                }
                for oid in side {
                    let c = self.repo.find_commit(oid.context("walking a merge")?)?;
                    entry.merged.push(self.history_commit(&c)?);
                }
            }
            out.push(entry);
        }
        Ok(out)
    }

    fn history_commit(&self, commit: &git2::Commit) -> Result<HistoryCommit> {
        let tree = commit.tree()?;
        let parent_tree = match commit.parent(0) {
            Ok(p) => Some(p.tree()?),
            Err(_) => None,
        };
        let diff = self
            .repo
            .diff_tree_to_tree(parent_tree.as_ref(), Some(&tree), None)
            .with_context(|| format!("diffing commit {}", commit.id()))?;
        let mut files = Vec::new();
        for delta in diff.deltas() {
            for f in [delta.old_file(), delta.new_file()] {
                if let Some(p) = f.path() {
                    let p = p
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/");
                    files.push(p);
                }
            }
        }
        files.sort();
        files.dedup();
        let author = commit.author();
        Ok(HistoryCommit {
            sha: commit.id().to_string(),
            message: String::from_utf8_lossy(commit.message_bytes()).into_owned(),
            author_name: author.name().unwrap_or_default().to_string(),
            author_email: author.email().unwrap_or_default().to_string(),
            time: author.when().seconds(),
            parents: commit.parent_count(),
            files,
            merged: Vec::new(),
        })
    }
}

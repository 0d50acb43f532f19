//! Pushing to a remote that is a path on this machine, race-safely.
//!
//! libgit2's local transport checks a non-forced push against the remote refs
//! it saw when it connected, but writes the ref later without comparing: a
//! tag created by a concurrent run in between is silently overwritten, and a
//! branch update loses the other run's commit (git's own receive-pack and
//! GitHub compare under the ref's lock). So, for local remotes only, the push
//! is done here: the objects the remote lacks are packed straight into its
//! object database (no transient refs that a concurrent `ls-remote` could
//! trip over), then the ref is changed with a compare-and-swap from the value
//! read before (`git_reference_create_matching`, checked under the ref's
//! lock), so a concurrent change is a rejection, never a silent overwrite.

use super::PushError;
use git2::{ErrorCode, Oid, Repository};
use std::path::{Path, PathBuf};

/// The remote repository's directory when `url` names one on this machine
/// (a path or a `file://` URL), as libgit2's local transport would open it.
pub fn local_path(url: &str, workdir: &Path) -> Option<PathBuf> {
    let path = match url.strip_prefix("file://") {
        Some(p) => PathBuf::from(p),
        None if url.contains("://") || is_scp_like(url) => return None,
        None => PathBuf::from(url),
    };
    if path.is_absolute() || path.exists() {
        Some(path)
    } else {
        Some(workdir.join(path))
    }
}

/// `user@host:path` / `host:path` (SSH), as git reads them: a colon before
/// any slash.
fn is_scp_like(url: &str) -> bool {
    match (url.find(':'), url.find('/')) {
        (Some(colon), Some(slash)) => colon < slash,
        (Some(_), None) => true,
        _ => false,
    }
}

/// One parsed refspec: `[+]src:dst`, `src` empty for a delete.
pub(super) struct Spec<'a> {
    pub force: bool,
    pub src: &'a str,
    pub dst: &'a str,
}

impl<'a> Spec<'a> {
    pub fn parse(spec: &'a str) -> Option<Spec<'a>> {
        let (force, rest) = match spec.strip_prefix('+') {
            Some(r) => (true, r),
            None => (false, spec),
        };
        let (src, dst) = rest.split_once(':')?;
        Some(Spec { force, src, dst })
    }
}

fn rejected(dst: &str, reason: impl Into<String>) -> PushError {
    PushError::Rejected {
        refname: dst.to_string(),
        reason: reason.into(),
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> PushError {
    PushError::Failed(format!("{what}: {e}"))
}

pub(super) fn open(path: &Path) -> Result<Repository, PushError> {
    Repository::open(path).map_err(|e| failed(&format!("opening {}", path.display()), e))
}

fn current(remote: &Repository, dst: &str) -> Result<Option<Oid>, PushError> {
    match remote.find_reference(dst) {
        Ok(r) => Ok(r.target()),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(failed(&format!("reading {dst}"), e)),
    }
}

/// Push `spec` from `local` into `remote`, checked as git would: tags are
/// never moved and branches only move forward unless forced, against the
/// remote's value at the time of the final compare-and-swap.
pub(super) fn push(
    local: &Repository,
    remote: &Repository,
    spec: &Spec<'_>,
) -> Result<(), PushError> {
    push_expecting(local, remote, spec, None)
}

/// [`push`]; with `expected`, a forced update too happens only while the
/// remote ref is still at that value (`None`: it must not exist).
pub(super) fn push_expecting(
    local: &Repository,
    remote: &Repository,
    spec: &Spec<'_>,
    expected: Option<Option<Oid>>,
) -> Result<(), PushError> {
    if spec.src.is_empty() {
        if let Ok(mut r) = remote.find_reference(spec.dst) {
            r.delete()
                .map_err(|e| failed(&format!("deleting {}", spec.dst), e))?;
        }
        return Ok(());
    }
    let new = local
        .refname_to_id(spec.src)
        .or_else(|_| Oid::from_str(spec.src))
        .map_err(|_| PushError::Failed(format!("src refspec '{}' does not match", spec.src)))?;
    let old = current(remote, spec.dst)?;
    if expected.is_some_and(|e| e != old) {
        return Err(rejected(spec.dst, "changed by someone else (fetch first)"));
    }
    if old == Some(new) {
        return Ok(());
    }
    if let (Some(old), false) = (old, spec.force) {
        if spec.dst.starts_with("refs/tags/") {
            return Err(rejected(spec.dst, "already exists"));
        }
        if !local.graph_descendant_of(new, old).unwrap_or(false) {
            return Err(rejected(spec.dst, "non-fast-forward (fetch first)"));
        }
    }
    transfer(local, remote, new).map_err(|e| failed("copying objects to the remote", e))?;
    let result = if spec.force && expected.is_none() {
        remote.reference(spec.dst, new, true, "openim-release push")
    } else {
        remote.reference_matching(
            spec.dst,
            new,
            true,
            old.unwrap_or(Oid::ZERO_SHA1),
            "openim-release push",
        )
    };
    match result {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.code(), ErrorCode::Modified | ErrorCode::Exists) => Err(rejected(
            spec.dst,
            "changed by someone else during the push (fetch first)",
        )),
        Err(e) => Err(failed(&format!("updating {}", spec.dst), e)),
    }
}

/// Pack what `new` needs and `remote` lacks (everything reachable from `new`
/// minus what the remote's refs reach) into the remote's object database.
fn transfer(local: &Repository, remote: &Repository, new: Oid) -> Result<(), git2::Error> {
    let object = local.find_object(new, None)?;
    let commit = object.peel_to_commit()?;
    let mut walk = local.revwalk()?;
    walk.push(commit.id())?;
    for r in remote.references()?.flatten() {
        if let Ok(c) = r.peel_to_commit() {
            if local.find_commit(c.id()).is_ok() {
                walk.hide(c.id())?;
            }
        }
    }
    let mut pack = local.packbuilder()?;
    pack.insert_walk(&mut walk)?;
    if object.id() != commit.id() {
        // An annotated tag: its own object too.
        pack.insert_object(new, None)?;
    }
    if pack.object_count() == 0 {
        return Ok(());
    }
    let odb = remote.odb()?;
    let mut writer = odb.packwriter()?;
    let mut io: std::io::Result<()> = Ok(());
    pack.foreach(|chunk| {
        io = std::io::Write::write_all(&mut writer, chunk);
        io.is_ok()
    })?;
    io.map_err(|e| git2::Error::from_str(&e.to_string()))?;
    writer.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn local_paths_of_urls() {
        let wd = std::path::Path::new("/work/src");
        let path = |u: &str| super::local_path(u, wd);
        assert_eq!(
            path("../helm-charts"),
            Some("/work/src/../helm-charts".into())
        );
        assert_eq!(
            path("/srv/git/charts.git"),
            Some("/srv/git/charts.git".into())
        );
        assert_eq!(path("file:///srv/charts"), Some("/srv/charts".into()));
        assert_eq!(path("https://github.com/o/r.git"), None);
        assert_eq!(path("git@github.com:o/r.git"), None);
        assert_eq!(path("host:r.git"), None);
    }

    use super::*;

    #[test]
    fn local_urls() {
        let wd = Path::new("/work");
        assert_eq!(
            local_path("file:///srv/x.git", wd),
            Some(PathBuf::from("/srv/x.git"))
        );
        assert_eq!(
            local_path("/srv/x.git", wd),
            Some(PathBuf::from("/srv/x.git"))
        );
        assert_eq!(
            local_path("../no-such-origin.git", wd),
            Some(PathBuf::from("/work/../no-such-origin.git"))
        );
        for remote in [
            "https://github.com/o/r.git",
            "http://127.0.0.1:8080/r.git",
            "ssh://git@host/r.git",
            "git@github.com:o/r.git",
            "host:r.git",
        ] {
            assert_eq!(local_path(remote, wd), None, "{remote}");
        }
    }

    #[test]
    fn specs() {
        let s = Spec::parse("+refs/a:refs/heads/b").unwrap();
        assert!(s.force && s.src == "refs/a" && s.dst == "refs/heads/b");
        let d = Spec::parse(":refs/tags/x").unwrap();
        assert!(!d.force && d.src.is_empty() && d.dst == "refs/tags/x");
        assert!(Spec::parse("refs/tags/x").is_none());
    }
}

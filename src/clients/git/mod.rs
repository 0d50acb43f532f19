//! All access to git repositories (git2). Nothing else in the crate talks to git.

mod history;
mod local_push;
pub use local_push::local_path;
mod tls_roots;

pub use history::HistoryCommit;

use crate::secret::{github_token_from_env, scrub, Secret};
use anyhow::{Context, Result};
use base64::Engine;
use git2::{
    Cred, CredentialType, Direction, ErrorClass, ErrorCode, PushOptions, RemoteCallbacks,
    Repository,
};
use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use tracing::{debug, trace};

/// Problems with the repository itself that the user has to fix.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{0} is not inside a git repository; run in a git work tree or pass -C DIR")]
    NotARepo(PathBuf),
    #[error("{0} does not exist; pass -C with the repository's directory")]
    NoSuchDir(PathBuf),
    #[error("the repository at {0} has no commits yet; commit something first")]
    NoCommits(PathBuf),
    #[error(
        "this is a shallow clone and its tags cannot be read from remote `{remote}` ({reason}); \
         fetch them with `git fetch --tags --unshallow`, or in GitHub Actions set \
         `fetch-depth: 0` on actions/checkout"
    )]
    ShallowWithoutTags { remote: String, reason: String },
    #[error("remote `{0}` does not exist; pass --remote NAME or add it with `git remote add`")]
    NoRemote(String),
    #[error(
        "git tag {name} points at a {kind}, not a commit, so it cannot mark a release; delete \
         it (`git tag -d {name}`, and on the remote `git push origin :refs/tags/{name}`) or \
         pick another version"
    )]
    TagNotACommit { name: String, kind: String },
    #[error(
        "this clone has no `{prefix}X.Y.Z` tags and remote `{remote}` could not be listed \
         ({reason}), so the next version cannot be known; fetch the tags with \
         `git fetch --tags` (in GitHub Actions: `fetch-depth: 0` on actions/checkout), or \
         pass --version X.Y.Z"
    )]
    NoVersionTags {
        remote: String,
        prefix: String,
        reason: String,
    },
}

/// The commit being built.
#[derive(Debug, Clone)]
pub struct Head {
    pub sha: String,
    /// Short branch name when HEAD is on a branch, `None` when detached.
    pub branch: Option<String>,
}

/// A tag of the local repository.
#[derive(Debug, Clone)]
pub struct LocalTag {
    pub name: String,
    /// What the ref points at: a commit, or a tag object.
    target: git2::Oid,
    /// The commit behind an annotated tag, where packed-refs records it.
    peeled: Option<git2::Oid>,
}

/// A tag as a remote advertises it.
#[derive(Debug, Clone)]
pub struct RemoteTag {
    pub name: String,
    /// The commit it points at (peeled through annotated tags).
    pub commit: String,
}

/// A fetch failure worth another try once the remote has answered the
/// same credentials: the network, a ref that moved mid-fetch, or a
/// credential request repeated until the offers ran out.
fn is_transient_fetch(e: &git2::Error) -> bool {
    e.class() == ErrorClass::Net
        || e.message().contains("not our ref")
        || e.message().contains("authentication failed")
}

/// Why a push did not go through.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("the remote rejected {refname}: {reason}")]
    Rejected { refname: String, reason: String },
    #[error("{0}")]
    Failed(String),
}

impl PushError {
    /// Authentication problems are never worth a retry.
    pub fn is_auth(&self) -> bool {
        matches!(self, PushError::Failed(m) if m.contains("authentication") || m.contains("401") || m.contains("403"))
    }
}

/// Initialise libgit2 without loading CA certificates: they are loaded
/// before the first transfer that may need them (see tls_roots). Call at
/// start-up, before any thread exists.
pub fn defer_tls_roots() {
    tls_roots::defer();
}

pub struct Repo {
    repo: Repository,
    root: PathBuf,
}

impl Repo {
    /// Open the repository containing `dir`.
    pub fn discover(dir: &Path) -> Result<Repo> {
        if !dir.exists() {
            return Err(GitError::NoSuchDir(dir.to_path_buf()).into());
        }
        let repo = Repository::discover(dir).map_err(|e| match e.code() {
            ErrorCode::NotFound => anyhow::Error::new(GitError::NotARepo(dir.to_path_buf())),
            _ => anyhow::Error::new(e)
                .context(format!("opening git repository at {}", dir.display())),
        })?;
        let root = repo
            .workdir()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| repo.path().to_path_buf());
        Ok(Repo { repo, root })
    }

    /// The text of `file` (a path in the work tree) as HEAD's commit holds
    /// it; `None` when HEAD has no such file (or no commit), or it is not
    /// UTF-8.
    pub fn committed_text(&self, file: &Path) -> Option<String> {
        let abs = std::fs::canonicalize(file).ok()?;
        let root = std::fs::canonicalize(&self.root).ok()?;
        let rel = abs.strip_prefix(root).ok()?;
        let head = self
            .repo
            .head()
            .ok()?
            .peel_to_commit()
            .ok()?
            .id()
            .to_string();
        self.file_at(&head, rel.to_str()?)
    }

    /// The work tree (or, for a bare repository, the git directory).
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn head(&self) -> Result<Head> {
        let head = match self.repo.head() {
            Ok(h) => h,
            Err(e) if e.code() == ErrorCode::UnbornBranch || e.code() == ErrorCode::NotFound => {
                return Err(GitError::NoCommits(self.root.clone()).into())
            }
            Err(e) => return Err(e).context("reading HEAD"),
        };
        let commit = head
            .peel_to_commit()
            .context("resolving HEAD to a commit")?;
        let branch = if head.is_branch() {
            head.shorthand().ok().map(str::to_string)
        } else {
            None
        };
        Ok(Head {
            sha: commit.id().to_string(),
            branch,
        })
    }

    /// The committer time of a commit.
    pub fn commit_time(&self, sha: &str) -> Result<chrono::DateTime<chrono::Utc>> {
        let oid = git2::Oid::from_str(sha).context("parsing commit sha")?;
        let commit = self
            .repo
            .find_commit(oid)
            .with_context(|| format!("reading commit {sha}"))?;
        chrono::DateTime::from_timestamp(commit.time().seconds(), 0)
            .with_context(|| format!("commit {sha} has an impossible time"))
    }

    /// The URL of a remote as configured (may carry credentials: scrub
    /// before printing).
    pub fn remote_url(&self, remote: &str) -> Option<String> {
        self.repo
            .find_remote(remote)
            .ok()
            .and_then(|r| r.url().ok().map(str::to_string))
    }

    /// The names of the local branches and of the remote-tracking ones
    /// (without their remote: `origin/release-v3.8` is `release-v3.8`),
    /// sorted, each once.
    pub fn branch_names(&self) -> Result<Vec<String>> {
        let mut names = std::collections::BTreeSet::new();
        for branch in self.repo.branches(None).context("listing the branches")? {
            let (branch, kind) = branch.context("reading a branch")?;
            let Ok(Some(name)) = branch.name() else {
                continue;
            };
            let name = match kind {
                git2::BranchType::Local => name,
                git2::BranchType::Remote => match name.split_once('/') {
                    Some((_, rest)) if rest != "HEAD" => rest,
                    _ => continue,
                },
            };
            names.insert(name.to_string());
        }
        Ok(names.into_iter().collect())
    }

    pub fn is_shallow(&self) -> bool {
        self.repo.is_shallow()
    }

    /// Every tag of the repository, in one pass over the refs. Peeled
    /// targets come for free from packed-refs; loose annotated tags are
    /// peeled later, and only when asked ([`Repo::tags_pointing_at`]).
    pub fn tags(&self) -> Result<Vec<LocalTag>> {
        let refs = self
            .repo
            .references_glob("refs/tags/*")
            .context("listing git tags")?;
        let mut out = Vec::new();
        for r in refs {
            let r = r.context("reading a git tag")?;
            let (Some(name), Some(target)) = (r.name().ok(), r.target()) else {
                continue;
            };
            let Some(name) = name.strip_prefix("refs/tags/") else {
                continue;
            };
            out.push(LocalTag {
                name: name.to_string(),
                target,
                peeled: r.target_peel(),
            });
        }
        Ok(out)
    }

    /// Whether a local tag names a commit (through annotated tags): a tag of
    /// a tree or a blob is no release.
    pub fn tag_is_commit(&self, name: &str) -> bool {
        self.repo
            .find_reference(&format!("refs/tags/{name}"))
            .and_then(|r| r.peel_to_commit())
            .is_ok()
    }

    /// The commit a local tag points at (peeled), if the tag exists.
    pub fn tag_commit(&self, name: &str) -> Result<Option<String>> {
        match self.repo.find_reference(&format!("refs/tags/{name}")) {
            Ok(r) => match r.peel_to_commit() {
                Ok(commit) => Ok(Some(commit.id().to_string())),
                Err(e) => match r.peel(git2::ObjectType::Any).ok().and_then(|o| o.kind()) {
                    Some(kind) if kind != git2::ObjectType::Commit => {
                        Err(GitError::TagNotACommit {
                            name: name.to_string(),
                            kind: kind.str().to_string(),
                        }
                        .into())
                    }
                    _ => Err(e).with_context(|| format!("resolving tag {name}")),
                },
            },
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading tag {name}")),
        }
    }

    /// The names of the tags among `tags` that point at commit `sha`.
    pub fn tags_pointing_at<'a>(
        &self,
        sha: &str,
        tags: impl IntoIterator<Item = &'a LocalTag>,
    ) -> Result<Vec<String>> {
        let head = git2::Oid::from_str(sha).context("parsing HEAD sha")?;
        let mut out = Vec::new();
        for tag in tags {
            let commit = if tag.target == head || tag.peeled == Some(head) {
                Some(head)
            } else if tag.peeled.is_some() {
                // Packed and peeled to something else.
                None
            } else {
                match self.repo.find_tag(tag.target) {
                    // Loose annotated tag: one object read.
                    Ok(t) if t.target_type() == Some(git2::ObjectType::Commit) => {
                        Some(t.target_id())
                    }
                    Ok(t) => t
                        .target()
                        .ok()
                        .and_then(|o| o.peel_to_commit().ok())
                        .map(|c| c.id()),
                    // A lightweight tag to another commit.
                    Err(_) => None,
                }
            };
            if commit == Some(head) {
                out.push(tag.name.clone());
            }
        }
        Ok(out)
    }

    /// Whether `remote` names a configured remote.
    pub fn has_remote(&self, remote: &str) -> bool {
        self.repo.find_remote(remote).is_ok()
    }

    /// Which of the tags `names` have their commit at `head` or among its
    /// ancestors: `(reachable, unknown)`. A tag is looked up locally, else in
    /// `remote_commits` (tags only a remote has). In a full clone every
    /// ancestor of HEAD is here, so a commit that is not is no ancestor; in a
    /// shallow clone the history is cut, so a tag not found on it is
    /// `unknown`. A tag of a tree or blob is no commit and never reachable.
    pub fn reachable_from(
        &self,
        head: &str,
        names: &[String],
        remote_commits: &std::collections::HashMap<String, String>,
    ) -> Result<(
        std::collections::BTreeSet<String>,
        std::collections::BTreeSet<String>,
    )> {
        let head = git2::Oid::from_str(head).context("parsing HEAD sha")?;
        let shallow = self.repo.is_shallow();
        let mut out = std::collections::BTreeSet::new();
        let mut unknown = std::collections::BTreeSet::new();
        for name in names {
            let commit = match self.repo.find_reference(&format!("refs/tags/{name}")) {
                Ok(r) => r.peel_to_commit().ok().map(|c| c.id()),
                Err(_) => remote_commits
                    .get(name)
                    .and_then(|c| git2::Oid::from_str(c).ok())
                    .filter(|oid| self.repo.find_commit(*oid).is_ok()),
            };
            let Some(commit) = commit else {
                if shallow && remote_commits.contains_key(name) {
                    unknown.insert(name.clone());
                }
                continue;
            };
            let reached =
                commit == head || self.repo.graph_descendant_of(head, commit).unwrap_or(false);
            if reached {
                out.insert(name.clone());
            } else if shallow {
                unknown.insert(name.clone());
            }
        }
        Ok((out, unknown))
    }

    /// The URL of a remote, with any credentials removed (for messages).
    pub fn remote_display(&self, remote: &str) -> String {
        match self.repo.find_remote(remote) {
            Ok(r) => scrub(r.url().unwrap_or(remote), &[]),
            Err(_) => scrub(remote, &[]),
        }
    }

    fn find_remote(&self, remote: &str) -> Result<git2::Remote<'_>> {
        match self.repo.find_remote(remote) {
            Ok(r) => Ok(r),
            Err(e) if e.code() == ErrorCode::NotFound || e.code() == ErrorCode::InvalidSpec => {
                // A URL or path works too, as with `git push URL`.
                if remote.contains('/') || remote.contains(':') {
                    self.repo
                        .remote_anonymous(remote)
                        .with_context(|| format!("using {} as a remote", scrub(remote, &[])))
                } else {
                    Err(GitError::NoRemote(remote.to_string()).into())
                }
            }
            Err(e) => Err(e).with_context(|| format!("reading remote {remote}")),
        }
    }

    /// Every ref a remote advertises, `(name, oid)` (`git ls-remote`), without
    /// fetching; `what` names the listing in errors.
    fn list_remote(&self, remote: &str, what: &str) -> Result<Vec<(String, String)>> {
        let mut r = self.find_remote(remote)?;
        tls_roots::before_transfer(r.url().unwrap_or_default());
        let auth = Auth::for_repo(&self.repo);
        let shown = self.remote_display(remote);
        let context = || format!("listing {what} of {shown}");
        debug!("ls-remote {shown} ({what})");
        let failed = |e: git2::Error| {
            let msg = auth.scrub(e.message());
            debug!("ls-remote {shown} failed: {msg}");
            anyhow::anyhow!(msg)
        };
        // A local path that is not there: libgit2 says "unsupported URL
        // protocol" (a path) or "failed to resolve path" (file://).
        if let Some(path) = r
            .url()
            .ok()
            .and_then(|u| local_push::local_path(u, &self.root))
        {
            if !path.exists() {
                return Err(anyhow::anyhow!(
                    "no such directory {} (a local path); point `{remote}` at the repository \
                     with `git remote set-url {remote} URL`",
                    path.display()
                ))
                .with_context(context);
            }
        }
        let conn = r
            .connect_auth(Direction::Fetch, Some(auth.callbacks()), None)
            .map_err(failed)
            .with_context(context)?;
        let heads = conn.list().map_err(failed).with_context(context)?;
        debug!("ls-remote {shown}: {} refs advertised", heads.len());
        Ok(heads
            .iter()
            .map(|h| (h.name().to_string(), h.oid().to_string()))
            .collect())
    }

    /// The tags a remote advertises (`git ls-remote --tags`), without fetching.
    pub fn remote_tags(&self, remote: &str) -> Result<Vec<RemoteTag>> {
        let heads = self.list_remote(remote, "tags")?;
        let mut direct: Vec<(String, String)> = Vec::new();
        let mut peeled: std::collections::HashMap<String, String> = Default::default();
        for (refname, oid) in heads {
            let Some(rest) = refname.strip_prefix("refs/tags/") else {
                continue;
            };
            match rest.strip_suffix("^{}") {
                Some(name) => {
                    peeled.insert(name.to_string(), oid);
                }
                None => direct.push((rest.to_string(), oid)),
            }
        }
        Ok(direct
            .into_iter()
            .map(|(name, oid)| RemoteTag {
                commit: peeled.remove(&name).unwrap_or(oid),
                name,
            })
            .collect())
    }

    /// Create annotated tag `name` at commit `sha`. Fails if it exists.
    pub fn create_tag(&self, name: &str, sha: &str, message: &str) -> Result<()> {
        let oid = git2::Oid::from_str(sha).context("parsing commit sha")?;
        let object = self
            .repo
            .find_object(oid, Some(git2::ObjectType::Commit))
            .with_context(|| format!("finding commit {sha}"))?;
        let tagger = self.tagger()?;
        self.repo
            .tag(name, &object, &tagger, message, false)
            .with_context(|| format!("creating git tag {name}"))?;
        Ok(())
    }

    pub fn delete_tag(&self, name: &str) -> Result<()> {
        self.repo
            .tag_delete(name)
            .with_context(|| format!("deleting local git tag {name}"))
    }

    fn tagger(&self) -> Result<git2::Signature<'static>> {
        if let Ok(sig) = self.repo.signature() {
            return Ok(sig.to_owned());
        }
        let (name, email) = if std::env::var_os("GITHUB_ACTIONS").is_some() {
            (
                "github-actions[bot]",
                "41898282+github-actions[bot]@users.noreply.github.com",
            )
        } else {
            ("openim-release", "openim-release@localhost")
        };
        git2::Signature::now(name, email).context("making the tagger signature")
    }

    /// Push `refs/tags/<name>` to `remote` without force.
    pub fn push_tag(&self, remote: &str, name: &str) -> Result<(), PushError> {
        let refname = format!("refs/tags/{name}");
        self.push_spec(remote, &format!("{refname}:{refname}"), &refname)
    }

    /// Delete a tag on the remote.
    pub fn delete_remote_tag(&self, remote: &str, name: &str) -> Result<(), PushError> {
        let refname = format!("refs/tags/{name}");
        self.push_spec(remote, &format!(":{refname}"), &refname)
    }

    /// Push one refspec; `refname` names the remote ref in messages.
    fn push_spec(&self, remote: &str, spec: &str, refname: &str) -> Result<(), PushError> {
        let url = self
            .find_remote(remote)
            .map_err(|e| PushError::Failed(format!("{e:#}")))?
            .url()
            .ok()
            .map(str::to_string);
        let shown = self.remote_display(remote);
        let result = match url.and_then(|u| local_push::local_path(&u, &self.root)) {
            Some(path) => {
                debug!("push {spec} to {shown} (a repository on this machine: compare-and-swap)");
                self.push_local(&path, spec)
            }
            None => {
                debug!("push {spec} to {shown}");
                self.push_transport(remote, spec, refname)
            }
        };
        match &result {
            Ok(()) => debug!("push {spec} to {shown}: done"),
            Err(PushError::Rejected { refname, reason }) => {
                debug!("push {spec} to {shown}: {refname} rejected: {reason}")
            }
            Err(PushError::Failed(msg)) => debug!("push {spec} to {shown}: failed: {msg}"),
        }
        result
    }

    /// A push to a repository on this machine: see local_push.
    fn push_local(&self, path: &Path, spec: &str) -> Result<(), PushError> {
        let parsed = local_push::Spec::parse(spec)
            .ok_or_else(|| PushError::Failed(format!("invalid refspec {spec}")))?;
        local_push::push(&self.repo, &local_push::open(path)?, &parsed)
    }

    /// Push one refspec through libgit2's transport for the remote's URL.
    fn push_transport(&self, remote: &str, spec: &str, refname: &str) -> Result<(), PushError> {
        let refname = refname.to_string();
        let mut r = self
            .find_remote(remote)
            .map_err(|e| PushError::Failed(format!("{e:#}")))?;
        tls_roots::before_transfer(
            r.pushurl()
                .ok()
                .flatten()
                .or(r.url().ok())
                .unwrap_or_default(),
        );
        let auth = Auth::for_repo(&self.repo);
        let rejection: RefCell<Option<String>> = RefCell::new(None);
        let mut callbacks = auth.callbacks();
        callbacks.push_update_reference(|name, status| {
            trace!(
                "push: the remote reports {name}: {}",
                status.unwrap_or("updated")
            );
            if let Some(msg) = status {
                *rejection.borrow_mut() = Some(msg.to_string());
            }
            Ok(())
        });
        let mut opts = PushOptions::new();
        opts.remote_callbacks(callbacks);
        let pushed = r.push(&[spec], Some(&mut opts));
        drop(opts);
        match pushed {
            Ok(()) => match rejection.into_inner() {
                Some(reason) => Err(PushError::Rejected { refname, reason }),
                None => Ok(()),
            },
            Err(e) => {
                let msg = auth.scrub(e.message());
                if e.class() == ErrorClass::Reference || msg.contains("non-fastforwardable") {
                    Err(PushError::Rejected {
                        refname,
                        reason: msg,
                    })
                } else {
                    Err(PushError::Failed(msg))
                }
            }
        }
    }
}

/// Whether git accepts `name` as a branch (`refs/heads/<name>`).
pub fn is_valid_branch_name(name: &str) -> bool {
    git2::Reference::is_valid_name(&format!("refs/heads/{name}"))
}

/// A commit author.
#[derive(Debug, Clone)]
pub struct Author {
    pub name: String,
    pub email: String,
}

impl Repo {
    /// Shallow-clone `branch` of `url` into `dest` (depth 1). The token goes
    /// to the transport only: the URL stored in .git/config stays as given.
    pub fn clone_shallow(url: &str, branch: &str, dest: &Path) -> Result<Repo> {
        tls_roots::before_transfer(url);
        let auth = Auth::with_config(git2::Config::open_default().ok());
        let mut fetch = git2::FetchOptions::new();
        fetch.remote_callbacks(auth.callbacks());
        // libgit2's local transport cannot fetch shallow; paths clone whole.
        let local = url.starts_with("file://") || !url.contains("://") && !url.contains('@');
        if !local {
            fetch.depth(1);
        }
        let shown = scrub(url, &[]);
        debug!(
            "clone {shown} (branch {branch}, {}) into {}",
            if local { "whole" } else { "depth 1" },
            dest.display()
        );
        let result = git2::build::RepoBuilder::new()
            .branch(branch)
            .fetch_options(fetch)
            .clone(url, dest);
        if result.is_ok() {
            debug!("clone {shown}: done");
        }
        let repo = result.map_err(|e| {
            let msg = auth.scrub(e.message());
            debug!("clone {shown} failed: {msg}");
            let hint = if e.class() == ErrorClass::Http
                || msg.contains("401")
                || msg.contains("authentication")
            {
                "; check the token in GITHUB_TOKEN (or GH_TOKEN)"
            } else if msg.contains("not found") && msg.contains("reference") {
                "; check deploy.base"
            } else {
                ""
            };
            anyhow::anyhow!("cloning {} (branch {branch}): {msg}{hint}", scrub(url, &[]))
        })?;
        let root = dest.to_path_buf();
        Ok(Repo { repo, root })
    }

    /// Fetch `branch` from `remote` (depth 1) and return its tip, or `None`
    /// when the remote has no such branch.
    pub fn fetch_branch(&self, remote: &str, branch: &str) -> Result<Option<String>> {
        let want = format!("refs/heads/{branch}");
        let listed = self
            .list_remote(remote, "branches")?
            .into_iter()
            .find(|(name, _)| *name == want)
            .map(|(_, oid)| oid);
        let Some(tip) = listed else { return Ok(None) };
        let mut r = self.find_remote(remote)?;
        tls_roots::before_transfer(r.url().unwrap_or_default());
        // libgit2's local transport cannot fetch shallow (as in clone_shallow).
        let url = r.url().unwrap_or_default().to_string();
        let local = url.starts_with("file://") || !url.contains("://") && !url.contains('@');
        let spec = format!("+refs/heads/{branch}:refs/remotes/{remote}/{branch}");
        let shown = self.remote_display(remote);
        debug!("fetch {spec} from {shown} (depth 1)");
        // A server busy with many clients at once may drop one, and a branch
        // that moves between the advertisement and the pack request fails
        // the request ("not our ref"), which libgit2 answers by asking for
        // credentials again until they run out: tried again, with fresh
        // credentials. The listing above was answered with the same ones,
        // so a refusal here is no wrong token.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let auth = Auth::for_repo(&self.repo);
            let mut fetch = git2::FetchOptions::new();
            fetch.remote_callbacks(auth.callbacks());
            if !local {
                fetch.depth(1);
            }
            match r.fetch(&[spec.as_str()], Some(&mut fetch), None) {
                Ok(()) => break,
                Err(e) if attempt < 4 && is_transient_fetch(&e) => {
                    debug!(
                        "fetch from {shown} failed ({}); trying again",
                        auth.scrub(e.message())
                    );
                    std::thread::sleep(std::time::Duration::from_millis(300 * attempt));
                }
                Err(e) => {
                    let msg = auth.scrub(e.message());
                    debug!("fetch from {shown} failed: {msg}");
                    return Err(anyhow::anyhow!(msg))
                        .with_context(|| format!("fetching {branch} from {shown}"));
                }
            }
        }
        // What was fetched, which may be newer than what was listed (the
        // branch moved in between): the objects here are of that one.
        let fetched = self
            .repo
            .find_reference(&format!("refs/remotes/{remote}/{branch}"))
            .ok()
            .and_then(|r| r.target())
            .map(|oid| oid.to_string())
            .unwrap_or(tip);
        debug!("fetch from {shown}: {branch} is at {fetched}");
        Ok(Some(fetched))
    }

    /// The tree id of a commit.
    pub fn tree_of(&self, sha: &str) -> Result<String> {
        let oid = git2::Oid::from_str(sha).context("parsing commit sha")?;
        Ok(self.repo.find_commit(oid)?.tree_id().to_string())
    }

    /// The parent ids of a commit, as its object records them (a shallow
    /// fetch hides them from the commit graph, not from the object).
    pub fn parents_of(&self, sha: &str) -> Result<Vec<String>> {
        let oid = git2::Oid::from_str(sha).context("parsing commit sha")?;
        let commit = self.repo.find_commit(oid)?;
        let header = String::from_utf8_lossy(commit.raw_header_bytes()).into_owned();
        Ok(header
            .lines()
            .filter_map(|l| l.strip_prefix("parent "))
            .map(|p| p.trim().to_string())
            .collect())
    }

    /// Move the checked-out branch and work tree to `sha` (discarding edits).
    pub fn reset_hard(&self, sha: &str) -> Result<()> {
        let oid = git2::Oid::from_str(sha).context("parsing commit sha")?;
        let obj = self.repo.find_object(oid, None)?;
        self.repo
            .reset(&obj, git2::ResetType::Hard, None)
            .with_context(|| format!("resetting to {sha}"))
    }

    /// Commit the listed work-tree paths on top of HEAD (or of `parent`),
    /// without moving any ref. Returns the new commit, or `None` when the
    /// tree would equal the parent's (no empty commits).
    pub fn commit_paths(
        &self,
        paths: &[String],
        message: &str,
        author: &Author,
    ) -> Result<Option<String>> {
        let mut index = self.repo.index().context("reading the index")?;
        for p in paths {
            index
                .add_path(Path::new(p))
                .with_context(|| format!("staging {p}"))?;
        }
        index.write().context("writing the index")?;
        let tree_id = index.write_tree().context("writing the tree")?;
        let head = self.repo.head()?.peel_to_commit()?;
        if head.tree_id() == tree_id {
            return Ok(None);
        }
        let tree = self.repo.find_tree(tree_id)?;
        let sig = git2::Signature::now(&author.name, &author.email)
            .context("making the commit author")?;
        let oid = self
            .repo
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &[&head])
            .context("creating the commit")?;
        Ok(Some(oid.to_string()))
    }

    /// Push `sha` to `refs/heads/<branch>` of `remote`; `force` replaces
    /// whatever is there.
    /// Force-push commit `sha` to `branch` of `remote`, only while the
    /// branch is still at `expected` (`None`: it must not exist): a
    /// compare-and-swap, so a concurrent change is a rejection, never lost.
    /// Over the network the branch is read and pushed on one connection, and
    /// the remote (git's receive-pack, GitHub) compares under the ref's lock.
    pub fn push_commit_replacing(
        &self,
        remote: &str,
        sha: &str,
        branch: &str,
        expected: Option<&str>,
    ) -> Result<(), PushError> {
        let refname = format!("refs/heads/{branch}");
        let tmp = format!("refs/openim-release/push/{branch}");
        let oid = git2::Oid::from_str(sha).map_err(|e| PushError::Failed(e.to_string()))?;
        let expected = expected
            .map(git2::Oid::from_str)
            .transpose()
            .map_err(|e| PushError::Failed(e.to_string()))?;
        self.repo
            .reference(&tmp, oid, true, "openim-release push")
            .map_err(|e| PushError::Failed(e.to_string()))?;
        let spec = format!("+{tmp}:{refname}");
        let url = self
            .find_remote(remote)
            .map_err(|e| PushError::Failed(format!("{e:#}")))?
            .url()
            .ok()
            .map(str::to_string);
        let shown = self.remote_display(remote);
        let was = expected.map_or_else(|| "absent".to_string(), |o| o.to_string());
        debug!("push {spec} to {shown} (only while {refname} is {was})");
        let result = match url.and_then(|u| local_push::local_path(&u, &self.root)) {
            Some(path) => match local_push::Spec::parse(&spec) {
                Some(parsed) => local_push::open(&path).and_then(|remote_repo| {
                    local_push::push_expecting(&self.repo, &remote_repo, &parsed, Some(expected))
                }),
                None => Err(PushError::Failed(format!("invalid refspec {spec}"))),
            },
            None => self.push_transport_expecting(remote, &spec, &refname, expected),
        };
        match &result {
            Ok(()) => debug!("push {spec} to {shown}: done"),
            Err(PushError::Rejected { refname, reason }) => {
                debug!("push {spec} to {shown}: {refname} rejected: {reason}")
            }
            Err(PushError::Failed(msg)) => debug!("push {spec} to {shown}: failed: {msg}"),
        }
        if let Ok(mut r) = self.repo.find_reference(&tmp) {
            let _ = r.delete();
        }
        result
    }

    /// A forced push of one refspec through the transport, refused unless
    /// the remote advertises `refname` at `expected` on the same connection.
    fn push_transport_expecting(
        &self,
        remote: &str,
        spec: &str,
        refname: &str,
        expected: Option<git2::Oid>,
    ) -> Result<(), PushError> {
        let mut r = self
            .find_remote(remote)
            .map_err(|e| PushError::Failed(format!("{e:#}")))?;
        let auth = Auth::for_repo(&self.repo);
        let shown = self.remote_display(remote);
        let mut conn = r
            .connect_auth(Direction::Push, Some(auth.callbacks()), None)
            .map_err(|e| PushError::Failed(auth.scrub(e.message())))?;
        let current = conn
            .list()
            .map_err(|e| PushError::Failed(auth.scrub(e.message())))?
            .iter()
            .find(|h| h.name() == refname)
            .map(|h| h.oid());
        if current != expected {
            debug!("push to {shown}: {refname} moved since it was read; not pushing");
            return Err(PushError::Rejected {
                refname: refname.to_string(),
                reason: "changed by someone else (fetch first)".into(),
            });
        }
        let rejection: RefCell<Option<String>> = RefCell::new(None);
        let mut callbacks = auth.callbacks();
        callbacks.push_update_reference(|_, status| {
            if let Some(msg) = status {
                *rejection.borrow_mut() = Some(msg.to_string());
            }
            Ok(())
        });
        let mut opts = PushOptions::new();
        opts.remote_callbacks(callbacks);
        // The same connection: the remote compares against what it showed.
        let pushed = conn.remote().push(&[spec], Some(&mut opts));
        drop(opts);
        match (pushed, rejection.into_inner()) {
            (Ok(()), None) => Ok(()),
            (Ok(()), Some(reason)) => Err(PushError::Rejected {
                refname: refname.to_string(),
                reason,
            }),
            (Err(e), _) => {
                let msg = auth.scrub(e.message());
                if e.class() == ErrorClass::Reference {
                    Err(PushError::Rejected {
                        refname: refname.to_string(),
                        reason: msg,
                    })
                } else {
                    Err(PushError::Failed(msg))
                }
            }
        }
    }

    /// The commit `branch` of `remote` is at (`ls-remote`), if it exists.
    pub fn remote_branch_tip(&self, remote: &str, branch: &str) -> Result<Option<String>> {
        let want = format!("refs/heads/{branch}");
        Ok(self
            .list_remote(remote, "branches")?
            .into_iter()
            .find(|(name, _)| *name == want)
            .map(|(_, oid)| oid))
    }

    /// The message of a commit.
    pub fn commit_message(&self, sha: &str) -> Result<String> {
        let oid = git2::Oid::from_str(sha).context("parsing commit sha")?;
        let commit = self
            .repo
            .find_commit(oid)
            .with_context(|| format!("reading commit {sha}"))?;
        Ok(commit.message().unwrap_or_default().to_string())
    }

    pub fn push_commit(
        &self,
        remote: &str,
        sha: &str,
        branch: &str,
        force: bool,
    ) -> Result<(), PushError> {
        let tmp = format!("refs/openim-release/push/{branch}");
        let oid = git2::Oid::from_str(sha).map_err(|e| PushError::Failed(e.to_string()))?;
        self.repo
            .reference(&tmp, oid, true, "openim-release push")
            .map_err(|e| PushError::Failed(e.to_string()))?;
        let spec = format!("{}{tmp}:refs/heads/{branch}", if force { "+" } else { "" });
        let result = self.push_spec(remote, &spec, &format!("refs/heads/{branch}"));
        if let Ok(mut r) = self.repo.find_reference(&tmp) {
            let _ = r.delete();
        }
        result
    }

    /// When a tag was made (seconds since the epoch): the tagger's time of
    /// an annotated tag, else the time of its commit; `None` when there is
    /// no such tag or it names no commit.
    pub fn tag_time(&self, name: &str) -> Option<i64> {
        let r = self
            .repo
            .find_reference(&format!("refs/tags/{name}"))
            .ok()?;
        let target = r.target()?;
        if let Some(tagger) = self
            .repo
            .find_tag(target)
            .ok()
            .and_then(|t| t.tagger().map(|s| s.when().seconds()))
        {
            return Some(tagger);
        }
        r.peel_to_commit().ok().map(|c| c.time().seconds())
    }

    /// The paths (files, `/`-separated) whose content differs between the
    /// trees of two commits.
    pub fn changed_paths(&self, from: &str, to: &str) -> Result<Vec<String>> {
        let tree = |sha: &str| -> Result<git2::Tree<'_>> {
            let oid = git2::Oid::from_str(sha).context("parsing commit sha")?;
            Ok(self
                .repo
                .find_commit(oid)
                .with_context(|| format!("reading commit {sha}"))?
                .tree()?)
        };
        let (a, b) = (tree(from)?, tree(to)?);
        let diff = self
            .repo
            .diff_tree_to_tree(Some(&a), Some(&b), None)
            .with_context(|| format!("comparing {from} with {to}"))?;
        let mut out = Vec::new();
        for delta in diff.deltas() {
            for file in [delta.old_file(), delta.new_file()] {
                if let Some(p) = file.path().and_then(|p| p.to_str()) {
                    if !out.iter().any(|o| o == p) {
                        out.push(p.to_string());
                    }
                }
            }
        }
        Ok(out)
    }

    /// The text of the file at `path` in commit `sha`, if it is there.
    pub fn file_at(&self, sha: &str, path: &str) -> Option<String> {
        let oid = git2::Oid::from_str(sha).ok()?;
        let tree = self.repo.find_commit(oid).ok()?.tree().ok()?;
        let entry = tree.get_path(Path::new(path)).ok()?;
        let blob = entry.to_object(&self.repo).ok()?.into_blob().ok()?;
        String::from_utf8(blob.content().to_vec()).ok()
    }
}

/// Credentials for HTTPS and SSH remotes, tried in order, each a few times:
/// `GITHUB_TOKEN`/`GH_TOKEN` as user `x-access-token`; the basic-auth
/// `http.<url>.extraheader` that actions/checkout leaves in .git/config;
/// git's credential helpers; the SSH agent.
/// How often one credential is offered in one operation.
const CREDENTIAL_OFFERS: usize = 3;

struct Auth {
    token: Option<Secret>,
    header_basic: Vec<(String, Secret)>,
    config: Option<git2::Config>,
    tried: RefCell<Vec<&'static str>>,
}

impl Auth {
    fn for_repo(repo: &Repository) -> Auth {
        Auth::with_config(repo.config().ok())
    }

    fn with_config(config: Option<git2::Config>) -> Auth {
        let header_basic = config
            .as_ref()
            .map(extraheader_credentials)
            .unwrap_or_default();
        Auth {
            token: github_token_from_env(),
            header_basic,
            config,
            tried: RefCell::new(Vec::new()),
        }
    }

    fn scrub(&self, text: &str) -> String {
        let mut secrets: Vec<&Secret> = self.token.iter().collect();
        secrets.extend(self.header_basic.iter().map(|(_, s)| s));
        scrub(text, &secrets)
    }

    /// Whether credential `name` may be offered (again). libgit2 asks once
    /// per connection, and a busy server closes connections, so each is
    /// offered a few times; a refused one still ends the loop.
    fn first_untried(&self, name: &'static str) -> bool {
        let mut tried = self.tried.borrow_mut();
        if tried.iter().filter(|t| **t == name).count() >= CREDENTIAL_OFFERS {
            false
        } else {
            tried.push(name);
            true
        }
    }

    fn callbacks(&self) -> RemoteCallbacks<'_> {
        let mut cb = RemoteCallbacks::new();
        cb.credentials(move |url, username, allowed| {
            let shown = scrub(url, &[]);
            let offer = |what: &str| debug!("credentials asked for {shown}: offering {what}");
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                if let Some(token) = &self.token {
                    if self.first_untried("token") {
                        offer("GITHUB_TOKEN/GH_TOKEN as user x-access-token");
                        return Cred::userpass_plaintext("x-access-token", token.expose());
                    }
                }
                if let Some((user, pass)) = self
                    .header_basic
                    .iter()
                    .find(|(prefix, _)| url.starts_with(prefix.as_str()))
                    .and_then(|(_, s)| s.expose().split_once(':'))
                {
                    if self.first_untried("extraheader") {
                        offer(&format!("the checkout's extraheader (user {user:?})"));
                        return Cred::userpass_plaintext(user, pass);
                    }
                }
                if let Some(config) = &self.config {
                    if self.first_untried("helper") {
                        if let Ok(c) = Cred::credential_helper(config, url, username) {
                            offer("what git's credential helper gave");
                            return Ok(c);
                        }
                        debug!("credentials asked for {shown}: git's credential helper has none");
                    }
                }
            }
            if allowed.contains(CredentialType::SSH_KEY) && self.first_untried("ssh-agent") {
                offer("the SSH agent's keys");
                return Cred::ssh_key_from_agent(username.unwrap_or("git"));
            }
            if allowed.contains(CredentialType::DEFAULT) && self.first_untried("default") {
                offer("default credentials (Negotiate/NTLM)");
                return Cred::default();
            }
            debug!("credentials asked for {shown} ({allowed:?}): nothing left to offer");
            // What was offered and refused (a helper may have had nothing).
            let mut refused: Vec<&str> = self
                .tried
                .borrow()
                .iter()
                .filter_map(|t| match *t {
                    "token" => Some("GITHUB_TOKEN as x-access-token"),
                    "extraheader" => Some("the checkout's extraheader"),
                    _ => None,
                })
                .collect();
            refused.dedup();
            Err(git2::Error::from_str(&if refused.is_empty() {
                "authentication failed: no working credentials; set GITHUB_TOKEN (or \
                 GH_TOKEN) or configure a git credential helper"
                    .to_string()
            } else {
                format!(
                    "authentication failed: the remote refused {}; check that the token is \
                     valid and may access this repository",
                    refused.join(" and ")
                )
            }))
        });
        // The remote's messages come in arbitrary pieces, its progress
        // counters ended by `\r`: whole lines only, a counter only when done.
        let mut pending = String::new();
        cb.sideband_progress(move |data| {
            pending.push_str(&String::from_utf8_lossy(data));
            while let Some(end) = pending.find(['\r', '\n']) {
                let line: String = pending.drain(..=end).collect();
                let line = line.trim();
                if !line.is_empty() && (!line.contains('%') || line.ends_with("done.")) {
                    trace!("remote: {line}");
                }
            }
            true
        });
        let last = Cell::new(None);
        cb.transfer_progress(move |p| {
            // A line each tenth of the objects, not one per object.
            let tenth = (p.received_objects() * 10)
                .checked_div(p.total_objects())
                .unwrap_or(10);
            if last.replace(Some(tenth)) != Some(tenth) {
                trace!(
                    "fetch: {}/{} objects received ({} bytes), {} deltas resolved",
                    p.received_objects(),
                    p.total_objects(),
                    p.received_bytes(),
                    p.indexed_deltas()
                );
            }
            true
        });
        cb.push_transfer_progress(|current, total, bytes| {
            if current == total {
                trace!("push: {current}/{total} objects sent ({bytes} bytes)");
            }
        });
        cb
    }
}

/// `(url prefix, "user:password")` from `http.<url>.extraheader` entries of
/// the form `AUTHORIZATION: basic <base64>` (what actions/checkout writes).
fn extraheader_credentials(config: &git2::Config) -> Vec<(String, Secret)> {
    let mut out = Vec::new();
    let Ok(mut entries) = config.entries(Some(r"^http\..*extraheader$")) else {
        return out;
    };
    while let Some(Ok(entry)) = entries.next() {
        let (Ok(name), Ok(value)) = (entry.name(), entry.value()) else {
            continue;
        };
        let prefix = name
            .strip_prefix("http.")
            .and_then(|n| n.strip_suffix(".extraheader"))
            .unwrap_or("")
            .to_string();
        let Some((key, rest)) = value.split_once(':') else {
            continue;
        };
        let rest = rest.trim();
        if !key.trim().eq_ignore_ascii_case("authorization")
            || !rest
                .get(..6)
                .is_some_and(|s| s.eq_ignore_ascii_case("basic "))
        {
            continue;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest[6..].trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        if let Some(secret) = decoded.and_then(Secret::new) {
            out.push((prefix, secret));
        }
    }
    out
}

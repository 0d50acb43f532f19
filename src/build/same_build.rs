//! Whether an image built from one commit is what another commit builds,
//! for one service: no file its build reads (the Dockerfile, the ignore
//! file applied, the context files its `COPY`/`ADD`/`RUN --mount` read, as
//! `build` narrows its inputs) differs between them. `build` reuses an image
//! whose inputs did not change, with the labels and provenance of the build
//! that made it; `audit` and `verify` accept such an image for a later
//! commit through this judge.

use std::cell::RefCell;
use std::collections::HashMap;

/// How an image's revision (the commit it was built from) relates to
/// another commit, for one service's build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sameness {
    /// The same commit.
    Same,
    /// Another commit, but no file the service's build reads differs: the
    /// image is what the other commit builds.
    Equivalent,
    /// Files the build reads differ (some of them named).
    Differs(Vec<String>),
    /// Not a commit of this repository.
    Unknown,
}

impl Sameness {
    /// Same or equivalent: the image is what the commit builds.
    pub fn builds_the_same(&self) -> bool {
        matches!(self, Sameness::Same | Sameness::Equivalent)
    }
}

/// Whether an image built from one commit is what another commit builds,
/// for one service: no file its build reads differs between them.
pub struct SameBuild<'a> {
    repo: &'a crate::clients::git::Repo,
    specs: &'a [crate::build::plan::ServiceSpec],
    verdicts: RefCell<HashMap<(String, String, String), Sameness>>,
    /// (commit, service) → what its build reads (`None`: not known).
    reads: RefCell<HashMap<(String, String), Option<Reads>>>,
}

/// What one service's build reads at one commit, as `build` narrows it.
struct Reads {
    dockerfile: String,
    /// The ignore file applied (`<Dockerfile>.dockerignore`, else the
    /// context's `.dockerignore`).
    ignore_path: Option<String>,
    ignore: crate::dockerignore::DockerIgnore,
    /// The context directory, `` for the repository root.
    context: String,
    /// What the Dockerfile reads, relative to the context; `None`: all of it.
    sources: Option<Vec<crate::build::dockerfile::Source>>,
}

fn slash(p: &std::path::Path) -> String {
    let s = p.to_string_lossy().replace('\\', "/");
    let s = s.trim_start_matches("./").trim_end_matches('/');
    if s == "." {
        String::new()
    } else {
        s.to_string()
    }
}

impl Reads {
    /// Whether a change of `path` (repository-relative) changes the build.
    fn relevant(&self, path: &str) -> bool {
        if path == self.dockerfile || self.ignore_path.as_deref() == Some(path) {
            return true;
        }
        let rel = if self.context.is_empty() {
            path
        } else {
            match path.strip_prefix(&format!("{}/", self.context)) {
                Some(r) => r,
                None => return false,
            }
        };
        let parts: Vec<&str> = rel.split('/').collect();
        for i in 1..parts.len() {
            let dir = parts[..i].join("/");
            if self.ignore.is_excluded(&dir) && !self.ignore.may_reinclude_under(&dir) {
                return false;
            }
        }
        if self.ignore.is_excluded(rel) {
            return false;
        }
        match &self.sources {
            None => true,
            Some(src) => crate::build::dockerfile::is_under(rel, src),
        }
    }
}

impl<'a> SameBuild<'a> {
    pub fn new(
        repo: &'a crate::clients::git::Repo,
        specs: &'a [crate::build::plan::ServiceSpec],
    ) -> SameBuild<'a> {
        SameBuild {
            repo,
            specs,
            verdicts: RefCell::new(HashMap::new()),
            reads: RefCell::new(HashMap::new()),
        }
    }

    /// How the build of `service` at `revision` relates to its build at
    /// `commit` (judged once per triple).
    pub fn judge(&self, revision: &str, commit: &str, service: &str) -> Sameness {
        if revision == commit {
            return Sameness::Same;
        }
        let key = (
            revision.to_string(),
            commit.to_string(),
            service.to_string(),
        );
        if let Some(v) = self.verdicts.borrow().get(&key) {
            return v.clone();
        }
        let verdict = match self.repo.changed_paths(revision, commit) {
            Err(_) => Sameness::Unknown,
            Ok(changed) => {
                let reads_key = (commit.to_string(), service.to_string());
                if !self.reads.borrow().contains_key(&reads_key) {
                    let reads = self.reads_at(commit, service);
                    self.reads.borrow_mut().insert(reads_key.clone(), reads);
                }
                let reads = self.reads.borrow();
                let relevant: Vec<String> = changed
                    .into_iter()
                    .filter(|p| reads[&reads_key].as_ref().is_none_or(|r| r.relevant(p)))
                    .collect();
                if relevant.is_empty() {
                    Sameness::Equivalent
                } else {
                    Sameness::Differs(relevant)
                }
            }
        };
        self.verdicts.borrow_mut().insert(key, verdict.clone());
        verdict
    }

    fn reads_at(&self, commit: &str, service: &str) -> Option<Reads> {
        let spec = self.specs.iter().find(|s| s.name == service)?;
        let dockerfile = slash(&spec.dockerfile);
        let text = self.repo.file_at(commit, &dockerfile)?;
        let context = slash(&spec.context);
        let beside = format!("{dockerfile}.dockerignore");
        let root = if context.is_empty() {
            ".dockerignore".to_string()
        } else {
            format!("{context}/.dockerignore")
        };
        let (ignore_path, ignore_text) = match self.repo.file_at(commit, &beside) {
            Some(t) => (Some(beside), t),
            None => match self.repo.file_at(commit, &root) {
                Some(t) => (Some(root), t),
                None => (None, String::new()),
            },
        };
        let ignore = crate::dockerignore::DockerIgnore::parse(&ignore_text).ok()?;
        Some(Reads {
            sources: crate::build::dockerfile::context_sources(&text, &spec.args),
            dockerfile,
            ignore_path,
            ignore,
            context,
        })
    }
}

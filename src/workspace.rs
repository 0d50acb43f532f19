//! The workspace of one run, opened once and passed to every step: where it
//! runs, the git repository there (if any), the configuration, the run's
//! clock and its id. Every step of `release` sees the same values: the date
//! of a nightly is read once, so a run that crosses midnight UTC tags its
//! images and its git tag with the same day.

use crate::cli::GlobalArgs;
use crate::clients::git::{GitError, Repo};
use crate::config::{self, Config, Loaded};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};

/// Environment variable that sets the run's time (RFC 3339), for tests and
/// reproducible runs; read once, when the workspace is opened, like the
/// system clock it replaces.
pub const CLOCK_ENV: &str = "OPENIM_RELEASE_CLOCK";

pub struct Workspace {
    /// Where the command runs (`-C`, else the current directory).
    pub dir: PathBuf,
    /// The git repository containing `dir`, if any.
    repo: Option<Repo>,
    /// The configuration and the file it came from.
    pub loaded: Loaded,
    /// `-q`: nothing on stderr but errors.
    pub quiet: bool,
    /// The run's time, read once.
    pub now: DateTime<Utc>,
    /// Identifies this run in git tag messages (the Actions run where there
    /// is one, plus host, process and time).
    pub run_id: String,
}

impl Workspace {
    /// Open the workspace of `global`: the repository is optional (`chart
    /// bump` edits a plain directory); the configuration is read from the
    /// repository root, or `dir` without one.
    pub fn open(global: &GlobalArgs) -> Result<Workspace> {
        let dir = match &global.directory {
            Some(d) => d.clone(),
            None => std::env::current_dir().context("reading the current directory")?,
        };
        if !dir.exists() {
            return Err(GitError::NoSuchDir(dir).into());
        }
        let repo = Repo::discover(&dir).ok();
        let root = repo
            .as_ref()
            .map_or_else(|| dir.clone(), |r| r.root().to_path_buf());
        let loaded = config::load(global.config.as_deref(), &root)?;
        let now = clock()?;
        Ok(Workspace {
            run_id: run_id(now),
            dir,
            repo,
            loaded,
            quiet: global.quiet,
            now,
        })
    }

    /// The git repository, or why there is none (not a repository, no
    /// commits): for the steps that need one.
    pub fn repo(&self) -> Result<&Repo> {
        match &self.repo {
            Some(r) => Ok(r),
            // Asked again for its error, which names the problem.
            None => match Repo::discover(&self.dir) {
                Err(e) => Err(e),
                Ok(_) => Err(GitError::NotARepo(self.dir.clone()).into()),
            },
        }
    }

    /// The repository if there is one.
    pub fn repo_opt(&self) -> Option<&Repo> {
        self.repo.as_ref()
    }

    /// The repository root, or `dir` without a repository.
    pub fn root(&self) -> &Path {
        self.repo.as_ref().map_or(&self.dir, |r| r.root())
    }

    pub fn config(&self) -> &Config {
        &self.loaded.config
    }

    /// A note on stderr, unless `-q`.
    pub fn note(&self, text: &str) {
        if !self.quiet {
            crate::say!("note: {text}");
        }
    }

    /// A step of a pipeline on stderr, unless `-q`.
    pub fn step(&self, text: &str) {
        if !self.quiet {
            crate::say!("==> {text}");
        }
    }
}

/// The system clock now, in milliseconds since the epoch, whatever
/// [`CLOCK_ENV`] says: for what a server checks against its own clock (the
/// timestamp of a DingTalk or Feishu signature), never for a date or tag.
pub fn real_time_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// The run's time: [`CLOCK_ENV`] when set, else the system clock.
fn clock() -> Result<DateTime<Utc>> {
    match std::env::var(CLOCK_ENV) {
        Ok(text) if !text.trim().is_empty() => {
            let start = DateTime::parse_from_rfc3339(text.trim())
                .map_err(|e| {
                    crate::error::BadInput(format!(
                        "{CLOCK_ENV}=`{text}`: {e}; expected RFC 3339, e.g. 2026-11-30T23:59:59Z"
                    ))
                })?
                .with_timezone(&Utc);
            Ok(start)
        }
        _ => Ok(Utc::now()),
    }
}

fn run_id(now: DateTime<Utc>) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into());
    // The real time too: two runs in one injected second stay distinct.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let local = format!(
        "{host} pid {} at {} ({nanos})",
        std::process::id(),
        now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    match (
        std::env::var("GITHUB_REPOSITORY"),
        std::env::var("GITHUB_RUN_ID"),
    ) {
        (Ok(repo), Ok(id)) => format!(
            "{repo} actions run {id} attempt {} ({local})",
            std::env::var("GITHUB_RUN_ATTEMPT").unwrap_or_else(|_| "1".into())
        ),
        _ => local,
    }
}

//! Crash points at every side-effect boundary of `release`, for the crash
//! tests (docs/safety.md). Compiled in only with the cargo feature
//! `failpoints` (the `fail` crate); without it [`crash_point`] is empty.
//!
//! With the feature, `FAILPOINTS=<name>=return` makes the process abort at
//! that point, as `kill -9` would (no destructor runs, nothing is cleaned
//! up); `FAILPOINTS=<name>=2*off->return` on its third passage. The names:
//!
//! | name | the moment before |
//! |---|---|
//! | `tag.push` | a git tag (rc/patch reservation, release, nightly) is pushed |
//! | `tag.pushed` | anything after a git tag push succeeded |
//! | `registry.blob` | a blob is uploaded (one the registry lacks) |
//! | `registry.mount` | a blob is mounted from another repository of the registry |
//! | `mirror.blob` | a blob is copied to a mirror (`images.mirrors`, `mirror`) |
//! | `registry.manifest` | a platform manifest is pushed by digest |
//! | `registry.index` | an image index is pushed by digest |
//! | `registry.attach` | an attachment (SBOM, provenance, signature) is pushed beside an image |
//! | `registry.tag` | a tag is written |
//! | `deploy.commit` | the deploy commit is made |
//! | `deploy.push` | the deploy commit is pushed |
//! | `deploy.pushed` | anything after the deploy push succeeded |
//! | `github.pr` | the pull request is opened or updated |
//! | `github.labels` | labels are added |
//! | `github.reviewers` | reviewers are requested |
//! | `github.release` | the GitHub Release is created or updated |

/// Abort here when the failpoint `name` is configured to (feature
/// `failpoints`); nothing otherwise.
#[inline]
pub fn crash_point(name: &str) {
    #[cfg(feature = "failpoints")]
    fail::fail_point!(name, |_| crash(name));
    let _ = name;
}

#[cfg(feature = "failpoints")]
fn crash(name: &str) {
    crate::say!("failpoint {name}: aborting");
    std::process::abort();
}

/// Read `FAILPOINTS` (feature `failpoints`); keep the returned value alive
/// for the whole run.
pub fn setup() -> impl Drop {
    #[cfg(feature = "failpoints")]
    {
        fail::FailScenario::setup()
    }
    #[cfg(not(feature = "failpoints"))]
    {
        NoScenario
    }
}

#[cfg(not(feature = "failpoints"))]
struct NoScenario;

#[cfg(not(feature = "failpoints"))]
impl Drop for NoScenario {
    fn drop(&mut self) {}
}

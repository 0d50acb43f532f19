//! openim-release: release toolkit for multi-service container projects.
//!
//! The layout reads top-down (docs/architecture.md draws it):
//!
//! - `commands/`: one thin adapter per subcommand (arguments → domain call →
//!   output); commands never import each other;
//! - `release/`-level pipeline and the domains below it: `tag/` (stage rules,
//!   versions, templates, branch tags), `build/` (services, plan, context,
//!   export, builder), `deploy/` (chart edits, deploy plan, gitops);
//! - shared data and rules: `config/`, `oci/` (references, manifests),
//!   `checks`, `secret`, `error` (error kinds → exit codes);
//! - `clients/`: the only code that talks to another process or socket (git,
//!   the Docker engine, registries, credentials, GitHub);
//! - `output/`: the GitHub Actions protocol, progress, words in messages.

pub mod audit;
pub mod build;
pub mod checks;
pub mod cli;
pub mod clients;
pub mod commands;
pub mod config;
pub mod deploy;
pub mod error;
pub mod failpoint;
pub mod notes;
pub mod notify;
pub mod oci;
pub mod output;
pub mod promote;
pub mod release;
pub mod secret;
pub mod supply;
pub mod tag;
pub mod workspace;

// The pure parsers and editors live in crates of their own (crates/);
// re-exported so that `crate::yamledit` and `crate::dockerignore` name them.
pub use dockerignore;
pub use yamledit;

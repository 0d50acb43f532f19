//! openim-release: release toolkit for multi-service container projects.
//!
//! Pure rules (`version`, `imagetag`, `template`, `stage`, `config`) are kept
//! apart from I/O (`git`, `actions`); `commands` wires them together.

pub mod actions;
pub mod builder;
pub mod buildplan;
pub mod chart;
pub mod checks;
pub mod cli;
pub mod commands;
pub mod config;
pub mod context;
pub mod credentials;
pub mod deploy;
pub mod docker;
pub mod dockerfile;
pub mod exit;
pub mod export;
pub mod git;
pub mod github;
pub mod imageref;
pub mod imagetag;
pub mod labels;
pub mod oci;
pub mod progress;
pub mod registry;
pub mod secret;
pub mod stage;
pub mod template;
pub mod text;
pub mod version;

// The pure parsers and editors live in crates of their own (crates/);
// re-exported so that `crate::yamledit` and `crate::dockerignore` name them.
pub use dockerignore;
pub use yamledit;

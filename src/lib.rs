//! openim-release: release toolkit for multi-service container projects.
//!
//! Pure rules (`version`, `imagetag`, `template`, `stage`, `config`) are kept
//! apart from I/O (`git`, `actions`); `commands` wires them together.

pub mod actions;
pub mod cli;
pub mod commands;
pub mod config;
pub mod exit;
pub mod git;
pub mod imagetag;
pub mod secret;
pub mod stage;
pub mod template;
pub mod version;

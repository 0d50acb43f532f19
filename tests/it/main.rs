//! Integration tests: one binary, modules mirroring the commands.
//! Each test builds real git repositories in temp dirs and drives the binary.

mod build;
mod chart;
mod common;
mod compose_corpus;
mod config_docs;
mod crash;
mod debug_log;
mod deploy_beyond;
mod deploy_fixture;
mod deploy_shapes;
mod doc_examples;
mod export;
mod fake_github;
mod fixtures;
mod github_fixtures;
mod gitops;
mod init;
mod msrv;
mod naming;
mod proxy;
mod release;
mod replay;
mod repo_standalone;
mod services;
mod snapshots;
mod tag_actions;
mod tag_errors;
mod tag_history;
mod tag_push;
mod tag_stages;

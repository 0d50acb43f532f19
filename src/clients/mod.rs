//! Everything that talks to another process or socket: git repositories and
//! remotes (`git`), the Docker engine (`engine`), OCI registries
//! (`registry`) with their credentials (`credentials`), GitHub's API
//! (`github`) and webhooks (`webhook`). Nothing outside this folder opens a connection.

pub mod credentials;
pub mod docker_host;
pub mod engine;
pub mod git;
pub mod github;
pub mod registry;
pub mod webhook;

//! Moving a release that exists: `mirror` (also `promote`) copies it by
//! digest from one registry to others; `bundle export` writes it (images,
//! artifacts, charts) into one OCI image layout tar and `bundle import`
//! pushes such a file into a registry. Nothing is rebuilt and no byte of a
//! manifest changes, so digests stay the same everywhere.
//!
//! - `graph`: what a manifest points to; the tags artifacts live under (pure);
//! - `copy`: the copy of a manifest and everything it points to, from a
//!   source to a sink, and of its artifacts;
//! - `remote`: a registry as a source and a sink (HEAD, mount, streamed
//!   upload, the referrers tag);
//! - `layout`: a bundle as a sink (written) and a source (read);
//! - `helm`: charts packaged as Helm packages them and keeps them in OCI;
//! - `mirror`, `bundle`: the commands' requests, reports and runs.

pub mod bundle;
pub mod copy;
pub mod graph;
pub mod helm;
pub mod layout;
pub mod mirror;
pub mod remote;

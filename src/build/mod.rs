//! Building and pushing images: the services and the plan (pure: `plan`),
//! which files a build reads (`context`, `dockerfile`), the engine's export
//! turned into registry blobs (`export`), blobs shared between services
//! (`blobs`), OCI labels (`labels`) and applying
//! the plan (`builder`).

pub mod blobs;
pub mod builder;
pub mod compose;
pub mod context;
pub mod dockerfile;
pub mod export;
pub mod labels;
pub mod pgzip;
pub mod plan;
pub mod run;
pub mod same_build;

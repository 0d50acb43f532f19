//! `openim-release mirror` (also `promote`): arguments →
//! [`crate::promote::mirror`] → output.

use crate::build::run::TagChoice;
use crate::cli::{GlobalArgs, MirrorArgs};
use crate::output::{self, render};
use crate::promote::mirror::{self, MirrorRequest};
use crate::workspace::Workspace;
use anyhow::{Context, Result};

pub fn run(global: &GlobalArgs, args: &MirrorArgs) -> Result<i32> {
    let ws = Workspace::open(global)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let req = MirrorRequest {
        tags: TagChoice {
            stage: args.tags.stage,
            tags: args.tags.tag.clone(),
            version: args.tags.version.clone(),
            branch: args.tags.branch.clone(),
        },
        from: args.from.clone(),
        to: args.to.clone(),
        services: args.service.clone(),
        jobs: args.jobs,
        dry_run: args.dry_run,
        digests: Default::default(),
    };
    let report = runtime.block_on(mirror::run(&ws, &req))?;
    output::emit(&report, args.output, ws.quiet)?;
    Ok(render::promote::report_mirror_failures(&report))
}

//! `openim-release notes`: arguments → [`crate::notes::collect`] → output.

use crate::cli::{GlobalArgs, NotesArgs};
use crate::error;
use crate::notes::{self, NotesRequest, Shipped};
use crate::output;
use crate::workspace::Workspace;
use anyhow::Result;

pub fn run(global: &GlobalArgs, args: &NotesArgs) -> Result<i32> {
    let ws = Workspace::open(global)?;
    let images = match &args.digests {
        Some(path) => notes::shipped_from_file(&ws.dir.join(path))?,
        None => Vec::new(),
    };
    let req = NotesRequest {
        tag: args.tag.clone(),
        from: args.from.clone(),
        to: args.to.clone(),
        shipped: Shipped {
            images,
            ..Shipped::default()
        },
    };
    let mut report = notes::collect(&ws, &req)?;
    if args.publish {
        report.github_release = Some(notes::publish::for_tag(&ws, &report)?);
    }
    output::emit(&report, args.output, ws.quiet)?;
    Ok(error::OK)
}

//! `openim-release tag`: arguments → [`crate::tag::apply::run`] → output.

use crate::cli::{GlobalArgs, TagArgs};
use crate::error;
use crate::output;
use crate::tag::apply::{self, TagRequest};
use crate::workspace::Workspace;
use anyhow::Result;

pub fn run(global: &GlobalArgs, args: &TagArgs) -> Result<i32> {
    let ws = Workspace::open(global)?;
    let req = TagRequest {
        stage: args.stage,
        version: args.version.clone(),
        bump: args.bump,
        date: args.date.clone(),
        aliases: !args.no_aliases,
        branch: args.branch.clone(),
        create: args.git.create,
        push: args.git.push,
        prune: args.git.prune,
        remote: args.git.remote.clone(),
    };
    let report = apply::run(&ws, &req)?;
    output::emit(&report, args.output, ws.quiet)?;
    Ok(error::OK)
}

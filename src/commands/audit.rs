//! `openim-release audit`: arguments → [`crate::audit::run`] → output; exit
//! 1 when something disagrees.

use crate::audit::{self, AuditRequest};
use crate::cli::{AuditArgs, GlobalArgs};
use crate::error;
use crate::output;
use crate::workspace::Workspace;
use anyhow::Result;

pub fn run(global: &GlobalArgs, args: &AuditArgs) -> Result<i32> {
    let ws = Workspace::open(global)?;
    let req = AuditRequest {
        tags: args.tag.clone(),
        last: args.last,
        services: args.service.clone(),
        registries: args.registry.clone(),
        deploy: args.deploy,
        deploy_branches: args.deploy_branch.clone(),
        fix: args.fix,
        jobs: Some(args.jobs),
    };
    let report = audit::run(&ws, &req)?;
    output::emit(&report, args.output, ws.quiet)?;
    Ok(if report.ok { error::OK } else { error::FAILURE })
}

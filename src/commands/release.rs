//! `openim-release release` and `plan`: arguments → [`crate::release::run`]
//! → output.

use crate::checks::ChecksFailed;
use crate::cli::{GlobalArgs, ReleaseCmdArgs};
use crate::error;
use crate::output;
use crate::release::{self, ReleaseRequest};
use crate::workspace::Workspace;
use anyhow::Result;

pub fn run(global: &GlobalArgs, args: &ReleaseCmdArgs, dry_run: bool) -> Result<i32> {
    let ws = Workspace::open(global)?;
    let req = ReleaseRequest {
        stage: args.stage,
        version: args.version.clone(),
        services: args.service.clone(),
        jobs: args.jobs,
        dry_run,
        skip_build: args.skip_build,
        skip_gitops: args.skip_gitops,
        no_git_tag: args.no_git_tag,
        no_verify: args.no_verify,
        force: args.force,
        sign_key: args.sign.sign_key.clone(),
    };
    let report = release::run(&ws, &req)?;
    output::emit(&report, args.output, ws.quiet)?;
    let failed = report.failed_checks();
    if !failed.is_empty() {
        // The plan is shown; `release` would stop at its checks.
        return Err(ChecksFailed {
            consequence: "so `release` would stop there, before changing anything".into(),
            checks: report.checks.clone().unwrap_or_default(),
        }
        .into());
    }
    Ok(error::OK)
}

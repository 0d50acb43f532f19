//! `openim-release gitops`: arguments → [`crate::deploy::gitops::run`] →
//! output.

use crate::cli::{GitopsArgs, GlobalArgs};
use crate::deploy::gitops::{self, GitopsRequest};
use crate::deploy::plan::{EditOptions, ReleaseChoice};
use crate::error;
use crate::output;
use crate::workspace::Workspace;
use anyhow::Result;

pub fn run(global: &GlobalArgs, args: &GitopsArgs) -> Result<i32> {
    let ws = Workspace::open(global)?;
    let req = GitopsRequest {
        release: ReleaseChoice {
            stage: args.release.stage,
            version: args.release.version.clone(),
            image_tag: args.release.image_tag.clone(),
            digests_file: args.release.digests.clone(),
            digests: Default::default(),
        },
        mode: args.mode,
        base: args.base.clone(),
        stage_name: args.stage_name.clone(),
        services: args.service.clone(),
        edit: EditOptions {
            no_verify: args.edit.no_verify,
            dry_run: args.edit.dry_run,
            strict: args.edit.strict,
        },
        quiet_report: false,
        order: None,
    };
    let report = gitops::run(&ws, &req)?;
    output::emit(&report, args.edit.output, ws.quiet)?;
    Ok(
        if !report.changed && args.edit.exit_code && !report.pushed {
            error::NOTHING_TO_CHANGE
        } else {
            error::OK
        },
    )
}

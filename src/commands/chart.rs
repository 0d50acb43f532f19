//! `openim-release chart bump|apply`: arguments → [`crate::deploy::apply`]
//! → output.

use crate::cli::{ChartCmd, EditArgs, GlobalArgs, ReleaseArgs};
use crate::deploy::apply::{self, ApplyRequest, BumpRequest};
use crate::deploy::plan::{EditOptions, ReleaseChoice};
use crate::error;
use crate::output;
use crate::workspace::Workspace;
use anyhow::Result;

pub fn run(global: &GlobalArgs, cmd: &ChartCmd) -> Result<i32> {
    let ws = Workspace::open(global)?;
    let (report, edit) = match cmd {
        ChartCmd::Bump(args) => (
            apply::bump(
                &ws,
                &BumpRequest {
                    chart_dir: args.chart_dir.clone(),
                    app_version: args.app_version.clone(),
                    image_tag: args.image_tag.clone(),
                    values: args.values.clone(),
                    key: args.key.clone(),
                    chart_bump: args.chart_bump,
                    digest: args.digest.clone(),
                    pin: args.pin,
                    registry: args.registry.clone(),
                    edit: edit_options(&args.edit),
                },
            )?,
            &args.edit,
        ),
        ChartCmd::Apply(args) => (
            apply::apply(
                &ws,
                &ApplyRequest {
                    dir: args.dir.clone(),
                    release: release_choice(&args.release),
                    edit: edit_options(&args.edit),
                },
            )?,
            &args.edit,
        ),
    };
    output::emit(&report, edit.output, ws.quiet)?;
    Ok(if !report.changed && edit.exit_code {
        error::NOTHING_TO_CHANGE
    } else {
        error::OK
    })
}

/// `--no-verify`, `--dry-run`, `--strict`.
pub fn edit_options(edit: &EditArgs) -> EditOptions {
    EditOptions {
        no_verify: edit.no_verify,
        dry_run: edit.dry_run,
        strict: edit.strict,
    }
}

/// `--stage`, `--version`, `--image-tag`, `--digests`.
pub fn release_choice(args: &ReleaseArgs) -> ReleaseChoice {
    ReleaseChoice {
        stage: args.stage,
        version: args.version.clone(),
        image_tag: args.image_tag.clone(),
        digests_file: args.digests.clone(),
        digests: Default::default(),
    }
}

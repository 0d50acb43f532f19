//! `openim-release build` (and `build matrix`, `build merge`): arguments →
//! [`crate::build::run`] → output.

use crate::build::run::{self, BuildRequest, MergeRequest, Selection, TagChoice};
use crate::checks::ChecksFailed;
use crate::cli::{BuildAction, BuildArgs, BuildCmd, GlobalArgs, ImageSelect, TagSource};
use crate::error;
use crate::output::{self, render};
use crate::workspace::Workspace;
use anyhow::{Context, Result};

pub fn run(global: &GlobalArgs, cmd: &BuildCmd) -> Result<i32> {
    let ws = Workspace::open(global)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match &cmd.action {
        None if cmd.run.check => {
            let report = runtime.block_on(run::check(&ws, &request(&cmd.run)))?;
            output::emit(&report, cmd.run.output, ws.quiet)?;
            if report.ready {
                Ok(error::OK)
            } else {
                Err(ChecksFailed {
                    consequence: "so the build stopped before changing anything".into(),
                    checks: report.checks,
                }
                .into())
            }
        }
        None => {
            let report = runtime.block_on(run::build(&ws, &request(&cmd.run)))?;
            output::emit(&report, cmd.run.output, ws.quiet)?;
            Ok(render::build::report_failures(&report))
        }
        Some(BuildAction::Matrix(args)) => {
            let report = run::matrix(&ws, &selection(&args.select))?;
            output::emit(&report, args.output, ws.quiet)?;
            Ok(error::OK)
        }
        Some(BuildAction::Merge(args)) => {
            let req = MergeRequest {
                files: args.files.clone(),
                tags: tags(&args.tags),
                services: args.service.clone(),
                partial: args.partial,
                dry_run: args.dry_run,
                sign_key: args.sign.sign_key.clone(),
            };
            let report = runtime.block_on(run::merge(&ws, &req))?;
            output::emit(&report, args.output, ws.quiet)?;
            Ok(render::build::report_failures(&report))
        }
    }
}

fn tags(src: &TagSource) -> TagChoice {
    TagChoice {
        stage: src.stage,
        tags: src.tag.clone(),
        version: src.version.clone(),
        branch: src.branch.clone(),
    }
}

fn selection(select: &ImageSelect) -> Selection {
    Selection {
        services: select.service.clone(),
        platforms: select.platform.clone(),
        registries: select.registry.clone(),
    }
}

fn request(args: &BuildArgs) -> BuildRequest {
    BuildRequest {
        tags: tags(&args.tags),
        select: selection(&args.select),
        jobs: args.jobs,
        dry_run: args.dry_run,
        all_or_none: args.all_or_none,
        no_push: args.no_push,
        rebuild: args.rebuild,
        no_cache: args.no_cache,
        push_by_digest: args.push_by_digest,
        load: args.load,
        sign_key: args.sign.sign_key.clone(),
    }
}

//! `openim-release bundle export|import`: arguments →
//! [`crate::promote::bundle`] → output.

use crate::build::run::TagChoice;
use crate::cli::{BundleCmd, GlobalArgs};
use crate::error;
use crate::output;
use crate::promote::bundle::{self, ExportRequest, ImportRequest};
use crate::workspace::Workspace;
use anyhow::{Context, Result};

pub fn run(global: &GlobalArgs, cmd: &BundleCmd) -> Result<i32> {
    let ws = Workspace::open(global)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cmd {
        BundleCmd::Export(args) => {
            let req = ExportRequest {
                file: ws.dir.join(&args.file),
                tags: TagChoice {
                    stage: args.tags.stage,
                    tags: args.tags.tag.clone(),
                    version: args.tags.version.clone(),
                    branch: args.tags.branch.clone(),
                },
                from: args.from.clone(),
                services: args.service.clone(),
                charts: args.chart.clone(),
                deploy_dir: args.deploy_dir.clone(),
                no_charts: args.no_charts,
                jobs: args.jobs,
                dry_run: args.dry_run,
            };
            let mut report = runtime.block_on(bundle::export(&ws, &req))?;
            report.file = args.file.display().to_string();
            output::emit(&report, args.output, ws.quiet)?;
        }
        BundleCmd::Import(args) => {
            let req = ImportRequest {
                file: ws.dir.join(&args.file),
                registry: args.registry.clone(),
                insecure: args.insecure,
                jobs: args.jobs,
                dry_run: args.dry_run,
            };
            let mut report = runtime.block_on(bundle::import(&ws, &req))?;
            report.file = args.file.display().to_string();
            output::emit(&report, args.output, ws.quiet)?;
        }
    }
    Ok(error::OK)
}

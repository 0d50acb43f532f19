//! `openim-release attest` and `verify`: arguments →
//! [`crate::supply::run`] → output.

use crate::cli::{AttestArgs, GlobalArgs, VerifyArgs};
use crate::error;
use crate::output;
use crate::supply::run::{self, AttestRequest, VerifyRequest};
use crate::workspace::Workspace;
use anyhow::Result;

pub fn attest(global: &GlobalArgs, args: &AttestArgs) -> Result<i32> {
    let ws = Workspace::open(global)?;
    let req = AttestRequest {
        tags: args.tag.clone(),
        services: args.select.service.clone(),
        registries: args.select.registry.clone(),
        sign_key: args.sign.sign_key.clone(),
    };
    let report = run::attest(&ws, &req)?;
    output::emit(&report, args.output, ws.quiet)?;
    Ok(if report.complete() {
        error::OK
    } else {
        error::FAILURE
    })
}

pub fn verify(global: &GlobalArgs, args: &VerifyArgs) -> Result<i32> {
    let ws = Workspace::open(global)?;
    let req = VerifyRequest {
        tags: args.tag.clone(),
        services: args.select.service.clone(),
        registries: args.select.registry.clone(),
        key: args.key.clone(),
        commit: args.commit.clone(),
    };
    let report = run::verify(&ws, &req)?;
    output::emit(&report, args.output, ws.quiet)?;
    Ok(if report.ok { error::OK } else { error::FAILURE })
}

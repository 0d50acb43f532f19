//! One module per subcommand: each loads what it needs, runs the pure rules
//! and applies the result.

pub mod audit;
pub mod build;
pub mod bundle;
pub mod chart;
pub mod gitops;
pub mod init;
pub mod mirror;
pub mod notes;
pub mod release;
pub mod supply;
pub mod tag;

use crate::cli::{Cli, Command};

/// Run the parsed command line; returns the process exit code.
pub fn run(cli: &Cli) -> anyhow::Result<i32> {
    match &cli.command {
        Command::Tag(args) => tag::run(&cli.global, args),
        Command::Build(cmd) => build::run(&cli.global, cmd),
        Command::Mirror(args) => mirror::run(&cli.global, args),
        Command::Bundle(cmd) => bundle::run(&cli.global, cmd),
        Command::Chart(cmd) => chart::run(&cli.global, cmd),
        Command::Gitops(args) => gitops::run(&cli.global, args),
        Command::Release(args) => release::run(&cli.global, args, args.dry_run),
        Command::Plan(args) => release::run(&cli.global, args, true),
        Command::Audit(args) => audit::run(&cli.global, args),
        Command::Notes(args) => notes::run(&cli.global, args),
        Command::Attest(args) => supply::attest(&cli.global, args),
        Command::Verify(args) => supply::verify(&cli.global, args),
        Command::Init(args) => init::run(&cli.global, args),
        Command::Schema => {
            print!("{}", crate::config::json_schema());
            Ok(crate::error::OK)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(*shell, &mut cmd, "openim-release", &mut std::io::stdout());
            Ok(crate::error::OK)
        }
    }
}

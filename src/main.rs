use clap::Parser;
use openim_release::{actions, cli::Cli, commands, config::ConfigError, exit, secret};

fn main() {
    openim_release::git::prefer_lazy_tls_roots();
    let cli = Cli::parse();
    let code = match commands::run(&cli) {
        Ok(code) => code,
        Err(err) => {
            report(&err);
            exit::code_for(&err)
        }
    };
    std::process::exit(code);
}

/// One line on stderr (plus an annotation in GitHub Actions), scrubbed of
/// credentials.
fn report(err: &anyhow::Error) {
    let token = secret::github_token_from_env();
    let secrets: Vec<&secret::Secret> = token.iter().collect();
    let message = secret::scrub(&format!("{err:#}"), &secrets);
    eprintln!("error: {message}");
    if actions::in_actions() {
        let config = err.chain().find_map(|c| c.downcast_ref::<ConfigError>());
        let file = config.map(|c| c.path.display().to_string());
        println!(
            "{}",
            actions::error_annotation(&message, file.as_deref(), config.and_then(|c| c.line))
        );
    }
}

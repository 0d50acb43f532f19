use clap::Parser;
use openim_release::output::actions;
use openim_release::{cli::Cli, commands, config::ConfigError, error};

fn main() {
    let _failpoints = openim_release::failpoint::setup();
    quiet_on_closed_stdout();
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        // Usage errors print clap's text (with the usage line); in GitHub
        // Actions the first line also becomes an annotation.
        if e.use_stderr() && actions::in_actions() {
            let rendered = e.render().to_string();
            let message: Vec<&str> = rendered
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                .take(2)
                .collect();
            let message = message.join(" ");
            actions::command(&actions::error_annotation(
                message.trim_start_matches("error: "),
                None,
                None,
            ));
        }
        e.exit()
    });
    // After parsing, so that --help and --version skip libgit2's start-up;
    // before any thread exists.
    openim_release::clients::git::defer_tls_roots();
    openim_release::output::log::init(cli.global.verbose);
    let code = match commands::run(&cli) {
        Ok(code) => code,
        Err(err) => {
            report(&err);
            error::code_for(&err)
        }
    };
    std::process::exit(code);
}

/// `openim-release tag --stage dev | head -1`: when the reader of stdout
/// goes away, print! panics with EPIPE (Rust ignores SIGPIPE). What was to be
/// printed has no reader, and the work is done or never had effects (stdout
/// carries results and plans only; progress goes to stderr): end quietly
/// with 0 instead of a panic and exit 101.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if payload.contains("failed printing to stdout") && payload.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// One line on stderr (plus an annotation in GitHub Actions), scrubbed of
/// credentials.
fn report(err: &anyhow::Error) {
    let message = error::one_line(err);
    openim_release::say!("error: {message}");
    if actions::in_actions() {
        let config = err.chain().find_map(|c| c.downcast_ref::<ConfigError>());
        let file = config.map(|c| c.path.display().to_string());
        actions::command(&actions::error_annotation(
            &message,
            file.as_deref(),
            config.and_then(|c| c.line),
        ));
    }
}

//! The `flowodm` command: parses the command line and hands it to [`flowodm_cli::run`].
//!
//! Exit status: 0 success, 1 a check failed, 2 usage or runtime error (see `flowodm --help`).

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    // A bug must still end as one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        eprintln!("error: internal error: {}", what.replace('\n', " "));
        eprintln!("hint: this is a bug in flowodm; please report it with the command you ran");
    }));
    let cli = match std::panic::catch_unwind(flowodm_cli::Cli::try_parse) {
        Ok(Ok(cli)) => cli,
        // --help and --version; a bare `flowodm` prints the help and exits 2.
        Ok(Err(e))
            if !e.use_stderr()
                || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            e.exit()
        }
        Ok(Err(e)) => {
            let (message, hint) = flowodm_cli::usage_error(&e.render().to_string());
            eprintln!("error: {message}");
            eprintln!("hint: {hint}");
            return ExitCode::from(2);
        }
        Err(_) => return ExitCode::from(2),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(flowodm_cli::run(cli))
    }));
    match result {
        Ok(Ok(outcome)) => outcome.into(),
        Ok(Err(e)) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {}", flowodm_cli::one_line(&e));
            if let Some(hint) = flowodm_cli::hint(&e) {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(flowodm_cli::exit_code(&e))
        }
        Err(_) => ExitCode::from(2),
    }
}

/// A reader that went away (`flowodm consume … | head`) is not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

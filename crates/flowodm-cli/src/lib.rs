//! The `flowodm` command-line tool: schema registry and Kafka chores from a shell or a CI job.
//!
//! Semver exempt: the command line is the interface; this library only exists so the binary
//! stays a thin shell and the commands can be tested.
//!
//! Layout: [`cli`] defines the command line (clap derive), [`context`] turns the global flags
//! into clients, and `cmd/` holds one module per command group. A new command is a variant in
//! [`cli::Command`], a module in `cmd/`, and one arm in [`run`].

pub mod avro_json;
pub mod cli;
mod cmd;
pub mod context;
pub mod error;
pub mod output;
mod progress;

use std::process::ExitCode;

pub use cli::Cli;
use cli::{Command, GroupsCommand, TopicsCommand};
pub use error::{exit_code, hint, one_line, usage_error};

/// The exit status of a command that ran to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything worked: exit 0.
    Ok,
    /// The command ran, but what it checked failed (an incompatible schema, messages that could
    /// not be decoded, input lines that could not be produced): exit 1.
    CheckFailed,
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Ok => ExitCode::SUCCESS,
            Outcome::CheckFailed => ExitCode::from(1),
        }
    }
}

/// Runs one command.
pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let ctx = context::Context::new(cli.global, cli.config);
    match cli.command {
        Command::ListSubjects(args) => cmd::registry::list_subjects(&ctx, args).await,
        Command::GetSchema(args) => cmd::registry::get_schema(&ctx, args).await,
        Command::UploadSchema(args) => cmd::registry::upload_schema(&ctx, args).await,
        Command::DeleteSubject(args) => cmd::registry::delete_subject(&ctx, args).await,
        Command::CheckCompatibility(args) => cmd::schema::check_compatibility(&ctx, args).await,
        Command::Validate(args) => cmd::schema::validate_cmd(&ctx, args).await,
        Command::Generate(args) => cmd::generate::run(&ctx, args).await,
        Command::Topics { command } => match command {
            TopicsCommand::List(args) => cmd::topics::list(&ctx, args).await,
            TopicsCommand::Create(args) => cmd::topics::create(&ctx, args).await,
            TopicsCommand::Describe(args) => cmd::topics::describe(&ctx, args).await,
            TopicsCommand::Delete(args) => cmd::topics::delete(&ctx, args).await,
        },
        Command::Groups { command } => match command {
            GroupsCommand::List(args) => cmd::groups::list(&ctx, args).await,
            GroupsCommand::Describe(args) => cmd::groups::describe(&ctx, args).await,
        },
        Command::Produce(args) => cmd::produce::run(&ctx, args).await,
        Command::Consume(args) => cmd::consume::run(&ctx, args).await,
        Command::Completions { shell } => cmd::completions(shell),
    }
}

//! The `flowodm` command-line tool: schema registry chores from a shell or a CI job.
//!
//! Semver exempt: the command line is the interface; this library only exists so the binary
//! stays a thin shell and the commands can be tested.
//!
//! Exit codes: 0 success, 2 error (a message on stderr, one line plus a hint).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use flowodm::registry::SchemaRegistryClient;

/// Typed, schema-first Kafka: schema registry tools.
#[derive(Debug, Parser)]
#[command(name = "flowodm", version, about)]
pub struct Cli {
    /// The schema registry's API root, e.g. http://127.0.0.1:8081
    #[arg(long, global = true, env = "SCHEMA_REGISTRY_URL")]
    pub registry_url: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the registry's subjects, one per line.
    ListSubjects,
    /// Print a subject's schema.
    GetSchema {
        /// The subject, e.g. orders-value.
        #[arg(long)]
        subject: String,
        /// A version number, or `latest`.
        #[arg(long, default_value = "latest")]
        version: String,
        /// Write the schema to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Register an .avsc file under a subject and print its id.
    UploadSchema {
        /// The Avro schema file.
        #[arg(long)]
        avro: PathBuf,
        /// The subject, e.g. orders-value.
        #[arg(long)]
        subject: String,
    },
}

/// Runs one command.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let registry = || -> anyhow::Result<SchemaRegistryClient> {
        let url = cli
            .registry_url
            .as_deref()
            .context("no schema registry given: pass --registry-url or set SCHEMA_REGISTRY_URL")?;
        Ok(SchemaRegistryClient::new(url)?)
    };
    match &cli.command {
        Command::ListSubjects => {
            let mut subjects = registry()?.subjects().await?;
            subjects.sort();
            for s in subjects {
                println!("{s}");
            }
        }
        Command::GetSchema {
            subject,
            version,
            output,
        } => {
            let registry = registry()?;
            let found = if version == "latest" {
                registry.latest_version(subject).await?
            } else {
                let v: u32 = version.parse().with_context(|| {
                    format!("--version must be a number or `latest`, not `{version}`")
                })?;
                registry.version(subject, v).await?
            };
            let pretty = pretty_json(&found.schema);
            match output {
                Some(path) => std::fs::write(path, pretty + "\n")
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => println!("{pretty}"),
            }
        }
        Command::UploadSchema { avro, subject } => {
            let text = std::fs::read_to_string(avro)
                .with_context(|| format!("cannot read {}", avro.display()))?;
            let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!(
                    "{} is not valid JSON at line {}, column {}: {e}",
                    avro.display(),
                    e.line(),
                    e.column()
                )
            })?;
            let id = registry()?.register(subject, &json.to_string()).await?;
            println!("{id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A hint for a failed command, when there is a likely fix.
pub fn hint(error: &anyhow::Error) -> Option<&'static str> {
    let err = error.downcast_ref::<flowodm::Error>()?;
    match err {
        flowodm::Error::RegistryTransport { .. } => {
            Some("is the registry running, and is the URL its API root (for Apicurio, …/apis/ccompat/v7)?")
        }
        flowodm::Error::Registry { error_code: 40401, .. } => {
            Some("list the subjects with `flowodm list-subjects`")
        }
        _ => None,
    }
}

fn pretty_json(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| text.to_string())
}

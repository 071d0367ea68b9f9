//! `generate`: Rust source from Avro schema files or registry subjects, thin over
//! `flowodm::codegen`.

use std::path::Path;

use anyhow::Context as _;
use flowodm::codegen::{self, Generator};
use flowodm::schema::AvroSchema;

use crate::cli::GenerateArgs;
use crate::cmd::registry::parse_version;
use crate::context::Context;
use crate::error::Hinted;
use crate::output::line;
use crate::Outcome;

/// Generates one source for the files, or one per subject, to stdout or `--out`.
pub async fn run(ctx: &Context, args: GenerateArgs) -> anyhow::Result<Outcome> {
    let mut generator = Generator::new();
    if let Some(topic) = &args.topic {
        generator = generator.topic(topic.clone());
    }
    if let Some(key) = &args.key {
        generator = generator.key(key.clone());
    }
    if !args.avro.is_empty() {
        // Bad files are reported as `validate` reports them: with line and column.
        AvroSchema::from_files(&args.avro)?;
        let source = generator.generate_files(&args.avro).map_err(refused)?;
        return emit(&source, args.out.as_deref());
    }
    if args.subject.len() > 1 {
        if args.topic.is_some() {
            return Err(Hinted::new(
                "--topic names one topic, but several subjects were given",
                "generate the subjects one at a time, each with its own --topic",
            )
            .into());
        }
        match &args.out {
            Some(dir) if !dir.is_file() => std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?,
            _ => {
                return Err(Hinted::new(
                    "several subjects give several sources, one file each",
                    "pass --out DIR, a directory to write them into",
                )
                .into())
            }
        }
    }
    let version = parse_version(&args.version)?;
    let registry = ctx.registry()?;
    let mut sources = Vec::with_capacity(args.subject.len());
    let mut asked = std::collections::HashSet::new();
    // A subject given twice is generated once.
    for subject in args.subject.iter().filter(|s| asked.insert(s.as_str())) {
        let source = generator
            .generate_from_registry(&registry, subject, version)
            .await
            .map_err(refused)?;
        sources.push((subject, source));
    }
    if let Some(out) = args.out.as_deref().filter(|_| sources.len() > 1) {
        refuse_shared_files(&sources, out)?;
    }
    for (_, source) in &sources {
        emit(source, args.out.as_deref())?;
    }
    Ok(Outcome::Ok)
}

/// Two subjects whose main types share a name would go to the same file, the second
/// overwriting the first: refused before anything is written.
fn refuse_shared_files(sources: &[(&String, String)], out: &Path) -> anyhow::Result<()> {
    let mut taken = std::collections::HashMap::new();
    for (subject, source) in sources {
        let path = codegen::target_path(source, out)?;
        if let Some(first) = taken.insert(path.clone(), subject) {
            return Err(Hinted::new(
                format!(
                    "subjects {first} and {subject} would both be written to {}",
                    path.display()
                ),
                "their main types share a name: generate each with its own --out FILE",
            )
            .into());
        }
    }
    Ok(())
}

/// A schema the generator cannot express, with where to read what it can; other errors as
/// they are.
fn refused(e: flowodm::Error) -> anyhow::Error {
    if e.kind() == flowodm::ErrorKind::Schema {
        anyhow::Error::new(e).context(Hinted::new(
            "cannot generate Rust types",
            "docs/codegen.md lists how schemas map to Rust and what the generator refuses",
        ))
    } else {
        e.into()
    }
}

/// The source on stdout, or written to `out` with the path it went to on stdout.
fn emit(source: &str, out: Option<&Path>) -> anyhow::Result<Outcome> {
    match out {
        None => line(source.trim_end_matches('\n'))?,
        Some(out) => {
            let path = codegen::write(source, out)?;
            line(&format!("wrote {}", path.display()))?;
        }
    }
    Ok(Outcome::Ok)
}

//! Schema registry commands: list-subjects, get-schema, upload-schema, delete-subject.

use std::path::Path;

use anyhow::Context as _;
use flowodm::registry::{error_code, Schema, Version};
use serde_json::Value as Json;

use crate::cli::{DeleteSubjectArgs, Format, GetSchemaArgs, ListArgs, UploadSchemaArgs};
use crate::context::Context;
use crate::error::Hinted;
use crate::output::line;
use crate::Outcome;

/// `list-subjects`: one per line, sorted, or a JSON array.
pub async fn list_subjects(ctx: &Context, args: ListArgs) -> anyhow::Result<Outcome> {
    let mut subjects = ctx.registry()?.subjects().await?;
    subjects.sort();
    match args.output {
        Format::Table => {
            for s in subjects {
                line(&s)?;
            }
        }
        Format::Json => line(&serde_json::to_string_pretty(&subjects)?)?,
    }
    Ok(Outcome::Ok)
}

/// `--version`: a number or `latest`.
pub fn parse_version(text: &str) -> anyhow::Result<Version> {
    if text.eq_ignore_ascii_case("latest") {
        return Ok(Version::Latest);
    }
    match text.parse::<u32>() {
        Ok(n) if n > 0 => Ok(Version::Number(n)),
        _ => Err(Hinted::new(
            format!("--version must be a number or `latest`, not `{text}`"),
            "versions count from 1",
        )
        .into()),
    }
}

/// `get-schema`: the schema, pretty-printed, to stdout or a file.
pub async fn get_schema(ctx: &Context, args: GetSchemaArgs) -> anyhow::Result<Outcome> {
    let version = parse_version(&args.version)?;
    let found = ctx
        .registry()?
        .subject_version(&args.subject, version)
        .await?;
    let pretty = serde_json::from_str::<Json>(&found.schema)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or(found.schema);
    match &args.output {
        Some(path) => std::fs::write(path, pretty + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => line(&pretty)?,
    }
    Ok(Outcome::Ok)
}

/// Reads an `.avsc` file and checks that it is JSON and an Avro schema; the compact text.
pub fn read_avsc(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Hinted::new(
            format!("cannot read {}: {e}", path.display()),
            "check the path given to --avro",
        )
    })?;
    let json: Json = serde_json::from_str(&text).map_err(|e| {
        Hinted::new(
            format!(
                "{} is not valid JSON at line {}, column {}: {e}",
                path.display(),
                e.line(),
                e.column()
            ),
            crate::error::JSON_HINT,
        )
    })?;
    let compact = json.to_string();
    apache_avro::Schema::parse_str(&compact).map_err(|e| {
        Hinted::new(
            format!("{} is not a valid Avro schema: {e}", path.display()),
            crate::error::AVRO_SPEC_HINT,
        )
    })?;
    Ok(compact)
}

/// `upload-schema`: registers the file (after setting the level, if given) and prints the id.
pub async fn upload_schema(ctx: &Context, args: UploadSchemaArgs) -> anyhow::Result<Outcome> {
    let text = read_avsc(&args.avro)?;
    let registry = ctx.registry()?;
    if let Some(level) = args.compatibility {
        registry
            .set_subject_compatibility(&args.subject, level.into())
            .await
            .context("cannot set the subject's compatibility level")?;
    }
    match registry
        .register_schema(&args.subject, &Schema::avro(text), false)
        .await
    {
        Ok(id) => {
            line(&id.to_string())?;
            Ok(Outcome::Ok)
        }
        Err(e) if e.is_incompatible_schema() => {
            Err(anyhow::Error::new(e)
                .context(format!("{} was not registered", args.avro.display())))
        }
        Err(e) => Err(e.into()),
    }
}

/// `delete-subject`: soft delete, then with `--permanent` a hard one.
pub async fn delete_subject(ctx: &Context, args: DeleteSubjectArgs) -> anyhow::Result<Outcome> {
    let registry = ctx.registry()?;
    let soft = registry.delete_subject(&args.subject).await;
    let versions = match soft {
        Ok(v) => Some(v),
        Err(e)
            if args.permanent
                && e.registry_error_code() == Some(error_code::SUBJECT_SOFT_DELETED) =>
        {
            None
        }
        Err(e) => return Err(e.into()),
    };
    let versions = if args.permanent {
        registry.delete_subject_permanently(&args.subject).await?
    } else {
        versions.unwrap_or_default()
    };
    let list = versions
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let how = if args.permanent {
        "permanently deleted"
    } else {
        "deleted"
    };
    line(&format!("{how} {} (versions {list})", args.subject))?;
    Ok(Outcome::Ok)
}

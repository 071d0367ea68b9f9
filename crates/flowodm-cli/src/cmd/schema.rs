//! Schema checks: check-compatibility and validate, thin over `flowodm::schema`.

use std::path::{Path, PathBuf};

use flowodm::registry::CompatibilityLevel;
use flowodm::schema::{
    check_dir, compare_with_registry, validate, validate_dir, AvroSchema, Breaks, Finding,
    Incompatibility, RegistryCheck, ValidationReport, Verdicts,
};
use serde_json::{json, Value as Json};

use crate::cli::{CheckCompatibilityArgs, Format, ValidateArgs};
use crate::cmd::registry::parse_version;
use crate::context::Context;
use crate::error::Hinted;
use crate::output::line;
use crate::Outcome;

/// `check-compatibility`: the local verdict with its reasons, the registry's verdict, and
/// whether they agree.
pub async fn check_compatibility(
    ctx: &Context,
    args: CheckCompatibilityArgs,
) -> anyhow::Result<Outcome> {
    let candidate = AvroSchema::from_file(&args.avro)?;
    let registry = ctx.registry()?;
    let level = args.level.map(CompatibilityLevel::from);
    let verdicts = compare_with_registry(&registry, &args.subject, &candidate, level).await?;
    let ok = passes(&verdicts, level);
    match args.output {
        Format::Json => line(&serde_json::to_string_pretty(&verdicts_json(
            &verdicts, ok,
        ))?)?,
        Format::Table => line(&verdicts_text(&verdicts))?,
    }
    Ok(if ok {
        Outcome::Ok
    } else {
        Outcome::CheckFailed
    })
}

/// The verdict the exit status follows: the local check at the level asked for; when that is
/// the registry's own level, the registry must say compatible too.
fn passes(v: &Verdicts, asked: Option<CompatibilityLevel>) -> bool {
    match asked {
        Some(level) if level != v.registry_level => v.local.is_compatible(),
        _ => v.is_compatible(),
    }
}

fn word(compatible: bool) -> &'static str {
    if compatible {
        "compatible"
    } else {
        "NOT compatible"
    }
}

/// Both verdicts for people: one line each, the local reasons under the first.
fn verdicts_text(v: &Verdicts) -> String {
    let local = &v.local;
    let mut out = match &v.registry {
        None => format!(
            "{}: compatible: the subject has no versions yet, so there is nothing to be \
             incompatible with",
            v.subject
        ),
        Some(_) if local.checked.is_empty() => format!(
            "{}: local check at {}: compatible ({} compares with no version)",
            v.subject, local.level, local.level
        ),
        Some(_) => format!(
            "{}: local check at {}: {} (compared with {})",
            v.subject,
            local.level,
            word(local.is_compatible()),
            local.checked.join(", ")
        ),
    };
    for reason in &local.incompatibilities {
        out.push_str(&format!("\n  - {reason}"));
    }
    if let Some(theirs) = &v.registry {
        out.push_str(&format!(
            "\n{}: registry at {}: {}",
            v.subject,
            v.registry_level,
            word(theirs.is_compatible)
        ));
        for m in &theirs.messages {
            out.push_str(&format!("\n  - {m}"));
        }
        out.push('\n');
        out.push_str(&if v.agree() {
            "the local check and the registry agree".to_string()
        } else if v.local.level != v.registry_level {
            format!(
                "the verdicts differ: the local check used {}, the registry {}",
                v.local.level, v.registry_level
            )
        } else if !v.local.is_compatible() {
            "the verdicts differ: the registry accepts what the local check refuses for the \
             reasons above"
                .to_string()
        } else {
            "the verdicts differ: the registry refuses what the local check accepts".to_string()
        });
    }
    out
}

fn reason_json(i: &Incompatibility) -> Json {
    json!({
        "path": i.path,
        "message": i.message,
        "breaks": match i.breaks {
            Breaks::NewReaders => "new_readers",
            Breaks::OldReaders => "old_readers",
        },
        "against": i.against,
        "text": i.to_string(),
    })
}

fn verdicts_json(v: &Verdicts, ok: bool) -> Json {
    json!({
        "subject": v.subject,
        "compatible": ok,
        "local": {
            "level": v.local.level.as_str(),
            "compatible": v.local.is_compatible(),
            "checked": v.local.checked,
            "reasons": v.local.incompatibilities.iter().map(reason_json).collect::<Vec<_>>(),
        },
        "registry": v.registry.as_ref().map(|c| json!({
            "level": v.registry_level.as_str(),
            "compatible": c.is_compatible,
            "messages": c.messages,
        })),
        "agree": v.agree(),
    })
}

/// `validate`: files as Avro, files against a registry version, or an exported directory.
pub async fn validate_cmd(ctx: &Context, args: ValidateArgs) -> anyhow::Result<Outcome> {
    if let Some(dir) = &args.dir {
        return validate_directory(ctx, dir, &args).await;
    }
    let schemas = match AvroSchema::from_files(&args.avro) {
        Ok(s) => s,
        // An invalid file is what this command looks for: a failed check, not a crash.
        Err(e @ flowodm::Error::SchemaFile { .. }) => return report_invalid_file(e, args.output),
        Err(e) => return Err(e.into()),
    };
    let Some(subject) = &args.subject else {
        let rows: Vec<Json> = schemas
            .iter()
            .map(|s| {
                json!({
                    "file": s.origin().to_string(),
                    "valid": true,
                    "type": s.full_name().unwrap_or_else(|| kind_of(s)),
                })
            })
            .collect();
        match args.output {
            Format::Json => line(&serde_json::to_string_pretty(&rows)?)?,
            Format::Table => {
                for s in &schemas {
                    let what = match s.full_name() {
                        Some(name) => format!("{} {name}", kind_of(s)),
                        None => kind_of(s),
                    };
                    line(&format!("{}: a valid Avro schema ({what})", s.origin()))?;
                }
            }
        }
        return Ok(Outcome::Ok);
    };
    let version = parse_version(&args.version)?;
    let registry = ctx.registry()?;
    let expected = AvroSchema::from_registry(&registry, subject, version).await?;
    let reports: Vec<ValidationReport> = schemas.iter().map(|s| validate(s, &expected)).collect();
    let ok = reports.iter().all(ValidationReport::is_valid);
    match args.output {
        Format::Json => {
            let rows: Vec<Json> = reports.iter().map(validation_json).collect();
            line(&serde_json::to_string_pretty(&rows)?)?
        }
        Format::Table => {
            for r in &reports {
                line(&r.to_string())?;
            }
        }
    }
    Ok(if ok {
        Outcome::Ok
    } else {
        Outcome::CheckFailed
    })
}

/// `record`, `enum`, `array`, … for a schema.
fn kind_of(s: &AvroSchema) -> String {
    let json: Json = serde_json::from_str(s.json()).unwrap_or(Json::Null);
    match &json {
        Json::String(t) => t.clone(),
        Json::Array(_) => "union".into(),
        Json::Object(o) => o
            .get("type")
            .and_then(Json::as_str)
            .unwrap_or("schema")
            .to_string(),
        _ => "schema".into(),
    }
}

/// An unreadable or invalid file, reported as the failed check it is (exit status 1).
fn report_invalid_file(e: flowodm::Error, output: Format) -> anyhow::Result<Outcome> {
    let flowodm::Error::SchemaFile {
        path,
        line: at_line,
        column,
        message,
    } = &e
    else {
        return Err(e.into());
    };
    match output {
        Format::Json => line(&serde_json::to_string_pretty(&json!([{
            "file": path.display().to_string(),
            "valid": false,
            "line": at_line,
            "column": column,
            "error": message,
        }]))?)?,
        Format::Table => {
            let hint = if at_line.is_some() {
                crate::error::JSON_HINT
            } else {
                crate::error::AVRO_SPEC_HINT
            };
            eprintln!("error: {e}\nhint: {hint}");
        }
    }
    Ok(Outcome::CheckFailed)
}

fn findings_json(f: &[Finding]) -> Vec<Json> {
    f.iter()
        .map(|f| json!({"path": f.path, "message": f.message}))
        .collect()
}

fn validation_json(r: &ValidationReport) -> Json {
    json!({
        "file": r.model,
        "against": r.expected,
        "valid": r.is_valid(),
        "errors": findings_json(&r.errors),
        "warnings": findings_json(&r.warnings),
    })
}

/// `validate --dir`: every `<subject>.avsc` against its subject.
async fn validate_directory(
    ctx: &Context,
    dir: &Path,
    args: &ValidateArgs,
) -> anyhow::Result<Outcome> {
    let registry = ctx.registry()?;
    let level = args.level.map(CompatibilityLevel::from);
    let check = check_dir(&registry, dir, level).await?;
    if check.subjects.is_empty() {
        return Err(Hinted::new(
            format!("{} holds no .avsc files", dir.display()),
            "export the models' schemas there first (ModelSchemas::export_dir)",
        )
        .into());
    }
    let strict = if args.strict {
        Some(validate_dir(&registry, dir).await?)
    } else {
        None
    };
    let mut ok = check.subjects.iter().all(|s| passes(&s.verdicts, level));
    if let Some(reports) = &strict {
        ok &= reports.iter().all(|(_, r)| r.is_valid());
    }
    match args.output {
        Format::Json => line(&serde_json::to_string_pretty(&dir_json(
            &check,
            strict.as_deref(),
            level,
            ok,
        ))?)?,
        Format::Table => line(&dir_text(&check, strict.as_deref(), level, ok))?,
    }
    Ok(if ok {
        Outcome::Ok
    } else {
        Outcome::CheckFailed
    })
}

fn dir_text(
    check: &RegistryCheck,
    strict: Option<&[(String, ValidationReport)]>,
    level: Option<CompatibilityLevel>,
    ok: bool,
) -> String {
    let mut out = String::new();
    for s in &check.subjects {
        let file = file_name(&s.model);
        out.push_str(&format!("[{file}]\n{}\n", verdicts_text(&s.verdicts)));
        if let Some((_, r)) = strict.and_then(|r| r.iter().find(|(n, _)| *n == s.verdicts.subject))
        {
            out.push_str(&format!("{r}\n"));
        }
    }
    let failing = check
        .subjects
        .iter()
        .filter(|s| !passes(&s.verdicts, level))
        .count();
    let invalid = strict.map_or(0, |r| r.iter().filter(|(_, r)| !r.is_valid()).count());
    out.push_str(&format!(
        "{} schema file(s) checked: {}",
        check.subjects.len(),
        if ok {
            "all fit the registry".to_string()
        } else {
            let mut parts = vec![format!("{failing} incompatible")];
            if strict.is_some() {
                parts.push(format!(
                    "{invalid} differ from their subject's latest version"
                ));
            }
            parts.join(", ")
        }
    ));
    out
}

fn dir_json(
    check: &RegistryCheck,
    strict: Option<&[(String, ValidationReport)]>,
    level: Option<CompatibilityLevel>,
    ok: bool,
) -> Json {
    let files: Vec<Json> = check
        .subjects
        .iter()
        .map(|s| {
            let mut v = verdicts_json(&s.verdicts, passes(&s.verdicts, level));
            v["file"] = json!(s.model);
            if let Some((_, r)) =
                strict.and_then(|r| r.iter().find(|(n, _)| *n == s.verdicts.subject))
            {
                v["validation"] = validation_json(r);
            }
            v
        })
        .collect();
    json!({"ok": ok, "files": files})
}

fn file_name(path: &str) -> String {
    PathBuf::from(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
}

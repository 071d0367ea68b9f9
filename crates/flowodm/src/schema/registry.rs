//! Compatibility against a registry subject: locally against its stored versions, and the
//! registry's own verdict; and the one-call check of every model of an application.

use std::fmt;
use std::path::{Path, PathBuf};

use super::compat::{check_compatibility, CompatibilityReport};
use super::load::{AvroSchema, Origin};
use super::validate::{validate, Finding, ValidationReport};
use crate::error::{Error, Result};
use crate::registry::{
    CompatibilityCheck, CompatibilityLevel, Schema, SchemaRegistryClient, Version,
};
use crate::Model;

/// The stored versions of `subject`, oldest first, parsed; empty when the subject does not exist.
pub async fn subject_versions(
    registry: &SchemaRegistryClient,
    subject: &str,
) -> Result<Vec<AvroSchema>> {
    let numbers = match registry.versions(subject).await {
        Ok(v) => v,
        Err(e) if e.is_subject_not_found() || e.is_not_found() => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::with_capacity(numbers.len());
    for n in numbers {
        out.push(AvroSchema::from_registry(registry, subject, n).await?);
    }
    Ok(out)
}

/// Checks `new` locally against the stored versions of `subject` at `level`; `None` uses the
/// level the registry applies to the subject.
///
/// The registry is only read: nothing is registered or changed.
pub async fn check_subject(
    registry: &SchemaRegistryClient,
    subject: &str,
    new: &AvroSchema,
    level: Option<CompatibilityLevel>,
) -> Result<CompatibilityReport> {
    let level = match level {
        Some(l) => l,
        None => subject_level(registry, subject).await?,
    };
    let previous = subject_versions(registry, subject).await?;
    Ok(check_compatibility(new, &previous, level))
}

/// The level the registry applies to `subject`: its own, else the global one (also for a
/// subject that does not exist yet, which some registries answer with "subject not found").
async fn subject_level(
    registry: &SchemaRegistryClient,
    subject: &str,
) -> Result<CompatibilityLevel> {
    match registry.effective_compatibility(subject).await {
        Ok(level) => Ok(level),
        Err(e) if e.is_not_found() => registry.global_compatibility().await,
        Err(e) => Err(e),
    }
}

/// The local verdict and the registry's verdict on one schema, side by side.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Verdicts {
    /// The subject.
    pub subject: String,
    /// The local check, at the level asked for.
    pub local: CompatibilityReport,
    /// The level the registry applies to the subject, which its verdict is about.
    pub registry_level: CompatibilityLevel,
    /// The registry's answer (`verbose=true`), or `None` when the subject has no version yet
    /// (then there is nothing to be incompatible with). Registries that do not give reasons
    /// (Apicurio's ccompat API) leave `messages` empty.
    pub registry: Option<CompatibilityCheck>,
}

impl Verdicts {
    /// Whether both verdicts agree.
    pub fn agree(&self) -> bool {
        let theirs = self.registry.as_ref().is_none_or(|c| c.is_compatible);
        self.local.is_compatible() == theirs
    }

    /// Whether both say compatible.
    pub fn is_compatible(&self) -> bool {
        self.local.is_compatible() && self.registry.as_ref().is_none_or(|c| c.is_compatible)
    }
}

impl fmt::Display for Verdicts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: local check: {}", self.subject, self.local)?;
        match &self.registry {
            None => write!(f, "{}: registry: the subject has no versions", self.subject),
            Some(c) => {
                let verdict = if c.is_compatible {
                    "compatible"
                } else {
                    "NOT compatible"
                };
                write!(
                    f,
                    "{}: registry ({}): {verdict}",
                    self.subject, self.registry_level
                )?;
                for m in &c.messages {
                    write!(f, "\n  - {m}")?;
                }
                Ok(())
            }
        }
    }
}

/// Asks the same question twice: the local check of `new` against the subject's versions at
/// `level` (`None`: the subject's level), and the registry's own test against the latest version
/// under the subject's level. Nothing is registered.
///
/// The registry always answers for the level configured on the subject; when `level` differs,
/// the verdicts may legitimately differ ([`Verdicts::registry_level`] says which it used).
pub async fn compare_with_registry(
    registry: &SchemaRegistryClient,
    subject: &str,
    new: &AvroSchema,
    level: Option<CompatibilityLevel>,
) -> Result<Verdicts> {
    let registry_level = subject_level(registry, subject).await?;
    let level = level.unwrap_or(registry_level);
    let previous = subject_versions(registry, subject).await?;
    let local = check_compatibility(new, &previous, level);
    let theirs = if previous.is_empty() {
        None
    } else {
        Some(
            registry
                .check_compatibility(subject, Version::Latest, &Schema::avro(new.json()))
                .await?,
        )
    };
    Ok(Verdicts {
        subject: subject.to_string(),
        local,
        registry_level,
        registry: theirs,
    })
}

struct Entry {
    type_name: &'static str,
    subject: String,
    schema: fn() -> Result<AvroSchema>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("type_name", &self.type_name)
            .field("subject", &self.subject)
            .finish()
    }
}

/// The models of an application, listed once, so their schemas can be checked against the
/// registry or exported in one call (for example from a test that runs in CI).
///
/// ```
/// use flowodm::schema::ModelSchemas;
///
/// #[derive(flowodm::Model)]
/// #[flowodm(topic = "orders")]
/// struct Order { id: String }
///
/// #[derive(flowodm::Model)]
/// #[flowodm(topic = "payments", subject = "payments-v")]
/// struct Payment { id: String, cents: i64 }
///
/// let models = ModelSchemas::new().with::<Order>().with::<Payment>();
/// let subjects: Vec<&str> = models.subjects().collect();
/// assert_eq!(subjects, ["orders-value", "payments-v"]);
///
/// let dir = std::env::temp_dir().join(format!("flowodm-doc-{}", std::process::id()));
/// let files = models.export_dir(&dir).unwrap();
/// assert!(files[0].ends_with("orders-value.avsc"));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct ModelSchemas {
    entries: Vec<Entry>,
}

fn model_schema<T: Model>() -> Result<AvroSchema> {
    AvroSchema::from_type::<T>()
}

impl ModelSchemas {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// The list with the model `T` added, under its value subject.
    pub fn with<T: Model>(mut self) -> Self {
        self.add::<T>();
        self
    }

    /// Adds the model `T`, under its value subject.
    pub fn add<T: Model>(&mut self) -> &mut Self {
        self.entries.push(Entry {
            type_name: std::any::type_name::<T>(),
            subject: T::SETTINGS.subject().into_owned(),
            schema: model_schema::<T>,
        });
        self
    }

    /// The list with the model `T` added under another subject than its own, for applications
    /// that register value schemas under their own naming scheme.
    pub fn with_subject<T: Model>(mut self, subject: impl Into<String>) -> Self {
        self.entries.push(Entry {
            type_name: std::any::type_name::<T>(),
            subject: subject.into(),
            schema: model_schema::<T>,
        });
        self
    }

    /// The subjects, in the order the models were added.
    pub fn subjects(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.subject.as_str())
    }

    /// Each model's subject and derived schema.
    pub fn schemas(&self) -> Result<Vec<(String, AvroSchema)>> {
        self.entries
            .iter()
            .map(|e| (e.schema)().map(|s| (e.subject.clone(), s)))
            .collect()
    }

    /// Writes each model's schema to `<dir>/<subject>.avsc` (creating `dir`), pretty-printed, and
    /// returns the paths. The files can be checked later without the application, for example
    /// by the `flowodm` command-line tool.
    pub fn export_dir(&self, dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
        let dir = dir.as_ref();
        let io = |path: &Path, e: std::io::Error| Error::SchemaFile {
            path: path.to_path_buf(),
            line: None,
            column: None,
            message: format!("cannot write: {e}"),
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let mut out = Vec::new();
        for (subject, schema) in self.schemas()? {
            let path = dir.join(format!("{subject}.avsc"));
            let value: serde_json::Value =
                serde_json::from_str(schema.json()).map_err(|e| Error::Schema {
                    message: e.to_string(),
                })?;
            let text = serde_json::to_string_pretty(&value).map_err(|e| Error::Schema {
                message: e.to_string(),
            })?;
            std::fs::write(&path, text + "\n").map_err(|e| io(&path, e))?;
            out.push(path);
        }
        Ok(out)
    }

    /// Checks every model against what the registry holds under its subject: locally against
    /// the stored versions at `level` (`None`: each subject's own level), and with the
    /// registry's own test. Nothing is registered. A subject without versions passes.
    ///
    /// ```no_run
    /// # async fn demo() -> flowodm::Result<()> {
    /// # #[derive(flowodm::Model)] #[flowodm(topic = "orders")] struct Order { id: String }
    /// use flowodm::schema::ModelSchemas;
    ///
    /// let registry = flowodm::registry::SchemaRegistryClient::from_env()?;
    /// let report = ModelSchemas::new().with::<Order>().check_registry(&registry, None).await?;
    /// assert!(report.is_ok(), "{report}");
    /// # Ok(()) }
    /// ```
    pub async fn check_registry(
        &self,
        registry: &SchemaRegistryClient,
        level: Option<CompatibilityLevel>,
    ) -> Result<RegistryCheck> {
        let mut subjects = Vec::with_capacity(self.entries.len());
        for e in &self.entries {
            let schema = (e.schema)()?;
            let verdicts = compare_with_registry(registry, &e.subject, &schema, level).await?;
            subjects.push(SubjectCheck {
                model: e.type_name.to_string(),
                verdicts,
            });
        }
        Ok(RegistryCheck { subjects })
    }
}

/// Checks every `<subject>.avsc` file of `dir` (as [`ModelSchemas::export_dir`] writes them)
/// against the subject named by its file name, like [`ModelSchemas::check_registry`] does for
/// models: locally at `level` (`None`: each subject's own level) and with the registry's test.
///
/// ```no_run
/// # async fn demo() -> flowodm::Result<()> {
/// let registry = flowodm::registry::SchemaRegistryClient::from_env()?;
/// let report = flowodm::schema::check_dir(&registry, "target/schemas", None).await?;
/// if !report.is_ok() {
///     eprintln!("{report}");
///     std::process::exit(1);
/// }
/// # Ok(()) }
/// ```
pub async fn check_dir(
    registry: &SchemaRegistryClient,
    dir: impl AsRef<Path>,
    level: Option<CompatibilityLevel>,
) -> Result<RegistryCheck> {
    let mut subjects = Vec::new();
    for schema in AvroSchema::from_dir(dir)? {
        let (subject, source) = subject_of(&schema);
        let verdicts = compare_with_registry(registry, &subject, &schema, level).await?;
        subjects.push(SubjectCheck {
            model: source,
            verdicts,
        });
    }
    Ok(RegistryCheck { subjects })
}

/// Validates every `<subject>.avsc` file of `dir` strictly against the latest version of the
/// subject named by its file name: one report per file, in file name order. A subject without
/// versions is an error in its report.
pub async fn validate_dir(
    registry: &SchemaRegistryClient,
    dir: impl AsRef<Path>,
) -> Result<Vec<(String, ValidationReport)>> {
    let mut out = Vec::new();
    for schema in AvroSchema::from_dir(dir)? {
        let (subject, source) = subject_of(&schema);
        let report = match AvroSchema::from_registry(registry, &subject, Version::Latest).await {
            Ok(stored) => validate(&schema, &stored),
            Err(e) if e.is_not_found() => ValidationReport {
                model: source,
                expected: subject.clone(),
                errors: vec![Finding {
                    path: subject.clone(),
                    message: "the registry has no version of this subject".into(),
                }],
                warnings: Vec::new(),
            },
            Err(e) => return Err(e),
        };
        out.push((subject, report));
    }
    Ok(out)
}

/// The subject a schema file stands for (its file name without `.avsc`), and the file's name.
fn subject_of(schema: &AvroSchema) -> (String, String) {
    match schema.origin() {
        Origin::File(p) => (
            p.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            p.display().to_string(),
        ),
        o => (String::new(), o.to_string()),
    }
}

/// One model's result in a [`RegistryCheck`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SubjectCheck {
    /// The model's Rust type, or the file the schema came from.
    pub model: String,
    /// The local and registry verdicts for its subject.
    pub verdicts: Verdicts,
}

/// The result of [`ModelSchemas::check_registry`]: one entry per model.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RegistryCheck {
    /// Per model, in the order they were added.
    pub subjects: Vec<SubjectCheck>,
}

impl RegistryCheck {
    /// Whether every model is compatible, by both the local check and the registry.
    pub fn is_ok(&self) -> bool {
        self.subjects.iter().all(|s| s.verdicts.is_compatible())
    }

    /// The models that are not.
    pub fn failures(&self) -> impl Iterator<Item = &SubjectCheck> {
        self.subjects.iter().filter(|s| !s.verdicts.is_compatible())
    }
}

impl fmt::Display for RegistryCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bad = self.failures().count();
        write!(
            f,
            "{} schema(s) checked, {} incompatible",
            self.subjects.len(),
            bad
        )?;
        for s in &self.subjects {
            write!(f, "\n[{}]\n{}", s.model, s.verdicts)?;
        }
        Ok(())
    }
}

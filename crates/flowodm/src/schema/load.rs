//! Loading Avro schemas from text, files, directories, models and the registry.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use apache_avro::Schema;

use crate::avro::node::collect_names;
use crate::avro::Avro;
use crate::error::{Error, Result};
use crate::registry::{SchemaRegistryClient, SchemaType, SubjectVersion, Version};

/// Where a schema came from; used to name it in reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// Parsed from a string.
    Text,
    /// Read from a file.
    File(PathBuf),
    /// A version of a registry subject.
    Registry {
        /// The subject.
        subject: String,
        /// The version within the subject.
        version: u32,
        /// The schema's global id.
        id: u32,
    },
    /// Derived from a Rust type.
    Model(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Text => f.write_str("the schema text"),
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Registry {
                subject, version, ..
            } => write!(f, "{subject} v{version}"),
            Origin::Model(t) => write!(f, "model {t}"),
        }
    }
}

/// The named types (records, enums, fixed) a schema can refer to, by full name.
pub(crate) type Names = BTreeMap<String, Schema>;

/// A parsed, valid Avro schema, with the named types it may refer to and where it came from.
///
/// Schemas that refer to types defined in other files or other registry subjects keep those
/// definitions with them, so every check can follow a reference by name.
///
/// ```
/// use flowodm::schema::AvroSchema;
///
/// let schema = AvroSchema::parse(r#"{"type":"record","name":"Order","namespace":"shop",
///     "fields":[{"name":"id","type":"string"}]}"#).unwrap();
/// assert_eq!(schema.full_name().as_deref(), Some("shop.Order"));
///
/// let err = AvroSchema::parse("{\n  \"type\": \"record\",\n  oops\n}").unwrap_err();
/// assert!(err.to_string().contains("line 3"), "{err}");
/// ```
#[derive(Debug, Clone)]
pub struct AvroSchema {
    root: Schema,
    names: Arc<Names>,
    json: String,
    origin: Origin,
}

impl AvroSchema {
    /// Parses one schema from its JSON text.
    ///
    /// Invalid JSON fails with the line and column in the message; JSON that is not a valid
    /// Avro schema fails with the parser's explanation. Both are [`Error::Schema`].
    pub fn parse(json: &str) -> Result<Self> {
        serde_json::from_str::<serde_json::Value>(json).map_err(|e| Error::Schema {
            message: format!(
                "invalid JSON at line {}, column {}: {e}",
                e.line(),
                e.column()
            ),
        })?;
        let root = Schema::parse_str(json).map_err(|e| Error::Schema {
            message: format!("not a valid Avro schema: {e}"),
        })?;
        Ok(Self::assemble(root, &[], json.to_string(), Origin::Text))
    }

    /// Reads and parses one `.avsc` file.
    ///
    /// Failures are [`Error::SchemaFile`], naming the file, and for JSON syntax errors the line
    /// and column.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let json = read(path)?;
        let root = Schema::parse_str(&json).map_err(|e| avro_error(path, e))?;
        Ok(Self::assemble(
            root,
            &[],
            json,
            Origin::File(path.to_path_buf()),
        ))
    }

    /// Reads several `.avsc` files whose types may refer to each other by full name (a record in
    /// `order.avsc` whose field has type `"shop.Address"`, defined in `address.avsc`), in the
    /// order given.
    ///
    /// A file may use the top-level named type of any other file, also in cycles. Files that
    /// stand alone (such as those [`ModelSchemas::export_dir`](super::ModelSchemas::export_dir)
    /// writes) may define the same nested types as others. A name no file defines, or an invalid
    /// file, fails with an [`Error::SchemaFile`] naming the file to fix.
    pub fn from_files<P: AsRef<Path>>(paths: impl IntoIterator<Item = P>) -> Result<Vec<Self>> {
        let files: Vec<(PathBuf, String)> = paths
            .into_iter()
            .map(|p| {
                let p = p.as_ref().to_path_buf();
                read(&p).map(|text| (p, text))
            })
            .collect::<Result<_>>()?;
        let own_name = |text: &str| -> Option<String> {
            let v: serde_json::Value = serde_json::from_str(text).ok()?;
            let kind = v.get("type")?.as_str()?;
            if !matches!(kind, "record" | "error" | "enum" | "fixed") {
                return None;
            }
            let name = v.get("name")?.as_str()?;
            Some(match v.get("namespace").and_then(|n| n.as_str()) {
                Some(ns) if !name.contains('.') && !ns.is_empty() => format!("{ns}.{name}"),
                _ => name.to_string(),
            })
        };
        let names: Vec<Option<String>> = files.iter().map(|(_, t)| own_name(t)).collect();
        // The named files other than `i` (and than those defining the same name as `i`).
        let deps = |i: usize, among: &dyn Fn(usize) -> bool| -> Vec<&str> {
            (0..files.len())
                .filter(|&j| j != i && among(j) && names[j].is_some() && names[j] != names[i])
                .map(|j| files[j].1.as_str())
                .collect()
        };
        let mut parsed: Vec<Option<(Schema, Vec<Schema>)>> = files
            .iter()
            .map(|(_, t)| Schema::parse_str(t).ok().map(|s| (s, Vec::new())))
            .collect();
        // Files that need others join once the ones they use are parsed.
        loop {
            let mut progress = false;
            for i in 0..files.len() {
                if parsed[i].is_some() {
                    continue;
                }
                let good = |j: usize| parsed[j].is_some();
                let list = deps(i, &good);
                if let Ok(found) = Schema::parse_str_with_list(&files[i].1, &list) {
                    parsed[i] = Some(found);
                    progress = true;
                }
            }
            if !progress {
                break;
            }
        }
        // Cycles (types that use each other): parse every named file at once, one per name.
        if parsed.iter().any(Option::is_none) {
            let mut seen = std::collections::HashSet::new();
            let unique: Vec<usize> = (0..files.len())
                .filter(|&j| names[j].as_ref().is_some_and(|n| seen.insert(n.clone())))
                .collect();
            let texts: Vec<&str> = unique.iter().map(|&j| files[j].1.as_str()).collect();
            if let Ok(all) = Schema::parse_list(&texts) {
                for (k, &j) in unique.iter().enumerate() {
                    if parsed[j].is_none() {
                        parsed[j] = Some((all[k].clone(), all.clone()));
                    }
                }
            }
        }
        if parsed.iter().any(Option::is_none) {
            return Err(blame(&files, &names, &parsed));
        }
        let set: Vec<Self> = files
            .into_iter()
            .zip(parsed.into_iter().flatten())
            .map(|((path, json), (root, others))| {
                Self::assemble(root, &others, json, Origin::File(path))
            })
            .collect();
        for s in &set {
            s.check_references()?;
        }
        Ok(set)
    }

    /// Reads every `*.avsc` file of a directory (not its subdirectories), sorted by file name,
    /// as one set whose types may refer to each other (see [`from_files`](Self::from_files)).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Vec<Self>> {
        let dir = dir.as_ref();
        let entries = std::fs::read_dir(dir).map_err(|e| Error::SchemaFile {
            path: dir.to_path_buf(),
            line: None,
            column: None,
            message: format!("cannot read the directory: {e}"),
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "avsc"))
            .collect();
        paths.sort();
        Self::from_files(paths)
    }

    /// The schema derived from the Rust type `T` (`#[derive(Avro)]` or `#[derive(Model)]`).
    ///
    /// This is the derived schema as it is, even when a model's `schema_file` disagrees with it.
    ///
    /// ```
    /// #[derive(flowodm::Avro)]
    /// struct Point { x: i32, y: i32 }
    /// let schema = flowodm::schema::AvroSchema::from_type::<Point>().unwrap();
    /// assert_eq!(schema.full_name().as_deref(), Some("Point"));
    /// ```
    pub fn from_type<T: Avro + 'static>() -> Result<Self> {
        let derived = crate::avro::schema_of::<T>()?;
        let mut s = Self::parse(derived.json())?;
        s.origin = Origin::Model(std::any::type_name::<T>());
        Ok(s)
    }

    /// Fetches a version of a registry subject, with the schemas it references (recursively).
    pub async fn from_registry(
        registry: &SchemaRegistryClient,
        subject: &str,
        version: impl Into<Version>,
    ) -> Result<Self> {
        let found = registry.subject_version(subject, version).await?;
        Self::from_subject_version(registry, &found).await
    }

    /// Parses a version already fetched from the registry, fetching the schemas it references.
    pub async fn from_subject_version(
        registry: &SchemaRegistryClient,
        found: &SubjectVersion,
    ) -> Result<Self> {
        if found.schema_type != SchemaType::Avro {
            return Err(Error::Schema {
                message: format!(
                    "{} v{} is a {} schema, not Avro",
                    found.subject, found.version, found.schema_type
                ),
            });
        }
        let texts = registry.referenced_schemas(&found.references).await?;
        let origin = Origin::Registry {
            subject: found.subject.clone(),
            version: found.version,
            id: found.id,
        };
        let fail = |e: apache_avro::Error| Error::Schema {
            message: format!("{origin} is not a valid Avro schema: {e}"),
        };
        let (root, others) = if texts.is_empty() {
            (Schema::parse_str(&found.schema).map_err(fail)?, Vec::new())
        } else {
            Schema::parse_str_with_list(&found.schema, &texts).map_err(fail)?
        };
        Ok(Self::assemble(
            root,
            &others,
            found.schema.clone(),
            origin.clone(),
        ))
    }

    fn assemble(root: Schema, others: &[Schema], json: String, origin: Origin) -> Self {
        let mut names = Names::new();
        for s in others.iter().chain(std::iter::once(&root)) {
            collect_names(s, &mut names);
        }
        AvroSchema {
            root,
            names: Arc::new(names),
            json,
            origin,
        }
    }

    /// The same schema, named after `origin` in reports.
    pub fn with_origin(mut self, origin: Origin) -> Self {
        self.origin = origin;
        self
    }

    /// The schema's JSON text, as it was loaded.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// Where the schema came from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The parsed top-level schema (references to other named types are `Schema::Ref`).
    pub fn root(&self) -> &Schema {
        &self.root
    }

    /// The full name of the top-level type, if it is a named type (record, enum or fixed).
    pub fn full_name(&self) -> Option<String> {
        self.root.name().map(|n| n.fullname(None))
    }

    /// The Parsing Canonical Form, with referenced types written out in full.
    pub fn canonical_form(&self) -> Result<String> {
        let others: Vec<Schema> = self.names.values().cloned().collect();
        self.root
            .independent_canonical_form(&others)
            .map_err(|e| Error::Schema {
                message: format!("{}: {e}", self.origin),
            })
    }

    pub(crate) fn names(&self) -> &Names {
        &self.names
    }

    /// Fails if a reference names a type that no loaded schema defines.
    fn check_references(&self) -> Result<()> {
        let mut missing = None;
        visit_refs(&self.root, &mut |name| {
            if !self.names.contains_key(name) && missing.is_none() {
                missing = Some(name.to_string());
            }
        });
        match (missing, &self.origin) {
            (None, _) => Ok(()),
            (Some(name), Origin::File(path)) => Err(Error::SchemaFile {
                path: path.clone(),
                line: None,
                column: None,
                message: format!("refers to `{name}`, which no loaded file defines"),
            }),
            (Some(name), o) => Err(Error::Schema {
                message: format!("{o} refers to `{name}`, which it does not define"),
            }),
        }
    }
}

fn read(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::SchemaFile {
        path: path.to_path_buf(),
        line: None,
        column: None,
        message: format!("cannot read the file: {e}"),
    })?;
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
        return Err(Error::SchemaFile {
            path: path.to_path_buf(),
            line: Some(e.line()),
            column: Some(e.column()),
            message: format!("invalid JSON: {e}"),
        });
    }
    Ok(text)
}

fn avro_error(path: &Path, e: apache_avro::Error) -> Error {
    Error::SchemaFile {
        path: path.to_path_buf(),
        line: None,
        column: None,
        message: format!("not a valid Avro schema: {e}"),
    }
}

/// The error for the file to fix among those that did not parse: one whose own error does not
/// name the type of another failing file (such an error is a consequence, not a cause).
fn blame(
    files: &[(PathBuf, String)],
    names: &[Option<String>],
    parsed: &[Option<(Schema, Vec<Schema>)>],
) -> Error {
    let good: Vec<&str> = (0..files.len())
        .filter(|&j| parsed[j].is_some() && names[j].is_some())
        .map(|j| files[j].1.as_str())
        .collect();
    let failing: Vec<usize> = (0..files.len()).filter(|&i| parsed[i].is_none()).collect();
    let errors: Vec<(usize, apache_avro::Error)> = failing
        .iter()
        .filter_map(|&i| {
            let list: Vec<&str> = good
                .iter()
                .copied()
                .filter(|t| *t != files[i].1.as_str())
                .collect();
            Schema::parse_str_with_list(&files[i].1, &list)
                .err()
                .map(|e| (i, e))
        })
        .collect();
    let mentions_other_failing = |i: usize, msg: &str| {
        failing.iter().any(|&j| {
            j != i
                && names[j].as_deref().is_some_and(|full| {
                    let short = full.rsplit('.').next().unwrap_or(full);
                    msg.contains(full) || msg.contains(short)
                })
        })
    };
    let culprit = errors
        .iter()
        .position(|(i, e)| !mentions_other_failing(*i, &e.to_string()))
        .unwrap_or(0);
    match errors.into_iter().nth(culprit) {
        Some((i, e)) => avro_error(&files[i].0, e),
        None => Error::Schema {
            message: "the schema files do not form a valid set".into(),
        },
    }
}

fn visit_refs(s: &Schema, f: &mut impl FnMut(&str)) {
    match s {
        Schema::Ref { name } => f(&name.fullname(None)),
        Schema::Record(r) => r.fields.iter().for_each(|x| visit_refs(&x.schema, f)),
        Schema::Array(a) => visit_refs(&a.items, f),
        Schema::Map(m) => visit_refs(&m.types, f),
        Schema::Union(u) => u.variants().iter().for_each(|v| visit_refs(v, f)),
        _ => {}
    }
}

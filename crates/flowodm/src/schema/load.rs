//! Loading Avro schemas from text, files, directories, models and the registry.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use apache_avro::schema::{InnerDecimalSchema, UuidSchema};
use apache_avro::Schema;

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
    /// A file may use the top-level named type of any other file. A file whose top-level schema
    /// is not a named type (a union, an array) may use the others' types but cannot be used by
    /// them. Two files defining the same name, or a name no file defines, fail.
    pub fn from_files<P: AsRef<Path>>(paths: impl IntoIterator<Item = P>) -> Result<Vec<Self>> {
        let files: Vec<(PathBuf, String)> = paths
            .into_iter()
            .map(|p| {
                let p = p.as_ref().to_path_buf();
                read(&p).map(|text| (p, text))
            })
            .collect::<Result<_>>()?;
        let is_named = |text: &str| {
            serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
                .is_some_and(|t| matches!(t.as_str(), "record" | "error" | "enum" | "fixed"))
        };
        let named: Vec<&(PathBuf, String)> = files.iter().filter(|(_, t)| is_named(t)).collect();
        let named_texts: Vec<&str> = named.iter().map(|(_, t)| t.as_str()).collect();
        let parsed_named = match Schema::parse_list(&named_texts) {
            Ok(list) => list,
            Err(e) => return Err(blame(&files, &named_texts, e)),
        };
        let mut out = Vec::with_capacity(files.len());
        let mut next_named = parsed_named.iter();
        for (path, text) in &files {
            let root = if is_named(text) {
                next_named
                    .next()
                    .cloned()
                    .expect("one parsed schema per named file")
            } else {
                Schema::parse_str_with_list(text, &named_texts)
                    .map(|(root, _)| root)
                    .map_err(|e| avro_error(path, e))?
            };
            out.push((root, text.clone(), Origin::File(path.clone())));
        }
        let mut names = Names::new();
        for s in parsed_named.iter().chain(out.iter().map(|(s, _, _)| s)) {
            collect_names(s, &mut names);
        }
        let names = Arc::new(names);
        let set: Vec<Self> = out
            .into_iter()
            .map(|(root, json, origin)| AvroSchema {
                root,
                names: names.clone(),
                json,
                origin,
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
        // Referenced schemas, depth first, each once.
        let mut texts: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut stack = found.references.clone();
        while let Some(r) = stack.pop() {
            if !seen.insert((r.subject.clone(), r.version)) {
                continue;
            }
            let v = registry.version(&r.subject, r.version).await?;
            stack.extend(v.references.iter().cloned());
            texts.push(v.schema);
        }
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

/// Finds the file a failed set parse is about. Files that parse with the ones already known
/// join them until none does; of the rest, the culprit is a file whose own error does not name
/// a type of another failing file (that error is then a consequence, not a cause).
fn blame(files: &[(PathBuf, String)], named: &[&str], e: apache_avro::Error) -> Error {
    let mut good: Vec<&str> = Vec::new();
    let mut rest: Vec<&(PathBuf, String)> = files
        .iter()
        .filter(|(_, t)| named.contains(&t.as_str()))
        .collect();
    loop {
        let before = rest.len();
        rest.retain(|(_, text)| {
            if Schema::parse_str_with_list(text, &good).is_ok() {
                good.push(text);
                false
            } else {
                true
            }
        });
        if rest.len() == before {
            break;
        }
    }
    let defined = |text: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        let name = v.get("name").and_then(|n| n.as_str()).unwrap_or("");
        let short = name.rsplit('.').next().unwrap_or(name).to_string();
        vec![name.to_string(), short]
    };
    let errors: Vec<(&PathBuf, apache_avro::Error)> = rest
        .iter()
        .filter_map(|(p, t)| Schema::parse_str_with_list(t, &good).err().map(|e| (p, e)))
        .collect();
    let culprit = errors.iter().position(|(p, err)| {
        let msg = err.to_string();
        rest.iter()
            .filter(|(q, _)| q != *p)
            .all(|(_, t)| defined(t).iter().all(|n| n.is_empty() || !msg.contains(n)))
    });
    match culprit.or(if errors.is_empty() { None } else { Some(0) }) {
        Some(i) => {
            let (path, err) = errors.into_iter().nth(i).expect("index in range");
            avro_error(path, err)
        }
        None => Error::Schema {
            message: format!("the schema files do not form a valid set: {e}"),
        },
    }
}

/// Records every named type defined in `s` under its full name.
pub(crate) fn collect_names(s: &Schema, names: &mut Names) {
    let mut add = |name: &apache_avro::schema::Name, s: &Schema| {
        names
            .entry(name.fullname(None))
            .or_insert_with(|| s.clone());
    };
    match s {
        Schema::Record(r) => {
            add(&r.name, s);
            for f in &r.fields {
                collect_names(&f.schema, names);
            }
        }
        Schema::Enum(e) => add(&e.name, s),
        Schema::Fixed(f) | Schema::Duration(f) | Schema::Uuid(UuidSchema::Fixed(f)) => {
            add(&f.name, s)
        }
        Schema::Decimal(d) => {
            if let InnerDecimalSchema::Fixed(f) = &d.inner {
                add(&f.name, s)
            }
        }
        Schema::Array(a) => collect_names(&a.items, names),
        Schema::Map(m) => collect_names(&m.types, names),
        Schema::Union(u) => u.variants().iter().for_each(|v| collect_names(v, names)),
        _ => {}
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

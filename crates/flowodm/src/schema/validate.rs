//! Strict validation: does a model's derived schema say exactly what a schema file or a
//! registry version says?

use std::collections::HashSet;
use std::fmt;

use apache_avro::schema::RecordField;
use apache_avro::Schema;
use serde_json::Value as Json;

use super::compat::root_path;
use super::load::{AvroSchema, Names};
use super::shape::{describe, view, Shape, View};
use crate::error::Result;
use crate::registry::{SchemaRegistryClient, Version};

/// One finding of a validation: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The record name and field names down to the finding, such as `Order.items[].sku`.
    pub path: String,
    /// What differs.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The result of validating a model's schema against an expected schema.
///
/// *Errors* are differences that change what is written or how it is read: types, nullability,
/// names and namespaces, field sets and order, defaults, enum symbols and defaults, fixed sizes,
/// logical types. *Warnings* change nothing on the wire: docs and aliases.
///
/// ```
/// use flowodm::schema::{validate, AvroSchema};
///
/// let file = AvroSchema::parse(r#"{"type":"record","name":"Order","fields":[
///     {"name":"id","type":"string","doc":"The order number"},
///     {"name":"note","type":"string"}]}"#).unwrap();
/// let model = AvroSchema::parse(r#"{"type":"record","name":"Order","fields":[
///     {"name":"id","type":"string"},
///     {"name":"note","type":["null","string"],"default":null}]}"#).unwrap();
///
/// let report = validate(&model, &file);
/// assert!(!report.is_valid());
/// assert_eq!(report.errors[0].path, "Order.note");
/// assert!(report.errors[0].message.contains("nullable in the model"));
/// assert!(report.warnings[0].message.contains("doc differs"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ValidationReport {
    /// The model's schema, as named in the findings.
    pub model: String,
    /// The expected schema, as named in the findings.
    pub expected: String,
    /// Differences that make the schemas different schemas.
    pub errors: Vec<Finding>,
    /// Differences that do not matter on the wire.
    pub warnings: Vec<Finding>,
}

impl ValidationReport {
    /// Whether there are no errors (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}

impl fmt::Display for ValidationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} against {}: {} error(s), {} warning(s)",
            self.model,
            self.expected,
            self.errors.len(),
            self.warnings.len()
        )?;
        for e in &self.errors {
            write!(f, "\n  error: {e}")?;
        }
        for w in &self.warnings {
            write!(f, "\n  warning: {w}")?;
        }
        Ok(())
    }
}

/// Compares `model` (usually [`AvroSchema::from_type`]) with `expected` (a file or registry
/// version), strictly; see [`ValidationReport`] for what counts as an error.
pub fn validate(model: &AvroSchema, expected: &AvroSchema) -> ValidationReport {
    let mut v = Validator {
        mn: model.names(),
        en: expected.names(),
        theirs: expected.origin().to_string(),
        seen: HashSet::new(),
        report: ValidationReport {
            model: model.origin().to_string(),
            expected: expected.origin().to_string(),
            ..Default::default()
        },
    };
    let path = root_path(expected.root(), expected.names());
    v.walk(model.root(), expected.root(), &path);
    v.report
}

/// Validates the schema derived from `T` against `expected`.
///
/// ```
/// use flowodm::schema::{validate_type, AvroSchema};
///
/// #[derive(flowodm::Avro)]
/// #[flowodm(namespace = "shop")]
/// struct Order { id: String, total_cents: i64 }
///
/// let file = AvroSchema::parse(r#"{"type":"record","name":"Order","namespace":"shop",
///     "fields":[{"name":"id","type":"string"},{"name":"total_cents","type":"int"}]}"#).unwrap();
/// let report = validate_type::<Order>(&file).unwrap();
/// assert_eq!(report.errors[0].path, "Order.total_cents");
/// assert!(report.errors[0].message.contains("the model has long"));
/// ```
pub fn validate_type<T: crate::avro::Avro + 'static>(
    expected: &AvroSchema,
) -> Result<ValidationReport> {
    Ok(validate(&AvroSchema::from_type::<T>()?, expected))
}

/// Validates the schema derived from the model `T` against a version of a registry subject
/// (`None`: the model's own subject).
pub async fn validate_against_registry<T: crate::Model>(
    registry: &SchemaRegistryClient,
    subject: Option<&str>,
    version: impl Into<Version>,
) -> Result<ValidationReport> {
    let own = T::SETTINGS.subject();
    let subject = subject.unwrap_or(&own);
    let expected = AvroSchema::from_registry(registry, subject, version).await?;
    validate_type::<T>(&expected)
}

struct Validator<'a> {
    mn: &'a Names,
    en: &'a Names,
    theirs: String,
    seen: HashSet<String>,
    report: ValidationReport,
}

fn same_json(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| same_json(a, b)))
        }
        _ => a == b,
    }
}

fn is_null(s: &Schema) -> bool {
    matches!(s, Schema::Null)
}

impl<'a> Validator<'a> {
    fn error(&mut self, path: &str, message: String) {
        self.report.errors.push(Finding {
            path: path.to_string(),
            message,
        });
    }

    fn warning(&mut self, path: &str, message: String) {
        self.report.warnings.push(Finding {
            path: path.to_string(),
            message,
        });
    }

    fn texts(&mut self, path: &str, what: &str, ours: Option<&String>, theirs: Option<&String>) {
        if ours != theirs {
            let show = |s: Option<&String>| s.map_or("none".into(), |s| format!("{s:?}"));
            let message = format!(
                "{what} differs: the model has {}, {} has {}",
                show(ours),
                self.theirs,
                show(theirs)
            );
            self.warning(path, message);
        }
    }

    fn aliases(&mut self, path: &str, ours: Vec<String>, theirs: Vec<String>) {
        let (mut a, mut b) = (ours, theirs);
        a.sort();
        b.sort();
        if a != b {
            let message = format!(
                "aliases differ: the model has [{}], {} has [{}]",
                a.join(", "),
                self.theirs,
                b.join(", ")
            );
            self.warning(path, message);
        }
    }

    fn walk(&mut self, ms: &'a Schema, es: &'a Schema, path: &str) {
        let (Some(m), Some(e)) = (view(ms, self.mn), view(es, self.en)) else {
            let message = format!(
                "cannot compare {} with {}: a type is not defined",
                describe(ms, self.mn),
                describe(es, self.en)
            );
            return self.error(path, message);
        };
        let theirs = self.theirs.clone();
        match (m.shape, e.shape) {
            (Shape::Union(mb), Shape::Union(eb)) => {
                let branches = |bs: &[Schema], names: &Names| -> Vec<String> {
                    bs.iter().map(|b| describe(b, names)).collect()
                };
                let (mut a, mut b) = (branches(mb, self.mn), branches(eb, self.en));
                if a != b {
                    a.sort();
                    b.sort();
                    let what = if a == b {
                        "union branches are in another order (it changes the encoding and the default)"
                    } else {
                        "union differs"
                    };
                    let message = format!(
                        "{what}: the model has {}, {theirs} has {}",
                        describe(ms, self.mn),
                        describe(es, self.en)
                    );
                    return self.error(path, message);
                }
                for (a, b) in mb.iter().zip(eb) {
                    self.walk(a, b, path);
                }
            }
            (Shape::Union(mb), _) if mb.iter().any(is_null) => {
                let message = format!(
                    "nullable in the model ({}) but not in {theirs} ({})",
                    describe(ms, self.mn),
                    describe(es, self.en)
                );
                self.error(path, message);
            }
            (_, Shape::Union(eb)) if eb.iter().any(is_null) => {
                let message = format!(
                    "nullable in {theirs} ({}) but not in the model ({})",
                    describe(es, self.en),
                    describe(ms, self.mn)
                );
                self.error(path, message);
            }
            (Shape::Prim(a), Shape::Prim(b)) if a == b => self.logical(&m, &e, path),
            (Shape::Array(a), Shape::Array(b)) => self.walk(a, b, &format!("{path}[]")),
            (Shape::Map(a), Shape::Map(b)) => self.walk(a, b, &format!("{path}{{}}")),
            (Shape::Record(a), Shape::Record(b)) => {
                if !self.names(&m, &e, path) {
                    return;
                }
                let key = b.name.fullname(None);
                if !self.seen.insert(key.clone()) {
                    return;
                }
                self.texts(path, "doc", a.doc.as_ref(), b.doc.as_ref());
                self.aliases(path, m.aliases(), e.aliases());
                self.fields(&a.fields, &b.fields, path);
                self.seen.remove(&key);
            }
            (Shape::Enum(a), Shape::Enum(b)) => {
                if !self.names(&m, &e, path) {
                    return;
                }
                self.texts(path, "doc", a.doc.as_ref(), b.doc.as_ref());
                self.aliases(path, m.aliases(), e.aliases());
                let missing: Vec<&String> = b
                    .symbols
                    .iter()
                    .filter(|s| !a.symbols.contains(s))
                    .collect();
                let extra: Vec<&String> = a
                    .symbols
                    .iter()
                    .filter(|s| !b.symbols.contains(s))
                    .collect();
                let list = |v: &[&String]| {
                    v.iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                if !missing.is_empty() {
                    let message = format!(
                        "enum symbol(s) {} are in {theirs} but not in the model",
                        list(&missing)
                    );
                    self.error(path, message);
                }
                if !extra.is_empty() {
                    let message = format!(
                        "enum symbol(s) {} are in the model but not in {theirs}",
                        list(&extra)
                    );
                    self.error(path, message);
                }
                if missing.is_empty() && extra.is_empty() && a.symbols != b.symbols {
                    let message = format!(
                        "enum symbols are in another order: the model has [{}], {theirs} has [{}]",
                        a.symbols.join(", "),
                        b.symbols.join(", ")
                    );
                    self.error(path, message);
                }
                if a.default != b.default {
                    let show = |d: &Option<String>| d.as_deref().unwrap_or("none").to_string();
                    let message = format!(
                        "enum default differs: the model has {}, {theirs} has {}",
                        show(&a.default),
                        show(&b.default)
                    );
                    self.error(path, message);
                }
            }
            (Shape::Fixed(a), Shape::Fixed(b)) => {
                if !self.names(&m, &e, path) {
                    return;
                }
                if a.size != b.size {
                    let message = format!(
                        "fixed size differs: the model has {} bytes, {theirs} has {}",
                        a.size, b.size
                    );
                    self.error(path, message);
                }
                self.logical(&m, &e, path);
            }
            _ => {
                let message = format!(
                    "type differs: the model has {}, {theirs} has {}",
                    describe(ms, self.mn),
                    describe(es, self.en)
                );
                self.error(path, message);
            }
        }
    }

    /// Compares full names; `false` (after reporting) when they differ.
    fn names(&mut self, m: &View<'_>, e: &View<'_>, path: &str) -> bool {
        let full = |v: &View<'_>| v.name().map(|n| n.fullname(None)).unwrap_or_default();
        let (a, b) = (full(m), full(e));
        if a != b {
            let message = format!(
                "{} name differs: the model has `{a}`, {} has `{b}`",
                e.kind(),
                self.theirs
            );
            self.error(path, message);
            return false;
        }
        true
    }

    fn logical(&mut self, m: &View<'_>, e: &View<'_>, path: &str) {
        let (a, b) = (m.logical(), e.logical());
        if a != b {
            let show =
                |l: Option<super::shape::Logical>| l.map_or("none".into(), |l| l.to_string());
            let message = format!(
                "logical type differs: the model has {}, {} has {}",
                show(a),
                self.theirs,
                show(b)
            );
            self.error(path, message);
        }
    }

    fn fields(&mut self, ours: &'a [RecordField], theirs: &'a [RecordField], path: &str) {
        let label = self.theirs.clone();
        for tf in theirs {
            let field_path = format!("{path}.{}", tf.name);
            let Some(of) = ours.iter().find(|f| f.name == tf.name) else {
                let message = format!("field is in {label} but not in the model");
                self.error(&field_path, message);
                continue;
            };
            self.walk(&of.schema, &tf.schema, &field_path);
            match (&of.default, &tf.default) {
                (Some(a), Some(b)) if !same_json(a, b) => {
                    let message = format!("default differs: the model has {a}, {label} has {b}");
                    self.error(&field_path, message);
                }
                (Some(a), None) => {
                    let message = format!("default differs: the model has {a}, {label} has none");
                    self.error(&field_path, message);
                }
                (None, Some(b)) => {
                    let message = format!("default differs: the model has none, {label} has {b}");
                    self.error(&field_path, message);
                }
                _ => {}
            }
            self.texts(&field_path, "doc", of.doc.as_ref(), tf.doc.as_ref());
            self.aliases(&field_path, of.aliases.clone(), tf.aliases.clone());
        }
        for of in ours {
            if !theirs.iter().any(|f| f.name == of.name) {
                let message = format!("field is in the model but not in {label}");
                self.error(&format!("{path}.{}", of.name), message);
            }
        }
        let order = |fs: &[RecordField], other: &[RecordField]| -> Vec<String> {
            fs.iter()
                .filter(|f| other.iter().any(|o| o.name == f.name))
                .map(|f| f.name.clone())
                .collect()
        };
        let (a, b) = (order(ours, theirs), order(theirs, ours));
        if a != b {
            let message = format!(
                "fields are in another order (it changes the binary encoding): the model has \
                 [{}], {label} has [{}]",
                a.join(", "),
                b.join(", ")
            );
            self.error(path, message);
        }
    }
}

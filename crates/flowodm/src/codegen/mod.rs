//! Rust source from Avro schemas: structs and enums that carry flowodm's derives.
//!
//! A [`Generator`] reads one or more `.avsc` texts (or a registry subject with the schemas it
//! references) and writes Rust types whose derived schema is the input schema: the same Parsing
//! Canonical Form, the same defaults and the same logical types, and the same docs and aliases.
//! A schema the derives cannot express exactly is refused with an error that names the place in
//! the schema, never turned into code that would derive a different schema.
//!
//! ```
//! use flowodm::codegen::Generator;
//!
//! let schema = r#"{
//!   "type": "record", "name": "Order", "namespace": "com.example",
//!   "fields": [
//!     {"name": "orderId", "type": "string"},
//!     {"name": "placedAt", "type": {"type": "long", "logicalType": "timestamp-millis"}},
//!     {"name": "note", "type": ["null", "string"], "default": null}
//!   ]
//! }"#;
//! let source = Generator::new().topic("orders").generate(&[schema])?;
//! assert!(source.contains("#[derive(Debug, Clone, PartialEq, flowodm::Model)]"));
//! assert!(source.contains(r#"#[flowodm(topic = "orders", namespace = "com.example", rename_all = "camelCase")]"#));
//! assert!(source.contains("pub placed_at: DateTime<Utc>,"));
//! assert!(source.contains("pub note: Option<String>,"));
//! # Ok::<(), flowodm::Error>(())
//! ```
//!
//! # The mapping
//!
//! | Avro | Rust |
//! |---|---|
//! | `boolean`, `int`, `long`, `float`, `double` | `bool`, `i32`, `i64`, `f32`, `f64` |
//! | `string`, `bytes` | `String`, `Vec<u8>` |
//! | `date`, `time-millis`, `time-micros` | `chrono::NaiveDate`, `chrono::NaiveTime` (`micros` for time-micros) |
//! | `timestamp-millis`, `timestamp-micros` | `chrono::DateTime<Utc>` (`micros` for micros) |
//! | `local-timestamp-millis`, `local-timestamp-micros` | `chrono::NaiveDateTime` (`micros` for micros) |
//! | `uuid` | `uuid::Uuid` |
//! | `decimal` on bytes | `rust_decimal::Decimal` with `decimal(precision = P, scale = S)` |
//! | `record` | a struct with `name`, `namespace`, `alias`, `rename`/`rename_all`, `default` and doc comments |
//! | `enum` | an enum of unit variants; the enum's default symbol is the `#[flowodm(default)]` variant |
//! | `array`, `map` | `Vec<T>`, `HashMap<String, T>` |
//! | `fixed` named `fixed_N` in the enclosing namespace | `[u8; N]` |
//! | `["null", T]` with `"default": null` (a field), or `["null", T]` elsewhere | `Option<T>` |
//! | any other union | an enum with one variant per branch: `Null`, or `Name(T)` |
//!
//! A record that contains itself is reached through `Box`. Field names become snake_case and type
//! names UpperCamelCase, with `rename`, `rename_all` or `name` keeping the Avro names; a Rust
//! keyword becomes a raw identifier (`r#type`).
//!
//! Refused, with the schema path in the error: a fixed with another name, doc, aliases or a
//! logical type; logical types without a Rust mapping (for example `duration` or
//! `timestamp-nanos`); `micros` or `decimal` values inside a map or a union branch; defaults that
//! are objects or arrays; a `null` default on anything but `["null", T]`; a field `order` other
//! than `ascending`; a key field that cannot key messages. Other schema properties (such as
//! `connect.name`) are not part of the schema's meaning and are dropped. The guide
//! `docs/codegen.md` in the repository tells more, with examples.
//!
//! The generated code needs `flowodm` and, when it uses them, `chrono`, `uuid` and `rust_decimal`
//! as dependencies. It holds `use` lines for those, so put each generated file in a module of its
//! own (`mod events { include!("events.rs"); }` or a plain `events.rs` module file).
//!
//! Several schemas: the last is the main schema, the others supply the named types it (or each
//! other) refer to, in any order. Every record and enum of every schema is generated. With a
//! [topic](Generator::topic) the main type derives [`Model`](crate::Model) for that topic.

mod emit;
mod map;
mod names;
mod parse;

use std::path::Path;

use crate::error::{Error, Result};
use crate::registry::{SchemaRegistryClient, SchemaType, Version};

/// Writes Rust types for Avro schemas; see the [module docs](self).
///
/// ```
/// use flowodm::codegen::Generator;
///
/// let shared = r#"{"type": "enum", "name": "Currency", "namespace": "com.example",
///                  "symbols": ["EUR", "USD"], "default": "EUR"}"#;
/// let price = r#"{"type": "record", "name": "Price", "namespace": "com.example",
///                 "fields": [{"name": "currency", "type": "Currency"},
///                            {"name": "amount", "type": "double", "default": 0.0}]}"#;
/// let source = Generator::new().generate(&[shared, price])?;
/// assert!(source.contains("pub enum Currency {"));
/// assert!(source.contains("#[flowodm(default)]\n    Eur,"));
/// assert!(source.contains("#[flowodm(default = 0.0)]\n    pub amount: f64,"));
/// # Ok::<(), flowodm::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Generator {
    settings: map::Settings,
}

impl Generator {
    /// A generator of plain `#[derive(flowodm::Avro)]` types.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the main type a [`Model`](crate::Model) of `topic`: `#[derive(flowodm::Model)]`
    /// with `#[flowodm(topic = "...")]`. The main schema must be a record or a union of records.
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.settings.topic = Some(topic.into());
        self
    }

    /// Names the main record's field (its Avro name) that keys the topic's messages:
    /// `#[flowodm(key = "...")]`. Needs a [topic](Self::topic).
    pub fn key(mut self, field: impl Into<String>) -> Self {
        self.settings.key = Some(field.into());
        self
    }

    /// Rust source for schema texts; the last is the main schema. Errors call the texts
    /// `schema 1`, `schema 2`, ...
    pub fn generate<S: AsRef<str>>(&self, schemas: &[S]) -> Result<String> {
        let labeled: Vec<(String, String)> = schemas
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("schema {}", i + 1), s.as_ref().to_string()))
            .collect();
        self.run(&labeled)
    }

    /// Rust source for `.avsc` files; the last is the main schema. Errors name the files.
    pub fn generate_files<P: AsRef<Path>>(&self, paths: &[P]) -> Result<String> {
        let mut labeled = Vec::with_capacity(paths.len());
        for p in paths {
            let p = p.as_ref();
            let text = std::fs::read_to_string(p).map_err(|e| Error::Schema {
                message: format!("cannot read {}: {e}", p.display()),
            })?;
            labeled.push((p.display().to_string(), text));
        }
        self.run(&labeled)
    }

    /// Rust source for a version of a registry subject, with the schemas it references (and
    /// those they reference) fetched from the registry too.
    ///
    /// ```no_run
    /// # async fn demo() -> flowodm::Result<()> {
    /// use flowodm::codegen::Generator;
    /// use flowodm::registry::{SchemaRegistryClient, Version};
    ///
    /// let registry = SchemaRegistryClient::from_env()?;
    /// let source = Generator::new()
    ///     .topic("orders")
    ///     .generate_from_registry(&registry, "orders-value", Version::Latest)
    ///     .await?;
    /// std::fs::write("src/orders.rs", source).expect("writable");
    /// # Ok(()) }
    /// ```
    pub async fn generate_from_registry(
        &self,
        client: &SchemaRegistryClient,
        subject: &str,
        version: impl Into<Version>,
    ) -> Result<String> {
        enum Step {
            Fetch(String, Version),
            /// A schema whose references are all placed: it goes next.
            Place(String, String),
        }
        let mut labeled: Vec<(String, String)> = Vec::new();
        let mut seen = Vec::new();
        // Depth first, references before the schema that uses them; the main schema comes last.
        let mut todo = vec![Step::Fetch(subject.to_string(), version.into())];
        while let Some(step) = todo.pop() {
            let (subject, version) = match step {
                Step::Place(label, text) => {
                    labeled.push((label, text));
                    continue;
                }
                Step::Fetch(subject, version) => (subject, version),
            };
            let got = client.subject_version(&subject, version).await?;
            let key = (got.subject.clone(), got.version);
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            if got.schema_type != SchemaType::Avro {
                return Err(Error::Schema {
                    message: format!(
                        "subject `{subject}` version {version} is a {} schema, not Avro",
                        got.schema_type
                    ),
                });
            }
            let label = format!("subject `{}` version {}", got.subject, got.version);
            todo.push(Step::Place(label, got.schema));
            for r in got.references.iter().rev() {
                todo.push(Step::Fetch(r.subject.clone(), Version::Number(r.version)));
            }
        }
        self.run(&labeled)
    }

    fn run(&self, labeled: &[(String, String)]) -> Result<String> {
        let set = parse::parse(labeled)?;
        let out = map::map(&set, &self.settings)?;
        Ok(emit::emit(&out))
    }
}

/// Writes generated `source` to `out` and returns the path written: `out` itself, or, when `out`
/// is an existing directory, a file in it named after the main type (`order_event.rs` for
/// `OrderEvent`). Missing parent directories are created.
///
/// ```
/// use flowodm::codegen::{self, Generator};
///
/// let schema = r#"{"type": "record", "name": "OrderEvent", "fields": [{"name": "id", "type": "long"}]}"#;
/// let source = Generator::new().generate(&[schema])?;
/// let dir = std::env::temp_dir().join(format!("codegen-write-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = codegen::write(&source, &dir)?;
/// assert_eq!(path, dir.join("order_event.rs"));
/// assert_eq!(std::fs::read_to_string(&path).unwrap(), source);
/// let path = codegen::write(&source, &dir.join("models/events.rs"))?;
/// assert_eq!(path, dir.join("models/events.rs"));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), flowodm::Error>(())
/// ```
pub fn write(source: &str, out: &Path) -> Result<std::path::PathBuf> {
    let path = target_path(source, out)?;
    let io = |e: std::io::Error| Error::Schema {
        message: format!("cannot write {}: {e}", path.display()),
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(&path, source).map_err(io)?;
    Ok(path)
}

/// Where [`write`](fn@write) puts `source` for `out`: `out` itself, or, when `out` is a directory, the
/// file named after the source's main type (`Order` goes to `order.rs`).
///
/// ```
/// # fn main() -> flowodm::Result<()> {
/// let schema = r#"{"type":"record","name":"OrderPlaced","fields":[{"name":"id","type":"string"}]}"#;
/// let source = flowodm::codegen::Generator::new().generate(&[schema])?;
/// let dir = std::env::temp_dir();
/// assert_eq!(flowodm::codegen::target_path(&source, &dir)?, dir.join("order_placed.rs"));
/// # Ok(()) }
/// ```
pub fn target_path(source: &str, out: &Path) -> Result<std::path::PathBuf> {
    if !out.is_dir() {
        return Ok(out.to_path_buf());
    }
    let main = emit::main_type(source).ok_or_else(|| Error::Schema {
        message: "the source has no generated type to name its file after".into(),
    })?;
    Ok(out.join(format!("{}.rs", heck::ToSnakeCase::to_snake_case(main))))
}

/// The guide `docs/codegen.md`, whose examples run as doctests so the guide stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../../docs/codegen.md")]
pub struct GuideDoctests;

#[cfg(test)]
mod tests;

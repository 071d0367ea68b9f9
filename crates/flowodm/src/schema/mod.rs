//! Schema tools: load `.avsc` files, check compatibility locally with reasons, ask the registry
//! the same question, validate models strictly, and check every model of an application in CI.
//!
//! # Compatibility
//!
//! Data is written with one schema (the *writer's*) and read with another (the *reader's*).
//! Avro's schema resolution rules say when that works:
//!
//! - **Records** match fields by name, or by one of the reader field's aliases. Fields only the
//!   writer has are skipped; a field only the reader has takes its default, and without a default
//!   the data cannot be read.
//! - **Primitives** must be the same, or the writer's must widen to the reader's: `int` to
//!   `long`, `float` or `double`; `long` to `float` or `double`; `float` to `double`; and
//!   `string` and `bytes` either way.
//! - **Enums**: a symbol the writer has and the reader lacks is readable only when the reader's
//!   enum has a default.
//! - **Unions**: every branch the writer may write must land in a branch of the reader's union
//!   (the first that matches exactly, else the first it widens to), or be readable as the
//!   reader's plain type. Making an optional field required breaks readers of the data that has
//!   `null` in it.
//! - **Named types** (records, enums, fixed) must have the same unqualified name, or the reader
//!   an alias for the writer's full name; **fixed** types the same size.
//! - **Arrays** and **maps** resolve their items and values.
//! - **Logical types** ride on their physical type; when both sides have one and they differ
//!   (`timestamp-millis` against `timestamp-micros`, another decimal precision or scale), the
//!   bytes would decode into another value, so that is reported too.
//!
//! A [compatibility level](crate::registry::CompatibilityLevel) says which direction must hold
//! against which earlier versions: *backward* (the new schema reads old data: upgrade
//! consumers first), *forward* (old schemas read new data: upgrade producers first), *full*
//! (both); plain levels against the latest version, `_TRANSITIVE` ones against all.
//! [`check_compatibility`] applies a level and returns a [`CompatibilityReport`] whose
//! [`Incompatibility`] reasons each carry a field path (`OrderEvent.payload.status`), what
//! changed, and which readers break.
//!
//! ```
//! use flowodm::registry::CompatibilityLevel;
//! use flowodm::schema::{check_compatibility, AvroSchema, Breaks};
//!
//! let v1 = AvroSchema::parse(r#"{"type":"record","name":"Order","fields":[
//!     {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID"]}}]}"#)?;
//! let v2 = AvroSchema::parse(r#"{"type":"record","name":"Order","fields":[
//!     {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","REFUNDED"]}}]}"#)?;
//!
//! // New consumers read old data: fine.
//! assert!(check_compatibility(&v2, &[v1.clone()], CompatibilityLevel::Backward).is_compatible());
//! // Old consumers meet REFUNDED, which they do not know.
//! let report = check_compatibility(&v2, &[v1], CompatibilityLevel::Full);
//! let reason = &report.incompatibilities[0];
//! assert_eq!(reason.path, "Order.status");
//! assert_eq!(reason.breaks, Breaks::OldReaders);
//! assert!(reason.message.contains("`REFUNDED`"));
//! # Ok::<(), flowodm::Error>(())
//! ```
//!
//! ## Where the local check differs
//!
//! The checker follows the specification; it is stricter or more precise than some other
//! checkers in a few places, on purpose:
//!
//! - Different logical types on the same physical type are incompatible here. The Java checker
//!   the registries use ignores logical types altogether, and `apache-avro`'s checker only looks
//!   at decimals; both would accept `timestamp-millis` → `timestamp-micros`.
//! - A reader alias for the writer's name makes a renamed type compatible, as the specification
//!   says; `apache-avro`'s checker ignores aliases.
//! - A reader union takes the branch the decoder would take (the first exact match, else the
//!   first promotion), not any branch that happens to fit.
//! - `uuid` on `string` and `uuid` on `fixed` are different encodings and do not match here;
//!   `apache-avro` lets any two `uuid`s match.
//! - A reference is followed to its definition (also across files and registry references);
//!   `apache-avro` compares references by name only.
//!
//! # The other tools
//!
//! - [`AvroSchema`] loads a schema from text, a file, a set of files or a directory whose types
//!   refer to each other, a Rust type, or the registry (with its references).
//! - [`validate`] / [`validate_type`] / [`validate_against_registry`] compare a model's derived
//!   schema with a file or a registry version and report errors and warnings with field paths.
//! - [`compare_with_registry`] returns the local verdict and the registry's side by side;
//!   [`check_subject`] checks locally against a subject's stored versions.
//! - [`ModelSchemas`] lists an application's models to check them all against the registry, or
//!   export their schemas, in one call; [`check_dir`] and [`validate_dir`] do the same for an
//!   exported directory. See `docs/schema-tools.md`.

mod compat;
mod load;
mod registry;
mod shape;
pub(crate) use shape::Prim;
mod validate;

pub use compat::{
    can_read, check_compatibility, Breaks, CompatibilityReport, Incompatibility,
    IncompatibilityKind,
};
pub use load::{AvroSchema, Origin};
pub use registry::{
    check_dir, check_subject, compare_with_registry, subject_versions, validate_dir, ModelSchemas,
    RegistryCheck, SubjectCheck, Verdicts,
};
pub use validate::{validate, validate_against_registry, validate_type, Finding, ValidationReport};

#[cfg(test)]
mod tests;

/// The examples of `docs/schema-tools.md`, compiled and run as doctests so the page stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../../docs/schema-tools.md")]
pub struct SchemaToolsDoctests;

//! The values the registry API sends and receives.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The language a schema is written in (`schemaType`; absent means Avro).
///
/// ```
/// use flowodm::registry::SchemaType;
/// assert_eq!("protobuf".parse::<SchemaType>().unwrap(), SchemaType::Protobuf);
/// assert_eq!(SchemaType::default(), SchemaType::Avro);
/// assert_eq!(SchemaType::Json.as_str(), "JSON");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
#[non_exhaustive]
pub enum SchemaType {
    /// Apache Avro, the registry's default.
    #[default]
    Avro,
    /// JSON Schema.
    Json,
    /// Protocol Buffers.
    Protobuf,
}

impl SchemaType {
    /// The registry's name: `AVRO`, `JSON` or `PROTOBUF`.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Json => "JSON",
            SchemaType::Protobuf => "PROTOBUF",
        }
    }

    fn is_avro(&self) -> bool {
        *self == SchemaType::Avro
    }
}

impl fmt::Display for SchemaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SchemaType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "AVRO" => Ok(SchemaType::Avro),
            "JSON" => Ok(SchemaType::Json),
            "PROTOBUF" => Ok(SchemaType::Protobuf),
            _ => Err(Error::Schema {
                message: format!("unknown schema type `{s}`; expected AVRO, JSON or PROTOBUF"),
            }),
        }
    }
}

/// A named reference from one schema to a schema registered under another subject.
///
/// An Avro record can use a type defined elsewhere by its full name (`"type": "x.y.Address"`)
/// when the registration lists where that type lives: the reference's `name` is the full name
/// (for Protobuf and JSON Schema, the import path), and `subject` and `version` say which
/// registered schema defines it. The referenced version must exist before the referring schema
/// is registered, and the registry refuses to delete a version that others reference (error
/// code 42206).
///
/// ```
/// use flowodm::registry::SchemaReference;
/// let address = SchemaReference::new("x.y.Address", "addresses-value", 1);
/// assert_eq!(address.subject, "addresses-value");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SchemaReference {
    /// The name the referring schema uses: an Avro full name, or an import path.
    pub name: String,
    /// The subject the referenced schema is registered under.
    pub subject: String,
    /// The version of that subject.
    pub version: u32,
}

impl SchemaReference {
    /// A reference to `subject` version `version`, known to the referring schema as `name`.
    pub fn new(name: impl Into<String>, subject: impl Into<String>, version: u32) -> Self {
        SchemaReference {
            name: name.into(),
            subject: subject.into(),
            version,
        }
    }
}

/// A schema as the registry stores it: its text, its language and its references.
///
/// This is what [`register_schema`](super::SchemaRegistryClient::register_schema) sends and
/// what [`schema`](super::SchemaRegistryClient::schema) returns for an id.
///
/// ```
/// use flowodm::registry::{Schema, SchemaReference, SchemaType};
///
/// let customer = Schema::avro(
///     r#"{"type":"record","name":"Customer","namespace":"x.y",
///         "fields":[{"name":"address","type":"x.y.Address"}]}"#,
/// )
/// .with_reference(SchemaReference::new("x.y.Address", "addresses-value", 1));
/// assert_eq!(customer.schema_type, SchemaType::Avro);
/// assert_eq!(customer.references.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Schema {
    /// The schema text (for Avro, the schema's JSON).
    #[serde(rename = "schema")]
    pub text: String,
    /// The schema's language.
    #[serde(
        rename = "schemaType",
        default,
        skip_serializing_if = "SchemaType::is_avro"
    )]
    pub schema_type: SchemaType,
    /// The schemas this one uses by name, in the order the registry lists them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<SchemaReference>,
}

impl Schema {
    /// A schema in `schema_type` with no references.
    pub fn new(schema_type: SchemaType, text: impl Into<String>) -> Self {
        Schema {
            text: text.into(),
            schema_type,
            references: Vec::new(),
        }
    }

    /// An Avro schema with no references.
    pub fn avro(text: impl Into<String>) -> Self {
        Self::new(SchemaType::Avro, text)
    }

    /// The same schema with one more reference.
    pub fn with_reference(mut self, reference: SchemaReference) -> Self {
        self.references.push(reference);
        self
    }
}

/// One version of a subject: what `GET /subjects/{subject}/versions/{version}` and the schema
/// lookup `POST /subjects/{subject}` return.
///
/// ```
/// # async fn demo(registry: flowodm::registry::SchemaRegistryClient) -> flowodm::Result<()> {
/// let latest = registry.latest_version("orders-value").await?;
/// println!("orders-value v{} is schema {}: {}", latest.version, latest.id, latest.schema);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct SubjectVersion {
    /// The subject.
    pub subject: String,
    /// The version within the subject, counting from 1.
    pub version: u32,
    /// The schema's global id.
    pub id: u32,
    /// The schema text (for Avro, its JSON).
    pub schema: String,
    /// The schema's language.
    #[serde(rename = "schemaType", default)]
    pub schema_type: SchemaType,
    /// The schemas this version uses by name.
    #[serde(default)]
    pub references: Vec<SchemaReference>,
}

impl SubjectVersion {
    /// The schema of this version, as [`Schema`].
    pub fn to_schema(&self) -> Schema {
        Schema {
            text: self.schema.clone(),
            schema_type: self.schema_type,
            references: self.references.clone(),
        }
    }
}

/// A subject and one of its versions: an entry of `GET /schemas/ids/{id}/versions`, which
/// lists every place a schema is registered.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
pub struct SubjectVersionRef {
    /// The subject.
    pub subject: String,
    /// The version within the subject.
    pub version: u32,
}

/// Which version of a subject a call is about: a number, or the latest one.
///
/// ```
/// use flowodm::registry::Version;
/// assert_eq!(Version::from(3).to_string(), "3");
/// assert_eq!(Version::Latest.to_string(), "latest");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// The newest version that is not deleted.
    Latest,
    /// A version number, counting from 1.
    Number(u32),
}

impl From<u32> for Version {
    fn from(n: u32) -> Self {
        Version::Number(n)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Latest => f.write_str("latest"),
            Version::Number(n) => write!(f, "{n}"),
        }
    }
}

/// The rule the registry applies before it accepts a new version of a subject.
///
/// Compatibility is about the readers and writers of a topic. *Backward* means consumers that use
/// the new schema can read data written with the previous one (so upgrade consumers first);
/// *forward* means consumers still on the previous schema can read data written with the new one
/// (so upgrade producers first); *full* is both. The plain levels compare with the latest version
/// only; the `_TRANSITIVE` levels compare with every earlier version, which is what a topic that
/// keeps old data needs. `NONE` accepts anything.
///
/// Confluent's default is `BACKWARD`. The level can be set for the whole registry and overridden
/// per subject.
///
/// ```
/// use flowodm::registry::CompatibilityLevel;
/// let level: CompatibilityLevel = "full_transitive".parse().unwrap();
/// assert_eq!(level, CompatibilityLevel::FullTransitive);
/// assert_eq!(level.to_string(), "FULL_TRANSITIVE");
/// assert!("SIDEWAYS".parse::<CompatibilityLevel>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompatibilityLevel {
    /// No check: any schema is accepted.
    None,
    /// The new schema can read data written with the latest version.
    Backward,
    /// The new schema can read data written with every earlier version.
    BackwardTransitive,
    /// The latest version can read data written with the new schema.
    Forward,
    /// Every earlier version can read data written with the new schema.
    ForwardTransitive,
    /// Both backward and forward with the latest version.
    Full,
    /// Both backward and forward with every earlier version.
    FullTransitive,
}

impl CompatibilityLevel {
    /// All seven levels.
    pub const ALL: [CompatibilityLevel; 7] = [
        CompatibilityLevel::None,
        CompatibilityLevel::Backward,
        CompatibilityLevel::BackwardTransitive,
        CompatibilityLevel::Forward,
        CompatibilityLevel::ForwardTransitive,
        CompatibilityLevel::Full,
        CompatibilityLevel::FullTransitive,
    ];

    /// The registry's name, such as `BACKWARD_TRANSITIVE`.
    pub fn as_str(self) -> &'static str {
        match self {
            CompatibilityLevel::None => "NONE",
            CompatibilityLevel::Backward => "BACKWARD",
            CompatibilityLevel::BackwardTransitive => "BACKWARD_TRANSITIVE",
            CompatibilityLevel::Forward => "FORWARD",
            CompatibilityLevel::ForwardTransitive => "FORWARD_TRANSITIVE",
            CompatibilityLevel::Full => "FULL",
            CompatibilityLevel::FullTransitive => "FULL_TRANSITIVE",
        }
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CompatibilityLevel {
    type Err = Error;

    /// Parses a level name, ignoring case.
    fn from_str(s: &str) -> Result<Self> {
        CompatibilityLevel::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                Error::config(
                    "compatibility",
                    format!(
                        "`{s}` is not a compatibility level; expected one of NONE, BACKWARD, \
                         BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE"
                    ),
                )
            })
    }
}

/// What the registry, or one subject, accepts.
///
/// ```
/// use flowodm::registry::Mode;
/// assert_eq!("readonly".parse::<Mode>().unwrap(), Mode::ReadOnly);
/// assert_eq!(Mode::ReadOnlyOverride.to_string(), "READONLY_OVERRIDE");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Mode {
    /// Normal operation: schemas can be registered and deleted.
    #[serde(rename = "READWRITE")]
    ReadWrite,
    /// Registrations and deletes are refused (error code 42205).
    #[serde(rename = "READONLY")]
    ReadOnly,
    /// Like `READONLY`, and a subject cannot override it with its own mode.
    #[serde(rename = "READONLY_OVERRIDE")]
    ReadOnlyOverride,
    /// Schemas are registered with the ids and versions the caller gives, to copy a registry;
    /// normally only allowed while the registry (or subject) is empty.
    #[serde(rename = "IMPORT")]
    Import,
}

impl Mode {
    /// All four modes.
    pub const ALL: [Mode; 4] = [
        Mode::ReadWrite,
        Mode::ReadOnly,
        Mode::ReadOnlyOverride,
        Mode::Import,
    ];

    /// The registry's name, such as `READWRITE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ReadWrite => "READWRITE",
            Mode::ReadOnly => "READONLY",
            Mode::ReadOnlyOverride => "READONLY_OVERRIDE",
            Mode::Import => "IMPORT",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = Error;

    /// Parses a mode name, ignoring case.
    fn from_str(s: &str) -> Result<Self> {
        Mode::ALL
            .into_iter()
            .find(|mode| mode.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                Error::config(
                    "mode",
                    format!(
                        "`{s}` is not a registry mode; expected one of READWRITE, READONLY, \
                         READONLY_OVERRIDE, IMPORT"
                    ),
                )
            })
    }
}

/// The answer of a compatibility test: whether the schema may be registered, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[non_exhaustive]
pub struct CompatibilityCheck {
    /// Whether the schema is compatible under the subject's level.
    pub is_compatible: bool,
    /// The registry's reasons when it is not (asked for with `verbose=true`); may be empty when
    /// the registry does not give reasons.
    #[serde(default)]
    pub messages: Vec<String>,
}

/// `{"compatibilityLevel": …}` (GET) or `{"compatibility": …}` (PUT's echo).
#[derive(Deserialize)]
pub(crate) struct ConfigBody {
    #[serde(rename = "compatibilityLevel")]
    compatibility_level: Option<CompatibilityLevel>,
    compatibility: Option<CompatibilityLevel>,
}

impl ConfigBody {
    pub(crate) fn level(&self) -> Option<CompatibilityLevel> {
        self.compatibility_level.or(self.compatibility)
    }
}

#[derive(Deserialize)]
pub(crate) struct ModeBody {
    pub(crate) mode: Mode,
}

#[derive(Deserialize)]
pub(crate) struct IdBody {
    pub(crate) id: u32,
}

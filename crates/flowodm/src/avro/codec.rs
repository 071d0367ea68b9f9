//! Whole-datum entry points: a type's schema computed once, raw Avro encoding and decoding, and
//! decoding data written with another schema through a compiled [`Resolution`].

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use apache_avro::rabin::Rabin;
use apache_avro::Schema;

use super::binary::Reader;
use super::node::SchemaTree;
use super::resolve::{Plan, Resolution};
use super::{decode_with, Avro};
use crate::error::{Error, Result};
use crate::fasthash::FastMap;

/// A type's Avro schema in the forms a producer and a consumer need, computed once per type.
#[derive(Debug)]
pub struct TypeSchema {
    json: String,
    canonical: String,
    fingerprint: u64,
    tree: SchemaTree,
}

impl TypeSchema {
    fn of<T: Avro>() -> Result<Self> {
        let mut cx = super::SchemaContext::default();
        let json = T::schema(&mut cx).to_string();
        if let Some(problem) = cx.problems().first() {
            return Err(Error::Schema {
                message: format!("the schema of {}: {problem}", std::any::type_name::<T>()),
            });
        }
        let parsed = Schema::parse_str(&json).map_err(|e| Error::Schema {
            message: format!(
                "the schema derived for {} is not valid Avro: {e}",
                std::any::type_name::<T>()
            ),
        })?;
        let canonical = parsed.canonical_form();
        let fp = parsed.fingerprint::<Rabin>();
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&fp.bytes[..8]);
        Ok(TypeSchema {
            json,
            canonical,
            fingerprint: u64::from_le_bytes(bytes),
            tree: SchemaTree::from_schema(&parsed)?,
        })
    }

    /// The schema as JSON, with docs, defaults, aliases and logical types.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The schema's Parsing Canonical Form: what two schemas must share to be the same schema.
    pub fn canonical_form(&self) -> &str {
        &self.canonical
    }

    /// The 64-bit Rabin fingerprint (CRC-64-AVRO) of the canonical form.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    pub(crate) fn tree(&self) -> &SchemaTree {
        &self.tree
    }
}

type SchemaRegistryMap = RwLock<HashMap<TypeId, &'static TypeSchema>>;

/// The schema of `T`, computed on first use and kept for the life of the process.
///
/// Fails only if the derived schema is not valid Avro (for example two different types with the
/// same full name); the error names the type.
///
/// ```
/// #[derive(flowodm::Avro)]
/// #[flowodm(namespace = "com.example")]
/// struct Point { x: i32, y: i32 }
///
/// let schema = flowodm::avro::schema_of::<Point>().unwrap();
/// assert_eq!(
///     schema.canonical_form(),
///     r#"{"name":"com.example.Point","type":"record","fields":[{"name":"x","type":"int"},{"name":"y","type":"int"}]}"#
/// );
/// ```
pub fn schema_of<T: Avro + 'static>() -> Result<&'static TypeSchema> {
    static SCHEMAS: OnceLock<SchemaRegistryMap> = OnceLock::new();
    let map = SCHEMAS.get_or_init(Default::default);
    let id = TypeId::of::<T>();
    if let Some(s) = map.read().expect("schema cache lock").get(&id) {
        return Ok(s);
    }
    let schema: &'static TypeSchema = Box::leak(Box::new(TypeSchema::of::<T>()?));
    let mut w = map.write().expect("schema cache lock");
    Ok(*w.entry(id).or_insert(schema))
}

/// Encodes `value` as a raw Avro datum (no Confluent framing) with its own schema.
///
/// ```
/// let bytes = flowodm::avro::to_avro(&Some(String::from("hi"))).unwrap();
/// assert_eq!(bytes, [2, 4, b'h', b'i']);
/// ```
pub fn to_avro<T: Avro>(value: &T) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    value.encode(&mut buf)?;
    Ok(buf)
}

/// Decodes a raw Avro datum written with `T`'s own schema; every byte must belong to it.
///
/// ```
/// let value: Option<String> = flowodm::avro::from_avro(&[2, 4, b'h', b'i']).unwrap();
/// assert_eq!(value.as_deref(), Some("hi"));
/// assert!(flowodm::avro::from_avro::<Option<String>>(&[2, 4, b'h']).is_err());
/// ```
pub fn from_avro<T: Avro>(datum: &[u8]) -> Result<T> {
    let mut r = Reader::new(datum);
    let value = T::decode(&mut r)?;
    r.finish()?;
    Ok(value)
}

impl Resolution {
    /// Compiles how to read data written with `writer_schema` (Avro JSON) as `T`.
    ///
    /// ```
    /// #[derive(flowodm::Avro, Debug, PartialEq)]
    /// #[flowodm(namespace = "com.example")]
    /// struct Point { x: i64, y: i64, #[flowodm(default = 0)] z: i64 }
    ///
    /// // Written by an older version: ints, and no `z`.
    /// let v1 = r#"{"type":"record","name":"Point","namespace":"com.example",
    ///              "fields":[{"name":"x","type":"int"},{"name":"y","type":"int"}]}"#;
    /// let plan = flowodm::avro::Resolution::for_type::<Point>(v1).unwrap();
    /// let point: Point = flowodm::avro::from_avro_resolved(&[2, 4], &plan).unwrap();
    /// assert_eq!(point, Point { x: 1, y: 2, z: 0 });
    /// ```
    pub fn for_type<T: Avro + 'static>(writer_schema: &str) -> Result<Self> {
        Self::for_type_with_references::<T>(writer_schema, &[])
    }

    /// [`for_type`](Self::for_type) for a writer schema that uses named types of other
    /// schemas (Confluent schema references): `references` holds their texts, in any order
    /// (see `SchemaRegistryClient::referenced_schemas`).
    ///
    /// ```
    /// #[derive(flowodm::Avro, Debug, PartialEq)]
    /// #[flowodm(namespace = "com.shop")]
    /// struct Address { city: String }
    /// #[derive(flowodm::Avro, Debug, PartialEq)]
    /// #[flowodm(namespace = "com.shop")]
    /// struct Customer { address: Address }
    ///
    /// let address = r#"{"type":"record","name":"Address","namespace":"com.shop",
    ///                   "fields":[{"name":"city","type":"string"}]}"#;
    /// let customer = r#"{"type":"record","name":"Customer","namespace":"com.shop",
    ///                    "fields":[{"name":"address","type":"com.shop.Address"}]}"#;
    /// assert!(flowodm::avro::Resolution::for_type::<Customer>(customer).is_err());
    /// let plan = flowodm::avro::Resolution::for_type_with_references::<Customer>(
    ///     customer,
    ///     &[address.to_string()],
    /// )
    /// .unwrap();
    /// let c: Customer = flowodm::avro::from_avro_resolved(&[4, b'N', b'Y'], &plan).unwrap();
    /// assert_eq!(c.address.city, "NY");
    /// ```
    pub fn for_type_with_references<T: Avro + 'static>(
        writer_schema: &str,
        references: &[String],
    ) -> Result<Self> {
        let writer = SchemaTree::parse_with_references(writer_schema, references)?;
        Resolution::compile(&writer, schema_of::<T>()?.tree())
    }
}

/// Decodes a raw Avro datum written with the writer schema of `resolution`.
pub fn from_avro_resolved<T: Avro>(datum: &[u8], resolution: &Resolution) -> Result<T> {
    let mut r = Reader::new(datum);
    let value = decode_with::<T>(&mut r, resolution.root(), resolution)?;
    r.finish()?;
    Ok(value)
}

/// A cache of compiled resolutions for one reader type, keyed by the writer schema's registry id.
///
/// The first datum of each writer schema compiles its plan; every later one reuses it.
///
/// Looking a plan up is on every consumed message's path: the ids are hashed as they are
/// (with a multiplicative hash: registry ids need no SipHash), and [`with`](Self::with) reads without cloning.
#[derive(Debug, Default)]
pub struct ResolutionCache {
    plans: RwLock<FastMap<u32, Arc<Resolution>>>,
}

impl ResolutionCache {
    /// The cached plan for `schema_id`, if any.
    pub fn get(&self, schema_id: u32) -> Option<Arc<Resolution>> {
        self.plans
            .read()
            .expect("resolution cache lock")
            .get(&schema_id)
            .cloned()
    }

    /// Runs `f` with the cached plan for `schema_id` (without cloning it); `None` when there is
    /// no plan for it yet.
    ///
    /// ```
    /// let cache = flowodm::avro::ResolutionCache::default();
    /// assert!(cache.with(7, |_| ()).is_none());
    /// cache.get_or_compile::<i64>(7, r#""int""#).unwrap();
    /// let n: i64 = cache
    ///     .with(7, |plan| flowodm::avro::from_avro_resolved(&[4], plan))
    ///     .unwrap()
    ///     .unwrap();
    /// assert_eq!(n, 2);
    /// ```
    pub fn with<R>(&self, schema_id: u32, f: impl FnOnce(&Resolution) -> R) -> Option<R> {
        let plans = self.plans.read().expect("resolution cache lock");
        plans.get(&schema_id).map(|plan| f(plan))
    }

    /// Compiles (once) and returns the plan for reading `writer_schema` (with id `schema_id`) as `T`.
    pub fn get_or_compile<T: Avro + 'static>(
        &self,
        schema_id: u32,
        writer_schema: &str,
    ) -> Result<Arc<Resolution>> {
        self.get_or_compile_with_references::<T>(schema_id, writer_schema, &[])
    }

    /// [`get_or_compile`](Self::get_or_compile) for a writer schema that uses named types of
    /// the schemas in `references` (their texts; see
    /// [`Resolution::for_type_with_references`]).
    pub fn get_or_compile_with_references<T: Avro + 'static>(
        &self,
        schema_id: u32,
        writer_schema: &str,
        references: &[String],
    ) -> Result<Arc<Resolution>> {
        if let Some(p) = self.get(schema_id) {
            return Ok(p);
        }
        let plan = Arc::new(Resolution::for_type_with_references::<T>(
            writer_schema,
            references,
        )?);
        let mut w = self.plans.write().expect("resolution cache lock");
        Ok(w.entry(schema_id).or_insert(plan).clone())
    }
}

/// Whether a plan reads the datum exactly as the type's own decoder would.
pub fn is_identity(resolution: &Resolution) -> bool {
    matches!(resolution.root(), Plan::Same)
}

/// Compares two schemas as a reader and writer must agree on them: the same Parsing Canonical
/// Form, and the same defaults, logical types and enum defaults. Docs and aliases may differ.
/// `Err` lists every difference with its field path.
///
/// This is [`schema::validate`](crate::schema::validate) on two texts, keeping only its errors.
///
/// ```
/// let a = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","doc":"x"}]}"#;
/// let b = r#"{"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}"#;
/// assert!(flowodm::avro::compare_schemas(a, b).is_ok());
/// let c = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":1}]}"#;
/// assert!(flowodm::avro::compare_schemas(a, c).unwrap_err().contains("default"));
/// ```
pub fn compare_schemas(ours: &str, theirs: &str) -> std::result::Result<(), String> {
    use crate::schema::{validate, AvroSchema};
    let parse = |text: &str, what: &str| {
        AvroSchema::parse(text).map_err(|e| format!("{what} is not a valid Avro schema: {e}"))
    };
    let ours = parse(ours, "the derived schema")?;
    let theirs = parse(theirs, "the file")?;
    let report = validate(&ours, &theirs);
    if report.is_valid() {
        Ok(())
    } else {
        Err(report
            .errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "))
    }
}

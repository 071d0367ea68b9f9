//! Models: Rust structs that stand for the messages of one Kafka topic.
//!
//! A model carries its Kafka settings with it, so producing and consuming need no strings at
//! the call site:
//!
//! - `topic` (required): the topic its messages live in.
//! - `subject`: the schema registry subject of its value schema; by default `{topic}-value`,
//!   Confluent's *TopicNameStrategy*, which every Confluent-compatible client uses unless told
//!   otherwise.
//! - `key`: the field whose value becomes the message key. Kafka hashes the key to choose the
//!   partition, so all messages with one key land in one partition, in order. The key bytes are
//!   the field's text in UTF-8 (`"CUST-00042"`, `"42"`), as other clients write string keys.
//! - `consumer_group`: the consumer group to use when none is given.

use std::borrow::Cow;

/// The Kafka settings of a [`Model`], set with `#[flowodm(...)]` on the struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSettings {
    /// The topic the model's messages are produced to and consumed from.
    pub topic: &'static str,
    /// The registry subject of the value schema; `None` means `{topic}-value`.
    pub subject: Option<&'static str>,
    /// The name of the field used as message key.
    pub key_field: Option<&'static str>,
    /// The consumer group used when none is given.
    pub consumer_group: Option<&'static str>,
}

impl ModelSettings {
    /// The value schema's subject: the one set, or `{topic}-value`.
    ///
    /// ```
    /// let settings = flowodm::ModelSettings {
    ///     topic: "orders", subject: None, key_field: None, consumer_group: None,
    /// };
    /// assert_eq!(settings.subject(), "orders-value");
    /// ```
    pub fn subject(&self) -> Cow<'static, str> {
        match self.subject {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(format!("{}-value", self.topic)),
        }
    }
}

/// A struct that stands for the messages of one Kafka topic.
///
/// Derive it:
///
/// ```
/// use flowodm::Model;
///
/// #[derive(Model)]
/// #[flowodm(topic = "orders", key = "customer_id", consumer_group = "billing")]
/// struct Order {
///     order_id: String,
///     customer_id: String,
///     total_cents: i64,
/// }
///
/// assert_eq!(Order::SETTINGS.topic, "orders");
/// assert_eq!(Order::SETTINGS.subject(), "orders-value");
/// assert_eq!(Order::SETTINGS.consumer_group, Some("billing"));
///
/// let order = Order { order_id: "ORD-1".into(), customer_id: "CUST-00042".into(), total_cents: 1250 };
/// assert_eq!(order.key().as_deref(), Some(&b"CUST-00042"[..]));
/// ```
///
/// # Attributes
///
/// On the struct, `#[flowodm(...)]` takes:
///
/// | attribute | meaning |
/// |---|---|
/// | `topic = "..."` | required: the topic |
/// | `subject = "..."` | the registry subject of the value schema (default `{topic}-value`) |
/// | `key = "field"` | the field whose value is the message key |
/// | `consumer_group = "..."` | the default consumer group |
/// | `schema_file = "path.avsc"` | an Avro schema file (relative to the crate) the derived schema must match, checked on first use |
/// | `crate = "path"` | where the `flowodm` crate is, when it is re-exported under another name |
///
/// The derive also implements [`Avro`](crate::avro::Avro): the struct is an Avro record named
/// after it (or `name`), in `namespace`, with the field attributes `rename`, `alias`,
/// `default = <literal>` and `skip`, container attributes `rename_all` and `alias`, and doc
/// comments as `doc`. Nested structs and enums derive [`Avro`](crate::Avro) with the same
/// attributes.
///
/// A missing topic, an unknown or repeated attribute, and a `key` that names no field are
/// compile errors that point at the offending spot.
///
/// The key field may be a `String`, `&str`, an integer, a `bool` or an `Option` of these; a
/// `None` gives a message without key.
pub trait Model: crate::avro::Avro + 'static {
    /// The model's Kafka settings.
    const SETTINGS: ModelSettings;

    /// The `.avsc` file the model must match (`#[flowodm(schema_file = "...")]`), embedded at
    /// compile time.
    const SCHEMA_FILE: Option<SchemaFile> = None;

    /// The model's schema, computed once. The first call also checks it against
    /// [`SCHEMA_FILE`](Model::SCHEMA_FILE) and fails with the difference if they disagree.
    fn value_schema() -> crate::Result<&'static crate::avro::TypeSchema> {
        let schema = crate::avro::schema_of::<Self>()?;
        if let Some(file) = Self::SCHEMA_FILE {
            check_schema_file::<Self>(schema, file)?;
        }
        Ok(schema)
    }

    /// The message key: the key field's text in UTF-8, or `None` without a key field (or when
    /// it holds `None`).
    fn key(&self) -> Option<Vec<u8>>;

    /// Appends the [`key`](Model::key) to `buf` and tells whether there is one; the producer's
    /// hot path, which reuses one buffer instead of allocating a key per message. The derive
    /// implements it without allocating; by default it copies [`key`](Model::key)'s bytes.
    ///
    /// ```
    /// # #[derive(flowodm::Model)] #[flowodm(topic = "t", key = "id")] struct Order { id: i64 }
    /// use flowodm::Model;
    /// let mut buf = b"payload".to_vec();
    /// assert!(Order { id: 42 }.write_key(&mut buf));
    /// assert_eq!(buf, b"payload42");
    /// ```
    fn write_key(&self, buf: &mut Vec<u8>) -> bool {
        match self.key() {
            Some(key) => {
                buf.extend_from_slice(&key);
                true
            }
            None => false,
        }
    }
}

/// An `.avsc` file embedded in a model, which the derived schema must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaFile {
    /// The path, relative to the crate's manifest directory.
    pub path: &'static str,
    /// The file's contents.
    pub contents: &'static str,
}

fn check_schema_file<T: 'static>(
    schema: &crate::avro::TypeSchema,
    file: SchemaFile,
) -> crate::Result<()> {
    use std::any::TypeId;
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static CHECKED: OnceLock<Mutex<HashSet<TypeId>>> = OnceLock::new();
    let checked = CHECKED.get_or_init(Default::default);
    if checked.lock().expect("lock").contains(&TypeId::of::<T>()) {
        return Ok(());
    }
    use crate::schema::{validate, AvroSchema, Origin};
    let ours =
        AvroSchema::parse(schema.json())?.with_origin(Origin::Model(std::any::type_name::<T>()));
    let theirs = AvroSchema::parse(file.contents)
        .map_err(|e| crate::Error::Schema {
            message: format!("{}: {e}", file.path),
        })?
        .with_origin(Origin::File(file.path.into()));
    let report = validate(&ours, &theirs);
    if !report.is_valid() {
        let why: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        return Err(crate::Error::Schema {
            message: format!(
                "{} does not match {}: {}",
                std::any::type_name::<T>(),
                file.path,
                why.join("; ")
            ),
        });
    }
    checked.lock().expect("lock").insert(TypeId::of::<T>());
    Ok(())
}

/// A type that can be a model's key field.
///
/// Implemented for `String`, `str`, the integers, `bool`, and references and `Option`s of them.
///
/// ```
/// use flowodm::model::KeyField;
/// assert_eq!(42u32.key_bytes(), Some(b"42".to_vec()));
/// assert_eq!(None::<String>.key_bytes(), None);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a message key",
    label = "the `key` field has this type",
    note = "a key field must be a String, &str, an integer, a bool, or an Option of these"
)]
pub trait KeyField {
    /// The key bytes for this value.
    fn key_bytes(&self) -> Option<Vec<u8>>;

    /// Appends the [`key_bytes`](KeyField::key_bytes) to `buf` without allocating them
    /// separately; `false` (and nothing appended) when there is no key.
    fn write_key(&self, buf: &mut Vec<u8>) -> bool {
        match self.key_bytes() {
            Some(key) => {
                buf.extend_from_slice(&key);
                true
            }
            None => false,
        }
    }
}

impl KeyField for String {
    fn key_bytes(&self) -> Option<Vec<u8>> {
        Some(self.as_bytes().to_vec())
    }

    fn write_key(&self, buf: &mut Vec<u8>) -> bool {
        buf.extend_from_slice(self.as_bytes());
        true
    }
}

impl KeyField for str {
    fn key_bytes(&self) -> Option<Vec<u8>> {
        Some(self.as_bytes().to_vec())
    }

    fn write_key(&self, buf: &mut Vec<u8>) -> bool {
        buf.extend_from_slice(self.as_bytes());
        true
    }
}

impl<T: KeyField + ?Sized> KeyField for &T {
    fn key_bytes(&self) -> Option<Vec<u8>> {
        (**self).key_bytes()
    }

    fn write_key(&self, buf: &mut Vec<u8>) -> bool {
        (**self).write_key(buf)
    }
}

impl<T: KeyField> KeyField for Option<T> {
    fn key_bytes(&self) -> Option<Vec<u8>> {
        self.as_ref().and_then(KeyField::key_bytes)
    }

    fn write_key(&self, buf: &mut Vec<u8>) -> bool {
        self.as_ref().is_some_and(|k| k.write_key(buf))
    }
}

macro_rules! key_via_display {
    ($($t:ty),*) => {$(
        impl KeyField for $t {
            fn key_bytes(&self) -> Option<Vec<u8>> {
                Some(self.to_string().into_bytes())
            }

            fn write_key(&self, buf: &mut Vec<u8>) -> bool {
                use std::io::Write as _;
                // Writing to a Vec cannot fail.
                write!(buf, "{self}").is_ok()
            }
        }
    )*};
}

key_via_display!(bool, i8, i16, i32, i64, i128, u8, u16, u32, u64, u128, isize, usize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_utf8_text() {
        assert_eq!("é".key_bytes(), Some("é".as_bytes().to_vec()));
        assert_eq!((-7i64).key_bytes(), Some(b"-7".to_vec()));
        assert_eq!(true.key_bytes(), Some(b"true".to_vec()));
        assert_eq!(Some(String::from("k")).key_bytes(), Some(b"k".to_vec()));
    }

    #[test]
    fn written_keys_match_key_bytes() {
        fn check<K: KeyField + ?Sized>(k: &K) {
            let mut buf = b"prefix".to_vec();
            let written = k.write_key(&mut buf);
            assert_eq!(written, k.key_bytes().is_some());
            let mut expected = b"prefix".to_vec();
            expected.extend(k.key_bytes().unwrap_or_default());
            assert_eq!(buf, expected);
        }
        check("é");
        check(&String::from("CUST-00042"));
        check(&-7i64);
        check(&u128::MAX);
        check(&true);
        check(&Some(String::from("k")));
        check(&None::<String>);
        check(&Some(12u8));
        check(&&"ref");
    }

    #[test]
    fn explicit_subject_wins() {
        let s = ModelSettings {
            topic: "t",
            subject: Some("custom"),
            key_field: None,
            consumer_group: None,
        };
        assert_eq!(s.subject(), "custom");
    }
}

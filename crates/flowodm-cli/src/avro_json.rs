//! Avro binary ⇄ plain JSON for a schema known only at run time (the registry's).
//!
//! This is what `produce` and `consume` speak on stdin and stdout, so it is made for people and
//! shell pipelines rather than speed:
//!
//! - A union takes and gives the plain value: `null`, or the value of one branch, never Avro's
//!   `{"branch": value}` wrapping. On input the first branch (in the schema's order) that
//!   accepts the value wins: JSON types pick primitives, field names pick records. The wrapped
//!   form is accepted too, when no branch takes the value as it is.
//! - `bytes` and `fixed` are strings of code points U+0000..U+00FF, one per byte, as in Avro's
//!   JSON encoding.
//! - Logical types are their underlying value: a `timestamp-millis` is a number of
//!   milliseconds, a `uuid` a string, a `decimal` its bytes.
//! - `float` and `double` are JSON numbers; NaN and the infinities, which JSON has no number
//!   for, are the strings `"NaN"`, `"Infinity"` and `"-Infinity"`.
//! - A record field missing from the input takes its schema default; an unknown field is an
//!   error, so typos do not vanish silently.
//!
//! Output keeps the schema's field order and a map's order on the wire, so it is written as
//! text directly rather than through `serde_json::Value` (whose objects sort their keys).

use std::collections::HashMap;
use std::fmt::Write as _;

use apache_avro::schema::{Name, RecordSchema, UnionSchema, UuidSchema};
use apache_avro::Schema;
use flowodm::avro::binary::{
    write_bool, write_bytes, write_double, write_float, write_int, write_long,
};
use flowodm::avro::Reader;
use serde_json::Value as Json;

/// A parsed writer schema with its named types, ready to encode and decode.
#[derive(Debug)]
pub struct AvroJson {
    schema: Schema,
    names: HashMap<Name, Schema>,
}

impl AvroJson {
    /// Parses `text`; `references` are the texts of the schemas it refers to by name.
    pub fn parse(text: &str, references: &[String]) -> Result<Self, String> {
        let schema = if references.is_empty() {
            Schema::parse_str(text).map_err(|e| e.to_string())?
        } else {
            let (schema, others) =
                Schema::parse_str_with_list(text, references).map_err(|e| e.to_string())?;
            let mut names = HashMap::new();
            for other in &others {
                collect_names(other, &mut names);
            }
            collect_names(&schema, &mut names);
            return Ok(AvroJson { schema, names });
        };
        let mut names = HashMap::new();
        collect_names(&schema, &mut names);
        Ok(AvroJson { schema, names })
    }

    /// Appends the Avro binary encoding of `value` to `buf`, or says where and why it does not
    /// fit the schema.
    pub fn encode(&self, value: &Json, buf: &mut Vec<u8>) -> Result<(), String> {
        let mut path = String::from("$");
        self.encode_at(&self.schema, value, buf, &mut path)
            .map_err(|e| format!("{}: {}", e.path, e.message))
    }

    /// Decodes one datum that fills `datum` exactly into JSON text.
    pub fn decode(&self, datum: &[u8]) -> Result<String, String> {
        let mut reader = Reader::new(datum);
        let mut out = String::new();
        self.decode_at(&self.schema, &mut reader, &mut out)
            .map_err(|e| e.to_string())?;
        reader.finish().map_err(|e| e.to_string())?;
        Ok(out)
    }

    fn resolve<'a>(&'a self, schema: &'a Schema) -> Result<&'a Schema, String> {
        match schema {
            Schema::Ref { name } => self
                .names
                .get(name)
                .ok_or_else(|| format!("the schema refers to the unknown type `{name}`")),
            other => Ok(other),
        }
    }

    fn encode_at(
        &self,
        schema: &Schema,
        value: &Json,
        buf: &mut Vec<u8>,
        path: &mut String,
    ) -> Result<(), EncodeError> {
        let schema = self.resolve(schema).map_err(|m| EncodeError::at(path, m))?;
        let wrong = |expected: &str| {
            EncodeError::at(
                path,
                format!("expected {expected}, found {}", describe(value)),
            )
        };
        match schema {
            Schema::Null => match value {
                Json::Null => Ok(()),
                _ => Err(wrong("null")),
            },
            Schema::Boolean => match value {
                Json::Bool(b) => {
                    write_bool(buf, *b);
                    Ok(())
                }
                _ => Err(wrong("a boolean")),
            },
            Schema::Int | Schema::Date | Schema::TimeMillis => {
                let n = value.as_i64().ok_or_else(|| wrong("an integer"))?;
                let n = i32::try_from(n)
                    .map_err(|_| EncodeError::at(path, format!("{n} does not fit an Avro int")))?;
                write_int(buf, n);
                Ok(())
            }
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => {
                let n = value.as_i64().ok_or_else(|| wrong("an integer"))?;
                write_long(buf, n);
                Ok(())
            }
            Schema::Float => {
                let f = float_of(value).ok_or_else(|| wrong("a number"))?;
                if f.is_finite() && !(f as f32).is_finite() {
                    return Err(wrong("a number within a float's range"));
                }
                write_float(buf, f as f32);
                Ok(())
            }
            Schema::Double => {
                let f = float_of(value).ok_or_else(|| wrong("a number"))?;
                write_double(buf, f);
                Ok(())
            }
            Schema::String | Schema::Uuid(UuidSchema::String) => match value {
                Json::String(s) => {
                    write_bytes(buf, s.as_bytes());
                    Ok(())
                }
                _ => Err(wrong("a string")),
            },
            Schema::Bytes
            | Schema::BigDecimal
            | Schema::Uuid(UuidSchema::Bytes)
            | Schema::Decimal(apache_avro::schema::DecimalSchema {
                inner: apache_avro::schema::InnerDecimalSchema::Bytes,
                ..
            }) => {
                let bytes = code_points(value, path)?;
                write_bytes(buf, &bytes);
                Ok(())
            }
            Schema::Fixed(f) | Schema::Duration(f) | Schema::Uuid(UuidSchema::Fixed(f)) => {
                self.encode_fixed(f.size, value, buf, path)
            }
            Schema::Decimal(apache_avro::schema::DecimalSchema {
                inner: apache_avro::schema::InnerDecimalSchema::Fixed(f),
                ..
            }) => self.encode_fixed(f.size, value, buf, path),
            Schema::Enum(e) => {
                let Json::String(symbol) = value else {
                    return Err(wrong("an enum symbol (a string)"));
                };
                let index = e.symbols.iter().position(|s| s == symbol).ok_or_else(|| {
                    EncodeError::at(
                        path,
                        format!(
                            "`{symbol}` is not a symbol of enum {}; expected one of {}",
                            e.name,
                            e.symbols.join(", ")
                        ),
                    )
                })?;
                write_int(buf, index as i32);
                Ok(())
            }
            Schema::Array(a) => {
                let Json::Array(items) = value else {
                    return Err(wrong("an array"));
                };
                if !items.is_empty() {
                    write_long(buf, items.len() as i64);
                    for (i, item) in items.iter().enumerate() {
                        let len = path.len();
                        let _ = write!(path, "[{i}]");
                        self.encode_at(&a.items, item, buf, path)?;
                        path.truncate(len);
                    }
                }
                write_long(buf, 0);
                Ok(())
            }
            Schema::Map(m) => {
                let Json::Object(entries) = value else {
                    return Err(wrong("an object (an Avro map)"));
                };
                if !entries.is_empty() {
                    write_long(buf, entries.len() as i64);
                    for (key, item) in entries {
                        write_bytes(buf, key.as_bytes());
                        let len = path.len();
                        let _ = write!(path, "[{key:?}]");
                        self.encode_at(&m.types, item, buf, path)?;
                        path.truncate(len);
                    }
                }
                write_long(buf, 0);
                Ok(())
            }
            Schema::Record(r) => self.encode_record(r, value, buf, path),
            Schema::Union(u) => self.encode_union(u, value, buf, path),
            Schema::Ref { .. } => unreachable!("resolved above"),
        }
    }

    fn encode_fixed(
        &self,
        size: usize,
        value: &Json,
        buf: &mut Vec<u8>,
        path: &str,
    ) -> Result<(), EncodeError> {
        let bytes = code_points(value, path)?;
        if bytes.len() != size {
            return Err(EncodeError::at(
                path,
                format!(
                    "a fixed of {size} bytes needs {size} code points, found {}",
                    bytes.len()
                ),
            ));
        }
        buf.extend_from_slice(&bytes);
        Ok(())
    }

    fn encode_record(
        &self,
        record: &RecordSchema,
        value: &Json,
        buf: &mut Vec<u8>,
        path: &mut String,
    ) -> Result<(), EncodeError> {
        let Json::Object(object) = value else {
            return Err(EncodeError::at(
                path,
                format!(
                    "expected an object (record {}), found {}",
                    record.name,
                    describe(value)
                ),
            ));
        };
        if let Some(unknown) = object
            .keys()
            .find(|k| !record.fields.iter().any(|f| &f.name == *k))
        {
            return Err(EncodeError::at(
                path,
                format!(
                    "record {} has no field `{unknown}`; its fields are {}",
                    record.name,
                    record
                        .fields
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        for field in &record.fields {
            let len = path.len();
            path.push('.');
            path.push_str(&field.name);
            match (object.get(&field.name), &field.default) {
                (Some(v), _) => self.encode_at(&field.schema, v, buf, path)?,
                (None, Some(default)) => self.encode_at(&field.schema, default, buf, path)?,
                (None, None) => {
                    return Err(EncodeError::at(
                        path,
                        "missing, and the field has no default".to_string(),
                    ))
                }
            }
            path.truncate(len);
        }
        Ok(())
    }

    fn encode_union(
        &self,
        union: &UnionSchema,
        value: &Json,
        buf: &mut Vec<u8>,
        path: &mut String,
    ) -> Result<(), EncodeError> {
        let variants = union.variants();
        let mut first_error = None;
        let len = path.len();
        for (index, branch) in variants.iter().enumerate() {
            let mut scratch = Vec::new();
            let attempt = self.encode_at(branch, value, &mut scratch, path);
            // A branch that failed inside a record, array or map left its part of the path.
            path.truncate(len);
            match attempt {
                Ok(()) => {
                    write_long(buf, index as i64);
                    buf.extend_from_slice(&scratch);
                    return Ok(());
                }
                Err(e) => {
                    // The error of the one non-null branch says most; keep the first of those.
                    if !matches!(branch, Schema::Null) && first_error.is_none() {
                        first_error = Some(e);
                    }
                }
            }
        }
        // Avro's own JSON form, {"type name": value}, when the plain value fits no branch.
        if let Json::Object(object) = value {
            if let [(name, inner)] = object.iter().collect::<Vec<_>>()[..] {
                if let Some(index) = variants.iter().position(|b| self.branch_name(b) == *name) {
                    write_long(buf, index as i64);
                    return self.encode_at(&variants[index], inner, buf, path);
                }
            }
        }
        let non_null = variants
            .iter()
            .filter(|b| !matches!(b, Schema::Null))
            .count();
        match first_error {
            Some(e) if non_null == 1 => Err(e),
            _ => Err(EncodeError::at(
                path,
                format!(
                    "{} fits no branch of the union [{}]",
                    describe(value),
                    variants
                        .iter()
                        .map(|b| self.branch_name(b))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    /// The name a union branch goes by in Avro's JSON encoding.
    fn branch_name(&self, schema: &Schema) -> String {
        match schema {
            Schema::Ref { name } => name.to_string(),
            other => match other.name() {
                Some(name) => name.to_string(),
                None => primitive_name(other).to_string(),
            },
        }
    }

    fn decode_at(
        &self,
        schema: &Schema,
        r: &mut Reader<'_>,
        out: &mut String,
    ) -> Result<(), String> {
        let schema = self.resolve(schema)?;
        let err = |e: flowodm::Error| e.to_string();
        match schema {
            Schema::Null => out.push_str("null"),
            Schema::Boolean => out.push_str(if r.read_bool().map_err(err)? {
                "true"
            } else {
                "false"
            }),
            Schema::Int | Schema::Date | Schema::TimeMillis => {
                let _ = write!(out, "{}", r.read_int().map_err(err)?);
            }
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => {
                let _ = write!(out, "{}", r.read_long().map_err(err)?);
            }
            Schema::Float => {
                let f = r.read_float().map_err(err)?;
                // The shortest text that reads back as the same f32, e.g. 0.1 and not
                // 0.10000000149011612.
                write_float_text(out, f.is_finite().then(|| f.to_string()), f64::from(f));
            }
            Schema::Double => {
                let f = r.read_double().map_err(err)?;
                write_float_text(out, None, f);
            }
            Schema::String | Schema::Uuid(UuidSchema::String) => {
                write_json_str(out, r.read_str().map_err(err)?);
            }
            Schema::Bytes
            | Schema::BigDecimal
            | Schema::Uuid(UuidSchema::Bytes)
            | Schema::Decimal(apache_avro::schema::DecimalSchema {
                inner: apache_avro::schema::InnerDecimalSchema::Bytes,
                ..
            }) => write_code_points(out, r.read_bytes().map_err(err)?),
            Schema::Fixed(f) | Schema::Duration(f) | Schema::Uuid(UuidSchema::Fixed(f)) => {
                write_code_points(out, r.take(f.size, "fixed").map_err(err)?)
            }
            Schema::Decimal(apache_avro::schema::DecimalSchema {
                inner: apache_avro::schema::InnerDecimalSchema::Fixed(f),
                ..
            }) => write_code_points(out, r.take(f.size, "fixed").map_err(err)?),
            Schema::Enum(e) => {
                let index = r.read_int().map_err(err)?;
                let symbol = usize::try_from(index)
                    .ok()
                    .and_then(|i| e.symbols.get(i))
                    .ok_or_else(|| format!("enum {} has no symbol number {index}", e.name))?;
                write_json_str(out, symbol);
            }
            Schema::Array(a) => {
                out.push('[');
                let mut first = true;
                r.enter().map_err(err)?;
                loop {
                    let count = r.read_block_count().map_err(err)?;
                    if count == 0 {
                        break;
                    }
                    for _ in 0..count {
                        if !first {
                            out.push(',');
                        }
                        first = false;
                        self.decode_at(&a.items, r, out)?;
                    }
                }
                r.leave();
                out.push(']');
            }
            Schema::Map(m) => {
                out.push('{');
                let mut first = true;
                r.enter().map_err(err)?;
                loop {
                    let count = r.read_block_count().map_err(err)?;
                    if count == 0 {
                        break;
                    }
                    for _ in 0..count {
                        if !first {
                            out.push(',');
                        }
                        first = false;
                        write_json_str(out, r.read_str().map_err(err)?);
                        out.push(':');
                        self.decode_at(&m.types, r, out)?;
                    }
                }
                r.leave();
                out.push('}');
            }
            Schema::Record(rec) => {
                out.push('{');
                r.enter().map_err(err)?;
                for (i, field) in rec.fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_str(out, &field.name);
                    out.push(':');
                    self.decode_at(&field.schema, r, out)?;
                }
                r.leave();
                out.push('}');
            }
            Schema::Union(u) => {
                let index = r.read_long().map_err(err)?;
                let branch = usize::try_from(index)
                    .ok()
                    .and_then(|i| u.variants().get(i))
                    .ok_or_else(|| format!("the union has no branch number {index}"))?;
                self.decode_at(branch, r, out)?;
            }
            Schema::Ref { .. } => unreachable!("resolved above"),
        }
        Ok(())
    }
}

/// Why a value does not fit, and where (a JSON path such as `$.items[2].sku`).
#[derive(Debug)]
struct EncodeError {
    path: String,
    message: String,
}

impl EncodeError {
    fn at(path: &str, message: String) -> Self {
        EncodeError {
            path: path.to_string(),
            message,
        }
    }
}

fn collect_names(schema: &Schema, names: &mut HashMap<Name, Schema>) {
    match schema {
        Schema::Record(r) if names.insert(r.name.clone(), schema.clone()).is_none() => {
            for f in &r.fields {
                collect_names(&f.schema, names);
            }
        }
        Schema::Enum(e) => {
            names.insert(e.name.clone(), schema.clone());
        }
        Schema::Fixed(f) | Schema::Duration(f) | Schema::Uuid(UuidSchema::Fixed(f)) => {
            names.insert(f.name.clone(), schema.clone());
        }
        Schema::Decimal(apache_avro::schema::DecimalSchema {
            inner: apache_avro::schema::InnerDecimalSchema::Fixed(f),
            ..
        }) => {
            names.insert(f.name.clone(), schema.clone());
        }
        Schema::Array(a) => collect_names(&a.items, names),
        Schema::Map(m) => collect_names(&m.types, names),
        Schema::Union(u) => {
            for v in u.variants() {
                collect_names(v, names);
            }
        }
        _ => {}
    }
}

fn primitive_name(schema: &Schema) -> &'static str {
    match schema {
        Schema::Null => "null",
        Schema::Boolean => "boolean",
        Schema::Int | Schema::Date | Schema::TimeMillis => "int",
        Schema::Float => "float",
        Schema::Double => "double",
        Schema::Bytes
        | Schema::BigDecimal
        | Schema::Decimal(_)
        | Schema::Uuid(UuidSchema::Bytes) => "bytes",
        Schema::String | Schema::Uuid(_) => "string",
        Schema::Array(_) => "array",
        Schema::Map(_) => "map",
        _ => "long",
    }
}

fn describe(value: &Json) -> String {
    let text = value.to_string();
    let shown = if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
    };
    let kind = match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(n) if n.is_f64() => "a number",
        Json::Number(_) => "an integer",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    };
    if matches!(value, Json::Null) {
        kind.to_string()
    } else {
        format!("{kind} ({shown})")
    }
}

fn float_of(value: &Json) -> Option<f64> {
    match value {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// A string's code points as bytes, each at most U+00FF.
fn code_points(value: &Json, path: &str) -> Result<Vec<u8>, EncodeError> {
    let Json::String(s) = value else {
        return Err(EncodeError::at(
            path,
            format!(
                "expected a string of code points U+0000..U+00FF (Avro bytes), found {}",
                describe(value)
            ),
        ));
    };
    s.chars()
        .map(|c| {
            u8::try_from(u32::from(c)).map_err(|_| {
                EncodeError::at(
                    path,
                    format!(
                        "`{c}` (U+{:04X}) is not a byte: Avro bytes are written as code points \
                         U+0000..U+00FF",
                        u32::from(c)
                    ),
                )
            })
        })
        .collect()
}

fn write_code_points(out: &mut String, bytes: &[u8]) {
    let s: String = bytes.iter().map(|&b| char::from(b)).collect();
    write_json_str(out, &s);
}

fn write_json_str(out: &mut String, s: &str) {
    // serde_json escapes exactly what JSON requires.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

fn write_float_text(out: &mut String, shortest: Option<String>, f: f64) {
    if f.is_nan() {
        out.push_str("\"NaN\"");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else {
        let f = shortest.and_then(|s| s.parse::<f64>().ok()).unwrap_or(f);
        // serde_json prints finite f64s as the shortest text that reads back, with a `.0` for
        // whole numbers, so a double stays a double.
        out.push_str(&Json::from(f).to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const EVENT: &str = r#"{
      "type": "record", "name": "Event", "namespace": "t",
      "fields": [
        {"name": "id", "type": "string"},
        {"name": "note", "type": ["null", "string"], "default": null},
        {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID"]}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "address", "type": ["null", {"type": "record", "name": "Address",
            "fields": [{"name": "city", "type": "string"}, {"name": "zip", "type": ["null", "int"], "default": null}]}]},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "attrs", "type": {"type": "map", "values": "long"}},
        {"name": "blob", "type": "bytes"},
        {"name": "ratio", "type": "float"},
        {"name": "score", "type": "double"},
        {"name": "home", "type": ["null", "Address"], "default": null},
        {"name": "either", "type": ["int", "string", "Status"]},
        {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 2}}
      ]}"#;

    fn round_trip(codec: &AvroJson, value: &Json) -> Json {
        let mut buf = Vec::new();
        codec.encode(value, &mut buf).unwrap();
        serde_json::from_str(&codec.decode(&buf).unwrap()).unwrap()
    }

    fn sample() -> Json {
        json!({
            "id": "e-1", "note": "hi", "status": "PAID", "at": 1_763_800_000_123i64,
            "address": {"city": "Lyon", "zip": 69001},
            "tags": ["a", "b"], "attrs": {"x": 1, "y": -2},
            "blob": "\u{0}\u{ff}A", "ratio": 0.1, "score": 2.5,
            "home": null, "either": "PAID", "hash": "ab"
        })
    }

    #[test]
    fn plain_json_round_trips() {
        let codec = AvroJson::parse(EVENT, &[]).unwrap();
        let value = sample();
        assert_eq!(round_trip(&codec, &value), value);
        let mut other = sample();
        other["note"] = Json::Null;
        other["address"] = Json::Null;
        other["home"] = json!({"city": "Paris", "zip": null});
        other["either"] = json!(7);
        other["score"] = json!("NaN");
        assert_eq!(round_trip(&codec, &other), other);
    }

    #[test]
    fn a_number_beyond_a_floats_range_is_an_error_not_infinity() {
        let codec = AvroJson::parse(
            r#"{"type":"record","name":"F","fields":[{"name":"f","type":"float"}]}"#,
            &[],
        )
        .unwrap();
        let mut buf = Vec::new();
        let e = codec.encode(&json!({"f": 1e39}), &mut buf).unwrap_err();
        assert!(e.to_string().contains("within a float's range"), "{e}");
        let mut buf = Vec::new();
        codec.encode(&json!({"f": 1.5}), &mut buf).unwrap();
    }

    #[test]
    fn output_keeps_the_schema_order_and_fills_defaults() {
        let codec = AvroJson::parse(EVENT, &[]).unwrap();
        let mut value = sample();
        value.as_object_mut().unwrap().remove("note");
        let mut buf = Vec::new();
        codec.encode(&value, &mut buf).unwrap();
        let text = codec.decode(&buf).unwrap();
        assert!(
            text.starts_with(r#"{"id":"e-1","note":null,"status":"PAID""#),
            "{text}"
        );
    }

    #[test]
    fn a_value_no_union_branch_takes_is_reported_at_the_union() {
        let codec = AvroJson::parse(
            r#"{"type":"record","name":"U","fields":[{"name":"x","type":[
                "null",
                {"type":"record","name":"R","fields":[{"name":"a","type":"int"}]},
                {"type":"array","items":"int"}
            ]}]}"#,
            &[],
        )
        .unwrap();
        let mut buf = Vec::new();
        let e = codec
            .encode(&json!({"x": {"a": "oops"}}), &mut buf)
            .unwrap_err();
        assert!(
            e.starts_with("$.x: ") && e.contains("fits no branch of the union [null, R, array]"),
            "{e}"
        );
    }

    #[test]
    fn avro_json_union_form_is_accepted() {
        let codec = AvroJson::parse(EVENT, &[]).unwrap();
        let mut value = sample();
        value["note"] = json!({"string": "wrapped"});
        let back = round_trip(&codec, &value);
        assert_eq!(back["note"], json!("wrapped"));
    }

    #[test]
    fn mistakes_name_the_path() {
        let codec = AvroJson::parse(EVENT, &[]).unwrap();
        let cases = [
            (
                "/status",
                json!("LOST"),
                "$.status: `LOST` is not a symbol of enum t.Status",
            ),
            (
                "/address/city",
                json!(5),
                "$.address.city: expected a string, found an integer (5)",
            ),
            (
                "/tags/1",
                json!(null),
                "$.tags[1]: expected a string, found null",
            ),
            (
                "/hash",
                json!("abc"),
                "$.hash: a fixed of 2 bytes needs 2 code points, found 3",
            ),
            ("/blob", json!("€"), "$.blob: `€` (U+20AC) is not a byte"),
            (
                "/either",
                json!(true),
                "$.either: a boolean (true) fits no branch of the union [int, string, t.Status]",
            ),
            (
                "/at",
                json!(1.5),
                "$.at: expected an integer, found a number (1.5)",
            ),
        ];
        for (pointer, bad, want) in cases {
            let mut value = sample();
            *value.pointer_mut(pointer).unwrap() = bad;
            let err = codec.encode(&value, &mut Vec::new()).unwrap_err();
            assert!(err.starts_with(want), "{pointer}: {err}");
        }
        let mut value = sample();
        value["colour"] = json!("red");
        let err = codec.encode(&value, &mut Vec::new()).unwrap_err();
        assert!(
            err.contains("record t.Event has no field `colour`"),
            "{err}"
        );
        value.as_object_mut().unwrap().remove("colour");
        value.as_object_mut().unwrap().remove("id");
        let err = codec.encode(&value, &mut Vec::new()).unwrap_err();
        assert_eq!(err, "$.id: missing, and the field has no default");
        let err = codec.encode(&json!(1i64 << 40), &mut Vec::new());
        assert!(err.is_err());
        let int = AvroJson::parse(r#""int""#, &[]).unwrap();
        assert_eq!(
            int.encode(&json!(1i64 << 40), &mut Vec::new()).unwrap_err(),
            "$: 1099511627776 does not fit an Avro int"
        );
    }

    #[test]
    fn numbers_print_as_their_avro_type() {
        let schema = r#"{"type":"record","name":"F","fields":[
            {"name":"d","type":"double"},{"name":"f","type":"float"},{"name":"l","type":"long"}]}"#;
        let codec = AvroJson::parse(schema, &[]).unwrap();
        let mut buf = Vec::new();
        codec
            .encode(&json!({"d": 2, "f": 0.1, "l": -7}), &mut buf)
            .unwrap();
        // A whole double keeps its `.0`; a float prints as the shortest text of the f32.
        assert_eq!(codec.decode(&buf).unwrap(), r#"{"d":2.0,"f":0.1,"l":-7}"#);
        buf.clear();
        codec
            .encode(
                &json!({"d": "-Infinity", "f": "Infinity", "l": 0}),
                &mut buf,
            )
            .unwrap();
        assert_eq!(
            codec.decode(&buf).unwrap(),
            r#"{"d":"-Infinity","f":"Infinity","l":0}"#
        );
    }

    #[test]
    fn corrupt_or_short_data_is_an_error() {
        let codec = AvroJson::parse(EVENT, &[]).unwrap();
        let mut buf = Vec::new();
        codec.encode(&sample(), &mut buf).unwrap();
        assert!(codec.decode(&buf[..buf.len() - 1]).is_err());
        buf.push(0);
        assert!(codec.decode(&buf).is_err(), "trailing bytes");
        let e = AvroJson::parse(r#"{"type":"enum","name":"E","symbols":["A"]}"#, &[]).unwrap();
        assert!(e.decode(&[4]).unwrap_err().contains("no symbol number 2"));
    }

    #[test]
    fn logical_types_are_their_underlying_values() {
        let schema = r#"{"type":"record","name":"L","fields":[
            {"name":"d","type":{"type":"int","logicalType":"date"}},
            {"name":"u","type":{"type":"string","logicalType":"uuid"}},
            {"name":"m","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
            {"name":"f","type":{"type":"fixed","name":"F","size":2,"logicalType":"decimal","precision":4,"scale":1}},
            {"name":"t","type":{"type":"long","logicalType":"timestamp-micros"}},
            {"name":"lt","type":{"type":"long","logicalType":"local-timestamp-millis"}}]}"#;
        let codec = AvroJson::parse(schema, &[]).unwrap();
        let value = json!({"d": 20000, "u": "0e4c7f0a-7c3a-4b4e-9d7e-1f0f4f7b9a11",
            "m": "\u{1}\u{2c}", "f": "\u{0}\u{7}", "t": 1_763_800_000_123_456i64, "lt": 5});
        assert_eq!(round_trip(&codec, &value), value);
    }

    #[test]
    fn references_resolve_named_types_from_other_schemas() {
        let address = r#"{"type":"record","name":"Address","namespace":"x","fields":[{"name":"city","type":"string"}]}"#;
        let customer = r#"{"type":"record","name":"Customer","namespace":"x","fields":[{"name":"address","type":"x.Address"}]}"#;
        let codec = AvroJson::parse(customer, &[address.to_string()]).unwrap();
        let value = json!({"address": {"city": "Oslo"}});
        assert_eq!(round_trip(&codec, &value), value);
    }
}

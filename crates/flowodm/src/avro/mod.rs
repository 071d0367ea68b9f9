//! Avro for Rust types: schemas derived from the type, and encoders and decoders generated for
//! it.
//!
//! [`Avro`] is implemented by `#[derive(Avro)]` (and by `#[derive(Model)]`) for structs and
//! enums, and here for the standard types:
//!
//! | Rust | Avro |
//! |---|---|
//! | `bool` | `boolean` |
//! | `i8`, `i16`, `i32`, `u8`, `u16` | `int` (range-checked on decode) |
//! | `i64`, `u32` | `long` |
//! | `f32` / `f64` | `float` / `double` |
//! | `String`, `Cow<'static, str>`, `Box<str>`, `Arc<str>` | `string` (a borrowed `&str` field cannot be decoded into; use `Cow`) |
//! | `Vec<u8>` | `bytes` |
//! | `Option<T>` | `["null", T]`, default `null` |
//! | `Vec<T>` | `array` |
//! | `HashMap<String, T>`, `BTreeMap<String, T>` | `map` |
//! | `Box<T>` | `T` |
//! | `[u8; N]` | `fixed` |
//! | struct | `record` |
//! | enum of unit variants | `enum` |
//!
//! Dates, times, UUIDs and decimals: see [`logical`].
//!
//! Encoding writes into a caller-owned buffer; decoding reads from a borrowed slice through a
//! bounds-checked [`Reader`]. Neither builds a generic value tree nor looks at a schema per
//! message. When the writer's schema differs from the type's, a [`Resolution`] compiled once per
//! writer schema drives the generated decoder (see [`resolve`]).

pub mod binary;
mod codec;
pub mod logical;
pub(crate) mod node;
pub mod resolve;
#[doc(hidden)]
pub mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;

use serde_json::{json, Value as Json};

pub use binary::Reader;
pub use codec::{
    compare_schemas, from_avro, from_avro_resolved, is_identity, schema_of, to_avro,
    ResolutionCache, TypeSchema,
};
pub use resolve::{Plan, Resolution};

use crate::error::{Error, Result};
use binary::invalid;
use resolve::Promotion;

/// The named types already written into a schema being built, and the enclosing namespace.
///
/// A named type (record, enum, fixed) is written out in full the first time and by its full
/// name afterwards, which is also how recursive types refer to themselves.
#[derive(Debug, Default)]
pub struct SchemaContext {
    defined: HashSet<String>,
    namespace: Vec<String>,
    problems: Vec<String>,
}

impl SchemaContext {
    /// Starts defining the named type `full_name`; `false` if it is already defined (then write
    /// only its name).
    pub fn define(&mut self, full_name: &str) -> bool {
        self.defined.insert(full_name.to_string())
    }

    /// Refers to the already defined type `name` in `namespace`: its full name, or a problem when
    /// a type without namespace is referred to from inside a namespace (a short name there means
    /// a type of that namespace, so Avro has no way to say it).
    pub fn reference(&mut self, name: &str, namespace: &str) -> Json {
        if namespace.is_empty() && !self.enclosing_namespace().is_empty() {
            self.problems.push(format!(
                "`{name}` has no namespace and is used again inside namespace `{}`, where Avro \
                 cannot refer to it; give it one with #[flowodm(namespace = \"...\")]",
                self.enclosing_namespace()
            ));
        }
        Json::from(full_name(namespace, name))
    }

    /// What could not be expressed while writing the schema.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The namespace of the type being written (`""` for none).
    pub fn enclosing_namespace(&self) -> &str {
        self.namespace.last().map(String::as_str).unwrap_or("")
    }

    /// Writes a named type's `name` (and `namespace` when it differs from the enclosing one)
    /// into `obj`, then runs `body` with the type's namespace as the enclosing one.
    pub fn named(
        &mut self,
        obj: &mut serde_json::Map<String, Json>,
        name: &str,
        namespace: &str,
        body: impl FnOnce(&mut Self, &mut serde_json::Map<String, Json>),
    ) {
        obj.insert("name".into(), Json::from(name));
        if namespace != self.enclosing_namespace() {
            obj.insert("namespace".into(), Json::from(namespace));
        }
        self.namespace.push(namespace.to_string());
        body(self, obj);
        self.namespace.pop();
    }
}

/// The full name of a named type: `namespace.name`, or `name` without namespace.
pub fn full_name(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_string()
    } else {
        format!("{namespace}.{name}")
    }
}

/// A Rust type with an Avro schema, an encoder and a decoder.
///
/// Derive it with `#[derive(Avro)]`; see the [module docs](self) for the mapping of standard
/// types.
///
/// ```
/// use flowodm::avro::{Avro, Reader};
///
/// let mut buf = Vec::new();
/// 42i64.encode(&mut buf).unwrap();
/// assert_eq!(buf, [84]);
/// assert_eq!(i64::decode(&mut Reader::new(&buf)).unwrap(), 42);
/// assert_eq!(i64::schema_json(), serde_json::json!("long"));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no Avro mapping",
    label = "this type has no Avro schema",
    note = "derive it with #[derive(flowodm::Avro)], or use a supported type: bool, integers, f32, f64, String, Vec<u8>, [u8; N], Option<T>, Vec<T>, HashMap<String, T>, BTreeMap<String, T>, Box<T>, chrono dates and times, uuid::Uuid; a rust_decimal::Decimal field needs #[flowodm(decimal(precision = P, scale = S))]"
)]
pub trait Avro: Sized {
    /// Writes this type's schema, using `cx` to write named types only once.
    fn schema(cx: &mut SchemaContext) -> Json;

    /// Appends this value's Avro binary encoding to `buf`.
    fn encode(&self, buf: &mut Vec<u8>) -> Result<()>;

    /// Decodes a value written with this type's own schema.
    fn decode(r: &mut Reader<'_>) -> Result<Self>;

    /// Decodes a value written with another schema, following `plan` (never [`Plan::Same`],
    /// which goes to [`decode`](Avro::decode); see [`decode_with`]).
    fn decode_resolved(r: &mut Reader<'_>, plan: &Plan, res: &Resolution) -> Result<Self> {
        let _ = (r, res);
        Err(unexpected_plan::<Self>(plan))
    }

    /// The schema of this type alone.
    fn schema_json() -> Json {
        Self::schema(&mut SchemaContext::default())
    }

    #[doc(hidden)]
    /// Whether the schema is a union (then union plans are this type's to follow).
    const IS_UNION: bool = false;

    #[doc(hidden)]
    /// The schema of `Vec<Self>`: an array, except for `u8` (bytes).
    fn vec_schema(cx: &mut SchemaContext) -> Json {
        json!({"type": "array", "items": Self::schema(cx)})
    }

    #[doc(hidden)]
    fn encode_slice(items: &[Self], buf: &mut Vec<u8>) -> Result<()> {
        if !items.is_empty() {
            binary::write_long(buf, items.len() as i64);
            for item in items {
                item.encode(buf)?;
            }
        }
        binary::write_long(buf, 0);
        Ok(())
    }

    #[doc(hidden)]
    fn decode_vec(r: &mut Reader<'_>) -> Result<Vec<Self>> {
        let mut out = Vec::new();
        loop {
            let n = r.read_block_count()?;
            if n == 0 {
                return Ok(out);
            }
            out.reserve(r.capacity_for(n));
            for _ in 0..n {
                out.push(Self::decode(r)?);
            }
        }
    }

    #[doc(hidden)]
    fn decode_vec_resolved(r: &mut Reader<'_>, plan: &Plan, res: &Resolution) -> Result<Vec<Self>> {
        let Plan::Array(items) = plan else {
            return Err(unexpected_plan::<Vec<Self>>(plan));
        };
        let mut out = Vec::new();
        loop {
            let n = r.read_block_count()?;
            if n == 0 {
                return Ok(out);
            }
            out.reserve(r.capacity_for(n));
            for _ in 0..n {
                out.push(decode_with::<Self>(r, items, res)?);
            }
        }
    }
}

/// Decodes a `T` following `plan`: the generated decoder for [`Plan::Same`], the resolving one
/// otherwise. Generated code calls this for every field.
#[inline]
pub fn decode_with<T: Avro>(r: &mut Reader<'_>, plan: &Plan, res: &Resolution) -> Result<T> {
    match plan {
        Plan::Same => T::decode(r),
        Plan::WriterUnion(branches) if !T::IS_UNION => {
            let i = r.read_long()?;
            match usize::try_from(i).ok().and_then(|i| branches.get(i)) {
                Some(Some(b)) => decode_with::<T>(r, &b.plan, res),
                Some(None) => Err(invalid(format!(
                    "the writer's union branch {i} cannot be read as {}",
                    std::any::type_name::<T>()
                ))),
                None => Err(invalid(format!("union branch {i} does not exist"))),
            }
        }
        Plan::ReaderUnion(b) if !T::IS_UNION => decode_with::<T>(r, &b.plan, res),
        _ => T::decode_resolved(r, plan, res),
    }
}

/// The error for a plan a type cannot follow (a bug in resolution, never expected).
pub fn unexpected_plan<T>(plan: &Plan) -> Error {
    invalid(format!(
        "cannot read {} with plan {plan:?}",
        std::any::type_name::<T>()
    ))
}

macro_rules! int_like {
    ($($t:ty => $avro:literal, $write:ident, $read:ident, $wide:ty);* $(;)?) => {$(
        impl Avro for $t {
            fn schema(_: &mut SchemaContext) -> Json {
                Json::from($avro)
            }
            #[inline]
            fn encode(&self, buf: &mut Vec<u8>) -> Result<()> {
                binary::$write(buf, (*self).into());
                Ok(())
            }
            #[inline]
            fn decode(r: &mut Reader<'_>) -> Result<Self> {
                let v = r.$read()?;
                <$t>::try_from(v).map_err(|_| invalid(format!(
                    "{v} does not fit {}", stringify!($t)
                )))
            }
            fn decode_resolved(r: &mut Reader<'_>, plan: &Plan, _: &Resolution) -> Result<Self> {
                match plan {
                    Plan::Promote(Promotion::IntToLong) => {
                        let v = r.read_int()?;
                        <$t>::try_from(<$wide>::from(v)).map_err(|_| invalid(format!(
                            "{v} does not fit {}", stringify!($t)
                        )))
                    }
                    _ => Err(unexpected_plan::<Self>(plan)),
                }
            }
        }
    )*};
}

int_like! {
    i8 => "int", write_int, read_int, i64;
    i16 => "int", write_int, read_int, i64;
    i32 => "int", write_int, read_int, i64;
    u16 => "int", write_int, read_int, i64;
    i64 => "long", write_long, read_long, i64;
    u32 => "long", write_long, read_long, i64;
}

impl Avro for u8 {
    fn schema(_: &mut SchemaContext) -> Json {
        Json::from("int")
    }
    #[inline]
    fn encode(&self, buf: &mut Vec<u8>) -> Result<()> {
        binary::write_int(buf, i32::from(*self));
        Ok(())
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let v = r.read_int()?;
        u8::try_from(v).map_err(|_| invalid(format!("{v} does not fit u8")))
    }
    fn vec_schema(_: &mut SchemaContext) -> Json {
        Json::from("bytes")
    }
    fn encode_slice(items: &[Self], buf: &mut Vec<u8>) -> Result<()> {
        binary::write_bytes(buf, items);
        Ok(())
    }
    fn decode_vec(r: &mut Reader<'_>) -> Result<Vec<Self>> {
        Ok(r.read_bytes()?.to_vec())
    }
    fn decode_vec_resolved(r: &mut Reader<'_>, plan: &Plan, _: &Resolution) -> Result<Vec<Self>> {
        match plan {
            Plan::Promote(Promotion::StringToBytes) => Ok(r.read_bytes()?.to_vec()),
            _ => Err(unexpected_plan::<Vec<u8>>(plan)),
        }
    }
}

impl Avro for bool {
    fn schema(_: &mut SchemaContext) -> Json {
        Json::from("boolean")
    }
    #[inline]
    fn encode(&self, buf: &mut Vec<u8>) -> Result<()> {
        binary::write_bool(buf, *self);
        Ok(())
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.read_bool()
    }
}

impl Avro for f32 {
    fn schema(_: &mut SchemaContext) -> Json {
        Json::from("float")
    }
    #[inline]
    fn encode(&self, buf: &mut Vec<u8>) -> Result<()> {
        binary::write_float(buf, *self);
        Ok(())
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.read_float()
    }
    fn decode_resolved(r: &mut Reader<'_>, plan: &Plan, _: &Resolution) -> Result<Self> {
        match plan {
            Plan::Promote(Promotion::IntToFloat) => Ok(r.read_int()? as f32),
            Plan::Promote(Promotion::LongToFloat) => Ok(r.read_long()? as f32),
            _ => Err(unexpected_plan::<Self>(plan)),
        }
    }
}

impl Avro for f64 {
    fn schema(_: &mut SchemaContext) -> Json {
        Json::from("double")
    }
    #[inline]
    fn encode(&self, buf: &mut Vec<u8>) -> Result<()> {
        binary::write_double(buf, *self);
        Ok(())
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.read_double()
    }
    fn decode_resolved(r: &mut Reader<'_>, plan: &Plan, _: &Resolution) -> Result<Self> {
        match plan {
            Plan::Promote(Promotion::IntToDouble) => Ok(f64::from(r.read_int()?)),
            Plan::Promote(Promotion::LongToDouble) => Ok(r.read_long()? as f64),
            Plan::Promote(Promotion::FloatToDouble) => Ok(f64::from(r.read_float()?)),
            _ => Err(unexpected_plan::<Self>(plan)),
        }
    }
}

macro_rules! string_like {
    ($($t:ty => $from:expr),* $(,)?) => {$(
        impl Avro for $t {
            fn schema(_: &mut SchemaContext) -> Json {
                Json::from("string")
            }
            #[inline]
            fn encode(&self, buf: &mut Vec<u8>) -> Result<()> {
                binary::write_bytes(buf, self.as_bytes());
                Ok(())
            }
            #[inline]
            fn decode(r: &mut Reader<'_>) -> Result<Self> {
                r.read_str().map($from)
            }
            fn decode_resolved(r: &mut Reader<'_>, plan: &Plan, _: &Resolution) -> Result<Self> {
                match plan {
                    Plan::Promote(Promotion::BytesToString) => r.read_str().map($from),
                    _ => Err(unexpected_plan::<Self>(plan)),
                }
            }
        }
    )*};
}

// String holders; `Cow<'static, str>` encodes static strings without copying them.
string_like! {
    String => str::to_owned,
    std::borrow::Cow<'static, str> => |s: &str| std::borrow::Cow::Owned(s.to_owned()),
    Box<str> => Box::from,
    std::sync::Arc<str> => std::sync::Arc::from,
}

impl<T: Avro> Avro for Option<T> {
    const IS_UNION: bool = true;

    fn schema(cx: &mut SchemaContext) -> Json {
        json!(["null", T::schema(cx)])
    }
    #[inline]
    fn encode(&self, buf: &mut Vec<u8>) -> Result<()> {
        match self {
            None => {
                buf.push(0);
                Ok(())
            }
            Some(v) => {
                buf.push(2);
                v.encode(buf)
            }
        }
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        match r.read_long()? {
            0 => Ok(None),
            1 => T::decode(r).map(Some),
            i => Err(invalid(format!(
                "union branch {i} of an optional value does not exist"
            ))),
        }
    }
    fn decode_resolved(r: &mut Reader<'_>, plan: &Plan, res: &Resolution) -> Result<Self> {
        let branch = |r: &mut Reader<'_>, b: &resolve::Branch| match b.reader_branch {
            0 => Ok(None),
            _ => decode_with::<T>(r, &b.plan, res).map(Some),
        };
        match plan {
            Plan::ReaderUnion(b) => branch(r, b),
            Plan::WriterUnion(branches) => {
                let i = r.read_long()?;
                match usize::try_from(i).ok().and_then(|i| branches.get(i)) {
                    Some(Some(b)) => branch(r, b),
                    Some(None) => Err(invalid(format!(
                        "the writer's union branch {i} cannot be read as {}",
                        std::any::type_name::<Self>()
                    ))),
                    None => Err(invalid(format!("union branch {i} does not exist"))),
                }
            }
            _ => Err(unexpected_plan::<Self>(plan)),
        }
    }
}

impl<T: Avro> Avro for Vec<T> {
    fn schema(cx: &mut SchemaContext) -> Json {
        T::vec_schema(cx)
    }
    #[inline]
    fn encode(&self, buf: &mut Vec<u8>) -> Result<()> {
        T::encode_slice(self, buf)
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        T::decode_vec(r)
    }
    fn decode_resolved(r: &mut Reader<'_>, plan: &Plan, res: &Resolution) -> Result<Self> {
        T::decode_vec_resolved(r, plan, res)
    }
}

impl<T: Avro> Avro for Box<T> {
    const IS_UNION: bool = T::IS_UNION;

    fn schema(cx: &mut SchemaContext) -> Json {
        T::schema(cx)
    }
    #[inline]
    fn encode(&self, buf: &mut Vec<u8>) -> Result<()> {
        (**self).encode(buf)
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        T::decode(r).map(Box::new)
    }
    fn decode_resolved(r: &mut Reader<'_>, plan: &Plan, res: &Resolution) -> Result<Self> {
        T::decode_resolved(r, plan, res).map(Box::new)
    }
}

/// Maps: `HashMap` and `BTreeMap` with `String` keys.
trait MapLike<T>: Sized {
    fn with_capacity(n: usize) -> Self;
    fn put(&mut self, k: String, v: T);
}

impl<T, S: BuildHasher + Default> MapLike<T> for HashMap<String, T, S> {
    fn with_capacity(n: usize) -> Self {
        HashMap::with_capacity_and_hasher(n, S::default())
    }
    fn put(&mut self, k: String, v: T) {
        self.insert(k, v);
    }
}

impl<T> MapLike<T> for BTreeMap<String, T> {
    fn with_capacity(_: usize) -> Self {
        BTreeMap::new()
    }
    fn put(&mut self, k: String, v: T) {
        self.insert(k, v);
    }
}

fn encode_map<'a, T: Avro + 'a>(
    len: usize,
    entries: impl Iterator<Item = (&'a String, &'a T)>,
    buf: &mut Vec<u8>,
) -> Result<()> {
    if len > 0 {
        binary::write_long(buf, len as i64);
        for (k, v) in entries {
            binary::write_bytes(buf, k.as_bytes());
            v.encode(buf)?;
        }
    }
    binary::write_long(buf, 0);
    Ok(())
}

fn decode_map<T: Avro, M: MapLike<T>>(
    r: &mut Reader<'_>,
    plan: Option<(&Plan, &Resolution)>,
) -> Result<M> {
    let mut out: Option<M> = None;
    loop {
        let n = r.read_block_count()?;
        let map = out.get_or_insert_with(|| M::with_capacity(r.capacity_for(n)));
        if n == 0 {
            return Ok(out.unwrap_or_else(|| M::with_capacity(0)));
        }
        for _ in 0..n {
            let k = r.read_str()?.to_owned();
            let v = match plan {
                None => T::decode(r)?,
                Some((p, res)) => decode_with::<T>(r, p, res)?,
            };
            map.put(k, v);
        }
    }
}

impl<T: Avro, S: BuildHasher + Default> Avro for HashMap<String, T, S> {
    fn schema(cx: &mut SchemaContext) -> Json {
        json!({"type": "map", "values": T::schema(cx)})
    }
    fn encode(&self, buf: &mut Vec<u8>) -> Result<()> {
        encode_map(self.len(), self.iter(), buf)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        decode_map::<T, Self>(r, None)
    }
    fn decode_resolved(r: &mut Reader<'_>, plan: &Plan, res: &Resolution) -> Result<Self> {
        let Plan::Map(values) = plan else {
            return Err(unexpected_plan::<Self>(plan));
        };
        decode_map::<T, Self>(r, Some((values, res)))
    }
}

impl<T: Avro> Avro for BTreeMap<String, T> {
    fn schema(cx: &mut SchemaContext) -> Json {
        json!({"type": "map", "values": T::schema(cx)})
    }
    fn encode(&self, buf: &mut Vec<u8>) -> Result<()> {
        encode_map(self.len(), self.iter(), buf)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        decode_map::<T, Self>(r, None)
    }
    fn decode_resolved(r: &mut Reader<'_>, plan: &Plan, res: &Resolution) -> Result<Self> {
        let Plan::Map(values) = plan else {
            return Err(unexpected_plan::<Self>(plan));
        };
        decode_map::<T, Self>(r, Some((values, res)))
    }
}

#[cfg(test)]
mod tests;

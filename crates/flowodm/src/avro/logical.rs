//! Logical types: dates, times, timestamps, UUIDs and decimals, and `fixed`.
//!
//! | Rust | Avro | with `#[flowodm(micros)]` |
//! |---|---|---|
//! | `chrono::DateTime<Utc>` | `long` / `timestamp-millis` | `timestamp-micros` |
//! | `chrono::NaiveDateTime` | `long` / `local-timestamp-millis` | `local-timestamp-micros` |
//! | `chrono::NaiveDate` | `int` / `date` | |
//! | `chrono::NaiveTime` | `int` / `time-millis` | `long` / `time-micros` |
//! | `uuid::Uuid` | `string` / `uuid` | |
//! | `rust_decimal::Decimal` with `#[flowodm(decimal(precision = P, scale = S))]` | `bytes` / `decimal(P, S)` | |
//! | `[u8; N]` | `fixed` named `fixed_N` in the enclosing namespace, size N | |
//!
//! Millisecond encodings drop finer precision, as the Avro type demands; use `micros` to keep it.
//! A decimal with more fractional digits than its scale, or more digits than its precision, is an
//! encoding error rather than a silent rounding.

use serde_json::{json, Value as Json};

use super::binary::{self, invalid, Reader};
use super::resolve::{Plan, Resolution};
use super::{unexpected_plan, Avro, SchemaContext};
use crate::error::{Error, Result};

/// An alternative encoding of `T`, chosen by a field attribute (such as `micros` or `decimal`).
///
/// Derived code calls it in place of `T`'s own [`Avro`] impl. It reaches through `Option` and
/// `Vec`, so `Option<DateTime<Utc>>` with `micros` is an optional `timestamp-micros`.
pub trait AvroAdapter<T> {
    /// Whether the schema is a union.
    const IS_UNION: bool = false;
    /// The schema of `T` in this encoding.
    fn schema(cx: &mut SchemaContext) -> Json;
    /// Encodes `value`.
    fn encode(value: &T, buf: &mut Vec<u8>) -> Result<()>;
    /// Decodes a value written with this encoding.
    fn decode(r: &mut Reader<'_>) -> Result<T>;
    /// Decodes a value written with another schema.
    fn decode_resolved(r: &mut Reader<'_>, plan: &Plan, res: &Resolution) -> Result<T> {
        let _ = (r, res);
        Err(unexpected_plan::<T>(plan))
    }
}

/// [`decode_with`](super::decode_with) for an adapted field.
#[inline]
pub fn decode_adapted<A: AvroAdapter<T>, T>(
    r: &mut Reader<'_>,
    plan: &Plan,
    res: &Resolution,
) -> Result<T> {
    match plan {
        Plan::Same => A::decode(r),
        Plan::WriterUnion(branches) if !A::IS_UNION => {
            let i = r.read_long()?;
            match usize::try_from(i).ok().and_then(|i| branches.get(i)) {
                Some(Some(b)) => decode_adapted::<A, T>(r, &b.plan, res),
                _ => Err(invalid(format!(
                    "the writer's union branch {i} cannot be read as {}",
                    std::any::type_name::<T>()
                ))),
            }
        }
        Plan::ReaderUnion(b) if !A::IS_UNION => decode_adapted::<A, T>(r, &b.plan, res),
        _ => A::decode_resolved(r, plan, res),
    }
}

impl<A: AvroAdapter<T>, T> AvroAdapter<Option<T>> for A {
    const IS_UNION: bool = true;
    fn schema(cx: &mut SchemaContext) -> Json {
        json!(["null", A::schema(cx)])
    }
    fn encode(value: &Option<T>, buf: &mut Vec<u8>) -> Result<()> {
        match value {
            None => {
                buf.push(0);
                Ok(())
            }
            Some(v) => {
                buf.push(2);
                A::encode(v, buf)
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Option<T>> {
        match r.read_long()? {
            0 => Ok(None),
            1 => A::decode(r).map(Some),
            i => Err(invalid(format!(
                "union branch {i} of an optional value does not exist"
            ))),
        }
    }
    fn decode_resolved(r: &mut Reader<'_>, plan: &Plan, res: &Resolution) -> Result<Option<T>> {
        let branch = |r: &mut Reader<'_>, b: &super::resolve::Branch| match b.reader_branch {
            0 => Ok(None),
            _ => decode_adapted::<A, T>(r, &b.plan, res).map(Some),
        };
        match plan {
            Plan::ReaderUnion(b) => branch(r, b),
            Plan::WriterUnion(branches) => {
                let i = r.read_long()?;
                match usize::try_from(i).ok().and_then(|i| branches.get(i)) {
                    Some(Some(b)) => branch(r, b),
                    _ => Err(invalid(format!(
                        "the writer's union branch {i} cannot be read"
                    ))),
                }
            }
            _ => Err(unexpected_plan::<Option<T>>(plan)),
        }
    }
}

impl<A: AvroAdapter<T>, T> AvroAdapter<Vec<T>> for A {
    fn schema(cx: &mut SchemaContext) -> Json {
        json!({"type": "array", "items": A::schema(cx)})
    }
    fn encode(value: &Vec<T>, buf: &mut Vec<u8>) -> Result<()> {
        if !value.is_empty() {
            binary::write_long(buf, value.len() as i64);
            for v in value {
                A::encode(v, buf)?;
            }
        }
        binary::write_long(buf, 0);
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Vec<T>> {
        let mut out = Vec::new();
        loop {
            let n = r.read_block_count()?;
            if n == 0 {
                return Ok(out);
            }
            out.reserve(r.capacity_for(n));
            for _ in 0..n {
                out.push(A::decode(r)?);
            }
        }
    }
}

fn logical(physical: &str, logical: &str) -> Json {
    json!({"type": physical, "logicalType": logical})
}

impl<const N: usize> Avro for [u8; N] {
    /// A fixed named `fixed_N` in the enclosing namespace. A later `[u8; N]` in that namespace
    /// refers to it by the short name, which resolves there; a type in the null namespace could
    /// not be referred to from inside another namespace at all (Avro specification, "Names").
    fn schema(cx: &mut SchemaContext) -> Json {
        let name = format!("fixed_{N}");
        let namespace = cx.enclosing_namespace().to_string();
        if !cx.define(&super::full_name(&namespace, &name)) {
            return Json::from(name);
        }
        let mut obj = serde_json::Map::new();
        obj.insert("type".into(), Json::from("fixed"));
        cx.named(&mut obj, &name, &namespace, |_, obj| {
            obj.insert("size".into(), Json::from(N));
        });
        Json::Object(obj)
    }
    #[inline]
    fn encode(&self, buf: &mut Vec<u8>) -> Result<()> {
        buf.extend_from_slice(self);
        Ok(())
    }
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let bytes = r.take(N, "a fixed")?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }
}

#[cfg(feature = "uuid")]
impl Avro for uuid::Uuid {
    fn schema(_: &mut SchemaContext) -> Json {
        logical("string", "uuid")
    }
    fn encode(&self, buf: &mut Vec<u8>) -> Result<()> {
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        binary::write_bytes(buf, self.hyphenated().encode_lower(&mut text).as_bytes());
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let s = r.read_str()?;
        uuid::Uuid::parse_str(s).map_err(|e| invalid(format!("`{s}` is not a UUID: {e}")))
    }
}

/// Encodes dates and times with microsecond precision: `#[flowodm(micros)]`.
#[derive(Debug)]
pub struct Micros;

/// Encodes `rust_decimal::Decimal` as `bytes` / `decimal(P, S)`:
/// `#[flowodm(decimal(precision = P, scale = S))]`.
#[derive(Debug)]
pub struct DecimalBytes<const P: usize, const S: u32>;

#[cfg(feature = "chrono")]
mod chrono_impls {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};

    use super::*;

    fn out_of_range(what: &str, v: i64) -> Error {
        invalid(format!("{v} is out of range for {what}"))
    }

    impl Avro for DateTime<Utc> {
        fn schema(_: &mut SchemaContext) -> Json {
            logical("long", "timestamp-millis")
        }
        fn encode(&self, buf: &mut Vec<u8>) -> Result<()> {
            binary::write_long(buf, self.timestamp_millis());
            Ok(())
        }
        fn decode(r: &mut Reader<'_>) -> Result<Self> {
            let v = r.read_long()?;
            DateTime::from_timestamp_millis(v).ok_or_else(|| out_of_range("a timestamp", v))
        }
    }

    impl AvroAdapter<DateTime<Utc>> for Micros {
        fn schema(_: &mut SchemaContext) -> Json {
            logical("long", "timestamp-micros")
        }
        fn encode(value: &DateTime<Utc>, buf: &mut Vec<u8>) -> Result<()> {
            binary::write_long(buf, value.timestamp_micros());
            Ok(())
        }
        fn decode(r: &mut Reader<'_>) -> Result<DateTime<Utc>> {
            let v = r.read_long()?;
            DateTime::from_timestamp_micros(v).ok_or_else(|| out_of_range("a timestamp", v))
        }
    }

    impl Avro for NaiveDateTime {
        fn schema(_: &mut SchemaContext) -> Json {
            logical("long", "local-timestamp-millis")
        }
        fn encode(&self, buf: &mut Vec<u8>) -> Result<()> {
            binary::write_long(buf, self.and_utc().timestamp_millis());
            Ok(())
        }
        fn decode(r: &mut Reader<'_>) -> Result<Self> {
            let v = r.read_long()?;
            DateTime::from_timestamp_millis(v)
                .map(|d| d.naive_utc())
                .ok_or_else(|| out_of_range("a local timestamp", v))
        }
    }

    impl AvroAdapter<NaiveDateTime> for Micros {
        fn schema(_: &mut SchemaContext) -> Json {
            logical("long", "local-timestamp-micros")
        }
        fn encode(value: &NaiveDateTime, buf: &mut Vec<u8>) -> Result<()> {
            binary::write_long(buf, value.and_utc().timestamp_micros());
            Ok(())
        }
        fn decode(r: &mut Reader<'_>) -> Result<NaiveDateTime> {
            let v = r.read_long()?;
            DateTime::from_timestamp_micros(v)
                .map(|d| d.naive_utc())
                .ok_or_else(|| out_of_range("a local timestamp", v))
        }
    }

    const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");

    impl Avro for NaiveDate {
        fn schema(_: &mut SchemaContext) -> Json {
            logical("int", "date")
        }
        fn encode(&self, buf: &mut Vec<u8>) -> Result<()> {
            let days = self.signed_duration_since(EPOCH).num_days();
            let days = i32::try_from(days).map_err(|_| Error::Serialization {
                message: format!("{self} is too far from 1970 for an Avro date"),
            })?;
            binary::write_int(buf, days);
            Ok(())
        }
        fn decode(r: &mut Reader<'_>) -> Result<Self> {
            let days = r.read_int()?;
            EPOCH
                .checked_add_signed(chrono::TimeDelta::days(i64::from(days)))
                .ok_or_else(|| out_of_range("a date", i64::from(days)))
        }
    }

    fn micros_of_day(t: &NaiveTime) -> i64 {
        i64::from(t.num_seconds_from_midnight()) * 1_000_000 + i64::from(t.nanosecond() / 1_000)
    }

    fn time_from_micros(v: i64) -> Result<NaiveTime> {
        if !(0..86_400_000_000).contains(&v) {
            return Err(out_of_range("a time of day", v));
        }
        let secs = (v / 1_000_000) as u32;
        let nanos = ((v % 1_000_000) * 1_000) as u32;
        NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos)
            .ok_or_else(|| out_of_range("a time of day", v))
    }

    impl Avro for NaiveTime {
        fn schema(_: &mut SchemaContext) -> Json {
            logical("int", "time-millis")
        }
        fn encode(&self, buf: &mut Vec<u8>) -> Result<()> {
            binary::write_int(buf, (micros_of_day(self) / 1_000) as i32);
            Ok(())
        }
        fn decode(r: &mut Reader<'_>) -> Result<Self> {
            time_from_micros(i64::from(r.read_int()?) * 1_000)
        }
    }

    impl AvroAdapter<NaiveTime> for Micros {
        fn schema(_: &mut SchemaContext) -> Json {
            logical("long", "time-micros")
        }
        fn encode(value: &NaiveTime, buf: &mut Vec<u8>) -> Result<()> {
            binary::write_long(buf, micros_of_day(value));
            Ok(())
        }
        fn decode(r: &mut Reader<'_>) -> Result<NaiveTime> {
            time_from_micros(r.read_long()?)
        }
    }
}

#[cfg(feature = "decimal")]
mod decimal_impls {
    use rust_decimal::Decimal;

    use super::*;

    impl<const P: usize, const S: u32> AvroAdapter<Decimal> for DecimalBytes<P, S> {
        fn schema(_: &mut SchemaContext) -> Json {
            json!({"type": "bytes", "logicalType": "decimal", "precision": P, "scale": S})
        }
        fn encode(value: &Decimal, buf: &mut Vec<u8>) -> Result<()> {
            let err = |why: &str| Error::Serialization {
                message: format!("{value} does not fit decimal({P}, {S}): {why}"),
            };
            let mut v = *value;
            if v.scale() > S {
                let normalized = v.normalize();
                if normalized.scale() > S {
                    return Err(err("it has more fractional digits than the scale"));
                }
                v = normalized;
            }
            v.rescale(S);
            if v.scale() != S {
                return Err(err("it cannot be written at that scale"));
            }
            let unscaled = v.mantissa();
            if unscaled.unsigned_abs().to_string().len() > P {
                return Err(err("it has more digits than the precision"));
            }
            // Big-endian two's complement, as few bytes as keep the sign.
            let bytes = unscaled.to_be_bytes();
            let skip = bytes
                .windows(2)
                .take_while(|w| {
                    (w[0] == 0x00 && w[1] & 0x80 == 0) || (w[0] == 0xff && w[1] & 0x80 != 0)
                })
                .count();
            binary::write_bytes(buf, &bytes[skip..]);
            Ok(())
        }
        fn decode(r: &mut Reader<'_>) -> Result<Decimal> {
            let bytes = r.read_bytes()?;
            if bytes.len() > 16 {
                return Err(invalid(format!(
                    "a {}-byte decimal does not fit 128 bits",
                    bytes.len()
                )));
            }
            let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
                0xff
            } else {
                0
            };
            let mut full = [fill; 16];
            full[16 - bytes.len()..].copy_from_slice(bytes);
            let unscaled = i128::from_be_bytes(full);
            Decimal::try_from_i128_with_scale(unscaled, S)
                .map_err(|e| invalid(format!("decimal {unscaled}e-{S} does not fit: {e}")))
        }
    }
}

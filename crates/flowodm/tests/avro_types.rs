//! Logical types, fixed and unions: the schema each maps to, round trips, and agreement with
//! apache-avro, an independent implementation.

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use flowodm::avro::{from_avro, from_avro_resolved, schema_of, to_avro, Avro, Resolution};
use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;

#[derive(flowodm::Avro, Debug, Clone, PartialEq)]
#[flowodm(namespace = "com.pipeline.types")]
struct Times {
    at: DateTime<Utc>,
    #[flowodm(micros)]
    at_micros: DateTime<Utc>,
    local: NaiveDateTime,
    #[flowodm(micros)]
    local_micros: NaiveDateTime,
    day: NaiveDate,
    time: NaiveTime,
    #[flowodm(micros)]
    time_micros: NaiveTime,
    #[flowodm(micros)]
    maybe_micros: Option<DateTime<Utc>>,
    id: Uuid,
    #[flowodm(decimal(precision = 10, scale = 2))]
    price: Decimal,
    #[flowodm(decimal(precision = 20, scale = 4))]
    maybe_price: Option<Decimal>,
    digest: [u8; 16],
}

fn times() -> Times {
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 10, 30, 15).unwrap()
        + chrono::TimeDelta::microseconds(123_456);
    Times {
        at: DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap(),
        at_micros: at,
        local: at.naive_utc() - chrono::TimeDelta::microseconds(456),
        local_micros: at.naive_utc(),
        day: NaiveDate::from_ymd_opt(1969, 7, 20).unwrap(),
        time: NaiveTime::from_hms_milli_opt(23, 59, 59, 999).unwrap(),
        time_micros: NaiveTime::from_hms_micro_opt(0, 0, 1, 5).unwrap(),
        maybe_micros: Some(at),
        id: Uuid::parse_str("7c1d2a4e-7c53-4b59-9d3c-6f1b2a9e8d10").unwrap(),
        price: Decimal::new(-123_456, 2),
        maybe_price: Some(Decimal::new(5, 1)),
        digest: *b"0123456789abcdef",
    }
}

#[test]
fn logical_types_have_the_avro_schemas() {
    let s = Times::schema_json();
    let ty = |i: usize| s["fields"][i]["type"].clone();
    assert_eq!(
        ty(0),
        json!({"type": "long", "logicalType": "timestamp-millis"})
    );
    assert_eq!(
        ty(1),
        json!({"type": "long", "logicalType": "timestamp-micros"})
    );
    assert_eq!(
        ty(2),
        json!({"type": "long", "logicalType": "local-timestamp-millis"})
    );
    assert_eq!(
        ty(3),
        json!({"type": "long", "logicalType": "local-timestamp-micros"})
    );
    assert_eq!(ty(4), json!({"type": "int", "logicalType": "date"}));
    assert_eq!(ty(5), json!({"type": "int", "logicalType": "time-millis"}));
    assert_eq!(ty(6), json!({"type": "long", "logicalType": "time-micros"}));
    assert_eq!(
        ty(7),
        json!(["null", {"type": "long", "logicalType": "timestamp-micros"}])
    );
    assert_eq!(ty(8), json!({"type": "string", "logicalType": "uuid"}));
    assert_eq!(
        ty(9),
        json!({"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2})
    );
    assert_eq!(
        ty(11),
        json!({"type": "fixed", "name": "fixed_16", "size": 16})
    );
    apache_avro::Schema::parse_str(&s.to_string()).unwrap();
}

#[test]
fn logical_types_round_trip() {
    let t = times();
    assert_eq!(from_avro::<Times>(&to_avro(&t).unwrap()).unwrap(), t);
    let mut none = t.clone();
    none.maybe_micros = None;
    none.maybe_price = None;
    assert_eq!(from_avro::<Times>(&to_avro(&none).unwrap()).unwrap(), none);
}

#[test]
fn millisecond_types_drop_finer_precision() {
    let mut t = times();
    t.at += chrono::TimeDelta::microseconds(999);
    let back = from_avro::<Times>(&to_avro(&t).unwrap()).unwrap();
    assert_eq!(back.at.timestamp_millis(), t.at.timestamp_millis());
    assert_eq!(back.at_micros, t.at_micros, "micros keep microseconds");
}

#[test]
fn apache_avro_reads_logical_types_as_we_mean_them() {
    let schema = apache_avro::Schema::parse_str(schema_of::<Times>().unwrap().json()).unwrap();
    let t = times();
    let value = GenericDatumReader::builder(&schema)
        .build()
        .unwrap()
        .read_value(&mut &to_avro(&t).unwrap()[..])
        .unwrap();
    let Value::Record(fields) = value else {
        panic!()
    };
    let get = |n: &str| fields.iter().find(|(k, _)| k == n).unwrap().1.clone();
    assert_eq!(get("at"), Value::TimestampMillis(t.at.timestamp_millis()));
    assert_eq!(
        get("at_micros"),
        Value::TimestampMicros(t.at_micros.timestamp_micros())
    );
    assert_eq!(get("day"), Value::Date(-165));
    assert_eq!(get("time"), Value::TimeMillis(86_399_999));
    assert_eq!(get("time_micros"), Value::TimeMicros(1_000_005));
    assert_eq!(get("id"), Value::Uuid(t.id));
    assert_eq!(
        get("digest"),
        Value::Fixed(16, b"0123456789abcdef".to_vec())
    );
    let Value::Decimal(d) = get("price") else {
        panic!("{:?}", get("price"))
    };
    let bytes: Vec<u8> = d.try_into().unwrap();
    assert_eq!(num_bigint_from(&bytes), -123_456);
}

/// Big-endian two's complement to i128.
fn num_bigint_from(bytes: &[u8]) -> i128 {
    let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut full = [fill; 16];
    full[16 - bytes.len()..].copy_from_slice(bytes);
    i128::from_be_bytes(full)
}

#[test]
fn decimals_that_do_not_fit_are_errors_not_rounding() {
    let mut t = times();
    t.price = Decimal::new(1_234_567, 3); // 1234.567: three fractional digits, scale is 2
    assert!(to_avro(&t).is_err());
    t.price = Decimal::new(1_000_000_000_000, 2); // 11 digits > precision 10
    assert!(to_avro(&t).is_err());
    t.price = Decimal::new(1_500, 3); // 1.500 normalizes to 1.5: fits
    let back = from_avro::<Times>(&to_avro(&t).unwrap()).unwrap();
    assert_eq!(back.price, Decimal::new(150, 2));
}

#[derive(flowodm::Avro, Debug, Clone, PartialEq)]
#[flowodm(namespace = "com.pipeline.types")]
struct Card {
    last4: String,
}

/// A union of records, a named record, a primitive and null.
#[derive(flowodm::Avro, Debug, Clone, PartialEq)]
#[flowodm(namespace = "com.pipeline.types")]
enum Payment {
    Cash,
    Card(Card),
    Voucher {
        code: String,
        #[flowodm(decimal(precision = 8, scale = 2))]
        value: Decimal,
    },
    Points(i64),
}

#[derive(flowodm::Avro, Debug, Clone, PartialEq)]
#[flowodm(namespace = "com.pipeline.types")]
struct Checkout {
    payment: Payment,
    history: Vec<Payment>,
}

#[test]
fn data_enums_are_unions_of_records() {
    let s = Checkout::schema_json();
    assert_eq!(
        s["fields"][0]["type"],
        json!([
            "null",
            {"type": "record", "name": "Card", "fields": [{"name": "last4", "type": "string"}]},
            {"type": "record", "name": "Voucher", "fields": [
                {"name": "code", "type": "string"},
                {"name": "value", "type": {"type": "bytes", "logicalType": "decimal", "precision": 8, "scale": 2}}
            ]},
            "long"
        ])
    );
    assert_eq!(
        s["fields"][1]["type"]["items"],
        json!([
            "null",
            "com.pipeline.types.Card",
            "com.pipeline.types.Voucher",
            "long"
        ])
    );
    let c = Checkout {
        payment: Payment::Voucher {
            code: "SAVE10".into(),
            value: Decimal::new(1000, 2),
        },
        history: vec![
            Payment::Cash,
            Payment::Card(Card {
                last4: "4242".into(),
            }),
            Payment::Points(-3),
        ],
    };
    let bytes = to_avro(&c).unwrap();
    assert_eq!(from_avro::<Checkout>(&bytes).unwrap(), c);
    let schema = apache_avro::Schema::parse_str(schema_of::<Checkout>().unwrap().json()).unwrap();
    GenericDatumReader::builder(&schema)
        .build()
        .unwrap()
        .read_value(&mut &bytes[..])
        .unwrap();
}

#[test]
fn union_branches_resolve_by_name_when_they_move() {
    // An older writer had the branches in another order and no Points.
    let writer = r#"{"type":"record","name":"Checkout","namespace":"com.pipeline.types","fields":[
        {"name":"payment","type":[
            {"type":"record","name":"Card","fields":[{"name":"last4","type":"string"}]},
            "null"]},
        {"name":"history","type":{"type":"array","items":["null","Card"]}}]}"#;
    let plan = Resolution::for_type::<Checkout>(writer).unwrap();
    // payment = Card("1234") (branch 0), history = [null, Card("9")]
    let mut bytes = vec![0, 8];
    bytes.extend_from_slice(b"1234");
    bytes.extend_from_slice(&[4, 0, 2, 2, b'9', 0]);
    let got: Checkout = from_avro_resolved(&bytes, &plan).unwrap();
    assert_eq!(
        got,
        Checkout {
            payment: Payment::Card(Card {
                last4: "1234".into()
            }),
            history: vec![Payment::Cash, Payment::Card(Card { last4: "9".into() })],
        }
    );
}

#[test]
fn a_plain_writer_value_reads_into_a_union() {
    let writer = r#"{"type":"record","name":"Checkout","namespace":"com.pipeline.types","fields":[
        {"name":"payment","type":"long"},
        {"name":"history","type":{"type":"array","items":"long"}}]}"#;
    let plan = Resolution::for_type::<Checkout>(writer).unwrap();
    let got: Checkout = from_avro_resolved(&[14, 2, 2, 0], &plan).unwrap();
    assert_eq!(
        got,
        Checkout {
            payment: Payment::Points(7),
            history: vec![Payment::Points(1)]
        }
    );
}

/// Two fixed fields of one size in a namespaced record: the second refers to the first by name.
#[derive(flowodm::Avro, Debug, Clone, PartialEq)]
#[flowodm(namespace = "com.pipeline.types")]
struct Digests {
    sha: [u8; 16],
    md5: [u8; 16],
    maybe: Option<[u8; 16]>,
    inner: OtherDigests,
}

/// The same fixed type in another namespace.
#[derive(flowodm::Avro, Debug, Clone, PartialEq)]
#[flowodm(namespace = "org.other")]
struct OtherDigests {
    first: [u8; 16],
    second: [u8; 16],
}

#[test]
fn a_fixed_used_twice_is_referred_to_by_a_name_that_resolves_in_its_namespace() {
    // A name without a dot resolves in the enclosing namespace (Avro specification, "Names"),
    // so a fixed defined in the null namespace could not be referred to from inside
    // `com.pipeline.types`: strict parsers (apache-avro, fastavro) reject such a schema.
    let s = Digests::schema_json();
    assert_eq!(
        s["fields"][0]["type"],
        json!({"type": "fixed", "name": "fixed_16", "size": 16})
    );
    assert_eq!(s["fields"][1]["type"], json!("fixed_16"));
    assert_eq!(s["fields"][2]["type"], json!(["null", "fixed_16"]));
    let inner = &s["fields"][3]["type"];
    assert_eq!(
        inner["fields"][0]["type"],
        json!({"type": "fixed", "name": "fixed_16", "size": 16})
    );
    assert_eq!(inner["fields"][1]["type"], json!("fixed_16"));

    let d = Digests {
        sha: *b"0123456789abcdef",
        md5: [0xff; 16],
        maybe: Some([1; 16]),
        inner: OtherDigests {
            first: [2; 16],
            second: [3; 16],
        },
    };
    let bytes = to_avro(&d).unwrap();
    assert_eq!(from_avro::<Digests>(&bytes).unwrap(), d);
    let schema = apache_avro::Schema::parse_str(schema_of::<Digests>().unwrap().json()).unwrap();
    let value = GenericDatumReader::builder(&schema)
        .build()
        .unwrap()
        .read_value(&mut &bytes[..])
        .unwrap();
    let Value::Record(fields) = value else {
        panic!("{value:?}")
    };
    assert_eq!(fields[1].1, Value::Fixed(16, vec![0xff; 16]));
}

#[derive(flowodm::Avro, Debug, Clone, PartialEq)]
#[flowodm(namespace = "org.other")]
struct OneDigest {
    first: [u8; 16],
}

#[test]
fn a_writer_fixed_in_the_null_namespace_still_resolves() {
    // How earlier versions named the fixed: in the null namespace.
    let writer = r#"{"type":"record","name":"OneDigest","namespace":"org.other","fields":[
        {"name":"first","type":{"type":"fixed","name":"fixed_16","namespace":"","size":16}}]}"#;
    let plan = Resolution::for_type::<OneDigest>(writer).unwrap();
    let got: OneDigest = from_avro_resolved(&[7; 16], &plan).unwrap();
    assert_eq!(got, OneDigest { first: [7; 16] });
}

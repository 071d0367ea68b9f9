//! Interop with confluent-kafka for Python, a Confluent wire-format implementation that flowodm
//! has no part in (`interop/peer.py`, run from the venv named by `FLOWODM_INTEROP_PYTHON`).
//!
//! Every type of flowodm's Avro mapping is in one of three models. For each model, both ways:
//!
//! - flowodm writes: `Codec::encode` registers the schema and frames the values, rdkafka
//!   produces them, the peer reads them with `AvroDeserializer` and prints JSON, which is
//!   compared field by field with the Rust values written in the same JSON convention.
//! - flowodm reads: the peer registers the model's schema under a fresh subject and produces the
//!   values (written as JSON from the Rust side) with `AvroSerializer`; rdkafka consumes them,
//!   `Codec::decode` decodes them, and the result is compared field by field with the values.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use flowodm::codec::Codec;
use flowodm::registry::{Schema, SchemaRegistryClient};
use flowodm::Model;
use flowodm_test::interop::json::{
    branch, bytes, date, decimal, float, local_timestamp, opt, time, timestamp, uuid,
};
use flowodm_test::interop::{
    assert_json_eq, consume_payloads, peer_consume, peer_produce, produce_payloads,
};
use flowodm_test::{new_topic, registry_url};
use rust_decimal::Decimal;
use serde_json::{json, Value as Json};
use uuid::Uuid;

fn registry() -> SchemaRegistryClient {
    SchemaRegistryClient::new(&registry_url()).expect("SCHEMA_REGISTRY_URL is a valid URL")
}

/// flowodm writes `values`; the peer must read each as `to_json` says.
async fn python_reads<T: Model>(prefix: &str, values: &[T], to_json: fn(&T) -> Json) {
    let codec = Codec::<T>::new(registry()).unwrap();
    let topic = new_topic(prefix, 1).await;
    let mut payloads = Vec::new();
    for v in values {
        payloads.push(codec.encode(v).await.unwrap());
    }
    produce_payloads(&topic, &payloads).await;
    let got = peer_consume(&topic, values.len());
    for (i, (g, v)) in got.iter().zip(values).enumerate() {
        assert_json_eq(g, &to_json(v), &format!("{prefix}[{i}]"));
    }
}

/// The peer writes `values` (as `to_json` says); flowodm must read them back equal.
async fn rust_reads<T: Model + PartialEq + Debug>(
    prefix: &str,
    values: &[T],
    to_json: fn(&T) -> Json,
) {
    let topic = new_topic(prefix, 1).await;
    let subject = format!("{topic}-value");
    let schema = T::value_schema().unwrap().json();
    let records: Vec<Json> = values.iter().map(to_json).collect();
    peer_produce(&topic, &subject, schema, &records);
    let payloads = consume_payloads(&topic, values.len());

    let registry = registry();
    let registered = registry
        .lookup(&subject, &Schema::avro(schema), false)
        .await
        .unwrap_or_else(|e| panic!("the peer registered no schema under {subject}: {e}"))
        .id;
    let codec = Codec::<T>::new(registry).unwrap();
    for (i, (p, want)) in payloads.iter().zip(values).enumerate() {
        let at = format!("{prefix}[{i}]");
        assert_eq!(p.first(), Some(&0), "{at}: magic byte");
        assert_eq!(
            u32::from_be_bytes(p[1..5].try_into().unwrap()),
            registered,
            "{at}: schema id"
        );
        let got = codec
            .decode(p)
            .await
            .unwrap_or_else(|e| panic!("{at}: flowodm cannot decode {p:?}: {e}"));
        assert_json_eq(&to_json(&got), &records[i], &at);
        if !holds_nan(want) {
            assert_eq!(&got, want, "{at}");
        }
    }
}

/// Whether `v` is unequal to itself: it holds a NaN, which only the JSON comparison can check.
#[allow(clippy::eq_op)]
fn holds_nan<T: PartialEq>(v: &T) -> bool {
    v != v
}

// ---------------------------------------------------------------------------------------------
// Primitive types, bytes and fixed

#[derive(Model, Debug, Clone, PartialEq)]
#[flowodm(topic = "flowodm-interop-scalars", namespace = "com.flowodm.interop")]
struct Scalars {
    flag: bool,
    tiny: i8,
    short: i16,
    int32: i32,
    byte: u8,
    word: u16,
    int64: i64,
    unsigned: u32,
    single: f32,
    double: f64,
    text: String,
    blob: Vec<u8>,
    digest: [u8; 16],
    /// A second fixed of the same size: written once, then referenced by name.
    checksum: [u8; 16],
    tag: [u8; 4],
}

fn scalars() -> Vec<Scalars> {
    vec![
        Scalars {
            flag: true,
            tiny: -128,
            short: i16::MIN,
            int32: i32::MIN,
            byte: 255,
            word: u16::MAX,
            int64: i64::MIN,
            unsigned: u32::MAX,
            single: 0.1,
            double: -123.456e-300,
            text: "grüße, 🍕 \"quoted\"\n\ttabbed \u{0}nul".into(),
            blob: (0..=255).collect(),
            digest: *b"0123456789abcdef",
            checksum: [0xff; 16],
            tag: [0, 0x80, 0x7f, 1],
        },
        Scalars {
            flag: false,
            tiny: 127,
            short: i16::MAX,
            int32: i32::MAX,
            byte: 0,
            word: 0,
            int64: i64::MAX,
            unsigned: 0,
            single: f32::MAX,
            double: f64::MIN_POSITIVE,
            text: String::new(),
            blob: Vec::new(),
            digest: [0; 16],
            checksum: *b"fedcba9876543210",
            tag: *b"TAG!",
        },
        Scalars {
            flag: true,
            tiny: 0,
            short: -1,
            int32: 64,
            byte: 64,
            word: 8192,
            int64: -1,
            unsigned: 1 << 31,
            single: f32::NAN,
            double: f64::NEG_INFINITY,
            text: "x".repeat(300),
            blob: vec![0],
            digest: [7; 16],
            checksum: [8; 16],
            tag: [9; 4],
        },
        Scalars {
            flag: false,
            tiny: -1,
            short: 0,
            int32: -65,
            byte: 1,
            word: 1,
            int64: 1 << 53,
            unsigned: 1,
            single: f32::INFINITY,
            double: f64::NAN,
            text: "日本語".into(),
            blob: b"\x00\xff".to_vec(),
            digest: [1; 16],
            checksum: [2; 16],
            tag: [3; 4],
        },
    ]
}

fn scalars_json(v: &Scalars) -> Json {
    json!({
        "flag": v.flag,
        "tiny": v.tiny,
        "short": v.short,
        "int32": v.int32,
        "byte": v.byte,
        "word": v.word,
        "int64": v.int64,
        "unsigned": v.unsigned,
        "single": float(f64::from(v.single)),
        "double": float(v.double),
        "text": v.text,
        "blob": bytes(&v.blob),
        "digest": bytes(&v.digest),
        "checksum": bytes(&v.checksum),
        "tag": bytes(&v.tag),
    })
}

#[tokio::test]
async fn python_reads_primitives_bytes_and_fixed() {
    python_reads("interop-scalars", &scalars(), scalars_json).await;
}

#[tokio::test]
async fn flowodm_reads_primitives_bytes_and_fixed_from_python() {
    rust_reads("interop-scalars", &scalars(), scalars_json).await;
}

// ---------------------------------------------------------------------------------------------
// Options, arrays, maps, records, enums, unions, Box and recursion

#[derive(flowodm::Avro, Debug, Clone, PartialEq)]
#[flowodm(namespace = "com.flowodm.interop")]
struct Line {
    sku: String,
    quantity: i32,
}

#[derive(flowodm::Avro, Debug, Clone, Copy, PartialEq)]
#[flowodm(namespace = "com.flowodm.interop")]
enum Status {
    Pending,
    #[flowodm(rename = "IN_PROGRESS")]
    InProgress,
    Done,
    #[flowodm(default)]
    Unknown,
}

impl Status {
    fn symbol(self) -> &'static str {
        match self {
            Status::Pending => "Pending",
            Status::InProgress => "IN_PROGRESS",
            Status::Done => "Done",
            Status::Unknown => "Unknown",
        }
    }
}

#[derive(flowodm::Avro, Debug, Clone, PartialEq)]
#[flowodm(namespace = "com.flowodm.interop")]
struct Card {
    last4: String,
}

/// A union: null, two records, a long, a string and an array.
#[derive(flowodm::Avro, Debug, Clone, PartialEq)]
#[flowodm(namespace = "com.flowodm.interop")]
enum Payment {
    Cash,
    Card(Card),
    Voucher {
        code: String,
        #[flowodm(decimal(precision = 8, scale = 2))]
        value: Decimal,
    },
    Points(i64),
    Note(String),
    Split(Vec<i32>),
}

fn payment_json(p: &Payment) -> Json {
    let ns = "com.flowodm.interop";
    match p {
        Payment::Cash => Json::Null,
        Payment::Card(c) => branch(&format!("{ns}.Card"), json!({"last4": c.last4})),
        Payment::Voucher { code, value } => branch(
            &format!("{ns}.Voucher"),
            json!({"code": code, "value": decimal(value, 2)}),
        ),
        Payment::Points(n) => branch("long", json!(n)),
        Payment::Note(s) => branch("string", json!(s)),
        Payment::Split(v) => branch("array", json!(v)),
    }
}

/// A recursive list.
#[derive(flowodm::Avro, Debug, Clone, PartialEq)]
#[flowodm(namespace = "com.flowodm.interop")]
struct Node {
    value: i64,
    next: Option<Box<Node>>,
}

fn node_json(n: &Node) -> Json {
    json!({"value": n.value, "next": opt(&n.next, |b| node_json(b))})
}

/// A recursive tree.
#[derive(flowodm::Avro, Debug, Clone, PartialEq)]
#[flowodm(namespace = "com.flowodm.interop")]
struct Tree {
    label: String,
    children: Vec<Tree>,
}

fn tree_json(t: &Tree) -> Json {
    json!({"label": t.label, "children": t.children.iter().map(tree_json).collect::<Vec<_>>()})
}

fn leaf(label: &str) -> Tree {
    Tree {
        label: label.into(),
        children: Vec::new(),
    }
}

#[derive(Model, Debug, Clone, PartialEq)]
#[flowodm(
    topic = "flowodm-interop-containers",
    namespace = "com.flowodm.interop"
)]
struct Containers {
    maybe_text: Option<String>,
    maybe_long: Option<i64>,
    maybe_double: Option<f64>,
    maybe_blob: Option<Vec<u8>>,
    maybe_fixed: Option<[u8; 8]>,
    maybe_line: Option<Line>,
    numbers: Vec<i32>,
    words: Vec<String>,
    lines: Vec<Line>,
    nested: Vec<Vec<i64>>,
    counts: HashMap<String, i64>,
    groups: BTreeMap<String, Vec<String>>,
    by_sku: HashMap<String, Line>,
    maybe_map: Option<HashMap<String, bool>>,
    line: Line,
    boxed: Box<Line>,
    status: Status,
    maybe_status: Option<Status>,
    statuses: Vec<Status>,
    payment: Payment,
    history: Vec<Payment>,
    list: Node,
    tree: Tree,
}

fn line(sku: &str, quantity: i32) -> Line {
    Line {
        sku: sku.into(),
        quantity,
    }
}

fn containers() -> Vec<Containers> {
    let full = Containers {
        maybe_text: Some("some".into()),
        maybe_long: Some(-5),
        maybe_double: Some(2.5),
        maybe_blob: Some(vec![1, 2, 3]),
        maybe_fixed: Some(*b"8 bytes!"),
        maybe_line: Some(line("OPT-1", 3)),
        numbers: vec![1, -1, i32::MAX, i32::MIN, 0],
        words: vec!["a".into(), String::new(), "ünï".into()],
        lines: vec![line("A", 1), line("B", 2)],
        nested: vec![vec![1, 2], vec![], vec![i64::MAX]],
        counts: HashMap::from([("one".into(), 1), ("minus".into(), -1), ("".into(), 0)]),
        groups: BTreeMap::from([
            ("empty".into(), vec![]),
            ("two".into(), vec!["x".into(), "y".into()]),
        ]),
        by_sku: HashMap::from([("S-1".into(), line("S-1", 10))]),
        maybe_map: Some(HashMap::from([("yes".into(), true), ("no".into(), false)])),
        line: line("L", 7),
        boxed: Box::new(line("BOX", 9)),
        status: Status::InProgress,
        maybe_status: Some(Status::Unknown),
        statuses: vec![Status::Pending, Status::Done, Status::InProgress],
        payment: Payment::Voucher {
            code: "SAVE10".into(),
            value: Decimal::new(-1_000, 2),
        },
        history: vec![
            Payment::Cash,
            Payment::Card(Card {
                last4: "4242".into(),
            }),
            Payment::Points(-3),
            Payment::Note("paid at the door".into()),
            Payment::Split(vec![50, 50]),
            Payment::Voucher {
                code: "X".into(),
                value: Decimal::new(99_999_999, 2),
            },
        ],
        list: Node {
            value: 1,
            next: Some(Box::new(Node {
                value: 2,
                next: Some(Box::new(Node {
                    value: 3,
                    next: None,
                })),
            })),
        },
        tree: Tree {
            label: "root".into(),
            children: vec![
                Tree {
                    label: "a".into(),
                    children: vec![leaf("a1"), leaf("a2")],
                },
                leaf("b"),
            ],
        },
    };
    let empty = Containers {
        maybe_text: None,
        maybe_long: None,
        maybe_double: None,
        maybe_blob: None,
        maybe_fixed: None,
        maybe_line: None,
        numbers: vec![],
        words: vec![],
        lines: vec![],
        nested: vec![],
        counts: HashMap::new(),
        groups: BTreeMap::new(),
        by_sku: HashMap::new(),
        maybe_map: None,
        line: line("", 0),
        boxed: Box::new(line("", -1)),
        status: Status::Pending,
        maybe_status: None,
        statuses: vec![],
        payment: Payment::Cash,
        history: vec![],
        list: Node {
            value: 0,
            next: None,
        },
        tree: leaf(""),
    };
    let mut others = full.clone();
    others.payment = Payment::Card(Card {
        last4: "0000".into(),
    });
    others.maybe_map = Some(HashMap::new());
    others.maybe_status = Some(Status::Done);
    others.status = Status::Unknown;
    let mut points = empty.clone();
    points.payment = Payment::Points(i64::MIN);
    let mut note = empty.clone();
    note.payment = Payment::Note(String::new());
    let mut split = empty.clone();
    split.payment = Payment::Split(vec![]);
    vec![full, empty, others, points, note, split]
}

fn containers_json(v: &Containers) -> Json {
    let line_json = |l: &Line| json!({"sku": l.sku, "quantity": l.quantity});
    json!({
        "maybe_text": v.maybe_text,
        "maybe_long": v.maybe_long,
        "maybe_double": opt(&v.maybe_double, |d| float(*d)),
        "maybe_blob": opt(&v.maybe_blob, |b| bytes(b)),
        "maybe_fixed": opt(&v.maybe_fixed, |b| bytes(b)),
        "maybe_line": opt(&v.maybe_line, line_json),
        "numbers": v.numbers,
        "words": v.words,
        "lines": v.lines.iter().map(line_json).collect::<Vec<_>>(),
        "nested": v.nested,
        "counts": v.counts,
        "groups": v.groups,
        "by_sku": v.by_sku.iter().map(|(k, l)| (k.clone(), line_json(l))).collect::<serde_json::Map<_, _>>(),
        "maybe_map": v.maybe_map,
        "line": line_json(&v.line),
        "boxed": line_json(&v.boxed),
        "status": v.status.symbol(),
        "maybe_status": v.maybe_status.map(Status::symbol),
        "statuses": v.statuses.iter().map(|s| s.symbol()).collect::<Vec<_>>(),
        "payment": payment_json(&v.payment),
        "history": v.history.iter().map(payment_json).collect::<Vec<_>>(),
        "list": node_json(&v.list),
        "tree": tree_json(&v.tree),
    })
}

#[tokio::test]
async fn python_reads_options_collections_records_enums_and_unions() {
    python_reads("interop-containers", &containers(), containers_json).await;
}

#[tokio::test]
async fn flowodm_reads_options_collections_records_enums_and_unions_from_python() {
    rust_reads("interop-containers", &containers(), containers_json).await;
}

// ---------------------------------------------------------------------------------------------
// Logical types: timestamps, dates, times, UUIDs, decimals

#[derive(Model, Debug, Clone, PartialEq)]
#[flowodm(topic = "flowodm-interop-logical", namespace = "com.flowodm.interop")]
struct Logical {
    at: DateTime<Utc>,
    #[flowodm(micros)]
    at_micros: DateTime<Utc>,
    local: NaiveDateTime,
    #[flowodm(micros)]
    local_micros: NaiveDateTime,
    day: NaiveDate,
    time_of_day: NaiveTime,
    #[flowodm(micros)]
    time_micros: NaiveTime,
    maybe_at: Option<DateTime<Utc>>,
    #[flowodm(micros)]
    maybe_at_micros: Option<DateTime<Utc>>,
    #[flowodm(micros)]
    moments: Vec<DateTime<Utc>>,
    maybe_day: Option<NaiveDate>,
    id: Uuid,
    maybe_id: Option<Uuid>,
    ids: Vec<Uuid>,
    #[flowodm(decimal(precision = 10, scale = 2))]
    price: Decimal,
    #[flowodm(decimal(precision = 20, scale = 4))]
    maybe_price: Option<Decimal>,
    #[flowodm(decimal(precision = 28, scale = 10))]
    big: Decimal,
    #[flowodm(decimal(precision = 6, scale = 0))]
    whole: Decimal,
    #[flowodm(decimal(precision = 4, scale = 2))]
    prices: Vec<Decimal>,
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, micros: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap() + chrono::TimeDelta::microseconds(micros)
}

fn logical() -> Vec<Logical> {
    let moon = utc(1969, 7, 20, 20, 17, 40, 123_000);
    vec![
        Logical {
            at: utc(2026, 11, 22, 10, 30, 15, 123_000),
            at_micros: utc(2026, 11, 22, 10, 30, 15, 123_456),
            local: NaiveDate::from_ymd_opt(2026, 3, 29)
                .unwrap()
                .and_hms_milli_opt(2, 30, 0, 5)
                .unwrap(),
            local_micros: NaiveDate::from_ymd_opt(2026, 3, 29)
                .unwrap()
                .and_hms_micro_opt(2, 30, 0, 999_999)
                .unwrap(),
            day: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
            time_of_day: NaiveTime::from_hms_milli_opt(23, 59, 59, 999).unwrap(),
            time_micros: NaiveTime::from_hms_micro_opt(12, 34, 56, 789_012).unwrap(),
            maybe_at: Some(moon),
            maybe_at_micros: Some(utc(1969, 12, 31, 23, 59, 59, 1)),
            moments: vec![moon, utc(2038, 1, 19, 3, 14, 8, 0)],
            maybe_day: Some(NaiveDate::from_ymd_opt(1969, 12, 31).unwrap()),
            id: Uuid::parse_str("7c1d2a4e-7c53-4b59-9d3c-6f1b2a9e8d10").unwrap(),
            maybe_id: Some(Uuid::max()),
            ids: vec![
                Uuid::nil(),
                Uuid::parse_str("00000000-0000-4000-8000-000000000001").unwrap(),
            ],
            price: Decimal::new(-123_456, 2),
            maybe_price: Some(Decimal::new(5, 1)),
            big: Decimal::from_i128_with_scale(1_234_567_890_123_456_780_123_456_789, 10),
            whole: Decimal::new(-999_999, 0),
            prices: vec![
                Decimal::new(128, 2),
                Decimal::new(-128, 2),
                Decimal::new(-1, 2),
                Decimal::new(9_999, 2),
                Decimal::ZERO,
            ],
        },
        Logical {
            at: moon,
            at_micros: utc(1, 1, 1, 0, 0, 0, 0),
            local: NaiveDate::from_ymd_opt(1900, 1, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap(),
            local_micros: NaiveDate::from_ymd_opt(9999, 12, 31)
                .unwrap()
                .and_hms_micro_opt(23, 59, 59, 999_999)
                .unwrap(),
            day: NaiveDate::from_ymd_opt(1, 1, 1).unwrap(),
            time_of_day: NaiveTime::MIN,
            time_micros: NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap(),
            maybe_at: None,
            maybe_at_micros: None,
            moments: vec![],
            maybe_day: None,
            id: Uuid::nil(),
            maybe_id: None,
            ids: vec![],
            price: Decimal::new(9_999_999_999, 2),
            maybe_price: None,
            big: Decimal::from_i128_with_scale(-9_999_999_999_999_999_999_999_999_999, 10),
            whole: Decimal::ZERO,
            prices: vec![],
        },
        Logical {
            at: utc(9999, 12, 31, 23, 59, 59, 999_000),
            at_micros: utc(1970, 1, 1, 0, 0, 0, 0),
            local: NaiveDate::from_ymd_opt(1970, 1, 1)
                .unwrap()
                .and_hms_milli_opt(0, 0, 0, 1)
                .unwrap(),
            local_micros: NaiveDate::from_ymd_opt(1, 1, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap(),
            day: NaiveDate::from_ymd_opt(9999, 12, 31).unwrap(),
            time_of_day: NaiveTime::from_hms_milli_opt(0, 0, 0, 1).unwrap(),
            time_micros: NaiveTime::MIN,
            maybe_at: Some(utc(1, 1, 1, 0, 0, 0, 0)),
            maybe_at_micros: Some(utc(9999, 12, 31, 23, 59, 59, 999_999)),
            moments: vec![utc(2000, 2, 29, 12, 0, 0, 1)],
            maybe_day: Some(NaiveDate::from_ymd_opt(2000, 2, 29).unwrap()),
            id: Uuid::max(),
            maybe_id: Some(Uuid::nil()),
            ids: vec![Uuid::max()],
            price: Decimal::new(-1, 2),
            maybe_price: Some(Decimal::new(-1_234_567_890_123_456_789, 4)),
            big: Decimal::new(1, 10),
            whole: Decimal::new(999_999, 0),
            prices: vec![Decimal::new(-9_999, 2)],
        },
    ]
}

fn logical_json(v: &Logical) -> Json {
    let decimals = |ds: &[Decimal], scale| ds.iter().map(|d| decimal(d, scale)).collect::<Vec<_>>();
    json!({
        "at": timestamp(&v.at),
        "at_micros": timestamp(&v.at_micros),
        "local": local_timestamp(&v.local),
        "local_micros": local_timestamp(&v.local_micros),
        "day": date(&v.day),
        "time_of_day": time(&v.time_of_day),
        "time_micros": time(&v.time_micros),
        "maybe_at": opt(&v.maybe_at, timestamp),
        "maybe_at_micros": opt(&v.maybe_at_micros, timestamp),
        "moments": v.moments.iter().map(timestamp).collect::<Vec<_>>(),
        "maybe_day": opt(&v.maybe_day, date),
        "id": uuid(&v.id),
        "maybe_id": opt(&v.maybe_id, uuid),
        "ids": v.ids.iter().map(uuid).collect::<Vec<_>>(),
        "price": decimal(&v.price, 2),
        "maybe_price": opt(&v.maybe_price, |d| decimal(d, 4)),
        "big": decimal(&v.big, 10),
        "whole": decimal(&v.whole, 0),
        "prices": decimals(&v.prices, 2),
    })
}

#[tokio::test]
async fn python_reads_logical_types() {
    python_reads("interop-logical", &logical(), logical_json).await;
}

#[tokio::test]
async fn flowodm_reads_logical_types_from_python() {
    rust_reads("interop-logical", &logical(), logical_json).await;
}

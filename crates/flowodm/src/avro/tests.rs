//! The codec checked against itself (round trips), against the schema it claims (JSON), against an
//! independent implementation (apache-avro reads what we write and the reverse), and through
//! schema evolution.

use std::collections::{BTreeMap, HashMap};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use serde_json::json;

use super::*;
use crate::Avro as DeriveAvro;

#[derive(DeriveAvro, Debug, Clone, PartialEq)]
#[flowodm(namespace = "com.pipeline.test")]
enum Status {
    Pending,
    #[flowodm(rename = "IN_PROGRESS")]
    InProgress,
    Done,
}

#[derive(DeriveAvro, Debug, Clone, PartialEq)]
#[flowodm(namespace = "com.pipeline.test")]
struct Item {
    sku: String,
    quantity: i32,
    unit_price: f64,
}

/// An order with every supported kind of field.
#[derive(DeriveAvro, Debug, Clone, PartialEq)]
#[flowodm(namespace = "com.pipeline.test", name = "Order")]
struct OrderV1 {
    /// The order's id.
    order_id: String,
    flag: bool,
    small: i32,
    big: i64,
    ratio: f32,
    total: f64,
    blob: Vec<u8>,
    note: Option<String>,
    items: Vec<Item>,
    tags: HashMap<String, String>,
    counts: BTreeMap<String, i64>,
    status: Status,
    boxed: Box<Item>,
    maybe_item: Option<Item>,
    #[flowodm(skip)]
    local_only: u32,
}

fn sample() -> OrderV1 {
    OrderV1 {
        order_id: "ORD-20261122-00001".into(),
        flag: true,
        small: -42,
        big: i64::MAX - 7,
        ratio: 0.5,
        total: 123.45,
        blob: vec![0, 1, 2, 255],
        note: Some("leave at the door".into()),
        items: vec![
            Item {
                sku: "ITEM-001".into(),
                quantity: 2,
                unit_price: 9.5,
            },
            Item {
                sku: "ITEM-002".into(),
                quantity: 1,
                unit_price: 12.25,
            },
        ],
        tags: HashMap::from([("source".to_string(), "web".to_string())]),
        counts: BTreeMap::from([("a".to_string(), 1), ("b".to_string(), -1)]),
        status: Status::InProgress,
        boxed: Box::new(Item {
            sku: "ITEM-003".into(),
            quantity: 3,
            unit_price: 1.0,
        }),
        maybe_item: None,
        local_only: 0,
    }
}

#[test]
fn derived_schema_is_the_expected_avro() {
    let schema = OrderV1::schema_json();
    assert_eq!(schema["type"], "record");
    assert_eq!(schema["name"], "Order");
    assert_eq!(schema["namespace"], "com.pipeline.test");
    assert_eq!(
        schema["doc"],
        "An order with every supported kind of field."
    );
    let fields = schema["fields"].as_array().unwrap();
    let names: Vec<&str> = fields.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "order_id",
            "flag",
            "small",
            "big",
            "ratio",
            "total",
            "blob",
            "note",
            "items",
            "tags",
            "counts",
            "status",
            "boxed",
            "maybe_item"
        ],
        "skipped fields are not in the schema"
    );
    assert_eq!(fields[0]["doc"], "The order's id.");
    assert_eq!(fields[6]["type"], "bytes");
    assert_eq!(fields[7]["type"], json!(["null", "string"]));
    assert_eq!(fields[7]["default"], json!(null));
    assert_eq!(
        fields[9]["type"],
        json!({"type": "map", "values": "string"})
    );
    assert_eq!(
        fields[11]["type"],
        json!({"type": "enum", "name": "Status", "symbols": ["Pending", "IN_PROGRESS", "Done"]})
    );
    // Item is defined once, in `items`, and referred to by name afterwards.
    assert_eq!(fields[8]["type"]["items"]["name"], "Item");
    assert_eq!(fields[12]["type"], "com.pipeline.test.Item");
    assert_eq!(
        fields[13]["type"],
        json!(["null", "com.pipeline.test.Item"])
    );
    // And apache-avro accepts it.
    Schema::parse_str(&schema.to_string()).unwrap();
}

#[test]
fn round_trips_every_field_kind() {
    let order = sample();
    let bytes = to_avro(&order).unwrap();
    assert_eq!(from_avro::<OrderV1>(&bytes).unwrap(), order);
    let mut with_item = order.clone();
    with_item.maybe_item = Some(Item {
        sku: "X".into(),
        quantity: 0,
        unit_price: -0.0,
    });
    with_item.note = None;
    with_item.items.clear();
    with_item.tags.clear();
    let bytes = to_avro(&with_item).unwrap();
    assert_eq!(from_avro::<OrderV1>(&bytes).unwrap(), with_item);
}

/// apache-avro's decoder, as an independent implementation.
fn their_read(schema: &Schema, bytes: &[u8]) -> Value {
    GenericDatumReader::builder(schema)
        .build()
        .unwrap()
        .read_value(&mut &bytes[..])
        .unwrap()
}

/// apache-avro's encoder, as an independent implementation.
fn their_write(schema: &Schema, value: Value) -> Vec<u8> {
    GenericDatumWriter::builder(schema)
        .build()
        .unwrap()
        .write_value_to_vec(value)
        .unwrap()
}

fn apache_schema<T: Avro + 'static>() -> Schema {
    Schema::parse_str(schema_of::<T>().unwrap().json()).unwrap()
}

#[test]
fn apache_avro_reads_what_we_write() {
    let schema = apache_schema::<OrderV1>();
    let bytes = to_avro(&sample()).unwrap();
    let value = their_read(&schema, &bytes);
    let Value::Record(fields) = value else {
        panic!("not a record: {value:?}")
    };
    let get = |n: &str| fields.iter().find(|(k, _)| k == n).unwrap().1.clone();
    assert_eq!(get("order_id"), Value::String("ORD-20261122-00001".into()));
    assert_eq!(get("big"), Value::Long(i64::MAX - 7));
    assert_eq!(get("blob"), Value::Bytes(vec![0, 1, 2, 255]));
    assert_eq!(
        get("note"),
        Value::Union(1, Box::new(Value::String("leave at the door".into())))
    );
    assert_eq!(get("status"), Value::Enum(1, "IN_PROGRESS".into()));
    assert_eq!(get("maybe_item"), Value::Union(0, Box::new(Value::Null)));
}

#[test]
fn we_read_what_apache_avro_writes() {
    let schema = apache_schema::<OrderV1>();
    let order = sample();
    let ours = to_avro(&order).unwrap();
    // Decode our bytes to apache-avro's value and re-encode it with apache-avro. The bytes may
    // differ only in the order of map entries (apache-avro keeps maps in a HashMap), so compare
    // what they decode to.
    let value = their_read(&schema, &ours);
    let theirs = their_write(&schema, value);
    assert_eq!(theirs.len(), ours.len());
    assert_eq!(from_avro::<OrderV1>(&theirs).unwrap(), order);
}

// ---- schema evolution -----------------------------------------------------------------------

mod v1 {
    use crate::Avro;

    #[derive(Avro, Debug, Clone, PartialEq)]
    #[flowodm(namespace = "com.pipeline.evo", name = "Event")]
    pub struct Event {
        pub id: String,
        pub amount: i32,
        pub ratio: f32,
        pub legacy: String,
        pub status: super::v1::Status,
        pub label: String,
    }

    #[derive(Avro, Debug, Clone, PartialEq)]
    #[flowodm(namespace = "com.pipeline.evo")]
    pub enum Status {
        New,
        Paid,
    }
}

mod v2 {
    use crate::Avro;

    #[derive(Avro, Debug, Clone, PartialEq)]
    #[flowodm(namespace = "com.pipeline.evo", name = "Event")]
    pub struct Event {
        pub id: String,
        /// int → long
        pub amount: i64,
        /// float → double
        pub ratio: f64,
        /// added with a default
        #[flowodm(default = "USD")]
        pub currency: String,
        /// added, optional
        pub note: Option<String>,
        pub status: super::v2::Status,
        /// renamed from `label`
        #[flowodm(alias = "label")]
        pub title: String,
        // `legacy` removed
    }

    #[derive(Avro, Debug, Clone, PartialEq)]
    #[flowodm(namespace = "com.pipeline.evo")]
    pub enum Status {
        New,
        Paid,
        Shipped,
        #[flowodm(default)]
        Unknown,
    }
}

fn v1_event() -> v1::Event {
    v1::Event {
        id: "E-1".into(),
        amount: 1234,
        ratio: 0.25,
        legacy: "dropped".into(),
        status: v1::Status::Paid,
        label: "first".into(),
    }
}

fn json_of<T: Avro + 'static>() -> &'static str {
    schema_of::<T>().unwrap().json()
}

#[test]
fn old_data_reads_into_the_new_type() {
    let bytes = to_avro(&v1_event()).unwrap();
    let plan = Resolution::for_type::<v2::Event>(json_of::<v1::Event>()).unwrap();
    assert!(!is_identity(&plan));
    let got: v2::Event = from_avro_resolved(&bytes, &plan).unwrap();
    assert_eq!(
        got,
        v2::Event {
            id: "E-1".into(),
            amount: 1234,
            ratio: 0.25,
            currency: "USD".into(),
            note: None,
            status: v2::Status::Paid,
            title: "first".into(),
        }
    );
}

#[test]
fn new_data_reads_into_the_old_type_when_it_can() {
    // v2 → v1 fails when the plan is compiled, naming the first field that cannot be read:
    // a long cannot narrow to an int (and `legacy` has no default either).
    let err = Resolution::for_type::<v1::Event>(json_of::<v2::Event>()).unwrap_err();
    assert!(err.to_string().contains(".amount"), "{err}");
    assert!(
        err.to_string().contains("long cannot be read as int"),
        "{err}"
    );

    // A forward-compatible pair: the old reader has defaults for what the new writer dropped.
    #[derive(DeriveAvro, Debug, PartialEq)]
    #[flowodm(namespace = "com.pipeline.evo", name = "Event")]
    struct OldReader {
        id: String,
        #[flowodm(default = "none")]
        legacy: String,
        status: v2::Status,
    }
    let new = v2::Event {
        id: "E-2".into(),
        amount: 1,
        ratio: 1.0,
        currency: "EUR".into(),
        note: Some("n".into()),
        status: v2::Status::Shipped,
        title: "t".into(),
    };
    let plan = Resolution::for_type::<OldReader>(json_of::<v2::Event>()).unwrap();
    let got: OldReader = from_avro_resolved(&to_avro(&new).unwrap(), &plan).unwrap();
    assert_eq!(
        got,
        OldReader {
            id: "E-2".into(),
            legacy: "none".into(),
            status: v2::Status::Shipped
        }
    );
}

#[test]
fn unknown_enum_symbols_take_the_default_or_fail() {
    // v2's `Shipped` read as v1 (no default): an error for that datum only.
    #[derive(DeriveAvro, Debug, PartialEq)]
    #[flowodm(namespace = "com.pipeline.evo", name = "Event")]
    struct StatusOnlyV1 {
        status: v1::Status,
    }
    #[derive(DeriveAvro, Debug, PartialEq)]
    #[flowodm(namespace = "com.pipeline.evo", name = "Event")]
    struct StatusOnlyV2 {
        status: v2::Status,
    }
    let plan = Resolution::for_type::<StatusOnlyV1>(json_of::<StatusOnlyV2>()).unwrap();
    let paid = to_avro(&StatusOnlyV2 {
        status: v2::Status::Paid,
    })
    .unwrap();
    assert_eq!(
        from_avro_resolved::<StatusOnlyV1>(&paid, &plan).unwrap(),
        StatusOnlyV1 {
            status: v1::Status::Paid
        }
    );
    let shipped = to_avro(&StatusOnlyV2 {
        status: v2::Status::Shipped,
    })
    .unwrap();
    assert!(from_avro_resolved::<StatusOnlyV1>(&shipped, &plan).is_err());

    // A symbol the reader lacks goes to its default.
    let writer = r#"{"type":"record","name":"Event","namespace":"com.pipeline.evo","fields":[
        {"name":"status","type":{"type":"enum","name":"Status","symbols":["New","Lost"]}}]}"#;
    let plan = Resolution::for_type::<StatusOnlyV2>(writer).unwrap();
    assert_eq!(
        from_avro_resolved::<StatusOnlyV2>(&[2], &plan).unwrap(),
        StatusOnlyV2 {
            status: v2::Status::Unknown
        }
    );
}

#[test]
fn promotions_and_union_changes() {
    #[derive(DeriveAvro, Debug, PartialEq)]
    #[flowodm(name = "P")]
    struct Reader {
        a: i64,
        b: f32,
        c: f64,
        d: f64,
        e: Vec<u8>,
        f: String,
        g: Option<i64>,
        h: i64,
        i: Vec<f64>,
        j: HashMap<String, i64>,
    }
    let writer = r#"{"type":"record","name":"P","fields":[
        {"name":"a","type":"int"},
        {"name":"b","type":"long"},
        {"name":"c","type":"int"},
        {"name":"d","type":"float"},
        {"name":"e","type":"string"},
        {"name":"f","type":"bytes"},
        {"name":"g","type":"int"},
        {"name":"h","type":["null","long"]},
        {"name":"i","type":{"type":"array","items":"int"}},
        {"name":"j","type":{"type":"map","values":"int"}}]}"#;
    let writer_schema = Schema::parse_str(writer).unwrap();
    let value = Value::Record(vec![
        ("a".into(), Value::Int(-5)),
        ("b".into(), Value::Long(1 << 40)),
        ("c".into(), Value::Int(7)),
        ("d".into(), Value::Float(1.5)),
        ("e".into(), Value::String("text".into())),
        ("f".into(), Value::Bytes(b"raw".to_vec())),
        ("g".into(), Value::Int(9)),
        ("h".into(), Value::Union(1, Box::new(Value::Long(11)))),
        ("i".into(), Value::Array(vec![Value::Int(1), Value::Int(2)])),
        (
            "j".into(),
            Value::Map(HashMap::from([("k".to_string(), Value::Int(3))])),
        ),
    ]);
    let bytes = their_write(&writer_schema, value);
    let plan = Resolution::for_type::<Reader>(writer).unwrap();
    let got: Reader = from_avro_resolved(&bytes, &plan).unwrap();
    assert_eq!(
        got,
        Reader {
            a: -5,
            b: (1u64 << 40) as f32,
            c: 7.0,
            d: 1.5,
            e: b"text".to_vec(),
            f: "raw".into(),
            g: Some(9),
            h: 11,
            i: vec![1.0, 2.0],
            j: HashMap::from([("k".to_string(), 3)]),
        }
    );
    // A null in the writer's union cannot be read as the reader's plain long.
    let null_h = Value::Record(vec![
        ("a".into(), Value::Int(0)),
        ("b".into(), Value::Long(0)),
        ("c".into(), Value::Int(0)),
        ("d".into(), Value::Float(0.0)),
        ("e".into(), Value::String(String::new())),
        ("f".into(), Value::Bytes(vec![])),
        ("g".into(), Value::Int(0)),
        ("h".into(), Value::Union(0, Box::new(Value::Null))),
        ("i".into(), Value::Array(vec![])),
        ("j".into(), Value::Map(HashMap::new())),
    ]);
    let bytes = their_write(&writer_schema, null_h);
    assert!(from_avro_resolved::<Reader>(&bytes, &plan).is_err());
}

#[test]
fn identical_schemas_compile_to_the_direct_decoder() {
    let plan = Resolution::for_type::<OrderV1>(json_of::<OrderV1>()).unwrap();
    assert!(is_identity(&plan));
    let got: OrderV1 = from_avro_resolved(&to_avro(&sample()).unwrap(), &plan).unwrap();
    assert_eq!(got, sample());
}

#[test]
fn incompatible_schemas_are_rejected_with_the_path() {
    let writer = r#"{"type":"record","name":"Event","namespace":"com.pipeline.evo","fields":[
        {"name":"id","type":"long"}]}"#;
    let err = Resolution::for_type::<v2::Event>(writer).unwrap_err();
    assert!(matches!(err, Error::Schema { .. }));
    assert!(err.to_string().contains(".id"), "{err}");
    let other_name = r#"{"type":"record","name":"Other","fields":[]}"#;
    assert!(Resolution::for_type::<v2::Event>(other_name).is_err());
}

#[derive(DeriveAvro, Debug, Clone, PartialEq)]
#[flowodm(namespace = "com.pipeline.test")]
struct Node {
    value: i64,
    next: Option<Box<Node>>,
}

#[test]
fn recursive_types_round_trip_and_stay_bounded() {
    let list = Node {
        value: 1,
        next: Some(Box::new(Node {
            value: 2,
            next: Some(Box::new(Node {
                value: 3,
                next: None,
            })),
        })),
    };
    let schema = Node::schema_json();
    assert_eq!(
        schema["fields"][1]["type"],
        json!(["null", "com.pipeline.test.Node"])
    );
    let bytes = to_avro(&list).unwrap();
    assert_eq!(from_avro::<Node>(&bytes).unwrap(), list);

    // A hostile chain deeper than the limit is an error, not a stack overflow.
    let mut deep = Vec::new();
    for _ in 0..100_000 {
        deep.extend_from_slice(&[2, 2]); // value 1, next: Some(...)
    }
    deep.extend_from_slice(&[2, 0]);
    let err = from_avro::<Node>(&deep).unwrap_err();
    assert!(err.to_string().contains("nest deeper"), "{err}");
}

#[test]
fn corrupt_data_is_an_error_never_a_panic() {
    let good = to_avro(&sample()).unwrap();
    for cut in 0..good.len() {
        assert!(
            from_avro::<OrderV1>(&good[..cut]).is_err(),
            "truncated at {cut}"
        );
    }
    let mut flipped = good.clone();
    for i in 0..flipped.len() {
        flipped[i] ^= 0xff;
        let _ = from_avro::<OrderV1>(&flipped);
        flipped[i] ^= 0xff;
    }
    assert!(from_avro::<OrderV1>(&[good.as_slice(), &[0]].concat()).is_err());
}

#[derive(DeriveAvro, Debug, Clone, PartialEq)]
struct NoNamespace {
    v: i32,
}

#[derive(DeriveAvro, Debug, Clone, PartialEq)]
#[flowodm(namespace = "com.pipeline.test")]
struct UsesItTwice {
    a: NoNamespace,
    b: NoNamespace,
}

#[derive(DeriveAvro, Debug, Clone, PartialEq)]
struct TopLevelTwice {
    a: NoNamespace,
    b: NoNamespace,
}

#[test]
fn a_type_without_namespace_used_twice_inside_one_is_a_clear_error() {
    let err = schema_of::<UsesItTwice>().unwrap_err();
    assert!(matches!(err, Error::Schema { .. }));
    let text = err.to_string();
    assert!(
        text.contains("`NoNamespace` has no namespace") && text.contains("com.pipeline.test"),
        "{text}"
    );
    // Without an enclosing namespace the reference is fine.
    let t = TopLevelTwice {
        a: NoNamespace { v: 1 },
        b: NoNamespace { v: 2 },
    };
    assert_eq!(
        schema_of::<TopLevelTwice>()
            .unwrap()
            .json()
            .matches("\"record\"")
            .count(),
        2
    );
    assert_eq!(
        from_avro::<TopLevelTwice>(&to_avro(&t).unwrap()).unwrap(),
        t
    );
}

#[derive(DeriveAvro, Debug, Clone, PartialEq)]
#[flowodm(namespace = "com.pipeline.test")]
struct Strings {
    cow: std::borrow::Cow<'static, str>,
    boxed: Box<str>,
    shared: std::sync::Arc<str>,
    plain: String,
}

#[test]
fn every_string_holder_is_an_avro_string() {
    let v = Strings {
        cow: std::borrow::Cow::Borrowed("static text"),
        boxed: "boxed".into(),
        shared: "shared".into(),
        plain: "plain".into(),
    };
    let schema = Strings::schema_json();
    for i in 0..4 {
        assert_eq!(schema["fields"][i]["type"], "string");
    }
    let bytes = to_avro(&v).unwrap();
    assert_eq!(from_avro::<Strings>(&bytes).unwrap(), v);
}

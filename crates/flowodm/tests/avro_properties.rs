//! Properties of the generated codec over arbitrary values and arbitrary bytes.

use std::collections::{BTreeMap, HashMap};

use flowodm::avro::{from_avro, from_avro_resolved, schema_of, to_avro, Resolution};
use flowodm::Avro;
use proptest::prelude::*;

#[derive(Avro, Debug, Clone, PartialEq)]
#[flowodm(namespace = "com.pipeline.props")]
enum Method {
    Card,
    Cash,
    Voucher,
}

#[derive(Avro, Debug, Clone, PartialEq)]
#[flowodm(namespace = "com.pipeline.props")]
struct Line {
    sku: String,
    quantity: i32,
    unit_price: f64,
}

#[derive(Avro, Debug, Clone, PartialEq)]
#[flowodm(namespace = "com.pipeline.props")]
struct Everything {
    flag: bool,
    small: i32,
    big: i64,
    single: f32,
    double: f64,
    text: String,
    blob: Vec<u8>,
    maybe: Option<i64>,
    lines: Vec<Line>,
    attributes: HashMap<String, String>,
    sorted: BTreeMap<String, Option<f64>>,
    method: Method,
    nested: Option<Box<Line>>,
}

/// The same record as written by an older version: fewer fields, narrower numbers.
#[derive(Avro, Debug, Clone, PartialEq)]
#[flowodm(namespace = "com.pipeline.props", name = "Everything")]
struct EverythingV0 {
    flag: bool,
    small: i32,
    big: i32,
    single: f32,
    double: f32,
    text: String,
    legacy: String,
    method: Method,
}

/// Every f64 but NaN (NaN != NaN would make equality meaningless; it round-trips bit for bit).
fn f64s() -> impl Strategy<Value = f64> {
    use proptest::num::f64::*;
    NORMAL | SUBNORMAL | ZERO | INFINITE | NEGATIVE | POSITIVE
}

fn f32s() -> impl Strategy<Value = f32> {
    use proptest::num::f32::*;
    NORMAL | SUBNORMAL | ZERO | INFINITE | NEGATIVE | POSITIVE
}

fn line() -> impl Strategy<Value = Line> {
    (".{0,12}", any::<i32>(), f64s()).prop_map(|(sku, quantity, unit_price)| Line {
        sku,
        quantity,
        unit_price,
    })
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Card),
        Just(Method::Cash),
        Just(Method::Voucher)
    ]
}

fn everything() -> impl Strategy<Value = Everything> {
    (
        (any::<bool>(), any::<i32>(), any::<i64>(), f32s(), f64s()),
        (
            ".{0,20}",
            proptest::collection::vec(any::<u8>(), 0..40),
            any::<Option<i64>>(),
        ),
        (
            proptest::collection::vec(line(), 0..5),
            proptest::collection::hash_map(".{0,6}", ".{0,6}", 0..4),
            proptest::collection::btree_map(".{0,6}", proptest::option::of(f64s()), 0..4),
            method(),
            proptest::option::of(line().prop_map(Box::new)),
        ),
    )
        .prop_map(
            |(
                (flag, small, big, single, double),
                (text, blob, maybe),
                (lines, attributes, sorted, method, nested),
            )| {
                Everything {
                    flag,
                    small,
                    big,
                    single,
                    double,
                    text,
                    blob,
                    maybe,
                    lines,
                    attributes,
                    sorted,
                    method,
                    nested,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_value_round_trips(value in everything()) {
        let bytes = to_avro(&value).unwrap();
        let back: Everything = from_avro(&bytes).unwrap();
        prop_assert_eq!(back, value);
    }

    #[test]
    fn apache_avro_agrees_on_every_value(value in everything()) {
        let schema = apache_avro::Schema::parse_str(schema_of::<Everything>().unwrap().json()).unwrap();
        let bytes = to_avro(&value).unwrap();
        let theirs = apache_avro::reader::datum::GenericDatumReader::builder(&schema)
            .build()
            .unwrap()
            .read_value(&mut &bytes[..]);
        prop_assert!(theirs.is_ok(), "apache-avro cannot read our bytes: {theirs:?}");
    }

    #[test]
    fn old_values_read_into_the_new_type(
        flag in any::<bool>(), small in any::<i32>(), big in any::<i32>(),
        single in f32s(), double in f32s(), text in ".{0,20}", legacy in ".{0,20}",
        method in method(),
    ) {
        let old = EverythingV0 { flag, small, big, single, double, text: text.clone(), legacy, method: method.clone() };
        // The new type needs defaults for what the old one lacks: give the reader a variant that has them.
        #[derive(Avro, Debug, PartialEq)]
        #[flowodm(namespace = "com.pipeline.props", name = "Everything")]
        struct Reader {
            flag: bool,
            small: i64,
            big: i64,
            single: f64,
            double: f64,
            text: String,
            maybe: Option<i64>,
            #[flowodm(default = "none")]
            note: String,
            method: Method,
        }
        let plan = Resolution::for_type::<Reader>(schema_of::<EverythingV0>().unwrap().json()).unwrap();
        let got: Reader = from_avro_resolved(&to_avro(&old).unwrap(), &plan).unwrap();
        prop_assert_eq!(got.small, i64::from(small));
        prop_assert_eq!(got.big, i64::from(big));
        prop_assert_eq!(got.single.to_bits(), f64::from(single).to_bits());
        prop_assert_eq!(got.double.to_bits(), f64::from(double).to_bits());
        prop_assert_eq!(got.text, text);
        prop_assert_eq!(got.maybe, None);
        prop_assert_eq!(got.note, "none");
        prop_assert_eq!(got.method, method);
        prop_assert_eq!(got.flag, flag);
    }

    /// Arbitrary bytes: an error or a value, never a panic, and never an allocation the input
    /// cannot back (a length larger than the input is rejected before allocating).
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = from_avro::<Everything>(&bytes);
        let plan = Resolution::for_type::<Everything>(schema_of::<EverythingV0>().unwrap().json());
        prop_assert!(plan.is_err(), "V0 lacks fields Everything needs without defaults");
        let _ = from_avro::<EverythingV0>(&bytes);
    }

    /// Mutations of a valid datum: still never a panic.
    #[test]
    fn mutated_data_never_panics(value in everything(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut bytes = to_avro(&value).unwrap();
        for (at, x) in flips {
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] ^= x;
            }
        }
        let _ = from_avro::<Everything>(&bytes);
    }
}

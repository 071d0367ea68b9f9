//! Arbitrary bytes through the Confluent framing and the generated decoders, with and without
//! schema resolution: every input must give a value or an error, never a panic, a hang or an
//! allocation the input cannot back.
//!
//! Run with `cargo +nightly fuzz run decode` from this directory.
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use flowodm::avro::{from_avro, from_avro_resolved, schema_of, Resolution};
use flowodm::Avro;
use libfuzzer_sys::fuzz_target;

#[derive(Avro, Debug)]
#[flowodm(namespace = "fuzz")]
enum Kind {
    A,
    B,
    #[flowodm(default)]
    Other,
}

#[derive(Avro, Debug)]
#[flowodm(namespace = "fuzz")]
struct Inner {
    name: String,
    values: Vec<f64>,
}

#[derive(Avro, Debug)]
#[flowodm(namespace = "fuzz")]
struct Tree {
    id: i64,
    kind: Kind,
    blob: Vec<u8>,
    tags: HashMap<String, Option<i32>>,
    children: Vec<Tree>,
    inner: Option<Box<Inner>>,
}

/// An older writer: narrower numbers, a field the reader lacks, no `blob`.
#[derive(Avro, Debug)]
#[flowodm(namespace = "fuzz", name = "Tree")]
struct TreeV0 {
    id: i32,
    kind: Kind,
    dropped: Vec<String>,
    tags: HashMap<String, Option<i32>>,
    children: Vec<TreeV0>,
}

#[derive(Avro, Debug)]
#[flowodm(namespace = "fuzz", name = "Tree")]
struct TreeReader {
    id: i64,
    kind: Kind,
    #[flowodm(default = "")]
    note: String,
    tags: HashMap<String, Option<i64>>,
    children: Vec<TreeReader>,
}

fn plan() -> &'static Resolution {
    static PLAN: OnceLock<Resolution> = OnceLock::new();
    PLAN.get_or_init(|| {
        Resolution::for_type::<TreeReader>(schema_of::<TreeV0>().unwrap().json()).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = from_avro::<Tree>(data);
    let _ = from_avro_resolved::<TreeReader>(data, plan());
    if let Ok(framed) = flowodm::wire::parse(data) {
        let _ = from_avro::<Tree>(framed.datum);
    }
});

//! A cross-check of the criterion benchmarks that is robust to a shared, noisy machine: every
//! path runs in short chunks, round-robin, so that load from other processes falls on all of
//! them alike; each path's per-op time is reported as the median and the minimum over its chunks.
//!
//! `cargo run --release -p flowodm-bench --example interleaved [ROUNDS]` (default 300 rounds of
//! 1000 ops per path).

use std::hint::black_box;
use std::time::Instant;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use flowodm::avro::{from_avro, from_avro_resolved, to_avro, Avro, Resolution};
use flowodm_bench::*;
use food_pipeline::events::OrderEvent;

const CHUNK: u32 = 1000;

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("ROUNDS is a number"))
        .unwrap_or(300);

    // The same inputs and long-lived state as benches/codec.rs.
    let event = sample_event(3);
    let mirror = SerdeOrderEvent::from(&event);
    let bytes = to_avro(&event).expect("encode");
    let apache_schema = Schema::parse_str(ORDER_EVENT_AVSC).expect("schema");
    let fast_schema: serde_avro_fast::Schema = ORDER_EVENT_AVSC.parse().expect("schema");
    let writer = GenericDatumWriter::builder(&apache_schema)
        .human_readable(true)
        .build()
        .expect("writer");
    let reader = GenericDatumReader::builder(&apache_schema)
        .human_readable(true)
        .build()
        .expect("reader");
    let mut config = serde_avro_fast::ser::SerializerConfig::new(&fast_schema);
    let expected = expected_from_v0();
    let v0_bytes = to_avro(&sample_event_v0()).expect("encode v0");
    let same_bytes = to_avro(&expected).expect("encode current");
    let plan = Resolution::for_type::<OrderEvent>(ORDER_EVENT_V0_AVSC).expect("resolution");
    assert_eq!(
        from_avro_resolved::<OrderEvent>(&v0_bytes, &plan).expect("decode"),
        expected
    );

    // Each path owns its output buffer.
    type Path<'a> = (&'static str, Box<dyn FnMut() + 'a>);
    let mut paths: Vec<Path<'_>> = Vec::new();
    let (e, mut buf1) = (&event, Vec::with_capacity(256));
    paths.push((
        "encode/flowodm",
        Box::new(move || {
            buf1.clear();
            black_box(e).encode(&mut buf1).expect("encode");
            black_box(buf1.as_slice());
        }),
    ));
    let mut buf2 = Vec::with_capacity(256);
    let (w, m) = (&writer, &mirror);
    paths.push((
        "encode/apache_avro",
        Box::new(move || {
            buf2.clear();
            w.write_ser(&mut buf2, black_box(m)).expect("encode");
            black_box(buf2.as_slice());
        }),
    ));
    let mut buf3 = Vec::with_capacity(256);
    let cfg = &mut config;
    paths.push((
        "encode/serde_avro_fast",
        Box::new(move || {
            buf3.clear();
            buf3 = serde_avro_fast::to_datum(black_box(m), std::mem::take(&mut buf3), cfg)
                .expect("encode");
            black_box(buf3.as_slice());
        }),
    ));
    let (bs, rd, fs) = (bytes.as_slice(), &reader, &fast_schema);
    let mut buf4 = Vec::with_capacity(256);
    paths.push((
        "roundtrip/flowodm",
        Box::new(move || {
            buf4.clear();
            black_box(e).encode(&mut buf4).expect("encode");
            black_box(from_avro::<OrderEvent>(black_box(&buf4)).expect("decode"));
        }),
    ));
    let mut buf5 = Vec::with_capacity(256);
    paths.push((
        "roundtrip/apache_avro",
        Box::new(move || {
            buf5.clear();
            w.write_ser(&mut buf5, black_box(m)).expect("encode");
            black_box(
                rd.read_deser::<SerdeOrderEvent>(&mut black_box(buf5.as_slice()))
                    .expect("decode"),
            );
        }),
    ));
    let mut config2 = serde_avro_fast::ser::SerializerConfig::new(&fast_schema);
    let mut buf6 = Vec::with_capacity(256);
    paths.push((
        "roundtrip/serde_avro_fast",
        Box::new(move || {
            buf6.clear();
            buf6 = serde_avro_fast::to_datum(black_box(m), std::mem::take(&mut buf6), &mut config2)
                .expect("encode");
            black_box(
                serde_avro_fast::from_datum_slice::<SerdeOrderEvent>(black_box(&buf6), fs)
                    .expect("decode"),
            );
        }),
    ));
    paths.push((
        "decode/flowodm",
        Box::new(move || {
            black_box(from_avro::<OrderEvent>(black_box(bs)).expect("decode"));
        }),
    ));
    paths.push((
        "decode/apache_avro",
        Box::new(move || {
            black_box(
                rd.read_deser::<SerdeOrderEvent>(&mut black_box(bs))
                    .expect("decode"),
            );
        }),
    ));
    paths.push((
        "decode/serde_avro_fast",
        Box::new(move || {
            black_box(
                serde_avro_fast::from_datum_slice::<SerdeOrderEvent>(black_box(bs), fs)
                    .expect("decode"),
            );
        }),
    ));
    let (same, v0, pl) = (same_bytes.as_slice(), v0_bytes.as_slice(), &plan);
    paths.push((
        "evolved_decode/same_schema",
        Box::new(move || {
            black_box(from_avro::<OrderEvent>(black_box(same)).expect("decode"));
        }),
    ));
    paths.push((
        "evolved_decode/evolved",
        Box::new(move || {
            black_box(from_avro_resolved::<OrderEvent>(black_box(v0), pl).expect("decode"));
        }),
    ));

    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); paths.len()];
    for (_, f) in paths.iter_mut() {
        for _ in 0..CHUNK {
            f(); // warm up
        }
    }
    for _ in 0..rounds {
        for (i, (_, f)) in paths.iter_mut().enumerate() {
            let t = Instant::now();
            for _ in 0..CHUNK {
                f();
            }
            times[i].push(t.elapsed().as_nanos() as f64 / f64::from(CHUNK));
        }
    }
    let mut stats = Vec::new();
    for ((name, _), t) in paths.iter().zip(&mut times) {
        t.sort_by(f64::total_cmp);
        let (median, min) = (t[t.len() / 2], t[0]);
        println!("{name:<28} median {median:>8.1} ns   min {min:>8.1} ns");
        stats.push((*name, median, min));
    }
    let get = |n: &str| *stats.iter().find(|s| s.0 == n).expect("path");
    // How many times faster flowodm is than the faster of the two others, per group.
    for group in ["encode", "decode", "roundtrip"] {
        let ours = get(&format!("{group}/flowodm"));
        let a = get(&format!("{group}/apache_avro"));
        let f = get(&format!("{group}/serde_avro_fast"));
        println!(
            "{:<28} median {:.2}x   min {:.2}x",
            format!("{group}: fastest other / flowodm"),
            a.1.min(f.1) / ours.1,
            a.2.min(f.2) / ours.2
        );
    }
    let (ev, same) = (
        get("evolved_decode/evolved"),
        get("evolved_decode/same_schema"),
    );
    println!(
        "{:<28} median {:.2}x   min {:.2}x",
        "evolved / same_schema",
        ev.1 / same.1,
        ev.2 / same.2
    );
}

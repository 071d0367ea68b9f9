//! Encoding and decoding one realistic `OrderEvent` with flowodm's generated codec, apache-avro's
//! schema-aware serde path and serde_avro_fast; and flowodm decoding data written with an older
//! schema through a compiled `Resolution`.
//!
//! Everything that a real producer or consumer builds once (parsed schemas, writers, readers,
//! serializer configs, resolution plans, output buffers) is built before measuring, so that each
//! iteration measures the codec alone. `tests/agree.rs` checks that all paths produce and accept
//! the same bytes; the start of `main` checks the exact values benchmarked here.

use std::hint::black_box;
use std::time::Duration;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flowodm::avro::{from_avro, from_avro_resolved, to_avro, Avro, Resolution};
use flowodm_bench::*;
use food_pipeline::events::OrderEvent;

/// The benchmark's inputs, and every codec's long-lived state.
struct Fixture {
    event: OrderEvent,
    mirror: SerdeOrderEvent,
    /// The event as flowodm writes it (every library reads these bytes).
    bytes: Vec<u8>,
    apache_schema: Schema,
    fast_schema: serde_avro_fast::Schema,
}

impl Fixture {
    fn new() -> Self {
        let event = sample_event(3);
        let mirror = SerdeOrderEvent::from(&event);
        let bytes = to_avro(&event).expect("encode");
        Fixture {
            event,
            mirror,
            bytes,
            apache_schema: Schema::parse_str(ORDER_EVENT_AVSC).expect("apache-avro schema"),
            fast_schema: ORDER_EVENT_AVSC.parse().expect("serde_avro_fast schema"),
        }
    }

    // apache-avro: human-readable serde, so that `Uuid` is (de)serialized as the string the
    // schema's `uuid` logical type carries (its default, binary, would not match the schema).
    fn apache_writer(&self) -> GenericDatumWriter<'_> {
        GenericDatumWriter::builder(&self.apache_schema)
            .human_readable(true)
            .build()
            .expect("apache-avro writer")
    }

    fn apache_reader(&self) -> GenericDatumReader<'_> {
        GenericDatumReader::builder(&self.apache_schema)
            .human_readable(true)
            .build()
            .expect("apache-avro reader")
    }

    /// Fails loudly unless every path round-trips the benchmark's exact value.
    fn check(&self) {
        let mut buf = Vec::new();
        self.apache_writer()
            .write_ser(&mut buf, &self.mirror)
            .expect("apache-avro encode");
        assert_eq!(buf.len(), self.bytes.len(), "apache-avro length");
        let back: SerdeOrderEvent = self
            .apache_reader()
            .read_deser(&mut &buf[..])
            .expect("apache-avro decode");
        assert_eq!(back, self.mirror, "apache-avro round trip");

        let mut config = serde_avro_fast::ser::SerializerConfig::new(&self.fast_schema);
        let buf = serde_avro_fast::to_datum_vec(&self.mirror, &mut config).expect("fast encode");
        assert_eq!(buf.len(), self.bytes.len(), "serde_avro_fast length");
        let back: SerdeOrderEvent =
            serde_avro_fast::from_datum_slice(&buf, &self.fast_schema).expect("fast decode");
        assert_eq!(back, self.mirror, "serde_avro_fast round trip");

        assert_eq!(
            from_avro::<OrderEvent>(&self.bytes).expect("decode"),
            self.event
        );
        let theirs: SerdeOrderEvent =
            serde_avro_fast::from_datum_slice(&self.bytes, &self.fast_schema).expect("decode");
        assert_eq!(
            theirs, self.mirror,
            "serde_avro_fast reading flowodm's bytes"
        );
    }
}

fn encode(c: &mut Criterion, f: &Fixture) {
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));

    let mut buf = Vec::with_capacity(256);
    g.bench_function("flowodm", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&f.event).encode(&mut buf).expect("encode");
            black_box(buf.as_slice());
        })
    });

    let writer = f.apache_writer();
    let mut buf = Vec::with_capacity(256);
    g.bench_function("apache_avro", |b| {
        b.iter(|| {
            buf.clear();
            writer
                .write_ser(&mut buf, black_box(&f.mirror))
                .expect("encode");
            black_box(buf.as_slice());
        })
    });

    // As serde_avro_fast's docs recommend: one serializer config and one output buffer, reused.
    let mut config = serde_avro_fast::ser::SerializerConfig::new(&f.fast_schema);
    let mut buf = Vec::with_capacity(256);
    g.bench_function("serde_avro_fast", |b| {
        b.iter(|| {
            buf.clear();
            buf = serde_avro_fast::to_datum(
                black_box(&f.mirror),
                std::mem::take(&mut buf),
                &mut config,
            )
            .expect("encode");
            black_box(buf.as_slice());
        })
    });
    g.finish();
}

fn decode(c: &mut Criterion, f: &Fixture) {
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    let bytes = f.bytes.as_slice();

    g.bench_function("flowodm", |b| {
        b.iter(|| from_avro::<OrderEvent>(black_box(bytes)).expect("decode"))
    });

    let reader = f.apache_reader();
    g.bench_function("apache_avro", |b| {
        b.iter(|| {
            reader
                .read_deser::<SerdeOrderEvent>(&mut black_box(bytes))
                .expect("decode")
        })
    });

    g.bench_function("serde_avro_fast", |b| {
        b.iter(|| {
            serde_avro_fast::from_datum_slice::<SerdeOrderEvent>(black_box(bytes), &f.fast_schema)
                .expect("decode")
        })
    });
    g.finish();
}

fn roundtrip(c: &mut Criterion, f: &Fixture) {
    let mut g = c.benchmark_group("roundtrip");
    g.throughput(Throughput::Elements(1));

    let mut buf = Vec::with_capacity(256);
    g.bench_function("flowodm", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&f.event).encode(&mut buf).expect("encode");
            from_avro::<OrderEvent>(black_box(&buf)).expect("decode")
        })
    });

    let (writer, reader) = (f.apache_writer(), f.apache_reader());
    let mut buf = Vec::with_capacity(256);
    g.bench_function("apache_avro", |b| {
        b.iter(|| {
            buf.clear();
            writer
                .write_ser(&mut buf, black_box(&f.mirror))
                .expect("encode");
            reader
                .read_deser::<SerdeOrderEvent>(&mut black_box(buf.as_slice()))
                .expect("decode")
        })
    });

    let mut config = serde_avro_fast::ser::SerializerConfig::new(&f.fast_schema);
    let mut buf = Vec::with_capacity(256);
    g.bench_function("serde_avro_fast", |b| {
        b.iter(|| {
            buf.clear();
            buf = serde_avro_fast::to_datum(
                black_box(&f.mirror),
                std::mem::take(&mut buf),
                &mut config,
            )
            .expect("encode");
            serde_avro_fast::from_datum_slice::<SerdeOrderEvent>(black_box(&buf), &f.fast_schema)
                .expect("decode")
        })
    });
    g.finish();
}

fn evolved_decode(c: &mut Criterion) {
    // The same resulting value both ways: written by a v0 producer, or by a current one.
    let expected = expected_from_v0();
    let v0_bytes = to_avro(&sample_event_v0()).expect("encode v0");
    let same_bytes = to_avro(&expected).expect("encode current");
    let plan = Resolution::for_type::<OrderEvent>(ORDER_EVENT_V0_AVSC).expect("resolution");
    assert_eq!(
        from_avro_resolved::<OrderEvent>(&v0_bytes, &plan).expect("evolved decode"),
        expected
    );
    assert_eq!(
        from_avro::<OrderEvent>(&same_bytes).expect("decode"),
        expected
    );

    let mut g = c.benchmark_group("evolved_decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("same_schema", |b| {
        b.iter(|| from_avro::<OrderEvent>(black_box(&same_bytes)).expect("decode"))
    });
    g.bench_function("evolved", |b| {
        b.iter(|| from_avro_resolved::<OrderEvent>(black_box(&v0_bytes), &plan).expect("decode"))
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let f = Fixture::new();
    f.check();
    encode(c, &f);
    decode(c, &f);
    roundtrip(c, &f);
    evolved_decode(c);
}

criterion_group! {
    name = codec;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .without_plots();
    targets = benches
}
criterion_main!(codec);

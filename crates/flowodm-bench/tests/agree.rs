//! The three codecs agree on the benchmark's data: the same bytes for the same value, and each
//! reads the others' bytes back to an equal value. A benchmark of wrong results is worthless.

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use flowodm::avro::{
    compare_schemas, from_avro, from_avro_resolved, schema_of, to_avro, Resolution,
};
use flowodm_bench::*;
use food_pipeline::events::OrderEvent;

struct Codecs {
    apache: Schema,
    fast: serde_avro_fast::Schema,
}

impl Codecs {
    fn new() -> Self {
        Codecs {
            apache: Schema::parse_str(ORDER_EVENT_AVSC).unwrap(),
            fast: ORDER_EVENT_AVSC.parse().unwrap(),
        }
    }

    fn apache_encode(&self, v: &SerdeOrderEvent) -> Vec<u8> {
        let w = GenericDatumWriter::builder(&self.apache)
            .human_readable(true)
            .build()
            .unwrap();
        let mut buf = Vec::new();
        w.write_ser(&mut buf, v).unwrap();
        buf
    }

    fn apache_decode(&self, bytes: &[u8]) -> SerdeOrderEvent {
        let r = GenericDatumReader::builder(&self.apache)
            .human_readable(true)
            .build()
            .unwrap();
        let mut input = bytes;
        let v = r.read_deser(&mut input).unwrap();
        assert!(input.is_empty(), "apache-avro left {} bytes", input.len());
        v
    }

    fn fast_encode(&self, v: &SerdeOrderEvent) -> Vec<u8> {
        let mut config = serde_avro_fast::ser::SerializerConfig::new(&self.fast);
        serde_avro_fast::to_datum_vec(v, &mut config).unwrap()
    }

    fn fast_decode(&self, bytes: &[u8]) -> SerdeOrderEvent {
        serde_avro_fast::from_datum_slice(bytes, &self.fast).unwrap()
    }
}

#[test]
fn the_mirror_schema_file_is_the_models_schema() {
    let derived = schema_of::<OrderEvent>().unwrap();
    compare_schemas(derived.json(), ORDER_EVENT_AVSC).unwrap();
}

#[test]
fn all_three_write_the_same_bytes() {
    // One metadata entry, so that no map iteration order can differ.
    let event = sample_event(1);
    let mirror = SerdeOrderEvent::from(&event);
    let c = Codecs::new();
    let ours = to_avro(&event).unwrap();
    assert_eq!(c.apache_encode(&mirror), ours, "apache-avro");
    assert_eq!(c.fast_encode(&mirror), ours, "serde_avro_fast");
}

#[test]
fn each_reads_the_others_bytes() {
    // The benchmark's value, with three metadata entries: compared as decoded values.
    let event = sample_event(3);
    let mirror = SerdeOrderEvent::from(&event);
    let c = Codecs::new();
    let written = [
        ("flowodm", to_avro(&event).unwrap()),
        ("apache-avro", c.apache_encode(&mirror)),
        ("serde_avro_fast", c.fast_encode(&mirror)),
    ];
    for (by, bytes) in &written {
        assert_eq!(
            from_avro::<OrderEvent>(bytes).unwrap(),
            event,
            "flowodm reading {by}"
        );
        assert_eq!(c.apache_decode(bytes), mirror, "apache-avro reading {by}");
        assert_eq!(c.fast_decode(bytes), mirror, "serde_avro_fast reading {by}");
        // Maps aside, the encodings are the same size.
        assert_eq!(bytes.len(), written[0].1.len(), "{by}");
    }
    assert_eq!(OrderEvent::from(c.fast_decode(&written[0].1)), event);
}

#[test]
fn the_v0_schema_file_is_the_v0_types_schema() {
    let derived = schema_of::<OrderEventV0>().unwrap();
    compare_schemas(derived.json(), ORDER_EVENT_V0_AVSC).unwrap();
}

#[test]
fn v0_is_a_backward_compatible_older_version() {
    let v0 = Schema::parse_str(ORDER_EVENT_V0_AVSC).unwrap();
    let current = Schema::parse_str(ORDER_EVENT_AVSC).unwrap();
    SchemaCompatibility::can_read(&v0, &current).unwrap();
}

#[test]
fn v0_data_is_read_with_the_current_schema() {
    let bytes = to_avro(&sample_event_v0()).unwrap();
    let plan = Resolution::for_type::<OrderEvent>(ORDER_EVENT_V0_AVSC).unwrap();
    assert!(!flowodm::avro::is_identity(&plan));
    let ours: OrderEvent = from_avro_resolved(&bytes, &plan).unwrap();
    assert_eq!(ours, expected_from_v0());

    // apache-avro's own resolution agrees.
    let v0 = Schema::parse_str(ORDER_EVENT_V0_AVSC).unwrap();
    let current = Schema::parse_str(ORDER_EVENT_AVSC).unwrap();
    let reader = GenericDatumReader::builder(&v0)
        .reader_schema(&current)
        .build()
        .unwrap();
    let value = reader.read_value(&mut &bytes[..]).unwrap();
    let theirs: SerdeOrderEvent = apache_avro::from_value(&value).unwrap();
    assert_eq!(OrderEvent::from(theirs), ours);

    // The same-schema counterpart of the evolved benchmark decodes to the same value.
    let same = to_avro(&expected_from_v0()).unwrap();
    assert_eq!(from_avro::<OrderEvent>(&same).unwrap(), ours);
}

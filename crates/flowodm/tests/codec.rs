//! `Codec` against the stack's registry and Kafka: registration, subject strategies, strict
//! framing, unknown ids, and schema evolution in both directions through the registry.

use std::time::Duration;

use flowodm::codec::{Codec, CodecConfig};
use flowodm::registry::{Schema, SchemaRegistryClient, SchemaType, SubjectNameStrategy};
use flowodm::{Avro, Error, Model};
use flowodm_test::{new_topic, plaintext_config, registry_url, unique_name};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};

fn registry() -> SchemaRegistryClient {
    SchemaRegistryClient::new(&registry_url()).unwrap()
}

mod v1 {
    use super::*;

    #[derive(Model, Debug, Clone, PartialEq)]
    #[flowodm(
        topic = "codec-evolution",
        key = "id",
        namespace = "dev.flowodm.codec",
        name = "Reading"
    )]
    pub struct Reading {
        pub id: String,
        pub celsius: f32,
        pub sensor: String,
    }
}

mod v2 {
    use super::*;

    #[derive(Avro, Debug, Clone, Copy, PartialEq)]
    #[flowodm(namespace = "dev.flowodm.codec")]
    pub enum Quality {
        Good,
        Suspect,
        #[flowodm(default)]
        Unknown,
    }

    /// v2: `celsius` widened to double, `sensor` renamed to `device` (alias), `quality` added
    /// with a default, `note` added as optional.
    #[derive(Model, Debug, Clone, PartialEq)]
    #[flowodm(
        topic = "codec-evolution",
        key = "id",
        namespace = "dev.flowodm.codec",
        name = "Reading"
    )]
    pub struct Reading {
        pub id: String,
        pub celsius: f64,
        #[flowodm(alias = "sensor")]
        pub device: String,
        #[flowodm(default = "Unknown")]
        pub quality: Quality,
        pub note: Option<String>,
    }
}

#[tokio::test]
async fn encode_registers_once_and_decode_round_trips() {
    let codec = Codec::<v1::Reading>::new(registry()).unwrap();
    assert_eq!(codec.subject(), "codec-evolution-value");
    let r = v1::Reading {
        id: "r-1".into(),
        celsius: 21.5,
        sensor: "s-9".into(),
    };
    let payload = codec.encode(&r).await.unwrap();
    let id = codec.schema_id().await.unwrap();
    assert_eq!(flowodm::wire::parse(&payload).unwrap().schema_id, id);
    assert_eq!(codec.decode(&payload).await.unwrap(), r);

    // The registry holds exactly the derived schema under that id.
    let stored = registry().schema_by_id(id).await.unwrap();
    flowodm::avro::compare_schemas(codec.schema().json(), &stored).unwrap();

    // Another codec (a consumer elsewhere) decodes it by fetching the writer schema by id.
    let other = Codec::<v1::Reading>::new(registry()).unwrap();
    assert_eq!(other.decode(&payload).await.unwrap(), r);
    // After that the id is prepared and decoding needs no await.
    assert_eq!(other.decode_prepared(&payload).unwrap(), r);
}

#[tokio::test]
async fn old_writers_are_read_by_new_readers_and_back() {
    let old = Codec::<v1::Reading>::new(registry()).unwrap();
    let new = Codec::<v2::Reading>::new(registry()).unwrap();
    assert_eq!(old.subject(), new.subject());

    let written_v1 = old
        .encode(&v1::Reading {
            id: "a".into(),
            celsius: 1.5,
            sensor: "dev-1".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        new.decode(&written_v1).await.unwrap(),
        v2::Reading {
            id: "a".into(),
            celsius: 1.5,
            device: "dev-1".into(),
            quality: v2::Quality::Unknown,
            note: None
        }
    );

    // v2 → v1 (forward): v1 cannot read a double as a float, so this must fail clearly, not guess.
    let written_v2 = new
        .encode(&v2::Reading {
            id: "b".into(),
            celsius: 2.25,
            device: "dev-2".into(),
            quality: v2::Quality::Good,
            note: Some("n".into()),
        })
        .await
        .unwrap();
    let err = old.decode(&written_v2).await.unwrap_err();
    assert!(matches!(err, Error::Schema { .. }), "{err:?}");
    assert!(err.to_string().contains("celsius"), "{err}");

    // Both versions live under the subject.
    let versions = registry().versions(new.subject()).await.unwrap();
    assert!(versions.len() >= 2, "{versions:?}");
}

#[tokio::test]
async fn unframed_truncated_and_unknown_payloads_are_typed_errors() {
    let codec = Codec::<v1::Reading>::new(registry()).unwrap();
    let err = codec.decode(b"{\"id\":\"json\"}").await.unwrap_err();
    assert!(matches!(err, Error::Framing { .. }), "{err:?}");
    let err = codec.decode(&[0, 0, 0]).await.unwrap_err();
    assert!(matches!(err, Error::Framing { .. }), "{err:?}");
    let err = codec
        .decode(&[0, 0x7f, 0xff, 0xff, 0x01, 2])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UnknownSchema { id: 0x7fff_ff01 }),
        "{err:?}"
    );
    assert!(!err.is_retriable());

    let good = codec
        .encode(&v1::Reading {
            id: "x".into(),
            celsius: 0.0,
            sensor: "s".into(),
        })
        .await
        .unwrap();
    let err = codec.decode(&good[..good.len() - 1]).await.unwrap_err();
    assert!(matches!(err, Error::Deserialization { .. }), "{err:?}");
    let mut longer = good.clone();
    longer.push(0);
    assert!(
        codec.decode(&longer).await.is_err(),
        "trailing bytes are rejected"
    );
}

/// A writer schema the model cannot read is a schema error, the same for every message written
/// with it (the codec remembers the id instead of asking the registry again).
#[tokio::test]
async fn a_writer_schema_the_model_cannot_read_is_a_schema_error_every_time() {
    let registry = registry();
    let subject = unique_name("codec-unreadable") + "-value";
    // Another record: resolution fails (a record's name must match).
    let other = r#"{"type":"record","name":"Unrelated","namespace":"dev.flowodm.codec",
        "fields":[{"name":"v","type":"long"}]}"#;
    let id = registry.register(&subject, other).await.unwrap();
    let mut payload = Vec::new();
    flowodm::wire::write_header(&mut payload, id);
    payload.push(2);
    let codec = Codec::<v1::Reading>::new(registry).unwrap();
    let first = codec.decode(&payload).await.unwrap_err();
    assert!(matches!(first, Error::Schema { .. }), "{first:?}");
    assert!(!first.is_retriable());
    let again = codec.decode(&payload).await.unwrap_err();
    assert_eq!(again.to_string(), first.to_string());
}

/// A payload whose writer schema is JSON Schema (or Protobuf) is refused as a schema error that
/// names the schema's language, never decoded as if it were Avro.
#[tokio::test]
async fn a_writer_schema_that_is_not_avro_is_a_schema_error_naming_its_language() {
    let registry = registry();
    let subject = unique_name("codec-json-writer") + "-value";
    let json = Schema::new(
        SchemaType::Json,
        r#"{"type":"object","properties":{"v":{"type":"integer"}}}"#,
    );
    let id = registry
        .register_schema(&subject, &json, false)
        .await
        .unwrap();
    let mut payload = Vec::new();
    flowodm::wire::write_header(&mut payload, id);
    // Also a valid Avro datum of `Reading` (id "x", 0.0 °C, sensor "s"): only the refusal fails it.
    payload.extend_from_slice(&[2, b'x', 0, 0, 0, 0, 2, b's']);
    let codec = Codec::<v1::Reading>::new(registry).unwrap();
    let err = codec.decode(&payload).await.unwrap_err();
    assert!(matches!(err, Error::Schema { .. }), "{err:?}");
    assert!(!err.is_retriable());
    assert!(
        err.to_string()
            .contains(&format!("writer schema {id} is a JSON schema, not Avro")),
        "{err}"
    );
    assert!(!codec.is_prepared(id));
    let again = codec.decode(&payload).await.unwrap_err();
    assert_eq!(again.to_string(), err.to_string());
}

#[derive(Model, Debug, Clone, PartialEq)]
#[flowodm(topic = "codec-never-registered", namespace = "dev.flowodm.codec")]
struct NeverRegistered {
    v: i64,
}

#[tokio::test]
async fn without_auto_registration_a_missing_schema_is_an_error_that_says_so() {
    let subject = unique_name("codec-never-registered") + "-value";
    let config = CodecConfig::default()
        .auto_register(false)
        .subject(subject.clone());
    let codec = Codec::<NeverRegistered>::with_config(registry(), config.clone()).unwrap();
    let err = codec.encode(&NeverRegistered { v: 1 }).await.unwrap_err();
    assert!(matches!(err, Error::Schema { .. }), "{err:?}");
    assert!(
        err.to_string().contains("auto-registration is off"),
        "{err}"
    );
    assert!(err.to_string().contains(&subject), "{err}");

    // Once registered (by a deployment step), a codec finds it.
    let codec2 = Codec::<NeverRegistered>::with_config(registry(), config).unwrap();
    let id = registry()
        .register(codec2.subject(), codec2.schema().json())
        .await
        .unwrap();
    assert_eq!(codec2.schema_id().await.unwrap(), id);
}

#[tokio::test]
async fn subject_name_strategies() {
    let record = Codec::<v1::Reading>::with_config(
        registry(),
        CodecConfig::default().subject_strategy(SubjectNameStrategy::RecordName),
    )
    .unwrap();
    assert_eq!(record.subject(), "dev.flowodm.codec.Reading");
    let topic_record = Codec::<v1::Reading>::with_config(
        registry(),
        CodecConfig::default().subject_strategy(SubjectNameStrategy::TopicRecordName),
    )
    .unwrap();
    assert_eq!(
        topic_record.subject(),
        "codec-evolution-dev.flowodm.codec.Reading"
    );
    let id = record.schema_id().await.unwrap();
    assert_eq!(
        topic_record.schema_id().await.unwrap(),
        id,
        "same schema, same global id"
    );
}

#[tokio::test]
async fn through_kafka_with_keys() {
    let topic = new_topic("codec-kafka", 3).await;
    let codec = Codec::<v2::Reading>::new(registry()).unwrap();
    let producer: FutureProducer = plaintext_config().create().unwrap();
    let readings: Vec<v2::Reading> = (0..30)
        .map(|i| v2::Reading {
            id: format!("sensor-{}", i % 5),
            celsius: f64::from(i) / 2.0,
            device: format!("dev-{i}"),
            quality: if i % 3 == 0 {
                v2::Quality::Suspect
            } else {
                v2::Quality::Good
            },
            note: (i % 2 == 0).then(|| format!("n{i}")),
        })
        .collect();
    let mut buf = Vec::new();
    for r in &readings {
        buf.clear();
        codec.encode_into(r, &mut buf).await.unwrap();
        let key = r.key().unwrap();
        producer
            .send(
                FutureRecord::to(&topic).key(&key).payload(&buf),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }

    let consumer: StreamConsumer = plaintext_config()
        .set("group.id", unique_name("codec-group"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let mut by_key: std::collections::HashMap<String, Vec<v2::Reading>> = Default::default();
    let mut partition_of: std::collections::HashMap<String, i32> = Default::default();
    for _ in 0..readings.len() {
        let msg = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("a message within a minute")
            .unwrap();
        let r = codec.decode(msg.payload().unwrap()).await.unwrap();
        let key = String::from_utf8(msg.key().unwrap().to_vec()).unwrap();
        assert_eq!(key, r.id);
        // One key, one partition.
        assert_eq!(
            *partition_of.entry(key.clone()).or_insert(msg.partition()),
            msg.partition()
        );
        by_key.entry(key).or_default().push(r);
    }
    // Per key, the order of production is kept.
    for (key, got) in by_key {
        let expected: Vec<v2::Reading> = readings.iter().filter(|r| r.id == key).cloned().collect();
        assert_eq!(got, expected, "key {key}");
    }
}

mod referencing {
    use super::*;

    #[derive(Avro, Debug, Clone, PartialEq)]
    #[flowodm(namespace = "dev.flowodm.refs")]
    pub struct Country {
        pub code: String,
    }

    #[derive(Avro, Debug, Clone, PartialEq)]
    #[flowodm(namespace = "dev.flowodm.refs")]
    pub struct Address {
        pub city: String,
        pub country: Country,
    }

    #[derive(Model, Debug, Clone, PartialEq)]
    #[flowodm(topic = "codec-references", namespace = "dev.flowodm.refs")]
    pub struct Customer {
        pub name: String,
        pub home: Address,
        pub born_in: Country,
    }
}

/// A writer schema that uses other subjects' types (Confluent schema references), as Java's
/// and Python's serializers can register it: the codec fetches the referenced schemas too.
#[tokio::test]
async fn writer_schemas_with_references_are_read() {
    use flowodm::registry::{Schema, SchemaReference};
    use referencing::{Address, Country, Customer};
    let registry = registry();
    let country_subject = unique_name("refs-country");
    let address_subject = unique_name("refs-address");
    let country = r#"{"type":"record","name":"Country","namespace":"dev.flowodm.refs",
        "fields":[{"name":"code","type":"string"}]}"#;
    registry.register(&country_subject, country).await.unwrap();
    let address = Schema::avro(
        r#"{"type":"record","name":"Address","namespace":"dev.flowodm.refs",
            "fields":[{"name":"city","type":"string"},
                      {"name":"country","type":"dev.flowodm.refs.Country"}]}"#,
    )
    .with_reference(SchemaReference::new(
        "dev.flowodm.refs.Country",
        &country_subject,
        1,
    ));
    registry
        .register_schema(&address_subject, &address, false)
        .await
        .unwrap();
    // The customer refers to both: to Country directly and through Address.
    let customer = Schema::avro(
        r#"{"type":"record","name":"Customer","namespace":"dev.flowodm.refs",
            "fields":[{"name":"name","type":"string"},
                      {"name":"home","type":"dev.flowodm.refs.Address"},
                      {"name":"born_in","type":"dev.flowodm.refs.Country"}]}"#,
    )
    .with_reference(SchemaReference::new(
        "dev.flowodm.refs.Address",
        &address_subject,
        1,
    ))
    .with_reference(SchemaReference::new(
        "dev.flowodm.refs.Country",
        &country_subject,
        1,
    ));
    let customer_subject = unique_name("refs-customer");
    let id = registry
        .register_schema(&customer_subject, &customer, false)
        .await
        .unwrap();

    let value = Customer {
        name: "Ada".into(),
        home: Address {
            city: "London".into(),
            country: Country { code: "GB".into() },
        },
        born_in: Country { code: "GB".into() },
    };
    // The same bytes as the referencing schema writes them, framed with its id.
    let mut payload = Vec::new();
    Codec::<Customer>::encode_with_id(id, &value, &mut payload).unwrap();
    let codec = Codec::<Customer>::new(registry.clone()).unwrap();
    assert_eq!(codec.decode(&payload).await.unwrap(), value);
}

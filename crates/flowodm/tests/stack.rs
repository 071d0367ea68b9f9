//! Smoke tests against the real services of `dev/stack`: Kafka on its PLAINTEXT, SASL_SSL and
//! mutual-TLS listeners, the schema registry's Confluent API, and PostgreSQL.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flowodm::config::{KafkaConfig, Sasl, SecurityProtocol, Tls};
use flowodm::registry::SchemaRegistryClient;
use flowodm::{Error, Secret};
use flowodm_test::{env, new_topic, unique_name};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

const MESSAGES: usize = 20;

fn sasl_config(password: &str) -> KafkaConfig {
    KafkaConfig::new(env("KAFKA_SASL_BOOTSTRAP_SERVERS"))
        .security_protocol(SecurityProtocol::SaslSsl)
        .sasl(Sasl {
            mechanism: "SCRAM-SHA-512".into(),
            username: Some(env("KAFKA_SASL_USERNAME")),
            password: Some(Secret::new(password)),
        })
        .tls(Tls {
            ca_location: Some(env("KAFKA_SSL_CA_LOCATION")),
            ..Tls::default()
        })
}

/// Produces `MESSAGES` keyed messages through `config`, consumes them back in a fresh consumer
/// group through the same listener, commits, and checks every one arrived intact and in order.
async fn round_trip(config: KafkaConfig, topic: &str) {
    let producer: FutureProducer = config
        .clone()
        .set("acks", "all")
        .client_config()
        .create()
        .expect("producer");
    for i in 0..MESSAGES {
        let payload = format!("message {i}");
        let delivery = producer
            .send(
                FutureRecord::to(topic).key("k").payload(&payload),
                Duration::from_secs(30),
            )
            .await;
        let delivery = delivery.unwrap_or_else(|(e, _)| panic!("delivery of {i} failed: {e}"));
        assert_eq!(delivery.offset, i as i64);
    }
    producer.flush(Duration::from_secs(10)).unwrap();

    let group = unique_name("smoke-group");
    let consumer: StreamConsumer = config
        .set("group.id", &group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .client_config()
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).unwrap();
    let mut seen = Vec::new();
    let deadline = Duration::from_secs(60);
    while seen.len() < MESSAGES {
        let msg = tokio::time::timeout(deadline, consumer.recv())
            .await
            .expect("messages arrive within a minute")
            .expect("consume");
        assert_eq!(msg.key(), Some(&b"k"[..]));
        seen.push(String::from_utf8(msg.payload().unwrap().to_vec()).unwrap());
        consumer.commit_message(&msg, CommitMode::Sync).unwrap();
    }
    let expected: Vec<String> = (0..MESSAGES).map(|i| format!("message {i}")).collect();
    assert_eq!(seen, expected);

    // The group's committed position is after the last message.
    let committed = consumer
        .committed(Duration::from_secs(10))
        .expect("committed offsets");
    let elem = committed
        .find_partition(topic, 0)
        .expect("partition 0 is assigned");
    assert_eq!(elem.offset(), rdkafka::Offset::Offset(MESSAGES as i64));
}

#[tokio::test]
async fn plaintext_produce_and_consume_with_a_group() {
    let topic = new_topic("smoke-plain", 1).await;
    let config = KafkaConfig::new(env("KAFKA_BOOTSTRAP_SERVERS"));
    round_trip(config, &topic).await;
}

#[tokio::test]
async fn sasl_ssl_scram_produce_and_consume_with_a_group() {
    let topic = new_topic("smoke-scram", 1).await;
    round_trip(sasl_config(&env("KAFKA_SASL_PASSWORD")), &topic).await;
}

#[tokio::test]
async fn mutual_tls_produce_and_consume_with_a_group() {
    let topic = new_topic("smoke-mtls", 1).await;
    let config = KafkaConfig::new(env("KAFKA_SSL_BOOTSTRAP_SERVERS"))
        .security_protocol(SecurityProtocol::Ssl)
        .tls(Tls {
            ca_location: Some(env("KAFKA_SSL_CA_LOCATION")),
            certificate_location: Some(env("KAFKA_SSL_CERTIFICATE_LOCATION")),
            key_location: Some(env("KAFKA_SSL_KEY_LOCATION")),
            key_password: None,
        });
    round_trip(config, &topic).await;
}

/// Records the errors librdkafka reports through its error callback.
#[derive(Clone, Default)]
struct ErrorLog(Arc<Mutex<Vec<KafkaError>>>);

impl ClientContext for ErrorLog {
    fn error(&self, error: KafkaError, _reason: &str) {
        self.0.lock().unwrap().push(error);
    }
}

#[tokio::test]
async fn wrong_scram_password_is_an_authentication_error_not_a_hang() {
    let log = ErrorLog::default();
    let started = Instant::now();
    let config: ClientConfig = sasl_config("not-the-password").client_config();
    let producer: FutureProducer<ErrorLog> = config
        .create_with_context(log.clone())
        .expect("creating the client does not connect yet");

    // librdkafka connects in the background and reports the failed handshake.
    let auth_failed = || {
        log.0.lock().unwrap().iter().any(|e| {
            matches!(
                e.rdkafka_error_code(),
                Some(RDKafkaErrorCode::Authentication)
            )
        })
    };
    while !auth_failed() && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        auth_failed(),
        "no authentication error within 20 s; errors seen: {:?}",
        log.0.lock().unwrap()
    );

    // Note: librdkafka reports the failure only through the error callback; a raw request such
    // as fetch_metadata still waits for its whole timeout, so flowodm's clients must watch it.
    eprintln!("authentication error after {:?}", started.elapsed());
    drop(producer);
}

#[tokio::test]
async fn registry_registers_a_schema_and_returns_it_by_id() {
    let registry = SchemaRegistryClient::new(&env("SCHEMA_REGISTRY_URL")).unwrap();
    let subject = unique_name("smoke") + "-value";
    let schema = serde_json::json!({
        "type": "record",
        "name": "Greeting",
        "namespace": "dev.flowodm.smoke",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "text", "type": "string"}
        ]
    })
    .to_string();

    let id = registry.register(&subject, &schema).await.unwrap();
    // Registering the same schema again gives the same id.
    assert_eq!(registry.register(&subject, &schema).await.unwrap(), id);

    let fetched = registry.schema_by_id(id).await.unwrap();
    let as_json = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
    assert_eq!(as_json(&fetched), as_json(&schema));

    let latest = registry.latest_version(&subject).await.unwrap();
    assert_eq!(
        (latest.subject.as_str(), latest.version, latest.id),
        (subject.as_str(), 1, id)
    );
    assert!(registry.subjects().await.unwrap().contains(&subject));
}

#[tokio::test]
async fn registry_errors_carry_status_and_error_code() {
    let registry = SchemaRegistryClient::new(&env("SCHEMA_REGISTRY_URL")).unwrap();
    let err = registry.schema_by_id(987_654_321).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Registry {
                status: 404,
                error_code: 40403,
                ..
            }
        ),
        "{err:?}"
    );
    let err = registry
        .latest_version(&unique_name("missing"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Registry {
                status: 404,
                error_code: 40401,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn unreachable_registry_is_a_retriable_transport_error() {
    // Port 9 (discard) on loopback: nothing listens there.
    let registry = SchemaRegistryClient::new("http://127.0.0.1:9").unwrap();
    let err = registry.subjects().await.unwrap_err();
    assert!(matches!(err, Error::RegistryTransport { .. }), "{err:?}");
    assert!(err.is_retriable());
}

#[tokio::test]
async fn postgres_accepts_connections_and_queries() {
    let (client, connection) = tokio_postgres::connect(&env("DATABASE_URL"), tokio_postgres::NoTls)
        .await
        .expect("connect to DATABASE_URL");
    let conn = tokio::spawn(connection);
    client
        .batch_execute("CREATE TEMP TABLE smoke (id INT PRIMARY KEY, note TEXT NOT NULL)")
        .await
        .unwrap();
    client
        .execute(
            "INSERT INTO smoke (id, note) VALUES ($1, $2)",
            &[&1i32, &"hello"],
        )
        .await
        .unwrap();
    let row = client
        .query_one("SELECT note FROM smoke WHERE id = $1", &[&1i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "hello");
    drop(client);
    conn.await.unwrap().unwrap();
}

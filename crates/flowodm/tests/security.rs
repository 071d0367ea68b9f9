//! flowodm's producer and consumer over the stack's secured listeners: SASL_SSL with
//! SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN, mutual TLS, and wrong credentials failing fast.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use flowodm::consumer::Consumed;
use flowodm::registry::SchemaRegistryClient;
use flowodm::{Client, Error, KafkaConfig, Model};
use flowodm_test::{env, new_topic, registry_url, unique_name};
use rdkafka::types::RDKafkaErrorCode;

#[derive(Model, Debug, Clone, PartialEq)]
#[flowodm(
    topic = "security-tests",
    key = "id",
    namespace = "dev.flowodm.security"
)]
struct Secret {
    id: String,
    n: i32,
}

/// A client configured the way a service is: from environment variables.
fn kafka_from(vars: &[(&str, String)]) -> KafkaConfig {
    let vars: HashMap<&str, String> = vars.iter().cloned().collect();
    KafkaConfig::from_lookup(|k| vars.get(k).cloned()).unwrap()
}

fn client_from(vars: &[(&str, String)]) -> Client {
    client_with(kafka_from(vars))
}

fn client_with(kafka: KafkaConfig) -> Client {
    Client::new(kafka, SchemaRegistryClient::new(&registry_url()).unwrap())
}

fn sasl(mechanism: &str, password: String) -> Client {
    client_from(&[
        (
            "KAFKA_BOOTSTRAP_SERVERS",
            env("KAFKA_SASL_BOOTSTRAP_SERVERS"),
        ),
        ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL".into()),
        ("KAFKA_SASL_MECHANISM", mechanism.into()),
        ("KAFKA_SASL_USERNAME", env("KAFKA_SASL_USERNAME")),
        ("KAFKA_SASL_PASSWORD", password),
        ("KAFKA_SSL_CA_LOCATION", env("KAFKA_SSL_CA_LOCATION")),
    ])
}

async fn round_trip(client: Client) {
    let topic = new_topic("security", 1).await;
    let producer = client.producer::<Secret>().topic(&topic).build().unwrap();
    let values: Vec<Secret> = (0..5)
        .map(|n| Secret {
            id: format!("s{n}"),
            n,
        })
        .collect();
    for r in producer.send_many(&values).await {
        r.unwrap();
    }
    let consumer = client
        .consumer::<Secret>()
        .topics([&topic])
        .group(unique_name("security-g"))
        .build()
        .unwrap();
    for expected in &values {
        let r = consumer
            .consume_one(Duration::from_secs(30))
            .await
            .unwrap()
            .record()
            .unwrap();
        assert_eq!(&r.value, expected);
        consumer.commit(&r).unwrap();
    }
}

#[tokio::test]
async fn scram_sha_512_round_trip() {
    round_trip(sasl("SCRAM-SHA-512", env("KAFKA_SASL_PASSWORD"))).await;
}

#[tokio::test]
async fn scram_sha_256_and_plain_deliver() {
    for mechanism in ["SCRAM-SHA-256", "PLAIN"] {
        let topic = new_topic("security-mech", 1).await;
        let producer = sasl(mechanism, env("KAFKA_SASL_PASSWORD"))
            .producer::<Secret>()
            .topic(&topic)
            .build()
            .unwrap();
        let d = producer
            .send(&Secret {
                id: "x".into(),
                n: 1,
            })
            .await
            .unwrap();
        assert_eq!(d.offset, 0, "{mechanism}");
    }
}

#[tokio::test]
async fn mutual_tls_round_trip() {
    round_trip(client_from(&[
        (
            "KAFKA_BOOTSTRAP_SERVERS",
            env("KAFKA_SSL_BOOTSTRAP_SERVERS"),
        ),
        ("KAFKA_SECURITY_PROTOCOL", "SSL".into()),
        ("KAFKA_SSL_CA_LOCATION", env("KAFKA_SSL_CA_LOCATION")),
        (
            "KAFKA_SSL_CERTIFICATE_LOCATION",
            env("KAFKA_SSL_CERTIFICATE_LOCATION"),
        ),
        ("KAFKA_SSL_KEY_LOCATION", env("KAFKA_SSL_KEY_LOCATION")),
    ]))
    .await;
}

fn is_auth(e: &Error) -> bool {
    matches!(e, Error::Kafka(k) if k.rdkafka_error_code() == Some(RDKafkaErrorCode::Authentication))
}

#[tokio::test]
async fn a_wrong_password_fails_sends_fast() {
    let topic = new_topic("security-wrong", 1).await;
    let producer = sasl("SCRAM-SHA-512", "not-the-password".into())
        .producer::<Secret>()
        .topic(&topic)
        .build()
        .unwrap();
    let started = Instant::now();
    let err = producer
        .send(&Secret {
            id: "x".into(),
            n: 1,
        })
        .await
        .unwrap_err();
    assert!(is_auth(&err), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    // Later sends fail at once.
    let err = producer
        .send(&Secret {
            id: "y".into(),
            n: 2,
        })
        .await
        .unwrap_err();
    assert!(is_auth(&err), "{err:?}");
}

#[tokio::test]
async fn a_wrong_password_fails_polls_fast() {
    let consumer = sasl("SCRAM-SHA-512", "not-the-password".into())
        .consumer::<Secret>()
        .topics([unique_name("security-nothing")])
        .group(unique_name("security-g"))
        .build()
        .unwrap();
    let started = Instant::now();
    let mut result = consumer.consume_one(Duration::from_secs(2)).await;
    while matches!(result, Ok(Consumed::Timeout)) && started.elapsed() < Duration::from_secs(15) {
        result = consumer.consume_one(Duration::from_secs(2)).await;
    }
    let err = result.unwrap_err();
    assert!(is_auth(&err), "{err:?}");
}

#[test]
fn credentials_never_show_in_debug_output() {
    let client = sasl("SCRAM-SHA-512", "hunter2-secret".into());
    let shown = format!("{client:?} {:?}", client.kafka());
    assert!(!shown.contains("hunter2-secret"), "{shown}");
}

#[tokio::test]
async fn oauthbearer_round_trip() {
    // The stack's broker validates OAUTHBEARER with Kafka's default handler, which accepts the
    // unsecured JWTs librdkafka can make for tests; production uses
    // KAFKA_SASL_OAUTHBEARER_METHOD=oidc with a token endpoint instead.
    round_trip(client_with(
        kafka_from(&[
            (
                "KAFKA_BOOTSTRAP_SERVERS",
                env("KAFKA_SASL_BOOTSTRAP_SERVERS"),
            ),
            ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL".into()),
            ("KAFKA_SASL_MECHANISM", "OAUTHBEARER".into()),
            (
                "KAFKA_SASL_OAUTHBEARER_CONFIG",
                "principal=flowodm scope=test".into(),
            ),
            ("KAFKA_SSL_CA_LOCATION", env("KAFKA_SSL_CA_LOCATION")),
        ])
        .with_passthrough([(
            "FLOWODM_KAFKA__ENABLE_SASL_OAUTHBEARER_UNSECURE_JWT".to_string(),
            "true".to_string(),
        )]),
    ))
    .await;
}

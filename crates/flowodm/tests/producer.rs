//! The typed producer against the stack: every way of sending, records with explicit metadata,
//! tombstones, Java-compatible partitioning, and errors.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Duration;

use flowodm::codec::Codec;
use flowodm::producer::{Delivery, OutRecord};
use flowodm::profiles::Profile;
use flowodm::registry::SchemaRegistryClient;
use flowodm::{Client, Error, KafkaConfig, Model};
use flowodm_test::{bootstrap_servers, new_topic, plaintext_config, registry_url, unique_name};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};

#[derive(Model, Debug, Clone, PartialEq)]
#[flowodm(
    topic = "producer-tests",
    key = "id",
    namespace = "dev.flowodm.producer"
)]
struct Ping {
    id: String,
    n: i64,
}

fn client() -> Client {
    Client::new(
        KafkaConfig::new(bootstrap_servers()),
        SchemaRegistryClient::new(&registry_url()).unwrap(),
    )
}

fn ping(i: i64) -> Ping {
    Ping {
        id: format!("key-{}", i % 4),
        n: i,
    }
}

/// Reads `n` messages of `topic` from the beginning and hands each to `check`.
async fn read(topic: &str, n: usize, mut check: impl FnMut(&BorrowedMessage<'_>)) {
    let consumer: StreamConsumer = plaintext_config()
        .set("group.id", unique_name("producer-reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    for _ in 0..n {
        let msg = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("a message within a minute")
            .unwrap();
        check(&msg);
    }
}

#[tokio::test]
async fn send_resolves_with_where_the_message_is() {
    let topic = new_topic("producer-send", 1).await;
    let producer = client().producer::<Ping>().topic(&topic).build().unwrap();
    let before = chrono_now_ms();
    let d: Delivery = producer.send(&ping(1)).await.unwrap();
    assert_eq!((&*d.topic, d.partition, d.offset), (topic.as_str(), 0, 0));
    let ts = d.timestamp.expect("a timestamp");
    assert!(ts >= before - 1000 && ts <= chrono_now_ms() + 1000, "{ts}");
    let d2 = producer.send(&ping(2)).await.unwrap();
    assert_eq!(d2.offset, 1);

    let codec = Codec::<Ping>::new(SchemaRegistryClient::new(&registry_url()).unwrap()).unwrap();
    let mut got = Vec::new();
    read(&topic, 2, |m| {
        got.push((m.key().map(<[u8]>::to_vec), m.payload().unwrap().to_vec()))
    })
    .await;
    assert_eq!(
        got[0].0.as_deref(),
        Some(&b"key-1"[..]),
        "keyed by the model's key field"
    );
    assert_eq!(codec.decode(&got[0].1).await.unwrap(), ping(1));
    assert_eq!(codec.decode(&got[1].1).await.unwrap(), ping(2));
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn send_blocking_works_without_an_async_runtime() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let topic = rt.block_on(new_topic("producer-blocking", 1));
    let producer = client().producer::<Ping>().topic(&topic).build().unwrap();
    for i in 0..3 {
        let d = producer
            .send_blocking(&ping(i), Duration::from_secs(30))
            .unwrap();
        assert_eq!(d.offset, i);
    }
}

#[tokio::test]
async fn callbacks_report_every_delivery() {
    let topic = new_topic("producer-callback", 2).await;
    let producer = client().producer::<Ping>().topic(&topic).build().unwrap();
    let (tx, rx) = mpsc::channel();
    for i in 0..20 {
        let tx = tx.clone();
        producer
            .send_with_callback(&ping(i), move |result| tx.send((i, result)).unwrap())
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let mut results: Vec<(i64, Result<Delivery, Error>)> = rx.try_iter().collect();
    results.sort_by_key(|(i, _)| *i);
    assert_eq!(results.len(), 20);
    assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
    assert_eq!(producer.in_flight(), 0);
}

#[tokio::test]
async fn send_and_forget_counts_every_delivery_and_flush_waits_for_them() {
    let topic = new_topic("producer-forget", 3).await;
    let producer = client().producer::<Ping>().topic(&topic).build().unwrap();
    for i in 0..200 {
        producer.send_and_forget(&ping(i)).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(producer.in_flight(), 0);
    let counts = producer.delivery_counts();
    assert_eq!((counts.delivered, counts.failed), (200, 0));
    let codec = Codec::<Ping>::new(SchemaRegistryClient::new(&registry_url()).unwrap()).unwrap();
    let mut got = Vec::new();
    read(&topic, 200, |m| {
        got.push((m.key().map(<[u8]>::to_vec), m.payload().unwrap().to_vec()))
    })
    .await;
    let mut seen = Vec::new();
    for (key, payload) in got {
        let value = codec.decode(&payload).await.unwrap();
        assert_eq!(key.as_deref(), Some(value.id.as_bytes()));
        seen.push(value.n);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..200).collect::<Vec<_>>());
}

#[tokio::test]
async fn send_and_forget_failures_are_reported_by_the_next_flush() {
    let producer = client()
        .producer::<Ping>()
        .topic(unique_name("no-such-topic"))
        .set("message.timeout.ms", "2000")
        .build()
        .unwrap();
    for i in 0..5 {
        producer.send_and_forget(&ping(i)).unwrap();
    }
    let err = producer.flush(Duration::from_secs(30)).unwrap_err();
    match &err {
        Error::Undelivered { count, first } => {
            assert_eq!(*count, 5);
            assert!(matches!(**first, Error::Kafka(_)), "{first:?}");
        }
        other => panic!("expected Undelivered, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("5 message(s) sent with send_and_forget were not delivered"),
        "{err}"
    );
    let counts = producer.delivery_counts();
    assert_eq!((counts.delivered, counts.failed), (0, 5));
    // Reported once: the next flush has nothing to tell.
    producer.flush(Duration::from_secs(5)).unwrap();
}

#[tokio::test]
async fn send_many_gives_one_result_per_message_in_order() {
    let topic = new_topic("producer-many", 3).await;
    let producer = client().producer::<Ping>().topic(&topic).build().unwrap();
    let values: Vec<Ping> = (0..50).map(ping).collect();
    let results = producer.send_many(&values).await;
    assert_eq!(results.len(), 50);
    // Per key, offsets grow in the order of sending.
    let mut last: HashMap<String, (i32, i64)> = HashMap::new();
    for (v, r) in values.iter().zip(&results) {
        let d = r.as_ref().unwrap();
        if let Some((p, o)) = last.insert(v.id.clone(), (d.partition, d.offset)) {
            assert_eq!(p, d.partition, "one key, one partition");
            assert!(d.offset > o, "order kept for {}", v.id);
        }
    }
}

#[tokio::test]
async fn records_carry_explicit_key_partition_timestamp_and_headers() {
    let topic = new_topic("producer-record", 3).await;
    let producer = client().producer::<Ping>().topic(&topic).build().unwrap();
    let value = ping(7);
    let d = producer
        .send_record(
            OutRecord::new(&value)
                .key("explicit")
                .partition(2)
                .timestamp(1_700_000_000_123)
                .header("correlation-id", "abc-123")
                .header("correlation-id", "second"),
        )
        .await
        .unwrap();
    assert_eq!(d.partition, 2);
    read(&topic, 1, |m| {
        assert_eq!(m.key(), Some(&b"explicit"[..]));
        assert_eq!(m.partition(), 2);
        assert_eq!(m.timestamp().to_millis(), Some(1_700_000_000_123));
        let headers = m.headers().unwrap();
        let all: Vec<(&str, Option<&[u8]>)> = headers.iter().map(|h| (h.key, h.value)).collect();
        assert_eq!(
            all,
            [
                ("correlation-id", Some(&b"abc-123"[..])),
                ("correlation-id", Some(&b"second"[..]))
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn tombstones_have_a_key_and_no_value() {
    let topic = new_topic("producer-tombstone", 1).await;
    let producer = client().producer::<Ping>().topic(&topic).build().unwrap();
    producer
        .send_record(OutRecord::<Ping>::tombstone("key-1"))
        .await
        .unwrap();
    read(&topic, 1, |m| {
        assert_eq!(m.key(), Some(&b"key-1"[..]));
        assert!(m.payload().is_none(), "a tombstone has a null value");
    })
    .await;
}

/// Java's `Utils.murmur2`, as the Java client's default partitioner uses it.
fn java_murmur2(data: &[u8]) -> i32 {
    let seed: u32 = 0x9747_b28c;
    let m: u32 = 0x5bd1_e995;
    let r = 24;
    let len = data.len();
    let mut h: u32 = seed ^ (len as u32);
    let chunks = len / 4;
    for i in 0..chunks {
        let mut k = u32::from_le_bytes([
            data[4 * i],
            data[4 * i + 1],
            data[4 * i + 2],
            data[4 * i + 3],
        ]);
        k = k.wrapping_mul(m);
        k ^= k >> r;
        k = k.wrapping_mul(m);
        h = h.wrapping_mul(m);
        h ^= k;
    }
    let tail = &data[chunks * 4..];
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(m);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(m);
    h ^= h >> 15;
    h as i32
}

#[tokio::test]
async fn murmur2_puts_keys_where_java_clients_do() {
    let partitions = 6;
    let topic = new_topic("producer-murmur2", partitions).await;
    let producer = client()
        .producer::<Ping>()
        .topic(&topic)
        .murmur2_partitioner()
        .build()
        .unwrap();
    for i in 0..40 {
        let p = Ping {
            id: format!("CUST-{i:05}"),
            n: i,
        };
        let d = producer.send(&p).await.unwrap();
        let java = (java_murmur2(p.id.as_bytes()) & 0x7fff_ffff) % partitions;
        assert_eq!(d.partition, java, "key {}", p.id);
    }
}

#[tokio::test]
async fn a_missing_topic_is_an_error_not_a_hang() {
    let producer = client()
        .producer::<Ping>()
        .topic(unique_name("no-such-topic"))
        .set("message.timeout.ms", "3000")
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let err = producer.send(&ping(1)).await.unwrap_err();
    assert!(matches!(err, Error::Kafka(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn invalid_properties_are_configuration_errors_naming_the_key() {
    let err = client()
        .producer::<Ping>()
        .set("acks", "sometimes")
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Configuration { key, .. } if key == "acks"),
        "{err:?}"
    );
}

#[test]
fn profiles_set_producer_properties_and_overrides_win() {
    let b = client().producer::<Ping>().profile(Profile::HighThroughput);
    let c = b.client_config();
    assert_eq!(c.get("acks"), Some("1"));
    assert_eq!(c.get("compression.type"), Some("lz4"));
    let c = client().producer::<Ping>().client_config();
    assert_eq!(c.get("acks"), Some("all"));
    assert_eq!(c.get("enable.idempotence"), Some("true"));
    let c = client()
        .producer::<Ping>()
        .profile(Profile::Reliable)
        .set("retries", "3")
        .client_config();
    assert_eq!(c.get("retries"), Some("3"));
    assert_eq!(c.get("max.in.flight.requests.per.connection"), Some("1"));
}

fn assert_unreachable(err: &Error) {
    assert!(matches!(err, Error::BrokersUnreachable { .. }), "{err:?}");
    assert!(err.is_retriable(), "{err:?}");
    assert_eq!(err.kind(), flowodm::ErrorKind::Connection);
}

#[tokio::test]
async fn an_unreachable_cluster_fails_sends_fast_with_a_retriable_connection_error() {
    // Nothing listens on port 1; the registry is the stack's.
    let client = Client::new(
        KafkaConfig::new("127.0.0.1:1"),
        SchemaRegistryClient::new(&registry_url()).unwrap(),
    );
    let producer = client
        .producer::<Ping>()
        .topic(unique_name("unreachable"))
        .unreachable_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let err = producer.send(&ping(1)).await.unwrap_err();
    assert_unreachable(&err);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    eprintln!("producer: unreachable after {:?}: {err}", started.elapsed());
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    // The message is purged from the queue; its (failed) delivery report may still be on its way
    // to the delivery thread, which librdkafka counts as in flight until it is served.
    let withdrawn_by = std::time::Instant::now() + Duration::from_secs(5);
    while producer.in_flight() > 0 && std::time::Instant::now() < withdrawn_by {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(producer.in_flight(), 0, "the message was withdrawn");

    // Blocking sends, and a fire-and-forget send whose outage a flush notices.
    let p = producer.clone();
    let (blocking, flushed, callback) = tokio::task::spawn_blocking(move || {
        let blocking = p.send_blocking(&ping(2), Duration::from_secs(60));
        let (tx, rx) = mpsc::channel();
        p.send_with_callback(&ping(3), move |r| tx.send(r).unwrap())
            .unwrap();
        let flushed = p.flush(Duration::from_secs(60));
        let callback = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        (blocking, flushed, callback)
    })
    .await
    .unwrap();
    assert_unreachable(&blocking.unwrap_err());
    assert_unreachable(&flushed.unwrap_err());
    assert_unreachable(&callback.unwrap_err());
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn deliveries_time_out_after_30_s_unless_configured() {
    let c = client().producer::<Ping>().client_config();
    assert_eq!(c.get("message.timeout.ms"), Some("30000"));
    assert_eq!(
        flowodm::producer::DEFAULT_DELIVERY_TIMEOUT,
        Duration::from_secs(30)
    );
    for profile in Profile::ALL {
        let c = client().producer::<Ping>().profile(profile).client_config();
        assert_eq!(c.get("message.timeout.ms"), Some("30000"), "{profile}");
    }
    // Either name of the setting wins, and only one is set.
    let c = client()
        .producer::<Ping>()
        .set("delivery.timeout.ms", "120000")
        .client_config();
    assert_eq!(
        (c.get("delivery.timeout.ms"), c.get("message.timeout.ms")),
        (Some("120000"), None)
    );
    let c = client()
        .producer::<Ping>()
        .set("message.timeout.ms", "5000")
        .client_config();
    assert_eq!(c.get("message.timeout.ms"), Some("5000"));
}

//! The typed consumers against the stack: what one poll tells apart, poison messages, commits
//! and restarts, auto commit, assignment and seeking, patterns, rebalance callbacks, and an async
//! wait that never blocks the runtime.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowodm::consumer::{Consumed, TopicPartition};
use flowodm::producer::OutRecord;
use flowodm::profiles::Profile;
use flowodm::registry::SchemaRegistryClient;
use flowodm::{Client, Error, KafkaConfig, Model};
use flowodm_test::{bootstrap_servers, new_topic, plaintext_config, registry_url, unique_name};
use futures_util::StreamExt;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Offset;

#[derive(Model, Debug, Clone, PartialEq)]
#[flowodm(
    topic = "consumer-tests",
    key = "id",
    namespace = "dev.flowodm.consumer"
)]
struct Event {
    id: String,
    seq: i64,
}

fn client() -> Client {
    Client::new(
        KafkaConfig::new(bootstrap_servers()),
        SchemaRegistryClient::new(&registry_url()).unwrap(),
    )
}

fn event(seq: i64) -> Event {
    Event {
        id: format!("k{}", seq % 3),
        seq,
    }
}

async fn produce(topic: &str, range: std::ops::Range<i64>) {
    let producer = client().producer::<Event>().topic(topic).build().unwrap();
    let values: Vec<Event> = range.map(event).collect();
    for r in producer.send_many(&values).await {
        r.unwrap();
    }
}

async fn raw(topic: &str, payload: &[u8]) {
    let p: FutureProducer = plaintext_config().create().unwrap();
    p.send(
        FutureRecord::<[u8], [u8]>::to(topic).payload(payload),
        Duration::from_secs(30),
    )
    .await
    .map_err(|(e, _)| e)
    .unwrap();
}

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn skip_headers_leaves_them_out_of_records_but_not_out_of_poison_messages() {
    let topic = new_topic("consumer-skip-headers", 1).await;
    let producer = client().producer::<Event>().topic(&topic).build().unwrap();
    let value = event(1);
    producer
        .send_record(OutRecord::new(&value).header("trace", "t-1"))
        .await
        .unwrap();
    let p: FutureProducer = plaintext_config().create().unwrap();
    let headers = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
        key: "trace",
        value: Some("t-2"),
    });
    p.send(
        FutureRecord::<[u8], [u8]>::to(&topic)
            .payload(&b"not avro"[..])
            .headers(headers),
        WAIT,
    )
    .await
    .map_err(|(e, _)| e)
    .unwrap();

    let consumer = client()
        .consumer::<Event>()
        .topics([&topic])
        .group(unique_name("g"))
        .skip_headers()
        .build_blocking()
        .unwrap();
    let Consumed::Record(r) = consumer.consume_one(WAIT).unwrap() else {
        panic!("expected a record")
    };
    assert_eq!((r.value, r.headers.len()), (value, 0));
    match consumer.consume_one(WAIT) {
        Err(Error::Decode { raw, .. }) => {
            assert_eq!(raw.headers, [("trace".to_string(), Some(b"t-2".to_vec()))]);
            assert_eq!(raw.payload.as_deref(), Some(&b"not avro"[..]));
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[tokio::test]
async fn one_poll_tells_record_tombstone_and_timeout_apart() {
    let topic = new_topic("consumer-kinds", 1).await;
    let producer = client().producer::<Event>().topic(&topic).build().unwrap();
    let value = event(1);
    producer
        .send_record(
            OutRecord::new(&value)
                .header("trace", "t-1")
                .timestamp(1_700_000_000_000),
        )
        .await
        .unwrap();
    producer
        .send_record(OutRecord::<Event>::tombstone("k1"))
        .await
        .unwrap();

    let consumer = client()
        .consumer::<Event>()
        .topics([&topic])
        .group(unique_name("g"))
        .build()
        .unwrap();
    let Consumed::Record(r) = consumer.consume_one(WAIT).await.unwrap() else {
        panic!("expected a record")
    };
    assert_eq!(r.value, value);
    assert_eq!(r.key.as_deref(), Some(&b"k1"[..]));
    assert_eq!(r.headers, [("trace".to_string(), Some(b"t-1".to_vec()))]);
    assert_eq!(
        (r.topic.as_str(), r.partition, r.offset),
        (topic.as_str(), 0, 0)
    );
    assert_eq!(r.timestamp, Some(1_700_000_000_000));
    assert_eq!(r.schema_id, consumer.codec().schema_id().await.unwrap());
    let Consumed::Tombstone(t) = consumer.consume_one(WAIT).await.unwrap() else {
        panic!("expected a tombstone")
    };
    assert_eq!((t.key.as_deref(), t.offset), (Some(&b"k1"[..]), 1));
    assert_eq!(
        consumer
            .consume_one(Duration::from_millis(500))
            .await
            .unwrap(),
        Consumed::Timeout
    );
}

#[tokio::test]
async fn poison_messages_are_errors_with_their_bytes_and_the_next_one_still_comes() {
    let topic = new_topic("consumer-poison", 1).await;
    raw(&topic, b"not framed at all").await;
    raw(&topic, &[0, 0x7f, 0, 0, 1, 2, 3]).await; // an id the registry never gave
    produce(&topic, 0..1).await;
    let consumer = client()
        .consumer::<Event>()
        .topics([&topic])
        .group(unique_name("g"))
        .build()
        .unwrap();

    let err = consumer.consume_one(WAIT).await.unwrap_err();
    let Error::Decode { raw, source } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(raw.payload.as_deref(), Some(&b"not framed at all"[..]));
    assert_eq!((raw.partition, raw.offset), (0, 0));
    assert!(matches!(**source, Error::Framing { .. }), "{source:?}");
    assert!(!err.is_retriable());

    let err = consumer.consume_one(WAIT).await.unwrap_err();
    let Error::Decode { raw, source } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(raw.offset, 1);
    assert!(
        matches!(**source, Error::UnknownSchema { id: 0x7f00_0001 }),
        "{source:?}"
    );

    let ok = consumer.consume_one(WAIT).await.unwrap().record().unwrap();
    assert_eq!((ok.offset, ok.value.seq), (2, 0));
}

#[tokio::test]
async fn a_restarted_consumer_resumes_at_the_committed_offset() {
    let topic = new_topic("consumer-restart", 1).await;
    produce(&topic, 0..10).await;
    let group = unique_name("g");
    {
        let consumer = client()
            .consumer::<Event>()
            .topics([&topic])
            .group(&group)
            .build()
            .unwrap();
        for expected in 0..4 {
            let r = consumer.consume_one(WAIT).await.unwrap().record().unwrap();
            assert_eq!(r.value.seq, expected);
            if expected == 2 {
                consumer.commit(&r).unwrap(); // 0..=2 processed; 3 read but not committed
            }
        }
    }
    let consumer = client()
        .consumer::<Event>()
        .topics([&topic])
        .group(&group)
        .build()
        .unwrap();
    let r = consumer.consume_one(WAIT).await.unwrap().record().unwrap();
    assert_eq!(
        r.value.seq, 3,
        "resumes after the last commit, re-reading what was not committed"
    );
    consumer.store(&r).unwrap();
    consumer.commit_stored().unwrap();
    let committed = consumer.committed(Duration::from_secs(10)).unwrap();
    assert_eq!(
        committed,
        [(
            TopicPartition {
                topic: topic.clone(),
                partition: 0
            },
            Some(4)
        )]
    );
}

#[tokio::test]
async fn with_auto_commit_a_record_counts_as_processed_when_the_next_is_asked_for() {
    let topic = new_topic("consumer-auto", 1).await;
    produce(&topic, 0..5).await;
    let group = unique_name("g");
    {
        let consumer = client()
            .consumer::<Event>()
            .topics([&topic])
            .group(&group)
            .profile(Profile::HighThroughput)
            .set("auto.offset.reset", "earliest")
            .set("auto.commit.interval.ms", "100")
            .build()
            .unwrap();
        for _ in 0..3 {
            consumer.consume_one(WAIT).await.unwrap().record().unwrap();
        }
        // Asking again marks seq 2 processed; then let the auto commit run.
        let _ = consumer
            .consume_one(Duration::from_millis(10))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        consumer.commit_stored().unwrap();
    }
    let consumer = client()
        .consumer::<Event>()
        .topics([&topic])
        .group(&group)
        .build()
        .unwrap();
    let r = consumer.consume_one(WAIT).await.unwrap().record().unwrap();
    assert!(
        r.value.seq >= 3,
        "records already handed out and followed by another poll are committed: {}",
        r.value.seq
    );
}

#[tokio::test]
async fn waiting_never_blocks_the_runtime() {
    let topic = new_topic("consumer-idle", 1).await;
    let consumer = client()
        .consumer::<Event>()
        .topics([&topic])
        .group(unique_name("g"))
        .build()
        .unwrap();
    let ticks = Arc::new(AtomicUsize::new(0));
    let t = ticks.clone();
    let ticker = tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(100));
        loop {
            interval.tick().await;
            t.fetch_add(1, Ordering::Relaxed);
        }
    });
    // On a current-thread runtime a blocking wait would starve the ticker completely.
    assert_eq!(
        consumer.consume_one(Duration::from_secs(3)).await.unwrap(),
        Consumed::Timeout
    );
    ticker.abort();
    let n = ticks.load(Ordering::Relaxed);
    assert!(n >= 25, "the ticker ticked {n} times in 3 s");
}

#[tokio::test]
async fn assign_seek_pause_and_resume() {
    let topic = new_topic("consumer-assign", 2).await;
    let producer = client().producer::<Event>().topic(&topic).build().unwrap();
    for seq in 0..6 {
        let e = event(seq);
        producer
            .send_record(OutRecord::new(&e).partition(0))
            .await
            .unwrap();
    }
    let consumer = client()
        .consumer::<Event>()
        .group(unique_name("g"))
        .manual_assignment()
        .build()
        .unwrap();
    let p0 = TopicPartition {
        topic: topic.clone(),
        partition: 0,
    };
    consumer.assign(&[(p0.clone(), Offset::Offset(1))]).unwrap();
    let r = consumer.consume_one(WAIT).await.unwrap().record().unwrap();
    assert_eq!((r.partition, r.offset), (0, 1));
    consumer
        .seek(&p0, Offset::Beginning, Duration::from_secs(10))
        .unwrap();
    let r = consumer.consume_one(WAIT).await.unwrap().record().unwrap();
    assert_eq!(r.offset, 0);

    consumer.pause(std::slice::from_ref(&p0)).unwrap();
    assert_eq!(
        consumer.consume_one(Duration::from_secs(1)).await.unwrap(),
        Consumed::Timeout
    );
    consumer.resume(std::slice::from_ref(&p0)).unwrap();
    let r = consumer.consume_one(WAIT).await.unwrap().record().unwrap();
    assert_eq!(r.offset, 1);
    assert_eq!(consumer.assignment().unwrap(), [p0]);
}

#[tokio::test]
async fn pattern_subscriptions_and_streams() {
    let prefix = unique_name("consumer-pattern");
    let a = format!("{prefix}-a");
    let b = format!("{prefix}-b");
    flowodm_test::create_topic(&a, 1).await;
    flowodm_test::create_topic(&b, 1).await;
    produce(&a, 0..3).await;
    produce(&b, 3..6).await;
    let consumer = client()
        .consumer::<Event>()
        .pattern(format!("{prefix}-.*"))
        .group(unique_name("g"))
        .build()
        .unwrap();
    let got: Vec<i64> = consumer
        .stream()
        .take(6)
        .map(|c| c.unwrap().record().unwrap().value.seq)
        .collect()
        .await;
    assert_eq!(
        got.iter().copied().collect::<BTreeSet<_>>(),
        (0..6).collect()
    );
}

/// Which member got which partitions, in order.
type Assignments = Vec<(usize, Vec<TopicPartition>)>;

#[tokio::test]
async fn two_members_split_the_partitions_and_callbacks_report_it() {
    let topic = new_topic("consumer-group", 4).await;
    produce(&topic, 0..40).await;
    let group = unique_name("g");
    let assigned: Arc<Mutex<Assignments>> = Arc::default();
    let revoked = Arc::new(AtomicUsize::new(0));
    let member = |n: usize| {
        let assigned = assigned.clone();
        let revoked = revoked.clone();
        // A member learns of a rebalance at its next heartbeat: keep them short here (the
        // default LongRunning profile heartbeats every 60 s).
        client()
            .consumer::<Event>()
            .topics([&topic])
            .group(&group)
            .set("heartbeat.interval.ms", "500")
            .set("session.timeout.ms", "10000")
            .on_assign(move |p| assigned.lock().unwrap().push((n, p.to_vec())))
            .on_revoke(move |_| {
                revoked.fetch_add(1, Ordering::Relaxed);
            })
            .build()
            .unwrap()
    };
    let first = member(1);
    let r = first.consume_one(WAIT).await.unwrap().record().unwrap();
    first.commit(&r).unwrap();
    assert_eq!(
        first.assignment().unwrap().len(),
        4,
        "alone, it has every partition"
    );

    let second = member(2);
    // Both poll until the group settles with each member holding two partitions.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let _ = first.consume_one(Duration::from_millis(200)).await;
        let _ = second.consume_one(Duration::from_millis(200)).await;
        let (a, b) = (first.assignment().unwrap(), second.assignment().unwrap());
        if a.len() == 2 && b.len() == 2 {
            let all: BTreeSet<_> = a.iter().chain(&b).cloned().collect();
            assert_eq!(all.len(), 4, "disjoint and complete");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no rebalance: {a:?} {b:?}"
        );
    }
    assert!(
        revoked.load(Ordering::Relaxed) >= 1,
        "the first member gave partitions up"
    );
    assert!(assigned.lock().unwrap().iter().any(|(n, _)| *n == 2));
}

#[test]
fn the_blocking_consumer_iterates_and_batches() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let topic = rt.block_on(new_topic("consumer-blocking", 1));
    rt.block_on(produce(&topic, 0..7));
    let consumer = client()
        .consumer::<Event>()
        .topics([&topic])
        .group(unique_name("g"))
        .build_blocking()
        .unwrap();
    let first: Vec<i64> = consumer
        .iter(WAIT)
        .take(3)
        .map(|c| c.unwrap().record().unwrap().value.seq)
        .collect();
    assert_eq!(first, [0, 1, 2]);
    let batch = consumer
        .consume_batch(Some(10), Duration::from_secs(5))
        .unwrap();
    let rest: Vec<i64> = batch
        .into_iter()
        .map(|c| c.record().unwrap().value.seq)
        .collect();
    assert_eq!(rest, [3, 4, 5, 6]);
}

#[test]
fn a_group_is_required() {
    #[derive(Model)]
    #[flowodm(topic = "no-group")]
    struct NoGroup {
        v: i32,
    }
    let err = client().consumer::<NoGroup>().build().unwrap_err();
    assert!(
        matches!(&err, Error::Configuration { key, .. } if key == "group.id"),
        "{err:?}"
    );
}

mod dispatch {
    use super::*;
    use flowodm::codec::CodecConfig;
    use flowodm::registry::SubjectNameStrategy;

    #[derive(Model, Debug, Clone, PartialEq)]
    #[flowodm(
        topic = "dispatch",
        key = "order_id",
        namespace = "dev.flowodm.dispatch"
    )]
    pub struct OrderCreated {
        pub order_id: String,
        pub total: f64,
    }

    #[derive(Model, Debug, Clone, PartialEq)]
    #[flowodm(
        topic = "dispatch",
        key = "order_id",
        namespace = "dev.flowodm.dispatch"
    )]
    pub struct OrderPaid {
        pub order_id: String,
        pub method: String,
    }

    /// Both record types of the topic; each message becomes the variant of its record.
    #[derive(Model, Debug, Clone, PartialEq)]
    #[flowodm(topic = "dispatch", namespace = "dev.flowodm.dispatch")]
    pub enum OrderEvents {
        Created(OrderCreated),
        Paid(OrderPaid),
    }

    #[tokio::test]
    async fn several_models_on_one_topic_dispatch_by_record_name() {
        let topic = new_topic("consumer-dispatch", 1).await;
        // Each type under its own subject, as Confluent's TopicRecordNameStrategy does.
        let per_record =
            CodecConfig::default().subject_strategy(SubjectNameStrategy::TopicRecordName);
        let created = client()
            .producer::<OrderCreated>()
            .topic(&topic)
            .codec(per_record.clone())
            .build()
            .unwrap();
        let paid = client()
            .producer::<OrderPaid>()
            .topic(&topic)
            .codec(per_record)
            .build()
            .unwrap();
        created
            .send(&OrderCreated {
                order_id: "o1".into(),
                total: 9.5,
            })
            .await
            .unwrap();
        paid.send(&OrderPaid {
            order_id: "o1".into(),
            method: "card".into(),
        })
        .await
        .unwrap();
        created
            .send(&OrderCreated {
                order_id: "o2".into(),
                total: 3.0,
            })
            .await
            .unwrap();

        let consumer = client()
            .consumer::<OrderEvents>()
            .topics([&topic])
            .group(unique_name("g"))
            .build()
            .unwrap();
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(
                consumer
                    .consume_one(WAIT)
                    .await
                    .unwrap()
                    .record()
                    .unwrap()
                    .value,
            );
        }
        assert_eq!(
            got,
            [
                OrderEvents::Created(OrderCreated {
                    order_id: "o1".into(),
                    total: 9.5
                }),
                OrderEvents::Paid(OrderPaid {
                    order_id: "o1".into(),
                    method: "card".into()
                }),
                OrderEvents::Created(OrderCreated {
                    order_id: "o2".into(),
                    total: 3.0
                }),
            ]
        );
    }
}

#[tokio::test]
async fn members_joining_mid_stream_lose_nothing_and_process_nothing_twice() {
    let topic = new_topic("consumer-join", 3).await;
    let total = 90;
    produce(&topic, 0..total).await;
    let group = unique_name("g");
    let processed: Arc<Mutex<Vec<i64>>> = Arc::default();
    let workers: Arc<Mutex<BTreeSet<u64>>> = Arc::default();
    let member = |delay_ms: u64| {
        let workers = workers.clone();
        let topic = topic.clone();
        let group = group.clone();
        let processed = processed.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            let consumer = client()
                .consumer::<Event>()
                .topics([&topic])
                .group(&group)
                .set("heartbeat.interval.ms", "500")
                .set("session.timeout.ms", "10000")
                .build()
                .unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(90);
            while processed.lock().unwrap().len() < total as usize
                && std::time::Instant::now() < deadline
            {
                if let Consumed::Record(r) = consumer
                    .consume_one(Duration::from_millis(200))
                    .await
                    .unwrap()
                {
                    // Process, then commit: at-least-once, and with a commit per record and
                    // stored offsets committed before a revocation, exactly once here.
                    processed.lock().unwrap().push(r.value.seq);
                    workers.lock().unwrap().insert(delay_ms);
                    consumer.commit(&r).unwrap();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    };
    tokio::join!(member(0), member(400), member(800));
    let mut seen = processed.lock().unwrap().clone();
    let count = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(count, seen.len(), "a message was processed twice");
    assert_eq!(seen, (0..total).collect::<Vec<_>>(), "a message was lost");
    assert!(
        workers.lock().unwrap().len() >= 2,
        "the joining members took partitions over"
    );
}

#[derive(flowodm::Avro, Debug, Clone, PartialEq)]
#[flowodm(namespace = "dev.flowodm.consumer")]
struct CustomerKey {
    region: String,
    customer: i64,
}

#[tokio::test]
async fn avro_keys_have_their_own_subject() {
    let topic = new_topic("consumer-avro-key", 1).await;
    let producer = client().producer::<Event>().topic(&topic).build().unwrap();
    let key = CustomerKey {
        region: "eu".into(),
        customer: 42,
    };
    producer.send_with_key(&key, &event(1)).await.unwrap();
    let consumer = client()
        .consumer::<Event>()
        .topics([&topic])
        .group(unique_name("g"))
        .build()
        .unwrap();
    let r = consumer.consume_one(WAIT).await.unwrap().record().unwrap();
    let k: CustomerKey = consumer.decode_key(&r).await.unwrap();
    assert_eq!(k, key);
    let registry = SchemaRegistryClient::new(&registry_url()).unwrap();
    assert!(registry
        .subjects()
        .await
        .unwrap()
        .contains(&format!("{topic}-key")));
}

/// A client of the stack's registry and of Kafka at `bootstrap`, reconnecting at least every
/// 500 ms so that a broker coming back is noticed quickly.
fn client_at(bootstrap: &str) -> Client {
    Client::new(
        KafkaConfig::new(bootstrap).set("reconnect.backoff.max.ms", "500"),
        SchemaRegistryClient::new(&registry_url()).unwrap(),
    )
}

/// Polls until something other than a timeout comes, for at most `limit`.
async fn first_non_timeout(
    consumer: &flowodm::consumer::Consumer<Event>,
    limit: Duration,
) -> flowodm::Result<Consumed<Event>> {
    let started = std::time::Instant::now();
    loop {
        match consumer.consume_one(Duration::from_millis(500)).await {
            Ok(Consumed::Timeout) if started.elapsed() < limit => continue,
            other => return other,
        }
    }
}

fn assert_unreachable(err: &Error) {
    assert!(matches!(err, Error::BrokersUnreachable { .. }), "{err:?}");
    assert!(err.is_retriable(), "{err:?}");
    assert_eq!(err.kind(), flowodm::ErrorKind::Connection);
}

#[tokio::test]
async fn an_unreachable_cluster_is_a_retriable_connection_error_not_endless_timeouts() {
    // Nothing listens on port 1.
    let consumer = client_at("127.0.0.1:1")
        .consumer::<Event>()
        .group(unique_name("g"))
        .unreachable_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let err = first_non_timeout(&consumer, Duration::from_secs(20))
        .await
        .unwrap_err();
    assert_unreachable(&err);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    eprintln!("consumer: unreachable after {:?}", started.elapsed());
    // It keeps saying so, without spinning: each poll still waits for a broker.
    let again = std::time::Instant::now();
    let err = consumer
        .consume_one(Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_unreachable(&err);
    assert!(again.elapsed() >= Duration::from_millis(100));

    // The blocking consumer too, and a stream yields the error instead of waiting forever.
    let group = unique_name("g");
    let blocking = tokio::task::spawn_blocking(move || {
        let c = client_at("127.0.0.1:1")
            .consumer::<Event>()
            .group(group)
            .unreachable_timeout(Duration::from_secs(1))
            .build_blocking()
            .unwrap();
        let started = std::time::Instant::now();
        loop {
            match c.consume_one(Duration::from_millis(500)) {
                Ok(Consumed::Timeout) if started.elapsed() < Duration::from_secs(20) => {}
                other => return (other, started.elapsed()),
            }
        }
    });
    let mut stream = std::pin::pin!(consumer.stream());
    let stream_err = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("the stream yields within 20 s")
        .expect("an item")
        .unwrap_err();
    assert_unreachable(&stream_err);
    let (polled, took) = blocking.await.unwrap();
    assert_unreachable(&polled.unwrap_err());
    assert!(took < Duration::from_secs(15), "{took:?}");
}

/// Forwards every connection to `port` on loopback to `upstream`, from now on.
fn forward(port: u16, upstream: String) {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
    std::thread::spawn(move || {
        for downstream in listener.incoming().flatten() {
            let Ok(up) = std::net::TcpStream::connect(&upstream) else {
                continue;
            };
            let (mut d2, mut u2) = (downstream.try_clone().unwrap(), up.try_clone().unwrap());
            let (mut d, mut u) = (downstream, up);
            std::thread::spawn(move || drop(std::io::copy(&mut d, &mut u)));
            std::thread::spawn(move || drop(std::io::copy(&mut u2, &mut d2)));
        }
    });
}

#[tokio::test]
async fn a_cluster_that_comes_back_ends_the_outage() {
    let topic = new_topic("consumer-outage", 1).await;
    produce(&topic, 0..1).await;
    // A port nothing listens on yet; later it forwards to the stack's broker, which then
    // advertises its own address: the clients bootstrap through the port and carry on directly.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bootstrap = format!("127.0.0.1:{port}");
    let consumer = client_at(&bootstrap)
        .consumer::<Event>()
        .topics([&topic])
        .group(unique_name("g"))
        .unreachable_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let producer = client_at(&bootstrap)
        .producer::<Event>()
        .topic(&topic)
        .unreachable_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    assert_unreachable(
        &first_non_timeout(&consumer, Duration::from_secs(20))
            .await
            .unwrap_err(),
    );
    assert_unreachable(&producer.send(&event(1)).await.unwrap_err());

    forward(port, bootstrap_servers());
    // The waiting messages come; the producer delivers again.
    let started = std::time::Instant::now();
    let record = loop {
        match consumer.consume_one(Duration::from_millis(500)).await {
            Ok(Consumed::Record(r)) => break r,
            Ok(Consumed::Timeout) | Err(Error::BrokersUnreachable { .. })
                if started.elapsed() < Duration::from_secs(20) => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(record.value, event(0));
    let delivery = producer.send(&event(2)).await.unwrap();
    assert_eq!(
        delivery.offset, 1,
        "the failed send was withdrawn, not written"
    );
    // Polling a healthy, idle cluster times out again.
    let Consumed::Record(r) = consumer.consume_one(WAIT).await.unwrap() else {
        panic!("expected the record just sent")
    };
    assert_eq!(r.value, event(2));
    for _ in 0..3 {
        assert_times_out(&consumer).await;
    }
}

/// Asserts that a short poll finds nothing.
async fn assert_times_out(consumer: &flowodm::consumer::Consumer<Event>) {
    let polled = consumer.consume_one(Duration::from_millis(300)).await;
    assert_eq!(polled.unwrap(), Consumed::Timeout);
}

#[tokio::test]
async fn a_healthy_cluster_is_never_reported_unreachable() {
    let topic = new_topic("consumer-healthy", 2).await;
    produce(&topic, 0..20).await;
    let consumer = client()
        .consumer::<Event>()
        .topics([&topic])
        .group(unique_name("g"))
        .unreachable_timeout(Duration::ZERO)
        .build()
        .unwrap();
    let mut seen = 0;
    while seen < 20 {
        match consumer.consume_one(WAIT).await.unwrap() {
            Consumed::Record(_) => seen += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_times_out(&consumer).await;
}

#[tokio::test]
async fn partitions_paused_when_revoked_are_fetched_when_assigned_again() {
    let topic = new_topic("consumer-pause-revoke", 2).await;
    let producer = client().producer::<Event>().topic(&topic).build().unwrap();
    for i in 0..40 {
        let e = event(i);
        let record = OutRecord::new(&e).partition((i % 2) as i32);
        producer.send_record(record).await.unwrap();
    }
    let group = unique_name("g");
    let member = || {
        client()
            .consumer::<Event>()
            .topics([&topic])
            .group(&group)
            .set("heartbeat.interval.ms", "300")
            .set("session.timeout.ms", "6000")
            .build()
            .unwrap()
    };
    let first = member();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while first.assignment().unwrap().len() < 2 {
        let _ = first.consume_one(Duration::from_millis(100)).await.unwrap();
        assert!(std::time::Instant::now() < deadline, "never assigned");
    }
    // Paused (as a loop does under backpressure), then the partitions go in a rebalance.
    first.pause(&first.assignment().unwrap()).unwrap();
    let second = member();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let _ = second
            .consume_one(Duration::from_millis(100))
            .await
            .unwrap();
        let _ = first.consume_one(Duration::from_millis(100)).await;
        if first.assignment().unwrap().len() == 1 && second.assignment().unwrap().len() == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no rebalance");
    }
    // Like a Java consumer, a newly assigned partition is fetched, whatever was paused before.
    let mine = first.assignment().unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let _ = second.consume_one(Duration::from_millis(50)).await;
            if let Consumed::Record(r) =
                first.consume_one(Duration::from_millis(100)).await.unwrap()
            {
                return r;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("nothing fetched from the reassigned {mine:?}"));
    assert_eq!(got.partition, mine[0].partition);
}

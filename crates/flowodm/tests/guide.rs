//! What the user guide (`docs/*.md`) says and no other test shows, against the stack: the two
//! runnable examples (the microservice stopped by SIGTERM), error-handler decisions, retry
//! backoff, dead-letter topics, at-most-once commits, synchronous loops, loop metrics, schema
//! files, and builder defaults.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use flowodm::codec::CodecConfig;
use flowodm::consumer::Consumed;
use flowodm::profiles::Profile;
use flowodm::registry::SchemaRegistryClient;
use flowodm::runner::{CancellationToken, ConsumerLoop, Decision, HandlerError, Semantics};
use flowodm::{Client, Error, KafkaConfig, Model};
use flowodm_test::{bootstrap_servers, new_topic, plaintext_config, registry_url, unique_name};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};

#[derive(Model, Debug, Clone, PartialEq)]
#[flowodm(topic = "guide-tests", key = "key", namespace = "dev.flowodm.guide")]
struct Job {
    key: String,
    seq: i64,
}

const WAIT: Duration = Duration::from_secs(30);

fn client() -> Client {
    Client::new(
        KafkaConfig::new(bootstrap_servers()),
        SchemaRegistryClient::new(&registry_url()).unwrap(),
    )
}

async fn produce(topic: &str, jobs: &[Job]) {
    let producer = client().producer::<Job>().topic(topic).build().unwrap();
    for r in producer.send_many(jobs).await {
        r.unwrap();
    }
}

fn job(key: &str, seq: i64) -> Job {
    Job {
        key: key.into(),
        seq,
    }
}

/// Sends a message with these raw bytes (or none: a tombstone).
async fn send_raw(topic: &str, key: &[u8], payload: Option<&[u8]>) {
    let raw: FutureProducer = plaintext_config().create().unwrap();
    let mut rec = FutureRecord::<[u8], [u8]>::to(topic).key(key);
    if let Some(p) = payload {
        rec = rec.payload(p);
    }
    raw.send(rec, WAIT).await.unwrap();
}

/// The group's committed offsets, by partition.
async fn committed(group: &str, topic: &str) -> HashMap<i32, Option<i64>> {
    client()
        .admin()
        .unwrap()
        .group_lag(group, Some(vec![topic.to_string()]), WAIT)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.partition, l.committed))
        .collect()
}

/// A raw message as read back from a topic.
struct Read {
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    partition: i32,
    headers: HashMap<String, String>,
}

/// Reads `n` messages of `topic` from the beginning (waiting up to 30 s).
fn read(topic: &str, n: usize) -> Vec<Read> {
    let c: BaseConsumer = plaintext_config()
        .set("group.id", unique_name("guide-reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    while got.len() < n && Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            // A topic not created yet (a dead-letter topic is made on first use): poll again.
            let Ok(m) = m else {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            };
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            (
                                h.key.to_string(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            got.push(Read {
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().map(<[u8]>::to_vec),
                partition: m.partition(),
                headers,
            });
        }
    }
    got
}

// ---------------------------------------------------------------------------------------------
// The runnable examples.

/// The path of a built example (all are built once per test run).
fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "flowodm", "--examples"])
            .status()
            .expect("running cargo");
        assert!(status.success(), "building the examples failed");
    });
    // This test runs from target/<profile>/deps; examples are in target/<profile>/examples.
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

/// A command for an example, connected to the stack's plaintext listener and registry.
fn example_command(name: &str, topic: &str) -> Command {
    let mut cmd = Command::new(example(name));
    for (var, _) in std::env::vars() {
        if var.starts_with("KAFKA_") || var.starts_with("SCHEMA_REGISTRY_") {
            cmd.env_remove(var);
        }
    }
    cmd.env("KAFKA_BOOTSTRAP_SERVERS", bootstrap_servers())
        .env("SCHEMA_REGISTRY_URL", registry_url())
        .env("ORDERS_TOPIC", topic);
    cmd
}

/// The examples' model, shared with them.
#[allow(dead_code)]
#[path = "../examples/shared/order.rs"]
mod order;
use order::Order;

#[tokio::test]
async fn the_basic_producer_example_sends_keyed_orders_with_a_correlation_header() {
    let topic = unique_name("guide-basic-producer");
    let out = example_command("basic_producer", &topic)
        .env("ORDERS_COUNT", "4")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().filter(|l| l.starts_with("sent ")).count(), 4);
    assert!(stdout.contains(&format!("created topic {topic} with 3 partitions")));
    assert!(stdout.contains(&format!("under subject {topic}-value")));
    let described = client()
        .admin()
        .unwrap()
        .describe_topic(&topic, WAIT)
        .await
        .unwrap();
    assert_eq!(described.partitions.len(), 3);

    // What it sent reads back as typed orders, keyed by customer, with the header.
    let consumer = client()
        .consumer::<Order>()
        .topics([&topic])
        .group(unique_name("guide-g"))
        .build()
        .unwrap();
    let mut orders = Vec::new();
    while orders.len() < 4 {
        match consumer.consume_one(WAIT).await.unwrap() {
            Consumed::Record(r) => {
                assert_eq!(r.key.as_deref(), Some(r.value.customer_id.as_bytes()));
                let header = r.headers.iter().find(|(k, _)| k == "correlation-id");
                assert_eq!(
                    header.and_then(|(_, v)| v.as_deref()),
                    Some(r.value.order_id.as_bytes())
                );
                orders.push(r.value);
            }
            other => panic!("expected an order, got {other:?}"),
        }
    }
    orders.sort_by(|a, b| a.order_id.cmp(&b.order_id));
    assert_eq!(orders[0].order_id, "ORD-00001");
    assert_eq!(orders[1].note.as_deref(), Some("leave at the door"));
    assert_eq!(orders[3].total_cents, 1_500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_microservice_example_stores_orders_and_stops_cleanly_on_sigterm() {
    let topic = new_topic("guide-microservice", 3).await;
    let group = unique_name("guide-ms");
    let orders: Vec<Order> = (1..=6)
        .map(|i| Order {
            order_id: format!("ORD-{i:05}"),
            customer_id: format!("CUST-{:05}", i % 2),
            // ORD-00004 is invalid data: fatal, to the dead-letter topic.
            total_cents: if i == 4 { -1 } else { 100 * i },
            note: None,
        })
        .collect();
    let producer = client()
        .producer::<Order>()
        .topic(&topic)
        .codec(CodecConfig::default().subject(format!("{topic}-value")))
        .build()
        .unwrap();
    for r in producer.send_many(&orders).await {
        r.unwrap();
    }

    let mut child = example_command("microservice", &topic)
        .env("ORDERS_GROUP", &group)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });

    // Wait until the five valid orders are stored, then stop it as a deployment would.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen
        .iter()
        .filter(|l: &&String| l.starts_with("stored "))
        .count()
        < 5
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("the microservice did not store the orders in time: {seen:#?}");
            }
        }
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the microservice did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    reader.join().unwrap();
    seen.extend(lines.try_iter());
    assert!(exit.success(), "exit status {exit:?}: {seen:#?}");
    assert!(seen[0].starts_with(&format!("microservice: consuming {topic} as group {group}")));
    assert!(seen.contains(&"microservice: 5 orders stored".to_string()));
    assert!(
        seen.contains(
            &"microservice: stopped: processed=5 failed=1 retried=0 dead_lettered=1".to_string()
        ),
        "{seen:#?}"
    );

    // Everything is committed: a restart would handle nothing again.
    let lag = client()
        .admin()
        .unwrap()
        .group_lag(&group, Some(vec![topic.clone()]), WAIT)
        .await
        .unwrap();
    assert_eq!(lag.iter().map(|l| l.lag).sum::<i64>(), 0, "{lag:?}");
    // The invalid order is in the dead-letter topic, with why.
    let dlq = read(&format!("{topic}.DLQ"), 1);
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].headers["flowodm.error.kind"], "handler");
    assert!(dlq[0].headers["flowodm.error.message"].contains("ORD-00004: negative total"));
    assert_eq!(dlq[0].headers["flowodm.attempts"], "1");
}

// ---------------------------------------------------------------------------------------------
// Consumer loops.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_handler_decisions_skip_retry_and_stop() {
    let topic = new_topic("guide-decisions", 1).await;
    let group = unique_name("guide-g");
    produce(&topic, &[job("k", 0)]).await; // offset 0
    send_raw(&topic, b"bad", Some(b"not framed")).await; // offset 1
    produce(&topic, &(1..5).map(|s| job("k", s)).collect::<Vec<_>>()).await; // offsets 2..=5

    let calls: Arc<Mutex<Vec<i64>>> = Arc::default();
    let failures: Arc<Mutex<Vec<(String, u32, bool)>>> = Arc::default();
    let (c, f) = (calls.clone(), failures.clone());
    let err = ConsumerLoop::<Job>::builder(&client())
        .group(&group)
        .consumer(|b| b.topics([&topic]))
        .retry_delay(Duration::from_millis(10))
        .commit_interval(Duration::from_millis(50))
        .error_handler(move |failure| {
            f.lock().unwrap().push((
                failure.kind.to_string(),
                failure.attempts,
                failure.retryable,
            ));
            match (failure.kind, failure.message.as_str()) {
                ("deserialization", _) => Decision::Retry, // cannot be retried: passed over
                (_, "seq 1") => Decision::Skip,
                (_, "seq 2") => Decision::Retry, // whatever max_retries (0) says
                _ => Decision::Stop,
            }
        })
        .run(
            move |record| {
                let c = c.clone();
                async move {
                    let seq = record.value.seq;
                    let attempt = {
                        let mut c = c.lock().unwrap();
                        c.push(seq);
                        c.iter().filter(|s| **s == seq).count()
                    };
                    match seq {
                        1 | 3 => Err(HandlerError::fatal(format!("seq {seq}"))),
                        2 if attempt < 3 => Err(HandlerError::retryable(format!("seq {seq}"))),
                        _ => Ok(()),
                    }
                }
            },
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Configuration { key, message } if key == "handler" && message.contains("seq 3")),
        "{err:?}"
    );
    assert_eq!(*calls.lock().unwrap(), [0, 1, 2, 2, 2, 3]);
    assert_eq!(
        *failures.lock().unwrap(),
        [
            ("deserialization".to_string(), 0, false),
            ("handler".to_string(), 1, false),
            ("handler".to_string(), 1, true),
            ("handler".to_string(), 2, true),
            ("handler".to_string(), 1, false),
        ]
    );
    // Offsets 0..=3 finished (handled, passed over, skipped, handled); seq 3 (offset 4) was not
    // committed.
    assert_eq!(committed(&group, &topic).await[&0], Some(4));
    // Skip and Retry-on-undecodable wrote nothing to a dead-letter topic.
    let topics = client().admin().unwrap().list_topics(WAIT).await.unwrap();
    assert!(!topics.contains(&format!("{topic}.DLQ")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_back_off_exponentially_then_dead_letter_to_a_named_topic_and_metrics_count() {
    let recorded = flowodm_test::recorder::recorded();
    let topic = new_topic("guide-retries", 2).await;
    let dlq = unique_name("guide-dead-letters");
    produce(&topic, &[job("fails", 0), job("works", 1)]).await;

    let attempts: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let token = CancellationToken::new();
    let a = attempts.clone();
    let run = tokio::spawn(
        ConsumerLoop::<Job>::builder(&client())
            .group(unique_name("guide-g"))
            .consumer(|b| b.topics([&topic]))
            .max_retries(3)
            .retry_delay(Duration::from_millis(100))
            .dead_letter_topic(&dlq)
            .run(
                move |record| {
                    let a = a.clone();
                    async move {
                        if record.value.seq == 0 {
                            a.lock().unwrap().push(Instant::now());
                            return Err(std::io::Error::other("database away").into());
                        }
                        Ok(())
                    }
                },
                token.clone(),
            ),
    );
    let dead = tokio::task::spawn_blocking({
        let dlq = dlq.clone();
        move || read(&dlq, 1)
    })
    .await
    .unwrap();
    token.cancel();
    let stats = run.await.unwrap().unwrap();
    assert_eq!(
        (
            stats.processed,
            stats.retried,
            stats.dead_lettered,
            stats.failed
        ),
        (1, 3, 1, 1)
    );

    // Delays: retry_delay × 2^(n-1), times a factor in [0.5, 1).
    let at = attempts.lock().unwrap().clone();
    assert_eq!(at.len(), 4);
    for (n, pair) in at.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let base = Duration::from_millis(100 << n);
        assert!(gap >= base / 2, "retry {}: {gap:?} < {:?}", n + 1, base / 2);
        assert!(
            gap <= base + Duration::from_millis(250),
            "retry {}: {gap:?} is far above {base:?}",
            n + 1
        );
    }

    // The named dead-letter topic, with the source's partition count and the original record.
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].key.as_deref(), Some(&b"fails"[..]));
    assert_eq!(dead[0].headers["flowodm.attempts"], "4");
    assert_eq!(dead[0].headers["flowodm.error.kind"], "handler");
    assert_eq!(dead[0].headers["flowodm.original.topic"], topic);
    assert_eq!(dead[0].headers["flowodm.original.offset"], "0");
    assert!(dead[0].payload.is_some());
    let info = client()
        .admin()
        .unwrap()
        .describe_topic(&dlq, WAIT)
        .await
        .unwrap();
    assert_eq!(info.partitions.len(), 2);
    assert!((0..2).contains(&dead[0].partition));

    // The metrics, labelled by topic.
    let counter = |name| recorded.counter(name, &topic);
    assert_eq!(counter("flowodm_loop_processed_total"), 1);
    assert_eq!(counter("flowodm_loop_retried_total"), 3);
    assert_eq!(counter("flowodm_loop_dead_lettered_total"), 1);
    assert_eq!(counter("flowodm_loop_failed_total"), 1);
    assert_eq!(recorded.samples("flowodm_loop_handler_seconds", &topic), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_during_shutdown_is_left_uncommitted_for_the_next_run() {
    let topic = new_topic("guide-shutdown-failure", 1).await;
    let group = unique_name("guide-g");
    produce(&topic, &[job("k", 0)]).await;
    let token = CancellationToken::new();
    let t = token.clone();
    let started = Instant::now();
    let stats = ConsumerLoop::<Job>::builder(&client())
        .group(&group)
        .consumer(|b| b.topics([&topic]))
        .max_retries(5)
        .retry_delay(Duration::from_secs(20))
        .run(
            move |_record| {
                let t = t.clone();
                async move {
                    t.cancel(); // SIGTERM arrives while the message is being handled
                    Err(HandlerError::retryable("database away"))
                }
            },
            token,
        )
        .await
        .unwrap();
    // Neither retried (shutdown does not wait out a backoff) nor dead-lettered: uncommitted.
    assert_eq!(
        (stats.retried, stats.dead_lettered, stats.processed),
        (0, 0, 0)
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    // The next run gets the message again.
    let token = CancellationToken::new();
    let t = token.clone();
    let stats = ConsumerLoop::<Job>::builder(&client())
        .group(&group)
        .consumer(|b| b.topics([&topic]))
        .run(
            move |record| {
                let t = t.clone();
                async move {
                    assert_eq!(record.offset, 0);
                    t.cancel();
                    Ok::<(), HandlerError>(())
                }
            },
            token,
        )
        .await
        .unwrap();
    assert_eq!(stats.processed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_once_commits_before_the_handler_and_tombstones_are_passed_over() {
    let recorded = flowodm_test::recorder::recorded();
    let topic = new_topic("guide-at-most-once", 1).await;
    let group = unique_name("guide-g");
    produce(&topic, &[job("k", 0)]).await; // offset 0
    send_raw(&topic, b"gone", None).await; // a tombstone at offset 1
    produce(&topic, &[job("k", 1)]).await; // offset 2

    // (offset, the group's committed offset while the handler ran)
    type Seen = Arc<Mutex<Vec<(i64, Option<i64>)>>>;
    let seen: Seen = Arc::default();
    let token = CancellationToken::new();
    let (s, t, g, tp) = (seen.clone(), token.clone(), group.clone(), topic.clone());
    let stats = ConsumerLoop::<Job>::builder(&client())
        .group(&group)
        .consumer(|b| b.topics([&topic]))
        .semantics(Semantics::AtMostOnce)
        .run(
            move |record| {
                let (s, t, g, tp) = (s.clone(), t.clone(), g.clone(), tp.clone());
                async move {
                    // Already committed while the handler runs.
                    let at = committed(&g, &tp).await[&0];
                    let n = {
                        let mut s = s.lock().unwrap();
                        s.push((record.offset, at));
                        s.len()
                    };
                    if n == 2 {
                        t.cancel();
                    }
                    Ok::<(), HandlerError>(())
                }
            },
            token,
        )
        .await
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), [(0, Some(1)), (2, Some(3))]);
    assert_eq!((stats.processed, stats.tombstones), (2, 1));
    assert_eq!(recorded.counter("flowodm_loop_tombstones_total", &topic), 1);
}

#[test]
fn run_blocking_takes_a_synchronous_handler_and_a_panic_is_a_fatal_failure() {
    let topic = {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(new_topic("guide-blocking", 1))
    };
    // Produced from synchronous code, too.
    let producer = client().producer::<Job>().topic(&topic).build().unwrap();
    for seq in 0..3 {
        producer
            .send_blocking(&job("k", seq), Duration::from_secs(30))
            .unwrap();
    }
    let token = CancellationToken::new();
    let (t, handled) = (token.clone(), Arc::new(AtomicUsize::new(0)));
    let h = handled.clone();
    let stats = ConsumerLoop::<Job>::builder(&client())
        .group(unique_name("guide-g"))
        .consumer(|b| b.topics([&topic]))
        .run_blocking(
            move |record| {
                std::thread::sleep(Duration::from_millis(5)); // blocking work is fine here
                if record.value.seq == 1 {
                    panic!("a bug in the handler");
                }
                if h.fetch_add(1, Ordering::SeqCst) + 1 == 2 {
                    t.cancel();
                }
                Ok(())
            },
            token,
        )
        .unwrap();
    assert_eq!(
        (stats.processed, stats.dead_lettered, stats.failed),
        (2, 1, 1)
    );
    let dead = read(&format!("{topic}.DLQ"), 1);
    assert!(dead[0].headers["flowodm.error.message"].contains("the handler panicked"));
}

// ---------------------------------------------------------------------------------------------
// Models, producers and consumers.

#[derive(Model, Debug)]
#[flowodm(
    topic = "receipts",
    namespace = "dev.flowodm.guide",
    schema_file = "tests/fixtures/guide_receipt.avsc"
)]
struct Receipt {
    id: String,
    total: i64,
}

#[derive(Model, Debug)]
#[flowodm(
    topic = "receipts",
    namespace = "dev.flowodm.guide",
    name = "Receipt",
    schema_file = "tests/fixtures/guide_receipt_stale.avsc"
)]
struct StaleReceipt {
    id: String,
    total: i64,
}

#[test]
fn a_schema_file_is_checked_on_the_models_first_use() {
    assert!(Receipt::value_schema().is_ok());
    let err = StaleReceipt::value_schema().unwrap_err();
    assert!(matches!(err, Error::Schema { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("tests/fixtures/guide_receipt_stale.avsc"),
        "{text}"
    );
    assert!(text.contains("currency"), "{text}");
    // A codec (so a producer or consumer) of the model fails the same way.
    let registry = SchemaRegistryClient::new(&registry_url()).unwrap();
    assert!(flowodm::codec::Codec::<StaleReceipt>::new(registry).is_err());
}

#[tokio::test]
async fn builders_keep_the_model_subject_and_take_the_batch_size_from_the_profile() {
    let topic = new_topic("guide-builders", 1).await;
    let producer = client().producer::<Job>().topic(&topic).build().unwrap();
    assert_eq!(producer.topic(), topic);
    assert_eq!(producer.codec().subject(), "guide-tests-value");

    let consumer = |profile| {
        client()
            .consumer::<Job>()
            .group(unique_name("guide-g"))
            .topics([&topic])
            .profile(profile)
            .set("auto.offset.reset", "earliest")
            .build()
            .unwrap()
    };
    assert_eq!(consumer(Profile::LongRunning).batch_size(), 100);
    assert_eq!(consumer(Profile::Batch).batch_size(), 500);
    let default = client()
        .consumer::<Job>()
        .group(unique_name("guide-g"))
        .topics([&topic])
        .build()
        .unwrap();
    assert_eq!(default.batch_size(), 100, "LongRunning is the default");

    // consume_batch(None, ..) takes up to the profile's batch size.
    produce(&topic, &(0..15).map(|s| job("k", s)).collect::<Vec<_>>()).await;
    let real_time = consumer(Profile::RealTime);
    let mut batch = Vec::new();
    let deadline = Instant::now() + WAIT;
    while batch.is_empty() && Instant::now() < deadline {
        batch = real_time
            .consume_batch(None, Duration::from_secs(10))
            .await
            .unwrap();
    }
    assert_eq!(batch.len(), 10);
}

/// The first record of a writer schema the loop has not seen, polled while another message's
/// handler finishes (here: right after a tombstone), must still be handled: the poll waits for
/// the registry and must not be abandoned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_right_after_a_tombstone_is_handled() {
    let topic = new_topic("guide-after-tombstone", 1).await;
    send_raw(&topic, b"gone", None).await; // offset 0
    produce(&topic, &[job("k", 0), job("k", 1)]).await; // offsets 1, 2
    let seen: Arc<Mutex<Vec<i64>>> = Arc::default();
    let token = CancellationToken::new();
    let stop = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(15)).await;
        stop.cancel();
    });
    let (s, t) = (seen.clone(), token.clone());
    ConsumerLoop::<Job>::builder(&client())
        .group(unique_name("guide-g"))
        .consumer(|b| b.topics([&topic]))
        .run(
            move |record| {
                let (s, t) = (s.clone(), t.clone());
                async move {
                    let mut s = s.lock().unwrap();
                    s.push(record.offset);
                    if s.len() == 2 {
                        t.cancel();
                    }
                    Ok::<(), HandlerError>(())
                }
            },
            token,
        )
        .await
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), [1, 2]);
}

#[test]
fn records_without_key_and_blocking_record_sends() {
    let topic = {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(new_topic("guide-no-key", 1))
    };
    let producer = client().producer::<Job>().topic(&topic).build().unwrap();
    let value = job("would-be-key", 0);
    let delivery = producer
        .send_record_blocking(
            flowodm::producer::OutRecord::new(&value)
                .no_key()
                .header("h", "v"),
            Duration::from_secs(30),
        )
        .unwrap();
    assert_eq!((delivery.partition, delivery.offset), (0, 0));
    let got = read(&topic, 1);
    assert_eq!(got[0].key, None, "no_key() wins over the model's key field");
    assert_eq!(got[0].headers["h"], "v");
}

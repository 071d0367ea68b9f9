//! Consumer loops against the stack: order and commits under concurrency, poison messages to the
//! dead-letter topic, graceful shutdown without double handling, lifecycle hooks.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowodm::codec::Codec;
use flowodm::profiles::Profile;
use flowodm::registry::SchemaRegistryClient;
use flowodm::runner::{CancellationToken, ConsumerLoop, HandlerError, OrderBy};
use flowodm::{Client, Error, KafkaConfig, Model};
use flowodm_test::interop::produce_payloads_to;
use flowodm_test::{bootstrap_servers, new_topic, plaintext_config, registry_url, unique_name};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};

#[derive(Model, Debug, Clone, PartialEq)]
#[flowodm(topic = "runner-tests", key = "key", namespace = "dev.flowodm.runner")]
struct Job {
    key: String,
    seq: i64,
}

fn client() -> Client {
    Client::new(
        KafkaConfig::new(bootstrap_servers()),
        SchemaRegistryClient::new(&registry_url()).unwrap(),
    )
}

async fn produce(topic: &str, n: i64) {
    produce_keyed(topic, n, "k", 7).await;
}

/// Sends jobs `0..n`, job `seq` keyed `{prefix}{seq % keys}`.
async fn produce_keyed(topic: &str, n: i64, prefix: &str, keys: i64) {
    let producer = client().producer::<Job>().topic(topic).build().unwrap();
    let jobs: Vec<Job> = (0..n)
        .map(|seq| Job {
            key: format!("{prefix}{}", seq % keys),
            seq,
        })
        .collect();
    for r in producer.send_many(&jobs).await {
        r.unwrap();
    }
}

/// The group's committed offsets, by partition.
async fn committed(group: &str, topic: &str) -> BTreeMap<i32, Option<i64>> {
    let lag = client()
        .admin()
        .unwrap()
        .group_lag(
            group,
            Some(vec![topic.to_string()]),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    lag.into_iter()
        .map(|l| (l.partition, l.committed))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partitions_are_handled_in_order_and_commits_never_pass_unfinished_work() {
    let topic = new_topic("runner-order", 3).await;
    let total = 150;
    produce(&topic, total).await;
    let group = unique_name("runner-g");
    let handled: Arc<Mutex<HashMap<i32, Vec<i64>>>> = Arc::default();
    let in_flight: Arc<Mutex<HashMap<i32, BTreeSet<i64>>>> = Arc::default();
    let violations = Arc::new(AtomicUsize::new(0));
    let count = Arc::new(AtomicUsize::new(0));
    let token = CancellationToken::new();

    let h = (
        handled.clone(),
        in_flight.clone(),
        count.clone(),
        token.clone(),
    );
    let (g, t) = (group.clone(), topic.clone());
    let v = violations.clone();
    let run = ConsumerLoop::<Job>::builder(&client())
        .group(&group)
        .consumer(|c| c.topics([&topic]).set("auto.offset.reset", "earliest"))
        .max_concurrent(10)
        .commit_interval(Duration::from_millis(50))
        .run(
            move |record| {
                let (handled, in_flight, count, token) = h.clone();
                let (g, t, v) = (g.clone(), t.clone(), v.clone());
                async move {
                    in_flight
                        .lock()
                        .unwrap()
                        .entry(record.partition)
                        .or_default()
                        .insert(record.offset);
                    let delay = rand::random::<u64>() % 15;
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    if record.offset % 10 == 0 {
                        // The committed offset must never be beyond a message still in flight.
                        let c = committed(&g, &t).await;
                        let lowest = in_flight.lock().unwrap()[&record.partition]
                            .iter()
                            .next()
                            .copied();
                        if let (Some(Some(c)), Some(low)) = (c.get(&record.partition), lowest) {
                            if *c > low {
                                v.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    handled
                        .lock()
                        .unwrap()
                        .entry(record.partition)
                        .or_default()
                        .push(record.offset);
                    in_flight
                        .lock()
                        .unwrap()
                        .get_mut(&record.partition)
                        .unwrap()
                        .remove(&record.offset);
                    if count.fetch_add(1, Ordering::Relaxed) + 1 == total as usize {
                        token.cancel();
                    }
                    Ok::<(), HandlerError>(())
                }
            },
            token.clone(),
        );
    let stats = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the loop finishes")
        .unwrap();
    assert_eq!(stats.processed, total as u64);
    assert_eq!(
        violations.load(Ordering::Relaxed),
        0,
        "a commit passed an unfinished message"
    );
    let handled = handled.lock().unwrap().clone();
    for (p, offsets) in handled.iter() {
        let mut sorted = offsets.clone();
        sorted.sort();
        assert_eq!(
            offsets, &sorted,
            "partition {p} handled out of offset order"
        );
    }
    // Everything finished is committed at shutdown.
    let c = committed(&group, &topic).await;
    let ends: i64 = c.values().map(|o| o.unwrap_or(0)).sum();
    assert_eq!(ends, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn key_ordering_runs_keys_in_parallel_keeps_each_keys_order_and_the_watermark() {
    let topic = new_topic("runner-keys", 3).await;
    let total: i64 = 600;
    produce_keyed(&topic, total, "customer-", 40).await;
    let group = unique_name("runner-keys-g");
    let by_key: Arc<Mutex<HashMap<String, Vec<i64>>>> = Arc::default();
    let in_flight: Arc<Mutex<HashMap<i32, BTreeSet<i64>>>> = Arc::default();
    let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let violations = Arc::new(AtomicUsize::new(0));
    let count = Arc::new(AtomicUsize::new(0));
    let token = CancellationToken::new();
    let shared = (
        by_key.clone(),
        in_flight.clone(),
        now.clone(),
        peak.clone(),
        violations.clone(),
        count.clone(),
        token.clone(),
        group.clone(),
        topic.clone(),
    );
    let run = ConsumerLoop::<Job>::builder(&client())
        .group(&group)
        .consumer(|c| c.topics([&topic]).set("auto.offset.reset", "earliest"))
        .order_by(OrderBy::Key)
        .max_concurrent(25)
        .commit_interval(Duration::from_millis(50))
        .run(
            move |record| {
                let (by_key, in_flight, now, peak, v, count, token, g, t) = shared.clone();
                async move {
                    let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(running, Ordering::SeqCst);
                    in_flight
                        .lock()
                        .unwrap()
                        .entry(record.partition)
                        .or_default()
                        .insert(record.offset);
                    tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 20)).await;
                    if record.value.seq % 25 == 0 {
                        let c = committed(&g, &t).await;
                        let lowest = in_flight.lock().unwrap()[&record.partition]
                            .first()
                            .copied();
                        if let (Some(Some(c)), Some(low)) = (c.get(&record.partition), lowest) {
                            if *c > low {
                                v.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    by_key
                        .lock()
                        .unwrap()
                        .entry(record.value.key.clone())
                        .or_default()
                        .push(record.value.seq);
                    in_flight
                        .lock()
                        .unwrap()
                        .get_mut(&record.partition)
                        .unwrap()
                        .remove(&record.offset);
                    now.fetch_sub(1, Ordering::SeqCst);
                    if count.fetch_add(1, Ordering::Relaxed) + 1 == total as usize {
                        token.cancel();
                    }
                    Ok::<(), HandlerError>(())
                }
            },
            token.clone(),
        );
    let stats = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the loop finishes")
        .unwrap();
    assert_eq!(stats.processed, total as u64);
    let by_key = by_key.lock().unwrap().clone();
    assert_eq!(by_key.len(), 40);
    for (key, seqs) in &by_key {
        let mut sorted = seqs.clone();
        sorted.sort();
        assert_eq!(seqs, &sorted, "{key} handled out of order");
        assert_eq!(seqs.len(), 15, "{key} handled a wrong number of times");
    }
    let peak = peak.load(Ordering::SeqCst);
    assert!(
        peak > 3 && peak <= 25,
        "keys of 3 partitions ran {peak} at once (want more than 3, at most 25)"
    );
    assert_eq!(
        violations.load(Ordering::Relaxed),
        0,
        "a commit passed an unfinished message"
    );
    let c = committed(&group, &topic).await;
    assert_eq!(c.values().map(|o| o.unwrap_or(0)).sum::<i64>(), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_go_to_the_dead_letter_topic_and_the_loop_goes_on() {
    let topic = new_topic("runner-poison", 1).await;
    let raw: FutureProducer = plaintext_config().create().unwrap();
    let send_raw = |payload: &'static [u8]| {
        let raw = raw.clone();
        let topic = topic.clone();
        async move {
            raw.send(
                FutureRecord::<[u8], [u8]>::to(&topic)
                    .key(b"bad")
                    .payload(payload)
                    .headers(rdkafka::message::OwnedHeaders::new().insert(
                        rdkafka::message::Header {
                            key: "trace",
                            value: Some(&b"t-9"[..]),
                        },
                    )),
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        }
    };
    send_raw(b"corrupt, not framed").await;
    send_raw(&[0, 0x7f, 0, 0, 9, 1, 2]).await;
    produce(&topic, 5).await; // seq 3 always fails in the handler

    let token = CancellationToken::new();
    let seen = Arc::new(AtomicUsize::new(0));
    let (s, t) = (seen.clone(), token.clone());
    let stats = ConsumerLoop::<Job>::builder(&client())
        .group(unique_name("runner-g"))
        .consumer(|c| c.topics([&topic]))
        .max_retries(2)
        .retry_delay(Duration::from_millis(10))
        .commit_interval(Duration::from_millis(50))
        .run(
            move |record| {
                let (s, t) = (s.clone(), t.clone());
                async move {
                    if record.value.seq == 3 {
                        return Err(HandlerError::retryable(std::io::Error::other(
                            "the database said no",
                        )));
                    }
                    if s.fetch_add(1, Ordering::Relaxed) + 1 == 4 {
                        t.cancel();
                    }
                    Ok(())
                }
            },
            token,
        )
        .await
        .unwrap();
    assert_eq!(
        (stats.processed, stats.dead_lettered, stats.retried),
        (4, 3, 2)
    );

    // The dead-letter topic holds the three, with their original bytes and the error headers.
    let dlq: BaseConsumer = plaintext_config()
        .set("group.id", unique_name("dlq-reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    dlq.subscribe(&[&format!("{topic}.DLQ")]).unwrap();
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while got.len() < 3 && std::time::Instant::now() < deadline {
        if let Some(m) = dlq.poll(Duration::from_millis(200)) {
            let m = m.unwrap();
            let headers: HashMap<String, String> = m
                .headers()
                .unwrap()
                .iter()
                .map(|h| {
                    (
                        h.key.to_string(),
                        String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                    )
                })
                .collect();
            got.push((
                m.payload().map(<[u8]>::to_vec),
                m.key().map(<[u8]>::to_vec),
                headers,
            ));
        }
    }
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].0.as_deref(), Some(&b"corrupt, not framed"[..]));
    assert_eq!(got[0].1.as_deref(), Some(&b"bad"[..]));
    assert_eq!(got[0].2["trace"], "t-9", "original headers are kept");
    assert_eq!(got[0].2["flowodm.error.kind"], "deserialization");
    assert_eq!(got[0].2["flowodm.original.topic"], topic);
    assert_eq!(got[0].2["flowodm.original.offset"], "0");
    assert_eq!(got[1].2["flowodm.original.offset"], "1");
    assert!(
        got[1].2["flowodm.error.message"].contains("unknown schema id"),
        "{:?}",
        got[1].2
    );
    assert_eq!(got[2].2["flowodm.error.kind"], "handler");
    assert_eq!(got[2].2["flowodm.attempts"], "3");
    assert!(got[2].2["flowodm.error.message"].contains("the database said no"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_work_and_a_restart_handles_nothing_twice() {
    let topic = new_topic("runner-shutdown", 3).await;
    let total = 60;
    produce(&topic, total).await;
    let group = unique_name("runner-g");
    let handled: Arc<Mutex<Vec<i64>>> = Arc::default();
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));

    for round in 0..2 {
        let token = CancellationToken::new();
        let (h, s, f, t) = (
            handled.clone(),
            started.clone(),
            finished.clone(),
            token.clone(),
        );
        let run = ConsumerLoop::<Job>::builder(&client())
            .group(&group)
            .consumer(|c| c.topics([&topic]))
            .max_concurrent(3)
            .run(
                move |record| {
                    let (h, s, f, t) = (h.clone(), s.clone(), f.clone(), t.clone());
                    async move {
                        s.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(30)).await;
                        let n = {
                            let mut h = h.lock().unwrap();
                            h.push(record.value.seq);
                            h.len()
                        };
                        f.fetch_add(1, Ordering::Relaxed);
                        // The first run is stopped part-way, as by SIGTERM; the second ends at the end.
                        if (round == 0 && n == 20) || n == total as usize {
                            t.cancel();
                        }
                        Ok::<(), HandlerError>(())
                    }
                },
                token,
            );
        tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("the loop stops")
            .unwrap();
        assert_eq!(
            started.load(Ordering::Relaxed),
            finished.load(Ordering::Relaxed),
            "round {round}: unfinished work"
        );
    }
    let mut seqs = handled.lock().unwrap().clone();
    let n = seqs.len();
    seqs.sort();
    seqs.dedup();
    assert_eq!(
        n,
        seqs.len(),
        "a message was handled twice across the restart"
    );
    assert_eq!(seqs, (0..total).collect::<Vec<_>>());
}

#[tokio::test]
async fn on_shutdown_runs_even_when_startup_fails() {
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let err = ConsumerLoop::<Job>::builder(&client())
        .group(unique_name("runner-g"))
        .on_startup(|| async {
            Err(Error::Configuration {
                key: "db".into(),
                message: "unreachable".into(),
            })
        })
        .on_shutdown(move || async move {
            r.store(true, Ordering::Relaxed);
            Ok(())
        })
        .run(
            |_| async { Ok::<(), HandlerError>(()) },
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Configuration { ref key, .. } if key == "db"));
    assert!(ran.load(Ordering::Relaxed));
}

#[derive(Model, Debug, Clone, PartialEq)]
#[flowodm(
    topic = "runner-eos-out",
    key = "key",
    namespace = "dev.flowodm.runner"
)]
struct Receipt {
    key: String,
    seq: i64,
}

/// Every receipt a `read_committed` reader sees on `topic`.
async fn committed_receipts(topic: &str) -> Vec<i64> {
    let consumer = client()
        .consumer::<Receipt>()
        .topics([topic])
        .group(unique_name("eos-reader"))
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .build()
        .unwrap();
    let mut seqs = Vec::new();
    loop {
        match consumer.consume_one(Duration::from_secs(5)).await.unwrap() {
            flowodm::consumer::Consumed::Record(r) => seqs.push(r.value.seq),
            flowodm::consumer::Consumed::Timeout => return seqs,
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_loop_publishes_each_input_once_across_an_abort_and_a_restart() {
    let input = new_topic("runner-eos-in", 3).await;
    let output = new_topic("runner-eos-out", 3).await;
    let total: i64 = 300;
    produce(&input, total).await;
    let group = unique_name("runner-eos-g");
    let txn_id = unique_name("runner-eos-txn");
    let eos_loop = || {
        ConsumerLoop::<Job>::builder(&client())
            .group(&group)
            .consumer(|c| c.topics([&input]).set("auto.offset.reset", "earliest"))
            .max_retries(2)
            .retry_delay(Duration::from_millis(10))
            .poll_timeout(Duration::from_millis(200))
    };
    let producer = || {
        client()
            .producer::<Receipt>()
            .topic(&output)
            .transactional(&txn_id)
            .build()
            .unwrap()
    };

    // First run: one message fails once (retried inside its transaction); a later one makes
    // the error handler stop the loop, so its transaction is aborted with outputs already sent.
    let flaky_done = Arc::new(AtomicBool::new(false));
    let retried = flaky_done.clone();
    let first = eos_loop()
        .error_handler(|f| {
            if f.message.contains("boom") {
                flowodm::runner::Decision::Stop
            } else if f.attempts <= 2 {
                flowodm::runner::Decision::Retry
            } else {
                flowodm::runner::Decision::DeadLetter
            }
        })
        .run_exactly_once(
            producer(),
            move |r| {
                let flaky_done = flaky_done.clone();
                async move {
                    let job = r.value;
                    if job.seq == 77 && !flaky_done.swap(true, Ordering::SeqCst) {
                        return Err(HandlerError::retryable(std::io::Error::other("flaky")));
                    }
                    // Only after the retry above, whichever partition comes first.
                    if job.seq >= 200 && flaky_done.load(Ordering::SeqCst) {
                        return Err(HandlerError::fatal(std::io::Error::other("boom")));
                    }
                    Ok(vec![Receipt {
                        key: job.key,
                        seq: job.seq,
                    }])
                }
            },
            CancellationToken::new(),
        );
    let err = tokio::time::timeout(Duration::from_secs(120), first)
        .await
        .expect("the first run stops")
        .expect_err("the error handler stopped it");
    assert!(err.to_string().contains("boom"), "{err}");
    assert!(retried.load(Ordering::SeqCst), "the retry ran");

    // Second run: same group and transactional id; it resumes after the last committed batch.
    let token = CancellationToken::new();
    let (g, t, stopper) = (group.clone(), input.clone(), token.clone());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let c = committed(&g, &t).await;
            if c.values().map(|o| o.unwrap_or(0)).sum::<i64>() == total {
                stopper.cancel();
                return;
            }
        }
    });
    let second = eos_loop().run_exactly_once(
        producer(),
        |r| async move {
            Ok::<_, HandlerError>(vec![Receipt {
                key: r.value.key,
                seq: r.value.seq,
            }])
        },
        token,
    );
    tokio::time::timeout(Duration::from_secs(120), second)
        .await
        .expect("the second run finishes")
        .unwrap();

    let mut seqs = committed_receipts(&output).await;
    seqs.sort();
    assert_eq!(
        seqs,
        (0..total).collect::<Vec<_>>(),
        "each input published exactly once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_circuit_breaker_pauses_calls_while_a_dependency_is_down_and_loses_nothing() {
    let topic = new_topic("runner-breaker", 1).await;
    let total = 20;
    produce(&topic, total).await;
    // The dependency fails the first 6 calls; the circuit opens after 3 failures in a row.
    let calls: Arc<Mutex<Vec<(std::time::Instant, bool)>>> = Arc::default();
    let handled: Arc<Mutex<BTreeSet<i64>>> = Arc::default();
    let token = CancellationToken::new();
    let (c, h, t) = (calls.clone(), handled.clone(), token.clone());
    let cooldown = Duration::from_millis(700);
    let stats = ConsumerLoop::<Job>::builder(&client())
        .group(unique_name("runner-breaker-g"))
        .consumer(|c| c.topics([&topic]).set("auto.offset.reset", "earliest"))
        .max_retries(u32::MAX)
        .retry_delay(Duration::from_millis(5))
        .circuit_breaker(3, cooldown)
        .run(
            move |r| {
                let (c, h, t) = (c.clone(), h.clone(), t.clone());
                async move {
                    let mut calls = c.lock().unwrap();
                    let ok = calls.len() >= 6;
                    calls.push((std::time::Instant::now(), ok));
                    if !ok {
                        return Err(HandlerError::retryable(std::io::Error::other("db down")));
                    }
                    let mut done = h.lock().unwrap();
                    done.insert(r.value.seq);
                    if done.len() == total as usize {
                        t.cancel();
                    }
                    Ok(())
                }
            },
            token.clone(),
        )
        .await
        .unwrap();
    assert_eq!(stats.processed, total as u64);
    assert_eq!(stats.dead_lettered, 0, "an outage dead-letters nothing");
    assert_eq!(handled.lock().unwrap().len(), total as usize);
    let calls = calls.lock().unwrap().clone();
    // Calls 1-3 fail quickly; then the circuit is open for the cooldown before the probe
    // (call 4) fails and reopens it, and again before call 5.
    for i in [3, 4] {
        let gap = calls[i].0 - calls[i - 1].0;
        assert!(
            gap >= cooldown.mul_f64(0.9),
            "call {} came {gap:?} after a failure that opened the circuit",
            i + 1
        );
    }
    let quick = calls[1].0 - calls[0].0;
    assert!(
        quick < cooldown / 2,
        "before the circuit opens retries are quick ({quick:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_spaces_handler_calls() {
    let topic = new_topic("runner-rate", 3).await;
    let total = 30;
    produce(&topic, total).await;
    let times: Arc<Mutex<Vec<std::time::Instant>>> = Arc::default();
    let token = CancellationToken::new();
    let (tm, t) = (times.clone(), token.clone());
    ConsumerLoop::<Job>::builder(&client())
        .group(unique_name("runner-rate-g"))
        .consumer(|c| c.topics([&topic]).set("auto.offset.reset", "earliest"))
        .order_by(OrderBy::Key)
        .max_concurrent(10)
        .rate_limit(50)
        .run(
            move |_| {
                let (tm, t) = (tm.clone(), t.clone());
                async move {
                    let mut times = tm.lock().unwrap();
                    times.push(std::time::Instant::now());
                    if times.len() == total as usize {
                        t.cancel();
                    }
                    Ok::<(), HandlerError>(())
                }
            },
            token.clone(),
        )
        .await
        .unwrap();
    let mut times = times.lock().unwrap().clone();
    times.sort();
    // 30 calls at 50 a second take at least 29 intervals of 20 ms, whatever the concurrency.
    let span = *times.last().unwrap() - times[0];
    assert!(
        span >= Duration::from_millis(29 * 20 - 10),
        "30 calls in {span:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_later_by_a_batching_writer_order_and_watermark_hold() {
    use flowodm::runner::Ack;
    let topic = new_topic("runner-ack", 3).await;
    let total: i64 = 600;
    produce_keyed(&topic, total, "customer-", 40).await;
    let group = unique_name("runner-ack-g");
    let max_concurrent = 64;
    // Handed over but not yet acknowledged, per partition; and the peak of those plus running.
    let unacked: Arc<Mutex<HashMap<i32, BTreeSet<i64>>>> = Arc::default();
    let outstanding = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let written: Arc<Mutex<HashMap<String, Vec<i64>>>> = Arc::default();
    let violations = Arc::new(AtomicUsize::new(0));
    let token = CancellationToken::new();

    // The writer: batches of up to 50, "durable" after 5 ms, then acknowledged in order.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Job, i32, i64, Ack)>(1000);
    let (w, u, o, t, v) = (
        written.clone(),
        unacked.clone(),
        outstanding.clone(),
        token.clone(),
        violations.clone(),
    );
    let (g, tp) = (group.clone(), topic.clone());
    let writer = tokio::spawn(async move {
        let mut batch = Vec::new();
        let mut acked = 0;
        while rx.recv_many(&mut batch, 50).await > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            // Before acknowledging: nothing committed may pass an unacknowledged message.
            let c = committed(&g, &tp).await;
            for (p, offsets) in u.lock().unwrap().iter() {
                if let (Some(Some(c)), Some(low)) = (c.get(p), offsets.first()) {
                    if c > low {
                        v.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            for (job, partition, offset, ack) in batch.drain(..) {
                w.lock().unwrap().entry(job.key).or_default().push(job.seq);
                u.lock()
                    .unwrap()
                    .get_mut(&partition)
                    .unwrap()
                    .remove(&offset);
                o.fetch_sub(1, Ordering::SeqCst);
                ack.done();
                acked += 1;
            }
            if acked == total {
                t.cancel();
            }
        }
    });
    let (u, o, pk) = (unacked.clone(), outstanding.clone(), peak.clone());
    let stats = ConsumerLoop::<Job>::builder(&client())
        .group(&group)
        .consumer(|c| c.topics([&topic]).set("auto.offset.reset", "earliest"))
        .order_by(OrderBy::Key)
        .max_concurrent(max_concurrent)
        .commit_interval(Duration::from_millis(20))
        .run_with_ack(
            move |record, ack| {
                let (tx, u, o, pk) = (tx.clone(), u.clone(), o.clone(), pk.clone());
                async move {
                    let now = o.fetch_add(1, Ordering::SeqCst) + 1;
                    pk.fetch_max(now, Ordering::SeqCst);
                    u.lock()
                        .unwrap()
                        .entry(record.partition)
                        .or_default()
                        .insert(record.offset);
                    tx.send((record.value, record.partition, record.offset, ack))
                        .await
                        .map_err(HandlerError::fatal)?;
                    Ok(())
                }
            },
            token.clone(),
        );
    let stats = tokio::time::timeout(Duration::from_secs(120), stats)
        .await
        .expect("the loop finishes")
        .unwrap();
    writer.abort();
    assert_eq!(stats.processed, total as u64);
    let written = written.lock().unwrap().clone();
    assert_eq!(written.len(), 40);
    for (key, seqs) in &written {
        let mut sorted = seqs.clone();
        sorted.sort();
        assert_eq!(seqs, &sorted, "{key} written out of order");
        assert_eq!(seqs.len(), 15, "{key} written a wrong number of times");
    }
    let peak = peak.load(Ordering::SeqCst);
    assert!(
        peak > 40 / 3 && peak <= max_concurrent,
        "{peak} unacknowledged at most (keys may run ahead of their writes; the cap is {max_concurrent})"
    );
    assert_eq!(
        violations.load(Ordering::Relaxed),
        0,
        "a commit passed an unacknowledged message"
    );
    let c = committed(&group, &topic).await;
    assert_eq!(c.values().map(|o| o.unwrap_or(0)).sum::<i64>(), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_ack_leaves_its_message_uncommitted_for_the_next_run() {
    let topic = new_topic("runner-ack-drop", 1).await;
    produce(&topic, 20).await;
    let group = unique_name("runner-ack-drop-g");
    let run = |drop_seq: Option<i64>| {
        let seen: Arc<Mutex<Vec<i64>>> = Arc::default();
        let token = CancellationToken::new();
        let (s, t) = (seen.clone(), token.clone());
        let fut = ConsumerLoop::<Job>::builder(&client())
            .group(&group)
            .consumer(|c| c.topics([&topic]).set("auto.offset.reset", "earliest"))
            .run_with_ack(
                move |record, ack| {
                    let (s, t) = (s.clone(), t.clone());
                    async move {
                        let mut seen = s.lock().unwrap();
                        seen.push(record.value.seq);
                        if Some(record.value.seq) != drop_seq {
                            ack.done();
                        }
                        if record.value.seq == 19 {
                            t.cancel();
                        }
                        Ok::<(), HandlerError>(())
                    }
                },
                token,
            );
        async move {
            tokio::time::timeout(Duration::from_secs(60), fut)
                .await
                .unwrap()
                .unwrap();
            seen.lock().unwrap().clone()
        }
    };
    assert_eq!(run(Some(12)).await, (0..20).collect::<Vec<_>>());
    assert_eq!(committed(&group, &topic).await[&0], Some(12));
    // The next run starts again at the unacknowledged message.
    assert_eq!(run(None).await, (12..20).collect::<Vec<_>>());
    assert_eq!(committed(&group, &topic).await[&0], Some(20));
}

/// A no-op handler that counts its calls in `count` and cancels `token` at the `stop_at`-th.
fn count_then_stop(
    count: &Arc<AtomicUsize>,
    stop_at: usize,
    token: &CancellationToken,
) -> impl Fn(flowodm::consumer::Record<Job>) -> std::future::Ready<Result<(), HandlerError>>
       + Send
       + Sync
       + 'static {
    let (c, t) = (count.clone(), token.clone());
    move |_record| {
        if c.fetch_add(1, Ordering::SeqCst) + 1 == stop_at {
            t.cancel();
        }
        std::future::ready(Ok(()))
    }
}

/// A registry on a local port: `GET /schemas/ids/{id}` gets the text `schemas(id)` gives, and
/// everything else a 503; with the count of 503 answers (one per fetch that failed: the
/// registry clients of these tests do not retry).
async fn fake_registry(
    schemas: impl Fn(u32) -> Option<String> + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    fake_registry_with(schemas, false).await
}

/// [`fake_registry`]; when `silent`, a request it has no schema for gets no answer at all (the
/// connection stays open), and is counted.
async fn fake_registry_with(
    schemas: impl Fn(u32) -> Option<String> + Send + Sync + 'static,
    silent: bool,
) -> (String, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let refused = Arc::new(AtomicUsize::new(0));
    let (r, schemas) = (refused.clone(), Arc::new(schemas));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (r, schemas) = (r.clone(), schemas.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&request);
                let schema = request
                    .strip_prefix("GET /schemas/ids/")
                    .and_then(|rest| rest.split([' ', '?']).next())
                    .and_then(|id| id.parse().ok())
                    .and_then(|id| schemas(id));
                let answer = match schema {
                    Some(text) => {
                        let body = serde_json::json!({ "schema": text }).to_string();
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/vnd.schemaregistry.v1+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                    None if silent => {
                        r.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return;
                    }
                    None => {
                        r.fetch_add(1, Ordering::SeqCst);
                        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_string()
                    }
                };
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    (url, refused)
}

/// The stack registry's id of `Job`'s schema, an id it does not give, and the schema's text.
async fn job_schema_ids() -> (u32, u32, String) {
    let real = SchemaRegistryClient::new(&registry_url()).unwrap();
    let known = Codec::<Job>::new(real.clone())
        .unwrap()
        .schema_id()
        .await
        .unwrap();
    let text = real.schema(known).await.unwrap().text;
    (known, known + 1_000_000, text)
}

/// A `Job` framed with the writer schema id `id`.
fn framed_job(id: u32, seq: i64) -> Vec<u8> {
    let job = Job {
        key: format!("k{seq}"),
        seq,
    };
    let mut payload = Vec::new();
    Codec::<Job>::encode_with_id(id, &job, &mut payload).unwrap();
    payload
}

/// A fake registry that gives `text` for `known`, and for `other` only once `back` is set.
async fn registry_that_gives_other_when(
    known: u32,
    other: u32,
    text: String,
    back: &Arc<AtomicBool>,
) -> (String, Arc<AtomicUsize>) {
    let b = back.clone();
    fake_registry(move |id| {
        (id == known || (id == other && b.load(Ordering::SeqCst))).then(|| text.clone())
    })
    .await
}

/// A registry that answers every request with 503, and the count of its answers.
async fn unavailable_registry() -> (String, Arc<AtomicUsize>) {
    fake_registry(|_| None).await
}

/// Whether `count` reaches `n` within `within` (checked every 10 ms).
async fn reaches(count: &AtomicUsize, n: usize, within: Duration) -> bool {
    let give_up = tokio::time::Instant::now() + within;
    while count.load(Ordering::SeqCst) < n {
        if tokio::time::Instant::now() >= give_up {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// Cancels `token` once the registry has been asked `times` times (or after 15 s).
fn cancel_when_asked(asked: Arc<AtomicUsize>, times: usize, token: &CancellationToken) {
    let t = token.clone();
    tokio::spawn(async move {
        reaches(&asked, times, Duration::from_secs(15)).await;
        t.cancel();
    });
}

/// A client of the stack's broker whose registry is at `url`, asked once per fetch.
fn client_of_registry(url: String) -> Client {
    let registry = SchemaRegistryClient::builder(url)
        .max_retries(0)
        .build()
        .unwrap();
    Client::new(KafkaConfig::new(bootstrap_servers()), registry)
}

/// A client whose registry answers every request with 503, and the count of its requests.
async fn client_of_unavailable_registry() -> (Client, Arc<AtomicUsize>) {
    let (url, asked) = unavailable_registry().await;
    (client_of_registry(url), asked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_registry_holds_messages_uncommitted_instead_of_dead_lettering_them() {
    let recorded = flowodm_test::recorder::recorded();
    let topic = new_topic("runner-registry-down", 1).await;
    produce(&topic, 5).await;
    let group = unique_name("runner-registry-down-g");
    let run = |client: Client, stop_when_asked: Option<(Arc<AtomicUsize>, usize)>| {
        let token = CancellationToken::new();
        let handled = Arc::new(AtomicUsize::new(0));
        let handler = count_then_stop(&handled, 5, &token);
        if let Some((asked, times)) = stop_when_asked {
            cancel_when_asked(asked, times, &token);
        }
        let fut = ConsumerLoop::<Job>::builder(&client)
            .group(&group)
            .consumer(|c| c.topics([&topic]).set("auto.offset.reset", "earliest"))
            .retry_delay(Duration::from_millis(50))
            .max_retry_delay(Duration::from_millis(200))
            .run(handler, token);
        async move {
            let stats = tokio::time::timeout(Duration::from_secs(60), fut)
                .await
                .expect("the loop finishes")
                .unwrap();
            (stats, handled.load(Ordering::Relaxed))
        }
    };
    // The registry being asked six times means the first message's schema was fetched six
    // times: once, then after each wait.
    let (down, asked) = client_of_unavailable_registry().await;
    let (stats, handled) = run(down, Some((asked.clone(), 6))).await;
    assert_eq!(
        (handled, stats.processed, stats.failed, stats.dead_lettered),
        (0, 0, 0, 0),
        "nothing handled, failed or dead-lettered while the registry was away"
    );
    assert!(
        asked.load(Ordering::SeqCst) >= 6,
        "the fetch was tried again"
    );
    // Every failed fetch but the one shutdown cut short was followed by a wait, which the
    // stats and the metric count.
    assert!(stats.registry_waits >= 5, "{stats:?}");
    let waits = recorded.counter("flowodm_loop_registry_waits_total", &topic);
    assert_eq!(waits, stats.registry_waits);
    assert_eq!(
        committed(&group, &topic).await.get(&0).copied().flatten(),
        None
    );
    // The registry is back: the next run handles every message.
    let (stats, handled) = run(client(), None).await;
    assert_eq!(
        (
            handled,
            stats.processed,
            stats.dead_lettered,
            stats.registry_waits
        ),
        (5, 5, 0, 0)
    );
    assert_eq!(committed(&group, &topic).await[&0], Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exactly_once_loop_commits_what_precedes_a_message_waiting_for_the_registry() {
    let recorded = flowodm_test::recorder::recorded();
    let input = new_topic("runner-eos-registry-in", 1).await;
    let output = new_topic("runner-eos-registry-out", 1).await;
    // Jobs 0..5 under the stack registry's schema id `known`, then job 5 under `other`, an id
    // the fake registry cannot give until `back` is set.
    produce(&input, 5).await;
    let (known, other, text) = job_schema_ids().await;
    produce_payloads_to(&input, 0, &[framed_job(other, 5)]).await;
    let back = Arc::new(AtomicBool::new(false));
    let (url, refused) = registry_that_gives_other_when(known, other, text, &back).await;

    // Once `other` was refused three times, the registry comes back; what was committed then
    // is remembered. The loop stops when all six are committed.
    let group = unique_name("runner-eos-registry-g");
    let token = CancellationToken::new();
    let committed_while_waiting = Arc::new(Mutex::new(None));
    let (g, t, stopper, r, seen) = (
        group.clone(),
        input.clone(),
        token.clone(),
        refused.clone(),
        committed_while_waiting.clone(),
    );
    tokio::spawn(async move {
        if !reaches(&r, 3, Duration::from_secs(30)).await {
            return; // the assertions below report it
        }
        *seen.lock().unwrap() = Some(committed(&g, &t).await.get(&0).copied().flatten());
        back.store(true, Ordering::SeqCst);
        while committed(&g, &t).await.get(&0).copied().flatten() != Some(6) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stopper.cancel();
    });
    let producer = client()
        .producer::<Receipt>()
        .topic(&output)
        .transactional(unique_name("runner-eos-registry-txn"))
        .build()
        .unwrap();
    let run = ConsumerLoop::<Job>::builder(&client_of_registry(url))
        .group(&group)
        .consumer(|c| c.topics([&input]).set("auto.offset.reset", "earliest"))
        .retry_delay(Duration::from_millis(50))
        .max_retry_delay(Duration::from_millis(200))
        .poll_timeout(Duration::from_millis(200))
        .run_exactly_once(
            producer,
            |r| async move {
                let Job { key, seq } = r.value;
                Ok::<_, HandlerError>(vec![Receipt { key, seq }])
            },
            token,
        );
    let stats = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the loop finishes")
        .unwrap();

    assert_eq!(
        *committed_while_waiting.lock().unwrap(),
        Some(Some(5)),
        "the five jobs before the waiting one were committed while it waited"
    );
    assert_eq!((stats.processed, stats.dead_lettered), (6, 0), "{stats:?}");
    let refused = refused.load(Ordering::SeqCst);
    assert!(stats.registry_waits >= 3, "{stats:?}");
    // Each try asks for the schema once: no second request inside a transaction, none per
    // message of a batch.
    assert_eq!(refused as u64, stats.registry_waits, "{stats:?}");
    assert_eq!(
        recorded.counter("flowodm_loop_registry_waits_total", &input),
        stats.registry_waits
    );
    assert_eq!(
        committed_receipts(&output).await,
        (0..6).collect::<Vec<_>>(),
        "each job published once, in the same run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_waiting_for_the_registry_holds_its_share_of_max_concurrent() {
    // docs/loops.md: a waiting lane holds its worker, so with `max_concurrent` 1 a partition
    // whose messages' schema is known waits too, until the registry comes back.
    let topic = new_topic("runner-registry-share", 2).await;
    let (known, other, text) = job_schema_ids().await;
    let back = Arc::new(AtomicBool::new(false));
    let (url, refused) = registry_that_gives_other_when(known, other, text, &back).await;
    let token = CancellationToken::new();
    let handled = Arc::new(AtomicUsize::new(0));
    let run = tokio::spawn(
        ConsumerLoop::<Job>::builder(&client_of_registry(url))
            .group(unique_name("runner-registry-share-g"))
            .consumer(|c| c.topics([&topic]).set("auto.offset.reset", "earliest"))
            .max_concurrent(1)
            .retry_delay(Duration::from_millis(50))
            .max_retry_delay(Duration::from_millis(200))
            .run(count_then_stop(&handled, 6, &token), token.clone()),
    );
    // Partition 0's message waits (its lane has the one worker); then partition 1 gets five
    // messages whose schema the registry gives.
    produce_payloads_to(&topic, 0, &[framed_job(other, 0)]).await;
    assert!(
        reaches(&refused, 2, Duration::from_secs(30)).await,
        "the lane waits"
    );
    let payloads: Vec<Vec<u8>> = (1..6).map(|seq| framed_job(known, seq)).collect();
    produce_payloads_to(&topic, 1, &payloads).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        handled.load(Ordering::SeqCst),
        0,
        "partition 1 waited for the one worker"
    );
    back.store(true, Ordering::SeqCst);
    let stats = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("every message is handled once the registry is back")
        .unwrap()
        .unwrap();
    assert_eq!((stats.processed, stats.dead_lettered), (6, 0), "{stats:?}");
    assert!(stats.registry_waits >= 2, "{stats:?}");
}

/// The `waits` of the warnings the loops logged while waiting for the registry, by topic.
static REGISTRY_WARNINGS: Mutex<Vec<(String, u64)>> = Mutex::new(Vec::new());

/// Installs (once per test binary) a `tracing` subscriber that keeps those warnings.
fn capture_registry_warnings() {
    use tracing::field::{Field, Visit};
    use tracing_subscriber::layer::{Context, SubscriberExt};

    #[derive(Default)]
    struct Fields {
        message: String,
        topic: String,
        waits: Option<u64>,
    }
    impl Visit for Fields {
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "topic" {
                self.topic = value.to_string();
            }
        }
        fn record_u64(&mut self, field: &Field, value: u64) {
            if field.name() == "waits" {
                self.waits = Some(value);
            }
        }
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            match field.name() {
                "message" => self.message = format!("{value:?}"),
                "topic" => self.topic = format!("{value:?}").trim_matches('"').to_string(),
                _ => {}
            }
        }
    }
    struct Capture;
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            if *event.metadata().level() != tracing::Level::WARN {
                return;
            }
            let mut fields = Fields::default();
            event.record(&mut fields);
            if let (true, Some(waits)) = (
                fields.message.contains("waiting for the registry"),
                fields.waits,
            ) {
                REGISTRY_WARNINGS
                    .lock()
                    .unwrap()
                    .push((fields.topic, waits));
            }
        }
    }
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Capture))
            .expect("one subscriber per test binary");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_waiting_for_the_registry_warns_at_its_first_wait_and_every_60_tries() {
    capture_registry_warnings();
    let topic = new_topic("runner-registry-warn", 1).await;
    produce(&topic, 1).await;
    let (down, asked) = client_of_unavailable_registry().await;
    let token = CancellationToken::new();
    cancel_when_asked(asked, 130, &token);
    let run = ConsumerLoop::<Job>::builder(&down)
        .group(unique_name("runner-registry-warn-g"))
        .consumer(|c| c.topics([&topic]).set("auto.offset.reset", "earliest"))
        .retry_delay(Duration::from_millis(1))
        .max_retry_delay(Duration::from_millis(2))
        .run(|_record| async { Ok::<(), HandlerError>(()) }, token);
    let stats = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the loop finishes")
        .unwrap();
    assert!(stats.registry_waits > 120, "{stats:?}");
    let logged: Vec<u64> = REGISTRY_WARNINGS
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| *t == topic)
        .map(|(_, waits)| *waits)
        .collect();
    let expected: Vec<u64> = (0..stats.registry_waits).filter(|w| w % 60 == 0).collect();
    assert_eq!(logged, expected, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_asks_an_unreachable_registry_again_at_least_once_a_second() {
    // docs/loops.md: the wait follows the loop's backoff but asks again at least once a second,
    // however long the backoff has grown.
    let topic = new_topic("runner-registry-recheck", 1).await;
    produce(&topic, 1).await;
    let (down, asked) = client_of_unavailable_registry().await;
    let token = CancellationToken::new();
    let run = tokio::spawn(
        ConsumerLoop::<Job>::builder(&down)
            .group(unique_name("runner-registry-recheck-g"))
            .consumer(|c| c.topics([&topic]).set("auto.offset.reset", "earliest"))
            .retry_delay(Duration::from_secs(4))
            .max_retry_delay(Duration::from_secs(60))
            .run(
                |_record| async { Ok::<(), HandlerError>(()) },
                token.clone(),
            ),
    );
    assert!(reaches(&asked, 1, Duration::from_secs(30)).await);
    let first = std::time::Instant::now();
    assert!(reaches(&asked, 4, Duration::from_secs(20)).await);
    let took = first.elapsed();
    token.cancel();
    let stats = run.await.unwrap().unwrap();
    // Three waits of at most a second each; uncapped, the first alone would take 2–4 s.
    assert!(took < Duration::from_millis(4500), "{took:?}");
    assert_eq!((stats.processed, stats.dead_lettered), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_waiting_for_the_registry_does_not_hold_up_a_rebalance() {
    let (down, asked) = client_of_unavailable_registry().await;
    a_rebalance_does_not_wait_for_the_registry_of(down, asked, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_whose_registry_fetch_hangs_does_not_hold_up_a_rebalance() {
    // The registry takes the request and never answers: the fetch itself must give way.
    let (url, asked) = fake_registry_with(|_| None, true).await;
    a_rebalance_does_not_wait_for_the_registry_of(client_of_registry(url), asked, 1).await;
}

/// Instance A (`down`) cannot get its writer schema, so its lanes wait. Instance B joins once
/// A's registry was asked `times` times: A's partitions are revoked, and the revocation must
/// not wait for A's registry (up to A's 60 s shutdown timeout, or a 30 s request) before B
/// gets partitions to handle.
async fn a_rebalance_does_not_wait_for_the_registry_of(
    down: Client,
    asked: Arc<AtomicUsize>,
    times: usize,
) {
    let topic = new_topic("runner-registry-rebalance", 2).await;
    produce(&topic, 20).await;
    let group = unique_name("runner-registry-rebalance-g");
    let stop_a = CancellationToken::new();
    let a = tokio::spawn(
        ConsumerLoop::<Job>::builder(&down)
            .group(&group)
            .consumer(|c| {
                c.topics([&topic])
                    .set("auto.offset.reset", "earliest")
                    // Learns of B's joining within half a second.
                    .set("heartbeat.interval.ms", "500")
            })
            .shutdown_timeout(Duration::from_secs(60))
            .run(
                |_record| async { Ok::<(), HandlerError>(()) },
                stop_a.clone(),
            ),
    );
    assert!(
        reaches(&asked, times, Duration::from_secs(30)).await,
        "A asked its registry"
    );
    let joined = std::time::Instant::now();
    let stop_b = CancellationToken::new();
    let handler = count_then_stop(&Arc::default(), 1, &stop_b);
    let b = tokio::spawn(
        ConsumerLoop::<Job>::builder(&client())
            .group(&group)
            .consumer(|c| {
                c.topics([&topic])
                    .set("auto.offset.reset", "earliest")
                    .set("heartbeat.interval.ms", "500")
            })
            .run(handler, stop_b.clone()),
    );
    let b_stats = tokio::time::timeout(Duration::from_secs(50), b)
        .await
        .expect("B handles a message before A's shutdown timeout would have passed")
        .unwrap()
        .unwrap();
    assert!(b_stats.processed >= 1);
    assert!(
        joined.elapsed() < Duration::from_secs(15),
        "B waited {:?} for a partition",
        joined.elapsed()
    );
    stop_a.cancel();
    let a_stats = tokio::time::timeout(Duration::from_secs(30), a)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((a_stats.processed, a_stats.dead_lettered), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_that_auto_commit_still_commit_only_finished_messages() {
    // `RealTime` and `HighThroughput` turn on `enable.auto.commit`, with which a plain consumer
    // stores each message it handed out and librdkafka commits what is stored on its own
    // clock; a loop must still store only finished ones, at every moment.
    for profile in [Profile::RealTime, Profile::HighThroughput] {
        let topic = new_topic("runner-auto-commit", 1).await;
        produce(&topic, 20).await;
        let group = unique_name("runner-auto-commit-g");
        let token = CancellationToken::new();
        let seen_while_busy: Arc<Mutex<Option<Option<i64>>>> = Arc::default();
        let (t, g, tp, seen) = (
            token.clone(),
            group.clone(),
            topic.clone(),
            seen_while_busy.clone(),
        );
        let stats = ConsumerLoop::<Job>::builder(&client())
            .group(&group)
            .profile(profile)
            .consumer(|c| {
                c.topics([&topic])
                    .set("auto.offset.reset", "earliest")
                    .set("auto.commit.interval.ms", "100")
            })
            .run_with_ack(
                move |record, ack| {
                    let (t, g, tp, seen) = (t.clone(), g.clone(), tp.clone(), seen.clone());
                    async move {
                        if record.value.seq == 0 {
                            // Every message is fetched by now, none finished: several
                            // automatic commits go by.
                            tokio::time::sleep(Duration::from_millis(700)).await;
                            let c = committed(&g, &tp).await;
                            *seen.lock().unwrap() = Some(c.get(&0).copied().flatten());
                        }
                        // Message 12 is never acknowledged: nothing from it on is finished.
                        if record.value.seq != 12 {
                            ack.done();
                        }
                        if record.value.seq == 19 {
                            t.cancel();
                        }
                        Ok::<(), HandlerError>(())
                    }
                },
                token.clone(),
            );
        tokio::time::timeout(Duration::from_secs(60), stats)
            .await
            .expect("the loop finishes")
            .unwrap();
        assert_eq!(
            *seen_while_busy.lock().unwrap(),
            Some(None),
            "{profile:?}: committed while no message was finished"
        );
        assert_eq!(
            committed(&group, &topic).await[&0],
            Some(12),
            "{profile:?}: committed past the unfinished message"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_can_dead_letter_its_message_with_the_original_bytes() {
    let topic = new_topic("runner-ack-dlq", 1).await;
    produce(&topic, 6).await;
    let group = unique_name("runner-ack-dlq-g");
    let token = CancellationToken::new();
    let t = token.clone();
    let stats = ConsumerLoop::<Job>::builder(&client())
        .group(&group)
        .consumer(|c| c.topics([&topic]).set("auto.offset.reset", "earliest"))
        .run_with_ack(
            move |record, ack| {
                let t = t.clone();
                async move {
                    let seq = record.value.seq;
                    // A writer thread outside the runtime gives the verdict.
                    std::thread::spawn(move || {
                        if seq == 3 {
                            ack.dead_letter("row rejected: total_amount out of range");
                        } else {
                            ack.done();
                        }
                    });
                    if seq == 5 {
                        t.cancel();
                    }
                    Ok::<(), HandlerError>(())
                }
            },
            token.clone(),
        )
        .await
        .unwrap();
    assert_eq!((stats.processed, stats.dead_lettered), (5, 1));
    assert_eq!(committed(&group, &topic).await[&0], Some(6));

    let dlq: BaseConsumer = plaintext_config()
        .set("group.id", unique_name("dlq-reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    dlq.subscribe(&[&format!("{topic}.DLQ")]).unwrap();
    let m = loop {
        if let Some(m) = dlq.poll(Duration::from_millis(200)) {
            break m.unwrap().detach();
        }
    };
    let headers: HashMap<String, String> = m
        .headers()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h.key.to_string(),
                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
            )
        })
        .collect();
    assert_eq!(headers["flowodm.error.kind"], "handler");
    assert_eq!(
        headers["flowodm.error.message"],
        "row rejected: total_amount out of range"
    );
    assert_eq!(headers["flowodm.original.offset"], "3");
    // The original bytes decode to the original message.
    let codec =
        flowodm::codec::Codec::<Job>::new(SchemaRegistryClient::new(&registry_url()).unwrap())
            .unwrap();
    let job = codec.decode(m.payload().unwrap()).await.unwrap();
    assert_eq!(job.seq, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_retried_amid_fast_ones_holds_the_commit_until_it_finishes() {
    // One partition, ordered by key: while the message at offset 20 waits for its retries, the
    // messages of the other keys after it are handled (and finished in runs), yet the committed
    // offset must not pass 20 until it succeeds.
    let topic = new_topic("runner-retry-run", 1).await;
    let total: i64 = 300;
    produce(&topic, total).await;
    let group = unique_name("runner-retry-run-g");
    const SLOW: i64 = 20;
    let attempts = Arc::new(AtomicUsize::new(0));
    let handled: Arc<Mutex<Vec<i64>>> = Arc::default();
    // (handled by then, committed offset) as seen by the slow message's second attempt.
    type Seen = Option<(usize, Option<i64>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let token = CancellationToken::new();
    let shared = (
        attempts.clone(),
        handled.clone(),
        seen.clone(),
        count.clone(),
        token.clone(),
        group.clone(),
        topic.clone(),
    );
    let run = ConsumerLoop::<Job>::builder(&client())
        .group(&group)
        .consumer(|c| c.topics([&topic]).set("auto.offset.reset", "earliest"))
        .order_by(OrderBy::Key)
        .max_concurrent(10)
        .max_retries(3)
        .retry_delay(Duration::from_millis(300))
        .commit_interval(Duration::from_millis(20))
        .poll_timeout(Duration::from_millis(50))
        .run(
            move |record| {
                let (attempts, handled, seen, count, token, g, t) = shared.clone();
                async move {
                    let seq = record.value.seq;
                    assert_eq!(seq, record.offset, "one partition: offset = seq");
                    if seq == SLOW {
                        match attempts.fetch_add(1, Ordering::SeqCst) {
                            0 => return Err(HandlerError::retryable("first attempt fails")),
                            1 => {
                                // Give the other keys time to finish and commit.
                                tokio::time::sleep(Duration::from_millis(300)).await;
                                let by_then = handled.lock().unwrap().len();
                                let c = committed(&g, &t).await.get(&0).copied().flatten();
                                *seen.lock().unwrap() = Some((by_then, c));
                                return Err(HandlerError::retryable("second attempt fails"));
                            }
                            _ => {}
                        }
                    }
                    handled.lock().unwrap().push(seq);
                    if count.fetch_add(1, Ordering::Relaxed) + 1 == total as usize {
                        token.cancel();
                    }
                    Ok::<(), HandlerError>(())
                }
            },
            token.clone(),
        );
    let stats = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the loop finishes")
        .unwrap();
    assert_eq!(stats.processed, total as u64);
    assert_eq!(stats.retried, 2);
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    let (by_then, committed_then) = seen.lock().unwrap().expect("the second attempt ran");
    assert!(
        by_then > (SLOW as usize) + 50,
        "other keys kept going during the retries (only {by_then} handled)"
    );
    // Everything before it was committed, nothing after it.
    assert_eq!(
        committed_then,
        Some(SLOW),
        "while offset {SLOW} was unfinished the commit was {committed_then:?}"
    );
    // Each message once (the slow one after its retries); everything committed at the end.
    let mut handled = handled.lock().unwrap().clone();
    handled.sort();
    assert_eq!(handled, (0..total).collect::<Vec<_>>());
    assert_eq!(committed(&group, &topic).await.get(&0), Some(&Some(total)));
}

#[tokio::test(flavor = "current_thread")]
async fn on_one_thread_handlers_ready_at_once_and_handlers_that_wait_keep_order_and_commit_all() {
    // Lane workers start in the poller and become tasks only when a handler has to wait; on a
    // current-thread runtime both kinds must interleave without losing or reordering anything.
    let topic = new_topic("runner-one-thread", 3).await;
    let total: i64 = 2000;
    produce(&topic, total).await;
    let group = unique_name("runner-one-thread-g");
    let handled: Arc<Mutex<HashMap<i32, Vec<i64>>>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let token = CancellationToken::new();
    let shared = (handled.clone(), count.clone(), token.clone());
    let run = ConsumerLoop::<Job>::builder(&client())
        .group(&group)
        .consumer(|c| c.topics([&topic]).set("auto.offset.reset", "earliest"))
        .max_concurrent(4)
        .run(
            move |record| {
                let (handled, count, token) = shared.clone();
                async move {
                    // Most are ready at once; every 50th waits a little.
                    if record.value.seq % 50 == 0 {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    handled
                        .lock()
                        .unwrap()
                        .entry(record.partition)
                        .or_default()
                        .push(record.offset);
                    if count.fetch_add(1, Ordering::Relaxed) + 1 == total as usize {
                        token.cancel();
                    }
                    Ok::<(), HandlerError>(())
                }
            },
            token.clone(),
        );
    let stats = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the loop finishes")
        .unwrap();
    assert_eq!(stats.processed, total as u64);
    let handled = handled.lock().unwrap().clone();
    let mut seen = 0;
    for (p, offsets) in &handled {
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(
            offsets, &expected,
            "partition {p}: each offset once, in order"
        );
        seen += offsets.len();
    }
    assert_eq!(seen, total as usize);
    let c = committed(&group, &topic).await;
    assert_eq!(c.values().map(|o| o.unwrap_or(0)).sum::<i64>(), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_multi_thread_runtime_handlers_run_beside_the_poller_never_on_its_thread() {
    // Lanes are tasks of their own, so a handler that computes for a while (here without an
    // await) never holds up fetching: none runs on the thread that polls (the test's own, which
    // runs the loop). Order and commits hold throughout.
    let topic = new_topic("runner-cpu", 3).await;
    let total: i64 = 600;
    produce(&topic, total).await;
    let group = unique_name("runner-cpu-g");
    let polling_thread = std::thread::current().id();
    let on_poller = Arc::new(AtomicUsize::new(0));
    let handled: Arc<Mutex<HashMap<i32, Vec<i64>>>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let token = CancellationToken::new();
    let shared = (
        on_poller.clone(),
        handled.clone(),
        count.clone(),
        token.clone(),
    );
    let run = ConsumerLoop::<Job>::builder(&client())
        .group(&group)
        .consumer(|c| c.topics([&topic]).set("auto.offset.reset", "earliest"))
        .max_concurrent(3)
        .run(
            move |record| {
                let (on_poller, handled, count, token) = shared.clone();
                // Computes for 300 µs without an await.
                let until = std::time::Instant::now() + Duration::from_micros(300);
                while std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
                if std::thread::current().id() == polling_thread {
                    on_poller.fetch_add(1, Ordering::Relaxed);
                }
                handled
                    .lock()
                    .unwrap()
                    .entry(record.partition)
                    .or_default()
                    .push(record.offset);
                if count.fetch_add(1, Ordering::Relaxed) + 1 == total as usize {
                    token.cancel();
                }
                async { Ok::<(), HandlerError>(()) }
            },
            token.clone(),
        );
    let stats = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the loop finishes")
        .unwrap();
    assert_eq!(stats.processed, total as u64);
    let on_poller = on_poller.load(Ordering::Relaxed);
    assert_eq!(
        on_poller, 0,
        "{on_poller} of {total} handler calls ran on the polling thread"
    );
    let handled = handled.lock().unwrap().clone();
    for (p, offsets) in &handled {
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(
            offsets, &expected,
            "partition {p}: each offset once, in order"
        );
    }
    let c = committed(&group, &topic).await;
    assert_eq!(c.values().map(|o| o.unwrap_or(0)).sum::<i64>(), total);
}

//! Consumer loops sharing a group while members come and go: a second instance joining mid-run
//! takes partitions, a third one leaving hands its partitions back, nothing is lost, and no
//! message whose offset was committed before a revocation is handled again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flowodm::registry::SchemaRegistryClient;
use flowodm::runner::{CancellationToken, ConsumerLoop, HandlerError, LoopStats};
use flowodm::{Client, KafkaConfig, Model};
use flowodm_test::{bootstrap_servers, new_topic, plaintext_config, registry_url, unique_name};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

#[derive(Model, Debug, Clone, PartialEq)]
#[flowodm(
    topic = "runner-rebalance",
    key = "key",
    namespace = "dev.flowodm.rebalance"
)]
struct Task {
    key: String,
    seq: i64,
}

const PARTITIONS: i32 = 6;
const TOTAL: i64 = 3_000;

fn client() -> Client {
    Client::new(
        KafkaConfig::new(bootstrap_servers()),
        SchemaRegistryClient::new(&registry_url()).unwrap(),
    )
}

/// One handling of a message: which instance, where, and when (a global sequence number, so
/// handlings and revocations are ordered).
#[derive(Debug, Clone, Copy)]
struct Handled {
    instance: usize,
    partition: i32,
    offset: i64,
    seq: u64,
}

/// A revocation: when (after its commit), by which instance, and the group's committed offsets
/// of the revoked partitions at that moment.
#[derive(Debug, Clone)]
struct Revoked {
    instance: usize,
    seq: u64,
    committed: BTreeMap<i32, i64>,
}

/// What the instances record.
#[derive(Default)]
struct Log {
    clock: AtomicU64,
    handled: Mutex<Vec<Handled>>,
    started: Mutex<Vec<(usize, i32, i64)>>,
    revoked: Mutex<Vec<Revoked>>,
    /// The partitions each instance was last assigned.
    assigned: Mutex<BTreeMap<usize, Vec<i32>>>,
    /// Every assignment, in order: (instance, partitions).
    assignments: Mutex<Vec<(usize, Vec<i32>)>>,
}

impl Log {
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }

    fn handled_by(&self, instance: usize) -> usize {
        let handled = self.handled.lock().unwrap();
        handled.iter().filter(|h| h.instance == instance).count()
    }

    fn distinct(&self) -> usize {
        let handled = self.handled.lock().unwrap();
        let set: BTreeSet<(i32, i64)> = handled.iter().map(|h| (h.partition, h.offset)).collect();
        set.len()
    }
}

/// Reads the group's committed offsets without joining it.
struct Committed(BaseConsumer);

impl Committed {
    fn new(group: &str) -> Self {
        Committed(
            plaintext_config()
                .set("group.id", group)
                .create()
                .expect("offset reader"),
        )
    }

    fn of(&self, topic: &str, partitions: &[i32]) -> BTreeMap<i32, i64> {
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            tpl.add_partition(topic, *p);
        }
        let got = self
            .0
            .committed_offsets(tpl, Duration::from_secs(10))
            .expect("committed offsets");
        got.elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect()
    }
}

/// Starts instance `instance` of the loop; in-flight work may take `shutdown_timeout` to finish
/// at shutdown and at a revocation.
fn start(
    instance: usize,
    topic: &str,
    group: &str,
    log: &Arc<Log>,
    token: &CancellationToken,
    shutdown_timeout: Duration,
) -> tokio::task::JoinHandle<flowodm::Result<LoopStats>> {
    let reader = Arc::new(Committed::new(group));
    let (on_revoke_log, on_assign_log, handler_log) = (log.clone(), log.clone(), log.clone());
    let revoke_topic = topic.to_string();
    let run = ConsumerLoop::<Task>::builder(&client())
        .group(group)
        .consumer(|c| {
            c.topics([topic])
                .set("auto.offset.reset", "earliest")
                // Rebalances within a second, not LongRunning's minute.
                .set("heartbeat.interval.ms", "300")
                .set("session.timeout.ms", "6000")
                .on_assign(move |parts| {
                    let parts: Vec<i32> = parts.iter().map(|p| p.partition).collect();
                    on_assign_log
                        .assignments
                        .lock()
                        .unwrap()
                        .push((instance, parts.clone()));
                    on_assign_log
                        .assigned
                        .lock()
                        .unwrap()
                        .insert(instance, parts);
                })
                .on_revoke(move |parts| {
                    // Runs after the loop finished the partitions' in-flight messages and the
                    // consumer committed: what is committed now must never be handled again.
                    let parts: Vec<i32> = parts.iter().map(|p| p.partition).collect();
                    let committed = reader.of(&revoke_topic, &parts);
                    let seq = on_revoke_log.tick();
                    on_revoke_log.revoked.lock().unwrap().push(Revoked {
                        instance,
                        seq,
                        committed,
                    });
                    on_revoke_log
                        .assigned
                        .lock()
                        .unwrap()
                        .insert(instance, vec![]);
                })
        })
        .max_concurrent(10)
        .commit_interval(Duration::from_millis(100))
        .shutdown_timeout(shutdown_timeout)
        .run(
            move |record| {
                let log = handler_log.clone();
                async move {
                    let seq = log.tick();
                    log.started
                        .lock()
                        .unwrap()
                        .push((instance, record.partition, record.offset));
                    let delay = 2 + rand::random::<u64>() % 8;
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    log.handled.lock().unwrap().push(Handled {
                        instance,
                        partition: record.partition,
                        offset: record.offset,
                        seq,
                    });
                    Ok::<(), HandlerError>(())
                }
            },
            token.clone(),
        );
    tokio::spawn(run)
}

impl Log {
    /// What happened so far, for a failure message.
    fn summary(&self) -> String {
        let handled = self.handled.lock().unwrap();
        let mut per: BTreeMap<(usize, i32), (usize, i64)> = BTreeMap::new();
        for h in handled.iter() {
            let e = per.entry((h.instance, h.partition)).or_insert((0, -1));
            e.0 += 1;
            e.1 = e.1.max(h.offset);
        }
        let done: BTreeSet<(usize, i32, i64)> = handled
            .iter()
            .map(|h| (h.instance, h.partition, h.offset))
            .collect();
        let unfinished: Vec<_> = self
            .started
            .lock()
            .unwrap()
            .iter()
            .filter(|s| !done.contains(s))
            .cloned()
            .collect();
        format!(
            "unfinished: {unfinished:?}\nhandled (instance, partition) -> (count, highest offset): {per:?}\n\
             assignments: {:?}\nrevocations: {:?}",
            self.assignments.lock().unwrap(),
            self.revoked.lock().unwrap()
        )
    }
}

/// Waits until `done` holds, for at most `limit`.
async fn until(log: &Log, what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    eprintln!("waiting until {what}");
    while !done() {
        assert!(
            started.elapsed() < limit,
            "timed out waiting until {what}\n{}",
            log.summary()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("{what}: after {:?}", started.elapsed());
}

/// A topic of `TOTAL` messages over `PARTITIONS` partitions; returns it with where each
/// message is.
async fn topic_with_tasks() -> (String, BTreeSet<(i32, i64)>) {
    let topic = new_topic("runner-rebalance", PARTITIONS).await;
    let producer = client().producer::<Task>().topic(&topic).build().unwrap();
    let tasks: Vec<Task> = (0..TOTAL)
        .map(|seq| Task {
            key: format!("k{seq}"),
            seq,
        })
        .collect();
    let mut expected = BTreeSet::new();
    for d in producer.send_many(&tasks).await {
        let d = d.unwrap();
        expected.insert((d.partition, d.offset));
    }
    assert_eq!(expected.len(), TOTAL as usize);
    (topic, expected)
}

/// Each revocation drains in-flight work for up to the shutdown timeout; kept short here, see
/// `a_revocation_finishes_in_flight_work_without_waiting_out_the_timeout`.
const DRAIN: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_joining_and_leaving_lose_nothing_and_never_redo_committed_work() {
    let started = Instant::now();
    let (topic, expected) = topic_with_tasks().await;
    let group = unique_name("runner-rebalance-g");

    let log = Arc::new(Log::default());
    let limit = Duration::from_secs(60);
    let (token_a, token_b, token_c) = (
        CancellationToken::new(),
        CancellationToken::new(),
        CancellationToken::new(),
    );
    let a = start(0, &topic, &group, &log, &token_a, DRAIN);
    until(&log, "A handled 300 messages", limit, || {
        log.handled_by(0) >= 300
    })
    .await;

    // B joins: the partitions are split.
    let b = start(1, &topic, &group, &log, &token_b, DRAIN);
    until(&log, "B handled messages", limit, || {
        log.handled_by(1) >= 100
    })
    .await;
    let b_joined = log
        .assignments
        .lock()
        .unwrap()
        .iter()
        .position(|(i, _)| *i == 1);
    let split = log.assigned.lock().unwrap().clone();

    // C joins, takes partitions, and leaves part-way: its partitions move back.
    let c = start(2, &topic, &group, &log, &token_c, DRAIN);
    until(&log, "C handled messages", limit, || {
        log.handled_by(2) >= 100
    })
    .await;
    token_c.cancel();
    c.await.unwrap().expect("C stops cleanly");
    let after_c = log.handled.lock().unwrap().len();

    until(&log, "every message was handled", limit, || {
        log.distinct() == TOTAL as usize
    })
    .await;
    token_a.cancel();
    token_b.cancel();
    a.await.unwrap().expect("A stops cleanly");
    b.await.unwrap().expect("B stops cleanly");

    let handled = log.handled.lock().unwrap().clone();
    let revoked = log.revoked.lock().unwrap().clone();
    let assignments = log.assignments.lock().unwrap().clone();

    // Nothing lost.
    let seen: BTreeSet<(i32, i64)> = handled.iter().map(|h| (h.partition, h.offset)).collect();
    assert_eq!(seen, expected, "some messages were never handled");

    // B took part of the partitions, A kept the rest.
    assert!(b_joined.is_some(), "B was never assigned partitions");
    let (a_parts, b_parts) = (
        split.get(&0).cloned().unwrap_or_default(),
        split.get(&1).cloned().unwrap_or_default(),
    );
    assert!(
        !a_parts.is_empty() && !b_parts.is_empty(),
        "after B joined, the partitions were not split: A {a_parts:?}, B {b_parts:?}"
    );
    assert!(
        a_parts.iter().all(|p| !b_parts.contains(p)),
        "A {a_parts:?} and B {b_parts:?} share a partition"
    );
    let b_first = assignments
        .iter()
        .position(|(i, p)| *i == 1 && !p.is_empty())
        .expect("B got partitions");
    let b_first_seq = handled
        .iter()
        .filter(|h| h.instance == 1)
        .map(|h| h.seq)
        .min()
        .unwrap();
    assert!(
        handled
            .iter()
            .any(|h| h.instance == 0 && h.seq > b_first_seq),
        "A handled nothing after B joined (assignments: {:?})",
        &assignments[b_first..]
    );

    // C's partitions moved: A and B handled messages of them after C left.
    let c_parts: BTreeSet<i32> = handled
        .iter()
        .filter(|h| h.instance == 2)
        .map(|h| h.partition)
        .collect();
    let later = &handled[after_c..];
    for p in &c_parts {
        let last_of_c = handled
            .iter()
            .filter(|h| h.instance == 2 && h.partition == *p)
            .map(|h| h.offset)
            .max()
            .unwrap();
        let left = expected
            .iter()
            .filter(|(q, o)| q == p && *o > last_of_c)
            .count();
        if left > 0 {
            assert!(
                later.iter().any(|h| h.partition == *p && h.instance != 2),
                "partition {p} of C was not taken over after C left"
            );
        }
    }

    // No message committed before a revocation was handled again, by anyone.
    let mut redone = Vec::new();
    for r in &revoked {
        for h in handled.iter().filter(|h| h.seq > r.seq) {
            if r.committed.get(&h.partition).is_some_and(|c| h.offset < *c) {
                redone.push((r.instance, r.committed[&h.partition], *h));
            }
        }
    }
    assert!(
        redone.is_empty(),
        "{} handling(s) of messages committed before a revocation, e.g. \
         (revoked by, committed offset, handling) {:?}",
        redone.len(),
        &redone[..redone.len().min(5)]
    );

    // Every offset is committed at the end.
    let lag = client()
        .admin()
        .unwrap()
        .group_lag(&group, Some(vec![topic.clone()]), Duration::from_secs(10))
        .await
        .unwrap();
    for l in &lag {
        assert_eq!(
            l.committed,
            Some(l.end),
            "partition {} not fully committed",
            l.partition
        );
    }
    let duplicates = handled.len() - seen.len();
    eprintln!(
        "{} handlings of {TOTAL} messages ({duplicates} repeated, of uncommitted work), \
         {} revocations, {} assignments, {:?}",
        handled.len(),
        revoked.len(),
        assignments.len(),
        started.elapsed()
    );
}

/// When a member joins, the others' revoked partitions must only wait for their in-flight
/// messages (milliseconds here), which then count as done: nobody handles them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revocation_finishes_in_flight_work_without_waiting_out_the_timeout() {
    let (topic, _) = topic_with_tasks().await;
    let group = unique_name("runner-rebalance-g");
    let log = Arc::new(Log::default());
    let limit = Duration::from_secs(30);
    let drain = Duration::from_secs(20);
    let (token_a, token_b) = (CancellationToken::new(), CancellationToken::new());
    let a = start(0, &topic, &group, &log, &token_a, drain);
    until(&log, "A handled 300 messages", limit, || {
        log.handled_by(0) >= 300
    })
    .await;
    let joining = Instant::now();
    let b = start(1, &topic, &group, &log, &token_b, drain);
    until(&log, "B handled a message", limit, || {
        log.handled_by(1) >= 1
    })
    .await;
    let join = joining.elapsed();
    token_a.cancel();
    token_b.cancel();
    a.await.unwrap().expect("A stops cleanly");
    b.await.unwrap().expect("B stops cleanly");
    let handled = log.handled.lock().unwrap().clone();
    let distinct: BTreeSet<(i32, i64)> = handled.iter().map(|h| (h.partition, h.offset)).collect();
    assert!(
        join < drain / 2,
        "B's first message came {join:?} after it started: the revocation waited out the \
         {drain:?} drain timeout instead of the in-flight messages"
    );
    assert_eq!(
        handled.len(),
        distinct.len(),
        "messages in flight at the revocation were handled again"
    );
}

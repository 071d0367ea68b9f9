//! The order consumer: a flowodm consumer loop that stores every order of the topic in the
//! PostgreSQL `orders` table, once.
//!
//! - **Acknowledged when durable.** The loop runs with
//!   [`run_with_ack`](flowodm::runner::LoopBuilder::run_with_ack): the handler queues its order
//!   in the [`BatchWriter`] and returns at once, and the writer acknowledges the message when the
//!   batch holding its row has committed. The loop commits a partition's offset only past
//!   acknowledged messages, so a crash (even `kill -9`) re-delivers at most the orders that were
//!   not acknowledged yet. Batches go in with a binary `COPY`; one holding a re-delivered order
//!   fails on `order_id`'s unique index and is written again with `INSERT … ON CONFLICT
//!   (order_id) DO NOTHING`, which skips the rows already there: exactly one row per order (see
//!   [`store`](crate::store)). Up to `max_in_flight` orders are handled or waiting for
//!   their commit at once, which is what lets batches grow to hundreds of rows.
//! - **Ordering.** The loop hands one customer's orders to the handler in the order they were
//!   placed ([`OrderBy::Key`]), and the writer sends all of a customer's rows to the same
//!   connection, whose batches commit one after another: each customer's orders are stored in
//!   the order they were placed.
//! - **Outages.** While PostgreSQL is away the writer keeps its batch and reconnects with
//!   backoff; unacknowledged orders pile up to `max_in_flight`, then the loop hands out no more
//!   and stops fetching. Nothing is lost and nothing goes to the dead-letter topic; only an order
//!   that the database itself rejects does (written there by the consumer, then acknowledged).
//! - **Shutdown.** On SIGTERM or SIGINT the loop stops fetching, waits for outstanding orders to
//!   be acknowledged (`shutdown_timeout`), commits their offsets and leaves the group; then the
//!   database connections close.
//!
//! Metrics go through the `metrics` facade (install any recorder to export them):
//! `orders_stored_total`, `orders_duplicates_total`, `orders_rejected_total`,
//! `orders_dead_lettered_total`, `orders_db_errors_total` (counters), `orders_batch_rows`, `orders_batch_seconds` and
//! `orders_end_to_end_seconds` (histograms), next to the loop's own `flowodm_loop_*` ones.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use flowodm::consumer::Record;
use flowodm::producer::OutRecord;
use flowodm::profiles::Profile;
use flowodm::runner::{Ack, CancellationToken, ConsumerLoop, HandlerError, LoopStats, OrderBy};
use flowodm::Client;

use crate::latency::Histogram;
use crate::order::Order;
use crate::store::{
    self, BatchWriter, Database, Row, StoreError, Stored, WriterConfig, WriterStats,
};

/// How the consumer runs.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// The topic (`KAFKA_TOPIC_ORDERS`).
    pub topic: String,
    /// The consumer group (`order-store`).
    pub group: String,
    /// A static group member id: a member restarted with the same id gets its partitions back
    /// at once, without waiting for the group to notice the old one is gone.
    pub instance_id: Option<String>,
    /// Where the table is.
    pub database: Database,
    /// Orders handled or waiting for their commit at once (the loop buffers up to 20 × that
    /// while fetching).
    pub max_in_flight: usize,
    /// The batch writer's connections and batch size.
    pub writer: WriterConfig,
    /// How long in-flight orders may take to finish at shutdown.
    pub shutdown_timeout: Duration,
    /// How often finished offsets are committed.
    pub commit_interval: Duration,
    /// How often progress is logged.
    pub progress_interval: Duration,
    /// Where to write the [`ConsumerSummary`] as JSON when the consumer stops.
    pub summary_path: Option<PathBuf>,
}

impl ConsumerSettings {
    /// Defaults for `topic` and `database`: group `order-store`, 4000 in flight, 4 writer
    /// connections with batches of up to 1000 rows (`COPY` from 32), 15 s to finish at shutdown, commits every
    /// second.
    pub fn new(topic: impl Into<String>, database: Database) -> Self {
        ConsumerSettings {
            topic: topic.into(),
            group: "order-store".to_string(),
            instance_id: None,
            database,
            max_in_flight: 4000,
            writer: WriterConfig::default(),
            shutdown_timeout: Duration::from_secs(15),
            commit_interval: Duration::from_secs(1),
            progress_interval: Duration::from_secs(5),
            summary_path: None,
        }
    }
}

/// What a consumer run did.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerSummary {
    /// Orders the loop handled.
    pub processed: u64,
    /// Rows inserted.
    pub inserted: u64,
    /// Orders that were already stored (re-deliveries).
    pub duplicates: u64,
    /// Orders the database rejected (sent to the dead-letter topic).
    pub rejected: u64,
    /// Dead-lettered messages.
    pub dead_lettered: u64,
    /// Batches committed.
    pub batches: u64,
    /// Batches whose `COPY` met an order already stored.
    pub copy_conflicts: u64,
    /// Batches written with `INSERT … ON CONFLICT DO NOTHING` instead of `COPY` (small ones,
    /// and those holding orders already stored).
    pub insert_batches: u64,
    /// Failed attempts at connecting or writing (each retried).
    pub failed_attempts: u64,
    /// First and last insert (ms since the epoch; 0 if none).
    pub first_insert_ms: u64,
    /// See `first_insert_ms`.
    pub last_insert_ms: u64,
    /// End-to-end latency (created_at → row committed) of inserted rows, in milliseconds:
    /// p50, p90, p99, p99.9, max.
    pub latency_ms: [f64; 5],
    /// From created_at to the handler's start (producer, Kafka, the loop's queue), in
    /// milliseconds: p50, p90, p99, p99.9, max.
    pub received_ms: [f64; 5],
    /// How long one batch's insert took to commit, in milliseconds: p50, p90, p99, p99.9, max.
    pub commit_ms: [f64; 5],
}

fn percentiles(h: &Histogram) -> [f64; 5] {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    [
        ms(h.percentile(50.0)),
        ms(h.percentile(90.0)),
        ms(h.percentile(99.0)),
        ms(h.percentile(99.9)),
        ms(h.max()),
    ]
}

fn percentiles_json(p: &[f64; 5]) -> serde_json::Value {
    serde_json::json!({"p50": p[0], "p90": p[1], "p99": p[2], "p999": p[3], "max": p[4]})
}

impl ConsumerSummary {
    fn new(loop_stats: &LoopStats, w: &WriterStats, received: &Histogram) -> Self {
        ConsumerSummary {
            processed: loop_stats.processed,
            inserted: w.inserted.load(Ordering::Relaxed),
            duplicates: w.duplicates.load(Ordering::Relaxed),
            rejected: w.rejected.load(Ordering::Relaxed),
            dead_lettered: loop_stats.dead_lettered + w.dead_lettered.load(Ordering::Relaxed),
            batches: w.batches.load(Ordering::Relaxed),
            copy_conflicts: w.copy_conflicts.load(Ordering::Relaxed),
            insert_batches: w.insert_batches.load(Ordering::Relaxed),
            failed_attempts: w.failed_attempts.load(Ordering::Relaxed),
            first_insert_ms: w.first_insert_ms.load(Ordering::Relaxed),
            last_insert_ms: w.last_insert_ms.load(Ordering::Relaxed),
            latency_ms: percentiles(&w.latency.lock().expect("latency")),
            received_ms: percentiles(received),
            commit_ms: percentiles(&w.commit.lock().expect("commit")),
        }
    }

    /// As a JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "processed": self.processed,
            "inserted": self.inserted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "dead_lettered": self.dead_lettered,
            "batches": self.batches,
            "copy_conflicts": self.copy_conflicts,
            "insert_batches": self.insert_batches,
            "failed_attempts": self.failed_attempts,
            "first_insert_ms": self.first_insert_ms,
            "last_insert_ms": self.last_insert_ms,
            "latency_ms": percentiles_json(&self.latency_ms),
            "received_ms": percentiles_json(&self.received_ms),
            "commit_ms": percentiles_json(&self.commit_ms),
        })
    }
}

/// Migrates the table (waiting for the database if it is not up yet), then consumes until
/// `shutdown` is cancelled.
pub async fn run(
    client: &Client,
    settings: ConsumerSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<ConsumerSummary> {
    crate::topic::ensure_orders_topic(client, &settings.topic).await?;
    let mut backoff = Duration::from_millis(200);
    loop {
        match store::migrate(&settings.database).await {
            Ok(()) => break,
            Err(e) if store::is_transient(&e) && !shutdown.is_cancelled() => {
                tracing::warn!(error = %store::describe(&e), retry_in_ms = backoff.as_millis() as u64, "the database is not reachable yet; retrying the migration");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => anyhow::bail!("stopped before the database was reachable"),
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e).context("migrating the orders table"),
        }
    }
    tracing::info!(schema = ?settings.database.schema, "orders table ready");

    let (writer, writer_tasks) =
        BatchWriter::start(settings.database.clone(), settings.writer.clone());
    let stats = writer.stats().clone();

    let instance_id = settings.instance_id.clone();
    let topic = settings.topic.clone();
    let handler_writer = writer.clone();
    drop(writer);
    let received: Arc<Mutex<Histogram>> = Arc::default();
    let handler_received = received.clone();
    let in_flight = Arc::new(AtomicU64::new(0));
    let handler_in_flight = in_flight.clone();
    let progress = tokio::spawn(log_progress(
        stats.clone(),
        in_flight,
        settings.progress_interval,
    ));
    let dead_letters = Arc::new(DeadLetters::new(
        client,
        format!("{}.DLQ", settings.topic),
        stats.clone(),
    )?);
    let result = ConsumerLoop::<Order>::builder(client)
        .group(settings.group.clone())
        .profile(Profile::Reliable)
        .consumer(move |c| {
            // Fail over in seconds rather than the profile's minute.
            let c = c
                .topics([topic])
                .set("session.timeout.ms", "10000")
                .set("heartbeat.interval.ms", "2000")
                // Small fetches per partition: the loop's buffer then holds every partition's
                // orders (every customer) at once, not one partition's megabyte after another.
                .set("max.partition.fetch.bytes", "65536")
                .on_assign(|parts| {
                    let parts: Vec<i32> = parts.iter().map(|p| p.partition).collect();
                    tracing::info!(?parts, "partitions assigned");
                });
            match instance_id {
                Some(id) => c.set("group.instance.id", id),
                None => c,
            }
        })
        .order_by(OrderBy::Key)
        .max_concurrent(settings.max_in_flight)
        // The writer itself waits out database outages; a retryable error only comes from a
        // writer shutting down, and the retry budget is generous all the same.
        .max_retries(20)
        .retry_delay(Duration::from_millis(100))
        .shutdown_timeout(settings.shutdown_timeout)
        .commit_interval(settings.commit_interval)
        .run_with_ack(
            move |record: Record<Order>, ack: Ack| {
                let waited = chrono::Utc::now() - record.value.created_at;
                handler_received
                    .lock()
                    .expect("received")
                    .record(waited.to_std().unwrap_or_default());
                let (writer, dead_letters) = (handler_writer.clone(), dead_letters.clone());
                let guard = InFlight::new(&handler_in_flight);
                async move { submit(&writer, dead_letters, record, ack, guard).await }
            },
            shutdown,
        )
        .await;
    // The loop (and with it the handler's writer clone) is gone: the writers finish and stop.
    writer_tasks.close(Duration::from_secs(5)).await;
    progress.abort();
    let loop_stats = result.context("the consumer loop failed")?;
    let summary = ConsumerSummary::new(&loop_stats, &stats, &received.lock().expect("received"));
    tracing::info!(summary = %summary.to_json(), "consumer stopped");
    if let Some(path) = &settings.summary_path {
        std::fs::write(path, summary.to_json().to_string())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(summary)
}

/// Hands the order to the writer and returns: the customer's next order may start, and `ack`
/// is done when the row has committed (or, if the database rejects it, once it is on the
/// dead-letter topic), which is when the loop may commit past its offset.
async fn submit(
    writer: &BatchWriter,
    dead_letters: Arc<DeadLetters>,
    record: Record<Order>,
    ack: Ack,
    guard: InFlight,
) -> Result<(), HandlerError> {
    let row = Row::from(&record.value);
    let (partition, offset) = (record.partition, record.offset);
    let done: store::Done = Box::new(move |outcome| {
        let _guard = guard;
        match outcome {
            Ok(Stored::Inserted) => {
                tracing::info!(
                    target: "food_pipeline::consumer::orders",
                    order_id = %record.value.order_id,
                    customer_id = %record.value.customer_id,
                    partition,
                    offset,
                    "order stored"
                );
                ack.done();
            }
            Ok(Stored::Duplicate) => {
                tracing::info!(
                    target: "food_pipeline::consumer::orders",
                    order_id = %record.value.order_id,
                    partition,
                    offset,
                    "order was already stored; not written again"
                );
                ack.done();
            }
            Err(StoreError::Rejected(reason)) => {
                tokio::spawn(async move {
                    dead_letters.send(&record, &reason).await;
                    ack.done();
                });
            }
            // The writer stopped before the row was written: the Ack goes unfinished, so the
            // order is read again by whoever consumes the partition next.
            Err(StoreError::Closed) => drop(ack),
        }
    });
    writer
        .submit(row, done)
        .await
        .map_err(HandlerError::retryable)
}

/// Counts an order as in flight from its handler until its outcome.
struct InFlight(Arc<AtomicU64>);

impl InFlight {
    fn new(n: &Arc<AtomicU64>) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        InFlight(n.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Writes orders the database rejected to the dead-letter topic, as the loop does for the
/// messages it gives up on: the order (encoded again: the loop keeps the original bytes only for
/// its own dead-letter writes), its key and headers, plus `flowodm.error.kind` (`database`),
/// `flowodm.error.message` (the SQLSTATE and message) and `flowodm.original.topic` /
/// `.partition` / `.offset`. Retries until the broker acknowledges.
struct DeadLetters {
    client: Client,
    producer: flowodm::producer::Producer<Order>,
    topic: String,
    ensured: tokio::sync::OnceCell<()>,
    stats: Arc<WriterStats>,
}

impl DeadLetters {
    fn new(client: &Client, topic: String, stats: Arc<WriterStats>) -> anyhow::Result<Self> {
        let producer = client.producer::<Order>().topic(topic.clone()).build()?;
        Ok(DeadLetters {
            client: client.clone(),
            producer,
            topic,
            ensured: tokio::sync::OnceCell::new(),
            stats,
        })
    }

    async fn send(&self, record: &Record<Order>, reason: &str) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let ensured = self
                .ensured
                .get_or_try_init(|| async {
                    crate::topic::ensure_orders_topic(&self.client, &self.topic)
                        .await
                        .map(|_| ())
                })
                .await;
            let sent = match ensured {
                Err(e) => Err(e.to_string()),
                Ok(()) => {
                    let mut out = OutRecord::new(&record.value);
                    if let Some(k) = &record.key {
                        out = out.key(k.clone());
                    }
                    for (k, v) in &record.headers {
                        out = out.header(k.clone(), v.clone().unwrap_or_default());
                    }
                    let meta = [
                        ("flowodm.error.kind", "database".to_string()),
                        ("flowodm.error.message", reason.to_string()),
                        ("flowodm.original.topic", record.topic.clone()),
                        ("flowodm.original.partition", record.partition.to_string()),
                        ("flowodm.original.offset", record.offset.to_string()),
                    ];
                    for (k, v) in meta {
                        out = out.header(k, v);
                    }
                    self.producer
                        .send_record(out)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            };
            match sent {
                Ok(()) => {
                    self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("orders_dead_lettered_total").increment(1);
                    tracing::warn!(order_id = %record.value.order_id, topic = %self.topic, "rejected order written to the dead-letter topic");
                    return;
                }
                Err(e) => {
                    tracing::warn!(order_id = %record.value.order_id, error = %e, "writing to the dead-letter topic failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

async fn log_progress(stats: Arc<WriterStats>, in_flight: Arc<AtomicU64>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let mut last = 0;
    loop {
        tick.tick().await;
        let inserted = stats.inserted.load(Ordering::Relaxed);
        if inserted != last {
            let p99 = stats.latency.lock().expect("latency").percentile(99.0);
            tracing::info!(
                inserted,
                duplicates = stats.duplicates.load(Ordering::Relaxed),
                rate_per_sec = (inserted - last) as f64 / every.as_secs_f64(),
                in_flight = in_flight.load(Ordering::Relaxed),
                p99_ms = p99.as_secs_f64() * 1e3,
                "progress"
            );
            last = inserted;
        }
    }
}

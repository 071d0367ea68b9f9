//! The order producer: mock orders at a steady rate, keyed by customer, to the orders topic.
//!
//! The producer is idempotent with `acks=all` (no loss, no duplicate or reordering on retry),
//! batches for 10 ms (`linger.ms`) and compresses with snappy. Each delivery is confirmed by the
//! broker and logged with its `order_id`, partition and offset; failed deliveries are logged and
//! counted. When the run ends — its duration or count reached, or SIGTERM/SIGINT — every queued
//! order is flushed before the producer returns.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flowodm::producer::Delivery;
use flowodm::runner::CancellationToken;
use flowodm::Client;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::latency::Histogram;
use crate::order::{MockOrders, Order};

/// How the producer runs.
#[derive(Debug, Clone)]
pub struct ProducerSettings {
    /// The topic (`KAFKA_TOPIC_ORDERS`).
    pub topic: String,
    /// Orders per second; 0 for as fast as the producer goes.
    pub rate: f64,
    /// How long to produce; zero for ever (until a signal). With a rate, the run sends exactly
    /// `rate × duration` orders.
    pub duration: Duration,
    /// Stop after this many orders (also when the duration is zero).
    pub count: Option<u64>,
    /// The mock data's seed (`MOCK_SEED`).
    pub seed: u64,
    /// How often progress is logged.
    pub progress_interval: Duration,
}

impl ProducerSettings {
    /// 10 orders/s for ever with seed 42.
    pub fn new(topic: impl Into<String>) -> Self {
        ProducerSettings {
            topic: topic.into(),
            rate: 10.0,
            duration: Duration::ZERO,
            count: None,
            seed: 42,
            progress_interval: Duration::from_secs(5),
        }
    }

    /// How many orders the run sends, if that is fixed.
    pub fn planned(&self) -> Option<u64> {
        let by_time = (self.rate > 0.0 && !self.duration.is_zero())
            .then(|| (self.rate * self.duration.as_secs_f64()).round() as u64);
        match (by_time, self.count) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// What a producer run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProducerSummary {
    /// Orders handed to the producer.
    pub sent: u64,
    /// Orders the broker acknowledged.
    pub delivered: u64,
    /// Orders that could not be delivered.
    pub failed: u64,
    /// Acknowledged orders per partition.
    pub partitions: BTreeMap<i32, u64>,
    /// The first and last order ids sent.
    pub first_order_id: Option<String>,
    /// See `first_order_id`.
    pub last_order_id: Option<String>,
    /// From the first send to the end of the flush.
    pub elapsed: Duration,
    /// From `created_at` to the broker's acknowledgement, in milliseconds: p50, p90, p99, p99.9,
    /// max.
    pub ack_ms: [f64; 5],
}

impl ProducerSummary {
    /// As a JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "sent": self.sent,
            "delivered": self.delivered,
            "failed": self.failed,
            "partitions": self.partitions.iter().map(|(p, n)| (p.to_string(), *n)).collect::<BTreeMap<_, _>>(),
            "first_order_id": self.first_order_id,
            "last_order_id": self.last_order_id,
            "seconds": self.elapsed.as_secs_f64(),
            "ack_ms": {
                "p50": self.ack_ms[0],
                "p90": self.ack_ms[1],
                "p99": self.ack_ms[2],
                "p999": self.ack_ms[3],
                "max": self.ack_ms[4],
            },
        })
    }
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
    partitions: Mutex<BTreeMap<i32, u64>>,
    acked: Mutex<Histogram>,
}

/// The producer's librdkafka settings: idempotent, `acks=all`, 10 ms linger, snappy.
pub const PRODUCER_PROPERTIES: &[(&str, &str)] = &[
    ("acks", "all"),
    ("enable.idempotence", "true"),
    ("linger.ms", "10"),
    ("compression.type", "snappy"),
];

/// Produces orders until the run's end (see [`ProducerSettings`]) or `shutdown`; flushes, then
/// returns what was sent and delivered. `on_order` sees each order as it is sent (tests keep
/// them).
pub async fn run(
    client: &Client,
    settings: &ProducerSettings,
    shutdown: CancellationToken,
    mut on_order: impl FnMut(&Order),
) -> anyhow::Result<ProducerSummary> {
    crate::topic::ensure_orders_topic(client, &settings.topic).await?;
    let mut builder = client.producer::<Order>().topic(settings.topic.clone());
    for (k, v) in PRODUCER_PROPERTIES {
        builder = builder.set(*k, *v);
    }
    let producer = builder.build()?;
    // Register the schema before the clock starts.
    producer.codec().schema_id().await?;

    let counters = Arc::new(Counters::default());
    let mut mock = MockOrders::new(settings.seed);
    let planned = settings.planned();
    let mut summary = ProducerSummary::default();
    let started = Instant::now();
    let mut next_progress = started + settings.progress_interval;
    tracing::info!(topic = %settings.topic, rate = settings.rate, duration_s = settings.duration.as_secs_f64(), seed = settings.seed, planned, "producing orders");

    'produce: loop {
        if shutdown.is_cancelled() {
            break;
        }
        if planned.is_some_and(|p| summary.sent >= p) {
            break;
        }
        if !settings.duration.is_zero()
            && started.elapsed() >= settings.duration
            && settings.rate <= 0.0
        {
            break;
        }
        if settings.rate > 0.0 {
            let due = started + Duration::from_secs_f64(summary.sent as f64 / settings.rate);
            if due > Instant::now() {
                tokio::select! {
                    _ = tokio::time::sleep_until(due.into()) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
        }
        let order = mock.next_order();
        on_order(&order);
        let mut backoff = Duration::from_millis(1);
        loop {
            let (c, order_id) = (counters.clone(), order.order_id.clone());
            let created_ms = order.created_at.timestamp_millis();
            let sent = producer.send_with_callback(&order, move |result| {
                delivered(&c, &order_id, created_ms, result)
            });
            match sent {
                Ok(()) => break,
                Err(flowodm::Error::Kafka(KafkaError::MessageProduction(
                    RDKafkaErrorCode::QueueFull,
                ))) => {
                    // The local queue is full: wait for deliveries to drain it.
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => break 'produce,
                    }
                    backoff = (backoff * 2).min(Duration::from_millis(50));
                }
                Err(e) => {
                    tracing::error!(order_id = %order.order_id, error = %e, "cannot send the order");
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
        metrics::counter!("orders_produced_total").increment(1);
        if summary.first_order_id.is_none() {
            summary.first_order_id = Some(order.order_id.clone());
        }
        summary.last_order_id = Some(order.order_id);
        summary.sent += 1;
        if Instant::now() >= next_progress {
            next_progress += settings.progress_interval;
            tracing::info!(
                sent = summary.sent,
                delivered = counters.delivered.load(Ordering::Relaxed),
                rate_per_sec = summary.sent as f64 / started.elapsed().as_secs_f64(),
                "progress"
            );
        }
    }

    if shutdown.is_cancelled() {
        tracing::info!("shutdown requested; flushing queued orders");
    }
    let flush = tokio::task::spawn_blocking({
        let producer = producer.clone();
        move || producer.flush(Duration::from_secs(60))
    })
    .await?;
    if let Err(e) = flush {
        tracing::error!(error = %e, in_flight = producer.in_flight(), "flushing did not complete");
    }
    summary.elapsed = started.elapsed();
    summary.delivered = counters.delivered.load(Ordering::Relaxed);
    let failed = counters.failed.load(Ordering::Relaxed);
    // Orders neither acknowledged nor failed when the flush gave up count as failed too.
    let unconfirmed = summary.sent.saturating_sub(summary.delivered + failed);
    summary.failed = failed + unconfirmed;
    summary.partitions = counters.partitions.lock().expect("partitions").clone();
    let acked = counters.acked.lock().expect("acked");
    summary.ack_ms =
        [50.0, 90.0, 99.0, 99.9, 100.0].map(|p| acked.percentile(p).as_secs_f64() * 1e3);
    drop(acked);
    tracing::info!(summary = %summary.to_json(), "producer stopped");
    Ok(summary)
}

fn delivered(
    counters: &Counters,
    order_id: &str,
    created_ms: i64,
    result: flowodm::Result<Delivery>,
) {
    match result {
        Ok(d) => {
            let waited = chrono::Utc::now().timestamp_micros() - created_ms * 1000;
            counters
                .acked
                .lock()
                .expect("acked")
                .record(Duration::from_micros(waited.max(0) as u64));
            counters.delivered.fetch_add(1, Ordering::Relaxed);
            *counters
                .partitions
                .lock()
                .expect("partitions")
                .entry(d.partition)
                .or_default() += 1;
            tracing::info!(
                target: "food_pipeline::producer::deliveries",
                order_id,
                partition = d.partition,
                offset = d.offset,
                "order delivered"
            );
        }
        Err(e) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("orders_delivery_failed_total").increment(1);
            tracing::error!(order_id, error = %e, "order not delivered");
        }
    }
}

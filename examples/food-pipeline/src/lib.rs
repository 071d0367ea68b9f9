//! The reference pipeline's building blocks.
//!
//! For now this holds the quick-start demo: typed orders produced to Kafka in the Confluent
//! wire format with their derived schema in the registry, consumed back by a consumer group
//! (each writer schema fetched by id and compiled into a decoding plan once), and checked field
//! by field.

pub mod events;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use flowodm::codec::Codec;
use flowodm::registry::SchemaRegistryClient;
use flowodm::{KafkaConfig, Model};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

/// A small order, keyed by customer so one customer's orders stay in order.
#[derive(Debug, Clone, PartialEq, Model)]
#[flowodm(
    topic = "flowodm-demo-orders",
    key = "customer_id",
    namespace = "com.pipeline.demo"
)]
pub struct DemoOrder {
    /// `ORD-YYYYMMDD-NNNNN`.
    pub order_id: String,
    /// `CUST-XXXXX`.
    pub customer_id: String,
    /// What was ordered.
    pub item: String,
    /// How many.
    pub quantity: i32,
    /// The order's total.
    pub total_amount: f64,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// The demo run that produced it, to tell runs apart on a shared topic.
    pub run_id: String,
}

/// What one demo run did.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoReport {
    /// The topic used.
    pub topic: String,
    /// The registry id of the value schema.
    pub schema_id: u32,
    /// The orders produced, in order.
    pub produced: Vec<DemoOrder>,
    /// The orders consumed back, by order id.
    pub consumed: BTreeMap<String, DemoOrder>,
}

const MENU: [(&str, f64); 5] = [
    ("Margherita pizza", 9.5),
    ("Pad thai", 11.0),
    ("Caesar salad", 7.25),
    ("Ramen", 12.5),
    ("Falafel wrap", 6.75),
];

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn demo_orders(count: usize, run_id: &str) -> Vec<DemoOrder> {
    let created_at = now_millis();
    (0..count)
        .map(|i| {
            let (item, price) = MENU[i % MENU.len()];
            let quantity = (i % 3) as i32 + 1;
            DemoOrder {
                order_id: format!("ORD-20261122-{:05}", i + 1),
                customer_id: format!("CUST-{:05}", i % 4 + 1),
                item: item.to_string(),
                quantity,
                total_amount: price * f64::from(quantity),
                created_at: created_at + i as i64,
                run_id: run_id.to_string(),
            }
        })
        .collect()
}

async fn ensure_topic(config: &KafkaConfig, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = config.client_config().create()?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics([&new], &opts).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => bail!("cannot create topic {t}: {e}"),
        }
    }
    Ok(())
}

/// Produces `count` typed orders and consumes them back with a fresh consumer group.
pub async fn run_demo(
    kafka: &KafkaConfig,
    registry: &SchemaRegistryClient,
    count: usize,
) -> anyhow::Result<DemoReport> {
    let topic = DemoOrder::SETTINGS.topic;
    ensure_topic(kafka, topic, 3).await?;
    let codec = Codec::<DemoOrder>::new(registry.clone())?;
    let schema_id = codec
        .schema_id()
        .await
        .context("registering the demo schema")?;

    let run_id = format!("run-{}", now_millis());
    let produced = demo_orders(count, &run_id);
    let producer: FutureProducer = kafka
        .clone()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .client_config()
        .create()?;
    let mut payload = Vec::with_capacity(256);
    for order in &produced {
        payload.clear();
        codec.encode_into(order, &mut payload).await?;
        let key = order.key();
        let mut record = FutureRecord::to(topic).payload(&payload);
        if let Some(k) = &key {
            record = record.key(k);
        }
        let delivery = producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)
            .with_context(|| format!("delivering {}", order.order_id))?;
        tracing::info!(
            order_id = %order.order_id,
            partition = delivery.partition,
            offset = delivery.offset,
            "delivered"
        );
    }

    let consumer: StreamConsumer = kafka
        .clone()
        .set("group.id", format!("flowodm-demo-{run_id}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .client_config()
        .create()?;
    consumer.subscribe(&[topic])?;
    let mut consumed = BTreeMap::new();
    while consumed.len() < produced.len() {
        let msg = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .context("no message within 60 s")??;
        // The writer's schema is fetched and compiled into a plan once per schema id.
        let order = codec.decode(msg.payload().unwrap_or_default()).await?;
        consumer.commit_message(&msg, CommitMode::Async)?;
        if order.run_id == run_id {
            tracing::info!(order_id = %order.order_id, partition = msg.partition(), offset = msg.offset(), "consumed");
            consumed.insert(order.order_id.clone(), order);
        }
    }
    Ok(DemoReport {
        topic: topic.to_string(),
        schema_id,
        produced,
        consumed,
    })
}

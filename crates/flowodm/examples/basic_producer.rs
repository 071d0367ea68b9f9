//! A basic producer: creates the topic if it is missing, sends a few orders, and prints where
//! each one landed.
//!
//! ```sh
//! export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 SCHEMA_REGISTRY_URL=http://127.0.0.1:8081
//! cargo run -p flowodm --example basic_producer
//! ```
//!
//! `ORDERS_TOPIC` (default `orders`) and `ORDERS_COUNT` (default 5) change what it sends. The
//! model's schema is registered under `{topic}-value` on the first send.

use std::time::Duration;

use flowodm::admin::TopicSpec;
use flowodm::codec::CodecConfig;
use flowodm::producer::OutRecord;
use flowodm::Client;

#[path = "shared/order.rs"]
mod order;
use order::Order;

#[tokio::main]
async fn main() -> flowodm::Result<()> {
    let topic = order::topic();
    let count: u32 = std::env::var("ORDERS_COUNT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);

    // KAFKA_* and SCHEMA_REGISTRY_* from the environment.
    let client = Client::from_env()?;
    let created = client
        .admin()?
        .ensure_topic(&TopicSpec::new(&topic, 3), Duration::from_secs(30))
        .await?;
    if created {
        println!("created topic {topic} with 3 partitions");
    }

    // acks=all, idempotent, lz4: flowodm's production defaults. The schema goes under the
    // subject of the topic actually written to (`{topic}-value`).
    let producer = client
        .producer::<Order>()
        .topic(&topic)
        .codec(CodecConfig::default().subject(format!("{topic}-value")))
        .build()?;
    for i in 1..=count {
        let order = Order {
            order_id: format!("ORD-{i:05}"),
            customer_id: format!("CUST-{:05}", i % 3),
            total_cents: 1_000 + i64::from(i) * 125,
            note: (i % 2 == 0).then(|| "leave at the door".to_string()),
        };
        // The key is the customer id; the header lets consumers correlate logs.
        let record = OutRecord::new(&order).header("correlation-id", order.order_id.as_str());
        let delivery = producer.send_record(record).await?;
        println!(
            "sent {} for {} to {}:{}@{}",
            order.order_id, order.customer_id, delivery.topic, delivery.partition, delivery.offset
        );
    }
    producer.flush(Duration::from_secs(10))?;
    println!(
        "schema id {} under subject {}",
        producer.codec().schema_id().await?,
        producer.codec().subject()
    );
    Ok(())
}

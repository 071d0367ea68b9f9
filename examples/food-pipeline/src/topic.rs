//! The orders topic: 3 partitions (orders keyed by customer spread over them), snappy
//! compression, 7 days of retention. The producer and the consumer both create it when it is
//! missing, so either may start first.

use std::time::Duration;

use flowodm::admin::TopicSpec;
use flowodm::Client;

/// Partitions of the orders topic.
pub const PARTITIONS: i32 = 3;

/// Seven days, in milliseconds.
pub const RETENTION_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// The orders topic's specification.
///
/// ```
/// let spec = food_pipeline::topic::orders_topic("food-orders");
/// assert_eq!(spec.partitions, 3);
/// assert!(spec.config.contains(&("compression.type".into(), "snappy".into())));
/// assert!(spec.config.contains(&("retention.ms".into(), "604800000".into())));
/// ```
pub fn orders_topic(name: &str) -> TopicSpec {
    TopicSpec::new(name, PARTITIONS)
        .config("compression.type", "snappy")
        .config("retention.ms", RETENTION_MS.to_string())
}

/// Creates the orders topic unless it exists; `true` if it was created now.
pub async fn ensure_orders_topic(client: &Client, name: &str) -> anyhow::Result<bool> {
    let created = client
        .admin()?
        .ensure_topic(&orders_topic(name), Duration::from_secs(30))
        .await?;
    if created {
        tracing::info!(
            topic = name,
            partitions = PARTITIONS,
            "created the orders topic"
        );
    }
    Ok(created)
}

//! The quick-start demo: produce a few typed orders through Kafka and the schema registry and
//! consume them back. Reads the environment that `dev/stack env` prints.

use anyhow::bail;
use flowodm::registry::SchemaRegistryClient;
use flowodm::KafkaConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOG_LEVEL")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let count = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(10);
    let kafka = KafkaConfig::from_env()?;
    let registry = SchemaRegistryClient::from_env()?;
    let report = food_pipeline::run_demo(&kafka, &registry, count).await?;

    println!(
        "topic {} · schema id {} · produced {} · consumed {}",
        report.topic,
        report.schema_id,
        report.produced.len(),
        report.consumed.len()
    );
    let mut mismatches = 0;
    for order in &report.produced {
        match report.consumed.get(&order.order_id) {
            Some(back) if back == order => println!(
                "  {}  {}  {} × {:<18} {:>7.2}",
                order.order_id, order.customer_id, order.quantity, order.item, order.total_amount
            ),
            other => {
                mismatches += 1;
                println!("  {} came back as {other:?}", order.order_id);
            }
        }
    }
    if mismatches > 0 {
        bail!("{mismatches} order(s) did not come back intact");
    }
    println!("every order came back intact");
    Ok(())
}

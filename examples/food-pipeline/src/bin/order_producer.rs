//! `order-producer`: mock food orders to Kafka at a steady rate.
//!
//! Reads the Kafka and schema registry settings from the environment (`KAFKA_BOOTSTRAP_SERVERS`,
//! `SCHEMA_REGISTRY_URL`, …), logs as `LOG_LEVEL` and `LOG_FORMAT` say, and exits 0 once every
//! order it sent is acknowledged (1 if any could not be delivered).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use flowodm::runner::shutdown_on_signals;
use flowodm::Client;
use food_pipeline::producer::{self, ProducerSettings};

/// Produces mock food orders to Kafka.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Orders per second (0: as fast as possible).
    #[arg(long, env = "PRODUCER_RATE", default_value_t = 10.0)]
    rate: f64,
    /// Seconds to produce for (0: until SIGTERM or SIGINT).
    #[arg(long, env = "PRODUCER_DURATION", default_value_t = 0.0)]
    duration: f64,
    /// Stop after this many orders.
    #[arg(long)]
    count: Option<u64>,
    /// Seed of the mock data.
    #[arg(long, env = "MOCK_SEED", default_value_t = 42)]
    seed: u64,
    /// The topic.
    #[arg(long, env = "KAFKA_TOPIC_ORDERS", default_value = food_pipeline::order::DEFAULT_TOPIC)]
    topic: String,
    /// Write the run's summary (JSON) to this file.
    #[arg(long)]
    summary: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    food_pipeline::telemetry::init_logging()?;
    anyhow::ensure!(
        args.rate.is_finite() && args.rate >= 0.0,
        "--rate / PRODUCER_RATE must be a finite number of orders per second, 0 or more"
    );
    let mut settings = ProducerSettings::new(args.topic);
    settings.rate = args.rate;
    settings.duration = Duration::try_from_secs_f64(args.duration).map_err(|_| {
        anyhow::anyhow!("--duration / PRODUCER_DURATION must be a number of seconds, 0 or more")
    })?;
    settings.count = args.count;
    settings.seed = args.seed;
    let client = Client::from_env()?;
    let summary = producer::run(&client, &settings, shutdown_on_signals(), |_| {}).await?;
    if let Some(path) = &args.summary {
        std::fs::write(path, summary.to_json().to_string())?;
    }
    if summary.failed > 0 {
        anyhow::bail!(
            "{} of {} orders were not delivered",
            summary.failed,
            summary.sent
        );
    }
    Ok(())
}

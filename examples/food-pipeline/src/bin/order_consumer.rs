//! `order-consumer`: stores the orders of the topic in PostgreSQL, once each, until SIGTERM or
//! SIGINT.
//!
//! Reads Kafka and registry settings from the environment, the database from `DATABASE_URL`
//! (and `DATABASE_SCHEMA` to keep the table in a schema of its own), logs as `LOG_LEVEL` and
//! `LOG_FORMAT` say.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use flowodm::runner::shutdown_on_signals;
use flowodm::Client;
use food_pipeline::consumer::{self, ConsumerSettings};
use food_pipeline::store::Database;

/// Stores food orders from Kafka in PostgreSQL.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The topic.
    #[arg(long, env = "KAFKA_TOPIC_ORDERS", default_value = food_pipeline::order::DEFAULT_TOPIC)]
    topic: String,
    /// The consumer group.
    #[arg(long, env = "CONSUMER_GROUP", default_value = "order-store")]
    group: String,
    /// A static group member id (a restarted member with the same id gets its partitions back
    /// at once).
    #[arg(long, env = "CONSUMER_INSTANCE_ID")]
    instance_id: Option<String>,
    /// Orders handled or waiting for their commit at once.
    #[arg(long, env = "CONSUMER_MAX_IN_FLIGHT", default_value_t = 4000)]
    max_in_flight: usize,
    /// Database connections writing batches.
    #[arg(long, env = "CONSUMER_DB_CONNECTIONS", default_value_t = 4)]
    connections: usize,
    /// The largest batch, in rows.
    #[arg(long, env = "CONSUMER_MAX_BATCH", default_value_t = 1000)]
    max_batch: usize,
    /// The smallest batch written with COPY; smaller ones go in with one INSERT statement.
    #[arg(long, env = "CONSUMER_COPY_MIN_ROWS", default_value_t = 32)]
    copy_min_rows: usize,
    /// Seconds between commits of finished offsets (also at shutdown and rebalance).
    #[arg(long, default_value_t = 1.0)]
    commit_seconds: f64,
    /// Seconds between progress lines.
    #[arg(long, default_value_t = 5.0)]
    progress_seconds: f64,
    /// Write the run's summary (JSON) to this file when stopping.
    #[arg(long)]
    summary: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    food_pipeline::telemetry::init_logging()?;
    let shutdown = shutdown_on_signals();
    let mut settings = ConsumerSettings::new(args.topic, Database::from_env()?);
    settings.group = args.group;
    settings.instance_id = args.instance_id;
    settings.max_in_flight = args.max_in_flight.max(1);
    settings.writer.connections = args.connections.max(1);
    settings.writer.max_batch = args.max_batch.max(1);
    settings.writer.copy_min_rows = args.copy_min_rows;
    settings.summary_path = args.summary;
    let seconds = |v: f64, min: f64, what: &str| {
        Duration::try_from_secs_f64(v.max(min))
            .map_err(|_| anyhow::anyhow!("{what} must be a number of seconds"))
    };
    settings.commit_interval = seconds(args.commit_seconds, 0.01, "--commit-seconds")?;
    settings.progress_interval = seconds(args.progress_seconds, 0.1, "--progress-seconds")?;
    let client = Client::from_env()?;
    let summary = consumer::run(&client, settings, shutdown).await?;
    if summary.rejected > 0 {
        tracing::warn!(
            rejected = summary.rejected,
            "some orders were rejected by the database and dead-lettered"
        );
    }
    Ok(())
}

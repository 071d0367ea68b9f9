//! `pipeline-demo`: the README's main command (`dev/demo` runs it on the local stack).
//!
//! Runs `order-consumer` and `order-producer` (the binaries next to this one) as separate
//! processes on a fresh topic, produces at a fixed rate for a fixed time, waits until every
//! order is stored, stops the consumer with SIGTERM, and prints a verification report: orders
//! produced, rows stored, duplicates, customers stored out of order, throughput and end-to-end
//! latency. Exits 1 if a check fails.
//!
//! The table is `food_demo.orders` (the schema is made anew at each run); the logs of both
//! services are kept under `<target>/demo/<run>/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use food_pipeline::order::sequence_of;
use food_pipeline::store::Database;
use food_pipeline::verify;
use serde_json::Value;

/// Runs the food pipeline for a while and verifies what it stored.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Orders per second.
    #[arg(long, default_value_t = 500.0)]
    rate: f64,
    /// Seconds to produce for.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seed of the mock data.
    #[arg(long, env = "MOCK_SEED", default_value_t = 42)]
    seed: u64,
}

const SCHEMA: &str = "food_demo";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.rate.is_finite()
            && args.rate > 0.0
            && args.duration > 0.0
            && Duration::try_from_secs_f64(args.duration).is_ok(),
        "--rate and --duration must be positive, finite numbers"
    );
    let bin_dir = std::env::current_exe()?
        .parent()
        .context("the binary's directory")?
        .to_path_buf();
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string();
    let topic = format!("food-orders-demo-{stamp}");
    let dir = bin_dir
        .parent()
        .unwrap_or(&bin_dir)
        .join("demo")
        .join(&stamp);
    std::fs::create_dir_all(&dir)?;
    let db = Database::new(
        std::env::var("DATABASE_URL")
            .context("DATABASE_URL is not set (eval \"$(dev/stack env)\")")?,
        Some(SCHEMA.to_string()),
    )?;
    let expected = (args.rate * args.duration).round() as u64;

    println!("flowodm food pipeline demo");
    println!("  topic {topic} (3 partitions, snappy) -> table {SCHEMA}.orders");
    println!("  logs  {}", dir.display());
    println!();

    // A clean table for this run.
    db.connect()
        .await
        .context("connecting to PostgreSQL")?
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        .await?;

    let env = [
        ("KAFKA_TOPIC_ORDERS", topic.clone()),
        ("DATABASE_SCHEMA", SCHEMA.to_string()),
        ("CONSUMER_GROUP", format!("{topic}-store")),
        ("LOG_FORMAT", "json".to_string()),
        ("LOG_LEVEL", "info".to_string()),
    ];
    let mut consumer = spawn(
        &bin_dir.join("order-consumer"),
        &[
            "--summary".into(),
            dir.join("consumer.json").display().to_string(),
        ],
        &env,
        &dir.join("consumer.log"),
    )?;
    println!(
        "producing {expected} orders: {} orders/s for {} s (seed {})",
        args.rate, args.duration, args.seed
    );
    let started = Instant::now();
    let mut producer = spawn(
        &bin_dir.join("order-producer"),
        &[
            "--rate".into(),
            args.rate.to_string(),
            "--duration".into(),
            args.duration.to_string(),
            "--seed".into(),
            args.seed.to_string(),
            "--summary".into(),
            dir.join("producer.json").display().to_string(),
        ],
        &env,
        &dir.join("producer.log"),
    )?;
    let status = wait(
        &mut producer,
        Duration::from_secs_f64(args.duration + 120.0),
    )?;
    if !status.success() {
        let _ = consumer.kill();
        bail!(
            "order-producer failed ({status}); see {}",
            dir.join("producer.log").display()
        );
    }
    let produced: Value = read_json(&dir.join("producer.json"))?;
    let delivered = produced["delivered"].as_u64().unwrap_or(0);
    println!(
        "produced {delivered} in {:.1} s; waiting for the consumer",
        produced["seconds"].as_f64().unwrap_or(0.0)
    );

    // Every delivered order stored, or a minute without progress.
    let mut last = (0, Instant::now());
    loop {
        let rows = count_rows(&db).await;
        if rows >= delivered {
            break;
        }
        if rows != last.0 {
            last = (rows, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(60) {
            println!("no progress for 60 s at {rows} rows; stopping");
            break;
        }
        if let Some(s) = consumer.try_wait()? {
            bail!(
                "order-consumer exited early ({s}); see {}",
                dir.join("consumer.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained = started.elapsed();
    Command::new("kill")
        .args(["-TERM", &consumer.id().to_string()])
        .status()?;
    let status = wait(&mut consumer, Duration::from_secs(60))?;
    if !status.success() {
        bail!(
            "order-consumer failed ({status}); see {}",
            dir.join("consumer.log").display()
        );
    }
    let consumed: Value = read_json(&dir.join("consumer.json"))?;

    let table = verify::check_table(&db).await?;
    let ids = verify::stored_ids(&db).await?;
    let mut numbers: Vec<u64> = ids.iter().filter_map(|id| sequence_of(id)).collect();
    numbers.sort_unstable();
    let exact_set = numbers.len() as u64 == delivered
        && numbers.iter().enumerate().all(|(i, n)| *n == i as u64 + 1);

    let partitions: BTreeMap<String, u64> = produced["partitions"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    let inserted = consumed["inserted"].as_u64().unwrap_or(0);
    let span_ms = consumed["last_insert_ms"]
        .as_u64()
        .unwrap_or(0)
        .saturating_sub(consumed["first_insert_ms"].as_u64().unwrap_or(0));
    let lat = &consumed["latency_ms"];
    let ms = |k: &str| lat[k].as_f64().unwrap_or(f64::NAN);

    println!();
    println!(
        "producer  {} sent, {delivered} acknowledged, {} failed; by partition: {}",
        produced["sent"],
        produced["failed"],
        partitions
            .iter()
            .map(|(p, n)| format!("{p}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("consumer  {inserted} rows inserted in {} batches, {} re-deliveries ignored, {} dead-lettered, {} failed database attempts",
        consumed["batches"], consumed["duplicates"], consumed["dead_lettered"], consumed["failed_attempts"]);
    println!();
    let checks = [
        (
            "orders produced = rows stored",
            delivered > 0 && table.rows == delivered,
            format!("{delivered} produced, {} rows", table.rows),
        ),
        (
            "exactly the produced orders, each once",
            exact_set,
            format!(
                "order numbers 1..={delivered}: {}",
                if exact_set { "all there" } else { "mismatch" }
            ),
        ),
        (
            "duplicate rows",
            table.duplicates() == 0,
            table.duplicates().to_string(),
        ),
        (
            "customers stored out of order",
            table.customers_out_of_order == 0,
            format!(
                "{} of {} customers",
                table.customers_out_of_order, table.customers
            ),
        ),
        (
            "orders not delivered to Kafka",
            produced["failed"].as_u64() == Some(0),
            produced["failed"].to_string(),
        ),
        (
            "orders dead-lettered",
            consumed["dead_lettered"].as_u64() == Some(0),
            consumed["dead_lettered"].to_string(),
        ),
    ];
    println!("verification");
    let mut failed = 0;
    for (what, ok, detail) in &checks {
        println!(
            "  {}  {what:<40} {detail}",
            if *ok { "ok  " } else { "FAIL" }
        );
        failed += usize::from(!ok);
    }
    println!();
    println!(
        "throughput  {:.0} orders/s stored (first to last insert), {:.0} orders/s over the whole run ({:.1} s, producer paced at {}/s)",
        if span_ms > 0 { inserted as f64 * 1000.0 / span_ms as f64 } else { 0.0 },
        table.rows as f64 / drained.as_secs_f64(),
        drained.as_secs_f64(),
        args.rate
    );
    println!(
        "latency     created_at -> row committed: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms("p50"), ms("p90"), ms("p99"), ms("max")
    );
    println!();
    println!("look at the rows: psql \"$DATABASE_URL\" -c 'SELECT * FROM {SCHEMA}.orders ORDER BY ingest_seq LIMIT 5'");
    if failed > 0 {
        bail!("{failed} check(s) failed");
    }
    println!("all checks passed");
    Ok(())
}

fn spawn(exe: &Path, args: &[String], env: &[(&str, String)], log: &Path) -> anyhow::Result<Child> {
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().with_context(|| {
        format!(
            "starting {} (build it with `cargo build -p food-pipeline --bins`)",
            exe.display()
        )
    })
}

fn wait(child: &mut Child, timeout: Duration) -> anyhow::Result<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(s);
        }
        if Instant::now() > deadline {
            child.kill()?;
            bail!("a process did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_json(path: &PathBuf) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

async fn count_rows(db: &Database) -> u64 {
    let Ok(c) = db.connect().await else { return 0 };
    c.query_one("SELECT count(*) FROM orders", &[])
        .await
        .map(|r| r.get::<_, i64>(0) as u64)
        .unwrap_or(0)
}

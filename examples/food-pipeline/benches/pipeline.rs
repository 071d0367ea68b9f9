//! The pipeline end to end, producer → Kafka → consumer → PostgreSQL, on the local stack, next
//! to PostgreSQL's own ingest rate for the same rows measured in the same run.
//!
//! 1. **Ceiling**: `BENCH_ORDERS` rows (default 200000), built beforehand from the same mock
//!    orders, go into an empty `orders` table (same columns and indexes) with one `COPY`.
//! 2. **Sustained rate**: `order-consumer` runs; `order-producer` sends `BENCH_ORDERS` orders as
//!    fast as it can; the rate is orders / (time from the producer's start until the last row is
//!    stored), and also the consumer's own rate from its first to its last insert.
//! 3. **Latency**: a fresh topic and table; the producer sends 2000 orders/s for
//!    `BENCH_LATENCY_SECONDS` (default 20); the consumer reports the end-to-end latency of every
//!    order, `created_at` (set when the producer makes the order) → the commit of its row.
//!
//! Both services are the release binaries, as separate processes, with `LOG_LEVEL=warn`
//! (`BENCH_LOG_LEVEL` to change it; `info` logs a line per order in both). CPU time of each
//! process and of Kafka and PostgreSQL is sampled from `/proc` to show where the time goes.
//!
//! Needs the stack (`eval "$(dev/stack env)"`). Run:
//! `cargo bench -p food-pipeline --bench pipeline`

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use food_pipeline::order::MockOrders;
use food_pipeline::store::{self, Database, Row};
use futures_util::SinkExt;
use serde_json::Value;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn required(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run `eval \"$(dev/stack env)\"` first"))
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let orders = env_or("BENCH_ORDERS", 200_000);
    let latency_seconds = env_or("BENCH_LATENCY_SECONDS", 20);
    let log_level = std::env::var("BENCH_LOG_LEVEL").unwrap_or_else(|_| "warn".into());
    let url = required("DATABASE_URL");
    required("KAFKA_BOOTSTRAP_SERVERS");
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let dir = std::env::temp_dir().join(format!("flowodm-pipeline-bench-{stamp}"));
    std::fs::create_dir_all(&dir).unwrap();
    println!(
        "pipeline benchmark: {orders} orders; logs in {}",
        dir.display()
    );

    // 1. The ceiling.
    let ceiling_db = Database::new(&url, Some(format!("bench_copy_{stamp}"))).unwrap();
    let (copy_rate, copy_cpu) = copy_ceiling(&ceiling_db, orders).await;
    println!("ceiling     COPY of {orders} pre-built rows: {copy_rate:.0} rows/s");
    print_cpu(&copy_cpu, orders as f64 / copy_rate);

    // 2. Sustained end-to-end rate.
    let run = Phase::new(&url, &dir, &format!("rate-{stamp}"), &log_level);
    let mut consumer = run.start_consumer();
    run.wait_for_assignment();
    let cpu = CpuSampler::start(Some(&consumer));
    let started = Instant::now();
    let producer = run.start_producer(&["--rate", "0", "--count", &orders.to_string()]);
    let cpu = cpu.with(&producer);
    run.wait_for_rows(orders, Duration::from_secs(600)).await;
    let e2e = started.elapsed();
    let cpu = cpu.stop();
    let produced = run.finish_producer(producer);
    let consumed = run.stop_consumer(&mut consumer);
    let e2e_rate = orders as f64 / e2e.as_secs_f64();
    let span_ms = consumed["last_insert_ms"].as_f64().unwrap()
        - consumed["first_insert_ms"].as_f64().unwrap();
    let consumer_rate = consumed["inserted"].as_f64().unwrap() * 1000.0 / span_ms;
    let producer_rate = produced["sent"].as_f64().unwrap() / produced["seconds"].as_f64().unwrap();
    let batches = consumed["batches"].as_f64().unwrap();
    println!(
        "sustained   {e2e_rate:.0} orders/s end to end ({orders} in {:.2} s); consumer {consumer_rate:.0}/s from first to last insert; producer alone {producer_rate:.0}/s",
        e2e.as_secs_f64()
    );
    println!(
        "            {:.0} rows per batch on average ({} of {batches} batches by INSERT, {} COPY conflicts); {:.2}x the COPY ceiling",
        consumed["inserted"].as_f64().unwrap() / batches,
        consumed["insert_batches"],
        consumed["copy_conflicts"],
        e2e_rate / copy_rate
    );
    print_breakdown(&consumed);
    print_cpu(&cpu, e2e.as_secs_f64());

    // 3. Latency at 2000 orders/s. The sustained phase has just written some hundred MB to
    // PostgreSQL's WAL; a checkpoint first writes that back, so that its disk writes (on the disk
    // Kafka's log shares) belong to the phase that caused them, not to this one.
    let run = Phase::new(&url, &dir, &format!("lat-{stamp}"), &log_level);
    run.db
        .connect()
        .await
        .unwrap()
        .batch_execute("CHECKPOINT")
        .await
        .unwrap();
    let mut consumer = run.start_consumer();
    run.wait_for_assignment();
    let planned = 2000 * latency_seconds;
    let lat_cpu = CpuSampler::start(Some(&consumer));
    let lat_started = Instant::now();
    let producer =
        run.start_producer(&["--rate", "2000", "--duration", &latency_seconds.to_string()]);
    let lat_cpu = lat_cpu.with(&producer);
    let produced = run.finish_producer(producer);
    let lat_cpu = lat_cpu.stop();
    let lat_wall = lat_started.elapsed().as_secs_f64();
    assert_eq!(produced["delivered"].as_u64(), Some(planned), "{produced}");
    run.wait_for_rows(planned, Duration::from_secs(120)).await;
    let consumed = run.stop_consumer(&mut consumer);
    let lat = &consumed["latency_ms"];
    println!(
        "latency     2000 orders/s for {latency_seconds} s ({planned} orders): p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms ({:.1} rows per batch)",
        lat["p50"].as_f64().unwrap(),
        lat["p90"].as_f64().unwrap(),
        lat["p99"].as_f64().unwrap(),
        lat["p999"].as_f64().unwrap(),
        lat["max"].as_f64().unwrap(),
        consumed["inserted"].as_f64().unwrap() / consumed["batches"].as_f64().unwrap(),
    );
    print_breakdown(&consumed);
    println!(
        "            created_at -> broker ack:    p50 {:.1} ms, p99 {:.1} ms (producer side)",
        produced["ack_ms"]["p50"].as_f64().unwrap_or(f64::NAN),
        produced["ack_ms"]["p99"].as_f64().unwrap_or(f64::NAN)
    );
    print_cpu(&lat_cpu, lat_wall);
    let summary = serde_json::json!({
        "orders": orders,
        "copy_rows_per_sec": copy_rate,
        "e2e_orders_per_sec": e2e_rate,
        "consumer_orders_per_sec": consumer_rate,
        "producer_orders_per_sec": producer_rate,
        "e2e_over_ceiling": e2e_rate / copy_rate,
        "latency_ms_at_2000": lat,
        "received_ms_at_2000": consumed["received_ms"],
        "commit_ms_at_2000": consumed["commit_ms"],
        "ack_ms_at_2000": produced["ack_ms"],
        "cpu_seconds": cpu,
        "copy_cpu_seconds": copy_cpu,
        "latency_cpu_seconds": lat_cpu,
    });
    println!("{summary}");

    // The tables go; the logs stay.
    let client = ceiling_db.connect().await.unwrap();
    for schema in [
        ceiling_db.schema.clone(),
        Some(format!("bench_rate_{stamp}")),
        Some(format!("bench_lat_{stamp}")),
    ]
    .into_iter()
    .flatten()
    {
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await
            .unwrap();
    }
}

/// Where an order's time went: until the handler started (producer linger, Kafka, the loop's
/// queue), and the batch inserts.
fn print_breakdown(consumed: &Value) {
    let p = |v: &Value| {
        format!(
            "p50 {:.1} ms, p99 {:.1} ms",
            v["p50"].as_f64().unwrap_or(f64::NAN),
            v["p99"].as_f64().unwrap_or(f64::NAN)
        )
    };
    println!(
        "            created_at -> handler start: {}",
        p(&consumed["received_ms"])
    );
    println!(
        "            one batch insert + commit:   {}",
        p(&consumed["commit_ms"])
    );
}

fn print_cpu(cpu: &BTreeMap<String, f64>, wall: f64) {
    println!(
        "            CPU seconds meanwhile ({wall:.1} s wall, 2 cores = {:.1} CPU s):",
        2.0 * wall
    );
    for (what, secs) in cpu {
        println!("              {what:<22} {secs:6.2}");
    }
}

/// One `COPY` of `n` pre-built rows into an empty `orders` table; rows per second, and the CPU
/// time spent meanwhile.
async fn copy_ceiling(db: &Database, n: u64) -> (f64, BTreeMap<String, f64>) {
    store::migrate(db).await.unwrap();
    let mut mock = MockOrders::new(42);
    let mut text = Vec::with_capacity(n as usize * 300);
    for _ in 0..n {
        let row = Row::from(&mock.next_order());
        let created = chrono::DateTime::from_timestamp_millis(row.created_at_ms)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S%.3f");
        // COPY text format: tab-separated, backslashes doubled.
        let items = row.items.replace('\\', "\\\\");
        text.extend_from_slice(
            format!(
                "{}\t{}\t{}\t{}\t{}\t{}\n",
                row.order_id, row.customer_id, items, row.total_amount, row.status, created
            )
            .as_bytes(),
        );
    }
    let client = db.connect().await.unwrap();
    let cpu = CpuSampler::start(None);
    let started = Instant::now();
    let sink = client
        .copy_in::<_, Cursor<Vec<u8>>>(
            "COPY orders (order_id, customer_id, items, total_amount, status, created_at) FROM STDIN",
        )
        .await
        .unwrap();
    let mut sink = Box::pin(sink);
    for chunk in text.chunks(1 << 20) {
        sink.send(Cursor::new(chunk.to_vec())).await.unwrap();
    }
    let copied = sink.as_mut().finish().await.unwrap();
    let took = started.elapsed();
    let cpu = cpu.stop();
    assert_eq!(copied, n);
    (n as f64 / took.as_secs_f64(), cpu)
}

/// One phase: its own topic, group and schema, the services as processes.
struct Phase {
    topic: String,
    db: Database,
    dir: PathBuf,
    name: String,
    log_level: String,
}

impl Phase {
    fn new(url: &str, dir: &Path, name: &str, log_level: &str) -> Self {
        Phase {
            topic: format!("food-orders-bench-{name}"),
            db: Database::new(url, Some(format!("bench_{}", name.replace('-', "_")))).unwrap(),
            dir: dir.to_path_buf(),
            name: name.to_string(),
            log_level: log_level.to_string(),
        }
    }

    fn command(&self, exe: &str, log: &str) -> Command {
        let mut c = Command::new(exe);
        c.env("KAFKA_TOPIC_ORDERS", &self.topic)
            .env("DATABASE_SCHEMA", self.db.schema.as_deref().unwrap())
            .env("CONSUMER_GROUP", format!("{}-store", self.topic))
            .env("LOG_FORMAT", "json")
            // The consumer's "partitions assigned" line is waited for; per-order lines follow
            // the level asked for.
            .env(
                "LOG_LEVEL",
                format!(
                    "{0},food_pipeline::consumer=info,food_pipeline::consumer::orders={0}",
                    self.log_level
                ),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join(log)).unwrap());
        c
    }

    fn start_consumer(&self) -> Child {
        self.command(
            env!("CARGO_BIN_EXE_order-consumer"),
            &format!("{}-consumer.log", self.name),
        )
        .arg("--summary")
        .arg(self.dir.join(format!("{}-consumer.json", self.name)))
        .spawn()
        .unwrap()
    }

    fn start_producer(&self, args: &[&str]) -> Child {
        self.command(
            env!("CARGO_BIN_EXE_order-producer"),
            &format!("{}-producer.log", self.name),
        )
        .args(args)
        .arg("--summary")
        .arg(self.dir.join(format!("{}-producer.json", self.name)))
        .spawn()
        .unwrap()
    }

    /// Waits until the consumer logged its partition assignment.
    fn wait_for_assignment(&self) {
        let log = self.dir.join(format!("{}-consumer.log", self.name));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("partitions assigned")
        {
            assert!(
                Instant::now() < deadline,
                "no assignment; see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    async fn wait_for_rows(&self, n: u64, timeout: Duration) {
        let client = self.db.connect().await.unwrap();
        let deadline = Instant::now() + timeout;
        loop {
            let rows = client
                .query_one("SELECT count(*) FROM orders", &[])
                .await
                .map(|r| r.get::<_, i64>(0) as u64)
                .unwrap_or(0);
            if rows >= n {
                return;
            }
            assert!(Instant::now() < deadline, "{rows} of {n} rows");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn finish_producer(&self, mut producer: Child) -> Value {
        let status = producer.wait().unwrap();
        assert!(status.success(), "order-producer: {status}");
        let text =
            std::fs::read_to_string(self.dir.join(format!("{}-producer.json", self.name))).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn stop_consumer(&self, consumer: &mut Child) -> Value {
        Command::new("kill")
            .args(["-TERM", &consumer.id().to_string()])
            .status()
            .unwrap();
        let status = consumer.wait().unwrap();
        assert!(status.success(), "order-consumer: {status}");
        let text =
            std::fs::read_to_string(self.dir.join(format!("{}-consumer.json", self.name))).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

/// CPU seconds (user + system) of a process from `/proc`, if it still runs.
fn cpu_of(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Every process whose command name is `name`.
fn pids_named(name: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| {
                    std::fs::read_to_string(format!("/proc/{pid}/comm"))
                        .is_ok_and(|c| c.trim() == name)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn machine_busy() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let idle = f.get(3).copied().unwrap_or(0.0) + f.get(4).copied().unwrap_or(0.0);
    (f.iter().sum::<f64>() - idle) / 100.0
}

/// Samples the CPU time of the services, Kafka and PostgreSQL while a phase runs.
struct CpuSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pids: std::sync::Arc<std::sync::Mutex<Vec<(String, u32)>>>,
    thread: std::thread::JoinHandle<BTreeMap<String, f64>>,
}

impl CpuSampler {
    fn start(consumer: Option<&Child>) -> Self {
        let mut pids: Vec<(String, u32)> = consumer
            .map(|c| ("order-consumer".to_string(), c.id()))
            .into_iter()
            .collect();
        let kafka_pid = std::fs::read_to_string(format!(
            "{}/kafka/pid",
            std::env::var("FLOWODM_STACK_DIR")
                .unwrap_or_else(|_| format!("/var/tmp/flowodm-stack-{}", uid()))
        ))
        .ok()
        .and_then(|p| p.trim().parse().ok());
        if let Some(k) = kafka_pid {
            pids.push(("kafka (broker)".to_string(), k));
        }
        let pids = std::sync::Arc::new(std::sync::Mutex::new(pids));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, s) = (pids.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let start_pg: BTreeMap<u32, f64> = pids_named("postgres")
                .into_iter()
                .filter_map(|pid| Some((pid, cpu_of(pid)?)))
                .collect();
            let start_machine = machine_busy();
            let mut first: BTreeMap<u32, f64> = BTreeMap::new();
            let mut last: BTreeMap<u32, f64> = BTreeMap::new();
            let mut pg_last: BTreeMap<u32, f64> = BTreeMap::new();
            loop {
                // One last reading after the stop, so the end of the phase counts.
                let stopping = s.load(std::sync::atomic::Ordering::Relaxed);
                for (_, pid) in p.lock().unwrap().iter() {
                    if let Some(c) = cpu_of(*pid) {
                        first.entry(*pid).or_insert(c);
                        last.insert(*pid, c);
                    }
                }
                for pid in pids_named("postgres") {
                    if let Some(c) = cpu_of(pid) {
                        pg_last.insert(pid, c);
                    }
                }
                if stopping {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let mut out = BTreeMap::new();
            for (name, pid) in p.lock().unwrap().iter() {
                // The services started with the phase: all their CPU counts.
                let base = if name.starts_with("order-") {
                    0.0
                } else {
                    first.get(pid).copied().unwrap_or(0.0)
                };
                out.insert(name.clone(), last.get(pid).copied().unwrap_or(0.0) - base);
            }
            let pg: f64 = pg_last
                .iter()
                .map(|(pid, c)| c - start_pg.get(pid).copied().unwrap_or(0.0))
                .sum();
            out.insert("postgresql (all)".to_string(), pg);
            out.insert("whole machine".to_string(), machine_busy() - start_machine);
            out
        });
        CpuSampler { stop, pids, thread }
    }

    fn with(self, producer: &Child) -> Self {
        self.pids
            .lock()
            .unwrap()
            .push(("order-producer".to_string(), producer.id()));
        self
    }

    fn stop(self) -> BTreeMap<String, f64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

fn uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

//! Helpers for the pipeline tests: a run of its own (topic, consumer group, database schema),
//! the consumer as a real process, the producer in the test, and the checks.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flowodm::registry::SchemaRegistryClient;
use flowodm::runner::CancellationToken;
use flowodm::{Client, KafkaConfig};
use flowodm_test::{bootstrap_servers, database_url, registry_url, unique_name};
use food_pipeline::order::Order;
use food_pipeline::producer::{self, ProducerSettings, ProducerSummary};
use food_pipeline::store::Database;
use food_pipeline::verify;

/// One test's own topic, group and schema (so tests run side by side).
pub struct Run {
    pub topic: String,
    pub group: String,
    pub db: Database,
    pub dir: PathBuf,
}

impl Run {
    pub fn new(prefix: &str) -> Self {
        let topic = unique_name(&format!("food-{prefix}"));
        let schema = topic.replace('-', "_");
        let dir = std::env::temp_dir().join(&topic);
        std::fs::create_dir_all(&dir).unwrap();
        Run {
            group: format!("{topic}-store"),
            db: Database::new(database_url(), Some(schema)).unwrap(),
            topic,
            dir,
        }
    }

    pub fn client() -> Client {
        Client::new(
            KafkaConfig::new(bootstrap_servers()),
            SchemaRegistryClient::new(&registry_url()).unwrap(),
        )
    }

    /// Starts producing `rate` orders/s for `seconds` in the background; the orders sent are
    /// collected.
    pub fn produce(
        &self,
        rate: f64,
        seconds: u64,
    ) -> (
        tokio::task::JoinHandle<ProducerSummary>,
        Arc<Mutex<Vec<Order>>>,
    ) {
        let mut settings = ProducerSettings::new(self.topic.clone());
        settings.rate = rate;
        settings.duration = Duration::from_secs(seconds);
        settings.seed = 7;
        let sent: Arc<Mutex<Vec<Order>>> = Arc::default();
        let keep = sent.clone();
        let handle = tokio::spawn(async move {
            producer::run(&Run::client(), &settings, CancellationToken::new(), |o| {
                keep.lock().unwrap().push(o.clone())
            })
            .await
            .expect("the producer runs")
        });
        (handle, sent)
    }

    /// Starts an `order-consumer` process for this run.
    pub fn consumer(&self, n: usize) -> ConsumerProcess {
        let log = self.dir.join(format!("consumer-{n}.log"));
        let summary = self.dir.join(format!("consumer-{n}.json"));
        let child = Command::new(env!("CARGO_BIN_EXE_order-consumer"))
            .env("KAFKA_TOPIC_ORDERS", &self.topic)
            .env("CONSUMER_GROUP", &self.group)
            .env("CONSUMER_INSTANCE_ID", format!("{}-member", self.group))
            .env("DATABASE_URL", &self.db.url)
            .env("DATABASE_SCHEMA", self.db.schema.as_deref().unwrap())
            .env("LOG_FORMAT", "json")
            .env("LOG_LEVEL", "info")
            // Every batch by COPY, however small, so that re-deliveries (after a kill, a
            // replay) meet the COPY and its fallback to INSERT … ON CONFLICT DO NOTHING.
            .env("CONSUMER_COPY_MIN_ROWS", "1")
            .arg("--summary")
            .arg(&summary)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("order-consumer starts");
        ConsumerProcess {
            child: Some(child),
            log,
            summary,
        }
    }

    /// Drops the run's schema and its logs (called when a test passed; a failed test keeps
    /// them for a look).
    pub async fn cleanup(&self) {
        let schema = self.db.schema.as_deref().unwrap();
        let client = self.db.connect().await.unwrap();
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await
            .unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// Rows in the table (0 while it does not exist yet).
    pub async fn rows(&self) -> u64 {
        match self.db.connect().await {
            Ok(c) => c
                .query_one("SELECT count(*) FROM orders", &[])
                .await
                .map(|r| r.get::<_, i64>(0) as u64)
                .unwrap_or(0),
            Err(_) => 0,
        }
    }

    /// Waits until the table holds `n` rows; panics after `timeout`.
    pub async fn wait_for_rows(&self, n: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let rows = self.rows().await;
            if rows >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {rows} of {n} rows after {timeout:?}; consumer logs in {}",
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Checks that the table holds exactly `sent`, field for field, one row each, each customer's
    /// orders in the order they were placed.
    pub async fn assert_stored_exactly(&self, sent: &[Order]) {
        let check = verify::check_table(&self.db).await.unwrap();
        assert_eq!(check.rows, sent.len() as u64, "rows");
        assert_eq!(check.duplicates(), 0, "duplicate rows");
        assert_eq!(
            check.customers_out_of_order, 0,
            "customers whose orders were stored out of order"
        );
        let stored = verify::stored_ids(&self.db).await.unwrap();
        let (missing, unexpected) =
            verify::compare(sent.iter().map(|o| o.order_id.as_str()), &stored);
        assert!(missing.is_empty(), "missing: {missing:?}");
        assert!(unexpected.is_empty(), "unexpected: {unexpected:?}");

        let client = self.db.connect().await.unwrap();
        let rows = client
            .query(
                "SELECT order_id, customer_id, items::text, total_amount::text, status,
                        (extract(epoch FROM created_at) * 1000)::bigint
                 FROM orders",
                &[],
            )
            .await
            .unwrap();
        let by_id: HashMap<String, &tokio_postgres::Row> =
            rows.iter().map(|r| (r.get::<_, String>(0), r)).collect();
        for o in sent {
            let r = by_id[&o.order_id];
            assert_eq!(r.get::<_, String>(1), o.customer_id);
            let items: serde_json::Value = serde_json::from_str(r.get::<_, &str>(2)).unwrap();
            let want: serde_json::Value = serde_json::from_str(&o.items_json()).unwrap();
            assert_eq!(items, want, "{}", o.order_id);
            assert_eq!(r.get::<_, String>(3), o.total_amount.to_string());
            assert_eq!(r.get::<_, String>(4), "pending");
            assert_eq!(r.get::<_, i64>(5), o.created_at.timestamp_millis());
        }
    }
}

/// An `order-consumer` process; killed when dropped.
pub struct ConsumerProcess {
    child: Option<Child>,
    pub log: PathBuf,
    pub summary: PathBuf,
}

impl ConsumerProcess {
    /// SIGKILL: no chance to finish anything or commit.
    pub fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM, then waits for a clean exit; the consumer's summary.
    pub fn terminate(mut self) -> serde_json::Value {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(40);
        let exit = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                child.kill().unwrap();
                panic!(
                    "the consumer did not stop on SIGTERM; log: {}",
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            exit.success(),
            "the consumer exited with {exit}; log: {}",
            self.log.display()
        );
        let text = std::fs::read_to_string(&self.summary).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

impl Drop for ConsumerProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

//! The `orders` table and the batch writer that fills it.
//!
//! # The table
//!
//! [`migrate`] creates it (once; concurrent starts wait on an advisory lock):
//!
//! ```sql
//! orders(order_id VARCHAR(50) PRIMARY KEY, customer_id VARCHAR(50) NOT NULL, items JSONB NOT NULL,
//!        total_amount DECIMAL(10,2) NOT NULL, status VARCHAR(20) NOT NULL,
//!        created_at TIMESTAMP NOT NULL, processed_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
//!        ingest_seq BIGINT GENERATED ALWAYS AS IDENTITY)
//! ```
//!
//! with indexes on `customer_id`, `created_at`, `(customer_id, created_at)` and a GIN index on
//! `items`. Timestamps are UTC. `ingest_seq` numbers rows in the order they were written, which
//! is what lets a reader check that each customer's orders were stored in the order they were
//! placed.
//!
//! # Writing
//!
//! A [`BatchWriter`] owns a few connections, each with its own queue, and a customer's rows
//! always go to the same one. Each connection takes whatever rows are waiting (up to
//! `max_batch`), writes them in one transaction with a binary `COPY orders (…) FROM STDIN`
//! (or, for a batch of fewer than `copy_min_rows`, with the `INSERT` below), and only when that
//! transaction has committed reports each row's outcome: to a caller awaiting
//! [`BatchWriter::store`], or to the callback given to [`BatchWriter::submit`]. A consumer that
//! lets a message's offset be committed only from that outcome never commits an offset whose
//! row is not durable. Since one connection's batches commit one after another, a customer's
//! rows are stored in the order they were submitted, even with several in flight. Under load
//! the batches grow by themselves: rows arriving while one batch commits form the next.
//!
//! `COPY` is PostgreSQL's cheapest way in per row, but costs a round trip more per batch than one
//! statement (`BEGIN` goes with the `COPY`, `COMMIT` after its data), hence the `INSERT` for the
//! few rows that a lightly loaded consumer batches. And `COPY` cannot skip a row that is already there: a
//! re-delivered order (after a crash or a rebalance) makes the whole `COPY` fail with a unique
//! violation (SQLSTATE 23505) on `order_id`. The writer then rolls the transaction back and
//! writes the same batch with `INSERT … SELECT FROM unnest(…) ON CONFLICT (order_id) DO NOTHING
//! RETURNING order_id`, which stores the new rows and reports the others as
//! [`Stored::Duplicate`]. Re-deliveries come in runs, so the connection keeps using that
//! `INSERT` while its batches still meet rows already stored, and returns to `COPY` after the
//! first batch that meets none.
//!
//! While the database is unreachable the writer keeps the batch, reconnects with exponential
//! backoff (100 ms doubling to 2 s) and writes it when the database is back: callers wait,
//! nothing is lost. Only a row that the database itself rejects (a value too long, say) fails,
//! alone: the batch is retried row by row to find it, and its caller gets
//! [`StoreError::Rejected`].

use std::collections::HashSet;
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flowodm::runner::CancellationToken;
use futures_util::SinkExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client as PgClient, NoTls, Statement};

use crate::latency::Histogram;
use crate::order::Order;

/// The DDL of the table and its indexes.
pub const SCHEMA_SQL: &str = "
CREATE TABLE IF NOT EXISTS orders (
    order_id VARCHAR(50) PRIMARY KEY,
    customer_id VARCHAR(50) NOT NULL,
    items JSONB NOT NULL,
    total_amount DECIMAL(10,2) NOT NULL,
    status VARCHAR(20) NOT NULL,
    created_at TIMESTAMP NOT NULL,
    processed_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    ingest_seq BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX IF NOT EXISTS idx_orders_customer_id ON orders (customer_id);
CREATE INDEX IF NOT EXISTS idx_orders_created_at ON orders (created_at);
CREATE INDEX IF NOT EXISTS idx_orders_items ON orders USING GIN (items);
CREATE INDEX IF NOT EXISTS idx_orders_customer_created ON orders (customer_id, created_at);
";

/// The fast path: every row of the batch is new.
const COPY_SQL: &str =
    "COPY orders (order_id, customer_id, items, total_amount, status, created_at)
FROM STDIN (FORMAT binary)";

/// The path for batches holding rows already stored: those are skipped, the others returned.
const INSERT_SQL: &str = "
INSERT INTO orders (order_id, customer_id, items, total_amount, status, created_at)
SELECT o, c, i::jsonb, t::numeric, s, TIMESTAMP 'epoch' + m * INTERVAL '1 millisecond'
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[])
     AS r(o, c, i, t, s, m)
ON CONFLICT (order_id) DO NOTHING
RETURNING order_id";

/// Where the table lives: the database and, optionally, a schema of its own.
#[derive(Clone, PartialEq, Eq)]
pub struct Database {
    /// A `postgres://` connection string (`DATABASE_URL`).
    pub url: String,
    /// The schema that holds `orders` (`DATABASE_SCHEMA`; created if missing); `None` for the
    /// connection's default (`public`).
    pub schema: Option<String>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("Database")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// `DATABASE_URL` and `DATABASE_SCHEMA`.
    pub fn from_env() -> anyhow::Result<Self> {
        let url = std::env::var("DATABASE_URL")
            .map_err(|_| anyhow::anyhow!("DATABASE_URL is not set"))?;
        let schema = std::env::var("DATABASE_SCHEMA")
            .ok()
            .filter(|s| !s.trim().is_empty());
        Database::new(url, schema)
    }

    /// A database; the schema name must be a plain identifier (`[a-z_][a-z0-9_]*`).
    pub fn new(url: impl Into<String>, schema: Option<String>) -> anyhow::Result<Self> {
        let url = url.into();
        // A malformed URL is a mistake, not an outage: say so instead of retrying forever.
        url.parse::<tokio_postgres::Config>()
            .map_err(|e| anyhow::anyhow!("DATABASE_URL is not a valid PostgreSQL URL: {e}"))?;
        if let Some(s) = &schema {
            let ok = s
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            anyhow::ensure!(ok, "DATABASE_SCHEMA must match [a-z_][a-z0-9_]*, not {s:?}");
        }
        Ok(Database { url, schema })
    }

    /// Connects, with UTC timestamps and the schema first on the search path.
    pub async fn connect(&self) -> Result<PgClient, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "database connection closed");
            }
        });
        let mut setup = String::from("SET TIME ZONE 'UTC';");
        if let Some(s) = &self.schema {
            setup.push_str(&format!("SET search_path TO {s};"));
        }
        client.batch_execute(&setup).await?;
        Ok(client)
    }
}

/// Creates the schema (if one is named), the `orders` table and its indexes, if missing.
pub async fn migrate(db: &Database) -> Result<(), tokio_postgres::Error> {
    let mut client = db.connect().await?;
    let tx = client.transaction().await?;
    // Two consumers starting at once must not both create the table.
    tx.execute("SELECT pg_advisory_xact_lock(7220261122)", &[])
        .await?;
    if let Some(s) = &db.schema {
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {s}"))
            .await?;
    }
    tx.batch_execute(SCHEMA_SQL).await?;
    tx.commit().await
}

/// Whether a database error may pass by itself (the server away, restarting, overloaded), as
/// opposed to one that the same statement would meet again.
pub fn is_transient(e: &tokio_postgres::Error) -> bool {
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection broke or could not be made.
        return true;
    };
    let class = &code.code()[..2];
    matches!(class, "08" | "53" | "57" | "58" | "40")
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
}

/// An error with its cause (`tokio_postgres` shows only "db error" or "error connecting to
/// server" by itself).
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.code().code(), db.message());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Whether the database rejected the data itself (class 22, data exception, or 23, integrity
/// constraint violation): retrying the same row cannot help.
fn is_data_error(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| matches!(&c.code()[..2], "22" | "23"))
}

/// One row of `orders`, ready to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `order_id`.
    pub order_id: String,
    /// `customer_id`.
    pub customer_id: String,
    /// `items`, as JSON text.
    pub items: String,
    /// `total_amount`, as decimal text.
    pub total_amount: String,
    /// `status`.
    pub status: String,
    /// `created_at`, in milliseconds since the epoch (UTC).
    pub created_at_ms: i64,
}

impl From<&Order> for Row {
    fn from(o: &Order) -> Self {
        Row {
            order_id: o.order_id.clone(),
            customer_id: o.customer_id.clone(),
            items: o.items_json(),
            total_amount: o.total_amount.to_string(),
            status: o.status.clone(),
            created_at_ms: o.created_at.timestamp_millis(),
        }
    }
}

/// What became of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Written now, and committed.
    Inserted,
    /// Its `order_id` was already in the table; nothing was written.
    Duplicate,
}

/// Why a row was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The database refused this row (its SQLSTATE and message); it will refuse it again.
    Rejected(String),
    /// The writer is shutting down; the row was not written.
    Closed,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Rejected(m) => write!(f, "the database rejected the row: {m}"),
            StoreError::Closed => f.write_str("the writer is shutting down"),
        }
    }
}

impl std::error::Error for StoreError {}

/// How a [`BatchWriter`] works.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Connections writing batches at once (default 4: while some commit, the next batches form).
    pub connections: usize,
    /// The largest batch (default 1000 rows).
    pub max_batch: usize,
    /// The smallest batch written with `COPY` (default 32 rows); smaller ones, which come when
    /// the load is light and latency matters more than the database's CPU, go in with one
    /// `INSERT` statement.
    pub copy_min_rows: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            connections: 4,
            max_batch: 1000,
            copy_min_rows: 32,
        }
    }
}

/// What a writer did so far.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Rows inserted.
    pub inserted: AtomicU64,
    /// Rows that were already there.
    pub duplicates: AtomicU64,
    /// Rows the database rejected.
    pub rejected: AtomicU64,
    /// Rejected rows written to the dead-letter topic (by the consumer).
    pub dead_lettered: AtomicU64,
    /// Batches that committed.
    pub batches: AtomicU64,
    /// Batches whose `COPY` met a row already in the table (and that were then written with
    /// `INSERT … ON CONFLICT DO NOTHING`).
    pub copy_conflicts: AtomicU64,
    /// Batches written with `INSERT … ON CONFLICT DO NOTHING` rather than `COPY`: those smaller
    /// than `copy_min_rows`, those whose `COPY` met a row already stored, and the ones after
    /// them on the same connection until a batch met none.
    pub insert_batches: AtomicU64,
    /// Failed attempts at connecting or at writing a batch (each retried).
    pub failed_attempts: AtomicU64,
    /// When the first row was inserted (ms since the epoch; 0 before).
    pub first_insert_ms: AtomicU64,
    /// When the latest row was inserted (ms since the epoch).
    pub last_insert_ms: AtomicU64,
    /// From `created_at` to the commit of the row's insert, for inserted rows.
    pub latency: Mutex<Histogram>,
    /// How long each batch's insert took, from sending it to its commit.
    pub commit: Mutex<Histogram>,
}

/// What to do with a row's outcome; runs on the writer's task (keep it short).
pub type Done = Box<dyn FnOnce(Result<Stored, StoreError>) + Send + Sync>;

struct Pending {
    row: Row,
    done: Done,
}

/// Writes rows in batches; see the [module docs](self).
#[derive(Clone)]
pub struct BatchWriter {
    txs: Vec<mpsc::Sender<Pending>>,
    stats: Arc<WriterStats>,
}

impl std::fmt::Debug for BatchWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchWriter")
            .field("connections", &self.txs.len())
            .finish_non_exhaustive()
    }
}

/// The writer's tasks, to stop them once nothing more will be stored.
#[derive(Debug)]
pub struct WriterHandle {
    tasks: JoinSet<()>,
    cancel: CancellationToken,
}

impl WriterHandle {
    /// Lets the writers finish what they hold (when no more rows come: every [`BatchWriter`]
    /// clone dropped) or, after `grace`, stops them; rows not written then get
    /// [`StoreError::Closed`].
    pub async fn close(mut self, grace: Duration) {
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all).await.is_err() {
            self.cancel.cancel();
            while self.tasks.join_next().await.is_some() {}
        }
    }
}

impl BatchWriter {
    /// Starts the writer's connections (they connect lazily, and keep trying).
    pub fn start(db: Database, config: WriterConfig) -> (BatchWriter, WriterHandle) {
        let stats = Arc::new(WriterStats::default());
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let mut txs = Vec::new();
        for id in 0..config.connections.max(1) {
            let (tx, rx) = mpsc::channel::<Pending>(config.max_batch.max(1) * 2);
            txs.push(tx);
            let w = Worker {
                id,
                db: db.clone(),
                rx,
                stats: stats.clone(),
                cancel: cancel.clone(),
                max_batch: config.max_batch.max(1),
                copy_min_rows: config.copy_min_rows,
                conn: None,
                insert_next: false,
            };
            tasks.spawn(w.run());
        }
        (BatchWriter { txs, stats }, WriterHandle { tasks, cancel })
    }

    /// Stores `row` and returns once its batch has committed (or the row was already there).
    pub async fn store(&self, row: Row) -> Result<Stored, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.submit(
            row,
            Box::new(move |outcome| {
                let _ = tx.send(outcome);
            }),
        )
        .await?;
        rx.await.unwrap_or(Err(StoreError::Closed))
    }

    /// Queues `row` (waiting while the writer's queue is full) and returns; `done` gets the
    /// outcome once the row's batch has committed. If the writer is stopped first, `done` is
    /// dropped without being called.
    ///
    /// Rows of one customer always go to the same connection, whose batches commit one after
    /// another in the order the rows were queued: a customer's orders are stored in the order
    /// they were submitted, even when several are in flight.
    pub async fn submit(&self, row: Row, done: Done) -> Result<(), StoreError> {
        let i = shard(&row.customer_id, self.txs.len());
        self.txs[i]
            .send(Pending { row, done })
            .await
            .map_err(|_| StoreError::Closed)
    }

    /// What the writer did so far.
    pub fn stats(&self) -> &Arc<WriterStats> {
        &self.stats
    }
}

struct Conn {
    client: PgClient,
    copy: Statement,
    insert: Statement,
}

struct Worker {
    id: usize,
    db: Database,
    rx: mpsc::Receiver<Pending>,
    stats: Arc<WriterStats>,
    cancel: CancellationToken,
    max_batch: usize,
    copy_min_rows: usize,
    conn: Option<Conn>,
    /// Whether the last batch met rows already stored: the next one is then written with the
    /// `INSERT` directly, as re-deliveries come in runs.
    insert_next: bool,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

impl Worker {
    async fn run(mut self) {
        // Connect before the first row, not on it.
        if self.connection().await.is_none() {
            return;
        }
        let mut batch = Vec::with_capacity(self.max_batch);
        loop {
            // Whatever waits, up to max_batch: rows that came while the last batch committed.
            let n = tokio::select! {
                n = self.rx.recv_many(&mut batch, self.max_batch) => n,
                _ = self.cancel.cancelled() => 0,
            };
            if n == 0 {
                return;
            }
            let rows = std::mem::replace(&mut batch, Vec::with_capacity(self.max_batch));
            self.write(rows).await;
        }
    }

    async fn connection(&mut self) -> Option<&Conn> {
        let mut backoff = FIRST_BACKOFF;
        loop {
            if self.conn.as_ref().is_some_and(|c| !c.client.is_closed()) {
                return self.conn.as_ref();
            }
            self.conn = None;
            let attempt = async {
                let client = self.db.connect().await?;
                let copy = client.prepare(COPY_SQL).await?;
                let insert = client.prepare(INSERT_SQL).await?;
                Ok::<_, tokio_postgres::Error>(Conn {
                    client,
                    copy,
                    insert,
                })
            };
            match attempt.await {
                Ok(c) => {
                    tracing::debug!(writer = self.id, "connected to the database");
                    self.conn = Some(c);
                }
                Err(e) => {
                    tracing::warn!(writer = self.id, error = %describe(&e), retry_in_ms = backoff.as_millis() as u64, "cannot connect to the database; retrying");
                    self.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("orders_db_errors_total").increment(1);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = self.cancel.cancelled() => return None,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Writes a batch, retrying through outages; every row's caller hears the outcome.
    async fn write(&mut self, batch: Vec<Pending>) {
        let mut backoff = FIRST_BACKOFF;
        let mut by_copy = !self.insert_next && batch.len() >= self.copy_min_rows;
        loop {
            let Some(conn) = self.connection().await else {
                return; // cancelled: the rows' `done` are dropped uncalled
            };
            let started = Instant::now();
            // The batch in COPY's binary format (encoded again on a retry, which is rare); a
            // value that does not fit the format sends the batch to the INSERT, so that the
            // database judges it.
            let data = if by_copy { copy_data(&batch) } else { None };
            by_copy = data.is_some();
            let written = match data {
                Some(data) => copy(conn, data).await.map(|()| None),
                None => insert(conn, batch.iter().map(|p| &p.row)).await.map(Some),
            };
            match written {
                Ok(inserted) => {
                    if let Some(ids) = &inserted {
                        self.insert_next = ids.len() < batch.len();
                        self.stats.insert_batches.fetch_add(1, Ordering::Relaxed);
                    }
                    self.finish(batch, inserted.as_ref(), started.elapsed());
                    return;
                }
                Err(e) if by_copy && e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                    // A row already stored (a re-delivery): the same batch again, skipping it.
                    tracing::debug!(writer = self.id, rows = batch.len(), error = %describe(&e), "the batch holds rows already stored; writing it with INSERT … ON CONFLICT DO NOTHING");
                    self.stats.copy_conflicts.fetch_add(1, Ordering::Relaxed);
                    by_copy = false;
                }
                Err(e) if is_data_error(&e) && batch.len() > 1 => {
                    tracing::warn!(writer = self.id, rows = batch.len(), error = %describe(&e), "a row of the batch was rejected; writing the rows one by one");
                    for p in batch {
                        Box::pin(self.write(vec![p])).await;
                    }
                    return;
                }
                Err(e) if is_data_error(&e) => {
                    let p = batch.into_iter().next().expect("one row");
                    let message = describe(&e);
                    tracing::error!(order_id = %p.row.order_id, error = %message, "the database rejected the order");
                    self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("orders_rejected_total").increment(1);
                    (p.done)(Err(StoreError::Rejected(message)));
                    return;
                }
                Err(e) => {
                    self.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("orders_db_errors_total").increment(1);
                    let transient = is_transient(&e);
                    if transient {
                        tracing::warn!(writer = self.id, rows = batch.len(), error = %describe(&e), retry_in_ms = backoff.as_millis() as u64, "writing a batch failed; retrying");
                    } else {
                        tracing::error!(writer = self.id, rows = batch.len(), error = %describe(&e), retry_in_ms = backoff.as_millis() as u64, "writing a batch failed; retrying");
                    }
                    self.conn = None;
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = self.cancel.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Reports a committed batch; `inserted` holds the ids written, `None` if all were.
    fn finish(&self, batch: Vec<Pending>, inserted: Option<&HashSet<String>>, took: Duration) {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let now_us = chrono::Utc::now().timestamp_micros();
        let n = batch.len() as u64;
        let fresh = inserted.map_or(n, |ids| ids.len() as u64);
        let is_new = |p: &Pending| inserted.is_none_or(|ids| ids.contains(&p.row.order_id));
        {
            let mut h = self.stats.latency.lock().expect("latency");
            for p in &batch {
                if is_new(p) {
                    let us = (now_us - p.row.created_at_ms * 1000).max(0) as u64;
                    let d = Duration::from_micros(us);
                    h.record(d);
                    metrics::histogram!("orders_end_to_end_seconds").record(d.as_secs_f64());
                }
            }
        }
        let s = &self.stats;
        s.commit.lock().expect("commit").record(took);
        s.inserted.fetch_add(fresh, Ordering::Relaxed);
        s.duplicates.fetch_add(n - fresh, Ordering::Relaxed);
        s.batches.fetch_add(1, Ordering::Relaxed);
        if fresh > 0 {
            let _ = s.first_insert_ms.compare_exchange(
                0,
                now_ms as u64,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            s.last_insert_ms.fetch_max(now_ms as u64, Ordering::Relaxed);
        }
        metrics::counter!("orders_stored_total").increment(fresh);
        metrics::counter!("orders_duplicates_total").increment(n - fresh);
        metrics::histogram!("orders_batch_rows").record(n as f64);
        metrics::histogram!("orders_batch_seconds").record(took.as_secs_f64());
        tracing::debug!(
            writer = self.id,
            rows = n,
            inserted = fresh,
            ms = took.as_secs_f64() * 1e3,
            "batch committed"
        );
        for p in batch {
            let outcome = if is_new(&p) {
                Stored::Inserted
            } else {
                Stored::Duplicate
            };
            (p.done)(Ok(outcome));
        }
    }
}

/// One `COPY` of the batch in its own transaction; the batch is stored when it returns `Ok`, and
/// not at all otherwise.
///
/// Two round trips: `BEGIN` goes out with the `COPY` (the client sends requests in the order
/// they are made, and the server answers them in that order), and `COMMIT` right after the data.
/// If the `COPY` fails, its transaction is aborted and that `COMMIT` ends it as a rollback.
async fn copy(conn: &Conn, data: Vec<u8>) -> Result<(), tokio_postgres::Error> {
    let client = &conn.client;
    let (begun, sink) = tokio::join!(
        client.batch_execute("BEGIN"),
        client.copy_in::<_, Cursor<Vec<u8>>>(&conn.copy)
    );
    let sent = async {
        begun?;
        let mut sink = Box::pin(sink?);
        sink.send(Cursor::new(data)).await?;
        Ok::<_, tokio_postgres::Error>(sink)
    }
    .await;
    let mut sink = match sent {
        Ok(sink) => sink,
        // Nothing was committed; a failed ROLLBACK (the connection broke) is the error to act
        // on, as the caller then reconnects.
        Err(e) => return client.batch_execute("ROLLBACK").await.and(Err(e)),
    };
    // The rows are durable only once COMMIT returns (the COPY's own completion comes first).
    let (copied, committed) = tokio::join!(sink.as_mut().finish(), client.batch_execute("COMMIT"));
    copied?;
    committed
}

/// PostgreSQL's binary `COPY` format of the batch: a header, then per row the number of fields
/// and each field as its length and its binary value. `None` if a value does not fit the format
/// (a total that is not a plain decimal, say).
fn copy_data(batch: &[Pending]) -> Option<Vec<u8>> {
    let size: usize = batch
        .iter()
        .map(|p| 64 + p.row.order_id.len() + p.row.customer_id.len() + p.row.items.len())
        .sum();
    let mut out = Vec::with_capacity(COPY_HEADER.len() + 8 + size + 2);
    out.extend_from_slice(COPY_HEADER);
    out.extend_from_slice(&0i32.to_be_bytes()); // flags
    out.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    for p in batch {
        let r = &p.row;
        out.extend_from_slice(&6i16.to_be_bytes());
        put_field(&mut out, r.order_id.as_bytes())?;
        put_field(&mut out, r.customer_id.as_bytes())?;
        // jsonb: a version byte (1), then the JSON text.
        put_len(&mut out, r.items.len() + 1)?;
        out.push(1);
        out.extend_from_slice(r.items.as_bytes());
        put_numeric(&mut out, &r.total_amount)?;
        put_field(&mut out, r.status.as_bytes())?;
        // timestamp: microseconds since 2000-01-01 00:00:00.
        let us = r
            .created_at_ms
            .checked_mul(1000)?
            .checked_sub(PG_EPOCH_UNIX_US)?;
        put_field(&mut out, &us.to_be_bytes())?;
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    Some(out)
}

const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// 2000-01-01 00:00:00 UTC in microseconds since the Unix epoch.
const PG_EPOCH_UNIX_US: i64 = 946_684_800_000_000;

fn put_len(out: &mut Vec<u8>, len: usize) -> Option<()> {
    out.extend_from_slice(&i32::try_from(len).ok()?.to_be_bytes());
    Some(())
}

fn put_field(out: &mut Vec<u8>, value: &[u8]) -> Option<()> {
    put_len(out, value.len())?;
    out.extend_from_slice(value);
    Some(())
}

/// A decimal in text (`[-]digits[.digits]`) as a binary `numeric`: the number of base-10000
/// digits, the weight of the first (the power of 10000 it counts), the sign, the scale (digits
/// after the point), then the digits, without leading or trailing zero ones.
fn put_numeric(out: &mut Vec<u8>, text: &str) -> Option<()> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int = int.trim_start_matches('0');
    let scale = i16::try_from(frac.len()).ok()?;
    let start = out.len();
    out.extend_from_slice(&[0; 12]); // length and header, filled in below
    let mut weight = i32::try_from(int.len().div_ceil(4)).ok()? - 1;
    let mut ndigits = 0usize;
    let mut push = |out: &mut Vec<u8>, group: i16| {
        if ndigits == 0 && group == 0 {
            weight -= 1; // a leading zero digit
        } else {
            out.extend_from_slice(&group.to_be_bytes());
            ndigits += 1;
        }
    };
    // The integer part in fours from the point leftwards: the first group may be shorter.
    let first = int.len() - 4 * int.len().div_ceil(4).saturating_sub(1);
    let (head, tail) = int.split_at(first);
    if !head.is_empty() {
        push(out, head.parse().ok()?);
    }
    for group in tail.as_bytes().chunks(4) {
        push(out, std::str::from_utf8(group).ok()?.parse().ok()?);
    }
    // The fraction in fours from the point rightwards: the last group is padded with zeros.
    for group in frac.as_bytes().chunks(4) {
        let value: i16 = std::str::from_utf8(group).ok()?.parse().ok()?;
        push(out, value * 10i16.pow(4 - group.len() as u32));
    }
    while ndigits > 0 && out[out.len() - 2..] == [0, 0] {
        out.truncate(out.len() - 2);
        ndigits -= 1;
    }
    let (weight, sign) = if ndigits == 0 {
        (0, NUMERIC_POS)
    } else if negative {
        (i16::try_from(weight).ok()?, NUMERIC_NEG)
    } else {
        (i16::try_from(weight).ok()?, NUMERIC_POS)
    };
    let mut header = [0u8; 12];
    header[..4].copy_from_slice(&i32::try_from(8 + 2 * ndigits).ok()?.to_be_bytes());
    header[4..6].copy_from_slice(&i16::try_from(ndigits).ok()?.to_be_bytes());
    header[6..8].copy_from_slice(&weight.to_be_bytes());
    header[8..10].copy_from_slice(&sign.to_be_bytes());
    header[10..12].copy_from_slice(&scale.to_be_bytes());
    out[start..start + 12].copy_from_slice(&header);
    Some(())
}

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;

/// One multi-row insert (a single statement: committed when it returns); the ids inserted.
async fn insert<'a>(
    conn: &Conn,
    rows: impl Iterator<Item = &'a Row>,
) -> Result<HashSet<String>, tokio_postgres::Error> {
    let (mut o, mut c, mut i, mut t, mut s, mut m) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for r in rows {
        o.push(r.order_id.as_str());
        c.push(r.customer_id.as_str());
        i.push(r.items.as_str());
        t.push(r.total_amount.as_str());
        s.push(r.status.as_str());
        m.push(r.created_at_ms);
    }
    let rows = conn
        .client
        .query(&conn.insert, &[&o, &c, &i, &t, &s, &m])
        .await?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

/// Which of `n` connections writes a customer's rows.
fn shard(customer_id: &str, n: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    customer_id.hash(&mut h);
    (h.finish() % n.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::Database;

    #[test]
    fn a_malformed_database_url_is_an_error_not_an_outage() {
        let e = Database::new("postgres://u@host:notaport/db", None).unwrap_err();
        assert!(e.to_string().contains("DATABASE_URL is not a valid"), "{e}");
        assert!(Database::new("postgres://postgres@127.0.0.1:15432/flowodm", None).is_ok());
        assert!(Database::new("postgres://h/db", Some("Bad-Name".into())).is_err());
    }
}

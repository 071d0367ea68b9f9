//! Consumer loops: a long-running service that handles every message of a topic.
//!
//! ```no_run
//! # async fn demo() -> flowodm::Result<()> {
//! use flowodm::runner::{ConsumerLoop, HandlerError};
//!
//! #[derive(flowodm::Model, Debug)]
//! #[flowodm(topic = "orders", consumer_group = "order-store")]
//! struct Order { order_id: String }
//!
//! let client = flowodm::Client::from_env()?;
//! let shutdown = flowodm::runner::shutdown_on_signals(); // SIGTERM / SIGINT
//! ConsumerLoop::<Order>::builder(&client)
//!     .max_concurrent(10)
//!     .max_retries(3)
//!     .run(|record| async move {
//!         println!("storing {}", record.value.order_id);
//!         Ok::<(), HandlerError>(())
//!     }, shutdown)
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # Delivery
//!
//! At-least-once by default: a message's offset is committed only when it and every earlier
//! message of its partition have finished — handled, or sent to the dead-letter topic (a
//! per-partition contiguous watermark). A crash re-delivers at most the messages that had not
//! finished. [`Semantics::AtMostOnce`] commits a message before handling it instead. A handler
//! that passes records on to a batching writer uses [`run_with_ack`](LoopBuilder::run_with_ack):
//! each message finishes when the writer acknowledges it, not when the handler returns. For
//! consume-transform-produce, [`run_exactly_once`](LoopBuilder::run_exactly_once) publishes each
//! input's outputs and commits its offset in one Kafka transaction: exactly once for
//! `read_committed` readers.
//!
//! # Ordering and concurrency
//!
//! Up to `max_concurrent` messages are handled at once. By default ([`OrderBy::Partition`])
//! messages of one partition are handled one at a time, in offset order, so at most one message
//! per assigned partition is in flight. [`OrderBy::Key`] only keeps the order of messages with
//! the same key (messages without a key share one lane per partition): a topic with few
//! partitions and many keys — orders keyed by customer — then gets real concurrency, and the
//! watermark still never commits past an unfinished message.
//!
//! Fetched messages reach their lanes in runs (what one wake of the poller found), and a lane
//! stores its finished offsets once per run, or once its handler calls took a few
//! milliseconds, not once per message. The poller only copies messages out of librdkafka; a
//! lane decodes them where it handles them. On a multi-thread runtime the lanes are tasks of
//! their own, so fetching, decoding and handling run side by side on the runtime's threads
//! (the buffers of handled messages go back to the poller to be filled again, rather than
//! being freed on a thread other than the one that allocated them, which makes the allocator's
//! arenas contend). On a current-thread runtime a lane that gets
//! work first runs in the polling task and becomes a task of its own as soon as its handler
//! has to wait, for about a millisecond per wake: there is no other thread to hand it to, and
//! a handler that is ready at once then costs no task switch. Keep blocking calls out of async
//! handlers (use [`run_blocking`](LoopBuilder::run_blocking) or `spawn_blocking` for them), as
//! on any async runtime.
//!
//! # Failures
//!
//! A handler returns [`HandlerError::retryable`] (the default for any error) or
//! [`HandlerError::fatal`]. Retryable errors are retried up to `max_retries` times with
//! exponential backoff and jitter, starting at `retry_delay`; then, like fatal errors and messages
//! that cannot be decoded, the message goes to the dead-letter topic (default `{topic}.DLQ`) with
//! its original key, value and headers plus:
//!
//! | header | value |
//! |---|---|
//! | `flowodm.error.kind` | `handler`, `deserialization`, … |
//! | `flowodm.error.message` | the error's text |
//! | `flowodm.original.topic` / `.partition` / `.offset` | where it came from |
//! | `flowodm.attempts` | how many times the handler ran |
//!
//! A message whose writer schema cannot be fetched because the registry is unreachable (a
//! retriable error) is not dead-lettered: its lane waits with the same backoff (asking again at
//! least once a second), the message unfinished, until the schema comes, shutdown begins or
//! the partition is revoked. Each wait counts in [`LoopStats::registry_waits`].
//!
//! The dead-letter write is acknowledged before the offset moves on; if it cannot be written, the
//! loop keeps trying and never skips the message. An [`error_handler`](LoopBuilder::error_handler)
//! can decide otherwise per failure ([`Decision`]). A [`circuit_breaker`](LoopBuilder::circuit_breaker)
//! stops calling the handler for a while after repeated retryable failures (a dependency is down),
//! and a [`rate_limit`](LoopBuilder::rate_limit) caps handler calls per second. Tombstones are not handed to the handler; they
//! are counted and passed over.
//!
//! # Lifecycle
//!
//! `on_startup` runs before the first poll and `on_shutdown` after the last commit — also when
//! start-up failed. Cancelling the [`CancellationToken`] stops fetching, lets in-flight messages
//! finish (up to `shutdown_timeout`), commits, and leaves the group. [`shutdown_on_signals`]
//! makes a token that SIGTERM and SIGINT cancel; it works from any thread and adds to, rather than
//! replaces, the application's own signal handling. When partitions are taken away in a
//! rebalance, their in-flight messages finish and their offsets are committed first; messages
//! of those partitions that were fetched but not started are dropped (the new owner reads them
//! from the committed offset). This wait happens inside librdkafka's rebalance callback, which
//! runs in the poll on the loop's runtime: on a current-thread runtime the handlers could not
//! progress meanwhile, so there the loop does not wait and the new owner may handle the
//! unfinished messages again (at-least-once still holds). Use a multi-thread runtime (tokio's
//! default) for services that rebalance often.
//!
//! # Metrics
//!
//! Through the `metrics` facade, labelled by `topic`: `flowodm_loop_processed_total`,
//! `flowodm_loop_failed_total`, `flowodm_loop_retried_total`, `flowodm_loop_dead_lettered_total`,
//! `flowodm_loop_tombstones_total`, `flowodm_loop_circuit_opened_total`,
//! `flowodm_loop_registry_waits_total` (counters) and `flowodm_loop_handler_seconds` (histogram).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::task::JoinSet;
pub use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::consumer::{Consumer, ConsumerBuilder, RawMessage, Record, TopicPartition};
use crate::error::{Error, Result};
use crate::fasthash::FastMap;
use crate::model::Model;
use crate::producer::Producer;
use crate::profiles::Profile;

/// A handler's failure: retry it, or not.
#[derive(Debug)]
pub struct HandlerError {
    retryable: bool,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl HandlerError {
    /// A failure that may pass (a database briefly away): retried.
    pub fn retryable(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        HandlerError {
            retryable: true,
            source: e.into(),
        }
    }

    /// A failure that will repeat (invalid data): straight to the dead-letter topic.
    pub fn fatal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        HandlerError {
            retryable: false,
            source: e.into(),
        }
    }

    /// Whether it is retried.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source.fmt(f)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(e: E) -> Self {
        HandlerError::retryable(e)
    }
}

/// What to do with a failed message, decided by an error handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Run the handler again (after the backoff), regardless of the retry count.
    Retry,
    /// Pass over it: the offset moves on, nothing is written anywhere (counted as failed).
    Skip,
    /// Send it to the dead-letter topic.
    DeadLetter,
    /// Stop the loop without committing the message.
    Stop,
}

/// A failure as the error handler sees it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Failure<'a> {
    /// The message.
    pub raw: &'a RawMessage,
    /// How many times the handler ran (0 when the message could not be decoded).
    pub attempts: u32,
    /// Whether the error says a retry may help.
    pub retryable: bool,
    /// The error's kind (`handler`, `deserialization`, …).
    pub kind: &'a str,
    /// The error's text.
    pub message: String,
}

impl<'a> Failure<'a> {
    /// A message that could not be decoded (`source` says why): the handler never ran.
    fn undecodable(raw: &'a RawMessage, source: &'a Error) -> Self {
        Failure {
            raw,
            attempts: 0,
            retryable: false,
            kind: source.kind().as_str(),
            message: source.to_string(),
        }
    }
}

/// When offsets are committed relative to handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Semantics {
    /// After the message (and every earlier one of its partition) finished.
    #[default]
    AtLeastOnce,
    /// Before the handler runs: a crash loses the message, never repeats it.
    AtMostOnce,
}

/// Which messages must be handled one after another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OrderBy {
    /// All messages of a partition, in offset order (one in flight per partition).
    #[default]
    Partition,
    /// Messages with the same key (within a partition), in offset order; different keys run
    /// concurrently.
    Key,
}

type Hook = Box<dyn FnOnce() -> std::pin::Pin<Box<dyn Future<Output = Result<()>> + Send>> + Send>;
type ErrorHandler = Arc<dyn Fn(&Failure<'_>) -> Decision + Send + Sync>;

/// What a loop did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoopStats {
    /// Messages handled successfully.
    pub processed: u64,
    /// Messages that failed for good (dead-lettered or skipped).
    pub failed: u64,
    /// Handler retries.
    pub retried: u64,
    /// Messages written to the dead-letter topic.
    pub dead_lettered: u64,
    /// Tombstones passed over.
    pub tombstones: u64,
    /// Waits for an unreachable registry: tries to fetch a message's writer schema that failed
    /// and were followed by a wait (for the exactly-once loop, batches aborted for it).
    pub registry_waits: u64,
}

/// A consumer loop over the model `T`; see the [module docs](self).
#[derive(Debug)]
pub struct ConsumerLoop<T>(std::marker::PhantomData<fn() -> T>);

impl<T: Model + Send + Sync> ConsumerLoop<T> {
    /// Starts declaring a loop.
    pub fn builder(client: &Client) -> LoopBuilder<T> {
        LoopBuilder {
            client: client.clone(),
            consumer: client.consumer::<T>(),
            max_concurrent: 10,
            max_retries: 0,
            retry_delay: Duration::from_secs(1),
            max_retry_delay: Duration::from_secs(60),
            poll_timeout: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(30),
            commit_interval: Duration::from_secs(1),
            dead_letter_topic: None,
            semantics: Semantics::AtLeastOnce,
            order_by: OrderBy::Partition,
            rate_limit: None,
            circuit_breaker: None,
            error_handler: None,
            on_startup: None,
            on_shutdown: None,
        }
    }
}

/// Declares a consumer loop; defaults as FlowODM for Python: `max_retries` 0, `retry_delay` 1 s,
/// `poll_timeout` 1 s, `max_concurrent` 10, profile `LongRunning`.
pub struct LoopBuilder<T> {
    client: Client,
    consumer: ConsumerBuilder<T>,
    max_concurrent: usize,
    max_retries: u32,
    retry_delay: Duration,
    max_retry_delay: Duration,
    poll_timeout: Duration,
    shutdown_timeout: Duration,
    commit_interval: Duration,
    dead_letter_topic: Option<String>,
    semantics: Semantics,
    order_by: OrderBy,
    rate_limit: Option<Duration>,
    circuit_breaker: Option<(u32, Duration)>,
    error_handler: Option<ErrorHandler>,
    on_startup: Option<Hook>,
    on_shutdown: Option<Hook>,
}

impl<T> std::fmt::Debug for LoopBuilder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopBuilder")
            .field("consumer", &self.consumer)
            .field("max_concurrent", &self.max_concurrent)
            .field("max_retries", &self.max_retries)
            .field("semantics", &self.semantics)
            .field("order_by", &self.order_by)
            .finish()
    }
}

impl<T: Model + Send + Sync> LoopBuilder<T> {
    /// Adjusts the consumer (group, topics, profile, properties).
    pub fn consumer(mut self, f: impl FnOnce(ConsumerBuilder<T>) -> ConsumerBuilder<T>) -> Self {
        self.consumer = f(self.consumer);
        self
    }

    /// The consumer group.
    pub fn group(self, group: impl Into<String>) -> Self {
        let group = group.into();
        self.consumer(|c| c.group(group))
    }

    /// The tuning profile.
    pub fn profile(self, profile: Profile) -> Self {
        self.consumer(|c| c.profile(profile))
    }

    /// How many messages are handled at once (default 10); see [`order_by`](Self::order_by).
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n.max(1);
        self
    }

    /// How many times a retryable failure is retried (default 0).
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// The first retry's delay; each next one doubles, with jitter, up to
    /// [`max_retry_delay`](Self::max_retry_delay) (default 1 s).
    pub fn retry_delay(mut self, d: Duration) -> Self {
        self.retry_delay = d;
        self
    }

    /// The longest delay between retries, however many there were (default 60 s).
    pub fn max_retry_delay(mut self, d: Duration) -> Self {
        self.max_retry_delay = d;
        self
    }

    /// How long one poll waits (default 1 s).
    pub fn poll_timeout(mut self, d: Duration) -> Self {
        self.poll_timeout = d;
        self
    }

    /// How long in-flight messages may take to finish at shutdown (default 30 s).
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.shutdown_timeout = d;
        self
    }

    /// How often finished offsets are committed (default 1 s; always at shutdown and rebalance).
    pub fn commit_interval(mut self, d: Duration) -> Self {
        self.commit_interval = d;
        self
    }

    /// The dead-letter topic (default `{topic}.DLQ`).
    pub fn dead_letter_topic(mut self, topic: impl Into<String>) -> Self {
        self.dead_letter_topic = Some(topic.into());
        self
    }

    /// At-least-once (default) or at-most-once.
    pub fn semantics(mut self, s: Semantics) -> Self {
        self.semantics = s;
        self
    }

    /// Which messages keep their order: all of a partition (default) or those with one key.
    ///
    /// ```no_run
    /// # async fn demo(client: flowodm::Client) -> flowodm::Result<()> {
    /// use flowodm::runner::{ConsumerLoop, HandlerError, OrderBy};
    /// # #[derive(flowodm::Model)]
    /// # #[flowodm(topic = "orders", key = "customer_id", consumer_group = "store")]
    /// # struct Order { order_id: String, customer_id: String }
    /// ConsumerLoop::<Order>::builder(&client)
    ///     .order_by(OrderBy::Key) // one customer's orders in order, customers in parallel
    ///     .max_concurrent(200)
    ///     .run(|_record| async { Ok::<(), HandlerError>(()) }, Default::default())
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn order_by(mut self, order: OrderBy) -> Self {
        self.order_by = order;
        self
    }

    /// At most `per_second` handler calls per second across the loop (retries included), for a
    /// downstream service with a quota. Messages wait in their lanes meanwhile; when too many
    /// wait, fetching stops (see the module docs on backpressure).
    ///
    /// ```no_run
    /// # #[derive(flowodm::Model)] #[flowodm(topic = "t")] struct Order { id: String }
    /// # fn demo(b: flowodm::runner::LoopBuilder<Order>) {
    /// let b = b.rate_limit(200); // the payment API allows 200 calls a second
    /// # }
    /// ```
    pub fn rate_limit(mut self, per_second: u32) -> Self {
        self.rate_limit = (per_second > 0).then(|| Duration::from_secs(1) / per_second);
        self
    }

    /// Stops calling the handler for `cooldown` after `failures` retryable failures in a row (a
    /// dependency is down: hammering it helps nobody), then lets one call through as a probe: a
    /// success closes the circuit, a failure opens it again. While open, messages wait (none is
    /// failed or dead-lettered for it) and fetching stops once the buffer is full. Each opening
    /// counts in `flowodm_loop_circuit_opened_total`.
    ///
    /// ```no_run
    /// # #[derive(flowodm::Model)] #[flowodm(topic = "t")] struct Order { id: String }
    /// # fn demo(b: flowodm::runner::LoopBuilder<Order>) {
    /// use std::time::Duration;
    /// let b = b.max_retries(u32::MAX).circuit_breaker(5, Duration::from_secs(10));
    /// # }
    /// ```
    pub fn circuit_breaker(mut self, failures: u32, cooldown: Duration) -> Self {
        self.circuit_breaker = Some((failures.max(1), cooldown));
        self
    }

    /// Decides what happens to each failure (instead of retry-then-dead-letter).
    pub fn error_handler(
        mut self,
        f: impl Fn(&Failure<'_>) -> Decision + Send + Sync + 'static,
    ) -> Self {
        self.error_handler = Some(Arc::new(f));
        self
    }

    /// Runs before the first poll; an error stops the loop (after `on_shutdown`).
    pub fn on_startup<F, Fut>(mut self, f: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.on_startup = Some(Box::new(move || Box::pin(f())));
        self
    }

    /// Runs after the last commit, whatever happened before.
    pub fn on_shutdown<F, Fut>(mut self, f: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.on_shutdown = Some(Box::new(move || Box::pin(f())));
        self
    }

    /// Runs the loop until `shutdown` is cancelled (or a handler decision stops it).
    pub async fn run<H, Fut>(self, handler: H, shutdown: CancellationToken) -> Result<LoopStats>
    where
        H: Fn(Record<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), HandlerError>> + Send + 'static,
    {
        // A message finishes when the handler returns `Ok`: no `Ack` is made, and the worker
        // settles its messages together (see `lane_worker`).
        let mut this = self;
        let hooks = (this.on_startup.take(), this.on_shutdown.take());
        with_hooks(hooks, this.run_inner(Plain(handler), shutdown)).await
    }

    /// Like [`run`](Self::run), but a message counts as finished only when its [`Ack`] is
    /// [done](Ack::done), which may be after the handler returned: the handler can hand the
    /// record to a batching writer and return, the lane moves on to its next message, and the
    /// writer acknowledges each message once its batch is durable. The commit watermark still
    /// never passes an unacknowledged message, and at most `max_concurrent` messages are
    /// running or unacknowledged at once. Shutdown and revocations wait (up to
    /// `shutdown_timeout`) for outstanding acknowledgements.
    ///
    /// Once the handler returned `Ok`, the holder of the `Ack` owns the message: it retries as
    /// it needs; an `Ack` dropped without `done` leaves its message uncommitted (it is handled
    /// again after a restart or rebalance; a warning is logged). If the handler returns an
    /// error, that attempt's `Ack` no longer counts and the loop retries or dead-letters as
    /// usual.
    ///
    /// ```no_run
    /// # async fn demo(client: flowodm::Client) -> flowodm::Result<()> {
    /// use flowodm::runner::{Ack, ConsumerLoop, HandlerError, OrderBy};
    /// # #[derive(flowodm::Model)]
    /// # #[flowodm(topic = "orders", key = "customer_id", consumer_group = "store")]
    /// # struct Order { order_id: String, customer_id: String }
    /// let (tx, mut rx) = tokio::sync::mpsc::channel::<(Order, Ack)>(1000);
    /// tokio::spawn(async move {
    ///     let mut batch = Vec::new();
    ///     while rx.recv_many(&mut batch, 500).await > 0 {
    ///         // INSERT the batch in one transaction, then:
    ///         for (_order, ack) in batch.drain(..) {
    ///             ack.done();
    ///         }
    ///     }
    /// });
    /// ConsumerLoop::<Order>::builder(&client)
    ///     .order_by(OrderBy::Key)
    ///     .max_concurrent(1000)
    ///     .run_with_ack(move |record, ack| {
    ///         let tx = tx.clone();
    ///         async move {
    ///             tx.send((record.value, ack)).await.map_err(HandlerError::fatal)?;
    ///             Ok(())
    ///         }
    ///     }, flowodm::runner::shutdown_on_signals())
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn run_with_ack<H, Fut>(
        mut self,
        handler: H,
        shutdown: CancellationToken,
    ) -> Result<LoopStats>
    where
        H: Fn(Record<T>, Ack) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), HandlerError>> + Send + 'static,
    {
        let hooks = (self.on_startup.take(), self.on_shutdown.take());
        with_hooks(hooks, self.run_inner(WithAck(handler), shutdown)).await
    }

    /// Runs an exactly-once consume-transform-produce loop: the handler turns each record into
    /// the messages to publish (`Vec<U>`), and each batch of input is one transaction of
    /// `producer` (which must be [transactional](crate::producer::ProducerBuilder::transactional)):
    /// its outputs and the input's offsets commit together, or neither does. A
    /// `read_committed` reader of the output sees every input's outputs exactly once, across
    /// crashes, restarts and retries.
    ///
    /// Records are handled one at a time, in order (`max_concurrent` and `order_by` do not
    /// apply); a batch is what the profile's `max_poll_records` and `poll_timeout` collect.
    /// Retries, the error handler and the dead-letter topic work as in [`run`](Self::run); if a
    /// transaction fails, it is aborted, the input is read again from the batch's start and the
    /// batch is retried after a backoff. The input is read `read_committed`. A dead-lettered
    /// message is written outside the transaction, so a batch that is retried after a failed
    /// commit may dead-letter it twice.
    ///
    /// ```no_run
    /// # async fn demo(client: flowodm::Client) -> flowodm::Result<()> {
    /// use flowodm::runner::{ConsumerLoop, HandlerError};
    /// # #[derive(flowodm::Model)]
    /// # #[flowodm(topic = "orders", key = "id", consumer_group = "billing")]
    /// # struct Order { id: String, cents: i64 }
    /// # #[derive(flowodm::Model)]
    /// # #[flowodm(topic = "invoices", key = "id")]
    /// # struct Invoice { id: String, cents_with_tax: i64 }
    /// let invoices = client.producer::<Invoice>().transactional("billing-1").build()?;
    /// ConsumerLoop::<Order>::builder(&client)
    ///     .run_exactly_once(invoices, |order| async move {
    ///         let o = order.value;
    ///         Ok::<_, HandlerError>(vec![Invoice { id: o.id, cents_with_tax: o.cents * 119 / 100 }])
    ///     }, flowodm::runner::shutdown_on_signals())
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn run_exactly_once<U, H, Fut>(
        mut self,
        producer: Producer<U>,
        handler: H,
        shutdown: CancellationToken,
    ) -> Result<LoopStats>
    where
        U: Model + Send + Sync,
        H: Fn(Record<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<Vec<U>, HandlerError>> + Send + 'static,
    {
        let hooks = (self.on_startup.take(), self.on_shutdown.take());
        with_hooks(hooks, self.run_transactional(producer, handler, shutdown)).await
    }

    /// The loop for synchronous code: `handler` runs on blocking threads (so it may do blocking
    /// I/O), and this call blocks until `shutdown` is cancelled. Do not call it from inside an
    /// async runtime; use [`run`](Self::run) there.
    pub fn run_blocking<H>(self, handler: H, shutdown: CancellationToken) -> Result<LoopStats>
    where
        H: Fn(Record<T>) -> std::result::Result<(), HandlerError> + Send + Sync + 'static,
        T: 'static,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::config("runtime", e.to_string()))?;
        let handler = Arc::new(handler);
        runtime.block_on(self.run(
            move |record| {
                let handler = handler.clone();
                async move {
                    tokio::task::spawn_blocking(move || handler(record))
                        .await
                        .unwrap_or_else(|e| {
                            Err(HandlerError::fatal(format!("the handler panicked: {e}")))
                        })
                }
            },
            shutdown,
        ))
    }

    async fn run_inner<H>(self, handler: H, shutdown: CancellationToken) -> Result<LoopStats>
    where
        H: Handle<T>,
    {
        let state = Arc::new(Shared::default());
        let drain_state = state.clone();
        // The revocation drain runs inside the poll; on a current-thread runtime the handlers
        // cannot progress while it waits (see the module docs).
        let one_thread = tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::CurrentThread;
        let grace = if one_thread {
            Duration::ZERO
        } else {
            self.shutdown_timeout
        };
        // Lanes start in the poller only where they could not run beside it (see the module
        // docs).
        let inline_budget = if one_thread {
            INLINE_BUDGET
        } else {
            Duration::ZERO
        };
        // Before partitions go, fetched-but-unstarted messages are dropped and in-flight ones
        // finish (their offsets are then stored and committed by the consumer before it releases
        // them).
        let consumer = self
            .consumer
            .before_revoke(move |revoked| {
                if grace.is_zero() {
                    drain_state.revoke(revoked, grace);
                } else {
                    // The callback runs inside a poll on a runtime worker, and the handler tasks
                    // queued on that worker could not run while it waits: hand them over first.
                    tokio::task::block_in_place(|| drain_state.revoke(revoked, grace));
                }
            })
            .build()?;
        let consumer = Arc::new(consumer);
        let dlq = Arc::new(DeadLetters::new(
            &self.client,
            self.dead_letter_topic.clone(),
        )?);
        let ctx = Arc::new(TaskCtx {
            handler,
            consumer: consumer.clone(),
            dlq,
            state: state.clone(),
            max_retries: self.max_retries,
            retry_delay: self.retry_delay,
            max_retry_delay: self.max_retry_delay,
            semantics: self.semantics,
            error_handler: self.error_handler.clone(),
            gate: Gate::new(self.rate_limit, self.circuit_breaker),
            permits: Arc::new(tokio::sync::Semaphore::new(self.max_concurrent)),
            stop: shutdown.child_token(),
            stopping: Arc::default(),
        });
        // Whatever ends this loop (also dropping it), its workers stop; and they learn of it
        // through a flag, which, unlike the token, costs no lock to read per message.
        let _stop_on_drop = ctx.stop.clone().drop_guard();
        {
            let (stop, stopping) = (ctx.stop.clone(), ctx.stopping.clone());
            tokio::spawn(async move {
                stop.cancelled().await;
                stopping.store(true, AtomicOrdering::Release);
            });
        }

        // Work waits in lanes: one per partition, or per (partition, key). A lane with work has
        // one worker task that handles its items one after another; a semaphore bounds how many
        // items run at once across lanes.
        let high_water = (self.max_concurrent * 20).max(100);
        let low_water = self.max_concurrent * 2;
        let dispatch = Arc::new(Dispatch::new(high_water, low_water, self.max_concurrent));
        let mut workers: JoinSet<Result<()>> = JoinSet::new();
        let mut paused = false;
        let mut full_since: Option<tokio::time::Instant> = None;
        let mut last_commit = Instant::now();
        let mut failure: Option<Error> = None;
        let mut gathered = Gathered::new(state.revocations());
        let make_worker = |lane, budget| lane_worker(ctx.clone(), dispatch.clone(), lane, budget);
        let mut spare_worker = None;

        // One poll at a time, kept across iterations (it owns the buffer it fills). Messages are
        // copied into buffers that the lane workers hand back once they are done with them (see
        // `Dispatch::recycle`): freed on another thread, they would make the allocator's arenas
        // contend for every message.
        let mut slots = Slots::default();
        let mut poll = Box::pin(next_poll(
            consumer.clone(),
            self.poll_timeout,
            slots.next(&dispatch),
        ));
        'poll: loop {
            let buffered = dispatch.buffered.load(AtomicOrdering::Acquire);
            // Backpressure, in two steps. While too much is buffered the loop stops asking for
            // messages: librdkafka's own prefetch queue fills and its fetcher waits, which costs
            // nothing when handlers catch up within milliseconds. Only if the buffer stays full
            // for `PAUSE_AFTER` are the partitions paused, so that polling can go on (serving
            // rebalances, keeping the group membership under max.poll.interval.ms); a paused
            // partition takes up to a second to flow again after it is resumed (librdkafka drops
            // its prefetched messages and fetches them again), so fast handlers never get there.
            let full = buffered >= high_water;
            match (full, full_since) {
                (true, None) => full_since = Some(tokio::time::Instant::now()),
                (false, Some(_)) => full_since = None,
                _ => {}
            }
            let want_pause = if paused {
                buffered > low_water
            } else {
                full_since.is_some_and(|t| t.elapsed() >= PAUSE_AFTER)
            };
            if want_pause != paused {
                let parts = consumer.assignment().unwrap_or_default();
                let r = if want_pause {
                    consumer.pause(&parts)
                } else {
                    consumer.resume(&parts)
                };
                if let Err(e) = r {
                    tracing::warn!(error = %e, "pausing or resuming failed");
                }
                paused = want_pause;
            }
            let fetch = paused || !full;
            let pause_at = full_since.map_or_else(tokio::time::Instant::now, |t| t + PAUSE_AFTER);
            if last_commit.elapsed() >= self.commit_interval {
                // A failed periodic commit (coordinator moving, rebalance in progress) loses
                // nothing: the offsets stay stored and go with the next commit.
                if let Err(e) = consumer.commit_stored() {
                    tracing::warn!(error = %e, "committing finished offsets failed; retrying at the next interval");
                }
                last_commit = Instant::now();
            }
            if ctx.stop.is_cancelled() {
                break;
            }
            tokio::select! {
                _ = ctx.stop.cancelled() => break,
                Some(done) = workers.join_next(), if !workers.is_empty() => {
                    match done {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            failure = Some(e);
                            ctx.cancel();
                        }
                        Err(e) => {
                            failure = Some(Error::config("runtime", format!("a handler task failed: {e}")));
                            ctx.cancel();
                        }
                    }
                }
                _ = dispatch.room.notified(), if !fetch || paused => {}
                _ = tokio::time::sleep_until(pause_at), if !fetch => {}
                polled = &mut poll, if fetch => {
                    // The same box again: a poll is a large future to allocate for each drain.
                    poll.as_mut().set(next_poll(consumer.clone(), self.poll_timeout, slots.next(&dispatch)));
                    // Take what is already fetched without going round the select each time,
                    // gathering it into one run per lane: a lane is handed its run with one
                    // lock and at most one wake-up.
                    let mut next = Some(polled);
                    let mut taken = 0;
                    let buffered = dispatch.buffered.load(AtomicOrdering::Acquire);
                    while let Some((slot, polled)) = next.take() {
                        let item = match polled {
                            // Decoded where it is handled (see `TaskCtx::process`).
                            Ok(true) => Some(Item::of(slot, &state.stats)),
                            Ok(false) => {
                                slots.put_back(slot);
                                None
                            }
                            Err(e) if e.is_retriable() => {
                                slots.put_back(slot);
                                tracing::warn!(error = %e, "poll failed; retrying");
                                None
                            }
                            Err(e) => {
                                failure = Some(e);
                                break 'poll;
                            }
                        };
                        let Some(item) = item else { break };
                        // A revocation ran inside that poll: what was gathered before it keeps
                        // the epoch it was fetched in (and is dropped as stale), what follows
                        // gets the new one.
                        let revocations = state.revocations();
                        if revocations != gathered.revocations {
                            if let Some(e) = gathered.hand_over(&state, &dispatch, &mut workers, &mut spare_worker, make_worker, inline_budget) {
                                failure.get_or_insert(e);
                                ctx.cancel();
                            }
                            gathered.revocations = revocations;
                        }
                        gathered.add(item, self.order_by, &state);
                        taken += 1;
                        if taken < DRAIN_AT_ONCE
                            && buffered + taken < high_water
                            && !ctx.stopping()
                        {
                            let mut slot = slots.next(&dispatch);
                            let polled = consumer.consume_raw(Duration::ZERO, &mut slot).await;
                            next = Some((slot, polled));
                        }
                    }
                    if let Some(e) = gathered.hand_over(&state, &dispatch, &mut workers, &mut spare_worker, make_worker, inline_budget) {
                        failure.get_or_insert(e);
                        ctx.cancel();
                    }
                }
            }
        }

        // Shutdown: no new work (workers stop taking items once `stop` is cancelled); let
        // in-flight messages finish; commit; leave.
        ctx.cancel();
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        while !workers.is_empty() {
            match tokio::time::timeout_at(deadline, workers.join_next()).await {
                Ok(Some(Ok(result))) => {
                    if let (Err(e), None) = (result, &failure) {
                        failure = Some(e);
                    }
                }
                Ok(Some(Err(e))) => tracing::warn!(error = %e, "a handler task failed"),
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        in_flight = workers.len(),
                        "shutdown timeout: abandoning in-flight messages (they are not committed)"
                    );
                    workers.abort_all();
                    break;
                }
            }
        }
        // Handled messages whose acknowledgement is still outstanding get the rest of the
        // deadline.
        while state.any_in_flight() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        consumer.commit_stored()?;
        let stats = state.stats.snapshot();
        match failure {
            Some(e) => Err(e),
            None => Ok(stats),
        }
    }
}

/// What one drain of the poller fetched, as one run per lane, not yet handed to the lanes.
struct Gathered {
    runs: Vec<(Lane, Vec<Queued>)>,
    /// Emptied run buffers to fill again, rather than allocating one per lane and drain.
    spare: Vec<Vec<Queued>>,
    /// Index of each lane's run in `runs` (the last run is tried first).
    index: FastMap<Lane, usize>,
    /// [`Shared::revocations`] when the gathered items' epochs were read.
    revocations: u64,
}

impl Gathered {
    fn new(revocations: u64) -> Self {
        Gathered {
            runs: Vec::new(),
            spare: Vec::new(),
            index: FastMap::default(),
            revocations,
        }
    }

    /// Adds an item to its lane's run.
    fn add(&mut self, item: Item, order_by: OrderBy, state: &Shared) {
        let (topic, partition) = item.topic_partition();
        let key = match order_by {
            OrderBy::Key => Some(lane_key(item.key())),
            OrderBy::Partition => None,
        };
        let at = match self.runs.last() {
            Some((lane, _))
                if lane.key == key && lane.tp.partition == partition && lane.tp.topic == topic =>
            {
                self.runs.len() - 1
            }
            _ => {
                let lane = Lane {
                    tp: TopicPartition {
                        topic: topic.to_string(),
                        partition,
                    },
                    key,
                };
                match self.index.get(&lane) {
                    Some(at) => *at,
                    None => {
                        self.index.insert(lane.clone(), self.runs.len());
                        let run = self.spare.pop().unwrap_or_default();
                        self.runs.push((lane, run));
                        self.runs.len() - 1
                    }
                }
            }
        };
        let (lane, run) = &mut self.runs[at];
        // The epoch is the partition's as of this drain (no revocation ran since it started).
        let epoch = match run.first() {
            Some(q) => q.epoch,
            None => state.epoch(&lane.tp),
        };
        run.push(Queued { item, epoch });
    }

    /// Marks the gathered offsets unfinished and hands each run to its lane, starting workers
    /// for lanes that have none.
    ///
    /// With an `inline` budget (on a current-thread runtime), a new worker first runs right
    /// here, in the poller, until its handler call has to wait (only then is it spawned as a
    /// task) or it ran out of work: a handler that is ready at once then costs no task and no
    /// wake-up. Once the workers started in one hand-over took the budget, a worker yields at
    /// the end of its run (becoming a task) and the rest are spawned at once. Without one, every
    /// worker is spawned, to run beside the poller.
    /// An error of a worker that ended here is returned.
    ///
    /// `make` creates a lane's worker (see [`lane_worker`]). A worker that finishes inside
    /// the poller leaves its box in `spare` for the next one: a worker is a few kilobytes, and
    /// allocating that much for every hand-over makes the allocator consolidate its small
    /// free chunks each time.
    fn hand_over<W>(
        &mut self,
        state: &Shared,
        dispatch: &Arc<Dispatch>,
        workers: &mut JoinSet<Result<()>>,
        spare: &mut Option<Pin<Box<W>>>,
        make: impl Fn(Lane, Option<Duration>) -> W,
        inline: Duration,
    ) -> Option<Error>
    where
        W: Future<Output = Result<()>> + Send + 'static,
    {
        if self.runs.is_empty() {
            return None;
        }
        state.received_runs(self.runs.iter().map(|(lane, run)| {
            (
                &lane.tp,
                run.first().map_or(0, |q| q.epoch),
                run.iter().map(|q| q.item.offset()),
            )
        }));
        self.index.clear();
        let begun = Instant::now();
        let mut error = None;
        for lane in dispatch.push_runs(self.runs.drain(..), &mut self.spare) {
            let left = inline.saturating_sub(begun.elapsed());
            if left.is_zero() {
                workers.spawn(make(lane, None));
                continue;
            }
            let mut worker = match spare.take() {
                Some(mut boxed) => {
                    boxed.as_mut().set(make(lane, Some(left)));
                    boxed
                }
                None => Box::pin(make(lane, Some(left))),
            };
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            // The task's first poll registers its own waker again, as every poll does.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                worker.as_mut().poll(&mut cx)
            })) {
                Ok(std::task::Poll::Pending) => {
                    workers.spawn(worker);
                }
                Ok(std::task::Poll::Ready(Ok(()))) => *spare = Some(worker),
                Ok(std::task::Poll::Ready(Err(e))) => {
                    error.get_or_insert(e);
                }
                Err(_) => {
                    error.get_or_insert(Error::config(
                        "runtime",
                        "a lane worker panicked".to_string(),
                    ));
                }
            }
        }
        error
    }
}

/// How long the workers started in one hand-over may run in the poller of a current-thread
/// runtime; see [`Gathered::hand_over`].
const INLINE_BUDGET: Duration = Duration::from_millis(1);

/// A lane's identity within a partition: a hash of the key (two keys that collide share a
/// lane, which only orders them more than needed).
fn lane_key(key: Option<&[u8]>) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static SEED: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let mut h = SEED.get_or_init(Default::default).build_hasher();
    match key {
        Some(k) => {
            h.write_u8(1);
            h.write(k);
        }
        None => h.write_u8(0),
    }
    h.finish()
}

/// Messages' buffers to fill again. Boxed: each moves as the box of an [`Item`], which is
/// filled in place and handed on without moving the message.
#[allow(clippy::vec_box)]
type Buffers = Vec<Box<RawMessage>>;

/// The lanes and the count of items waiting in them, shared by the poller and the lane workers.
struct Dispatch {
    queues: Mutex<Queues>,
    /// Messages' buffers handed back by the lanes for the poller to fill again.
    recycled: Mutex<Buffers>,
    buffered: AtomicUsize,
    /// Signalled when the buffer drains below the high or to the low water mark.
    room: tokio::sync::Notify,
    high_water: usize,
    low_water: usize,
    /// At most this many lane workers run.
    max_workers: usize,
}

struct Queues {
    lanes: FastMap<Lane, VecDeque<Queued>>,
    /// Lanes with items and no worker, waiting for one.
    ready: VecDeque<Lane>,
    workers: usize,
    /// Buffers of lanes that emptied, for the poller to fill again.
    spare: Vec<Vec<Queued>>,
}

/// The largest payload buffer kept to copy another message into.
const RECYCLE_UP_TO: usize = 64 * 1024;

/// How many emptied run buffers are kept to be filled again.
const SPARE_BUFFERS: usize = 64;

/// How many items a worker takes from one lane before it lets a waiting lane go first.
const LANE_TURN: usize = 64;

impl Dispatch {
    fn new(high_water: usize, low_water: usize, max_workers: usize) -> Self {
        Dispatch {
            recycled: Mutex::default(),
            queues: Mutex::new(Queues {
                lanes: FastMap::default(),
                ready: VecDeque::new(),
                workers: 0,
                spare: Vec::new(),
            }),
            buffered: AtomicUsize::new(0),
            room: tokio::sync::Notify::new(),
            high_water,
            low_water,
            max_workers,
        }
    }

    /// Hands the buffers of handled messages back to the poller (see [`Slots`]), keeping at most
    /// as many as can be buffered, and none much larger than what it held (so one large
    /// message does not leave every buffer large) or larger than [`RECYCLE_UP_TO`]; `spent` is
    /// left empty.
    fn recycle(&self, spent: &mut Buffers) {
        fn fits(bytes: &Option<Vec<u8>>) -> bool {
            bytes.as_ref().is_none_or(|b| {
                b.capacity() <= RECYCLE_UP_TO && b.capacity() <= (2 * b.len()).max(4096)
            })
        }
        spent.retain(|raw| fits(&raw.payload) && fits(&raw.key));
        let mut pool = self.recycled.lock().expect("recycled");
        let n = spent
            .len()
            .min((self.high_water + DRAIN_AT_ONCE).saturating_sub(pool.len()));
        pool.extend(spent.drain(..n));
        drop(pool);
        spent.clear();
    }

    /// Queues an item; returns true when a new worker should start on its lane.
    #[cfg(test)]
    fn push(&self, lane: &Lane, item: Queued) -> bool {
        !self
            .push_runs([(lane.clone(), vec![item])], &mut Vec::new())
            .is_empty()
    }

    /// Queues runs of items, each on its lane, under one lock; returns the lanes a new worker
    /// should start on. Emptied buffers (of the runs, and of lanes that emptied) go to `spare`.
    fn push_runs(
        &self,
        runs: impl IntoIterator<Item = (Lane, Vec<Queued>)>,
        spare: &mut Vec<Vec<Queued>>,
    ) -> Vec<Lane> {
        let mut start = Vec::new();
        let mut q = self.queues.lock().expect("lanes");
        for (lane, mut run) in runs {
            if run.is_empty() {
                spare.push(run);
                continue;
            }
            self.buffered.fetch_add(run.len(), AtomicOrdering::AcqRel);
            if let Some(queue) = q.lanes.get_mut(&lane) {
                // Worked, or already waiting in `ready`.
                queue.extend(run.drain(..));
                spare.push(run);
                continue;
            }
            q.lanes.insert(lane.clone(), VecDeque::from(run));
            if q.workers < self.max_workers {
                q.workers += 1;
                start.push(lane);
            } else {
                q.ready.push_back(lane);
            }
        }
        spare.append(&mut q.spare);
        drop(q);
        spare.truncate(SPARE_BUFFERS);
        start
    }

    /// The next item for the worker on `lane`; see [`pop_run`](Self::pop_run).
    #[cfg(test)]
    fn pop(&self, lane: &mut Lane, turn: &mut usize) -> Option<Queued> {
        let mut run = Vec::new();
        self.pop_run(lane, turn, &mut run, 1).then(|| run.remove(0))
    }

    /// The next items, at most `max`, for the worker on `lane` (into `run`): from that lane,
    /// or, when it is empty or had its turn, from a waiting lane (`lane` changes). False when
    /// there is nothing: the worker ends.
    fn pop_run(
        &self,
        lane: &mut Lane,
        turn: &mut usize,
        run: &mut Vec<Queued>,
        max: usize,
    ) -> bool {
        let mut q = self.queues.lock().expect("lanes");
        loop {
            let has_more = q.lanes.get(lane).is_some_and(|l| !l.is_empty());
            if has_more && *turn < LANE_TURN {
                break;
            }
            if has_more && q.ready.is_empty() {
                // Its turn is up, but no other lane waits: a new turn (taking one item at a
                // time from here on would cost a lock and an offset store per message).
                *turn = 0;
                break;
            }
            if has_more {
                // Its turn is up and another lane waits: this one waits behind it.
                q.ready.push_back(lane.clone());
            } else {
                if let Some(emptied) = q.lanes.remove(lane) {
                    if q.spare.len() < SPARE_BUFFERS {
                        let mut buffer = Vec::from(emptied);
                        buffer.clear();
                        q.spare.push(buffer);
                    }
                }
            }
            match q.ready.pop_front() {
                Some(next) => {
                    *lane = next;
                    *turn = 0;
                }
                None => {
                    q.workers -= 1;
                    if run.capacity() > 0 && q.spare.len() < SPARE_BUFFERS {
                        q.spare.push(std::mem::take(run));
                    }
                    return false;
                }
            }
        }
        if run.capacity() == 0 {
            if let Some(buffer) = q.spare.pop() {
                *run = buffer;
            }
        }
        let queue = q.lanes.get_mut(lane).expect("checked above");
        let n = queue
            .len()
            .min(max)
            .min(LANE_TURN.saturating_sub(*turn).max(1));
        run.extend(queue.drain(..n));
        *turn += n;
        drop(q);
        let before = self.buffered.fetch_sub(n, AtomicOrdering::AcqRel);
        let left = before - n;
        if (before >= self.high_water && left < self.high_water)
            || (before > self.low_water && left <= self.low_water)
        {
            self.room.notify_one();
        }
        true
    }
}

/// Handles lanes' items, each lane in order, until there is nothing left or the loop stops.
///
/// A worker that runs in the poller (see [`Gathered::hand_over`]) gets a `budget`: once a run
/// ends after it is spent, the worker yields, and so becomes a task of its own.
async fn lane_worker<T, H>(
    ctx: Arc<TaskCtx<T, H>>,
    dispatch: Arc<Dispatch>,
    mut lane: Lane,
    budget: Option<Duration>,
) -> Result<()>
where
    T: Model + Send + Sync + 'static,
    H: Handle<T>,
{
    let mut metrics = LoopMetrics::new(&lane.tp.topic);
    let mut turn = 0;
    let mut run = Vec::new();
    let mut spent = Vec::new();
    let mut inline_until = budget.map(|b| Instant::now() + b);
    while !ctx.stopping() {
        if !dispatch.pop_run(&mut lane, &mut turn, &mut run, LANE_TURN) {
            return Ok(());
        }
        if metrics.topic != lane.tp.topic {
            metrics = LoopMetrics::new(&lane.tp.topic);
        }
        // In flight from here until the run is settled: a revocation of the partition waits.
        let tp = lane.tp.clone();
        ctx.state.started(&tp);
        let result = ctx.process_run(&tp, &mut run, &mut spent, &metrics).await;
        ctx.state.finished(&tp);
        run.clear();
        dispatch.recycle(&mut spent);
        result?;
        if inline_until.is_some_and(|t| Instant::now() >= t) {
            // Back to polling: the rest runs as a task.
            inline_until = None;
            tokio::task::yield_now().await;
        }
    }
    Ok(())
}

/// The loop's metric handles for one topic, registered once per lane worker.
struct LoopMetrics {
    topic: String,
    processed: metrics::Counter,
    failed: metrics::Counter,
    retried: metrics::Counter,
    dead_lettered: metrics::Counter,
    registry_waits: metrics::Counter,
    handler_seconds: metrics::Histogram,
}

impl LoopMetrics {
    fn new(topic: &str) -> Self {
        let t = topic.to_string();
        LoopMetrics {
            topic: topic.to_string(),
            processed: metrics::counter!("flowodm_loop_processed_total", "topic" => t.clone()),
            failed: metrics::counter!("flowodm_loop_failed_total", "topic" => t.clone()),
            retried: metrics::counter!("flowodm_loop_retried_total", "topic" => t.clone()),
            dead_lettered: metrics::counter!("flowodm_loop_dead_lettered_total", "topic" => t.clone()),
            registry_waits: metrics::counter!("flowodm_loop_registry_waits_total", "topic" => t.clone()),
            handler_seconds: metrics::histogram!("flowodm_loop_handler_seconds", "topic" => t),
        }
    }
}

/// The loop's counts, updated by the workers.
#[derive(Default)]
struct Counts {
    processed: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    dead_lettered: AtomicU64,
    tombstones: AtomicU64,
    registry_waits: AtomicU64,
}

impl Counts {
    fn snapshot(&self) -> LoopStats {
        let get = |c: &AtomicU64| c.load(AtomicOrdering::Relaxed);
        LoopStats {
            processed: get(&self.processed),
            failed: get(&self.failed),
            retried: get(&self.retried),
            dead_lettered: get(&self.dead_lettered),
            tombstones: get(&self.tombstones),
            registry_waits: get(&self.registry_waits),
        }
    }
}

/// The acknowledgement of a message handled by [`run_with_ack`](LoopBuilder::run_with_ack):
/// [`done`](Ack::done) marks it finished, so its offset may be committed once every earlier
/// message of its partition is finished too.
pub struct Ack {
    on_end: Option<Box<dyn FnOnce(AckEnd) + Send + Sync>>,
    valid: Arc<std::sync::atomic::AtomicBool>,
}

/// How an acknowledgement ended.
enum AckEnd {
    Done,
    DeadLetter(String),
    /// Dropped without a verdict, or of an attempt whose handler failed.
    Void,
}

impl Ack {
    fn new(on_end: Box<dyn FnOnce(AckEnd) + Send + Sync>) -> Self {
        Ack {
            on_end: Some(on_end),
            valid: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }

    fn end(mut self, how: AckEnd) {
        let how = if self.valid.load(AtomicOrdering::Acquire) {
            how
        } else {
            AckEnd::Void
        };
        if let Some(end) = self.on_end.take() {
            end(how);
        }
    }

    /// The message is finished (durably handled).
    pub fn done(self) {
        self.end(AckEnd::Done)
    }

    /// The message cannot be handled (the database rejects its row, say): it goes to the
    /// dead-letter topic with its original key, bytes and headers and `reason` as
    /// `flowodm.error.message` (kind `handler`), and is finished once the write is acknowledged.
    /// May be called from any thread.
    pub fn dead_letter(self, reason: impl Into<String>) {
        self.end(AckEnd::DeadLetter(reason.into()))
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if let Some(end) = self.on_end.take() {
            if self.valid.load(AtomicOrdering::Acquire) {
                tracing::warn!(
                    "an Ack was dropped without done(): its message stays uncommitted and will be \
                     handled again after a restart or rebalance"
                );
            }
            end(AckEnd::Void);
        }
    }
}

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ack").finish_non_exhaustive()
    }
}

/// What a handler call waits for first: the rate limit and the circuit breaker.
struct Gate {
    interval: Option<Duration>,
    next_slot: Mutex<tokio::time::Instant>,
    breaker: Option<(u32, Duration)>,
    circuit: Mutex<Circuit>,
    changed: tokio::sync::Notify,
}

#[derive(Default)]
struct Circuit {
    consecutive: u32,
    /// Open until this instant; `None` when closed.
    open_until: Option<tokio::time::Instant>,
    /// A probe call is running after the cooldown.
    probing: bool,
}

impl Gate {
    fn new(interval: Option<Duration>, breaker: Option<(u32, Duration)>) -> Self {
        Gate {
            interval,
            next_slot: Mutex::new(tokio::time::Instant::now()),
            breaker,
            circuit: Mutex::default(),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Whether [`pass`](Self::pass) can make a call wait.
    fn may_wait(&self) -> bool {
        self.interval.is_some() || self.breaker.is_some()
    }

    /// Waits until a handler call may start: `None` if `stop` came first, else whether the
    /// call is the probe of a half-open circuit.
    async fn pass(&self, stop: &CancellationToken) -> Option<bool> {
        let mut probe = false;
        if self.breaker.is_some() {
            loop {
                let changed = self.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                let wait_until = {
                    let mut c = self.circuit.lock().expect("circuit");
                    match c.open_until {
                        None => break,
                        Some(t) if !c.probing && tokio::time::Instant::now() >= t => {
                            c.probing = true;
                            probe = true;
                            break;
                        }
                        Some(t) if !c.probing => Some(t),
                        Some(_) => None,
                    }
                };
                let wake = async {
                    match wait_until {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = stop.cancelled() => return None,
                    _ = &mut changed => {}
                    _ = wake => {}
                }
            }
        }
        if let Some(interval) = self.interval {
            let at = {
                let mut next = self.next_slot.lock().expect("rate limit");
                let at = (*next).max(tokio::time::Instant::now());
                *next = at + interval;
                at
            };
            tokio::select! {
                _ = stop.cancelled() => {
                    if probe {
                        self.circuit.lock().expect("circuit").probing = false;
                    }
                    return None;
                }
                _ = tokio::time::sleep_until(at) => {}
            }
        }
        Some(probe)
    }

    /// The outcome of a call: a retryable failure counts towards opening the circuit.
    fn record(&self, ok: bool, was_probe: bool, topic: &str) {
        let Some((failures, cooldown)) = self.breaker else {
            return;
        };
        let mut c = self.circuit.lock().expect("circuit");
        if was_probe {
            c.probing = false;
        }
        if ok {
            c.consecutive = 0;
            if c.open_until.take().is_some() {
                tracing::info!(topic, "circuit closed: the handler succeeds again");
                self.changed.notify_waiters();
            }
            return;
        }
        c.consecutive += 1;
        if was_probe || (c.open_until.is_none() && c.consecutive >= failures) {
            c.open_until = Some(tokio::time::Instant::now() + cooldown);
            metrics::counter!("flowodm_loop_circuit_opened_total", "topic" => topic.to_string())
                .increment(1);
            tracing::warn!(
                topic,
                failures = c.consecutive,
                ?cooldown,
                "circuit open: pausing the handler"
            );
            self.changed.notify_waiters();
        }
    }
}

/// Runs a closure when dropped.
struct DropGuard<F: FnMut()>(F);

impl<F: FnMut()> Drop for DropGuard<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// A poll of `consumer` that owns what it needs, so it can live across loop iterations.
async fn next_poll<T: Model + Send + Sync + 'static>(
    consumer: Arc<Consumer<T>>,
    timeout: Duration,
    mut slot: Box<RawMessage>,
) -> (Box<RawMessage>, Result<bool>) {
    let polled = consumer.consume_raw(timeout, &mut slot).await;
    (slot, polled)
}

/// The poller's buffers to copy messages into, taken from the lanes' recycled ones.
#[derive(Default)]
struct Slots(Buffers);

impl Slots {
    fn next(&mut self, dispatch: &Dispatch) -> Box<RawMessage> {
        if self.0.is_empty() {
            let mut pool = dispatch.recycled.lock().expect("recycled");
            let n = pool.len().min(DRAIN_AT_ONCE);
            let from = pool.len() - n;
            self.0.extend(pool.drain(from..));
        }
        self.0.pop().unwrap_or_default()
    }

    fn put_back(&mut self, slot: Box<RawMessage>) {
        self.0.push(slot);
    }
}

/// How many already-fetched messages the poller routes in one go.
const DRAIN_AT_ONCE: usize = 256;

/// How long the buffer may stay full, with the loop not polling, before partitions are paused.
const PAUSE_AFTER: Duration = Duration::from_millis(500);

/// Runs `on_startup`, then `body` if it succeeded, then `on_shutdown` whatever happened.
async fn with_hooks(
    (on_startup, on_shutdown): (Option<Hook>, Option<Hook>),
    body: impl Future<Output = Result<LoopStats>>,
) -> Result<LoopStats> {
    let result = match on_startup {
        Some(hook) => match hook().await {
            Ok(()) => body.await,
            Err(e) => Err(e),
        },
        None => body.await,
    };
    if let Some(hook) = on_shutdown {
        if let Err(e) = hook().await {
            tracing::warn!(error = %e, "on_shutdown failed");
            if result.is_ok() {
                return Err(e);
            }
        }
    }
    result
}

/// How long a transaction call may wait for the broker.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);

impl<T: Model + Send + Sync> LoopBuilder<T> {
    async fn run_transactional<U, H, Fut>(
        self,
        producer: Producer<U>,
        handler: H,
        shutdown: CancellationToken,
    ) -> Result<LoopStats>
    where
        U: Model + Send + Sync,
        H: Fn(Record<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<Vec<U>, HandlerError>> + Send + 'static,
    {
        // Payloads are kept: a retried message is decoded again from its bytes.
        let consumer = self
            .consumer
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .keep_payloads()
            .build()?;
        producer.init_transactions(TXN_TIMEOUT).await?;
        let txn = Txn {
            consumer: &consumer,
            producer: &producer,
            handler: &handler,
            dlq: DeadLetters::new(&self.client, self.dead_letter_topic.clone())?,
            counts: Counts::default(),
            metrics: Mutex::default(),
            error_handler: self.error_handler.clone(),
            max_retries: self.max_retries,
            retry_delay: self.retry_delay,
            max_retry_delay: self.max_retry_delay,
            stop: shutdown.child_token(),
        };
        let batch_max = consumer.batch_size().max(1);
        let mut failed_batches = 0u32;
        let mut registry_waits = 0u32;
        while !txn.stop.is_cancelled() {
            let Collected { batch, unreachable } =
                txn.collect(batch_max, self.poll_timeout).await?;
            if !batch.is_empty() {
                // Where each partition of the batch starts, to read it again after an abort.
                let mut starts: HashMap<TopicPartition, i64> = HashMap::new();
                let mut next: HashMap<TopicPartition, i64> = HashMap::new();
                for item in &batch {
                    let o = item.offset();
                    starts.entry(item.partition()).or_insert(o);
                    next.insert(item.partition(), o + 1);
                }
                match txn.transact(batch, next).await {
                    Ok(()) => failed_batches = 0,
                    Err(TxnFailure::Stop(e)) => {
                        let _ = producer.abort_transaction(TXN_TIMEOUT).await;
                        return Err(e);
                    }
                    Err(TxnFailure::Retry(e)) => {
                        tracing::warn!(error = %e, "transaction failed; aborting and retrying the batch");
                        producer.abort_transaction(TXN_TIMEOUT).await?;
                        for (tp, offset) in &starts {
                            txn.rewind(tp, *offset);
                        }
                        tokio::time::sleep(backoff(
                            self.retry_delay,
                            self.max_retry_delay,
                            failed_batches,
                        ))
                        .await;
                        failed_batches += 1;
                    }
                }
            }
            if let Some((topic, e)) = unreachable {
                // The batch ended before a message whose writer schema could not be fetched:
                // the message is read again after a wait, and its schema asked for again, once.
                txn.wait_for_registry(&topic, &e, registry_waits).await;
                registry_waits += 1;
            } else {
                registry_waits = 0;
            }
        }
        Ok(txn.counts.snapshot())
    }
}

/// What [`Txn::collect`] gathered for one transaction.
struct Collected {
    batch: Vec<Item>,
    /// The registry could not be reached for the writer schema of the message after the batch
    /// (the consumer is rewound to that message): its topic, and the error.
    unreachable: Option<(String, Error)>,
}

/// Why a transaction did not commit.
enum TxnFailure {
    /// Abort, read the batch again and retry it.
    Retry(Error),
    /// Abort and stop the loop.
    Stop(Error),
}

/// The exactly-once loop's working parts.
struct Txn<'a, T, U, H> {
    consumer: &'a Consumer<T>,
    producer: &'a Producer<U>,
    handler: &'a H,
    dlq: DeadLetters,
    counts: Counts,
    metrics: Mutex<HashMap<String, Arc<LoopMetrics>>>,
    error_handler: Option<ErrorHandler>,
    max_retries: u32,
    retry_delay: Duration,
    max_retry_delay: Duration,
    stop: CancellationToken,
}

impl<T, U, H, Fut> Txn<'_, T, U, H>
where
    T: Model + Send + Sync,
    U: Model + Send + Sync,
    H: Fn(Record<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<Vec<U>, HandlerError>> + Send + 'static,
{
    fn metrics(&self, topic: &str) -> Arc<LoopMetrics> {
        self.metrics
            .lock()
            .expect("metrics")
            .entry(topic.to_string())
            .or_insert_with(|| Arc::new(LoopMetrics::new(topic)))
            .clone()
    }

    /// Up to `max` items, within `window`; empty when shutting down. A batch ends before a
    /// message whose new writer schema cannot be fetched because the registry is unreachable.
    async fn collect(&self, max: usize, window: Duration) -> Result<Collected> {
        let deadline = Instant::now() + window;
        let mut batch = Vec::new();
        let stopped = || Collected {
            batch: Vec::new(),
            unreachable: None,
        };
        let mut slot = Box::<RawMessage>::default();
        while batch.len() < max {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let polled = tokio::select! {
                // Nothing of an unfinished batch is committed: the next run reads it again.
                _ = self.stop.cancelled() => return Ok(stopped()),
                p = self.consumer.consume_raw(left, &mut slot) => p,
            };
            match polled {
                Ok(true) => {
                    // A new writer schema is fetched now, not inside the transaction. Any other
                    // failure is met again, and dealt with, when the message is handled.
                    let codec = self.consumer.codec();
                    let id = slot
                        .payload
                        .as_deref()
                        .and_then(|p| crate::wire::parse(p).ok());
                    if let Some(id) = id.map(|f| f.schema_id).filter(|id| !codec.is_prepared(*id)) {
                        let prepared = tokio::select! {
                            prepared = codec.prepare(id) => prepared,
                            _ = self.stop.cancelled() => return Ok(stopped()),
                        };
                        match prepared {
                            Err(e) if e.is_retriable() => {
                                let tp = TopicPartition {
                                    topic: slot.topic.clone(),
                                    partition: slot.partition,
                                };
                                self.rewind(&tp, slot.offset);
                                return Ok(Collected {
                                    batch,
                                    unreachable: Some((tp.topic, e)),
                                });
                            }
                            _ => {}
                        }
                    }
                    batch.push(Item::of(std::mem::take(&mut slot), &self.counts))
                }
                Ok(false) => break,
                Err(e) if e.is_retriable() => {
                    tracing::warn!(error = %e, "poll failed; retrying");
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Collected {
            batch,
            unreachable: None,
        })
    }

    /// Moves the consumer's position in `tp` back to `offset`, to read from there again.
    fn rewind(&self, tp: &TopicPartition, offset: i64) {
        if let Err(e) = self
            .consumer
            .seek(tp, rdkafka::Offset::Offset(offset), TXN_TIMEOUT)
        {
            // Not ours any more: its new owner reads from the committed offset.
            tracing::warn!(error = %e, topic = tp.topic, partition = tp.partition, "rewinding failed");
        }
    }

    /// Waits before asking an unreachable registry again for a message of `topic` (`waits`
    /// earlier waits in a row), counting the wait; shutdown ends it.
    async fn wait_for_registry(&self, topic: &str, error: &Error, waits: u32) {
        self.counts
            .registry_waits
            .fetch_add(1, AtomicOrdering::Relaxed);
        self.metrics(topic).registry_waits.increment(1);
        if waits % 60 == 0 {
            tracing::warn!(error = %error, waits, "cannot fetch a writer schema; waiting for the registry (the message stays uncommitted)");
        }
        let pause = backoff(self.retry_delay, self.max_retry_delay, waits).min(REGISTRY_RECHECK);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = self.stop.cancelled() => {}
        }
    }

    /// One transaction: every item's outputs, then the input offsets, then the commit.
    async fn transact(
        &self,
        batch: Vec<Item>,
        next: HashMap<TopicPartition, i64>,
    ) -> std::result::Result<(), TxnFailure> {
        let retry = TxnFailure::Retry;
        self.producer.begin_transaction().await.map_err(retry)?;
        for item in batch {
            self.handle(item).await?;
        }
        let metadata = self.consumer.group_metadata().ok_or_else(|| {
            TxnFailure::Stop(Error::config(
                "group.id",
                "the consumer is not part of a group",
            ))
        })?;
        let next: Vec<(TopicPartition, i64)> = next.into_iter().collect();
        self.producer
            .send_offsets(metadata, &next, TXN_TIMEOUT)
            .await
            .map_err(retry)?;
        self.producer
            .commit_transaction(TXN_TIMEOUT)
            .await
            .map_err(retry)
    }

    async fn handle(&self, item: Item) -> std::result::Result<(), TxnFailure> {
        let raw = match item {
            Item::Tombstone(_) => return Ok(()),
            Item::Raw(raw) => raw,
        };
        let record = match decode_raw(self.consumer, &raw).await {
            Ok(record) => record,
            // The registry is unreachable: the batch is tried again (after a backoff).
            Err(e) if e.is_retriable() => {
                self.counts
                    .registry_waits
                    .fetch_add(1, AtomicOrdering::Relaxed);
                self.metrics(&raw.topic).registry_waits.increment(1);
                return Err(TxnFailure::Retry(e));
            }
            Err(source) => {
                let failure = Failure::undecodable(&raw, &source);
                let decision = self
                    .error_handler
                    .as_ref()
                    .map_or(Decision::DeadLetter, |h| h(&failure));
                return self.settle(decision, &failure).await;
            }
        };
        let metrics = self.metrics(&record.topic);
        let mut next = Some(record);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let r = match next.take() {
                Some(r) => r,
                None => decode_raw(self.consumer, &raw)
                    .await
                    .map_err(TxnFailure::Stop)?,
            };
            let started = Instant::now();
            let outcome = (self.handler)(r).await;
            metrics
                .handler_seconds
                .record(started.elapsed().as_secs_f64());
            let e = match outcome {
                Ok(outputs) => {
                    for sent in self.producer.send_many(&outputs).await {
                        sent.map_err(TxnFailure::Retry)?;
                    }
                    metrics.processed.increment(1);
                    self.counts.processed.fetch_add(1, AtomicOrdering::Relaxed);
                    return Ok(());
                }
                Err(e) => e,
            };
            let failure = Failure {
                raw: &raw,
                attempts,
                retryable: e.retryable,
                kind: "handler",
                message: e.to_string(),
            };
            let decision = decide(self.error_handler.as_ref(), &failure, self.max_retries);
            if decision == Decision::Retry {
                if self.stop.is_cancelled() {
                    return Err(TxnFailure::Stop(Error::config(
                        "shutdown",
                        "stopped while a message waited for a retry; its batch is not committed",
                    )));
                }
                metrics.retried.increment(1);
                self.counts.retried.fetch_add(1, AtomicOrdering::Relaxed);
                tokio::time::sleep(backoff(
                    self.retry_delay,
                    self.max_retry_delay,
                    attempts - 1,
                ))
                .await;
                continue;
            }
            return self.settle(decision, &failure).await;
        }
    }

    /// Carries out a decision other than a retry.
    async fn settle(
        &self,
        decision: Decision,
        failure: &Failure<'_>,
    ) -> std::result::Result<(), TxnFailure> {
        let metrics = self.metrics(&failure.raw.topic);
        match decision {
            Decision::Stop => Err(TxnFailure::Stop(Error::config(
                "handler",
                format!("stopped by the error handler: {}", failure.message),
            ))),
            Decision::Skip | Decision::Retry => {
                metrics.failed.increment(1);
                self.counts.failed.fetch_add(1, AtomicOrdering::Relaxed);
                Ok(())
            }
            Decision::DeadLetter => {
                self.dlq.send(failure).await.map_err(TxnFailure::Retry)?;
                count_dead_letter(&metrics, &self.counts);
                Ok(())
            }
        }
    }
}

/// What happens to a failed handler call: the error handler decides; without one, a retryable
/// failure is retried up to `max_retries` times and then, like any other, dead-lettered.
fn decide(handler: Option<&ErrorHandler>, failure: &Failure<'_>, max_retries: u32) -> Decision {
    match handler {
        Some(h) => h(failure),
        None if failure.retryable && failure.attempts <= max_retries => Decision::Retry,
        None => Decision::DeadLetter,
    }
}

/// The delay before retry number `attempt` (from 0): doubling from `first` up to `max`, with
/// jitter between half and all of it.
fn backoff(first: Duration, max: Duration, attempt: u32) -> Duration {
    let base = first.saturating_mul(1u32 << attempt.min(16)).min(max);
    let jitter: f64 = rand::random::<f64>() * 0.5 + 0.5;
    base.mul_f64(jitter)
}

/// A record decoded from a message's bytes (fetching its writer schema the first time), with
/// its own copy of the metadata: the bytes stay for a retry or the dead-letter topic.
async fn decode_raw<T: Model>(consumer: &Consumer<T>, raw: &RawMessage) -> Result<Record<T>> {
    if let Some(decoded) = decode_known(consumer, raw) {
        return decoded;
    }
    let value = consumer.codec().decode(payload_of(raw)?).await?;
    Ok(record_of(value, raw, schema_id_of(raw)?))
}

/// [`decode_raw`] without waiting: `None` when the writer schema has to be fetched first.
fn decode_known<T: Model>(consumer: &Consumer<T>, raw: &RawMessage) -> Option<Result<Record<T>>> {
    let payload = match payload_of(raw) {
        Ok(payload) => payload,
        Err(e) => return Some(Err(e)),
    };
    let value = match consumer.codec().decode_prepared(payload) {
        Err(Error::UnknownSchema { .. }) => return None,
        Err(e) => return Some(Err(e)),
        Ok(value) => value,
    };
    Some(schema_id_of(raw).map(|schema_id| record_of(value, raw, schema_id)))
}

fn payload_of(raw: &RawMessage) -> Result<&[u8]> {
    raw.payload
        .as_deref()
        .ok_or_else(|| Error::Deserialization {
            message: "the record kept no payload".into(),
        })
}

fn schema_id_of(raw: &RawMessage) -> Result<u32> {
    Ok(crate::wire::parse(payload_of(raw)?)?.schema_id)
}

/// A record of `value` with its own copy of the message's metadata.
fn record_of<T>(value: T, raw: &RawMessage, schema_id: u32) -> Record<T> {
    Record {
        value,
        key: raw.key.clone(),
        headers: raw.headers.clone(),
        topic: raw.topic.clone(),
        partition: raw.partition,
        offset: raw.offset,
        timestamp: raw.timestamp,
        schema_id,
        payload: None,
    }
}

/// One unit of work.
///
/// A message travels undecoded, boxed (it moves from the poller through its lane's queue to
/// the handler, and moving the box costs less than an allocation): it is decoded where it is
/// handled, which spreads the decoding over the threads that run handlers, and its bytes stay
/// for a retry or the dead-letter topic.
enum Item {
    Raw(Box<RawMessage>),
    Tombstone(crate::consumer::Tombstone),
}

impl Item {
    /// The item of a polled message (a tombstone is counted here).
    fn of(raw: Box<RawMessage>, counts: &Counts) -> Self {
        if raw.payload.is_some() {
            return Item::Raw(raw);
        }
        let raw = *raw;
        metrics::counter!("flowodm_loop_tombstones_total", "topic" => raw.topic.clone())
            .increment(1);
        counts.tombstones.fetch_add(1, AtomicOrdering::Relaxed);
        Item::Tombstone(crate::consumer::Tombstone {
            key: raw.key,
            topic: raw.topic,
            partition: raw.partition,
            offset: raw.offset,
            timestamp: raw.timestamp,
        })
    }
}

impl Item {
    fn topic_partition(&self) -> (&str, i32) {
        match self {
            Item::Raw(raw) => (&raw.topic, raw.partition),
            Item::Tombstone(t) => (&t.topic, t.partition),
        }
    }

    fn partition(&self) -> TopicPartition {
        let (topic, partition) = self.topic_partition();
        TopicPartition {
            topic: topic.to_string(),
            partition,
        }
    }
}

impl Item {
    fn offset(&self) -> i64 {
        match self {
            Item::Raw(raw) => raw.offset,
            Item::Tombstone(t) => t.offset,
        }
    }

    fn key(&self) -> Option<&[u8]> {
        match self {
            Item::Raw(raw) => raw.key.as_deref(),
            Item::Tombstone(t) => t.key.as_deref(),
        }
    }
}

/// Items that must run one after another: a partition, or a key within a partition (by the
/// key's [hash](lane_key)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Lane {
    tp: TopicPartition,
    key: Option<u64>,
}

/// An item waiting in its lane, with the assignment epoch of its partition when it arrived.
struct Queued {
    item: Item,
    epoch: u64,
}

/// A partition's unfinished offsets and the next offset to commit once they are done.
#[derive(Default)]
struct Watermark {
    epoch: u64,
    /// The previous epoch while a revocation waits for its in-flight messages.
    draining: Option<u64>,
    pending: BTreeSet<i64>,
    /// One past the highest finished offset.
    next: i64,
}

/// State shared with handler tasks and the rebalance callback.
#[derive(Default)]
struct Shared {
    in_flight: Mutex<FastMap<TopicPartition, usize>>,
    idle: Condvar,
    /// How many revocations wait on `idle`.
    drain_waiters: AtomicUsize,
    stats: Counts,
    /// Per partition: unfinished offsets, and how often it was revoked (its epoch).
    marks: Mutex<FastMap<TopicPartition, Watermark>>,
    /// How many revocations began (changed under `marks`): while it is unchanged, an epoch
    /// read before is still current.
    revocations: AtomicU64,
}

impl Shared {
    /// A message arrived: it is unfinished until [`complete`](Self::complete). Returns the
    /// partition's epoch.
    #[cfg(test)]
    fn received(&self, tp: &TopicPartition, offset: i64) -> u64 {
        let epoch = self.epoch(tp);
        self.received_runs([(tp, epoch, [offset])]);
        epoch
    }

    /// The partition's current epoch.
    fn epoch(&self, tp: &TopicPartition) -> u64 {
        let mut marks = self.marks.lock().expect("lock");
        match marks.get(tp) {
            Some(mark) => mark.epoch,
            None => {
                marks.insert(tp.clone(), Watermark::default());
                0
            }
        }
    }

    /// See [`revocations`](Self::revocations).
    fn revocations(&self) -> u64 {
        self.revocations.load(AtomicOrdering::Acquire)
    }

    /// Messages arrived, fetched in the given epochs of their partitions: each is unfinished
    /// until [`complete`](Self::complete)d. Those of an epoch that has passed are not counted:
    /// their lane drops them.
    fn received_runs<'a, O: IntoIterator<Item = i64>>(
        &self,
        runs: impl IntoIterator<Item = (&'a TopicPartition, u64, O)>,
    ) {
        let mut marks = self.marks.lock().expect("lock");
        for (tp, epoch, offsets) in runs {
            if let Some(mark) = marks.get_mut(tp).filter(|m| m.epoch == epoch) {
                mark.pending.extend(offsets);
            }
        }
    }

    fn is_current(&self, tp: &TopicPartition, epoch: u64) -> bool {
        self.marks
            .lock()
            .expect("lock")
            .get(tp)
            .is_some_and(|m| m.epoch == epoch)
    }

    /// A message finished; returns the offset up to which everything finished when that moved
    /// (the last finished offset of the contiguous run), to be stored for the commit.
    #[cfg(test)]
    fn complete(&self, tp: &TopicPartition, epoch: u64, offset: i64) -> Option<i64> {
        self.complete_all(tp, epoch, &[offset])
    }

    /// Messages of one partition and epoch finished; returns the offset up to which everything
    /// finished when that moved (the last finished offset of the contiguous run), to be stored
    /// for the commit.
    fn complete_all(&self, tp: &TopicPartition, epoch: u64, offsets: &[i64]) -> Option<i64> {
        let mut marks = self.marks.lock().expect("lock");
        let mark = marks
            .get_mut(tp)
            .filter(|m| m.epoch == epoch || m.draining == Some(epoch))?;
        let mut moved = false;
        for &offset in offsets {
            if mark.pending.remove(&offset) {
                mark.next = mark.next.max(offset + 1);
                moved = true;
            }
        }
        if !moved {
            return None;
        }
        let done_before = mark.pending.first().copied().unwrap_or(mark.next);
        (done_before > 0).then_some(done_before - 1)
    }

    /// Partitions are being taken away: drop their unstarted messages (a new epoch), and wait
    /// until their in-flight ones finished, up to `grace`.
    fn revoke(&self, partitions: &[TopicPartition], grace: Duration) {
        {
            let mut marks = self.marks.lock().expect("lock");
            self.revocations.fetch_add(1, AtomicOrdering::AcqRel);
            for tp in partitions {
                let mark = marks.entry(tp.clone()).or_default();
                mark.draining = Some(mark.epoch);
                mark.epoch += 1;
            }
        }
        // In-flight messages still store their offsets (the consumer commits right after);
        // the dropped ones stay unfinished, so the watermark stops before them.
        self.wait_idle(partitions, grace);
        let mut marks = self.marks.lock().expect("lock");
        for tp in partitions {
            if let Some(mark) = marks.get_mut(tp) {
                *mark = Watermark {
                    epoch: mark.epoch,
                    ..Watermark::default()
                };
            }
        }
    }

    fn started(&self, tp: &TopicPartition) {
        let mut m = self.in_flight.lock().expect("lock");
        match m.get_mut(tp) {
            Some(n) => *n += 1,
            None => {
                m.insert(tp.clone(), 1);
            }
        }
    }

    fn finished(&self, tp: &TopicPartition) {
        let mut m = self.in_flight.lock().expect("lock");
        if let Some(n) = m.get_mut(tp) {
            *n = n.saturating_sub(1);
        }
        // Waking costs a system call per message; only a revocation ever waits.
        if self.drain_waiters.load(AtomicOrdering::Acquire) > 0 {
            self.idle.notify_all();
        }
    }

    fn any_in_flight(&self) -> bool {
        self.in_flight
            .lock()
            .expect("lock")
            .values()
            .any(|n| *n > 0)
    }

    /// Waits until none of `partitions` has a message in flight, up to `grace`.
    fn wait_idle(&self, partitions: &[TopicPartition], grace: Duration) {
        let deadline = Instant::now() + grace;
        let mut m = self.in_flight.lock().expect("lock");
        // Registered under the lock, so a `finished` that follows sees it and wakes us.
        self.drain_waiters.fetch_add(1, AtomicOrdering::AcqRel);
        let _registered = DropGuard(|| {
            self.drain_waiters.fetch_sub(1, AtomicOrdering::AcqRel);
        });
        while partitions
            .iter()
            .any(|p| m.get(p).copied().unwrap_or(0) > 0)
        {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!("revocation: in-flight messages did not finish in time");
                return;
            }
            m = self.idle.wait_timeout(m, left).expect("lock").0;
        }
    }
}

/// How the loop calls a handler: with an [`Ack`] that finishes the message, or without one
/// (the message finishes when the call returns `Ok`).
trait Handle<T>: Send + Sync + 'static {
    type Fut: Future<Output = std::result::Result<(), HandlerError>> + Send + 'static;
    /// Whether messages finish through their `Ack` rather than when the call returns.
    const ACKS: bool;
    /// Calls the handler; `ack` is `Some` exactly when [`ACKS`](Self::ACKS) is true.
    fn call(&self, record: Record<T>, ack: Option<Ack>) -> Self::Fut;
}

/// A handler of [`run`](LoopBuilder::run).
struct Plain<H>(H);

impl<T, H, Fut> Handle<T> for Plain<H>
where
    H: Fn(Record<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<(), HandlerError>> + Send + 'static,
{
    type Fut = Fut;
    const ACKS: bool = false;
    fn call(&self, record: Record<T>, _ack: Option<Ack>) -> Fut {
        (self.0)(record)
    }
}

/// A handler of [`run_with_ack`](LoopBuilder::run_with_ack).
struct WithAck<H>(H);

impl<T, H, Fut> Handle<T> for WithAck<H>
where
    H: Fn(Record<T>, Ack) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<(), HandlerError>> + Send + 'static,
{
    type Fut = Fut;
    const ACKS: bool = true;
    fn call(&self, record: Record<T>, ack: Option<Ack>) -> Fut {
        (self.0)(
            record,
            ack.expect("an Ack for every call of an acknowledging handler"),
        )
    }
}

struct TaskCtx<T, H> {
    handler: H,
    consumer: Arc<Consumer<T>>,
    dlq: Arc<DeadLetters>,
    state: Arc<Shared>,
    max_retries: u32,
    retry_delay: Duration,
    max_retry_delay: Duration,
    semantics: Semantics,
    error_handler: Option<ErrorHandler>,
    gate: Gate,
    /// Running or unacknowledged handler calls.
    permits: Arc<tokio::sync::Semaphore>,
    stop: CancellationToken,
    /// Set once `stop` is cancelled.
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

impl<T, H> TaskCtx<T, H> {
    /// Whether the loop is stopping: no new message is started.
    fn stopping(&self) -> bool {
        self.stopping.load(AtomicOrdering::Acquire)
    }

    /// Shutdown cut a message short: it stays unfinished, and no other starts (the flag may
    /// not be set yet when the token is).
    fn stopped(&self) -> Outcome {
        self.stopping.store(true, AtomicOrdering::Release);
        Outcome::Open
    }

    /// Stops the loop.
    fn cancel(&self) {
        self.stopping.store(true, AtomicOrdering::Release);
        self.stop.cancel();
    }
}

/// How a message left [`TaskCtx::process`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The handler returned `Ok` and no `Ack` finishes it: handled, and (at-least-once) its
    /// offset may be committed.
    Handled,
    /// Failed for good (dead-lettered, skipped) or passed over: its offset may be committed.
    Finished,
    /// Nothing more to do here: its `Ack` finishes it, it was finished before the handler
    /// (at-most-once), or shutdown left it unfinished.
    Open,
}

/// The offsets a lane worker finished and not yet stored, with the counts to add.
struct Settled {
    epoch: u64,
    offsets: Vec<i64>,
    processed: u64,
    /// How long the handler calls and dead-letter writes since the last store took: the
    /// clock is read for the handler metric anyway.
    busy: Duration,
}

/// The longest a lane waits before asking an unreachable registry again (and checking that
/// its partition is still assigned).
const REGISTRY_RECHECK: Duration = Duration::from_secs(1);

/// How much handling time a finished offset may wait in a run before it is stored.
const SETTLE_AFTER: Duration = Duration::from_millis(5);

impl<T, H> TaskCtx<T, H>
where
    T: Model + Send + Sync + 'static,
    H: Handle<T>,
{
    fn backoff(&self, attempt: u32) -> Duration {
        backoff(self.retry_delay, self.max_retry_delay, attempt)
    }

    /// Handles a run of one lane's items in order (until the loop stops), storing the finished
    /// offsets once per run — or sooner when handlers take their time — rather than per
    /// message. The stored offset is the watermark's: it never passes an unfinished message.
    /// The messages' buffers go to `spent` once handled.
    async fn process_run(
        &self,
        tp: &TopicPartition,
        run: &mut Vec<Queued>,
        spent: &mut Buffers,
        metrics: &LoopMetrics,
    ) -> Result<()> {
        let mut settled = Settled {
            epoch: run.first().map_or(0, |q| q.epoch),
            offsets: Vec::with_capacity(run.len()),
            processed: 0,
            busy: Duration::ZERO,
        };
        // The epoch last found current, and the revocation count then.
        let mut checked: Option<(u64, u64)> = None;
        let mut result = Ok(());
        for Queued { item, epoch } in run.drain(..) {
            if self.stopping() {
                break;
            }
            let revocations = self.state.revocations();
            if checked != Some((epoch, revocations)) {
                if !self.state.is_current(tp, epoch) {
                    // Fetched before its partition was revoked: the new owner reads it again.
                    continue;
                }
                checked = Some((epoch, revocations));
            }
            if epoch != settled.epoch {
                self.settle(tp, &mut settled, metrics);
                settled.epoch = epoch;
            }
            let offset = item.offset();
            let mut item = item;
            let processed = self
                .process(&mut item, tp, epoch, metrics, &mut settled)
                .await;
            if let Item::Raw(raw) = item {
                spent.push(raw);
            }
            let outcome = match processed {
                Ok(outcome) => outcome,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            match outcome {
                Outcome::Handled => settled.processed += 1,
                Outcome::Finished => {}
                Outcome::Open => continue,
            }
            // At-most-once finished a record before its handler ran: storing it again is a
            // no-op, while a tombstone or an undecodable message finishes here.
            settled.offsets.push(offset);
            if settled.busy >= SETTLE_AFTER {
                self.settle(tp, &mut settled, metrics);
            }
        }
        self.settle(tp, &mut settled, metrics);
        result
    }

    /// Stores what `settled` holds and counts it.
    fn settle(&self, tp: &TopicPartition, settled: &mut Settled, metrics: &LoopMetrics) {
        if !settled.offsets.is_empty() {
            finish_offsets(
                &self.state,
                &self.consumer,
                tp,
                settled.epoch,
                &settled.offsets,
            );
            settled.offsets.clear();
        }
        if settled.processed > 0 {
            metrics.processed.increment(settled.processed);
            self.state
                .stats
                .processed
                .fetch_add(settled.processed, AtomicOrdering::Relaxed);
            settled.processed = 0;
        }
        settled.busy = Duration::ZERO;
    }

    /// Handles one item to the end: handled, dead-lettered, skipped; `Err` stops the loop. A
    /// message whose retry, or wait for an unreachable registry, is cut short by shutdown (or,
    /// for the registry, by its partition's revocation) is left unfinished (not committed), so
    /// the next reader handles it again.
    ///
    /// A message's buffer stays in `item` to be recycled, but for a handler that takes
    /// acknowledgements, whose message moves out to be shared with them.
    async fn process(
        &self,
        item: &mut Item,
        tp: &TopicPartition,
        epoch: u64,
        metrics: &LoopMetrics,
        settled: &mut Settled,
    ) -> Result<Outcome> {
        let offset = item.offset();
        let boxed = match item {
            Item::Tombstone(_) => return Ok(Outcome::Finished),
            Item::Raw(raw) => raw,
        };
        let mut waits = 0;
        let record = loop {
            // Decoding is ready at once but for a new writer schema, whose fetch shutdown cuts
            // short (the message stays unfinished: the next run reads it again).
            let decoded = match decode_known(&self.consumer, boxed) {
                Some(decoded) => decoded,
                None => tokio::select! {
                    decoded = decode_raw(&self.consumer, boxed) => decoded,
                    _ = self.stop.cancelled() => return Ok(self.stopped()),
                },
            };
            match decoded {
                Ok(record) => break record,
                // The registry is unreachable (or overloaded): the message is not at fault, so it
                // waits, unfinished, until its writer schema can be fetched.
                Err(e) if e.is_retriable() => {
                    self.state
                        .stats
                        .registry_waits
                        .fetch_add(1, AtomicOrdering::Relaxed);
                    metrics.registry_waits.increment(1);
                    if waits % 60 == 0 {
                        tracing::warn!(error = %e, topic = tp.topic, partition = tp.partition, offset, waits, "cannot fetch the writer schema; waiting for the registry (the message stays uncommitted)");
                    }
                    // The earlier messages of the run need not wait for the registry.
                    self.settle(tp, settled, metrics);
                    tokio::select! {
                        _ = tokio::time::sleep(self.backoff(waits).min(REGISTRY_RECHECK)) => {}
                        _ = self.stop.cancelled() => return Ok(self.stopped()),
                    }
                    if !self.state.is_current(tp, epoch) {
                        // Revoked meanwhile: its new owner reads it; the revocation need not
                        // wait for the registry.
                        return Ok(Outcome::Open);
                    }
                    waits += 1;
                }
                Err(source) => {
                    self.fail(&Failure::undecodable(boxed, &source), metrics)
                        .await?;
                    // It may have waited for the broker: store what is finished soon.
                    settled.busy = SETTLE_AFTER;
                    return Ok(Outcome::Finished);
                }
            }
        };
        if self.semantics == Semantics::AtMostOnce {
            // What this run finished before it (a tombstone, a skipped message) goes first, or
            // the watermark could not move past it to this message.
            self.settle(tp, settled, metrics);
            finish_offsets(&self.state, &self.consumer, tp, epoch, &[offset]);
            self.consumer.commit_stored()?;
        }
        // What the dead-letter topic needs stays here while the record moves into the handler,
        // and is shared with the acknowledgements of a handler that takes them.
        let shared = H::ACKS.then(|| Arc::new(std::mem::take(&mut **boxed)));
        let raw: &RawMessage = shared.as_deref().unwrap_or(boxed);
        let mut attempts = 0u32;
        let mut record = Some(record);
        loop {
            attempts += 1;
            let r = match record.take() {
                Some(r) => r,
                // A retry decodes the kept bytes again, so models need not be Clone.
                None => decode_raw(&self.consumer, raw).await?,
            };
            if self.gate.may_wait() {
                // A rate limit or an open circuit may hold this call back: what is finished
                // is stored first.
                self.settle(tp, settled, metrics);
            }
            let Some(probe) = self.gate.pass(&self.stop).await else {
                // Shut down while waiting for the rate limit or an open circuit: unfinished.
                return Ok(self.stopped());
            };
            // With an Ack, a permit bounds the handled-but-unacknowledged messages; without
            // one, each lane worker runs one call at a time and the workers are capped.
            let (ack, valid) = if H::ACKS {
                let permit = self
                    .permits
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("never closed");
                let kept = shared.clone().expect("kept for acknowledging handlers");
                let ack = self.ack(tp, epoch, offset, kept, attempts, permit, metrics);
                let valid = ack.valid.clone();
                (Some(ack), Some(valid))
            } else {
                (None, None)
            };
            let started = Instant::now();
            // A panicking handler is a fatal failure of its message (as in `run_blocking`),
            // not the end of the loop.
            let outcome = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(
                self.handler.call(r, ack),
            ))
            .await
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(HandlerError::fatal(format!("the handler panicked: {what}")))
            });
            if let (Err(_), Some(valid)) = (&outcome, &valid) {
                // That attempt's acknowledgement no longer counts.
                valid.store(false, AtomicOrdering::Release);
            }
            let took = started.elapsed();
            settled.busy += took;
            metrics.handler_seconds.record(took.as_secs_f64());
            let ok = outcome.as_ref().map_or_else(|e| !e.retryable, |_| true);
            self.gate.record(ok, probe, &tp.topic);
            let e = match outcome {
                // With an Ack, counted as processed when it is done.
                Ok(()) if H::ACKS => return Ok(Outcome::Open),
                Ok(()) => return Ok(Outcome::Handled),
                Err(e) => e,
            };
            let failure = Failure {
                raw,
                attempts,
                retryable: e.retryable,
                kind: "handler",
                message: e.to_string(),
            };
            let decision = decide(self.error_handler.as_ref(), &failure, self.max_retries);
            match decision {
                Decision::Retry if self.stop.is_cancelled() => {
                    tracing::info!(
                        topic = tp.topic,
                        partition = tp.partition,
                        offset,
                        "shutting down: a message waiting for a retry is left uncommitted"
                    );
                    return Ok(self.stopped());
                }
                Decision::Retry => {
                    metrics.retried.increment(1);
                    self.state
                        .stats
                        .retried
                        .fetch_add(1, AtomicOrdering::Relaxed);
                    // The earlier messages of the run need not wait for this one's backoff.
                    self.settle(tp, settled, metrics);
                    tokio::select! {
                        _ = tokio::time::sleep(self.backoff(attempts - 1)) => {}
                        // Shutdown does not wait out a backoff; the message stays uncommitted.
                        _ = self.stop.cancelled() => return Ok(self.stopped()),
                    }
                    continue;
                }
                Decision::Stop => {
                    self.cancel();
                    return Err(Error::config(
                        "handler",
                        format!("stopped by the error handler: {e}"),
                    ));
                }
                Decision::Skip => {
                    metrics.failed.increment(1);
                    self.state
                        .stats
                        .failed
                        .fetch_add(1, AtomicOrdering::Relaxed);
                }
                _ => {
                    self.dead_letter(&failure, metrics).await?;
                    // That waited for the broker: store what is finished soon.
                    settled.busy = SETTLE_AFTER;
                }
            }
            // A failed message (dead-lettered or skipped) is finished here.
            return Ok(Outcome::Finished);
        }
    }

    /// The acknowledgement of one handler call on the message at `offset`.
    #[allow(clippy::too_many_arguments)]
    fn ack(
        &self,
        tp: &TopicPartition,
        epoch: u64,
        offset: i64,
        raw: Arc<RawMessage>,
        attempts: u32,
        permit: tokio::sync::OwnedSemaphorePermit,
        metrics: &LoopMetrics,
    ) -> Ack
    where
        T: 'static,
    {
        let state = self.state.clone();
        let consumer = self.consumer.clone();
        let tp = tp.clone();
        let commit = self.semantics == Semantics::AtLeastOnce;
        let runtime = tokio::runtime::Handle::current();
        let dlq = self.dlq.clone();
        let stop = self.stop.clone();
        let (first, max) = (self.retry_delay, self.max_retry_delay);
        let processed = metrics.processed.clone();
        let (dead_lettered, failed) = (metrics.dead_lettered.clone(), metrics.failed.clone());
        state.started(&tp);
        Ack::new(Box::new(move |how: AckEnd| {
            // `finished`: the offset may be committed; in-flight and the permit end either way.
            let end = move |finished: bool| {
                if finished && commit {
                    finish_offsets(&state, &consumer, &tp, epoch, &[offset]);
                }
                state.finished(&tp);
                drop(permit);
                state
            };
            match how {
                AckEnd::Done => {
                    processed.increment(1);
                    let state = end(true);
                    state.stats.processed.fetch_add(1, AtomicOrdering::Relaxed);
                }
                AckEnd::Void => {
                    end(false);
                }
                AckEnd::DeadLetter(reason) => {
                    runtime.spawn(async move {
                        let failure = Failure {
                            raw: &raw,
                            attempts,
                            retryable: false,
                            kind: "handler",
                            message: reason,
                        };
                        match dlq.send_until_written(&failure, &stop, first, max).await {
                            Ok(()) => {
                                dead_lettered.increment(1);
                                failed.increment(1);
                                let state = end(true);
                                state.stats.dead_lettered.fetch_add(1, AtomicOrdering::Relaxed);
                                state.stats.failed.fetch_add(1, AtomicOrdering::Relaxed);
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "shutting down: a message for the dead-letter topic stays uncommitted");
                                end(false);
                            }
                        }
                    });
                }
            }
        }))
    }

    /// A message that failed without running the handler: the error handler decides, else DLQ.
    async fn fail(&self, failure: &Failure<'_>, metrics: &LoopMetrics) -> Result<()> {
        let decision = match &self.error_handler {
            Some(h) => h(failure),
            None => Decision::DeadLetter,
        };
        match decision {
            Decision::Stop => {
                self.cancel();
                Err(Error::config(
                    "handler",
                    format!("stopped by the error handler: {}", failure.message),
                ))
            }
            Decision::Skip | Decision::Retry => {
                metrics.failed.increment(1);
                self.state
                    .stats
                    .failed
                    .fetch_add(1, AtomicOrdering::Relaxed);
                Ok(())
            }
            Decision::DeadLetter => self.dead_letter(failure, metrics).await,
        }
    }

    async fn dead_letter(&self, failure: &Failure<'_>, metrics: &LoopMetrics) -> Result<()> {
        self.dlq
            .send_until_written(failure, &self.stop, self.retry_delay, self.max_retry_delay)
            .await?;
        count_dead_letter(metrics, &self.state.stats);
        Ok(())
    }
}

/// Marks the messages at `offsets` finished and stores the offset up to which everything is.
///
/// Storing fails only for a partition this member no longer holds (its revocation timed out):
/// the new owner re-delivers the message, which at-least-once allows; not a reason to stop.
fn finish_offsets<T: Model>(
    state: &Shared,
    consumer: &Consumer<T>,
    tp: &TopicPartition,
    epoch: u64,
    offsets: &[i64],
) {
    if let Some(upto) = state.complete_all(tp, epoch, offsets) {
        if let Err(e) = consumer.store_offset(&tp.topic, tp.partition, upto) {
            tracing::warn!(error = %e, topic = tp.topic, partition = tp.partition, offset = upto, "storing a finished offset failed");
        }
    }
}

fn count_dead_letter(metrics: &LoopMetrics, counts: &Counts) {
    metrics.dead_lettered.increment(1);
    metrics.failed.increment(1);
    counts.dead_lettered.fetch_add(1, AtomicOrdering::Relaxed);
    counts.failed.fetch_add(1, AtomicOrdering::Relaxed);
}

/// Writes failed messages to a dead-letter topic, waiting for the broker's acknowledgement.
struct DeadLetters {
    producer: FutureProducer,
    admin: crate::admin::Admin,
    topic: Option<String>,
    ensured: Mutex<std::collections::HashSet<String>>,
}

impl DeadLetters {
    fn new(client: &Client, topic: Option<String>) -> Result<Self> {
        let producer = client
            .kafka()
            .clone()
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .client_config()
            .create()
            .map_err(Error::Kafka)?;
        Ok(DeadLetters {
            producer,
            admin: client.admin()?,
            topic,
            ensured: Mutex::default(),
        })
    }

    /// Creates the dead-letter topic if it is missing (brokers usually do not auto-create),
    /// with as many partitions as the topic it serves.
    async fn ensure(&self, dlq: &str, source: &str) -> Result<()> {
        if self.ensured.lock().expect("lock").contains(dlq) {
            return Ok(());
        }
        let partitions = self
            .admin
            .describe_topic(source, Duration::from_secs(30))
            .await
            .map(|t| t.partitions.len() as i32)
            .unwrap_or(1)
            .max(1);
        let spec = crate::admin::TopicSpec::new(dlq, partitions);
        self.admin
            .ensure_topic(&spec, Duration::from_secs(30))
            .await?;
        self.ensured.lock().expect("lock").insert(dlq.to_string());
        Ok(())
    }

    /// Writes `f`, retrying with backoff until the broker acknowledges it; gives up only when
    /// `stop` is cancelled (the message then stays uncommitted).
    async fn send_until_written(
        &self,
        f: &Failure<'_>,
        stop: &CancellationToken,
        first: Duration,
        max: Duration,
    ) -> Result<()> {
        let mut attempt = 0;
        loop {
            match self.send(f).await {
                Ok(()) => return Ok(()),
                Err(e) if !stop.is_cancelled() => {
                    tracing::warn!(error = %e, "writing to the dead-letter topic failed; retrying");
                    tokio::time::sleep(backoff(first, max, attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn send(&self, f: &Failure<'_>) -> Result<()> {
        let topic = self
            .topic
            .clone()
            .unwrap_or_else(|| format!("{}.DLQ", f.raw.topic));
        self.ensure(&topic, &f.raw.topic).await?;
        let mut headers = OwnedHeaders::new();
        for (k, v) in &f.raw.headers {
            headers = headers.insert(Header {
                key: k,
                value: v.as_deref(),
            });
        }
        let meta = [
            ("flowodm.error.kind", f.kind.to_string()),
            ("flowodm.error.message", f.message.clone()),
            ("flowodm.original.topic", f.raw.topic.clone()),
            ("flowodm.original.partition", f.raw.partition.to_string()),
            ("flowodm.original.offset", f.raw.offset.to_string()),
            ("flowodm.attempts", f.attempts.to_string()),
        ];
        for (k, v) in &meta {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&topic).headers(headers);
        if let Some(k) = &f.raw.key {
            rec = rec.key(k.as_slice());
        }
        if let Some(p) = &f.raw.payload {
            rec = rec.payload(p.as_slice());
        }
        self.producer
            .send(rec, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|(e, _)| Error::Kafka(e))
    }
}

/// A token that SIGTERM and SIGINT (Ctrl-C) cancel. The signals are watched by a background task
/// of the current tokio runtime; the application's own handlers keep working.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = match signal(SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch SIGTERM");
                    let _ = tokio::signal::ctrl_c().await;
                    t.cancel();
                    return;
                }
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown signal received");
        t.cancel();
    });
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition {
            topic: "t".into(),
            partition: p,
        }
    }

    fn queued(p: i32, offset: i64) -> Queued {
        Queued {
            item: Item::Tombstone(crate::consumer::Tombstone {
                key: None,
                topic: "t".into(),
                partition: p,
                offset,
                timestamp: None,
            }),
            epoch: 0,
        }
    }

    #[test]
    fn workers_are_capped_and_a_busy_lane_lets_waiting_lanes_take_turns() {
        let d = Dispatch::new(10_000, 10, 1);
        let (a, b) = (
            Lane {
                tp: tp(0),
                key: None,
            },
            Lane {
                tp: tp(1),
                key: None,
            },
        );
        let n = LANE_TURN as i64 + 100;
        assert!(d.push(&a, queued(0, 0)), "the first lane gets a worker");
        for o in 1..n {
            assert!(!d.push(&a, queued(0, o)));
        }
        assert!(
            !d.push(&b, queued(1, 0)),
            "one worker at most: lane b waits"
        );
        let (mut lane, mut turn) = (a.clone(), 0);
        let mut order = Vec::new();
        while let Some(q) = d.pop(&mut lane, &mut turn) {
            order.push((q.item.partition().partition, q.item.offset()));
        }
        // Lane a's first turn, then b, then the rest of a, each lane in offset order.
        assert_eq!(order.len(), n as usize + 1);
        assert_eq!(order[LANE_TURN], (1, 0));
        let a_offsets: Vec<i64> = order
            .iter()
            .filter(|(p, _)| *p == 0)
            .map(|(_, o)| *o)
            .collect();
        assert_eq!(a_offsets, (0..n).collect::<Vec<_>>());
        assert_eq!(d.buffered.load(AtomicOrdering::Relaxed), 0);
        // The worker ended; the next item starts a new one.
        assert!(d.push(&b, queued(1, 1)));
    }

    #[test]
    fn a_lane_that_nobody_waits_behind_keeps_taking_whole_runs() {
        let d = Dispatch::new(100_000, 10, 1);
        let a = Lane {
            tp: tp(0),
            key: None,
        };
        let n = 3 * LANE_TURN as i64;
        for o in 0..n {
            d.push(&a, queued(0, o));
        }
        let (mut lane, mut turn, mut run) = (a.clone(), 0, Vec::new());
        let mut sizes = Vec::new();
        while d.pop_run(&mut lane, &mut turn, &mut run, LANE_TURN) {
            sizes.push(run.len());
            let offsets: Vec<i64> = run.drain(..).map(|q| q.item.offset()).collect();
            assert!(offsets.windows(2).all(|w| w[1] == w[0] + 1));
        }
        // Not one item at a time once its first turn is over.
        assert_eq!(sizes, vec![LANE_TURN; 3]);
    }

    #[test]
    fn handled_messages_buffers_go_back_to_the_poller_within_bounds() {
        let d = Dispatch::new(10, 1, 1);
        let mut slots = Slots::default();
        let mut spent: Buffers = (0..(10 + DRAIN_AT_ONCE + 5))
            .map(|_| {
                let mut raw = Box::<RawMessage>::default();
                raw.payload = Some(Vec::with_capacity(100));
                raw
            })
            .collect();
        let mut large = Box::<RawMessage>::default();
        large.payload = Some(Vec::with_capacity(RECYCLE_UP_TO + 1));
        spent.insert(0, large);
        d.recycle(&mut spent);
        assert!(spent.is_empty());
        let pooled = d.recycled.lock().unwrap().len();
        assert_eq!(pooled, 10 + DRAIN_AT_ONCE, "at most what can be buffered");
        // The poller takes a drain's worth at a time, all of the small ones.
        let slot = slots.next(&d);
        assert_eq!(slot.payload.as_ref().map(Vec::capacity), Some(100));
        assert_eq!(slots.0.len(), DRAIN_AT_ONCE - 1);
        assert_eq!(d.recycled.lock().unwrap().len(), 10);
    }

    #[test]
    fn the_watermark_moves_only_over_a_contiguous_finished_run() {
        let s = Shared::default();
        let e = (10..15).map(|o| s.received(&tp(0), o)).last().unwrap();
        // 12 and 11 finish before 10: nothing may be committed past 10 yet.
        assert_eq!(s.complete(&tp(0), e, 12), Some(9));
        assert_eq!(s.complete(&tp(0), e, 11), Some(9));
        // 10 finishes: 10..=12 are done, 13 is not.
        assert_eq!(s.complete(&tp(0), e, 10), Some(12));
        assert_eq!(s.complete(&tp(0), e, 14), Some(12));
        assert_eq!(s.complete(&tp(0), e, 13), Some(14));
        // A second completion of one offset changes nothing.
        assert_eq!(s.complete(&tp(0), e, 13), None);
        // Other partitions are independent.
        let e1 = s.received(&tp(1), 0);
        assert_eq!(s.complete(&tp(1), e1, 0), Some(0));
    }

    #[test]
    fn a_revocation_drops_unstarted_messages_and_ignores_late_completions() {
        let s = Shared::default();
        let old = s.received(&tp(0), 5);
        s.received(&tp(0), 6);
        s.revoke(&[tp(0)], Duration::ZERO);
        assert!(
            !s.is_current(&tp(0), old),
            "queued messages of a revoked partition are stale"
        );
        // Reassigned later: fresh offsets, a new epoch; a stale completion does not count.
        let new = s.received(&tp(0), 5);
        assert_ne!(new, old);
        assert_eq!(s.complete(&tp(0), old, 5), None);
        assert_eq!(s.complete(&tp(0), new, 5), Some(5));
    }

    #[test]
    fn in_flight_work_of_a_revoked_partition_still_stores_its_offset_while_draining() {
        let s = Arc::new(Shared::default());
        let e = s.received(&tp(0), 7);
        s.started(&tp(0));
        let s2 = s.clone();
        let drain = std::thread::spawn(move || s2.revoke(&[tp(0)], Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(s.complete(&tp(0), e, 7), Some(7));
        s.finished(&tp(0));
        drain.join().unwrap();
    }
}

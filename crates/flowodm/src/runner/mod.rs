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
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering as AtomicOrdering};
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

mod ack;
mod dead_letter;
mod dispatch;
mod failure;
mod gate;
mod stats;
mod task;
#[cfg(test)]
mod tests;
mod transactional;
mod watermark;

use self::{
    ack::*, dead_letter::*, dispatch::*, failure::*, gate::*, stats::*, task::*, watermark::*,
};
pub use ack::Ack;
pub use failure::{Decision, Failure, HandlerError};

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
    /// Waits for an unreachable registry: each failed try to fetch a message's writer schema
    /// that the message then waited after (for the exactly-once loop, each batch cut short or
    /// aborted for it).
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
    /// [`max_retry_delay`](Self::max_retry_delay) (default 1 s). Waits for an unreachable
    /// registry follow the same backoff, capped at 1 s.
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

/// A poll of `consumer` that owns what it needs, so it can live across loop iterations.
async fn next_poll<T: Model + Send + Sync + 'static>(
    consumer: Arc<Consumer<T>>,
    timeout: Duration,
    mut slot: Box<RawMessage>,
) -> (Box<RawMessage>, Result<bool>) {
    let polled = consumer.consume_raw(timeout, &mut slot).await;
    (slot, polled)
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

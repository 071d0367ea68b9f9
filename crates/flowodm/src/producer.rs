//! Producing typed messages.
//!
//! A [`Producer<T>`] encodes values of the model `T` in the Confluent wire format and hands them
//! to librdkafka, which batches them per partition and sends them in the background. A message
//! is *delivered* when the broker acknowledges it — with the default `acks=all`, once every
//! in-sync replica has it. Each way of sending differs only in how you learn of the delivery:
//!
//! - [`send`](Producer::send) returns a future that resolves on acknowledgement with the
//!   [`Delivery`] (topic, partition, offset, timestamp), or the error.
//! - [`send_blocking`](Producer::send_blocking) waits on the calling thread, up to a timeout.
//! - [`send_with_callback`](Producer::send_with_callback) returns as soon as the message is
//!   queued; the callback runs on librdkafka's delivery thread.
//! - [`send_many`](Producer::send_many) queues all messages first, then waits for each: one
//!   result per message, in order.
//! - [`send_and_forget`](Producer::send_and_forget) returns as soon as the message is queued,
//!   with nothing to wait on: the producer counts deliveries and failures, and the next
//!   [`flush`](Producer::flush) returns the failures. The fastest way to send.
//!
//! The key is the model's key field ([`Model::key`]); [`OutRecord`] sets an explicit key,
//! partition, timestamp or headers, or makes a tombstone (a key with no value, which deletes the
//! key from a compacted topic).
//!
//! # Defaults
//!
//! `acks=all`, `enable.idempotence=true` (retries never duplicate or reorder), `compression.type=lz4`,
//! `linger.ms=5`; a [`Profile`] replaces them with its own producer settings, and
//! [`ProducerBuilder::set`] overrides any librdkafka property. With
//! [`murmur2_partitioner`](ProducerBuilder::murmur2_partitioner), keys land on the partitions the
//! Java client would choose (librdkafka's default hash is CRC32).
//!
//! # When the cluster is away
//!
//! librdkafka keeps a message and retries it until it is acknowledged or `message.timeout.ms`
//! has passed. Its own default is 5 minutes (Java's `delivery.timeout.ms`: 2 minutes), during
//! which a `send` — and the handler or request awaiting it — learns nothing. flowodm defaults it
//! to **30 s** ([`DEFAULT_DELIVERY_TIMEOUT`]): longer than a broker failover (a KRaft cluster
//! fences a silent broker after 9 s and elects new leaders at once) or a rolling restart, short
//! enough that a service's retries, health checks and timeouts can act. Set
//! `message.timeout.ms` (or its alias `delivery.timeout.ms`) to change it.
//!
//! Two cases fail sooner, because waiting cannot help:
//!
//! - Wrong credentials: once librdkafka reports an authentication failure, pending and later
//!   sends end with that error.
//! - No broker reachable at all (the cluster is down, or the bootstrap servers are wrong): a
//!   send that has waited [`unreachable_timeout`](ProducerBuilder::unreachable_timeout)
//!   (default 5 s) while every broker was down fails with the retriable
//!   [`Error::BrokersUnreachable`]. The messages still queued are withdrawn then (all of them:
//!   they share the queue), so none of them is written later behind the caller's back: retrying
//!   is safe, except for a message that had already been sent when the connection was lost —
//!   the broker may have written it, as with any delivery timeout. Sends made with
//!   [`send_with_callback`](Producer::send_with_callback) learn of the outage when another send
//!   or a [`flush`](Producer::flush) notices it, or at the delivery timeout.
//!
//! When librdkafka's local queue is full (`queue.buffering.max.messages`), `send` and
//! `send_blocking` wait for room; `send_with_callback` and `send_and_forget` return the
//! retriable `QueueFull` error.

use std::cell::Cell;
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer,
};
use rdkafka::ClientContext;

use crate::client::Client;
use crate::codec::{Codec, CodecConfig};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::profiles::{Profile, PRODUCTION_DEFAULTS};
use crate::reachability::{Probe, Reachability, DEFAULT_UNREACHABLE_TIMEOUT, MAX_PROBE};

/// How long librdkafka may try to deliver a message (`message.timeout.ms`) unless configured
/// otherwise; see the [module docs](self).
pub const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a waiting send checks for an authentication failure or an unreachable cluster.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// Where a message was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// The topic (shared with the producer: reporting it costs no allocation).
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The message's offset in the partition.
    pub offset: i64,
    /// The message's timestamp (milliseconds since the epoch), if the broker reported one.
    pub timestamp: Option<i64>,
}

/// One message to send, with what the model does not say: an explicit key, partition,
/// timestamp or headers; or a tombstone.
///
/// ```
/// # #[derive(flowodm::Model)] #[flowodm(topic = "t")] struct Order { id: String }
/// use flowodm::producer::OutRecord;
/// let order = Order { id: "ORD-1".into() };
/// let record = OutRecord::new(&order)
///     .key("CUST-00042")
///     .partition(2)
///     .timestamp(1_763_800_000_000)
///     .header("correlation-id", "abc-123");
/// let delete = OutRecord::<Order>::tombstone("CUST-00042");
/// ```
pub struct OutRecord<'a, T> {
    value: Option<&'a T>,
    key: Option<Vec<u8>>,
    key_from_model: bool,
    partition: Option<i32>,
    timestamp: Option<i64>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

impl<T> fmt::Debug for OutRecord<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutRecord")
            .field("tombstone", &self.value.is_none())
            .field("key", &self.key)
            .field("partition", &self.partition)
            .field("timestamp", &self.timestamp)
            .field("headers", &self.headers.len())
            .finish()
    }
}

impl<'a, T: Model> OutRecord<'a, T> {
    /// A message with `value`, keyed by the model's key field.
    pub fn new(value: &'a T) -> Self {
        OutRecord {
            value: Some(value),
            key: None,
            key_from_model: true,
            partition: None,
            timestamp: None,
            headers: Vec::new(),
        }
    }

    /// A tombstone: `key` with no value. On a compacted topic it deletes the key.
    pub fn tombstone(key: impl Into<Vec<u8>>) -> Self {
        OutRecord {
            value: None,
            key: Some(key.into()),
            key_from_model: false,
            partition: None,
            timestamp: None,
            headers: Vec::new(),
        }
    }

    /// Sets the key instead of the model's key field.
    pub fn key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self.key_from_model = false;
        self
    }

    /// Sends without a key (spread over partitions), even if the model has a key field.
    pub fn no_key(mut self) -> Self {
        self.key = None;
        self.key_from_model = false;
        self
    }

    /// Sends to this partition instead of the partitioner's choice.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the timestamp (milliseconds since the epoch); by default, the time of sending.
    pub fn timestamp(mut self, millis: i64) -> Self {
        self.timestamp = Some(millis);
        self
    }

    /// Adds a header (names may repeat).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), Some(value.into())));
        self
    }
}

/// How the delivery of one message is reported: librdkafka carries it with the message and
/// hands it back with the delivery report.
///
/// A message waited for owns its `Pending` (one allocation, plus the callback's own box); the
/// messages of [`send_and_forget`](Producer::send_and_forget) share the producer's single
/// [`Pending::Quiet`], so that queueing one costs no allocation.
enum Pending {
    Async(tokio::sync::oneshot::Sender<Result<Delivery>>),
    Blocking(mpsc::SyncSender<Result<Delivery>>),
    /// The mutex only makes the callback `Sync`, as librdkafka's opaque must be; it is never
    /// locked: the report owns it and takes the callback out with `into_inner`.
    Callback(Mutex<DeliveryCallback>),
    /// Nobody waits: a failure is kept for the next [`flush`](Producer::flush).
    Quiet,
}

/// What librdkafka carries with each message.
type Opaque = Arc<Pending>;

/// The failures of [`send_and_forget`](Producer::send_and_forget) messages that no
/// [`flush`](Producer::flush) has reported yet.
#[derive(Default)]
struct Unreported {
    count: u64,
    first: Option<Error>,
}

/// How many messages a producer has had delivered, and how many failed; see
/// [`Producer::delivery_counts`].
///
/// ```
/// let counts = flowodm::producer::DeliveryCounts::default();
/// assert_eq!((counts.delivered, counts.failed), (0, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryCounts {
    /// Messages the broker acknowledged.
    pub delivered: u64,
    /// Messages that could not be delivered (each was reported to its sender, or, for
    /// [`send_and_forget`](Producer::send_and_forget), by the next
    /// [`flush`](Producer::flush)).
    pub failed: u64,
}

type DeliveryCallback = Box<dyn FnOnce(Result<Delivery>) + Send>;

/// librdkafka's delivery reports, routed to whoever waits for them; and the authentication
/// failure or the cluster outage, if any, so that sends fail fast instead of waiting for
/// `message.timeout.ms`.
struct Context {
    /// The producer's topic, the only one it sends to: each [`Delivery`] shares it.
    topic: Arc<str>,
    auth_error: Mutex<Option<KafkaError>>,
    /// Set once `auth_error` holds an error, so that sends check a flag instead of locking.
    auth_failed: AtomicBool,
    reach: Reachability,
    /// The report every [`send_and_forget`](Producer::send_and_forget) message carries.
    quiet: Opaque,
    delivered: AtomicU64,
    failed: AtomicU64,
    unreported: Mutex<Unreported>,
    /// Set while `unreported` counts a failure, so that a flush checks a flag instead of locking.
    any_unreported: AtomicBool,
    /// Whether the producer has a `transactional.id` (see [`Context::unreported`]).
    transactional: bool,
}

impl Context {
    fn new(topic: Arc<str>, transactional: bool) -> Self {
        Context {
            topic,
            auth_error: Mutex::new(None),
            auth_failed: AtomicBool::new(false),
            reach: Reachability::default(),
            quiet: Arc::new(Pending::Quiet),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            unreported: Mutex::new(Unreported::default()),
            any_unreported: AtomicBool::new(false),
            transactional,
        }
    }

    /// Keeps the failure of a message nobody waits for, for the next flush.
    ///
    /// Not on a transactional producer: there `commit_transaction` fails when a message of
    /// the transaction failed, and an aborted transaction's messages fail on purpose.
    fn unreported(&self, error: Error) {
        if self.transactional {
            return;
        }
        let first = {
            // A poisoned lock still holds a consistent count: keep counting.
            let mut u = self
                .unreported
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            u.count += 1;
            self.any_unreported.store(true, Ordering::Release);
            match u.first {
                Some(_) => None,
                None => {
                    let message = error.to_string();
                    u.first = Some(error);
                    Some(message)
                }
            }
        };
        if let Some(error) = first {
            tracing::warn!(%error, topic = %self.topic, "a message sent with send_and_forget was not delivered; the next flush reports it");
        }
    }

    /// The failures no flush has reported yet, as one error; clears them.
    fn take_unreported(&self) -> Option<Error> {
        if !self.any_unreported.load(Ordering::Acquire) {
            return None;
        }
        let mut u = self
            .unreported
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.any_unreported.store(false, Ordering::Release);
        let taken = std::mem::take(&mut *u);
        taken.first.map(|first| Error::Undelivered {
            count: taken.count,
            first: Box::new(first),
        })
    }

    /// The authentication failure librdkafka reported, if any (a flag check while there is
    /// none).
    fn auth_error(&self) -> Option<KafkaError> {
        if !self.auth_failed.load(Ordering::Acquire) {
            return None;
        }
        self.auth_error.lock().ok()?.clone()
    }

    /// The error of a message that could not be delivered; a message withdrawn because of an
    /// authentication failure or an outage gets that error.
    fn delivery_error(&self, e: &KafkaError) -> Error {
        let purged = matches!(
            e.rdkafka_error_code(),
            Some(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight)
        );
        if purged {
            if let Some(auth) = self.auth_error() {
                return Error::Kafka(auth);
            }
            if let Some(down) = self.reach.error() {
                return down;
            }
        }
        Error::Kafka(e.clone())
    }
}

impl ClientContext for Context {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "kafka producer error");
        self.reach.report(&error, reason);
        if matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::Authentication)
        ) {
            if let Ok(mut slot) = self.auth_error.lock() {
                *slot = Some(error);
                self.auth_failed.store(true, Ordering::Release);
            }
        }
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = Opaque;

    fn delivery(&self, result: &DeliveryResult<'_>, pending: Opaque) {
        if let Pending::Quiet = *pending {
            // Nobody waits: count it, and keep a failure for the next flush.
            match result {
                Ok(_) => {
                    self.reach.reachable();
                    self.delivered.fetch_add(1, Ordering::Relaxed);
                }
                Err((e, _)) => {
                    self.failed.fetch_add(1, Ordering::Relaxed);
                    self.unreported(self.delivery_error(e));
                }
            }
            return;
        }
        let outcome = match result {
            Ok(m) => Ok({
                self.reach.reachable();
                self.delivered.fetch_add(1, Ordering::Relaxed);
                Delivery {
                    topic: self.topic.clone(),
                    partition: m.partition(),
                    offset: m.offset(),
                    timestamp: m.timestamp().to_millis(),
                }
            }),
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                Err(self.delivery_error(e))
            }
        };
        // Only a message's own report reaches here, and librdkafka hands it back once.
        match Arc::into_inner(pending) {
            Some(Pending::Async(tx)) => drop(tx.send(outcome)),
            Some(Pending::Blocking(tx)) => drop(tx.try_send(outcome)),
            Some(Pending::Callback(cb)) => {
                if let Ok(cb) = cb.into_inner() {
                    cb(outcome);
                }
            }
            Some(Pending::Quiet) | None => {}
        }
    }
}

/// Builds a [`Producer`]; from [`Client::producer`].
pub struct ProducerBuilder<T> {
    client: Client,
    profile: Option<Profile>,
    properties: Vec<(String, String)>,
    codec: CodecConfig,
    topic: Option<String>,
    unreachable_timeout: Duration,
    _model: std::marker::PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for ProducerBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProducerBuilder")
            .field("profile", &self.profile)
            .field(
                "properties",
                &self.properties.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("topic", &self.topic)
            .finish()
    }
}

impl<T: Model> ProducerBuilder<T> {
    pub(crate) fn new(client: Client) -> Self {
        ProducerBuilder {
            client,
            profile: None,
            properties: Vec::new(),
            codec: CodecConfig::default(),
            topic: None,
            unreachable_timeout: DEFAULT_UNREACHABLE_TIMEOUT,
            _model: std::marker::PhantomData,
        }
    }

    /// Uses a profile's producer settings instead of the defaults.
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = Some(profile);
        self
    }

    /// Sets any librdkafka producer property (wins over defaults and profile).
    pub fn set(mut self, property: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.push((property.into(), value.into()));
        self
    }

    /// Partitions keyed messages as the Java client does (murmur2), so keys land on the same
    /// partitions whichever client wrote them.
    pub fn murmur2_partitioner(self) -> Self {
        self.set("partitioner", "murmur2_random")
    }

    /// Makes the producer transactional with this `transactional.id` (stable across restarts of
    /// the same logical producer, unique among running ones); see
    /// [`Producer::init_transactions`].
    pub fn transactional(self, transactional_id: impl Into<String>) -> Self {
        self.set("transactional.id", transactional_id)
    }

    /// Sends to this topic instead of the model's.
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = Some(topic.into());
        self
    }

    /// How the schema is registered and named.
    pub fn codec(mut self, config: CodecConfig) -> Self {
        self.codec = config;
        self
    }

    /// How long a send waits while no broker is reachable before it fails with
    /// [`Error::BrokersUnreachable`] (default 5 s); see the [module docs](self).
    pub fn unreachable_timeout(mut self, timeout: Duration) -> Self {
        self.unreachable_timeout = timeout;
        self
    }

    /// The librdkafka configuration the producer will have (secrets included: do not log it).
    pub fn client_config(&self) -> rdkafka::ClientConfig {
        let mut c = self.client.kafka().client_config();
        let defaults: Vec<(&str, String)> = match self.profile {
            Some(p) => p.producer_properties(),
            None => PRODUCTION_DEFAULTS
                .iter()
                .map(|(k, v)| (*k, v.to_string()))
                .collect(),
        };
        for (k, v) in defaults {
            if c.get(k).is_none() {
                c.set(k, v);
            }
        }
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        if c.get("message.timeout.ms").is_none() && c.get("delivery.timeout.ms").is_none() {
            c.set(
                "message.timeout.ms",
                DEFAULT_DELIVERY_TIMEOUT.as_millis().to_string(),
            );
        }
        c
    }

    /// Creates the producer. Connects in the background; the schema is registered on the first
    /// send.
    pub fn build(self) -> Result<Producer<T>> {
        let topic: Arc<str> = Arc::from(self.topic.as_deref().unwrap_or(T::SETTINGS.topic));
        let config = self.client_config();
        let transactional = config.get("transactional.id").is_some();
        let inner: ThreadedProducer<Context> = config
            .create_with_context(Context::new(topic.clone(), transactional))
            .map_err(|e| match e {
                KafkaError::ClientConfig(_, ref desc, ref key, _) => {
                    Error::config(key.clone(), desc.clone())
                }
                other => Error::Kafka(other),
            })?;
        let codec = Codec::<T>::with_config(self.client.registry().clone(), self.codec)?;
        Ok(Producer {
            inner: Arc::new(inner),
            codec: Arc::new(codec),
            topic,
            unreachable_timeout: self.unreachable_timeout,
        })
    }
}

/// Sends values of the model `T`; cheap to clone (clones share the connection).
///
/// ```no_run
/// # async fn demo() -> flowodm::Result<()> {
/// #[derive(flowodm::Model)]
/// #[flowodm(topic = "orders", key = "customer_id")]
/// struct Order { order_id: String, customer_id: String }
///
/// let client = flowodm::Client::from_env()?;
/// let producer = client.producer::<Order>().build()?;
/// let delivery = producer.send(&Order { order_id: "ORD-1".into(), customer_id: "C-7".into() }).await?;
/// println!("stored at {}:{}@{}", delivery.topic, delivery.partition, delivery.offset);
/// producer.flush(std::time::Duration::from_secs(10))?;
/// # Ok(()) }
/// ```
pub struct Producer<T> {
    inner: Arc<ThreadedProducer<Context>>,
    codec: Arc<Codec<T>>,
    topic: Arc<str>,
    unreachable_timeout: Duration,
}

impl<T> Clone for Producer<T> {
    fn clone(&self) -> Self {
        Producer {
            inner: self.inner.clone(),
            codec: self.codec.clone(),
            topic: self.topic.clone(),
            unreachable_timeout: self.unreachable_timeout,
        }
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("topic", &self.topic)
            .field("model", &std::any::type_name::<T>())
            .finish()
    }
}

/// What a waiting send does next; see [`Producer::check`].
enum Check<'a> {
    /// Keep waiting.
    Wait,
    /// Fail with this.
    Fail(Error),
    /// Ask whether a broker is reachable, then [`conclude`](Producer::conclude).
    Probe(Probe<'a>),
}

/// A message encoded for librdkafka: where its payload and key lie in the encoding buffer
/// (see [`with_scratch`]), and what else goes with it.
struct Encoded {
    /// `None` for a tombstone.
    payload: Option<Range<usize>>,
    key: Option<Range<usize>>,
    partition: Option<i32>,
    timestamp: Option<i64>,
    headers: Option<OwnedHeaders>,
}

/// Why librdkafka did not take a message.
enum Rejected {
    /// Its queue is full: the message and its report, to try again once there is room.
    Full(Encoded, Opaque),
    /// Any other error.
    Failed(Error),
}

impl Rejected {
    fn into_error(self) -> Error {
        match self {
            Rejected::Full(..) => queue_full(),
            Rejected::Failed(e) => e,
        }
    }
}

/// A message waiting for room in librdkafka's queue, with its own copy of the encoded bytes.
struct Waiting {
    bytes: Vec<u8>,
    message: Encoded,
    pending: Opaque,
}

fn queue_full() -> Error {
    Error::Kafka(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull))
}

/// Buffers kept for [`with_scratch`] grow to the largest message encoded on their thread, up to
/// this; a bigger one is freed after use instead of being kept.
const SCRATCH_KEEP: usize = 64 * 1024;

thread_local! {
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` with an empty buffer that is reused by later calls on this thread.
///
/// librdkafka copies a message's payload and key when it is queued, so the producer encodes
/// both into this buffer instead of allocating them for every message. The buffer is taken out
/// of the thread's slot while `f` runs: a nested call gets a new one.
fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let mut buf = SCRATCH.try_with(Cell::take).unwrap_or_default();
    buf.clear();
    let out = f(&mut buf);
    if buf.capacity() <= SCRATCH_KEEP {
        // Fails only while the thread exits; the buffer is then dropped.
        let _ = SCRATCH.try_with(|slot| slot.set(buf));
    }
    out
}

impl<T: Model> Producer<T> {
    /// The topic it sends to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The codec (schema, subject, registry id).
    pub fn codec(&self) -> &Codec<T> {
        &self.codec
    }

    /// Encodes `record`'s payload and key into `buf` (emptied first by [`with_scratch`]).
    fn prepare(schema_id: u32, record: OutRecord<'_, T>, buf: &mut Vec<u8>) -> Result<Encoded> {
        let start = buf.len();
        let payload = match record.value {
            Some(v) => {
                Codec::<T>::encode_with_id(schema_id, v, buf)?;
                Some(start..buf.len())
            }
            None => None,
        };
        let key_start = buf.len();
        let has_key = match (record.key_from_model, record.value) {
            (true, Some(v)) => v.write_key(buf),
            _ => match &record.key {
                Some(k) => {
                    buf.extend_from_slice(k);
                    true
                }
                None => false,
            },
        };
        let headers = (!record.headers.is_empty()).then(|| {
            record
                .headers
                .iter()
                .fold(OwnedHeaders::new(), |h, (k, v)| {
                    h.insert(Header {
                        key: k,
                        value: v.as_deref(),
                    })
                })
        });
        Ok(Encoded {
            payload,
            key: has_key.then_some(key_start..buf.len()),
            partition: record.partition,
            timestamp: record.timestamp,
            headers,
        })
    }

    /// Queues a message encoded into `buf`; librdkafka copies its bytes.
    fn enqueue(
        &self,
        buf: &[u8],
        mut m: Encoded,
        pending: Opaque,
    ) -> std::result::Result<(), Rejected> {
        let mut rec: BaseRecord<'_, [u8], [u8], Opaque> =
            BaseRecord::with_opaque_to(&self.topic, pending);
        rec.payload = m.payload.clone().map(|r| &buf[r]);
        rec.key = m.key.clone().map(|r| &buf[r]);
        rec.partition = m.partition;
        rec.timestamp = m.timestamp;
        rec.headers = m.headers.take();
        match self.inner.send(rec) {
            Ok(()) => Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), rec)) => {
                m.headers = rec.headers;
                Err(Rejected::Full(m, rec.delivery_opaque))
            }
            Err((e, _)) => Err(Rejected::Failed(Error::Kafka(e))),
        }
    }

    /// Queues `record` with `pending` at once, encoded into this thread's reused buffer.
    /// When librdkafka's queue is full, gives the message back with its own copy of the bytes,
    /// for the caller to wait for room.
    fn enqueue_now(
        &self,
        schema_id: u32,
        record: OutRecord<'_, T>,
        pending: Opaque,
    ) -> Result<Option<Waiting>> {
        with_scratch(|buf| {
            let m = Self::prepare(schema_id, record, buf)?;
            match self.enqueue(buf, m, pending) {
                Ok(()) => Ok(None),
                Err(Rejected::Full(message, pending)) => Ok(Some(Waiting {
                    bytes: buf.clone(),
                    message,
                    pending,
                })),
                Err(Rejected::Failed(e)) => Err(e),
            }
        })
    }

    /// The authentication failure librdkafka reported, if any. Messages still queued are purged
    /// (their senders get an error at once): with wrong credentials nothing will be delivered.
    fn auth_failure(&self) -> Option<Error> {
        let err = self.inner.context().auth_error()?;
        self.inner.purge(
            rdkafka::producer::PurgeConfig::default()
                .queue()
                .inflight()
                .non_blocking(),
        );
        Some(Error::Kafka(err))
    }

    /// Whether a send waiting since `since` should stop waiting: on an authentication failure,
    /// or — if a broker answering the metadata request says otherwise — when the cluster has been
    /// suspect for the unreachable timeout while it waited.
    fn check(&self, since: Instant) -> Check<'_> {
        if let Some(e) = self.auth_failure() {
            return Check::Fail(e);
        }
        let reach = &self.inner.context().reach;
        let due = reach
            .suspect_since()
            .is_some_and(|s| Instant::now() >= s.max(since) + self.unreachable_timeout);
        if !due {
            return Check::Wait;
        }
        match reach.start_probe() {
            Some(probe) => Check::Probe(probe),
            // Another send is checking; if no broker answers, it withdraws this message too.
            None => Check::Wait,
        }
    }

    /// Takes the answer of a [`Check::Probe`]: `up` if a broker answered. If none did, the
    /// queued messages are withdrawn, so that none is delivered after its sender was told it
    /// failed, and their senders get the error.
    fn conclude(&self, probe: Probe<'_>, up: bool) -> Option<Error> {
        probe.done(up);
        if up {
            return None;
        }
        let err = self.inner.context().reach.error()?;
        self.inner.purge(
            rdkafka::producer::PurgeConfig::default()
                .queue()
                .non_blocking(),
        );
        Some(err)
    }

    /// [`check`](Self::check) and, if needed, the metadata request, on this thread.
    fn give_up_blocking(&self, since: Instant) -> Option<Error> {
        match self.check(since) {
            Check::Wait => None,
            Check::Fail(e) => Some(e),
            Check::Probe(probe) => {
                let up = self.inner.client().fetch_metadata(None, MAX_PROBE).is_ok();
                self.conclude(probe, up)
            }
        }
    }

    /// Sends `value` and resolves when the broker acknowledges it.
    pub async fn send(&self, value: &T) -> Result<Delivery> {
        self.send_record(OutRecord::new(value)).await
    }

    /// Sends a record (explicit key, partition, timestamp, headers, or a tombstone) and resolves
    /// when the broker acknowledges it.
    pub async fn send_record(&self, record: OutRecord<'_, T>) -> Result<Delivery> {
        let since = Instant::now();
        let rx = self.enqueue_async(record).await?;
        self.wait(rx, since).await
    }

    /// Waits for a delivery report, failing early when authentication failed or no broker is
    /// reachable.
    async fn wait(
        &self,
        mut rx: tokio::sync::oneshot::Receiver<Result<Delivery>>,
        since: Instant,
    ) -> Result<Delivery> {
        loop {
            match tokio::time::timeout(CHECK_EVERY, &mut rx).await {
                Ok(result) => return result.unwrap_or_else(|_| Err(producer_closed())),
                Err(_) => match self.check(since) {
                    Check::Wait => {}
                    Check::Fail(e) => return Err(e),
                    Check::Probe(probe) => {
                        // The metadata request waits for a broker on a blocking thread.
                        let inner = self.inner.clone();
                        let up = tokio::task::spawn_blocking(move || {
                            inner.client().fetch_metadata(None, MAX_PROBE).is_ok()
                        })
                        .await
                        .unwrap_or(false);
                        if let Some(e) = self.conclude(probe, up) {
                            return Err(e);
                        }
                    }
                },
            }
        }
    }

    async fn enqueue_async(
        &self,
        record: OutRecord<'_, T>,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<Delivery>>> {
        if let Some(e) = self.auth_failure() {
            return Err(e);
        }
        let id = self.codec.schema_id().await?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let Some(Waiting {
            bytes,
            message: mut m,
            mut pending,
        }) = self.enqueue_now(id, record, Arc::new(Pending::Async(tx)))?
        else {
            return Ok(rx);
        };
        // The queue is full: wait for room.
        loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            match self.enqueue(&bytes, m, pending) {
                Ok(()) => return Ok(rx),
                Err(Rejected::Full(back, p)) => (m, pending) = (back, p),
                Err(Rejected::Failed(e)) => return Err(e),
            }
        }
    }

    /// Sends `value` with an Avro-encoded key: the key is framed like a value and its schema is
    /// registered under `{topic}-key`, as Confluent's serializers do for keys.
    pub async fn send_with_key<K: crate::avro::Avro + 'static>(
        &self,
        key: &K,
        value: &T,
    ) -> Result<Delivery> {
        let keys = Codec::<K>::for_subject(
            self.codec.registry().clone(),
            format!("{}-key", self.topic),
            CodecConfig::default(),
        )?;
        let key = keys.encode(key).await?;
        self.send_record(OutRecord::new(value).key(key)).await
    }

    /// Sends many values: queues them all, then waits for each. One result per value, in order.
    pub async fn send_many<'v, I>(&self, values: I) -> Vec<Result<Delivery>>
    where
        I: IntoIterator<Item = &'v T>,
        T: 'v,
    {
        let since = Instant::now();
        let mut waiting = Vec::new();
        for v in values {
            waiting.push(self.enqueue_async(OutRecord::new(v)).await);
        }
        let mut out = Vec::with_capacity(waiting.len());
        for w in waiting {
            out.push(match w {
                Ok(rx) => self.wait(rx, since).await,
                Err(e) => Err(e),
            });
        }
        out
    }

    /// Sends `value` and waits on this thread, up to `timeout`, for the acknowledgement.
    ///
    /// Call it from synchronous code; inside an async task use [`send`](Producer::send). The
    /// first call registers the schema, which needs the network.
    pub fn send_blocking(&self, value: &T, timeout: Duration) -> Result<Delivery> {
        self.send_record_blocking(OutRecord::new(value), timeout)
    }

    /// [`send_record`](Producer::send_record), waiting on this thread up to `timeout`.
    pub fn send_record_blocking(
        &self,
        record: OutRecord<'_, T>,
        timeout: Duration,
    ) -> Result<Delivery> {
        let since = Instant::now();
        let deadline = since + timeout;
        if let Some(e) = self.auth_failure() {
            return Err(e);
        }
        let id = self.schema_id_blocking()?;
        let (tx, rx) = mpsc::sync_channel(1);
        with_scratch(|buf| {
            let mut m = Self::prepare(id, record, buf)?;
            let mut pending = Arc::new(Pending::Blocking(tx));
            loop {
                match self.enqueue(buf, m, pending) {
                    Ok(()) => return Ok(()),
                    Err(Rejected::Full(back, p)) => {
                        if Instant::now() >= deadline {
                            return Err(queue_full());
                        }
                        (m, pending) = (back, p);
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(Rejected::Failed(e)) => return Err(e),
                }
            }
        })?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.min(CHECK_EVERY)) {
                Ok(result) => return result,
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(producer_closed()),
                Err(mpsc::RecvTimeoutError::Timeout) if left.is_zero() => {
                    return Err(Error::Kafka(KafkaError::MessageProduction(
                        RDKafkaErrorCode::MessageTimedOut,
                    )))
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(e) = self.give_up_blocking(since) {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Queues `value` and returns; `callback` receives the delivery result on librdkafka's
    /// delivery thread (keep it short).
    ///
    /// A full local queue is the retriable `QueueFull` error, returned here.
    pub fn send_with_callback(
        &self,
        value: &T,
        callback: impl FnOnce(Result<Delivery>) + Send + 'static,
    ) -> Result<()> {
        if let Some(e) = self.auth_failure() {
            return Err(e);
        }
        let id = self.schema_id_blocking()?;
        with_scratch(|buf| {
            let m = Self::prepare(id, OutRecord::new(value), buf)?;
            let pending = Arc::new(Pending::Callback(Mutex::new(Box::new(callback))));
            self.enqueue(buf, m, pending).map_err(Rejected::into_error)
        })
    }

    /// Queues `value` and returns; nobody waits for its delivery report.
    ///
    /// The fastest way to send: queueing costs no allocation beyond librdkafka's copy of the
    /// bytes. Nothing is lost silently, though: the producer counts the messages delivered and
    /// failed ([`delivery_counts`](Producer::delivery_counts)), logs the first failure, and the
    /// next [`flush`](Producer::flush) returns [`Error::Undelivered`] with how many of these
    /// messages failed since the previous flush and the first error. Call `flush` before
    /// exiting, and wherever the messages sent so far must be known to be stored.
    ///
    /// A full local queue is the retriable `QueueFull` error, returned here.
    ///
    /// On a transactional producer, `commit_transaction` reports the failures instead (it
    /// fails when a message of the transaction was not delivered), and the messages of an
    /// aborted transaction are not failures: `flush` does not return them.
    ///
    /// ```no_run
    /// # fn demo() -> flowodm::Result<()> {
    /// #[derive(flowodm::Model)]
    /// #[flowodm(topic = "clicks", key = "user_id")]
    /// struct Click { user_id: String, page: String }
    ///
    /// let producer = flowodm::Client::from_env()?.producer::<Click>().build()?;
    /// for page in ["/", "/cart", "/pay"] {
    ///     producer.send_and_forget(&Click { user_id: "U-1".into(), page: page.into() })?;
    /// }
    /// // Fails with Error::Undelivered if any of them could not be stored.
    /// producer.flush(std::time::Duration::from_secs(10))?;
    /// # Ok(()) }
    /// ```
    pub fn send_and_forget(&self, value: &T) -> Result<()> {
        if let Some(e) = self.auth_failure() {
            return Err(e);
        }
        let id = self.schema_id_blocking()?;
        with_scratch(|buf| {
            let m = Self::prepare(id, OutRecord::new(value), buf)?;
            let quiet = self.inner.context().quiet.clone();
            self.enqueue(buf, m, quiet).map_err(Rejected::into_error)
        })
    }

    /// How many of this producer's messages (all its clones', by every way of sending) have
    /// been delivered and how many failed, since it was built.
    pub fn delivery_counts(&self) -> DeliveryCounts {
        let ctx = self.inner.context();
        DeliveryCounts {
            delivered: ctx.delivered.load(Ordering::Relaxed),
            failed: ctx.failed.load(Ordering::Relaxed),
        }
    }

    /// Waits up to `timeout` until every queued message is delivered (or failed); fails early,
    /// like a send, when no broker is reachable.
    ///
    /// Returns [`Error::Undelivered`] when messages sent with
    /// [`send_and_forget`](Producer::send_and_forget) failed since the last flush (of this
    /// producer or any of its clones) that got to the end, returning `Ok` or that error; the
    /// other ways of sending report their failures to their senders.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        let since = Instant::now();
        let deadline = since + timeout;
        loop {
            if let Some(e) = self.give_up_blocking(since) {
                return Err(e);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.inner.flush(left.min(CHECK_EVERY)) {
                Ok(()) => {
                    return match self.inner.context().take_unreported() {
                        Some(e) => Err(e),
                        None => Ok(()),
                    }
                }
                Err(_) if !left.is_zero() && self.inner.in_flight_count() > 0 => continue,
                Err(e) => return Err(Error::Kafka(e)),
            }
        }
    }

    /// How many messages are queued or in flight.
    pub fn in_flight(&self) -> i32 {
        self.inner.in_flight_count()
    }

    /// The schema id, resolving it without an async context (a helper thread runs the registry
    /// call when it is not known yet).
    fn schema_id_blocking(&self) -> Result<u32> {
        if let Some(id) = self.codec.known_schema_id() {
            return Ok(id);
        }
        crate::util::block_on(self.codec.schema_id())
    }
}

/// Transactions: messages sent between [`begin_transaction`](Producer::begin_transaction) and
/// [`commit_transaction`](Producer::commit_transaction) become visible to `read_committed`
/// consumers all at once, or never (after [`abort_transaction`](Producer::abort_transaction)).
/// With [`send_consumer_offsets`](Producer::send_consumer_offsets), the consumed input's
/// offsets commit in the same transaction: consume-transform-produce, exactly once.
///
/// The calls wait for the broker (up to their timeout) on a blocking thread, never on the
/// async runtime's.
impl<T: Model> Producer<T> {
    async fn txn<F>(&self, f: F) -> Result<()>
    where
        F: FnOnce(&ThreadedProducer<Context>) -> rdkafka::error::KafkaResult<()> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| Error::config("runtime", e.to_string()))?
            .map_err(Error::Kafka)
    }

    /// Registers the `transactional.id` with the cluster, fencing off older producers with the
    /// same id; once, before the first transaction.
    pub async fn init_transactions(&self, timeout: Duration) -> Result<()> {
        self.codec.schema_id().await?;
        self.txn(move |p| p.init_transactions(timeout)).await
    }

    /// Starts a transaction.
    pub async fn begin_transaction(&self) -> Result<()> {
        self.txn(|p| p.begin_transaction()).await
    }

    /// Adds the consumer's progress (the offsets after `processed`, per partition) to the
    /// transaction: they are committed for the consumer's group if and only if the transaction
    /// commits.
    pub async fn send_consumer_offsets<U: Model>(
        &self,
        consumer: &crate::consumer::Consumer<U>,
        processed: &[&crate::consumer::Record<U>],
        timeout: Duration,
    ) -> Result<()> {
        let mut next: std::collections::BTreeMap<(String, i32), i64> = Default::default();
        for r in processed {
            let e = next.entry((r.topic.clone(), r.partition)).or_insert(0);
            *e = (*e).max(r.offset + 1);
        }
        let mut tpl = rdkafka::TopicPartitionList::new();
        for ((topic, partition), offset) in next {
            tpl.add_partition_offset(&topic, partition, rdkafka::Offset::Offset(offset))?;
        }
        let metadata = consumer
            .group_metadata()
            .ok_or_else(|| Error::config("group.id", "the consumer is not part of a group"))?;
        self.txn(move |p| p.send_offsets_to_transaction(&tpl, &metadata, timeout))
            .await
    }

    /// Like [`send_consumer_offsets`](Self::send_consumer_offsets), from the next offset to
    /// read per partition and the group's metadata (consumer loops use it).
    pub(crate) async fn send_offsets(
        &self,
        metadata: rdkafka::consumer::ConsumerGroupMetadata,
        next: &[(crate::consumer::TopicPartition, i64)],
        timeout: Duration,
    ) -> Result<()> {
        let mut tpl = rdkafka::TopicPartitionList::new();
        for (tp, offset) in next {
            tpl.add_partition_offset(&tp.topic, tp.partition, rdkafka::Offset::Offset(*offset))?;
        }
        self.txn(move |p| p.send_offsets_to_transaction(&tpl, &metadata, timeout))
            .await
    }

    /// Commits the transaction: its messages and offsets become visible together.
    pub async fn commit_transaction(&self, timeout: Duration) -> Result<()> {
        self.txn(move |p| p.commit_transaction(timeout)).await
    }

    /// Aborts the transaction: `read_committed` consumers never see its messages.
    pub async fn abort_transaction(&self, timeout: Duration) -> Result<()> {
        self.txn(move |p| p.abort_transaction(timeout)).await
    }
}

fn producer_closed() -> Error {
    Error::Kafka(KafkaError::Canceled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(crate::Model, Debug, Clone, PartialEq)]
    #[flowodm(topic = "scratch-test", key = "id")]
    struct Note {
        id: String,
        text: String,
    }

    /// Encodes `record` as a send does and reads back the payload and key.
    fn roundtrip(record: OutRecord<'_, Note>) -> (Option<Note>, Option<Vec<u8>>) {
        with_scratch(|buf| {
            let m = Producer::<Note>::prepare(7, record, buf).unwrap();
            let payload = m.payload.map(|r| {
                let framed = crate::wire::parse(&buf[r]).unwrap();
                assert_eq!(framed.schema_id, 7);
                crate::avro::from_avro::<Note>(framed.datum).unwrap()
            });
            (payload, m.key.map(|r| buf[r].to_vec()))
        })
    }

    #[test]
    fn a_reused_buffer_carries_nothing_from_one_message_to_the_next() {
        let big = Note {
            id: "K-LONG-".repeat(50),
            text: "x".repeat(10_000),
        };
        let small = Note {
            id: "k".into(),
            text: "y".into(),
        };
        assert_eq!(
            roundtrip(OutRecord::new(&big)),
            (Some(big.clone()), Some("K-LONG-".repeat(50).into_bytes()))
        );
        let again = roundtrip(OutRecord::new(&small));
        assert_eq!(again.0.as_ref(), Some(&small));
        assert_eq!(again.1.as_deref(), Some(&b"k"[..]));
        // Explicit key, no key, tombstone.
        let keyed = roundtrip(OutRecord::new(&small).key("explicit"));
        assert_eq!(keyed, (Some(small.clone()), Some(b"explicit".to_vec())));
        let unkeyed = roundtrip(OutRecord::new(&small).no_key());
        assert_eq!(unkeyed.1, None);
        assert_eq!(
            roundtrip(OutRecord::<Note>::tombstone("gone")),
            (None, Some(b"gone".to_vec()))
        );
    }

    #[test]
    fn the_scratch_buffer_is_reused_but_a_huge_one_is_not_kept() {
        let first = with_scratch(|buf| {
            buf.extend_from_slice(b"abc");
            buf.as_ptr() as usize
        });
        let second = with_scratch(|buf| {
            assert!(buf.is_empty(), "a reused buffer starts empty");
            buf.as_ptr() as usize
        });
        assert_eq!(first, second, "the same allocation is reused");
        // A nested call gets its own buffer, so the outer bytes stay intact.
        with_scratch(|outer| {
            outer.extend_from_slice(b"outer");
            with_scratch(|inner| {
                assert!(inner.is_empty());
                inner.extend_from_slice(b"inner");
            });
            assert_eq!(outer, b"outer");
        });
        with_scratch(|buf| buf.resize(SCRATCH_KEEP + 1, 0));
        with_scratch(|buf| assert!(buf.capacity() <= SCRATCH_KEEP));
    }
}

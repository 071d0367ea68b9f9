//! Consuming typed messages.
//!
//! A consumer joins a *consumer group*: the group's members share the topic's partitions, each
//! partition read by one member at a time, in offset order. What the group has processed is its
//! *committed offset* per partition: after a restart or a rebalance, reading resumes there. So
//! when an offset is committed decides the delivery guarantee: after processing, a crash means
//! the message is read again (at-least-once); before, it may be lost (at-most-once).
//!
//! flowodm never lets librdkafka store offsets on its own (`enable.auto.offset.store=false`):
//!
//! - With auto commit off (the default of most [profiles](crate::profiles)), nothing is committed
//!   until you call [`commit`](Consumer::commit) (synchronous: the offset is durable when it
//!   returns), [`commit_async`](Consumer::commit_async), or [`store`](Consumer::store) a
//!   record's offset and later [`commit_stored`](Consumer::commit_stored).
//! - With auto commit on (`RealTime`, `HighThroughput`), a record counts as processed when you
//!   ask for the next one, as in the Java client; librdkafka commits those offsets every
//!   `auto.commit.interval.ms`.
//! - When partitions are taken away in a rebalance, stored offsets are committed first
//!   ([`on_revoke`](ConsumerBuilder::on_revoke) and [`on_assign`](ConsumerBuilder::on_assign)
//!   callbacks run too).
//!
//! [`consume_one`](Consumer::consume_one) tells apart a record, a tombstone and a timeout; every
//! failure is an error, never a silent `None`: a message that cannot be decoded is
//! [`Error::Decode`] with the raw bytes and where they came from, so it can go to a dead-letter
//! topic.
//!
//! # When the cluster is away
//!
//! A timeout means that nothing new arrived. librdkafka reconnects to brokers on its own and its
//! reports of a failed connection are logged, not returned: a broker closing an idle connection,
//! or one broker of several restarting, is no failure of the consumer. But once no broker at all
//! has been reachable for the [unreachable timeout](ConsumerBuilder::unreachable_timeout)
//! (default 5 s) — the cluster is down, the network is cut, or the bootstrap servers are wrong —
//! polls fail with the retriable [`Error::BrokersUnreachable`] (kind
//! [`Connection`](crate::ErrorKind::Connection)) instead of timing out silently, so that a
//! service can report itself unhealthy. Each such poll still waits (up to a second, or its
//! timeout if shorter) for a broker to come back, so a loop that retries does not spin; once one
//! answers, polls return records and timeouts again. A consumer whose cluster is suspect checks
//! with a metadata request, which waits for any usable broker.
//!
//! [`Consumer`] is async and never blocks the runtime while it waits; [`BlockingConsumer`] is the
//! same for synchronous code.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, Stream};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::client::Client;
use crate::codec::{Codec, CodecConfig};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::profiles::Profile;
use crate::reachability::{
    is_reconnecting, Reachability, DEFAULT_UNREACHABLE_TIMEOUT, MAX_PROBE, MIN_PROBE,
};

/// A message as it came from Kafka, before decoding: kept on decode errors.
#[derive(Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RawMessage {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The value bytes (`None` for a tombstone).
    pub payload: Option<Vec<u8>>,
    /// The headers, in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The timestamp (milliseconds since the epoch).
    pub timestamp: Option<i64>,
}

impl fmt::Debug for RawMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawMessage")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("offset", &self.offset)
            .field("key_len", &self.key.as_ref().map(Vec::len))
            .field("payload_len", &self.payload.as_ref().map(Vec::len))
            .field("headers", &self.headers.len())
            .finish()
    }
}

impl RawMessage {
    fn from_message(m: &BorrowedMessage<'_>) -> Self {
        let mut raw = RawMessage::default();
        raw.refill(m);
        raw
    }

    /// Becomes a copy of `m`, reusing its own buffers: a message recycled this way costs no
    /// allocation when the next one is no larger (and has no headers).
    pub(crate) fn refill(&mut self, m: &BorrowedMessage<'_>) {
        let topic = m.topic();
        if self.topic != topic {
            topic.clone_into(&mut self.topic);
        }
        self.partition = m.partition();
        self.offset = m.offset();
        refill_bytes(&mut self.key, m.key());
        refill_bytes(&mut self.payload, m.payload());
        self.headers.clear();
        self.headers.extend(header_pairs(m));
        self.timestamp = m.timestamp().to_millis();
    }
}

fn refill_bytes(slot: &mut Option<Vec<u8>>, bytes: Option<&[u8]>) {
    match (slot.as_mut(), bytes) {
        (Some(buffer), Some(bytes)) => {
            buffer.clear();
            buffer.extend_from_slice(bytes);
        }
        (_, bytes) => *slot = bytes.map(<[u8]>::to_vec),
    }
}

fn headers_of(m: &BorrowedMessage<'_>) -> Vec<(String, Option<Vec<u8>>)> {
    header_pairs(m).collect()
}

/// A message's headers as (key, value) pairs, copied.
fn header_pairs<'m>(
    m: &'m BorrowedMessage<'_>,
) -> impl Iterator<Item = (String, Option<Vec<u8>>)> + 'm {
    m.headers()
        .into_iter()
        .flat_map(|h| h.iter())
        .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
}

/// A decoded message with where it came from.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Record<T> {
    /// The value.
    pub value: T,
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The headers, in order (none when the consumer was built with
    /// [`skip_headers`](ConsumerBuilder::skip_headers)).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The timestamp (milliseconds since the epoch).
    pub timestamp: Option<i64>,
    /// The registry id of the schema the value was written with.
    pub schema_id: u32,
}

/// A message with a key and no value: on a compacted topic, the key's deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tombstone {
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The timestamp (milliseconds since the epoch).
    pub timestamp: Option<i64>,
}

/// What one poll gave.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Consumed<T> {
    /// A message, decoded.
    Record(Record<T>),
    /// A message without value.
    Tombstone(Tombstone),
    /// Nothing arrived before the timeout.
    Timeout,
}

impl<T> Consumed<T> {
    /// The record, if this is one.
    pub fn record(self) -> Option<Record<T>> {
        match self {
            Consumed::Record(r) => Some(r),
            _ => None,
        }
    }
}

/// A topic partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| TopicPartition {
            topic: e.topic().to_string(),
            partition: e.partition(),
        })
        .collect()
}

type RebalanceCallback = Arc<dyn Fn(&[TopicPartition]) + Send + Sync>;

/// Rebalance handling: callbacks, and committing stored offsets before partitions go.
struct Context {
    on_assign: Option<RebalanceCallback>,
    on_revoke: Option<RebalanceCallback>,
    before_revoke: Option<RebalanceCallback>,
    auth_error: Mutex<Option<KafkaError>>,
    /// Whether `auth_error` holds an error: checked before every poll without taking the lock.
    auth_failed: AtomicBool,
    reach: Reachability,
    /// The partitions the application paused.
    paused: Mutex<std::collections::HashSet<TopicPartition>>,
}

impl ClientContext for Context {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "kafka consumer error");
        self.reach.report(&error, reason);
        if matches!(
            error.rdkafka_error_code(),
            Some(rdkafka::types::RDKafkaErrorCode::Authentication)
        ) {
            if let Ok(mut slot) = self.auth_error.lock() {
                *slot = Some(error);
                self.auth_failed.store(true, Ordering::Release);
            }
        }
    }
}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            if let Some(drain) = &self.before_revoke {
                drain(&partitions_of(tpl));
            }
            // Offsets of processed records must not be lost with the partitions.
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                if !matches!(
                    e.rdkafka_error_code(),
                    Some(rdkafka::types::RDKafkaErrorCode::NoOffset)
                ) {
                    tracing::warn!(error = %e, "committing before the revocation failed");
                }
            }
            // librdkafka keeps a partition's pause across revocation, so a partition paused when
            // it went would come back paused and never be fetched; as in the Java client, a
            // partition assigned again starts unpaused.
            let paused: Vec<TopicPartition> = match self.paused.lock() {
                Ok(mut paused) => partitions_of(tpl)
                    .into_iter()
                    .filter(|p| paused.remove(p))
                    .collect(),
                Err(_) => partitions_of(tpl),
            };
            if !paused.is_empty() {
                if let Err(e) = consumer.resume(&tpl_of(&paused)) {
                    tracing::warn!(error = %e, "resuming revoked partitions failed");
                }
            }
            if let Some(cb) = &self.on_revoke {
                cb(&partitions_of(tpl));
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            // The group coordinator answered.
            self.reach.reachable();
            if let Some(cb) = &self.on_assign {
                cb(&partitions_of(tpl));
            }
        }
    }
}

/// What to subscribe to.
#[derive(Debug, Clone)]
enum Subscription {
    Topics(Vec<String>),
    Pattern(String),
    Manual,
}

/// Builds a [`Consumer`] or [`BlockingConsumer`]; from [`Client::consumer`].
pub struct ConsumerBuilder<T> {
    client: Client,
    group: Option<String>,
    profile: Profile,
    properties: Vec<(String, String)>,
    subscription: Subscription,
    codec: CodecConfig,
    on_assign: Option<RebalanceCallback>,
    on_revoke: Option<RebalanceCallback>,
    before_revoke: Option<RebalanceCallback>,
    skip_headers: bool,
    unreachable_timeout: Duration,
    _model: std::marker::PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for ConsumerBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerBuilder")
            .field("group", &self.group)
            .field("profile", &self.profile)
            .field("subscription", &self.subscription)
            .finish()
    }
}

impl<T: Model> ConsumerBuilder<T> {
    pub(crate) fn new(client: Client) -> Self {
        ConsumerBuilder {
            client,
            group: T::SETTINGS.consumer_group.map(str::to_owned),
            profile: Profile::default(),
            properties: Vec::new(),
            subscription: Subscription::Topics(vec![T::SETTINGS.topic.to_string()]),
            codec: CodecConfig::default(),
            on_assign: None,
            on_revoke: None,
            before_revoke: None,
            skip_headers: false,
            unreachable_timeout: DEFAULT_UNREACHABLE_TIMEOUT,
            _model: std::marker::PhantomData,
        }
    }

    /// Runs first when partitions are revoked, before stored offsets are committed (consumer
    /// loops finish in-flight messages there).
    pub(crate) fn before_revoke(
        mut self,
        f: impl Fn(&[TopicPartition]) + Send + Sync + 'static,
    ) -> Self {
        self.before_revoke = Some(Arc::new(f));
        self
    }

    /// Leaves [`Record::headers`] empty instead of reading each message's headers.
    ///
    /// librdkafka parses a message's headers when they are first asked for, and parsing
    /// allocates even for a message that has none: for small messages that is about a tenth of
    /// a consumer's time per message (see `docs/BENCHMARKS.md`). Skip them when your code does
    /// not read headers. A message that cannot be decoded still carries its headers in
    /// [`Error::Decode`]'s [`RawMessage`], and consumer loops always read them, because a
    /// dead-lettered message keeps its headers.
    ///
    /// ```no_run
    /// # #[derive(flowodm::Model)] #[flowodm(topic = "orders")] struct Order { id: String }
    /// # fn demo() -> flowodm::Result<()> {
    /// let consumer = flowodm::Client::from_env()?
    ///     .consumer::<Order>()
    ///     .group("order-totals")
    ///     .skip_headers()
    ///     .build_blocking()?;
    /// # Ok(()) }
    /// ```
    pub fn skip_headers(mut self) -> Self {
        self.skip_headers = true;
        self
    }

    /// The consumer group (default: the model's `consumer_group`).
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// The tuning profile (default [`Profile::LongRunning`]).
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// Sets any librdkafka consumer property (wins over the profile).
    pub fn set(mut self, property: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.push((property.into(), value.into()));
        self
    }

    /// Subscribes to these topics instead of the model's.
    pub fn topics<S: Into<String>>(mut self, topics: impl IntoIterator<Item = S>) -> Self {
        self.subscription = Subscription::Topics(topics.into_iter().map(Into::into).collect());
        self
    }

    /// Subscribes to every topic matching the regular expression (now and as topics appear).
    pub fn pattern(mut self, regex: impl AsRef<str>) -> Self {
        let r = regex.as_ref();
        let r = if r.starts_with('^') {
            r.to_string()
        } else {
            format!("^{r}")
        };
        self.subscription = Subscription::Pattern(r);
        self
    }

    /// Subscribes to nothing: partitions are chosen with [`Consumer::assign`].
    pub fn manual_assignment(mut self) -> Self {
        self.subscription = Subscription::Manual;
        self
    }

    /// How the schema is named in the registry.
    pub fn codec(mut self, config: CodecConfig) -> Self {
        self.codec = config;
        self
    }

    /// How long no broker may be reachable before [`consume_one`](Consumer::consume_one) says
    /// so with [`Error::BrokersUnreachable`] instead of [`Consumed::Timeout`] (default 5 s).
    ///
    /// Timeouts mean "nothing new"; once every broker has been down this long, polls fail with
    /// that retriable error instead, about once per second or per poll timeout if shorter, until a
    /// broker answers again. Messages already fetched are still handed out first.
    pub fn unreachable_timeout(mut self, timeout: Duration) -> Self {
        self.unreachable_timeout = timeout;
        self
    }

    /// Runs after partitions are assigned to this member.
    pub fn on_assign(mut self, f: impl Fn(&[TopicPartition]) + Send + Sync + 'static) -> Self {
        self.on_assign = Some(Arc::new(f));
        self
    }

    /// Runs before partitions are taken away, after stored offsets are committed.
    pub fn on_revoke(mut self, f: impl Fn(&[TopicPartition]) + Send + Sync + 'static) -> Self {
        self.on_revoke = Some(Arc::new(f));
        self
    }

    /// The librdkafka configuration the consumer will have (secrets included: do not log it).
    pub fn client_config(&self) -> Result<rdkafka::ClientConfig> {
        let mut c = self.client.kafka().client_config();
        let group = self.group.clone().ok_or_else(|| {
            Error::config(
                "group.id",
                format!(
                    "no consumer group: set consumer_group on {} or call .group(...)",
                    std::any::type_name::<T>()
                ),
            )
        })?;
        c.set("group.id", group);
        for (k, v) in crate::profiles::CONSUMER_DEFAULTS {
            c.set(*k, *v);
        }
        for (k, v) in self.profile.consumer_properties() {
            c.set(k, v);
        }
        // Properties the application set on its KafkaConfig win over flowodm's choices, as they
        // do for producers; except that flowodm decides when offsets are stored.
        for (k, v) in self.client.kafka().properties() {
            c.set(k, v);
        }
        c.set("enable.auto.offset.store", "false");
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        Ok(c)
    }

    fn parts(self) -> Result<Parts<T>> {
        let config = self.client_config()?;
        let auto_commit = config.get("enable.auto.commit") == Some("true");
        let codec = Codec::<T>::with_config(self.client.registry().clone(), self.codec)?;
        let ctx = Context {
            on_assign: self.on_assign,
            on_revoke: self.on_revoke,
            before_revoke: self.before_revoke,
            auth_error: Mutex::new(None),
            auth_failed: AtomicBool::new(false),
            reach: Reachability::default(),
            paused: Mutex::default(),
        };
        Ok(Parts {
            config,
            ctx,
            subscription: self.subscription,
            shared: Shared {
                codec,
                batch: self.profile.consumer().max_poll_records,
                auto_commit,
                read_headers: !self.skip_headers,
                pending_store: Mutex::default(),
                unreachable_timeout: self.unreachable_timeout,
            },
        })
    }

    /// Creates an async consumer and subscribes.
    pub fn build(self) -> Result<Consumer<T>> {
        let p = self.parts()?;
        let inner: StreamConsumer<Context> =
            p.config.create_with_context(p.ctx).map_err(config_error)?;
        subscribe(&inner, &p.subscription)?;
        Ok(Consumer {
            inner: Arc::new(inner),
            shared: p.shared,
        })
    }

    /// Creates a blocking consumer and subscribes.
    pub fn build_blocking(self) -> Result<BlockingConsumer<T>> {
        let p = self.parts()?;
        let inner: BaseConsumer<Context> =
            p.config.create_with_context(p.ctx).map_err(config_error)?;
        subscribe(&inner, &p.subscription)?;
        Ok(BlockingConsumer {
            inner,
            shared: p.shared,
        })
    }
}

/// What building a consumer needs, from the builder.
struct Parts<T> {
    config: rdkafka::ClientConfig,
    ctx: Context,
    subscription: Subscription,
    shared: Shared<T>,
}

fn config_error(e: KafkaError) -> Error {
    match e {
        KafkaError::ClientConfig(_, desc, key, _) => Error::config(key, desc),
        other => Error::Kafka(other),
    }
}

fn subscribe<C: rdkafka::consumer::Consumer<Context>>(c: &C, sub: &Subscription) -> Result<()> {
    match sub {
        Subscription::Topics(t) => {
            let refs: Vec<&str> = t.iter().map(String::as_str).collect();
            c.subscribe(&refs)?;
        }
        Subscription::Pattern(p) => c.subscribe(&[p.as_str()])?,
        Subscription::Manual => {}
    }
    Ok(())
}

/// The offset to commit for a record: the next one to read.
fn next_offset(topic: &str, partition: i32, offset: i64) -> Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset + 1))?;
    Ok(tpl)
}

fn tpl_of(partitions: &[TopicPartition]) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition(&p.topic, p.partition);
    }
    tpl
}

/// Shared between the async and the blocking consumer.
macro_rules! offset_methods {
    () => {
        /// Commits `record`'s partition up to and including it; durable when this returns.
        pub fn commit(&self, record: &Record<T>) -> Result<()> {
            let tpl = next_offset(&record.topic, record.partition, record.offset)?;
            Ok(self.inner.commit(&tpl, CommitMode::Sync)?)
        }

        /// Commits like [`commit`](Self::commit) without waiting for the broker's answer.
        pub fn commit_async(&self, record: &Record<T>) -> Result<()> {
            let tpl = next_offset(&record.topic, record.partition, record.offset)?;
            Ok(self.inner.commit(&tpl, CommitMode::Async)?)
        }

        /// Marks the message at `offset` processed (for messages without a [`Record`], such as
        /// tombstones); committed like [`store`](Self::store).
        pub fn store_offset(&self, topic: &str, partition: i32, offset: i64) -> Result<()> {
            // rd_kafka_offset_store stores the offset after the one given.
            Ok(self.inner.store_offset(topic, partition, offset)?)
        }

        /// Marks `record` processed; [`commit_stored`](Self::commit_stored), auto commit or a
        /// rebalance commits it.
        pub fn store(&self, record: &Record<T>) -> Result<()> {
            // rd_kafka_offset_store stores the offset after the one given.
            Ok(self
                .inner
                .store_offset(&record.topic, record.partition, record.offset)?)
        }

        /// Commits every stored offset; durable when this returns.
        pub fn commit_stored(&self) -> Result<()> {
            match self.inner.commit_consumer_state(CommitMode::Sync) {
                Err(e)
                    if matches!(
                        e.rdkafka_error_code(),
                        Some(rdkafka::types::RDKafkaErrorCode::NoOffset)
                    ) =>
                {
                    Ok(())
                }
                other => Ok(other?),
            }
        }

        /// The group's committed offsets of the assigned partitions (the next offset to read).
        pub fn committed(&self, timeout: Duration) -> Result<Vec<(TopicPartition, Option<i64>)>> {
            let tpl = self.inner.committed(timeout)?;
            Ok(tpl
                .elements()
                .iter()
                .map(|e| {
                    let offset = match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    };
                    (
                        TopicPartition {
                            topic: e.topic().to_string(),
                            partition: e.partition(),
                        },
                        offset,
                    )
                })
                .collect())
        }

        /// The partitions assigned to this consumer.
        pub fn assignment(&self) -> Result<Vec<TopicPartition>> {
            Ok(partitions_of(&self.inner.assignment()?))
        }

        /// Reads these partitions from these offsets, without a group subscription.
        pub fn assign(&self, partitions: &[(TopicPartition, Offset)]) -> Result<()> {
            let mut tpl = TopicPartitionList::new();
            for (p, o) in partitions {
                tpl.add_partition_offset(&p.topic, p.partition, *o)?;
            }
            Ok(self.inner.assign(&tpl)?)
        }

        /// Moves the read position of an assigned partition.
        pub fn seek(
            &self,
            partition: &TopicPartition,
            offset: Offset,
            timeout: Duration,
        ) -> Result<()> {
            Ok(self
                .inner
                .seek(&partition.topic, partition.partition, offset, timeout)?)
        }

        /// Stops fetching these partitions (the group keeps them; see [`resume`](Self::resume)).
        ///
        /// The pause ends when a partition is revoked in a rebalance: if it is assigned again,
        /// it is fetched (as in the Java client).
        pub fn pause(&self, partitions: &[TopicPartition]) -> Result<()> {
            self.inner.pause(&tpl_of(partitions))?;
            if let Ok(mut paused) = self.inner.context().paused.lock() {
                paused.extend(partitions.iter().cloned());
            }
            Ok(())
        }

        /// Fetches paused partitions again.
        pub fn resume(&self, partitions: &[TopicPartition]) -> Result<()> {
            self.inner.resume(&tpl_of(partitions))?;
            if let Ok(mut paused) = self.inner.context().paused.lock() {
                for p in partitions {
                    paused.remove(p);
                }
            }
            Ok(())
        }

        /// The codec (schema, subject, resolution cache).
        pub fn codec(&self) -> &Codec<T> {
            &self.shared.codec
        }

        /// How many records a batch holds at most (the profile's `max_poll_records`).
        pub fn batch_size(&self) -> usize {
            self.shared.batch
        }

        /// With auto commit, a record counts as processed when the next is asked for.
        fn store_previous(&self) -> Result<()> {
            if !self.shared.auto_commit {
                return Ok(());
            }
            let Ok(mut pending) = self.shared.pending_store.lock() else {
                return Ok(());
            };
            if std::mem::take(&mut pending.due) {
                // Stores the offset after `offset`: the next one to read.
                self.inner
                    .store_offset(&pending.topic, pending.partition, pending.offset)?;
            }
            Ok(())
        }

        fn reach(&self) -> &Reachability {
            &self.inner.context().reach
        }

        /// Commits what auto commit counts as processed and fails fast on a known
        /// authentication failure: the start of every poll.
        fn begin_poll(&self) -> Result<()> {
            self.store_previous()?;
            match self.auth_failure() {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }

        fn auth_failure(&self) -> Option<Error> {
            let ctx = self.inner.context();
            if !ctx.auth_failed.load(Ordering::Acquire) {
                return None;
            }
            let mut slot = ctx.auth_error.lock().ok()?;
            ctx.auth_failed.store(false, Ordering::Release);
            slot.take().map(Error::Kafka)
        }
    };
}

/// What [`Consumer`] and [`BlockingConsumer`] share: everything but the librdkafka handle, and
/// what they do before and after a poll.
struct Shared<T> {
    codec: Codec<T>,
    batch: usize,
    auto_commit: bool,
    /// Whether records carry their headers (see [`ConsumerBuilder::skip_headers`]).
    read_headers: bool,
    pending_store: Mutex<PendingStore>,
    unreachable_timeout: Duration,
}

/// With auto commit: the message handed out last, whose offset is stored when the next message
/// is asked for. The topic's string is reused, so that a message costs no allocation here.
///
/// (No librdkafka object is kept here: a partition list that has been stored holds a reference
/// to the partition, and the client could not be destroyed while this outlives it.)
#[derive(Default)]
struct PendingStore {
    topic: String,
    partition: i32,
    offset: i64,
    due: bool,
}

impl PendingStore {
    /// Remembers the message at `offset` in `topic`/`partition`.
    fn set(&mut self, topic: &str, partition: i32, offset: i64) {
        if self.topic != topic {
            topic.clone_into(&mut self.topic);
        }
        self.partition = partition;
        self.offset = offset;
        self.due = true;
    }
}

/// What to do after a wait for a message ended without one.
enum Idle<T> {
    /// Wait again (the deadline is not reached).
    Wait,
    /// The cluster has been suspect for the unreachable timeout: check, waiting at most this
    /// long, whether a broker is reachable.
    Probe(Duration),
    /// Return this.
    Done(Result<Consumed<T>>),
}

impl<T: Model> Shared<T> {
    /// Until when the next wait may last: the deadline, or earlier when a connection failed
    /// (then the wait ends when the cluster has been suspect for the unreachable timeout).
    fn wait_until(&self, reach: &Reachability, deadline: Instant) -> Instant {
        match reach.suspect_since() {
            Some(since) => deadline.min((since + self.unreachable_timeout).max(Instant::now())),
            None => deadline,
        }
    }

    /// After a wait that ended without a message.
    fn idle(&self, reach: &Reachability, deadline: Instant, auth: Option<Error>) -> Idle<T> {
        if let Some(e) = auth {
            return Idle::Done(Err(e));
        }
        let now = Instant::now();
        if reach
            .suspect_since()
            .is_some_and(|since| now >= since + self.unreachable_timeout)
        {
            let left = deadline.saturating_duration_since(now);
            return Idle::Probe(left.clamp(MIN_PROBE, MAX_PROBE));
        }
        if now >= deadline {
            Idle::Done(Ok(Consumed::Timeout))
        } else {
            Idle::Wait
        }
    }

    /// What the poll returns after [`idle`](Self::idle) (and the check for a broker it asked
    /// for), if it returns: `None` to wait again.
    fn after_idle(
        &self,
        idle: Idle<T>,
        reach: &Reachability,
        deadline: Instant,
    ) -> Option<Result<Consumed<T>>> {
        match idle {
            Idle::Wait => None,
            Idle::Done(r) => Some(r),
            Idle::Probe(_) => match reach.error() {
                Some(e) => Some(Err(e)),
                None => (Instant::now() >= deadline).then_some(Ok(Consumed::Timeout)),
            },
        }
    }

    /// The writer schema a polled message needs fetched before it can be decoded.
    ///
    /// `None` when it is ready to decode; the common case is found out by decoding it
    /// ([`decode_ready`](Self::decode_ready)), not by a look-up of its own.
    fn schema_to_fetch(&self, m: &BorrowedMessage<'_>) -> Option<u32> {
        schema_id_of(m).filter(|id| !self.codec.is_prepared(*id))
    }

    /// Turns a polled message into what the poll gave, if its writer schema is prepared (or it
    /// needs none); `None` when the schema must be fetched first (then [`finish`](Self::finish)
    /// after [`Codec::prepare`]).
    fn decode_ready(&self, m: &BorrowedMessage<'_>) -> Option<Result<Consumed<T>>> {
        let decoded = decode(&self.codec, m, self.read_headers)?;
        self.remember(m);
        Some(decoded)
    }

    /// With auto commit, the polled message is stored when the next one is asked for.
    fn remember(&self, m: &BorrowedMessage<'_>) {
        if self.auto_commit {
            if let Ok(mut p) = self.pending_store.lock() {
                p.set(m.topic(), m.partition(), m.offset());
            }
        }
    }

    /// Turns a polled message into what the poll gave; `prepared` is the outcome of fetching
    /// its writer schema.
    fn finish(&self, m: &BorrowedMessage<'_>, prepared: Result<()>) -> Result<Consumed<T>> {
        self.remember(m);
        let decoded = prepared.and_then(|()| {
            match decode(&self.codec, m, self.read_headers) {
                Some(decoded) => decoded,
                // Prepared, yet not in the cache: cannot happen (plans are never evicted).
                None => Err(Error::UnknownSchema {
                    id: schema_id_of(m).unwrap_or_default(),
                }),
            }
        });
        decoded.map_err(|e| match e {
            Error::Decode { .. } => e,
            other => Error::Decode {
                raw: Box::new(RawMessage::from_message(m)),
                source: Box::new(other),
            },
        })
    }
}

/// Decodes a polled message; `None` when its writer schema is not prepared yet.
fn decode<T: Model>(
    codec: &Codec<T>,
    m: &BorrowedMessage<'_>,
    read_headers: bool,
) -> Option<Result<Consumed<T>>> {
    let Some(payload) = m.payload() else {
        return Some(Ok(Consumed::Tombstone(Tombstone {
            key: m.key().map(<[u8]>::to_vec),
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            timestamp: m.timestamp().to_millis(),
        })));
    };
    let decoded = crate::wire::parse(payload)
        .and_then(|f| codec.decode_prepared(payload).map(|v| (v, f.schema_id)));
    Some(match decoded {
        Ok((value, schema_id)) => Ok(Consumed::Record(Record {
            value,
            key: m.key().map(<[u8]>::to_vec),
            headers: if read_headers {
                headers_of(m)
            } else {
                Vec::new()
            },
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            timestamp: m.timestamp().to_millis(),
            schema_id,
        })),
        Err(Error::UnknownSchema { .. }) => return None,
        Err(source) => Err(Error::Decode {
            raw: Box::new(RawMessage::from_message(m)),
            source: Box::new(source),
        }),
    })
}

/// The codec of a topic's keys (`{topic}-key`) and the record's key bytes.
fn key_codec<'r, T: Model, K: crate::avro::Avro + 'static>(
    codec: &Codec<T>,
    record: &'r Record<T>,
) -> Result<(Codec<K>, &'r [u8])> {
    let key = record
        .key
        .as_deref()
        .ok_or_else(|| Error::Deserialization {
            message: format!(
                "the message at {}:{}@{} has no key",
                record.topic, record.partition, record.offset
            ),
        })?;
    let keys = Codec::<K>::for_subject(
        codec.registry().clone(),
        format!("{}-key", record.topic),
        CodecConfig::default(),
    )?;
    Ok((keys, key))
}

/// The writer schema id of a message, if its value is framed.
fn schema_id_of(m: &BorrowedMessage<'_>) -> Option<u32> {
    m.payload()
        .and_then(|p| crate::wire::parse(p).ok())
        .map(|f| f.schema_id)
}

/// Consumes values of the model `T` asynchronously; waiting never blocks the runtime.
///
/// ```no_run
/// # async fn demo() -> flowodm::Result<()> {
/// use std::time::Duration;
/// use flowodm::consumer::Consumed;
///
/// #[derive(flowodm::Model, Debug)]
/// #[flowodm(topic = "orders", consumer_group = "billing")]
/// struct Order { order_id: String }
///
/// let consumer = flowodm::Client::from_env()?.consumer::<Order>().build()?;
/// loop {
///     match consumer.consume_one(Duration::from_secs(1)).await? {
///         Consumed::Record(record) => {
///             println!("{} at {}:{}", record.value.order_id, record.partition, record.offset);
///             consumer.commit(&record)?; // processed: commit
///         }
///         Consumed::Tombstone(_) | Consumed::Timeout => {}
///         _ => {}
///     }
/// }
/// # }
/// ```
pub struct Consumer<T> {
    /// Shared with the blocking thread that checks, during an outage, whether a broker is back.
    inner: Arc<StreamConsumer<Context>>,
    shared: Shared<T>,
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("model", &std::any::type_name::<T>())
            .finish()
    }
}

impl<T: Model> Consumer<T> {
    offset_methods!();

    /// Decodes an Avro-encoded key (framed, schema under `{topic}-key`), as written by
    /// [`Producer::send_with_key`](crate::producer::Producer::send_with_key) or Confluent's key
    /// serializers.
    pub async fn decode_key<K: crate::avro::Avro + 'static>(
        &self,
        record: &Record<T>,
    ) -> Result<K> {
        let (keys, key) = key_codec(&self.shared.codec, record)?;
        keys.decode(key).await
    }

    /// The group's metadata, for committing offsets in a producer's transaction.
    pub fn group_metadata(&self) -> Option<rdkafka::consumer::ConsumerGroupMetadata> {
        self.inner.group_metadata()
    }

    /// Checks whether a broker is reachable, waiting at most `wait` (on a blocking thread).
    async fn probe(&self, wait: Duration) {
        match self.reach().start_probe() {
            Some(probe) => {
                let inner = self.inner.clone();
                let up = tokio::task::spawn_blocking(move || inner.fetch_metadata(None, wait))
                    .await
                    .is_ok_and(|r| r.is_ok());
                probe.done(up);
            }
            // Another poll is checking; its answer counts.
            None => tokio::time::sleep(wait).await,
        }
    }

    /// Waits up to `timeout` for the next message.
    ///
    /// Fails with the retriable [`Error::BrokersUnreachable`] once no broker has been reachable
    /// for the [unreachable timeout](ConsumerBuilder::unreachable_timeout), and with
    /// [`Error::Decode`] for a message that cannot be decoded.
    pub async fn consume_one(&self, timeout: Duration) -> Result<Consumed<T>> {
        match self.next_message(timeout).await {
            Ok(m) => self.decode_polled(m).await,
            Err(done) => done,
        }
    }

    /// Waits up to `timeout` for the next message and copies it undecoded into `into` (see
    /// [`RawMessage::refill`]), as the bytes a dead letter keeps: consumer loops decode it
    /// where it is handled. False on a timeout.
    ///
    /// Unlike [`consume_one`](Self::consume_one) it never stores the offset of what it handed
    /// out, even with `enable.auto.commit`: a loop stores offsets once messages are finished.
    pub(crate) async fn consume_raw(
        &self,
        timeout: Duration,
        into: &mut RawMessage,
    ) -> Result<bool> {
        match self.next_message(timeout).await {
            Ok(m) => {
                into.refill(&m);
                Ok(true)
            }
            Err(done) => done.map(|_| false),
        }
    }

    /// The next message, or (`Err`) what the poll returns without one: a timeout or an error.
    async fn next_message(
        &self,
        timeout: Duration,
    ) -> std::result::Result<BorrowedMessage<'_>, Result<Consumed<T>>> {
        self.begin_poll().map_err(Err)?;
        // A message already fetched needs no timer: most polls of a busy consumer end here.
        match self.inner.recv().now_or_never() {
            Some(Err(e)) if is_reconnecting(&e) => {}
            Some(m) => return m.map_err(|e| Err(e.into())),
            None => {}
        }
        let deadline = Instant::now() + timeout;
        loop {
            let until = self.shared.wait_until(self.reach(), deadline);
            match tokio::time::timeout_at(until.into(), self.inner.recv()).await {
                Ok(Err(e)) if is_reconnecting(&e) => continue,
                Ok(m) => return m.map_err(|e| Err(e.into())),
                Err(_) => {}
            }
            let idle = self
                .shared
                .idle(self.reach(), deadline, self.auth_failure());
            if let Idle::Probe(wait) = idle {
                self.probe(wait).await;
            }
            if let Some(r) = self.shared.after_idle(idle, self.reach(), deadline) {
                return Err(r);
            }
        }
    }

    /// Fetches the writer schema of a polled message if needed, and decodes it.
    async fn decode_polled(&self, m: BorrowedMessage<'_>) -> Result<Consumed<T>> {
        if let Some(done) = self.shared.decode_ready(&m) {
            return done;
        }
        let prepared = match self.shared.schema_to_fetch(&m) {
            Some(id) => self.shared.codec.prepare(id).await,
            None => Ok(()),
        };
        self.shared.finish(&m, prepared)
    }

    /// Up to `max` messages (default: the profile's batch size), waiting at most `timeout` in all;
    /// returns early when a poll finds nothing for a while.
    pub async fn consume_batch(
        &self,
        max: Option<usize>,
        timeout: Duration,
    ) -> Result<Vec<Consumed<T>>> {
        let max = max.unwrap_or(self.shared.batch);
        let deadline = Instant::now() + timeout;
        let mut out = Vec::with_capacity(max.min(1024));
        while out.len() < max {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.consume_one(left).await? {
                Consumed::Timeout => break,
                c => out.push(c),
            }
        }
        Ok(out)
    }

    /// The messages as a `Stream`, without timeouts: each item is a record, a tombstone or an
    /// error — during an outage, [`Error::BrokersUnreachable`] about once a second, so that a
    /// stream never waits silently on a cluster that is gone.
    pub fn stream(&self) -> impl Stream<Item = Result<Consumed<T>>> + '_ {
        futures_util::stream::unfold(self, |c| async move {
            loop {
                match c.consume_one(Duration::from_secs(3600)).await {
                    Ok(Consumed::Timeout) => continue,
                    other => return Some((other, c)),
                }
            }
        })
    }
}

/// [`Consumer`] for synchronous code: waits on the calling thread.
pub struct BlockingConsumer<T> {
    inner: BaseConsumer<Context>,
    shared: Shared<T>,
}

impl<T> fmt::Debug for BlockingConsumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingConsumer")
            .field("model", &std::any::type_name::<T>())
            .finish()
    }
}

impl<T: Model> BlockingConsumer<T> {
    offset_methods!();

    /// Checks whether a broker is reachable, waiting at most `wait`.
    fn probe(&self, wait: Duration) {
        match self.reach().start_probe() {
            Some(probe) => probe.done(self.inner.fetch_metadata(None, wait).is_ok()),
            None => std::thread::sleep(wait),
        }
    }

    /// Waits up to `timeout` for the next message; see [`Consumer::consume_one`].
    pub fn consume_one(&self, timeout: Duration) -> Result<Consumed<T>> {
        self.begin_poll()?;
        // A message already fetched needs no deadline: most polls of a busy consumer end here.
        let ready = match self.inner.poll(Duration::ZERO) {
            Some(Err(e)) if is_reconnecting(&e) => None,
            Some(m) => Some(m?),
            None => None,
        };
        if let Some(m) = ready {
            return self.decode_polled(m);
        }
        let deadline = Instant::now() + timeout;
        let m = loop {
            let until = self.shared.wait_until(self.reach(), deadline);
            // poll also returns nothing after serving another event (a rebalance): poll again
            // until the time is up.
            match self
                .inner
                .poll(until.saturating_duration_since(Instant::now()))
            {
                Some(Err(e)) if is_reconnecting(&e) => continue,
                Some(m) => break m?,
                None if Instant::now() < until => continue,
                None => {}
            }
            let idle = self
                .shared
                .idle(self.reach(), deadline, self.auth_failure());
            if let Idle::Probe(wait) = idle {
                self.probe(wait);
            }
            if let Some(r) = self.shared.after_idle(idle, self.reach(), deadline) {
                return r;
            }
        };
        self.decode_polled(m)
    }

    /// Fetches the writer schema of a polled message if needed, and decodes it.
    fn decode_polled(&self, m: BorrowedMessage<'_>) -> Result<Consumed<T>> {
        if let Some(done) = self.shared.decode_ready(&m) {
            return done;
        }
        let prepared = match self.shared.schema_to_fetch(&m) {
            Some(id) => crate::util::block_on(self.shared.codec.prepare(id)),
            None => Ok(()),
        };
        self.shared.finish(&m, prepared)
    }

    /// Decodes an Avro-encoded key; see [`Consumer::decode_key`].
    pub fn decode_key<K: crate::avro::Avro + 'static>(&self, record: &Record<T>) -> Result<K> {
        let (keys, key) = key_codec(&self.shared.codec, record)?;
        let id = crate::wire::parse(key)?.schema_id;
        if !keys.is_prepared(id) {
            crate::util::block_on(keys.prepare(id))?;
        }
        keys.decode_prepared(key)
    }

    /// Up to `max` messages (default: the profile's batch size) within `timeout`.
    pub fn consume_batch(&self, max: Option<usize>, timeout: Duration) -> Result<Vec<Consumed<T>>> {
        let max = max.unwrap_or(self.shared.batch);
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < max {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.consume_one(left)? {
                Consumed::Timeout => break,
                c => out.push(c),
            }
        }
        Ok(out)
    }

    /// The messages as an iterator that waits up to `timeout` for each; it ends at the first
    /// timeout.
    pub fn iter(&self, timeout: Duration) -> impl Iterator<Item = Result<Consumed<T>>> + '_ {
        std::iter::from_fn(move || match self.consume_one(timeout) {
            Ok(Consumed::Timeout) => None,
            other => Some(other),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::SchemaRegistryClient;

    #[derive(crate::Model)]
    #[flowodm(topic = "config-test", consumer_group = "g")]
    struct Ping {
        n: i32,
    }

    fn builder() -> ConsumerBuilder<Ping> {
        let registry = SchemaRegistryClient::new("http://127.0.0.1:1").unwrap();
        Client::new(crate::KafkaConfig::new("127.0.0.1:1"), registry).consumer::<Ping>()
    }

    #[test]
    fn consumer_defaults_apply_under_every_profile_and_explicit_properties_win() {
        for profile in Profile::ALL {
            let c = builder().profile(profile).client_config().unwrap();
            assert_eq!(c.get("fetch.queue.backoff.ms"), Some("20"), "{profile}");
            assert_eq!(
                c.get("enable.auto.offset.store"),
                Some("false"),
                "{profile}"
            );
            assert_eq!(c.get("group.id"), Some("g"));
        }
        let c = builder()
            .set("fetch.queue.backoff.ms", "500")
            .client_config()
            .unwrap();
        assert_eq!(c.get("fetch.queue.backoff.ms"), Some("500"));
    }
}

//! Cluster administration: topics, and consumer groups with their lag.
//!
//! A group's *lag* on a partition is how far its committed offset is behind the partition's end
//! (the offset the next message will get): the number of messages written but not yet processed.
//! Rising lag means consumers fall behind.
//!
//! Metadata calls wait for the broker on a blocking thread, never on the async runtime's.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::KafkaConfig;
use crate::error::{Error, Result};

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// The name.
    pub name: String,
    /// How many partitions.
    pub partitions: i32,
    /// How many copies of each partition.
    pub replication: i32,
    /// Topic configuration, such as `("cleanup.policy", "compact")` or `("retention.ms", "604800000")`.
    pub config: Vec<(String, String)>,
}

impl TopicSpec {
    /// `partitions` partitions, replication 1, no configuration.
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        TopicSpec {
            name: name.into(),
            partitions,
            replication: 1,
            config: Vec::new(),
        }
    }

    /// Sets a topic configuration entry.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.push((key.into(), value.into()));
        self
    }

    /// Sets the replication factor.
    pub fn replication(mut self, replication: i32) -> Self {
        self.replication = replication;
        self
    }
}

/// A topic as the cluster describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicInfo {
    /// The name.
    pub name: String,
    /// Its partitions, by id.
    pub partitions: Vec<PartitionInfo>,
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionInfo {
    /// The partition id.
    pub id: i32,
    /// The broker that leads it.
    pub leader: i32,
    /// The brokers that hold a copy.
    pub replicas: Vec<i32>,
    /// The copies in sync with the leader.
    pub in_sync: Vec<i32>,
}

/// A consumer group as the cluster lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupInfo {
    /// The group id.
    pub name: String,
    /// Its state, such as `Stable` or `Empty`.
    pub state: String,
    /// How many members it has.
    pub members: usize,
}

/// A group's position on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionLag {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The group's committed offset (the next one it will read), if it committed any.
    pub committed: Option<i64>,
    /// The partition's end offset (the next one to be written).
    pub end: i64,
    /// `end - committed`: messages not yet processed; without a commit, counted from the
    /// partition's first retained offset.
    pub lag: i64,
}

/// The offsets of one partition: what is retained, and where the next message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionOffsets {
    /// The partition.
    pub partition: i32,
    /// The first retained offset (the low watermark).
    pub start: i64,
    /// The offset the next message will get (the high watermark); `end - start` messages are
    /// retained, fewer on a compacted topic.
    pub end: i64,
}

/// Administers the cluster; from [`Client::admin`](crate::Client::admin).
pub struct Admin {
    admin: AdminClient<DefaultClientContext>,
    config: KafkaConfig,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("config", &self.config)
            .finish()
    }
}

/// Calls `f` with what is left of `timeout`, and again after a short pause while it fails
/// with a retriable error such as a partition without a leader, until `timeout` is spent.
/// Giving up, it returns the first error (a timeout of the last try would hide the cause).
/// Blocks the thread.
fn retrying<R>(timeout: Duration, mut f: impl FnMut(Duration) -> Result<R>) -> Result<R> {
    let deadline = std::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(20);
    let mut first = None;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let e = match f(left.max(Duration::from_millis(1))) {
            Err(e) if e.is_retriable() => e,
            done => return done,
        };
        if deadline.saturating_duration_since(std::time::Instant::now()) <= pause {
            return Err(first.unwrap_or(e));
        }
        tracing::debug!(error = %e, "retrying");
        first.get_or_insert(e);
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::config("runtime", e.to_string()))?
}

impl Admin {
    /// An administration handle for the cluster `config` points at; no schema registry needed
    /// (with one, [`Client::admin`](crate::Client::admin) is the same).
    ///
    /// ```
    /// let admin = flowodm::admin::Admin::new(flowodm::KafkaConfig::new("127.0.0.1:9092")).unwrap();
    /// # let _ = admin;
    /// ```
    pub fn new(config: KafkaConfig) -> Result<Self> {
        let admin = config.client_config().create().map_err(Error::Kafka)?;
        Ok(Admin { admin, config })
    }

    fn options(timeout: Duration) -> AdminOptions {
        AdminOptions::new()
            .operation_timeout(Some(timeout))
            .request_timeout(Some(timeout))
    }

    /// Creates a topic; an existing one is an error (`TopicAlreadyExists`).
    pub async fn create_topic(&self, spec: &TopicSpec, timeout: Duration) -> Result<()> {
        let mut topic = NewTopic::new(
            &spec.name,
            spec.partitions,
            TopicReplication::Fixed(spec.replication),
        );
        for (k, v) in &spec.config {
            topic = topic.set(k, v);
        }
        for result in self
            .admin
            .create_topics([&topic], &Self::options(timeout))
            .await?
        {
            result.map_err(|(_, code)| Error::Kafka(KafkaError::AdminOp(code)))?;
        }
        Ok(())
    }

    /// Creates a topic unless it exists; `true` if it was created.
    pub async fn ensure_topic(&self, spec: &TopicSpec, timeout: Duration) -> Result<bool> {
        match self.create_topic(spec, timeout).await {
            Ok(()) => Ok(true),
            Err(Error::Kafka(KafkaError::AdminOp(RDKafkaErrorCode::TopicAlreadyExists))) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes a topic and its data.
    pub async fn delete_topic(&self, name: &str, timeout: Duration) -> Result<()> {
        for result in self
            .admin
            .delete_topics(&[name], &Self::options(timeout))
            .await?
        {
            result.map_err(|(_, code)| Error::Kafka(KafkaError::AdminOp(code)))?;
        }
        Ok(())
    }

    /// Every topic's name, internal ones (`__consumer_offsets`, …) excluded, sorted.
    pub async fn list_topics(&self, timeout: Duration) -> Result<Vec<String>> {
        let config = self.config.clone();
        blocking(move || {
            let consumer: BaseConsumer = config.client_config().create()?;
            let md = consumer.fetch_metadata(None, timeout)?;
            let mut names: Vec<String> = md
                .topics()
                .iter()
                .map(|t| t.name().to_string())
                .filter(|n| !n.starts_with("__"))
                .collect();
            names.sort();
            Ok(names)
        })
        .await
    }

    /// A topic's partitions with their leaders and replicas.
    pub async fn describe_topic(&self, name: &str, timeout: Duration) -> Result<TopicInfo> {
        let config = self.config.clone();
        let name = name.to_string();
        blocking(move || {
            let consumer: BaseConsumer = config.client_config().create()?;
            let md = consumer.fetch_metadata(Some(&name), timeout)?;
            let t = md
                .topics()
                .iter()
                .find(|t| t.name() == name)
                .ok_or(Error::Kafka(KafkaError::AdminOp(
                    RDKafkaErrorCode::UnknownTopicOrPartition,
                )))?;
            if let Some(err) = t.error() {
                return Err(Error::Kafka(KafkaError::AdminOp(err.into())));
            }
            let mut partitions: Vec<PartitionInfo> = t
                .partitions()
                .iter()
                .map(|p| PartitionInfo {
                    id: p.id(),
                    leader: p.leader(),
                    replicas: p.replicas().to_vec(),
                    in_sync: p.isr().to_vec(),
                })
                .collect();
            partitions.sort_by_key(|p| p.id);
            Ok(TopicInfo { name, partitions })
        })
        .await
    }

    /// The start and end offsets of every partition of a topic, by partition.
    ///
    /// `timeout` bounds each request. A partition whose leader is not known yet (as right after
    /// the topic was created, or while its leader moves) is asked again within its `timeout`.
    ///
    /// ```no_run
    /// # async fn demo(admin: flowodm::admin::Admin) -> flowodm::Result<()> {
    /// use std::time::Duration;
    /// for p in admin.topic_offsets("orders", Duration::from_secs(5)).await? {
    ///     println!("partition {}: {} messages", p.partition, p.end - p.start);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn topic_offsets(
        &self,
        topic: &str,
        timeout: Duration,
    ) -> Result<Vec<PartitionOffsets>> {
        let info = self.describe_topic(topic, timeout).await?;
        let config = self.config.clone();
        let topic = topic.to_string();
        blocking(move || {
            let consumer: BaseConsumer = config.client_config().create()?;
            info.partitions
                .iter()
                .map(|p| {
                    let (start, end) = retrying(timeout, |left| {
                        Ok(consumer.fetch_watermarks(&topic, p.id, left)?)
                    })?;
                    Ok(PartitionOffsets {
                        partition: p.id,
                        start,
                        end,
                    })
                })
                .collect()
        })
        .await
    }

    /// Every consumer group, sorted by name.
    pub async fn list_groups(&self, timeout: Duration) -> Result<Vec<GroupInfo>> {
        let config = self.config.clone();
        blocking(move || {
            let consumer: BaseConsumer = config.client_config().create()?;
            let list = consumer.fetch_group_list(None, timeout)?;
            let mut groups: Vec<GroupInfo> = list
                .groups()
                .iter()
                .map(|g| GroupInfo {
                    name: g.name().to_string(),
                    state: g.state().to_string(),
                    members: g.members().len(),
                })
                .collect();
            groups.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(groups)
        })
        .await
    }

    /// A group's committed offset, end offset and lag on every partition of the topics it has
    /// committed offsets for (or of `topics`, when given).
    ///
    /// `timeout` bounds each request; a coordinator still loading, or a partition without a
    /// leader, is asked again within it.
    pub async fn group_lag(
        &self,
        group: &str,
        topics: Option<Vec<String>>,
        timeout: Duration,
    ) -> Result<Vec<PartitionLag>> {
        let config = self.config.clone().set("group.id", group);
        blocking(move || {
            let consumer: BaseConsumer = config.client_config().create()?;
            let md = consumer.fetch_metadata(None, timeout)?;
            let mut tpl = TopicPartitionList::new();
            for t in md.topics() {
                let wanted = match &topics {
                    Some(list) => list.iter().any(|n| n == t.name()),
                    None => !t.name().starts_with("__"),
                };
                if wanted {
                    for p in t.partitions() {
                        tpl.add_partition(t.name(), p.id());
                    }
                }
            }
            let committed = retrying(timeout, |left| {
                Ok(consumer.committed_offsets(tpl.clone(), left)?)
            })?;
            let mut out = Vec::new();
            for e in committed.elements() {
                let committed = match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                };
                if committed.is_none() && topics.is_none() {
                    continue; // a topic the group never read
                }
                let (low, high) = retrying(timeout, |left| {
                    Ok(consumer.fetch_watermarks(e.topic(), e.partition(), left)?)
                })?;
                out.push(PartitionLag {
                    topic: e.topic().to_string(),
                    partition: e.partition(),
                    committed,
                    end: high,
                    lag: high - committed.unwrap_or(low),
                });
            }
            out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn no_leader() -> Error {
        Error::Kafka(KafkaError::MetadataFetch(
            RDKafkaErrorCode::NotLeaderForPartition,
        ))
    }

    #[test]
    fn a_partition_without_a_leader_is_asked_again_until_it_has_one() {
        let mut calls = 0;
        let got = retrying(Duration::from_secs(5), |_| {
            calls += 1;
            if calls < 3 {
                Err(no_leader())
            } else {
                Ok(calls)
            }
        });
        assert_eq!(got.unwrap(), 3);
    }

    #[test]
    fn other_errors_and_the_deadline_end_the_retries() {
        let mut calls = 0;
        let got: Result<()> = retrying(Duration::from_secs(5), |_| {
            calls += 1;
            Err(Error::Kafka(KafkaError::MetadataFetch(
                RDKafkaErrorCode::UnknownTopicOrPartition,
            )))
        });
        assert!(got.is_err());
        assert_eq!(calls, 1, "not retriable: asked once");

        // Giving up, the first error is returned, not the last try's timeout.
        let begun = Instant::now();
        let mut calls = 0;
        let got: Result<()> = retrying(Duration::from_millis(200), |_| {
            calls += 1;
            Err(if calls == 1 {
                no_leader()
            } else {
                Error::Kafka(KafkaError::MetadataFetch(
                    RDKafkaErrorCode::OperationTimedOut,
                ))
            })
        });
        assert_eq!(got.unwrap_err().to_string(), no_leader().to_string());
        assert!(calls > 1);
        assert!(begun.elapsed() < Duration::from_millis(400));
    }
}

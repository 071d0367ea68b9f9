//! The dead-letter topic: a failed message's original key, value and headers, with headers
//! that say why it failed, written and acknowledged before its offset moves on.

use super::*;

/// Writes failed messages to a dead-letter topic, waiting for the broker's acknowledgement.
pub(super) struct DeadLetters {
    producer: FutureProducer,
    admin: crate::admin::Admin,
    topic: Option<String>,
    ensured: Mutex<std::collections::HashSet<String>>,
}

impl DeadLetters {
    pub(super) fn new(client: &Client, topic: Option<String>) -> Result<Self> {
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
    pub(super) async fn send_until_written(
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
                    if !pause_unless_stopped(backoff(first, max, attempt), stop).await {
                        return Err(e);
                    }
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub(super) async fn send(&self, f: &Failure<'_>) -> Result<()> {
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

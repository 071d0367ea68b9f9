//! The exactly-once loop: each batch's outputs and its input offsets commit in one Kafka
//! transaction, or neither does.

use super::*;

/// How long a transaction call may wait for the broker.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);

impl<T: Model + Send + Sync> LoopBuilder<T> {
    pub(super) async fn run_transactional<U, H, Fut>(
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
        let consumer = self
            .consumer
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
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
            registry_waits: AtomicU32::new(0),
        };
        let batch_max = consumer.batch_size().max(1);
        let mut failed_batches = 0u32;
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
                            txn.rewind(tp, *offset)?;
                        }
                        let pause = backoff(self.retry_delay, self.max_retry_delay, failed_batches);
                        pause_unless_stopped(pause, &txn.stop).await;
                        failed_batches += 1;
                    }
                }
            }
            if let Some(unreachable) = unreachable {
                // The batch ended before a message whose writer schema could not be fetched:
                // the message is read again after a wait, and its schema asked for again, once.
                txn.wait_for_registry(&unreachable).await;
            }
        }
        Ok(txn.counts.snapshot())
    }
}

/// What [`Txn::collect`] gathered for one transaction.
struct Collected {
    batch: Vec<Item>,
    /// The registry could not be reached for the writer schema of the message after the batch,
    /// to which the consumer was rewound.
    unreachable: Option<Unreachable>,
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
    /// Waits for the registry since a writer schema was last fetched.
    registry_waits: AtomicU32,
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
                            Ok(()) => self.registry_waits.store(0, AtomicOrdering::Relaxed),
                            Err(error) if error.is_retriable() => {
                                let tp = TopicPartition {
                                    topic: slot.topic.clone(),
                                    partition: slot.partition,
                                };
                                self.rewind(&tp, slot.offset)?;
                                let offset = slot.offset;
                                return Ok(Collected {
                                    batch,
                                    unreachable: Some(Unreachable { tp, offset, error }),
                                });
                            }
                            Err(_) => {}
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
    ///
    /// A partition that is not ours any more needs no rewind: its new owner reads from the
    /// committed offset. But if a partition we still hold cannot be rewound, reading on would
    /// commit past the messages skipped, so the loop stops instead.
    fn rewind(&self, tp: &TopicPartition, offset: i64) -> Result<()> {
        let Err(e) = self
            .consumer
            .seek(tp, rdkafka::Offset::Offset(offset), TXN_TIMEOUT)
        else {
            return Ok(());
        };
        if self.consumer.assignment()?.contains(tp) {
            return Err(e);
        }
        tracing::warn!(error = %e, topic = tp.topic, partition = tp.partition, "not rewinding a partition that is no longer assigned");
        Ok(())
    }

    /// Waits before asking an unreachable registry again (see [`wait_for_registry`]).
    async fn wait_for_registry(&self, at: &Unreachable) {
        let waits = self.registry_waits.fetch_add(1, AtomicOrdering::Relaxed);
        let metrics = self.metrics(&at.tp.topic);
        let delays = (self.retry_delay, self.max_retry_delay);
        wait_for_registry(at, waits, &self.counts, &metrics, delays, &self.stop).await;
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
                count_registry_wait(&self.metrics(&raw.topic), &self.counts);
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
                let pause = backoff(self.retry_delay, self.max_retry_delay, attempts - 1);
                if !pause_unless_stopped(pause, &self.stop).await {
                    return Err(TxnFailure::Stop(Error::config(
                        "shutdown",
                        "stopped while a message waited for a retry; its batch is not committed",
                    )));
                }
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

//! One message from its lane to the end: decoded, handled (retried as the policy says),
//! dead-lettered or skipped, and finished so that its offset may be committed.

use super::*;

/// A record decoded from a message's bytes (fetching its writer schema the first time), with
/// its own copy of the metadata: the bytes stay for a retry or the dead-letter topic.
pub(super) async fn decode_raw<T: Model>(
    consumer: &Consumer<T>,
    raw: &RawMessage,
) -> Result<Record<T>> {
    let value = consumer.codec().decode(payload_of(raw)?).await?;
    Ok(record_of(value, raw, schema_id_of(raw)?))
}

/// A message whose writer schema could not be fetched, the registry being unreachable.
pub(super) struct Unreachable {
    pub(super) tp: TopicPartition,
    pub(super) offset: i64,
    pub(super) error: Error,
}

/// After a failed try to fetch the writer schema of the message `at` (`waits` tries in a row
/// before it): counts the wait, warns at the first and every 60th, and pauses with the loop's
/// backoff `delays` (first, longest), at most [`REGISTRY_RECHECK`] and at least
/// [`REGISTRY_FLOOR`]. False when shutdown cut it short.
pub(super) async fn wait_for_registry(
    at: &Unreachable,
    waits: u32,
    counts: &Counts,
    metrics: &LoopMetrics,
    (first, max): (Duration, Duration),
    stop: &CancellationToken,
) -> bool {
    count_registry_wait(metrics, counts);
    if waits % 60 == 0 {
        tracing::warn!(error = %at.error, topic = at.tp.topic, partition = at.tp.partition, offset = at.offset, waits, "cannot fetch the writer schema; waiting for the registry (the message stays uncommitted)");
    }
    let pause = backoff(first, max.min(REGISTRY_RECHECK), waits).max(REGISTRY_FLOOR);
    pause_unless_stopped(pause, stop).await
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
    }
}

/// How the loop calls a handler: with an [`Ack`] that finishes the message, or without one
/// (the message finishes when the call returns `Ok`).
pub(super) trait Handle<T>: Send + Sync + 'static {
    type Fut: Future<Output = std::result::Result<(), HandlerError>> + Send + 'static;
    /// Whether messages finish through their `Ack` rather than when the call returns.
    const ACKS: bool;
    /// Calls the handler; `ack` is `Some` exactly when [`ACKS`](Self::ACKS) is true.
    fn call(&self, record: Record<T>, ack: Option<Ack>) -> Self::Fut;
}

/// A handler of [`run`](LoopBuilder::run).
pub(super) struct Plain<H>(pub(super) H);

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
pub(super) struct WithAck<H>(pub(super) H);

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

pub(super) struct TaskCtx<T, H> {
    pub(super) handler: H,
    pub(super) consumer: Arc<Consumer<T>>,
    pub(super) dlq: Arc<DeadLetters>,
    pub(super) state: Arc<Shared>,
    pub(super) max_retries: u32,
    pub(super) retry_delay: Duration,
    pub(super) max_retry_delay: Duration,
    pub(super) semantics: Semantics,
    pub(super) error_handler: Option<ErrorHandler>,
    pub(super) gate: Gate,
    /// Running or unacknowledged handler calls.
    pub(super) permits: Arc<tokio::sync::Semaphore>,
    pub(super) stop: CancellationToken,
    /// Set once `stop` is cancelled.
    pub(super) stopping: Arc<std::sync::atomic::AtomicBool>,
}

impl<T, H> TaskCtx<T, H> {
    /// Whether the loop is stopping: no new message is started.
    pub(super) fn stopping(&self) -> bool {
        self.stopping.load(AtomicOrdering::Acquire)
    }

    /// Shutdown cut a message short: it stays unfinished, and no other starts (the flag may
    /// not be set yet when the token is).
    fn stopped(&self) -> Outcome {
        self.stopping.store(true, AtomicOrdering::Release);
        Outcome::Open
    }

    /// Returns once `tp` is no longer in the assignment `epoch` (checked every
    /// [`REGISTRY_RECHECK`]); never while it is.
    async fn revoked(&self, tp: &TopicPartition, epoch: u64) {
        while self.state.is_current(tp, epoch) {
            tokio::time::sleep(REGISTRY_RECHECK).await;
        }
    }

    /// Stops the loop.
    pub(super) fn cancel(&self) {
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
    pub(super) epoch: u64,
    pub(super) offsets: Vec<i64>,
    pub(super) processed: u64,
    /// How long the handler calls and dead-letter writes since the last store took: the
    /// clock is read for the handler metric anyway.
    pub(super) busy: Duration,
}

/// The longest a lane waits before asking an unreachable registry again (and checking that
/// its partition is still assigned).
pub(super) const REGISTRY_RECHECK: Duration = Duration::from_secs(1);

/// The shortest wait before the registry is asked again (a zero `retry_delay` must not make
/// the loop ask without pause).
pub(super) const REGISTRY_FLOOR: Duration = Duration::from_millis(10);

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
    pub(super) async fn process_run(
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
            // A fetch that takes long (a registry that does not answer) is also cut short by
            // the partition's revocation, checked every REGISTRY_RECHECK.
            let decoded = match decode_known(&self.consumer, boxed) {
                Some(decoded) => decoded,
                None => tokio::select! {
                    decoded = decode_raw(&self.consumer, boxed) => decoded,
                    _ = self.stop.cancelled() => return Ok(self.stopped()),
                    _ = self.revoked(tp, epoch) => return Ok(Outcome::Open),
                },
            };
            match decoded {
                Ok(record) => break record,
                // The registry is unreachable (or overloaded): the message is not at fault, so it
                // waits, unfinished, until its writer schema can be fetched.
                Err(error) if error.is_retriable() => {
                    // The earlier messages of the run need not wait for the registry.
                    self.settle(tp, settled, metrics);
                    let at = Unreachable {
                        tp: tp.clone(),
                        offset,
                        error,
                    };
                    let delays = (self.retry_delay, self.max_retry_delay);
                    let stats = &self.state.stats;
                    if !wait_for_registry(&at, waits, stats, metrics, delays, &self.stop).await {
                        return Ok(self.stopped());
                    }
                    if !self.state.is_current(tp, epoch) {
                        // Revoked meanwhile: its new owner reads it; the revocation need not
                        // wait for the registry.
                        return Ok(Outcome::Open);
                    }
                    waits += 1;
                }
                Err(error) => {
                    self.fail(&Failure::undecodable(boxed, &error), metrics)
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
                    // Shutdown does not wait out a backoff; the message stays uncommitted.
                    if !pause_unless_stopped(self.backoff(attempts - 1), &self.stop).await {
                        return Ok(self.stopped());
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

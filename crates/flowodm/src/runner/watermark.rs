//! Per-partition progress: which messages are queued, in flight and finished, and the
//! contiguous watermark up to which offsets may be committed (never past an unfinished
//! message), across revocations.

use super::*;

/// Items that must run one after another: a partition, or a key within a partition (by the
/// key's [hash](lane_key)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Lane {
    pub(super) tp: TopicPartition,
    pub(super) key: Option<u64>,
}

/// An item waiting in its lane, with the assignment epoch of its partition when it arrived.
pub(super) struct Queued {
    pub(super) item: Item,
    pub(super) epoch: u64,
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
pub(super) struct Shared {
    in_flight: Mutex<FastMap<TopicPartition, usize>>,
    idle: Condvar,
    /// How many revocations wait on `idle`.
    drain_waiters: AtomicUsize,
    pub(super) stats: Counts,
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
    pub(super) fn received(&self, tp: &TopicPartition, offset: i64) -> u64 {
        let epoch = self.epoch(tp);
        self.received_runs([(tp, epoch, [offset])]);
        epoch
    }

    /// The partition's current epoch.
    pub(super) fn epoch(&self, tp: &TopicPartition) -> u64 {
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
    pub(super) fn revocations(&self) -> u64 {
        self.revocations.load(AtomicOrdering::Acquire)
    }

    /// Messages arrived, fetched in the given epochs of their partitions: each is unfinished
    /// until [`complete`](Self::complete)d. Those of an epoch that has passed are not counted:
    /// their lane drops them.
    pub(super) fn received_runs<'a, O: IntoIterator<Item = i64>>(
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

    pub(super) fn is_current(&self, tp: &TopicPartition, epoch: u64) -> bool {
        self.marks
            .lock()
            .expect("lock")
            .get(tp)
            .is_some_and(|m| m.epoch == epoch)
    }

    /// A message finished; returns the offset up to which everything finished when that moved
    /// (the last finished offset of the contiguous run), to be stored for the commit.
    #[cfg(test)]
    pub(super) fn complete(&self, tp: &TopicPartition, epoch: u64, offset: i64) -> Option<i64> {
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
    pub(super) fn revoke(&self, partitions: &[TopicPartition], grace: Duration) {
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

    pub(super) fn started(&self, tp: &TopicPartition) {
        let mut m = self.in_flight.lock().expect("lock");
        match m.get_mut(tp) {
            Some(n) => *n += 1,
            None => {
                m.insert(tp.clone(), 1);
            }
        }
    }

    pub(super) fn finished(&self, tp: &TopicPartition) {
        let mut m = self.in_flight.lock().expect("lock");
        if let Some(n) = m.get_mut(tp) {
            *n = n.saturating_sub(1);
        }
        // Waking costs a system call per message; only a revocation ever waits.
        if self.drain_waiters.load(AtomicOrdering::Acquire) > 0 {
            self.idle.notify_all();
        }
    }

    pub(super) fn any_in_flight(&self) -> bool {
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

/// Marks the messages at `offsets` finished and stores the offset up to which everything is.
///
/// Storing fails only for a partition this member no longer holds (its revocation timed out):
/// the new owner re-delivers the message, which at-least-once allows; not a reason to stop.
pub(super) fn finish_offsets<T: Model>(
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

/// Runs a closure when dropped.
struct DropGuard<F: FnMut()>(F);

impl<F: FnMut()> Drop for DropGuard<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

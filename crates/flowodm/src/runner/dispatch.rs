//! Dispatch: the poller copies messages out of librdkafka and routes each to its lane (a
//! partition, or a key), whose runs are handled in order by at most `max_concurrent` workers;
//! handled messages' buffers go back to the poller.

use super::*;

/// What one drain of the poller fetched, as one run per lane, not yet handed to the lanes.
pub(super) struct Gathered {
    runs: Vec<(Lane, Vec<Queued>)>,
    /// Emptied run buffers to fill again, rather than allocating one per lane and drain.
    spare: Vec<Vec<Queued>>,
    /// Index of each lane's run in `runs` (the last run is tried first).
    index: FastMap<Lane, usize>,
    /// [`Shared::revocations`] when the gathered items' epochs were read.
    pub(super) revocations: u64,
}

impl Gathered {
    pub(super) fn new(revocations: u64) -> Self {
        Gathered {
            runs: Vec::new(),
            spare: Vec::new(),
            index: FastMap::default(),
            revocations,
        }
    }

    /// Adds an item to its lane's run.
    pub(super) fn add(&mut self, item: Item, order_by: OrderBy, state: &Shared) {
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
    pub(super) fn hand_over<W>(
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
pub(super) const INLINE_BUDGET: Duration = Duration::from_millis(1);

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
pub(super) type Buffers = Vec<Box<RawMessage>>;

/// The lanes and the count of items waiting in them, shared by the poller and the lane workers.
pub(super) struct Dispatch {
    queues: Mutex<Queues>,
    /// Messages' buffers handed back by the lanes for the poller to fill again.
    pub(super) recycled: Mutex<Buffers>,
    pub(super) buffered: AtomicUsize,
    /// Signalled when the buffer drains below the high or to the low water mark.
    pub(super) room: tokio::sync::Notify,
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
pub(super) const RECYCLE_UP_TO: usize = 64 * 1024;

/// How many emptied run buffers are kept to be filled again.
const SPARE_BUFFERS: usize = 64;

/// How many items a worker takes from one lane before it lets a waiting lane go first.
pub(super) const LANE_TURN: usize = 64;

impl Dispatch {
    pub(super) fn new(high_water: usize, low_water: usize, max_workers: usize) -> Self {
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
    pub(super) fn recycle(&self, spent: &mut Buffers) {
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
    pub(super) fn push(&self, lane: &Lane, item: Queued) -> bool {
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
    pub(super) fn pop(&self, lane: &mut Lane, turn: &mut usize) -> Option<Queued> {
        let mut run = Vec::new();
        self.pop_run(lane, turn, &mut run, 1).then(|| run.remove(0))
    }

    /// The next items, at most `max`, for the worker on `lane` (into `run`): from that lane,
    /// or, when it is empty or had its turn, from a waiting lane (`lane` changes). False when
    /// there is nothing: the worker ends.
    pub(super) fn pop_run(
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
pub(super) async fn lane_worker<T, H>(
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
        let tp = &lane.tp;
        ctx.state.started(tp);
        let result = ctx.process_run(tp, &mut run, &mut spent, &metrics).await;
        ctx.state.finished(tp);
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

/// The poller's buffers to copy messages into, taken from the lanes' recycled ones.
#[derive(Default)]
pub(super) struct Slots(pub(super) Buffers);

impl Slots {
    pub(super) fn next(&mut self, dispatch: &Dispatch) -> Box<RawMessage> {
        if self.0.is_empty() {
            let mut pool = dispatch.recycled.lock().expect("recycled");
            let n = pool.len().min(DRAIN_AT_ONCE);
            let from = pool.len() - n;
            self.0.extend(pool.drain(from..));
        }
        self.0.pop().unwrap_or_default()
    }

    pub(super) fn put_back(&mut self, slot: Box<RawMessage>) {
        self.0.push(slot);
    }
}

/// One unit of work.
///
/// A message travels undecoded, boxed (it moves from the poller through its lane's queue to
/// the handler, and moving the box costs less than an allocation): it is decoded where it is
/// handled, which spreads the decoding over the threads that run handlers, and its bytes stay
/// for a retry or the dead-letter topic.
pub(super) enum Item {
    Raw(Box<RawMessage>),
    Tombstone(crate::consumer::Tombstone),
}

impl Item {
    /// The item of a polled message (a tombstone is counted here).
    pub(super) fn of(raw: Box<RawMessage>, counts: &Counts) -> Self {
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

    pub(super) fn partition(&self) -> TopicPartition {
        let (topic, partition) = self.topic_partition();
        TopicPartition {
            topic: topic.to_string(),
            partition,
        }
    }
}

impl Item {
    pub(super) fn offset(&self) -> i64 {
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

//! The loop's counts ([`LoopStats`](super::LoopStats)) and its metrics.

use super::*;

/// The loop's metric handles for one topic, registered once per lane worker.
pub(super) struct LoopMetrics {
    pub(super) topic: String,
    pub(super) processed: metrics::Counter,
    pub(super) failed: metrics::Counter,
    pub(super) retried: metrics::Counter,
    pub(super) dead_lettered: metrics::Counter,
    pub(super) registry_waits: metrics::Counter,
    pub(super) handler_seconds: metrics::Histogram,
}

impl LoopMetrics {
    pub(super) fn new(topic: &str) -> Self {
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
pub(super) struct Counts {
    pub(super) processed: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) retried: AtomicU64,
    pub(super) dead_lettered: AtomicU64,
    pub(super) tombstones: AtomicU64,
    pub(super) registry_waits: AtomicU64,
}

impl Counts {
    pub(super) fn snapshot(&self) -> LoopStats {
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

pub(super) fn count_registry_wait(metrics: &LoopMetrics, counts: &Counts) {
    metrics.registry_waits.increment(1);
    counts.registry_waits.fetch_add(1, AtomicOrdering::Relaxed);
}

pub(super) fn count_dead_letter(metrics: &LoopMetrics, counts: &Counts) {
    metrics.dead_lettered.increment(1);
    metrics.failed.increment(1);
    counts.dead_lettered.fetch_add(1, AtomicOrdering::Relaxed);
    counts.failed.fetch_add(1, AtomicOrdering::Relaxed);
}

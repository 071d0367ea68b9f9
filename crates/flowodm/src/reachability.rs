//! Whether any Kafka broker is reachable.
//!
//! librdkafka reconnects on its own. What it tells the application, through the error callback
//! (and, for consumers, as errors from the poll), is that a connection failed: `_TRANSPORT`,
//! `_RESOLVE` or `_ALL_BROKERS_DOWN`, with identical reports held back for 30 s. It never reports
//! that a broker came back, and one failed connection may mean little (a broker closes idle
//! connections every few minutes; another broker may be fine). So a failure only makes the
//! cluster *suspect*; a client that has heard nothing good for its unreachable timeout asks for
//! the cluster's metadata, which waits (up to a second) for any usable broker: if none answers,
//! the cluster is unreachable. An acknowledged delivery, an answered metadata request or a group
//! assignment ends the suspicion.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::error::Error;

/// How long no broker may be reachable before clients report it, unless configured otherwise.
pub(crate) const DEFAULT_UNREACHABLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The shortest wait for a broker when checking whether one is reachable.
pub(crate) const MIN_PROBE: Duration = Duration::from_millis(100);

/// The longest wait for a broker when checking whether one is reachable.
pub(crate) const MAX_PROBE: Duration = Duration::from_secs(1);

/// Since when the cluster has been suspect; shared by a client's context and its handle.
pub(crate) struct Reachability {
    /// The origin of `suspect_since`.
    epoch: Instant,
    /// Milliseconds from `epoch`, plus one, of the first failure heard since the last good news;
    /// 0 while nothing is suspected. Atomic: the healthy path reads it on every delivery.
    suspect_since: AtomicU64,
    /// librdkafka's words for the last failure.
    detail: Mutex<String>,
    /// Whether a metadata request is checking for a broker (one at a time).
    probing: AtomicBool,
}

impl Default for Reachability {
    fn default() -> Self {
        Reachability {
            epoch: Instant::now(),
            suspect_since: AtomicU64::new(0),
            detail: Mutex::new(String::new()),
            probing: AtomicBool::new(false),
        }
    }
}

/// A check for a reachable broker in progress; see [`Reachability::start_probe`].
pub(crate) struct Probe<'a>(&'a Reachability);

impl Probe<'_> {
    /// Records the answer: `up` if a broker answered.
    pub(crate) fn done(self, up: bool) {
        if up {
            self.0.reachable();
        }
    }
}

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        self.0.probing.store(false, Ordering::Release);
    }
}

impl Reachability {
    /// Takes note of an error librdkafka reported.
    pub(crate) fn report(&self, error: &KafkaError, reason: &str) {
        if !matches!(
            error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::AllBrokersDown
                    | RDKafkaErrorCode::BrokerTransportFailure
                    | RDKafkaErrorCode::Resolve
            )
        ) {
            return;
        }
        if let Ok(mut d) = self.detail.lock() {
            *d = reason.to_string();
        }
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        // Keeps the first failure's time.
        let _ = self
            .suspect_since
            .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire);
    }

    /// A broker answered: nothing is suspected any more.
    pub(crate) fn reachable(&self) {
        if self.suspect_since.load(Ordering::Relaxed) != 0 {
            self.suspect_since.store(0, Ordering::Release);
        }
    }

    /// Since when a connection failure has gone without good news, if one has.
    pub(crate) fn suspect_since(&self) -> Option<Instant> {
        match self.suspect_since.load(Ordering::Acquire) {
            0 => None,
            ms => Some(self.epoch + Duration::from_millis(ms - 1)),
        }
    }

    /// Starts checking for a reachable broker, unless a check is already running.
    pub(crate) fn start_probe(&self) -> Option<Probe<'_>> {
        self.probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
            .then_some(Probe(self))
    }

    /// The error describing the outage, if the cluster is suspect.
    pub(crate) fn error(&self) -> Option<Error> {
        let since = self.suspect_since()?;
        let detail = self.detail.lock().map(|d| d.clone()).unwrap_or_default();
        Some(Error::BrokersUnreachable {
            down_for: since.elapsed(),
            detail,
        })
    }
}

/// Whether a consumer's poll error only says that librdkafka is reconnecting.
pub(crate) fn is_reconnecting(error: &KafkaError) -> bool {
    matches!(
        error,
        KafkaError::MessageConsumption(
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::Resolve
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_start_a_suspicion_and_good_news_ends_it() {
        let r = Reachability::default();
        r.report(&KafkaError::Global(RDKafkaErrorCode::Fail), "other");
        assert!(r.suspect_since().is_none() && r.error().is_none());
        r.report(
            &KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure),
            "connection refused",
        );
        let since = r.suspect_since().expect("suspect");
        // Later failures keep the start, and say what happened last.
        std::thread::sleep(Duration::from_millis(5));
        r.report(
            &KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down",
        );
        assert_eq!(r.suspect_since(), Some(since));
        let err = r.error().expect("error");
        assert!(err.is_retriable());
        assert!(err.to_string().ends_with(": 1/1 brokers are down"), "{err}");

        let probe = r.start_probe().expect("no probe is running");
        assert!(r.start_probe().is_none(), "one probe at a time");
        probe.done(false);
        assert!(r.suspect_since().is_some());
        r.start_probe().expect("the probe ended").done(true);
        assert!(r.suspect_since().is_none() && r.error().is_none());
    }
}

//! Settings profiles: consumer and producer tuning presets for common kinds of service.
//!
//! A consumer in a group must poll regularly: if it does not call poll within
//! `max.poll.interval.ms`, it is considered stuck and its partitions go to another member; if
//! the broker hears no heartbeat for `session.timeout.ms`, the member is considered dead. Long
//! handlers need long intervals, and fast failover needs short timeouts: no single setting fits
//! every service, hence the profiles.
//!
//! | profile | for | session timeout | heartbeat | max poll interval | batch | reset | auto commit |
//! |---|---|---|---|---|---|---|---|
//! | [`LongRunning`](Profile::LongRunning) | ML inference, slow handlers | 300 s | 60 s | 600 s | 100 | earliest | no |
//! | [`Batch`](Profile::Batch) | ETL, aggregation | 45 s | 15 s | 300 s | 500 | earliest | no |
//! | [`RealTime`](Profile::RealTime) | notifications | 10 s | 3 s | 30 s | 10 | latest | yes |
//! | [`HighThroughput`](Profile::HighThroughput) | metrics, logs | 45 s | 15 s | 300 s | 1000 | latest | yes |
//! | [`Reliable`](Profile::Reliable) | payments, orders | 60 s | 20 s | 300 s | 100 | earliest | no |
//!
//! The consumer values are those of FlowODM for Python. Unlike there, each profile's producer
//! settings are applied too, and the batch size is used (librdkafka has no `max.poll.records`;
//! flowodm's batch consumption and loops take it from the profile):
//!
//! | profile | producer settings |
//! |---|---|
//! | `HighThroughput` | `acks=1`, `enable.idempotence=false`, `retries=0`, `batch.size=65536`, `linger.ms=10`, `compression.type=lz4` |
//! | `Reliable` | `acks=all`, `enable.idempotence=true`, `retries=10`, `retry.backoff.ms=500`, `max.in.flight.requests.per.connection=1` |
//! | the others | flowodm's production defaults: `acks=all`, `enable.idempotence=true`, `compression.type=lz4`, `linger.ms=5`, librdkafka's retries and backoff |
//!
//! A member learns that its group is rebalancing at its next heartbeat, so `LongRunning`'s 60 s
//! heartbeat can hold a rebalance (a member joining or leaving) for up to a minute; choose a
//! shorter-heartbeat profile, or override `heartbeat.interval.ms`, where fast rebalances matter.
//!
//! The Python library's base producer settings (`retries=3`, idempotence off) are not used: three
//! retries is fewer than librdkafka's default, and retries without idempotence can reorder or
//! duplicate messages.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A consumer and producer tuning preset; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Profile {
    /// Slow handlers (ML inference, complex processing): long timeouts. The default of consumer
    /// loops, as in FlowODM for Python.
    #[default]
    LongRunning,
    /// ETL and aggregation in batches of 500.
    Batch,
    /// Notifications: fast failover, latest offsets, batches of 10.
    RealTime,
    /// Throughput first: batches of 1000, `acks=1`, lz4.
    HighThroughput,
    /// At-least-once with manual commits and an idempotent, ordered producer.
    Reliable,
}

/// The consumer settings of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerProfile {
    /// `session.timeout.ms`.
    pub session_timeout_ms: u32,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval_ms: u32,
    /// `max.poll.interval.ms`.
    pub max_poll_interval_ms: u32,
    /// How many records a batch holds at most.
    pub max_poll_records: usize,
    /// `auto.offset.reset`: where a group without committed offsets starts.
    pub auto_offset_reset: &'static str,
    /// `enable.auto.commit`.
    pub enable_auto_commit: bool,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 5] = [
        Profile::LongRunning,
        Profile::Batch,
        Profile::RealTime,
        Profile::HighThroughput,
        Profile::Reliable,
    ];

    /// The profile's name, as accepted by [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            Profile::LongRunning => "long-running",
            Profile::Batch => "batch",
            Profile::RealTime => "real-time",
            Profile::HighThroughput => "high-throughput",
            Profile::Reliable => "reliable",
        }
    }

    /// The consumer settings.
    ///
    /// ```
    /// use flowodm::profiles::Profile;
    /// let c = Profile::RealTime.consumer();
    /// assert_eq!((c.session_timeout_ms, c.max_poll_records, c.enable_auto_commit), (10_000, 10, true));
    /// ```
    pub fn consumer(self) -> ConsumerProfile {
        let base = ConsumerProfile {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 15_000,
            max_poll_interval_ms: 300_000,
            max_poll_records: 500,
            auto_offset_reset: "earliest",
            enable_auto_commit: false,
        };
        match self {
            Profile::LongRunning => ConsumerProfile {
                session_timeout_ms: 300_000,
                heartbeat_interval_ms: 60_000,
                max_poll_interval_ms: 600_000,
                max_poll_records: 100,
                ..base
            },
            Profile::Batch => base,
            Profile::RealTime => ConsumerProfile {
                session_timeout_ms: 10_000,
                heartbeat_interval_ms: 3_000,
                max_poll_interval_ms: 30_000,
                max_poll_records: 10,
                auto_offset_reset: "latest",
                enable_auto_commit: true,
            },
            Profile::HighThroughput => ConsumerProfile {
                max_poll_records: 1000,
                auto_offset_reset: "latest",
                enable_auto_commit: true,
                ..base
            },
            Profile::Reliable => ConsumerProfile {
                session_timeout_ms: 60_000,
                heartbeat_interval_ms: 20_000,
                max_poll_records: 100,
                ..base
            },
        }
    }

    /// The librdkafka properties of the consumer settings.
    ///
    /// ```
    /// let props = flowodm::profiles::Profile::Reliable.consumer_properties();
    /// assert!(props.contains(&("session.timeout.ms", "60000".to_string())));
    /// assert!(props.contains(&("enable.auto.commit", "false".to_string())));
    /// ```
    pub fn consumer_properties(self) -> Vec<(&'static str, String)> {
        let c = self.consumer();
        vec![
            ("session.timeout.ms", c.session_timeout_ms.to_string()),
            ("heartbeat.interval.ms", c.heartbeat_interval_ms.to_string()),
            ("max.poll.interval.ms", c.max_poll_interval_ms.to_string()),
            ("auto.offset.reset", c.auto_offset_reset.to_string()),
            ("enable.auto.commit", c.enable_auto_commit.to_string()),
        ]
    }

    /// The librdkafka properties of the producer settings.
    ///
    /// ```
    /// let props = flowodm::profiles::Profile::HighThroughput.producer_properties();
    /// assert!(props.contains(&("acks", "1".to_string())));
    /// assert!(props.contains(&("enable.idempotence", "false".to_string())));
    /// ```
    pub fn producer_properties(self) -> Vec<(&'static str, String)> {
        let props: &[(&'static str, &str)] = match self {
            Profile::HighThroughput => &[
                ("acks", "1"),
                ("enable.idempotence", "false"),
                ("retries", "0"),
                ("batch.size", "65536"),
                ("linger.ms", "10"),
                ("compression.type", "lz4"),
            ],
            Profile::Reliable => &[
                ("acks", "all"),
                ("enable.idempotence", "true"),
                ("retries", "10"),
                ("retry.backoff.ms", "500"),
                ("max.in.flight.requests.per.connection", "1"),
            ],
            Profile::LongRunning | Profile::Batch | Profile::RealTime => PRODUCTION_DEFAULTS,
        };
        props.iter().map(|(k, v)| (*k, v.to_string())).collect()
    }
}

/// flowodm's producer defaults: acknowledged by every in-sync replica, idempotent (no duplicates
/// or reordering on retry), lightly batched and compressed.
pub const PRODUCTION_DEFAULTS: &[(&str, &str)] = &[
    ("acks", "all"),
    ("enable.idempotence", "true"),
    ("compression.type", "lz4"),
    ("linger.ms", "5"),
];

/// flowodm's consumer defaults, applied under every profile (a profile or an explicit property
/// overrides them).
///
/// `fetch.queue.backoff.ms`: when the application reads slower than librdkafka fetches, the
/// prefetch queue fills up and librdkafka pauses fetching for this long (1 s by default). An
/// application that decodes every message is always "slower" than the fetcher, so with the
/// default it sat idle for most of each second: 20 ms keeps the queue fed (about 5× the
/// throughput of a decoding consumer in `docs/BENCHMARKS.md`) at the cost of a timer check per
/// partition while the queue is full.
///
/// ```
/// assert!(flowodm::profiles::CONSUMER_DEFAULTS.contains(&("fetch.queue.backoff.ms", "20")));
/// ```
pub const CONSUMER_DEFAULTS: &[(&str, &str)] = &[("fetch.queue.backoff.ms", "20")];

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = Error;

    /// Parses `long-running`, `batch`, `real-time`, `high-throughput` or `reliable` (also
    /// with `_` and in any case, and the Python class names such as `LongRunningSettings`).
    ///
    /// ```
    /// use flowodm::profiles::Profile;
    /// assert_eq!("HighThroughputSettings".parse::<Profile>().unwrap(), Profile::HighThroughput);
    /// assert_eq!("real_time".parse::<Profile>().unwrap(), Profile::RealTime);
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        let norm: String = s
            .trim_end_matches("Settings")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        Profile::ALL
            .into_iter()
            .find(|p| p.name().replace('-', "") == norm)
            .ok_or_else(|| {
                Error::config(
                    "profile",
                    format!("`{s}` is not one of long-running, batch, real-time, high-throughput, reliable"),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's table, row by row: (session, heartbeat, max poll, records, reset, auto commit).
    #[test]
    fn consumer_values_match_the_reference_exactly() {
        let rows = [
            (
                Profile::LongRunning,
                (300_000, 60_000, 600_000, 100, "earliest", false),
            ),
            (
                Profile::Batch,
                (45_000, 15_000, 300_000, 500, "earliest", false),
            ),
            (
                Profile::RealTime,
                (10_000, 3_000, 30_000, 10, "latest", true),
            ),
            (
                Profile::HighThroughput,
                (45_000, 15_000, 300_000, 1000, "latest", true),
            ),
            (
                Profile::Reliable,
                (60_000, 20_000, 300_000, 100, "earliest", false),
            ),
        ];
        for (profile, (s, h, m, n, reset, auto)) in rows {
            let c = profile.consumer();
            assert_eq!(
                (
                    c.session_timeout_ms,
                    c.heartbeat_interval_ms,
                    c.max_poll_interval_ms
                ),
                (s, h, m),
                "{profile}"
            );
            assert_eq!(
                (
                    c.max_poll_records,
                    c.auto_offset_reset,
                    c.enable_auto_commit
                ),
                (n, reset, auto)
            );
            // librdkafka requires heartbeats well inside the session timeout.
            assert!(
                c.heartbeat_interval_ms * 3 <= c.session_timeout_ms,
                "{profile}"
            );
        }
    }

    #[test]
    fn idempotence_only_with_acks_all() {
        for p in Profile::ALL {
            let props = p.producer_properties();
            let get = |k: &str| {
                props
                    .iter()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| v.as_str())
            };
            if get("enable.idempotence") == Some("true") {
                assert_eq!(
                    get("acks"),
                    Some("all"),
                    "{p}: librdkafka rejects idempotence without acks=all"
                );
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for p in Profile::ALL {
            assert_eq!(p.name().parse::<Profile>().unwrap(), p);
            assert_eq!(p.to_string().to_uppercase().parse::<Profile>().unwrap(), p);
        }
        assert!("fast".parse::<Profile>().is_err());
    }
}

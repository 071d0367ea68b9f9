//! A small fixed-size latency histogram: 64 buckets per power of two (under 1.6 % error), from
//! 1 µs to hours, in 20 KiB, so a long-running consumer can keep one without growing.
//!
//! ```
//! use std::time::Duration;
//! use food_pipeline::latency::Histogram;
//! let mut h = Histogram::default();
//! for ms in 1..=100 {
//!     h.record(Duration::from_millis(ms));
//! }
//! let p50 = h.percentile(50.0).as_secs_f64() * 1e3;
//! assert!((49.0..=51.5).contains(&p50), "{p50}");
//! assert_eq!(h.count(), 100);
//! ```

use std::time::Duration;

const SUB: u64 = 64;
// 40 octaves: up to 2^45 µs, about a year.
const BUCKETS: usize = 64 * 40;

/// Counts of durations (microseconds) in logarithmic buckets.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
            max: 0,
        }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.total)
            .field("p50", &self.percentile(50.0))
            .field("p99", &self.percentile(99.0))
            .field("max", &self.max())
            .finish()
    }
}

fn index(us: u64) -> usize {
    if us < SUB {
        return us as usize;
    }
    let msb = 63 - u64::from(us.leading_zeros()); // >= 6
    let shift = msb - 6;
    let top = us >> shift; // 64..128
    (((shift + 1) * SUB + (top - SUB)) as usize).min(BUCKETS - 1)
}

/// The middle of a bucket.
fn value(index: usize) -> u64 {
    let i = index as u64;
    if i < SUB {
        return i;
    }
    let shift = i / SUB - 1;
    let top = i % SUB + SUB;
    (top << shift) + ((1u64 << shift) >> 1)
}

impl Histogram {
    /// Adds one duration.
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.counts[index(us)] += 1;
        self.total += 1;
        self.max = self.max.max(us);
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// How many durations were recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest duration recorded.
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max)
    }

    /// The duration below which `p` percent of the recorded ones fall (zero when empty).
    pub fn percentile(&self, p: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_micros(value(i).min(self.max));
            }
        }
        self.max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_within_two_percent() {
        for us in [
            0u64,
            1,
            63,
            64,
            65,
            127,
            128,
            1000,
            12_345,
            987_654,
            3_600_000_000,
        ] {
            let v = value(index(us));
            let err = (v as f64 - us as f64).abs() / (us.max(1) as f64);
            assert!(err < 0.02, "{us} -> {v}");
        }
        for i in 1..BUCKETS {
            assert!(value(i) > value(i - 1), "bucket {i}");
        }
    }

    #[test]
    fn percentiles_of_a_known_spread() {
        let mut h = Histogram::default();
        for us in 1..=10_000u64 {
            h.record(Duration::from_micros(us));
        }
        for (p, want) in [(50.0, 5_000.0), (90.0, 9_000.0), (99.0, 9_900.0)] {
            let got = h.percentile(p).as_micros() as f64;
            assert!((got - want).abs() / want < 0.02, "p{p}: {got}");
        }
        assert_eq!(h.percentile(100.0), Duration::from_micros(10_000));
        let mut both = Histogram::default();
        both.merge(&h);
        both.merge(&h);
        assert_eq!(both.count(), 20_000);
        assert_eq!(Histogram::default().percentile(99.0), Duration::ZERO);
    }
}

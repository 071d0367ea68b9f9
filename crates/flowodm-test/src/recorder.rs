//! A `metrics` recorder for tests: it counts what flowodm records, per metric name and `topic`
//! label, so that tests on unique topics can run side by side in one test binary.
//!
//! ```no_run
//! let recorded = flowodm_test::recorder::recorded();
//! // ... run a loop on `topic` ...
//! assert_eq!(recorded.counter("flowodm_loop_processed_total", "my-topic"), 1);
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

type Values = Mutex<HashMap<(String, String), u64>>;

/// Counter totals and histogram sample counts, by (metric, topic).
#[derive(Debug, Default)]
pub struct Recorded {
    counters: Values,
    samples: Values,
}

impl Recorded {
    /// The total of the counter `name` labelled with `topic` (0 if never recorded).
    pub fn counter(&self, name: &str, topic: &str) -> u64 {
        Self::get(&self.counters, name, topic)
    }

    /// How many samples the histogram `name` labelled with `topic` took.
    pub fn samples(&self, name: &str, topic: &str) -> u64 {
        Self::get(&self.samples, name, topic)
    }

    fn get(values: &Values, name: &str, topic: &str) -> u64 {
        let v = values.lock().unwrap();
        v.get(&(name.to_string(), topic.to_string()))
            .copied()
            .unwrap_or(0)
    }
}

struct Handle {
    id: (String, String),
    recorded: Arc<Recorded>,
}

impl Handle {
    fn add(&self, values: &Values, value: u64) {
        *values.lock().unwrap().entry(self.id.clone()).or_default() += value;
    }
}

impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        self.add(&self.recorded.counters, value);
    }
    fn absolute(&self, value: u64) {
        self.recorded
            .counters
            .lock()
            .unwrap()
            .insert(self.id.clone(), value);
    }
}

impl HistogramFn for Handle {
    fn record(&self, _value: f64) {
        self.add(&self.recorded.samples, 1);
    }
}

struct Rec(Arc<Recorded>);

impl Rec {
    fn handle(&self, key: &Key) -> Arc<Handle> {
        let topic = key
            .labels()
            .find(|l| l.key() == "topic")
            .map(|l| l.value().to_string())
            .unwrap_or_default();
        Arc::new(Handle {
            id: (key.name().to_string(), topic),
            recorded: self.0.clone(),
        })
    }
}

impl Recorder for Rec {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.handle(key))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.handle(key))
    }
}

/// The process-wide recorder, installed on first use (a test binary has one).
pub fn recorded() -> &'static Arc<Recorded> {
    static RECORDED: OnceLock<Arc<Recorded>> = OnceLock::new();
    RECORDED.get_or_init(|| {
        let r = Arc::new(Recorded::default());
        metrics::set_global_recorder(Rec(r.clone())).expect("one recorder per test binary");
        r
    })
}

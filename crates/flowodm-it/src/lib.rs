//! The model the process-level tests and their workers share.

use flowodm::Model;

/// A unit of work; `seq` is unique across a run.
#[derive(Model, Debug, Clone, PartialEq)]
#[flowodm(topic = "it-jobs", key = "key", namespace = "dev.flowodm.it")]
pub struct Job {
    /// Spreads jobs over partitions.
    pub key: String,
    /// The job's number.
    pub seq: i64,
}

//! What a handler's failure is, and what the loop does about it: retry with backoff, skip,
//! dead-letter or stop.

use super::*;

/// A handler's failure: retry it, or not.
#[derive(Debug)]
pub struct HandlerError {
    pub(super) retryable: bool,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl HandlerError {
    /// A failure that may pass (a database briefly away): retried.
    pub fn retryable(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        HandlerError {
            retryable: true,
            source: e.into(),
        }
    }

    /// A failure that will repeat (invalid data): straight to the dead-letter topic.
    pub fn fatal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        HandlerError {
            retryable: false,
            source: e.into(),
        }
    }

    /// Whether it is retried.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source.fmt(f)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(e: E) -> Self {
        HandlerError::retryable(e)
    }
}

/// What to do with a failed message, decided by an error handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Run the handler again (after the backoff), regardless of the retry count.
    Retry,
    /// Pass over it: the offset moves on, nothing is written anywhere (counted as failed).
    Skip,
    /// Send it to the dead-letter topic.
    DeadLetter,
    /// Stop the loop without committing the message.
    Stop,
}

/// A failure as the error handler sees it.
#[derive(Debug)]
#[non_exhaustive]
pub struct Failure<'a> {
    /// The message.
    pub raw: &'a RawMessage,
    /// How many times the handler ran (0 when the message could not be decoded).
    pub attempts: u32,
    /// Whether the error says a retry may help.
    pub retryable: bool,
    /// The error's kind (`handler`, `deserialization`, …).
    pub kind: &'a str,
    /// The error's text.
    pub message: String,
}

impl<'a> Failure<'a> {
    /// A message that could not be decoded (`source` says why): the handler never ran.
    pub(super) fn undecodable(raw: &'a RawMessage, source: &'a Error) -> Self {
        Failure {
            raw,
            attempts: 0,
            retryable: false,
            kind: source.kind().as_str(),
            message: source.to_string(),
        }
    }
}

/// What happens to a failed handler call: the error handler decides; without one, a retryable
/// failure is retried up to `max_retries` times and then, like any other, dead-lettered.
pub(super) fn decide(
    handler: Option<&ErrorHandler>,
    failure: &Failure<'_>,
    max_retries: u32,
) -> Decision {
    match handler {
        Some(h) => h(failure),
        None if failure.retryable && failure.attempts <= max_retries => Decision::Retry,
        None => Decision::DeadLetter,
    }
}

/// The delay before retry number `attempt` (from 0): doubling from `first` up to `max`, with
/// jitter between half and all of it.
/// Sleeps for `pause` unless `stop` is cancelled first; false when it was.
pub(super) async fn pause_unless_stopped(pause: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(pause) => true,
        _ = stop.cancelled() => false,
    }
}

pub(super) fn backoff(first: Duration, max: Duration, attempt: u32) -> Duration {
    let base = first.saturating_mul(1u32 << attempt.min(16)).min(max);
    let jitter: f64 = rand::random::<f64>() * 0.5 + 0.5;
    base.mul_f64(jitter)
}

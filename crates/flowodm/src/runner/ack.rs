//! Acknowledgements: a message handled by `run_with_ack` finishes when its [`Ack`] says so.

use super::*;

/// The acknowledgement of a message handled by [`run_with_ack`](LoopBuilder::run_with_ack):
/// [`done`](Ack::done) marks it finished, so its offset may be committed once every earlier
/// message of its partition is finished too.
pub struct Ack {
    on_end: Option<Box<dyn FnOnce(AckEnd) + Send + Sync>>,
    pub(super) valid: Arc<std::sync::atomic::AtomicBool>,
}

/// How an acknowledgement ended.
pub(super) enum AckEnd {
    Done,
    DeadLetter(String),
    /// Dropped without a verdict, or of an attempt whose handler failed.
    Void,
}

impl Ack {
    pub(super) fn new(on_end: Box<dyn FnOnce(AckEnd) + Send + Sync>) -> Self {
        Ack {
            on_end: Some(on_end),
            valid: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }

    fn end(mut self, how: AckEnd) {
        let how = if self.valid.load(AtomicOrdering::Acquire) {
            how
        } else {
            AckEnd::Void
        };
        if let Some(end) = self.on_end.take() {
            end(how);
        }
    }

    /// The message is finished (durably handled).
    pub fn done(self) {
        self.end(AckEnd::Done)
    }

    /// The message cannot be handled (the database rejects its row, say): it goes to the
    /// dead-letter topic with its original key, bytes and headers and `reason` as
    /// `flowodm.error.message` (kind `handler`), and is finished once the write is acknowledged.
    /// May be called from any thread.
    pub fn dead_letter(self, reason: impl Into<String>) {
        self.end(AckEnd::DeadLetter(reason.into()))
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if let Some(end) = self.on_end.take() {
            if self.valid.load(AtomicOrdering::Acquire) {
                tracing::warn!(
                    "an Ack was dropped without done(): its message stays uncommitted and will be \
                     handled again after a restart or rebalance"
                );
            }
            end(AckEnd::Void);
        }
    }
}

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ack").finish_non_exhaustive()
    }
}

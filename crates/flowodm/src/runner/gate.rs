//! What a message passes before its handler runs: the rate limit and the circuit breaker.

use super::*;

/// What a handler call waits for first: the rate limit and the circuit breaker.
pub(super) struct Gate {
    interval: Option<Duration>,
    next_slot: Mutex<tokio::time::Instant>,
    breaker: Option<(u32, Duration)>,
    circuit: Mutex<Circuit>,
    changed: tokio::sync::Notify,
}

#[derive(Default)]
struct Circuit {
    consecutive: u32,
    /// Open until this instant; `None` when closed.
    open_until: Option<tokio::time::Instant>,
    /// A probe call is running after the cooldown.
    probing: bool,
}

impl Gate {
    pub(super) fn new(interval: Option<Duration>, breaker: Option<(u32, Duration)>) -> Self {
        Gate {
            interval,
            next_slot: Mutex::new(tokio::time::Instant::now()),
            breaker,
            circuit: Mutex::default(),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Whether [`pass`](Self::pass) can make a call wait.
    pub(super) fn may_wait(&self) -> bool {
        self.interval.is_some() || self.breaker.is_some()
    }

    /// Waits until a handler call may start: `None` if `stop` came first, else whether the
    /// call is the probe of a half-open circuit.
    pub(super) async fn pass(&self, stop: &CancellationToken) -> Option<bool> {
        let mut probe = false;
        if self.breaker.is_some() {
            loop {
                let changed = self.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                let wait_until = {
                    let mut c = self.circuit.lock().expect("circuit");
                    match c.open_until {
                        None => break,
                        Some(t) if !c.probing && tokio::time::Instant::now() >= t => {
                            c.probing = true;
                            probe = true;
                            break;
                        }
                        Some(t) if !c.probing => Some(t),
                        Some(_) => None,
                    }
                };
                let wake = async {
                    match wait_until {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = stop.cancelled() => return None,
                    _ = &mut changed => {}
                    _ = wake => {}
                }
            }
        }
        if let Some(interval) = self.interval {
            let at = {
                let mut next = self.next_slot.lock().expect("rate limit");
                let at = (*next).max(tokio::time::Instant::now());
                *next = at + interval;
                at
            };
            tokio::select! {
                _ = stop.cancelled() => {
                    if probe {
                        self.circuit.lock().expect("circuit").probing = false;
                    }
                    return None;
                }
                _ = tokio::time::sleep_until(at) => {}
            }
        }
        Some(probe)
    }

    /// The outcome of a call: a retryable failure counts towards opening the circuit.
    pub(super) fn record(&self, ok: bool, was_probe: bool, topic: &str) {
        let Some((failures, cooldown)) = self.breaker else {
            return;
        };
        let mut c = self.circuit.lock().expect("circuit");
        if was_probe {
            c.probing = false;
        }
        if ok {
            c.consecutive = 0;
            if c.open_until.take().is_some() {
                tracing::info!(topic, "circuit closed: the handler succeeds again");
                self.changed.notify_waiters();
            }
            return;
        }
        c.consecutive += 1;
        if was_probe || (c.open_until.is_none() && c.consecutive >= failures) {
            c.open_until = Some(tokio::time::Instant::now() + cooldown);
            metrics::counter!("flowodm_loop_circuit_opened_total", "topic" => topic.to_string())
                .increment(1);
            tracing::warn!(
                topic,
                failures = c.consecutive,
                ?cooldown,
                "circuit open: pausing the handler"
            );
            self.changed.notify_waiters();
        }
    }
}

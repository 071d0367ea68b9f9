//! A one-line progress report on stderr for long runs, only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Redraws `verb N messages (R/s)` at most four times a second.
#[derive(Debug)]
pub struct Progress {
    verb: &'static str,
    enabled: bool,
    started: Instant,
    last: Instant,
    shown: bool,
    /// How long a run goes before progress shows (`FLOWODM_PROGRESS_AFTER_MS`, default 1 s).
    after: Duration,
}

impl Progress {
    /// A progress line; silent unless stderr is a terminal.
    pub fn new(verb: &'static str) -> Self {
        let now = Instant::now();
        Progress {
            verb,
            enabled: std::io::stderr().is_terminal(),
            started: now,
            last: now,
            shown: false,
            after: std::env::var("FLOWODM_PROGRESS_AFTER_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .map_or(Duration::from_secs(1), Duration::from_millis),
        }
    }

    /// Reports the count so far (cheap when nothing is drawn).
    pub fn update(&mut self, count: u64, failed: u64) {
        if !self.enabled || (self.shown && self.last.elapsed() < Duration::from_millis(250)) {
            return;
        }
        // Short runs finish before the first redraw and print nothing.
        if self.started.elapsed() < self.after {
            return;
        }
        self.last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let failed = if failed > 0 {
            format!(", {failed} failed")
        } else {
            String::new()
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{} {count} messages ({:.0}/s){failed}",
            self.verb,
            count as f64 / secs
        );
        let _ = err.flush();
        self.shown = true;
    }

    /// Clears the line before the final output.
    pub fn finish(&mut self) {
        if self.shown {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
            self.shown = false;
        }
    }
}

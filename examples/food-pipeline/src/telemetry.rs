//! Logging for the pipeline's services: `LOG_LEVEL` (a `tracing` filter such as `info` or
//! `food_pipeline=debug,warn`; default `info`) and `LOG_FORMAT` (`json`, the default, one JSON
//! object per line with the current span's fields, so every line about an order carries its
//! `order_id`; or `text`). Logs go to standard error.
//!
//! The lines written once per order have targets of their own, so a busy service can keep its
//! other `info` lines without them: `food_pipeline::producer::deliveries` (each acknowledged
//! delivery) and `food_pipeline::consumer::orders` (each order stored), as in
//! `LOG_LEVEL=info,food_pipeline::producer::deliveries=warn,food_pipeline::consumer::orders=warn`.

use tracing_subscriber::EnvFilter;

/// The log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

impl LogFormat {
    /// `LOG_FORMAT`: `json` (default) or `text`.
    pub fn from_env() -> anyhow::Result<Self> {
        match std::env::var("LOG_FORMAT").as_deref().map(str::trim) {
            Err(_) | Ok("") | Ok("json") | Ok("JSON") => Ok(LogFormat::Json),
            Ok("text") | Ok("TEXT") => Ok(LogFormat::Text),
            Ok(other) => anyhow::bail!("LOG_FORMAT must be json or text, not {other:?}"),
        }
    }
}

/// Installs the global subscriber from `LOG_LEVEL` and `LOG_FORMAT`.
pub fn init_logging() -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_env("LOG_LEVEL").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = match LogFormat::from_env()? {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}

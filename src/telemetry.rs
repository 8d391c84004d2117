//! Structured logs through `tracing`: JSON lines for log pipelines or human-readable text.
//!
//! Logs go to standard error so that standard output stays free for the stdout sink.
//! Secrets never reach a log: config secrets are [`secrecy`] types whose `Debug`
//! prints `[REDACTED]`, and request headers are never logged.

use crate::config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `log.level`.
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // A second init (tests, embedders) keeps the first subscriber.
    let _ = match config.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            // A request's lines carry its span (`"span":{"generation":N,...}`): which
            // configuration generation answered it.
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

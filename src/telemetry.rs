//! Logging: human-readable text by default, JSON lines for collectors. Logs go
//! to stderr so that commands such as `errand token` keep stdout for their
//! output.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::{LogArgs, LogFormat};

/// Installs the global subscriber, filtering with `--log` or else
/// `default_filter`. An invalid filter falls back to `info` with a warning
/// rather than silencing the service.
pub fn init(args: &LogArgs, default_filter: &str) {
    let wanted = args.log.as_deref().unwrap_or(default_filter);
    let (filter, bad_filter) = match EnvFilter::try_new(wanted) {
        Ok(filter) => (filter, None),
        Err(err) => (EnvFilter::new("info"), Some(err)),
    };
    let registry = tracing_subscriber::registry().with(filter);
    let result = match args.log_format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    if result.is_ok()
        && let Some(err) = bad_filter
    {
        tracing::warn!(filter = %wanted, error = %err, "invalid ERRAND_LOG filter; using `info`");
    }
}

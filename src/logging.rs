//! Logging: `tracing` events to stderr, as text or JSON lines, filtered RUST_LOG-style.

use std::io::IsTerminal;

use anyhow::Context;
use tracing_subscriber::EnvFilter;

/// The shape of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The filter used when neither `--log-filter` nor `RUST_LOG` is given.
const DEFAULT_FILTER: &str = "info";

/// Install the global subscriber. `filter` (from `--log-filter`) wins over `RUST_LOG`.
pub fn init(format: LogFormat, filter: Option<&str>) -> anyhow::Result<()> {
    let filter = match filter {
        Some(directives) => EnvFilter::try_new(directives)
            .with_context(|| format!("invalid --log-filter \"{directives}\""))?,
        None => match std::env::var("RUST_LOG") {
            Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
                .with_context(|| format!("invalid RUST_LOG \"{directives}\""))?,
            _ => EnvFilter::new(DEFAULT_FILTER),
        },
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|error| anyhow::anyhow!("cannot install the logger: {error}"))
}

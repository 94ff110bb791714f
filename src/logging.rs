//! Log output: `tracing` events as logfmt or JSON lines on stderr.
//!
//! Events carry structured fields (`target_kind`, `target_id`, `endpoint`, `error_code`, ...)
//! rather than interpolated text, so both formats stay machine-readable. Dependencies log at
//! `warn` and above only: hyper and reqwest are chatty at `debug` and would drown our own
//! events when a user turns the level down to debug the exporter.

use clap::ValueEnum;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// `--log.level` values, as in Prometheus exporters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Every request and poll.
    Debug,
    /// Start-up, config and state changes.
    Info,
    /// Failures that the exporter works around.
    Warn,
    /// Failures that need a person.
    Error,
}

impl LogLevel {
    fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// `--log.format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `key=value` pairs, one event per line.
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber.
pub fn init(level: LogLevel, format: LogFormat) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(format!(
        "warn,meta_messaging_exporter={level}",
        level = level.as_str()
    ))?;
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Logfmt => registry
            .with(
                tracing_logfmt::builder()
                    .layer()
                    .with_writer(std::io::stderr),
            )
            .try_init()?,
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr),
            )
            .try_init()?,
    }
    Ok(())
}

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

/// Log lines captured by tests (unit and API): what the exporter logs, checked for words and
/// for secrets.
pub mod capture {
    use std::sync::{Arc, Mutex, PoisonError};

    /// What this thread logged while the guards of [`Log::capture`] live.
    #[derive(Clone, Default)]
    pub struct Log(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Log {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Log {
        /// Captures this thread's events until the guards drop. The second one works around
        /// tracing's interest cache: with one registered dispatcher, a callsite first hit on
        /// another test's thread (which has none) is cached as never enabled.
        pub fn capture(&self) -> (tracing::subscriber::DefaultGuard, tracing::Dispatch) {
            let writer = self.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish();
            let second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
            (tracing::subscriber::set_default(subscriber), second)
        }

        /// Everything captured so far.
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner))
                .into_owned()
        }
    }
}

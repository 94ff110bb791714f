//! How a backfill reports as it goes: an `indicatif` bar on a terminal, log lines otherwise
//! (a CI job or a container log has no use for redrawn lines). Both go to stderr, so
//! `--output=-` keeps stdout for the history.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::target::TargetKey;

/// The bar, or nothing when stderr is not a terminal.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar when stderr is a terminal, log lines when not.
    pub fn for_stderr() -> Progress {
        Progress {
            bar: std::io::stderr().is_terminal().then(|| {
                let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
                if let Ok(style) = ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {pos}/{len} targets  {msg}",
                ) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar
            }),
        }
    }

    /// Log lines only, whatever stderr is (tests).
    pub fn lines() -> Progress {
        Progress { bar: None }
    }

    pub(super) fn start(&self, targets: usize) {
        match &self.bar {
            Some(bar) => bar.set_length(targets as u64),
            None => tracing::info!(targets, "backfill started"),
        }
    }

    /// A line that must be seen whatever the log level: the estimate before the reads.
    pub(super) fn estimate(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => {
                use std::io::Write as _;
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }

    pub(super) fn target_started(&self, key: &TargetKey) {
        if let Some(bar) = &self.bar {
            bar.set_message(key.to_string());
        }
    }

    pub(super) fn target_done(&self, key: &TargetKey, error: Option<&str>) {
        match (&self.bar, error) {
            (Some(bar), None) => bar.inc(1),
            (Some(bar), Some(error)) => {
                bar.println(format!(
                    "{key}: failed: {}",
                    crate::printable::printable(error)
                ));
                bar.inc(1);
            }
            (None, None) => tracing::info!(target = %key, "backfilled"),
            (None, Some(error)) => tracing::warn!(target = %key, %error, "backfill failed"),
        }
    }

    pub(super) fn paused(&self, scope: &str, remaining: Duration) {
        let message = format!(
            "waiting {} for the {scope} rate-limit pause",
            humantime::format_duration(Duration::from_secs(remaining.as_secs()))
        );
        match &self.bar {
            Some(bar) => bar.set_message(message),
            None => tracing::info!(scope, remaining_seconds = remaining.as_secs(), "{message}"),
        }
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

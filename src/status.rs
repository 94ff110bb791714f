//! Per-target poll state: what the landing page shows and what the per-target series say.
//!
//! Each poll loop records its outcome here; [`StatusBoard::families`] turns one target's
//! state into the exporter's per-target series (`..._target_up`, last success time, interval,
//! disabled reason, dropped metrics), which the poll loop publishes into the snapshot store's
//! status slot so they scale with the number of targets like the data does.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::exposition::{Family, Sample};
use crate::self_metrics::PREFIX;
use crate::target::TargetKey;

/// Where a target stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not polled yet (waiting for its place in the spread-out start).
    Pending,
    /// The last poll succeeded.
    Ok,
    /// The last poll failed; it will be polled again.
    Failing,
    /// Stopped until the config changes (invalid token, missing permission, nothing valid to ask).
    Disabled,
}

impl State {
    /// Label and display text.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Ok => "ok",
            State::Failing => "failing",
            State::Disabled => "disabled",
        }
    }
}

/// The last error a target saw, safe to show (tokens are redacted by the client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    /// Failure class (`invalid_token`, `transient`, ...).
    pub class: &'static str,
    /// Graph error code, when the API sent one.
    pub code: Option<i64>,
    /// Message.
    pub message: String,
    /// When it happened, unix seconds.
    pub at: i64,
}

/// Everything known about one target.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetStatus {
    /// Poll interval.
    pub interval: Duration,
    /// Current state.
    pub state: State,
    /// Why it is disabled, when it is.
    pub disabled_reason: Option<&'static str>,
    /// Start of the last finished poll, unix seconds.
    pub last_poll: Option<i64>,
    /// End of the last successful poll, unix seconds.
    pub last_success: Option<i64>,
    /// When the next poll is due, unix seconds.
    pub next_poll: Option<i64>,
    /// Duration of the last poll.
    pub last_duration: Option<Duration>,
    /// The last failure, kept after recovery for the landing page.
    pub last_error: Option<LastError>,
    /// Metrics or fields the API rejected as invalid, no longer requested.
    pub dropped: Vec<String>,
    /// How much later than one interval the next poll goes (rate-limit pause or slowdown).
    pub backoff: Duration,
}

impl TargetStatus {
    /// A target not polled yet.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: State::Pending,
            disabled_reason: None,
            last_poll: None,
            last_success: None,
            next_poll: None,
            last_duration: None,
            last_error: None,
            dropped: Vec::new(),
            backoff: Duration::ZERO,
        }
    }
}

/// All targets' status, shared by the poll loops and the HTTP handlers.
#[derive(Default)]
pub struct StatusBoard {
    targets: Mutex<BTreeMap<TargetKey, TargetStatus>>,
}

impl StatusBoard {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<TargetKey, TargetStatus>> {
        self.targets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts tracking a target (or resets it after a config change).
    pub fn register(&self, key: &TargetKey, interval: Duration) {
        self.lock().insert(key.clone(), TargetStatus::new(interval));
    }

    /// Stops tracking a target.
    pub fn remove(&self, key: &TargetKey) {
        self.lock().remove(key);
    }

    /// Applies `change` to a target's status, if tracked.
    pub fn update(&self, key: &TargetKey, change: impl FnOnce(&mut TargetStatus)) {
        if let Some(status) = self.lock().get_mut(key) {
            change(status);
        }
    }

    /// A copy of every target's status, sorted by kind and id.
    pub fn snapshot(&self) -> Vec<(TargetKey, TargetStatus)> {
        self.lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// One target's status.
    pub fn get(&self, key: &TargetKey) -> Option<TargetStatus> {
        self.lock().get(key).cloned()
    }

    /// The per-target series for one target.
    pub fn families(&self, key: &TargetKey) -> Vec<Family> {
        let Some(status) = self.get(key) else {
            return Vec::new();
        };
        let labels = vec![
            ("kind".to_owned(), key.kind.as_str().to_owned()),
            ("target_id".to_owned(), key.id.clone()),
        ];
        let gauge = |suffix: &str, help: &str, samples: Vec<Sample>| Family {
            name: format!("{PREFIX}_{suffix}"),
            help: help.to_owned(),
            samples,
        };
        let one = |value: f64| {
            vec![Sample {
                labels: labels.clone(),
                value,
            }]
        };
        let mut families = vec![gauge(
            "target_interval_seconds",
            "Configured poll interval of the target.",
            one(status.interval.as_secs_f64()),
        )];
        if status.state != State::Pending {
            let up = if status.state == State::Ok { 1.0 } else { 0.0 };
            families.push(gauge(
                "target_up",
                "1 if the target's last poll of the Graph API succeeded, 0 if it failed or the target is disabled.",
                one(up),
            ));
        }
        if let Some(at) = status.last_success {
            families.push(gauge(
                "target_last_success_timestamp_seconds",
                "When the target was last polled successfully (unix seconds).",
                one(at as f64),
            ));
        }
        if let Some(duration) = status.last_duration {
            families.push(gauge(
                "target_last_poll_duration_seconds",
                "How long the target's last poll took, retries included.",
                one(duration.as_secs_f64()),
            ));
        }
        if status.state != State::Pending {
            families.push(gauge(
                "target_backoff_seconds",
                "How much later than one interval the target's next poll goes, because the rate limiter paused its scope (throttle, call budget) or stretched its interval (high usage); 0 when on schedule.",
                one(status.backoff.as_secs_f64()),
            ));
        }
        if let Some(reason) = status.disabled_reason {
            let mut with_reason = labels.clone();
            with_reason.push(("reason".to_owned(), reason.to_owned()));
            families.push(gauge(
                "target_disabled",
                "1 while the target is not polled until the config changes, with the reason (invalid_token, permission_denied, object_unavailable, no_valid_metrics).",
                vec![Sample { labels: with_reason, value: 1.0 }],
            ));
        }
        if !status.dropped.is_empty() {
            let samples = status
                .dropped
                .iter()
                .map(|item| {
                    let mut with_item = labels.clone();
                    with_item.push(("item".to_owned(), item.clone()));
                    Sample {
                        labels: with_item,
                        value: 1.0,
                    }
                })
                .collect();
            families.push(gauge(
                "target_dropped_item",
                "1 for each metric or field the Graph API rejected as invalid (code 100, e.g. a retired metric); it is no longer requested for this target until the config changes.",
                samples,
            ));
        }
        families
    }
}

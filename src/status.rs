//! Per-target poll state: what the landing page shows and what the per-target series say.
//!
//! The board holds one [`TargetStatus`] per configured target, tagged with the generation of
//! the poll task that owns it. Only [`crate::outcome`] writes to it, through
//! [`StatusBoard::update_current`], which runs the change under the board's lock and only for
//! the current generation: a task that was replaced or removed by a reload cannot write over
//! its successor, even if its poll finishes after the reload. [`families`] turns one target's
//! state into the exporter's per-target series (`..._target_up`, last success time, interval,
//! disabled reason, dropped metrics), which are published into the snapshot store's status
//! slot so they scale with the number of targets like the data does.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::config::Origin;
use crate::convert::whatsapp::health::Entity as HealthEntity;
use crate::exposition::{Family, Sample};
use crate::poller::{Unavailable, UnavailableScope};
use crate::self_metrics::PREFIX;
use crate::target::TargetKey;

/// Where a target stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not polled yet (waiting for its place in the spread-out start).
    Pending,
    /// The last poll succeeded.
    Ok,
    /// Some reads of the last poll failed and keep their previous values; the others
    /// published.
    Partial,
    /// The last poll failed; it will be polled again.
    Failing,
    /// Stopped until its credentials or settings change (invalid token, missing permission,
    /// object gone).
    Disabled,
}

impl State {
    /// Label and display text.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Ok => "ok",
            State::Partial => "partial",
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

/// A read of the last poll that failed, safe to show (tokens are redacted by the client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadFailure {
    /// Which read, for people (`page_insights #2`, `phone_numbers`).
    pub read: String,
    /// Failure class.
    pub class: &'static str,
    /// Graph error code, when the API sent one.
    pub code: Option<i64>,
    /// Meta's message, or the exporter's.
    pub message: String,
}

/// Everything known about one target.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetStatus {
    /// Poll interval.
    pub interval: Duration,
    /// Listed in the config or found by discovery.
    pub origin: Origin,
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
    /// The reads of the last poll that failed (empty after a poll whose reads all succeeded).
    pub failed_reads: Vec<ReadFailure>,
    /// What the last poll's answers held beyond the series limits, one line per metric cut
    /// (`polling.max_series_per_target`, `polling.max_series_per_metric`).
    pub series_cut: Vec<String>,
    /// Metrics or fields the API rejected as invalid, no longer requested.
    pub dropped: Vec<String>,
    /// How much later than one interval the next poll goes (rate-limit pause or slowdown).
    pub backoff: Duration,
    /// Why there is backoff (see [`crate::outcome::NextPoll`]).
    pub backoff_reason: Option<&'static str>,
    /// What the target's account does not offer (WhatsApp template analytics, costs).
    pub unavailable: Vec<Unavailable>,
    /// The WhatsApp health entities it exports that cannot send freely or carry Meta's words.
    pub health: Vec<HealthEntity>,
    /// The object's name (a Page's, a campaign's, an account's), once known.
    pub name: Option<String>,
    /// Which poll task owns this entry; writes from any other are ignored.
    pub generation: u64,
    /// Value-problem reasons already logged for this target, so a response shape that
    /// recurs on every poll is logged once (the counter still counts each).
    pub logged_problems: BTreeSet<&'static str>,
}

impl TargetStatus {
    /// A target not polled yet.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            origin: Origin::Static,
            state: State::Pending,
            disabled_reason: None,
            last_poll: None,
            last_success: None,
            next_poll: None,
            last_duration: None,
            last_error: None,
            failed_reads: Vec::new(),
            series_cut: Vec::new(),
            dropped: Vec::new(),
            backoff: Duration::ZERO,
            backoff_reason: None,
            unavailable: Vec::new(),
            health: Vec::new(),
            name: None,
            generation: 0,
            logged_problems: BTreeSet::new(),
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

    /// Hands a target to the poll task of `generation`, with its interval.
    ///
    /// A target seen for the first time starts as pending. One that was already tracked (its
    /// settings changed on a reload) keeps its state, times and last error until the new task
    /// reports: its old series stay true until the first poll with the new settings.
    pub fn register(&self, key: &TargetKey, generation: u64, interval: Duration, origin: Origin) {
        let mut targets = self.lock();
        let status = targets
            .entry(key.clone())
            .or_insert_with(|| TargetStatus::new(interval));
        status.interval = interval;
        status.origin = origin;
        status.generation = generation;
        status.logged_problems.clear();
    }

    /// Stops tracking a target, then runs `also` under the same lock, so nothing the target's
    /// task reports can land between the two.
    pub fn remove_with(&self, key: &TargetKey, also: impl FnOnce()) {
        let mut targets = self.lock();
        targets.remove(key);
        also();
    }

    /// Applies `change` to a target's status if the task of `generation` still owns it,
    /// holding the board's lock for the duration (so `change` may publish the result
    /// elsewhere atomically with the status update). `None` when the target is gone or owned
    /// by a newer task.
    pub fn update_current<R>(
        &self,
        key: &TargetKey,
        generation: u64,
        change: impl FnOnce(&mut TargetStatus) -> R,
    ) -> Option<R> {
        let mut targets = self.lock();
        let status = targets.get_mut(key)?;
        (status.generation == generation).then(|| change(status))
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
}

/// The per-target series for one target.
pub fn families(key: &TargetKey, status: &TargetStatus) -> Vec<Family> {
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
        let up = if matches!(status.state, State::Ok | State::Partial) {
            1.0
        } else {
            0.0
        };
        families.push(gauge(
            "target_up",
            "1 if the target's last poll of the Graph API succeeded, wholly or partly (see target_read_failing), 0 if it failed or the target is disabled.",
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
    if !status.failed_reads.is_empty() {
        let samples = status
            .failed_reads
            .iter()
            .map(|failure| {
                let mut with_read = labels.clone();
                with_read.push(("read".to_owned(), failure.read.clone()));
                with_read.push(("error_class".to_owned(), failure.class.to_owned()));
                Sample {
                    labels: with_read,
                    value: 1.0,
                }
            })
            .collect();
        families.push(gauge(
            "target_read_failing",
            "1 for each read of the target's last poll that failed (a Page metric group, a name, a WhatsApp account's node read, template list, template analytics or phone-number list), by read and error class; its series keep their previous values until they go stale, while the poll's other reads publish.",
            samples,
        ));
    }
    let refused: Vec<Sample> = status
        .unavailable
        .iter()
        .filter(|state| state.scope == UnavailableScope::Read)
        .map(|state| {
            let mut with_read = labels.clone();
            with_read.push(("read".to_owned(), state.feature.to_owned()));
            with_read.push(("reason".to_owned(), state.reason.to_owned()));
            Sample {
                labels: with_read,
                value: 1.0,
            }
        })
        .collect();
    if !refused.is_empty() {
        families.push(gauge(
            "target_read_disabled",
            "1 for each read of the target that Meta refused for good (reason permission_denied, invalid_token or object_unavailable) while its other reads answer: it is left out of the polls, and asked for again after a day or a credentials or config change.",
            refused,
        ));
    }
    let features: Vec<&Unavailable> = status
        .unavailable
        .iter()
        .filter(|state| state.scope == UnavailableScope::Feature)
        .collect();
    if !features.is_empty() {
        let samples = features
            .into_iter()
            .map(|state| Sample {
                labels: vec![
                    ("waba_id".to_owned(), key.id.clone()),
                    ("feature".to_owned(), state.feature.to_owned()),
                    ("reason".to_owned(), state.reason.to_owned()),
                ],
                value: 1.0,
            })
            .collect();
        families.push(gauge(
            "whatsapp_feature_unavailable",
            "1 for each part of a WhatsApp Business Account's data Meta does not offer it: template_analytics (reason not_enabled: not confirmed on the account, which the exporter never does itself; region_unavailable: not offered in the EU, UK or Japan) or cost (partner_billed: billed through a solution partner). A state, not a failure: the rest exports, and it is asked about again after a day or a config change.",
            samples,
        ));
    }
    if let Some(reason) = status.disabled_reason {
        let mut with_reason = labels.clone();
        with_reason.push(("reason".to_owned(), reason.to_owned()));
        families.push(gauge(
            "target_disabled",
            "1 while the target is not polled until its credentials or settings change, with the reason (invalid_token, permission_denied, object_unavailable).",
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
            "1 for each metric or field the Graph API rejected as invalid (code 100, e.g. a retired metric); it is left out of this target's requests until polling.retry_dropped_after has passed.",
            samples,
        ));
    }
    families
}

//! One poll's result, applied in one place.
//!
//! A poll task decides *when* to poll and *what* to ask; everything a finished poll changes
//! is carried by one [`PollOutcome`] and applied by [`Applier::apply`]: the data slot of the
//! snapshot store (replaced on success, held through a rate-limit pause on failure), the
//! status board, the status slot, the exporter's counters and the log lines. The applier is
//! also where targets enter ([`Applier::register`]) and leave ([`Applier::remove`]), so the
//! generation check that keeps a replaced or removed task from publishing lives next to the
//! writes it guards.
//!
//! Rate-limit usage is not part of the outcome: the Graph API client feeds every response's
//! usage headers to the limiter as they arrive, because a throttle must hold back the next
//! request at once, not at the end of the poll. The outcome carries the limiter's verdict
//! instead (when the next poll is due, and how much of that is backoff).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::Clock;
use crate::config::Origin;
use crate::convert::Converted;
use crate::exposition::encode;
use crate::graph::GraphError;
use crate::poller::{PollError, Unavailable};
use crate::self_metrics::ExporterMetrics;
use crate::status::{self, LastError, State, StatusBoard, TargetStatus};
use crate::store::{Slot, SnapshotStore};
use crate::target::TargetKey;

/// When a target polls next, as the scheduler decided after a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextPoll {
    /// At `due`; `backoff` of the wait is the rate limiter's (pause or stretch), and the data
    /// is held until `hold_data_until` when a pause pushed the poll past its staleness.
    At {
        /// When the next poll starts.
        due: Instant,
        /// How much later than one interval that is.
        backoff: Duration,
        /// Why, when there is backoff: `paused` (a throttle or a spent budget), `usage` (high
        /// usage stretched the interval) or `whatsapp_budget` (spacing the account's calls
        /// under `rate_limits.whatsapp_calls_per_hour`).
        backoff_reason: Option<&'static str>,
        /// Serve the last values at least until then, when the limiter paused the target's
        /// scope: Meta asks callers to keep serving while waiting out a throttle.
        hold_data_until: Option<Instant>,
    },
    /// Not until the target's credentials or settings change.
    Disabled,
}

/// Everything one finished poll of one target changes.
#[derive(Debug)]
pub struct PollOutcome {
    /// Which target.
    pub key: TargetKey,
    /// The poll task that produced it; an outcome of a task that no longer owns the target
    /// is discarded.
    pub generation: u64,
    /// When the poll started, unix seconds.
    pub started_unix: i64,
    /// How long it took, retries included.
    pub duration: Duration,
    /// The converted families, or why there are none.
    pub result: Result<Converted, PollError>,
    /// Every metric or field currently left out of the target's requests.
    pub dropped: Vec<String>,
    /// What the target's account does not offer, left out of its requests.
    pub unavailable: Vec<Unavailable>,
    /// How long values stay served after this poll's success.
    pub stale_after: Duration,
    /// When the next poll comes.
    pub next: NextPoll,
}

/// Applies poll outcomes and target lifecycle changes to the store and the status board.
#[derive(Clone)]
pub struct Applier {
    store: Arc<SnapshotStore>,
    status: Arc<StatusBoard>,
    metrics: ExporterMetrics,
    clock: Arc<dyn Clock>,
}

impl Applier {
    /// An applier writing into `store` and `status`.
    pub fn new(
        store: Arc<SnapshotStore>,
        status: Arc<StatusBoard>,
        metrics: ExporterMetrics,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            status,
            metrics,
            clock,
        }
    }

    /// The exporter's own metrics.
    pub fn metrics(&self) -> &ExporterMetrics {
        &self.metrics
    }

    /// The wall clock outcomes are stamped with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Hands `key` to the task of `generation`, first polling at `first_poll`. A target that
    /// was already known keeps its data and status until the new task's first outcome.
    pub fn register(
        &self,
        key: &TargetKey,
        generation: u64,
        interval: Duration,
        origin: Origin,
        first_poll: Instant,
    ) {
        self.status.register(key, generation, interval, origin);
        self.rescheduled(key, generation, Some(first_poll));
    }

    /// Shows when the task of `generation` polls `key` next (`None`: not until its
    /// credentials or settings change).
    pub fn rescheduled(&self, key: &TargetKey, generation: u64, due: Option<Instant>) {
        let due_unix = due.map(|due| self.unix_at(due));
        self.status.update_current(key, generation, |status| {
            status.next_poll = due_unix;
            self.publish_status(key, status);
        });
    }

    /// Removes every series and the status of `key` at once. Whatever its task still had in
    /// flight is discarded when it arrives, since no generation owns the target any more.
    pub fn remove(&self, key: &TargetKey) {
        self.status
            .remove_with(key, || self.store.remove_target(key));
    }

    /// Applies one poll's outcome. Returns `false` when it was discarded because its task no
    /// longer owns the target.
    pub fn apply(&self, outcome: PollOutcome) -> bool {
        let PollOutcome {
            key,
            generation,
            started_unix,
            duration,
            result,
            dropped,
            unavailable,
            stale_after,
            next,
        } = outcome;
        let kind = key.kind.as_str();
        let disabled_reason = result.as_ref().err().and_then(PollError::disabled_reason);
        let finished_unix = self.clock.now_unix();
        let (due_unix, backoff, backoff_reason, hold_data_until) = match next {
            NextPoll::At {
                due,
                backoff,
                backoff_reason,
                hold_data_until,
            } => (
                Some(self.unix_at(due)),
                backoff,
                backoff_reason,
                hold_data_until,
            ),
            NextPoll::Disabled => (None, Duration::ZERO, None, None),
        };
        // Encoding is the costly part of a publish: do it before taking any lock.
        let (encoded, problems) = match result {
            Ok(converted) => (Ok(encode(converted.families)), converted.problems),
            Err(error) => (Err(error), Vec::new()),
        };

        let applied = self.status.update_current(&key, generation, |status| {
            let newly_dropped = dropped
                .iter()
                .filter(|item| !status.dropped.contains(item))
                .count();
            status.dropped.clone_from(&dropped);
            status.unavailable = unavailable;
            status.last_poll = Some(started_unix);
            status.last_duration = Some(duration);
            status.next_poll = due_unix;
            status.backoff = backoff;
            status.backoff_reason = backoff_reason;
            let unlogged: Vec<&'static str> = problems
                .iter()
                .map(|problem| problem.reason)
                .filter(|reason| status.logged_problems.insert(reason))
                .collect();
            let failure = match encoded {
                Ok(families) => {
                    status.state = State::Ok;
                    status.disabled_reason = None;
                    status.last_success = Some(finished_unix);
                    let expires_at = Instant::now() + stale_after;
                    let expires_at =
                        hold_data_until.map_or(expires_at, |hold| hold.max(expires_at));
                    self.store
                        .publish(&key, Slot::Data, families, Some(expires_at));
                    None
                }
                Err(error) => {
                    status.state = if disabled_reason.is_some() {
                        State::Disabled
                    } else {
                        State::Failing
                    };
                    status.disabled_reason = disabled_reason;
                    status.last_error = Some(LastError {
                        class: error.class(),
                        code: api_code(&error),
                        message: error.to_string(),
                        at: finished_unix,
                    });
                    if let Some(hold) = hold_data_until {
                        self.store.extend(&key, Slot::Data, hold);
                    }
                    Some(error)
                }
            };
            self.publish_status(&key, status);
            (newly_dropped, unlogged, failure)
        });
        let Some((newly_dropped, unlogged, failure)) = applied else {
            tracing::debug!(target_kind = kind, target_id = %key.id, "discarded the outcome of a poll whose target was removed or replaced");
            return false;
        };

        self.metrics
            .poll_duration
            .with_label_values(&[kind])
            .observe(duration.as_secs_f64());
        if newly_dropped > 0 {
            self.metrics
                .dropped_items
                .with_label_values(&[kind])
                .inc_by(newly_dropped as u64);
        }
        match &failure {
            None => {
                self.metrics
                    .polls
                    .with_label_values(&[kind, "success"])
                    .inc();
                for problem in &problems {
                    self.metrics
                        .value_errors
                        .with_label_values(&[kind, problem.reason])
                        .inc();
                    if unlogged.contains(&problem.reason) {
                        tracing::warn!(target_kind = kind, target_id = %key.id, reason = problem.reason, detail = %problem.detail, "skipped or corrected a value in the Graph API response; counted in value_errors_total, logged once per target");
                    }
                }
                tracing::debug!(target_kind = kind, target_id = %key.id, "poll succeeded");
            }
            Some(error) => {
                self.metrics
                    .polls
                    .with_label_values(&[kind, error.class()])
                    .inc();
                log_failure(&key, error, disabled_reason);
            }
        }
        true
    }

    fn publish_status(&self, key: &TargetKey, status: &TargetStatus) {
        self.store.publish(
            key,
            Slot::Status,
            encode(status::families(key, status)),
            None,
        );
    }

    /// The wall-clock time of a monotonic instant, for the status page.
    fn unix_at(&self, at: Instant) -> i64 {
        let now = Instant::now();
        let now_unix = self.clock.now_unix();
        if at >= now {
            now_unix + (at - now).as_secs() as i64
        } else {
            now_unix - (now - at).as_secs() as i64
        }
    }
}

fn api_code(error: &PollError) -> Option<i64> {
    error
        .graph_error()
        .and_then(GraphError::api_error)
        .map(|api| api.code)
}

fn log_failure(key: &TargetKey, error: &PollError, disabled_reason: Option<&'static str>) {
    let kind = key.kind.as_str();
    let code = api_code(error);
    if let Some(reason) = disabled_reason {
        tracing::error!(target_kind = kind, target_id = %key.id, reason, error = %error, "target disabled until its credentials or settings change");
    } else if !matches!(error.graph_error(), Some(GraphError::Paused { .. })) {
        // A pause the limiter imposed is not news: the throttle that caused it was logged.
        tracing::warn!(target_kind = kind, target_id = %key.id, error_class = error.class(), error_code = ?code, error = %error, "poll failed; keeping the last values until they go stale");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::convert::ValueProblem;
    use crate::exposition::{Family, Sample};
    use crate::target::TargetKind;

    fn page() -> TargetKey {
        TargetKey {
            kind: TargetKind::Page,
            id: "P".into(),
        }
    }

    fn applier() -> (Applier, Arc<SnapshotStore>, Arc<StatusBoard>) {
        let store = Arc::new(SnapshotStore::new());
        let status = Arc::new(StatusBoard::default());
        let applier = Applier::new(
            store.clone(),
            status.clone(),
            ExporterMetrics::new().expect("metrics"),
            Arc::new(FixedClock::new(1_790_000_000)),
        );
        (applier, store, status)
    }

    fn success(generation: u64, value: f64) -> PollOutcome {
        PollOutcome {
            key: page(),
            generation,
            started_unix: 1_790_000_000,
            duration: Duration::from_millis(20),
            result: Ok(Converted {
                families: vec![Family {
                    name: "m".into(),
                    help: "h".into(),
                    samples: vec![Sample {
                        labels: vec![("page_id".into(), "P".into())],
                        value,
                    }],
                }],
                problems: vec![ValueProblem {
                    reason: "bucket_misaligned",
                    detail: "test".into(),
                }],
            }),
            dropped: Vec::new(),
            unavailable: Vec::new(),
            stale_after: Duration::from_secs(60),
            next: NextPoll::At {
                due: Instant::now() + Duration::from_secs(20),
                backoff: Duration::ZERO,
                backoff_reason: None,
                hold_data_until: None,
            },
        }
    }

    fn body(store: &SnapshotStore) -> String {
        String::from_utf8(store.render(Instant::now()).to_vec()).expect("utf-8")
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_current_generation_publishes() {
        let (applier, store, status) = applier();
        applier.register(
            &page(),
            1,
            Duration::from_secs(20),
            Origin::Static,
            Instant::now(),
        );
        assert!(applier.apply(success(1, 1.0)));
        assert!(body(&store).contains("m{page_id=\"P\"} 1\n"));

        // A reload replaced the task: the old one's late outcome is discarded, and the data
        // it published stays until the new task's first outcome replaces it.
        applier.register(
            &page(),
            2,
            Duration::from_secs(20),
            Origin::Static,
            Instant::now(),
        );
        assert!(!applier.apply(success(1, 5.0)));
        assert!(body(&store).contains("m{page_id=\"P\"} 1\n"));
        assert!(applier.apply(success(2, 2.0)));
        assert!(body(&store).contains("m{page_id=\"P\"} 2\n"));

        applier.remove(&page());
        assert!(!applier.apply(success(2, 3.0)));
        assert_eq!(body(&store), "");
        assert!(status.get(&page()).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn every_value_problem_is_counted_and_the_status_series_follow_the_outcome() {
        let (applier, store, status) = applier();
        applier.register(
            &page(),
            1,
            Duration::from_secs(20),
            Origin::Static,
            Instant::now(),
        );
        applier.apply(success(1, 1.0));
        applier.apply(success(1, 1.0));
        let own = String::from_utf8(applier.metrics().encode().expect("encode")).expect("utf-8");
        assert!(
            own.contains("meta_messaging_exporter_value_errors_total{kind=\"page\",reason=\"bucket_misaligned\"} 2"),
            "{own}"
        );
        let logged = status.get(&page()).expect("tracked").logged_problems;
        assert_eq!(
            logged.into_iter().collect::<Vec<_>>(),
            vec!["bucket_misaligned"]
        );
        assert!(body(&store)
            .contains("meta_messaging_exporter_target_up{kind=\"page\",target_id=\"P\"} 1\n"));
    }
}

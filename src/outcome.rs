//! One poll's result, applied in one place.
//!
//! A poll task decides *when* to poll and *what* to ask; everything a finished poll changes
//! is carried by one [`PollOutcome`] and applied by [`Applier::apply`]: one data slot of the
//! snapshot store per read (replaced when the read succeeded, kept when it failed or answered
//! with no data, and held through a rate-limit pause), the status board, the status slot, the
//! exporter's counters and the log lines. A poll whose reads all succeeded is `success`, one
//! with some failed reads is `partial` (its failed reads keep their previous values until they
//! go stale), one whose reads all failed is failed. A read that answered with no data
//! ([`crate::convert::Converted::no_data()`], a campaign's empty `data`) succeeded: it is no
//! error and counts nowhere as one, but its slot is neither replaced nor refreshed, so what
//! it held goes stale `stale_after` past the last answer that had data, like the values of a
//! failing read, and nothing turns 0 on the way. The applier is
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
use crate::convert::whatsapp::health::Entity as HealthEntity;
use crate::convert::ValueProblem;
use crate::exposition::{encode, EncodedFamily};
use crate::graph::GraphError;
use crate::poller::read::{self, Polled, Read};
use crate::poller::{PollError, Unavailable};
use crate::self_metrics::ExporterMetrics;
use crate::status::{self, LastError, ReadFailure, State, StatusBoard, TargetStatus};
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
    /// How long it took from holding its poll slot, retries included.
    pub duration: Duration,
    /// What each read returned, or why the poll made no read.
    pub result: Result<Polled, PollError>,
    /// Every metric or field currently left out of the target's requests.
    pub dropped: Vec<String>,
    /// What the target's account does not offer, left out of its requests.
    pub unavailable: Vec<Unavailable>,
    /// The WhatsApp health entities the target exports that cannot send freely, with Meta's
    /// words, for the status page.
    pub health: Vec<HealthEntity>,
    /// The object's name, when known.
    pub name: Option<String>,
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

    /// Records how long a poll of `key` waited for its poll slot (`poll_queue_seconds`).
    pub fn queued(&self, key: &TargetKey, wait: Duration) {
        self.metrics
            .poll_queue
            .with_label_values(&[key.kind.as_str()])
            .observe(wait.as_secs_f64());
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
            health,
            name,
            stale_after,
            next,
        } = outcome;
        let kind = key.kind.as_str();
        let disabled_reason = read::disabled_reason(&result);
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
        let mut reads = Reads::encode(result);
        let verdict = reads.verdict();

        let applied = self.status.update_current(&key, generation, |status| {
            let newly_dropped = dropped
                .iter()
                .filter(|item| !status.dropped.contains(item))
                .count();
            status.dropped.clone_from(&dropped);
            status.unavailable = unavailable;
            status.health = health;
            if name.is_some() {
                status.name = name;
            }
            status.last_poll = Some(started_unix);
            status.last_duration = Some(duration);
            status.next_poll = due_unix;
            status.backoff = backoff;
            status.backoff_reason = backoff_reason;
            let unlogged: Vec<&'static str> = reads
                .problems()
                .map(|problem| problem.reason)
                .filter(|reason| status.logged_problems.insert(reason))
                .collect();
            status.series_cut = reads
                .problems()
                .filter(|problem| problem.reason == "series_limit")
                .map(|problem| problem.detail.clone())
                .collect();
            status.failed_reads = reads
                .failures()
                .map(|(read, error)| ReadFailure {
                    read: read.to_string(),
                    class: error.class(),
                    code: api_code(error),
                    message: error.to_string(),
                })
                .collect();
            match &verdict {
                Verdict::Success | Verdict::Partial => {
                    status.state = if matches!(verdict, Verdict::Success) {
                        State::Ok
                    } else {
                        State::Partial
                    };
                    status.disabled_reason = None;
                    status.last_success = Some(finished_unix);
                }
                Verdict::Failed(_) => {
                    status.state = if disabled_reason.is_some() {
                        State::Disabled
                    } else {
                        State::Failing
                    };
                    status.disabled_reason = disabled_reason;
                }
            }
            if let Some((read, error)) = reads.first_failure() {
                status.last_error = Some(LastError {
                    class: error.class(),
                    code: api_code(error),
                    message: match read {
                        Some(read) if !matches!(verdict, Verdict::Failed(_)) || reads.several() => {
                            format!("{read}: {error}")
                        }
                        _ => error.to_string(),
                    },
                    at: finished_unix,
                });
            }
            let failed = matches!(verdict, Verdict::Failed(_));
            reads.publish(&self.store, &key, failed, stale_after, hold_data_until);
            self.publish_status(&key, status);
            (newly_dropped, unlogged)
        });
        let Some((newly_dropped, unlogged)) = applied else {
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
        for problem in reads.problems() {
            self.metrics
                .value_errors
                .with_label_values(&[kind, problem.reason])
                .inc();
            if unlogged.contains(&problem.reason) {
                tracing::warn!(target_kind = kind, target_id = %key.id, reason = problem.reason, detail = %problem.detail, "skipped or corrected a value in the Graph API response; counted in value_errors_total, logged once per target");
            }
        }
        for (read, error) in reads.failures() {
            self.metrics
                .read_errors
                .with_label_values(&[kind, read.as_str(), error.class()])
                .inc();
        }
        let result = match &verdict {
            Verdict::Success => "success",
            Verdict::Partial => "partial",
            Verdict::Failed(error) => error.class(),
        };
        self.metrics.polls.with_label_values(&[kind, result]).inc();
        for read in reads.without_data() {
            // Not a failure, so not a warning: Meta answers so for a range without deliveries
            // every day, and the series going stale is the visible effect.
            tracing::debug!(target_kind = kind, target_id = %key.id, read = %read, "the read answered with no data; its last values are kept, not refreshed, until they go stale");
        }
        match &verdict {
            Verdict::Success => {
                tracing::debug!(target_kind = kind, target_id = %key.id, "poll succeeded");
            }
            Verdict::Partial => {
                for (read, error) in reads.failures() {
                    log_read_failure(&key, read, error);
                }
            }
            Verdict::Failed(error) => log_failure(&key, error, disabled_reason),
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

/// How a poll went, as `polls_total` counts it.
enum Verdict {
    /// Every read succeeded.
    Success,
    /// Some reads failed; they keep their previous values.
    Partial,
    /// Every read failed, or the poll made none; this is the error it shows.
    Failed(PollError),
}

/// One read, encoded and ready to publish.
struct EncodedRead {
    read: Read,
    /// Asked for in this poll ([`crate::poller::ReadOutcome::fresh`]).
    fresh: bool,
    /// Answered without data ([`crate::convert::Converted::no_data()`]): its slot is kept as is.
    no_data: bool,
    result: Result<(Vec<EncodedFamily>, Vec<ValueProblem>), PollError>,
}

/// The reads of one poll, encoded before any lock is taken.
struct Reads {
    /// The poll as a whole failed before any read (every metric dropped, say).
    whole: Option<PollError>,
    reads: Vec<EncodedRead>,
}

impl Reads {
    fn encode(result: Result<Polled, PollError>) -> Self {
        match result {
            Err(error) => Self {
                whole: Some(error),
                reads: Vec::new(),
            },
            Ok(polled) => Self {
                whole: None,
                reads: polled
                    .reads
                    .into_iter()
                    .map(|read| EncodedRead {
                        read: read.read,
                        fresh: read.fresh,
                        no_data: read
                            .result
                            .as_ref()
                            .is_ok_and(|converted| converted.no_data),
                        result: read
                            .result
                            .map(|converted| (encode(converted.families), converted.problems)),
                    })
                    .collect(),
            },
        }
    }

    fn verdict(&self) -> Verdict {
        if let Some(error) = &self.whole {
            return Verdict::Failed(error.clone());
        }
        let Some((_, first)) = self.failures().next() else {
            return Verdict::Success;
        };
        if self.failures().count() < self.reads.iter().filter(|read| read.fresh).count() {
            return Verdict::Partial;
        }
        // Every read failed: the disabling error if there is one (it is the one that says
        // what to do), else the first.
        let error = self
            .failures()
            .find(|(read, error)| read.is_primary() && error.disabled_reason().is_some())
            .map_or(first, |(_, error)| error);
        Verdict::Failed(error.clone())
    }

    fn several(&self) -> bool {
        self.reads.len() > 1
    }

    fn failures(&self) -> impl Iterator<Item = (Read, &PollError)> {
        self.reads
            .iter()
            .filter_map(|read| read.result.as_ref().err().map(|error| (read.read, error)))
    }

    /// The error the status page shows: the poll's own, else the first failed read's.
    fn first_failure(&self) -> Option<(Option<Read>, &PollError)> {
        if let Some(error) = &self.whole {
            return Some((None, error));
        }
        self.failures()
            .next()
            .map(|(read, error)| (Some(read), error))
    }

    /// The reads asked for in this poll that answered with no data.
    fn without_data(&self) -> impl Iterator<Item = Read> + '_ {
        self.reads
            .iter()
            .filter(|read| read.fresh && read.no_data)
            .map(|read| read.read)
    }

    fn problems(&self) -> impl Iterator<Item = &ValueProblem> {
        self.reads
            .iter()
            .filter_map(|read| read.result.as_ref().ok())
            .flat_map(|(_, problems)| problems)
    }

    /// Replaces the data slot of every read that succeeded with data, keeps those of the reads
    /// that failed or answered with no data (without refreshing them, so they still expire
    /// `stale_after` past their last publish), removes those of reads the poll no longer
    /// makes, and holds them all through a rate-limit pause. After a failed poll only the
    /// pause's hold applies: what earlier polls read is not confirmed by it, so reads served
    /// from them publish nothing and every value ages towards its staleness.
    fn publish(
        &mut self,
        store: &SnapshotStore,
        key: &TargetKey,
        failed: bool,
        stale_after: Duration,
        hold_data_until: Option<Instant>,
    ) {
        if failed {
            if let Some(hold) = hold_data_until {
                store.extend_data(key, hold);
            }
            return;
        }
        let expires_at = Instant::now() + stale_after;
        let expires_at = hold_data_until.map_or(expires_at, |hold| hold.max(expires_at));
        let made: Vec<Slot> = self
            .reads
            .iter()
            .map(|read| Slot::Data(read.read.slot_number()))
            .collect();
        store.retain_data(key, &made);
        for read in self.reads.iter_mut().filter(|read| !read.no_data) {
            if let Ok((families, _)) = &mut read.result {
                let slot = Slot::Data(read.read.slot_number());
                store.publish(key, slot, std::mem::take(families), Some(expires_at));
            }
        }
        if let Some(hold) = hold_data_until {
            store.extend_data(key, hold);
        }
    }
}

fn api_code(error: &PollError) -> Option<i64> {
    error
        .graph_error()
        .and_then(GraphError::api_error)
        .map(|api| api.code)
}

fn log_read_failure(key: &TargetKey, read: Read, error: &PollError) {
    if matches!(error.graph_error(), Some(GraphError::Paused { .. })) {
        return;
    }
    let kind = key.kind.as_str();
    tracing::warn!(target_kind = kind, target_id = %key.id, read = %read, error_class = error.class(), error_code = ?api_code(error), error = %error, "a read of the poll failed; it keeps its last values until they go stale, the other reads published");
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
    use crate::convert::Converted;
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
            result: Ok(Polled::single(
                Read::Insights,
                Ok(Converted {
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
                    ..Converted::default()
                }),
            )),
            dropped: Vec::new(),
            unavailable: Vec::new(),
            health: Vec::new(),
            name: None,
            stale_after: Duration::from_secs(60),
            next: NextPoll::At {
                due: Instant::now() + Duration::from_secs(20),
                backoff: Duration::ZERO,
                backoff_reason: None,
                hold_data_until: None,
            },
        }
    }

    /// Hands the Page to the task of `generation`, due now.
    fn register(applier: &Applier, generation: u64) {
        applier.register(
            &page(),
            generation,
            Duration::from_secs(20),
            Origin::Static,
            Instant::now(),
        );
    }

    fn body(store: &SnapshotStore) -> String {
        String::from_utf8(store.render(Instant::now()).to_vec()).expect("utf-8")
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_current_generation_publishes() {
        let (applier, store, status) = applier();
        register(&applier, 1);
        assert!(applier.apply(success(1, 1.0)));
        assert!(body(&store).contains("m{page_id=\"P\"} 1\n"));

        // A reload replaced the task: the old one's late outcome is discarded, and the data
        // it published stays until the new task's first outcome replaces it.
        register(&applier, 2);
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
        register(&applier, 1);
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

    #[tokio::test(start_paused = true)]
    async fn an_outcome_applies_while_a_render_is_copying_the_body() {
        let (applier, store, _) = applier();
        register(&applier, 1);
        assert!(applier.apply(success(1, 1.0)));
        let mut applied_during_render = false;
        let rendered = store.render_with(Instant::now(), || {
            // On this thread, inside the render: a render holding the store's lock (or the
            // status board's) would leave this apply waiting forever.
            applied_during_render = applier.apply(success(1, 2.0));
        });
        assert!(applied_during_render);
        assert!(String::from_utf8_lossy(&rendered).contains("m{page_id=\"P\"} 1\n"));
        assert!(body(&store).contains("m{page_id=\"P\"} 2\n"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_partial_poll_publishes_its_good_reads_and_keeps_the_failed_reads_values() {
        let (applier, store, status) = applier();
        register(&applier, 1);
        let family = |name: &str, value: f64| Converted {
            families: vec![Family {
                name: name.into(),
                help: "h".into(),
                samples: vec![Sample {
                    labels: vec![("page_id".into(), "P".into())],
                    value,
                }],
            }],
            ..Converted::default()
        };
        let outcome = |polled: Polled| PollOutcome {
            result: Ok(polled),
            ..success(1, 0.0)
        };
        let mut both = Polled::default();
        both.push(Read::PageInsights(0), Ok(family("a", 1.0)));
        both.push(Read::PageInsights(1), Ok(family("b", 1.0)));
        applier.apply(outcome(both));
        let mut partial = Polled::default();
        partial.push(Read::PageInsights(0), Ok(family("a", 2.0)));
        partial.push(
            Read::PageInsights(1),
            Err(PollError::Graph(GraphError::Timeout(Duration::from_secs(
                30,
            )))),
        );
        applier.apply(outcome(partial));
        let text = body(&store);
        assert!(text.contains("a{page_id=\"P\"} 2\n"), "{text}");
        assert!(
            text.contains("b{page_id=\"P\"} 1\n"),
            "the failed read keeps its value"
        );
        assert!(text.contains("meta_messaging_exporter_target_read_failing{kind=\"page\",target_id=\"P\",read=\"page_insights #2\",error_class=\"transient\"} 1"), "{text}");
        let state = status.get(&page()).expect("tracked");
        assert_eq!(state.state, State::Partial);
        assert_eq!(state.failed_reads.len(), 1);
        let own = String::from_utf8(applier.metrics().encode().expect("encode")).expect("utf-8");
        assert!(
            own.contains("meta_messaging_exporter_polls_total{kind=\"page\",result=\"partial\"} 1"),
            "{own}"
        );

        // A poll that no longer makes a read takes its series with it.
        let mut one = Polled::default();
        one.push(Read::PageInsights(0), Ok(family("a", 3.0)));
        applier.apply(outcome(one));
        let text = body(&store);
        assert!(!text.contains("b{"), "{text}");
        assert_eq!(status.get(&page()).expect("tracked").state, State::Ok);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_without_data_keeps_the_held_values_until_they_go_stale() {
        let (applier, store, status) = applier();
        register(&applier, 1);
        let family = |name: &str, value: f64| Converted {
            families: vec![Family {
                name: name.into(),
                help: "h".into(),
                samples: vec![Sample {
                    labels: vec![("campaign_id".into(), "C".into())],
                    value,
                }],
            }],
            ..Converted::default()
        };
        // stale_after is 60s (`success`): the rows come at 0s, empty answers after them.
        let poll = |insights: Converted| {
            let mut polled = Polled::default();
            polled.push(Read::Insights, Ok(insights));
            polled.push(Read::Name, Ok(family("meta_campaign_info", 1.0)));
            PollOutcome {
                result: Ok(polled),
                ..success(1, 0.0)
            }
        };
        // Never had rows: nothing to export, and nothing wrong.
        applier.apply(poll(Converted::no_data()));
        assert!(!body(&store).contains("meta_marketing_messages_spend"));

        let spend = "meta_marketing_messages_spend{campaign_id=\"C\"} 38.87\n";
        applier.apply(poll(family("meta_marketing_messages_spend", 38.87)));
        assert!(body(&store).contains(spend));

        for _ in 0..2 {
            tokio::time::advance(Duration::from_secs(25)).await;
            assert!(applier.apply(poll(Converted::no_data())));
            let text = body(&store);
            assert!(text.contains(spend), "held, not dropped or zeroed:\n{text}");
        }
        let state = status.get(&page()).expect("tracked");
        assert_eq!(state.state, State::Ok);
        assert!(state.failed_reads.is_empty());
        let own = String::from_utf8(applier.metrics().encode().expect("encode")).expect("utf-8");
        assert!(
            own.contains("meta_messaging_exporter_polls_total{kind=\"page\",result=\"success\"} 4"),
            "{own}"
        );
        assert!(
            !own.contains("meta_messaging_exporter_read_errors_total{"),
            "{own}"
        );

        // 61s after the rows: they are stale, although every poll since answered. The read
        // that did publish (the name) stays, refreshed by the last poll.
        tokio::time::advance(Duration::from_secs(11)).await;
        let text = body(&store);
        assert!(!text.contains("meta_marketing_messages_spend"), "{text}");
        assert!(
            text.contains("meta_campaign_info{campaign_id=\"C\"} 1\n"),
            "{text}"
        );

        // Rows again: published at once.
        applier.apply(poll(family("meta_marketing_messages_spend", 40.0)));
        assert!(body(&store).contains("meta_marketing_messages_spend{campaign_id=\"C\"} 40\n"));
    }
}

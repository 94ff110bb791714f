//! Background polling: one task per target, each on its own interval.
//!
//! The [`Scheduler`] starts a task per configured target and, on [`Scheduler::apply`], keeps
//! the tasks whose settings did not change, stops the removed ones and starts new ones. Each
//! task polls its target sequentially, so a target is never polled twice at once; targets
//! never wait for each other (the only shared limit is the client's bound on requests in
//! flight). First polls are spread over the interval by a hash of the target id, so a restart
//! does not send every request at once and the spread is the same on every start.
//!
//! After each poll the task publishes the data (expiring `stale_after` after the success) and
//! the target's status series into the store. An invalid token, a missing permission or a
//! target with nothing valid left to ask stops the task's polling until the config changes;
//! throttling and policy blocks push the next poll out with jittered exponential backoff.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::exposition::encode;
use crate::graph::{ErrorClass, GraphClient};
use crate::poller::{PollContext, PollError, Poller};
use crate::self_metrics::ExporterMetrics;
use crate::status::{LastError, State, StatusBoard};
use crate::store::{Slot, SnapshotStore};
use crate::target::{Target, TargetKey};

/// What every poll task shares.
pub struct Shared {
    /// Graph API client.
    pub client: GraphClient,
    /// Where results go.
    pub store: Arc<SnapshotStore>,
    /// Where state goes.
    pub status: Arc<StatusBoard>,
    /// The exporter's own metrics.
    pub metrics: ExporterMetrics,
    /// Wall clock.
    pub clock: Arc<dyn Clock>,
}

struct Running {
    target: Target,
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

/// The set of running poll tasks.
pub struct Scheduler {
    shared: Arc<Shared>,
    running: HashMap<TargetKey, Running>,
    shutdown: CancellationToken,
}

impl Scheduler {
    /// A scheduler with no targets; `shutdown` stops every task it starts.
    pub fn new(shared: Arc<Shared>, shutdown: CancellationToken) -> Self {
        Self {
            shared,
            running: HashMap::new(),
            shutdown,
        }
    }

    /// Makes the running tasks match `targets`: unchanged targets keep their task, schedule
    /// and series; changed or removed ones are stopped and their series removed.
    pub fn apply(&mut self, targets: Vec<Target>) {
        let wanted: HashMap<TargetKey, Target> = targets
            .into_iter()
            .map(|target| (target.key(), target))
            .collect();

        let stale: Vec<TargetKey> = self
            .running
            .iter()
            .filter(|(key, running)| wanted.get(*key) != Some(&running.target))
            .map(|(key, _)| key.clone())
            .collect();
        for key in stale {
            if let Some(running) = self.running.remove(&key) {
                running.cancel.cancel();
                running.handle.abort();
            }
            self.shared.store.remove_target(&key);
            self.shared.status.remove(&key);
        }

        for (key, target) in wanted {
            if self.running.contains_key(&key) {
                continue;
            }
            let cancel = self.shutdown.child_token();
            self.shared
                .status
                .register(&key, target.schedule().interval);
            let handle = tokio::spawn(run_target(
                target.clone(),
                self.shared.clone(),
                cancel.clone(),
            ));
            self.running.insert(
                key,
                Running {
                    target,
                    cancel,
                    handle,
                },
            );
        }

        for kind in ["page", "campaign", "whatsapp_business_account"] {
            let count = self
                .running
                .keys()
                .filter(|key| key.kind.as_str() == kind)
                .count();
            self.shared
                .metrics
                .targets
                .with_label_values(&[kind])
                .set(count as i64);
        }
    }

    /// Stops every task and waits for them, at most `grace`.
    pub async fn shutdown(mut self, grace: Duration) {
        self.shutdown.cancel();
        let handles: Vec<JoinHandle<()>> = self
            .running
            .drain()
            .map(|(_, running)| running.handle)
            .collect();
        if tokio::time::timeout(grace, futures::future::join_all(handles))
            .await
            .is_err()
        {
            tracing::warn!(?grace, "poll tasks did not stop in time");
        }
    }
}

/// Where in its interval a target first polls: stable across restarts, spread across targets.
fn start_offset(key: &TargetKey, interval: Duration) -> Duration {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    let millis = interval.as_millis().max(1) as u64;
    Duration::from_millis(hasher.finish() % millis)
}

/// Backoff after throttling: a jittered exponential from one interval, capped at an hour or
/// eight intervals, whichever is longer.
fn throttle_backoff(interval: Duration) -> impl Iterator<Item = Duration> {
    let cap = (interval * 8).max(Duration::from_secs(3600));
    ExponentialBuilder::default()
        .with_min_delay(interval)
        .with_max_delay(cap)
        .without_max_times()
        .with_jitter()
        .build()
}

async fn run_target(target: Target, shared: Arc<Shared>, cancel: CancellationToken) {
    let key = target.key();
    let schedule = target.schedule().clone();
    let kind = key.kind.as_str();
    let mut poller = Poller::new(&target);
    publish_status(&shared, &key);

    let mut next = Instant::now() + start_offset(&key, schedule.interval);
    let mut throttled: Option<Box<dyn Iterator<Item = Duration> + Send>> = None;
    loop {
        shared.status.update(&key, |s| {
            s.next_poll = Some(
                shared.clock.now_unix()
                    + next.saturating_duration_since(Instant::now()).as_secs() as i64,
            );
        });
        publish_status(&shared, &key);
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep_until(next) => {}
        }

        let started = Instant::now();
        let started_unix = shared.clock.now_unix();
        let context = PollContext {
            client: &shared.client,
            clock: shared.clock.as_ref(),
        };
        let result = tokio::select! {
            () = cancel.cancelled() => return,
            result = poller.poll(&context) => result,
        };
        let elapsed = started.elapsed();
        shared
            .metrics
            .poll_duration
            .with_label_values(&[kind])
            .observe(elapsed.as_secs_f64());
        let dropped = poller.dropped();

        match result {
            Ok(converted) => {
                for problem in &converted.problems {
                    shared
                        .metrics
                        .value_errors
                        .with_label_values(&[kind, problem.reason])
                        .inc();
                    tracing::warn!(target_kind = kind, target_id = %key.id, reason = problem.reason, detail = %problem.detail, "skipped a value in the Graph API response");
                }
                let families = encode(converted.families);
                let expires_at = Instant::now() + schedule.stale_after;
                shared
                    .store
                    .publish(&key, Slot::Data, families, Some(expires_at));
                shared
                    .metrics
                    .polls
                    .with_label_values(&[kind, "success"])
                    .inc();
                let finished = shared.clock.now_unix();
                shared.status.update(&key, |s| {
                    record_dropped(&shared.metrics, kind, &s.dropped, &dropped);
                    s.state = State::Ok;
                    s.last_poll = Some(started_unix);
                    s.last_success = Some(finished);
                    s.last_duration = Some(elapsed);
                    s.dropped = dropped;
                });
                tracing::debug!(target_kind = kind, target_id = %key.id, elapsed_ms = elapsed.as_millis() as u64, "poll succeeded");
                throttled = None;
                next = started + schedule.interval;
            }
            Err(error) => {
                let class = error.class();
                shared.metrics.polls.with_label_values(&[kind, class]).inc();
                let graph = match &error {
                    PollError::Graph(graph) => Some(graph),
                    PollError::NothingValid(_) => None,
                };
                let code = graph.and_then(|g| g.api_error()).map(|e| e.code);
                let disabled_reason = match graph.map(|g| g.class()) {
                    Some(ErrorClass::InvalidToken) => Some("invalid_token"),
                    Some(ErrorClass::PermissionDenied) => Some("permission_denied"),
                    None => Some("no_valid_metrics"),
                    _ => None,
                };
                let at = shared.clock.now_unix();
                shared.status.update(&key, |s| {
                    record_dropped(&shared.metrics, kind, &s.dropped, &dropped);
                    s.state = if disabled_reason.is_some() {
                        State::Disabled
                    } else {
                        State::Failing
                    };
                    s.disabled_reason = disabled_reason;
                    s.last_poll = Some(started_unix);
                    s.last_duration = Some(elapsed);
                    s.dropped = dropped;
                    s.last_error = Some(LastError {
                        class,
                        code,
                        message: error.to_string(),
                        at,
                    });
                });
                if let Some(reason) = disabled_reason {
                    tracing::error!(target_kind = kind, target_id = %key.id, error_class = class, error_code = ?code, error = %error, reason, "target disabled until the config changes");
                    shared.status.update(&key, |s| s.next_poll = None);
                    publish_status(&shared, &key);
                    // Keep serving the last values until they go stale, but never call again.
                    cancel.cancelled().await;
                    return;
                }
                tracing::warn!(target_kind = kind, target_id = %key.id, error_class = class, error_code = ?code, error = %error, "poll failed; keeping the last values until they go stale");
                next = started + schedule.interval;
                if matches!(
                    graph.map(|g| g.class()),
                    Some(ErrorClass::Throttled | ErrorClass::PolicyBlock)
                ) {
                    let delay = throttled
                        .get_or_insert_with(|| Box::new(throttle_backoff(schedule.interval)))
                        .next()
                        .unwrap_or(schedule.interval);
                    next = Instant::now() + delay;
                }
            }
        }
        let now = Instant::now();
        if next < now {
            // A poll that overran its interval starts the next one at once, not a burst.
            next = now;
        }
    }
}

fn record_dropped(metrics: &ExporterMetrics, kind: &str, before: &[String], after: &[String]) {
    let new = after.iter().filter(|item| !before.contains(item)).count();
    if new > 0 {
        metrics
            .dropped_items
            .with_label_values(&[kind])
            .inc_by(new as u64);
    }
}

fn publish_status(shared: &Shared, key: &TargetKey) {
    shared
        .store
        .publish(key, Slot::Status, encode(shared.status.families(key)), None);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::TargetKind;

    #[test]
    fn start_offsets_are_stable_and_inside_the_interval() {
        let key = TargetKey {
            kind: TargetKind::Page,
            id: "123".into(),
        };
        let interval = Duration::from_secs(900);
        let offset = start_offset(&key, interval);
        assert!(offset < interval);
        assert_eq!(offset, start_offset(&key, interval));
        let other = TargetKey {
            kind: TargetKind::Page,
            id: "124".into(),
        };
        assert_ne!(offset, start_offset(&other, interval));
    }
}

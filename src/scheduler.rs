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
//! target with nothing valid left to ask stops the task's polling until the config changes.
//! When the next poll is due is the rate limiter's call: a pause over any of the target's
//! scopes (after a throttle, or a spent call budget) or high usage pushes it out.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::exposition::encode;
use crate::graph::{GraphClient, GraphError};
use crate::poller::{PollContext, PollError, Poller};
use crate::ratelimit;
use crate::self_metrics::ExporterMetrics;
use crate::status::{LastError, State, StatusBoard};
use crate::store::{Slot, SnapshotStore};
use crate::target::{Target, TargetKey};

/// What every poll task shares.
pub struct Shared {
    /// Graph API client; swapped whole when a reload changes `graph_api` or `polling`, so
    /// running tasks pick the new one up at their next poll.
    pub client: ArcSwap<GraphClient>,
    /// Where results go.
    pub store: Arc<SnapshotStore>,
    /// Where state goes.
    pub status: Arc<StatusBoard>,
    /// The exporter's own metrics.
    pub metrics: ExporterMetrics,
    /// Wall clock.
    pub clock: Arc<dyn Clock>,
    /// How long a metric or field the API rejected stays out of a target's requests
    /// (`polling.retry_dropped_after`).
    pub retry_dropped_after: Duration,
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

async fn run_target(target: Target, shared: Arc<Shared>, cancel: CancellationToken) {
    let key = target.key();
    let schedule = target.schedule().clone();
    let token_id = ratelimit::fingerprint(&target.credentials().token);
    let mut poller = Poller::new(&target);
    publish_status(&shared, &key);

    let mut next = Instant::now() + start_offset(&key, schedule.interval);
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        shared.status.update(&key, |s| {
            s.next_poll = Some(shared.clock.now_unix() + wait.as_secs() as i64);
        });
        publish_status(&shared, &key);
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep_until(next) => {}
        }

        let started = Instant::now();
        let started_unix = shared.clock.now_unix();
        let client = shared.client.load_full();
        let context = PollContext {
            client: &client,
            clock: shared.clock.as_ref(),
            retry_dropped_after: shared.retry_dropped_after,
        };
        let result = tokio::select! {
            () = cancel.cancelled() => return,
            result = poller.poll(&context) => result,
        };
        let elapsed = started.elapsed();
        let kind = key.kind.as_str();
        shared
            .metrics
            .poll_duration
            .with_label_values(&[kind])
            .observe(elapsed.as_secs_f64());
        let dropped = poller.dropped();
        shared.status.update(&key, |s| {
            record_dropped(&shared.metrics, kind, &s.dropped, &dropped);
            s.dropped = dropped;
            s.last_poll = Some(started_unix);
            s.last_duration = Some(elapsed);
        });

        match result {
            Ok(converted) => publish_success(&shared, &key, &schedule, converted),
            Err(error) => {
                if let Some(reason) = record_failure(&shared, &key, &error) {
                    tracing::error!(target_kind = kind, target_id = %key.id, reason, error = %error, "target disabled until the config changes");
                    shared.status.update(&key, |s| s.next_poll = None);
                    publish_status(&shared, &key);
                    // Keep serving the last values until they go stale, but never call again.
                    cancel.cancelled().await;
                    return;
                }
            }
        }

        // The rate limiter decides how much later than one interval the next poll goes:
        // a pause over any of the target's scopes, or a stretch for high usage.
        let limiter = client.limiter();
        let now = Instant::now();
        let regular = started + schedule.interval;
        next = regular + limiter.stretch(&token_id, &key.id, schedule.interval);
        if let Some(pause) = limiter.pause_remaining(&token_id, &key.id) {
            next = next.max(now + pause);
            // Meta asks callers to keep serving the last values while waiting out a
            // throttle: staleness counts from when polling may resume, not from now.
            shared
                .store
                .extend(&key, Slot::Data, next + schedule.stale_after);
        }
        // A poll that overran its interval starts the next one at once, not a burst.
        next = next.max(now);
        let backoff = next.saturating_duration_since(regular.max(now));
        shared.status.update(&key, |s| s.backoff = backoff);
    }
}

/// Publishes a successful poll's families, expiring `stale_after` from now.
fn publish_success(
    shared: &Shared,
    key: &TargetKey,
    schedule: &crate::config::Schedule,
    converted: crate::convert::Converted,
) {
    let kind = key.kind.as_str();
    for problem in &converted.problems {
        shared
            .metrics
            .value_errors
            .with_label_values(&[kind, problem.reason])
            .inc();
        tracing::warn!(target_kind = kind, target_id = %key.id, reason = problem.reason, detail = %problem.detail, "skipped a value in the Graph API response");
    }
    let expires_at = Instant::now() + schedule.stale_after;
    shared.store.publish(
        key,
        Slot::Data,
        encode(converted.families),
        Some(expires_at),
    );
    shared
        .metrics
        .polls
        .with_label_values(&[kind, "success"])
        .inc();
    let finished = shared.clock.now_unix();
    shared.status.update(key, |s| {
        s.state = State::Ok;
        s.disabled_reason = None;
        s.last_success = Some(finished);
    });
    tracing::debug!(target_kind = kind, target_id = %key.id, "poll succeeded");
}

/// Records a failed poll; returns the reason when the target must stop until the config
/// changes ([`PollError::disabled_reason`]).
fn record_failure(shared: &Shared, key: &TargetKey, error: &PollError) -> Option<&'static str> {
    let kind = key.kind.as_str();
    let class = error.class();
    shared.metrics.polls.with_label_values(&[kind, class]).inc();
    let graph = error.graph_error();
    let code = graph.and_then(GraphError::api_error).map(|e| e.code);
    let disabled_reason = error.disabled_reason();
    let at = shared.clock.now_unix();
    shared.status.update(key, |s| {
        s.state = if disabled_reason.is_some() {
            State::Disabled
        } else {
            State::Failing
        };
        s.disabled_reason = disabled_reason;
        s.last_error = Some(LastError {
            class,
            code,
            message: error.to_string(),
            at,
        });
    });
    // A pause the limiter imposed is not news: the throttle that caused it was logged.
    if disabled_reason.is_none() && !matches!(graph, Some(GraphError::Paused { .. })) {
        tracing::warn!(target_kind = kind, target_id = %key.id, error_class = class, error_code = ?code, error = %error, "poll failed; keeping the last values until they go stale");
    }
    disabled_reason
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

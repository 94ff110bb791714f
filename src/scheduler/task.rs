//! One target's poll task: waits until its poll is due, polls, and hands the outcome over.
//!
//! The task owns the target's poller and its timing and nothing else: what a poll changes is
//! applied by [`crate::outcome::Applier`]. A task polls its target sequentially, so a target
//! is never polled twice at once. Its settings arrive on a watch channel: the scheduler sends
//! a target whose only change is its credentials there, so the task keeps its schedule and
//! what its poller learned; a disabled target (bad token, missing permission) polls again
//! within seconds of such a change.

use std::sync::Arc;

use arc_swap::ArcSwap;

use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::source::PollSource;
use super::timing::{self, RESUME_SPREAD};
use crate::graph::ratelimit::RateLimiter;
use crate::outcome::{Applier, NextPoll, PollOutcome};
use crate::poller::read;
use crate::target::{Target, TargetKey};

/// What every task shares.
pub(super) struct TaskContext {
    pub(super) source: Arc<dyn PollSource>,
    pub(super) limiter: Arc<RateLimiter>,
    pub(super) applier: Applier,
    /// Slots for polls running at once ([`super::polls_in_flight`]); replaced when the
    /// polling settings change, while polls holding a slot of the old one finish with it.
    pub(super) poll_slots: ArcSwap<Semaphore>,
}

/// One task's identity and start.
pub(super) struct TaskSpec {
    pub(super) key: TargetKey,
    pub(super) generation: u64,
    pub(super) first_poll: Instant,
}

/// Runs until `cancel` fires or the scheduler drops the sending half of `targets`.
pub(super) async fn run(
    spec: TaskSpec,
    mut targets: watch::Receiver<Target>,
    context: Arc<TaskContext>,
    cancel: CancellationToken,
) {
    let TaskSpec {
        key,
        generation,
        first_poll,
    } = spec;
    let mut target = targets.borrow_and_update().clone();
    let mut poller = context.source.poller(&target);
    // `None` while disabled: no poll until the credentials change.
    let mut due = Some(first_poll);
    loop {
        let wait = async {
            match due {
                Some(due) => tokio::time::sleep_until(due).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            changed = targets.changed() => {
                if changed.is_err() {
                    return;
                }
                let updated = targets.borrow_and_update().clone();
                // An identical target is the scheduler saying every credential changed (a new
                // app secret); a new name alone (a renamed discovered Page) is no reason to
                // retry a target disabled for its token.
                let credentials_changed =
                    updated == target || updated.credentials() != target.credentials();
                target = updated;
                poller.update(&target);
                if due.is_none() && credentials_changed {
                    let delay = timing::first_poll_delay(&key, target.schedule().interval, RESUME_SPREAD);
                    due = Some(Instant::now() + delay);
                    context.applier.rescheduled(&key, generation, due);
                    tracing::info!(target_kind = key.kind.as_str(), target_id = %key.id, "credentials changed; polling the disabled target again");
                }
                continue;
            }
            () = wait => {}
        }

        let queued = Instant::now();
        // A poll waiting for its slot holds none of its request state yet: at 10,000 targets
        // due at once, that is most of the memory a start would otherwise take. The wait is
        // measured on its own: poll_duration_seconds is the time the poll spent, not the time
        // it queued behind others.
        let slots = context.poll_slots.load_full();
        let polled = tokio::select! {
            () = cancel.cancelled() => return,
            polled = async {
                let _slot = slots.acquire_owned().await;
                let started = Instant::now();
                let started_unix = context.applier.clock().now_unix();
                context.applier.queued(&key, started - queued);
                let result = poller.poll().await;
                (started, started_unix, result)
            } => polled,
        };
        let (started, started_unix, result) = polled;
        let schedule = target.schedule();
        let disabled = read::disabled_reason(&result).is_some();
        let next = if disabled {
            NextPoll::Disabled
        } else {
            timing::next_poll(
                &context.limiter,
                target.credentials().token.id(),
                &key,
                // The schedule keeps to when the poll fell due, however long it queued.
                queued,
                schedule.interval,
                schedule.stale_after,
            )
        };
        due = match next {
            NextPoll::At { due, .. } => Some(due),
            NextPoll::Disabled => None,
        };
        context.applier.apply(PollOutcome {
            key: key.clone(),
            generation,
            started_unix,
            duration: started.elapsed(),
            result,
            dropped: poller.dropped(),
            unavailable: poller.unavailable(),
            health: poller.health(),
            name: poller.name(),
            stale_after: schedule.stale_after,
            next,
        });
    }
}

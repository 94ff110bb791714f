//! When to poll: one background task per target, started, updated and stopped as the
//! configuration changes.
//!
//! - [`timing`]: first polls inside `polling.startup_spread`, later ones an interval apart,
//!   pushed out by the rate limiter.
//! - [`task`]: one target's loop: wait, poll, hand the [`crate::outcome::PollOutcome`] over.
//! - [`source`]: what a task calls to poll ([`GraphSource`] in production).
//!
//! [`Scheduler::apply`] makes the running tasks match a target list, keeping everything that
//! is still true: an unchanged target keeps its task; a target whose only change is its
//! credentials keeps its task, schedule, pause state and series, and its next poll uses the new
//! token; a target whose settings changed gets a new task that first polls within the start-up
//! spread, while its old series stay until that poll replaces them; a removed target's series
//! go at once. Each task has a generation, checked where outcomes are applied, so a replaced
//! or removed task can never publish.

pub mod source;
mod task;
pub mod timing;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use self::source::{GraphSource, PollSource, TargetPoller};

/// How many polls run at once: twice what the requests in flight can carry (a batch call
/// carries up to 50), so the client always has the next requests ready while nothing waits
/// in memory that could not be sent soon. Polls beyond it wait for their turn before they
/// build any request; their schedule counts from when they fell due.
pub fn polls_in_flight(polling: &PollingConfig) -> usize {
    let calls_per_request = if polling.batch { MAX_BATCH_ENTRIES } else { 1 };
    polling.max_concurrent_requests * calls_per_request * 2
}
use self::task::{TaskContext, TaskSpec};
use crate::config::PollingConfig;
use crate::graph::ratelimit::RateLimiter;
use crate::graph::MAX_BATCH_ENTRIES;
use crate::outcome::Applier;
use crate::secret::{AccessToken, TokenId};
use crate::target::{Target, TargetKey, TargetKind};

struct Running {
    target: Target,
    updates: watch::Sender<Target>,
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

impl Running {
    fn stop(self) {
        self.cancel.cancel();
        // Abort too: a task in the middle of a request drops it at once (its in-flight guard
        // and permit go with it) instead of finishing a request whose answer is discarded.
        self.handle.abort();
    }
}

/// The set of running poll tasks.
pub struct Scheduler {
    context: Arc<TaskContext>,
    running: HashMap<TargetKey, Running>,
    /// Fingerprints of tokens in use besides the targets' (discovery's, the app token), whose
    /// limiter state pruning keeps.
    other_tokens: HashSet<TokenId>,
    shutdown: CancellationToken,
    next_generation: u64,
}

impl Scheduler {
    /// A scheduler with no targets; `shutdown` stops every task it starts, and at most
    /// [`polls_in_flight`] of `polling` polls run at once.
    pub fn new(
        source: Arc<dyn PollSource>,
        limiter: Arc<RateLimiter>,
        applier: Applier,
        polling: &PollingConfig,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            context: Arc::new(TaskContext {
                source,
                limiter,
                applier,
                poll_slots: ArcSwap::from_pointee(Semaphore::new(polls_in_flight(polling))),
            }),
            running: HashMap::new(),
            other_tokens: HashSet::new(),
            shutdown,
            next_generation: 1,
        }
    }

    /// Applies new polling settings to the bound on polls running at once.
    pub fn set_polling(&self, polling: &PollingConfig) {
        self.context
            .poll_slots
            .store(Arc::new(Semaphore::new(polls_in_flight(polling))));
    }

    /// Makes the running tasks match `targets` (see the module docs); new and changed targets
    /// first poll within `startup_spread` (at most their interval).
    pub fn apply(&mut self, targets: Vec<Target>, startup_spread: Duration) {
        let mut wanted: Vec<(TargetKey, Target)> = targets
            .into_iter()
            .map(|target| (target.key(), target))
            .collect();
        wanted.sort_by(|a, b| a.0.cmp(&b.0));
        let keys: HashSet<&TargetKey> = wanted.iter().map(|(key, _)| key).collect();
        let removed: Vec<TargetKey> = self
            .running
            .keys()
            .filter(|key| !keys.contains(key))
            .cloned()
            .collect();
        for key in removed {
            if let Some(running) = self.running.remove(&key) {
                running.stop();
            }
            self.context.applier.remove(&key);
            tracing::info!(target_kind = key.kind.as_str(), target_id = %key.id, "target removed");
        }

        for (key, target) in wanted {
            match self.running.get_mut(&key) {
                Some(running) if running.target == target => {}
                Some(running) if running.target.same_settings(&target) => {
                    running.target = target.clone();
                    running.updates.send_replace(target);
                    tracing::info!(target_kind = key.kind.as_str(), target_id = %key.id, "credentials changed; the next poll uses them");
                }
                Some(_) => {
                    if let Some(old) = self.running.remove(&key) {
                        old.stop();
                    }
                    tracing::info!(target_kind = key.kind.as_str(), target_id = %key.id, "settings changed; the old series stay until the first poll with the new ones");
                    self.start(key, target, startup_spread);
                }
                None => self.start(key, target, startup_spread),
            }
        }

        for kind in TargetKind::ALL {
            let count = self.running.keys().filter(|key| key.kind == kind).count();
            self.context
                .applier
                .metrics()
                .targets
                .with_label_values(&[kind.as_str()])
                .set(count as i64);
        }
        self.prune_limiter();
    }

    /// The running targets, in no particular order.
    pub fn targets(&self) -> Vec<Target> {
        self.running
            .values()
            .map(|running| running.target.clone())
            .collect()
    }

    /// Every running target's credentials changed without the targets changing (a new app
    /// secret, so a new `appsecret_proof`): disabled targets poll again within seconds.
    pub fn credentials_changed(&mut self) {
        for running in self.running.values() {
            running.updates.send_modify(|_| {});
        }
    }

    /// Tokens used outside the targets (discovery's, the app token of token health), whose
    /// limiter state, a throttle pause above all, must outlive pruning like the targets'.
    pub fn set_other_tokens(&mut self, tokens: &[&AccessToken]) {
        self.other_tokens = tokens.iter().map(|token| *token.id()).collect();
    }

    /// Drops limiter state and usage series of tokens and objects no longer configured, and
    /// of businesses Meta has not named for a day.
    pub fn prune_limiter(&self) {
        let tokens: HashSet<TokenId> = self
            .running
            .values()
            .map(|running| *running.target.credentials().token.id())
            .chain(self.other_tokens.iter().cloned())
            .collect();
        let objects: HashSet<String> = self.running.keys().map(|key| key.id.clone()).collect();
        self.context.limiter.prune(&tokens, &objects);
    }

    fn start(&mut self, key: TargetKey, target: Target, startup_spread: Duration) {
        let generation = self.next_generation;
        self.next_generation += 1;
        let interval = target.schedule().interval;
        let first_poll = Instant::now() + timing::first_poll_delay(&key, interval, startup_spread);
        self.context
            .applier
            .register(&key, generation, interval, target.origin(), first_poll);
        let (updates, receiver) = watch::channel(target.clone());
        let cancel = self.shutdown.child_token();
        let handle = tokio::spawn(task::run(
            TaskSpec {
                key: key.clone(),
                generation,
                first_poll,
            },
            receiver,
            self.context.clone(),
            cancel.clone(),
        ));
        self.running.insert(
            key,
            Running {
                target,
                updates,
                cancel,
                handle,
            },
        );
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

#[cfg(test)]
mod tests;

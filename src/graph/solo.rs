//! Targets that poll outside batch calls ("solo"), why, and when they may rejoin.
//!
//! A batch call shares one HTTP request among its entries, so one entry that hangs the
//! request costs all of them the batch deadline. The batch layer ([`super::batch`]) sends
//! every entry of such a batch again alone; an entry whose single call then times out or is
//! slower than `polling.batch_timeout` is marked solo here, and its object's requests go
//! alone until it has answered promptly [`PROMPT_ANSWERS_TO_LEAVE`] times in a row. A
//! request's object id is its target's id for every poll request, so this is, in effect, a
//! set of targets.
//!
//! This module owns [`SoloTargets`], the bookkeeping and its `target_solo` series. It sits
//! below the batch layer because the [`super::ratelimit::RateLimiter`] holds it: the limiter
//! outlives a Graph client rebuilt by a reload, and its pruning drops objects no longer
//! configured, here as there.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use prometheus::IntGaugeVec;

use crate::clock::Clock;

/// Prompt answers in a row after which a solo object rejoins batches: one lucky answer of a
/// flapping target is not enough, and three polls are soon over at any usual interval.
pub const PROMPT_ANSWERS_TO_LEAVE: u32 = 3;

/// Why an object polls outside batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoloReason {
    /// Its call timed out when sent alone.
    Timeout,
    /// Its call answered when sent alone, but slower than `polling.batch_timeout`.
    Slow,
}

impl SoloReason {
    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Slow => "slow",
        }
    }
}

/// One solo object, as the status page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoloTarget {
    /// The object (target) id.
    pub object_id: String,
    /// Why it is solo: the latest slow or timed-out answer's kind.
    pub reason: SoloReason,
    /// When it became solo, unix seconds.
    pub since: i64,
    /// Prompt answers in a row since its last slow or failed one.
    pub prompt_streak: u32,
}

struct Entry {
    reason: SoloReason,
    since: i64,
    prompt_streak: u32,
}

/// The solo objects of one limiter, with their `target_solo` series.
pub struct SoloTargets {
    objects: Mutex<BTreeMap<String, Entry>>,
    gauge: IntGaugeVec,
    clock: Arc<dyn Clock>,
}

impl SoloTargets {
    /// No solo objects; their series go into `gauge` (`target_id`, `reason`), their times
    /// come from `clock`.
    pub(crate) fn new(gauge: IntGaugeVec, clock: Arc<dyn Clock>) -> Self {
        Self {
            objects: Mutex::new(BTreeMap::new()),
            gauge,
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        // Each change is one map operation plus its series, so a poisoned lock is consistent.
        self.objects
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether requests about `object_id` go alone.
    pub fn contains(&self, object_id: &str) -> bool {
        self.lock().contains_key(object_id)
    }

    /// `object_id` answered alone too slowly, or not at all: it is solo for `reason` (the
    /// latest one, if it already was) and its prompt streak starts again. Returns whether
    /// it was not solo before.
    pub(crate) fn mark(&self, object_id: &str, reason: SoloReason) -> bool {
        let mut objects = self.lock();
        let newly = !objects.contains_key(object_id);
        let entry = objects.entry(object_id.to_owned()).or_insert(Entry {
            reason,
            since: self.clock.now_unix(),
            prompt_streak: 0,
        });
        if entry.reason != reason {
            let _ = self
                .gauge
                .remove_label_values(&[object_id, entry.reason.as_str()]);
            entry.reason = reason;
        }
        entry.prompt_streak = 0;
        self.gauge
            .with_label_values(&[object_id, reason.as_str()])
            .set(1);
        newly
    }

    /// A solo object's single call ended: `prompt` when it succeeded faster than the batch
    /// deadline. Enough prompt answers in a row and it rejoins batches; anything else starts
    /// the streak again. Returns whether it left solo; nothing happens to an object that is
    /// not solo.
    pub(crate) fn answered_alone(&self, object_id: &str, prompt: bool) -> bool {
        let mut objects = self.lock();
        let Some(entry) = objects.get_mut(object_id) else {
            return false;
        };
        if !prompt {
            entry.prompt_streak = 0;
            return false;
        }
        entry.prompt_streak += 1;
        if entry.prompt_streak < PROMPT_ANSWERS_TO_LEAVE {
            return false;
        }
        let reason = entry.reason;
        objects.remove(object_id);
        let _ = self
            .gauge
            .remove_label_values(&[object_id, reason.as_str()]);
        true
    }

    /// Forgets the objects not in `objects` (no longer configured), and their series.
    pub(crate) fn retain(&self, objects: &HashSet<String>) {
        let mut solo = self.lock();
        solo.retain(|object_id, entry| {
            let keep = objects.contains(object_id);
            if !keep {
                let _ = self
                    .gauge
                    .remove_label_values(&[object_id, entry.reason.as_str()]);
            }
            keep
        });
    }

    /// Every solo object, in id order.
    pub fn list(&self) -> Vec<SoloTarget> {
        self.lock()
            .iter()
            .map(|(object_id, entry)| SoloTarget {
                object_id: object_id.clone(),
                reason: entry.reason,
                since: entry.since,
                prompt_streak: entry.prompt_streak,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::self_metrics::ExporterMetrics;

    fn solo() -> (SoloTargets, ExporterMetrics) {
        let metrics = ExporterMetrics::new().expect("metrics");
        let targets = SoloTargets::new(
            metrics.target_solo.clone(),
            Arc::new(FixedClock::new(1_790_000_000)),
        );
        (targets, metrics)
    }

    fn gauge(metrics: &ExporterMetrics, id: &str, reason: &str) -> Option<i64> {
        let text = String::from_utf8(metrics.encode().expect("encode")).expect("utf-8");
        let line = format!(
            "meta_messaging_exporter_target_solo{{reason=\"{reason}\",target_id=\"{id}\"}} "
        );
        text.lines()
            .find_map(|l| l.strip_prefix(&line))
            .map(|value| value.parse().expect("a number"))
    }

    #[test]
    fn a_marked_object_is_solo_with_its_reason_time_and_series() {
        let (solo, metrics) = solo();
        assert!(!solo.contains("P1"));
        assert!(solo.mark("P1", SoloReason::Timeout));
        assert!(solo.contains("P1"));
        assert_eq!(
            solo.list(),
            vec![SoloTarget {
                object_id: "P1".to_owned(),
                reason: SoloReason::Timeout,
                since: 1_790_000_000,
                prompt_streak: 0,
            }]
        );
        assert_eq!(gauge(&metrics, "P1", "timeout"), Some(1));
    }

    #[test]
    fn three_prompt_answers_in_a_row_end_solo_and_remove_the_series() {
        let (solo, metrics) = solo();
        solo.mark("P1", SoloReason::Slow);
        assert!(!solo.answered_alone("P1", true));
        assert!(!solo.answered_alone("P1", true));
        assert_eq!(solo.list()[0].prompt_streak, 2);
        assert!(solo.answered_alone("P1", true));
        assert!(!solo.contains("P1"));
        assert_eq!(gauge(&metrics, "P1", "slow"), None);
    }

    #[test]
    fn a_slow_or_failed_answer_starts_the_streak_again() {
        let (solo, _) = solo();
        solo.mark("P1", SoloReason::Timeout);
        solo.answered_alone("P1", true);
        solo.answered_alone("P1", true);
        solo.answered_alone("P1", false);
        assert_eq!(solo.list()[0].prompt_streak, 0);
        solo.answered_alone("P1", true);
        solo.answered_alone("P1", true);
        assert!(solo.contains("P1"), "two in a row are not enough");
        assert!(solo.answered_alone("P1", true));
    }

    #[test]
    fn marking_again_keeps_the_start_and_takes_the_latest_reason() {
        let (solo, metrics) = solo();
        solo.mark("P1", SoloReason::Timeout);
        solo.answered_alone("P1", true);
        assert!(!solo.mark("P1", SoloReason::Slow), "already solo");
        let [target] = solo.list().try_into().expect("one");
        assert_eq!(
            (target.reason, target.since, target.prompt_streak),
            (SoloReason::Slow, 1_790_000_000, 0)
        );
        assert_eq!(gauge(&metrics, "P1", "timeout"), None);
        assert_eq!(gauge(&metrics, "P1", "slow"), Some(1));
    }

    #[test]
    fn an_object_that_is_not_solo_is_untouched_by_answers() {
        let (solo, _) = solo();
        assert!(!solo.answered_alone("P1", true));
        assert!(!solo.answered_alone("P1", false));
        assert!(solo.list().is_empty());
    }

    #[test]
    fn pruning_drops_objects_no_longer_configured_with_their_series() {
        let (solo, metrics) = solo();
        solo.mark("KEPT", SoloReason::Slow);
        solo.mark("GONE", SoloReason::Timeout);
        solo.retain(&["KEPT".to_owned()].into());
        let ids: Vec<String> = solo.list().into_iter().map(|t| t.object_id).collect();
        assert_eq!(ids, ["KEPT"]);
        assert_eq!(gauge(&metrics, "GONE", "timeout"), None);
        assert_eq!(gauge(&metrics, "KEPT", "slow"), Some(1));
    }
}

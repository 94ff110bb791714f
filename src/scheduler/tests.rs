//! The scheduler on tokio's paused clock, polling a scripted source: when polls happen, which
//! credentials they use, and what the store holds through restarts, rotations and reloads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::clock::FixedClock;
use crate::config::{Credentials, Granularity, Schedule, WabaTarget};
use crate::convert::Converted;
use crate::exposition::{Family, Sample};
use crate::graph::{ApiError, GraphError};
use crate::poller::{PollError, Polled, Read};
use crate::secret::AccessToken;
use crate::self_metrics::ExporterMetrics;
use crate::status::{State, StatusBoard};
use crate::store::SnapshotStore;

const SPREAD: Duration = Duration::from_secs(30);
const FIFTEEN_MINUTES: Duration = Duration::from_secs(900);

/// One poll the script answered.
#[derive(Debug, Clone)]
struct Call {
    id: String,
    token: String,
    at: Instant,
}

/// Answers polls: a sample per target naming its interval, or 190 for the token `revoked`;
/// a target id in `gates` waits for its gate before answering.
#[derive(Default)]
struct Script {
    calls: Mutex<Vec<Call>>,
    gates: Mutex<HashMap<String, Arc<Notify>>>,
    /// Polls begun, answered or not.
    started: std::sync::atomic::AtomicUsize,
}

impl Script {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }

    fn calls_of(&self, id: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|call| call.id == id)
            .collect()
    }

    fn gate(&self, id: &str) -> Arc<Notify> {
        let gate = Arc::new(Notify::new());
        self.gates
            .lock()
            .expect("gates")
            .insert(id.to_owned(), gate.clone());
        gate
    }
}

struct ScriptSource(Arc<Script>);

impl PollSource for ScriptSource {
    fn poller(&self, target: &Target) -> Box<dyn TargetPoller> {
        Box::new(ScriptPoller {
            script: self.0.clone(),
            id: target.key().id,
            token: target.credentials().token.clone(),
            interval: target.schedule().interval,
        })
    }
}

struct ScriptPoller {
    script: Arc<Script>,
    id: String,
    token: AccessToken,
    interval: Duration,
}

impl TargetPoller for ScriptPoller {
    fn poll(&mut self) -> BoxFuture<'_, Result<Polled, PollError>> {
        Box::pin(async move {
            self.script
                .started
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let gate = self
                .script
                .gates
                .lock()
                .expect("gates")
                .get(&self.id)
                .cloned();
            if let Some(gate) = gate {
                gate.notified().await;
            }
            self.script.calls.lock().expect("calls").push(Call {
                id: self.id.clone(),
                token: self.token.expose().to_owned(),
                at: Instant::now(),
            });
            if self.token.expose() == "revoked" {
                return Err(PollError::Graph(GraphError::Api {
                    status: 400,
                    error: ApiError {
                        message: "Error validating access token".into(),
                        kind: Some("OAuthException".into()),
                        code: 190,
                        error_subcode: Some(460),
                        is_transient: None,
                        fbtrace_id: None,
                    },
                }));
            }
            let converted = Converted {
                families: vec![Family {
                    name: "test_value".into(),
                    help: "h".into(),
                    samples: vec![Sample {
                        labels: vec![
                            ("target_id".into(), self.id.clone()),
                            ("interval".into(), self.interval.as_secs().to_string()),
                        ],
                        value: 1.0,
                    }],
                }],
                ..Converted::default()
            };
            Ok(Polled::single(Read::Insights, Ok(converted)))
        })
    }

    fn dropped(&self) -> Vec<String> {
        Vec::new()
    }

    fn update(&mut self, target: &Target) {
        self.token = target.credentials().token.clone();
    }
}

struct Harness {
    script: Arc<Script>,
    metrics: ExporterMetrics,
    store: Arc<SnapshotStore>,
    status: Arc<StatusBoard>,
    scheduler: Scheduler,
}

impl Harness {
    fn new() -> Self {
        Self::with_polling(&default_polling())
    }

    fn with_polling(polling: &crate::config::PollingConfig) -> Self {
        let script = Arc::new(Script::default());
        let metrics = ExporterMetrics::new().expect("metrics");
        let store = Arc::new(SnapshotStore::new());
        let status = Arc::new(StatusBoard::default());
        let applier = Applier::new(
            store.clone(),
            status.clone(),
            metrics.clone(),
            Arc::new(FixedClock::new(1_790_000_000)),
        );
        let limiter = Arc::new(RateLimiter::for_tests(None));
        let scheduler = Scheduler::new(
            Arc::new(ScriptSource(script.clone())),
            limiter,
            applier,
            polling,
            CancellationToken::new(),
        );
        Self {
            script,
            metrics,
            store,
            status,
            scheduler,
        }
    }

    /// A harness whose one target `W` was disabled by its first poll (code 190).
    async fn disabled_by_a_revoked_token() -> Self {
        let mut harness = Self::new();
        harness
            .scheduler
            .apply(vec![target("W", "revoked", FIFTEEN_MINUTES)], SPREAD);
        tokio::time::sleep(SPREAD).await;
        assert_eq!(harness.state("W"), Some(State::Disabled));
        harness
    }

    fn body(&self) -> String {
        String::from_utf8(self.store.render(Instant::now()).to_vec()).expect("utf-8")
    }

    fn serves(&self, id: &str) -> bool {
        self.body()
            .contains(&format!("test_value{{target_id=\"{id}\""))
    }

    fn state(&self, id: &str) -> Option<State> {
        self.status.get(&key(id)).map(|status| status.state)
    }
}

fn key(id: &str) -> TargetKey {
    TargetKey {
        kind: TargetKind::WhatsappBusinessAccount,
        id: id.to_owned(),
    }
}

fn target(id: &str, token: &str, interval: Duration) -> Target {
    Target::Waba(Arc::new(WabaTarget {
        id: id.to_owned(),
        credentials: Credentials {
            token: AccessToken::new(token),
            file: None,
        },
        schedule: Schedule {
            interval,
            stale_after: interval * 3,
        },
        granularity: Granularity::Day,
        phone_numbers: Vec::new(),
        country_codes: Vec::new(),
        pricing: None,
        conversations: None,
        templates: None,
        phone_numbers_health: false,
        origin: crate::config::Origin::Static,
    }))
}

#[tokio::test(start_paused = true)]
async fn after_a_restart_100_targets_at_15m_all_poll_within_the_spread_and_keep_that_phase() {
    let mut harness = Harness::new();
    let start = Instant::now();
    let targets: Vec<Target> = (0..100)
        .map(|n| target(&format!("W{n}"), "t", FIFTEEN_MINUTES))
        .collect();
    harness.scheduler.apply(targets, SPREAD);

    tokio::time::sleep(SPREAD).await;
    let first = harness.script.calls();
    assert_eq!(first.len(), 100, "every target polled within the spread");
    assert!(first.iter().all(|call| call.at < start + SPREAD));
    assert!((0..100).all(|n| harness.serves(&format!("W{n}"))));

    tokio::time::sleep(FIFTEEN_MINUTES).await;
    for call in &first {
        let polls = harness.script.calls_of(&call.id);
        assert_eq!(polls.len(), 2, "{}", call.id);
        assert_eq!(polls[1].at, polls[0].at + FIFTEEN_MINUTES, "{}", call.id);
    }
}

#[tokio::test(start_paused = true)]
async fn a_target_added_by_a_reload_polls_within_the_spread_not_a_whole_interval_later() {
    let mut harness = Harness::new();
    harness
        .scheduler
        .apply(vec![target("OLD", "t", FIFTEEN_MINUTES)], SPREAD);
    tokio::time::sleep(Duration::from_secs(120)).await;
    let added_at = Instant::now();
    harness.scheduler.apply(
        vec![
            target("OLD", "t", FIFTEEN_MINUTES),
            target("NEW", "t", FIFTEEN_MINUTES),
        ],
        SPREAD,
    );
    tokio::time::sleep(SPREAD).await;
    let polls = harness.script.calls_of("NEW");
    assert_eq!(polls.len(), 1);
    assert!(polls[0].at < added_at + SPREAD);
    assert_eq!(harness.script.calls_of("OLD").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_new_token_keeps_the_schedule_and_series_and_the_next_poll_sends_it() {
    let mut harness = Harness::new();
    harness
        .scheduler
        .apply(vec![target("W", "first", FIFTEEN_MINUTES)], SPREAD);
    tokio::time::sleep(SPREAD).await;
    let first = harness.script.calls_of("W");
    assert_eq!(first.len(), 1);

    harness
        .scheduler
        .apply(vec![target("W", "second", FIFTEEN_MINUTES)], SPREAD);
    assert!(harness.serves("W"), "the series stay through a rotation");
    assert_eq!(harness.state("W"), Some(State::Ok));

    tokio::time::sleep_until(first[0].at + FIFTEEN_MINUTES + Duration::from_millis(1)).await;
    let polls = harness.script.calls_of("W");
    assert_eq!(polls.len(), 2);
    assert_eq!(polls[1].at, first[0].at + FIFTEEN_MINUTES, "same schedule");
    assert_eq!(polls[1].token, "second");
}

#[tokio::test(start_paused = true)]
async fn a_target_disabled_by_an_invalid_token_polls_again_within_seconds_of_a_new_one() {
    let mut harness = Harness::disabled_by_a_revoked_token().await;

    let rotated_at = Instant::now();
    harness
        .scheduler
        .apply(vec![target("W", "fresh", FIFTEEN_MINUTES)], SPREAD);
    tokio::time::sleep(timing::RESUME_SPREAD).await;
    let polls = harness.script.calls_of("W");
    assert_eq!(polls.len(), 2);
    assert_eq!(polls[1].token, "fresh");
    assert!(polls[1].at < rotated_at + timing::RESUME_SPREAD);
    assert_eq!(harness.state("W"), Some(State::Ok));
    assert!(harness.serves("W"));
}

#[tokio::test(start_paused = true)]
async fn changed_settings_keep_the_old_series_until_the_first_poll_with_the_new_ones() {
    let mut harness = Harness::new();
    harness
        .scheduler
        .apply(vec![target("W", "t", FIFTEEN_MINUTES)], SPREAD);
    tokio::time::sleep(SPREAD).await;
    assert!(harness.body().contains("interval=\"900\""));

    let changed_at = Instant::now();
    let ten_minutes = Duration::from_secs(600);
    harness
        .scheduler
        .apply(vec![target("W", "t", ten_minutes)], SPREAD);
    let body = harness.body();
    assert!(body.contains("interval=\"900\""), "old series kept: {body}");
    assert_eq!(harness.state("W"), Some(State::Ok));

    tokio::time::sleep(SPREAD).await;
    let polls = harness.script.calls_of("W");
    assert_eq!(polls.len(), 2);
    assert!(
        polls[1].at < changed_at + SPREAD,
        "promptly, not an interval later"
    );
    let body = harness.body();
    assert!(body.contains("interval=\"600\""), "{body}");
    assert!(!body.contains("interval=\"900\""), "{body}");
}

#[tokio::test(start_paused = true)]
async fn a_removed_target_loses_its_series_at_once_and_a_poll_in_flight_never_publishes() {
    let mut harness = Harness::new();
    harness.scheduler.apply(
        vec![
            target("KEPT", "t", FIFTEEN_MINUTES),
            target("GONE", "t", FIFTEEN_MINUTES),
        ],
        SPREAD,
    );
    tokio::time::sleep(SPREAD).await;
    assert!(harness.serves("GONE"));

    // The second poll of GONE hangs until the gate opens, which is after the removal.
    let gate = harness.script.gate("GONE");
    tokio::time::sleep(FIFTEEN_MINUTES).await;
    harness
        .scheduler
        .apply(vec![target("KEPT", "t", FIFTEEN_MINUTES)], SPREAD);
    assert!(!harness.serves("GONE"));
    assert!(!harness.body().contains("\"GONE\""), "{}", harness.body());
    gate.notify_waiters();
    tokio::task::yield_now().await;
    assert!(!harness.body().contains("\"GONE\""), "{}", harness.body());
    assert!(harness.status.get(&key("GONE")).is_none());
    assert!(harness.serves("KEPT"));
}

#[tokio::test(start_paused = true)]
async fn a_new_app_secret_makes_every_disabled_target_try_again_within_seconds() {
    let mut harness = Harness::disabled_by_a_revoked_token().await;

    // The token is the same; the proof signed with the app secret is not.
    let changed_at = Instant::now();
    harness.scheduler.credentials_changed();
    tokio::time::sleep(timing::RESUME_SPREAD).await;
    let polls = harness.script.calls_of("W");
    assert_eq!(polls.len(), 2);
    assert!(polls[1].at < changed_at + timing::RESUME_SPREAD);
}

#[tokio::test(start_paused = true)]
async fn pruning_keeps_the_limiter_state_of_tokens_used_outside_the_targets() {
    let mut harness = Harness::new();
    let discovery_token = AccessToken::new("discovery-token");
    let usage = crate::graph::usage::Usage {
        readings: vec![crate::graph::usage::UsageReading {
            scope: "app",
            id: String::new(),
            kind: String::new(),
            metric: "call_count",
            percent: 50.0,
        }],
        ..Default::default()
    };
    let limiter = harness.scheduler.context.limiter.clone();
    limiter.observe(discovery_token.id(), "me", &usage);
    harness.scheduler.set_other_tokens(&[&discovery_token]);
    harness.scheduler.prune_limiter();
    assert_eq!(limiter.sizes().0, 1, "discovery's token is in use");
    // Positive control: once nothing uses it, pruning drops it.
    harness.scheduler.set_other_tokens(&[]);
    harness.scheduler.prune_limiter();
    assert_eq!(limiter.sizes().0, 0);
}

/// The polling settings of a config that sets none.
fn default_polling() -> crate::config::PollingConfig {
    crate::config::from_yaml(
        "graph_api: {access_token: t}\npages: [{id: \"1\"}]\n",
        "test.yaml",
        &|_: &str| None,
        std::path::Path::new("/"),
    )
    .expect("a valid config")
    .polling
}

#[test]
fn polls_in_flight_keep_the_requests_in_flight_fed() {
    let mut polling = default_polling();
    // 8 requests of up to 50 calls each, twice over.
    assert_eq!(super::polls_in_flight(&polling), 800);
    polling.batch = false;
    assert_eq!(super::polls_in_flight(&polling), 16);
}

/// Three targets due at once whose polls wait for their gates, with one request in flight and
/// so two poll slots: the third waits for a slot.
fn three_gated_polls_with_two_slots() -> (Harness, Vec<Arc<Notify>>) {
    let mut polling = default_polling();
    polling.batch = false;
    polling.max_concurrent_requests = 1;
    let mut harness = Harness::with_polling(&polling);
    let gates: Vec<Arc<Notify>> = ["G1", "G2", "G3"]
        .iter()
        .map(|id| harness.script.gate(id))
        .collect();
    let targets = ["G1", "G2", "G3"]
        .iter()
        .map(|id| target(id, "t", FIFTEEN_MINUTES))
        .collect();
    harness.scheduler.apply(targets, Duration::ZERO);
    (harness, gates)
}

#[tokio::test(start_paused = true)]
async fn polls_beyond_the_bound_wait_for_a_running_one_to_finish() {
    let (harness, gates) = three_gated_polls_with_two_slots();
    let started = |harness: &Harness| {
        harness
            .script
            .started
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        started(&harness),
        2,
        "two polls at once with one request in flight"
    );
    for gate in &gates {
        gate.notify_one();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(started(&harness), 3, "the third once one of them finished");
    assert_eq!(harness.script.calls().len(), 3);
}

/// The `_sum` of the histogram `name` for WhatsApp accounts, from the exporter's own metrics.
fn histogram_sum(harness: &Harness, name: &str) -> f64 {
    let text = String::from_utf8(harness.metrics.encode().expect("encode")).expect("utf-8");
    let prefix =
        format!("meta_messaging_exporter_{name}_sum{{kind=\"whatsapp_business_account\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test(start_paused = true)]
async fn poll_duration_is_the_time_a_poll_spent_and_the_wait_for_a_slot_is_counted_apart() {
    let (harness, gates) = three_gated_polls_with_two_slots();
    // Two polls hold the two slots for 10 s; the third waits for them, then answers at once
    // (its gate was opened while it queued).
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(harness.script.calls().is_empty());
    for gate in &gates {
        gate.notify_one();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(harness.script.calls().len(), 3);
    let durations = histogram_sum(&harness, "poll_duration_seconds");
    let queue = histogram_sum(&harness, "poll_queue_seconds");
    assert!((queue - 10.0).abs() < 0.01, "one poll queued 10 s: {queue}");
    assert!(
        (durations - 20.0).abs() < 0.01,
        "two polls of 10 s and one that answered at once: {durations}"
    );
}

//! Staying inside Meta's rate limits: usage tracking, pauses after throttling, call budgets.
//!
//! The [`RateLimiter`] is shared by every target. The Graph API client feeds it the
//! rate-limit headers of every response ([`RateLimiter::observe`]) and every throttling error
//! ([`RateLimiter::throttled`]), and asks it before each request ([`RateLimiter::admit`]);
//! the scheduler asks it how far to push a target's next poll ([`RateLimiter::stretch`],
//! [`RateLimiter::pause_remaining`]).
//!
//! State is kept per scope, because Meta throttles per scope: per token (the app and user
//! limits, codes 4, 17, 341), per business object (Page and business use cases, codes 32, 613,
//! 80001...; the object ids come from `X-Business-Use-Case-Usage`), and per Graph object (ads
//! and WhatsApp throttles, policy blocks). A throttle pauses exactly the targets in its scope.
//! Above a usage threshold the intervals of targets in that scope stretch, so the exporter
//! slows down before Meta has to stop it. Tokens are identified by their whole digest
//! ([`TokenId`]), never by the token itself; only the `app` usage series show its short label.
//!
//! State and the `rate_limit_usage_percent` series do not outlive what they describe:
//! [`RateLimiter::prune`] drops tokens and objects no longer configured, and business objects
//! and usage series not reported for a day, so their number is bounded by the configured
//! targets and the businesses Meta reported in the last day.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::time::Instant;

use super::solo::SoloTargets;
use super::usage::Usage;
use super::ApiError;
use crate::clock::{Clock, SystemClock};
use crate::config::RateLimitConfig;
use crate::secret::TokenId;
use crate::self_metrics::ExporterMetrics;

/// Why a request may not go out now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paused {
    /// Which scope is paused: `token`, `business_use_case`, `object` or `budget`.
    pub scope: &'static str,
    /// How long until it may.
    pub remaining: Duration,
}

#[derive(Default)]
struct Pause {
    until: Option<Instant>,
    consecutive: u32,
}

impl Pause {
    fn remaining(&self, now: Instant) -> Option<Duration> {
        self.until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }
}

#[derive(Default)]
struct TokenState {
    usage_percent: f64,
    pause: Pause,
    /// Start times of the calls in the last hour, for the call budget.
    calls: VecDeque<Instant>,
}

struct BusinessState {
    usage_percent: f64,
    pause: Pause,
    /// When Meta last named this business object in a header.
    seen: Instant,
}

impl Default for BusinessState {
    fn default() -> Self {
        Self {
            usage_percent: 0.0,
            pause: Pause::default(),
            seen: Instant::now(),
        }
    }
}

/// The labels of one `rate_limit_usage_percent` series: scope, id, type, metric.
type SeriesLabels = (&'static str, String, String, &'static str);

#[derive(Default)]
struct ObjectState {
    businesses: Vec<String>,
    pause: Pause,
    /// Start times of the WhatsApp Business Management calls for this WABA in the last hour,
    /// for `rate_limits.whatsapp_calls_per_hour`.
    whatsapp_calls: VecDeque<Instant>,
}

#[derive(Default)]
struct State {
    tokens: HashMap<TokenId, TokenState>,
    businesses: HashMap<String, BusinessState>,
    objects: HashMap<String, ObjectState>,
    /// Every usage series set, with when it was last set.
    series: HashMap<SeriesLabels, Instant>,
}

/// Shared rate-limit state of all targets.
pub struct RateLimiter {
    config: Mutex<RateLimitConfig>,
    state: Mutex<State>,
    metrics: ExporterMetrics,
    /// Wall clock, for throttles that end on the hour.
    clock: Arc<dyn Clock>,
    /// Objects that poll outside batch calls; here so they outlive a rebuilt client and are
    /// pruned with the rest of the objects' state.
    solo: SoloTargets,
}

const HOUR: Duration = Duration::from_secs(3600);
/// How long a business object or usage series Meta stopped reporting is kept.
pub const UNSEEN_FOR: Duration = Duration::from_secs(24 * 3600);

impl RateLimiter {
    /// A limiter with no history.
    pub fn new(config: RateLimitConfig, metrics: ExporterMetrics) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Self {
            config: Mutex::new(config),
            state: Mutex::new(State::default()),
            solo: SoloTargets::new(metrics.target_solo.clone(), clock.clone()),
            metrics,
            clock,
        }
    }

    /// The wall clock the limiter reads, shared with the client for what happens on the
    /// calendar (a warning logged once a day).
    pub(crate) fn wall_clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// The same limiter reading wall-clock time from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.solo = SoloTargets::new(self.metrics.target_solo.clone(), clock.clone());
        self.clock = clock;
        self
    }

    /// The objects that poll outside batch calls.
    pub fn solo(&self) -> &SoloTargets {
        &self.solo
    }

    /// A limiter with the default settings and `budget` calls per hour per token, for tests.
    #[cfg(test)]
    pub(crate) fn for_tests(budget: Option<u32>) -> Self {
        Self::new(
            RateLimitConfig {
                slowdown_above_percent: 80.0,
                max_interval_stretch: 4.0,
                throttle_initial_backoff: Duration::from_secs(60),
                throttle_max_backoff: Duration::from_secs(3600),
                calls_per_hour_per_token: budget,
                whatsapp_calls_per_hour: 150,
            },
            ExporterMetrics::new().expect("metrics"),
        )
    }

    /// Takes new settings on a config reload; pauses and usage already known are kept, so a
    /// reload never lets a throttled scope call again early.
    pub fn set_config(&self, config: RateLimitConfig) {
        *self
            .config
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = config;
    }

    fn config(&self) -> RateLimitConfig {
        self.config
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a request for `object` with `token` may go out now; if so it is counted
    /// against the token's call budget.
    pub fn admit(&self, token: &TokenId, object: &str) -> Result<(), Paused> {
        self.admit_call(token, object, false)
    }

    /// [`RateLimiter::admit`] for a WhatsApp Business Management call about the WABA
    /// `object`, which also counts against that WABA's `rate_limits.whatsapp_calls_per_hour`.
    /// Both budgets are checked and counted under one lock, so concurrent calls of one poll
    /// cannot together overshoot either.
    pub fn admit_whatsapp(&self, token: &TokenId, object: &str) -> Result<(), Paused> {
        self.admit_call(token, object, true)
    }

    fn admit_call(&self, token: &TokenId, object: &str, whatsapp: bool) -> Result<(), Paused> {
        let now = Instant::now();
        let config = self.config();
        let mut state = self.lock();
        if let Some(remaining) = pause_of(&state, token, object, now) {
            return Err(remaining);
        }
        // A sliding window of call times (not a token bucket): a bucket refilling at
        // budget/hour with burst `budget` lets up to twice the budget through in an hour
        // after an idle spell, and the point of a budget is a hard share of the quota.
        let token_calls = &mut state.tokens.entry(*token).or_default().calls;
        if let Some(remaining) = window_full(token_calls, config.calls_per_hour_per_token, now) {
            return Err(Paused {
                scope: "budget",
                remaining,
            });
        }
        if whatsapp {
            let waba_calls = &mut state
                .objects
                .entry(object.to_owned())
                .or_default()
                .whatsapp_calls;
            if let Some(remaining) =
                window_full(waba_calls, Some(config.whatsapp_calls_per_hour), now)
            {
                return Err(Paused {
                    scope: "whatsapp_budget",
                    remaining,
                });
            }
            waba_calls.push_back(now);
        }
        state.tokens.entry(*token).or_default().calls.push_back(now);
        Ok(())
    }

    /// The earliest a WABA's next poll may start so that its calls stay under
    /// `rate_limits.whatsapp_calls_per_hour`, given the poll that started at `since`: its calls
    /// at the budget's pace after `since`, and no sooner than the hour window has room for as
    /// many calls again. `since` itself for an object without WhatsApp calls.
    pub fn whatsapp_next_start(&self, object: &str, since: Instant) -> Instant {
        let budget = self.config().whatsapp_calls_per_hour.max(1) as usize;
        let now = Instant::now();
        let state = self.lock();
        let Some(calls) = state.objects.get(object).map(|o| &o.whatsapp_calls) else {
            return since;
        };
        let last_poll = calls.iter().filter(|at| **at >= since).count();
        let paced = since + HOUR.mul_f64(last_poll as f64 / budget as f64);
        let in_window: Vec<Instant> = calls
            .iter()
            .copied()
            .filter(|at| now.duration_since(*at) < HOUR)
            .collect();
        // Room for `last_poll` more calls once the oldest `excess` have left the window.
        let excess = (in_window.len() + last_poll).saturating_sub(budget);
        let roomy = match excess {
            0 => since,
            excess => in_window
                .get(excess - 1)
                .map_or(since, |oldest| *oldest + HOUR),
        };
        paced.max(roomy)
    }

    /// Records the rate-limit headers of a response for `object` made with `token`.
    pub fn observe(&self, token: &TokenId, object: &str, usage: &Usage) {
        for header in &usage.malformed {
            self.metrics
                .usage_header_errors
                .with_label_values(&[header])
                .inc();
        }
        if usage.readings.is_empty() {
            return;
        }
        let now = Instant::now();
        let label = token.label();
        let mut state = self.lock();
        for reading in &usage.readings {
            let id = if reading.scope == "app" {
                label.as_str()
            } else {
                reading.id.as_str()
            };
            self.metrics.rate_limit_usage.set(
                [reading.scope, id, &reading.kind, reading.metric],
                reading.percent,
            );
            state.series.insert(
                (
                    reading.scope,
                    id.to_owned(),
                    reading.kind.clone(),
                    reading.metric,
                ),
                now,
            );
        }
        let app_peak = usage
            .readings
            .iter()
            .filter(|r| r.scope != "business_use_case")
            .map(|r| r.percent)
            .reduce(f64::max);
        if let Some(peak) = app_peak {
            state.tokens.entry(*token).or_default().usage_percent = peak;
        }
        let mut businesses: Vec<String> = Vec::new();
        for reading in usage
            .readings
            .iter()
            .filter(|r| r.scope == "business_use_case")
        {
            if !businesses.contains(&reading.id) {
                businesses.push(reading.id.clone());
                state
                    .businesses
                    .entry(reading.id.clone())
                    .or_default()
                    .usage_percent = 0.0;
            }
            let business = state.businesses.entry(reading.id.clone()).or_default();
            business.usage_percent = business.usage_percent.max(reading.percent);
            business.seen = now;
        }
        if !businesses.is_empty() {
            state
                .objects
                .entry(object.to_owned())
                .or_default()
                .businesses = businesses;
        }
    }

    /// Records a throttling error (or policy block) for `object` and returns how long the
    /// scope it applies to is paused.
    pub fn throttled(
        &self,
        token: &TokenId,
        object: &str,
        error: &ApiError,
        usage: &Usage,
    ) -> Duration {
        self.metrics
            .throttle_events
            .with_label_values(&[&error.code.to_string()])
            .inc();
        let now = Instant::now();
        let mut state = self.lock();
        let regain = usage.regain_access.iter().map(|(_, wait)| *wait).max();
        let scope = scope_of(error);

        let pause = match scope {
            Scope::Token => &mut state.tokens.entry(*token).or_default().pause,
            Scope::Business => {
                let mut ids: Vec<String> = usage
                    .regain_access
                    .iter()
                    .map(|(id, _)| id.clone())
                    .collect();
                ids.extend(usage.business_ids().map(str::to_owned));
                ids.dedup();
                if ids.is_empty() {
                    ids = state
                        .objects
                        .get(object)
                        .map(|o| o.businesses.clone())
                        .unwrap_or_default();
                }
                match ids.split_first() {
                    Some((first, rest)) => {
                        let wait = self.wait(
                            regain,
                            usage,
                            state
                                .businesses
                                .entry(first.clone())
                                .or_default()
                                .pause
                                .consecutive,
                            error,
                        );
                        for id in std::iter::once(first).chain(rest) {
                            let business = state.businesses.entry(id.clone()).or_default();
                            business.pause.until = Some(now + wait);
                            business.pause.consecutive += 1;
                            business.seen = now;
                        }
                        state
                            .objects
                            .entry(object.to_owned())
                            .or_default()
                            .businesses = ids;
                        return wait;
                    }
                    // Meta did not say which business object: pause just this one.
                    None => &mut state.objects.entry(object.to_owned()).or_default().pause,
                }
            }
            Scope::Object => &mut state.objects.entry(object.to_owned()).or_default().pause,
        };
        let wait = self.wait(regain, usage, pause.consecutive, error);
        pause.until = Some(now + wait);
        pause.consecutive += 1;
        wait
    }

    /// How long to wait after a throttle: Meta's estimate when it gives one, else
    /// `Retry-After`, else jittered exponential backoff per consecutive throttle, capped.
    fn wait(
        &self,
        regain: Option<Duration>,
        usage: &Usage,
        consecutive: u32,
        error: &ApiError,
    ) -> Duration {
        if let Some(regain) = regain {
            return regain;
        }
        if let Some(retry_after) = usage.retry_after {
            return retry_after;
        }
        if matches!(error.code, 80007 | 80008) {
            // WhatsApp account throttles reset on the hour.
            let into_hour = self.clock.now_unix().rem_euclid(3600) as u64;
            return Duration::from_secs(3600 - into_hour);
        }
        let config = self.config();
        ExponentialBuilder::default()
            .with_min_delay(config.throttle_initial_backoff)
            .with_max_delay(config.throttle_max_backoff)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(consecutive as usize)
            .unwrap_or(config.throttle_max_backoff)
            // backon adds jitter after applying its cap, so cap again.
            .min(config.throttle_max_backoff)
    }

    /// Forgets what no longer matters: tokens and objects not in the configured sets, and business objects and usage series Meta has not reported for
    /// [`UNSEEN_FOR`], unless a pause still holds. Their `rate_limit_usage_percent` series go
    /// with them, and so do solo marks of objects no longer configured. Called on every config
    /// change and periodically.
    pub fn prune(&self, tokens: &HashSet<TokenId>, objects: &HashSet<String>) {
        let now = Instant::now();
        // An `app` series is labelled with the short label, so it stays while any token in
        // use has that label.
        let in_use: HashSet<String> = tokens.iter().map(TokenId::label).collect();
        let mut state = self.lock();
        state.tokens.retain(|token, _| tokens.contains(token));
        state.objects.retain(|object, _| objects.contains(object));
        state.businesses.retain(|_, business| {
            now.duration_since(business.seen) < UNSEEN_FOR
                || business.pause.remaining(now).is_some()
        });
        let mut gone = Vec::new();
        state.series.retain(|labels, set_at| {
            let (scope, id, _, _) = labels;
            let keep = (*scope != "app" || in_use.contains(id))
                && now.duration_since(*set_at) < UNSEEN_FOR;
            if !keep {
                gone.push(labels.clone());
            }
            keep
        });
        drop(state);
        self.solo.retain(objects);
        for (scope, id, kind, metric) in gone {
            self.metrics
                .rate_limit_usage
                .remove([scope, &id, &kind, metric]);
        }
    }

    /// How many tokens, business objects, objects and usage series the limiter holds.
    #[cfg(test)]
    pub(crate) fn sizes(&self) -> (usize, usize, usize, usize) {
        let state = self.lock();
        (
            state.tokens.len(),
            state.businesses.len(),
            state.objects.len(),
            state.series.len(),
        )
    }

    /// A successful request: the scopes it passed through are no longer backing off.
    pub fn succeeded(&self, token: &TokenId, object: &str) {
        let mut state = self.lock();
        if let Some(token) = state.tokens.get_mut(token) {
            token.pause.consecutive = 0;
        }
        let businesses = state
            .objects
            .get(object)
            .map(|o| o.businesses.clone())
            .unwrap_or_default();
        if let Some(object) = state.objects.get_mut(object) {
            object.pause.consecutive = 0;
        }
        for id in businesses {
            if let Some(business) = state.businesses.get_mut(&id) {
                business.pause.consecutive = 0;
            }
        }
    }

    /// How long the longest pause over `object`'s scopes still runs, if any; a spent call
    /// budget counts as a pause until its oldest call leaves the hour window.
    pub fn pause_remaining(&self, token: &TokenId, object: &str) -> Option<Duration> {
        let now = Instant::now();
        let config = self.config();
        let budget = config.calls_per_hour_per_token;
        let state = self.lock();
        let paused = pause_of(&state, token, object, now).map(|paused| paused.remaining);
        let budget_wait = budget.and_then(|budget| {
            let calls = &state.tokens.get(token)?.calls;
            let in_window = calls
                .iter()
                .filter(|start| now.duration_since(**start) < HOUR)
                .count();
            if in_window < budget as usize {
                return None;
            }
            let oldest = calls
                .iter()
                .find(|start| now.duration_since(**start) < HOUR)?;
            Some((*oldest + HOUR).saturating_duration_since(now))
        });
        let whatsapp_budget = config.whatsapp_calls_per_hour as usize;
        let whatsapp_wait = state.objects.get(object).and_then(|o| {
            let in_window: Vec<&Instant> = o
                .whatsapp_calls
                .iter()
                .filter(|start| now.duration_since(**start) < HOUR)
                .collect();
            let oldest = in_window.first()?;
            (in_window.len() >= whatsapp_budget)
                .then(|| (**oldest + HOUR).saturating_duration_since(now))
        });
        paused.max(budget_wait).max(whatsapp_wait)
    }

    /// How much to add to `interval` because usage in `object`'s scopes is above the
    /// slowdown threshold: nothing below it, then linearly more up to
    /// `max_interval_stretch` times the interval at 100 %.
    pub fn stretch(&self, token: &TokenId, object: &str, interval: Duration) -> Duration {
        let usage = usage_of(&self.lock(), token, object);
        let config = self.config();
        let threshold = config.slowdown_above_percent;
        if usage <= threshold {
            return Duration::ZERO;
        }
        let over = ((usage - threshold) / (100.0 - threshold).max(1.0)).min(1.0);
        interval.mul_f64(over * (config.max_interval_stretch - 1.0))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Token,
    Business,
    Object,
}

/// Which scope a throttling error applies to, from Meta's error-code reference.
fn scope_of(error: &ApiError) -> Scope {
    match (error.code, error.error_subcode) {
        // Ads-insights throttles are per ad account, i.e. per campaign here.
        (_, Some(1504022 | 1504039)) => Scope::Object,
        (4 | 17 | 341, _) => Scope::Token,
        // WhatsApp Business Management throttles (80007, 80008) are per WABA: they pause that
        // account only, never the business's Pages or other accounts.
        (80007 | 80008, _) => Scope::Object,
        (32 | 613, _) | (80001..=80003 | 80005 | 80006 | 80009..=80014, _) => Scope::Business,
        _ => Scope::Object,
    }
}

/// Drops calls older than an hour from `calls` and, when `budget` calls remain, says how long
/// until the oldest leaves the window.
fn window_full(
    calls: &mut VecDeque<Instant>,
    budget: Option<u32>,
    now: Instant,
) -> Option<Duration> {
    while calls
        .front()
        .is_some_and(|start| now.duration_since(*start) >= HOUR)
    {
        calls.pop_front();
    }
    let budget = budget? as usize;
    if calls.len() < budget {
        return None;
    }
    let oldest = calls.front().copied().unwrap_or(now);
    Some((oldest + HOUR).saturating_duration_since(now))
}

fn pause_of(state: &State, token: &TokenId, object: &str, now: Instant) -> Option<Paused> {
    let mut longest: Option<Paused> = None;
    let mut consider = |scope: &'static str, remaining: Option<Duration>| {
        if let Some(remaining) = remaining {
            if longest.as_ref().is_none_or(|p| remaining > p.remaining) {
                longest = Some(Paused { scope, remaining });
            }
        }
    };
    consider(
        "token",
        state.tokens.get(token).and_then(|t| t.pause.remaining(now)),
    );
    if let Some(entry) = state.objects.get(object) {
        consider("object", entry.pause.remaining(now));
        for id in &entry.businesses {
            consider(
                "business_use_case",
                state
                    .businesses
                    .get(id)
                    .and_then(|b| b.pause.remaining(now)),
            );
        }
    }
    longest
}

fn usage_of(state: &State, token: &TokenId, object: &str) -> f64 {
    let token_usage = state.tokens.get(token).map_or(0.0, |t| t.usage_percent);
    let business_usage = state
        .objects
        .get(object)
        .into_iter()
        .flat_map(|o| o.businesses.iter())
        .filter_map(|id| state.businesses.get(id))
        .map(|b| b.usage_percent)
        .fold(0.0, f64::max);
    token_usage.max(business_usage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::usage::UsageReading;
    use crate::secret::{AccessToken, COLLIDING_TOKENS};

    /// The id of the token `name`.
    fn id(name: &str) -> TokenId {
        *AccessToken::new(name).id()
    }

    fn limiter(budget: Option<u32>) -> RateLimiter {
        RateLimiter::for_tests(budget)
    }

    fn app_usage(percent: f64) -> Usage {
        Usage {
            readings: vec![UsageReading {
                scope: "app",
                id: String::new(),
                kind: String::new(),
                metric: "call_count",
                percent,
            }],
            ..Usage::default()
        }
    }

    fn error(code: i64) -> ApiError {
        ApiError {
            message: String::new(),
            kind: None,
            code,
            error_subcode: None,
            is_transient: None,
            fbtrace_id: None,
        }
    }

    fn business(id: &str, percent: f64, regain_minutes: Option<u64>) -> Usage {
        Usage {
            readings: vec![UsageReading {
                scope: "business_use_case",
                id: id.into(),
                kind: "pages".into(),
                metric: "call_count",
                percent,
            }],
            regain_access: regain_minutes
                .map(|m| (id.to_owned(), Duration::from_secs(m * 60)))
                .into_iter()
                .collect(),
            ..Usage::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_business_throttle_pauses_only_objects_of_that_business_for_the_estimated_time() {
        let limiter = limiter(None);
        limiter.observe(&id("t"), "page1", &business("biz1", 10.0, None));
        limiter.observe(&id("t"), "page2", &business("biz1", 10.0, None));
        limiter.observe(&id("t"), "page3", &business("biz2", 10.0, None));
        let wait = limiter.throttled(
            &id("t"),
            "page1",
            &error(32),
            &business("biz1", 100.0, Some(7)),
        );
        assert_eq!(wait, Duration::from_secs(420));
        assert_eq!(
            limiter.admit(&id("t"), "page2").map_err(|p| p.scope),
            Err("business_use_case")
        );
        assert!(limiter.admit(&id("t"), "page3").is_ok());
        tokio::time::advance(Duration::from_secs(421)).await;
        assert!(limiter.admit(&id("t"), "page1").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn an_app_throttle_pauses_every_object_of_that_token_only() {
        let limiter = limiter(None);
        let wait = limiter.throttled(&id("t1"), "a", &error(4), &Usage::default());
        assert!(
            wait >= Duration::from_secs(30) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
        assert_eq!(
            limiter.admit(&id("t1"), "b").map_err(|p| p.scope),
            Err("token")
        );
        assert!(limiter.admit(&id("t2"), "b").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn repeated_throttles_back_off_exponentially_up_to_the_cap() {
        let limiter = limiter(None);
        let waits: Vec<Duration> = (0..10)
            .map(|_| limiter.throttled(&id("t"), "o", &error(80000), &Usage::default()))
            .collect();
        assert!(waits[3] > waits[0], "{waits:?}");
        assert!(
            waits.iter().all(|w| *w <= Duration::from_secs(3600)),
            "{waits:?}"
        );
        limiter.succeeded(&id("t"), "o");
        let after_success = limiter.throttled(&id("t"), "o", &error(80000), &Usage::default());
        assert!(
            after_success <= Duration::from_secs(120),
            "{after_success:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_whatsapp_account_throttle_lasts_until_the_next_hour_on_the_wall_clock() {
        // 10:45:00 UTC on the injected clock: the hourly WhatsApp limit resets in 15 minutes.
        let clock = Arc::new(crate::clock::FixedClock::new(
            1_790_000_000 - 1_790_000_000 % 3600 + 2700,
        ));
        let limiter = limiter(None).with_clock(clock.clone());
        assert_eq!(
            limiter.throttled(&id("t"), "waba", &error(80007), &Usage::default()),
            Duration::from_secs(900)
        );
        assert_eq!(
            limiter.admit(&id("t"), "waba").map_err(|p| p.scope),
            Err("object")
        );
        assert!(limiter.admit(&id("t"), "other").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_when_meta_gives_no_estimate() {
        let limiter = limiter(None);
        let usage = Usage {
            retry_after: Some(Duration::from_secs(90)),
            ..Usage::default()
        };
        assert_eq!(
            limiter.throttled(&id("t"), "o", &error(613), &usage),
            Duration::from_secs(90)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn high_usage_stretches_intervals_linearly_up_to_the_maximum() {
        let limiter = limiter(None);
        let interval = Duration::from_secs(100);
        assert_eq!(limiter.stretch(&id("t"), "o", interval), Duration::ZERO);
        limiter.observe(&id("t"), "o", &app_usage(90.0));
        // Halfway from 80 % to 100 %: halfway from 1x to 4x.
        assert_eq!(
            limiter.stretch(&id("t"), "o", interval),
            Duration::from_secs(150)
        );
        limiter.observe(&id("t"), "o", &app_usage(130.0));
        assert_eq!(
            limiter.stretch(&id("t"), "o", interval),
            Duration::from_secs(300)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_call_budget_is_never_exceeded_in_any_hour() {
        let limiter = limiter(Some(3));
        for _ in 0..3 {
            assert!(limiter.admit(&id("t"), "o").is_ok());
            tokio::time::advance(Duration::from_secs(600)).await;
        }
        let paused = limiter.admit(&id("t"), "o").expect_err("budget spent");
        assert_eq!(paused.scope, "budget");
        // The first call was 30 minutes ago: a slot frees 30 minutes from now.
        assert_eq!(paused.remaining, Duration::from_secs(1800));
        assert_eq!(
            limiter.pause_remaining(&id("t"), "o"),
            Some(Duration::from_secs(1800))
        );
        tokio::time::advance(Duration::from_secs(1800)).await;
        assert_eq!(limiter.pause_remaining(&id("t"), "o"), None);
        assert!(limiter.admit(&id("t"), "o").is_ok());
        assert!(
            limiter.admit(&id("t2"), "o").is_ok(),
            "budgets are per token"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn pruning_drops_unconfigured_tokens_and_objects_and_businesses_unseen_for_a_day() {
        let limiter = limiter(None);
        limiter.observe(&id("kept"), "page1", &app_usage(10.0));
        limiter.observe(&id("gone"), "page2", &app_usage(20.0));
        limiter.observe(&id("kept"), "page1", &business("biz1", 30.0, None));
        limiter.observe(&id("kept"), "page3", &business("biz2", 40.0, None));
        let series = |limiter: &RateLimiter| {
            let text = String::from_utf8(limiter.metrics.encode().expect("encode")).expect("utf-8");
            text.lines()
                .filter(|line| {
                    line.starts_with("meta_messaging_exporter_rate_limit_usage_percent{")
                })
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(series(&limiter).len(), 4);

        let tokens: HashSet<TokenId> = [id("kept")].into();
        let objects: HashSet<String> = ["page1".to_owned(), "page3".to_owned()].into();
        limiter.prune(&tokens, &objects);
        assert_eq!(limiter.sizes(), (1, 2, 2, 3));
        assert!(
            series(&limiter)
                .iter()
                .all(|line| !line.contains(&id("gone").label())),
            "{:?}",
            series(&limiter)
        );

        // biz2 is reported again after 23 hours, biz1 is not: a day on, only biz2 is left.
        tokio::time::advance(Duration::from_secs(23 * 3600)).await;
        limiter.observe(&id("kept"), "page3", &business("biz2", 45.0, None));
        tokio::time::advance(Duration::from_secs(3600)).await;
        limiter.prune(&tokens, &objects);
        let (_, businesses, _, usage_series) = limiter.sizes();
        assert_eq!((businesses, usage_series), (1, 1));
        let left = series(&limiter);
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(left[0].contains("biz2"), "{left:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_of_one_token_never_pauses_another_with_the_same_label() {
        let limiter = limiter(None);
        let (a, b) = (id(COLLIDING_TOKENS.0), id(COLLIDING_TOKENS.1));
        assert_eq!(a.label(), b.label());
        limiter.throttled(&a, "page-a", &error(4), &Usage::default());
        assert_eq!(
            limiter.admit(&a, "page-a").map_err(|p| p.scope),
            Err("token")
        );
        assert!(limiter.admit(&b, "page-b").is_ok());
        assert_eq!(limiter.pause_remaining(&b, "page-b"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_of_one_token_is_never_spent_by_another_with_the_same_label() {
        let limiter = limiter(Some(2));
        let (a, b) = (id(COLLIDING_TOKENS.0), id(COLLIDING_TOKENS.1));
        for _ in 0..2 {
            assert!(limiter.admit_whatsapp(&a, "waba-a").is_ok());
        }
        assert_eq!(
            limiter.admit_whatsapp(&a, "waba-a").map_err(|p| p.scope),
            Err("budget")
        );
        assert!(limiter.admit_whatsapp(&b, "waba-b").is_ok());
        assert!(limiter.admit_whatsapp(&b, "waba-b").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn pruning_keeps_a_token_in_use_and_drops_its_namesake() {
        let limiter = limiter(None);
        let (a, b) = (id(COLLIDING_TOKENS.0), id(COLLIDING_TOKENS.1));
        limiter.observe(&a, "page-a", &app_usage(10.0));
        limiter.observe(&b, "page-b", &app_usage(20.0));
        assert_eq!(limiter.sizes().0, 2, "two tokens, not one");
        limiter.prune(&[a].into(), &["page-a".to_owned()].into());
        assert_eq!(limiter.sizes().0, 1);
    }
}

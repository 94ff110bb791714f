//! The `polling` and `rate_limits` sections: concurrency, retries and their backoff,
//! staleness, the start-up spread, retrying dropped metrics, batch calls and their deadline,
//! and how far to slow down for Meta's rate limits.

use super::*;

const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 8;
const MAX_CONCURRENT_REQUESTS: usize = 1000;
const DEFAULT_MAX_RETRIES: u32 = 3;
const MAX_RETRIES: u32 = 10;
const DEFAULT_RETRY_INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const DEFAULT_RETRY_MAX_BACKOFF: Duration = Duration::from_secs(60);
const DEFAULT_STALE_AFTER_INTERVALS: u32 = 3;
/// Long enough that a restart of a few hundred targets stays within
/// `max_concurrent_requests` and the rate limiter; short enough that dashboards fill within
/// a minute of a deploy.
const DEFAULT_STARTUP_SPREAD: Duration = Duration::from_secs(30);
/// Long enough for the polls that fall due together (a start-up spread, a shared interval) to
/// meet in one batch; short beside any interval, since each request waits up to this long.
const DEFAULT_BATCH_WINDOW: Duration = Duration::from_secs(1);
/// A request never waits longer than this for company: beyond it the wait costs more
/// freshness than the saved round trips are worth.
const MAX_BATCH_WINDOW: Duration = Duration::from_secs(10);
/// Well below the 30s single-call default: a batch carries up to 50 targets, and each of them
/// waits this long when one entry hangs the whole HTTP request.
const DEFAULT_BATCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Far above any real target (a WhatsApp account priced by country, category and type is a
/// few thousand series), far below what a hostile or broken answer could make: an object of
/// 200,000 keys is 200,000 series.
const DEFAULT_MAX_SERIES_PER_TARGET: usize = 10_000;
const DEFAULT_MAX_SERIES_PER_METRIC: usize = 5_000;
const MAX_SERIES_LIMIT: usize = 1_000_000;
const DEFAULT_RETRY_DROPPED_AFTER: Duration = Duration::from_secs(DAY_SECS);
const MIN_RETRY_DROPPED_AFTER: Duration = Duration::from_secs(60);
/// Meta advises slowing down well before 100 %; 80 % leaves room for other users of the app.
const DEFAULT_SLOWDOWN_ABOVE_PERCENT: f64 = 80.0;
const DEFAULT_MAX_INTERVAL_STRETCH: f64 = 4.0;
const DEFAULT_THROTTLE_INITIAL_BACKOFF: Duration = Duration::from_secs(60);
/// Meta allows about 200 WhatsApp Business Management calls an hour per WABA; 150 leaves room
/// for the business's own tools on the same app.
const DEFAULT_WHATSAPP_CALLS_PER_HOUR: u32 = 150;
const DEFAULT_THROTTLE_MAX_BACKOFF: Duration = Duration::from_secs(60 * 60);

impl Checker<'_> {
    /// `request_timeout` is `graph_api.request_timeout` when that is valid: a batch's deadline
    /// must be below it, or a hanging batch would cost its entries more than going alone.
    pub(super) fn polling(
        &mut self,
        raw: RawPolling,
        request_timeout: Option<Duration>,
    ) -> Checked<PollingConfig> {
        let max_concurrent_requests = self.number(
            "polling.max_concurrent_requests",
            raw.max_concurrent_requests,
            DEFAULT_MAX_CONCURRENT_REQUESTS,
            |requests| (1..=MAX_CONCURRENT_REQUESTS).contains(&requests),
            &format!("must be between 1 and {MAX_CONCURRENT_REQUESTS}"),
        );
        let max_retries = self.number(
            "polling.max_retries",
            raw.max_retries,
            DEFAULT_MAX_RETRIES,
            |retries| retries <= MAX_RETRIES,
            &format!("must be at most {MAX_RETRIES}"),
        );
        let (retry_initial_backoff, retry_max_backoff) = self.backoff_pair(
            (
                "polling.retry_initial_backoff",
                raw.retry_initial_backoff.as_deref(),
                DEFAULT_RETRY_INITIAL_BACKOFF,
            ),
            (
                "polling.retry_max_backoff",
                raw.retry_max_backoff.as_deref(),
                DEFAULT_RETRY_MAX_BACKOFF,
            ),
        );
        let stale_after_intervals = self.number(
            "polling.stale_after_intervals",
            raw.stale_after_intervals,
            DEFAULT_STALE_AFTER_INTERVALS,
            |intervals| intervals >= 1,
            "must be at least 1",
        );
        let startup_spread = self
            .duration("polling.startup_spread", raw.startup_spread.as_deref())
            .map(|spread| spread.unwrap_or(DEFAULT_STARTUP_SPREAD));
        let retry_dropped_after = self
            .duration(
                "polling.retry_dropped_after",
                raw.retry_dropped_after.as_deref(),
            )
            .and_then(|after| match after {
                None => Ok(DEFAULT_RETRY_DROPPED_AFTER),
                Some(after) if after >= MIN_RETRY_DROPPED_AFTER => Ok(after),
                Some(after) => Err(self.problem(
                    "polling.retry_dropped_after",
                    format!(
                        "must be at least {}, not {}: a rejected metric asked for more often only repeats the error",
                        human(MIN_RETRY_DROPPED_AFTER),
                        human(after)
                    ),
                )),
            });
        let batch_window = self
            .positive_duration(
                "polling.batch_window",
                raw.batch_window.as_deref(),
                DEFAULT_BATCH_WINDOW,
            )
            .and_then(|window| {
                if window <= MAX_BATCH_WINDOW {
                    Ok(window)
                } else {
                    Err(self.problem(
                        "polling.batch_window",
                        format!(
                            "must be at most {}, not {}: every batched request waits up to this long",
                            human(MAX_BATCH_WINDOW),
                            human(window)
                        ),
                    ))
                }
            });
        let batch_timeout = self.batch_timeout(raw.batch_timeout.as_deref(), request_timeout);
        let series_rule = format!("must be between 1 and {MAX_SERIES_LIMIT}");
        let max_series_per_target = self.number(
            "polling.max_series_per_target",
            raw.max_series_per_target,
            DEFAULT_MAX_SERIES_PER_TARGET,
            |limit| (1..=MAX_SERIES_LIMIT).contains(&limit),
            &series_rule,
        );
        let max_series_per_metric = self.number(
            "polling.max_series_per_metric",
            raw.max_series_per_metric,
            DEFAULT_MAX_SERIES_PER_METRIC,
            |limit| (1..=MAX_SERIES_LIMIT).contains(&limit),
            &series_rule,
        );
        Ok(PollingConfig {
            max_concurrent_requests: max_concurrent_requests?,
            max_retries: max_retries?,
            retry_initial_backoff: retry_initial_backoff?,
            retry_max_backoff: retry_max_backoff?,
            stale_after_intervals: stale_after_intervals?,
            startup_spread: startup_spread?,
            retry_dropped_after: retry_dropped_after?,
            batch: raw.batch.unwrap_or(true),
            batch_window: batch_window?,
            batch_timeout: batch_timeout?,
            max_series_per_target: max_series_per_target?,
            max_series_per_metric: max_series_per_metric?,
        })
    }

    /// `polling.batch_timeout`: longer than 0 and below `request_timeout`. Left out, it is
    /// [`DEFAULT_BATCH_TIMEOUT`], or half of `request_timeout` when that is 10s or less, so a
    /// config that shortens only the single-call timeout stays valid.
    fn batch_timeout(
        &mut self,
        raw: Option<&str>,
        request_timeout: Option<Duration>,
    ) -> Checked<Duration> {
        const KEY: &str = "polling.batch_timeout";
        let default = match request_timeout {
            Some(single) if single <= DEFAULT_BATCH_TIMEOUT => single / 2,
            _ => DEFAULT_BATCH_TIMEOUT,
        };
        let timeout = self.positive_duration(KEY, raw, default)?;
        match request_timeout {
            Some(single) if timeout >= single => Err(self.problem(
                KEY,
                format!(
                    "must be below graph_api.request_timeout ({}), not {}: past it a batch's entries go again alone, which must cost less than a single call's timeout",
                    human(single),
                    human(timeout)
                ),
            )),
            _ => Ok(timeout),
        }
    }

    /// An initial backoff and its cap, each `(key, raw value, default)`: the initial one must
    /// be longer than 0 and the cap at least the initial one.
    fn backoff_pair(
        &mut self,
        (initial_key, initial_raw, initial_default): (&str, Option<&str>, Duration),
        (max_key, max_raw, max_default): (&str, Option<&str>, Duration),
    ) -> (Checked<Duration>, Checked<Duration>) {
        let initial = self.positive_duration(initial_key, initial_raw, initial_default);
        let max = self
            .duration(max_key, max_raw)
            .map(|backoff| backoff.unwrap_or(max_default));
        let max = match (initial, max) {
            (Ok(initial), Ok(max)) if max < initial => {
                let initial_name = initial_key.rsplit('.').next().unwrap_or(initial_key);
                Err(self.problem(
                    max_key,
                    format!(
                        "must be at least {initial_name} ({}), not {}",
                        human(initial),
                        human(max)
                    ),
                ))
            }
            (_, max) => max,
        };
        (initial, max)
    }

    pub(super) fn rate_limits(&mut self, raw: RawRateLimits) -> Checked<RateLimitConfig> {
        let slowdown_above_percent = self.number(
            "rate_limits.slowdown_above_percent",
            raw.slowdown_above_percent,
            DEFAULT_SLOWDOWN_ABOVE_PERCENT,
            |percent| (1.0..=100.0).contains(&percent),
            "must be a percentage between 1 and 100",
        );
        let max_interval_stretch = self.number(
            "rate_limits.max_interval_stretch",
            raw.max_interval_stretch,
            DEFAULT_MAX_INTERVAL_STRETCH,
            |stretch| (1.0..=100.0).contains(&stretch),
            "must be between 1 and 100",
        );
        let (throttle_initial_backoff, throttle_max_backoff) = self.backoff_pair(
            (
                "rate_limits.throttle_initial_backoff",
                raw.throttle_initial_backoff.as_deref(),
                DEFAULT_THROTTLE_INITIAL_BACKOFF,
            ),
            (
                "rate_limits.throttle_max_backoff",
                raw.throttle_max_backoff.as_deref(),
                DEFAULT_THROTTLE_MAX_BACKOFF,
            ),
        );
        let calls_per_hour_per_token = match raw.calls_per_hour_per_token {
            Some(0) => Err(self.problem(
                "rate_limits.calls_per_hour_per_token",
                "must be at least 1 (leave it out for no budget)",
            )),
            budget => Ok(budget),
        };
        let whatsapp_calls_per_hour = match raw.whatsapp_calls_per_hour {
            Some(0) => Err(self.problem(
                "rate_limits.whatsapp_calls_per_hour",
                "must be at least 1; Meta allows about 200 an hour per WABA",
            )),
            budget => Ok(budget.unwrap_or(DEFAULT_WHATSAPP_CALLS_PER_HOUR)),
        };
        Ok(RateLimitConfig {
            slowdown_above_percent: slowdown_above_percent?,
            max_interval_stretch: max_interval_stretch?,
            throttle_initial_backoff: throttle_initial_backoff?,
            throttle_max_backoff: throttle_max_backoff?,
            calls_per_hour_per_token: calls_per_hour_per_token?,
            whatsapp_calls_per_hour: whatsapp_calls_per_hour?,
        })
    }
}

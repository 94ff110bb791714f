//! Validation: from the raw YAML structs to [`Config`], collecting every problem with its key.

use super::*;

const DEFAULT_BASE_URL: &str = "https://graph.facebook.com";
const DEFAULT_VERSION: &str = "v23.0";
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// Below this even an error response from the Graph API would not fit.
const MIN_RESPONSE_BYTES: usize = 1024;

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
const DEFAULT_RETRY_DROPPED_AFTER: Duration = Duration::from_secs(DAY_SECS);
const MIN_RETRY_DROPPED_AFTER: Duration = Duration::from_secs(60);
/// Meta advises slowing down well before 100 %; 80 % leaves room for other users of the app.
const DEFAULT_SLOWDOWN_ABOVE_PERCENT: f64 = 80.0;
const DEFAULT_MAX_INTERVAL_STRETCH: f64 = 4.0;
const DEFAULT_THROTTLE_INITIAL_BACKOFF: Duration = Duration::from_secs(60);
const DEFAULT_THROTTLE_MAX_BACKOFF: Duration = Duration::from_secs(60 * 60);

const DEFAULT_PAGE_INTERVAL: Duration = Duration::from_secs(15 * 60);
const DEFAULT_CAMPAIGN_INTERVAL: Duration = Duration::from_secs(60 * 60);
const DEFAULT_WABA_INTERVAL: Duration = Duration::from_secs(15 * 60);
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Intervals below this draw a warning: Meta rate-limits Graph API calls, and insights change
/// far more slowly than once a minute.
const SHORT_INTERVAL: Duration = Duration::from_secs(60);
/// Upper bound for every duration, so that `Instant + duration` in the scheduler and the HTTP
/// client cannot overflow whatever the file says.
const MAX_DURATION: Duration = Duration::from_secs(365 * DAY_SECS);

const DEFAULT_PAGE_PERIOD: Period = Period::Day;
/// `total_over_range` needs `since`/`until`; 28 days matches the `days_28` period.
const DEFAULT_TOTAL_OVER_RANGE_WINDOW: Duration = Duration::from_secs(28 * DAY_SECS);
/// The longest `since`..`until` range Page insights accept.
const MAX_WINDOW: Duration = Duration::from_secs(90 * DAY_SECS);
const DEFAULT_GRANULARITY: Granularity = Granularity::Day;
/// Labels the exporter sets on every Page metric, so a breakdown may not take their names.
const RESERVED_PAGE_LABELS: &[&str] = &["page_id", "period"];
/// A token is a few hundred bytes; anything much larger is the wrong file.
const MAX_TOKEN_FILE_BYTES: usize = 64 * 1024;

pub(super) const DAY_SECS: u64 = 24 * 60 * 60;
const ALL_PERIODS: [Period; 5] = [
    Period::Day,
    Period::Week,
    Period::Month,
    Period::Days28,
    Period::TotalOverRange,
];
const ALL_GRANULARITIES: [Granularity; 3] =
    [Granularity::HalfHour, Granularity::Day, Granularity::Month];

/// Marks a value that failed a check. The problem itself is already recorded in the
/// [`Checker`], so the marker only tells callers to stop building the enclosing value.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reported;

/// The outcome of checking one value.
pub(super) type Checked<T> = Result<T, Reported>;

/// What every target inherits from the top-level sections.
struct Inherited {
    /// The `graph_api` token; `Ok(None)` when none is set there.
    credentials: Checked<Option<Credentials>>,
    /// `polling.stale_after_intervals`, for targets without `stale_after`.
    stale_after_intervals: Checked<u32>,
}

/// Turns a [`RawConfig`] into a [`Config`], recording every problem and warning on the way.
///
/// Each check returns a [`Checked`] value and the builders evaluate all their parts before
/// combining them with `?`, so one bad value never hides the problems of its siblings.
pub(super) struct Checker<'a> {
    pub(super) env: &'a dyn Fn(&str) -> Option<String>,
    pub(super) base_dir: &'a Path,
    pub(super) problems: Vec<Problem>,
    pub(super) warnings: Vec<String>,
}

impl Checker<'_> {
    fn problem(&mut self, key: &str, message: impl Into<String>) -> Reported {
        self.problems.push(Problem {
            key: key.to_owned(),
            message: message.into(),
        });
        Reported
    }

    fn warn(&mut self, key: &str, message: impl fmt::Display) {
        self.warnings.push(format!("{key}: {message}"));
    }

    pub(super) fn config(&mut self, raw: RawConfig) -> Checked<Config> {
        let raw_graph_api = raw.graph_api.unwrap_or_default();
        let graph_api = self.graph_api(&raw_graph_api);
        let default_credentials = self.token_source(
            "graph_api",
            raw_graph_api.access_token.as_deref(),
            raw_graph_api.access_token_file.as_deref(),
        );
        let polling = self.polling(raw.polling.unwrap_or_default());
        let rate_limits = self.rate_limits(raw.rate_limits.unwrap_or_default());
        let inherited = Inherited {
            credentials: default_credentials,
            stale_after_intervals: polling
                .as_ref()
                .map(|polling| polling.stale_after_intervals)
                .map_err(|&reported| reported),
        };
        let pages = self.targets(
            "pages",
            raw.pages.unwrap_or_default(),
            |page| &page.id.0,
            |checker, key, id, page| checker.page(key, id, page, &inherited),
        );
        let campaigns = self.targets(
            "campaigns",
            raw.campaigns.unwrap_or_default(),
            |campaign| &campaign.id.0,
            |checker, key, id, campaign| checker.campaign(key, id, campaign, &inherited),
        );
        let whatsapp_business_accounts = self.targets(
            "whatsapp_business_accounts",
            raw.whatsapp_business_accounts.unwrap_or_default(),
            |waba| &waba.id.0,
            |checker, key, id, waba| checker.waba(key, id, waba, &inherited),
        );
        let config = Config {
            graph_api: graph_api?,
            polling: polling?,
            rate_limits: rate_limits?,
            pages: pages?,
            campaigns: campaigns?,
            whatsapp_business_accounts: whatsapp_business_accounts?,
            warnings: Vec::new(),
        };
        if config.pages.is_empty()
            && config.campaigns.is_empty()
            && config.whatsapp_business_accounts.is_empty()
        {
            self.warnings.push(
                "no pages, campaigns or whatsapp_business_accounts are configured: nothing to poll"
                    .to_owned(),
            );
        }
        Ok(config)
    }

    /// Checks the `graph_api` section except its token, which belongs to the targets.
    fn graph_api(&mut self, raw: &RawGraphApi) -> Checked<GraphApiConfig> {
        let base_url = self.base_url("graph_api.base_url", raw.base_url.as_deref());
        let version = self.version("graph_api.version", raw.version.as_deref());
        let app_secret = match raw.app_secret.as_deref() {
            None => Ok(None),
            Some(text) => self
                .secret("graph_api.app_secret", text, None)
                .map(|secret| Some(AppSecret::new(secret))),
        };
        let connect_timeout = self.positive_duration(
            "graph_api.connect_timeout",
            raw.connect_timeout.as_deref(),
            DEFAULT_CONNECT_TIMEOUT,
        );
        let request_timeout = self.positive_duration(
            "graph_api.request_timeout",
            raw.request_timeout.as_deref(),
            DEFAULT_REQUEST_TIMEOUT,
        );
        let max_response_bytes = self.number(
            "graph_api.max_response_bytes",
            raw.max_response_bytes,
            DEFAULT_MAX_RESPONSE_BYTES,
            |bytes| bytes >= MIN_RESPONSE_BYTES,
            &format!("must be at least {MIN_RESPONSE_BYTES}"),
        );
        Ok(GraphApiConfig {
            base_url: base_url?,
            version: version?,
            app_secret: app_secret?,
            connect_timeout: connect_timeout?,
            request_timeout: request_timeout?,
            max_response_bytes: max_response_bytes?,
        })
    }

    fn polling(&mut self, raw: RawPolling) -> Checked<PollingConfig> {
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
        Ok(PollingConfig {
            max_concurrent_requests: max_concurrent_requests?,
            max_retries: max_retries?,
            retry_initial_backoff: retry_initial_backoff?,
            retry_max_backoff: retry_max_backoff?,
            stale_after_intervals: stale_after_intervals?,
            startup_spread: startup_spread?,
            retry_dropped_after: retry_dropped_after?,
        })
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

    fn rate_limits(&mut self, raw: RawRateLimits) -> Checked<RateLimitConfig> {
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
        Ok(RateLimitConfig {
            slowdown_above_percent: slowdown_above_percent?,
            max_interval_stretch: max_interval_stretch?,
            throttle_initial_backoff: throttle_initial_backoff?,
            throttle_max_backoff: throttle_max_backoff?,
            calls_per_hour_per_token: calls_per_hour_per_token?,
        })
    }

    /// Checks the entries of one target list, their ids and that no id repeats.
    fn targets<R, T>(
        &mut self,
        kind: &str,
        raws: Vec<R>,
        raw_id: impl Fn(&R) -> &str,
        mut check: impl FnMut(&mut Self, &str, Checked<String>, R) -> Checked<T>,
    ) -> Checked<Vec<T>> {
        let mut ids = Vec::new();
        let mut targets = Vec::with_capacity(raws.len());
        for (index, raw) in raws.into_iter().enumerate() {
            let key = format!("{kind}[{index}]");
            let id_key = format!("{key}.id");
            let id = self.id(&id_key, raw_id(&raw));
            if let Ok(id) = &id {
                ids.push((id_key, id.clone()));
            }
            targets.push(check(self, &key, id, raw));
        }
        self.report_duplicates(ids, |id| format!("id {id:?}"));
        targets.into_iter().collect()
    }

    fn page(
        &mut self,
        key: &str,
        id: Checked<String>,
        raw: RawPage,
        inherited: &Inherited,
    ) -> Checked<PageTarget> {
        let credentials = self.credentials(
            key,
            raw.access_token.as_deref(),
            raw.access_token_file.as_deref(),
            &inherited.credentials,
        );
        let schedule = self.schedule(
            key,
            raw.interval.as_deref(),
            raw.stale_after.as_deref(),
            DEFAULT_PAGE_INTERVAL,
            inherited.stale_after_intervals,
        );
        let period = self.period(
            &format!("{key}.period"),
            raw.period.as_deref(),
            DEFAULT_PAGE_PERIOD,
        );
        // With a bad target period the entries are still checked, against the default, so
        // their own problems are reported too; the target is rejected either way.
        let metrics = self.page_metrics(
            &format!("{key}.metrics"),
            raw.metrics,
            period.unwrap_or(DEFAULT_PAGE_PERIOD),
        );
        Ok(PageTarget {
            id: id?,
            credentials: credentials?,
            schedule: schedule?,
            metrics: metrics?,
        })
    }

    fn page_metrics(
        &mut self,
        key: &str,
        raw: Option<Vec<RawMetricEntry>>,
        target_period: Period,
    ) -> Checked<Vec<PageMetric>> {
        let Some(entries) = raw else {
            return Ok(catalog::PAGE_METRICS
                .iter()
                .map(|metric| PageMetric {
                    name: metric.name.to_owned(),
                    period: target_period,
                    window: default_window(target_period),
                    breakdowns: Vec::new(),
                })
                .collect());
        };
        if entries.is_empty() {
            return Err(self.problem(
                key,
                format!(
                    "is empty; leave it out to poll all {} documented metrics",
                    catalog::PAGE_METRICS.len()
                ),
            ));
        }
        let checked: Vec<(String, Checked<PageMetric>)> = entries
            .into_iter()
            .enumerate()
            .map(|(index, entry)| {
                let key = format!("{key}[{index}]");
                let metric = self.page_metric(&key, entry, target_period);
                (key, metric)
            })
            .collect();
        // Entries differing only in window would produce the same series, so the window is
        // not part of an entry's identity; breakdown order does not change the series either.
        let identities = checked.iter().filter_map(|(key, metric)| {
            let metric = metric.as_ref().ok()?;
            let mut breakdowns = metric.breakdowns.clone();
            breakdowns.sort();
            Some((
                key.clone(),
                (metric.name.clone(), metric.period, breakdowns),
            ))
        });
        self.report_duplicates(identities, |(name, period, breakdowns)| {
            format!(
                "metric entry {name} with period {} and breakdowns [{}]",
                period.as_str(),
                breakdowns.join(", ")
            )
        });
        checked.into_iter().map(|(_, metric)| metric).collect()
    }

    fn page_metric(
        &mut self,
        key: &str,
        entry: RawMetricEntry,
        target_period: Period,
    ) -> Checked<PageMetric> {
        let spec = match entry {
            RawMetricEntry::Name(name) => {
                return Ok(PageMetric {
                    name: self.page_metric_name(key, &name)?,
                    period: target_period,
                    window: default_window(target_period),
                    breakdowns: Vec::new(),
                })
            }
            RawMetricEntry::Detailed(spec) => spec,
        };
        let name = self.page_metric_name(&format!("{key}.name"), &spec.name);
        let period = self.period(
            &format!("{key}.period"),
            spec.period.as_deref(),
            target_period,
        );
        let window = self.window(&format!("{key}.window"), spec.window.as_deref());
        let known_metric = name
            .as_ref()
            .ok()
            .and_then(|name| catalog::page_metric(name));
        let breakdowns = match spec.breakdowns {
            None => Ok(Vec::new()),
            Some(breakdowns) => self.list(
                &format!("{key}.breakdowns"),
                &breakdowns,
                "breakdown",
                |checker, key, breakdown| checker.breakdown(key, breakdown, known_metric),
            ),
        };
        let period = period?;
        Ok(PageMetric {
            name: name?,
            period,
            window: window?.or(default_window(period)),
            breakdowns: breakdowns?,
        })
    }

    fn page_metric_name(&mut self, key: &str, raw: &str) -> Checked<String> {
        let name = self.expand(key, raw)?;
        if !is_identifier(&name) {
            return Err(self.problem(
                key,
                format!("{name:?} is not a valid metric name: {IDENTIFIER_RULE}"),
            ));
        }
        if catalog::page_metric(&name).is_none() {
            self.warn(
                key,
                format!(
                    "{name} is not one of the Page messaging metrics Meta documents; it is \
                     requested anyway"
                ),
            );
        }
        Ok(name)
    }

    fn breakdown(
        &mut self,
        key: &str,
        name: String,
        known_metric: Option<&PageMetricInfo>,
    ) -> Checked<String> {
        if !is_identifier(&name) {
            return Err(self.problem(
                key,
                format!("{name:?} is not a valid breakdown: {IDENTIFIER_RULE}"),
            ));
        }
        if name.starts_with("__") {
            return Err(self.problem(
                key,
                format!("{name} starts with __, which Prometheus reserves for its own labels"),
            ));
        }
        if RESERVED_PAGE_LABELS.contains(&name.as_str()) {
            return Err(self.problem(
                key,
                format!("{name} is a label the exporter sets itself, so it cannot be a breakdown"),
            ));
        }
        if !catalog::PAGE_BREAKDOWNS.contains(&name.as_str()) {
            self.warn(
                key,
                format!(
                    "{name} is not a Page insights breakdown Meta documents; it is requested \
                     anyway"
                ),
            );
        } else if let Some(metric) = known_metric {
            if !metric.breakdowns.contains(&name.as_str()) {
                self.warn(
                    key,
                    format!(
                        "Meta does not document breakdown {name} for {}; the API may reject it",
                        metric.name
                    ),
                );
            }
        }
        Ok(name)
    }

    fn campaign(
        &mut self,
        key: &str,
        id: Checked<String>,
        raw: RawCampaign,
        inherited: &Inherited,
    ) -> Checked<CampaignTarget> {
        let credentials = self.credentials(
            key,
            raw.access_token.as_deref(),
            raw.access_token_file.as_deref(),
            &inherited.credentials,
        );
        let schedule = self.schedule(
            key,
            raw.interval.as_deref(),
            raw.stale_after.as_deref(),
            DEFAULT_CAMPAIGN_INTERVAL,
            inherited.stale_after_intervals,
        );
        let fields = self.campaign_fields(&format!("{key}.fields"), raw.fields);
        let dates = self.campaign_dates(key, raw.date_preset.as_deref(), raw.time_range.as_ref());
        Ok(CampaignTarget {
            id: id?,
            credentials: credentials?,
            schedule: schedule?,
            fields: fields?,
            dates: dates?,
        })
    }

    fn campaign_fields(&mut self, key: &str, raw: Option<Vec<String>>) -> Checked<Vec<String>> {
        let Some(fields) = raw else {
            return Ok(catalog::CAMPAIGN_FIELDS
                .iter()
                .filter(|field| field.default)
                .map(|field| field.name.to_owned())
                .collect());
        };
        if fields.is_empty() {
            return Err(self.problem(key, "is empty; leave it out to request the default fields"));
        }
        self.list(key, &fields, "field", |checker, key, name| {
            if !is_identifier(&name) {
                return Err(checker.problem(
                    key,
                    format!("{name:?} is not a valid field name: {IDENTIFIER_RULE}"),
                ));
            }
            if catalog::campaign_field(&name).is_none() {
                checker.warn(
                    key,
                    format!(
                        "{name} is not a campaign insights field Meta documents; it is \
                         requested anyway"
                    ),
                );
            }
            Ok(name)
        })
    }

    fn campaign_dates(
        &mut self,
        key: &str,
        date_preset: Option<&str>,
        time_range: Option<&RawTimeRange>,
    ) -> Checked<CampaignDates> {
        let preset =
            date_preset.map(|preset| self.date_preset(&format!("{key}.date_preset"), preset));
        let range = time_range.map(|range| self.time_range(&format!("{key}.time_range"), range));
        match (preset, range) {
            (Some(_), Some(_)) => Err(self.problem(
                &format!("{key}.time_range"),
                "cannot be combined with date_preset; set one of them",
            )),
            (Some(preset), None) => preset,
            (None, Some(range)) => range,
            (None, None) => Ok(CampaignDates::Preset(
                catalog::DEFAULT_DATE_PRESET.to_owned(),
            )),
        }
    }

    fn date_preset(&mut self, key: &str, raw: &str) -> Checked<CampaignDates> {
        let preset = self.expand(key, raw)?;
        if catalog::DATE_PRESETS.contains(&preset.as_str()) {
            Ok(CampaignDates::Preset(preset))
        } else {
            Err(self.problem(
                key,
                format!(
                    "{preset:?} is not a date preset Meta documents; expected one of {}",
                    catalog::DATE_PRESETS.join(", ")
                ),
            ))
        }
    }

    fn time_range(&mut self, key: &str, raw: &RawTimeRange) -> Checked<CampaignDates> {
        let since = self.date(&format!("{key}.since"), &raw.since);
        let until_key = format!("{key}.until");
        let until = self.date(&until_key, &raw.until);
        let (since, until) = (since?, until?);
        if until < since {
            return Err(self.problem(&until_key, format!("{until} is before since ({since})")));
        }
        Ok(CampaignDates::Range { since, until })
    }

    fn date(&mut self, key: &str, raw: &str) -> Checked<NaiveDate> {
        let text = self.expand(key, raw)?;
        // chrono alone would also accept `2025-1-5` and a signed year; the shape check keeps
        // the documented form the only one.
        let shaped = text.len() == 10
            && text.bytes().enumerate().all(|(index, byte)| match index {
                4 | 7 => byte == b'-',
                _ => byte.is_ascii_digit(),
            });
        match NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
            Ok(date) if shaped => Ok(date),
            _ => Err(self.problem(
                key,
                format!("{text:?} is not a calendar date in the form YYYY-MM-DD"),
            )),
        }
    }

    fn waba(
        &mut self,
        key: &str,
        id: Checked<String>,
        raw: RawWaba,
        inherited: &Inherited,
    ) -> Checked<WabaTarget> {
        let credentials = self.credentials(
            key,
            raw.access_token.as_deref(),
            raw.access_token_file.as_deref(),
            &inherited.credentials,
        );
        let schedule = self.schedule(
            key,
            raw.interval.as_deref(),
            raw.stale_after.as_deref(),
            DEFAULT_WABA_INTERVAL,
            inherited.stale_after_intervals,
        );
        let granularity =
            self.granularity(&format!("{key}.granularity"), raw.granularity.as_deref());
        let phone_numbers = self.list(
            &format!("{key}.phone_numbers"),
            &raw.phone_numbers
                .unwrap_or_default()
                .into_iter()
                .map(|number| number.0)
                .collect::<Vec<_>>(),
            "phone number",
            |checker, key, number| {
                if !number.is_empty() && number.bytes().all(|byte| byte.is_ascii_digit()) {
                    Ok(number)
                } else {
                    Err(checker.problem(
                        key,
                        format!(
                            "{number:?} is not a phone number as Meta gives it: digits only, \
                             country code first, without + or spaces"
                        ),
                    ))
                }
            },
        );
        let country_codes = self.list(
            &format!("{key}.country_codes"),
            &raw.country_codes.unwrap_or_default(),
            "country code",
            |checker, key, code| {
                if code.len() == 2 && code.bytes().all(|byte| byte.is_ascii_uppercase()) {
                    Ok(code)
                } else {
                    Err(checker.problem(
                        key,
                        format!(
                            "{code:?} is not a country code: two upper-case letters \
                             (ISO 3166-1 alpha-2) such as US"
                        ),
                    ))
                }
            },
        );
        Ok(WabaTarget {
            id: id?,
            credentials: credentials?,
            schedule: schedule?,
            granularity: granularity?,
            phone_numbers: phone_numbers?,
            country_codes: country_codes?,
        })
    }

    fn granularity(&mut self, key: &str, raw: Option<&str>) -> Checked<Granularity> {
        let Some(raw) = raw else {
            return Ok(DEFAULT_GRANULARITY);
        };
        let text = self.expand(key, raw)?;
        Granularity::parse(&text).ok_or_else(|| {
            let allowed: Vec<&str> = ALL_GRANULARITIES.iter().map(|g| g.as_str()).collect();
            self.problem(
                key,
                format!(
                    "{text:?} is not a granularity; expected one of {} (upper case, as the API \
                     spells them)",
                    allowed.join(", ")
                ),
            )
        })
    }

    /// Expands and checks each item of a list of names, then rejects repeats.
    fn list(
        &mut self,
        key: &str,
        items: &[String],
        what: &str,
        mut check: impl FnMut(&mut Self, &str, String) -> Checked<String>,
    ) -> Checked<Vec<String>> {
        let checked: Vec<(String, Checked<String>)> = items
            .iter()
            .enumerate()
            .map(|(index, raw)| {
                let key = format!("{key}[{index}]");
                let item = match self.expand(&key, raw) {
                    Ok(text) => check(self, &key, text),
                    Err(reported) => Err(reported),
                };
                (key, item)
            })
            .collect();
        let valid = checked
            .iter()
            .filter_map(|(key, item)| Some((key.clone(), item.as_ref().ok()?.clone())));
        self.report_duplicates(valid, |item| format!("{what} {item:?}"));
        checked.into_iter().map(|(_, item)| item).collect()
    }

    /// Records a problem for every item equal to an earlier one, naming where that one is.
    fn report_duplicates<T: Eq + Hash>(
        &mut self,
        items: impl IntoIterator<Item = (String, T)>,
        describe: impl Fn(&T) -> String,
    ) {
        let mut first_keys: HashMap<T, String> = HashMap::new();
        for (key, item) in items {
            match first_keys.entry(item) {
                Entry::Occupied(first) => {
                    let message = format!(
                        "duplicate {}, also at {}",
                        describe(first.key()),
                        first.get()
                    );
                    self.problem(&key, message);
                }
                Entry::Vacant(slot) => {
                    slot.insert(key);
                }
            }
        }
    }

    fn id(&mut self, key: &str, raw: &str) -> Checked<String> {
        let id = self.expand(key, raw)?;
        if id.is_empty() {
            return Err(self.problem(key, "is empty"));
        }
        // The id becomes a URL path segment, where `.` and `..` would be read as steps.
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        if !id.chars().all(allowed) || id == "." || id == ".." {
            return Err(self.problem(
                key,
                format!(
                    "{id:?} is not a valid id: use only letters, digits, _, . and -, since it \
                     goes into the request URL"
                ),
            ));
        }
        Ok(id)
    }

    /// The target's own token if it sets one, else the inherited `graph_api` token.
    fn credentials(
        &mut self,
        key: &str,
        access_token: Option<&str>,
        access_token_file: Option<&str>,
        inherited: &Checked<Option<Credentials>>,
    ) -> Checked<Credentials> {
        if let Some(own) = self.token_source(key, access_token, access_token_file)? {
            return Ok(own);
        }
        match inherited {
            Ok(Some(credentials)) => Ok(credentials.clone()),
            Ok(None) => Err(self.problem(
                &format!("{key}.access_token"),
                "no access token is set here nor in graph_api (set access_token or \
                 access_token_file)",
            )),
            // The graph_api token's own problem is already reported; repeating it for every
            // target would bury it.
            Err(reported) => Err(*reported),
        }
    }

    /// Resolves `access_token` or `access_token_file` under `key`; `Ok(None)` when neither is set.
    fn token_source(
        &mut self,
        key: &str,
        access_token: Option<&str>,
        access_token_file: Option<&str>,
    ) -> Checked<Option<Credentials>> {
        match (access_token, access_token_file) {
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err(self.problem(
                &format!("{key}.access_token_file"),
                "is set together with access_token; set only one of them",
            )),
            (Some(raw), None) => {
                let token = self.secret(&format!("{key}.access_token"), raw, None)?;
                Ok(Some(Credentials {
                    token: AccessToken::new(token),
                    file: None,
                }))
            }
            (None, Some(raw)) => {
                let key = format!("{key}.access_token_file");
                let path = self.expand(&key, raw)?;
                if path.is_empty() {
                    return Err(self.problem(&key, "is empty"));
                }
                let path = self.base_dir.join(path);
                let contents = read_token_file(&path).map_err(|error| {
                    self.problem(
                        &key,
                        format!("cannot read token file {}: {error}", path.display()),
                    )
                })?;
                let token = self.secret_value(&key, &contents, Some(&path))?;
                Ok(Some(Credentials {
                    token: AccessToken::new(token),
                    file: Some(path),
                }))
            }
        }
    }

    /// Expands a token or app secret written in the config and checks its value.
    fn secret(&mut self, key: &str, raw: &str, file: Option<&Path>) -> Checked<String> {
        let value = self.expand(key, raw)?;
        self.secret_value(key, &value, file)
    }

    /// Trims a token or app secret and checks it could be valid, never quoting it.
    ///
    /// Surrounding whitespace is dropped because files and secret stores usually end in a
    /// newline that is not part of the value.
    fn secret_value(&mut self, key: &str, value: &str, file: Option<&Path>) -> Checked<String> {
        let value = value.trim();
        let flaw = if value.is_empty() {
            "is empty"
        } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            "contains whitespace or control characters (the value is not shown)"
        } else {
            return Ok(value.to_owned());
        };
        let message = match file {
            Some(path) => format!("token file {} {flaw}", path.display()),
            None => flaw.to_owned(),
        };
        Err(self.problem(key, message))
    }

    fn base_url(&mut self, key: &str, raw: Option<&str>) -> Checked<String> {
        let Some(raw) = raw else {
            return Ok(DEFAULT_BASE_URL.to_owned());
        };
        let text = self.expand(key, raw)?;
        let url = Url::parse(&text)
            .map_err(|error| self.problem(key, format!("{text:?} is not a URL ({error})")))?;
        if !url.username().is_empty() || url.password().is_some() {
            // Not quoted: the point of this rule is that credentials stay out of messages.
            return Err(self.problem(
                key,
                "must not contain a user name or password; the token authenticates requests",
            ));
        }
        let flaw = if !matches!(url.scheme(), "http" | "https") {
            "must start with http:// or https://"
        } else if url.query().is_some() {
            "must not have a query (?...)"
        } else if url.fragment().is_some() {
            "must not have a fragment (#...)"
        } else {
            // The client appends `/{version}/...`, so a trailing slash would double up.
            return Ok(url.as_str().trim_end_matches('/').to_owned());
        };
        Err(self.problem(key, format!("{text:?} {flaw}")))
    }

    fn version(&mut self, key: &str, raw: Option<&str>) -> Checked<String> {
        let Some(raw) = raw else {
            return Ok(DEFAULT_VERSION.to_owned());
        };
        let version = self.expand(key, raw)?;
        let well_formed = version
            .strip_prefix('v')
            .and_then(|number| number.split_once('.'))
            .is_some_and(|(major, minor)| is_digits(major) && is_digits(minor));
        if well_formed {
            Ok(version)
        } else {
            Err(self.problem(
                key,
                format!("{version:?} is not a Graph API version such as {DEFAULT_VERSION}"),
            ))
        }
    }

    /// Checks `interval` and `stale_after` under `key`.
    fn schedule(
        &mut self,
        key: &str,
        interval: Option<&str>,
        stale_after: Option<&str>,
        default_interval: Duration,
        stale_after_intervals: Checked<u32>,
    ) -> Checked<Schedule> {
        let interval = self.interval(&format!("{key}.interval"), interval, default_interval);
        let stale_after_key = format!("{key}.stale_after");
        let stale_after = self.duration(&stale_after_key, stale_after);
        let interval = interval?;
        let stale_after = match stale_after? {
            Some(stale_after) if stale_after < interval => {
                return Err(self.problem(
                    &stale_after_key,
                    format!(
                        "must be at least the interval ({}), not {}",
                        human(interval),
                        human(stale_after)
                    ),
                ))
            }
            Some(stale_after) => stale_after,
            None => interval.saturating_mul(stale_after_intervals?),
        };
        Ok(Schedule {
            interval,
            stale_after,
        })
    }

    fn interval(&mut self, key: &str, raw: Option<&str>, default: Duration) -> Checked<Duration> {
        let interval = self.duration(key, raw)?.unwrap_or(default);
        if interval < MIN_INTERVAL {
            return Err(self.problem(
                key,
                format!(
                    "must be at least {}, not {}",
                    human(MIN_INTERVAL),
                    human(interval)
                ),
            ));
        }
        if interval < SHORT_INTERVAL {
            self.warn(
                key,
                format!(
                    "{} is shorter than {}; Meta's rate limits on Graph API calls are shared by \
                     every target using the same app and token, and insights change far more \
                     slowly than that",
                    human(interval),
                    human(SHORT_INTERVAL)
                ),
            );
        }
        Ok(interval)
    }

    fn period(&mut self, key: &str, raw: Option<&str>, default: Period) -> Checked<Period> {
        let Some(raw) = raw else {
            return Ok(default);
        };
        let text = self.expand(key, raw)?;
        Period::parse(&text).ok_or_else(|| {
            let allowed: Vec<&str> = ALL_PERIODS.iter().map(|period| period.as_str()).collect();
            self.problem(
                key,
                format!(
                    "{text:?} is not a period; expected one of {}",
                    allowed.join(", ")
                ),
            )
        })
    }

    /// A metric entry's `window`; `Ok(None)` when absent, so the period's default applies.
    fn window(&mut self, key: &str, raw: Option<&str>) -> Checked<Option<Duration>> {
        let window = self.duration(key, raw)?;
        match window {
            Some(window) if window.is_zero() => Err(self.problem(key, "must be longer than 0s")),
            Some(window) if window > MAX_WINDOW => Err(self.problem(
                key,
                format!(
                    "must be at most {}, the longest range the API accepts, not {}",
                    human(MAX_WINDOW),
                    human(window)
                ),
            )),
            _ => Ok(window),
        }
    }

    fn positive_duration(
        &mut self,
        key: &str,
        raw: Option<&str>,
        default: Duration,
    ) -> Checked<Duration> {
        let duration = self.duration(key, raw)?.unwrap_or(default);
        if duration.is_zero() {
            return Err(self.problem(key, "must be longer than 0s"));
        }
        Ok(duration)
    }

    /// Parses an optional humantime duration; `Ok(None)` when the key is absent.
    fn duration(&mut self, key: &str, raw: Option<&str>) -> Checked<Option<Duration>> {
        let Some(raw) = raw else {
            return Ok(None);
        };
        let text = self.expand(key, raw)?;
        let duration = humantime::parse_duration(&text).map_err(|error| {
            self.problem(
                key,
                format!("{text:?} is not a duration ({error}); write it like 30s, 15m or 1h 30m"),
            )
        })?;
        if duration > MAX_DURATION {
            return Err(self.problem(
                key,
                format!(
                    "must be at most {}, not {}",
                    human(MAX_DURATION),
                    human(duration)
                ),
            ));
        }
        Ok(Some(duration))
    }

    fn number<T: Copy + fmt::Display>(
        &mut self,
        key: &str,
        raw: Option<T>,
        default: T,
        valid: impl Fn(T) -> bool,
        rule: &str,
    ) -> Checked<T> {
        let value = raw.unwrap_or(default);
        if valid(value) {
            Ok(value)
        } else {
            Err(self.problem(key, format!("{rule}, not {value}")))
        }
    }

    fn expand(&mut self, key: &str, text: &str) -> Checked<String> {
        expand::expand(text, self.env).map_err(|error| self.problem(key, error.to_string()))
    }
}

/// What a name must look like to become part of a Prometheus metric or label name.
const IDENTIFIER_RULE: &str =
    "use letters, digits and _, not starting with a digit, since it becomes part of a \
     Prometheus name";

/// Whether `name` matches `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit())
}

/// The window an entry gets when it sets none: `total_over_range` needs one, the other periods
/// let the API choose.
fn default_window(period: Period) -> Option<Duration> {
    (period == Period::TotalOverRange).then_some(DEFAULT_TOTAL_OVER_RANGE_WINDOW)
}

/// Reads a token file, refusing files far larger than any token.
fn read_token_file(path: &Path) -> io::Result<String> {
    let mut bytes = Vec::new();
    // `take` bounds the read, so pointing at a device or a huge file cannot exhaust memory.
    std::fs::File::open(path)?
        .take(MAX_TOKEN_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > MAX_TOKEN_FILE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {MAX_TOKEN_FILE_BYTES} bytes, far more than a token"),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Formats a duration the way the config writes them (`90d`, `1h 30m`, `500ms`).
///
/// Not `humantime::format_duration`, which counts in months and years of fractional days
/// (`2months 29days 2h 52m 48s` for 90 days) that no one writes in a config.
pub(super) fn human(duration: Duration) -> HumanDuration {
    HumanDuration(duration)
}

/// See [`human`].
pub(super) struct HumanDuration(Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        let nanos = u64::from(self.0.subsec_nanos());
        let parts = [
            (secs / DAY_SECS, "d"),
            (secs / 3600 % 24, "h"),
            (secs / 60 % 60, "m"),
            (secs % 60, "s"),
            (nanos / 1_000_000, "ms"),
            (nanos / 1000 % 1000, "us"),
            (nanos % 1000, "ns"),
        ];
        let mut separator = "";
        for (value, unit) in parts.into_iter().filter(|(value, _)| *value > 0) {
            write!(f, "{separator}{value}{unit}")?;
            separator = " ";
        }
        if separator.is_empty() {
            f.write_str("0s")?;
        }
        Ok(())
    }
}

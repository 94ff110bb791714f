//! The exporter's own metrics: how polling and the Graph API calls are going.
//!
//! These are few and bounded in cardinality (labels are endpoints, kinds and error codes, never
//! target ids), so they live in an explicit `prometheus::Registry` and are encoded at scrape
//! time. Per-target state (up, last success, ...) scales with the number of targets, so it is
//! not here: pollers publish it into the snapshot store like any other poll result.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::catalog::versions::{self, Api};

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// `rate_limit_usage_percent`, kept beside the registry rather than in it. It has three series
/// per token fingerprint, and with a Page token each (what discovery gives) 10,000 Pages make
/// 30,000 series: the registry's encoder, which builds a protobuf message per series and sorts
/// them on every gather, took 264 ms a scrape for them. Here they are kept in label order and
/// written straight into the body (README "Performance" has the figures).
#[derive(Clone)]
pub struct UsageGauges {
    name: String,
    series: Arc<Mutex<BTreeMap<[String; 4], f64>>>,
}

/// HELP of `rate_limit_usage_percent`.
const USAGE_HELP: &str = "Rate-limit usage Meta last reported in its usage headers, in percent of the limit, by scope (app: X-App-Usage per token fingerprint; business_use_case: X-Business-Use-Case-Usage per business object and type; ad_account: X-Ad-Account-Usage; ads_insights: x-fb-ads-insights-throttle) and metric.";
/// Label names of `rate_limit_usage_percent`, in order.
const USAGE_LABELS: [&str; 4] = ["scope", "id", "type", "metric"];

impl UsageGauges {
    fn new(name: String) -> Self {
        Self {
            name,
            series: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<[String; 4], f64>> {
        // The map holds plain numbers, valid whatever a panicking holder left.
        self.series.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the series with labels scope, id, type and metric.
    pub fn set(&self, labels: [&str; 4], percent: f64) {
        self.lock().insert(labels.map(str::to_owned), percent);
    }

    /// Removes the series, if there is one.
    pub fn remove(&self, labels: [&str; 4]) {
        self.lock().remove(&labels.map(str::to_owned));
    }

    /// The series' value, if there is one.
    pub fn get(&self, labels: [&str; 4]) -> Option<f64> {
        self.lock().get(&labels.map(str::to_owned)).copied()
    }

    /// Appends the family in the text format; nothing while it has no series, as the
    /// registry does for an empty vector.
    fn encode_into(&self, out: &mut Vec<u8>) {
        let series = self.lock();
        if series.is_empty() {
            return;
        }
        let mut text = crate::exposition::header(&self.name, USAGE_HELP, "gauge");
        text.reserve(series.len() * 120);
        let mut labels: Vec<(String, String)> = USAGE_LABELS
            .iter()
            .map(|label| ((*label).to_owned(), String::new()))
            .collect();
        for (values, percent) in series.iter() {
            for (slot, value) in labels.iter_mut().zip(values) {
                slot.1.clone_from(value);
            }
            crate::exposition::write_sample(&mut text, &self.name, &labels, *percent);
        }
        drop(series);
        out.extend_from_slice(text.as_bytes());
    }
}

/// Prefix of every metric about the exporter itself.
pub const PREFIX: &str = "meta_messaging_exporter";

/// The API version series: the end date of each configured version, and which version Meta
/// served each configured one with. A served version replaces the previous one of its pair,
/// so the info family keeps one series per API.
#[derive(Clone)]
pub struct ApiVersionGauges {
    /// `api_version_end_timestamp_seconds{api, version}`.
    end: IntGaugeVec,
    /// `api_version_info{api, requested, served}`.
    info: IntGaugeVec,
    /// The last `served` of each `(api, requested)`.
    served: Arc<Mutex<BTreeMap<(Api, String), String>>>,
    /// `api_version_warnings_total{endpoint}`.
    warnings: IntCounterVec,
    /// The UTC day each endpoint's warning was last logged on: Meta sends the header on
    /// every upgraded call, and one line a day says all there is to say.
    warning_logged: Arc<Mutex<BTreeMap<&'static str, i64>>>,
}

impl ApiVersionGauges {
    fn new(name: impl Fn(&str) -> String) -> Result<Self, prometheus::Error> {
        Ok(Self {
            end: IntGaugeVec::new(
                Opts::new(
                    name("api_version_end_timestamp_seconds"),
                    "When each configured API version stops working, by api (graph or marketing): 00:00 Pacific time of the last day Meta lists, from the schedule compiled into this release. Absent where Meta has set no date.",
                ),
                &["api", "version"],
            )?,
            info: IntGaugeVec::new(
                Opts::new(
                    name("api_version_info"),
                    "Always 1: the version each API's calls are sent with (requested) and the one Meta last answered with (served, its facebook-api-version header). They differ once Meta upgrades an expired version.",
                ),
                &["api", "requested", "served"],
            )?,
            served: Arc::default(),
            warnings: IntCounterVec::new(
                Opts::new(
                    name("api_version_warnings_total"),
                    "Graph API answers that carried X-Ad-Api-Version-Warning (Meta upgraded the call from an expired or expiring Marketing API version), by endpoint. The header's text is logged once per endpoint and day; api_version_info says which version answered.",
                ),
                &["endpoint"],
            )?,
            warning_logged: Arc::default(),
        })
    }

    /// Counts a version warning on `endpoint`; true when it is the first on UTC day `day`,
    /// so the caller logs it.
    pub fn warned(&self, endpoint: &'static str, day: i64) -> bool {
        self.warnings.with_label_values(&[endpoint]).inc();
        let mut logged = self
            .warning_logged
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        logged.insert(endpoint, day) != Some(day)
    }

    /// Sets the end dates of the configured versions (and only those, after a change) and
    /// drops served versions of versions no longer configured.
    pub fn configure(&self, graph: &str, marketing: &str) {
        self.end.reset();
        for (api, version) in [(Api::Graph, graph), (Api::Marketing, marketing)] {
            if let versions::End::On(date) = versions::end(api, version) {
                self.end
                    .with_label_values(&[api.as_str(), version])
                    .set(crate::calendar::midnight(date));
            }
        }
        let mut served = self.served.lock().unwrap_or_else(PoisonError::into_inner);
        served.retain(|(api, requested), answered| {
            let configured = match api {
                Api::Graph => graph,
                Api::Marketing => marketing,
            };
            let keep = requested == configured;
            if !keep {
                let _ = self
                    .info
                    .remove_label_values(&[api.as_str(), requested, answered]);
            }
            keep
        });
    }

    /// Records that a call of `api` sent with `requested` was served with `served`.
    pub fn served(&self, api: Api, requested: &str, served: &str) {
        let mut last = self.served.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (api, requested.to_owned());
        if last.get(&key).is_some_and(|previous| previous == served) {
            return;
        }
        if let Some(previous) = last.insert(key, served.to_owned()) {
            let _ = self
                .info
                .remove_label_values(&[api.as_str(), requested, &previous]);
        }
        self.info
            .with_label_values(&[api.as_str(), requested, served])
            .set(1);
    }
}

/// Counters and histograms the client, pollers and HTTP layer update.
#[derive(Clone)]
pub struct ExporterMetrics {
    registry: Registry,
    /// Graph API calls by endpoint and outcome (every attempt, retries included), whether
    /// each went out alone or inside a batch call.
    pub api_requests: IntCounterVec,
    /// HTTP requests sent to the Graph API, by type: `single` (one call) or `batch`.
    pub api_http_requests: IntCounterVec,
    /// Batch calls that failed as a whole, whose calls then went out one by one.
    pub api_batch_fallbacks: IntCounter,
    /// Graph API error bodies by endpoint, code and subcode.
    pub api_errors: IntCounterVec,
    /// Retries after a transient failure, by endpoint.
    pub api_retries: IntCounterVec,
    /// Whole target polls by kind and result.
    pub polls: IntCounterVec,
    /// Duration of whole target polls by kind, from holding a poll slot, retries included.
    pub poll_duration: HistogramVec,
    /// How long due polls waited for a poll slot, by kind.
    pub poll_queue: HistogramVec,
    /// Failed reads of polls, by target kind, read and error class.
    pub read_errors: IntCounterVec,
    /// Values in API responses that could not be used, by kind and reason.
    pub value_errors: IntCounterVec,
    /// Metrics or fields dropped because the API rejected them (code 100), by kind.
    pub dropped_items: IntCounterVec,
    /// Configured targets by kind.
    pub targets: IntGaugeVec,
    /// Graph API requests in flight.
    pub requests_in_flight: IntGauge,
    /// Last rate-limit usage Meta reported, by scope, id, type and metric.
    pub rate_limit_usage: UsageGauges,
    /// Throttling errors received, by code.
    pub throttle_events: IntCounterVec,
    /// Rate-limit headers that were present but unreadable, by header.
    pub usage_header_errors: IntCounterVec,
    /// 1 if the last config reload succeeded.
    pub config_last_reload_successful: IntGauge,
    /// When the config was last loaded successfully.
    pub config_last_reload_success_timestamp: IntGauge,
    /// Open HTTP connections (sockets, TLS handshakes in progress included).
    pub http_connections_open: IntGauge,
    /// HTTP connections closed by the connection limits, by which one was closed and why.
    pub http_connections_rejected: IntCounterVec,
    /// Requests refused by basic auth, by why.
    pub http_auth_refused: IntCounterVec,
    /// Discovery runs by source.
    pub discovery_runs: IntCounterVec,
    /// Discovery runs that failed (in any of their reads), by source.
    pub discovery_errors: IntCounterVec,
    /// When each source last succeeded.
    pub discovery_last_success: IntGaugeVec,
    /// 1 if each source's last run succeeded.
    pub discovery_last_run_successful: IntGaugeVec,
    /// Targets each source currently adds.
    pub discovery_targets: IntGaugeVec,
    /// Always 1, labelled with this instance's shard and the shard count.
    pub shard: IntGaugeVec,

    // Batch isolation (issue 18): which targets poll outside batches, and why.
    /// 1 per target polled outside batch calls, by target id and reason (`timeout`, `slow`).
    /// Bounded by the solo targets, which are few: a series goes when its target leaves solo
    /// or is no longer configured.
    pub target_solo: IntGaugeVec,
    /// Batch calls whose HTTP request passed `polling.batch_timeout`.
    pub api_batch_timeouts: IntCounter,

    // API versions (issue 20).
    /// End dates of the configured versions and the versions Meta served.
    pub api_versions: ApiVersionGauges,
}

impl ExporterMetrics {
    /// Creates the metrics in a fresh registry, with `build_info` and process metrics.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let name = |suffix: &str| format!("{PREFIX}_{suffix}");

        let api_requests = IntCounterVec::new(
            Opts::new(
                name("api_requests_total"),
                "Graph API calls made, by endpoint and outcome (success, api_error, http_error, timeout, transport_error, decode_error, too_large), each one whether it went out alone or inside a batch call (api_http_requests_total counts the HTTP requests); retries count separately.",
            ),
            &["endpoint", "outcome"],
        )?;
        let api_http_requests = IntCounterVec::new(
            Opts::new(
                name("api_http_requests_total"),
                "HTTP requests sent to the Graph API, by type: single (one call) or batch (a POST of up to 50 calls).",
            ),
            &["type"],
        )?;
        let api_batch_fallbacks = IntCounter::new(
            name("api_batch_fallbacks_total"),
            "Graph API batch calls that failed as a whole; their calls were then sent one by one.",
        )?;
        let api_errors = IntCounterVec::new(
            Opts::new(
                name("api_errors_total"),
                "Graph API error bodies received, by endpoint, error code and subcode (empty when absent).",
            ),
            &["endpoint", "code", "subcode"],
        )?;
        let api_retries = IntCounterVec::new(
            Opts::new(
                name("api_retries_total"),
                "Graph API requests retried after a transient failure, by endpoint.",
            ),
            &["endpoint"],
        )?;
        let polls = IntCounterVec::new(
            Opts::new(
                name("polls_total"),
                "Target polls finished, by target kind and result: success, partial (some reads failed and kept their previous values; the others published) or the failure class.",
            ),
            &["kind", "result"],
        )?;
        let poll_duration = HistogramVec::new(
            HistogramOpts::new(
                name("poll_duration_seconds"),
                "Time a whole target poll took from holding its poll slot, retries included, by target kind; the wait for the slot is poll_queue_seconds.",
            )
            .buckets(vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
            ]),
            &["kind"],
        )?;
        let poll_queue = HistogramVec::new(
            HistogramOpts::new(
                name("poll_queue_seconds"),
                "Time a due target poll waited for a poll slot before it started (polls run at once: twice what polling.max_concurrent_requests can carry), by target kind.",
            )
            .buckets(vec![
                0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0,
            ]),
            &["kind"],
        )?;
        let read_errors = IntCounterVec::new(
            Opts::new(
                name("read_errors_total"),
                "Failed reads of target polls (a Page metric group, a name, a WhatsApp account's node read, template list, template analytics or phone-number list), by target kind, read and error class; a failed read keeps its previous values until they go stale while the poll's other reads publish.",
            ),
            &["target_kind", "read", "error_class"],
        )?;
        let value_errors = IntCounterVec::new(
            Opts::new(
                name("value_errors_total"),
                "Values in Graph API responses that could not be turned into samples, by target kind and reason; the rest of the response is still used.",
            ),
            &["kind", "reason"],
        )?;
        let dropped_items = IntCounterVec::new(
            Opts::new(
                name("dropped_items_total"),
                "Metrics or fields removed from a target's requests because the API rejected them as invalid (code 100), by target kind.",
            ),
            &["kind"],
        )?;
        let targets = IntGaugeVec::new(
            Opts::new(name("targets"), "Configured targets, by kind."),
            &["kind"],
        )?;
        let requests_in_flight = IntGauge::new(
            name("api_requests_in_flight"),
            "Graph API requests currently in flight (bounded by polling.max_concurrent_requests).",
        )?;
        let rate_limit_usage = UsageGauges::new(name("rate_limit_usage_percent"));
        let throttle_events = IntCounterVec::new(
            Opts::new(
                name("throttle_events_total"),
                "Throttling errors (and policy blocks) received from the Graph API, by error code; each pauses the targets in its scope.",
            ),
            &["code"],
        )?;
        let usage_header_errors = IntCounterVec::new(
            Opts::new(
                name("usage_header_errors_total"),
                "Rate-limit headers that were present but could not be read, by header name.",
            ),
            &["header"],
        )?;
        let config_last_reload_successful = IntGauge::new(
            name("config_last_reload_successful"),
            "1 if the last configuration reload succeeded, 0 if it was rejected (the previous configuration keeps running).",
        )?;
        let config_last_reload_success_timestamp = IntGauge::new(
            name("config_last_reload_success_timestamp_seconds"),
            "When the configuration was last loaded successfully (unix seconds).",
        )?;
        let http_connections_open = IntGauge::new(
            name("http_connections_open"),
            "Open HTTP connections, counted per socket (TLS handshakes in progress included); at most --web.max-connections, plus those being closed.",
        )?;
        let http_connections_rejected = IntCounterVec::new(
            Opts::new(
                name("http_connections_rejected_total"),
                "HTTP connections closed by the connection limits: closed=\"oldest_unserved\" for the oldest connection that had not sent a request, closed to make room under --web.max-connections; closed=\"longest_idle\" for the connection idle longest between requests, closed to make room when none was unserved; closed=\"newcomer\" for a new connection closed because every open one had a request in progress; closed=\"per_client\" for a new connection closed because its client held --web.max-connections-per-client; closed=\"slow_reader\" for a connection closed because it read its response slower than --web.min-write-rate.",
            ),
            &["closed"],
        )?;
        for closed in [
            "oldest_unserved",
            "longest_idle",
            "newcomer",
            "per_client",
            "slow_reader",
        ] {
            http_connections_rejected.with_label_values(&[closed]);
        }
        let http_auth_refused = IntCounterVec::new(
            Opts::new(
                name("http_auth_refused_total"),
                "Requests refused by basic auth (--web.config.file): reason=\"credentials\" for missing or wrong credentials or an unknown user; reason=\"client_busy\" for a request whose client already had its share of password checks in flight (401 at once, no check run); reason=\"saturated\" for a request refused with 429 because the password-check queue was full (a cached login is never refused so).",
            ),
            &["reason"],
        )?;
        for reason in ["credentials", "client_busy", "saturated"] {
            http_auth_refused.with_label_values(&[reason]);
        }
        let discovery_runs = IntCounterVec::new(
            Opts::new(
                name("discovery_runs_total"),
                "Discovery runs, by source (pages: GET /me/accounts; whatsapp_business_accounts: every configured business's owned and client accounts).",
            ),
            &["source"],
        )?;
        let discovery_errors = IntCounterVec::new(
            Opts::new(
                name("discovery_errors_total"),
                "Discovery runs in which a read failed, by source; what was found before stays.",
            ),
            &["source"],
        )?;
        let discovery_last_success = IntGaugeVec::new(
            Opts::new(
                name("discovery_last_success_timestamp_seconds"),
                "When every read of the source last succeeded (unix seconds).",
            ),
            &["source"],
        )?;
        let discovery_last_run_successful = IntGaugeVec::new(
            Opts::new(
                name("discovery_last_run_successful"),
                "1 if every read of the source's last discovery run succeeded, 0 if one failed.",
            ),
            &["source"],
        )?;
        let discovery_targets = IntGaugeVec::new(
            Opts::new(
                name("discovery_targets"),
                "Targets the source adds: found, admitted by include/exclude and not listed in the config (a listed target with the same id wins).",
            ),
            &["source"],
        )?;
        let shard = IntGaugeVec::new(
            Opts::new(
                name("shard_info"),
                "Always 1: this instance's shard (from 0) and how many shards share the targets (--shard, --total-shards); total_shards=\"1\" when one instance polls everything.",
            ),
            &["shard", "total_shards"],
        )?;
        let build_info = IntGaugeVec::new(
            Opts::new(
                name("build_info"),
                "Build information of the running exporter; always 1.",
            ),
            &["version", "revision"],
        )?;
        build_info
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                option_env!("GIT_REVISION").unwrap_or("unknown"),
            ])
            .set(1);

        registry.register(Box::new(api_requests.clone()))?;
        registry.register(Box::new(api_http_requests.clone()))?;
        registry.register(Box::new(api_batch_fallbacks.clone()))?;
        registry.register(Box::new(api_errors.clone()))?;
        registry.register(Box::new(api_retries.clone()))?;
        registry.register(Box::new(polls.clone()))?;
        registry.register(Box::new(poll_duration.clone()))?;
        registry.register(Box::new(poll_queue.clone()))?;
        registry.register(Box::new(read_errors.clone()))?;
        registry.register(Box::new(value_errors.clone()))?;
        registry.register(Box::new(dropped_items.clone()))?;
        registry.register(Box::new(targets.clone()))?;
        registry.register(Box::new(requests_in_flight.clone()))?;
        registry.register(Box::new(throttle_events.clone()))?;
        registry.register(Box::new(usage_header_errors.clone()))?;
        registry.register(Box::new(config_last_reload_successful.clone()))?;
        registry.register(Box::new(config_last_reload_success_timestamp.clone()))?;
        registry.register(Box::new(http_connections_open.clone()))?;
        registry.register(Box::new(http_connections_rejected.clone()))?;
        registry.register(Box::new(http_auth_refused.clone()))?;
        registry.register(Box::new(discovery_runs.clone()))?;
        registry.register(Box::new(discovery_errors.clone()))?;
        registry.register(Box::new(discovery_last_success.clone()))?;
        registry.register(Box::new(discovery_last_run_successful.clone()))?;
        registry.register(Box::new(discovery_targets.clone()))?;
        registry.register(Box::new(shard.clone()))?;
        registry.register(Box::new(build_info))?;

        // Batch isolation (issue 18).
        let target_solo = IntGaugeVec::new(
            Opts::new(
                name("target_solo"),
                "1 for each target polled outside batch calls, by reason: timeout (its call timed out when sent alone after a batch deadline, a whole-batch failure or a null entry) or slow (it answered, slower than polling.batch_timeout). It rejoins batches after 3 prompt answers in a row.",
            ),
            &["target_id", "reason"],
        )?;
        let api_batch_timeouts = IntCounter::new(
            name("api_batch_timeouts_total"),
            "Graph API batch calls whose HTTP request passed polling.batch_timeout; their calls were then sent one by one (also counted in api_batch_fallbacks_total).",
        )?;
        registry.register(Box::new(target_solo.clone()))?;
        registry.register(Box::new(api_batch_timeouts.clone()))?;
        let api_versions = ApiVersionGauges::new(name)?;
        registry.register(Box::new(api_versions.end.clone()))?;
        registry.register(Box::new(api_versions.info.clone()))?;
        registry.register(Box::new(api_versions.warnings.clone()))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;

        Ok(Self {
            registry,
            api_requests,
            api_http_requests,
            api_batch_fallbacks,
            api_errors,
            api_retries,
            polls,
            poll_duration,
            poll_queue,
            read_errors,
            value_errors,
            dropped_items,
            targets,
            requests_in_flight,
            rate_limit_usage,
            throttle_events,
            usage_header_errors,
            config_last_reload_successful,
            config_last_reload_success_timestamp,
            http_connections_open,
            http_connections_rejected,
            http_auth_refused,
            discovery_runs,
            discovery_errors,
            discovery_last_success,
            discovery_last_run_successful,
            discovery_targets,
            shard,

            target_solo,
            api_batch_timeouts,
            api_versions,
        })
    }

    /// Counts one discovery run of `source` that ended at `at` (unix seconds).
    pub fn record_discovery_run(&self, source: &str, succeeded: bool, at: i64) {
        self.discovery_runs.with_label_values(&[source]).inc();
        self.discovery_last_run_successful
            .with_label_values(&[source])
            .set(i64::from(succeeded));
        if succeeded {
            self.discovery_last_success
                .with_label_values(&[source])
                .set(at);
        } else {
            self.discovery_errors.with_label_values(&[source]).inc();
        }
    }

    /// Drops every discovery series of `source` (the config no longer has it).
    pub fn remove_discovery_source(&self, source: &str) {
        // An absent series is not an error here: the source may never have run.
        let _ = self.discovery_runs.remove_label_values(&[source]);
        let _ = self.discovery_errors.remove_label_values(&[source]);
        let _ = self.discovery_last_success.remove_label_values(&[source]);
        let _ = self
            .discovery_last_run_successful
            .remove_label_values(&[source]);
        let _ = self.discovery_targets.remove_label_values(&[source]);
    }

    /// Encodes every family in the text exposition format.
    pub fn encode(&self) -> Result<Vec<u8>, prometheus::Error> {
        let mut out = Vec::with_capacity(8 * 1024);
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        self.rate_limit_usage.encode_into(&mut out);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_to_other_versions_leaves_only_their_end_dates_and_served_versions() {
        let metrics = ExporterMetrics::new().expect("metrics");
        let versions = &metrics.api_versions;
        let lines = |metrics: &ExporterMetrics| -> Vec<String> {
            String::from_utf8(metrics.encode().expect("encode"))
                .expect("utf-8")
                .lines()
                .filter(|line| line.starts_with("meta_messaging_exporter_api_version"))
                .map(str::to_owned)
                .collect()
        };
        versions.configure("v23.0", "v25.0");
        versions.served(Api::Marketing, "v25.0", "v25.0");
        versions.served(Api::Marketing, "v25.0", "v26.0");
        assert_eq!(
            lines(&metrics),
            [
                "meta_messaging_exporter_api_version_end_timestamp_seconds{api=\"graph\",version=\"v23.0\"} 1822978800",
                "meta_messaging_exporter_api_version_end_timestamp_seconds{api=\"marketing\",version=\"v25.0\"} 1803369600",
                "meta_messaging_exporter_api_version_info{api=\"marketing\",requested=\"v25.0\",served=\"v26.0\"} 1",
            ]
        );
        versions.configure("v27.0", "v27.0");
        assert_eq!(
            lines(&metrics),
            Vec::<String>::new(),
            "no dates set for v27.0"
        );
    }

    #[test]
    fn every_version_warning_counts_and_each_endpoint_is_logged_once_a_day() {
        let metrics = ExporterMetrics::new().expect("metrics");
        let versions = &metrics.api_versions;
        let day = 20_791;
        assert!(
            versions.warned("campaign_insights", day),
            "the first is logged"
        );
        assert!(
            !versions.warned("campaign_insights", day),
            "the same day: not again"
        );
        assert!(
            versions.warned("ad_account_insights", day),
            "another endpoint is"
        );
        assert!(
            versions.warned("campaign_insights", day + 1),
            "the next day is"
        );
        let text = String::from_utf8(metrics.encode().expect("encode")).expect("utf-8");
        assert!(text.contains("meta_messaging_exporter_api_version_warnings_total{endpoint=\"campaign_insights\"} 3"), "{text}");
        assert!(text.contains("meta_messaging_exporter_api_version_warnings_total{endpoint=\"ad_account_insights\"} 1"), "{text}");
    }

    #[test]
    fn usage_series_are_written_in_label_order_after_the_registry_and_go_when_removed() {
        let metrics = ExporterMetrics::new().expect("metrics");
        let usage = &metrics.rate_limit_usage;
        let name = "meta_messaging_exporter_rate_limit_usage_percent";
        let text = |metrics: &ExporterMetrics| {
            String::from_utf8(metrics.encode().expect("encode")).expect("utf-8")
        };
        assert!(!text(&metrics).contains(name), "no family without series");
        usage.set(["app", "tok-b", "app", "call_count"], 28.0);
        usage.set(["app", "tok-a", "app", "total_time"], 2.5);
        usage.set(["business_use_case", "1\"2", "pages", "call_count"], 90.0);
        assert_eq!(usage.get(["app", "tok-a", "app", "total_time"]), Some(2.5));
        let encoded = text(&metrics);
        let family = &encoded[encoded
            .find(&format!("# HELP {name} "))
            .expect("the family")..];
        assert_eq!(
            family.lines().skip(1).collect::<Vec<_>>(),
            [
                format!("# TYPE {name} gauge"),
                format!("{name}{{scope=\"app\",id=\"tok-a\",type=\"app\",metric=\"total_time\"}} 2.5"),
                format!("{name}{{scope=\"app\",id=\"tok-b\",type=\"app\",metric=\"call_count\"}} 28"),
                format!("{name}{{scope=\"business_use_case\",id=\"1\\\"2\",type=\"pages\",metric=\"call_count\"}} 90"),
            ]
        );
        usage.remove(["app", "tok-b", "app", "call_count"]);
        usage.remove(["app", "never-set", "app", "call_count"]);
        assert!(!text(&metrics).contains("tok-b"));
        assert_eq!(usage.get(["app", "tok-b", "app", "call_count"]), None);
    }
}

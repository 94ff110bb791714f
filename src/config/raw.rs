//! The config file as written: serde mirrors of the YAML, before any checking.
//!
//! This module owns the file's shape and nothing else. Every struct denies unknown fields, so
//! a misspelt key is an error naming its key path and line instead of a setting silently
//! ignored. Values stay as written (durations, periods, dates and token references are
//! strings) because validation needs the original text: `${VAR}` expansion runs on string
//! values after parsing, and messages quote the bad value. Nothing here has a default either;
//! an absent key is `None` and validation decides what it means, so the defaults live in one
//! place next to the rules that check them.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Where and how to call the Graph API, and the token targets use by default.
    pub graph_api: Option<RawGraphApi>,
    /// Scheduler-wide limits and retry policy.
    pub polling: Option<RawPolling>,
    /// How to stay inside Meta's rate limits.
    pub rate_limits: Option<RawRateLimits>,
    /// Facebook Pages whose messaging insights are polled.
    pub pages: Option<Vec<RawPage>>,
    /// Marketing-message campaigns whose insights are polled.
    pub campaigns: Option<Vec<RawCampaign>>,
    /// WhatsApp Business Accounts whose analytics are polled.
    pub whatsapp_business_accounts: Option<Vec<RawWaba>>,
    /// Ad accounts whose insights (`act_<id>/insights`) are polled; the keys of a campaign.
    pub ad_accounts: Option<Vec<RawCampaign>>,
    /// Pages and WhatsApp Business Accounts found through the Graph API instead of listed.
    pub discovery: Option<RawDiscovery>,
}

/// The `discovery` section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDiscovery {
    /// How often discovery runs, as a humantime duration.
    pub interval: Option<String>,
    /// Pages from `GET /me/accounts` with the `graph_api` token.
    pub pages: Option<RawPageDiscovery>,
    /// WhatsApp Business Accounts owned by, or shared with, businesses.
    pub whatsapp_business_accounts: Option<RawWabaDiscovery>,
}

/// `discovery.pages`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPageDiscovery {
    /// Regular expressions; a Page whose name or id matches one is kept (all when absent).
    pub include: Option<Vec<String>>,
    /// Regular expressions; a Page whose name or id matches one is left out.
    pub exclude: Option<Vec<String>>,
    /// Any key a `pages` entry takes except `id` and the token, for every discovered Page.
    pub defaults: Option<serde_yaml::Mapping>,
}

/// `discovery.whatsapp_business_accounts`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWabaDiscovery {
    /// Businesses whose owned and client WhatsApp Business Accounts are listed.
    pub business_ids: Option<Vec<StringOrInteger>>,
    /// Regular expressions; an account whose name or id matches one is kept (all when absent).
    pub include: Option<Vec<String>>,
    /// Regular expressions; an account whose name or id matches one is left out.
    pub exclude: Option<Vec<String>>,
    /// Any key a `whatsapp_business_accounts` entry takes except `id` and the token.
    pub defaults: Option<serde_yaml::Mapping>,
}

/// The `graph_api` section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGraphApi {
    /// Scheme and host (and optional path prefix) without the version; default
    /// `https://graph.facebook.com`.
    pub base_url: Option<String>,
    /// API version of every read, such as `v27.0`. Default: the newest version whose changes
    /// break none of the reads (`catalog::versions::DEFAULT_VERSION`).
    pub version: Option<String>,
    /// API version of campaign and ad-account reads (insights and their names), which the
    /// Marketing API retires long before the Graph API. Default: `version`.
    pub marketing_version: Option<String>,
    /// Token for every target that does not set its own, usually `${META_ACCESS_TOKEN}`.
    pub access_token: Option<String>,
    /// File holding that token instead; re-read when it changes.
    pub access_token_file: Option<String>,
    /// App secret; when set, every request is signed with `appsecret_proof`.
    pub app_secret: Option<String>,
    /// App id; with `app_secret`, enables token health checks with the app token.
    pub app_id: Option<StringOrInteger>,
    /// How often every token in use is checked with `debug_token`, as a humantime duration.
    pub token_check_interval: Option<String>,
    /// Limit for establishing a connection, as a humantime duration.
    pub connect_timeout: Option<String>,
    /// Limit for a whole request including the body, as a humantime duration.
    pub request_timeout: Option<String>,
    /// Largest response body accepted, in bytes.
    pub max_response_bytes: Option<usize>,
}

/// The `polling` section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolling {
    /// Graph API requests in flight at once, across all targets.
    pub max_concurrent_requests: Option<usize>,
    /// Extra attempts after a transient failure.
    pub max_retries: Option<u32>,
    /// First retry delay, as a humantime duration.
    pub retry_initial_backoff: Option<String>,
    /// Cap on the retry delay, as a humantime duration.
    pub retry_max_backoff: Option<String>,
    /// Staleness limit, in intervals, for targets without `stale_after`.
    pub stale_after_intervals: Option<u32>,
    /// How long after start (or after a reload adds or changes a target) every target has
    /// polled once, as a humantime duration; never more than the target's interval.
    pub startup_spread: Option<String>,
    /// How long a metric or field the Graph API rejected stays out of requests before it is
    /// asked for again, as a humantime duration.
    pub retry_dropped_after: Option<String>,
    /// Whether requests due together with one token go out as Graph batch calls.
    pub batch: Option<bool>,
    /// How long a request waits for others to share its batch call, as a humantime duration.
    pub batch_window: Option<String>,
    /// The deadline of a batch call's HTTP request, as a humantime duration: past it every
    /// entry goes again alone, so one hanging target delays the others of its batch by at
    /// most this long, once. Below `graph_api.request_timeout`.
    pub batch_timeout: Option<String>,
    /// The most series one target exports; beyond it the target exports what fits and
    /// counts a `series_limit` value problem.
    pub max_series_per_target: Option<usize>,
    /// The most series one metric of one target exports (its breakdown values); beyond it
    /// the metric exports what fits and counts a `series_limit` value problem.
    pub max_series_per_metric: Option<usize>,
}

/// The `rate_limits` section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimits {
    /// Usage percent (of any limit Meta reports) above which intervals stretch.
    pub slowdown_above_percent: Option<f64>,
    /// How many times its interval a target waits at 100 % usage.
    pub max_interval_stretch: Option<f64>,
    /// First pause after a throttle without Meta's estimate, as a humantime duration.
    pub throttle_initial_backoff: Option<String>,
    /// Cap on that pause, as a humantime duration.
    pub throttle_max_backoff: Option<String>,
    /// Most Graph API calls one token may make in any hour; unlimited when absent.
    pub calls_per_hour_per_token: Option<u32>,
    /// Most WhatsApp Business Management calls for one WABA in any hour.
    pub whatsapp_calls_per_hour: Option<u32>,
}

/// One entry of `pages`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPage {
    /// The Page id.
    pub id: StringOrInteger,
    /// Token for this Page, overriding `graph_api.access_token`.
    pub access_token: Option<String>,
    /// File holding the token for this Page instead.
    pub access_token_file: Option<String>,
    /// Time between polls, as a humantime duration.
    pub interval: Option<String>,
    /// How long values are served after polls start failing, as a humantime duration.
    pub stale_after: Option<String>,
    /// Period for metric entries that do not set their own.
    pub period: Option<String>,
    /// Metrics to request; absent means every documented metric.
    pub metrics: Option<Vec<RawMetricEntry>>,
}

/// One entry of a Page's `metrics`: a bare name, or a map with per-metric settings.
#[derive(Debug, Clone, PartialEq)]
pub enum RawMetricEntry {
    /// `- page_messages_sent`: the metric with the Page's period and no breakdowns.
    Name(String),
    /// `- name: page_messages_sent` with optional `period`, `window` and `breakdowns`.
    Detailed(RawPageMetric),
}

/// The map form of a Page metric entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPageMetric {
    /// API metric name.
    pub name: String,
    /// Aggregation period; defaults to the Page's.
    pub period: Option<String>,
    /// How far back `since` reaches, as a humantime duration.
    pub window: Option<String>,
    /// Breakdown dimensions, each becoming a label.
    pub breakdowns: Option<Vec<String>>,
}

/// One entry of `campaigns`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCampaign {
    /// The message campaign id.
    pub id: StringOrInteger,
    /// Token for this campaign, overriding `graph_api.access_token`.
    pub access_token: Option<String>,
    /// File holding the token for this campaign instead.
    pub access_token_file: Option<String>,
    /// Time between polls, as a humantime duration.
    pub interval: Option<String>,
    /// How long values are served after polls start failing, as a humantime duration.
    pub stale_after: Option<String>,
    /// Insights fields to request; absent means the catalog's default set.
    pub fields: Option<Vec<String>>,
    /// A relative range such as `last_30d`; excludes `time_range`.
    pub date_preset: Option<String>,
    /// Fixed calendar dates; excludes `date_preset`.
    pub time_range: Option<RawTimeRange>,
}

/// A campaign's `time_range`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeRange {
    /// First day, `YYYY-MM-DD`.
    pub since: String,
    /// Last day, `YYYY-MM-DD`, inclusive.
    pub until: String,
}

/// One entry of `whatsapp_business_accounts`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWaba {
    /// The WhatsApp Business Account id.
    pub id: StringOrInteger,
    /// Token for this account, overriding `graph_api.access_token`.
    pub access_token: Option<String>,
    /// File holding the token for this account instead.
    pub access_token_file: Option<String>,
    /// Time between polls, as a humantime duration.
    pub interval: Option<String>,
    /// How long values are served after polls start failing, as a humantime duration.
    pub stale_after: Option<String>,
    /// Bucket size: `HALF_HOUR`, `DAY` or `MONTH`.
    pub granularity: Option<String>,
    /// Phone numbers to split the analytics by, digits only.
    pub phone_numbers: Option<Vec<StringOrInteger>>,
    /// Countries to count in `analytics`, ISO 3166 alpha-2.
    pub country_codes: Option<Vec<String>>,
    /// `pricing_analytics`: `false` turns it off, a map sets it up; on by default.
    #[serde(default, deserialize_with = "present")]
    pub pricing: Option<RawToggle<RawBilling>>,
    /// `conversation_analytics`: off unless present.
    #[serde(default, deserialize_with = "present")]
    pub conversations: Option<RawToggle<RawBilling>>,
    /// Template analytics: off unless present.
    #[serde(default, deserialize_with = "present")]
    pub templates: Option<RawToggle<RawTemplates>>,
    /// Quality rating and messaging limit of the phone numbers; on by default.
    pub phone_numbers_health: Option<bool>,
}

/// A section that is either a switch (`pricing: false`) or its settings (`pricing: {...}`).
#[derive(Debug, Clone, PartialEq)]
pub enum RawToggle<T> {
    /// `true` (the defaults) or `false` (off).
    Switch(bool),
    /// The settings, the section on.
    Settings(T),
}

/// `pricing` or `conversations` of a WABA entry. The filters are a map so that each field
/// takes the filters it has (`pricing_types` or `conversation_types`); the validator names an
/// unknown one.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBilling {
    /// `HALF_HOUR`, `DAILY` or `MONTHLY`.
    pub granularity: Option<String>,
    /// Breakdown dimensions.
    pub dimensions: Option<Vec<String>>,
    /// Filter: phone numbers, digits only.
    pub phone_numbers: Option<Vec<StringOrInteger>>,
    /// Filter: ISO 3166 alpha-2 country codes.
    pub country_codes: Option<Vec<String>>,
    /// Filter (`pricing`): pricing categories.
    pub pricing_categories: Option<Vec<String>>,
    /// Filter (`pricing`): pricing types.
    pub pricing_types: Option<Vec<String>>,
    /// Filter (`conversations`): conversation categories.
    pub conversation_categories: Option<Vec<String>>,
    /// Filter (`conversations`): conversation types.
    pub conversation_types: Option<Vec<String>>,
    /// Filter (`conversations`): conversation directions.
    pub conversation_directions: Option<Vec<String>>,
}

/// `templates` of a WABA entry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTemplates {
    /// Template ids; absent means every APPROVED template.
    pub ids: Option<Vec<StringOrInteger>>,
    /// Metric types.
    pub metrics: Option<Vec<String>>,
}

/// A key that is there, even with an empty value (`templates:`), is `Some`: serde's own
/// `Option` would read the empty value as absent, and a section written down is meant to be on.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for RawToggle<T> {
    /// By hand, for the reason given at [`RawMetricEntry`]'s impl: the map goes straight to the
    /// settings' derived impl, whose errors name an unknown key and where it is.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ToggleVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ToggleVisitor<T> {
            type Value = RawToggle<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or a map of settings")
            }

            fn visit_bool<E: de::Error>(self, on: bool) -> Result<Self::Value, E> {
                Ok(RawToggle::Switch(on))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                // `templates:` with nothing after it: the section is there, with its defaults.
                Ok(RawToggle::Switch(true))
            }

            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(RawToggle::Settings)
            }
        }

        deserializer.deserialize_any(ToggleVisitor(std::marker::PhantomData))
    }
}

/// A string that may also be written as an unquoted non-negative integer.
///
/// Ids and phone numbers look like numbers, so `id: 123456` is the natural way to write one;
/// YAML reads that as an integer, and a plain `String` field would reject it. The integer is
/// turned back into its decimal digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringOrInteger(pub String);

impl<'de> Deserialize<'de> for StringOrInteger {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;

        impl Visitor<'_> for TextVisitor {
            type Value = StringOrInteger;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a non-negative integer")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(StringOrInteger(text.to_owned()))
            }

            fn visit_u64<E: de::Error>(self, number: u64) -> Result<Self::Value, E> {
                Ok(StringOrInteger(number.to_string()))
            }
        }

        deserializer.deserialize_any(TextVisitor)
    }
}

impl<'de> Deserialize<'de> for RawMetricEntry {
    /// Dispatches on the YAML node's kind by hand rather than with `#[serde(untagged)]`:
    /// untagged buffers the node and, when no variant fits, reports only "did not match any
    /// variant", losing the unknown key and its position inside a map entry. Here the map
    /// goes straight to [`RawPageMetric`]'s derived impl, whose errors keep both.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;

        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = RawMetricEntry;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a metric name or a map with name, period, window and breakdowns")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
                Ok(RawMetricEntry::Name(name.to_owned()))
            }

            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
                RawPageMetric::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawMetricEntry::Detailed)
            }
        }

        deserializer.deserialize_any(EntryVisitor)
    }
}

/// The keys every target entry (`pages`, `campaigns`, `whatsapp_business_accounts`) has, as
/// written: the validator checks them once for all three kinds.
pub trait RawTargetKeys {
    /// `access_token`.
    fn access_token(&self) -> Option<&str>;
    /// `access_token_file`.
    fn access_token_file(&self) -> Option<&str>;
    /// `interval`.
    fn interval(&self) -> Option<&str>;
    /// `stale_after`.
    fn stale_after(&self) -> Option<&str>;
}

macro_rules! raw_target_keys {
    ($($raw:ty),+) => {$(
        impl RawTargetKeys for $raw {
            fn access_token(&self) -> Option<&str> {
                self.access_token.as_deref()
            }
            fn access_token_file(&self) -> Option<&str> {
                self.access_token_file.as_deref()
            }
            fn interval(&self) -> Option<&str> {
                self.interval.as_deref()
            }
            fn stale_after(&self) -> Option<&str> {
                self.stale_after.as_deref()
            }
        }
    )+};
}

raw_target_keys!(RawPage, RawCampaign, RawWaba);

//! Configuration: the YAML file as written (raw) and the checked form the exporter runs on.
//!
//! Loading is two-stage. [`raw`] mirrors the file with serde (`deny_unknown_fields`, every
//! field documented); validation then expands `${VAR}` inside string values, reads token
//! files, parses durations and enums, fills defaults and checks ranges, producing [`Config`].
//! Every error names the key path (`pages[1].metrics[0].period`) and, where the YAML parser
//! gives one, the line. Names Meta does not document become warnings, not errors.

pub mod raw;

mod expand;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
mod token_files;
mod validate;
mod whatsapp;

pub use self::token_files::{
    named_token_files, reread_token_files, rotate_tokens, token_files, TokenFileReads,
};
pub use self::whatsapp::{BillingAnalytics, BillingField, BillingGranularity, TemplateSettings};

use self::validate::Checker;

use std::collections::hash_map::{Entry, HashMap};
use std::fmt;
use std::hash::Hash;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use reqwest::Url;

use crate::catalog::{self, PageMetricInfo};
use crate::secret::{AccessToken, AppSecret};

use self::raw::{
    RawCampaign, RawConfig, RawGraphApi, RawMetricEntry, RawPage, RawPolling, RawRateLimits,
    RawTimeRange, RawWaba,
};

/// The checked configuration the exporter runs on.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where and how to call the Graph API.
    pub graph_api: GraphApiConfig,
    /// Scheduler-wide limits and retry policy.
    pub polling: PollingConfig,
    /// How to stay inside Meta's rate limits.
    pub rate_limits: RateLimitConfig,
    /// Facebook Pages whose messaging insights are polled.
    pub pages: Vec<Arc<PageTarget>>,
    /// Marketing-message campaigns whose insights are polled.
    pub campaigns: Vec<Arc<CampaignTarget>>,
    /// WhatsApp Business Accounts whose analytics are polled.
    pub whatsapp_business_accounts: Vec<Arc<WabaTarget>>,
    /// Ad accounts whose insights are polled (`act_<id>/insights`); the fields of a campaign.
    pub ad_accounts: Vec<Arc<CampaignTarget>>,
    /// Where Pages and WhatsApp Business Accounts are found besides the lists above.
    pub discovery: Option<DiscoveryConfig>,
    /// Non-fatal findings (unknown metric names, short intervals), each naming its key.
    pub warnings: Vec<String>,
}

/// Graph API connection settings.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphApiConfig {
    /// Base URL without version, e.g. `https://graph.facebook.com`.
    pub base_url: String,
    /// API version path segment of Page, WhatsApp, discovery and token reads, e.g. `v27.0`.
    pub version: String,
    /// API version path segment of campaign and ad-account reads (insights and names): the
    /// Marketing API retires a version years before the Graph API does.
    pub marketing_version: String,
    /// When set, every request carries `appsecret_proof`.
    pub app_secret: Option<AppSecret>,
    /// The app's id; with `app_secret` it forms the app token that checks every token in use
    /// (`debug_token`). Token health is off without both.
    pub app_id: Option<String>,
    /// How often token health is checked (`graph_api.token_check_interval`, default 1h).
    pub token_check_interval: Duration,
    /// Limit for establishing a connection.
    pub connect_timeout: Duration,
    /// Limit for a whole request, body included.
    pub request_timeout: Duration,
    /// Largest response body accepted; a larger one is an error, not an allocation.
    pub max_response_bytes: usize,
}

/// Scheduler-wide settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PollingConfig {
    /// Graph API requests in flight at once, across all targets.
    pub max_concurrent_requests: usize,
    /// Extra attempts after a transient failure, before the poll counts as failed.
    pub max_retries: u32,
    /// First retry delay; later ones double, with jitter, up to `retry_max_backoff`.
    pub retry_initial_backoff: Duration,
    /// Cap on the retry delay.
    pub retry_max_backoff: Duration,
    /// Default staleness limit, in intervals, for targets without `stale_after`.
    pub stale_after_intervals: u32,
    /// Every target's first poll (at start, or after a reload adds or changes it) comes
    /// within this long, capped at the target's interval; later polls keep that phase.
    pub startup_spread: Duration,
    /// How long a metric or field the Graph API rejected (code 100) stays out of requests
    /// before it is asked for again: Meta sometimes refuses a metric only for a while.
    pub retry_dropped_after: Duration,
    /// Requests due within [`Self::batch_window`] of each other that share a token go out
    /// together as Graph batch calls (`POST /{version}/`, up to 50 each) when set.
    pub batch: bool,
    /// How long the first request of a batch waits for others before the batch is sent.
    pub batch_window: Duration,
    /// The deadline of a batch call's HTTP request (below `graph_api.request_timeout`). Past
    /// it, or when the batch fails as a whole, each entry goes again alone; an entry that is
    /// then slow or times out polls outside batches until it answers promptly again.
    pub batch_timeout: Duration,
    /// The most series one target exports, whatever Meta answers.
    pub max_series_per_target: usize,
    /// The most series one metric of one target exports.
    pub max_series_per_metric: usize,
}

impl PollingConfig {
    /// The span first polls are spread over, so their requests go out within
    /// `startup_spread`: a batched request waits up to `batch_window` after its poll starts.
    pub fn first_poll_spread(&self) -> Duration {
        if self.batch {
            self.startup_spread.saturating_sub(self.batch_window)
        } else {
            self.startup_spread
        }
    }
}

/// Rate-limit behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitConfig {
    /// Usage percent above which the intervals of targets in that scope stretch.
    pub slowdown_above_percent: f64,
    /// Interval multiplier reached at 100 % usage.
    pub max_interval_stretch: f64,
    /// First pause after a throttle when Meta gives no estimate; doubles with jitter.
    pub throttle_initial_backoff: Duration,
    /// Cap on that pause.
    pub throttle_max_backoff: Duration,
    /// Most calls any one token makes in any hour, when set.
    pub calls_per_hour_per_token: Option<u32>,
    /// Most WhatsApp Business Management calls the exporter makes for one WABA in any hour.
    pub whatsapp_calls_per_hour: u32,
}

/// How often discovery runs, and how often names of static targets are read, by default.
pub const DEFAULT_DISCOVERY_INTERVAL: Duration = Duration::from_secs(60 * 60);

impl Config {
    /// How often names are read for the info series: once per discovery interval, so names
    /// cost no more calls than discovery itself.
    pub fn names_interval(&self) -> Duration {
        self.discovery
            .as_ref()
            .map_or(DEFAULT_DISCOVERY_INTERVAL, |discovery| discovery.interval)
    }
}

/// Where a target came from: the `origin` label of its info series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Origin {
    /// Listed in the config file.
    #[default]
    Static,
    /// Found by `discovery`.
    Discovered,
}

impl Origin {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Static => "static",
            Origin::Discovered => "discovered",
        }
    }
}

/// The `discovery` section, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveryConfig {
    /// Time between two discovery runs.
    pub interval: Duration,
    /// The `graph_api` token, which lists the Pages and reads the businesses' accounts.
    pub credentials: Credentials,
    /// Pages from `GET /me/accounts`, each polled with its own Page token.
    pub pages: Option<PageDiscovery>,
    /// WhatsApp Business Accounts of businesses, polled with the `graph_api` token.
    pub whatsapp_business_accounts: Option<WabaDiscovery>,
}

/// `discovery.pages`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct PageDiscovery {
    /// Which Pages are kept.
    pub filter: DiscoveryFilter,
    /// What every discovered Page is polled for; its id, token and name come from discovery.
    pub defaults: PageTarget,
}

/// `discovery.whatsapp_business_accounts`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct WabaDiscovery {
    /// Businesses whose owned and client accounts are listed.
    pub business_ids: Vec<String>,
    /// Which accounts are kept.
    pub filter: DiscoveryFilter,
    /// What every discovered account is polled for; its id comes from discovery.
    pub defaults: WabaTarget,
}

/// `include` and `exclude` of a discovery source.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DiscoveryFilter {
    /// When not empty, only objects whose name or id one of these matches are kept.
    pub include: Vec<Pattern>,
    /// Objects whose name or id one of these matches are left out, even if included.
    pub exclude: Vec<Pattern>,
}

impl DiscoveryFilter {
    /// Whether an object with this id and name (if Meta gave one) is kept.
    pub fn admits(&self, id: &str, name: Option<&str>) -> bool {
        let matches = |pattern: &Pattern| {
            pattern.0.is_match(id) || name.is_some_and(|name| pattern.0.is_match(name))
        };
        (self.include.is_empty() || self.include.iter().any(matches))
            && !self.exclude.iter().any(matches)
    }
}

/// A regular expression from the config, matched anywhere in the text (anchor it with `^`
/// and `$` to match whole names).
#[derive(Debug, Clone)]
pub struct Pattern(pub regex::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

/// Where a target's token came from, resolved to the token itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Credentials {
    /// The token to send.
    pub token: AccessToken,
    /// The file it was read from, when it came from `access_token_file` (watched for rotation).
    pub file: Option<PathBuf>,
}

/// Settings every target kind has.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Time between the starts of two polls.
    pub interval: Duration,
    /// How long the last good values are served after polls start failing.
    pub stale_after: Duration,
}

/// A Facebook Page polled at `GET /{page-id}/insights`.
#[derive(Debug, Clone, PartialEq)]
pub struct PageTarget {
    /// The Page id.
    pub id: String,
    /// Token for this Page (its own or the `graph_api` default).
    pub credentials: Credentials,
    /// Interval and staleness.
    pub schedule: Schedule,
    /// Metrics to request, in config order.
    pub metrics: Vec<PageMetric>,
    /// Listed in the config or found by discovery.
    pub origin: Origin,
    /// The Page's name as discovery found it; static Pages read theirs while polling.
    pub name: Option<String>,
}

/// One metric entry of a Page target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageMetric {
    /// API metric name.
    pub name: String,
    /// Aggregation period.
    pub period: Period,
    /// `since = now - window`, `until = now`; `None` lets the API pick its recent values.
    pub window: Option<Duration>,
    /// Breakdown dimensions, in config order.
    pub breakdowns: Vec<String>,
}

/// Page insights `period` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    /// `day`
    Day,
    /// `week`
    Week,
    /// `month`
    Month,
    /// `days_28`
    Days28,
    /// `total_over_range`
    TotalOverRange,
}

impl Period {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Days28 => "days_28",
            Period::TotalOverRange => "total_over_range",
        }
    }

    /// Parses the API spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "day" => Some(Period::Day),
            "week" => Some(Period::Week),
            "month" => Some(Period::Month),
            "days_28" => Some(Period::Days28),
            "total_over_range" => Some(Period::TotalOverRange),
            _ => None,
        }
    }
}

/// A marketing-message campaign polled at `GET /{campaign-id}/insights`.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignTarget {
    /// The message campaign id.
    pub id: String,
    /// Token for this campaign.
    pub credentials: Credentials,
    /// Interval and staleness.
    pub schedule: Schedule,
    /// Fields to request.
    pub fields: Vec<String>,
    /// Dates the insights cover.
    pub dates: CampaignDates,
}

/// The dates a campaign's insights cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CampaignDates {
    /// A relative range such as `last_30d`.
    Preset(String),
    /// `time_range={since,until}`, both inclusive calendar dates as Meta defines them.
    Range {
        /// First day.
        since: NaiveDate,
        /// Last day.
        until: NaiveDate,
    },
}

/// A WhatsApp Business Account polled at `GET /{waba-id}?fields=analytics...`.
#[derive(Debug, Clone, PartialEq)]
pub struct WabaTarget {
    /// The WhatsApp Business Account id.
    pub id: String,
    /// Token for this account.
    pub credentials: Credentials,
    /// Interval and staleness.
    pub schedule: Schedule,
    /// Bucket size.
    pub granularity: Granularity,
    /// `analytics` filter: only these phone numbers are counted (the API sums over them).
    pub phone_numbers: Vec<String>,
    /// `analytics` filter: only these countries are counted (the API sums over them).
    pub country_codes: Vec<String>,
    /// `pricing_analytics`, unless `pricing: false`.
    pub pricing: Option<BillingAnalytics>,
    /// `conversation_analytics`, when `conversations` is present.
    pub conversations: Option<BillingAnalytics>,
    /// Template analytics, when `templates` is present.
    pub templates: Option<TemplateSettings>,
    /// Quality rating and messaging limit of the WABA's phone numbers.
    pub phone_numbers_health: bool,
    /// Listed in the config or found by discovery.
    pub origin: Origin,
}

/// WhatsApp analytics bucket sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// `HALF_HOUR`
    HalfHour,
    /// `DAY`
    Day,
    /// `MONTH`
    Month,
}

impl Granularity {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::HalfHour => "HALF_HOUR",
            Granularity::Day => "DAY",
            Granularity::Month => "MONTH",
        }
    }

    /// Parses the API spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "HALF_HOUR" => Some(Granularity::HalfHour),
            "DAY" => Some(Granularity::Day),
            "MONTH" => Some(Granularity::Month),
            _ => None,
        }
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}", path.display())]
    Read {
        /// The file asked for.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The text is not YAML of the expected shape: a syntax error, an unknown key, a wrong type.
    #[error("{source_name}: {message}")]
    Parse {
        /// The file, or whatever name the caller gave the text.
        source_name: String,
        /// The parser's message, with the key path and, where known, line and column.
        message: String,
    },
    /// The YAML parsed but breaks one or more rules; every problem found is listed.
    #[error("{source_name}: {}", ProblemList(.problems))]
    Invalid {
        /// The file, or whatever name the caller gave the text.
        source_name: String,
        /// Every problem, in file order.
        problems: Vec<Problem>,
    },
}

/// One broken rule, at one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Path of the offending value, such as `pages[1].metrics[0].period`.
    pub key: String,
    /// What is wrong and what would be accepted; never contains a token.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Displays problems as a count followed by one indented line each.
struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        write!(f, "{count} problem{}:", if count == 1 { "" } else { "s" })?;
        for problem in self.0 {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

/// Reads a configuration file, and the directory its relative paths resolve against.
pub(crate) fn read_file(path: &Path) -> Result<(String, &Path), ConfigError> {
    let read_error = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let mut bytes = Vec::new();
    // `take` bounds the read: a config is kilobytes, and a path pointing at a huge file or a
    // device must not take the memory of the process that serves Prometheus.
    io::Read::read_to_end(
        &mut io::Read::take(
            std::fs::File::open(path).map_err(read_error)?,
            MAX_CONFIG_BYTES as u64 + 1,
        ),
        &mut bytes,
    )
    .map_err(read_error)?;
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(read_error(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "larger than {} MiB, far more than any config",
                MAX_CONFIG_BYTES >> 20
            ),
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| read_error(io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text")))?;
    let base_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    Ok((text, base_dir))
}

/// The largest config file read: real configs are kilobytes, and the YAML parser's cost grows
/// faster than the text.
pub const MAX_CONFIG_BYTES: usize = 4 << 20;
/// The deepest nesting of flow collections (`[...]`, `{...}`) a config may have; the deepest
/// real config nests about 6.
pub const MAX_FLOW_NESTING: usize = 64;
/// The widest indentation a config line may have, which bounds block nesting the same way.
pub const MAX_INDENTATION: usize = 256;

/// Why `text` nests too deeply to be parsed, if it does. Checked before the YAML parser runs:
/// its cost grows with the square of the nesting depth (200 KB of `[[[...]]]` took 38 s of
/// CPU to refuse), so the depth is bounded by a linear scan first. The scan skips quoted
/// strings and comments; block scalars (`|`, `>`) count as indented text, which the limit is
/// wide enough for.
fn nesting_problem(text: &str) -> Option<String> {
    let mut depth = 0usize;
    for (index, line) in text.lines().enumerate() {
        let indentation = line.len() - line.trim_start_matches(' ').len();
        if indentation > MAX_INDENTATION {
            return Some(format!(
                "line {}: indented by {indentation} spaces, more than the {MAX_INDENTATION} a config may nest",
                index + 1
            ));
        }
        let mut quote: Option<char> = None;
        let mut previous = ' ';
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (quote, c) {
                (Some('"'), '\\') => {
                    chars.next();
                }
                (Some('\''), '\'') if chars.peek() == Some(&'\'') => {
                    chars.next();
                }
                (Some(open), c) if c == open => quote = None,
                (Some(_), _) => {}
                // A quote opens a quoted scalar only where a scalar starts; inside a plain one
                // (`Joe's Page`) it is text, and must not hide what follows from the scan.
                (None, '"' | '\'')
                    if previous.is_whitespace()
                        || matches!(previous, ':' | ',' | '[' | '{' | '-' | '?') =>
                {
                    quote = Some(c)
                }
                (None, '#') if previous.is_whitespace() => break,
                (None, '[' | '{') => {
                    depth += 1;
                    if depth > MAX_FLOW_NESTING {
                        return Some(format!(
                            "line {}: collections nested more than {MAX_FLOW_NESTING} deep",
                            index + 1
                        ));
                    }
                }
                (None, ']' | '}') => depth = depth.saturating_sub(1),
                (None, _) => {}
            }
            previous = c;
        }
    }
    None
}

/// Reads and validates the file; environment variables from the process.
///
/// Relative `access_token_file` paths resolve against the file's directory, so a config and
/// its token files can move together.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let (text, base_dir) = read_file(path)?;
    load_text(&text, path, base_dir)
}

/// Validates the text read from `path` (token files resolve against `base_dir`), with
/// environment variables from the process: [`load`] after its read, for a caller that reads
/// the file itself.
pub fn load_text(text: &str, path: &Path, base_dir: &Path) -> Result<Config, ConfigError> {
    // A variable whose value is not UTF-8 counts as unset: no setting can use such a value.
    let env = |name: &str| std::env::var(name).ok();
    from_yaml(text, &path.display().to_string(), &env, base_dir)
}

/// Validates YAML text. `source` names the file in messages; `env` looks up variables
/// (tests pass a closure); relative `access_token_file` paths resolve against `base_dir`.
///
/// Stops at the first YAML error, since nothing after a parse failure can be trusted; once
/// the YAML parses, every rule is checked and every problem is reported together. Warnings
/// come back in [`Config::warnings`] for the caller to log.
pub fn from_yaml(
    text: &str,
    source: &str,
    env: &dyn Fn(&str) -> Option<String>,
    base_dir: &Path,
) -> Result<Config, ConfigError> {
    if let Some(message) = nesting_problem(text) {
        return Err(ConfigError::Parse {
            source_name: source.to_owned(),
            message,
        });
    }
    let raw: RawConfig = serde_yaml::from_str(text).map_err(|error| ConfigError::Parse {
        source_name: source.to_owned(),
        message: parse_message(&error),
    })?;
    let mut checker = Checker {
        env,
        base_dir,
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    match checker.config(raw) {
        Ok(config) if checker.problems.is_empty() => Ok(Config {
            warnings: checker.warnings,
            ..config
        }),
        _ => Err(ConfigError::Invalid {
            source_name: source.to_owned(),
            problems: checker.problems,
        }),
    }
}

/// serde_yaml's message, with the position added where serde_yaml leaves it out: it omits
/// "line 1 column 1", which is where an unknown key on the file's first line is reported.
pub(crate) fn parse_message(error: &serde_yaml::Error) -> String {
    let message = error.to_string();
    let Some(location) = error.location() else {
        return message;
    };
    let position = format!("line {} column {}", location.line(), location.column());
    if message.contains(&position) {
        message
    } else {
        format!("{message} at {position}")
    }
}

//! Validation: from the raw YAML structs to [`Config`], collecting every problem with its key.
//!
//! This module owns the [`Checker`] itself (recording problems and warnings, and checking the
//! sections one after another) and what every section uses: durations, numbers, `${VAR}`
//! expansion, lists of names, duplicates, and the inheritance from the top-level sections.
//! Each section's own rules and defaults live in one file: `graph_api`, `credentials` (tokens
//! and the app secret), `polling` (with `rate_limits`), `targets` (ids and schedules shared by
//! the three lists), `pages`, `campaigns` and `whatsapp`.

mod campaigns;
mod credentials;
mod discovery;
mod graph_api;
mod pages;
mod polling;
mod targets;
mod whatsapp;

use super::*;

pub(super) const DAY_SECS: u64 = 24 * 60 * 60;
/// Upper bound for every duration, so that `Instant + duration` in the scheduler and the HTTP
/// client cannot overflow whatever the file says.
const MAX_DURATION: Duration = Duration::from_secs(365 * DAY_SECS);

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
        let request_timeout = graph_api.as_ref().ok().map(|api| api.request_timeout);
        let polling = self.polling(raw.polling.unwrap_or_default(), request_timeout);
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
        let ad_accounts = self.targets(
            "ad_accounts",
            raw.ad_accounts.unwrap_or_default(),
            |account| &account.id.0,
            |checker, key, id, account| checker.ad_account(key, id, account, &inherited),
        );
        let discovery = match raw.discovery {
            None => Ok(None),
            Some(raw) => self.discovery(raw, &inherited).map(Some),
        };
        let config = Config {
            graph_api: graph_api?,
            polling: polling?,
            rate_limits: rate_limits?,
            pages: shared(pages?),
            campaigns: shared(campaigns?),
            whatsapp_business_accounts: shared(whatsapp_business_accounts?),
            ad_accounts: shared(ad_accounts?),
            discovery: discovery?,
            warnings: Vec::new(),
        };
        if config.pages.is_empty()
            && config.campaigns.is_empty()
            && config.whatsapp_business_accounts.is_empty()
            && config.ad_accounts.is_empty()
            && config.discovery.is_none()
        {
            self.warnings.push(
                "no pages, campaigns, whatsapp_business_accounts, ad_accounts or discovery are \
                 configured: nothing to poll"
                    .to_owned(),
            );
        }
        Ok(config)
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

/// Targets as the config holds them: each in its own `Arc`, which the running tasks share.
fn shared<T>(targets: Vec<T>) -> Vec<Arc<T>> {
    targets.into_iter().map(Arc::new).collect()
}

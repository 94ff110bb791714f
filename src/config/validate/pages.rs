//! `pages`: each Page's period and metric entries, with their names, periods, windows and
//! breakdowns.

use super::*;

const DEFAULT_PAGE_INTERVAL: Duration = Duration::from_secs(15 * 60);

const DEFAULT_PAGE_PERIOD: Period = Period::Day;
/// `total_over_range` needs `since`/`until`; 28 days matches the `days_28` period.
const DEFAULT_TOTAL_OVER_RANGE_WINDOW: Duration = Duration::from_secs(28 * DAY_SECS);
/// The longest `since`..`until` range Page insights accept.
const MAX_WINDOW: Duration = Duration::from_secs(90 * DAY_SECS);
/// Labels the exporter sets on every Page metric, so a breakdown may not take their names.
const RESERVED_PAGE_LABELS: &[&str] = &["page_id", "period"];
const ALL_PERIODS: [Period; 5] = [
    Period::Day,
    Period::Week,
    Period::Month,
    Period::Days28,
    Period::TotalOverRange,
];

impl Checker<'_> {
    pub(super) fn page(
        &mut self,
        key: &str,
        id: Checked<String>,
        raw: RawPage,
        inherited: &Inherited,
    ) -> Checked<PageTarget> {
        let (credentials, schedule) =
            self.token_and_schedule(key, &raw, DEFAULT_PAGE_INTERVAL, inherited);
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
            origin: Origin::Static,
            name: None,
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
        let metrics: Checked<Vec<PageMetric>> =
            checked.into_iter().map(|(_, metric)| metric).collect();
        // Collected in place, the list keeps the larger buffer of `checked`; held for the
        // exporter's lifetime, 10,000 Pages' lists would carry 7 MB of it.
        metrics.map(|mut metrics| {
            metrics.shrink_to_fit();
            metrics
        })
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
}

/// The window an entry gets when it sets none: `total_over_range` needs one, the other periods
/// let the API choose.
fn default_window(period: Period) -> Option<Duration> {
    (period == Period::TotalOverRange).then_some(DEFAULT_TOTAL_OVER_RANGE_WINDOW)
}

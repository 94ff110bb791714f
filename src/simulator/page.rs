//! Page messaging insights: `GET /{version}/{page-id}/insights?metric=..`.
//!
//! Owns how the simulator reads such a request (`metric`, `period`, `since`/`until` or
//! `date_preset`, `breakdown`/`breakdowns`) and shapes the answer as Graph does: one data
//! entry per metric; one value per period end (a Pacific midnight) or, for
//! `total_over_range`, one value ending at `until`; breakdown values as extra keys beside
//! `value`; and `paging` links to the neighbouring time windows. The value types vary per
//! metric as the real API's do (numbers, numeric strings, decimals) because the exporter has
//! to cope with all of them.
//!
//! A breakdown a metric does not support is ignored for that metric rather than rejected: the
//! reference does not say what Graph does, and being lenient keeps requests that mix metrics
//! usable.

use std::f64::consts::TAU;

use serde_json::{json, Map, Value};

use super::faults::GraphError;
use super::generate::{self, Activity, Seed, DAY};
use super::http::ReadContext;
use crate::calendar;
use crate::catalog;

/// The longest `since`/`until` range the reference allows.
const MAX_RANGE_DAYS: i64 = 90;

/// The values each breakdown dimension takes in the simulation: the reference's examples,
/// made concrete.
const BREAKDOWN_VALUES: &[(&str, &[&str])] = &[
    ("campaign_id", &["120210455377380154", "120210455377380187"]),
    ("engagement_source", &["primary", "secondary"]),
    ("message_type", &["marketing_message"]),
    ("messaging_channel", &["messenger", "instagram"]),
    (
        "recurring_notifications_entry_point",
        &[
            "thread",
            "chat_plugin",
            "ctm_ad",
            "checkbox_plugin",
            "m_me_link",
            "page",
        ],
    ),
    (
        "recurring_notifications_frequency",
        &["daily", "weekly", "monthly"],
    ),
    (
        "recurring_notifications_topic",
        &["newproducts", "10percentsale"],
    ),
];

/// Answers a Page insights request.
pub(crate) fn insights(context: &ReadContext<'_>) -> Result<Value, GraphError> {
    let request = PageRequest::parse(context)?;
    let windows = request.windows(context.now);
    let data: Vec<Value> = request
        .metrics
        .iter()
        .map(|metric| metric_entry(context, &request, metric, &windows))
        .collect();
    Ok(json!({ "data": data, "paging": paging(context, &request) }))
}

/// The aggregation period of a Page insights request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Period {
    Day,
    Week,
    Days28,
    Month,
    TotalOverRange,
}

impl Period {
    const ALL: [Period; 5] = [
        Period::Day,
        Period::Week,
        Period::Days28,
        Period::Month,
        Period::TotalOverRange,
    ];

    fn name(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Days28 => "days_28",
            Period::Month => "month",
            Period::TotalOverRange => "total_over_range",
        }
    }

    /// The Pacific days each value covers, ending at its `end_time`; `None` for
    /// `total_over_range`, whose one value covers the requested range.
    fn days(self) -> Option<i64> {
        match self {
            Period::Day => Some(1),
            Period::Week => Some(7),
            Period::Days28 => Some(28),
            // Graph's "month" is a rolling window too; 30 days stands in for its length.
            Period::Month => Some(30),
            Period::TotalOverRange => None,
        }
    }

    /// The prefix of titles and descriptions, as on Graph's Page metrics.
    fn title(self) -> &'static str {
        match self {
            Period::Day => "Daily",
            Period::Week => "Weekly",
            Period::Days28 => "28 Days",
            Period::Month => "Monthly",
            Period::TotalOverRange => "Total",
        }
    }
}

/// A validated Page insights request.
#[derive(Debug)]
struct PageRequest {
    metrics: Vec<String>,
    period: Period,
    breakdowns: Vec<&'static str>,
    /// The selected range `[since, until)`, unix seconds.
    since: i64,
    until: i64,
}

impl PageRequest {
    fn parse(context: &ReadContext<'_>) -> Result<PageRequest, GraphError> {
        let metrics = list(context.query.get("metric"));
        if metrics.is_empty() {
            return Err(GraphError::invalid_parameter(
                "The parameter metric is required",
            ));
        }
        let served = |metric: &String| {
            !context.retired.contains(metric)
                && (catalog::page_metric(metric).is_some()
                    || context.extra_metrics.contains(metric))
        };
        if let Some(metric) = metrics.iter().find(|metric| !served(metric)) {
            // Graph does not always say which metric it rejects; the log does, for whoever
            // debugs a test.
            tracing::debug!(%metric, "simulated Page insights: invalid metric");
            if context.named.contains(metric) {
                return Err(GraphError::invalid_parameter(format_args!(
                    "{metric} is not a valid insights metric"
                )));
            }
            return Err(GraphError::invalid_parameter(
                "The value must be a valid insights metric",
            ));
        }
        let period = match context.query.get("period") {
            None => Period::Day,
            Some(name) => Period::ALL
                .into_iter()
                .find(|period| period.name() == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = Period::ALL.iter().map(|p| p.name()).collect();
                    GraphError::invalid_parameter(format_args!(
                        "period must be one of the following values: {}",
                        names.join(", ")
                    ))
                })?,
        };
        // The reference names the parameter both ways.
        let requested = list(
            context
                .query
                .get("breakdown")
                .or(context.query.get("breakdowns")),
        );
        let mut breakdowns = Vec::with_capacity(requested.len());
        for (index, name) in requested.iter().enumerate() {
            let known = catalog::PAGE_BREAKDOWNS.iter().find(|known| *known == name);
            breakdowns.push(*known.ok_or_else(|| {
                GraphError::invalid_parameter(format_args!(
                    "breakdown[{index}] must be one of the following values: {}",
                    catalog::PAGE_BREAKDOWNS.join(", ")
                ))
            })?);
        }
        let (since, until) = range(context)?;
        Ok(PageRequest {
            metrics,
            period,
            breakdowns,
            since,
            until,
        })
    }

    /// The windows `(from, end_time)` to report, oldest first.
    fn windows(&self, now: i64) -> Vec<(i64, i64)> {
        let Some(days) = self.period.days() else {
            return vec![(self.since, self.until)];
        };
        // One value for each Pacific day starting in the range and already over, each
        // covering the `days` days that end with it.
        let mut windows = Vec::new();
        let mut date = calendar::pacific_date(self.since);
        while calendar::midnight(date) < self.until {
            let next = calendar::shift_days(date, 1);
            let end = calendar::midnight(next);
            if end > now {
                break;
            }
            windows.push((calendar::midnight(calendar::shift_days(next, -days)), end));
            date = next;
        }
        windows
    }
}

/// A comma-separated parameter as a list, blanks dropped.
fn list(parameter: Option<&str>) -> Vec<String> {
    parameter
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The requested range `[since, until)`. Without `since`, `until` or `date_preset` it is the
/// two most recent whole Pacific days, which gives the two values Graph returns by default.
fn range(context: &ReadContext<'_>) -> Result<(i64, i64), GraphError> {
    let instant = |name: &str| {
        context
            .query
            .get(name)
            .map(|text| {
                calendar::parse_instant(text).ok_or_else(|| {
                    GraphError::invalid_parameter(format_args!(
                        "The parameter {name} must be a unix timestamp or a date as YYYY-MM-DD"
                    ))
                })
            })
            .transpose()
    };
    let now = context.now;
    let (since, until) = match (instant("since")?, instant("until")?) {
        (None, None) => match context.query.get("date_preset") {
            Some(preset) => preset_range(preset, now)?,
            None => {
                let last_midnight = calendar::day_start(now);
                let first_day = calendar::shift_days(calendar::pacific_date(last_midnight), -2);
                (calendar::midnight(first_day), last_midnight)
            }
        },
        (since, until) => {
            let until = until.unwrap_or(now);
            (since.unwrap_or(until - 2 * DAY), until)
        }
    };
    if since >= until {
        return Err(GraphError::invalid_parameter(
            "The since parameter must be earlier than the until parameter",
        ));
    }
    // An hour of slack lets a range of 90 Pacific days include the autumn DST change.
    if until - since > MAX_RANGE_DAYS * DAY + 3600 {
        return Err(GraphError::invalid_parameter(format_args!(
            "There cannot be more than {MAX_RANGE_DAYS} days ({} s) between since and until",
            MAX_RANGE_DAYS * DAY
        )));
    }
    Ok((since, until))
}

/// The range `[since, until)` a `date_preset` selects: whole Pacific days.
fn preset_range(preset: &str, now: i64) -> Result<(i64, i64), GraphError> {
    let today = calendar::pacific_date(now);
    // Page insights are kept for about two years.
    let earliest = calendar::shift_days(today, -730);
    let range = catalog::DATE_PRESETS
        .contains(&preset)
        .then(|| calendar::resolve_preset(preset, today, earliest))
        .flatten()
        .ok_or_else(|| {
            GraphError::invalid_parameter(format_args!(
                "date_preset must be one of the following values: {}",
                catalog::DATE_PRESETS.join(", ")
            ))
        })?;
    Ok((
        calendar::midnight(range.since),
        calendar::midnight(calendar::shift_days(range.until, 1)),
    ))
}

/// The data entry of one metric.
fn metric_entry(
    context: &ReadContext<'_>,
    request: &PageRequest,
    metric: &str,
    windows: &[(i64, i64)],
) -> Value {
    let info = catalog::page_metric(metric);
    let supported = info.map_or(&[][..], |info| info.breakdowns);
    let dimensions: Vec<&'static str> = request
        .breakdowns
        .iter()
        .copied()
        .filter(|dimension| supported.contains(dimension))
        .collect();
    let combinations = combinations(&dimensions);
    let model = Model::of(metric);
    let mut values = Vec::with_capacity(windows.len() * combinations.len());
    for &(from, end) in windows {
        for combination in &combinations {
            let series = Series {
                page: context.object_id,
                metric,
                combination,
            };
            let mut row = Map::new();
            row.insert(
                "value".to_owned(),
                model.value(&series, from, end, context.now),
            );
            row.insert("end_time".to_owned(), json!(calendar::iso_time(end)));
            for (dimension, value) in combination {
                row.insert((*dimension).to_owned(), json!(value));
            }
            values.push(Value::Object(row));
        }
    }
    let period = request.period;
    let meaning = info.map_or(
        "A metric outside the exporter's catalog, simulated as a count",
        |info| info.meaning,
    );
    json!({
        "name": metric,
        "period": period.name(),
        "values": values,
        "title": format!("{} {}", period.title(), humanise(metric)),
        "description": format!("{}: {meaning}", period.title()),
        "id": format!("{}/insights/{metric}/{}", context.object_id, period.name()),
    })
}

/// Every combination of the values of `dimensions`, in order; one empty combination if there
/// are no dimensions.
fn combinations(dimensions: &[&'static str]) -> Vec<Vec<(&'static str, &'static str)>> {
    dimensions
        .iter()
        .fold(vec![Vec::new()], |partial, &dimension| {
            partial
                .iter()
                .flat_map(|prefix| {
                    values_of(dimension).iter().map(move |&value| {
                        let mut combination = prefix.clone();
                        combination.push((dimension, value));
                        combination
                    })
                })
                .collect()
        })
}

fn values_of(dimension: &str) -> &'static [&'static str] {
    BREAKDOWN_VALUES
        .iter()
        .find(|(name, _)| *name == dimension)
        .map_or(&[], |(_, values)| values)
}

/// `page_messages_new_conversations_unique` as `New Conversations Unique`.
fn humanise(metric: &str) -> String {
    metric
        .strip_prefix("page_messages_")
        .unwrap_or(metric)
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Links to the windows just before and just after the requested one, like Graph's. Unlike
/// Graph's they carry no token: the exporter must not follow them anyway, and a token in a
/// URL ends up in logs.
fn paging(context: &ReadContext<'_>, request: &PageRequest) -> Value {
    let span = request.until - request.since;
    let link = |since: i64, until: i64| {
        let mut url = format!(
            "{}/{}/{}/insights?metric={}&period={}&since={since}&until={until}",
            context.base_url,
            context.version,
            context.object_id,
            request.metrics.join(","),
            request.period.name(),
        );
        if !request.breakdowns.is_empty() {
            url.push_str("&breakdown=");
            url.push_str(&request.breakdowns.join(","));
        }
        url
    };
    json!({
        "previous": link(request.since - span, request.since),
        "next": link(request.until, request.until + span),
    })
}

/// One generated series: a Page's metric, narrowed to one combination of breakdown values.
struct Series<'a> {
    page: &'a str,
    metric: &'a str,
    combination: &'a [(&'static str, &'static str)],
}

impl Series<'_> {
    /// The seed of the metric as a whole: its size and rhythm are shared by all breakdown rows.
    fn metric_seed(&self) -> Seed {
        Seed::of(&[self.page, self.metric])
    }

    /// The seed of this row.
    fn row_seed(&self) -> Seed {
        self.combination
            .iter()
            .fold(self.metric_seed(), |seed, (dimension, value)| {
                seed.with(dimension).with(value)
            })
    }

    /// This row's share of the metric's total. Each breakdown value gets a weight per Page,
    /// the same for every metric, so that e.g. Instagram's share is consistent across metrics
    /// and the rows of one breakdown add up to the total.
    fn share(&self) -> f64 {
        self.combination
            .iter()
            .map(|(dimension, value)| {
                let weight = |value: &str| 0.2 + Seed::of(&[self.page, dimension, value]).unit();
                let total: f64 = values_of(dimension).iter().map(|value| weight(value)).sum();
                weight(value) / total
            })
            .product()
    }
}

/// How a metric's values are generated and typed.
#[derive(Clone, Copy, Debug)]
enum Model {
    /// Events in the window, averaging this range per day; a numeric string if `as_string`
    /// (the reference's example returns these metrics as `"42"`), else a JSON number.
    Count {
        per_day: (f64, f64),
        as_string: bool,
    },
    /// Orders created in the window.
    Orders,
    /// Messaging connections with an order in the window: a fraction of the orders.
    OrderOutcomes,
    /// Earnings from the window's orders: a decimal with cents.
    Earnings,
    /// Marketing messages read over sent: a decimal between 0 and 1.
    ReadRatio,
    /// People the Page can message at the end of the window: tens of thousands, growing.
    Connections,
}

impl Model {
    fn of(metric: &str) -> Model {
        let count = |low, high, as_string| Model::Count {
            per_day: (low, high),
            as_string,
        };
        match metric {
            "page_messages_blocked_conversations_unique" => count(0.3, 3.0, true),
            "page_messages_new_conversations_unique" => count(20.0, 250.0, true),
            "page_messages_reported_conversations_unique" => count(0.1, 2.0, false),
            "page_messages_engagement" => count(20.0, 300.0, false),
            "page_messages_sent" => count(300.0, 3000.0, false),
            "recurring_notifications_tokens" => count(3.0, 40.0, false),
            "page_messages_order_count" => Model::Orders,
            "page_messages_with_business_outcomes" => Model::OrderOutcomes,
            "page_messages_paid_order_earnings" => Model::Earnings,
            "page_messages_read_ratio" => Model::ReadRatio,
            "page_messages_total_messaging_connections" => Model::Connections,
            // Names outside the catalog that a test made the Page serve.
            _ => count(5.0, 100.0, false),
        }
    }

    /// The value of `series` for the window `[from, end)` as seen at `now`.
    fn value(self, series: &Series<'_>, from: i64, end: i64, now: i64) -> Value {
        // A window reaching past now only counts what has happened so far.
        let counted_to = end.min(now);
        let settled = |value: f64, late_share: f64| value * generate::settled(end, now, late_share);
        // The order metrics share one order stream, so they stay consistent with each other.
        let orders = || {
            Activity::new(Seed::of(&[series.page, "orders"]), (1.0, 20.0))
                .expected(from, counted_to)
        };
        match self {
            Model::Count { per_day, as_string } => {
                let expected =
                    Activity::new(series.metric_seed(), per_day).expected(from, counted_to);
                let count = generate::count(settled(expected * series.share(), 0.08));
                if as_string {
                    json!(count.to_string())
                } else {
                    json!(count)
                }
            }
            Model::Orders => json!(generate::count(settled(orders(), 0.08))),
            Model::OrderOutcomes => json!(generate::count(settled(orders() * 0.7, 0.08))),
            Model::Earnings => {
                let order_value = Seed::of(&[series.page, "order_value"]).between(15.0, 90.0);
                json!(generate::round_to(settled(orders() * order_value, 0.08), 2))
            }
            Model::ReadRatio => {
                let row = series.row_seed();
                let base = row.with("read_ratio").between(0.36, 0.72);
                // Reading habits drift over the week.
                let phase = row.with("read_phase").between(0.0, TAU);
                let weekly = 0.05 * (TAU * end as f64 / (7 * DAY) as f64 + phase).sin();
                // Late read receipts raise a recent ratio as they arrive.
                let ratio = settled(base + weekly, 0.05).clamp(0.0, 1.0);
                json!(generate::round_to(ratio, 4))
            }
            Model::Connections => {
                let level = generate::level(series.metric_seed(), (15_000.0, 80_000.0), end);
                // Only a sliver arrives late, so a day's value stays above the day before's.
                json!(generate::count(settled(level, 0.0002)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::http::with_context;

    /// 2024-01-03 12:00 UTC, 04:00 in Los Angeles.
    const NOW: i64 = 1_704_283_200;
    const ALL_METRICS: &str =
        "page_messages_blocked_conversations_unique,page_messages_engagement,\
        page_messages_new_conversations_unique,page_messages_order_count,\
        page_messages_paid_order_earnings,page_messages_read_ratio,\
        page_messages_reported_conversations_unique,page_messages_sent,\
        page_messages_total_messaging_connections,page_messages_with_business_outcomes,\
        recurring_notifications_tokens";

    fn read(query: &str, now: i64) -> Result<Value, GraphError> {
        with_context("1001", query, now, insights)
    }

    fn ok(query: &str, now: i64) -> Value {
        read(query, now).unwrap_or_else(|error| panic!("{query}: {error:?}"))
    }

    fn values<'a>(body: &'a Value, metric: &str) -> &'a Vec<Value> {
        body["data"]
            .as_array()
            .and_then(|data| data.iter().find(|entry| entry["name"] == metric))
            .and_then(|entry| entry["values"].as_array())
            .unwrap_or_else(|| panic!("no values for {metric} in {body}"))
    }

    #[test]
    fn without_a_range_two_values_end_at_the_two_latest_pacific_midnights() {
        let body = ok("metric=page_messages_sent&period=day", NOW);
        let end_times: Vec<&Value> = values(&body, "page_messages_sent")
            .iter()
            .map(|v| &v["end_time"])
            .collect();
        assert_eq!(
            end_times,
            ["2024-01-02T08:00:00+0000", "2024-01-03T08:00:00+0000"]
        );
        let entry = &body["data"][0];
        assert_eq!(entry["id"], "1001/insights/page_messages_sent/day");
        assert_eq!(entry["period"], "day");
        assert!(entry["title"].is_string() && entry["description"].is_string());
    }

    #[test]
    fn value_types_follow_the_real_api() {
        let body = ok(&format!("metric={ALL_METRICS}"), NOW);
        assert_eq!(body["data"].as_array().map(Vec::len), Some(11));
        let latest = |metric: &str| values(&body, metric)[1]["value"].clone();
        for metric in [
            "page_messages_new_conversations_unique",
            "page_messages_blocked_conversations_unique",
        ] {
            let text = latest(metric);
            let count: u64 = text
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("{metric}: {text}"));
            assert!(count < 1000, "{metric}: {count}");
        }
        let ratio = latest("page_messages_read_ratio")
            .as_f64()
            .expect("read ratio is a number");
        assert!((0.25..0.85).contains(&ratio), "{ratio}");
        assert!(latest("page_messages_paid_order_earnings").is_f64());
        let connections = latest("page_messages_total_messaging_connections")
            .as_u64()
            .expect("a count");
        assert!((10_000..200_000).contains(&connections), "{connections}");
        for metric in [
            "page_messages_sent",
            "page_messages_engagement",
            "page_messages_reported_conversations_unique",
        ] {
            assert!(latest(metric).is_u64(), "{metric}");
        }
    }

    #[test]
    fn since_and_until_give_one_value_per_pacific_day_in_range() {
        let body = ok(
            "metric=page_messages_engagement&since=2024-03-08&until=2024-03-12",
            NOW + 90 * DAY,
        );
        let end_times: Vec<&Value> = values(&body, "page_messages_engagement")
            .iter()
            .map(|v| &v["end_time"])
            .collect();
        // The spring DST change on 2024-03-10 moves Pacific midnight from 08:00 to 07:00 UTC.
        assert_eq!(
            end_times,
            [
                "2024-03-09T08:00:00+0000",
                "2024-03-10T08:00:00+0000",
                "2024-03-11T07:00:00+0000",
                "2024-03-12T07:00:00+0000"
            ]
        );
    }

    #[test]
    fn total_over_range_has_one_value_ending_at_until() {
        let body = ok("metric=page_messages_new_conversations_unique&period=total_over_range&since=1704096000&until=1704528000", NOW + 10 * DAY);
        let values = values(&body, "page_messages_new_conversations_unique");
        assert_eq!(values.len(), 1);
        assert_eq!(values[0]["end_time"], calendar::iso_time(1_704_528_000));
    }

    #[test]
    fn a_week_is_the_sum_of_its_days_once_late_events_have_arrived() {
        let later = NOW + 60 * DAY;
        let query = |period| {
            format!("metric=page_messages_sent&period={period}&since=2024-01-01&until=2024-01-08")
        };
        let days: u64 = values(&ok(&query("day"), later), "page_messages_sent")
            .iter()
            .filter_map(|v| v["value"].as_u64())
            .sum();
        let week = values(&ok(&query("week"), later), "page_messages_sent")[6]["value"]
            .as_u64()
            .expect("a count");
        assert!(days.abs_diff(week) <= 7, "days {days} week {week}");
    }

    #[test]
    fn messaging_connections_grow_slowly_day_after_day() {
        // An hour after the range ends, so the latest values are still taking late events.
        let now = 1_709_283_600;
        for page in ["1001", "1002", "1003", "1004"] {
            let body = with_context(page, "metric=page_messages_total_messaging_connections&since=2024-01-01&until=2024-03-01", now, insights)
                .expect("valid request");
            let counts: Vec<u64> = values(&body, "page_messages_total_messaging_connections")
                .iter()
                .filter_map(|v| v["value"].as_u64())
                .collect();
            assert_eq!(counts.len(), 60, "{page}");
            assert!(
                counts
                    .windows(2)
                    .all(|pair| pair[0] <= pair[1] && pair[1] - pair[0] < 300),
                "{page}: {counts:?}"
            );
        }
    }

    #[test]
    fn breakdowns_give_one_row_per_combination_with_the_values_as_keys() {
        for parameter in ["breakdown", "breakdowns"] {
            let body = ok(&format!("metric=recurring_notifications_tokens&period=total_over_range&{parameter}=recurring_notifications_topic,recurring_notifications_frequency"), NOW);
            let rows = values(&body, "recurring_notifications_tokens");
            assert_eq!(rows.len(), 6);
            let mut pairs: Vec<(String, String)> = rows
                .iter()
                .map(|row| {
                    (
                        row["recurring_notifications_topic"].to_string(),
                        row["recurring_notifications_frequency"].to_string(),
                    )
                })
                .collect();
            pairs.sort();
            pairs.dedup();
            assert_eq!(pairs.len(), 6);
        }
        // A metric without that breakdown still answers, unbroken.
        let body = ok("metric=page_messages_sent,page_messages_blocked_conversations_unique&breakdown=messaging_channel", NOW);
        assert_eq!(values(&body, "page_messages_sent").len(), 4);
        assert_eq!(
            values(&body, "page_messages_blocked_conversations_unique").len(),
            2
        );
    }

    #[test]
    fn values_are_stable_for_the_same_time_and_change_slowly_over_time() {
        let query = format!("metric={ALL_METRICS}&breakdown=messaging_channel");
        assert_eq!(ok(&query, NOW), ok(&query, NOW));
        let (before, after) = (ok(&query, NOW), ok(&query, NOW + 300));
        assert_ne!(before, after, "nothing moved in five minutes");
        for metric in [
            "page_messages_read_ratio",
            "page_messages_total_messaging_connections",
            "page_messages_sent",
        ] {
            let latest = |body: &Value| {
                values(body, metric)
                    .last()
                    .and_then(|row| row["value"].as_f64())
            };
            let (a, b) = (
                latest(&before).expect("a number"),
                latest(&after).expect("a number"),
            );
            assert!((a - b).abs() <= 0.03 * a.max(1.0), "{metric}: {a} -> {b}");
        }
    }

    #[test]
    fn paging_links_step_to_the_neighbouring_windows() {
        let body = ok("metric=page_messages_sent&since=1704096000&until=1704268800&breakdown=messaging_channel", NOW);
        assert_eq!(
            body["paging"]["next"],
            "http://127.0.0.1:9/v27.0/1001/insights?metric=page_messages_sent&period=day&since=1704268800&until=1704441600&breakdown=messaging_channel"
        );
        let previous = body["paging"]["previous"].as_str().expect("a link");
        assert!(
            previous.contains("since=1703923200&until=1704096000") && !previous.contains("token")
        );
    }

    #[test]
    fn invalid_requests_are_code_100() {
        for query in [
            "period=day",
            "metric=page_fans",
            "metric=page_messages_sent&period=lifetime",
            "metric=page_messages_sent&breakdown=country",
            "metric=page_messages_sent&since=2024-01-01&until=2024-06-01",
            "metric=page_messages_sent&since=2024-01-02&until=2024-01-01",
            "metric=page_messages_sent&since=yesterday",
            "metric=page_messages_sent&date_preset=last_century",
        ] {
            let error = read(query, NOW).expect_err(query);
            assert_eq!((error.code, error.status), (100, 400), "{query}");
        }
    }

    #[test]
    fn a_date_preset_selects_whole_pacific_days() {
        let body = ok("metric=page_messages_sent&date_preset=last_7d", NOW);
        let rows = values(&body, "page_messages_sent");
        assert_eq!(rows.len(), 7);
        assert_eq!(rows[6]["end_time"], "2024-01-03T08:00:00+0000");
    }
}

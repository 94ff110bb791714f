//! Marketing-message campaign insights: `GET /{version}/{campaign-id}/insights?fields=..`.
//!
//! Owns the ads-insights conventions this endpoint follows: a `fields` list (defaulting to the
//! catalog's default fields), dates chosen by `time_range={'since':..,'until':..}` or
//! `date_preset` (Pacific dates, `until` inclusive, default `last_30d`), and one data row
//! whose values are all decimal strings, with `date_start`, `date_stop` and fixed paging
//! cursors. Counts and spend are generated first and every rate and cost is computed from the
//! rounded counts and spend, so a row is internally consistent the way a real one is (click
//! rate = clicks / delivered x 100, cost per delivered = spend / delivered, ...). Like ads
//! insights, a range without deliveries answers `"data": []`.
//!
//! [`CampaignSettings`] hold what tests script per campaign or ad account beyond that model:
//! a read rate as Meta sometimes reports it (above 100), and empty answers whatever the dates
//! (a breakdown the account has not opted in to). Without settings the answers are the
//! model's.

use serde_json::{json, Map, Value};

use super::faults::GraphError;
use super::generate::{self, Activity, Seed, DAY};
use super::http::ReadContext;
use crate::calendar::{self, DateRange};
use crate::catalog;

/// Pacific midnight starting 2022-01-01; each simulated campaign starts within 180 days of it,
/// early enough that any plausible test date finds it running.
const CAMPAIGNS_BEGIN: i64 = 1_641_024_000;
/// How far back ads insights reach.
const LOOKBACK_MONTHS: i32 = 37;
/// The cursors of a single-row answer, as in the reference's example.
const CURSOR: &str = "MAZDZD";
/// Fields that describe the row rather than measure the campaign; always present.
const DATE_FIELDS: [&str; 2] = ["date_start", "date_stop"];

/// What tests have told the simulator about one campaign or ad account.
#[derive(Clone, Debug, Default)]
pub(crate) struct CampaignSettings {
    /// `marketing_messages_read_rate` as served instead of the computed one
    /// (`set_read_rate`).
    pub(crate) read_rate: Option<f64>,
    /// Answer `"data": []` whatever the dates (`set_insights_empty`).
    pub(crate) empty: bool,
}

/// Answers a campaign insights request.
pub(crate) fn insights(
    context: &ReadContext<'_>,
    settings: &CampaignSettings,
) -> Result<Value, GraphError> {
    let fields = requested_fields(context)?;
    let start = campaign_start(context.object_id);
    let dates = selected_dates(context, start)?;
    let from = calendar::midnight(dates.since).max(calendar::midnight(start));
    let to = calendar::midnight(calendar::shift_days(dates.until, 1)).min(context.now);
    let delivery = Delivery::generate(context.object_id, from, to);
    let data: Vec<Value> = if delivery.delivered > 0 && !settings.empty {
        let mut row = delivery.row(&fields, dates);
        if let Some(rate) = settings.read_rate {
            let field = "marketing_messages_read_rate";
            if fields.iter().any(|asked| asked == field) {
                row[field] = json!(format!("{rate:.6}"));
            }
        }
        vec![row]
    } else {
        Vec::new()
    };
    Ok(json!({
        "data": data,
        "paging": { "cursors": { "before": CURSOR, "after": CURSOR } },
    }))
}

/// The Pacific date the campaign started delivering.
fn campaign_start(campaign: &str) -> chrono::NaiveDate {
    let days = Seed::of(&[campaign, "start"]).between(0.0, 180.0) as i64;
    calendar::pacific_date(CAMPAIGNS_BEGIN + days * DAY)
}

/// The `fields` list, each checked against the catalog and the retired names.
fn requested_fields(context: &ReadContext<'_>) -> Result<Vec<String>, GraphError> {
    let fields: Vec<String> = match context.query.get("fields").map(str::trim) {
        Some(text) if !text.is_empty() => text
            .split(',')
            .map(str::trim)
            .filter(|field| !field.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => catalog::CAMPAIGN_FIELDS
            .iter()
            .filter(|field| field.default)
            .map(|field| field.name.to_owned())
            .collect(),
    };
    let valid = |field: &String| {
        !context.retired.contains(field)
            && (catalog::campaign_field(field).is_some() || DATE_FIELDS.contains(&field.as_str()))
    };
    match fields.iter().find(|field| !valid(field)) {
        Some(field) => Err(GraphError::invalid_parameter(format_args!(
            "{field} is not valid for fields param. please check \
             https://developers.facebook.com/docs/marketing-api/reference/ads-insights/ for all \
             valid values"
        ))),
        None => Ok(fields),
    }
}

/// The dates the request selects; `time_range` wins over `date_preset`, as documented.
fn selected_dates(
    context: &ReadContext<'_>,
    start: chrono::NaiveDate,
) -> Result<DateRange, GraphError> {
    let today = calendar::pacific_date(context.now);
    let dates = match context.query.get("time_range") {
        Some(text) => parse_time_range(text).ok_or_else(|| {
            GraphError::invalid_parameter(
                "time_range must be an object like {'since':'YYYY-MM-DD','until':'YYYY-MM-DD'}",
            )
        })?,
        None => {
            let preset = context
                .query
                .get("date_preset")
                .unwrap_or(catalog::DEFAULT_DATE_PRESET);
            catalog::DATE_PRESETS
                .contains(&preset)
                .then(|| calendar::resolve_preset(preset, today, start))
                .flatten()
                .ok_or_else(|| {
                    GraphError::invalid_parameter(format_args!(
                        "date_preset must be one of the following values: {}",
                        catalog::DATE_PRESETS.join(", ")
                    ))
                })?
        }
    };
    if dates.since > dates.until {
        return Err(GraphError::invalid_parameter(
            "time_range since must not be after until",
        ));
    }
    if dates.since < calendar::shift_months(today, -LOOKBACK_MONTHS) {
        return Err(GraphError::with_code(
            3018,
            format!(
                "(#3018) The start date of the time range cannot be beyond {LOOKBACK_MONTHS} \
                 months from the current date"
            ),
        ));
    }
    Ok(dates)
}

/// Parses `{'since':'2024-05-01','until':'2024-05-31'}`, with single or double quotes (or
/// none) and any spacing.
fn parse_time_range(text: &str) -> Option<DateRange> {
    let inner = text.trim().strip_prefix('{')?.strip_suffix('}')?;
    let unquote = |part: &str| part.trim().trim_matches(['\'', '"']).trim().to_owned();
    let (mut since, mut until) = (None, None);
    for pair in inner.split(',') {
        let (key, value) = pair.split_once(':')?;
        let date = calendar::parse_date(&unquote(value))?;
        match unquote(key).as_str() {
            "since" => since = Some(date),
            "until" => until = Some(date),
            _ => return None,
        }
    }
    Some(DateRange {
        since: since?,
        until: until?,
    })
}

/// A campaign's deliveries over some interval, and what they cost.
#[derive(Clone, Copy, Debug)]
struct Delivery {
    sent: i64,
    delivered: i64,
    reads: i64,
    clicks: i64,
    spend_cents: i64,
}

impl Delivery {
    /// The deliveries of `campaign` in `[from, to)`. Per-campaign rates (read, click,
    /// delivery, cost) are constant; the counts grow with the interval.
    fn generate(campaign: &str, from: i64, to: i64) -> Delivery {
        let seed = Seed::of(&[campaign]);
        let delivered = generate::count(
            Activity::new(seed.with("delivered"), (60.0, 600.0)).expected(from, to),
        );
        let portion = |name: &str, low: f64, high: f64| {
            generate::count(delivered as f64 * seed.with(name).between(low, high))
        };
        Delivery {
            sent: generate::count(delivered as f64 / seed.with("delivery_rate").between(0.9, 0.99))
                .max(delivered),
            delivered,
            reads: portion("read_rate", 0.55, 0.9),
            clicks: portion("click_rate", 0.03, 0.12),
            spend_cents: portion("cents_per_delivered", 0.8, 2.0),
        }
    }

    /// The value of `field` as ads insights write it, or `None` if it has none. Only called
    /// with something delivered, so no denominator is zero except clicks.
    fn value(&self, field: &str) -> Option<String> {
        let spend = self.spend_cents as f64 / 100.0;
        let percent = |part: i64, whole: i64| format!("{:.6}", part as f64 / whole as f64 * 100.0);
        let cost_per = |units: i64| format!("{:.6}", spend / units as f64);
        match field {
            "marketing_messages_delivered" => Some(self.delivered.to_string()),
            "marketing_messages_link_btn_click" => Some(self.clicks.to_string()),
            "marketing_messages_spend" => Some(format!(
                "{}.{:02}",
                self.spend_cents / 100,
                self.spend_cents % 100
            )),
            "marketing_messages_read_rate" => Some(percent(self.reads, self.delivered)),
            "marketing_messages_link_btn_click_rate" => Some(percent(self.clicks, self.delivered)),
            "marketing_messages_delivery_rate" => Some(percent(self.delivered, self.sent)),
            "marketing_messages_cost_per_delivered" => Some(cost_per(self.delivered)),
            // Ads insights leave out a cost they cannot compute rather than divide by zero.
            "marketing_messages_cost_per_link_btn_click" => {
                (self.clicks > 0).then(|| cost_per(self.clicks))
            }
            _ => None,
        }
    }

    /// The data row for `fields` over `dates`.
    fn row(&self, fields: &[String], dates: DateRange) -> Value {
        let mut row = Map::new();
        for field in fields {
            if let Some(value) = self.value(field) {
                row.insert(field.clone(), json!(value));
            }
        }
        row.insert("date_start".to_owned(), json!(calendar::ymd(dates.since)));
        row.insert("date_stop".to_owned(), json!(calendar::ymd(dates.until)));
        Value::Object(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::http::with_context;

    /// 2024-06-15 19:00 UTC, noon in Los Angeles.
    const NOW: i64 = 1_718_478_000;

    fn read(query: &str, now: i64) -> Result<Value, GraphError> {
        read_with(query, now, &CampaignSettings::default())
    }

    fn read_with(query: &str, now: i64, settings: &CampaignSettings) -> Result<Value, GraphError> {
        with_context("23850001", query, now, |context| {
            insights(context, settings)
        })
    }

    fn row(query: &str, now: i64) -> Map<String, Value> {
        let body = read(query, now).unwrap_or_else(|error| panic!("{query}: {error:?}"));
        body["data"][0]
            .as_object()
            .cloned()
            .unwrap_or_else(|| panic!("no row in {body}"))
    }

    fn number(row: &Map<String, Value>, field: &str) -> f64 {
        row[field]
            .as_str()
            .and_then(|text| text.parse().ok())
            .unwrap_or_else(|| panic!("{field}: {:?}", row.get(field)))
    }

    #[test]
    fn rates_and_costs_are_consistent_with_the_counts() {
        let fields: Vec<&str> = catalog::CAMPAIGN_FIELDS
            .iter()
            .map(|field| field.name)
            .collect();
        let row = row(
            &format!("fields={}&date_preset=last_month", fields.join(",")),
            NOW,
        );
        let delivered = number(&row, "marketing_messages_delivered");
        let clicks = number(&row, "marketing_messages_link_btn_click");
        let spend = number(&row, "marketing_messages_spend");
        assert!(delivered > 100.0 && delivered.fract() == 0.0 && clicks.fract() == 0.0);
        assert!(row["marketing_messages_spend"].as_str().is_some_and(|s| s
            .split('.')
            .nth(1)
            .map(str::len)
            == Some(2)));
        let close = |field: &str, expected: f64| {
            let actual = number(&row, field);
            assert!(
                (actual - expected).abs() < 1e-5,
                "{field}: {actual} vs {expected}"
            );
        };
        close(
            "marketing_messages_link_btn_click_rate",
            clicks / delivered * 100.0,
        );
        close("marketing_messages_cost_per_delivered", spend / delivered);
        close("marketing_messages_cost_per_link_btn_click", spend / clicks);
        for rate in [
            "marketing_messages_read_rate",
            "marketing_messages_delivery_rate",
            "marketing_messages_link_btn_click_rate",
        ] {
            assert!((0.0..=100.0).contains(&number(&row, rate)), "{rate}");
            assert_eq!(
                row[rate]
                    .as_str()
                    .and_then(|s| s.split('.').nth(1))
                    .map(str::len),
                Some(6),
                "{rate}"
            );
        }
        assert_eq!(
            (row["date_start"].as_str(), row["date_stop"].as_str()),
            (Some("2024-05-01"), Some("2024-05-31"))
        );
    }

    #[test]
    fn time_range_accepts_single_and_double_quotes() {
        let single = row("fields=marketing_messages_delivered&time_range={'since':'2024-05-01','until':'2024-05-07'}", NOW);
        let double = row(
            r#"fields=marketing_messages_delivered&time_range={"since": "2024-05-01", "until": "2024-05-07"}"#,
            NOW,
        );
        assert_eq!(single, double);
        assert_eq!(single["date_stop"], "2024-05-07");
    }

    #[test]
    fn the_default_range_is_the_last_thirty_days_and_fields_the_catalog_defaults() {
        let row = row("", NOW);
        assert_eq!(
            (row["date_start"].as_str(), row["date_stop"].as_str()),
            (Some("2024-05-16"), Some("2024-06-14"))
        );
        assert_eq!(row.len(), 9, "{row:?}");
    }

    #[test]
    fn today_keeps_growing_through_the_day() {
        let query =
            "fields=marketing_messages_delivered,marketing_messages_spend&date_preset=today";
        let (morning, evening) = (row(query, NOW), row(query, NOW + 6 * 3600));
        assert!(
            number(&evening, "marketing_messages_delivered")
                > number(&morning, "marketing_messages_delivered")
        );
        assert!(
            number(&evening, "marketing_messages_spend")
                >= number(&morning, "marketing_messages_spend")
        );
    }

    #[test]
    fn maximum_starts_when_the_campaign_started() {
        let row = row(
            "fields=marketing_messages_delivered&date_preset=maximum",
            NOW,
        );
        let start = row["date_start"].as_str().expect("a date");
        assert!(("2022-01-01".."2022-07-01").contains(&start), "{start}");
    }

    #[test]
    fn a_range_before_the_campaign_has_no_data() {
        let body = read(
            "time_range={'since':'2021-06-01','until':'2021-06-30'}",
            NOW,
        )
        .expect("valid request");
        assert_eq!(body["data"], json!([]));
        assert_eq!(body["paging"]["cursors"]["after"], CURSOR);
    }

    #[test]
    fn a_scripted_read_rate_is_served_as_meta_writes_it_and_only_when_asked_for() {
        let settings = CampaignSettings {
            read_rate: Some(481.818182),
            ..CampaignSettings::default()
        };
        let query = "fields=marketing_messages_read_rate,marketing_messages_delivered";
        let body = read_with(query, NOW, &settings).expect("valid request");
        assert_eq!(
            body["data"][0]["marketing_messages_read_rate"],
            "481.818182"
        );
        assert_eq!(
            body["data"][0]["marketing_messages_delivered"],
            row(query, NOW)["marketing_messages_delivered"]
        );
        let body = read_with("fields=marketing_messages_delivered", NOW, &settings)
            .expect("valid request");
        assert!(body["data"][0]
            .get("marketing_messages_read_rate")
            .is_none());
    }

    #[test]
    fn an_empty_campaign_answers_no_rows_for_any_dates_but_still_checks_the_request() {
        let settings = CampaignSettings {
            empty: true,
            ..CampaignSettings::default()
        };
        for query in ["", "date_preset=maximum", "date_preset=today"] {
            let body = read_with(query, NOW, &settings).expect("valid request");
            assert_eq!(body["data"], json!([]), "{query}");
            assert_eq!(body["paging"]["cursors"]["before"], CURSOR);
        }
        let error =
            read_with("date_preset=last_fortnight", NOW, &settings).expect_err("invalid preset");
        assert_eq!(error.code, 100);
    }

    #[test]
    fn invalid_fields_presets_and_ranges_are_rejected() {
        let error = read(
            "fields=marketing_messages_delivered,impressions_per_mood",
            NOW,
        )
        .expect_err("unknown field");
        assert_eq!(error.code, 100);
        assert!(error.message.starts_with(
            "(#100) impressions_per_mood is not valid for fields param. please check"
        ));
        for query in [
            "date_preset=last_fortnight",
            "time_range={'since':'2024-05-07','until':'2024-05-01'}",
            "time_range={'since':1714521600}",
            "time_range=last week",
        ] {
            assert_eq!(
                read(query, NOW).map_err(|error| error.code),
                Err(100),
                "{query}"
            );
        }
        let error = read(
            "time_range={'since':'2019-01-01','until':'2019-01-31'}",
            NOW,
        )
        .expect_err("too old");
        assert_eq!(error.code, 3018);
    }
}

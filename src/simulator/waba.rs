//! WhatsApp Business Account analytics: the `analytics` field of `GET /{version}/{waba-id}`.
//!
//! Owns the meaning of the field's modifiers (`start`, `end`, `granularity`, and the optional
//! `phone_numbers`, `country_codes` and `product_types` filters) and the shape of the answer:
//! data points for aligned buckets (half hours, Pacific days or Pacific calendar months)
//! covering `[start, end)` and stopping with the bucket that contains now, which is partial:
//! its bounds are the whole bucket's, its counts only the elapsed part's. As in the real API,
//! buckets without traffic are left out rather than reported as zero; about one in four is
//! quiet, so the exporter's handling of missing buckets is exercised all the time.
//!
//! It also owns the account's bucket calendar and phone numbers, which the other WhatsApp read
//! paths (`whatsapp_billing`, `phone_numbers`) share: [`buckets`] and
//! [`account_phone_numbers`].

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::faults::GraphError;
use super::fields::{Argument, Field};
use super::generate::{self, Activity, Seed};
use super::http::ReadContext;
use crate::calendar;

/// The business portfolio's messaging limit every simulated account reports on its node
/// (`whatsapp_business_manager_messaging_limit`, or `messaging_limit_tier` before v24.0).
pub(crate) const PORTFOLIO_LIMIT: &str = "TIER_10K";

/// The business portfolio and the app every simulated account's `health_status` names, as
/// Meta names them in every account's answer.
pub(crate) const HEALTH_BUSINESS_ID: &str = "506914307656634";
pub(crate) const HEALTH_APP_ID: &str = "634974688087057";

/// The `additional_info` of Meta's LIMITED example.
const DISPLAY_NAME_PENDING: &str = "Your display name has not been approved yet. Your message limit will increase after the display name is approved.";

/// Meta's LIMITED example (graph-api.md 7.2) as the WABA `waba` would answer it: the account
/// itself LIMITED, with Meta's `additional_info`.
pub fn health_limited(waba: &str) -> Value {
    json!({"can_send_message": "LIMITED", "entities": [
        {"entity_type": "WABA", "id": waba, "can_send_message": "LIMITED",
         "additional_info": [DISPLAY_NAME_PENDING]},
        {"entity_type": "BUSINESS", "id": HEALTH_BUSINESS_ID, "can_send_message": "AVAILABLE"},
        {"entity_type": "APP", "id": HEALTH_APP_ID, "can_send_message": "AVAILABLE"}]})
}

/// The PHONE_NUMBER entity of Meta's LIMITED example (graph-api.md 7.2), without its id:
/// for `FakeGraphApi::set_phone_health`.
pub fn phone_health_limited() -> Value {
    json!({"can_send_message": "LIMITED", "can_receive_call_sip": "AVAILABLE",
           "additional_info": [DISPLAY_NAME_PENDING]})
}

/// The blocked example of graph-api.md 7.2 (Meta's codes and texts, as passed through by a
/// partner) for WABA `waba`: BLOCKED by error 141006, its payment method.
pub fn health_blocked(waba: &str) -> Value {
    json!({"can_send_message": "BLOCKED", "entities": [
        {"entity_type": "WABA", "id": waba, "can_send_message": "BLOCKED",
         "errors": [{"error_code": 141006, "error_description": "There is an error with the payment method.",
                     "possible_solution": "There was an error with your payment method. Please add a new payment method to the account."}]},
        {"entity_type": "BUSINESS", "id": HEALTH_BUSINESS_ID, "can_send_message": "AVAILABLE"},
        {"entity_type": "APP", "id": HEALTH_APP_ID, "can_send_message": "AVAILABLE"}]})
}

/// `health_status` of account `waba` on its node (graph-api.md 7.2): the WABA, the business
/// portfolio and the app, all AVAILABLE. Other states are scripted with `fixed_field`, e.g.
/// Meta's examples.
pub(crate) fn health_status(waba: &str) -> Value {
    serde_json::json!({
        "can_send_message": "AVAILABLE",
        "entities": [
            {"entity_type": "WABA", "id": waba, "can_send_message": "AVAILABLE"},
            {"entity_type": "BUSINESS", "id": HEALTH_BUSINESS_ID, "can_send_message": "AVAILABLE"},
            {"entity_type": "APP", "id": HEALTH_APP_ID, "can_send_message": "AVAILABLE", "can_receive_call_sip": "AVAILABLE"}
        ]
    })
}

/// The share of buckets without traffic.
const QUIET_SHARE: f64 = 0.25;
/// The most buckets one answer may hold; a year of half hours is 17,520.
const MAX_BUCKETS: usize = 20_000;
/// The latest `start` or `end` accepted (2100-01-01), which keeps calendar arithmetic in range.
const LATEST: i64 = 4_102_444_800;

/// Answers the `analytics` field for the WhatsApp Business Account being read.
pub(crate) fn analytics(context: &ReadContext<'_>, field: &Field) -> Result<Value, GraphError> {
    let request = AnalyticsRequest::parse(field)?;
    let data_points = request.data_points(context.object_id, context.now, context.misaligned)?;
    let phone_numbers = request
        .phone_numbers
        .clone()
        .unwrap_or_else(|| account_phone_numbers(context.object_id));
    let mut body = Map::new();
    body.insert("phone_numbers".to_owned(), json!(phone_numbers));
    if let Some(country_codes) = &request.country_codes {
        body.insert("country_codes".to_owned(), json!(country_codes));
    }
    body.insert("granularity".to_owned(), json!(request.granularity.name()));
    body.insert("data_points".to_owned(), Value::Array(data_points));
    Ok(Value::Object(body))
}

/// The phone numbers an account reports when no filter names any: two per account, as digits
/// (`1631555xxxx`).
pub(crate) fn account_phone_numbers(waba: &str) -> Vec<String> {
    ["first", "second"]
        .iter()
        .map(|which| {
            let suffix = Seed::of(&[waba, "phone", which]).between(0.0, 10_000.0) as u32;
            format!("1631555{suffix:04}")
        })
        .collect()
}

/// The bucket size of an analytics request (the other WhatsApp fields name DAY and MONTH
/// DAILY and MONTHLY, but cut them the same way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Granularity {
    HalfHour,
    Day,
    Month,
}

impl Granularity {
    /// Parses Graph's enum value; clients send it in upper case, but Graph's own field
    /// reference spells it in lower case, so either is accepted.
    fn parse(name: &str) -> Option<Granularity> {
        match name.to_ascii_uppercase().as_str() {
            "HALF_HOUR" => Some(Granularity::HalfHour),
            "DAY" => Some(Granularity::Day),
            "MONTH" => Some(Granularity::Month),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Granularity::HalfHour => "HALF_HOUR",
            Granularity::Day => "DAY",
            Granularity::Month => "MONTH",
        }
    }

    /// The start of the bucket containing `t`.
    fn bucket_start(self, t: i64) -> i64 {
        match self {
            Granularity::HalfHour => t.div_euclid(1800) * 1800,
            Granularity::Day => calendar::day_start(t),
            Granularity::Month => {
                calendar::midnight(calendar::first_of_month(calendar::pacific_date(t)))
            }
        }
    }

    /// The start of the bucket containing `t` on a calendar that is not Meta's: UTC days and
    /// months, half hours starting a quarter past or to the hour.
    fn misaligned_start(self, t: i64) -> i64 {
        const QUARTER: i64 = 900;
        match self {
            Granularity::HalfHour => (t - QUARTER).div_euclid(1800) * 1800 + QUARTER,
            Granularity::Day => t.div_euclid(generate::DAY) * generate::DAY,
            Granularity::Month => utc_midnight(calendar::first_of_month(utc_date(t))),
        }
    }

    /// The end of the misaligned bucket starting at `start`.
    fn misaligned_end(self, start: i64) -> i64 {
        match self {
            Granularity::HalfHour => start + 1800,
            Granularity::Day => start + generate::DAY,
            Granularity::Month => utc_midnight(calendar::shift_months(
                calendar::first_of_month(utc_date(start)),
                1,
            )),
        }
    }

    /// The end of the bucket starting at `start` (the start of the next one).
    fn bucket_end(self, start: i64) -> i64 {
        let date = calendar::pacific_date(start);
        match self {
            Granularity::HalfHour => start + 1800,
            Granularity::Day => calendar::midnight(calendar::shift_days(date, 1)),
            Granularity::Month => {
                calendar::midnight(calendar::shift_months(calendar::first_of_month(date), 1))
            }
        }
    }
}

/// The `(start, end)` of each bucket of `granularity` from the one containing `start` up to
/// the last one starting before `end`, stopping with the one that contains `now` (whose bounds
/// are still the whole bucket's); `misaligned` cuts them off Meta's calendar. Code 100 beyond
/// [`MAX_BUCKETS`] buckets.
pub(crate) fn buckets(
    granularity: Granularity,
    (start, end): (i64, i64),
    now: i64,
    misaligned: bool,
) -> Result<Vec<(i64, i64)>, GraphError> {
    /// Where a bucket starts, or ends given its start.
    type Boundary = fn(Granularity, i64) -> i64;
    let (start_of, end_of): (Boundary, Boundary) = if misaligned {
        (Granularity::misaligned_start, Granularity::misaligned_end)
    } else {
        (Granularity::bucket_start, Granularity::bucket_end)
    };
    let mut buckets = Vec::new();
    let mut bucket = start_of(granularity, start);
    while bucket < end && bucket <= now {
        if buckets.len() == MAX_BUCKETS {
            return Err(GraphError::invalid_parameter(format_args!(
                "The time range holds more than {MAX_BUCKETS} buckets of {}",
                granularity.name()
            )));
        }
        let next = end_of(granularity, bucket);
        buckets.push((bucket, next));
        bucket = next;
    }
    Ok(buckets)
}

/// A validated `analytics` field.
#[derive(Debug)]
struct AnalyticsRequest {
    start: i64,
    end: i64,
    granularity: Granularity,
    phone_numbers: Option<Vec<String>>,
    country_codes: Option<Vec<String>>,
}

impl AnalyticsRequest {
    fn parse(field: &Field) -> Result<AnalyticsRequest, GraphError> {
        let (mut start, mut end, mut granularity) = (None, None, None);
        let (mut phone_numbers, mut country_codes) = (None, None);
        for modifier in &field.modifiers {
            let name = modifier.name.as_str();
            let invalid = || {
                GraphError::invalid_parameter(format_args!(
                    "Invalid argument for modifier {name} of field analytics"
                ))
            };
            match (name, &modifier.argument) {
                ("start", Argument::Scalar(value)) => {
                    start = Some(timestamp(value).ok_or_else(invalid)?)
                }
                ("end", Argument::Scalar(value)) => {
                    end = Some(timestamp(value).ok_or_else(invalid)?)
                }
                ("granularity", Argument::Scalar(value)) => {
                    granularity = Some(Granularity::parse(value).ok_or_else(|| {
                        GraphError::invalid_parameter(
                            "granularity must be one of the following values: HALF_HOUR, DAY, MONTH",
                        )
                    })?);
                }
                // An empty list filters nothing.
                ("phone_numbers", Argument::List(items)) => {
                    phone_numbers = Some(items.clone()).filter(|items| !items.is_empty());
                }
                ("country_codes", Argument::List(items)) => {
                    country_codes = Some(items.clone()).filter(|items| !items.is_empty());
                }
                // Accepted for compatibility; the simulation does not split traffic by product.
                ("product_types", Argument::List(_)) => {}
                (
                    "start" | "end" | "granularity" | "phone_numbers" | "country_codes"
                    | "product_types",
                    _,
                ) => {
                    return Err(invalid());
                }
                _ => {
                    return Err(GraphError::invalid_parameter(format_args!(
                        "Unknown modifier {name} for field analytics"
                    )))
                }
            }
        }
        let required = |name: &str| {
            GraphError::invalid_parameter(format_args!("analytics requires the modifier {name}"))
        };
        let start = start.ok_or_else(|| required("start"))?;
        let end = end.ok_or_else(|| required("end"))?;
        let granularity = granularity.ok_or_else(|| required("granularity"))?;
        if start >= end {
            return Err(GraphError::invalid_parameter(
                "The start of analytics must be before its end",
            ));
        }
        Ok(AnalyticsRequest {
            start,
            end,
            granularity,
            phone_numbers,
            country_codes,
        })
    }

    /// The buckets with traffic, oldest first, for account `waba` at `now`; `misaligned` cuts
    /// them off Meta's calendar.
    fn data_points(
        &self,
        waba: &str,
        now: i64,
        misaligned: bool,
    ) -> Result<Vec<Value>, GraphError> {
        let filters = format!(
            "phones={};countries={}",
            self.phone_numbers.as_deref().unwrap_or_default().join(","),
            self.country_codes.as_deref().unwrap_or_default().join(",")
        );
        let traffic = Activity::new(Seed::of(&[waba, "sent"]), (300.0, 3000.0));
        let share = self.filter_share(waba);
        let bucket_seeds = Seed::of(&[waba, self.granularity.name(), &filters]);
        let mut points = Vec::new();
        for (bucket, next) in buckets(self.granularity, (self.start, self.end), now, misaligned)? {
            let seed = bucket_seeds.with_time(bucket);
            // Decided by the bucket alone, so a bucket never disappears as now moves on.
            let quiet = seed.with("quiet").unit() < QUIET_SHARE;
            let sent = if quiet {
                0
            } else {
                // Per-bucket noise, fixed for the bucket so a partial bucket only grows.
                let noise = seed.with("noise").between(0.7, 1.3);
                generate::count(traffic.expected(bucket, next.min(now)) * share * noise)
            };
            if sent > 0 {
                let delivered_share = seed.with("delivered").between(0.88, 0.995);
                let delivered = ((sent as f64 * delivered_share).floor() as i64).min(sent);
                points.push(
                    json!({ "start": bucket, "end": next, "sent": sent, "delivered": delivered }),
                );
            }
        }
        Ok(points)
    }

    /// The share of the account's traffic the filters select: each named phone number and
    /// country carries a stable weight.
    fn filter_share(&self, waba: &str) -> f64 {
        let share = |items: &Option<Vec<String>>, dimension: &str, low: f64, high: f64| {
            items.as_ref().map_or(1.0, |items| {
                let unique: BTreeSet<&str> = items.iter().map(String::as_str).collect();
                let total: f64 = unique
                    .iter()
                    .map(|item| Seed::of(&[waba, dimension, item]).between(low, high))
                    .sum();
                total.min(1.0)
            })
        };
        share(&self.phone_numbers, "phone", 0.15, 0.6)
            * share(&self.country_codes, "country", 0.05, 0.5)
    }
}

/// The UTC date containing `t`.
fn utc_date(t: i64) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .date_naive()
}

/// The instant UTC `date` begins.
fn utc_midnight(date: chrono::NaiveDate) -> i64 {
    date.and_time(chrono::NaiveTime::MIN).and_utc().timestamp()
}

/// A `start`/`end` argument: unix seconds from 1970 to 2100.
pub(crate) fn timestamp(text: &str) -> Option<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|t| (0..=LATEST).contains(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::fields;
    use crate::simulator::http::with_context;

    /// 2024-06-15 19:17 UTC, 12:17 in Los Angeles.
    const NOW: i64 = 1_718_479_020;
    const HOUR: i64 = 3600;

    fn read(expression: &str, now: i64) -> Result<Value, GraphError> {
        let field = fields::parse(expression)
            .expect("valid expression")
            .remove(0);
        with_context("waba-77", "", now, |context| analytics(context, &field))
    }

    /// `(start, end, sent, delivered)` of every data point.
    fn points(expression: &str, now: i64) -> Vec<(i64, i64, i64, i64)> {
        let body = read(expression, now).unwrap_or_else(|error| panic!("{expression}: {error:?}"));
        let number = |point: &Value, key: &str| {
            point[key]
                .as_i64()
                .unwrap_or_else(|| panic!("{key} in {point}"))
        };
        body["data_points"]
            .as_array()
            .expect("data points")
            .iter()
            .map(|p| {
                (
                    number(p, "start"),
                    number(p, "end"),
                    number(p, "sent"),
                    number(p, "delivered"),
                )
            })
            .collect()
    }

    #[test]
    fn half_hour_buckets_are_aligned_sparse_and_stop_at_now() {
        let (start, end) = (NOW - 4 * 24 * HOUR, NOW + 24 * HOUR);
        let points = points(
            &format!("analytics.start({start}).end({end}).granularity(HALF_HOUR)"),
            NOW,
        );
        for window in points.windows(2) {
            assert!(
                window[0].1 <= window[1].0,
                "points out of order: {window:?}"
            );
        }
        for &(start, end, sent, delivered) in &points {
            assert_eq!((start % 1800, end - start), (0, 1800));
            assert!(
                start <= NOW && 0 < sent && delivered <= sent,
                "{start} {sent} {delivered}"
            );
        }
        let buckets = ((NOW - start) / 1800 + 1) as f64;
        let missing = 1.0 - points.len() as f64 / buckets;
        assert!(
            (0.15..0.4).contains(&missing),
            "{missing} of the buckets are missing"
        );
    }

    #[test]
    fn the_current_bucket_is_partial_and_grows_until_it_closes() {
        // Find a day whose bucket is not quiet, then watch it from midday to after midnight.
        let expression = |day_start: i64| {
            format!(
                "analytics.start({day_start}).end({}).granularity(DAY)",
                day_start + 24 * HOUR
            )
        };
        let day_start = (0..20)
            .map(|days| calendar::day_start(NOW) - days * 24 * HOUR)
            .find(|&day| points(&expression(day), NOW + 40 * 24 * HOUR).len() == 1)
            .expect("some day has traffic");
        let midday = points(&expression(day_start), day_start + 12 * HOUR);
        let closed = points(&expression(day_start), day_start + 30 * HOUR);
        assert_eq!(midday.len(), 1, "the partial bucket is reported");
        assert_eq!(
            (midday[0].0, midday[0].1),
            (closed[0].0, closed[0].1),
            "bounds are the whole bucket's"
        );
        assert!(
            midday[0].2 < closed[0].2,
            "partial {midday:?} closed {closed:?}"
        );
    }

    #[test]
    fn day_buckets_start_at_pacific_midnight_across_the_dst_change() {
        // 2024-02-25 to 2024-03-25 Pacific; clocks moved forward on 2024-03-10.
        let points = points(
            "analytics.start(1708848000).end(1711350000).granularity(DAY)",
            NOW,
        );
        assert!(points.len() > 10);
        let dst_start = 1_710_057_600; // 2024-03-10 00:00 PST
        for &(start, end, ..) in &points {
            assert_eq!(
                start,
                calendar::day_start(start),
                "{start} is not a Pacific midnight"
            );
            let utc_hour = start.rem_euclid(24 * HOUR) / HOUR;
            let expected_length = if start == dst_start {
                23 * HOUR
            } else {
                24 * HOUR
            };
            assert_eq!(
                (utc_hour, end - start),
                (if start <= dst_start { 8 } else { 7 }, expected_length)
            );
        }
        assert_eq!(
            Granularity::Day.bucket_end(dst_start) - dst_start,
            23 * HOUR
        );
        let autumn = 1_730_617_200; // 2024-11-03 00:00 PDT
        assert_eq!(Granularity::Day.bucket_end(autumn) - autumn, 25 * HOUR);
    }

    /// `(start, end)` of every data point of a misaligned account.
    fn misaligned(expression: &str, now: i64) -> Vec<(i64, i64)> {
        let field = fields::parse(expression)
            .expect("valid expression")
            .remove(0);
        let request = AnalyticsRequest::parse(&field).expect("valid analytics");
        request
            .data_points("waba-77", now, true)
            .expect("points")
            .iter()
            .map(|p| {
                (
                    p["start"].as_i64().expect("start"),
                    p["end"].as_i64().expect("end"),
                )
            })
            .collect()
    }

    #[test]
    fn misaligned_buckets_are_cut_at_utc_midnights_and_quarter_hours() {
        // 2026-02-20 to 2026-03-20 UTC, across the Pacific DST change of 2026-03-08.
        let now = 1_774_000_000;
        let days = misaligned(
            "analytics.start(1771545600).end(1773964800).granularity(DAY)",
            now,
        );
        assert!(days.len() > 10);
        for &(start, end) in &days {
            assert_eq!((start % (24 * HOUR), end - start), (0, 24 * HOUR));
        }
        let months = misaligned(
            "analytics.start(1767225600).end(1773964800).granularity(MONTH)",
            now,
        );
        // 2026-01-01, 2026-02-01 and 2026-03-01 00:00 UTC, unless a month was quiet.
        assert!(!months.is_empty());
        for &(start, end) in &months {
            assert!(
                [1_767_225_600, 1_769_904_000, 1_772_323_200].contains(&start),
                "{start}"
            );
            assert_eq!(
                end,
                utc_midnight(calendar::shift_months(utc_date(start), 1))
            );
        }
        let halves = misaligned(
            "analytics.start(1773964800).end(1773986400).granularity(HALF_HOUR)",
            now,
        );
        assert!(halves.len() > 4);
        for &(start, end) in &halves {
            assert_eq!((start % 1800, end - start), (900, 1800));
        }
    }

    #[test]
    fn month_buckets_follow_pacific_calendar_months() {
        let points = points(
            "analytics.start(1704096000).end(1717225200).granularity(month)",
            NOW,
        );
        for &(start, end, sent, delivered) in &points {
            let date = calendar::pacific_date(start);
            assert_eq!(
                (date.format("%d").to_string(), start),
                ("01".to_owned(), calendar::day_start(start))
            );
            assert_eq!(end, calendar::midnight(calendar::shift_months(date, 1)));
            assert!(delivered <= sent);
        }
    }

    #[test]
    fn delivered_never_exceeds_sent() {
        for granularity in ["HALF_HOUR", "DAY", "MONTH"] {
            let expression = format!(
                "analytics.start({}).end({NOW}).granularity({granularity})",
                NOW - 300 * 24 * HOUR
            );
            let points = points(&expression, NOW);
            assert!(!points.is_empty(), "{granularity}");
            assert!(
                points
                    .iter()
                    .all(|&(.., sent, delivered)| 0 <= delivered && delivered <= sent),
                "{granularity}"
            );
        }
    }

    #[test]
    fn filters_select_part_of_the_traffic_and_are_echoed() {
        let range = format!(
            "analytics.start({}).end({NOW}).granularity(DAY)",
            NOW - 60 * 24 * HOUR
        );
        let total = |points: Vec<(i64, i64, i64, i64)>| points.iter().map(|p| p.2).sum::<i64>();
        let all = total(points(&range, NOW));
        let quoted = format!(r#"{range}.phone_numbers(["16315551000"]).country_codes(["US"])"#);
        let bare = format!("{range}.phone_numbers([16315551000]).country_codes([US])");
        assert_eq!(read(&quoted, NOW), read(&bare, NOW));
        let filtered = read(&quoted, NOW).expect("valid request");
        assert_eq!(filtered["phone_numbers"], json!(["16315551000"]));
        assert_eq!(filtered["country_codes"], json!(["US"]));
        assert!(total(points(&quoted, NOW)) < all);
        let unfiltered = read(&range, NOW).expect("valid request");
        assert!(unfiltered.get("country_codes").is_none());
        assert_eq!(
            unfiltered["phone_numbers"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(unfiltered["granularity"], "DAY");
    }

    #[test]
    fn answers_are_stable_for_the_same_time() {
        let expression = format!(
            "analytics.start({}).end({NOW}).granularity(HALF_HOUR)",
            NOW - 24 * HOUR
        );
        assert_eq!(read(&expression, NOW), read(&expression, NOW));
    }

    #[test]
    fn invalid_analytics_are_code_100() {
        for expression in [
            "analytics.start(1).end(2)",
            "analytics.start(1).granularity(DAY)",
            "analytics.start(1).end(2).granularity(WEEK)",
            "analytics.start(abc).end(2).granularity(DAY)",
            "analytics.start(5).end(5).granularity(DAY)",
            "analytics.start(1).end(2).granularity(DAY).colour(red)",
            "analytics.start(1).end(2).granularity(DAY).phone_numbers(16315551000)",
            "analytics.start(0).end(1718000000).granularity(HALF_HOUR)",
        ] {
            let error = read(expression, NOW).expect_err(expression);
            assert_eq!(error.code, 100, "{expression}");
        }
    }
}

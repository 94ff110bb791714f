//! WhatsApp Business Account analytics (`GET /{waba-id}?fields=analytics...`) to gauges.
//!
//! The API returns buckets (`data_points`) of the chosen granularity and omits buckets with no
//! traffic. The exported value is the count in the most recent complete bucket, the one that
//! ended at or before now; the bucket containing now is partial and never the value. An omitted
//! bucket counts 0, not the last value seen; a bucket that is there with an unusable count
//! (negative, not a number) exports no value for that count, since 0 would be a lie. Bucket
//! boundaries follow Meta's Pacific-time days and months (America/Los_Angeles); half hours are
//! aligned to UTC half hours.
//!
//! "Omitted means 0" holds only while the API cuts buckets where that calendar does. When a data
//! point does not line up with it (UTC days, say, or a DST change handled differently), the
//! expected bucket can be missing without being quiet, and reading it as 0 would be a silent
//! lie. The value is then the latest complete bucket by the API's own boundaries, and a
//! `bucket_misaligned` problem names the account and the boundaries seen. A response with no
//! data points at all keeps its documented meaning: no traffic, 0.
//!
//! The richer WhatsApp read paths share these rules and live beside this one: [`billing`]
//! (`pricing_analytics`, `conversation_analytics`), [`templates`] (template analytics, UTC
//! days), [`phone_numbers`] (quality rating, messaging limit, throughput) and [`health`]
//! (`health_status` of the numbers, the account, its portfolio and the app).

pub mod billing;
pub mod health;
pub mod limits;
#[cfg(any(test, feature = "demo"))]
pub mod meta_examples;
pub mod phone_numbers;
pub mod templates;

use chrono::{Datelike, NaiveDate};
use serde_json::Value;

use super::{parse_non_negative, parse_time, Converted, ShapeError, ValueProblem};
use crate::calendar;
use crate::config::Granularity;
use crate::exposition::{Family, Sample};

/// A bucket as `[start, end)` in unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// First second of the bucket.
    pub start: i64,
    /// First second after the bucket.
    pub end: i64,
}

/// The bucket that contains `time`.
pub fn bucket_containing(granularity: Granularity, time: i64) -> Bucket {
    const HALF_HOUR: i64 = 1800;
    match granularity {
        Granularity::HalfHour => {
            let start = time.div_euclid(HALF_HOUR) * HALF_HOUR;
            Bucket {
                start,
                end: start + HALF_HOUR,
            }
        }
        Granularity::Day => {
            let day = calendar::pacific_date(time);
            Bucket {
                start: calendar::midnight(day),
                end: calendar::midnight(day.succ_opt().unwrap_or(day)),
            }
        }
        Granularity::Month => {
            let day = calendar::pacific_date(time);
            let first = day.with_day(1).unwrap_or(day);
            let next = if first.month() == 12 {
                NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
            }
            .unwrap_or(first);
            Bucket {
                start: calendar::midnight(first),
                end: calendar::midnight(next),
            }
        }
    }
}

/// The most recent bucket that ended at or before `now`.
pub fn last_complete_bucket(granularity: Granularity, now: i64) -> Bucket {
    let current = bucket_containing(granularity, now);
    bucket_containing(granularity, current.start - 1)
}

/// Which bucket's values to export, from the buckets a response holds.
pub(crate) enum Wanted {
    /// Every bucket is on the calendar: the last complete one by it, present or omitted.
    Aligned(Bucket),
    /// Some are not, so an omitted bucket cannot be read as quiet: the latest complete one the
    /// response holds, if any, and the buckets that are off the calendar.
    Misaligned {
        /// The buckets off the calendar.
        misaligned: Vec<Bucket>,
        /// The latest bucket that ended at or before now.
        latest: Option<Bucket>,
    },
}

/// Chooses the bucket to export as of `now`, given the calendar (`containing` maps a time to
/// its bucket) and the buckets in a response.
pub(crate) fn wanted_bucket(
    containing: impl Fn(i64) -> Bucket,
    now: i64,
    buckets: &[Bucket],
) -> Wanted {
    let misaligned: Vec<Bucket> = buckets
        .iter()
        .copied()
        .filter(|bucket| containing(bucket.start) != *bucket)
        .collect();
    if misaligned.is_empty() {
        let current = containing(now);
        return Wanted::Aligned(containing(current.start - 1));
    }
    let latest = buckets
        .iter()
        .copied()
        .filter(|bucket| bucket.end <= now)
        .max_by_key(|bucket| (bucket.end, bucket.start));
    Wanted::Misaligned { misaligned, latest }
}

/// The widest times accepted in a data point (about the years -1200 to 5100): far beyond any
/// real bucket, and far enough inside `i64` that calendar arithmetic on them cannot overflow.
const TIME_RANGE: std::ops::RangeInclusive<i64> = -100_000_000_000..=100_000_000_000;

/// `[start, end)` of each data point, or a problem for a point without readable times.
pub(crate) fn point_bucket(point: &Value, problems: &mut Vec<ValueProblem>) -> Option<Bucket> {
    match (
        point.get("start").and_then(parse_time),
        point.get("end").and_then(parse_time),
    ) {
        (Some(start), Some(end)) if TIME_RANGE.contains(&start) && TIME_RANGE.contains(&end) => {
            Some(Bucket { start, end })
        }
        _ => {
            problems.push(ValueProblem {
                reason: "invalid_bucket_time",
                detail: "a data point has a missing or unreadable start or end".into(),
            });
            None
        }
    }
}

/// The `bucket_misaligned` problem of a read path whose calendar is not Meta's: `what` names
/// the account and field, `calendar` the calendar the points are off.
pub(crate) fn misaligned_problem(
    what: String,
    calendar: &str,
    misaligned: &[Bucket],
    latest: Option<Bucket>,
) -> ValueProblem {
    let used = latest.map_or_else(
        || "none of them is complete yet, so no value is exported".to_owned(),
        |b| {
            format!(
                "the latest complete one, [{}, {}), is exported",
                b.start, b.end
            )
        },
    );
    ValueProblem {
        reason: "bucket_misaligned",
        detail: format!(
            "{what}: data points {} (unix seconds) are off {calendar}; {used}",
            describe_buckets(misaligned)
        ),
    }
}

/// The entries of one page of a list edge (`{"data": [...], "paging": ...}`) with their ids;
/// an entry without an id is a problem and left out, a page without `data` a shape error.
pub(crate) fn list_entries<'a>(
    page: &'a Value,
    edge: &str,
    problems: &mut Vec<ValueProblem>,
) -> Result<Vec<(String, &'a Value)>, ShapeError> {
    let data = match page.get("data") {
        Some(Value::Array(data)) => data,
        Some(_) => return Err(ShapeError(format!("{edge}.data is not an array"))),
        None => return Err(ShapeError(format!("the {edge} list has no data"))),
    };
    let mut entries = Vec::with_capacity(data.len());
    for entry in data {
        match entry.get("id").and_then(super::label_value) {
            Some(id) => entries.push((id, entry)),
            None => problems.push(ValueProblem {
                reason: "missing_id",
                detail: format!("an entry of {edge} without an id"),
            }),
        }
    }
    Ok(entries)
}

/// A text field of a list entry; empty when absent or not a string.
pub(crate) fn text_field(entry: &Value, key: &str) -> String {
    entry
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The boundaries of misaligned buckets for a log line: the first few, and how many more.
pub(crate) fn describe_buckets(buckets: &[Bucket]) -> String {
    const SHOWN: usize = 3;
    let mut seen: Vec<String> = buckets
        .iter()
        .take(SHOWN)
        .map(|bucket| format!("[{}, {})", bucket.start, bucket.end))
        .collect();
    if buckets.len() > SHOWN {
        seen.push(format!("{} more", buckets.len() - SHOWN));
    }
    seen.join(", ")
}

/// The series one analytics request is about.
#[derive(Debug, Clone, Copy)]
pub struct Selection<'a> {
    /// WABA id.
    pub waba_id: &'a str,
    /// Bucket size.
    pub granularity: Granularity,
}

/// Converts one analytics response as of `now` (unix seconds).
pub fn convert(selection: Selection<'_>, now: i64, body: &Value) -> Result<Converted, ShapeError> {
    if !body.is_object() {
        return Err(ShapeError(
            "WhatsApp analytics body is not an object".into(),
        ));
    }
    // A WABA with no traffic at all in the window answers without `analytics`.
    let points = match body.get("analytics") {
        None | Some(Value::Null) => &[][..],
        Some(analytics) => match analytics.get("data_points") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(points)) => points.as_slice(),
            Some(_) => {
                return Err(ShapeError("analytics.data_points is not an array".into()));
            }
        },
    };

    let mut converted = Converted::default();
    let mut bounded = Vec::with_capacity(points.len());
    for point in points {
        if let Some(bucket) = point_bucket(point, &mut converted.problems) {
            bounded.push((bucket, point));
        }
    }
    let buckets: Vec<Bucket> = bounded.iter().map(|(bucket, _)| *bucket).collect();
    let wanted = match wanted_bucket(
        |t| bucket_containing(selection.granularity, t),
        now,
        &buckets,
    ) {
        Wanted::Aligned(bucket) => Some(bucket),
        Wanted::Misaligned { misaligned, latest } => {
            converted.problems.push(ValueProblem {
                reason: "bucket_misaligned",
                detail: misaligned_detail(selection, &misaligned, latest),
            });
            latest
        }
    };
    let mut sent = Reading::default();
    let mut delivered = Reading::default();
    for (bucket, point) in &bounded {
        if Some(*bucket) != wanted {
            continue;
        }
        sent.read(
            "sent",
            point.get("sent"),
            bucket.start,
            &mut converted.problems,
        );
        delivered.read(
            "delivered",
            point.get("delivered"),
            bucket.start,
            &mut converted.problems,
        );
    }
    // Without a bucket to read (misaligned, and none of the API's buckets complete yet) there
    // is no value to export, and certainly not 0.
    let (sent, delivered) = match wanted {
        Some(_) => (sent.exported(), delivered.exported()),
        None => (None, None),
    };

    let labels = vec![
        ("waba_id".to_owned(), selection.waba_id.to_owned()),
        (
            "granularity".to_owned(),
            selection.granularity.as_str().to_owned(),
        ),
    ];
    let family = |name: &str, help: &str, value: Option<f64>| Family {
        name: name.to_owned(),
        help: help.to_owned(),
        samples: value
            .map(|value| Sample {
                labels: labels.clone(),
                value,
            })
            .into_iter()
            .collect(),
    };
    converted.families.push(family(
        "meta_whatsapp_analytics_sent",
        "WhatsApp messages sent in the most recent complete analytics bucket of the granularity in the label (count; a bucket the API omits counts 0). Graph API WABA analytics; from a background poll, not fetched at scrape time.",
        sent,
    ));
    converted.families.push(family(
        "meta_whatsapp_analytics_delivered",
        "WhatsApp messages delivered in the most recent complete analytics bucket of the granularity in the label (count; a bucket the API omits counts 0). Graph API WABA analytics; from a background poll, not fetched at scrape time.",
        delivered,
    ));
    converted.families.push(family(
        "meta_whatsapp_analytics_bucket_end_timestamp_seconds",
        "End of the analytics bucket the meta_whatsapp_analytics_sent and _delivered values cover (unix seconds).",
        wanted.map(|bucket| bucket.end as f64),
    ));
    Ok(converted)
}

/// The log detail of a response whose buckets are off Meta's calendar: which account, which
/// boundaries, and which bucket was used instead.
fn misaligned_detail(
    selection: Selection<'_>,
    misaligned: &[Bucket],
    used: Option<Bucket>,
) -> String {
    let used = match used {
        Some(bucket) => format!(
            "the latest complete one the API returned, [{}, {}), is exported",
            bucket.start, bucket.end
        ),
        None => "none of them is complete yet, so no value is exported".to_owned(),
    };
    format!(
        "WABA {}: {} data points {} (unix seconds) do not start and end where Meta's Pacific-time calendar puts {} buckets; {used}",
        selection.waba_id,
        selection.granularity.as_str(),
        describe_buckets(misaligned),
        selection.granularity.as_str(),
    )
}

/// What the data points of the wanted bucket said about one count.
#[derive(Debug, Default)]
struct Reading {
    /// The last usable value.
    value: Option<f64>,
    /// Whether a point of the bucket carried a value that could not be used.
    unreadable: bool,
}

impl Reading {
    fn read(
        &mut self,
        field: &str,
        value: Option<&Value>,
        start: i64,
        problems: &mut Vec<ValueProblem>,
    ) {
        // A point without the field had none of that traffic, as with an omitted bucket.
        match value.map_or(Ok(0.0), parse_non_negative) {
            Ok(number) => self.value = Some(number),
            Err(reason) => {
                self.unreadable = true;
                problems.push(ValueProblem {
                    reason,
                    detail: format!("{field} of the data point starting {start}"),
                });
            }
        }
    }

    /// The value to export: the API's, 0 for a bucket it omitted, none when the bucket was
    /// there but its value could not be used.
    fn exported(&self) -> Option<f64> {
        match (self.value, self.unreadable) {
            (Some(value), _) => Some(value),
            (None, true) => None,
            (None, false) => Some(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Found by the converters' review: `i64::MAX` as a bucket start overflowed in the
    /// half-hour calendar (`start + 1800`), a panic in a debug build.
    #[test]
    fn times_beyond_any_calendar_are_a_problem_not_an_overflow() {
        for granularity in [Granularity::HalfHour, Granularity::Day, Granularity::Month] {
            let body = json!({"analytics": {"data_points": [
                {"start": i64::MAX - 5, "end": i64::MAX, "sent": 1},
                {"start": i64::MIN, "end": 0, "sent": 1}
            ]}});
            let converted = convert(selection(granularity), 4000, &body).expect("shape");
            let reasons: Vec<&str> = converted.problems.iter().map(|p| p.reason).collect();
            assert_eq!(reasons, ["invalid_bucket_time", "invalid_bucket_time"]);
        }
    }

    #[test]
    fn day_buckets_start_at_pacific_midnight_across_dst() {
        // 2022-03-15 12:00 UTC: PDT, midnight is 07:00 UTC.
        let bucket = bucket_containing(Granularity::Day, 1_647_345_600);
        assert_eq!(
            bucket,
            Bucket {
                start: 1_647_327_600,
                end: 1_647_414_000
            }
        );
        // 2022-03-13, the spring-forward day, is 23 hours long.
        let short = bucket_containing(Granularity::Day, 1_647_180_000);
        assert_eq!(short.end - short.start, 23 * 3600);
        // 2022-01-10 is PST: midnight is 08:00 UTC.
        assert_eq!(
            bucket_containing(Granularity::Day, 1_641_830_400).start % 86_400,
            8 * 3600
        );
    }

    #[test]
    fn month_and_half_hour_buckets() {
        let month = bucket_containing(Granularity::Month, 1_647_345_600);
        assert_eq!(month.start, 1_646_121_600); // 2022-03-01 00:00 PST
        assert_eq!(month.end, 1_648_796_400); // 2022-04-01 00:00 PDT
        let half = bucket_containing(Granularity::HalfHour, 1_800 * 10 + 5);
        assert_eq!(
            half,
            Bucket {
                start: 18_000,
                end: 19_800
            }
        );
    }

    #[test]
    fn the_partial_bucket_is_not_the_value_and_an_omitted_bucket_is_zero() {
        let selection = Selection {
            waba_id: "w",
            granularity: Granularity::HalfHour,
        };
        let body = json!({"analytics": {"data_points": [
            {"start": 0, "end": 1800, "sent": 5, "delivered": 4},
            {"start": 3600, "end": 5400, "sent": 9, "delivered": 9}
        ]}});
        // now = 4000: the current bucket [3600,5400) is partial, [1800,3600) is omitted.
        let converted = convert(selection, 4000, &body).expect("shape");
        assert_eq!(converted.families[0].samples[0].value, 0.0);
        // now = 2000: [0,1800) is the last complete one.
        let converted = convert(selection, 2000, &body).expect("shape");
        assert_eq!(converted.families[0].samples[0].value, 5.0);
        assert_eq!(converted.families[1].samples[0].value, 4.0);
    }

    fn selection(granularity: Granularity) -> Selection<'static> {
        Selection {
            waba_id: "w",
            granularity,
        }
    }

    /// `(sent, delivered, bucket end)` as exported.
    type Exported = (Option<f64>, Option<f64>, Option<f64>);

    /// What is exported, and the problem reasons.
    fn read(granularity: Granularity, now: i64, points: Value) -> (Exported, Vec<&'static str>) {
        let body = json!({"analytics": {"data_points": points}});
        let converted = convert(selection(granularity), now, &body).expect("shape");
        let value = |index: usize| converted.families[index].samples.first().map(|s| s.value);
        let reasons = converted.problems.iter().map(|p| p.reason).collect();
        ((value(0), value(1), value(2)), reasons)
    }

    // Pacific midnights of 2026-03-07 to 2026-03-10 (clocks spring forward on the 8th), and
    // 12:00 UTC on the 9th.
    const MAR_7: i64 = 1_772_870_400;
    const MAR_8: i64 = 1_772_956_800;
    const MAR_9: i64 = 1_773_039_600;
    const MAR_10: i64 = 1_773_126_000;
    const MAR_9_NOON_UTC: i64 = 1_773_057_600;

    #[test]
    fn aligned_day_buckets_across_the_spring_dst_change_give_the_short_day() {
        let points = json!([
            {"start": MAR_7, "end": MAR_8, "sent": 4, "delivered": 4},
            {"start": MAR_8, "end": MAR_9, "sent": 23, "delivered": 22},
            {"start": MAR_9, "end": MAR_10, "sent": 1, "delivered": 1}
        ]);
        let (values, reasons) = read(Granularity::Day, MAR_9_NOON_UTC, points);
        assert_eq!(values, (Some(23.0), Some(22.0), Some(MAR_9 as f64)));
        assert!(reasons.is_empty(), "{reasons:?}");
    }

    #[test]
    fn utc_day_buckets_give_the_apis_latest_complete_bucket_and_a_problem_not_zero() {
        // UTC midnights of 2026-03-08, 09 and 10: none is a Pacific midnight.
        let (utc_8, utc_9, utc_10) = (1_772_928_000, 1_773_014_400, 1_773_100_800);
        let points = json!([
            {"start": utc_8, "end": utc_9, "sent": 17, "delivered": 15},
            {"start": utc_9, "end": utc_10, "sent": 6, "delivered": 6}
        ]);
        let (values, reasons) = read(Granularity::Day, MAR_9_NOON_UTC, points.clone());
        assert_eq!(values, (Some(17.0), Some(15.0), Some(utc_9 as f64)));
        assert_eq!(reasons, ["bucket_misaligned"]);
        let body = json!({"analytics": {"data_points": points}});
        let converted = convert(selection(Granularity::Day), MAR_9_NOON_UTC, &body).expect("shape");
        let detail = &converted.problems[0].detail;
        assert!(
            detail.starts_with("WABA w: DAY data points")
                && detail.contains(&format!("[{utc_8}, {utc_9})"))
                && detail.contains(&format!("[{utc_9}, {utc_10})")),
            "{detail}"
        );
    }

    #[test]
    fn misaligned_buckets_none_of_them_complete_export_nothing() {
        let points = json!([{"start": 1_773_014_400, "end": 1_773_100_800, "sent": 6}]);
        let (values, reasons) = read(Granularity::Day, MAR_9_NOON_UTC, points);
        assert_eq!(values, (None, None, None));
        assert_eq!(reasons, ["bucket_misaligned"]);
    }

    #[test]
    fn no_data_points_at_all_is_a_quiet_bucket() {
        let (values, reasons) = read(Granularity::Month, MAR_9_NOON_UTC, json!([]));
        // February 2026, Pacific: 2026-02-01 08:00 UTC to 2026-03-01 08:00 UTC.
        assert_eq!(values, (Some(0.0), Some(0.0), Some(1_772_352_000.0)));
        assert!(reasons.is_empty());
    }

    #[test]
    fn month_buckets_across_the_autumn_dst_change() {
        // November 2026 Pacific starts in PDT and ends in PST; now is 2026-12-10.
        let (nov, dec, jan) = (1_793_516_400, 1_796_112_000, 1_798_790_400);
        let now = 1_796_904_000;
        let aligned = json!([
            {"start": nov, "end": dec, "sent": 300, "delivered": 290},
            {"start": dec, "end": jan, "sent": 80, "delivered": 79}
        ]);
        let (values, reasons) = read(Granularity::Month, now, aligned);
        assert_eq!(values, (Some(300.0), Some(290.0), Some(dec as f64)));
        assert!(reasons.is_empty());
        // The same months cut at UTC midnight.
        let (utc_nov, utc_dec, utc_jan) = (1_793_491_200, 1_796_083_200, 1_798_761_600);
        let misaligned = json!([
            {"start": utc_nov, "end": utc_dec, "sent": 301, "delivered": 291},
            {"start": utc_dec, "end": utc_jan, "sent": 81, "delivered": 80}
        ]);
        let (values, reasons) = read(Granularity::Month, now, misaligned);
        assert_eq!(values, (Some(301.0), Some(291.0), Some(utc_dec as f64)));
        assert_eq!(reasons, ["bucket_misaligned"]);
    }

    /// Found by `whatsapp_conversion_never_panics_and_reports_the_last_complete_bucket`: a
    /// negative count was exported, and one bad count turned both into 0.
    #[test]
    fn an_unusable_count_exports_no_value_and_the_other_count_is_kept() {
        let selection = Selection {
            waba_id: "w",
            granularity: Granularity::HalfHour,
        };
        for (bad, reason) in [
            (json!("-3"), "negative"),
            (json!(-1), "negative"),
            (json!("1e999"), "not_finite"),
            (json!("NaN"), "not_finite"),
            (json!("Infinity"), "not_finite"),
            (json!(""), "empty_string"),
            (Value::Null, "null"),
        ] {
            let body = json!({"analytics": {"data_points": [
                {"start": 0, "end": 1800, "sent": bad, "delivered": 4}
            ]}});
            let converted = convert(selection, 2000, &body).expect("shape");
            assert!(converted.families[0].samples.is_empty(), "{bad}");
            assert_eq!(converted.families[1].samples[0].value, 4.0, "{bad}");
            assert_eq!(converted.families[2].samples[0].value, 1800.0, "{bad}");
            let reasons: Vec<&str> = converted.problems.iter().map(|p| p.reason).collect();
            assert_eq!(reasons, [reason], "{bad}");
        }
    }
}

//! Page messaging insights (`GET /{page-id}/insights`) to gauges.
//!
//! Each `data` entry is one metric; each of its `values` rows is one point in time, and rows
//! of a broken-down request carry their breakdown values as extra keys beside `value`. A
//! gauge is `meta_` + the metric name with labels `page_id`, `period` and each breakdown key
//! verbatim; for every label set the row with the latest `end_time` wins, and when that row's
//! value is unusable the series has no value (it goes stale) rather than an older row's,
//! which would be served as current. A row that ends more than one period after now is a
//! fault in the answer and is skipped with a problem, so it cannot beat the real latest row.
//! An object value
//! (`{"US": 10, "FR": 3}`, sent by some older metrics) is a map whose keys become the `key`
//! label. A label whose value is empty is left out, because Prometheus treats `x=""` as no
//! label `x`: two rows that differ only there are one series, and the later one wins.
//! Documented counts and ratios must not be negative; signed and undocumented metrics are
//! taken as the API gives them.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{
    label_value, parse_non_negative, parse_number, parse_time, Converted, ShapeError, ValueProblem,
};
use crate::catalog;
use crate::exposition::{is_valid_name, Family, Sample};

/// One series' labels.
type Labels = Vec<(String, String)>;

/// Labels the exporter sets itself; a breakdown key with one of these names is renamed
/// `breakdown_<name>` rather than overwriting it.
const RESERVED_LABELS: &[&str] = &["page_id", "period", "key"];

/// Converts one Page insights response. `requested_period` labels entries that omit `period`.
/// No row is too late: for replaying history, whose rows all ended already.
pub fn convert(
    page_id: &str,
    requested_period: &str,
    body: &Value,
) -> Result<Converted, ShapeError> {
    convert_at(page_id, requested_period, body, None)
}

/// [`convert`] of an answer read at `now` (unix seconds): rows ending more than one period
/// after it are skipped as `future_end_time`.
pub fn convert_at(
    page_id: &str,
    requested_period: &str,
    body: &Value,
    now: Option<i64>,
) -> Result<Converted, ShapeError> {
    let entries = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| ShapeError("Page insights body has no `data` array".into()))?;
    let mut converted = Converted::default();
    for entry in entries {
        convert_entry(page_id, requested_period, entry, now, &mut converted);
    }
    Ok(converted)
}

/// How long one row of `period` covers, to tell a row that ends soon from one that cannot
/// have ended yet; periods without a fixed length count as a day.
fn period_seconds(period: &str) -> i64 {
    match period {
        "week" => 7 * 86_400,
        "days_28" => 28 * 86_400,
        "month" => 31 * 86_400,
        _ => 86_400,
    }
}

fn convert_entry(
    page_id: &str,
    requested_period: &str,
    entry: &Value,
    now: Option<i64>,
    out: &mut Converted,
) {
    let Some(name) = entry.get("name").and_then(Value::as_str) else {
        out.problems.push(ValueProblem {
            reason: "missing_name",
            detail: "a data entry has no metric name".into(),
        });
        return;
    };
    if !is_valid_name(name) {
        out.problems.push(ValueProblem {
            reason: "invalid_name",
            detail: format!("metric name {name:?} cannot be a Prometheus name"),
        });
        return;
    }
    let period = entry
        .get("period")
        .and_then(Value::as_str)
        .unwrap_or(requested_period);
    let rows = entry
        .get("values")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let read: fn(&Value) -> Result<f64, &'static str> =
        if catalog::page_metric_is_non_negative(name) {
            parse_non_negative
        } else {
            parse_number
        };

    // Latest end_time per label set, with its value or `None` when that row's value is
    // unusable; equal times keep the later row.
    let mut latest: BTreeMap<Labels, (i64, Option<f64>)> = BTreeMap::new();
    let latest_allowed = now.map(|now| now.saturating_add(period_seconds(period)));
    for row in rows {
        let Some(row) = row.as_object() else {
            out.problems.push(problem(
                name,
                "malformed_row",
                "a values row is not an object",
            ));
            continue;
        };
        let Some(end_time) = row.get("end_time").and_then(parse_time) else {
            out.problems.push(problem(
                name,
                "invalid_end_time",
                "a row has a missing or unreadable end_time",
            ));
            continue;
        };
        if latest_allowed.is_some_and(|allowed| end_time > allowed) {
            out.problems.push(problem(
                name,
                "future_end_time",
                &format!("a row ends at unix time {end_time}, more than one {period} from now"),
            ));
            continue;
        }
        let Some(labels) = breakdown_labels(page_id, period, name, row, out) else {
            continue;
        };
        let value = row.get("value").unwrap_or(&Value::Null);
        let mut points: Vec<(Labels, Option<f64>)> = Vec::new();
        if let Value::Object(map) = value {
            for (key, inner) in map {
                let mut keyed = labels.clone();
                if !key.is_empty() {
                    keyed.push(("key".to_owned(), key.clone()));
                }
                match read(inner) {
                    Ok(number) => points.push((keyed, Some(number))),
                    Err(reason) => {
                        out.problems
                            .push(problem(name, reason, &format!("value for key {key:?}")));
                        points.push((keyed, None));
                    }
                }
            }
        } else {
            match read(value) {
                Ok(number) => points.push((labels, Some(number))),
                Err(reason) => {
                    out.problems.push(problem(name, reason, "value"));
                    points.push((labels, None));
                }
            }
        }
        for (labels, number) in points {
            let slot = latest.entry(labels).or_insert((end_time, number));
            if end_time >= slot.0 {
                *slot = (end_time, number);
            }
        }
    }

    out.families.push(Family {
        name: catalog::gauge_name(name),
        help: catalog::page_metric_help(name),
        samples: latest
            .into_iter()
            .filter_map(|(labels, (_, value))| {
                Some(Sample {
                    labels,
                    value: value?,
                })
            })
            .collect(),
    });
}

/// `page_id`, `period`, then every breakdown key of the row with a non-empty value, sorted.
fn breakdown_labels(
    page_id: &str,
    period: &str,
    metric: &str,
    row: &Map<String, Value>,
    out: &mut Converted,
) -> Option<Vec<(String, String)>> {
    let mut labels = vec![
        ("page_id".to_owned(), page_id.to_owned()),
        ("period".to_owned(), period.to_owned()),
    ];
    let mut breakdowns: Vec<(String, String)> = Vec::new();
    for (key, value) in row {
        if key == "value" || key == "end_time" {
            continue;
        }
        if !is_valid_name(key) || key.starts_with("__") {
            out.problems.push(problem(
                metric,
                "invalid_label_name",
                &format!("breakdown key {key:?}"),
            ));
            return None;
        }
        let Some(text) = label_value(value) else {
            out.problems.push(problem(
                metric,
                "invalid_label_value",
                &format!("breakdown {key:?} is not a string or number"),
            ));
            return None;
        };
        if text.is_empty() {
            continue;
        }
        let label = if RESERVED_LABELS.contains(&key.as_str()) {
            format!("breakdown_{key}")
        } else {
            key.clone()
        };
        // A row with both `period` and `breakdown_period` would name one label twice after
        // the renaming, which Prometheus rejects; neither can be chosen over the other.
        if breakdowns.iter().any(|(existing, _)| *existing == label) {
            out.problems.push(problem(
                metric,
                "duplicate_label_name",
                &format!("breakdown {key:?} and another key both become label {label:?}"),
            ));
            return None;
        }
        breakdowns.push((label, text));
    }
    breakdowns.sort();
    labels.extend(breakdowns);
    Some(labels)
}

fn problem(metric: &str, reason: &'static str, what: &str) -> ValueProblem {
    ValueProblem {
        reason,
        detail: format!("metric {metric}: {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn samples(converted: &Converted, family: &str) -> Vec<(Vec<(String, String)>, f64)> {
        converted
            .families
            .iter()
            .filter(|f| f.name == family)
            .flat_map(|f| f.samples.iter().map(|s| (s.labels.clone(), s.value)))
            .collect()
    }

    fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn the_latest_end_time_wins_whatever_the_row_order() {
        let body = json!({"data": [{"name": "page_messages_sent", "period": "day", "values": [
            {"value": 5, "end_time": "2024-01-03T08:00:00+0000"},
            {"value": "4", "end_time": "2024-01-02T08:00:00+0000"}
        ]}]});
        let converted = convert("1", "day", &body).expect("shape");
        assert_eq!(
            samples(&converted, "meta_page_messages_sent"),
            vec![(l(&[("page_id", "1"), ("period", "day")]), 5.0)]
        );
    }

    #[test]
    fn an_invalid_latest_row_leaves_its_series_without_a_value_not_with_an_older_one() {
        let body = json!({"data": [{"name": "page_messages_sent", "period": "day", "values": [
            {"value": 7, "end_time": "2024-01-01T08:00:00+0000"},
            {"value": 9, "end_time": "2024-01-02T08:00:00+0000"},
            {"value": -12, "end_time": "2024-01-03T08:00:00+0000"}
        ]}]});
        let converted = convert("1", "day", &body).expect("shape");
        assert!(samples(&converted, "meta_page_messages_sent").is_empty());
        assert_eq!(converted.problems[0].reason, "negative");
        // The same for one key of an object value: the other keys keep theirs.
        let body = json!({"data": [{"name": "page_fans_country", "period": "day", "values": [
            {"value": {"US": 10, "FR": 3}, "end_time": "1000"},
            {"value": {"US": "NaN", "FR": 4}, "end_time": "2000"}
        ]}]});
        let converted = convert("1", "day", &body).expect("shape");
        assert_eq!(
            samples(&converted, "meta_page_fans_country"),
            vec![(
                l(&[("page_id", "1"), ("period", "day"), ("key", "FR")]),
                4.0
            )]
        );
    }

    #[test]
    fn a_row_ending_beyond_one_period_from_now_is_skipped_and_cannot_beat_the_latest() {
        // 2024-01-03 08:00 UTC.
        let now = 1_704_268_800;
        let body = json!({"data": [{"name": "page_messages_sent", "period": "day", "values": [
            {"value": 5, "end_time": "2024-01-03T08:00:00+0000"},
            {"value": 999, "end_time": "9999-12-31T08:00:00+0000"},
            {"value": 6, "end_time": "2024-01-04T08:00:00+0000"}
        ]}]});
        let converted = convert_at("1", "day", &body, Some(now)).expect("shape");
        // A row ending within one period (the day in progress) is still taken.
        assert_eq!(
            samples(&converted, "meta_page_messages_sent"),
            vec![(l(&[("page_id", "1"), ("period", "day")]), 6.0)]
        );
        let reasons: Vec<&str> = converted.problems.iter().map(|p| p.reason).collect();
        assert_eq!(reasons, ["future_end_time"]);
        // A week row may end up to a week ahead.
        let body = json!({"data": [{"name": "page_messages_sent", "period": "week", "values": [
            {"value": 8, "end_time": now + 6 * 86_400}
        ]}]});
        let converted = convert_at("1", "week", &body, Some(now)).expect("shape");
        assert_eq!(samples(&converted, "meta_page_messages_sent").len(), 1);
    }

    #[test]
    fn object_values_become_a_key_label() {
        let body = json!({"data": [{"name": "page_fans_country", "period": "day", "values": [
            {"value": {"US": 10, "FR": "3"}, "end_time": "1665175977"}
        ]}]});
        let converted = convert("1", "day", &body).expect("shape");
        assert_eq!(
            samples(&converted, "meta_page_fans_country"),
            vec![
                (
                    l(&[("page_id", "1"), ("period", "day"), ("key", "FR")]),
                    3.0
                ),
                (
                    l(&[("page_id", "1"), ("period", "day"), ("key", "US")]),
                    10.0
                ),
            ]
        );
    }

    #[test]
    fn a_bad_value_is_a_problem_and_the_rest_is_kept() {
        let body = json!({"data": [
            {"name": "page_messages_sent", "period": "day", "values": [{"value": "NaN", "end_time": "1"}]},
            {"name": "page_messages_engagement", "period": "day", "values": [{"value": 3, "end_time": "1"}]}
        ]});
        let converted = convert("1", "day", &body).expect("shape");
        assert_eq!(converted.problems.len(), 1);
        assert_eq!(converted.problems[0].reason, "not_finite");
        assert_eq!(
            samples(&converted, "meta_page_messages_engagement").len(),
            1
        );
        // The family still exists (empty), so HELP stays stable; its series are gone.
        assert!(samples(&converted, "meta_page_messages_sent").is_empty());
    }

    #[test]
    fn a_breakdown_key_named_like_an_exporter_label_is_renamed() {
        let body = json!({"data": [{"name": "m", "values": [{"value": 1, "end_time": "1", "period": "x"}]}]});
        let converted = convert("1", "week", &body).expect("shape");
        assert_eq!(
            samples(&converted, "meta_m"),
            vec![(
                l(&[
                    ("page_id", "1"),
                    ("period", "week"),
                    ("breakdown_period", "x")
                ]),
                1.0
            )]
        );
    }

    #[test]
    fn every_kind_of_unusable_value_is_a_problem_and_the_rest_is_kept() {
        let entry = |name: &str, value: Value| json!({"name": name, "period": "day", "values": [{"value": value, "end_time": "1"}]});
        let body = json!({"data": [
            entry("page_messages_sent", json!("-5")),
            entry("page_messages_order_count", json!("1e999")),
            entry("page_messages_engagement", json!("NaN")),
            entry("page_messages_read_ratio", json!("-Infinity")),
            entry("page_messages_blocked_conversations_unique", json!("")),
            entry("page_messages_reported_conversations_unique", Value::Null),
            entry("page_messages_new_conversations_unique", json!("12")),
        ]});
        let converted = convert("1", "day", &body).expect("shape");
        let reasons: Vec<&str> = converted.problems.iter().map(|p| p.reason).collect();
        assert_eq!(
            reasons,
            [
                "negative",
                "not_finite",
                "not_finite",
                "not_finite",
                "empty_string",
                "null"
            ]
        );
        assert_eq!(
            samples(&converted, "meta_page_messages_new_conversations_unique"),
            vec![(l(&[("page_id", "1"), ("period", "day")]), 12.0)]
        );
    }

    #[test]
    fn signed_and_undocumented_metrics_may_be_negative() {
        let body = json!({"data": [
            {"name": "recurring_notifications_tokens", "period": "day", "values": [{"value": -4, "end_time": "1"}]},
            {"name": "page_new_metric", "period": "day", "values": [{"value": "-0.5", "end_time": "1"}]}
        ]});
        let converted = convert("1", "day", &body).expect("shape");
        assert!(converted.problems.is_empty(), "{:?}", converted.problems);
        assert_eq!(
            samples(&converted, "meta_recurring_notifications_tokens")[0].1,
            -4.0
        );
        assert_eq!(samples(&converted, "meta_page_new_metric")[0].1, -0.5);
    }

    /// Found by `page_conversion_never_panics_and_emits_only_publishable_samples`: `key=""`
    /// and a row without `key` were two samples that Prometheus reads as one series.
    #[test]
    fn an_empty_label_value_is_left_out_as_prometheus_would() {
        let body = json!({"data": [{"name": "page_messages_sent", "period": "day", "values": [
            {"value": 1, "end_time": "1"},
            {"value": {"": 2}, "end_time": "2"},
            {"value": 3, "end_time": "1", "message_type": ""},
            {"value": 4, "end_time": "1", "message_type": "text"}
        ]}]});
        let converted = convert("1", "day", &body).expect("shape");
        assert_eq!(
            samples(&converted, "meta_page_messages_sent"),
            vec![
                (l(&[("page_id", "1"), ("period", "day")]), 2.0),
                (
                    l(&[
                        ("page_id", "1"),
                        ("period", "day"),
                        ("message_type", "text")
                    ]),
                    4.0
                ),
            ]
        );
        assert!(converted.problems.is_empty());
    }

    #[test]
    fn a_row_whose_breakdowns_would_repeat_a_label_name_is_a_problem() {
        let body = json!({"data": [{"name": "m", "period": "day", "values": [
            {"value": 1, "end_time": "1", "period": "x", "breakdown_period": "y"},
            {"value": 2, "end_time": "1", "message_type": "text"}
        ]}]});
        let converted = convert("1", "day", &body).expect("shape");
        assert_eq!(converted.problems.len(), 1);
        assert_eq!(converted.problems[0].reason, "duplicate_label_name");
        assert_eq!(
            samples(&converted, "meta_m"),
            vec![(
                l(&[
                    ("page_id", "1"),
                    ("period", "day"),
                    ("message_type", "text")
                ]),
                2.0
            )]
        );
    }

    #[test]
    fn a_body_without_data_is_a_shape_error() {
        assert!(convert("1", "day", &json!({"foo": 1})).is_err());
        assert!(convert("1", "day", &json!([1, 2])).is_err());
    }
}

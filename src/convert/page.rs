//! Page messaging insights (`GET /{page-id}/insights`) to gauges.
//!
//! Each `data` entry is one metric; each of its `values` rows is one point in time, and rows
//! of a broken-down request carry their breakdown values as extra keys beside `value`. A
//! gauge is `meta_` + the metric name with labels `page_id`, `period` and each breakdown key
//! verbatim; for every label set the row with the latest `end_time` wins. An object value
//! (`{"US": 10, "FR": 3}`, sent by some older metrics) is a map whose keys become the `key`
//! label.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{label_value, parse_number, parse_time, Converted, ShapeError, ValueProblem};
use crate::catalog;
use crate::exposition::{is_valid_name, Family, Sample};

/// Labels the exporter sets itself; a breakdown key with one of these names is renamed
/// `breakdown_<name>` rather than overwriting it.
const RESERVED_LABELS: &[&str] = &["page_id", "period", "key"];

/// Converts one Page insights response. `requested_period` labels entries that omit `period`.
pub fn convert(
    page_id: &str,
    requested_period: &str,
    body: &Value,
) -> Result<Converted, ShapeError> {
    let entries = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| ShapeError("Page insights body has no `data` array".into()))?;
    let mut converted = Converted::default();
    for entry in entries {
        convert_entry(page_id, requested_period, entry, &mut converted);
    }
    Ok(converted)
}

fn convert_entry(page_id: &str, requested_period: &str, entry: &Value, out: &mut Converted) {
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

    // Latest end_time per label set; equal times keep the later row.
    let mut latest: BTreeMap<Vec<(String, String)>, (i64, f64)> = BTreeMap::new();
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
        let Some(labels) = breakdown_labels(page_id, period, name, row, out) else {
            continue;
        };
        let value = row.get("value").unwrap_or(&Value::Null);
        let mut points: Vec<(Vec<(String, String)>, f64)> = Vec::new();
        if let Value::Object(map) = value {
            for (key, inner) in map {
                match parse_number(inner) {
                    Ok(number) => {
                        let mut keyed = labels.clone();
                        keyed.push(("key".to_owned(), key.clone()));
                        points.push((keyed, number));
                    }
                    Err(reason) => {
                        out.problems
                            .push(problem(name, reason, &format!("value for key {key:?}")))
                    }
                }
            }
        } else {
            match parse_number(value) {
                Ok(number) => points.push((labels, number)),
                Err(reason) => out.problems.push(problem(name, reason, "value")),
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
            .map(|(labels, (_, value))| Sample { labels, value })
            .collect(),
    });
}

/// `page_id`, `period`, then every breakdown key of the row, sorted.
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
        let label = if RESERVED_LABELS.contains(&key.as_str()) {
            format!("breakdown_{key}")
        } else {
            key.clone()
        };
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
    use serde_json::json;

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
    fn a_body_without_data_is_a_shape_error() {
        assert!(convert("1", "day", &json!({"foo": 1})).is_err());
        assert!(convert("1", "day", &json!([1, 2])).is_err());
    }
}

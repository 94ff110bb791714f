//! Message templates: the template list (`GET /{waba}/message_templates`) to an info metric,
//! and template analytics (`GET /{waba}/template_analytics`) to per-template gauges.
//!
//! Template analytics are cut in **UTC** days, unlike the account's other analytics. The value
//! is the last complete UTC day, never the current one; a template asked for but absent from
//! that day sent nothing, so its counts are 0, and a button or cost type the template had on
//! another day of the answer is 0 too. A cost per delivered message or per click on a day with
//! none is not 0 but undefined, so it is left out. Read and click counts keep growing for 7
//! days after sending; the value is Meta's count so far.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{
    list_entries, misaligned_problem, point_bucket, text_field, wanted_bucket, Bucket, Wanted,
};
use crate::convert::{label_value, parse_non_negative, Converted, ShapeError, ValueProblem};
use crate::exposition::{Family, Sample};

const DAY: i64 = 86_400;

/// One template of the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateInfo {
    /// Template id.
    pub id: String,
    /// Template name.
    pub name: String,
    /// Language code, e.g. `en_US`.
    pub language: String,
    /// `MARKETING`, `UTILITY`, `AUTHENTICATION`.
    pub category: String,
    /// `APPROVED`, `PENDING`, `REJECTED`, `PAUSED`, `DISABLED`, ...
    pub status: String,
}

/// Reads one page of the template list.
pub fn parse_templates(page: &Value) -> Result<(Vec<TemplateInfo>, Vec<ValueProblem>), ShapeError> {
    let mut problems = Vec::new();
    let entries = list_entries(page, "message_templates", &mut problems)?;
    let mut templates = Vec::with_capacity(entries.len());
    for (id, entry) in entries {
        let text = |key: &str| text_field(entry, key);
        templates.push(TemplateInfo {
            id,
            name: text("name"),
            language: text("language"),
            category: text("category"),
            status: text("status"),
        });
    }
    Ok((templates, problems))
}

/// `meta_whatsapp_template_info`: one series per listed template.
pub fn info_family(waba_id: &str, templates: &[TemplateInfo]) -> Family {
    // A template listed twice (pages shifting while they are read) is exported once.
    let mut seen = BTreeSet::new();
    let samples = templates
        .iter()
        .filter(|template| seen.insert(template.id.as_str()))
        .map(|template| {
            let mut labels = vec![
                ("waba_id".to_owned(), waba_id.to_owned()),
                ("template_id".to_owned(), template.id.clone()),
                ("template_name".to_owned(), template.name.clone()),
                ("language".to_owned(), template.language.clone()),
                ("category".to_owned(), template.category.clone()),
                ("status".to_owned(), template.status.clone()),
            ];
            labels.retain(|(_, value)| !value.is_empty());
            Sample { labels, value: 1.0 }
        })
        .collect();
    Family {
        name: "meta_whatsapp_template_info".to_owned(),
        help: "Always 1: a message template of the WhatsApp Business Account with its name, language, category and status, for joining names onto template_id (`* on(waba_id, template_id) group_left(template_name)`). From the template list, read at most hourly in the background.".to_owned(),
        samples,
    }
}

/// What a template analytics poll asked for.
#[derive(Debug, Clone, Copy)]
pub struct TemplateSelection<'a> {
    /// WABA id.
    pub waba_id: &'a str,
    /// The template ids asked for.
    pub template_ids: &'a [String],
    /// The metric types asked for (`SENT`, `DELIVERED`, `READ`, `CLICKED`, `COST`).
    pub metrics: &'a [String],
    /// The account's currency.
    pub currency: Option<&'a str>,
}

/// One template's numbers in the wanted day.
#[derive(Debug, Default)]
struct Day {
    counts: [f64; 3],
    unreadable: [bool; 3],
    /// (button type, button content) to clicks.
    clicks: BTreeMap<(String, String), f64>,
    /// Cost type to value.
    costs: BTreeMap<String, f64>,
}

/// Counts in `Day::counts`, with their metric type and family.
const COUNTS: [(&str, &str, &str); 3] = [
    ("SENT", "sent", "meta_whatsapp_template_sent"),
    ("DELIVERED", "delivered", "meta_whatsapp_template_delivered"),
    ("READ", "read", "meta_whatsapp_template_read"),
];

/// Converts the bodies of one poll's `template_analytics` calls as of `now`.
pub fn convert(
    selection: TemplateSelection<'_>,
    now: i64,
    pages: &[Value],
) -> Result<Converted, ShapeError> {
    let mut converted = Converted::default();
    // Each id once, in the order asked: an id listed twice would be two series with one label
    // set, which Prometheus rejects with the whole scrape.
    let mut seen = BTreeSet::new();
    let template_ids: Vec<&String> = selection
        .template_ids
        .iter()
        .filter(|id| seen.insert(id.as_str()))
        .collect();
    let mut points: Vec<(Bucket, String, &Value)> = Vec::new();
    for page in pages {
        let data = match page.get("data") {
            None | Some(Value::Null) => continue,
            Some(Value::Array(data)) => data,
            Some(_) => return Err(ShapeError("template_analytics.data is not an array".into())),
        };
        for entry in data {
            let entry_points = match entry.get("data_points") {
                None | Some(Value::Null) => continue,
                Some(Value::Array(entry_points)) => entry_points,
                Some(_) => {
                    return Err(ShapeError(
                        "template_analytics.data[].data_points is not an array".into(),
                    ))
                }
            };
            for point in entry_points {
                let Some(bucket) = point_bucket(point, &mut converted.problems) else {
                    continue;
                };
                let Some(id) = point.get("template_id").and_then(label_value) else {
                    converted.problems.push(ValueProblem {
                        reason: "missing_id",
                        detail: "a template analytics data point without template_id".into(),
                    });
                    continue;
                };
                points.push((bucket, id, point));
            }
        }
    }

    let buckets: Vec<Bucket> = points.iter().map(|(bucket, _, _)| *bucket).collect();
    let wanted = match wanted_bucket(utc_day, now, &buckets) {
        Wanted::Aligned(bucket) => Some(bucket),
        Wanted::Misaligned { misaligned, latest } => {
            converted.problems.push(misaligned_problem(
                format!("WABA {}: template analytics", selection.waba_id),
                "UTC days",
                &misaligned,
                latest,
            ));
            latest
        }
    };

    // Buttons and cost types a template had on any day of the answer are 0 on a quiet day.
    let mut buttons: BTreeMap<&str, BTreeSet<(String, String)>> = BTreeMap::new();
    let mut cost_types: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut days: BTreeMap<&str, Day> = BTreeMap::new();
    for (bucket, id, point) in &points {
        let clicks = clicks(point, &mut converted.problems);
        let costs = costs(point, &mut converted.problems);
        buttons
            .entry(id)
            .or_default()
            .extend(clicks.keys().cloned());
        cost_types
            .entry(id)
            .or_default()
            .extend(costs.keys().cloned());
        if Some(*bucket) != wanted {
            continue;
        }
        let day = days.entry(id).or_default();
        for (index, (_, key, _)) in COUNTS.iter().enumerate() {
            match point.get(*key).map_or(Ok(0.0), parse_non_negative) {
                Ok(value) => day.counts[index] += value,
                Err(reason) => {
                    day.unreadable[index] = true;
                    converted.problems.push(ValueProblem {
                        reason,
                        detail: format!(
                            "{key} of template {id} on the day starting {}",
                            bucket.start
                        ),
                    });
                }
            }
        }
        for (button, count) in clicks {
            *day.clicks.entry(button).or_default() += count;
        }
        for (kind, value) in costs {
            day.costs.insert(kind, value);
        }
    }

    let asked = |metric: &str| selection.metrics.iter().any(|m| m == metric);
    let base = |id: &str| {
        vec![
            ("waba_id".to_owned(), selection.waba_id.to_owned()),
            ("template_id".to_owned(), id.to_owned()),
        ]
    };
    let empty = Day::default();
    let day_of = |id: &str| days.get(id).unwrap_or(&empty);
    let known = wanted.is_some();
    for (index, (metric, key, name)) in COUNTS.iter().enumerate() {
        if !asked(metric) {
            continue;
        }
        let samples = template_ids
            .iter()
            .filter(|_| known)
            .filter(|id| !day_of(id).unreadable[index])
            .map(|id| Sample {
                labels: base(id),
                value: day_of(id).counts[index],
            })
            .collect();
        converted.families.push(Family {
            name: (*name).to_owned(),
            help: format!("WhatsApp messages of the template {key} in the last complete UTC day (count; 0 for a template without any). Read counts keep growing for 7 days after sending. Graph API template analytics; from a background poll, not fetched at scrape time."),
            samples,
        });
    }
    if asked("CLICKED") {
        let mut samples = Vec::new();
        for id in template_ids.iter().filter(|_| known) {
            for button in buttons.get(id.as_str()).into_iter().flatten() {
                let mut labels = base(id);
                labels.push(("button_type".to_owned(), button.0.clone()));
                labels.push(("button_content".to_owned(), button.1.clone()));
                let value = day_of(id).clicks.get(button).copied().unwrap_or(0.0);
                samples.push(Sample { labels, value });
            }
        }
        converted.families.push(Family {
            name: "meta_whatsapp_template_clicked".to_owned(),
            help: "Clicks on a button of the template (by button type and text) in the last complete UTC day (count). Click counts keep growing for 7 days after sending. Graph API template analytics; from a background poll, not fetched at scrape time.".to_owned(),
            samples,
        });
    }
    if asked("COST") {
        let mut samples = Vec::new();
        for id in template_ids.iter().filter(|_| known) {
            for kind in cost_types.get(id.as_str()).into_iter().flatten() {
                let value = match day_of(id).costs.get(kind) {
                    Some(value) => *value,
                    // Nothing spent on a quiet day; a cost per delivery or click is undefined.
                    None if kind == "amount_spent" => 0.0,
                    None => continue,
                };
                let mut labels = base(id);
                labels.push(("cost_type".to_owned(), kind.clone()));
                if let Some(currency) = selection.currency {
                    labels.push(("currency".to_owned(), currency.to_owned()));
                }
                samples.push(Sample { labels, value });
            }
        }
        converted.families.push(Family {
            name: "meta_whatsapp_template_cost".to_owned(),
            help: "What the template cost in the last complete UTC day, in the account's currency (label currency), as Meta reports it (an estimate, not an invoice): cost_type amount_spent, cost_per_delivered or cost_per_url_button_click. Absent for accounts billed through a solution partner. From a background poll, not fetched at scrape time.".to_owned(),
            samples,
        });
    }
    converted.families.push(Family {
        name: "meta_whatsapp_template_bucket_end_timestamp_seconds".to_owned(),
        help: "End of the UTC day the meta_whatsapp_template_* values cover (unix seconds)."
            .to_owned(),
        samples: wanted
            .map(|bucket| Sample {
                labels: vec![("waba_id".to_owned(), selection.waba_id.to_owned())],
                value: bucket.end as f64,
            })
            .into_iter()
            .collect(),
    });
    Ok(converted)
}

/// The UTC day containing `time`.
fn utc_day(time: i64) -> Bucket {
    let start = time.div_euclid(DAY) * DAY;
    Bucket {
        start,
        end: start + DAY,
    }
}

/// `clicked` of a point: (button type, content) to count.
fn clicks(point: &Value, problems: &mut Vec<ValueProblem>) -> BTreeMap<(String, String), f64> {
    let mut clicks = BTreeMap::new();
    for click in point
        .get("clicked")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let kind = click.get("type").and_then(label_value).unwrap_or_default();
        let content = click
            .get("button_content")
            .and_then(label_value)
            .unwrap_or_default();
        match click.get("count").map_or(Err("null"), parse_non_negative) {
            Ok(count) => *clicks.entry((kind, content)).or_default() += count,
            Err(reason) => problems.push(ValueProblem {
                reason,
                detail: format!("click count of button {content:?}"),
            }),
        }
    }
    clicks
}

/// `cost` of a point: cost type to value.
fn costs(point: &Value, problems: &mut Vec<ValueProblem>) -> BTreeMap<String, f64> {
    let mut costs = BTreeMap::new();
    for cost in point
        .get("cost")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(kind) = cost.get("type").and_then(label_value) else {
            continue;
        };
        match cost.get("value").map_or(Err("null"), parse_non_negative) {
            Ok(value) => {
                costs.insert(kind, value);
            }
            Err(reason) => problems.push(ValueProblem {
                reason,
                detail: format!("template cost {kind}"),
            }),
        }
    }
    costs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// 2024-06-12 01:00 UTC.
    const NOW: i64 = 1_718_150_400 + 3600;
    const A: &str = super::super::meta_examples::TEMPLATE_IDS[0];
    const B: &str = super::super::meta_examples::TEMPLATE_IDS[1];

    /// Meta's example.
    fn example() -> Value {
        super::super::meta_examples::template_analytics()
    }

    fn selection<'a>(
        ids: &'a [String],
        metrics: &'a [String],
        currency: Option<&'a str>,
    ) -> TemplateSelection<'a> {
        TemplateSelection {
            waba_id: "W",
            template_ids: ids,
            metrics,
            currency,
        }
    }

    fn all() -> Vec<String> {
        ["SENT", "DELIVERED", "READ", "CLICKED", "COST"]
            .map(String::from)
            .to_vec()
    }

    fn value(converted: &Converted, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let family = converted.families.iter().find(|f| f.name == family)?;
        family
            .samples
            .iter()
            .find(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.contains(&((*k).to_owned(), (*v).to_owned())))
            })
            .map(|s| s.value)
    }

    #[test]
    fn metas_example_gives_its_counts_clicks_and_cost() {
        let ids = vec![A.to_owned(), B.to_owned()];
        let metrics = all();
        let selection = selection(&ids, &metrics, Some("USD"));
        let converted = convert(selection, NOW, &[example()]).expect("shape");
        assert!(converted.problems.is_empty(), "{:?}", converted.problems);
        for id in [A, B] {
            for family in [
                "meta_whatsapp_template_sent",
                "meta_whatsapp_template_delivered",
                "meta_whatsapp_template_read",
            ] {
                assert_eq!(value(&converted, family, &[("template_id", id)]), Some(1.0));
            }
        }
        let clicked = |content: &str| {
            value(
                &converted,
                "meta_whatsapp_template_clicked",
                &[("template_id", B), ("button_content", content)],
            )
        };
        assert_eq!(clicked("Contact Support"), Some(108.0));
        assert_eq!(clicked("Tell me more"), Some(16.0));
        let spent = |id: &str| {
            value(
                &converted,
                "meta_whatsapp_template_cost",
                &[
                    ("template_id", id),
                    ("cost_type", "amount_spent"),
                    ("currency", "USD"),
                ],
            )
        };
        assert_eq!(spent(A), Some(0.01));
        assert_eq!(spent(B), Some(0.03));
        assert_eq!(
            value(
                &converted,
                "meta_whatsapp_template_bucket_end_timestamp_seconds",
                &[]
            ),
            Some(1_718_150_400.0)
        );
    }

    #[test]
    fn a_quiet_template_is_zero_the_partial_day_is_not_the_value_and_undefined_ratios_are_left_out()
    {
        let ids = vec![A.to_owned(), B.to_owned(), "999".to_owned()];
        let metrics = all();
        let selection = selection(&ids, &metrics, None);
        // A day later: the example's day is two days back, the 12th is complete and quiet, the
        // 13th under way with traffic that must not be the value.
        let partial = json!({"data": [{"data_points": [
            {"template_id": A, "start": 1_718_236_800, "end": 1_718_323_200, "sent": 5, "delivered": 5, "read": 2}
        ]}]});
        let converted = convert(selection, NOW + DAY, &[example(), partial]).expect("shape");
        for id in [A, B, "999"] {
            assert_eq!(
                value(
                    &converted,
                    "meta_whatsapp_template_sent",
                    &[("template_id", id)]
                ),
                Some(0.0),
                "{id}"
            );
        }
        assert_eq!(
            value(
                &converted,
                "meta_whatsapp_template_clicked",
                &[("template_id", B), ("button_content", "Contact Support")]
            ),
            Some(0.0)
        );
        assert_eq!(
            value(
                &converted,
                "meta_whatsapp_template_cost",
                &[("template_id", A), ("cost_type", "amount_spent")]
            ),
            Some(0.0)
        );
        assert_eq!(
            value(
                &converted,
                "meta_whatsapp_template_cost",
                &[("template_id", A), ("cost_type", "cost_per_delivered")]
            ),
            None
        );
    }

    #[test]
    fn only_the_metric_types_asked_for_are_families() {
        let ids = vec![A.to_owned()];
        let metrics = vec!["SENT".to_owned(), "READ".to_owned()];
        let selection = selection(&ids, &metrics, None);
        let converted = convert(selection, NOW, &[example()]).expect("shape");
        let names: Vec<&str> = converted.families.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "meta_whatsapp_template_sent",
                "meta_whatsapp_template_read",
                "meta_whatsapp_template_bucket_end_timestamp_seconds"
            ]
        );
    }

    #[test]
    fn bad_values_are_problems_and_bad_shapes_errors() {
        let ids = vec![A.to_owned()];
        let metrics = all();
        let selection = selection(&ids, &metrics, None);
        let body = json!({"data": [{"data_points": [
            {"template_id": A, "start": 1_718_064_000, "end": 1_718_150_400, "sent": "NaN", "delivered": 1, "read": -1}
        ]}]});
        let converted = convert(selection, NOW, &[body]).expect("shape");
        assert_eq!(value(&converted, "meta_whatsapp_template_sent", &[]), None);
        assert_eq!(
            value(&converted, "meta_whatsapp_template_delivered", &[]),
            Some(1.0)
        );
        let reasons: Vec<&str> = converted.problems.iter().map(|p| p.reason).collect();
        assert_eq!(reasons, ["not_finite", "negative"]);
        assert!(convert(selection, NOW, &[json!({"data": {}})]).is_err());
        // UTC-shifted days (Pacific midnights) are off the calendar: the API's latest is used.
        let pacific = json!({"data": [{"data_points": [
            {"template_id": A, "start": 1_718_089_200, "end": 1_718_175_600, "sent": 4}
        ]}]});
        let converted = convert(selection, NOW + DAY, &[pacific]).expect("shape");
        assert_eq!(
            value(&converted, "meta_whatsapp_template_sent", &[]),
            Some(4.0)
        );
        assert_eq!(converted.problems[0].reason, "bucket_misaligned");
    }

    #[test]
    fn the_list_gives_the_info_family() {
        let page = json!({"data": [
            {"id": "1", "name": "order_update", "language": "en_US", "category": "UTILITY", "status": "APPROVED"},
            {"name": "no id"}
        ], "paging": {}});
        let (templates, problems) = parse_templates(&page).expect("shape");
        assert_eq!(templates.len(), 1);
        assert_eq!(problems[0].reason, "missing_id");
        let family = info_family("W", &templates);
        assert!(family.samples[0]
            .labels
            .contains(&("template_name".to_owned(), "order_update".to_owned())));
        assert!(parse_templates(&json!({})).is_err());
    }
}

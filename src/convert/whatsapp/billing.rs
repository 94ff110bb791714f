//! `pricing_analytics` and `conversation_analytics` of a WABA node read, to gauges.
//!
//! Both answer `{"data": [{"data_points": [...]}]}` with one point per bucket and dimension
//! combination that had traffic, each carrying its count (`volume` or `conversation`), its
//! `cost` where Meta has one, and a key per requested dimension. The rules are `analytics`'
//! (see the parent module): the value is the most recent complete bucket, on Meta's Pacific
//! calendar, never the partial one; a combination seen anywhere in the answer but not in that
//! bucket is 0 in it, since the API leaves quiet combinations out.
//!
//! Costs are exported as Meta reports them, per combination: no pricing category or type is
//! taken to cost nothing (`SERVICE` messages, billed under category `SERVICE`, are charged
//! from 2026-10-01 per Meta's announcement, while its analytics page still calls them free),
//! and both are open sets, exported under whatever name Meta sends. Costs are absent, not
//! zero, for accounts billed through a solution partner; [`Cost`] says what the answer showed,
//! so the poller can record that state instead of exporting zeros.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{misaligned_problem, point_bucket, wanted_bucket, Bucket, Wanted};
use crate::config::{BillingAnalytics, BillingField};
use crate::convert::{label_value, parse_non_negative, Converted, ShapeError, ValueProblem};
use crate::exposition::{Family, Sample};

/// The billing field being converted and the account it belongs to.
#[derive(Debug, Clone, Copy)]
pub struct BillingSelection<'a> {
    /// WABA id.
    pub waba_id: &'a str,
    /// The field's settings (which field, granularity, dimensions).
    pub analytics: &'a BillingAnalytics,
    /// The account's currency, from its `currency` field.
    pub currency: Option<&'a str>,
}

/// What an answer showed about costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// Some point carried a cost.
    Reported,
    /// Points with traffic carried none: the account has no costs (partner-billed).
    Missing,
    /// Nothing to tell by: no point had traffic.
    NoTraffic,
}

/// A combination's dimension labels, in the configured dimensions' order.
type Combination = Vec<(String, String)>;

/// Counts and costs of one combination in the wanted bucket.
#[derive(Debug, Default)]
struct Totals {
    count: f64,
    cost: f64,
    /// A value in the bucket could not be used: no sample rather than a wrong one.
    unreadable_count: bool,
    unreadable_cost: bool,
}

/// Names and HELP texts of one field's families.
struct Names {
    count: &'static str,
    count_help: &'static str,
    cost: &'static str,
    cost_help: &'static str,
    bucket_end: &'static str,
    bucket_end_help: &'static str,
    /// The key of the count in a data point.
    count_key: &'static str,
}

fn names(field: BillingField) -> Names {
    match field {
        BillingField::Pricing => Names {
            count: "meta_whatsapp_pricing_volume",
            count_help: "WhatsApp messages delivered in the most recent complete pricing_analytics bucket of the granularity in the label, per dimension combination, with pricing_category and pricing_type as Meta names them (count; a combination the API omits from the bucket counts 0). Graph API WABA pricing analytics; from a background poll, not fetched at scrape time.",
            cost: "meta_whatsapp_pricing_cost",
            cost_help: "Cost of the WhatsApp messages delivered in the most recent complete pricing_analytics bucket, per dimension combination, in the account's currency (label currency), as Meta reports it (an estimate, not an invoice); any pricing category or type may carry a cost. Absent for accounts billed through a solution partner. From a background poll, not fetched at scrape time.",
            bucket_end: "meta_whatsapp_pricing_bucket_end_timestamp_seconds",
            bucket_end_help: "End of the pricing_analytics bucket the meta_whatsapp_pricing_volume and _cost values cover (unix seconds).",
            count_key: "volume",
        },
        BillingField::Conversations => Names {
            count: "meta_whatsapp_conversations",
            count_help: "WhatsApp conversations in the most recent complete conversation_analytics bucket of the granularity in the label, per dimension combination, with conversation_category and conversation_type as Meta names them (count; a combination the API omits from the bucket counts 0). Graph API WABA conversation analytics; from a background poll, not fetched at scrape time.",
            cost: "meta_whatsapp_conversation_cost",
            cost_help: "Cost of the WhatsApp conversations in the most recent complete conversation_analytics bucket, per dimension combination, in the account's currency (label currency), as Meta reports it (an estimate, not an invoice); any conversation category or type may carry a cost. Absent for accounts billed through a solution partner. From a background poll, not fetched at scrape time.",
            bucket_end: "meta_whatsapp_conversations_bucket_end_timestamp_seconds",
            bucket_end_help: "End of the conversation_analytics bucket the meta_whatsapp_conversations and _conversation_cost values cover (unix seconds).",
            count_key: "conversation",
        },
    }
}

/// Converts the field's value (`field`, absent or null for an account without traffic) as of
/// `now` (unix seconds). Always returns the field's three families, possibly without samples.
pub fn convert(
    selection: BillingSelection<'_>,
    now: i64,
    field: Option<&Value>,
) -> Result<(Converted, Cost), ShapeError> {
    let billing = selection.analytics;
    let names = names(billing.field);
    let field_name = billing.field.field_name();
    let points = data_points(field, field_name)?;
    let mut converted = Converted::default();

    // Every point with readable bounds, its combination, and whether any carried a cost.
    let mut bounded: Vec<(Bucket, Combination, &Value)> = Vec::with_capacity(points.len());
    for point in &points {
        if let Some(bucket) = point_bucket(point, &mut converted.problems) {
            bounded.push((bucket, combination(billing, point), point));
        }
    }
    let cost = cost_seen(&bounded, names.count_key);

    let buckets: Vec<Bucket> = bounded.iter().map(|(bucket, _, _)| *bucket).collect();
    let calendar = billing.granularity.calendar();
    let wanted = match wanted_bucket(|t| super::bucket_containing(calendar, t), now, &buckets) {
        Wanted::Aligned(bucket) => Some(bucket),
        Wanted::Misaligned { misaligned, latest } => {
            converted.problems.push(misaligned_problem(
                format!(
                    "WABA {}: {field_name} {}",
                    selection.waba_id,
                    billing.granularity.as_str()
                ),
                "Meta's Pacific-time calendar",
                &misaligned,
                latest,
            ));
            latest
        }
    };

    // Every combination seen anywhere starts at 0; the wanted bucket's points fill them in.
    let mut totals: BTreeMap<Combination, Totals> = BTreeMap::new();
    if let Some(wanted) = wanted {
        for (bucket, combination, point) in &bounded {
            let entry = totals.entry(combination.clone()).or_default();
            if *bucket != wanted {
                continue;
            }
            add(
                &mut entry.count,
                &mut entry.unreadable_count,
                point.get(names.count_key),
                names.count_key,
                bucket.start,
                &mut converted.problems,
            );
            if let Some(value) = point.get("cost") {
                add(
                    &mut entry.cost,
                    &mut entry.unreadable_cost,
                    Some(value),
                    "cost",
                    bucket.start,
                    &mut converted.problems,
                );
            }
        }
    }

    let base = vec![
        ("waba_id".to_owned(), selection.waba_id.to_owned()),
        (
            "granularity".to_owned(),
            billing.granularity.as_str().to_owned(),
        ),
    ];
    let mut counts = Vec::new();
    let mut costs = Vec::new();
    for (combination, total) in &totals {
        let mut labels = base.clone();
        labels.extend(combination.iter().cloned());
        if !total.unreadable_count {
            counts.push(Sample {
                labels: labels.clone(),
                value: total.count,
            });
        }
        if cost == Cost::Reported && !total.unreadable_cost {
            if let Some(currency) = selection.currency {
                labels.push(("currency".to_owned(), currency.to_owned()));
            }
            costs.push(Sample {
                labels,
                value: total.cost,
            });
        }
    }
    let bucket_end = wanted
        .map(|bucket| Sample {
            labels: base.clone(),
            value: bucket.end as f64,
        })
        .into_iter()
        .collect();
    converted
        .families
        .push(family(names.count, names.count_help, counts));
    converted
        .families
        .push(family(names.cost, names.cost_help, costs));
    converted
        .families
        .push(family(names.bucket_end, names.bucket_end_help, bucket_end));
    Ok((converted, cost))
}

fn family(name: &str, help: &str, samples: Vec<Sample>) -> Family {
    Family {
        name: name.to_owned(),
        help: help.to_owned(),
        samples,
    }
}

/// Every data point of every `data` entry.
fn data_points<'a>(
    field: Option<&'a Value>,
    field_name: &str,
) -> Result<Vec<&'a Value>, ShapeError> {
    let Some(field) = field.filter(|value| !value.is_null()) else {
        return Ok(Vec::new());
    };
    let data = match field.get("data") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(data)) => data,
        Some(_) => return Err(ShapeError(format!("{field_name}.data is not an array"))),
    };
    let mut points = Vec::new();
    for entry in data {
        match entry.get("data_points") {
            None | Some(Value::Null) => {}
            Some(Value::Array(entry_points)) => points.extend(entry_points),
            Some(_) => {
                return Err(ShapeError(format!(
                    "{field_name}.data[].data_points is not an array"
                )))
            }
        }
    }
    Ok(points)
}

/// The point's value for each requested dimension; a dimension the point does not carry (the
/// tier, which Meta leaves out on points not of type REGULAR) is left out, as Prometheus reads
/// an empty label as none.
fn combination(billing: &BillingAnalytics, point: &Value) -> Combination {
    let mut combination: Combination = Vec::with_capacity(billing.dimensions.len());
    for dimension in &billing.dimensions {
        let key = billing.field.label_of(dimension);
        let Some(value) = point.get(key.as_str()).and_then(label_value) else {
            continue;
        };
        let label = exported_label(key);
        if !value.is_empty() && !combination.iter().any(|(name, _)| *name == label) {
            combination.push((label, value));
        }
    }
    combination
}

/// The label a dimension is exported under: its key, unless that would clash with a label the
/// family always has or is not a Prometheus label name (an undocumented dimension the config
/// lets through, such as one starting with a digit); then `dimension_<key>`.
fn exported_label(key: String) -> String {
    let clashes = matches!(key.as_str(), "waba_id" | "granularity" | "currency");
    let starts_with_letter = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    if clashes || !starts_with_letter {
        format!("dimension_{key}")
    } else {
        key
    }
}

/// Whether the points carried costs.
fn cost_seen(points: &[(Bucket, Combination, &Value)], count_key: &str) -> Cost {
    if points
        .iter()
        .any(|(_, _, point)| point.get("cost").is_some_and(|c| !c.is_null()))
    {
        return Cost::Reported;
    }
    let traffic = points.iter().any(|(_, _, point)| {
        point
            .get(count_key)
            .and_then(|count| parse_non_negative(count).ok())
            .is_some_and(|count| count > 0.0)
    });
    if traffic {
        Cost::Missing
    } else {
        Cost::NoTraffic
    }
}

/// Adds a point's value to a total; a point without the key adds nothing (no such traffic).
fn add(
    total: &mut f64,
    unreadable: &mut bool,
    value: Option<&Value>,
    key: &str,
    start: i64,
    problems: &mut Vec<ValueProblem>,
) {
    match value.map_or(Ok(0.0), parse_non_negative) {
        Ok(number) => *total += number,
        Err(reason) => {
            *unreadable = true;
            problems.push(ValueProblem {
                reason,
                detail: format!("{key} of the data point starting {start}"),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BillingGranularity;
    use serde_json::json;

    /// 2025-06-02 10:00 PDT: the last complete Pacific day is 2025-06-01.
    const JUNE_2: i64 = 1_748_847_600 + 10 * 3600;
    /// 2025-06-06 10:00 PDT.
    const JUNE_6: i64 = 1_749_193_200 + 10 * 3600;

    fn pricing(dimensions: &[&str]) -> BillingAnalytics {
        BillingAnalytics {
            field: BillingField::Pricing,
            granularity: BillingGranularity::Daily,
            dimensions: dimensions.iter().map(|d| (*d).to_owned()).collect(),
            filters: Vec::new(),
        }
    }

    /// Meta's example.
    fn example() -> Value {
        super::super::meta_examples::pricing_analytics()
    }

    /// `(labels without waba_id/granularity/currency, value)` of a family.
    fn values(family: &Family) -> BTreeMap<String, f64> {
        family
            .samples
            .iter()
            .map(|sample| {
                let key: Vec<String> = sample
                    .labels
                    .iter()
                    .filter(|(name, _)| {
                        !matches!(name.as_str(), "waba_id" | "granularity" | "currency")
                    })
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect();
                (key.join(","), sample.value)
            })
            .collect()
    }

    fn run(analytics: &BillingAnalytics, now: i64, field: &Value) -> (Converted, Cost) {
        let selection = BillingSelection {
            waba_id: "W",
            analytics,
            currency: Some("USD"),
        };
        convert(selection, now, Some(field)).expect("shape")
    }

    #[test]
    fn metas_example_gives_its_volumes_and_costs_and_the_quiet_combination_is_zero() {
        let analytics = pricing(&["PRICING_CATEGORY", "PRICING_TYPE", "TIER", "COUNTRY"]);
        let (converted, cost) = run(&analytics, JUNE_2, &example());
        assert_eq!(cost, Cost::Reported);
        assert!(converted.problems.is_empty(), "{:?}", converted.problems);
        let volume = values(&converted.families[0]);
        let money = values(&converted.families[1]);
        let key = "pricing_category=MARKETING,pricing_type=REGULAR,tier=0:MAX,country=US";
        assert_eq!((volume[key], money[key]), (4.0, 40.0));
        let key = "pricing_category=SERVICE,pricing_type=FREE_CUSTOMER_SERVICE,country=US";
        assert_eq!((volume[key], money[key]), (2.0, 0.0));
        let key = "pricing_category=AUTHENTICATION,pricing_type=REGULAR,tier=0:2,country=US";
        assert_eq!((volume[key], money[key]), (1.0, 10.0));
        let india = "pricing_category=AUTHENTICATION_INTERNATIONAL,pricing_type=REGULAR,tier=0:750000,country=IN";
        assert_eq!((volume[india], money[india]), (0.0, 0.0));
        assert_eq!(volume.len(), 7);
        assert_eq!(converted.families[2].samples[0].value, 1_748_847_600.0);
        let labels = &converted.families[1].samples[0].labels;
        assert!(labels.contains(&("currency".to_owned(), "USD".to_owned())));

        // On June 6 the Indian point is the one in the last complete day; the US six are 0.
        let (converted, _) = run(&analytics, JUNE_6, &example());
        let volume = values(&converted.families[0]);
        let money = values(&converted.families[1]);
        assert_eq!((volume[india], money[india]), (2.0, 4.6));
        let us_total: f64 = volume
            .iter()
            .filter(|(k, _)| k.contains("US"))
            .map(|(_, v)| v)
            .sum();
        assert_eq!(us_total, 0.0);
    }

    /// graph-api.md 7.7's plausible day after 2026-10-01: service messages billed as
    /// SERVICE/REGULAR, and a pricing type Meta has not named before. Each cost comes out as
    /// Meta reports it, whatever the category or type, and no HELP calls anything free.
    #[test]
    fn costs_are_exported_as_meta_reports_them_for_every_category_and_type() {
        // 2026-12-02 00:00 PST to 2026-12-03 00:00 PST, read at noon on the 3rd.
        let (start, end) = (1_796_198_400, 1_796_284_800);
        let point = |category: &str, kind: &str, volume: i64, cost: f64| {
            json!({"start": start, "end": end, "country": "BR", "pricing_category": category,
                "pricing_type": kind, "volume": volume, "cost": cost})
        };
        let field = json!({"data": [{"data_points": [
            point("SERVICE", "REGULAR", 1840, 12.51),
            point("SERVICE", "FREE_ENTRY_POINT", 22, 0.0),
            point("SERVICE", "FREE_CUSTOMER_SERVICE", 5, 0.04),
            point("BUSINESS_AGENT", "PER_TOKEN", 3, 0.3),
        ]}]});
        let analytics = pricing(&["PRICING_CATEGORY", "PRICING_TYPE", "COUNTRY"]);
        let (converted, cost) = run(&analytics, end + 12 * 3600, &field);
        assert_eq!(cost, Cost::Reported);
        assert!(converted.problems.is_empty(), "{:?}", converted.problems);
        let volume = values(&converted.families[0]);
        let money = values(&converted.families[1]);
        for (key, expected) in [
            (
                "pricing_category=SERVICE,pricing_type=REGULAR,country=BR",
                (1840.0, 12.51),
            ),
            (
                "pricing_category=SERVICE,pricing_type=FREE_ENTRY_POINT,country=BR",
                (22.0, 0.0),
            ),
            (
                "pricing_category=SERVICE,pricing_type=FREE_CUSTOMER_SERVICE,country=BR",
                (5.0, 0.04),
            ),
            (
                "pricing_category=BUSINESS_AGENT,pricing_type=PER_TOKEN,country=BR",
                (3.0, 0.3),
            ),
        ] {
            assert_eq!((volume[key], money[key]), expected, "{key}");
        }
        for field in [BillingField::Pricing, BillingField::Conversations] {
            let names = names(field);
            for help in [names.count_help, names.cost_help, names.bucket_end_help] {
                assert!(!help.to_lowercase().contains("free"), "{help}");
            }
            assert!(names.cost_help.contains("as Meta reports it"));
        }
    }

    #[test]
    fn a_partner_billed_answer_has_volume_and_no_cost_family_samples() {
        let analytics = pricing(&["COUNTRY"]);
        let field = json!({"data": [{"data_points": [
            {"start": 1_748_761_200, "end": 1_748_847_600, "country": "US", "volume": 5}
        ]}]});
        let (converted, cost) = run(&analytics, JUNE_2, &field);
        assert_eq!(cost, Cost::Missing);
        assert_eq!(values(&converted.families[0])["country=US"], 5.0);
        assert!(converted.families[1].samples.is_empty());
        let (_, cost) = run(&analytics, JUNE_2, &json!({"data": []}));
        assert_eq!(cost, Cost::NoTraffic);
        let selection = BillingSelection {
            waba_id: "W",
            analytics: &analytics,
            currency: None,
        };
        let (converted, cost) = convert(selection, JUNE_2, None).expect("no traffic");
        assert_eq!(cost, Cost::NoTraffic);
        assert!(converted.families[0].samples.is_empty());
        // With no points at all the bucket is still known: nothing happened in it.
        assert_eq!(converted.families[2].samples[0].value, 1_748_847_600.0);
    }

    #[test]
    fn the_partial_bucket_is_not_the_value_and_only_requested_dimensions_are_labels() {
        let analytics = pricing(&["COUNTRY"]);
        let field = json!({"data": [{"data_points": [
            {"start": 1_748_761_200, "end": 1_748_847_600, "country": "US", "volume": 3, "cost": 0.3, "phone_number": "1555"},
            {"start": 1_748_847_600, "end": 1_748_934_000, "country": "US", "volume": 9, "cost": 0.9}
        ]}]});
        let (converted, _) = run(&analytics, JUNE_2, &field);
        assert_eq!(
            values(&converted.families[0]),
            BTreeMap::from([("country=US".to_owned(), 3.0)])
        );
        assert_eq!(values(&converted.families[1])["country=US"], 0.3);
    }

    #[test]
    fn conversations_read_their_count_key_and_labels() {
        let analytics = BillingAnalytics {
            field: BillingField::Conversations,
            granularity: BillingGranularity::Daily,
            dimensions: vec!["CONVERSATION_TYPE".into(), "CONVERSATION_DIRECTION".into()],
            filters: Vec::new(),
        };
        let field = json!({"data": [{"data_points": [
            {"start": 1_748_761_200, "end": 1_748_847_600, "conversation": 7, "conversation_type": "REGULAR", "conversation_direction": "BUSINESS_INITIATED"}
        ]}]});
        let (converted, cost) = run(&analytics, JUNE_2, &field);
        assert_eq!(cost, Cost::Missing);
        assert_eq!(converted.families[0].name, "meta_whatsapp_conversations");
        assert_eq!(
            values(&converted.families[0]),
            BTreeMap::from([(
                "conversation_type=REGULAR,conversation_direction=BUSINESS_INITIATED".to_owned(),
                7.0
            )])
        );
        assert_eq!(
            converted.families[2].name,
            "meta_whatsapp_conversations_bucket_end_timestamp_seconds"
        );
    }

    #[test]
    fn misaligned_buckets_give_the_latest_complete_one_and_a_problem() {
        let analytics = pricing(&["COUNTRY"]);
        // UTC midnights of 2025-06-01 and 06-02.
        let field = json!({"data": [{"data_points": [
            {"start": 1_748_736_000, "end": 1_748_822_400, "country": "US", "volume": 6, "cost": 1},
            {"start": 1_748_822_400, "end": 1_748_908_800, "country": "US", "volume": 2, "cost": 1}
        ]}]});
        let (converted, _) = run(&analytics, JUNE_2, &field);
        assert_eq!(values(&converted.families[0])["country=US"], 6.0);
        assert_eq!(converted.problems[0].reason, "bucket_misaligned");
        assert_eq!(converted.families[2].samples[0].value, 1_748_822_400.0);
    }

    #[test]
    fn a_dimension_that_would_clash_with_a_fixed_label_or_is_no_label_name_is_prefixed() {
        let analytics = pricing(&["CURRENCY", "2FA", "COUNTRY", "COUNTRY"]);
        let field = json!({"data": [{"data_points": [
            {"start": 1_748_761_200, "end": 1_748_847_600, "currency": "EUR", "2fa": "yes", "country": "US", "volume": 1, "cost": 1}
        ]}]});
        let (converted, _) = run(&analytics, JUNE_2, &field);
        let labels: Vec<&str> = converted.families[1].samples[0]
            .labels
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        assert_eq!(
            labels,
            [
                "waba_id",
                "granularity",
                "dimension_currency",
                "dimension_2fa",
                "country",
                "currency"
            ]
        );
    }

    #[test]
    fn an_unusable_value_exports_nothing_for_it_and_a_bad_shape_is_an_error() {
        let analytics = pricing(&["COUNTRY"]);
        let field = json!({"data": [{"data_points": [
            {"start": 1_748_761_200, "end": 1_748_847_600, "country": "US", "volume": "-1", "cost": 1},
            {"start": 1_748_761_200, "end": 1_748_847_600, "country": "BR", "volume": 2, "cost": "NaN"}
        ]}]});
        let (converted, _) = run(&analytics, JUNE_2, &field);
        assert_eq!(
            values(&converted.families[0]),
            BTreeMap::from([("country=BR".to_owned(), 2.0)])
        );
        assert_eq!(
            values(&converted.families[1]),
            BTreeMap::from([("country=US".to_owned(), 1.0)])
        );
        let reasons: Vec<&str> = converted.problems.iter().map(|p| p.reason).collect();
        assert_eq!(reasons, ["negative", "not_finite"]);
        let selection = BillingSelection {
            waba_id: "W",
            analytics: &analytics,
            currency: None,
        };
        assert!(convert(selection, JUNE_2, Some(&json!({"data": 3}))).is_err());
        assert!(convert(
            selection,
            JUNE_2,
            Some(&json!({"data": [{"data_points": {}}]}))
        )
        .is_err());
    }
}

//! What a WhatsApp Business Account pays: the `pricing_analytics` and `conversation_analytics`
//! fields of `GET /{version}/{waba-id}`, and the account's `currency`.
//!
//! Owns the traffic model behind both fields and the meaning of their modifiers. An account's
//! traffic is a fixed set of series, one per combination of phone number (the two of
//! [`waba::account_phone_numbers`]), country (US, IN, BR) and billing class: for
//! `pricing_analytics` (per-message billing, since 2025-07) MARKETING, UTILITY and
//! AUTHENTICATION messages of pricing type REGULAR, UTILITY messages inside a customer-service
//! window (FREE_CUSTOMER_SERVICE, at cost 0) and SERVICE messages (FREE_CUSTOMER_SERVICE at
//! cost 0; for an account set with `set_service_billed`, REGULAR at the utility rate from
//! [`SERVICE_BILLED_FROM`] on, the shape graph-api.md 7.7 expects after Meta's change);
//! for `conversation_analytics` (the older per-conversation billing) conversations by
//! category, type (REGULAR, FREE_TIER, FREE_ENTRY_POINT) and direction. Each series has its
//! own size and rhythm ([`Activity`]), so numbers change slowly and are deterministic for a
//! simulated instant; filters (`phone_numbers`, `country_codes`, `pricing_categories`, ...)
//! select series, and `dimensions` says which of their values are kept on a point, the rest
//! being summed. Cost is volume times a per-category, per-country rate ([`rate`]), zero on
//! types other than REGULAR, in [`CURRENCY`].
//!
//! Buckets follow the `analytics` calendar ([`waba::buckets`]: UTC half hours, Pacific days and
//! months, the bucket containing now partial), but under these fields' names HALF_HOUR,
//! DAILY and MONTHLY. As in the real API, only combinations that had messages in a bucket get a
//! point, and some buckets have none at all.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::faults::GraphError;
use super::fields::{Argument, Field};
use super::generate::{self, Activity, Seed};
use super::http::ReadContext;
use super::waba::{self, Granularity};

/// The currency of every simulated account: the unit of every `cost`.
pub(crate) const CURRENCY: &str = "USD";
/// The share of buckets in which the account sent nothing at all.
const QUIET_BUCKETS: f64 = 0.1;
/// The share of buckets in which one series (one combination) had no messages.
const QUIET_SERIES: f64 = 0.2;
/// The countries of an account's traffic, with their share of it relative to the first.
const COUNTRIES: [(&str, f64); 3] = [("US", 1.0), ("IN", 0.7), ("BR", 0.4)];
/// The traffic of the account's two phone numbers, relative to the first.
const PHONE_WEIGHTS: [f64; 2] = [1.0, 0.45];

/// 2026-10-01 00:00 in Los Angeles: from this Pacific day on, Meta charges service messages
/// per message ("Upcoming pricing updates for Meta Business Agent, service, and utility
/// messages"). An account set with `set_service_billed` bills its SERVICE messages from here.
pub(crate) const SERVICE_BILLED_FROM: i64 = 1_790_838_000;

/// The error for COST asked of an account billed through a solution partner.
pub(crate) fn cost_not_available() -> GraphError {
    GraphError::invalid_parameter(
        "Cost not available for this WhatsApp Business Account: it is billed through a \
         solution partner",
    )
}

/// The price (in [`CURRENCY`]) of one billable message of `category` delivered in `country`,
/// after Meta's rate cards; for conversations, of one conversation. 0 for categories that are
/// never billed.
pub(crate) fn rate(category: &str, country: &str) -> f64 {
    match (category, country) {
        ("MARKETING", "US") => 0.025,
        ("MARKETING", "IN") => 0.0107,
        ("MARKETING", _) => 0.0625,
        ("UTILITY", "US") => 0.004,
        ("UTILITY", "IN") => 0.0014,
        ("UTILITY", _) => 0.008,
        ("AUTHENTICATION", "US") => 0.0135,
        ("AUTHENTICATION", "IN") => 0.0014,
        ("AUTHENTICATION", _) => 0.0315,
        // Service conversations as they were charged before November 2024.
        ("SERVICE", "US") => 0.0088,
        ("SERVICE", "IN") => 0.004,
        ("SERVICE", _) => 0.03,
        _ => 0.0,
    }
}

/// The volume tier of billable messages of `category`, `LOWER:UPPER` as Meta writes it.
fn tier(category: &str) -> &'static str {
    match category {
        "MARKETING" => "0:MAX",
        "AUTHENTICATION" => "0:750000",
        _ => "0:100000",
    }
}

/// One dimension of a breakdown.
#[derive(Debug)]
struct Dimension {
    /// Its name in `dimensions(..)`.
    name: &'static str,
    /// The modifier that filters on it, if any.
    filter: Option<&'static str>,
    /// Its key on a data point.
    key: &'static str,
}

const COUNTRY: Dimension = Dimension {
    name: "COUNTRY",
    filter: Some("country_codes"),
    key: "country",
};
const PHONE: Dimension = Dimension {
    name: "PHONE",
    filter: Some("phone_numbers"),
    key: "phone_number",
};

/// What distinguishes the two fields.
#[derive(Debug)]
struct Kind {
    field: &'static str,
    /// The dimensions, in the order of a series' values.
    dimensions: [Dimension; 5],
    /// The metric type that counts (VOLUME or CONVERSATION) and its key on a point.
    count: (&'static str, &'static str),
    /// Whether COST is reported without `metric_types`.
    cost_by_default: bool,
}

static PRICING: Kind = Kind {
    field: "pricing_analytics",
    dimensions: [
        COUNTRY,
        PHONE,
        Dimension {
            name: "PRICING_CATEGORY",
            filter: Some("pricing_categories"),
            key: "pricing_category",
        },
        Dimension {
            name: "PRICING_TYPE",
            filter: Some("pricing_types"),
            key: "pricing_type",
        },
        Dimension {
            name: "TIER",
            filter: None,
            key: "tier",
        },
    ],
    count: ("VOLUME", "volume"),
    cost_by_default: true,
};

static CONVERSATIONS: Kind = Kind {
    field: "conversation_analytics",
    dimensions: [
        COUNTRY,
        PHONE,
        Dimension {
            name: "CONVERSATION_CATEGORY",
            filter: Some("conversation_categories"),
            key: "conversation_category",
        },
        Dimension {
            name: "CONVERSATION_TYPE",
            filter: Some("conversation_types"),
            key: "conversation_type",
        },
        Dimension {
            name: "CONVERSATION_DIRECTION",
            filter: Some("conversation_directions"),
            key: "conversation_direction",
        },
    ],
    count: ("CONVERSATION", "conversation"),
    cost_by_default: false,
};

/// The billing classes of `pricing_analytics`: category, pricing type, and messages a day
/// (from the first phone number to US) at the growth epoch.
const PRICING_CLASSES: [(&str, &str, (f64, f64)); 5] = [
    ("MARKETING", "REGULAR", (40.0, 250.0)),
    ("UTILITY", "REGULAR", (60.0, 400.0)),
    ("UTILITY", "FREE_CUSTOMER_SERVICE", (10.0, 60.0)),
    ("AUTHENTICATION", "REGULAR", (30.0, 200.0)),
    ("SERVICE", "FREE_CUSTOMER_SERVICE", (40.0, 250.0)),
];

/// The classes of `conversation_analytics`: category, type, direction and conversations a day.
const CONVERSATION_CLASSES: [(&str, &str, &str, (f64, f64)); 7] = [
    ("MARKETING", "REGULAR", "BUSINESS_INITIATED", (30.0, 200.0)),
    (
        "MARKETING",
        "FREE_ENTRY_POINT",
        "BUSINESS_INITIATED",
        (3.0, 25.0),
    ),
    ("UTILITY", "REGULAR", "BUSINESS_INITIATED", (50.0, 300.0)),
    (
        "AUTHENTICATION",
        "REGULAR",
        "BUSINESS_INITIATED",
        (20.0, 150.0),
    ),
    ("SERVICE", "REGULAR", "USER_INITIATED", (30.0, 200.0)),
    ("SERVICE", "FREE_TIER", "USER_INITIATED", (20.0, 120.0)),
    ("SERVICE", "FREE_ENTRY_POINT", "USER_INITIATED", (5.0, 40.0)),
];

/// Answers the `pricing_analytics` field for the account being read.
pub(crate) fn pricing_analytics(
    context: &ReadContext<'_>,
    field: &Field,
) -> Result<Value, GraphError> {
    let request = BreakdownRequest::parse(&PRICING, field)?;
    // Meta knows no cost for a partner-billed account: volume only, not an error.
    let with_cost = request.metrics.contains("COST") && !context.whatsapp.partner_billed;
    let series = pricing_series(context.object_id, context.whatsapp.service_billed);
    request.answer(&series, context, with_cost)
}

/// Answers the `conversation_analytics` field for the account being read.
pub(crate) fn conversation_analytics(
    context: &ReadContext<'_>,
    field: &Field,
) -> Result<Value, GraphError> {
    let request = BreakdownRequest::parse(&CONVERSATIONS, field)?;
    let with_cost = request.metrics.contains("COST");
    if with_cost && context.whatsapp.partner_billed {
        return Err(cost_not_available());
    }
    request.answer(&conversation_series(context.object_id), context, with_cost)
}

/// One generated series: the traffic of one combination of dimension values.
#[derive(Debug)]
struct Series {
    /// Its value for each of the kind's dimensions; `None` where it has none (the tier of a
    /// point not of type REGULAR), and then the point has no such key.
    values: [Option<String>; 5],
    activity: Activity,
    seed: Seed,
    /// The price of one message or conversation.
    rate: f64,
    /// The buckets it has messages in: those starting in `[from, until)`.
    active: (i64, i64),
}

impl Series {
    /// A series of account `waba` sending `per_day` (before the phone's and the country's
    /// weights) from the phone at `phone` of the account's list to `country`.
    fn new(
        waba: &str,
        kind: &Kind,
        (phone, number): (usize, &str),
        (country, weight): (&str, f64),
        class: &[&str],
        per_day: (f64, f64),
    ) -> Series {
        let mut parts = vec![waba, kind.field, number, country];
        parts.extend_from_slice(class);
        let seed = Seed::of(&parts);
        let scale = weight * PHONE_WEIGHTS.get(phone).copied().unwrap_or(0.3);
        Series {
            values: [None, None, None, None, None],
            activity: Activity::new(seed, (per_day.0 * scale, per_day.1 * scale)),
            seed,
            rate: 0.0,
            active: (i64::MIN, i64::MAX),
        }
    }
}

/// Every series of `pricing_analytics` of account `waba`; with `service_billed`, its SERVICE
/// messages are REGULAR from [`SERVICE_BILLED_FROM`] on.
fn pricing_series(waba: &str, service_billed: bool) -> Vec<Series> {
    let mut all = Vec::new();
    for (phone, number) in waba::account_phone_numbers(waba).iter().enumerate() {
        for country in COUNTRIES {
            for (category, pricing_type, per_day) in PRICING_CLASSES {
                let class = [category, pricing_type];
                let make = || {
                    let mut series =
                        Series::new(waba, &PRICING, (phone, number), country, &class, per_day);
                    series.values = [
                        Some(country.0.to_owned()),
                        Some(number.clone()),
                        Some(category.to_owned()),
                        Some(pricing_type.to_owned()),
                        None,
                    ];
                    series
                };
                let mut series = make();
                if pricing_type == "REGULAR" {
                    series.values[4] = Some(tier(category).to_owned());
                    series.rate = rate(category, country.0);
                }
                if service_billed && category == "SERVICE" {
                    // The same messages (same seed and activity), billed from the change on:
                    // volume goes on as before and a cost appears.
                    series.active.1 = SERVICE_BILLED_FROM;
                    let mut billed = series_billed(make());
                    billed.rate = rate("UTILITY", country.0);
                    all.push(billed);
                }
                all.push(series);
            }
        }
    }
    all
}

/// `series` as a billed (REGULAR) one from [`SERVICE_BILLED_FROM`] on. Meta has not said
/// whether billed service messages get a tier: these get the utility tier, like every other
/// REGULAR point here.
fn series_billed(mut series: Series) -> Series {
    series.values[3] = Some("REGULAR".to_owned());
    series.values[4] = Some(tier("UTILITY").to_owned());
    series.active.0 = SERVICE_BILLED_FROM;
    series
}

/// Every series of `conversation_analytics` of account `waba`.
fn conversation_series(waba: &str) -> Vec<Series> {
    let mut all = Vec::new();
    for (phone, number) in waba::account_phone_numbers(waba).iter().enumerate() {
        for country in COUNTRIES {
            for (category, conversation_type, direction, per_day) in CONVERSATION_CLASSES {
                let class = [category, conversation_type, direction];
                let mut series = Series::new(
                    waba,
                    &CONVERSATIONS,
                    (phone, number),
                    country,
                    &class,
                    per_day,
                );
                series.values = [
                    Some(country.0.to_owned()),
                    Some(number.clone()),
                    Some(category.to_owned()),
                    Some(conversation_type.to_owned()),
                    Some(direction.to_owned()),
                ];
                series.rate = if conversation_type == "REGULAR" {
                    rate(category, country.0)
                } else {
                    0.0
                };
                all.push(series);
            }
        }
    }
    all
}

/// A validated `pricing_analytics` or `conversation_analytics` field.
#[derive(Debug)]
struct BreakdownRequest {
    kind: &'static Kind,
    start: i64,
    end: i64,
    granularity: Granularity,
    /// For each dimension, the values its filter keeps (normalised), if it is filtered.
    filters: [Option<BTreeSet<String>>; 5],
    /// For each dimension, whether `dimensions` asks for it.
    grouped: [bool; 5],
    /// The metric types to report: the count's name and/or COST.
    metrics: BTreeSet<&'static str>,
}

impl BreakdownRequest {
    fn parse(kind: &'static Kind, field: &Field) -> Result<BreakdownRequest, GraphError> {
        let field_name = kind.field;
        let (mut start, mut end, mut granularity) = (None, None, None);
        let mut filters: [Option<BTreeSet<String>>; 5] = Default::default();
        let mut grouped = [false; 5];
        let mut metrics = None;
        for modifier in &field.modifiers {
            let name = modifier.name.as_str();
            let invalid = || {
                GraphError::invalid_parameter(format_args!(
                    "Invalid argument for modifier {name} of field {field_name}"
                ))
            };
            // A single value stands for a list of one, as in `dimensions(COUNTRY)`.
            let items = || match &modifier.argument {
                Argument::List(items) => items.clone(),
                Argument::Scalar(item) => vec![item.clone()],
            };
            let filter = kind
                .dimensions
                .iter()
                .position(|dimension| dimension.filter == Some(name));
            match (name, &modifier.argument) {
                ("start", Argument::Scalar(value)) => {
                    start = Some(waba::timestamp(value).ok_or_else(invalid)?);
                }
                ("end", Argument::Scalar(value)) => {
                    end = Some(waba::timestamp(value).ok_or_else(invalid)?);
                }
                ("granularity", Argument::Scalar(value)) => {
                    granularity = Some(parse_granularity(value).ok_or_else(|| {
                        GraphError::invalid_parameter(
                            "granularity must be one of the following values: HALF_HOUR, \
                             DAILY, MONTHLY",
                        )
                    })?);
                }
                ("start" | "end" | "granularity", Argument::List(_)) => return Err(invalid()),
                ("dimensions", _) => {
                    for item in items() {
                        let position = kind
                            .dimensions
                            .iter()
                            .position(|d| d.name.eq_ignore_ascii_case(item.trim()))
                            .ok_or_else(|| {
                                GraphError::invalid_parameter(format_args!(
                                    "dimensions of {field_name} must be among {}: got {item}",
                                    names(kind.dimensions.iter().map(|d| d.name))
                                ))
                            })?;
                        grouped[position] = true;
                    }
                }
                ("metric_types", _) => {
                    let accepted = [kind.count.0, "COST"];
                    let mut chosen = BTreeSet::new();
                    for item in items() {
                        let metric = accepted
                            .into_iter()
                            .find(|m| m.eq_ignore_ascii_case(item.trim()))
                            .ok_or_else(|| {
                                GraphError::invalid_parameter(format_args!(
                                    "metric_types of {field_name} must be among {}: got {item}",
                                    names(accepted.into_iter())
                                ))
                            })?;
                        chosen.insert(metric);
                    }
                    metrics = Some(chosen).filter(|chosen| !chosen.is_empty());
                }
                (_, _) if filter.is_some() => {
                    let values: BTreeSet<String> =
                        items().iter().map(|item| normalise(item)).collect();
                    // An empty list filters nothing, as in `analytics`.
                    if let Some(position) = filter {
                        filters[position] = Some(values).filter(|values| !values.is_empty());
                    }
                }
                _ => {
                    return Err(GraphError::invalid_parameter(format_args!(
                        "Unknown modifier {name} for field {field_name}"
                    )))
                }
            }
        }
        let required = |name: &str| {
            GraphError::invalid_parameter(format_args!("{field_name} requires the modifier {name}"))
        };
        let start = start.ok_or_else(|| required("start"))?;
        let end = end.ok_or_else(|| required("end"))?;
        let granularity = granularity.ok_or_else(|| required("granularity"))?;
        if start >= end {
            return Err(GraphError::invalid_parameter(format_args!(
                "The start of {field_name} must be before its end"
            )));
        }
        let metrics = metrics.unwrap_or_else(|| {
            let mut defaults = BTreeSet::from([kind.count.0]);
            if kind.cost_by_default {
                defaults.insert("COST");
            }
            defaults
        });
        Ok(BreakdownRequest {
            kind,
            start,
            end,
            granularity,
            filters,
            grouped,
            metrics,
        })
    }

    /// The field's value: `{"data":[{"data_points":[..]}]}` over the series `all`, with cost
    /// on each point if `with_cost`.
    fn answer(
        &self,
        all: &[Series],
        context: &ReadContext<'_>,
        with_cost: bool,
    ) -> Result<Value, GraphError> {
        let selected: Vec<&Series> = all.iter().filter(|s| self.selects(s)).collect();
        let buckets = waba::buckets(
            self.granularity,
            (self.start, self.end),
            context.now,
            context.misaligned,
        )?;
        let quiet =
            Seed::of(&[context.object_id, self.kind.field, "quiet"]).with(self.granularity.name());
        let (count_metric, count_key) = self.kind.count;
        let with_count = self.metrics.contains(count_metric);
        let mut points = Vec::new();
        for (bucket, next) in buckets {
            // Decided by the bucket alone, so a bucket never disappears as now moves on.
            if quiet.with_time(bucket).unit() < QUIET_BUCKETS {
                continue;
            }
            let mut groups: BTreeMap<Vec<Option<&str>>, (i64, f64)> = BTreeMap::new();
            for series in &selected {
                if !(series.active.0..series.active.1).contains(&bucket) {
                    continue;
                }
                let seed = series.seed.with(self.granularity.name()).with_time(bucket);
                if seed.with("quiet").unit() < QUIET_SERIES {
                    continue;
                }
                // Fixed for the bucket, so a partial bucket only grows.
                let noise = seed.with("noise").between(0.7, 1.3);
                let count = generate::count(
                    series.activity.expected(bucket, next.min(context.now)) * noise,
                );
                if count == 0 {
                    continue;
                }
                let key: Vec<Option<&str>> = series
                    .values
                    .iter()
                    .zip(self.grouped)
                    .filter(|(_, grouped)| *grouped)
                    .map(|(value, _)| value.as_deref())
                    .collect();
                let group = groups.entry(key).or_default();
                group.0 += count;
                group.1 += count as f64 * series.rate;
            }
            for (key, (count, cost)) in groups {
                let mut point = Map::new();
                point.insert("start".to_owned(), json!(bucket));
                point.insert("end".to_owned(), json!(next));
                if with_count {
                    point.insert(count_key.to_owned(), json!(count));
                }
                if with_cost {
                    point.insert("cost".to_owned(), json!(generate::round_to(cost, 4)));
                }
                let dimensions = self
                    .kind
                    .dimensions
                    .iter()
                    .zip(self.grouped)
                    .filter(|(_, grouped)| *grouped);
                for ((dimension, _), value) in dimensions.zip(key) {
                    if let Some(value) = value {
                        point.insert(dimension.key.to_owned(), json!(value));
                    }
                }
                points.push(Value::Object(point));
            }
        }
        Ok(json!({ "data": [{ "data_points": points }] }))
    }

    /// Whether the filters keep `series`.
    fn selects(&self, series: &Series) -> bool {
        self.filters
            .iter()
            .zip(&series.values)
            .all(|(filter, value)| match (filter, value) {
                (None, _) => true,
                (Some(kept), Some(value)) => kept.contains(&normalise(value)),
                (Some(_), None) => false,
            })
    }
}

/// The bucket size named by `pricing_analytics` and `conversation_analytics`, in either case.
fn parse_granularity(name: &str) -> Option<Granularity> {
    match name.trim().to_ascii_uppercase().as_str() {
        "HALF_HOUR" => Some(Granularity::HalfHour),
        "DAILY" => Some(Granularity::Day),
        "MONTHLY" => Some(Granularity::Month),
        _ => None,
    }
}

/// A filter value as compared: upper case, phone numbers as digits (`+1 631-555-1234` is
/// `16315551234`), and FREE_ENTRY, an older spelling in Meta's examples, as FREE_ENTRY_POINT.
fn normalise(value: &str) -> String {
    let value = value.trim();
    if value.starts_with('+')
        || value
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b' ' || b == b'-')
    {
        return value.chars().filter(char::is_ascii_digit).collect();
    }
    match value.to_ascii_uppercase().as_str() {
        "FREE_ENTRY" => "FREE_ENTRY_POINT".to_owned(),
        other => other.to_owned(),
    }
}

/// `A, B, C`.
fn names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar;
    use crate::simulator::fields;
    use crate::simulator::http::with_settings;
    use crate::simulator::WhatsAppSettings;

    /// 2024-06-15 19:17 UTC, 12:17 in Los Angeles.
    const NOW: i64 = 1_718_479_020;
    const HOUR: i64 = 3600;
    const DIMENSIONS: &str = r#"dimensions(["PRICING_CATEGORY","PRICING_TYPE","COUNTRY","PHONE"])"#;

    fn read_with(
        expression: &str,
        now: i64,
        settings: &WhatsAppSettings,
    ) -> Result<Value, GraphError> {
        let field = fields::parse(expression)
            .expect("valid expression")
            .remove(0);
        with_settings("waba-77", "", now, settings, |context| {
            match field.name.as_str() {
                "pricing_analytics" => pricing_analytics(context, &field),
                _ => conversation_analytics(context, &field),
            }
        })
    }

    fn points_with(expression: &str, now: i64, settings: &WhatsAppSettings) -> Vec<Value> {
        let body = read_with(expression, now, settings)
            .unwrap_or_else(|error| panic!("{expression}: {error:?}"));
        body["data"][0]["data_points"]
            .as_array()
            .expect("data points")
            .clone()
    }

    fn points(expression: &str, now: i64) -> Vec<Value> {
        points_with(expression, now, &WhatsAppSettings::default())
    }

    fn pricing(range: (i64, i64), granularity: &str, rest: &str) -> String {
        format!(
            "pricing_analytics.start({}).end({}).granularity({granularity}){rest}",
            range.0, range.1
        )
    }

    fn number(point: &Value, key: &str) -> i64 {
        point[key]
            .as_i64()
            .unwrap_or_else(|| panic!("{key} in {point}"))
    }

    /// The keys of a point other than start and end, sorted.
    fn keys(point: &Value) -> Vec<&str> {
        let mut keys: Vec<&str> = point
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .filter(|key| !matches!(*key, "start" | "end"))
            .collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn daily_buckets_are_pacific_days_and_some_are_missing() {
        let range = (NOW - 60 * 24 * HOUR, NOW + 24 * HOUR);
        let days = points(&pricing(range, "DAILY", ""), NOW);
        let starts: BTreeSet<i64> = days.iter().map(|p| number(p, "start")).collect();
        assert_eq!(
            starts.len(),
            days.len(),
            "without dimensions a bucket is one total"
        );
        for point in &days {
            let (start, end) = (number(point, "start"), number(point, "end"));
            assert_eq!(
                start,
                calendar::day_start(start),
                "{start} is not a Pacific midnight"
            );
            assert_eq!(end, calendar::day_start(start + 25 * HOUR));
            assert!(start <= NOW && number(point, "volume") > 0);
            assert!(point["cost"].as_f64().is_some_and(|cost| cost > 0.0));
        }
        assert!(
            (48..61).contains(&starts.len()),
            "{} of 61 days have traffic",
            starts.len()
        );
        let halves = points(
            &pricing(
                (NOW - 24 * HOUR, NOW),
                "HALF_HOUR",
                &format!(".{DIMENSIONS}"),
            ),
            NOW,
        );
        for point in &halves {
            let start = number(point, "start");
            assert_eq!((start % 1800, number(point, "end") - start), (0, 1800));
        }
        let combinations = 2 * 3 * PRICING_CLASSES.len();
        let per_bucket = halves.len() as f64 / 49.0;
        assert!(
            per_bucket < 0.9 * combinations as f64,
            "quiet combinations are left out: {per_bucket} a bucket"
        );
        let months = points(&pricing((1_704_096_000, NOW), "MONTHLY", ""), NOW);
        for point in &months {
            let date = calendar::pacific_date(number(point, "start"));
            assert_eq!(date.format("%d").to_string(), "01");
        }
    }

    #[test]
    fn the_current_bucket_is_partial_and_grows() {
        // Find a day with traffic, then watch it from its morning to long after it closed.
        let expression = |day: i64| pricing((day, day + 24 * HOUR), "DAILY", "");
        let later = NOW + 40 * 24 * HOUR;
        let day = (0..20)
            .map(|days| calendar::day_start(NOW) - days * 24 * HOUR)
            .find(|&day| points(&expression(day), later).len() == 1)
            .expect("some day has traffic");
        let expression = expression(day);
        let (morning, noon, closed) = (
            points(&expression, day + 8 * HOUR),
            points(&expression, day + 12 * HOUR),
            points(&expression, later),
        );
        assert_eq!(noon.len(), 1, "the partial bucket is reported");
        assert_eq!(
            (number(&noon[0], "start"), number(&noon[0], "end")),
            (number(&closed[0], "start"), number(&closed[0], "end")),
            "bounds are the whole bucket's"
        );
        let volume = |points: &[Value]| points.first().map_or(0, |p| number(p, "volume"));
        assert!(
            volume(&morning) <= volume(&noon) && volume(&noon) < volume(&closed),
            "{morning:?} {noon:?} {closed:?}"
        );
        assert!(
            points(&expression, day - 1).is_empty(),
            "nothing before the bucket starts"
        );
    }

    #[test]
    fn dimensions_appear_only_as_requested_and_tier_only_on_regular_points() {
        let range = (NOW - 7 * 24 * HOUR, NOW);
        let bare = points(
            &pricing(
                range,
                "DAILY",
                ".dimensions(PRICING_CATEGORY,PRICING_TYPE,TIER)",
            ),
            NOW,
        );
        let quoted = points(
            &pricing(
                range,
                "DAILY",
                r#".dimensions(["PRICING_CATEGORY","PRICING_TYPE","TIER"])"#,
            ),
            NOW,
        );
        assert_eq!(bare, quoted);
        let mut seen = BTreeSet::new();
        for point in &bare {
            let category = point["pricing_category"].as_str().expect("a category");
            let pricing_type = point["pricing_type"].as_str().expect("a type");
            seen.insert((category, pricing_type));
            if pricing_type == "REGULAR" {
                assert_eq!(
                    keys(point),
                    ["cost", "pricing_category", "pricing_type", "tier", "volume"]
                );
                if category == "MARKETING" {
                    assert_eq!(point["tier"], "0:MAX");
                }
            } else {
                assert_eq!(
                    keys(point),
                    ["cost", "pricing_category", "pricing_type", "volume"]
                );
                assert_eq!(
                    point["cost"].as_f64(),
                    Some(0.0),
                    "the model charges only REGULAR messages"
                );
            }
            if category == "SERVICE" {
                assert_eq!(pricing_type, "FREE_CUSTOMER_SERVICE");
            }
        }
        assert!(
            seen.contains(&("UTILITY", "FREE_CUSTOMER_SERVICE")),
            "{seen:?}"
        );
        assert_eq!(seen.len(), PRICING_CLASSES.len());
        let without_tier = points(&pricing(range, "DAILY", &format!(".{DIMENSIONS}")), NOW);
        for point in &without_tier {
            assert_eq!(
                keys(point),
                [
                    "cost",
                    "country",
                    "phone_number",
                    "pricing_category",
                    "pricing_type",
                    "volume"
                ]
            );
        }
        // Splitting by dimensions redistributes the same volume.
        let total = |points: &[Value]| points.iter().map(|p| number(p, "volume")).sum::<i64>();
        assert_eq!(
            total(&without_tier),
            total(&points(&pricing(range, "DAILY", ""), NOW))
        );
    }

    #[test]
    fn filters_restrict_the_combinations() {
        let range = (NOW - 14 * 24 * HOUR, NOW);
        let phones = waba::account_phone_numbers("waba-77");
        let filtered = points(
            &pricing(
                range,
                "DAILY",
                &format!(
                    r#".{DIMENSIONS}.country_codes(["IN"]).pricing_categories([MARKETING,SERVICE]).phone_numbers(["{}"])"#,
                    phones[1]
                ),
            ),
            NOW,
        );
        assert!(!filtered.is_empty());
        for point in &filtered {
            assert_eq!(
                (point["country"].as_str(), point["phone_number"].as_str()),
                (Some("IN"), Some(phones[1].as_str()))
            );
            assert!(
                matches!(
                    point["pricing_category"].as_str(),
                    Some("MARKETING" | "SERVICE")
                ),
                "{point}"
            );
        }
        let in_window = points(
            &pricing(
                range,
                "DAILY",
                ".pricing_types(FREE_CUSTOMER_SERVICE).dimensions(PRICING_CATEGORY)",
            ),
            NOW,
        );
        assert!(in_window.iter().all(|p| p["cost"].as_f64() == Some(0.0)));
        let marketing_us = points(
            &pricing(
                range,
                "DAILY",
                ".country_codes(US).pricing_categories(MARKETING)",
            ),
            NOW,
        );
        for point in &marketing_us {
            let expected = generate::round_to(number(point, "volume") as f64 * 0.025, 4);
            assert_eq!(point["cost"].as_f64(), Some(expected));
        }
        let volume_only = points(&pricing(range, "DAILY", ".metric_types([VOLUME])"), NOW);
        assert!(volume_only.iter().all(|p| keys(p) == ["volume"]));
    }

    #[test]
    fn billed_service_messages_are_regular_with_a_cost_from_the_change_on() {
        let billed = WhatsAppSettings {
            service_billed: true,
            ..WhatsAppSettings::default()
        };
        // Four Pacific days around the change, read a week later.
        let range = (
            SERVICE_BILLED_FROM - 2 * 24 * HOUR,
            SERVICE_BILLED_FROM + 2 * 24 * HOUR,
        );
        let now = SERVICE_BILLED_FROM + 9 * 24 * HOUR;
        let query = pricing(
            range,
            "DAILY",
            r#".pricing_categories(["SERVICE"]).dimensions(["PRICING_CATEGORY","PRICING_TYPE"])"#,
        );
        let service = points_with(&query, now, &billed);
        let before: Vec<&Value> = service
            .iter()
            .filter(|p| number(p, "start") < SERVICE_BILLED_FROM)
            .collect();
        let after: Vec<&Value> = service
            .iter()
            .filter(|p| number(p, "start") >= SERVICE_BILLED_FROM)
            .collect();
        assert!(!before.is_empty() && !after.is_empty(), "{service:?}");
        for point in &before {
            assert_eq!(point["pricing_type"], "FREE_CUSTOMER_SERVICE");
            assert_eq!(point["cost"].as_f64(), Some(0.0));
        }
        for point in &after {
            assert_eq!(point["pricing_type"], "REGULAR");
            assert!(
                point["cost"].as_f64().is_some_and(|cost| cost > 0.0),
                "{point}"
            );
        }
        // The same messages as without the setting, day by day: only their billing changed.
        let volumes = |points: &[Value]| -> Vec<(i64, i64)> {
            points
                .iter()
                .map(|p| (number(p, "start"), number(p, "volume")))
                .collect()
        };
        let unbilled = points(&query, now);
        assert!(unbilled
            .iter()
            .all(|p| p["pricing_type"] == "FREE_CUSTOMER_SERVICE"));
        assert_eq!(volumes(&service), volumes(&unbilled));
    }

    #[test]
    fn partner_billed_accounts_have_no_pricing_cost_and_no_conversation_cost() {
        let partner = WhatsAppSettings {
            partner_billed: true,
            ..WhatsAppSettings::default()
        };
        let range = (NOW - 7 * 24 * HOUR, NOW);
        let points = points_with(
            &pricing(range, "DAILY", &format!(".{DIMENSIONS}")),
            NOW,
            &partner,
        );
        assert!(!points.is_empty());
        assert!(points
            .iter()
            .all(|p| p.get("cost").is_none() && p["volume"].is_i64()));
        let conversations = format!(
            r#"conversation_analytics.start({}).end({}).granularity(DAILY).metric_types(["CONVERSATION","COST"])"#,
            range.0, range.1
        );
        let error =
            read_with(&conversations, NOW, &partner).expect_err("cost of a partner-billed account");
        assert_eq!(
            (error.status, error.code, error.message.as_str()),
            (400, 100, "(#100) Cost not available for this WhatsApp Business Account: it is billed through a solution partner")
        );
        let counted = conversations.replace(r#","COST""#, "");
        assert!(!points_with(&counted, NOW, &partner).is_empty());
    }

    #[test]
    fn conversations_carry_cost_only_when_asked() {
        let range = format!(
            "conversation_analytics.start({}).end({NOW}).granularity(DAILY)",
            NOW - 10 * 24 * HOUR
        );
        let plain = points(&range, NOW);
        assert!(!plain.is_empty());
        assert!(plain.iter().all(|p| keys(p) == ["conversation"]));
        let all = r#".dimensions(["CONVERSATION_CATEGORY","CONVERSATION_TYPE","CONVERSATION_DIRECTION","COUNTRY","PHONE"])"#;
        let costed = points(
            &format!(r#"{range}.metric_types(["CONVERSATION","COST"]){all}"#),
            NOW,
        );
        let mut types = BTreeSet::new();
        for point in &costed {
            assert_eq!(
                keys(point),
                [
                    "conversation",
                    "conversation_category",
                    "conversation_direction",
                    "conversation_type",
                    "cost",
                    "country",
                    "phone_number"
                ]
            );
            let conversation_type = point["conversation_type"].as_str().expect("a type");
            types.insert(conversation_type.to_owned());
            if conversation_type != "REGULAR" {
                assert_eq!(point["cost"].as_f64(), Some(0.0));
            }
            if point["conversation_category"] == "SERVICE" {
                assert_eq!(point["conversation_direction"], "USER_INITIATED");
            }
        }
        assert_eq!(
            types,
            BTreeSet::from([
                "FREE_ENTRY_POINT".to_owned(),
                "FREE_TIER".to_owned(),
                "REGULAR".to_owned()
            ])
        );
        let directions = points(
            &format!("{range}.conversation_directions([USER_INITIATED]).conversation_types([FREE_ENTRY]).dimensions(CONVERSATION_DIRECTION,CONVERSATION_TYPE)"),
            NOW,
        );
        assert!(!directions.is_empty());
        assert!(directions
            .iter()
            .all(|p| p["conversation_direction"] == "USER_INITIATED"
                && p["conversation_type"] == "FREE_ENTRY_POINT"));
    }

    #[test]
    fn invalid_billing_fields_are_code_100() {
        let range = |g: &str| {
            format!("pricing_analytics.start(1718000000).end(1718400000).granularity({g})")
        };
        for expression in [
            range("DAY"),
            range("MONTH"),
            format!("{}.dimensions(COLOUR)", range("DAILY")),
            format!("{}.metric_types(CONVERSATION)", range("DAILY")),
            format!("{}.colour(red)", range("DAILY")),
            "pricing_analytics.start(1718000000).granularity(DAILY)".to_owned(),
            "pricing_analytics.start(1718400000).end(1718000000).granularity(DAILY)".to_owned(),
            "conversation_analytics.start(1718000000).end(1718400000).granularity(DAILY).metric_types(VOLUME)".to_owned(),
            "conversation_analytics.start(1718000000).end(1718400000).granularity(DAILY).pricing_types(REGULAR)".to_owned(),
        ] {
            let error = read_with(&expression, NOW, &WhatsAppSettings::default()).expect_err(&expression);
            assert_eq!(error.code, 100, "{expression}");
        }
        let error = read_with(&range("DAY"), NOW, &WhatsAppSettings::default()).expect_err("DAY");
        assert!(
            error.message.contains("HALF_HOUR, DAILY, MONTHLY"),
            "{}",
            error.message
        );
    }

    #[test]
    fn answers_are_stable_for_the_same_time() {
        let expression = pricing(
            (NOW - 3 * 24 * HOUR, NOW),
            "HALF_HOUR",
            &format!(".{DIMENSIONS}"),
        );
        assert_eq!(points(&expression, NOW), points(&expression, NOW));
    }
}

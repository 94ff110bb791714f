//! Property tests: no response body, however malformed, makes a converter panic, and whatever a
//! converter emits can be published as it is.
//!
//! Bodies come from generators biased toward the shapes Meta sends (`data`/`values`/`end_time`
//! rows with breakdown keys, `analytics.data_points` buckets, insights rows with decimal
//! strings), with any part swapped for arbitrary JSON, and from arbitrary bytes fed through
//! the same decoding the Graph client uses. `PROPTEST_CASES` sets the number of cases (256 by
//! default); CI runs these with many more.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{FixedOffset, TimeZone};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Number, Value};

use super::whatsapp::{self, bucket_containing, last_complete_bucket, Selection};
use super::{campaign, page, parse_non_negative, parse_number, parse_time, Converted};
use crate::config::{CampaignDates, Granularity};
use crate::exposition::proptests::parse_strict;
use crate::exposition::{encode, is_valid_name};
use crate::graph::transport::decode;
use crate::proptest_support::{any_text, config, regex};

/// 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z: the times the exporter can meet.
const YEAR_2000: i64 = 946_684_800;
const YEAR_2100: i64 = 4_102_444_800;

/// Number spellings Meta sends, and the near misses a lenient reader must still reject.
const NUMBERISH: &[&str] = &[
    "",
    " ",
    "0",
    "-0",
    "42",
    " 7 ",
    "-3",
    "79.419238",
    "1e3",
    "1E-5",
    "+5",
    ".5",
    "5.",
    "NaN",
    "nan",
    "-NaN",
    "Infinity",
    "-Infinity",
    "inf",
    "+inf",
    "1e999",
    "-1e999",
    "1e-999",
    "1.7976931348623157e308",
    "1.8e308",
    "99999999999999999999999999999",
    "0x10",
    "1_000",
    "1,000",
    "12abc",
    "١٢",
    "null",
    "true",
];

/// Keys that appear in the three response shapes, plus near misses.
const KEYS: &[&str] = &[
    "data",
    "values",
    "value",
    "end_time",
    "name",
    "period",
    "title",
    "id",
    "paging",
    "error",
    "analytics",
    "data_points",
    "start",
    "end",
    "sent",
    "delivered",
    "granularity",
    "date_start",
    "date_stop",
    "marketing_messages_spend",
    "marketing_messages_delivered",
];

/// Breakdown keys: real ones, ones that collide with the exporter's own labels, and invalid
/// label names.
const BREAKDOWN_KEYS: &[&str] = &[
    "messaging_channel",
    "message_type",
    "campaign_id",
    "recurring_notifications_topic",
    "page_id",
    "period",
    "key",
    "breakdown_page_id",
    "breakdown_period",
    "breakdown_key",
    "__name__",
    "__x",
    "9x",
    "a-b",
    "",
    "ünï",
];

/// Metric names: documented, undocumented, and not valid Prometheus names.
const METRIC_NAMES: &[&str] = &[
    "page_messages_sent",
    "page_messages_new_conversations_unique",
    "recurring_notifications_tokens",
    "page_messages_paid_order_earnings",
    "page_fans_country",
    "m",
    "",
    "9x",
    "a-b",
    "a b",
    "ünï",
];

const CAMPAIGN_FIELDS: &[&str] = &[
    "marketing_messages_spend",
    "marketing_messages_delivered",
    "marketing_messages_read_rate",
    "marketing_messages_cost_per_delivered",
    "marketing_messages_future_field",
];

fn numberish_string() -> impl Strategy<Value = String> {
    prop_oneof![
        select(NUMBERISH).prop_map(str::to_owned),
        any::<f64>().prop_map(|x| x.to_string()),
        any::<f64>().prop_map(|x| format!("{x:e}")),
        any::<i64>().prop_map(|x| x.to_string()),
        regex("[-+]?[0-9]{0,40}(\\.[0-9]{0,20})?([eE][-+]?[0-9]{1,4})?"),
    ]
}

/// A number as JSON, including values that need the lenient reader: integers beyond `i64`,
/// fractions, and non-finite floats (which `serde_json` turns into null).
fn json_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (-1_000i64..1_000).prop_map(Value::from),
    ]
}

/// Unix seconds (JSON or string), ISO 8601 in the two spellings Meta uses, and junk.
fn time_value() -> BoxedStrategy<Value> {
    let iso = (YEAR_2000..YEAR_2100, -12i32..=14).prop_map(|(seconds, hours)| {
        let offset = FixedOffset::east_opt(hours * 3600).expect("offset within a day");
        let time = offset.timestamp_opt(seconds, 0).single().expect("in range");
        time.format("%Y-%m-%dT%H:%M:%S%z").to_string()
    });
    prop_oneof![
        3 => (YEAR_2000..YEAR_2100).prop_map(Value::from),
        3 => (YEAR_2000..YEAR_2100).prop_map(|t| Value::String(t.to_string())),
        3 => iso.prop_map(Value::String),
        1 => (YEAR_2000..YEAR_2100).prop_map(|t| {
            let time = chrono::DateTime::from_timestamp(t, 0).expect("in range");
            Value::String(time.to_rfc3339())
        }),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<i64>().prop_map(|t| Value::String(t.to_string())),
        1 => regex("[+-]?[0-9]{4,6}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}([+-][0-9]{4}|Z)?")
            .prop_map(Value::String),
        1 => leaf(),
    ]
    .boxed()
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_number(),
        numberish_string().prop_map(Value::String),
        any_text().prop_map(Value::String),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(KEYS).prop_map(str::to_owned),
        1 => select(BREAKDOWN_KEYS).prop_map(str::to_owned),
        1 => regex("[a-z_]{1,12}"),
        1 => any_text(),
    ]
}

/// Any JSON value, up to a few levels deep.
fn json() -> impl Strategy<Value = Value> {
    // Built here, not in the closure: proptest calls the closure again for every case.
    let key = key().boxed();
    leaf().prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6).prop_map(object),
        ]
    })
}

fn object(pairs: Vec<(String, Value)>) -> Value {
    Value::Object(pairs.into_iter().collect::<Map<_, _>>())
}

/// `{"data": [...]}`, the envelope of insights answers.
fn data(items: Vec<Value>) -> Value {
    object_with(vec![("data", Some(Value::Array(items)))], Vec::new())
}

/// Inserts the present values; `None` leaves the key out, as Meta does with empty fields.
fn object_with(pairs: Vec<(&str, Option<Value>)>, extra: Vec<(String, Value)>) -> Value {
    let mut map: Map<String, Value> = extra.into_iter().collect();
    for (key, value) in pairs {
        if let Some(value) = value {
            map.insert(key.to_owned(), value);
        }
    }
    Value::Object(map)
}

/// Usually a real-looking value, sometimes absent, sometimes anything at all.
fn mostly<S: Strategy<Value = Value> + 'static>(real: S) -> BoxedStrategy<Option<Value>> {
    mostly_or(real, json().boxed())
}

/// [`mostly`] with the "anything" strategy built by the caller, for strategies made per case.
fn mostly_or<S: Strategy<Value = Value> + 'static>(
    real: S,
    anything: BoxedStrategy<Value>,
) -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        8 => real.prop_map(Some),
        1 => Just(None),
        1 => anything.prop_map(Some),
    ]
    .boxed()
}

fn number_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        json_number(),
        numberish_string().prop_map(Value::String),
        Just(Value::Null),
    ]
}

fn label_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => regex("[a-zA-Z0-9_ ]{0,12}").prop_map(Value::String),
        2 => any_text().prop_map(Value::String),
        1 => Just(Value::String(String::new())),
        1 => json_number(),
        1 => leaf(),
    ]
}

/// A Page insights body: `{"data": [{"name", "period", "values": [{"value", "end_time", ...}]}]}`.
fn page_body() -> impl Strategy<Value = Value> {
    let object_value =
        prop::collection::vec((regex("[A-Z]{0,2}|.{0,3}"), number_value()), 0..4).prop_map(object);
    let value = prop_oneof![4 => number_value(), 1 => object_value];
    let breakdowns = prop::collection::vec(
        (
            select(BREAKDOWN_KEYS).prop_map(str::to_owned),
            label_value(),
        ),
        0..3,
    );
    let row = (mostly(value), mostly(time_value()), breakdowns).prop_map(
        |(value, end_time, breakdowns)| {
            object_with(vec![("value", value), ("end_time", end_time)], breakdowns)
        },
    );
    let row = prop_oneof![6 => row, 1 => json()];
    let name = prop_oneof![
        4 => select(METRIC_NAMES).prop_map(|name| Value::String(name.to_owned())),
        1 => regex("[a-z_]{1,10}").prop_map(Value::String),
    ];
    let period = select(&["day", "week", "days_28", "lifetime", ""][..])
        .prop_map(|p| Value::String(p.to_owned()));
    let entry = (
        mostly(name),
        mostly(period),
        mostly(prop::collection::vec(row, 0..6).prop_map(Value::Array)),
    )
        .prop_map(|(name, period, values)| {
            object_with(
                vec![("name", name), ("period", period), ("values", values)],
                Vec::new(),
            )
        });
    let entry = prop_oneof![6 => entry, 1 => json()];
    prop_oneof![
        8 => prop::collection::vec(entry, 0..5).prop_map(data),
        1 => json().prop_map(|data| object_with(vec![("data", Some(data))], Vec::new())),
        1 => json(),
    ]
}

/// A campaign insights body: `{"data": [{<field>: "<decimal>", "date_start", "date_stop"}]}`.
fn campaign_body() -> impl Strategy<Value = Value> {
    let fields = prop::collection::vec(
        (
            select(CAMPAIGN_FIELDS).prop_map(str::to_owned),
            number_value(),
        ),
        0..6,
    );
    let date = prop_oneof![
        regex("20[0-9]{2}-[01][0-9]-[0-3][0-9]").prop_map(Value::String),
        leaf(),
    ]
    .boxed();
    let row = (fields, mostly(date.clone()), mostly(date)).prop_map(|(fields, start, stop)| {
        object_with(vec![("date_start", start), ("date_stop", stop)], fields)
    });
    let row = prop_oneof![6 => row, 1 => json()];
    prop_oneof![
        8 => prop::collection::vec(row, 0..4).prop_map(data),
        1 => json(),
    ]
}

fn granularity() -> impl Strategy<Value = Granularity> {
    select(&[Granularity::HalfHour, Granularity::Day, Granularity::Month][..])
}

/// A WABA analytics body around `now`: buckets near the last complete one, so that some
/// points are the one the converter must pick.
fn whatsapp_case() -> impl Strategy<Value = (Granularity, i64, Value)> {
    // Built once: `prop_flat_map` calls its closure for every case, and building these
    // compiles patterns.
    let any_time = time_value();
    let any_json = json().boxed();
    let count = number_value().boxed();
    (granularity(), YEAR_2000..YEAR_2100).prop_flat_map(move |(granularity, now)| {
        let wanted = last_complete_bucket(granularity, now);
        let boundary = prop_oneof![
            4 => select(vec![wanted.start, wanted.end, wanted.start - 1, wanted.end + 1, now])
                .prop_map(Value::from),
            1 => select(vec![wanted.start, wanted.end]).prop_map(|t| Value::String(t.to_string())),
            1 => any_time.clone(),
        ]
        .boxed();
        let maybe = |real: BoxedStrategy<Value>| mostly_or(real, any_json.clone());
        let point = (
            maybe(boundary.clone()),
            maybe(boundary),
            maybe(count.clone()),
            maybe(count.clone()),
        )
            .prop_map(|(start, end, sent, delivered)| {
                let fields = vec![
                    ("start", start),
                    ("end", end),
                    ("sent", sent),
                    ("delivered", delivered),
                ];
                object_with(fields, Vec::new())
            });
        let point = prop_oneof![6 => point, 1 => any_json.clone()];
        let points = prop::collection::vec(point, 0..6).prop_map(Value::Array);
        let analytics = prop_oneof![
            8 => maybe(points.boxed())
                .prop_map(|points| object_with(vec![("data_points", points)], Vec::new())),
            1 => any_json.clone(),
        ];
        let body = prop_oneof![
            8 => maybe(analytics.boxed()).prop_map(|analytics| {
                let id = Some(Value::from("1"));
                object_with(vec![("analytics", analytics), ("id", id)], Vec::new())
            }),
            1 => any_json.clone(),
        ];
        (Just(granularity), Just(now), body)
    })
}

/// Checks what a scrape needs: valid family and label names, finite values, label names unique
/// in each sample and label sets unique in each family, as Prometheus compares them (an empty
/// value is the same as no label).
fn assert_publishable(converted: &Converted) -> Result<(), TestCaseError> {
    for family in &converted.families {
        prop_assert!(is_valid_name(&family.name), "family name {:?}", family.name);
        let mut label_sets = BTreeSet::new();
        for sample in &family.samples {
            prop_assert!(
                sample.value.is_finite(),
                "{} has value {}",
                family.name,
                sample.value
            );
            let mut names = BTreeSet::new();
            for (name, _) in &sample.labels {
                prop_assert!(
                    is_valid_name(name) && !name.starts_with("__"),
                    "label name {name:?}"
                );
                prop_assert!(
                    names.insert(name.as_str()),
                    "{} repeats label {name:?}: {:?}",
                    family.name,
                    sample.labels
                );
            }
            let as_prometheus_sees_it: BTreeMap<&str, &str> = sample
                .labels
                .iter()
                .filter(|(_, value)| !value.is_empty())
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            prop_assert!(
                label_sets.insert(as_prometheus_sees_it),
                "{} has two samples with labels {:?}",
                family.name,
                sample.labels
            );
        }
    }
    // And the whole lot encodes to text that reads back, as the store serves it: without the
    // families that have no samples.
    let encoded: Vec<_> = encode(converted.families.clone())
        .into_iter()
        .filter(|family| !family.lines.is_empty())
        .collect();
    let text: String = encoded
        .iter()
        .map(|family| format!("{}{}", family.header, family.lines))
        .collect();
    let parsed =
        parse_strict(&text).map_err(|error| TestCaseError::fail(format!("{error}\n{text}")))?;
    prop_assert_eq!(parsed.len(), encoded.len());
    if !text.is_empty() {
        let general = prom_text_format_parser::Scrape::parse(&text);
        prop_assert!(general.is_ok(), "{general:?} for\n{text}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn page_conversion_never_panics_and_emits_only_publishable_samples(
        body in page_body(),
        period in select(&["day", "week", "total_over_range"][..]),
    ) {
        if let Ok(converted) = page::convert("100000000000001", period, &body) {
            assert_publishable(&converted)?;
            for family in &converted.families {
                let metric = family.name.trim_start_matches("meta_");
                if crate::catalog::page_metric_is_non_negative(metric) {
                    for sample in &family.samples {
                        prop_assert!(sample.value >= 0.0, "{} = {}", family.name, sample.value);
                    }
                }
            }
        }
    }

    #[test]
    fn page_conversion_never_panics_on_any_json(body in json()) {
        if let Ok(converted) = page::convert("1", "day", &body) {
            assert_publishable(&converted)?;
        }
    }

    #[test]
    fn campaign_conversion_never_panics_and_emits_one_sample_per_usable_field(
        body in campaign_body(),
        fields in prop::collection::btree_set(
            select(CAMPAIGN_FIELDS).prop_map(str::to_owned),
            0..5,
        ),
        preset in any::<bool>(),
    ) {
        let fields: Vec<String> = fields.into_iter().collect();
        let dates = if preset {
            CampaignDates::Preset("last_30d".into())
        } else {
            CampaignDates::Range {
                since: chrono::NaiveDate::from_ymd_opt(2024, 5, 1).expect("date"),
                until: chrono::NaiveDate::from_ymd_opt(2025, 7, 29).expect("date"),
            }
        };
        if let Ok(converted) = campaign::convert("campaign_id", "120200000000001", &dates, &fields, &body) {
            assert_publishable(&converted)?;
            prop_assert!(converted.families.len() + converted.problems.len() <= fields.len());
            for family in &converted.families {
                prop_assert_eq!(family.samples.len(), 1);
                let field = family.name.trim_start_matches("meta_");
                if crate::catalog::campaign_field_is_non_negative(field) {
                    let value = family.samples[0].value;
                    prop_assert!(value >= 0.0, "{} = {}", family.name, value);
                }
            }
        }
    }

    #[test]
    fn whatsapp_conversion_never_panics_and_reports_the_last_complete_bucket(
        (granularity, now, body) in whatsapp_case(),
    ) {
        let selection = Selection {
            waba_id: "104000000000001",
            granularity,
        };
        if let Ok(converted) = whatsapp::convert(selection, now, &body) {
            assert_publishable(&converted)?;
            let names: Vec<&str> = converted.families.iter().map(|f| f.name.as_str()).collect();
            prop_assert_eq!(names, vec![
                "meta_whatsapp_analytics_sent",
                "meta_whatsapp_analytics_delivered",
                "meta_whatsapp_analytics_bucket_end_timestamp_seconds",
            ]);
            for family in &converted.families[..2] {
                prop_assert!(family.samples.len() <= 1);
                prop_assert!(family.samples.iter().all(|s| s.value >= 0.0), "{:?}", family);
            }
            let end = &converted.families[2].samples;
            let misaligned = converted.problems.iter().any(|p| p.reason == "bucket_misaligned");
            if misaligned {
                // The API's latest complete bucket, or nothing at all: never a made-up 0.
                prop_assert!(end.len() <= 1);
                prop_assert!(end.iter().all(|s| s.value <= now as f64));
                if end.is_empty() {
                    prop_assert!(converted.families[0].samples.is_empty());
                    prop_assert!(converted.families[1].samples.is_empty());
                }
            } else {
                prop_assert_eq!(end.len(), 1);
                let end = end[0].value;
                prop_assert_eq!(end, last_complete_bucket(granularity, now).end as f64);
                prop_assert!(end <= now as f64);
            }
        }
    }

    #[test]
    fn whatsapp_conversion_never_panics_on_any_json(
        body in json(),
        granularity in granularity(),
        now in YEAR_2000..YEAR_2100,
    ) {
        let selection = Selection {
            waba_id: "1",
            granularity,
        };
        if let Ok(converted) = whatsapp::convert(selection, now, &body) {
            assert_publishable(&converted)?;
        }
    }

    /// Arbitrary bytes, and bytes that are almost a real body (cut short or with one byte
    /// changed), go through the client's decoding and then every converter.
    #[test]
    fn any_bytes_decode_to_data_or_a_classified_error_and_never_panic_a_converter(
        bytes in prop_oneof![
            any::<Vec<u8>>(),
            (page_body(), any::<prop::sample::Index>(), any::<u8>(), any::<bool>())
                .prop_map(|(body, at, byte, cut)| {
                    let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
                    if !bytes.is_empty() {
                        let at = at.index(bytes.len());
                        if cut {
                            bytes.truncate(at);
                        } else {
                            bytes[at] = byte;
                        }
                    }
                    bytes
                }),
            whatsapp_case().prop_map(|(_, _, body)| serde_json::to_vec(&body).unwrap_or_default()),
        ],
        status in prop_oneof![Just(200u16), Just(400u16), Just(500u16), 100u16..600],
    ) {
        let success = (200..300).contains(&status);
        match decode(status, success, &bytes) {
            Ok(body) => {
                // Data only ever comes from a success status and never from an error body.
                prop_assert!(success);
                prop_assert!(!body.get("error").is_some_and(Value::is_object));
                let dates = CampaignDates::Preset("last_30d".into());
                let fields = ["marketing_messages_spend".to_owned()];
                let selection = Selection {
                    waba_id: "1",
                    granularity: Granularity::Day,
                };
                // A shape error is a fine answer; what comes back otherwise must be publishable.
                for converted in [
                    page::convert("1", "day", &body),
                    campaign::convert("campaign_id", "1", &dates, &fields, &body),
                    whatsapp::convert(selection, YEAR_2000, &body),
                ]
                .into_iter()
                .flatten()
                {
                    assert_publishable(&converted)?;
                }
            }
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }

    #[test]
    fn parse_number_accepts_exactly_the_finite_numbers(value in prop_oneof![leaf(), json()]) {
        let result = parse_number(&value);
        match &value {
            Value::Number(number) => {
                prop_assert_eq!(result.is_ok(), number.as_f64().is_some_and(f64::is_finite));
            }
            Value::String(text) => prop_assert_eq!(
                result.is_ok(),
                text.trim().parse::<f64>().is_ok_and(f64::is_finite)
            ),
            _ => prop_assert!(result.is_err()),
        }
        if let Ok(number) = result {
            prop_assert!(number.is_finite());
        }
    }

    #[test]
    fn every_finite_float_reads_back_exactly_from_json_and_from_its_spellings(
        x in any::<f64>().prop_filter("finite", |x| x.is_finite()),
    ) {
        let as_json = Value::Number(Number::from_f64(x).expect("finite"));
        prop_assert_eq!(parse_number(&as_json), Ok(x));
        for spelling in [x.to_string(), format!("{x:e}"), format!(" {x}\n")] {
            prop_assert_eq!(parse_number(&Value::String(spelling)), Ok(x));
        }
    }

    #[test]
    fn non_finite_spellings_are_rejected_as_not_finite(
        spelling in prop_oneof![
            regex("[+-]?([nN][aA][nN]|[iI][nN][fF]|[iI][nN][fF][iI][nN][iI][tT][yY])"),
            // Beyond f64::MAX (about 1.8e308): exponents from 309 up.
            regex("[+-]?[1-9][0-9]{0,5}(\\.[0-9]{0,5})?[eE]\\+?(309|[4-9][0-9]{2}|[1-9][0-9]{3,5})"),
        ],
    ) {
        prop_assert_eq!(parse_number(&Value::String(spelling)), Err("not_finite"));
    }

    #[test]
    fn a_non_negative_reading_is_never_below_zero(value in prop_oneof![leaf(), json()]) {
        match parse_non_negative(&value) {
            Ok(number) => {
                prop_assert!(number.is_finite() && number >= 0.0 && number.is_sign_positive());
            }
            Err(reason) => prop_assert!(!reason.is_empty()),
        }
        if parse_number(&value).is_ok_and(|n| n < 0.0) {
            prop_assert_eq!(parse_non_negative(&value), Err("negative"));
        }
    }

    #[test]
    fn parse_time_never_panics_and_reads_unix_seconds_back(
        time in time_value(),
        seconds in any::<i64>(),
    ) {
        let _ = parse_time(&time);
        prop_assert_eq!(parse_time(&Value::from(seconds)), Some(seconds));
        prop_assert_eq!(parse_time(&Value::String(seconds.to_string())), Some(seconds));
    }

    #[test]
    fn iso_8601_times_read_back_to_their_unix_seconds_in_any_offset(
        seconds in YEAR_2000..YEAR_2100,
        offset_minutes in -12 * 60..=14 * 60i32,
    ) {
        let offset = FixedOffset::east_opt(offset_minutes * 60).expect("offset within a day");
        let time = offset.timestamp_opt(seconds, 0).single().expect("in range");
        for spelling in [time.format("%Y-%m-%dT%H:%M:%S%z").to_string(), time.to_rfc3339()] {
            prop_assert_eq!(parse_time(&Value::String(spelling)), Some(seconds));
        }
    }

    #[test]
    fn the_bucket_containing_a_time_contains_it(
        granularity in granularity(),
        time in YEAR_2000..YEAR_2100,
    ) {
        let bucket = bucket_containing(granularity, time);
        prop_assert!(bucket.start <= time && time < bucket.end, "{time} not in {bucket:?}");
        // Buckets tile time: asked at its start, the same bucket; the next starts at its end.
        prop_assert_eq!(bucket_containing(granularity, bucket.start), bucket);
        prop_assert_eq!(bucket_containing(granularity, bucket.end).start, bucket.end);
        let hours = (bucket.end - bucket.start) as f64 / 3600.0;
        let plausible = match granularity {
            Granularity::HalfHour => hours == 0.5,
            // 23 and 25 hours on the days Pacific time changes.
            Granularity::Day => [23.0, 24.0, 25.0].contains(&hours),
            Granularity::Month => (28.0 * 24.0 - 1.0..=31.0 * 24.0 + 1.0).contains(&hours),
        };
        prop_assert!(plausible, "{granularity:?} bucket of {hours} hours at {time}");
    }

    #[test]
    fn the_last_complete_bucket_ended_at_or_before_now_and_is_the_latest_one(
        granularity in granularity(),
        now in YEAR_2000..YEAR_2100,
    ) {
        let last = last_complete_bucket(granularity, now);
        prop_assert!(last.start < last.end, "{last:?}");
        prop_assert!(last.end <= now, "{last:?} at {now}");
        // No complete bucket ends later: the next one is the partial one containing now.
        prop_assert_eq!(bucket_containing(granularity, now).start, last.end);
    }
}

/// A time near the 2025-06-01 Pacific day, on or off its boundaries, or anything.
fn june_time() -> BoxedStrategy<Option<Value>> {
    const DAY_START: i64 = 1_748_761_200;
    mostly(
        select(vec![
            DAY_START,
            DAY_START + 86_400,
            DAY_START + 2 * 86_400,
            DAY_START - 1,
            1_748_736_000,
            1_748_822_400,
        ])
        .prop_map(Value::from),
    )
}

/// A `pricing_analytics` / `conversation_analytics` field value.
fn billing_field() -> impl Strategy<Value = Value> {
    let point = (
        june_time(),
        june_time(),
        mostly(number_value()),
        mostly(number_value()),
        mostly(label_value()),
        mostly(label_value()),
        mostly(label_value()),
    )
        .prop_map(|(start, end, count, cost, country, category, tier)| {
            object_with(
                vec![
                    ("start", start),
                    ("end", end),
                    ("volume", count.clone()),
                    ("conversation", count),
                    ("cost", cost),
                    ("country", country),
                    ("pricing_category", category.clone()),
                    ("conversation_category", category),
                    ("tier", tier),
                ],
                Vec::new(),
            )
        });
    let points = prop::collection::vec(prop_oneof![6 => point, 1 => json()], 0..8);
    prop_oneof![
        6 => points.prop_map(|points| data(vec![object_with(vec![("data_points", Some(Value::Array(points)))], Vec::new())])),
        1 => json(),
    ]
}

/// Template analytics pages.
fn template_pages() -> impl Strategy<Value = Vec<Value>> {
    let click = (
        mostly(label_value()),
        mostly(label_value()),
        mostly(number_value()),
    )
        .prop_map(|(kind, content, count)| {
            object_with(
                vec![
                    ("type", kind),
                    ("button_content", content),
                    ("count", count),
                ],
                Vec::new(),
            )
        });
    let cost = (mostly(label_value()), mostly(number_value()))
        .prop_map(|(kind, value)| object_with(vec![("type", kind), ("value", value)], Vec::new()));
    let point = (
        june_time(),
        june_time(),
        mostly(select(vec!["1", "2", "3"]).prop_map(Value::from)),
        mostly(number_value()),
        mostly(number_value()),
        prop::collection::vec(click, 0..3),
        prop::collection::vec(cost, 0..3),
    )
        .prop_map(|(start, end, id, sent, read, clicks, costs)| {
            object_with(
                vec![
                    ("start", start),
                    ("end", end),
                    ("template_id", id),
                    ("sent", sent.clone()),
                    ("delivered", sent),
                    ("read", read),
                    ("clicked", Some(Value::Array(clicks))),
                    ("cost", Some(Value::Array(costs))),
                ],
                Vec::new(),
            )
        });
    let page = prop_oneof![
        6 => prop::collection::vec(prop_oneof![6 => point, 1 => json()], 0..6)
            .prop_map(|points| data(vec![object_with(vec![("data_points", Some(Value::Array(points)))], Vec::new())])),
        1 => json(),
    ];
    prop::collection::vec(page, 0..3)
}

/// A page of `phone_numbers` or `message_templates`.
fn list_page() -> impl Strategy<Value = Value> {
    let entry = (
        mostly(select(vec!["1", "2", "3"]).prop_map(Value::from)),
        mostly(label_value()),
        mostly(
            select(vec!["GREEN", "YELLOW", "RED", "UNKNOWN", "ORANGE", ""]).prop_map(Value::from),
        ),
        mostly(prop_oneof![
            select(vec![
                "TIER_250",
                "TIER_2K",
                "TIER_UNLIMITED",
                "TIER_",
                "TIER_9999999999999999999K"
            ])
            .prop_map(Value::from),
            number_value(),
        ]),
    )
        .prop_map(|(id, text, rating, limit)| {
            object_with(
                vec![
                    ("id", id),
                    ("display_phone_number", text.clone()),
                    ("verified_name", text.clone()),
                    ("name", text),
                    ("quality_rating", rating.clone()),
                    ("status", rating),
                    ("whatsapp_business_manager_messaging_limit", limit),
                ],
                Vec::new(),
            )
        });
    prop_oneof![
        6 => prop::collection::vec(prop_oneof![6 => entry, 1 => json()], 0..6).prop_map(data),
        1 => json(),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Duplicate label sets (two points of one combination, two numbers with one id) would make
    /// Prometheus reject the whole scrape, so every converter's output must be publishable.
    #[test]
    fn whatsapp_billing_conversion_never_panics_and_emits_only_publishable_samples(
        field in billing_field(),
        conversations in any::<bool>(),
        now in select(vec![1_748_847_600 + 3600, 1_748_934_000 + 3600]),
    ) {
        use crate::config::{BillingAnalytics, BillingField, BillingGranularity};
        let field_kind = if conversations { BillingField::Conversations } else { BillingField::Pricing };
        let analytics = BillingAnalytics {
            field: field_kind,
            granularity: BillingGranularity::Daily,
            dimensions: ["COUNTRY", "PRICING_CATEGORY", "CONVERSATION_CATEGORY", "TIER"].map(String::from).to_vec(),
            filters: Vec::new(),
        };
        let selection = whatsapp::billing::BillingSelection { waba_id: "1", analytics: &analytics, currency: Some("USD") };
        if let Ok((converted, _)) = whatsapp::billing::convert(selection, now, Some(&field)) {
            assert_publishable(&converted)?;
        }
    }

    #[test]
    fn template_conversion_never_panics_and_emits_only_publishable_samples(
        pages in template_pages(),
        listing in list_page(),
    ) {
        let ids = ["1", "2", "3", "1"].map(String::from).to_vec();
        let metrics = ["SENT", "DELIVERED", "READ", "CLICKED", "COST"].map(String::from).to_vec();
        let selection = whatsapp::templates::TemplateSelection { waba_id: "1", template_ids: &ids, metrics: &metrics, currency: None };
        if let Ok(converted) = whatsapp::templates::convert(selection, 1_748_822_400 + 3600, &pages) {
            assert_publishable(&converted)?;
        }
        if let Ok((templates, _)) = whatsapp::templates::parse_templates(&listing) {
            let converted = Converted { families: vec![whatsapp::templates::info_family("1", &templates)], ..Converted::default() };
            assert_publishable(&converted)?;
        }
    }

    #[test]
    fn phone_number_conversion_never_panics_and_emits_only_publishable_samples(
        pages in prop::collection::vec(list_page(), 1..3),
    ) {
        let mut numbers = Vec::new();
        for page in &pages {
            if let Ok((page_numbers, _)) = whatsapp::phone_numbers::parse_phone_numbers(page) {
                numbers.extend(page_numbers);
            }
        }
        let owned = numbers.iter().map(|number| number.id.clone()).collect();
        let mut families = whatsapp::phone_numbers::families("1", &numbers, &owned);
        // +Inf is the documented value of an unlimited number, and the only non-finite one.
        for sample in &mut families[2].samples {
            if !sample.value.is_finite() {
                prop_assert_eq!(sample.value, f64::INFINITY);
                sample.value = f64::MAX;
            }
        }
        let converted = Converted { families, ..Converted::default() };
        assert_publishable(&converted)?;
    }
}

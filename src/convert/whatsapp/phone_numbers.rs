//! A WABA's phone numbers (`GET /{waba}/phone_numbers`) to health gauges: which numbers there
//! are, each one's quality rating as a state set, and its messaging limit.
//!
//! The rating is what people alert on (since 2025-10-07 it no longer lowers the messaging limit,
//! which belongs to the business portfolio, but it gates the limit's scaling and high
//! throughput), so it is exported as a state set (one series per rating, 1 for the current one): an alert on
//! `rating="RED"` then needs no knowledge of the other values, and a change shows as one series
//! going to 0 and another to 1.

use serde_json::Value;

use super::{list_entries, text_field};
use crate::convert::{parse_non_negative, ShapeError, ValueProblem};
use crate::exposition::{Family, Sample};

/// The ratings Meta documents, each always exported (0 or 1).
const RATINGS: [&str; 4] = ["GREEN", "YELLOW", "RED", "UNKNOWN"];

/// One phone number of the account.
#[derive(Debug, Clone, PartialEq)]
pub struct PhoneNumber {
    /// The phone number id (not the number itself).
    pub id: String,
    /// The number as Meta displays it, e.g. `+1 631-555-1234`.
    pub display_phone_number: String,
    /// The business name verified for it.
    pub verified_name: String,
    /// `GREEN`, `YELLOW`, `RED` or `UNKNOWN`, as given.
    pub quality_rating: Option<String>,
    /// Unique customers a business-initiated conversation may reach in a rolling 24 hours;
    /// infinite for an unlimited number.
    pub messaging_limit: Option<f64>,
    /// `throughput.level`, e.g. `STANDARD` (80 messages/s) or `HIGH` (1,000), as given.
    pub throughput: Option<String>,
    /// Its own `health_status` entity, when the list carries the field.
    pub health: Option<super::health::Entity>,
}

/// Reads one page of the phone-number list.
pub fn parse_phone_numbers(
    page: &Value,
) -> Result<(Vec<PhoneNumber>, Vec<ValueProblem>), ShapeError> {
    let mut problems = Vec::new();
    let entries = list_entries(page, "phone_numbers", &mut problems)?;
    let mut numbers = Vec::with_capacity(entries.len());
    for (id, entry) in entries {
        let text = |key: &str| text_field(entry, key);
        let limit = entry
            .get("whatsapp_business_manager_messaging_limit")
            .or_else(|| entry.get("messaging_limit_tier"))
            .filter(|value| !value.is_null());
        let messaging_limit = match limit {
            None => None,
            // A number never used has no limit yet: nothing to export, nothing wrong.
            Some(value) if is_not_set(value) => None,
            Some(value) => match messaging_limit(value) {
                Some(limit) => Some(limit),
                None => {
                    problems.push(ValueProblem {
                        reason: "unknown_messaging_limit",
                        detail: format!("phone number {id}: messaging limit {value} is not a tier the exporter can read"),
                    });
                    None
                }
            },
        };
        let health = match entry.get("health_status").filter(|value| !value.is_null()) {
            None => None,
            Some(value) => {
                let (own, found) = super::health::own_entity(value, "PHONE_NUMBER", &id);
                problems.extend(found);
                own
            }
        };
        numbers.push(PhoneNumber {
            health,
            display_phone_number: text("display_phone_number"),
            verified_name: text("verified_name"),
            quality_rating: entry
                .get("quality_rating")
                .and_then(Value::as_str)
                .map(str::to_owned),
            messaging_limit,
            throughput: entry
                .get("throughput")
                .and_then(|throughput| throughput.get("level"))
                .and_then(Value::as_str)
                .map(|level| level.trim().to_owned())
                .filter(|level| !level.is_empty() && level.len() <= 40),
            id,
        });
    }
    Ok((numbers, problems))
}

/// `TIER_NOT_SET`: Meta's value for a number (or portfolio) that has never been used.
pub(crate) fn is_not_set(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|text| text.trim() == "TIER_NOT_SET")
}

/// The unique-customer limit of a tier: `TIER_250` is 250, `TIER_2K` 2,000, `TIER_100K`
/// 100,000, `TIER_UNLIMITED` infinite; a plain number, or an object with `value` or `limit`,
/// is taken as it is.
pub(crate) fn messaging_limit(value: &Value) -> Option<f64> {
    match value {
        Value::String(text) => {
            let tier = text.trim().strip_prefix("TIER_").unwrap_or(text.trim());
            if tier.eq_ignore_ascii_case("UNLIMITED") {
                return Some(f64::INFINITY);
            }
            let (digits, scale) = match tier.char_indices().last()? {
                (at, 'K' | 'k') => (&tier[..at], 1_000.0),
                (at, 'M' | 'm') => (&tier[..at], 1_000_000.0),
                _ => (tier, 1.0),
            };
            let number: f64 = digits.parse().ok()?;
            (number.is_finite() && number >= 0.0).then_some(number * scale)
        }
        Value::Number(_) => parse_non_negative(value).ok(),
        Value::Object(object) => object
            .get("value")
            .or_else(|| object.get("limit"))
            .and_then(messaging_limit),
        _ => None,
    }
}

/// The levels Meta documents, each always exported (0 or 1) for a number that has one.
const THROUGHPUT_LEVELS: [&str; 3] = ["STANDARD", "HIGH", "NOT_APPLICABLE"];

/// The info families of the account's numbers, and the quality-rating, messaging-limit and
/// throughput families of the numbers in `owned`: a number several accounts list is exported
/// by one of them ([`crate::poller::whatsapp::shared`]).
pub fn families(
    waba_id: &str,
    numbers: &[PhoneNumber],
    owned: &std::collections::HashSet<String>,
) -> Vec<Family> {
    let id_labels = |number: &PhoneNumber| {
        vec![
            ("waba_id".to_owned(), waba_id.to_owned()),
            ("phone_number_id".to_owned(), number.id.clone()),
        ]
    };
    let mut info = Vec::with_capacity(numbers.len());
    let mut ratings = Vec::with_capacity(numbers.len() * RATINGS.len());
    let mut limits = Vec::with_capacity(numbers.len());
    let mut throughput = Vec::new();
    // A number listed twice (pages shifting while they are read) is exported once: two series
    // with one label set would make Prometheus reject the whole scrape.
    let mut seen = std::collections::BTreeSet::new();
    for number in numbers
        .iter()
        .filter(|number| seen.insert(number.id.as_str()))
    {
        let mut labels = id_labels(number);
        labels.push((
            "display_phone_number".to_owned(),
            number.display_phone_number.clone(),
        ));
        labels.push(("verified_name".to_owned(), number.verified_name.clone()));
        labels.retain(|(_, value)| !value.is_empty());
        info.push(Sample { labels, value: 1.0 });
        if !owned.contains(&number.id) {
            continue;
        }

        // A missing rating is Meta's UNKNOWN; a rating Meta adds later gets its own series, so
        // it is seen rather than folded into one of the four.
        let current = number.quality_rating.as_deref().unwrap_or("UNKNOWN");
        let mut states: Vec<&str> = RATINGS.to_vec();
        if !RATINGS.contains(&current) {
            states.push(current);
        }
        for state in states {
            let mut labels = id_labels(number);
            labels.push(("rating".to_owned(), state.to_owned()));
            ratings.push(Sample {
                labels,
                value: if state == current { 1.0 } else { 0.0 },
            });
        }
        if let Some(limit) = number.messaging_limit {
            limits.push(Sample {
                labels: id_labels(number),
                value: limit,
            });
        }
        // Throughput is the number's own, shared by every account listing it: labelled by
        // the number alone. An open set like the rating; no series when Meta gives none.
        if let Some(current) = number.throughput.as_deref() {
            let mut levels: Vec<&str> = THROUGHPUT_LEVELS.to_vec();
            if !levels.contains(&current) {
                levels.push(current);
            }
            for level in levels {
                throughput.push(Sample {
                    labels: vec![
                        ("phone_number_id".to_owned(), number.id.clone()),
                        ("level".to_owned(), level.to_owned()),
                    ],
                    value: if level == current { 1.0 } else { 0.0 },
                });
            }
        }
    }
    vec![
        Family {
            name: "meta_whatsapp_phone_number_info".to_owned(),
            help: "Always 1: a phone number of the WhatsApp Business Account, with its display number and verified name. From the phone number list, read at most hourly in the background.".to_owned(),
            samples: info,
        },
        Family {
            name: "meta_whatsapp_phone_number_quality_rating".to_owned(),
            help: "Quality rating of the phone number as a state set: 1 for the current rating (GREEN, YELLOW, RED, UNKNOWN), 0 for the others. Since 2025-10-07 it no longer lowers the messaging limit, but the portfolio's limit scales only with high-quality messages and 1,000 messages/s throughput needs YELLOW or better. From the phone number list, read at most hourly in the background.".to_owned(),
            samples: ratings,
        },
        Family {
            name: "meta_whatsapp_phone_number_messaging_limit".to_owned(),
            help: "Unique customers the phone number may message outside a customer service window in a rolling 24 hours (+Inf when unlimited). Since 2025-10-07 this is the business portfolio's limit, which every number of the portfolio repeats: never sum it across numbers. From the phone number list, read at most hourly in the background.".to_owned(),
            samples: limits,
        },
        Family {
            name: "meta_whatsapp_phone_number_throughput".to_owned(),
            help: "Messaging throughput level of the phone number as a state set: 1 for the current level (STANDARD: 80 messages/s, HIGH: 1,000; NOT_APPLICABLE; any level Meta adds gets its own series), 0 for the others. By phone number alone: every account listing the number shares it. From the phone number list, read at most hourly in the background.".to_owned(),
            samples: throughput,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tiers_read_as_unique_customers() {
        for (tier, limit) in [
            ("TIER_50", 50.0),
            ("TIER_250", 250.0),
            ("TIER_1K", 1_000.0),
            ("TIER_2K", 2_000.0),
            ("TIER_10K", 10_000.0),
            ("TIER_100K", 100_000.0),
        ] {
            assert_eq!(messaging_limit(&json!(tier)), Some(limit), "{tier}");
        }
        assert_eq!(
            messaging_limit(&json!("TIER_UNLIMITED")),
            Some(f64::INFINITY)
        );
        assert_eq!(messaging_limit(&json!(1000)), Some(1000.0));
        assert_eq!(messaging_limit(&json!({"value": "TIER_2K"})), Some(2000.0));
        for bad in [
            json!("TIER_LOTS"),
            json!("K"),
            json!(-5),
            json!(true),
            json!("TIER_-1K"),
        ] {
            assert_eq!(messaging_limit(&bad), None, "{bad}");
        }
    }

    fn page() -> Value {
        json!({"data": [
            {"id": "111", "display_phone_number": "+1 631-555-0001", "verified_name": "Shop",
             "quality_rating": "GREEN", "whatsapp_business_manager_messaging_limit": "TIER_10K"},
            {"id": "222", "display_phone_number": "+1 631-555-0002", "verified_name": "Shop",
             "quality_rating": "RED", "messaging_limit_tier": "TIER_UNLIMITED"},
            {"id": "333", "display_phone_number": "+1 631-555-0003", "verified_name": "Shop",
             "quality_rating": "ORANGE", "whatsapp_business_manager_messaging_limit": "TIER_LOTS"},
            {"display_phone_number": "+1 631-555-0004"}
        ], "paging": {"cursors": {"after": "x"}}})
    }

    fn all(numbers: &[PhoneNumber]) -> std::collections::HashSet<String> {
        numbers.iter().map(|number| number.id.clone()).collect()
    }

    #[test]
    fn a_number_another_account_exports_keeps_only_its_info_here() {
        let (numbers, _) = parse_phone_numbers(&page()).expect("shape");
        let owned = ["111".to_owned()].into_iter().collect();
        let families = families("W", &numbers, &owned);
        assert_eq!(families[0].samples.len(), 3, "every listed number's info");
        let ids = |family: &Family| {
            let mut ids: Vec<String> = family
                .samples
                .iter()
                .filter_map(|s| s.labels.iter().find(|(k, _)| k == "phone_number_id"))
                .map(|(_, v)| v.clone())
                .collect();
            ids.dedup();
            ids
        };
        for family in &families[1..] {
            assert!(ids(family).iter().all(|id| id == "111"), "{}", family.name);
        }
    }

    #[test]
    fn throughput_is_a_state_set_by_number_alone_and_an_open_one() {
        let page = json!({"data": [
            {"id": "1", "throughput": {"level": "STANDARD"}},
            {"id": "2", "throughput": {"level": "ULTRA"}},
            {"id": "3"}
        ]});
        let (numbers, problems) = parse_phone_numbers(&page).expect("shape");
        assert!(problems.is_empty());
        let families = families("W", &numbers, &all(&numbers));
        let throughput = &families[3];
        assert_eq!(throughput.name, "meta_whatsapp_phone_number_throughput");
        let level = |id: &str, level: &str| {
            throughput
                .samples
                .iter()
                .find(|s| {
                    s.labels
                        == [
                            ("phone_number_id".to_owned(), id.to_owned()),
                            ("level".to_owned(), level.to_owned()),
                        ]
                })
                .map(|s| s.value)
        };
        assert_eq!(level("1", "STANDARD"), Some(1.0));
        assert_eq!(level("1", "HIGH"), Some(0.0));
        assert_eq!(level("1", "NOT_APPLICABLE"), Some(0.0));
        assert_eq!(
            level("2", "ULTRA"),
            Some(1.0),
            "a level Meta adds is its own state"
        );
        assert_eq!(level("2", "STANDARD"), Some(0.0));
        assert_eq!(level("3", "STANDARD"), None, "no level given, no series");
        assert_eq!(throughput.samples.len(), 3 + 4);
    }

    #[test]
    fn numbers_give_info_a_rating_state_set_and_their_limit() {
        let (numbers, problems) = parse_phone_numbers(&page()).expect("shape");
        assert_eq!(numbers.len(), 3);
        let reasons: Vec<&str> = problems.iter().map(|p| p.reason).collect();
        assert_eq!(reasons, ["missing_id", "unknown_messaging_limit"]);
        let families = families("W", &numbers, &all(&numbers));
        assert_eq!(families[0].samples.len(), 3);
        assert!(families[0].samples[0].labels.contains(&(
            "display_phone_number".to_owned(),
            "+1 631-555-0001".to_owned()
        )));
        let rating = |id: &str, state: &str| {
            families[1]
                .samples
                .iter()
                .find(|s| {
                    s.labels
                        .contains(&("phone_number_id".to_owned(), id.to_owned()))
                        && s.labels.contains(&("rating".to_owned(), state.to_owned()))
                })
                .map(|s| s.value)
        };
        assert_eq!(rating("222", "RED"), Some(1.0));
        for state in ["GREEN", "YELLOW", "UNKNOWN"] {
            assert_eq!(rating("222", state), Some(0.0));
        }
        // A rating Meta adds later is its own state; the four documented ones are 0.
        assert_eq!(rating("333", "ORANGE"), Some(1.0));
        assert_eq!(rating("333", "GREEN"), Some(0.0));
        let limits: Vec<f64> = families[2].samples.iter().map(|s| s.value).collect();
        assert_eq!(limits, [10_000.0, f64::INFINITY]);
    }

    #[test]
    fn a_number_without_a_rating_is_unknown_and_a_bad_page_is_a_shape_error() {
        let (numbers, _) = parse_phone_numbers(&json!({"data": [{"id": 5}]})).expect("shape");
        let families = families("W", &numbers, &all(&numbers));
        let unknown = families[1]
            .samples
            .iter()
            .find(|s| {
                s.labels
                    .contains(&("rating".to_owned(), "UNKNOWN".to_owned()))
            })
            .expect("unknown");
        assert_eq!(unknown.value, 1.0);
        assert!(parse_phone_numbers(&json!({"error": "x"})).is_err());
        assert!(parse_phone_numbers(&json!({"data": {}})).is_err());
    }
}

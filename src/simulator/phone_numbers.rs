//! The phone numbers of a WhatsApp Business Account: `GET /{version}/{waba-id}/phone_numbers`.
//!
//! Owns the numbers' properties and how they change: each account has the two numbers that
//! `analytics` reports ([`waba::account_phone_numbers`]), with ids derived from the account and
//! the number. The first is the account's established number: GREEN, messaging limit
//! TIER_10K. The second is newer and less steady: TIER_2K, and a quality rating that is
//! GREEN most Pacific days, YELLOW some and RED rarely (decided per day, so it holds between
//! polls and changes from one day to the next), unless a test fixes it with
//! `FakeGraphApi::set_phone_quality`. Only the requested fields appear, plus `id`, as in
//! Graph; the list is paged like every list edge.
//!
//! Each number also answers `health_status` (graph-api.md 7.2), on the list and as a node of
//! its own (`GET /{phone-number-id}?fields=health_status`, [`node`]): its own PHONE_NUMBER
//! entity (AVAILABLE, or what `FakeGraphApi::set_phone_health` scripts for the second
//! number) followed by its account's WABA, business and app entities, with the overall value
//! the worst of them. An account made with `FakeGraphApi::refuse_list_health` refuses the
//! field on the list edge, as an account whose edge does not know it would, while its
//! numbers' own nodes still answer it.

use serde_json::{json, Map, Value};

use super::faults::GraphError;
use super::generate::Seed;
use super::http::ReadContext;
use super::paging;
use super::waba;
use crate::calendar;

/// The node type Graph names in "nonexisting field" errors.
pub(crate) const NODE_TYPE: &str = "WhatsAppBusinessPhoneNumber";
/// Graph's default fields for this edge.
const DEFAULT_FIELDS: [&str; 4] = [
    "display_phone_number",
    "verified_name",
    "quality_rating",
    "id",
];
/// The share of Pacific days on which the second number is YELLOW, and RED.
const YELLOW_SHARE: f64 = 0.2;
const RED_SHARE: f64 = 0.04;

/// Answers the `phone_numbers` edge of the account being read.
pub(crate) fn phone_numbers(context: &ReadContext<'_>) -> Result<Value, GraphError> {
    let requested = paging::list_fields(context, &DEFAULT_FIELDS, &KNOWN_FIELDS, NODE_TYPE)?;
    if context.whatsapp.list_refuses_health && requested.iter().any(|f| f == "health_status") {
        return Err(GraphError::nonexisting_field("health_status", NODE_TYPE));
    }
    // The portfolio's limit field exists from v24.0 (graph-api.md 7.3); an older version
    // does not know it, which fails the whole request as any unknown field does.
    const NEW_LIMIT: &str = "whatsapp_business_manager_messaging_limit";
    if requested.iter().any(|field| field == NEW_LIMIT)
        && crate::catalog::versions::messaging_limit_field(context.version) != NEW_LIMIT
    {
        return Err(GraphError::nonexisting_field(NEW_LIMIT, NODE_TYPE));
    }
    let numbers = waba::account_phone_numbers(context.object_id);
    let mut items: Vec<Value> = numbers
        .iter()
        .enumerate()
        .map(|(position, number)| {
            let mut item = Map::new();
            item.insert(
                "id".to_owned(),
                json!(phone_number_id(context.object_id, number)),
            );
            for field in &requested {
                let value = property(context, position, number, field);
                item.insert(field.clone(), value);
            }
            Value::Object(item)
        })
        .collect();
    // A number shared with another account: its id and name are that account's.
    if let Some(owner) = &context.whatsapp.shares_number_of {
        if let Some(number) = waba::account_phone_numbers(owner).first() {
            let mut item = Map::new();
            item.insert("id".to_owned(), json!(phone_number_id(owner, number)));
            for field in &requested {
                let value = match field.as_str() {
                    "id" => json!(phone_number_id(owner, number)),
                    "verified_name" => json!(format!("Simulated Business {owner}")),
                    _ => property(context, 0, number, field),
                };
                item.insert(field.clone(), value);
            }
            items.push(Value::Object(item));
        }
    }
    paging::page(context, "phone_numbers", items)
}

/// The id of phone number `number` (digits) of account `waba`: 15 digits, like Meta's.
pub(crate) fn phone_number_id(waba: &str, number: &str) -> String {
    Seed::of(&[waba, "phone_number_id", number]).object_id(15)
}

/// Answers `GET /{phone-number-id}` for the number at `position` of the account `context`
/// is about (its `object_id` is the account's): the requested fields of [`KNOWN_FIELDS`],
/// plus `id`, as the list would give them.
pub(crate) fn node(
    context: &ReadContext<'_>,
    position: usize,
    number: &str,
) -> Result<Value, GraphError> {
    let requested = paging::list_fields(context, &["id"], &KNOWN_FIELDS, NODE_TYPE)?;
    let mut body = Map::new();
    body.insert(
        "id".to_owned(),
        json!(phone_number_id(context.object_id, number)),
    );
    for field in &requested {
        body.insert(field.clone(), property(context, position, number, field));
    }
    Ok(Value::Object(body))
}

/// `health_status` of the number at `position`: its own entity, then its account's.
fn health_status(context: &ReadContext<'_>, position: usize, number: &str) -> Value {
    let id = phone_number_id(context.object_id, number);
    let mut own = match (&context.whatsapp.phone_health, position) {
        (Some(scripted), 1) => scripted.clone(),
        _ => json!({"can_send_message": "AVAILABLE", "can_receive_call_sip": "AVAILABLE"}),
    };
    if let Some(own) = own.as_object_mut() {
        own.insert("entity_type".to_owned(), json!("PHONE_NUMBER"));
        own.insert("id".to_owned(), json!(id));
    }
    let account = context
        .whatsapp
        .fixed_fields
        .get("health_status")
        .cloned()
        .unwrap_or_else(|| waba::health_status(context.object_id));
    let mut entities = vec![own];
    entities.extend(
        account
            .get("entities")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    );
    let worst = ["BLOCKED", "LIMITED"]
        .into_iter()
        .find(|state| {
            entities
                .iter()
                .any(|entity| entity.get("can_send_message") == Some(&json!(state)))
        })
        .unwrap_or("AVAILABLE");
    json!({"can_send_message": worst, "entities": entities})
}

/// The fields this simulation serves.
const KNOWN_FIELDS: [&str; 11] = [
    "id",
    "display_phone_number",
    "verified_name",
    "quality_rating",
    "whatsapp_business_manager_messaging_limit",
    "messaging_limit_tier",
    "code_verification_status",
    "name_status",
    "platform_type",
    "throughput",
    "health_status",
];

/// Field `field` of the number at `position` (0 for the first) in the account's list.
fn property(context: &ReadContext<'_>, position: usize, number: &str, field: &str) -> Value {
    let waba = context.object_id;
    let first = position == 0;
    match field {
        "id" => json!(phone_number_id(waba, number)),
        "display_phone_number" => json!(display(number)),
        "verified_name" => json!(format!("Simulated Business {waba}")),
        "quality_rating" => json!(quality_rating(context, first)),
        "whatsapp_business_manager_messaging_limit" => {
            json!(if first { "TIER_10K" } else { "TIER_2K" })
        }
        // The deprecated spelling of the same limit, which had no 2K tier.
        "messaging_limit_tier" => json!(if first { "TIER_10K" } else { "TIER_1K" }),
        "code_verification_status" => json!("VERIFIED"),
        "name_status" => json!("APPROVED"),
        "platform_type" => json!("CLOUD_API"),
        "throughput" => json!({ "level": "STANDARD" }),
        "health_status" => health_status(context, position, number),
        _ => Value::Null,
    }
}

/// The quality rating today (Pacific) of the first or the second number.
fn quality_rating(context: &ReadContext<'_>, first: bool) -> String {
    if first {
        return "GREEN".to_owned();
    }
    if let Some(rating) = &context.whatsapp.phone_quality {
        return rating.clone();
    }
    let day = calendar::ymd(calendar::pacific_date(context.now));
    let draw = Seed::of(&[context.object_id, "quality", &day]).unit();
    if draw < RED_SHARE {
        "RED"
    } else if draw < RED_SHARE + YELLOW_SHARE {
        "YELLOW"
    } else {
        "GREEN"
    }
    .to_owned()
}

/// `16315551234` as WhatsApp Manager writes it: `+1 631-555-1234`.
fn display(number: &str) -> String {
    match (
        number.get(..1),
        number.get(1..4),
        number.get(4..7),
        number.get(7..),
    ) {
        (Some(country), Some(area), Some(exchange), Some(line)) => {
            format!("+{country} {area}-{exchange}-{line}")
        }
        _ => format!("+{number}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::http::{with_context, with_settings};
    use crate::simulator::WhatsAppSettings;

    /// 2024-06-15 19:17 UTC.
    const NOW: i64 = 1_718_479_020;
    const FIELDS: &str = "fields=id,display_phone_number,verified_name,quality_rating,whatsapp_business_manager_messaging_limit";

    fn numbers(query: &str, now: i64) -> Vec<Value> {
        let body = with_context("waba-77", query, now, phone_numbers).expect("an answer");
        body["data"].as_array().expect("data").clone()
    }

    #[test]
    fn two_numbers_with_the_requested_fields_only() {
        let numbers = numbers(FIELDS, NOW);
        assert_eq!(numbers.len(), 2);
        let digits = waba::account_phone_numbers("waba-77");
        for (number, digits) in numbers.iter().zip(&digits) {
            let keys: Vec<&String> = number.as_object().expect("an object").keys().collect();
            assert_eq!(keys.len(), 5, "{number}");
            let display = number["display_phone_number"].as_str().expect("a number");
            assert!(display.starts_with("+1 631-555-"), "{display}");
            assert_eq!(display.replace(['+', ' ', '-'], ""), *digits);
            let id = number["id"].as_str().expect("an id");
            assert!(
                id.len() == 15 && id.bytes().all(|b| b.is_ascii_digit()),
                "{id}"
            );
        }
        assert_ne!(numbers[0]["id"], numbers[1]["id"]);
        assert_eq!(numbers[0]["quality_rating"], "GREEN");
        assert_eq!(
            numbers[0]["whatsapp_business_manager_messaging_limit"],
            "TIER_10K"
        );
        assert_eq!(
            numbers[1]["whatsapp_business_manager_messaging_limit"],
            "TIER_2K"
        );
        let only_id = self::numbers("fields=quality_rating", NOW);
        assert_eq!(
            only_id[0].as_object().map(|o| o.len()),
            Some(2),
            "id and quality_rating"
        );
    }

    #[test]
    fn the_second_rating_is_mostly_green_changes_by_day_and_can_be_overridden() {
        let ratings: Vec<String> = (0..200)
            .map(|day| {
                let numbers = numbers(FIELDS, NOW + day * 86_400);
                numbers[1]["quality_rating"]
                    .as_str()
                    .expect("a rating")
                    .to_owned()
            })
            .collect();
        let share = |rating: &str| ratings.iter().filter(|r| *r == rating).count();
        assert!(share("GREEN") > 120 && share("YELLOW") > 10, "{ratings:?}");
        assert!(share("RED") < share("YELLOW"), "{ratings:?}");
        // Stable within a day.
        assert_eq!(numbers(FIELDS, NOW), numbers(FIELDS, NOW + 60));
        let settings = WhatsAppSettings {
            phone_quality: Some("RED".to_owned()),
            ..WhatsAppSettings::default()
        };
        let body =
            with_settings("waba-77", FIELDS, NOW, &settings, phone_numbers).expect("an answer");
        assert_eq!(body["data"][1]["quality_rating"], "RED");
        assert_eq!(body["data"][0]["quality_rating"], "GREEN");
    }

    #[test]
    fn numbers_page_and_unknown_fields_are_code_100() {
        let body = with_context("waba-77", &format!("{FIELDS}&limit=1"), NOW, phone_numbers)
            .expect("an answer");
        assert_eq!(body["data"].as_array().map(Vec::len), Some(1));
        assert!(body["paging"]["next"].as_str().is_some());
        for query in ["fields=id,colour", "fields=quality_rating.since(1)"] {
            let error = with_context("waba-77", query, NOW, phone_numbers).expect_err(query);
            assert_eq!(error.code, 100, "{query}");
        }
    }
}

//! The business portfolio's messaging limit, read from the WABA node, to gauges.
//!
//! Since 2025-10-07 the limit belongs to the business portfolio: every number in it shares one
//! limit, so the per-number gauge repeats it and must not be summed (graph-api.md 7.3). The
//! WABA node answers the portfolio's value in `whatsapp_business_manager_messaging_limit`
//! (v24.0 and later) or `messaging_limit_tier` (before). Meta writes the tiers two ways
//! (`TIER_2K` in the API, `2000` in webhooks), and its set has grown before (`TIER_50`,
//! `TIER_NOT_SET`), so the raw value is kept as the `tier` label of a state-like info series
//! and only mapped to a number in a separate gauge, where it can be read at all.

use serde_json::Value;

use super::phone_numbers::{is_not_set, messaging_limit};
use crate::convert::ValueProblem;
use crate::exposition::{Family, Sample};

/// The longest raw tier kept as a label: Meta's are a dozen characters.
const MAX_TIER_CHARS: usize = 40;

/// `meta_whatsapp_messaging_limit{waba_id, tier}` and, where the tier reads as a number,
/// `meta_whatsapp_messaging_limit_users{waba_id}`, from the node read `body`; nothing when the
/// field is absent (an older answer, or one without it).
pub fn convert(waba_id: &str, body: &Value) -> (Vec<Family>, Vec<ValueProblem>) {
    let Some(value) = body
        .get("whatsapp_business_manager_messaging_limit")
        .or_else(|| body.get("messaging_limit_tier"))
        .filter(|value| !value.is_null())
    else {
        return (Vec::new(), Vec::new());
    };
    let raw = match value {
        Value::String(text) => text.trim().to_owned(),
        Value::Number(number) => number.to_string(),
        Value::Object(object) => match object.get("value").or_else(|| object.get("limit")) {
            Some(Value::String(text)) => text.trim().to_owned(),
            Some(Value::Number(number)) => number.to_string(),
            _ => String::new(),
        },
        _ => String::new(),
    };
    let mut problems = Vec::new();
    if raw.is_empty() || raw.chars().count() > MAX_TIER_CHARS {
        problems.push(ValueProblem {
            reason: "unknown_messaging_limit",
            detail: format!("account {waba_id}: portfolio messaging limit {value} is not a tier"),
        });
        return (Vec::new(), problems);
    }
    let waba = ("waba_id".to_owned(), waba_id.to_owned());
    let mut families = vec![Family {
        name: "meta_whatsapp_messaging_limit".to_owned(),
        help: "Always 1: the business portfolio's messaging limit as Meta writes it (tier: TIER_250, TIER_2K, ..., TIER_UNLIMITED, TIER_NOT_SET, or 2000 in the other spelling), by the WhatsApp Business Account that reported it. Since 2025-10-07 every number of the portfolio shares this one limit. From the account's node read (whatsapp_business_manager_messaging_limit from v24.0, messaging_limit_tier before).".to_owned(),
        samples: vec![Sample {
            labels: vec![waba.clone(), ("tier".to_owned(), raw)],
            value: 1.0,
        }],
    }];
    if !is_not_set(value) {
        match messaging_limit(value) {
            Some(users) => families.push(Family {
                name: "meta_whatsapp_messaging_limit_users".to_owned(),
                help: "The business portfolio's messaging limit as a number: unique WhatsApp users its numbers may message outside a customer service window in a moving 24 hours (+Inf when unlimited; absent for TIER_NOT_SET). One value per portfolio, repeated by each of its accounts: do not sum it. From the account's node read.".to_owned(),
                samples: vec![Sample {
                    labels: vec![waba],
                    value: users,
                }],
            }),
            None => problems.push(ValueProblem {
                reason: "unknown_messaging_limit",
                detail: format!(
                    "account {waba_id}: portfolio messaging limit {value} is not a tier the exporter can read as a number"
                ),
            }),
        }
    }
    (families, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn users(families: &[Family]) -> Option<f64> {
        families
            .iter()
            .find(|family| family.name == "meta_whatsapp_messaging_limit_users")
            .map(|family| family.samples[0].value)
    }

    fn tier(families: &[Family]) -> &str {
        let info = &families[0];
        assert_eq!(info.name, "meta_whatsapp_messaging_limit");
        &info.samples[0].labels[1].1
    }

    #[test]
    fn metas_example_and_both_spellings_read_as_the_same_limit() {
        // Meta's example answer (graph-api.md 7.3), on the WABA node.
        let (families, problems) = convert(
            "102290129340398",
            &json!({"whatsapp_business_manager_messaging_limit": "TIER_250", "id": "102290129340398"}),
        );
        assert!(problems.is_empty());
        assert_eq!(tier(&families), "TIER_250");
        assert_eq!(users(&families), Some(250.0));
        for (spelling, expected) in [
            (json!("TIER_2K"), 2_000.0),
            (json!("2000"), 2_000.0),
            (json!(2000), 2_000.0),
            (json!("TIER_100K"), 100_000.0),
            (json!("100000"), 100_000.0),
            (json!("TIER_UNLIMITED"), f64::INFINITY),
            (json!("UNLIMITED"), f64::INFINITY),
            (json!("TIER_50"), 50.0),
        ] {
            let (families, problems) = convert(
                "9",
                &json!({"whatsapp_business_manager_messaging_limit": spelling}),
            );
            assert!(problems.is_empty(), "{spelling}");
            assert_eq!(users(&families), Some(expected), "{spelling}");
        }
        let (families, _) = convert(
            "9",
            &json!({"whatsapp_business_manager_messaging_limit": 2000}),
        );
        assert_eq!(tier(&families), "2000", "the raw value, as written");
    }

    #[test]
    fn tier_not_set_is_a_state_without_a_number_and_the_old_field_is_read_too() {
        let (families, problems) = convert(
            "9",
            &json!({"whatsapp_business_manager_messaging_limit": "TIER_NOT_SET"}),
        );
        assert!(problems.is_empty());
        assert_eq!(tier(&families), "TIER_NOT_SET");
        assert_eq!(users(&families), None);
        let (families, _) = convert("9", &json!({"messaging_limit_tier": "TIER_1K"}));
        assert_eq!(tier(&families), "TIER_1K");
        assert_eq!(users(&families), Some(1_000.0));
        assert!(convert("9", &json!({"name": "no limit asked"}))
            .0
            .is_empty());
    }

    #[test]
    fn an_unknown_tier_keeps_its_label_and_names_the_problem() {
        let (families, problems) = convert(
            "9",
            &json!({"whatsapp_business_manager_messaging_limit": "TIER_LOTS"}),
        );
        assert_eq!(
            tier(&families),
            "TIER_LOTS",
            "an open set: the state is still shown"
        );
        assert_eq!(users(&families), None);
        assert_eq!(problems[0].reason, "unknown_messaging_limit");
        let (families, problems) = convert(
            "9",
            &json!({"whatsapp_business_manager_messaging_limit": ["not", "a", "tier"]}),
        );
        assert!(families.is_empty());
        assert_eq!(problems.len(), 1);
    }
}

//! `health_status` (graph-api.md 7.2) to state sets: whether each entity Meta names (the
//! phone number, the WABA, the business portfolio, the app, a template) can send messages.
//!
//! Meta's answer is `{"health_status": {"can_send_message", "entities": [...]}}`. Each entity's
//! verdict is its own `can_send_message`; the overall value at the top is not used, since a
//! SIP-only block (`can_receive_call_sip`) can make it BLOCKED while every entity can send,
//! and this exporter reports messaging. Entity types and values are open sets: AVAILABLE,
//! LIMITED and BLOCKED are always exported (0 or 1), a value Meta adds gets its own series.
//! Error codes become `error_code` labels (small integers); descriptions, possible solutions
//! and `additional_info` are free text and go to [`Entity::notes`], never into labels. The
//! WABA's node read asks for it (no call of its own) and so does the phone-number list, where
//! each number's answer carries its own PHONE_NUMBER entity ([`own_entity`]).

use serde_json::Value;

use crate::convert::ValueProblem;
use crate::exposition::{Family, Sample};

/// The states always exported.
const STATES: [&str; 3] = ["AVAILABLE", "LIMITED", "BLOCKED"];
/// The longest entity type, id or state kept as a label.
const MAX_LABEL_CHARS: usize = 64;

/// One entity of an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// `PHONE_NUMBER`, `WABA`, `BUSINESS`, `APP`, `MESSAGE_TEMPLATE`, ... as given.
    pub entity_type: String,
    /// Its id.
    pub id: String,
    /// Its `can_send_message`.
    pub can_send_message: String,
    /// The `error_code` of each error Meta lists.
    pub error_codes: Vec<i64>,
    /// What Meta says in words: each error's description and possible solution, and
    /// `additional_info`; for the status page and the log.
    pub notes: Vec<String>,
}

impl Entity {
    /// The entity's key among those several accounts report: type and id.
    pub fn key(&self) -> String {
        format!("{}:{}", self.entity_type, self.id)
    }
}

/// The entities of a `health_status` value, with problems for the parts that cannot be read.
pub fn parse(health: &Value) -> (Vec<Entity>, Vec<ValueProblem>) {
    let mut problems = Vec::new();
    let Some(entries) = health.get("entities").and_then(Value::as_array) else {
        problems.push(ValueProblem {
            reason: "invalid_health_status",
            detail: "health_status has no entities array".to_owned(),
        });
        return (Vec::new(), problems);
    };
    let label = |value: Option<&Value>| {
        let text = match value {
            Some(Value::String(text)) => text.trim().to_owned(),
            Some(Value::Number(number)) => number.to_string(),
            _ => return None,
        };
        (!text.is_empty() && text.chars().count() <= MAX_LABEL_CHARS).then_some(text)
    };
    let mut entities = Vec::with_capacity(entries.len());
    for entry in entries {
        let (Some(entity_type), Some(id), Some(can_send_message)) = (
            label(entry.get("entity_type")),
            label(entry.get("id")),
            label(entry.get("can_send_message")),
        ) else {
            problems.push(ValueProblem {
                reason: "invalid_health_status",
                detail: format!("health_status entity without a readable entity_type, id or can_send_message: {entry}"),
            });
            continue;
        };
        let mut error_codes = Vec::new();
        let mut notes = Vec::new();
        for error in entry
            .get("errors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match error.get("error_code").and_then(Value::as_i64) {
                Some(code) => error_codes.push(code),
                None => problems.push(ValueProblem {
                    reason: "invalid_health_status",
                    detail: format!("{entity_type} {id}: an error without a numeric error_code"),
                }),
            }
            for key in ["error_description", "possible_solution"] {
                if let Some(text) = error.get(key).and_then(Value::as_str) {
                    notes.push(text.to_owned());
                }
            }
        }
        for info in entry
            .get("additional_info")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(text) = info.as_str() {
                notes.push(text.to_owned());
            }
        }
        error_codes.sort_unstable();
        error_codes.dedup();
        entities.push(Entity {
            entity_type,
            id,
            can_send_message,
            error_codes,
            notes,
        });
    }
    (entities, problems)
}

/// The entity of type `entity_type` and id `id` in a `health_status` value (a phone number's
/// own, in its answer beside its account's), with problems for what cannot be read. `None`,
/// with a problem, when the answer does not carry it.
pub fn own_entity(
    health: &Value,
    entity_type: &str,
    id: &str,
) -> (Option<Entity>, Vec<ValueProblem>) {
    let (entities, mut problems) = parse(health);
    let own = entities
        .into_iter()
        .find(|entity| entity.entity_type == entity_type && entity.id == id);
    if own.is_none() {
        problems.push(ValueProblem {
            reason: "invalid_health_status",
            detail: format!("health_status of {id} has no {entity_type} entity for it"),
        });
    }
    (own, problems)
}

/// Whether the entity's state is worth words: not AVAILABLE, or with something Meta says.
pub fn needs_attention(entity: &Entity) -> bool {
    entity.can_send_message != "AVAILABLE"
        || !entity.error_codes.is_empty()
        || !entity.notes.is_empty()
}

/// `meta_whatsapp_health_status{entity_type, entity_id, state}` and
/// `meta_whatsapp_health_error{entity_type, entity_id, error_code}` of `entities`, each
/// entity once.
pub fn families<'a>(entities: impl IntoIterator<Item = &'a Entity>) -> Vec<Family> {
    let mut status = Vec::new();
    let mut errors = Vec::new();
    // An entity named twice (a list whose pages shifted while read) is exported once: two
    // series with one label set would make Prometheus reject the whole scrape.
    let mut seen = std::collections::HashSet::new();
    for entity in entities
        .into_iter()
        .filter(|entity| seen.insert(entity.key()))
    {
        let labels = || {
            vec![
                ("entity_type".to_owned(), entity.entity_type.clone()),
                ("entity_id".to_owned(), entity.id.clone()),
            ]
        };
        let current = entity.can_send_message.as_str();
        let mut states = STATES.to_vec();
        if !states.contains(&current) {
            states.push(current);
        }
        for state in states {
            let mut labels = labels();
            labels.push(("state".to_owned(), state.to_owned()));
            status.push(Sample {
                labels,
                value: if state == current { 1.0 } else { 0.0 },
            });
        }
        for code in &entity.error_codes {
            let mut labels = labels();
            labels.push(("error_code".to_owned(), code.to_string()));
            errors.push(Sample { labels, value: 1.0 });
        }
    }
    vec![
        Family {
            name: "meta_whatsapp_health_status".to_owned(),
            help: "Whether the entity can send messages, as a state set: 1 for its can_send_message (AVAILABLE, LIMITED, BLOCKED; a value Meta adds gets its own series), 0 for the others. Entities: the phone number, the WABA, the business portfolio (BUSINESS) and the app, each once however many accounts report it. A SIP-only call block is not a messaging block. From health_status on the account's node read (account, portfolio, app) and the hourly phone-number list (numbers), or each number's own node where the list refuses the field; Meta's words are on the status page and in the log.".to_owned(),
            samples: status,
        },
        Family {
            name: "meta_whatsapp_health_error".to_owned(),
            help: "Always 1: an error Meta lists for the entity's health (error_code, e.g. 141006 for a payment method problem); the description and possible solution are on the status page and in the log. From health_status.".to_owned(),
            samples: errors,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(families: &[Family], entity_id: &str, state: &str) -> Option<f64> {
        families[0]
            .samples
            .iter()
            .find(|s| {
                s.labels
                    .contains(&("entity_id".to_owned(), entity_id.to_owned()))
                    && s.labels.contains(&("state".to_owned(), state.to_owned()))
            })
            .map(|s| s.value)
    }

    #[test]
    fn metas_limited_example_gives_each_entity_its_state_and_keeps_the_words_out_of_labels() {
        // Meta's example (limited), graph-api.md 7.2.
        let body = json!({"health_status": {"can_send_message": "LIMITED", "entities": [
          {"entity_type": "PHONE_NUMBER", "id": "106540352242922", "can_send_message": "LIMITED", "can_receive_call_sip": "AVAILABLE",
           "additional_info": ["Your display name has not been approved yet. Your message limit will increase after the display name is approved."]},
          {"entity_type": "WABA", "id": "102290129340398", "can_send_message": "AVAILABLE"},
          {"entity_type": "BUSINESS", "id": "506914307656634", "can_send_message": "AVAILABLE"},
          {"entity_type": "APP", "id": "634974688087057", "can_send_message": "AVAILABLE", "can_receive_call_sip": "AVAILABLE"}]},
         "id": "105154286024403"});
        let (entities, problems) = parse(&body["health_status"]);
        assert!(problems.is_empty());
        assert_eq!(entities.len(), 4);
        assert_eq!(entities[0].notes.len(), 1);
        let exported = families(&entities);
        assert_eq!(state(&exported, "106540352242922", "LIMITED"), Some(1.0));
        assert_eq!(state(&exported, "106540352242922", "AVAILABLE"), Some(0.0));
        assert_eq!(state(&exported, "506914307656634", "AVAILABLE"), Some(1.0));
        assert_eq!(exported[0].samples.len(), 4 * 3);
        assert!(exported[1].samples.is_empty());
        for sample in exported.iter().flat_map(|f| &f.samples) {
            assert!(sample
                .labels
                .iter()
                .all(|(_, v)| !v.contains("display name")));
        }
    }

    #[test]
    fn metas_available_example_gives_the_numbers_own_entity_from_its_answer() {
        // Meta's example (available), graph-api.md 7.2: the number's answer names it first.
        let health = json!({"can_send_message": "AVAILABLE", "entities": [
          {"entity_type": "PHONE_NUMBER", "id": "106540352242922", "can_send_message": "AVAILABLE", "can_receive_call_sip": "AVAILABLE"},
          {"entity_type": "WABA", "id": "102290129340398", "can_send_message": "AVAILABLE"},
          {"entity_type": "BUSINESS", "id": "506914307656634", "can_send_message": "AVAILABLE"},
          {"entity_type": "APP", "id": "634974688087057", "can_send_message": "AVAILABLE", "can_receive_call_sip": "AVAILABLE"}]});
        let (own, problems) = own_entity(&health, "PHONE_NUMBER", "106540352242922");
        assert!(problems.is_empty(), "{problems:?}");
        let own = own.expect("the number's entity");
        assert!(!needs_attention(&own));
        let exported = families([&own]);
        assert_eq!(state(&exported, "106540352242922", "AVAILABLE"), Some(1.0));
        assert_eq!(exported[0].samples.len(), 3);
        // Another number's answer does not carry this one: nothing, and a problem saying so.
        let (other, problems) = own_entity(&health, "PHONE_NUMBER", "1");
        assert!(other.is_none());
        assert_eq!(problems[0].reason, "invalid_health_status");
        // Named twice, exported once.
        assert_eq!(families([&own, &own])[0].samples.len(), 3);
    }

    #[test]
    fn a_blocked_waba_gives_its_error_code_and_a_sip_only_block_is_not_a_messaging_block() {
        let blocked = json!({"can_send_message": "BLOCKED", "entities": [
          {"entity_type": "WABA", "id": "102290129340398", "can_send_message": "BLOCKED",
           "errors": [{"error_code": 141006, "error_description": "There is an error with the payment method.",
                       "possible_solution": "There was an error with your payment method. Please add a new payment method to the account."}]},
          {"entity_type": "BUSINESS", "id": "506914307656634", "can_send_message": "AVAILABLE"},
          {"entity_type": "APP", "id": "634974688087057", "can_send_message": "AVAILABLE"}]});
        let (entities, _) = parse(&blocked);
        let exported = families(&entities);
        assert_eq!(state(&exported, "102290129340398", "BLOCKED"), Some(1.0));
        assert_eq!(exported[1].samples.len(), 1);
        assert!(exported[1].samples[0]
            .labels
            .contains(&("error_code".to_owned(), "141006".to_owned())));
        assert_eq!(entities[0].notes.len(), 2);
        // Overall BLOCKED by SIP alone: every entity can send, so nothing is BLOCKED here.
        let sip = json!({"can_send_message": "BLOCKED", "entities": [
          {"entity_type": "PHONE_NUMBER", "id": "1", "can_send_message": "AVAILABLE", "can_receive_call_sip": "BLOCKED",
           "errors": [{"error_code": 138024, "error_description": "SIP"}]}]});
        let (entities, _) = parse(&sip);
        let exported = families(&entities);
        assert_eq!(state(&exported, "1", "BLOCKED"), Some(0.0));
        assert_eq!(state(&exported, "1", "AVAILABLE"), Some(1.0));
    }

    #[test]
    fn unknown_values_are_their_own_states_and_unreadable_entities_are_problems() {
        let body = json!({"entities": [
          {"entity_type": "BUSINESS_PROFILE", "id": "7", "can_send_message": "PAUSED"},
          {"entity_type": "WABA", "can_send_message": "AVAILABLE"},
          {"entity_type": "APP", "id": "8", "can_send_message": "AVAILABLE", "errors": [{"error_code": "x"}]}]});
        let (entities, problems) = parse(&body);
        assert_eq!(entities.len(), 2);
        assert_eq!(problems.len(), 2);
        let exported = families(&entities);
        assert_eq!(state(&exported, "7", "PAUSED"), Some(1.0));
        assert_eq!(state(&exported, "7", "BLOCKED"), Some(0.0));
        assert_eq!(parse(&json!({"can_send_message": "AVAILABLE"})).1.len(), 1);
    }
}

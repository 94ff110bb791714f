//! What Meta says in words about the health of the entities an account exports: each
//! error's description and possible solution, and `additional_info`.
//!
//! Free text never goes into labels (graph-api.md 7.2). It is logged once per change of an
//! entity's state (its `can_send_message` and error codes), at WARN while it cannot send
//! freely and at INFO when it can again, and the entities that need attention are kept for
//! the status page. Entities come from several reads (the node read names the WABA, the
//! business and the app; the list or the numbers' own reads name the numbers): each read
//! replaces what it reported before, so a number the list no longer names leaves the page.

use std::collections::BTreeMap;

use crate::convert::whatsapp::health::{self, Entity};
use crate::poller::read::Read;

/// The state of an entity as far as the log is concerned.
type Logged = (String, Vec<i64>);

/// The current entities of one account, and what was logged of each.
#[derive(Debug, Default)]
pub struct HealthNotes {
    /// By read, then by entity key: what the read reported last.
    current: BTreeMap<Read, BTreeMap<String, Entity>>,
    /// By entity key: the state last logged.
    logged: BTreeMap<String, Logged>,
}

impl HealthNotes {
    /// Takes the entities that `read` reported for account `waba_id` (those it exports),
    /// replacing what that read reported before, and logs each whose state changed.
    pub fn observe<'a>(
        &mut self,
        waba_id: &str,
        read: Read,
        entities: impl IntoIterator<Item = &'a Entity>,
    ) {
        let mut reported = BTreeMap::new();
        for entity in entities {
            let key = entity.key();
            let state = (entity.can_send_message.clone(), entity.error_codes.clone());
            let before = self.logged.get(&key);
            if before != Some(&state) {
                log_change(waba_id, entity, before.is_some());
                self.logged.insert(key.clone(), state);
            }
            reported.insert(key, entity.clone());
        }
        self.current.insert(read, reported);
        let current = &self.current;
        self.logged
            .retain(|key, _| current.values().any(|entities| entities.contains_key(key)));
    }

    /// The entities that cannot send freely or carry Meta's words, for the status page.
    pub fn attention(&self) -> Vec<Entity> {
        self.current
            .values()
            .flat_map(BTreeMap::values)
            .filter(|entity| health::needs_attention(entity))
            .cloned()
            .collect()
    }
}

/// Logs an entity's new state; an entity first seen AVAILABLE with nothing to say is not news.
fn log_change(waba_id: &str, entity: &Entity, seen_before: bool) {
    let words = entity.notes.join(" | ");
    let codes: Vec<String> = entity.error_codes.iter().map(i64::to_string).collect();
    if health::needs_attention(entity) {
        tracing::warn!(
            waba_id,
            entity_type = %entity.entity_type,
            entity_id = %entity.id,
            can_send_message = %entity.can_send_message,
            error_codes = %codes.join(","),
            meta_says = %words,
            "WhatsApp health: the entity cannot send messages freely"
        );
    } else if seen_before {
        tracing::info!(
            waba_id,
            entity_type = %entity.entity_type,
            entity_id = %entity.id,
            "WhatsApp health: the entity can send messages again"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(id: &str, state: &str, codes: &[i64], notes: &[&str]) -> Entity {
        Entity {
            entity_type: "PHONE_NUMBER".to_owned(),
            id: id.to_owned(),
            can_send_message: state.to_owned(),
            error_codes: codes.to_vec(),
            notes: notes.iter().map(|note| (*note).to_owned()).collect(),
        }
    }

    #[test]
    fn each_read_replaces_its_own_entities_and_only_attention_is_kept_for_the_page() {
        let mut notes = HealthNotes::default();
        let limited = entity("1", "LIMITED", &[], &["display name not approved"]);
        notes.observe(
            "W",
            Read::PhoneNumbers,
            [&limited, &entity("2", "AVAILABLE", &[], &[])],
        );
        let waba = Entity {
            entity_type: "WABA".to_owned(),
            ..entity("W", "BLOCKED", &[141006], &["payment method"])
        };
        notes.observe("W", Read::Account, [&waba]);
        let ids: Vec<String> = notes.attention().iter().map(Entity::key).collect();
        assert_eq!(ids, ["WABA:W", "PHONE_NUMBER:1"]);
        // The list reads again without number 1's trouble: the page forgets it, the account
        // read's entity stays.
        notes.observe(
            "W",
            Read::PhoneNumbers,
            [&entity("1", "AVAILABLE", &[], &[])],
        );
        let ids: Vec<String> = notes.attention().iter().map(Entity::key).collect();
        assert_eq!(ids, ["WABA:W"]);
        assert!(!notes.logged.contains_key("PHONE_NUMBER:2"));
        assert_eq!(
            notes.logged.get("PHONE_NUMBER:1"),
            Some(&("AVAILABLE".to_owned(), Vec::new()))
        );
    }

    #[test]
    fn a_state_is_logged_once_per_change_with_metas_words() {
        let log = crate::logging::capture::Log::default();
        let _capture = log.capture();
        let mut notes = HealthNotes::default();
        let limited = entity("1", "LIMITED", &[], &["display name not approved"]);
        for _ in 0..3 {
            notes.observe("W", Read::PhoneNumbers, [&limited]);
        }
        let text = log.text();
        assert_eq!(
            text.matches("cannot send messages freely").count(),
            1,
            "{text}"
        );
        assert!(text.contains("display name not approved"), "{text}");
        notes.observe(
            "W",
            Read::PhoneNumbers,
            [&entity("1", "AVAILABLE", &[], &[])],
        );
        assert!(log.text().contains("can send messages again"));
        // First seen AVAILABLE with nothing to say: not news.
        notes.observe(
            "W",
            Read::PhoneNumbers,
            [&entity("3", "AVAILABLE", &[], &[])],
        );
        assert!(!log.text().contains("entity_id=3"), "{}", log.text());
    }
}

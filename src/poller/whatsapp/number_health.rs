//! Each phone number's own `health_status` (graph-api.md 7.2), read number by number where
//! the phone-number list refuses the field.
//!
//! The account's node read names the WABA, the business portfolio and the app, never a
//! number: a number's own entity comes only with the number as the target. The poll asks for
//! the field on the phone-number list, which costs no call of its own. An account whose list
//! edge refuses it (Graph's "nonexisting field" error naming `health_status`) has its list
//! read again at once without it, and its numbers read node by node
//! (`GET /{phone-number-id}?fields=health_status`, sent together, so batched), at most
//! [`NUMBERS_PER_TURN`] numbers once an hour: each is a WhatsApp Business Management call,
//! and Meta allows about 200 of those an hour per account. An account with more numbers has
//! them read in turns. The list is asked for the field again after a day, since edges gain
//! fields.
//!
//! Each number stands on its own: one whose read fails keeps the entity it had, and is asked
//! again at the next poll (that number alone); an entity not confirmed for a whole rotation
//! plus the target's staleness limit is no longer exported, as any value that goes stale.
//! The read as a whole fails only when every number it asked failed.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::super::{mentions, single_item_error, PollContext, PollError};
use crate::config::WabaTarget;
use crate::convert::whatsapp::health::{self, Entity};
use crate::convert::{Converted, ValueProblem};
use crate::graph::{ErrorClass, GraphRequest};

/// The field, as Graph names it in its errors.
const FIELD: &str = "health_status";
/// The most numbers read in one turn: one batch call.
pub const NUMBERS_PER_TURN: usize = 50;
/// How often a turn is taken.
pub const TURN_EVERY: i64 = 3600;
/// How long the list is not asked for the field after refusing it.
pub const ASK_LIST_AGAIN_AFTER: i64 = 24 * 3600;

/// One number's entity and when Meta last gave it.
#[derive(Debug)]
struct Known {
    entity: Entity,
    confirmed_at: i64,
}

/// Where the list stands on `health_status`, and the numbers read one by one.
#[derive(Debug, Default)]
pub struct NumberHealth {
    /// When the list last refused the field, until it carries it again.
    list_refused_at: Option<i64>,
    /// The last entity of each number read on its own node, by phone number id.
    known: BTreeMap<String, Known>,
    /// When the last turn was taken.
    turn_at: Option<i64>,
    /// Where the next turn starts in the sorted ids, for accounts with more numbers than a
    /// turn reads.
    next_from: usize,
    /// Numbers whose read failed, asked again at the next poll.
    retry: Vec<String>,
}

impl NumberHealth {
    /// Whether the list is asked for `health_status` at `now`.
    pub fn on_list(&self, now: i64) -> bool {
        self.list_refused_at
            .is_none_or(|at| now >= at.saturating_add(ASK_LIST_AGAIN_AFTER) || now < at)
    }

    /// Whether `error`, the answer to a list read that asked for the field, is the list
    /// refusing it: code 100 naming `health_status`. Remembered from `now` if so.
    pub fn refused_by_list(&mut self, waba_id: &str, error: &PollError, now: i64) -> bool {
        let refused = error
            .graph_error()
            .filter(|error| error.class() == ErrorClass::InvalidParameter)
            .and_then(|error| error.api_error())
            .is_some_and(|api| mentions(&api.message, FIELD));
        if refused {
            tracing::info!(
                waba_id,
                "the phone-number list does not carry health_status; reading each number's health on its own node, at most {NUMBERS_PER_TURN} numbers an hour, and asking the list again in a day"
            );
            self.list_refused_at = Some(now);
        }
        refused
    }

    /// The list answered with the field: the numbers' own reads are no longer needed.
    pub fn carried_by_list(&mut self) {
        self.list_refused_at = None;
        self.known.clear();
        self.turn_at = None;
        self.retry.clear();
    }

    /// Whether numbers are read one by one: the list refused the field and has not carried
    /// it since (asking it again after a day, it may refuse again).
    pub fn reads_numbers(&self) -> bool {
        self.list_refused_at.is_some()
    }

    /// The entities of the numbers read on their own nodes that are still confirmed.
    pub fn entities(&self) -> impl Iterator<Item = &Entity> {
        self.known.values().map(|known| &known.entity)
    }

    /// Takes a turn of per-number reads of the numbers in `owned` when one is due (and asks
    /// the numbers that failed at the last poll again), and returns the health of every
    /// confirmed number, with whether any call was made.
    pub async fn read(
        &mut self,
        context: &PollContext<'_>,
        waba: &WabaTarget,
        owned: &HashSet<String>,
        now: i64,
    ) -> (Result<Converted, PollError>, bool) {
        let mut ids: Vec<&String> = owned.iter().collect();
        ids.sort();
        let turns = i64::try_from(ids.len().div_ceil(NUMBERS_PER_TURN).max(1)).unwrap_or(1);
        let stale_after =
            i64::try_from(waba.schedule.stale_after.as_secs()).unwrap_or(i64::MAX / 4);
        let hold = TURN_EVERY.saturating_mul(turns).saturating_add(stale_after);
        self.known.retain(|id, known| {
            owned.contains(id) && now <= known.confirmed_at.saturating_add(hold)
        });
        self.retry.retain(|id| owned.contains(id));

        let due = self
            .turn_at
            .is_none_or(|at| now >= at.saturating_add(TURN_EVERY) || now < at);
        let mut asked: Vec<String> = std::mem::take(&mut self.retry);
        if due && !ids.is_empty() {
            let start = self.next_from % ids.len();
            let turn = NUMBERS_PER_TURN.min(ids.len());
            for id in ids.iter().cycle().skip(start).take(turn) {
                if !asked.contains(id) {
                    asked.push((*id).clone());
                }
            }
            self.next_from = start + turn;
            self.turn_at = Some(now);
        }
        if asked.is_empty() {
            return (Ok(self.converted(Vec::new())), false);
        }
        let requests: Vec<GraphRequest> = asked
            .iter()
            .map(|id| GraphRequest::whatsapp_phone_number(&waba.id, id, FIELD))
            .collect();
        let answers = context
            .client
            .get_all(&requests, &waba.credentials.token)
            .await;
        let mut problems = Vec::new();
        let mut first_failure = None;
        let mut answered = 0;
        for (id, answer) in asked.into_iter().zip(answers) {
            match answer {
                Ok(body) => {
                    answered += 1;
                    self.confirm(&id, &body, now, &mut problems);
                }
                Err(error) => {
                    tracing::warn!(waba_id = %waba.id, phone_number_id = %id, error_class = error.class().as_str(), error = %error, "a phone number's health read failed; it keeps its last state until it goes stale and is asked again at the next poll");
                    first_failure.get_or_insert(error);
                    self.retry.push(id);
                }
            }
        }
        match first_failure {
            Some(error) if answered == 0 => (Err(single_item_error(error)), true),
            _ => (Ok(self.converted(problems)), true),
        }
    }

    /// Records the entity of number `id` from its node's answer `body`.
    fn confirm(&mut self, id: &str, body: &Value, now: i64, problems: &mut Vec<ValueProblem>) {
        let Some(value) = body.get(FIELD).filter(|value| !value.is_null()) else {
            problems.push(ValueProblem {
                reason: "invalid_health_status",
                detail: format!("phone number {id}: the answer has no health_status"),
            });
            return;
        };
        let (own, found) = health::own_entity(value, "PHONE_NUMBER", id);
        problems.extend(found);
        if let Some(entity) = own {
            self.known.insert(
                id.to_owned(),
                Known {
                    entity,
                    confirmed_at: now,
                },
            );
        }
    }

    fn converted(&self, problems: Vec<ValueProblem>) -> Converted {
        Converted {
            families: health::families(self.entities()),
            problems,
            ..Converted::default()
        }
    }
}

//! Which WhatsApp account exports a phone number's own series, or a health entity's, when
//! several report it.
//!
//! Since the WABA split (graph-api.md 7.8) one phone number can sit under several Messaging
//! accounts, and each of them lists it on `/{waba}/phone_numbers`. The number's quality,
//! limit and throughput are the number's, not the account's, so they must be exported once:
//! summed or counted per account they would repeat. Each account's poll claims the numbers it
//! lists, and the claim lasts two of its intervals; of the accounts with a live claim, the
//! one with the lowest id exports the number. Deterministic, so every replica and every
//! restart picks the same account, and self-healing: an account that stops listing a number,
//! fails its list read or is removed stops renewing its claim, and the next one takes over
//! once it lapses (its own held series go stale meanwhile). The accounts that do not own a
//! number still export its info series, which shows where the number is listed.
//!
//! `health_status` works the same way: the business portfolio and the app are in every
//! account's answer. Each kind of object has its own [`SharedOwners`], since a claim call
//! releases what the account no longer reports.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

/// The live claims: phone number id to the accounts listing it and when each claim lapses
/// (unix seconds).
#[derive(Debug, Default)]
pub struct SharedOwners(Mutex<HashMap<String, BTreeMap<String, i64>>>);

impl SharedOwners {
    /// Claims `numbers` for account `waba` at `now` until `now + keep_for`, drops lapsed
    /// claims, and returns the numbers `waba` exports.
    pub fn claim<'a>(
        &self,
        waba: &str,
        numbers: impl IntoIterator<Item = &'a str>,
        now: i64,
        keep_for: i64,
    ) -> HashSet<String> {
        let mut claims = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let listed: HashSet<&str> = numbers.into_iter().collect();
        for number in &listed {
            claims
                .entry((*number).to_owned())
                .or_default()
                .insert(waba.to_owned(), now.saturating_add(keep_for));
        }
        claims.retain(|number, accounts| {
            // A number this account no longer lists is no longer its to export.
            if !listed.contains(number.as_str()) {
                accounts.remove(waba);
            }
            accounts.retain(|_, lapses| *lapses >= now);
            !accounts.is_empty()
        });
        listed
            .into_iter()
            .filter(|number| {
                claims
                    .get(*number)
                    .and_then(|accounts| accounts.keys().next())
                    .is_some_and(|owner| owner == waba)
            })
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(owners: &SharedOwners, waba: &str, numbers: &[&str], now: i64) -> Vec<String> {
        let mut owned: Vec<String> = owners
            .claim(waba, numbers.iter().copied(), now, 1800)
            .into_iter()
            .collect();
        owned.sort();
        owned
    }

    #[test]
    fn a_number_two_accounts_list_is_exported_by_the_lowest_id_whoever_comes_first() {
        let owners = SharedOwners::default();
        // W2 reads first and owns both of its numbers for now.
        assert_eq!(owned(&owners, "W2", &["PN1", "PN9"], 0), ["PN1", "PN9"]);
        // W1 lists PN1 too: it is W1's from now on, and W2 keeps PN9.
        assert_eq!(owned(&owners, "W1", &["PN1", "PN2"], 10), ["PN1", "PN2"]);
        assert_eq!(owned(&owners, "W2", &["PN1", "PN9"], 20), ["PN9"]);
    }

    #[test]
    fn an_owner_that_stops_renewing_hands_the_number_over_once_its_claim_lapses() {
        let owners = SharedOwners::default();
        owned(&owners, "W1", &["PN1"], 0);
        assert!(owned(&owners, "W2", &["PN1"], 100).is_empty());
        // W1 fails its list reads: at 1800 its claim still holds, after it W2 takes over.
        assert!(owned(&owners, "W2", &["PN1"], 1800).is_empty());
        assert_eq!(owned(&owners, "W2", &["PN1"], 1801), ["PN1"]);
        // W1 back: the number returns to it.
        assert_eq!(owned(&owners, "W1", &["PN1"], 2000), ["PN1"]);
    }

    #[test]
    fn a_number_an_account_no_longer_lists_is_released_at_once() {
        let owners = SharedOwners::default();
        owned(&owners, "W1", &["PN1"], 0);
        owned(&owners, "W1", &[], 10);
        assert_eq!(owned(&owners, "W2", &["PN1"], 20), ["PN1"]);
        assert_eq!(
            owners.0.lock().expect("lock").len(),
            1,
            "nothing else is kept"
        );
    }
}

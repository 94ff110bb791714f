//! Token health: what Meta says about every access token the running targets use.
//!
//! With both `graph_api.app_id` and `graph_api.app_secret` set, a background check asks Graph's
//! `debug_token`, with the app token `APP_ID|APP_SECRET`, about every distinct token in use:
//! at start, every `graph_api.token_check_interval`, and soon after a token appears (rotation,
//! a reload, Page tokens that discovery adds). Without both it is off: no calls, no series.
//!
//! This module owns the [`TokenBoard`]: the tokens in use (by [`TokenId`], with the target
//! kinds and the number of targets using each), the last answer about each, and the outcome
//! of the checks. `/metrics` renders its families at scrape time from a snapshot, so a token
//! no longer in use disappears with its series at once, and the status page renders its
//! [`TokenReport`]. The submodules:
//!
//! - [`checker`]: [`TokenHealth`], the handle [`crate::app`] configures and feeds the targets,
//!   and the checking loop it runs;
//! - [`debug_token`]: reading a `debug_token` answer into [`TokenInfo`];
//! - [`scopes`]: the permissions each target kind needs ([`required_scopes`]);
//!
//! A token itself never leaves [`TokenUse`]: the board knows only its [`TokenId`] (the whole
//! digest, so tokens whose labels match are two rows), and the families and the page show its
//! short label ([`TokenId::label`], the one the rate-limit gauges use).

pub mod checker;
pub mod debug_token;
pub mod scopes;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

pub use self::checker::{CheckSettings, ClientSource, TokenHealth};
pub use self::debug_token::{Expiry, TokenError, TokenInfo};
pub use self::scopes::{missing_scopes, required_scopes};

use crate::config::DiscoveryConfig;
use crate::discovery::SourceKind;
use crate::exposition::{self, Family, Sample};
use crate::secret::{AccessToken, TokenId};
use crate::self_metrics::PREFIX;
use crate::target::{Target, TargetKind};

/// One distinct token and what uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenUse {
    /// The token (printed only as `AccessToken([redacted])`).
    pub token: AccessToken,
    /// Its id; its label is the `token_id` label.
    pub token_id: TokenId,
    /// The kinds of target that use it, for the permissions it needs.
    pub kinds: BTreeSet<TargetKind>,
    /// The discovery sources that read with it (the `graph_api` token), for theirs.
    pub discovery: BTreeSet<SourceKind>,
    /// How many targets use it.
    pub targets: usize,
}

/// The distinct tokens of `targets` and of `discovery` (which lists with the `graph_api`
/// token, used by no target when every discovered Page has its own), in id order.
pub fn token_uses(targets: &[Target], discovery: Option<&DiscoveryConfig>) -> Vec<TokenUse> {
    let mut uses: BTreeMap<TokenId, TokenUse> = BTreeMap::new();
    fn use_of<'a>(
        uses: &'a mut BTreeMap<TokenId, TokenUse>,
        token: &AccessToken,
    ) -> &'a mut TokenUse {
        let token_id = *token.id();
        uses.entry(token_id).or_insert_with(|| TokenUse {
            token: token.clone(),
            token_id,
            kinds: BTreeSet::new(),
            discovery: BTreeSet::new(),
            targets: 0,
        })
    }
    for target in targets {
        let token_use = use_of(&mut uses, &target.credentials().token);
        token_use.kinds.insert(target.key().kind);
        token_use.targets += 1;
    }
    if let Some(discovery) = discovery {
        use_of(&mut uses, &discovery.credentials.token)
            .discovery
            .extend(crate::discovery::configured_sources(discovery));
    }
    uses.into_values().collect()
}

/// A failed check, as the status page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckError {
    /// What went wrong (tokens and the app secret are redacted by the client).
    pub message: String,
    /// When, unix seconds.
    pub at: i64,
}

/// What is known about one token in use.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenState {
    /// The token's id; its label is what people see.
    pub token_id: TokenId,
    /// The kinds of target using it.
    pub kinds: BTreeSet<TargetKind>,
    /// The discovery sources reading with it.
    pub discovery: BTreeSet<SourceKind>,
    /// How many targets use it.
    pub targets: usize,
    /// Meta's last readable answer about it; kept when a later check fails.
    pub info: Option<TokenInfo>,
    /// When that answer came, unix seconds.
    pub checked_at: Option<i64>,
    /// The last check about this token that failed, cleared by the next answer.
    pub last_error: Option<CheckError>,
}

impl TokenState {
    /// The permissions the targets using this token need and Meta says it lacks: only for a
    /// valid token (an invalid one lacks everything, which says nothing more).
    pub fn missing_scopes(&self) -> Vec<&'static str> {
        match &self.info {
            Some(info) if info.valid => {
                scopes::missing_for_uses(&self.kinds, &self.discovery, &info.scopes)
            }
            _ => Vec::new(),
        }
    }
}

/// A snapshot of the board, for the status page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenReport {
    /// The check interval while token health is on; `None` when it is off.
    pub interval: Option<Duration>,
    /// Every token in use, in id order (which is label order where labels differ).
    pub tokens: Vec<TokenState>,
    /// When a batch call last succeeded, unix seconds.
    pub last_success: Option<i64>,
    /// The last batch call that failed whole.
    pub last_error: Option<CheckError>,
}

/// Why a check failed: a batch call failed whole (one count per batch, by the outcome label
/// of its error) or one token's entry did (one count per token).
pub const ERROR_REASONS: [&str; 10] = [
    "api_error",
    "http_error",
    "timeout",
    "transport_error",
    "decode_error",
    "too_large",
    "paused",
    "entry_error",
    "invalid_answer",
    "not_answered",
];

#[derive(Default)]
struct BoardState {
    interval: Option<Duration>,
    tokens: BTreeMap<TokenId, TokenState>,
    last_success: Option<i64>,
    last_error: Option<CheckError>,
    errors: BTreeMap<&'static str, u64>,
}

/// Token health state, shared by the checker (writes) and the HTTP handlers (read).
#[derive(Default)]
pub struct TokenBoard {
    state: Mutex<BoardState>,
}

impl TokenBoard {
    fn lock(&self) -> MutexGuard<'_, BoardState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Turns token health on with `interval`, or off (`None`). Off forgets every answer, so
    /// nothing stale is shown; the error counters keep counting across, as counters do.
    pub fn set_interval(&self, interval: Option<Duration>) {
        let mut state = self.lock();
        if interval.is_none() {
            for token in state.tokens.values_mut() {
                token.info = None;
                token.checked_at = None;
                token.last_error = None;
            }
            state.last_success = None;
            state.last_error = None;
        }
        state.interval = interval;
    }

    /// Makes the board hold exactly the tokens of `uses`: answers about tokens still in use
    /// stay, tokens no longer in use go (and their series with them).
    pub fn set_uses(&self, uses: &[TokenUse]) {
        let mut state = self.lock();
        let mut previous = std::mem::take(&mut state.tokens);
        for token_use in uses {
            let entry = previous
                .remove(&token_use.token_id)
                .unwrap_or_else(|| TokenState {
                    token_id: token_use.token_id,
                    kinds: BTreeSet::new(),
                    discovery: BTreeSet::new(),
                    targets: 0,
                    info: None,
                    checked_at: None,
                    last_error: None,
                });
            state.tokens.insert(
                token_use.token_id,
                TokenState {
                    kinds: token_use.kinds.clone(),
                    discovery: token_use.discovery.clone(),
                    targets: token_use.targets,
                    ..entry
                },
            );
        }
    }

    /// Meta's answer about the token `token_id`. Returns whether Meta says it is invalid
    /// while the board did not know that yet (for the log). A token no longer in use is
    /// ignored.
    pub(crate) fn token_checked(&self, token_id: &TokenId, info: TokenInfo, at: i64) -> bool {
        let mut state = self.lock();
        let Some(entry) = state.tokens.get_mut(token_id) else {
            return false;
        };
        let newly_invalid = !info.valid && entry.info.as_ref().is_none_or(|old| old.valid);
        entry.info = Some(info);
        entry.checked_at = Some(at);
        entry.last_error = None;
        newly_invalid
    }

    /// A check of one token that failed for `reason` (one of [`ERROR_REASONS`]).
    pub(crate) fn token_failed(
        &self,
        token_id: &TokenId,
        reason: &'static str,
        message: String,
        at: i64,
    ) {
        let mut state = self.lock();
        *state.errors.entry(reason).or_default() += 1;
        if let Some(entry) = state.tokens.get_mut(token_id) {
            entry.last_error = Some(CheckError { message, at });
        }
    }

    /// A batch call that failed whole for `reason`, about the tokens `token_ids`.
    pub(crate) fn batch_failed(
        &self,
        token_ids: &[TokenId],
        reason: &'static str,
        message: String,
        at: i64,
    ) {
        let mut state = self.lock();
        *state.errors.entry(reason).or_default() += 1;
        for token_id in token_ids {
            if let Some(entry) = state.tokens.get_mut(token_id) {
                entry.last_error = Some(CheckError {
                    message: message.clone(),
                    at,
                });
            }
        }
        state.last_error = Some(CheckError { message, at });
    }

    /// A batch call that Graph answered (whatever each entry said).
    pub(crate) fn batch_succeeded(&self, at: i64) {
        self.lock().last_success = Some(at);
    }

    /// The ids of the tokens in use.
    pub fn token_ids(&self) -> BTreeSet<TokenId> {
        self.lock().tokens.keys().copied().collect()
    }

    /// A snapshot for the status page; no tokens while token health is off.
    pub fn report(&self) -> TokenReport {
        let state = self.lock();
        TokenReport {
            interval: state.interval,
            tokens: state.tokens.values().cloned().collect(),
            last_success: state.last_success,
            last_error: state.last_error.clone(),
        }
    }

    /// The token families, from the last answers: nothing while token health is off.
    pub fn families(&self) -> Vec<Family> {
        let state = self.lock();
        if state.interval.is_none() {
            return Vec::new();
        }
        let labels = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect()
        };
        let mut valid = Vec::new();
        let mut expires = Vec::new();
        let mut data_access = Vec::new();
        let mut missing = Vec::new();
        for token in state.tokens.values() {
            let Some(info) = &token.info else { continue };
            let label = token.token_id.label();
            let id = label.as_str();
            valid.push(Sample {
                labels: labels(&[
                    ("token_id", id),
                    ("type", info.kind.as_deref().unwrap_or("unknown")),
                ]),
                value: if info.valid { 1.0 } else { 0.0 },
            });
            if let Some(expiry) = info.expires {
                expires.push(Sample {
                    labels: labels(&[("token_id", id)]),
                    value: expiry.seconds(),
                });
            }
            if let Some(at) = info.data_access_expires {
                data_access.push(Sample {
                    labels: labels(&[("token_id", id)]),
                    value: at as f64,
                });
            }
            for scope in token.missing_scopes() {
                missing.push(Sample {
                    labels: labels(&[("token_id", id), ("scope", scope)]),
                    value: 1.0,
                });
            }
        }
        let mut families = vec![
            Family {
                name: "meta_token_valid".to_owned(),
                help: "1 if Meta's debug_token says the access token is valid, 0 if not (expired, revoked, unparsable), by token_id (`token:` and the first 8 hex digits of the token's SHA-256, never the token) and Meta's token type (USER, PAGE, SYSTEM_USER, APP; unknown if not given). From the background token check (at start, every graph_api.token_check_interval and when a token appears), not from the scrape.".to_owned(),
                samples: valid,
            },
            Family {
                name: "meta_token_expires_timestamp_seconds".to_owned(),
                help: "When the access token expires (unix seconds); +Inf for a token that never expires. From the background debug_token check, not from the scrape.".to_owned(),
                samples: expires,
            },
            Family {
                name: "meta_token_data_access_expires_timestamp_seconds".to_owned(),
                help: "When the token's access to user data lapses (unix seconds; 90 days after the person last used the app); no series for a token without a data-access expiry (Meta answered 0 or nothing). From the background debug_token check, not from the scrape.".to_owned(),
                samples: data_access,
            },
            Family {
                name: "meta_token_missing_scope".to_owned(),
                help: "1 for each permission that the targets using the token need and Meta says the (valid) token lacks. From the background debug_token check, not from the scrape.".to_owned(),
                samples: missing,
            },
        ];
        if let Some(at) = state.last_success {
            families.push(Family {
                name: format!("{PREFIX}_token_check_last_success_timestamp_seconds"),
                help: "When a token health batch call (debug_token for every token in use) last got an answer from Meta (unix seconds).".to_owned(),
                samples: vec![Sample {
                    labels: Vec::new(),
                    value: at as f64,
                }],
            });
        }
        families.retain(|family| !family.samples.is_empty());
        families
    }

    /// The token families and the check error counter in the text format; empty while token
    /// health is off.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let enabled = self.lock().interval.is_some();
        if !enabled {
            return text;
        }
        for family in exposition::encode(self.families()) {
            text.push_str(&family.header);
            text.push_str(&family.lines);
        }
        let name = format!("{PREFIX}_token_check_errors_total");
        text.push_str(&exposition::header(
            &name,
            "Token health checks that failed, by reason: a batch call failed whole (api_error, http_error, timeout, transport_error, decode_error, too_large, paused; one per batch, e.g. a rejected app token is api_error) or one token's entry did (entry_error: Graph answered an error; invalid_answer: the answer was not a debug_token answer; not_answered: Meta timed out on it twice; one per token). An invalid token is not a check error: see meta_token_valid.",
            "counter",
        ));
        let errors = self.lock().errors.clone();
        for reason in ERROR_REASONS {
            let count = errors.get(reason).copied().unwrap_or(0);
            exposition::write_sample(
                &mut text,
                &name,
                &[("reason".to_owned(), reason.to_owned())],
                count as f64,
            );
        }
        text
    }
}

#[cfg(test)]
mod tests;

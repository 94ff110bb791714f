//! Collecting due requests into batch calls: which requests share a batch, and when it goes.
//!
//! With `polling.batch` on, a GET does not go out at once: it joins the open batch of its
//! token, or opens one. A batch goes when it holds [`MAX_BATCH_ENTRIES`] requests or when the
//! window (`polling.batch_window`) has passed since it opened, whichever comes first. Batches
//! are keyed by the token's whole digest ([`TokenId`]) because a batch call carries one token, in its
//! `Authorization` header (and one `appsecret_proof`), for all its entries: requests with
//! different tokens never share one. They are keyed by [`Api`] too, as a batch goes to one
//! versioned root and `graph_api.marketing_version` can differ from `graph_api.version`. This module only decides; sending a collected batch and
//! answering each request is [`super::send`]'s.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

use super::MAX_BATCH_ENTRIES;
use crate::graph::error::GraphError;
use crate::graph::request::{Api, GraphRequest};
use crate::secret::{AccessToken, TokenId};

/// What a request that joined a batch gets back.
pub(crate) enum Reply {
    /// Its entry's answer (or why it was not sent, such as a pause of its scope).
    Answered(Result<Value, GraphError>),
    /// It must go alone. The request's own task sends it, so cancelling its poll cancels
    /// the call.
    SendAlone {
        /// Graph answered its entry `null`, or the batch passed its deadline or failed as a
        /// whole: the single call tells whether this request's object hung it, and a slow
        /// or timed-out one then polls solo. `false` when it was just the only one left.
        suspect: bool,
    },
}

/// One request waiting in a batch, and where its answer goes.
pub(crate) struct Waiting {
    pub(crate) request: GraphRequest,
    pub(crate) reply: oneshot::Sender<Reply>,
}

/// A batch ready to send: its token and its requests in the order they joined.
pub(crate) struct Collected {
    pub(crate) token: AccessToken,
    pub(crate) waiting: Vec<Waiting>,
}

/// What batches are keyed by: one token, one API version.
pub(crate) type BatchKey = (TokenId, Api);

/// What joining did, and what the caller must do about it.
pub(crate) enum Joined {
    /// The request opened a new batch: send it with [`Batcher::take`] once the window is over.
    Opened {
        /// The token's id and the API, the batch's key.
        key: BatchKey,
        /// Which batch of that token this is, so a late timer cannot send a later one.
        batch: u64,
    },
    /// The request joined an open batch, whose timer is already running.
    Waiting,
    /// The request filled its batch: send it now.
    Full(Collected),
}

struct Open {
    batch: u64,
    token: AccessToken,
    waiting: Vec<Waiting>,
}

#[derive(Default)]
struct Batches {
    open: HashMap<BatchKey, Open>,
    opened: u64,
}

/// The open batches, one per token at most.
pub(crate) struct Batcher {
    window: Duration,
    timeout: Duration,
    batches: Mutex<Batches>,
}

impl Batcher {
    /// Batches that wait up to `window` for company and whose HTTP request may take up to
    /// `timeout`.
    pub(crate) fn new(window: Duration, timeout: Duration) -> Self {
        Self {
            window,
            timeout,
            batches: Mutex::new(Batches::default()),
        }
    }

    /// How long a batch stays open.
    pub(crate) fn window(&self) -> Duration {
        self.window
    }

    /// The deadline of a batch call's HTTP request (`polling.batch_timeout`); also the line
    /// between a prompt and a slow single call.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    fn lock(&self) -> MutexGuard<'_, Batches> {
        // Nothing here is left half-done by a panic (each change is one map operation), so
        // a poisoned lock is still consistent.
        self.batches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds `request` to the open batch of `token` and its API, opening one if there is none.
    pub(crate) fn join(
        &self,
        request: &GraphRequest,
        token: &AccessToken,
        reply: oneshot::Sender<Reply>,
    ) -> Joined {
        let key = (*token.id(), request.api);
        let waiting = Waiting {
            request: request.clone(),
            reply,
        };
        let mut batches = self.lock();
        if let Some(open) = batches.open.get_mut(&key) {
            open.waiting.push(waiting);
            if open.waiting.len() < MAX_BATCH_ENTRIES {
                return Joined::Waiting;
            }
            return match batches.open.remove(&key) {
                Some(full) => Joined::Full(Collected {
                    token: full.token,
                    waiting: full.waiting,
                }),
                None => Joined::Waiting,
            };
        }
        batches.opened += 1;
        let batch = batches.opened;
        batches.open.insert(
            key,
            Open {
                batch,
                token: token.clone(),
                waiting: vec![waiting],
            },
        );
        Joined::Opened { key, batch }
    }

    /// The batch `batch` of `key`, if it is still open (it is not when it filled up
    /// first and went already).
    pub(crate) fn take(&self, key: &BatchKey, batch: u64) -> Option<Collected> {
        let mut batches = self.lock();
        if batches.open.get(key)?.batch != batch {
            return None;
        }
        let open = batches.open.remove(key)?;
        Some(Collected {
            token: open.token,
            waiting: open.waiting,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::COLLIDING_TOKENS;

    fn request(id: &str) -> GraphRequest {
        GraphRequest::object_fields(id, "name")
    }

    fn join(batcher: &Batcher, id: &str, token: &AccessToken) -> Joined {
        let (reply, _answer) = oneshot::channel();
        batcher.join(&request(id), token, reply)
    }

    #[test]
    fn the_fiftieth_request_of_a_token_fills_its_batch_and_the_next_opens_another() {
        let batcher = Batcher::new(Duration::from_secs(1), Duration::from_secs(10));
        let token = AccessToken::new("token-a");
        let first = join(&batcher, "0", &token);
        let Joined::Opened { key, batch } = first else {
            panic!("the first request opens a batch");
        };
        for n in 1..MAX_BATCH_ENTRIES - 1 {
            assert!(matches!(
                join(&batcher, &n.to_string(), &token),
                Joined::Waiting
            ));
        }
        let Joined::Full(full) = join(&batcher, "49", &token) else {
            panic!("the 50th request fills the batch");
        };
        let ids: Vec<&str> = full
            .waiting
            .iter()
            .map(|waiting| waiting.request.object_id.as_str())
            .collect();
        assert_eq!(ids.len(), MAX_BATCH_ENTRIES);
        assert_eq!((ids[0], ids[49]), ("0", "49"));
        // Its timer finds nothing to send; the 51st request opens a new batch.
        assert!(batcher.take(&key, batch).is_none());
        assert!(matches!(
            join(&batcher, "50", &token),
            Joined::Opened { .. }
        ));
    }

    /// Requests with `a` and then `b` each open a batch (the second must not join the first);
    /// `meanwhile` runs while both are open; returns both batches.
    fn two_batches(
        batcher: &Batcher,
        a: &AccessToken,
        b: &AccessToken,
        meanwhile: impl FnOnce(),
    ) -> (Collected, Collected) {
        let Joined::Opened {
            key: a_id,
            batch: a_batch,
        } = join(batcher, "1", a)
        else {
            panic!("opens");
        };
        let Joined::Opened {
            key: b_id,
            batch: b_batch,
        } = join(batcher, "2", b)
        else {
            panic!("a second token opens its own batch");
        };
        meanwhile();
        (
            batcher.take(&a_id, a_batch).expect("open"),
            batcher.take(&b_id, b_batch).expect("open"),
        )
    }

    #[test]
    fn requests_with_different_tokens_never_share_a_batch() {
        let batcher = Batcher::new(Duration::from_secs(1), Duration::from_secs(10));
        let (a, b) = (AccessToken::new("token-a"), AccessToken::new("token-b"));
        let (a_batch, b_batch) = two_batches(&batcher, &a, &b, || {
            assert!(matches!(join(&batcher, "3", &a), Joined::Waiting));
        });
        assert_eq!(a_batch.token.expose(), "token-a");
        assert_eq!(a_batch.waiting.len(), 2);
        assert_eq!(b_batch.token.expose(), "token-b");
        assert_eq!(b_batch.waiting.len(), 1);
    }

    #[test]
    fn tokens_with_the_same_label_never_share_a_batch() {
        let batcher = Batcher::new(Duration::from_secs(1), Duration::from_secs(10));
        let (a, b) = (
            AccessToken::new(COLLIDING_TOKENS.0),
            AccessToken::new(COLLIDING_TOKENS.1),
        );
        assert_eq!(a.id().label(), b.id().label());
        let (a_batch, b_batch) = two_batches(&batcher, &a, &b, || {});
        assert_eq!(a_batch.token.expose(), COLLIDING_TOKENS.0);
        assert_eq!(b_batch.token.expose(), COLLIDING_TOKENS.1);
        assert_eq!((a_batch.waiting.len(), b_batch.waiting.len()), (1, 1));
    }

    #[test]
    fn a_late_timer_never_sends_a_later_batch_of_its_token() {
        let batcher = Batcher::new(Duration::from_secs(1), Duration::from_secs(10));
        let token = AccessToken::new("token-a");
        let Joined::Opened { key, batch } = join(&batcher, "1", &token) else {
            panic!("opens");
        };
        assert!(batcher.take(&key, batch).is_some());
        let Joined::Opened { batch: later, .. } = join(&batcher, "2", &token) else {
            panic!("opens again");
        };
        assert!(batcher.take(&key, batch).is_none());
        assert_eq!(batcher.take(&key, later).map(|c| c.waiting.len()), Some(1));
    }
}

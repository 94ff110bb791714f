//! What to ask the Graph API for one target, and how to read the answers.
//!
//! A [`Poller`] holds one target's request plan and the state that outlives a single poll
//! (metrics or fields the API rejected as invalid). [`Poller::poll`] sends the target's
//! requests through the shared [`GraphClient`] and converts the answers; it knows nothing of
//! schedules or the store. A target is all-or-nothing: if any of its requests fails, the poll
//! fails and the previous values stay in place (until they go stale), so a half-updated
//! target never mixes two points in time.

mod campaign;
mod page;
mod whatsapp;

use std::collections::BTreeSet;

use serde_json::Value;

use crate::clock::Clock;
use crate::config::Credentials;
use crate::convert::{Converted, ShapeError};
use crate::graph::{ErrorClass, GraphClient, GraphError, GraphRequest};
use crate::secret::AccessToken;
use crate::target::Target;

/// Everything a poll needs from outside the target.
pub struct PollContext<'a> {
    /// Shared Graph API client.
    pub client: &'a GraphClient,
    /// Wall clock, for time windows and bucket selection.
    pub clock: &'a dyn Clock,
    /// How long a rejected metric or field stays out of requests.
    pub retry_dropped_after: std::time::Duration,
}

/// Why a poll produced nothing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PollError {
    /// A request failed.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A response was JSON but not of the endpoint's shape.
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// Every metric or field was rejected as invalid; nothing is left to ask for.
    #[error("the Graph API rejected every configured metric or field as invalid: {}", .0.join(", "))]
    NothingValid(Vec<String>),
}

impl PollError {
    /// Why this failure stops the target until its credentials or settings change: the
    /// token is invalid, a permission is missing, or the object is gone. Any other failure
    /// is retried at the next interval.
    pub fn disabled_reason(&self) -> Option<&'static str> {
        match self {
            PollError::Graph(graph) => match graph.class() {
                ErrorClass::InvalidToken => Some("invalid_token"),
                ErrorClass::PermissionDenied => Some("permission_denied"),
                ErrorClass::ObjectUnavailable => Some("object_unavailable"),
                _ => None,
            },
            PollError::NothingValid(_) => Some("no_valid_metrics"),
            PollError::Shape(_) => None,
        }
    }

    /// The failure class, for state, metrics and logs.
    pub fn class(&self) -> &'static str {
        match self {
            PollError::Graph(error) => error.class().as_str(),
            PollError::Shape(_) => "invalid_response",
            PollError::NothingValid(_) => "no_valid_metrics",
        }
    }
}

/// The request plan and carried-over state of one target.
pub enum Poller {
    /// A Page.
    Page(page::PagePoller),
    /// A campaign.
    Campaign(campaign::CampaignPoller),
    /// A WhatsApp Business Account.
    Waba(whatsapp::WabaPoller),
}

impl Poller {
    /// A poller for `target`.
    pub fn new(target: &Target) -> Self {
        match target {
            Target::Page(page) => Poller::Page(page::PagePoller::new(page.clone())),
            Target::Campaign(campaign) => {
                Poller::Campaign(campaign::CampaignPoller::new(campaign.clone()))
            }
            Target::Waba(waba) => Poller::Waba(whatsapp::WabaPoller::new(waba.clone())),
        }
    }

    /// Polls once.
    pub async fn poll(&mut self, context: &PollContext<'_>) -> Result<Converted, PollError> {
        match self {
            Poller::Page(poller) => poller.poll(context).await,
            Poller::Campaign(poller) => poller.poll(context).await,
            Poller::Waba(poller) => poller.poll(context).await,
        }
    }

    /// Sends `credentials` from the next request on: a rotated token keeps the poller (and
    /// what it learned about rejected metrics).
    pub fn set_credentials(&mut self, credentials: &Credentials) {
        match self {
            Poller::Page(poller) => poller.set_credentials(credentials),
            Poller::Campaign(poller) => poller.set_credentials(credentials),
            Poller::Waba(poller) => poller.set_credentials(credentials),
        }
    }

    /// Items the API rejected as invalid so far, for status and metrics.
    pub fn dropped(&self) -> Vec<String> {
        match self {
            Poller::Page(poller) => poller.dropped(),
            Poller::Campaign(poller) => poller.dropped(),
            Poller::Waba(_) => Vec::new(),
        }
    }
}

/// Requests `items` in one call, and on an invalid-parameter error (code 100) works out which
/// items the API rejects, drops them into `dropped`, and returns the answers for the rest.
///
/// Meta answers a retired metric with one error for the whole request, and its message does
/// not always name the metric. When it does, that item goes at once; otherwise the list is
/// split in halves until single items fail alone: at most `2n - 1` requests, and only on the
/// poll where a metric is retired, since dropped items are not asked for again.
async fn fetch_dropping_invalid<T: Clone>(
    client: &GraphClient,
    token: &AccessToken,
    items: Vec<T>,
    name_of: impl Fn(&T) -> &str,
    build: impl Fn(&[T]) -> GraphRequest,
    dropped: &mut BTreeSet<String>,
) -> Result<Vec<(Vec<T>, Value)>, GraphError> {
    let mut answers = Vec::new();
    let mut pending = vec![items];
    while let Some(batch) = pending.pop() {
        if batch.is_empty() {
            continue;
        }
        let error = match client.get(&build(&batch), token).await {
            Ok(body) => {
                answers.push((batch, body));
                continue;
            }
            Err(error) if error.class() == ErrorClass::InvalidParameter => error,
            Err(error) => return Err(error),
        };
        let message = error.api_error().map(|e| e.message.as_str()).unwrap_or("");
        let named = batch
            .iter()
            .position(|item| mentions(message, name_of(item)));
        if batch.len() == 1 || named.is_some() {
            let index = named.unwrap_or(0);
            let mut rest = batch;
            let rejected = rest.remove(index);
            tracing::warn!(
                item = name_of(&rejected),
                error = %error,
                "Graph API rejected a metric or field as invalid; it is no longer requested for this target"
            );
            dropped.insert(name_of(&rejected).to_owned());
            pending.push(rest);
        } else {
            let mut first = batch;
            let second = first.split_off(first.len() / 2);
            pending.push(second);
            pending.push(first);
        }
    }
    Ok(answers)
}

/// Whether `message` names `item` as a whole word (so `page_messages_sent` is not found
/// inside `page_messages_sent_total`).
fn mentions(message: &str, item: &str) -> bool {
    message
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|word| word == item)
}

#[cfg(test)]
mod tests {
    use super::mentions;

    #[test]
    fn an_error_message_names_an_item_only_as_a_whole_word() {
        assert!(mentions(
            "(#100) page_messages_sent is not valid",
            "page_messages_sent"
        ));
        assert!(!mentions(
            "(#100) page_messages_sent_total is not valid",
            "page_messages_sent"
        ));
        assert!(!mentions(
            "(#100) The value must be a valid insights metric",
            "page_messages_sent"
        ));
    }
}

//! Sending batch calls: one `POST /{version}/` of admitted entries, and a collected batch of
//! waiting polls answered entry by entry.
//!
//! Both pass the same in-flight bound, rate-limit admission, usage headers, size cap and
//! error classification as a single GET ([`crate::graph::calls::Calls`]); retries are the
//! client's. A collected batch has its own deadline (`polling.batch_timeout`), well below a
//! single call's: a request answered `null`, or whose batch passed that deadline or failed
//! as a whole, is told to go alone at once ([`Reply::SendAlone`], as a suspect) rather than
//! sent from here, so the requests of a hung batch go out in parallel (within the in-flight
//! bound) and cancelling a poll cancels its call too. Whether a suspect's object then polls
//! solo is decided by its single call ([`crate::graph::solo`]).

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::collect::{Collected, Reply, Waiting};
use super::{batch_field, parse_answers, BatchAnswer, BatchEntry};
use crate::graph::calls::{Calls, HttpRequestType, InFlight};
use crate::graph::error::GraphError;
use crate::graph::request::Api;
use crate::graph::transport;
use crate::graph::usage::{self, Usage};
use crate::secret::{AccessToken, AppSecret, TokenId};

/// One batch call of `entries` (at most [`super::MAX_BATCH_ENTRIES`]) with `token`: a slot,
/// admission of every entry, then [`send_admitted`].
pub(crate) async fn send_once(
    calls: &Calls,
    entries: &[BatchEntry],
    token: &AccessToken,
) -> Result<Vec<Option<BatchAnswer>>, GraphError> {
    let token_id = *token.id();
    let _permit = calls.slot().await?;
    for entry in entries {
        // Entries admitted before a paused one stay counted: the budget errs towards
        // fewer calls, never more.
        calls.admit(&token_id, entry.endpoint, &entry.object_id)?;
    }
    send_admitted(calls, entries, token, &token_id, None).await
}

/// Sends a batch whose entries are admitted and which holds its slot, and records what
/// came back for every entry: its outcome, its usage headers, its throttle. Errors, the
/// batch's and each entry's, have the token and secrets redacted. `deadline` replaces the
/// single-call `request_timeout` for this HTTP request.
async fn send_admitted(
    calls: &Calls,
    entries: &[BatchEntry],
    token: &AccessToken,
    token_id: &TokenId,
    deadline: Option<Duration>,
) -> Result<Vec<Option<BatchAnswer>>, GraphError> {
    calls.count_http_request(HttpRequestType::Batch);
    let in_flight = InFlight::enter(&calls.metrics.requests_in_flight);
    let started = Instant::now();
    let (usage, result) = exchange(calls, entries, token, deadline).await;
    drop(in_flight);
    // The batch's own headers speak for the token; a whole-batch throttle is put on the
    // first entry's object, as Meta names none.
    let lead = entries.first().map_or("", |entry| entry.object_id.as_str());
    calls.limiter.observe(token_id, lead, &usage);
    let result = result.and_then(|body| parse_answers(body, entries.len()));
    match &result {
        Err(error) => {
            for entry in entries {
                calls
                    .metrics
                    .api_requests
                    .with_label_values(&[entry.endpoint.as_str(), error.outcome()])
                    .inc();
            }
            if let Some(entry) = entries.first() {
                calls.record_result(entry.endpoint, token_id, lead, Err(error), &usage);
            }
        }
        Ok(answers) => {
            for (entry, answer) in entries.iter().zip(answers) {
                let outcome = match answer {
                    None => "timeout",
                    Some(BatchAnswer { body: Ok(_), .. }) => "success",
                    Some(BatchAnswer {
                        body: Err(error), ..
                    }) => error.outcome(),
                };
                calls
                    .metrics
                    .api_requests
                    .with_label_values(&[entry.endpoint.as_str(), outcome])
                    .inc();
                if let Some(answer) = answer {
                    let usage = usage::read(&answer.header_map());
                    calls.limiter.observe(token_id, &entry.object_id, &usage);
                    calls.observe_version(entry.api, entry.endpoint, &usage);
                    let body = answer.body.as_ref().map(|_| ());
                    calls.record_result(entry.endpoint, token_id, &entry.object_id, body, &usage);
                }
            }
        }
    }
    tracing::debug!(
        entries = entries.len(),
        outcome = result
            .as_ref()
            .map_or_else(GraphError::outcome, |_| "success"),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "Graph API batch call finished"
    );
    let secret = calls.transport.app_secret().map_or("", AppSecret::expose);
    match result {
        Ok(mut answers) => {
            for (entry, answer) in entries.iter().zip(answers.iter_mut()) {
                let Some(answer) = answer else { continue };
                if let Err(error) = &mut answer.body {
                    let carried = entry.carried.as_ref().map_or("", AccessToken::expose);
                    *error =
                        transport::redact_all(error.clone(), &[token.expose(), secret, carried]);
                }
            }
            Ok(answers)
        }
        Err(error) => {
            let mut secrets = vec![token.expose(), secret];
            secrets.extend(
                entries
                    .iter()
                    .filter_map(|entry| entry.carried.as_ref().map(AccessToken::expose)),
            );
            Err(transport::redact_all(error, &secrets))
        }
    }
}

async fn exchange(
    calls: &Calls,
    entries: &[BatchEntry],
    token: &AccessToken,
    deadline: Option<Duration>,
) -> (Usage, Result<Value, GraphError>) {
    // The batcher keys batches by API, so the first entry speaks for all of them.
    let api = entries.first().map_or(Api::Graph, |entry| entry.api);
    calls
        .transport
        .post_form(api, "batch", batch_field(entries), token, deadline)
        .await
}

/// Sends a collected batch and answers each request as if it had gone alone: its entry's
/// code, headers and body, or the pause the limiter holds it back with (no call). A
/// `null` entry (Graph gave up on it) goes again alone. A batch that passes `deadline` or
/// fails as a whole (a transport error, a 5xx, an answer that is not the array Graph
/// promises) sends every request alone at once, so one bad batch costs its requests at most
/// the deadline and a round trip, never their answers. Requests whose polls were cancelled
/// meanwhile are left out.
pub(crate) async fn send_collected(calls: &Calls, collected: Collected, deadline: Duration) {
    let Collected { token, waiting } = collected;
    let token_id = *token.id();
    let waiting = still_waiting(waiting);
    if waiting.len() <= 1 {
        // A batch of one is a single call with more overhead.
        send_alone(waiting, false);
        return;
    }
    let permit = match calls.slot().await {
        Ok(permit) => permit,
        Err(error) => {
            for waiting in waiting {
                let _ = waiting.reply.send(Reply::Answered(Err(error.clone())));
            }
            return;
        }
    };
    // Admission after the slot, as for a single call; a request held back is answered
    // with its pause and leaves the batch.
    let mut admitted = Vec::with_capacity(waiting.len());
    for waiting in still_waiting(waiting) {
        let request = &waiting.request;
        match calls.admit(&token_id, request.endpoint, &request.object_id) {
            Ok(()) => admitted.push(waiting),
            Err(paused) => {
                let _ = waiting.reply.send(Reply::Answered(Err(paused)));
            }
        }
    }
    if admitted.len() <= 1 {
        // Sent from here, already admitted: asking the limiter again would count it twice.
        if let Some(alone) = admitted.pop() {
            let (answer, _) = calls.send_admitted(&alone.request, &token, &token_id).await;
            let _ = alone.reply.send(Reply::Answered(answer));
        }
        return;
    }
    let entries: Vec<BatchEntry> = admitted
        .iter()
        .map(|waiting| BatchEntry::get(&waiting.request))
        .collect();
    let answered = send_admitted(calls, &entries, &token, &token_id, Some(deadline)).await;
    drop(permit);
    match answered {
        Ok(answers) => {
            for (waiting, answer) in admitted.into_iter().zip(answers) {
                let reply = match answer {
                    Some(answer) => Reply::Answered(answer.body),
                    None => Reply::SendAlone { suspect: true },
                };
                let _ = waiting.reply.send(reply);
            }
        }
        Err(error) => {
            calls.metrics.api_batch_fallbacks.inc();
            if matches!(error, GraphError::Timeout(_)) {
                calls.metrics.api_batch_timeouts.inc();
            }
            tracing::warn!(
                entries = admitted.len(),
                error = %error,
                "a Graph API batch call failed as a whole; sending its requests one by one, at once"
            );
            send_alone(admitted, true);
        }
    }
}

/// The requests whose polls still wait for an answer.
fn still_waiting(waiting: Vec<Waiting>) -> Vec<Waiting> {
    waiting
        .into_iter()
        .filter(|waiting| !waiting.reply.is_closed())
        .collect()
}

/// Tells each request to go alone; `suspect` when its batch went wrong.
fn send_alone(waiting: Vec<Waiting>, suspect: bool) {
    for waiting in waiting {
        let _ = waiting.reply.send(Reply::SendAlone { suspect });
    }
}

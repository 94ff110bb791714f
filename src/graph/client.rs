//! The Graph API client the pollers use: requests in, JSON or classified errors out.
//!
//! [`GraphClient`] is the top layer of [`crate::graph`]: its public calls ([`GraphClient::get`],
//! [`GraphClient::get_all`], [`GraphClient::get_pages`], [`GraphClient::post_batch`]), the
//! retry policy for transient failures, paging of list edges, and the routing of each
//! attempt either alone ([`super::calls`]) or into a batch call ([`super::batch`]), and which
//! targets poll alone because they hung a batch ([`super::solo`]). The HTTP
//! exchange itself (auth header, `appsecret_proof`, size cap, decoding, redaction) is
//! [`super::transport`]'s. Pollers hand it [`GraphRequest`]s and never see URLs, status codes
//! or retries.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use serde_json::Value;
use tokio::sync::oneshot;

use super::batch::collect::{Batcher, Joined, Reply};
use super::batch::{self, BatchAnswer, BatchEntry, MAX_BATCH_ENTRIES};
use super::calls::{Calls, Lane};
use super::error::{ErrorClass, GraphError};
use super::ratelimit::RateLimiter;
use super::request::{Api, Endpoint, GraphRequest};
use super::solo::{SoloReason, SoloTarget, PROMPT_ANSWERS_TO_LEAVE};
use super::transport::Transport;
use crate::config::{GraphApiConfig, PollingConfig};
use crate::secret::AccessToken;
use crate::self_metrics::ExporterMetrics;

pub use super::transport::appsecret_proof;

/// How transient failures are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Extra attempts after the first.
    pub max_retries: u32,
    /// First delay.
    pub initial_backoff: Duration,
    /// Cap on any delay.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    fn delays(&self) -> impl Iterator<Item = Duration> {
        let max = self.max_backoff;
        ExponentialBuilder::default()
            .with_min_delay(self.initial_backoff)
            .with_max_delay(self.max_backoff)
            .with_max_times(self.max_retries as usize)
            .with_jitter()
            .build()
            // backon adds jitter after applying its cap, so cap again.
            .map(move |delay| delay.min(max))
    }
}

/// The pages of a list edge, as [`GraphClient::get_pages`] read them.
#[derive(Debug, Clone, PartialEq)]
pub struct Pages {
    /// Each page's body, in order.
    pub bodies: Vec<Value>,
    /// Whether the last page read was the last one.
    pub complete: bool,
}

/// A Graph API client shared by every poller.
#[derive(Clone)]
pub struct GraphClient {
    calls: Calls,
    retry: RetryPolicy,

    /// Where due GETs meet to share batch calls; `None` with `polling.batch: false`.
    batcher: Option<Arc<Batcher>>,
}

impl GraphClient {
    /// Builds a client for `{base_url}/{version}/` and, for Marketing API reads,
    /// `{base_url}/{marketing_version}/`; publishes those versions' end dates.
    pub fn new(
        api: &GraphApiConfig,
        polling: &PollingConfig,
        metrics: ExporterMetrics,
        limiter: Arc<RateLimiter>,
    ) -> Result<Self, GraphError> {
        let transport = Transport::new(api)?;
        metrics
            .api_versions
            .configure(&api.version, &api.marketing_version);
        Ok(Self {
            calls: Calls::new(transport, polling.max_concurrent_requests, metrics, limiter),
            retry: RetryPolicy {
                max_retries: polling.max_retries,
                initial_backoff: polling.retry_initial_backoff,
                max_backoff: polling.retry_max_backoff,
            },
            batcher: polling
                .batch
                .then(|| Arc::new(Batcher::new(polling.batch_window, polling.batch_timeout))),
        })
    }

    /// The version `api`'s calls are sent with.
    pub fn version(&self, api: Api) -> &str {
        self.calls.transport.version(api)
    }

    /// The rate limiter this client reports to.
    pub fn limiter(&self) -> &Arc<RateLimiter> {
        &self.calls.limiter
    }

    /// The targets polled outside batch calls, why and since when, in id order.
    pub fn solo(&self) -> Vec<SoloTarget> {
        self.calls.limiter.solo().list()
    }

    /// Sends several requests with one token and answers in the same order.
    ///
    /// Today they go out concurrently (each bounded by the global limit); this is the seam
    /// where a Graph batch call (`POST /{version}/`, up to 50 entries) slots in later.
    pub async fn get_all(
        &self,
        requests: &[GraphRequest],
        token: &AccessToken,
    ) -> Vec<Result<Value, GraphError>> {
        futures::future::join_all(requests.iter().map(|request| self.get(request, token))).await
    }

    /// Reads every page of a list edge (`data` plus `paging`), at most `max_pages`, and
    /// returns the page bodies in order. The next page is asked for with `after=<cursor>`
    /// while Graph gives a `paging.next` link; the link itself is never followed, since it can
    /// carry the token in its query string. A list longer than `max_pages` comes back
    /// marked incomplete, so the caller can say so rather than silently cut it.
    pub async fn get_pages(
        &self,
        request: &GraphRequest,
        token: &AccessToken,
        max_pages: usize,
    ) -> Result<Pages, GraphError> {
        let mut pages = Vec::new();
        let mut next = request.clone();
        loop {
            let page = self.get(&next, token).await?;
            let cursor = page
                .get("paging")
                .filter(|paging| paging.get("next").is_some_and(|n| !n.is_null()))
                .and_then(|paging| paging.pointer("/cursors/after"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            pages.push(page);
            let Some(cursor) = cursor else {
                return Ok(Pages {
                    bodies: pages,
                    complete: true,
                });
            };
            if pages.len() >= max_pages {
                return Ok(Pages {
                    bodies: pages,
                    complete: false,
                });
            }
            next = request.after(&cursor);
        }
    }

    /// Sends one request, retrying transient failures with jittered exponential backoff.
    /// With batching on, each attempt goes out inside a batch call with the other requests
    /// of the same token due within the window, and is answered as if it had gone alone.
    pub async fn get(
        &self,
        request: &GraphRequest,
        token: &AccessToken,
    ) -> Result<Value, GraphError> {
        let endpoints = [request.endpoint];
        // A target solo before this call started is not retried after a timeout within the
        // poll: it hung before, and each retry would hold a slot of the slow lane for another
        // request_timeout, keeping the merely slow targets there waiting. The next poll asks
        // again. A target that times out for the first time is retried (alone) as usual.
        let was_solo = self.calls.limiter.solo().contains(&request.object_id);
        self.with_retries(
            || self.attempt(request, token),
            &endpoints,
            |error| was_solo && matches!(error, GraphError::Timeout(_)),
            |error, delay| {
                tracing::debug!(
                    endpoint = request.endpoint.as_str(),
                    object_id = %request.object_id,
                    error = %error,
                    retry_in = ?delay,
                    "transient Graph API failure, retrying"
                );
            },
        )
        .await
    }

    /// Runs `attempt` until it succeeds, fails other than transiently, or the retry policy is
    /// used up, sleeping the policy's jittered delays in between. Each retry counts once per
    /// endpoint in `endpoints` (a batch retries all its entries) and is logged by `log`.
    async fn with_retries<T, Attempt, Fut>(
        &self,
        mut attempt: Attempt,
        endpoints: &[Endpoint],
        give_up: impl Fn(&GraphError) -> bool,
        log: impl Fn(&GraphError, Duration),
    ) -> Result<T, GraphError>
    where
        Attempt: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, GraphError>>,
    {
        let mut delays = self.retry.delays();
        loop {
            let error = match attempt().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            if error.class() != ErrorClass::Transient || give_up(&error) {
                return Err(error);
            }
            let Some(delay) = delays.next() else {
                return Err(error);
            };
            for endpoint in endpoints {
                self.calls
                    .metrics
                    .api_retries
                    .with_label_values(&[endpoint.as_str()])
                    .inc();
            }
            log(&error, delay);
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt at `request`: alone, or through the batcher when batching is on and its
    /// object is not solo.
    async fn attempt(
        &self,
        request: &GraphRequest,
        token: &AccessToken,
    ) -> Result<Value, GraphError> {
        let Some(batcher) = &self.batcher else {
            // Without batch calls every call is watched for hanging: one that times out moves
            // its target to the slow lane. Slowness alone does not, since with nothing to
            // share a batch with, a slow answer costs no other target anything.
            return self.send_watched(request, token, None).await;
        };
        if self.calls.limiter.solo().contains(&request.object_id) {
            return self
                .send_watched(request, token, Some(batcher.timeout()))
                .await;
        }
        let (reply, answer) = oneshot::channel();
        match batcher.join(request, token, reply) {
            Joined::Waiting => {}
            Joined::Opened { key, batch } => {
                // The batch is sent by its own task, not by the request that opened it: a
                // poll cancelled by a reload must not take the other requests down with it.
                let client = self.clone();
                let (window, timeout) = (batcher.window(), batcher.timeout());
                tokio::spawn(async move {
                    tokio::time::sleep(window).await;
                    let collected = client
                        .batcher
                        .as_ref()
                        .and_then(|batcher| batcher.take(&key, batch));
                    if let Some(collected) = collected {
                        batch::send::send_collected(&client.calls, collected, timeout).await;
                    }
                });
            }
            Joined::Full(collected) => {
                let client = self.clone();
                let timeout = batcher.timeout();
                tokio::spawn(async move {
                    batch::send::send_collected(&client.calls, collected, timeout).await
                });
            }
        }
        match answer.await {
            Ok(Reply::Answered(answer)) => answer,
            Ok(Reply::SendAlone { suspect: false }) => self.calls.send_once(request, token).await,
            Ok(Reply::SendAlone { suspect: true }) => {
                self.send_watched(request, token, Some(batcher.timeout()))
                    .await
            }
            Err(_) => Err(GraphError::Transport(
                "the batch call carrying this request was abandoned".into(),
            )),
        }
    }
}

/// Solo targets: requests sent alone because their object hung, or may have hung, a batch.
impl GraphClient {
    /// Sends `request` alone and judges its object by the answer: a call that times out, or
    /// takes `deadline` (the batch deadline, with batching on) or longer, makes it solo before
    /// any retry, so the retry goes alone too. A solo object's calls take the slow lane's
    /// slots ([`Lane::Slow`]), so however many of them hang, the other targets' calls keep
    /// theirs. A solo object's prompt successes count towards leaving solo, and anything else
    /// starts that count again.
    async fn send_watched(
        &self,
        request: &GraphRequest,
        token: &AccessToken,
        deadline: Option<Duration>,
    ) -> Result<Value, GraphError> {
        let solo = self.calls.limiter.solo();
        let lane = if solo.contains(&request.object_id) {
            Lane::Slow
        } else {
            Lane::Normal
        };
        let (result, elapsed) = self.calls.send_once_timed(request, token, lane).await;
        // No call went out (a pause): nothing was learnt about the object.
        let Some(elapsed) = elapsed else {
            return result;
        };
        let object_id = request.object_id.as_str();
        let slow = match &result {
            Err(GraphError::Timeout(_)) => Some(SoloReason::Timeout),
            _ if deadline.is_some_and(|deadline| elapsed >= deadline) => Some(SoloReason::Slow),
            _ => None,
        };
        match slow {
            Some(reason) => {
                if solo.mark(object_id, reason) {
                    tracing::warn!(
                        object_id,
                        reason = reason.as_str(),
                        elapsed_ms = elapsed.as_millis() as u64,
                        batch_timeout_ms = deadline.map(|d| d.as_millis() as u64),
                        "a target is too slow for batch calls; polling it alone until it answers promptly {PROMPT_ANSWERS_TO_LEAVE} times in a row"
                    );
                }
            }
            None => {
                if solo.answered_alone(object_id, result.is_ok()) {
                    tracing::info!(
                        object_id,
                        "a solo target answered promptly again; it rejoins batch calls"
                    );
                }
            }
        }
        result
    }
}

/// Graph batch calls: several GETs in one `POST /{version}/` (see [`super::batch`]).
impl GraphClient {
    /// Sends `entries` as Graph batch calls authenticated with `token`, one HTTP request per
    /// [`MAX_BATCH_ENTRIES`] entries in turn, and answers in the order of `entries`: `None` for
    /// an entry Graph answered `null` (it timed out inside Graph; the caller may send it
    /// again). The form body carries `batch` (and `appsecret_proof` when an app secret is
    /// configured), so a token inside an entry (`debug_token?input_token=`) is never part of a
    /// URL. A batch passes the same in-flight bound, rate-limit admission (every entry counts,
    /// as it does for Meta), usage headers (the batch's and each entry's), size cap, retries of
    /// transient failures and error classification as [`Self::get`]. A batch that fails whole
    /// fails the call, and the answers of earlier batches of the same call go with it.
    pub async fn post_batch(
        &self,
        entries: &[BatchEntry],
        token: &AccessToken,
    ) -> Result<Vec<Option<BatchAnswer>>, GraphError> {
        let mut answers = Vec::with_capacity(entries.len());
        for chunk in entries.chunks(MAX_BATCH_ENTRIES) {
            answers.extend(self.post_one_batch(chunk, token).await?);
        }
        Ok(answers)
    }

    async fn post_one_batch(
        &self,
        entries: &[BatchEntry],
        token: &AccessToken,
    ) -> Result<Vec<Option<BatchAnswer>>, GraphError> {
        let endpoints: Vec<Endpoint> = entries.iter().map(|entry| entry.endpoint).collect();
        self.with_retries(
            || batch::send::send_once(&self.calls, entries, token),
            &endpoints,
            |_| false,
            |error, delay| {
                tracing::debug!(
                    entries = entries.len(),
                    error = %error,
                    retry_in = ?delay,
                    "transient failure of a Graph API batch call, retrying"
                );
            },
        )
        .await
    }
}

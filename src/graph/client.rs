//! The HTTP side of talking to the Graph API.
//!
//! [`GraphClient`] owns the connection pool, the global bound on requests in flight, the
//! retry policy for transient failures and the request metrics. It sends the token only in
//! the `Authorization` header (marked sensitive so HTTP tracing never prints it), adds
//! `appsecret_proof` when an app secret is configured, caps response bodies, and turns every
//! answer into JSON or a classified [`GraphError`]. Pollers hand it [`GraphRequest`]s and
//! never see URLs, status codes or retries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use hmac::{Hmac, Mac};
use prometheus::IntGauge;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::Url;
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::batch::{self, BatchAnswer, BatchEntry, MAX_BATCH_ENTRIES};
use super::batcher::{Batcher, Collected, Joined, Reply, Waiting};
use super::error::{ErrorBody, ErrorClass, GraphError};
use super::ratelimit::RateLimiter;
use super::request::{Endpoint, GraphRequest};
use super::usage::{self, Usage};
use crate::config::{GraphApiConfig, PollingConfig};
use crate::secret::{AccessToken, AppSecret, TokenId};
use crate::self_metrics::ExporterMetrics;

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
    http: reqwest::Client,
    api_root: Url,
    app_secret: Option<AppSecret>,
    max_response_bytes: usize,
    request_timeout: Duration,
    in_flight: Arc<Semaphore>,
    retry: RetryPolicy,
    metrics: ExporterMetrics,
    limiter: Arc<RateLimiter>,
    /// Where due GETs meet to share batch calls; `None` with `polling.batch: false`.
    batcher: Option<Arc<Batcher>>,
}

/// Which kind of HTTP request `api_http_requests_total` counts.
#[derive(Clone, Copy)]
enum HttpRequestType {
    Single,
    Batch,
}

impl HttpRequestType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Batch => "batch",
        }
    }
}

impl GraphClient {
    /// Builds a client for `{base_url}/{version}/`.
    pub fn new(
        api: &GraphApiConfig,
        polling: &PollingConfig,
        metrics: ExporterMetrics,
        limiter: Arc<RateLimiter>,
    ) -> Result<Self, GraphError> {
        let api_root = Url::parse(&format!("{}/{}/", api.base_url, api.version))
            .map_err(|e| GraphError::Transport(format!("invalid base_url: {e}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(api.connect_timeout)
            .timeout(api.request_timeout)
            .user_agent(concat!(
                "meta-messaging-exporter/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| GraphError::Transport(error_chain(&e)))?;
        Ok(Self {
            http,
            api_root,
            app_secret: api.app_secret.clone(),
            max_response_bytes: api.max_response_bytes,
            request_timeout: api.request_timeout,
            in_flight: Arc::new(Semaphore::new(polling.max_concurrent_requests)),
            retry: RetryPolicy {
                max_retries: polling.max_retries,
                initial_backoff: polling.retry_initial_backoff,
                max_backoff: polling.retry_max_backoff,
            },
            metrics,
            limiter,
            batcher: polling
                .batch
                .then(|| Arc::new(Batcher::new(polling.batch_window))),
        })
    }

    /// The rate limiter this client reports to.
    pub fn limiter(&self) -> &Arc<RateLimiter> {
        &self.limiter
    }

    /// Asks the limiter for one call of `endpoint` about `object_id` with the token
    /// `token_id`; WhatsApp calls also count against their account's hourly budget.
    fn admit(
        &self,
        token_id: &TokenId,
        endpoint: Endpoint,
        object_id: &str,
    ) -> Result<(), GraphError> {
        let admitted = if endpoint.is_whatsapp() {
            self.limiter.admit_whatsapp(token_id, object_id)
        } else {
            self.limiter.admit(token_id, object_id)
        };
        admitted.map_err(|paused| GraphError::Paused {
            scope: paused.scope,
            remaining: paused.remaining,
        })
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
        self.with_retries(
            || self.attempt(request, token),
            &endpoints,
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
            if error.class() != ErrorClass::Transient {
                return Err(error);
            }
            let Some(delay) = delays.next() else {
                return Err(error);
            };
            for endpoint in endpoints {
                self.metrics
                    .api_retries
                    .with_label_values(&[endpoint.as_str()])
                    .inc();
            }
            log(&error, delay);
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt at `request`: alone, or through the batcher when batching is on.
    async fn attempt(
        &self,
        request: &GraphRequest,
        token: &AccessToken,
    ) -> Result<Value, GraphError> {
        let Some(batcher) = &self.batcher else {
            return self.send_once(request, token).await;
        };
        let (reply, answer) = oneshot::channel();
        match batcher.join(request, token, reply) {
            Joined::Waiting => {}
            Joined::Opened { token_id, batch } => {
                // The batch is sent by its own task, not by the request that opened it: a
                // poll cancelled by a reload must not take the other requests down with it.
                let client = self.clone();
                let window = batcher.window();
                tokio::spawn(async move {
                    tokio::time::sleep(window).await;
                    let collected = client
                        .batcher
                        .as_ref()
                        .and_then(|batcher| batcher.take(&token_id, batch));
                    if let Some(collected) = collected {
                        client.send_collected(collected).await;
                    }
                });
            }
            Joined::Full(collected) => {
                let client = self.clone();
                tokio::spawn(async move { client.send_collected(collected).await });
            }
        }
        match answer.await {
            Ok(Reply::Answered(answer)) => answer,
            Ok(Reply::SendAlone) => self.send_once(request, token).await,
            Err(_) => Err(GraphError::Transport(
                "the batch call carrying this request was abandoned".into(),
            )),
        }
    }

    /// Waits for a slot among the requests in flight, outside any timeout: queueing behind
    /// other targets is not the Graph API being slow.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, GraphError> {
        self.in_flight
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| GraphError::Transport("client is shutting down".into()))
    }

    async fn send_once(
        &self,
        request: &GraphRequest,
        token: &AccessToken,
    ) -> Result<Value, GraphError> {
        let token_id = *token.id();
        let _permit = self.slot().await?;
        // Admission comes after the slot: a pause that began while this request queued
        // still holds it back.
        self.admit(&token_id, request.endpoint, &request.object_id)?;
        self.send_admitted(request, token, &token_id).await
    }

    /// Sends a request already given its slot and admitted, and records what came back.
    async fn send_admitted(
        &self,
        request: &GraphRequest,
        token: &AccessToken,
        token_id: &TokenId,
    ) -> Result<Value, GraphError> {
        self.count_http_request(HttpRequestType::Single);
        let in_flight = InFlight::enter(&self.metrics.requests_in_flight);
        let started = Instant::now();
        let (usage, result) = self.exchange(request, token).await;
        drop(in_flight);
        let endpoint = request.endpoint.as_str();
        let outcome = match &result {
            Ok(_) => "success",
            Err(error) => error.outcome(),
        };
        self.metrics
            .api_requests
            .with_label_values(&[endpoint, outcome])
            .inc();
        self.limiter.observe(token_id, &request.object_id, &usage);
        self.record_result(
            request.endpoint,
            token_id,
            &request.object_id,
            result.as_ref().map(|_| ()),
            &usage,
        );
        tracing::debug!(
            endpoint,
            object_id = %request.object_id,
            outcome,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "Graph API request finished"
        );
        result.map_err(|error| redact(error, token))
    }

    fn count_http_request(&self, kind: HttpRequestType) {
        self.metrics
            .api_http_requests
            .with_label_values(&[kind.as_str()])
            .inc();
    }

    /// What one answer means for the limiter and the error counter: a success ends backoff
    /// in its scopes; a throttle (or policy block) pauses its scope.
    fn record_result(
        &self,
        endpoint: super::Endpoint,
        token_id: &TokenId,
        object_id: &str,
        result: Result<(), &GraphError>,
        usage: &Usage,
    ) {
        let endpoint = endpoint.as_str();
        match result {
            Ok(()) => self.limiter.succeeded(token_id, object_id),
            Err(error @ GraphError::Api { error: api, .. }) => {
                let subcode = api.error_subcode.map(|s| s.to_string()).unwrap_or_default();
                self.metrics
                    .api_errors
                    .with_label_values(&[endpoint, &api.code.to_string(), &subcode])
                    .inc();
                if matches!(
                    error.class(),
                    ErrorClass::Throttled | ErrorClass::PolicyBlock
                ) {
                    let pause = self.limiter.throttled(token_id, object_id, api, usage);
                    tracing::warn!(
                        endpoint,
                        object_id = %object_id,
                        error_code = api.code,
                        pause_seconds = pause.as_secs(),
                        "Graph API throttled the request; pausing its scope"
                    );
                }
            }
            Err(_) => {}
        }
    }

    async fn exchange(
        &self,
        request: &GraphRequest,
        token: &AccessToken,
    ) -> (Usage, Result<Value, GraphError>) {
        let mut url = match request.url(&self.api_root) {
            Ok(url) => url,
            Err(e) => return (Usage::default(), Err(GraphError::Transport(e.to_string()))),
        };
        if let Some(secret) = &self.app_secret {
            url.query_pairs_mut()
                .append_pair("appsecret_proof", &appsecret_proof(secret, token));
        }
        let authorization = match authorization(token) {
            Ok(authorization) => authorization,
            Err(error) => return (Usage::default(), Err(error)),
        };
        let sent = self
            .http
            .get(url)
            .header(AUTHORIZATION, authorization)
            .send()
            .await;
        self.answer(sent).await
    }

    /// The usage headers and the decoded body of a response, or why there is none.
    async fn answer(
        &self,
        sent: Result<reqwest::Response, reqwest::Error>,
    ) -> (Usage, Result<Value, GraphError>) {
        let response = match sent {
            Ok(response) => response,
            Err(e) => return (Usage::default(), Err(self.transport_error(e))),
        };
        let usage = usage::read(response.headers());
        let status = response.status();
        let result = match self.read_capped(response).await {
            Ok(body) => decode(status.as_u16(), status.is_success(), &body),
            Err(error) => Err(error),
        };
        (usage, result)
    }

    async fn read_capped(&self, mut response: reqwest::Response) -> Result<Vec<u8>, GraphError> {
        let limit = self.max_response_bytes;
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(GraphError::TooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(e))?
        {
            if body.len() + chunk.len() > limit {
                return Err(GraphError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn transport_error(&self, error: reqwest::Error) -> GraphError {
        if error.is_timeout() {
            GraphError::Timeout(self.request_timeout)
        } else if error.is_decode() || error.is_body() {
            // A body cut off mid-way: worth a retry, like a reset.
            GraphError::Transport(format!(
                "response body incomplete: {}",
                error_chain(&error.without_url())
            ))
        } else {
            // Without the URL: it carries appsecret_proof, which is derived from the token.
            GraphError::Transport(error_chain(&error.without_url()))
        }
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
            || self.send_batch_once(entries, token),
            &endpoints,
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

    async fn send_batch_once(
        &self,
        entries: &[BatchEntry],
        token: &AccessToken,
    ) -> Result<Vec<Option<BatchAnswer>>, GraphError> {
        let token_id = *token.id();
        let _permit = self.slot().await?;
        for entry in entries {
            // Entries admitted before a paused one stay counted: the budget errs towards
            // fewer calls, never more.
            self.admit(&token_id, entry.endpoint, &entry.object_id)?;
        }
        self.send_admitted_batch(entries, token, &token_id).await
    }

    /// Sends a batch whose entries are admitted and which holds its slot, and records what
    /// came back for every entry: its outcome, its usage headers, its throttle. Errors, the
    /// batch's and each entry's, have the token and secrets redacted.
    async fn send_admitted_batch(
        &self,
        entries: &[BatchEntry],
        token: &AccessToken,
        token_id: &TokenId,
    ) -> Result<Vec<Option<BatchAnswer>>, GraphError> {
        self.count_http_request(HttpRequestType::Batch);
        let in_flight = InFlight::enter(&self.metrics.requests_in_flight);
        let started = Instant::now();
        let (usage, result) = self.exchange_batch(entries, token).await;
        drop(in_flight);
        // The batch's own headers speak for the token; a whole-batch throttle is put on the
        // first entry's object, as Meta names none.
        let lead = entries.first().map_or("", |entry| entry.object_id.as_str());
        self.limiter.observe(token_id, lead, &usage);
        let result = result.and_then(|body| batch::parse_answers(body, entries.len()));
        match &result {
            Err(error) => {
                for entry in entries {
                    self.metrics
                        .api_requests
                        .with_label_values(&[entry.endpoint.as_str(), error.outcome()])
                        .inc();
                }
                if let Some(entry) = entries.first() {
                    self.record_result(entry.endpoint, token_id, lead, Err(error), &usage);
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
                    self.metrics
                        .api_requests
                        .with_label_values(&[entry.endpoint.as_str(), outcome])
                        .inc();
                    if let Some(answer) = answer {
                        let usage = usage::read(&answer.header_map());
                        self.limiter.observe(token_id, &entry.object_id, &usage);
                        let body = answer.body.as_ref().map(|_| ());
                        self.record_result(
                            entry.endpoint,
                            token_id,
                            &entry.object_id,
                            body,
                            &usage,
                        );
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
        let secret = self.app_secret.as_ref().map_or("", AppSecret::expose);
        match result {
            Ok(mut answers) => {
                for (entry, answer) in entries.iter().zip(answers.iter_mut()) {
                    let Some(answer) = answer else { continue };
                    if let Err(error) = &mut answer.body {
                        let carried = entry.carried.as_ref().map_or("", AccessToken::expose);
                        *error = redact_all(error.clone(), &[token.expose(), secret, carried]);
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
                Err(redact_all(error, &secrets))
            }
        }
    }

    async fn exchange_batch(
        &self,
        entries: &[BatchEntry],
        token: &AccessToken,
    ) -> (Usage, Result<Value, GraphError>) {
        let mut form = vec![("batch", batch::batch_field(entries))];
        if let Some(secret) = &self.app_secret {
            form.push(("appsecret_proof", appsecret_proof(secret, token)));
        }
        let authorization = match authorization(token) {
            Ok(authorization) => authorization,
            Err(error) => return (Usage::default(), Err(error)),
        };
        let sent = self
            .http
            .post(self.api_root.clone())
            .header(AUTHORIZATION, authorization)
            .form(&form)
            .send()
            .await;
        self.answer(sent).await
    }
}

/// Sending what the [`Batcher`] collected for polls.
impl GraphClient {
    /// Sends a collected batch and answers each request as if it had gone alone: its entry's
    /// code, headers and body, or the pause the limiter holds it back with (no call). A
    /// `null` entry (Graph gave up on it) goes again alone. A batch that fails as a whole (a
    /// transport error, a 5xx, an answer that is not the array Graph promises) sends every
    /// request alone, so one bad batch costs its requests a round trip, never their answers.
    /// Requests whose polls were cancelled meanwhile are left out.
    async fn send_collected(&self, collected: Collected) {
        let Collected { token, waiting } = collected;
        let token_id = *token.id();
        let waiting = still_waiting(waiting);
        if waiting.len() <= 1 {
            // A batch of one is a single call with more overhead.
            send_alone(waiting);
            return;
        }
        let permit = match self.slot().await {
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
            match self.admit(&token_id, request.endpoint, &request.object_id) {
                Ok(()) => admitted.push(waiting),
                Err(paused) => {
                    let _ = waiting.reply.send(Reply::Answered(Err(paused)));
                }
            }
        }
        if admitted.len() <= 1 {
            // Sent from here, already admitted: asking the limiter again would count it twice.
            if let Some(alone) = admitted.pop() {
                let answer = self.send_admitted(&alone.request, &token, &token_id).await;
                let _ = alone.reply.send(Reply::Answered(answer));
            }
            return;
        }
        let entries: Vec<BatchEntry> = admitted
            .iter()
            .map(|waiting| BatchEntry::get(&waiting.request))
            .collect();
        let answered = self.send_admitted_batch(&entries, &token, &token_id).await;
        drop(permit);
        match answered {
            Ok(answers) => {
                for (waiting, answer) in admitted.into_iter().zip(answers) {
                    let reply = match answer {
                        Some(answer) => Reply::Answered(answer.body),
                        None => Reply::SendAlone,
                    };
                    let _ = waiting.reply.send(reply);
                }
            }
            Err(error) => {
                self.metrics.api_batch_fallbacks.inc();
                tracing::warn!(
                    entries = admitted.len(),
                    error = %error,
                    "a Graph API batch call failed as a whole; sending its requests one by one"
                );
                send_alone(admitted);
            }
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

/// Tells each request to go alone.
fn send_alone(waiting: Vec<Waiting>) {
    for waiting in waiting {
        let _ = waiting.reply.send(Reply::SendAlone);
    }
}

/// `Bearer <token>`, marked sensitive so HTTP tracing never prints it.
fn authorization(token: &AccessToken) -> Result<HeaderValue, GraphError> {
    let mut authorization =
        HeaderValue::try_from(format!("Bearer {}", token.expose())).map_err(|_| {
            GraphError::Transport(
                "the access token contains characters not allowed in an HTTP header".into(),
            )
        })?;
    authorization.set_sensitive(true);
    Ok(authorization)
}

/// One request counted in `api_requests_in_flight` for as long as it lives.
///
/// A guard rather than an `inc` and a `dec` around the `.await`: a reload or shutdown that
/// cancels a poll drops the request future mid-way, and only a destructor runs then.
struct InFlight<'a>(&'a IntGauge);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a IntGauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Turns a response into JSON or the error it reports.
///
/// Crate-visible so the converters' property tests can feed arbitrary bytes through the same
/// path a response takes.
pub(crate) fn decode(status: u16, success: bool, body: &[u8]) -> Result<Value, GraphError> {
    let parsed: Result<Value, _> = serde_json::from_slice(body);
    match parsed {
        Ok(value) => {
            // Graph sometimes answers 200 with an error body; treat it by its content.
            if value.get("error").is_some_and(Value::is_object) {
                let ErrorBody { error } = serde_json::from_value(value)
                    .map_err(|e| GraphError::Decode(format!("malformed error body: {e}")))?;
                return Err(GraphError::Api { status, error });
            }
            if success {
                Ok(value)
            } else {
                Err(GraphError::Http {
                    status,
                    snippet: snippet(body),
                })
            }
        }
        Err(_) if !success => Err(GraphError::Http {
            status,
            snippet: snippet(body),
        }),
        Err(e) => Err(GraphError::Decode(format!(
            "HTTP {status} body is not JSON ({e}): {}",
            snippet(body)
        ))),
    }
}

/// The start of a body on one line, for logs and the status page.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(160)]);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `appsecret_proof`: hex HMAC-SHA256 of the token, keyed with the app secret.
pub fn appsecret_proof(secret: &AppSecret, token: &AccessToken) -> String {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an empty proof
    // (which Meta rejects with a clear error) rather than panicking.
    match Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) {
        Ok(mut mac) => {
            mac.update(token.expose().as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Removes the token from anything the API or the transport echoed back.
fn redact(error: GraphError, token: &AccessToken) -> GraphError {
    redact_all(error, &[token.expose()])
}

/// Removes every one of `secrets` (empty ones ignored) from an error's text.
fn redact_all(error: GraphError, secrets: &[&str]) -> GraphError {
    let clean = |mut text: String| {
        for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
            text = text.replace(secret, "[redacted]");
        }
        text
    };
    match error {
        GraphError::Transport(text) => GraphError::Transport(clean(text)),
        GraphError::Http { status, snippet } => GraphError::Http {
            status,
            snippet: clean(snippet),
        },
        GraphError::Decode(text) => GraphError::Decode(clean(text)),
        GraphError::Api { status, mut error } => {
            error.message = clean(error.message);
            GraphError::Api { status, error }
        }
        other => other,
    }
}

/// An error and its sources on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appsecret_proof_is_the_hex_hmac_sha256_of_the_token() {
        // Reference value from `echo -n token | openssl dgst -sha256 -hmac secret`.
        let proof = appsecret_proof(&AppSecret::new("secret"), &AccessToken::new("token"));
        assert_eq!(
            proof,
            "e941110e3d2bfe82621f0e3e1434730d7305d106c5f68c87165d0b27a4611a4a"
        );
    }

    #[test]
    fn an_error_body_with_status_200_is_an_api_error() {
        let body = br#"{"error":{"message":"(#100) bad","type":"OAuthException","code":100,"fbtrace_id":"x"}}"#;
        let error = decode(200, true, body).expect_err("error body");
        assert_eq!(error.api_error().map(|e| e.code), Some(100));
    }

    #[test]
    fn an_html_error_page_is_an_http_error_with_a_one_line_snippet() {
        let body = b"<html>\n<body>502 Bad Gateway</body>\n</html>";
        match decode(502, false, body) {
            Err(GraphError::Http {
                status: 502,
                snippet,
            }) => {
                assert_eq!(snippet, "<html> <body>502 Bad Gateway</body> </html>");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn invalid_json_with_status_200_is_a_decode_error() {
        assert!(matches!(
            decode(200, true, b"{\"data\":["),
            Err(GraphError::Decode(_))
        ));
    }

    /// `serde_json` refuses a number literal beyond `f64` (`1e999`), so such a body fails as a
    /// whole. Meta's encoder cannot write one; an out-of-range *string* (`"1e999"`) is what
    /// can arrive, and that is a per-value problem in `convert`.
    #[test]
    fn a_number_literal_beyond_f64_makes_the_body_a_decode_error() {
        let error = decode(200, true, br#"{"data":[{"value":1e999}]}"#).expect_err("error");
        assert!(error.to_string().contains("number out of range"), "{error}");
    }

    #[test]
    fn a_deeply_nested_body_is_a_decode_error_not_a_stack_overflow() {
        let body = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            decode(200, true, body.as_bytes()),
            Err(GraphError::Decode(_))
        ));
    }

    #[test]
    fn echoed_tokens_are_redacted_from_errors() {
        let token = AccessToken::new("EAAsecret123");
        let error = GraphError::Api {
            status: 400,
            error: crate::graph::ApiError {
                message: "Invalid token EAAsecret123".into(),
                kind: None,
                code: 190,
                error_subcode: None,
                is_transient: None,
                fbtrace_id: None,
            },
        };
        assert!(!redact(error, &token).to_string().contains("EAAsecret123"));
    }
}

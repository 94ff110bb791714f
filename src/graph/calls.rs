//! What every Graph API call passes through, alone or inside a batch: a slot among the
//! requests in flight, admission by the rate limiter, and the recording of what came back.
//!
//! [`Calls`] sits between [`super::transport`] (one HTTP exchange) and the two senders above
//! it, [`super::batch`] and [`super::client`], so both share one in-flight bound, one limiter
//! and one set of request metrics without importing each other. It sends one admitted GET
//! ([`Calls::send_admitted`]) but never retries, batches or pages.

use std::sync::Arc;
use std::time::Duration;

use prometheus::IntGauge;
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::error::{ErrorClass, GraphError};
use super::ratelimit::RateLimiter;
use super::request::{Api, Endpoint, GraphRequest};
use super::transport::{self, Transport};
use super::usage::Usage;
use crate::secret::{AccessToken, TokenId};
use crate::self_metrics::ExporterMetrics;

/// The shared gate and bookkeeping of all calls of one client.
#[derive(Clone)]
pub(crate) struct Calls {
    pub(crate) transport: Transport,
    in_flight: Arc<Semaphore>,
    /// The slow lane: the slots solo targets' calls take instead of `in_flight`'s, a quarter
    /// of them (at least one). A target whose calls hang holds one of these for each hung
    /// call, so hanging targets can only queue behind each other, never take the slots the
    /// healthy targets' calls need.
    slow_lane: Arc<Semaphore>,
    pub(crate) metrics: ExporterMetrics,
    pub(crate) limiter: Arc<RateLimiter>,
}

/// Which slots a call takes: every call the normal ones, a solo target's the slow lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// `polling.max_concurrent_requests` slots.
    Normal,
    /// A quarter of them, for targets whose calls hang or crawl.
    Slow,
}

/// The slow lane's size for `max_in_flight` normal slots.
pub(crate) fn slow_lane_slots(max_in_flight: usize) -> usize {
    (max_in_flight / 4).max(1)
}

/// Which kind of HTTP request `api_http_requests_total` counts.
#[derive(Clone, Copy)]
pub(crate) enum HttpRequestType {
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

impl Calls {
    /// Calls over `transport`, at most `max_in_flight` at once.
    pub(crate) fn new(
        transport: Transport,
        max_in_flight: usize,
        metrics: ExporterMetrics,
        limiter: Arc<RateLimiter>,
    ) -> Self {
        Self {
            transport,
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            slow_lane: Arc::new(Semaphore::new(slow_lane_slots(max_in_flight))),
            metrics,
            limiter,
        }
    }

    /// Asks the limiter for one call of `endpoint` about `object_id` with the token
    /// `token_id`; WhatsApp calls also count against their account's hourly budget.
    pub(crate) fn admit(
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

    /// Waits for a slot among the requests in flight, outside any timeout: queueing behind
    /// other targets is not the Graph API being slow.
    pub(crate) async fn slot(&self) -> Result<OwnedSemaphorePermit, GraphError> {
        self.slot_in(Lane::Normal).await
    }

    /// [`Self::slot`] in `lane`.
    pub(crate) async fn slot_in(&self, lane: Lane) -> Result<OwnedSemaphorePermit, GraphError> {
        let slots = match lane {
            Lane::Normal => &self.in_flight,
            Lane::Slow => &self.slow_lane,
        };
        slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| GraphError::Transport("client is shutting down".into()))
    }

    /// One GET, alone: a slot, admission, then [`Self::send_admitted`].
    pub(crate) async fn send_once(
        &self,
        request: &GraphRequest,
        token: &AccessToken,
    ) -> Result<Value, GraphError> {
        self.send_once_timed(request, token, Lane::Normal).await.0
    }

    /// [`Self::send_once`], also saying how long the HTTP exchange took; `None` when no
    /// request went out (a pause held it back, or the client is shutting down).
    pub(crate) async fn send_once_timed(
        &self,
        request: &GraphRequest,
        token: &AccessToken,
        lane: Lane,
    ) -> (Result<Value, GraphError>, Option<Duration>) {
        let token_id = *token.id();
        let _permit = match self.slot_in(lane).await {
            Ok(permit) => permit,
            Err(error) => return (Err(error), None),
        };
        // Admission comes after the slot: a pause that began while this request queued
        // still holds it back.
        if let Err(paused) = self.admit(&token_id, request.endpoint, &request.object_id) {
            return (Err(paused), None);
        }
        let (result, elapsed) = self.send_admitted(request, token, &token_id).await;
        (result, Some(elapsed))
    }

    /// Sends a request already given its slot and admitted, and records what came back.
    /// Also says how long the exchange took, for telling prompt answers from slow ones.
    pub(crate) async fn send_admitted(
        &self,
        request: &GraphRequest,
        token: &AccessToken,
        token_id: &TokenId,
    ) -> (Result<Value, GraphError>, Duration) {
        self.count_http_request(HttpRequestType::Single);
        let in_flight = InFlight::enter(&self.metrics.requests_in_flight);
        let started = Instant::now();
        let (usage, result) = self.transport.get(request, token).await;
        let elapsed = started.elapsed();
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
        self.observe_version(request.api, request.endpoint, &usage);
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
            elapsed_ms = elapsed.as_millis() as u64,
            "Graph API request finished"
        );
        (
            result.map_err(|error| transport::redact(error, token)),
            elapsed,
        )
    }

    /// Records the version Meta served a call of `request`'s API with, if it said, and any
    /// version warning that came with it.
    pub(crate) fn observe_version(&self, api: Api, endpoint: Endpoint, usage: &Usage) {
        let versions = &self.metrics.api_versions;
        if let Some(served) = &usage.served_version {
            versions.served(api, self.transport.version(api), served);
        }
        if let Some(warning) = &usage.version_warning {
            let day = self.limiter.wall_clock().now_unix().div_euclid(86_400);
            if versions.warned(endpoint.as_str(), day) {
                tracing::warn!(
                    endpoint = endpoint.as_str(),
                    api = api.as_str(),
                    requested = self.transport.version(api),
                    served = usage.served_version.as_deref().unwrap_or("unknown"),
                    warning = %warning,
                    "Meta answered with a version warning (X-Ad-Api-Version-Warning); set a supported version (graph_api.marketing_version for campaigns and ad accounts). Logged once per endpoint and day; counted in api_version_warnings_total"
                );
            }
        }
    }

    /// Counts one HTTP request of `kind`.
    pub(crate) fn count_http_request(&self, kind: HttpRequestType) {
        self.metrics
            .api_http_requests
            .with_label_values(&[kind.as_str()])
            .inc();
    }

    /// What one answer means for the limiter and the error counter: a success ends backoff
    /// in its scopes; a throttle (or policy block) pauses its scope.
    pub(crate) fn record_result(
        &self,
        endpoint: Endpoint,
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
}

/// One request counted in `api_requests_in_flight` for as long as it lives.
///
/// A guard rather than an `inc` and a `dec` around the `.await`: a reload or shutdown that
/// cancels a poll drops the request future mid-way, and only a destructor runs then.
pub(crate) struct InFlight<'a>(&'a IntGauge);

impl<'a> InFlight<'a> {
    pub(crate) fn enter(gauge: &'a IntGauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

//! The HTTP side: `/metrics`, the landing page, health, readiness and reload.
//!
//! [`router`] builds the axum app from shared state, so tests can drive it in-process. The
//! telemetry path serves the snapshot store's cached body followed by the exporter's own
//! metrics, without copying the store's part, gzip-compressed when the client asks for it
//! ([`compression`]); a scrape never calls Meta. Every GET route also answers HEAD. The
//! landing page is in [`status_page`]. This module owns the routes and the request types they
//! send ([`ReloadRequest`]); how connections are accepted, limited and timed out is
//! [`crate::web`]'s.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::self_metrics::ExporterMetrics;
use crate::status::StatusBoard;
use crate::store::SnapshotStore;
use crate::token_health::TokenBoard;

use self::compression::GzipCache;

pub mod compression;
pub mod status_page;

/// Content type of the text exposition format.
pub const EXPOSITION_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub use self::status_page::{status_page, TargetFilter};

/// A request to reload, answered with the outcome. `POST /-/reload` sends it; [`crate::app`]
/// owns the channel's other end and does the reload, so this module needs nothing from it.
pub struct ReloadRequest {
    /// Where the outcome goes: `Err` carries the reason the new config was rejected.
    pub respond: oneshot::Sender<Result<(), String>>,
}

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    /// Poll results.
    pub store: Arc<SnapshotStore>,
    /// Target states for the landing page.
    pub status: Arc<StatusBoard>,
    /// The exporter's own metrics.
    pub metrics: ExporterMetrics,
    /// Where metrics are served, for the landing page link.
    pub telemetry_path: String,
    /// False while starting or shutting down.
    pub ready: Arc<AtomicBool>,
    /// Wall clock, for ages on the landing page.
    pub clock: Arc<dyn Clock>,
    /// Where `POST /-/reload` sends requests; `None` when the lifecycle API is disabled.
    pub reload: Option<mpsc::Sender<ReloadRequest>>,
    /// Discovery's sources for the landing page.
    pub discovery: Arc<crate::discovery::DiscoveryBoard>,
    /// Token health, rendered into `/metrics` and the landing page.
    pub tokens: Arc<TokenBoard>,
    /// Which shard this instance polls, for the landing page.
    pub shard: crate::shard::Shard,
    /// The rate limiter, whose solo targets (polling outside batch calls) the landing page
    /// lists.
    pub limiter: Arc<crate::graph::ratelimit::RateLimiter>,
}

/// The exporter's HTTP routes. Every GET route answers HEAD too (axum runs the GET handler and
/// drops the body), with the `Content-Length` the GET would have.
pub fn router(state: AppState) -> Router {
    // The deflated store part lives as long as the routes: one cache per server.
    routes(state, Arc::new(GzipCache::default()))
}

fn routes(state: AppState, gzip: Arc<GzipCache>) -> Router {
    Router::new()
        .route(
            &state.telemetry_path.clone(),
            get(move |State(state): State<AppState>, headers: HeaderMap| {
                metrics(state, gzip.clone(), headers)
            }),
        )
        .route("/", get(landing))
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload).put(reload))
        .with_state(state)
}

/// `/metrics`: the store's rendered snapshot, then the exporter's own metrics. Plain, the two
/// are sent as they are (no copy of the store's part); with gzip, the store's part comes from
/// the cache, deflated once per snapshot. Either way the length is known up front, so the
/// response has a `Content-Length` and HEAD reports it.
async fn metrics(state: AppState, gzip: Arc<GzipCache>, headers: HeaderMap) -> Response {
    let now = tokio::time::Instant::now();
    // A render after a change copies the whole body (megabytes at 100,000 series): on the
    // blocking pool, so the worker thread goes on serving other connections meanwhile.
    let data = match state.store.cached(now) {
        Some(data) => data,
        None => {
            let store = state.store.clone();
            match tokio::task::spawn_blocking(move || store.render(now)).await {
                Ok(data) => data,
                Err(error) => {
                    tracing::error!(%error, "rendering the snapshot failed");
                    return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                }
            }
        }
    };
    let mut own = match state.metrics.encode() {
        Ok(own) => own,
        Err(error) => {
            tracing::error!(%error, "encoding the exporter's own metrics failed");
            Vec::new()
        }
    };
    // Rendered from the board at each scrape, so a token no longer in use is gone at once.
    own.extend_from_slice(state.tokens.encode().as_bytes());
    let own = Bytes::from(own);
    let compressed = if compression::accepts_gzip(&headers) {
        match gzip_body(&gzip, data.clone(), &own).await {
            Ok(compressed) => Some(compressed),
            Err(error) => {
                // Serving the text uncompressed is always correct; only bandwidth is lost.
                tracing::error!(%error, "gzip-compressing /metrics failed; serving it uncompressed");
                None
            }
        }
    } else {
        None
    };
    let (chunks, length, encoding) = match compressed {
        Some((chunks, length)) => (chunks, length, Some("gzip")),
        None => {
            let length = data.len() + own.len();
            (vec![data, own], length, None)
        }
    };
    let stream = futures::stream::iter(chunks.into_iter().map(Ok::<_, std::convert::Infallible>));
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(EXPOSITION_CONTENT_TYPE),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    // Caches between Prometheus and the exporter must not hand a gzip body to a client that
    // did not ask for one, or the reverse.
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Some(encoding) = encoding {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
    }
    response
}

/// The gzip member for `data` followed by `own`, deflating `data` only when the cache does not
/// already hold it. That deflate reads megabytes, so it runs on the blocking pool rather than
/// stalling the other connections served by this worker thread.
async fn gzip_body(
    cache: &Arc<GzipCache>,
    data: Bytes,
    own: &[u8],
) -> std::io::Result<(Vec<Bytes>, usize)> {
    let part = match cache.get(&data) {
        Some(part) => part,
        None => {
            let cache = cache.clone();
            tokio::task::spawn_blocking(move || cache.insert(data))
                .await
                .map_err(std::io::Error::other)??
        }
    };
    compression::gzip_member(&part, own)
}

async fn ready(State(state): State<AppState>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        "Ready\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Not ready\n").into_response()
    }
}

/// `POST /-/reload`, as in Prometheus: 403 unless `--web.enable-lifecycle`, 200 once the new
/// config runs, 500 with the reason when it was rejected (the old one keeps running).
async fn reload(State(state): State<AppState>) -> Response {
    let Some(sender) = state.reload else {
        return (StatusCode::FORBIDDEN, "Lifecycle API is not enabled.\n").into_response();
    };
    let (respond, outcome) = oneshot::channel();
    if sender.send(ReloadRequest { respond }).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match outcome.await {
        Ok(Ok(())) => "Reloaded\n".into_response(),
        Ok(Err(reason)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {reason}\n"),
        )
            .into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}

/// `GET /`: the status page, filtered by its query string (`state`, `kind`, `q`, `page`); an
/// unknown state or kind, or a bad page number, is a 400 that names the parameter.
async fn landing(
    State(state): State<AppState>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let filter = match TargetFilter::from_query(&query) {
        Ok(filter) => filter,
        Err(problem) => return (StatusCode::BAD_REQUEST, format!("{problem}\n")).into_response(),
    };
    let discovery = state.discovery.snapshot();
    let inputs = status_page::PageInputs {
        targets: &state.status.snapshot(),
        discovery: discovery.as_deref(),
        now: state.clock.now_unix(),
        telemetry_path: &state.telemetry_path,
        tokens: &state.tokens.report(),
        shard: state.shard,
        solo: &state.limiter.solo().list(),
    };
    Html(status_page(&inputs, &filter)).into_response()
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use axum::body::to_bytes;
    use axum::http::Request;
    use tower::ServiceExt as _;

    use super::*;
    use crate::clock::SystemClock;
    use crate::exposition::{encode, Family, Sample};
    use crate::store::Slot;
    use crate::target::{TargetKey, TargetKind};

    fn state() -> AppState {
        AppState {
            store: Arc::new(SnapshotStore::new()),
            status: Arc::new(StatusBoard::default()),
            metrics: ExporterMetrics::new().expect("metrics"),
            telemetry_path: "/metrics".to_owned(),
            ready: Arc::new(AtomicBool::new(true)),
            clock: Arc::new(SystemClock),
            reload: None,
            discovery: Arc::default(),
            tokens: Arc::new(TokenBoard::default()),
            shard: crate::shard::Shard::default(),
            limiter: Arc::new(crate::graph::ratelimit::RateLimiter::for_tests(None)),
        }
    }

    fn publish(store: &SnapshotStore, id: &str) {
        let key = TargetKey {
            kind: TargetKind::Page,
            id: id.to_owned(),
        };
        let samples = (0..500)
            .map(|i| Sample {
                labels: vec![("page_id".into(), id.into()), ("n".into(), i.to_string())],
                value: f64::from(i),
            })
            .collect();
        let families = encode(vec![Family {
            name: "page_metric".into(),
            help: "h".into(),
            samples,
        }]);
        store.publish(&key, Slot::Data(0), families, None);
    }

    async fn gzip_scrape(app: &Router) -> Vec<u8> {
        let request = Request::get("/metrics")
            .header(header::ACCEPT_ENCODING, "gzip")
            .body(Body::empty())
            .expect("request");
        let response = app.clone().oneshot(request).await.expect("response");
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
        let length: usize = response.headers()[header::CONTENT_LENGTH]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("a number");
        let body = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        assert_eq!(body.len(), length);
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut text)
            .expect("one gzip member");
        text
    }

    #[tokio::test]
    async fn an_unchanged_store_is_deflated_once_however_often_it_is_scraped() {
        let state = state();
        let store = state.store.clone();
        let cache = Arc::new(GzipCache::default());
        let app = routes(state, cache.clone());
        publish(&store, "1");

        let first = gzip_scrape(&app).await;
        let second = gzip_scrape(&app).await;
        assert_eq!(cache.compressions(), 1);
        let rendered = store.render(tokio::time::Instant::now());
        for text in [&first, &second] {
            assert!(text.starts_with(&rendered), "the store's part comes first");
            assert!(String::from_utf8_lossy(&text[rendered.len()..])
                .contains("meta_messaging_exporter_build_info"));
        }

        publish(&store, "2");
        let third = gzip_scrape(&app).await;
        assert_eq!(cache.compressions(), 2, "a new snapshot is deflated anew");
        assert!(String::from_utf8_lossy(&third).contains("page_id=\"2\""));
    }
}

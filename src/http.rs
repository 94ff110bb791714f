//! The HTTP side: `/metrics`, the landing page, health and readiness.
//!
//! [`router`] builds the axum app from shared state, so tests can drive it in-process. The
//! telemetry path serves the snapshot store's cached body followed by the exporter's own
//! metrics, streamed as two chunks without copying; a scrape never calls Meta. The landing
//! page is server-rendered HTML with no external assets, every value escaped.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use chrono::DateTime;

use tokio::sync::{mpsc, oneshot};

use crate::app::ReloadRequest;
use crate::clock::Clock;
use crate::self_metrics::ExporterMetrics;
use crate::status::StatusBoard;
use crate::store::SnapshotStore;

/// Content type of the text exposition format.
pub const EXPOSITION_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

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
}

/// The exporter's HTTP routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(&state.telemetry_path.clone(), get(metrics))
        .route("/", get(landing))
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload).put(reload))
        .with_state(state)
}

async fn metrics(State(state): State<AppState>) -> Response {
    let data = state.store.render(tokio::time::Instant::now());
    let own = match state.metrics.encode() {
        Ok(own) => Bytes::from(own),
        Err(error) => {
            tracing::error!(%error, "encoding the exporter's own metrics failed");
            Bytes::new()
        }
    };
    let chunks = futures::stream::iter([Ok::<_, std::convert::Infallible>(data), Ok(own)]);
    let mut response = Response::new(Body::from_stream(chunks));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(EXPOSITION_CONTENT_TYPE),
    );
    response
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

async fn landing(State(state): State<AppState>) -> Html<String> {
    let now = state.clock.now_unix();
    let esc = |text: &str| html_escape::encode_text(text).into_owned();
    let path = html_escape::encode_double_quoted_attribute(&state.telemetry_path).into_owned();
    let mut page = String::with_capacity(4096);
    let _ = write!(
        page,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Meta messaging exporter</title>
<style>body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}th{{background:#f3f3f3}}.ok{{color:#176f2c}}.failing{{color:#b15c00}}.disabled{{color:#b00020;font-weight:bold}}.pending{{color:#666}}</style>
</head><body>
<h1>Meta messaging exporter</h1>
<p>Prometheus exporter for Meta messaging analytics: Page messaging insights, marketing-message campaign insights and WhatsApp Business Account analytics, polled from the Graph API in the background. Version {version}.</p>
<p><a href="{path}">Metrics</a> &middot; <a href="/-/healthy">Health</a> &middot; <a href="/-/ready">Readiness</a></p>
<h2>Targets</h2>
<table><tr><th>Kind</th><th>ID</th><th>State</th><th>Interval</th><th>Last poll</th><th>Last success</th><th>Next poll</th><th>Last error</th></tr>
"#,
        version = env!("CARGO_PKG_VERSION"),
    );
    for (key, status) in state.status.snapshot() {
        let error = status
            .last_error
            .as_ref()
            .map_or_else(String::new, |error| {
                let code = error.code.map(|c| format!(" code {c}")).unwrap_or_default();
                format!(
                    "{}{code}, {}: {}",
                    error.class,
                    when(error.at, now),
                    esc(&error.message)
                )
            });
        let state_text = match status.disabled_reason {
            Some(reason) => format!("disabled: {reason}"),
            None => status.state.as_str().to_owned(),
        };
        let dropped = if status.dropped.is_empty() {
            String::new()
        } else {
            format!("<br>dropped: {}", esc(&status.dropped.join(", ")))
        };
        let _ = writeln!(
            page,
            "<tr><td>{kind}</td><td>{id}</td><td class=\"{class}\">{state_text}</td><td>{interval}</td><td>{last_poll}</td><td>{last_success}</td><td>{next_poll}</td><td>{error}{dropped}</td></tr>",
            kind = key.kind.as_str(),
            id = esc(&key.id),
            class = status.state.as_str(),
            interval = humantime::format_duration(status.interval),
            last_poll = status.last_poll.map_or_else(|| "never".to_owned(), |t| when(t, now)),
            last_success = status.last_success.map_or_else(|| "never".to_owned(), |t| when(t, now)),
            next_poll = status.next_poll.map_or_else(|| "-".to_owned(), |t| when(t, now)),
        );
    }
    page.push_str("</table>\n</body></html>\n");
    Html(page)
}

/// A time as UTC and relative to now, e.g. `2026-11-21 13:05:00 UTC (3m 2s ago)`.
fn when(at: i64, now: i64) -> String {
    let absolute = DateTime::from_timestamp(at, 0).map_or_else(
        || at.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    );
    let distance = humantime::format_duration(std::time::Duration::from_secs(at.abs_diff(now)));
    if at <= now {
        format!("{absolute} ({distance} ago)")
    } else {
        format!("{absolute} (in {distance})")
    }
}

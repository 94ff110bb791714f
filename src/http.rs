//! The HTTP side: `/metrics`, the landing page, health and readiness.
//!
//! [`router`] builds the axum app from shared state, so tests can drive it in-process. The
//! telemetry path serves the snapshot store's cached body followed by the exporter's own
//! metrics, streamed as two chunks without copying; a scrape never calls Meta. The landing
//! page is a status page read at a glance: a count of targets per state, then one row per
//! target with its state, last success, next poll and last error (class, Graph code, message).
//! It is server-rendered HTML with inline styles and no external assets, every value escaped.

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
use crate::status::{State as TargetState, StatusBoard, TargetStatus};
use crate::store::SnapshotStore;
use crate::target::TargetKey;

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
    Html(status_page(
        &state.status.snapshot(),
        now,
        &state.telemetry_path,
    ))
}

/// How often the status page reloads itself: often enough to follow a failing target, rarely
/// enough not to matter next to Prometheus' scrapes (each render only reads the status board).
const STATUS_PAGE_REFRESH_SECONDS: u32 = 30;

/// The status page: a summary line and one row per target. Every value that comes from the
/// config or the Graph API (ids, error messages, dropped metric names) is HTML-escaped; the
/// rest are fixed strings and numbers. Styles are inline so the page needs nothing else.
pub fn status_page(
    targets: &[(TargetKey, TargetStatus)],
    now: i64,
    telemetry_path: &str,
) -> String {
    let esc = |text: &str| html_escape::encode_text(text).into_owned();
    let path = html_escape::encode_double_quoted_attribute(telemetry_path).into_owned();
    let count = |state: TargetState| targets.iter().filter(|(_, s)| s.state == state).count();
    let mut page = String::with_capacity(4096 + 512 * targets.len());
    let _ = write!(
        page,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{refresh}">
<title>Meta messaging exporter</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#1f2328;background:#fff}}
h1{{font-size:1.5em;margin:0 0 .2em}}
a{{color:#0b57d0}}
.muted{{color:#59636e}}
.summary{{font-size:1.05em;margin:1em 0}}
.badge{{display:inline-block;border-radius:1em;padding:.15em .7em;margin-right:.4em;font-weight:600}}
table{{border-collapse:collapse;width:100%}}
th,td{{border-bottom:1px solid #d1d9e0;padding:.45em .6em;text-align:left;vertical-align:top}}
th{{background:#f6f8fa;font-weight:600;white-space:nowrap}}
td.id,td.code{{font-family:ui-monospace,monospace}}
td.time,td.id{{white-space:nowrap}}
td.error{{min-width:20em;overflow-wrap:anywhere}}
td small{{color:#59636e}}
.ok{{background:#dafbe1;color:#116329}}
.failing{{background:#fff1c2;color:#7d4e00}}
.disabled{{background:#ffebe9;color:#a40e26}}
.pending{{background:#eff2f5;color:#59636e}}
tr.row-failing{{background:#fffbeb}}
tr.row-disabled{{background:#fff5f5}}
</style>
</head><body>
<h1>Meta messaging exporter</h1>
<p class="muted">Page messaging insights, marketing-message campaign insights and WhatsApp Business Account analytics, polled from the Graph API in the background; scrapes never call Meta. Version {version}.</p>
<p><a href="{path}">Metrics</a> &middot; <a href="/-/healthy">Health</a> &middot; <a href="/-/ready">Readiness</a></p>
<p class="summary"><strong>{total} {targets_word}:</strong> <span class="badge ok">{ok} ok</span><span class="badge failing">{failing} failing</span><span class="badge disabled">{disabled} disabled</span><span class="badge pending">{pending} pending</span> <span class="muted">as of {now_text}; this page reloads every {refresh} s</span></p>
<table>
<thead><tr><th>Kind</th><th>ID</th><th>State</th><th>Interval</th><th>Last success</th><th>Next poll</th><th>Last poll</th><th>Code</th><th>Last error</th></tr></thead>
<tbody>
"#,
        refresh = STATUS_PAGE_REFRESH_SECONDS,
        version = env!("CARGO_PKG_VERSION"),
        total = targets.len(),
        targets_word = if targets.len() == 1 {
            "target"
        } else {
            "targets"
        },
        ok = count(TargetState::Ok),
        failing = count(TargetState::Failing),
        disabled = count(TargetState::Disabled),
        pending = count(TargetState::Pending),
        now_text = utc(now),
    );
    if targets.is_empty() {
        page.push_str("<tr><td colspan=\"9\" class=\"muted\">No targets configured.</td></tr>\n");
    }
    for (key, status) in targets {
        let class = status.state.as_str();
        let state_text = match status.disabled_reason {
            Some(reason) => format!("disabled: {reason}"),
            None => class.to_owned(),
        };
        let (code, error) = match &status.last_error {
            None => ("-".to_owned(), String::new()),
            Some(error) => (
                error
                    .code
                    .map_or_else(|| "-".to_owned(), |code| code.to_string()),
                format!(
                    "{class}: {message} <small>({at})</small>",
                    class = error.class,
                    message = esc(&error.message),
                    at = when(error.at, now),
                ),
            ),
        };
        let dropped = if status.dropped.is_empty() {
            String::new()
        } else {
            format!(
                "<br><small>no longer requested (rejected by the API): {}</small>",
                esc(&status.dropped.join(", "))
            )
        };
        let _ = writeln!(
            page,
            "<tr class=\"row-{class}\"><td>{kind}</td><td class=\"id\">{id}</td><td><span class=\"badge {class}\">{state_text}</span></td><td>{interval}</td><td class=\"time\">{last_success}</td><td class=\"time\">{next_poll}</td><td class=\"time\">{last_poll}</td><td class=\"code\">{code}</td><td class=\"error\">{error}{dropped}</td></tr>",
            // A break opportunity after each underscore lets whatsapp_business_account wrap
            // in a narrow window instead of widening the table; the text stays the label value.
            kind = key.kind.as_str().replace('_', "_<wbr>"),
            id = esc(&key.id),
            interval = humantime::format_duration(status.interval),
            last_success = status.last_success.map_or_else(|| "never".to_owned(), |t| when(t, now)),
            next_poll = match status.next_poll {
                None => "-".to_owned(),
                // Say why a poll is later than its interval: a rate-limit pause or slowdown.
                Some(t) if !status.backoff.is_zero() => format!(
                    "{} <small>(rate limit: +{})</small>",
                    when(t, now),
                    humantime::format_duration(std::time::Duration::from_secs(status.backoff.as_secs()))
                ),
                Some(t) => when(t, now),
            },
            last_poll = status.last_poll.map_or_else(|| "never".to_owned(), |t| when(t, now)),
        );
    }
    page.push_str("</tbody></table>\n</body></html>\n");
    page
}

/// A unix time as `2026-11-21 13:05:00 UTC`.
fn utc(at: i64) -> String {
    DateTime::from_timestamp(at, 0).map_or_else(
        || at.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// A time relative to now (`3m 2s ago`, `now`, `in 5s`), with the UTC time as its tooltip:
/// relative times read at a glance, and the summary line gives the page's own UTC time.
fn when(at: i64, now: i64) -> String {
    let distance = humantime::format_duration(std::time::Duration::from_secs(at.abs_diff(now)));
    let relative = if at == now {
        "now".to_owned()
    } else if at < now {
        format!("{distance} ago")
    } else {
        format!("in {distance}")
    };
    format!("<span title=\"{}\">{relative}</span>", utc(at))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::status::LastError;
    use crate::target::TargetKind;

    const NOW: i64 = 1_790_000_000;

    fn status(state: TargetState) -> TargetStatus {
        TargetStatus {
            state,
            ..TargetStatus::new(Duration::from_secs(900))
        }
    }

    #[test]
    fn a_poll_pushed_out_by_the_rate_limiter_says_so() {
        let paused = TargetStatus {
            next_poll: Some(NOW + 600),
            backoff: Duration::from_secs(120),
            ..status(TargetState::Failing)
        };
        let page = status_page(&[(key(TargetKind::Page, "1"), paused)], NOW, "/metrics");
        assert!(
            page.contains("in 10m</span> <small>(rate limit: +2m)</small>"),
            "{page}"
        );
    }

    fn key(kind: TargetKind, id: &str) -> TargetKey {
        TargetKey {
            kind,
            id: id.to_owned(),
        }
    }

    #[test]
    fn the_summary_counts_every_state_and_each_row_shows_its_state_times_and_error() {
        let ok = TargetStatus {
            last_poll: Some(NOW - 62),
            last_success: Some(NOW - 61),
            next_poll: Some(NOW + 838),
            ..status(TargetState::Ok)
        };
        let disabled = TargetStatus {
            disabled_reason: Some("invalid_token"),
            last_poll: Some(NOW - 5),
            last_error: Some(LastError {
                class: "invalid_token",
                code: Some(190),
                message: "Error validating access token".to_owned(),
                at: NOW - 5,
            }),
            ..status(TargetState::Disabled)
        };
        let targets = vec![
            (key(TargetKind::Page, "PAGE1"), ok),
            (key(TargetKind::Campaign, "C1"), disabled),
            (
                key(TargetKind::WhatsappBusinessAccount, "W1"),
                status(TargetState::Pending),
            ),
        ];
        let page = status_page(&targets, NOW, "/metrics");
        assert!(page.contains("<strong>3 targets:</strong> <span class=\"badge ok\">1 ok</span><span class=\"badge failing\">0 failing</span><span class=\"badge disabled\">1 disabled</span><span class=\"badge pending\">1 pending</span>"), "{page}");
        assert!(page.contains("<tr class=\"row-ok\"><td>page</td><td class=\"id\">PAGE1</td><td><span class=\"badge ok\">ok</span></td><td>15m</td><td class=\"time\"><span title=\"2026-09-21 14:12:19 UTC\">1m 1s ago</span></td><td class=\"time\"><span title=\"2026-09-21 14:27:18 UTC\">in 13m 58s</span></td>"), "{page}");
        assert!(page.contains("<tr class=\"row-disabled\"><td>campaign</td><td class=\"id\">C1</td><td><span class=\"badge disabled\">disabled: invalid_token</span></td><td>15m</td><td class=\"time\">never</td><td class=\"time\">-</td><td class=\"time\"><span title=\"2026-09-21 14:13:15 UTC\">5s ago</span></td><td class=\"code\">190</td><td class=\"error\">invalid_token: Error validating access token <small>(<span title=\"2026-09-21 14:13:15 UTC\">5s ago</span>)</small></td></tr>"), "{page}");
        assert!(page.contains("<tr class=\"row-pending\"><td>whatsapp_<wbr>business_<wbr>account</td><td class=\"id\">W1</td><td><span class=\"badge pending\">pending</span></td><td>15m</td><td class=\"time\">never</td><td class=\"time\">-</td><td class=\"time\">never</td><td class=\"code\">-</td><td class=\"error\"></td></tr>"), "{page}");
    }

    #[test]
    fn ids_messages_dropped_items_and_the_metrics_path_are_escaped() {
        let failing = TargetStatus {
            last_error: Some(LastError {
                class: "other",
                code: None,
                message: "<script>alert(1)</script> & \"quotes\"".to_owned(),
                at: NOW,
            }),
            dropped: vec!["<b>metric</b>".to_owned()],
            ..status(TargetState::Failing)
        };
        let targets = vec![(key(TargetKind::Page, "<img src=x>"), failing)];
        let page = status_page(&targets, NOW, "/m\"><script>");
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("<b>"), "{page}");
        assert!(
            page.contains("<td class=\"id\">&lt;img src=x&gt;</td>"),
            "{page}"
        );
        assert!(
            page.contains("other: &lt;script&gt;alert(1)&lt;/script&gt; &amp; \"quotes\""),
            "{page}"
        );
        assert!(page.contains("&lt;b&gt;metric&lt;/b&gt;"), "{page}");
        assert!(
            page.contains("<a href=\"/m&quot;&gt;&lt;script&gt;\">Metrics</a>"),
            "{page}"
        );
        assert!(page.contains("<strong>1 target:</strong>"), "{page}");
    }

    #[test]
    fn an_empty_config_says_so() {
        let page = status_page(&[], NOW, "/metrics");
        assert!(page.contains("<strong>0 targets:</strong>"), "{page}");
        assert!(page.contains("No targets configured."), "{page}");
    }
}

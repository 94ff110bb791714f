//! The HTTP server: the accept loop, its limits and timeouts, and what `--web.config.file`
//! (the Prometheus exporter-toolkit format) puts around the routes.
//!
//! This module owns how connections are served: [`serve`] runs its own accept loop (hyper-util's
//! HTTP/1 and HTTP/2 connection builder driving the axum router) rather than `axum::serve`, so
//! it can cap connections and time out slow or idle clients, and it owns the listener's
//! security: TLS (with optional client certificates), basic auth, and the extra response
//! headers the toolkit allows. It does not own the routes ([`crate::http`]) or the shutdown
//! policy ([`crate::app`]): [`serve`] takes the router and the cancellation token, and the
//! caller bounds how long it waits for open requests.
//!
//! - [`connections`]: the connection cap, overall and per client, and each connection's
//!   header, idle and write deadlines and its minimum write rate.
//! - [`config`]: the file as written, checked into a [`WebConfig`]. Certificates and keys are
//!   read and the rustls server config is built there, so a bad file fails before any port is
//!   bound, naming the key.
//! - [`tls`]: the toolkit's names mapped onto rustls, and a listener that performs handshakes
//!   off the accept loop.
//! - [`auth`]: bcrypt basic auth with a verification cache, and the middleware that applies it
//!   and the extra headers to every route.
//!
//! The file is read once at start-up. exporter-toolkit re-reads it on every request and
//! handshake; here a change needs a restart (or a reload that builds a new [`WebConfig`]).

pub mod auth;
pub mod config;
pub mod connections;
pub mod tls;

use std::convert::Infallible;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use axum::Router;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

pub use self::config::{from_yaml, load, WebConfig};
use self::connections::{
    ConnectionLimit, ConnectionMetrics, Expiry, LimitedListener, RequestGuard, Tracked,
};
use crate::self_metrics::ExporterMetrics;

/// Limits and timeouts of the HTTP server, from the `--web.*` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSettings {
    /// How long a client gets to send a whole request header: from accept for the first
    /// request (a TLS handshake included), from the first byte for later ones.
    pub read_header_timeout: Duration,
    /// How long a keep-alive connection with no request in progress stays open.
    pub idle_timeout: Duration,
    /// How long a request may take from its header to the last byte of its response: a
    /// client that reads its answer slower than that is disconnected.
    pub write_timeout: Duration,
    /// Open connections at most, counted per socket before any TLS handshake.
    pub max_connections: usize,
    /// Open connections at most from one client (an IPv4 address or an IPv6 /64).
    pub max_connections_per_client: usize,
    /// Bytes per second a connection must move while it waits on its client, measured over
    /// each `write_rate_window`; 0 turns the check off.
    pub min_write_rate: u64,
    /// The window over which `min_write_rate` is measured, and so the grace a response gets.
    pub write_rate_window: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            read_header_timeout: Duration::from_secs(10),
            // Above the common scrape intervals (15s to 1m, and Prometheus's default of 1m),
            // so Prometheus reuses one connection across scrapes instead of reconnecting each
            // time; well below the hours an abandoned connection would otherwise last.
            idle_timeout: Duration::from_secs(120),
            // Far above what a scrape of 100,000 series takes (tens of milliseconds) and above
            // Prometheus's largest useful scrape_timeout; it only bounds a client that reads
            // its answer so slowly that it holds a slot the cap cannot take back.
            write_timeout: Duration::from_secs(120),
            // A scraper or two and a few people on the status page need a handful; a few
            // hundred leaves room for many Prometheus replicas while bounding what idle and
            // half-open connections can hold (a few KiB to tens of KiB each).
            max_connections: 512,
            // An eighth of the cap: a browser opens six or so, a Prometheus a few per target
            // it scrapes through here, while eight addresses are needed to fill the cap.
            max_connections_per_client: 64,
            // 64 KiB/s moves a 14 MB /metrics in under four minutes, longer than any scrape
            // timeout, so a real scraper is never near it (Prometheus on a LAN reads
            // hundreds of MB/s); a client reading a byte at a time is far below.
            min_write_rate: 64 * 1024,
            // Longer than a TCP retransmission or two on a lossy link, short enough that a
            // slot held by a stalled reader comes back within seconds.
            write_rate_window: Duration::from_secs(5),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops accepting, closes
/// idle connections and connections that never sent a request, and waits for the requests in
/// progress to finish. The caller bounds that wait (see [`crate::app::run`]); aborting the
/// returned future closes every connection still open.
///
/// Connections are capped and timed out as [`ServerSettings`] says (see [`connections`]).
/// With `web` set, every response (401s included) carries the configured headers, every route
/// (404s included) requires basic auth when users are configured, and with TLS configured the
/// listener speaks only TLS: a plain HTTP request fails its handshake. With `web` unset this is
/// plain HTTP, open to anyone.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    web: Option<WebConfig>,
    settings: ServerSettings,
    metrics: ExporterMetrics,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let limit = ConnectionLimit::new(
        settings,
        ConnectionMetrics {
            open: metrics.http_connections_open,
            rejected: metrics.http_connections_rejected,
        },
    );
    let auth_refused = metrics.http_auth_refused;
    let listener = LimitedListener::new(listener, limit);
    let Some(web) = web else {
        return accept_loop(listener, router, shutdown).await;
    };
    tracing::info!(
        tls = web.tls.is_some(),
        basic_auth_users = web
            .basic_auth
            .as_ref()
            .map_or(0, auth::BasicAuth::user_count),
        extra_headers = web.headers.len(),
        "web config applied"
    );
    let router = auth::layer(router, &web, auth_refused);
    match web.tls {
        Some(tls) => {
            let listener = tls::TlsListener::new(listener, tls, settings.read_header_timeout);
            accept_loop(listener, router, shutdown).await
        }
        None => accept_loop(listener, router, shutdown).await,
    }
}

/// Accepts until `shutdown`, serving each connection in a task of its own. The tasks live in
/// a `JoinSet`, so dropping this future (the caller's grace period ran out) closes them all.
async fn accept_loop<L>(
    mut listener: L,
    router: Router,
    shutdown: CancellationToken,
) -> io::Result<()>
where
    L: Listener,
    L::Io: Tracked,
{
    let mut builder = Builder::new(TokioExecutor::new());
    // hyper's own header read timeout is off: it starts when hyper begins reading a request
    // head, which on a keep-alive connection is straight after the previous response, so it
    // would also close every connection idle for that long and make an idle timeout longer
    // than the header timeout impossible. It also does not cover the HTTP/1-or-2 detection
    // that reads the first bytes. The deadlines in `connections` do both jobs instead.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None);
    // HTTP/2 keep-alive pings and hyper's other HTTP/2 timers need a timer.
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            (io, _peer) = listener.accept() => {
                connections.spawn(serve_connection(io, router.clone(), builder.clone(), shutdown.clone()));
            }
            Some(done) = connections.join_next(), if !connections.is_empty() => log_panic(done),
        }
    }
    // Stop accepting: the listening socket closes, and TLS handshakes in progress are dropped.
    drop(listener);
    while let Some(done) = connections.join_next().await {
        log_panic(done);
    }
    Ok(())
}

fn log_panic(done: Result<(), tokio::task::JoinError>) {
    if let Err(error) = done {
        if error.is_panic() {
            tracing::error!(%error, "an HTTP connection task panicked");
        }
    }
}

/// Serves one connection until it ends, its deadline passes, or shutdown; see
/// [`connections`] for the deadlines.
async fn serve_connection<I>(
    io: I,
    router: Router,
    builder: Arc<Builder<TokioExecutor>>,
    shutdown: CancellationToken,
) where
    I: Tracked + AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connection = io.connection().clone();
    let service = {
        let connection = connection.clone();
        hyper::service::service_fn(move |mut request: Request<Incoming>| {
            // From here to the end of the response body the connection is busy: no deadline,
            // and never evicted.
            let mut guard = connection.request_started();
            // As axum's own server does: basic auth counts password checks per client.
            request
                .extensions_mut()
                .insert(ConnectInfo(connection.peer()));
            let router = router.clone();
            async move {
                let response = match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                guard.responding();
                Ok::<_, Infallible>(response.map(|body| {
                    Body::new(GuardedBody {
                        body,
                        _guard: guard,
                    })
                }))
            }
        })
    };
    let mut conn = pin!(builder.serve_connection(TokioIo::new(io), service));
    let mut closing = false;
    let mut stopping = false;
    loop {
        let next_check = connection.next_check();
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "HTTP connection ended with an error");
                }
                return;
            }
            () = connection.changed() => {}
            () = sleep_until(next_check) => match connection.expire() {
                Some(Expiry::Close | Expiry::TooSlow) => return,
                Some(Expiry::Graceful) if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                Some(Expiry::Graceful) | None => {}
            },
            () = shutdown.cancelled(), if !stopping => {
                stopping = true;
                // Nothing is in progress on a connection that never sent a request.
                if !connection.has_served() {
                    return;
                }
                if !closing {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
        if connection.is_evicted() {
            return;
        }
    }
}

/// Sleeps until the deadline, or for ever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A response body that holds its request's [`RequestGuard`], so the connection counts as
/// busy until the body has been sent (or abandoned).
struct GuardedBody {
    body: Body,
    _guard: RequestGuard,
}

impl http_body::Body for GuardedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

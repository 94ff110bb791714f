//! How the routes are reached: `--web.config.file` in the Prometheus exporter-toolkit format.
//!
//! This module owns the HTTP listener's security: TLS (with optional client certificates),
//! basic auth, and the extra response headers the toolkit allows. It does not own the routes
//! ([`crate::http`]) or the shutdown policy ([`crate::app`]); [`serve`] takes the router and the
//! cancellation token and replaces a bare `axum::serve`, so the caller's grace period still
//! applies.
//!
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
pub mod tls;

use std::io;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use self::config::{from_yaml, load, WebConfig};

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops accepting and waits
/// for open connections to finish their requests, as `axum::serve(..).with_graceful_shutdown`
/// does. The caller bounds that wait (see [`crate::app::run`]).
///
/// With `web` set, every response (401s included) carries the configured headers, every route
/// (404s included) requires basic auth when users are configured, and with TLS configured the
/// listener speaks only TLS: a plain HTTP request fails its handshake. With `web` unset this is
/// plain HTTP, open to anyone.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    web: Option<WebConfig>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let stopped = shutdown.cancelled_owned();
    let Some(web) = web else {
        return axum::serve(listener, router)
            .with_graceful_shutdown(stopped)
            .await;
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
    let router = auth::layer(router, &web);
    match web.tls {
        Some(tls) => {
            axum::serve(tls::TlsListener::new(listener, tls), router)
                .with_graceful_shutdown(stopped)
                .await
        }
        None => {
            axum::serve(listener, router)
                .with_graceful_shutdown(stopped)
                .await
        }
    }
}

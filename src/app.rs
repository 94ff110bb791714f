//! Wiring: builds every part from a validated config and runs them until shutdown.
//!
//! [`run`] takes a listener the caller bound (tests pass port 0) and a cancellation token
//! (main cancels it on SIGTERM or Ctrl-C). It creates the metrics registry, Graph API client,
//! snapshot store, status board and scheduler, serves HTTP with graceful shutdown, and on the
//! way out marks itself not ready, stops accepting, and stops the poll tasks within a bound.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::graph::GraphClient;
use crate::http::{router, AppState};
use crate::scheduler::{Scheduler, Shared};
use crate::self_metrics::ExporterMetrics;
use crate::status::StatusBoard;
use crate::store::SnapshotStore;
use crate::target::Target;
use crate::web::{self, WebConfig};

/// Settings that come from flags rather than the config file.
#[derive(Clone)]
pub struct Options {
    /// Path of the metrics endpoint, e.g. `/metrics`.
    pub telemetry_path: String,
    /// Wall clock (tests fix it).
    pub clock: Arc<dyn Clock>,
    /// How long poll tasks get to stop at shutdown.
    pub shutdown_grace: Duration,
    /// TLS, basic auth and extra headers from `--web.config.file`; `None` serves plain HTTP.
    pub web: Option<WebConfig>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            telemetry_path: "/metrics".to_owned(),
            clock: Arc::new(SystemClock),
            shutdown_grace: Duration::from_secs(5),
            web: None,
        }
    }
}

/// Runs the exporter on `listener` until `shutdown` is cancelled.
pub async fn run(
    listener: TcpListener,
    config: Config,
    options: Options,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let metrics = ExporterMetrics::new().context("creating the exporter's own metrics")?;
    let client = GraphClient::new(&config.graph_api, &config.polling, metrics.clone())
        .context("creating the Graph API client")?;
    let store = Arc::new(SnapshotStore::new());
    let status = Arc::new(StatusBoard::default());
    let shared = Arc::new(Shared {
        client,
        store: store.clone(),
        status: status.clone(),
        metrics: metrics.clone(),
        clock: options.clock.clone(),
    });
    let mut scheduler = Scheduler::new(shared, shutdown.child_token());
    scheduler.apply(Target::all(&config));

    let ready = Arc::new(AtomicBool::new(true));
    let app = router(AppState {
        store,
        status,
        metrics,
        telemetry_path: options.telemetry_path.clone(),
        ready: ready.clone(),
        clock: options.clock.clone(),
    });
    let address = listener
        .local_addr()
        .context("reading the listen address")?;
    tracing::info!(%address, telemetry_path = %options.telemetry_path, "serving metrics");

    let mut server = tokio::spawn(web::serve(
        listener,
        app,
        options.web.clone(),
        shutdown.clone(),
    ));
    let ended_early = tokio::select! {
        result = &mut server => Some(result),
        () = shutdown.cancelled() => None,
    };
    ready.store(false, Ordering::Release);
    let served = match ended_early {
        Some(result) => result,
        // Open connections get the grace period to finish their requests; then they are cut.
        None => match tokio::time::timeout(options.shutdown_grace, &mut server).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(grace = ?options.shutdown_grace, "HTTP connections still open after the grace period; closing them");
                server.abort();
                Ok(Ok(()))
            }
        },
    };
    scheduler.shutdown(options.shutdown_grace).await;
    tracing::info!("stopped");
    served.context("HTTP server task")?.context("serving HTTP")
}

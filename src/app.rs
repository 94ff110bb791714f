//! Wiring: builds every part from a validated config, runs them, reloads, shuts down.
//!
//! [`run`] takes a listener the caller bound (tests pass port 0) and a cancellation token
//! (main cancels it on SIGTERM or Ctrl-C). It creates the metrics registry, rate limiter,
//! Graph API client, snapshot store, status board, outcome applier, scheduler, discovery loop
//! and token health check, serves HTTP, and then waits for one of: shutdown, a reload request
//! (`POST /-/reload` when the lifecycle API is enabled, SIGHUP when asked to listen for it), a
//! discovery report (merged into the inventory and applied like a reload), or a change in a
//! token file. A reload that fails validation leaves everything running as it was. A token file
//! change re-reads the token files of the running config only, never `config.yaml`, so a file
//! that is half edited at that moment is not applied. On the way out it marks itself not
//! ready, gives open requests a grace period, and stops the poll tasks within a bound.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::config::{self, Config};
use crate::discovery::{self, DiscoveryBoard, Inventory};
use crate::graph::ratelimit::RateLimiter;
use crate::graph::GraphClient;
use crate::http::{router, AppState, ReloadRequest};
use crate::outcome::Applier;
use crate::poller::guard::SeriesLimits;
use crate::redact::Redactor;
use crate::scheduler::source::SourceSettings;
use crate::scheduler::{GraphSource, Scheduler};
use crate::secret::{AccessToken, AppSecret};
use crate::self_metrics::ExporterMetrics;
use crate::shard::Shard;
use crate::status::StatusBoard;
use crate::store::SnapshotStore;
use crate::target::Target;
use crate::token_health::checker::CheckSettings;
use crate::token_health::TokenHealth;
use crate::web::{self, WebConfig};

/// Settings that come from flags rather than the config file.
#[derive(Clone)]
pub struct Options {
    /// Path of the metrics endpoint, e.g. `/metrics`.
    pub telemetry_path: String,
    /// Wall clock (tests fix it).
    pub clock: Arc<dyn Clock>,
    /// How long open requests and poll tasks get to stop at shutdown.
    pub shutdown_grace: Duration,
    /// The file the config came from, re-read on reload; `None` (demo mode) cannot reload.
    pub config_file: Option<PathBuf>,
    /// Serve `POST /-/reload` (`--web.enable-lifecycle`).
    pub enable_lifecycle: bool,
    /// Reload on SIGHUP (the binary does; in-process tests do not).
    pub reload_on_sighup: bool,
    /// How often token files are checked for rotation.
    pub token_file_check_interval: Duration,
    /// TLS, basic auth and extra headers from `--web.config.file`; `None` serves plain HTTP.
    pub web: Option<WebConfig>,
    /// Connection cap and timeouts of the HTTP server (`--web.max-connections`, ...).
    pub server: web::ServerSettings,
    /// Which targets this instance polls (`--shard`, `--total-shards`).
    pub shard: Shard,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            telemetry_path: "/metrics".to_owned(),
            clock: Arc::new(SystemClock),
            shutdown_grace: Duration::from_secs(5),
            config_file: None,
            enable_lifecycle: false,
            reload_on_sighup: false,
            token_file_check_interval: Duration::from_secs(10),
            web: None,
            server: web::ServerSettings::default(),
            shard: Shard::default(),
        }
    }
}

/// How long a read of the config file or the token files may take. Local files read in
/// microseconds; one that takes seconds sits on a FIFO or a hung mount and will not finish.
const FILE_READ_DEADLINE: Duration = Duration::from_secs(5);

/// How often limiter state and usage series of businesses Meta stopped naming are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(600);

/// The running parts that a reload reconfigures.
struct Exporter {
    source: Arc<GraphSource>,
    limiter: Arc<RateLimiter>,
    metrics: ExporterMetrics,
    clock: Arc<dyn Clock>,
    scheduler: Scheduler,
    tokens: TokenHealth,
    config: Config,
    config_file: Option<PathBuf>,
    token_files: u64,
    /// A read of the config or token files still blocked past its deadline, and what it was.
    stuck_read: Option<(tokio::task::AbortHandle, String)>,
    /// What discovery has found; merged with the config's own targets on every apply.
    inventory: Inventory,
    discovery_board: Arc<DiscoveryBoard>,
    /// The running discovery loop, if the config has `discovery`.
    discovery: Option<RunningDiscovery>,
    discovery_reports: mpsc::Sender<(u64, discovery::Report)>,
    /// Counts discovery loops started; a report from any but the current one is dropped, so a
    /// loop stopped by a reload cannot refill the inventory after it.
    discovery_generation: u64,
    /// This instance's share of the targets, listed and discovered alike.
    shard: Shard,
    shutdown: CancellationToken,
}

/// A discovery loop and what it was started with, to restart it when that changes.
struct RunningDiscovery {
    config: config::DiscoveryConfig,
    generation: u64,
    cancel: CancellationToken,
}

impl Drop for RunningDiscovery {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn source_settings(config: &Config) -> SourceSettings {
    SourceSettings {
        retry_dropped_after: config.polling.retry_dropped_after,
        names_interval: config.names_interval(),
        limits: SeriesLimits {
            per_target: config.polling.max_series_per_target,
            per_metric: config.polling.max_series_per_metric,
        },
    }
}

impl Exporter {
    /// Reads the config file again and applies it; on any error the running config stays.
    async fn reload(&mut self) -> Result<(), String> {
        let metrics = self.metrics.clone();
        let result = match self.config_file.clone() {
            None => Err("no config file to reload (demo mode)".to_owned()),
            Some(path) => self.load_config(path).await,
        };
        match result {
            Ok(config) => {
                for warning in &config.warnings {
                    tracing::warn!(warning = %warning, "config");
                }
                crate::check::log_version_notices(&config, self.clock.now_unix());
                match self.apply(config) {
                    Ok(()) => {
                        metrics.config_last_reload_successful.set(1);
                        metrics
                            .config_last_reload_success_timestamp
                            .set(self.clock.now_unix());
                        tracing::info!("configuration reloaded");
                        Ok(())
                    }
                    Err(error) => {
                        metrics.config_last_reload_successful.set(0);
                        tracing::error!(
                            error = format!("{error:#}"),
                            "reload rejected; the previous configuration keeps running"
                        );
                        Err(format!("{error:#}"))
                    }
                }
            }
            Err(error) => {
                metrics.config_last_reload_successful.set(0);
                tracing::error!(%error, "reload rejected; the previous configuration keeps running");
                Err(error)
            }
        }
    }

    /// Reads and validates the config file at `path`, the file and then its token files each
    /// within [`FILE_READ_DEADLINE`], naming what did not finish.
    async fn load_config(&mut self, path: PathBuf) -> Result<Config, String> {
        let what = format!("reading {}", path.display());
        let (text, base_dir) = {
            let path = path.clone();
            self.read_files(&what, move || {
                config::read_file(&path).map(|(text, base)| (text, base.to_owned()))
            })
            .await?
            .map_err(|error| format!("{:#}", anyhow::Error::new(error)))?
        };
        let token_files = config::named_token_files(&text, &base_dir);
        let what = if token_files.is_empty() {
            format!("validating {}", path.display())
        } else {
            let files: Vec<String> = token_files
                .iter()
                .map(|file| file.display().to_string())
                .collect();
            format!(
                "reading the token files of {} ({})",
                path.display(),
                files.join(", ")
            )
        };
        self.read_files(&what, move || config::load_text(&text, &path, &base_dir))
            .await?
            .map_err(|error| error.to_string())
    }

    /// Runs `read` (file reads that may block: a FIFO, a hung NFS or secret mount) on the
    /// blocking pool for at most [`FILE_READ_DEADLINE`], so the control loop always goes on
    /// answering reloads, rotations and SIGTERM. A read past its deadline keeps its thread
    /// until it returns, and until then every new read is refused at once rather than piling
    /// up more stuck threads.
    async fn read_files<T: Send + 'static>(
        &mut self,
        what: &str,
        read: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        if let Some((stuck, stuck_what)) = &self.stuck_read {
            if !stuck.is_finished() {
                return Err(format!(
                    "{what}: not tried, since {stuck_what} is still blocked (a FIFO, a hung mount?); the running config stays"
                ));
            }
            self.stuck_read = None;
        }
        let mut handle = tokio::task::spawn_blocking(read);
        match tokio::time::timeout(FILE_READ_DEADLINE, &mut handle).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(format!("{what} failed: {error}")),
            Err(_) => {
                self.stuck_read = Some((handle.abort_handle(), what.to_owned()));
                Err(format!(
                    "{what} did not finish within {}s (a FIFO, a hung mount?); the running config stays",
                    FILE_READ_DEADLINE.as_secs()
                ))
            }
        }
    }

    /// Makes the running exporter match `config`: a new client if `graph_api` or `polling`
    /// changed, new limiter settings, and tasks started, updated or stopped only for targets
    /// that changed (see [`Scheduler::apply`]).
    fn apply(&mut self, config: Config) -> anyhow::Result<()> {
        if config.graph_api != self.config.graph_api || config.polling != self.config.polling {
            let client = GraphClient::new(
                &config.graph_api,
                &config.polling,
                self.metrics.clone(),
                self.limiter.clone(),
            )
            .context("creating the Graph API client")?;
            self.source.set_client(client);
            self.scheduler.set_polling(&config.polling);
        }
        self.source.set_settings(source_settings(&config));
        self.limiter.set_config(config.rate_limits.clone());
        let app_secret_changed = config.graph_api.app_secret != self.config.graph_api.app_secret;
        self.token_files = config::TokenFileReads::digest_of(&config);
        self.config = config;
        self.inventory.retain_configured(&self.config);
        self.discovery_board.retain_configured(&self.config);
        self.tokens.configure(&self.config.graph_api);
        self.apply_targets();
        if app_secret_changed {
            // A new app secret is a new credential for every target: one disabled by a
            // proof Meta rejected may work now.
            self.scheduler.credentials_changed();
        }
        self.restart_discovery_if_changed();
        Ok(())
    }

    /// Hands the scheduler the config's targets plus the discovered ones.
    fn apply_targets(&mut self) {
        let discovered = self.inventory.targets(&self.config);
        let configured: Vec<discovery::SourceKind> = self
            .config
            .discovery
            .iter()
            .flat_map(discovery::configured_sources)
            .collect();
        for kind in discovery::SourceKind::ALL {
            let source = kind.as_str();
            if !configured.contains(&kind) {
                // A source the config dropped takes its series with it.
                self.metrics.remove_discovery_source(source);
                continue;
            }
            let count = discovered.per_source.get(&kind).copied().unwrap_or(0);
            self.metrics
                .discovery_targets
                .with_label_values(&[source])
                .set(count as i64);
            // Counters of a configured source exist from the start, at 0, so rate() and
            // increase() see its first run and its first error.
            self.metrics.discovery_runs.with_label_values(&[source]);
            self.metrics.discovery_errors.with_label_values(&[source]);
        }
        let mut targets = Target::all(&self.config);
        targets.extend(discovered.targets);
        self.source.set_redactor(self.redactor(&targets));
        // Every replica reads the same config and discovery answers and keeps its share, so
        // the replicas together poll each target once.
        let shard = self.shard;
        targets.retain(|target| shard.owns(&target.key()));
        let check_settings = CheckSettings::from_config(&self.config.graph_api);
        let other_tokens: Vec<&AccessToken> = self
            .config
            .discovery
            .iter()
            .map(|discovery| &discovery.credentials.token)
            .chain(check_settings.as_ref().map(CheckSettings::app_token))
            .collect();
        self.scheduler.set_other_tokens(&other_tokens);
        self.scheduler
            .apply(targets, self.config.polling.first_poll_spread());
        // Discovered Page tokens are checked like configured ones, and the token discovery
        // lists with for the permissions discovery needs.
        self.tokens
            .set_targets(&self.scheduler.targets(), self.config.discovery.as_ref());
    }

    /// A redactor of every secret in use: the tokens of `targets` (every shard's, since a
    /// Page's name may quote any of them), the token discovery lists with, the app token and
    /// the app secret.
    fn redactor(&self, targets: &[Target]) -> Redactor {
        let check_settings = CheckSettings::from_config(&self.config.graph_api);
        let tokens = targets
            .iter()
            .map(|target| &target.credentials().token)
            .chain(
                self.config
                    .discovery
                    .iter()
                    .map(|discovery| &discovery.credentials.token),
            )
            .chain(check_settings.as_ref().map(CheckSettings::app_token))
            .map(AccessToken::expose);
        let secret = self
            .config
            .graph_api
            .app_secret
            .as_ref()
            .map(AppSecret::expose);
        Redactor::new(tokens.chain(secret))
    }

    /// Starts, stops or restarts the discovery loop so it runs with the current config; an
    /// unchanged `discovery` section keeps the loop (and its schedule) as it is.
    fn restart_discovery_if_changed(&mut self) {
        let wanted = self.config.discovery.clone();
        let running = self.discovery.as_ref().map(|running| &running.config);
        if running == wanted.as_ref() {
            return;
        }
        // Dropping the old loop cancels it.
        self.discovery = wanted.map(|config| {
            self.discovery_generation += 1;
            let generation = self.discovery_generation;
            let cancel = self.shutdown.child_token();
            discovery::task::spawn(
                config.clone(),
                self.source.clone(),
                self.clock.clone(),
                self.discovery_reports.clone(),
                generation,
                cancel.clone(),
            );
            RunningDiscovery {
                config,
                generation,
                cancel,
            }
        });
    }

    /// Takes one discovery report of the loop of `generation`: counts it, shows it, and
    /// applies what changed.
    fn discovered(&mut self, generation: u64, report: discovery::Report) {
        let current = self.discovery.as_ref().map(|running| running.generation);
        if current != Some(generation) {
            return;
        }
        self.metrics
            .record_discovery_run(report.kind().as_str(), report.succeeded(), report.at());
        self.discovery_board.record(&report);
        if self.inventory.record(&report) {
            self.apply_targets();
        }
    }

    /// Picks up rotated token files: re-reads them for the running config and applies the
    /// result. A file that does not read (in time) or holds no valid token keeps every old
    /// token.
    async fn rotate_tokens(&mut self) {
        // Each file is read once: the tokens compared are the tokens applied.
        let files: Vec<String> = config::token_files(&self.config)
            .iter()
            .map(|file| file.display().to_string())
            .collect();
        if files.is_empty() {
            return;
        }
        let what = format!("reading the token files ({})", files.join(", "));
        let config = self.config.clone();
        let reads = match self
            .read_files(&what, move || config::TokenFileReads::read(&config))
            .await
        {
            Ok(reads) => reads,
            Err(error) => {
                tracing::error!(%error, "checking the token files for rotation failed; the previous tokens stay");
                return;
            }
        };
        let digest = reads.digest();
        if digest == self.token_files {
            return;
        }
        match config::rotate_tokens(&self.config, &reads) {
            Ok(rotated) => {
                tracing::info!("a token file changed; using the new tokens");
                if let Err(error) = self.apply(rotated) {
                    tracing::error!(
                        error = format!("{error:#}"),
                        "applying rotated tokens failed; the previous tokens stay"
                    );
                }
            }
            Err(error) => {
                // Remember this content so the same broken file is reported once, not every
                // check; a later write changes the digest again.
                self.token_files = digest;
                tracing::error!(%error, "a token file changed but cannot be used; the previous tokens stay");
            }
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
    let limiter = Arc::new(
        RateLimiter::new(config.rate_limits.clone(), metrics.clone())
            .with_clock(options.clock.clone()),
    );
    let client = GraphClient::new(
        &config.graph_api,
        &config.polling,
        metrics.clone(),
        limiter.clone(),
    )
    .context("creating the Graph API client")?;
    let store = Arc::new(SnapshotStore::new());
    let status = Arc::new(StatusBoard::default());
    let source = Arc::new(GraphSource::new(
        client,
        options.clock.clone(),
        source_settings(&config),
    ));
    let applier = Applier::new(
        store.clone(),
        status.clone(),
        metrics.clone(),
        options.clock.clone(),
    );
    let discovery_board = Arc::new(DiscoveryBoard::default());
    let (discovery_reports, mut discovered) = mpsc::channel::<(u64, discovery::Report)>(8);
    let mut exporter = Exporter {
        inventory: Inventory::default(),
        discovery_board: discovery_board.clone(),
        discovery: None,
        discovery_reports,
        discovery_generation: 0,
        shard: options.shard,
        shutdown: shutdown.clone(),
        scheduler: Scheduler::new(
            Arc::new(source.clone()),
            limiter.clone(),
            applier,
            &config.polling,
            shutdown.child_token(),
        ),
        tokens: TokenHealth::new(
            {
                let source = source.clone();
                Arc::new(move || source.client())
            },
            options.clock.clone(),
            shutdown.child_token(),
        ),
        source,
        limiter,
        metrics: metrics.clone(),
        clock: options.clock.clone(),
        token_files: config::TokenFileReads::digest_of(&config),
        config: config.clone(),
        config_file: options.config_file.clone(),
        stuck_read: None,
    };
    exporter.discovery_board.retain_configured(&config);
    exporter.tokens.configure(&config.graph_api);
    exporter.apply_targets();
    exporter.restart_discovery_if_changed();
    metrics.config_last_reload_successful.set(1);
    metrics
        .config_last_reload_success_timestamp
        .set(options.clock.now_unix());
    metrics
        .shard
        .with_label_values(&[
            &options.shard.index().to_string(),
            &options.shard.total().to_string(),
        ])
        .set(1);
    if options.shard.total() > 1 {
        tracing::info!(
            shard = options.shard.index(),
            total_shards = options.shard.total(),
            "polling this shard's targets only"
        );
    }

    let (reload_sender, mut reload_requests) = mpsc::channel::<ReloadRequest>(4);
    let ready = Arc::new(AtomicBool::new(true));
    let app = router(AppState {
        store,
        status,
        metrics,
        telemetry_path: options.telemetry_path.clone(),
        ready: ready.clone(),
        clock: options.clock.clone(),
        reload: options.enable_lifecycle.then_some(reload_sender),
        discovery: discovery_board,
        tokens: exporter.tokens.board(),
        shard: options.shard,
        limiter: exporter.limiter.clone(),
    });
    let address = listener
        .local_addr()
        .context("reading the listen address")?;
    tracing::info!(%address, telemetry_path = %options.telemetry_path, "serving metrics");

    let mut server = tokio::spawn(web::serve(
        listener,
        app,
        options.web.clone(),
        options.server,
        exporter.metrics.clone(),
        shutdown.clone(),
    ));
    let mut hangups = hangup_signals(options.reload_on_sighup)?;
    let mut token_check = tokio::time::interval(options.token_file_check_interval);
    token_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut prune = tokio::time::interval(PRUNE_INTERVAL);
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let ended_early = loop {
        tokio::select! {
            result = &mut server => break Some(result),
            () = shutdown.cancelled() => break None,
            // A reload or a rotation waits for its file reads (at most their deadline); a
            // SIGTERM meanwhile ends the wait at once, as it ends the loop.
            Some(request) = reload_requests.recv() => {
                tokio::select! {
                    result = exporter.reload() => {
                        let _ = request.respond.send(result);
                    }
                    () = shutdown.cancelled() => break None,
                }
            }
            Some(()) = hangups.recv() => {
                tracing::info!("SIGHUP received, reloading the configuration");
                tokio::select! {
                    _ = exporter.reload() => {}
                    () = shutdown.cancelled() => break None,
                }
            }
            Some((generation, report)) = discovered.recv() => exporter.discovered(generation, report),
            _ = token_check.tick() => {
                tokio::select! {
                    () = exporter.rotate_tokens() => {}
                    () = shutdown.cancelled() => break None,
                }
            }
            _ = prune.tick() => exporter.scheduler.prune_limiter(),
        }
    };

    ready.store(false, Ordering::Release);
    // One grace period for everything: open requests, then the polls in flight get what is
    // left of it, so SIGTERM ends the process within it whatever is still running.
    let deadline = tokio::time::Instant::now() + options.shutdown_grace;
    let served = match ended_early {
        Some(result) => result,
        // Open connections get the grace period to finish their requests; then they are cut.
        None => match tokio::time::timeout_at(deadline, &mut server).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(grace = ?options.shutdown_grace, "HTTP connections still open after the grace period; closing them");
                server.abort();
                Ok(Ok(()))
            }
        },
    };
    exporter.discovery = None;
    exporter
        .scheduler
        .shutdown(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await;
    tracing::info!("stopped");
    served.context("HTTP server task")?.context("serving HTTP")
}

/// SIGHUPs as a channel. When not listening, the sender is dropped at once, so `recv`
/// yields `None` and the `select!` branch matching `Some(())` stays disabled.
fn hangup_signals(enabled: bool) -> anyhow::Result<mpsc::Receiver<()>> {
    let (sender, receiver) = mpsc::channel(1);
    if !enabled {
        return Ok(receiver);
    }
    #[cfg(unix)]
    {
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("listening for SIGHUP")?;
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                if sender.send(()).await.is_err() {
                    break;
                }
            }
        });
    }
    Ok(receiver)
}

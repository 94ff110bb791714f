//! meta-messaging-exporter: parses flags, loads the config, starts logging, wires the parts
//! and waits for a shutdown signal. Everything else lives in the library.

use anyhow::Context as _;
use clap::Parser as _;
use meta_messaging_exporter::app::{self, Options};
use meta_messaging_exporter::backfill;
use meta_messaging_exporter::cli::{BackfillFlags, Command, Flags};
use meta_messaging_exporter::clock::{Clock as _, SystemClock};
use meta_messaging_exporter::shard::Shard;
use meta_messaging_exporter::{check, config, logging, web};
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// jemalloc with its background threads, instead of glibc's allocator. The exporter's large
/// buffers (a 14 MB body per snapshot at 100,000 series, a config listing 10,000 Pages while it
/// is parsed) come and go among many small long-lived allocations; glibc kept the freed space
/// resident (151 MiB for 70 MB of live heap at 10,000 Pages), jemalloc hands it back after
/// its 10 s decay (91 MiB). Measured with `benches/load.py`; see README "Performance".
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let flags = Flags::parse();
    if let Err(error) = logging::init(flags.log_level, flags.log_format) {
        eprintln!("error: setting up logging: {error:#}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match flags.command.clone() {
        Some(Command::Backfill(backfill)) => runtime.block_on(run_backfill(flags, backfill)),
        None => runtime.block_on(run(flags)),
    };
    // `run` gave everything its grace period already. A blocking task still running (a file
    // read stuck on a hung mount or a FIFO) would keep a plain drop of the runtime waiting
    // for ever, so it is abandoned.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match outcome {
        Ok(code) => code,
        Err(error) => {
            // `{:#}` prints the whole context chain: "loading config.yaml: pages[0].interval: ...".
            tracing::error!(error = format!("{error:#}"), "exiting");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(flags: Flags) -> anyhow::Result<ExitCode> {
    // Checked before anything else: a bad pair would make this replica poll nothing, or twice.
    let shard = flags.shard().map_err(anyhow::Error::msg)?;
    // The demo's simulator lives until `run` returns, as long as the exporter that polls it.
    let (_simulator, config) = load_config(&flags).await?;
    // Read before binding, so a bad web config exits 1 without ever serving plain HTTP.
    let web = match &flags.web_config_file {
        Some(path) => Some(
            web::load(path).with_context(|| format!("loading web config {}", path.display()))?,
        ),
        None => None,
    };

    if flags.config_check {
        return print_check(&flags, &config, shard);
    }
    if !flags.demo {
        for warning in &config.warnings {
            tracing::warn!(warning = %warning, "config");
        }
        check::log_version_notices(&config, SystemClock.now_unix());
    }

    let listener = tokio::net::TcpListener::bind(flags.listen_address)
        .await
        .with_context(|| format!("listening on {}", flags.listen_address))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));

    let options = Options {
        telemetry_path: flags.telemetry_path.clone(),
        config_file: (!flags.demo).then(|| flags.config_file.clone()),
        enable_lifecycle: flags.enable_lifecycle,
        reload_on_sighup: true,
        web,
        server: flags.server_settings(),
        shard,
        shutdown_grace: flags.shutdown_timeout,
        ..Options::default()
    };
    let result = app::run(listener, config, options, shutdown).await;
    result.map(|()| ExitCode::SUCCESS)
}

/// The demo's simulator and config with `--demo`, else the config file. The simulator lives
/// as long as the caller holds it.
async fn load_config(flags: &Flags) -> anyhow::Result<(Option<Simulator>, config::Config)> {
    if flags.demo {
        let (fake, config) = start_demo().await?;
        return Ok((Some(fake), config));
    }
    let path = &flags.config_file;
    let config = config::load(path).with_context(|| format!("loading {}", path.display()))?;
    Ok((None, config))
}

/// `backfill`: history as OpenMetrics. Exits 1 when a target could not be backfilled, after
/// writing the others, and when SIGTERM or Ctrl-C stopped it (nothing written then).
async fn run_backfill(flags: Flags, backfill: BackfillFlags) -> anyhow::Result<ExitCode> {
    // Listening first: a signal before the run's first look at it still stops it, and the
    // default action (dying on the spot) would leave the partial directory behind.
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let (_simulator, config) = load_config(&flags).await?;
    let progress = backfill::progress::Progress::for_stderr();
    let summary = backfill::run(
        &config,
        &backfill,
        std::sync::Arc::new(SystemClock),
        &progress,
        shutdown,
    )
    .await
    .context("backfill")?;
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(summary.report().as_bytes());
    match summary.failure() {
        Some(failure) => {
            let _ = writeln!(err, "error: {failure}");
            Ok(ExitCode::FAILURE)
        }
        None => Ok(ExitCode::SUCCESS),
    }
}

/// What keeps the demo's simulated Graph API running; without the `demo` feature there is
/// none, and `Infallible` says so to the type checker.
#[cfg(feature = "demo")]
type Simulator = meta_messaging_exporter::simulator::FakeGraphApi;
#[cfg(not(feature = "demo"))]
type Simulator = std::convert::Infallible;

/// `--demo`: starts the simulator and returns the config that polls it.
#[cfg(feature = "demo")]
async fn start_demo() -> anyhow::Result<(Simulator, config::Config)> {
    let (fake, config) = meta_messaging_exporter::demo::start().await?;
    tracing::info!(
        graph_api = %fake.base_url(),
        marketing_version = %config.graph_api.marketing_version,
        "demo mode: polling the built-in simulated Graph API; its Marketing API version is near its end on purpose, to show Meta's version warnings and upgrades"
    );
    Ok((fake, config))
}

/// `--demo` in a build without the simulator fails, rather than quietly reading the config
/// file: someone who asked for the demo (perhaps through `META_EXPORTER_DEMO`) expects no Meta
/// calls, and would otherwise get them with whatever config.yaml is at hand.
#[cfg(not(feature = "demo"))]
async fn start_demo() -> anyhow::Result<(Simulator, config::Config)> {
    anyhow::bail!(
        "--demo: this binary was built without the `demo` feature (cargo build \
         --no-default-features), so it has no simulated Graph API; use a build with default \
         features for the demo"
    )
}

/// Writes the `--config.check` report to stdout. A reader that stops early (`| head`) is not
/// an error: the print macros panic on a closed pipe, so write and flush explicitly. Exits 1
/// when a configured API version has expired where Meta rejects reads (the Marketing API).
fn print_check(flags: &Flags, config: &config::Config, shard: Shard) -> anyhow::Result<ExitCode> {
    let source = if flags.demo {
        "demo config".to_owned()
    } else {
        flags.config_file.display().to_string()
    };
    let notices = check::version_notices(config, SystemClock.now_unix());
    let mut out = std::io::stdout().lock();
    let written = writeln!(out, "{source}: valid")
        .and_then(|()| out.write_all(check::describe(config).as_bytes()))
        .and_then(|()| out.write_all(check::describe_shard(config, shard).as_bytes()))
        .and_then(|()| out.write_all(check::describe_versions(&notices).as_bytes()))
        .and_then(|()| out.flush());
    match written {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(error).context("writing the check's report");
        }
        _ => {}
    }
    if let Some(first) = notices.errors.first() {
        eprintln!("error: {first}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Cancels `shutdown` on Ctrl-C or SIGTERM.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
    shutdown.cancel();
}

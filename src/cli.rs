//! Command-line flags, in the Prometheus exporter style, each also settable from the
//! environment (`META_EXPORTER_*`) as containers expect.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::logging::{LogFormat, LogLevel};

/// Default listen address. The Prometheus wiki's default port allocation list gives the
/// well-known exporters ports from 9100 up; 9867 is not one of theirs, so it does not clash
/// with the node, blackbox, mysqld, ... exporters that typically share a host.
pub const DEFAULT_LISTEN_ADDRESS: &str = "0.0.0.0:9867";

/// Prometheus exporter for Meta messaging analytics (Page messaging insights, marketing-message
/// campaign insights, WhatsApp Business Account analytics).
#[derive(Debug, Clone, Parser)]
#[command(version, about, long_about = None)]
pub struct Flags {
    /// Path of the YAML configuration file.
    #[arg(
        long = "config.file",
        env = "META_EXPORTER_CONFIG_FILE",
        default_value = "config.yaml",
        global = true
    )]
    pub config_file: PathBuf,

    /// Load and validate the configuration, print what would be polled, and exit (0 valid, 1 not).
    #[arg(long = "config.check", env = "META_EXPORTER_CONFIG_CHECK")]
    pub config_check: bool,

    /// Address to listen on for HTTP (metrics, landing page, health).
    #[arg(long = "web.listen-address", env = "META_EXPORTER_WEB_LISTEN_ADDRESS", default_value = DEFAULT_LISTEN_ADDRESS)]
    pub listen_address: SocketAddr,

    /// Path of a web config file (Prometheus exporter-toolkit format) that enables TLS, basic
    /// auth and extra response headers.
    #[arg(long = "web.config.file", env = "META_EXPORTER_WEB_CONFIG_FILE")]
    pub web_config_file: Option<PathBuf>,

    /// Serve `POST /-/reload` (reload the config file, as SIGHUP does).
    #[arg(
        long = "web.enable-lifecycle",
        env = "META_EXPORTER_WEB_ENABLE_LIFECYCLE"
    )]
    pub enable_lifecycle: bool,

    /// How long a client gets to send a whole request header (for the first request from when it
    /// connects, TLS handshake included; for later ones from their first byte) before it is
    /// disconnected.
    #[arg(long = "web.read-header-timeout", env = "META_EXPORTER_WEB_READ_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_timeout)]
    pub read_header_timeout: Duration,

    /// How long a keep-alive connection with no request in progress stays open.
    #[arg(long = "web.idle-timeout", env = "META_EXPORTER_WEB_IDLE_TIMEOUT", default_value = "2m", value_parser = parse_timeout)]
    pub idle_timeout: Duration,

    /// How long a request may take from its header to the last byte of its response; a client
    /// that reads its answer slower is disconnected.
    #[arg(long = "web.write-timeout", env = "META_EXPORTER_WEB_WRITE_TIMEOUT", default_value = "2m", value_parser = parse_timeout)]
    pub write_timeout: Duration,

    /// Open HTTP connections at most. At the cap, the oldest connection that has not yet sent a
    /// request, or else the one idle longest, is closed to make room for a new one; if every
    /// connection has a request in progress, the new connection is closed.
    #[arg(long = "web.max-connections", env = "META_EXPORTER_WEB_MAX_CONNECTIONS", default_value = "512", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// How long a SIGTERM or Ctrl-C waits for open requests and polls in flight before the
    /// process exits anyway; whatever is still running then (a slow login, a blocked file
    /// read, a hung Graph API call) is abandoned.
    #[arg(long = "web.shutdown-timeout", env = "META_EXPORTER_WEB_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_timeout)]
    pub shutdown_timeout: Duration,

    /// Open HTTP connections at most from one client (an IPv4 address, or an IPv6 /64); a
    /// newer one from it is closed at once, whatever room the cap has.
    #[arg(long = "web.max-connections-per-client", env = "META_EXPORTER_WEB_MAX_CONNECTIONS_PER_CLIENT", default_value = "64", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_client: u32,

    /// Bytes per second a response must move while the client is not keeping up, measured
    /// over each --web.write-rate-window (the first is its grace); a slower client is
    /// disconnected. A number of bytes, with an optional KiB or MiB suffix; 0 turns it off.
    #[arg(long = "web.min-write-rate", env = "META_EXPORTER_WEB_MIN_WRITE_RATE", default_value = "64KiB", value_parser = parse_byte_rate)]
    pub min_write_rate: u64,

    /// The window over which --web.min-write-rate is measured.
    #[arg(long = "web.write-rate-window", env = "META_EXPORTER_WEB_WRITE_RATE_WINDOW", default_value = "5s", value_parser = parse_timeout)]
    pub write_rate_window: Duration,

    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", env = "META_EXPORTER_WEB_TELEMETRY_PATH", default_value = "/metrics", value_parser = parse_telemetry_path)]
    pub telemetry_path: String,

    /// Only log events at this level or above.
    #[arg(
        long = "log.level",
        env = "META_EXPORTER_LOG_LEVEL",
        value_enum,
        default_value = "info",
        global = true
    )]
    pub log_level: LogLevel,

    /// Log line format.
    #[arg(
        long = "log.format",
        env = "META_EXPORTER_LOG_FORMAT",
        value_enum,
        default_value = "logfmt",
        global = true
    )]
    pub log_format: LogFormat,

    /// This instance's shard, from 0: it polls only the targets whose stable hash of kind and
    /// id falls in it (kube-state-metrics' convention). In a StatefulSet, the pod's ordinal.
    #[arg(long = "shard", env = "META_EXPORTER_SHARD", default_value = "0")]
    pub shard: u32,

    /// How many instances share the targets, each with its own --shard.
    #[arg(
        long = "total-shards",
        env = "META_EXPORTER_TOTAL_SHARDS",
        default_value = "1"
    )]
    pub total_shards: u32,

    /// Run against a built-in simulated Graph API with demo targets; no Meta token needed.
    /// The config file is not read.
    // Kept without the `demo` feature, where it fails saying why: an unknown flag, or an
    // ignored META_EXPORTER_DEMO, would not tell the user which build they have.
    #[arg(long = "demo", env = "META_EXPORTER_DEMO", global = true)]
    #[cfg_attr(
        not(feature = "demo"),
        arg(help = "Not available: this binary was built without the `demo` feature.")
    )]
    pub demo: bool,

    /// Without a subcommand the exporter runs; `backfill` writes history instead.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do instead of running the exporter.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Write the samples the exporter would have served over a past span as an OpenMetrics
    /// file, for `promtool tsdb create-blocks-from openmetrics`. Uses --config.file (or
    /// --demo) and exits 1 naming every target that could not be backfilled.
    Backfill(BackfillFlags),
}

/// `backfill`'s flags. `--since` and `--until` are checked with the targets (how far back
/// Meta keeps each read path), so they are read as text here.
#[derive(Debug, Clone, clap::Args)]
pub struct BackfillFlags {
    /// First instant written: a date (its 00:00 UTC) such as 2026-09-01, or an RFC 3339 time.
    #[arg(long = "since")]
    pub since: String,

    /// First instant not written, in the same form; at most now.
    #[arg(long = "until")]
    pub until: String,

    /// Time between samples, from 1m to 1d. Default: each target's interval.
    #[arg(long = "step", value_parser = parse_step)]
    pub step: Option<Duration>,

    /// The OpenMetrics file to write (written aside and renamed when complete), or `-` for
    /// stdout. Checked before any call: its directory must exist and be writable, and a file
    /// already there needs --force.
    #[arg(long = "output")]
    pub output: String,

    /// Replace the --output file if it exists.
    #[arg(long = "force")]
    pub force: bool,

    /// Refuse the run, before any history is read, when the estimate of the file's size
    /// exceeds this, such as 2GiB or 500MB.
    #[arg(long = "max-bytes", value_parser = parse_size)]
    pub max_bytes: Option<u64>,
}

/// A size such as `2GiB`, `500MB` or `1000000` (bytes).
fn parse_size(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|error| format!("{error} (expected a size such as 2GiB or 500MB)"))
}

/// A duration such as `15m`; its range is checked with the rest of the span.
fn parse_step(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|error| format!("{error} (expected a duration such as 15m or 1h)"))
}

/// A positive duration such as `10s` or `2m`.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(duration) if duration.is_zero() => Err("must be longer than 0s".to_owned()),
        Ok(duration) => Ok(duration),
        Err(error) => Err(format!("{error} (expected a duration such as 10s or 2m)")),
    }
}

/// Bytes per second such as `65536`, `64KiB` or `1MiB` (binary units, as the sizes in the
/// README are); `0` is allowed and turns the check off.
fn parse_byte_rate(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(split) => text.split_at(split),
        None => (text, ""),
    };
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1024,
        "MiB" => 1024 * 1024,
        other => {
            return Err(format!(
                "unknown unit {other:?} (expected bytes per second such as 65536, 64KiB or 1MiB)"
            ))
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|number| number.checked_mul(multiplier))
        .ok_or_else(|| format!("{text:?} is not a number of bytes per second such as 64KiB"))
}

impl Flags {
    /// `--shard` of `--total-shards`, or why the pair is not one.
    pub fn shard(&self) -> Result<crate::shard::Shard, String> {
        crate::shard::Shard::new(self.shard, self.total_shards)
    }

    /// The HTTP server's limits and timeouts.
    pub fn server_settings(&self) -> crate::web::ServerSettings {
        crate::web::ServerSettings {
            read_header_timeout: self.read_header_timeout,
            idle_timeout: self.idle_timeout,
            write_timeout: self.write_timeout,
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
            max_connections_per_client: usize::try_from(self.max_connections_per_client)
                .unwrap_or(usize::MAX),
            min_write_rate: self.min_write_rate,
            write_rate_window: self.write_rate_window,
        }
    }
}

fn parse_telemetry_path(path: &str) -> Result<String, String> {
    if !path.starts_with('/') || path == "/" || path.starts_with("/-/") {
        return Err(format!(
            "{path:?} must start with '/' and may not be '/' or under '/-/' (those serve the landing page and health checks)"
        ));
    }
    if path.contains(['?', '#', ' ', '{', '}', '*']) {
        return Err(format!("{path:?} must be a plain path"));
    }
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backfill_is_a_subcommand_that_takes_the_config_and_log_flags_too() {
        let flags = Flags::try_parse_from([
            "x",
            "backfill",
            "--config.file=/etc/x.yaml",
            "--since=2026-09-01",
            "--until=2026-12-01",
            "--step=15m",
            "--output=-",
            "--log.level=warn",
        ])
        .expect("backfill parses");
        assert_eq!(flags.config_file, PathBuf::from("/etc/x.yaml"));
        assert_eq!(flags.log_level, LogLevel::Warn);
        let Some(Command::Backfill(backfill)) = flags.command else {
            panic!("no backfill subcommand");
        };
        assert_eq!(backfill.since, "2026-09-01");
        assert_eq!(backfill.step, Some(Duration::from_secs(900)));
        assert_eq!(backfill.output, "-");
        assert!(!backfill.force);
        assert_eq!(backfill.max_bytes, None);
        // The exporter's own flags are not backfill's.
        assert!(Flags::try_parse_from([
            "x",
            "backfill",
            "--since=a",
            "--until=b",
            "--output=-",
            "--shard=1"
        ])
        .is_err());
        assert!(
            Flags::try_parse_from(["x", "backfill", "--since=a", "--until=b"]).is_err(),
            "--output is required"
        );
        assert!(Flags::try_parse_from(["x"])
            .expect("no subcommand")
            .command
            .is_none());
    }

    #[test]
    fn flags_use_prometheus_names_and_defaults() {
        let flags = Flags::try_parse_from(["x"]).expect("defaults parse");
        assert_eq!(flags.config_file, PathBuf::from("config.yaml"));
        assert_eq!(flags.listen_address.port(), 9867);
        assert_eq!(flags.telemetry_path, "/metrics");
        assert_eq!(flags.web_config_file, None);
        assert!(!flags.enable_lifecycle);
        assert_eq!(
            flags.server_settings(),
            crate::web::ServerSettings::default()
        );
        let flags = Flags::try_parse_from([
            "x",
            "--config.file=/etc/x.yaml",
            "--web.listen-address=127.0.0.1:1234",
            "--web.telemetry-path=/m",
            "--log.level=debug",
            "--log.format=json",
            "--config.check",
            "--web.config.file=/etc/web.yml",
            "--web.enable-lifecycle",
            "--web.read-header-timeout=3s",
            "--web.idle-timeout=5m",
            "--web.write-timeout=30s",
            "--web.max-connections=64",
            "--web.max-connections-per-client=8",
            "--web.min-write-rate=1MiB",
            "--web.write-rate-window=2s",
        ])
        .expect("flags parse");
        assert_eq!(
            flags.server_settings(),
            crate::web::ServerSettings {
                read_header_timeout: Duration::from_secs(3),
                idle_timeout: Duration::from_secs(300),
                write_timeout: Duration::from_secs(30),
                max_connections: 64,
                max_connections_per_client: 8,
                min_write_rate: 1024 * 1024,
                write_rate_window: Duration::from_secs(2),
            }
        );
        assert_eq!(flags.config_file, PathBuf::from("/etc/x.yaml"));
        assert_eq!(flags.web_config_file, Some(PathBuf::from("/etc/web.yml")));
        assert!(flags.enable_lifecycle);
        assert_eq!(flags.log_format, LogFormat::Json);
        assert!(flags.config_check);
    }

    #[test]
    fn server_limits_must_be_positive() {
        for flag in [
            "--web.read-header-timeout=0s",
            "--web.idle-timeout=soon",
            "--web.write-timeout=0s",
            "--web.max-connections=0",
            "--web.max-connections=-1",
            "--web.max-connections-per-client=0",
            "--web.write-rate-window=0s",
            "--web.min-write-rate=fast",
            "--web.min-write-rate=64KB",
            "--web.min-write-rate=-1",
        ] {
            assert!(Flags::try_parse_from(["x", flag]).is_err(), "{flag}");
        }
    }

    #[test]
    fn the_minimum_write_rate_takes_bytes_with_binary_units_and_zero_turns_it_off() {
        for (text, rate) in [
            ("0", 0),
            ("65536", 65536),
            ("64KiB", 65536),
            ("1MiB", 1 << 20),
            ("512B", 512),
        ] {
            assert_eq!(parse_byte_rate(text), Ok(rate), "{text}");
        }
    }

    #[test]
    fn a_telemetry_path_that_hides_another_route_is_rejected() {
        for path in ["/", "metrics", "/-/healthy", "/a?b"] {
            assert!(
                Flags::try_parse_from(["x", "--web.telemetry-path", path]).is_err(),
                "{path}"
            );
        }
    }

    #[test]
    fn max_bytes_takes_binary_and_decimal_sizes_and_refuses_words() {
        let parse = |size: &str| {
            let flags = Flags::try_parse_from([
                "x",
                "backfill",
                "--since=a",
                "--until=b",
                "--output=-",
                "--force",
                &format!("--max-bytes={size}"),
            ])?;
            let Some(Command::Backfill(backfill)) = flags.command else {
                panic!("no backfill subcommand");
            };
            assert!(backfill.force);
            Ok::<_, clap::Error>(backfill.max_bytes)
        };
        assert_eq!(parse("2GiB").expect("2GiB"), Some(2 << 30));
        assert_eq!(parse("500MB").expect("500MB"), Some(500_000_000));
        assert_eq!(parse("1000").expect("bytes"), Some(1000));
        let error = parse("lots").expect_err("not a size").to_string();
        assert!(error.contains("expected a size such as 2GiB"), "{error}");
    }
}

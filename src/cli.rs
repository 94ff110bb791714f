//! Command-line flags, in the Prometheus exporter style, each also settable from the
//! environment (`META_EXPORTER_*`) as containers expect.

use std::net::SocketAddr;
use std::path::PathBuf;

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
        default_value = "config.yaml"
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

    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", env = "META_EXPORTER_WEB_TELEMETRY_PATH", default_value = "/metrics", value_parser = parse_telemetry_path)]
    pub telemetry_path: String,

    /// Only log events at this level or above.
    #[arg(
        long = "log.level",
        env = "META_EXPORTER_LOG_LEVEL",
        value_enum,
        default_value = "info"
    )]
    pub log_level: LogLevel,

    /// Log line format.
    #[arg(
        long = "log.format",
        env = "META_EXPORTER_LOG_FORMAT",
        value_enum,
        default_value = "logfmt"
    )]
    pub log_format: LogFormat,

    /// Run against a built-in simulated Graph API with demo targets; no Meta token needed.
    /// The config file is not read.
    // Kept without the `demo` feature, where it fails saying why: an unknown flag, or an
    // ignored META_EXPORTER_DEMO, would not tell the user which build they have.
    #[arg(long = "demo", env = "META_EXPORTER_DEMO")]
    #[cfg_attr(
        not(feature = "demo"),
        arg(help = "Not available: this binary was built without the `demo` feature.")
    )]
    pub demo: bool,
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
    fn flags_use_prometheus_names_and_defaults() {
        let flags = Flags::try_parse_from(["x"]).expect("defaults parse");
        assert_eq!(flags.config_file, PathBuf::from("config.yaml"));
        assert_eq!(flags.listen_address.port(), 9867);
        assert_eq!(flags.telemetry_path, "/metrics");
        assert_eq!(flags.web_config_file, None);
        assert!(!flags.enable_lifecycle);
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
        ])
        .expect("flags parse");
        assert_eq!(flags.config_file, PathBuf::from("/etc/x.yaml"));
        assert_eq!(flags.web_config_file, Some(PathBuf::from("/etc/web.yml")));
        assert!(flags.enable_lifecycle);
        assert_eq!(flags.log_format, LogFormat::Json);
        assert!(flags.config_check);
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
}

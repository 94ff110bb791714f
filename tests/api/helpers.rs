//! Shared test harness: the exporter running in-process against the fake Graph API, and
//! `/metrics` read through a strict exposition parser.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use meta_messaging_exporter::app::{self, Options};
use meta_messaging_exporter::clock::{Clock, SystemClock};
use meta_messaging_exporter::config;
use meta_messaging_exporter::simulator::FakeGraphApi;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The token every fake object accepts unless a test says otherwise.
pub const TOKEN: &str = "EAAtest-token-0123456789";

/// Settings every test config shares: the fake's URL, the token, and fast retries.
pub fn preamble(fake: &FakeGraphApi) -> String {
    format!(
        "graph_api:\n  base_url: {}\n  access_token: {TOKEN}\n  request_timeout: 2s\npolling:\n  retry_initial_backoff: 10ms\n  retry_max_backoff: 50ms\n  max_retries: 2\n",
        fake.base_url()
    )
}

/// The exporter, running in this process on 127.0.0.1:0.
pub struct TestExporter {
    pub address: SocketAddr,
    http: reqwest::Client,
    shutdown: CancellationToken,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl TestExporter {
    /// Starts the exporter with `yaml` (validated by the real loader) and the system clock.
    pub async fn start(yaml: &str) -> TestExporter {
        Self::start_with_clock(yaml, Arc::new(SystemClock)).await
    }

    /// Starts the exporter with `yaml` and a given wall clock.
    pub async fn start_with_clock(yaml: &str, clock: Arc<dyn Clock>) -> TestExporter {
        let options = Options {
            clock,
            ..test_options()
        };
        Self::start_with_options(yaml, options).await
    }

    /// Starts the exporter with `yaml` and the given options (a web config, for example).
    pub async fn start_with_options(yaml: &str, options: Options) -> TestExporter {
        let lookup = |_: &str| None;
        let config = config::from_yaml(yaml, "test config", &lookup, Path::new("."))
            .unwrap_or_else(|error| panic!("test config is invalid: {error}\n{yaml}"));
        Self::start_with_config(config, options).await
    }

    /// Starts the exporter from a config file, reloadable through `POST /-/reload`, checking
    /// token files every 100 ms.
    pub async fn start_from_file(path: &Path) -> TestExporter {
        Self::start_from_file_with(path, test_options()).await
    }

    /// Like [`TestExporter::start_from_file`], with other options (a shard, say).
    pub async fn start_from_file_with(path: &Path, options: Options) -> TestExporter {
        let config =
            config::load(path).unwrap_or_else(|error| panic!("test config is invalid: {error}"));
        let options = Options {
            config_file: Some(path.to_owned()),
            enable_lifecycle: true,
            token_file_check_interval: Duration::from_millis(100),
            ..options
        };
        Self::start_with_config(config, options).await
    }

    /// Starts the exporter with a validated config and explicit options.
    pub async fn start_with_config(config: config::Config, options: Options) -> TestExporter {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(app::run(listener, config, options, shutdown.clone()));
        TestExporter {
            address,
            http: reqwest::Client::new(),
            shutdown,
            handle,
        }
    }

    /// POSTs to a path and returns status and body.
    pub async fn post(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .post(format!("http://{}{path}", self.address))
            .send()
            .await
            .expect("request to the exporter");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    /// GETs a path and returns status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .http
            .get(format!("http://{}{path}", self.address))
            .send()
            .await
            .expect("request to the exporter");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    /// One scrape of `/metrics`, which must parse.
    pub async fn scrape(&self) -> Scrape {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200, "{body}");
        Scrape::parse(body)
    }

    /// Scrapes until the target `id`'s last poll succeeded (wholly or partly).
    pub async fn wait_until_up(&self, id: &str) -> Scrape {
        self.wait_for(&format!("{id} up"), |s| {
            s.value("meta_messaging_exporter_target_up", &[("target_id", id)]) == Some(1.0)
        })
        .await
    }

    /// Scrapes until `ready` holds, for at most 40 seconds, and returns that scrape. Longer
    /// than the default `polling.startup_spread` (30s) and a batch window or two, so a
    /// target's first poll always falls inside it, wherever its hash puts it.
    pub async fn wait_for(&self, what: &str, ready: impl Fn(&Scrape) -> bool) -> Scrape {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        loop {
            let scrape = self.scrape().await;
            if ready(&scrape) {
                return scrape;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; last scrape:\n{}",
                    scrape.text
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the exporter and checks it exits cleanly.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .expect("exporter stops within 10s")
            .expect("exporter task did not panic");
        result.expect("exporter exits without error");
    }
}

/// Options every in-process test uses: a short shutdown grace.
pub fn test_options() -> Options {
    Options {
        shutdown_grace: Duration::from_secs(2),
        ..Options::default()
    }
}

/// A parsed scrape: its text and every sample with unescaped label values.
pub struct Scrape {
    pub text: String,
    pub samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    /// Parses with a strict text-format parser; any syntax error fails the test.
    pub fn parse(text: String) -> Scrape {
        let parsed = prom_text_format_parser::Scrape::parse(&text)
            .unwrap_or_else(|error| panic!("exposition does not parse: {error:?}\n{text}"));
        let mut samples = Vec::new();
        for metric in parsed.metrics {
            for sample in metric.samples {
                let labels = sample
                    .labels
                    .iter()
                    .map(|label| (label.key.clone(), unescape(&label.value)))
                    .collect();
                let value = sample.value.value.parse::<f64>().unwrap_or(f64::NAN);
                let suffix = match sample.value.value_type {
                    prom_text_format_parser::ValueType::Sample
                        if metric.kind == prom_text_format_parser::Type::Histogram =>
                    {
                        "_bucket"
                    }
                    prom_text_format_parser::ValueType::Sum => "_sum",
                    prom_text_format_parser::ValueType::Count => "_count",
                    prom_text_format_parser::ValueType::Sample => "",
                };
                samples.push((format!("{}{suffix}", metric.name), labels, value));
            }
        }
        Scrape { text, samples }
    }

    /// The value of the one sample of `name` whose labels include `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let matching = self.series(name, labels);
        assert!(
            matching.len() <= 1,
            "{name}{labels:?} matches {} series:\n{}",
            matching.len(),
            self.text
        );
        matching.first().map(|(_, value)| *value)
    }

    /// Every sample of `name` whose labels include `labels`.
    pub fn series(
        &self,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Vec<(BTreeMap<String, String>, f64)> {
        self.samples
            .iter()
            .filter(|(sample_name, sample_labels, _)| {
                sample_name == name
                    && labels.iter().all(|(key, value)| {
                        sample_labels.get(*key).map(String::as_str) == Some(*value)
                    })
            })
            .map(|(_, labels, value)| (labels.clone(), *value))
            .collect()
    }
}

/// Undoes the exposition format's label value escaping.
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

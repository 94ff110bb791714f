//! The real binary: flags, exit codes, `--config.check`, demo mode, and no token in any output.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use meta_messaging_exporter::simulator::{FakeGraphApi, Fault};

const BINARY: &str = env!("CARGO_BIN_EXE_meta-messaging-exporter");

fn write_config(dir: &tempfile::TempDir, yaml: &str) -> std::path::PathBuf {
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, yaml).expect("write config");
    path
}

#[test]
fn the_example_config_passes_the_check_and_lists_its_targets() {
    let output = Command::new(BINARY)
        .args([
            "--config.check",
            "--config.file",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml"),
        ])
        .env("META_ACCESS_TOKEN", "example-token")
        .env("PAGE_TOKEN", "example-page-token")
        .output()
        .expect("run binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(": valid"), "{stdout}");
    assert!(stdout.contains("page "), "{stdout}");
    assert!(stdout.contains("campaign "), "{stdout}");
    assert!(stdout.contains("whatsapp_business_account "), "{stdout}");
    // Each WhatsApp read path the account polls, with what it asks for.
    for line in [
        "    - pricing_analytics DAILY by PRICING_CATEGORY,PRICING_TYPE,COUNTRY,PHONE, pricing_types REGULAR,FREE_CUSTOMER_SERVICE,FREE_ENTRY_POINT\n",
        "    - conversation_analytics DAILY by CONVERSATION_CATEGORY,CONVERSATION_TYPE,CONVERSATION_DIRECTION,COUNTRY,PHONE\n",
        "    - template_analytics of every APPROVED template: SENT,DELIVERED,READ,CLICKED,COST\n",
        "    - phone_numbers: quality rating, messaging limit, throughput and health_status\n",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from\n{stdout}");
    }
    assert!(
        !stdout.contains("example-token") && !stdout.contains("example-page-token"),
        "{stdout}"
    );
}

#[test]
fn the_check_exits_1_naming_the_key_when_campaigns_would_read_an_expired_marketing_version() {
    // v23.0 left the Marketing API on 2026-06-09, so this holds on any later day the test runs.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        &dir,
        "graph_api:\n  access_token: x\n  version: v23.0\ncampaigns:\n  - id: \"1\"\n",
    );
    let output = Command::new(BINARY)
        .args(["--config.check", "--config.file"])
        .arg(&path)
        .output()
        .expect("run binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("1 API version error(s):"), "{stdout}");
    assert!(
        stderr.contains("error: graph_api.marketing_version (unset, so graph_api.version): v23.0 expired in the Marketing API"),
        "{stderr}"
    );
}

#[test]
fn an_invalid_config_exits_1_before_binding_and_names_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        &dir,
        "graph_api:\n  access_token: x\npages:\n  - id: \"1\"\n    interval: soon\n",
    );
    // Port 1 needs root to bind and is never free for us: reaching bind would fail differently.
    let output = Command::new(BINARY)
        .args(["--web.listen-address", "127.0.0.1:1", "--config.file"])
        .arg(&path)
        .output()
        .expect("run binary");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("pages[0].interval"), "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
}

#[test]
fn an_invalid_web_config_exits_1_before_binding_and_names_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        &dir,
        "graph_api:\n  access_token: x\npages:\n  - id: \"1\"\n",
    );
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: server.crt\n  client_auth_type: Sometimes\n",
    )
    .expect("write web config");
    // Port 1, as above: reaching bind would fail with a different message.
    let output = Command::new(BINARY)
        .args(["--web.listen-address", "127.0.0.1:1", "--config.file"])
        .arg(&config)
        .arg("--web.config.file")
        .arg(&web)
        .output()
        .expect("run binary");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("web.yml"), "{stderr}");
    for key in [
        "tls_server_config.cert_file",
        "tls_server_config.key_file",
        "tls_server_config.client_auth_type",
    ] {
        assert!(stderr.contains(key), "{key} missing from:\n{stderr}");
    }
    assert!(!stderr.contains("listening on"), "{stderr}");
}

#[test]
fn a_missing_config_file_is_a_clear_error() {
    let output = Command::new(BINARY)
        .args([
            "--config.check",
            "--config.file",
            "/nonexistent/config.yaml",
        ])
        .output()
        .expect("run binary");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/config.yaml"));
}

/// The binary, started on 127.0.0.1:0, with its stderr collected and its address read from
/// its start-up log line.
struct Running {
    child: Child,
    address: String,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Running {
    fn start(args: &[&str], envs: &[(&str, &str)]) -> Running {
        let mut child = Command::new(BINARY)
            .args([
                "--web.listen-address",
                "127.0.0.1:0",
                "--log.format",
                "json",
            ])
            .args(args)
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start binary");
        let (sender, lines) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut running = Running {
            child,
            address: String::new(),
            lines,
            log: Vec::new(),
        };
        while running.address.is_empty() {
            let line = running
                .lines
                .recv_timeout(Duration::from_secs(30))
                .expect("start-up log line");
            if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) {
                if event["message"] == "serving metrics" {
                    running.address = event["address"].as_str().expect("address field").to_owned();
                }
            }
            running.log.push(line);
        }
        running
    }

    fn get(&self, path: &str) -> String {
        let url = format!("http://{}{path}", self.address);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            reqwest::get(url)
                .await
                .expect("get")
                .text()
                .await
                .expect("body")
        })
    }

    /// Reads log lines until one satisfies `found`, for at most 30 seconds.
    fn wait_for_line(&mut self, found: impl Fn(&str) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .expect("a log line");
            let done = found(&line);
            self.log.push(line);
            if done {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{:?}", self.log);
        }
    }

    /// SIGTERMs the binary, checks it exits 0, and returns every log line.
    fn stop(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        assert!(exit.success(), "exit status {exit:?}");
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.log.push(line);
        }
        self.log
    }
}

/// Sends SIGHUP to the process `pid`.
fn hang_up(pid: &str) {
    assert!(Command::new("kill")
        .args(["-HUP", pid])
        .status()
        .expect("kill")
        .success());
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn demo_mode_serves_all_three_kinds_without_a_token_and_stops_on_sigterm() {
    let running = Running::start(&["--demo"], &[]);
    let mut body = String::new();
    wait_until("demo series", || {
        body = running.get("/metrics");
        [
            "meta_page_messages_new_conversations_unique{",
            "meta_marketing_messages_spend{",
            "meta_whatsapp_analytics_sent{",
        ]
        .iter()
        .all(|name| body.contains(name))
    });
    let log = running.stop();
    assert!(
        log.iter().any(|line| line.contains("SIGTERM received")),
        "{log:?}"
    );
}

#[test]
fn the_token_never_appears_in_urls_logs_errors_metrics_or_pages() {
    const MARKER: &str = "EAAMARKERtoken5f3c9e1d";
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let fake = runtime.block_on(FakeGraphApi::start()).expect("fake");
    // The whole fault suite, one target each, all with the marker token.
    let echo = Fault::Graph {
        status: 400,
        code: 190,
        subcode: Some(467),
        message: format!("Invalid OAuth access token: {MARKER}"),
        is_transient: false,
    };
    let faulty_pages = [
        ("REVOKED", Fault::invalid_token()),
        ("ECHO", echo),
        ("FLAKY", Fault::transient()),
        ("HTML", Fault::bad_gateway_html()),
        ("JSON", Fault::InvalidJson),
        ("CUT", Fault::TruncatedBody),
        ("SLOW", Fault::Delay(Duration::from_secs(3))),
        ("THROTTLED", Fault::throttled(613)),
        ("DENIED", Fault::permission_denied()),
    ];
    fake.simulate_page("OK", MARKER);
    fake.simulate_page("RETIRED", MARKER);
    fake.retire_metric("RETIRED", "page_messages_sent");
    for (id, fault) in &faulty_pages {
        fake.simulate_page(id, MARKER);
        fake.fail_always(id, fault.clone());
    }
    fake.set_headers(
        "THROTTLED",
        &[(
            "x-business-use-case-usage",
            r#"{"BIZ9":[{"type":"pages","call_count":100,"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":5}]}"#,
        )],
    );
    fake.simulate_campaign("WRONGTOKEN", "some-other-token");
    fake.simulate_waba("WABA", MARKER);

    let mut yaml = format!(
        "graph_api:\n  base_url: {}\n  access_token: ${{META_ACCESS_TOKEN}}\n  app_secret: app-secret-value\n  request_timeout: 1s\npolling:\n  retry_initial_backoff: 10ms\n  retry_max_backoff: 20ms\npages:\n  - id: OK\n    interval: 1s\n  - id: RETIRED\n    interval: 1s\n",
        fake.base_url()
    );
    for (id, _) in &faulty_pages {
        yaml.push_str(&format!(
            "  - id: {id}\n    interval: 1s\n    metrics: [page_messages_sent]\n"
        ));
    }
    yaml.push_str("campaigns:\n  - id: WRONGTOKEN\n    interval: 1s\nwhatsapp_business_accounts:\n  - id: WABA\n    interval: 1s\n");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(&dir, &yaml);
    let config_arg = path.to_string_lossy().into_owned();
    let running = Running::start(
        &["--log.level", "debug", "--config.file", &config_arg],
        &[("META_ACCESS_TOKEN", MARKER)],
    );
    let ids: Vec<&str> = ["OK", "RETIRED", "WRONGTOKEN", "WABA"]
        .into_iter()
        .chain(faulty_pages.iter().map(|(id, _)| *id))
        .collect();
    let mut metrics = String::new();
    wait_until("every target polled", || {
        metrics = running.get("/metrics");
        ids.iter().all(|id| {
            metrics.lines().any(|line| {
                line.starts_with("meta_messaging_exporter_target_up{")
                    && line.contains(&format!("target_id=\"{id}\""))
            })
        })
    });
    let landing = running.get("/");
    let log = running.stop();

    assert!(!metrics.contains(MARKER), "token in /metrics");
    assert!(!landing.contains(MARKER), "token on the landing page");
    assert!(
        landing.contains("Invalid OAuth access token: [redacted]"),
        "an echoed token is redacted: {landing}"
    );
    assert!(!metrics.contains("app-secret-value") && !landing.contains("app-secret-value"));
    for line in &log {
        assert!(!line.contains(MARKER), "token in a log line: {line}");
        assert!(
            !line.contains("app-secret-value"),
            "app secret in a log line: {line}"
        );
    }
    // The fake saw the token only in the Authorization header, never in a URL.
    let requests = fake.requests();
    assert!(requests.len() > ids.len());
    for request in &requests {
        assert!(
            !request.query.contains(MARKER) && !request.path.contains(MARKER),
            "token in a URL: {request:?}"
        );
        assert_eq!(
            request.authorization.as_deref(),
            Some(format!("Bearer {MARKER}").as_str())
        );
        // In the query of a GET; in the form body of a batch call, for all its entries.
        assert!(request.appsecret_proof.is_some(), "{request:?}");
    }
    // The log said what went wrong, with structured fields.
    assert!(log.iter().any(|line| line
        .contains("target disabled until its credentials or settings change")
        && line.contains("REVOKED")));
    drop(fake);
}

#[test]
fn sighup_reloads_the_config_file() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let fake = runtime.block_on(FakeGraphApi::start()).expect("fake");
    fake.simulate_page("FIRST", "t");
    fake.simulate_page("SECOND", "t");
    let dir = tempfile::tempdir().expect("tempdir");
    let page =
        |id: &str| format!("  - id: {id}\n    interval: 1s\n    metrics: [page_messages_sent]\n");
    let head = format!(
        "graph_api:\n  base_url: {}\n  access_token: t\npages:\n",
        fake.base_url()
    );
    let path = write_config(&dir, &format!("{head}{}", page("FIRST")));
    let config_arg = path.to_string_lossy().into_owned();
    let running = Running::start(&["--config.file", &config_arg], &[]);
    wait_until("FIRST polled", || {
        running.get("/metrics").contains("page_id=\"FIRST\"")
    });

    std::fs::write(&path, format!("{head}{}", page("SECOND"))).expect("rewrite config");
    let pid = running.child.id().to_string();
    hang_up(&pid);
    wait_until("SECOND polled and FIRST gone", || {
        let metrics = running.get("/metrics");
        metrics.contains("page_id=\"SECOND\"") && !metrics.contains("page_id=\"FIRST\"")
    });
    let log = running.stop();
    assert!(
        log.iter().any(|line| line.contains("SIGHUP received")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|line| line.contains("configuration reloaded")),
        "{log:?}"
    );
}

#[test]
fn the_check_report_survives_a_reader_that_stops_early() {
    // `--config.check | head -0`: stdout is a pipe whose reading end is already closed.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let output = Command::new(BINARY)
        .args(["--demo", "--config.check"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run binary");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}\n{stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_shard_outside_the_total_exits_1_naming_both_flags() {
    let output = Command::new(BINARY)
        .args(["--demo", "--shard=3", "--total-shards=3"])
        .output()
        .expect("run binary");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--shard=3 is not below --total-shards=3"),
        "{stderr}"
    );
    // Positive control: the same flags from the environment, in range, pass the check.
    let output = Command::new(BINARY)
        .args(["--demo", "--config.check"])
        .env("META_EXPORTER_SHARD", "2")
        .env("META_EXPORTER_TOTAL_SHARDS", "3")
        .output()
        .expect("run binary");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(report.contains("shard 2 of 3: polls "), "{report}");
}

#[test]
fn sigterm_exits_while_a_reload_is_stuck_on_a_config_file_that_blocks() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let fake = runtime.block_on(FakeGraphApi::start()).expect("fake");
    fake.simulate_page("FIRST", "t");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        &dir,
        &format!(
            "graph_api:\n  base_url: {}\n  access_token: t\npages:\n  - id: FIRST\n    interval: 1s\n    metrics: [page_messages_sent]\n",
            fake.base_url()
        ),
    );
    let config_arg = path.to_string_lossy().into_owned();
    let running = Running::start(
        &["--config.file", &config_arg, "--web.shutdown-timeout=2s"],
        &[],
    );
    wait_until("FIRST polled", || {
        running.get("/metrics").contains("page_id=\"FIRST\"")
    });
    // The config file becomes a FIFO, as a file on a hung mount behaves: the reload's read
    // never returns.
    std::fs::remove_file(&path).expect("remove");
    assert!(Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("mkfifo")
        .success());
    let pid = running.child.id().to_string();
    hang_up(&pid);
    // The reload gives up after its deadline, naming the file; the control loop goes on.
    let mut running = running;
    running.wait_for_line(|line| {
        line.contains("did not finish within 5s") && line.contains(&config_arg)
    });
    // A second reload while the first read is still stuck is refused at once, and a SIGTERM
    // then ends the process: `stop` waits for exit 0, the stuck read abandoned.
    hang_up(&pid);
    running.wait_for_line(|line| line.contains("still blocked"));
    let log = running.stop();
    assert!(log.iter().any(|line| line.contains("stopped")), "{log:?}");
}

#[test]
fn sigterm_exits_while_slow_logins_are_being_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Cost 14, the most allowed: about a second of bcrypt per check.
    let hash = bcrypt::hash("right", 14).expect("bcrypt");
    let web = dir.path().join("web.yaml");
    std::fs::write(
        &web,
        format!("basic_auth_users:\n  prometheus: \"{hash}\"\n"),
    )
    .expect("write web config");
    let web_arg = web.to_string_lossy().into_owned();
    let running = Running::start(
        &[
            "--demo",
            "--web.config.file",
            &web_arg,
            "--web.shutdown-timeout=1s",
        ],
        &[],
    );
    // Wrong passwords keep every bcrypt worker busy while SIGTERM arrives.
    let address = running.address.clone();
    let logins: Vec<_> = (0..4)
        .map(|n| {
            let url = format!("http://{address}/metrics");
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async {
                    let _ = reqwest::Client::new()
                        .get(url)
                        .basic_auth("prometheus", Some(format!("wrong-{n}")))
                        .send()
                        .await;
                });
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // `stop` sends SIGTERM and waits for exit 0.
    let log = running.stop();
    assert!(log.iter().any(|line| line.contains("stopped")), "{log:?}");
    for login in logins {
        let _ = login.join();
    }
}

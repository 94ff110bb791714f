//! `backfill` with the real binary, the real `promtool` and a real Prometheus: ten days of a
//! Page, a campaign and a WhatsApp Business Account from the fake, turned into TSDB blocks,
//! then queried at past instants for the values the fake served for those days. Also: a
//! target failing with 190 is named while the others are written, the file holds no token,
//! bad flags, a bad `--output` and a `--max-bytes` below the estimate fail before any call,
//! `--force` replaces a file, and a SIGTERM mid-read leaves neither output nor partial files.
//!
//! Needs Debian's `prometheus` package; without it the Prometheus part is skipped with a
//! message, unless REQUIRE_PROMETHEUS=1 (as in CI) makes that a failure.

use std::process::{Command, Output};

use chrono::{NaiveDate, TimeZone as _};
use chrono_tz::America::Los_Angeles;
use meta_messaging_exporter::simulator::{FakeGraphApi, Fault};
use serde_json::Value;

use crate::helpers::TOKEN;
use crate::prometheus::{prometheus_or_skip, PrometheusApi, PrometheusServer};

const BINARY: &str = env!("CARGO_BIN_EXE_meta-messaging-exporter");
const PAGE: &str = "100000000000011";
const REVOKED: &str = "100000000000012";
const REVOKED_TOKEN: &str = "EAArevoked-page-token-42";
const CAMPAIGN: &str = "120200000000011";
const WABA: &str = "104000000000011";
const DAY: i64 = 86_400;

/// UTC midnight `days` days before today.
fn utc_midnight_days_ago(days: i64) -> i64 {
    let now = chrono::Utc::now().timestamp();
    now.div_euclid(DAY) * DAY - days * DAY
}

/// The UTC date of `t`, as `--since` and `--until` take it.
fn ymd(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .expect("time")
        .format("%Y-%m-%d")
        .to_string()
}

/// The Pacific midnight that starts `date`.
fn pacific_midnight(date: NaiveDate) -> i64 {
    let local = date.and_hms_opt(0, 0, 0).expect("midnight");
    Los_Angeles
        .from_local_datetime(&local)
        .earliest()
        .expect("Pacific midnight exists")
        .timestamp()
}

fn pacific_date(t: i64) -> NaiveDate {
    Los_Angeles
        .timestamp_opt(t, 0)
        .single()
        .expect("instant")
        .date_naive()
}

fn config(fake: &FakeGraphApi) -> String {
    format!(
        "graph_api:\n  base_url: {url}\n  access_token: {TOKEN}\n  request_timeout: 5s\n\
         polling:\n  retry_initial_backoff: 10ms\n  retry_max_backoff: 50ms\n  max_retries: 1\n  batch_window: 100ms\n\
         pages:\n  - id: \"{PAGE}\"\n    interval: 15m\n    metrics:\n      - page_messages_new_conversations_unique\n      - name: page_messages_sent\n        breakdowns: [messaging_channel]\n\
         \x20 - id: \"{REVOKED}\"\n    access_token: {REVOKED_TOKEN}\n    metrics: [page_messages_sent]\n\
         campaigns:\n  - id: \"{CAMPAIGN}\"\n    date_preset: last_7d\n    fields: [marketing_messages_delivered, marketing_messages_spend]\n\
         whatsapp_business_accounts:\n  - id: \"{WABA}\"\n    granularity: DAY\n    templates: {{}}\n",
        url = fake.base_url()
    )
}

/// Runs the binary off the runtime's workers, which keep serving the fake meanwhile.
async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(BINARY)
            .args(&args)
            .env_remove("META_EXPORTER_DEMO")
            .output()
            .expect("run the binary")
    })
    .await
    .expect("join")
}

/// A Graph answer straight from the fake, for the values it serves.
async fn fake_get(fake: &FakeGraphApi, path_and_query: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{}/v23.0/{path_and_query}", fake.base_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("ask the fake");
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).expect("json")
}

fn number(value: &Value) -> f64 {
    match value {
        Value::String(text) => text.parse().expect("numeric string"),
        other => other.as_f64().expect("number"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_days_of_history_become_blocks_that_prometheus_answers_with_the_fakes_values() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page(PAGE, TOKEN);
    fake.simulate_page(REVOKED, REVOKED_TOKEN);
    fake.fail_always(
        REVOKED,
        Fault::Graph {
            status: 400,
            code: 190,
            subcode: Some(460),
            message: "Error validating access token: The session has been invalidated because the user changed their password.".into(),
            is_transient: false,
        },
    );
    fake.simulate_campaign(CAMPAIGN, TOKEN);
    fake.simulate_waba(WABA, TOKEN);
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("config.yaml");
    std::fs::write(&config_path, config(&fake)).expect("write config");
    let output_path = dir.path().join("history.om");
    let since = utc_midnight_days_ago(10);
    let until = utc_midnight_days_ago(0);
    let output = run(vec![
        "backfill".into(),
        format!("--config.file={}", config_path.display()),
        format!("--since={}", ymd(since)),
        format!("--until={}", ymd(until)),
        "--step=1h".into(),
        format!("--output={}", output_path.display()),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();

    // The revoked Page fails the run, named with Meta's error; the others are written.
    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(
        stderr.contains(&format!("page {REVOKED}")) && stderr.contains("190"),
        "{stderr}"
    );
    assert!(stderr.contains("changed their password"), "{stderr}");
    let text = std::fs::read_to_string(&output_path).expect("the history was written");
    for secret in [TOKEN, REVOKED_TOKEN] {
        assert!(!text.contains(secret), "the file holds a token");
        assert!(!stderr.contains(secret), "stderr holds a token:\n{stderr}");
    }
    assert!(text.ends_with("# EOF\n"));
    assert!(!text.contains(REVOKED), "the failed Page has no samples");
    assert!(
        !text.contains("meta_messaging_exporter_"),
        "no self-metrics in the file"
    );
    let hours = (until - since) / 3600;
    let page_series =
        format!("meta_page_messages_new_conversations_unique{{page_id=\"{PAGE}\",period=\"day\"}}");
    assert_eq!(
        text.lines()
            .filter(|line| line.starts_with(&page_series))
            .count() as i64,
        hours,
        "one sample per step"
    );

    let Some(prometheus) = prometheus_or_skip("backfill into a real Prometheus") else {
        return;
    };
    let promtool = prometheus.with_file_name("promtool");
    let data = dir.path().join("data");
    let blocks = Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&output_path)
        .arg(&data)
        .output()
        .expect("run promtool");
    assert!(
        blocks.status.success(),
        "promtool refused the file:\n{}{}",
        String::from_utf8_lossy(&blocks.stdout),
        String::from_utf8_lossy(&blocks.stderr)
    );
    let server = PrometheusServer::start_on(&prometheus, dir.path(), &data, "");
    let api = PrometheusApi::new(server.url.clone());
    api.wait_until("Prometheus to be ready", &server, || async {
        api.get_text("/-/ready").await.is_some()
    })
    .await;

    // At noon UTC five days in, the Pacific day before has ended: its value is the one served.
    let at = since + 5 * DAY + 12 * 3600;
    let today = pacific_date(at);
    let yesterday = today.pred_opt().expect("date");
    let served = fake_get(
        &fake,
        &format!(
            "{PAGE}/insights?metric=page_messages_new_conversations_unique&period=day&since={}&until={}",
            pacific_midnight(yesterday),
            pacific_midnight(today)
        ),
    )
    .await;
    let expected = number(&served["data"][0]["values"][0]["value"]);
    let answer = api
        .query_at(
            &format!("meta_page_messages_new_conversations_unique{{page_id=\"{PAGE}\"}}"),
            at,
        )
        .await;
    assert_eq!(answer, vec![expected], "Page value at {at}");

    let served = fake_get(
        &fake,
        &format!(
            "{WABA}?fields=analytics.start({}).end({}).granularity(DAY)",
            pacific_midnight(yesterday),
            pacific_midnight(today)
        ),
    )
    .await;
    let sent: f64 = served["analytics"]["data_points"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|point| point["start"].as_i64() == Some(pacific_midnight(yesterday)))
        .map(|point| number(&point["sent"]))
        .sum();
    let answer = api
        .query_at(
            &format!("sum(meta_whatsapp_analytics_sent{{waba_id=\"{WABA}\"}})"),
            at,
        )
        .await;
    assert!(sent > 0.0, "the fake sent messages that day: {served}");
    assert_eq!(answer, vec![sent], "WABA sent at {at}");

    // Template analytics: the last complete UTC day.
    let templates = fake_get(&fake, &format!("{WABA}/message_templates?fields=id,status")).await;
    let template = templates["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|template| template["status"] == "APPROVED")
        .and_then(|template| template["id"].as_str())
        .expect("an approved template")
        .to_owned();
    let utc_day = at.div_euclid(DAY) * DAY - DAY;
    let served = fake_get(
        &fake,
        &format!(
            "{WABA}/template_analytics?start={utc_day}&end={}&granularity=DAILY&metric_types=SENT&template_ids=[{template}]",
            utc_day + DAY
        ),
    )
    .await;
    let sent: f64 = served["data"][0]["data_points"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|point| point["start"].as_i64() == Some(utc_day))
        .map(|point| number(&point["sent"]))
        .sum();
    let answer = api
        .query_at(
            &format!(
                "meta_whatsapp_template_sent{{waba_id=\"{WABA}\",template_id=\"{template}\"}}"
            ),
            at,
        )
        .await;
    assert!(
        sent > 0.0,
        "the fake sent template messages that day: {served}"
    );
    assert_eq!(answer, vec![sent], "template sent at {at}");

    // last_7d as Meta resolved it on that Pacific day.
    let week = (yesterday - chrono::Days::new(6), yesterday);
    let served = fake_get(
        &fake,
        &format!(
            "{CAMPAIGN}/insights?fields=marketing_messages_delivered&time_range={{\"since\":\"{}\",\"until\":\"{}\"}}",
            week.0, week.1
        ),
    )
    .await;
    let delivered = number(&served["data"][0]["marketing_messages_delivered"]);
    let answer = api
        .query_at(&format!("meta_marketing_messages_delivered{{campaign_id=\"{CAMPAIGN}\",date_preset=\"last_7d\"}}"), at)
        .await;
    assert_eq!(answer, vec![delivered], "campaign delivered at {at}");

    // A range query over the ten days at the backfill's step: one value per step.
    let points = api
        .range_points(&page_series, since, until - 3600, 3600)
        .await;
    assert_eq!(points as i64, hours, "values in the range query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_flags_fail_before_any_call_and_say_which() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page(PAGE, TOKEN);
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("config.yaml");
    std::fs::write(&config_path, config(&fake)).expect("write config");
    let out = dir.path().join("h.om");
    let cases: [(&[&str], &str); 4] = [
        (
            &["--since=2026-11-20", "--until=2026-11-10"],
            "is not before --until",
        ),
        (
            &["--since=2020-01-01", "--until=2020-02-01"],
            "Meta keeps WhatsApp Business analytics for about one year",
        ),
        (
            &["--since=2026-11-10", "--until=2026-11-20", "--step=30s"],
            "--step 30s: must be between 1m and 1d",
        ),
        (
            &["--since=last week", "--until=2026-11-20"],
            "--since \"last week\": expected a date",
        ),
    ];
    for (flags, message) in cases {
        let mut args = vec![
            "backfill".to_owned(),
            format!("--config.file={}", config_path.display()),
            format!("--output={}", out.display()),
        ];
        args.extend(flags.iter().map(|flag| (*flag).to_owned()));
        let output = run(args).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{flags:?}: {stderr}");
        assert!(stderr.contains(message), "{flags:?}: {stderr}");
    }
    assert_eq!(fake.api_calls(), 0, "no call before the flags are checked");
    assert!(!out.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_backfills_its_targets_to_stdout_without_a_token() {
    let since = utc_midnight_days_ago(2);
    let until = utc_midnight_days_ago(1);
    let output = run(vec![
        "backfill".into(),
        "--demo".into(),
        format!("--since={}", ymd(since)),
        format!("--until={}", ymd(until)),
        "--step=1h".into(),
        "--output=-".into(),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.ends_with("# EOF\n"), "{stderr}");
    for family in [
        "meta_page_messages_sent",
        "meta_marketing_messages_delivered",
        "meta_whatsapp_pricing_volume",
        "meta_page_info",
    ] {
        assert!(
            stdout.contains(&format!("# TYPE {family} gauge\n")),
            "{family} missing"
        );
    }
    assert!(
        stderr.contains("backfilled 10 of 10 targets"),
        "the summary: {stderr}"
    );
    // Discovered targets are backfilled too: the demo lists one Page and finds two more.
    for discovered in ["100000000000002", "100000000000003"] {
        assert!(
            stdout.contains(&format!("page_id=\"{discovered}\"")),
            "discovered Page {discovered} missing"
        );
    }
    assert!(!stdout.contains("demo-token") && !stderr.contains("demo-token"));
}

#[tokio::test(start_paused = true)]
async fn a_throttled_read_waits_out_the_pause_and_the_target_is_still_backfilled() {
    use meta_messaging_exporter::backfill::{self, progress::Progress, range::Span};
    use meta_messaging_exporter::clock::SystemClock;
    use meta_messaging_exporter::target::{Target, TargetKind};
    use std::sync::Arc;

    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page(PAGE, TOKEN);
    fake.fail_next(
        PAGE,
        2,
        Fault::Graph {
            status: 400,
            code: 32,
            subcode: None,
            message: "(#32) Page request limit reached".into(),
            is_transient: false,
        },
    );
    let yaml = format!(
        "graph_api:\n  base_url: {}\n  access_token: {TOKEN}\npolling:\n  batch: false\npages:\n  - id: \"{PAGE}\"\n    interval: 1h\n    metrics: [page_messages_sent]\n",
        fake.base_url()
    );
    let config = meta_messaging_exporter::config::from_yaml(
        &yaml,
        "test config",
        &|_: &str| None,
        std::path::Path::new("."),
    )
    .expect("config");
    let now = chrono::Utc::now().timestamp();
    let span = Span::new(
        utc_midnight_days_ago(3),
        utc_midnight_days_ago(1),
        None,
        now,
        &[TargetKind::Page],
    )
    .expect("span");
    let started = tokio::time::Instant::now();
    let session = backfill::Session::new(&config, Arc::new(SystemClock)).expect("session");
    let dir = tempfile::tempdir().expect("dir");
    let mut spill = backfill::spill::Spill::new(dir.path());
    let summary = session
        .collect(
            &config,
            Target::all(&config),
            span,
            &Progress::lines(),
            &mut spill,
        )
        .await
        .expect("the spill is written");
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    // Two throttled answers, then the read (its name read shares no call with it: batching off).
    assert_eq!(fake.request_count(PAGE), 4, "{:?}", fake.requests());
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "the throttles were waited out, not retried at once"
    );
    assert_eq!(
        summary.samples,
        2 * 24 * 2,
        "48 hourly samples of the metric and the name"
    );
}

/// The names in `dir` that a backfill leaves while it runs (`.NAME.partial-XXXXXX`).
fn partial_entries(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("list")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.contains(".partial"))
        .collect()
}

/// A directory the backfill cannot write in: one without write permission, or, for root
/// (whom permissions do not stop, as in CI), sysfs, which refuses new entries to everyone.
fn unwritable_dir(inside: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = inside.join("read-only");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    if std::fs::write(dir.join("probe"), "x").is_ok() {
        return std::path::PathBuf::from("/sys");
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_output_fails_before_any_call_naming_the_path_and_the_flag() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page(PAGE, TOKEN);
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("config.yaml");
    std::fs::write(&config_path, config(&fake)).expect("write config");
    let existing = dir.path().join("existing.om");
    std::fs::write(&existing, "an earlier history\n").expect("write");
    let unwritable = unwritable_dir(dir.path()).join("history.om");
    let since = ymd(utc_midnight_days_ago(2));
    let until = ymd(utc_midnight_days_ago(1));
    let cases = [
        (
            dir.path().to_owned(),
            "is a directory; give the file to write in it",
        ),
        (
            dir.path().join("missing").join("history.om"),
            "does not exist",
        ),
        (unwritable.clone(), "cannot write in"),
        (
            existing.clone(),
            "already exists; pass --force to replace it",
        ),
    ];
    for (path, message) in cases {
        let output = run(vec![
            "backfill".into(),
            format!("--config.file={}", config_path.display()),
            format!("--since={since}"),
            format!("--until={until}"),
            format!("--output={}", path.display()),
        ])
        .await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}: {stderr}",
            path.display()
        );
        assert!(
            stderr.contains(&format!("--output {}", path.display())),
            "names the flag and the path: {stderr}"
        );
        assert!(stderr.contains(message), "{}: {stderr}", path.display());
        assert!(
            !stderr.contains("expect about"),
            "refused before the estimate: {stderr}"
        );
    }
    assert_eq!(fake.api_calls(), 0, "no call before --output is checked");
    assert_eq!(
        std::fs::read_to_string(&existing).expect("read"),
        "an earlier history\n",
        "the existing file is untouched"
    );
    assert!(partial_entries(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_file_is_replaced_with_force() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page(PAGE, TOKEN);
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("config.yaml");
    let yaml = format!(
        "graph_api:\n  base_url: {}\n  access_token: {TOKEN}\npages:\n  - id: \"{PAGE}\"\n    metrics: [page_messages_sent]\n",
        fake.base_url()
    );
    std::fs::write(&config_path, yaml).expect("write config");
    let existing = dir.path().join("history.om");
    std::fs::write(&existing, "an earlier history\n").expect("write");
    let output = run(vec![
        "backfill".into(),
        format!("--config.file={}", config_path.display()),
        format!("--since={}", ymd(utc_midnight_days_ago(2))),
        format!("--until={}", ymd(utc_midnight_days_ago(1))),
        "--step=1h".into(),
        format!("--output={}", existing.display()),
        "--force".into(),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("expect about") && stderr.contains("(an estimate"),
        "the estimate comes before the reads: {stderr}"
    );
    let text = std::fs::read_to_string(&existing).expect("read");
    assert!(
        text.starts_with("# TYPE ") && text.ends_with("# EOF\n"),
        "{text}"
    );
    assert!(partial_entries(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_estimate_exceeds_max_bytes_is_refused_before_any_call() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page(PAGE, TOKEN);
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("config.yaml");
    std::fs::write(&config_path, config(&fake)).expect("write config");
    let out = dir.path().join("history.om");
    let output = run(vec![
        "backfill".into(),
        format!("--config.file={}", config_path.display()),
        format!("--since={}", ymd(utc_midnight_days_ago(30))),
        format!("--until={}", ymd(utc_midnight_days_ago(0))),
        "--step=1m".into(),
        "--max-bytes=10MiB".into(),
        format!("--output={}", out.display()),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("expect about"), "{stderr}");
    assert!(
        stderr.contains("--max-bytes 10.0 MiB: the estimate is")
            && stderr.contains("no history was read"),
        "{stderr}"
    );
    assert_eq!(fake.api_calls(), 0, "refused before any call");
    assert!(!out.exists());
    assert!(partial_entries(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_backfill_removes_the_partial_files_and_says_nothing_was_written() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page(PAGE, TOKEN);
    // The Page's read hangs far longer than the test lasts: the run is mid-way when stopped.
    fake.fail_always(PAGE, Fault::Stall(std::time::Duration::from_secs(600)));
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("config.yaml");
    let yaml = format!(
        "graph_api:\n  base_url: {}\n  access_token: {TOKEN}\n  request_timeout: 10m\npages:\n  - id: \"{PAGE}\"\n    metrics: [page_messages_sent]\n",
        fake.base_url()
    );
    std::fs::write(&config_path, yaml).expect("write config");
    let out = dir.path().join("history.om");
    let child = Command::new(BINARY)
        .args([
            "backfill".to_owned(),
            format!("--config.file={}", config_path.display()),
            format!("--since={}", ymd(utc_midnight_days_ago(10))),
            format!("--until={}", ymd(utc_midnight_days_ago(0))),
            format!("--output={}", out.display()),
        ])
        .env_remove("META_EXPORTER_DEMO")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the binary");
    // Waits (in bounded steps, asserting nothing about time) for the partial directory and
    // for the first request to reach the fake.
    let mut started = false;
    for _ in 0..600 {
        if !partial_entries(dir.path()).is_empty() && fake.http_requests() > 0 {
            started = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(started, "the backfill never got to its reads");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "interrupted by SIGTERM or Ctrl-C: nothing was written to {}",
            out.display()
        )),
        "{stderr}"
    );
    assert!(!out.exists(), "no output");
    assert!(
        partial_entries(dir.path()).is_empty(),
        "left behind: {:?}",
        partial_entries(dir.path())
    );
}

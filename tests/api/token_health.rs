//! Token health: with an app id and secret, every token in use is checked with `debug_token`
//! inside batch calls (never in a URL) at start, every `token_check_interval` and when a new
//! token appears; without them nothing is asked and no token series appear. On tokio's paused
//! clock and a fixed wall clock.

use std::sync::Arc;
use std::time::Duration;

use meta_messaging_exporter::app::Options;
use meta_messaging_exporter::clock::FixedClock;
use meta_messaging_exporter::config;
use meta_messaging_exporter::logging::capture::Log;
use meta_messaging_exporter::secret::AccessToken;
use meta_messaging_exporter::simulator::{FakeGraphApi, RecordedRequest, TokenInfo, ALL_SCOPES};

use crate::helpers::{test_options, Scrape, TestExporter};

/// 2026-09-21 14:13:20 UTC.
const NOW: i64 = 1_790_000_000;
const DAY: i64 = 86_400;
const APP_ID: &str = "123456";
const APP_SECRET: &str = "app-secret-5f3c9e1d";

const NEVER_EXPIRES: &str = "EAAnever-expiring-token-0001";
const EXPIRING: &str = "EAAexpiring-user-token-0002";
const INVALID: &str = "EAAinvalid-revoked-token-0003";
const LACKING: &str = "EAAlacking-scopes-token-0004";
const ALL_TOKENS: [&str; 4] = [NEVER_EXPIRES, EXPIRING, INVALID, LACKING];

fn id(token: &str) -> String {
    AccessToken::new(token).id().label()
}

fn graph_api(fake: &FakeGraphApi, app: bool) -> String {
    let app = if app {
        format!("  app_id: \"{APP_ID}\"\n  token_check_interval: 10m\n")
    } else {
        String::new()
    };
    format!(
        "graph_api:\n  base_url: {}\n  access_token: {NEVER_EXPIRES}\n  app_secret: {APP_SECRET}\n{app}  request_timeout: 2s\npolling:\n  retry_initial_backoff: 10ms\n  retry_max_backoff: 50ms\n  max_retries: 2\n",
        fake.base_url()
    )
}

/// Four targets, each with a token in a different state.
fn four_targets(fake: &FakeGraphApi, app: bool) -> String {
    format!(
        "{}pages:\n  - id: P1\n    metrics: [page_messages_sent]\n  - id: P2\n    access_token: {LACKING}\n    metrics: [page_messages_sent]\ncampaigns:\n  - id: C1\n    access_token: {EXPIRING}\nwhatsapp_business_accounts:\n  - id: W1\n    access_token: {INVALID}\n    phone_numbers_health: false\n",
        graph_api(fake, app)
    )
}

fn simulate(fake: &FakeGraphApi) {
    fake.set_now(Some(NOW));
    fake.set_app(APP_ID, APP_SECRET);
    fake.simulate_page("P1", NEVER_EXPIRES);
    fake.simulate_page("P2", LACKING);
    fake.simulate_campaign("C1", EXPIRING);
    fake.simulate_waba("W1", INVALID);
    fake.set_token_info(NEVER_EXPIRES, TokenInfo::valid("PAGE", 0));
    fake.set_token_info(
        EXPIRING,
        TokenInfo {
            kind: "USER".to_owned(),
            expires_at: NOW + 10 * DAY,
            ..TokenInfo::valid("USER", NOW + 3 * DAY)
        },
    );
    fake.set_token_info(
        INVALID,
        TokenInfo {
            is_valid: false,
            expires_at: NOW - 3600,
            error: Some((
                190,
                "Error validating access token: Session has expired".to_owned(),
            )),
            ..TokenInfo::valid("SYSTEM_USER", 0)
        },
    );
    fake.set_token_info(
        LACKING,
        TokenInfo {
            scopes: ALL_SCOPES
                .iter()
                .filter(|scope| !matches!(**scope, "read_insights" | "pages_show_list"))
                .map(|scope| (*scope).to_owned())
                .collect(),
            ..TokenInfo::valid("PAGE", 0)
        },
    );
}

async fn start(yaml: &str, options: Options) -> TestExporter {
    let lookup = |_: &str| None;
    let config = config::from_yaml(yaml, "test config", &lookup, std::path::Path::new("."))
        .unwrap_or_else(|error| panic!("test config is invalid: {error}\n{yaml}"));
    TestExporter::start_with_config(config, options).await
}

fn options() -> Options {
    Options {
        clock: Arc::new(FixedClock::new(NOW)),
        ..test_options()
    }
}

/// Every sample whose name starts with `prefix`, as `name{labels} value` lines, sorted.
fn lines_of(scrape: &Scrape, prefix: &str) -> Vec<String> {
    let mut lines: Vec<String> = scrape
        .samples
        .iter()
        .filter(|(name, _, _)| name.starts_with(prefix))
        .map(|(name, labels, value)| {
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{name}{{{}}} {value}", labels.join(","))
        })
        .collect();
    lines.sort();
    lines
}

/// Asserts that no token and not the app secret appear in `text`.
fn assert_no_secrets(what: &str, text: &str) {
    for secret in ALL_TOKENS.iter().chain([&APP_SECRET]) {
        assert!(!text.contains(secret), "{secret} in {what}:\n{text}");
    }
}

#[tokio::test(start_paused = true)]
async fn every_token_in_use_gets_exactly_its_series_from_one_batch_call_with_the_app_token() {
    let log = Log::default();
    let _capture = log.capture();
    let fake = FakeGraphApi::start().await.expect("fake");
    simulate(&fake);
    let exporter = start(&four_targets(&fake, true), options()).await;
    let scrape = exporter
        .wait_for("token series", |s| {
            s.series("meta_token_valid", &[]).len() == 4
        })
        .await;

    let (never, expiring, invalid, lacking) =
        (id(NEVER_EXPIRES), id(EXPIRING), id(INVALID), id(LACKING));
    let mut expected = vec![
        format!("meta_token_valid{{token_id={never},type=PAGE}} 1"),
        format!("meta_token_valid{{token_id={expiring},type=USER}} 1"),
        format!("meta_token_valid{{token_id={invalid},type=SYSTEM_USER}} 0"),
        format!("meta_token_valid{{token_id={lacking},type=PAGE}} 1"),
        format!("meta_token_expires_timestamp_seconds{{token_id={never}}} inf"),
        format!(
            "meta_token_expires_timestamp_seconds{{token_id={expiring}}} {}",
            NOW + 10 * DAY
        ),
        format!(
            "meta_token_expires_timestamp_seconds{{token_id={invalid}}} {}",
            NOW - 3600
        ),
        format!("meta_token_expires_timestamp_seconds{{token_id={lacking}}} inf"),
        format!(
            "meta_token_data_access_expires_timestamp_seconds{{token_id={expiring}}} {}",
            NOW + 3 * DAY
        ),
        format!("meta_token_missing_scope{{scope=pages_show_list,token_id={lacking}}} 1"),
        format!("meta_token_missing_scope{{scope=read_insights,token_id={lacking}}} 1"),
    ];
    expected.sort();
    assert_eq!(
        lines_of(&scrape, "meta_token_"),
        expected,
        "{}",
        scrape.text
    );
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_token_check_last_success_timestamp_seconds",
            &[]
        ),
        Some(NOW as f64)
    );
    let errors = scrape.series("meta_messaging_exporter_token_check_errors_total", &[]);
    assert!(!errors.is_empty() && errors.iter().all(|(_, value)| *value == 0.0));
    assert!(scrape
        .text
        .contains("# TYPE meta_messaging_exporter_token_check_errors_total counter"));
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_api_requests_total",
            &[("endpoint", "debug_token"), ("outcome", "success")]
        ),
        Some(4.0),
        "each entry counts as a request"
    );

    // One batch for the four tokens, authenticated with the app token; never a GET.
    assert_eq!((token_checks(&fake), fake.debug_token_count()), (1, 4));
    let requests = fake.requests();
    let batches: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "POST" && !app_authenticated(r))
        .collect();
    assert!(
        batches.is_empty(),
        "polls batch with their own tokens: {batches:?}"
    );
    let batches: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "POST" && app_authenticated(r))
        .collect();
    assert_eq!(batches.len(), 1, "{requests:?}");
    assert_eq!(
        batches[0].path,
        format!(
            "/{}/",
            meta_messaging_exporter::catalog::versions::DEFAULT_VERSION
        )
    );
    assert_eq!(
        batches[0].authorization.as_deref(),
        Some(format!("Bearer {APP_ID}|{APP_SECRET}").as_str())
    );
    for request in &requests {
        // Only inside the batch call, as entries of its body.
        assert!(
            request.in_batch || !request.path.contains("debug_token"),
            "{request:?}"
        );
        assert_no_secrets(
            "a request URL",
            &format!("{} {}", request.path, request.query),
        );
    }
    assert_no_secrets("/metrics", &scrape.text);

    let (_, page) = exporter.get("/").await;
    assert!(page.contains("<h2>Tokens</h2>"), "{page}");
    for token_id in [&never, &expiring, &invalid, &lacking] {
        assert!(
            page.contains(&format!("<td class=\"id\">{token_id}</td>")),
            "{page}"
        );
    }
    assert!(page.contains("<span class=\"badge disabled\">invalid</span> Error validating access token: Session has expired"), "{page}");
    assert!(
        page.contains("<span class=\"badge failing\">pages_show_list, read_insights</span>"),
        "{page}"
    );
    assert!(page.contains("<span class=\"badge failing\">soon</span> <span title=\"2026-09-24 14:13:20 UTC\">in 3 days</span>"), "{page}");
    assert_no_secrets("the status page", &page);

    // The next check comes after token_check_interval (10m), not before.
    tokio::time::sleep(Duration::from_secs(9 * 60)).await;
    assert_eq!(
        token_checks(&fake),
        1,
        "no second check before the interval"
    );
    tokio::time::sleep(Duration::from_secs(60 + 5)).await;
    assert_eq!(token_checks(&fake), 2, "a second check after the interval");
    assert_eq!(fake.debug_token_count(), 8);

    exporter.stop().await;
    let log = log.text();
    assert!(
        log.contains("token health on"),
        "the log was captured:\n{log}"
    );
    assert!(
        log.contains("Meta says this access token is not valid"),
        "{log}"
    );
    assert_no_secrets("the log", &log);
}

#[tokio::test(start_paused = true)]
async fn without_an_app_id_no_token_is_checked_and_no_token_series_appear() {
    let fake = FakeGraphApi::start().await.expect("fake");
    simulate(&fake);
    let exporter = start(&four_targets(&fake, false), options()).await;
    // Positive control: the targets polled (past the 30s start-up spread), and an hour passed.
    tokio::time::sleep(Duration::from_secs(31)).await;
    let scrape = exporter
        .wait_for("every target polled", |s| {
            s.series("meta_messaging_exporter_target_up", &[]).len() == 4
        })
        .await;
    assert!(scrape
        .text
        .contains("meta_messaging_exporter_api_requests_total"));
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let scrape = exporter.scrape().await;
    assert!(fake.request_count("P1") >= 2, "P1 kept polling");
    assert_eq!((token_checks(&fake), fake.debug_token_count()), (0, 0));
    assert!(fake
        .requests()
        .iter()
        .all(|r| !app_authenticated(r) && !r.path.contains("debug_token")));
    assert_eq!(lines_of(&scrape, "meta_token_"), Vec::<String>::new());
    assert_eq!(
        lines_of(&scrape, "meta_messaging_exporter_token_check"),
        Vec::<String>::new()
    );
    let (_, page) = exporter.get("/").await;
    assert!(page.contains("Token health is off. Set <code>graph_api.app_id</code> and <code>graph_api.app_secret</code>"), "{page}");
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_rejected_app_token_is_shown_and_counted_and_the_targets_keep_polling() {
    let fake = FakeGraphApi::start().await.expect("fake");
    simulate(&fake);
    // Meta knows the app by another secret: the batch fails whole with 190.
    fake.set_app(APP_ID, "the-real-secret");
    let exporter = start(&four_targets(&fake, true), options()).await;
    let errors = |s: &Scrape| {
        s.value(
            "meta_messaging_exporter_token_check_errors_total",
            &[("reason", "api_error")],
        )
    };
    let scrape = exporter
        .wait_for("a failed check", |s| errors(s) == Some(1.0))
        .await;
    assert_eq!(lines_of(&scrape, "meta_token_"), Vec::<String>::new());
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_token_check_last_success_timestamp_seconds",
            &[]
        ),
        None
    );
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_api_errors_total",
            &[
                ("endpoint", "debug_token"),
                ("code", "190"),
                ("subcode", "467")
            ]
        ),
        Some(1.0),
        "one error body for the whole batch"
    );
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_api_requests_total",
            &[("endpoint", "debug_token"), ("outcome", "api_error")]
        ),
        Some(4.0),
        "each entry counts as a request"
    );
    let (_, page) = exporter.get("/").await;
    assert!(page.contains("<span class=\"badge disabled\">last check failed</span> Graph API error code 190 (subcode 467): Invalid OAuth access token"), "{page}");
    assert_no_secrets("the status page", &page);

    // Another interval: one more failure, and the targets polled all along.
    tokio::time::sleep(Duration::from_secs(10 * 60 + 5)).await;
    let scrape = exporter
        .wait_for("every target polled", |s| {
            s.series("meta_messaging_exporter_target_up", &[]).len() == 4
        })
        .await;
    assert_eq!(errors(&scrape), Some(2.0));
    assert_eq!(token_checks(&fake), 2);
    assert_eq!(
        scrape.value("meta_messaging_exporter_target_up", &[("target_id", "P1")]),
        Some(1.0)
    );
    assert_no_secrets("/metrics", &scrape.text);
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_token_that_appears_on_reload_is_checked_within_seconds_and_a_removed_one_goes() {
    let fake = FakeGraphApi::start().await.expect("fake");
    simulate(&fake);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.yaml");
    let first = format!(
        "{}pages:\n  - id: P1\n    metrics: [page_messages_sent]\n  - id: P2\n    access_token: {LACKING}\n    metrics: [page_messages_sent]\n",
        graph_api(&fake, true)
    );
    std::fs::write(&path, &first).expect("write config");
    let config = config::load(&path).expect("valid config");
    let options = Options {
        config_file: Some(path.clone()),
        enable_lifecycle: true,
        ..options()
    };
    let exporter = TestExporter::start_with_config(config, options).await;
    exporter
        .wait_for("two tokens", |s| {
            s.series("meta_token_valid", &[]).len() == 2
        })
        .await;
    assert_eq!(token_checks(&fake), 1);

    // P2 now uses the expiring token: its old token is no longer in use.
    std::fs::write(&path, first.replace(LACKING, EXPIRING)).expect("rewrite config");
    assert_eq!(
        exporter.post("/-/reload").await,
        (200, "Reloaded\n".to_owned())
    );
    let scrape = exporter.scrape().await;
    assert_eq!(
        scrape.value("meta_token_valid", &[("token_id", &id(LACKING))]),
        None,
        "a token no longer in use has no series"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(token_checks(&fake), 2, "the new token is checked at once");
    let scrape = exporter.scrape().await;
    assert_eq!(
        scrape.value("meta_token_valid", &[("token_id", &id(EXPIRING))]),
        Some(1.0)
    );
    assert_eq!(
        scrape.value("meta_token_valid", &[("token_id", &id(NEVER_EXPIRES))]),
        Some(1.0)
    );
    assert_eq!(
        fake.debug_token_count(),
        3,
        "only the new token was asked about"
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_entry_meta_leaves_unanswered_is_asked_again_at_once_and_counted_if_it_stays_so() {
    let fake = FakeGraphApi::start().await.expect("fake");
    simulate(&fake);
    fake.leave_unanswered(EXPIRING, 1);
    fake.leave_unanswered(INVALID, 2);
    let exporter = start(&four_targets(&fake, true), options()).await;
    let scrape = exporter
        .wait_for("a token not answered", |s| {
            s.value(
                "meta_messaging_exporter_token_check_errors_total",
                &[("reason", "not_answered")],
            ) == Some(1.0)
        })
        .await;
    assert_eq!(
        token_checks(&fake),
        2,
        "the check and one retry of the null entries"
    );
    assert_eq!(
        scrape.value("meta_token_valid", &[("token_id", &id(EXPIRING))]),
        Some(1.0),
        "answered on the retry"
    );
    assert_eq!(
        scrape.value("meta_token_valid", &[("token_id", &id(INVALID))]),
        None,
        "never answered"
    );
    assert_eq!(scrape.series("meta_token_valid", &[]).len(), 3);
    let (_, page) = exporter.get("/").await;
    assert!(
        page.contains(
            "Meta did not answer debug_token for this token (timed out inside Graph, twice)"
        ),
        "{page}"
    );
    exporter.stop().await;
}

/// Whether a request the fake received was authenticated with the app token.
fn app_authenticated(request: &RecordedRequest) -> bool {
    request.authorization.as_deref() == Some(format!("Bearer {APP_ID}|{APP_SECRET}").as_str())
}

/// The token checks the fake received: batch calls authenticated with the app token (polls
/// make batch calls too, with their own tokens).
fn token_checks(fake: &FakeGraphApi) -> usize {
    fake.requests()
        .iter()
        .filter(|request| request.method == "POST" && app_authenticated(request))
        .count()
}

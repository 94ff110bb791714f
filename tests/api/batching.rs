//! Graph batch calls for polls: which requests share a `POST /{version}/`, and that every
//! entry is handled as if it had been its own call. On tokio's paused clock: the batch window
//! (1s by default) and the intervals pass in virtual time.

use std::time::Duration;

use std::sync::Arc;

use meta_messaging_exporter::config;
use meta_messaging_exporter::graph::ratelimit::RateLimiter;
use meta_messaging_exporter::graph::{GraphClient, GraphError, GraphRequest, SoloReason};
use meta_messaging_exporter::secret::AccessToken;
use meta_messaging_exporter::self_metrics::ExporterMetrics;
use meta_messaging_exporter::simulator::{FakeGraphApi, Fault, RecordedRequest};

use crate::helpers::{preamble, Scrape, TestExporter, TOKEN};

const SENT: &str = "meta_page_messages_sent";

/// `preamble` with every first poll at start (no start-up spread), so all Pages fall due in
/// the same batch window.
fn config(fake: &FakeGraphApi, polling_extra: &str, pages: &str) -> String {
    format!(
        "{}  startup_spread: 1s\n{polling_extra}pages:\n{pages}",
        preamble(fake)
    )
}

fn page(id: &str, token: Option<&str>) -> String {
    let token = token.map_or_else(String::new, |token| format!("    access_token: {token}\n"));
    format!("  - id: {id}\n    interval: 1h\n    metrics: [page_messages_sent]\n{token}")
}

fn batch_calls(fake: &FakeGraphApi) -> Vec<RecordedRequest> {
    fake.requests()
        .into_iter()
        .filter(|request| request.method == "POST" && request.object_id.is_none())
        .collect()
}

fn counter(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape.value(name, labels).unwrap_or(0.0)
}

/// The calls of every endpoint and outcome together.
fn api_calls(scrape: &Scrape) -> f64 {
    scrape
        .series("meta_messaging_exporter_api_requests_total", &[])
        .iter()
        .map(|(_, value)| value)
        .sum()
}

#[tokio::test(start_paused = true)]
async fn one_hundred_and_twenty_due_requests_with_one_token_go_out_in_three_http_requests() {
    let fake = FakeGraphApi::start().await.expect("fake");
    // 60 listed Pages, each polled once with an insights read and a name read: 120 calls.
    let mut pages = String::new();
    for n in 0..60 {
        let id = format!("P{n:02}");
        fake.simulate_page(&id, TOKEN);
        pages.push_str(&page(&id, None));
    }
    let exporter = TestExporter::start(&config(&fake, "", &pages)).await;
    let scrape = exporter
        .wait_for("every Page", |s| {
            s.series(SENT, &[]).len() == 60 && s.series("meta_page_info", &[]).len() == 60
        })
        .await;
    assert_eq!(fake.api_calls(), 120);
    assert_eq!(fake.http_requests(), 3, "50 + 50 + 20 calls");
    let batches = batch_calls(&fake);
    assert_eq!(batches.len(), 3);
    for batch in &batches {
        assert_eq!(
            batch.authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(batch.query, "", "nothing in the batch call's URL");
    }
    // The exporter counts the same: 3 HTTP requests carrying 120 calls.
    assert_eq!(
        counter(
            &scrape,
            "meta_messaging_exporter_api_http_requests_total",
            &[("type", "batch")]
        ),
        3.0
    );
    assert_eq!(
        counter(
            &scrape,
            "meta_messaging_exporter_api_http_requests_total",
            &[("type", "single")]
        ),
        0.0
    );
    assert_eq!(api_calls(&scrape), 120.0);
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn requests_with_different_tokens_never_share_a_batch() {
    let fake = FakeGraphApi::start().await.expect("fake");
    let mut pages = String::new();
    for (id, token) in [
        ("A1", "token-a"),
        ("A2", "token-a"),
        ("B1", "token-b"),
        ("B2", "token-b"),
    ] {
        fake.simulate_page(id, token);
        pages.push_str(&page(id, Some(token)));
    }
    let exporter = TestExporter::start(&config(&fake, "", &pages)).await;
    exporter
        .wait_for("every Page", |s| s.series(SENT, &[]).len() == 4)
        .await;
    assert_eq!(batch_calls(&fake).len(), 2, "one batch per token");
    // Each entry went with its own Page's token: the fake answers a Page only with its token,
    // and records the batch call's Authorization on each of its entries.
    let entries: Vec<RecordedRequest> = fake
        .requests()
        .into_iter()
        .filter(|request| request.in_batch)
        .collect();
    assert_eq!(
        entries.len(),
        8,
        "an insights read and a name read per Page"
    );
    for entry in &entries {
        let id = entry.object_id.as_deref().expect("an object");
        let token = if id.starts_with('A') {
            "token-a"
        } else {
            "token-b"
        };
        assert_eq!(
            entry.authorization.as_deref(),
            Some(format!("Bearer {token}").as_str()),
            "{entry:?}"
        );
    }
    exporter.stop().await;
}

/// Two tokens whose labels (`token:` and the first 4 bytes of their SHA-256) are equal, found
/// once offline with a birthday search over `collide-<n>` in Python's `hashlib`.
const COLLIDING_TOKENS: [&str; 2] = ["collide-14550", "collide-37896"];

#[tokio::test(start_paused = true)]
async fn tokens_whose_labels_collide_never_share_a_batch_and_each_page_uses_its_own() {
    let [a, b] = COLLIDING_TOKENS;
    let fake = FakeGraphApi::start().await.expect("fake");
    let mut pages = String::new();
    for (id, token) in [("A1", a), ("A2", a), ("B1", b), ("B2", b)] {
        fake.simulate_page(id, token);
        pages.push_str(&page(id, Some(token)));
    }
    let exporter = TestExporter::start(&config(&fake, "", &pages)).await;
    let scrape = exporter
        .wait_for("every Page", |s| s.series(SENT, &[]).len() == 4)
        .await;
    let batches = batch_calls(&fake);
    assert_eq!(batches.len(), 2, "one batch per token, not one per label");
    let mut authorizations: Vec<&str> = batches
        .iter()
        .map(|batch| batch.authorization.as_deref().expect("a token"))
        .collect();
    authorizations.sort_unstable();
    assert_eq!(
        authorizations,
        [format!("Bearer {a}"), format!("Bearer {b}")]
    );
    for entry in fake.requests().iter().filter(|request| request.in_batch) {
        let id = entry.object_id.as_deref().expect("an object");
        let token = if id.starts_with('A') { a } else { b };
        assert_eq!(
            entry.authorization.as_deref(),
            Some(format!("Bearer {token}").as_str()),
            "{entry:?}"
        );
    }
    assert_eq!(
        counter(
            &scrape,
            "meta_messaging_exporter_api_requests_total",
            &[("endpoint", "page_insights"), ("outcome", "success")]
        ),
        4.0
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_entry_affects_only_its_own_target() {
    let fake = FakeGraphApi::start().await.expect("fake");
    let ids = ["HEALTHY", "REVOKED", "REJECTED", "BROKEN", "TIMED_OUT"];
    let mut pages = String::new();
    for id in ids {
        fake.simulate_page(id, TOKEN);
        pages.push_str(&page(id, None));
    }
    fake.fail_always("REVOKED", Fault::invalid_token());
    fake.fail_always("REJECTED", Fault::invalid_request());
    fake.fail_always("BROKEN", Fault::transient());
    // Graph answers this entry `null` once; sent again alone, it succeeds.
    fake.fail_next("TIMED_OUT", 1, Fault::Delay(Duration::from_secs(60)));
    let exporter = TestExporter::start(&config(&fake, "", &pages)).await;
    let scrape = exporter
        .wait_for("every Page polled once", |s| {
            s.series("meta_messaging_exporter_target_up", &[]).len() == 5
                && s.series(SENT, &[]).len() == 2
        })
        .await;
    let up = |id: &str| scrape.value("meta_messaging_exporter_target_up", &[("target_id", id)]);
    assert_eq!(up("HEALTHY"), Some(1.0));
    assert_eq!(up("TIMED_OUT"), Some(1.0));
    for id in ["REVOKED", "REJECTED", "BROKEN"] {
        assert_eq!(up(id), Some(0.0), "{id}");
        assert!(scrape.series(SENT, &[("page_id", id)]).is_empty());
    }
    // 190 disables its target only; 100 fails its poll; 500 is retried, as for single calls.
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_target_disabled",
            &[("target_id", "REVOKED"), ("reason", "invalid_token")]
        ),
        Some(1.0)
    );
    assert!(
        counter(
            &scrape,
            "meta_messaging_exporter_api_retries_total",
            &[("endpoint", "page_insights")]
        ) >= 2.0,
        "{}",
        scrape.text
    );
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_polls_total",
            &[("kind", "page"), ("result", "invalid_parameter")]
        ),
        Some(1.0),
        "{}",
        scrape.text
    );
    // The null entry went again on its own: one GET outside any batch call.
    let alone: Vec<RecordedRequest> = fake
        .requests()
        .into_iter()
        .filter(|request| {
            request.method == "GET"
                && !request.in_batch
                && request.object_id.as_deref() == Some("TIMED_OUT")
        })
        .collect();
    assert_eq!(alone.len(), 1, "{alone:?}");
    assert_eq!(
        counter(
            &scrape,
            "meta_messaging_exporter_api_requests_total",
            &[("endpoint", "page_insights"), ("outcome", "timeout")]
        ),
        1.0
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn usage_headers_inside_entries_reach_the_rate_limiter() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("BUSY", TOKEN);
    fake.simulate_page("CALM", TOKEN);
    // Meta reports 90 % of the business's budget on BUSY's answers only.
    fake.set_headers(
        "BUSY",
        &[("x-business-use-case-usage", r#"{"BIZ1":[{"type":"pages","call_count":90,"total_cputime":3,"total_time":4,"estimated_time_to_regain_access":0}]}"#)],
    );
    let pages = "  - id: BUSY\n    interval: 10s\n    metrics: [page_messages_sent]\n  - id: CALM\n    interval: 10s\n    metrics: [page_messages_sent]\n";
    let exporter = TestExporter::start(&config(&fake, "", pages)).await;
    let scrape = exporter
        .wait_for("BUSY slowed down", |s| {
            s.value(
                "meta_messaging_exporter_target_backoff_seconds",
                &[("target_id", "BUSY")],
            )
            .is_some_and(|backoff| backoff > 0.0)
        })
        .await;
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_rate_limit_usage_percent",
            &[
                ("scope", "business_use_case"),
                ("id", "BIZ1"),
                ("type", "pages"),
                ("metric", "call_count")
            ]
        ),
        Some(90.0)
    );
    // 90 % is halfway from the 80 % threshold to 100 %: BUSY's 10 s interval stretches by
    // half of the 3 extra intervals the default 4x allows; CALM, in no reported scope, does not.
    let backoff = |id: &str| {
        scrape
            .value(
                "meta_messaging_exporter_target_backoff_seconds",
                &[("target_id", id)],
            )
            .expect("backoff")
    };
    assert!(
        (14.0..=16.0).contains(&backoff("BUSY")),
        "{}",
        backoff("BUSY")
    );
    assert_eq!(backoff("CALM"), 0.0);
    // And the header came inside a batch call: no request went alone.
    assert!(fake
        .requests()
        .iter()
        .all(|request| request.in_batch || request.method == "POST"));
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_batch_call_that_fails_as_a_whole_falls_back_to_single_calls() {
    let fake = FakeGraphApi::start().await.expect("fake");
    let mut pages = String::new();
    for id in ["P1", "P2", "P3"] {
        fake.simulate_page(id, TOKEN);
        pages.push_str(&page(id, None));
    }
    // A proxy's 502 page instead of the answer array.
    fake.fail_next_batch(1, Fault::bad_gateway_html());
    let exporter = TestExporter::start(&config(&fake, "", &pages)).await;
    let scrape = exporter
        .wait_for("every Page", |s| s.series(SENT, &[]).len() == 3)
        .await;
    assert_eq!(
        counter(
            &scrape,
            "meta_messaging_exporter_api_batch_fallbacks_total",
            &[]
        ),
        1.0
    );
    assert_eq!(
        counter(
            &scrape,
            "meta_messaging_exporter_api_http_requests_total",
            &[("type", "single")]
        ),
        6.0,
        "each of the batch's six calls went again alone"
    );
    for id in ["P1", "P2", "P3"] {
        assert_eq!(
            scrape.value("meta_messaging_exporter_target_up", &[("target_id", id)]),
            Some(1.0)
        );
    }
    let alone = fake
        .requests()
        .iter()
        .filter(|request| request.method == "GET" && !request.in_batch)
        .count();
    assert_eq!(alone, 6);
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn with_batching_off_every_call_is_its_own_http_request() {
    let fake = FakeGraphApi::start().await.expect("fake");
    let mut pages = String::new();
    for id in ["P1", "P2", "P3"] {
        fake.simulate_page(id, TOKEN);
        pages.push_str(&page(id, None));
    }
    let exporter = TestExporter::start(&config(&fake, "  batch: false\n", &pages)).await;
    let scrape = exporter
        .wait_for("every Page", |s| s.series(SENT, &[]).len() == 3)
        .await;
    assert!(batch_calls(&fake).is_empty());
    assert_eq!(fake.http_requests(), 6);
    assert_eq!(fake.api_calls(), 6);
    assert_eq!(
        counter(
            &scrape,
            "meta_messaging_exporter_api_http_requests_total",
            &[("type", "single")]
        ),
        6.0
    );
    exporter.stop().await;
}

/// `page` at `interval`.
fn page_every(id: &str, interval: &str) -> String {
    format!("  - id: {id}\n    interval: {interval}\n    metrics: [page_messages_sent]\n")
}

const SOLO: &str = "meta_messaging_exporter_target_solo";
const HEALTHY: [&str; 5] = ["H1", "H2", "H3", "H4", "H5"];

fn is_insights_of(request: &RecordedRequest, id: &str) -> bool {
    request.object_id.as_deref() == Some(id) && request.path.ends_with("/insights")
}

/// Five healthy Pages and `HANGING`, whose answers stall (a hung connection: the whole batch
/// call carrying it, or its own GET, never answers), all every 5s with one token; a 2s
/// single-call timeout and a 1s batch deadline.
async fn with_a_hanging_page(fake: &FakeGraphApi) -> TestExporter {
    let mut pages = String::new();
    for id in HEALTHY.iter().chain(["HANGING"].iter()) {
        fake.simulate_page(id, TOKEN);
        pages.push_str(&page_every(id, "5s"));
    }
    fake.fail_always("HANGING", Fault::Stall(Duration::from_secs(3600)));
    TestExporter::start(&config(fake, "  batch_timeout: 1s\n", &pages)).await
}

#[tokio::test(start_paused = true)]
async fn a_hanging_page_delays_its_batch_once_then_polls_alone_while_the_others_keep_their_interval(
) {
    let fake = FakeGraphApi::start().await.expect("fake");
    let exporter = with_a_hanging_page(&fake).await;
    let scrape = exporter
        .wait_for("HANGING solo and the healthy Pages polled", |s| {
            s.value(SOLO, &[("target_id", "HANGING"), ("reason", "timeout")]) == Some(1.0)
                && s.series(SENT, &[]).len() == HEALTHY.len()
        })
        .await;
    assert_eq!(
        counter(
            &scrape,
            "meta_messaging_exporter_api_batch_timeouts_total",
            &[]
        ),
        1.0,
        "only the first batch waited for HANGING"
    );
    assert_eq!(scrape.series(SOLO, &[]).len(), 1, "no healthy Page is solo");

    // A minute of virtual time from here: at a 5s interval, 12 polls per healthy Page.
    let seen = fake.requests().len();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let later: Vec<RecordedRequest> = fake.requests().split_off(seen);
    for id in HEALTHY {
        let polls = later.iter().filter(|r| is_insights_of(r, id)).count();
        assert!((11..=13).contains(&polls), "{id}: {polls} polls, ideal 12");
    }
    let hanging: Vec<&RecordedRequest> = later
        .iter()
        .filter(|r| r.object_id.as_deref() == Some("HANGING"))
        .collect();
    assert!(!hanging.is_empty(), "HANGING is still polled");
    assert!(
        hanging.iter().all(|r| !r.in_batch),
        "no later batch carries HANGING: {hanging:?}"
    );
    let scrape = exporter.scrape().await;
    for id in HEALTHY {
        assert_eq!(
            scrape.value("meta_messaging_exporter_target_up", &[("target_id", id)]),
            Some(1.0),
            "{id}"
        );
        assert_eq!(scrape.series(SENT, &[("page_id", id)]).len(), 1, "{id}");
    }
    assert_eq!(
        scrape.value(SOLO, &[("target_id", "HANGING"), ("reason", "timeout")]),
        Some(1.0)
    );
    assert_eq!(
        counter(
            &scrape,
            "meta_messaging_exporter_api_batch_timeouts_total",
            &[]
        ),
        1.0
    );
    let (_, page) = exporter.get("/").await;
    assert!(
        page.contains("polls alone in the slow lane (outside batch calls) since"),
        "the status page says HANGING is solo: {page}"
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_solo_page_that_answers_promptly_alone_three_times_rejoins_batches() {
    let fake = FakeGraphApi::start().await.expect("fake");
    let exporter = with_a_hanging_page(&fake).await;
    exporter
        .wait_for("HANGING solo", |s| {
            s.value(SOLO, &[("target_id", "HANGING")]).is_some()
        })
        .await;
    fake.clear_faults("HANGING");
    let seen = fake.requests().len();
    exporter
        .wait_for("HANGING no longer solo", |s| s.series(SOLO, &[]).is_empty())
        .await;
    // Three prompt single calls first (its insights and name reads alike).
    let alone = fake.requests()[seen..]
        .iter()
        .filter(|r| r.object_id.as_deref() == Some("HANGING") && !r.in_batch)
        .count();
    assert!(alone >= 3, "three prompt answers alone first, got {alone}");
    // Its next poll shares a batch with the others again.
    exporter
        .wait_for("HANGING in a batch again", |_| {
            fake.requests()[seen..]
                .iter()
                .any(|r| is_insights_of(r, "HANGING") && r.in_batch)
        })
        .await;
    let scrape = exporter.scrape().await;
    assert_eq!(scrape.series(SENT, &[("page_id", "HANGING")]).len(), 1);
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_batch_answered_with_null_entries_still_gets_each_entry_answered_alone() {
    let fake = FakeGraphApi::start().await.expect("fake");
    let mut pages = String::new();
    for id in ["P1", "P2", "P3"] {
        fake.simulate_page(id, TOKEN);
        pages.push_str(&page(id, None));
    }
    // Graph gives up on two entries inside the batch (`null`); alone they answer at once.
    fake.fail_next("P1", 1, Fault::Delay(Duration::from_secs(60)));
    fake.fail_next("P2", 1, Fault::Delay(Duration::from_secs(60)));
    let exporter = TestExporter::start(&config(&fake, "", &pages)).await;
    let scrape = exporter
        .wait_for("every Page", |s| s.series(SENT, &[]).len() == 3)
        .await;
    for id in ["P1", "P2"] {
        let requests: Vec<bool> = fake
            .requests()
            .iter()
            .filter(|r| is_insights_of(r, id))
            .map(|r| r.in_batch)
            .collect();
        assert_eq!(requests, [true, false], "{id}: in the batch, then alone");
    }
    assert_eq!(
        counter(
            &scrape,
            "meta_messaging_exporter_api_requests_total",
            &[("endpoint", "page_insights"), ("outcome", "timeout")]
        ),
        2.0
    );
    assert!(
        scrape.series(SOLO, &[]).is_empty(),
        "a prompt answer alone is not solo"
    );
    assert_eq!(
        counter(
            &scrape,
            "meta_messaging_exporter_api_batch_timeouts_total",
            &[]
        ),
        0.0
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_null_entry_that_is_slow_alone_too_polls_solo_as_slow() {
    let fake = FakeGraphApi::start().await.expect("fake");
    let mut pages = String::new();
    for id in ["FAST", "SLOW"] {
        fake.simulate_page(id, TOKEN);
        pages.push_str(&page(id, None));
    }
    // `null` for both its entries in the batch (insights and name read), then 1.5s alone for
    // the first to go again: an answer, but slower than the 1s batch deadline.
    fake.fail_next("SLOW", 3, Fault::Delay(Duration::from_millis(1500)));
    let exporter = TestExporter::start(&config(&fake, "  batch_timeout: 1s\n", &pages)).await;
    let scrape = exporter
        .wait_for("both Pages", |s| s.series(SENT, &[]).len() == 2)
        .await;
    assert_eq!(
        scrape.value(SOLO, &[("target_id", "SLOW"), ("reason", "slow")]),
        Some(1.0),
        "{}",
        scrape.text
    );
    assert_eq!(scrape.series(SOLO, &[("target_id", "FAST")]).len(), 0);
    exporter.stop().await;
}

/// A client as the exporter builds it, from `yaml` (after the preamble).
fn client(fake: &FakeGraphApi, yaml: &str) -> GraphClient {
    // No retries: each call here is one attempt, so the counts below are exact.
    let preamble = preamble(fake).replace("max_retries: 2", "max_retries: 0");
    let yaml = format!("{preamble}{yaml}pages: [{{id: \"P\"}}]\n");
    let config = config::from_yaml(&yaml, "test", &|_: &str| None, std::path::Path::new("."))
        .expect("a valid config");
    let metrics = ExporterMetrics::new().expect("metrics");
    let limiter = Arc::new(RateLimiter::new(
        config.rate_limits.clone(),
        metrics.clone(),
    ));
    GraphClient::new(&config.graph_api, &config.polling, metrics, limiter).expect("client")
}

#[tokio::test(start_paused = true)]
async fn the_client_lists_a_target_that_hung_its_batch_as_solo_until_it_answers_promptly() {
    let fake = FakeGraphApi::start().await.expect("fake");
    for id in ["A", "B", "C"] {
        fake.simulate_page(id, TOKEN);
    }
    fake.fail_always("A", Fault::Stall(Duration::from_secs(3600)));
    let client = client(&fake, "  batch_timeout: 1s\n");
    let token = AccessToken::new(TOKEN);
    let read = |id: &str| GraphRequest::object_fields(id, "name");
    let [ra, rb, rc] = ["A", "B", "C"].map(read);
    let (a, b, c) = tokio::join!(
        client.get(&ra, &token),
        client.get(&rb, &token),
        client.get(&rc, &token),
    );
    assert!(matches!(a, Err(GraphError::Timeout(_))), "{a:?}");
    assert!(b.is_ok() && c.is_ok(), "{b:?} {c:?}");
    let solo = client.solo();
    assert_eq!(solo.len(), 1, "{solo:?}");
    assert_eq!(
        (
            solo[0].object_id.as_str(),
            solo[0].reason,
            solo[0].prompt_streak
        ),
        ("A", SoloReason::Timeout, 0)
    );

    fake.clear_faults("A");
    for streak in 1..=2 {
        client.get(&read("A"), &token).await.expect("prompt");
        assert_eq!(client.solo()[0].prompt_streak, streak);
    }
    client.get(&read("A"), &token).await.expect("prompt");
    assert!(client.solo().is_empty(), "three prompt answers end solo");
    let alone = fake
        .requests()
        .iter()
        .filter(|r| r.object_id.as_deref() == Some("A") && !r.in_batch)
        .count();
    assert_eq!(
        alone, 4,
        "the timed-out call and three prompt ones, all alone"
    );
}

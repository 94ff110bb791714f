//! No gaps: a start, a token rotation and a reload keep every series that is still true, and
//! what goes away goes at once and completely. All on tokio's paused clock: the exporter's
//! timers, the fake's delays and the waits between scrapes run in virtual time.

use std::path::Path;
use std::time::Duration;

use meta_messaging_exporter::simulator::{FakeGraphApi, Fault};

use crate::helpers::{preamble, TestExporter, TOKEN};

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write file");
}

const SENT: &str = "meta_page_messages_sent";
const NEW_CONVERSATIONS: &str = "meta_page_messages_new_conversations_unique";
const IN_FLIGHT: &str = "meta_messaging_exporter_api_requests_in_flight";

/// A config of Pages reading their token from `token` next to it.
fn token_file_config(fake: &FakeGraphApi, pages: &[&str]) -> String {
    let mut yaml = format!(
        "graph_api:\n  base_url: {}\n  access_token_file: token\npages:\n",
        fake.base_url()
    );
    for page in pages {
        yaml.push_str(&format!(
            "  - id: {page}\n    interval: 1s\n    stale_after: 1m\n    metrics: [page_messages_sent]\n"
        ));
    }
    yaml
}

#[tokio::test(start_paused = true)]
async fn rotating_a_token_file_while_scraping_every_100ms_never_loses_a_series() {
    let fake = FakeGraphApi::start().await.expect("fake");
    let pages = ["R1", "R2", "R3", "R4", "R5"];
    for page in pages {
        fake.simulate_page(page, "old-token");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    write(&dir.path().join("token"), "old-token\n");
    let path = dir.path().join("config.yaml");
    write(&path, &token_file_config(&fake, &pages));
    let exporter = TestExporter::start_from_file(&path).await;
    exporter
        .wait_for("all five Pages", |s| s.series(SENT, &[]).len() == 5)
        .await;

    // Kubernetes swaps the secret; Meta now accepts only the new token.
    for page in pages {
        fake.set_token(page, "new-token");
    }
    write(&dir.path().join("token"), "new-token\n");
    let sent_new = |page: &str| {
        fake.requests().iter().any(|request| {
            request.object_id.as_deref() == Some(page)
                && request.authorization.as_deref() == Some("Bearer new-token")
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut scrapes = 0;
    while !pages.iter().all(|page| sent_new(page)) {
        let scrape = exporter.scrape().await;
        scrapes += 1;
        assert_eq!(
            scrape.series(SENT, &[]).len(),
            5,
            "scrape {scrapes} after the rotation lost a series:\n{}",
            scrape.text
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new token never reached every Page"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The rotation was a credential change, not a reload of the config file.
    let scrape = exporter.scrape().await;
    assert_eq!(scrape.series(SENT, &[]).len(), 5);
    assert_eq!(
        scrape.value("meta_messaging_exporter_config_last_reload_successful", &[]),
        Some(1.0)
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_token_file_watcher_never_applies_a_half_edited_config_file() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("A", "old-token");
    fake.simulate_page("B", "new-token");
    let dir = tempfile::tempdir().expect("tempdir");
    write(&dir.path().join("token"), "old-token\n");
    let path = dir.path().join("config.yaml");
    write(&path, &token_file_config(&fake, &["A"]));
    let exporter = TestExporter::start_from_file(&path).await;
    exporter
        .wait_for("A", |s| s.series(SENT, &[("page_id", "A")]).len() == 1)
        .await;

    // Someone is editing config.yaml (B added, not saved for a reload) when the token rotates.
    write(&path, &token_file_config(&fake, &["A", "B"]));
    fake.set_token("A", "new-token");
    write(&dir.path().join("token"), "new-token\n");
    exporter
        .wait_for("A polled with the new token", |_| {
            fake.requests().iter().any(|request| {
                request.object_id.as_deref() == Some("A")
                    && request.authorization.as_deref() == Some("Bearer new-token")
            })
        })
        .await;
    let scrape = exporter.scrape().await;
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_target_interval_seconds",
            &[("target_id", "B")]
        ),
        None,
        "B comes from the unsaved edit and must not be polled"
    );
    assert_eq!(fake.request_count("B"), 0);
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn changed_metrics_keep_the_old_series_until_the_first_poll_with_the_new_ones() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("P", TOKEN);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.yaml");
    let config = |metrics: &str| {
        format!(
            "{}  startup_spread: 1s\npages:\n  - id: P\n    interval: 1h\n    metrics: [{metrics}]\n",
            preamble(&fake)
        )
    };
    write(
        &path,
        &config("page_messages_sent, page_messages_new_conversations_unique"),
    );
    let exporter = TestExporter::start_from_file(&path).await;
    exporter
        .wait_for("both metrics", |s| {
            s.series(SENT, &[]).len() == 1 && s.series(NEW_CONVERSATIONS, &[]).len() == 1
        })
        .await;

    // The first poll with the new settings takes a second, so the scrape right after the
    // reload sees what is served until it lands.
    fake.fail_next("P", 1, Fault::Delay(Duration::from_secs(1)));
    write(&path, &config("page_messages_sent"));
    assert_eq!(exporter.post("/-/reload").await.0, 200);
    let scrape = exporter.scrape().await;
    assert_eq!(
        scrape.series(NEW_CONVERSATIONS, &[]).len(),
        1,
        "{}",
        scrape.text
    );
    assert_eq!(scrape.series(SENT, &[]).len(), 1);
    assert_eq!(
        scrape.value("meta_messaging_exporter_target_up", &[("target_id", "P")]),
        Some(1.0)
    );
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_target_interval_seconds",
            &[("target_id", "P")]
        ),
        Some(3600.0)
    );

    // Within the start-up spread, not an hour later, the new poll replaces them.
    let scrape = exporter
        .wait_for("the old metric gone", |s| {
            s.series(NEW_CONVERSATIONS, &[]).is_empty()
        })
        .await;
    assert_eq!(scrape.series(SENT, &[]).len(), 1);
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn removing_a_target_mid_request_drops_its_series_and_returns_the_in_flight_gauge_to_zero() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("SLOW", TOKEN);
    fake.simulate_page("KEPT", TOKEN);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.yaml");
    let page =
        |id: &str| format!("  - id: {id}\n    interval: 1s\n    metrics: [page_messages_sent]\n");
    let both = format!(
        "{}pages:\n{}{}",
        preamble(&fake).replace("request_timeout: 2s", "request_timeout: 1m"),
        page("SLOW"),
        page("KEPT")
    );
    write(&path, &both);
    let exporter = TestExporter::start_from_file(&path).await;
    exporter
        .wait_for("both Pages", |s| s.series(SENT, &[]).len() == 2)
        .await;

    fake.fail_always("SLOW", Fault::Delay(Duration::from_secs(600)));
    exporter
        .wait_for("SLOW's request hanging", |s| {
            s.value(IN_FLIGHT, &[]).is_some_and(|n| n >= 1.0) && fake.request_count("SLOW") >= 2
        })
        .await;
    let without_slow = both.replace(&page("SLOW"), "");
    write(&path, &without_slow);
    assert_eq!(exporter.post("/-/reload").await.0, 200);
    let scrape = exporter.scrape().await;
    assert!(scrape.series(SENT, &[("page_id", "SLOW")]).is_empty());
    exporter
        .wait_for("no request in flight", |s| {
            // KEPT polls every second; between its requests nothing is in flight.
            s.value(IN_FLIGHT, &[]) == Some(0.0)
        })
        .await;
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn usage_series_of_a_token_that_is_no_longer_configured_go_with_it() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("SHARED", TOKEN);
    fake.simulate_page("OWN", "page-own-token");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.yaml");
    let shared = "  - id: SHARED\n    interval: 1s\n    metrics: [page_messages_sent]\n".to_owned();
    let own = "  - id: OWN\n    access_token: page-own-token\n    interval: 1s\n    metrics: [page_messages_sent]\n";
    write(&path, &format!("{}pages:\n{shared}{own}", preamble(&fake)));
    let exporter = TestExporter::start_from_file(&path).await;
    let usage = "meta_messaging_exporter_rate_limit_usage_percent";
    let app_tokens = |s: &crate::helpers::Scrape| {
        let mut ids: Vec<String> = s
            .series(usage, &[("scope", "app")])
            .into_iter()
            .filter_map(|(labels, _)| labels.get("id").cloned())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    exporter
        .wait_for("usage of both tokens", |s| app_tokens(s).len() == 2)
        .await;

    write(&path, &format!("{}pages:\n{shared}", preamble(&fake)));
    assert_eq!(exporter.post("/-/reload").await.0, 200);
    let scrape = exporter.scrape().await;
    assert_eq!(app_tokens(&scrape).len(), 1, "{}", scrape.text);
    exporter.stop().await;
}

/// A start on tokio's paused clock: the 30-second default spread and 15-minute intervals pass
/// in virtual time, so the test proves the bound itself rather than a shortened one. Loopback
/// I/O to the fake completes between timer advances. Before the start-up spread, first polls
/// were spread over the whole interval: most of these Pages stayed empty for minutes.
#[tokio::test(start_paused = true)]
async fn on_the_paused_clock_every_page_at_15m_is_served_within_the_default_30s_spread() {
    let fake = FakeGraphApi::start().await.expect("fake");
    let mut yaml = format!("{}pages:\n", preamble(&fake));
    for n in 0..100 {
        let id = format!("P{n:03}");
        fake.simulate_page(&id, TOKEN);
        yaml.push_str(&format!(
            "  - id: {id}\n    interval: 15m\n    metrics: [page_messages_sent]\n"
        ));
    }
    let started = tokio::time::Instant::now();
    let exporter = TestExporter::start(&yaml).await;
    tokio::time::sleep_until(started + Duration::from_secs(30)).await;
    let scrape = exporter.scrape().await;
    assert_eq!(scrape.series(SENT, &[]).len(), 100, "{}", scrape.text);
    let insights = |fake: &FakeGraphApi| {
        fake.requests()
            .iter()
            .filter(|request| request.path.ends_with("/insights"))
            .count()
    };
    assert_eq!(
        insights(&fake),
        100,
        "one request per Page within the spread"
    );
    // Besides, each listed Page's name is read once, for meta_page_info. (Batch calls carry
    // these reads; the simulator records each of their entries as a GET.)
    assert_eq!(fake.api_calls(), 200);

    // The next round comes a whole interval after each first poll, not earlier.
    tokio::time::sleep_until(started + Duration::from_secs(15 * 60 - 1)).await;
    assert_eq!(
        insights(&fake),
        100,
        "no second round before an interval has passed"
    );
    tokio::time::sleep_until(started + Duration::from_secs(15 * 60 + 30)).await;
    assert_eq!(
        insights(&fake),
        200,
        "a second round an interval after the first"
    );
    // Names are not read again within the hour.
    assert_eq!(fake.api_calls(), 300);
    exporter.stop().await;
}

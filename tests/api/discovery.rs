//! Discovery and names: Pages from `/me/accounts` polled with their own Page tokens, WhatsApp
//! accounts of a business, include/exclude, listed targets winning, the two-misses rule, a
//! failing discovery keeping what it found, ad-account insights with seed 002's numbers, and
//! the info series that put names on ids. On tokio's paused clock and a fixed wall clock.

use std::sync::Arc;
use std::time::Duration;

use meta_messaging_exporter::clock::FixedClock;
use meta_messaging_exporter::simulator::{FakeGraphApi, Fault};

use crate::helpers::{preamble, Scrape, TestExporter, TOKEN};
use crate::seeds::seed_campaign_body;

/// 2025-06-02 10:00 PDT.
const NOW: i64 = 1_748_847_600 + 10 * 3600;
const HOUR: Duration = Duration::from_secs(3600);

/// Page tokens distinctive enough that finding one anywhere but in a request header is a leak.
const PAGE_TOKENS: [&str; 3] = [
    "EAAPage-token-one-4a1b",
    "EAAPage-token-two-8c2d",
    "EAAPage-token-three-9e3f",
];
const PAGES: [&str; 3] = ["201", "202", "203"];

/// Three Pages the configured token manages, each accepting only its own token, named
/// "Acme Shoes", "Acme Hats" and "Other Shop"; served two to a page of `/me/accounts`.
async fn fake_with_pages() -> FakeGraphApi {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.set_now(Some(NOW));
    for ((id, token), name) in
        PAGES
            .iter()
            .zip(PAGE_TOKENS)
            .zip(["Acme Shoes", "Acme Hats", "Other Shop"])
    {
        fake.simulate_page(id, token);
        fake.set_name(id, name);
    }
    fake.grant_pages(TOKEN, &PAGES);
    fake.set_max_page_size(2);
    fake
}

/// Starts the exporter and waits out the start-up spread (30 s), past every first poll.
async fn start(fake: &FakeGraphApi, rest: &str) -> TestExporter {
    let yaml = format!("{}{rest}", preamble(fake));
    let exporter = TestExporter::start_with_clock(&yaml, Arc::new(FixedClock::new(NOW))).await;
    tokio::time::sleep(Duration::from_secs(31)).await;
    exporter
}

const PAGE_DISCOVERY: &str =
    "discovery:\n  pages:\n    defaults: {interval: 15m, metrics: [page_messages_sent]}\n";

fn up(scrape: &Scrape, id: &str) -> Option<f64> {
    scrape.value("meta_messaging_exporter_target_up", &[("target_id", id)])
}

/// Waits until all three Pages have polled successfully.
async fn all_pages_up(exporter: &TestExporter) -> Scrape {
    exporter
        .wait_for("all three Pages polled", |s| {
            PAGES.iter().all(|page| up(s, page) == Some(1.0))
        })
        .await
}

fn page_targets(scrape: &Scrape) -> usize {
    scrape
        .series(
            "meta_messaging_exporter_target_interval_seconds",
            &[("kind", "page")],
        )
        .len()
}

/// The bearer tokens the fake saw on insights requests for `page`.
fn insights_tokens(fake: &FakeGraphApi, page: &str) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|r| r.path.ends_with(&format!("/{page}/insights")))
        .filter_map(|r| r.authorization)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn pages_from_two_pages_of_me_accounts_are_each_polled_with_their_own_token() {
    let fake = fake_with_pages().await;
    let exporter = start(&fake, PAGE_DISCOVERY).await;
    let scrape = all_pages_up(&exporter).await;
    let listings: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/me/accounts"))
        .collect();
    assert_eq!(listings.len(), 2, "two pages of /me/accounts");
    assert!(
        listings[1].query.contains("after="),
        "{}",
        listings[1].query
    );
    for (page, token) in PAGES.iter().zip(PAGE_TOKENS) {
        let tokens = insights_tokens(&fake, page);
        assert!(!tokens.is_empty());
        assert!(
            tokens.iter().all(|t| *t == format!("Bearer {token}")),
            "{page}: {tokens:?}"
        );
    }
    assert_eq!(
        scrape.value(
            "meta_page_info",
            &[
                ("page_id", "201"),
                ("name", "Acme Shoes"),
                ("origin", "discovered")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_discovery_targets",
            &[("source", "pages")]
        ),
        Some(3.0)
    );
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_discovery_last_run_successful",
            &[("source", "pages")]
        ),
        Some(1.0)
    );
    // Discovered names need no name read of their own.
    assert!(fake
        .requests()
        .iter()
        .all(|r| !r.query.contains("fields=name") || r.path.ends_with("/me/accounts")));
    let (_, status_page) = exporter.get("/").await;
    assert!(status_page.contains("discovered") && status_page.contains("GET /me/accounts"));
    for token in PAGE_TOKENS.iter().chain([&TOKEN]) {
        assert!(!scrape.text.contains(token), "{token} in /metrics");
        assert!(!status_page.contains(token), "{token} on the status page");
    }
    // `access_token` is asked for as a field, never sent as a parameter.
    for request in fake.requests() {
        assert!(!request.query.contains("access_token="), "{request:?}");
        for token in PAGE_TOKENS {
            assert!(!request.query.contains(token) && !request.path.contains(token));
        }
    }
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn include_and_exclude_match_names_or_ids() {
    let fake = fake_with_pages().await;
    let discovery = "discovery:\n  pages:\n    include: [\"^Acme\", \"^203$\"]\n    exclude: [Hats]\n    defaults: {metrics: [page_messages_sent]}\n";
    let exporter = start(&fake, discovery).await;
    let scrape = exporter
        .wait_for("the included Pages polled", |s| {
            up(s, "201").is_some() && up(s, "203").is_some()
        })
        .await;
    assert_eq!(page_targets(&scrape), 2, "{}", scrape.text);
    assert_eq!(up(&scrape, "202"), None, "excluded by name");
    assert!(insights_tokens(&fake, "202").is_empty());
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_listed_page_wins_over_the_discovered_one_with_its_settings_and_token() {
    let fake = fake_with_pages().await;
    // Page 201 also accepts the configured token when listed with it.
    fake.simulate_page("201", TOKEN);
    let rest = format!("pages:\n  - id: \"201\"\n    interval: 1h\n    metrics: [page_messages_new_conversations_unique]\n{PAGE_DISCOVERY}");
    let exporter = start(&fake, &rest).await;
    let scrape = exporter
        .wait_for("every Page polled", |s| {
            PAGES.iter().all(|page| up(s, page).is_some())
        })
        .await;
    assert_eq!(page_targets(&scrape), 3);
    assert_eq!(up(&scrape, "201"), Some(1.0));
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_target_interval_seconds",
            &[("target_id", "201")]
        ),
        Some(3600.0)
    );
    assert!(insights_tokens(&fake, "201")
        .iter()
        .all(|t| *t == format!("Bearer {TOKEN}")));
    // Its name comes from one name read, and the series says it is listed.
    assert_eq!(
        scrape.value(
            "meta_page_info",
            &[
                ("page_id", "201"),
                ("name", "Acme Shoes"),
                ("origin", "static")
            ]
        ),
        Some(1.0),
        "{}",
        scrape.text
    );
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_discovery_targets",
            &[("source", "pages")]
        ),
        Some(2.0)
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_page_missing_from_one_discovery_stays_and_from_two_is_removed() {
    let fake = fake_with_pages().await;
    let exporter = start(&fake, PAGE_DISCOVERY).await;
    all_pages_up(&exporter).await;
    fake.grant_pages(TOKEN, &PAGES[..2]);
    // The second run, an hour after the first, misses Page 203 once: it stays, still polled.
    tokio::time::sleep(HOUR).await;
    let scrape = exporter.scrape().await;
    assert_eq!(page_targets(&scrape), 3, "{}", scrape.text);
    assert!(scrape
        .value("meta_page_messages_sent", &[("page_id", "203")])
        .is_some());
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_discovery_runs_total",
            &[("source", "pages")]
        ),
        Some(2.0)
    );
    // The third misses it again: it goes, with its series.
    tokio::time::sleep(HOUR).await;
    let scrape = exporter.scrape().await;
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_discovery_runs_total",
            &[("source", "pages")]
        ),
        Some(3.0)
    );
    assert_eq!(page_targets(&scrape), 2, "{}", scrape.text);
    assert!(scrape
        .series("meta_page_messages_sent", &[("page_id", "203")])
        .is_empty());
    assert!(scrape
        .series("meta_page_info", &[("page_id", "203")])
        .is_empty());
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_discovery_keeps_the_pages_it_found_and_says_so() {
    let fake = fake_with_pages().await;
    let exporter = start(&fake, PAGE_DISCOVERY).await;
    all_pages_up(&exporter).await;
    fake.fail_always(
        "me",
        Fault::Graph {
            status: 500,
            code: 1,
            subcode: None,
            message: "An unknown error occurred".to_owned(),
            is_transient: true,
        },
    );
    // Two failed runs: nothing found before is counted missing.
    tokio::time::sleep(2 * HOUR).await;
    let scrape = exporter.scrape().await;
    assert_eq!(page_targets(&scrape), 3, "{}", scrape.text);
    assert!(PAGES.iter().all(|page| up(&scrape, page) == Some(1.0)));
    let source = [("source", "pages")];
    assert_eq!(
        scrape.value("meta_messaging_exporter_discovery_errors_total", &source),
        Some(2.0)
    );
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_discovery_last_run_successful",
            &source
        ),
        Some(0.0)
    );
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_discovery_last_success_timestamp_seconds",
            &source
        ),
        Some(NOW as f64)
    );
    let (_, status_page) = exporter.get("/").await;
    assert!(
        status_page.contains("An unknown error occurred"),
        "{status_page}"
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn owned_and_client_accounts_of_a_business_are_polled_once_each() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.set_now(Some(NOW));
    for waba in ["W1", "W2", "W3"] {
        fake.simulate_waba(waba, TOKEN);
    }
    fake.set_name("W2", "Partner client");
    // W1 is both owned and shared: one target.
    fake.simulate_business("777", TOKEN, &["W1", "W3"], &["W2", "W1"]);
    let discovery = "discovery:\n  whatsapp_business_accounts:\n    business_ids: [\"777\"]\n    exclude: [\"^W3$\"]\n    defaults: {interval: 15m, pricing: false, phone_numbers_health: false}\n";
    let exporter = start(&fake, discovery).await;
    let scrape = exporter
        .wait_for("both accounts polled", |s| {
            up(s, "W1") == Some(1.0) && up(s, "W2") == Some(1.0)
        })
        .await;
    let wabas = scrape.series(
        "meta_messaging_exporter_target_interval_seconds",
        &[("kind", "whatsapp_business_account")],
    );
    assert_eq!(wabas.len(), 2, "{}", scrape.text);
    assert_eq!(
        scrape.value(
            "meta_whatsapp_business_account_info",
            &[
                ("waba_id", "W2"),
                ("name", "Partner client"),
                ("origin", "discovered")
            ]
        ),
        Some(1.0),
        "{}",
        scrape.text
    );
    for edge in [
        "/777/owned_whatsapp_business_accounts",
        "/777/client_whatsapp_business_accounts",
    ] {
        assert!(
            fake.requests().iter().any(|r| r.path.ends_with(edge)),
            "{edge}"
        );
    }
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_discovery_targets",
            &[("source", "whatsapp_business_accounts")]
        ),
        Some(2.0)
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn ad_account_insights_give_seed_002s_numbers_with_the_account_label() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.set_now(Some(NOW));
    fake.fixed_response("act_123", TOKEN, seed_campaign_body());
    fake.simulate_ad_account("act_456", TOKEN);
    fake.set_name("act_456", "Acme ads");
    let rest = "ad_accounts:\n  - id: act_123\n    interval: 1h\n    date_preset: last_30d\n    fields: [marketing_messages_delivered, marketing_messages_link_btn_click, marketing_messages_spend, marketing_messages_read_rate, marketing_messages_link_btn_click_rate, marketing_messages_cost_per_link_btn_click, marketing_messages_cost_per_delivered]\n  - id: \"456\"\n";
    let exporter = start(&fake, rest).await;
    let scrape = exporter
        .wait_for("both ad accounts polled", |s| {
            up(s, "act_123") == Some(1.0) && up(s, "act_456") == Some(1.0)
        })
        .await;
    let labels = [("ad_account_id", "act_123"), ("date_preset", "last_30d")];
    for (field, expected) in [
        ("delivered", 2755.0),
        ("link_btn_click", 268.0),
        ("spend", 38.87),
        ("read_rate", 79.419238),
        ("link_btn_click_rate", 9.727768),
        ("cost_per_link_btn_click", 0.145037),
        ("cost_per_delivered", 0.014109),
    ] {
        let name = format!("meta_marketing_messages_{field}");
        assert_eq!(scrape.value(&name, &labels), Some(expected), "{name}");
    }
    assert!(scrape
        .series(
            "meta_marketing_messages_spend",
            &[("campaign_id", "act_123")]
        )
        .is_empty());
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.path.ends_with("/act_123/insights")));
    // The bare id is the same account.
    assert_eq!(
        scrape.value(
            "meta_ad_account_info",
            &[
                ("ad_account_id", "act_456"),
                ("name", "Acme ads"),
                ("currency", "USD"),
                ("origin", "static")
            ]
        ),
        Some(1.0),
        "{}",
        scrape.text
    );
    assert_eq!(
        scrape.value("meta_messaging_exporter_targets", &[("kind", "ad_account")]),
        Some(2.0)
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn names_of_listed_targets_are_read_once_an_interval_not_once_a_poll() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.set_now(Some(NOW));
    fake.simulate_campaign("C1", TOKEN);
    fake.set_name("C1", "Spring sale");
    let rest = "campaigns:\n  - id: C1\n    interval: 5m\n";
    let exporter = start(&fake, rest).await;
    let scrape = exporter
        .wait_for("the campaign's name", |s| {
            s.value("meta_campaign_info", &[("campaign_id", "C1")])
                .is_some()
        })
        .await;
    assert_eq!(
        scrape.value(
            "meta_campaign_info",
            &[
                ("campaign_id", "C1"),
                ("name", "Spring sale"),
                ("origin", "static")
            ]
        ),
        Some(1.0)
    );
    fake.set_name("C1", "Summer sale");
    // An hour of polls every 5 minutes reads the name once more, at the hour.
    tokio::time::sleep(HOUR + Duration::from_secs(60)).await;
    let name_reads = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/C1") && r.query.contains("fields=name"))
        .count();
    let polls = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/C1/insights"))
        .count();
    assert!(polls >= 12, "{polls} polls");
    assert_eq!(name_reads, 2);
    let scrape = exporter.scrape().await;
    assert_eq!(
        scrape.value(
            "meta_campaign_info",
            &[("campaign_id", "C1"), ("name", "Summer sale")]
        ),
        Some(1.0)
    );
    assert_eq!(scrape.series("meta_campaign_info", &[]).len(), 1);
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_reload_that_narrows_the_filter_removes_pages_at_once_and_one_without_discovery_keeps_listed_ones(
) {
    let fake = fake_with_pages().await;
    fake.simulate_page("201", TOKEN);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.yaml");
    let listed = "pages:\n  - id: \"201\"\n    metrics: [page_messages_sent]\n";
    let write = |discovery: &str| {
        std::fs::write(&path, format!("{}{listed}{discovery}", preamble(&fake))).expect("write");
    };
    write(PAGE_DISCOVERY);
    let exporter = TestExporter::start_from_file(&path).await;
    tokio::time::sleep(Duration::from_secs(31)).await;
    all_pages_up(&exporter).await;
    let runs = |s: &Scrape| {
        s.value(
            "meta_messaging_exporter_discovery_runs_total",
            &[("source", "pages")],
        )
    };
    // A narrower filter applies to what was found, at once; the changed section also runs
    // discovery again at once.
    write("discovery:\n  pages:\n    exclude: [Hats]\n    defaults: {metrics: [page_messages_sent]}\n");
    assert_eq!(exporter.post("/-/reload").await.0, 200);
    let scrape = exporter.scrape().await;
    assert_eq!(up(&scrape, "202"), None, "{}", scrape.text);
    assert!(scrape
        .series("meta_page_messages_sent", &[("page_id", "202")])
        .is_empty());
    assert_eq!(up(&scrape, "203"), Some(1.0));
    exporter
        .wait_for("a second run", |s| runs(s) == Some(2.0))
        .await;
    // Without discovery only the listed Page is left, and it keeps its series.
    write("");
    assert_eq!(exporter.post("/-/reload").await.0, 200);
    let scrape = exporter.scrape().await;
    assert_eq!(page_targets(&scrape), 1, "{}", scrape.text);
    assert_eq!(up(&scrape, "201"), Some(1.0));
    assert!(scrape
        .value("meta_page_messages_sent", &[("page_id", "201")])
        .is_some());
    let (_, status_page) = exporter.get("/").await;
    assert!(
        status_page.contains("Add a <code>discovery</code> section"),
        "{status_page}"
    );
    exporter.stop().await;
}

//! API versions: which version each read is sent with. Campaign and ad-account reads are
//! Marketing API reads and follow `graph_api.marketing_version`; Page and WhatsApp reads
//! follow `graph_api.version`. On tokio's paused clock, so batch windows pass in virtual time.

use meta_messaging_exporter::catalog::versions::DEFAULT_VERSION;
use meta_messaging_exporter::simulator::{FakeGraphApi, RecordedRequest};

use crate::helpers::{preamble, Scrape, TestExporter, TOKEN};

fn targets(batch: bool) -> String {
    format!(
        "  startup_spread: 1s\n  batch: {batch}\n\
         pages:\n  - id: P1\n    interval: 1h\n    metrics: [page_messages_sent]\n\
         campaigns:\n  - id: C1\n    interval: 1h\n\
         ad_accounts:\n  - id: act_1001\n    interval: 1h\n"
    )
}

/// The preamble with `versions` (lines under `graph_api:`) spliced in.
fn config(fake: &FakeGraphApi, versions: &str, batch: bool) -> String {
    let preamble = preamble(fake).replacen("graph_api:\n", &format!("graph_api:\n{versions}"), 1);
    format!("{preamble}{}", targets(batch))
}

fn start_fake_with_targets(fake: &FakeGraphApi) {
    fake.simulate_page("P1", TOKEN);
    fake.simulate_campaign("C1", TOKEN);
    fake.simulate_ad_account("act_1001", TOKEN);
}

/// The version segment of every request about `object`, sorted and without repeats.
fn versions_of(requests: &[RecordedRequest], object: &str) -> Vec<String> {
    let mut versions: Vec<String> = requests
        .iter()
        .filter(|request| request.object_id.as_deref() == Some(object))
        .filter_map(|request| request.path.split('/').nth(1).map(str::to_owned))
        .collect();
    versions.sort();
    versions.dedup();
    versions
}

async fn poll_everything(yaml: &str) -> (TestExporter, Scrape) {
    let exporter = TestExporter::start(yaml).await;
    let scrape = exporter
        .wait_for("every target and name", |s| {
            !s.series("meta_page_info", &[]).is_empty()
                && !s.series("meta_campaign_info", &[]).is_empty()
                && !s.series("meta_ad_account_info", &[]).is_empty()
        })
        .await;
    (exporter, scrape)
}

#[tokio::test(start_paused = true)]
async fn every_read_uses_the_default_version_when_none_is_configured() {
    let fake = FakeGraphApi::start().await.expect("fake");
    start_fake_with_targets(&fake);
    let (exporter, _) = poll_everything(&config(&fake, "", false)).await;
    let requests = fake.requests();
    for object in ["P1", "C1", "act_1001"] {
        assert_eq!(
            versions_of(&requests, object),
            [DEFAULT_VERSION],
            "{object}"
        );
    }
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn campaign_and_ad_account_reads_use_the_marketing_version_and_page_reads_the_graph_version()
{
    let fake = FakeGraphApi::start().await.expect("fake");
    start_fake_with_targets(&fake);
    let versions = "  version: v24.0\n  marketing_version: v26.0\n";
    let (exporter, _) = poll_everything(&config(&fake, versions, false)).await;
    let requests = fake.requests();
    assert_eq!(versions_of(&requests, "P1"), ["v24.0"]);
    assert_eq!(versions_of(&requests, "C1"), ["v26.0"], "insights and name");
    assert_eq!(
        versions_of(&requests, "act_1001"),
        ["v26.0"],
        "insights and name"
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn batch_calls_never_mix_the_two_versions() {
    let fake = FakeGraphApi::start().await.expect("fake");
    start_fake_with_targets(&fake);
    let versions = "  version: v24.0\n  marketing_version: v26.0\n";
    let (exporter, _) = poll_everything(&config(&fake, versions, true)).await;
    let requests = fake.requests();
    assert_eq!(versions_of(&requests, "P1"), ["v24.0"]);
    assert_eq!(versions_of(&requests, "C1"), ["v26.0"]);
    assert_eq!(versions_of(&requests, "act_1001"), ["v26.0"]);
    let mut batch_paths: Vec<&str> = requests
        .iter()
        .filter(|request| request.method == "POST" && request.object_id.is_none())
        .map(|request| request.path.as_str())
        .collect();
    batch_paths.sort();
    batch_paths.dedup();
    assert_eq!(batch_paths, ["/v24.0/", "/v26.0/"]);
    exporter.stop().await;
}

const INFO: &str = "meta_messaging_exporter_api_version_info";
const END: &str = "meta_messaging_exporter_api_version_end_timestamp_seconds";

#[tokio::test(start_paused = true)]
async fn the_versions_meta_served_and_the_end_dates_of_the_configured_ones_are_exported() {
    let fake = FakeGraphApi::start().await.expect("fake");
    start_fake_with_targets(&fake);
    let versions = "  version: v24.0\n  marketing_version: v26.0\n";
    let (exporter, scrape) = poll_everything(&config(&fake, versions, true)).await;
    let graph = [
        ("api", "graph"),
        ("requested", "v24.0"),
        ("served", "v24.0"),
    ];
    assert_eq!(scrape.value(INFO, &graph), Some(1.0));
    let marketing = [
        ("api", "marketing"),
        ("requested", "v26.0"),
        ("served", "v26.0"),
    ];
    assert_eq!(scrape.value(INFO, &marketing), Some(1.0));
    assert_eq!(scrape.series(INFO, &[]).len(), 2);
    // 2028-02-18 00:00 in Los Angeles (PST, UTC-8).
    let graph_end = [("api", "graph"), ("version", "v24.0")];
    assert_eq!(scrape.value(END, &graph_end), Some(1_834_473_600.0));
    assert_eq!(
        scrape.series(END, &[]).len(),
        1,
        "Meta has set no date for v26.0"
    );
    exporter.stop().await;
}

/// 2026-12-04 12:00 UTC: v23.0 and v24.0 have left the Marketing API, v25.0 ends on
/// 2027-02-23.
const TODAY: i64 = 1_796_385_600;
const WARNINGS: &str = "meta_messaging_exporter_api_version_warnings_total";

#[tokio::test(start_paused = true)]
async fn an_expired_marketing_version_meta_upgraded_is_shown_served_and_its_warnings_counted() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.set_now(Some(TODAY));
    start_fake_with_targets(&fake);
    // The simulator upgrades by Meta's schedule: v24.0 is served as v25.0, with Meta's
    // X-Ad-Api-Version-Warning on every campaign and ad-account answer.
    let versions = "  version: v27.0\n  marketing_version: v24.0\n";
    let (exporter, scrape) = poll_everything(&config(&fake, versions, true)).await;
    let upgraded = [
        ("api", "marketing"),
        ("requested", "v24.0"),
        ("served", "v25.0"),
    ];
    assert_eq!(scrape.value(INFO, &upgraded), Some(1.0));
    assert_eq!(
        scrape.series(INFO, &[("api", "marketing")]).len(),
        1,
        "one served version per requested one"
    );
    let graph = [
        ("api", "graph"),
        ("requested", "v27.0"),
        ("served", "v27.0"),
    ];
    assert_eq!(
        scrape.value(INFO, &graph),
        Some(1.0),
        "Graph paths are not upgraded"
    );
    for endpoint in ["campaign_insights", "ad_account_insights"] {
        let warnings = scrape.value(WARNINGS, &[("endpoint", endpoint)]);
        assert!(
            warnings.is_some_and(|count| count >= 1.0),
            "{endpoint}: {warnings:?}"
        );
    }
    assert_eq!(
        scrape.value(WARNINGS, &[("endpoint", "page_insights")]),
        None,
        "no warning on Graph reads"
    );
    // Upgraded calls answer: the campaign's data is there.
    assert!(!scrape
        .series(
            "meta_marketing_messages_delivered",
            &[("campaign_id", "C1")]
        )
        .is_empty());
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn error_2635_fails_only_that_campaigns_poll_names_the_key_and_is_not_retried() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.set_now(Some(TODAY));
    start_fake_with_targets(&fake);
    fake.simulate_campaign("C2", TOKEN);
    fake.reject_expired_marketing_version("C2");
    // Batching on, as by default: the rejected entry shares a batch call with healthy ones.
    let yaml = config(&fake, "  marketing_version: v24.0\n", true)
        .replace("campaigns:\n", "campaigns:\n  - id: C2\n    interval: 1h\n");
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("C1 up and C2 failing", |s| {
            s.value("meta_messaging_exporter_target_up", &[("target_id", "C1")]) == Some(1.0)
                && s.value("meta_messaging_exporter_target_up", &[("target_id", "C2")]) == Some(0.0)
        })
        .await;
    let failing = [
        ("target_id", "C2"),
        ("read", "insights"),
        ("error_class", "deprecated_version"),
    ];
    assert_eq!(
        scrape.value("meta_messaging_exporter_target_read_failing", &failing),
        Some(1.0)
    );
    assert!(!scrape
        .series(
            "meta_marketing_messages_delivered",
            &[("campaign_id", "C1")]
        )
        .is_empty());
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_target_disabled",
            &[("target_id", "C2")]
        ),
        None,
        "asked again at the next interval: Meta's app setting can change the answer"
    );
    let (status, page) = exporter.get("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("graph_api.marketing_version"), "{page}");
    assert!(page.contains("v24.0"), "{page}");
    // One insights call per poll: a 2635 is not retried, however many retries transient
    // errors get.
    let insights = fake
        .requests()
        .iter()
        .filter(|request| request.path.ends_with("/C2/insights"))
        .count();
    assert_eq!(insights, 1);
    exporter.stop().await;
}

/// The limits of W1's two phone numbers, and the `fields` its phone-number list asked for.
async fn phone_number_limits(version: &str) -> (Vec<f64>, Vec<String>) {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("W1", TOKEN);
    let preamble = preamble(&fake).replacen(
        "graph_api:\n",
        &format!("graph_api:\n  version: {version}\n"),
        1,
    );
    let yaml = format!("{preamble}whatsapp_business_accounts:\n  - id: W1\n    interval: 1h\n");
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("both numbers' limits", |s| {
            s.series("meta_whatsapp_phone_number_messaging_limit", &[])
                .len()
                == 2
        })
        .await;
    let mut limits: Vec<f64> = scrape
        .series("meta_whatsapp_phone_number_messaging_limit", &[])
        .into_iter()
        .map(|(_, value)| value)
        .collect();
    limits.sort_by(f64::total_cmp);
    let fields = fake
        .requests()
        .iter()
        .filter(|request| request.path.ends_with("/W1/phone_numbers"))
        .map(|request| request.query.clone())
        .collect();
    exporter.stop().await;
    (limits, fields)
}

#[tokio::test(start_paused = true)]
async fn the_phone_number_list_asks_the_limit_field_of_the_configured_version() {
    // Before v24.0 the limit is `messaging_limit_tier`; the new field would fail the list.
    let (limits, queries) = phone_number_limits("v23.0").await;
    assert_eq!(
        limits,
        [1_000.0, 10_000.0],
        "the old spelling, which had no 2K tier"
    );
    assert!(!queries.is_empty());
    for query in &queries {
        assert!(query.contains("messaging_limit_tier"), "{query}");
        assert!(
            !query.contains("whatsapp_business_manager_messaging_limit"),
            "{query}"
        );
    }
    for version in ["v24.0", DEFAULT_VERSION] {
        let (limits, queries) = phone_number_limits(version).await;
        assert_eq!(limits, [2_000.0, 10_000.0], "{version}");
        for query in &queries {
            assert!(
                query.contains("whatsapp_business_manager_messaging_limit"),
                "{query}"
            );
            assert!(!query.contains("messaging_limit_tier"), "{query}");
        }
    }
}

const PORTFOLIO: &str = "meta_whatsapp_messaging_limit";
const PORTFOLIO_USERS: &str = "meta_whatsapp_messaging_limit_users";

#[tokio::test(start_paused = true)]
async fn the_portfolio_limit_comes_from_the_node_read_in_either_spelling_and_by_version() {
    let fake = FakeGraphApi::start().await.expect("fake");
    for waba in ["W1", "W2", "W3"] {
        fake.simulate_waba(waba, TOKEN);
    }
    // W1 answers as the simulator does (TIER_10K); W2 in the webhook spelling; W3 has a
    // portfolio that never messaged anyone.
    fake.fixed_field(
        "W2",
        "whatsapp_business_manager_messaging_limit",
        serde_json::json!("2000"),
    );
    fake.fixed_field(
        "W3",
        "whatsapp_business_manager_messaging_limit",
        serde_json::json!("TIER_NOT_SET"),
    );
    let accounts: String = ["W1", "W2", "W3"]
        .iter()
        .map(|id| format!("  - id: {id}\n    interval: 1h\n    phone_numbers_health: false\n"))
        .collect();
    let yaml = format!("{}whatsapp_business_accounts:\n{accounts}", preamble(&fake));
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("three portfolio limits", |s| {
            s.series(PORTFOLIO, &[]).len() == 3
        })
        .await;
    for (waba, tier, users) in [
        ("W1", "TIER_10K", Some(10_000.0)),
        ("W2", "2000", Some(2_000.0)),
        ("W3", "TIER_NOT_SET", None),
    ] {
        assert_eq!(
            scrape.value(PORTFOLIO, &[("waba_id", waba), ("tier", tier)]),
            Some(1.0),
            "{waba}"
        );
        assert_eq!(
            scrape.value(PORTFOLIO_USERS, &[("waba_id", waba)]),
            users,
            "{waba}"
        );
    }
    // No call of its own: the limit rides in the node read.
    let node_reads: Vec<String> = fake
        .requests()
        .iter()
        .filter(|request| request.path.ends_with("/W1"))
        .map(|request| request.query.clone())
        .collect();
    assert_eq!(node_reads.len(), 1, "{node_reads:?}");
    assert!(
        node_reads[0].contains("analytics.start"),
        "{}",
        node_reads[0]
    );
    assert!(
        node_reads[0].contains("whatsapp_business_manager_messaging_limit"),
        "{}",
        node_reads[0]
    );
    exporter.stop().await;

    // v23.0 asks the old field, which the account answers as well.
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("W1", TOKEN);
    let preamble = preamble(&fake).replacen("graph_api:\n", "graph_api:\n  version: v23.0\n", 1);
    let yaml = format!("{preamble}whatsapp_business_accounts:\n  - id: W1\n    interval: 1h\n    phone_numbers_health: false\n");
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("the portfolio limit", |s| {
            !s.series(PORTFOLIO, &[]).is_empty()
        })
        .await;
    assert_eq!(
        scrape.value(PORTFOLIO_USERS, &[("waba_id", "W1")]),
        Some(10_000.0)
    );
    let node = fake
        .requests()
        .iter()
        .find(|request| request.path.ends_with("/W1"))
        .map(|request| request.query.clone())
        .expect("a node read");
    assert!(node.contains("messaging_limit_tier"), "{node}");
    assert!(
        !node.contains("whatsapp_business_manager_messaging_limit"),
        "{node}"
    );
    exporter.stop().await;
}

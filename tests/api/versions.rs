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

#[tokio::test(start_paused = true)]
async fn a_version_meta_upgraded_shows_as_served_beside_the_requested_one() {
    let fake = FakeGraphApi::start().await.expect("fake");
    start_fake_with_targets(&fake);
    for object in ["C1", "act_1001"] {
        fake.set_headers(object, &[("facebook-api-version", "v25.0")]);
    }
    let versions = "  version: v27.0\n  marketing_version: v24.0\n";
    let (exporter, scrape) = poll_everything(&config(&fake, versions, false)).await;
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
    exporter.stop().await;
}

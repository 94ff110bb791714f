//! API versions: which version each read is sent with. Campaign and ad-account reads are
//! Marketing API reads and follow `graph_api.marketing_version`; Page and WhatsApp reads
//! follow `graph_api.version`. On tokio's paused clock, so batch windows pass in virtual time.

use meta_messaging_exporter::catalog::versions::DEFAULT_VERSION;
use meta_messaging_exporter::simulator::{FakeGraphApi, RecordedRequest};

use crate::helpers::{preamble, TestExporter, TOKEN};

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

async fn poll_everything(yaml: &str) -> TestExporter {
    let exporter = TestExporter::start(yaml).await;
    exporter
        .wait_for("every target and name", |s| {
            !s.series("meta_page_info", &[]).is_empty()
                && !s.series("meta_campaign_info", &[]).is_empty()
                && !s.series("meta_ad_account_info", &[]).is_empty()
        })
        .await;
    exporter
}

#[tokio::test(start_paused = true)]
async fn every_read_uses_the_default_version_when_none_is_configured() {
    let fake = FakeGraphApi::start().await.expect("fake");
    start_fake_with_targets(&fake);
    let exporter = poll_everything(&config(&fake, "", false)).await;
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
    let exporter = poll_everything(&config(&fake, versions, false)).await;
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
    let exporter = poll_everything(&config(&fake, versions, true)).await;
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

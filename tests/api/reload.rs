//! Reloading: a valid new config applies without losing data for unchanged targets, an
//! invalid one is rejected while the old one keeps running, and a rotated token file is
//! picked up without a restart. On tokio's paused clock, like every test of timing.

use std::path::Path;

use meta_messaging_exporter::simulator::FakeGraphApi;

use crate::helpers::{preamble, TestExporter, TOKEN};

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write file");
}

#[tokio::test(start_paused = true)]
async fn a_reload_starts_new_targets_stops_removed_ones_and_keeps_unchanged_ones() {
    let fake = FakeGraphApi::start().await.expect("fake");
    for page in ["KEPT", "REMOVED", "ADDED"] {
        fake.simulate_page(page, TOKEN);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.yaml");
    let page =
        |id: &str| format!("  - id: {id}\n    interval: 1s\n    metrics: [page_messages_sent]\n");
    write(
        &path,
        &format!(
            "{}pages:\n{}{}",
            preamble(&fake),
            page("KEPT"),
            page("REMOVED")
        ),
    );
    let exporter = TestExporter::start_from_file(&path).await;
    let before = exporter
        .wait_for("both Pages", |s| {
            s.series("meta_page_messages_sent", &[]).len() == 2
        })
        .await;
    let kept_since = before
        .value(
            "meta_messaging_exporter_target_last_success_timestamp_seconds",
            &[("target_id", "KEPT")],
        )
        .expect("KEPT polled");

    write(
        &path,
        &format!(
            "{}pages:\n{}{}",
            preamble(&fake),
            page("KEPT"),
            page("ADDED")
        ),
    );
    assert_eq!(
        exporter.post("/-/reload").await,
        (200, "Reloaded\n".to_owned())
    );
    let scrape = exporter.scrape().await;
    // The unchanged target kept its series and its state through the reload ...
    assert!(!scrape
        .series("meta_page_messages_sent", &[("page_id", "KEPT")])
        .is_empty());
    assert!(
        scrape.value(
            "meta_messaging_exporter_target_last_success_timestamp_seconds",
            &[("target_id", "KEPT")]
        ) >= Some(kept_since)
    );
    // ... the removed one's series went at once ...
    assert!(scrape
        .series("meta_page_messages_sent", &[("page_id", "REMOVED")])
        .is_empty());
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_target_up",
            &[("target_id", "REMOVED")]
        ),
        None
    );
    assert_eq!(
        scrape.value("meta_messaging_exporter_config_last_reload_successful", &[]),
        Some(1.0)
    );
    // ... and the new one starts.
    exporter
        .wait_for("ADDED polled", |s| {
            !s.series("meta_page_messages_sent", &[("page_id", "ADDED")])
                .is_empty()
        })
        .await;
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_invalid_config_is_rejected_and_the_old_one_keeps_running() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("PAGE1", TOKEN);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.yaml");
    let good = format!(
        "{}pages:\n  - id: PAGE1\n    interval: 1s\n    metrics: [page_messages_sent]\n",
        preamble(&fake)
    );
    write(&path, &good);
    let exporter = TestExporter::start_from_file(&path).await;
    exporter
        .wait_for("PAGE1", |s| {
            !s.series("meta_page_messages_sent", &[]).is_empty()
        })
        .await;
    let polls = fake.request_count("PAGE1");

    write(&path, &format!("{good}    interval_typo: 5m\n"));
    let (status, body) = exporter.post("/-/reload").await;
    assert_eq!(status, 500);
    assert!(
        body.contains("failed to reload config") && body.contains("interval_typo"),
        "{body}"
    );
    let scrape = exporter
        .wait_for("PAGE1 still polled", |_| {
            fake.request_count("PAGE1") >= polls + 2
        })
        .await;
    assert_eq!(
        scrape.value("meta_messaging_exporter_config_last_reload_successful", &[]),
        Some(0.0)
    );
    assert!(!scrape
        .series("meta_page_messages_sent", &[("page_id", "PAGE1")])
        .is_empty());
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_reload_endpoint_is_forbidden_unless_the_lifecycle_api_is_enabled() {
    let fake = FakeGraphApi::start().await.expect("fake");
    let exporter = TestExporter::start(&preamble(&fake)).await;
    let (status, body) = exporter.post("/-/reload").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(exporter.get("/-/reload").await.0, 405);
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_target_disabled_by_a_revoked_token_resumes_when_the_token_file_is_rotated() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("PAGE1", "new-token");
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    write(&token_file, "old-token\n");
    let path = dir.path().join("config.yaml");
    write(
        &path,
        &format!(
            "graph_api:\n  base_url: {}\npages:\n  - id: PAGE1\n    access_token_file: token\n    interval: 1s\n    metrics: [page_messages_sent]\n",
            fake.base_url()
        ),
    );
    let exporter = TestExporter::start_from_file(&path).await;
    exporter
        .wait_for("PAGE1 disabled", |s| {
            s.value(
                "meta_messaging_exporter_target_disabled",
                &[("target_id", "PAGE1"), ("reason", "invalid_token")],
            ) == Some(1.0)
        })
        .await;
    // Kubernetes rotates the secret: the file changes on disk, nothing else does.
    write(&token_file, "new-token\n");
    let scrape = exporter
        .wait_for("PAGE1 back", |s| {
            s.value(
                "meta_messaging_exporter_target_up",
                &[("target_id", "PAGE1")],
            ) == Some(1.0)
        })
        .await;
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_target_disabled",
            &[("target_id", "PAGE1")]
        ),
        None
    );
    assert!(!scrape
        .series("meta_page_messages_sent", &[("page_id", "PAGE1")])
        .is_empty());
    exporter.stop().await;
}

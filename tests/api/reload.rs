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

/// Replaces `path` with a FIFO, whose readers block until a writer comes, as a hung NFS or
/// secret mount behaves; returns a second name of the FIFO, to unblock them later.
fn replace_with_fifo(path: &Path) -> std::path::PathBuf {
    std::fs::remove_file(path).expect("remove");
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    let other = path.with_extension("fifo");
    std::fs::hard_link(path, &other).expect("link");
    other
}

/// Real time, not the paused clock: tokio never advances paused time while a blocking task
/// runs, and the read stuck on the FIFO is one. Waits are for events; the deadline the
/// exporter gives a read (5 s) is what the test waits out once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_that_blocks_fails_rotation_and_reload_naming_it_and_the_old_token_stays() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("PAGE1", TOKEN);
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    write(&token_file, &format!("{TOKEN}\n"));
    let path = dir.path().join("config.yaml");
    write(
        &path,
        &format!(
            "graph_api:\n  base_url: {}\npolling:\n  startup_spread: 1s\npages:\n  - id: PAGE1\n    access_token_file: token\n    interval: 1s\n    metrics: [page_messages_sent]\n",
            fake.base_url()
        ),
    );
    let exporter = TestExporter::start_from_file(&path).await;
    exporter
        .wait_for("PAGE1 up", |s| {
            s.value(
                "meta_messaging_exporter_target_up",
                &[("target_id", "PAGE1")],
            ) == Some(1.0)
        })
        .await;
    let fifo = replace_with_fifo(&token_file);
    // The rotation check (every 100 ms here) or the reload itself blocks on the FIFO; the
    // reload answers after at most the read's deadline, naming the file, either way.
    let (status, body) = exporter.post("/-/reload").await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains(&token_file.display().to_string())
            && (body.contains("still blocked") || body.contains("did not finish within 5s")),
        "{body}"
    );
    // Polling goes on with the token read before.
    let before = fake.request_count("PAGE1");
    exporter
        .wait_for("PAGE1 polled again", |_| {
            fake.request_count("PAGE1") > before
        })
        .await;

    // The mount recovers: a regular file takes the FIFO's place, and the blocked read ends.
    let fresh = dir.path().join("fresh");
    write(&fresh, &format!("{TOKEN}\n"));
    std::fs::rename(&fresh, &token_file).expect("rename");
    std::fs::write(&fifo, format!("{TOKEN}\n")).expect("unblock the reader");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, body) = exporter.post("/-/reload").await;
        if status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    exporter.stop().await;
}

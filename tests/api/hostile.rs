//! Hostile answers cost the attacker, not the user: a token Meta echoes into a name never
//! reaches `/metrics` or a backfill file, 200,000 breakdown keys are cut at the series limit,
//! and a bad or future latest row never changes the value served. Against the fake, with the
//! defaults on, on tokio's paused clock (the backfill part runs the real binary).

use std::sync::Arc;

use meta_messaging_exporter::clock::FixedClock;
use meta_messaging_exporter::simulator::FakeGraphApi;
use serde_json::json;

use crate::helpers::{preamble, TestExporter, TOKEN};

const BINARY: &str = env!("CARGO_BIN_EXE_meta-messaging-exporter");

#[tokio::test(start_paused = true)]
async fn a_token_echoed_into_a_page_template_and_phone_name_is_redacted_from_metrics_and_the_page()
{
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("P1", TOKEN);
    fake.set_name("P1", &format!("Shop {TOKEN}"));
    fake.simulate_waba("W1", TOKEN);
    fake.fixed_edge(
        "W1",
        "message_templates",
        json!({"data": [{"id": "T1", "name": format!("promo_{TOKEN}"), "language": "en",
            "category": "MARKETING", "status": "APPROVED"}]}),
    );
    fake.fixed_edge(
        "W1",
        "phone_numbers",
        json!({"data": [{"id": "PN1", "display_phone_number": "+1 555-0100",
            "verified_name": format!("Support {TOKEN}"), "quality_rating": "GREEN",
            "whatsapp_business_manager_messaging_limit": "TIER_1K",
            "health_status": {"can_send_message": "LIMITED", "entities": [
                {"entity_type": "PHONE_NUMBER", "id": "PN1", "can_send_message": "LIMITED",
                 "additional_info": [format!("Ask {TOKEN} to approve the display name.")]}]}}]}),
    );
    let yaml = format!(
        "{}pages:\n  - id: P1\n    interval: 1m\n    metrics: [page_messages_sent]\nwhatsapp_business_accounts:\n  - id: W1\n    interval: 1m\n    templates: {{}}\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("every name", |s| {
            !s.series("meta_page_info", &[]).is_empty()
                && !s.series("meta_whatsapp_template_info", &[]).is_empty()
                && !s.series("meta_whatsapp_phone_number_info", &[]).is_empty()
        })
        .await;
    assert!(!scrape.text.contains(TOKEN), "{}", scrape.text);
    assert!(scrape
        .value("meta_page_info", &[("name", "Shop [redacted]")])
        .is_some());
    assert!(scrape
        .value(
            "meta_whatsapp_template_info",
            &[("template_name", "promo_[redacted]")]
        )
        .is_some());
    assert!(scrape
        .value(
            "meta_whatsapp_phone_number_info",
            &[("verified_name", "Support [redacted]")]
        )
        .is_some());
    let (_, page) = exporter.get("/").await;
    assert!(!page.contains(TOKEN), "{page}");
    // The name and Meta's words are on the page, redacted.
    assert!(page.contains("Shop [redacted]"), "{page}");
    assert!(
        page.contains("health: PHONE_NUMBER PN1 is LIMITED: Ask [redacted] to approve"),
        "{page}"
    );
    exporter.stop().await;
}

#[tokio::test]
async fn a_token_echoed_into_a_page_name_is_redacted_from_a_backfill_file() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("100000000000021", TOKEN);
    fake.set_name("100000000000021", &format!("Shop {TOKEN}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "graph_api:\n  base_url: {}\n  access_token: {TOKEN}\npages:\n  - id: \"100000000000021\"\n    metrics: [page_messages_sent]\n",
            fake.base_url()
        ),
    )
    .expect("write config");
    let output = dir.path().join("history.om");
    let args = vec![
        "backfill".to_owned(),
        format!("--config.file={}", config.display()),
        "--since=2026-11-30".to_owned(),
        "--until=2026-12-01".to_owned(),
        "--step=1h".to_owned(),
        format!("--output={}", output.display()),
    ];
    let ran = tokio::task::spawn_blocking(move || {
        std::process::Command::new(BINARY)
            .args(&args)
            .env_remove("META_EXPORTER_DEMO")
            .output()
            .expect("run the binary")
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(ran.status.success(), "{stderr}");
    let file = std::fs::read_to_string(&output).expect("the history file");
    assert!(!file.contains(TOKEN) && !stderr.contains(TOKEN));
    assert!(file.contains("name=\"Shop [redacted]\""), "{file}");
}

#[tokio::test(start_paused = true)]
async fn a_metric_of_200000_keys_exports_its_limit_and_the_target_says_so() {
    let fake = FakeGraphApi::start().await.expect("fake");
    let keys: serde_json::Map<String, serde_json::Value> = (0..200_000)
        .map(|n| (format!("k{n:06}"), json!(1)))
        .collect();
    fake.fixed_response(
        "P1",
        TOKEN,
        json!({"data": [{"name": "page_fans_country", "period": "day", "values": [
            {"value": keys, "end_time": "2024-01-02T08:00:00+0000"}]}], "name": "Wide"}),
    );
    let yaml = format!(
        "{}pages:\n  - id: P1\n    interval: 1m\n    metrics: [page_fans_country]\n",
        preamble(&fake).replace("polling:\n", "polling:\n  max_series_per_metric: 1000\n")
    );
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("the wide metric", |s| {
            !s.series("meta_page_fans_country", &[]).is_empty()
        })
        .await;
    assert_eq!(scrape.series("meta_page_fans_country", &[]).len(), 1000);
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_value_errors_total",
            &[("kind", "page"), ("reason", "series_limit")]
        ),
        Some(1.0)
    );
    assert_eq!(
        scrape.value("meta_messaging_exporter_target_up", &[("target_id", "P1")]),
        Some(1.0)
    );
    let (_, page) = exporter.get("/").await;
    assert!(
        page.contains("series limit: meta_page_fans_country has 200000 series; 1000 exported"),
        "{page}"
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_invalid_or_future_latest_row_never_changes_the_value_served() {
    // 2024-01-03 10:00 UTC.
    let now = 1_704_276_000;
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.fixed_response(
        "P1",
        TOKEN,
        json!({"data": [
            {"name": "page_messages_sent", "period": "day", "values": [
                {"value": 7, "end_time": "2024-01-01T08:00:00+0000"},
                {"value": -12, "end_time": "2024-01-03T08:00:00+0000"}]},
            {"name": "page_messages_new_conversations_unique", "period": "day", "values": [
                {"value": 5, "end_time": "2024-01-03T08:00:00+0000"},
                {"value": 999, "end_time": "9999-12-31T08:00:00+0000"}]}
        ], "name": "Shop"}),
    );
    let yaml = format!(
        "{}pages:\n  - id: P1\n    interval: 1m\n    metrics: [page_messages_sent, page_messages_new_conversations_unique]\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start_with_clock(&yaml, Arc::new(FixedClock::new(now))).await;
    let scrape = exporter.wait_until_up("P1").await;
    // The latest sent row is invalid: no value, not the 7 of two days before.
    assert!(
        scrape.series("meta_page_messages_sent", &[]).is_empty(),
        "{}",
        scrape.text
    );
    // The row ending in 9999 is skipped; the real latest row is served.
    assert_eq!(
        scrape.value("meta_page_messages_new_conversations_unique", &[]),
        Some(5.0)
    );
    for reason in ["negative", "future_end_time"] {
        assert_eq!(
            scrape.value(
                "meta_messaging_exporter_value_errors_total",
                &[("kind", "page"), ("reason", reason)]
            ),
            Some(1.0),
            "{reason}"
        );
    }
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn control_bytes_in_metas_message_reach_the_status_page_as_visible_escapes() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("P1", TOKEN);
    fake.fail_always(
        "P1",
        meta_messaging_exporter::simulator::Fault::Graph {
            status: 400,
            code: 100,
            subcode: Some(33),
            message: "Unsupported\u{0} get\u{1f} request\u{8}\u{1b}[2J".to_owned(),
            is_transient: false,
        },
    );
    let yaml = format!(
        "{}pages:\n  - id: P1\n    interval: 1m\n    metrics: [page_messages_sent]\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    exporter
        .wait_for("P1 disabled", |s| {
            s.value("meta_messaging_exporter_target_up", &[("target_id", "P1")]) == Some(0.0)
        })
        .await;
    let (_, page) = exporter.get("/").await;
    assert!(
        !page.contains(['\u{0}', '\u{1f}', '\u{8}', '\u{1b}']),
        "{page}"
    );
    assert!(
        page.contains("Unsupported\\u{0} get\\u{1f} request\\u{8}\\u{1b}[2J"),
        "{page}"
    );
    exporter.stop().await;
}

//! The exposition format is exact and safe whatever the API sends, and the HTTP routes answer.

use meta_messaging_exporter::simulator::FakeGraphApi;
use serde_json::json;

use crate::helpers::{preamble, TestExporter, TOKEN};

/// The lines of one family in a scrape, HELP and TYPE included.
fn family_text(text: &str, name: &str) -> String {
    text.lines()
        .filter(|line| {
            line.strip_prefix("# HELP ")
                .or_else(|| line.strip_prefix("# TYPE "))
                .unwrap_or(line)
                .split([' ', '{'])
                .next()
                == Some(name)
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn label_values_with_quotes_backslashes_newlines_and_unicode_are_escaped_exactly() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.fixed_response(
        "PAGE1",
        TOKEN,
        json!({"data": [{"name": "page_messages_sent", "period": "day", "values": [
            {"value": 1, "end_time": "1704268800", "campaign_id": "say \"hi\"\nnow"},
            {"value": 2, "end_time": "1704268800", "campaign_id": "back\\slash ünïcødé 😀"}
        ]}]}),
    );
    let yaml = format!(
        "{}pages:\n  - id: PAGE1\n    interval: 1s\n    metrics:\n      - name: page_messages_sent\n        breakdowns: [campaign_id]\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("both rows", |s| {
            s.series("meta_page_messages_sent", &[]).len() == 2
        })
        .await;
    assert_eq!(
        scrape.value(
            "meta_page_messages_sent",
            &[("campaign_id", "say \"hi\"\nnow")]
        ),
        Some(1.0)
    );
    assert_eq!(
        scrape.value(
            "meta_page_messages_sent",
            &[("campaign_id", "back\\slash ünïcødé 😀")]
        ),
        Some(2.0)
    );
    assert_eq!(
        family_text(&scrape.text, "meta_page_messages_sent"),
        concat!(
            "# HELP meta_page_messages_sent Marketing messages the Page sent to customers (count). Graph API Page insights metric page_messages_sent, value with the latest end_time for the period in the period label; from a background poll, not fetched at scrape time.\n",
            "# TYPE meta_page_messages_sent gauge\n",
            "meta_page_messages_sent{page_id=\"PAGE1\",period=\"day\",campaign_id=\"back\\\\slash ünïcødé 😀\"} 2\n",
            "meta_page_messages_sent{page_id=\"PAGE1\",period=\"day\",campaign_id=\"say \\\"hi\\\"\\nnow\"} 1\n",
        )
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_scrape_of_every_kind_parses_and_carries_the_exporters_own_metrics() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("PAGE1", TOKEN);
    fake.simulate_campaign("CAMPAIGN1", TOKEN);
    fake.simulate_waba("WABA1", TOKEN);
    let yaml = format!(
        "{}pages:\n  - id: PAGE1\n    interval: 1s\n    metrics:\n      - page_messages_new_conversations_unique\n      - name: recurring_notifications_tokens\n        period: total_over_range\n        breakdowns: [recurring_notifications_topic, recurring_notifications_frequency]\ncampaigns:\n  - id: CAMPAIGN1\n    interval: 1s\nwhatsapp_business_accounts:\n  - id: WABA1\n    interval: 1s\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("all three kinds", |s| {
            s.value("meta_page_messages_new_conversations_unique", &[])
                .is_some()
                && s.value("meta_marketing_messages_spend", &[]).is_some()
                && s.value("meta_whatsapp_analytics_sent", &[]).is_some()
        })
        .await;
    assert!(
        scrape
            .series("meta_recurring_notifications_tokens", &[])
            .len()
            > 1
    );
    assert_eq!(
        scrape.value("meta_messaging_exporter_build_info", &[]),
        Some(1.0)
    );
    assert_eq!(
        scrape.value("meta_messaging_exporter_targets", &[("kind", "page")]),
        Some(1.0)
    );
    assert!(
        scrape.value(
            "meta_messaging_exporter_api_requests_total",
            &[("endpoint", "whatsapp_analytics"), ("outcome", "success")]
        ) >= Some(1.0)
    );
    assert!(
        scrape.value(
            "meta_messaging_exporter_poll_duration_seconds_count",
            &[("kind", "campaign")]
        ) >= Some(1.0)
    );
    assert!(scrape.value("process_resident_memory_bytes", &[]).is_some());
    for target in ["PAGE1", "CAMPAIGN1", "WABA1"] {
        assert_eq!(
            scrape.value(
                "meta_messaging_exporter_target_up",
                &[("target_id", target)]
            ),
            Some(1.0)
        );
        assert!(
            scrape.value(
                "meta_messaging_exporter_target_last_success_timestamp_seconds",
                &[("target_id", target)]
            ) > Some(1.7e9)
        );
    }
    // No sample carries a timestamp: data age is a separate gauge.
    for line in scrape.text.lines().filter(|l| !l.starts_with('#')) {
        assert_eq!(
            line.rsplit('}')
                .next()
                .unwrap_or(line)
                .split_whitespace()
                .count(),
            if line.contains('}') { 1 } else { 2 },
            "{line}"
        );
    }
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_landing_page_health_and_readiness_answer() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("PAGE1", TOKEN);
    let yaml = format!(
        "{}pages:\n  - id: PAGE1\n    interval: 1h\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    let (status, body) = exporter.get("/").await;
    assert_eq!(status, 200);
    assert!(body.contains("<a href=\"./metrics\">Metrics</a>"), "{body}");
    assert!(
        body.contains("<strong>1 target:</strong> <a class=\"badge failing\" href=\"?state=failing\">0 failing</a><a class=\"badge disabled\" href=\"?state=disabled\">0 disabled</a><a class=\"badge partial\" href=\"?state=partial\">0 partial</a><a class=\"badge pending\" href=\"?state=pending\">1 pending</a><a class=\"badge ok\" href=\"?state=ok\">0 ok</a>"),
        "{body}"
    );
    assert!(
        body.contains("<tr class=\"row-pending\"><td>page</td><td class=\"id\">PAGE1</td><td><span class=\"badge pending\">pending</span></td><td>1 h</td>"),
        "{body}"
    );
    assert_eq!(
        exporter.get("/-/healthy").await,
        (200, "Healthy\n".to_owned())
    );
    assert_eq!(exporter.get("/-/ready").await, (200, "Ready\n".to_owned()));
    assert_eq!(exporter.get("/nope").await.0, 404);
    // A filter the page does not know is a 400 that names it.
    let (status, body) = exporter.get("/?state=broken").await;
    assert_eq!(status, 400);
    assert!(
        body.contains("state=\"broken\" is not a target state"),
        "{body}"
    );
    let (status, body) = exporter.get("/?kind=page&q=PAGE").await;
    assert_eq!(status, 200);
    assert!(body.contains("1 target match the filter"), "{body}");
    exporter.stop().await;
}

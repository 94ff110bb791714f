//! WhatsApp buckets: the value is the last complete bucket; omitted buckets are zero and the
//! partial bucket that contains now is never the value.

use std::sync::Arc;

use meta_messaging_exporter::clock::FixedClock;
use meta_messaging_exporter::simulator::FakeGraphApi;
use serde_json::json;

use crate::helpers::{preamble, TestExporter, TOKEN};

const HALF_HOUR: i64 = 1800;
/// 2024-01-02 08:00:00 UTC plus ten minutes: inside the half hour starting 08:00.
const NOW: i64 = 1_704_182_400 + 600;

fn exporter_yaml(fake: &FakeGraphApi) -> String {
    format!(
        "{}whatsapp_business_accounts:\n  - id: WABA1\n    interval: 1s\n    granularity: HALF_HOUR\n",
        preamble(fake)
    )
}

#[tokio::test]
async fn an_omitted_last_bucket_is_zero_not_the_last_value_seen() {
    let fake = FakeGraphApi::start().await.expect("fake");
    let current = NOW - 600;
    // Traffic two buckets ago and in the partial current bucket; the last complete one is omitted.
    fake.fixed_response(
        "WABA1",
        TOKEN,
        json!({"analytics": {"granularity": "HALF_HOUR", "data_points": [
            {"start": current - 2 * HALF_HOUR, "end": current - HALF_HOUR, "sent": 7, "delivered": 6},
            {"start": current, "end": current + HALF_HOUR, "sent": 99, "delivered": 98}
        ]}, "id": "WABA1"}),
    );
    let exporter =
        TestExporter::start_with_clock(&exporter_yaml(&fake), Arc::new(FixedClock::new(NOW))).await;
    let scrape = exporter
        .wait_for("whatsapp values", |s| {
            s.value("meta_whatsapp_analytics_sent", &[]).is_some()
        })
        .await;
    assert_eq!(
        scrape.value("meta_whatsapp_analytics_sent", &[("waba_id", "WABA1")]),
        Some(0.0)
    );
    assert_eq!(
        scrape.value("meta_whatsapp_analytics_delivered", &[("waba_id", "WABA1")]),
        Some(0.0)
    );
    assert_eq!(
        scrape.value("meta_whatsapp_analytics_bucket_end_timestamp_seconds", &[]),
        Some(current as f64)
    );
    exporter.stop().await;
}

#[tokio::test]
async fn the_partial_current_bucket_is_not_the_value() {
    let fake = FakeGraphApi::start().await.expect("fake");
    let current = NOW - 600;
    fake.fixed_response(
        "WABA1",
        TOKEN,
        json!({"analytics": {"granularity": "HALF_HOUR", "data_points": [
            {"start": current - HALF_HOUR, "end": current, "sent": 12, "delivered": 11},
            {"start": current, "end": current + HALF_HOUR, "sent": 3, "delivered": 1}
        ]}, "id": "WABA1"}),
    );
    let exporter =
        TestExporter::start_with_clock(&exporter_yaml(&fake), Arc::new(FixedClock::new(NOW))).await;
    let scrape = exporter
        .wait_for("whatsapp values", |s| {
            s.value("meta_whatsapp_analytics_sent", &[]).is_some()
        })
        .await;
    assert_eq!(
        scrape.value(
            "meta_whatsapp_analytics_sent",
            &[("granularity", "HALF_HOUR")]
        ),
        Some(12.0)
    );
    assert_eq!(
        scrape.value("meta_whatsapp_analytics_delivered", &[]),
        Some(11.0)
    );
    exporter.stop().await;
}

#[tokio::test]
async fn phone_numbers_and_countries_each_get_their_own_series() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("WABA1", TOKEN);
    let yaml = format!(
        "{}whatsapp_business_accounts:\n  - id: WABA1\n    interval: 1s\n    phone_numbers: [\"15550001\", \"15550002\"]\n    country_codes: [US]\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("two phone series", |s| {
            s.series("meta_whatsapp_analytics_sent", &[]).len() == 2
        })
        .await;
    for phone in ["15550001", "15550002"] {
        let labels = [
            ("waba_id", "WABA1"),
            ("phone_number", phone),
            ("country_code", "US"),
        ];
        let sent = scrape
            .value("meta_whatsapp_analytics_sent", &labels)
            .expect("sent");
        let delivered = scrape
            .value("meta_whatsapp_analytics_delivered", &labels)
            .expect("delivered");
        assert!(
            delivered <= sent,
            "{phone}: delivered {delivered} > sent {sent}"
        );
    }
    let queries: Vec<String> = fake.requests().iter().map(|r| r.query.clone()).collect();
    assert!(
        queries.iter().any(|q| q.contains("15550001"))
            && queries.iter().any(|q| q.contains("15550002")),
        "{queries:?}"
    );
    exporter.stop().await;
}

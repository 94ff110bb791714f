//! Every sample response in Meta's reference documents gives the documented numbers.
//!
//! The bodies are the seeds' examples verbatim, except for the trailing commas the documents
//! show (`},\n ]`), which no JSON parser (nor the live API) accepts.

use std::sync::Arc;

use meta_messaging_exporter::clock::FixedClock;
use meta_messaging_exporter::simulator::{FakeGraphApi, RecordedRequest};
use serde_json::json;

use crate::helpers::{preamble, TestExporter, TOKEN};

#[tokio::test(start_paused = true)]
async fn the_two_metric_page_example_gives_42_new_and_0_blocked_conversations() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.fixed_response(
        "PAGE1",
        TOKEN,
        json!({"data": [
            {"name": "page_messages_new_conversations_unique", "period": "day",
             "values": [{"value": "42", "end_time": "1665175977"}]},
            {"name": "page_messages_blocked_conversations_unique", "period": "day",
             "values": [{"value": "0", "end_time": "1665175977"}]}
        ]}),
    );
    let yaml = format!(
        "{}pages:\n  - id: PAGE1\n    interval: 1s\n    metrics: [page_messages_new_conversations_unique, page_messages_blocked_conversations_unique]\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("page values", |s| {
            s.value("meta_page_messages_new_conversations_unique", &[])
                .is_some()
        })
        .await;
    let labels = [("page_id", "PAGE1"), ("period", "day")];
    assert_eq!(
        scrape.value("meta_page_messages_new_conversations_unique", &labels),
        Some(42.0)
    );
    assert_eq!(
        scrape.value("meta_page_messages_blocked_conversations_unique", &labels),
        Some(0.0)
    );
    // Both metrics share period and breakdowns, so they went out in one request.
    let request = &first_insights_request(&fake);
    assert!(
        request.query.contains(
            "page_messages_new_conversations_unique%2Cpage_messages_blocked_conversations_unique"
        ) || request.query.contains(
            "page_messages_new_conversations_unique,page_messages_blocked_conversations_unique"
        ),
        "{}",
        request.query
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_total_over_range_example_gives_27_new_conversations() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.fixed_response(
        "PAGE1",
        TOKEN,
        json!({"data": [{"name": "page_messages_new_conversations_unique", "period": "total_over_range",
                         "values": [{"value": 27, "end_time": "1665175977"}]}]}),
    );
    let yaml = format!(
        "{}pages:\n  - id: PAGE1\n    interval: 1s\n    metrics:\n      - name: page_messages_new_conversations_unique\n        period: total_over_range\n        window: 7d\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("total over range", |s| {
            s.value("meta_page_messages_new_conversations_unique", &[])
                .is_some()
        })
        .await;
    assert_eq!(
        scrape.value(
            "meta_page_messages_new_conversations_unique",
            &[("page_id", "PAGE1"), ("period", "total_over_range")]
        ),
        Some(27.0)
    );
    let query = &first_insights_request(&fake).query;
    assert!(
        query.contains("period=total_over_range")
            && query.contains("since=")
            && query.contains("until="),
        "{query}"
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_breakdown_example_gives_one_series_per_topic_and_frequency() {
    let fake = FakeGraphApi::start().await.expect("fake");
    let row = |value: i64, topic: &str, frequency: &str| {
        json!({"value": value, "end_time": "1665175977",
               "recurring_notifications_topic": topic, "recurring_notifications_frequency": frequency})
    };
    fake.fixed_response(
        "PAGE1",
        TOKEN,
        json!({"data": [{"name": "recurring_notifications_tokens", "period": "total_over_range", "values": [
            row(3, "newproducts", "daily"),
            row(15, "newproducts", "weekly"),
            row(8, "newproducts", "monthly"),
            row(17, "10percentsale", "daily"),
            row(14, "10percentsale", "weekly")
        ]}]}),
    );
    let yaml = format!(
        "{}pages:\n  - id: PAGE1\n    interval: 1s\n    metrics:\n      - name: recurring_notifications_tokens\n        period: total_over_range\n        breakdowns: [recurring_notifications_topic, recurring_notifications_frequency]\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("breakdown rows", |s| {
            !s.series("meta_recurring_notifications_tokens", &[])
                .is_empty()
        })
        .await;
    assert_eq!(
        scrape
            .series("meta_recurring_notifications_tokens", &[])
            .len(),
        5
    );
    for (topic, frequency, expected) in [
        ("newproducts", "daily", 3.0),
        ("newproducts", "weekly", 15.0),
        ("newproducts", "monthly", 8.0),
        ("10percentsale", "daily", 17.0),
        ("10percentsale", "weekly", 14.0),
    ] {
        let labels = [
            ("page_id", "PAGE1"),
            ("period", "total_over_range"),
            ("recurring_notifications_topic", topic),
            ("recurring_notifications_frequency", frequency),
        ];
        assert_eq!(
            scrape.value("meta_recurring_notifications_tokens", &labels),
            Some(expected),
            "{topic} {frequency}"
        );
    }
    let query = &first_insights_request(&fake).query;
    assert!(
        query.contains("breakdown=recurring_notifications_topic"),
        "{query}"
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_campaign_example_gives_every_documented_number() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.fixed_response("CAMPAIGN1", TOKEN, seed_campaign_body());
    let yaml = format!(
        "{}campaigns:\n  - id: CAMPAIGN1\n    interval: 1s\n    fields: [marketing_messages_delivered, marketing_messages_link_btn_click, marketing_messages_spend, marketing_messages_read_rate, marketing_messages_link_btn_click_rate, marketing_messages_cost_per_link_btn_click, marketing_messages_delivery_rate, marketing_messages_cost_per_delivered]\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("campaign values", |s| {
            s.value("meta_marketing_messages_spend", &[]).is_some()
        })
        .await;
    let labels = [("campaign_id", "CAMPAIGN1"), ("date_preset", "last_30d")];
    for (field, expected) in [
        ("delivered", 2755.0),
        ("link_btn_click", 268.0),
        ("spend", 38.87),
        ("read_rate", 79.419238),
        ("link_btn_click_rate", 9.727768),
        ("cost_per_link_btn_click", 0.145037),
        ("delivery_rate", 0.0),
        ("cost_per_delivered", 0.014109),
    ] {
        let name = format!("meta_marketing_messages_{field}");
        assert_eq!(scrape.value(&name, &labels), Some(expected), "{name}");
    }
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_whatsapp_example_gives_the_last_complete_day() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.fixed_response("WABA1", TOKEN, seed_whatsapp_body());
    // Three hours into 2022-04-20 Pacific: the last complete day is 04-19, the seed's last point.
    let clock = Arc::new(FixedClock::new(1_650_438_000 + 3 * 3600));
    let yaml = format!(
        "{}whatsapp_business_accounts:\n  - id: WABA1\n    interval: 1s\n    granularity: DAY\n    phone_numbers_health: false\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start_with_clock(&yaml, clock).await;
    let scrape = exporter
        .wait_for("whatsapp values", |s| {
            s.value("meta_whatsapp_analytics_sent", &[]).is_some()
        })
        .await;
    let labels = [("waba_id", "WABA1"), ("granularity", "DAY")];
    assert_eq!(
        scrape.value("meta_whatsapp_analytics_sent", &labels),
        Some(1.0)
    );
    assert_eq!(
        scrape.value("meta_whatsapp_analytics_delivered", &labels),
        Some(1.0)
    );
    assert_eq!(
        scrape.value(
            "meta_whatsapp_analytics_bucket_end_timestamp_seconds",
            &labels
        ),
        Some(1_650_438_000.0)
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_whatsapp_example_gives_four_for_the_busiest_documented_day() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.fixed_response("WABA1", TOKEN, seed_whatsapp_body());
    // Just after 2022-04-01 07:00 UTC: the last complete day is 03-31, with 4 sent.
    let clock = Arc::new(FixedClock::new(1_648_796_400 + 60));
    let yaml = format!(
        "{}whatsapp_business_accounts:\n  - id: WABA1\n    interval: 1s\n    phone_numbers_health: false\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start_with_clock(&yaml, clock).await;
    let scrape = exporter
        .wait_for("whatsapp values", |s| {
            s.value("meta_whatsapp_analytics_sent", &[]).is_some()
        })
        .await;
    assert_eq!(
        scrape.value("meta_whatsapp_analytics_sent", &[("waba_id", "WABA1")]),
        Some(4.0)
    );
    assert_eq!(
        scrape.value("meta_whatsapp_analytics_delivered", &[("waba_id", "WABA1")]),
        Some(4.0)
    );
    exporter.stop().await;
}

/// Seed 002's example answer, verbatim: a campaign's or an ad account's insights.
pub fn seed_campaign_body() -> serde_json::Value {
    json!({
        "data": [{
            "marketing_messages_delivered": "2755",
            "marketing_messages_link_btn_click": "268",
            "marketing_messages_spend": "38.87",
            "marketing_messages_read_rate": "79.419238",
            "marketing_messages_link_btn_click_rate": "9.727768",
            "marketing_messages_cost_per_link_btn_click": "0.145037",
            "marketing_messages_delivery_rate": "0",
            "marketing_messages_cost_per_delivered": "0.014109",
            "date_start": "2024-05-01",
            "date_stop": "2025-07-29"
        }],
        "paging": {"cursors": {"before": "MAZDZD", "after": "MAZDZD"}}
    })
}

/// The response of the WhatsApp analytics reference (004), verbatim.
pub fn seed_whatsapp_body() -> serde_json::Value {
    json!({
        "analytics": {
            "phone_numbers": ["PHONE-NUMBER"],
            "granularity": "DAY",
            "data_points": [
                {"start": 1647327600, "end": 1647414000, "sent": 1, "delivered": 1},
                {"start": 1648710000, "end": 1648796400, "sent": 4, "delivered": 4},
                {"start": 1648796400, "end": 1648882800, "sent": 1, "delivered": 1},
                {"start": 1650265200, "end": 1650351600, "sent": 1, "delivered": 1},
                {"start": 1650351600, "end": 1650438000, "sent": 1, "delivered": 1}
            ]
        },
        "id": "WHATSAPP-BUSINESS-ACCOUNT-ID"
    })
}

/// The first insights request the fake received, alone or inside a batch call.
fn first_insights_request(fake: &FakeGraphApi) -> RecordedRequest {
    fake.requests()
        .into_iter()
        .find(|request| request.path.ends_with("/insights"))
        .expect("an insights request")
}

//! Every value and time format Meta sends is read, and the latest end_time wins.

use meta_messaging_exporter::simulator::FakeGraphApi;
use serde_json::json;

use crate::helpers::{preamble, TestExporter, TOKEN};

#[tokio::test(start_paused = true)]
async fn numbers_strings_decimals_and_objects_with_unix_and_iso_times_are_all_read() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.fixed_response(
        "PAGE1",
        TOKEN,
        json!({"data": [
            // Numeric string, unix-seconds string; the older row comes second.
            {"name": "page_messages_new_conversations_unique", "period": "day", "values": [
                {"value": "42", "end_time": "1704268800"},
                {"value": "40", "end_time": "1704182400"}
            ]},
            // JSON number, ISO 8601 times; the newer row comes second.
            {"name": "page_messages_sent", "period": "day", "values": [
                {"value": 10, "end_time": "2024-01-02T08:00:00+0000"},
                {"value": 12, "end_time": "2024-01-03T08:00:00+0000"}
            ]},
            // Decimal number and decimal string, unix number vs ISO: the ISO one is newer.
            {"name": "page_messages_read_ratio", "period": "day", "values": [
                {"value": 0.4213, "end_time": 1704182400},
                {"value": "0.5", "end_time": "2024-01-03T08:00:00Z"}
            ]},
            {"name": "page_messages_paid_order_earnings", "period": "day", "values": [
                {"value": "1234.56", "end_time": "2024-01-03T08:00:00+0000"}
            ]},
            // An object value: its keys become the `key` label.
            {"name": "page_messages_order_count", "period": "day", "values": [
                {"value": {"US": 10, "FR": "3"}, "end_time": "2024-01-03T08:00:00+0000"}
            ]}
        ]}),
    );
    let yaml = format!(
        "{}pages:\n  - id: PAGE1\n    interval: 1s\n    metrics: [page_messages_new_conversations_unique, page_messages_sent, page_messages_read_ratio, page_messages_paid_order_earnings, page_messages_order_count]\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("page values", |s| {
            s.value("meta_page_messages_sent", &[]).is_some()
        })
        .await;
    let page = [("page_id", "PAGE1"), ("period", "day")];
    assert_eq!(
        scrape.value("meta_page_messages_new_conversations_unique", &page),
        Some(42.0)
    );
    assert_eq!(scrape.value("meta_page_messages_sent", &page), Some(12.0));
    assert_eq!(
        scrape.value("meta_page_messages_read_ratio", &page),
        Some(0.5)
    );
    assert_eq!(
        scrape.value("meta_page_messages_paid_order_earnings", &page),
        Some(1234.56)
    );
    assert_eq!(
        scrape.value("meta_page_messages_order_count_value", &[("key", "US")]),
        Some(10.0)
    );
    assert_eq!(
        scrape.value("meta_page_messages_order_count_value", &[("key", "FR")]),
        Some(3.0)
    );
    // HELP says where the number comes from and that it is not fetched at scrape time.
    assert!(scrape.text.contains("# HELP meta_page_messages_read_ratio Marketing messages read divided by marketing messages sent"));
    assert!(scrape.text.contains("from a background poll"));
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn unusable_values_are_counted_and_the_rest_of_the_response_is_kept() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.fixed_response(
        "PAGE1",
        TOKEN,
        json!({"data": [
            {"name": "page_messages_sent", "period": "day", "values": [{"value": "NaN", "end_time": "1704268800"}]},
            {"name": "page_messages_engagement", "period": "day", "values": [{"value": "", "end_time": "1704268800"}]},
            {"name": "page_messages_order_count", "period": "day", "values": [{"value": null, "end_time": "1704268800"}]},
            {"name": "page_messages_blocked_conversations_unique", "period": "day", "values": [{"value": -2, "end_time": "1704268800"}]},
            {"name": "recurring_notifications_tokens", "period": "day", "values": [{"value": -3, "end_time": "1704268800"}]},
            {"name": "page_messages_new_conversations_unique", "period": "day", "values": [{"value": 5, "end_time": "1704268800"}]}
        ]}),
    );
    let yaml = format!(
        "{}pages:\n  - id: PAGE1\n    interval: 1s\n    metrics: [page_messages_sent, page_messages_engagement, page_messages_order_count, page_messages_blocked_conversations_unique, recurring_notifications_tokens, page_messages_new_conversations_unique]\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("the good value", |s| {
            s.value("meta_page_messages_new_conversations_unique", &[])
                .is_some()
        })
        .await;
    assert_eq!(
        scrape.value("meta_page_messages_new_conversations_unique", &[]),
        Some(5.0)
    );
    // A negative count is unusable; the net token count (opt-ins minus opt-outs) may be negative.
    assert_eq!(
        scrape.value("meta_page_messages_blocked_conversations_unique", &[]),
        None
    );
    assert_eq!(
        scrape.value("meta_recurring_notifications_tokens", &[]),
        Some(-3.0)
    );
    assert_eq!(scrape.value("meta_page_messages_sent", &[]), None);
    let errors = |reason: &str| {
        scrape.value(
            "meta_messaging_exporter_value_errors_total",
            &[("kind", "page"), ("reason", reason)],
        )
    };
    assert!(errors("not_finite") >= Some(1.0));
    assert!(errors("empty_string") >= Some(1.0));
    assert!(errors("null") >= Some(1.0));
    assert!(errors("negative") >= Some(1.0));
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_target_up",
            &[("target_id", "PAGE1")]
        ),
        Some(1.0)
    );
    exporter.stop().await;
}

//! Failures are contained: a retired metric, a revoked token, a flaky API or a throttle
//! affect only the target concerned, and what the exporter does is visible in `/metrics`.

use meta_messaging_exporter::simulator::{FakeGraphApi, Fault};
use serde_json::json;

use crate::helpers::{preamble, Scrape, TestExporter, TOKEN};

#[tokio::test(start_paused = true)]
async fn a_retired_metric_is_dropped_and_the_rest_of_the_page_still_exports() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("PAGE1", TOKEN);
    fake.retire_metric("PAGE1", "page_messages_order_count");
    let yaml = format!(
        "{}pages:\n  - id: PAGE1\n    interval: 1s\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("page values", |s| {
            s.value("meta_page_messages_new_conversations_unique", &[])
                .is_some()
        })
        .await;
    assert_eq!(
        scrape.value("meta_page_messages_order_count_value", &[]),
        None
    );
    for metric in [
        "page_messages_blocked_conversations_unique",
        "page_messages_reported_conversations_unique",
        "page_messages_total_messaging_connections",
        "page_messages_sent",
        "recurring_notifications_tokens",
    ] {
        assert!(
            !scrape
                .series(&format!("meta_{metric}"), &[("page_id", "PAGE1")])
                .is_empty(),
            "{metric}"
        );
    }
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_target_dropped_item",
            &[
                ("target_id", "PAGE1"),
                ("item", "page_messages_order_count")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_target_up",
            &[("target_id", "PAGE1")]
        ),
        Some(1.0)
    );
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_dropped_items_total",
            &[("kind", "page")]
        ),
        Some(1.0)
    );

    // The dropped metric is not asked for again on later polls.
    let before = fake.request_count("PAGE1");
    exporter
        .wait_for("another poll", |_| fake.request_count("PAGE1") > before)
        .await;
    let last = fake
        .requests()
        .into_iter()
        .rfind(|r| r.object_id.as_deref() == Some("PAGE1"))
        .expect("request");
    assert!(
        !last.query.contains("page_messages_order_count"),
        "{}",
        last.query
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_target_failing_with_190_is_disabled_beside_a_healthy_one() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("HEALTHY", TOKEN);
    fake.simulate_page("REVOKED", TOKEN);
    fake.fail_always("REVOKED", Fault::invalid_token());
    let yaml = format!(
        "{}pages:\n  - id: HEALTHY\n    interval: 1s\n  - id: REVOKED\n    interval: 1s\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("both targets polled", |s| {
            s.value(
                "meta_messaging_exporter_target_up",
                &[("target_id", "REVOKED")],
            )
            .is_some()
                && s.value(
                    "meta_messaging_exporter_target_up",
                    &[("target_id", "HEALTHY")],
                )
                .is_some()
        })
        .await;
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_target_up",
            &[("target_id", "HEALTHY")]
        ),
        Some(1.0)
    );
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_target_up",
            &[("target_id", "REVOKED")]
        ),
        Some(0.0)
    );
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_target_disabled",
            &[("target_id", "REVOKED"), ("reason", "invalid_token")]
        ),
        Some(1.0)
    );
    assert!(!scrape
        .series("meta_page_messages_sent", &[("page_id", "HEALTHY")])
        .is_empty());
    assert!(scrape
        .series("meta_page_messages_sent", &[("page_id", "REVOKED")])
        .is_empty());
    assert!(
        scrape.value(
            "meta_messaging_exporter_api_errors_total",
            &[("endpoint", "page_insights"), ("code", "190")]
        ) >= Some(1.0)
    );

    // A disabled target stops calling the API while the healthy one keeps polling.
    let revoked_calls = fake.request_count("REVOKED");
    let healthy_calls = fake.request_count("HEALTHY");
    exporter
        .wait_for("two more healthy polls", |_| {
            fake.request_count("HEALTHY") >= healthy_calls + 2
        })
        .await;
    assert_eq!(fake.request_count("REVOKED"), revoked_calls);

    let (_, landing) = exporter.get("/").await;
    assert!(landing.contains("disabled: invalid_token"), "{landing}");
    assert!(landing.contains("code 190"), "{landing}");
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_breakdown_value_the_api_stops_reporting_disappears() {
    let fake = FakeGraphApi::start().await.expect("fake");
    let body = |topics: &[&str]| {
        let rows: Vec<_> = topics
            .iter()
            .map(|topic| json!({"value": 5, "end_time": "1704268800", "recurring_notifications_topic": topic}))
            .collect();
        json!({"data": [{"name": "recurring_notifications_tokens", "period": "day", "values": rows}]})
    };
    fake.fixed_response("PAGE1", TOKEN, body(&["newproducts", "10percentsale"]));
    let yaml = format!(
        "{}pages:\n  - id: PAGE1\n    interval: 1s\n    metrics:\n      - name: recurring_notifications_tokens\n        breakdowns: [recurring_notifications_topic]\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    exporter
        .wait_for("two topics", |s| {
            s.series("meta_recurring_notifications_tokens", &[]).len() == 2
        })
        .await;
    fake.fixed_response("PAGE1", TOKEN, body(&["newproducts"]));
    let scrape = exporter
        .wait_for("one topic", |s| {
            s.series("meta_recurring_notifications_tokens", &[]).len() == 1
        })
        .await;
    assert_eq!(
        scrape.value(
            "meta_recurring_notifications_tokens",
            &[("recurring_notifications_topic", "newproducts")]
        ),
        Some(5.0)
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_within_the_same_poll() {
    let fake = FakeGraphApi::start().await.expect("fake");
    // The first attempt gets a Graph 500, the second a proxy's HTML 502; the third succeeds.
    fake.simulate_campaign("CAMPAIGN2", TOKEN);
    let yaml = format!(
        "{}campaigns:\n  - id: CAMPAIGN2\n    interval: 2s\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    exporter
        .wait_for("campaign values", |s| {
            s.value("meta_marketing_messages_spend", &[]).is_some()
        })
        .await;
    // Faults for the next poll, once the first one has also read the campaign's name (a
    // read that comes again only in an hour and would otherwise take one of them).
    fake.fail_next("CAMPAIGN2", 1, Fault::transient());
    fake.fail_next("CAMPAIGN2", 1, Fault::bad_gateway_html());
    let polled = |s: &Scrape| {
        s.value(
            "meta_messaging_exporter_polls_total",
            &[("kind", "campaign"), ("result", "success")],
        )
    };
    let before = polled(&exporter.scrape().await);
    let scrape = exporter
        .wait_for("the next poll", |s| {
            polled(s) > before
                && s.value(
                    "meta_messaging_exporter_api_retries_total",
                    &[("endpoint", "campaign_insights")],
                ) == Some(2.0)
        })
        .await;
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_target_up",
            &[("target_id", "CAMPAIGN2")]
        ),
        Some(1.0)
    );
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_polls_total",
            &[("kind", "campaign"), ("result", "transient")]
        ),
        None,
        "the poll itself must not have failed"
    );
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_api_retries_total",
            &[("endpoint", "campaign_insights")]
        ),
        Some(2.0)
    );
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_api_requests_total",
            &[("endpoint", "campaign_insights"), ("outcome", "http_error")]
        ),
        Some(1.0)
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_target_keeps_its_last_values_until_they_go_stale() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("PAGE1", TOKEN);
    fake.simulate_page("PAGE2", TOKEN);
    let yaml = format!(
        "{}pages:\n  - id: PAGE1\n    interval: 1s\n    stale_after: 4s\n    metrics: [page_messages_sent]\n  - id: PAGE2\n    interval: 1s\n    metrics: [page_messages_sent]\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    exporter
        .wait_for("both pages", |s| {
            s.series("meta_page_messages_sent", &[]).len() == 2
        })
        .await;
    fake.fail_always("PAGE1", Fault::transient());
    let failing = exporter
        .wait_for("PAGE1 failing", |s| {
            s.value(
                "meta_messaging_exporter_target_up",
                &[("target_id", "PAGE1")],
            ) == Some(0.0)
        })
        .await;
    // Failing, but within stale_after: the last values are still served.
    assert!(!failing
        .series("meta_page_messages_sent", &[("page_id", "PAGE1")])
        .is_empty());
    assert!(failing
        .value(
            "meta_messaging_exporter_target_last_success_timestamp_seconds",
            &[("target_id", "PAGE1")]
        )
        .is_some());
    let stale = exporter
        .wait_for("PAGE1 values gone", |s| {
            s.series("meta_page_messages_sent", &[("page_id", "PAGE1")])
                .is_empty()
        })
        .await;
    // The healthy Page is untouched, and the failing one stays visible as down.
    assert!(!stale
        .series("meta_page_messages_sent", &[("page_id", "PAGE2")])
        .is_empty());
    assert_eq!(
        stale.value(
            "meta_messaging_exporter_target_up",
            &[("target_id", "PAGE1")]
        ),
        Some(0.0)
    );
    assert_eq!(
        stale.value(
            "meta_messaging_exporter_target_up",
            &[("target_id", "PAGE2")]
        ),
        Some(1.0)
    );

    // Recovery brings the values back.
    fake.clear_faults("PAGE1");
    exporter
        .wait_for("PAGE1 back", |s| {
            !s.series("meta_page_messages_sent", &[("page_id", "PAGE1")])
                .is_empty()
        })
        .await;
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_throttled_target_is_not_retried_at_once_even_when_marked_transient() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("PAGE1", TOKEN);
    fake.fail_always(
        "PAGE1",
        Fault::Graph {
            status: 400,
            code: 32,
            subcode: None,
            message: "(#32) Page request limit reached".into(),
            is_transient: true,
        },
    );
    let yaml = format!(
        "{}pages:\n  - id: PAGE1\n    interval: 1s\n    metrics: [page_messages_sent]\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    exporter
        .wait_for("the throttle", |s| {
            s.value(
                "meta_messaging_exporter_polls_total",
                &[("kind", "page"), ("result", "throttled")],
            )
            .is_some()
        })
        .await;
    // One request, no retry: the throttle pauses the target's scope, so its next poll is
    // pushed past its interval (the limiter's own tests, on paused time, pin down how far).
    // (The Page's name read went in the same batch call and got the same throttle.)
    assert_eq!(insights_requests(&fake, "PAGE1"), 1);
    let scrape = exporter.scrape().await;
    assert!(
        scrape
            .value(
                "meta_messaging_exporter_target_backoff_seconds",
                &[("target_id", "PAGE1")]
            )
            .is_some_and(|backoff| backoff > 0.0),
        "{}",
        scrape.text
    );
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_api_retries_total",
            &[("endpoint", "page_insights")]
        ),
        None
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_missing_permission_disables_only_that_target() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("WABA1", TOKEN);
    fake.simulate_campaign("CAMPAIGN1", TOKEN);
    fake.fail_always("WABA1", Fault::permission_denied());
    let yaml = format!(
        "{}campaigns:\n  - id: CAMPAIGN1\n    interval: 1s\nwhatsapp_business_accounts:\n  - id: WABA1\n    interval: 1s\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("both polled", |s| {
            s.value(
                "meta_messaging_exporter_target_up",
                &[("target_id", "WABA1")],
            )
            .is_some()
                && s.value("meta_marketing_messages_spend", &[]).is_some()
        })
        .await;
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_target_disabled",
            &[("target_id", "WABA1"), ("reason", "permission_denied")]
        ),
        Some(1.0)
    );
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_target_up",
            &[("target_id", "CAMPAIGN1")]
        ),
        Some(1.0)
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_object_that_does_not_exist_is_disabled_after_one_request_without_dropping_fields() {
    let fake = FakeGraphApi::start().await.expect("fake");
    // Nothing registered as MISSING: the fake answers 100/33 like Graph does for an unknown id.
    let yaml = format!(
        "{}campaigns:\n  - id: MISSING\n    interval: 1s\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("MISSING disabled", |s| {
            s.value(
                "meta_messaging_exporter_target_disabled",
                &[("target_id", "MISSING"), ("reason", "object_unavailable")],
            ) == Some(1.0)
        })
        .await;
    assert_eq!(
        insights_requests(&fake, "MISSING"),
        1,
        "no bisection over fields for a missing object"
    );
    assert!(scrape
        .series("meta_messaging_exporter_target_dropped_item", &[])
        .is_empty());
    exporter.stop().await;
}

/// The insights requests for object `id` the fake received, alone or inside batch calls.
fn insights_requests(fake: &FakeGraphApi, id: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|request| {
            request.object_id.as_deref() == Some(id) && request.path.ends_with("/insights")
        })
        .count()
}

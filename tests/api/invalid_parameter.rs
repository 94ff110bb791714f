//! Code 100 ("invalid parameter") precisely: a metric is dropped only when Meta's message names
//! it or it fails alone while the rest of its request works; an error about the request fails
//! the target's poll (retried, never disabled, nothing dropped); a dropped metric is asked for
//! again after `polling.retry_dropped_after`.

use std::sync::Arc;

use meta_messaging_exporter::clock::FixedClock;
use meta_messaging_exporter::simulator::{FakeGraphApi, Fault};

use crate::helpers::{preamble, Scrape, TestExporter, TOKEN};

const SENT: &str = "page_messages_sent";
const ORDERS: &str = "page_messages_order_count";
const NEW: &str = "page_messages_new_conversations_unique";

/// A Page polled every second for three metrics that share one request, with `extra` added
/// under `polling:` and `metric_extra` under each metric.
fn page_yaml(fake: &FakeGraphApi, extra: &str, metric_extra: &str) -> String {
    let metrics: String = [SENT, ORDERS, NEW]
        .iter()
        .map(|name| format!("      - name: {name}\n{metric_extra}"))
        .collect();
    format!(
        "{}{extra}pages:\n  - id: PAGE1\n    interval: 1s\n    metrics:\n{metrics}",
        preamble(fake)
    )
}

/// The query strings of the requests the fake received for PAGE1, oldest first.
fn page_queries(fake: &FakeGraphApi) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|request| request.path.ends_with("/PAGE1/insights"))
        .map(|request| request.query)
        .collect()
}

/// Whether a (percent-encoded) query asks for `metric`: metric lists are comma-separated,
/// and a comma is `%2C` once encoded.
fn asks_for(query: &str, metric: &str) -> bool {
    query
        .split(['&', '='])
        .flat_map(|part| part.split("%2C"))
        .any(|word| word == metric)
}

fn polls(scrape: &Scrape, result: &str) -> f64 {
    scrape
        .value(
            "meta_messaging_exporter_polls_total",
            &[("kind", "page"), ("result", result)],
        )
        .unwrap_or(0.0)
}

/// PAGE1 polls successfully, with the orders metric dropped and shown as dropped.
fn assert_up_with_orders_dropped(scrape: &Scrape) {
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_target_dropped_item",
            &[("target_id", "PAGE1"), ("item", ORDERS)]
        ),
        Some(1.0),
        "{}",
        scrape.text
    );
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_target_up",
            &[("target_id", "PAGE1")]
        ),
        Some(1.0),
        "{}",
        scrape.text
    );
}

/// The target is failing, not disabled, and nothing is dropped.
fn assert_failing_with_nothing_dropped(scrape: &Scrape) {
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_target_up",
            &[("target_id", "PAGE1")]
        ),
        Some(0.0),
        "{}",
        scrape.text
    );
    assert!(
        scrape
            .series("meta_messaging_exporter_target_dropped_item", &[])
            .is_empty(),
        "{}",
        scrape.text
    );
    assert!(
        scrape
            .series("meta_messaging_exporter_target_disabled", &[])
            .is_empty(),
        "{}",
        scrape.text
    );
}

#[tokio::test(start_paused = true)]
async fn a_metric_the_error_names_is_dropped_without_splitting_and_the_others_are_served() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("PAGE1", TOKEN);
    fake.retire_metric_named("PAGE1", ORDERS);
    let exporter = TestExporter::start(&page_yaml(&fake, "", "")).await;
    let scrape = exporter
        .wait_for("the other metrics", |s| {
            s.value("meta_page_messages_sent", &[("page_id", "PAGE1")])
                .is_some()
        })
        .await;
    assert!(scrape
        .value(
            "meta_page_messages_new_conversations_unique",
            &[("page_id", "PAGE1")]
        )
        .is_some());
    assert_up_with_orders_dropped(&scrape);
    // The message named the metric, so the request was not split: the first asked for all
    // three, every later one for the two others together.
    let queries = page_queries(&fake);
    assert!(asks_for(&queries[0], ORDERS), "{queries:?}");
    for query in &queries[1..] {
        assert!(
            !asks_for(query, ORDERS) && asks_for(query, SENT) && asks_for(query, NEW),
            "{queries:?}"
        );
    }
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_code_100_naming_a_parameter_fails_the_target_without_dropping_and_is_retried() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("PAGE1", TOKEN);
    fake.fail_always("PAGE1", Fault::invalid_parameter("since"));
    // A window, so that the requests really carry `since`.
    let exporter = TestExporter::start(&page_yaml(&fake, "", "        window: 7d\n")).await;
    let scrape = exporter
        .wait_for("two failed polls", |s| polls(s, "invalid_parameter") >= 2.0)
        .await;
    assert_failing_with_nothing_dropped(&scrape);
    assert_eq!(polls(&scrape, "no_valid_metrics"), 0.0);
    // Never split: every request asked for all three metrics.
    let queries = page_queries(&fake);
    assert!(queries.len() >= 2);
    for query in &queries {
        assert!(
            asks_for(query, SENT) && asks_for(query, ORDERS) && asks_for(query, NEW),
            "{queries:?}"
        );
    }
    let (_, landing) = exporter.get("/").await;
    assert!(
        landing.contains("The parameter since is invalid"),
        "{landing}"
    );
    assert!(landing.contains("code 100"), "{landing}");

    // The next poll after the error goes away succeeds with every metric.
    fake.clear_faults("PAGE1");
    let scrape = exporter
        .wait_for("PAGE1 up", |s| {
            s.value(
                "meta_messaging_exporter_target_up",
                &[("target_id", "PAGE1")],
            ) == Some(1.0)
        })
        .await;
    assert!(scrape
        .value(
            "meta_page_messages_order_count_value",
            &[("page_id", "PAGE1")]
        )
        .is_some());
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_code_100_that_persists_with_one_metric_fails_the_target_and_drops_nothing() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("PAGE1", TOKEN);
    fake.fail_always("PAGE1", Fault::invalid_request());
    let yaml = format!(
        "{}pages:\n  - id: PAGE1\n    interval: 1s\n    metrics: [{SENT}]\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("two failed polls", |s| polls(s, "invalid_parameter") >= 2.0)
        .await;
    assert_failing_with_nothing_dropped(&scrape);
    exporter.stop().await;
}

/// The bug of issue 7: a code 100 about the request, whatever metrics it asks for, used to
/// split the request down to single metrics, drop all of them and disable the target.
#[tokio::test(start_paused = true)]
async fn a_code_100_for_any_metric_set_drops_nothing_and_the_target_recovers() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("PAGE1", TOKEN);
    fake.fail_always("PAGE1", Fault::invalid_request());
    let exporter = TestExporter::start(&page_yaml(&fake, "", "")).await;
    let scrape = exporter
        .wait_for("two failed polls", |s| polls(s, "invalid_parameter") >= 2.0)
        .await;
    assert_failing_with_nothing_dropped(&scrape);
    fake.clear_faults("PAGE1");
    let scrape = exporter
        .wait_for("every metric back", |s| {
            s.value(
                "meta_page_messages_order_count_value",
                &[("page_id", "PAGE1")],
            )
            .is_some()
        })
        .await;
    assert!(scrape
        .value("meta_page_messages_sent", &[("page_id", "PAGE1")])
        .is_some());
    assert!(scrape
        .series("meta_messaging_exporter_target_dropped_item", &[])
        .is_empty());
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_dropped_metric_is_asked_for_again_after_retry_dropped_after() {
    const T0: i64 = 1_767_225_600; // 2026-01-01 00:00 UTC
    const HOUR: i64 = 3600;
    let fake = FakeGraphApi::start().await.expect("fake");
    // The fake's rows end at its own now, which keeps to the exporter's clock: a row ending
    // months after the exporter's now would be skipped as being from the future.
    fake.set_now(Some(T0));
    fake.simulate_page("PAGE1", TOKEN);
    fake.retire_metric_named("PAGE1", ORDERS);
    let clock = Arc::new(FixedClock::new(T0));
    let yaml = page_yaml(&fake, "  retry_dropped_after: 1h\n", "");
    let exporter = TestExporter::start_with_clock(&yaml, clock.clone()).await;
    exporter
        .wait_for("the metric dropped", |s| {
            s.value(
                "meta_messaging_exporter_target_dropped_item",
                &[("target_id", "PAGE1"), ("item", ORDERS)],
            )
            .is_some()
        })
        .await;
    // Within the hour, polls leave it out.
    let dropped_after = page_queries(&fake).len();
    exporter
        .wait_for("two more polls", |_| {
            page_queries(&fake).len() >= dropped_after + 2
        })
        .await;
    assert!(page_queries(&fake)[dropped_after..]
        .iter()
        .all(|query| !asks_for(query, ORDERS)));

    // An hour later it is asked for again; still rejected, it is dropped for another hour.
    clock.set(T0 + HOUR);
    fake.set_now(Some(T0 + HOUR));
    exporter
        .wait_for("the metric asked for again", |_| {
            page_queries(&fake)[dropped_after..]
                .iter()
                .any(|query| asks_for(query, ORDERS))
        })
        .await;
    let retried_at = page_queries(&fake).len();
    exporter
        .wait_for("two more polls", |_| {
            page_queries(&fake).len() >= retried_at + 3
        })
        .await;
    let queries = page_queries(&fake);
    // The retry poll's second request leaves it out again, and so does every poll after it.
    assert!(
        queries[retried_at..]
            .iter()
            .all(|query| !asks_for(query, ORDERS)),
        "{queries:?}"
    );
    let scrape = exporter.scrape().await;
    assert_up_with_orders_dropped(&scrape);

    // Served again, and the hour since the second drop over: it is back.
    fake.restore("PAGE1", ORDERS);
    clock.set(T0 + 2 * HOUR);
    fake.set_now(Some(T0 + 2 * HOUR));
    let scrape = exporter
        .wait_for("the metric back", |s| {
            s.value(
                "meta_page_messages_order_count_value",
                &[("page_id", "PAGE1")],
            )
            .is_some()
        })
        .await;
    assert!(scrape
        .series("meta_messaging_exporter_target_dropped_item", &[])
        .is_empty());
    exporter.stop().await;
}

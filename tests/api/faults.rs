//! One test per fault class: a faulty Page beside a healthy one. Each asserts on `/metrics`
//! that the healthy Page is unaffected, the faulty one is marked down with the failure
//! counted by kind, its last values stay until `stale_after` and then go, and the exporter
//! keeps serving throughout.

use std::time::Duration;

use meta_messaging_exporter::simulator::{FakeGraphApi, Fault};
use serde_json::json;

use crate::helpers::{TestExporter, TOKEN};

fn yaml(fake: &FakeGraphApi, graph_api_extra: &str) -> String {
    format!(
        "graph_api:\n  base_url: {}\n  access_token: {TOKEN}\n  request_timeout: 500ms\n{graph_api_extra}polling:\n  retry_initial_backoff: 10ms\n  retry_max_backoff: 50ms\n  max_retries: 2\npages:\n  - id: HEALTHY\n    interval: 1s\n    stale_after: 6s\n    metrics: [page_messages_sent]\n  - id: FAULTY\n    interval: 1s\n    stale_after: 6s\n    metrics: [page_messages_sent]\n",
        fake.base_url()
    )
}

/// Runs the scenario: both Pages healthy, then `break_it` makes FAULTY fail; checks the
/// outcome counter `outcome` and, when `retried`, that retries happened.
async fn fault_is_contained(
    fake: FakeGraphApi,
    graph_api_extra: &str,
    break_it: impl FnOnce(&FakeGraphApi),
    outcome: &str,
    retried: bool,
) {
    let exporter = TestExporter::start(&yaml(&fake, graph_api_extra)).await;
    exporter
        .wait_for("both Pages", |s| {
            s.series("meta_page_messages_sent", &[]).len() == 2
        })
        .await;
    break_it(&fake);

    let failing = exporter
        .wait_for("FAULTY down", |s| {
            s.value(
                "meta_messaging_exporter_target_up",
                &[("target_id", "FAULTY")],
            ) == Some(0.0)
        })
        .await;
    assert!(
        !failing
            .series("meta_page_messages_sent", &[("page_id", "FAULTY")])
            .is_empty(),
        "the last good values stay until stale_after"
    );
    assert!(
        failing.value(
            "meta_messaging_exporter_api_requests_total",
            &[("endpoint", "page_insights"), ("outcome", outcome)]
        ) >= Some(1.0),
        "outcome {outcome} counted:\n{}",
        failing.text
    );
    let retries = failing.value(
        "meta_messaging_exporter_api_retries_total",
        &[("endpoint", "page_insights")],
    );
    if retried {
        assert!(
            retries >= Some(2.0),
            "transient failures are retried: {retries:?}"
        );
    } else {
        assert_eq!(retries, None, "permanent failures are not retried");
    }

    let stale = exporter
        .wait_for("FAULTY values gone", |s| {
            s.series("meta_page_messages_sent", &[("page_id", "FAULTY")])
                .is_empty()
        })
        .await;
    assert_eq!(
        stale.value(
            "meta_messaging_exporter_target_up",
            &[("target_id", "FAULTY")]
        ),
        Some(0.0)
    );
    assert_eq!(
        stale.value(
            "meta_messaging_exporter_target_up",
            &[("target_id", "HEALTHY")]
        ),
        Some(1.0)
    );
    assert!(!stale
        .series("meta_page_messages_sent", &[("page_id", "HEALTHY")])
        .is_empty());
    let (status, landing) = exporter.get("/").await;
    assert_eq!(status, 200);
    assert!(landing.contains("failing"), "{landing}");
    exporter.stop().await;
}

async fn two_pages() -> FakeGraphApi {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("HEALTHY", TOKEN);
    fake.simulate_page("FAULTY", TOKEN);
    fake
}

#[tokio::test(start_paused = true)]
async fn a_graph_500_is_retried_counted_and_contained() {
    fault_is_contained(
        two_pages().await,
        "",
        |f| f.fail_always("FAULTY", Fault::transient()),
        "api_error",
        true,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_proxys_html_502_page_is_retried_counted_and_contained() {
    fault_is_contained(
        two_pages().await,
        "",
        |f| f.fail_always("FAULTY", Fault::bad_gateway_html()),
        "http_error",
        true,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn invalid_json_is_retried_counted_and_contained() {
    fault_is_contained(
        two_pages().await,
        "",
        |f| f.fail_always("FAULTY", Fault::InvalidJson),
        "decode_error",
        true,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_body_cut_off_mid_transfer_is_retried_counted_and_contained() {
    fault_is_contained(
        two_pages().await,
        "",
        |f| f.fail_always("FAULTY", Fault::TruncatedBody),
        "transport_error",
        true,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_response_slower_than_the_request_timeout_is_retried_counted_and_contained() {
    fault_is_contained(
        two_pages().await,
        "",
        |f| f.fail_always("FAULTY", Fault::Delay(Duration::from_secs(2))),
        "timeout",
        true,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_error_body_sent_with_status_200_is_treated_as_the_error_it_is() {
    let error = Fault::Graph {
        status: 200,
        code: 1,
        subcode: None,
        message: "An unknown error occurred".into(),
        is_transient: true,
    };
    fault_is_contained(
        two_pages().await,
        "",
        |f| f.fail_always("FAULTY", error),
        "api_error",
        true,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_response_over_the_size_cap_is_rejected_not_buffered() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("HEALTHY", TOKEN);
    let small = json!({"data": [{"name": "page_messages_sent", "period": "day", "values": [{"value": 1, "end_time": "1704268800"}]}]});
    fake.fixed_response("FAULTY", TOKEN, small);
    fault_is_contained(
        fake,
        "  max_response_bytes: 2048\n",
        |f| {
            let huge = json!({"data": [{"name": "page_messages_sent", "period": "day", "description": "x".repeat(4096), "values": [{"value": 1, "end_time": "1704268800"}]}]});
            f.fixed_response("FAULTY", TOKEN, huge);
        },
        "too_large",
        false,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_connection_reset_before_any_answer_is_retried_counted_and_survived() {
    // A server that accepts and immediately resets every connection (SO_LINGER 0 + close).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64).flatten() {
            let stream = socket2::Socket::from(stream);
            let _ = stream.set_linger(Some(Duration::ZERO));
            drop(stream);
        }
    });
    let yaml = format!(
        "graph_api:\n  base_url: http://{address}\n  access_token: {TOKEN}\npolling:\n  retry_initial_backoff: 10ms\n  retry_max_backoff: 20ms\n  max_retries: 2\npages:\n  - id: PAGE1\n    interval: 1s\n"
    );
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("the reset counted", |s| {
            s.value(
                "meta_messaging_exporter_target_up",
                &[("target_id", "PAGE1")],
            ) == Some(0.0)
        })
        .await;
    assert!(
        scrape.value(
            "meta_messaging_exporter_api_requests_total",
            &[
                ("endpoint", "page_insights"),
                ("outcome", "transport_error")
            ]
        ) >= Some(3.0),
        "first attempt and two retries:\n{}",
        scrape.text
    );
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_polls_total",
            &[("kind", "page"), ("result", "transient")]
        ),
        Some(1.0)
    );
    // Still polling on schedule, not stuck.
    exporter
        .wait_for("a second failed poll", |s| {
            s.value(
                "meta_messaging_exporter_polls_total",
                &[("kind", "page"), ("result", "transient")],
            ) >= Some(2.0)
        })
        .await;
    exporter.stop().await;
}

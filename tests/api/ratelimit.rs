//! Rate limits: Meta's usage headers become gauges and slow polling down before the limit;
//! a throttle pauses exactly the targets in its scope for as long as Meta says; a call
//! budget is never exceeded. On tokio's paused clock, so pauses and budgets play out in
//! virtual time.

use meta_messaging_exporter::simulator::{AppUsage, FakeGraphApi, Fault};

use crate::helpers::{preamble, TestExporter, TOKEN};

fn throttle(code: i64) -> Fault {
    Fault::Graph {
        status: 400,
        code,
        subcode: None,
        message: format!("(#{code}) Request limit reached"),
        is_transient: false,
    }
}

#[tokio::test(start_paused = true)]
async fn usage_headers_are_exported_by_scope_and_high_usage_stretches_intervals() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("PAGE1", TOKEN);
    fake.simulate_campaign("CAMPAIGN1", TOKEN);
    fake.set_app_usage(Some(AppUsage {
        call_count: 90,
        total_cputime: 20,
        total_time: 30,
    }));
    fake.set_headers(
        "PAGE1",
        &[("x-business-use-case-usage", r#"{"BIZ1":[{"type":"pages","call_count":12,"total_cputime":3,"total_time":4,"estimated_time_to_regain_access":0}]}"#)],
    );
    fake.set_headers(
        "CAMPAIGN1",
        &[
            (
                "x-ad-account-usage",
                r#"{"acc_id_util_pct":9.5,"reset_time_duration":0}"#,
            ),
            (
                "x-fb-ads-insights-throttle",
                r#"{"app_id_util_pct":41,"acc_id_util_pct":7}"#,
            ),
        ],
    );
    let yaml = format!(
        "{}pages:\n  - id: PAGE1\n    interval: 1s\n    metrics: [page_messages_sent]\ncampaigns:\n  - id: CAMPAIGN1\n    interval: 1s\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("usage gauges", |s| {
            s.value(
                "meta_messaging_exporter_rate_limit_usage_percent",
                &[("scope", "ads_insights"), ("metric", "app_id_util_pct")],
            )
            .is_some()
                && !s
                    .series(
                        "meta_messaging_exporter_rate_limit_usage_percent",
                        &[("scope", "business_use_case")],
                    )
                    .is_empty()
                && s.value(
                    "meta_messaging_exporter_target_backoff_seconds",
                    &[("target_id", "PAGE1")],
                )
                .is_some_and(|b| b > 0.0)
        })
        .await;
    let usage = |labels: &[(&str, &str)]| {
        scrape.value("meta_messaging_exporter_rate_limit_usage_percent", labels)
    };
    assert_eq!(
        usage(&[("scope", "app"), ("metric", "call_count")]),
        Some(90.0)
    );
    assert_eq!(
        usage(&[("scope", "app"), ("metric", "total_time")]),
        Some(30.0)
    );
    assert_eq!(
        usage(&[
            ("scope", "business_use_case"),
            ("id", "BIZ1"),
            ("type", "pages"),
            ("metric", "call_count")
        ]),
        Some(12.0)
    );
    assert_eq!(
        usage(&[("scope", "ad_account"), ("metric", "acc_id_util_pct")]),
        Some(9.5)
    );
    assert_eq!(
        usage(&[("scope", "ads_insights"), ("metric", "app_id_util_pct")]),
        Some(41.0)
    );
    // 90 % is halfway from the 80 % threshold to 100 %: the 1 s interval stretches by half
    // of the 3 extra intervals the default 4x maximum allows, 1.5 s.
    let backoff = scrape
        .value(
            "meta_messaging_exporter_target_backoff_seconds",
            &[("target_id", "PAGE1")],
        )
        .expect("backoff");
    assert!((1.4..=1.6).contains(&backoff), "{backoff}");
    // The app label names the token by fingerprint, never by value.
    assert!(!scrape.text.contains(TOKEN));
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_business_throttle_pauses_that_business_for_metas_estimate_and_nothing_else() {
    let fake = FakeGraphApi::start().await.expect("fake");
    // Usage stays low (10 %) until BIZ1 is throttled, so no interval stretches before that.
    let buc = |id: &str, regain: u32| {
        let calls = if regain > 0 { 100 } else { 10 };
        format!(
            r#"{{"{id}":[{{"type":"pages","call_count":{calls},"total_cputime":5,"total_time":5,"estimated_time_to_regain_access":{regain}}}]}}"#
        )
    };
    for page in ["PAGE1", "PAGE2", "PAGE3"] {
        fake.simulate_page(page, TOKEN);
    }
    fake.set_headers("PAGE1", &[("x-business-use-case-usage", &buc("BIZ1", 0))]);
    fake.set_headers("PAGE2", &[("x-business-use-case-usage", &buc("BIZ1", 0))]);
    fake.set_headers("PAGE3", &[("x-business-use-case-usage", &buc("BIZ2", 0))]);
    let yaml = format!(
        "{}pages:\n  - id: PAGE1\n    interval: 1s\n    metrics: [page_messages_sent]\n  - id: PAGE2\n    interval: 1s\n    metrics: [page_messages_sent]\n  - id: PAGE3\n    interval: 1s\n    metrics: [page_messages_sent]\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    exporter
        .wait_for("all three Pages", |s| {
            s.series("meta_page_messages_sent", &[]).len() == 3
        })
        .await;

    // PAGE1 is throttled (code 32) and Meta estimates 2 minutes to regain access for BIZ1.
    fake.set_headers("PAGE1", &[("x-business-use-case-usage", &buc("BIZ1", 2))]);
    fake.fail_always("PAGE1", throttle(32));
    let scrape = exporter
        .wait_for("the throttle", |s| {
            s.value(
                "meta_messaging_exporter_throttle_events_total",
                &[("code", "32")],
            )
            .is_some()
        })
        .await;
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_throttle_events_total",
            &[("code", "32")]
        ),
        Some(1.0)
    );
    let calls = |page: &str| fake.request_count(page);
    let (page1, page2, page3) = (calls("PAGE1"), calls("PAGE2"), calls("PAGE3"));
    let scrape = exporter
        .wait_for("PAGE3 polled three more times", |_| {
            calls("PAGE3") >= page3 + 3
        })
        .await;
    assert_eq!(
        calls("PAGE1"),
        page1,
        "the throttled Page is not called again, not even retried"
    );
    assert!(
        calls("PAGE2") <= page2 + 1,
        "PAGE2 shares BIZ1 and is paused too (at most one request was already on its way)"
    );
    let backoff = |page: &str| {
        scrape
            .value(
                "meta_messaging_exporter_target_backoff_seconds",
                &[("target_id", page)],
            )
            .unwrap_or(0.0)
    };
    assert!(
        backoff("PAGE1") > 100.0,
        "paused for Meta's 2-minute estimate: {}",
        backoff("PAGE1")
    );
    assert!(backoff("PAGE2") > 100.0, "{}", backoff("PAGE2"));
    assert_eq!(backoff("PAGE3"), 0.0);
    // Paused, not broken: the last values stay (until stale) and the state says why.
    assert!(!scrape
        .series("meta_page_messages_sent", &[("page_id", "PAGE2")])
        .is_empty());
    let (_, landing) = exporter.get("/").await;
    assert!(landing.contains("code 32"), "{landing}");
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn retry_after_sets_the_pause_when_meta_gives_no_estimate() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_campaign("CAMPAIGN1", TOKEN);
    fake.simulate_campaign("CAMPAIGN2", TOKEN);
    let yaml = format!(
        "{}campaigns:\n  - id: CAMPAIGN1\n    interval: 1s\n  - id: CAMPAIGN2\n    interval: 1s\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    exporter
        .wait_for("both campaigns", |s| {
            s.series("meta_marketing_messages_spend", &[]).len() == 2
        })
        .await;
    fake.set_headers("CAMPAIGN1", &[("retry-after", "300")]);
    fake.fail_always(
        "CAMPAIGN1",
        Fault::Graph {
            status: 400,
            code: 80000,
            subcode: None,
            message: "(#80000) There have been too many calls from this ad-account.".into(),
            is_transient: true,
        },
    );
    let scrape = exporter
        .wait_for("the pause", |s| {
            s.value(
                "meta_messaging_exporter_target_backoff_seconds",
                &[("target_id", "CAMPAIGN1")],
            )
            .is_some_and(|b| b > 200.0)
        })
        .await;
    let backoff = scrape
        .value(
            "meta_messaging_exporter_target_backoff_seconds",
            &[("target_id", "CAMPAIGN1")],
        )
        .expect("backoff");
    assert!(backoff <= 300.0, "{backoff}");
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_target_backoff_seconds",
            &[("target_id", "CAMPAIGN2")]
        ),
        Some(0.0)
    );
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_api_retries_total",
            &[("endpoint", "campaign_insights")]
        ),
        None
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_app_throttle_pauses_every_target_of_that_token_and_no_other() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_page("PAGE1", TOKEN);
    fake.simulate_waba("WABA1", TOKEN);
    fake.simulate_page("OTHER", "second-token");
    let yaml = format!(
        "{}pages:\n  - id: PAGE1\n    interval: 1s\n    metrics: [page_messages_sent]\n  - id: OTHER\n    access_token: second-token\n    interval: 1s\n    metrics: [page_messages_sent]\nwhatsapp_business_accounts:\n  - id: WABA1\n    interval: 1s\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    exporter
        .wait_for("all polled", |s| {
            s.series("meta_page_messages_sent", &[]).len() == 2
                && s.value("meta_whatsapp_analytics_sent", &[]).is_some()
        })
        .await;
    fake.fail_always("PAGE1", throttle(4));
    exporter
        .wait_for("the app throttle", |s| {
            s.value(
                "meta_messaging_exporter_throttle_events_total",
                &[("code", "4")],
            )
            .is_some()
        })
        .await;
    let (waba, other) = (fake.request_count("WABA1"), fake.request_count("OTHER"));
    let scrape = exporter
        .wait_for("OTHER polled twice more", |_| {
            fake.request_count("OTHER") >= other + 2
        })
        .await;
    assert!(
        fake.request_count("WABA1") <= waba + 1,
        "WABA1 shares the throttled token"
    );
    assert!(
        scrape.value(
            "meta_messaging_exporter_target_backoff_seconds",
            &[("target_id", "WABA1")]
        ) > Some(10.0)
    );
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_target_backoff_seconds",
            &[("target_id", "OTHER")]
        ),
        Some(0.0)
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_hourly_call_budget_of_a_token_is_never_exceeded() {
    let fake = FakeGraphApi::start().await.expect("fake");
    for page in ["PAGE1", "PAGE2"] {
        fake.simulate_page(page, TOKEN);
    }
    let yaml = format!(
        "{}rate_limits:\n  calls_per_hour_per_token: 5\npages:\n  - id: PAGE1\n    interval: 1s\n    metrics: [page_messages_sent]\n  - id: PAGE2\n    interval: 1s\n    metrics: [page_messages_sent]\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("both Pages held back", |s| {
            ["PAGE1", "PAGE2"].iter().all(|page| {
                s.value(
                    "meta_messaging_exporter_target_backoff_seconds",
                    &[("target_id", page)],
                )
                .is_some_and(|b| b > 3000.0)
            })
        })
        .await;
    assert_eq!(fake.api_calls(), 5, "exactly the budget");
    // On the paused clock an hour passes in virtual time: no call slips through before the
    // first call leaves the window, and polling resumes once it has.
    let first_call = tokio::time::Instant::now();
    tokio::time::sleep(std::time::Duration::from_secs(55 * 60)).await;
    assert_eq!(fake.api_calls(), 5, "no more while the hour lasts");
    tokio::time::sleep_until(first_call + std::time::Duration::from_secs(3600)).await;
    exporter
        .wait_for("polling to resume after the hour", |_| fake.api_calls() > 5)
        .await;
    assert!(!scrape.series("meta_page_messages_sent", &[]).is_empty());
    exporter.stop().await;
}

//! WhatsApp depth: what messages cost (`pricing_analytics`, `conversation_analytics`), how
//! templates perform, and phone-number health, against the fake, with Meta's own example
//! numbers (graph-api.md 5.1 and 5.3) where Meta gives them. Everything runs on tokio's paused
//! clock and a fixed wall clock.

use std::sync::Arc;
use std::time::Duration;

use meta_messaging_exporter::clock::FixedClock;
use meta_messaging_exporter::convert::whatsapp::meta_examples;
use meta_messaging_exporter::simulator::{health_blocked, FakeGraphApi, Fault, TemplateAnalytics};
use serde_json::json;

use crate::helpers::{preamble, Scrape, TestExporter, TOKEN};

/// 2025-06-02 10:00 PDT: the last complete Pacific day is 2025-06-01, Meta's example bucket.
const JUNE_2_2025: i64 = 1_748_847_600 + 10 * 3600;
/// 2024-06-12 01:00 UTC: the last complete UTC day is Meta's template example day.
const JUNE_12_2024: i64 = 1_718_150_400 + 3600;

async fn start(fake: &FakeGraphApi, now: i64, waba: &str) -> TestExporter {
    fake.set_now(Some(now));
    let yaml = format!("{}whatsapp_business_accounts:\n{waba}", preamble(fake));
    let exporter = TestExporter::start_with_clock(&yaml, Arc::new(FixedClock::new(now))).await;
    // Past the start-up spread (30s), so every account has polled once.
    tokio::time::sleep(Duration::from_secs(31)).await;
    exporter
}

/// Waits for the first poll of `waba` and checks it succeeded: what the account lacks is a
/// state, never a failed poll.
async fn polled_and_up(exporter: &TestExporter, waba: &str) -> Scrape {
    let up = |s: &Scrape| s.value("meta_messaging_exporter_target_up", &[("target_id", waba)]);
    let scrape = exporter.wait_for("a poll", |s| up(s).is_some()).await;
    assert_eq!(up(&scrape), Some(1.0), "{}", scrape.text);
    scrape
}

const PRICING_EXAMPLE_WABA: &str = "  - id: W1\n    interval: 15m\n    pricing:\n      dimensions: [PRICING_CATEGORY, PRICING_TYPE, TIER, COUNTRY]\n      country_codes: [US, IN]\n    phone_numbers_health: false\n";

#[tokio::test(start_paused = true)]
async fn metas_pricing_example_gives_its_volumes_and_costs_for_the_last_complete_day() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("W1", TOKEN);
    fake.fixed_field(
        "W1",
        "pricing_analytics",
        meta_examples::pricing_analytics(),
    );
    let exporter = start(&fake, JUNE_2_2025, PRICING_EXAMPLE_WABA).await;
    let scrape = exporter
        .wait_for("pricing", |s| {
            s.value("meta_whatsapp_pricing_bucket_end_timestamp_seconds", &[])
                .is_some()
        })
        .await;
    fn point<'a>(category: &'a str, kind: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("waba_id", "W1"),
            ("granularity", "DAILY"),
            ("country", "US"),
            ("pricing_category", category),
            ("pricing_type", kind),
        ]
    }
    for (category, kind, volume, cost) in [
        ("MARKETING", "REGULAR", 4.0, 40.0),
        ("MARKETING_LITE", "REGULAR", 1.0, 10.0),
        ("UTILITY", "REGULAR", 1.0, 10.0),
        ("AUTHENTICATION", "REGULAR", 1.0, 10.0),
        ("UTILITY", "FREE_CUSTOMER_SERVICE", 1.0, 0.0),
        ("SERVICE", "FREE_CUSTOMER_SERVICE", 2.0, 0.0),
    ] {
        let labels = point(category, kind);
        assert_eq!(
            scrape.value("meta_whatsapp_pricing_volume", &labels),
            Some(volume),
            "{category} {kind}"
        );
        assert_eq!(
            scrape.value("meta_whatsapp_pricing_cost", &labels),
            Some(cost),
            "{category} {kind}"
        );
    }
    // Tiers only on billable points; the cost carries the account's currency.
    assert_eq!(
        scrape.value(
            "meta_whatsapp_pricing_volume",
            &[("pricing_category", "MARKETING"), ("tier", "0:MAX")]
        ),
        Some(4.0)
    );
    let free = &scrape.series(
        "meta_whatsapp_pricing_volume",
        &point("SERVICE", "FREE_CUSTOMER_SERVICE"),
    )[0]
    .0;
    assert!(!free.contains_key("tier"), "{free:?}");
    let cost = &scrape.series("meta_whatsapp_pricing_cost", &point("MARKETING", "REGULAR"))[0].0;
    assert_eq!(cost.get("currency").map(String::as_str), Some("USD"));
    // India had traffic on June 5 only: on June 1 it is 0, not absent and not 2.
    let india = [
        ("country", "IN"),
        ("pricing_category", "AUTHENTICATION_INTERNATIONAL"),
    ];
    assert_eq!(
        scrape.value("meta_whatsapp_pricing_volume", &india),
        Some(0.0)
    );
    assert_eq!(
        scrape.value("meta_whatsapp_pricing_cost", &india),
        Some(0.0)
    );
    assert_eq!(
        scrape.value(
            "meta_whatsapp_pricing_bucket_end_timestamp_seconds",
            &[("waba_id", "W1")]
        ),
        Some(1_748_847_600.0)
    );
    assert_eq!(
        scrape.value(
            "meta_whatsapp_business_account_info",
            &[("waba_id", "W1"), ("currency", "USD")]
        ),
        Some(1.0)
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_partial_day_is_not_the_value() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("W1", TOKEN);
    // June 2 is under way at 10:00: its 9 messages so far are not the value.
    fake.fixed_field(
        "W1",
        "pricing_analytics",
        json!({"data": [{"data_points": [
            {"start": 1_748_761_200, "end": 1_748_847_600, "country": "US", "volume": 3, "cost": 0.3},
            {"start": 1_748_847_600, "end": 1_748_934_000, "country": "US", "volume": 9, "cost": 0.9}
        ]}]}),
    );
    let waba =
        "  - id: W1\n    pricing:\n      dimensions: [COUNTRY]\n    phone_numbers_health: false\n";
    let exporter = start(&fake, JUNE_2_2025, waba).await;
    let scrape = exporter
        .wait_for("pricing", |s| {
            s.value("meta_whatsapp_pricing_volume", &[]).is_some()
        })
        .await;
    assert_eq!(
        scrape.value("meta_whatsapp_pricing_volume", &[("country", "US")]),
        Some(3.0)
    );
    assert_eq!(
        scrape.value("meta_whatsapp_pricing_cost", &[("country", "US")]),
        Some(0.3)
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_partner_billed_account_exports_volume_without_cost_as_a_state_not_a_failure() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("W1", TOKEN);
    fake.set_partner_billed("W1", true);
    let waba = "  - id: W1\n    conversations: {}\n    templates: {}\n";
    let exporter = start(&fake, JUNE_2_2025, waba).await;
    let scrape = polled_and_up(&exporter, "W1").await;
    assert!(!scrape
        .series("meta_whatsapp_pricing_volume", &[("waba_id", "W1")])
        .is_empty());
    assert!(scrape.series("meta_whatsapp_pricing_cost", &[]).is_empty());
    assert!(scrape
        .series("meta_whatsapp_conversation_cost", &[])
        .is_empty());
    assert!(!scrape
        .series("meta_whatsapp_conversations", &[("waba_id", "W1")])
        .is_empty());
    assert!(!scrape
        .series("meta_whatsapp_template_sent", &[("waba_id", "W1")])
        .is_empty());
    assert!(scrape.series("meta_whatsapp_template_cost", &[]).is_empty());
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_whatsapp_feature_unavailable",
            &[
                ("waba_id", "W1"),
                ("feature", "cost"),
                ("reason", "partner_billed")
            ]
        ),
        Some(1.0)
    );
    // Once known, cost is no longer asked for: no further request names COST.
    let before = fake.requests().len();
    tokio::time::sleep(Duration::from_secs(16 * 60)).await;
    let later: Vec<_> = fake.requests().into_iter().skip(before).collect();
    assert!(!later.is_empty());
    assert!(
        later.iter().all(|request| !request.query.contains("COST")),
        "{later:?}"
    );
    exporter.stop().await;
}

/// 2026-10-02 10:00 PDT: the last complete Pacific day is 2026-10-01, the first on which Meta
/// charges service messages.
const OCTOBER_2_2026: i64 = 1_790_838_000 + 24 * 3600 + 10 * 3600;

#[tokio::test(start_paused = true)]
async fn service_messages_are_exported_with_the_cost_meta_reports_after_2026_10_01() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("W1", TOKEN);
    fake.set_service_billed("W1", true);
    let waba = "  - id: W1
    phone_numbers_health: false
";
    let exporter = start(&fake, OCTOBER_2_2026, waba).await;
    let scrape = polled_and_up(&exporter, "W1").await;
    let service = |name: &str| {
        scrape.series(
            name,
            &[
                ("waba_id", "W1"),
                ("pricing_category", "SERVICE"),
                ("pricing_type", "REGULAR"),
            ],
        )
    };
    let volume: f64 = service("meta_whatsapp_pricing_volume")
        .iter()
        .map(|(_, v)| v)
        .sum();
    let cost: f64 = service("meta_whatsapp_pricing_cost")
        .iter()
        .map(|(_, v)| v)
        .sum();
    assert!(volume > 0.0 && cost > 0.0, "{}", scrape.text);
    // A type's name says nothing about its price: no HELP text says so either.
    for help in scrape
        .text
        .lines()
        .filter(|line| line.starts_with("# HELP meta_whatsapp_"))
    {
        assert!(!help.to_lowercase().contains("free"), "{help}");
    }
    assert!(scrape
        .text
        .contains("# HELP meta_whatsapp_pricing_cost Cost of the WhatsApp messages"));
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn metas_template_example_gives_its_counts_clicks_and_cost() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("W1", TOKEN);
    fake.fixed_edge(
        "W1",
        "template_analytics",
        meta_examples::template_analytics(),
    );
    let waba = "  - id: W1\n    templates:\n      ids: [\"1421988012088524\", \"2632273056924580\"]\n    phone_numbers_health: false\n";
    let exporter = start(&fake, JUNE_12_2024, waba).await;
    let scrape = exporter
        .wait_for("templates", |s| {
            s.value("meta_whatsapp_template_bucket_end_timestamp_seconds", &[])
                .is_some()
        })
        .await;
    for id in ["1421988012088524", "2632273056924580"] {
        for family in [
            "meta_whatsapp_template_sent",
            "meta_whatsapp_template_delivered",
            "meta_whatsapp_template_read",
        ] {
            assert_eq!(
                scrape.value(family, &[("waba_id", "W1"), ("template_id", id)]),
                Some(1.0),
                "{family} {id}"
            );
        }
    }
    let clicks = |button_type: &str, content: &str| {
        scrape.value(
            "meta_whatsapp_template_clicked",
            &[
                ("template_id", "2632273056924580"),
                ("button_type", button_type),
                ("button_content", content),
            ],
        )
    };
    assert_eq!(clicks("quick_reply_button", "Contact Support"), Some(108.0));
    assert_eq!(clicks("unique_url_button", "Tell me more"), Some(16.0));
    let spent = |id: &str| {
        scrape.value(
            "meta_whatsapp_template_cost",
            &[("template_id", id), ("cost_type", "amount_spent")],
        )
    };
    assert_eq!(spent("1421988012088524"), Some(0.01));
    assert_eq!(spent("2632273056924580"), Some(0.03));
    assert_eq!(
        scrape.value(
            "meta_whatsapp_template_bucket_end_timestamp_seconds",
            &[("waba_id", "W1")]
        ),
        Some(1_718_150_400.0)
    );
    exporter.stop().await;
}

fn template_analytics_calls(fake: &FakeGraphApi) -> Vec<String> {
    fake.requests()
        .into_iter()
        .filter(|request| request.path.ends_with("/template_analytics"))
        .map(|request| request.query)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn more_than_ten_templates_take_several_calls_and_the_list_is_read_once_an_hour() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("W1", TOKEN);
    // More than one page of the list (100 a page) and more than ten templates a call.
    fake.set_template_count("W1", 123);
    let waba =
        "  - id: W1\n    interval: 15m\n    templates: {}\n    phone_numbers_health: false\n";
    let exporter = start(&fake, JUNE_2_2025, waba).await;
    let scrape = exporter
        .wait_for("templates", |s| {
            !s.series("meta_whatsapp_template_sent", &[]).is_empty()
        })
        .await;
    let approved = scrape
        .series("meta_whatsapp_template_info", &[("status", "APPROVED")])
        .len();
    assert_eq!(approved, 123);
    assert_eq!(
        scrape.series("meta_whatsapp_template_sent", &[]).len(),
        approved
    );
    let calls = template_analytics_calls(&fake);
    assert_eq!(calls.len(), approved.div_ceil(10), "{calls:?}");
    let listings = |fake: &FakeGraphApi| {
        fake.requests()
            .iter()
            .filter(|r| r.path.ends_with("/message_templates"))
            .count()
    };
    let first_listing = listings(&fake);
    assert_eq!(first_listing, 2);
    // The fake's `paging.next` links carry the token, as Graph's can: the exporter asks for the
    // next page with `after=` and keeps the token in its header.
    assert!(fake
        .requests()
        .iter()
        .all(|r| !r.query.contains("access_token")));
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.path.ends_with("/message_templates") && r.query.contains("after=")));
    // Three more polls within the hour reuse the list.
    tokio::time::sleep(Duration::from_secs(46 * 60)).await;
    assert_eq!(
        template_analytics_calls(&fake).len(),
        4 * approved.div_ceil(10)
    );
    assert_eq!(listings(&fake), first_listing);
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn template_analytics_not_enabled_is_a_state_the_rest_exports_and_it_is_not_asked_again() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("W1", TOKEN);
    fake.set_template_analytics("W1", TemplateAnalytics::NotEnabled);
    let waba = "  - id: W1\n    interval: 15m\n    templates: {}\n";
    let exporter = start(&fake, JUNE_2_2025, waba).await;
    let scrape = polled_and_up(&exporter, "W1").await;
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_whatsapp_feature_unavailable",
            &[("feature", "template_analytics"), ("reason", "not_enabled")]
        ),
        Some(1.0)
    );
    assert!(!scrape
        .series("meta_whatsapp_pricing_volume", &[])
        .is_empty());
    assert!(!scrape.series("meta_whatsapp_template_info", &[]).is_empty());
    assert!(scrape.series("meta_whatsapp_template_sent", &[]).is_empty());
    assert_eq!(template_analytics_calls(&fake).len(), 1);
    let account_reads = |fake: &FakeGraphApi| {
        fake.requests()
            .iter()
            .filter(|r| r.path.ends_with("/W1"))
            .count()
    };
    // Two more polls on the paused clock: the account is read again each time, and template
    // analytics are not asked for again.
    tokio::time::sleep(Duration::from_secs(31 * 60)).await;
    assert_eq!(account_reads(&fake), 3);
    assert_eq!(template_analytics_calls(&fake).len(), 1);
    let (_, page) = exporter.get("/").await;
    assert!(page.contains("template_analytics (not enabled)"), "{page}");
    // The exporter never confirms template analytics itself: that step is irreversible.
    assert!(fake
        .requests()
        .iter()
        .all(|r| r.method == "GET" && !r.query.contains("is_enabled_for_insights")));
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_region_without_template_analytics_is_a_state_too() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("W1", TOKEN);
    fake.set_template_analytics("W1", TemplateAnalytics::RegionUnavailable);
    let exporter = start(&fake, JUNE_2_2025, "  - id: W1\n    templates: {}\n").await;
    let scrape = polled_and_up(&exporter, "W1").await;
    assert_eq!(
        scrape.value(
            "meta_messaging_exporter_whatsapp_feature_unavailable",
            &[
                ("feature", "template_analytics"),
                ("reason", "region_unavailable")
            ]
        ),
        Some(1.0)
    );
    exporter.stop().await;
}

fn rating(scrape: &Scrape, phone_id: &str, rating: &str) -> Option<f64> {
    scrape.value(
        "meta_whatsapp_phone_number_quality_rating",
        &[("phone_number_id", phone_id), ("rating", rating)],
    )
}

#[tokio::test(start_paused = true)]
async fn phone_numbers_show_their_quality_rating_as_a_state_set_and_their_messaging_limit() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("W1", TOKEN);
    fake.set_phone_quality("W1", Some("RED"));
    let exporter = start(&fake, JUNE_2_2025, "  - id: W1\n    interval: 15m\n").await;
    let scrape = exporter
        .wait_for("phone numbers", |s| {
            !s.series("meta_whatsapp_phone_number_info", &[]).is_empty()
        })
        .await;
    let numbers = scrape.series("meta_whatsapp_phone_number_info", &[("waba_id", "W1")]);
    assert_eq!(numbers.len(), 2, "{}", scrape.text);
    let ids: Vec<String> = numbers
        .iter()
        .map(|(labels, _)| labels["phone_number_id"].clone())
        .collect();
    let red: Vec<&String> = ids
        .iter()
        .filter(|id| rating(&scrape, id, "RED") == Some(1.0))
        .collect();
    assert_eq!(red.len(), 1, "{}", scrape.text);
    for state in ["GREEN", "YELLOW", "UNKNOWN"] {
        assert_eq!(rating(&scrape, red[0], state), Some(0.0), "{state}");
    }
    let limits: Vec<f64> = ids
        .iter()
        .filter_map(|id| {
            scrape.value(
                "meta_whatsapp_phone_number_messaging_limit",
                &[("phone_number_id", id)],
            )
        })
        .collect();
    assert_eq!(limits.len(), 2);
    assert!(limits.iter().all(|limit| *limit >= 250.0), "{limits:?}");
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn analytics_pricing_and_conversations_of_one_account_are_one_request_per_poll() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("W1", TOKEN);
    let waba =
        "  - id: W1\n    interval: 15m\n    conversations: {}\n    phone_numbers_health: false\n";
    let exporter = start(&fake, JUNE_2_2025, waba).await;
    tokio::time::sleep(Duration::from_secs(31 * 60)).await;
    let scrape = exporter.scrape().await;
    assert!(
        !scrape.series("meta_whatsapp_conversations", &[]).is_empty(),
        "{}",
        scrape.text
    );
    assert!(!scrape
        .series("meta_whatsapp_pricing_volume", &[])
        .is_empty());
    let polls = scrape
        .value(
            "meta_messaging_exporter_polls_total",
            &[("kind", "whatsapp_business_account"), ("result", "success")],
        )
        .expect("poll counter");
    let node_reads: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/W1"))
        .collect();
    assert_eq!(node_reads.len() as f64, polls);
    assert_eq!(fake.request_count("W1"), node_reads.len());
    for read in &node_reads {
        for field in [
            "analytics.",
            "pricing_analytics.",
            "conversation_analytics.",
            "name",
            "currency",
        ] {
            assert!(
                read.query.contains(field),
                "{field} missing from {}",
                read.query
            );
        }
    }
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_whatsapp_throttle_pauses_only_that_account() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("W1", TOKEN);
    fake.simulate_waba("W2", TOKEN);
    fake.fail_next("W1", 1, Fault::throttled(80008));
    let wabas = "  - id: W1\n    interval: 1m\n    phone_numbers_health: false\n  - id: W2\n    interval: 1m\n    phone_numbers_health: false\n";
    let exporter = start(&fake, JUNE_2_2025, wabas).await;
    tokio::time::sleep(Duration::from_secs(40)).await;
    let (w1, w2) = (fake.request_count("W1"), fake.request_count("W2"));
    assert_eq!(w1, 1);
    tokio::time::sleep(Duration::from_secs(10 * 60)).await;
    // W2 polled every minute; W1 waits for the top of the hour (the fixed clock is at :00, so
    // its pause is a whole hour).
    assert_eq!(fake.request_count("W1"), 1);
    assert!(
        fake.request_count("W2") >= w2 + 10,
        "{}",
        fake.request_count("W2")
    );
    let scrape = exporter.scrape().await;
    assert!(
        scrape.value(
            "meta_messaging_exporter_target_backoff_seconds",
            &[("target_id", "W1")]
        ) > Some(0.0),
        "{}",
        scrape.text
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_per_account_budget_holds_over_an_hour() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("W1", TOKEN);
    fake.set_template_count("W1", 15);
    // Every poll makes a node read and two template calls, plus the hourly lists: at a
    // one-minute interval that is over 180 calls an hour, against a budget of 40.
    let yaml = format!(
        "{}rate_limits:\n  whatsapp_calls_per_hour: 40\nwhatsapp_business_accounts:\n  - id: W1\n    interval: 1m\n    templates: {{}}\n",
        preamble(&fake)
    );
    fake.set_now(Some(JUNE_2_2025));
    let exporter =
        TestExporter::start_with_clock(&yaml, Arc::new(FixedClock::new(JUNE_2_2025))).await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let calls = fake.request_count("W1");
    assert!(calls <= 40, "{calls} calls in an hour");
    assert!(
        calls >= 30,
        "{calls} calls: the budget is used, not starved"
    );
    let scrape = exporter.scrape().await;
    let polls = scrape
        .value(
            "meta_messaging_exporter_polls_total",
            &[("kind", "whatsapp_business_account"), ("result", "success")],
        )
        .expect("poll counter");
    assert!(polls >= 9.0, "{polls} successful polls");
    let (_, page) = exporter.get("/").await;
    assert!(
        page.contains("spaced under rate_limits.whatsapp_calls_per_hour"),
        "{page}"
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn at_the_default_settings_an_account_makes_five_calls_an_hour_ten_with_templates() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("W1", TOKEN);
    fake.simulate_waba("W2", TOKEN);
    let exporter = start(
        &fake,
        JUNE_2_2025,
        "  - id: W1\n  - id: W2\n    templates: {}\n",
    )
    .await;
    // Four 15-minute polls, the first within the 30 s spread; the fifth is after the hour.
    tokio::time::sleep(Duration::from_secs(58 * 60)).await;
    let calls = |waba: &str, suffix: &str| {
        fake.requests()
            .iter()
            .filter(|r| r.object_id.as_deref() == Some(waba) && r.path.ends_with(suffix))
            .count()
    };
    assert_eq!(fake.request_count("W1"), 5);
    assert_eq!((calls("W1", "/W1"), calls("W1", "/phone_numbers")), (4, 1));
    assert_eq!(fake.request_count("W2"), 10);
    assert_eq!(calls("W2", "/template_analytics"), 4);
    assert_eq!(calls("W2", "/message_templates"), 1);
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_number_two_accounts_list_has_one_set_of_its_own_series() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("W1", TOKEN);
    fake.simulate_waba("W2", TOKEN);
    // W2 lists W1's first number too: one number under two Messaging accounts.
    fake.share_phone_number("W1", "W2");
    let accounts = "  - id: W2\n    interval: 15m\n  - id: W1\n    interval: 15m\n";
    let exporter = start(&fake, JUNE_2_2025, accounts).await;
    let scrape = exporter
        .wait_for("both accounts' numbers", |s| {
            s.series("meta_whatsapp_phone_number_info", &[]).len() == 5
        })
        .await;
    // Give both accounts a second poll, so whichever read first has seen the other's claim.
    tokio::time::sleep(Duration::from_secs(16 * 60)).await;
    let scrape_after = exporter.scrape().await;
    let shared: Vec<String> = scrape
        .series("meta_whatsapp_phone_number_info", &[("waba_id", "W2")])
        .into_iter()
        .map(|(labels, _)| labels["phone_number_id"].clone())
        .filter(|id| {
            !scrape
                .series(
                    "meta_whatsapp_phone_number_info",
                    &[("waba_id", "W1"), ("phone_number_id", id)],
                )
                .is_empty()
        })
        .collect();
    assert_eq!(
        shared.len(),
        1,
        "one number is listed by both: {}",
        scrape.text
    );
    let id = shared[0].as_str();
    for family in [
        "meta_whatsapp_phone_number_quality_rating",
        "meta_whatsapp_phone_number_messaging_limit",
        "meta_whatsapp_phone_number_throughput",
    ] {
        let series = scrape_after.series(family, &[("phone_number_id", id)]);
        assert!(!series.is_empty(), "{family}");
        let owners: std::collections::BTreeSet<String> = series
            .iter()
            .filter_map(|(labels, _)| labels.get("waba_id").cloned())
            .collect();
        assert!(
            owners.len() <= 1 && owners.iter().all(|owner| owner == "W1"),
            "{family}: {owners:?}"
        );
    }
    // One state set: each level once, the current one 1.
    let levels = scrape_after.series(
        "meta_whatsapp_phone_number_throughput",
        &[("phone_number_id", id)],
    );
    assert_eq!(levels.len(), 3, "{levels:?}");
    assert_eq!(
        scrape_after.value(
            "meta_whatsapp_phone_number_throughput",
            &[("phone_number_id", id), ("level", "STANDARD")]
        ),
        Some(1.0)
    );
    // The account's other numbers keep their series.
    assert_eq!(
        scrape_after
            .series(
                "meta_whatsapp_phone_number_messaging_limit",
                &[("waba_id", "W2")]
            )
            .len(),
        2
    );
    exporter.stop().await;
}

const HEALTH: &str = "meta_whatsapp_health_status";

#[tokio::test(start_paused = true)]
async fn health_status_of_the_node_read_gives_state_sets_and_the_shared_entities_once() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("W1", TOKEN);
    fake.simulate_waba("W2", TOKEN);
    // W2 answers the blocked example of graph-api.md 7.2 for itself.
    fake.fixed_field("W2", "health_status", health_blocked("W2"));
    let accounts = "  - id: W2\n    interval: 15m\n  - id: W1\n    interval: 15m\n";
    let exporter = start(&fake, JUNE_2_2025, accounts).await;
    // A second poll of each, so whichever read first has seen the other's claims.
    tokio::time::sleep(Duration::from_secs(16 * 60)).await;
    let scrape = exporter.scrape().await;
    let state = |entity: &str, state: &str| {
        scrape.value(HEALTH, &[("entity_id", entity), ("state", state)])
    };
    assert_eq!(state("W1", "AVAILABLE"), Some(1.0), "{}", scrape.text);
    assert_eq!(state("W2", "BLOCKED"), Some(1.0));
    assert_eq!(state("W2", "AVAILABLE"), Some(0.0));
    assert_eq!(state("W2", "LIMITED"), Some(0.0));
    // The business and the app are in both answers, and exported once: one state set each.
    for entity in ["506914307656634", "634974688087057"] {
        assert_eq!(
            scrape.series(HEALTH, &[("entity_id", entity)]).len(),
            3,
            "{entity}"
        );
    }
    assert_eq!(
        scrape.value(
            "meta_whatsapp_health_error",
            &[
                ("entity_type", "WABA"),
                ("entity_id", "W2"),
                ("error_code", "141006")
            ]
        ),
        Some(1.0)
    );
    assert!(
        scrape
            .text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .all(|line| !line.contains("payment method")),
        "no words in labels"
    );
    // No call of its own: one node read per account per poll.
    let node_reads = fake
        .requests()
        .iter()
        .filter(|request| request.path.ends_with("/W1") && request.query.contains("health_status"))
        .count();
    assert_eq!(node_reads, 2, "two polls, two node reads");
    exporter.stop().await;
}

//! WhatsApp buckets: the value is the last complete bucket; omitted buckets are zero, buckets
//! off Meta's Pacific calendar are read by the API's own boundaries (never as 0), and the
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
        "{}whatsapp_business_accounts:\n  - id: WABA1\n    interval: 1s\n    granularity: HALF_HOUR\n    phone_numbers_health: false\n",
        preamble(fake)
    )
}

#[tokio::test(start_paused = true)]
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

#[tokio::test(start_paused = true)]
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

#[tokio::test(start_paused = true)]
async fn phone_number_and_country_filters_narrow_analytics_in_the_one_account_read() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("WABA1", TOKEN);
    let yaml = format!(
        "{}whatsapp_business_accounts:\n  - id: WABA1\n    interval: 1m\n    phone_numbers: [\"15550001\", \"15550002\"]\n    country_codes: [US]\n    phone_numbers_health: false\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("analytics", |s| {
            s.value("meta_whatsapp_analytics_sent", &[]).is_some()
        })
        .await;
    // One series for the filtered total: per-number figures come from pricing's PHONE dimension.
    let labels = [("waba_id", "WABA1")];
    let sent = scrape
        .value("meta_whatsapp_analytics_sent", &labels)
        .expect("sent");
    let delivered = scrape
        .value("meta_whatsapp_analytics_delivered", &labels)
        .expect("delivered");
    assert!(delivered <= sent, "delivered {delivered} > sent {sent}");
    let reads: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.query.clone())
        .collect();
    assert_eq!(reads.len(), 1, "{reads:?}");
    let url = reqwest::Url::parse(&format!("http://fake/?{}", reads[0])).expect("query");
    let fields = url
        .query_pairs()
        .find(|(name, _)| name == "fields")
        .map(|(_, value)| value.into_owned())
        .expect("fields");
    assert!(
        fields.contains(".phone_numbers([\"15550001\",\"15550002\"]).country_codes([\"US\"])"),
        "{fields}"
    );
    exporter.stop().await;
}

/// The simulated account of the DST tests: one whose expected buckets all have traffic, aligned
/// or not (the simulator leaves about one bucket in four quiet, and a quiet bucket reads 0
/// either way, which would prove nothing).
const DST_WABA: &str = "WABA9";

/// One crossing of a US Pacific DST change: the granularity, now (unix seconds, UTC noon after
/// the change) and the Pacific bucket that is then the last complete one.
struct DstCase {
    granularity: &'static str,
    now: i64,
    pacific: (i64, i64),
    /// The bucket the same request gets from an account cut at UTC midnights.
    utc: (i64, i64),
}

const DST_CASES: [DstCase; 4] = [
    // 2026-03-08, 23 hours long (spring forward); now 2026-03-09 12:00 UTC.
    DstCase {
        granularity: "DAY",
        now: 1_773_057_600,
        pacific: (1_772_956_800, 1_773_039_600),
        utc: (1_772_928_000, 1_773_014_400),
    },
    // 2026-11-01, 25 hours long (fall back); now 2026-11-02 12:00 UTC.
    DstCase {
        granularity: "DAY",
        now: 1_793_620_800,
        pacific: (1_793_516_400, 1_793_606_400),
        utc: (1_793_491_200, 1_793_577_600),
    },
    // March 2026 starts in PST and ends in PDT; now 2026-04-10 12:00 UTC.
    DstCase {
        granularity: "MONTH",
        now: 1_775_822_400,
        pacific: (1_772_352_000, 1_775_026_800),
        utc: (1_772_323_200, 1_775_001_600),
    },
    // November 2026 starts in PDT and ends in PST; now 2026-12-10 12:00 UTC.
    DstCase {
        granularity: "MONTH",
        now: 1_796_904_000,
        pacific: (1_793_516_400, 1_796_112_000),
        utc: (1_793_491_200, 1_796_083_200),
    },
];

/// The simulator's `(sent, delivered)` for bucket `[start, end)` of the account, read from the fake
/// directly with the request the exporter makes; `None` if the bucket was quiet.
async fn fake_bucket(
    fake: &FakeGraphApi,
    case: &DstCase,
    bucket: (i64, i64),
) -> Option<(f64, f64)> {
    let fields = format!(
        "analytics.start({}).end({}).granularity({})",
        case.pacific.0, case.now, case.granularity
    );
    let text = reqwest::Client::new()
        .get(format!("{}/v21.0/{DST_WABA}", fake.base_url()))
        .query(&[("fields", fields)])
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request to the fake")
        .text()
        .await
        .expect("body from the fake");
    let body: serde_json::Value = serde_json::from_str(&text).expect("JSON from the fake");
    body["analytics"]["data_points"]
        .as_array()
        .expect("data points")
        .iter()
        .find(|point| point["start"] == bucket.0 && point["end"] == bucket.1)
        .map(|point| {
            let count = |key: &str| point[key].as_f64().expect("count");
            (count("sent"), count("delivered"))
        })
}

/// Polls the account of the simulator at `case.now`, its buckets aligned or not, and returns the
/// first scrape with a poll's result in it and the simulator's answer for the bucket expected.
async fn poll_across_dst(case: &DstCase, misaligned: bool) -> (crate::helpers::Scrape, (f64, f64)) {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba(DST_WABA, TOKEN);
    if misaligned {
        fake.misalign_buckets(DST_WABA);
    }
    fake.set_now(Some(case.now));
    let expected_bucket = if misaligned { case.utc } else { case.pacific };
    let expected = fake_bucket(&fake, case, expected_bucket)
        .await
        .unwrap_or_else(|| {
            panic!("the simulator left {expected_bucket:?} quiet; pick another case")
        });
    let yaml = format!(
        "{}whatsapp_business_accounts:\n  - id: {}\n    interval: 1s\n    granularity: {}\n",
        preamble(&fake),
        DST_WABA,
        case.granularity
    );
    let exporter = TestExporter::start_with_clock(&yaml, Arc::new(FixedClock::new(case.now))).await;
    let scrape = exporter
        .wait_for("a WhatsApp poll", |s| {
            s.value(
                "meta_messaging_exporter_target_up",
                &[("target_id", DST_WABA)],
            )
            .is_some()
        })
        .await;
    exporter.stop().await;
    (scrape, expected)
}

#[tokio::test(start_paused = true)]
async fn aligned_day_and_month_buckets_across_dst_changes_give_the_pacific_bucket() {
    for case in &DST_CASES {
        let (scrape, (sent, delivered)) = poll_across_dst(case, false).await;
        let labels = [("waba_id", DST_WABA), ("granularity", case.granularity)];
        assert_eq!(
            scrape.value(
                "meta_whatsapp_analytics_bucket_end_timestamp_seconds",
                &labels
            ),
            Some(case.pacific.1 as f64),
            "{}",
            scrape.text
        );
        assert_eq!(
            scrape.value("meta_whatsapp_analytics_sent", &labels),
            Some(sent)
        );
        assert_eq!(
            scrape.value("meta_whatsapp_analytics_delivered", &labels),
            Some(delivered)
        );
        assert!(
            scrape
                .series(
                    "meta_messaging_exporter_value_errors_total",
                    &[("reason", "bucket_misaligned")]
                )
                .is_empty(),
            "{}",
            scrape.text
        );
    }
}

#[tokio::test(start_paused = true)]
async fn misaligned_buckets_across_dst_changes_give_the_apis_latest_complete_bucket_not_zero() {
    for case in &DST_CASES {
        let (scrape, (sent, delivered)) = poll_across_dst(case, true).await;
        let labels = [("waba_id", DST_WABA), ("granularity", case.granularity)];
        assert_eq!(
            scrape.value(
                "meta_messaging_exporter_target_up",
                &[("target_id", DST_WABA)]
            ),
            Some(1.0)
        );
        assert_eq!(
            scrape.value(
                "meta_whatsapp_analytics_bucket_end_timestamp_seconds",
                &labels
            ),
            Some(case.utc.1 as f64),
            "{}",
            scrape.text
        );
        assert!(sent > 0.0);
        assert_eq!(
            scrape.value("meta_whatsapp_analytics_sent", &labels),
            Some(sent)
        );
        assert_eq!(
            scrape.value("meta_whatsapp_analytics_delivered", &labels),
            Some(delivered)
        );
        assert!(
            scrape.value(
                "meta_messaging_exporter_value_errors_total",
                &[
                    ("kind", "whatsapp_business_account"),
                    ("reason", "bucket_misaligned")
                ]
            ) >= Some(1.0),
            "{}",
            scrape.text
        );
    }
}

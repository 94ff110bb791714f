//! Campaign and ad-account insights values as Meta reports them: rates above 100, and empty
//! answers after rows.

use std::collections::BTreeMap;

use meta_messaging_exporter::simulator::FakeGraphApi;

use crate::helpers::{preamble, Scrape, TestExporter, TOKEN};

/// Every `meta_marketing_messages_*` sample of the object whose id is in `label`.
fn insights(scrape: &Scrape, label: (&str, &str)) -> BTreeMap<String, f64> {
    scrape
        .samples
        .iter()
        .filter(|(name, labels, _)| {
            name.starts_with("meta_marketing_messages_")
                && labels.get(label.0).map(String::as_str) == Some(label.1)
        })
        .map(|(name, _, value)| (name.clone(), *value))
        .collect()
}

/// How many insights requests for `id` the fake has answered.
fn insights_requests(fake: &FakeGraphApi, id: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|request| {
            request.object_id.as_deref() == Some(id) && request.path.ends_with("/insights")
        })
        .count()
}

#[tokio::test(start_paused = true)]
async fn a_read_rate_of_481_8_is_exported_as_meta_reports_it() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_campaign("CAMPAIGN1", TOKEN);
    fake.simulate_ad_account("act_1", TOKEN);
    fake.set_read_rate("CAMPAIGN1", Some(481.8));
    fake.set_read_rate("act_1", Some(481.8));
    let yaml = format!(
        "{}campaigns:\n  - id: CAMPAIGN1\n    interval: 1s\nad_accounts:\n  - id: act_1\n    interval: 1s\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    let scrape = exporter
        .wait_for("both read rates", |s| {
            s.series("meta_marketing_messages_read_rate", &[]).len() == 2
        })
        .await;
    for label in [("campaign_id", "CAMPAIGN1"), ("ad_account_id", "act_1")] {
        assert_eq!(
            scrape.value("meta_marketing_messages_read_rate", &[label]),
            Some(481.8),
            "{label:?}"
        );
        // The other rates are the model's, below 100, and exported beside it.
        let click_rate = scrape
            .value("meta_marketing_messages_link_btn_click_rate", &[label])
            .expect("click rate");
        assert!((0.0..100.0).contains(&click_rate), "{click_rate}");
    }
    // Not corrected, so not an unusable value either.
    assert!(
        scrape
            .series("meta_messaging_exporter_value_errors_total", &[])
            .is_empty(),
        "{}",
        scrape.text
    );
    exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_empty_answer_after_rows_keeps_the_values_until_they_go_stale_and_is_no_error() {
    let fake = FakeGraphApi::start().await.expect("fake");
    // A frozen simulated now: every answer with rows has the same numbers, so a held value
    // can be told from a changed one.
    fake.set_now(Some(1_796_198_400));
    fake.simulate_campaign("CAMPAIGN1", TOKEN);
    fake.simulate_ad_account("act_1", TOKEN);
    // Never had rows: exports nothing, and is not an error either.
    fake.simulate_campaign("CAMPAIGN_QUIET", TOKEN);
    fake.set_insights_empty("CAMPAIGN_QUIET", true);
    let yaml = format!(
        "{}campaigns:\n  - id: CAMPAIGN1\n    interval: 1s\n    stale_after: 6s\n  - id: CAMPAIGN_QUIET\n    interval: 1s\nad_accounts:\n  - id: act_1\n    interval: 1s\n    stale_after: 6s\n",
        preamble(&fake)
    );
    let exporter = TestExporter::start(&yaml).await;
    let objects = [("campaign_id", "CAMPAIGN1"), ("ad_account_id", "act_1")];
    let before = exporter
        .wait_for("rows of both objects, and the quiet campaign up", |s| {
            objects.iter().all(|label| insights(s, *label).len() == 7)
                && s.value(
                    "meta_messaging_exporter_target_up",
                    &[("target_id", "CAMPAIGN_QUIET")],
                ) == Some(1.0)
        })
        .await;
    assert!(insights(&before, ("campaign_id", "CAMPAIGN_QUIET")).is_empty());
    let held: Vec<BTreeMap<String, f64>> = objects
        .iter()
        .map(|label| insights(&before, *label))
        .collect();

    fake.set_insights_empty("CAMPAIGN1", true);
    fake.set_insights_empty("act_1", true);
    let answered = [
        insights_requests(&fake, "CAMPAIGN1"),
        insights_requests(&fake, "act_1"),
    ];
    // Two empty answers each (within stale_after of the last rows): every series is still
    // there, with the value it had, none 0.
    let during = exporter
        .wait_for("two empty answers each", |_| {
            insights_requests(&fake, "CAMPAIGN1") >= answered[0] + 2
                && insights_requests(&fake, "act_1") >= answered[1] + 2
        })
        .await;
    for (label, held) in objects.iter().zip(&held) {
        assert_eq!(&insights(&during, *label), held, "{label:?}");
        assert_eq!(
            during.value(
                "meta_messaging_exporter_target_up",
                &[("target_id", label.1)]
            ),
            Some(1.0)
        );
    }

    // After stale_after the held values go, like any other stale data; the targets stay up
    // and their names stay.
    let stale = exporter
        .wait_for("the held values gone as stale", |s| {
            objects.iter().all(|label| insights(s, *label).is_empty())
        })
        .await;
    for label in objects {
        assert_eq!(
            stale.value(
                "meta_messaging_exporter_target_up",
                &[("target_id", label.1)]
            ),
            Some(1.0),
            "{label:?}"
        );
    }
    assert!(!stale
        .series("meta_campaign_info", &[("campaign_id", "CAMPAIGN1")])
        .is_empty());
    assert!(!stale
        .series("meta_ad_account_info", &[("ad_account_id", "act_1")])
        .is_empty());
    // An empty answer is no failure: no read error, no failed poll.
    assert!(
        stale
            .series("meta_messaging_exporter_read_errors_total", &[])
            .is_empty(),
        "{}",
        stale.text
    );
    for kind in ["campaign", "ad_account"] {
        let polls = stale.series("meta_messaging_exporter_polls_total", &[("kind", kind)]);
        assert!(
            polls
                .iter()
                .all(|(labels, _)| labels.get("result").map(String::as_str) == Some("success")),
            "{polls:?}"
        );
    }

    // Rows again: published at once.
    fake.set_insights_empty("CAMPAIGN1", false);
    let back = exporter
        .wait_for("the campaign's rows back", |s| {
            insights(s, ("campaign_id", "CAMPAIGN1")).len() == 7
        })
        .await;
    assert_eq!(insights(&back, ("campaign_id", "CAMPAIGN1")), held[0]);
    exporter.stop().await;
}

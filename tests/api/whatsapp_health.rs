//! Each phone number's own `health_status` (graph-api.md 7.2), against the fake, on tokio's
//! paused clock and a fixed wall clock: on the phone-number list without a call of its own,
//! read on the numbers' nodes where the list refuses the field, one number's failure kept to
//! that number, and Meta's words on the status page but never in a label.

use std::sync::Arc;
use std::time::Duration;

use meta_messaging_exporter::clock::FixedClock;
use meta_messaging_exporter::simulator::{phone_health_limited, FakeGraphApi, Fault};

use crate::helpers::{preamble, Scrape, TestExporter, TOKEN};

/// 2025-06-02 10:00 PDT.
const NOW: i64 = 1_748_847_600 + 10 * 3600;
const HEALTH: &str = "meta_whatsapp_health_status";
const DISPLAY_NAME: &str = "Your display name has not been approved yet.";

/// The exporter, on a wall clock that [`Run::pass`] moves with tokio's paused clock.
struct Run {
    exporter: TestExporter,
    clock: Arc<FixedClock>,
    now: std::cell::Cell<i64>,
}

impl Run {
    async fn start(fake: &FakeGraphApi, accounts: &str) -> Run {
        fake.set_now(Some(NOW));
        let yaml = format!("{}whatsapp_business_accounts:\n{accounts}", preamble(fake));
        let clock = Arc::new(FixedClock::new(NOW));
        let exporter = TestExporter::start_with_clock(&yaml, clock.clone()).await;
        let run = Run {
            exporter,
            clock,
            now: std::cell::Cell::new(NOW),
        };
        // Past the start-up spread (30s), so every account has polled once.
        run.pass(fake, 60).await;
        run
    }

    /// The first scrape with the health of `count` numbers.
    async fn numbers_health(&self, count: usize) -> Scrape {
        self.exporter
            .wait_for("the numbers' health", |s| {
                s.series(HEALTH, &[("entity_type", "PHONE_NUMBER")]).len() == 3 * count
            })
            .await
    }

    /// Lets `seconds` pass on both clocks (and the fake's), a minute at a time.
    async fn pass(&self, fake: &FakeGraphApi, seconds: i64) {
        let mut left = seconds;
        while left > 0 {
            let step = left.min(60);
            tokio::time::sleep(Duration::from_secs(step.unsigned_abs())).await;
            self.now.set(self.now.get() + step);
            self.clock.set(self.now.get());
            fake.set_now(Some(self.now.get()));
            left -= step;
        }
    }
}

/// The phone number ids `waba` lists, in the order of its list.
fn numbers(scrape: &Scrape, waba: &str) -> Vec<String> {
    scrape
        .series("meta_whatsapp_phone_number_info", &[("waba_id", waba)])
        .into_iter()
        .map(|(labels, _)| labels["phone_number_id"].clone())
        .collect()
}

fn state(scrape: &Scrape, id: &str, state: &str) -> Option<f64> {
    scrape.value(
        HEALTH,
        &[
            ("entity_type", "PHONE_NUMBER"),
            ("entity_id", id),
            ("state", state),
        ],
    )
}

/// Asserts that number `id` is in `expected`, showing the scrape if not.
fn assert_state(scrape: &Scrape, id: &str, expected: &str) {
    assert_eq!(
        state(scrape, id, expected),
        Some(1.0),
        "{id} {expected}: {}",
        scrape.text
    );
}

/// Requests for phone number `id`'s own node.
fn node_reads(fake: &FakeGraphApi, id: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|request| request.object_id.as_deref() == Some(id))
        .count()
}

fn list_reads(fake: &FakeGraphApi, waba: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|request| request.path.ends_with(&format!("/{waba}/phone_numbers")))
        .count()
}

#[tokio::test(start_paused = true)]
async fn metas_limited_example_on_the_list_gives_the_numbers_state_set_and_its_words_on_the_page() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("W1", TOKEN);
    fake.set_phone_health("W1", Some(phone_health_limited()));
    let run = Run::start(&fake, "  - id: W1\n    interval: 15m\n").await;
    let scrape = run.numbers_health(2).await;
    let ids = numbers(&scrape, "W1");
    assert_eq!(ids.len(), 2, "{}", scrape.text);
    assert_eq!(state(&scrape, &ids[0], "AVAILABLE"), Some(1.0));
    assert_eq!(state(&scrape, &ids[1], "LIMITED"), Some(1.0));
    assert_eq!(state(&scrape, &ids[1], "AVAILABLE"), Some(0.0));
    assert_eq!(state(&scrape, &ids[1], "BLOCKED"), Some(0.0));
    assert!(
        scrape
            .text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .all(|line| !line.contains("display name")),
        "no words in labels"
    );
    // No call of its own: one list read, no number read on its node.
    assert_eq!(list_reads(&fake, "W1"), 1);
    assert_eq!(node_reads(&fake, &ids[0]) + node_reads(&fake, &ids[1]), 0);
    let (status, page) = run.exporter.get("/").await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!(
            "health: PHONE_NUMBER {} is LIMITED: {DISPLAY_NAME}",
            ids[1]
        )),
        "{page}"
    );
    assert!(
        !page.contains(&format!("PHONE_NUMBER {} is", ids[0])),
        "{page}"
    );

    // The number recovers: the next hourly list read says so, and the page forgets it.
    fake.set_phone_health("W1", None);
    run.pass(&fake, 3600).await;
    let scrape = run.exporter.scrape().await;
    assert_state(&scrape, &ids[1], "AVAILABLE");
    let (_, page) = run.exporter.get("/").await;
    assert!(!page.contains(DISPLAY_NAME), "{page}");
    run.exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn where_the_list_refuses_the_field_each_number_is_read_on_its_node_hourly() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("W1", TOKEN);
    fake.refuse_list_health("W1");
    fake.set_phone_health("W1", Some(phone_health_limited()));
    let run = Run::start(&fake, "  - id: W1\n    interval: 15m\n").await;
    let up = |s: &Scrape| s.value("meta_messaging_exporter_target_up", &[("target_id", "W1")]);
    let scrape = run.numbers_health(2).await;
    assert_eq!(
        up(&scrape),
        Some(1.0),
        "a refusal is no failure: {}",
        scrape.text
    );
    let ids = numbers(&scrape, "W1");
    assert_state(&scrape, &ids[1], "LIMITED");
    assert_eq!(state(&scrape, &ids[0], "AVAILABLE"), Some(1.0));
    // The refused read and the same list without the field, then one read of each number.
    assert_eq!(list_reads(&fake, "W1"), 2);
    assert_eq!(
        (node_reads(&fake, &ids[0]), node_reads(&fake, &ids[1])),
        (1, 1)
    );

    // Two hours of 15-minute polls: each number is read once an hour, the list once an hour
    // without asking for the field again.
    run.pass(&fake, 2 * 3600).await;
    assert_eq!(
        (node_reads(&fake, &ids[0]), node_reads(&fake, &ids[1])),
        (3, 3)
    );
    assert_eq!(list_reads(&fake, "W1"), 4);
    let scrape = run.exporter.scrape().await;
    assert_state(&scrape, &ids[1], "LIMITED");
    let (_, page) = run.exporter.get("/").await;
    assert!(page.contains(DISPLAY_NAME), "{page}");
    run.exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_number_whose_own_read_fails_keeps_its_state_and_the_others_go_on() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("W1", TOKEN);
    fake.simulate_waba("W2", TOKEN);
    fake.refuse_list_health("W1");
    fake.set_phone_health("W1", Some(phone_health_limited()));
    let accounts = "  - id: W1\n    interval: 15m\n  - id: W2\n    interval: 15m\n";
    let run = Run::start(&fake, accounts).await;
    let scrape = run.numbers_health(4).await;
    let ids = numbers(&scrape, "W1");
    // The limited number's node starts failing; the other number recovers from nothing.
    fake.fail_always(&ids[1], Fault::invalid_request());
    let before = node_reads(&fake, &ids[1]);
    // The next turn, an hour after the first, and two polls after it.
    run.pass(&fake, 3600 + 30 * 60).await;
    // Asked at the hourly turn, then again at each later poll, that number alone.
    let failing_reads = node_reads(&fake, &ids[1]) - before;
    assert_eq!(failing_reads, 3, "the turn and the two polls after it");
    assert_eq!(
        node_reads(&fake, &ids[0]),
        2,
        "the other number keeps its hourly turn"
    );
    let scrape = run.exporter.scrape().await;
    assert_eq!(
        state(&scrape, &ids[1], "LIMITED"),
        Some(1.0),
        "its last state is held: {}",
        scrape.text
    );
    assert_eq!(state(&scrape, &ids[0], "AVAILABLE"), Some(1.0));
    for waba in ["W1", "W2"] {
        assert_eq!(
            scrape.value("meta_messaging_exporter_target_up", &[("target_id", waba)]),
            Some(1.0),
            "{waba}"
        );
    }
    let w2 = numbers(&scrape, "W2");
    assert_eq!(state(&scrape, &w2[0], "AVAILABLE"), Some(1.0));
    // Unconfirmed for a whole turn and the staleness limit past it, the state is no longer
    // exported; the number that answers keeps its series.
    run.pass(&fake, 3 * 3600).await;
    let scrape = run.exporter.scrape().await;
    assert_eq!(state(&scrape, &ids[1], "LIMITED"), None, "{}", scrape.text);
    assert_eq!(state(&scrape, &ids[0], "AVAILABLE"), Some(1.0));

    // Meta answers again: the number is read at the next poll and shows what it says now.
    fake.clear_faults(&ids[1]);
    fake.set_phone_health("W1", None);
    run.pass(&fake, 15 * 60).await;
    let scrape = run.exporter.scrape().await;
    assert_state(&scrape, &ids[1], "AVAILABLE");
    run.exporter.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_number_two_accounts_list_has_one_health_state_set() {
    let fake = FakeGraphApi::start().await.expect("fake");
    fake.simulate_waba("W1", TOKEN);
    fake.simulate_waba("W2", TOKEN);
    fake.share_phone_number("W1", "W2");
    let accounts = "  - id: W2\n    interval: 15m\n  - id: W1\n    interval: 15m\n";
    let run = Run::start(&fake, accounts).await;
    // A second poll of each, so whichever read first has seen the other's claim.
    run.pass(&fake, 16 * 60).await;
    let scrape = run.exporter.scrape().await;
    let w1 = numbers(&scrape, "W1");
    assert!(numbers(&scrape, "W2").contains(&w1[0]), "{}", scrape.text);
    for id in &w1 {
        assert_eq!(
            scrape
                .series(
                    HEALTH,
                    &[("entity_type", "PHONE_NUMBER"), ("entity_id", id)]
                )
                .len(),
            3,
            "{id}: one state set"
        );
    }
    // W2's own two numbers and W1's two: four numbers, four state sets.
    assert_eq!(
        scrape
            .series(HEALTH, &[("entity_type", "PHONE_NUMBER")])
            .len(),
        12,
        "{}",
        scrape.text
    );
    run.exporter.stop().await;
}

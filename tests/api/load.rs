//! `/metrics` stays correct under concurrent scrapes while polls run, faults fly and the
//! config reloads. Not a timing test: it checks that every scrape answers 200 and parses.

use std::sync::Arc;
use std::time::Duration;

use meta_messaging_exporter::simulator::{FakeGraphApi, Fault};

use crate::helpers::{preamble, Scrape, TestExporter, TOKEN};

const PAGES: usize = 12;
const CLIENTS: usize = 16;
const SCRAPES_PER_CLIENT: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_scrape_parses_while_many_clients_scrape_during_reloads_and_a_fault_storm() {
    let fake = Arc::new(FakeGraphApi::start().await.expect("fake"));
    let ids: Vec<String> = (0..PAGES).map(|i| format!("PAGE{i}")).collect();
    for id in &ids {
        fake.simulate_page(id, TOKEN);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.yaml");
    let config = |count: usize| {
        let pages: String = ids[..count]
            .iter()
            .map(|id| format!("  - id: {id}\n    interval: 1s\n    metrics: [page_messages_sent, page_messages_new_conversations_unique]\n"))
            .collect();
        format!("{}pages:\n{pages}", preamble(&fake))
    };
    std::fs::write(&path, config(PAGES)).expect("write config");
    let exporter = Arc::new(TestExporter::start_from_file(&path).await);
    exporter
        .wait_for("every Page", |s| {
            s.series("meta_page_messages_sent", &[]).len() == PAGES
        })
        .await;

    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let exporter = exporter.clone();
            tokio::spawn(async move {
                for _ in 0..SCRAPES_PER_CLIENT {
                    let (status, body) = exporter.get("/metrics").await;
                    assert_eq!(status, 200);
                    // Panics (failing the test through the join) if the text does not parse.
                    let scrape = Scrape::parse(body);
                    assert!(scrape
                        .value("meta_messaging_exporter_build_info", &[])
                        .is_some());
                }
            })
        })
        .collect();

    // Meanwhile: faults of every kind come and go, and the config reloads with Pages added
    // and removed.
    let faults = [
        Fault::transient(),
        Fault::InvalidJson,
        Fault::TruncatedBody,
        Fault::bad_gateway_html(),
        Fault::throttled(613),
    ];
    for round in 0..10 {
        for (i, id) in ids.iter().enumerate() {
            if (i + round) % 3 == 0 {
                fake.fail_always(id, faults[(i + round) % faults.len()].clone());
            } else {
                fake.clear_faults(id);
            }
        }
        std::fs::write(&path, config(PAGES - round % 4)).expect("write config");
        let (status, body) = exporter.post("/-/reload").await;
        assert_eq!(status, 200, "{body}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }

    for client in clients {
        client.await.expect("every scrape answered 200 and parsed");
    }
    let (status, _) = exporter.get("/-/healthy").await;
    assert_eq!(status, 200);
    match Arc::try_unwrap(exporter) {
        Ok(exporter) => exporter.stop().await,
        Err(_) => panic!("a client still holds the exporter"),
    }
}

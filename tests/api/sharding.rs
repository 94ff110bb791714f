//! Sharding over replicas: three instances with one config, each with its own `--shard`, poll
//! every target exactly once between them: listed targets, discovered ones, and after a
//! reload. On tokio's paused clock.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use meta_messaging_exporter::shard::Shard;
use meta_messaging_exporter::simulator::FakeGraphApi;

use crate::helpers::{preamble, test_options, Scrape, TestExporter, TOKEN};

const SHARDS: u32 = 3;

/// The ids of the targets an instance polls, from its per-target series.
fn targets(scrape: &Scrape) -> BTreeSet<String> {
    scrape
        .series("meta_messaging_exporter_target_interval_seconds", &[])
        .into_iter()
        .filter_map(|(labels, _)| labels.get("target_id").cloned())
        .collect()
}

fn config(fake: &FakeGraphApi, pages: impl Iterator<Item = String>) -> String {
    let mut yaml = format!(
        "{}discovery:\n  pages:\n    defaults: {{metrics: [page_messages_sent]}}\npages:\n",
        preamble(fake)
    );
    for id in pages {
        yaml.push_str(&format!(
            "  - id: \"{id}\"\n    metrics: [page_messages_sent]\n"
        ));
    }
    yaml
}

async fn start(path: &Path) -> Vec<TestExporter> {
    let mut exporters = Vec::new();
    for index in 0..SHARDS {
        let options = meta_messaging_exporter::app::Options {
            shard: Shard::new(index, SHARDS).expect("shard"),
            ..test_options()
        };
        exporters.push(TestExporter::start_from_file_with(path, options).await);
    }
    // Past the first discovery run and the start-up spread.
    tokio::time::sleep(Duration::from_secs(31)).await;
    exporters
}

/// Checks that the shards' targets are disjoint and together exactly `expected`.
async fn assert_each_polled_once(exporters: &[TestExporter], expected: &BTreeSet<String>) {
    let mut union = BTreeSet::new();
    let mut sizes = Vec::new();
    for (index, exporter) in exporters.iter().enumerate() {
        let scrape = exporter.scrape().await;
        assert_eq!(
            scrape.value(
                "meta_messaging_exporter_shard_info",
                &[("shard", &index.to_string()), ("total_shards", "3")]
            ),
            Some(1.0)
        );
        let (_, page) = exporter.get("/").await;
        assert!(
            page.contains(&format!("This instance is shard {index} of 3")),
            "{page}"
        );
        let mine = targets(&scrape);
        sizes.push(mine.len());
        for id in &mine {
            assert!(union.insert(id.clone()), "{id} is polled by two shards");
        }
    }
    assert_eq!(&union, expected, "the shards together poll every target");
    assert!(
        sizes.iter().all(|&n| n > 0),
        "every shard has a share: {sizes:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn three_shards_poll_each_listed_and_discovered_target_once_also_after_a_reload() {
    let fake = FakeGraphApi::start().await.expect("fake");
    let listed: Vec<String> = (0..300).map(|n| format!("{}", 300_000 + n)).collect();
    let discovered: Vec<String> = (0..60).map(|n| format!("{}", 600_000 + n)).collect();
    for id in &listed {
        fake.simulate_page(id, TOKEN);
    }
    for id in &discovered {
        fake.simulate_page(id, &format!("page-token-{id}"));
    }
    let granted: Vec<&str> = discovered.iter().map(String::as_str).collect();
    fake.grant_pages(TOKEN, &granted);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, config(&fake, listed.iter().cloned())).expect("write");
    let exporters = start(&path).await;
    let everything: BTreeSet<String> = listed.iter().chain(&discovered).cloned().collect();
    assert_each_polled_once(&exporters, &everything).await;

    // A reload that drops 10 listed Pages and adds 30: still each once.
    let relisted: Vec<String> = listed[10..]
        .iter()
        .cloned()
        .chain((0..30).map(|n| format!("{}", 900_000 + n)))
        .collect();
    for id in &relisted {
        fake.simulate_page(id, TOKEN);
    }
    std::fs::write(&path, config(&fake, relisted.iter().cloned())).expect("write");
    for exporter in &exporters {
        assert_eq!(exporter.post("/-/reload").await.0, 200);
    }
    let everything: BTreeSet<String> = relisted.iter().chain(&discovered).cloned().collect();
    assert_each_polled_once(&exporters, &everything).await;
    for exporter in exporters {
        exporter.stop().await;
    }
}

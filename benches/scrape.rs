//! What a scrape costs with many targets: the snapshot store's render (after a poll changed
//! something, and with nothing changed) against re-encoding every series with the
//! `prometheus` crate's `TextEncoder`, which is what a GaugeVec-based exporter does per scrape.
//!
//! Run: `cargo bench --bench scrape`. Sizes: 10,000 Pages x 10 series = 100,000 series.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use meta_messaging_exporter::exposition::{encode, Family, Sample};
use meta_messaging_exporter::store::{Slot, SnapshotStore};
use meta_messaging_exporter::target::{TargetKey, TargetKind};
use prometheus::{Encoder, GaugeVec, Opts, Registry, TextEncoder};

const PAGES: usize = 10_000;
const SERIES_PER_PAGE: usize = 10;

fn page_families(page: usize) -> Vec<Family> {
    let id = format!("10000000{page:07}");
    (0..SERIES_PER_PAGE)
        .map(|metric| Family {
            name: format!("meta_page_metric_{metric}"),
            help: "A Page insights metric from a background poll.".to_owned(),
            samples: vec![Sample {
                labels: vec![
                    ("page_id".to_owned(), id.clone()),
                    ("period".to_owned(), "day".to_owned()),
                ],
                value: (page * metric) as f64,
            }],
        })
        .collect()
}

fn filled_store() -> SnapshotStore {
    let store = SnapshotStore::new();
    for page in 0..PAGES {
        let key = TargetKey {
            kind: TargetKind::Page,
            id: page.to_string(),
        };
        store.publish(&key, Slot::Data(0), encode(page_families(page)), None);
    }
    store
}

fn bench_scrape(c: &mut Criterion) {
    let mut group = c.benchmark_group("scrape_100k_series");
    group.sample_size(20);

    let store = filled_store();
    let now = tokio::time::Instant::now();
    let changed = TargetKey {
        kind: TargetKind::Page,
        id: "0".to_owned(),
    };
    let one_page = encode(page_families(0));
    group.bench_function("store_render_after_a_poll", |b| {
        b.iter(|| {
            store.publish(&changed, Slot::Data(0), one_page.clone(), None);
            black_box(store.render(now).len())
        })
    });
    store.render(now);
    group.bench_function("store_render_unchanged", |b| {
        b.iter(|| black_box(store.render(now).len()))
    });

    let registry = Registry::new();
    let gauges: Vec<GaugeVec> = (0..SERIES_PER_PAGE)
        .map(|metric| {
            let gauge = GaugeVec::new(
                Opts::new(
                    format!("meta_page_metric_{metric}"),
                    "A Page insights metric.",
                ),
                &["page_id", "period"],
            )
            .expect("valid gauge");
            registry
                .register(Box::new(gauge.clone()))
                .expect("register");
            gauge
        })
        .collect();
    for page in 0..PAGES {
        let id = format!("10000000{page:07}");
        for (metric, gauge) in gauges.iter().enumerate() {
            gauge
                .with_label_values(&[id.as_str(), "day"])
                .set((page * metric) as f64);
        }
    }
    group.bench_function("prometheus_text_encoder", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(8 << 20);
            TextEncoder::new()
                .encode(&registry.gather(), &mut out)
                .expect("encode");
            black_box(out.len())
        })
    });
    group.finish();

    c.bench_function("encode_one_page_poll", |b| {
        b.iter(|| black_box(encode(page_families(42))))
    });
}

criterion_group!(benches, bench_scrape);
criterion_main!(benches);

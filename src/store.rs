//! The snapshot store: the last complete results of every target, ready to serve.
//!
//! Pollers publish each target's families already encoded, once per poll; a scrape then only
//! concatenates bytes, grouped by family so each HELP/TYPE header appears once. The rendered
//! body is cached and reused until something is published, removed or expires, so scrapes
//! between polls cost a reference-count increment. Each target has two slots: `Data` (the
//! API's numbers, which expire `stale_after` past the last success, so values a failing
//! target can no longer confirm disappear) and `Status` (the exporter's per-target series,
//! which stay while the target is configured). Replacing a slot replaces all its series, so a
//! breakdown value the API stops reporting disappears with the next poll.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use bytes::Bytes;
use tokio::time::Instant;

use crate::exposition::EncodedFamily;
use crate::target::TargetKey;

/// Which part of a target's series a publish replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    /// Status series about the target, kept while the target is configured.
    Status,
    /// Values from the API, dropped when they expire.
    Data,
}

/// A target's slot, shared by every family entry that holds one of its chunks: one
/// allocation per slot, not one `TargetKey` clone per family.
type SlotKey = Arc<(TargetKey, Slot)>;

#[derive(Default)]
struct FamilyEntry {
    header: String,
    /// Each slot's lines of this family: a slice of the slot's one text buffer.
    chunks: BTreeMap<SlotKey, Bytes>,
}

struct SlotEntry {
    /// The families the slot has lines in, sharing the names the family map holds.
    families: Vec<Arc<str>>,
    expires_at: Option<Instant>,
}

/// What the store holds, laid out for memory: at 100,000 series the per-series overhead is
/// what counts. Each published slot is one exact-size buffer of all its lines, which its
/// family entries slice without copying; names and slot keys are shared, not cloned.
#[derive(Default)]
struct Inner {
    families: BTreeMap<Arc<str>, FamilyEntry>,
    slots: HashMap<SlotKey, SlotEntry>,
}

struct Rendered {
    generation: u64,
    /// The earliest expiry among the slots this render included.
    valid_until: Option<Instant>,
    body: Bytes,
}

/// Shared, concurrently readable store of encoded families.
pub struct SnapshotStore {
    inner: Mutex<Inner>,
    generation: AtomicU64,
    rendered: ArcSwap<Rendered>,
}

impl Default for SnapshotStore {
    fn default() -> Self {
        Self::new()
    }
}

impl SnapshotStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            generation: AtomicU64::new(1),
            rendered: ArcSwap::from_pointee(Rendered {
                generation: 0,
                valid_until: None,
                body: Bytes::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing all data, so keep serving.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces a target's slot with `families`; `expires_at` drops them at that instant.
    pub fn publish(
        &self,
        target: &TargetKey,
        slot: Slot,
        families: Vec<EncodedFamily>,
        expires_at: Option<Instant>,
    ) {
        let key: SlotKey = Arc::new((target.clone(), slot));
        let size = families.iter().map(|family| family.lines.len()).sum();
        let mut text = Vec::with_capacity(size);
        let mut parts = Vec::with_capacity(families.len());
        for family in families {
            if family.lines.is_empty() {
                continue;
            }
            let start = text.len();
            text.extend_from_slice(family.lines.as_bytes());
            parts.push((family.name, family.header, start..text.len()));
        }
        let text = Bytes::from(text);

        let mut inner = self.lock();
        remove_slot(&mut inner, &key);
        let mut names = Vec::with_capacity(parts.len());
        for (name, header, range) in parts {
            let name = match inner.families.get_key_value(name.as_str()) {
                Some((shared, _)) => shared.clone(),
                None => Arc::from(name),
            };
            let entry = inner.families.entry(name.clone()).or_default();
            if entry.header != header {
                entry.header = header;
            }
            entry.chunks.insert(key.clone(), text.slice(range));
            names.push(name);
        }
        inner.slots.insert(
            key,
            SlotEntry {
                families: names,
                expires_at,
            },
        );
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Pushes the expiry of a slot back to `expires_at` (never earlier) without changing its
    /// contents; a slot that has already expired stays expired.
    pub fn extend(&self, target: &TargetKey, slot: Slot, expires_at: Instant) {
        let mut inner = self.lock();
        if let Some(entry) = inner.slots.get_mut(&(target.clone(), slot)) {
            if let Some(current) = entry.expires_at {
                if current > Instant::now() && expires_at > current {
                    entry.expires_at = Some(expires_at);
                    self.generation.fetch_add(1, Ordering::Release);
                }
            }
        }
    }

    /// Removes every series of a target (it left the config).
    pub fn remove_target(&self, target: &TargetKey) {
        let mut inner = self.lock();
        for slot in [Slot::Status, Slot::Data] {
            remove_slot(&mut inner, &(target.clone(), slot));
        }
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Whether a target currently has data series (not expired as of `now`).
    pub fn has_data(&self, target: &TargetKey, now: Instant) -> bool {
        let inner = self.lock();
        inner
            .slots
            .get(&(target.clone(), Slot::Data))
            .is_some_and(|entry| {
                !entry.families.is_empty() && entry.expires_at.is_none_or(|at| at > now)
            })
    }

    /// The exposition text of everything held, as of `now`.
    pub fn render(&self, now: Instant) -> Bytes {
        let cached = self.rendered.load();
        if cached.generation == self.generation.load(Ordering::Acquire)
            && cached.valid_until.is_none_or(|until| until > now)
        {
            return cached.body.clone();
        }

        let mut inner = self.lock();
        let expired: Vec<SlotKey> = inner
            .slots
            .iter()
            .filter(|(_, entry)| entry.expires_at.is_some_and(|at| at <= now))
            .map(|(key, _)| key.clone())
            .collect();
        for key in &expired {
            remove_slot(&mut inner, key);
        }
        // Read the generation under the lock: publishes also hold it, so the body below
        // matches exactly this generation.
        let generation = self.generation.load(Ordering::Acquire);
        let size: usize = inner
            .families
            .values()
            .map(|family| {
                family.header.len() + family.chunks.values().map(Bytes::len).sum::<usize>()
            })
            .sum();
        let mut body = Vec::with_capacity(size);
        let mut placed = Vec::new();
        for family in inner.families.values() {
            body.extend_from_slice(family.header.as_bytes());
            for chunk in family.chunks.values() {
                let start = body.len();
                body.extend_from_slice(chunk);
                placed.push(start..body.len());
            }
        }
        let body = Bytes::from(body);
        // Every chunk now points into the body instead of its own copy: the text of 100,000
        // series is held once, not twice, and a slot's own buffer goes as soon as its chunks
        // have moved. Same maps, same order, so the ranges line up.
        let mut placed = placed.into_iter();
        for family in inner.families.values_mut() {
            for chunk in family.chunks.values_mut() {
                if let Some(range) = placed.next() {
                    *chunk = body.slice(range);
                }
            }
        }
        let valid_until = inner
            .slots
            .values()
            .filter_map(|entry| entry.expires_at)
            .min();
        drop(inner);

        self.rendered.store(Arc::new(Rendered {
            generation,
            valid_until,
            body: body.clone(),
        }));
        body
    }
}

fn remove_slot(inner: &mut Inner, key: &(TargetKey, Slot)) {
    let Some(entry) = inner.slots.remove(key) else {
        return;
    };
    for name in entry.families {
        if let Some(family) = inner.families.get_mut(&*name) {
            family.chunks.remove(key);
            if family.chunks.is_empty() {
                inner.families.remove(&*name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::{encode, Family, Sample};
    use std::time::Duration;

    fn page(id: &str) -> TargetKey {
        TargetKey::page(id)
    }

    fn family(name: &str, id: &str, value: f64) -> Vec<EncodedFamily> {
        encode(vec![Family {
            name: name.into(),
            help: "h".into(),
            samples: vec![Sample {
                labels: vec![("page_id".into(), id.into())],
                value,
            }],
        }])
    }

    fn text(store: &SnapshotStore, now: Instant) -> String {
        String::from_utf8(store.render(now).to_vec()).expect("utf-8")
    }

    #[test]
    fn families_from_several_targets_share_one_header() {
        let store = SnapshotStore::new();
        let now = Instant::now();
        store.publish(&page("2"), Slot::Data, family("m", "2", 2.0), None);
        store.publish(&page("1"), Slot::Data, family("m", "1", 1.0), None);
        assert_eq!(
            text(&store, now),
            "# HELP m h\n# TYPE m gauge\nm{page_id=\"1\"} 1\nm{page_id=\"2\"} 2\n"
        );
    }

    #[test]
    fn publishing_replaces_the_slot_so_vanished_series_go() {
        let store = SnapshotStore::new();
        let now = Instant::now();
        store.publish(&page("1"), Slot::Data, family("old", "1", 1.0), None);
        store.publish(&page("1"), Slot::Data, family("new", "1", 1.0), None);
        let body = text(&store, now);
        assert!(!body.contains("old"));
        assert!(body.contains("new{"));
    }

    #[test]
    fn data_expires_but_status_stays() {
        let store = SnapshotStore::new();
        let now = Instant::now();
        store.publish(
            &page("1"),
            Slot::Data,
            family("data", "1", 1.0),
            Some(now + Duration::from_secs(10)),
        );
        store.publish(&page("1"), Slot::Status, family("status", "1", 1.0), None);
        assert!(text(&store, now).contains("data{"));
        assert!(store.has_data(&page("1"), now));
        let later = now + Duration::from_secs(10);
        let body = text(&store, later);
        assert!(!body.contains("data{"));
        assert!(body.contains("status{"));
        assert!(!store.has_data(&page("1"), later));
    }

    #[tokio::test(start_paused = true)]
    async fn extending_a_slot_keeps_its_data_longer_but_never_revives_it() {
        let store = SnapshotStore::new();
        let now = Instant::now();
        let soon = now + Duration::from_secs(10);
        store.publish(&page("1"), Slot::Data, family("data", "1", 1.0), Some(soon));
        store.extend(&page("1"), Slot::Data, now + Duration::from_secs(100));
        store.extend(&page("1"), Slot::Data, now + Duration::from_secs(50));
        assert!(store.has_data(&page("1"), now + Duration::from_secs(99)));
        assert!(!store.has_data(&page("1"), now + Duration::from_secs(100)));

        store.publish(&page("2"), Slot::Data, family("data", "2", 1.0), Some(soon));
        tokio::time::advance(Duration::from_secs(11)).await;
        store.extend(
            &page("2"),
            Slot::Data,
            Instant::now() + Duration::from_secs(100),
        );
        assert!(!store.has_data(&page("2"), Instant::now()));
    }

    #[test]
    fn after_a_render_the_text_is_held_once_in_the_body() {
        let store = SnapshotStore::new();
        let now = Instant::now();
        store.publish(&page("1"), Slot::Data, family("m", "1", 1.0), None);
        store.publish(&page("2"), Slot::Data, family("m", "2", 2.0), None);
        let body = store.render(now);
        let start = body.as_ptr() as usize;
        let inside = start..start + body.len();
        {
            let inner = store.lock();
            for chunk in inner.families.values().flat_map(|f| f.chunks.values()) {
                assert!(inside.contains(&(chunk.as_ptr() as usize)));
            }
        }
        // Chunks that moved into the body render the same text again.
        store.publish(&page("3"), Slot::Data, family("m", "3", 3.0), None);
        assert_eq!(
            text(&store, now),
            "# HELP m h\n# TYPE m gauge\nm{page_id=\"1\"} 1\nm{page_id=\"2\"} 2\nm{page_id=\"3\"} 3\n"
        );
    }

    #[test]
    fn an_unchanged_store_serves_the_cached_body() {
        let store = SnapshotStore::new();
        let now = Instant::now();
        store.publish(&page("1"), Slot::Data, family("m", "1", 1.0), None);
        let first = store.render(now);
        let second = store.render(now);
        assert_eq!(first.as_ptr(), second.as_ptr());
        store.remove_target(&page("1"));
        assert!(store.render(now).is_empty());
    }
}

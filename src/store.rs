//! The snapshot store: the last complete results of every target, ready to serve.
//!
//! Pollers publish each target's families already encoded, once per read of a poll; a scrape
//! then only concatenates bytes, grouped by family so each HELP/TYPE header appears once. The
//! rendered body is cached and reused until something is published, removed or expires, so
//! scrapes between polls cost a reference-count increment. Each target has a `Status` slot
//! (the exporter's per-target series, which stay while the target is configured) and one
//! `Data` slot per read of its poll (the API's numbers, which expire `stale_after` past that
//! read's last success, so values a failing read can no longer confirm disappear while the
//! target's other reads go on publishing). Replacing a slot replaces all its series, so a
//! breakdown value the API stops reporting disappears with the next poll.
//!
//! A render copies the whole body (12 MB at 100,000 series), so it never holds the lock that
//! publishes take: under the lock it only takes reference-counted handles to the chunks, then
//! concatenates them without it. A poll finishing during a slow render publishes at once.

use std::collections::BTreeMap;
use std::ops::Bound;
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
    /// Values from one read of the API (numbered by the poller), dropped when they expire.
    Data(u32),
}

/// A target's slot, shared by every family entry that holds one of its chunks: one
/// allocation per slot, not one `TargetKey` clone per family.
type SlotKey = Arc<(TargetKey, Slot)>;

#[derive(Default)]
struct FamilyEntry {
    header: Bytes,
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
/// family entries slice without copying; names and slot keys are shared, not cloned. Slots are
/// ordered by target, so a target's slots are one range.
#[derive(Default)]
struct Inner {
    families: BTreeMap<Arc<str>, FamilyEntry>,
    slots: BTreeMap<SlotKey, SlotEntry>,
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
    /// Held for a whole render (never by a publish), so concurrent scrapes that find the
    /// cache out of date build one body, not one each.
    rendering: Mutex<()>,
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
            rendering: Mutex::new(()),
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

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::Release);
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
            if entry.header != header.as_bytes() {
                entry.header = Bytes::from(header);
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
        self.changed();
    }

    /// Pushes the expiry of every data slot of a target back to `expires_at` (never earlier)
    /// without changing its contents; a slot that has already expired stays expired.
    pub fn extend_data(&self, target: &TargetKey, expires_at: Instant) {
        let now = Instant::now();
        let mut inner = self.lock();
        let mut extended = false;
        for (key, entry) in target_slots_mut(&mut inner, target) {
            if key.1 == Slot::Status {
                continue;
            }
            if let Some(current) = entry.expires_at {
                if current > now && expires_at > current {
                    entry.expires_at = Some(expires_at);
                    extended = true;
                }
            }
        }
        if extended {
            self.changed();
        }
    }

    /// Removes the data slots of a target that `keep` does not list: reads the target no
    /// longer makes take their series with them.
    pub fn retain_data(&self, target: &TargetKey, keep: &[Slot]) {
        let mut inner = self.lock();
        let gone: Vec<SlotKey> = target_slots(&inner, target)
            .filter(|key| key.1 != Slot::Status && !keep.contains(&key.1))
            .cloned()
            .collect();
        if gone.is_empty() {
            return;
        }
        for key in &gone {
            remove_slot(&mut inner, key);
        }
        self.changed();
    }

    /// Removes every series of a target (it left the config).
    pub fn remove_target(&self, target: &TargetKey) {
        let mut inner = self.lock();
        let gone: Vec<SlotKey> = target_slots(&inner, target).cloned().collect();
        for key in &gone {
            remove_slot(&mut inner, key);
        }
        self.changed();
    }

    /// Whether a target currently has data series (not expired as of `now`).
    pub fn has_data(&self, target: &TargetKey, now: Instant) -> bool {
        let inner = self.lock();
        let live = target_slots(&inner, target).any(|key| {
            key.1 != Slot::Status
                && inner.slots.get(key).is_some_and(|entry| {
                    !entry.families.is_empty() && entry.expires_at.is_none_or(|at| at > now)
                })
        });
        live
    }

    /// The exposition text of everything held, as of `now`.
    pub fn render(&self, now: Instant) -> Bytes {
        self.render_with(now, || {})
    }

    /// [`Self::render`], running `while_copying` after the body's parts were taken and before
    /// they are copied: tests use it to publish in the middle of a render.
    pub(crate) fn render_with(&self, now: Instant, while_copying: impl FnOnce()) -> Bytes {
        if let Some(body) = self.cached(now) {
            return body;
        }
        let _rendering = self
            .rendering
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Another scrape may have rendered while this one waited.
        if let Some(body) = self.cached(now) {
            return body;
        }

        let (generation, parts, valid_until) = self.parts(now);
        while_copying();
        let size = parts.iter().map(Bytes::len).sum();
        let mut body = Vec::with_capacity(size);
        let mut placed = Vec::with_capacity(parts.len());
        for part in &parts {
            let start = body.len();
            body.extend_from_slice(part);
            placed.push(start..body.len());
        }
        drop(parts);
        let body = Bytes::from(body);
        self.repoint(generation, &body, placed);
        self.rendered.store(Arc::new(Rendered {
            generation,
            valid_until,
            body: body.clone(),
        }));
        body
    }

    /// The body of the last render, if nothing changed or expired since: what a scrape gets
    /// without any copying.
    pub fn cached(&self, now: Instant) -> Option<Bytes> {
        let cached = self.rendered.load();
        (cached.generation == self.generation.load(Ordering::Acquire)
            && cached.valid_until.is_none_or(|until| until > now))
        .then(|| cached.body.clone())
    }

    /// Under the lock: drops what expired by `now` and takes a handle to every header and
    /// chunk in body order, with the generation they make and the earliest expiry left.
    fn parts(&self, now: Instant) -> (u64, Vec<Bytes>, Option<Instant>) {
        let mut inner = self.lock();
        let expired: Vec<SlotKey> = inner
            .slots
            .iter()
            .filter(|(_, entry)| entry.expires_at.is_some_and(|at| at <= now))
            .map(|(key, _)| key.clone())
            .collect();
        if !expired.is_empty() {
            for key in &expired {
                remove_slot(&mut inner, key);
            }
            self.changed();
        }
        // Read the generation under the lock: publishes also hold it, so the parts below
        // make exactly this generation.
        let generation = self.generation.load(Ordering::Acquire);
        let mut parts = Vec::new();
        for family in inner.families.values() {
            parts.push(family.header.clone());
            parts.extend(family.chunks.values().cloned());
        }
        let valid_until = inner
            .slots
            .values()
            .filter_map(|entry| entry.expires_at)
            .min();
        (generation, parts, valid_until)
    }

    /// Points every chunk into `body` instead of its own copy, when nothing changed since the
    /// parts were taken: the text of 100,000 series is held once, not twice, and a slot's own
    /// buffer goes as soon as its chunks have moved. Same maps, same order, so the ranges line
    /// up; after a change they would not, and the chunks keep their own buffers until the next
    /// render.
    fn repoint(&self, generation: u64, body: &Bytes, placed: Vec<std::ops::Range<usize>>) {
        let mut inner = self.lock();
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        let mut placed = placed.into_iter();
        for family in inner.families.values_mut() {
            if let Some(range) = placed.next() {
                family.header = body.slice(range);
            }
            for chunk in family.chunks.values_mut() {
                if let Some(range) = placed.next() {
                    *chunk = body.slice(range);
                }
            }
        }
    }
}

/// The keys of a target's slots, in order.
fn target_slots<'a>(inner: &'a Inner, target: &TargetKey) -> impl Iterator<Item = &'a SlotKey> {
    let start = (target.clone(), Slot::Status);
    let target = target.clone();
    inner
        .slots
        .range::<(TargetKey, Slot), _>((Bound::Included(&start), Bound::Unbounded))
        .map(|(key, _)| key)
        .take_while(move |key| key.0 == target)
}

fn target_slots_mut<'a>(
    inner: &'a mut Inner,
    target: &TargetKey,
) -> impl Iterator<Item = (&'a SlotKey, &'a mut SlotEntry)> {
    let start = (target.clone(), Slot::Status);
    let target = target.clone();
    inner
        .slots
        .range_mut::<(TargetKey, Slot), _>((Bound::Included(&start), Bound::Unbounded))
        .take_while(move |(key, _)| key.0 == target)
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
        store.publish(&page("2"), Slot::Data(0), family("m", "2", 2.0), None);
        store.publish(&page("1"), Slot::Data(0), family("m", "1", 1.0), None);
        assert_eq!(
            text(&store, now),
            "# HELP m h\n# TYPE m gauge\nm{page_id=\"1\"} 1\nm{page_id=\"2\"} 2\n"
        );
    }

    #[test]
    fn publishing_replaces_the_slot_so_vanished_series_go() {
        let store = SnapshotStore::new();
        let now = Instant::now();
        store.publish(&page("1"), Slot::Data(0), family("old", "1", 1.0), None);
        store.publish(&page("1"), Slot::Data(0), family("new", "1", 1.0), None);
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
            Slot::Data(0),
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
        store.publish(
            &page("1"),
            Slot::Data(0),
            family("data", "1", 1.0),
            Some(soon),
        );
        store.extend_data(&page("1"), now + Duration::from_secs(100));
        store.extend_data(&page("1"), now + Duration::from_secs(50));
        assert!(store.has_data(&page("1"), now + Duration::from_secs(99)));
        assert!(!store.has_data(&page("1"), now + Duration::from_secs(100)));

        store.publish(
            &page("2"),
            Slot::Data(0),
            family("data", "2", 1.0),
            Some(soon),
        );
        tokio::time::advance(Duration::from_secs(11)).await;
        store.extend_data(&page("2"), Instant::now() + Duration::from_secs(100));
        assert!(!store.has_data(&page("2"), Instant::now()));
    }

    #[test]
    fn after_a_render_the_text_is_held_once_in_the_body() {
        let store = SnapshotStore::new();
        let now = Instant::now();
        store.publish(&page("1"), Slot::Data(0), family("m", "1", 1.0), None);
        store.publish(&page("2"), Slot::Data(0), family("m", "2", 2.0), None);
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
        store.publish(&page("3"), Slot::Data(0), family("m", "3", 3.0), None);
        assert_eq!(
            text(&store, now),
            "# HELP m h\n# TYPE m gauge\nm{page_id=\"1\"} 1\nm{page_id=\"2\"} 2\nm{page_id=\"3\"} 3\n"
        );
    }

    #[test]
    fn an_unchanged_store_serves_the_cached_body() {
        let store = SnapshotStore::new();
        let now = Instant::now();
        store.publish(&page("1"), Slot::Data(0), family("m", "1", 1.0), None);
        let first = store.render(now);
        let second = store.render(now);
        assert_eq!(first.as_ptr(), second.as_ptr());
        store.remove_target(&page("1"));
        assert!(store.render(now).is_empty());
    }

    #[test]
    fn each_read_of_a_target_expires_on_its_own_and_retain_drops_reads_not_made() {
        let store = SnapshotStore::new();
        let now = Instant::now();
        let soon = now + Duration::from_secs(10);
        let later = now + Duration::from_secs(100);
        store.publish(&page("1"), Slot::Data(0), family("a", "1", 1.0), Some(soon));
        store.publish(
            &page("1"),
            Slot::Data(1),
            family("b", "1", 2.0),
            Some(later),
        );
        store.publish(
            &page("1"),
            Slot::Data(2),
            family("c", "1", 3.0),
            Some(later),
        );
        store.publish(
            &page("2"),
            Slot::Data(0),
            family("a", "2", 4.0),
            Some(later),
        );
        let body = text(&store, soon);
        assert!(!body.contains("a{page_id=\"1\"}"), "{body}");
        assert!(body.contains("b{page_id=\"1\"} 2"), "{body}");
        store.retain_data(&page("1"), &[Slot::Data(1)]);
        let body = text(&store, soon);
        assert!(!body.contains("c{"), "{body}");
        assert!(body.contains("b{page_id=\"1\"} 2"), "{body}");
        assert!(
            body.contains("a{page_id=\"2\"} 4"),
            "another target keeps its reads"
        );
        store.remove_target(&page("1"));
        assert!(!store.has_data(&page("1"), now));
        assert!(store.has_data(&page("2"), now));
    }

    #[test]
    fn a_publish_during_a_render_goes_through_and_shows_in_the_next_render() {
        let store = SnapshotStore::new();
        let now = Instant::now();
        store.publish(&page("1"), Slot::Data(0), family("m", "1", 1.0), None);
        let body = store.render_with(now, || {
            // Were the store's lock held while the body is copied, this would wait for it
            // (a std mutex re-locked on its own thread never returns).
            assert!(
                store.inner.try_lock().is_ok(),
                "the render holds no lock a publish needs"
            );
            store.publish(&page("2"), Slot::Data(0), family("m", "2", 2.0), None);
        });
        let body = String::from_utf8(body.to_vec()).expect("utf-8");
        assert_eq!(body, "# HELP m h\n# TYPE m gauge\nm{page_id=\"1\"} 1\n");
        assert_eq!(
            text(&store, now),
            "# HELP m h\n# TYPE m gauge\nm{page_id=\"1\"} 1\nm{page_id=\"2\"} 2\n"
        );
    }
}

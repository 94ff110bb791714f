//! What discovery has found, and the targets that makes.
//!
//! Each source keeps its own list: Pages, and the accounts of each business. A successful run
//! adds what it lists and counts a miss for every entry it does not; an entry goes once it has
//! been missed by [`MISSES_BEFORE_REMOVAL`] successful runs in a row, so one short answer (Meta
//! leaves out a Page during an incident, a list is cut at its page limit) does not blank
//! dashboards. A failed run changes nothing. Targets are made at merge time from the current
//! config's defaults and filters, so a reload that changes them applies to what is already
//! known, without waiting for the next run; a listed target with the same id wins.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use super::sources::{Found, FoundPage, FoundWaba};
use super::task::Report;
use super::SourceKind;
use crate::config::{Config, Credentials, Origin};
use crate::target::Target;

/// How many successful runs in a row must miss an entry before its target is removed.
pub const MISSES_BEFORE_REMOVAL: u32 = 2;

#[derive(Debug, Clone)]
struct Entry<T> {
    item: T,
    misses: u32,
}

/// One source's entries by id.
#[derive(Debug, Clone)]
struct Tracked<T>(BTreeMap<String, Entry<T>>);

impl<T> Default for Tracked<T> {
    fn default() -> Self {
        Self(BTreeMap::new())
    }
}

impl<T: Clone + PartialEq> Tracked<T> {
    /// Takes one successful answer; `true` when the set of entries or any entry changed.
    fn record(&mut self, found: &Found<T>, id: impl Fn(&T) -> &str) -> bool {
        let mut changed = false;
        let listed: HashSet<&str> = found.items.iter().map(&id).collect();
        if found.complete {
            // Only a list read to its end says anything about what it did not list.
            self.0.retain(|key, entry| {
                if listed.contains(key.as_str()) {
                    return true;
                }
                entry.misses += 1;
                let keep = entry.misses < MISSES_BEFORE_REMOVAL;
                changed |= !keep;
                keep
            });
        }
        for item in &found.items {
            match self.0.get_mut(id(item)) {
                Some(entry) => {
                    entry.misses = 0;
                    if entry.item != *item {
                        entry.item = item.clone();
                        changed = true;
                    }
                }
                None => {
                    self.0.insert(
                        id(item).to_owned(),
                        Entry {
                            item: item.clone(),
                            misses: 0,
                        },
                    );
                    changed = true;
                }
            }
        }
        changed
    }

    fn items(&self) -> impl Iterator<Item = &T> {
        self.0.values().map(|entry| &entry.item)
    }
}

/// Everything discovery has found and not yet given up on.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pages: Tracked<FoundPage>,
    businesses: BTreeMap<String, Tracked<FoundWaba>>,
}

/// The discovered targets of a merge, and how many came from each source.
#[derive(Debug, Clone, Default)]
pub struct Discovered {
    /// Targets made from discovery, static ids left out.
    pub targets: Vec<Target>,
    /// How many of them each source gave.
    pub per_source: BTreeMap<SourceKind, usize>,
}

impl Inventory {
    /// Takes a run's report; `true` when the discovered targets may have changed.
    pub fn record(&mut self, report: &Report) -> bool {
        match report {
            Report::Pages { result, .. } => match result {
                Ok(found) => self.pages.record(found, |page| &page.id),
                Err(_) => false,
            },
            Report::WhatsappBusinessAccounts { results, .. } => {
                let mut changed = false;
                for (business_id, result) in results {
                    if let Ok(found) = result {
                        changed |= self
                            .businesses
                            .entry(business_id.clone())
                            .or_default()
                            .record(found, |waba| &waba.id);
                    }
                }
                changed
            }
        }
    }

    /// Forgets sources the config no longer has, so re-adding one later starts afresh
    /// instead of resurrecting what it listed long ago.
    pub fn retain_configured(&mut self, config: &Config) {
        let discovery = config.discovery.as_ref();
        if discovery.and_then(|d| d.pages.as_ref()).is_none() {
            self.pages = Tracked::default();
        }
        let businesses: HashSet<&str> = discovery
            .and_then(|d| d.whatsapp_business_accounts.as_ref())
            .map(|wabas| wabas.business_ids.iter().map(String::as_str).collect())
            .unwrap_or_default();
        self.businesses
            .retain(|id, _| businesses.contains(id.as_str()));
    }

    /// The targets discovery adds to `config`'s own: each found object its filter admits and
    /// the config does not list, set up from the source's defaults.
    pub fn targets(&self, config: &Config) -> Discovered {
        let mut discovered = Discovered::default();
        let Some(discovery) = &config.discovery else {
            return discovered;
        };
        if let Some(pages) = &discovery.pages {
            let listed: HashSet<&str> = config.pages.iter().map(|p| p.id.as_str()).collect();
            for page in self.pages.items() {
                if listed.contains(page.id.as_str())
                    || !pages.filter.admits(&page.id, page.name.as_deref())
                {
                    continue;
                }
                let mut target = pages.defaults.clone();
                target.id.clone_from(&page.id);
                target.credentials = Credentials {
                    token: page.token.clone(),
                    file: None,
                };
                target.name.clone_from(&page.name);
                target.origin = Origin::Discovered;
                discovered.targets.push(Target::Page(target));
                *discovered.per_source.entry(SourceKind::Pages).or_default() += 1;
            }
        }
        if let Some(wabas) = &discovery.whatsapp_business_accounts {
            let mut taken: HashSet<&str> = config
                .whatsapp_business_accounts
                .iter()
                .map(|w| w.id.as_str())
                .collect();
            for business_id in &wabas.business_ids {
                let Some(found) = self.businesses.get(business_id) else {
                    continue;
                };
                for waba in found.items() {
                    // An account both owned by one business and shared with another is one
                    // target; `insert` is false the second time.
                    if !wabas.filter.admits(&waba.id, waba.name.as_deref())
                        || !taken.insert(waba.id.as_str())
                    {
                        continue;
                    }
                    let mut target = wabas.defaults.clone();
                    target.id.clone_from(&waba.id);
                    target.origin = Origin::Discovered;
                    discovered.targets.push(Target::Waba(target));
                    *discovered
                        .per_source
                        .entry(SourceKind::WhatsappBusinessAccounts)
                        .or_default() += 1;
                }
            }
        }
        discovered
    }
}

/// What the status page and the self-metrics say about one source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceState {
    /// What is read, e.g. `GET /me/accounts` or `business 123`.
    pub label: String,
    /// When it last ran (unix seconds).
    pub last_run: Option<i64>,
    /// When it last succeeded (unix seconds).
    pub last_success: Option<i64>,
    /// Why the last run failed, if it did.
    pub last_error: Option<String>,
    /// Objects the last successful run listed.
    pub listed: usize,
    /// Entries the last successful run skipped, with why.
    pub skipped: Vec<String>,
    /// Whether the last successful list was read to its end.
    pub complete: bool,
}

/// Discovery's state for the status page, one row per source (Pages; each business).
#[derive(Debug, Default)]
pub struct DiscoveryBoard {
    inner: Mutex<BoardState>,
}

#[derive(Debug, Default)]
struct BoardState {
    /// Whether the running config has `discovery` at all.
    configured: bool,
    sources: BTreeMap<String, SourceState>,
}

impl DiscoveryBoard {
    fn lock(&self) -> MutexGuard<'_, BoardState> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a run's report.
    pub fn record(&self, report: &Report) {
        let mut board = self.lock();
        let sources = &mut board.sources;
        let mut apply = |label: String, at: i64, result: Result<(usize, &[String], bool), &str>| {
            let state = sources.entry(label.clone()).or_default();
            state.label = label;
            state.last_run = Some(at);
            match result {
                Ok((listed, skipped, complete)) => {
                    state.last_success = Some(at);
                    state.last_error = None;
                    state.listed = listed;
                    state.skipped = skipped.to_vec();
                    state.complete = complete;
                }
                Err(error) => state.last_error = Some(error.to_owned()),
            }
        };
        match report {
            Report::Pages { at, result } => apply(
                "GET /me/accounts".to_owned(),
                *at,
                result
                    .as_ref()
                    .map(|found| (found.items.len(), found.skipped.as_slice(), found.complete))
                    .map_err(String::as_str),
            ),
            Report::WhatsappBusinessAccounts { at, results } => {
                for (business_id, result) in results {
                    apply(
                        format!("business {business_id}"),
                        *at,
                        result
                            .as_ref()
                            .map(|found| {
                                (found.items.len(), found.skipped.as_slice(), found.complete)
                            })
                            .map_err(String::as_str),
                    );
                }
            }
        }
    }

    /// Keeps only the rows of sources `config` has, and notes whether it has discovery.
    pub fn retain_configured(&self, config: &Config) {
        let mut wanted = HashSet::new();
        if let Some(discovery) = &config.discovery {
            if discovery.pages.is_some() {
                wanted.insert("GET /me/accounts".to_owned());
            }
            if let Some(wabas) = &discovery.whatsapp_business_accounts {
                wanted.extend(wabas.business_ids.iter().map(|id| format!("business {id}")));
            }
        }
        let mut board = self.lock();
        board.configured = config.discovery.is_some();
        board.sources.retain(|label, _| wanted.contains(label));
    }

    /// Every source's state, sorted by label; `None` when discovery is not configured.
    pub fn snapshot(&self) -> Option<Vec<SourceState>> {
        let board = self.lock();
        board
            .configured
            .then(|| board.sources.values().cloned().collect())
    }
}

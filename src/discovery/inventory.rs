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
use std::sync::{Arc, Mutex, MutexGuard};

#[cfg(test)]
use super::sources::Relation;
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
                discovered.targets.push(Target::Page(Arc::new(target)));
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
                    discovered.targets.push(Target::Waba(Arc::new(target)));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_yaml;
    use crate::secret::AccessToken;
    use std::path::Path;

    fn config(extra: &str) -> Config {
        let yaml = format!(
            "graph_api:\n  access_token: system-token\n{extra}discovery:\n  pages:\n    exclude: [Staging]\n  whatsapp_business_accounts:\n    business_ids: [\"1\", \"2\"]\n"
        );
        from_yaml(&yaml, "test", &|_: &str| None, Path::new(".")).expect("valid config")
    }

    fn page(id: &str, name: &str) -> FoundPage {
        FoundPage {
            id: id.to_owned(),
            name: Some(name.to_owned()),
            token: AccessToken::new(format!("page-token-{id}")),
        }
    }

    fn pages(items: Vec<FoundPage>, complete: bool) -> Report {
        Report::Pages {
            at: 0,
            result: Ok(Found {
                items,
                complete,
                skipped: Vec::new(),
            }),
        }
    }

    fn ids(inventory: &Inventory, config: &Config) -> Vec<String> {
        inventory
            .targets(config)
            .targets
            .iter()
            .map(|target| target.key().id)
            .collect()
    }

    #[test]
    fn an_entry_goes_after_two_successful_runs_miss_it_and_failures_and_cut_lists_count_nothing() {
        let config = config("");
        let mut inventory = Inventory::default();
        assert!(inventory.record(&pages(vec![page("1", "A"), page("2", "B")], true)));
        assert!(
            !inventory.record(&pages(vec![page("1", "A")], true)),
            "one miss keeps it"
        );
        assert_eq!(ids(&inventory, &config), vec!["1", "2"]);
        assert!(!inventory.record(&Report::Pages {
            at: 0,
            result: Err("down".into())
        }));
        assert!(
            !inventory.record(&pages(vec![page("1", "A")], false)),
            "a cut list says nothing"
        );
        assert_eq!(ids(&inventory, &config), vec!["1", "2"]);
        assert!(
            inventory.record(&pages(vec![page("1", "A")], true)),
            "the second miss"
        );
        assert_eq!(ids(&inventory, &config), vec!["1"]);
        // Back after a miss: the count starts again.
        inventory.record(&pages(vec![page("1", "A"), page("2", "B")], true));
        inventory.record(&pages(vec![page("2", "B")], true));
        inventory.record(&pages(vec![page("1", "A"), page("2", "B")], true));
        inventory.record(&pages(vec![page("2", "B")], true));
        assert_eq!(ids(&inventory, &config), vec!["1", "2"]);
    }

    #[test]
    fn discovered_pages_use_their_own_token_and_name_and_a_listed_page_wins() {
        let config = config("pages:\n  - id: \"2\"\n");
        let mut inventory = Inventory::default();
        inventory.record(&pages(
            vec![page("1", "A"), page("2", "B"), page("3", "Staging shop")],
            true,
        ));
        let discovered = inventory.targets(&config);
        assert_eq!(discovered.per_source.get(&SourceKind::Pages), Some(&1));
        let [Target::Page(target)] = discovered.targets.as_slice() else {
            panic!("one discovered Page: {:?}", discovered.targets);
        };
        assert_eq!(target.id, "1");
        assert_eq!(target.credentials.token.expose(), "page-token-1");
        assert_eq!(target.name.as_deref(), Some("A"));
        assert_eq!(target.origin, Origin::Discovered);
        // A renamed Page is a change.
        assert!(inventory.record(&pages(vec![page("1", "A2"), page("2", "B")], true)));
    }

    #[test]
    fn an_account_of_two_businesses_is_one_target_and_a_failing_business_keeps_its_own() {
        let config = config("");
        let waba = |id: &str, relation| FoundWaba {
            id: id.to_owned(),
            name: None,
            relation,
        };
        let found = |items| {
            Ok(Found {
                items,
                complete: true,
                skipped: Vec::new(),
            })
        };
        let mut inventory = Inventory::default();
        inventory.record(&Report::WhatsappBusinessAccounts {
            at: 0,
            results: vec![
                (
                    "1".into(),
                    found(vec![
                        waba("W1", Relation::Owned),
                        waba("W2", Relation::Client),
                    ]),
                ),
                (
                    "2".into(),
                    found(vec![
                        waba("W2", Relation::Owned),
                        waba("W3", Relation::Owned),
                    ]),
                ),
            ],
        });
        assert_eq!(ids(&inventory, &config), vec!["W1", "W2", "W3"]);
        for _ in 0..2 {
            inventory.record(&Report::WhatsappBusinessAccounts {
                at: 0,
                results: vec![
                    ("1".into(), Err("down".into())),
                    ("2".into(), found(vec![waba("W2", Relation::Owned)])),
                ],
            });
        }
        assert_eq!(ids(&inventory, &config), vec!["W1", "W2"]);
        // A business the config drops takes its accounts with it.
        let mut config = config;
        if let Some(wabas) = config
            .discovery
            .as_mut()
            .and_then(|d| d.whatsapp_business_accounts.as_mut())
        {
            wabas.business_ids = vec!["2".into()];
        }
        inventory.retain_configured(&config);
        assert_eq!(ids(&inventory, &config), vec!["W2"]);
    }
}

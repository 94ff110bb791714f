//! `discovery`: its interval, the token it lists with, the include/exclude patterns and the
//! defaults every discovered target is polled with.
//!
//! Defaults take any key the matching target list takes, and are checked by the same rules,
//! so a discovered Page is configured exactly like a listed one; only `id` and the token are
//! refused there, since discovery supplies both.

use super::*;
use crate::config::raw::{RawDiscovery, RawPageDiscovery, RawWabaDiscovery, StringOrInteger};
use crate::config::{
    DiscoveryConfig, DiscoveryFilter, PageDiscovery, Pattern, WabaDiscovery,
    DEFAULT_DISCOVERY_INTERVAL,
};

/// Discovery runs list every Page and account each time; more often than this spends calls
/// on answers that change when someone edits Business Settings.
const MIN_DISCOVERY_INTERVAL: Duration = Duration::from_secs(60);
/// The id a defaults block is checked with; discovery replaces it.
const PLACEHOLDER_ID: &str = "0";

impl Checker<'_> {
    pub(super) fn discovery(
        &mut self,
        raw: RawDiscovery,
        inherited: &Inherited,
    ) -> Checked<DiscoveryConfig> {
        let interval = self.discovery_interval(raw.interval.as_deref());
        let credentials = match &inherited.credentials {
            Ok(Some(credentials)) => Ok(credentials.clone()),
            Ok(None) => Err(self.problem(
                "discovery",
                "needs graph_api.access_token or graph_api.access_token_file: discovery lists \
                 Pages and WhatsApp Business Accounts with that token",
            )),
            Err(reported) => Err(*reported),
        };
        if raw.pages.is_none() && raw.whatsapp_business_accounts.is_none() {
            self.warn(
                "discovery",
                "has neither pages nor whatsapp_business_accounts, so it finds nothing",
            );
        }
        let pages = match raw.pages {
            None => Ok(None),
            Some(raw) => self.page_discovery(raw, inherited).map(Some),
        };
        let wabas = match raw.whatsapp_business_accounts {
            None => Ok(None),
            Some(raw) => self.waba_discovery(raw, inherited).map(Some),
        };
        Ok(DiscoveryConfig {
            interval: interval?,
            credentials: credentials?,
            pages: pages?,
            whatsapp_business_accounts: wabas?,
        })
    }

    fn discovery_interval(&mut self, raw: Option<&str>) -> Checked<Duration> {
        let key = "discovery.interval";
        let interval = self
            .duration(key, raw)?
            .unwrap_or(DEFAULT_DISCOVERY_INTERVAL);
        if interval < MIN_DISCOVERY_INTERVAL {
            return Err(self.problem(
                key,
                format!(
                    "must be at least {}, not {}",
                    human(MIN_DISCOVERY_INTERVAL),
                    human(interval)
                ),
            ));
        }
        Ok(interval)
    }

    fn page_discovery(
        &mut self,
        raw: RawPageDiscovery,
        inherited: &Inherited,
    ) -> Checked<PageDiscovery> {
        let key = "discovery.pages";
        let filter = self.discovery_filter(key, raw.include, raw.exclude);
        let defaults_key = format!("{key}.defaults");
        let defaults = self
            .defaults::<RawPage>(&defaults_key, raw.defaults)
            .and_then(|raw| {
                let id = Ok(PLACEHOLDER_ID.to_owned());
                self.page(&defaults_key, id, raw, &with_any_token(inherited))
            })
            .map(|mut defaults| {
                defaults.origin = Origin::Discovered;
                defaults
            });
        Ok(PageDiscovery {
            filter: filter?,
            defaults: defaults?,
        })
    }

    fn waba_discovery(
        &mut self,
        raw: RawWabaDiscovery,
        inherited: &Inherited,
    ) -> Checked<WabaDiscovery> {
        let key = "discovery.whatsapp_business_accounts";
        let business_ids = self.business_ids(&format!("{key}.business_ids"), raw.business_ids);
        let filter = self.discovery_filter(key, raw.include, raw.exclude);
        let defaults_key = format!("{key}.defaults");
        let defaults = self
            .defaults::<RawWaba>(&defaults_key, raw.defaults)
            .and_then(|raw| {
                let id = Ok(PLACEHOLDER_ID.to_owned());
                self.waba(&defaults_key, id, raw, &with_any_token(inherited))
            })
            .map(|mut defaults| {
                defaults.origin = Origin::Discovered;
                defaults
            });
        Ok(WabaDiscovery {
            business_ids: business_ids?,
            filter: filter?,
            defaults: defaults?,
        })
    }

    fn business_ids(
        &mut self,
        key: &str,
        raw: Option<Vec<StringOrInteger>>,
    ) -> Checked<Vec<String>> {
        let ids: Vec<String> = raw.unwrap_or_default().into_iter().map(|id| id.0).collect();
        if ids.is_empty() {
            return Err(self.problem(
                key,
                "is missing or empty: name the businesses (Business Manager ids) whose owned and \
                 client WhatsApp Business Accounts are discovered",
            ));
        }
        self.list(key, &ids, "business id", |checker, key, id| {
            if super::graph_api::is_digits(&id) {
                Ok(id)
            } else {
                Err(checker.problem(key, format!("{id:?} is not a business id (digits only)")))
            }
        })
    }

    fn discovery_filter(
        &mut self,
        key: &str,
        include: Option<Vec<String>>,
        exclude: Option<Vec<String>>,
    ) -> Checked<DiscoveryFilter> {
        let include = self.patterns(&format!("{key}.include"), include.unwrap_or_default());
        let exclude = self.patterns(&format!("{key}.exclude"), exclude.unwrap_or_default());
        Ok(DiscoveryFilter {
            include: include?,
            exclude: exclude?,
        })
    }

    fn patterns(&mut self, key: &str, raw: Vec<String>) -> Checked<Vec<Pattern>> {
        let checked: Vec<Checked<Pattern>> = raw
            .iter()
            .enumerate()
            .map(|(index, text)| {
                let key = format!("{key}[{index}]");
                let text = self.expand(&key, text)?;
                regex::Regex::new(&text).map(Pattern).map_err(|error| {
                    self.problem(
                        &key,
                        format!("{text:?} is not a regular expression: {error}"),
                    )
                })
            })
            .collect();
        checked.into_iter().collect()
    }

    /// A defaults block as the raw target entry it stands for, with a placeholder id. `id`
    /// and the token keys are refused by name: discovery supplies both.
    fn defaults<T: serde::de::DeserializeOwned>(
        &mut self,
        key: &str,
        raw: Option<serde_yaml::Mapping>,
    ) -> Checked<T> {
        let mut mapping = raw.unwrap_or_default();
        for refused in ["id", "access_token", "access_token_file"] {
            if mapping.contains_key(refused) {
                let why = if refused == "id" {
                    "ids come from discovery"
                } else {
                    "discovered Pages are polled with the Page token Meta lists for each, and \
                     discovered WhatsApp accounts with the graph_api token"
                };
                return Err(self.problem(
                    &format!("{key}.{refused}"),
                    format!("cannot be set here: {why}"),
                ));
            }
        }
        mapping.insert("id".into(), PLACEHOLDER_ID.into());
        serde_yaml::from_value(serde_yaml::Value::Mapping(mapping))
            .map_err(|error| self.problem(key, error.to_string()))
    }
}

/// What a defaults block inherits: the usual settings, with a token even when `graph_api`
/// has none (its absence is reported once, at `discovery`), so the block's own keys are still
/// checked. The token is replaced for every discovered target.
fn with_any_token(inherited: &Inherited) -> Inherited {
    let credentials = match &inherited.credentials {
        Ok(Some(credentials)) => credentials.clone(),
        _ => Credentials {
            token: AccessToken::new("replaced-by-discovery"),
            file: None,
        },
    };
    Inherited {
        credentials: Ok(Some(credentials)),
        stale_after_intervals: inherited.stale_after_intervals,
    }
}

//! What the scheduler polls: one enum over the four target kinds, and their identity.

use std::fmt;
use std::sync::Arc;

use crate::config::{CampaignTarget, PageTarget, WabaTarget};
use crate::config::{Config, Credentials, Origin, Schedule};

/// The kind of a target; the `kind` label on per-target metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TargetKind {
    /// A Facebook Page.
    Page,
    /// A marketing-message campaign.
    Campaign,
    /// A WhatsApp Business Account.
    WhatsappBusinessAccount,
    /// An ad account (`act_<id>`).
    AdAccount,
}

impl TargetKind {
    /// Stable label value.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Page => "page",
            TargetKind::Campaign => "campaign",
            TargetKind::WhatsappBusinessAccount => "whatsapp_business_account",
            TargetKind::AdAccount => "ad_account",
        }
    }

    /// Every kind, in display order.
    pub const ALL: [TargetKind; 4] = [
        TargetKind::Page,
        TargetKind::Campaign,
        TargetKind::WhatsappBusinessAccount,
        TargetKind::AdAccount,
    ];
}

/// Whether `id` can go into a request path as one segment (letters, digits, `_`, `.`, `-`, and
/// not `.` or `..`, which a URL would read as steps): the rule for listed ids and for ids in
/// discovery answers alike.
pub fn is_path_segment(id: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    !id.is_empty() && id.chars().all(allowed) && id != "." && id != ".."
}

/// A target's identity: ids are unique within a kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetKey {
    /// Kind.
    pub kind: TargetKind,
    /// Graph object id.
    pub id: String,
}

#[cfg(test)]
impl TargetKey {
    /// The key of Page `id`, for tests.
    pub(crate) fn page(id: &str) -> TargetKey {
        TargetKey {
            kind: TargetKind::Page,
            id: id.into(),
        }
    }
}

impl fmt::Display for TargetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.id)
    }
}

/// One configured target.
///
/// Each variant shares its settings: the scheduler's record, the task's watch channel and the
/// poller hold the same allocation, so 10,000 targets cost one copy of their settings beside
/// the config's, not one per holder. A token rotation copies only the target it changes.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A Page.
    Page(Arc<PageTarget>),
    /// A campaign.
    Campaign(Arc<CampaignTarget>),
    /// A WhatsApp Business Account.
    Waba(Arc<WabaTarget>),
    /// An ad account, polled like a campaign at `act_<id>/insights`.
    AdAccount(Arc<CampaignTarget>),
}

impl Target {
    /// Every target the config lists, Pages first (discovered ones come from
    /// [`crate::discovery`]).
    pub fn all(config: &Config) -> Vec<Target> {
        config
            .pages
            .iter()
            .cloned()
            .map(Target::Page)
            .chain(config.campaigns.iter().cloned().map(Target::Campaign))
            .chain(
                config
                    .whatsapp_business_accounts
                    .iter()
                    .cloned()
                    .map(Target::Waba),
            )
            .chain(config.ad_accounts.iter().cloned().map(Target::AdAccount))
            .collect()
    }

    /// Identity.
    pub fn key(&self) -> TargetKey {
        let (kind, id) = match self {
            Target::Page(t) => (TargetKind::Page, &t.id),
            Target::Campaign(t) => (TargetKind::Campaign, &t.id),
            Target::Waba(t) => (TargetKind::WhatsappBusinessAccount, &t.id),
            Target::AdAccount(t) => (TargetKind::AdAccount, &t.id),
        };
        TargetKey {
            kind,
            id: id.clone(),
        }
    }

    /// Interval and staleness.
    pub fn schedule(&self) -> &Schedule {
        match self {
            Target::Page(t) => &t.schedule,
            Target::Campaign(t) => &t.schedule,
            Target::Waba(t) => &t.schedule,
            Target::AdAccount(t) => &t.schedule,
        }
    }

    /// Token.
    pub fn credentials(&self) -> &Credentials {
        match self {
            Target::Page(t) => &t.credentials,
            Target::Campaign(t) => &t.credentials,
            Target::Waba(t) => &t.credentials,
            Target::AdAccount(t) => &t.credentials,
        }
    }

    /// The token, to replace.
    pub fn credentials_mut(&mut self) -> &mut Credentials {
        match self {
            Target::Page(t) => &mut Arc::make_mut(t).credentials,
            Target::Campaign(t) => &mut Arc::make_mut(t).credentials,
            Target::Waba(t) => &mut Arc::make_mut(t).credentials,
            Target::AdAccount(t) => &mut Arc::make_mut(t).credentials,
        }
    }

    /// Where the target came from.
    pub fn origin(&self) -> Origin {
        match self {
            Target::Page(t) => t.origin,
            Target::Waba(t) => t.origin,
            Target::Campaign(_) | Target::AdAccount(_) => Origin::Static,
        }
    }

    /// Whether `other` asks the same things on the same schedule, whatever token each uses
    /// and whatever name discovery gave it: a target whose only change is its credentials or
    /// its name keeps its task, schedule and series.
    pub fn same_settings(&self, other: &Target) -> bool {
        let mut other = other.clone();
        other.credentials_mut().clone_from(self.credentials());
        if let (Target::Page(mine), Target::Page(theirs)) = (self, &mut other) {
            Arc::make_mut(theirs).name.clone_from(&mine.name);
        }
        *self == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Granularity, WabaTarget};
    use crate::secret::AccessToken;
    use std::time::Duration;

    fn waba(token: &str, interval: u64) -> Target {
        Target::Waba(Arc::new(WabaTarget {
            id: "1".into(),
            credentials: Credentials {
                token: AccessToken::new(token),
                file: None,
            },
            schedule: Schedule {
                interval: Duration::from_secs(interval),
                stale_after: Duration::from_secs(3 * interval),
            },
            granularity: Granularity::Day,
            phone_numbers: Vec::new(),
            country_codes: Vec::new(),
            pricing: None,
            conversations: None,
            templates: None,
            phone_numbers_health: false,
            origin: Origin::Static,
        }))
    }

    #[test]
    fn a_new_token_keeps_the_settings_and_a_new_interval_does_not() {
        assert!(waba("a", 60).same_settings(&waba("b", 60)));
        assert!(!waba("a", 60).same_settings(&waba("a", 120)));
    }
}

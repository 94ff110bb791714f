//! Discovery: the Pages and WhatsApp Business Accounts a token can reach, found through the
//! Graph API instead of listed in the config.
//!
//! - [`sources`]: the reads (`GET /me/accounts`, a business's owned and client accounts) and
//!   what their answers mean.
//! - [`inventory`]: what has been found so far, the rule that a target must be missing from
//!   two successful runs in a row before it goes, and the targets it makes (static ones win).
//! - [`task`]: the background loop that runs every source once per `discovery.interval`.
//!
//! The loop only reports; the inventory lives with the rest of the running config in
//! [`crate::app`], which merges it with the listed targets and hands the result to the
//! scheduler, so discovered targets start, change and stop by the same rules as a reload.

pub mod inventory;
pub mod sources;
pub mod task;

pub use self::inventory::{DiscoveryBoard, Inventory, SourceState};
pub use self::sources::{FoundPage, FoundWaba, Relation};
pub use self::task::Report;

/// The `source` label of the discovery self-metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    /// `discovery.pages`.
    Pages,
    /// `discovery.whatsapp_business_accounts`.
    WhatsappBusinessAccounts,
}

impl SourceKind {
    /// Every source.
    pub const ALL: [SourceKind; 2] = [SourceKind::Pages, SourceKind::WhatsappBusinessAccounts];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Pages => "pages",
            SourceKind::WhatsappBusinessAccounts => "whatsapp_business_accounts",
        }
    }
}

/// The sources a `discovery` section has.
pub fn configured_sources(config: &crate::config::DiscoveryConfig) -> Vec<SourceKind> {
    let mut sources = Vec::new();
    if config.pages.is_some() {
        sources.push(SourceKind::Pages);
    }
    if config.whatsapp_business_accounts.is_some() {
        sources.push(SourceKind::WhatsappBusinessAccounts);
    }
    sources
}

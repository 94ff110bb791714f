//! What a WABA cannot give, as a state rather than a failure.
//!
//! Template analytics must be confirmed on the account (an irreversible step the exporter
//! never takes itself) and do not exist for businesses in the EU, UK or Japan; costs do not
//! exist for accounts billed through a solution partner. None of these is an outage: the rest
//! of the account exports, the state is shown, and the exporter stops asking for what it cannot
//! have. A state is asked about again after [`ASK_AGAIN_AFTER`], since accounts change
//! (template analytics confirmed, billing moved), and a config change starts afresh because it
//! builds a new poller.

use std::collections::BTreeMap;

use crate::graph::GraphError;

/// How long a feature found unavailable stays out of requests.
pub const ASK_AGAIN_AFTER: i64 = 24 * 3600;

/// A part of a WABA's data that Meta does not provide for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Feature {
    /// `template_analytics`.
    TemplateAnalytics,
    /// Costs in pricing, conversation and template analytics.
    Cost,
}

impl Feature {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Feature::TemplateAnalytics => "template_analytics",
            Feature::Cost => "cost",
        }
    }
}

/// Why, in Meta's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Template analytics not confirmed on the account.
    NotEnabled,
    /// Template analytics not offered in the business's region.
    RegionUnavailable,
    /// Billed through a solution partner, so Meta has no cost for it.
    PartnerBilled,
}

impl Reason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotEnabled => "not_enabled",
            Reason::RegionUnavailable => "region_unavailable",
            Reason::PartnerBilled => "partner_billed",
        }
    }
}

/// Which feature a Graph error says is unavailable, if it says so.
///
/// Meta signals these with code 100 and a message, not with a code of their own, so the
/// message is what there is to go by; anything not recognised stays an ordinary failure.
pub fn recognise(error: &GraphError) -> Option<(Feature, Reason)> {
    let api = error.api_error()?;
    let message = api.message.to_ascii_lowercase();
    if message.contains("cost not available") || message.contains("cost is not available") {
        return Some((Feature::Cost, Reason::PartnerBilled));
    }
    if message.contains("template analytics") || message.contains("template_analytics") {
        if message.contains("not enabled") || message.contains("is_enabled_for_insights") {
            return Some((Feature::TemplateAnalytics, Reason::NotEnabled));
        }
        if message.contains("not available") {
            return Some((Feature::TemplateAnalytics, Reason::RegionUnavailable));
        }
    }
    None
}

/// The features found unavailable, each with why and since when (unix seconds).
#[derive(Debug, Default)]
pub struct Unavailability(BTreeMap<Feature, (Reason, i64)>);

impl Unavailability {
    /// Whether `feature` stays out of requests at `now`.
    pub fn excludes(&self, feature: Feature, now: i64) -> bool {
        self.0
            .get(&feature)
            .is_some_and(|(_, since)| now < since.saturating_add(ASK_AGAIN_AFTER))
    }

    /// Records that `feature` is unavailable, found at `now`.
    pub fn mark(&mut self, feature: Feature, reason: Reason, now: i64) {
        self.0.insert(feature, (reason, now));
    }

    /// Records that `feature` was answered for: it is available after all.
    pub fn clear(&mut self, feature: Feature) {
        self.0.remove(&feature);
    }

    /// Every state, for status and metrics; one being asked about again is still listed
    /// until the answer says otherwise.
    pub fn list(&self) -> Vec<crate::poller::Unavailable> {
        self.0
            .iter()
            .map(|(feature, (reason, since))| crate::poller::Unavailable {
                scope: crate::poller::UnavailableScope::Feature,
                feature: feature.as_str(),
                reason: reason.as_str(),
                since: *since,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::ApiError;

    fn api(message: &str) -> GraphError {
        GraphError::Api {
            status: 400,
            error: ApiError {
                message: message.to_owned(),
                kind: None,
                code: 100,
                error_subcode: None,
                is_transient: None,
                fbtrace_id: None,
            },
        }
    }

    #[test]
    fn meta_messages_are_recognised_and_others_are_not() {
        assert_eq!(
            recognise(&api("(#100) Cost not available for this WhatsApp Business Account: it is billed through a solution partner")),
            Some((Feature::Cost, Reason::PartnerBilled))
        );
        assert_eq!(
            recognise(&api("(#100) Template analytics is not enabled for this WhatsApp Business Account. Confirm it in WhatsApp Manager or with is_enabled_for_insights=true")),
            Some((Feature::TemplateAnalytics, Reason::NotEnabled))
        );
        assert_eq!(
            recognise(&api("(#100) Template analytics is not available for WhatsApp Business Accounts of businesses in the EU, UK or Japan")),
            Some((Feature::TemplateAnalytics, Reason::RegionUnavailable))
        );
        assert_eq!(
            recognise(&api("(#100) The parameter start is invalid")),
            None
        );
        assert_eq!(recognise(&GraphError::Transport("reset".into())), None);
    }

    #[test]
    fn a_state_keeps_the_feature_out_for_a_day_then_it_is_asked_again() {
        let mut states = Unavailability::default();
        states.mark(Feature::Cost, Reason::PartnerBilled, 1000);
        assert!(states.excludes(Feature::Cost, 1000 + ASK_AGAIN_AFTER - 1));
        assert!(!states.excludes(Feature::Cost, 1000 + ASK_AGAIN_AFTER));
        assert!(!states.excludes(Feature::TemplateAnalytics, 1000));
        assert_eq!(states.list()[0].reason, "partner_billed");
        states.clear(Feature::Cost);
        assert!(states.list().is_empty());
    }
}

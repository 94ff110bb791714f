//! Which permissions each target kind needs, and which of them a token lacks.
//!
//! The lists are what the exporter's reads need, per Meta's reference for each path: Page
//! messaging insights need the Page permissions, campaign and ad-account insights `ads_read`, WhatsApp
//! analytics `whatsapp_business_management`. A token used by several kinds needs the union.

use std::collections::BTreeSet;

use crate::discovery::SourceKind;
use crate::target::TargetKind;

/// The permissions a target of `kind` needs from its token.
pub fn required_scopes(kind: TargetKind) -> &'static [&'static str] {
    match kind {
        TargetKind::Page => &[
            "pages_messaging",
            "pages_read_engagement",
            "pages_show_list",
            "read_insights",
        ],
        TargetKind::Campaign | TargetKind::AdAccount => &["ads_read"],
        TargetKind::WhatsappBusinessAccount => &["whatsapp_business_management"],
    }
}

/// The permissions discovery needs from the `graph_api` token to read `source`: listing a
/// user's Pages, and a business's WhatsApp accounts.
pub fn discovery_scopes(source: SourceKind) -> &'static [&'static str] {
    match source {
        SourceKind::Pages => &["pages_show_list"],
        SourceKind::WhatsappBusinessAccounts => {
            &["business_management", "whatsapp_business_management"]
        }
    }
}

/// The permissions that targets of `kinds` need and `granted` lacks, sorted.
pub fn missing_scopes<'a>(
    kinds: impl IntoIterator<Item = &'a TargetKind>,
    granted: &BTreeSet<String>,
) -> Vec<&'static str> {
    missing_for_uses(kinds, std::iter::empty(), granted)
}

/// The permissions that targets of `kinds` and discovery of `sources` need and `granted`
/// lacks, sorted.
pub fn missing_for_uses<'a>(
    kinds: impl IntoIterator<Item = &'a TargetKind>,
    sources: impl IntoIterator<Item = &'a SourceKind>,
    granted: &BTreeSet<String>,
) -> Vec<&'static str> {
    let needed: BTreeSet<&'static str> = kinds
        .into_iter()
        .flat_map(|kind| required_scopes(*kind).iter().copied())
        .chain(
            sources
                .into_iter()
                .flat_map(|source| discovery_scopes(*source).iter().copied()),
        )
        .collect();
    needed
        .into_iter()
        .filter(|scope| !granted.contains(*scope))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_needs_its_own_permissions_beside_the_targets() {
        let granted = granted(&["whatsapp_business_management", "pages_show_list"]);
        assert_eq!(
            missing_for_uses(
                &[TargetKind::WhatsappBusinessAccount],
                &[SourceKind::Pages, SourceKind::WhatsappBusinessAccounts],
                &granted
            ),
            vec!["business_management"]
        );
    }

    fn granted(scopes: &[&str]) -> BTreeSet<String> {
        scopes.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_token_used_by_several_kinds_needs_the_union_and_extra_scopes_do_not_matter() {
        let kinds = [TargetKind::Page, TargetKind::WhatsappBusinessAccount];
        assert_eq!(
            missing_scopes(
                &kinds,
                &granted(&["pages_messaging", "read_insights", "email"])
            ),
            [
                "pages_read_engagement",
                "pages_show_list",
                "whatsapp_business_management"
            ]
        );
        assert!(missing_scopes(
            &[TargetKind::Campaign],
            &granted(&["ads_read", "business_management"])
        )
        .is_empty());
        assert_eq!(
            missing_scopes(&[TargetKind::Campaign], &granted(&[])),
            ["ads_read"]
        );
    }

    #[test]
    fn every_kind_needs_something() {
        for kind in [
            TargetKind::Page,
            TargetKind::Campaign,
            TargetKind::WhatsappBusinessAccount,
        ] {
            assert!(!required_scopes(kind).is_empty(), "{kind:?}");
        }
    }
}

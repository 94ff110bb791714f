//! Which permissions each target kind needs, and which of them a token lacks.
//!
//! The lists are what the exporter's reads need, per Meta's reference for each path: Page
//! messaging insights need the Page permissions, campaign and ad-account insights `ads_read`, WhatsApp
//! analytics `whatsapp_business_management`. A token used by several kinds needs the union.

use std::collections::BTreeSet;

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

/// The permissions that targets of `kinds` need and `granted` lacks, sorted.
pub fn missing_scopes<'a>(
    kinds: impl IntoIterator<Item = &'a TargetKind>,
    granted: &BTreeSet<String>,
) -> Vec<&'static str> {
    let needed: BTreeSet<&'static str> = kinds
        .into_iter()
        .flat_map(|kind| required_scopes(*kind).iter().copied())
        .collect();
    needed
        .into_iter()
        .filter(|scope| !granted.contains(*scope))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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

//! How the simulated Marketing API treats the version a campaign or ad-account call names, by
//! Meta's schedule (graph-api.md 7.1, compiled into [`crate::catalog::versions`]) and the
//! simulator's clock.
//!
//! - An expired version is, as on Meta since May 2024, auto-upgraded: served by the oldest
//!   newer version still working, which `facebook-api-version` names, with an
//!   `X-Ad-Api-Version-Warning` in Meta's wording. An object made with
//!   [`super::FakeGraphApi::reject_expired_marketing_version`] plays an endpoint that a
//!   breaking change of the newer version touches: Meta answers those with error 2635 instead.
//! - A version Meta has given an end date but that still works is upgraded early to the next
//!   version, with the warning saying it "will be deprecated": the live header seen on
//!   2026-09-08 for v25.0, months before its end, and a Graph changelog snapshot saying
//!   auto-upgrade "launches 2026-07-29" (graph-api.md 7.1; inferred, the sources are thin). Such
//!   a version is still served, so nothing is rejected before its end.
//! - A version without an end date answers as itself.
//!
//! Graph API paths (Pages, WhatsApp) are left alone, as on Meta, which
//! serves them on an expired version silently and only `facebook-api-version` tells.

use chrono::DateTime;

use super::faults::Fault;
use crate::catalog::versions::{self, Api};

/// What the Marketing API does with a call on `version` at unix time `now`.
#[derive(Debug)]
pub(super) enum Treatment {
    /// Answered as asked.
    AsAsked,
    /// Answered by `served`, with these headers.
    Upgraded(Vec<(String, String)>),
    /// Refused with error 2635.
    Rejected(Fault),
}

/// The treatment of a Marketing API call on `version` at `now`; `rejects` when the object
/// plays an endpoint an upgrade would break.
pub(super) fn treat(version: &str, now: i64, rejects: bool) -> Treatment {
    let Some(today) = DateTime::from_timestamp(now, 0).map(|time| time.date_naive()) else {
        return Treatment::AsAsked;
    };
    if let Some(served) = versions::upgraded(Api::Marketing, version, today) {
        if rejects {
            return Treatment::Rejected(Fault::Graph {
                status: 400,
                code: 2635,
                subcode: None,
                message: format!(
                    "(#2635) You are calling a deprecated version of the Ads API. Please update to the latest version: {}.",
                    versions::newest()
                ),
                is_transient: false,
            });
        }
        let warning =
            format!("The call has been auto-upgraded to {served} as {version} has been deprecated");
        return upgraded(served, warning);
    }
    let dated = matches!(versions::end(Api::Marketing, version), versions::End::On(_));
    match versions::successor(version) {
        Some(next) if dated && today >= EARLY_UPGRADES_FROM => {
            let warning = format!(
                "The call has been auto-upgraded to {next} as {version} will be deprecated."
            );
            upgraded(next, warning)
        }
        _ => Treatment::AsAsked,
    }
}

/// The day Meta's changelog says auto-upgrade "launches" (v26.0's release).
const EARLY_UPGRADES_FROM: chrono::NaiveDate = match chrono::NaiveDate::from_ymd_opt(2026, 7, 29) {
    Some(day) => day,
    None => panic!("a calendar date"),
};

fn upgraded(served: String, warning: String) -> Treatment {
    Treatment::Upgraded(vec![
        ("facebook-api-version".to_owned(), served),
        ("X-Ad-Api-Version-Warning".to_owned(), warning),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-04 00:00 UTC.
    const TODAY: i64 = 1_796_342_400;

    #[test]
    fn a_version_without_an_end_date_answers_as_itself() {
        assert!(matches!(treat("v26.0", TODAY, true), Treatment::AsAsked));
        assert!(matches!(treat("v27.0", TODAY, false), Treatment::AsAsked));
    }

    #[test]
    fn a_dated_version_that_still_works_is_upgraded_early_and_never_rejected() {
        // The live header of 2026-09-08 (graph-api.md 7.1).
        let Treatment::Upgraded(headers) = treat("v25.0", TODAY, true) else {
            panic!("v25.0 has an end date and a successor");
        };
        assert_eq!(
            headers[0],
            ("facebook-api-version".to_owned(), "v26.0".to_owned())
        );
        assert_eq!(
            headers[1].1,
            "The call has been auto-upgraded to v26.0 as v25.0 will be deprecated."
        );
        // Before the day auto-upgrade launched, it answered as itself.
        let before = TODAY - 200 * 86_400;
        assert!(matches!(treat("v25.0", before, false), Treatment::AsAsked));
    }

    #[test]
    fn an_expired_version_is_upgraded_with_metas_warning_or_rejected_with_2635() {
        let Treatment::Upgraded(headers) = treat("v23.0", TODAY, false) else {
            panic!("v23.0 left the Marketing API on 2026-06-09");
        };
        assert_eq!(
            headers,
            [
                ("facebook-api-version".to_owned(), "v25.0".to_owned()),
                (
                    "X-Ad-Api-Version-Warning".to_owned(),
                    "The call has been auto-upgraded to v25.0 as v23.0 has been deprecated"
                        .to_owned()
                ),
            ]
        );
        let Treatment::Rejected(Fault::Graph { code, message, .. }) = treat("v24.0", TODAY, true)
        else {
            panic!("an object that rejects gets 2635");
        };
        assert_eq!(code, 2635);
        assert!(
            message.ends_with("Please update to the latest version: v27.0."),
            "{message}"
        );
    }
}

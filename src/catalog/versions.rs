//! Meta's Graph API versions and the day each stops working, separately for the Graph API
//! and the Marketing API.
//!
//! Both APIs ship the same version numbers on the same day, but the Marketing API retires
//! them years sooner (graph-api.md 7.1), so one version can be fine for Page and WhatsApp
//! reads and already dead for campaign reads. Config validation uses the table to pick the
//! default and `--config.check` and start-up use it to warn before a pinned version stops
//! answering; nothing here calls Meta, so the table is only as fresh as this release.

use chrono::NaiveDate;

/// The version a config gets when it names none: the newest whose changes break none of the
/// exporter's reads. v27.0 deprecates multi-ID calls, date formatting, method override, field
/// aliases, JSONP and asynchronous batch (graph-api.md 7.9); the exporter uses none of them
/// (its batches are synchronous), and the WhatsApp messaging-limit field it reads exists from
/// v24.0.
pub const DEFAULT_VERSION: &str = "v27.0";

/// How many days before a version's end `--config.check` and start-up begin to warn: Meta
/// gives a Marketing API version at least 90 days after its successor ships, so this is the
/// whole notice Meta itself gives.
pub const WARN_DAYS: i64 = 90;

/// Which of Meta's two API families a read belongs to; they expire versions separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Api {
    /// Page insights, WhatsApp, discovery, `debug_token`.
    Graph,
    /// Campaign and ad-account insights and their name reads.
    Marketing,
}

impl Api {
    /// Both, in label order.
    pub const ALL: [Api; 2] = [Api::Graph, Api::Marketing];

    /// Stable label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Graph => "graph",
            Api::Marketing => "marketing",
        }
    }

    /// How people name it in messages.
    pub fn title(self) -> &'static str {
        match self {
            Api::Graph => "Graph API",
            Api::Marketing => "Marketing API",
        }
    }
}

/// When a version stops working in one API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Meta has set no date yet ("TBD"), or the version is newer than this table.
    NotSet,
    /// The last day Meta lists for it.
    On(NaiveDate),
    /// Gone on a day Meta's current pages no longer list.
    Expired,
}

/// One row of Meta's version schedule.
#[derive(Debug, Clone, Copy)]
struct Row {
    version: (u32, u32),
    graph: End,
    marketing: End,
}

const fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(year, month, day) {
        Some(date) => date,
        None => panic!("a calendar date"),
    }
}

/// graph-api.md 7.1 as of 2026-12-04, oldest first. v20.0's Marketing API date is not on
/// Meta's pages any more, but it went before v21.0's (2025-09-09). For v24.0 the Marketing API
/// pages disagree (2026-10-06 or 2026-11-10); the later one is kept so no warning comes early.
const ROWS: &[Row] = &[
    row(20, date(2026, 9, 24), End::Expired),
    row(21, date(2027, 1, 21), End::On(date(2025, 9, 9))),
    row(22, date(2027, 5, 20), End::On(date(2026, 2, 19))),
    row(23, date(2027, 10, 8), End::On(date(2026, 6, 9))),
    row(24, date(2028, 2, 18), End::On(date(2026, 11, 10))),
    row(25, date(2028, 7, 29), End::On(date(2027, 2, 23))),
    Row {
        version: (26, 0),
        graph: End::NotSet,
        marketing: End::NotSet,
    },
    Row {
        version: (27, 0),
        graph: End::NotSet,
        marketing: End::NotSet,
    },
];

const fn row(major: u32, graph: NaiveDate, marketing: End) -> Row {
    Row {
        version: (major, 0),
        graph: End::On(graph),
        marketing,
    }
}

/// `(major, minor)` of a `vMAJOR.MINOR` version, or `None` if it is not one.
pub fn parse(version: &str) -> Option<(u32, u32)> {
    let (major, minor) = version.strip_prefix('v')?.split_once('.')?;
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !digits(major) || !digits(minor) {
        return None;
    }
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// When `version` stops working in `api`. A version older than every row went before the
/// oldest row did; one newer than every row has no date yet, as far as this release knows.
pub fn end(api: Api, version: &str) -> End {
    let Some(number) = parse(version) else {
        return End::NotSet;
    };
    let pick = |row: &Row| match api {
        Api::Graph => row.graph,
        Api::Marketing => row.marketing,
    };
    match ROWS.iter().find(|row| row.version == number) {
        Some(row) => pick(row),
        None if ROWS.first().is_some_and(|oldest| number < oldest.version) => End::Expired,
        None => End::NotSet,
    }
}

/// The version Meta serves an expired `version` of `api` with on `today`: the oldest newer
/// one still working (Meta's upgrades chain over several expired versions, graph-api.md 7.1).
/// `None` for a version that has not expired, or one this release cannot read.
pub fn upgraded(api: Api, version: &str, today: NaiveDate) -> Option<String> {
    let number = parse(version)?;
    if !matches!(standing(api, version, today), Standing::Expired { .. }) {
        return None;
    }
    ROWS.iter()
        .map(|row| row.version)
        .filter(|&newer| newer > number)
        .map(written)
        .find(|newer| !matches!(standing(api, newer, today), Standing::Expired { .. }))
}

/// The field that holds a WhatsApp messaging limit on `version`: Meta added
/// `whatsapp_business_manager_messaging_limit` (the business portfolio's limit) in v24.0 and
/// tells older versions to ask `messaging_limit_tier`; a version that names a field it does
/// not know fails the whole request (graph-api.md 7.3). A version this release cannot read is
/// taken as a new one.
pub fn messaging_limit_field(version: &str) -> &'static str {
    match parse(version) {
        Some(number) if number < (24, 0) => "messaging_limit_tier",
        _ => "whatsapp_business_manager_messaging_limit",
    }
}

/// The version after `version` in Meta's schedule, if this release knows one.
pub fn successor(version: &str) -> Option<String> {
    let number = parse(version)?;
    ROWS.iter()
        .map(|row| row.version)
        .find(|&newer| newer > number)
        .map(written)
}

/// The newest version this release knows, as Meta's 2635 message names it.
pub fn newest() -> String {
    ROWS.last()
        .map_or_else(|| DEFAULT_VERSION.to_owned(), |row| written(row.version))
}

/// `(major, minor)` as Meta writes it, `vMAJOR.MINOR`.
fn written((major, minor): (u32, u32)) -> String {
    format!("v{major}.{minor}")
}

/// What a configured version's end means on `today`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// No end within [`WARN_DAYS`], or none set.
    Current,
    /// Ends on `on`, `days` from today (0 = today is its last day).
    EndsSoon {
        /// The last day.
        on: NaiveDate,
        /// Days left.
        days: i64,
    },
    /// Past its end; `on` when Meta lists the day.
    Expired {
        /// The last day, if known.
        on: Option<NaiveDate>,
    },
}

/// Where `version` stands in `api` on `today`.
pub fn standing(api: Api, version: &str, today: NaiveDate) -> Standing {
    match end(api, version) {
        End::NotSet => Standing::Current,
        End::Expired => Standing::Expired { on: None },
        End::On(on) if on < today => Standing::Expired { on: Some(on) },
        End::On(on) => {
            let days = (on - today).num_days();
            if days <= WARN_DAYS {
                Standing::EndsSoon { on, days }
            } else {
                Standing::Current
            }
        }
    }
}

/// A sentence for a user about `key` = `version` in `api` on `today`, or `None` when there
/// is nothing to say. Expired versions and versions near their end are both described.
pub fn notice(api: Api, key: &str, version: &str, today: NaiveDate) -> Option<String> {
    let title = api.title();
    match standing(api, version, today) {
        Standing::Current => None,
        Standing::EndsSoon { on, days } => Some(format!(
            "{key}: {version} stops working in the {title} on {on} ({days} days from now); \
             move to a newer version before then"
        )),
        Standing::Expired { on } => {
            let when = on.map_or_else(|| "already".to_owned(), |on| format!("on {on}"));
            let effect = match api {
                // Graph serves an expired version as the next usable one, silently.
                Api::Graph => "Meta answers with a newer version, which can change the answers",
                // The Marketing API auto-upgrades some endpoints and fails others with 2635.
                Api::Marketing => "Meta upgrades some calls and rejects others (error 2635)",
            };
            Some(format!(
                "{key}: {version} expired in the {title} {when}; {effect}; \
                 set a supported version such as {DEFAULT_VERSION}"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_version_is_served_by_the_oldest_newer_one_still_working() {
        let today = date(2026, 12, 4);
        // v23.0 and v24.0 are both gone from the Marketing API: the upgrade chains to v25.0.
        assert_eq!(
            upgraded(Api::Marketing, "v23.0", today).as_deref(),
            Some("v25.0")
        );
        assert_eq!(
            upgraded(Api::Marketing, "v24.0", today).as_deref(),
            Some("v25.0")
        );
        assert_eq!(upgraded(Api::Marketing, "v25.0", today), None);
        // After v25.0's end (2027-02-23) it chains on to v26.0.
        assert_eq!(
            upgraded(Api::Marketing, "v23.0", date(2027, 3, 1)).as_deref(),
            Some("v26.0")
        );
        // The Graph API keeps v23.0 until 2027-10-08; v20.0 went in 2026-09.
        assert_eq!(upgraded(Api::Graph, "v23.0", today), None);
        assert_eq!(
            upgraded(Api::Graph, "v20.0", today).as_deref(),
            Some("v21.0")
        );
        assert_eq!(upgraded(Api::Marketing, "latest", today), None);
        assert_eq!(newest(), "v27.0");
        assert_eq!(successor("v25.0").as_deref(), Some("v26.0"));
        assert_eq!(successor("v27.0"), None);
    }

    #[test]
    fn the_messaging_limit_field_follows_the_version() {
        assert_eq!(messaging_limit_field("v23.0"), "messaging_limit_tier");
        assert_eq!(messaging_limit_field("v21.0"), "messaging_limit_tier");
        for version in ["v24.0", "v27.0", "v30.1"] {
            assert_eq!(
                messaging_limit_field(version),
                "whatsapp_business_manager_messaging_limit",
                "{version}"
            );
        }
    }

    #[test]
    fn the_default_version_is_in_the_table_and_has_not_expired_in_either_api() {
        let today = date(2026, 12, 4);
        for api in Api::ALL {
            assert_eq!(standing(api, DEFAULT_VERSION, today), Standing::Current);
        }
    }

    #[test]
    fn v23_is_expired_for_marketing_but_fine_for_graph_on_the_day_of_the_table() {
        let today = date(2026, 12, 4);
        assert_eq!(
            standing(Api::Marketing, "v23.0", today),
            Standing::Expired {
                on: Some(date(2026, 6, 9))
            }
        );
        assert_eq!(standing(Api::Graph, "v23.0", today), Standing::Current);
    }

    #[test]
    fn v25_ends_soon_for_marketing_within_ninety_days_of_its_end() {
        let today = date(2026, 12, 4);
        assert_eq!(
            standing(Api::Marketing, "v25.0", today),
            Standing::EndsSoon {
                on: date(2027, 2, 23),
                days: 81
            }
        );
    }

    #[test]
    fn the_last_day_itself_still_counts_as_working() {
        assert_eq!(
            standing(Api::Marketing, "v25.0", date(2027, 2, 23)),
            Standing::EndsSoon {
                on: date(2027, 2, 23),
                days: 0
            }
        );
        assert!(matches!(
            standing(Api::Marketing, "v25.0", date(2027, 2, 24)),
            Standing::Expired { .. }
        ));
    }

    #[test]
    fn versions_older_than_the_table_are_expired_and_newer_ones_have_no_date() {
        assert_eq!(end(Api::Graph, "v19.0"), End::Expired);
        assert_eq!(end(Api::Marketing, "v2.3"), End::Expired);
        assert_eq!(end(Api::Graph, "v28.0"), End::NotSet);
        assert_eq!(end(Api::Marketing, "v26.0"), End::NotSet);
    }

    #[test]
    fn notices_name_the_key_and_the_api() {
        let today = date(2026, 12, 4);
        let expired = notice(
            Api::Marketing,
            "graph_api.marketing_version",
            "v23.0",
            today,
        )
        .expect("expired");
        assert!(expired.starts_with(
            "graph_api.marketing_version: v23.0 expired in the Marketing API on 2026-06-09"
        ));
        assert!(notice(Api::Graph, "graph_api.version", "v27.0", today).is_none());
    }

    #[test]
    fn the_table_is_in_version_order() {
        assert!(ROWS
            .windows(2)
            .all(|pair| pair[0].version < pair[1].version));
        assert_eq!(
            ROWS.last().map(|row| row.version),
            parse(DEFAULT_VERSION),
            "the default is the newest version listed"
        );
    }
}

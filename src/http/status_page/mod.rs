//! The landing page: a status page read at a glance, for a handful of targets or 10,000.
//!
//! A summary first (targets per state, and per kind and state), then the filter form and one
//! page of target rows, failing and disabled targets first, each with its name, state, times
//! and what went wrong in Meta's words ([`targets`]); then discovery ([`discovery`]) and the
//! tokens in use ([`tokens`]). It is server-rendered HTML with inline styles and no external
//! assets ([`frame`]), every value from the config or the Graph API escaped ([`format`]).
//! All of the exporter's HTML lives in this folder; the modules whose state it shows only
//! hand over data.

mod discovery;
mod format;
mod frame;
mod targets;
mod tokens;

pub use self::targets::{TargetFilter, ROWS_PER_PAGE};

use crate::discovery::SourceState;
use crate::graph::solo::SoloTarget;
use crate::shard::Shard;
use crate::status::TargetStatus;
use crate::target::TargetKey;
use crate::token_health::TokenReport;

/// What the page shows: the state of everything, read once per render.
pub struct PageInputs<'a> {
    /// Every target with its status, in the board's order (kind, then id).
    pub targets: &'a [(TargetKey, TargetStatus)],
    /// Each discovery source's state; `None` when discovery is off.
    pub discovery: Option<&'a [SourceState]>,
    /// The wall clock, unix seconds.
    pub now: i64,
    /// Where `/metrics` is served (`--web.telemetry-path`).
    pub telemetry_path: &'a str,
    /// The tokens in use and what Meta said of them.
    pub tokens: &'a TokenReport,
    /// Which shard this instance is.
    pub shard: Shard,
    /// The targets polled alone in the slow lane.
    pub solo: &'a [SoloTarget],
}

/// The page for `inputs`, with the rows `filter` admits.
pub fn status_page(inputs: &PageInputs<'_>, filter: &TargetFilter) -> String {
    let rows = inputs.targets.len().min(ROWS_PER_PAGE);
    let mut page = String::with_capacity(8192 + 400 * rows);
    frame::head(&mut page, inputs);
    targets::summary(&mut page, inputs, filter);
    targets::table(&mut page, inputs, filter);
    discovery::section(&mut page, inputs.discovery, inputs.now);
    page.push_str(&tokens::section(inputs.tokens, inputs.now));
    frame::foot(&mut page);
    page
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::config::Origin;
    use crate::graph::solo::SoloReason;
    use crate::status::{LastError, State as TargetState};
    use crate::target::TargetKind;

    const NOW: i64 = 1_790_000_000;

    fn inputs<'a>(
        targets: &'a [(TargetKey, TargetStatus)],
        discovery: Option<&'a [SourceState]>,
        telemetry_path: &'a str,
        tokens: &'a TokenReport,
    ) -> PageInputs<'a> {
        PageInputs {
            targets,
            discovery,
            now: NOW,
            telemetry_path,
            tokens,
            shard: Shard::default(),
            solo: &[],
        }
    }

    /// The page of a single instance without token health, at `NOW`, unfiltered.
    fn render(
        targets: &[(TargetKey, TargetStatus)],
        discovery: Option<&[SourceState]>,
        telemetry_path: &str,
    ) -> String {
        let tokens = TokenReport::default();
        status_page(
            &inputs(targets, discovery, telemetry_path, &tokens),
            &TargetFilter::default(),
        )
    }

    fn filtered(targets: &[(TargetKey, TargetStatus)], query: &[(&str, &str)]) -> String {
        let query: BTreeMap<String, String> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let filter = TargetFilter::from_query(&query).expect("a valid query");
        let tokens = TokenReport::default();
        status_page(&inputs(targets, None, "/metrics", &tokens), &filter)
    }

    fn status(state: TargetState) -> TargetStatus {
        TargetStatus {
            state,
            ..TargetStatus::new(Duration::from_secs(900))
        }
    }

    fn key(kind: TargetKind, id: &str) -> TargetKey {
        TargetKey {
            kind,
            id: id.to_owned(),
        }
    }

    fn error(class: &'static str, message: &str) -> LastError {
        LastError {
            class,
            code: Some(190),
            message: message.to_owned(),
            at: NOW - 5,
        }
    }

    /// The ids of the rows, in page order.
    fn row_ids(page: &str) -> Vec<String> {
        page.split("<td class=\"id\">")
            .skip(1)
            .map(|rest| rest.split(['<', ' ']).next().unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn a_poll_pushed_out_by_the_rate_limiter_says_so() {
        let paused = TargetStatus {
            next_poll: Some(NOW + 600),
            backoff: Duration::from_secs(120),
            ..status(TargetState::Failing)
        };
        let page = render(&[(key(TargetKind::Page, "1"), paused)], None, "/metrics");
        assert!(
            page.contains("<td>in 10 minutes <small>(rate limit: +2 minutes)</small></td>"),
            "{page}"
        );
    }

    #[test]
    fn a_waba_spaced_under_its_budget_and_its_unavailable_features_say_so() {
        let spaced = TargetStatus {
            next_poll: Some(NOW + 600),
            backoff: Duration::from_secs(120),
            backoff_reason: Some("whatsapp_budget"),
            unavailable: vec![crate::poller::Unavailable {
                scope: crate::poller::UnavailableScope::Feature,
                feature: "template_analytics",
                reason: "not_enabled",
                since: NOW - 60,
            }],
            ..status(TargetState::Ok)
        };
        let page = render(
            &[(key(TargetKind::WhatsappBusinessAccount, "W1"), spaced)],
            None,
            "/metrics",
        );
        assert!(
            page.contains("(spaced under rate_limits.whatsapp_calls_per_hour: +2 minutes)"),
            "{page}"
        );
        assert!(
            page.contains("not offered by Meta for this account, not asked for: template_analytics (not enabled)"),
            "{page}"
        );
    }

    #[test]
    fn health_in_metas_words_is_on_the_page_escaped() {
        let blocked = TargetStatus {
            health: vec![crate::convert::whatsapp::health::Entity {
                entity_type: "WABA".to_owned(),
                id: "W1".to_owned(),
                can_send_message: "BLOCKED".to_owned(),
                error_codes: vec![141006],
                notes: vec!["There is an error with the <payment> method.".to_owned()],
            }],
            ..status(TargetState::Ok)
        };
        let page = render(
            &[(key(TargetKind::WhatsappBusinessAccount, "W1"), blocked)],
            None,
            "/metrics",
        );
        assert!(
            page.contains("health: WABA W1 is BLOCKED (error 141006): There is an error with the &lt;payment&gt; method."),
            "{page}"
        );
    }

    #[test]
    fn the_summary_counts_by_state_and_kind_and_each_row_shows_name_state_times_and_error() {
        let ok = TargetStatus {
            name: Some("Acme Support".to_owned()),
            last_poll: Some(NOW - 62),
            last_success: Some(NOW - 61),
            next_poll: Some(NOW + 838),
            ..status(TargetState::Ok)
        };
        let disabled = TargetStatus {
            disabled_reason: Some("invalid_token"),
            last_poll: Some(NOW - 5),
            last_error: Some(error("invalid_token", "Error validating access token")),
            ..status(TargetState::Disabled)
        };
        let targets = vec![
            (key(TargetKind::Page, "PAGE1"), ok),
            (key(TargetKind::Campaign, "C1"), disabled),
            (
                key(TargetKind::WhatsappBusinessAccount, "W1"),
                status(TargetState::Pending),
            ),
        ];
        let page = render(&targets, None, "/metrics");
        assert!(page.contains("<strong>3 targets:</strong> <a class=\"badge failing\" href=\"?state=failing\">0 failing</a><a class=\"badge disabled\" href=\"?state=disabled\">1 disabled</a><a class=\"badge partial\" href=\"?state=partial\">0 partial</a><a class=\"badge pending\" href=\"?state=pending\">1 pending</a><a class=\"badge ok\" href=\"?state=ok\">1 ok</a>"), "{page}");
        // Per kind and state, each count a link to its rows.
        assert!(page.contains("<tr><td>campaign</td><td class=\"muted\">0</td><td><a href=\"?state=disabled&amp;kind=campaign\">1</a></td>"), "{page}");
        assert!(page.contains("<tr class=\"row-ok\"><td>page</td><td class=\"id\">PAGE1<br><span class=\"name\">Acme Support</span></td><td><span class=\"badge ok\">ok</span></td><td>15 min</td><td>1 minute ago</td><td>in 13 minutes</td><td></td></tr>"), "{page}");
        assert!(page.contains("<tr class=\"row-disabled\"><td>campaign</td><td class=\"id\">C1</td><td><span class=\"badge disabled\">disabled: invalid_token</span></td><td>15 min</td><td>never<br><small>polled 5 seconds ago</small></td><td>-</td><td><span class=\"code\">190</span> invalid_token: Error validating access token <small>(5 seconds ago)</small></td></tr>"), "{page}");
        assert!(page.contains("<tr class=\"row-pending\"><td>whatsapp_<wbr>business_<wbr>account</td><td class=\"id\">W1</td>"), "{page}");
        // What needs attention first: disabled, then pending, then ok.
        assert_eq!(row_ids(&page), ["C1", "W1", "PAGE1"]);
    }

    #[test]
    fn a_row_that_is_ok_again_drops_its_old_error_and_a_due_poll_is_due_now() {
        let recovered = TargetStatus {
            last_error: Some(error("transient", "An unexpected error has occurred")),
            last_success: Some(NOW - 1),
            next_poll: Some(NOW - 6),
            ..status(TargetState::Ok)
        };
        let page = render(&[(key(TargetKind::Page, "P"), recovered)], None, "/metrics");
        assert!(!page.contains("An unexpected error"), "{page}");
        assert!(page.contains("<td>due now</td>"), "{page}");
    }

    #[test]
    fn filters_and_search_by_id_or_name_pick_the_rows_and_links_keep_them() {
        let named = |name: &str, state| TargetStatus {
            name: Some(name.to_owned()),
            ..status(state)
        };
        let targets = vec![
            (
                key(TargetKind::Page, "P1"),
                named("Acme Support", TargetState::Ok),
            ),
            (
                key(TargetKind::Page, "P2"),
                named("Globex", TargetState::Failing),
            ),
            (
                key(TargetKind::WhatsappBusinessAccount, "W1"),
                named("Acme WhatsApp", TargetState::Failing),
            ),
        ];
        assert_eq!(
            row_ids(&filtered(&targets, &[("state", "failing")])),
            ["P2", "W1"]
        );
        assert_eq!(
            row_ids(&filtered(
                &targets,
                &[("state", "failing"), ("kind", "page")]
            )),
            ["P2"]
        );
        let acme = filtered(&targets, &[("q", "ACME")]);
        assert_eq!(row_ids(&acme), ["W1", "P1"]);
        assert!(acme.contains("2 targets match the filter"), "{acme}");
        assert!(acme.contains("name=\"q\" value=\"ACME\""), "{acme}");
        // The summary's links keep the search.
        assert!(acme.contains("href=\"?state=ok&amp;q=ACME\""), "{acme}");
        assert_eq!(row_ids(&filtered(&targets, &[("q", "p1")])), ["P1"]);
        let none = filtered(&targets, &[("q", "nothing")]);
        assert!(none.contains("No target matches the filter."), "{none}");
        // The form selects what is filtered, and works without JavaScript: a GET to itself.
        let form = filtered(&targets, &[("state", "failing")]);
        assert!(
            form.contains("<form class=\"filter\" method=\"get\" action=\"\">"),
            "{form}"
        );
        assert!(form.contains("<option selected>failing</option>"), "{form}");
    }

    #[test]
    fn a_bad_filter_is_an_error_naming_the_parameter() {
        let query = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        let problem = TargetFilter::from_query(&query("state", "broken")).expect_err("bad state");
        assert!(
            problem.contains("state=\"broken\"") && problem.contains("failing"),
            "{problem}"
        );
        let problem = TargetFilter::from_query(&query("kind", "x")).expect_err("bad kind");
        assert!(problem.contains("whatsapp_business_account"), "{problem}");
        assert!(TargetFilter::from_query(&query("page", "0")).is_err());
        assert!(TargetFilter::from_query(&query("page", "-1")).is_err());
        // Empty values are no filter; unknown parameters are ignored.
        assert_eq!(
            TargetFilter::from_query(&query("state", "")).expect("empty"),
            TargetFilter::default()
        );
        assert!(TargetFilter::from_query(&query("utm", "x")).is_ok());
    }

    /// 10,000 targets in every state, with names, errors, notes: what a large agency runs.
    fn ten_thousand() -> Vec<(TargetKey, TargetStatus)> {
        (0..10_000)
            .map(|i| {
                let state = match i % 50 {
                    0 => TargetState::Failing,
                    1 => TargetState::Disabled,
                    2 => TargetState::Partial,
                    _ => TargetState::Ok,
                };
                let kind = TargetKind::ALL[i % 4];
                let status = TargetStatus {
                    name: Some(format!("Business number {i}")),
                    last_poll: Some(NOW - 60),
                    last_success: Some(NOW - 60 - (i as i64 % 3) * 900),
                    next_poll: Some(NOW + 840),
                    last_error: (state != TargetState::Ok).then(|| {
                        error("transient", "(#2) Service temporarily unavailable. Please retry your request later; the reads of this poll keep their last values.")
                    }),
                    ..status(state)
                };
                (key(kind, &format!("{:015}", 100_000_000_000_000_u64 + i as u64)), status)
            })
            .collect()
    }

    #[test]
    fn ten_thousand_targets_are_pages_of_250_rows_under_200_kb_failing_first() {
        let targets = ten_thousand();
        let page = render(&targets, None, "/metrics");
        assert_eq!(row_ids(&page).len(), ROWS_PER_PAGE);
        assert!(page.len() < 200_000, "{} bytes", page.len());
        assert!(page.contains("<strong>10000 targets:</strong> <a class=\"badge failing\" href=\"?state=failing\">200 failing</a>"), "summary first");
        // The 200 failing targets, then the 200 disabled, then the partial ones.
        assert!(page.contains("rows 1&ndash;250 (page 1 of 40)"), "range");
        let first_rows: Vec<&str> = page
            .split("<tr class=\"row-")
            .skip(1)
            .map(|row| row.split('"').next().unwrap_or_default())
            .collect();
        assert!(first_rows[..200].iter().all(|class| *class == "failing"));
        assert!(first_rows[200..].iter().all(|class| *class == "disabled"));
        let second = filtered(&targets, &[("page", "2")]);
        assert!(
            second.contains("rows 251&ndash;500 (page 2 of 40)"),
            "range"
        );
        assert!(second.contains("<tr class=\"row-disabled\">"));
        assert!(second.contains("<tr class=\"row-partial\">"));
        assert!(
            page.contains("<a href=\"?page=2\">next &rarr;</a>"),
            "next link"
        );
        let last = filtered(&targets, &[("page", "40")]);
        assert_eq!(row_ids(&last).len(), ROWS_PER_PAGE);
        assert!(
            last.contains("<a href=\"?page=39\">&larr; previous</a>"),
            "previous link"
        );
        assert!(!last.contains("next &rarr;"));
        // Past the last page: the last page.
        assert_eq!(
            row_ids(&filtered(&targets, &[("page", "99")])),
            row_ids(&last)
        );
        let failing = filtered(&targets, &[("state", "failing"), ("kind", "page")]);
        // Every 50th target fails, and every other one of those is a Page.
        assert_eq!(row_ids(&failing).len(), 100);
    }

    #[test]
    fn ids_messages_dropped_items_and_the_metrics_path_are_escaped() {
        let failing = TargetStatus {
            last_error: Some(LastError {
                class: "other",
                code: None,
                message: "<script>alert(1)</script> & \"quotes\"".to_owned(),
                at: NOW,
            }),
            dropped: vec!["<b>metric</b>".to_owned()],
            name: Some("<i>name</i>".to_owned()),
            ..status(TargetState::Failing)
        };
        let targets = vec![(key(TargetKind::Page, "<img src=x>"), failing)];
        let page = render(&targets, None, "/m\"><script>");
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("<b>") && !page.contains("<i>"), "{page}");
        assert!(
            page.contains("<td class=\"id\">&lt;img src=x&gt;<br><span class=\"name\">&lt;i&gt;name&lt;/i&gt;</span></td>"),
            "{page}"
        );
        assert!(
            page.contains("other: &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;"),
            "{page}"
        );
        assert!(page.contains("&lt;b&gt;metric&lt;/b&gt;"), "{page}");
        // Relative links, so the page works behind a path prefix.
        assert!(
            page.contains("<a href=\"./m&quot;&gt;&lt;script&gt;\">Metrics</a> &middot; <a href=\"./-/healthy\">"),
            "{page}"
        );
        assert!(page.contains("<strong>1 target:</strong>"), "{page}");
    }

    #[test]
    fn a_partial_row_names_each_failed_read_and_a_solo_target_says_why_it_polls_alone() {
        let partial = TargetStatus {
            failed_reads: vec![crate::status::ReadFailure {
                read: "phone_numbers".to_owned(),
                class: "transient",
                code: Some(2),
                message: "An unexpected error <has> occurred".to_owned(),
            }],
            ..status(TargetState::Partial)
        };
        let targets = vec![(key(TargetKind::WhatsappBusinessAccount, "W1"), partial)];
        let solo = [SoloTarget {
            object_id: "W1".to_owned(),
            reason: SoloReason::Timeout,
            since: NOW - 60,
            prompt_streak: 1,
        }];
        let tokens = TokenReport::default();
        let page = status_page(
            &PageInputs {
                solo: &solo,
                ..inputs(&targets, None, "/metrics", &tokens)
            },
            &TargetFilter::default(),
        );
        assert!(
            page.contains("<a class=\"badge partial\" href=\"?state=partial\">1 partial</a>"),
            "{page}"
        );
        assert!(page.contains("<tr class=\"row-partial\">"), "{page}");
        assert!(page.contains("read phone_numbers failed (transient, code 2): An unexpected error &lt;has&gt; occurred; its last values stay until they go stale"), "{page}");
        assert!(
            page.contains("polls alone in the slow lane (outside batch calls) since"),
            "{page}"
        );
        assert!(page.contains("(timeout: its calls were timing out when sent alone); rejoins after 3 prompt answers in a row, 1 so far"), "{page}");
    }

    #[test]
    fn control_bytes_from_an_answer_are_shown_as_escapes() {
        let failing = TargetStatus {
            last_error: Some(LastError {
                class: "other",
                code: None,
                message: "a\u{0}b\u{1f}c\u{8}d".to_owned(),
                at: NOW,
            }),
            ..status(TargetState::Failing)
        };
        let page = render(
            &[(key(TargetKind::Page, "P\u{1b}"), failing)],
            None,
            "/metrics",
        );
        assert!(
            !page.contains(['\u{0}', '\u{1f}', '\u{8}', '\u{1b}']),
            "{page}"
        );
        assert!(page.contains("a\\u{0}b\\u{1f}c\\u{8}d"), "{page}");
        assert!(page.contains("P\\u{1b}"), "{page}");
    }

    #[test]
    fn an_empty_config_says_so() {
        let page = render(&[], None, "/metrics");
        assert!(page.contains("<strong>0 targets:</strong>"), "{page}");
        assert!(page.contains("No targets configured."), "{page}");
    }

    #[test]
    fn a_shard_says_which_one_it_is_and_a_single_instance_says_nothing() {
        let tokens = TokenReport::default();
        let page = status_page(
            &PageInputs {
                shard: Shard::new(2, 3).expect("valid"),
                ..inputs(&[], None, "/metrics", &tokens)
            },
            &TargetFilter::default(),
        );
        assert!(
            page.contains(
                "This instance is shard 2 of 3 (<code>--shard</code>, <code>--total-shards</code>)"
            ),
            "{page}"
        );
        let single = render(&[], None, "/metrics");
        assert!(!single.contains("This instance is shard"), "{single}");
    }

    #[test]
    fn discovered_targets_and_each_discovery_source_are_shown_escaped() {
        let discovered = TargetStatus {
            origin: Origin::Discovered,
            ..status(TargetState::Ok)
        };
        let sources = vec![
            SourceState {
                label: "GET /me/accounts".into(),
                last_run: Some(NOW - 60),
                last_success: Some(NOW - 3600),
                last_error: Some("(#1) <b>down</b>".into()),
                listed: 3,
                skipped: vec!["Page 9: listed without a Page access token".into()],
                complete: true,
            },
            SourceState {
                label: "business 7".into(),
                last_run: Some(NOW - 60),
                last_success: Some(NOW - 60),
                last_error: None,
                listed: 10_000,
                skipped: Vec::new(),
                complete: false,
            },
        ];
        let page = render(
            &[(key(TargetKind::Page, "P1"), discovered)],
            Some(&sources),
            "/metrics",
        );
        assert!(page.contains("P1 <small>discovered</small>"), "{page}");
        assert!(page.contains("<td>GET /me/accounts</td>"), "{page}");
        assert!(page.contains("(#1) &lt;b&gt;down&lt;/b&gt;"), "{page}");
        assert!(
            page.contains("skipped: Page 9: listed without a Page access token"),
            "{page}"
        );
        assert!(
            page.contains("10000 <small>(list cut at its page limit"),
            "{page}"
        );
        let off = render(&[], None, "/metrics");
        assert!(
            off.contains("Add a <code>discovery</code> section"),
            "{off}"
        );
    }
}

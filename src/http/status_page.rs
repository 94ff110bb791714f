//! The landing page: a status page read at a glance. A count of targets per state, then one
//! row per target with its state, last success, next poll and last error (class, Graph code,
//! message), then the tokens in use ([`crate::token_health::page`]). It is server-rendered HTML
//! with inline styles and no external assets, every value escaped.

use std::fmt::Write as _;

use chrono::DateTime;

use crate::config::Origin;
use crate::discovery::SourceState;
use crate::graph::solo::{SoloReason, SoloTarget, PROMPT_ANSWERS_TO_LEAVE};
use crate::poller::UnavailableScope;
use crate::shard::Shard;
use crate::status::{State as TargetState, TargetStatus};
use crate::target::TargetKey;
use crate::token_health::{self, TokenReport};

/// How often the status page reloads itself: often enough to follow a failing target, rarely
/// enough not to matter next to Prometheus' scrapes (each render only reads the status board).
const STATUS_PAGE_REFRESH_SECONDS: u32 = 30;

/// The status page: a summary line and one row per target. Every value that comes from the
/// config or the Graph API (ids, error messages, dropped metric names) is HTML-escaped; the
/// rest are fixed strings and numbers. Styles are inline so the page needs nothing else.
pub fn status_page(
    targets: &[(TargetKey, TargetStatus)],
    discovery: Option<&[SourceState]>,
    now: i64,
    telemetry_path: &str,
    tokens: &TokenReport,
    shard: Shard,
    solo: &[SoloTarget],
) -> String {
    let esc =
        |text: &str| html_escape::encode_text(&crate::printable::printable(text)).into_owned();
    let path = html_escape::encode_double_quoted_attribute(telemetry_path).into_owned();
    let count = |state: TargetState| targets.iter().filter(|(_, s)| s.state == state).count();
    let mut page = String::with_capacity(4096 + 512 * targets.len());
    let _ = write!(
        page,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{refresh}">
<title>Meta messaging exporter</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#1f2328;background:#fff}}
h1{{font-size:1.5em;margin:0 0 .2em}}
a{{color:#0b57d0}}
.muted{{color:#59636e}}
.summary{{font-size:1.05em;margin:1em 0}}
.badge{{display:inline-block;border-radius:1em;padding:.15em .7em;margin-right:.4em;font-weight:600}}
table{{border-collapse:collapse;width:100%}}
th,td{{border-bottom:1px solid #d1d9e0;padding:.45em .6em;text-align:left;vertical-align:top}}
th{{background:#f6f8fa;font-weight:600;white-space:nowrap}}
td.id,td.code{{font-family:ui-monospace,monospace}}
td.time,td.id{{white-space:nowrap}}
td.error{{min-width:20em;overflow-wrap:anywhere}}
td small{{color:#59636e}}
.ok{{background:#dafbe1;color:#116329}}
.failing{{background:#fff1c2;color:#7d4e00}}
.partial{{background:#fff8dc;color:#6b4a00}}
.disabled{{background:#ffebe9;color:#a40e26}}
.pending{{background:#eff2f5;color:#59636e}}
tr.row-failing{{background:#fffbeb}}
tr.row-partial{{background:#fffdf3}}
tr.row-disabled{{background:#fff5f5}}
</style>
</head><body>
<h1>Meta messaging exporter</h1>
<p class="muted">Page messaging insights, marketing-message campaign insights and WhatsApp Business Account analytics, polled from the Graph API in the background; scrapes never call Meta. Version {version}.</p>
<p><a href="{path}">Metrics</a> &middot; <a href="/-/healthy">Health</a> &middot; <a href="/-/ready">Readiness</a></p>
<p class="summary"><strong>{total} {targets_word}:</strong> <span class="badge ok">{ok} ok</span><span class="badge partial">{partial} partial</span><span class="badge failing">{failing} failing</span><span class="badge disabled">{disabled} disabled</span><span class="badge pending">{pending} pending</span> <span class="muted">as of {now_text}; this page reloads every {refresh} s</span></p>
{shard_line}<table>
<thead><tr><th>Kind</th><th>ID</th><th>State</th><th>Interval</th><th>Last success</th><th>Next poll</th><th>Last poll</th><th>Code</th><th>Last error</th></tr></thead>
<tbody>
"#,
        refresh = STATUS_PAGE_REFRESH_SECONDS,
        version = env!("CARGO_PKG_VERSION"),
        shard_line = if shard.total() > 1 {
            format!(
                "<p class=\"muted\">This instance is shard {} of {} (<code>--shard</code>, <code>--total-shards</code>): it polls only the targets whose hash falls in its shard, and the other shards poll the rest.</p>\n",
                shard.index(),
                shard.total()
            )
        } else {
            String::new()
        },
        total = targets.len(),
        targets_word = if targets.len() == 1 {
            "target"
        } else {
            "targets"
        },
        ok = count(TargetState::Ok),
        partial = count(TargetState::Partial),
        failing = count(TargetState::Failing),
        disabled = count(TargetState::Disabled),
        pending = count(TargetState::Pending),
        now_text = utc(now),
    );
    if targets.is_empty() {
        page.push_str("<tr><td colspan=\"9\" class=\"muted\">No targets configured.</td></tr>\n");
    }
    for (key, status) in targets {
        let class = status.state.as_str();
        let state_text = match status.disabled_reason {
            Some(reason) => format!("disabled: {reason}"),
            None => class.to_owned(),
        };
        let (code, error) = match &status.last_error {
            None => ("-".to_owned(), String::new()),
            Some(error) => (
                error
                    .code
                    .map_or_else(|| "-".to_owned(), |code| code.to_string()),
                format!(
                    "{class}: {message} <small>({at})</small>",
                    class = error.class,
                    message = esc(&error.message),
                    at = when(error.at, now),
                ),
            ),
        };
        let dropped = if status.dropped.is_empty() {
            String::new()
        } else {
            format!(
                "<br><small>no longer requested (rejected by the API): {}</small>",
                esc(&status.dropped.join(", "))
            )
        };
        let states = |scope: UnavailableScope| -> Vec<String> {
            status
                .unavailable
                .iter()
                .filter(|state| state.scope == scope)
                .map(|state| format!("{} ({})", state.feature, state.reason.replace('_', " ")))
                .collect()
        };
        let features = states(UnavailableScope::Feature);
        let unavailable = if features.is_empty() {
            String::new()
        } else {
            format!(
                "<br><small>not offered by Meta for this account, not asked for: {}</small>",
                esc(&features.join(", "))
            )
        };
        let refused = states(UnavailableScope::Read);
        let refused = if refused.is_empty() {
            String::new()
        } else {
            format!(
                "<br><small>reads refused by Meta, asked again in a day or after a credentials change: {}</small>",
                esc(&refused.join(", "))
            )
        };
        // Each failed read of a partial poll, with Meta's message: the rest of the target
        // published, so the last error alone would not say which part is missing.
        let failed_reads: String = if status.state == TargetState::Partial {
            status
                .failed_reads
                .iter()
                .map(|failure| {
                    format!(
                        "<br><small>read {} failed ({}{}): {}; its last values stay until they go stale</small>",
                        esc(&failure.read),
                        failure.class,
                        failure.code.map(|code| format!(", code {code}")).unwrap_or_default(),
                        esc(&failure.message)
                    )
                })
                .collect()
        } else {
            String::new()
        };
        // Solo: its calls hung or crawled, so it polls outside batch calls and in the slow
        // lane, where it cannot hold up any other target.
        let solo = solo
            .iter()
            .find(|solo| solo.object_id == key.id)
            .map(|solo| {
                format!(
                    "<br><small>polls alone in the slow lane (outside batch calls) since {} ({}: its calls were {} when sent alone); rejoins after {} prompt answers in a row, {} so far</small>",
                    when(solo.since, now),
                    solo.reason.as_str(),
                    match solo.reason {
                        SoloReason::Timeout => "timing out",
                        SoloReason::Slow => "slower than polling.batch_timeout",
                    },
                    PROMPT_ANSWERS_TO_LEAVE,
                    solo.prompt_streak
                )
            })
            .unwrap_or_default();
        let cut: String = status
            .series_cut
            .iter()
            .map(|cut| format!("<br><small>series limit: {}</small>", esc(cut)))
            .collect();
        // WhatsApp health in Meta's words, which never go into labels.
        let health: String = status
            .health
            .iter()
            .map(|entity| {
                let codes = if entity.error_codes.is_empty() {
                    String::new()
                } else {
                    let codes: Vec<String> =
                        entity.error_codes.iter().map(i64::to_string).collect();
                    format!(" (error {})", codes.join(", "))
                };
                let words = if entity.notes.is_empty() {
                    String::new()
                } else {
                    format!(": {}", entity.notes.join(" "))
                };
                format!(
                    "<br><small>health: {} {} is {}{}</small>",
                    esc(&entity.entity_type),
                    esc(&entity.id),
                    esc(&entity.can_send_message),
                    esc(&format!("{codes}{words}"))
                )
            })
            .collect();
        let dropped = format!("{dropped}{unavailable}{refused}{failed_reads}{health}{solo}{cut}");
        let _ = writeln!(
            page,
            "<tr class=\"row-{class}\"><td>{kind}</td><td class=\"id\">{id}{origin}</td><td><span class=\"badge {class}\">{state_text}</span></td><td>{interval}</td><td class=\"time\">{last_success}</td><td class=\"time\">{next_poll}</td><td class=\"time\">{last_poll}</td><td class=\"code\">{code}</td><td class=\"error\">{error}{dropped}</td></tr>",
            // A break opportunity after each underscore lets whatsapp_business_account wrap
            // in a narrow window instead of widening the table; the text stays the label value.
            kind = key.kind.as_str().replace('_', "_<wbr>"),
            id = esc(&key.id),
            origin = match status.origin {
                Origin::Static => "",
                Origin::Discovered => "<br><small>discovered</small>",
            },
            interval = humantime::format_duration(status.interval),
            last_success = status.last_success.map_or_else(|| "never".to_owned(), |t| when(t, now)),
            next_poll = match status.next_poll {
                None => "-".to_owned(),
                // Say why a poll is later than its interval: a rate-limit pause or slowdown.
                Some(t) if !status.backoff.is_zero() => format!(
                    "{} <small>({}: +{})</small>",
                    when(t, now),
                    match status.backoff_reason {
                        Some("whatsapp_budget") => "spaced under rate_limits.whatsapp_calls_per_hour",
                        Some("usage") => "rate limit usage high",
                        _ => "rate limit",
                    },
                    humantime::format_duration(std::time::Duration::from_secs(status.backoff.as_secs()))
                ),
                Some(t) => when(t, now),
            },
            last_poll = status.last_poll.map_or_else(|| "never".to_owned(), |t| when(t, now)),
        );
    }
    page.push_str("</tbody></table>\n");
    discovery_section(&mut page, discovery, now);
    page.push_str(&token_health::page::section(tokens, now));
    page.push_str("</body></html>\n");
    page
}

/// One row per discovery source: when it last ran and succeeded, what it listed and skipped,
/// and its last error.
fn discovery_section(page: &mut String, sources: Option<&[SourceState]>, now: i64) {
    let esc =
        |text: &str| html_escape::encode_text(&crate::printable::printable(text)).into_owned();
    page.push_str("<h2>Discovery</h2>\n");
    let Some(sources) = sources else {
        page.push_str("<p class=\"muted\">Off: every target is listed in the config. Add a <code>discovery</code> section to find Pages (GET /me/accounts) and WhatsApp Business Accounts (a business's owned and client accounts) instead.</p>\n");
        return;
    };
    page.push_str("<table>\n<thead><tr><th>Source</th><th>Last run</th><th>Last success</th><th>Listed</th><th>Last error</th></tr></thead>\n<tbody>\n");
    if sources.is_empty() {
        page.push_str("<tr><td colspan=\"5\" class=\"muted\">Not run yet.</td></tr>\n");
    }
    for source in sources {
        let class = if source.last_error.is_some() {
            "row-failing"
        } else {
            ""
        };
        let mut listed = source.listed.to_string();
        if !source.complete && source.last_success.is_some() {
            listed
                .push_str(" <small>(list cut at its page limit; nothing counted missing)</small>");
        }
        if !source.skipped.is_empty() {
            let _ = write!(
                listed,
                "<br><small>skipped: {}</small>",
                esc(&source.skipped.join("; "))
            );
        }
        let _ = writeln!(
            page,
            "<tr class=\"{class}\"><td>{label}</td><td class=\"time\">{last_run}</td><td class=\"time\">{last_success}</td><td>{listed}</td><td class=\"error\">{error}</td></tr>",
            label = esc(&source.label),
            last_run = source.last_run.map_or_else(|| "never".to_owned(), |t| when(t, now)),
            last_success = source.last_success.map_or_else(|| "never".to_owned(), |t| when(t, now)),
            error = source.last_error.as_deref().map(esc).unwrap_or_default(),
        );
    }
    page.push_str("</tbody></table>\n");
}

/// A unix time as `2026-11-21 13:05:00 UTC`.
fn utc(at: i64) -> String {
    DateTime::from_timestamp(at, 0).map_or_else(
        || at.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// A time relative to now (`3m 2s ago`, `now`, `in 5s`), with the UTC time as its tooltip:
/// relative times read at a glance, and the summary line gives the page's own UTC time.
pub(crate) fn when(at: i64, now: i64) -> String {
    let distance = humantime::format_duration(std::time::Duration::from_secs(at.abs_diff(now)));
    let relative = if at == now {
        "now".to_owned()
    } else if at < now {
        format!("{distance} ago")
    } else {
        format!("in {distance}")
    };
    format!("<span title=\"{}\">{relative}</span>", utc(at))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::status::LastError;
    use crate::target::TargetKind;

    const NOW: i64 = 1_790_000_000;

    /// The page of a single instance without token health, at `NOW`.
    fn render(
        targets: &[(TargetKey, TargetStatus)],
        discovery: Option<&[SourceState]>,
        telemetry_path: &str,
    ) -> String {
        status_page(
            targets,
            discovery,
            NOW,
            telemetry_path,
            &TokenReport::default(),
            Shard::default(),
            &[],
        )
    }

    fn status(state: TargetState) -> TargetStatus {
        TargetStatus {
            state,
            ..TargetStatus::new(Duration::from_secs(900))
        }
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
            page.contains("in 10m</span> <small>(rate limit: +2m)</small>"),
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
            page.contains("(spaced under rate_limits.whatsapp_calls_per_hour: +2m)"),
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

    fn key(kind: TargetKind, id: &str) -> TargetKey {
        TargetKey {
            kind,
            id: id.to_owned(),
        }
    }

    #[test]
    fn the_summary_counts_every_state_and_each_row_shows_its_state_times_and_error() {
        let ok = TargetStatus {
            last_poll: Some(NOW - 62),
            last_success: Some(NOW - 61),
            next_poll: Some(NOW + 838),
            ..status(TargetState::Ok)
        };
        let disabled = TargetStatus {
            disabled_reason: Some("invalid_token"),
            last_poll: Some(NOW - 5),
            last_error: Some(LastError {
                class: "invalid_token",
                code: Some(190),
                message: "Error validating access token".to_owned(),
                at: NOW - 5,
            }),
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
        assert!(page.contains("<strong>3 targets:</strong> <span class=\"badge ok\">1 ok</span><span class=\"badge partial\">0 partial</span><span class=\"badge failing\">0 failing</span><span class=\"badge disabled\">1 disabled</span><span class=\"badge pending\">1 pending</span>"), "{page}");
        assert!(page.contains("<tr class=\"row-ok\"><td>page</td><td class=\"id\">PAGE1</td><td><span class=\"badge ok\">ok</span></td><td>15m</td><td class=\"time\"><span title=\"2026-09-21 14:12:19 UTC\">1m 1s ago</span></td><td class=\"time\"><span title=\"2026-09-21 14:27:18 UTC\">in 13m 58s</span></td>"), "{page}");
        assert!(page.contains("<tr class=\"row-disabled\"><td>campaign</td><td class=\"id\">C1</td><td><span class=\"badge disabled\">disabled: invalid_token</span></td><td>15m</td><td class=\"time\">never</td><td class=\"time\">-</td><td class=\"time\"><span title=\"2026-09-21 14:13:15 UTC\">5s ago</span></td><td class=\"code\">190</td><td class=\"error\">invalid_token: Error validating access token <small>(<span title=\"2026-09-21 14:13:15 UTC\">5s ago</span>)</small></td></tr>"), "{page}");
        assert!(page.contains("<tr class=\"row-pending\"><td>whatsapp_<wbr>business_<wbr>account</td><td class=\"id\">W1</td><td><span class=\"badge pending\">pending</span></td><td>15m</td><td class=\"time\">never</td><td class=\"time\">-</td><td class=\"time\">never</td><td class=\"code\">-</td><td class=\"error\"></td></tr>"), "{page}");
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
            ..status(TargetState::Failing)
        };
        let targets = vec![(key(TargetKind::Page, "<img src=x>"), failing)];
        let page = render(&targets, None, "/m\"><script>");
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("<b>"), "{page}");
        assert!(
            page.contains("<td class=\"id\">&lt;img src=x&gt;</td>"),
            "{page}"
        );
        assert!(
            page.contains("other: &lt;script&gt;alert(1)&lt;/script&gt; &amp; \"quotes\""),
            "{page}"
        );
        assert!(page.contains("&lt;b&gt;metric&lt;/b&gt;"), "{page}");
        assert!(
            page.contains("<a href=\"/m&quot;&gt;&lt;script&gt;\">Metrics</a>"),
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
        let page = status_page(
            &targets,
            None,
            NOW,
            "/metrics",
            &TokenReport::default(),
            Shard::default(),
            &solo,
        );
        assert!(
            page.contains("<span class=\"badge partial\">1 partial</span>"),
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
        let shard = Shard::new(2, 3).expect("valid");
        let page = status_page(
            &[],
            None,
            NOW,
            "/metrics",
            &TokenReport::default(),
            shard,
            &[],
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
        assert!(page.contains("P1<br><small>discovered</small>"), "{page}");
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

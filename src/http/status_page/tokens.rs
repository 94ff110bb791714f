//! The "Tokens" section of the status page: one row per token in use, by its label.
//!
//! It shows Meta's last answer (type, validity with Meta's message, expiry, data-access
//! expiry, missing permissions), how many targets use the token and how its last check went;
//! or, with token health off, which two settings turn it on. A token never appears, only its
//! label ([`crate::secret::TokenId::label`]); every text from Meta is HTML-escaped. The
//! page's own styles (badges, table) apply, so the section needs none of its own. The data is
//! [`crate::token_health`]'s; only its HTML lives here, with the rest of the page's.

use std::fmt::Write as _;
use std::time::Duration;

use super::format::{duration, esc, when};
use crate::token_health::{Expiry, TokenReport, TokenState};

/// An expiry this close is shown as a warning.
pub const WARN_WITHIN: Duration = Duration::from_secs(7 * 24 * 3600);

/// The section, from `<h2>` to the end of its table.
pub fn section(report: &TokenReport, now: i64) -> String {
    let mut html = String::from("<h2>Tokens</h2>\n");
    let Some(interval) = report.interval else {
        html.push_str("<p class=\"muted\">Token health is off. Set <code>graph_api.app_id</code> and <code>graph_api.app_secret</code> to check every token in use with Meta's <code>debug_token</code>.</p>\n");
        return html;
    };
    let _ = write!(
        html,
        "<p class=\"muted\">Checked with Meta's <code>debug_token</code> at start, when a token appears, and every {interval}; last successful check: {last}.",
        interval = duration(interval),
        last = report
            .last_success
            .map_or_else(|| "never".to_owned(), |at| when(at, now)),
    );
    if let Some(error) = &report.last_error {
        let _ = write!(
            html,
            " <span class=\"badge disabled\">last check failed</span> {} <small>({})</small>",
            esc(&error.message),
            when(error.at, now)
        );
    }
    html.push_str("</p>\n<table>\n<thead><tr><th>Token</th><th>Type</th><th>Valid</th><th>Expires</th><th>Data access expires</th><th>Missing permissions</th><th>Targets</th><th>Last check</th><th>Last check error</th></tr></thead>\n<tbody>\n");
    if report.tokens.is_empty() {
        html.push_str("<tr><td colspan=\"9\" class=\"muted\">No tokens in use.</td></tr>\n");
    }
    for token in &report.tokens {
        row(&mut html, token, now);
    }
    html.push_str("</tbody></table>\n");
    html
}

fn row(html: &mut String, token: &TokenState, now: i64) {
    let missing = token.missing_scopes();
    let (kind, valid, expires, data_access) = match &token.info {
        None => (
            "-".to_owned(),
            "<span class=\"badge pending\">not checked yet</span>".to_owned(),
            "-".to_owned(),
            "-".to_owned(),
        ),
        Some(info) => {
            let valid = if info.valid {
                "<span class=\"badge ok\">valid</span>".to_owned()
            } else {
                let message = info
                    .error
                    .as_ref()
                    .map(|error| format!(" {}", esc(&error.message)))
                    .unwrap_or_default();
                format!("<span class=\"badge disabled\">invalid</span>{message}")
            };
            let expires = match info.expires {
                None => "-".to_owned(),
                Some(Expiry::Never) => "never".to_owned(),
                Some(Expiry::At(at)) => deadline(at, now),
            };
            let data_access = info
                .data_access_expires
                .map_or_else(|| "no expiry".to_owned(), |at| deadline(at, now));
            (
                esc(info.kind.as_deref().unwrap_or("unknown")),
                valid,
                expires,
                data_access,
            )
        }
    };
    let missing = if missing.is_empty() {
        "-".to_owned()
    } else {
        format!(
            "<span class=\"badge failing\">{}</span>",
            esc(&missing.join(", "))
        )
    };
    let error = token.last_error.as_ref().map_or_else(String::new, |error| {
        format!(
            "{} <small>({})</small>",
            esc(&error.message),
            when(error.at, now)
        )
    });
    let _ = writeln!(
        html,
        "<tr><td class=\"id\">{id}</td><td>{kind}</td><td>{valid}</td><td class=\"time\">{expires}</td><td class=\"time\">{data_access}</td><td>{missing}</td><td>{targets}</td><td class=\"time\">{checked}</td><td class=\"error\">{error}</td></tr>",
        id = esc(&token.token_id.label()),
        targets = token.targets,
        checked = token
            .checked_at
            .map_or_else(|| "never".to_owned(), |at| when(at, now)),
    );
}

/// An expiry: a warning badge when it has passed or is within [`WARN_WITHIN`].
fn deadline(at: i64, now: i64) -> String {
    let text = when(at, now);
    if at <= now {
        format!("<span class=\"badge disabled\">expired</span> {text}")
    } else if at.abs_diff(now) <= WARN_WITHIN.as_secs() {
        format!("<span class=\"badge failing\">soon</span> {text}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::target::TargetKind;
    use crate::token_health::{CheckError, TokenError, TokenInfo};

    const NOW: i64 = 1_790_000_000;

    fn state(token: &str, info: Option<TokenInfo>) -> TokenState {
        TokenState {
            token_id: *crate::secret::AccessToken::new(token).id(),
            kinds: BTreeSet::from([TargetKind::Page]),
            discovery: BTreeSet::new(),
            targets: 2,
            info,
            checked_at: Some(NOW - 60),
            last_error: None,
        }
    }

    fn info(valid: bool) -> TokenInfo {
        TokenInfo {
            valid,
            kind: Some("PAGE".to_owned()),
            expires: Some(Expiry::Never),
            data_access_expires: Some(NOW + 5 * 86_400),
            scopes: ["pages_messaging", "read_insights"]
                .map(str::to_owned)
                .into(),
            app_id: None,
            error: None,
        }
    }

    #[test]
    fn off_says_which_two_settings_turn_it_on() {
        let html = section(&TokenReport::default(), NOW);
        assert!(html.contains("Token health is off"), "{html}");
        assert!(
            html.contains("<code>graph_api.app_id</code> and <code>graph_api.app_secret</code>"),
            "{html}"
        );
    }

    #[test]
    fn rows_show_validity_expiries_missing_scopes_targets_and_errors_escaped() {
        let mut invalid = info(false);
        invalid.error = Some(TokenError {
            code: Some(190),
            subcode: None,
            message: "Session <b>expired</b>".to_owned(),
        });
        invalid.expires = Some(Expiry::At(NOW - 3600));
        let failing = TokenState {
            last_error: Some(CheckError {
                message: "Graph API error <x>".to_owned(),
                at: NOW - 5,
            }),
            ..state("third", None)
        };
        let report = TokenReport {
            interval: Some(Duration::from_secs(3600)),
            tokens: vec![
                state("first", Some(info(true))),
                state("second", Some(invalid)),
                failing,
            ],
            last_success: Some(NOW - 60),
            last_error: None,
        };
        let html = section(&report, NOW);
        assert!(html.contains("every 1 h; last successful check: <span title=\"2026-09-21 14:12:20 UTC\">1 minute ago</span>"), "{html}");
        let first = crate::secret::AccessToken::new("first").id().label();
        assert!(html.contains(&format!("<tr><td class=\"id\">{first}</td><td>PAGE</td><td><span class=\"badge ok\">valid</span></td><td class=\"time\">never</td><td class=\"time\"><span class=\"badge failing\">soon</span> <span title=\"2026-09-26 14:13:20 UTC\">in 5 days</span></td><td><span class=\"badge failing\">pages_read_engagement, pages_show_list</span></td><td>2</td>")), "{html}");
        assert!(html.contains("<span class=\"badge disabled\">invalid</span> Session &lt;b&gt;expired&lt;/b&gt;</td><td class=\"time\"><span class=\"badge disabled\">expired</span>"), "{html}");
        assert!(
            html.contains("<span class=\"badge pending\">not checked yet</span>"),
            "{html}"
        );
        assert!(html.contains("Graph API error &lt;x&gt; <small>"), "{html}");
        assert!(!html.contains("<b>") && !html.contains("<x>"), "{html}");
    }

    #[test]
    fn a_failed_batch_is_shown_above_the_table() {
        let report = TokenReport {
            interval: Some(Duration::from_secs(3600)),
            tokens: Vec::new(),
            last_success: None,
            last_error: Some(CheckError {
                message: "Graph API error code 190: Invalid OAuth access token".to_owned(),
                at: NOW,
            }),
        };
        let html = section(&report, NOW);
        assert!(html.contains("last successful check: never. <span class=\"badge disabled\">last check failed</span> Graph API error code 190: Invalid OAuth access token"), "{html}");
        assert!(html.contains("No tokens in use."), "{html}");
    }
}

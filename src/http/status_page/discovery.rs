//! The "Discovery" section of the status page: one row per discovery source (the Pages of
//! `/me/accounts`; each business's WhatsApp accounts) with when it last ran and succeeded,
//! what it listed and skipped, and its last error.

use std::fmt::Write as _;

use super::format::{esc, when};
use crate::discovery::SourceState;

/// The section; `None` when discovery is off.
pub(super) fn section(page: &mut String, sources: Option<&[SourceState]>, now: i64) {
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

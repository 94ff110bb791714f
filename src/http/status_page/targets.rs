//! The targets part of the status page: the summary (counts by state and by kind), the filter
//! form and one page of rows, failing and disabled targets first.
//!
//! Filters are query parameters (`state`, `kind`, `q` for a search by id or name, `page`), so
//! they work without JavaScript, can be bookmarked, and survive the page's own reload. Links
//! are relative (`?state=failing`), so the page works behind a path prefix. A page holds at
//! most [`ROWS_PER_PAGE`] rows: at 10,000 targets the whole table would be megabytes, and 250
//! rows that each carry an error stay under 200 KB.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::format::{duration, esc, relative, rounded};
use super::PageInputs;
use crate::config::Origin;
use crate::graph::solo::{SoloReason, SoloTarget, PROMPT_ANSWERS_TO_LEAVE};
use crate::poller::UnavailableScope;
use crate::status::{State, TargetStatus};
use crate::target::{TargetKey, TargetKind};

/// The most rows one page shows.
pub const ROWS_PER_PAGE: usize = 250;
/// The longest search kept; a longer one is cut, not refused.
const MAX_SEARCH_CHARS: usize = 200;

/// States in the order rows are shown: what needs attention first.
const STATE_ORDER: [State; 5] = [
    State::Failing,
    State::Disabled,
    State::Partial,
    State::Pending,
    State::Ok,
];

/// Which rows to show, from the query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFilter {
    /// Only targets in this state.
    pub state: Option<State>,
    /// Only targets of this kind.
    pub kind: Option<TargetKind>,
    /// Only targets whose id or name contains this, ignoring case.
    pub search: String,
    /// The page of rows, from 1.
    pub page: usize,
}

impl Default for TargetFilter {
    /// Every target, first page.
    fn default() -> Self {
        Self {
            state: None,
            kind: None,
            search: String::new(),
            page: 1,
        }
    }
}

impl TargetFilter {
    /// Reads `state`, `kind`, `q` and `page`; other parameters are ignored. An unknown state
    /// or kind, or a page that is not a positive number, is an error naming the parameter and
    /// the values it takes.
    pub fn from_query(query: &BTreeMap<String, String>) -> Result<Self, String> {
        let value = |name: &str| query.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let state = match value("state") {
            None => None,
            Some(text) => Some(
                STATE_ORDER
                    .into_iter()
                    .find(|state| state.as_str() == text)
                    .ok_or_else(|| {
                        format!(
                            "state={text:?} is not a target state; use one of {}",
                            names(STATE_ORDER.map(State::as_str))
                        )
                    })?,
            ),
        };
        let kind = match value("kind") {
            None => None,
            Some(text) => Some(
                TargetKind::ALL
                    .into_iter()
                    .find(|kind| kind.as_str() == text)
                    .ok_or_else(|| {
                        format!(
                            "kind={text:?} is not a target kind; use one of {}",
                            names(TargetKind::ALL.map(TargetKind::as_str))
                        )
                    })?,
            ),
        };
        let page = match value("page") {
            None => 1,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|page| *page >= 1)
                .ok_or_else(|| format!("page={text:?} is not a page number (1, 2, ...)"))?,
        };
        let search = value("q")
            .map(|q| q.chars().take(MAX_SEARCH_CHARS).collect())
            .unwrap_or_default();
        Ok(Self {
            state,
            kind,
            search,
            page,
        })
    }

    fn admits(&self, key: &TargetKey, status: &TargetStatus) -> bool {
        if self.state.is_some_and(|state| state != status.state)
            || self.kind.is_some_and(|kind| kind != key.kind)
        {
            return false;
        }
        if self.search.is_empty() {
            return true;
        }
        let needle = self.search.to_lowercase();
        key.id.to_lowercase().contains(&needle)
            || status
                .name
                .as_deref()
                .is_some_and(|name| name.to_lowercase().contains(&needle))
    }

    /// The query string of this filter on page `page`, escaped for an attribute.
    fn link(&self, state: Option<State>, kind: Option<TargetKind>, page: usize) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(state) = state {
            query.append_pair("state", state.as_str());
        }
        if let Some(kind) = kind {
            query.append_pair("kind", kind.as_str());
        }
        if !self.search.is_empty() {
            query.append_pair("q", &self.search);
        }
        if page > 1 {
            query.append_pair("page", &page.to_string());
        }
        let query = query.finish();
        // An empty query string would be an empty link, which is this page with its filters.
        esc(&format!("?{query}"))
    }
}

fn names<const N: usize>(names: [&str; N]) -> String {
    names.join(", ")
}

/// The summary: how many targets per state, then per kind and state, each count a link to
/// the rows it counts.
pub(super) fn summary(page: &mut String, inputs: &PageInputs<'_>, filter: &TargetFilter) {
    let targets = inputs.targets;
    let count = |kind: Option<TargetKind>, state: Option<State>| {
        targets
            .iter()
            .filter(|(key, status)| {
                kind.is_none_or(|kind| key.kind == kind)
                    && state.is_none_or(|state| status.state == state)
            })
            .count()
    };
    let _ = write!(
        page,
        "<p class=\"summary\"><strong>{total} {word}:</strong> ",
        total = targets.len(),
        word = if targets.len() == 1 {
            "target"
        } else {
            "targets"
        },
    );
    for state in STATE_ORDER {
        let _ = write!(
            page,
            "<a class=\"badge {class}\" href=\"{href}\">{n} {class}</a>",
            class = state.as_str(),
            href = filter.link(Some(state), None, 1),
            n = count(None, Some(state)),
        );
    }
    page.push_str("</p>\n");
    let kinds: Vec<TargetKind> = TargetKind::ALL
        .into_iter()
        .filter(|kind| count(Some(*kind), None) > 0)
        .collect();
    if kinds.len() < 2 && targets.len() < 2 {
        return;
    }
    page.push_str("<table class=\"counts\"><thead><tr><th>Kind</th>");
    for state in STATE_ORDER {
        let _ = write!(page, "<th>{}</th>", state.as_str());
    }
    page.push_str("<th>all</th></tr></thead><tbody>\n");
    for kind in kinds {
        let _ = write!(page, "<tr><td>{}</td>", kind_name(kind));
        for state in STATE_ORDER {
            let n = count(Some(kind), Some(state));
            if n == 0 {
                page.push_str("<td class=\"muted\">0</td>");
            } else {
                let _ = write!(
                    page,
                    "<td><a href=\"{}\">{n}</a></td>",
                    filter.link(Some(state), Some(kind), 1)
                );
            }
        }
        let _ = writeln!(
            page,
            "<td><a href=\"{}\">{}</a></td></tr>",
            filter.link(None, Some(kind), 1),
            count(Some(kind), None)
        );
    }
    page.push_str("</tbody></table>\n");
}

/// The kind for people, breakable after each underscore so a narrow window wraps it.
fn kind_name(kind: TargetKind) -> String {
    kind.as_str().replace('_', "_<wbr>")
}

/// The filter form, one page of rows and the links to the other pages.
pub(super) fn table(page: &mut String, inputs: &PageInputs<'_>, filter: &TargetFilter) {
    let mut shown: Vec<&(TargetKey, TargetStatus)> = inputs
        .targets
        .iter()
        .filter(|(key, status)| filter.admits(key, status))
        .collect();
    // Stable: within a state, the board's order (kind, then id) stays.
    shown.sort_by_key(|(_, status)| STATE_ORDER.iter().position(|s| *s == status.state));
    let pages = shown.len().div_ceil(ROWS_PER_PAGE).max(1);
    let current = filter.page.clamp(1, pages);
    let first = (current - 1) * ROWS_PER_PAGE;
    let rows = shown.iter().skip(first).take(ROWS_PER_PAGE);

    form(page, filter);
    let _ = writeln!(
        page,
        "<p class=\"muted\">{matching} {word}{filtered}{range}</p>",
        matching = shown.len(),
        word = if shown.len() == 1 {
            "target"
        } else {
            "targets"
        },
        filtered = if filter.state.is_none() && filter.kind.is_none() && filter.search.is_empty() {
            ""
        } else {
            " match the filter"
        },
        range = if pages > 1 {
            format!(
                "; rows {}&ndash;{} (page {current} of {pages})",
                first + 1,
                (first + ROWS_PER_PAGE).min(shown.len())
            )
        } else {
            String::new()
        },
    );
    page.push_str("<table class=\"targets\">\n<thead><tr><th class=\"kind\">Kind</th><th class=\"target\">Target</th><th class=\"state\">State</th><th class=\"interval\">Interval</th><th class=\"time\">Last success</th><th class=\"time\">Next poll</th><th>Last error and notes</th></tr></thead>\n<tbody>\n");
    if inputs.targets.is_empty() {
        page.push_str("<tr><td colspan=\"7\" class=\"muted\">No targets configured.</td></tr>\n");
    } else if shown.is_empty() {
        page.push_str(
            "<tr><td colspan=\"7\" class=\"muted\">No target matches the filter.</td></tr>\n",
        );
    }
    for (key, status) in rows {
        row(page, key, status, inputs.now, inputs.solo);
    }
    page.push_str("</tbody></table>\n");
    if pages > 1 {
        page.push_str("<p class=\"pages\">");
        if current > 1 {
            let _ = write!(
                page,
                "<a href=\"{}\">&larr; previous</a> ",
                filter.link(filter.state, filter.kind, current - 1)
            );
        }
        let _ = write!(page, "page {current} of {pages}");
        if current < pages {
            let _ = write!(
                page,
                " <a href=\"{}\">next &rarr;</a>",
                filter.link(filter.state, filter.kind, current + 1)
            );
        }
        page.push_str("</p>\n");
    }
}

/// The filter form: a GET to this same page, so it works without JavaScript.
fn form(page: &mut String, filter: &TargetFilter) {
    page.push_str("<form class=\"filter\" method=\"get\" action=\"\"><label>State <select name=\"state\"><option value=\"\">any</option>");
    for state in STATE_ORDER {
        let _ = write!(
            page,
            "<option{selected}>{name}</option>",
            selected = if filter.state == Some(state) {
                " selected"
            } else {
                ""
            },
            name = state.as_str()
        );
    }
    page.push_str(
        "</select></label> <label>Kind <select name=\"kind\"><option value=\"\">any</option>",
    );
    for kind in TargetKind::ALL {
        let _ = write!(
            page,
            "<option{selected}>{name}</option>",
            selected = if filter.kind == Some(kind) {
                " selected"
            } else {
                ""
            },
            name = kind.as_str()
        );
    }
    let _ = writeln!(
        page,
        "</select></label> <label>Id or name <input type=\"search\" name=\"q\" value=\"{q}\" maxlength=\"{MAX_SEARCH_CHARS}\"></label> <button type=\"submit\">Show</button> <a href=\"?\">clear</a></form>",
        q = esc(&filter.search),
    );
}

fn row(page: &mut String, key: &TargetKey, status: &TargetStatus, now: i64, solo: &[SoloTarget]) {
    let class = status.state.as_str();
    let state_text = match status.disabled_reason {
        Some(reason) => format!("disabled: {reason}"),
        None => class.to_owned(),
    };
    let name = status
        .name
        .as_deref()
        .map(|name| format!("<br><span class=\"name\">{}</span>", esc(name)))
        .unwrap_or_default();
    let origin = match status.origin {
        Origin::Static => "",
        Origin::Discovered => " <small>discovered</small>",
    };
    let last_success = status
        .last_success
        .map_or_else(|| "never".to_owned(), |t| relative(t, now));
    // A poll that did not succeed says when it ran.
    let last_poll = match (status.last_poll, status.last_success) {
        (Some(poll), Some(success)) if poll <= success => String::new(),
        (Some(poll), _) => format!("<br><small>polled {}</small>", relative(poll, now)),
        (None, _) => String::new(),
    };
    let next_poll = next_poll(status, now);
    let _ = writeln!(
        page,
        "<tr class=\"row-{class}\"><td>{kind}</td><td class=\"id\">{id}{origin}{name}</td><td><span class=\"badge {class}\">{state_text}</span></td><td>{interval}</td><td>{last_success}{last_poll}</td><td>{next_poll}</td><td>{details}</td></tr>",
        kind = kind_name(key.kind),
        id = esc(&key.id),
        interval = duration(status.interval),
        details = details(status, key, now, solo),
    );
}

/// When the next poll comes, and why it is later than one interval; a poll that is due is
/// "due now", not "6 seconds ago": it is running or waiting for a slot.
fn next_poll(status: &TargetStatus, now: i64) -> String {
    let Some(at) = status.next_poll else {
        return "-".to_owned();
    };
    let when = if at <= now {
        "due now".to_owned()
    } else {
        relative(at, now)
    };
    if status.backoff.is_zero() {
        return when;
    }
    format!(
        "{when} <small>({}: +{})</small>",
        match status.backoff_reason {
            Some("whatsapp_budget") => "spaced under rate_limits.whatsapp_calls_per_hour",
            Some("usage") => "rate limit usage high",
            _ => "rate limit",
        },
        rounded(status.backoff)
    )
}

/// The last error (while the target is not ok again), the failed reads of a partial poll,
/// and the notes: dropped metrics, what the account does not offer, refused reads, health in
/// Meta's words, the slow lane, series cut.
fn details(status: &TargetStatus, key: &TargetKey, now: i64, solo: &[SoloTarget]) -> String {
    let mut html = String::new();
    match &status.last_error {
        Some(error) if status.state != State::Ok => {
            let code = error
                .code
                .map(|code| format!("<span class=\"code\">{code}</span> "))
                .unwrap_or_default();
            let _ = write!(
                html,
                "{code}{class}: {message} <small>({at})</small>",
                class = error.class,
                message = esc(&error.message),
                at = relative(error.at, now),
            );
        }
        _ => {}
    }
    let mut note = |text: String| {
        let _ = write!(html, "<br><small>{text}</small>");
    };
    if !status.dropped.is_empty() {
        note(format!(
            "no longer requested (rejected by the API): {}",
            esc(&status.dropped.join(", "))
        ));
    }
    let states = |scope: UnavailableScope| -> Vec<String> {
        status
            .unavailable
            .iter()
            .filter(|state| state.scope == scope)
            .map(|state| format!("{} ({})", state.feature, state.reason.replace('_', " ")))
            .collect()
    };
    let features = states(UnavailableScope::Feature);
    if !features.is_empty() {
        note(format!(
            "not offered by Meta for this account, not asked for: {}",
            esc(&features.join(", "))
        ));
    }
    let refused = states(UnavailableScope::Read);
    if !refused.is_empty() {
        note(format!(
            "reads refused by Meta, asked again in a day or after a credentials change: {}",
            esc(&refused.join(", "))
        ));
    }
    // Each failed read of a partial poll, with Meta's message: the rest of the target
    // published, so the last error alone would not say which part is missing.
    if status.state == State::Partial {
        for failure in &status.failed_reads {
            note(format!(
                "read {} failed ({}{}): {}; its last values stay until they go stale",
                esc(&failure.read),
                failure.class,
                failure
                    .code
                    .map(|code| format!(", code {code}"))
                    .unwrap_or_default(),
                esc(&failure.message)
            ));
        }
    }
    // WhatsApp health in Meta's words, which never go into labels.
    for entity in &status.health {
        let codes = if entity.error_codes.is_empty() {
            String::new()
        } else {
            let codes: Vec<String> = entity.error_codes.iter().map(i64::to_string).collect();
            format!(" (error {})", codes.join(", "))
        };
        let words = if entity.notes.is_empty() {
            String::new()
        } else {
            format!(": {}", entity.notes.join(" "))
        };
        note(format!(
            "health: {} {} is {}{}",
            esc(&entity.entity_type),
            esc(&entity.id),
            esc(&entity.can_send_message),
            esc(&format!("{codes}{words}"))
        ));
    }
    // Solo: its calls hung or crawled, so it polls outside batch calls and in the slow lane,
    // where it cannot hold up any other target.
    if let Some(solo) = solo.iter().find(|solo| solo.object_id == key.id) {
        note(format!(
            "polls alone in the slow lane (outside batch calls) since {} ({}: its calls were {} when sent alone); rejoins after {} prompt answers in a row, {} so far",
            relative(solo.since, now),
            solo.reason.as_str(),
            match solo.reason {
                SoloReason::Timeout => "timing out",
                SoloReason::Slow => "slower than polling.batch_timeout",
            },
            PROMPT_ANSWERS_TO_LEAVE,
            solo.prompt_streak
        ));
    }
    for cut in &status.series_cut {
        note(format!("series limit: {}", esc(cut)));
    }
    html
}

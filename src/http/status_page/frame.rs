//! The frame of the status page: the document head with its inline styles, the title and
//! links, and the end. Links are relative, so the page works behind a path prefix (a reverse
//! proxy's, or `--web.route-prefix`).

use std::fmt::Write as _;

use super::format::{esc, utc};
use super::PageInputs;

/// How often the status page reloads itself: often enough to follow a failing target, rarely
/// enough not to matter next to Prometheus' scrapes (each render only reads the status board).
const REFRESH_SECONDS: u32 = 30;

/// Styles: no external assets. Tables take the window's width and wrap long words, so the
/// page never scrolls sideways at 1,280 px; the targets table has fixed column widths so a
/// long error wraps in its own column instead of widening the table.
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#1f2328;background:#fff}\
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.2em;margin:1.5em 0 .5em}\
a{color:#0b57d0}.muted{color:#59636e}.summary{font-size:1.05em;margin:1em 0}\
.badge{display:inline-block;border-radius:1em;padding:.15em .7em;margin-right:.4em;font-weight:600;text-decoration:none}\
table{border-collapse:collapse;width:100%}\
th,td{border-bottom:1px solid #d1d9e0;padding:.4em .5em;text-align:left;vertical-align:top;overflow-wrap:anywhere}\
th{background:#f6f8fa;font-weight:600}\
table.counts{width:auto;margin-bottom:1em}table.counts td,table.counts th{padding:.25em .8em;text-align:right}\
table.counts td:first-child,table.counts th:first-child{text-align:left}\
table.targets{table-layout:fixed}th.kind{width:7em}th.target{width:11em}th.state{width:7.5em}th.interval{width:5em}th.time{width:8.5em}\
td.id,.code{font-family:ui-monospace,monospace}.name{font-family:system-ui,sans-serif}\
td small{color:#59636e}form.filter{margin:1em 0}form.filter label{margin-right:.6em}\
.ok{background:#dafbe1;color:#116329}.failing{background:#fff1c2;color:#7d4e00}\
.partial{background:#fff8dc;color:#6b4a00}.disabled{background:#ffebe9;color:#a40e26}\
.pending{background:#eff2f5;color:#59636e}\
tr.row-failing{background:#fffbeb}tr.row-partial{background:#fffdf3}tr.row-disabled{background:#fff5f5}";

/// From the doctype to the line under the title.
pub(super) fn head(page: &mut String, inputs: &PageInputs<'_>) {
    // Relative to the page, which is served at the root of the exporter's paths.
    let metrics = esc(inputs.telemetry_path.trim_start_matches('/'));
    let _ = write!(
        page,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>Meta messaging exporter</title>
<style>{STYLE}</style>
</head><body>
<h1>Meta messaging exporter</h1>
<p class="muted">Page messaging insights, marketing-message campaign insights and WhatsApp Business Account analytics, polled from the Graph API in the background; scrapes never call Meta. Version {version}; as of {now}; this page reloads every {REFRESH_SECONDS} s.</p>
<p><a href="./{metrics}">Metrics</a> &middot; <a href="./-/healthy">Health</a> &middot; <a href="./-/ready">Readiness</a></p>
"#,
        version = env!("CARGO_PKG_VERSION"),
        now = utc(inputs.now),
    );
    if inputs.shard.total() > 1 {
        let _ = writeln!(
            page,
            "<p class=\"muted\">This instance is shard {} of {} (<code>--shard</code>, <code>--total-shards</code>): it polls only the targets whose hash falls in its shard, and the other shards poll the rest.</p>",
            inputs.shard.index(),
            inputs.shard.total()
        );
    }
}

/// The end of the document.
pub(super) fn foot(page: &mut String) {
    page.push_str("</body></html>\n");
}

//! A Page's insights history: read in windows of at most 90 days, replayed per step.
//!
//! A live poll at `t` asks for a metric's `window` ending at `t`, or, without one, for
//! Meta's default of the last two days; of the rows it gets, the latest `end_time` per label
//! set wins. Replaying hands [`crate::convert::page::convert`] exactly the rows that ended
//! in `(t - window, t]`. `total_over_range` values cover a range that ends at the poll itself,
//! which no history holds, so those metrics are left out with a note.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use super::history::History;
use super::range::Span;
use super::Caller;
use crate::config::{PageTarget, Period};
use crate::convert::{page as convert, parse_time};
use crate::exposition::Family;
use crate::poller::names::PAGE_INFO;
use crate::poller::page::{groups, ranged_request, Group, PARAMETERS};
use crate::poller::{fetch_dropping_invalid, Plan, Verdicts};

/// The longest `since`/`until` range Page insights accept.
const MAX_WINDOW: i64 = 90 * 86_400;
/// What a request without `since` and `until` covers.
const DEFAULT_LOOKBACK: Duration = Duration::from_secs(2 * 86_400);

/// The rows of one group's answers by metric and period, each with its `end_time`.
type RowsByMetric = BTreeMap<(String, String), Vec<(i64, Value)>>;
/// Per metric, the rows `[lo, hi)` a live poll at some instant received.
type Bounds = Vec<(usize, usize)>;

/// One metric's rows over the whole history, sorted by `end_time`.
struct Rows {
    name: String,
    period: String,
    rows: Vec<(i64, Value)>,
}

/// A group's rows, and how far back a live poll of it looks.
struct GroupHistory {
    lookback: i64,
    metrics: Vec<Rows>,
}

/// Backfills `target` into `history`; the notes say what was left out.
pub async fn backfill(
    caller: &Caller<'_>,
    target: &PageTarget,
    span: &Span,
    history: &mut History,
) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    let (replayable, over_range): (Vec<_>, Vec<_>) = target
        .metrics
        .iter()
        .partition(|metric| metric.period != Period::TotalOverRange);
    for metric in over_range {
        notes.push(format!(
            "{} (period total_over_range) left out: its value covers a range ending at the poll, which history cannot replay",
            metric.name
        ));
    }
    let token = &target.credentials.token;
    let groups = groups(replayable.into_iter());
    // Every window of every group at once: they meet in batch calls instead of each waiting
    // for the one before.
    let reads = groups.iter().enumerate().flat_map(|(index, group)| {
        let lookback = lookback(group);
        windows(span.since - lookback, span.until)
            .into_iter()
            .map(move |window| (index, group, window))
    });
    let answers =
        futures::future::join_all(reads.map(|(index, group, (since, until))| async move {
            let plan = Plan {
                items: group.metrics.clone(),
                retried: |_: &str| false,
                // One look at each window: a metric that fails alone while the rest is
                // answered is left out with a note rather than failing the whole history.
                suspected: |_: &str| true,
                parameters: PARAMETERS,
                send: |metrics: Vec<String>| {
                    let request = ranged_request(&target.id, group, &metrics, Some((since, until)));
                    async move { caller.get(&request, token).await }
                },
            };
            let mut verdicts = Verdicts::default();
            let answers = fetch_dropping_invalid(plan, &mut verdicts).await;
            (index, verdicts.dropped, answers)
        }))
        .await;
    let mut rows: Vec<RowsByMetric> = groups.iter().map(|_| BTreeMap::new()).collect();
    for (index, rejected, answers) in answers {
        let group = &groups[index];
        for metric in rejected {
            let note = format!(
                "{} left out: Meta rejected it (code 100)",
                group.entry_name(&metric)
            );
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
        let answers = answers.map_err(|error| error.to_string())?;
        for (_, body) in answers {
            collect_rows(group, &body, &mut rows[index])?;
        }
    }
    let groups_read: Vec<GroupHistory> = groups
        .iter()
        .zip(rows)
        .map(|(group, rows)| GroupHistory {
            lookback: lookback(group),
            metrics: rows
                .into_iter()
                .map(|((name, period), mut rows)| {
                    rows.sort_by_key(|(end, _)| *end);
                    Rows { name, period, rows }
                })
                .collect(),
        })
        .collect();
    let info = caller
        .info_family(
            PAGE_INFO,
            &target.id,
            "name",
            token,
            target.name.as_deref(),
            target.origin,
        )
        .await;
    let step = span.step_for(target.schedule.interval);
    // Consecutive instants that saw the same rows made the same families.
    let mut last: Option<(Bounds, Vec<Family>)> = None;
    for t in span.instants(step) {
        let bounds: Bounds = groups_read
            .iter()
            .flat_map(|group| {
                group.metrics.iter().map(move |metric| {
                    let lo = metric
                        .rows
                        .partition_point(|(end, _)| *end <= t - group.lookback);
                    let hi = metric.rows.partition_point(|(end, _)| *end <= t);
                    (lo, hi)
                })
            })
            .collect();
        let families = match &last {
            Some((seen, families)) if *seen == bounds => families.clone(),
            _ => {
                let families = replay(&target.id, &groups_read, &bounds)?;
                last = Some((bounds, families.clone()));
                families
            }
        };
        let mut families = families;
        families.extend(info.clone());
        history.record(t, step, families);
    }
    Ok(notes)
}

/// How far back a live poll of `group` looks: its window, or Meta's default.
fn lookback(group: &Group) -> i64 {
    group.window.unwrap_or(DEFAULT_LOOKBACK).as_secs() as i64
}

/// `[from, until)` cut into consecutive windows of at most 90 days.
fn windows(from: i64, until: i64) -> Vec<(i64, i64)> {
    let mut windows = Vec::new();
    let mut since = from;
    while since < until {
        let end = (since + MAX_WINDOW).min(until);
        windows.push((since, end));
        since = end;
    }
    windows
}

/// Files the rows of one answer under their metric and period.
fn collect_rows(group: &Group, body: &Value, rows: &mut RowsByMetric) -> Result<(), String> {
    let entries = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or("unexpected response shape: Page insights body has no `data` array")?;
    for entry in entries {
        let Some(name) = entry.get("name").and_then(Value::as_str) else {
            continue;
        };
        let period = entry
            .get("period")
            .and_then(Value::as_str)
            .unwrap_or(group.period.as_str());
        let values = entry.get("values").and_then(Value::as_array);
        let list = rows
            .entry((name.to_owned(), period.to_owned()))
            .or_default();
        for row in values.into_iter().flatten() {
            // A row without a readable end_time belongs to no instant; the live converter
            // would count it as a problem, and replaying it at every step would count it
            // thousands of times.
            if let Some(end) = row.get("end_time").and_then(parse_time) {
                list.push((end, row.clone()));
            }
        }
    }
    Ok(())
}

/// The families a live poll would have made from the rows within `bounds`.
fn replay(
    page_id: &str,
    groups: &[GroupHistory],
    bounds: &[(usize, usize)],
) -> Result<Vec<Family>, String> {
    let mut families = Vec::new();
    let metrics = groups.iter().flat_map(|group| group.metrics.iter());
    for (metric, &(lo, hi)) in metrics.zip(bounds) {
        if lo == hi {
            continue;
        }
        let values: Vec<Value> = metric.rows[lo..hi]
            .iter()
            .map(|(_, row)| row.clone())
            .collect();
        let body =
            json!({"data": [{"name": metric.name, "period": metric.period, "values": values}]});
        let converted =
            convert::convert(page_id, &metric.period, &body).map_err(|e| e.to_string())?;
        families.extend(converted.families);
    }
    Ok(families)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_range_is_read_in_windows_of_at_most_ninety_days() {
        let day = 86_400;
        assert_eq!(
            windows(0, 200 * day),
            vec![(0, 90 * day), (90 * day, 180 * day), (180 * day, 200 * day)]
        );
        assert_eq!(windows(0, day), vec![(0, day)]);
        assert!(windows(day, day).is_empty());
    }
}

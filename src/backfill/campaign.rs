//! A campaign's or ad account's insights history: the target's dates re-evaluated per day.
//!
//! A live poll asks for a `date_preset` such as `last_30d`, which Meta resolves against the
//! day of the poll. For each Pacific day of the span, backfill resolves the preset against that
//! day and asks for the same dates as a `time_range`, so every instant of the day gets the
//! value a live poll that day got. Presets that include the current day (`today`,
//! `this_month`, `maximum`, ...) changed through the day, which whole-day ranges cannot
//! replay: those targets are left out with a note. A fixed `time_range` is one call, written
//! for the instants after its last day.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use super::history::History;
use super::range::Span;
use super::Caller;
use crate::calendar;
use crate::config::{CampaignDates, CampaignTarget, Origin};
use crate::convert::campaign as convert;
use crate::exposition::Family;
use crate::poller::campaign::{request, InsightsObject, PARAMETERS};
use crate::poller::{fetch_dropping_invalid, Plan, Verdicts};

/// Presets whose range ends with the day of the poll, so their value grows through the day.
pub(super) const INCLUDES_TODAY: &[&str] = &[
    "today",
    "this_month",
    "this_quarter",
    "this_year",
    "this_week_mon_today",
    "this_week_sun_today",
    "maximum",
    "data_maximum",
];

/// Backfills `target` into `history`; the notes say what was left out.
pub async fn backfill(
    caller: &Caller<'_>,
    target: &CampaignTarget,
    object: InsightsObject,
    span: &Span,
    history: &mut History,
) -> Result<Vec<String>, String> {
    let step = span.step_for(target.schedule.interval);
    let instants: Vec<i64> = span.instants(step).collect();
    // Which dates each Pacific day of the span selected, and the instants of that day.
    let days: Vec<(NaiveDate, Option<(NaiveDate, NaiveDate)>)> = instants
        .iter()
        .map(|t| calendar::pacific_date(*t))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|day| (day, selected(&target.dates, day)))
        .collect();
    let mut notes = Vec::new();
    if let CampaignDates::Preset(preset) = &target.dates {
        if INCLUDES_TODAY.contains(&preset.as_str()) {
            return Ok(vec![format!(
                "left out: date_preset {preset} includes the day of each poll, so its value changed through the day and whole-day ranges cannot replay it"
            )]);
        }
    }
    if let CampaignDates::Range { until, .. } = &target.dates {
        if days.iter().any(|(_, dates)| dates.is_none()) {
            notes.push(format!(
                "instants up to {until} left out: a time_range answers its final value only once its last day is over"
            ));
        }
    }
    let token = &target.credentials.token;
    let mut ranges: Vec<(NaiveDate, NaiveDate)> =
        days.iter().filter_map(|(_, dates)| *dates).collect();
    ranges.dedup();
    let Some(first) = ranges.first().copied() else {
        return Ok(notes);
    };
    // The first range settles which fields Meta takes; the rest are asked with those, all
    // at once, so they meet in batch calls.
    let mut verdicts = Verdicts::default();
    let plan = Plan {
        items: target.fields.clone(),
        retried: |_: &str| false,
        // A backfill has one look at each range: a field that fails alone while the rest is
        // answered is left out with a note rather than failing the whole history.
        suspected: |_: &str| true,
        parameters: PARAMETERS,
        send: |fields: Vec<String>| {
            let request = request(object, &target.id, &as_range(first), &fields);
            async move { caller.get(&request, token).await }
        },
    };
    let first_answers = fetch_dropping_invalid(plan, &mut verdicts)
        .await
        .map_err(|error| error.to_string())?;
    let rejected = verdicts.dropped;
    for field in &rejected {
        notes.push(format!("{field} left out: Meta rejected it (code 100)"));
    }
    let fields: Vec<String> = target
        .fields
        .iter()
        .filter(|field| !rejected.contains(field))
        .cloned()
        .collect();
    let mut answers: Vec<((NaiveDate, NaiveDate), Vec<Family>)> = Vec::with_capacity(ranges.len());
    let mut first_families = Vec::new();
    for (asked, body) in &first_answers {
        let converted = convert::convert(object.id_label(), &target.id, &target.dates, asked, body)
            .map_err(|e| e.to_string())?;
        first_families.extend(converted.families);
    }
    answers.push((first, first_families));
    let rest = futures::future::join_all(ranges[1..].iter().map(|range| {
        let request = request(object, &target.id, &as_range(*range), &fields);
        async move { (*range, caller.get(&request, token).await) }
    }))
    .await;
    for (range, answer) in rest {
        let body = answer.map_err(|error| error.to_string())?;
        let converted =
            convert::convert(object.id_label(), &target.id, &target.dates, &fields, &body)
                .map_err(|e| e.to_string())?;
        answers.push((range, converted.families));
    }
    let info = caller
        .info_family(
            object.info(),
            &target.id,
            object.name_fields(),
            token,
            None,
            Origin::Static,
        )
        .await;
    for t in instants {
        let day = calendar::pacific_date(t);
        let Some(range) = days
            .iter()
            .find(|(d, _)| *d == day)
            .and_then(|(_, dates)| *dates)
        else {
            continue;
        };
        let Some((_, families)) = answers.iter().find(|(r, _)| *r == range) else {
            continue;
        };
        let mut families = families.clone();
        families.extend(info.clone());
        history.record(t, step, families);
    }
    Ok(notes)
}

/// The dates a live poll on the Pacific day `day` covered, when whole days can say.
fn selected(dates: &CampaignDates, day: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    match dates {
        CampaignDates::Preset(preset) if INCLUDES_TODAY.contains(&preset.as_str()) => None,
        CampaignDates::Preset(preset) => {
            calendar::resolve_preset(preset, day, day).map(|range| (range.since, range.until))
        }
        CampaignDates::Range { since, until } => (day > *until).then_some((*since, *until)),
    }
}

fn as_range((since, until): (NaiveDate, NaiveDate)) -> CampaignDates {
    CampaignDates::Range { since, until }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    #[test]
    fn a_preset_is_resolved_against_each_day() {
        let preset = CampaignDates::Preset("last_7d".into());
        assert_eq!(
            selected(&preset, date(2026, 11, 10)),
            Some((date(2026, 11, 3), date(2026, 11, 9)))
        );
        assert_eq!(
            selected(&preset, date(2026, 11, 11)),
            Some((date(2026, 11, 4), date(2026, 11, 10)))
        );
        assert_eq!(
            selected(&CampaignDates::Preset("today".into()), date(2026, 11, 10)),
            None
        );
    }

    #[test]
    fn a_fixed_range_counts_once_it_is_over() {
        let range = CampaignDates::Range {
            since: date(2026, 11, 1),
            until: date(2026, 11, 5),
        };
        assert_eq!(selected(&range, date(2026, 11, 5)), None);
        assert_eq!(
            selected(&range, date(2026, 11, 6)),
            Some((date(2026, 11, 1), date(2026, 11, 5)))
        );
    }
}

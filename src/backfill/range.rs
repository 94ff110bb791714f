//! The span and step a backfill covers, checked before any call: `--since` and `--until` as
//! given, Meta's retention per read path, and the instants at which samples are written.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use crate::target::TargetKind;

/// The shortest step: below it the file only repeats values that change daily.
pub const MIN_STEP: Duration = Duration::from_secs(60);
/// The longest step: beyond it a day's value could be skipped.
pub const MAX_STEP: Duration = Duration::from_secs(86_400);
const DAY: i64 = 86_400;

/// How far back Meta answers each read path, in days, and how the error names it. Page
/// insights are kept about two years and WhatsApp analytics about one (`graph-api.md`); ads
/// insights, which campaigns and ad accounts read, 37 months.
fn retention(kind: TargetKind) -> (i64, &'static str) {
    match kind {
        TargetKind::Page => (730, "Page insights for about two years"),
        TargetKind::WhatsappBusinessAccount => {
            (365, "WhatsApp Business analytics for about one year")
        }
        TargetKind::Campaign | TargetKind::AdAccount => {
            (1125, "campaign and ad-account insights for 37 months")
        }
    }
}

/// `[since, until)` in unix seconds, and the step when one was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First instant written.
    pub since: i64,
    /// First instant not written.
    pub until: i64,
    /// `--step`; without it each target's own interval.
    pub step: Option<Duration>,
    /// When the backfill runs: how far back Meta still answers is counted from here.
    pub now: i64,
}

/// Why a backfill's flags cannot be used; each names the flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpanError(pub String);

/// Reads `--since` or `--until`: a date (`2026-09-01`, its 00:00 UTC) or an RFC 3339 time.
pub fn parse_instant(flag: &str, text: &str) -> Result<i64, SpanError> {
    let text = text.trim();
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date
            .and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp()));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.timestamp())
        .map_err(|_| {
            SpanError(format!(
                "{flag} {text:?}: expected a date such as 2026-09-01 (00:00 UTC) or an RFC 3339 time such as 2026-09-01T00:00:00Z"
            ))
        })
}

impl Span {
    /// Checks the span against `now` and against what Meta keeps for each kind of target.
    pub fn new(
        since: i64,
        until: i64,
        step: Option<Duration>,
        now: i64,
        kinds: &[TargetKind],
    ) -> Result<Span, SpanError> {
        if since >= until {
            return Err(SpanError(format!(
                "--since {} is not before --until {}",
                format_time(since),
                format_time(until)
            )));
        }
        if until > now {
            return Err(SpanError(format!(
                "--until {} is in the future (now is {}); backfill writes history, and live scrapes take over where it ends",
                format_time(until),
                format_time(now)
            )));
        }
        if let Some(step) = step {
            if step < MIN_STEP || step > MAX_STEP {
                return Err(SpanError(format!(
                    "--step {}: must be between 1m and 1d",
                    humantime::format_duration(step)
                )));
            }
        }
        // The shortest retention binds: it is the one to name.
        let mut kinds = kinds.to_vec();
        kinds.sort_unstable_by_key(|kind| (retention(*kind).0, kind.as_str()));
        kinds.dedup();
        for kind in kinds {
            let (days, what) = retention(kind);
            let earliest = now - days * DAY;
            if since < earliest {
                return Err(SpanError(format!(
                    "--since {}: Meta keeps {what}, so with {} targets configured --since can go back to {} at the earliest",
                    format_time(since),
                    kind.as_str(),
                    format_time(earliest.div_euclid(DAY) * DAY + DAY)
                )));
            }
        }
        Ok(Span {
            since,
            until,
            step,
            now,
        })
    }

    /// The step for a target polled every `interval`: `--step`, or the interval held within
    /// [`MIN_STEP`] and [`MAX_STEP`].
    pub fn step_for(&self, interval: Duration) -> i64 {
        let step = self.step.unwrap_or(interval).clamp(MIN_STEP, MAX_STEP);
        i64::try_from(step.as_secs()).unwrap_or(DAY)
    }

    /// The instants `since, since + step, ...` before `until`.
    pub fn instants(&self, step: i64) -> impl Iterator<Item = i64> + '_ {
        let step = step.max(1);
        (0..)
            .map(move |n: i64| self.since + n * step)
            .take_while(move |t| *t < self.until)
    }
}

/// A time as the errors and the summary print it.
pub fn format_time(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0)
        .map(|time| time.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_083_200; // 2026-12-01T00:00:00Z

    fn at(text: &str) -> i64 {
        parse_instant("--since", text).expect("instant")
    }

    #[test]
    fn dates_are_utc_midnights_and_times_are_rfc_3339() {
        assert_eq!(at("2026-12-01"), NOW);
        assert_eq!(at("2026-12-01T01:00:00+01:00"), NOW);
        let error = parse_instant("--until", "yesterday").expect_err("not a date");
        assert!(error
            .0
            .starts_with("--until \"yesterday\": expected a date"));
    }

    #[test]
    fn since_must_come_before_until_and_until_may_not_be_in_the_future() {
        let error = Span::new(NOW, NOW - DAY, None, NOW, &[]).expect_err("reversed");
        assert_eq!(
            error.0,
            "--since 2026-12-01T00:00:00Z is not before --until 2026-11-30T00:00:00Z"
        );
        let error = Span::new(NOW - DAY, NOW + 60, None, NOW, &[]).expect_err("future");
        assert!(error
            .0
            .starts_with("--until 2026-12-01T00:01:00Z is in the future"));
    }

    #[test]
    fn a_step_below_a_minute_or_above_a_day_is_refused() {
        for step in [Duration::from_secs(59), Duration::from_secs(86_401)] {
            let error = Span::new(NOW - DAY, NOW, Some(step), NOW, &[]).expect_err("step");
            assert!(error.0.contains("must be between 1m and 1d"), "{}", error.0);
        }
        let span = Span::new(NOW - DAY, NOW, Some(Duration::from_secs(60)), NOW, &[]);
        assert!(span.is_ok());
    }

    #[test]
    fn a_span_beyond_what_meta_keeps_names_the_read_path_and_the_earliest_date() {
        let since = NOW - 400 * DAY;
        assert!(Span::new(since, NOW, None, NOW, &[TargetKind::Page]).is_ok());
        let error = Span::new(
            since,
            NOW,
            None,
            NOW,
            &[TargetKind::Page, TargetKind::WhatsappBusinessAccount],
        )
        .expect_err("a year of WhatsApp analytics at most");
        assert_eq!(
            error.0,
            "--since 2025-10-27T00:00:00Z: Meta keeps WhatsApp Business analytics for about one year, so with whatsapp_business_account targets configured --since can go back to 2025-12-02T00:00:00Z at the earliest"
        );
    }

    #[test]
    fn the_instants_start_at_since_and_stop_before_until() {
        let span = Span::new(NOW - 3600, NOW, None, NOW, &[]).expect("span");
        let instants: Vec<i64> = span.instants(900).collect();
        assert_eq!(
            instants,
            vec![NOW - 3600, NOW - 2700, NOW - 1800, NOW - 900]
        );
        assert_eq!(span.step_for(Duration::from_secs(10)), 60);
        assert_eq!(span.step_for(Duration::from_secs(7200)), 7200);
    }
}

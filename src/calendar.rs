//! Pacific-time calendar arithmetic: where Meta's days and months begin.
//!
//! Page insights and WhatsApp Business analytics cut time at midnight America/Los_Angeles,
//! whatever the time zone of the Page or business, so a Meta "day" starts at 07:00 or 08:00 UTC
//! and lasts 23, 24 or 25 hours. The read paths work in unix seconds and ask this module where
//! the boundaries are. It also resolves the relative `date_preset` names both insights endpoints
//! accept, and formats and parses their dates. The simulator cuts its answers with it, and
//! backfill uses it to ask, day by day, for the dates a preset selected on that day.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::America::Los_Angeles;

/// The Pacific calendar date containing the instant `t` (unix seconds).
pub(crate) fn pacific_date(t: i64) -> NaiveDate {
    // Only absurd query parameters produce out-of-range instants, and the read paths reject
    // those first; the epoch fallback just keeps this function total.
    let utc = DateTime::<Utc>::from_timestamp(t, 0).unwrap_or_default();
    utc.with_timezone(&Los_Angeles).date_naive()
}

/// The instant (unix seconds) at which the Pacific date `date` begins.
pub(crate) fn midnight(date: NaiveDate) -> i64 {
    let local = date.and_time(NaiveTime::MIN);
    // Los Angeles moves its clocks at 02:00, so local midnight exists exactly once; the PST
    // offset fallback only keeps this function total.
    Los_Angeles
        .from_local_datetime(&local)
        .earliest()
        .map_or_else(
            || local.and_utc().timestamp() + 8 * 3600,
            |start| start.timestamp(),
        )
}

/// The start of the Pacific day containing `t`.
#[cfg(feature = "demo")]
pub(crate) fn day_start(t: i64) -> i64 {
    midnight(pacific_date(t))
}

/// `date` moved by `days` (negative moves back), saturating at chrono's calendar limits.
pub(crate) fn shift_days(date: NaiveDate, days: i64) -> NaiveDate {
    let magnitude = Days::new(days.unsigned_abs());
    let shifted = if days >= 0 {
        date.checked_add_days(magnitude)
    } else {
        date.checked_sub_days(magnitude)
    };
    shifted.unwrap_or(date)
}

/// `date` moved by `months` (negative moves back), clamping the day to the month's length.
pub(crate) fn shift_months(date: NaiveDate, months: i32) -> NaiveDate {
    let magnitude = Months::new(months.unsigned_abs());
    let shifted = if months >= 0 {
        date.checked_add_months(magnitude)
    } else {
        date.checked_sub_months(magnitude)
    };
    shifted.unwrap_or(date)
}

/// The first day of the month containing `date`.
pub(crate) fn first_of_month(date: NaiveDate) -> NaiveDate {
    date.with_day(1).unwrap_or(date)
}

/// The instant as Graph writes insights end times: `2024-01-02T08:00:00+0000`.
#[cfg(feature = "demo")]
pub(crate) fn iso_time(t: i64) -> String {
    let utc = DateTime::<Utc>::from_timestamp(t, 0).unwrap_or_default();
    utc.format("%Y-%m-%dT%H:%M:%S+0000").to_string()
}

/// A date as the ads-insights endpoints write it: `2024-05-01`.
#[cfg(feature = "demo")]
pub(crate) fn ymd(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// Parses a `YYYY-MM-DD` date.
#[cfg(feature = "demo")]
pub(crate) fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()
}

/// Parses a Page insights `since`/`until`: unix seconds, or `YYYY-MM-DD` meaning that date's
/// Pacific midnight.
#[cfg(feature = "demo")]
pub(crate) fn parse_instant(text: &str) -> Option<i64> {
    let text = text.trim();
    text.parse::<i64>()
        .ok()
        .or_else(|| parse_date(text).map(midnight))
}

/// An inclusive range of Pacific dates, as `date_preset` and `time_range` select them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DateRange {
    /// The first date in the range.
    pub(crate) since: NaiveDate,
    /// The last date in the range (inclusive).
    pub(crate) until: NaiveDate,
}

/// Resolves a `date_preset` name relative to `today`; `earliest` is where `maximum` and
/// `data_maximum` begin. `None` for a name that is not one of [`crate::catalog::DATE_PRESETS`].
pub(crate) fn resolve_preset(
    preset: &str,
    today: NaiveDate,
    earliest: NaiveDate,
) -> Option<DateRange> {
    let yesterday = shift_days(today, -1);
    // "last_Nd" means the N whole days before today, today excluded.
    let last_days = |n: i64| (shift_days(today, -n), yesterday);
    let month = first_of_month(today);
    let quarter = shift_months(month, -i32::try_from(today.month0() % 3).unwrap_or(0));
    let year = shift_months(month, -i32::try_from(today.month0()).unwrap_or(0));
    let monday = shift_days(today, -i64::from(today.weekday().num_days_from_monday()));
    let sunday = shift_days(today, -i64::from(today.weekday().num_days_from_sunday()));
    let (since, until) = match preset {
        "today" => (today, today),
        "yesterday" => (yesterday, yesterday),
        "last_3d" => last_days(3),
        "last_7d" => last_days(7),
        "last_14d" => last_days(14),
        "last_28d" => last_days(28),
        "last_30d" => last_days(30),
        "last_90d" => last_days(90),
        "this_month" => (month, today),
        "last_month" => (shift_months(month, -1), shift_days(month, -1)),
        "this_quarter" => (quarter, today),
        "last_quarter" => (shift_months(quarter, -3), shift_days(quarter, -1)),
        "this_year" => (year, today),
        "last_year" => (shift_months(year, -12), shift_days(year, -1)),
        "this_week_mon_today" => (monday, today),
        "this_week_sun_today" => (sunday, today),
        "last_week_mon_sun" => (shift_days(monday, -7), shift_days(monday, -1)),
        "last_week_sun_sat" => (shift_days(sunday, -7), shift_days(sunday, -1)),
        "maximum" | "data_maximum" => (earliest.min(today), today),
        _ => return None,
    };
    Some(DateRange { since, until })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
    }

    #[test]
    fn pacific_days_start_at_eight_utc_in_winter_and_seven_in_summer() {
        assert_eq!(
            iso_time(midnight(date(2024, 1, 2))),
            "2024-01-02T08:00:00+0000"
        );
        assert_eq!(
            iso_time(midnight(date(2024, 7, 2))),
            "2024-07-02T07:00:00+0000"
        );
    }

    #[test]
    fn dst_days_last_twenty_three_and_twenty_five_hours() {
        let spring = midnight(date(2024, 3, 11)) - midnight(date(2024, 3, 10));
        let autumn = midnight(date(2024, 11, 4)) - midnight(date(2024, 11, 3));
        assert_eq!((spring, autumn), (23 * 3600, 25 * 3600));
    }

    #[test]
    fn an_instant_belongs_to_the_pacific_day_it_falls_in() {
        // 2024-01-02 07:59:59 UTC is still January 1st in Los Angeles.
        let t = midnight(date(2024, 1, 2)) - 1;
        assert_eq!(pacific_date(t), date(2024, 1, 1));
        assert_eq!(day_start(t), midnight(date(2024, 1, 1)));
    }

    #[test]
    fn since_and_until_accept_unix_seconds_and_dates() {
        assert_eq!(parse_instant("1665175977"), Some(1_665_175_977));
        assert_eq!(
            parse_instant("2024-01-02"),
            Some(midnight(date(2024, 1, 2)))
        );
        assert_eq!(parse_instant("next tuesday"), None);
    }

    #[test]
    fn presets_resolve_to_whole_days_before_today() {
        let today = date(2024, 5, 15); // a Wednesday
        let range = |preset| resolve_preset(preset, today, date(2024, 1, 1));
        assert_eq!(
            range("last_7d"),
            Some(DateRange {
                since: date(2024, 5, 8),
                until: date(2024, 5, 14)
            })
        );
        assert_eq!(
            range("last_month"),
            Some(DateRange {
                since: date(2024, 4, 1),
                until: date(2024, 4, 30)
            })
        );
        assert_eq!(
            range("last_quarter"),
            Some(DateRange {
                since: date(2024, 1, 1),
                until: date(2024, 3, 31)
            })
        );
        assert_eq!(
            range("last_week_mon_sun"),
            Some(DateRange {
                since: date(2024, 5, 6),
                until: date(2024, 5, 12)
            })
        );
        assert_eq!(
            range("this_week_sun_today"),
            Some(DateRange {
                since: date(2024, 5, 12),
                until: today
            })
        );
        assert_eq!(
            range("last_year"),
            Some(DateRange {
                since: date(2023, 1, 1),
                until: date(2023, 12, 31)
            })
        );
        assert_eq!(range("next_week"), None);
    }

    #[test]
    fn every_catalog_preset_resolves_to_a_range_ending_by_today() {
        let today = date(2024, 5, 15);
        for preset in crate::catalog::DATE_PRESETS {
            let range = resolve_preset(preset, today, date(2023, 2, 1));
            let range = range.unwrap_or_else(|| panic!("{preset} did not resolve"));
            assert!(
                range.since <= range.until && range.until <= today,
                "{preset}: {range:?}"
            );
        }
    }
}

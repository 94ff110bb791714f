//! How the status page writes values for people: escaped text, UTC times, relative times
//! rounded the way people say them ("2 minutes ago", "in 5 days"), and durations ("15 min",
//! "1 day").

use std::time::Duration;

use chrono::DateTime;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
/// Calendar lengths, averaged: relative times are rounded anyway.
const MONTH: u64 = 30 * DAY + 10 * HOUR;
const YEAR: u64 = 365 * DAY + 6 * HOUR;

/// Text from the config or the Graph API, safe in HTML text and attribute values: control
/// bytes shown as escapes, markup characters and quotes as entities.
pub(crate) fn esc(text: &str) -> String {
    html_escape::encode_quoted_attribute(&crate::printable::printable(text)).into_owned()
}

/// A unix time as `2026-11-21 13:05:00 UTC`.
pub(crate) fn utc(at: i64) -> String {
    DateTime::from_timestamp(at, 0).map_or_else(
        || at.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// A time relative to now, rounded (`2 minutes ago`, `now`, `in 5 days`), with the UTC time as
/// its tooltip: relative times read at a glance, and the summary gives the page's own time.
pub(crate) fn when(at: i64, now: i64) -> String {
    format!("<span title=\"{}\">{}</span>", utc(at), relative(at, now))
}

/// [`when`] without the tooltip.
pub(crate) fn relative(at: i64, now: i64) -> String {
    if at == now {
        return "now".to_owned();
    }
    let distance = rounded(Duration::from_secs(at.abs_diff(now)));
    if at < now {
        format!("{distance} ago")
    } else {
        format!("in {distance}")
    }
}

/// A span of time rounded down to its largest unit, as people say it: `45 seconds`,
/// `1 minute`, `3 hours`, `5 days`, `2 months`, `1 year`.
pub(crate) fn rounded(span: Duration) -> String {
    let seconds = span.as_secs();
    let (count, unit) = [
        (YEAR, "year"),
        (MONTH, "month"),
        (DAY, "day"),
        (HOUR, "hour"),
        (MINUTE, "minute"),
    ]
    .into_iter()
    .find(|(size, _)| seconds >= *size)
    .map_or((seconds, "second"), |(size, unit)| (seconds / size, unit));
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
}

/// A configured duration, short: `30 s`, `15 min`, `1 h 30 min`, `1 day`, `2 days 6 h`. Its
/// largest unit and the next one at most: `1h 0m 1s` is written `1 h`.
pub(crate) fn duration(span: Duration) -> String {
    let seconds = span.as_secs();
    if seconds == 0 {
        return format!("{} ms", span.as_millis());
    }
    const UNITS: [(u64, &str); 4] = [(DAY, "day"), (HOUR, "h"), (MINUTE, "min"), (1, "s")];
    let write = |count: u64, unit: &str| match unit {
        "day" if count > 1 => format!("{count} days"),
        _ => format!("{count} {unit}"),
    };
    let Some(first) = UNITS.iter().position(|(size, _)| seconds >= *size) else {
        return format!("{seconds} s");
    };
    let (size, unit) = UNITS[first];
    let mut text = write(seconds / size, unit);
    if let Some((next_size, next_unit)) = UNITS.get(first + 1) {
        let next = seconds % size / next_size;
        if next > 0 {
            text.push(' ');
            text.push_str(&write(next, next_unit));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_are_rounded_as_people_say_them() {
        let now = 1_790_000_000;
        assert_eq!(relative(now, now), "now");
        assert_eq!(relative(now - 1, now), "1 second ago");
        assert_eq!(relative(now - 61, now), "1 minute ago");
        assert_eq!(relative(now + 5 * 86_400 + 3600, now), "in 5 days");
        assert_eq!(relative(now - 61 * 86_400, now), "2 months ago");
        assert_eq!(relative(now + (59 * 86_400 + 13 * 3600), now), "in 1 month");
        assert_eq!(relative(now - 400 * 86_400, now), "1 year ago");
        assert!(when(now - 5, now).starts_with("<span title=\""), "tooltip");
    }

    #[test]
    fn durations_are_short_and_exact_to_two_units() {
        let d = |s: u64| duration(Duration::from_secs(s));
        assert_eq!(d(30), "30 s");
        assert_eq!(d(900), "15 min");
        assert_eq!(d(3600), "1 h");
        assert_eq!(d(5400), "1 h 30 min");
        assert_eq!(d(86_400), "1 day");
        assert_eq!(d(28 * 86_400), "28 days");
        assert_eq!(d(2 * 86_400 + 6 * 3600 + 5), "2 days 6 h");
        assert_eq!(d(3601), "1 h");
        assert_eq!(duration(Duration::from_millis(250)), "250 ms");
    }

    #[test]
    fn text_is_escaped_for_text_and_attributes() {
        assert_eq!(
            esc("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(esc("a\u{0}b"), "a\\u{0}b");
    }
}

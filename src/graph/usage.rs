//! Meta's rate-limit signals, read from the headers of every Graph API response.
//!
//! Meta reports how close a caller is to its limits in JSON-valued headers: `X-App-Usage`
//! (the app, per token), `X-Business-Use-Case-Usage` (per business object, with
//! `estimated_time_to_regain_access` once throttled), `X-Ad-Account-Usage` and
//! `x-fb-ads-insights-throttle` (ads endpoints), plus the standard `Retry-After`. Any of them
//! may be missing or malformed; a malformed one is reported (and counted) but never fails the
//! request that carried it. `facebook-api-version`, the version that actually served the
//! call, travels with them: after Meta upgrades an expired version it is the only sign.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::Value;

/// One usage percentage and what it measures.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageReading {
    /// `app`, `business_use_case`, `ad_account` or `ads_insights`.
    pub scope: &'static str,
    /// The business object or ad account id; empty for app-level readings.
    pub id: String,
    /// The business use case type (`pages`, `messenger`, `ads_insights`, ...); empty otherwise.
    pub kind: String,
    /// Which quantity: `call_count`, `total_cputime`, `total_time`, `acc_id_util_pct`, ...
    pub metric: &'static str,
    /// Percent of the limit used.
    pub percent: f64,
}

/// Everything the rate-limit headers of one response said.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// Every usage percentage reported.
    pub readings: Vec<UsageReading>,
    /// Business objects that reported being throttled, with the wait Meta estimates.
    pub regain_access: Vec<(String, Duration)>,
    /// The `Retry-After` header, in seconds form.
    pub retry_after: Option<Duration>,
    /// Headers that were present but unreadable, by name.
    pub malformed: Vec<&'static str>,
    /// `facebook-api-version`: the version Meta served the call with, when it said one.
    pub served_version: Option<String>,
    /// `X-Ad-Api-Version-Warning`: Meta's free-text notice that it upgraded the call (or
    /// soon will), control bytes escaped and cut to [`MAX_WARNING_CHARS`]. Only logged and
    /// counted, never parsed: the version that answered is `served_version`.
    pub version_warning: Option<String>,
}

/// How much of an `X-Ad-Api-Version-Warning` is kept for the log: Meta's are one sentence.
pub const MAX_WARNING_CHARS: usize = 300;

impl Usage {
    /// The highest usage percentage reported, if any.
    pub fn peak_percent(&self) -> Option<f64> {
        self.readings.iter().map(|r| r.percent).reduce(f64::max)
    }

    /// Business object ids the response reported on.
    pub fn business_ids(&self) -> impl Iterator<Item = &str> {
        self.readings
            .iter()
            .filter(|r| r.scope == "business_use_case")
            .map(|r| r.id.as_str())
    }
}

#[derive(Deserialize)]
struct AppUsage {
    call_count: Option<f64>,
    total_cputime: Option<f64>,
    total_time: Option<f64>,
}

#[derive(Deserialize)]
struct BusinessUseCase {
    #[serde(rename = "type", default)]
    kind: String,
    call_count: Option<f64>,
    total_cputime: Option<f64>,
    total_time: Option<f64>,
    /// Minutes; present (and non-zero) once the object is throttled.
    estimated_time_to_regain_access: Option<f64>,
}

/// Reads every rate-limit header of a response.
pub fn read(headers: &HeaderMap) -> Usage {
    let mut usage = Usage::default();
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());

    if let Some(raw) = text("facebook-api-version") {
        // Only `vMAJOR.MINOR` becomes a label value, so a strange header cannot grow series.
        let raw = raw.trim();
        if crate::catalog::versions::parse(raw).is_some() {
            usage.served_version = Some(raw.to_owned());
        } else {
            usage.malformed.push("facebook-api-version");
        }
    }

    if let Some(raw) = headers.get("x-ad-api-version-warning") {
        // Kept even when it is not ASCII: the notice matters, its exact bytes do not.
        let raw = String::from_utf8_lossy(raw.as_bytes());
        let escaped = crate::printable::printable(raw.trim());
        usage.version_warning = Some(escaped.chars().take(MAX_WARNING_CHARS).collect());
    }

    if let Some(raw) = text("x-app-usage") {
        match serde_json::from_str::<AppUsage>(raw) {
            Ok(app) => {
                for (metric, value) in [
                    ("call_count", app.call_count),
                    ("total_cputime", app.total_cputime),
                    ("total_time", app.total_time),
                ] {
                    push(&mut usage, "app", "", "", metric, value);
                }
            }
            Err(_) => usage.malformed.push("x-app-usage"),
        }
    }

    if let Some(raw) = text("x-business-use-case-usage") {
        match serde_json::from_str::<std::collections::BTreeMap<String, Vec<BusinessUseCase>>>(raw)
        {
            Ok(objects) => {
                for (id, cases) in objects {
                    for case in cases {
                        for (metric, value) in [
                            ("call_count", case.call_count),
                            ("total_cputime", case.total_cputime),
                            ("total_time", case.total_time),
                        ] {
                            push(
                                &mut usage,
                                "business_use_case",
                                &id,
                                &case.kind,
                                metric,
                                value,
                            );
                        }
                        if let Some(minutes) = case.estimated_time_to_regain_access {
                            if minutes.is_finite() && minutes > 0.0 {
                                let wait = Duration::from_secs_f64((minutes * 60.0).min(86_400.0));
                                usage.regain_access.push((id.clone(), wait));
                            }
                        }
                    }
                }
            }
            Err(_) => usage.malformed.push("x-business-use-case-usage"),
        }
    }

    for (header, scope) in [
        ("x-ad-account-usage", "ad_account"),
        ("x-fb-ads-insights-throttle", "ads_insights"),
    ] {
        let Some(raw) = text(header) else { continue };
        match serde_json::from_str::<serde_json::Map<String, Value>>(raw) {
            Ok(fields) => {
                for metric in ["acc_id_util_pct", "app_id_util_pct"] {
                    push(
                        &mut usage,
                        scope,
                        "",
                        "",
                        metric,
                        fields.get(metric).and_then(Value::as_f64),
                    );
                }
            }
            Err(_) => usage.malformed.push(header),
        }
    }

    if let Some(raw) = text("retry-after") {
        match raw.trim().parse::<u64>() {
            Ok(seconds) => usage.retry_after = Some(Duration::from_secs(seconds.min(86_400))),
            Err(_) => match httpdate_seconds(raw) {
                Some(wait) => usage.retry_after = Some(wait),
                None => usage.malformed.push("retry-after"),
            },
        }
    }
    usage
}

fn push(
    usage: &mut Usage,
    scope: &'static str,
    id: &str,
    kind: &str,
    metric: &'static str,
    value: Option<f64>,
) {
    if let Some(percent) = value.filter(|v| v.is_finite() && *v >= 0.0) {
        usage.readings.push(UsageReading {
            scope,
            id: id.to_owned(),
            kind: kind.to_owned(),
            metric,
            percent,
        });
    }
}

/// `Retry-After` in its HTTP-date form, as a wait from now.
fn httpdate_seconds(raw: &str) -> Option<Duration> {
    let at = chrono::DateTime::parse_from_rfc2822(raw.trim()).ok()?;
    let wait = at.timestamp() - chrono::Utc::now().timestamp();
    Some(Duration::from_secs(wait.clamp(0, 86_400) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("header value"));
        }
        map
    }

    #[test]
    fn the_served_version_is_read_and_anything_but_a_version_is_malformed() {
        let usage = read(&headers(&[("facebook-api-version", "v25.0")]));
        assert_eq!(usage.served_version.as_deref(), Some("v25.0"));
        assert!(usage.malformed.is_empty());
        let usage = read(&headers(&[("facebook-api-version", "latest, trust me")]));
        assert_eq!(usage.served_version, None);
        assert_eq!(usage.malformed, ["facebook-api-version"]);
        assert_eq!(read(&HeaderMap::new()).served_version, None);
    }

    #[test]
    fn the_version_warning_is_kept_as_text_escaped_and_cut() {
        // The live value seen on 2026-09-08 (graph-api.md 7.1).
        let live = "The call has been auto-upgraded to v26.0 as v25.0 will be deprecated.";
        let usage = read(&headers(&[("x-ad-api-version-warning", live)]));
        assert_eq!(usage.version_warning.as_deref(), Some(live));
        assert!(usage.malformed.is_empty());

        // Header values cannot carry control bytes, but they can carry bytes that are not
        // UTF-8, and any length.
        let mut hostile = b"upgraded \xff\xfe ".to_vec();
        hostile.extend(std::iter::repeat_n(b'x', 1000));
        let mut map = HeaderMap::new();
        map.insert(
            "x-ad-api-version-warning",
            HeaderValue::from_bytes(&hostile).expect("obs-text is a valid header value"),
        );
        let kept = read(&map).version_warning.expect("kept");
        assert_eq!(kept.chars().count(), MAX_WARNING_CHARS);
        assert!(kept.starts_with("upgraded \u{fffd}\u{fffd} x"), "{kept}");
        assert_eq!(read(&HeaderMap::new()).version_warning, None);
    }

    #[test]
    fn app_usage_gives_three_percentages() {
        let usage = read(&headers(&[(
            "x-app-usage",
            r#"{"call_count":28,"total_cputime":25,"total_time":91}"#,
        )]));
        assert_eq!(usage.readings.len(), 3);
        assert_eq!(usage.peak_percent(), Some(91.0));
        assert!(usage.readings.iter().all(|r| r.scope == "app"));
    }

    #[test]
    fn business_use_case_usage_names_the_object_and_the_wait() {
        let usage = read(&headers(&[(
            "x-business-use-case-usage",
            r#"{"112233":[{"type":"pages","call_count":100,"total_cputime":12,"total_time":9,"estimated_time_to_regain_access":7}]}"#,
        )]));
        assert_eq!(
            usage.business_ids().collect::<Vec<_>>(),
            vec!["112233", "112233", "112233"]
        );
        assert_eq!(
            usage.regain_access,
            vec![("112233".to_owned(), Duration::from_secs(420))]
        );
        assert_eq!(usage.readings[0].kind, "pages");
    }

    #[test]
    fn ads_headers_and_retry_after_are_read() {
        let usage = read(&headers(&[
            (
                "x-ad-account-usage",
                r#"{"acc_id_util_pct":9.67,"reset_time_duration":0}"#,
            ),
            (
                "x-fb-ads-insights-throttle",
                r#"{"app_id_util_pct":55,"acc_id_util_pct":3}"#,
            ),
            ("retry-after", "120"),
        ]));
        assert_eq!(usage.readings.len(), 3);
        assert_eq!(usage.retry_after, Some(Duration::from_secs(120)));
    }

    #[test]
    fn malformed_headers_are_reported_and_the_rest_still_read() {
        let usage = read(&headers(&[
            ("x-app-usage", "{not json"),
            ("x-business-use-case-usage", r#"["wrong shape"]"#),
            ("retry-after", "soon"),
            ("x-ad-account-usage", r#"{"acc_id_util_pct":"NaN"}"#),
            ("x-fb-ads-insights-throttle", r#"{"app_id_util_pct":12}"#),
        ]));
        assert_eq!(
            usage.malformed,
            vec!["x-app-usage", "x-business-use-case-usage", "retry-after"]
        );
        assert_eq!(usage.readings.len(), 1);
        assert_eq!(usage.readings[0].percent, 12.0);
    }

    #[test]
    fn no_headers_means_no_readings() {
        assert_eq!(read(&HeaderMap::new()), Usage::default());
    }
}

//! From Graph API response bodies to gauge families.
//!
//! One submodule per read path turns a decoded JSON body into [`Family`] values: [`page`] for
//! Page insights, [`campaign`] for campaign insights, [`whatsapp`] for WABA analytics. They
//! share the lenient value readers here, because Meta sends one number as a JSON number, a
//! numeric string or a decimal string, and one time as unix seconds (string or number) or ISO
//! 8601. A body whose overall shape is wrong is an error for the whole response; a single
//! unusable value is a [`ValueProblem`] that is counted and skipped while the rest is used.

pub mod campaign;
pub mod page;
#[cfg(test)]
mod proptests;
pub mod whatsapp;

use chrono::DateTime;
use serde_json::Value;

use crate::exposition::Family;

/// The families built from one response, and the values that had to be skipped.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Converted {
    /// Families to publish.
    pub families: Vec<Family>,
    /// Values that could not be used.
    pub problems: Vec<ValueProblem>,
    /// The response answered but said nothing about the numbers (a campaign's empty `data`):
    /// not zero, not an error. The read's slot keeps what it holds without refreshing it, so
    /// values from earlier answers go stale on their own schedule instead of vanishing or
    /// turning 0. `families` and `problems` are then empty.
    pub no_data: bool,
}

impl Converted {
    /// An answer with no data in it: nothing to publish, and what is held is kept.
    pub fn no_data() -> Self {
        Self {
            no_data: true,
            ..Self::default()
        }
    }
}

/// A value in a response that could not be turned into a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueProblem {
    /// Short stable reason, a label on `value_errors_total`.
    pub reason: &'static str,
    /// What and where, for the log.
    pub detail: String,
}

/// A response whose overall shape is not the endpoint's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected response shape: {0}")]
pub struct ShapeError(pub String);

/// Reads a number sent as a JSON number or a (decimal) numeric string.
///
/// Non-finite values (`"NaN"`, `"Infinity"`), empty strings, null, booleans and anything
/// else are rejected with a reason, never coerced to zero: a zero would be a lie on a graph.
pub fn parse_number(value: &Value) -> Result<f64, &'static str> {
    let number = match value {
        Value::Number(number) => number.as_f64().ok_or("number_out_of_range")?,
        Value::String(text) => {
            let text = text.trim();
            if text.is_empty() {
                return Err("empty_string");
            }
            text.parse::<f64>().map_err(|_| "not_a_number")?
        }
        Value::Null => return Err("null"),
        Value::Bool(_) => return Err("boolean"),
        Value::Array(_) | Value::Object(_) => return Err("not_a_number"),
    };
    if number.is_finite() {
        Ok(number)
    } else {
        Err("not_finite")
    }
}

/// Reads a count, rate or amount of money that cannot be below zero: [`parse_number`], with a
/// negative value rejected as `negative`. A negative message count is a fault in the response,
/// and exporting it would put a number on a graph that no one could explain.
pub fn parse_non_negative(value: &Value) -> Result<f64, &'static str> {
    let number = parse_number(value)?;
    if number < 0.0 {
        Err("negative")
    } else {
        // `-0` passes the check; `abs` makes it the `0` that every reader expects.
        Ok(number.abs())
    }
}

/// Reads a time sent as unix seconds (number or string) or ISO 8601 (`2024-01-02T08:00:00+0000`
/// or RFC 3339), as unix seconds.
pub fn parse_time(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => {
            let text = text.trim();
            if let Ok(seconds) = text.parse::<i64>() {
                return Some(seconds);
            }
            DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z")
                .or_else(|_| DateTime::parse_from_rfc3339(text))
                .ok()
                .map(|time| time.timestamp())
        }
        _ => None,
    }
}

/// A label value from a breakdown key: strings as they are, numbers in their JSON form.
fn label_value(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_arrive_as_numbers_numeric_strings_or_decimal_strings() {
        assert_eq!(parse_number(&json!(27)), Ok(27.0));
        assert_eq!(parse_number(&json!("42")), Ok(42.0));
        assert_eq!(parse_number(&json!("79.419238")), Ok(79.419238));
        assert_eq!(parse_number(&json!(0.25)), Ok(0.25));
        assert_eq!(parse_number(&json!("-3")), Ok(-3.0));
        assert_eq!(parse_number(&json!(" 7 ")), Ok(7.0));
    }

    #[test]
    fn unusable_numbers_are_rejected_with_a_reason() {
        assert_eq!(parse_number(&json!("NaN")), Err("not_finite"));
        assert_eq!(parse_number(&json!("Infinity")), Err("not_finite"));
        assert_eq!(parse_number(&json!("1e999")), Err("not_finite"));
        assert_eq!(parse_number(&json!("")), Err("empty_string"));
        assert_eq!(parse_number(&json!(null)), Err("null"));
        assert_eq!(parse_number(&json!(true)), Err("boolean"));
        assert_eq!(parse_number(&json!("12abc")), Err("not_a_number"));
        assert_eq!(parse_number(&json!({"a": 1})), Err("not_a_number"));
    }

    #[test]
    fn a_non_negative_reading_rejects_negatives_and_writes_minus_zero_as_zero() {
        assert_eq!(parse_non_negative(&json!("3.5")), Ok(3.5));
        assert_eq!(parse_non_negative(&json!(-1)), Err("negative"));
        assert_eq!(parse_non_negative(&json!("-0.001")), Err("negative"));
        assert_eq!(parse_non_negative(&json!("NaN")), Err("not_finite"));
        let zero = parse_non_negative(&json!("-0")).expect("zero");
        assert!(zero == 0.0 && zero.is_sign_positive());
    }

    #[test]
    fn huge_numbers_are_finite_until_they_overflow() {
        // Beyond i64 and u64 a JSON integer is read as the nearest float.
        let huge: Value = serde_json::from_str("123456789012345678901234567890").expect("json");
        assert_eq!(parse_number(&huge), Ok(1.2345678901234568e29));
        assert_eq!(parse_number(&json!("1.7976931348623157e308")), Ok(f64::MAX));
        assert_eq!(parse_number(&json!("1.8e308")), Err("not_finite"));
        assert_eq!(parse_number(&json!("-1e999")), Err("not_finite"));
    }

    #[test]
    fn times_arrive_as_unix_seconds_or_iso_8601() {
        assert_eq!(parse_time(&json!("1665175977")), Some(1_665_175_977));
        assert_eq!(parse_time(&json!(1_665_175_977)), Some(1_665_175_977));
        assert_eq!(
            parse_time(&json!("2024-01-02T08:00:00+0000")),
            Some(1_704_182_400)
        );
        assert_eq!(
            parse_time(&json!("2024-01-02T08:00:00Z")),
            Some(1_704_182_400)
        );
        assert_eq!(
            parse_time(&json!("2024-01-02T00:00:00-0800")),
            Some(1_704_182_400)
        );
        assert_eq!(parse_time(&json!("yesterday")), None);
        assert_eq!(parse_time(&json!(null)), None);
    }
}

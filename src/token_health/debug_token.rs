//! Meta's `debug_token` answer, read into [`TokenInfo`].
//!
//! The body is `{"data":{"app_id","type","application","expires_at","data_access_expires_at",
//! "is_valid","issued_at"?,"scopes":[...],"granular_scopes":[...],"user_id"?,"error"?}}`. An
//! unparsable or revoked token comes back with `is_valid: false`, an `error` and few other
//! fields, so only `is_valid` is required of every answer; a valid token must also say when it
//! expires and what it may do. Wrong types and missing required fields are errors naming the
//! field, never a panic and never a guess.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// When a token expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// `expires_at: 0`: it does not expire (a Page token from a long-lived user token, a
    /// system-user token).
    Never,
    /// At this unix time.
    At(i64),
}

impl Expiry {
    /// The unix time, +Inf for a token that never expires.
    pub fn seconds(self) -> f64 {
        match self {
            Expiry::Never => f64::INFINITY,
            Expiry::At(at) => at as f64,
        }
    }
}

/// The error Meta reports about the inspected token (`data.error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    /// Graph error code, e.g. 190.
    pub code: Option<i64>,
    /// Finer code, e.g. 463 for an expired token.
    pub subcode: Option<i64>,
    /// Meta's message.
    pub message: String,
}

/// What `debug_token` says about one token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    /// `is_valid`.
    pub valid: bool,
    /// Meta's `type` (`USER`, `PAGE`, `SYSTEM_USER`, `APP`), when given.
    pub kind: Option<String>,
    /// `expires_at`; `None` when absent (Meta leaves it out for tokens it cannot parse).
    pub expires: Option<Expiry>,
    /// `data_access_expires_at`; `None` when 0 or absent: no data-access expiry.
    pub data_access_expires: Option<i64>,
    /// `scopes`: the permissions granted.
    pub scopes: BTreeSet<String>,
    /// `app_id`, the app the token belongs to.
    pub app_id: Option<String>,
    /// `error`, for an invalid token.
    pub error: Option<TokenError>,
}

/// Reads a `debug_token` answer; the error names the field that is missing or wrong.
pub fn parse(body: &Value) -> Result<TokenInfo, String> {
    let data = match body.get("data") {
        Some(Value::Object(data)) => data,
        Some(other) => return Err(format!("`data` must be an object, got {other}")),
        None => return Err("the debug_token answer has no `data` object".to_owned()),
    };
    let valid = match data.get("is_valid") {
        Some(Value::Bool(valid)) => *valid,
        Some(other) => {
            return Err(format!(
                "`data.is_valid` must be true or false, got {other}"
            ))
        }
        None => return Err("`data.is_valid` is missing".to_owned()),
    };
    let expires = match optional_integer(data, "expires_at")? {
        None if valid => return Err("`data.expires_at` is missing for a valid token".to_owned()),
        None => None,
        Some(0) => Some(Expiry::Never),
        Some(at) => Some(Expiry::At(at)),
    };
    let data_access_expires =
        optional_integer(data, "data_access_expires_at")?.filter(|at| *at != 0);
    let scopes = match data.get("scopes") {
        Some(Value::Array(scopes)) => scopes
            .iter()
            .map(|scope| {
                scope
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("`data.scopes` must hold strings, got {scope}"))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("`data.scopes` must be an array, got {other}")),
        None if valid => return Err("`data.scopes` is missing for a valid token".to_owned()),
        None => BTreeSet::new(),
    };
    let kind = optional_string(data, "type")?;
    let app_id = match data.get("app_id") {
        // Meta sends the id as a string; a number is read the same way.
        Some(Value::Number(id)) => Some(id.to_string()),
        _ => optional_string(data, "app_id")?,
    };
    let error = match data.get("error") {
        None | Some(Value::Null) => None,
        Some(Value::Object(error)) => Some(TokenError {
            code: optional_integer(error, "code").map_err(|e| format!("`data.error`: {e}"))?,
            subcode: optional_integer(error, "subcode")
                .map_err(|e| format!("`data.error`: {e}"))?,
            message: optional_string(error, "message")
                .map_err(|e| format!("`data.error`: {e}"))?
                .unwrap_or_default(),
        }),
        Some(other) => return Err(format!("`data.error` must be an object, got {other}")),
    };
    Ok(TokenInfo {
        valid,
        kind,
        expires,
        data_access_expires,
        scopes,
        app_id,
        error,
    })
}

/// An integer field (unix seconds or a code); absent and `null` are `None`.
fn optional_integer(object: &Map<String, Value>, field: &str) -> Result<Option<i64>, String> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("`{field}` must be an integer, got {value}")),
    }
}

/// A string field; absent and `null` are `None`.
fn optional_string(object: &Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(format!("`{field}` must be a string, got {other}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_token_that_never_expires_has_an_infinite_expiry_and_no_data_access_expiry_when_absent() {
        let info = parse(&json!({"data": {
            "app_id": "1234", "type": "PAGE", "application": "Exporter", "expires_at": 0,
            "is_valid": true, "scopes": ["pages_messaging", "read_insights"],
            "granular_scopes": [{"scope": "pages_messaging", "target_ids": ["1"]}],
            "user_id": "99"
        }}))
        .expect("a valid answer");
        assert!(info.valid);
        assert_eq!(info.kind.as_deref(), Some("PAGE"));
        assert_eq!(info.expires, Some(Expiry::Never));
        assert_eq!(info.expires.map(Expiry::seconds), Some(f64::INFINITY));
        assert_eq!(info.data_access_expires, None);
        assert_eq!(info.app_id.as_deref(), Some("1234"));
        assert_eq!(
            info.scopes.iter().map(String::as_str).collect::<Vec<_>>(),
            ["pages_messaging", "read_insights"]
        );
        assert_eq!(info.error, None);
    }

    #[test]
    fn expiry_times_are_unix_seconds_and_a_zero_data_access_expiry_is_none() {
        let info = parse(&json!({"data": {
            "type": "USER", "expires_at": 1_790_000_000, "data_access_expires_at": 1_795_000_000,
            "is_valid": true, "scopes": []
        }}))
        .expect("a valid answer");
        assert_eq!(info.expires, Some(Expiry::At(1_790_000_000)));
        assert_eq!(info.data_access_expires, Some(1_795_000_000));
        let zero = parse(&json!({"data": {
            "expires_at": 5, "data_access_expires_at": 0, "is_valid": true, "scopes": []
        }}))
        .expect("a valid answer");
        assert_eq!(zero.data_access_expires, None);
        assert_eq!(zero.kind, None);
    }

    #[test]
    fn an_invalid_token_carries_metas_error_and_needs_nothing_else() {
        let info = parse(&json!({"data": {
            "error": {"code": 190, "message": "Invalid OAuth access token - Cannot parse access token"},
            "is_valid": false, "scopes": []
        }}))
        .expect("Meta's answer for an unparsable token");
        assert!(!info.valid);
        assert_eq!(info.expires, None);
        assert_eq!(
            info.error,
            Some(TokenError {
                code: Some(190),
                subcode: None,
                message: "Invalid OAuth access token - Cannot parse access token".to_owned(),
            })
        );
        let expired = parse(&json!({"data": {
            "is_valid": false, "expires_at": 1_700_000_000, "type": "USER",
            "error": {"code": 190, "subcode": 463, "message": "Session has expired"}
        }}))
        .expect("an expired token");
        assert_eq!(expired.expires, Some(Expiry::At(1_700_000_000)));
        assert_eq!(expired.error.and_then(|e| e.subcode), Some(463));
        assert!(expired.scopes.is_empty());
    }

    #[test]
    fn missing_or_mistyped_fields_are_errors_naming_the_field() {
        for (body, needle) in [
            (json!({}), "no `data` object"),
            (json!({"data": []}), "`data` must be an object"),
            (
                json!({"data": {"scopes": []}}),
                "`data.is_valid` is missing",
            ),
            (
                json!({"data": {"is_valid": "yes"}}),
                "`data.is_valid` must be true or false",
            ),
            (
                json!({"data": {"is_valid": true, "scopes": []}}),
                "`data.expires_at` is missing for a valid token",
            ),
            (
                json!({"data": {"is_valid": true, "expires_at": 0}}),
                "`data.scopes` is missing for a valid token",
            ),
            (
                json!({"data": {"is_valid": true, "expires_at": "0", "scopes": []}}),
                "`expires_at` must be an integer",
            ),
            (
                json!({"data": {"is_valid": true, "expires_at": 0, "data_access_expires_at": 1.5, "scopes": []}}),
                "`data_access_expires_at` must be an integer",
            ),
            (
                json!({"data": {"is_valid": true, "expires_at": 0, "scopes": [1]}}),
                "`data.scopes` must hold strings",
            ),
            (
                json!({"data": {"is_valid": true, "expires_at": 0, "scopes": [], "type": 3}}),
                "`type` must be a string",
            ),
            (
                json!({"data": {"is_valid": false, "error": "bad"}}),
                "`data.error` must be an object",
            ),
            (
                json!({"data": {"is_valid": false, "error": {"code": "190"}}}),
                "`data.error`: `code` must be an integer",
            ),
        ] {
            let error = parse(&body).expect_err("not a usable answer");
            assert!(error.contains(needle), "{body}: {error}");
        }
    }
}

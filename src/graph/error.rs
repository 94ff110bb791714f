//! What can go wrong talking to the Graph API, and what each failure means for the caller.
//!
//! [`GraphError`] keeps the kinds apart (transport, timeout, HTTP status without a Graph body,
//! Graph error with code and subcode, undecodable body) because the reaction differs: transient
//! failures are retried, throttling waits, a retired metric is dropped, an invalid token stops
//! the target. [`GraphError::class`] is the one place that maps Meta's codes to those reactions,
//! following the table in Meta's error-handling guide.

use std::time::Duration;

use serde::Deserialize;

/// The `error` object of a Graph API error body.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ApiError {
    /// Human-readable message, e.g. `(#100) The value must be a valid insights metric`.
    #[serde(default)]
    pub message: String,
    /// Error type, e.g. `OAuthException`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Error code (`190` invalid token, `100` invalid parameter, `4` app throttled, ...).
    pub code: i64,
    /// Finer code, e.g. `463` for an expired token.
    #[serde(default)]
    pub error_subcode: Option<i64>,
    /// Meta's hint that the same request may succeed if retried.
    #[serde(default)]
    pub is_transient: Option<bool>,
    /// Meta's trace id, worth logging for support requests.
    #[serde(default)]
    pub fbtrace_id: Option<String>,
}

/// The body Graph sends with a failed request.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub(crate) error: ApiError,
}

/// A failed Graph API call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GraphError {
    /// The connection could not be made or broke (refused, reset, TLS, DNS).
    #[error("connection to the Graph API failed: {0}")]
    Transport(String),
    /// No complete answer within the request timeout.
    #[error("Graph API request timed out after {0:?}")]
    Timeout(Duration),
    /// A non-success HTTP status without a Graph error body (a proxy's HTML page, say).
    #[error("Graph API answered HTTP {status} without a Graph error body: {snippet}")]
    Http {
        /// HTTP status code.
        status: u16,
        /// The start of the body, on one line, for the log.
        snippet: String,
    },
    /// A Graph error body.
    #[error("Graph API error code {}{}: {}", .error.code, subcode_suffix(.error.error_subcode), .error.message)]
    Api {
        /// HTTP status code it came with.
        status: u16,
        /// The error object.
        error: ApiError,
    },
    /// A success status whose body is not what the endpoint returns.
    #[error("Graph API response could not be decoded: {0}")]
    Decode(String),
    /// Not sent: the rate limiter holds requests in this scope back (after a throttle, or
    /// because the call budget is spent).
    #[error("not sent: {scope} rate limit pause, {} s left", .remaining.as_secs())]
    Paused {
        /// `token`, `business_use_case`, `object` or `budget`.
        scope: &'static str,
        /// Time left in the pause.
        remaining: Duration,
    },
    /// The body was larger than `graph_api.max_response_bytes`.
    #[error("Graph API response is larger than the {limit}-byte limit")]
    TooLarge {
        /// The configured limit.
        limit: usize,
    },
}

fn subcode_suffix(subcode: Option<i64>) -> String {
    subcode
        .map(|s| format!(" (subcode {s})"))
        .unwrap_or_default()
}

/// What the caller should do about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Retry soon with backoff: code 1/2, `is_transient`, HTTP 5xx, timeouts, resets.
    Transient,
    /// Stop calling for a while; never retry at once (more calls only extend a throttle).
    Throttled,
    /// Token expired, revoked or invalid (190 and the 102/458-467 family): stop the target.
    InvalidToken,
    /// A permission is missing (10, 200-299): stop the target.
    PermissionDenied,
    /// Invalid parameter (100), e.g. a retired metric: drop the offending item, keep the rest.
    InvalidParameter,
    /// The object does not exist or the token cannot see it (100 with subcode 33): no
    /// metric or field is at fault, so stop the target.
    ObjectUnavailable,
    /// Policy block (368): back off.
    PolicyBlock,
    /// The Marketing API no longer serves this endpoint on the version asked for (2635, "You
    /// are calling a deprecated version of the Ads API"). A configuration error: asking again
    /// on the same version gets the same answer, so it is never retried within a poll.
    DeprecatedVersion,
    /// Anything else: count it and try again at the next interval.
    Permanent,
}

impl ErrorClass {
    /// Stable label value for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::Throttled => "throttled",
            ErrorClass::InvalidToken => "invalid_token",
            ErrorClass::PermissionDenied => "permission_denied",
            ErrorClass::InvalidParameter => "invalid_parameter",
            ErrorClass::ObjectUnavailable => "object_unavailable",
            ErrorClass::PolicyBlock => "policy_block",
            ErrorClass::DeprecatedVersion => "deprecated_version",
            ErrorClass::Permanent => "other",
        }
    }
}

/// Graph codes that mean "throttled" at app, user, Page, business or ads level.
fn is_throttling_code(code: i64, subcode: Option<i64>) -> bool {
    matches!(code, 4 | 17 | 32 | 341 | 613 | 80000..=80014)
        || matches!(subcode, Some(1504022 | 1504039))
}

impl GraphError {
    /// Maps the failure to the reaction it needs.
    pub fn class(&self) -> ErrorClass {
        match self {
            GraphError::Transport(_) | GraphError::Timeout(_) => ErrorClass::Transient,
            GraphError::Paused { .. } => ErrorClass::Throttled,
            GraphError::Http { status, .. } if *status >= 500 || *status == 429 => {
                ErrorClass::Transient
            }
            // A body that is not JSON at all is a garbled or cut transfer (Meta always answers
            // JSON), so it is worth another try; a JSON body of the wrong shape is not.
            GraphError::Decode(_) => ErrorClass::Transient,
            GraphError::Http { .. } | GraphError::TooLarge { .. } => ErrorClass::Permanent,
            GraphError::Api { status, error } => {
                // Throttling is checked before `is_transient`: Meta marks some throttles
                // transient, but retrying into a throttle only extends it.
                if is_throttling_code(error.code, error.error_subcode) {
                    ErrorClass::Throttled
                } else if error.code == 190 || error.code == 102 {
                    ErrorClass::InvalidToken
                } else if error.code == 10 || (200..=299).contains(&error.code) {
                    ErrorClass::PermissionDenied
                } else if error.code == 100 && error.error_subcode == Some(33) {
                    // "Unsupported get request. Object with ID ... does not exist, cannot be
                    // loaded due to missing permissions, or does not support this operation."
                    ErrorClass::ObjectUnavailable
                } else if error.code == 368 {
                    ErrorClass::PolicyBlock
                } else if error.code == 2635 {
                    // Matched on the code alone: Meta writes "update to the latest version",
                    // other servers "upgrade" (graph-api.md 7.1).
                    ErrorClass::DeprecatedVersion
                } else if error.code == 100 && error.error_subcode != Some(1504018) {
                    ErrorClass::InvalidParameter
                } else if matches!(error.code, 1 | 2)
                    || error.is_transient == Some(true)
                    || *status >= 500
                {
                    ErrorClass::Transient
                } else {
                    ErrorClass::Permanent
                }
            }
        }
    }

    /// Outcome label for the requests counter.
    pub fn outcome(&self) -> &'static str {
        match self {
            GraphError::Transport(_) => "transport_error",
            GraphError::Timeout(_) => "timeout",
            GraphError::Http { .. } => "http_error",
            GraphError::Api { .. } => "api_error",
            GraphError::Decode(_) => "decode_error",
            GraphError::TooLarge { .. } => "too_large",
            GraphError::Paused { .. } => "paused",
        }
    }

    /// The Graph error code, when there is one.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            GraphError::Api { error, .. } => Some(error),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: i64, subcode: Option<i64>, transient: Option<bool>) -> GraphError {
        GraphError::Api {
            status,
            error: ApiError {
                message: "m".into(),
                kind: None,
                code,
                error_subcode: subcode,
                is_transient: transient,
                fbtrace_id: None,
            },
        }
    }

    #[test]
    fn meta_codes_map_to_the_documented_reactions() {
        assert_eq!(api(500, 2, None, Some(true)).class(), ErrorClass::Transient);
        assert_eq!(api(500, 1, None, None).class(), ErrorClass::Transient);
        assert_eq!(
            api(400, 190, Some(463), None).class(),
            ErrorClass::InvalidToken
        );
        assert_eq!(
            api(403, 10, None, None).class(),
            ErrorClass::PermissionDenied
        );
        assert_eq!(
            api(403, 200, None, None).class(),
            ErrorClass::PermissionDenied
        );
        assert_eq!(
            api(400, 100, None, None).class(),
            ErrorClass::InvalidParameter
        );
        assert_eq!(
            api(400, 100, Some(33), None).class(),
            ErrorClass::ObjectUnavailable
        );
        assert_eq!(api(400, 368, None, None).class(), ErrorClass::PolicyBlock);
        assert_eq!(api(400, 12345, None, None).class(), ErrorClass::Permanent);
    }

    #[test]
    fn throttling_wins_over_the_transient_flag() {
        for code in [4, 17, 32, 341, 613, 80001, 80007] {
            assert_eq!(
                api(400, code, None, Some(true)).class(),
                ErrorClass::Throttled,
                "{code}"
            );
        }
        assert_eq!(
            api(400, 4, Some(1504022), None).class(),
            ErrorClass::Throttled
        );
    }

    #[test]
    fn transport_failures_and_server_errors_are_transient() {
        assert_eq!(
            GraphError::Transport("reset".into()).class(),
            ErrorClass::Transient
        );
        assert_eq!(
            GraphError::Timeout(Duration::from_secs(1)).class(),
            ErrorClass::Transient
        );
        let bad_gateway = GraphError::Http {
            status: 502,
            snippet: "<html>".into(),
        };
        assert_eq!(bad_gateway.class(), ErrorClass::Transient);
        assert_eq!(
            GraphError::Decode("eof".into()).class(),
            ErrorClass::Transient
        );
        let too_large = GraphError::TooLarge { limit: 10 };
        assert_eq!(too_large.class(), ErrorClass::Permanent);
    }

    #[test]
    fn metas_deprecated_version_error_is_its_own_class_whatever_its_wording() {
        // Meta's wording (graph-api.md 7.1), and the "upgrade" of other servers, marked
        // transient for good measure: the code alone decides, and it is never retried.
        for message in [
            "(#2635) You are calling a deprecated version of the Ads API. Please update to the latest version: v27.0.",
            "(#2635) You are calling a deprecated version of the Ads API. Please upgrade to the latest version: v11.0.",
        ] {
            let body = serde_json::json!({"error": {"message": message, "type": "OAuthException", "code": 2635, "is_transient": true, "fbtrace_id": "AbCdEf123"}});
            let body: ErrorBody = serde_json::from_value(body).expect("Meta's shape");
            let error = GraphError::Api {
                status: 400,
                error: body.error,
            };
            assert_eq!(error.class(), ErrorClass::DeprecatedVersion);
            assert_eq!(error.class().as_str(), "deprecated_version");
        }
    }

    #[test]
    fn display_names_code_and_subcode() {
        let text = api(400, 190, Some(463), None).to_string();
        assert_eq!(text, "Graph API error code 190 (subcode 463): m");
    }
}

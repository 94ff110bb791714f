//! Graph batch calls as data: what goes into one `POST /{version}/` and what comes back.
//!
//! A batch carries up to [`MAX_BATCH_ENTRIES`] GET requests, each a `relative_url` below the
//! version, in one HTTP request; Graph answers with a JSON array, one entry per request in
//! order: `{"code":200,"headers":[{"name","value"}],"body":"<JSON as a string>"}`, or `null`
//! for a request that timed out inside Graph. This module owns [`BatchEntry`] (one request,
//! whose `relative_url` may hold a token, as `debug_token?input_token=` does, so its `Debug`
//! never prints it), [`BatchAnswer`] (one answered entry, its body already turned into JSON or
//! a classified [`GraphError`] the way a single call's would be) and the parsing of the
//! answer array. Its submodules collect and send:
//!
//! - `collect`: which due requests of polls share a batch call, and when it goes;
//! - `send`: one batch call through the same in-flight bound, rate limiter, usage headers,
//!   size cap and error classification as a single GET, and a collected batch answered
//!   entry by entry.
//!
//! The layer sits on [`super::transport`] and [`super::calls`] and never imports the client;
//! [`crate::graph::GraphClient`] routes requests to it and retries what it returns.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Url;
use serde_json::{json, Value};

pub(crate) mod collect;
pub(crate) mod send;

use super::error::GraphError;
use super::request::{Api, Endpoint, GraphRequest};
use super::transport::decode;
use crate::secret::{AccessToken, TokenId};

/// Graph's limit on the requests of one batch call.
pub const MAX_BATCH_ENTRIES: usize = 50;

/// One GET inside a batch call.
#[derive(Clone)]
pub struct BatchEntry {
    pub(crate) endpoint: Endpoint,
    /// Whose version the batch call carrying it is sent to; one batch holds one API's entries.
    pub(crate) api: Api,
    pub(crate) object_id: String,
    relative_url: String,
    /// A token the `relative_url` carries, removed from anything its answer echoes.
    pub(crate) carried: Option<AccessToken>,
}

impl BatchEntry {
    /// The batch form of a request (which never holds a token).
    pub fn get(request: &GraphRequest) -> Self {
        Self {
            endpoint: request.endpoint,
            api: request.api,
            object_id: request.object_id.clone(),
            relative_url: request.relative_url(),
            carried: None,
        }
    }

    /// `debug_token?input_token=<token>`: what Meta knows about `token`. The token travels in
    /// the batch's POST body, never in a URL; the entry's object id (for the rate limiter) is
    /// the token's whole digest ([`crate::secret::TokenId::full`]), so tokens whose labels
    /// match stay apart.
    pub fn debug_token(token: &AccessToken) -> Self {
        let query = Url::parse("http://batch.invalid/").map_or_else(
            |_| String::new(),
            |mut url| {
                url.query_pairs_mut()
                    .append_pair("input_token", token.expose());
                url.query().unwrap_or_default().to_owned()
            },
        );
        Self {
            endpoint: Endpoint::DebugToken,
            api: Api::Graph,
            object_id: token.id().full(),
            relative_url: format!("debug_token?{query}"),
            carried: Some(token.clone()),
        }
    }

    /// The endpoint label of this request.
    pub fn endpoint(&self) -> Endpoint {
        self.endpoint
    }

    /// The object this request is about (a token's whole digest for `debug_token`).
    pub fn object_id(&self) -> &str {
        &self.object_id
    }

    /// The id of the token a `debug_token` entry asks about.
    pub fn token_id(&self) -> Option<&TokenId> {
        self.carried.as_ref().map(AccessToken::id)
    }
}

impl std::fmt::Debug for BatchEntry {
    /// Without the `relative_url`: it may carry a token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchEntry")
            .field("endpoint", &self.endpoint.as_str())
            .field("object_id", &self.object_id)
            .field("relative_url", &"[redacted]")
            .finish()
    }
}

/// The `batch` form field: the entries as Graph's JSON array.
pub(crate) fn batch_field(entries: &[BatchEntry]) -> String {
    Value::Array(
        entries
            .iter()
            .map(|entry| json!({"method": "GET", "relative_url": entry.relative_url}))
            .collect(),
    )
    .to_string()
}

/// One answered entry of a batch call.
#[derive(Debug, Clone)]
pub struct BatchAnswer {
    /// The entry's HTTP status.
    pub code: u16,
    /// The entry's headers (Graph's rate-limit headers among them), in order.
    pub headers: Vec<(String, String)>,
    /// The entry's body as JSON, or the error it reports (a Graph error body, or a body that
    /// is not JSON), classified as for a single call.
    pub body: Result<Value, GraphError>,
}

impl BatchAnswer {
    /// The entry's headers as a header map, for reading rate-limit usage. Headers that are
    /// not valid HTTP headers are left out.
    pub(crate) fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) {
                map.append(name, value);
            }
        }
        map
    }
}

/// Reads the answer array of a batch of `expected` requests: one entry per request in order,
/// `None` where Graph answered `null`. A body that is not such an array, or an entry without
/// its `code` or `body`, fails the whole batch with a [`GraphError::Decode`] naming what is
/// wrong; an entry's own body that is not JSON fails only that entry.
pub(crate) fn parse_answers(
    body: Value,
    expected: usize,
) -> Result<Vec<Option<BatchAnswer>>, GraphError> {
    let Value::Array(entries) = body else {
        return Err(GraphError::Decode(format!(
            "a batch answer must be a JSON array, got {}",
            kind_of(&body)
        )));
    };
    if entries.len() != expected {
        return Err(GraphError::Decode(format!(
            "the batch answer has {} entries for {expected} requests",
            entries.len()
        )));
    }
    entries
        .into_iter()
        .enumerate()
        .map(|(index, entry)| parse_entry(index, entry))
        .collect()
}

fn parse_entry(index: usize, entry: Value) -> Result<Option<BatchAnswer>, GraphError> {
    let problem = |what: String| GraphError::Decode(format!("batch answer entry {index}: {what}"));
    let entry = match entry {
        Value::Null => return Ok(None),
        Value::Object(entry) => entry,
        other => {
            return Err(problem(format!(
                "expected an object or null, got {}",
                kind_of(&other)
            )))
        }
    };
    let code = match entry.get("code") {
        None => return Err(problem("`code` is missing".to_owned())),
        Some(code) => code
            .as_u64()
            .and_then(|code| u16::try_from(code).ok())
            .filter(|code| (100..=599).contains(code))
            .ok_or_else(|| problem(format!("`code` is not an HTTP status: {code}")))?,
    };
    let headers = match entry.get("headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(headers)) => headers
            .iter()
            .map(|header| {
                let text = |field: &str| header.get(field).and_then(Value::as_str);
                match (text("name"), text("value")) {
                    (Some(name), Some(value)) => Ok((name.to_owned(), value.to_owned())),
                    _ => Err(problem(format!(
                        "a header is not {{\"name\":..,\"value\":..}} strings: {header}"
                    ))),
                }
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(problem(format!(
                "`headers` must be an array, got {}",
                kind_of(other)
            )))
        }
    };
    let body = match entry.get("body") {
        None => return Err(problem("`body` is missing".to_owned())),
        Some(Value::String(body)) => body.as_str(),
        Some(other) => {
            return Err(problem(format!(
                "`body` must be a string holding JSON, got {}",
                kind_of(other)
            )))
        }
    };
    let body = decode(code, (200..300).contains(&code), body.as_bytes());
    Ok(Some(BatchAnswer {
        code,
        headers,
        body,
    }))
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::ErrorClass;

    fn parse(text: &str, expected: usize) -> Result<Vec<Option<BatchAnswer>>, GraphError> {
        parse_answers(serde_json::from_str(text).expect("test JSON"), expected)
    }

    #[test]
    fn entries_keep_their_order_code_headers_and_decoded_body_and_null_stays_none() {
        let answers = parse(
            r#"[
                {"code":200,"headers":[{"name":"X-App-Usage","value":"{\"call_count\":5}"}],"body":"{\"data\":{\"is_valid\":true}}"},
                null,
                {"code":400,"body":"{\"error\":{\"message\":\"(#100) bad\",\"type\":\"OAuthException\",\"code\":100}}"}
            ]"#,
            3,
        )
        .expect("a valid answer");
        assert_eq!(answers.len(), 3);
        let first = answers[0].as_ref().expect("answered");
        assert_eq!(first.code, 200);
        assert_eq!(
            first.headers,
            vec![("X-App-Usage".to_owned(), "{\"call_count\":5}".to_owned())]
        );
        assert_eq!(
            first.body.as_ref().expect("JSON body"),
            &json!({"data": {"is_valid": true}})
        );
        assert_eq!(
            first.header_map()["x-app-usage"],
            HeaderValue::from_static("{\"call_count\":5}")
        );
        assert!(
            answers[1].is_none(),
            "null is an entry Graph did not answer"
        );
        let third = answers[2].as_ref().expect("answered");
        let error = third.body.as_ref().expect_err("an error body");
        assert_eq!(error.api_error().map(|e| e.code), Some(100));
        assert_eq!(error.class(), ErrorClass::InvalidParameter);
        assert!(third.headers.is_empty());
    }

    #[test]
    fn an_entry_body_that_is_not_json_fails_that_entry_only() {
        let answers = parse(
            r#"[{"code":200,"body":"{\"data\":["},{"code":200,"body":"{}"}]"#,
            2,
        )
        .expect("the batch itself is readable");
        let error = answers[0]
            .as_ref()
            .expect("answered")
            .body
            .as_ref()
            .expect_err("not JSON");
        assert!(matches!(error, GraphError::Decode(_)), "{error:?}");
        assert!(error.to_string().contains("not JSON"), "{error}");
        assert!(answers[1].as_ref().expect("answered").body.is_ok());
    }

    #[test]
    fn a_malformed_answer_is_a_decode_error_saying_what_is_wrong() {
        for (text, expected, needle) in [
            (r#"{"data":[]}"#, 1, "must be a JSON array, got an object"),
            (r#"[null]"#, 2, "1 entries for 2 requests"),
            (r#"[{"body":"{}"}]"#, 1, "entry 0: `code` is missing"),
            (
                r#"[{"code":"200","body":"{}"}]"#,
                1,
                "`code` is not an HTTP status",
            ),
            (r#"[{"code":200}]"#, 1, "entry 0: `body` is missing"),
            (r#"[{"code":200,"body":{}}]"#, 1, "`body` must be a string"),
            (
                r#"[null,7]"#,
                2,
                "entry 1: expected an object or null, got a number",
            ),
            (
                r#"[{"code":200,"headers":[{"name":1}],"body":"{}"}]"#,
                1,
                "a header is not",
            ),
            (
                r#"[{"code":200,"headers":{},"body":"{}"}]"#,
                1,
                "`headers` must be an array",
            ),
        ] {
            match parse(text, expected) {
                Err(GraphError::Decode(message)) => {
                    assert!(message.contains(needle), "{text}: {message}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_debug_token_entry_encodes_the_token_and_never_prints_it() {
        let token = AccessToken::new("EAAsecret+/|x");
        let entry = BatchEntry::debug_token(&token);
        assert_eq!(entry.endpoint(), Endpoint::DebugToken);
        assert_eq!(entry.object_id(), token.id().full());
        assert_eq!(entry.token_id(), Some(token.id()));
        let field = batch_field(std::slice::from_ref(&entry));
        assert_eq!(
            field,
            r#"[{"method":"GET","relative_url":"debug_token?input_token=EAAsecret%2B%2F%7Cx"}]"#
        );
        let printed = format!("{entry:?}");
        assert!(!printed.contains("EAAsecret"), "{printed}");
        assert!(printed.contains("[redacted]"), "{printed}");
    }

    #[test]
    fn a_plain_request_becomes_its_relative_url() {
        let request = GraphRequest::page_insights("123", vec![("metric", "a,b".into())]);
        let field = batch_field(&[BatchEntry::get(&request)]);
        assert_eq!(
            field,
            r#"[{"method":"GET","relative_url":"123/insights?metric=a%2Cb"}]"#
        );
    }
}

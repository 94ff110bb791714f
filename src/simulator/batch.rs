//! Batch calls: `POST /{version}/` with the form field `batch=[{"method":"GET",
//! "relative_url":".."}, ...]`, at most 50 requests, answered with one entry per request in
//! order: `{"code","headers","body":"<JSON as a string>"}` (no `headers` with
//! `include_headers=false`), or `null` for a `debug_token` entry planned to time out.
//!
//! The call must carry a token the simulator accepts (the app token, or one some object
//! accepts), or it fails whole with code 190. Each entry is then answered like the GET it
//! describes, with the call's token: `debug_token` by [`super::debug_token`], any other path by
//! the same read paths a GET takes. The form body holds tokens (`input_token=`); nothing here
//! logs or records it.

use axum::http::{HeaderMap, Method, Uri};
use reqwest::Url;
use serde_json::{json, Value};

use super::faults::GraphError;
use super::http::{self, QueryParams};
use super::{debug_token, Shared};

/// Graph's limit on the requests of one batch.
const MAX_REQUESTS: usize = 50;

/// The answer array of the batch call in `body`, asked with `headers` on API `version`.
pub(super) fn answer(
    shared: &Shared,
    version: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, GraphError> {
    shared.count_batch();
    let token = http::bearer_token(headers).ok_or_else(GraphError::missing_token)?;
    if !shared.accepts_batch_token(token) {
        return Err(GraphError::invalid_token());
    }
    let form = decode_form(body)?;
    let batch = form
        .get("batch")
        .ok_or_else(|| GraphError::invalid_parameter("The parameter batch is required"))?;
    let requests: Vec<Value> = serde_json::from_str(batch).map_err(|error| {
        GraphError::invalid_parameter(format_args!("batch must be a JSON array: {error}"))
    })?;
    if requests.is_empty() {
        return Err(GraphError::invalid_parameter("batch must not be empty"));
    }
    if requests.len() > MAX_REQUESTS {
        return Err(GraphError::invalid_parameter(
            "Too many requests in batch message. Maximum batch size is 50",
        ));
    }
    let include_headers = form.get("include_headers") != Some("false");
    let entries = requests
        .iter()
        .map(|request| entry(shared, version, token, headers, request, include_headers))
        .collect();
    Ok(Value::Array(entries))
}

/// One entry's answer.
fn entry(
    shared: &Shared,
    version: &str,
    token: &str,
    headers: &HeaderMap,
    request: &Value,
    include_headers: bool,
) -> Value {
    let method = request
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("GET");
    let result = match request.get("relative_url").and_then(Value::as_str) {
        None => Err(GraphError::invalid_parameter(
            "Missing relative_url in batch request",
        )),
        Some(_) if !method.eq_ignore_ascii_case("GET") => Err(GraphError::invalid_parameter(
            format_args!("the simulator answers GET in batches, not {method}"),
        )),
        Some(relative_url) => match Uri::try_from(format!(
            "/{version}/{}",
            relative_url.trim_start_matches('/')
        )) {
            Err(_) => Err(GraphError::invalid_parameter("Malformed relative_url")),
            Ok(uri) => match read(shared, token, headers, &uri) {
                None => return Value::Null,
                Some(result) => result,
            },
        },
    };
    let (code, body) = match result {
        Ok(body) => (200, body),
        Err(error) => (error.status, error.body()),
    };
    let mut answer = json!({"code": code, "body": body.to_string()});
    if let (true, Some(fields)) = (include_headers, answer.as_object_mut()) {
        fields.insert(
            "headers".to_owned(),
            json!([{"name": "Content-Type", "value": "text/javascript; charset=UTF-8"}]),
        );
    }
    answer
}

/// A GET inside a batch; `None` for a `debug_token` entry planned to come back `null`.
fn read(
    shared: &Shared,
    token: &str,
    headers: &HeaderMap,
    uri: &Uri,
) -> Option<Result<Value, GraphError>> {
    let query = match QueryParams::parse(uri) {
        Ok(query) => query,
        Err(error) => return Some(Err(error)),
    };
    if uri.path().trim_end_matches('/').ends_with("/debug_token") {
        if query
            .get("input_token")
            .is_some_and(|input| shared.take_unanswered(input))
        {
            return None;
        }
        return Some(debug_token::read(shared, token, &query));
    }
    Some(http::answer_get(shared, uri, headers))
}

/// The fields of an `application/x-www-form-urlencoded` body (first occurrence wins).
fn decode_form(body: &[u8]) -> Result<Form, GraphError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| GraphError::invalid_parameter("The request body is not UTF-8"))?;
    // A form body is encoded exactly like a query string.
    let url = Url::parse(&format!("http://form.invalid/?{text}")).map_err(|error| {
        GraphError::invalid_parameter(format_args!("Malformed form body: {error}"))
    })?;
    Ok(Form(url.query_pairs().into_owned().collect()))
}

struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// The version of a batch call: a POST to `/{version}/` (the slash may be left out), the one
/// path without an object id that Graph serves.
pub(super) fn is_batch(method: &Method, path: &str) -> Option<String> {
    let version = path.strip_prefix('/')?;
    let version = version.strip_suffix('/').unwrap_or(version);
    (*method == Method::POST && http::is_version(version)).then(|| version.to_owned())
}

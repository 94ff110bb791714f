//! Batch calls: `POST /{version}/` with the form field `batch=[{"method":"GET",
//! "relative_url":".."}, ...]`, at most 50 requests, answered with one entry per request in
//! order: `{"code","headers","body":"<JSON as a string>"}` (no `headers` with
//! `include_headers=false`), or `null` for an entry planned to time out. Each entry is also
//! a request of its own: recorded (`in_batch`), counted in the app's usage, answered with the
//! faults planned for its object (`fail_next`) and carrying that object's headers
//! (`set_headers`) and `X-App-Usage` in its `headers`. A [`super::Fault::Stall`] of any entry's
//! object holds up the whole answer, as a hung connection or a slow proxy would.
//!
//! The call must carry a token the simulator accepts (the app token, or one some object
//! accepts), or it fails whole with code 190. Each entry is then answered like the GET it
//! describes, with the call's token: `debug_token` by [`super::debug_token`], any other path by
//! the same read paths a GET takes. The form body holds tokens (`input_token=`); nothing here
//! logs or records it.

use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, Method, Uri};
use reqwest::Url;
use serde_json::{json, Value};

use super::faults::{EntryEffect, GraphError};
use super::http::{self, QueryParams};
use super::{debug_token, RecordedRequest, Shared};

/// Graph's limit on the requests of one batch.
const MAX_REQUESTS: usize = 50;

/// How a batch call is answered.
pub(super) enum BatchReply {
    /// The answer array, one entry per request, sent after `stall` (the longest
    /// [`super::Fault::Stall`] of its entries' objects; zero without one).
    Entries {
        /// The answer array.
        entries: Value,
        /// How long the whole answer waits.
        stall: std::time::Duration,
    },
    /// The connection is cut mid-answer (an entry's object was given
    /// [`super::Fault::TruncatedBody`]).
    Cut,
}

/// The answer to the batch call in `body`, asked with `headers` on API `version`.
pub(super) fn answer(
    shared: &Shared,
    version: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<BatchReply, GraphError> {
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
    let proof = form.get("appsecret_proof").map(str::to_owned);
    let mut entries = Vec::with_capacity(requests.len());
    let mut stall = std::time::Duration::ZERO;
    for request in &requests {
        match entry(
            shared,
            version,
            token,
            headers,
            request,
            include_headers,
            &proof,
        ) {
            Some((entry, entry_stall)) => {
                entries.push(entry);
                stall = stall.max(entry_stall);
            }
            None => return Ok(BatchReply::Cut),
        }
    }
    Ok(BatchReply::Entries {
        entries: Value::Array(entries),
        stall,
    })
}

/// One entry's answer and how long it stalls the whole batch; `None` when the fault planned
/// for its object cuts the whole batch.
fn entry(
    shared: &Shared,
    version: &str,
    token: &str,
    headers: &HeaderMap,
    request: &Value,
    include_headers: bool,
    proof: &Option<String>,
) -> Option<(Value, std::time::Duration)> {
    let content_type = (
        "Content-Type".to_owned(),
        "text/javascript; charset=UTF-8".to_owned(),
    );
    let uri = match entry_uri(version, request) {
        Ok(uri) => uri,
        Err(error) => {
            let headers = [content_type];
            return Some((
                answer_entry(
                    error.status,
                    error.body().to_string(),
                    include_headers.then_some(headers.as_slice()),
                ),
                std::time::Duration::ZERO,
            ));
        }
    };
    // Each entry is a request of its own to Meta: logged, counted against the app's usage,
    // and given the faults and headers planned for its object.
    let admission = shared.admit(RecordedRequest {
        method: "GET".to_owned(),
        path: uri.path().to_owned(),
        query: redacted_query(&uri),
        authorization: headers
            .get(AUTHORIZATION)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()),
        object_id: http::object_id(uri.path()),
        in_batch: true,
        appsecret_proof: proof.clone(),
    });
    // The object's own headers replace the defaults of the same name, as on a single GET.
    let mut entry_headers = vec![
        content_type,
        ("X-App-Usage".to_owned(), admission.app_usage.clone()),
        // Meta serves a version it still has as itself; it names the one that answered.
        ("facebook-api-version".to_owned(), version.to_owned()),
    ];
    for (name, value) in &admission.headers {
        entry_headers.retain(|(kept, _)| !kept.eq_ignore_ascii_case(name));
        entry_headers.push((name.clone(), value.clone()));
    }
    let entry_headers = include_headers.then_some(entry_headers.as_slice());
    let normal = || match read(shared, token, headers, &uri) {
        None => Value::Null,
        Some(Ok(body)) => answer_entry(200, body.to_string(), entry_headers),
        Some(Err(error)) => answer_entry(error.status, error.body().to_string(), entry_headers),
    };
    let none = std::time::Duration::ZERO;
    match admission.fault.as_ref().map(super::Fault::entry_effect) {
        None => Some((normal(), none)),
        Some(EntryEffect::Stall(stall)) => Some((normal(), stall)),
        Some(EntryEffect::Answer(code, body)) => {
            Some((answer_entry(code, body, entry_headers), none))
        }
        Some(EntryEffect::Null) => Some((Value::Null, none)),
        Some(EntryEffect::CutBatch) => None,
    }
}

/// An entry's query as the request log keeps it: an `input_token` (a token being checked,
/// carried in the POST body) never reaches the log.
fn redacted_query(uri: &Uri) -> String {
    let query = uri.query().unwrap_or_default();
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("input_token", _)) => "input_token=[redacted]",
            _ => pair,
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The `appsecret_proof` field of a batch call's form body.
pub(super) fn appsecret_proof(body: &[u8]) -> Option<String> {
    decode_form(body)
        .ok()?
        .get("appsecret_proof")
        .map(str::to_owned)
}

/// The path and query an entry asks for, below `version`.
fn entry_uri(version: &str, request: &Value) -> Result<Uri, GraphError> {
    let method = request
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("GET");
    let relative_url = request
        .get("relative_url")
        .and_then(Value::as_str)
        .ok_or_else(|| GraphError::invalid_parameter("Missing relative_url in batch request"))?;
    if !method.eq_ignore_ascii_case("GET") {
        return Err(GraphError::invalid_parameter(format_args!(
            "the simulator answers GET in batches, not {method}"
        )));
    }
    Uri::try_from(format!(
        "/{version}/{}",
        relative_url.trim_start_matches('/')
    ))
    .map_err(|_| GraphError::invalid_parameter("Malformed relative_url"))
}

/// `{"code","headers","body"}`: `headers` only when they were asked for.
fn answer_entry(code: u16, body: String, headers: Option<&[(String, String)]>) -> Value {
    let mut answer = json!({"code": code, "body": body});
    if let (Some(headers), Some(fields)) = (headers, answer.as_object_mut()) {
        let headers = headers
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect();
        fields.insert("headers".to_owned(), Value::Array(headers));
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

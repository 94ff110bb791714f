//! Graph API errors and injected failures, and how both become HTTP responses.
//!
//! The simulator's own errors (bad token, unknown object, invalid metric, ...) and the faults a
//! test injects take the same path out: a Graph error body
//! `{"error":{"message","type","code","error_subcode"?,"is_transient","fbtrace_id"}}` with the
//! headers a real answer carries. Injected faults can also be things Graph itself never sends
//! but a client meets anyway: a proxy's HTML error page, a truncated body, a slow answer.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The header in which Graph reports the app's rate-limit usage.
const APP_USAGE: HeaderName = HeaderName::from_static("x-app-usage");

/// A failure to inject into the answers for one object (see `FakeGraphApi::fail_next` and
/// `FakeGraphApi::fail_always`).
#[derive(Clone, Debug)]
pub enum Fault {
    /// A Graph API error body
    /// `{"error":{"message","type","code","error_subcode"?,"is_transient","fbtrace_id"}}` with this
    /// HTTP status. `type` is derived from the code as Graph does (`GraphMethodException` for
    /// code 100 subcode 33, `OAuthException` otherwise) and `fbtrace_id` is random.
    Graph {
        /// The HTTP status, usually 400, 403 or 500.
        status: u16,
        /// Graph's error code, e.g. 190 for an invalid token.
        code: i64,
        /// Graph's `error_subcode`, omitted from the body when `None`.
        subcode: Option<i64>,
        /// The error message, e.g. `"(#100) The value must be a valid insights metric"`.
        message: String,
        /// Graph's hint that retrying the same request may succeed.
        is_transient: bool,
    },
    /// A non-JSON answer, e.g. 502 with an HTML page from a proxy. It carries none of Graph's
    /// headers (no `X-App-Usage`), since Graph never saw the request.
    Http {
        /// The HTTP status.
        status: u16,
        /// The `Content-Type` header; `text/plain` is sent instead if this is not a valid
        /// header value.
        content_type: String,
        /// The body, sent verbatim.
        body: String,
    },
    /// 200 with a body that is not valid JSON (a truncated insights answer).
    InvalidJson,
    /// Wait this long, then answer normally (for client timeouts). Inside a batch call Graph
    /// gives up on the entry instead: it answers `null` and the batch goes on.
    Delay(Duration),
    /// A hung connection or a slow proxy: wait this long, then answer normally. Unlike
    /// [`Fault::Delay`] it also holds up a batch call carrying a request for this object,
    /// whole: no entry of that batch is answered before it is over.
    Stall(Duration),
    /// 200 whose body stops mid-way and whose connection is then cut: the client sees an
    /// incomplete body, as after a reset during the transfer.
    TruncatedBody,
}

impl Fault {
    /// An expired user or Page token: HTTP 400, code 190, subcode 463. Like Graph's, the
    /// message never contains the token.
    pub fn invalid_token() -> Fault {
        Fault::Graph {
            status: 400,
            code: 190,
            subcode: Some(463),
            message: "Error validating access token: Session has expired on Friday, 15-Mar-24 \
                      10:00:00 PDT. The current time is Friday, 15-Mar-24 11:02:45 PDT."
                .to_owned(),
            is_transient: false,
        }
    }

    /// A token that lacks a permission the read needs: HTTP 403, code 10.
    pub fn permission_denied() -> Fault {
        Fault::Graph {
            status: 403,
            code: 10,
            subcode: None,
            message: "(#10) This endpoint requires the 'read_insights' permission or the \
                      'ANALYZE' task on the Page."
                .to_owned(),
            is_transient: false,
        }
    }

    /// A token without `whatsapp_business_management` on a WhatsApp account's edge, as a
    /// client's account shared for messaging only answers its `phone_numbers`: HTTP 403,
    /// code 200.
    pub fn whatsapp_permission_denied() -> Fault {
        Fault::Graph {
            status: 403,
            code: 200,
            subcode: None,
            message: "(#200) Requires whatsapp_business_management permission to manage the object"
                .to_owned(),
            is_transient: false,
        }
    }

    /// Graph's generic "try again" error: HTTP 500, code 2, `is_transient: true`.
    pub fn transient() -> Fault {
        Fault::Graph {
            status: 500,
            code: 2,
            subcode: None,
            message: "An unexpected error has occurred. Please retry your request later."
                .to_owned(),
            is_transient: true,
        }
    }

    /// A rate-limit error with `code` (4, 17, 32, 341, 613, 80000, 80001, 80004, 80007, ...):
    /// HTTP 400, `is_transient: false`, with the message Graph uses for that code.
    pub fn throttled(code: i64) -> Fault {
        let message = match code {
            4 => "(#4) Application request limit reached".to_owned(),
            17 => "(#17) User request limit reached".to_owned(),
            32 => "(#32) Page request limit reached".to_owned(),
            341 => "(#341) Application limit reached".to_owned(),
            613 => "(#613) Calls to this api have exceeded the rate limit.".to_owned(),
            80000 | 80004 => format!(
                "(#{code}) There have been too many calls to this ad-account. Wait a bit and \
                 try again. For more info, please refer to \
                 https://developers.facebook.com/docs/graph-api/overview/rate-limiting#ads-management."
            ),
            80001 => "(#80001) There have been too many calls to this Page account. Wait a bit \
                      and try again. For more info, please refer to \
                      https://developers.facebook.com/docs/graph-api/overview/rate-limiting."
                .to_owned(),
            80007 => "(#80007) There have been too many calls to this WhatsApp Business \
                      account. Wait a bit and try again. For more info, please refer to \
                      https://developers.facebook.com/docs/graph-api/overview/rate-limiting."
                .to_owned(),
            80008 => "(#80008) There have been too many calls to this WhatsApp Business \
                      account. Wait a bit and try again. For more info, please refer to \
                      https://developers.facebook.com/docs/graph-api/overview/rate-limiting#whatsapp-business-management-api."
                .to_owned(),
            _ => format!("(#{code}) Rate limit reached"),
        };
        Fault::Graph {
            status: 400,
            code,
            subcode: None,
            message,
            is_transient: false,
        }
    }

    /// Code 100 naming a request parameter (`since`, `until`, `period`, `date_preset`, ...):
    /// HTTP 400, `(#100) The parameter <parameter> is invalid`. It answers whatever metrics or
    /// fields the request asks for, as the real API does when the request itself is wrong.
    pub fn invalid_parameter(parameter: &str) -> Fault {
        Fault::Graph {
            status: 400,
            code: 100,
            subcode: None,
            message: format!("(#100) The parameter {parameter} is invalid"),
            is_transient: false,
        }
    }

    /// Code 100 with Graph's generic description, `(#100) Invalid parameter`, naming nothing:
    /// the request-level rejection that fails every subset of metrics or fields alike.
    pub fn invalid_request() -> Fault {
        Fault::Graph {
            status: 400,
            code: 100,
            subcode: None,
            message: "(#100) Invalid parameter".to_owned(),
            is_transient: false,
        }
    }

    /// A load balancer's 502 page: `text/html`, not JSON.
    pub fn bad_gateway_html() -> Fault {
        Fault::Http {
            status: 502,
            content_type: "text/html; charset=utf-8".to_owned(),
            body: "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
                   <center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
                .to_owned(),
        }
    }

    /// What this fault does to one request.
    pub(crate) fn effect(&self, app_usage: &str) -> Effect {
        match self {
            Fault::Graph {
                status,
                code,
                subcode,
                message,
                is_transient,
            } => Effect::Answer(
                GraphError {
                    status: *status,
                    code: *code,
                    subcode: *subcode,
                    message: message.clone(),
                    is_transient: *is_transient,
                }
                .into_response(app_usage),
            ),
            Fault::Http {
                status,
                content_type,
                body,
            } => {
                let content_type = HeaderValue::from_str(content_type)
                    .unwrap_or(HeaderValue::from_static("text/plain"));
                Effect::Answer(
                    (
                        status_code(*status),
                        [(CONTENT_TYPE, content_type)],
                        body.clone(),
                    )
                        .into_response(),
                )
            }
            // What a connection cut mid-body leaves a client with.
            Fault::InvalidJson => Effect::Answer(json_response(
                StatusCode::OK,
                TRUNCATED_BODY.to_owned(),
                app_usage,
            )),
            Fault::Delay(pause) | Fault::Stall(pause) => Effect::Wait(*pause),
            Fault::TruncatedBody => Effect::Answer(cut_response()),
        }
    }
}

impl Fault {
    /// What this fault does to one request inside a batch call.
    pub(crate) fn entry_effect(&self) -> EntryEffect {
        match self {
            Fault::Graph {
                status,
                code,
                subcode,
                message,
                is_transient,
            } => {
                let error = GraphError {
                    status: *status,
                    code: *code,
                    subcode: *subcode,
                    message: message.clone(),
                    is_transient: *is_transient,
                };
                EntryEffect::Answer(*status, error.body().to_string())
            }
            Fault::Http { status, body, .. } => EntryEffect::Answer(*status, body.clone()),
            Fault::InvalidJson => EntryEffect::Answer(200, TRUNCATED_BODY.to_owned()),
            Fault::Delay(_) => EntryEffect::Null,
            Fault::Stall(pause) => EntryEffect::Stall(*pause),
            Fault::TruncatedBody => EntryEffect::CutBatch,
        }
    }
}

/// What an injected fault does to one request inside a batch call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryEffect {
    /// The entry's code and body (a string, JSON or not).
    Answer(u16, String),
    /// The entry comes back `null`: Graph gave up waiting for it.
    Null,
    /// The connection is cut while the batch's answer is sent: the whole batch fails.
    CutBatch,
    /// The entry is answered normally, but the whole batch's answer waits this long first.
    Stall(Duration),
}

/// The start of an insights answer, as a cut connection leaves it.
const TRUNCATED_BODY: &str =
    r#"{"data":[{"name":"page_messages_sent","period":"day","values":[{"value":"#;

/// A 200 whose body stops mid-way and whose connection is then cut.
pub(crate) fn cut_response() -> Response {
    // A stream that fails after its first chunk makes the server abort the response, so the
    // client reads a body that ends early.
    let chunks: [Result<&'static str, std::io::Error>; 2] = [
        Ok(r#"{"data":[{"name":"page_messages_sent","values":["#),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected cut",
        )),
    ];
    let mut response = axum::body::Body::from_stream(futures::stream::iter(chunks)).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// What an injected fault does to one request.
#[derive(Debug)]
pub(crate) enum Effect {
    /// Answer with this instead of the normal response.
    Answer(Response),
    /// Wait this long, then answer normally.
    Wait(Duration),
}

/// A Graph error the simulator answers with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GraphError {
    /// The HTTP status.
    pub(crate) status: u16,
    /// Graph's error code.
    pub(crate) code: i64,
    /// Graph's `error_subcode`.
    pub(crate) subcode: Option<i64>,
    /// The message, including Graph's `(#code)` prefix where Graph puts one.
    pub(crate) message: String,
    /// Whether retrying may succeed.
    pub(crate) is_transient: bool,
}

impl GraphError {
    fn new(code: i64, subcode: Option<i64>, message: String) -> GraphError {
        GraphError {
            status: 400,
            code,
            subcode,
            message,
            is_transient: false,
        }
    }

    /// An HTTP 400 error with another `code`; `message` is complete, prefix included.
    pub(crate) fn with_code(code: i64, message: String) -> GraphError {
        GraphError::new(code, None, message)
    }

    /// Code 100, Graph's answer to any invalid parameter; `detail` follows the `(#100) ` prefix.
    pub(crate) fn invalid_parameter(detail: impl std::fmt::Display) -> GraphError {
        GraphError::new(100, None, format!("(#100) {detail}"))
    }

    /// Code 100 for a field the node type does not have, in Graph's words.
    pub(crate) fn nonexisting_field(field: &str, node_type: &str) -> GraphError {
        GraphError::invalid_parameter(format_args!(
            "Tried accessing nonexisting field ({field}) on node type ({node_type})"
        ))
    }

    /// Code 100 subcode 33: the object does not exist, is not visible to the token, or does not
    /// support `method`.
    pub(crate) fn unsupported_request(method: &str, object_id: &str) -> GraphError {
        GraphError::new(
            100,
            Some(33),
            format!(
                "Unsupported {} request. Object with ID '{object_id}' does not exist, cannot be \
                 loaded due to missing permissions, or does not support this operation. Please \
                 read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
                method.to_ascii_lowercase()
            ),
        )
    }

    /// Code 2500: a request without any access token.
    pub(crate) fn missing_token() -> GraphError {
        GraphError::new(
            2500,
            None,
            "An active access token must be used to query information about the current user."
                .to_owned(),
        )
    }

    /// Code 190 subcode 467: a token the object does not accept.
    pub(crate) fn invalid_token() -> GraphError {
        GraphError::new(
            190,
            Some(467),
            "Invalid OAuth access token - Cannot parse access token".to_owned(),
        )
    }

    /// Code 2500 for a path that is not `/{version}/{node}[/{edge}]`.
    pub(crate) fn unknown_path(path: &str) -> GraphError {
        GraphError::new(2500, None, format!("Unknown path components: {path}"))
    }

    /// Graph names the error class in `type`; clients mostly ignore it, but it is part of the
    /// shape they parse.
    fn error_type(&self) -> &'static str {
        match (self.code, self.subcode) {
            (100, Some(33)) => "GraphMethodException",
            _ => "OAuthException",
        }
    }

    /// The error body, `{"error":{...}}`, as a response or a batch entry carries it.
    pub(crate) fn body(&self) -> serde_json::Value {
        let mut error = json!({
            "message": self.message,
            "type": self.error_type(),
            "code": self.code,
            "is_transient": self.is_transient,
            "fbtrace_id": fbtrace_id(),
        });
        if let (Some(subcode), Some(fields)) = (self.subcode, error.as_object_mut()) {
            fields.insert("error_subcode".to_owned(), subcode.into());
        }
        json!({ "error": error })
    }

    /// The error as an HTTP response carrying `X-App-Usage: app_usage`.
    pub(crate) fn into_response(self, app_usage: &str) -> Response {
        let mut response =
            json_response(status_code(self.status), self.body().to_string(), app_usage);
        if self.code == 190 {
            // Graph repeats token errors in an RFC 6750 challenge.
            let challenge = format!(
                "OAuth \"Facebook Platform\" \"invalid_token\" \"{}\"",
                self.message.replace('"', "'")
            );
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.headers_mut().insert(WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

/// A JSON response with the headers every Graph answer carries.
pub(crate) fn json_response(status: StatusCode, body: String, app_usage: &str) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(usage) = HeaderValue::from_str(app_usage) {
        headers.insert(APP_USAGE, usage);
    }
    response
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A random-looking trace id like Graph's (23 characters of URL-safe base64).
fn fbtrace_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    // Every RandomState is keyed randomly by std, which is all the randomness an opaque trace
    // id needs (and spares a dependency on a random number crate).
    let mut hasher = RandomState::new().build_hasher();
    (0..23u8)
        .map(|position| {
            hasher.write_u8(position);
            char::from(ALPHABET[(hasher.finish() % 64) as usize])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_look_random_and_differ() {
        let (first, second) = (fbtrace_id(), fbtrace_id());
        assert_eq!(first.len(), 23);
        assert_ne!(first, second);
    }

    #[test]
    fn unknown_objects_are_a_graph_method_exception() {
        let error = GraphError::unsupported_request("GET", "42");
        assert_eq!(
            (error.code, error.subcode, error.error_type()),
            (100, Some(33), "GraphMethodException")
        );
        assert!(error
            .message
            .starts_with("Unsupported get request. Object with ID '42' does not exist"));
    }

    #[test]
    fn throttling_messages_carry_their_code() {
        for code in [4, 17, 32, 341, 613, 80000, 80001, 80004, 80007, 12345] {
            match Fault::throttled(code) {
                Fault::Graph {
                    status,
                    message,
                    is_transient,
                    ..
                } => {
                    assert_eq!((status, is_transient), (400, false));
                    assert!(message.starts_with(&format!("(#{code}) ")), "{message}");
                }
                other => panic!("{other:?}"),
            }
        }
    }
}

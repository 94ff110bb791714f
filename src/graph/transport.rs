//! One HTTP exchange with the Graph API, and nothing more.
//!
//! [`Transport`] owns the connection pool and turns one GET (a [`GraphRequest`]) or one form
//! POST (a batch call's body) into the response's usage headers and its JSON or classified
//! [`GraphError`]. It sends the token only in the `Authorization` header, marked sensitive so
//! HTTP tracing never prints it, adds `appsecret_proof` when an app secret is configured, caps
//! response bodies, and keeps the URL (which carries `appsecret_proof`) out of transport
//! errors. It knows nothing of retries, batching, the in-flight bound or the rate limiter:
//! those are the layers above ([`super::calls`], [`super::batch`], [`super::client`]).

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::Url;
use serde_json::Value;
use sha2::Sha256;

use super::error::{ErrorBody, GraphError};
use super::request::{Api, GraphRequest};
use super::usage::{self, Usage};
use crate::config::GraphApiConfig;
use crate::printable::printable;
use crate::secret::{AccessToken, AppSecret};
use std::borrow::Cow;

/// The HTTP client and what every exchange needs: the versioned roots, the app secret and the
/// limits on time and size.
#[derive(Clone)]
pub(crate) struct Transport {
    http: reqwest::Client,
    /// `{base_url}/{graph_api.version}/`: Page, WhatsApp, discovery and token reads.
    graph_root: Url,
    /// `{base_url}/{graph_api.marketing_version}/`: campaign and ad-account reads.
    marketing_root: Url,
    app_secret: Option<AppSecret>,
    max_response_bytes: usize,
    request_timeout: Duration,
}

impl Transport {
    /// A transport for `{base_url}/{version}/` and `{base_url}/{marketing_version}/`.
    pub(crate) fn new(api: &GraphApiConfig) -> Result<Self, GraphError> {
        let root = |version: &str| {
            Url::parse(&format!("{}/{version}/", api.base_url))
                .map_err(|e| GraphError::Transport(format!("invalid base_url: {e}")))
        };
        let graph_root = root(&api.version)?;
        let marketing_root = root(&api.marketing_version)?;
        let http = reqwest::Client::builder()
            .connect_timeout(api.connect_timeout)
            .timeout(api.request_timeout)
            .user_agent(concat!(
                "meta-messaging-exporter/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| GraphError::Transport(error_chain(&e)))?;
        Ok(Self {
            http,
            graph_root,
            marketing_root,
            app_secret: api.app_secret.clone(),
            max_response_bytes: api.max_response_bytes,
            request_timeout: api.request_timeout,
        })
    }

    /// The version `api`'s calls are sent with: the root's last path segment.
    pub(crate) fn version(&self, api: Api) -> &str {
        self.root(api)
            .path_segments()
            .and_then(|mut segments| segments.rfind(|s| !s.is_empty()))
            .unwrap_or_default()
    }

    fn root(&self, api: Api) -> &Url {
        match api {
            Api::Graph => &self.graph_root,
            Api::Marketing => &self.marketing_root,
        }
    }

    /// The configured app secret, for redacting it from errors.
    pub(crate) fn app_secret(&self) -> Option<&AppSecret> {
        self.app_secret.as_ref()
    }

    /// `GET` of `request` with `token`: the usage headers and the decoded body.
    pub(crate) async fn get(
        &self,
        request: &GraphRequest,
        token: &AccessToken,
    ) -> (Usage, Result<Value, GraphError>) {
        let mut url = match request.url(self.root(request.api)) {
            Ok(url) => url,
            Err(e) => return (Usage::default(), Err(GraphError::Transport(e.to_string()))),
        };
        if let Some(secret) = &self.app_secret {
            url.query_pairs_mut()
                .append_pair("appsecret_proof", &appsecret_proof(secret, token));
        }
        let authorization = match authorization(token) {
            Ok(authorization) => authorization,
            Err(error) => return (Usage::default(), Err(error)),
        };
        let sent = self
            .http
            .get(url)
            .header(AUTHORIZATION, authorization)
            .send()
            .await;
        self.answer(sent, self.request_timeout).await
    }

    /// `POST /{version}/` of `api`'s version with the form field `name` = `value` (a batch call's `batch`) with
    /// `token`, plus `appsecret_proof` in the form body when an app secret is configured.
    /// `timeout`, when given, replaces the client's `request_timeout` for this request.
    pub(crate) async fn post_form(
        &self,
        api: Api,
        name: &'static str,
        value: String,
        token: &AccessToken,
        timeout: Option<Duration>,
    ) -> (Usage, Result<Value, GraphError>) {
        let mut form = vec![(name, value)];
        if let Some(secret) = &self.app_secret {
            form.push(("appsecret_proof", appsecret_proof(secret, token)));
        }
        let authorization = match authorization(token) {
            Ok(authorization) => authorization,
            Err(error) => return (Usage::default(), Err(error)),
        };
        let mut builder = self
            .http
            .post(self.root(api).clone())
            .header(AUTHORIZATION, authorization)
            .form(&form);
        if let Some(timeout) = timeout {
            builder = builder.timeout(timeout);
        }
        let sent = builder.send().await;
        self.answer(sent, timeout.unwrap_or(self.request_timeout))
            .await
    }

    /// The usage headers and the decoded body of a response, or why there is none; a
    /// timeout is reported as `timeout`, the deadline the request had.
    async fn answer(
        &self,
        sent: Result<reqwest::Response, reqwest::Error>,
        timeout: Duration,
    ) -> (Usage, Result<Value, GraphError>) {
        let response = match sent {
            Ok(response) => response,
            Err(e) => return (Usage::default(), Err(transport_error(e, timeout))),
        };
        let usage = usage::read(response.headers());
        let status = response.status();
        let result = match self.read_capped(response, timeout).await {
            Ok(body) => decode(status.as_u16(), status.is_success(), &body),
            Err(error) => Err(error),
        };
        (usage, result)
    }

    async fn read_capped(
        &self,
        mut response: reqwest::Response,
        timeout: Duration,
    ) -> Result<Vec<u8>, GraphError> {
        let limit = self.max_response_bytes;
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(GraphError::TooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport_error(e, timeout))?
        {
            if body.len() + chunk.len() > limit {
                return Err(GraphError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn transport_error(error: reqwest::Error, timeout: Duration) -> GraphError {
    if error.is_timeout() {
        GraphError::Timeout(timeout)
    } else if error.is_decode() || error.is_body() {
        // A body cut off mid-way: worth a retry, like a reset.
        GraphError::Transport(format!(
            "response body incomplete: {}",
            error_chain(&error.without_url())
        ))
    } else {
        // Without the URL: it carries appsecret_proof, which is derived from the token.
        GraphError::Transport(error_chain(&error.without_url()))
    }
}

/// `Bearer <token>`, marked sensitive so HTTP tracing never prints it.
fn authorization(token: &AccessToken) -> Result<HeaderValue, GraphError> {
    let mut authorization =
        HeaderValue::try_from(format!("Bearer {}", token.expose())).map_err(|_| {
            GraphError::Transport(
                "the access token contains characters not allowed in an HTTP header".into(),
            )
        })?;
    authorization.set_sensitive(true);
    Ok(authorization)
}

/// Turns a response into JSON or the error it reports.
///
/// Crate-visible so the converters' property tests can feed arbitrary bytes through the same
/// path a response takes, and so a batch entry's body is read as a single call's would be.
pub(crate) fn decode(status: u16, success: bool, body: &[u8]) -> Result<Value, GraphError> {
    let parsed: Result<Value, _> = serde_json::from_slice(body);
    match parsed {
        Ok(value) => {
            // Graph sometimes answers 200 with an error body; treat it by its content.
            if value.get("error").is_some_and(Value::is_object) {
                let ErrorBody { mut error } = serde_json::from_value(value)
                    .map_err(|e| GraphError::Decode(format!("malformed error body: {e}")))?;
                // Meta's message reaches logs, the status page and backfill's summary: no byte
                // in it may act on a terminal or a browser.
                if let Cow::Owned(clean) = printable(&error.message) {
                    error.message = clean;
                }
                return Err(GraphError::Api { status, error });
            }
            if success {
                Ok(value)
            } else {
                Err(GraphError::Http {
                    status,
                    snippet: snippet(body),
                })
            }
        }
        Err(_) if !success => Err(GraphError::Http {
            status,
            snippet: snippet(body),
        }),
        Err(e) => Err(GraphError::Decode(format!(
            "HTTP {status} body is not JSON ({e}): {}",
            snippet(body)
        ))),
    }
}

/// The start of a body on one line, for logs and the status page, its control characters
/// made visible.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(160)]);
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    printable(&line).into_owned()
}

/// `appsecret_proof`: hex HMAC-SHA256 of the token, keyed with the app secret.
pub fn appsecret_proof(secret: &AppSecret, token: &AccessToken) -> String {
    // HMAC accepts keys of any length, so this cannot fail; fall back to an empty proof
    // (which Meta rejects with a clear error) rather than panicking.
    match Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) {
        Ok(mut mac) => {
            mac.update(token.expose().as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Removes the token from anything the API or the transport echoed back.
pub(crate) fn redact(error: GraphError, token: &AccessToken) -> GraphError {
    redact_all(error, &[token.expose()])
}

/// Removes every one of `secrets` (empty ones ignored) from an error's text.
pub(crate) fn redact_all(error: GraphError, secrets: &[&str]) -> GraphError {
    let clean = |mut text: String| {
        for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
            text = text.replace(secret, "[redacted]");
        }
        text
    };
    match error {
        GraphError::Transport(text) => GraphError::Transport(clean(text)),
        GraphError::Http { status, snippet } => GraphError::Http {
            status,
            snippet: clean(snippet),
        },
        GraphError::Decode(text) => GraphError::Decode(clean(text)),
        GraphError::Api { status, mut error } => {
            error.message = clean(error.message);
            GraphError::Api { status, error }
        }
        other => other,
    }
}

/// An error and its sources on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appsecret_proof_is_the_hex_hmac_sha256_of_the_token() {
        // Reference value from `echo -n token | openssl dgst -sha256 -hmac secret`.
        let proof = appsecret_proof(&AppSecret::new("secret"), &AccessToken::new("token"));
        assert_eq!(
            proof,
            "e941110e3d2bfe82621f0e3e1434730d7305d106c5f68c87165d0b27a4611a4a"
        );
    }

    #[test]
    fn an_error_body_with_status_200_is_an_api_error() {
        let body = br#"{"error":{"message":"(#100) bad","type":"OAuthException","code":100,"fbtrace_id":"x"}}"#;
        let error = decode(200, true, body).expect_err("error body");
        assert_eq!(error.api_error().map(|e| e.code), Some(100));
    }

    #[test]
    fn an_html_error_page_is_an_http_error_with_a_one_line_snippet() {
        let body = b"<html>\n<body>502 Bad Gateway</body>\n</html>";
        match decode(502, false, body) {
            Err(GraphError::Http {
                status: 502,
                snippet,
            }) => {
                assert_eq!(snippet, "<html> <body>502 Bad Gateway</body> </html>");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn control_bytes_in_metas_message_or_a_body_are_made_visible() {
        let body = "{\"error\":{\"message\":\"bad\\u0000\\u001b[2J\\u0008x\",\"code\":2}}";
        let error = decode(500, false, body.as_bytes()).expect_err("error body");
        assert_eq!(
            error.api_error().map(|e| e.message.as_str()),
            Some("bad\\u{0}\\u{1b}[2J\\u{8}x")
        );
        match decode(502, false, b"<html>\x1b]0;owned\x07</html>") {
            Err(GraphError::Http { snippet, .. }) => {
                assert_eq!(snippet, "<html>\\u{1b}]0;owned\\u{7}</html>")
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn invalid_json_with_status_200_is_a_decode_error() {
        assert!(matches!(
            decode(200, true, b"{\"data\":["),
            Err(GraphError::Decode(_))
        ));
    }

    /// `serde_json` refuses a number literal beyond `f64` (`1e999`), so such a body fails as a
    /// whole. Meta's encoder cannot write one; an out-of-range *string* (`"1e999"`) is what
    /// can arrive, and that is a per-value problem in `convert`.
    #[test]
    fn a_number_literal_beyond_f64_makes_the_body_a_decode_error() {
        let error = decode(200, true, br#"{"data":[{"value":1e999}]}"#).expect_err("error");
        assert!(error.to_string().contains("number out of range"), "{error}");
    }

    #[test]
    fn a_deeply_nested_body_is_a_decode_error_not_a_stack_overflow() {
        let body = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            decode(200, true, body.as_bytes()),
            Err(GraphError::Decode(_))
        ));
    }

    #[test]
    fn echoed_tokens_are_redacted_from_errors() {
        let token = AccessToken::new("EAAsecret123");
        let error = GraphError::Api {
            status: 400,
            error: crate::graph::ApiError {
                message: "Invalid token EAAsecret123".into(),
                kind: None,
                code: 190,
                error_subcode: None,
                is_transient: None,
                fbtrace_id: None,
            },
        };
        assert!(!redact(error, &token).to_string().contains("EAAsecret123"));
    }
}

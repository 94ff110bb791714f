//! The HTTP face of the simulator: routing, authentication and dispatch to the read paths.
//!
//! Every request goes through one handler, so all of them pass the same checks in the same
//! order: record the request, apply any injected fault, then check the path, the token and the
//! object, and finally let the object's read path build the body. Paths are parsed by hand
//! rather than by axum's router because Graph answers any path shape, including unknown
//! ones, with a Graph error body, never a bare 404 or 405. Unversioned paths (which the real
//! API would serve with a default version) are rejected, so an exporter that forgets to pin
//! the version fails its tests. Versioned answers carry `facebook-api-version`, as Meta's do.
//!
//! The registry lock is taken only to record the request and to copy out what the read needs;
//! it is never held across an `.await` (a `Delay` or `Stall` fault sleeps outside it) or while numbers
//! are generated.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Map, Value};

use super::batch::{self, BatchReply};
use super::debug_token;
use super::faults::{cut_response, json_response, Effect, GraphError};
use super::{campaign, discovery, fields, page, phone_numbers, templates, waba, whatsapp_billing};
use super::{ObjectKind, RecordedRequest, Shared, Simulated, WhatsAppSettings};

/// The router serving every path with [`serve`], each versioned answer naming its version.
pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .fallback(serve)
        .layer(axum::middleware::from_fn(name_the_version))
        .with_state(shared)
}

/// Adds `facebook-api-version` to the answer of a `/{version}/...` request, as Meta does on
/// every response. The simulator answers every version as itself, so it is the path's.
async fn name_the_version(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let version = request
        .uri()
        .path()
        .split('/')
        .nth(1)
        .filter(|segment| is_version(segment))
        .and_then(|segment| axum::http::HeaderValue::from_str(segment).ok());
    let mut response = next.run(request).await;
    // A test's own `set_headers` wins: that is how it plays an upgraded version.
    let name = axum::http::HeaderName::from_static("facebook-api-version");
    if let Some(version) = version {
        response.headers_mut().entry(name).or_insert(version);
    }
    response
}

/// The decoded query parameters of one request, in order; duplicates are kept and the first
/// occurrence wins on lookup.
#[derive(Debug, Default)]
pub(crate) struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    /// Decodes the query string of `uri`.
    pub(crate) fn parse(uri: &Uri) -> Result<QueryParams, GraphError> {
        Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map(|Query(pairs)| QueryParams(pairs))
            .map_err(|rejection| {
                GraphError::invalid_parameter(format_args!("Malformed query string: {rejection}"))
            })
    }

    /// The value of parameter `name`, if present.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every parameter, decoded, in request order.
    pub(crate) fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

/// What a read path needs to know about one request.
#[derive(Debug)]
pub(crate) struct ReadContext<'a> {
    /// The object read, from the path.
    pub(crate) object_id: &'a str,
    /// The version segment of the path, e.g. `v21.0`, for paging links.
    pub(crate) version: &'a str,
    /// The server's base URL, for paging links.
    pub(crate) base_url: &'a str,
    /// The simulated now, unix seconds.
    pub(crate) now: i64,
    /// The token the request was authenticated with: Graph repeats it in `paging.next` links.
    pub(crate) token: &'a str,
    /// The request's query parameters.
    pub(crate) query: &'a QueryParams,
    /// Metric or field names retired for this object.
    pub(crate) retired: &'a HashSet<String>,
    /// Retired names whose error names them.
    pub(crate) named: &'a HashSet<String>,
    /// Whether WhatsApp buckets are cut off Meta's Pacific calendar.
    pub(crate) misaligned: bool,
    /// Metric names outside the catalog this object serves anyway.
    pub(crate) extra_metrics: &'a BTreeSet<String>,
    /// The WhatsApp account settings of this object (defaults for other objects).
    pub(crate) whatsapp: &'a WhatsAppSettings,
    /// The object's `name`.
    pub(crate) name: &'a str,
    /// The largest page a list edge serves (`set_max_page_size`), at most Graph's 100.
    pub(crate) max_page_size: usize,
}

/// Where a path points: `/{version}/{object_id}` or `/{version}/{object_id}/{edge}`.
#[derive(Debug)]
struct Route {
    version: String,
    object_id: String,
    edge: Option<String>,
}

impl Route {
    /// Splits a path; `None` for any other shape. One trailing slash is allowed, as Graph
    /// allows it (the reference's own examples use `/insights/`).
    fn parse(path: &str) -> Option<Route> {
        let path = path.strip_prefix('/')?;
        let path = path.strip_suffix('/').unwrap_or(path);
        let mut segments = path.split('/');
        let version = segments.next()?;
        let object_id = segments.next().filter(|id| !id.is_empty())?;
        let edge = segments.next();
        if segments.next().is_some() || !is_version(version) || edge == Some("") {
            return None;
        }
        Some(Route {
            version: version.to_owned(),
            object_id: object_id.to_owned(),
            edge: edge.map(str::to_owned),
        })
    }
}

/// `v` followed by `digits.digits`, e.g. `v21.0`.
pub(super) fn is_version(segment: &str) -> bool {
    let Some((major, minor)) = segment.strip_prefix('v').and_then(|v| v.split_once('.')) else {
        return false;
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    digits(major) && digits(minor)
}

/// Answers any request the way Graph would.
async fn serve(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let route = Route::parse(uri.path());
    // The one path without an object id: `POST /{version}/`, a batch call.
    let batch_version = batch::is_batch(&method, uri.path());
    let recorded = RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        authorization: headers
            .get(AUTHORIZATION)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()),
        object_id: route.as_ref().map(|route| route.object_id.clone()),
        in_batch: false,
        appsecret_proof: match &batch_version {
            Some(_) => batch::appsecret_proof(&body),
            None => QueryParams::parse(&uri)
                .ok()
                .and_then(|query| query.get("appsecret_proof").map(str::to_owned)),
        },
    };
    tracing::debug!(method = %recorded.method, path = %recorded.path, "simulated Graph API request");
    let admission = shared.admit(recorded);
    let app_usage = &admission.app_usage;
    let mut response = None;
    if let Some(fault) = &admission.fault {
        match fault.effect(app_usage) {
            Effect::Answer(answer) => response = Some(answer),
            Effect::Wait(pause) => tokio::time::sleep(pause).await,
        }
    }
    let mut response = match response {
        Some(response) => response,
        None => {
            let (answered, entries) = match &batch_version {
                Some(version) => match batch::answer(&shared, version, &headers, &body) {
                    Ok(BatchReply::Entries { entries, stall }) => {
                        if !stall.is_zero() {
                            // A hung connection: no entry is answered until it is over.
                            tokio::time::sleep(stall).await;
                        }
                        let count = entries.as_array().map_or(0, Vec::len);
                        (Ok(entries), count)
                    }
                    Ok(BatchReply::Cut) => (Err(None), 0),
                    Err(error) => (Err(Some(error)), 0),
                },
                None => (
                    answer(&shared, route, &method, &uri, &headers).map_err(Some),
                    0,
                ),
            };
            let latency = shared.latency();
            let wait = latency.per_request
                + latency.per_batch_entry * u32::try_from(entries).unwrap_or(u32::MAX);
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            match answered {
                Ok(body) => json_response(StatusCode::OK, body.to_string(), app_usage),
                Err(Some(error)) => error.into_response(app_usage),
                Err(None) => cut_response(),
            }
        }
    };
    for (name, value) in &admission.headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::try_from(name.as_str()),
            axum::http::HeaderValue::try_from(value.as_str()),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// The object id of a `/{version}/{id}[/{edge}]` path, as [`serve`] records it.
pub(super) fn object_id(path: &str) -> Option<String> {
    Route::parse(path).map(|route| route.object_id)
}

/// A GET of `uri` (a batch entry), answered as [`serve`] answers one.
pub(super) fn answer_get(
    shared: &Shared,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Value, GraphError> {
    answer(shared, Route::parse(uri.path()), &Method::GET, uri, headers)
}

/// The body of a successful answer, or the Graph error to answer with.
fn answer(
    shared: &Shared,
    route: Option<Route>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Value, GraphError> {
    let route = route.ok_or_else(|| GraphError::unknown_path(uri.path()))?;
    let query = QueryParams::parse(uri)?;
    // The header wins if both are sent; the query parameter is accepted as Graph accepts it.
    let token = bearer_token(headers)
        .or_else(|| query.get("access_token").filter(|token| !token.is_empty()))
        .ok_or_else(GraphError::missing_token)?;
    if route.object_id == "me" {
        return me(shared, &route, &query, token);
    }
    if route.object_id == "debug_token" && route.edge.is_none() && method == Method::GET {
        // Graph serves it as a GET too; the exporter only ever asks inside batch calls.
        return debug_token::read(shared, token, &query);
    }
    // A phone number is a node of its own, answered with its account's settings.
    let (object, phone_number) = match shared.snapshot(&route.object_id) {
        Some(object) => (object, None),
        None => {
            let (object, number) = shared.phone_number(&route.object_id).ok_or_else(|| {
                GraphError::unsupported_request(method.as_str(), &route.object_id)
            })?;
            (object, Some(number))
        }
    };
    if object.token != token {
        return Err(GraphError::invalid_token());
    }
    if method != Method::GET {
        if query.get("is_enabled_for_insights").is_some() {
            // Confirming template analytics cannot be undone on a real account; the exporter
            // must never do it, and a test finds this request in the log.
            tracing::warn!(object = %route.object_id, "is_enabled_for_insights sent");
            return Err(GraphError::invalid_parameter(
                "is_enabled_for_insights: the simulator never confirms template analytics, \
                 which cannot be undone on a real WhatsApp Business Account",
            ));
        }
        return Err(GraphError::unsupported_request(
            method.as_str(),
            &route.object_id,
        ));
    }
    let kind = match object.kind {
        ObjectKind::Fixed(body) => return Ok(body),
        ObjectKind::Simulated(kind) => kind,
    };
    let context = ReadContext {
        object_id: phone_number
            .as_ref()
            .map_or(&route.object_id, |number| &number.waba_id),
        version: &route.version,
        base_url: &shared.base_url,
        now: object.now,
        token: &object.token,
        query: &query,
        retired: &object.retired,
        named: &object.named,
        misaligned: object.misaligned,
        extra_metrics: &object.extra_metrics,
        whatsapp: &object.whatsapp,
        name: &object.name,
        max_page_size: object.max_page_size,
    };
    if let Some(number) = &phone_number {
        return match route.edge.as_deref() {
            None => phone_numbers::node(&context, number.position, &number.digits),
            Some(edge) => Err(GraphError::nonexisting_field(
                edge,
                phone_numbers::NODE_TYPE,
            )),
        };
    }
    if let Some(body) = route
        .edge
        .as_deref()
        .and_then(|edge| object.whatsapp.fixed_edges.get(edge))
    {
        return Ok(body.clone());
    }
    match (kind, route.edge.as_deref()) {
        (Simulated::Page, Some("insights")) => page::insights(&context),
        (Simulated::Campaign | Simulated::AdAccount, Some("insights")) => {
            campaign::insights(&context, &object.campaign)
        }
        (
            Simulated::Business,
            Some(edge @ ("owned_whatsapp_business_accounts" | "client_whatsapp_business_accounts")),
        ) => discovery::whatsapp_business_accounts(
            &context,
            edge,
            &shared.business_accounts(&route.object_id, edge),
        ),
        (Simulated::Waba, Some("message_templates")) => templates::message_templates(&context),
        (Simulated::Waba, Some("template_analytics")) => templates::template_analytics(&context),
        (Simulated::Waba, Some("phone_numbers")) => phone_numbers::phone_numbers(&context),
        (kind, None) => read_node(kind, &context),
        (kind, Some(edge)) => Err(GraphError::nonexisting_field(edge, kind.node_type())),
    }
}

/// `me` and its `accounts` edge, for whoever `token` belongs to: only users made with
/// `grant_pages` are anyone; any other token is as invalid as Graph finds it.
fn me(
    shared: &Shared,
    route: &Route,
    query: &QueryParams,
    token: &str,
) -> Result<Value, GraphError> {
    let pages = shared
        .managed_pages(token)
        .ok_or_else(GraphError::invalid_token)?;
    let none = HashSet::new();
    let (now, max_page_size) = {
        let registry = shared.registry();
        (registry.now(), registry.max_page_size())
    };
    let context = ReadContext {
        object_id: "me",
        version: &route.version,
        base_url: &shared.base_url,
        now,
        token,
        query,
        retired: &none,
        named: &none,
        misaligned: false,
        extra_metrics: &BTreeSet::new(),
        whatsapp: &WhatsAppSettings::default(),
        name: "Simulated system user",
        max_page_size,
    };
    match route.edge.as_deref() {
        Some("accounts") => discovery::accounts(&context, &pages),
        None => Ok(json!({"id": "100000000000001", "name": context.name})),
        Some(edge) => Err(GraphError::nonexisting_field(edge, "User")),
    }
}

/// The token from an `Authorization: Bearer <token>` header (Graph also takes `OAuth
/// <token>`). A header in any other form is passed on whole, so that it fails the token
/// comparison like an unparsable token.
pub(super) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let token = if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth") {
        rest.trim()
    } else {
        value
    };
    Some(token).filter(|token| !token.is_empty())
}

/// A read of the node itself: `id`, `name` and, on a WhatsApp Business Account, `currency`,
/// `analytics`, `pricing_analytics` and `conversation_analytics`, in any combination. A field
/// fixed with `FakeGraphApi::fixed_field` answers its fixed value whatever its modifiers. One
/// failing field fails the whole read, as in Graph.
fn read_node(kind: Simulated, context: &ReadContext<'_>) -> Result<Value, GraphError> {
    let requested = match context.query.get("fields").map(str::trim) {
        Some(text) if !text.is_empty() => fields::parse(text).map_err(|problem| {
            GraphError::invalid_parameter(format_args!("Syntax error in fields: {problem}"))
        })?,
        // Graph's default fields for these nodes.
        _ => ["id", "name"]
            .map(|name| fields::Field {
                name: name.to_owned(),
                modifiers: Vec::new(),
            })
            .to_vec(),
    };
    let mut body = Map::new();
    // Graph includes the id in every node read, asked for or not.
    body.insert("id".to_owned(), json!(context.object_id));
    for field in &requested {
        if let Some(value) = context.whatsapp.fixed_fields.get(&field.name) {
            body.insert(field.name.clone(), value.clone());
            continue;
        }
        let value = match (field.name.as_str(), kind) {
            ("id", _) => json!(context.object_id),
            ("name", _) => json!(context.name),
            ("currency", Simulated::Waba | Simulated::AdAccount) => {
                json!(whatsapp_billing::CURRENCY)
            }
            ("account_id", Simulated::AdAccount) => {
                json!(context.object_id.trim_start_matches("act_"))
            }
            ("analytics", Simulated::Waba) => waba::analytics(context, field)?,
            ("pricing_analytics", Simulated::Waba) => {
                whatsapp_billing::pricing_analytics(context, field)?
            }
            ("conversation_analytics", Simulated::Waba) => {
                whatsapp_billing::conversation_analytics(context, field)?
            }
            // The business portfolio's limit, in the field the version knows (v24.0 added the
            // new one, graph-api.md 7.3); the other one is unknown on that version. Override
            // per account with `fixed_field`, e.g. the `2000` spelling.
            (
                name @ ("whatsapp_business_manager_messaging_limit" | "messaging_limit_tier"),
                Simulated::Waba,
            ) if crate::catalog::versions::messaging_limit_field(context.version) == name
                || name == "messaging_limit_tier" =>
            {
                json!(waba::PORTFOLIO_LIMIT)
            }
            ("health_status", Simulated::Waba) => waba::health_status(context.object_id),
            (name, kind) => return Err(GraphError::nonexisting_field(name, kind.node_type())),
        };
        body.insert(field.name.clone(), value);
    }
    Ok(Value::Object(body))
}

/// Runs `read` with a context for object `object_id` at `now`, with the query string `query`;
/// the read paths' unit tests use it.
#[cfg(test)]
pub(crate) fn with_context<T>(
    object_id: &str,
    query: &str,
    now: i64,
    read: impl FnOnce(&ReadContext<'_>) -> T,
) -> T {
    with_settings(object_id, query, now, &WhatsAppSettings::default(), read)
}

/// Like [`with_context`], for a WhatsApp account with these settings.
#[cfg(test)]
pub(crate) fn with_settings<T>(
    object_id: &str,
    query: &str,
    now: i64,
    whatsapp: &WhatsAppSettings,
    read: impl FnOnce(&ReadContext<'_>) -> T,
) -> T {
    // Tests write queries readably; percent-encode what a URI cannot carry (quotes, braces).
    let encoded: String = query
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'=' | b'&' | b',' | b'.' | b'_' | b'-' => {
                char::from(byte).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect();
    let uri = Uri::try_from(format!("/?{encoded}")).expect("valid test query");
    let query = QueryParams::parse(&uri).expect("decodable test query");
    let none = HashSet::new();
    let context = ReadContext {
        object_id,
        // One that knows every field the simulator serves (the portfolio limit is v24.0+).
        version: "v27.0",
        base_url: "http://127.0.0.1:9",
        now,
        token: TEST_TOKEN,
        query: &query,
        retired: &none,
        named: &none,
        misaligned: false,
        extra_metrics: &BTreeSet::new(),
        whatsapp,
        name: "Simulated object",
        max_page_size: super::paging::MAX_LIMIT,
    };
    read(&context)
}

/// The token of [`with_context`]'s requests.
#[cfg(test)]
pub(crate) const TEST_TOKEN: &str = "EAAGtest";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_paths_split_into_version_object_and_edge() {
        let route = Route::parse("/v21.0/1234/insights/").expect("a Graph path");
        assert_eq!(
            (
                route.version.as_str(),
                route.object_id.as_str(),
                route.edge.as_deref()
            ),
            ("v21.0", "1234", Some("insights"))
        );
        assert!(Route::parse("/v21.0/1234").is_some_and(|route| route.edge.is_none()));
        for path in [
            "/",
            "/1234/insights",
            "/v21/1234",
            "/vX.0/1",
            "/v21.0/1/insights/x",
            "/v21.0//insights",
        ] {
            assert!(Route::parse(path).is_none(), "{path}");
        }
    }

    #[test]
    fn bearer_and_oauth_schemes_both_carry_the_token() {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, "Bearer abc".parse().expect("header"));
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(AUTHORIZATION, "OAuth abc".parse().expect("header"));
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(AUTHORIZATION, "Bearer ".parse().expect("header"));
        assert_eq!(bearer_token(&headers), None);
    }
}

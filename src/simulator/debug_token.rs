//! `debug_token`: what the simulated Meta knows about a token, and the app that may ask.
//!
//! `debug_token?input_token=TOKEN`, asked with the app token `APP_ID|APP_SECRET`
//! ([`FakeGraphApi::set_app`]), answers `{"data":{"app_id","type","application","expires_at",
//! "data_access_expires_at","is_valid","issued_at","scopes","granular_scopes"}}`. Every token
//! registered on an object has facts by default (valid, type `PAGE` for a Page's token and
//! `SYSTEM_USER` otherwise, never expiring, data access for 60 more days, every permission the
//! exporter's reads need); [`FakeGraphApi::set_token_info`] replaces them. A token the
//! simulator does not know is invalid with Meta's "Cannot parse access token" error. It is
//! served as a plain GET, as Graph serves it, and inside batch calls, where
//! [`FakeGraphApi::leave_unanswered`] can make an entry come back `null`.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::faults::GraphError;
use super::http::QueryParams;
use super::{FakeGraphApi, ObjectKind, Registry, Shared, Simulated};

/// Every permission the exporter's reads need, which registered tokens have by default.
pub const ALL_SCOPES: [&str; 7] = [
    "ads_read",
    "business_management",
    "pages_messaging",
    "pages_read_engagement",
    "pages_show_list",
    "read_insights",
    "whatsapp_business_management",
];

/// What `debug_token` says about one token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// `is_valid`.
    pub is_valid: bool,
    /// `type`: `PAGE`, `USER`, `SYSTEM_USER`, `APP`.
    pub kind: String,
    /// `expires_at`, unix seconds; 0 for a token that never expires.
    pub expires_at: i64,
    /// `data_access_expires_at`, unix seconds; 0 for none, as Meta sends it.
    pub data_access_expires_at: i64,
    /// `scopes` (and `granular_scopes`).
    pub scopes: Vec<String>,
    /// `error`: code and message, for an invalid token.
    pub error: Option<(i64, String)>,
}

impl TokenInfo {
    /// A valid token of `kind` that never expires, with data access until
    /// `data_access_expires_at` and every permission in [`ALL_SCOPES`].
    pub fn valid(kind: &str, data_access_expires_at: i64) -> TokenInfo {
        TokenInfo {
            is_valid: true,
            kind: kind.to_owned(),
            expires_at: 0,
            data_access_expires_at,
            scopes: ALL_SCOPES.map(str::to_owned).to_vec(),
            error: None,
        }
    }

    /// What Meta answers about a token it cannot parse.
    fn unknown() -> TokenInfo {
        TokenInfo {
            is_valid: false,
            kind: String::new(),
            expires_at: 0,
            data_access_expires_at: 0,
            scopes: Vec::new(),
            error: Some((
                190,
                "Invalid OAuth access token - Cannot parse access token".to_owned(),
            )),
        }
    }
}

/// How long data access lasts from now for registered tokens by default.
const DEFAULT_DATA_ACCESS: i64 = 60 * 86_400;

/// The registry's part for `debug_token`.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    /// `(app id, app secret)`.
    app: Option<(String, String)>,
    /// Facts set by tests, by token.
    info: HashMap<String, TokenInfo>,
    /// Batch entries about a token still to be answered `null`, by token.
    unanswered: HashMap<String, usize>,
    /// Batch calls received (`POST /{version}/`).
    batches: usize,
    /// `debug_token` reads answered, in batches or as GETs.
    reads: usize,
}

impl FakeGraphApi {
    /// Registers the app: `debug_token` (and a batch call carrying it) must be asked with the
    /// app token `APP_ID|APP_SECRET`; any other token on a batch call fails it with code 190.
    pub fn set_app(&self, app_id: &str, app_secret: &str) {
        self.shared.registry().tokens.app = Some((app_id.to_owned(), app_secret.to_owned()));
    }

    /// Replaces what `debug_token` says about `token`.
    pub fn set_token_info(&self, token: &str, info: TokenInfo) {
        self.shared
            .registry()
            .tokens
            .info
            .insert(token.to_owned(), info);
    }

    /// Makes the next `times` batch entries asking `debug_token` about `token` come back
    /// `null`, as Graph answers an entry that timed out.
    pub fn leave_unanswered(&self, token: &str, times: usize) {
        *self
            .shared
            .registry()
            .tokens
            .unanswered
            .entry(token.to_owned())
            .or_default() += times;
    }

    /// The batch calls (`POST /{version}/`) received since the start.
    pub fn batch_count(&self) -> usize {
        self.shared.registry().tokens.batches
    }

    /// The `debug_token` reads answered since the start (batch entries and GETs).
    pub fn debug_token_count(&self) -> usize {
        self.shared.registry().tokens.reads
    }
}

impl Shared {
    /// Counts a batch call.
    pub(crate) fn count_batch(&self) {
        self.registry().tokens.batches += 1;
    }

    /// Whether `token` may make a batch call: the app token, or a token some object accepts.
    pub(crate) fn accepts_batch_token(&self, token: &str) -> bool {
        let registry = self.registry();
        is_app_token(&registry, token) || registry.objects.values().any(|o| o.token == token)
    }

    /// Uses up one `null` answer planned for a batch entry about `input_token`, if any.
    pub(crate) fn take_unanswered(&self, input_token: &str) -> bool {
        let mut registry = self.registry();
        match registry.tokens.unanswered.get_mut(input_token) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }
}

fn is_app_token(registry: &Registry, token: &str) -> bool {
    registry
        .tokens
        .app
        .as_ref()
        .is_some_and(|(id, secret)| token == format!("{id}|{secret}"))
}

/// `debug_token?input_token=..` asked with `token`.
pub(crate) fn read(shared: &Shared, token: &str, query: &QueryParams) -> Result<Value, GraphError> {
    let mut registry = shared.registry();
    if !is_app_token(&registry, token) {
        return Err(GraphError::invalid_token());
    }
    let input = query
        .get("input_token")
        .filter(|input| !input.is_empty())
        .ok_or_else(|| GraphError::invalid_parameter("The parameter input_token is required"))?;
    registry.tokens.reads += 1;
    let now = registry.now();
    let info = registry.tokens.info.get(input).cloned().unwrap_or_else(|| {
        let kind = registry
            .objects
            .values()
            .filter(|object| object.token == input)
            .map(|object| match object.kind {
                ObjectKind::Simulated(Simulated::Page) => "PAGE",
                _ => "SYSTEM_USER",
            })
            .next();
        kind.map_or_else(TokenInfo::unknown, |kind| {
            TokenInfo::valid(kind, now + DEFAULT_DATA_ACCESS)
        })
    });
    let app_id = registry
        .tokens
        .app
        .as_ref()
        .map(|(id, _)| id.clone())
        .unwrap_or_default();
    Ok(answer(&info, &app_id, now))
}

/// The `debug_token` body for `info`, shaped as Meta shapes it.
fn answer(info: &TokenInfo, app_id: &str, now: i64) -> Value {
    if let (false, Some((code, message))) = (info.is_valid, &info.error) {
        if info.kind.is_empty() {
            // An unparsable token: Meta knows nothing else about it.
            return json!({"data": {
                "error": {"code": code, "message": message},
                "is_valid": false,
                "scopes": [],
            }});
        }
    }
    let mut data = json!({
        "app_id": app_id,
        "type": info.kind,
        "application": "Simulated app",
        "expires_at": info.expires_at,
        "data_access_expires_at": info.data_access_expires_at,
        "is_valid": info.is_valid,
        "issued_at": now - 86_400,
        "scopes": info.scopes,
        "granular_scopes": info
            .scopes
            .iter()
            .map(|scope| json!({"scope": scope}))
            .collect::<Vec<_>>(),
    });
    if let (Some(fields), Some((code, message))) = (data.as_object_mut(), &info.error) {
        fields.insert(
            "error".to_owned(),
            json!({"code": code, "message": message}),
        );
    }
    json!({ "data": data })
}

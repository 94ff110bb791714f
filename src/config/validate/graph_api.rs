//! The `graph_api` section: base URL, API version, app secret, timeouts and the response
//! size limit. Its access token is resolved in credentials.rs, like the targets' own.

use super::*;
use crate::catalog::versions::{self, DEFAULT_VERSION};

const DEFAULT_BASE_URL: &str = "https://graph.facebook.com";
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_TOKEN_CHECK_INTERVAL: Duration = Duration::from_secs(3600);
/// `debug_token` counts against the app's limits like any call; checking more often than
/// this would spend calls on an answer that changes at most daily.
const MIN_TOKEN_CHECK_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// Below this even an error response from the Graph API would not fit.
const MIN_RESPONSE_BYTES: usize = 1024;

impl Checker<'_> {
    /// Checks the `graph_api` section except its token, which belongs to the targets.
    pub(super) fn graph_api(&mut self, raw: &RawGraphApi) -> Checked<GraphApiConfig> {
        let base_url = self.base_url("graph_api.base_url", raw.base_url.as_deref());
        let version = self.version("graph_api.version", raw.version.as_deref());
        let marketing_version = match raw.marketing_version.as_deref() {
            // Unset, it follows `version`, so one key still moves every read.
            None => version.clone(),
            Some(text) => self.version("graph_api.marketing_version", Some(text)),
        };
        let app_secret = match raw.app_secret.as_deref() {
            None => Ok(None),
            Some(text) => self
                .secret("graph_api.app_secret", text, None)
                .map(|secret| Some(AppSecret::new(secret))),
        };
        let app_id = self.app_id(raw);
        let token_check_interval = self.token_check_interval(raw);
        let connect_timeout = self.positive_duration(
            "graph_api.connect_timeout",
            raw.connect_timeout.as_deref(),
            DEFAULT_CONNECT_TIMEOUT,
        );
        let request_timeout = self.positive_duration(
            "graph_api.request_timeout",
            raw.request_timeout.as_deref(),
            DEFAULT_REQUEST_TIMEOUT,
        );
        let max_response_bytes = self.number(
            "graph_api.max_response_bytes",
            raw.max_response_bytes,
            DEFAULT_MAX_RESPONSE_BYTES,
            |bytes| bytes >= MIN_RESPONSE_BYTES,
            &format!("must be at least {MIN_RESPONSE_BYTES}"),
        );
        Ok(GraphApiConfig {
            base_url: base_url?,
            version: version?,
            marketing_version: marketing_version?,
            app_secret: app_secret?,
            app_id: app_id?,
            token_check_interval: token_check_interval?,
            connect_timeout: connect_timeout?,
            request_timeout: request_timeout?,
            max_response_bytes: max_response_bytes?,
        })
    }

    /// `graph_api.app_id`: digits, as Meta issues them. Without `app_secret` it would enable
    /// nothing, which is worth a warning rather than silence.
    fn app_id(&mut self, raw: &RawGraphApi) -> Checked<Option<String>> {
        let key = "graph_api.app_id";
        let Some(raw_id) = &raw.app_id else {
            return Ok(None);
        };
        let id = self.expand(key, &raw_id.0)?;
        if !is_digits(&id) {
            return Err(self.problem(key, format!("{id:?} is not an app id (digits only)")));
        }
        if raw.app_secret.is_none() {
            self.warn(
                key,
                "is set without graph_api.app_secret; token health checks need both, so they are off",
            );
        }
        Ok(Some(id))
    }

    fn token_check_interval(&mut self, raw: &RawGraphApi) -> Checked<Duration> {
        let key = "graph_api.token_check_interval";
        let interval = self.positive_duration(
            key,
            raw.token_check_interval.as_deref(),
            DEFAULT_TOKEN_CHECK_INTERVAL,
        )?;
        if interval < MIN_TOKEN_CHECK_INTERVAL {
            return Err(self.problem(
                key,
                format!(
                    "must be at least {}: a token's state changes at most daily, and each check is a call",
                    humantime::format_duration(MIN_TOKEN_CHECK_INTERVAL)
                ),
            ));
        }
        Ok(interval)
    }

    fn base_url(&mut self, key: &str, raw: Option<&str>) -> Checked<String> {
        let Some(raw) = raw else {
            return Ok(DEFAULT_BASE_URL.to_owned());
        };
        let text = self.expand(key, raw)?;
        let url = Url::parse(&text)
            .map_err(|error| self.problem(key, format!("{text:?} is not a URL ({error})")))?;
        if !url.username().is_empty() || url.password().is_some() {
            // Not quoted: the point of this rule is that credentials stay out of messages.
            return Err(self.problem(
                key,
                "must not contain a user name or password; the token authenticates requests",
            ));
        }
        let flaw = if !matches!(url.scheme(), "http" | "https") {
            "must start with http:// or https://"
        } else if url.query().is_some() {
            "must not have a query (?...)"
        } else if url.fragment().is_some() {
            "must not have a fragment (#...)"
        } else {
            // The client appends `/{version}/...`, so a trailing slash would double up.
            return Ok(url.as_str().trim_end_matches('/').to_owned());
        };
        Err(self.problem(key, format!("{text:?} {flaw}")))
    }

    fn version(&mut self, key: &str, raw: Option<&str>) -> Checked<String> {
        let Some(raw) = raw else {
            return Ok(DEFAULT_VERSION.to_owned());
        };
        let version = self.expand(key, raw)?;
        if versions::parse(&version).is_some() {
            Ok(version)
        } else {
            Err(self.problem(
                key,
                format!("{version:?} is not a Graph API version such as {DEFAULT_VERSION}"),
            ))
        }
    }
}

pub(super) fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit())
}

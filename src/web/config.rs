//! The web config file: exporter-toolkit's YAML as written, checked into a [`WebConfig`].
//!
//! Loading is two-stage, as for the main config: serde mirrors the file (`deny_unknown_fields`,
//! so a misspelt key is an error naming its path and line), then every rule is checked and
//! every problem is reported together, each naming its key. Relative file paths resolve
//! against the web config file's directory. Certificates, keys and CAs are read and parsed
//! here, and the rustls server config is built here, so a missing file, bad PEM or a key that
//! does not belong to its certificate fails at start-up, before the port is bound.
//!
//! Format: <https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md>.
//! Every key is accepted. Three are refused with a message saying so: `client_allowed_sans`,
//! `rate_limit`, and TLS versions below 1.2. Values rustls has no counterpart for are errors
//! naming the alternatives: CBC cipher suites, the P-521 curve.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use rustls::pki_types::pem::{self, PemObject as _};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{RootCertStore, ServerConfig};
use serde::Deserialize;

use super::auth::{BasicAuth, PasswordHash};
use super::tls::{self, BuildError, ClientAuth, TlsSettings, TlsVersion};
use crate::config::{parse_message, ConfigError, Problem};

/// The checked web config: what [`super::serve`] applies. Cheap to clone.
#[derive(Clone, Default)]
pub struct WebConfig {
    /// The rustls server config (certificate, versions, suites, client verification, ALPN);
    /// `None` serves plain HTTP.
    pub tls: Option<Arc<ServerConfig>>,
    /// Extra headers set on every response (`http_server_config.headers`, blanks left out).
    pub headers: HeaderMap,
    /// Users who may reach any route; `None` lets everyone in.
    pub basic_auth: Option<BasicAuth>,
}

impl fmt::Debug for WebConfig {
    // By hand: rustls's own Debug would print the whole server config.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("headers", &self.headers)
            .field("basic_auth", &self.basic_auth)
            .finish()
    }
}

/// The file as written. Field docs are the toolkit's meanings.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    /// TLS; absent or empty serves plain HTTP.
    tls_server_config: Option<RawTlsServerConfig>,
    /// HTTP/2 and extra headers.
    http_server_config: Option<RawHttpServerConfig>,
    /// User name to bcrypt hash; empty or absent means no basic auth.
    basic_auth_users: Option<BTreeMap<String, String>>,
    /// The toolkit's request rate limit; read only to refuse it by name.
    rate_limit: Option<serde_yaml::Value>,
}

/// `tls_server_config`. No `Debug`: `key` may hold a private key.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTlsServerConfig {
    /// Server certificate chain as inline PEM, instead of `cert_file`.
    cert: Option<String>,
    /// Server private key as inline PEM, instead of `key_file`.
    key: Option<String>,
    /// Client CA certificates as inline PEM, instead of `client_ca_file`.
    client_ca: Option<String>,
    /// PEM file with the server certificate, then any intermediates.
    cert_file: Option<String>,
    /// PEM file with the server's private key (PKCS#8, PKCS#1 or SEC1).
    key_file: Option<String>,
    /// `NoClientCert` (default), `RequestClientCert`, `RequireAnyClientCert`,
    /// `VerifyClientCertIfGiven` or `RequireAndVerifyClientCert`.
    client_auth_type: Option<String>,
    /// PEM file with the CAs that issue client certificates.
    client_ca_file: Option<String>,
    /// Client certificate SANs to accept (refused: not supported).
    client_allowed_sans: Option<Vec<String>>,
    /// `TLS12` (default) or `TLS13`.
    min_version: Option<String>,
    /// `TLS12` or `TLS13` (default).
    max_version: Option<String>,
    /// TLS 1.2 cipher suites by Go's names, in preference order.
    cipher_suites: Option<Vec<String>>,
    /// Key exchange curves by Go's names, in preference order.
    curve_preferences: Option<Vec<String>>,
    /// Pick the suite by the server's order (default true).
    prefer_server_cipher_suites: Option<bool>,
}

impl RawTlsServerConfig {
    /// An empty section serves plain HTTP, as in the toolkit; any key in it asks for TLS.
    fn is_empty(&self) -> bool {
        self.cert.is_none()
            && self.key.is_none()
            && self.client_ca.is_none()
            && self.cert_file.is_none()
            && self.key_file.is_none()
            && self.client_auth_type.is_none()
            && self.client_ca_file.is_none()
            && self.client_allowed_sans.is_none()
            && self.min_version.is_none()
            && self.max_version.is_none()
            && self.cipher_suites.is_none()
            && self.curve_preferences.is_none()
            && self.prefer_server_cipher_suites.is_none()
    }
}

/// `http_server_config`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpServerConfig {
    /// Offer HTTP/2 over TLS (default true).
    http2: Option<bool>,
    /// Extra response headers, from a fixed set.
    headers: Option<BTreeMap<String, String>>,
}

/// The headers the toolkit lets a web config set: YAML name, header name, and the only values
/// accepted (empty: any). Kept to the toolkit's list on purpose, so that configs stay portable
/// across Prometheus exporters.
const EXTRA_HEADERS: &[(&str, &str, &[&str])] = &[
    ("Content-Security-Policy", "content-security-policy", &[]),
    (
        "Strict-Transport-Security",
        "strict-transport-security",
        &[],
    ),
    (
        "X-Content-Type-Options",
        "x-content-type-options",
        &["nosniff"],
    ),
    (
        "X-Frame-Options",
        "x-frame-options",
        &["deny", "sameorigin"],
    ),
    ("X-XSS-Protection", "x-xss-protection", &[]),
];

/// Reads and checks the web config file at `path`; relative paths inside it resolve against
/// its directory.
pub fn load(path: &Path) -> Result<WebConfig, ConfigError> {
    let (text, base_dir) = crate::config::read_file(path)?;
    from_yaml(&text, &path.display().to_string(), base_dir)
}

/// Checks web config YAML. `source` names it in messages; relative paths resolve against
/// `base_dir`. Stops at a YAML error; otherwise reports every problem found.
pub fn from_yaml(text: &str, source: &str, base_dir: &Path) -> Result<WebConfig, ConfigError> {
    // The toolkit treats an empty file as "no TLS, no auth"; serde_yaml would call it an error.
    let raw: RawWebConfig = if text.trim().is_empty() {
        RawWebConfig::default()
    } else {
        serde_yaml::from_str(text).map_err(|error| ConfigError::Parse {
            source_name: source.to_owned(),
            message: parse_message(&error),
        })?
    };
    let mut checker = Checker {
        base_dir,
        problems: Vec::new(),
    };
    let config = checker.web_config(raw);
    if checker.problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid {
            source_name: source.to_owned(),
            problems: checker.problems,
        })
    }
}

/// Where a value came from, for messages: its key and the file (or "the inline value").
struct Origin {
    /// The key, e.g. `tls_server_config.cert_file`.
    key: String,
    /// The resolved path, or "the inline value".
    what: String,
}

/// What a pair of inline/file keys gave.
enum Lookup {
    /// Neither key is set.
    Absent,
    /// Set, but unusable; the problem is recorded.
    Failed,
    /// The PEM text, read.
    Found(Origin, Vec<u8>),
}

/// The TLS section, whose name prefixes most keys in messages.
const SECTION: &str = "tls_server_config";

/// Checks the raw file, recording every problem with its key instead of stopping at the first.
struct Checker<'a> {
    base_dir: &'a Path,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    fn web_config(&mut self, raw: RawWebConfig) -> WebConfig {
        let http = raw.http_server_config.unwrap_or_default();
        let http2 = http.http2.unwrap_or(true);
        let tls = match raw.tls_server_config {
            Some(tls) if !tls.is_empty() => self.tls(tls, http2),
            _ => None,
        };
        let headers = self.headers(http.headers.unwrap_or_default());
        let basic_auth = self.users(raw.basic_auth_users.unwrap_or_default());
        if raw.rate_limit.is_some() {
            self.problem(
                "rate_limit",
                "not supported by this exporter; limit request rates in a reverse proxy",
            );
        }
        WebConfig {
            tls,
            headers,
            basic_auth,
        }
    }

    fn tls(&mut self, raw: RawTlsServerConfig, http2: bool) -> Option<Arc<ServerConfig>> {
        let problems_before = self.problems.len();
        if raw.client_allowed_sans.is_some() {
            self.problem(
                format!("{SECTION}.client_allowed_sans"),
                "not supported; use client_auth_type: RequireAndVerifyClientCert with a client CA that issues certificates only to allowed clients",
            );
        }
        let cert = self.server_certificate(raw.cert, raw.cert_file);
        let key = self.server_key(raw.key, raw.key_file);
        let client =
            self.client_verification(raw.client_auth_type, raw.client_ca, raw.client_ca_file);
        let versions = self.versions(raw.min_version, raw.max_version);
        let tls12_cipher_suites =
            self.cipher_suites(raw.cipher_suites, versions.map(|(min, _)| min));
        let kx_groups = self.curves(raw.curve_preferences);
        if self.problems.len() > problems_before {
            return None;
        }
        // Every `None` above recorded a problem, so none is left by now.
        let ((cert_chain, cert_origin), (key, key_origin), (client_auth, client_cas), (min, max)) =
            (cert?, key?, client?, versions?);
        let (client_cas, ca_origin) =
            client_cas.map_or((None, None), |(roots, origin)| (Some(roots), Some(origin)));
        let settings = TlsSettings {
            cert_chain,
            key,
            client_auth,
            client_cas,
            versions: TlsVersion::range(min, max),
            tls12_cipher_suites,
            kx_groups,
            prefer_server_cipher_suites: raw.prefer_server_cipher_suites.unwrap_or(true),
            http2,
        };
        match tls::server_config(settings) {
            Ok(config) => Some(config),
            Err(error) => {
                self.rejected(error, &cert_origin, &key_origin, ca_origin.as_ref());
                None
            }
        }
    }

    /// `cert_file` or `cert`: the server's certificate chain.
    fn server_certificate(
        &mut self,
        inline: Option<String>,
        file: Option<String>,
    ) -> Option<(Vec<CertificateDer<'static>>, Origin)> {
        match self.pem("cert", "cert_file", inline, file) {
            Lookup::Found(origin, bytes) => self.certificates(origin, &bytes),
            Lookup::Absent => {
                self.problem(
                    format!("{SECTION}.cert_file"),
                    "required: the server certificate as a PEM file (or `cert` inline)",
                );
                None
            }
            Lookup::Failed => None,
        }
    }

    /// `key_file` or `key`: the server's private key.
    fn server_key(
        &mut self,
        inline: Option<String>,
        file: Option<String>,
    ) -> Option<(PrivateKeyDer<'static>, Origin)> {
        match self.pem("key", "key_file", inline, file) {
            Lookup::Found(origin, bytes) => self.private_key(origin, &bytes),
            Lookup::Absent => {
                self.problem(
                    format!("{SECTION}.key_file"),
                    "required with a certificate: the server's private key as a PEM file (or `key` inline)",
                );
                None
            }
            Lookup::Failed => None,
        }
    }

    /// `client_auth_type` and the client CAs it needs (`client_ca_file` or `client_ca`).
    fn client_verification(
        &mut self,
        auth_type: Option<String>,
        inline_ca: Option<String>,
        ca_file: Option<String>,
    ) -> Option<(ClientAuth, Option<(RootCertStore, Origin)>)> {
        let auth = match auth_type.as_deref() {
            None => Some(ClientAuth::NoClientCert),
            Some(text) => {
                let parsed = ClientAuth::parse(text);
                if parsed.is_none() {
                    self.problem(
                        format!("{SECTION}.client_auth_type"),
                        format!(
                            "unknown client auth type {text:?}; expected {}",
                            ClientAuth::NAMES
                        ),
                    );
                }
                parsed
            }
        };
        let cas = match self.pem("client_ca", "client_ca_file", inline_ca, ca_file) {
            Lookup::Found(origin, _) if auth == Some(ClientAuth::NoClientCert) => {
                // The toolkit refuses this too: it looks like mutual TLS but checks nothing.
                self.problem(
                    origin.key,
                    "set, but client_auth_type is NoClientCert, so no client certificate is asked for; set client_auth_type: RequireAndVerifyClientCert",
                );
                return None;
            }
            Lookup::Found(origin, bytes) => Some(self.roots(origin, &bytes)?),
            Lookup::Absent => {
                if let Some(auth) = auth.filter(|auth| auth.verifies()) {
                    self.problem(
                        format!("{SECTION}.client_ca_file"),
                        format!("required when client_auth_type is {auth}: the CAs that issue client certificates, as a PEM file (or `client_ca` inline)"),
                    );
                }
                None
            }
            Lookup::Failed => return None,
        };
        Some((auth?, cas))
    }

    /// Explains why rustls refused the checked settings, at the key responsible.
    fn rejected(
        &mut self,
        error: BuildError,
        cert: &Origin,
        key: &Origin,
        client_ca: Option<&Origin>,
    ) {
        match error {
            BuildError::Versions(error) => self.problem(
                SECTION,
                format!("min_version, max_version and cipher_suites leave nothing to negotiate: {error}"),
            ),
            BuildError::ClientCas(error) => match client_ca {
                Some(ca) => self.problem(&ca.key, format!("{}: {error}", ca.what)),
                None => self.problem(format!("{SECTION}.client_ca_file"), error.to_string()),
            },
            BuildError::CertifiedKey(rustls::Error::InconsistentKeys(_)) => self.problem(
                &key.key,
                format!(
                    "{}: the private key does not belong to the certificate in {}",
                    key.what, cert.what
                ),
            ),
            BuildError::CertifiedKey(error @ rustls::Error::InvalidCertificate(_)) => {
                self.problem(&cert.key, format!("{}: {error}", cert.what));
            }
            BuildError::CertifiedKey(error) => {
                self.problem(&key.key, format!("{}: {error}", key.what));
            }
        }
    }

    /// Reads PEM text from `inline_key` or `file_key`; at most one may be set.
    fn pem(
        &mut self,
        inline_key: &str,
        file_key: &str,
        inline: Option<String>,
        file: Option<String>,
    ) -> Lookup {
        match (inline, file) {
            (None, None) => Lookup::Absent,
            (Some(_), Some(_)) => {
                self.problem(
                    format!("{SECTION}.{file_key}"),
                    format!("set either {file_key} or {inline_key}, not both"),
                );
                Lookup::Failed
            }
            (Some(text), None) => Lookup::Found(
                Origin {
                    key: format!("{SECTION}.{inline_key}"),
                    what: "the inline value".to_owned(),
                },
                text.into_bytes(),
            ),
            (None, Some(path)) if path.trim().is_empty() => {
                self.problem(
                    format!("{SECTION}.{file_key}"),
                    "is empty; expected a file path",
                );
                Lookup::Failed
            }
            (None, Some(path)) => {
                let path: PathBuf = self.base_dir.join(path);
                let key = format!("{SECTION}.{file_key}");
                match std::fs::read(&path) {
                    Ok(bytes) => Lookup::Found(
                        Origin {
                            key,
                            what: path.display().to_string(),
                        },
                        bytes,
                    ),
                    Err(error) => {
                        self.problem(key, format!("cannot read {}: {error}", path.display()));
                        Lookup::Failed
                    }
                }
            }
        }
    }

    fn certificates(
        &mut self,
        origin: Origin,
        pem: &[u8],
    ) -> Option<(Vec<CertificateDer<'static>>, Origin)> {
        match CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>() {
            Ok(chain) if !chain.is_empty() => Some((chain, origin)),
            Ok(_) => {
                self.problem(
                    origin.key,
                    format!(
                        "{}: no PEM certificate (BEGIN CERTIFICATE) found",
                        origin.what
                    ),
                );
                None
            }
            Err(error) => {
                self.problem(origin.key, format!("{}: invalid PEM: {error}", origin.what));
                None
            }
        }
    }

    fn private_key(
        &mut self,
        origin: Origin,
        pem: &[u8],
    ) -> Option<(PrivateKeyDer<'static>, Origin)> {
        match PrivateKeyDer::from_pem_slice(pem) {
            Ok(key) => Some((key, origin)),
            Err(pem::Error::NoItemsFound) => {
                self.problem(
                    origin.key,
                    format!(
                        "{}: no PEM private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY) found",
                        origin.what
                    ),
                );
                None
            }
            Err(error) => {
                self.problem(origin.key, format!("{}: invalid PEM: {error}", origin.what));
                None
            }
        }
    }

    fn roots(&mut self, origin: Origin, pem: &[u8]) -> Option<(RootCertStore, Origin)> {
        let (certificates, origin) = self.certificates(origin, pem)?;
        let mut roots = RootCertStore::empty();
        for (index, certificate) in certificates.into_iter().enumerate() {
            if let Err(error) = roots.add(certificate) {
                self.problem(
                    origin.key,
                    format!(
                        "{}: certificate {} is not a usable CA certificate: {error}",
                        origin.what,
                        index + 1
                    ),
                );
                return None;
            }
        }
        Some((roots, origin))
    }

    /// `min_version` and `max_version`, which must be in order.
    fn versions(
        &mut self,
        min: Option<String>,
        max: Option<String>,
    ) -> Option<(TlsVersion, TlsVersion)> {
        let min = self.version("min_version", min, TlsVersion::Tls12);
        let max = self.version("max_version", max, TlsVersion::Tls13);
        let (min, max) = (min?, max?);
        if min > max {
            self.problem(
                format!("{SECTION}.max_version"),
                format!("{max} is below min_version {min}"),
            );
            return None;
        }
        Some((min, max))
    }

    fn version(
        &mut self,
        name: &str,
        text: Option<String>,
        default: TlsVersion,
    ) -> Option<TlsVersion> {
        let Some(text) = text else {
            return Some(default);
        };
        match TlsVersion::parse(&text) {
            Ok(version) => Some(version),
            Err(message) => {
                self.problem(format!("{SECTION}.{name}"), message);
                None
            }
        }
    }

    fn cipher_suites(
        &mut self,
        names: Option<Vec<String>>,
        min: Option<TlsVersion>,
    ) -> Option<Vec<rustls::SupportedCipherSuite>> {
        // An empty list keeps the defaults, as in the toolkit.
        let names = names.filter(|names| !names.is_empty())?;
        let mut suites: Vec<rustls::SupportedCipherSuite> = Vec::new();
        let mut valid = true;
        for (index, name) in names.iter().enumerate() {
            match tls::tls12_cipher_suite(name) {
                Ok(Some(suite)) if !suites.contains(&suite) => suites.push(suite),
                Ok(_) => {}
                Err(message) => {
                    self.problem(format!("{SECTION}.cipher_suites[{index}]"), message);
                    valid = false;
                }
            }
        }
        if valid && suites.is_empty() && min == Some(TlsVersion::Tls12) {
            self.problem(
                format!("{SECTION}.cipher_suites"),
                "lists no TLS 1.2 suite, so no TLS 1.2 client could connect; add one or set min_version: TLS13",
            );
        }
        Some(suites)
    }

    fn curves(
        &mut self,
        names: Option<Vec<String>>,
    ) -> Option<Vec<&'static dyn rustls::crypto::SupportedKxGroup>> {
        let names = names.filter(|names| !names.is_empty())?;
        let mut groups: Vec<&'static dyn rustls::crypto::SupportedKxGroup> = Vec::new();
        for (index, name) in names.iter().enumerate() {
            match tls::kx_group(name) {
                Ok(group) => {
                    if !groups.iter().any(|known| known.name() == group.name()) {
                        groups.push(group);
                    }
                }
                Err(message) => {
                    self.problem(format!("{SECTION}.curve_preferences[{index}]"), message);
                }
            }
        }
        Some(groups)
    }

    fn headers(&mut self, raw: BTreeMap<String, String>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in raw {
            let key = format!("http_server_config.headers.{name}");
            let Some((_, header, allowed)) =
                EXTRA_HEADERS.iter().find(|(yaml, _, _)| *yaml == name)
            else {
                let names: Vec<&str> = EXTRA_HEADERS.iter().map(|(yaml, _, _)| *yaml).collect();
                self.problem(
                    key,
                    format!(
                        "this header cannot be configured; expected one of {}",
                        names.join(", ")
                    ),
                );
                continue;
            };
            // "Unset if blank", as the toolkit documents.
            if value.is_empty() {
                continue;
            }
            if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
                self.problem(
                    key,
                    format!("invalid value {value:?}; expected {}", allowed.join(" or ")),
                );
                continue;
            }
            match HeaderValue::from_str(&value) {
                Ok(value) => {
                    headers.insert(HeaderName::from_static(header), value);
                }
                Err(_) => self.problem(key, "not a valid header value (control characters?)"),
            }
        }
        headers
    }

    fn users(&mut self, raw: BTreeMap<String, String>) -> Option<BasicAuth> {
        let mut users = BTreeMap::new();
        for (user, hash) in raw {
            let key = format!("basic_auth_users.{user}");
            if user.contains(':') {
                self.problem(
                    key,
                    "a user name cannot contain ':', which separates user and password in Basic auth",
                );
                continue;
            }
            match PasswordHash::parse(&hash) {
                Ok(hash) => {
                    users.insert(user, hash);
                }
                Err(message) => self.problem(key, message),
            }
        }
        BasicAuth::new(users)
    }
}

#[cfg(test)]
mod tests;

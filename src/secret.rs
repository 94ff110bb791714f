//! Access tokens and app secrets: values that must never be printed.
//!
//! This module owns the one type that holds a Graph API token. Its `Debug` prints a
//! placeholder and it has no `Display`, so a token cannot reach a log line, an error message,
//! `/metrics` or the landing page by accident; the only way out is [`AccessToken::expose`],
//! which the Graph API client calls to build the `Authorization` header and `appsecret_proof`.

use secrecy::{ExposeSecret, SecretString};

/// A Graph API access token (Page, system-user or user token).
#[derive(Clone)]
pub struct AccessToken(SecretString);

impl AccessToken {
    /// Wraps a token read from the config, an environment variable or a file.
    pub fn new(token: impl Into<String>) -> Self {
        Self(SecretString::from(token.into()))
    }

    /// The token itself, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

impl PartialEq for AccessToken {
    /// Compares tokens so a reload can tell whether a target's credentials changed.
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for AccessToken {}

/// The app secret used to sign requests with `appsecret_proof`.
#[derive(Clone)]
pub struct AppSecret(SecretString);

impl AppSecret {
    /// Wraps the app secret from the config.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(SecretString::from(secret.into()))
    }

    /// The secret itself, for computing `appsecret_proof` only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppSecret([redacted])")
    }
}

impl PartialEq for AppSecret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for AppSecret {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_contains_the_token() {
        let token = AccessToken::new("EAAB-very-secret");
        let secret = AppSecret::new("app-secret-value");
        let printed = format!("{token:?} {secret:?}");
        assert!(!printed.contains("very-secret"));
        assert!(!printed.contains("app-secret-value"));
        assert_eq!(token.expose(), "EAAB-very-secret");
    }
}

//! Access tokens and app secrets: values that must never be printed.
//!
//! This module owns the one type that holds a Graph API token. Its `Debug` prints a
//! placeholder and it has no `Display`, so a token cannot reach a log line, an error message,
//! `/metrics` or the landing page by accident; the only way out is [`AccessToken::expose`],
//! which the Graph API client calls to build the `Authorization` header and `appsecret_proof`.
//!
//! It also owns [`TokenId`], a token's identity: the whole SHA-256 of the token, computed once
//! when the token is wrapped. Everything that keys state on a token (batches, the rate
//! limiter, token health) compares all 32 bytes; only labels and logs show the short
//! [`TokenId::label`], so two tokens whose labels happen to match never share state.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// A Graph API access token (Page, system-user or user token).
#[derive(Clone)]
pub struct AccessToken {
    secret: SecretString,
    id: TokenId,
}

impl AccessToken {
    /// Wraps a token read from the config, an environment variable or a file.
    pub fn new(token: impl Into<String>) -> Self {
        let token = token.into();
        // Hashed here, once: a token is wrapped at load time, and its id is asked for on
        // every request.
        let id = TokenId(Sha256::digest(token.as_bytes()).into());
        Self {
            secret: SecretString::from(token),
            id,
        }
    }

    /// The token itself, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        self.secret.expose_secret()
    }

    /// The token's identity, for keying state on it.
    pub fn id(&self) -> &TokenId {
        &self.id
    }
}

/// A token's identity: the full SHA-256 of the token, which names it without revealing it.
///
/// Equality, hashing and order cover all 32 bytes. People see [`TokenId::label`] (also its
/// `Display` and `Debug`), `token:` and the first 8 hex digits: short enough for a label,
/// too short to tell tokens apart at scale (two of 10,000 tokens share one about 1% of the
/// time), which is why nothing is keyed on it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId([u8; 32]);

impl TokenId {
    /// The short form for metric labels, logs and the status page: `token:` and 8 hex digits.
    pub fn label(&self) -> String {
        format!("token:{}", hex::encode(&self.0[..4]))
    }

    /// The whole digest in hex, `token:` and 64 digits, where a string must name the token
    /// uniquely (the object id of a `debug_token` batch entry).
    pub fn full(&self) -> String {
        format!("token:{}", hex::encode(self.0))
    }
}

impl std::fmt::Display for TokenId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

impl std::fmt::Debug for TokenId {
    /// The label only: a debug print of state keyed on tokens stays readable.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
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

/// Two tokens whose labels are equal (`token:ab4ef502`) and whose ids are not, for the tests
/// that show nothing is keyed on a label. Found once with a birthday search over
/// `collide-<n>` (Python `hashlib.sha256`, remembering the first 4 bytes of each digest): the
/// first repeat was at n = 37896.
#[cfg(test)]
pub(crate) const COLLIDING_TOKENS: (&str, &str) = ("collide-14550", "collide-37896");

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

    #[test]
    fn a_token_id_labels_a_token_without_revealing_it() {
        let id = *AccessToken::new("EAAsecret").id();
        let label = id.label();
        assert!(label.starts_with("token:") && label.len() == 14, "{label}");
        assert!(!label.contains("EAAsecret"));
        assert_eq!(format!("{id}"), label);
        assert_eq!(format!("{id:?}"), label);
        assert_eq!(id.full().len(), "token:".len() + 64);
        assert!(id.full().starts_with(&label));
    }

    #[test]
    fn tokens_with_equal_labels_have_different_ids() {
        let (a, b) = (
            AccessToken::new(COLLIDING_TOKENS.0),
            AccessToken::new(COLLIDING_TOKENS.1),
        );
        assert_eq!(a.id().label(), "token:ab4ef502");
        assert_eq!(a.id().label(), b.id().label());
        assert_ne!(a.id(), b.id());
        assert_ne!(a.id().cmp(b.id()), std::cmp::Ordering::Equal);
    }
}

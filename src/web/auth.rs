//! Basic auth on every route, and the extra response headers, as one axum middleware.
//!
//! Why these crates: `bcrypt` checks passwords against the `basic_auth_users` hashes (the
//! toolkit's format, what `htpasswd -nB` prints); `base64` decodes the `Authorization` header;
//! `sha2` keys the cache; `secrecy` wipes decoded passwords from memory when dropped.
//!
//! bcrypt is slow on purpose: tens of milliseconds at cost 10, too slow to pay on every scrape.
//! As in exporter-toolkit, a successful check is remembered. The cache holds SHA-256 digests
//! of user, stored hash and password, never a password. Because the stored hash embeds a
//! random salt, a digest cannot be looked up in a precomputed table, and a changed hash
//! invalidates the user's entries. Failures are not cached, so a wrong password always costs a
//! full bcrypt check. Checks that miss the cache run one at a time on the blocking pool. A flood
//! of wrong passwords therefore uses at most one core and never stalls the async workers that
//! serve scrapes and run polls. An unknown user is checked against the costliest configured
//! hash, so the response time does not tell which user names exist.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretSlice};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::WebConfig;

/// The challenge sent with every 401. The realm names this exporter so a browser's password
/// prompt says what it is for.
const CHALLENGE: &str = r#"Basic realm="meta-messaging-exporter", charset="UTF-8""#;

/// Most remembered (user, password) digests. Only successes are cached, so this is reached
/// only with many users or many password changes; then an arbitrary entry goes, which costs
/// at most one extra bcrypt check later.
const CACHE_CAPACITY: usize = 256;

/// A bcrypt hash from `basic_auth_users`. Its `Debug` hides the hash: a hash is not a
/// password, but it allows an offline guessing attack, so it stays out of logs.
#[derive(Clone)]
pub struct PasswordHash {
    text: String,
    cost: u32,
}

impl PasswordHash {
    /// Checks that `text` is a bcrypt hash (`$2a$`, `$2b$`, `$2x$` or `$2y$`, cost 4 to 31,
    /// 60 characters). The error message never repeats the hash.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts = bcrypt::HashParts::from_str(text).map_err(|error| {
            format!("not a bcrypt hash ({error}); generate one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`")
        })?;
        let cost = parts.get_cost();
        if !(4..=31).contains(&cost) {
            return Err(format!(
                "bcrypt cost {cost} is out of range; bcrypt allows 4 to 31"
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            cost,
        })
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PasswordHash(cost {}, [redacted])", self.cost)
    }
}

/// The users allowed in, and what has already been verified. Cheap to clone (shared).
#[derive(Clone)]
pub struct BasicAuth(Arc<Inner>);

struct Inner {
    users: HashMap<String, PasswordHash>,
    /// The costliest configured hash, checked when the user is unknown.
    decoy: PasswordHash,
    /// Digests of (user, hash, password) that verified.
    verified: Mutex<HashSet<[u8; 32]>>,
    /// One permit: bcrypt checks run one at a time.
    bcrypt: Arc<Semaphore>,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut users: Vec<&str> = self.users().collect();
        users.sort_unstable();
        f.debug_struct("BasicAuth").field("users", &users).finish()
    }
}

impl BasicAuth {
    /// Basic auth for `users`; `None` when there are none, as the toolkit then lets
    /// everyone in.
    pub fn new(users: BTreeMap<String, PasswordHash>) -> Option<Self> {
        let decoy = users.values().max_by_key(|hash| hash.cost)?.clone();
        Some(Self(Arc::new(Inner {
            users: users.into_iter().collect(),
            decoy,
            verified: Mutex::new(HashSet::new()),
            bcrypt: Arc::new(Semaphore::new(1)),
        })))
    }

    /// How many users are configured.
    pub fn user_count(&self) -> usize {
        self.0.users.len()
    }

    /// The configured user names, in no particular order.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.0.users.keys().map(String::as_str)
    }

    /// True if `headers` carry `Authorization: Basic` credentials of a configured user.
    pub async fn authorize(&self, headers: &HeaderMap) -> bool {
        match headers.get(header::AUTHORIZATION).and_then(credentials) {
            Some((user, password)) => self.verify(&user, password.expose_secret()).await,
            None => false,
        }
    }

    /// True if `password` is `user`'s. Takes one bcrypt check the first time a pair verifies
    /// and a hash lookup afterwards.
    pub async fn verify(&self, user: &str, password: &[u8]) -> bool {
        let known = self.0.users.get(user);
        let hash = known.unwrap_or(&self.0.decoy);
        let digest = digest(user, hash, password);
        if known.is_some() && self.is_cached(&digest) {
            return true;
        }
        let Ok(permit) = self.0.bcrypt.clone().acquire_owned().await else {
            return false;
        };
        let password = SecretSlice::from(password.to_vec());
        let hash_text = hash.text.clone();
        // The permit moves into the blocking task, so it is held for as long as bcrypt runs
        // even if the client disconnects and this future is dropped.
        let matched = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            bcrypt::verify(password.expose_secret(), &hash_text).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        let accepted = matched && known.is_some();
        if accepted {
            self.remember(digest);
        }
        accepted
    }

    fn is_cached(&self, digest: &[u8; 32]) -> bool {
        self.0
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(digest)
    }

    fn remember(&self, digest: [u8; 32]) {
        let mut verified = self
            .0
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if verified.len() >= CACHE_CAPACITY {
            if let Some(evicted) = verified.iter().next().copied() {
                verified.remove(&evicted);
            }
        }
        verified.insert(digest);
    }
}

/// SHA-256 over length-prefixed fields, so that no two (user, hash, password) triples share
/// an input.
fn digest(user: &str, hash: &PasswordHash, password: &[u8]) -> [u8; 32] {
    let mut sha = Sha256::new();
    for field in [user.as_bytes(), hash.text.as_bytes(), password] {
        sha.update((field.len() as u64).to_be_bytes());
        sha.update(field);
    }
    sha.finalize().into()
}

/// User and password from `Basic <base64(user:password)>` (RFC 7617); `None` for another
/// scheme or a malformed value.
fn credentials(value: &HeaderValue) -> Option<(String, SecretSlice<u8>)> {
    let (scheme, encoded) = value.to_str().ok()?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = SecretSlice::from(
        base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?,
    );
    let decoded = decoded.expose_secret();
    let colon = decoded.iter().position(|&byte| byte == b':')?;
    let user = std::str::from_utf8(&decoded[..colon]).ok()?.to_owned();
    let password = SecretSlice::from(decoded[colon + 1..].to_vec());
    Some((user, password))
}

/// What the middleware needs from the web config.
struct Guard {
    basic_auth: Option<BasicAuth>,
    headers: HeaderMap,
}

/// Wraps every route of `router`, its fallback included, in the basic auth check and the
/// extra headers; returns `router` untouched when the web config asks for neither.
pub(crate) fn layer(router: Router, web: &WebConfig) -> Router {
    if web.basic_auth.is_none() && web.headers.is_empty() {
        return router;
    }
    let guard = Arc::new(Guard {
        basic_auth: web.basic_auth.clone(),
        headers: web.headers.clone(),
    });
    router.layer(axum::middleware::from_fn_with_state(guard, guard_request))
}

async fn guard_request(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let allowed = match &guard.basic_auth {
        Some(auth) => auth.authorize(request.headers()).await,
        None => true,
    };
    let mut response = if allowed {
        next.run(request).await
    } else {
        tracing::debug!(path = %request.uri().path(), "refused: missing or wrong basic auth credentials");
        unauthorized()
    };
    // Set after the handler, so these win over anything a route set, as configured.
    for (name, value) in &guard.headers {
        response.headers_mut().insert(name, value.clone());
    }
    response
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, CHALLENGE)],
        "Unauthorized\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(entries: &[(&str, &str)]) -> BasicAuth {
        let users = entries
            .iter()
            .map(|(user, password)| {
                let hash = bcrypt::hash(password, 4).expect("hash");
                (
                    (*user).to_owned(),
                    PasswordHash::parse(&hash).expect("valid hash"),
                )
            })
            .collect();
        BasicAuth::new(users).expect("users configured")
    }

    fn basic(user_and_password: &str) -> HeaderMap {
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_and_password);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).expect("header"),
        );
        headers
    }

    #[tokio::test]
    async fn the_right_password_verifies_and_is_remembered_as_a_digest() {
        let auth = users(&[("alice", "s3cret"), ("bob", "hunter2")]);
        assert!(auth.verify("alice", b"s3cret").await);
        assert!(auth.verify("bob", b"hunter2").await);
        let cached = auth.0.verified.lock().expect("lock").clone();
        assert_eq!(cached.len(), 2);
        let hash = &auth.0.users["alice"];
        assert!(cached.contains(&digest("alice", hash, b"s3cret")));
        // Served from the cache now.
        assert!(auth.verify("alice", b"s3cret").await);
    }

    #[tokio::test]
    async fn wrong_passwords_unknown_users_and_swapped_passwords_fail_and_are_not_cached() {
        let auth = users(&[("alice", "s3cret"), ("bob", "hunter2")]);
        assert!(!auth.verify("alice", b"wrong").await);
        assert!(!auth.verify("alice", b"").await);
        assert!(!auth.verify("alice", b"hunter2").await);
        assert!(!auth.verify("mallory", b"s3cret").await);
        assert!(!auth.verify("", b"").await);
        assert!(auth.0.verified.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn the_authorization_header_is_parsed_as_rfc_7617_says() {
        let auth = users(&[("alice", "pa:ss word")]);
        assert!(auth.authorize(&basic("alice:pa:ss word")).await);
        let mut lower = basic("alice:pa:ss word");
        let value = lower[header::AUTHORIZATION]
            .to_str()
            .expect("ascii")
            .replace("Basic", "basic");
        lower.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&value).expect("header"),
        );
        assert!(
            auth.authorize(&lower).await,
            "the scheme is case-insensitive"
        );

        assert!(!auth.authorize(&HeaderMap::new()).await);
        assert!(!auth.authorize(&basic("alice")).await, "no colon");
        let mut bearer = HeaderMap::new();
        bearer.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert!(!auth.authorize(&bearer).await);
        let mut garbage = HeaderMap::new();
        garbage.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic %%%"));
        assert!(!auth.authorize(&garbage).await);
    }

    #[test]
    fn hashes_are_checked_and_never_printed() {
        let hash = bcrypt::hash("x", 4).expect("hash");
        let parsed = PasswordHash::parse(&hash).expect("valid");
        assert!(!format!("{parsed:?}").contains(&hash[7..]));
        for bad in [
            "",
            "plaintext",
            "$2y$10$tooshort",
            "$1$abcdefgh$abcdefghijklmnopqrstuv",
        ] {
            let error = PasswordHash::parse(bad).expect_err(bad);
            assert!(error.contains("not a bcrypt hash"), "{error}");
        }
        let too_costly = format!("$2y$99${}", &hash[7..]);
        let error = PasswordHash::parse(&too_costly).expect_err("cost 99");
        assert!(error.contains("cost 99"), "{error}");
        assert!(!error.contains(&hash[7..]), "{error}");
    }

    #[test]
    fn no_users_means_no_basic_auth() {
        assert!(BasicAuth::new(BTreeMap::new()).is_none());
    }
}

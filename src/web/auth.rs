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
//! full bcrypt check, which is why this module also owns who may start one.
//!
//! **What a password flood can and cannot do.** A request whose credentials are cached never
//! reaches bcrypt and is answered at once, however many checks are running. A check that
//! misses the cache goes to a pool of [`pool size`](CheckLimits::for_this_machine) workers,
//! one per core (`std::thread::available_parallelism`), on tokio's blocking pool, so the async
//! workers that serve scrapes and run polls are never blocked. It is refused at once, with no
//! bcrypt at all:
//!
//! - with `401` when its client already has [`PER_CLIENT`] checks in flight. A client is an
//!   IPv4 address or an IPv6 /64 (one host usually holds a whole /64). One flooding address
//!   therefore holds at most that many places however many connections it opens;
//! - with `429` and `Retry-After: 1` when [`QUEUE_PER_WORKER`] checks per worker are already
//!   admitted (running or waiting). That answer says "not now" rather than "wrong password",
//!   so a browser does not ask for the password again; Prometheus counts either as a failed
//!   scrape.
//!
//! **Clean clients have places of their own.** A client whose last check failed within
//! [`FAILURE_MEMORY`] is *marked*; the others are *clean*. Beyond the `Q` shared places there
//! are `P` more that only clean clients may take. A flooding address is marked after its first
//! wrong password, so however many addresses a flood comes from, each takes a reserved place
//! at most once per [`FAILURE_MEMORY`], and a correct login from a clean address (Prometheus,
//! whose checks pass) finds one free.
//!
//! The guarantee, with `P` workers and `Q = 4P` shared places: a correct login that is cached
//! always passes. One that is not yet cached is admitted when its client is clean, or when
//! the flood comes from fewer than `Q / PER_CLIENT = 2P` addresses other than its own, and
//! then waits behind at most `Q + P - 1` checks spread over `P` workers: its answer comes
//! within about six bcrypt checks (a third of a second at cost 10, six to ten seconds at cost
//! 14, the most allowed). Only a flood that brings a fresh address for every attempt (more than
//! `P` new addresses within one check's time) can keep an uncached login out; it still cannot
//! touch a cached one. A login from the flooding address itself, if not cached, shares that
//! address's places and its mark.
//!
//! **Timing.** An unknown user is checked against a dummy hash made at start-up with the
//! highest cost configured, through the same pool and limits, so the answer takes as long as
//! for a known user with a wrong password (give every user the same cost for that to hold for
//! all of them). Costs are bounded to [`MIN_COST`]..=[`MAX_COST`]: a higher cost lets one
//! request occupy a worker for minutes (and delays shutdown, which waits for running checks);
//! a lower one makes offline guessing of a leaked hash cheap.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr as _;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use prometheus::IntCounterVec;
use secrecy::{ExposeSecret, SecretSlice};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::connections::client_key;
use super::WebConfig;

/// The challenge sent with every 401. The realm names this exporter so a browser's password
/// prompt says what it is for.
const CHALLENGE: &str = r#"Basic realm="meta-messaging-exporter", charset="UTF-8""#;

/// Most remembered (user, password) digests. Only successes are cached, so this is reached
/// only with many users or many password changes; then an arbitrary entry goes, which costs
/// at most one extra bcrypt check later.
const CACHE_CAPACITY: usize = 256;

/// The lowest bcrypt cost accepted: the toolkit's documentation and `htpasswd -B` examples
/// use 10, and below it a leaked hash is cheap to guess offline.
pub const MIN_COST: u32 = 10;

/// The highest bcrypt cost accepted. Each step doubles the work: cost 14 takes about a second
/// on one core, cost 31 days. Above this one request occupies a worker for longer than a
/// scrape timeout.
pub const MAX_COST: u32 = 14;

/// Checks one client may have admitted (running or waiting) at once. Two, not one, so a
/// browser that opens a second connection while its first check runs is not refused.
pub const PER_CLIENT: usize = 2;

/// Checks admitted per worker, running and waiting together. Four keeps the wait of an
/// admitted check to about four bcrypt durations while leaving room for `2P` flooding
/// addresses beside a real login.
pub const QUEUE_PER_WORKER: usize = 4;

/// How long a failed check marks its client: it loses the reserved places for that long.
pub const FAILURE_MEMORY: std::time::Duration = std::time::Duration::from_secs(600);

/// The most clients remembered as marked; beyond it the oldest marks go, which only gives an
/// attacker one more reserved place per forgotten address.
const MARKED_CAPACITY: usize = 65_536;

/// A bcrypt hash from `basic_auth_users`. Its `Debug` hides the hash: a hash is not a
/// password, but it allows an offline guessing attack, so it stays out of logs.
#[derive(Clone)]
pub struct PasswordHash {
    text: String,
    cost: u32,
}

impl PasswordHash {
    /// Checks that `text` is a bcrypt hash (`$2a$`, `$2b$`, `$2x$` or `$2y$`, 60 characters)
    /// with a cost from [`MIN_COST`] to [`MAX_COST`]. The error message never repeats the hash.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts = bcrypt::HashParts::from_str(text).map_err(|error| {
            format!("not a bcrypt hash ({error}); generate one with `htpasswd -nBC {MIN_COST} \"\" | tr -d ':\\n'`")
        })?;
        let cost = parts.get_cost();
        if !(MIN_COST..=MAX_COST).contains(&cost) {
            return Err(format!(
                "bcrypt cost {cost} is out of range: this exporter accepts {MIN_COST} to {MAX_COST} (a higher cost lets one login occupy a core for minutes, a lower one makes a leaked hash easy to guess); generate one with `htpasswd -nBC {MIN_COST} \"\" | tr -d ':\\n'`"
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            cost,
        })
    }

    /// The hash's cost factor.
    pub fn cost(&self) -> u32 {
        self.cost
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PasswordHash(cost {}, [redacted])", self.cost)
    }
}

/// How many bcrypt checks may run and wait, overall and per client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckLimits {
    /// Checks running at once: the worker count.
    pub workers: usize,
    /// Checks admitted at once, running and waiting.
    pub queue: usize,
    /// Checks admitted at once from one client (see [`client_key`]).
    pub per_client: usize,
}

impl CheckLimits {
    /// One worker per core, [`QUEUE_PER_WORKER`] places per worker, [`PER_CLIENT`] per client.
    pub fn for_this_machine() -> Self {
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            workers,
            queue: workers * QUEUE_PER_WORKER,
            per_client: PER_CLIENT,
        }
    }
}

/// Why a request was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No credentials, a wrong password or an unknown user.
    Credentials,
    /// Its client already has [`CheckLimits::per_client`] checks in flight; no bcrypt ran.
    ClientBusy,
    /// [`CheckLimits::queue`] checks are admitted already; no bcrypt ran.
    Saturated,
}

impl Refusal {
    /// The `reason` label of `http_auth_refused_total`.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Credentials => "credentials",
            Refusal::ClientBusy => "client_busy",
            Refusal::Saturated => "saturated",
        }
    }
}

/// The users allowed in, and what has already been verified. Cheap to clone (shared).
#[derive(Clone)]
pub struct BasicAuth(Arc<Inner>);

struct Inner {
    users: HashMap<String, PasswordHash>,
    /// A hash of no configured password at the highest configured cost, checked when the
    /// user is unknown.
    decoy: PasswordHash,
    /// Digests of (user, hash, password) that verified.
    verified: Mutex<HashSet<[u8; 32]>>,
    checks: Arc<Checks>,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut users: Vec<&str> = self.users().collect();
        users.sort_unstable();
        f.debug_struct("BasicAuth").field("users", &users).finish()
    }
}

impl BasicAuth {
    /// Basic auth for `users` with [`CheckLimits::for_this_machine`]; `None` when there are
    /// none, as the toolkit then lets everyone in. Makes the dummy hash for unknown users,
    /// one bcrypt computation at the highest configured cost.
    pub fn new(users: BTreeMap<String, PasswordHash>) -> Option<Self> {
        Self::with_limits(users, CheckLimits::for_this_machine())
    }

    /// As [`BasicAuth::new`], with explicit limits.
    pub fn with_limits(users: BTreeMap<String, PasswordHash>, limits: CheckLimits) -> Option<Self> {
        let decoy = decoy(users.values().max_by_key(|hash| hash.cost)?);
        Some(Self(Arc::new(Inner {
            users: users.into_iter().collect(),
            decoy,
            verified: Mutex::new(HashSet::new()),
            checks: Arc::new(Checks::new(limits)),
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

    /// Lets in a request with `headers` from `client` (its address, if known; requests
    /// without one share one client), or says why not.
    pub async fn authorize(
        &self,
        headers: &HeaderMap,
        client: Option<IpAddr>,
    ) -> Result<(), Refusal> {
        match headers.get(header::AUTHORIZATION).and_then(credentials) {
            Some((user, password)) => self.verify(&user, password.expose_secret(), client).await,
            None => Err(Refusal::Credentials),
        }
    }

    /// Whether `password` is `user`'s. A cached pair is accepted at once; otherwise a bcrypt
    /// check is admitted under the limits (or refused at once) and runs on a worker.
    pub async fn verify(
        &self,
        user: &str,
        password: &[u8],
        client: Option<IpAddr>,
    ) -> Result<(), Refusal> {
        let known = self.0.users.get(user);
        let hash = known.unwrap_or(&self.0.decoy);
        let digest = digest(user, hash, password);
        if known.is_some() && self.is_cached(&digest) {
            return Ok(());
        }
        let ticket = self.0.checks.admit(client)?;
        let Ok(worker) = self.0.checks.workers.clone().acquire_owned().await else {
            return Err(Refusal::Credentials);
        };
        let password = SecretSlice::from(password.to_vec());
        let hash_text = hash.text.clone();
        // The ticket and the worker move into the blocking task, so both are held for as
        // long as bcrypt runs even if the client disconnects and this future is dropped: a
        // client cannot free its places by hanging up.
        let matched = tokio::task::spawn_blocking(move || {
            let _held = (ticket, worker);
            bcrypt::verify(password.expose_secret(), &hash_text).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        let passed = matched && known.is_some();
        self.0.checks.checked(client, passed);
        if passed {
            self.remember(digest);
            Ok(())
        } else {
            Err(Refusal::Credentials)
        }
    }

    /// The dummy hash's cost (the highest configured).
    pub fn decoy_cost(&self) -> u32 {
        self.0.decoy.cost
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

/// A fresh hash of a password no one is told, at the cost of `costliest`; a random salt
/// makes it unlike any configured hash, and an unknown user is refused whatever it says.
/// Should bcrypt fail (no randomness for the salt), `costliest` itself serves, as slow.
fn decoy(costliest: &PasswordHash) -> PasswordHash {
    match bcrypt::hash("no such user", costliest.cost) {
        Ok(text) => PasswordHash {
            text,
            cost: costliest.cost,
        },
        Err(error) => {
            tracing::warn!(%error, "could not make the dummy hash for unknown users; using the costliest configured hash");
            costliest.clone()
        }
    }
}

/// Admission to the bcrypt workers: how many checks are admitted, overall and by client.
struct Checks {
    limits: CheckLimits,
    workers: Arc<Semaphore>,
    admitted: Mutex<Admitted>,
}

#[derive(Default)]
struct Admitted {
    total: usize,
    /// Of `total`, those in the places kept for clean clients.
    reserved: usize,
    by_client: HashMap<Option<IpAddr>, usize>,
    /// Clients whose last check failed, with when.
    marked: HashMap<Option<IpAddr>, std::time::Instant>,
}

impl Checks {
    fn new(limits: CheckLimits) -> Self {
        Self {
            limits,
            workers: Arc::new(Semaphore::new(limits.workers.max(1))),
            admitted: Mutex::new(Admitted::default()),
        }
    }

    fn admit(self: &Arc<Self>, client: Option<IpAddr>) -> Result<Ticket, Refusal> {
        let client = client.map(client_key);
        let mut admitted = self.admitted.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = admitted.by_client.get(&client).copied().unwrap_or(0);
        if mine >= self.limits.per_client {
            return Err(Refusal::ClientBusy);
        }
        let shared = admitted.total - admitted.reserved;
        let reserved = if shared < self.limits.queue {
            false
        } else if admitted.reserved < self.limits.workers.max(1) && !admitted.is_marked(&client) {
            true
        } else {
            return Err(Refusal::Saturated);
        };
        admitted.total += 1;
        admitted.reserved += usize::from(reserved);
        *admitted.by_client.entry(client).or_default() += 1;
        Ok(Ticket {
            checks: self.clone(),
            client,
            reserved,
        })
    }

    /// Remembers how the check of `client` ended: a failure marks it, a success clears it.
    fn checked(&self, client: Option<IpAddr>, passed: bool) {
        let client = client.map(client_key);
        let mut admitted = self.admitted.lock().unwrap_or_else(PoisonError::into_inner);
        if passed {
            admitted.marked.remove(&client);
            return;
        }
        if admitted.marked.len() >= MARKED_CAPACITY && !admitted.marked.contains_key(&client) {
            let now = std::time::Instant::now();
            admitted
                .marked
                .retain(|_, at| now.duration_since(*at) < FAILURE_MEMORY);
            if admitted.marked.len() >= MARKED_CAPACITY {
                if let Some(oldest) = admitted
                    .marked
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(client, _)| *client)
                {
                    admitted.marked.remove(&oldest);
                }
            }
        }
        admitted.marked.insert(client, std::time::Instant::now());
    }
}

impl Admitted {
    fn is_marked(&self, client: &Option<IpAddr>) -> bool {
        self.marked
            .get(client)
            .is_some_and(|at| at.elapsed() < FAILURE_MEMORY)
    }
}

/// One admitted check's place; given back when dropped.
struct Ticket {
    checks: Arc<Checks>,
    client: Option<IpAddr>,
    /// Whether it holds one of the places kept for clean clients.
    reserved: bool,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut admitted = self
            .checks
            .admitted
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        admitted.total = admitted.total.saturating_sub(1);
        if self.reserved {
            admitted.reserved = admitted.reserved.saturating_sub(1);
        }
        if let Some(count) = admitted.by_client.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                admitted.by_client.remove(&self.client);
            }
        }
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

/// What the middleware needs from the web config, and the counter of refusals.
struct Guard {
    basic_auth: Option<BasicAuth>,
    headers: HeaderMap,
    refused: IntCounterVec,
}

/// Wraps every route of `router`, its fallback included, in the basic auth check and the
/// extra headers; returns `router` untouched when the web config asks for neither.
/// `refused` counts refused requests by `reason`.
pub(crate) fn layer(router: Router, web: &WebConfig, refused: IntCounterVec) -> Router {
    if web.basic_auth.is_none() && web.headers.is_empty() {
        return router;
    }
    let guard = Arc::new(Guard {
        basic_auth: web.basic_auth.clone(),
        headers: web.headers.clone(),
        refused,
    });
    router.layer(axum::middleware::from_fn_with_state(guard, guard_request))
}

async fn guard_request(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let verdict = match &guard.basic_auth {
        Some(auth) => {
            let client = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| peer.ip());
            auth.authorize(request.headers(), client).await
        }
        None => Ok(()),
    };
    let mut response = match verdict {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            guard.refused.with_label_values(&[refusal.label()]).inc();
            tracing::debug!(path = %request.uri().path(), ?refusal, "refused: missing or wrong basic auth credentials, or too many checks in flight");
            refused(refusal)
        }
    };
    // Set after the handler, so these win over anything a route set, as configured.
    for (name, value) in &guard.headers {
        response.headers_mut().insert(name, value.clone());
    }
    response
}

fn refused(refusal: Refusal) -> Response {
    match refusal {
        // A client over its share is told what a wrong password is told: it is the one
        // flooding, and nothing else it could learn helps it.
        Refusal::Credentials | Refusal::ClientBusy => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, CHALLENGE)],
            "Unauthorized\n",
        )
            .into_response(),
        Refusal::Saturated => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "Too many password checks in progress; try again\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Basic auth for `entries`, hashed at the lowest cost accepted.
    fn users(entries: &[(&str, &str)]) -> BasicAuth {
        let users = entries
            .iter()
            .map(|(user, password)| {
                let hash = bcrypt::hash(password, MIN_COST).expect("hash");
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

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("an IP address"))
    }

    #[tokio::test]
    async fn the_right_password_verifies_and_is_remembered_as_a_digest() {
        let auth = users(&[("alice", "s3cret"), ("bob", "hunter2")]);
        assert_eq!(auth.verify("alice", b"s3cret", None).await, Ok(()));
        assert_eq!(auth.verify("bob", b"hunter2", None).await, Ok(()));
        let cached = auth.0.verified.lock().expect("lock").clone();
        assert_eq!(cached.len(), 2);
        let hash = &auth.0.users["alice"];
        assert!(cached.contains(&digest("alice", hash, b"s3cret")));
        // Served from the cache now.
        assert_eq!(auth.verify("alice", b"s3cret", None).await, Ok(()));
    }

    #[tokio::test]
    async fn wrong_passwords_unknown_users_and_swapped_passwords_fail_and_are_not_cached() {
        let auth = users(&[("alice", "s3cret"), ("bob", "hunter2")]);
        for (user, password) in [
            ("alice", &b"wrong"[..]),
            ("alice", b""),
            ("alice", b"hunter2"),
            ("mallory", b"s3cret"),
            ("", b""),
        ] {
            assert_eq!(
                auth.verify(user, password, None).await,
                Err(Refusal::Credentials),
                "{user}"
            );
        }
        assert!(auth.0.verified.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn the_authorization_header_is_parsed_as_rfc_7617_says() {
        let auth = users(&[("alice", "pa:ss word")]);
        assert_eq!(
            auth.authorize(&basic("alice:pa:ss word"), None).await,
            Ok(())
        );
        let mut lower = basic("alice:pa:ss word");
        let value = lower[header::AUTHORIZATION]
            .to_str()
            .expect("ascii")
            .replace("Basic", "basic");
        lower.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&value).expect("header"),
        );
        assert_eq!(
            auth.authorize(&lower, None).await,
            Ok(()),
            "the scheme is case-insensitive"
        );

        let refused = Err(Refusal::Credentials);
        assert_eq!(auth.authorize(&HeaderMap::new(), None).await, refused);
        assert_eq!(
            auth.authorize(&basic("alice"), None).await,
            refused,
            "no colon"
        );
        let mut bearer = HeaderMap::new();
        bearer.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(auth.authorize(&bearer, None).await, refused);
        let mut garbage = HeaderMap::new();
        garbage.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic %%%"));
        assert_eq!(auth.authorize(&garbage, None).await, refused);
    }

    #[test]
    fn an_unknown_user_is_checked_against_a_dummy_hash_of_the_highest_configured_cost() {
        let low = PasswordHash::parse(&bcrypt::hash("a", MIN_COST).expect("hash")).expect("valid");
        let high =
            PasswordHash::parse(&bcrypt::hash("b", MIN_COST + 1).expect("hash")).expect("valid");
        let auth = BasicAuth::new(BTreeMap::from([
            ("alice".to_owned(), low.clone()),
            ("bob".to_owned(), high.clone()),
        ]))
        .expect("users configured");
        assert_eq!(auth.decoy_cost(), MIN_COST + 1);
        let decoy = &auth.0.decoy.text;
        assert_eq!(
            bcrypt::HashParts::from_str(decoy)
                .expect("a bcrypt hash")
                .get_cost(),
            MIN_COST + 1
        );
        assert_ne!(decoy, &high.text, "made for the purpose, not a user's hash");
        assert_ne!(decoy, &low.text);
    }

    #[test]
    fn a_client_with_its_share_in_flight_is_refused_at_once_and_others_are_still_admitted() {
        let checks = Arc::new(Checks::new(CheckLimits {
            workers: 2,
            queue: 8,
            per_client: 2,
        }));
        let flooding = ip("192.0.2.7");
        let held: Vec<Ticket> = (0..2)
            .map(|_| checks.admit(flooding).expect("within its share"))
            .collect();
        for _ in 0..100 {
            assert_eq!(checks.admit(flooding).err(), Some(Refusal::ClientBusy));
        }
        let other = checks
            .admit(ip("198.51.100.1"))
            .expect("another client is admitted");
        drop(other);
        drop(held);
        assert!(
            checks.admit(flooding).is_ok(),
            "finished checks give their places back"
        );
    }

    #[test]
    fn beyond_the_queue_bound_every_uncached_check_is_refused_at_once() {
        let checks = Arc::new(Checks::new(CheckLimits {
            workers: 1,
            queue: 4,
            per_client: 2,
        }));
        // Four shared places and the one reserved place (one worker) taken.
        let held: Vec<Ticket> = [
            "192.0.2.1",
            "192.0.2.2",
            "192.0.2.3",
            "192.0.2.4",
            "192.0.2.5",
        ]
        .into_iter()
        .map(|client| checks.admit(ip(client)).expect("room in the queue"))
        .collect();
        assert_eq!(
            checks.admit(ip("198.51.100.1")).err(),
            Some(Refusal::Saturated)
        );
        drop(held);
        assert!(checks.admit(ip("198.51.100.1")).is_ok());
    }

    #[test]
    fn with_the_shared_places_full_a_clean_client_takes_a_reserved_place_and_a_marked_one_cannot() {
        let checks = Arc::new(Checks::new(CheckLimits {
            workers: 1,
            queue: 2,
            per_client: 2,
        }));
        let flood: Vec<Ticket> = ["192.0.2.1", "192.0.2.2"]
            .into_iter()
            .map(|client| checks.admit(ip(client)).expect("a shared place"))
            .collect();
        // A flooding address, marked by its wrong password, is refused.
        checks.checked(ip("192.0.2.3"), false);
        assert_eq!(
            checks.admit(ip("192.0.2.3")).err(),
            Some(Refusal::Saturated)
        );
        // Prometheus' address has never failed: it takes the reserved place.
        let prometheus = checks.admit(ip("198.51.100.9")).expect("a reserved place");
        assert!(prometheus.reserved);
        // One reserved place per worker: the next clean client waits for a free one.
        assert_eq!(
            checks.admit(ip("198.51.100.10")).err(),
            Some(Refusal::Saturated)
        );
        drop(prometheus);
        assert!(checks.admit(ip("198.51.100.10")).is_ok());
        // A success clears a mark.
        checks.checked(ip("192.0.2.3"), true);
        drop(flood);
        let admitted = checks.admitted.lock().expect("lock");
        assert!(!admitted.is_marked(&ip("192.0.2.3").map(client_key)));
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_slash_64() {
        let checks = Arc::new(Checks::new(CheckLimits {
            workers: 1,
            queue: 8,
            per_client: 2,
        }));
        let _first = checks.admit(ip("2001:db8:1:2::1")).expect("admitted");
        let _second = checks.admit(ip("2001:db8:1:2:ffff::9")).expect("admitted");
        assert_eq!(
            checks.admit(ip("2001:db8:1:2:abcd::1")).err(),
            Some(Refusal::ClientBusy),
            "the same /64"
        );
        assert!(checks.admit(ip("2001:db8:1:3::1")).is_ok(), "another /64");
    }

    #[tokio::test]
    async fn a_cached_login_passes_while_the_pool_is_full() {
        let auth = BasicAuth::with_limits(
            BTreeMap::from([(
                "alice".to_owned(),
                PasswordHash::parse(&bcrypt::hash("s3cret", MIN_COST).expect("hash"))
                    .expect("valid"),
            )]),
            CheckLimits {
                workers: 1,
                queue: 1,
                per_client: 1,
            },
        )
        .expect("users configured");
        assert_eq!(auth.verify("alice", b"s3cret", None).await, Ok(()));
        let _full = auth.0.checks.admit(ip("192.0.2.1")).expect("the one place");
        let _reserved = auth
            .0
            .checks
            .admit(ip("192.0.2.2"))
            .expect("the one reserved place");
        assert_eq!(
            auth.verify("alice", b"wrong", ip("198.51.100.1")).await,
            Err(Refusal::Saturated)
        );
        assert_eq!(
            auth.verify("alice", b"s3cret", ip("198.51.100.1")).await,
            Ok(()),
            "cached: no bcrypt, no place needed"
        );
    }

    #[test]
    fn hashes_are_checked_and_never_printed() {
        let hash = bcrypt::hash("x", MIN_COST).expect("hash");
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
        for cost in ["04", "09", "15", "31", "99"] {
            let out_of_range = format!("$2y${cost}${}", &hash[7..]);
            let error = PasswordHash::parse(&out_of_range).expect_err(cost);
            assert!(
                error.contains(&format!("cost {}", cost.trim_start_matches('0'))),
                "{error}"
            );
            assert!(error.contains("10 to 14"), "{error}");
            assert!(!error.contains(&hash[7..]), "{error}");
        }
        for cost in ["10", "14"] {
            PasswordHash::parse(&format!("$2y${cost}${}", &hash[7..])).expect(cost);
        }
    }

    #[test]
    fn no_users_means_no_basic_auth() {
        assert!(BasicAuth::new(BTreeMap::new()).is_none());
    }
}

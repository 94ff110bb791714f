//! Connection accounting: the cap on open connections overall and per client, and each
//! connection's deadlines, the minimum write rate included.
//!
//! Every TCP connection the server accepts is admitted by a [`ConnectionLimit`] before anything
//! else happens to it (a TLS handshake included), and its socket is wrapped in a
//! [`TrackedStream`] that gives the slot back when the socket is dropped. So the cap counts
//! sockets, and a client that opens connections and never finishes a TLS handshake or a request
//! header uses slots like any other.
//!
//! **The cap.** At `max` open connections a newcomer is still let in if some connection is not
//! in the middle of a request, and that one is closed to make room:
//!
//! 1. the oldest connection that has not yet sent a whole request header. Slow-header and silent
//!    clients therefore cannot lock out a scrape: a fresh connection that sends its request at
//!    once outlives every attacker connection opened before it;
//! 2. failing that, the connection idle (between requests) for longest. Clients that send one
//!    request and then hold their keep-alive connections cannot lock out a scrape either, and a
//!    scraper's own idle connection is the most recently used, so the last to go; an HTTP client
//!    whose idle connection was closed opens a new one for its next request.
//!
//! A connection with a request in progress is never closed for a newcomer; when every slot is
//! such a connection the newcomer is closed at once instead. Either way the connection closed
//! costs no memory beyond its socket, briefly.
//!
//! **Per client.** One client holds at most `max_connections_per_client` sockets; a newer one
//! from it is closed at once (`closed="per_client"`), before the cap is looked at, so it
//! evicts no one. A client is an IPv4 address or an IPv6 /64 ([`client_key`]): one host is
//! commonly given a whole /64, and counting single IPv6 addresses would let it open as many
//! connections as it likes.
//!
//! **Deadlines.** A [`Connection`] tracks what it is waiting for, and [`super::serve`] closes
//! it when the wait is too long:
//!
//! - from accept to the first request header: the header read timeout (a TLS handshake and an
//!   HTTP/2 preface count towards it);
//! - after its last response, with no request in progress: the idle timeout;
//! - once the first byte of a next request arrives on an idle connection: the header read
//!   timeout again, from that byte. A client dripping a header slowly gains nothing: only the
//!   first byte after idle starts the clock.
//!
//! - while a request is in progress, from its header to the last byte of its response: the
//!   write timeout, after which the connection is dropped. A connection in that state is never
//!   evicted for a newcomer, so without it a client reading a large body very slowly would
//!   hold its slot for as long as it liked.
//!
//! **Minimum write rate.** The write timeout alone lets a slow reader hold its slot for the
//! whole timeout (2 minutes by default), and enough of them hold every slot. So while the
//! connection waits on its client, it must move at least `min_write_rate` bytes per second,
//! measured over each `write_rate_window`; a window that moved less closes the connection
//! (`closed="slow_reader"`). "Waits on its client" means a socket write returned
//! `WouldBlock` in the window (the client is not reading as fast as we write), or a response
//! has been ready for the whole window without finishing (an HTTP/2 client that withholds
//! flow-control credit never blocks the socket). Every response here is produced whole before
//! it is sent, so a slow handler is never mistaken for a slow client: the clock starts when a
//! response is ready. A connection that keeps up starts a fresh window with its next
//! response, so a client reading fast never sees the check; a slow one gets one window of
//! grace, two at most when the kernel's socket buffer took a first window's worth of bytes.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures::task::AtomicWaker;
use prometheus::{IntCounterVec, IntGauge};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::ServerSettings;

/// The two self-metrics the limit keeps up to date.
#[derive(Clone)]
pub struct ConnectionMetrics {
    /// Open connections (sockets), whatever state they are in.
    pub open: IntGauge,
    /// Connections closed by the limits, by `closed` (`oldest_unserved`, `longest_idle`,
    /// `newcomer`, `per_client` or `slow_reader`).
    pub rejected: IntCounterVec,
}

/// The key under which a client's connections and password checks are counted: an IPv4
/// address as it is, an IPv6 address cut to its /64 (one host commonly holds a whole /64).
/// IPv4 clients of a dual-stack listener arrive as IPv4-mapped IPv6 addresses and count as
/// their IPv4 address.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
    }
}

/// The cap on open connections, shared by the accept loop and every [`TrackedStream`].
pub struct ConnectionLimit {
    settings: ServerSettings,
    metrics: ConnectionMetrics,
    state: Mutex<LimitState>,
}

#[derive(Default)]
struct LimitState {
    /// Connections holding a slot (evicted ones give theirs up at once, before they close).
    admitted: usize,
    /// Open sockets by [`client_key`], evicted ones included until they close.
    by_client: HashMap<IpAddr, usize>,
    next_id: u64,
    /// Connections that have not sent a whole request header yet, oldest first (ids grow).
    unserved: BTreeMap<u64, Weak<Connection>>,
    /// Connections between requests, longest idle first (keyed by a sequence number that
    /// grows each time a connection becomes idle).
    idle: BTreeMap<u64, Weak<Connection>>,
    /// Each idle connection's key in `idle`, by connection id.
    idle_since: HashMap<u64, u64>,
    next_idle: u64,
}

impl LimitState {
    /// Takes the connection to close for a newcomer, if one may be closed, with the
    /// `closed` label to count it under.
    fn evictable(&mut self) -> Option<(Weak<Connection>, &'static str)> {
        if let Some((_, oldest)) = self.unserved.pop_first() {
            return Some((oldest, "oldest_unserved"));
        }
        let (_, longest) = self.idle.pop_first()?;
        if let Some(connection) = longest.upgrade() {
            self.idle_since.remove(&connection.id);
        }
        Some((longest, "longest_idle"))
    }

    fn not_idle(&mut self, id: u64) {
        if let Some(key) = self.idle_since.remove(&id) {
            self.idle.remove(&key);
        }
    }
}

impl ConnectionLimit {
    /// A limit with no connections yet.
    pub fn new(settings: ServerSettings, metrics: ConnectionMetrics) -> Arc<Self> {
        Arc::new(Self {
            settings,
            metrics,
            state: Mutex::new(LimitState::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, LimitState> {
        // The state is a counter and a map updated in single steps; a panic elsewhere cannot
        // leave it half-changed, so keep using it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits `stream` from `peer`, at the cap closing the oldest unserved or else the longest
    /// idle connection; `None` (the stream dropped, so closed) when its client already holds
    /// its share, or every slot holds a connection with a request in progress.
    pub fn admit<T>(self: &Arc<Self>, stream: T, peer: SocketAddr) -> Option<TrackedStream<T>> {
        let client = client_key(peer.ip());
        let mut state = self.lock();
        let held = state.by_client.get(&client).copied().unwrap_or(0);
        if held >= self.settings.max_connections_per_client {
            drop(state);
            self.metrics
                .rejected
                .with_label_values(&["per_client"])
                .inc();
            tracing::debug!(
                %client,
                max = self.settings.max_connections_per_client,
                "this client holds its share of connections; closing the new one"
            );
            return None;
        }
        if state.admitted >= self.settings.max_connections {
            let Some((victim, closed)) = state.evictable() else {
                drop(state);
                self.metrics.rejected.with_label_values(&["newcomer"]).inc();
                tracing::debug!(
                    max = self.settings.max_connections,
                    "connection cap reached and every connection has a request in progress; closing the new one"
                );
                return None;
            };
            state.admitted -= 1;
            if let Some(victim) = victim.upgrade() {
                victim.evict();
            }
            self.metrics.rejected.with_label_values(&[closed]).inc();
        }
        state.admitted += 1;
        *state.by_client.entry(client).or_default() += 1;
        let id = state.next_id;
        state.next_id += 1;
        let connection = Arc::new(Connection::new(id, peer, client, self.clone()));
        state.unserved.insert(id, Arc::downgrade(&connection));
        drop(state);
        self.metrics.open.inc();
        Some(TrackedStream {
            inner: stream,
            connection,
        })
    }

    /// Connections holding a slot now.
    pub fn admitted(&self) -> usize {
        self.lock().admitted
    }

    /// A request started on connection `id`: it is neither unserved nor idle now.
    fn busy(&self, id: u64) {
        let mut state = self.lock();
        state.unserved.remove(&id);
        state.not_idle(id);
    }

    /// The last request in progress on `connection` finished.
    fn became_idle(&self, connection: &Arc<Connection>) {
        let mut state = self.lock();
        if connection.is_evicted() {
            return;
        }
        state.not_idle(connection.id);
        let key = state.next_idle;
        state.next_idle += 1;
        state.idle.insert(key, Arc::downgrade(connection));
        state.idle_since.insert(connection.id, key);
    }

    fn release(&self, connection: &Connection) {
        let mut state = self.lock();
        state.unserved.remove(&connection.id);
        state.not_idle(connection.id);
        // An evicted connection gave its slot up when it was evicted.
        if !connection.evicted.load(Ordering::Acquire) {
            state.admitted -= 1;
        }
        if let Some(held) = state.by_client.get_mut(&connection.client) {
            *held -= 1;
            if *held == 0 {
                state.by_client.remove(&connection.client);
            }
        }
        drop(state);
        self.metrics.open.dec();
    }
}

/// What a connection's current deadline does when it passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Nothing was ever served, or a graceful close did not finish: drop the connection.
    Close,
    /// No request in progress: close it gracefully (an HTTP/1 connection closes at once, an
    /// HTTP/2 one is sent GOAWAY).
    Graceful,
    /// It moved fewer bytes than the minimum write rate asks over a window in which it waited
    /// on its client: drop the connection.
    TooSlow,
}

#[derive(Debug)]
struct Activity {
    served: bool,
    in_flight: usize,
    deadline: Option<(Instant, Expiry)>,
    /// Responses ready and not yet finished.
    sending: usize,
    /// Since when `sending` has been above zero.
    sending_since: Option<Instant>,
    /// The current minimum-write-rate window, while one runs.
    rate: Option<RateWindow>,
    /// Whether a socket write returned `WouldBlock` in the current window.
    stalled: bool,
}

/// One window of the minimum write rate: when it ends, and the bytes written when it began.
#[derive(Debug, Clone, Copy)]
struct RateWindow {
    began: Instant,
    ends: Instant,
    baseline: u64,
}

/// One admitted connection: its slot, its eviction flag and its deadline.
pub struct Connection {
    id: u64,
    /// The client's socket address.
    peer: SocketAddr,
    /// Its [`client_key`].
    client: IpAddr,
    limit: Arc<ConnectionLimit>,
    /// Bytes the socket has accepted from us.
    written: AtomicU64,
    evicted: AtomicBool,
    /// The task reading or writing the socket, woken to notice an eviction.
    io_waker: AtomicWaker,
    /// True while idle after a response, so the first byte read can start the header clock
    /// without taking the lock on every read.
    idle: AtomicBool,
    /// True from the end of the last request until the socket has taken every byte of its
    /// response (the next successful flush): only then may the cap close it as idle. hyper
    /// buffers a response of up to a few hundred KiB and finishes the body, which ends the
    /// request, before those bytes have left; closing it then would cut the response.
    draining: AtomicBool,
    activity: Mutex<Activity>,
    changed: Notify,
}

impl Connection {
    fn new(id: u64, peer: SocketAddr, client: IpAddr, limit: Arc<ConnectionLimit>) -> Self {
        let deadline = Instant::now() + limit.settings.read_header_timeout;
        Self {
            id,
            peer,
            client,
            limit,
            written: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            io_waker: AtomicWaker::new(),
            idle: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            activity: Mutex::new(Activity {
                served: false,
                in_flight: 0,
                deadline: Some((deadline, Expiry::Close)),
                sending: 0,
                sending_since: None,
                rate: None,
                stalled: false,
            }),
            changed: Notify::new(),
        }
    }

    fn activity(&self) -> MutexGuard<'_, Activity> {
        self.activity.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        self.io_waker.wake();
        self.changed.notify_one();
    }

    /// The client's socket address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the cap closed this connection to make room for a newer one.
    pub fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// Whether a whole request header has arrived on this connection.
    pub fn has_served(&self) -> bool {
        self.activity().served
    }

    /// When the connection should be closed, and how, if nothing happens before.
    pub fn deadline(&self) -> Option<(Instant, Expiry)> {
        self.activity().deadline
    }

    /// When [`Connection::expire`] should next be called: the deadline, or the end of the
    /// current write-rate window if that comes first.
    pub fn next_check(&self) -> Option<Instant> {
        let activity = self.activity();
        let deadline = activity.deadline.map(|(at, _)| at);
        let window = activity.rate.map(|window| window.ends);
        match (deadline, window) {
            (Some(deadline), Some(window)) => Some(deadline.min(window)),
            (deadline, window) => deadline.or(window),
        }
    }

    /// Resolves when the deadline or the eviction flag may have changed.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// A request header arrived: the connection is no longer evictable, and must finish the
    /// response within the write timeout. The guard marks the response done when dropped.
    pub fn request_started(self: &Arc<Self>) -> RequestGuard {
        {
            let mut activity = self.activity();
            activity.in_flight += 1;
            activity.deadline = Some((
                Instant::now() + self.limit.settings.write_timeout,
                Expiry::Close,
            ));
            activity.served = true;
        }
        self.idle.store(false, Ordering::Release);
        self.draining.store(false, Ordering::Release);
        self.limit.busy(self.id);
        self.changed.notify_one();
        RequestGuard {
            connection: self.clone(),
            responding: false,
        }
    }

    /// A response is ready to send. Starts a fresh write-rate window unless the client is
    /// already behind in the current one (a client keeping up gains nothing from the reset; a
    /// slow one cannot use new requests to postpone its check).
    fn response_ready(&self) {
        let mut activity = self.activity();
        let now = Instant::now();
        if activity.sending == 0 {
            activity.sending_since = Some(now);
        }
        activity.sending += 1;
        if activity.rate.is_none() || !activity.stalled {
            self.start_window(&mut activity, now);
        }
    }

    fn response_done(&self) {
        let mut activity = self.activity();
        activity.sending = activity.sending.saturating_sub(1);
        if activity.sending == 0 {
            activity.sending_since = None;
        }
    }

    /// A socket write would block: the client is not reading as fast as we write.
    fn write_blocked(&self) {
        let mut activity = self.activity();
        activity.stalled = true;
        if activity.rate.is_none() {
            self.start_window(&mut activity, Instant::now());
        }
    }

    fn start_window(&self, activity: &mut Activity, now: Instant) {
        if self.limit.settings.min_write_rate == 0 {
            return;
        }
        let had_window = activity.rate.is_some();
        activity.stalled = false;
        activity.rate = Some(RateWindow {
            began: now,
            ends: now + self.limit.settings.write_rate_window,
            baseline: self.written.load(Ordering::Relaxed),
        });
        if !had_window {
            // The connection's task sleeps until its next check; this one may be earlier.
            self.changed.notify_one();
        }
    }

    /// Ends a write-rate window that is due: `true` if the connection waited on its client in
    /// it and moved too few bytes. Otherwise the next window starts, or none while the
    /// connection has nothing to send.
    fn window_too_slow(&self, activity: &mut Activity, now: Instant) -> bool {
        let Some(window) = activity.rate.filter(|window| window.ends <= now) else {
            return false;
        };
        let waited = activity.stalled
            || activity
                .sending_since
                .is_some_and(|since| since <= window.began);
        if !waited {
            activity.rate = None;
            activity.stalled = false;
            return false;
        }
        let settings = &self.limit.settings;
        let written = self.written.load(Ordering::Relaxed);
        let required = settings.min_write_rate as f64 * settings.write_rate_window.as_secs_f64();
        if ((written - window.baseline) as f64) < required {
            activity.rate = None;
            return true;
        }
        self.start_window(activity, now);
        false
    }

    fn request_finished(self: &Arc<Self>) {
        let mut activity = self.activity();
        activity.in_flight = activity.in_flight.saturating_sub(1);
        let idle = activity.in_flight == 0;
        if idle {
            activity.deadline = Some((
                Instant::now() + self.limit.settings.idle_timeout,
                Expiry::Graceful,
            ));
            self.idle.store(true, Ordering::Release);
            // Evictable once the response has left: see `draining`.
            self.draining.store(true, Ordering::Release);
        }
        drop(activity);
        self.changed.notify_one();
    }

    /// The socket took every byte written so far (a flush returned): a connection whose last
    /// request has finished becomes idle, and so evictable, now.
    fn flushed(self: &Arc<Self>) {
        if !self.draining.swap(false, Ordering::AcqRel) {
            return;
        }
        if self.activity().in_flight == 0 {
            self.limit.became_idle(self);
        }
    }

    fn bytes_received(&self) {
        if !self.idle.swap(false, Ordering::AcqRel) {
            return;
        }
        let mut activity = self.activity();
        if activity.in_flight == 0 {
            activity.deadline = Some((
                Instant::now() + self.limit.settings.read_header_timeout,
                Expiry::Graceful,
            ));
        }
        drop(activity);
        self.changed.notify_one();
    }

    /// The deadline passed: returns what to do, and after a graceful close sets a last
    /// deadline (one header timeout) for a client that does not let go.
    pub fn expire(&self) -> Option<Expiry> {
        let mut activity = self.activity();
        if self.window_too_slow(&mut activity, Instant::now()) {
            drop(activity);
            self.limit
                .metrics
                .rejected
                .with_label_values(&["slow_reader"])
                .inc();
            tracing::debug!(
                peer = %self.peer,
                min_write_rate = self.limit.settings.min_write_rate,
                "the client reads its response slower than the minimum write rate; closing the connection"
            );
            return Some(Expiry::TooSlow);
        }
        let (at, expiry) = activity.deadline?;
        if at > Instant::now() {
            return None;
        }
        activity.deadline = match expiry {
            Expiry::Close | Expiry::TooSlow => None,
            Expiry::Graceful => Some((
                Instant::now() + self.limit.settings.read_header_timeout,
                Expiry::Close,
            )),
        };
        Some(expiry)
    }

    /// Counts what a socket write did for the minimum write rate.
    fn wrote(&self, result: &Poll<io::Result<usize>>) {
        match result {
            Poll::Ready(Ok(bytes)) => {
                self.written.fetch_add(*bytes as u64, Ordering::Relaxed);
            }
            Poll::Pending => self.write_blocked(),
            Poll::Ready(Err(_)) => {}
        }
    }

    /// True (and the caller should fail the I/O) once evicted; otherwise registers `cx` to be
    /// woken by an eviction.
    fn poll_evicted(&self, cx: &Context<'_>) -> bool {
        self.io_waker.register(cx.waker());
        self.is_evicted()
    }
}

/// Held while a request is in progress, from its header to the end of its response body.
pub struct RequestGuard {
    connection: Arc<Connection>,
    responding: bool,
}

impl RequestGuard {
    /// The response is ready: from now on the connection waits on its client, and the
    /// minimum write rate applies until the response has been sent.
    pub fn responding(&mut self) {
        if !self.responding {
            self.responding = true;
            self.connection.response_ready();
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if self.responding {
            self.connection.response_done();
        }
        self.connection.request_finished();
    }
}

/// A socket that holds a slot of the [`ConnectionLimit`] until it is dropped, fails its I/O
/// once evicted, and tells its [`Connection`] when bytes arrive.
pub struct TrackedStream<T> {
    inner: T,
    connection: Arc<Connection>,
}

/// A stream that carries its [`Connection`] (a tracked socket, or TLS over one).
pub trait Tracked {
    /// The connection's accounting.
    fn connection(&self) -> &Arc<Connection>;
}

impl<T> Tracked for TrackedStream<T> {
    fn connection(&self) -> &Arc<Connection> {
        &self.connection
    }
}

impl<T> Drop for TrackedStream<T> {
    fn drop(&mut self) {
        self.connection.limit.release(&self.connection);
    }
}

fn evicted_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "closed to make room under the connection cap",
    )
}

impl<T: AsyncRead + Unpin> AsyncRead for TrackedStream<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.connection.poll_evicted(cx) {
            return Poll::Ready(Err(evicted_error()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            self.connection.bytes_received();
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TrackedStream<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.connection.poll_evicted(cx) {
            return Poll::Ready(Err(evicted_error()));
        }
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.connection.wrote(&result);
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.connection.poll_evicted(cx) {
            return Poll::Ready(Err(evicted_error()));
        }
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.connection.wrote(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        if matches!(result, Poll::Ready(Ok(()))) {
            self.connection.flushed();
        }
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A TCP listener whose connections are admitted by a [`ConnectionLimit`].
pub struct LimitedListener {
    tcp: TcpListener,
    limit: Arc<ConnectionLimit>,
}

impl LimitedListener {
    /// Admits connections from `tcp` under `limit`.
    pub fn new(tcp: TcpListener, limit: Arc<ConnectionLimit>) -> Self {
        Self { tcp, limit }
    }
}

impl axum::serve::Listener for LimitedListener {
    type Io = TrackedStream<TcpStream>;
    type Addr = SocketAddr;

    // Cancel-safe, as the accept loop's `select!` requires: `accept` is, and admitting is
    // synchronous.
    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.tcp.accept().await {
                Ok((stream, peer)) => {
                    if let Some(tracked) = self.limit.admit(stream, peer) {
                        return (tracked, peer);
                    }
                }
                Err(error) => accept_error(error).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// What axum does for its own TCP listener: errors that concern one connection are ignored;
/// others (out of file descriptors, typically) are logged and retried after a pause, since
/// closing connections may free what accept needs.
async fn accept_error(error: io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed; retrying in 1s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use prometheus::Opts;
    use tokio::io::AsyncWriteExt;

    use super::*;

    const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 40000);

    fn limit(max: usize) -> Arc<ConnectionLimit> {
        let metrics = ConnectionMetrics {
            open: IntGauge::new("open", "h").expect("gauge"),
            rejected: IntCounterVec::new(Opts::new("rejected", "h"), &["closed"]).expect("counter"),
        };
        ConnectionLimit::new(
            ServerSettings {
                max_connections: max,
                ..ServerSettings::default()
            },
            metrics,
        )
    }

    fn rejected(limit: &ConnectionLimit, closed: &str) -> u64 {
        limit.metrics.rejected.with_label_values(&[closed]).get()
    }

    #[tokio::test]
    async fn at_the_cap_the_oldest_connection_without_a_request_makes_room() {
        let limit = limit(3);
        let first = limit.admit((), PEER).expect("admitted");
        let second = limit.admit((), PEER).expect("admitted");
        let third = limit.admit((), PEER).expect("admitted");
        let _request = first.connection().request_started();

        let fourth = limit.admit((), PEER).expect("admitted by evicting one");
        assert!(!first.connection().is_evicted(), "it has sent a request");
        assert!(second.connection().is_evicted(), "the oldest unserved goes");
        assert!(!third.connection().is_evicted());
        assert_eq!(limit.admitted(), 3);
        assert_eq!(
            limit.metrics.open.get(),
            4,
            "the evicted socket is still open"
        );
        drop(second);
        assert_eq!(limit.metrics.open.get(), 3);
        assert_eq!(limit.admitted(), 3);

        let _fifth = limit
            .admit((), PEER)
            .expect("admitted by evicting the third");
        assert!(third.connection().is_evicted());
        assert!(!fourth.connection().is_evicted());
        assert_eq!(rejected(&limit, "oldest_unserved"), 2);
    }

    #[tokio::test]
    async fn without_an_unserved_connection_the_longest_idle_one_makes_room() {
        let limit = limit(3);
        let mut streams: Vec<_> = (0..3)
            .map(|_| limit.admit(tokio::io::sink(), PEER).expect("admitted"))
            .collect();
        // All three have served a request; the second finished first, then the third, each
        // response flushed to its socket; the first is still busy.
        let busy = streams[0].connection().request_started();
        let second = streams[1].connection().request_started();
        let third = streams[2].connection().request_started();
        drop(second);
        streams[1].flush().await.expect("flush");
        drop(third);
        streams[2].flush().await.expect("flush");

        let fourth = limit
            .admit((), PEER)
            .expect("admitted by evicting the longest idle");
        assert!(
            !streams[0].connection().is_evicted(),
            "a request is in progress"
        );
        assert!(streams[1].connection().is_evicted(), "idle for longest");
        assert!(!streams[2].connection().is_evicted());
        assert_eq!(rejected(&limit, "longest_idle"), 1);

        // The third is used again, so the newcomer (unserved) is the one to go next, then
        // the third once it is idle again.
        let again = streams[2].connection().request_started();
        let _fifth = limit
            .admit((), PEER)
            .expect("admitted by evicting the unserved fourth");
        assert!(fourth.connection().is_evicted());
        assert_eq!(rejected(&limit, "oldest_unserved"), 1);
        drop(again);
        drop(busy);
        assert!(!streams[2].connection().is_evicted());
    }

    #[tokio::test]
    async fn a_finished_request_whose_response_has_not_left_is_not_evicted_as_idle() {
        // The regression: hyper finishes a response body (ending the request) while up to a
        // few hundred KiB of it still wait in its buffer; the cap closed such a connection as
        // idle and cut the response.
        let limit = limit(1);
        let mut stream = limit.admit(tokio::io::sink(), PEER).expect("admitted");
        drop(stream.connection().request_started());
        assert!(
            limit.admit(tokio::io::sink(), PEER).is_none(),
            "the newcomer is refused while the response drains"
        );
        assert!(!stream.connection().is_evicted());

        stream
            .write_all(b"the rest of the response")
            .await
            .expect("write");
        stream.flush().await.expect("flush");
        let _newcomer = limit
            .admit(tokio::io::sink(), PEER)
            .expect("admitted once the response has left");
        assert!(
            stream.connection().is_evicted(),
            "idle now, so it makes room"
        );
    }

    #[tokio::test]
    async fn when_every_slot_has_a_request_in_progress_the_newcomer_is_refused() {
        let limit = limit(2);
        let held: Vec<_> = (0..2)
            .map(|_| limit.admit((), PEER).expect("admitted"))
            .collect();
        let _guards: Vec<_> = held
            .iter()
            .map(|stream| stream.connection().request_started())
            .collect();
        assert!(limit.admit((), PEER).is_none());
        assert_eq!(rejected(&limit, "newcomer"), 1);
        assert_eq!(limit.metrics.open.get(), 2);
        drop(held);
        assert_eq!(limit.admitted(), 0);
        assert_eq!(limit.metrics.open.get(), 0);
        assert!(limit.admit((), PEER).is_some(), "a freed slot is reused");
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_follow_the_header_then_idle_then_header_again() {
        let settings = ServerSettings::default();
        let limit = limit(8);
        let stream = limit.admit((), PEER).expect("admitted");
        let connection = stream.connection().clone();
        let start = Instant::now();
        assert_eq!(
            connection.deadline(),
            Some((start + settings.read_header_timeout, Expiry::Close))
        );

        let guard = connection.request_started();
        assert_eq!(
            connection.deadline(),
            Some((start + settings.write_timeout, Expiry::Close)),
            "a response must be written within the write timeout"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(guard);
        let idle_from = Instant::now();
        assert_eq!(
            connection.deadline(),
            Some((idle_from + settings.idle_timeout, Expiry::Graceful))
        );

        // The first byte of the next request starts the header clock; later bytes do not
        // push it back.
        tokio::time::advance(Duration::from_secs(30)).await;
        connection.bytes_received();
        let byte_at = Instant::now();
        tokio::time::advance(Duration::from_secs(5)).await;
        connection.bytes_received();
        assert_eq!(
            connection.deadline(),
            Some((byte_at + settings.read_header_timeout, Expiry::Graceful))
        );
        assert_eq!(connection.expire(), None, "not yet due");
        tokio::time::advance(settings.read_header_timeout).await;
        assert_eq!(connection.expire(), Some(Expiry::Graceful));
        // A client that ignores the graceful close is dropped one header timeout later.
        tokio::time::advance(settings.read_header_timeout).await;
        assert_eq!(connection.expire(), Some(Expiry::Close));
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_that_waits_on_its_client_must_move_the_minimum_rate_each_window() {
        let settings = ServerSettings::default();
        let window = settings.write_rate_window;
        let per_window = settings.min_write_rate * window.as_secs();
        let limit = limit(8);
        let stream = limit.admit((), PEER).expect("admitted");
        let connection = stream.connection().clone();

        // A fast client: the response is written whole, no write blocks; nothing to check.
        let mut guard = connection.request_started();
        guard.responding();
        connection.wrote(&Poll::Ready(Ok(1000)));
        drop(guard);
        tokio::time::advance(window).await;
        assert_eq!(connection.expire(), None);
        assert_eq!(
            connection.next_check(),
            connection.deadline().map(|(at, _)| at)
        );

        // A client that keeps up while writes block now and then passes each window.
        let mut guard = connection.request_started();
        guard.responding();
        connection.wrote(&Poll::Pending);
        connection.wrote(&Poll::Ready(Ok(per_window as usize)));
        tokio::time::advance(window).await;
        assert_eq!(connection.expire(), None);

        // Then it stops reading: the next window moves too little and ends the connection.
        connection.wrote(&Poll::Pending);
        connection.wrote(&Poll::Ready(Ok(10)));
        tokio::time::advance(window).await;
        assert_eq!(connection.expire(), Some(Expiry::TooSlow));
        assert_eq!(rejected(&limit, "slow_reader"), 1);
        drop(guard);
    }

    #[tokio::test]
    async fn one_client_holds_at_most_its_share_and_others_are_still_admitted() {
        let limit = limit(200);
        let share = ServerSettings::default().max_connections_per_client;
        let held: Vec<_> = (0..share)
            .map(|_| limit.admit((), PEER).expect("within its share"))
            .collect();
        assert!(limit.admit((), PEER).is_none());
        assert_eq!(rejected(&limit, "per_client"), 1);
        let other = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2)), 40000);
        assert!(limit.admit((), other).is_some());
        drop(held);
        assert!(
            limit.admit((), PEER).is_some(),
            "closed sockets give their share back"
        );
    }
}

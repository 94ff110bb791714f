//! Connection accounting: the cap on open connections, and each connection's deadline.
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

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Connections closed because of the cap, by `closed` (`oldest_unserved`, `longest_idle`
    /// or `newcomer`).
    pub rejected: IntCounterVec,
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

    /// Admits `stream`, at the cap closing the oldest unserved or else the longest idle
    /// connection; `None` (the stream dropped, so closed) when every slot holds a connection
    /// with a request in progress.
    pub fn admit<T>(self: &Arc<Self>, stream: T) -> Option<TrackedStream<T>> {
        let mut state = self.lock();
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
        let id = state.next_id;
        state.next_id += 1;
        let connection = Arc::new(Connection::new(id, self.clone()));
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
}

#[derive(Debug)]
struct Activity {
    served: bool,
    in_flight: usize,
    deadline: Option<(Instant, Expiry)>,
}

/// One admitted connection: its slot, its eviction flag and its deadline.
pub struct Connection {
    id: u64,
    limit: Arc<ConnectionLimit>,
    evicted: AtomicBool,
    /// The task reading or writing the socket, woken to notice an eviction.
    io_waker: AtomicWaker,
    /// True while idle after a response, so the first byte read can start the header clock
    /// without taking the lock on every read.
    idle: AtomicBool,
    activity: Mutex<Activity>,
    changed: Notify,
}

impl Connection {
    fn new(id: u64, limit: Arc<ConnectionLimit>) -> Self {
        let deadline = Instant::now() + limit.settings.read_header_timeout;
        Self {
            id,
            limit,
            evicted: AtomicBool::new(false),
            io_waker: AtomicWaker::new(),
            idle: AtomicBool::new(false),
            activity: Mutex::new(Activity {
                served: false,
                in_flight: 0,
                deadline: Some((deadline, Expiry::Close)),
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
        self.limit.busy(self.id);
        self.changed.notify_one();
        RequestGuard(self.clone())
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
        }
        drop(activity);
        if idle {
            self.limit.became_idle(self);
        }
        self.changed.notify_one();
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
        let (at, expiry) = activity.deadline?;
        if at > Instant::now() {
            return None;
        }
        activity.deadline = match expiry {
            Expiry::Close => None,
            Expiry::Graceful => Some((
                Instant::now() + self.limit.settings.read_header_timeout,
                Expiry::Close,
            )),
        };
        Some(expiry)
    }

    /// True (and the caller should fail the I/O) once evicted; otherwise registers `cx` to be
    /// woken by an eviction.
    fn poll_evicted(&self, cx: &Context<'_>) -> bool {
        self.io_waker.register(cx.waker());
        self.is_evicted()
    }
}

/// Held while a request is in progress, from its header to the end of its response body.
pub struct RequestGuard(Arc<Connection>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.request_finished();
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
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.connection.poll_evicted(cx) {
            return Poll::Ready(Err(evicted_error()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
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
                    if let Some(tracked) = self.limit.admit(stream) {
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

    use super::*;

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
        let first = limit.admit(()).expect("admitted");
        let second = limit.admit(()).expect("admitted");
        let third = limit.admit(()).expect("admitted");
        let _request = first.connection().request_started();

        let fourth = limit.admit(()).expect("admitted by evicting one");
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

        let _fifth = limit.admit(()).expect("admitted by evicting the third");
        assert!(third.connection().is_evicted());
        assert!(!fourth.connection().is_evicted());
        assert_eq!(rejected(&limit, "oldest_unserved"), 2);
    }

    #[tokio::test]
    async fn without_an_unserved_connection_the_longest_idle_one_makes_room() {
        let limit = limit(3);
        let streams: Vec<_> = (0..3).map(|_| limit.admit(()).expect("admitted")).collect();
        // All three have served a request; the second finished first, then the third; the
        // first is still busy.
        let busy = streams[0].connection().request_started();
        let second = streams[1].connection().request_started();
        let third = streams[2].connection().request_started();
        drop(second);
        drop(third);

        let fourth = limit
            .admit(())
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
            .admit(())
            .expect("admitted by evicting the unserved fourth");
        assert!(fourth.connection().is_evicted());
        assert_eq!(rejected(&limit, "oldest_unserved"), 1);
        drop(again);
        drop(busy);
        assert!(!streams[2].connection().is_evicted());
    }

    #[tokio::test]
    async fn when_every_slot_has_a_request_in_progress_the_newcomer_is_refused() {
        let limit = limit(2);
        let held: Vec<_> = (0..2).map(|_| limit.admit(()).expect("admitted")).collect();
        let _guards: Vec<_> = held
            .iter()
            .map(|stream| stream.connection().request_started())
            .collect();
        assert!(limit.admit(()).is_none());
        assert_eq!(rejected(&limit, "newcomer"), 1);
        assert_eq!(limit.metrics.open.get(), 2);
        drop(held);
        assert_eq!(limit.admitted(), 0);
        assert_eq!(limit.metrics.open.get(), 0);
        assert!(limit.admit(()).is_some(), "a freed slot is reused");
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_follow_the_header_then_idle_then_header_again() {
        let settings = ServerSettings::default();
        let limit = limit(8);
        let stream = limit.admit(()).expect("admitted");
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
}

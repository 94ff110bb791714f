//! Wall-clock time, injectable.
//!
//! Which WhatsApp bucket is complete and which window a Page request covers depend on the
//! calendar date, so tests must be able to fix "now" (for example to replay a documented
//! response). Scheduling itself uses tokio's monotonic clock, which tests pause instead.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of wall-clock time in unix seconds.
pub trait Clock: Send + Sync + 'static {
    /// Seconds since the unix epoch.
    fn now_unix(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs() as i64)
    }
}

/// A clock that stays where it is set, for tests.
#[derive(Debug, Default)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    /// A clock showing `unix_seconds`.
    pub fn new(unix_seconds: i64) -> Self {
        Self(AtomicI64::new(unix_seconds))
    }

    /// Moves the clock.
    pub fn set(&self, unix_seconds: i64) {
        self.0.store(unix_seconds, Ordering::Relaxed);
    }
}

impl Clock for FixedClock {
    fn now_unix(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

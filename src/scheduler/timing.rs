//! When a target polls: its first poll inside the start-up spread, and each later one an
//! interval after the last start, pushed out by the rate limiter.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use tokio::time::Instant;

use crate::graph::ratelimit::RateLimiter;
use crate::outcome::NextPoll;
use crate::secret::TokenId;
use crate::target::{TargetKey, TargetKind};

/// How long after it starts (or after a reload adds or changes it) a target first polls.
///
/// A stable hash of the target spreads first polls over `spread`, so a restart does not send
/// every request at once and each target keeps the same phase on every start; the spread is
/// never longer than the target's interval, so a target with a short interval is not late.
/// Later polls follow at whole intervals from the first, so they keep this phase.
pub fn first_poll_delay(key: &TargetKey, interval: Duration, spread: Duration) -> Duration {
    let window = spread.min(interval).as_millis() as u64;
    if window == 0 {
        return Duration::ZERO;
    }
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    Duration::from_millis(hasher.finish() % window)
}

/// How soon a disabled target polls again after its credentials change: within seconds, but
/// spread, since one rotated token file often serves many targets.
pub const RESUME_SPREAD: Duration = Duration::from_secs(2);

/// The next poll after one that started at `started`: one interval later, plus what the
/// rate limiter adds for `token_id` and `object` (a pause over any of the target's scopes, or
/// a stretch for high usage). A poll that overran its interval starts the next one at once,
/// not a burst.
///
/// A WhatsApp Business Account also starts its polls far enough apart that its calls stay
/// under `rate_limits.whatsapp_calls_per_hour`: at least as long after the last start as that
/// poll's calls take at the budget's pace, and not before the last hour's calls leave room
/// for as many again. A poll that needs more calls than the last (its hourly lists are due)
/// can still meet a spent budget; the limiter then refuses the call and the poll fails
/// as paused, so the budget holds either way.
pub fn next_poll(
    limiter: &RateLimiter,
    token_id: &TokenId,
    target: &TargetKey,
    started: Instant,
    interval: Duration,
    stale_after: Duration,
) -> NextPoll {
    let object = target.id.as_str();
    let now = Instant::now();
    let regular = started + interval;
    let stretch = limiter.stretch(token_id, object, interval);
    let mut due = regular + stretch;
    let mut reason = (!stretch.is_zero()).then_some("usage");
    if target.kind == TargetKind::WhatsappBusinessAccount {
        let spaced = limiter.whatsapp_next_start(object, started);
        if spaced > due {
            due = spaced;
            reason = Some("whatsapp_budget");
        }
    }
    if let Some(pause) = limiter.pause_remaining(token_id, object) {
        if now + pause > due {
            due = now + pause;
            reason = Some("paused");
        }
    }
    let due = due.max(now);
    let backoff = due.saturating_duration_since(regular.max(now));
    // Whatever pushes the poll out (a throttle, high usage, the WhatsApp budget), the last
    // values stay served until it comes: Meta asks callers to keep serving while they wait,
    // and staleness counts from when polling resumes, not from now.
    let hold_data_until = (!backoff.is_zero()).then_some(due + stale_after);
    NextPoll::At {
        due,
        backoff,
        backoff_reason: reason.filter(|_| !backoff.is_zero()),
        hold_data_until,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::AccessToken;
    use crate::target::TargetKind;

    fn t() -> TokenId {
        *AccessToken::new("t").id()
    }

    fn page(id: &str) -> TargetKey {
        TargetKey::page(id)
    }

    #[test]
    fn first_polls_are_stable_inside_the_spread_and_never_later_than_one_interval() {
        let spread = Duration::from_secs(30);
        let interval = Duration::from_secs(900);
        let delays: Vec<Duration> = (0..200)
            .map(|n| first_poll_delay(&page(&n.to_string()), interval, spread))
            .collect();
        assert!(delays.iter().all(|delay| *delay < spread), "{delays:?}");
        assert_eq!(delays[7], first_poll_delay(&page("7"), interval, spread));
        // Spread, not bunched: 200 targets land in more than half of the 30 one-second slots.
        let mut seconds: Vec<u64> = delays.iter().map(Duration::as_secs).collect();
        seconds.dedup();
        seconds.sort_unstable();
        seconds.dedup();
        assert!(seconds.len() > 15, "{seconds:?}");

        let short = Duration::from_secs(5);
        assert!(first_poll_delay(&page("1"), short, spread) < short);
        assert_eq!(
            first_poll_delay(&page("1"), interval, Duration::ZERO),
            Duration::ZERO
        );
    }

    fn limiter() -> RateLimiter {
        RateLimiter::for_tests(Some(1))
    }

    #[tokio::test(start_paused = true)]
    async fn the_next_poll_is_one_interval_after_the_last_start_unless_the_limiter_pauses_it() {
        let limiter = limiter();
        let started = Instant::now();
        let interval = Duration::from_secs(60);
        let stale = Duration::from_secs(180);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(
            next_poll(&limiter, &t(), &page("o"), started, interval, stale),
            NextPoll::At {
                due: started + interval,
                backoff: Duration::ZERO,
                backoff_reason: None,
                hold_data_until: None
            }
        );

        // One call spends the budget of one call an hour: the next poll waits for the window.
        assert!(limiter.admit(&t(), "o").is_ok());
        let NextPoll::At {
            due,
            backoff,
            backoff_reason,
            hold_data_until,
        } = next_poll(&limiter, &t(), &page("o"), started, interval, stale)
        else {
            panic!("a paused target is not disabled");
        };
        assert_eq!(due, Instant::now() + Duration::from_secs(3600));
        assert_eq!(backoff, due - (started + interval));
        assert_eq!(backoff_reason, Some("paused"));
        assert_eq!(hold_data_until, Some(due + stale));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wabas_polls_are_spaced_so_its_calls_stay_under_the_whatsapp_budget() {
        // The default budget is 150 calls an hour: 5 calls take 2 minutes of it.
        let limiter = limiter_without_token_budget();
        let waba = TargetKey {
            kind: TargetKind::WhatsappBusinessAccount,
            id: "w".into(),
        };
        let started = Instant::now();
        for _ in 0..5 {
            assert!(limiter.admit_whatsapp(&t(), "w").is_ok());
        }
        let stale = Duration::from_secs(600);
        let NextPoll::At {
            due,
            backoff,
            backoff_reason,
            hold_data_until,
        } = next_poll(
            &limiter,
            &t(),
            &waba,
            started,
            Duration::from_secs(60),
            stale,
        )
        else {
            panic!("not disabled");
        };
        assert_eq!(due, started + Duration::from_secs(120));
        assert_eq!(backoff, Duration::from_secs(60));
        assert_eq!(backoff_reason, Some("whatsapp_budget"));
        // Found by the real-Prometheus test: spaced past its staleness, the account's data
        // vanished between polls. It is held until the spaced poll plus the staleness limit.
        assert_eq!(hold_data_until, Some(due + stale));
        // At a 15-minute interval the same poll is far inside the budget.
        let NextPoll::At {
            due,
            backoff_reason,
            ..
        } = next_poll(
            &limiter,
            &t(),
            &waba,
            started,
            Duration::from_secs(900),
            stale,
        )
        else {
            panic!("not disabled");
        };
        assert_eq!(due, started + Duration::from_secs(900));
        assert_eq!(backoff_reason, None);
        // A Page with the same id is not a WABA: no spacing.
        let NextPoll::At { due, .. } = next_poll(
            &limiter,
            &t(),
            &page("w"),
            started,
            Duration::from_secs(60),
            stale,
        ) else {
            panic!("not disabled");
        };
        assert_eq!(due, started + Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_whatsapp_window_refuses_calls_and_pauses_until_the_oldest_leaves_it() {
        let limiter = limiter_without_token_budget();
        for _ in 0..150 {
            assert!(limiter.admit_whatsapp(&t(), "w").is_ok());
        }
        tokio::time::advance(Duration::from_secs(600)).await;
        let refused = limiter.admit_whatsapp(&t(), "w").expect_err("budget spent");
        assert_eq!(refused.scope, "whatsapp_budget");
        assert_eq!(refused.remaining, Duration::from_secs(3000));
        assert_eq!(
            limiter.pause_remaining(&t(), "w"),
            Some(Duration::from_secs(3000))
        );
        // Other accounts and non-WhatsApp calls are not held back.
        assert!(limiter.admit_whatsapp(&t(), "other").is_ok());
        assert!(limiter.admit(&t(), "w").is_ok());
        tokio::time::advance(Duration::from_secs(3000)).await;
        assert!(limiter.admit_whatsapp(&t(), "w").is_ok());
    }

    fn limiter_without_token_budget() -> RateLimiter {
        RateLimiter::for_tests(None)
    }

    #[tokio::test(start_paused = true)]
    async fn a_poll_that_overran_its_interval_is_followed_at_once() {
        let started = Instant::now();
        tokio::time::advance(Duration::from_secs(90)).await;
        let NextPoll::At { due, backoff, .. } = next_poll(
            &limiter(),
            &t(),
            &page("o"),
            started,
            Duration::from_secs(60),
            Duration::from_secs(180),
        ) else {
            panic!("not disabled");
        };
        assert_eq!(due, Instant::now());
        assert_eq!(backoff, Duration::ZERO);
    }
}

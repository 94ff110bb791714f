//! Deterministic, realistic numbers for the simulated objects.
//!
//! Every number the simulator serves is a pure function of stable inputs (object id, metric or
//! field name, breakdown values, filters) and of time. The inputs pick a series' constants
//! through a stable hash (its size, its daily and weekly rhythm, its growth); time enters only
//! through smooth functions. So the same request at the same simulated instant always gets the
//! same answer, and the same request a few minutes later gets a slightly different one, which is
//! what the tests need (exact reproducibility) and what the demo needs (visibly live series).
//!
//! The hash is written out here rather than taken from `std` because `std`'s hashers are keyed
//! randomly per process and are not promised to stay the same across Rust releases.

use std::f64::consts::TAU;

/// Seconds in a (UTC) day: the chunk size of [`Activity::expected`].
pub(crate) const DAY: i64 = 86_400;
const HOUR: f64 = 3_600.0;
const WEEK: f64 = 7.0 * 86_400.0;
const YEAR: f64 = 365.25 * 86_400.0;
/// Growth is measured from this instant (2023-11-14 22:13 UTC), so series sizes stay inside
/// their realistic ranges for years on either side of it.
const GROWTH_EPOCH: i64 = 1_700_000_000;
/// How much a day's activity may stray from the smooth rhythm, either way: real days are
/// noisy, and the noise must be per day (not per request) to keep counts additive.
const DAY_NOISE: f64 = 0.2;
/// Longest interval [`Activity::expected`] integrates; the read paths reject far larger
/// windows, and this keeps the loop bounded even if one of them forgets.
const MAX_INTEGRATED: i64 = 10 * 366 * DAY;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// A stable 64-bit seed derived from names; the identity of one generated series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seed(u64);

impl Seed {
    /// The seed of a sequence of names, e.g. `["1234", "page_messages_sent"]`.
    pub(crate) fn of(parts: &[&str]) -> Seed {
        parts
            .iter()
            .fold(Seed(FNV_OFFSET), |seed, part| seed.with(part))
    }

    /// A seed derived from this one and one more name.
    pub(crate) fn with(self, part: &str) -> Seed {
        // FNV-1a over the bytes plus a separator (so ("ab", "c") and ("a", "bc") differ), then
        // a splitmix64 finaliser so that similar inputs give unrelated outputs.
        let mut hash = self.0;
        for byte in part.bytes().chain(std::iter::once(0xff)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(FNV_PRIME);
        }
        Seed(splitmix(hash))
    }

    /// A seed derived from this one and an instant, e.g. the start of a time bucket.
    pub(crate) fn with_time(self, unix_seconds: i64) -> Seed {
        self.with(&unix_seconds.to_string())
    }

    /// A number in [0, 1), uniformly spread over seeds.
    pub(crate) fn unit(self) -> f64 {
        // The top 53 bits fill an f64 mantissa exactly.
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A number in [low, high).
    pub(crate) fn between(self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// A Graph-style numeric object id of `digits` digits (at most 18, no leading zero), e.g.
    /// for the templates and phone numbers of an account.
    pub(crate) fn object_id(self, digits: u32) -> String {
        let digits = digits.clamp(1, 18);
        let low = 10u64.pow(digits - 1);
        (low + self.0 % (9 * low)).to_string()
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A smoothly varying rate of events (messages sent, conversations started, ...): an average
/// size, a daily and a weekly rhythm, slow exponential growth or decline, and some
/// day-to-day noise.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Activity {
    seed: Seed,
    per_day: f64,
    daily_amplitude: f64,
    daily_phase: f64,
    weekly_amplitude: f64,
    weekly_phase: f64,
    growth_per_year: f64,
}

impl Activity {
    /// The activity of the series `seed`, averaging between `per_day.0` and `per_day.1`
    /// events a day at the growth epoch.
    pub(crate) fn new(seed: Seed, per_day: (f64, f64)) -> Activity {
        Activity {
            seed,
            per_day: seed.with("per_day").between(per_day.0, per_day.1),
            // The two amplitudes stay below 1 together, so the rate is never negative.
            daily_amplitude: seed.with("daily_amplitude").between(0.3, 0.6),
            daily_phase: seed.with("daily_phase").between(0.0, TAU),
            weekly_amplitude: seed.with("weekly_amplitude").between(0.05, 0.25),
            weekly_phase: seed.with("weekly_phase").between(0.0, TAU),
            growth_per_year: seed.with("growth").between(-0.05, 0.3),
        }
    }

    /// The expected number of events in `[from, to)` (unix seconds); 0 if the interval is empty.
    ///
    /// The rhythm is integrated exactly; growth and noise are applied once per UTC day, on
    /// chunks aligned to UTC midnight, so that counts over adjacent windows add up exactly to
    /// the count over their union (a week is the sum of its days, a partial bucket grows into
    /// the full one).
    pub(crate) fn expected(&self, from: i64, to: i64) -> f64 {
        let from = from.max(to.saturating_sub(MAX_INTEGRATED));
        let mut total = 0.0;
        let mut chunk_start = from;
        while chunk_start < to {
            let day = chunk_start.div_euclid(DAY);
            let chunk_end = ((day + 1) * DAY).min(to);
            let midday = day * DAY + DAY / 2;
            let noise =
                1.0 + DAY_NOISE * (2.0 * self.seed.with("noise").with_time(day).unit() - 1.0);
            total += growth(self.growth_per_year, midday)
                * noise
                * self.rhythm_integral(chunk_start, chunk_end);
            chunk_start = chunk_end;
        }
        total * self.per_day / DAY as f64
    }

    /// The integral over `[from, to)` of `1 + a·sin(ω_day·t + φ) + b·sin(ω_week·t + ψ)`.
    fn rhythm_integral(&self, from: i64, to: i64) -> f64 {
        let daily = TAU / DAY as f64;
        let weekly = TAU / WEEK;
        let wave = |t: i64| {
            let t = t as f64;
            -self.daily_amplitude / daily * (daily * t + self.daily_phase).cos()
                - self.weekly_amplitude / weekly * (weekly * t + self.weekly_phase).cos()
        };
        // The linear part is taken as an integer difference to keep full precision.
        (to - from) as f64 + wave(to) - wave(from)
    }
}

/// The growth factor at `t` for a series growing by `rate_per_year` (continuously compounded).
fn growth(rate_per_year: f64, t: i64) -> f64 {
    // Clamped so that an absurd simulated "now" cannot produce absurd magnitudes.
    let years = ((t - GROWTH_EPOCH) as f64 / YEAR).clamp(-5.0, 5.0);
    (rate_per_year * years).exp()
}

/// The size at `t` of a quantity that accumulates (such as people a Page can message): between
/// `size.0` and `size.1` at the growth epoch, growing slowly.
pub(crate) fn level(seed: Seed, size: (f64, f64), t: i64) -> f64 {
    let base = seed.with("size").between(size.0, size.1);
    base * growth(seed.with("growth").between(0.08, 0.3), t)
}

/// The share of a window's final value already counted at `now`, for a window ending at
/// `end_time`.
///
/// Meta keeps adding late events (delayed read receipts, deduplicated retries) to recent
/// insights for a day or so, while older values are final. This is modelled as a missing
/// share, `late_share` when the window closes, that decays with the window's age (time
/// constant 12 hours): recent values creep up between polls and never go down, which is also
/// what makes the demo's latest values move.
pub(crate) fn settled(end_time: i64, now: i64, late_share: f64) -> f64 {
    let age = now.saturating_sub(end_time).max(0) as f64;
    1.0 - late_share * (-age / (12.0 * HOUR)).exp()
}

/// `value` rounded to `decimals` decimal places.
pub(crate) fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// An expected number of events as a whole, non-negative count.
pub(crate) fn count(expected: f64) -> i64 {
    // `as` saturates for out-of-range floats and maps NaN to 0, which is what a count wants.
    expected.round().max(0.0) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_depend_on_every_part_and_its_boundaries() {
        assert_eq!(Seed::of(&["a", "b"]), Seed::of(&["a", "b"]));
        assert_ne!(Seed::of(&["a", "b"]), Seed::of(&["b", "a"]));
        assert_ne!(Seed::of(&["ab", "c"]), Seed::of(&["a", "bc"]));
        let unit = Seed::of(&["x"]).unit();
        assert!((0.0..1.0).contains(&unit));
    }

    #[test]
    fn expected_counts_over_adjacent_windows_add_up() {
        let activity = Activity::new(Seed::of(&["page", "metric"]), (100.0, 200.0));
        let (a, b, c) = (1_704_096_000, 1_704_150_123, 1_704_700_000);
        let whole = activity.expected(a, c);
        let parts = activity.expected(a, b) + activity.expected(b, c);
        assert!((whole - parts).abs() < 1e-6, "{whole} != {parts}");
        assert_eq!(activity.expected(b, a), 0.0);
    }

    #[test]
    fn a_days_count_stays_within_the_configured_size() {
        let activity = Activity::new(Seed::of(&["p", "m"]), (100.0, 200.0));
        let day = activity.expected(GROWTH_EPOCH, GROWTH_EPOCH + DAY);
        // The rhythm averages out over a day; the weekly wave and the day's noise add or take
        // up to 25 % and 20 %.
        assert!((55.0..300.0).contains(&day), "{day}");
    }

    #[test]
    fn recent_values_only_grow_and_old_ones_are_final() {
        let end = GROWTH_EPOCH;
        let shares: Vec<f64> = (0..48)
            .map(|hour| settled(end, end + hour * 3600, 0.1))
            .collect();
        assert!((shares[0] - 0.9).abs() < 1e-9);
        assert!(shares.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(1.0 - settled(end, end + 30 * DAY, 0.1) < 1e-9);
    }
}

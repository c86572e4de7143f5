//! The admission schedule: a generic cell rate algorithm (GCRA) in exact integer arithmetic.
//!
//! Guarantee: in every interval of length `T`, at most `burst + rate × T` admissions conform
//! (`T` in seconds), for any rate and any sequence of admission times. This is the token bucket
//! of depth `burst` refilled at `rate`, kept as one number: the theoretical arrival time (TAT).
//!
//! Time is kept in "scaled nanoseconds" (`ns × rate`), where one admission is exactly 10^9 units
//! whatever the rate, so the arithmetic never rounds. Arrival times are whole nanoseconds: when
//! 10^9 is not a multiple of the rate (7 per second, say), the earliest conforming nanosecond is
//! up to 1 ns after the ideal instant, and, as in every GCRA, the schedule continues from the
//! actual arrival. So the bound above holds exactly, in nanoseconds, and a line draining back to
//! back falls behind the ideal `rate × T` by at most 1 ns per admission (at 7 per second, 25 µs in
//! an hour). A rate change keeps the bucket's debt (in admissions) and refills at the new rate from
//! then on, so the bound holds with `rate × T` replaced by the integral of the rate over the
//! interval.

use std::time::Duration;

use crate::clock::duration_to_ns;

/// One admission, in scaled nanoseconds.
const UNIT: u128 = 1_000_000_000;

/// The largest rate and burst a schedule accepts: ten million.
pub const MAX_RATE: u32 = 10_000_000;

/// An exact GCRA rate limiter: `burst` admissions at once after a quiet spell, `rate_per_second`
/// sustained.
///
/// This is the schedule a [`WaitingRoom`](crate::WaitingRoom) admits by, usable on its own. It is
/// a plain value (`&mut self` to admit); wrap it in a lock to share it.
///
/// ```
/// use std::time::Duration;
/// use surgegate::room::Gcra;
///
/// let mut gcra = Gcra::new(10, 2).unwrap();
/// let t0 = Duration::ZERO;
/// assert!(gcra.try_admit(t0));
/// assert!(gcra.try_admit(t0));
/// assert!(!gcra.try_admit(t0)); // the burst is spent
/// assert_eq!(gcra.next_admission_at(), Duration::from_millis(100));
/// assert!(gcra.try_admit(Duration::from_millis(100)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gcra {
    rate_per_sec: u32,
    burst: u32,
    /// Theoretical arrival time, scaled: `ns × rate`.
    tat: u128,
}

impl Gcra {
    /// A schedule that has been quiet forever (a full burst is available at time zero).
    /// `None` if `rate_per_second` or `burst` is zero or above [`MAX_RATE`].
    pub fn new(rate_per_second: u32, burst: u32) -> Option<Self> {
        ((1..=MAX_RATE).contains(&rate_per_second) && (1..=MAX_RATE).contains(&burst)).then_some(
            Self {
                rate_per_sec: rate_per_second,
                burst,
                tat: 0,
            },
        )
    }

    /// The sustained rate.
    pub fn rate_per_second(&self) -> u32 {
        self.rate_per_sec
    }

    /// The burst.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    fn tau(&self) -> u128 {
        u128::from(self.burst - 1) * UNIT
    }

    fn scaled(&self, now_ns: u64) -> u128 {
        u128::from(now_ns) * u128::from(self.rate_per_sec)
    }

    /// Whether an admission at `now_ns` conforms.
    #[inline]
    pub(crate) fn conforms_ns(&self, now_ns: u64) -> bool {
        self.scaled(now_ns) + self.tau() >= self.tat
    }

    /// Records an admission at `at_ns`, which must conform.
    #[inline]
    pub(crate) fn admit_ns(&mut self, at_ns: u64) {
        debug_assert!(
            self.conforms_ns(at_ns),
            "admission at {at_ns} ns does not conform"
        );
        self.tat = self.tat.max(self.scaled(at_ns)) + UNIT;
    }

    /// The earliest time (ns) at which an admission conforms.
    pub(crate) fn earliest_ns(&self) -> u64 {
        let need = self.tat.saturating_sub(self.tau());
        let ns = need.div_ceil(u128::from(self.rate_per_sec));
        u64::try_from(ns).unwrap_or(u64::MAX)
    }

    /// When the `k`-th next admission (`k >= 1`) would happen if admissions ran back to back
    /// from `now_ns` as fast as the schedule allows.
    pub(crate) fn kth_admission_ns(&self, now_ns: u64, k: u64) -> u64 {
        let base = self.tat.max(self.scaled(now_ns));
        let due = (base + u128::from(k.saturating_sub(1)) * UNIT).saturating_sub(self.tau());
        let ns = due.div_ceil(u128::from(self.rate_per_sec));
        u64::try_from(ns).unwrap_or(u64::MAX).max(now_ns)
    }

    /// Changes the sustained rate at `now_ns`, keeping the current debt in admissions.
    pub(crate) fn set_rate_ns(&mut self, now_ns: u64, rate_per_second: u32) {
        debug_assert!((1..=MAX_RATE).contains(&rate_per_second));
        let debt = self.tat.saturating_sub(self.scaled(now_ns));
        self.rate_per_sec = rate_per_second;
        self.tat = self.scaled(now_ns) + debt;
    }

    /// Changes the burst. Raising it grants the extra admissions at once; lowering it takes
    /// effect at once.
    pub(crate) fn set_burst(&mut self, burst: u32) {
        debug_assert!((1..=MAX_RATE).contains(&burst));
        self.burst = burst;
    }

    /// Admits at `now` if the schedule allows it.
    #[inline]
    pub fn try_admit(&mut self, now: Duration) -> bool {
        let now_ns = duration_to_ns(now);
        if self.conforms_ns(now_ns) {
            self.admit_ns(now_ns);
            true
        } else {
            false
        }
    }

    /// The earliest time at which an admission conforms.
    pub fn next_admission_at(&self) -> Duration {
        Duration::from_nanos(self.earliest_ns())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn refuses_zero_and_huge() {
        assert!(Gcra::new(0, 1).is_none());
        assert!(Gcra::new(1, 0).is_none());
        assert!(Gcra::new(MAX_RATE + 1, 1).is_none());
        assert!(Gcra::new(MAX_RATE, MAX_RATE).is_some());
    }

    #[test]
    fn burst_then_rate() {
        let mut g = Gcra::new(10, 3).unwrap();
        for _ in 0..3 {
            assert!(g.conforms_ns(0));
            g.admit_ns(0);
        }
        assert!(!g.conforms_ns(0));
        assert_eq!(g.earliest_ns(), S / 10);
        assert!(!g.conforms_ns(S / 10 - 1));
        assert!(g.conforms_ns(S / 10));
    }

    #[test]
    fn odd_rates_lag_at_most_a_nanosecond_per_admission() {
        // 7 per second, back to back for an hour: admission k lands within k ns after k/7 s.
        let mut g = Gcra::new(7, 1).unwrap();
        for k in 0..=7 * 3600u64 {
            let t = g.earliest_ns();
            let ideal = (k * S).div_ceil(7);
            assert!(
                t >= ideal && t <= ideal + k,
                "admission {k} at {t}, ideal {ideal}"
            );
            g.admit_ns(t);
        }
    }

    #[test]
    fn kth_admission_matches_running_the_schedule() {
        for (rate, burst) in [(3, 1), (10, 4), (1000, 50), (7, 7), (2000, 1)] {
            let mut g = Gcra::new(rate, burst).unwrap();
            for _ in 0..burst.min(2) {
                g.admit_ns(0);
            }
            let now = S / 3;
            let mut sim = g.clone();
            for k in 1..=200 {
                let predicted = g.kth_admission_ns(now, k);
                let t = sim.earliest_ns().max(now);
                sim.admit_ns(t);
                // Never later than the prediction plus the 1 ns per admission of rounding.
                assert!(
                    predicted <= t && t <= predicted + k,
                    "rate {rate} burst {burst} k {k}: predicted {predicted}, ran {t}"
                );
            }
        }
    }

    #[test]
    fn rate_change_keeps_debt() {
        let mut g = Gcra::new(10, 1).unwrap();
        g.admit_ns(0);
        g.admit_ns(S / 10);
        // Debt at 0.1 s: the next admission is due at 0.2 s, one admission's worth.
        g.set_rate_ns(S / 10, 1);
        // At 1 per second the same debt takes a second to repay.
        assert_eq!(g.earliest_ns(), S / 10 + S);
    }
}

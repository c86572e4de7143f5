//! Time, as every rule of the crate sees it.
//!
//! Nothing in surgegate reads the system time directly: the book and the room ask a [`Clock`] for
//! the time since the clock's own epoch. Production code uses [`SystemClock`]; tests use
//! [`ManualClock`] and move time forward by hand, so every time-dependent rule (hold expiry,
//! admission rate, check-in lapses) is tested exactly and without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// A monotonic source of time, measured from the clock's own epoch.
///
/// `now` must never go backwards. Implementations are shared between threads.
pub trait Clock: Send + Sync + 'static {
    /// The time elapsed since this clock's epoch.
    fn now(&self) -> Duration;

    /// The wall-clock time of instant `at` of this clock (a time since its epoch, like a
    /// hold's `expires_at`), so that a portal can show "your hold expires at 14:32" or send a
    /// Unix time. The default puts the epoch at the Unix epoch; [`SystemClock`] maps to the
    /// system time it was created at. Saturates instead of overflowing.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use surgegate::{Clock, ManualClock, SystemClock};
    ///
    /// let unix = ManualClock::new().system_time(Duration::from_secs(60));
    /// assert_eq!(unix, SystemTime::UNIX_EPOCH + Duration::from_secs(60));
    ///
    /// let clock = SystemClock::new();
    /// let soon = clock.system_time(clock.now() + Duration::from_secs(600));
    /// let wall = SystemTime::now() + Duration::from_secs(600);
    /// let gap = soon.duration_since(wall).unwrap_or_else(|e| e.duration());
    /// assert!(gap < Duration::from_secs(1));
    /// ```
    fn system_time(&self, at: Duration) -> SystemTime {
        add_saturating(SystemTime::UNIX_EPOCH, at)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Duration {
        (**self).now()
    }

    fn system_time(&self, at: Duration) -> SystemTime {
        (**self).system_time(at)
    }
}

/// `base + by`, or the latest representable time if that overflows.
fn add_saturating(base: SystemTime, by: Duration) -> SystemTime {
    base.checked_add(by)
        .or_else(|| base.checked_add(CLOCK_END))
        .unwrap_or(base)
}

/// The monotonic system clock ([`Instant`]); its epoch is the moment it was created.
///
/// This is the default clock of both builders.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    origin: Instant,
    /// The system time at `origin`, for [`Clock::system_time`].
    origin_wall: SystemTime,
}

impl SystemClock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
            origin_wall: SystemTime::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// The system time when the clock was created, plus `at`. Monotonic time does not follow
    /// later changes of the system time (NTP steps), so this drifts with them; it is for showing
    /// times to people, never for deciding anything.
    fn system_time(&self, at: Duration) -> SystemTime {
        add_saturating(self.origin_wall, at)
    }
}

/// A clock that only moves when told to. Clones share one time.
///
/// Starts at zero. Resolution is one nanosecond; time saturates at `u64::MAX` nanoseconds
/// (about 584 years).
///
/// ```
/// use std::time::Duration;
/// use surgegate::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let shared = clock.clone();
/// clock.advance(Duration::from_secs(3));
/// assert_eq!(shared.now(), Duration::from_secs(3));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves time forward by `by` for this clock and all its clones.
    pub fn advance(&self, by: Duration) {
        let by_ns = duration_to_ns(by);
        // Ordering: AcqRel/Acquire so that whatever a thread did before advancing the clock is
        // visible to a thread that reads the new time. A CAS loop keeps the addition saturating.
        let _ = self
            .nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |ns| {
                Some(ns.saturating_add(by_ns))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        // Ordering: Acquire pairs with the AcqRel in `advance` (see there).
        Duration::from_nanos(self.nanos.load(Ordering::Acquire))
    }
}

/// A clock that reads tokio's time, so that tests with `#[tokio::test(start_paused = true)]`
/// drive [`WaitingRoom::wait`](crate::WaitingRoom::wait) deterministically, without real sleeps.
///
/// Its epoch is the moment it was created. Must be created and read inside a tokio runtime.
#[cfg(feature = "tokio")]
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    origin: tokio::time::Instant,
}

#[cfg(feature = "tokio")]
impl TokioClock {
    /// A clock whose epoch is tokio's now.
    pub fn new() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
        }
    }
}

#[cfg(feature = "tokio")]
impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "tokio")]
impl Clock for TokioClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// `d` in whole nanoseconds, saturating at `u64::MAX`.
pub(crate) fn duration_to_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The last instant the room and the book count time to: 2^62 − 2^47 ns after the clock's
/// epoch (about 146 years). A later reading counts as this one, so time stops there instead of
/// wrapping or saturating differently in different sums: a deadline made at the end (the end
/// plus a hold's or a check-in's at most 39 hours) still lies after it and fits every field.
pub const CLOCK_END: Duration = Duration::from_nanos(END_NS);

/// [`CLOCK_END`] in nanoseconds.
pub(crate) const END_NS: u64 = (1 << 62) - (1 << 47);

/// The current time of `clock` in whole nanoseconds, at most [`END_NS`].
pub(crate) fn now_ns<C: Clock + ?Sized>(clock: &C) -> u64 {
    duration_to_ns(clock.now()).min(END_NS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_starts_at_zero_and_clones_share_time() {
        let a = ManualClock::new();
        let b = a.clone();
        assert_eq!(a.now(), Duration::ZERO);
        b.advance(Duration::from_millis(1500));
        assert_eq!(a.now(), Duration::from_millis(1500));
    }

    #[test]
    fn manual_clock_saturates() {
        let c = ManualClock::new();
        c.advance(Duration::MAX);
        c.advance(Duration::from_secs(1));
        assert_eq!(c.now(), Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn system_clock_is_monotonic() {
        let c = SystemClock::new();
        let t1 = c.now();
        let t2 = c.now();
        assert!(t2 >= t1);
    }

    #[test]
    fn arc_of_a_clock_is_a_clock() {
        let c = Arc::new(ManualClock::new());
        c.advance(Duration::from_secs(2));
        assert_eq!(Clock::now(&c), Duration::from_secs(2));
    }
}

//! Reclaiming expired holds: `sweep`, the lazy sweep every reading runs when due, and the
//! expiry hint that tells a reading with one load whether anything may be due.
//!
//! Guarantee: an expired hold can never be confirmed, is never returned by a lookup, and never
//! keeps a unit from a reservation for longer than the book takes to catch up. Each shard
//! publishes the expiry of its oldest hold (`front_ns`); the book keeps [`ExpiryHint`], a lower
//! bound on every front. A call whose clock is past the hint reclaims due holds (under each
//! shard's lock, oldest first) before it reads; the hint is then raised to the new minimum front,
//! by a protocol that can never raise it past a front that moved earlier meanwhile.
//!
//! Every call's share of that work is bounded: at most [`SWEEP_BUDGET`] holds per call. When more
//! holds fall due at once (a surge's holds lapsing together, or a clock that jumped), the book
//! catches up over the next calls, and meanwhile its time lags the clock: it is just before the
//! earliest expiry not yet reclaimed, so each call still sees a book with no expired hold in it.
//! [`SlotBook::sweep`] is not bounded: it reclaims everything due, one shard lock at a time.

use crate::clock::Clock;
use crate::sync::{AtomicU64, Mutex, Ordering};

use super::SlotBook;
use super::ledger::{Ledger, Shard};
use super::standby::Standby;

impl<C: Clock> SlotBook<C> {
    /// Reclaims every expired hold now; returns how many this call reclaimed.
    ///
    /// Never needed for correctness (expired holds are invisible and never block), but it frees
    /// their memory at a time of your choosing, for example once a second from a timer.
    ///
    /// ```
    /// use std::time::Duration;
    /// use surgegate::{ApplicantId, BranchId, ManualClock, SlotBook};
    ///
    /// let clock = ManualClock::new();
    /// let book = SlotBook::builder().hold_ttl(Duration::from_secs(5)).clock(clock.clone()).build();
    /// book.set_capacity(BranchId(1), 0, 3)?;
    /// book.reserve(BranchId(1), 0, ApplicantId(1))?;
    /// book.reserve(BranchId(1), 0, ApplicantId(2))?;
    /// clock.advance(Duration::from_secs(5));
    /// assert_eq!(book.sweep(), 2);
    /// assert_eq!(book.sweep(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sweep(&self) -> usize {
        let now = self.clock_ns();
        self.sweep_offers(now);
        self.sweep_at(now, None)
    }

    /// Sweeps only if the expiry hint says something may be due (one load otherwise), at most
    /// [`SWEEP_BUDGET`] holds.
    pub(super) fn sweep_due(&self, now: u64) -> usize {
        // Standby offers that lapsed unclaimed pass on first (one load when none is due).
        self.sweep_offers(now);
        if self.hint.is_due(now) {
            self.sweep_at(now, Some(SWEEP_BUDGET))
        } else {
            0
        }
    }

    /// Reclaims what is due at `now`: everything, or with a `budget`, at most that many holds
    /// (shard after shard, each oldest first: one shard's run of expiries at a time is several
    /// times faster than a few from every shard, whose tables then fall out of the cache).
    fn sweep_at(&self, now: u64, budget: Option<usize>) -> usize {
        let limit = budget.unwrap_or(usize::MAX);
        let mut reclaimed = 0;
        for _ in 0..4 {
            if budget.is_some() && !self.hint.is_due(now) {
                break;
            }
            // Begun before the fronts are read: see `ExpiryHint` for why.
            let raise = self.hint.begin_raise();
            let mut min_front = u64::MAX;
            for shard in self.shards.iter() {
                // Ordering: SeqCst, part of the expiry-hint protocol (see `ExpiryHint`).
                if reclaimed < limit && shard.front_ns.load(Ordering::SeqCst) <= now {
                    let ledger = &mut shard.ledger.lock();
                    reclaimed +=
                        shard.reclaim(ledger, now, &self.hint, limit - reclaimed, &self.standby);
                }
                min_front = min_front.min(shard.front_ns.load(Ordering::SeqCst));
            }
            // Without the raise lock, another sweeper raises the hint; it may stay low meanwhile
            // (safe: it is only a lower bound).
            let raised = raise.is_none_or(|r| r.finish(min_front));
            if budget.is_some_and(|b| reclaimed >= b) {
                // Due holds may be left: the hint stays due, and the next call goes on.
                self.hint
                    .set_behind((min_front <= now).then_some(min_front));
                return reclaimed;
            }
            if raised {
                break;
            }
        }
        if budget.is_some() || self.hint.is_behind() {
            self.hint.set_behind(None);
        }
        reclaimed
    }
}

/// The most expired holds one call (other than [`SlotBook::sweep`]) reclaims: under half a
/// millisecond of work on the machine of BENCHMARKS.md, so that no call waits for a million
/// lapsed holds at once.
pub const SWEEP_BUDGET: usize = 8192;

impl Shard {
    /// Reclaims up to `max` expired holds of `ledger` (this shard's, locked), oldest first, and
    /// publishes its front.
    pub(super) fn reclaim(
        &self,
        ledger: &mut Ledger,
        now_ns: u64,
        hint: &ExpiryHint,
        max: usize,
        standby: &Standby,
    ) -> usize {
        let reclaimed = ledger.reclaim_expired(now_ns, max, standby);
        self.publish_front(ledger, hint);
        reclaimed
    }

    /// Stores the front expiry of `ledger` (this shard's, locked) where lock-free readers see
    /// it, and lowers the book's expiry hint if the front moved earlier.
    pub(super) fn publish_front(&self, ledger: &Ledger, hint: &ExpiryHint) {
        let front = &self.front_ns;
        let new = ledger.expiry.peek().map_or(u64::MAX, |(e, _)| e);
        // Ordering: SeqCst, part of the expiry-hint protocol (see `ExpiryHint`). Only this
        // shard's lock holder writes `front`, so a load-then-store cannot lose an update.
        let old = front.load(Ordering::SeqCst);
        if new != old {
            front.store(new, Ordering::SeqCst);
            if new < old {
                hint.lower_to(new);
            }
        }
    }
}

/// A lower bound on the earliest expiry of any hold in the book, so that readings can tell with
/// one load whether anything may have expired since the last sweep.
///
/// Packed as `(floor(ns / 1 ms) << 1) | dirty`. Invariant: the bound is at or below every
/// shard's `front_ns` (so at or below every live hold's expiry), except while a shard that has
/// just stored an earlier front is on its way to lowering the hint.
///
/// Protocol (all `SeqCst`):
/// - A shard whose front moves earlier (only possible when its queue was empty) stores the new
///   front, then lowers the hint and sets the dirty bit, in one read-modify-write.
/// - A sweeper that wants to raise the hint takes the raise lock (`try_lock`: a sweeper that
///   finds it taken reclaims what is due and leaves the raising to the other), clears the dirty
///   bit (remembering the word as `h0`), reads every shard's front, and installs their minimum
///   with one CAS from `h0`. A shard whose front moved earlier after the sweeper read it set the
///   dirty bit after the sweeper cleared it, so the CAS fails and the sweeper reads the fronts
///   again. Only the holder of the raise lock ever clears the dirty bit, so between its clear and
///   its CAS the word can return to `h0` only if nothing lowered it: no ABA is possible, whatever
///   the number of lowerings.
pub(crate) struct ExpiryHint {
    word: AtomicU64,
    /// While the book catches up (a budgeted sweep left due holds): the earliest front it left;
    /// `u64::MAX` otherwise. See [`SlotBook::now_ns`].
    behind_ns: AtomicU64,
    raising: Mutex<()>,
}

const DIRTY: u64 = 1;
const EMPTY_MS: u64 = u64::MAX >> 1;
const NS_PER_MS: u64 = 1_000_000;

/// A raise in progress: the raise lock and the hint word as it was when the dirty bit was
/// cleared.
pub(crate) struct Raise<'a> {
    hint: &'a ExpiryHint,
    h0: u64,
    _only_raiser: crate::sync::MutexGuard<'a, ()>,
}

impl ExpiryHint {
    /// `now_ns`, or while the book is catching up (a budgeted sweep left due holds), just
    /// before the earliest expiry it left: the book's time.
    pub(crate) fn lag_ns(&self, now_ns: u64) -> u64 {
        // Ordering: Relaxed: a time, read on every call; it guards no other memory (each
        // decision made with it is checked under a shard lock against the record itself).
        let behind = self.behind_ns.load(Ordering::Relaxed);
        if behind <= now_ns {
            behind.saturating_sub(1)
        } else {
            now_ns
        }
    }

    /// Whether a budgeted sweep left due holds behind.
    pub(crate) fn is_behind(&self) -> bool {
        self.behind_ns.load(Ordering::Relaxed) != u64::MAX
    }

    /// After a budgeted sweep: `Some(front)` if due holds were left (the earliest front), `None`
    /// if none was.
    fn set_behind(&self, front: Option<u64>) {
        let new = front.unwrap_or(u64::MAX);
        // Ordering: Relaxed, as in `lag_ns`; skip the store when unchanged, so the line stays
        // shared between cores in the steady state.
        if self.behind_ns.load(Ordering::Relaxed) != new {
            self.behind_ns.store(new, Ordering::Relaxed);
        }
    }

    pub(crate) fn new() -> Self {
        Self {
            word: AtomicU64::new(EMPTY_MS << 1),
            behind_ns: AtomicU64::new(u64::MAX),
            raising: Mutex::new(()),
        }
    }

    fn ms_of(ns: u64) -> u64 {
        if ns == u64::MAX {
            EMPTY_MS
        } else {
            (ns / NS_PER_MS).min(EMPTY_MS - 1)
        }
    }

    /// Whether a hold may have expired at `now_ns`.
    pub(crate) fn is_due(&self, now_ns: u64) -> bool {
        let ms = self.word.load(Ordering::SeqCst) >> 1;
        ms != EMPTY_MS && ms.saturating_mul(NS_PER_MS) <= now_ns
    }

    /// The earliest time at which something may be due, in ns (`u64::MAX`: nothing held).
    pub(crate) fn bound_ns(&self) -> u64 {
        let ms = self.word.load(Ordering::SeqCst) >> 1;
        if ms == EMPTY_MS {
            u64::MAX
        } else {
            ms * NS_PER_MS
        }
    }

    /// Lowers the bound to `ns` (if it is above) and marks the hint dirty, so that a raise begun
    /// before this call fails.
    pub(crate) fn lower_to(&self, ns: u64) {
        let ms = Self::ms_of(ns);
        let _ = self
            .word
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |h| {
                Some(((h >> 1).min(ms) << 1) | DIRTY)
            });
    }

    /// Starts a raise, or `None` if another sweeper is raising now. Call before reading the
    /// shards' fronts.
    pub(crate) fn begin_raise(&self) -> Option<Raise<'_>> {
        let guard = self.raising.try_lock()?;
        let h0 = self.word.fetch_and(!DIRTY, Ordering::SeqCst) & !DIRTY;
        Some(Raise {
            hint: self,
            h0,
            _only_raiser: guard,
        })
    }
}

impl Raise<'_> {
    /// Installs `min_front_ns` unless the hint was lowered since the raise began. False if it
    /// was: read the fronts again.
    pub(crate) fn finish(self, min_front_ns: u64) -> bool {
        let new = ExpiryHint::ms_of(min_front_ns) << 1;
        self.hint
            .word
            .compare_exchange(self.h0, new, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The ABA a version counter of finite width allows: a raise begun, then exactly as many
    /// lowerings as the counter has values, all to the same bound. The raise must still fail,
    /// or it would lift the bound above the front that the last lowering published.
    #[test]
    fn a_raise_fails_after_any_number_of_lowerings() {
        let hint = ExpiryHint::new();
        hint.lower_to(5 * NS_PER_MS);
        for lowerings in [1u64, 2, 1 << 20, (1 << 20) + 1] {
            let raise = hint.begin_raise().expect("no other raiser");
            for _ in 0..lowerings {
                hint.lower_to(5 * NS_PER_MS);
            }
            assert!(
                !raise.finish(u64::MAX),
                "raise won after {lowerings} lowerings"
            );
            assert_eq!(hint.bound_ns(), 5 * NS_PER_MS);
        }
        // With no lowering in between, the raise succeeds.
        let raise = hint.begin_raise().expect("no other raiser");
        assert!(raise.finish(9 * NS_PER_MS));
        assert_eq!(hint.bound_ns(), 9 * NS_PER_MS);
    }

    #[test]
    fn one_raiser_at_a_time_and_bounds_round_down() {
        let hint = ExpiryHint::new();
        assert!(!hint.is_due(u64::MAX - 1));
        hint.lower_to(2_500_000);
        assert_eq!(hint.bound_ns(), 2 * NS_PER_MS);
        assert!(hint.is_due(2 * NS_PER_MS) && !hint.is_due(2 * NS_PER_MS - 1));
        let first = hint.begin_raise().expect("free");
        assert!(hint.begin_raise().is_none());
        drop(first);
        assert!(hint.begin_raise().is_some());
    }
}

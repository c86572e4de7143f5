//! The slot book: per-branch appointment capacity that can never be overbooked.
//!
//! [`SlotBook`] owns the capacity of every (branch, slot), the holds on it and the bookings made
//! from them. A reservation is one compare-and-swap on the slot's packed counter word; records
//! live in lock shards keyed by the applicant, so `reserve`, `confirm` and `release` each take
//! one shard lock and no global lock. Expired holds are reclaimed lazily (and by [`SlotBook::sweep`])
//! and are never visible: a reading or a reservation first reclaims whatever has expired.
//!
//! A book opened from a directory ([`SlotBookBuilder::open`]) also journals its durable changes;
//! that part lives in `durable/` and the [`journal`](crate::journal) module.
//!
//! One protocol per file: `types` (the plain values), `error` (each call's errors), `builder`
//! (limits), `capacity` (opening, closing and reading slots), `reserve` (taking a unit), `among`
//! (one hold among several branches), `confirm` (confirming and releasing), `lookup` (finding
//! holds and bookings by token or applicant), `expiry` (reclaiming expired holds, and the expiry
//! hint), `audit` (the whole-book check), `durable` (opening a directory, restoring, checkpoints);
//! below them, `word` (one slot's packed counter), `chunk` (512 slot words with their full-slot
//! and closed-slot bitmaps), `branches` (the lock-free branch table), `ledger` (one lock shard:
//! its counts and expiry queue), `records` (the shard's records, in a slab addressed by token
//! bits) and `record` (one record and its state).
//!
//! The rules this module guarantees are listed on [`SlotBook`].

mod among;
mod audit;
mod branches;
mod builder;
mod capacity;
mod channel;
mod chunk;
mod confirm;
mod durable;
mod error;
mod expiry;
mod ledger;
mod lookup;
mod quota;
mod record;
mod records;
mod reserve;
mod standby;
mod standby_ops;
mod types;
mod word;

use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::clock::{Clock, SystemClock, now_ns};
use crate::journal::Journal;
use crate::sync::{AtomicU64, Mutex, Ordering};
use branches::BranchTable;
use chunk::CHUNK_SLOTS;
use expiry::ExpiryHint;
use ledger::Shard;
use standby::Standby;

/// Stripes of the lock that orders capacity changes and closes of the same slot.
#[cfg(not(loom))]
const CAPACITY_STRIPES: usize = 64;
/// Under loom, few stripes: `standby` takes each once, and each is a point loom branches on.
#[cfg(loom)]
const CAPACITY_STRIPES: usize = 2;

pub use among::{MAX_ALTERNATIVES, Preference};
pub use builder::SlotBookBuilder;
#[cfg(feature = "redis")]
pub(crate) use builder::{
    check_hold_ttl, check_max_active_per_applicant, check_max_standby_requests,
};
pub use channel::{Channel, ChannelState, SlotQuotas};
pub use durable::DurableBookBuilder;
pub use error::{
    BookConfigError, CapacityError, CloseError, ConfirmError, OpenError, ReleaseError,
    ReserveError, StandbyError,
};
pub use expiry::SWEEP_BUDGET;
pub use standby::{StandbyRequest, StandbyTicket};
pub(crate) use standby_ops::standby_branches;
pub use types::{
    ApplicantId, BookTotals, Booking, BranchId, Hold, HoldToken, SlotIndex, SlotState,
};
pub use word::MAX_CAPACITY;

/// Appointment capacity per (branch, slot), with holds that expire unless confirmed.
///
/// The applicant's flow: [`reserve`](Self::reserve) (or [`reserve_earliest`](Self::reserve_earliest))
/// takes a unit as a [`Hold`]; [`confirm`](Self::confirm) turns it into a [`Booking`] before it
/// expires; [`release`](Self::release) gives either back.
///
/// ```
/// use std::time::Duration;
/// use surgegate::{ApplicantId, BranchId, ManualClock, SlotBook};
///
/// let clock = ManualClock::new();
/// let book = SlotBook::builder()
///     .hold_ttl(Duration::from_secs(600))
///     .clock(clock.clone())
///     .build();
/// book.set_capacity(BranchId(7), 12, 2)?;
///
/// let hold = book.reserve(BranchId(7), 12, ApplicantId(42))?;
/// let booking = book.confirm(hold.token)?;
/// assert_eq!(book.booking(hold.token), Some(booking));
/// assert_eq!(book.slot(BranchId(7), 12).unwrap().remaining(), 1);
///
/// book.release(booking.token)?;
/// assert_eq!(book.slot(BranchId(7), 12).unwrap().remaining(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Rules
///
/// 1. **No overbooking**: `held + booked <= capacity` for every slot unless its capacity was
///    lowered below it; after a lowering no hold is granted until `held + booked < capacity`.
///    Existing holds and bookings survive a lowering.
/// 2. **Conservation**: `remaining == capacity.saturating_sub(held + booked)`, and `held`
///    counts live holds only: readings never show an expired hold.
/// 3. **Expired holds never block**: reservations reclaim expired holds before answering `Full`
///    or `NoneAvailable`; confirming an expired hold fails.
/// 4. **Idempotent**: a retried `reserve`/`reserve_earliest` returns the applicant's existing
///    hold; a retried `confirm` returns the same booking; a second `release` is `UnknownToken`.
/// 5. **Applicant limit**: live holds plus bookings of one applicant never exceed
///    `max_active_per_applicant`.
/// 6. **Errors change nothing.**
/// 7. `reserve_earliest` picks the lowest slot index in the range with room.
///
/// All methods take `&self` and may be called from any number of threads.
pub struct SlotBook<C = SystemClock> {
    clock: C,
    hold_ttl_ns: u64,
    max_active_per_applicant: usize,
    max_slots_per_branch: u32,
    max_branches: u32,
    max_slot_chunks: u32,
    max_holds_per_shard: usize,
    shard_mask: usize,
    // Declared (so dropped) before `branches`: records point into the branches.
    shards: Box<[CachePadded<Shard>]>,
    branches: BranchTable,
    /// Key of the applicant-to-shard mix: random, or the directory's for a durable book.
    shard_seed: u64,
    /// Written by whichever shard's expiry front moves earlier; on a cache line of its own, so
    /// those writes do not evict the read-only fields every call reads.
    hint: CachePadded<ExpiryHint>,
    /// The latest clock reading, kept to within [`CLAMP_GRAIN_NS`]: readings never use a time
    /// more than that behind it, however the clock moves.
    latest_ns: CachePadded<AtomicU64>,
    /// `set_capacity` and `close_slot` of one slot hold its stripe across journal write and
    /// apply, so two changes of a slot are journaled in the order they were applied, and a
    /// slot's closed bit always agrees with its capacity.
    capacity_stripes: Box<[Mutex<()>]>,
    /// `Some` for a book opened from a directory.
    journal: Option<Box<Journal>>,
    /// The standby line (`standby.rs`).
    standby: Standby,
}

impl SlotBook<SystemClock> {
    /// A builder with the default limits and the system clock.
    pub fn builder() -> SlotBookBuilder<SystemClock> {
        SlotBookBuilder::default()
    }
}

impl<C> fmt::Debug for SlotBook<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotBook")
            .field("branches", &self.branches.len())
            .field("hold_ttl_ns", &self.hold_ttl_ns)
            .field("max_active_per_applicant", &self.max_active_per_applicant)
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

/// How far a reading's time may lag the latest time the book has seen, when the clock steps back.
const CLAMP_GRAIN_NS: u64 = 1_000_000;

/// `range` as an inclusive `(first, last)`, or `None` if it is empty.
pub(crate) fn inclusive(range: &impl RangeBounds<SlotIndex>) -> Option<(SlotIndex, SlotIndex)> {
    let first = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let last = match range.end_bound() {
        Bound::Included(&e) => e,
        Bound::Excluded(&e) => e.checked_sub(1)?,
        Bound::Unbounded => SlotIndex::MAX,
    };
    (first <= last).then_some((first, last))
}

/// The shard of an applicant id among at most 256: the top 8 bits of a keyed multiplicative
/// (Fibonacci) hash, which depend on every bit of the id. Fixed (not `ahash`, whose output may
/// change between builds and versions) because a durable book's tokens encode the shard of their
/// applicant and must still name it after the program is rebuilt; the key, random per book (or
/// per directory), keeps the spread unpredictable. Three instructions on the hot path.
fn shard_mix(applicant: u64, key: u64) -> usize {
    ((applicant ^ key).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize
}

fn state_of(p: word::Packed) -> SlotState {
    SlotState {
        capacity: p.capacity(),
        held: p.held(),
        booked: p.booked(),
    }
}

impl<C: Clock> SlotBook<C> {
    /// The clock's time, but never more than [`CLAMP_GRAIN_NS`] behind the latest reading the
    /// book has seen: a clock that steps back cannot make a lapsed hold look live again. Calls
    /// that hold a shard lock clamp exactly on top of this ([`Ledger::clamp_now`]).
    ///
    /// [`Ledger::clamp_now`]: ledger::Ledger::clamp_now
    fn clock_ns(&self) -> u64 {
        let t = now_ns(&self.clock);
        // Ordering: Relaxed: the value is a time, not a guard of other memory. The store is rare
        // (once per grain), so the line stays shared between cores on the hot path.
        let seen = self.latest_ns.load(Ordering::Relaxed);
        if t >= seen.saturating_add(CLAMP_GRAIN_NS) {
            self.latest_ns.fetch_max(t, Ordering::Relaxed);
        }
        t.max(seen)
    }

    /// The book's time: the clock's, or while the book is catching up with more expired holds
    /// than one call reclaims ([`SWEEP_BUDGET`]), just before the earliest expiry not yet
    /// reclaimed. Every decision of a call (is this hold expired? when does a new one expire?)
    /// uses it, so every call sees the book as it was at one instant, with no expired hold in
    /// it. Takes no lock, so it may be read under a shard's.
    fn now_ns(&self) -> u64 {
        self.hint.lag_ns(self.clock_ns())
    }

    /// Reclaims holds due by the clock, at most [`SWEEP_BUDGET`]: the first step of every call
    /// that reads counts or reserves.
    fn sweep_now(&self) {
        self.sweep_due(self.clock_ns());
    }

    /// Goes on catching up, if a budgeted sweep left due holds: the first step of calls that
    /// look at one hold (confirm, release, lookups). Otherwise nothing: a hold that expired by
    /// the clock is then `Expired` to them, not yet reclaimed.
    fn catch_up(&self) {
        if self.hint.is_behind() {
            self.sweep_now();
        }
    }

    /// The stripe of the capacity lock for one slot.
    fn capacity_stripe(&self, branch: BranchId, slot: SlotIndex) -> &Mutex<()> {
        let h = (u64::from(branch.0) << 32 | u64::from(slot)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        &self.capacity_stripes[(h >> 58) as usize % CAPACITY_STRIPES]
    }

    fn shard_of_applicant(&self, applicant: ApplicantId) -> usize {
        shard_mix(applicant.0, self.shard_seed) & self.shard_mask
    }

    fn shard_of_token(&self, token: u128) -> usize {
        (token as usize) & self.shard_mask
    }

    /// The book's clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The book's time on its clock's epoch: the clock's reading (never behind a reading the
    /// book has already acted on by more than 1 ms, and at most [`CLOCK_END`](crate::CLOCK_END)),
    /// or a little earlier while the book catches up after more holds expired at once than one
    /// call reclaims ([`SWEEP_BUDGET`]). Hold expiries ([`Hold::expires_at`]) are on the same
    /// scale; [`Clock::system_time`] maps them to wall-clock time.
    pub fn now(&self) -> Duration {
        self.catch_up();
        Duration::from_nanos(self.now_ns())
    }

    /// The configured hold lifetime.
    pub fn hold_ttl(&self) -> Duration {
        Duration::from_nanos(self.hold_ttl_ns)
    }

    /// The largest valid slot index plus one.
    pub fn max_slots_per_branch(&self) -> u32 {
        self.max_slots_per_branch
    }
}

const _: () = assert!(CHUNK_SLOTS.is_power_of_two());

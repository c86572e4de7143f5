//! The slot book: per-branch appointment capacity that can never be overbooked.
//!
//! [`SlotBook`] owns the capacity of every (branch, slot), the holds on it and the bookings made
//! from them. A reservation is one compare-and-swap on the slot's packed counter word; records
//! live in lock shards keyed by the applicant, so `reserve`, `confirm` and `release` each take
//! one shard lock and no global lock. Expired holds are reclaimed lazily (and by [`SlotBook::sweep`])
//! and are never visible: a reading or a reservation first reclaims whatever has expired.
//!
//! A book opened from a directory ([`SlotBookBuilder::open`]) also journals its durable changes;
//! that part lives in `durable.rs` and the [`journal`](crate::journal) module.
//!
//! The rules this module guarantees are listed on [`SlotBook`].

mod branches;
mod durable;
mod error;
mod ledger;
mod word;

use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::clock::{Clock, SystemClock, duration_to_ns, now_ns};
use crate::invariant::{InvariantViolation, ensure};
use crate::journal::{Change, Durability, Journal};
use crate::sync::Ordering;
use crate::token::{random_u128, token_type};
use branches::{BranchTable, CHUNK_SLOTS};
use ledger::{BranchRef, ExpiryHint, Record, Shard, State, return_unit};
use word::HoldRefused;

pub use error::{BookConfigError, CapacityError, ConfirmError, ReleaseError, ReserveError};
pub use word::MAX_CAPACITY;

/// A branch (office) of the authority, as numbered by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BranchId(pub u32);

/// An applicant, as numbered by the caller (an account id, say).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApplicantId(pub u64);

/// A bookable time window of a branch. The caller maps its calendar to indices, for example
/// `day * windows_per_day + window`.
pub type SlotIndex = u32;

impl fmt::Display for BranchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "branch {}", self.0)
    }
}

impl fmt::Display for ApplicantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "applicant {}", self.0)
    }
}

token_type!(
    /// The unguessable proof of a hold, and of the booking it becomes: 128 bits, shown as exactly
    /// 32 lowercase hex digits.
    ///
    /// 122 of the bits are CSPRNG output; the lowest bits name the lock shard that issued it (like
    /// a UUID's version bits), so `confirm` and `release` go straight to it. A confirmed hold keeps
    /// its token.
    ///
    /// ```
    /// use surgegate::HoldToken;
    ///
    /// let token: HoldToken = "00112233445566778899aabbccddeeff".parse()?;
    /// assert_eq!(token.to_string(), "00112233445566778899aabbccddeeff");
    /// assert!("not a token".parse::<HoldToken>().is_err());
    /// # Ok::<(), surgegate::TokenParseError>(())
    /// ```
    HoldToken
);

/// The counts of one slot, as one consistent snapshot.
///
/// `held` counts live holds only: an expired hold is never shown, swept or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SlotState {
    /// Units the authority opened in this slot.
    pub capacity: u32,
    /// Units under a live, unconfirmed hold.
    pub held: u32,
    /// Units booked (confirmed).
    pub booked: u32,
}

impl SlotState {
    /// Units still free: `capacity - held - booked`, or zero if capacity was lowered below the
    /// units already taken.
    pub fn remaining(&self) -> u32 {
        self.capacity.saturating_sub(self.held + self.booked)
    }
}

/// A unit of a slot set aside for one applicant until `expires_at`, unless confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Hold {
    /// Confirms or releases this hold; the booking keeps it.
    pub token: HoldToken,
    /// Where.
    pub branch: BranchId,
    /// When.
    pub slot: SlotIndex,
    /// For whom.
    pub applicant: ApplicantId,
    /// The book's clock time at which the hold lapses: at or after it, `confirm` fails and the
    /// unit is free again.
    pub expires_at: Duration,
}

/// A confirmed appointment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Booking {
    /// The token of the hold it came from.
    pub token: HoldToken,
    /// Where.
    pub branch: BranchId,
    /// When.
    pub slot: SlotIndex,
    /// For whom.
    pub applicant: ApplicantId,
}

/// Whole-book totals returned by [`SlotBook::check_invariants`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BookTotals {
    /// Branches created.
    pub branches: usize,
    /// Open slots.
    pub open_slots: usize,
    /// Sum of all open slots' capacities.
    pub capacity: u64,
    /// Unconfirmed holds still recorded, expired ones not yet reclaimed included.
    pub holds: u64,
    /// Of `holds`, how many have expired and wait to be reclaimed.
    pub expired_holds: u64,
    /// Bookings.
    pub bookings: u64,
}

/// Builds a [`SlotBook`]. Every limit has a default; see each setter.
#[derive(Clone, Debug)]
#[must_use]
pub struct SlotBookBuilder<C = SystemClock> {
    clock: C,
    hold_ttl: Duration,
    max_active_per_applicant: u32,
    max_branches: u32,
    max_slots_per_branch: u32,
    max_live_holds: u64,
    shards: u32,
    durability: Durability,
    checkpoint_after_bytes: u64,
    max_batch_records: u32,
}

impl Default for SlotBookBuilder<SystemClock> {
    fn default() -> Self {
        Self {
            clock: SystemClock::new(),
            hold_ttl: Duration::from_secs(600),
            max_active_per_applicant: 1,
            max_branches: 16_384,
            max_slots_per_branch: 65_536,
            max_live_holds: 1 << 22,
            shards: 64,
            durability: Durability::Fsync,
            checkpoint_after_bytes: 64 << 20,
            max_batch_records: 4096,
        }
    }
}

impl<C: Clock> SlotBookBuilder<C> {
    /// How long a hold lasts before it must be confirmed. Default 10 minutes; at most 24 hours.
    pub fn hold_ttl(mut self, ttl: Duration) -> Self {
        self.hold_ttl = ttl;
        self
    }

    /// The most live holds plus bookings one applicant may have at once. Default 1; at most 1024.
    pub fn max_active_per_applicant(mut self, n: u32) -> Self {
        self.max_active_per_applicant = n;
        self
    }

    /// The most branches the book will create. Default 16 384; at most 2^20. The branch table,
    /// two to four 8-byte cells per branch of the limit, is allocated up front.
    pub fn max_branches(mut self, n: u32) -> Self {
        self.max_branches = n;
        self
    }

    /// Slot indices run from 0 to `n - 1`. Default 65 536 (a year of 15-minute windows fits);
    /// at most 2^22. Slot counters are allocated 512 at a time, only where slots are opened.
    pub fn max_slots_per_branch(mut self, n: u32) -> Self {
        self.max_slots_per_branch = n;
        self
    }

    /// The most unconfirmed holds the book keeps at once. Default 2^22; at most 2^32. The limit is
    /// split evenly across the lock shards (each shard keeps at most `ceil(n / shards)`).
    pub fn max_live_holds(mut self, n: u64) -> Self {
        self.max_live_holds = n;
        self
    }

    /// Number of lock shards for hold and booking records: a power of two, 1 to 256. Default 64.
    pub fn shards(mut self, n: u32) -> Self {
        self.shards = n;
        self
    }

    /// The clock the book reads time from. Default: a [`SystemClock`] created with the builder.
    pub fn clock<C2: Clock>(self, clock: C2) -> SlotBookBuilder<C2> {
        SlotBookBuilder {
            clock,
            hold_ttl: self.hold_ttl,
            max_active_per_applicant: self.max_active_per_applicant,
            max_branches: self.max_branches,
            max_slots_per_branch: self.max_slots_per_branch,
            max_live_holds: self.max_live_holds,
            shards: self.shards,
            durability: self.durability,
            checkpoint_after_bytes: self.checkpoint_after_bytes,
            max_batch_records: self.max_batch_records,
        }
    }

    /// Builds the book, or says which setting is out of range.
    pub fn try_build(self) -> Result<SlotBook<C>, BookConfigError> {
        self.validate()?;
        let shards = self.shards;
        Ok(self.assemble(shards, crate::sync::random_key(), None))
    }

    fn validate(&self) -> Result<(), BookConfigError> {
        if self.hold_ttl.is_zero() || self.hold_ttl > Duration::from_secs(86_400) {
            return Err(BookConfigError::HoldTtl(self.hold_ttl));
        }
        if !(1..=1024).contains(&self.max_active_per_applicant) {
            return Err(BookConfigError::MaxActivePerApplicant(
                self.max_active_per_applicant,
            ));
        }
        if !(1..=1 << 20).contains(&self.max_branches) {
            return Err(BookConfigError::MaxBranches(self.max_branches));
        }
        if !(1..=1 << 22).contains(&self.max_slots_per_branch) {
            return Err(BookConfigError::MaxSlotsPerBranch(
                self.max_slots_per_branch,
            ));
        }
        if !(1..=1 << 32).contains(&self.max_live_holds) {
            return Err(BookConfigError::MaxLiveHolds(self.max_live_holds));
        }
        if !(1..=256).contains(&self.shards) || !self.shards.is_power_of_two() {
            return Err(BookConfigError::Shards(self.shards));
        }
        Ok(())
    }

    /// The book, with `shards` lock shards and applicants spread over them by `shard_seed`.
    fn assemble(self, shards: u32, shard_seed: u64, journal: Option<Box<Journal>>) -> SlotBook<C> {
        let map_hasher = crate::sync::random_state();
        SlotBook {
            hold_ttl_ns: duration_to_ns(self.hold_ttl),
            max_active_per_applicant: self.max_active_per_applicant as usize,
            max_slots_per_branch: self.max_slots_per_branch,
            max_branches: self.max_branches,
            max_holds_per_shard: self.max_live_holds.div_ceil(u64::from(shards)) as usize,
            shard_mask: shards as usize - 1,
            shard_seed,
            branches: BranchTable::new(self.max_branches, self.max_slots_per_branch),
            shards: (0..shards)
                .map(|_| CachePadded::new(Shard::new(map_hasher.clone())))
                .collect(),
            hint: CachePadded::new(ExpiryHint::new()),
            clock: self.clock,
            journal,
        }
    }

    /// Builds the book.
    ///
    /// # Panics
    ///
    /// If a setting is out of the range its setter documents. Use [`try_build`](Self::try_build)
    /// when the settings come from outside the program.
    pub fn build(self) -> SlotBook<C> {
        match self.try_build() {
            Ok(book) => book,
            Err(e) => panic!("invalid SlotBook configuration: {e}"),
        }
    }
}

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
    /// `Some` for a book opened from a directory.
    journal: Option<Box<Journal>>,
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

/// `range` as an inclusive `(first, last)`, or `None` if it is empty.
fn inclusive(range: &impl RangeBounds<SlotIndex>) -> Option<(SlotIndex, SlotIndex)> {
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
    fn now_ns(&self) -> u64 {
        now_ns(&self.clock)
    }

    fn shard_of_applicant(&self, applicant: ApplicantId) -> usize {
        shard_mix(applicant.0, self.shard_seed) & self.shard_mask
    }

    fn shard_of_token(&self, token: u128) -> usize {
        (token as usize) & self.shard_mask
    }

    /// A fresh token routed to `shard`.
    fn new_token(&self, shard: usize) -> u128 {
        (random_u128() & !(self.shard_mask as u128)) | shard as u128
    }

    /// Opens a slot with `capacity` units, or changes its capacity, and returns its state.
    ///
    /// Raising capacity frees units at once. Lowering it below `held + booked` keeps every
    /// existing hold and booking; no new hold is granted until enough are released.
    ///
    /// ```
    /// use surgegate::{BranchId, CapacityError, SlotBook};
    ///
    /// let book = SlotBook::builder().max_slots_per_branch(480).build();
    /// let state = book.set_capacity(BranchId(1), 0, 40)?;
    /// assert_eq!((state.capacity, state.remaining()), (40, 40));
    ///
    /// // Limits are errors, not allocations.
    /// assert!(matches!(
    ///     book.set_capacity(BranchId(1), u32::MAX, 1),
    ///     Err(CapacityError::SlotOutOfRange { .. })
    /// ));
    /// # Ok::<(), CapacityError>(())
    /// ```
    pub fn set_capacity(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        capacity: u32,
    ) -> Result<SlotState, CapacityError> {
        if slot >= self.max_slots_per_branch {
            return Err(CapacityError::SlotOutOfRange {
                slot,
                last: self.max_slots_per_branch - 1,
            });
        }
        if capacity > MAX_CAPACITY {
            return Err(CapacityError::CapacityTooLarge {
                capacity,
                max: MAX_CAPACITY,
            });
        }
        let b =
            self.branches
                .get_or_create(branch)
                .map_err(|_| CapacityError::TooManyBranches {
                    max_branches: self.max_branches,
                })?;
        // `slot < max_slots_per_branch`, so the chunk index is inside the directory.
        let Some(word) = b.word_or_create(slot) else {
            debug_assert!(false, "slot {slot} below the limit has no chunk");
            return Err(CapacityError::SlotOutOfRange {
                slot,
                last: self.max_slots_per_branch - 1,
            });
        };
        match &self.journal {
            None => {
                word.set_capacity(capacity);
            }
            Some(j) => self.durably(j, || {
                let _order = j.capacity_stripe(branch.0, slot).lock();
                j.commit(Change::Capacity {
                    branch: branch.0,
                    slot,
                    capacity,
                })
                .map_err(CapacityError::Journal)?;
                word.set_capacity(capacity);
                Ok::<(), CapacityError>(())
            })?,
        }
        b.sync_full(slot);
        self.sweep_due(self.now_ns());
        Ok(state_of(word.load()))
    }

    /// The state of one slot, or `None` if it was never opened.
    ///
    /// ```
    /// use surgegate::{BranchId, SlotBook, SlotState};
    ///
    /// let book = SlotBook::builder().build();
    /// assert_eq!(book.slot(BranchId(1), 3), None);
    /// book.set_capacity(BranchId(1), 3, 5)?;
    /// assert_eq!(book.slot(BranchId(1), 3), Some(SlotState { capacity: 5, held: 0, booked: 0 }));
    /// # Ok::<(), surgegate::CapacityError>(())
    /// ```
    pub fn slot(&self, branch: BranchId, slot: SlotIndex) -> Option<SlotState> {
        let b = self.branches.get(branch)?;
        let word = b.word(slot)?;
        self.sweep_due(self.now_ns());
        let p = word.load();
        p.is_open().then(|| state_of(p))
    }

    /// Every opened slot of `branch` in `slots`, in index order. Unknown branches and empty
    /// ranges give an empty list. At most `max_slots_per_branch` entries.
    ///
    /// ```
    /// use surgegate::{BranchId, SlotBook};
    ///
    /// let book = SlotBook::builder().build();
    /// for day in [0, 1, 5] {
    ///     book.set_capacity(BranchId(2), day, 10)?;
    /// }
    /// let open: Vec<u32> = book.availability(BranchId(2), 0..365).iter().map(|(s, _)| *s).collect();
    /// assert_eq!(open, [0, 1, 5]);
    /// # Ok::<(), surgegate::CapacityError>(())
    /// ```
    pub fn availability(
        &self,
        branch: BranchId,
        slots: impl RangeBounds<SlotIndex>,
    ) -> Vec<(SlotIndex, SlotState)> {
        let Some((first, last)) = inclusive(&slots) else {
            return Vec::new();
        };
        let Some(b) = self.branches.get(branch) else {
            return Vec::new();
        };
        if first >= self.max_slots_per_branch {
            return Vec::new();
        }
        let last = last.min(self.max_slots_per_branch - 1);
        self.sweep_due(self.now_ns());
        b.open_slots(first, last)
            .map(|(s, p)| (s, state_of(p)))
            .collect()
    }

    /// Holds one unit of `slot` at `branch` for `applicant` until `hold_ttl` from now.
    ///
    /// If the applicant already holds this slot, returns that same hold (a retry never takes a
    /// second unit).
    ///
    /// ```
    /// use surgegate::{ApplicantId, BranchId, ReserveError, SlotBook};
    ///
    /// let book = SlotBook::builder().build();
    /// book.set_capacity(BranchId(1), 0, 1)?;
    /// let hold = book.reserve(BranchId(1), 0, ApplicantId(1))?;
    /// assert_eq!(book.reserve(BranchId(1), 0, ApplicantId(1))?, hold); // a retry
    /// assert_eq!(book.reserve(BranchId(1), 0, ApplicantId(2)), Err(ReserveError::Full));
    /// assert_eq!(book.reserve(BranchId(1), 9, ApplicantId(2)), Err(ReserveError::UnknownSlot));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reserve(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        applicant: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        let b = self.branches.get(branch).ok_or(ReserveError::UnknownSlot)?;
        let word = b.word(slot).ok_or(ReserveError::UnknownSlot)?;
        if !word.load().is_open() {
            return Err(ReserveError::UnknownSlot);
        }
        self.reserve_with(
            applicant,
            |r| r.branch == branch && r.slot == slot,
            || match word.try_hold() {
                Ok(after) => {
                    if after.is_full() {
                        b.sync_full(slot);
                    }
                    Ok(Some((BranchRef::new(b), slot)))
                }
                Err(HoldRefused::NotOpen) => Err(ReserveError::UnknownSlot),
                Err(HoldRefused::Full) => Ok(None),
            },
            ReserveError::Full,
        )
    }

    /// Holds one unit of the lowest-indexed slot in `slots` at `branch` that has room.
    ///
    /// If the applicant already holds a slot of this branch in the range, returns that hold.
    /// Full slots are skipped 64 at a time.
    ///
    /// ```
    /// use surgegate::{ApplicantId, BranchId, ReserveError, SlotBook};
    ///
    /// let book = SlotBook::builder().build();
    /// for slot in 0..10 {
    ///     book.set_capacity(BranchId(3), slot, 1)?;
    /// }
    /// book.reserve(BranchId(3), 0, ApplicantId(1))?;
    /// let hold = book.reserve_earliest(BranchId(3), 0..10, ApplicantId(2))?;
    /// assert_eq!(hold.slot, 1);
    /// assert_eq!(book.reserve_earliest(BranchId(3), 5..5, ApplicantId(3)), Err(ReserveError::EmptyRange));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reserve_earliest(
        &self,
        branch: BranchId,
        slots: impl RangeBounds<SlotIndex>,
        applicant: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        let (first, last) = inclusive(&slots).ok_or(ReserveError::EmptyRange)?;
        let b = self.branches.get(branch).ok_or(ReserveError::UnknownSlot)?;
        if first >= self.max_slots_per_branch {
            return Err(ReserveError::NoneAvailable);
        }
        let last = last.min(self.max_slots_per_branch - 1);
        // Reclaim expired holds first, so that an expired hold cannot make a later slot look
        // like the earliest one with room.
        self.sweep_due(self.now_ns());
        self.reserve_with(
            applicant,
            |r| r.branch == branch && (first..=last).contains(&r.slot),
            || {
                let mut from = first;
                while let Some(slot) = b.first_not_full(from, last) {
                    if let Some(word) = b.word(slot) {
                        if let Ok(after) = word.try_hold() {
                            if after.is_full() {
                                b.sync_full(slot);
                            }
                            return Ok(Some((BranchRef::new(b), slot)));
                        }
                        // Filled (or its bit was stale) since the scan: fix the bit, go on.
                        b.sync_full(slot);
                    }
                    match slot.checked_add(1) {
                        Some(next) if next <= last => from = next,
                        _ => break,
                    }
                }
                Ok(None)
            },
            ReserveError::NoneAvailable,
        )
    }

    /// The common part of both reservations: under the applicant's shard lock, reclaim the
    /// applicant's expired holds, return a matching live hold if there is one, check the limits,
    /// then `take` a unit. If `take` finds no room and something may have expired, sweep and try
    /// once more.
    fn reserve_with(
        &self,
        applicant: ApplicantId,
        matches: impl Fn(&Record) -> bool,
        mut take: impl FnMut() -> Result<Option<(BranchRef, SlotIndex)>, ReserveError>,
        when_full: ReserveError,
    ) -> Result<Hold, ReserveError> {
        let shard_index = self.shard_of_applicant(applicant);
        let shard = &self.shards[shard_index];
        let mut swept = false;
        loop {
            let mut ledger = shard.ledger.lock();
            // Read the time under the lock, so that grant times (and so expiry times) enter the
            // shard's expiry queue in order.
            let now = self.now_ns();
            let view = ledger.applicant_view(applicant, now, &matches);
            if let Some((token, r)) = view.existing {
                return Ok(self.hold_of(token, &r));
            }
            if view.active >= self.max_active_per_applicant {
                return Err(ReserveError::ApplicantLimit);
            }
            if ledger.live_holds >= self.max_holds_per_shard {
                ledger.reclaim_expired(now, &shard.front_ns, &self.hint);
                if ledger.live_holds >= self.max_holds_per_shard {
                    return Err(ReserveError::TooManyHolds);
                }
            }
            match take()? {
                Some((at, slot)) => {
                    let mut token = self.new_token(shard_index);
                    while ledger.records.contains_key(&token) {
                        token = self.new_token(shard_index);
                    }
                    let record = Record {
                        branch: at.get().id(),
                        slot,
                        applicant,
                        at,
                        state: State::Held {
                            expires_ns: now.saturating_add(self.hold_ttl_ns),
                        },
                    };
                    ledger.insert(token, record, &shard.front_ns, &self.hint);
                    return Ok(self.hold_of(token, &record));
                }
                None => {
                    drop(ledger);
                    if !swept && ExpiryHint::is_due(self.hint.load(), now) {
                        self.sweep_due(now);
                        swept = true;
                        continue;
                    }
                    return Err(when_full);
                }
            }
        }
    }

    fn hold_of(&self, token: u128, r: &Record) -> Hold {
        let expires_ns = match r.state {
            State::Held { expires_ns } => expires_ns,
            State::Booked => u64::MAX,
        };
        Hold {
            token: HoldToken(token),
            branch: r.branch,
            slot: r.slot,
            applicant: r.applicant,
            expires_at: Duration::from_nanos(expires_ns),
        }
    }

    fn booking_of(token: u128, r: &Record) -> Booking {
        Booking {
            token: HoldToken(token),
            branch: r.branch,
            slot: r.slot,
            applicant: r.applicant,
        }
    }

    /// Turns a live hold into a booking. Confirming a booked token returns the same booking.
    ///
    /// ```
    /// use std::time::Duration;
    /// use surgegate::{ApplicantId, BranchId, ConfirmError, ManualClock, SlotBook};
    ///
    /// let clock = ManualClock::new();
    /// let book = SlotBook::builder().hold_ttl(Duration::from_secs(60)).clock(clock.clone()).build();
    /// book.set_capacity(BranchId(1), 0, 1)?;
    ///
    /// let hold = book.reserve(BranchId(1), 0, ApplicantId(1))?;
    /// clock.advance(Duration::from_secs(60));
    /// assert!(matches!(book.confirm(hold.token), Err(ConfirmError::Expired | ConfirmError::UnknownToken)));
    ///
    /// let hold = book.reserve(BranchId(1), 0, ApplicantId(1))?;
    /// let booking = book.confirm(hold.token)?;
    /// assert_eq!(book.confirm(hold.token)?, booking); // a retry
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn confirm(&self, token: HoldToken) -> Result<Booking, ConfirmError> {
        match self.journal.as_deref() {
            // The body is inlined with `None`, so an in-memory book pays one untaken branch.
            None => self.confirm_in(token, None),
            Some(j) => self.confirm_durable(token, j),
        }
    }

    #[cold]
    #[inline(never)]
    fn confirm_durable(&self, token: HoldToken, j: &Journal) -> Result<Booking, ConfirmError> {
        self.durably(j, || self.confirm_in(token, Some(j)))
    }

    #[inline(always)]
    fn confirm_in(
        &self,
        token: HoldToken,
        journal: Option<&Journal>,
    ) -> Result<Booking, ConfirmError> {
        let shard = &self.shards[self.shard_of_token(token.0)];
        let mut guard = shard.ledger.lock();
        let now = self.now_ns();
        let ledger = &mut *guard;
        let Some(record) = ledger.records.get_mut(&token.0) else {
            return Err(ConfirmError::UnknownToken);
        };
        match record.state {
            State::Booked => Ok(Self::booking_of(token.0, record)),
            State::Held { expires_ns } if expires_ns <= now => {
                if let Some(r) = ledger.remove(token.0) {
                    return_unit(&r);
                }
                Err(ConfirmError::Expired)
            }
            State::Held { .. } => {
                let Some(word) = record.at.get().word(record.slot) else {
                    debug_assert!(false, "hold on a slot that does not exist: {record:?}");
                    return Err(ConfirmError::UnknownToken);
                };
                if let Some(j) = journal {
                    // Under the shard lock: no release of this token can be journaled before
                    // its booking, and the hold cannot be reclaimed meanwhile.
                    j.commit(Change::Booked {
                        token: token.0,
                        branch: record.branch.0,
                        slot: record.slot,
                        applicant: record.applicant.0,
                    })
                    .map_err(ConfirmError::Journal)?;
                }
                // Held to booked: `held + booked` is unchanged, so the full bit is too.
                word.confirm();
                record.state = State::Booked;
                let booking = Self::booking_of(token.0, record);
                ledger.live_holds -= 1;
                Ok(booking)
            }
        }
    }

    /// The booking with this token, if it is booked: "my appointment".
    ///
    /// ```
    /// use surgegate::{ApplicantId, BranchId, SlotBook};
    ///
    /// let book = SlotBook::builder().build();
    /// book.set_capacity(BranchId(1), 4, 1)?;
    /// let hold = book.reserve(BranchId(1), 4, ApplicantId(9))?;
    /// assert_eq!(book.booking(hold.token), None); // held, not booked yet
    /// book.confirm(hold.token)?;
    /// assert_eq!(book.booking(hold.token).map(|b| b.slot), Some(4));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn booking(&self, token: HoldToken) -> Option<Booking> {
        let shard = &self.shards[self.shard_of_token(token.0)];
        let ledger = shard.ledger.lock();
        let r = ledger.records.get(&token.0)?;
        (r.state == State::Booked).then(|| Self::booking_of(token.0, r))
    }

    /// Gives back a hold or cancels a booking; its unit is free at once.
    ///
    /// ```
    /// use surgegate::{ApplicantId, BranchId, ReleaseError, SlotBook};
    ///
    /// let book = SlotBook::builder().build();
    /// book.set_capacity(BranchId(1), 0, 1)?;
    /// let hold = book.reserve(BranchId(1), 0, ApplicantId(1))?;
    /// book.release(hold.token)?;
    /// assert_eq!(book.release(hold.token), Err(ReleaseError::UnknownToken));
    /// assert_eq!(book.slot(BranchId(1), 0).unwrap().remaining(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(&self, token: HoldToken) -> Result<(), ReleaseError> {
        match self.journal.as_deref() {
            // As in `confirm`: an in-memory book pays one untaken branch.
            None => self.release_in(token, None),
            Some(j) => self.release_durable(token, j),
        }
    }

    #[cold]
    #[inline(never)]
    fn release_durable(&self, token: HoldToken, j: &Journal) -> Result<(), ReleaseError> {
        self.durably(j, || self.release_in(token, Some(j)))
    }

    #[inline(always)]
    fn release_in(&self, token: HoldToken, journal: Option<&Journal>) -> Result<(), ReleaseError> {
        let shard = &self.shards[self.shard_of_token(token.0)];
        let mut ledger = shard.ledger.lock();
        let now = self.now_ns();
        if let Some(j) = journal
            && ledger
                .records
                .get(&token.0)
                .is_some_and(|r| r.state == State::Booked)
        {
            // Holds are not journaled; a booking's cancellation is, before it takes effect.
            j.commit(Change::Cancelled { token: token.0 })
                .map_err(ReleaseError::Journal)?;
        }
        let Some(record) = ledger.remove(token.0) else {
            return Err(ReleaseError::UnknownToken);
        };
        return_unit(&record);
        if record.is_expired_hold(now) {
            // Already lapsed: its unit was free in every reading; we just reclaimed it.
            return Err(ReleaseError::UnknownToken);
        }
        Ok(())
    }

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
        self.sweep_at(self.now_ns(), false)
    }

    /// Sweeps only if the expiry hint says something may be due: one load otherwise.
    fn sweep_due(&self, now: u64) -> usize {
        if ExpiryHint::is_due(self.hint.load(), now) {
            self.sweep_at(now, true)
        } else {
            0
        }
    }

    fn sweep_at(&self, now: u64, only_if_due: bool) -> usize {
        let mut reclaimed = 0;
        for _ in 0..4 {
            let h0 = self.hint.load();
            if only_if_due && !ExpiryHint::is_due(h0, now) {
                break;
            }
            let mut min_front = u64::MAX;
            for shard in self.shards.iter() {
                // Ordering: SeqCst, part of the expiry-hint protocol (see `ExpiryHint`).
                if shard.front_ns.load(Ordering::SeqCst) <= now {
                    let mut ledger = shard.ledger.lock();
                    reclaimed += ledger.reclaim_expired(now, &shard.front_ns, &self.hint);
                }
                min_front = min_front.min(shard.front_ns.load(Ordering::SeqCst));
            }
            if self.hint.try_raise(h0, min_front) {
                break;
            }
        }
        reclaimed
    }

    /// Checks every invariant of the book against its records; returns its totals.
    ///
    /// Locks every shard in turn order and holds them all while counting, so it is exact even
    /// while other threads call the book (they wait). It costs O(records + open slots): meant for
    /// tests, audits and health checks, not for every request.
    ///
    /// Checks: each slot's held and booked counts equal its hold and booking records; taken units
    /// fit the counter; each slot's full bit matches its counts (exact only while no
    /// `set_capacity` call is in flight); applicant index and records agree; no applicant exceeds
    /// `max_active_per_applicant` live holds plus bookings; each shard's hold count, expiry queue
    /// (ordered, covering every hold) and published front are right; the expiry hint is at or
    /// below every front.
    pub fn check_invariants(&self) -> Result<BookTotals, InvariantViolation> {
        use std::collections::HashMap;
        let now = self.now_ns();
        let guards: Vec<_> = self.shards.iter().map(|s| s.ledger.lock()).collect();
        let mut totals = BookTotals::default();
        let mut per_slot: HashMap<(BranchId, SlotIndex), (u32, u32)> = HashMap::new();
        for (index, ledger) in guards.iter().enumerate() {
            let mut holds = 0usize;
            let mut per_applicant: HashMap<ApplicantId, usize> = HashMap::new();
            let queued: std::collections::HashSet<(u64, u128)> =
                ledger.expiry.iter().copied().collect();
            for (&token, r) in ledger.records.iter() {
                ensure!(
                    self.shard_of_token(token) == index,
                    "token {token:032x} stored in shard {index}"
                );
                ensure!(
                    self.shard_of_applicant(r.applicant) == index,
                    "{} stored in shard {index}",
                    r.applicant
                );
                ensure!(
                    ledger.tokens_of(r.applicant).any(|t| t == token),
                    "record {token:032x} missing from its applicant's index"
                );
                let counts = per_slot.entry((r.branch, r.slot)).or_default();
                match r.state {
                    State::Held { expires_ns } => {
                        holds += 1;
                        counts.0 += 1;
                        totals.holds += 1;
                        if expires_ns <= now {
                            totals.expired_holds += 1;
                        } else {
                            *per_applicant.entry(r.applicant).or_default() += 1;
                        }
                        ensure!(
                            queued.contains(&(expires_ns, token)),
                            "hold {token:032x} missing from the expiry queue"
                        );
                    }
                    State::Booked => {
                        counts.1 += 1;
                        totals.bookings += 1;
                        *per_applicant.entry(r.applicant).or_default() += 1;
                    }
                }
            }
            ensure!(
                holds == ledger.live_holds,
                "shard {index} counts {} holds but has {holds}",
                ledger.live_holds
            );
            for (a, n) in per_applicant {
                ensure!(
                    n <= self.max_active_per_applicant,
                    "{a} has {n} live holds and bookings, above the limit {}",
                    self.max_active_per_applicant
                );
            }
            let index_size: usize = ledger.applicants.values().map(|t| t.iter().count()).sum();
            ensure!(
                index_size == ledger.records.len(),
                "shard {index}: applicant index has {index_size} tokens for {} records",
                ledger.records.len()
            );
            ensure!(
                ledger
                    .expiry
                    .iter()
                    .zip(ledger.expiry.iter().skip(1))
                    .all(|(a, b)| a.0 <= b.0),
                "shard {index}: expiry queue out of order"
            );
            let front = ledger.expiry.front().map_or(u64::MAX, |&(e, _)| e);
            let published = self.shards[index].front_ns.load(Ordering::SeqCst);
            ensure!(
                published == front,
                "shard {index}: published front {published} but queue front {front}"
            );
            ensure!(
                ExpiryHint::bound_ns(self.hint.load()) <= front,
                "expiry hint above shard {index}'s front {front}"
            );
        }
        for b in self.branches.iter() {
            totals.branches += 1;
            for (slot, p) in b.all_slots() {
                // Only slots with units taken can have records; records left over in `per_slot`
                // at the end (on slots whose counts say zero) are caught below.
                let (held, booked) = if p.taken() > 0 {
                    per_slot.remove(&(b.id(), slot)).unwrap_or((0, 0))
                } else {
                    (0, 0)
                };
                ensure!(
                    p.held() == held && p.booked() == booked,
                    "{} slot {slot}: counter says held {} booked {}, records say held {held} booked {booked}",
                    b.id(),
                    p.held(),
                    p.booked()
                );
                ensure!(
                    p.taken() <= MAX_CAPACITY,
                    "{} slot {slot}: {} taken, above the counter's range",
                    b.id(),
                    p.taken()
                );
                ensure!(
                    b.full_bit(slot) == Some(p.is_full()),
                    "{} slot {slot}: full bit {:?} but the slot is {}",
                    b.id(),
                    b.full_bit(slot),
                    if p.is_full() { "full" } else { "not full" }
                );
                if p.is_open() {
                    totals.open_slots += 1;
                    totals.capacity += u64::from(p.capacity());
                } else {
                    ensure!(
                        held == 0 && booked == 0,
                        "{} slot {slot}: records on a slot never opened",
                        b.id()
                    );
                }
            }
        }
        ensure!(
            per_slot.is_empty(),
            "records on slots that do not exist: {:?}",
            per_slot.keys().take(3).collect::<Vec<_>>()
        );
        drop(guards);
        Ok(totals)
    }

    /// The book's clock.
    pub fn clock(&self) -> &C {
        &self.clock
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

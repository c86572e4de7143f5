//! The builder: every limit of a book, checked before anything is allocated, by rules that the
//! Redis book's builder shares (`check_hold_ttl`, `check_max_active_per_applicant`).

use std::time::Duration;

use crossbeam_utils::CachePadded;

use super::standby::Standby;
use super::{BookConfigError, BranchTable, CAPACITY_STRIPES, ExpiryHint, Shard, SlotBook};
use crate::clock::{Clock, SystemClock, duration_to_ns};
use crate::journal::Journal;
use crate::sync::AtomicU64;

/// The shortest hold, on every backend (a shared store keeps whole milliseconds).
pub(crate) const MIN_HOLD_TTL: Duration = Duration::from_millis(1);
/// The longest hold, on every backend.
pub(crate) const MAX_HOLD_TTL: Duration = Duration::from_secs(86_400);
/// The most live holds plus bookings an applicant may be allowed, on every backend.
const MAX_ACTIVE_PER_APPLICANT: u32 = 1024;

/// A hold lifetime of 1 ms to 24 h: the one rule for every backend.
pub(crate) fn check_hold_ttl(ttl: Duration) -> Result<(), BookConfigError> {
    if (MIN_HOLD_TTL..=MAX_HOLD_TTL).contains(&ttl) {
        Ok(())
    } else {
        Err(BookConfigError::HoldTtl(ttl))
    }
}

/// A bound on waiting standby requests of 1 to 2^24: the one rule for every backend.
pub(crate) fn check_max_standby_requests(n: u32) -> Result<(), BookConfigError> {
    if (1..=1 << 24).contains(&n) {
        Ok(())
    } else {
        Err(BookConfigError::MaxStandbyRequests(n))
    }
}

/// An applicant limit of 1 to 1024: the one rule for every backend.
pub(crate) fn check_max_active_per_applicant(n: u32) -> Result<(), BookConfigError> {
    if (1..=MAX_ACTIVE_PER_APPLICANT).contains(&n) {
        Ok(())
    } else {
        Err(BookConfigError::MaxActivePerApplicant(n))
    }
}

/// Builds a [`SlotBook`]. Every limit has a default; see each setter.
#[derive(Clone, Debug)]
#[must_use]
pub struct SlotBookBuilder<C = SystemClock> {
    clock: C,
    pub(super) settings: Settings,
}

/// Every setting of a builder but its clock, so that changing the clock type moves them as one.
#[derive(Clone, Debug)]
pub(super) struct Settings {
    pub(super) hold_ttl: Duration,
    pub(super) max_active_per_applicant: u32,
    pub(super) max_branches: u32,
    pub(super) max_slots_per_branch: u32,
    pub(super) max_slot_chunks: u32,
    pub(super) max_live_holds: u64,
    pub(super) shards: u32,
    pub(super) max_standby_requests: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            hold_ttl: Duration::from_secs(600),
            max_active_per_applicant: 1,
            max_branches: 16_384,
            max_slots_per_branch: 65_536,
            max_slot_chunks: 1 << 18,
            max_live_holds: 1 << 22,
            shards: 64,
            max_standby_requests: 1 << 20,
        }
    }
}

impl Default for SlotBookBuilder<SystemClock> {
    fn default() -> Self {
        Self {
            clock: SystemClock::new(),
            settings: Settings::default(),
        }
    }
}

impl<C: Clock> SlotBookBuilder<C> {
    /// How long a hold lasts before it must be confirmed. Default 10 minutes; 1 ms to 24 hours
    /// (the same range on Redis).
    pub fn hold_ttl(mut self, ttl: Duration) -> Self {
        self.settings.hold_ttl = ttl;
        self
    }

    /// The most live holds plus bookings one applicant may have at once. Default 1; at most 1024.
    pub fn max_active_per_applicant(mut self, n: u32) -> Self {
        self.settings.max_active_per_applicant = n;
        self
    }

    /// The most branches the book will create. Default 16 384; at most 2^20. The branch table,
    /// two to four 8-byte cells per branch of the limit, is allocated up front.
    pub fn max_branches(mut self, n: u32) -> Self {
        self.settings.max_branches = n;
        self
    }

    /// Slot indices run from 0 to `n - 1`. Default 65 536 (a year of 15-minute windows fits);
    /// at most 2^22. Slot counters are allocated 512 at a time, only where slots are opened.
    pub fn max_slots_per_branch(mut self, n: u32) -> Self {
        self.settings.max_slots_per_branch = n;
        self
    }

    /// The most chunks of slot counters the book allocates. A chunk holds 512 consecutive slot
    /// indices of one branch (4.1 KiB) and is allocated when the first slot in it is opened, so
    /// this bounds the book's memory for slots: at most `n` × 4.1 KiB, plus about 1 KiB of
    /// directory per branch at the largest `max_slots_per_branch`. Default 2^18 (a bound of
    /// 1.1 GiB; 16 384 branches with a year of 30-minute windows each use 49 152); at most
    /// 2^24. When reached, `set_capacity` of a slot in a new chunk is
    /// [`CapacityError::TooManySlotChunks`](crate::CapacityError::TooManySlotChunks).
    pub fn max_slot_chunks(mut self, n: u32) -> Self {
        self.settings.max_slot_chunks = n;
        self
    }

    /// The most unconfirmed holds the book keeps at once. Default 2^22; at most 2^32. The limit is
    /// split evenly across the lock shards (each shard keeps at most `ceil(n / shards)`).
    pub fn max_live_holds(mut self, n: u64) -> Self {
        self.settings.max_live_holds = n;
        self
    }

    /// The most standby requests waiting at once ([`SlotBook::standby`]); beyond it `standby`
    /// is [`StandbyError::LineFull`](crate::StandbyError::LineFull). Default 2^20; at most
    /// 2^24. A waiting request costs a few hundred bytes (BENCHMARKS.md gives the measure).
    pub fn max_standby_requests(mut self, n: u32) -> Self {
        self.settings.max_standby_requests = n;
        self
    }

    /// Number of lock shards for hold and booking records: a power of two, 1 to 256. Default 64.
    pub fn shards(mut self, n: u32) -> Self {
        self.settings.shards = n;
        self
    }

    /// The clock the book reads time from. Default: a [`SystemClock`] created with the builder.
    pub fn clock<C2: Clock>(self, clock: C2) -> SlotBookBuilder<C2> {
        SlotBookBuilder {
            clock,
            settings: self.settings,
        }
    }

    /// Builds the book in memory, or says which setting is out of range. For a durable book,
    /// see [`open`](Self::open) and [`durable`](Self::durable).
    pub fn try_build(self) -> Result<SlotBook<C>, BookConfigError> {
        self.validate()?;
        let shards = self.settings.shards;
        Ok(self.assemble(shards, crate::sync::random_key(), None))
    }

    pub(super) fn validate(&self) -> Result<(), BookConfigError> {
        check_hold_ttl(self.settings.hold_ttl)?;
        check_max_active_per_applicant(self.settings.max_active_per_applicant)?;
        if !(1..=1 << 20).contains(&self.settings.max_branches) {
            return Err(BookConfigError::MaxBranches(self.settings.max_branches));
        }
        if !(1..=1 << 22).contains(&self.settings.max_slots_per_branch) {
            return Err(BookConfigError::MaxSlotsPerBranch(
                self.settings.max_slots_per_branch,
            ));
        }
        if !(1..=1 << 24).contains(&self.settings.max_slot_chunks) {
            return Err(BookConfigError::MaxSlotChunks(
                self.settings.max_slot_chunks,
            ));
        }
        if !(1..=1 << 32).contains(&self.settings.max_live_holds) {
            return Err(BookConfigError::MaxLiveHolds(self.settings.max_live_holds));
        }
        if !(1..=256).contains(&self.settings.shards) || !self.settings.shards.is_power_of_two() {
            return Err(BookConfigError::Shards(self.settings.shards));
        }
        check_max_standby_requests(self.settings.max_standby_requests)
    }

    /// The book, with `shards` lock shards and applicants spread over them by `shard_seed`.
    pub(super) fn assemble(
        self,
        shards: u32,
        shard_seed: u64,
        journal: Option<Box<Journal>>,
    ) -> SlotBook<C> {
        let map_hasher = crate::sync::random_state();
        SlotBook {
            hold_ttl_ns: duration_to_ns(self.settings.hold_ttl),
            max_active_per_applicant: self.settings.max_active_per_applicant as usize,
            max_slots_per_branch: self.settings.max_slots_per_branch,
            max_branches: self.settings.max_branches,
            max_slot_chunks: self.settings.max_slot_chunks,
            max_holds_per_shard: self.settings.max_live_holds.div_ceil(u64::from(shards)) as usize,
            shard_mask: shards as usize - 1,
            shard_seed,
            branches: BranchTable::new(
                self.settings.max_branches,
                self.settings.max_slots_per_branch,
                self.settings.max_slot_chunks,
            ),
            shards: (0..shards)
                .map(|_| CachePadded::new(Shard::new(map_hasher.clone())))
                .collect(),
            hint: CachePadded::new(ExpiryHint::new()),
            latest_ns: CachePadded::new(AtomicU64::new(0)),
            capacity_stripes: (0..CAPACITY_STRIPES)
                .map(|_| crate::sync::Mutex::new(()))
                .collect(),
            standby: Standby::new(
                self.settings.max_standby_requests as usize,
                duration_to_ns(self.settings.hold_ttl),
            ),
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

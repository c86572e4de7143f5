//! One slot's counts packed into one atomic word.
//!
//! Guarantee: a hold is granted by a single compare-and-swap that checks and increments in one
//! step, so `held + booked` can never pass `capacity` through a grant, whatever the interleaving.
//! Because all four numbers live in one word, every reading is a consistent snapshot.
//!
//! Layout (most significant first):
//!
//! | bit 63 | bits 62..42 | bits 41..21 | bits 20..0 |
//! |--------|-------------|-------------|------------|
//! | open   | capacity    | held        | booked     |
//!
//! Each count has 21 bits, so capacity is at most [`MAX_CAPACITY`]. `held + booked` never exceeds
//! the largest capacity the slot ever had (a grant needs `held + booked < capacity`), so no field
//! can overflow into its neighbour.

use crate::sync::{AtomicU64, Ordering};

const FIELD_BITS: u32 = 21;
const FIELD_MASK: u64 = (1 << FIELD_BITS) - 1;
const BOOKED_SHIFT: u32 = 0;
const HELD_SHIFT: u32 = FIELD_BITS;
const CAP_SHIFT: u32 = 2 * FIELD_BITS;
const OPEN_BIT: u64 = 1 << 63;
const HELD_ONE: u64 = 1 << HELD_SHIFT;
const BOOKED_ONE: u64 = 1 << BOOKED_SHIFT;

/// The largest capacity a slot can have: 2 097 151.
pub const MAX_CAPACITY: u32 = FIELD_MASK as u32;

/// A snapshot of one slot word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Packed(u64);

impl Packed {
    pub(crate) fn is_open(self) -> bool {
        self.0 & OPEN_BIT != 0
    }
    pub(crate) fn capacity(self) -> u32 {
        ((self.0 >> CAP_SHIFT) & FIELD_MASK) as u32
    }
    pub(crate) fn held(self) -> u32 {
        ((self.0 >> HELD_SHIFT) & FIELD_MASK) as u32
    }
    pub(crate) fn booked(self) -> u32 {
        ((self.0 >> BOOKED_SHIFT) & FIELD_MASK) as u32
    }
    pub(crate) fn taken(self) -> u32 {
        self.held() + self.booked()
    }
    /// True when no hold can be granted: not open, or `held + booked >= capacity`.
    pub(crate) fn is_full(self) -> bool {
        !self.is_open() || self.taken() >= self.capacity()
    }
}

impl core::fmt::Debug for Packed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Packed")
            .field("open", &self.is_open())
            .field("capacity", &self.capacity())
            .field("held", &self.held())
            .field("booked", &self.booked())
            .finish()
    }
}

/// Why [`SlotWord::try_hold`] granted nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HoldRefused {
    /// The slot was never opened with a capacity.
    NotOpen,
    /// `held + booked >= capacity`.
    Full,
}

/// The atomic counts of one slot.
///
/// Ordering: every operation is `SeqCst`. The counts themselves would be safe with `Relaxed`
/// (read-modify-writes of one location are totally ordered whatever the ordering), but the
/// full-slot bitmap protocol (`Chunk::sync_full`) reasons about the single total order of slot
/// words *and* bitmap words, which only `SeqCst` provides. On x86-64 a `SeqCst` RMW costs the
/// same as any other locked instruction and a `SeqCst` load is a plain load.
#[derive(Debug)]
pub(crate) struct SlotWord(AtomicU64);

impl SlotWord {
    pub(crate) fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    pub(crate) fn load(&self) -> Packed {
        Packed(self.0.load(Ordering::SeqCst))
    }

    /// Takes one unit as a hold if `held + booked < capacity`. Returns the word after the grant.
    #[inline]
    pub(crate) fn try_hold(&self) -> Result<Packed, HoldRefused> {
        let mut current = self.0.load(Ordering::SeqCst);
        loop {
            let p = Packed(current);
            if !p.is_open() {
                return Err(HoldRefused::NotOpen);
            }
            if p.taken() >= p.capacity() {
                return Err(HoldRefused::Full);
            }
            let next = current + HELD_ONE;
            match self
                .0
                .compare_exchange_weak(current, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return Ok(Packed(next)),
                Err(actual) => current = actual,
            }
        }
    }

    /// Turns one held unit into a booked one. The caller owns a live hold on this slot.
    /// Returns the word before the change.
    #[inline]
    pub(crate) fn confirm(&self) -> Packed {
        // Adding BOOKED_ONE - HELD_ONE (mod 2^64) subtracts one from `held` and adds one to
        // `booked` in one RMW; `held >= 1` (the caller's hold) so nothing borrows across fields.
        let before = Packed(
            self.0
                .fetch_add(BOOKED_ONE.wrapping_sub(HELD_ONE), Ordering::SeqCst),
        );
        debug_assert!(
            before.held() >= 1,
            "confirm without a held unit: {before:?}"
        );
        before
    }

    /// Returns one held unit. The caller owns a hold on this slot. Returns the word before.
    #[inline]
    pub(crate) fn release_held(&self) -> Packed {
        let before = Packed(self.0.fetch_sub(HELD_ONE, Ordering::SeqCst));
        debug_assert!(
            before.held() >= 1,
            "release of a hold never taken: {before:?}"
        );
        before
    }

    /// Returns one booked unit. The caller owns a booking on this slot. Returns the word before.
    #[inline]
    pub(crate) fn release_booked(&self) -> Packed {
        let before = Packed(self.0.fetch_sub(BOOKED_ONE, Ordering::SeqCst));
        debug_assert!(
            before.booked() >= 1,
            "release of a booking never made: {before:?}"
        );
        before
    }

    /// Adds one booking during recovery, where the journal, not a hold, vouches for it. Refused
    /// if the slot is not open or its count is at the field's limit.
    pub(crate) fn restore_booked(&self) -> Result<Packed, HoldRefused> {
        let mut current = self.0.load(Ordering::SeqCst);
        loop {
            let p = Packed(current);
            if !p.is_open() {
                return Err(HoldRefused::NotOpen);
            }
            if p.taken() >= MAX_CAPACITY {
                return Err(HoldRefused::Full);
            }
            match self.0.compare_exchange_weak(
                current,
                current + BOOKED_ONE,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return Ok(Packed(current + BOOKED_ONE)),
                Err(actual) => current = actual,
            }
        }
    }

    /// Sets the capacity of an open slot to 0 (closing it), keeping its holds and bookings.
    /// Returns the word just before, in the same atomic step: exactly what was taken when the
    /// slot stopped granting holds.
    pub(crate) fn close(&self) -> Packed {
        let before = self
            .0
            .fetch_and(!(FIELD_MASK << CAP_SHIFT), Ordering::SeqCst);
        Packed(before)
    }

    /// Changes the slot's counts and capacity field in one step, for a slot with channel
    /// quotas: `held` and `booked` by the deltas, the capacity field to `capacity`. The caller
    /// holds the chunk's quota lock, under which alone a quota slot's capacity field changes;
    /// `allow` sees the word before and may refuse. Returns the word after the change.
    pub(crate) fn update_quota_slot(
        &self,
        held_delta: i32,
        booked_delta: i32,
        capacity: impl Fn(Packed) -> u32,
        allow: impl Fn(Packed) -> Result<(), HoldRefused>,
    ) -> Result<Packed, HoldRefused> {
        let mut current = self.0.load(Ordering::SeqCst);
        loop {
            let p = Packed(current);
            allow(p)?;
            let held = p.held().checked_add_signed(held_delta);
            let booked = p.booked().checked_add_signed(booked_delta);
            let cap = capacity(p);
            let (Some(held), Some(booked)) = (held, booked) else {
                debug_assert!(false, "a quota change would take a count below zero: {p:?}");
                return Err(HoldRefused::Full);
            };
            debug_assert!(cap <= MAX_CAPACITY && held + booked <= MAX_CAPACITY);
            let next = (current & OPEN_BIT)
                | (u64::from(cap) << CAP_SHIFT)
                | (u64::from(held) << HELD_SHIFT)
                | (u64::from(booked) << BOOKED_SHIFT);
            match self
                .0
                .compare_exchange_weak(current, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return Ok(Packed(next)),
                Err(actual) => current = actual,
            }
        }
    }

    /// Keeps the unit of a hold (`held`) or a booking that is being given back as a held unit
    /// for a standby request, if giving it back would leave the slot room: one CAS, so a
    /// reservation racing it can never take the unit. A booking's unit turns into a held one
    /// (`booked - 1`, `held + 1`); a hold's stays as it is (the CAS only checks that the word,
    /// and so its capacity, is the one decided on). False, with nothing changed, when the
    /// return would leave no room (closed, or capacity lowered below what is taken): then the
    /// caller gives the unit back as usual.
    pub(crate) fn keep_for_standby(&self, held: bool) -> bool {
        let mut current = self.0.load(Ordering::SeqCst);
        loop {
            let p = Packed(current);
            if !p.is_open() || p.taken() > p.capacity() || p.taken() == 0 {
                return false;
            }
            debug_assert!(if held { p.held() >= 1 } else { p.booked() >= 1 });
            let next = if held {
                current
            } else {
                current - BOOKED_ONE + HELD_ONE
            };
            match self
                .0
                .compare_exchange_weak(current, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// Gives a unit back to a slot with channel quotas, in one step: `held` (or `booked`) down
    /// by one and the capacity field to `capacity`; and if `give` and that leaves the slot
    /// room, the unit is kept as held for a standby request instead (then `held` is one more
    /// than that). Returns the word after and whether the unit was kept.
    pub(crate) fn return_quota_unit(
        &self,
        held: bool,
        capacity: u32,
        give: bool,
    ) -> (Packed, bool) {
        let mut current = self.0.load(Ordering::SeqCst);
        loop {
            let p = Packed(current);
            let (h, b) = if held {
                (p.held().saturating_sub(1), p.booked())
            } else {
                (p.held(), p.booked().saturating_sub(1))
            };
            let keep = give && p.is_open() && h + b < capacity;
            let h = h + u32::from(keep);
            let next = (current & OPEN_BIT)
                | (u64::from(capacity) << CAP_SHIFT)
                | (u64::from(h) << HELD_SHIFT)
                | (u64::from(b) << BOOKED_SHIFT);
            match self
                .0
                .compare_exchange_weak(current, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return (Packed(next), keep),
                Err(actual) => current = actual,
            }
        }
    }

    /// Sets the capacity field to `capacity` (and opens the slot if `open`), and in the same
    /// step holds up to `want` of the units that leaves free, for standby requests. Returns the
    /// word after and how many units it held.
    pub(crate) fn set_capacity_giving(
        &self,
        capacity: u32,
        want: u32,
        open: bool,
    ) -> (Packed, u32) {
        debug_assert!(capacity <= MAX_CAPACITY);
        let mut current = self.0.load(Ordering::SeqCst);
        loop {
            let p = Packed(current);
            let is_open = open || p.is_open();
            let granted = if is_open {
                want.min(capacity.saturating_sub(p.taken()))
            } else {
                0
            };
            let next = ((current & !(FIELD_MASK << CAP_SHIFT))
                | (u64::from(capacity) << CAP_SHIFT)
                | if open { OPEN_BIT } else { 0 })
                + u64::from(granted) * HELD_ONE;
            match self
                .0
                .compare_exchange_weak(current, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return (Packed(next), granted),
                Err(actual) => current = actual,
            }
        }
    }

    /// Opens the slot (if it was not) with `capacity`, keeping its holds and bookings.
    /// Returns the word after the change.
    pub(crate) fn set_capacity(&self, capacity: u32) -> Packed {
        debug_assert!(capacity <= MAX_CAPACITY);
        let mut current = self.0.load(Ordering::SeqCst);
        loop {
            let next = (current & !(FIELD_MASK << CAP_SHIFT))
                | (u64::from(capacity) << CAP_SHIFT)
                | OPEN_BIT;
            match self
                .0
                .compare_exchange_weak(current, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return Packed(next),
                Err(actual) => current = actual,
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_new_slot_is_closed() {
        let w = SlotWord::new();
        assert!(!w.load().is_open());
        assert!(w.load().is_full());
        assert_eq!(w.try_hold(), Err(HoldRefused::NotOpen));
    }

    #[test]
    fn holds_stop_at_capacity_and_fields_stay_apart() {
        let w = SlotWord::new();
        w.set_capacity(3);
        for i in 1..=3 {
            let after = w.try_hold().unwrap();
            assert_eq!(after.held(), i);
        }
        assert_eq!(w.try_hold(), Err(HoldRefused::Full));
        let before = w.confirm();
        assert_eq!((before.held(), before.booked()), (3, 0));
        let now = w.load();
        assert_eq!((now.capacity(), now.held(), now.booked()), (3, 2, 1));
        w.release_booked();
        w.release_held();
        let now = w.load();
        assert_eq!((now.capacity(), now.held(), now.booked()), (3, 1, 0));
        assert!(!now.is_full());
    }

    #[test]
    fn lowering_capacity_keeps_counts_and_blocks_grants() {
        let w = SlotWord::new();
        w.set_capacity(4);
        for _ in 0..4 {
            w.try_hold().unwrap();
        }
        let after = w.set_capacity(2);
        assert_eq!((after.capacity(), after.held()), (2, 4));
        assert_eq!(w.try_hold(), Err(HoldRefused::Full));
        w.release_held();
        w.release_held();
        assert_eq!(w.try_hold(), Err(HoldRefused::Full), "2 taken of 2");
        w.release_held();
        assert!(w.try_hold().is_ok());
    }

    #[test]
    fn max_capacity_fits_every_field() {
        let w = SlotWord::new();
        w.set_capacity(MAX_CAPACITY);
        assert_eq!(w.load().capacity(), MAX_CAPACITY);
        let mut n = 0u32;
        while w.try_hold().is_ok() {
            n += 1;
        }
        assert_eq!(n, MAX_CAPACITY);
        let p = w.load();
        assert_eq!(
            (p.capacity(), p.held(), p.booked()),
            (MAX_CAPACITY, MAX_CAPACITY, 0)
        );
        assert!(p.is_open());
    }
}

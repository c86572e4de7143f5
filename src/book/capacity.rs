//! Opening, closing and reading slots: `set_capacity`, `close_slot`, `slot` and `availability`.

use std::ops::RangeBounds;

use crate::clock::Clock;
use crate::journal::Change;
use crate::journal::format::CLOSED;

use super::branches::{Refused, quota_key};
use super::channel::ChannelSlot;
use super::error::{CapacityError, CloseError};
use super::types::{BranchId, SlotIndex, SlotState};
use super::word::{MAX_CAPACITY, Packed, SlotWord};
use super::{SlotBook, inclusive, state_of};

impl<C: Clock> SlotBook<C> {
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
        let Some(in_range) = self.branches.in_range(slot) else {
            return Err(CapacityError::SlotOutOfRange {
                slot,
                last: self.max_slots_per_branch - 1,
            });
        };
        if capacity > MAX_CAPACITY {
            return Err(CapacityError::CapacityTooLarge {
                capacity,
                max: MAX_CAPACITY,
            });
        }
        // Holds expired by now give their units back first, so the state returned is current.
        self.sweep_now();
        // Units the raise holds for standby requests come back with the word, and the line
        // stays locked until they are offered, so nothing sees them held for nobody.
        let set = |word: &SlotWord| {
            if let Some(p) = self.set_quota_slot_capacity(branch, slot, capacity)? {
                return Ok((p, None));
            }
            self.journal_capacity(branch, slot, capacity)
                .map_err(CapacityError::Journal)?;
            let (line, numbers) = self.wanting(branch, slot);
            let want = numbers.len() as u32;
            let (after, granted) = word.set_capacity_giving(capacity, want, true);
            Ok((after, line.map(|l| (l, numbers, granted))))
        };
        let change = || {
            // One capacity change or close of a slot at a time: the journal's order is the
            // order they were applied in, and the closed bit agrees with the capacity.
            let _order = self.capacity_stripe(branch, slot).lock();
            let (b, (state, given)) = self.branches.with_slot(branch, in_range, set)?;
            b.set_closed(slot, false);
            if let (Some((mut line, numbers, granted)), Some(at)) = (given, b.slot_ref(slot)) {
                self.give_units(Some(&mut line), &numbers, granted, at, branch, slot);
            }
            Ok((b, state))
        };
        let (b, state) = self.applying(change).map_err(|refused| match refused {
            Refused::TooManyBranches => CapacityError::TooManyBranches {
                max_branches: self.max_branches,
            },
            Refused::TooManyChunks => CapacityError::TooManySlotChunks {
                max_slot_chunks: self.max_slot_chunks,
            },
            Refused::Change(e) => e,
        })?;
        b.sync_full(slot);
        Ok(state_of(state))
    }

    /// Closes a slot: no new hold is granted there, and it leaves [`slot`](Self::slot) and
    /// [`availability`](Self::availability), as if it had never been opened. Its holds and
    /// bookings stay: holds can still be confirmed (they were granted while it was open),
    /// bookings released, and [`bookings_of`](Self::bookings_of) still finds them, so a portal
    /// can tell the people concerned. Returns the slot's state just before it closed.
    /// [`set_capacity`](Self::set_capacity) opens it again. A durable book journals the close.
    ///
    /// Closing an already closed slot is `Ok` and changes nothing.
    ///
    /// ```
    /// use surgegate::{ApplicantId, BranchId, CloseError, ReserveError, SlotBook};
    ///
    /// let book = SlotBook::builder().build();
    /// book.set_capacity(BranchId(1), 0, 5)?;
    /// let hold = book.reserve(BranchId(1), 0, ApplicantId(7))?;
    /// let before = book.close_slot(BranchId(1), 0)?;
    /// assert_eq!((before.capacity, before.held), (5, 1));
    /// assert_eq!(book.slot(BranchId(1), 0), None);
    /// assert!(book.availability(BranchId(1), ..).is_empty());
    /// assert_eq!(book.reserve(BranchId(1), 0, ApplicantId(8)), Err(ReserveError::UnknownSlot));
    /// book.confirm(hold.token)?; // granted while open: still honoured
    /// assert_eq!(book.close_slot(BranchId(1), 9), Err(CloseError::UnknownSlot));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close_slot(&self, branch: BranchId, slot: SlotIndex) -> Result<SlotState, CloseError> {
        self.sweep_now();
        let b = self.branches.get(branch).ok_or(CloseError::UnknownSlot)?;
        let word = b.word(slot).ok_or(CloseError::UnknownSlot)?;
        let before = word.load();
        if !before.is_open() {
            return Err(CloseError::UnknownSlot);
        }
        if b.is_closed(slot) {
            return Ok(state_of(before));
        }
        let close = || {
            let _order = self.capacity_stripe(branch, slot).lock();
            self.journal_capacity(branch, slot, CLOSED)
                .map_err(CloseError::Journal)?;
            // Under the quota lock, so that a quota slot's capacity field and its quotas'
            // closed flag change together.
            let mut quotas = b.quotas(slot);
            let before = word.close();
            if let Some(cs) = quotas.as_mut().and_then(|t| t.get_mut(&quota_key(slot))) {
                cs.closed = true;
            }
            drop(quotas);
            b.set_closed(slot, true);
            Ok::<_, CloseError>(before)
        };
        let before = self.applying(close)?;
        b.sync_full(slot);
        Ok(state_of(before))
    }

    /// `set_capacity` of a slot with channel quotas, if it has them (else `None`): refused if
    /// the quotas would exceed the new capacity; the word's capacity field becomes the new
    /// capacity minus the unused quota units. The caller holds the slot's capacity stripe,
    /// under which alone quotas change, so the check stays true until applied.
    fn set_quota_slot_capacity(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        capacity: u32,
    ) -> Result<Option<Packed>, CapacityError> {
        let Some(b) = self.branches.get(branch) else {
            return Ok(None);
        };
        let quotas = match b.quotas(slot) {
            Some(t) => t.get(&quota_key(slot)).map(ChannelSlot::quotas),
            None => None,
        };
        let Some(quotas) = quotas else {
            return Ok(None);
        };
        if quotas > u64::from(capacity) {
            return Err(CapacityError::QuotasAboveCapacity { quotas, capacity });
        }
        self.journal_capacity(branch, slot, capacity)
            .map_err(CapacityError::Journal)?;
        let word = b.word(slot).ok_or(CapacityError::UnknownSlot)?;
        let at = b.slot_ref(slot).ok_or(CapacityError::UnknownSlot)?;
        // The line before the quota lock (the book's lock order).
        let (mut line, numbers) = self.wanting(branch, slot);
        let mut table = b.quotas(slot).ok_or(CapacityError::UnknownSlot)?;
        let cs = table
            .get_mut(&quota_key(slot))
            .ok_or(CapacityError::UnknownSlot)?;
        cs.capacity = capacity;
        cs.closed = false;
        let field = cs.word_capacity();
        let (after, granted) = word.set_capacity_giving(field, numbers.len() as u32, true);
        drop(table);
        self.give_units(line.as_mut(), &numbers, granted, at, branch, slot);
        Ok(Some(after))
    }

    /// Journals a capacity change (or, with `CLOSED`, a close) of a durable book; nothing for a
    /// book in memory. The caller holds the slot's capacity stripe.
    fn journal_capacity(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        capacity: u32,
    ) -> Result<(), crate::journal::JournalError> {
        match &self.journal {
            None => Ok(()),
            Some(j) => j.commit(Change::Capacity {
                branch: branch.0,
                slot,
                capacity,
            }),
        }
    }

    /// Runs a change: inside the journal's gate for a durable book (see `durably`), directly
    /// for a book in memory.
    pub(super) fn applying<T>(&self, change: impl FnOnce() -> T) -> T {
        match &self.journal {
            None => change(),
            Some(j) => self.durably(j, change),
        }
    }

    /// The state of one slot, or `None` if it was never opened or is closed.
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
        self.sweep_now();
        let p = word.load();
        (p.is_open() && !b.is_closed(slot)).then(|| state_of(p))
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
        self.sweep_now();
        b.open_slots(first, last)
            .map(|(s, p)| (s, state_of(p)))
            .collect()
    }
}

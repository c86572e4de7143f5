//! Recovery's restore steps: each journal record and checkpoint entry is applied through the same
//! slot words and ledger shards the live book uses, and checked against the state before it (a
//! booking on a slot never opened, a token booked twice or a cancellation of no booking is
//! damage, not something to skip).

use std::path::Path;

use crate::book::SlotBook;
use crate::book::branches::Refused;
use crate::book::error::OpenError;
use crate::book::ledger::return_unit;
use crate::book::record::{Record, State};
use crate::book::types::{ApplicantId, BranchId};
use crate::book::word::{MAX_CAPACITY, SlotWord};
use crate::clock::Clock;
use crate::journal::Change;
use crate::journal::format::{
    BOOKING_ENTRY, CAPACITY_ENTRY, CHECKPOINT_HEADER, CLOSED, Checkpoint,
};
use crate::journal::recover::Refusal;

impl<C: Clock> SlotBook<C> {
    /// Applies one journal record during recovery.
    pub(super) fn restore(&self, change: Change) -> Result<(), Refusal> {
        match change {
            Change::Capacity {
                branch,
                slot,
                capacity,
            } => self.restore_capacity(branch, slot, capacity),
            Change::Booked {
                token,
                branch,
                slot,
                applicant,
            } => self.restore_booking(token, branch, slot, applicant),
            Change::Cancelled { token } => self.restore_cancellation(token),
        }
    }

    fn restore_capacity(&self, branch: u32, slot: u32, capacity: u32) -> Result<(), Refusal> {
        let Some(in_range) = self.branches.in_range(slot) else {
            return Err(Refusal::Incompatible(format!(
                "slot {slot} is past this book's max_slots_per_branch ({})",
                self.max_slots_per_branch
            )));
        };
        let closed = capacity == CLOSED;
        if capacity > MAX_CAPACITY && !closed {
            return Err(Refusal::Corrupt(format!(
                "capacity {capacity} is above any a slot can have"
            )));
        }
        let set = |word: &SlotWord| {
            word.set_capacity(if closed { 0 } else { capacity });
            Ok::<(), ()>(())
        };
        let (b, ()) = self
            .branches
            .with_slot(BranchId(branch), in_range, set)
            .map_err(|refused| {
                Refusal::Incompatible(match refused {
                    Refused::TooManyChunks => format!(
                        "the journal opens more chunks of 512 slots than this book's \
                         max_slot_chunks ({})",
                        self.max_slot_chunks
                    ),
                    _ => format!(
                        "the journal has more branches than this book's max_branches ({})",
                        self.max_branches
                    ),
                })
            })?;
        b.set_closed(slot, closed);
        b.sync_full(slot);
        Ok(())
    }

    fn restore_booking(
        &self,
        token: u128,
        branch: u32,
        slot: u32,
        applicant: u64,
    ) -> Result<(), Refusal> {
        let index = self.shard_of_token(token);
        let applicant = ApplicantId(applicant);
        if self.shard_of_applicant(applicant) != index {
            return Err(Refusal::Corrupt(format!(
                "booking {token:032x} does not route to its applicant's shard"
            )));
        }
        let at = self.branches.get(BranchId(branch));
        let Some(at) = at.and_then(|b| b.slot_ref(slot)) else {
            return Err(Refusal::Corrupt(format!(
                "booking {token:032x} is on branch {branch} slot {slot}, which was never opened"
            )));
        };
        let shard = &self.shards[index];
        let mut ledger = shard.ledger.lock();
        if ledger.records.get(token).is_some() {
            return Err(Refusal::Corrupt(format!(
                "booking {token:032x} is booked twice"
            )));
        }
        if !ledger.records.can_place(token) {
            return Err(Refusal::Corrupt(format!(
                "booking {token:032x} names the place of another booking in its shard"
            )));
        }
        if ledger.tokens_of(applicant).count() >= self.max_active_per_applicant {
            return Err(Refusal::Incompatible(format!(
                "{applicant} has more bookings than this book's max_active_per_applicant ({})",
                self.max_active_per_applicant
            )));
        }
        if at.word(slot).restore_booked().is_err() {
            return Err(Refusal::Corrupt(format!(
                "booking {token:032x} is on branch {branch} slot {slot}, which is not open or cannot count more bookings"
            )));
        }
        at.sync_full(slot);
        let record = Record {
            branch: BranchId(branch),
            slot,
            applicant,
            state: State::Booked,
            at,
        };
        // Placeable (checked above, under this lock); a booking never moves the expiry front.
        if ledger.insert(token, record).is_err() {
            return Err(Refusal::Corrupt(format!(
                "booking {token:032x} names the place of another booking in its shard"
            )));
        }
        Ok(())
    }

    fn restore_cancellation(&self, token: u128) -> Result<(), Refusal> {
        let mut ledger = self.shards[self.shard_of_token(token)].ledger.lock();
        if !ledger
            .records
            .get(token)
            .is_some_and(|r| r.state == State::Booked)
        {
            return Err(Refusal::Corrupt(format!(
                "cancels booking {token:032x}, which does not exist"
            )));
        }
        if let Some(r) = ledger.remove(token) {
            return_unit(&r);
        }
        Ok(())
    }

    pub(super) fn restore_checkpoint(&self, cp: &Checkpoint, path: &Path) -> Result<(), OpenError> {
        let refused = |offset: usize, refusal: Refusal| match refusal {
            Refusal::Corrupt(reason) => OpenError::Corrupt {
                path: path.to_path_buf(),
                offset: offset as u64,
                reason,
            },
            Refusal::Incompatible(reason) => OpenError::Incompatible {
                path: path.to_path_buf(),
                offset: offset as u64,
                reason,
            },
        };
        let mut at = CHECKPOINT_HEADER;
        for &(branch, slot, capacity) in &cp.capacities {
            self.restore_capacity(branch, slot, capacity)
                .map_err(|r| refused(at, r))?;
            at += CAPACITY_ENTRY;
        }
        for &(token, branch, slot, applicant) in &cp.bookings {
            self.restore_booking(token, branch, slot, applicant)
                .map_err(|r| refused(at, r))?;
            at += BOOKING_ENTRY;
        }
        Ok(())
    }

    /// Open slots and bookings, counted after recovery.
    pub(super) fn restored_totals(&self) -> (u64, u64) {
        let slots = self
            .branches
            .iter()
            .map(|b| b.open_slots(0, self.max_slots_per_branch - 1).count() as u64)
            .sum();
        let bookings = self
            .shards
            .iter()
            .map(|s| s.ledger.lock().records.len() as u64)
            .sum();
        (slots, bookings)
    }
}

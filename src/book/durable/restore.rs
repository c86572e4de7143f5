//! Recovery's restore steps: each journal record and checkpoint entry is applied through the same
//! slot words and ledger shards the live book uses, and checked against the state before it (a
//! booking on a slot never opened, a token booked twice or a cancellation of no booking is
//! damage, not something to skip).

use std::path::Path;

use crate::book::SlotBook;
use crate::book::branches::Refused;
use crate::book::branches::quota_key;
use crate::book::channel::{Channel, ChannelSlot, Part};
use crate::book::chunk::SlotRef;
use crate::book::error::OpenError;
use crate::book::ledger::return_unit;
use crate::book::quota::open_all;
use crate::book::record::{Record, State};
use crate::book::records::unpack_slot;
use crate::book::types::{ApplicantId, BranchId};
use crate::book::word::{MAX_CAPACITY, SlotWord};
use crate::clock::Clock;
use crate::journal::Change;
use crate::journal::format::{
    BOOKING_ENTRY, CAPACITY_ENTRY, CHECKPOINT_HEADER, CLOSED, Checkpoint, QUOTA,
    QUOTA_CHANNEL_SHIFT,
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
            Change::Quota {
                branch,
                slot,
                channel,
                quota,
            } => self.restore_quota(branch, slot, |cs| {
                cs.count_mut(Channel(channel)).quota = quota;
            }),
            Change::QuotasOpened { branch, slot } => self.restore_quota(branch, slot, open_all),
        }
    }

    /// A quota change, checked as the live call checks it (the quotas fit the capacity of an
    /// open slot), applied through the same accounting.
    fn restore_quota(
        &self,
        branch: u32,
        slot: u32,
        f: impl FnOnce(&mut ChannelSlot),
    ) -> Result<(), Refusal> {
        let b = self.branches.get(BranchId(branch));
        let (Some(b), Some(word)) = (b, b.and_then(|b| b.word(slot))) else {
            return Err(Refusal::Corrupt(format!(
                "a channel quota on branch {branch} slot {slot}, which was never opened"
            )));
        };
        let closed = b.is_closed(slot);
        let mut table = b.quotas(slot).ok_or_else(|| {
            Refusal::Corrupt(format!("branch {branch} slot {slot} has no quota table"))
        })?;
        let cs = table.entry(quota_key(slot)).or_insert_with(|| ChannelSlot {
            capacity: word.load().capacity(),
            closed,
            ..ChannelSlot::default()
        });
        f(cs);
        if !closed && cs.quotas() > u64::from(cs.capacity) {
            return Err(Refusal::Corrupt(format!(
                "the channel quotas of branch {branch} slot {slot} add up to {}, above its capacity {}",
                cs.quotas(),
                cs.capacity
            )));
        }
        let capacity = cs.word_capacity();
        let _ = word.update_quota_slot(0, 0, |_| capacity, |_| Ok(()));
        drop(table);
        b.sync_full(slot);
        Ok(())
    }

    fn restore_capacity(&self, branch: u32, slot: u32, capacity: u32) -> Result<(), Refusal> {
        let Some(in_range) = self.branches.in_range(slot) else {
            return Err(Refusal::Incompatible(format!(
                "slot {slot} is past this book's max_slots_per_branch ({})",
                self.max_slots_per_branch
            )));
        };
        if capacity & QUOTA != 0 && capacity != CLOSED {
            // A checkpoint's quota entry (journal records have their own kind).
            let channel = Channel((capacity >> QUOTA_CHANNEL_SHIFT) as u8);
            let quota = capacity & ((1 << QUOTA_CHANNEL_SHIFT) - 1);
            return self.restore_quota(branch, slot, |cs| cs.count_mut(channel).quota = quota);
        }
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
        // A slot with quotas keeps its accounting: as `set_capacity` and `close_slot` do live.
        if let Some(b) = self.branches.get(BranchId(branch))
            && let Some(word) = b.word(slot)
            && let Some(mut table) = b.quotas(slot)
            && let Some(cs) = table.get_mut(&quota_key(slot))
        {
            cs.closed = closed;
            if !closed {
                if cs.quotas() > u64::from(capacity) {
                    return Err(Refusal::Corrupt(format!(
                        "branch {branch} slot {slot} gets capacity {capacity}, below its channel quotas"
                    )));
                }
                cs.capacity = capacity;
            }
            word.set_capacity(cs.word_capacity());
            drop(table);
            b.set_closed(slot, closed);
            b.sync_full(slot);
            return Ok(());
        }
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
        packed_slot: u32,
        applicant: u64,
    ) -> Result<(), Refusal> {
        let Some((slot, part)) = unpack_slot(packed_slot) else {
            return Err(Refusal::Corrupt(format!(
                "booking {token:032x} names a channel part that does not exist"
            )));
        };
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
        let restored = if part == Part::OPEN {
            at.word(slot).restore_booked().is_ok()
        } else {
            restore_channel_booking(&at, slot, part)
        };
        if !restored {
            return Err(Refusal::Corrupt(format!(
                "booking {token:032x} is on branch {branch} slot {slot}, which is not open, cannot count more bookings, or has no quotas for its channel"
            )));
        }
        at.sync_full(slot);
        let record = Record {
            branch: BranchId(branch),
            slot,
            applicant,
            state: State::Booked,
            at,
            part,
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
            // Nobody waits in the line while a book is restored: the unit goes to its slot.
            return_unit(&r, &self.standby, 0);
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

/// Counts a restored booking taken on a channel, as `reserve_on` counted it live: the slot must
/// have quotas; a unit from a quota raises the word's capacity field with its count.
fn restore_channel_booking(at: &SlotRef, slot: u32, part: Part) -> bool {
    let Some(channel) = part.channel() else {
        return false;
    };
    let word = at.word(slot);
    let mut table = at.quotas();
    // A checkpoint leaves out a slot whose quotas are all 0: its entry comes back with the
    // first unit taken on a channel, as it was (capacity whole, nothing kept).
    let cs = table.entry(quota_key(slot)).or_insert_with(|| ChannelSlot {
        capacity: word.load().capacity(),
        ..ChannelSlot::default()
    });
    let c = cs.count_mut(channel);
    c.taken += 1;
    if part.is_from_quota() {
        c.from_quota += 1;
    }
    let capacity = cs.word_capacity();
    word.update_quota_slot(
        0,
        1,
        |_| capacity,
        |p| {
            if p.is_open() && p.taken() < MAX_CAPACITY {
                Ok(())
            } else {
                Err(crate::book::word::HoldRefused::Full)
            }
        },
    )
    .is_ok()
}

//! Taking a unit: `reserve` and `reserve_earliest`, and the step both share.

use std::ops::RangeBounds;
use std::time::Duration;

use crate::clock::Clock;
use crate::token::random_u128;

use super::branches::Branch;
use super::channel::Part;
use super::chunk::SlotRef;
use super::error::ReserveError;
use super::expiry::SWEEP_BUDGET;
use super::ledger::return_unit;
use super::record::{Record, State};
use super::types::{ApplicantId, BranchId, Hold, HoldToken, SlotIndex};
use super::word::HoldRefused;
use super::{SlotBook, inclusive};

impl<C: Clock> SlotBook<C> {
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
        // No sweep up front: expired holds are reclaimed only if the slot turns out full
        // (`reserve_with`), which keeps the common case to one clock read.
        let b = self.branches.get(branch).ok_or(ReserveError::UnknownSlot)?;
        let at = b.slot_ref(slot).ok_or(ReserveError::UnknownSlot)?;
        let word = at.word(slot);
        if !word.load().is_open() {
            return Err(ReserveError::UnknownSlot);
        }
        self.reserve_with(
            applicant,
            |r| r.branch == branch && r.slot == slot,
            || match word.try_hold() {
                Ok(after) => {
                    if after.is_full() {
                        at.sync_full(slot);
                    }
                    Ok(Some(Taken {
                        branch,
                        slot,
                        at,
                        part: Part::OPEN,
                    }))
                }
                Err(HoldRefused::NotOpen) => Err(ReserveError::UnknownSlot),
                // A closed slot has capacity 0; it answers as one never opened.
                Err(HoldRefused::Full) if b.is_closed(slot) => Err(ReserveError::UnknownSlot),
                Err(HoldRefused::Full) => Ok(None),
            },
            ReserveError::Full,
        )
    }

    /// Holds one unit of the lowest-indexed slot in `slots` at `branch` that has room.
    ///
    /// If the applicant already holds a slot of this branch in the range, returns that hold.
    /// Full slots are skipped 64 at a time. [`ReserveError::UnknownSlot`] if the branch was never
    /// opened or the range lies wholly past `max_slots_per_branch` (as `reserve` answers for
    /// such a slot); [`ReserveError::NoneAvailable`] if no slot of the range has room.
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
            // No slot of the range can exist: the same answer `reserve` gives for one of them.
            return Err(ReserveError::UnknownSlot);
        }
        let last = last.min(self.max_slots_per_branch - 1);
        // Reclaim expired holds first, so that an expired hold cannot make a later slot look
        // like the earliest one with room.
        self.sweep_now();
        self.reserve_with(
            applicant,
            |r| r.branch == branch && (first..=last).contains(&r.slot),
            || Ok(take_earliest(b, first, last)),
            ReserveError::NoneAvailable,
        )
    }

    /// The common part of every reservation: under the applicant's shard lock, reclaim the
    /// applicant's expired holds, return a matching live hold if there is one, check the limits,
    /// then `take` a unit. If `take` finds no room and something may have expired, sweep and try
    /// once more.
    pub(super) fn reserve_with(
        &self,
        applicant: ApplicantId,
        matches: impl Fn(&Record) -> bool,
        mut take: impl FnMut() -> Result<Option<Taken>, ReserveError>,
        when_full: ReserveError,
    ) -> Result<Hold, ReserveError> {
        let shard_index = self.shard_of_applicant(applicant);
        let shard = &self.shards[shard_index];
        let mut swept = false;
        loop {
            let mut ledger = shard.ledger.lock();
            // The time under the lock, never behind the shard's latest: grant (so expiry) times
            // enter the shard's expiry queue in order even if the clock steps back.
            let now = ledger.clamp_now(self.now_ns());
            // A standby offer for this applicant becomes its hold first (a no-op if none).
            self.claim_offer(&mut ledger, shard, shard_index, applicant, now);
            let view = ledger.applicant_view(applicant, now, &matches, &self.standby);
            if let Some((token, r)) = view.existing {
                return Ok(self.hold_of(token, &r));
            }
            if view.active >= self.max_active_per_applicant {
                return Err(ReserveError::ApplicantLimit);
            }
            if ledger.live_holds >= self.max_holds_per_shard {
                shard.reclaim(&mut ledger, now, &self.hint, SWEEP_BUDGET, &self.standby);
                if ledger.live_holds >= self.max_holds_per_shard {
                    return Err(ReserveError::TooManyHolds);
                }
            }
            // A vacant entry of the shard's slab (none only when the shard is full of records).
            let token = ledger
                .records
                .new_token(shard_index, random_u128())
                .ok_or(ReserveError::TooManyHolds)?;
            match take()? {
                Some(t) => {
                    let record = Record {
                        branch: t.branch,
                        slot: t.slot,
                        applicant,
                        at: t.at,
                        part: t.part,
                        state: State::Held {
                            expires_ns: now.saturating_add(self.hold_ttl_ns),
                        },
                    };
                    // The entry is vacant (`new_token`, this lock); if refused, the unit goes back.
                    match ledger.insert(token, record) {
                        Ok(true) => shard.publish_front(&ledger, &self.hint),
                        Ok(false) => {}
                        Err(_) => {
                            return_unit(&record, &self.standby, now);
                            return Err(ReserveError::TooManyHolds);
                        }
                    }
                    return Ok(self.hold_of(token, &record));
                }
                None => {
                    drop(ledger);
                    if !swept && (self.hint.is_due(now) || self.standby.is_due(now)) {
                        self.sweep_now();
                        swept = true;
                        continue;
                    }
                    return Err(when_full);
                }
            }
        }
    }

    pub(super) fn hold_of(&self, token: u128, r: &Record) -> Hold {
        let expires_ns = match r.state {
            State::Held { expires_ns } | State::Confirming { expires_ns } => expires_ns,
            State::Booked | State::Cancelling => u64::MAX,
        };
        Hold {
            token: HoldToken(token),
            branch: r.branch,
            slot: r.slot,
            applicant: r.applicant,
            expires_at: Duration::from_nanos(expires_ns),
        }
    }
}

/// A unit just taken by a reservation: where, and the slot's reference for its record.
pub(super) struct Taken {
    pub(super) branch: BranchId,
    pub(super) slot: SlotIndex,
    pub(super) at: SlotRef,
    pub(super) part: Part,
}

/// Takes a unit of the lowest slot of `first..=last` at `b` with room, skipping full slots 64
/// at a time through the chunks' full bitmaps.
pub(super) fn take_earliest(b: &Branch, first: SlotIndex, last: SlotIndex) -> Option<Taken> {
    let mut from = first;
    while let Some(slot) = b.first_not_full(from, last) {
        if let Some(taken) = try_take(b, slot) {
            return Some(taken);
        }
        from = slot.checked_add(1).filter(|&next| next <= last)?;
    }
    None
}

/// Takes a unit of `slot` at `b` if it has room; otherwise brings its full bit up to date (the
/// bitmap said it had room, so the bit was stale or the slot filled since).
pub(super) fn try_take(b: &Branch, slot: SlotIndex) -> Option<Taken> {
    let at = b.slot_ref(slot)?;
    match at.word(slot).try_hold() {
        Ok(after) => {
            if after.is_full() {
                at.sync_full(slot);
            }
            Some(Taken {
                branch: b.id(),
                slot,
                at,
                part: Part::OPEN,
            })
        }
        Err(_) => {
            at.sync_full(slot);
            None
        }
    }
}

//! Channel quotas: `set_channel_quota`, `reserve_on`, `open_channel_quotas` (one slot, or
//! every slot of a range) and `channel_quotas`. The accounting is in `channel.rs`.
//!
//! Ordering of locks: a capacity stripe (changes of one slot's capacity or quotas, one at a
//! time, journaled in the order applied), then a shard's ledger, then the chunk's quota lock.
//! The quota lock is never held across a journal write.

use std::ops::RangeBounds;

use crate::clock::Clock;
use crate::journal::Change;

use super::branches::{Branch, quota_key};
use super::channel::{Channel, ChannelSlot, Part, SlotQuotas};
use super::error::{CapacityError, ReserveError};
use super::reserve::Taken;
use super::types::{ApplicantId, BranchId, Hold, SlotIndex, SlotState};
use super::word::{HoldRefused, MAX_CAPACITY};
use super::{SlotBook, inclusive, state_of};

impl<C: Clock> SlotBook<C> {
    /// Keeps `quota` units of a slot for `channel`: plain reservations ([`reserve`](Self::reserve)
    /// and every call without a channel) no longer see them; [`reserve_on`](Self::reserve_on)
    /// with that channel takes them first. Returns the slot's state as plain reservations see
    /// it: its capacity is the open part plus the units taken.
    ///
    /// A quota of 0 gives a channel's kept units back to the open part. Units the channel
    /// already took from its quota count toward it.
    ///
    /// # Errors
    ///
    /// [`CapacityError::UnknownSlot`] for a slot never opened or closed;
    /// [`CapacityError::QuotasAboveCapacity`] if the slot's quotas would add up to more than
    /// its capacity; [`CapacityError::CapacityTooLarge`]; [`CapacityError::Journal`] if a
    /// durable book could not journal it. Nothing changes on an error.
    ///
    /// ```
    /// use surgegate::{ApplicantId, BranchId, CapacityError, Channel, ReserveError, SlotBook};
    ///
    /// let book = SlotBook::builder().build();
    /// book.set_capacity(BranchId(7), 0, 3)?;
    /// let open = book.set_channel_quota(BranchId(7), 0, Channel(2), 2)?;
    /// assert_eq!(open.remaining(), 1); // one unit left for the web
    ///
    /// book.reserve(BranchId(7), 0, ApplicantId(1))?;
    /// assert_eq!(book.reserve(BranchId(7), 0, ApplicantId(2)), Err(ReserveError::Full));
    /// book.reserve_on(Channel(2), BranchId(7), 0, ApplicantId(2))?; // the call centre's
    /// assert!(matches!(
    ///     book.set_channel_quota(BranchId(7), 0, Channel(1), 2),
    ///     Err(CapacityError::QuotasAboveCapacity { .. })
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_channel_quota(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        channel: Channel,
        quota: u32,
    ) -> Result<SlotState, CapacityError> {
        if quota > MAX_CAPACITY {
            return Err(CapacityError::CapacityTooLarge {
                capacity: quota,
                max: MAX_CAPACITY,
            });
        }
        self.sweep_now();
        let b = self.open_slot(branch, slot)?;
        let change = || {
            let _order = self.capacity_stripe(branch, slot).lock();
            let (capacity, quotas) = {
                let table = b.quotas(slot).ok_or(CapacityError::UnknownSlot)?;
                match table.get(&quota_key(slot)) {
                    Some(cs) => (cs.capacity, cs.quotas_with(channel, quota)),
                    None => (self.word_of(b, slot)?.capacity(), u64::from(quota)),
                }
            };
            if quotas > u64::from(capacity) {
                return Err(CapacityError::QuotasAboveCapacity { quotas, capacity });
            }
            self.journal_change(Change::Quota {
                branch: branch.0,
                slot,
                channel: channel.0,
                quota,
            })?;
            self.apply_quota(b, slot, |cs| cs.count_mut(channel).quota = quota)
        };
        self.applying(change)
    }

    /// Gives what the channels left unused of a slot's quotas to everyone: every quota of the
    /// slot becomes 0, so plain reservations see the whole capacity. Units the channels already
    /// took stay theirs; once returned, they go to the open part. Returns the slot's state.
    /// Opening a slot without quotas is `Ok` and changes nothing.
    ///
    /// # Errors
    ///
    /// [`CapacityError::UnknownSlot`] for a slot never opened or closed;
    /// [`CapacityError::Journal`] if a durable book could not journal it (nothing changed).
    ///
    /// ```
    /// use surgegate::{ApplicantId, BranchId, Channel, SlotBook};
    ///
    /// let book = SlotBook::builder().build();
    /// book.set_capacity(BranchId(7), 0, 4)?;
    /// book.set_channel_quota(BranchId(7), 0, Channel(1), 3)?;
    /// assert_eq!(book.slot(BranchId(7), 0).unwrap().remaining(), 1);
    /// book.open_channel_quotas(BranchId(7), 0)?; // the day before: counters left it unused
    /// assert_eq!(book.slot(BranchId(7), 0).unwrap().remaining(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_channel_quotas(
        &self,
        branch: BranchId,
        slot: SlotIndex,
    ) -> Result<SlotState, CapacityError> {
        self.sweep_now();
        let b = self.open_slot(branch, slot)?;
        let change = || {
            let _order = self.capacity_stripe(branch, slot).lock();
            let kept = b
                .quotas(slot)
                .and_then(|t| t.get(&quota_key(slot)).map(ChannelSlot::quotas))
                .unwrap_or(0);
            if kept == 0 {
                return Ok(state_of(self.word_of(b, slot)?));
            }
            self.journal_change(Change::QuotasOpened {
                branch: branch.0,
                slot,
            })?;
            self.apply_quota(b, slot, open_all)
        };
        self.applying(change)
    }

    /// [`open_channel_quotas`](Self::open_channel_quotas) for every slot of `branch` in `slots`
    /// that keeps a quota: the call a portal or gate makes from a timer, with the slots that
    /// start within the next N hours (a [`Calendar`](crate::Calendar) maps days to slots).
    /// Returns how many slots it opened.
    ///
    /// # Errors
    ///
    /// [`CapacityError::Journal`] if a durable book could not journal an opening: the slots
    /// before it in index order are open, that one and those after it are not, and the same call
    /// again goes on where it stopped.
    ///
    /// ```
    /// use surgegate::{BranchId, Calendar, Channel, Date, SlotBook};
    ///
    /// let calendar = Calendar::new(Date::new(2026, 3, 1)?, 30, 8)?;
    /// let book = SlotBook::builder().build();
    /// for slot in 0..calendar.slots() {
    ///     book.set_capacity(BranchId(1), slot, 10)?;
    ///     book.set_channel_quota(BranchId(1), slot, Channel(1), 2)?;
    /// }
    /// // Tomorrow's windows open to all today.
    /// let tomorrow = calendar.slots_between(Date::new(2026, 3, 2)?, Date::new(2026, 3, 2)?)?;
    /// assert_eq!(book.open_channel_quotas_in(BranchId(1), tomorrow.clone())?, 8);
    /// assert_eq!(book.slot(BranchId(1), tomorrow.start).unwrap().remaining(), 10);
    /// assert_eq!(book.slot(BranchId(1), tomorrow.end).unwrap().remaining(), 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_channel_quotas_in(
        &self,
        branch: BranchId,
        slots: impl RangeBounds<SlotIndex>,
    ) -> Result<u32, CapacityError> {
        let Some((first, last)) = inclusive(&slots) else {
            return Ok(0);
        };
        let Some(b) = self.branches.get(branch) else {
            return Ok(0);
        };
        if first >= self.max_slots_per_branch {
            return Ok(0);
        }
        let last = last.min(self.max_slots_per_branch - 1);
        let mut opened = 0;
        for slot in b.quota_slots(first, last) {
            let kept = b.quotas(slot).and_then(|t| {
                t.get(&quota_key(slot))
                    .map(|cs| cs.quotas() > 0 && !cs.closed)
            });
            if kept == Some(true) {
                self.open_channel_quotas(branch, slot)?;
                opened += 1;
            }
        }
        Ok(opened)
    }

    /// The slot's quotas and what each channel took, or `None` for a slot that never had a
    /// quota (or was never opened).
    ///
    /// ```
    /// use surgegate::{ApplicantId, BranchId, Channel, SlotBook};
    ///
    /// let book = SlotBook::builder().build();
    /// book.set_capacity(BranchId(1), 0, 5)?;
    /// assert_eq!(book.channel_quotas(BranchId(1), 0), None);
    /// book.set_channel_quota(BranchId(1), 0, Channel(3), 2)?;
    /// book.reserve_on(Channel(3), BranchId(1), 0, ApplicantId(9))?;
    /// let q = book.channel_quotas(BranchId(1), 0).unwrap();
    /// assert_eq!((q.capacity, q.channels[0].quota, q.channels[0].from_quota), (5, 2, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn channel_quotas(&self, branch: BranchId, slot: SlotIndex) -> Option<SlotQuotas> {
        self.sweep_now();
        let b = self.branches.get(branch)?;
        let table = b.quotas(slot)?;
        table.get(&quota_key(slot)).map(ChannelSlot::public)
    }

    /// Holds one unit of `slot` at `branch` for `applicant`, taken on `channel`: from the
    /// channel's quota while it has units left there, else from the open part like
    /// [`reserve`](Self::reserve). Every rule of `reserve` holds (a retry returns the same hold;
    /// the applicant's limit; errors change nothing). On a slot without quotas it is `reserve`.
    ///
    /// # Errors
    ///
    /// As [`reserve`](Self::reserve): `Full` when neither the quota nor the open part has room.
    ///
    /// ```
    /// use surgegate::{ApplicantId, BranchId, Channel, ReserveError, SlotBook};
    ///
    /// let book = SlotBook::builder().build();
    /// book.set_capacity(BranchId(7), 0, 2)?;
    /// book.set_channel_quota(BranchId(7), 0, Channel(1), 1)?;
    /// let counter = book.reserve_on(Channel(1), BranchId(7), 0, ApplicantId(1))?;
    /// let web = book.reserve(BranchId(7), 0, ApplicantId(2))?;
    /// assert_eq!(book.reserve_on(Channel(1), BranchId(7), 0, ApplicantId(3)), Err(ReserveError::Full));
    /// book.release(counter.token)?; // back to the counters' quota, not to the web
    /// assert_eq!(book.reserve(BranchId(7), 0, ApplicantId(3)), Err(ReserveError::Full));
    /// # let _ = web;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reserve_on(
        &self,
        channel: Channel,
        branch: BranchId,
        slot: SlotIndex,
        applicant: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        let b = self.branches.get(branch).ok_or(ReserveError::UnknownSlot)?;
        let at = b.slot_ref(slot).ok_or(ReserveError::UnknownSlot)?;
        if !at.word(slot).load().is_open() {
            return Err(ReserveError::UnknownSlot);
        }
        self.reserve_with(
            applicant,
            |r| r.branch == branch && r.slot == slot,
            || {
                let refused = |e| match e {
                    HoldRefused::NotOpen => Err(ReserveError::UnknownSlot),
                    HoldRefused::Full if b.is_closed(slot) => Err(ReserveError::UnknownSlot),
                    HoldRefused::Full => Ok(None),
                };
                match take_on(b, slot, channel) {
                    Ok(part) => Ok(Some(Taken {
                        branch,
                        slot,
                        at,
                        part,
                    })),
                    Err(e) => refused(e),
                }
            },
            ReserveError::Full,
        )
    }

    /// The branch of an open, not closed slot.
    fn open_slot(&self, branch: BranchId, slot: SlotIndex) -> Result<&Branch, CapacityError> {
        let b = self
            .branches
            .get(branch)
            .ok_or(CapacityError::UnknownSlot)?;
        let p = self.word_of(b, slot)?;
        if !p.is_open() || b.is_closed(slot) {
            return Err(CapacityError::UnknownSlot);
        }
        Ok(b)
    }

    fn word_of(&self, b: &Branch, slot: SlotIndex) -> Result<super::word::Packed, CapacityError> {
        Ok(b.word(slot).ok_or(CapacityError::UnknownSlot)?.load())
    }

    /// Journals a change of a durable book; nothing for a book in memory.
    pub(super) fn journal_change(&self, change: Change) -> Result<(), CapacityError> {
        match &self.journal {
            None => Ok(()),
            Some(j) => j.commit(change).map_err(CapacityError::Journal),
        }
    }

    /// Applies `f` to the slot's quotas (created from the word if the slot had none) under the
    /// chunk's quota lock, and sets the word's capacity field to match, in one step.
    fn apply_quota(
        &self,
        b: &Branch,
        slot: SlotIndex,
        f: impl FnOnce(&mut ChannelSlot),
    ) -> Result<SlotState, CapacityError> {
        let word = b.word(slot).ok_or(CapacityError::UnknownSlot)?;
        let at = b.slot_ref(slot).ok_or(CapacityError::UnknownSlot)?;
        // Units a lowered or opened quota leaves to the open part go to the standby line
        // first, in the same step; the line before the quota lock (the book's lock order).
        let (mut line, numbers) = self.wanting(b.id(), slot);
        let mut table = b.quotas(slot).ok_or(CapacityError::UnknownSlot)?;
        let cs = table.entry(quota_key(slot)).or_insert_with(|| ChannelSlot {
            capacity: word.load().capacity(),
            ..ChannelSlot::default()
        });
        f(cs);
        let capacity = cs.word_capacity();
        let (after, granted) = word.set_capacity_giving(capacity, numbers.len() as u32, false);
        drop(table);
        self.give_units(line.as_mut(), &numbers, granted, at, b.id(), slot);
        drop(line);
        b.sync_full(slot);
        Ok(state_of(after))
    }
}

/// Sets every quota of a slot to 0.
pub(super) fn open_all(cs: &mut ChannelSlot) {
    for (_, c) in cs.channels.iter_mut() {
        c.quota = 0;
    }
}

/// Takes one unit of `slot` on `channel`: from its quota if it has room there and the slot as a
/// whole has room (rule 1 after a lowering), else from the open part. Returns the part taken.
fn take_on(b: &Branch, slot: SlotIndex, channel: Channel) -> Result<Part, HoldRefused> {
    let word = b.word(slot).ok_or(HoldRefused::NotOpen)?;
    let Some(mut table) = b.quotas(slot) else {
        return Err(HoldRefused::NotOpen);
    };
    let Some(cs) = table.get_mut(&quota_key(slot)) else {
        drop(table);
        // No quotas here: a plain reservation.
        let after = word.try_hold()?;
        if after.is_full() {
            b.sync_full(slot);
        }
        return Ok(Part::OPEN);
    };
    if cs.closed {
        return Err(HoldRefused::Full);
    }
    let c = cs.count(channel).unwrap_or_default();
    let part = if c.from_quota < c.quota {
        let whole = cs.capacity;
        let mut next = cs.clone();
        next.count_mut(channel).from_quota += 1;
        let capacity = next.word_capacity();
        word.update_quota_slot(
            1,
            0,
            |_| capacity,
            |p| {
                if !p.is_open() {
                    Err(HoldRefused::NotOpen)
                } else if p.taken() >= whole {
                    Err(HoldRefused::Full)
                } else {
                    Ok(())
                }
            },
        )?;
        cs.count_mut(channel).from_quota += 1;
        Part::on(channel, true)
    } else {
        word.try_hold()?;
        Part::on(channel, false)
    };
    cs.count_mut(channel).taken += 1;
    drop(table);
    b.sync_full(slot);
    Ok(part)
}

//! Channel quotas on Redis: `set_channel_quota`, `reserve_on`, `open_channel_quotas` (one slot,
//! or every slot of a range) and `channel_quotas`, by the in-process book's rules.
//!
//! Guarantee: a slot's quotas live beside its counts, under its branch's hash tag, and every
//! script that takes or gives back a unit updates them in the same step. `CAP` holds what the
//! in-process slot word's capacity field holds, the open part plus every unit taken (the whole
//! capacity minus the quota units still unused; 0 while closed), so every plain path reads it
//! alone, and a hold or booking record names the channel it was taken on and whether it came
//! from the quota, so that its release gives the unit back where it came from. Records written
//! before channels existed name none: the open part.

use std::ops::RangeBounds;

use super::RedisSlotBook;
use super::reply;
use super::reserve::Mode;
use crate::backend::BackendError;
use crate::book::{
    ApplicantId, BranchId, CapacityError, Channel, Hold, MAX_CAPACITY, ReserveError, SlotIndex,
    SlotQuotas, SlotState, inclusive,
};

impl RedisSlotBook {
    /// Keeps `quota` units of a slot for `channel`, as
    /// [`SlotBook::set_channel_quota`](crate::SlotBook::set_channel_quota): plain reservations
    /// no longer see them, [`reserve_on`](Self::reserve_on) with that channel takes them first.
    /// Returns the slot's state as plain reservations see it. Durable like `set_capacity`.
    ///
    /// # Errors
    /// [`CapacityError::UnknownSlot`] (never opened, or closed),
    /// [`CapacityError::QuotasAboveCapacity`], [`CapacityError::CapacityTooLarge`],
    /// [`CapacityError::Backend`]. Nothing changes on an error other than `Backend` (after
    /// which the change may or may not have been made; retrying it is safe).
    pub async fn set_channel_quota(
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
        let args = [
            "quota".into(),
            slot.to_string(),
            channel.0.to_string(),
            quota.to_string(),
        ];
        self.change_slot(branch, &args).await
    }

    /// Gives what the channels left unused of a slot's quotas to everyone, as
    /// [`SlotBook::open_channel_quotas`](crate::SlotBook::open_channel_quotas): every quota of
    /// the slot becomes 0. Opening a slot without quotas changes nothing.
    ///
    /// # Errors
    /// [`CapacityError::UnknownSlot`] (never opened, or closed), [`CapacityError::Backend`].
    pub async fn open_channel_quotas(
        &self,
        branch: BranchId,
        slot: SlotIndex,
    ) -> Result<SlotState, CapacityError> {
        self.change_slot(branch, &["open".into(), slot.to_string()])
            .await
    }

    /// [`open_channel_quotas`](Self::open_channel_quotas) for every open slot of `branch` in
    /// `slots` that keeps a quota, as
    /// [`SlotBook::open_channel_quotas_in`](crate::SlotBook::open_channel_quotas_in); how many.
    /// Each script looks at 4 096 slots with quotas at most, so no one script runs long.
    ///
    /// # Errors
    /// [`CapacityError::Backend`]: the slots before the failure in index order are open, and
    /// the same call again goes on where it stopped.
    pub async fn open_channel_quotas_in(
        &self,
        branch: BranchId,
        slots: impl RangeBounds<SlotIndex>,
    ) -> Result<u32, CapacityError> {
        let Some((first, last)) = inclusive(&slots) else {
            return Ok(0);
        };
        let i = &self.inner;
        let backend = CapacityError::Backend;
        let mut from = u64::from(first);
        let mut opened = 0u32;
        while from <= u64::from(last) {
            let args = ["open_range".into(), from.to_string(), last.to_string()];
            let reply = i
                .on_branch(&i.scripts.capacity, branch, &args)
                .await
                .map_err(backend)?;
            let (n, next) = reply::opened(&reply).map_err(backend)?;
            if next <= from {
                return Err(backend(BackendError::Reply));
            }
            opened = opened.saturating_add(n);
            from = next;
        }
        if opened > 0 {
            i.replicated(branch).await.map_err(backend)?;
        }
        Ok(opened)
    }

    /// The slot's quotas and what each channel took, as
    /// [`SlotBook::channel_quotas`](crate::SlotBook::channel_quotas): `None` for a slot that
    /// never had a quota (or was never opened).
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn channel_quotas(
        &self,
        branch: BranchId,
        slot: SlotIndex,
    ) -> Result<Option<SlotQuotas>, BackendError> {
        let i = &self.inner;
        let args = ["quotas".into(), slot.to_string()];
        reply::quotas(&i.on_branch(&i.scripts.read, branch, &args).await?)
    }

    /// A hold on `slot` taken on `channel`, as
    /// [`SlotBook::reserve_on`](crate::SlotBook::reserve_on): from the channel's quota while
    /// it has units left there, else from the open part; every rule of
    /// [`reserve`](Self::reserve) holds.
    ///
    /// # Errors
    /// As [`reserve`](Self::reserve).
    pub async fn reserve_on(
        &self,
        channel: Channel,
        branch: BranchId,
        slot: SlotIndex,
        applicant: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        self.take_hold(branch, Mode::Slot, slot, slot, applicant, Some(channel))
            .await
    }

    /// Runs one change of the capacity script and waits for its replication.
    async fn change_slot(
        &self,
        branch: BranchId,
        args: &[String],
    ) -> Result<SlotState, CapacityError> {
        let i = &self.inner;
        let backend = CapacityError::Backend;
        let reply = i
            .on_branch(&i.scripts.capacity, branch, args)
            .await
            .map_err(backend)?;
        let state = reply::capacity_change(&reply).map_err(backend)??;
        i.replicated(branch).await.map_err(backend)?;
        Ok(state)
    }
}

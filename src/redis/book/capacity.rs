//! Opening, closing and reading slots, and sweeping lapsed holds: `set_capacity`, `close_slot`,
//! `slot`, `availability`, `sweep` (one branch) and the sweep of every branch.

use std::ops::RangeBounds;

use redis::Value;

use super::RedisSlotBook;
use super::reply;
use crate::backend::BackendError;
use crate::book::{
    BranchId, CapacityError, CloseError, MAX_CAPACITY, SlotIndex, SlotState, inclusive,
};
use crate::redis::scripts::{RANGE_MAX, RECLAIM_BUDGET};

/// Branches one registry reading returns (a hint to `SSCAN`).
const REGISTRY_PAGE: u32 = 256;

impl RedisSlotBook {
    /// Opens a slot with `capacity` units, or changes its capacity (lowering it below what is
    /// taken keeps every hold and booking, and grants nothing until it fits again); opens a
    /// closed slot again.
    ///
    /// # Errors
    /// [`CapacityError::CapacityTooLarge`], [`CapacityError::QuotasAboveCapacity`] (below the
    /// slot's channel quotas), [`CapacityError::Backend`].
    pub async fn set_capacity(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        capacity: u32,
    ) -> Result<SlotState, CapacityError> {
        if capacity > MAX_CAPACITY {
            return Err(CapacityError::CapacityTooLarge {
                capacity,
                max: MAX_CAPACITY,
            });
        }
        let i = &self.inner;
        // Registered before the slot exists, so the sweep of every branch never misses one
        // with holds (a failure in between leaves a branch registered with no slot: harmless).
        let mut add = redis::cmd("SADD");
        let registry = i.registry_key();
        add.arg(&registry).arg(branch.0);
        i.conn
            .command(add, Some(&registry), i.timeout)
            .await
            .map_err(CapacityError::Backend)?;
        let args = ["set".into(), slot.to_string(), capacity.to_string()];
        let reply = i.on_branch(&i.scripts.capacity, branch, &args).await;
        let state = reply::capacity_change(&reply.map_err(CapacityError::Backend)?)
            .map_err(CapacityError::Backend)??;
        i.replicated(branch).await.map_err(CapacityError::Backend)?;
        Ok(state)
    }

    /// [`SlotBook::close_slot`](crate::SlotBook::close_slot): takes an open slot out of
    /// `availability` and `slot`, and refuses new holds on it (as on a slot never opened),
    /// keeping its holds (which can still be confirmed) and bookings; returns the counts before.
    /// Closing a closed slot changes nothing; `set_capacity` opens it again.
    ///
    /// # Errors
    /// [`CloseError::UnknownSlot`] for a slot never opened, [`CloseError::Backend`].
    pub async fn close_slot(
        &self,
        branch: BranchId,
        slot: SlotIndex,
    ) -> Result<SlotState, CloseError> {
        let i = &self.inner;
        let args = ["close".into(), slot.to_string()];
        let reply = i
            .on_branch(&i.scripts.capacity, branch, &args)
            .await
            .map_err(CloseError::Backend)?;
        let before = reply::slot_state(&reply).map_err(CloseError::Backend)?;
        i.replicated(branch).await.map_err(CloseError::Backend)?;
        before.ok_or(CloseError::UnknownSlot)
    }

    /// The counts of one slot (`None` if it was never opened, or is closed), after reclaiming
    /// lapsed holds.
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn slot(
        &self,
        branch: BranchId,
        slot: SlotIndex,
    ) -> Result<Option<SlotState>, BackendError> {
        let i = &self.inner;
        let reply = i
            .on_branch(&i.scripts.read, branch, &["slot".into(), slot.to_string()])
            .await?;
        reply::slot_state(&reply)
    }

    /// Every open slot of `branch` in `slots` (at most 4 096 of them from its start), in index
    /// order, as [`SlotBook::availability`](crate::SlotBook::availability).
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn availability(
        &self,
        branch: BranchId,
        slots: impl RangeBounds<SlotIndex>,
    ) -> Result<Vec<(SlotIndex, SlotState)>, BackendError> {
        let Some((first, last)) = inclusive(&slots) else {
            return Ok(Vec::new());
        };
        let i = &self.inner;
        let last = last.min(first.saturating_add(RANGE_MAX - 1));
        let args = ["range".into(), first.to_string(), last.to_string()];
        reply::slot_states(&i.on_branch(&i.scripts.read, branch, &args).await?)
    }

    /// Reclaims up to `budget` lapsed holds of `branch` now (calls reclaim some as they go);
    /// how many.
    ///
    /// # Errors
    /// [`BackendError`].
    pub async fn sweep(&self, branch: BranchId, budget: u32) -> Result<u64, BackendError> {
        let i = &self.inner;
        let args = ["sweep".into(), budget.to_string()];
        match i.on_branch(&i.scripts.read, branch, &args).await? {
            Value::Int(n) if n >= 0 => Ok(n as u64),
            _ => Err(BackendError::Reply),
        }
    }

    /// Reclaims every lapsed hold of every branch the book has opened a slot at (each branch
    /// in steps of 10 000, so no one script runs long); how many. What
    /// [`BookBackend::sweep`](crate::BookBackend::sweep) does on Redis.
    ///
    /// # Errors
    /// [`BackendError`]: what was reclaimed before the failure stays reclaimed.
    pub async fn sweep_every_branch(&self) -> Result<u64, BackendError> {
        let mut cursor = "0".to_owned();
        let mut reclaimed = 0;
        loop {
            let (next, branches) = self.registry_page(&cursor).await?;
            for branch in branches {
                loop {
                    let n = self.sweep(branch, RECLAIM_BUDGET).await?;
                    reclaimed += n;
                    if n < u64::from(RECLAIM_BUDGET) {
                        break;
                    }
                }
            }
            if next == "0" {
                return Ok(reclaimed);
            }
            cursor = next;
        }
    }

    /// One page of the branch registry from `cursor`: the next cursor (`"0"` at the end) and
    /// the branches.
    async fn registry_page(&self, cursor: &str) -> Result<(String, Vec<BranchId>), BackendError> {
        let i = &self.inner;
        let registry = i.registry_key();
        let mut scan = redis::cmd("SSCAN");
        scan.arg(&registry)
            .arg(cursor)
            .arg("COUNT")
            .arg(REGISTRY_PAGE);
        reply::registry_page(&i.conn.command(scan, Some(&registry), i.timeout).await?)
    }
}

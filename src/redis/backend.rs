//! [`BookBackend`] for [`RedisSlotBook`] and [`RoomBackend`] for [`RedisWaitingRoom`]: the
//! inherent calls, which already return the traits' results on the traits' time base (the
//! server's clock, in Unix time).

use std::ops::RangeBounds;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{RedisSlotBook, RedisWaitingRoom};
use crate::backend::{BackendError, BookBackend, RoomBackend};
use crate::book::{
    ApplicantId, Booking, BranchId, CapacityError, Channel, CloseError, ConfirmError, Hold,
    HoldToken, Preference, ReleaseError, ReserveError, SlotIndex, SlotQuotas, SlotState,
    StandbyError, StandbyRequest, StandbyTicket,
};
use crate::room::{
    ClaimError, Entry, JoinError, LimitsError, Pass, PollError, RoomStats, TicketToken, VisitorId,
};

/// This node's clock, in Unix time: the stores' instants are their servers' clocks, which NTP
/// keeps within a few milliseconds of it (a reply's own time would be stale by its round trip
/// anyway).
fn system_now_unix() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

impl BookBackend for RedisSlotBook {
    async fn set_channel_quota(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        channel: Channel,
        quota: u32,
    ) -> Result<SlotState, CapacityError> {
        RedisSlotBook::set_channel_quota(self, branch, slot, channel, quota).await
    }

    async fn reserve_on(
        &self,
        channel: Channel,
        branch: BranchId,
        slot: SlotIndex,
        applicant: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        RedisSlotBook::reserve_on(self, channel, branch, slot, applicant).await
    }

    async fn open_channel_quotas(
        &self,
        branch: BranchId,
        slot: SlotIndex,
    ) -> Result<SlotState, CapacityError> {
        RedisSlotBook::open_channel_quotas(self, branch, slot).await
    }

    async fn open_channel_quotas_in(
        &self,
        branch: BranchId,
        slots: impl RangeBounds<SlotIndex> + Send,
    ) -> Result<u32, CapacityError> {
        RedisSlotBook::open_channel_quotas_in(self, branch, slots).await
    }

    async fn channel_quotas(
        &self,
        branch: BranchId,
        slot: SlotIndex,
    ) -> Result<Option<SlotQuotas>, BackendError> {
        RedisSlotBook::channel_quotas(self, branch, slot).await
    }

    async fn standby(
        &self,
        applicant: ApplicantId,
        branches: &[BranchId],
        slots: impl RangeBounds<SlotIndex> + Send,
    ) -> Result<StandbyTicket, StandbyError> {
        RedisSlotBook::standby(self, applicant, branches, slots).await
    }

    async fn standby_offer(&self, applicant: ApplicantId) -> Result<Option<Hold>, BackendError> {
        RedisSlotBook::standby_offer(self, applicant).await
    }

    async fn standby_request(
        &self,
        applicant: ApplicantId,
    ) -> Result<Option<StandbyRequest>, BackendError> {
        RedisSlotBook::standby_request(self, applicant).await
    }

    async fn leave_standby(&self, applicant: ApplicantId) -> Result<bool, BackendError> {
        RedisSlotBook::leave_standby(self, applicant).await
    }

    async fn set_capacity(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        capacity: u32,
    ) -> Result<SlotState, CapacityError> {
        RedisSlotBook::set_capacity(self, branch, slot, capacity).await
    }

    async fn close_slot(&self, branch: BranchId, slot: SlotIndex) -> Result<SlotState, CloseError> {
        RedisSlotBook::close_slot(self, branch, slot).await
    }

    async fn slot(
        &self,
        branch: BranchId,
        slot: SlotIndex,
    ) -> Result<Option<SlotState>, BackendError> {
        RedisSlotBook::slot(self, branch, slot).await
    }

    async fn availability(
        &self,
        branch: BranchId,
        slots: impl RangeBounds<SlotIndex> + Send,
    ) -> Result<Vec<(SlotIndex, SlotState)>, BackendError> {
        RedisSlotBook::availability(self, branch, slots).await
    }

    async fn reserve(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        applicant: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        RedisSlotBook::reserve(self, branch, slot, applicant).await
    }

    async fn reserve_earliest(
        &self,
        branch: BranchId,
        slots: impl RangeBounds<SlotIndex> + Send,
        applicant: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        RedisSlotBook::reserve_earliest(self, branch, slots, applicant).await
    }

    async fn reserve_earliest_among(
        &self,
        branches: &[BranchId],
        slots: impl RangeBounds<SlotIndex> + Send,
        applicant: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        RedisSlotBook::reserve_earliest_among(self, branches, slots, applicant).await
    }

    async fn reserve_among(
        &self,
        branches: &[BranchId],
        slots: impl RangeBounds<SlotIndex> + Send,
        applicant: ApplicantId,
        prefer: Preference,
    ) -> Result<Hold, ReserveError> {
        RedisSlotBook::reserve_among(self, branches, slots, applicant, prefer).await
    }

    async fn confirm(&self, token: HoldToken) -> Result<Booking, ConfirmError> {
        RedisSlotBook::confirm(self, token).await
    }

    async fn release(&self, token: HoldToken) -> Result<(), ReleaseError> {
        RedisSlotBook::release(self, token).await
    }

    async fn hold(&self, token: HoldToken) -> Result<Option<Hold>, BackendError> {
        RedisSlotBook::hold(self, token).await
    }

    async fn booking(&self, token: HoldToken) -> Result<Option<Booking>, BackendError> {
        RedisSlotBook::booking(self, token).await
    }

    async fn holds_of(&self, applicant: ApplicantId) -> Result<Vec<Hold>, BackendError> {
        RedisSlotBook::holds_of(self, applicant).await
    }

    async fn bookings_of(&self, applicant: ApplicantId) -> Result<Vec<Booking>, BackendError> {
        RedisSlotBook::bookings_of(self, applicant).await
    }

    async fn sweep(&self) -> Result<u64, BackendError> {
        self.sweep_every_branch().await
    }

    fn hold_ttl(&self) -> Duration {
        RedisSlotBook::hold_ttl(self)
    }

    fn now_unix(&self) -> Duration {
        system_now_unix()
    }
}

impl RoomBackend for RedisWaitingRoom {
    async fn join(&self, visitor: VisitorId) -> Result<Entry, JoinError> {
        RedisWaitingRoom::join(self, visitor).await
    }

    async fn poll(&self, token: TicketToken) -> Result<Entry, PollError> {
        RedisWaitingRoom::poll(self, token).await
    }

    async fn peek(&self, token: TicketToken) -> Result<Entry, PollError> {
        RedisWaitingRoom::peek(self, token).await
    }

    async fn entry_of(&self, visitor: VisitorId) -> Result<Option<Entry>, BackendError> {
        RedisWaitingRoom::entry_of(self, visitor).await
    }

    async fn claim(&self, token: TicketToken) -> Result<Pass, ClaimError> {
        RedisWaitingRoom::claim(self, token).await
    }

    async fn finish(&self, token: TicketToken) -> Result<(), PollError> {
        RedisWaitingRoom::finish(self, token).await
    }

    async fn stats(&self) -> Result<RoomStats, BackendError> {
        RedisWaitingRoom::stats(self).await
    }

    async fn waiting(&self) -> Result<u64, BackendError> {
        RedisWaitingRoom::waiting(self).await
    }

    async fn pause(&self) -> Result<(), BackendError> {
        RedisWaitingRoom::pause(self).await
    }

    async fn resume(&self) -> Result<(), BackendError> {
        RedisWaitingRoom::resume(self).await
    }

    async fn close(&self) -> Result<(), BackendError> {
        RedisWaitingRoom::close(self).await
    }

    async fn reopen(&self) -> Result<(), BackendError> {
        RedisWaitingRoom::reopen(self).await
    }

    async fn set_limits(
        &self,
        rate_per_second: u32,
        burst: u32,
        max_active: u32,
    ) -> Result<(), LimitsError> {
        RedisWaitingRoom::set_limits(self, rate_per_second, burst, max_active).await
    }

    fn checkin_timeout(&self) -> Duration {
        RedisWaitingRoom::checkin_timeout(self)
    }

    fn now_unix(&self) -> Duration {
        system_now_unix()
    }
}

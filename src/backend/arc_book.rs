//! `BookBackend` for `Arc`s of any implementation: each call forwarded to the book inside, so
//! one book can be shared by the tasks of a server.

use std::future::Future;
use std::ops::RangeBounds;
use std::sync::Arc;
use std::time::Duration;

use super::book::BookBackend;
use crate::book::{
    ApplicantId, Booking, BranchId, CapacityError, Channel, CloseError, ConfirmError, Hold,
    HoldToken, Preference, ReleaseError, ReserveError, SlotIndex, SlotQuotas, SlotState,
    StandbyError, StandbyRequest, StandbyTicket,
};
use crate::failure::BackendError;

impl<B: BookBackend> BookBackend for Arc<B> {
    fn set_capacity(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        capacity: u32,
    ) -> impl Future<Output = Result<SlotState, CapacityError>> + Send {
        (**self).set_capacity(branch, slot, capacity)
    }

    fn close_slot(
        &self,
        branch: BranchId,
        slot: SlotIndex,
    ) -> impl Future<Output = Result<SlotState, CloseError>> + Send {
        (**self).close_slot(branch, slot)
    }

    fn slot(
        &self,
        branch: BranchId,
        slot: SlotIndex,
    ) -> impl Future<Output = Result<Option<SlotState>, BackendError>> + Send {
        (**self).slot(branch, slot)
    }

    fn availability(
        &self,
        branch: BranchId,
        slots: impl RangeBounds<SlotIndex> + Send,
    ) -> impl Future<Output = Result<Vec<(SlotIndex, SlotState)>, BackendError>> + Send {
        (**self).availability(branch, slots)
    }

    fn reserve(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        applicant: ApplicantId,
    ) -> impl Future<Output = Result<Hold, ReserveError>> + Send {
        (**self).reserve(branch, slot, applicant)
    }

    fn reserve_earliest(
        &self,
        branch: BranchId,
        slots: impl RangeBounds<SlotIndex> + Send,
        applicant: ApplicantId,
    ) -> impl Future<Output = Result<Hold, ReserveError>> + Send {
        (**self).reserve_earliest(branch, slots, applicant)
    }

    fn reserve_earliest_among(
        &self,
        branches: &[BranchId],
        slots: impl RangeBounds<SlotIndex> + Send,
        applicant: ApplicantId,
    ) -> impl Future<Output = Result<Hold, ReserveError>> + Send {
        (**self).reserve_earliest_among(branches, slots, applicant)
    }

    fn reserve_among(
        &self,
        branches: &[BranchId],
        slots: impl RangeBounds<SlotIndex> + Send,
        applicant: ApplicantId,
        prefer: Preference,
    ) -> impl Future<Output = Result<Hold, ReserveError>> + Send {
        (**self).reserve_among(branches, slots, applicant, prefer)
    }

    fn set_channel_quota(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        channel: Channel,
        quota: u32,
    ) -> impl Future<Output = Result<SlotState, CapacityError>> + Send {
        (**self).set_channel_quota(branch, slot, channel, quota)
    }

    fn reserve_on(
        &self,
        channel: Channel,
        branch: BranchId,
        slot: SlotIndex,
        applicant: ApplicantId,
    ) -> impl Future<Output = Result<Hold, ReserveError>> + Send {
        (**self).reserve_on(channel, branch, slot, applicant)
    }

    fn open_channel_quotas(
        &self,
        branch: BranchId,
        slot: SlotIndex,
    ) -> impl Future<Output = Result<SlotState, CapacityError>> + Send {
        (**self).open_channel_quotas(branch, slot)
    }

    fn open_channel_quotas_in(
        &self,
        branch: BranchId,
        slots: impl RangeBounds<SlotIndex> + Send,
    ) -> impl Future<Output = Result<u32, CapacityError>> + Send {
        (**self).open_channel_quotas_in(branch, slots)
    }

    fn channel_quotas(
        &self,
        branch: BranchId,
        slot: SlotIndex,
    ) -> impl Future<Output = Result<Option<SlotQuotas>, BackendError>> + Send {
        (**self).channel_quotas(branch, slot)
    }

    fn confirm(
        &self,
        token: HoldToken,
    ) -> impl Future<Output = Result<Booking, ConfirmError>> + Send {
        (**self).confirm(token)
    }

    fn release(&self, token: HoldToken) -> impl Future<Output = Result<(), ReleaseError>> + Send {
        (**self).release(token)
    }

    fn hold(
        &self,
        token: HoldToken,
    ) -> impl Future<Output = Result<Option<Hold>, BackendError>> + Send {
        (**self).hold(token)
    }

    fn booking(
        &self,
        token: HoldToken,
    ) -> impl Future<Output = Result<Option<Booking>, BackendError>> + Send {
        (**self).booking(token)
    }

    fn holds_of(
        &self,
        applicant: ApplicantId,
    ) -> impl Future<Output = Result<Vec<Hold>, BackendError>> + Send {
        (**self).holds_of(applicant)
    }

    fn bookings_of(
        &self,
        applicant: ApplicantId,
    ) -> impl Future<Output = Result<Vec<Booking>, BackendError>> + Send {
        (**self).bookings_of(applicant)
    }

    fn standby(
        &self,
        applicant: ApplicantId,
        branches: &[BranchId],
        slots: impl RangeBounds<SlotIndex> + Send,
    ) -> impl Future<Output = Result<StandbyTicket, StandbyError>> + Send {
        (**self).standby(applicant, branches, slots)
    }
    fn standby_offer(
        &self,
        applicant: ApplicantId,
    ) -> impl Future<Output = Result<Option<Hold>, BackendError>> + Send {
        (**self).standby_offer(applicant)
    }
    fn leave_standby(
        &self,
        applicant: ApplicantId,
    ) -> impl Future<Output = Result<bool, BackendError>> + Send {
        (**self).leave_standby(applicant)
    }
    fn standby_request(
        &self,
        applicant: ApplicantId,
    ) -> impl Future<Output = Result<Option<StandbyRequest>, BackendError>> + Send {
        (**self).standby_request(applicant)
    }

    fn sweep(&self) -> impl Future<Output = Result<u64, BackendError>> + Send {
        (**self).sweep()
    }

    fn hold_ttl(&self) -> Duration {
        (**self).hold_ttl()
    }

    fn now_unix(&self) -> Duration {
        (**self).now_unix()
    }
}

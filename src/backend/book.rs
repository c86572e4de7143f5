//! `BookBackend`: the slot book's calls as a trait, and its implementation by the in-process
//! [`SlotBook`] (whose futures are ready at once); `arc_book.rs` implements it for `Arc`s.

use std::future::Future;
use std::ops::RangeBounds;
use std::time::Duration;

use super::unix_time;
use crate::book::{
    ApplicantId, Booking, BranchId, CapacityError, Channel, CloseError, ConfirmError, Hold,
    HoldToken, Preference, ReleaseError, ReserveError, SlotBook, SlotIndex, SlotQuotas, SlotState,
    StandbyError, StandbyRequest, StandbyTicket,
};
use crate::clock::Clock;
use crate::failure::BackendError;

/// A slot book, in this process or in a shared store: every rule of [`SlotBook`] holds on
/// every implementation, and each method has the meaning of the `SlotBook` method of the same
/// name, with the same arguments.
///
/// Operations return their own error enum, whose `Backend` variant a shared store uses for a
/// lost connection or a timeout (the in-process book never does); readings return
/// `Result<_, BackendError>`. Implemented by [`SlotBook`] with any clock, by
/// `RedisSlotBook` (feature `redis`), and by `Arc`s of implementations.
///
/// **One time base**: every instant a caller gets through this trait ([`Hold::expires_at`],
/// [`now_unix`](Self::now_unix)) is a time since the Unix epoch, on every backend. The
/// in-process book maps its clock's instants with [`Clock::system_time`], the identity for a
/// [`ManualClock`](crate::ManualClock); its inherent methods keep the clock's own instants.
///
/// # Cancel safety
///
/// Dropping a future of a shared store's call before it completes leaves the call in one of
/// the states a lost reply leaves it in: it may or may not have taken effect, and retrying it
/// is safe (rule 4). The in-process book's futures complete on their first poll.
///
/// ```
/// use std::time::Duration;
/// use surgegate::{ApplicantId, BookBackend, BranchId, ManualClock, SlotBook, SystemClock};
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let mut f = std::pin::pin!(f);
/// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// #     loop {
/// #         if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
/// #     }
/// # }
///
/// // Written once, for any book: how long the applicant has left to confirm.
/// async fn seconds_to_confirm<B: BookBackend>(book: &B, applicant: ApplicantId) -> u64 {
///     book.set_capacity(BranchId(1), 0, 5).await.unwrap();
///     let hold = book.reserve(BranchId(1), 0, applicant).await.unwrap();
///     hold.expires_at.saturating_sub(book.now_unix()).as_secs()
/// }
///
/// // A ManualClock's instants are Unix times already: the trait shows the same numbers.
/// let clock = ManualClock::new();
/// clock.advance(Duration::from_secs(1_000));
/// let book = SlotBook::builder().hold_ttl(Duration::from_secs(600)).clock(clock).build();
/// assert_eq!(block_on(seconds_to_confirm(&book, ApplicantId(1))), 600);
/// assert_eq!(book.now_unix(), Duration::from_secs(1_000));
///
/// // The system clock's instants count from its creation; through the trait, from 1970.
/// let book = SlotBook::builder().hold_ttl(Duration::from_secs(600)).clock(SystemClock::new()).build();
/// assert!(book.now_unix() > Duration::from_secs(1_700_000_000));
/// assert!((599..=600).contains(&block_on(seconds_to_confirm(&book, ApplicantId(1)))));
/// ```
pub trait BookBackend: Send + Sync + 'static {
    /// [`SlotBook::set_capacity`]: opens a slot or changes its capacity.
    fn set_capacity(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        capacity: u32,
    ) -> impl Future<Output = Result<SlotState, CapacityError>> + Send;

    /// [`SlotBook::close_slot`]: takes a slot out of `availability` and refuses new holds,
    /// keeping its holds and bookings; the counts before.
    fn close_slot(
        &self,
        branch: BranchId,
        slot: SlotIndex,
    ) -> impl Future<Output = Result<SlotState, CloseError>> + Send;

    /// [`SlotBook::slot`]: one slot's counts, `None` if never opened or closed.
    fn slot(
        &self,
        branch: BranchId,
        slot: SlotIndex,
    ) -> impl Future<Output = Result<Option<SlotState>, BackendError>> + Send;

    /// [`SlotBook::availability`]: every open slot of `branch` in `slots`, in index order.
    fn availability(
        &self,
        branch: BranchId,
        slots: impl RangeBounds<SlotIndex> + Send,
    ) -> impl Future<Output = Result<Vec<(SlotIndex, SlotState)>, BackendError>> + Send;

    /// [`SlotBook::reserve`]: a hold on one slot.
    fn reserve(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        applicant: ApplicantId,
    ) -> impl Future<Output = Result<Hold, ReserveError>> + Send;

    /// [`SlotBook::reserve_earliest`]: a hold on the lowest slot of the range with room.
    fn reserve_earliest(
        &self,
        branch: BranchId,
        slots: impl RangeBounds<SlotIndex> + Send,
        applicant: ApplicantId,
    ) -> impl Future<Output = Result<Hold, ReserveError>> + Send;

    /// [`SlotBook::reserve_earliest_among`]: a hold on the earliest slot with room across
    /// `branches` (ties: the branch listed first).
    fn reserve_earliest_among(
        &self,
        branches: &[BranchId],
        slots: impl RangeBounds<SlotIndex> + Send,
        applicant: ApplicantId,
    ) -> impl Future<Output = Result<Hold, ReserveError>> + Send;

    /// [`SlotBook::reserve_among`]: a hold in one of `branches`, chosen by `prefer`.
    fn reserve_among(
        &self,
        branches: &[BranchId],
        slots: impl RangeBounds<SlotIndex> + Send,
        applicant: ApplicantId,
        prefer: Preference,
    ) -> impl Future<Output = Result<Hold, ReserveError>> + Send;

    /// [`SlotBook::set_channel_quota`]: keeps `quota` units of a slot for `channel` (both
    /// backends keep quotas by the same rules).
    fn set_channel_quota(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        channel: Channel,
        quota: u32,
    ) -> impl Future<Output = Result<SlotState, CapacityError>> + Send;

    /// [`SlotBook::reserve_on`]: a hold taken on `channel`, from its quota first.
    fn reserve_on(
        &self,
        channel: Channel,
        branch: BranchId,
        slot: SlotIndex,
        applicant: ApplicantId,
    ) -> impl Future<Output = Result<Hold, ReserveError>> + Send;

    /// [`SlotBook::open_channel_quotas`]: what the channels left unused becomes open to all.
    fn open_channel_quotas(
        &self,
        branch: BranchId,
        slot: SlotIndex,
    ) -> impl Future<Output = Result<SlotState, CapacityError>> + Send;

    /// [`SlotBook::open_channel_quotas_in`]: the same for every slot of the range; how many.
    fn open_channel_quotas_in(
        &self,
        branch: BranchId,
        slots: impl RangeBounds<SlotIndex> + Send,
    ) -> impl Future<Output = Result<u32, CapacityError>> + Send;

    /// [`SlotBook::channel_quotas`]: a slot's quotas and what each channel took.
    fn channel_quotas(
        &self,
        branch: BranchId,
        slot: SlotIndex,
    ) -> impl Future<Output = Result<Option<SlotQuotas>, BackendError>> + Send;

    /// [`SlotBook::confirm`]: a live hold becomes a booking (a retry returns the same one).
    fn confirm(
        &self,
        token: HoldToken,
    ) -> impl Future<Output = Result<Booking, ConfirmError>> + Send;

    /// [`SlotBook::release`]: gives a live hold or a booking back.
    fn release(&self, token: HoldToken) -> impl Future<Output = Result<(), ReleaseError>> + Send;

    /// [`SlotBook::hold`]: the live hold with this token.
    fn hold(
        &self,
        token: HoldToken,
    ) -> impl Future<Output = Result<Option<Hold>, BackendError>> + Send;

    /// [`SlotBook::booking`]: the booking with this token.
    fn booking(
        &self,
        token: HoldToken,
    ) -> impl Future<Output = Result<Option<Booking>, BackendError>> + Send;

    /// [`SlotBook::holds_of`]: the applicant's live holds.
    fn holds_of(
        &self,
        applicant: ApplicantId,
    ) -> impl Future<Output = Result<Vec<Hold>, BackendError>> + Send;

    /// [`SlotBook::bookings_of`]: the applicant's bookings.
    fn bookings_of(
        &self,
        applicant: ApplicantId,
    ) -> impl Future<Output = Result<Vec<Booking>, BackendError>> + Send;

    /// [`SlotBook::sweep`]: reclaims every expired hold now, in every branch; how many.
    fn sweep(&self) -> impl Future<Output = Result<u64, BackendError>> + Send;

    /// [`SlotBook::standby`]: a place in the standby line (a backend without one answers
    /// `StandbyError::Backend(BackendError::Unsupported)` and changes nothing; both backends
    /// here have one).
    fn standby(
        &self,
        applicant: ApplicantId,
        branches: &[BranchId],
        slots: impl RangeBounds<SlotIndex> + Send,
    ) -> impl Future<Output = Result<StandbyTicket, StandbyError>> + Send;

    /// [`SlotBook::standby_offer`]: the live hold standby gave the applicant.
    fn standby_offer(
        &self,
        applicant: ApplicantId,
    ) -> impl Future<Output = Result<Option<Hold>, BackendError>> + Send;

    /// [`SlotBook::standby_request`]: the applicant's waiting request and what it covers. A
    /// backend that cannot read its line this way answers `BackendError::Unsupported`.
    fn standby_request(
        &self,
        applicant: ApplicantId,
    ) -> impl Future<Output = Result<Option<StandbyRequest>, BackendError>> + Send {
        let _ = applicant;
        async { Err(BackendError::Unsupported) }
    }

    /// [`SlotBook::leave_standby`]: takes the applicant's waiting request out of the line.
    fn leave_standby(
        &self,
        applicant: ApplicantId,
    ) -> impl Future<Output = Result<bool, BackendError>> + Send;

    /// How long a hold lasts unless confirmed.
    fn hold_ttl(&self) -> Duration;

    /// The backend's time now, since the Unix epoch: the base of every [`Hold::expires_at`]
    /// this trait returns.
    fn now_unix(&self) -> Duration;
}

impl<C: Clock> SlotBook<C> {
    /// A hold with its expiry on the traits' time base.
    fn unix_hold(&self, hold: Hold) -> Hold {
        Hold {
            expires_at: unix_time(self.clock(), hold.expires_at),
            ..hold
        }
    }
}

impl<C: Clock> BookBackend for SlotBook<C> {
    async fn set_capacity(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        capacity: u32,
    ) -> Result<SlotState, CapacityError> {
        SlotBook::set_capacity(self, branch, slot, capacity)
    }

    async fn close_slot(&self, branch: BranchId, slot: SlotIndex) -> Result<SlotState, CloseError> {
        SlotBook::close_slot(self, branch, slot)
    }

    async fn slot(
        &self,
        branch: BranchId,
        slot: SlotIndex,
    ) -> Result<Option<SlotState>, BackendError> {
        Ok(SlotBook::slot(self, branch, slot))
    }

    async fn availability(
        &self,
        branch: BranchId,
        slots: impl RangeBounds<SlotIndex> + Send,
    ) -> Result<Vec<(SlotIndex, SlotState)>, BackendError> {
        Ok(SlotBook::availability(self, branch, slots))
    }

    async fn reserve(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        applicant: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        SlotBook::reserve(self, branch, slot, applicant).map(|h| self.unix_hold(h))
    }

    async fn reserve_earliest(
        &self,
        branch: BranchId,
        slots: impl RangeBounds<SlotIndex> + Send,
        applicant: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        SlotBook::reserve_earliest(self, branch, slots, applicant).map(|h| self.unix_hold(h))
    }

    async fn reserve_earliest_among(
        &self,
        branches: &[BranchId],
        slots: impl RangeBounds<SlotIndex> + Send,
        applicant: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        SlotBook::reserve_earliest_among(self, branches, slots, applicant)
            .map(|h| self.unix_hold(h))
    }

    async fn reserve_among(
        &self,
        branches: &[BranchId],
        slots: impl RangeBounds<SlotIndex> + Send,
        applicant: ApplicantId,
        prefer: Preference,
    ) -> Result<Hold, ReserveError> {
        SlotBook::reserve_among(self, branches, slots, applicant, prefer).map(|h| self.unix_hold(h))
    }

    async fn set_channel_quota(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        channel: Channel,
        quota: u32,
    ) -> Result<SlotState, CapacityError> {
        SlotBook::set_channel_quota(self, branch, slot, channel, quota)
    }

    async fn reserve_on(
        &self,
        channel: Channel,
        branch: BranchId,
        slot: SlotIndex,
        applicant: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        SlotBook::reserve_on(self, channel, branch, slot, applicant).map(|h| self.unix_hold(h))
    }

    async fn open_channel_quotas(
        &self,
        branch: BranchId,
        slot: SlotIndex,
    ) -> Result<SlotState, CapacityError> {
        SlotBook::open_channel_quotas(self, branch, slot)
    }

    async fn open_channel_quotas_in(
        &self,
        branch: BranchId,
        slots: impl RangeBounds<SlotIndex> + Send,
    ) -> Result<u32, CapacityError> {
        SlotBook::open_channel_quotas_in(self, branch, slots)
    }

    async fn channel_quotas(
        &self,
        branch: BranchId,
        slot: SlotIndex,
    ) -> Result<Option<SlotQuotas>, BackendError> {
        Ok(SlotBook::channel_quotas(self, branch, slot))
    }

    async fn confirm(&self, token: HoldToken) -> Result<Booking, ConfirmError> {
        SlotBook::confirm(self, token)
    }

    async fn release(&self, token: HoldToken) -> Result<(), ReleaseError> {
        SlotBook::release(self, token)
    }

    async fn hold(&self, token: HoldToken) -> Result<Option<Hold>, BackendError> {
        Ok(SlotBook::hold(self, token).map(|h| self.unix_hold(h)))
    }

    async fn booking(&self, token: HoldToken) -> Result<Option<Booking>, BackendError> {
        Ok(SlotBook::booking(self, token))
    }

    async fn holds_of(&self, applicant: ApplicantId) -> Result<Vec<Hold>, BackendError> {
        let holds = SlotBook::holds_of(self, applicant);
        Ok(holds.into_iter().map(|h| self.unix_hold(h)).collect())
    }

    async fn bookings_of(&self, applicant: ApplicantId) -> Result<Vec<Booking>, BackendError> {
        Ok(SlotBook::bookings_of(self, applicant))
    }

    async fn standby(
        &self,
        applicant: ApplicantId,
        branches: &[BranchId],
        slots: impl RangeBounds<SlotIndex> + Send,
    ) -> Result<StandbyTicket, StandbyError> {
        SlotBook::standby(self, applicant, branches, slots)
    }
    async fn standby_offer(&self, applicant: ApplicantId) -> Result<Option<Hold>, BackendError> {
        Ok(SlotBook::standby_offer(self, applicant).map(|h| self.unix_hold(h)))
    }
    async fn leave_standby(&self, applicant: ApplicantId) -> Result<bool, BackendError> {
        Ok(SlotBook::leave_standby(self, applicant))
    }
    async fn standby_request(
        &self,
        applicant: ApplicantId,
    ) -> Result<Option<StandbyRequest>, BackendError> {
        Ok(SlotBook::standby_request(self, applicant))
    }

    async fn sweep(&self) -> Result<u64, BackendError> {
        Ok(SlotBook::sweep(self) as u64)
    }

    fn hold_ttl(&self) -> Duration {
        SlotBook::hold_ttl(self)
    }

    fn now_unix(&self) -> Duration {
        unix_time(self.clock(), self.now())
    }
}

//! The book and the room behind the gate, as two traits, so that one code path serves the
//! embedded durable book with the in-process room and the Redis book and room shared by many
//! gate nodes. Every handler is generic over [`GateBook`] and [`GateRoom`].
//!
//! [`BookApi`] names the calls of the crate's book backend one for one (same names, argument
//! types and results; every instant a time since the Unix epoch on every backend); [`GateBook`]
//! and [`GateRoom`] add what only the gate needs (a checkpoint at exit, the journal's counters,
//! an operator's view of the room).

mod local;
mod shared;

use std::future::Future;
use std::ops::Range;

use serde::Serialize;
use surgegate::{
    ApplicantId, BackendError, Booking, BranchId, CapacityError, ConfirmError, Hold, HoldToken,
    JournalStats, ReleaseError, ReserveError, SlotIndex, SlotState,
};

pub use local::open_local;
pub use shared::open_shared;

/// The book's calls the booking API and the admin API make.
pub trait BookApi: Send + Sync + 'static {
    /// Opens a slot with `capacity` units, or changes it.
    fn set_capacity(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        capacity: u32,
    ) -> impl Future<Output = Result<SlotState, CapacityError>> + Send;
    /// One slot's counts (`None`: never opened).
    fn slot(
        &self,
        branch: BranchId,
        slot: SlotIndex,
    ) -> impl Future<Output = Result<Option<SlotState>, BackendError>> + Send;
    /// The opened slots of a branch in a range.
    fn availability(
        &self,
        branch: BranchId,
        slots: Range<SlotIndex>,
    ) -> impl Future<Output = Result<Vec<(SlotIndex, SlotState)>, BackendError>> + Send;
    /// A hold on one slot.
    fn reserve(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        applicant: ApplicantId,
    ) -> impl Future<Output = Result<Hold, ReserveError>> + Send;
    /// A hold on the earliest slot with room among branches (ties: the branch listed first).
    fn reserve_earliest_among(
        &self,
        branches: &[BranchId],
        slots: Range<SlotIndex>,
        applicant: ApplicantId,
    ) -> impl Future<Output = Result<Hold, ReserveError>> + Send;
    /// A hold confirmed into a booking.
    fn confirm(
        &self,
        token: HoldToken,
    ) -> impl Future<Output = Result<Booking, ConfirmError>> + Send;
    /// A hold or a booking given back.
    fn release(&self, token: HoldToken) -> impl Future<Output = Result<(), ReleaseError>> + Send;
    /// A live hold.
    fn hold(
        &self,
        token: HoldToken,
    ) -> impl Future<Output = Result<Option<Hold>, BackendError>> + Send;
    /// A booking.
    fn booking(
        &self,
        token: HoldToken,
    ) -> impl Future<Output = Result<Option<Booking>, BackendError>> + Send;
    /// An applicant's bookings.
    fn bookings_of(
        &self,
        applicant: ApplicantId,
    ) -> impl Future<Output = Result<Vec<Booking>, BackendError>> + Send;
}

/// What the gate needs of a book beyond [`BookApi`].
pub trait GateBook: BookApi {
    /// The journal's counters (an embedded durable book only).
    fn journal_stats(&self) -> Option<JournalStats>;
    /// Writes a checkpoint before exit (an embedded durable book only); what was written.
    fn checkpoint(&self) -> Result<String, String>;
    /// Reclaims lapsed holds (memory only: a lapsed hold never blocks a reservation).
    fn sweep(&self) -> impl Future<Output = ()> + Send;
    /// Whether the book's store answers.
    fn ready(&self) -> impl Future<Output = Result<(), String>> + Send;
    /// Which store this is, for logs and `/admin/stats`.
    fn kind(&self) -> &'static str;
}

/// The room's counts and settings, from either room.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct RoomView {
    /// Visitors in line.
    pub waiting: u64,
    /// Visitors in the pre-queue of a scheduled opening.
    pub prequeued: u64,
    /// Live passes.
    pub active: u64,
    /// Visitors admitted since the room began.
    pub admitted_total: u64,
    /// Waiting visitors dropped for not checking in.
    pub dropped_total: u64,
    /// Visitors who left the line or gave their pass back.
    pub left_total: u64,
    /// Admissions stopped by an operator.
    pub paused: bool,
    /// Newcomers refused.
    pub closed: bool,
    /// Admissions a second.
    pub rate_per_second: u32,
    /// Admissions at once.
    pub burst: u32,
    /// Live passes at once.
    pub max_active: u32,
    /// A scheduled opening not yet reached, in Unix seconds.
    pub opens_at_unix_s: Option<u64>,
    /// The seed of the pre-queue draw.
    pub prequeue_seed: Option<u64>,
}

/// What the gate needs of a room beyond the layer's calls.
pub trait GateRoom: surgegate::http::RoomBackend {
    /// Counts and settings now.
    fn view(&self) -> impl Future<Output = Result<RoomView, BackendError>> + Send;
    /// Schedules an opening with a pre-queue draw at Unix second `at_unix_s`.
    fn open_at(&self, at_unix_s: u64, seed: u64) -> Result<(), &'static str>;
}

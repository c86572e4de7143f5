//! The embedded stores: a durable [`SlotBook`] in `[book] data_dir` and an in-process
//! [`WaitingRoom`], both on the system clock. Instants are turned into times since the Unix
//! epoch here, so that the handlers see the same time base as on Redis.

use std::ops::Range;
use std::time::{Duration, UNIX_EPOCH};

use surgegate::{
    ApplicantId, BackendError, Booking, BranchId, CapacityError, Clock, ConfirmError, Hold,
    HoldToken, JournalStats, ReleaseError, ReserveError, SlotBook, SlotIndex, SlotState,
    WaitingRoom,
};

use super::{BookApi, GateBook, GateRoom, RoomView};
use crate::config::Settings;

/// Opens the durable book in `[book] data_dir` and builds the room from `[room]`.
///
/// # Errors
/// What could not be opened, and where.
pub fn open_local(s: &Settings) -> Result<(SlotBook, WaitingRoom), String> {
    let dir = &s.book.data_dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("book.data_dir: cannot create {}: {e}", dir.display()))?;
    let book = SlotBook::builder()
        .hold_ttl(s.book.hold_ttl)
        .max_active_per_applicant(s.book.max_active_per_applicant)
        .max_branches(s.book.max_branches)
        .max_slots_per_branch(s.book.max_slots_per_branch)
        .open(dir)
        .map_err(|e| {
            format!(
                "book.data_dir: cannot open the book in {}: {e}",
                dir.display()
            )
        })?;
    let r = &s.room;
    let mut room = WaitingRoom::builder()
        .rate_per_second(r.rate_per_second)
        .burst(r.burst)
        .max_active(r.max_active)
        .max_waiting(r.max_waiting)
        .checkin_timeout(r.checkin_timeout)
        .pass_ttl(r.pass_ttl);
    if let Some(t) = r.claim_timeout {
        room = room.claim_timeout(t);
    }
    let room = room.try_build().map_err(|e| format!("room: {e}"))?;
    Ok((book, room))
}

/// Runs a call that waits for the journal's fsync. On the gate's multi-threaded runtime the
/// worker hands its other tasks on while it waits, so that many confirmations wait at once
/// and share one fsync (group commit) instead of each worker waiting for its own; elsewhere
/// (a single-threaded runtime, no runtime) the call simply runs.
fn journaled<T>(call: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(call)
        }
        _ => call(),
    }
}

fn unix<C: Clock>(clock: &C, at: Duration) -> Duration {
    clock
        .system_time(at)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn on_unix<C: Clock>(book: &SlotBook<C>, hold: Hold) -> Hold {
    Hold {
        expires_at: unix(book.clock(), hold.expires_at),
        ..hold
    }
}

impl<C: Clock> BookApi for SlotBook<C> {
    async fn set_capacity(
        &self,
        b: BranchId,
        s: SlotIndex,
        n: u32,
    ) -> Result<SlotState, CapacityError> {
        journaled(|| SlotBook::set_capacity(self, b, s, n))
    }

    async fn slot(&self, b: BranchId, s: SlotIndex) -> Result<Option<SlotState>, BackendError> {
        Ok(SlotBook::slot(self, b, s))
    }

    async fn availability(
        &self,
        b: BranchId,
        slots: Range<SlotIndex>,
    ) -> Result<Vec<(SlotIndex, SlotState)>, BackendError> {
        Ok(SlotBook::availability(self, b, slots))
    }

    async fn reserve(
        &self,
        b: BranchId,
        s: SlotIndex,
        a: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        SlotBook::reserve(self, b, s, a).map(|h| on_unix(self, h))
    }

    async fn reserve_earliest_among(
        &self,
        branches: &[BranchId],
        slots: Range<SlotIndex>,
        a: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        SlotBook::reserve_earliest_among(self, branches, slots, a).map(|h| on_unix(self, h))
    }

    async fn confirm(&self, token: HoldToken) -> Result<Booking, ConfirmError> {
        journaled(|| SlotBook::confirm(self, token))
    }

    async fn release(&self, token: HoldToken) -> Result<(), ReleaseError> {
        journaled(|| SlotBook::release(self, token))
    }

    async fn hold(&self, token: HoldToken) -> Result<Option<Hold>, BackendError> {
        Ok(SlotBook::hold(self, token).map(|h| on_unix(self, h)))
    }

    async fn booking(&self, token: HoldToken) -> Result<Option<Booking>, BackendError> {
        Ok(SlotBook::booking(self, token))
    }

    async fn bookings_of(&self, a: ApplicantId) -> Result<Vec<Booking>, BackendError> {
        Ok(SlotBook::bookings_of(self, a))
    }
}

impl<C: Clock> GateBook for SlotBook<C> {
    fn journal_stats(&self) -> Option<JournalStats> {
        SlotBook::journal_stats(self)
    }

    fn checkpoint(&self) -> Result<String, String> {
        if !self.is_durable() {
            return Ok("the book is in memory: nothing to write".into());
        }
        SlotBook::checkpoint(self)
            .map(|info| {
                format!(
                    "checkpoint written: {} open slots, {} bookings",
                    info.slots, info.bookings
                )
            })
            .map_err(|e| format!("checkpoint failed ({e}); the journal still holds every booking"))
    }

    async fn sweep(&self) {
        SlotBook::sweep(self);
    }

    async fn ready(&self) -> Result<(), String> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "embedded"
    }
}

impl<C: Clock> GateRoom for WaitingRoom<C> {
    async fn view(&self) -> Result<RoomView, BackendError> {
        let s = self.stats();
        Ok(RoomView {
            waiting: s.waiting,
            prequeued: s.prequeued,
            active: s.active,
            admitted_total: s.admitted_total,
            dropped_total: s.dropped_total,
            left_total: s.left_total,
            paused: s.paused,
            closed: s.closed,
            rate_per_second: s.rate_per_second,
            burst: s.burst,
            max_active: s.max_active,
            opens_at_unix_s: s.opens_at.map(|at| unix(self.clock(), at).as_secs()),
            prequeue_seed: s.prequeue_seed,
        })
    }

    fn open_at(&self, at_unix_s: u64, seed: u64) -> Result<(), &'static str> {
        let now = self.clock().now();
        let now_unix = unix(self.clock(), now);
        let ahead = Duration::from_secs(at_unix_s).saturating_sub(now_unix);
        if ahead.is_zero() {
            return Err("the opening time has passed: the room is open");
        }
        WaitingRoom::open_at(self, now + ahead, seed);
        Ok(())
    }
}

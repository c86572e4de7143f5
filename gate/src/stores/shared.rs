//! The stores on Redis (a server or a cluster): [`RedisSlotBook`] and [`RedisWaitingRoom`],
//! shared by every gate node started with the same `[redis]` section and secret.

use std::ops::Range;

use surgegate::book::MAX_ALTERNATIVES;
use surgegate::redis::{RedisSlotBook, RedisWaitingRoom};
use surgegate::{
    ApplicantId, BackendError, Booking, BranchId, CapacityError, ConfirmError, Hold, HoldToken,
    JournalStats, ReleaseError, ReserveError, SlotIndex, SlotState,
};

use super::{BookApi, GateBook, GateRoom, RoomView};
use crate::config::Settings;

/// Connects the book and the room to `[redis]`.
///
/// # Errors
/// What could not be reached or set up.
pub async fn open_shared(s: &Settings) -> Result<(RedisSlotBook, RedisWaitingRoom), String> {
    let Some(r) = &s.redis else {
        return Err("no [redis] section".into());
    };
    let urls: Vec<&str> = r.urls.iter().map(String::as_str).collect();
    let mut book = RedisSlotBook::builder()
        .hold_ttl(s.book.hold_ttl)
        .max_active_per_applicant(s.book.max_active_per_applicant)
        .namespace(r.namespace.clone());
    if let Some(t) = r.timeout {
        book = book.timeout(t);
    }
    if r.allow_unsynced {
        book = book.allow_unsynced();
    }
    let book = book
        .connect(&urls)
        .await
        .map_err(|e| format!("redis.urls: the book: {e}"))?;
    let q = &s.room;
    let mut room = RedisWaitingRoom::builder()
        .rate_per_second(q.rate_per_second)
        .burst(q.burst)
        .max_active(q.max_active)
        .max_waiting(q.max_waiting)
        .checkin_timeout(q.checkin_timeout)
        .pass_ttl(q.pass_ttl)
        .namespace(r.namespace.clone());
    if let Some(t) = q.claim_timeout {
        room = room.claim_timeout(t);
    }
    if let Some(t) = r.timeout {
        room = room.timeout(t);
    }
    let room = room
        .connect(&urls)
        .await
        .map_err(|e| format!("redis.urls: the room: {e}"))?;
    Ok((book, room))
}

impl BookApi for RedisSlotBook {
    async fn set_capacity(
        &self,
        b: BranchId,
        s: SlotIndex,
        n: u32,
    ) -> Result<SlotState, CapacityError> {
        RedisSlotBook::set_capacity(self, b, s, n).await
    }

    async fn slot(&self, b: BranchId, s: SlotIndex) -> Result<Option<SlotState>, BackendError> {
        RedisSlotBook::slot(self, b, s).await
    }

    async fn availability(
        &self,
        b: BranchId,
        slots: Range<SlotIndex>,
    ) -> Result<Vec<(SlotIndex, SlotState)>, BackendError> {
        RedisSlotBook::availability(self, b, slots).await
    }

    async fn reserve(
        &self,
        b: BranchId,
        s: SlotIndex,
        a: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        RedisSlotBook::reserve(self, b, s, a).await
    }

    /// The earliest slot with room across `branches`, by reading each branch's availability
    /// and reserving the earliest candidate (the next one when it filled meanwhile). Every
    /// book rule still holds, since each reservation is one atomic script on its branch; only
    /// the choice between branches may be out of date by the time of the reservation.
    async fn reserve_earliest_among(
        &self,
        branches: &[BranchId],
        slots: Range<SlotIndex>,
        a: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        if branches.is_empty() || branches.len() > MAX_ALTERNATIVES {
            return Err(ReserveError::Alternatives {
                max: MAX_ALTERNATIVES as u32,
            });
        }
        if slots.is_empty() {
            return Err(ReserveError::EmptyRange);
        }
        // A retry returns the hold the applicant already has in one of the branches and the range.
        let held = self.holds_of(a).await.map_err(ReserveError::Backend)?;
        if let Some(h) = held
            .into_iter()
            .find(|h| branches.contains(&h.branch) && slots.contains(&h.slot))
        {
            return Ok(h);
        }
        let mut candidates = Vec::new();
        let mut known = false;
        for (rank, &b) in branches.iter().enumerate() {
            let open = RedisSlotBook::availability(self, b, slots.clone())
                .await
                .map_err(ReserveError::Backend)?;
            known |= !open.is_empty();
            candidates.extend(
                open.iter()
                    .filter(|(_, st)| st.remaining() > 0)
                    .map(|&(s, _)| (s, rank, b)),
            );
        }
        candidates.sort_unstable_by_key(|&(s, rank, _)| (s, rank));
        for (s, _, b) in candidates {
            match RedisSlotBook::reserve(self, b, s, a).await {
                Err(ReserveError::Full) => continue,
                other => return other,
            }
        }
        Err(if known {
            ReserveError::NoneAvailable
        } else {
            ReserveError::UnknownSlot
        })
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

    async fn bookings_of(&self, a: ApplicantId) -> Result<Vec<Booking>, BackendError> {
        RedisSlotBook::bookings_of(self, a).await
    }
}

impl GateBook for RedisSlotBook {
    fn journal_stats(&self) -> Option<JournalStats> {
        None
    }

    fn checkpoint(&self) -> Result<String, String> {
        Ok("the book is on Redis: nothing to write here".into())
    }

    async fn sweep(&self) {
        // Lapsed holds are reclaimed by every script on their branch; a periodic sweep of
        // every branch would cost a call per branch for memory alone.
    }

    async fn ready(&self) -> Result<(), String> {
        RedisSlotBook::slot(self, BranchId(0), 0)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

impl GateRoom for RedisWaitingRoom {
    async fn view(&self) -> Result<RoomView, BackendError> {
        let s = self.stats().await?;
        Ok(RoomView {
            waiting: s.waiting,
            prequeued: 0,
            active: s.active,
            admitted_total: s.admitted_total,
            dropped_total: s.dropped_total,
            left_total: s.left_total,
            paused: s.paused,
            closed: s.closed,
            rate_per_second: s.rate_per_second,
            burst: s.burst,
            max_active: s.max_active,
            opens_at_unix_s: None,
            prequeue_seed: None,
        })
    }

    fn open_at(&self, _at_unix_s: u64, _seed: u64) -> Result<(), &'static str> {
        Err("a scheduled opening with a draw needs the in-process room")
    }
}

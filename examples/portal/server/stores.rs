//! The book and the room behind the portal: in this process, or on Redis (`--redis`), where
//! every portal node shares one line and one book. One enum each, with the calls the portal
//! makes, so the handlers do not care which.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use surgegate::http::RoomBackend;
use surgegate::redis::{RedisSlotBook, RedisWaitingRoom};
use surgegate::{
    ApplicantId, BackendError, Booking, BranchId, CapacityError, ClaimError, ConfirmError, Entry,
    Hold, HoldToken, JoinError, JournalStats, Pass, PollError, ReleaseError, ReserveError,
    SlotBook, SlotIndex, SlotState, TicketToken, VisitorId, WaitingRoom,
};

pub enum Book {
    Local(Arc<SlotBook>),
    Shared(RedisSlotBook),
}

impl Book {
    pub async fn set_capacity(
        &self,
        b: BranchId,
        s: SlotIndex,
        capacity: u32,
    ) -> Result<SlotState, CapacityError> {
        match self {
            Book::Local(book) => book.set_capacity(b, s, capacity),
            Book::Shared(book) => book.set_capacity(b, s, capacity).await,
        }
    }

    pub async fn availability(
        &self,
        b: BranchId,
        slots: std::ops::Range<SlotIndex>,
    ) -> Result<Vec<(SlotIndex, SlotState)>, BackendError> {
        match self {
            Book::Local(book) => Ok(book.availability(b, slots)),
            Book::Shared(book) => book.availability(b, slots).await,
        }
    }

    pub async fn reserve(
        &self,
        b: BranchId,
        s: SlotIndex,
        a: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        match self {
            Book::Local(book) => book.reserve(b, s, a),
            Book::Shared(book) => book.reserve(b, s, a).await,
        }
    }

    pub async fn reserve_earliest(
        &self,
        b: BranchId,
        slots: std::ops::Range<SlotIndex>,
        a: ApplicantId,
    ) -> Result<Hold, ReserveError> {
        match self {
            Book::Local(book) => book.reserve_earliest(b, slots, a),
            Book::Shared(book) => book.reserve_earliest(b, slots, a).await,
        }
    }

    pub async fn confirm(&self, token: HoldToken) -> Result<Booking, ConfirmError> {
        match self {
            Book::Local(book) => book.confirm(token),
            Book::Shared(book) => book.confirm(token).await,
        }
    }

    pub async fn release(&self, token: HoldToken) -> Result<(), ReleaseError> {
        match self {
            Book::Local(book) => book.release(token),
            Book::Shared(book) => book.release(token).await,
        }
    }

    pub async fn hold(&self, token: HoldToken) -> Result<Option<Hold>, BackendError> {
        match self {
            Book::Local(book) => Ok(book.hold(token)),
            Book::Shared(book) => book.hold(token).await,
        }
    }

    pub async fn booking(&self, token: HoldToken) -> Result<Option<Booking>, BackendError> {
        match self {
            Book::Local(book) => Ok(book.booking(token)),
            Book::Shared(book) => book.booking(token).await,
        }
    }

    pub async fn holds_of(&self, a: ApplicantId) -> Result<Vec<Hold>, BackendError> {
        match self {
            Book::Local(book) => Ok(book.holds_of(a)),
            Book::Shared(book) => book.holds_of(a).await,
        }
    }

    pub async fn bookings_of(&self, a: ApplicantId) -> Result<Vec<Booking>, BackendError> {
        match self {
            Book::Local(book) => Ok(book.bookings_of(a)),
            Book::Shared(book) => book.bookings_of(a).await,
        }
    }

    /// Seconds until `hold` lapses, by the clock its `expires_at` is on.
    pub fn seconds_left(&self, hold: &Hold) -> u64 {
        let now = match self {
            Book::Local(book) => book.now(),
            Book::Shared(_) => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
        };
        hold.expires_at.saturating_sub(now).as_secs()
    }

    /// The journal's counters (a book in this process only; Redis keeps its own).
    pub fn journal_stats(&self) -> Option<JournalStats> {
        match self {
            Book::Local(book) => book.journal_stats(),
            Book::Shared(_) => None,
        }
    }

    /// The book in this process (for the checkpoint at shutdown); `None` on Redis.
    pub fn local(&self) -> Option<&SlotBook> {
        match self {
            Book::Local(book) => Some(book),
            Book::Shared(_) => None,
        }
    }
}

/// The room's counts and settings, from either room.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct RoomView {
    pub waiting: u64,
    pub active: u64,
    pub admitted_total: u64,
    pub dropped_total: u64,
    pub paused: bool,
    pub closed: bool,
    pub rate_per_second: u32,
    pub burst: u32,
    pub max_active: u32,
}

#[derive(Clone)]
pub enum Room {
    Local(Arc<WaitingRoom>),
    Shared(RedisWaitingRoom),
}

impl Room {
    pub async fn view(&self) -> Result<RoomView, BackendError> {
        Ok(match self {
            Room::Local(room) => {
                let s = room.stats();
                RoomView {
                    waiting: s.waiting,
                    active: s.active,
                    admitted_total: s.admitted_total,
                    dropped_total: s.dropped_total,
                    paused: s.paused,
                    closed: s.closed,
                    rate_per_second: s.rate_per_second,
                    burst: s.burst,
                    max_active: s.max_active,
                }
            }
            Room::Shared(room) => {
                let s = room.stats().await?;
                RoomView {
                    waiting: s.waiting,
                    active: s.active,
                    admitted_total: s.admitted_total,
                    dropped_total: s.dropped_total,
                    paused: s.paused,
                    closed: s.closed,
                    rate_per_second: s.rate_per_second,
                    burst: s.burst,
                    max_active: s.max_active,
                }
            }
        })
    }

    /// Pause, resume, close or reopen.
    pub async fn control(&self, what: &str) -> Result<(), BackendError> {
        match self {
            Room::Local(room) => {
                match what {
                    "pause" => room.pause(),
                    "resume" => room.resume(),
                    "close" => room.close(),
                    _ => room.reopen(),
                }
                Ok(())
            }
            Room::Shared(room) => match what {
                "pause" => room.pause().await,
                "resume" => room.resume().await,
                "close" => room.close().await,
                _ => room.reopen().await,
            },
        }
    }

    /// Sets the three limits, already checked together by the caller.
    pub async fn set_limits(&self, rate: u32, burst: u32, max_active: u32) -> Result<(), String> {
        match self {
            Room::Local(room) => room
                .set_rate_per_second(rate)
                .and(room.set_burst(burst))
                .and(room.set_max_active(max_active))
                .map_err(|e| e.to_string()),
            Room::Shared(room) => room
                .set_limits(rate, burst, max_active)
                .await
                .map_err(|e| e.to_string()),
        }
    }
}

impl RoomBackend for Room {
    async fn join(&self, visitor: VisitorId) -> Result<Entry, JoinError> {
        match self {
            Room::Local(room) => WaitingRoom::join(room, visitor),
            Room::Shared(room) => RedisWaitingRoom::join(room, visitor).await,
        }
    }

    async fn entry_of(&self, visitor: VisitorId) -> Result<Option<Entry>, PollError> {
        match self {
            Room::Local(room) => Ok(WaitingRoom::entry_of(room, visitor)),
            Room::Shared(room) => RedisWaitingRoom::entry_of(room, visitor)
                .await
                .map_err(PollError::Backend),
        }
    }

    async fn claim(&self, token: TicketToken) -> Result<Pass, ClaimError> {
        match self {
            Room::Local(room) => WaitingRoom::claim(room, token),
            Room::Shared(room) => RedisWaitingRoom::claim(room, token).await,
        }
    }

    async fn finish(&self, token: TicketToken) -> Result<(), PollError> {
        match self {
            Room::Local(room) => WaitingRoom::finish(room, token),
            Room::Shared(room) => RedisWaitingRoom::finish(room, token).await,
        }
    }

    async fn waiting(&self) -> Option<u64> {
        match self {
            Room::Local(room) => Some(WaitingRoom::waiting(room)),
            Room::Shared(room) => room.stats().await.ok().map(|s| s.waiting),
        }
    }

    fn checkin_timeout(&self) -> Duration {
        match self {
            Room::Local(room) => WaitingRoom::checkin_timeout(room),
            Room::Shared(room) => RedisWaitingRoom::checkin_timeout(room),
        }
    }

    fn unix_s(&self, at: Duration) -> u64 {
        match self {
            Room::Local(room) => RoomBackend::unix_s(room.as_ref(), at),
            Room::Shared(room) => RoomBackend::unix_s(room, at),
        }
    }

    fn now_unix_s(&self) -> u64 {
        match self {
            Room::Local(room) => RoomBackend::now_unix_s(room.as_ref()),
            Room::Shared(room) => RoomBackend::now_unix_s(room),
        }
    }
}

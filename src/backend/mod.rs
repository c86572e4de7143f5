//! One API for every backend: [`BookBackend`] and [`RoomBackend`], the book's and the room's
//! calls as traits, so that code written once runs on the in-process [`SlotBook`] and
//! [`WaitingRoom`] and on the types of a shared store (`RedisSlotBook`, `RedisWaitingRoom`,
//! feature `redis`) alike; and [`BackendError`], what such a store's failure looks like.
//!
//! Files: `book` (`BookBackend` and its in-process implementation), `arc_book` (its
//! implementation by `Arc`s),
//! `room` (`RoomBackend` and its in-process implementation). The Redis implementations live
//! beside the Redis types. `BackendError` lives in `crate::failure`, below the book and the room
//! whose errors carry it.
//!
//! # One time base
//!
//! Every instant a caller gets through a trait ([`Hold::expires_at`], [`Pass::expires_at`],
//! [`RoomStats::opens_at`], `now_unix()`) is a time since the Unix epoch, on every backend: the
//! in-process implementations map their clock's instants with [`Clock::system_time`] (for a
//! [`ManualClock`] that is the identity, so tests see the same numbers), and a shared store
//! keeps Unix time already. Durations (a ticket's ETA, a `retry_after`) are relative and the
//! same either way. The inherent in-process methods keep their clock-based instants.
//!
//! [`SlotBook`]: crate::SlotBook
//! [`WaitingRoom`]: crate::WaitingRoom
//! [`Hold::expires_at`]: crate::Hold::expires_at
//! [`Pass::expires_at`]: crate::Pass::expires_at
//! [`RoomStats::opens_at`]: crate::RoomStats::opens_at
//! [`Clock::system_time`]: crate::Clock::system_time
//! [`ManualClock`]: crate::ManualClock

mod arc_book;
mod book;
mod room;

use std::time::{Duration, UNIX_EPOCH};

use crate::clock::Clock;

pub use crate::failure::BackendError;
pub use book::BookBackend;
pub use room::RoomBackend;

/// Instant `at` of `clock` as a time since the Unix epoch (zero for an instant before it).
pub(crate) fn unix_time<C: Clock + ?Sized>(clock: &C, at: Duration) -> Duration {
    clock
        .system_time(at)
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

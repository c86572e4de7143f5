//! surgegate: the embeddable core of a public service's launch day.
//!
//! Two primitives, both safe to share between any number of threads, neither starting a thread
//! of its own (but for the fsync timer of a durable book in [`Durability::Flush`] mode):
//!
//! - [`SlotBook`]: appointment capacity per (branch, slot) with holds that expire unless
//!   confirmed. A reservation is one compare-and-swap on the slot's packed counter; it can never
//!   overbook, however many threads race for the last unit. Opened from a directory
//!   ([`SlotBookBuilder::open`]), it journals every booking before confirming it and recovers
//!   them after a crash (see [`journal`]).
//! - [`WaitingRoom`]: admits visitors at the rate the backend can take and queues everyone else
//!   fairly: an exact place in line, an honest ETA, and a refresh never loses your place.
//!
//! Both read time from a [`Clock`], so every time-dependent rule can be driven by a
//! [`ManualClock`] in tests; [`Clock::system_time`] turns their instants into wall-clock times to
//! show. [`BookBackend`] and [`RoomBackend`] are their calls as async traits, implemented by
//! these in-process types and by the Redis ones (feature `redis`), so a portal is written once
//! for one machine or many; every instant through them is a time since the Unix epoch. [`calendar::Calendar`] numbers a branch's days and windows as slot indices, and an
//! [`AllocationRound`] hands out scarce appointments by a seeded draw instead of by speed.
//!
//! # An applicant's flow
//!
//! ```
//! use std::time::Duration;
//! use surgegate::{ApplicantId, BranchId, Entry, ManualClock, SlotBook, VisitorId, WaitingRoom};
//!
//! let clock = ManualClock::new();
//! let room = WaitingRoom::builder()
//!     .rate_per_second(2)
//!     .burst(1)
//!     .clock(clock.clone())
//!     .build();
//! let book = SlotBook::builder()
//!     .hold_ttl(Duration::from_secs(600))
//!     .clock(clock.clone())
//!     .build();
//! book.set_capacity(BranchId(7), 0, 40)?;
//!
//! // The first visitor is admitted at once; the second waits for the rate.
//! let Entry::Admitted(pass) = room.join(VisitorId(1))? else { unreachable!() };
//! let Entry::Waiting(ticket) = room.join(VisitorId(2))? else { unreachable!() };
//! assert_eq!(ticket.position, 1);
//!
//! // The admitted visitor registers, then takes the earliest appointment and confirms it.
//! let hold = book.reserve_earliest(BranchId(7), 0..365, ApplicantId(1))?;
//! let booking = book.confirm(hold.token)?;
//! assert_eq!(book.booking(booking.token), Some(booking));
//! room.finish(pass.token)?;
//!
//! // Half a second later the second visitor's turn has come.
//! clock.advance(Duration::from_millis(500));
//! assert!(matches!(room.poll(ticket.token)?, Entry::Admitted(_)));
//!
//! // Changing one's mind gives the unit back.
//! book.release(booking.token)?;
//! assert_eq!(book.slot(BranchId(7), 0).unwrap().remaining(), 40);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! - `tokio`: [`WaitingRoom::wait`], an async, cancel-safe wait for a ticket's turn, and
//!   `TokioClock`.
//! - `http`: [`http`], a tower layer that puts routes behind a waiting room (implies `pass`).
//! - `redis`: [`redis`], the slot book and the waiting room on Redis or a Redis Cluster, for many
//!   portal nodes (implies `pass`).
//! - `serde`: `Serialize`/`Deserialize` for the result types (`Ticket`, `Pass`, `Entry`,
//!   `RoomStats`, `Hold`, `Booking`, `SlotState`, ids and tokens; tokens as their text).
//! - `pass`: [`pass`], passes signed with HMAC-SHA256 that any node holding the keys can verify.
//! - `hijri`: `hijri`, each calendar day's Umm al-Qura (Saudi) Hijri date through `icu_calendar`
//!   (`Date::hijri`, `HijriDate`), for 1300–1600 AH.

#![warn(missing_docs)]

pub mod allocation;
/// The allocation rounds under their first path, `surgegate::alloc`, which stays valid.
pub use allocation as alloc;
mod backend;
pub mod book;
pub mod calendar;
pub mod clock;
mod deadline;
mod failure;
#[cfg(feature = "hijri")]
pub mod hijri;
#[cfg(feature = "http")]
pub mod http;
mod invariant;
pub mod journal;
#[cfg(feature = "pass")]
pub mod pass;
pub mod plan;
#[cfg(feature = "redis")]
pub mod redis;
pub mod room;
mod sharded;
mod shrink;
mod sync;
mod token;

pub use alloc::{AllocationRound, MAX_PREFERENCES, MAX_REQUESTS, RequestError, RoundOutcome};
pub use backend::{BackendError, BookBackend, RoomBackend};
pub use book::{
    ApplicantId, BookConfigError, BookTotals, Booking, BranchId, CapacityError, Channel,
    ChannelState, CloseError, ConfirmError, DurableBookBuilder, Hold, HoldToken, MAX_ALTERNATIVES,
    MAX_CAPACITY, OpenError, Preference, ReleaseError, ReserveError, SWEEP_BUDGET, SlotBook,
    SlotBookBuilder, SlotIndex, SlotQuotas, SlotState, StandbyError, StandbyRequest, StandbyTicket,
};
pub use calendar::{Calendar, CalendarError, Date, MAX_CALENDAR_SLOTS};
#[cfg(feature = "tokio")]
pub use clock::TokioClock;
pub use clock::{CLOCK_END, Clock, ManualClock, SystemClock};
#[cfg(feature = "hijri")]
pub use hijri::{HIJRI_FIRST_DAY, HIJRI_LAST_DAY, HijriDate, HijriError};
pub use invariant::InvariantViolation;
pub use journal::{
    CheckpointError, CheckpointInfo, Durability, JournalError, JournalStats, Recovery,
};
pub use room::{
    ClaimError, Entry, Gcra, JoinError, LimitsError, MAX_EVENTS_PER_CALL, MAX_PREQUEUE, MAX_RATE,
    Pass, PollError, PrequeueTooLong, RoomConfigError, RoomStats, Ticket, TicketToken, VisitorId,
    WaitingRoom, WaitingRoomBuilder, prequeue_order,
};
pub use token::TokenParseError;

/// The README's code blocks, compiled and run as doctests so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

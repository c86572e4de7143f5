//! One test suite for every backend: each book rule (DESIGN.md "SlotBook" 1–7, close_slot,
//! reserve_among / reserve_earliest_among) and each room rule ("WaitingRoom" 1–8, claims,
//! pause and close, set_limits) written once as a generic `async fn` over [`Backends`], which
//! makes fresh books and rooms and lets time pass: a `ManualClock` in-process, real sleeps on
//! Redis (settings chosen so that each wait is under two seconds). After every step the
//! invariants are checked through the traits alone (`checks`).
//!
//! Included by `tests/backend_suite.rs`.

pub mod backends;
pub mod book;
pub mod checks;
pub mod room;

use std::time::Duration;

use surgegate::{BookBackend, RoomBackend};

/// The settings of a room under test (the builder's, in short).
#[derive(Clone, Debug)]
pub struct RoomSetup {
    pub rate_per_second: u32,
    pub burst: u32,
    pub max_active: u32,
    pub max_waiting: u32,
    pub checkin_timeout: Duration,
    pub pass_ttl: Duration,
    pub claim_timeout: Option<Duration>,
}

impl Default for RoomSetup {
    fn default() -> Self {
        RoomSetup {
            rate_per_second: 4,
            burst: 2,
            max_active: u32::MAX,
            max_waiting: 1_000,
            checkin_timeout: Duration::from_secs(60),
            pass_ttl: Duration::from_secs(60),
            claim_timeout: None,
        }
    }
}

/// What the suite needs of a backend: fresh, empty books and rooms (each under a namespace of
/// its own on a shared store), and a clock to let time pass on.
#[allow(async_fn_in_trait)]
pub trait Backends {
    type Book: BookBackend;
    type Room: RoomBackend;

    /// The backend's name, for messages.
    fn name(&self) -> String;

    /// A new, empty book: holds of `hold_ttl`, `limit` live holds and bookings per applicant.
    async fn book(&self, hold_ttl: Duration, limit: u32) -> Self::Book;

    /// A new, empty room.
    async fn room(&self, setup: &RoomSetup) -> Self::Room;

    /// Lets `d` pass on the backend's clock (a manual clock's advance, or a sleep).
    async fn pass(&self, d: Duration);

    /// The time since the backend's start, on the clock `pass` moves (to bound what happened
    /// in an interval from both sides).
    fn elapsed(&self) -> Duration;

    /// How long a lapsed hold's count against its applicant's limit may outlive it (zero
    /// in-process; on Redis the count is taken before the hold and runs out up to 2 s after).
    fn count_margin(&self) -> Duration;

    /// Slack for a real clock: how much later than due a lapse is looked for, and how far from
    /// a deadline a step stays (zero in-process, where time moves only when told).
    fn slack(&self) -> Duration;

    /// The backend's own whole audit of a book, where it has one (the in-process
    /// `check_invariants`).
    fn audit_book(&self, book: &Self::Book);

    /// The backend's own whole audit of a room, where it has one.
    fn audit_room(&self, room: &Self::Room);
}

/// Runs every rule of the book and the room on `b`.
pub async fn run_all<B: Backends>(b: &B) {
    book::run_all(b).await;
    room::run_all(b).await;
}

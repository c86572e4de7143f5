//! The backends the suite runs on: the in-process types on one `ManualClock`, and the Redis
//! types on a server or a cluster (each book and room under a namespace of its own).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use surgegate::redis::{RedisSlotBook, RedisWaitingRoom};
use surgegate::{Clock, ManualClock, SlotBook, WaitingRoom};

use super::{Backends, RoomSetup};

/// The in-process book and room, all on one manual clock that only `pass` moves.
pub struct InProcess {
    clock: ManualClock,
}

impl InProcess {
    pub fn new() -> Self {
        let clock = ManualClock::new();
        // Away from zero, so that a time mistaken for a duration would show.
        clock.advance(Duration::from_secs(1_000));
        InProcess { clock }
    }
}

impl Backends for InProcess {
    type Book = SlotBook<ManualClock>;
    type Room = WaitingRoom<ManualClock>;

    fn name(&self) -> String {
        "in-process".into()
    }

    async fn book(&self, hold_ttl: Duration, limit: u32) -> Self::Book {
        SlotBook::builder()
            .hold_ttl(hold_ttl)
            .max_active_per_applicant(limit)
            .clock(self.clock.clone())
            .build()
    }

    async fn room(&self, s: &RoomSetup) -> Self::Room {
        let mut builder = WaitingRoom::builder()
            .rate_per_second(s.rate_per_second)
            .burst(s.burst)
            .max_active(s.max_active)
            .max_waiting(s.max_waiting)
            .checkin_timeout(s.checkin_timeout)
            .pass_ttl(s.pass_ttl)
            .clock(self.clock.clone());
        if let Some(claim) = s.claim_timeout {
            builder = builder.claim_timeout(claim);
        }
        builder.build()
    }

    async fn pass(&self, d: Duration) {
        self.clock.advance(d);
    }

    fn elapsed(&self) -> Duration {
        self.clock.now()
    }

    fn count_margin(&self) -> Duration {
        Duration::ZERO
    }

    fn slack(&self) -> Duration {
        Duration::ZERO
    }

    fn audit_book(&self, book: &Self::Book) {
        book.check_invariants().expect("the book's own audit");
    }

    fn audit_room(&self, room: &Self::Room) {
        room.check_invariants().expect("the room's own audit");
    }
}

/// The Redis book and room on the servers at `urls`.
pub struct OnRedis {
    urls: Vec<String>,
    prefix: String,
    made: AtomicU32,
    started: Instant,
}

impl OnRedis {
    pub fn new(urls: Vec<String>, prefix: &str) -> Self {
        OnRedis {
            urls,
            prefix: prefix.into(),
            made: AtomicU32::new(0),
            started: Instant::now(),
        }
    }

    /// A namespace no other book or room of this run has.
    fn namespace(&self) -> String {
        let n = self.made.fetch_add(1, Ordering::Relaxed);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        format!("{}-{n}-{stamp}", self.prefix)
    }

    fn urls(&self) -> Vec<&str> {
        self.urls.iter().map(String::as_str).collect()
    }
}

impl Backends for OnRedis {
    type Book = RedisSlotBook;
    type Room = RedisWaitingRoom;

    fn name(&self) -> String {
        format!("redis {}", self.prefix)
    }

    async fn book(&self, hold_ttl: Duration, limit: u32) -> Self::Book {
        RedisSlotBook::builder()
            .hold_ttl(hold_ttl)
            .max_active_per_applicant(limit)
            .namespace(self.namespace())
            .connect(&self.urls())
            .await
            .expect("connect the book")
    }

    async fn room(&self, s: &RoomSetup) -> Self::Room {
        let mut builder = RedisWaitingRoom::builder()
            .rate_per_second(s.rate_per_second)
            .burst(s.burst)
            .max_active(s.max_active)
            .max_waiting(s.max_waiting)
            .checkin_timeout(s.checkin_timeout)
            .pass_ttl(s.pass_ttl)
            .namespace(self.namespace());
        if let Some(claim) = s.claim_timeout {
            builder = builder.claim_timeout(claim);
        }
        builder
            .connect(&self.urls())
            .await
            .expect("connect the room")
    }

    async fn pass(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn count_margin(&self) -> Duration {
        Duration::from_millis(2_000)
    }

    fn slack(&self) -> Duration {
        Duration::from_millis(250)
    }

    fn audit_book(&self, _: &Self::Book) {}

    fn audit_room(&self, _: &Self::Room) {}
}

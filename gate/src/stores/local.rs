//! The embedded stores: a durable [`SlotBook`] in `[book] data_dir` and an in-process
//! [`WaitingRoom`], both on the system clock.

use std::time::Duration;

use surgegate::{Clock, JournalStats, RoomBackend, SlotBook, WaitingRoom};

use super::{GateBook, GateRoom};
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

    fn writes_block_on_disk(&self) -> bool {
        self.is_durable()
    }

    fn kind(&self) -> &'static str {
        "embedded"
    }
}

impl<C: Clock> GateRoom for WaitingRoom<C> {
    /// The opening is set on the room's own clock, as far ahead of its time now as
    /// `at_unix_s` is ahead of the Unix time now.
    fn open_at(&self, at_unix_s: u64, seed: u64) -> Result<(), &'static str> {
        let ahead = Duration::from_secs(at_unix_s).saturating_sub(RoomBackend::now_unix(self));
        if ahead.is_zero() {
            return Err("the opening time has passed: the room is open");
        }
        WaitingRoom::open_at(self, self.clock().now() + ahead, seed);
        Ok(())
    }
}

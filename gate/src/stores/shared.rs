//! The stores on Redis (a server or a cluster): [`RedisSlotBook`] and [`RedisWaitingRoom`],
//! shared by every gate node started with the same `[redis]` section and secret.

use surgegate::JournalStats;
use surgegate::redis::{RedisSlotBook, RedisWaitingRoom};

use super::{GateBook, GateRoom};
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

impl GateBook for RedisSlotBook {
    fn journal_stats(&self) -> Option<JournalStats> {
        None
    }

    fn checkpoint(&self) -> Result<String, String> {
        Ok("the book is on Redis: nothing to write here".into())
    }

    fn writes_block_on_disk(&self) -> bool {
        false
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

impl GateRoom for RedisWaitingRoom {
    fn open_at(&self, _at_unix_s: u64, _seed: u64) -> Result<(), &'static str> {
        Err(
            "a scheduled opening with a draw needs the in-process room: on Redis the room opens at start",
        )
    }
}

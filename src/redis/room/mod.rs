//! `RedisWaitingRoom`: the waiting room's rules on a Redis server or cluster, one line for every
//! portal node.
//!
//! Files: `builder` (settings, checked by the in-process room's rules, and `connect`, which
//! writes them for the first node), `calls` (joins and places, polls, claims, leaving, the
//! operator's controls, stats), `reply` (reading the room script's answers). This file: the
//! type and the one call every protocol makes.

mod builder;
mod calls;
mod reply;

use std::sync::Arc;
use std::time::Duration;

use redis::{Script, Value};

use super::conn::Conn;
use super::scripts::ROOM_KEYS;
use crate::backend::BackendError;
use crate::pass::Keyring;
use crate::room::RoomStats;

pub use builder::{DEFAULT_PLACE_MAX_AGE, RedisWaitingRoomBuilder};

/// The counts of a shared room: the one [`RoomStats`] of every backend (the name stays for code
/// written before the two were one).
pub type RedisRoomStats = RoomStats;

/// The waiting room on Redis: one line shared by every process connected under the same
/// namespace, with the room's rules (FIFO, exact positions, the rate and burst, `max_active`,
/// check-ins, claims, pass lapses) kept by scripts on the room's one shard, on the server's
/// clock (a [`Pass::expires_at`](crate::Pass::expires_at) is a time since the Unix epoch, as
/// through [`RoomBackend`](crate::RoomBackend) on every backend). A ticket's ETA counts the
/// rate alone (not passes that `max_active` waits for). It implements `RoomBackend`; a
/// scheduled opening (`open_at`) and the async `wait` are in-process only. See the
/// [module docs](super).
#[derive(Clone)]
pub struct RedisWaitingRoom {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Conn,
    call: Script,
    keys: [String; ROOM_KEYS.len()],
    timeout: Duration,
    checkin_timeout: Duration,
    /// Signs place texts, with the room's number in them (from its namespace).
    signer: Option<(Keyring, u32)>,
    /// How long a place text can take a place back.
    place_max_age: Duration,
}

impl Inner {
    /// One run of the room's call script, with its keys and `args`.
    async fn call(&self, args: &[&str]) -> Result<Value, BackendError> {
        let mut invocation = self.call.prepare_invoke();
        for key in &self.keys {
            invocation.key(key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        self.conn.run(&invocation, self.timeout).await
    }

    /// The call's answer, read.
    async fn answer(&self, args: &[&str]) -> Result<reply::Answer, BackendError> {
        reply::answer(&self.call(args).await?)
    }
}

impl RedisWaitingRoom {
    /// The check-in timeout in force (the first node's).
    pub fn checkin_timeout(&self) -> Duration {
        self.inner.checkin_timeout
    }
}

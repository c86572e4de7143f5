//! The slot book and the waiting room on Redis (a single server or a Redis Cluster), so that
//! every portal node shares one book and one line (feature `redis`): [`RedisSlotBook`] and
//! [`RedisWaitingRoom`], which implement [`BookBackend`](crate::BookBackend) and
//! [`RoomBackend`](crate::RoomBackend) with the in-process types' rules.
//!
//! Files: `book/` and `room/` (the two types, one protocol a file), `scripts` (the Lua scripts,
//! their key names and shared budgets assembled in one place; the `.lua` files in `scripts/`),
//! `conn` (one connection to a server or a cluster), `backend` (the two traits' implementations).
//! Settings are checked by the in-process builders' own rules, so both backends accept the
//! same ones.
//!
//! # Layout
//!
//! Every state change is one Lua script (the `.lua` files beside this module, each opening with
//! its arguments and the rule it enforces, after a header from `scripts.rs` that names its
//! keys), run atomically on the one shard that owns
//! its keys, with time read by `TIME` inside the script: holds expire by the server's clock,
//! never by key expiry or notifications.
//!
//! - **A branch** lives under its own hash tag, `{ns:b:<branch>}`: its capacities, counts, holds,
//!   bookings, and a sorted set of its slots with room, so `reserve_earliest` takes the first
//!   member in the range instead of scanning slots. Branches spread over the cluster's shards, so
//!   capacity work grows with the primaries. A hold's token carries its branch in its top 32
//!   bits (the other 96 are random), so `confirm(token)` finds the shard.
//! - **Lapsed holds** give their unit back at once, and the applicant's count up to 2 s later
//!   (the margin that keeps the count covering the hold). They are reclaimed at the start of
//!   every script on their branch (at most 10 000 a call) and by [`RedisSlotBook::sweep`] (one
//!   branch) or [`RedisSlotBook::sweep_every_branch`] (every branch in the registry
//!   `{ns:book}:branches`, which `set_capacity` fills).
//! - **An applicant** has a sorted set under `{ns:a:<applicant>}` (another shard, in general) of
//!   the tokens that count against its limit, each with the time until which it counts
//!   (a booking, or a standby request while it waits: forever), and its standby request under
//!   `{ns:a:<applicant>}:standby`.
//! - **The standby line** waits in each branch's keys (a request over several branches in the
//!   line of each), with an index by slot range, so the script that frees a unit keeps it for
//!   the earliest covering request in the same step; the applicant's next standby call claims
//!   it ([`RedisSlotBook::standby`]; ARCHITECTURE.md, "Standby on Redis").
//!
//! # The applicant limit across branches
//!
//! A reservation is three steps on two shards: **take** the applicant's count (refused at the
//! limit), with a provisional token that counts until `now + hold_ttl + 2 s`; **reserve** on the
//! branch, which refuses to make a hold that would outlive the count (so the count always
//! covers the hold, allowing 1 s of clock difference between primaries, and a reserve slower
//! than that is refused as a timeout); and, when no new hold
//! was made, **drop** the count again. A confirmation marks the count as a booking *before*
//! confirming on the branch (and drops it if the branch refuses); a release drops the count
//! *after* the branch released. So at every instant the applicant's counted tokens include all
//! its live holds and bookings: the limit is never exceeded (while the applicant's primary does
//! not fail over: its count is not `WAIT`ed, so a failover can lose counts taken in its last
//! moments). A crash between steps can only
//! leave a count with nothing behind it: a provisional one runs out by itself within
//! `hold_ttl + 2 s`; one whose hold or booking is gone (a cancellation whose `WAIT` failed, a
//! confirmation whose hold a failover lost) is given back when the applicant next reserves at
//! its limit (a hold's count once 2 s passed since it was taken, when no reservation in
//! progress can make a hold under it any more): each such token is *settled* on its branch, which fences a token with neither
//! a hold nor a booking (no hold is ever made under it afterwards) before its count is given
//! back. So no sequence of errors and retries locks an applicant out, and settling never lets
//! the limit be exceeded.
//!
//! # One hold among several branches
//!
//! [`RedisSlotBook::reserve_among`] first looks for a live hold of the applicant at one of the
//! branches in the range (through the tokens counted against its limit) and returns it (a
//! retry); then reads each branch's lowest slot with room, chooses by the
//! [`Preference`](crate::book::Preference) (ties: the branch listed first), takes the
//! applicant's count under a token of the chosen branch and reserves that one slot. A race
//! that loses the slot reads that branch again and chooses again (keeping the count while the
//! branch stays the same), at most 32 times, then answers a timeout (safe to retry). The count
//! is given back whenever no new hold was made under it, so the applicant protocol above holds.
//!
//! A closed slot ([`RedisSlotBook::close_slot`]) has capacity 0 and is in the branch's set of
//! closed slots: readings do not show it, new holds are refused as for a slot never opened,
//! and its holds and bookings stay (a hold granted before can still be confirmed) until
//! `set_capacity` opens it again.
//!
//! # Channel quotas
//!
//! A slot with quotas ([`RedisSlotBook::set_channel_quota`]) keeps them beside its counts, on
//! its branch's shard: its whole capacity and, per channel, the quota, the units taken from it
//! and the units taken in all. The slot's capacity field holds the open part plus what is
//! taken (the whole capacity less the quota units unused; 0 while closed), as the in-process
//! slot word does, so every plain call reads it alone. [`RedisSlotBook::reserve_on`] takes from
//! the quota or the open part in the reserve script itself; each hold and booking record names
//! its channel and whether its unit came from the quota (a record without them, as one written
//! before channels existed, is from the open part), and every script that gives a unit back (a
//! release, a cancellation, a lapse reclaimed on the way) returns it to that part in the same
//! step. A closed slot keeps its quotas; [`RedisSlotBook::open_channel_quotas_in`] opens every
//! open slot of a range that keeps one, 4 096 per script.
//!
//! # The room
//!
//! The room is one line, so it lives under one hash tag, `{ns:room}`, on one shard: a sorted
//! set of tickets by sequence number (positions are ranks), check-in deadlines and pass lapses
//! in sorted sets by time, the rate as exact integer credit on the server's clock in
//! microseconds, at most 4 096 events handled per call. The first node to connect under a
//! namespace writes the settings; the others run with them. Room writes are not `WAIT`ed for:
//! a failover can lose the last moments of the line. With
//! [`keys`](RedisWaitingRoomBuilder::keys), [`RedisWaitingRoom::join_with_place`] gives a
//! waiting visitor a signed place text (its ticket's token and sequence number); after a
//! failover that lost the entry, [`RedisWaitingRoom::rejoin`] puts the visitor back at that
//! place, and an ended ticket's text gives no place back.
//!
//! # Durability, and what a failover can cost
//!
//! Both builders' `connect` refuse servers that do not run with `appendonly yes` and
//! `appendfsync always` (unless `allow_unsynced()`), so a write is on the primary's disk before
//! the script's reply, and servers whose `maxmemory-policy` is not `noeviction` (unless
//! `allow_eviction()`): an evicted hold, booking or count would overbook, an evicted ticket
//! would lose a place. `confirm`, `release`, `close_slot` and `set_capacity` return `Ok` only
//! after `WAIT` on the branch's primary saw the replicas asked for
//! ([`RedisSlotBookBuilder::wait_for_replicas`]; default 1 on a cluster) acknowledge it. Then:
//!
//! - a crash of a single server loses nothing acknowledged (it replays its append-only file);
//! - a failover to a replica keeps every acknowledged confirmation (a replica that acknowledged
//!   it is promoted, as the cluster prefers the most up-to-date replica); holds made in the last
//!   moments before the failover may be lost (their unit comes back; the applicant's count
//!   runs out by time), and so may unacknowledged confirmations: those callers got an error;
//! - `WAIT` is not a consensus: if the primary fails and a replica that had *not* acknowledged
//!   is promoted (all acknowledging replicas failed too), acknowledged changes can be lost.
//!
//! # Errors
//!
//! Every operation's error enum has a `Backend(BackendError)` variant: a lost connection, a
//! timeout, a script failure, a reply of an unexpected shape (never a panic), or a change not
//! acknowledged by enough replicas. Such a call may or may not have taken effect; retrying it
//! is safe, since a retried reserve returns the applicant's live hold at that branch and a
//! retried confirm the same booking.

mod backend;
mod book;
mod conn;
mod room;
mod scripts;

pub use crate::room::LimitsError;
pub use book::{RedisSlotBook, RedisSlotBookBuilder};
pub use conn::ConnectError;
pub use room::{DEFAULT_PLACE_MAX_AGE, RedisRoomStats, RedisWaitingRoom, RedisWaitingRoomBuilder};

/// Checks a namespace: 1 to 64 characters of `[A-Za-z0-9_.-]` (no braces or colons, which the
/// key layout uses).
fn check_namespace(namespace: &str) -> Result<(), ConnectError> {
    let ok = (1..=64).contains(&namespace.len())
        && namespace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ConnectError::Namespace(namespace.into()))
    }
}

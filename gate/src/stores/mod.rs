//! The book and the room behind the gate. Every handler is generic over the crate's
//! [`BookBackend`] and [`RoomBackend`], so that one code path serves the embedded durable book
//! with the in-process room and the Redis book and room shared by many gate nodes; which pair
//! runs is chosen once, at start ([`open_local`], [`open_shared`]).
//!
//! [`GateBook`] and [`GateRoom`] add only what the gate needs beyond the traits: a checkpoint
//! at exit, the journal's counters, where a write waits, a scheduled opening.

mod local;
mod shared;

use std::future::Future;

use surgegate::{BookBackend, JournalStats, RoomBackend};
use tokio::runtime::{Handle, RuntimeFlavor};

pub use local::open_local;
pub use shared::open_shared;

/// What the gate needs of a book beyond [`BookBackend`].
pub trait GateBook: BookBackend {
    /// The journal's counters (an embedded durable book only).
    fn journal_stats(&self) -> Option<JournalStats>;
    /// Writes a checkpoint before exit (an embedded durable book only); what was written.
    ///
    /// # Errors
    /// Why no checkpoint was written (the journal still holds every booking).
    fn checkpoint(&self) -> Result<String, String>;
    /// Whether a write blocks the calling thread until this process's disk has it (an fsync),
    /// rather than awaiting a store over the network.
    fn writes_block_on_disk(&self) -> bool;
    /// Which store this is, for logs and `/admin/stats`.
    fn kind(&self) -> &'static str;
}

/// What the gate needs of a room beyond [`RoomBackend`].
pub trait GateRoom: RoomBackend {
    /// Schedules an opening with a pre-queue draw at Unix second `at_unix_s`.
    ///
    /// # Errors
    /// Why the room cannot (the time has passed, or the room has no pre-queue).
    fn open_at(&self, at_unix_s: u64, seed: u64) -> Result<(), &'static str>;
}

/// Runs `call`, a write to `book` (a confirmation, a release, a capacity). When the write
/// blocks on the journal's fsync and the gate runs on its multi-threaded runtime, the worker
/// hands its other tasks on while it waits, so that many writes wait at once and share one
/// fsync (group commit) instead of each worker waiting for its own. Otherwise the call is
/// simply awaited.
///
/// # Cancel safety
/// As `call`'s own: a write to the embedded book completes within its first poll.
pub async fn write<B: GateBook, F: Future>(book: &B, call: F) -> F::Output {
    match Handle::try_current() {
        Ok(h)
            if book.writes_block_on_disk() && h.runtime_flavor() == RuntimeFlavor::MultiThread =>
        {
            tokio::task::block_in_place(|| h.block_on(call))
        }
        _ => call.await,
    }
}

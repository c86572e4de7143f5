//! The book's durable mode: opening it from a directory (recovery), and checkpoints.
//!
//! Recovery rebuilds the book through the same slot words and ledger shards the live book uses,
//! with dedicated restore steps that check every record against the state before it (a booking
//! on a slot never opened, a token booked twice or a cancellation of no booking is damage, not
//! something to skip).
//!
//! `builder` (the durable settings, `DurableBookBuilder`), `open` (opening a directory: lock,
//! recovery, the journal), `restore` (applying journal records and checkpoints, each checked
//! against the state before it) and `checkpoint` (durable calls, checkpoints and the journal's
//! statistics).

mod builder;
mod checkpoint;
mod open;
mod restore;

pub use builder::DurableBookBuilder;

#[cfg(all(test, not(loom)))]
mod tests;

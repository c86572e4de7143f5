//! One hold or booking as the book's shards see it: where its unit is, whose it is, and what
//! it stands for now ([`State`]).
//!
//! A [`Record`] is plain data (`Copy`): the slab of `records.rs` stores it packed in 48 bytes
//! with its token, and `ledger.rs` keeps the shard's hold count and expiry queue in agreement
//! with the records' states.

use super::channel::Part;
use super::chunk::SlotRef;
use super::types::{ApplicantId, BranchId, SlotIndex};

/// What a token stands for.
///
/// A durable book journals a confirmation or a cancellation outside the shard lock: the record
/// is `Confirming` or `Cancelling` while its journal record is written and synced, then becomes
/// what the journal's answer says. Meanwhile it counts as what it was (held, or booked), a
/// confirming hold does not lapse, and other calls on the same token wait for the outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    Held {
        expires_ns: u64,
    },
    /// A hold whose booking is being journaled.
    Confirming {
        expires_ns: u64,
    },
    Booked,
    /// A booking whose cancellation is being journaled.
    Cancelling,
}

impl State {
    /// Whether the record's unit counts as held (rather than booked) in its slot.
    pub(crate) fn counts_as_held(self) -> bool {
        matches!(self, State::Held { .. } | State::Confirming { .. })
    }

    /// Whether a durable change of the record is in flight.
    pub(crate) fn is_settling(self) -> bool {
        matches!(self, State::Confirming { .. } | State::Cancelling)
    }
}

/// A hold or a booking: its slot (and the slot's chunk, to reach its word without a lookup), its
/// applicant and its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) branch: BranchId,
    pub(crate) slot: SlotIndex,
    pub(crate) applicant: ApplicantId,
    pub(crate) state: State,
    pub(crate) at: SlotRef,
    /// Where the unit came from: the open part or a channel's quota.
    pub(crate) part: Part,
}

impl Record {
    /// Whether the record is a hold that has not expired at `now_ns`.
    pub(crate) fn is_live_hold(&self, now_ns: u64) -> bool {
        matches!(self.state, State::Held { expires_ns } if expires_ns > now_ns)
    }

    /// Whether the record is a hold that expired at or before `now_ns`.
    pub(crate) fn is_expired_hold(&self, now_ns: u64) -> bool {
        matches!(self.state, State::Held { expires_ns } if expires_ns <= now_ns)
    }
}

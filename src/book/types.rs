//! The book's plain values: identifiers, tokens, slot states, holds and bookings.

use std::fmt;
use std::time::Duration;

use crate::token::token_type;

/// A branch (office) of the authority, as numbered by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct BranchId(pub u32);

/// An applicant, as numbered by the caller (an account id, say).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct ApplicantId(pub u64);

/// A bookable time window of a branch. The caller maps its calendar to indices, for example
/// `day * windows_per_day + window`.
pub type SlotIndex = u32;

impl fmt::Display for BranchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "branch {}", self.0)
    }
}

impl fmt::Display for ApplicantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "applicant {}", self.0)
    }
}

token_type!(
    /// The unguessable proof of a hold, and of the booking it becomes: 128 bits, shown as exactly
    /// 32 lowercase hex digits.
    ///
    /// The top 96 bits are CSPRNG output; the low 32 bits name the lock shard that issued it and
    /// the record's place in that shard (like a UUID's version bits), so `confirm` and `release`
    /// go straight to the record, and a forged token is caught by its 96 random bits. A
    /// confirmed hold keeps its token.
    ///
    /// ```
    /// use surgegate::HoldToken;
    ///
    /// let token: HoldToken = "00112233445566778899aabbccddeeff".parse()?;
    /// assert_eq!(token.to_string(), "00112233445566778899aabbccddeeff");
    /// assert!("not a token".parse::<HoldToken>().is_err());
    /// # Ok::<(), surgegate::TokenParseError>(())
    /// ```
    HoldToken
);

/// The counts of one slot, as one consistent snapshot.
///
/// `held` counts live holds only: an expired hold is never shown, swept or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SlotState {
    /// Units the authority opened in this slot.
    pub capacity: u32,
    /// Units under a live, unconfirmed hold.
    pub held: u32,
    /// Units booked (confirmed).
    pub booked: u32,
}

impl SlotState {
    /// Units still free: `capacity - held - booked`, or zero if capacity was lowered below the
    /// units already taken.
    pub fn remaining(&self) -> u32 {
        self.capacity.saturating_sub(self.held + self.booked)
    }
}

/// A unit of a slot set aside for one applicant until `expires_at`, unless confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Hold {
    /// Confirms or releases this hold; the booking keeps it.
    pub token: HoldToken,
    /// Where.
    pub branch: BranchId,
    /// When.
    pub slot: SlotIndex,
    /// For whom.
    pub applicant: ApplicantId,
    /// When the hold lapses: at or after it, `confirm` fails and the unit is free again. On the
    /// book's clock from the in-process book's own methods; a time since the Unix epoch through
    /// [`BookBackend`](crate::BookBackend) and on Redis.
    pub expires_at: Duration,
}

/// A confirmed appointment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Booking {
    /// The token of the hold it came from.
    pub token: HoldToken,
    /// Where.
    pub branch: BranchId,
    /// When.
    pub slot: SlotIndex,
    /// For whom.
    pub applicant: ApplicantId,
}

/// Whole-book totals returned by [`SlotBook::check_invariants`](crate::SlotBook::check_invariants).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BookTotals {
    /// Branches created.
    pub branches: usize,
    /// Open slots.
    pub open_slots: usize,
    /// Sum of all open slots' capacities.
    pub capacity: u64,
    /// Unconfirmed holds still recorded, expired ones not yet reclaimed included.
    pub holds: u64,
    /// Of `holds`, how many have expired and wait to be reclaimed.
    pub expired_holds: u64,
    /// Bookings.
    pub bookings: u64,
}

//! The book's errors: one enum per operation. A call that returns one of these changed nothing.

use std::time::Duration;

use thiserror::Error;

use crate::journal::JournalError;

/// Why [`SlotBook::reserve`](crate::SlotBook::reserve) or
/// [`SlotBook::reserve_earliest`](crate::SlotBook::reserve_earliest) granted no hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReserveError {
    /// The branch or the slot was never opened.
    #[error(
        "no such open slot at this branch: open it with set_capacity first, or ask for a slot that exists"
    )]
    UnknownSlot,
    /// The slot has no room: `held + booked >= capacity`.
    #[error(
        "this slot is full: choose another slot, or use reserve_earliest for the earliest one with room"
    )]
    Full,
    /// No open slot in the range has room.
    #[error(
        "no slot in this range has room: widen the range, or try again when holds expire or bookings are cancelled"
    )]
    NoneAvailable,
    /// The applicant already has `max_active_per_applicant` live holds and bookings.
    #[error(
        "this applicant already has as many holds and bookings as allowed: confirm or release one first"
    )]
    ApplicantLimit,
    /// The slot range is empty (for example `5..5`, or `9..3`).
    #[error("the slot range is empty: pass a range whose start is below its end, like 0..365")]
    EmptyRange,
    /// The book already holds `max_live_holds` unconfirmed holds.
    #[error(
        "the book holds as many unconfirmed holds as it is configured for: retry when holds are confirmed or expire, or raise max_live_holds"
    )]
    TooManyHolds,
}

/// Why [`SlotBook::confirm`](crate::SlotBook::confirm) made no booking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfirmError {
    /// The token was never issued by this book, or its hold was released or reclaimed.
    #[error("no hold or booking has this token: reserve again to get a new hold")]
    UnknownToken,
    /// The hold expired before it was confirmed; its place went back to the pool.
    #[error("this hold expired before it was confirmed: reserve again to get a new hold")]
    Expired,
    /// A durable book could not journal the booking; the hold is still held, unconfirmed.
    #[error("{0}")]
    Journal(JournalError),
}

/// Why [`SlotBook::release`](crate::SlotBook::release) released nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// No live hold or booking has this token: never issued, already released, or an expired hold
    /// (whose place is already back in the pool).
    #[error(
        "no live hold or booking has this token: it was never issued, already released, or the hold expired"
    )]
    UnknownToken,
    /// A durable book could not journal the cancellation; the booking stands.
    #[error("{0}")]
    Journal(JournalError),
}

/// Why [`SlotBook::set_capacity`](crate::SlotBook::set_capacity) changed nothing: a configured
/// limit would be exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CapacityError {
    /// The slot index is at or past `max_slots_per_branch`.
    #[error(
        "slot {slot} is past this book's last slot {last}: map the calendar to smaller indices, or raise max_slots_per_branch"
    )]
    SlotOutOfRange {
        /// The slot asked for.
        slot: u32,
        /// The largest valid slot index (`max_slots_per_branch - 1`).
        last: u32,
    },
    /// The capacity is above the largest a slot can hold.
    #[error("capacity {capacity} is above the largest a slot can hold ({max})")]
    CapacityTooLarge {
        /// The capacity asked for.
        capacity: u32,
        /// The largest capacity of a slot.
        max: u32,
    },
    /// The book already has `max_branches` branches.
    #[error("the book already has its limit of {max_branches} branches: raise max_branches")]
    TooManyBranches {
        /// The configured limit.
        max_branches: u32,
    },
    /// A durable book could not journal the change; the capacity is as it was.
    #[error("{0}")]
    Journal(JournalError),
}

/// Why a [`SlotBookBuilder`](crate::SlotBookBuilder) configuration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BookConfigError {
    /// `hold_ttl` is zero or longer than a day.
    #[error("hold_ttl must be between 1 ns and 24 h, got {0:?}")]
    HoldTtl(Duration),
    /// `max_active_per_applicant` is zero or above 1024.
    #[error("max_active_per_applicant must be between 1 and 1024, got {0}")]
    MaxActivePerApplicant(u32),
    /// `max_branches` is zero or above 2^20.
    #[error("max_branches must be between 1 and 1048576, got {0}")]
    MaxBranches(u32),
    /// `max_slots_per_branch` is zero or above 2^22.
    #[error("max_slots_per_branch must be between 1 and 4194304, got {0}")]
    MaxSlotsPerBranch(u32),
    /// `max_live_holds` is zero or above 2^32.
    #[error("max_live_holds must be between 1 and 4294967296, got {0}")]
    MaxLiveHolds(u64),
    /// `shards` is not a power of two between 1 and 256.
    #[error("shards must be a power of two between 1 and 256, got {0}")]
    Shards(u32),
}

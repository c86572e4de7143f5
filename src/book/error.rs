//! The book's errors: one enum per operation. A call that returns one of these changed nothing.

use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use crate::failure::BackendError;
use crate::journal::{IoFailure, JournalError, ReplayError};

use super::types::{BranchId, SlotIndex};

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
    /// `reserve_among` or `reserve_earliest_among` was given no branch, or more than
    /// [`MAX_ALTERNATIVES`].
    ///
    /// [`MAX_ALTERNATIVES`]: crate::book::MAX_ALTERNATIVES
    #[error("give between 1 and {max} acceptable branches, in order of preference")]
    Alternatives {
        /// The most branches one call may name.
        max: u32,
    },
    /// The store behind a shared book failed (never returned by the in-process book).
    #[error("{0}")]
    Backend(BackendError),
}

impl ReserveError {
    /// Whether the same call, unchanged, can succeed later without anyone changing the
    /// book's setup: room comes back as holds lapse and bookings are cancelled, and the
    /// applicant's own holds lapse too. An unknown slot or an empty range stays so.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ReserveError::Full
                | ReserveError::NoneAvailable
                | ReserveError::ApplicantLimit
                | ReserveError::TooManyHolds
        ) || matches!(self, ReserveError::Backend(e) if e.is_retryable())
    }

    /// How long to wait before retrying, where the book knows: never (when room comes back
    /// depends on other applicants), so a portal picks its own interval.
    pub fn retry_after(&self) -> Option<Duration> {
        None
    }
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
    /// The store behind a shared book failed (never returned by the in-process book).
    #[error("{0}")]
    Backend(BackendError),
}

impl ConfirmError {
    /// Whether confirming the same token again can succeed: only after a journal write
    /// failure that left the journal running, or a passing failure of a shared store.
    pub fn is_retryable(&self) -> bool {
        match self {
            ConfirmError::Journal(e) => e.is_retryable(),
            ConfirmError::Backend(e) => e.is_retryable(),
            _ => false,
        }
    }
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
    /// The store behind a shared book failed (never returned by the in-process book).
    #[error("{0}")]
    Backend(BackendError),
}

impl ReleaseError {
    /// Whether releasing the same token again can succeed: only after a journal write
    /// failure that left the journal running, or a passing failure of a shared store.
    pub fn is_retryable(&self) -> bool {
        match self {
            ReleaseError::Journal(e) => e.is_retryable(),
            ReleaseError::Backend(e) => e.is_retryable(),
            _ => false,
        }
    }
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
    /// The slot lies in a chunk of 512 slots not yet allocated, and the book has allocated its
    /// `max_slot_chunks` chunks.
    #[error(
        "the book has allocated its limit of {max_slot_chunks} chunks of 512 slots: open slots next to those already open (nearby indices of the same branch), or raise max_slot_chunks"
    )]
    TooManySlotChunks {
        /// The configured limit.
        max_slot_chunks: u32,
    },
    /// The slot was never opened, or is closed: open it with `set_capacity` before giving it
    /// channel quotas.
    #[error(
        "no such open slot at this branch: open it with set_capacity before setting or opening its channel quotas"
    )]
    UnknownSlot,
    /// The slot's channel quotas would add up to more than its capacity.
    #[error(
        "the channel quotas would add up to {quotas}, above the slot's capacity {capacity}: lower a quota first, or raise the capacity"
    )]
    QuotasAboveCapacity {
        /// What the quotas would add up to.
        quotas: u64,
        /// The slot's capacity.
        capacity: u32,
    },
    /// A durable book could not journal the change; the capacity is as it was, and no branch or
    /// slot was created.
    #[error("{0}")]
    Journal(JournalError),
    /// The store behind a shared book failed (never returned by the in-process book).
    #[error("{0}")]
    Backend(BackendError),
}

/// Why [`SlotBook::close_slot`](crate::SlotBook::close_slot) closed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CloseError {
    /// The branch or the slot was never opened.
    #[error("no such slot was ever opened: check the branch and slot index")]
    UnknownSlot,
    /// A durable book could not journal the close; the slot is still open.
    #[error("{0}")]
    Journal(JournalError),
    /// The store behind a shared book failed (never returned by the in-process book).
    #[error("{0}")]
    Backend(BackendError),
}

impl CloseError {
    /// Whether the same call can succeed later: only after a journal write failure that left
    /// the journal running, or a passing failure of a shared store.
    pub fn is_retryable(&self) -> bool {
        match self {
            CloseError::Journal(e) => e.is_retryable(),
            CloseError::Backend(e) => e.is_retryable(),
            _ => false,
        }
    }
}

impl CapacityError {
    /// Whether the same call, unchanged, can succeed later: only after a journal write failure
    /// that left the journal running, or a passing failure of a shared store. Every other
    /// variant is a limit of the book's settings.
    pub fn is_retryable(&self) -> bool {
        match self {
            CapacityError::Journal(e) => e.is_retryable(),
            CapacityError::Backend(e) => e.is_retryable(),
            _ => false,
        }
    }
}

/// Why [`SlotBook::standby`](crate::SlotBook::standby) put no request in the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StandbyError {
    /// A slot the request covers has a unit free to reserve right now.
    #[error(
        "{branch} has a free unit in slot {slot}: reserve it (reserve_earliest_among) instead of waiting"
    )]
    UnitFree {
        /// Where the free unit is.
        branch: BranchId,
        /// Its slot.
        slot: SlotIndex,
    },
    /// The applicant already has `max_active_per_applicant` live holds and bookings.
    #[error(
        "this applicant already has as many holds and bookings as allowed: confirm or release one first"
    )]
    ApplicantLimit,
    /// The slot range is empty (for example `5..5`), or lies wholly past
    /// `max_slots_per_branch`.
    #[error("the slot range is empty: pass a range of slots that exist, like 0..365")]
    EmptyRange,
    /// No branch, or more than [`MAX_ALTERNATIVES`](crate::book::MAX_ALTERNATIVES).
    #[error("give between 1 and {max} acceptable branches")]
    Alternatives {
        /// The most branches one request may name.
        max: u32,
    },
    /// `max_standby_requests` requests already wait.
    #[error(
        "the standby line is full ({max} requests): retry when requests are served or leave, or raise max_standby_requests"
    )]
    LineFull {
        /// The book's bound on waiting requests.
        max: u32,
    },
    /// The store behind a shared book failed, or does not keep a standby line.
    #[error("{0}")]
    Backend(BackendError),
}

impl StandbyError {
    /// Whether the same call, unchanged, can succeed later: a full line or an applicant at its
    /// limit can change; a free unit is for reserving (it may be gone later, and then the same
    /// call succeeds too).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StandbyError::UnitFree { .. }
                | StandbyError::ApplicantLimit
                | StandbyError::LineFull { .. }
        ) || matches!(self, StandbyError::Backend(e) if e.is_retryable())
    }

    /// How long to wait before retrying, where the book knows: never (it depends on other
    /// applicants), so a portal picks its own interval.
    pub fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// Why a book's configuration ([`SlotBookBuilder`](crate::SlotBookBuilder),
/// [`DurableBookBuilder`](crate::DurableBookBuilder), or the Redis book's builder) was refused.
/// Every backend checks its settings by the same rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BookConfigError {
    /// `hold_ttl` is shorter than a millisecond or longer than a day.
    #[error("hold_ttl must be between 1 ms and 24 h, got {0:?}")]
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
    /// `max_slot_chunks` is zero or above 2^24.
    #[error("max_slot_chunks must be between 1 and 16777216, got {0}")]
    MaxSlotChunks(u32),
    /// `max_live_holds` is zero or above 2^32.
    #[error("max_live_holds must be between 1 and 4294967296, got {0}")]
    MaxLiveHolds(u64),
    /// `shards` is not a power of two between 1 and 256.
    #[error("shards must be a power of two between 1 and 256, got {0}")]
    Shards(u32),
    /// `Durability::Flush { every }` with `every` shorter than 1 ms or longer than an hour.
    #[error("Durability::Flush {{ every }} must be between 1 ms and 1 hour, got {0:?}")]
    FlushInterval(Duration),
    /// `checkpoint_after_bytes` is neither 0 (off) nor at least 1 MiB.
    #[error("checkpoint_after_bytes must be 0 (off) or at least 1 MiB (1048576), got {0}")]
    CheckpointAfterBytes(u64),
    /// `max_batch_records` is zero or above 65 536.
    #[error("max_batch_records must be between 1 and 65536, got {0}")]
    MaxBatchRecords(u32),
    /// `commit_delay` is longer than 10 ms.
    #[error("commit_delay must be at most 10 ms, got {0:?}")]
    CommitDelay(Duration),
    /// `max_standby_requests` is zero or above 2^24.
    #[error("max_standby_requests must be between 1 and 16777216, got {0}")]
    MaxStandbyRequests(u32),
}

/// Why [`SlotBookBuilder::open`](crate::SlotBookBuilder::open) could not open a directory.
/// Nothing in the directory was changed unless stated.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// A setting of the builder (the book's or a durable one) is out of range; the directory
    /// was not touched.
    #[error("invalid SlotBook configuration: {0}")]
    Config(#[from] BookConfigError),
    /// The file system refused an operation.
    #[error("{action} failed for {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// Another open book (in this process or another) holds the directory.
    #[error(
        "{path} is locked by another open SlotBook (in this process or another): close that one first, or open a different directory"
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A file is damaged somewhere other than a torn tail. Nothing was truncated or deleted.
    #[error(
        "{path} is damaged at byte {offset}: {reason}. Nothing was changed; restore the directory from a backup"
    )]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Where the damage starts.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// A journal segment that recovery needs is missing.
    #[error(
        "{path} is missing: recovery needs every journal segment after the last checkpoint; restore it from a backup"
    )]
    MissingSegment {
        /// The file that should exist.
        path: PathBuf,
    },
    /// The checkpoint that the meta file says was written (or a newer one) is missing.
    #[error(
        "{path} is missing: the directory recorded writing it, and recovery starts from it; restore it from a backup"
    )]
    MissingCheckpoint {
        /// The file that should exist.
        path: PathBuf,
    },
    /// The journal is intact but this book's limits (or this build's file format) cannot hold
    /// what it records.
    #[error(
        "{path} at byte {offset} cannot be restored into this book: {reason}. Open it with the limits it was written with"
    )]
    Incompatible {
        /// The journal segment or checkpoint.
        path: PathBuf,
        /// The record's offset.
        offset: u64,
        /// Which limit is too small.
        reason: String,
    },
}

impl From<IoFailure> for OpenError {
    fn from(f: IoFailure) -> Self {
        OpenError::Io {
            path: f.path,
            action: f.action,
            source: f.source,
        }
    }
}

impl From<ReplayError> for OpenError {
    fn from(e: ReplayError) -> Self {
        match e {
            ReplayError::Io(f) => f.into(),
            ReplayError::Corrupt {
                path,
                offset,
                reason,
            } => OpenError::Corrupt {
                path,
                offset,
                reason,
            },
            ReplayError::Incompatible {
                path,
                offset,
                reason,
            } => OpenError::Incompatible {
                path,
                offset,
                reason,
            },
        }
    }
}

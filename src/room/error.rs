//! The room's errors: one enum per operation. A call that returns one of these changed nothing.

use std::time::Duration;

use thiserror::Error;

use crate::failure::BackendError;

/// Why [`WaitingRoom::join`](crate::WaitingRoom::join) gave no ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The line is at `max_waiting`. `retry_after` is when the line next gets shorter (an
    /// admission or a lapse), never zero.
    #[error("the line is full: try again in {retry_after:?}")]
    Full {
        /// How long to wait before joining again.
        retry_after: Duration,
    },
    /// The room was closed to newcomers.
    #[error("the room is closed to newcomers: those already in line keep their places")]
    Closed,
    /// The store behind a shared room failed (never returned by the in-process room).
    #[error("{0}")]
    Backend(BackendError),
}

impl JoinError {
    /// Whether the same call, unchanged, can succeed later without an operator's action: a
    /// full line gets shorter by itself; a closed room opens only when its operator reopens it.
    pub fn is_retryable(&self) -> bool {
        match self {
            JoinError::Full { .. } => true,
            JoinError::Backend(e) => e.is_retryable(),
            _ => false,
        }
    }

    /// How long to wait before retrying, where the room knows (for an HTTP `Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            JoinError::Full { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

/// Why [`WaitingRoom::poll`](crate::WaitingRoom::poll) or
/// [`WaitingRoom::finish`](crate::WaitingRoom::finish) found no ticket or pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PollError {
    /// The token was never issued by this room, was finished, or lapsed too long ago to be
    /// remembered.
    #[error("no ticket or pass has this token: join again to get a new ticket")]
    UnknownToken,
    /// The ticket's check-in lapsed, or the pass's time ran out.
    #[error("this ticket or pass has lapsed: join again to get a new ticket")]
    Expired,
    /// The store behind a shared room failed (never returned by the in-process room).
    #[error("{0}")]
    Backend(BackendError),
}

/// Why [`WaitingRoom::claim`](crate::WaitingRoom::claim) claimed nothing. The room is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ClaimError {
    /// The token is a ticket still waiting in line: only an admitted visitor's pass is claimed.
    #[error("this ticket is still waiting: poll it until it is admitted, then claim its pass")]
    NotAdmitted,
    /// The token was never issued by this room, was finished, or lapsed too long ago to be
    /// remembered.
    #[error("no pass has this token: join again to get a new ticket")]
    UnknownToken,
    /// The pass lapsed (unclaimed past `claim_timeout`, or past `pass_ttl`), or the ticket's
    /// check-in did.
    #[error("this pass has lapsed: join again to get a new ticket")]
    Expired,
    /// The store behind a shared room failed (never returned by the in-process room).
    #[error("{0}")]
    Backend(BackendError),
}

impl ClaimError {
    /// Whether claiming the same token again can succeed: only while the ticket still waits.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClaimError::NotAdmitted => true,
            ClaimError::Backend(e) => e.is_retryable(),
            _ => false,
        }
    }
}

impl PollError {
    /// Whether polling the same token again can succeed: only after a passing failure of a
    /// shared store; otherwise the caller joins again instead (which is why every other
    /// variant's message says so).
    pub fn is_retryable(&self) -> bool {
        matches!(self, PollError::Backend(e) if e.is_retryable())
    }
}

/// Why a [`WaitingRoomBuilder`](crate::WaitingRoomBuilder) configuration, or a runtime limit
/// change, was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RoomConfigError {
    /// `rate_per_second` is zero or above ten million.
    #[error("rate_per_second must be between 1 and 10000000, got {0}")]
    Rate(u32),
    /// `burst` is zero or above ten million.
    #[error("burst must be between 1 and 10000000, got {0}")]
    Burst(u32),
    /// `max_active` is zero.
    #[error("max_active must be at least 1 (u32::MAX means unlimited), got {0}")]
    MaxActive(u32),
    /// `max_waiting` is zero or above 2^30.
    #[error("max_waiting must be between 1 and 1073741824, got {0}")]
    MaxWaiting(u32),
    /// `checkin_timeout` is zero or longer than a day.
    #[error("checkin_timeout must be between 1 ms and 24 h, got {0:?}")]
    CheckinTimeout(Duration),
    /// `pass_ttl` is zero or longer than a week.
    #[error("pass_ttl must be between 1 ms and 7 days, got {0:?}")]
    PassTtl(Duration),
    /// `claim_timeout` is zero or longer than `pass_ttl`.
    #[error("claim_timeout must be between 1 ms and pass_ttl, got {0:?}")]
    ClaimTimeout(Duration),
    /// `ended_memory` is above 2^22 tokens.
    #[error("ended_memory must be at most 4194304 tokens, got {0}")]
    EndedMemory(usize),
}

/// Why [`WaitingRoom::set_limits`](crate::WaitingRoom::set_limits) (or a shared room's) changed
/// nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LimitsError {
    /// One of the three values is out of its range (the first, in the order rate, burst,
    /// `max_active`): nothing was changed.
    #[error("{0}")]
    Config(RoomConfigError),
    /// The store behind a shared room failed (never returned by the in-process room).
    #[error("{0}")]
    Backend(BackendError),
}

impl LimitsError {
    /// Whether the same call can succeed later: only after a passing failure of a shared
    /// store; a value out of range stays so.
    pub fn is_retryable(&self) -> bool {
        matches!(self, LimitsError::Backend(e) if e.is_retryable())
    }
}

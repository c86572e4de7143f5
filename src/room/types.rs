//! The room's plain values: visitor ids, tokens, tickets, passes, entries and stats.

use std::time::Duration;

use crate::token::token_type;

/// A visitor, as identified by the caller (a session or account id). One visitor has at most one
/// ticket or pass at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct VisitorId(pub u64);

token_type!(
    /// The unguessable proof of a place in line, and of the pass it becomes, shown as exactly 32
    /// lowercase hex digits. A ticket keeps its token when admitted. At least 96 of its bits are
    /// CSPRNG output; [`WaitingRoom`](crate::WaitingRoom) puts where the ticket is stored in the
    /// low 32 (so a poll reads one entry and no hash table), which tells nothing about anyone
    /// else's token.
    ///
    /// ```
    /// use surgegate::TicketToken;
    ///
    /// let token: TicketToken = "ffeeddccbbaa99887766554433221100".parse()?;
    /// assert_eq!(token.to_string(), "ffeeddccbbaa99887766554433221100");
    /// # Ok::<(), surgegate::TokenParseError>(())
    /// ```
    TicketToken
);

/// A place in line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Ticket {
    /// Polls this ticket; the pass keeps it.
    pub token: TicketToken,
    /// 1 for the next visitor to be admitted. While a scheduled opening is pending, every
    /// pre-queued visitor shows the last place the draw can give them.
    pub position: u64,
    /// Estimated wait from now: exact (to 1 ns per admission ahead) for a room limited by rate
    /// alone, as long as nobody ahead leaves, which only makes it shorter; with `max_active`,
    /// estimated from how long passes have been lasting. While paused, the estimate assumes the
    /// room resumes now.
    pub eta: Duration,
}

/// Admission: the visitor may proceed until `expires_at` or until [`WaitingRoom::finish`](crate::WaitingRoom::finish).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Pass {
    /// The ticket's token.
    pub token: TicketToken,
    /// Who was admitted.
    pub visitor: VisitorId,
    /// When the pass lapses and frees its active place: on the room's clock from the in-process
    /// room's own methods, a time since the Unix epoch through
    /// [`RoomBackend`](crate::RoomBackend) and on Redis.
    pub expires_at: Duration,
}

/// The answer to a join or a poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "status", rename_all = "lowercase"))]
pub enum Entry {
    /// Admitted: go ahead.
    Admitted(Pass),
    /// Waiting: here is your place.
    Waiting(Ticket),
}

impl Entry {
    /// The token of the ticket or pass: the same one, whichever this is (a ticket keeps its
    /// token when it becomes a pass).
    pub fn token(&self) -> TicketToken {
        match self {
            Entry::Admitted(pass) => pass.token,
            Entry::Waiting(ticket) => ticket.token,
        }
    }
}

/// A snapshot of the room, from [`WaitingRoom::stats`](crate::WaitingRoom::stats) or
/// [`RoomBackend::stats`](crate::RoomBackend::stats) on any backend. A room shared on Redis has
/// no pre-queue and no scheduled opening: it reports `prequeued` 0 and `opens_at` and
/// `prequeue_seed` `None`, and the back of the line's ETA by the rate alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RoomStats {
    /// Visitors in line (not counting the pre-queue).
    pub waiting: u64,
    /// Visitors in the pre-queue of a pending scheduled opening (always 0 on Redis).
    pub prequeued: u64,
    /// Live passes.
    pub active: u64,
    /// Passes ever issued.
    pub admitted_total: u64,
    /// Visitors ever dropped from the line (or pre-queue) because their check-in lapsed.
    pub dropped_total: u64,
    /// Visitors who left the line (or pre-queue) themselves with `finish`.
    pub left_total: u64,
    /// The current sustained admission rate.
    pub rate_per_second: u32,
    /// The current burst.
    pub burst: u32,
    /// The current limit on live passes (`u32::MAX`: none).
    pub max_active: u32,
    /// The bound on `waiting + prequeued`.
    pub max_waiting: u32,
    /// Whether admissions are paused.
    pub paused: bool,
    /// Whether newcomers are refused.
    pub closed: bool,
    /// When the pending scheduled opening happens: on the room's clock from
    /// [`WaitingRoom::stats`](crate::WaitingRoom::stats), in Unix time through
    /// [`RoomBackend`](crate::RoomBackend) (always `None` on Redis).
    pub opens_at: Option<Duration>,
    /// The seed of the pending scheduled opening, or of the last draw, so the draw can be
    /// re-run with [`prequeue_order`](super::prequeue_order) (always `None` on Redis).
    pub prequeue_seed: Option<u64>,
    /// The ETA of the last visitor in line (or pre-queue); zero when nobody waits. On Redis, by
    /// the rate alone (as its tickets' ETAs).
    pub back_of_line_eta: Duration,
}

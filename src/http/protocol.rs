//! The names every part of the layer shares: its headers, the longest refresh interval, the
//! hooks a portal gives it, and the counters of what it answered.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::request::Parts;

use crate::room::VisitorId;

/// The header an app sends its pass in (its `Authorization` header is the portal's own).
pub const PASS_HEADER: &str = "sg-pass";
/// The header an app may send its visitor text in, instead of the `sg_visitor` cookie.
pub const VISITOR_HEADER: &str = "sg-visitor";
/// The longest interval a waiting page asks for between refreshes, in seconds.
pub const MAX_REFRESH_SECONDS: u64 = 30;

/// Who the visitor is, from the request: the portal's own identity (say, a signed-in account).
pub type IdentityHook = Arc<dyn Fn(&Parts) -> Option<VisitorId> + Send + Sync>;
/// The client's address, from the request (say, from the connection, or from a header set by
/// the portal's own proxy).
pub type AddressHook = Arc<dyn Fn(&Parts) -> Option<IpAddr> + Send + Sync>;

/// Counts of what a layer answered (for a portal's metrics): each gated request adds one to
/// `passes` or to `joins`, and each join one to exactly one of the outcomes after it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayerCounters {
    /// Requests let through on a live pass they presented.
    pub passes: u64,
    /// Requests that joined the room (no live pass).
    pub joins: u64,
    /// Joins admitted at once (the request went through with a new pass).
    pub admitted: u64,
    /// Joins answered with a place in line.
    pub waiting: u64,
    /// Joins refused because the line was full.
    pub full: u64,
    /// Joins refused because the room was closed.
    pub closed: u64,
    /// New identities refused by the limit per address (these never joined).
    pub limited: u64,
    /// Joins the room's store could not answer (`503`, `"status":"unavailable"`).
    pub unavailable: u64,
    /// Requests without an identity that may not start one (`403`, `"status":"forbidden"`):
    /// not a `GET`/`HEAD`, or sent from another site. These never joined.
    pub forbidden: u64,
    /// `POST <prefix>/leave` requests.
    pub left: u64,
}

/// The live counters behind [`LayerCounters`]. Relaxed: statistics, read without ordering.
#[derive(Default)]
pub(super) struct Counts {
    pub(super) passes: AtomicU64,
    pub(super) joins: AtomicU64,
    pub(super) admitted: AtomicU64,
    pub(super) waiting: AtomicU64,
    pub(super) full: AtomicU64,
    pub(super) closed: AtomicU64,
    pub(super) limited: AtomicU64,
    pub(super) unavailable: AtomicU64,
    pub(super) forbidden: AtomicU64,
    pub(super) left: AtomicU64,
}

pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

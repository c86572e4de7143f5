//! A waiting visitor's entry in the line: token, visitor and check-in deadline, in 32 bytes.
//!
//! Guarantee: an entry fits one cache line (32 bytes, 32-aligned), so a poll reads one; its
//! check-in deadline is an atomic that check-ins raise under the room's shared lock and the
//! replay reads under the exclusive one.

use crate::sync::{AtomicU64, Ordering};

use super::types::VisitorId;

/// 32 bytes, aligned to 32 so that an entry never straddles two cache lines: a poll reads one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(align(32))]
pub(crate) struct Waiter {
    pub(crate) token: u128,
    pub(crate) visitor: VisitorId,
    /// The time at which this visitor lapses unless it checks in again.
    pub(crate) deadline_ns: CheckinNs,
}

/// A waiting visitor's check-in deadline: raised by check-ins, which may run at once under the
/// room's shared lock; read by the replay under the exclusive lock.
#[derive(Debug)]
pub(crate) struct CheckinNs(AtomicU64);

impl CheckinNs {
    pub(crate) fn new(ns: u64) -> Self {
        Self(AtomicU64::new(ns))
    }

    #[inline]
    pub(crate) fn get(&self) -> u64 {
        // Relaxed: readers of this value either hold the exclusive lock, whose acquisition
        // follows every shared holder's release (so every raise is visible), or race only with
        // other raises, where any value read is a deadline the visitor had.
        self.0.load(Ordering::Relaxed)
    }

    /// Moves the deadline to `ns` if that is later. Relaxed: an atomic read-modify-write, so
    /// concurrent check-ins keep the latest deadline; the lock orders it before the replay.
    #[inline]
    pub(crate) fn raise(&self, ns: u64) {
        self.0.fetch_max(ns, Ordering::Relaxed);
    }
}

impl Clone for CheckinNs {
    fn clone(&self) -> Self {
        Self::new(self.get())
    }
}

impl PartialEq for CheckinNs {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for CheckinNs {}

// The 32 bytes the module promises (loom's atomics are larger, so only outside loom builds).
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Waiter>() == 32);

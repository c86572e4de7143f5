//! Newcomers who joined under the room's shared lock: a short queue behind the line.
//!
//! A newcomer's `join` changes the line, so it used to take the room's exclusive lock, and every
//! poll on every other thread waited for it. Most newcomers of a surge join a room where others
//! already wait and nothing is due: their place is simply the back. Such a join is recorded
//! here, under the room's shared lock and this queue's own small mutex, while polls and
//! check-ins of others go on beside it; the next call that takes the exclusive lock appends these
//! arrivals to the line, in order, before anything else.
//!
//! Guarantees:
//! - An arrival's place is exact from the start, and the same after it is appended: behind
//!   everyone in line and the arrivals before it (position `line.waiting() + k + 1` for the
//!   `k`-th arrival). Its token's home index is the line index it will get, `k` after
//!   `line.next_index()`: the line changes only under the exclusive lock, and every exclusive
//!   call appends the arrivals first.
//! - Nothing is due for an arrival before the room's next event: the room takes one here only
//!   when others wait (so its admission comes after theirs, none of which is due), no opening is
//!   pending, and its check-in deadline is not before the room's next event (so its lapse is
//!   never missed by a call answered under the shared lock).
//! - At most [`MAX_ARRIVALS`] wait here: a join that finds the queue full takes the exclusive
//!   path, which empties it. So no exclusive call appends more than that many.

use crate::sync::Mutex;

use super::line::Line;
use super::types::VisitorId;
use super::waiter::Waiter;

/// The most newcomers held behind the line between two exclusive calls.
pub(crate) const MAX_ARRIVALS: usize = 1024;

/// Padded to its own cache lines: joins write the mutex and the batch's header, and polls on
/// other cores read the fields of the room's state beside it.
#[derive(Debug)]
pub(crate) struct Arrivals {
    batch: crossbeam_utils::CachePadded<Mutex<Batch>>,
}

/// The arrivals, in join order, and where each visitor's is.
#[derive(Debug)]
pub(crate) struct Batch {
    waiters: Vec<Waiter>,
    by_visitor: hashbrown::HashMap<u64, u32, ahash::RandomState>,
}

impl Arrivals {
    pub(crate) fn new() -> Self {
        Self {
            batch: crossbeam_utils::CachePadded::new(Mutex::new(Batch {
                waiters: Vec::new(),
                by_visitor: hashbrown::HashMap::with_hasher(crate::sync::random_state()),
            })),
        }
    }

    /// The arrivals, for a join (the room's shared lock held) or to append them (exclusive).
    pub(crate) fn lock(&self) -> crate::sync::MutexGuard<'_, Batch> {
        self.batch.lock()
    }

    /// The arrival with this token, checked in until `deadline_ns` if given: its number `k`.
    /// `first_index` is the line's next index, the home index of arrival 0.
    pub(crate) fn find_token(
        &self,
        token: u128,
        first_index: u32,
        deadline_ns: Option<u64>,
    ) -> Option<u32> {
        let k = Line::home_index(token).wrapping_sub(first_index);
        if k as usize >= MAX_ARRIVALS {
            return None;
        }
        let batch = self.lock();
        let w = batch.waiters.get(k as usize).filter(|w| w.token == token)?;
        if let Some(d) = deadline_ns {
            w.deadline_ns.raise(d);
        }
        Some(k)
    }

    /// Heap bytes in use.
    pub(crate) fn heap_bytes(&self) -> usize {
        let batch = self.lock();
        batch.waiters.capacity() * std::mem::size_of::<Waiter>()
            + batch.by_visitor.capacity() * std::mem::size_of::<(u64, u32)>()
    }
}

impl Batch {
    pub(crate) fn len(&self) -> usize {
        self.waiters.len()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.waiters.len() >= MAX_ARRIVALS
    }

    /// This visitor's arrival, checked in until `deadline_ns`: its number and token.
    pub(crate) fn check_in_visitor(
        &self,
        visitor: VisitorId,
        deadline_ns: u64,
    ) -> Option<(u32, u128)> {
        let &k = self.by_visitor.get(&visitor.0)?;
        let w = &self.waiters[k as usize];
        w.deadline_ns.raise(deadline_ns);
        Some((k, w.token))
    }

    /// Queues a newcomer; returns its number. The caller has checked there is room.
    pub(crate) fn push(&mut self, waiter: Waiter) -> u32 {
        debug_assert!(!self.is_full() && !self.by_visitor.contains_key(&waiter.visitor.0));
        let k = self.waiters.len() as u32;
        self.by_visitor.insert(waiter.visitor.0, k);
        self.waiters.push(waiter);
        k
    }

    /// Takes the arrivals out, in join order.
    pub(crate) fn take(&mut self) -> std::vec::Drain<'_, Waiter> {
        self.by_visitor.clear();
        self.waiters.drain(..)
    }

    /// The arrivals in join order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Waiter> + '_ {
        self.waiters.iter()
    }
}

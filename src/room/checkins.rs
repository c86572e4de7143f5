//! The check-in records of a line: when each waiting visitor may lapse, earliest first.
//!
//! Guarantees:
//! - Each waiting visitor has exactly one record, and its deadline is at or before the
//!   visitor's own. A check-in only raises the visitor's deadline (one atomic store, under the
//!   room's shared lock) and leaves the record where it is; so [`front`](CheckinQueue::front) is
//!   a lower bound of the next lapse, never later than it.
//! - When a record reaches the front, the replay (under the exclusive lock) either finds the
//!   visitor's deadline unchanged (it lapses) or moves the record to the visitor's current
//!   deadline ([`requeue`](CheckinQueue::requeue)): one move per visitor per check-in timeout at
//!   most, however often it checks in.
//! - Records of joins arrive in deadline order (a FIFO, O(1)); moved ones go to a min-heap
//!   (O(log n)). Records of visitors who left are skipped when reached, and dropped by a
//!   compaction once they outnumber the live ones (see [`DeadlineQueue`]).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::deadline::DeadlineQueue;

/// Stale moved records allowed beyond the live ones before the heap is compacted.
const SLACK: usize = 32;

#[derive(Debug)]
pub(crate) struct CheckinQueue<K> {
    joined: DeadlineQueue<K>,
    moved: BinaryHeap<Reverse<(u64, K)>>,
}

impl<K> Default for CheckinQueue<K> {
    fn default() -> Self {
        Self {
            joined: DeadlineQueue::default(),
            moved: BinaryHeap::new(),
        }
    }
}

impl<K: Copy + Ord> CheckinQueue<K> {
    /// The record of a visitor who just joined; `deadline_ns` is not before any pushed so far.
    pub(crate) fn push(
        &mut self,
        deadline_ns: u64,
        key: K,
        live: usize,
        is_live: impl Fn(u64, K) -> bool,
    ) {
        self.joined.push(deadline_ns, key, live, is_live);
    }

    /// Records of visitors added at once, whose deadlines may be earlier than those queued.
    pub(crate) fn merge(&mut self, added: Vec<(u64, K)>) {
        self.joined.merge(added);
    }

    /// The earliest live record, dropping the stale ones before it.
    pub(crate) fn front(&mut self, is_live: impl Fn(u64, K) -> bool) -> Option<(u64, K)> {
        let joined = self.joined.front(&is_live);
        while let Some(&Reverse((d, k))) = self.moved.peek() {
            if is_live(d, k) {
                break;
            }
            self.moved.pop();
        }
        let moved = self.moved.peek().map(|r| r.0);
        match (joined, moved) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Removes the earliest live record and returns it.
    pub(crate) fn pop_front(&mut self, is_live: impl Fn(u64, K) -> bool) -> Option<(u64, K)> {
        let front = self.front(&is_live)?;
        if self.moved.peek().is_some_and(|r| r.0 == front) {
            self.moved.pop();
        } else {
            self.joined.pop();
        }
        crate::shrink::binary_heap(&mut self.moved);
        Some(front)
    }

    /// Queues a record again at the visitor's current deadline.
    pub(crate) fn requeue(
        &mut self,
        deadline_ns: u64,
        key: K,
        live: usize,
        is_live: impl Fn(u64, K) -> bool,
    ) {
        if self.moved.len() > 2 * live + SLACK {
            self.moved.retain(|&Reverse((d, k))| is_live(d, k));
        }
        self.moved.push(Reverse((deadline_ns, key)));
    }

    /// Every record, stale ones included.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, K)> + '_ {
        self.joined.iter().chain(self.moved.iter().map(|r| r.0))
    }

    /// Whether the records of joins are in deadline order (for invariant checks).
    pub(crate) fn is_ordered(&self) -> bool {
        self.joined.is_ordered()
    }

    /// Heap bytes of both parts.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.joined.heap_bytes() + self.moved.capacity() * std::mem::size_of::<(u64, K)>()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A model of the protocol: keys check in (raising their deadline) without touching the
    /// queue; popping the front either lapses a key or requeues it; lapses come out in exactly
    /// the order of the keys' current deadlines.
    #[test]
    fn lapses_come_out_in_order_of_current_deadlines() {
        let mut q = CheckinQueue::default();
        let mut deadline: HashMap<u32, u64> = HashMap::new();
        let mut x = 99u64;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for key in 0..2_000u32 {
            let d = u64::from(key);
            deadline.insert(key, d);
            let live = deadline.len();
            q.push(d, key, live, |_, k| deadline.contains_key(&k));
        }
        // Half the keys check in once or more, to later deadlines; some leave.
        for _ in 0..3_000 {
            let key = next(2_000) as u32;
            if next(10) == 0 {
                deadline.remove(&key);
            } else if let Some(d) = deadline.get_mut(&key) {
                *d += next(5_000) + 1;
            }
        }
        let mut lapsed = Vec::new();
        while let Some((d, key)) = q.front(|_, k| deadline.contains_key(&k)) {
            let current = deadline[&key];
            assert!(
                d <= current,
                "a record is never later than its key's deadline"
            );
            q.pop_front(|_, k| deadline.contains_key(&k));
            if current > d {
                let live = deadline.len();
                q.requeue(current, key, live, |_, k| deadline.contains_key(&k));
            } else {
                deadline.remove(&key);
                lapsed.push(d);
            }
        }
        assert!(deadline.is_empty());
        assert!(lapsed.windows(2).all(|w| w[0] <= w[1]), "lapses in order");
    }
}

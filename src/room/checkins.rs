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
//! - Records of joins arrive in deadline order (a FIFO, O(1)). Moved ones go to buckets of
//!   2^27 ns (about 134 ms) by deadline (O(1)); the first bucket is made a min-heap when it comes
//!   first (O(b) for a bucket of b, in one pass over memory in order) and records moved into it
//!   later join that heap (O(log b)). A bucket holds the visitors who checked in within the same
//!   134 ms, so the heaps stay small.
//! - Records of visitors who left are skipped when reached, and dropped by a compaction (one pass
//!   over the records) once they outnumber the live ones, as in [`DeadlineQueue`]: so the
//!   records are never more than twice the waiting visitors, plus a slack.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use crate::deadline::DeadlineQueue;

/// Stale moved records allowed beyond the live ones before they are compacted.
const SLACK: usize = 32;

/// The width of a bucket of moved records: 2^27 ns, about 134 ms.
const BUCKET_SHIFT: u32 = 27;
#[cfg(test)]
const BUCKET_NS: u64 = 1 << BUCKET_SHIFT;

#[derive(Debug)]
pub(crate) struct CheckinQueue<K> {
    joined: DeadlineQueue<K>,
    /// Moved records of later buckets, by bucket, in no order.
    later: BTreeMap<u64, Vec<Reverse<(u64, K)>>>,
    /// The bucket being drained (and records moved into it or an earlier one since), a
    /// min-heap; every bucket in `later` is after `ready_bucket`.
    ready: BinaryHeap<Reverse<(u64, K)>>,
    ready_bucket: Option<u64>,
    /// Moved records held in `later` and `ready`, stale ones included.
    moved: usize,
}

impl<K> Default for CheckinQueue<K> {
    fn default() -> Self {
        Self {
            joined: DeadlineQueue::default(),
            later: BTreeMap::new(),
            ready: BinaryHeap::new(),
            ready_bucket: None,
            moved: 0,
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
        match (joined, self.moved_front(&is_live)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The earliest live moved record, making the next bucket the heap when one runs out.
    fn moved_front(&mut self, is_live: impl Fn(u64, K) -> bool) -> Option<(u64, K)> {
        loop {
            while let Some(&Reverse((d, k))) = self.ready.peek() {
                if is_live(d, k) {
                    return Some((d, k));
                }
                self.ready.pop();
                self.moved -= 1;
            }
            let (bucket, records) = self.later.pop_first()?;
            // In place, O(b): the heap takes the bucket's buffer.
            self.ready = BinaryHeap::from(records);
            self.ready_bucket = Some(bucket);
        }
    }

    /// Removes the earliest live record and returns it.
    pub(crate) fn pop_front(&mut self, is_live: impl Fn(u64, K) -> bool) -> Option<(u64, K)> {
        let front = self.front(&is_live)?;
        if self.ready.peek().is_some_and(|r| r.0 == front) {
            self.ready.pop();
            self.moved -= 1;
        } else {
            self.joined.pop();
        }
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
        if self.moved > 2 * live + SLACK {
            self.compact(&is_live);
        }
        let bucket = deadline_ns >> BUCKET_SHIFT;
        let record = Reverse((deadline_ns, key));
        if self.ready_bucket.is_some_and(|r| bucket <= r) {
            self.ready.push(record);
        } else {
            self.later.entry(bucket).or_default().push(record);
        }
        self.moved += 1;
    }

    /// Drops the moved records of visitors who left.
    #[cold]
    fn compact(&mut self, is_live: impl Fn(u64, K) -> bool) {
        self.ready.retain(|&Reverse((d, k))| is_live(d, k));
        self.later.retain(|_, records| {
            records.retain(|&Reverse((d, k))| is_live(d, k));
            !records.is_empty()
        });
        crate::shrink::binary_heap(&mut self.ready);
        self.moved = self.ready.len() + self.later.values().map(Vec::len).sum::<usize>();
    }

    /// Every record, stale ones included.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, K)> + '_ {
        self.joined
            .iter()
            .chain(self.ready.iter().map(|r| r.0))
            .chain(self.later.values().flatten().map(|r| r.0))
    }

    /// Whether the records of joins are in deadline order, and every moved record in the bucket
    /// of its deadline, the later buckets after the one being drained (for invariant checks).
    pub(crate) fn is_ordered(&self) -> bool {
        let after_ready = |b: u64| self.ready_bucket.is_none_or(|r| b > r);
        self.joined.is_ordered()
            && self.later.iter().all(|(&b, records)| {
                after_ready(b) && records.iter().all(|r| r.0.0 >> BUCKET_SHIFT == b)
            })
            && self
                .ready
                .iter()
                .all(|r| !after_ready(r.0.0 >> BUCKET_SHIFT))
    }

    /// Heap bytes of every part (a bucket's map node counted as 64 bytes).
    pub(crate) fn heap_bytes(&self) -> usize {
        let record = std::mem::size_of::<(u64, K)>();
        self.joined.heap_bytes()
            + self.ready.capacity() * record
            + self
                .later
                .values()
                .map(|v| v.capacity() * record + 64)
                .sum::<usize>()
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
                *d += next(3 * BUCKET_NS) + 1;
            }
        }
        let mut lapsed = Vec::new();
        let mut rounds = 0;
        while let Some((d, key)) = q.front(|_, k| deadline.contains_key(&k)) {
            rounds += 1;
            // Check-ins keep coming while the queue drains: some land in the bucket being
            // drained (its heap), some in later buckets.
            if rounds % 3 == 0 {
                let other = next(2_000) as u32;
                if let Some(od) = deadline.get_mut(&other) {
                    *od += next(BUCKET_NS / 2) + 1;
                }
            }
            let current = deadline[&key];
            assert!(
                d <= current,
                "a record is never later than its key's deadline"
            );
            q.pop_front(|_, k| deadline.contains_key(&k));
            if current > d {
                let live = deadline.len();
                q.requeue(current, key, live, |_, k| deadline.contains_key(&k));
                assert!(q.is_ordered());
            } else {
                deadline.remove(&key);
                lapsed.push(d);
            }
        }
        assert!(deadline.is_empty());
        assert!(lapsed.windows(2).all(|w| w[0] <= w[1]), "lapses in order");
    }
}

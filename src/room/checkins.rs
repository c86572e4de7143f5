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
//! - Records of joins arrive in deadline order, nearly always (a FIFO, O(1); the rare one
//!   earlier than the last is treated as a moved record). Moved ones go to buckets of
//!   2^27 ns (about 134 ms) by deadline (O(1)); the first bucket is sorted when it comes first
//!   (O(b log b) for a bucket of b, in cache: a bucket holds the visitors who checked in within
//!   the same 134 ms) and then taken from its end, O(1) a record; a bucket of more than
//!   `SORT_MAX` is made a heap instead (O(b) in one pass, then O(log b) a record), so that no
//!   call sorts a crowd. A record moved into that bucket
//!   (or an earlier one) after it was sorted goes to a small heap beside it (O(log l)): only a
//!   visitor whose new deadline is within a bucket's width of now, which is rare. Sorting a
//!   bucket once, in cache, costs less than popping each of its records off a heap, and the
//!   sorted order tells the replay which entries come next (it prefetches them): with both, a
//!   3 M-visitor surge on one thread ran in 26.4–27.5 s against 27.1–28.6 s (three pairs).
//! - Records of visitors who left are skipped when reached, and dropped by a compaction (one pass
//!   over the records) once they outnumber the live ones, as in [`DeadlineQueue`]: so the
//!   records are never more than twice the waiting visitors, plus a slack.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use crate::deadline::DeadlineQueue;

/// Stale moved records allowed beyond the live ones before they are compacted.
const SLACK: usize = 32;

/// The largest bucket sorted when it comes up (about 1–2 ms of sorting in any order); a larger
/// one (a crowd that all checked in within the same 134 ms) becomes a heap instead.
const SORT_MAX: usize = 1 << 16;

/// The width of a bucket of moved records: 2^27 ns, about 134 ms.
const BUCKET_SHIFT: u32 = 27;
#[cfg(test)]
const BUCKET_NS: u64 = 1 << BUCKET_SHIFT;

#[derive(Debug)]
pub(crate) struct CheckinQueue<K> {
    joined: DeadlineQueue<K>,
    /// Moved records of later buckets, by bucket, in no order.
    later: BTreeMap<u64, Vec<(u64, K)>>,
    /// The bucket being drained, sorted latest first (its earliest record is the last).
    ready: Vec<(u64, K)>,
    /// Records moved into the bucket being drained, or an earlier one, since it was sorted; or
    /// the whole bucket, made a heap, when it was too large to sort (see [`SORT_MAX`]).
    late: BinaryHeap<Reverse<(u64, K)>>,
    /// The bucket `ready` came from; every bucket in `later` is after it.
    ready_bucket: Option<u64>,
    /// Moved records held in `later`, `ready` and `late`, stale ones included.
    moved: usize,
}

impl<K> Default for CheckinQueue<K> {
    fn default() -> Self {
        Self {
            joined: DeadlineQueue::default(),
            later: BTreeMap::new(),
            ready: Vec::new(),
            late: BinaryHeap::new(),
            ready_bucket: None,
            moved: 0,
        }
    }
}

impl<K: Copy + Ord> CheckinQueue<K> {
    /// The record of a visitor who just joined. Joins' deadlines come nearly in order; one
    /// before the last pushed (a newcomer whose clock reading raced another's, see
    /// `room::arrivals`) goes with the moved records, which take any order.
    pub(crate) fn push(
        &mut self,
        deadline_ns: u64,
        key: K,
        live: usize,
        is_live: impl Fn(u64, K) -> bool,
    ) {
        if self.joined.last_deadline().is_some_and(|d| d > deadline_ns) {
            self.requeue(deadline_ns, key, live, is_live);
        } else {
            self.joined.push(deadline_ns, key, live, is_live);
        }
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

    /// The earliest live moved record, sorting the next bucket when one runs out.
    fn moved_front(&mut self, is_live: impl Fn(u64, K) -> bool) -> Option<(u64, K)> {
        loop {
            let sorted = self.ready.last().copied();
            let late = self.late.peek().map(|r| r.0);
            let (front, from_late) = match (sorted, late) {
                (Some(a), Some(b)) if b < a => (b, true),
                (Some(a), _) => (a, false),
                (None, Some(b)) => (b, true),
                (None, None) => {
                    let (bucket, records) = self.later.pop_first()?;
                    self.make_ready(bucket, records);
                    continue;
                }
            };
            if is_live(front.0, front.1) {
                return Some(front);
            }
            self.take_moved(from_late);
        }
    }

    /// Makes `bucket` the one being drained: sorted, latest first (the earliest is taken from
    /// the end), unless it is so large that sorting it would be one long call; then it becomes
    /// the heap (O(b) in one pass, and O(log b) a record after).
    fn make_ready(&mut self, bucket: u64, mut records: Vec<(u64, K)>) {
        if records.len() <= SORT_MAX {
            records.sort_unstable_by(|a, b| b.cmp(a));
            self.ready = records;
        } else {
            let heap: Vec<Reverse<(u64, K)>> = records.into_iter().map(Reverse).collect();
            self.late = BinaryHeap::from(heap);
        }
        self.ready_bucket = Some(bucket);
    }

    /// Removes the earliest moved record, from the heap of late ones or from the sorted bucket.
    fn take_moved(&mut self, from_late: bool) {
        if from_late {
            self.late.pop();
        } else {
            self.ready.pop();
        }
        self.moved -= 1;
    }

    /// Removes the earliest live record and returns it.
    pub(crate) fn pop_front(&mut self, is_live: impl Fn(u64, K) -> bool) -> Option<(u64, K)> {
        let front = self.front(&is_live)?;
        if self.late.peek().is_some_and(|r| r.0 == front) {
            self.take_moved(true);
        } else if self.ready.last() == Some(&front) {
            self.take_moved(false);
        } else {
            self.joined.pop();
        }
        Some(front)
    }

    /// The `n`-th record after the front of the joins' FIFO and of the sorted bucket (stale or
    /// not, in the order they come up): for prefetching the entries that come next.
    pub(crate) fn ahead(&self, n: usize) -> (Option<K>, Option<K>) {
        let sorted = self.ready.len().checked_sub(n + 1).map(|i| self.ready[i].1);
        (self.joined.nth(n).map(|(_, k)| k), sorted)
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
        if self.ready_bucket.is_some_and(|r| bucket <= r) {
            self.late.push(Reverse((deadline_ns, key)));
        } else {
            self.later
                .entry(bucket)
                .or_default()
                .push((deadline_ns, key));
        }
        self.moved += 1;
    }

    /// Drops the moved records of visitors who left.
    #[cold]
    fn compact(&mut self, is_live: impl Fn(u64, K) -> bool) {
        // `retain` keeps the order: the sorted bucket stays sorted.
        self.ready.retain(|&(d, k)| is_live(d, k));
        self.late.retain(|&Reverse((d, k))| is_live(d, k));
        self.later.retain(|_, records| {
            records.retain(|&(d, k)| is_live(d, k));
            !records.is_empty()
        });
        crate::shrink::vec(&mut self.ready);
        crate::shrink::binary_heap(&mut self.late);
        self.moved =
            self.ready.len() + self.late.len() + self.later.values().map(Vec::len).sum::<usize>();
    }

    /// Every record, stale ones included.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, K)> + '_ {
        self.joined
            .iter()
            .chain(self.ready.iter().copied())
            .chain(self.late.iter().map(|r| r.0))
            .chain(self.later.values().flatten().copied())
    }

    /// Whether the records of joins are in deadline order, and every moved record in the bucket
    /// of its deadline, the later buckets after the one being drained (for invariant checks).
    pub(crate) fn is_ordered(&self) -> bool {
        let after_ready = |b: u64| self.ready_bucket.is_none_or(|r| b > r);
        self.joined.is_ordered()
            && self.later.iter().all(|(&b, records)| {
                after_ready(b) && records.iter().all(|r| r.0 >> BUCKET_SHIFT == b)
            })
            && self.ready.is_sorted_by(|a, b| a >= b)
            && self
                .ready
                .iter()
                .chain(self.late.iter().map(|r| &r.0))
                .all(|r| !after_ready(r.0 >> BUCKET_SHIFT))
    }

    /// Heap bytes of every part (a bucket's map node counted as 64 bytes).
    pub(crate) fn heap_bytes(&self) -> usize {
        let record = std::mem::size_of::<(u64, K)>();
        self.joined.heap_bytes()
            + (self.ready.capacity() + self.late.capacity()) * record
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

    /// A bucket too large to sort (a crowd that checked in within the same 134 ms, in any order)
    /// is drained as a heap: records still come out in deadline order, and every one comes out.
    #[test]
    fn a_crowd_in_one_bucket_comes_out_in_order() {
        let mut q = CheckinQueue::default();
        let n = SORT_MAX as u32 + 5_000;
        let mut x = 7u64;
        for key in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Every deadline in one bucket, in no order.
            q.requeue(BUCKET_NS * 10 + x % BUCKET_NS, key, n as usize, |_, _| true);
        }
        let mut last = 0;
        let mut seen = 0u32;
        while let Some((d, _)) = q.pop_front(|_, _| true) {
            assert!(d >= last, "out of order: {d} after {last}");
            if seen.is_multiple_of(10_000) {
                assert!(q.is_ordered());
            }
            last = d;
            seen += 1;
        }
        assert_eq!(seen, n);
    }
}

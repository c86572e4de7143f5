//! A queue of deadlines in the order they fall due, with lazy deletion.
//!
//! Guarantee: [`DeadlineQueue::front`] returns the earliest deadline whose entry is still live,
//! in O(1) amortized, and the queue never holds more than `2 × live + SLACK` entries after a
//! push. The users (the book's hold expiries, the room's check-in lapses and pass expiries) all
//! push deadlines in nondecreasing order (one lifetime for all, measured from a time that never
//! steps back), so a FIFO is a priority queue here. An entry made stale (a hold confirmed, a
//! visitor who checked in again) is not searched for: it is skipped when it reaches the front,
//! and dropped by a compaction once stale entries outnumber the live ones, run by the next push
//! or, where entries go stale without pushes (holds confirmed or released one after another), by
//! the owner through [`DeadlineQueue::drop_stale`].

use std::collections::VecDeque;

/// Stale entries allowed beyond the live ones before a compaction, so that a small queue does
/// not compact on every push.
const SLACK: usize = 32;

/// Deadlines (ns) with the key of the entry each belongs to, earliest first.
#[derive(Debug)]
pub(crate) struct DeadlineQueue<K> {
    entries: VecDeque<(u64, K)>,
}

impl<K> Default for DeadlineQueue<K> {
    fn default() -> Self {
        Self {
            entries: VecDeque::new(),
        }
    }
}

impl<K: Copy> DeadlineQueue<K> {
    /// Appends `key` with `deadline_ns`, which must not be before the last deadline pushed.
    /// First drops stale entries if they outnumber the `live` ones by more than the slack;
    /// returns whether it did (the front may then have changed).
    #[inline]
    pub(crate) fn push(
        &mut self,
        deadline_ns: u64,
        key: K,
        live: usize,
        is_live: impl Fn(u64, K) -> bool,
    ) -> bool {
        let compacted = self.drop_stale(live, SLACK, is_live);
        debug_assert!(
            self.entries.back().is_none_or(|&(d, _)| d <= deadline_ns),
            "deadlines pushed out of order"
        );
        self.entries.push_back((deadline_ns, key));
        compacted
    }

    /// Drops the stale entries if they outnumber the `live` ones by more than `slack`; returns
    /// whether it did (the front may then have changed). For owners whose entries go stale
    /// without a push (a hold confirmed): each compaction costs O(entries) and leaves only live
    /// ones, so the next needs more than `live + slack` entries to go stale first, and the work
    /// is O(1) amortized per entry made stale.
    #[inline]
    pub(crate) fn drop_stale(
        &mut self,
        live: usize,
        slack: usize,
        is_live: impl Fn(u64, K) -> bool,
    ) -> bool {
        let compact = self.entries.len() > live.saturating_mul(2).saturating_add(slack);
        if compact {
            self.compact(is_live);
        }
        compact
    }

    /// Adds entries whose deadlines may be earlier than those queued, keeping the order
    /// (O(queued + added)).
    pub(crate) fn merge(&mut self, mut added: Vec<(u64, K)>) {
        if added.is_empty() {
            return;
        }
        added.sort_unstable_by_key(|&(d, _)| d);
        let old = std::mem::take(&mut self.entries);
        let mut merged = VecDeque::with_capacity(old.len() + added.len());
        let (mut a, mut b) = (old.into_iter().peekable(), added.into_iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.0 <= y.0 => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => break,
            };
            merged.extend(next);
        }
        self.entries = merged;
    }

    /// The `n`-th entry from the front, stale or not.
    pub(crate) fn nth(&self, n: usize) -> Option<(u64, K)> {
        self.entries.get(n).copied()
    }

    /// The last deadline pushed, if any entry is queued.
    pub(crate) fn last_deadline(&self) -> Option<u64> {
        self.entries.back().map(|&(d, _)| d)
    }

    /// Drops the stale entries.
    #[cold]
    #[inline(never)]
    fn compact(&mut self, is_live: impl Fn(u64, K) -> bool) {
        self.entries.retain(|&(d, k)| is_live(d, k));
        crate::shrink::deque(&mut self.entries);
    }

    /// The earliest live entry, dropping the stale ones before it.
    pub(crate) fn front(&mut self, is_live: impl Fn(u64, K) -> bool) -> Option<(u64, K)> {
        while let Some(&(d, k)) = self.entries.front() {
            if is_live(d, k) {
                return Some((d, k));
            }
            self.pop();
        }
        None
    }

    /// The earliest entry, stale or not, without dropping anything.
    pub(crate) fn peek(&self) -> Option<(u64, K)> {
        self.entries.front().copied()
    }

    /// Removes the earliest entry, stale or not.
    pub(crate) fn pop(&mut self) -> Option<(u64, K)> {
        let popped = self.entries.pop_front();
        crate::shrink::deque(&mut self.entries);
        popped
    }

    /// Every entry, stale ones included, earliest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, K)> + '_ {
        self.entries.iter().copied()
    }

    /// Whether the deadlines are in order (for invariant checks).
    pub(crate) fn is_ordered(&self) -> bool {
        self.entries
            .iter()
            .zip(self.entries.iter().skip(1))
            .all(|(a, b)| a.0 <= b.0)
    }

    /// Heap bytes of the entries' buffer.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(u64, K)>()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A model: each key's current deadline; an entry is live if it matches.
    #[test]
    fn front_skips_stale_entries_and_compaction_bounds_the_length() {
        let mut q = DeadlineQueue::default();
        let mut current: HashMap<u32, u64> = HashMap::new();
        let mut t = 0u64;
        // 1 000 keys, each checked in (pushed again) 50 times: 49 of every 50 entries go stale.
        for round in 0..50 {
            for key in 0..1_000u32 {
                t += 1;
                current.insert(key, t);
                let live = current.len();
                q.push(t, key, live, |d, k| current.get(&k) == Some(&d));
                assert!(q.entries.len() <= 2 * live + SLACK + 1, "round {round}");
            }
        }
        assert!(q.is_ordered());
        // Popping live fronts yields each key once, in deadline order.
        let mut popped = Vec::new();
        while let Some((d, k)) = q.front(|d, k| current.get(&k) == Some(&d)) {
            q.pop();
            current.remove(&k);
            popped.push(d);
        }
        assert_eq!(popped.len(), 1_000);
        assert!(popped.windows(2).all(|w| w[0] < w[1]));
        assert!(q.front(|_, _| true).is_none());
    }

    #[test]
    fn push_reports_a_compaction() {
        let mut q = DeadlineQueue::default();
        for d in 0..=(SLACK as u64) {
            assert!(!q.push(d, d, 0, |_, _| false));
        }
        // Now more than 2 × 0 + SLACK entries, all stale: the next push compacts first.
        assert!(q.push(100, 100, 0, |_, _| false));
        assert_eq!(q.iter().count(), 1);
        assert_eq!(q.peek(), Some((100, 100)));
    }
}

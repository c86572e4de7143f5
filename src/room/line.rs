//! The line of waiting visitors, in the order they will be admitted.
//!
//! Guarantees:
//! - Order is join order (or the drawn order of a pre-queue), and admission takes the head.
//! - Positions are exact: the waiting visitors' positions are `1..=waiting` at every instant,
//!   however many left from the middle; `position` is O(log n) (see [`super::rank`]).
//! - Lookups by token and by visitor are O(1) expected (see [`super::index`]).
//! - Check-in lapses come out in deadline order in O(1) amortized.
//!
//! Memory: one 32-byte entry per visitor, two index cells of 8 bytes at 4/5 load or less, one
//! check-in record of 16 bytes per check-in not yet reached, and a bit. Entries of visitors who
//! left stay in place (positions are ranks, so they cost nothing to skip) until they outnumber
//! the waiting ones by 4096; then the line is compacted in one O(n) pass, which is O(1) amortized
//! per departure.

use crate::deadline::DeadlineQueue;

use super::VisitorId;
use super::index::IndexTable;
use super::rank::RankBitmap;

/// Compact when dead entries exceed live ones by this much.
const COMPACT_SLACK: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Waiter {
    pub(crate) token: u128,
    pub(crate) visitor: VisitorId,
    /// The time at which this visitor lapses unless it checks in again.
    pub(crate) deadline_ns: u64,
}

#[derive(Debug)]
pub(crate) struct Line {
    entries: Vec<Waiter>,
    live: RankBitmap,
    by_token: IndexTable,
    by_visitor: IndexTable,
    /// `(deadline_ns, index)` in non-decreasing deadline order. An entry is current if the
    /// indexed waiter is live with that deadline; others are skipped when reached.
    checkins: DeadlineQueue<CheckinKey>,
    /// No live entry is below `head`.
    head: usize,
    visitor_hasher: ahash::RandomState,
}

/// The hash of a token: 64 of its CSPRNG bits.
pub(crate) fn token_hash(token: u128) -> u64 {
    (token >> 64) as u64
}

impl Line {
    pub(crate) fn new(visitor_hasher: ahash::RandomState) -> Self {
        Self {
            entries: Vec::new(),
            live: RankBitmap::default(),
            by_token: IndexTable::default(),
            by_visitor: IndexTable::default(),
            checkins: DeadlineQueue::default(),
            head: 0,
            visitor_hasher,
        }
    }

    fn visitor_hash(&self, visitor: VisitorId) -> u64 {
        self.visitor_hasher.hash_one(visitor.0)
    }

    /// Visitors waiting.
    pub(crate) fn waiting(&self) -> usize {
        self.live.ones()
    }

    pub(crate) fn get(&self, index: u32) -> &Waiter {
        &self.entries[index as usize]
    }

    pub(crate) fn find_token(&self, token: u128) -> Option<u32> {
        let entries = &self.entries;
        let live = &self.live;
        self.by_token.find(token_hash(token), |i| {
            live.get(i as usize) && entries[i as usize].token == token
        })
    }

    pub(crate) fn find_visitor(&self, visitor: VisitorId) -> Option<u32> {
        let entries = &self.entries;
        let live = &self.live;
        self.by_visitor.find(self.visitor_hash(visitor), |i| {
            live.get(i as usize) && entries[i as usize].visitor == visitor
        })
    }

    /// Adds an entry at the back, waiting and indexed by token and visitor; the caller queues its
    /// check-in. Returns its index.
    fn append(&mut self, waiter: Waiter) -> u32 {
        let index = self.entries.len() as u32;
        self.entries.push(waiter);
        self.live.push(true);
        self.by_token.insert(token_hash(waiter.token), index);
        let h = self.visitor_hash(waiter.visitor);
        self.by_visitor.insert(h, index);
        index
    }

    /// Appends a visitor at the back. The caller has checked it is not in line.
    pub(crate) fn push(&mut self, waiter: Waiter) -> u32 {
        debug_assert!(self.find_visitor(waiter.visitor).is_none());
        let index = self.append(waiter);
        self.push_checkin(waiter.deadline_ns, index);
        index
    }

    /// Appends visitors in the given order, keeping the check-in queue in deadline order (their
    /// deadlines may be older than those already queued).
    pub(crate) fn push_all(&mut self, waiters: impl IntoIterator<Item = Waiter>) {
        let added: Vec<(u64, CheckinKey)> = waiters
            .into_iter()
            .map(|w| (w.deadline_ns, CheckinKey::new(self.append(w), w.token)))
            .collect();
        self.checkins.merge(added);
    }

    /// Records a check-in: the visitor now lapses at `deadline_ns`.
    pub(crate) fn check_in(&mut self, index: u32, deadline_ns: u64) {
        let w = &mut self.entries[index as usize];
        if w.deadline_ns == deadline_ns {
            return;
        }
        debug_assert!(deadline_ns > w.deadline_ns);
        w.deadline_ns = deadline_ns;
        self.push_checkin(deadline_ns, index);
    }

    /// Queues the check-in deadline of the entry at `index`; the stale records of earlier
    /// check-ins are skipped when reached and compacted away.
    fn push_checkin(&mut self, deadline_ns: u64, index: u32) {
        let key = CheckinKey::new(index, self.entries[index as usize].token);
        let (entries, live) = (&self.entries, &self.live);
        let waiting = self.waiting();
        self.checkins.push(deadline_ns, key, waiting, |d, k| {
            is_current(entries, live, d, k)
        });
    }

    /// 1 for the head of the line.
    pub(crate) fn position(&self, index: u32) -> u64 {
        debug_assert!(self.live.get(index as usize));
        self.live.rank(index as usize) as u64
    }

    /// The index of the visitor at the head of the line.
    pub(crate) fn head(&mut self) -> Option<u32> {
        let h = self.live.first_set_from(self.head)?;
        self.head = h;
        Some(h as u32)
    }

    /// The earliest check-in deadline among waiting visitors.
    pub(crate) fn next_lapse(&mut self) -> Option<u64> {
        let (entries, live) = (&self.entries, &self.live);
        self.checkins
            .front(|d, k| is_current(entries, live, d, k))
            .map(|(d, _)| d)
    }

    /// Removes the visitor whose check-in lapses first (after `next_lapse` returned `Some`).
    pub(crate) fn pop_lapsed(&mut self) -> Option<Waiter> {
        self.next_lapse()?;
        let (_, key) = self.checkins.pop()?;
        Some(self.remove(key.index()))
    }

    /// Takes a visitor out of the line (admitted, left or lapsed).
    pub(crate) fn remove(&mut self, index: u32) -> Waiter {
        let w = self.entries[index as usize];
        let was_live = self.live.clear(index as usize);
        debug_assert!(was_live, "removing a visitor who is not waiting");
        let removed_token = self.by_token.remove(token_hash(w.token), index);
        let h = self.visitor_hash(w.visitor);
        let removed_visitor = self.by_visitor.remove(h, index);
        debug_assert!(removed_token && removed_visitor);
        // Trailing entries of visitors who left can go at once.
        if index as usize + 1 == self.entries.len() {
            let mut n = self.entries.len();
            while n > 0 && !self.live.get(n - 1) {
                n -= 1;
            }
            self.entries.truncate(n);
            crate::shrink::vec(&mut self.entries);
            self.live.truncate(n);
            self.head = self.head.min(n);
        }
        if self.entries.len() - self.waiting() > self.waiting() + COMPACT_SLACK {
            self.compact();
        }
        w
    }

    /// Removes every waiting visitor, in line order.
    pub(crate) fn drain(&mut self) -> Vec<Waiter> {
        let out: Vec<Waiter> = (0..self.entries.len())
            .filter(|&i| self.live.get(i))
            .map(|i| self.entries[i])
            .collect();
        *self = Self::new(self.visitor_hasher.clone());
        out
    }

    /// Drops the entries of visitors who left and renumbers the rest, keeping their order.
    fn compact(&mut self) {
        let live = &self.live;
        let ranks = live.ranks();
        let new_index = |old: u32| ranks.before(old as usize) as u32;
        self.by_token.renumber(new_index);
        self.by_visitor.renumber(new_index);
        let entries = &self.entries;
        self.checkins.retain_map(|d, k| {
            is_current(entries, live, d, k).then(|| k.renumbered(new_index(k.index())))
        });
        let kept: Vec<Waiter> = (0..self.entries.len())
            .filter(|&i| live.get(i))
            .map(|i| self.entries[i])
            .collect();
        self.live.reset_all_set(kept.len());
        self.entries = kept;
        self.head = 0;
    }

    /// Waiting visitors in line order, with their indices.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Waiter)> + '_ {
        (0..self.entries.len())
            .filter(|&i| self.live.get(i))
            .map(|i| (i as u32, &self.entries[i]))
    }

    /// Heap bytes in use.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Waiter>()
            + self.live.heap_bytes()
            + self.by_token.heap_bytes()
            + self.by_visitor.heap_bytes()
            + self.checkins.heap_bytes()
    }

    /// Checks the line's internal consistency; `now_ns` is the time the room has advanced to.
    pub(crate) fn check(&self, now_ns: u64, what: &str) -> Result<(), String> {
        let waiting = self.waiting();
        if self.by_token.len() != waiting || self.by_visitor.len() != waiting {
            return Err(format!(
                "{what}: {waiting} waiting but indexes hold {} tokens and {} visitors",
                self.by_token.len(),
                self.by_visitor.len()
            ));
        }
        let counted = self.check_entries(now_ns, what)?;
        if counted as usize != waiting {
            return Err(format!(
                "{what}: counted {counted} waiting, bitmap says {waiting}"
            ));
        }
        self.check_structure(what)
    }

    /// Every waiting entry: its exact position, above the head, found by its token and visitor,
    /// one per visitor, not lapsed, with a current check-in record. Returns how many there are.
    fn check_entries(&self, now_ns: u64, what: &str) -> Result<u64, String> {
        let mut expected_position = 0u64;
        let mut seen_visitors = std::collections::HashSet::new();
        let current: std::collections::HashSet<(u64, CheckinKey)> = self.checkins.iter().collect();
        for (i, w) in self.iter() {
            expected_position += 1;
            let p = self.position(i);
            if p != expected_position {
                return Err(format!(
                    "{what}: entry {i} has position {p}, expected {expected_position}"
                ));
            }
            if (i as usize) < self.head {
                return Err(format!(
                    "{what}: waiting entry {i} below head {}",
                    self.head
                ));
            }
            if self.find_token(w.token) != Some(i) || self.find_visitor(w.visitor) != Some(i) {
                return Err(format!(
                    "{what}: entry {i} not found by its token or visitor"
                ));
            }
            if !seen_visitors.insert(w.visitor) {
                return Err(format!("{what}: {:?} waits twice", w.visitor));
            }
            if w.deadline_ns <= now_ns {
                return Err(format!(
                    "{what}: {:?} should have lapsed at {} (now {now_ns})",
                    w.visitor, w.deadline_ns
                ));
            }
            if !current.contains(&(w.deadline_ns, CheckinKey::new(i, w.token))) {
                return Err(format!("{what}: entry {i} has no current check-in record"));
            }
        }
        Ok(expected_position)
    }

    /// Indexes point only at waiting entries; check-ins are in order; entries and bits agree.
    fn check_structure(&self, what: &str) -> Result<(), String> {
        if self
            .by_token
            .indices()
            .chain(self.by_visitor.indices())
            .any(|i| !self.live.get(i as usize))
        {
            return Err(format!(
                "{what}: an index points at an entry that is not waiting"
            ));
        }
        if !self.checkins.is_ordered() {
            return Err(format!("{what}: check-in queue out of order"));
        }
        // Stale records are told apart from current ones (else compaction could not drop them):
        // each waiting visitor has exactly one record taken for current.
        let (entries, live) = (&self.entries, &self.live);
        let current = self
            .checkins
            .iter()
            .filter(|&(d, k)| is_current(entries, live, d, k))
            .count();
        if current != self.waiting() {
            return Err(format!(
                "{what}: {current} check-in records taken for current, for {} waiting",
                self.waiting()
            ));
        }
        if self.entries.len() != self.live.len() {
            return Err(format!(
                "{what}: {} entries but {} bits",
                self.entries.len(),
                self.live.len()
            ));
        }
        Ok(())
    }
}

/// Whether the check-in record `(deadline_ns, index)` is the current one of a waiting entry.
fn is_current(entries: &[Waiter], live: &RankBitmap, deadline_ns: u64, key: CheckinKey) -> bool {
    let i = key.index() as usize;
    live.get(i)
        && entries[i].deadline_ns == deadline_ns
        && key == CheckinKey::new(key.index(), entries[i].token)
}

/// A check-in record's entry: its index, and 32 bits of the visitor's token, so that a record
/// left behind by a visitor who is gone is not taken for the one now at the same index (which
/// would keep stale records alive when check-ins share a deadline, as under a stopped clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct CheckinKey(u64);

impl CheckinKey {
    fn new(index: u32, token: u128) -> Self {
        Self(u64::from(index) << 32 | u64::from(token as u32))
    }

    fn index(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The same visitor's key at a new index.
    fn renumbered(self, index: u32) -> Self {
        Self(u64::from(index) << 32 | (self.0 & 0xffff_ffff))
    }
}

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
//! check-in record of 16 bytes per check-in not yet reached, and a bit. Entries are numbered by a
//! *virtual index* that never changes while the visitor waits, so nothing that points at an entry
//! is ever renumbered (see [`super::slots`]). Entries of visitors who left stay in place until
//! their block is re-packed or, in front of the first visitor still waiting (where admissions and
//! most lapses leave them), dropped in steps of [`TRIM_STEP`]; positions are ranks, so they cost
//! nothing to skip. No call does more than one step of this.

use crate::deadline::DeadlineQueue;

use super::VisitorId;
use super::index::IndexTable;
use super::slots::{BLOCK, Slots};

/// Entries of visitors who left in front of the first one still waiting are dropped once there
/// are this many (whole blocks).
const TRIM_STEP: usize = 8 * BLOCK;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Waiter {
    pub(crate) token: u128,
    pub(crate) visitor: VisitorId,
    /// The time at which this visitor lapses unless it checks in again.
    pub(crate) deadline_ns: u64,
}

#[derive(Debug)]
pub(crate) struct Line {
    slots: Slots,
    by_token: IndexTable,
    by_visitor: IndexTable,
    /// `(deadline_ns, index)` in non-decreasing deadline order. An entry is current if the
    /// indexed waiter is live with that deadline; others are skipped when reached.
    checkins: DeadlineQueue<CheckinKey>,
    /// No live entry is stored below `head` (a position in `slots`, not a virtual index).
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
            slots: Slots::default(),
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
        self.slots.live.ones()
    }

    pub(crate) fn get(&self, index: u32) -> &Waiter {
        self.slots.get(index)
    }

    /// Whether the line can take no more entries (see [`super::slots::MAX_SPAN`]).
    pub(crate) fn is_span_full(&self) -> bool {
        self.slots.is_span_full()
    }

    pub(crate) fn find_token(&self, token: u128) -> Option<u32> {
        let slots = &self.slots;
        self.by_token.find(token_hash(token), |i| {
            slots.is_live(i) && slots.get(i).token == token
        })
    }

    pub(crate) fn find_visitor(&self, visitor: VisitorId) -> Option<u32> {
        let slots = &self.slots;
        self.by_visitor.find(self.visitor_hash(visitor), |i| {
            slots.is_live(i) && slots.get(i).visitor == visitor
        })
    }

    /// Adds an entry at the back, waiting and indexed by token and visitor; the caller queues its
    /// check-in. Returns its index.
    fn append(&mut self, waiter: Waiter) -> u32 {
        let index = self.slots.push(waiter);
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
        let w = self.slots.get_mut(index);
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
        let key = CheckinKey::new(index, self.slots.get(index).token);
        let slots = &self.slots;
        let waiting = slots.live.ones();
        self.checkins
            .push(deadline_ns, key, waiting, |d, k| is_current(slots, d, k));
    }

    /// 1 for the head of the line.
    pub(crate) fn position(&self, index: u32) -> u64 {
        debug_assert!(self.slots.is_live(index));
        self.slots.live.rank(self.slots.at(index)) as u64
    }

    /// The index of the visitor at the head of the line.
    pub(crate) fn head(&mut self) -> Option<u32> {
        let h = self.slots.live.first_set_from(self.head)?;
        self.head = h;
        Some(self.slots.virtual_of(h))
    }

    /// The earliest check-in deadline among waiting visitors.
    pub(crate) fn next_lapse(&mut self) -> Option<u64> {
        let slots = &self.slots;
        self.checkins
            .front(|d, k| is_current(slots, d, k))
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
        let at = self.slots.at(index);
        let w = self.slots.remove(index);
        let removed_token = self.by_token.remove(token_hash(w.token), index);
        let h = self.visitor_hash(w.visitor);
        let removed_visitor = self.by_visitor.remove(h, index);
        debug_assert!(removed_token && removed_visitor);
        if at + 1 == self.slots.len() {
            self.drop_trailing();
        }
        self.trim_front();
        w
    }

    /// Trailing entries of visitors who left can go at once.
    fn drop_trailing(&mut self) {
        let mut n = self.slots.len();
        while n > 0 && !self.slots.live.get(n - 1) {
            n -= 1;
        }
        self.slots.truncate(n);
        self.head = self.head.min(n);
    }

    /// Drops the entries in front of the first visitor still waiting, [`TRIM_STEP`] at a time.
    fn trim_front(&mut self) {
        let first = self
            .slots
            .live
            .first_set_from(self.head)
            .unwrap_or(self.slots.len());
        self.head = first;
        if first >= TRIM_STEP {
            let n = first - first % TRIM_STEP;
            self.slots.drop_front(n);
            self.head -= n;
        }
    }

    /// Removes every waiting visitor, in line order.
    pub(crate) fn drain(&mut self) -> Vec<Waiter> {
        let out: Vec<Waiter> = self.iter().map(|(_, w)| *w).collect();
        *self = Self::new(self.visitor_hasher.clone());
        out
    }

    /// Waiting visitors in line order, with their indices.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Waiter)> + '_ {
        self.slots.iter()
    }

    /// Heap bytes in use.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.heap_bytes()
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
            if self.slots.at(i) < self.head {
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
            .any(|i| !self.slots.is_live(i))
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
        let slots = &self.slots;
        let current = self
            .checkins
            .iter()
            .filter(|&(d, k)| is_current(slots, d, k))
            .count();
        if current != self.waiting() {
            return Err(format!(
                "{what}: {current} check-in records taken for current, for {} waiting",
                self.waiting()
            ));
        }
        self.slots.check().map_err(|e| format!("{what}: {e}"))?;
        if self
            .slots
            .live
            .first_set_from(0)
            .unwrap_or(self.slots.len())
            >= TRIM_STEP
        {
            return Err(format!(
                "{what}: {TRIM_STEP} or more departed entries kept in front of the line"
            ));
        }
        Ok(())
    }
}

/// Whether the check-in record `(deadline_ns, index)` is the current one of a waiting entry.
fn is_current(slots: &Slots, deadline_ns: u64, key: CheckinKey) -> bool {
    let v = key.index();
    slots.is_live(v) && {
        let w = slots.get(v);
        w.deadline_ns == deadline_ns && key == CheckinKey::new(v, w.token)
    }
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
}

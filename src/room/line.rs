//! The line of waiting visitors, in the order they will be admitted.
//!
//! Guarantees:
//! - Order is join order (or the drawn order of a pre-queue), and admission takes the head.
//! - Positions are exact: the waiting visitors' positions are `1..=waiting` at every instant,
//!   however many left from the middle; `position` is O(log n) (see [`super::rank`]).
//! - Lookups by token and by visitor are O(1) expected. A token carries the virtual index its
//!   entry got at the join in its low 32 bits (its *home index*), so a poll reads the entry
//!   there and compares the whole token: no hash table, one cache line. Only entries stored away
//!   from their home index (the pre-queue's visitors after the opening draw) are in a token
//!   table (see [`super::index`]); visitors are always found through one.
//! - Check-in lapses come out in deadline order. A check-in is one atomic store and may run under
//!   the room's shared lock, beside other check-ins; the replay moves a visitor's check-in record
//!   at most once per check-in timeout (see [`super::checkins`]).
//!
//! Memory: one 32-byte entry per visitor, one index cell of 8 bytes at 4/5 load or less (two
//! for a visitor away from its home index), one check-in record of 16 bytes, and a bit. Entries
//! are numbered by a *virtual index* that never changes while the visitor waits, so nothing that
//! points at an entry is ever renumbered (see [`super::blocks`]). Entries of visitors who left
//! stay in place until their block is re-packed or, in front of the first visitor still waiting
//! (where admissions and most lapses leave them), dropped in steps of [`TRIM_STEP`]; positions
//! are ranks, so they cost nothing to skip.
//! No call does more than one step of this.

use super::blocks::{BLOCK, EntryBlocks};
use super::checkins::CheckinQueue;
use super::index::{IndexTable, token_hash};
use super::types::VisitorId;
use super::waiter::Waiter;

/// Entries of visitors who left in front of the first one still waiting are dropped once there
/// are this many (whole blocks).
const TRIM_STEP: usize = 8 * BLOCK;

/// How many check-in records ahead of the one being handled the replay prefetches the entry of.
const PREFETCH_AHEAD: usize = 8;

#[derive(Debug)]
pub(crate) struct Line {
    entries: EntryBlocks,
    by_token: IndexTable,
    by_visitor: IndexTable,
    /// One record per waiting visitor, at or before its deadline; records of visitors who left
    /// are skipped when reached.
    checkins: CheckinQueue<CheckinKey>,
    /// No live entry is stored below `head` (a position in `entries`, not a virtual index).
    head: usize,
    visitor_hasher: ahash::RandomState,
}

impl Line {
    pub(crate) fn new(visitor_hasher: ahash::RandomState) -> Self {
        Self {
            entries: EntryBlocks::default(),
            by_token: IndexTable::default(),
            by_visitor: IndexTable::default(),
            checkins: CheckinQueue::default(),
            head: 0,
            visitor_hasher,
        }
    }

    fn visitor_hash(&self, visitor: VisitorId) -> u64 {
        self.visitor_hasher.hash_one(visitor.0)
    }

    /// Visitors waiting.
    pub(crate) fn waiting(&self) -> usize {
        self.entries.live.ones()
    }

    pub(crate) fn get(&self, index: u32) -> &Waiter {
        self.entries.get(index)
    }

    /// Indices spanned from the first stored entry to the back, waiting or not.
    pub(crate) fn span(&self) -> usize {
        self.entries.len()
    }

    /// Whether the line can take no more entries (see [`super::blocks::MAX_SPAN`]).
    pub(crate) fn is_span_full(&self) -> bool {
        self.entries.is_span_full()
    }

    /// The index at which an entry of this token is looked for first: the index the line had
    /// free when the token was drawn (see [`Self::next_index`]).
    #[inline]
    pub(crate) fn home_index(token: u128) -> u32 {
        token as u32
    }

    /// The virtual index the next entry appended gets: a new token carries it in its low 32 bits,
    /// so that a poll finds the entry without a hash lookup (one cache line for the entry).
    pub(crate) fn next_index(&self) -> u32 {
        self.entries.virtual_of(self.entries.len())
    }

    pub(crate) fn find_token(&self, token: u128) -> Option<u32> {
        let entries = &self.entries;
        let home = Self::home_index(token);
        if entries.is_live(home) && entries.get(home).token == token {
            return Some(home);
        }
        if self.by_token.len() == 0 {
            return None;
        }
        self.by_token.find(token_hash(token), |i| {
            entries.is_live(i) && entries.get(i).token == token
        })
    }

    pub(crate) fn find_visitor(&self, visitor: VisitorId) -> Option<u32> {
        let entries = &self.entries;
        self.by_visitor.find(self.visitor_hash(visitor), |i| {
            entries.is_live(i) && entries.get(i).visitor == visitor
        })
    }

    /// Asks the CPU to bring the visitor index's cell for `visitor` into cache (see
    /// [`IndexTable::prefetch`]).
    pub(crate) fn prefetch_visitor(&self, visitor: VisitorId) {
        self.by_visitor.prefetch(self.visitor_hash(visitor));
    }

    /// Adds an entry at the back, waiting and indexed by token and visitor; the caller queues its
    /// check-in. Returns its index.
    fn append(&mut self, waiter: Waiter) -> u32 {
        let (token, visitor) = (waiter.token, waiter.visitor);
        let index = self.entries.push(waiter);
        if Self::home_index(token) != index {
            // Away from its home (the pre-queue's visitors after the draw): found by the table.
            self.by_token.insert(token_hash(token), index);
        }
        let h = self.visitor_hash(visitor);
        self.by_visitor.insert(h, index);
        index
    }

    /// Appends a visitor at the back. The caller has checked it is not in line.
    pub(crate) fn push(&mut self, waiter: Waiter) -> u32 {
        debug_assert!(self.find_visitor(waiter.visitor).is_none());
        let (deadline_ns, token) = (waiter.deadline_ns.get(), waiter.token);
        let index = self.append(waiter);
        let entries = &self.entries;
        let key = CheckinKey::new(index, token);
        self.checkins
            .push(deadline_ns, key, entries.live.ones(), |d, k| {
                is_current(entries, d, k)
            });
        index
    }

    /// Appends visitors in the given order, keeping the check-in queue in deadline order (their
    /// deadlines may be older than those already queued).
    pub(crate) fn push_all(&mut self, waiters: impl IntoIterator<Item = Waiter>) {
        let added: Vec<(u64, CheckinKey)> = waiters
            .into_iter()
            .map(|w| {
                let (d, token) = (w.deadline_ns.get(), w.token);
                (d, CheckinKey::new(self.append(w), token))
            })
            .collect();
        self.checkins.merge(added);
    }

    /// Records a check-in: the visitor now lapses at `deadline_ns` (or later, if another
    /// check-in gave it a later deadline). Needs only shared access: the record in the check-in
    /// queue stays where it is, and the replay moves it when it comes up.
    #[inline]
    pub(crate) fn check_in(&self, index: u32, deadline_ns: u64) {
        self.entries.get(index).deadline_ns.raise(deadline_ns);
    }

    /// 1 for the head of the line.
    pub(crate) fn position(&self, index: u32) -> u64 {
        debug_assert!(self.entries.is_live(index));
        self.entries.live.rank(self.entries.at(index)) as u64
    }

    /// The index of the visitor at the head of the line.
    pub(crate) fn head(&mut self) -> Option<u32> {
        let h = self.entries.live.first_set_from(self.head)?;
        self.head = h;
        Some(self.entries.virtual_of(h))
    }

    /// When the earliest check-in record falls due: at or before the next lapse (a visitor
    /// may have checked in since its record was made).
    pub(crate) fn next_lapse(&mut self) -> Option<u64> {
        let entries = &self.entries;
        self.checkins
            .front(|d, k| is_current(entries, d, k))
            .map(|(d, _)| d)
    }

    /// Acts on the earliest check-in record (once `next_lapse` has fallen due): removes its
    /// visitor if it has not checked in since, else moves the record to the visitor's current
    /// deadline and returns `None`.
    pub(crate) fn pop_lapsed(&mut self) -> Option<Waiter> {
        // The records that come up next are known: fetch their entries while this one is
        // handled (a replay handles them one after another, each a cache miss otherwise).
        let (joined, moved) = self.checkins.ahead(PREFETCH_AHEAD);
        for key in [joined, moved].into_iter().flatten() {
            self.entries.prefetch(key.index());
        }
        let entries = &self.entries;
        let (d, key) = self.checkins.pop_front(|d, k| is_current(entries, d, k))?;
        let current = entries.get(key.index()).deadline_ns.get();
        debug_assert!(
            current >= d,
            "a record is never later than its visitor's deadline"
        );
        if current > d {
            let live = entries.live.ones();
            self.checkins
                .requeue(current, key, live, |d, k| is_current(entries, d, k));
            return None;
        }
        Some(self.remove(key.index()))
    }

    /// Takes a visitor out of the line (admitted, left or lapsed).
    pub(crate) fn remove(&mut self, index: u32) -> Waiter {
        let at = self.entries.at(index);
        let w = self.entries.remove(index);
        let removed_token =
            Self::home_index(w.token) == index || self.by_token.remove(token_hash(w.token), index);
        let h = self.visitor_hash(w.visitor);
        let removed_visitor = self.by_visitor.remove(h, index);
        debug_assert!(removed_token && removed_visitor);
        if at + 1 == self.entries.len() {
            self.drop_trailing();
        }
        self.trim_front();
        w
    }

    /// Trailing entries of visitors who left can go at once.
    fn drop_trailing(&mut self) {
        let mut n = self.entries.len();
        while n > 0 && !self.entries.live.get(n - 1) {
            n -= 1;
        }
        self.entries.truncate(n);
        self.head = self.head.min(n);
    }

    /// Drops the entries in front of the first visitor still waiting, [`TRIM_STEP`] at a time.
    fn trim_front(&mut self) {
        let first = self
            .entries
            .live
            .first_set_from(self.head)
            .unwrap_or(self.entries.len());
        self.head = first;
        if first >= TRIM_STEP {
            let n = first - first % TRIM_STEP;
            self.entries.drop_front(n);
            self.head -= n;
        }
    }

    /// Removes every waiting visitor, in line order.
    pub(crate) fn drain(&mut self) -> Vec<Waiter> {
        let out: Vec<Waiter> = self.iter().map(|(_, w)| w.clone()).collect();
        *self = Self::new(self.visitor_hasher.clone());
        out
    }

    /// Waiting visitors in line order, with their indices.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Waiter)> + '_ {
        self.entries.iter()
    }

    /// Heap bytes in use.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.heap_bytes()
            + self.by_token.heap_bytes()
            + self.by_visitor.heap_bytes()
            + self.checkins.heap_bytes()
    }

    /// Checks the line's internal consistency; `now_ns` is the time the room has advanced to.
    pub(crate) fn check(&self, now_ns: u64, what: &str) -> Result<(), String> {
        let waiting = self.waiting();
        let away = self
            .iter()
            .filter(|&(i, w)| Self::home_index(w.token) != i)
            .count();
        if self.by_token.len() != away || self.by_visitor.len() != waiting {
            return Err(format!(
                "{what}: {waiting} waiting ({away} away from their token's home index) but \
                 indexes hold {} tokens and {} visitors",
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
        let records: std::collections::HashMap<CheckinKey, u64> =
            self.checkins.iter().map(|(d, k)| (k, d)).collect();
        for (i, w) in self.iter() {
            expected_position += 1;
            let p = self.position(i);
            if p != expected_position {
                return Err(format!(
                    "{what}: entry {i} has position {p}, expected {expected_position}"
                ));
            }
            if self.entries.at(i) < self.head {
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
            let deadline_ns = w.deadline_ns.get();
            if deadline_ns <= now_ns {
                return Err(format!(
                    "{what}: {:?} should have lapsed at {deadline_ns} (now {now_ns})",
                    w.visitor
                ));
            }
            match records.get(&CheckinKey::new(i, w.token)) {
                None => return Err(format!("{what}: entry {i} has no check-in record")),
                Some(&d) if d > deadline_ns => {
                    return Err(format!(
                        "{what}: entry {i}'s check-in record ({d}) is past its deadline \
                         ({deadline_ns})"
                    ));
                }
                Some(_) => {}
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
            .any(|i| !self.entries.is_live(i))
        {
            return Err(format!(
                "{what}: an index points at an entry that is not waiting"
            ));
        }
        if !self.checkins.is_ordered() {
            return Err(format!("{what}: check-in queue out of order"));
        }
        // Records of visitors who left are told apart from current ones (else compaction could
        // not drop them): each waiting visitor has exactly one record taken for current.
        let entries = &self.entries;
        let current = self
            .checkins
            .iter()
            .filter(|&(d, k)| is_current(entries, d, k))
            .count();
        if current != self.waiting() {
            return Err(format!(
                "{what}: {current} check-in records taken for current, for {} waiting",
                self.waiting()
            ));
        }
        self.entries.check().map_err(|e| format!("{what}: {e}"))?;
        if self
            .entries
            .live
            .first_set_from(0)
            .unwrap_or(self.entries.len())
            >= TRIM_STEP
        {
            return Err(format!(
                "{what}: {TRIM_STEP} or more departed entries kept in front of the line"
            ));
        }
        Ok(())
    }
}

/// Whether the check-in record `(_, key)` is the one of a waiting entry (each has exactly one).
fn is_current(entries: &EntryBlocks, _deadline_ns: u64, key: CheckinKey) -> bool {
    let v = key.index();
    entries.is_live(v) && key == CheckinKey::new(v, entries.get(v).token)
}

/// A check-in record's entry: its index, and 32 bits of the visitor's token, so that a record
/// left behind by a visitor who is gone is not taken for the one now at the same index (which
/// would keep stale records alive when check-ins share a deadline, as under a stopped clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct CheckinKey(u64);

impl CheckinKey {
    fn new(index: u32, token: u128) -> Self {
        // Bits 32..64 of the token: its low 32 are often the index itself (its home index).
        Self(u64::from(index) << 32 | u64::from((token >> 32) as u32))
    }

    fn index(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

//! Admitted visitors (passes) and the memory of recently lapsed tokens.
//!
//! Guarantees: one pass per visitor; passes come out of [`Passes::pop_expired`] in the order they
//! lapse, in O(1) amortized: at `pass_ttl` after admission, or, under a claim timeout, at
//! `claim_timeout` after admission if still unclaimed. Both are one duration for the room added
//! to admission times that never decrease, so each has a FIFO [`DeadlineQueue`]; a claim makes
//! the pass's claim record stale.

use std::hash::BuildHasherDefault;

use crate::deadline::DeadlineQueue;
use crate::sharded::ShardedMap;
use crate::token::TokenHasher;

use super::index::{IndexTable, token_hash};
use super::types::VisitorId;

/// Passes by token: sharded, so that growing it never rehashes every pass in one call.
type PassMap = ShardedMap<u128, PassRec, BuildHasherDefault<TokenHasher>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PassRec {
    pub(crate) visitor: VisitorId,
    pub(crate) admitted_ns: u64,
    /// `admitted_ns + pass_ttl`.
    pub(crate) expires_ns: u64,
    /// When the pass lapses unless claimed first; `u64::MAX` once claimed, or with no claim
    /// timeout.
    pub(crate) claim_by_ns: u64,
}

impl PassRec {
    /// When the pass lapses if nothing else happens.
    pub(crate) fn lapses_ns(&self) -> u64 {
        self.expires_ns.min(self.claim_by_ns)
    }
}

#[derive(Debug)]
pub(crate) struct Passes {
    by_token: PassMap,
    by_visitor: ShardedMap<VisitorId, u128, ahash::RandomState>,
    /// Pass tokens by expiry, in admission order.
    expiry: DeadlineQueue<u128>,
    /// Unclaimed pass tokens by claim deadline, in admission order.
    claims: DeadlineQueue<u128>,
}

impl Passes {
    pub(crate) fn new() -> Self {
        Self {
            by_token: ShardedMap::with_hasher(BuildHasherDefault::default()),
            by_visitor: ShardedMap::with_hasher(ahash::RandomState::new()),
            expiry: DeadlineQueue::default(),
            claims: DeadlineQueue::default(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_token.len()
    }

    pub(crate) fn get(&self, token: u128) -> Option<PassRec> {
        self.by_token.get(&token).copied()
    }

    pub(crate) fn find_visitor(&self, visitor: VisitorId) -> Option<(u128, PassRec)> {
        let &token = self.by_visitor.get(&visitor)?;
        let pass = self.by_token.get(&token).copied();
        debug_assert!(pass.is_some(), "pass index by visitor names a missing pass");
        Some((token, pass?))
    }

    pub(crate) fn insert(&mut self, token: u128, pass: PassRec) {
        let live = &self.by_token;
        self.expiry
            .push(pass.expires_ns, token, live.len(), |e, t| {
                is_live(live, e, t)
            });
        if pass.claim_by_ns != u64::MAX {
            self.claims
                .push(pass.claim_by_ns, token, live.len(), |c, t| {
                    is_unclaimed(live, c, t)
                });
        }
        let previous = self.by_visitor.insert(pass.visitor, token);
        debug_assert!(previous.is_none(), "two passes for {:?}", pass.visitor);
        self.by_token.insert(token, pass);
    }

    pub(crate) fn remove(&mut self, token: u128) -> Option<PassRec> {
        let pass = self.by_token.remove(&token)?;
        self.by_visitor.remove(&pass.visitor);
        Some(pass)
    }

    /// Marks the pass claimed: it now lapses at its expiry. `None` if there is no such pass.
    pub(crate) fn claim(&mut self, token: u128) -> Option<PassRec> {
        let pass = self.by_token.get_mut(&token)?;
        pass.claim_by_ns = u64::MAX;
        Some(*pass)
    }

    /// The earliest time a live pass lapses (expires, or reaches its claim deadline unclaimed).
    pub(crate) fn next_expiry(&mut self) -> Option<u64> {
        let live = &self.by_token;
        let expiry = self
            .expiry
            .front(|e, t| is_live(live, e, t))
            .map(|(e, _)| e);
        let claim = self
            .claims
            .front(|c, t| is_unclaimed(live, c, t))
            .map(|(c, _)| c);
        match (expiry, claim) {
            (Some(e), Some(c)) => Some(e.min(c)),
            (e, c) => e.or(c),
        }
    }

    /// Removes the pass that lapses first (after `next_expiry` returned `Some`).
    pub(crate) fn pop_expired(&mut self) -> Option<(u128, PassRec)> {
        let at = self.next_expiry()?;
        // `next_expiry` left a live record at the front of each queue (or none).
        let claim_first = self.claims.peek().is_some_and(|(c, _)| c == at);
        let (_, token) = if claim_first {
            self.claims.pop()?
        } else {
            self.expiry.pop()?
        };
        self.remove(token).map(|p| (token, p))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (u128, PassRec)> + '_ {
        self.by_token.iter().map(|(&t, &p)| (t, p))
    }

    pub(crate) fn check(&self, now_ns: u64) -> Result<(), String> {
        if self.by_visitor.len() != self.by_token.len() {
            return Err(format!(
                "{} passes by token, {} by visitor",
                self.by_token.len(),
                self.by_visitor.len()
            ));
        }
        let queued: std::collections::HashSet<(u64, u128)> = self.expiry.iter().collect();
        let claims: std::collections::HashSet<(u64, u128)> = self.claims.iter().collect();
        for (&t, p) in self.by_token.iter() {
            if self.by_visitor.get(&p.visitor) != Some(&t) {
                return Err(format!("pass of {:?} not indexed by visitor", p.visitor));
            }
            if p.lapses_ns() <= now_ns {
                return Err(format!("pass of {:?} should have lapsed", p.visitor));
            }
            if p.claim_by_ns != u64::MAX && !claims.contains(&(p.claim_by_ns, t)) {
                return Err(format!(
                    "unclaimed pass of {:?} missing from the claim queue",
                    p.visitor
                ));
            }
            if !queued.contains(&(p.expires_ns, t)) {
                return Err(format!(
                    "pass of {:?} missing from the expiry queue",
                    p.visitor
                ));
            }
        }
        if !self.expiry.is_ordered() || !self.claims.is_ordered() {
            return Err("pass expiry or claim queue out of order".into());
        }
        Ok(())
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.by_token.capacity() * (16 + std::mem::size_of::<PassRec>() + 1)
            + self.by_visitor.capacity() * (8 + 16 + 1)
            + self.expiry.heap_bytes()
            + self.claims.heap_bytes()
    }
}

/// Whether the expiry entry `(expires_ns, token)` belongs to a live pass.
fn is_live(passes: &PassMap, expires_ns: u64, token: u128) -> bool {
    passes
        .get(&token)
        .is_some_and(|p| p.expires_ns == expires_ns)
}

/// Whether the claim entry `(claim_by_ns, token)` belongs to a live, unclaimed pass.
fn is_unclaimed(passes: &PassMap, claim_by_ns: u64, token: u128) -> bool {
    passes
        .get(&token)
        .is_some_and(|p| p.claim_by_ns == claim_by_ns)
}

/// The most recently lapsed tokens (tickets whose check-in lapsed, passes that ran out), so a
/// late poll can say "expired" rather than "unknown". Finished tokens are not kept: their answer,
/// `UnknownToken`, is the same remembered or not. Bounded: the oldest is forgotten first.
///
/// A ring of tokens and a tag index into it. A hash map under constant FIFO churn fills with
/// tombstones and its probes grow long; the index deletes by backward shift instead, so every
/// lookup stays short however long the room runs.
#[derive(Debug)]
pub(crate) struct LapsedTokens {
    ring: Vec<u128>,
    /// Where the next record goes once the ring is full (the oldest entry).
    next: usize,
    index: IndexTable,
    capacity: usize,
}

impl LapsedTokens {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            ring: Vec::new(),
            next: 0,
            index: IndexTable::default(),
            capacity: capacity.min(u32::MAX as usize),
        }
    }

    pub(crate) fn record(&mut self, token: u128) {
        if self.capacity == 0 {
            return;
        }
        let slot = if self.ring.len() < self.capacity {
            self.ring.push(token);
            self.ring.len() - 1
        } else {
            let slot = self.next;
            self.index.remove(token_hash(self.ring[slot]), slot as u32);
            self.ring[slot] = token;
            self.next = (slot + 1) % self.capacity;
            slot
        };
        self.index.insert(token_hash(token), slot as u32);
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.ring.capacity() * std::mem::size_of::<u128>() + self.index.heap_bytes()
    }

    pub(crate) fn contains(&self, token: u128) -> bool {
        let ring = &self.ring;
        self.index
            .find(token_hash(token), |i| ring[i as usize] == token)
            .is_some()
    }
}

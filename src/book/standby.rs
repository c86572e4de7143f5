//! The standby line: first-come-first-served requests for one unit anywhere in a set of
//! branches and a slot range, and the offers made to them.
//!
//! Guarantee: a unit that becomes free in a slot some waiting request covers is held for the
//! earliest such request in the same step that frees it, under the line's lock, so no
//! reservation can take it in between (see ARCHITECTURE.md, "Standby"). The unit stays counted
//! as held in its slot word throughout: it is never free, so the plain path (one CAS) needs no
//! change and pays one relaxed load (`has_waiting`) when it returns a unit.
//!
//! An offer is a hold whose record does not exist yet: the freeing call holds the lock of the
//! *releasing* applicant's shard, not of the applicant the offer is for, and taking a second
//! shard lock there could deadlock. So the offer waits here, with its expiry, until the
//! applicant's own shard claims it (on that applicant's next call: `standby_offer`, `reserve`,
//! `standby`, `leave_standby`), which turns it into an ordinary hold record. An offer that
//! lapses unclaimed is passed on by the next call that sweeps (every reading, every reservation
//! that finds a slot full, `sweep`): its unit goes to the next covering request, or back to the
//! slot. Lock order: a shard's ledger, then this line, then a chunk's quota lock; the line never
//! takes a shard lock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::{Deref, DerefMut};

use crate::sync::{AtomicU64, AtomicUsize, Mutex, MutexGuard, Ordering};

use super::chunk::SlotRef;
use super::types::{ApplicantId, BranchId, SlotIndex};

/// A place in the standby line, as [`SlotBook::standby`](crate::SlotBook::standby) gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct StandbyTicket {
    /// Whose request it is.
    pub applicant: ApplicantId,
    /// The request's number in the book's first-come order: a request with a lower number
    /// joined earlier and is served first wherever both wait for the same slot.
    pub number: u64,
    /// Requests waiting when this one joined, itself included.
    pub waiting: usize,
}

/// A waiting standby request as the book keeps it (see
/// [`SlotBook::standby_request`](crate::SlotBook::standby_request)): what it covers, so a
/// portal can show an applicant what it waits for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct StandbyRequest {
    /// Whose request it is.
    pub applicant: ApplicantId,
    /// Its number in the first-come order (the one its [`StandbyTicket`] carries).
    pub number: u64,
    /// The acceptable branches, without repeats, in the order given.
    pub branches: Vec<BranchId>,
    /// The first slot it covers.
    pub first: SlotIndex,
    /// The last slot it covers (inclusive).
    pub last: SlotIndex,
}

/// A unit held for a request, not yet claimed by its applicant's shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Offer {
    pub(crate) branch: BranchId,
    pub(crate) slot: SlotIndex,
    pub(crate) at: SlotRef,
    pub(crate) expires_ns: u64,
}

/// A waiting request.
#[derive(Clone, Debug)]
struct Request {
    applicant: ApplicantId,
    branches: Box<[BranchId]>,
    first: SlotIndex,
    last: SlotIndex,
    /// Set once `standby` has checked, after every freeing call can see the request, that
    /// no unit it covers is free (see `SlotBook::standby`).
    settled: bool,
}

/// Where an applicant stands in the line.
#[derive(Clone, Copy, Debug)]
enum Place {
    Waiting(u64),
    Offered(Offer),
}

/// What [`Line::take_offer`] found for an applicant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Its request waits.
    Waiting,
    /// Its request was given this unit, now the caller's to record.
    Given(Offer),
    /// It has no request and no offer (never joined, left, or its offer lapsed).
    Gone,
}

/// The line itself, under [`Standby`]'s lock.
#[derive(Debug, Default)]
pub(crate) struct Line {
    next_number: u64,
    /// Waiting requests by number: the first-come order.
    requests: BTreeMap<u64, Request>,
    /// Per branch, the numbers of the waiting requests covering it, with their ranges.
    branches: HashMap<BranchId, BTreeMap<u64, (SlotIndex, SlotIndex)>>,
    places: HashMap<ApplicantId, Place>,
    /// Unclaimed offers by expiry.
    offers: BTreeSet<(u64, ApplicantId)>,
}

impl Line {
    /// Requests waiting.
    pub(crate) fn waiting(&self) -> usize {
        self.requests.len()
    }

    /// The applicant's waiting request: its number, if it waits.
    pub(crate) fn number_of(&self, applicant: ApplicantId) -> Option<u64> {
        match self.places.get(&applicant)? {
            Place::Waiting(n) => Some(*n),
            Place::Offered(_) => None,
        }
    }

    /// The applicant's waiting request, if it waits.
    pub(crate) fn request_of(&self, applicant: ApplicantId) -> Option<StandbyRequest> {
        let number = self.number_of(applicant)?;
        let r = self.requests.get(&number)?;
        Some(StandbyRequest {
            applicant,
            number,
            branches: r.branches.to_vec(),
            first: r.first,
            last: r.last,
        })
    }

    /// Adds a request at the end of the line (the caller checked every limit, and that the
    /// applicant has no place yet). Returns its number.
    pub(crate) fn join(
        &mut self,
        applicant: ApplicantId,
        branches: &[BranchId],
        first: SlotIndex,
        last: SlotIndex,
    ) -> u64 {
        debug_assert!(!self.places.contains_key(&applicant));
        let number = self.next_number;
        self.next_number += 1;
        for &b in branches {
            self.branches
                .entry(b)
                .or_default()
                .insert(number, (first, last));
        }
        self.requests.insert(
            number,
            Request {
                applicant,
                branches: branches.into(),
                first,
                last,
                settled: false,
            },
        );
        self.places.insert(applicant, Place::Waiting(number));
        number
    }

    /// The numbers of the (at most `n`) earliest waiting requests covering `slot` at `branch`.
    /// O(requests of the branch ahead of them).
    pub(crate) fn earliest(&self, branch: BranchId, slot: SlotIndex, n: usize) -> Vec<u64> {
        let Some(line) = self.branches.get(&branch) else {
            return Vec::new();
        };
        line.iter()
            .filter(|(_, (first, last))| (*first..=*last).contains(&slot))
            .map(|(&number, _)| number)
            .take(n)
            .collect()
    }

    /// Ends waiting request `number` with an offer of a unit of `slot` at `branch`, which the
    /// caller has just kept held for it.
    pub(crate) fn offer(
        &mut self,
        number: u64,
        branch: BranchId,
        slot: SlotIndex,
        at: SlotRef,
        expires_ns: u64,
    ) {
        let Some(request) = self.remove_request(number) else {
            debug_assert!(false, "an offer to request {number}, which does not wait");
            return;
        };
        let offer = Offer {
            branch,
            slot,
            at,
            expires_ns,
        };
        self.places.insert(request.applicant, Place::Offered(offer));
        self.offers.insert((expires_ns, request.applicant));
    }

    fn remove_request(&mut self, number: u64) -> Option<Request> {
        let request = self.requests.remove(&number)?;
        for b in request.branches.iter() {
            if let Some(line) = self.branches.get_mut(b) {
                line.remove(&number);
                if line.is_empty() {
                    self.branches.remove(b);
                }
            }
        }
        Some(request)
    }

    /// Marks request `number` as checked by `standby` (if it still waits).
    pub(crate) fn settle(&mut self, number: u64) {
        if let Some(r) = self.requests.get_mut(&number) {
            r.settled = true;
        }
    }

    /// Takes the applicant's waiting request out of the line; false if it had none.
    pub(crate) fn withdraw(&mut self, applicant: ApplicantId) -> bool {
        let Some(number) = self.number_of(applicant) else {
            return false;
        };
        self.remove_request(number);
        self.places.remove(&applicant);
        true
    }

    /// The applicant's standing; an offer alive at `now_ns` is removed and handed to the
    /// caller, who records it as a hold under the applicant's shard lock.
    pub(crate) fn take_offer(&mut self, applicant: ApplicantId, now_ns: u64) -> Status {
        match self.places.get(&applicant) {
            None => Status::Gone,
            Some(Place::Waiting(_)) => Status::Waiting,
            Some(&Place::Offered(offer)) if offer.expires_ns > now_ns => {
                self.places.remove(&applicant);
                self.offers.remove(&(offer.expires_ns, applicant));
                Status::Given(offer)
            }
            // Lapsed: passed on by the sweep that comes first (`SlotBook::pass_on_lapsed`).
            Some(Place::Offered(_)) => Status::Waiting,
        }
    }

    /// Takes out the earliest unclaimed offer that lapsed at or before `now_ns`.
    pub(crate) fn pop_lapsed(&mut self, now_ns: u64) -> Option<Offer> {
        let &(expires_ns, applicant) = self.offers.first()?;
        if expires_ns > now_ns {
            return None;
        }
        self.offers.pop_first();
        match self.places.remove(&applicant) {
            Some(Place::Offered(offer)) => Some(offer),
            other => {
                debug_assert!(false, "offer index names {applicant} at {other:?}");
                None
            }
        }
    }

    /// Unclaimed offers, with their applicants (for the book's invariant check).
    pub(crate) fn offers(&self) -> impl Iterator<Item = (ApplicantId, Offer)> + '_ {
        self.places.iter().filter_map(|(&a, p)| match p {
            Place::Offered(o) => Some((a, *o)),
            Place::Waiting(_) => None,
        })
    }

    /// Waiting requests that `standby` has settled, in line order: applicant, branches,
    /// range (for the invariant check).
    pub(crate) fn settled_requests(
        &self,
    ) -> impl Iterator<Item = (ApplicantId, &[BranchId], SlotIndex, SlotIndex)> + '_ {
        self.requests
            .values()
            .filter(|r| r.settled)
            .map(|r| (r.applicant, &*r.branches, r.first, r.last))
    }

    /// Whether `applicant` has a place (a waiting request or an unclaimed offer).
    pub(crate) fn has_place(&self, applicant: ApplicantId) -> bool {
        self.places.contains_key(&applicant)
    }

    /// Whether the indexes agree with each other (for the invariant check).
    pub(crate) fn check(&self) -> Result<(), String> {
        let indexed: usize = self.branches.values().map(BTreeMap::len).sum();
        let expected: usize = self.requests.values().map(|r| r.branches.len()).sum();
        if indexed != expected {
            return Err(format!(
                "{indexed} branch entries for {expected} in the requests"
            ));
        }
        let waiting = self
            .places
            .values()
            .filter(|p| matches!(p, Place::Waiting(_)))
            .count();
        if waiting != self.requests.len() || self.places.len() != waiting + self.offers.len() {
            return Err(format!(
                "{} places, {waiting} waiting, {} requests, {} offers",
                self.places.len(),
                self.requests.len(),
                self.offers.len()
            ));
        }
        for (n, r) in &self.requests {
            if !matches!(self.places.get(&r.applicant), Some(Place::Waiting(m)) if m == n) {
                return Err(format!("request {n} of {} has no place", r.applicant));
            }
        }
        Ok(())
    }

    fn front_ns(&self) -> u64 {
        self.offers.first().map_or(u64::MAX, |&(e, _)| e)
    }
}

/// The line and the two numbers read without its lock.
pub(crate) struct Standby {
    /// Requests waiting, as of the last unlock.
    waiting: AtomicUsize,
    /// Expiry of the earliest unclaimed offer (`u64::MAX`: none), as of the last unlock.
    front_ns: AtomicU64,
    line: Mutex<Line>,
    /// The most requests waiting at once.
    pub(crate) max_requests: usize,
    /// The book's hold lifetime: an offer lapses this long after the unit was freed.
    pub(crate) hold_ttl_ns: u64,
}

impl Standby {
    pub(crate) fn new(max_requests: usize, hold_ttl_ns: u64) -> Self {
        Self {
            hold_ttl_ns,
            waiting: AtomicUsize::new(0),
            front_ns: AtomicU64::new(u64::MAX),
            line: Mutex::new(Line::default()),
            max_requests,
        }
    }

    /// Whether any request waits. Read under a shard lock or a capacity stripe by every call
    /// that frees a unit; `standby` makes a new request visible to those calls by taking each
    /// of those locks once after it joined (see `SlotBook::standby`), so a relaxed load is
    /// enough.
    #[inline]
    pub(crate) fn has_waiting(&self) -> bool {
        // Ordering: Relaxed: the locks named above order it (see `SlotBook::standby`).
        self.waiting.load(Ordering::Relaxed) != 0
    }

    /// Whether an unclaimed offer may have lapsed by `now_ns`.
    #[inline]
    pub(crate) fn is_due(&self, now_ns: u64) -> bool {
        // Ordering: Acquire, paired with the Release of `LineGuard::drop`: a call that sees
        // the front also sees the offer behind it when it takes the lock.
        self.front_ns.load(Ordering::Acquire) <= now_ns
    }

    /// When an offer made at `now_ns` lapses.
    pub(crate) fn expiry(&self, now_ns: u64) -> u64 {
        now_ns.saturating_add(self.hold_ttl_ns)
    }

    /// Gives a unit being returned to `slot` at `branch` to the earliest waiting request that
    /// covers it, if there is one and `keep` (the slot word's CAS) keeps the unit held for it.
    /// Returns the locked line either way when requests wait (the caller returns the unit
    /// under it otherwise, so that a capacity raise waiting for the line counts it), and
    /// whether the unit was given.
    pub(crate) fn give_freed(
        &self,
        branch: BranchId,
        slot: SlotIndex,
        at: SlotRef,
        now_ns: u64,
        keep: impl FnOnce() -> bool,
    ) -> (Option<LineGuard<'_>>, bool) {
        if !self.has_waiting() {
            return (None, false);
        }
        let mut line = self.lock();
        if let Some(&number) = line.earliest(branch, slot, 1).first()
            && keep()
        {
            line.offer(number, branch, slot, at, self.expiry(now_ns));
            return (Some(line), true);
        }
        (Some(line), false)
    }

    /// The line, locked; its counts are published when the guard drops.
    pub(crate) fn lock(&self) -> LineGuard<'_> {
        LineGuard {
            standby: self,
            line: self.line.lock(),
        }
    }
}

/// A locked line that publishes `waiting` and the offers' front when dropped.
pub(crate) struct LineGuard<'a> {
    standby: &'a Standby,
    line: MutexGuard<'a, Line>,
}

impl Deref for LineGuard<'_> {
    type Target = Line;
    fn deref(&self) -> &Line {
        &self.line
    }
}

impl DerefMut for LineGuard<'_> {
    fn deref_mut(&mut self) -> &mut Line {
        &mut self.line
    }
}

impl Drop for LineGuard<'_> {
    fn drop(&mut self) {
        // Ordering: stored before the unlock; see `Standby::has_waiting` and `is_due`.
        self.standby
            .waiting
            .store(self.line.waiting(), Ordering::Relaxed);
        self.standby
            .front_ns
            .store(self.line.front_ns(), Ordering::Release);
    }
}

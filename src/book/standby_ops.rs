//! Standby calls: `standby`, `standby_offer`, `leave_standby`, and the steps that move units
//! between the line and the shards: claiming an offer under its applicant's shard lock,
//! passing on offers that lapsed unclaimed, and holding the units a capacity change frees.
//! The line itself is `standby.rs`; ARCHITECTURE.md ("Standby") gives the design and why no
//! two locks are ever taken in an order that can deadlock.

use std::ops::RangeBounds;

use crate::clock::Clock;
use crate::token::random_u128;

use super::among::MAX_ALTERNATIVES;
use super::branches::Branch;
use super::channel::Part;
use super::chunk::SlotRef;
use super::error::StandbyError;
use super::ledger::{Ledger, Mark, Shard};
use super::record::{Record, State};
use super::standby::{LineGuard, Offer, StandbyRequest, StandbyTicket, Status};
use super::types::{ApplicantId, BranchId, Hold, SlotIndex};
use super::word::MAX_CAPACITY;
use super::{SlotBook, inclusive};

impl<C: Clock> SlotBook<C> {
    /// Puts `applicant` in the standby line for one unit in any of `branches` within `slots`:
    /// the next unit that becomes free in a slot it covers (a booking released, a hold lapsed
    /// or released, capacity raised, channel quotas opened) is held for the earliest such
    /// request before any reservation can take it. [`standby_offer`](Self::standby_offer)
    /// then gives that hold; it lapses like any hold (and its unit goes to the next request).
    ///
    /// A waiting request takes one place of the applicant's `max_active_per_applicant`, so the
    /// hold it is given never breaks that limit. A request ends when it is given a hold or
    /// leaves ([`leave_standby`](Self::leave_standby)); one applicant has at most one request:
    /// a retry while it waits returns the same ticket.
    ///
    /// # Errors
    ///
    /// [`StandbyError::UnitFree`] while a slot the request covers has a unit free to reserve
    /// (reserve it instead); [`StandbyError::ApplicantLimit`]; [`StandbyError::LineFull`] when
    /// `max_standby_requests` wait; [`StandbyError::EmptyRange`];
    /// [`StandbyError::Alternatives`] for no branch or more than [`MAX_ALTERNATIVES`]. Nothing
    /// changes on an error.
    ///
    /// ```
    /// use std::time::Duration;
    /// use surgegate::{ApplicantId, BranchId, ManualClock, SlotBook, StandbyError};
    ///
    /// let book = SlotBook::builder().hold_ttl(Duration::from_secs(60)).clock(ManualClock::new()).build();
    /// book.set_capacity(BranchId(3), 0, 1)?;
    /// assert!(matches!(
    ///     book.standby(ApplicantId(2), &[BranchId(3)], 0..10),
    ///     Err(StandbyError::UnitFree { slot: 0, .. })
    /// ));
    /// let first = book.reserve(BranchId(3), 0, ApplicantId(1))?;
    /// book.standby(ApplicantId(2), &[BranchId(3), BranchId(9)], 0..10)?;
    ///
    /// book.release(first.token)?; // the unit goes to the line, not to the fastest refresher
    /// assert!(book.reserve(BranchId(3), 0, ApplicantId(5)).is_err());
    /// let hold = book.standby_offer(ApplicantId(2)).expect("held for the request");
    /// book.confirm(hold.token)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn standby(
        &self,
        applicant: ApplicantId,
        branches: &[BranchId],
        slots: impl RangeBounds<SlotIndex>,
    ) -> Result<StandbyTicket, StandbyError> {
        let unique = standby_branches(branches)?;
        let (first, last) = inclusive(&slots).ok_or(StandbyError::EmptyRange)?;
        if first >= self.max_slots_per_branch {
            return Err(StandbyError::EmptyRange);
        }
        let last = last.min(self.max_slots_per_branch - 1);
        self.sweep_now();
        if let Some((branch, slot)) = self.free_unit(&unique, first, last) {
            return Err(StandbyError::UnitFree { branch, slot });
        }
        let shard_index = self.shard_of_applicant(applicant);
        let shard = &self.shards[shard_index];
        let ticket = self.join_line(shard, shard_index, applicant, &unique, first, last)?;
        // Every call that frees a unit reads `has_waiting` under a shard lock or a capacity
        // stripe. Taking each once now, after the request became visible under the line's
        // lock, splits those calls in two: one that held the lock before finished freeing
        // before we got the lock (so the check below sees its unit), one that takes it after
        // sees the request and hands its unit to the line. So a unit freed after the check
        // below is always handed to the line.
        for s in self.shards.iter() {
            drop(s.ledger.lock());
        }
        for stripe in self.capacity_stripes.iter() {
            drop(stripe.lock());
        }
        let free = self.free_unit(&unique, first, last);
        let _ledger = shard.ledger.lock();
        let mut line = self.standby.lock();
        match free {
            Some((branch, slot)) if line.number_of(applicant) == Some(ticket.number) => {
                // A unit came free before every freeing call could see the request: it is
                // for reserving, and the request goes (nothing changed).
                line.withdraw(applicant);
                drop(line);
                let mut ledger = _ledger;
                ledger.standby.remove(&applicant);
                Err(StandbyError::UnitFree { branch, slot })
            }
            _ => {
                line.settle(ticket.number);
                Ok(ticket)
            }
        }
    }

    /// The part of `standby` under the applicant's shard lock: its offers claimed, its limit
    /// checked, the request added to the line and marked in the shard.
    fn join_line(
        &self,
        shard: &Shard,
        shard_index: usize,
        applicant: ApplicantId,
        branches: &[BranchId],
        first: SlotIndex,
        last: SlotIndex,
    ) -> Result<StandbyTicket, StandbyError> {
        let mut ledger = shard.ledger.lock();
        let now = ledger.clamp_now(self.now_ns());
        self.claim_offer(&mut ledger, shard, shard_index, applicant, now);
        let view = ledger.applicant_view(applicant, now, |_| false, &self.standby);
        let mut line = self.standby.lock();
        if let Some(number) = line.number_of(applicant) {
            // A retry: the request already waits.
            return Ok(StandbyTicket {
                applicant,
                number,
                waiting: line.waiting(),
            });
        }
        if view.active >= self.max_active_per_applicant {
            return Err(StandbyError::ApplicantLimit);
        }
        if line.waiting() >= self.standby.max_requests {
            return Err(StandbyError::LineFull {
                max: self.standby.max_requests as u32,
            });
        }
        let number = line.join(applicant, branches, first, last);
        ledger.standby.insert(applicant, Mark::InLine);
        Ok(StandbyTicket {
            applicant,
            number,
            waiting: line.waiting(),
        })
    }

    /// The hold standby gave `applicant`, while it is live: a unit freed for its request,
    /// recorded now under its own shard if it was not yet. `None` while the request waits,
    /// after the hold was confirmed, released or lapsed, or without a request.
    ///
    /// ```
    /// use surgegate::{ApplicantId, BranchId, SlotBook};
    ///
    /// let book = SlotBook::builder().build();
    /// book.set_capacity(BranchId(1), 0, 1)?;
    /// let hold = book.reserve(BranchId(1), 0, ApplicantId(1))?;
    /// book.standby(ApplicantId(2), &[BranchId(1)], 0..1)?;
    /// assert_eq!(book.standby_offer(ApplicantId(2)), None); // waiting
    /// book.set_capacity(BranchId(1), 0, 2)?; // a raised capacity goes to the line too
    /// assert_eq!(book.standby_offer(ApplicantId(2)).map(|h| h.slot), Some(0));
    /// # let _ = hold;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn standby_offer(&self, applicant: ApplicantId) -> Option<Hold> {
        self.catch_up();
        let shard_index = self.shard_of_applicant(applicant);
        let shard = &self.shards[shard_index];
        let mut ledger = shard.ledger.lock();
        let now = ledger.clamp_now(self.now_ns());
        self.claim_offer(&mut ledger, shard, shard_index, applicant, now);
        let Some(&Mark::Given(token)) = ledger.standby.get(&applicant) else {
            return None;
        };
        let r = ledger.records.get(token)?;
        r.is_live_hold(now).then(|| self.hold_of(token, &r))
    }

    /// `applicant`'s standby request while it waits: its number and what it covers. `None`
    /// once it was given a hold (see [`standby_offer`](Self::standby_offer)), left, or never
    /// joined. Like `standby_offer`, it first records an offer made to the applicant, so the two
    /// never both answer `None` for a request that was just served.
    ///
    /// ```
    /// use surgegate::{ApplicantId, BranchId, SlotBook};
    ///
    /// let book = SlotBook::builder().build();
    /// book.set_capacity(BranchId(1), 4, 1)?;
    /// let first = book.reserve(BranchId(1), 4, ApplicantId(1))?;
    /// book.standby(ApplicantId(2), &[BranchId(1), BranchId(1)], 0..8)?;
    /// let waits = book.standby_request(ApplicantId(2)).expect("waiting");
    /// assert_eq!((waits.branches, waits.first, waits.last), (vec![BranchId(1)], 0, 7));
    /// book.release(first.token)?; // served: the request ends with a hold
    /// assert_eq!(book.standby_request(ApplicantId(2)), None);
    /// assert!(book.standby_offer(ApplicantId(2)).is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn standby_request(&self, applicant: ApplicantId) -> Option<StandbyRequest> {
        self.catch_up();
        let shard_index = self.shard_of_applicant(applicant);
        let shard = &self.shards[shard_index];
        let mut ledger = shard.ledger.lock();
        let now = ledger.clamp_now(self.now_ns());
        self.claim_offer(&mut ledger, shard, shard_index, applicant, now);
        if ledger.standby.get(&applicant) != Some(&Mark::InLine) {
            return None;
        }
        self.standby.lock().request_of(applicant)
    }

    /// Takes `applicant`'s waiting request out of the line; false if it had none waiting
    /// (never joined, left already, or was given a hold, which stays its own).
    ///
    /// ```
    /// use surgegate::{ApplicantId, BranchId, SlotBook};
    ///
    /// let book = SlotBook::builder().build();
    /// book.set_capacity(BranchId(1), 0, 1)?;
    /// book.reserve(BranchId(1), 0, ApplicantId(1))?;
    /// book.standby(ApplicantId(2), &[BranchId(1)], ..)?;
    /// assert!(book.leave_standby(ApplicantId(2)));
    /// assert!(!book.leave_standby(ApplicantId(2)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn leave_standby(&self, applicant: ApplicantId) -> bool {
        let shard_index = self.shard_of_applicant(applicant);
        let shard = &self.shards[shard_index];
        let mut ledger = shard.ledger.lock();
        let now = ledger.clamp_now(self.now_ns());
        self.claim_offer(&mut ledger, shard, shard_index, applicant, now);
        if ledger.standby.get(&applicant) != Some(&Mark::InLine) {
            return false;
        }
        let left = self.standby.lock().withdraw(applicant);
        ledger.standby.remove(&applicant);
        left
    }

    /// Under the applicant's shard lock: if the line holds an offer for it, records that offer
    /// as an ordinary hold of this shard (expiry as offered); if its request ended without
    /// one (the offer lapsed), forgets the mark. Offers that lapsed are passed on first.
    pub(super) fn claim_offer(
        &self,
        ledger: &mut Ledger,
        shard: &Shard,
        shard_index: usize,
        applicant: ApplicantId,
        now: u64,
    ) {
        if ledger.standby.get(&applicant) != Some(&Mark::InLine) {
            return;
        }
        let mut line = self.standby.lock();
        self.pass_on_lapsed(&mut line, now);
        let offer = match line.take_offer(applicant, now) {
            Status::Waiting => return,
            Status::Gone => {
                ledger.standby.remove(&applicant);
                return;
            }
            Status::Given(offer) => offer,
        };
        let record = Record {
            branch: offer.branch,
            slot: offer.slot,
            applicant,
            state: State::Held {
                expires_ns: offer.expires_ns,
            },
            at: offer.at,
            part: Part::OPEN,
        };
        let placed = ledger
            .records
            .new_token(shard_index, random_u128())
            .map(|token| (token, ledger.insert_given(token, record)));
        match placed {
            Some((token, Ok(()))) => {
                ledger.standby.insert(applicant, Mark::Given(token));
                shard.publish_front(ledger, &self.hint);
            }
            _ => {
                // The shard holds as many records as its tokens can name: the unit goes on
                // to the next request, as if the offer had lapsed.
                ledger.standby.remove(&applicant);
                self.pass_on(&mut line, offer, now);
            }
        }
    }

    /// Passes on every unclaimed offer that lapsed by `now`: the next covering request gets
    /// its unit, or the slot does.
    pub(super) fn pass_on_lapsed(&self, line: &mut LineGuard<'_>, now: u64) {
        while let Some(offer) = line.pop_lapsed(now) {
            self.pass_on(line, offer, now);
        }
    }

    /// Sweeps the line's lapsed offers if any may be due: the first step of every sweep.
    pub(super) fn sweep_offers(&self, now: u64) {
        if self.standby.is_due(now) {
            let mut line = self.standby.lock();
            self.pass_on_lapsed(&mut line, now);
        }
    }

    fn pass_on(&self, line: &mut LineGuard<'_>, offer: Offer, now: u64) {
        let word = offer.at.word(offer.slot);
        if let Some(&number) = line.earliest(offer.branch, offer.slot, 1).first()
            && word.keep_for_standby(true)
        {
            let expires_ns = self.standby.expiry(now);
            line.offer(number, offer.branch, offer.slot, offer.at, expires_ns);
            return;
        }
        if word.release_held().is_full() {
            offer.at.sync_full(offer.slot);
        }
    }

    /// For a change that may free units of a slot (a capacity raised, quotas lowered or
    /// opened): the line, locked, and the numbers of the requests covering the slot in line
    /// order, if any wait. The caller makes its change with [`SlotWord::set_capacity_giving`]
    /// for that many, then [`give_units`](Self::give_units) for those it held.
    ///
    /// [`SlotWord::set_capacity_giving`]: super::word::SlotWord::set_capacity_giving
    pub(super) fn wanting(
        &self,
        branch: BranchId,
        slot: SlotIndex,
    ) -> (Option<LineGuard<'_>>, Vec<u64>) {
        if !self.standby.has_waiting() {
            return (None, Vec::new());
        }
        let line = self.standby.lock();
        let numbers = line.earliest(branch, slot, MAX_CAPACITY as usize);
        (Some(line), numbers)
    }

    /// Offers the `granted` units just held in `slot` to the first requests of `numbers`.
    pub(super) fn give_units(
        &self,
        line: Option<&mut LineGuard<'_>>,
        numbers: &[u64],
        granted: u32,
        at: SlotRef,
        branch: BranchId,
        slot: SlotIndex,
    ) {
        let Some(line) = line else {
            return;
        };
        let expires_ns = self.standby.expiry(self.now_ns());
        for &number in numbers.iter().take(granted as usize) {
            line.offer(number, branch, slot, at, expires_ns);
        }
    }

    /// The first slot with a unit free to reserve among `branches` in `first..=last`.
    fn free_unit(
        &self,
        branches: &[BranchId],
        first: SlotIndex,
        last: SlotIndex,
    ) -> Option<(BranchId, SlotIndex)> {
        branches.iter().find_map(|&id| {
            let b = self.branches.get(id)?;
            first_free(b, first, last).map(|slot| (id, slot))
        })
    }
}

/// A standby request's branches, checked (1 to [`MAX_ALTERNATIVES`]) and without repeats, in
/// the order given: the one rule for every backend.
pub(crate) fn standby_branches(branches: &[BranchId]) -> Result<Vec<BranchId>, StandbyError> {
    if branches.is_empty() || branches.len() > MAX_ALTERNATIVES {
        return Err(StandbyError::Alternatives {
            max: MAX_ALTERNATIVES as u32,
        });
    }
    let mut unique: Vec<BranchId> = Vec::with_capacity(branches.len());
    for &b in branches {
        if !unique.contains(&b) {
            unique.push(b);
        }
    }
    Ok(unique)
}

/// The lowest slot of `first..=last` at `b` with room, by the full bitmap, each candidate
/// checked against its word.
pub(super) fn first_free(b: &Branch, first: SlotIndex, last: SlotIndex) -> Option<SlotIndex> {
    let mut from = first;
    loop {
        let slot = b.first_not_full(from, last)?;
        let open = b.word(slot).is_some_and(|w| !w.load().is_full()) && !b.is_closed(slot);
        if open {
            return Some(slot);
        }
        from = slot.checked_add(1).filter(|&next| next <= last)?;
    }
}

//! The whole-book consistency check that tests, audits and health checks call.

use std::collections::{HashMap, HashSet};

use crate::clock::Clock;
use crate::invariant::{InvariantViolation, ensure};
use crate::sync::{MutexGuard, Ordering};

use super::SlotBook;
use super::branches::{Branch, quota_key};
use super::channel::Channel;
use super::chunk::CHUNK_SLOTS;
use super::ledger::{ExpiryKey, Ledger, Mark, is_hold_at};
use super::record::{Record, State};
use super::standby::Line;
use super::standby_ops::first_free;
use super::types::{ApplicantId, BookTotals, BranchId, SlotIndex};
use super::word::{MAX_CAPACITY, Packed};

impl<C: Clock> SlotBook<C> {
    /// Checks every invariant of the book against its records; returns its totals.
    ///
    /// Locks every shard in turn order and holds them all while counting, so it is exact even
    /// while other threads call the book (they wait). It costs O(records + open slots): meant for
    /// tests, audits and health checks, not for every request.
    ///
    /// Checks: each slot's held and booked counts equal its hold and booking records; taken units
    /// fit the counter; each slot's full bit matches its counts (exact only while no
    /// `set_capacity` call is in flight); applicant index and records agree; no applicant exceeds
    /// `max_active_per_applicant` live holds plus bookings; each shard's hold count, expiry queue
    /// (ordered, covering every hold) and published front are right; the expiry hint is at or
    /// below every front.
    pub fn check_invariants(&self) -> Result<BookTotals, InvariantViolation> {
        let now = self.clock_ns();
        let guards: Vec<_> = self.shards.iter().map(|s| s.ledger.lock()).collect();
        let mut totals = BookTotals::default();
        let mut per_slot = PerSlot::new();
        for (index, ledger) in guards.iter().enumerate() {
            self.check_shard(index, ledger, now, &mut per_slot, &mut totals)?;
        }
        // After the shards (the book's lock order), and held to the end: the standby line's
        // offers are held units of their slots.
        let line = self.standby.lock();
        self.check_standby(&guards, &line, now, &mut per_slot, &mut totals)?;
        let mut per_channel = PerChannel::new();
        for ledger in &guards {
            for (_, _, r) in ledger.records.iter() {
                if let Some(channel) = r.part.channel() {
                    let c = per_channel.entry((r.branch, r.slot, channel)).or_default();
                    c.0 += 1;
                    c.1 += u32::from(r.part.is_from_quota());
                }
            }
        }
        let mut chunks = 0;
        for b in self.branches.iter() {
            totals.branches += 1;
            for (slot, p) in b.all_slots() {
                chunks += usize::from(slot % CHUNK_SLOTS == 0);
                Self::check_slot(b, slot, p, &mut per_slot, &mut totals)?;
                check_quotas(b, slot, p, &mut per_channel)?;
            }
        }
        ensure!(
            per_channel.is_empty(),
            "units taken on a channel of slots without quotas: {:?}",
            per_channel.keys().take(3).collect::<Vec<_>>()
        );
        ensure!(
            chunks == self.branches.chunks() && chunks <= self.max_slot_chunks as usize,
            "{chunks} chunks allocated, {} counted, limit {}",
            self.branches.chunks(),
            self.max_slot_chunks
        );
        ensure!(
            totals.branches == self.branches.len() && totals.branches <= self.max_branches as usize,
            "{} branches found, {} counted, limit {}",
            totals.branches,
            self.branches.len(),
            self.max_branches
        );
        ensure!(
            per_slot.is_empty(),
            "records on slots that do not exist: {:?}",
            per_slot.keys().take(3).collect::<Vec<_>>()
        );
        drop(line);
        drop(guards);
        Ok(totals)
    }

    /// The standby line against the shards: the line's indexes agree; each offer is a held
    /// unit of its slot, for an applicant whose shard marks it; each mark of a claimed hold
    /// names a live hold record; an applicant's records plus its place in the line stay
    /// within its limit; and no request that `standby` settled covers a slot with a unit free
    /// to reserve (a freed unit always went to the line first).
    fn check_standby(
        &self,
        guards: &[MutexGuard<'_, Ledger>],
        line: &Line,
        now: u64,
        per_slot: &mut PerSlot,
        totals: &mut BookTotals,
    ) -> Result<(), InvariantViolation> {
        if let Err(e) = line.check() {
            ensure!(false, "standby line: {e}");
        }
        for (a, offer) in line.offers() {
            per_slot.entry((offer.branch, offer.slot)).or_default().0 += 1;
            totals.holds += 1;
            totals.expired_holds += u64::from(offer.expires_ns <= now);
            let ledger = &guards[self.shard_of_applicant(a)];
            ensure!(
                ledger.standby.get(&a) == Some(&Mark::InLine),
                "standby offer for {a}, whose shard does not mark it"
            );
        }
        for ledger in guards {
            for (&a, &mark) in &ledger.standby {
                let active = ledger
                    .records
                    .tokens_of(a)
                    .filter_map(|t| ledger.records.get(t))
                    .filter(|r| !r.is_expired_hold(now))
                    .count();
                match mark {
                    Mark::InLine => ensure!(
                        active + usize::from(line.has_place(a)) <= self.max_active_per_applicant,
                        "{a} has {active} holds and bookings and a standby place, above the limit {}",
                        self.max_active_per_applicant
                    ),
                    Mark::Given(token) => ensure!(
                        ledger.records.get(token).is_some_and(|r| r.applicant == a
                            && matches!(r.state, State::Held { .. } | State::Confirming { .. })),
                        "{a} marked as given hold {token:032x}, which is not its hold"
                    ),
                }
            }
        }
        for (a, branches, first, last) in line.settled_requests() {
            ensure!(
                guards[self.shard_of_applicant(a)].standby.get(&a) == Some(&Mark::InLine),
                "standby request of {a}, whose shard does not mark it"
            );
            for &id in branches {
                let free = self
                    .branches
                    .get(id)
                    .and_then(|b| first_free(b, first, last));
                ensure!(
                    free.is_none(),
                    "{a} waits on standby while {id} slot {} has a free unit",
                    free.unwrap_or_default()
                );
            }
        }
        Ok(())
    }

    /// One shard: its records (where they are stored, their applicant index, their expiry
    /// entries), its counts, its applicants' limits, its expiry queue and published front.
    fn check_shard(
        &self,
        index: usize,
        ledger: &Ledger,
        now: u64,
        per_slot: &mut PerSlot,
        totals: &mut BookTotals,
    ) -> Result<(), InvariantViolation> {
        let mut holds = 0usize;
        let mut per_applicant: HashMap<ApplicantId, usize> = HashMap::new();
        let queued: HashSet<(u64, ExpiryKey)> = ledger.expiry.iter().collect();
        for (token, entry, r) in ledger.records.iter() {
            self.check_record(index, ledger, token, &r)?;
            let counts = per_slot.entry((r.branch, r.slot)).or_default();
            match r.state {
                State::Held { expires_ns } => {
                    holds += 1;
                    counts.0 += 1;
                    totals.holds += 1;
                    if expires_ns <= now {
                        totals.expired_holds += 1;
                    } else {
                        *per_applicant.entry(r.applicant).or_default() += 1;
                    }
                    ensure!(
                        queued.contains(&(expires_ns, ExpiryKey::new(entry, token))),
                        "hold {token:032x} missing from the expiry queue"
                    );
                }
                // Being confirmed: a hold that cannot lapse until its confirmation settles (its
                // queue entry may already have been passed by a sweep).
                State::Confirming { .. } => {
                    holds += 1;
                    counts.0 += 1;
                    totals.holds += 1;
                    *per_applicant.entry(r.applicant).or_default() += 1;
                }
                State::Booked | State::Cancelling => {
                    counts.1 += 1;
                    totals.bookings += 1;
                    *per_applicant.entry(r.applicant).or_default() += 1;
                }
            }
        }
        ensure!(
            holds == ledger.live_holds,
            "shard {index} counts {} holds but has {holds}",
            ledger.live_holds
        );
        for (a, n) in per_applicant {
            ensure!(
                n <= self.max_active_per_applicant,
                "{a} has {n} live holds and bookings, above the limit {}",
                self.max_active_per_applicant
            );
        }
        self.check_expiry_queue(index, ledger)
    }

    /// A record is in the shard its token and its applicant name, and in its applicant's index.
    fn check_record(
        &self,
        index: usize,
        ledger: &Ledger,
        token: u128,
        r: &Record,
    ) -> Result<(), InvariantViolation> {
        ensure!(
            self.shard_of_token(token) == index,
            "token {token:032x} stored in shard {index}"
        );
        ensure!(
            self.shard_of_applicant(r.applicant) == index,
            "{} stored in shard {index}",
            r.applicant
        );
        ensure!(
            ledger.tokens_of(r.applicant).any(|t| t == token),
            "record {token:032x} missing from its applicant's index"
        );
        Ok(())
    }

    /// The applicant index covers exactly the records; the expiry queue is in order; the
    /// published front is the queue's; the hint is at or below it.
    fn check_expiry_queue(&self, index: usize, ledger: &Ledger) -> Result<(), InvariantViolation> {
        let applicants: HashSet<ApplicantId> =
            ledger.records.iter().map(|(_, _, r)| r.applicant).collect();
        let index_size: usize = applicants
            .iter()
            .map(|&a| ledger.tokens_of(a).count())
            .sum();
        ensure!(
            index_size == ledger.records.len() && applicants.len() == ledger.records.applicants(),
            "shard {index}: applicant index has {index_size} tokens for {} records, {} applicants for {}",
            ledger.records.len(),
            ledger.records.applicants(),
            applicants.len()
        );
        if let Err(e) = ledger.records.check_free_chain() {
            ensure!(false, "shard {index}: {e}");
        }
        ensure!(
            ledger.expiry.is_ordered(),
            "shard {index}: expiry queue out of order"
        );
        // Stale entries are told apart from live ones (else compaction could not drop them):
        // each hold has exactly one entry its queue takes for live (a confirming one, whose
        // entry a sweep may have passed, at most one).
        let live_entries = ledger
            .expiry
            .iter()
            .filter(|&(d, k)| is_hold_at(&ledger.records, d, k))
            .count();
        let held = ledger
            .records
            .iter()
            .filter(|(_, _, r)| matches!(r.state, State::Held { .. }))
            .count();
        ensure!(
            (held..=ledger.live_holds).contains(&live_entries),
            "shard {index}: {live_entries} expiry entries taken for live, for {} holds",
            ledger.live_holds
        );
        let front = ledger.expiry.peek().map_or(u64::MAX, |(e, _)| e);
        let published = self.shards[index].front_ns.load(Ordering::SeqCst);
        ensure!(
            published == front,
            "shard {index}: published front {published} but queue front {front}"
        );
        ensure!(
            self.hint.bound_ns() <= front,
            "expiry hint above shard {index}'s front {front}"
        );
        Ok(())
    }

    /// One allocated slot: its counts equal its records, fit the counter, and match its full bit.
    fn check_slot(
        b: &Branch,
        slot: SlotIndex,
        p: Packed,
        per_slot: &mut PerSlot,
        totals: &mut BookTotals,
    ) -> Result<(), InvariantViolation> {
        // Only slots with units taken can have records; records left over in `per_slot` at the
        // end (on slots whose counts say zero) are caught by the caller.
        let (held, booked) = if p.taken() > 0 {
            per_slot.remove(&(b.id(), slot)).unwrap_or((0, 0))
        } else {
            (0, 0)
        };
        ensure!(
            p.held() == held && p.booked() == booked,
            "{} slot {slot}: counter says held {} booked {}, records say held {held} booked {booked}",
            b.id(),
            p.held(),
            p.booked()
        );
        ensure!(
            p.taken() <= MAX_CAPACITY,
            "{} slot {slot}: {} taken, above the counter's range",
            b.id(),
            p.taken()
        );
        ensure!(
            b.full_bit(slot) == Some(p.is_full()),
            "{} slot {slot}: full bit {:?} but the slot is {}",
            b.id(),
            b.full_bit(slot),
            if p.is_full() { "full" } else { "not full" }
        );
        let closed = b.is_closed(slot);
        ensure!(
            !closed || (p.is_open() && p.capacity() == 0),
            "{} slot {slot}: closed, but its word says {p:?}",
            b.id()
        );
        if p.is_open() && !closed {
            totals.open_slots += 1;
            totals.capacity += u64::from(p.capacity());
        } else if !closed {
            ensure!(
                held == 0 && booked == 0,
                "{} slot {slot}: records on a slot never opened",
                b.id()
            );
        }
        Ok(())
    }
}

/// Hold and booking records counted per slot.
type PerSlot = HashMap<(BranchId, SlotIndex), (u32, u32)>;

/// Records taken on a channel, per slot and channel: all of them, and those from the quota.
type PerChannel = HashMap<(BranchId, SlotIndex, Channel), (u32, u32)>;

/// A slot's channel quotas: each channel's counts equal its records; the quotas fit the
/// capacity; the word's capacity field is the capacity less the unused quota units.
fn check_quotas(
    b: &Branch,
    slot: SlotIndex,
    p: Packed,
    per_channel: &mut PerChannel,
) -> Result<(), InvariantViolation> {
    let Some(table) = b.quotas(slot) else {
        return Ok(());
    };
    let Some(cs) = table.get(&quota_key(slot)) else {
        return Ok(());
    };
    for &(channel, c) in &cs.channels {
        let (taken, from_quota) = per_channel
            .remove(&(b.id(), slot, channel))
            .unwrap_or((0, 0));
        ensure!(
            (c.taken, c.from_quota) == (taken, from_quota),
            "{} slot {slot} {channel}: counts taken {} (from its quota {}), records say {taken} ({from_quota})",
            b.id(),
            c.taken,
            c.from_quota
        );
        ensure!(
            c.from_quota <= c.taken,
            "{} slot {slot} {channel}: more from its quota than taken",
            b.id()
        );
    }
    ensure!(
        cs.closed || cs.quotas() <= u64::from(cs.capacity),
        "{} slot {slot}: quotas {} above capacity {}",
        b.id(),
        cs.quotas(),
        cs.capacity
    );
    ensure!(
        cs.closed == b.is_closed(slot),
        "{} slot {slot}: quotas say closed {}, the slot {}",
        b.id(),
        cs.closed,
        b.is_closed(slot)
    );
    ensure!(
        !p.is_open() || p.capacity() == cs.word_capacity(),
        "{} slot {slot}: word capacity {} but capacity {} less unused quota {}",
        b.id(),
        p.capacity(),
        cs.capacity,
        cs.unused()
    );
    Ok(())
}

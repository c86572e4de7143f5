//! A reference model of the SlotBook, and a harness that runs the real book and the model side by
//! side, comparing every answer and checking the invariants after every step.
//!
//! The model is deliberately naive: a map of capacities and a vector of holds, scanned in full,
//! with expired holds dropped the moment time passes. Shared by `tests/book_model.rs`,
//! `tests/book_state_machine.rs` and `fuzz/fuzz_targets/book_ops.rs`.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use surgegate::book::Preference;
use surgegate::{
    ApplicantId, BranchId, CapacityError, Channel, CloseError, ConfirmError, HoldToken,
    ManualClock, ReleaseError, ReserveError, SlotBook, SlotState,
};

/// Settings of the book under test: small, so that limits and chunk boundaries are reached.
pub const TTL_MS: u64 = 10_000;
pub const APPLICANT_LIMIT: usize = 2;
pub const MAX_SLOTS: u32 = 1100; // three 512-slot chunks, the last one partial
pub const MAX_BRANCHES: usize = 3;
pub const MAX_CAPACITY: u32 = surgegate::book::MAX_CAPACITY;

/// One call on the book. Small domains make collisions (same slot, same applicant) frequent.
#[derive(Clone, Debug)]
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
pub enum BookOp {
    SetCapacity {
        branch: u8,
        slot: u16,
        capacity: u32,
    },
    Reserve {
        branch: u8,
        slot: u16,
        applicant: u8,
    },
    ReserveEarliest {
        branch: u8,
        start: u16,
        end: u16,
        applicant: u8,
    },
    /// `reserve_among(.., FirstBranch)` or (`first_branch` false) `reserve_earliest_among` of
    /// the first `count % 4` of `branches` (0: none, an error).
    ReserveAmong {
        branches: [u8; 3],
        count: u8,
        start: u16,
        end: u16,
        applicant: u8,
        first_branch: bool,
    },
    CloseSlot {
        branch: u8,
        slot: u16,
    },
    /// `hold` picks one of the tokens issued so far (modulo their number).
    Confirm {
        hold: u16,
    },
    Release {
        hold: u16,
    },
    Booking {
        hold: u16,
    },
    /// Like `Confirm`/`Release`, but naming the hold by the model's id (the state-machine test
    /// generates ids of holds that exist).
    ConfirmId {
        id: u16,
    },
    ReleaseId {
        id: u16,
    },
    /// A token this book never issued.
    ConfirmForged {
        bits: u128,
    },
    ReleaseForged {
        bits: u128,
    },
    Slot {
        branch: u8,
        slot: u16,
    },
    Availability {
        branch: u8,
        start: u16,
        end: u16,
    },
    AdvanceMs {
        ms: u16,
    },
    Sweep,
    /// `set_channel_quota` of channel `channel % 3`.
    SetQuota {
        branch: u8,
        slot: u16,
        channel: u8,
        quota: u32,
    },
    ReserveOn {
        channel: u8,
        branch: u8,
        slot: u16,
        applicant: u8,
    },
    OpenQuotas {
        branch: u8,
        slot: u16,
    },
    /// `open_channel_quotas_in` over a range.
    OpenQuotasIn {
        branch: u8,
        start: u16,
        end: u16,
    },
}

/// Maps the small op domains onto the book's: branches 0..=4 (over the limit of 3), slots that
/// mostly fall inside the book and sometimes past it, capacities mostly 0..=4.
pub fn branch_of(b: u8) -> BranchId {
    BranchId(u32::from(b % 5))
}
pub fn slot_of(s: u16) -> u32 {
    // Mostly 0..16 and around the chunk boundaries, sometimes anywhere in 0..1200.
    match s % 8 {
        0 => u32::from(s) % 1200,
        1 => 510 + u32::from(s) % 4,
        _ => u32::from(s) % 16,
    }
}
/// Quotas: mostly 0..=3, sometimes past the largest capacity.
pub fn quota_of(q: u32) -> u32 {
    match q % 32 {
        0 => MAX_CAPACITY + 1,
        _ => q % 4,
    }
}
pub fn capacity_of(c: u32) -> u32 {
    match c % 64 {
        0 => MAX_CAPACITY,
        1 => MAX_CAPACITY + 1 + c / 64,
        _ => c % 5,
    }
}
/// The branches a `ReserveAmong` names: the first `count % 4` of `branches`.
pub fn among_of(branches: [u8; 3], count: u8) -> Vec<BranchId> {
    branches[..usize::from(count % 4)]
        .iter()
        .map(|&b| branch_of(b))
        .collect()
}

/// Three channels, so that two of them meet on one slot often.
pub fn channel_of(c: u8) -> Channel {
    Channel(c % 3)
}

pub fn applicant_of(a: u8) -> ApplicantId {
    ApplicantId(u64::from(a % 6))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelHold {
    pub id: usize,
    pub branch: BranchId,
    pub slot: u32,
    pub applicant: ApplicantId,
    pub expires_ns: u64,
    pub booked: bool,
    /// Taken on a channel (of a slot with quotas): the channel, and whether from its quota.
    pub part: Option<(u8, bool)>,
}

/// The reference model.
#[derive(Clone, Debug, Default)]
pub struct BookModel {
    pub now_ns: u64,
    pub capacity: BTreeMap<(BranchId, u32), u32>,
    pub branches: BTreeSet<BranchId>,
    /// Live holds and bookings. Expired holds are removed as soon as time passes them.
    pub holds: Vec<ModelHold>,
    /// Ids of holds that expired unconfirmed.
    pub expired: BTreeSet<usize>,
    pub next_id: usize,
    /// Slots whose capacity was once lowered below what they had taken.
    pub lowered: BTreeSet<(BranchId, u32)>,
    /// Closed slots (capacity 0, out of every reading, until `set_capacity`).
    pub closed: BTreeSet<(BranchId, u32)>,
    /// Slots that ever had a quota: each channel's quota (every channel that had one or took
    /// a unit there), and the slot's whole capacity (kept while closed).
    pub quotas: BTreeMap<(BranchId, u32), (u32, BTreeMap<u8, u32>)>,
}

impl BookModel {
    /// What a reading shows: nothing for a slot never opened or closed.
    pub fn state(&self, branch: BranchId, slot: u32) -> Option<SlotState> {
        if self.closed.contains(&(branch, slot)) {
            return None;
        }
        self.counts(branch, slot)
    }

    /// Units of `channel` at the slot: all of them, and those from its quota.
    pub fn channel_taken(&self, branch: BranchId, slot: u32, channel: u8) -> (u32, u32) {
        let mine = self
            .holds
            .iter()
            .filter(|h| h.branch == branch && h.slot == slot)
            .filter_map(|h| h.part.filter(|p| p.0 == channel));
        mine.fold((0, 0), |(t, f), p| (t + 1, f + u32::from(p.1)))
    }

    /// Quota units not used yet.
    pub fn unused(&self, branch: BranchId, slot: u32) -> u32 {
        let Some((_, qs)) = self.quotas.get(&(branch, slot)) else {
            return 0;
        };
        qs.iter()
            .map(|(&c, &q)| q.saturating_sub(self.channel_taken(branch, slot, c).1))
            .sum()
    }

    /// What plain reservations see as the capacity: the whole less the unused quota units.
    pub fn word_cap(&self, branch: BranchId, slot: u32) -> u32 {
        let whole = self.capacity.get(&(branch, slot)).copied().unwrap_or(0);
        if self.closed.contains(&(branch, slot)) {
            return 0;
        }
        whole.saturating_sub(self.unused(branch, slot))
    }

    /// The slot's capacity and counts, closed or not.
    fn counts(&self, branch: BranchId, slot: u32) -> Option<SlotState> {
        self.capacity.get(&(branch, slot))?;
        let capacity = self.word_cap(branch, slot);
        let here = self
            .holds
            .iter()
            .filter(|h| h.branch == branch && h.slot == slot);
        let (mut held, mut booked) = (0, 0);
        for h in here {
            if h.booked {
                booked += 1;
            } else {
                held += 1;
            }
        }
        Some(SlotState {
            capacity,
            held,
            booked,
        })
    }

    fn taken(&self, branch: BranchId, slot: u32) -> u32 {
        self.counts(branch, slot).map_or(0, |s| s.held + s.booked)
    }

    /// `close_slot`: capacity 0 and out of every reading; holds and bookings stay.
    pub fn close_slot(&mut self, branch: BranchId, slot: u32) -> Result<SlotState, CloseError> {
        let before = self.counts(branch, slot).ok_or(CloseError::UnknownSlot)?;
        if self.closed.insert((branch, slot)) {
            if before.held + before.booked > 0 {
                self.lowered.insert((branch, slot));
            }
            self.capacity.insert((branch, slot), 0);
        }
        Ok(before)
    }

    pub fn advance(&mut self, by_ns: u64) {
        self.now_ns += by_ns;
        let now = self.now_ns;
        let expired = &mut self.expired;
        self.holds.retain(|h| {
            let keep = h.booked || h.expires_ns > now;
            if !keep {
                expired.insert(h.id);
            }
            keep
        });
    }

    pub fn set_capacity(
        &mut self,
        branch: BranchId,
        slot: u32,
        capacity: u32,
    ) -> Result<SlotState, CapacityError> {
        if slot >= MAX_SLOTS {
            return Err(CapacityError::SlotOutOfRange {
                slot,
                last: MAX_SLOTS - 1,
            });
        }
        if capacity > MAX_CAPACITY {
            return Err(CapacityError::CapacityTooLarge {
                capacity,
                max: MAX_CAPACITY,
            });
        }
        if !self.branches.contains(&branch) {
            if self.branches.len() == MAX_BRANCHES {
                return Err(CapacityError::TooManyBranches {
                    max_branches: MAX_BRANCHES as u32,
                });
            }
            self.branches.insert(branch);
        }
        if let Some((whole, qs)) = self.quotas.get_mut(&(branch, slot)) {
            let quotas: u64 = qs.values().map(|&q| u64::from(q)).sum();
            if quotas > u64::from(capacity) {
                return Err(CapacityError::QuotasAboveCapacity { quotas, capacity });
            }
            *whole = capacity;
        }
        if capacity < self.taken(branch, slot) {
            self.lowered.insert((branch, slot));
        }
        self.capacity.insert((branch, slot), capacity);
        self.closed.remove(&(branch, slot));
        self.mark_if_over(branch, slot);
        Ok(self.state(branch, slot).unwrap())
    }

    fn grant(&mut self, branch: BranchId, slot: u32, applicant: ApplicantId) -> ModelHold {
        self.grant_on(branch, slot, applicant, None)
    }

    fn grant_on(
        &mut self,
        branch: BranchId,
        slot: u32,
        applicant: ApplicantId,
        part: Option<(u8, bool)>,
    ) -> ModelHold {
        let h = ModelHold {
            id: self.next_id,
            branch,
            slot,
            applicant,
            expires_ns: self.now_ns + TTL_MS * 1_000_000,
            booked: false,
            part,
        };
        self.next_id += 1;
        self.holds.push(h);
        h
    }

    fn active_of(&self, applicant: ApplicantId) -> usize {
        self.holds
            .iter()
            .filter(|h| h.applicant == applicant)
            .count()
    }

    pub fn reserve(
        &mut self,
        branch: BranchId,
        slot: u32,
        applicant: ApplicantId,
    ) -> Result<ModelHold, ReserveError> {
        if !self.capacity.contains_key(&(branch, slot)) {
            return Err(ReserveError::UnknownSlot);
        }
        if let Some(h) = self
            .holds
            .iter()
            .find(|h| !h.booked && h.applicant == applicant && h.branch == branch && h.slot == slot)
        {
            return Ok(*h);
        }
        if self.active_of(applicant) >= APPLICANT_LIMIT {
            return Err(ReserveError::ApplicantLimit);
        }
        if self.closed.contains(&(branch, slot)) {
            return Err(ReserveError::UnknownSlot);
        }
        if self.taken(branch, slot) >= self.word_cap(branch, slot) {
            return Err(ReserveError::Full);
        }
        Ok(self.grant(branch, slot, applicant))
    }

    /// `reserve_on`: from the channel's quota while it has units there (and the slot as a whole
    /// has room), else from the open part; a plain `reserve` on a slot without quotas.
    pub fn reserve_on(
        &mut self,
        channel: u8,
        branch: BranchId,
        slot: u32,
        applicant: ApplicantId,
    ) -> Result<ModelHold, ReserveError> {
        if !self.quotas.contains_key(&(branch, slot)) {
            return self.reserve(branch, slot, applicant);
        }
        if let Some(h) = self
            .holds
            .iter()
            .find(|h| !h.booked && h.applicant == applicant && h.branch == branch && h.slot == slot)
        {
            return Ok(*h);
        }
        if self.active_of(applicant) >= APPLICANT_LIMIT {
            return Err(ReserveError::ApplicantLimit);
        }
        if self.closed.contains(&(branch, slot)) {
            return Err(ReserveError::UnknownSlot);
        }
        let (whole, qs) = &self.quotas[&(branch, slot)];
        let quota = qs.get(&channel).copied().unwrap_or(0);
        let (_, from_quota) = self.channel_taken(branch, slot, channel);
        let taken = self.taken(branch, slot);
        let part = if from_quota < quota {
            (taken < *whole).then_some((channel, true))
        } else {
            (taken < self.word_cap(branch, slot)).then_some((channel, false))
        };
        let Some(part) = part else {
            return Err(ReserveError::Full);
        };
        self.quotas
            .get_mut(&(branch, slot))
            .unwrap()
            .1
            .entry(channel)
            .or_insert(0);
        Ok(self.grant_on(branch, slot, applicant, Some(part)))
    }

    /// `set_channel_quota`.
    pub fn set_quota(
        &mut self,
        branch: BranchId,
        slot: u32,
        channel: u8,
        quota: u32,
    ) -> Result<SlotState, CapacityError> {
        if quota > MAX_CAPACITY {
            return Err(CapacityError::CapacityTooLarge {
                capacity: quota,
                max: MAX_CAPACITY,
            });
        }
        let Some(&capacity) = self.capacity.get(&(branch, slot)) else {
            return Err(CapacityError::UnknownSlot);
        };
        if self.closed.contains(&(branch, slot)) {
            return Err(CapacityError::UnknownSlot);
        }
        let (whole, qs) = self
            .quotas
            .get(&(branch, slot))
            .cloned()
            .unwrap_or((capacity, BTreeMap::new()));
        let quotas: u64 = qs
            .iter()
            .filter(|(c, _)| **c != channel)
            .map(|(_, &q)| u64::from(q))
            .sum::<u64>()
            + u64::from(quota);
        if quotas > u64::from(whole) {
            return Err(CapacityError::QuotasAboveCapacity {
                quotas,
                capacity: whole,
            });
        }
        let entry = self
            .quotas
            .entry((branch, slot))
            .or_insert((capacity, BTreeMap::new()));
        entry.1.insert(channel, quota);
        self.mark_if_over(branch, slot);
        Ok(self.state(branch, slot).unwrap())
    }

    /// A change of capacity or quota that leaves the slot, or a channel, holding more than it
    /// may take now counts as a lowering (rule 1: what was granted stays).
    fn mark_if_over(&mut self, branch: BranchId, slot: u32) {
        let over_slot = self.taken(branch, slot) > self.word_cap(branch, slot);
        let over_channel = self.quotas.get(&(branch, slot)).is_some_and(|(whole, qs)| {
            let kept: u32 = qs.values().sum();
            let open_part = whole.saturating_sub(kept);
            qs.iter().any(|(&c, &q)| {
                let (taken, from_quota) = self.channel_taken(branch, slot, c);
                taken > q + open_part || from_quota > q
            })
        });
        if over_slot || over_channel {
            self.lowered.insert((branch, slot));
        }
    }

    /// `open_channel_quotas`.
    pub fn open_quotas(&mut self, branch: BranchId, slot: u32) -> Result<SlotState, CapacityError> {
        if !self.capacity.contains_key(&(branch, slot)) || self.closed.contains(&(branch, slot)) {
            return Err(CapacityError::UnknownSlot);
        }
        if let Some((_, qs)) = self.quotas.get_mut(&(branch, slot)) {
            for q in qs.values_mut() {
                *q = 0;
            }
        }
        Ok(self.state(branch, slot).unwrap())
    }

    /// `open_channel_quotas_in`: how many slots kept a quota and were opened.
    pub fn open_quotas_in(&mut self, branch: BranchId, start: u32, end: u32) -> u32 {
        let last = end.min(MAX_SLOTS);
        let kept: Vec<u32> = self
            .quotas
            .iter()
            .filter(|((b, s), (_, qs))| {
                *b == branch
                    && (start..last).contains(s)
                    && !self.closed.contains(&(*b, *s))
                    && qs.values().any(|&q| q > 0)
            })
            .map(|((_, s), _)| *s)
            .collect();
        for &s in &kept {
            let _ = self.open_quotas(branch, s);
        }
        kept.len() as u32
    }

    /// The live holds the applicant already has that would satisfy this request (any of them is
    /// a correct answer).
    pub fn earliest_existing(
        &self,
        branch: BranchId,
        first: u32,
        last: u32,
        applicant: ApplicantId,
    ) -> Vec<ModelHold> {
        self.holds
            .iter()
            .filter(|h| {
                !h.booked
                    && h.applicant == applicant
                    && h.branch == branch
                    && (first..=last).contains(&h.slot)
            })
            .copied()
            .collect()
    }

    pub fn reserve_earliest(
        &mut self,
        branch: BranchId,
        start: u32,
        end: u32,
        applicant: ApplicantId,
    ) -> Result<Vec<ModelHold>, ReserveError> {
        if start >= end {
            return Err(ReserveError::EmptyRange);
        }
        if !self.branches.contains(&branch) {
            return Err(ReserveError::UnknownSlot);
        }
        if start >= MAX_SLOTS {
            return Err(ReserveError::UnknownSlot);
        }
        let last = (end - 1).min(MAX_SLOTS - 1);
        let existing = self.earliest_existing(branch, start, last, applicant);
        if !existing.is_empty() {
            return Ok(existing);
        }
        if self.active_of(applicant) >= APPLICANT_LIMIT {
            return Err(ReserveError::ApplicantLimit);
        }
        let slot = (start..=last).find(|&s| {
            self.capacity.contains_key(&(branch, s))
                && self.taken(branch, s) < self.word_cap(branch, s)
        });
        match slot {
            Some(s) => Ok(vec![self.grant(branch, s, applicant)]),
            None => Err(ReserveError::NoneAvailable),
        }
    }

    /// `reserve_earliest_among`: the earliest slot with room across `branches` (ties: the one
    /// named first), or (`reserve_among(.., FirstBranch)`) the first branch with room and its
    /// earliest slot.
    pub fn reserve_among(
        &mut self,
        branches: &[BranchId],
        start: u32,
        end: u32,
        applicant: ApplicantId,
        first_branch: bool,
    ) -> Result<Vec<ModelHold>, ReserveError> {
        if branches.is_empty() || branches.len() > surgegate::book::MAX_ALTERNATIVES {
            return Err(ReserveError::Alternatives {
                max: surgegate::book::MAX_ALTERNATIVES as u32,
            });
        }
        if start >= end {
            return Err(ReserveError::EmptyRange);
        }
        if !branches.iter().any(|b| self.branches.contains(b)) || start >= MAX_SLOTS {
            return Err(ReserveError::UnknownSlot);
        }
        let last = (end - 1).min(MAX_SLOTS - 1);
        let existing: Vec<ModelHold> = branches
            .iter()
            .flat_map(|&b| self.earliest_existing(b, start, last, applicant))
            .collect();
        if !existing.is_empty() {
            return Ok(existing);
        }
        if self.active_of(applicant) >= APPLICANT_LIMIT {
            return Err(ReserveError::ApplicantLimit);
        }
        let earliest = |b: BranchId| {
            (start..=last).find(|&s| {
                self.capacity.contains_key(&(b, s)) && self.taken(b, s) < self.word_cap(b, s)
            })
        };
        let candidates = branches.iter().filter_map(|&b| earliest(b).map(|s| (b, s)));
        let pick = if first_branch {
            candidates.clone().next()
        } else {
            candidates.clone().min_by_key(|&(_, s)| s)
        };
        match pick {
            Some((b, s)) => Ok(vec![self.grant(b, s, applicant)]),
            None => Err(ReserveError::NoneAvailable),
        }
    }

    /// `Ok(booking)`; or the set of acceptable errors.
    pub fn confirm(&mut self, id: usize) -> Result<ModelHold, Vec<ConfirmError>> {
        if let Some(h) = self.holds.iter_mut().find(|h| h.id == id) {
            h.booked = true;
            return Ok(*h);
        }
        if self.expired.contains(&id) {
            // Expired: `Expired` until reclaimed, `UnknownToken` after.
            return Err(vec![ConfirmError::Expired, ConfirmError::UnknownToken]);
        }
        Err(vec![ConfirmError::UnknownToken])
    }

    pub fn release(&mut self, id: usize) -> Result<(), ReleaseError> {
        match self.holds.iter().position(|h| h.id == id) {
            Some(i) => {
                self.holds.remove(i);
                Ok(())
            }
            None => Err(ReleaseError::UnknownToken),
        }
    }

    pub fn booking(&self, id: usize) -> Option<ModelHold> {
        self.holds.iter().find(|h| h.id == id && h.booked).copied()
    }

    /// Applies an op for its effect only (the state-machine test's reference transition). Ops
    /// that name holds by position in the harness's token list are not modelled here.
    pub fn apply(&mut self, op: &BookOp) {
        match *op {
            BookOp::SetCapacity {
                branch,
                slot,
                capacity,
            } => {
                let _ = self.set_capacity(branch_of(branch), slot_of(slot), capacity_of(capacity));
            }
            BookOp::Reserve {
                branch,
                slot,
                applicant,
            } => {
                let _ = self.reserve(branch_of(branch), slot_of(slot), applicant_of(applicant));
            }
            BookOp::ReserveEarliest {
                branch,
                start,
                end,
                applicant,
            } => {
                let _ = self.reserve_earliest(
                    branch_of(branch),
                    slot_of(start),
                    slot_of(end),
                    applicant_of(applicant),
                );
            }
            BookOp::ReserveAmong {
                branches,
                count,
                start,
                end,
                applicant,
                first_branch,
            } => {
                let _ = self.reserve_among(
                    &among_of(branches, count),
                    slot_of(start),
                    slot_of(end),
                    applicant_of(applicant),
                    first_branch,
                );
            }
            BookOp::CloseSlot { branch, slot } => {
                let _ = self.close_slot(branch_of(branch), slot_of(slot));
            }
            BookOp::ConfirmId { id } => {
                let _ = self.confirm(usize::from(id));
            }
            BookOp::ReleaseId { id } => {
                let _ = self.release(usize::from(id));
            }
            BookOp::AdvanceMs { ms } => self.advance(u64::from(ms) * 1_000_000),
            BookOp::SetQuota {
                branch,
                slot,
                channel,
                quota,
            } => {
                let (b, s) = (branch_of(branch), slot_of(slot));
                let _ = self.set_quota(b, s, channel_of(channel).0, quota_of(quota));
            }
            BookOp::ReserveOn {
                channel,
                branch,
                slot,
                applicant,
            } => {
                let (b, s, a) = (branch_of(branch), slot_of(slot), applicant_of(applicant));
                let _ = self.reserve_on(channel_of(channel).0, b, s, a);
            }
            BookOp::OpenQuotas { branch, slot } => {
                let _ = self.open_quotas(branch_of(branch), slot_of(slot));
            }
            BookOp::OpenQuotasIn { branch, start, end } => {
                let _ = self.open_quotas_in(branch_of(branch), slot_of(start), slot_of(end));
            }
            BookOp::Confirm { .. } | BookOp::Release { .. } => {
                unreachable!("position-based ops are not generated by the state machine")
            }
            BookOp::Booking { .. }
            | BookOp::ConfirmForged { .. }
            | BookOp::ReleaseForged { .. }
            | BookOp::Slot { .. }
            | BookOp::Availability { .. }
            | BookOp::Sweep => {}
        }
    }
}

/// The real book and the model, side by side.
pub struct BookHarness {
    pub clock: ManualClock,
    pub book: SlotBook<ManualClock>,
    pub model: BookModel,
    /// Tokens issued, with the model's id for each.
    pub tokens: Vec<(HoldToken, usize)>,
    pub by_token: HashMap<HoldToken, usize>,
    pub steps: usize,
    /// How often each kind of outcome happened, to show what a run covered.
    pub outcomes: BTreeMap<String, usize>,
    /// Compare every open slot with the model after every step. Readings reclaim expired holds
    /// (rule 2), so a harness that reads everything never lets an expired hold linger; with this
    /// off, only the non-mutating `check_invariants` runs between steps and the lazy paths
    /// (confirming or re-reserving over an unreclaimed expired hold, `sweep`) get exercised.
    pub read_every_step: bool,
    /// Run the whole check (`check`) after every this many steps, and after the others only
    /// the slot the step named (`check_slot`). 1 (the default): the whole check every step.
    /// The fuzz target raises it, for speed, and runs `check` once more at the end.
    pub full_check_every: usize,
    /// Count outcomes in `outcomes` (off in the fuzz target: a string per step).
    pub record_outcomes: bool,
}

impl Default for BookHarness {
    fn default() -> Self {
        Self::new(4)
    }
}

impl BookHarness {
    pub fn new(shards: u32) -> Self {
        let clock = ManualClock::new();
        let book = SlotBook::builder()
            .hold_ttl(Duration::from_millis(TTL_MS))
            .max_active_per_applicant(APPLICANT_LIMIT as u32)
            .max_branches(MAX_BRANCHES as u32)
            .max_slots_per_branch(MAX_SLOTS)
            .shards(shards)
            .clock(clock.clone())
            .build();
        Self {
            clock,
            book,
            model: BookModel::default(),
            tokens: Vec::new(),
            by_token: HashMap::new(),
            steps: 0,
            outcomes: BTreeMap::new(),
            read_every_step: true,
            full_check_every: 1,
            record_outcomes: true,
        }
    }

    /// Half the time one of the three newest tokens (likely live), else any token.
    fn pick(&self, i: u16) -> Option<(HoldToken, usize)> {
        let n = self.tokens.len();
        if n == 0 {
            return None;
        }
        let i = usize::from(i);
        let k = if i % 2 == 0 {
            n - 1 - (i / 2) % n.min(3)
        } else {
            (i / 2) % n
        };
        Some(self.tokens[k])
    }

    /// Checks that a hold the book returned is the model's hold `m` (same id, same fields).
    /// The book's answer is the model's: the same error, or a hold that is one of the model's
    /// acceptable ones.
    fn same_reservation(
        &mut self,
        call: &str,
        real: &Result<surgegate::Hold, ReserveError>,
        model: &Result<Vec<ModelHold>, ReserveError>,
    ) -> Result<(), String> {
        match (real, model) {
            (Ok(r), Ok(options)) => {
                let Some(m) = options
                    .iter()
                    .find(|m| self.by_token.get(&r.token).is_none_or(|&id| id == m.id))
                    .copied()
                else {
                    return Err(format!("{call}: book {r:?} is none of {options:?}"));
                };
                self.same_hold(r, &m)
            }
            (Err(r), Err(m)) if r == m => Ok(()),
            _ => Err(format!("{call}: book {real:?}, model {model:?}")),
        }
    }

    fn same_hold(&mut self, real: &surgegate::Hold, m: &ModelHold) -> Result<(), String> {
        match self.by_token.get(&real.token) {
            Some(&id) if id != m.id => {
                return Err(format!(
                    "book returned hold #{id}, model expected #{}",
                    m.id
                ));
            }
            Some(_) => {}
            None => {
                if m.id + 1 != self.model.next_id || self.tokens.iter().any(|&(_, i)| i == m.id) {
                    return Err(format!(
                        "book issued a new token where the model returns hold #{}",
                        m.id
                    ));
                }
                self.tokens.push((real.token, m.id));
                self.by_token.insert(real.token, m.id);
            }
        }
        let expected = (
            m.branch,
            m.slot,
            m.applicant,
            Duration::from_nanos(m.expires_ns),
        );
        let got = (real.branch, real.slot, real.applicant, real.expires_at);
        if expected != got {
            return Err(format!(
                "hold fields differ: book {got:?}, model {expected:?}"
            ));
        }
        Ok(())
    }

    fn note(&mut self, what: &str, outcome: impl std::fmt::Debug) {
        if !self.record_outcomes {
            return;
        }
        let o = format!("{outcome:?}");
        let kind = o.split(['(', ' ', '{']).next().unwrap_or("").to_string();
        *self.outcomes.entry(format!("{what}:{kind}")).or_default() += 1;
    }

    /// Confirms hold `id` in the book and in the model, and compares the answers.
    fn confirm_both(&mut self, token: HoldToken, id: usize) -> Result<(), String> {
        let real = self.book.confirm(token);
        self.note("confirm", real.as_ref().map(|_| ()));
        let model = self.model.confirm(id);
        match (&real, &model) {
            (Ok(r), Ok(m))
                if (r.branch, r.slot, r.applicant, r.token)
                    == (m.branch, m.slot, m.applicant, token) =>
            {
                Ok(())
            }
            (Err(r), Err(allowed)) if allowed.contains(r) => Ok(()),
            _ => Err(format!("confirm(#{id}): book {real:?}, model {model:?}")),
        }
    }

    /// Releases hold `id` in the book and in the model, and compares the answers.
    fn release_both(&mut self, token: HoldToken, id: usize) -> Result<(), String> {
        let real = self.book.release(token);
        self.note("release", real);
        let model = self.model.release(id);
        if real != model {
            return Err(format!("release(#{id}): book {real:?}, model {model:?}"));
        }
        Ok(())
    }

    /// Applies one op to both; returns a description of the first disagreement.
    pub fn step(&mut self, op: &BookOp) -> Result<(), String> {
        self.steps += 1;
        match *op {
            BookOp::SetCapacity {
                branch,
                slot,
                capacity,
            } => {
                let (b, s, c) = (branch_of(branch), slot_of(slot), capacity_of(capacity));
                let real = self.book.set_capacity(b, s, c);
                self.note("set_capacity", real.as_ref().map(|_| ()));
                let model = self.model.set_capacity(b, s, c);
                if real != model {
                    return Err(format!(
                        "set_capacity({b:?}, {s}, {c}): book {real:?}, model {model:?}"
                    ));
                }
            }
            BookOp::Reserve {
                branch,
                slot,
                applicant,
            } => {
                let (b, s, a) = (branch_of(branch), slot_of(slot), applicant_of(applicant));
                let real = self.book.reserve(b, s, a);
                self.note("reserve", real.as_ref().map(|_| ()));
                let model = self.model.reserve(b, s, a);
                match (&real, &model) {
                    (Ok(r), Ok(m)) => self.same_hold(r, m)?,
                    (Err(r), Err(m)) if r == m => {}
                    _ => {
                        return Err(format!(
                            "reserve({b:?}, {s}, {a:?}): book {real:?}, model {model:?}"
                        ));
                    }
                }
            }
            BookOp::ReserveEarliest {
                branch,
                start,
                end,
                applicant,
            } => {
                let (b, a) = (branch_of(branch), applicant_of(applicant));
                let (s, e) = (slot_of(start), slot_of(end));
                let real = self.book.reserve_earliest(b, s..e, a);
                self.note("reserve_earliest", real.as_ref().map(|_| ()));
                let model = self.model.reserve_earliest(b, s, e, a);
                let call = format!("reserve_earliest({b:?}, {s}..{e}, {a:?})");
                self.same_reservation(&call, &real, &model)?;
            }
            BookOp::ReserveAmong {
                branches,
                count,
                start,
                end,
                applicant,
                first_branch,
            } => {
                let bs = among_of(branches, count);
                let (s, e, a) = (slot_of(start), slot_of(end), applicant_of(applicant));
                let real = if first_branch {
                    self.book
                        .reserve_among(&bs, s..e, a, Preference::FirstBranch)
                } else {
                    self.book.reserve_earliest_among(&bs, s..e, a)
                };
                self.note("reserve_among", real.as_ref().map(|_| ()));
                let model = self.model.reserve_among(&bs, s, e, a, first_branch);
                let call = format!("reserve_among({bs:?}, {s}..{e}, {a:?}, first {first_branch})");
                self.same_reservation(&call, &real, &model)?;
            }
            BookOp::CloseSlot { branch, slot } => {
                let (b, sl) = (branch_of(branch), slot_of(slot));
                let real = self.book.close_slot(b, sl);
                self.note("close_slot", real.as_ref().map(|_| ()));
                let model = self.model.close_slot(b, sl);
                if real != model {
                    return Err(format!(
                        "close_slot({b:?}, {sl}): book {real:?}, model {model:?}"
                    ));
                }
            }
            BookOp::Confirm { hold } => {
                let Some((token, id)) = self.pick(hold) else {
                    return Ok(());
                };
                self.confirm_both(token, id)?;
            }
            BookOp::Release { hold } => {
                let Some((token, id)) = self.pick(hold) else {
                    return Ok(());
                };
                self.release_both(token, id)?;
            }
            BookOp::ConfirmId { id } | BookOp::ReleaseId { id } => {
                let id = usize::from(id);
                if let Some(&(token, _)) = self.tokens.iter().find(|&&(_, i)| i == id) {
                    if matches!(op, BookOp::ConfirmId { .. }) {
                        self.confirm_both(token, id)?;
                    } else {
                        self.release_both(token, id)?;
                    }
                }
            }
            BookOp::Booking { hold } => {
                let Some((token, id)) = self.pick(hold) else {
                    return Ok(());
                };
                let real = self
                    .book
                    .booking(token)
                    .map(|b| (b.branch, b.slot, b.applicant, b.token));
                let model = self
                    .model
                    .booking(id)
                    .map(|m| (m.branch, m.slot, m.applicant, token));
                if real != model {
                    return Err(format!("booking(#{id}): book {real:?}, model {model:?}"));
                }
            }
            BookOp::ConfirmForged { bits } => {
                let token: HoldToken =
                    format!("{bits:032x}").parse().map_err(|e| format!("{e}"))?;
                if !self.by_token.contains_key(&token) {
                    let real = self.book.confirm(token);
                    if real != Err(ConfirmError::UnknownToken) {
                        return Err(format!("confirm of a forged token: {real:?}"));
                    }
                }
            }
            BookOp::ReleaseForged { bits } => {
                let token: HoldToken =
                    format!("{bits:032x}").parse().map_err(|e| format!("{e}"))?;
                if !self.by_token.contains_key(&token) {
                    let real = self.book.release(token);
                    if real != Err(ReleaseError::UnknownToken) {
                        return Err(format!("release of a forged token: {real:?}"));
                    }
                }
            }
            BookOp::Slot { branch, slot } => {
                let (b, s) = (branch_of(branch), slot_of(slot));
                let real = self.book.slot(b, s);
                let model = self.model.state(b, s);
                if real != model {
                    return Err(format!("slot({b:?}, {s}): book {real:?}, model {model:?}"));
                }
            }
            BookOp::Availability { branch, start, end } => {
                let (b, s, e) = (branch_of(branch), slot_of(start), slot_of(end));
                let real = self.book.availability(b, s..e);
                let model: Vec<_> = (s..e.min(MAX_SLOTS))
                    .filter_map(|x| self.model.state(b, x).map(|st| (x, st)))
                    .collect();
                if real != model {
                    return Err(format!(
                        "availability({b:?}, {s}..{e}): book {real:?}, model {model:?}"
                    ));
                }
            }
            BookOp::AdvanceMs { ms } => {
                let by = Duration::from_millis(u64::from(ms));
                self.clock.advance(by);
                self.model.advance(by.as_nanos() as u64);
            }
            BookOp::SetQuota {
                branch,
                slot,
                channel,
                quota,
            } => {
                let (b, s, c, q) = (
                    branch_of(branch),
                    slot_of(slot),
                    channel_of(channel),
                    quota_of(quota),
                );
                let real = self.book.set_channel_quota(b, s, c, q);
                self.note("set_channel_quota", real.as_ref().map(|_| ()));
                let model = self.model.set_quota(b, s, c.0, q);
                if real != model {
                    return Err(format!(
                        "set_channel_quota({b:?}, {s}, {c:?}, {q}): book {real:?}, model {model:?}"
                    ));
                }
            }
            BookOp::ReserveOn {
                channel,
                branch,
                slot,
                applicant,
            } => {
                let (c, b, s, a) = (
                    channel_of(channel),
                    branch_of(branch),
                    slot_of(slot),
                    applicant_of(applicant),
                );
                let real = self.book.reserve_on(c, b, s, a);
                self.note("reserve_on", real.as_ref().map(|_| ()));
                let model = self.model.reserve_on(c.0, b, s, a);
                match (&real, &model) {
                    (Ok(r), Ok(m)) => self.same_hold(r, m)?,
                    (Err(r), Err(m)) if r == m => {}
                    _ => {
                        return Err(format!(
                            "reserve_on({c:?}, {b:?}, {s}, {a:?}): book {real:?}, model {model:?}"
                        ));
                    }
                }
            }
            BookOp::OpenQuotas { branch, slot } => {
                let (b, s) = (branch_of(branch), slot_of(slot));
                let real = self.book.open_channel_quotas(b, s);
                self.note("open_channel_quotas", real.as_ref().map(|_| ()));
                let model = self.model.open_quotas(b, s);
                if real != model {
                    return Err(format!(
                        "open_channel_quotas({b:?}, {s}): book {real:?}, model {model:?}"
                    ));
                }
            }
            BookOp::OpenQuotasIn { branch, start, end } => {
                let (b, s, e) = (branch_of(branch), slot_of(start), slot_of(end));
                let real = self.book.open_channel_quotas_in(b, s..e);
                let model = self.model.open_quotas_in(b, s, e);
                if real != Ok(model) {
                    return Err(format!(
                        "open_channel_quotas_in({b:?}, {s}..{e}): book {real:?}, model {model}"
                    ));
                }
            }
            BookOp::Sweep => {
                let n = self.book.sweep();
                self.note("sweep", if n > 0 { "reclaimed" } else { "none" });
                let totals = self.book.check_invariants().map_err(|e| e.to_string())?;
                if totals.expired_holds != 0 {
                    return Err(format!(
                        "{} expired holds left after sweep",
                        totals.expired_holds
                    ));
                }
            }
        }
        if self.steps.is_multiple_of(self.full_check_every.max(1)) {
            return self.check();
        }
        match touched(op) {
            Some((b, s)) if self.read_every_step => self.check_slot(b, s),
            _ => Ok(()),
        }
    }

    /// The invariants, checked after every step: the book's own consistency check; every slot
    /// equal to the model's; no overbooking unless capacity was lowered; conservation.
    pub fn check(&self) -> Result<(), String> {
        let totals = self.book.check_invariants().map_err(|e| e.to_string())?;
        let live_bookings = self.model.holds.iter().filter(|h| h.booked).count() as u64;
        if totals.bookings != live_bookings {
            return Err(format!(
                "book has {} bookings, model {live_bookings}",
                totals.bookings
            ));
        }
        let live_holds = self.model.holds.iter().filter(|h| !h.booked).count() as u64;
        if totals.holds - totals.expired_holds != live_holds {
            return Err(format!(
                "book has {} live holds, model {live_holds}",
                totals.holds - totals.expired_holds
            ));
        }
        if !self.read_every_step {
            return Ok(());
        }
        for &(b, s) in self.model.capacity.keys() {
            self.check_slot(b, s)?;
        }
        Ok(())
    }

    /// One slot: its reading equal to the model's, not overbooked unless its capacity was
    /// lowered, conservation, and its channels (a slot never opened reads as none in both).
    pub fn check_slot(&self, b: BranchId, s: u32) -> Result<(), String> {
        let real = self.book.slot(b, s);
        let model = self.model.state(b, s);
        if real != model {
            return Err(format!(
                "after step {}: slot ({b:?}, {s}): book {real:?}, model {model:?}",
                self.steps
            ));
        }
        let Some(st) = real else {
            // Closed or never opened: out of every reading, as the model says.
            return Ok(());
        };
        if st.held + st.booked > st.capacity && !self.model.lowered.contains(&(b, s)) {
            return Err(format!("slot ({b:?}, {s}) overbooked: {st:?}"));
        }
        if st.remaining() != st.capacity.saturating_sub(st.held + st.booked) {
            return Err(format!(
                "slot ({b:?}, {s}): remaining {} breaks conservation",
                st.remaining()
            ));
        }
        self.check_channels(b, s)
    }

    /// A slot's channels against the model, and the channel rules: the quotas fit the
    /// capacity; a channel never holds and books more than its quota plus the open part
    /// (unless the capacity or its quota was lowered below what it took).
    fn check_channels(&self, b: BranchId, s: u32) -> Result<(), String> {
        let real = self.book.channel_quotas(b, s);
        let Some((whole, qs)) = self.model.quotas.get(&(b, s)) else {
            return match real {
                None => Ok(()),
                Some(q) => Err(format!("slot ({b:?}, {s}) has quotas {q:?}, model none")),
            };
        };
        let Some(real) = real else {
            return Err(format!("slot ({b:?}, {s}) has no quotas, model {qs:?}"));
        };
        let model: Vec<surgegate::ChannelState> = qs
            .iter()
            .map(|(&c, &quota)| {
                let (taken, from_quota) = self.model.channel_taken(b, s, c);
                surgegate::ChannelState {
                    channel: Channel(c),
                    quota,
                    from_quota,
                    taken,
                }
            })
            .collect();
        if real.capacity != *whole || real.channels != model {
            return Err(format!(
                "after step {}: quotas of ({b:?}, {s}): book {real:?}, model {whole} {model:?}",
                self.steps
            ));
        }
        let kept: u64 = model.iter().map(|c| u64::from(c.quota)).sum();
        if kept > u64::from(real.capacity) {
            return Err(format!("slot ({b:?}, {s}): quotas {kept} above capacity"));
        }
        let open_part = real.capacity - kept as u32;
        for c in &model {
            if c.taken > c.quota + open_part && !self.model.lowered.contains(&(b, s)) {
                return Err(format!(
                    "slot ({b:?}, {s}): {:?} took {} of quota {} plus open part {open_part}",
                    c.channel, c.taken, c.quota
                ));
            }
        }
        Ok(())
    }
}

/// The one slot an op names, if it names one (ops over ranges or holds name none).
pub fn touched(op: &BookOp) -> Option<(BranchId, u32)> {
    match *op {
        BookOp::SetCapacity { branch, slot, .. }
        | BookOp::Reserve { branch, slot, .. }
        | BookOp::CloseSlot { branch, slot }
        | BookOp::Slot { branch, slot }
        | BookOp::SetQuota { branch, slot, .. }
        | BookOp::ReserveOn { branch, slot, .. }
        | BookOp::OpenQuotas { branch, slot } => Some((branch_of(branch), slot_of(slot))),
        _ => None,
    }
}

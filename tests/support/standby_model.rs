//! Standby operations and the harness that checks them: each operation is applied to a real
//! `SlotBook`, its answer checked against what the harness knows (the line's order, each
//! applicant's holds, bookings and request, and the slots as the book shows them), then every
//! offer is collected and the first-come order of offers checked, then `check_invariants`.
//!
//! The harness knows the line exactly (it saw every ticket and every leave), but not which unit
//! goes where: that depends on which hold lapses first. So it checks the order of offers as a
//! property: when a request is found served at a slot, no request that joined before it and
//! covers that slot may still be waiting. Some applicants are "absent": their offers are never
//! collected, so they lapse unclaimed and pass on; they are left out of that property (their
//! state is not observed) but not out of the invariants.
//!
//! Used by `tests/book_standby_model.rs` (proptest and a long seeded run); a fuzz target can
//! drive it the same way: `StandbyHarness::new()`, then `apply` per decoded `StandbyOp`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use surgegate::{
    ApplicantId, BranchId, CapacityError, Channel, HoldToken, ManualClock, ReserveError, SlotBook,
    StandbyError,
};

/// Branches 1 and 2, slots 0..SLOTS.
pub const SLOTS: u32 = 6;
pub const APPLICANTS: u64 = 10;
pub const TTL: Duration = Duration::from_secs(60);
pub const LIMIT: usize = 2;

/// One step, with small fields a generator or a fuzzer maps into range.
#[derive(Clone, Debug)]
pub enum StandbyOp {
    SetCapacity {
        branch: u8,
        slot: u8,
        capacity: u8,
    },
    Reserve {
        branch: u8,
        slot: u8,
        applicant: u8,
    },
    ReserveEarliest {
        branch: u8,
        applicant: u8,
    },
    Confirm {
        applicant: u8,
    },
    Release {
        applicant: u8,
        booked: bool,
    },
    Standby {
        applicant: u8,
        branches: u8,
        first: u8,
        len: u8,
    },
    Offer {
        applicant: u8,
    },
    Leave {
        applicant: u8,
    },
    SetQuota {
        slot: u8,
        quota: u8,
    },
    ReserveOn {
        slot: u8,
        applicant: u8,
    },
    OpenQuotas {
        slot: u8,
    },
    CloseSlot {
        branch: u8,
        slot: u8,
    },
    AdvanceMs {
        ms: u32,
    },
    Sweep,
}

/// A request the harness saw join.
#[derive(Clone, Debug)]
struct Request {
    number: u64,
    branches: Vec<BranchId>,
    first: u32,
    last: u32,
}

pub struct StandbyHarness {
    pub book: SlotBook<ManualClock>,
    waiting: BTreeMap<ApplicantId, Request>,
    /// Offers found, in the order found: (applicant, branch, slot).
    pub served: Vec<(ApplicantId, BranchId, u32)>,
}

fn branch(b: u8) -> BranchId {
    BranchId(1 + u32::from(b % 2))
}

fn applicant(a: u8) -> ApplicantId {
    ApplicantId(u64::from(a) % APPLICANTS)
}

/// Applicants 8 and 9 never collect their offers.
fn is_absent(a: ApplicantId) -> bool {
    a.0 >= 8
}

impl StandbyHarness {
    pub fn new() -> Self {
        let book = SlotBook::builder()
            .hold_ttl(TTL)
            .max_active_per_applicant(LIMIT as u32)
            .max_standby_requests(6)
            .shards(2)
            .clock(ManualClock::new())
            .build();
        Self {
            book,
            waiting: BTreeMap::new(),
            served: Vec::new(),
        }
    }

    /// The applicant's live holds, newest first by token order of the book.
    fn holds(&self, a: ApplicantId) -> Vec<HoldToken> {
        self.book.holds_of(a).into_iter().map(|h| h.token).collect()
    }

    /// The first slot covered by `branches` × `first..=last` with a unit free to reserve.
    fn free_unit(&self, branches: &[BranchId], first: u32, last: u32) -> Option<(BranchId, u32)> {
        branches.iter().find_map(|&b| {
            self.book
                .availability(b, first..=last)
                .into_iter()
                .find(|(_, st)| st.remaining() > 0)
                .map(|(s, _)| (b, s))
        })
    }

    fn active(&self, a: ApplicantId) -> usize {
        self.book.holds_of(a).len()
            + self.book.bookings_of(a).len()
            + usize::from(self.waiting.contains_key(&a))
    }

    pub fn apply(&mut self, op: &StandbyOp) {
        self.step(op);
        self.collect_offers();
        if let Err(e) = self.book.check_invariants() {
            panic!("after {op:?}: {e}");
        }
    }

    fn step(&mut self, op: &StandbyOp) {
        let book = &self.book;
        match *op {
            StandbyOp::SetCapacity {
                branch: b,
                slot,
                capacity,
            } => {
                let r =
                    book.set_capacity(branch(b), u32::from(slot) % SLOTS, u32::from(capacity % 4));
                // Below the slot's channel quotas is refused, and changes nothing.
                assert!(
                    matches!(r, Ok(_) | Err(CapacityError::QuotasAboveCapacity { .. })),
                    "{r:?}"
                );
            }
            StandbyOp::Reserve {
                branch: b,
                slot,
                applicant: a,
            } => {
                let a = applicant(a);
                let r = book.reserve(branch(b), u32::from(slot) % SLOTS, a);
                if r == Err(ReserveError::ApplicantLimit) {
                    assert!(self.active(a) >= LIMIT, "{a} refused below its limit");
                }
            }
            StandbyOp::ReserveEarliest {
                branch: b,
                applicant: a,
            } => {
                let _ = book.reserve_earliest(branch(b), 0..SLOTS, applicant(a));
            }
            StandbyOp::Confirm { applicant: a } => {
                if let Some(&t) = self.holds(applicant(a)).first() {
                    book.confirm(t).unwrap();
                }
            }
            StandbyOp::Release {
                applicant: a,
                booked,
            } => {
                let a = applicant(a);
                let token = if booked {
                    book.bookings_of(a).first().map(|b| b.token)
                } else {
                    self.holds(a).first().copied()
                };
                if let Some(t) = token {
                    book.release(t).unwrap();
                }
            }
            StandbyOp::Standby {
                applicant: a,
                branches,
                first,
                len,
            } => {
                self.join(applicant(a), branches, first, len);
            }
            StandbyOp::Offer { applicant: a } => {
                // The only way an absent applicant's offer is ever claimed (besides its own
                // reservations); a present one's is its hold, already collected.
                if let Some(h) = book.standby_offer(applicant(a)) {
                    assert_eq!(h.applicant, applicant(a));
                }
            }
            StandbyOp::Leave { applicant: a } => {
                let a = applicant(a);
                if is_absent(a) {
                    // Its request may have been given an offer the harness never saw.
                    if book.leave_standby(a) {
                        assert!(
                            self.waiting.remove(&a).is_some(),
                            "{a} left a request it never made"
                        );
                    } else {
                        self.waiting.remove(&a);
                    }
                    return;
                }
                let left = book.leave_standby(a);
                assert_eq!(left, self.waiting.remove(&a).is_some(), "leave of {a}");
            }
            StandbyOp::SetQuota { slot, quota } => {
                let _ = book.set_channel_quota(
                    BranchId(1),
                    u32::from(slot) % SLOTS,
                    Channel(1),
                    u32::from(quota % 3),
                );
            }
            StandbyOp::ReserveOn { slot, applicant: a } => {
                let _ = book.reserve_on(
                    Channel(1),
                    BranchId(1),
                    u32::from(slot) % SLOTS,
                    applicant(a),
                );
            }
            StandbyOp::OpenQuotas { slot } => {
                let _ = book.open_channel_quotas(BranchId(1), u32::from(slot) % SLOTS);
            }
            StandbyOp::CloseSlot { branch: b, slot } => {
                let _ = book.close_slot(branch(b), u32::from(slot) % SLOTS);
            }
            StandbyOp::AdvanceMs { ms } => book
                .clock()
                .advance(Duration::from_millis(u64::from(ms % 90_000))),
            StandbyOp::Sweep => {
                book.sweep();
            }
        }
    }

    /// `standby`, with its answer checked: `UnitFree` exactly when a covered unit is free (the
    /// first, in branch order then slot order), `ApplicantLimit` exactly at the limit, a retry
    /// the same number, `LineFull` only with six waiting.
    fn join(&mut self, a: ApplicantId, branches: u8, first: u8, len: u8) {
        let list: Vec<BranchId> = match branches % 3 {
            0 => vec![BranchId(1)],
            1 => vec![BranchId(2)],
            _ => vec![BranchId(2), BranchId(1)],
        };
        let first = u32::from(first) % SLOTS;
        let last = (first + u32::from(len % 4)).min(SLOTS - 1);
        // Readings first reclaim what lapsed, as `standby` does: the same view.
        self.book.sweep();
        self.collect_offers();
        let free = self.free_unit(&list, first, last);
        let retry = self.waiting.get(&a).map(|r| r.number);
        let active = self.active(a);
        let r = self.book.standby(a, &list, first..=last);
        if is_absent(a) {
            // Its request may have been served unseen: only the free unit is checked.
            match (&r, free) {
                (Err(StandbyError::UnitFree { branch, slot }), Some(f)) => {
                    assert_eq!((*branch, *slot), f)
                }
                (_, Some(f)) => panic!("standby of {a} answered {r:?} with {f:?} free"),
                (Ok(t), None) => {
                    let request = Request {
                        number: t.number,
                        branches: list,
                        first,
                        last,
                    };
                    if self.waiting.get(&a).is_none_or(|r| r.number != t.number) {
                        self.waiting.insert(a, request);
                    }
                }
                (Err(_), None) => {}
            }
            return;
        }
        match (r, free, retry) {
            (Err(StandbyError::UnitFree { branch, slot }), Some(f), _) => {
                assert_eq!((branch, slot), f, "the first free unit")
            }
            (_, Some(f), _) => panic!("standby of {a} answered {r:?} with {f:?} free"),
            (Ok(t), None, Some(n)) => assert_eq!(t.number, n, "a retry keeps its place"),
            (Err(e), None, Some(_)) => panic!("a retry of {a} refused: {e}"),
            (Err(StandbyError::ApplicantLimit), None, None) => assert!(active >= LIMIT),
            (Err(StandbyError::LineFull { .. }), None, None) => {
                // The harness's waiting requests are a superset of the book's.
                assert!(
                    self.waiting.len() >= 6,
                    "line full with {} waiting",
                    self.waiting.len()
                )
            }
            (Ok(t), None, None) => {
                assert!(active < LIMIT, "{a} joined at its limit");
                assert!(
                    self.waiting.values().all(|r| r.number < t.number),
                    "numbers grow in joining order"
                );
                self.waiting.insert(
                    a,
                    Request {
                        number: t.number,
                        branches: list,
                        first,
                        last,
                    },
                );
            }
            (Err(e), None, None) => panic!("standby of {a} refused: {e:?}"),
        }
    }

    /// Collects every present applicant's offer and checks the first-come order.
    fn collect_offers(&mut self) {
        let present: Vec<ApplicantId> = self
            .waiting
            .keys()
            .copied()
            .filter(|&a| !is_absent(a))
            .collect();
        let mut found = Vec::new();
        for a in present {
            if let Some(h) = self.book.standby_offer(a) {
                let r = &self.waiting[&a];
                assert_eq!(h.applicant, a);
                assert!(
                    r.branches.contains(&h.branch) && (r.first..=r.last).contains(&h.slot),
                    "{a} given {h:?} outside its request {r:?}"
                );
                found.push((a, h.branch, h.slot));
            }
        }
        let mut served = Vec::new();
        for &(a, b, s) in &found {
            served.push((self.waiting.remove(&a).map(|r| r.number), b, s));
        }
        for (number, b, s) in served {
            let number = number.unwrap_or(u64::MAX);
            for (w, r) in &self.waiting {
                let covers = r.branches.contains(&b) && (r.first..=r.last).contains(&s);
                assert!(
                    is_absent(*w) || !covers || r.number > number,
                    "{w} (request {}) still waits for {b} slot {s}, given to request {number}",
                    r.number
                );
            }
        }
        self.served.extend(found);
    }
}

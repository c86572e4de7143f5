//! Random sequences of book and standby operations (`support/standby_model.rs`): after every
//! step each answer the harness can predict is checked, every offer is collected and the
//! first-come order of offers checked, and the whole book (with its standby line) is audited.
//! Then a long seeded run of the same, and threads racing the same calls under the audit.

#[path = "support/standby_model.rs"]
mod standby_model;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use standby_model::{StandbyHarness, StandbyOp};
use surgegate::{ApplicantId, BranchId, ManualClock, SlotBook};

fn op() -> impl Strategy<Value = StandbyOp> {
    prop_oneof![
        3 => (any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(branch, slot, capacity)| StandbyOp::SetCapacity { branch, slot, capacity }),
        5 => (any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(branch, slot, applicant)| StandbyOp::Reserve { branch, slot, applicant }),
        2 => (any::<u8>(), any::<u8>())
            .prop_map(|(branch, applicant)| StandbyOp::ReserveEarliest { branch, applicant }),
        3 => any::<u8>().prop_map(|applicant| StandbyOp::Confirm { applicant }),
        4 => (any::<u8>(), any::<bool>())
            .prop_map(|(applicant, booked)| StandbyOp::Release { applicant, booked }),
        5 => (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()).prop_map(
            |(applicant, branches, first, len)| StandbyOp::Standby { applicant, branches, first, len }
        ),
        1 => any::<u8>().prop_map(|applicant| StandbyOp::Offer { applicant }),
        2 => any::<u8>().prop_map(|applicant| StandbyOp::Leave { applicant }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(slot, quota)| StandbyOp::SetQuota { slot, quota }),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(slot, applicant)| StandbyOp::ReserveOn { slot, applicant }),
        1 => any::<u8>().prop_map(|slot| StandbyOp::OpenQuotas { slot }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(branch, slot)| StandbyOp::CloseSlot { branch, slot }),
        3 => any::<u32>().prop_map(|ms| StandbyOp::AdvanceMs { ms }),
        1 => Just(StandbyOp::Sweep),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn standby_keeps_every_rule_and_the_first_come_order(ops in prop::collection::vec(op(), 1..80)) {
        let mut h = StandbyHarness::new();
        for op in &ops {
            h.apply(op);
        }
    }
}

/// A small deterministic generator (xorshift), so the long run needs no seed file.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

fn random_op(rng: &mut Rng) -> StandbyOp {
    let (a, b, c, d) = (rng.byte(), rng.byte(), rng.byte(), rng.byte());
    match rng.next() % 16 {
        0 | 1 => StandbyOp::SetCapacity {
            branch: a,
            slot: b,
            capacity: c,
        },
        2..=4 => StandbyOp::Reserve {
            branch: a,
            slot: b,
            applicant: c,
        },
        5 => StandbyOp::ReserveEarliest {
            branch: a,
            applicant: b,
        },
        6 => StandbyOp::Confirm { applicant: a },
        7 | 8 => StandbyOp::Release {
            applicant: a,
            booked: b % 2 == 0,
        },
        9 | 10 => StandbyOp::Standby {
            applicant: a,
            branches: b,
            first: c,
            len: d,
        },
        11 => StandbyOp::Leave { applicant: a },
        12 => match b % 4 {
            0 => StandbyOp::SetQuota { slot: a, quota: c },
            1 => StandbyOp::ReserveOn {
                slot: a,
                applicant: c,
            },
            2 => StandbyOp::OpenQuotas { slot: a },
            _ => StandbyOp::CloseSlot { branch: a, slot: c },
        },
        13 | 14 => StandbyOp::AdvanceMs {
            ms: u32::from(a) * 400,
        },
        _ => StandbyOp::Sweep,
    }
}

#[test]
fn a_long_seeded_run_keeps_every_rule() {
    for seed in 1..=4u64 {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
        let mut h = StandbyHarness::new();
        for _ in 0..5_000 {
            let op = random_op(&mut rng);
            h.apply(&op);
        }
        assert!(
            h.served.len() > 50,
            "seed {seed}: only {} offers in 5 000 steps; the run does not exercise standby",
            h.served.len()
        );
    }
}

/// Four threads reserve, release, confirm and join and leave the line on a few scarce slots
/// while a fifth audits the book continuously (the audit locks every shard and the line, so it
/// sees each call as done or not begun).
#[test]
fn racing_threads_keep_every_rule_under_the_audit() {
    let book = Arc::new(
        SlotBook::builder()
            .hold_ttl(Duration::from_secs(5))
            .max_active_per_applicant(1)
            .shards(4)
            .clock(ManualClock::new())
            .build(),
    );
    for slot in 0..3 {
        book.set_capacity(BranchId(1), slot, 2).unwrap();
    }
    let done = Arc::new(AtomicBool::new(false));
    // The workers start once the auditor runs, so that on a loaded machine its audits still
    // overlap their calls (it counts the audits that began while they were at work).
    let auditing = Arc::new(AtomicBool::new(false));
    let auditor = {
        let (book, done, auditing) = (book.clone(), done.clone(), auditing.clone());
        std::thread::spawn(move || {
            let mut audits = 0u32;
            auditing.store(true, Ordering::SeqCst);
            while !done.load(Ordering::SeqCst) {
                book.check_invariants().unwrap();
                audits += 1;
            }
            audits
        })
    };
    while !auditing.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    let workers: Vec<_> = (0..4u64)
        .map(|t| {
            let book = book.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(t + 1);
                let mut given = 0u32;
                for _ in 0..3_000 {
                    let a = ApplicantId(t * 100 + rng.next() % 8);
                    let slot = (rng.next() % 3) as u32;
                    match rng.next() % 8 {
                        0 | 1 => drop(book.reserve(BranchId(1), slot, a)),
                        2 => {
                            if let Some(h) = book.holds_of(a).first() {
                                let _ = book.confirm(h.token);
                            }
                        }
                        3 | 4 => {
                            let tokens: Vec<_> = book
                                .holds_of(a)
                                .iter()
                                .map(|h| h.token)
                                .chain(book.bookings_of(a).iter().map(|b| b.token))
                                .collect();
                            if let Some(&t) = tokens.first() {
                                let _ = book.release(t);
                            }
                        }
                        5 => drop(book.standby(a, &[BranchId(1)], 0..3)),
                        6 => given += u32::from(book.standby_offer(a).is_some()),
                        _ => {
                            if rng.next().is_multiple_of(4) {
                                book.clock().advance(Duration::from_secs(2));
                            } else {
                                book.leave_standby(a);
                            }
                        }
                    }
                }
                given
            })
        })
        .collect();
    let given: u32 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    done.store(true, Ordering::SeqCst);
    let audits = auditor.join().unwrap();
    book.check_invariants().unwrap();
    assert!(
        given > 0,
        "no standby offer was ever given: the run exercises nothing"
    );
    assert!(audits > 0);
}

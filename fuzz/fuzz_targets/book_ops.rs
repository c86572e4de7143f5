//! Decodes the input into a bounded sequence of book operations (time advances included) and
//! applies them to two books at once, failing on the first disagreement or broken invariant:
//!
//! - the book calls, channel quotas included (`set_channel_quota`, `reserve_on`,
//!   `open_channel_quotas(_in)`), run beside the reference model of
//!   `tests/support/book_model.rs`;
//! - the standby calls (`standby`, `standby_offer`, `leave_standby`) mixed with reservations,
//!   releases, quotas and time moving so that offers lapse and pass on, run through the harness
//!   of `tests/support/standby_model.rs`, which checks each answer it can predict, the
//!   first-come order of offers and `check_invariants` after every step. After every standby
//!   step this target also checks the channel rule on every slot with quotas: a channel never
//!   holds and books more than its quota plus the open part, unless the slot's capacity or a
//!   quota was lowered below what was taken.
//!
//! For the model side, after every step the answer of the call is compared with the model's and,
//! with readings on, the slot the step named is checked against it (`BookHarness::check_slot`,
//! channels included); every `FULL_CHECK_EVERY` steps and after the last one, the whole check
//! runs (the book's own `check_invariants`, its totals against the model's, every slot). The
//! whole check walks every slot of every allocated chunk, and after every step it took nine
//! tenths of the time.
#![no_main]

use std::collections::BTreeSet;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use surgegate::{BranchId, ManualClock, SlotBook, SlotQuotas};

#[path = "../../tests/support/book_model.rs"]
mod book_model;
#[path = "../../tests/support/standby_model.rs"]
mod standby_model;

use book_model::{BookHarness, BookOp};
use standby_model::{SLOTS, StandbyHarness, StandbyOp};

/// Steps between two whole checks of the model side.
const FULL_CHECK_EVERY: usize = 16;
/// Steps per input (each side).
const MAX_STEPS: usize = 300;
/// The only branch the standby harness puts quotas on.
const QUOTA_BRANCH: BranchId = BranchId(1);

/// One step of either book.
#[derive(Debug)]
enum Step {
    Book(BookOp),
    Standby(StandbyOp),
}

impl<'a> Arbitrary<'a> for Step {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        if u.arbitrary::<bool>()? {
            Ok(Step::Book(u.arbitrary()?))
        } else {
            standby_op(u).map(Step::Standby)
        }
    }
}

/// A standby-harness step; the harness maps each small field into its own ranges.
fn standby_op(u: &mut Unstructured<'_>) -> arbitrary::Result<StandbyOp> {
    let tag: u8 = u.arbitrary()?;
    let (a, b, c, d): (u8, u8, u8, u8) = u.arbitrary()?;
    Ok(match tag % 14 {
        0 => StandbyOp::SetCapacity {
            branch: a,
            slot: b,
            capacity: c,
        },
        1 => StandbyOp::Reserve {
            branch: a,
            slot: b,
            applicant: c,
        },
        2 => StandbyOp::ReserveEarliest {
            branch: a,
            applicant: b,
        },
        3 => StandbyOp::Confirm { applicant: a },
        4 => StandbyOp::Release {
            applicant: a,
            booked: b % 2 == 0,
        },
        5 => StandbyOp::Standby {
            applicant: a,
            branches: b,
            first: c,
            len: d,
        },
        6 => StandbyOp::Offer { applicant: a },
        7 => StandbyOp::Leave { applicant: a },
        8 => StandbyOp::SetQuota { slot: a, quota: b },
        9 => StandbyOp::ReserveOn {
            slot: a,
            applicant: b,
        },
        10 => StandbyOp::OpenQuotas { slot: a },
        11 => StandbyOp::CloseSlot { branch: a, slot: b },
        // Up to 65.5 s, past the harness's 60 s hold time: offers lapse and pass on.
        12 => StandbyOp::AdvanceMs {
            ms: u32::from(u16::from_le_bytes([a, b])),
        },
        _ => StandbyOp::Sweep,
    })
}

/// The quota branch's slots as `channel_quotas` shows them.
fn quotas(book: &SlotBook<ManualClock>) -> Vec<Option<SlotQuotas>> {
    (0..SLOTS)
        .map(|s| book.channel_quotas(QUOTA_BRANCH, s))
        .collect()
}

/// Marks the slots whose capacity or any quota went down between two readings: there a channel
/// may keep more than its quota plus the open part (a lowering never takes a unit back).
fn mark_lowered(
    before: &[Option<SlotQuotas>],
    after: &[Option<SlotQuotas>],
    lowered: &mut BTreeSet<u32>,
) {
    for (s, (b, a)) in (0..SLOTS).zip(before.iter().zip(after)) {
        let (Some(b), Some(a)) = (b, a) else {
            continue;
        };
        let quota_down = b.channels.iter().any(|cb| {
            a.channels
                .iter()
                .find(|ca| ca.channel == cb.channel)
                .is_none_or(|ca| ca.quota < cb.quota)
        });
        if a.capacity < b.capacity || quota_down {
            lowered.insert(s);
        }
    }
}

/// The channel rule on every slot with quotas: the quotas fit the capacity, each channel's
/// units from its quota are among its units, and (unless lowered) a channel takes no more than
/// its quota plus the open part.
fn check_channels(now: &[Option<SlotQuotas>], lowered: &BTreeSet<u32>) -> Result<(), String> {
    for (s, q) in (0..SLOTS).zip(now) {
        let Some(q) = q else { continue };
        let kept: u64 = q.channels.iter().map(|c| u64::from(c.quota)).sum();
        if kept > u64::from(q.capacity) {
            return Err(format!("slot {s}: quotas {kept} above capacity {q:?}"));
        }
        let open_part = u64::from(q.capacity) - kept;
        for c in &q.channels {
            if c.from_quota > c.taken {
                return Err(format!("slot {s}: {c:?} took more from its quota than in all"));
            }
            let bound = u64::from(c.quota) + open_part;
            if u64::from(c.taken) > bound && !lowered.contains(&s) {
                return Err(format!(
                    "slot {s}: {:?} took {} of quota {} plus open part {open_part}",
                    c.channel, c.taken, c.quota
                ));
            }
        }
    }
    Ok(())
}

fuzz_target!(|input: (bool, bool, Vec<Step>)| {
    let (one_shard, read_every_step, steps) = input;
    let mut h = BookHarness::new(if one_shard { 1 } else { 4 });
    h.read_every_step = read_every_step;
    h.full_check_every = FULL_CHECK_EVERY;
    h.record_outcomes = false;
    let mut standby = StandbyHarness::new();
    let mut lowered = BTreeSet::new();
    let (mut book_steps, mut standby_steps) = (0, 0);
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Book(op) if book_steps < MAX_STEPS => {
                book_steps += 1;
                if let Err(e) = h.step(op) {
                    panic!("step {i} {op:?}: {e}");
                }
            }
            Step::Standby(op) if standby_steps < MAX_STEPS => {
                standby_steps += 1;
                let before = quotas(&standby.book);
                // Panics on a wrong answer, an out-of-order offer or a broken invariant.
                standby.apply(op);
                let after = quotas(&standby.book);
                mark_lowered(&before, &after, &mut lowered);
                if let Err(e) = check_channels(&after, &lowered) {
                    panic!("standby step {i} {op:?}: {e}");
                }
            }
            _ => {}
        }
    }
    if let Err(e) = h.check() {
        panic!("after the last step: {e}");
    }
    if let Err(e) = standby.book.check_invariants() {
        panic!("standby book after the last step: {e}");
    }
});

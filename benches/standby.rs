//! What a waiting standby line costs the release path, in one criterion run: the reserve ->
//! release cycle of `benches/channels.rs` (300 branches × 480 slots of 1 000 units) on a book
//! with no standby request, on one where 100 000 requests wait at other branches (the release
//! checks the line and finds no request for its branch), and on one where 100 000 requests wait
//! at the same branches for other slots (the release looks through the branch's requests for one
//! covering its slot, and finds none); and the cycle that passes a unit from request to request:
//! a holder releases, the line's first request is given the unit, and the holder joins the line
//! again at its end.
//!
//! `cargo bench --bench standby`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use surgegate::{ApplicantId, BranchId, ManualClock, SlotBook};

const BRANCHES: u32 = 300;
const SLOTS: u32 = 30 * 16;
/// Slots past the bookable ones, with no capacity: what waiting requests cover.
const FULL_SLOTS: u32 = 16;
const REQUESTS: u64 = 100_000;
/// Waiting applicants' ids start here, apart from the cycle's.
const WAITING_FROM: u64 = 1 << 40;

/// Where the requests wait.
#[derive(Clone, Copy)]
enum Waiting {
    Nobody,
    /// At branches of their own (past the bookable ones), with no capacity.
    OtherBranches,
    /// At the bookable branches, for slots with no capacity.
    SameBranchesOtherSlots,
}

fn book(waiting: Waiting) -> SlotBook<ManualClock> {
    let book = SlotBook::builder()
        .hold_ttl(Duration::from_secs(600))
        .max_branches(2 * BRANCHES)
        .max_standby_requests(REQUESTS as u32)
        .clock(ManualClock::new())
        .build();
    for b in 0..2 * BRANCHES {
        for s in 0..SLOTS + FULL_SLOTS {
            let bookable = b < BRANCHES && s < SLOTS;
            book.set_capacity(BranchId(b), s, if bookable { 1_000 } else { 0 })
                .unwrap();
        }
    }
    for i in 0..REQUESTS {
        let b = (i % u64::from(BRANCHES)) as u32;
        let (branch, slots) = match waiting {
            Waiting::Nobody => break,
            Waiting::OtherBranches => (BranchId(BRANCHES + b), 0..SLOTS + FULL_SLOTS),
            Waiting::SameBranchesOtherSlots => (BranchId(b), SLOTS..SLOTS + FULL_SLOTS),
        };
        book.standby(ApplicantId(WAITING_FROM + i), &[branch], slots)
            .unwrap();
    }
    book
}

/// Where call `i` goes: a fixed spread over every bookable branch and slot.
fn place(i: u64) -> (BranchId, u32, ApplicantId) {
    let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (
        BranchId((x >> 40) as u32 % BRANCHES),
        (x >> 8) as u32 % SLOTS,
        ApplicantId(i),
    )
}

fn release_with_a_line(c: &mut Criterion) {
    let mut g = c.benchmark_group("standby_reserve_release");
    let mut i = 0u64;
    for (name, waiting) in [
        ("no request waiting", Waiting::Nobody),
        ("100 000 waiting at other branches", Waiting::OtherBranches),
        (
            "100 000 waiting at the same branches, other slots",
            Waiting::SameBranchesOtherSlots,
        ),
    ] {
        let book = book(waiting);
        g.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                let (branch, slot, applicant) = place(i);
                let hold = book.reserve(branch, slot, applicant).unwrap();
                book.release(black_box(hold.token)).unwrap();
            })
        });
        book.check_invariants().unwrap();
    }
    g.finish();
}

/// One unit, 100 000 requests for it: each step the holder releases, the first request is given
/// the unit (claimed with `standby_offer`), and the former holder joins the line's end.
fn pass_on(c: &mut Criterion) {
    let book = SlotBook::builder()
        .hold_ttl(Duration::from_secs(600))
        .max_standby_requests(REQUESTS as u32 + 1)
        .clock(ManualClock::new())
        .build();
    book.set_capacity(BranchId(0), 0, 1).unwrap();
    let mut holder = book.reserve(BranchId(0), 0, ApplicantId(0)).unwrap();
    let mut next = std::collections::VecDeque::new();
    for a in 1..=REQUESTS {
        book.standby(ApplicantId(a), &[BranchId(0)], 0..1).unwrap();
        next.push_back(a);
    }
    c.bench_function("standby_pass_on/100 000 requests, one unit", |b| {
        b.iter(|| {
            book.release(holder.token).unwrap();
            let first = next.pop_front().unwrap();
            let given = book
                .standby_offer(ApplicantId(first))
                .expect("the first request");
            book.standby(holder.applicant, &[BranchId(0)], 0..1)
                .unwrap();
            next.push_back(holder.applicant.0);
            holder = black_box(given);
        })
    });
    book.check_invariants().unwrap();
}

criterion_group!(benches, release_with_a_line, pass_on);
criterion_main!(benches);

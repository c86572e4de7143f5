//! What channel quotas cost a reservation, in one criterion run: the reserve -> release cycle
//! of `reserve` on slots without quotas, of `reserve` on slots with quotas (the open part: the
//! same single compare-and-swap), and of `reserve_on` taking a channel's quota (the chunk's
//! quota lock and one compare-and-swap), spread over 300 branches × 480 slots.
//!
//! `cargo bench --bench channels`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use surgegate::{ApplicantId, BranchId, Channel, ManualClock, SlotBook};

const BRANCHES: u32 = 300;
const SLOTS: u32 = 30 * 16;
const COUNTERS: Channel = Channel(1);

/// Every slot with 1 000 units; with `quota`, 400 of them kept for the counters.
fn book(quota: bool) -> SlotBook<ManualClock> {
    let book = SlotBook::builder()
        .hold_ttl(Duration::from_secs(600))
        .clock(ManualClock::new())
        .build();
    for b in 0..BRANCHES {
        for s in 0..SLOTS {
            book.set_capacity(BranchId(b), s, 1_000).unwrap();
            if quota {
                book.set_channel_quota(BranchId(b), s, COUNTERS, 400)
                    .unwrap();
            }
        }
    }
    book
}

/// Where call `i` goes: a fixed spread over every branch and slot.
fn place(i: u64) -> (BranchId, u32, ApplicantId) {
    let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (
        BranchId((x >> 40) as u32 % BRANCHES),
        (x >> 8) as u32 % SLOTS,
        ApplicantId(i),
    )
}

fn reserve_on_against_reserve(c: &mut Criterion) {
    let plain = book(false);
    let kept = book(true);
    let mut g = c.benchmark_group("channel_reserve_release");
    let mut i = 0u64;
    g.bench_function("reserve, no quotas", |b| {
        b.iter(|| {
            i += 1;
            let (branch, slot, applicant) = place(i);
            let hold = plain.reserve(branch, slot, applicant).unwrap();
            plain.release(black_box(hold.token)).unwrap();
        })
    });
    g.bench_function("reserve, slot with quotas", |b| {
        b.iter(|| {
            i += 1;
            let (branch, slot, applicant) = place(i);
            let hold = kept.reserve(branch, slot, applicant).unwrap();
            kept.release(black_box(hold.token)).unwrap();
        })
    });
    g.bench_function("reserve_on, from the quota", |b| {
        b.iter(|| {
            i += 1;
            let (branch, slot, applicant) = place(i);
            let hold = kept.reserve_on(COUNTERS, branch, slot, applicant).unwrap();
            kept.release(black_box(hold.token)).unwrap();
        })
    });
    g.finish();
    kept.check_invariants().unwrap();
}

criterion_group!(benches, reserve_on_against_reserve);
criterion_main!(benches);

//! Many threads, mixed operations, shared applicants and a moving clock. After every round (the
//! book quiescent) and at the end: the book's own invariants hold, no slot is overbooked, and the
//! bookings recounted from the threads' own records equal the book's counts.

use std::collections::HashMap;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use surgegate::book::Preference;
use surgegate::{ApplicantId, BranchId, HoldToken, ManualClock, SlotBook};

const THREADS: usize = 6;
const ROUNDS: usize = 8;
const OPS_PER_ROUND: usize = 4_000;
const BRANCHES: u32 = 6;
const SLOTS: u32 = 600; // crosses a 512-slot chunk boundary

/// A small xorshift generator: each thread's op stream is reproducible from its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the threads themselves know: the tokens confirmed and not yet cancelled.
#[derive(Default)]
struct Ledger {
    booked: HashMap<HoldToken, (BranchId, u32)>,
}

fn check_quiescent(book: &SlotBook<ManualClock>, ledger: &Ledger, raised_only: bool) {
    book.check_invariants().expect("book invariants");
    let mut recount: HashMap<(BranchId, u32), u32> = HashMap::new();
    for &(b, s) in ledger.booked.values() {
        *recount.entry((b, s)).or_default() += 1;
    }
    let mut total_booked = 0;
    for b in 0..BRANCHES {
        for (s, st) in book.availability(BranchId(b), ..) {
            if raised_only {
                assert!(
                    st.held + st.booked <= st.capacity,
                    "branch {b} slot {s} overbooked: {st:?}"
                );
            }
            assert_eq!(
                st.remaining(),
                st.capacity.saturating_sub(st.held + st.booked)
            );
            let mine = recount.get(&(BranchId(b), s)).copied().unwrap_or(0);
            assert_eq!(
                st.booked, mine,
                "branch {b} slot {s}: book says {} booked, threads recount {mine}",
                st.booked
            );
            total_booked += st.booked;
        }
    }
    assert_eq!(total_booked as usize, ledger.booked.len());
}

fn run(seed: u64, lower_capacity: bool) -> (usize, usize) {
    let clock = ManualClock::new();
    let book = Arc::new(
        SlotBook::builder()
            .hold_ttl(Duration::from_millis(200))
            .max_active_per_applicant(3)
            .max_slots_per_branch(1024)
            .shards(16)
            .clock(clock.clone())
            .build(),
    );
    let mut rng = Rng(seed);
    for b in 0..BRANCHES {
        for s in 0..SLOTS {
            book.set_capacity(BranchId(b), s, rng.below(4) as u32)
                .unwrap();
        }
    }
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let ops_done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let bookings_made = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for round in 0..ROUNDS {
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (book, clock, ledger, barrier) =
                    (book.clone(), clock.clone(), ledger.clone(), barrier.clone());
                let (ops_done, bookings_made) = (ops_done.clone(), bookings_made.clone());
                thread::spawn(move || {
                    let mut rng =
                        Rng(seed ^ ((round as u64) << 32) ^ ((t as u64 + 1) * 0x9e37_79b9));
                    let mut mine: Vec<HoldToken> = Vec::new();
                    barrier.wait();
                    for _ in 0..OPS_PER_ROUND {
                        // Applicants are shared between threads: the same applicant races itself.
                        let applicant = ApplicantId(rng.below(400));
                        let branch = BranchId(rng.below(u64::from(BRANCHES)) as u32);
                        match rng.below(100) {
                            0..=29 => {
                                let slot = rng.below(u64::from(SLOTS)) as u32;
                                if let Ok(h) = book.reserve(branch, slot, applicant) {
                                    mine.push(h.token);
                                }
                            }
                            30..=39 => {
                                let start = rng.below(u64::from(SLOTS)) as u32;
                                if let Ok(h) =
                                    book.reserve_earliest(branch, start..SLOTS, applicant)
                                {
                                    mine.push(h.token);
                                }
                            }
                            40..=49 => {
                                // Alternatives: this branch and the next two, either policy.
                                let near = [0, 1, 2].map(|k| BranchId((branch.0 + k) % BRANCHES));
                                let prefer = if rng.below(2) == 0 {
                                    Preference::EarliestSlot
                                } else {
                                    Preference::FirstBranch
                                };
                                let start = rng.below(u64::from(SLOTS)) as u32;
                                if let Ok(h) =
                                    book.reserve_among(&near, start..SLOTS, applicant, prefer)
                                {
                                    mine.push(h.token);
                                }
                            }
                            50..=74 if !mine.is_empty() => {
                                let token = mine[rng.below(mine.len() as u64) as usize];
                                // Hold the ledger lock across the call so that the recount sees
                                // confirm and release in the order the book applied them.
                                let mut l = ledger.lock().unwrap();
                                if let Ok(b) = book.confirm(token)
                                    && l.booked.insert(token, (b.branch, b.slot)).is_none()
                                {
                                    bookings_made
                                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                }
                            }
                            75..=89 if !mine.is_empty() => {
                                let i = rng.below(mine.len() as u64) as usize;
                                let token = mine.swap_remove(i);
                                let mut l = ledger.lock().unwrap();
                                if book.release(token).is_ok() {
                                    l.booked.remove(&token);
                                }
                            }
                            90..=93 => clock.advance(Duration::from_millis(rng.below(40))),
                            94..=95 if lower_capacity => {
                                let slot = rng.below(u64::from(SLOTS)) as u32;
                                book.set_capacity(branch, slot, rng.below(4) as u32)
                                    .unwrap();
                            }
                            96 => {
                                book.sweep();
                            }
                            _ => {
                                let slot = rng.below(u64::from(SLOTS)) as u32;
                                let _ = book.slot(branch, slot);
                            }
                        }
                        ops_done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        check_quiescent(&book, &ledger.lock().unwrap(), !lower_capacity);
    }
    clock.advance(Duration::from_secs(1));
    book.sweep();
    let totals = book.check_invariants().unwrap();
    assert_eq!(totals.holds, 0, "every hold expired");
    check_quiescent(&book, &ledger.lock().unwrap(), !lower_capacity);
    (
        ops_done.load(std::sync::atomic::Ordering::Relaxed),
        bookings_made.load(std::sync::atomic::Ordering::Relaxed),
    )
}

#[test]
fn mixed_operations_never_overbook_and_recount_exactly() {
    let (ops, bookings) = run(0x5eed_0001, false);
    assert_eq!(ops, THREADS * ROUNDS * OPS_PER_ROUND);
    assert!(
        bookings > 1000,
        "too few bookings to mean anything: {bookings}"
    );
}

#[test]
fn capacity_changes_racing_reservations_keep_the_books_consistent() {
    let (_, bookings) = run(0x5eed_0002, true);
    assert!(
        bookings > 500,
        "too few bookings to mean anything: {bookings}"
    );
}

/// Every thread wants the same last units of one slot, and keeps releasing and retaking them, so
/// the slot sits at its full boundary the whole time. Every reading taken while the threads race
/// must show `held + booked <= capacity`, and at the end the units the threads believe they hold
/// must equal the slot's count.
#[test]
fn a_hot_slot_is_never_overbooked() {
    for capacity in [1u32, 7, 100] {
        let book = Arc::new(
            SlotBook::builder()
                .hold_ttl(Duration::from_secs(60))
                .build(),
        );
        book.set_capacity(BranchId(1), 0, capacity).unwrap();
        let barrier = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (book, barrier) = (book.clone(), barrier.clone());
                thread::spawn(move || {
                    let mut rng = Rng(0xabcdef + t as u64);
                    let mut held: Vec<HoldToken> = Vec::new();
                    let mut grants = 0u32;
                    barrier.wait();
                    for i in 0..20_000u64 {
                        let applicant = ApplicantId(t as u64 * 1_000_000 + i);
                        if let Ok(h) = book.reserve(BranchId(1), 0, applicant) {
                            grants += 1;
                            if rng.below(3) == 0 {
                                book.confirm(h.token).unwrap();
                            }
                            held.push(h.token);
                        }
                        let st = book.slot(BranchId(1), 0).unwrap();
                        assert!(
                            st.held + st.booked <= capacity,
                            "overbooked while racing: {st:?}"
                        );
                        if !held.is_empty() && rng.below(2) == 0 {
                            let token = held.swap_remove(rng.below(held.len() as u64) as usize);
                            book.release(token).unwrap();
                        }
                    }
                    (held.len() as u32, grants)
                })
            })
            .collect();
        let results: Vec<(u32, u32)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let outstanding: u32 = results.iter().map(|r| r.0).sum();
        let grants: u32 = results.iter().map(|r| r.1).sum();
        let st = book.slot(BranchId(1), 0).unwrap();
        assert_eq!(
            st.held + st.booked,
            outstanding,
            "the slot counts what the threads hold"
        );
        assert!(outstanding <= capacity);
        assert!(
            grants > 10 * capacity,
            "the slot barely churned: {grants} grants"
        );
        book.check_invariants().unwrap();
    }
}

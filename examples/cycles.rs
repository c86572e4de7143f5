//! `cargo run --release --example cycles`: a quick timing of a million reserve -> confirm ->
//! release cycles on one thread and on two, spread over 300 branches x 480 slots. (For comparisons
//! against alternatives, see `cargo bench` and BENCHMARKS.md.)

use std::time::{Duration, Instant};

use surgegate::{ApplicantId, BranchId, SlotBook};

const CYCLES: u64 = 1_000_000;

fn main() {
    let book = SlotBook::builder()
        .hold_ttl(Duration::from_secs(600))
        .build();
    for b in 0..300 {
        for s in 0..480 {
            book.set_capacity(BranchId(b), s, 1_000)
                .expect("within limits");
        }
    }
    for threads in [1u64, 2] {
        let start = Instant::now();
        std::thread::scope(|scope| {
            for t in 0..threads {
                let book = &book;
                scope.spawn(move || {
                    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ t;
                    for i in 0..CYCLES / threads {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let (branch, slot) = ((x % 300) as u32, ((x >> 32) % 480) as u32);
                        let applicant = ApplicantId((t << 40) | i);
                        let hold = book
                            .reserve(BranchId(branch), slot, applicant)
                            .expect("room");
                        book.confirm(hold.token).expect("live hold");
                        book.release(hold.token).expect("booked");
                    }
                });
            }
        });
        let took = start.elapsed();
        println!(
            "{CYCLES} reserve/confirm/release cycles on {threads} thread(s): {took:.2?} ({:.0} ns per cycle, {:.2} M cycles/s)",
            took.as_nanos() as f64 / CYCLES as f64,
            CYCLES as f64 / took.as_secs_f64() / 1e6
        );
    }
    let totals = book.check_invariants().expect("invariants hold");
    assert_eq!((totals.holds, totals.bookings), (0, 0));
}

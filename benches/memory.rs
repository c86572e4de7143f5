//! Bytes per waiting visitor, per live hold and per booking, counted by a counting global
//! allocator (live heap bytes before and after, divided by the count). Writes `target/criterion/memory.json` for
//! `cargo run --release --example bench_report`, and prints the figures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use surgegate::{ApplicantId, BranchId, Entry, ManualClock, SlotBook, VisitorId, WaitingRoom};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to the system allocator unchanged and only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded; `ptr` was allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded; `ptr` was allocated by `System` with this layout.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn per_waiting_visitor(n: u64) -> f64 {
    let room = WaitingRoom::builder()
        .max_waiting(2_000_000)
        .checkin_timeout(Duration::from_secs(86_400))
        .clock(ManualClock::new())
        .build();
    room.pause();
    let before = live();
    for v in 0..n {
        assert!(matches!(
            room.join(VisitorId(v)).unwrap(),
            Entry::Waiting(_)
        ));
    }
    let bytes = live() - before;
    assert_eq!(room.stats().waiting, n);
    bytes as f64 / n as f64
}

/// Bytes per live hold (`confirm: false`) or per booking (`confirm: true`), `n` of them.
fn per_record(n: u64, confirm: bool) -> f64 {
    let book = SlotBook::builder()
        .hold_ttl(Duration::from_secs(86_400))
        .max_slots_per_branch(480)
        .clock(ManualClock::new())
        .build();
    for b in 0..300 {
        for s in 0..480 {
            book.set_capacity(BranchId(b), s, 10).unwrap();
        }
    }
    let before = live();
    for a in 0..n {
        let hold = book
            .reserve(
                BranchId((a % 300) as u32),
                ((a / 300) % 480) as u32,
                ApplicantId(a),
            )
            .unwrap();
        if confirm {
            book.confirm(hold.token).unwrap();
        }
    }
    let bytes = live() - before;
    let totals = book.check_invariants().unwrap();
    assert_eq!(
        (totals.holds, totals.bookings),
        if confirm { (0, n) } else { (n, 0) }
    );
    bytes as f64 / n as f64
}

fn main() {
    // `cargo bench` passes flags such as `--bench`; this measurement takes none.
    let visitor_1k = per_waiting_visitor(1_000);
    let visitor_1m = per_waiting_visitor(1_000_000);
    let hold_1m = per_record(1_000_000, false);
    let booking_1m = per_record(1_000_000, true);
    println!("memory/bytes_per_waiting_visitor at 1 000:     {visitor_1k:.1}");
    println!("memory/bytes_per_waiting_visitor at 1 000 000: {visitor_1m:.1}");
    println!("memory/bytes_per_live_hold at 1 000 000:       {hold_1m:.1}");
    println!("memory/bytes_per_booking at 1 000 000:         {booking_1m:.1}");
    let json = format!(
        "{{\"bytes_per_waiting_visitor_1k\":{visitor_1k:.2},\"bytes_per_waiting_visitor_1m\":{visitor_1m:.2},\"bytes_per_live_hold_1m\":{hold_1m:.2},\"bytes_per_booking_1m\":{booking_1m:.2}}}\n"
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/criterion");
    std::fs::create_dir_all(&dir).expect("target/criterion is writable");
    std::fs::write(dir.join("memory.json"), json).expect("memory.json is writable");
}

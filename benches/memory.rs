//! Bytes per waiting visitor, per live hold, per booking and per standby request, counted by a
//! counting global allocator (live heap bytes before and after, divided by the count). Bookings
//! are counted two ways: a million holds taken and then confirmed (the figure
//! `bytes_per_booking_1m`), and a million holds each confirmed as soon as it is taken. Writes
//! `target/criterion/memory.json` for `cargo run --release --example bench_report`, and prints
//! the figures.

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

/// A book of 300 branches x 480 slots of 10 units, with a day-long hold lifetime, so that
/// nothing expires while it is measured.
fn record_book() -> SlotBook<ManualClock> {
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
    book
}

fn reserve(book: &SlotBook<ManualClock>, a: u64) -> surgegate::Hold {
    book.reserve(
        BranchId((a % 300) as u32),
        ((a / 300) % 480) as u32,
        ApplicantId(a),
    )
    .unwrap()
}

/// Bytes per live hold with `n` held, then per booking once the same `n` are confirmed (their
/// holds' expiry entries would stay queued until the holds' expiry times unless dropped).
fn per_hold_then_booking(n: u64) -> (f64, f64) {
    let book = record_book();
    // The tokens kept to confirm with are allocated before counting starts.
    let mut tokens = Vec::with_capacity(n as usize);
    let before = live();
    for a in 0..n {
        tokens.push(reserve(&book, a).token);
    }
    let held = live() - before;
    let totals = book.check_invariants().unwrap();
    assert_eq!((totals.holds, totals.bookings), (n, 0));
    for &token in &tokens {
        book.confirm(token).unwrap();
    }
    let booked = live() - before;
    let totals = book.check_invariants().unwrap();
    assert_eq!((totals.holds, totals.bookings), (0, n));
    (held as f64 / n as f64, booked as f64 / n as f64)
}

/// Bytes per booking, each hold confirmed as soon as it is taken.
fn per_booking_confirmed_at_once(n: u64) -> f64 {
    let book = record_book();
    let before = live();
    for a in 0..n {
        book.confirm(reserve(&book, a).token).unwrap();
    }
    let bytes = live() - before;
    let totals = book.check_invariants().unwrap();
    assert_eq!((totals.holds, totals.bookings), (0, n));
    bytes as f64 / n as f64
}

/// Bytes per waiting standby request with `n` waiting, each over `branches` branches (of 300,
/// every slot without capacity, so that every request waits) and 16 slots.
fn per_standby_request(n: u64, branches: u32) -> f64 {
    let book = SlotBook::builder()
        .max_standby_requests(n as u32)
        .clock(ManualClock::new())
        .build();
    for b in 0..300 {
        for s in 0..16 {
            book.set_capacity(BranchId(b), s, 0).unwrap();
        }
    }
    let before = live();
    for a in 0..n {
        let covered: Vec<BranchId> = (0..branches)
            .map(|k| BranchId(((a + u64::from(k) * 75) % 300) as u32))
            .collect();
        book.standby(ApplicantId(a), &covered, 0..16).unwrap();
    }
    let bytes = live() - before;
    book.check_invariants().unwrap();
    bytes as f64 / n as f64
}

fn main() {
    // `cargo bench` passes flags such as `--bench`; this measurement takes none.
    let visitor_1k = per_waiting_visitor(1_000);
    let visitor_1m = per_waiting_visitor(1_000_000);
    let (hold_1m, booking_1m) = per_hold_then_booking(1_000_000);
    let at_once_1m = per_booking_confirmed_at_once(1_000_000);
    let standby_1 = per_standby_request(100_000, 1);
    let standby_4 = per_standby_request(100_000, 4);
    println!("memory/bytes_per_waiting_visitor at 1 000:     {visitor_1k:.1}");
    println!("memory/bytes_per_waiting_visitor at 1 000 000: {visitor_1m:.1}");
    println!("memory/bytes_per_live_hold at 1 000 000:       {hold_1m:.1}");
    println!("memory/bytes_per_booking at 1 000 000 (the same holds, confirmed): {booking_1m:.1}");
    println!("memory/bytes_per_booking at 1 000 000 (each confirmed at once):    {at_once_1m:.1}");
    println!("memory/bytes_per_standby_request at 100 000 (one branch):   {standby_1:.1}");
    println!("memory/bytes_per_standby_request at 100 000 (four branches): {standby_4:.1}");
    let json = format!(
        "{{\"bytes_per_waiting_visitor_1k\":{visitor_1k:.2},\"bytes_per_waiting_visitor_1m\":{visitor_1m:.2},\"bytes_per_live_hold_1m\":{hold_1m:.2},\"bytes_per_booking_1m\":{booking_1m:.2},\"bytes_per_booking_confirmed_at_once_1m\":{at_once_1m:.2},\"bytes_per_standby_request_100k_1_branch\":{standby_1:.2},\"bytes_per_standby_request_100k_4_branches\":{standby_4:.2}}}\n"
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/criterion");
    std::fs::create_dir_all(&dir).expect("target/criterion is writable");
    std::fs::write(dir.join("memory.json"), json).expect("memory.json is writable");
}

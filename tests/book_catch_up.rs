//! More holds expiring at once than one call reclaims: each call does a bounded share
//! (`SWEEP_BUDGET`), in expiry order, and the book's time lags the clock until it has caught up.

use std::time::Duration;

use surgegate::{ApplicantId, BranchId, Clock, ManualClock, SWEEP_BUDGET, SlotBook};

const HOLDS: u32 = 40_000;
const TTL: Duration = Duration::from_secs(600);

fn surge_of_holds() -> (ManualClock, SlotBook<ManualClock>) {
    let clock = ManualClock::new();
    let book = SlotBook::builder()
        .clock(clock.clone())
        .hold_ttl(TTL)
        .build();
    book.set_capacity(BranchId(1), 0, HOLDS).unwrap();
    for a in 0..HOLDS {
        if a % 1000 == 0 {
            clock.advance(Duration::from_millis(1));
        }
        book.reserve(BranchId(1), 0, ApplicantId(a.into())).unwrap();
    }
    clock.advance(TTL + Duration::from_secs(1));
    (clock, book)
}

#[test]
fn each_call_reclaims_a_bounded_share_and_the_book_catches_up() {
    let (clock, book) = surge_of_holds();
    let mut readings = Vec::new();
    loop {
        let held = book.slot(BranchId(1), 0).unwrap().held;
        book.check_invariants().unwrap();
        readings.push(held);
        if held == 0 {
            break;
        }
        assert!(readings.len() < 10, "{readings:?}");
    }
    // Every call took at most its budget, and together they took everything.
    let mut before = HOLDS;
    for &held in &readings {
        assert!(before - held <= SWEEP_BUDGET as u32, "{readings:?}");
        before = held;
    }
    assert!(readings.len() as u32 >= HOLDS.div_ceil(SWEEP_BUDGET as u32));
    assert_eq!(
        book.now(),
        clock.now(),
        "caught up: the book's time is the clock's"
    );
    assert_eq!(book.sweep(), 0);
}

#[test]
fn while_catching_up_the_books_time_lags_and_every_rule_holds_at_it() {
    let (clock, book) = surge_of_holds();
    let first = book.slot(BranchId(1), 0).unwrap();
    assert!(first.held > 0, "more than one call's share was due");
    // The book's time is just before the earliest hold it has not reclaimed yet: those it
    // still counts are live at that time, so no reading shows an expired hold.
    let lag = book.now();
    assert!(lag < clock.now(), "{lag:?}");
    assert!(lag > TTL, "the holds before the lag were reclaimed");
    // Expired holds never block: the full slot's next reservation is granted.
    let hold = book.reserve(BranchId(1), 0, ApplicantId(1 << 40)).unwrap();
    assert!(hold.expires_at > lag);
    book.check_invariants().unwrap();
    // An explicit sweep is not bounded.
    let left = book.sweep();
    assert!(left > 0);
    assert_eq!(book.slot(BranchId(1), 0).unwrap().held, 1);
    assert_eq!(book.now(), clock.now());
}

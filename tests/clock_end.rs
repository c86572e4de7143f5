//! A clock at its end (`u64::MAX` ns): both primitives saturate their time at the same end and
//! keep every rule; nothing is created already expired, and a room with nobody waiting admits.

use std::time::Duration;

use surgegate::{ApplicantId, BranchId, Entry, ManualClock, SlotBook, VisitorId, WaitingRoom};

fn clock_at_end() -> ManualClock {
    let clock = ManualClock::new();
    clock.advance(Duration::MAX);
    clock
}

#[test]
fn a_book_at_the_end_of_its_clock_keeps_holds_live_and_its_counts_whole() {
    let clock = clock_at_end();
    let book = SlotBook::builder().clock(clock.clone()).build();
    book.set_capacity(BranchId(1), 0, 2).unwrap();
    let hold = book.reserve(BranchId(1), 0, ApplicantId(1)).unwrap();
    // Time has stopped at the end: the hold is live, and stays so.
    assert!(
        hold.expires_at > book.now(),
        "{:?} {:?}",
        hold.expires_at,
        book.now()
    );
    clock.advance(Duration::from_secs(3600));
    assert_eq!(book.hold(hold.token).map(|h| h.token), Some(hold.token));
    assert_eq!(book.slot(BranchId(1), 0).unwrap().held, 1);
    book.check_invariants().unwrap();
    let booking = book.confirm(hold.token).unwrap();
    assert_eq!(book.slot(BranchId(1), 0).unwrap().booked, 1);
    book.release(booking.token).unwrap();
    book.check_invariants().unwrap();
}

#[test]
fn a_book_that_reaches_the_end_expires_the_holds_due_before_it() {
    let clock = ManualClock::new();
    let book = SlotBook::builder()
        .clock(clock.clone())
        .hold_ttl(Duration::from_secs(60))
        .build();
    book.set_capacity(BranchId(1), 0, 1).unwrap();
    let hold = book.reserve(BranchId(1), 0, ApplicantId(1)).unwrap();
    clock.advance(Duration::MAX);
    assert_eq!(book.slot(BranchId(1), 0).unwrap().held, 0);
    assert!(book.hold(hold.token).is_none());
    book.check_invariants().unwrap();
}

#[test]
fn a_room_at_the_end_of_its_clock_admits_and_queues_by_the_same_rules() {
    let clock = clock_at_end();
    let room = WaitingRoom::builder()
        .clock(clock.clone())
        .rate_per_second(1)
        .burst(1)
        .max_waiting(10)
        .build();
    assert!(matches!(room.join(VisitorId(1)), Ok(Entry::Admitted(_))));
    let waiting = room.join(VisitorId(2)).unwrap();
    let Entry::Waiting(ticket) = waiting else {
        panic!("{waiting:?}")
    };
    assert_eq!(ticket.position, 1);
    room.check_invariants().unwrap();
    clock.advance(Duration::from_secs(5));
    assert!(matches!(room.poll(ticket.token), Ok(Entry::Waiting(_))));
    assert_eq!(room.stats().waiting, 1);
    room.check_invariants().unwrap();
}

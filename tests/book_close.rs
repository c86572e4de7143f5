//! Closing a slot: no hold after the close, holds and bookings kept, out of every reading,
//! reopened by `set_capacity`, and the same after a reopen of a durable book.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use surgegate::{
    ApplicantId, BranchId, CloseError, Durability, ManualClock, ReserveError, SlotBook, SlotState,
};

const B: BranchId = BranchId(3);

#[test]
fn a_closed_slot_keeps_its_holds_and_bookings_and_leaves_every_reading() {
    let book = SlotBook::builder().max_active_per_applicant(2).build();
    for s in 0..3 {
        book.set_capacity(B, s, 4).unwrap();
    }
    let held = book.reserve(B, 1, ApplicantId(1)).unwrap();
    let booked = book.reserve(B, 1, ApplicantId(2)).unwrap();
    let booked = book.confirm(booked.token).unwrap();
    let before = book.close_slot(B, 1).unwrap();
    assert_eq!(
        before,
        SlotState {
            capacity: 4,
            held: 1,
            booked: 1
        }
    );
    book.check_invariants().unwrap();

    assert_eq!(book.slot(B, 1), None);
    let open: Vec<u32> = book.availability(B, ..).iter().map(|(s, _)| *s).collect();
    assert_eq!(open, [0, 2]);
    assert_eq!(
        book.reserve(B, 1, ApplicantId(3)),
        Err(ReserveError::UnknownSlot)
    );
    // The earliest with room skips it.
    assert_eq!(
        book.reserve_earliest(B, 1..3, ApplicantId(3)).unwrap().slot,
        2
    );
    // A retry of the hold granted while open returns it; it can be confirmed.
    assert_eq!(
        book.reserve(B, 1, ApplicantId(1)).unwrap().token,
        held.token
    );
    book.confirm(held.token).unwrap();
    assert_eq!(book.bookings_of(ApplicantId(2)), vec![booked]);
    // Closing twice changes nothing; unknown slots are errors.
    assert_eq!(book.close_slot(B, 1).unwrap().booked, 2);
    assert_eq!(book.close_slot(B, 9), Err(CloseError::UnknownSlot));
    assert_eq!(
        book.close_slot(BranchId(99), 0),
        Err(CloseError::UnknownSlot)
    );
    book.check_invariants().unwrap();

    // Reopened: visible again, with its bookings.
    let state = book.set_capacity(B, 1, 3).unwrap();
    assert_eq!(
        state,
        SlotState {
            capacity: 3,
            held: 0,
            booked: 2
        }
    );
    assert_eq!(book.slot(B, 1), Some(state));
    book.reserve(B, 1, ApplicantId(4)).unwrap();
    book.check_invariants().unwrap();
}

#[test]
fn no_hold_is_granted_after_a_close_returns() {
    for round in 0..20u64 {
        let book = Arc::new(SlotBook::builder().build());
        book.set_capacity(B, 0, 1_000_000).unwrap();
        let closed = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..3u64)
            .map(|t| {
                let (book, closed) = (book.clone(), closed.clone());
                std::thread::spawn(move || {
                    let mut after_close = 0;
                    for i in 0..5_000u64 {
                        let was_closed = closed.load(Ordering::SeqCst);
                        let r = book.reserve(B, 0, ApplicantId(round << 40 | t << 32 | i));
                        if was_closed {
                            assert_eq!(r, Err(ReserveError::UnknownSlot));
                            after_close += 1;
                        }
                    }
                    after_close
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_micros(200));
        let before = book.close_slot(B, 0).unwrap();
        closed.store(true, Ordering::SeqCst);
        let _: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let totals = book.check_invariants().unwrap();
        // Every hold was granted before the close: exactly the ones it saw.
        assert_eq!(totals.holds as u32, before.held);
        assert_eq!(book.slot(B, 0), None);
    }
}

#[test]
fn a_durable_book_remembers_a_close_through_its_journal_and_its_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        SlotBook::builder()
            .clock(ManualClock::new())
            .durable()
            .durability(Durability::None)
            .open(dir.path())
            .unwrap()
    };
    let booking = {
        let book = open();
        book.set_capacity(B, 0, 5).unwrap();
        book.set_capacity(B, 1, 5).unwrap();
        let hold = book.reserve(B, 0, ApplicantId(1)).unwrap();
        book.close_slot(B, 0).unwrap();
        // Confirmed after the close: journaled after it, restored on the closed slot.
        book.confirm(hold.token).unwrap()
    };
    for checkpoint in [false, true] {
        let book = open();
        assert_eq!(book.slot(B, 0), None, "checkpoint {checkpoint}");
        assert_eq!(book.booking(booking.token), Some(booking));
        assert_eq!(book.availability(B, ..).len(), 1);
        book.check_invariants().unwrap();
        if checkpoint {
            book.checkpoint().unwrap();
        }
    }
    let book = open();
    book.release(booking.token).unwrap();
    assert_eq!(book.set_capacity(B, 0, 2).unwrap().booked, 0);
    drop(book);
    assert_eq!(open().slot(B, 0).unwrap().capacity, 2);
}

//! `standby_request`: what a waiting request covers, read back on the book and through
//! `BookBackend` (an `Arc` of it), and gone once the request is served, lapses or leaves.

use std::sync::Arc;
use std::time::Duration;

use surgegate::{ApplicantId, BookBackend, BranchId, ManualClock, SlotBook};

const TTL: Duration = Duration::from_secs(60);

fn book() -> SlotBook<ManualClock> {
    SlotBook::builder()
        .hold_ttl(TTL)
        .shards(4)
        .clock(ManualClock::new())
        .build()
}

/// Polls a future of the in-process book, which is ready at once.
fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the in-process book's futures are ready at once"),
    }
}

#[test]
fn a_waiting_request_reads_back_as_it_was_made_and_ends_with_its_offer() {
    let book = book();
    book.set_capacity(BranchId(3), 5, 1).unwrap();
    let first = book.reserve(BranchId(3), 5, ApplicantId(1)).unwrap();
    assert_eq!(book.standby_request(ApplicantId(2)), None, "never joined");
    let ticket = book
        .standby(
            ApplicantId(2),
            &[BranchId(9), BranchId(3), BranchId(9)],
            2..=7,
        )
        .unwrap();
    let waits = book.standby_request(ApplicantId(2)).expect("it waits");
    assert_eq!(waits.applicant, ApplicantId(2));
    assert_eq!(waits.number, ticket.number);
    assert_eq!(waits.branches, vec![BranchId(9), BranchId(3)], "no repeats");
    assert_eq!((waits.first, waits.last), (2, 7));
    // Another applicant's reading shows nothing of it.
    assert_eq!(book.standby_request(ApplicantId(1)), None);
    book.release(first.token).unwrap();
    // Served: the request is over, its hold is the offer.
    assert_eq!(book.standby_request(ApplicantId(2)), None);
    let offer = book.standby_offer(ApplicantId(2)).expect("the freed unit");
    assert_eq!((offer.branch, offer.slot), (BranchId(3), 5));
    book.check_invariants().unwrap();
}

#[test]
fn a_left_request_reads_as_none_and_a_lapsed_offer_does_not_bring_it_back() {
    let book = book();
    book.set_capacity(BranchId(1), 0, 1).unwrap();
    let first = book.reserve(BranchId(1), 0, ApplicantId(1)).unwrap();
    book.standby(ApplicantId(2), &[BranchId(1)], 0..1).unwrap();
    book.standby(ApplicantId(3), &[BranchId(1)], 0..1).unwrap();
    assert!(book.leave_standby(ApplicantId(3)));
    assert_eq!(book.standby_request(ApplicantId(3)), None);
    book.release(first.token).unwrap();
    // Applicant 2's offer lapses unclaimed: its request ended, it is not waiting again.
    book.clock().advance(TTL + Duration::from_secs(1));
    assert_eq!(book.standby_request(ApplicantId(2)), None);
    assert_eq!(book.standby_offer(ApplicantId(2)), None);
    assert_eq!(book.slot(BranchId(1), 0).unwrap().remaining(), 1);
    book.check_invariants().unwrap();
}

#[test]
fn the_backend_trait_reads_the_same_through_an_arc() {
    let book = Arc::new(book());
    SlotBook::set_capacity(&book, BranchId(1), 0, 1).unwrap();
    SlotBook::reserve(&book, BranchId(1), 0, ApplicantId(1)).unwrap();
    SlotBook::standby(&book, ApplicantId(2), &[BranchId(1)], 0..=0).unwrap();
    let through_trait = ready(BookBackend::standby_request(&book, ApplicantId(2))).unwrap();
    assert_eq!(
        through_trait,
        SlotBook::standby_request(&book, ApplicantId(2))
    );
    assert!(through_trait.is_some());
    assert_eq!(
        ready(BookBackend::standby_request(&book, ApplicantId(7))).unwrap(),
        None
    );
}

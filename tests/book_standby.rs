//! Standby: every rule of the line, each as a test that fails if the rule breaks, with the
//! whole-book check (`check_invariants`, which also checks the line against the shards and
//! that no settled request waits while a unit it covers is free) after every step.

use std::time::Duration;

use surgegate::{
    ApplicantId, BookConfigError, BranchId, Channel, ManualClock, ReserveError, SlotBook,
    StandbyError,
};

const TTL: Duration = Duration::from_secs(60);
const B: BranchId = BranchId(3);
const C: BranchId = BranchId(9);

fn book() -> SlotBook<ManualClock> {
    SlotBook::builder()
        .hold_ttl(TTL)
        .shards(4)
        .clock(ManualClock::new())
        .build()
}

fn check(book: &SlotBook<ManualClock>) {
    book.check_invariants().unwrap();
}

#[test]
fn a_released_booking_goes_to_the_earliest_request_not_to_a_reserve() {
    let book = book();
    book.set_capacity(B, 0, 1).unwrap();
    let h = book.reserve(B, 0, ApplicantId(1)).unwrap();
    let booking = book.confirm(h.token).unwrap();
    let first = book.standby(ApplicantId(2), &[B], 0..10).unwrap();
    let second = book.standby(ApplicantId(3), &[B], 0..10).unwrap();
    assert!(first.number < second.number);
    assert_eq!((first.waiting, second.waiting), (1, 2));
    check(&book);
    book.release(booking.token).unwrap();
    check(&book);
    // Nobody else can take it, whatever they call.
    assert_eq!(book.reserve(B, 0, ApplicantId(4)), Err(ReserveError::Full));
    assert_eq!(
        book.reserve_earliest(B, 0..10, ApplicantId(4)),
        Err(ReserveError::NoneAvailable)
    );
    assert_eq!(book.slot(B, 0).unwrap().held, 1);
    assert_eq!(book.standby_offer(ApplicantId(3)), None);
    let offer = book.standby_offer(ApplicantId(2)).unwrap();
    assert_eq!(
        (offer.branch, offer.slot, offer.applicant),
        (B, 0, ApplicantId(2))
    );
    assert_eq!(
        book.standby_offer(ApplicantId(2)),
        Some(offer),
        "asked again"
    );
    // The offer is an ordinary hold: confirmed like any.
    assert_eq!(book.holds_of(ApplicantId(2)), vec![offer]);
    book.confirm(offer.token).unwrap();
    assert_eq!(book.standby_offer(ApplicantId(2)), None, "a booking now");
    // Its request ended; the second still waits.
    assert!(!book.leave_standby(ApplicantId(2)));
    assert!(book.leave_standby(ApplicantId(3)));
    check(&book);
}

#[test]
fn a_lapsed_hold_goes_to_the_line_and_a_lapsed_offer_to_the_next_request() {
    let book = book();
    book.set_capacity(B, 5, 1).unwrap();
    book.reserve(B, 5, ApplicantId(1)).unwrap();
    book.standby(ApplicantId(2), &[C, B], 0..10).unwrap();
    book.standby(ApplicantId(3), &[B], 5..6).unwrap();
    book.clock().advance(TTL);
    // A reading reclaims the lapsed hold; its unit is held for applicant 2 at once.
    assert_eq!(book.slot(B, 5).unwrap().held, 1);
    assert_eq!(book.reserve(B, 5, ApplicantId(9)), Err(ReserveError::Full));
    check(&book);
    // Applicant 2 never claims it: it lapses a hold lifetime later and passes on to 3.
    book.clock().advance(TTL);
    assert_eq!(
        book.sweep(),
        0,
        "no hold record lapsed: an unclaimed offer did"
    );
    check(&book);
    assert_eq!(book.standby_offer(ApplicantId(2)), None);
    let offer = book.standby_offer(ApplicantId(3)).unwrap();
    assert_eq!(offer.slot, 5);
    assert_eq!(offer.expires_at, book.now() + TTL);
    // 3 lets it lapse too, claimed this time: the unit returns to the slot (nobody waits).
    book.clock().advance(TTL);
    assert_eq!(book.sweep(), 1);
    assert_eq!(book.slot(B, 5).unwrap().remaining(), 1);
    assert!(!book.leave_standby(ApplicantId(2)));
    check(&book);
}

#[test]
fn standby_is_refused_while_a_covered_unit_is_free() {
    let book = book();
    book.set_capacity(B, 0, 1).unwrap();
    book.set_capacity(C, 7, 1).unwrap();
    book.reserve(B, 0, ApplicantId(1)).unwrap();
    assert_eq!(
        book.standby(ApplicantId(2), &[B, C], 0..10),
        Err(StandbyError::UnitFree { branch: C, slot: 7 })
    );
    // Outside the range, the free unit does not matter.
    book.standby(ApplicantId(2), &[B, C], 0..7).unwrap();
    // A closed slot has nothing to reserve.
    book.close_slot(C, 7).unwrap();
    book.standby(ApplicantId(3), &[C], ..).unwrap();
    check(&book);
}

#[test]
fn an_applicant_at_its_limit_is_refused_and_a_request_takes_a_place() {
    let book = book();
    book.set_capacity(B, 0, 2).unwrap();
    book.reserve(B, 0, ApplicantId(1)).unwrap();
    book.reserve(B, 0, ApplicantId(2)).unwrap();
    assert_eq!(
        book.standby(ApplicantId(1), &[B], ..),
        Err(StandbyError::ApplicantLimit)
    );
    book.standby(ApplicantId(3), &[B], ..).unwrap();
    // The waiting request is 3's one place: a reserve elsewhere waits for it to end.
    book.set_capacity(C, 0, 1).unwrap();
    assert_eq!(
        book.reserve(C, 0, ApplicantId(3)),
        Err(ReserveError::ApplicantLimit)
    );
    assert!(book.leave_standby(ApplicantId(3)));
    book.reserve(C, 0, ApplicantId(3)).unwrap();
    check(&book);
}

#[test]
fn a_retry_returns_the_same_ticket_and_errors_change_nothing() {
    let book = book();
    book.set_capacity(B, 0, 1).unwrap();
    book.reserve(B, 0, ApplicantId(1)).unwrap();
    let t = book.standby(ApplicantId(2), &[B], 0..4).unwrap();
    assert_eq!(
        book.standby(ApplicantId(2), &[B], 0..4).unwrap().number,
        t.number
    );
    for bad in [
        book.standby(ApplicantId(5), &[], 0..4),
        book.standby(ApplicantId(5), &[B; 17], 0..4),
        book.standby(ApplicantId(5), &[B], 4..4),
        book.standby(ApplicantId(5), &[B], u32::MAX - 1..u32::MAX),
    ] {
        assert!(
            matches!(
                bad,
                Err(StandbyError::Alternatives { .. } | StandbyError::EmptyRange)
            ),
            "{bad:?}"
        );
        assert!(!bad.unwrap_err().to_string().is_empty());
    }
    assert!(!book.leave_standby(ApplicantId(5)));
    // Duplicated branches are one branch.
    book.standby(ApplicantId(6), &[B, B, B], 0..4).unwrap();
    check(&book);
}

#[test]
fn the_line_is_bounded_and_its_limit_is_a_setting() {
    let book = SlotBook::builder()
        .max_standby_requests(2)
        .clock(ManualClock::new())
        .build();
    book.set_capacity(B, 0, 0).unwrap();
    book.standby(ApplicantId(1), &[B], ..).unwrap();
    book.standby(ApplicantId(2), &[B], ..).unwrap();
    let full = book.standby(ApplicantId(3), &[B], ..);
    assert_eq!(full, Err(StandbyError::LineFull { max: 2 }));
    assert!(full.unwrap_err().is_retryable());
    assert!(book.leave_standby(ApplicantId(1)));
    book.standby(ApplicantId(3), &[B], ..).unwrap();
    check(&book);
    for n in [0, (1 << 24) + 1] {
        assert_eq!(
            SlotBook::builder()
                .max_standby_requests(n)
                .try_build()
                .err(),
            Some(BookConfigError::MaxStandbyRequests(n))
        );
    }
}

#[test]
fn a_capacity_raise_serves_the_line_in_order_and_leaves_the_rest_free() {
    let book = book();
    book.set_capacity(B, 2, 0).unwrap();
    for a in 1..=3 {
        book.standby(ApplicantId(a), &[B], 0..10).unwrap();
    }
    // A request covering another slot only is skipped, not served.
    book.standby(ApplicantId(4), &[B], 3..4).unwrap();
    let st = book.set_capacity(B, 2, 5).unwrap();
    assert_eq!((st.capacity, st.held), (5, 3));
    check(&book);
    for a in 1..=3 {
        assert_eq!(book.standby_offer(ApplicantId(a)).unwrap().slot, 2);
    }
    assert_eq!(book.standby_offer(ApplicantId(4)), None);
    // Opening a slot the line covers serves it too.
    book.set_capacity(B, 3, 1).unwrap();
    assert_eq!(book.standby_offer(ApplicantId(4)).unwrap().slot, 3);
    assert_eq!(book.slot(B, 2).unwrap().remaining(), 2);
    check(&book);
}

#[test]
fn opened_channel_quotas_go_to_the_line_and_a_quota_unit_returns_to_its_quota() {
    let book = book();
    book.set_capacity(B, 0, 3).unwrap();
    book.set_channel_quota(B, 0, Channel(1), 2).unwrap();
    book.reserve(B, 0, ApplicantId(1)).unwrap(); // the open part's one unit
    let counter = book.reserve_on(Channel(1), B, 0, ApplicantId(2)).unwrap();
    book.standby(ApplicantId(5), &[B], ..).unwrap();
    book.standby(ApplicantId(6), &[B], ..).unwrap();
    // A unit from the quota goes back to the quota, not to the web's line.
    book.release(counter.token).unwrap();
    assert_eq!(book.standby_offer(ApplicantId(5)), None);
    check(&book);
    // Opening the quotas frees both kept units: the line takes them, in order.
    book.open_channel_quotas(B, 0).unwrap();
    check(&book);
    assert!(book.standby_offer(ApplicantId(5)).is_some());
    assert!(book.standby_offer(ApplicantId(6)).is_some());
    assert_eq!(book.slot(B, 0).unwrap().remaining(), 0);
}

#[test]
fn a_channel_unit_over_its_quota_goes_to_the_line() {
    let book = book();
    book.set_capacity(B, 0, 2).unwrap();
    book.set_channel_quota(B, 0, Channel(1), 1).unwrap();
    book.reserve_on(Channel(1), B, 0, ApplicantId(1)).unwrap(); // from the quota
    let open = book.reserve_on(Channel(1), B, 0, ApplicantId(2)).unwrap(); // the open part
    book.standby(ApplicantId(7), &[B], ..).unwrap();
    book.release(open.token).unwrap();
    assert!(book.standby_offer(ApplicantId(7)).is_some());
    check(&book);
}

#[test]
fn a_lowered_capacity_frees_nothing_and_the_line_waits() {
    let book = book();
    book.set_capacity(B, 0, 2).unwrap();
    let a = book.reserve(B, 0, ApplicantId(1)).unwrap();
    book.reserve(B, 0, ApplicantId(2)).unwrap();
    book.standby(ApplicantId(3), &[B], ..).unwrap();
    book.set_capacity(B, 0, 1).unwrap();
    // 2 taken of 1: a release leaves no room, so nothing goes to the line.
    book.release(a.token).unwrap();
    assert_eq!(book.standby_offer(ApplicantId(3)), None);
    assert_eq!(book.slot(B, 0).unwrap().remaining(), 0);
    check(&book);
}

#[test]
fn through_the_trait_the_offer_is_on_the_traits_time_base() {
    use surgegate::BookBackend;
    let book = book();
    book.set_capacity(B, 0, 1).unwrap();
    let h = book.reserve(B, 0, ApplicantId(1)).unwrap();
    let ticket = block_on(BookBackend::standby(&book, ApplicantId(2), &[B], 0..1)).unwrap();
    assert_eq!(ticket.applicant, ApplicantId(2));
    book.release(h.token).unwrap();
    let offer = block_on(BookBackend::standby_offer(&book, ApplicantId(2)))
        .unwrap()
        .unwrap();
    let direct = book.standby_offer(ApplicantId(2)).unwrap();
    assert_eq!(offer.token, direct.token);
    assert!(offer.expires_at > BookBackend::now_unix(&book));
    assert!(!block_on(BookBackend::leave_standby(&book, ApplicantId(2))).unwrap());
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the in-process book's futures are ready at once"),
    }
}

//! The book's rules, once for every backend: DESIGN.md "SlotBook" rules 1–7, closing slots,
//! one hold among several branches, the lookups and the sweep, with the invariants checked
//! after every step.

use std::time::Duration;

use surgegate::book::Preference;
use surgegate::{
    ApplicantId, BookBackend, BranchId, CapacityError, Channel, CloseError, ConfirmError,
    MAX_ALTERNATIVES, MAX_CAPACITY, ReleaseError, ReserveError, SlotState,
};

use super::Backends;
use super::checks::{self, BookWatch};

/// A hold's lifetime in the suite: long enough for a few calls on a loaded machine, short
/// enough to wait out.
const TTL: Duration = Duration::from_millis(800);

const B1: BranchId = BranchId(1);
const B2: BranchId = BranchId(2);
const B3: BranchId = BranchId(3);

fn a(n: u64) -> ApplicantId {
    ApplicantId(n)
}

fn state(capacity: u32, held: u32, booked: u32) -> SlotState {
    SlotState {
        capacity,
        held,
        booked,
    }
}

fn watch(limit: u32, applicants: u64) -> BookWatch {
    BookWatch {
        branches: vec![B1, B2, B3],
        slots: 0..64,
        applicants: (0..applicants).map(ApplicantId).collect(),
        limit,
        ..BookWatch::default()
    }
}

/// Waits until a hold made now has lapsed for sure (and its count with it).
async fn outlive_holds<B: Backends>(b: &B) {
    b.pass(TTL + b.count_margin() + b.slack()).await;
}

pub async fn run_all<B: Backends>(b: &B) {
    rule1_never_overbooks_and_a_cut_keeps_what_is_taken(b).await;
    rule2_readings_never_show_an_expired_hold(b).await;
    rule3_expired_holds_never_block(b).await;
    rule4_retries_return_what_the_first_call_made(b).await;
    rule5_the_applicant_limit_spans_branches(b).await;
    rule6_errors_change_nothing(b).await;
    rule7_reserve_earliest_takes_the_lowest_slot_with_room(b).await;
    closed_slots_take_no_new_holds_and_keep_their_records(b).await;
    one_hold_among_several_branches(b).await;
    lookups_and_the_time_base(b).await;
    sweep_reclaims_every_lapsed_hold(b).await;
    channel_quotas_through_the_trait(b).await;
}

/// Channel quotas through the trait: kept units out of plain reach, taken on their channel,
/// given back to the quota they came from, opened to all.
async fn channel_quotas_through_the_trait<B: Backends>(b: &B) {
    let book = b.book(Duration::from_secs(60), 1).await;
    book.set_capacity(B2, 9, 2).await.unwrap();
    let kept = book.set_channel_quota(B2, 9, Channel(1), 1).await;
    assert_eq!(kept, Ok(state(1, 0, 0)), "{}: the open part", b.name());
    book.reserve(B2, 9, a(1)).await.unwrap();
    assert_eq!(book.reserve(B2, 9, a(2)).await, Err(ReserveError::Full));
    let counter = book.reserve_on(Channel(1), B2, 9, a(2)).await.unwrap();
    assert!(
        counter.expires_at > book.now_unix(),
        "the trait's time base"
    );
    assert_eq!(book.slot(B2, 9).await, Ok(Some(state(2, 2, 0))));
    book.release(counter.token).await.unwrap();
    assert_eq!(book.reserve(B2, 9, a(3)).await, Err(ReserveError::Full));
    assert_eq!(book.open_channel_quotas_in(B2, 0..64).await, Ok(1));
    book.reserve(B2, 9, a(3)).await.unwrap();
    let q = book.channel_quotas(B2, 9).await.unwrap().unwrap();
    assert_eq!((q.capacity, q.channels[0].quota), (2, 0));
}

async fn rule1_never_overbooks_and_a_cut_keeps_what_is_taken<B: Backends>(b: &B) {
    let book = b.book(Duration::from_secs(60), 1).await;
    let mut w = watch(1, 10);
    assert_eq!(book.slot(B1, 3).await, Ok(None));
    assert_eq!(book.set_capacity(B1, 3, 3).await, Ok(state(3, 0, 0)));
    for n in 0..3 {
        book.reserve(B1, 3, a(n)).await.unwrap();
        checks::book(b, &book, &w, "rule 1: holds up to the capacity").await;
    }
    assert_eq!(book.reserve(B1, 3, a(5)).await, Err(ReserveError::Full));
    let booked = book.holds_of(a(0)).await.unwrap()[0];
    book.confirm(booked.token).await.unwrap();
    // A cut below what is taken keeps every hold and booking, and grants nothing.
    assert_eq!(book.set_capacity(B1, 3, 1).await, Ok(state(1, 2, 1)));
    w.lowered.push((B1, 3));
    checks::book(b, &book, &w, "rule 1: a cut").await;
    assert_eq!(book.reserve(B1, 3, a(6)).await, Err(ReserveError::Full));
    for n in 1..3 {
        let hold = book.holds_of(a(n)).await.unwrap()[0];
        book.release(hold.token).await.unwrap();
        // held + booked = 1 = capacity: still nothing to grant.
        assert_eq!(book.reserve(B1, 3, a(6)).await, Err(ReserveError::Full));
        checks::book(b, &book, &w, "rule 1: released after the cut").await;
    }
    book.release(booked.token).await.unwrap();
    let hold = book.reserve(B1, 3, a(6)).await.unwrap();
    assert_eq!(hold.slot, 3);
    assert_eq!(book.slot(B1, 3).await, Ok(Some(state(1, 1, 0))));
    checks::book(b, &book, &w, "rule 1: below the cut again").await;
    assert_eq!(
        book.set_capacity(B1, 4, MAX_CAPACITY + 1).await,
        Err(CapacityError::CapacityTooLarge {
            capacity: MAX_CAPACITY + 1,
            max: MAX_CAPACITY
        })
    );
}

async fn rule2_readings_never_show_an_expired_hold<B: Backends>(b: &B) {
    let book = b.book(TTL, 1).await;
    let w = watch(1, 4);
    book.set_capacity(B1, 0, 3).await.unwrap();
    book.set_capacity(B1, 1, 3).await.unwrap();
    book.reserve(B1, 0, a(1)).await.unwrap();
    book.reserve(B1, 1, a(2)).await.unwrap();
    checks::book(b, &book, &w, "rule 2: two live holds").await;
    assert_eq!(book.slot(B1, 0).await, Ok(Some(state(3, 1, 0))));
    b.pass(TTL + b.slack()).await;
    // Nobody swept: the readings still show no lapsed hold.
    assert_eq!(book.slot(B1, 0).await, Ok(Some(state(3, 0, 0))));
    let open = book.availability(B1, 0..2).await.unwrap();
    assert_eq!(open, vec![(0, state(3, 0, 0)), (1, state(3, 0, 0))]);
    assert!(book.holds_of(a(1)).await.unwrap().is_empty());
    checks::book(b, &book, &w, "rule 2: both lapsed").await;
}

async fn rule3_expired_holds_never_block<B: Backends>(b: &B) {
    let book = b.book(TTL, 1).await;
    let w = watch(1, 8);
    book.set_capacity(B1, 0, 1).await.unwrap();
    book.set_capacity(B2, 5, 1).await.unwrap();
    let lapsing = book.reserve(B1, 0, a(1)).await.unwrap();
    let lapsing2 = book.reserve_earliest(B2, 0..10, a(2)).await.unwrap();
    assert_eq!(book.reserve(B1, 0, a(3)).await, Err(ReserveError::Full));
    b.pass(TTL + b.slack()).await;
    // The lapsed holds' units are free for others at once, whatever their counts do.
    let hold = book.reserve(B1, 0, a(3)).await.unwrap();
    assert_eq!(hold.slot, 0);
    let hold = book.reserve_earliest(B2, 0..10, a(4)).await.unwrap();
    assert_eq!(hold.slot, 5);
    checks::book(b, &book, &w, "rule 3: lapsed units taken again").await;
    for token in [lapsing.token, lapsing2.token] {
        let refused = book.confirm(token).await;
        assert!(
            matches!(
                refused,
                Err(ConfirmError::Expired | ConfirmError::UnknownToken)
            ),
            "{refused:?}"
        );
    }
    assert_eq!(book.slot(B1, 0).await, Ok(Some(state(1, 1, 0))));
    checks::book(b, &book, &w, "rule 3: lapsed confirmations refused").await;
}

async fn rule4_retries_return_what_the_first_call_made<B: Backends>(b: &B) {
    let book = b.book(Duration::from_secs(60), 2).await;
    let w = watch(2, 4);
    for slot in 0..4 {
        book.set_capacity(B1, slot, 2).await.unwrap();
    }
    let hold = book.reserve(B1, 2, a(1)).await.unwrap();
    assert_eq!(book.reserve(B1, 2, a(1)).await, Ok(hold));
    // reserve_earliest by an applicant holding a slot of the branch in the range: that
    // hold, though slot 0 has room.
    assert_eq!(book.reserve_earliest(B1, 0..4, a(1)).await, Ok(hold));
    assert_eq!(book.slot(B1, 2).await, Ok(Some(state(2, 1, 0))));
    checks::book(b, &book, &w, "rule 4: retried reservations").await;
    let booking = book.confirm(hold.token).await.unwrap();
    assert_eq!(
        (
            booking.token,
            booking.branch,
            booking.slot,
            booking.applicant
        ),
        (hold.token, B1, 2, a(1))
    );
    assert_eq!(book.confirm(hold.token).await, Ok(booking));
    assert_eq!(book.slot(B1, 2).await, Ok(Some(state(2, 0, 1))));
    checks::book(b, &book, &w, "rule 4: retried confirmation").await;
    book.release(booking.token).await.unwrap();
    assert_eq!(
        book.release(booking.token).await,
        Err(ReleaseError::UnknownToken)
    );
    assert_eq!(book.slot(B1, 2).await, Ok(Some(state(2, 0, 0))));
    checks::book(b, &book, &w, "rule 4: a second release").await;
}

async fn rule5_the_applicant_limit_spans_branches<B: Backends>(b: &B) {
    let book = b.book(TTL, 2).await;
    let w = watch(2, 4);
    for branch in [B1, B2, B3] {
        book.set_capacity(branch, 0, 5).await.unwrap();
    }
    let first = book.reserve(B1, 0, a(1)).await.unwrap();
    let second = book.reserve(B2, 0, a(1)).await.unwrap();
    assert_eq!(
        book.reserve(B3, 0, a(1)).await,
        Err(ReserveError::ApplicantLimit)
    );
    checks::book(b, &book, &w, "rule 5: at the limit").await;
    // A booking counts as much as a hold.
    let booking = book.confirm(first.token).await.unwrap();
    assert_eq!(
        book.reserve_earliest(B3, 0..5, a(1)).await,
        Err(ReserveError::ApplicantLimit)
    );
    book.release(booking.token).await.unwrap();
    let third = book.reserve(B3, 0, a(1)).await.unwrap();
    checks::book(
        b,
        &book,
        &w,
        "rule 5: a cancelled booking gives its place back",
    )
    .await;
    assert_ne!(third.token, second.token);
    // Lapsed holds give their places back (on a shared store, within its margin).
    outlive_holds(b).await;
    book.reserve(B1, 0, a(1)).await.unwrap();
    book.reserve(B2, 0, a(1)).await.unwrap();
    checks::book(b, &book, &w, "rule 5: lapsed holds gave their places back").await;
}

/// Everything the suite can read of a book, to show that an error changed nothing.
async fn everything<K: BookBackend>(book: &K, w: &BookWatch) -> Vec<String> {
    let mut seen = Vec::new();
    for &branch in &w.branches {
        seen.push(format!("{:?}", book.availability(branch, ..).await));
    }
    for &applicant in &w.applicants {
        seen.push(format!("{:?}", book.holds_of(applicant).await));
        seen.push(format!("{:?}", book.bookings_of(applicant).await));
    }
    seen
}

async fn rule6_errors_change_nothing<B: Backends>(b: &B) {
    let book = b.book(Duration::from_secs(60), 1).await;
    let w = watch(1, 4);
    book.set_capacity(B1, 0, 1).await.unwrap();
    book.set_capacity(B2, 0, 1).await.unwrap();
    let hold = book.reserve(B1, 0, a(1)).await.unwrap();
    let before = everything(&book, &w).await;
    let unknown = "0".repeat(32).parse().unwrap();
    let refused = [
        book.reserve(B1, 0, a(2)).await.err(),
        book.reserve(B1, 9, a(2)).await.err(),
        book.reserve(BranchId(99), 0, a(2)).await.err(),
        book.reserve_earliest(B1, 5..5, a(2)).await.err(),
        book.reserve_earliest(B1, 0..1, a(2)).await.err(),
        book.reserve_earliest(BranchId(99), 0..9, a(2)).await.err(),
        book.reserve(B2, 0, a(1)).await.err(),
        book.reserve_earliest_among(&[], 0..9, a(2)).await.err(),
        book.reserve_earliest_among(&[B1], 3..3, a(2)).await.err(),
    ];
    use ReserveError::*;
    let expected = [
        Full,
        UnknownSlot,
        UnknownSlot,
        EmptyRange,
        NoneAvailable,
        UnknownSlot,
        ApplicantLimit,
        Alternatives {
            max: MAX_ALTERNATIVES as u32,
        },
        EmptyRange,
    ];
    for (got, want) in refused.iter().zip(expected) {
        assert_eq!(*got, Some(want), "{}", b.name());
    }
    assert_eq!(book.confirm(unknown).await, Err(ConfirmError::UnknownToken));
    assert_eq!(book.release(unknown).await, Err(ReleaseError::UnknownToken));
    assert_eq!(book.close_slot(B1, 40).await, Err(CloseError::UnknownSlot));
    let too_large = book.set_capacity(B1, 1, u32::MAX).await.unwrap_err();
    assert!(!too_large.is_retryable(), "{too_large:?}");
    assert_eq!(everything(&book, &w).await, before, "{}", b.name());
    assert_eq!(book.hold(hold.token).await, Ok(Some(hold)));
    checks::book(b, &book, &w, "rule 6: after every refusal").await;
}

async fn rule7_reserve_earliest_takes_the_lowest_slot_with_room<B: Backends>(b: &B) {
    let book = b.book(Duration::from_secs(60), 1).await;
    let w = watch(1, 12);
    for slot in [2, 3, 5, 8, 13] {
        book.set_capacity(B1, slot, 1).await.unwrap();
    }
    let mut taken = Vec::new();
    for n in 0..5 {
        let hold = book.reserve_earliest(B1, 0..20, a(n)).await.unwrap();
        taken.push(hold.slot);
        checks::book(b, &book, &w, "rule 7: the earliest").await;
    }
    assert_eq!(taken, [2, 3, 5, 8, 13]);
    assert_eq!(
        book.reserve_earliest(B1, 0..20, a(9)).await,
        Err(ReserveError::NoneAvailable)
    );
    // A release makes its slot the earliest again; a range starting past it skips it.
    let three = book.holds_of(a(1)).await.unwrap()[0];
    book.release(three.token).await.unwrap();
    assert_eq!(
        book.reserve_earliest(B1, 4..=20, a(9)).await,
        Err(ReserveError::NoneAvailable)
    );
    assert_eq!(book.reserve_earliest(B1, ..=3, a(9)).await.unwrap().slot, 3);
    checks::book(b, &book, &w, "rule 7: a released slot is the earliest").await;
}

async fn closed_slots_take_no_new_holds_and_keep_their_records<B: Backends>(b: &B) {
    let book = b.book(Duration::from_secs(60), 1).await;
    let mut w = watch(1, 6);
    book.set_capacity(B1, 0, 5).await.unwrap();
    book.set_capacity(B1, 1, 5).await.unwrap();
    let held = book.reserve(B1, 0, a(1)).await.unwrap();
    let booked = book.reserve(B1, 0, a(2)).await.unwrap();
    book.confirm(booked.token).await.unwrap();
    assert_eq!(book.close_slot(B1, 0).await, Ok(state(5, 1, 1)));
    w.closed.push((B1, 0));
    checks::book(b, &book, &w, "closing a slot").await;
    assert_eq!(book.slot(B1, 0).await, Ok(None));
    let open = book.availability(B1, ..).await.unwrap();
    assert_eq!(open, vec![(1, state(5, 0, 0))]);
    assert_eq!(
        book.reserve(B1, 0, a(3)).await,
        Err(ReserveError::UnknownSlot)
    );
    assert_eq!(
        book.reserve_earliest(B1, 0..1, a(3)).await,
        Err(ReserveError::NoneAvailable)
    );
    assert_eq!(book.reserve_earliest(B1, 0..2, a(3)).await.unwrap().slot, 1);
    // Closing again changes nothing; a hold granted while open is still honoured.
    let again = book.close_slot(B1, 0).await.unwrap();
    assert_eq!((again.held, again.booked), (1, 1));
    book.confirm(held.token).await.unwrap();
    checks::book(b, &book, &w, "a closed slot's hold confirmed").await;
    // set_capacity opens it again, with its bookings.
    assert_eq!(book.set_capacity(B1, 0, 3).await, Ok(state(3, 0, 2)));
    w.closed.clear();
    checks::book(b, &book, &w, "reopened").await;
    assert_eq!(book.reserve(B1, 0, a(4)).await.unwrap().slot, 0);
    assert_eq!(book.close_slot(B2, 0).await, Err(CloseError::UnknownSlot));
}

async fn one_hold_among_several_branches<B: Backends>(b: &B) {
    let book = b.book(Duration::from_secs(60), 1).await;
    let w = watch(1, 12);
    book.set_capacity(B1, 9, 1).await.unwrap();
    book.set_capacity(B2, 3, 1).await.unwrap();
    book.set_capacity(B2, 7, 1).await.unwrap();
    book.set_capacity(B3, 7, 1).await.unwrap();
    let near = [B1, B2];
    let first = book
        .reserve_among(&near, 0..30, a(1), Preference::FirstBranch)
        .await
        .unwrap();
    assert_eq!((first.branch, first.slot), (B1, 9));
    let earliest = book
        .reserve_earliest_among(&near, 0..30, a(2))
        .await
        .unwrap();
    assert_eq!((earliest.branch, earliest.slot), (B2, 3));
    checks::book(b, &book, &w, "among: by preference").await;
    // Rule 4: a retry returns the hold the applicant has at one of the branches.
    assert_eq!(
        book.reserve_earliest_among(&[B3, B2], 0..30, a(2)).await,
        Ok(earliest)
    );
    assert_eq!(
        book.reserve_among(&[B2, B1], 0..30, a(1), Preference::EarliestSlot)
            .await,
        Ok(first)
    );
    // Ties at one slot go to the branch listed first.
    let tie = book
        .reserve_earliest_among(&[B3, B2], 0..30, a(3))
        .await
        .unwrap();
    assert_eq!((tie.branch, tie.slot), (B3, 7));
    checks::book(b, &book, &w, "among: ties and retries").await;
    let last = book
        .reserve_earliest_among(&[B3, B2, B1], 0..30, a(4))
        .await
        .unwrap();
    assert_eq!((last.branch, last.slot), (B2, 7));
    let refusals = [
        book.reserve_earliest_among(&[B1, B2, B3], 0..30, a(5))
            .await,
        book.reserve_earliest_among(&[BranchId(70), BranchId(71)], 0..30, a(5))
            .await,
        book.reserve_earliest_among(&[B1], 0..30, a(4)).await,
        book.reserve_earliest_among(&[B1; MAX_ALTERNATIVES + 1], 0..30, a(5))
            .await,
    ];
    let expected = [
        ReserveError::NoneAvailable,
        ReserveError::UnknownSlot,
        ReserveError::ApplicantLimit,
        ReserveError::Alternatives {
            max: MAX_ALTERNATIVES as u32,
        },
    ];
    for (got, want) in refusals.into_iter().zip(expected) {
        assert_eq!(got, Err(want), "{}", b.name());
    }
    checks::book(b, &book, &w, "among: refusals").await;
    // An unknown branch among known ones is skipped.
    book.release(first.token).await.unwrap();
    let skipped = book
        .reserve_earliest_among(&[BranchId(70), B1], 0..30, a(5))
        .await
        .unwrap();
    assert_eq!((skipped.branch, skipped.slot), (B1, 9));
    checks::book(b, &book, &w, "among: an unknown branch skipped").await;
}

async fn lookups_and_the_time_base<B: Backends>(b: &B) {
    let ttl = Duration::from_secs(600);
    let book = b.book(ttl, 2).await;
    let w = watch(2, 4);
    assert_eq!(book.hold_ttl(), ttl);
    book.set_capacity(B1, 0, 2).await.unwrap();
    book.set_capacity(B2, 4, 2).await.unwrap();
    let before = book.now_unix();
    let hold = book.reserve(B1, 0, a(1)).await.unwrap();
    let after = book.now_unix();
    // A hold's expiry and the book's now are on one time base, the Unix epoch's.
    let slack = b.slack();
    assert!(
        hold.expires_at + slack >= before + ttl && hold.expires_at <= after + ttl + slack,
        "{}: {:?} not within {before:?}..{after:?} + {ttl:?}",
        b.name(),
        hold.expires_at
    );
    let other = book.reserve(B2, 4, a(1)).await.unwrap();
    assert_eq!(book.hold(hold.token).await, Ok(Some(hold)));
    let mut holds = book.holds_of(a(1)).await.unwrap();
    holds.sort_by_key(|h| h.branch);
    assert_eq!(holds, vec![hold, other]);
    assert_eq!(book.booking(hold.token).await, Ok(None));
    let booking = book.confirm(hold.token).await.unwrap();
    assert_eq!(book.booking(hold.token).await, Ok(Some(booking)));
    assert_eq!(book.hold(hold.token).await, Ok(None));
    assert_eq!(book.bookings_of(a(1)).await, Ok(vec![booking]));
    assert_eq!(book.holds_of(a(1)).await, Ok(vec![other]));
    // Nobody sees another's records.
    assert_eq!(book.holds_of(a(2)).await, Ok(vec![]));
    assert_eq!(book.bookings_of(a(2)).await, Ok(vec![]));
    checks::book(b, &book, &w, "lookups").await;
}

async fn sweep_reclaims_every_lapsed_hold<B: Backends>(b: &B) {
    let book = b.book(TTL, 1).await;
    let w = watch(1, 8);
    book.set_capacity(B1, 0, 5).await.unwrap();
    book.set_capacity(B2, 0, 5).await.unwrap();
    for n in 0..3 {
        book.reserve(B1, 0, a(n)).await.unwrap();
    }
    for n in 3..5 {
        book.reserve(B2, 0, a(n)).await.unwrap();
    }
    let kept = book.reserve(B2, 0, a(5)).await.unwrap();
    book.confirm(kept.token).await.unwrap();
    assert_eq!(book.sweep().await, Ok(0));
    b.pass(TTL + b.slack()).await;
    // Nothing read the branches since: the sweep finds all five, in both branches.
    assert_eq!(book.sweep().await, Ok(5), "{}", b.name());
    assert_eq!(book.sweep().await, Ok(0));
    assert_eq!(book.slot(B2, 0).await, Ok(Some(state(5, 0, 1))));
    checks::book(b, &book, &w, "after the sweep").await;
}

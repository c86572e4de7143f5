//! Every rule of the SlotBook (DESIGN.md, SlotBook rules 1–7), its limits and its bad-input
//! handling, on a ManualClock: no sleeps.

use std::time::Duration;

use surgegate::{
    ApplicantId, BookConfigError, BranchId, CapacityError, ConfirmError, HoldToken, ManualClock,
    ReleaseError, ReserveError, SlotBook, SlotState,
};

const B: BranchId = BranchId(7);
const TTL: Duration = Duration::from_secs(600);

fn book(limit: u32) -> (ManualClock, SlotBook<ManualClock>) {
    let clock = ManualClock::new();
    let book = SlotBook::builder()
        .hold_ttl(TTL)
        .max_active_per_applicant(limit)
        .max_slots_per_branch(2048)
        .clock(clock.clone())
        .build();
    (clock, book)
}

fn a(n: u64) -> ApplicantId {
    ApplicantId(n)
}

fn state(capacity: u32, held: u32, booked: u32) -> Option<SlotState> {
    Some(SlotState {
        capacity,
        held,
        booked,
    })
}

/// Everything observable about a branch, to show that an error changed nothing.
fn snapshot(book: &SlotBook<ManualClock>) -> (Vec<(u32, SlotState)>, surgegate::BookTotals) {
    (book.availability(B, ..), book.check_invariants().unwrap())
}

// Rule 1: no overbooking, ever; lowering keeps what exists and blocks new holds.
#[test]
fn rule1_capacity_is_never_exceeded_and_lowering_blocks_new_holds() {
    let (_, book) = book(1);
    book.set_capacity(B, 3, 3).unwrap();
    for n in 0..3 {
        book.reserve(B, 3, a(n)).unwrap();
    }
    assert_eq!(book.reserve(B, 3, a(9)), Err(ReserveError::Full));
    assert_eq!(book.slot(B, 3), state(3, 3, 0));

    // Lower to 1: the three holds survive, nothing new is granted until taken < 1.
    let after = book.set_capacity(B, 3, 1).unwrap();
    assert_eq!(
        after,
        SlotState {
            capacity: 1,
            held: 3,
            booked: 0
        }
    );
    assert_eq!(after.remaining(), 0);
    let holds: Vec<_> = (0..3).map(|n| book.reserve(B, 3, a(n)).unwrap()).collect(); // idempotent
    assert_eq!(book.reserve(B, 3, a(9)), Err(ReserveError::Full));
    book.release(holds[0].token).unwrap();
    book.release(holds[1].token).unwrap();
    assert_eq!(
        book.reserve(B, 3, a(9)),
        Err(ReserveError::Full),
        "1 taken of 1"
    );
    book.release(holds[2].token).unwrap();
    book.reserve(B, 3, a(9)).unwrap();
    assert_eq!(book.slot(B, 3), state(1, 1, 0));
    book.check_invariants().unwrap();
}

// Rule 2: conservation, and expired holds are never shown, swept or not.
#[test]
fn rule2_readings_never_show_an_expired_hold() {
    let (clock, book) = book(1);
    book.set_capacity(B, 0, 5).unwrap();
    book.set_capacity(B, 1, 5).unwrap();
    book.reserve(B, 0, a(1)).unwrap();
    let h = book.reserve(B, 1, a(2)).unwrap();
    book.confirm(h.token).unwrap();
    assert_eq!(book.slot(B, 0), state(5, 1, 0));

    clock.advance(TTL - Duration::from_nanos(1));
    assert_eq!(
        book.slot(B, 0),
        state(5, 1, 0),
        "one nanosecond before expiry"
    );
    clock.advance(Duration::from_nanos(1));
    // No sweep was called: the reading itself must not show the expired hold.
    assert_eq!(book.slot(B, 0), state(5, 0, 0));
    assert_eq!(
        book.availability(B, 0..2),
        vec![(0, state(5, 0, 0).unwrap()), (1, state(5, 0, 1).unwrap())]
    );
    for (_, s) in book.availability(B, ..) {
        assert_eq!(s.remaining(), s.capacity - s.held - s.booked);
    }
    assert_eq!(book.check_invariants().unwrap().expired_holds, 0);
}

#[test]
fn rule2_expired_holds_are_invisible_even_in_set_capacity_answers() {
    let (clock, book) = book(1);
    book.set_capacity(B, 0, 1).unwrap();
    book.reserve(B, 0, a(1)).unwrap();
    clock.advance(TTL);
    assert_eq!(
        book.set_capacity(B, 0, 2).unwrap(),
        SlotState {
            capacity: 2,
            held: 0,
            booked: 0
        }
    );
}

// Rule 3: expired holds never block.
#[test]
fn rule3_an_expired_hold_never_makes_a_slot_full() {
    let (clock, book) = book(1);
    book.set_capacity(B, 0, 1).unwrap();
    let old = book.reserve(B, 0, a(1)).unwrap();
    assert_eq!(book.reserve(B, 0, a(2)), Err(ReserveError::Full));
    clock.advance(TTL);
    let new = book.reserve(B, 0, a(2)).unwrap();
    assert_ne!(new.token, old.token);
    assert_eq!(book.slot(B, 0), state(1, 1, 0));
    // Confirming the expired hold fails, and its unit stays with the new holder.
    assert!(matches!(
        book.confirm(old.token),
        Err(ConfirmError::Expired | ConfirmError::UnknownToken)
    ));
    assert_eq!(
        book.confirm(old.token),
        Err(ConfirmError::UnknownToken),
        "reclaimed by now"
    );
    book.confirm(new.token).unwrap();
    assert_eq!(book.slot(B, 0), state(1, 0, 1));
}

#[test]
fn rule3_reserve_earliest_skips_nothing_because_of_expired_holds() {
    let (clock, book) = book(1);
    for s in 0..4 {
        book.set_capacity(B, s, 1).unwrap();
    }
    book.reserve(B, 0, a(1)).unwrap();
    book.reserve(B, 1, a(2)).unwrap();
    clock.advance(Duration::from_secs(1));
    book.reserve(B, 2, a(3)).unwrap();
    assert_eq!(book.reserve_earliest(B, 0..4, a(4)).unwrap().slot, 3);
    clock.advance(TTL - Duration::from_secs(1));
    // Holds on 0 and 1 expired (not swept): the earliest slot with room is 0 again.
    assert_eq!(book.reserve_earliest(B, 0..4, a(5)).unwrap().slot, 0);
    assert_eq!(book.reserve_earliest(B, 0..4, a(6)).unwrap().slot, 1);
    assert_eq!(
        book.reserve_earliest(B, 0..4, a(7)),
        Err(ReserveError::NoneAvailable)
    );
}

#[test]
fn rule3_confirm_exactly_at_expiry_fails() {
    let (clock, book) = book(1);
    book.set_capacity(B, 0, 1).unwrap();
    let h = book.reserve(B, 0, a(1)).unwrap();
    assert_eq!(h.expires_at, TTL);
    clock.advance(TTL);
    assert_eq!(book.confirm(h.token), Err(ConfirmError::Expired));
    assert_eq!(book.slot(B, 0), state(1, 0, 0));
}

// Rule 4: idempotent.
#[test]
fn rule4_retries_never_take_a_second_unit() {
    let (_, book) = book(3);
    book.set_capacity(B, 0, 5).unwrap();
    book.set_capacity(B, 1, 5).unwrap();
    let h = book.reserve(B, 0, a(1)).unwrap();
    assert_eq!(book.reserve(B, 0, a(1)).unwrap(), h);
    assert_eq!(
        book.reserve_earliest(B, 0..2, a(1)).unwrap(),
        h,
        "holds a slot of the branch in range"
    );
    assert_eq!(book.slot(B, 0), state(5, 1, 0));
    // Outside the range of the existing hold, it is a new request.
    let other = book.reserve_earliest(B, 1..2, a(1)).unwrap();
    assert_ne!(other.token, h.token);
    assert_eq!(other.slot, 1);

    let booking = book.confirm(h.token).unwrap();
    assert_eq!(book.confirm(h.token).unwrap(), booking);
    assert_eq!(booking.token, h.token, "a booking keeps its hold's token");
    assert_eq!(book.slot(B, 0), state(5, 0, 1));

    book.release(booking.token).unwrap();
    assert_eq!(book.release(booking.token), Err(ReleaseError::UnknownToken));
    assert_eq!(book.confirm(booking.token), Err(ConfirmError::UnknownToken));
    assert_eq!(book.booking(booking.token), None);
    assert_eq!(book.slot(B, 0), state(5, 0, 0));
}

#[test]
fn rule4_a_booked_slot_is_not_a_hold_to_return() {
    let (_, book) = book(2);
    book.set_capacity(B, 0, 5).unwrap();
    let h = book.reserve(B, 0, a(1)).unwrap();
    book.confirm(h.token).unwrap();
    // The applicant holds no *hold* there any more: a second reserve is a second unit.
    let second = book.reserve(B, 0, a(1)).unwrap();
    assert_ne!(second.token, h.token);
    assert_eq!(book.slot(B, 0), state(5, 1, 1));
}

// Rule 5: applicant limit.
#[test]
fn rule5_live_holds_plus_bookings_never_exceed_the_limit() {
    let (clock, book) = book(2);
    for s in 0..4 {
        book.set_capacity(B, s, 9).unwrap();
    }
    let h0 = book.reserve(B, 0, a(1)).unwrap();
    let h1 = book.reserve(B, 1, a(1)).unwrap();
    assert_eq!(book.reserve(B, 2, a(1)), Err(ReserveError::ApplicantLimit));
    assert_eq!(
        book.reserve_earliest(B, 2..4, a(1)),
        Err(ReserveError::ApplicantLimit)
    );
    book.confirm(h0.token).unwrap();
    assert_eq!(
        book.reserve(B, 2, a(1)),
        Err(ReserveError::ApplicantLimit),
        "bookings count"
    );
    book.release(h1.token).unwrap();
    let h2 = book.reserve(B, 2, a(1)).unwrap();
    // An expired hold no longer counts.
    clock.advance(TTL);
    let h3 = book.reserve(B, 3, a(1)).unwrap();
    assert_ne!(h3.token, h2.token);
    assert_eq!(book.slot(B, 2), state(9, 0, 0));
    // Other applicants are unaffected.
    book.reserve(B, 2, a(2)).unwrap();
    book.check_invariants().unwrap();
}

// Rule 6: errors change nothing.
#[test]
fn rule6_every_error_leaves_every_count_as_it_was() {
    let (_, book) = book(1);
    book.set_capacity(B, 0, 1).unwrap();
    book.set_capacity(B, 1, 2).unwrap();
    let h = book.reserve(B, 0, a(1)).unwrap();
    let before = snapshot(&book);

    assert_eq!(book.reserve(B, 0, a(2)), Err(ReserveError::Full));
    assert_eq!(book.reserve(B, 1, a(1)), Err(ReserveError::ApplicantLimit));
    assert_eq!(book.reserve(B, 5, a(2)), Err(ReserveError::UnknownSlot));
    assert_eq!(
        book.reserve(BranchId(99), 0, a(2)),
        Err(ReserveError::UnknownSlot)
    );
    assert_eq!(
        book.reserve_earliest(B, 0..1, a(2)),
        Err(ReserveError::NoneAvailable)
    );
    assert_eq!(
        book.reserve_earliest(B, 1..1, a(2)),
        Err(ReserveError::EmptyRange)
    );
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = book.reserve_earliest(B, 9..3, a(2));
    assert_eq!(reversed, Err(ReserveError::EmptyRange));
    assert_eq!(
        book.reserve_earliest(BranchId(99), 0..9, a(2)),
        Err(ReserveError::UnknownSlot)
    );
    let forged: HoldToken = "0123456789abcdef0123456789abcdef".parse().unwrap();
    assert_eq!(book.confirm(forged), Err(ConfirmError::UnknownToken));
    assert_eq!(book.release(forged), Err(ReleaseError::UnknownToken));
    assert!(book.set_capacity(B, 5000, 1).is_err());
    assert!(book.set_capacity(B, 0, u32::MAX).is_err());

    assert_eq!(snapshot(&book), before);
    book.confirm(h.token).unwrap();
}

// Rule 7: the earliest slot with room.
#[test]
fn rule7_reserve_earliest_picks_the_lowest_slot_with_room() {
    let (_, book) = book(1);
    // Slots 0..1500 over three chunks; 0..1300 full, except 700.
    for s in 0..1500 {
        book.set_capacity(B, s, 1).unwrap();
    }
    for s in 0..1300 {
        if s != 700 {
            book.reserve(B, s, a(10_000 + u64::from(s))).unwrap();
        }
    }
    assert_eq!(book.reserve_earliest(B, 0..1500, a(1)).unwrap().slot, 700);
    assert_eq!(book.reserve_earliest(B, 0..1500, a(2)).unwrap().slot, 1300);
    assert_eq!(
        book.reserve_earliest(B, 1301..=1301, a(3)).unwrap().slot,
        1301
    );
    assert_eq!(
        book.reserve_earliest(B, 1299.., a(4)).unwrap().slot,
        1302,
        "unbounded end"
    );
    assert_eq!(book.reserve_earliest(B, .., a(5)).unwrap().slot, 1303);
    assert_eq!(
        book.reserve_earliest(B, 0..1303, a(6)),
        Err(ReserveError::NoneAvailable)
    );
}

#[test]
fn rule7_unopened_and_zero_capacity_slots_are_skipped() {
    let (_, book) = book(1);
    book.set_capacity(B, 0, 0).unwrap();
    book.set_capacity(B, 64, 1).unwrap();
    book.set_capacity(B, 600, 1).unwrap();
    assert_eq!(book.reserve_earliest(B, 0..1000, a(1)).unwrap().slot, 64);
    assert_eq!(book.reserve_earliest(B, 0..1000, a(2)).unwrap().slot, 600);
    assert_eq!(
        book.reserve_earliest(B, 0..1000, a(3)),
        Err(ReserveError::NoneAvailable)
    );
    // Raising the capacity makes the slot available at once.
    book.set_capacity(B, 0, 1).unwrap();
    assert_eq!(book.reserve_earliest(B, 0..1000, a(3)).unwrap().slot, 0);
}

#[test]
fn releasing_from_a_full_slot_makes_it_earliest_again() {
    let (_, book) = book(1);
    for s in 0..3 {
        book.set_capacity(B, s, 1).unwrap();
    }
    let h0 = book.reserve_earliest(B, 0..3, a(1)).unwrap();
    book.reserve_earliest(B, 0..3, a(2)).unwrap();
    book.release(h0.token).unwrap();
    assert_eq!(book.reserve_earliest(B, 0..3, a(3)).unwrap().slot, 0);
}

// Limits: errors, never giant allocations or panics.
#[test]
fn limits_are_errors() {
    let (_, book) = book(1);
    assert_eq!(
        book.set_capacity(B, u32::MAX, 1),
        Err(CapacityError::SlotOutOfRange {
            slot: u32::MAX,
            last: 2047
        })
    );
    assert_eq!(
        book.set_capacity(B, 0, surgegate::book::MAX_CAPACITY + 1),
        Err(CapacityError::CapacityTooLarge {
            capacity: surgegate::book::MAX_CAPACITY + 1,
            max: surgegate::book::MAX_CAPACITY
        })
    );
    assert!(
        book.set_capacity(B, 0, surgegate::book::MAX_CAPACITY)
            .is_ok()
    );
    assert_eq!(
        book.reserve(B, u32::MAX, a(1)),
        Err(ReserveError::UnknownSlot)
    );
    assert!(book.availability(B, ..).len() <= 2048);
    // A range wholly past the last slot: the same answer as `reserve` for one of its slots.
    assert_eq!(
        book.reserve_earliest(B, 5000..6000, a(1)),
        Err(ReserveError::UnknownSlot)
    );

    let small = SlotBook::builder().max_branches(2).build();
    small.set_capacity(BranchId(1), 0, 1).unwrap();
    small.set_capacity(BranchId(2), 0, 1).unwrap();
    small.set_capacity(BranchId(1), 1, 1).unwrap();
    assert_eq!(
        small.set_capacity(BranchId(3), 0, 1),
        Err(CapacityError::TooManyBranches { max_branches: 2 })
    );
    assert_eq!(small.slot(BranchId(3), 0), None);
}

#[test]
fn the_default_book_refuses_a_four_billion_slot_index_without_allocating() {
    let book = SlotBook::builder().build();
    assert!(matches!(
        book.set_capacity(BranchId(1), u32::MAX, 1),
        Err(CapacityError::SlotOutOfRange { .. })
    ));
    assert!(book.availability(BranchId(1), ..).is_empty());
}

#[test]
fn the_live_hold_limit_is_an_error() {
    let clock = ManualClock::new();
    let book = SlotBook::builder()
        .shards(1)
        .max_live_holds(2)
        .hold_ttl(TTL)
        .clock(clock.clone())
        .build();
    book.set_capacity(B, 0, 10).unwrap();
    let h = book.reserve(B, 0, a(1)).unwrap();
    book.reserve(B, 0, a(2)).unwrap();
    assert_eq!(book.reserve(B, 0, a(3)), Err(ReserveError::TooManyHolds));
    book.confirm(h.token).unwrap(); // bookings are not holds
    book.reserve(B, 0, a(3)).unwrap();
    clock.advance(TTL);
    book.reserve(B, 0, a(4)).unwrap(); // expired holds do not count
}

#[test]
fn builder_refuses_bad_settings() {
    let cases: Vec<(Result<SlotBook, BookConfigError>, BookConfigError)> = vec![
        (
            SlotBook::builder().hold_ttl(Duration::ZERO).try_build(),
            BookConfigError::HoldTtl(Duration::ZERO),
        ),
        (
            // The shortest hold is 1 ms on every backend (Redis keeps milliseconds).
            SlotBook::builder()
                .hold_ttl(Duration::from_micros(999))
                .try_build(),
            BookConfigError::HoldTtl(Duration::from_micros(999)),
        ),
        (
            SlotBook::builder()
                .hold_ttl(Duration::from_secs(86_401))
                .try_build(),
            BookConfigError::HoldTtl(Duration::from_secs(86_401)),
        ),
        (
            SlotBook::builder()
                .max_active_per_applicant(1025)
                .try_build(),
            BookConfigError::MaxActivePerApplicant(1025),
        ),
        (
            SlotBook::builder().max_active_per_applicant(0).try_build(),
            BookConfigError::MaxActivePerApplicant(0),
        ),
        (
            SlotBook::builder().max_branches(0).try_build(),
            BookConfigError::MaxBranches(0),
        ),
        (
            SlotBook::builder().max_slots_per_branch(0).try_build(),
            BookConfigError::MaxSlotsPerBranch(0),
        ),
        (
            SlotBook::builder()
                .max_slots_per_branch(u32::MAX)
                .try_build(),
            BookConfigError::MaxSlotsPerBranch(u32::MAX),
        ),
        (
            SlotBook::builder().max_live_holds(0).try_build(),
            BookConfigError::MaxLiveHolds(0),
        ),
        (
            SlotBook::builder().shards(3).try_build(),
            BookConfigError::Shards(3),
        ),
        (
            SlotBook::builder().shards(512).try_build(),
            BookConfigError::Shards(512),
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got.err(), Some(want));
    }
    assert!(SlotBook::builder().try_build().is_ok());
}

#[test]
#[should_panic(expected = "invalid SlotBook configuration: shards must be a power of two")]
fn build_panics_with_a_clear_message() {
    let _ = SlotBook::builder().shards(3).build();
}

#[test]
fn tokens_are_text_that_round_trips_and_junk_is_refused() {
    let (_, book) = book(1);
    book.set_capacity(B, 0, 1).unwrap();
    let h = book.reserve(B, 0, a(1)).unwrap();
    let text = h.token.to_string();
    assert_eq!(text.len(), 32);
    assert!(
        text.bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    let parsed: HoldToken = text.parse().unwrap();
    assert_eq!(parsed, h.token);
    book.confirm(parsed).unwrap();
    assert_eq!(
        book.booking(text.to_uppercase().parse().unwrap())
            .map(|b| b.token),
        Some(h.token)
    );
    for junk in [
        "",
        "xyz",
        &text[1..],
        &format!("{text}0"),
        &format!(" {}", &text[1..]),
        "g".repeat(32).as_str(),
    ] {
        assert!(junk.parse::<HoldToken>().is_err(), "{junk:?}");
    }
    assert!(
        !format!("{:?}", h.token).contains(&text),
        "Debug must not print the whole token"
    );
}

#[test]
fn availability_lists_opened_slots_in_order() {
    let (_, book) = book(1);
    for s in [900, 3, 512, 511, 0] {
        book.set_capacity(B, s, 2).unwrap();
    }
    let slots: Vec<u32> = book
        .availability(B, ..)
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(slots, [0, 3, 511, 512, 900]);
    let slots: Vec<u32> = book
        .availability(B, 4..=511)
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(slots, [511]);
    assert!(book.availability(BranchId(1), ..).is_empty());
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = book.availability(B, 10..3);
    assert!(reversed.is_empty());
}

#[test]
fn sweep_reclaims_exactly_the_expired_holds() {
    let (clock, book) = book(1);
    book.set_capacity(B, 0, 100).unwrap();
    for n in 0..10 {
        book.reserve(B, 0, a(n)).unwrap();
    }
    clock.advance(Duration::from_secs(1));
    let later: Vec<_> = (10..15)
        .map(|n| book.reserve(B, 0, a(n)).unwrap())
        .collect();
    book.confirm(later[0].token).unwrap();
    clock.advance(TTL - Duration::from_secs(1));
    let totals = book.check_invariants().unwrap();
    assert_eq!(
        (totals.holds, totals.expired_holds, totals.bookings),
        (14, 10, 1)
    );
    assert_eq!(book.sweep(), 10);
    assert_eq!(book.sweep(), 0);
    assert_eq!(book.slot(B, 0), state(100, 4, 1));
    clock.advance(Duration::from_secs(1));
    assert_eq!(book.sweep(), 4);
    assert_eq!(book.slot(B, 0), state(100, 0, 1));
}

#[test]
fn a_book_is_send_sync_and_debug() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<SlotBook>();
    is_send_sync::<SlotBook<ManualClock>>();
    let (_, book) = book(1);
    book.set_capacity(B, 0, 1).unwrap();
    let s = format!("{book:?}");
    assert!(s.contains("branches: 1"), "{s}");
}

/// A clock whose time is set, not advanced: it can step back, as a faulty clock may.
#[derive(Clone, Default)]
struct SteppingClock(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl SteppingClock {
    fn set(&self, secs: u64) {
        self.0
            .store(secs * 1_000_000_000, std::sync::atomic::Ordering::SeqCst);
    }
}

impl surgegate::Clock for SteppingClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

#[test]
fn a_clock_that_steps_back_never_keeps_a_lapsed_hold_counted() {
    let clock = SteppingClock::default();
    // One shard: every hold shares one expiry queue, the structure a step back could disorder.
    let book = SlotBook::builder()
        .hold_ttl(Duration::from_secs(60))
        .max_active_per_applicant(4)
        .shards(1)
        .clock(clock.clone())
        .build();
    book.set_capacity(BranchId(1), 0, 10).unwrap();
    clock.set(100);
    let first = book.reserve(BranchId(1), 0, a(1)).unwrap();
    clock.set(50); // steps back 50 s
    let second = book.reserve(BranchId(1), 0, a(2)).unwrap();
    assert!(
        second.expires_at >= first.expires_at,
        "a hold granted after another must not lapse before it: {:?} then {:?}",
        first.expires_at,
        second.expires_at
    );
    // Whatever the clock says later, no reading counts a hold whose own expiry has passed.
    let holds = [first, second];
    for secs in [50, 100, 111, 130, 159, 160, 161, 200] {
        clock.set(secs);
        let now = Duration::from_secs(secs);
        let live = holds.iter().filter(|h| h.expires_at > now).count() as u32;
        let held = book.slot(BranchId(1), 0).unwrap().held;
        assert!(
            held <= live,
            "at {secs} s the slot counts {held} holds but only {live} have not lapsed"
        );
        book.check_invariants().unwrap();
    }
    // A lapsed hold stays lapsed when the clock steps back again.
    clock.set(40);
    assert_eq!(book.slot(BranchId(1), 0).unwrap().held, 0);
    assert!(book.confirm(first.token).is_err());
}

#[test]
fn holds_given_back_at_a_stopped_clock_leave_no_expiry_entries_behind() {
    // Every hold below shares one expiry (the clock never moves), and each reuses the record
    // place of the one released before it: the expiry queue must still tell the old entries from
    // the new hold's and compact them away (check_invariants bounds its length).
    let (_clock, book) = book(1);
    book.set_capacity(B, 0, 100).unwrap();
    for a in 0..50 {
        book.reserve(B, 0, ApplicantId(1_000_000 + a)).unwrap();
    }
    for a in 0..20_000 {
        let hold = book.reserve(B, 0, ApplicantId(a)).unwrap();
        if a % 1_000 == 999 {
            book.check_invariants().unwrap();
        }
        book.release(hold.token).unwrap();
    }
    assert_eq!(book.check_invariants().unwrap().holds, 50);
}

#[test]
fn an_applicant_finds_holds_and_bookings_again_without_their_tokens() {
    let (clock, book) = book(3);
    for slot in 0..3 {
        book.set_capacity(B, slot, 5).unwrap();
    }
    let a = ApplicantId(77);
    let first = book.reserve(B, 0, a).unwrap();
    let second = book.reserve(B, 1, a).unwrap();
    let third = book.reserve(B, 2, a).unwrap();
    let booking = book.confirm(second.token).unwrap();
    assert_eq!(book.hold(first.token), Some(first));
    assert_eq!(book.hold(second.token), None, "booked now");
    let mut holds = book.holds_of(a);
    holds.sort_by_key(|h| h.slot);
    assert_eq!(holds, vec![first, third]);
    assert_eq!(book.bookings_of(a), vec![booking]);
    assert!(book.holds_of(ApplicantId(78)).is_empty());
    // Lapsed holds are not found; the booking is, and can be cancelled by what was found.
    clock.advance(TTL);
    assert_eq!(book.hold(first.token), None);
    assert!(book.holds_of(a).is_empty());
    let found = book.bookings_of(a)[0];
    book.release(found.token).unwrap();
    assert!(book.bookings_of(a).is_empty());
    book.check_invariants().unwrap();
}

#[test]
fn the_limits_of_hold_ttl_are_accepted() {
    for ttl in [Duration::from_millis(1), Duration::from_secs(86_400)] {
        assert!(
            SlotBook::builder().hold_ttl(ttl).try_build().is_ok(),
            "{ttl:?}"
        );
    }
}

#[test]
fn errors_say_whether_a_retry_can_succeed() {
    use surgegate::{ConfirmError, JoinError, JournalError, PollError, ReleaseError};
    for (e, retry) in [
        (ReserveError::Full, true),
        (ReserveError::NoneAvailable, true),
        (ReserveError::ApplicantLimit, true),
        (ReserveError::TooManyHolds, true),
        (ReserveError::UnknownSlot, false),
        (ReserveError::EmptyRange, false),
        (ReserveError::Alternatives { max: 16 }, false),
    ] {
        assert_eq!(e.is_retryable(), retry, "{e:?}");
        assert_eq!(e.retry_after(), None);
    }
    let write = JournalError::Write(std::io::ErrorKind::StorageFull);
    let sync = JournalError::Sync(std::io::ErrorKind::Other);
    assert!(write.is_retryable() && !sync.is_retryable() && !JournalError::Stopped.is_retryable());
    assert!(ConfirmError::Journal(write).is_retryable());
    assert!(!ConfirmError::Journal(sync).is_retryable());
    assert!(!ConfirmError::Expired.is_retryable() && !ConfirmError::UnknownToken.is_retryable());
    assert!(ReleaseError::Journal(write).is_retryable());
    assert!(!ReleaseError::UnknownToken.is_retryable());
    assert!(CapacityError::Journal(write).is_retryable());
    assert!(!CapacityError::TooManyBranches { max_branches: 1 }.is_retryable());
    let full = JoinError::Full {
        retry_after: Duration::from_millis(250),
    };
    assert!(full.is_retryable() && full.retry_after() == Some(Duration::from_millis(250)));
    assert!(!JoinError::Closed.is_retryable() && JoinError::Closed.retry_after().is_none());
    assert!(!PollError::Expired.is_retryable() && !PollError::UnknownToken.is_retryable());
}

#[test]
fn reserve_earliest_among_refuses_what_it_cannot_do_and_changes_nothing() {
    use surgegate::book::{MAX_ALTERNATIVES, Preference};
    let (_, book) = book(2);
    book.set_capacity(B, 4, 1).unwrap();
    let too_many = vec![B; MAX_ALTERNATIVES + 1];
    let alternatives = Err(ReserveError::Alternatives {
        max: MAX_ALTERNATIVES as u32,
    });
    for prefer in [Preference::EarliestSlot, Preference::FirstBranch] {
        assert_eq!(book.reserve_among(&[], 0..9, a(1), prefer), alternatives);
        assert_eq!(
            book.reserve_among(&too_many, 0..9, a(1), prefer),
            alternatives
        );
        let unknown = [BranchId(77), BranchId(78)];
        assert_eq!(
            book.reserve_among(&unknown, 0..9, a(1), prefer),
            Err(ReserveError::UnknownSlot)
        );
        assert_eq!(
            book.reserve_among(&[B], 5..5, a(1), prefer),
            Err(ReserveError::EmptyRange)
        );
        assert_eq!(
            book.reserve_among(&[BranchId(77), B], 5..9, a(1), prefer),
            Err(ReserveError::NoneAvailable)
        );
    }
    assert_eq!(book.slot(B, 4), state(1, 0, 0));
    // An unknown branch among known ones is skipped; a retry returns the same hold.
    let among = [BranchId(77), B];
    let hold = book
        .reserve_among(&among, 0..9, a(1), Preference::FirstBranch)
        .unwrap();
    assert_eq!((hold.branch, hold.slot), (B, 4));
    let again = book
        .reserve_among(&among, 0..9, a(1), Preference::EarliestSlot)
        .unwrap();
    assert_eq!(again, hold);
    assert_eq!(book.slot(B, 4), state(1, 1, 0));
    book.check_invariants().unwrap();
}

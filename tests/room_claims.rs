//! Claims: under a `claim_timeout`, a pass nobody uses lapses and frees its active place at
//! once; a claimed pass lasts `pass_ttl` from its admission. Every step on a `ManualClock`, the
//! room's invariants checked after each.

use std::time::Duration;

use surgegate::{
    ClaimError, Entry, ManualClock, Pass, PollError, RoomConfigError, Ticket, VisitorId,
    WaitingRoom,
};

const CLAIM: Duration = Duration::from_secs(30);
const TTL: Duration = Duration::from_secs(600);

/// One active place, a fast rate: who is admitted when is decided by the active place alone.
fn room(clock: &ManualClock) -> WaitingRoom<ManualClock> {
    WaitingRoom::builder()
        .rate_per_second(1_000)
        .burst(1_000)
        .max_active(1)
        .checkin_timeout(Duration::from_secs(3_600))
        .pass_ttl(TTL)
        .claim_timeout(CLAIM)
        .clock(clock.clone())
        .build()
}

fn admitted(e: Entry) -> Pass {
    match e {
        Entry::Admitted(p) => p,
        Entry::Waiting(t) => panic!("expected a pass, got {t:?}"),
    }
}

fn waiting(e: Entry) -> Ticket {
    match e {
        Entry::Waiting(t) => t,
        Entry::Admitted(p) => panic!("expected a ticket, got {p:?}"),
    }
}

#[test]
fn an_unclaimed_pass_lapses_at_its_claim_deadline_and_the_next_visitor_gets_the_place() {
    let clock = ManualClock::new();
    let room = room(&clock);
    let first = admitted(room.join(VisitorId(1)).unwrap());
    assert_eq!(
        first.expires_at, CLAIM,
        "unclaimed, it lapses at the claim deadline"
    );
    let next = waiting(room.join(VisitorId(2)).unwrap());
    room.check_invariants().unwrap();

    clock.advance(CLAIM - Duration::from_nanos(1));
    assert_eq!(waiting(room.poll(next.token).unwrap()).position, 1);
    assert_eq!(room.stats().active, 1);
    room.check_invariants().unwrap();

    clock.advance(Duration::from_nanos(1));
    let second = admitted(room.poll(next.token).unwrap());
    assert_eq!(
        second.expires_at,
        CLAIM + CLAIM,
        "admitted at the first one's claim deadline"
    );
    assert_eq!(room.poll(first.token), Err(PollError::Expired));
    assert_eq!(room.claim(first.token), Err(ClaimError::Expired));
    let stats = room.stats();
    assert_eq!((stats.active, stats.admitted_total), (1, 2));
    room.check_invariants().unwrap();
}

#[test]
fn a_claimed_pass_lasts_pass_ttl_from_its_admission_and_claiming_again_changes_nothing() {
    let clock = ManualClock::new();
    let room = room(&clock);
    let pass = admitted(room.join(VisitorId(1)).unwrap());
    let next = waiting(room.join(VisitorId(2)).unwrap());
    clock.advance(Duration::from_secs(10));
    let claimed = room.claim(pass.token).unwrap();
    assert_eq!(claimed.expires_at, TTL);
    assert_eq!(room.claim(pass.token), Ok(claimed));
    // A refresh by the visitor or a poll of the pass shows the claimed pass.
    assert_eq!(admitted(room.join(VisitorId(1)).unwrap()), claimed);
    assert_eq!(admitted(room.poll(pass.token).unwrap()), claimed);
    room.check_invariants().unwrap();

    // Past the claim deadline it holds its place...
    clock.advance(CLAIM);
    assert_eq!(waiting(room.poll(next.token).unwrap()).position, 1);
    room.check_invariants().unwrap();
    // ...until pass_ttl from its admission.
    clock.advance(TTL - CLAIM - Duration::from_secs(10));
    assert_eq!(room.poll(pass.token), Err(PollError::Expired));
    let second = admitted(room.poll(next.token).unwrap());
    assert_eq!(second.expires_at, TTL + CLAIM);
    room.check_invariants().unwrap();
}

#[test]
fn claiming_what_is_not_a_live_pass_is_an_error_that_changes_nothing() {
    let clock = ManualClock::new();
    let room = room(&clock);
    let pass = admitted(room.join(VisitorId(1)).unwrap());
    let ticket = waiting(room.join(VisitorId(2)).unwrap());
    let before = room.stats();
    assert_eq!(room.claim(ticket.token), Err(ClaimError::NotAdmitted));
    assert!(ClaimError::NotAdmitted.is_retryable());
    let never: surgegate::TicketToken = "0".repeat(32).parse().unwrap();
    assert_eq!(room.claim(never), Err(ClaimError::UnknownToken));
    room.finish(pass.token).unwrap();
    assert_eq!(room.claim(pass.token), Err(ClaimError::UnknownToken));
    assert!(!ClaimError::UnknownToken.is_retryable());
    // The waiting visitor was admitted by the finish, not by the failed claims.
    let after = room.stats();
    assert_eq!(after.admitted_total, before.admitted_total + 1);
    room.check_invariants().unwrap();
}

#[test]
fn without_a_claim_timeout_a_pass_lasts_pass_ttl_claimed_or_not() {
    let clock = ManualClock::new();
    let room = WaitingRoom::builder()
        .pass_ttl(TTL)
        .clock(clock.clone())
        .build();
    let pass = admitted(room.join(VisitorId(1)).unwrap());
    assert_eq!(pass.expires_at, TTL);
    clock.advance(TTL - Duration::from_nanos(1));
    assert_eq!(room.claim(pass.token), Ok(pass));
    clock.advance(Duration::from_nanos(1));
    assert_eq!(room.claim(pass.token), Err(ClaimError::Expired));
    room.check_invariants().unwrap();
}

#[test]
fn the_active_bound_holds_while_passes_lapse_unclaimed_in_a_surge() {
    let clock = ManualClock::new();
    let room = WaitingRoom::builder()
        .rate_per_second(100)
        .burst(10)
        .max_active(50)
        .checkin_timeout(Duration::from_secs(3_600))
        .pass_ttl(TTL)
        .claim_timeout(CLAIM)
        .clock(clock.clone())
        .build();
    let mut tickets = Vec::new();
    for v in 0..2_000 {
        if let Entry::Waiting(t) = room.join(VisitorId(v)).unwrap() {
            tickets.push(t.token);
        }
    }
    // One visitor in four claims its pass once admitted (it then holds its place for the whole
    // pass_ttl, past the end of the test); the others never come back.
    let mut claimed = 0u64;
    for step in 0..400 {
        clock.advance(Duration::from_secs(1));
        for &token in tickets.iter().step_by(4) {
            // Not claimed yet: an unclaimed pass lapses at its claim deadline, well before TTL.
            if let Ok(Entry::Admitted(p)) = room.peek(token)
                && p.expires_at < TTL
            {
                room.claim(p.token).unwrap();
                claimed += 1;
            }
        }
        let stats = room.stats();
        assert!(stats.active <= 50, "active {} at step {step}", stats.active);
        room.check_invariants().unwrap();
    }
    // Unclaimed passes gave their places back 30 s after admission, over and over: without
    // claims, the first 50 passes would have held every place for the whole test.
    let stats = room.stats();
    assert!(stats.admitted_total > 150, "{stats:?}");
    assert_eq!(stats.active, 50);
    assert!(claimed >= 40, "{claimed}");
}

#[test]
fn the_builder_refuses_a_claim_timeout_outside_1_ms_to_pass_ttl() {
    for bad in [Duration::ZERO, TTL + Duration::from_secs(1)] {
        let built = WaitingRoom::builder()
            .pass_ttl(TTL)
            .claim_timeout(bad)
            .try_build();
        assert_eq!(built.err(), Some(RoomConfigError::ClaimTimeout(bad)));
    }
    assert!(
        WaitingRoom::builder()
            .pass_ttl(TTL)
            .claim_timeout(TTL)
            .try_build()
            .is_ok()
    );
}

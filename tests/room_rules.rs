//! Every rule of the WaitingRoom (DESIGN.md, WaitingRoom rules 1–8), every mode (pause, close,
//! scheduled opening with a pre-queue), runtime limit changes and bad input, on a ManualClock.

use std::collections::HashSet;
use std::time::Duration;

use surgegate::room::prequeue_order;
use surgegate::{
    Entry, JoinError, ManualClock, Pass, PollError, RoomConfigError, Ticket, TicketToken,
    VisitorId, WaitingRoom,
};

const MS: Duration = Duration::from_millis(1);
const TTL: Duration = Duration::from_secs(900);

fn room(rate: u32, burst: u32) -> (ManualClock, WaitingRoom<ManualClock>) {
    let clock = ManualClock::new();
    let room = WaitingRoom::builder()
        .rate_per_second(rate)
        .burst(burst)
        .checkin_timeout(Duration::from_secs(30))
        .pass_ttl(TTL)
        .clock(clock.clone())
        .build();
    (clock, room)
}

fn v(n: u64) -> VisitorId {
    VisitorId(n)
}

fn waiting(e: Result<Entry, impl std::fmt::Debug>) -> Ticket {
    match e {
        Ok(Entry::Waiting(t)) => t,
        other => panic!("expected a ticket, got {other:?}"),
    }
}

fn admitted(e: Result<Entry, impl std::fmt::Debug>) -> Pass {
    match e {
        Ok(Entry::Admitted(p)) => p,
        other => panic!("expected a pass, got {other:?}"),
    }
}

fn admitted_at(p: &Pass) -> Duration {
    p.expires_at - TTL
}

// Rule 1: rate, burst, no idle capacity wasted, admission without calls.
#[test]
fn rule1_an_idle_room_admits_at_once_up_to_the_burst() {
    let (_, room) = room(10, 3);
    for n in 0..3 {
        admitted(room.join(v(n)));
    }
    let t = waiting(room.join(v(3)));
    assert_eq!((t.position, t.eta), (1, Duration::from_millis(100)));
    room.check_invariants().unwrap();
}

#[test]
fn rule1_a_waiting_line_drains_at_the_full_rate_with_nobody_calling() {
    let (clock, room) = room(10, 5);
    let tickets: Vec<TicketToken> = (0..40)
        .filter_map(|n| match room.join(v(n)).unwrap() {
            Entry::Waiting(t) => Some(t.token),
            Entry::Admitted(_) => None,
        })
        .collect();
    assert_eq!(tickets.len(), 35, "the burst of 5 was admitted at once");
    clock.advance(Duration::from_secs(3));
    // Nobody called for 3 s: the next call sees 30 more admitted, each at its scheduled instant.
    assert_eq!(room.stats().admitted_total, 35);
    for (k, token) in tickets.iter().enumerate().take(30) {
        let p = admitted(room.peek(*token));
        assert_eq!(admitted_at(&p), Duration::from_millis(100 * (k as u64 + 1)));
    }
    assert_eq!(waiting(room.peek(tickets[30])).position, 1);
    room.check_invariants().unwrap();
}

#[test]
fn rule1_lapsed_visitors_are_skipped_without_using_the_rate() {
    let clock = ManualClock::new();
    let room = WaitingRoom::builder()
        .rate_per_second(10)
        .burst(1)
        .checkin_timeout(Duration::from_millis(1500))
        .clock(clock.clone())
        .build();
    admitted(room.join(v(0)));
    let tickets: Vec<Ticket> = (1..=30).map(|n| waiting(room.join(v(n)))).collect();
    // Even visitors keep checking in every 500 ms; odd ones go silent and lapse at 1.5 s.
    for _ in 0..6 {
        clock.advance(Duration::from_millis(500));
        for t in tickets.iter().skip(1).step_by(2) {
            let _ = room.poll(t.token);
        }
    }
    // Visitors 1..=14 are admitted at 0.1..1.4 s. At 1.5 s the silent odd visitors 15..=29
    // lapse (a lapse comes before an admission at the same instant), and the even visitors
    // 16..=30 are admitted at 1.5, 1.6, ... 2.2 s: a lapsed visitor costs no admission slot.
    let stats = room.stats();
    assert_eq!(stats.admitted_total, 1 + 14 + 8);
    assert_eq!(stats.dropped_total, 8);
    let mut next_ms = 100;
    for (i, t) in tickets.iter().enumerate() {
        let visitor = i + 1;
        if visitor > 14 && visitor % 2 == 1 {
            assert_eq!(
                room.peek(t.token),
                Err(PollError::Expired),
                "visitor {visitor}"
            );
        } else {
            let p = admitted(room.peek(t.token));
            assert_eq!(
                admitted_at(&p),
                Duration::from_millis(next_ms),
                "visitor {visitor}"
            );
            next_ms += 100;
        }
    }
    room.check_invariants().unwrap();
}

// Rule 2: FIFO.
#[test]
fn rule2_admission_is_first_in_first_out() {
    let (clock, room) = room(4, 1);
    admitted(room.join(v(100)));
    let tickets: Vec<Ticket> = (0..12).map(|n| waiting(room.join(v(n)))).collect();
    let mut order = Vec::new();
    for _ in 0..12 {
        clock.advance(Duration::from_millis(250));
        for (n, t) in tickets.iter().enumerate() {
            if matches!(room.poll(t.token), Ok(Entry::Admitted(_))) && !order.contains(&n) {
                order.push(n);
            }
        }
    }
    assert_eq!(order, (0..12).collect::<Vec<_>>());
}

// Rule 3: exact positions after leaving from the middle.
#[test]
fn rule3_positions_stay_exact_when_visitors_leave_from_the_middle() {
    let (_, room) = room(1, 1);
    room.pause();
    let tickets: Vec<Ticket> = (0..3000).map(|n| waiting(room.join(v(n)))).collect();
    for (n, t) in tickets.iter().enumerate() {
        assert_eq!(t.position, n as u64 + 1);
    }
    for t in tickets.iter().step_by(3) {
        room.finish(t.token).unwrap();
    }
    let mut expected = 0;
    for (n, t) in tickets.iter().enumerate() {
        if n % 3 == 0 {
            assert_eq!(room.peek(t.token), Err(PollError::UnknownToken));
        } else {
            expected += 1;
            assert_eq!(waiting(room.peek(t.token)).position, expected);
        }
    }
    assert_eq!(room.stats().waiting, expected);
    room.check_invariants().unwrap();
}

// Rule 4: a refresh never loses your place.
#[test]
fn rule4_a_refresh_returns_the_same_ticket_or_pass() {
    let (clock, room) = room(1, 1);
    let pass = admitted(room.join(v(1)));
    assert_eq!(admitted(room.join(v(1))), pass);
    let t = waiting(room.join(v(2)));
    waiting(room.join(v(3)));
    for _ in 0..1000 {
        assert_eq!(
            room.join(v(2)).unwrap(),
            Entry::Waiting(t),
            "a bot refreshing keeps one ticket"
        );
    }
    assert_eq!(room.stats().waiting, 2);
    clock.advance(Duration::from_secs(1));
    let p = admitted(room.join(v(2)));
    assert_eq!(p.token, t.token, "a ticket keeps its token when admitted");
    assert_eq!(admitted(room.poll(t.token)), p);
}

// Rule 5: abandonment.
#[test]
fn rule5_a_silent_visitor_leaves_and_those_behind_move_up() {
    let (clock, room) = room(1, 1);
    room.pause();
    let a = waiting(room.join(v(1)));
    clock.advance(Duration::from_secs(10));
    let b = waiting(room.join(v(2)));
    clock.advance(Duration::from_secs(20) - MS);
    assert_eq!(waiting(room.poll(b.token)).position, 2);
    clock.advance(MS); // 30 s since visitor 1 last checked in
    assert_eq!(waiting(room.poll(b.token)).position, 1);
    assert_eq!(room.poll(a.token), Err(PollError::Expired));
    assert_eq!(room.stats().dropped_total, 1);
    // Coming back later means a new ticket at the back.
    let again = waiting(room.join(v(1)));
    assert_ne!(again.token, a.token);
    assert_eq!(again.position, 2);
}

// Rule 6: bounded.
#[test]
fn rule6_a_full_line_refuses_newcomers_and_changes_nothing() {
    let clock = ManualClock::new();
    let room = WaitingRoom::builder()
        .rate_per_second(2)
        .burst(1)
        .max_waiting(3)
        .clock(clock.clone())
        .build();
    admitted(room.join(v(0)));
    for n in 1..=3 {
        waiting(room.join(v(n)));
    }
    let before = room.stats();
    let Err(JoinError::Full { retry_after }) = room.join(v(9)) else {
        panic!("not full")
    };
    assert_eq!(
        retry_after,
        Duration::from_millis(500),
        "the next admission, at 2 per second"
    );
    assert_eq!(room.stats(), before);
    // Those already waiting can still refresh.
    waiting(room.join(v(2)));
    clock.advance(retry_after);
    waiting(room.join(v(9)));
}

#[test]
fn rule6_retry_after_follows_the_drain_rate() {
    for (rate, expected_ms) in [(1, 1000), (4, 250), (100, 10)] {
        let room = WaitingRoom::builder()
            .rate_per_second(rate)
            .burst(1)
            .max_waiting(1)
            .clock(ManualClock::new())
            .build();
        room.join(v(0)).unwrap();
        room.join(v(1)).unwrap();
        let Err(JoinError::Full { retry_after }) = room.join(v(2)) else {
            panic!()
        };
        assert_eq!(retry_after, Duration::from_millis(expected_ms));
    }
}

// Rule 7: active bound.
#[test]
fn rule7_live_passes_never_exceed_max_active() {
    let clock = ManualClock::new();
    let room = WaitingRoom::builder()
        .rate_per_second(1000)
        .burst(100)
        .max_active(2)
        .pass_ttl(Duration::from_secs(60))
        .checkin_timeout(Duration::from_secs(120))
        .clock(clock.clone())
        .build();
    let p0 = admitted(room.join(v(0)));
    admitted(room.join(v(1)));
    let t2 = waiting(room.join(v(2)));
    let t3 = waiting(room.join(v(3)));
    assert_eq!(room.stats().active, 2);
    room.finish(p0.token).unwrap();
    admitted(room.poll(t2.token));
    waiting(room.poll(t3.token));
    // A pass that runs out frees its place too: p1 and t2's pass (both issued at 0) end at 60 s.
    clock.advance(Duration::from_secs(60));
    admitted(room.poll(t3.token));
    assert_eq!(room.stats().active, 1);
    room.check_invariants().unwrap();
}

#[test]
fn rule7_lowering_max_active_keeps_live_passes_and_admits_nobody_until_they_fit() {
    let room = WaitingRoom::builder()
        .rate_per_second(1000)
        .burst(100)
        .max_active(3)
        .clock(ManualClock::new())
        .build();
    let passes: Vec<Pass> = (0..3).map(|n| admitted(room.join(v(n)))).collect();
    room.set_max_active(1).unwrap();
    let t = waiting(room.join(v(9)));
    assert_eq!(room.stats().active, 3, "live passes survive the lowering");
    room.check_invariants().unwrap();
    room.finish(passes[0].token).unwrap();
    room.finish(passes[1].token).unwrap();
    waiting(room.poll(t.token)); // one live pass: at the limit
    room.finish(passes[2].token).unwrap();
    admitted(room.poll(t.token));
    assert_eq!(room.stats().active, 1);
    room.check_invariants().unwrap();
}

// Rule 8: ETA.
#[test]
fn rule8_eta_is_nondecreasing_and_kept_in_a_rate_limited_room() {
    let (clock, room) = room(3, 2);
    let tickets: Vec<Ticket> = (0..50)
        .filter_map(|n| match room.join(v(n)).unwrap() {
            Entry::Waiting(t) => Some(t),
            Entry::Admitted(_) => None,
        })
        .collect();
    for pair in tickets.windows(2) {
        assert!(pair[0].eta <= pair[1].eta);
    }
    let start = clock.now_duration();
    let mut done = HashSet::new();
    for _ in 0..200 {
        clock.advance(Duration::from_millis(100));
        for t in &tickets {
            if let Ok(Entry::Admitted(p)) = room.poll(t.token)
                && done.insert(t.token)
            {
                assert!(
                    admitted_at(&p) <= start + t.eta + Duration::from_secs(1),
                    "{t:?} admitted at {:?}",
                    admitted_at(&p)
                );
            }
        }
    }
    assert_eq!(done.len(), tickets.len());
}

trait NowDuration {
    fn now_duration(&self) -> Duration;
}
impl NowDuration for ManualClock {
    fn now_duration(&self) -> Duration {
        surgegate::Clock::now(self)
    }
}

#[test]
fn eta_accounts_for_the_active_limit() {
    let clock = ManualClock::new();
    let room = WaitingRoom::builder()
        .rate_per_second(1000)
        .burst(10)
        .max_active(10)
        .pass_ttl(Duration::from_secs(100))
        .clock(clock.clone())
        .build();
    for n in 0..10 {
        admitted(room.join(v(n)));
    }
    // Ten places, each turning over once per 100 s (no pass has ended yet): 10 s per place.
    let t = waiting(room.join(v(10)));
    assert_eq!(t.eta, Duration::from_secs(10));
    let t2 = waiting(room.join(v(11)));
    assert_eq!(t2.eta, Duration::from_secs(20));
}

// Modes.
#[test]
fn pause_stops_admission_and_resume_restarts_it() {
    let (clock, room) = room(10, 2);
    room.pause();
    let t = waiting(room.join(v(1)));
    clock.advance(Duration::from_secs(10));
    waiting(room.poll(t.token));
    assert!(room.stats().paused);
    room.resume();
    admitted(room.poll(t.token));
    // After a long pause the burst is available again, then the rate.
    admitted(room.join(v(2)));
    waiting(room.join(v(3)));
}

#[test]
fn close_refuses_newcomers_but_keeps_the_line() {
    let (clock, room) = room(1, 1);
    admitted(room.join(v(0)));
    let t = waiting(room.join(v(1)));
    room.close();
    assert_eq!(room.join(v(2)), Err(JoinError::Closed));
    assert_eq!(
        room.join(v(1)).unwrap(),
        Entry::Waiting(t),
        "those in line keep their place"
    );
    clock.advance(Duration::from_secs(1));
    admitted(room.poll(t.token));
    room.reopen();
    waiting(room.join(v(2)));
}

fn prequeue_scenario(
    seed: u64,
    joiners: u64,
) -> (Vec<VisitorId>, WaitingRoom<ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    // One admission per second: the order of the line stays visible after the opening.
    let room = WaitingRoom::builder()
        .rate_per_second(1)
        .burst(1)
        .checkin_timeout(Duration::from_secs(300))
        .clock(clock.clone())
        .build();
    room.open_at(Duration::from_secs(60), seed);
    let mut tickets = Vec::new();
    for n in 0..joiners {
        let t = waiting(room.join(v(n)));
        assert_eq!(
            t.position,
            n + 1,
            "a pre-queued ticket shows the last place it can draw"
        );
        tickets.push(t);
        clock.advance(Duration::from_millis(10));
    }
    // Before the opening nobody is admitted; every pre-queued visitor shows the same place.
    for t in &tickets {
        assert_eq!(waiting(room.poll(t.token)).position, joiners);
    }
    clock.advance(Duration::from_secs(60));
    // Later arrivals.
    for n in joiners..joiners + 5 {
        waiting(room.join(v(n)));
    }
    // Read the line order from positions.
    let mut order: Vec<(u64, VisitorId)> = (0..joiners + 5)
        .map(|n| match room.join(v(n)).unwrap() {
            Entry::Waiting(t) => (t.position, v(n)),
            Entry::Admitted(_) => (0, v(n)),
        })
        .collect();
    order.sort();
    (order.into_iter().map(|(_, v)| v).collect(), room, clock)
}

#[test]
fn the_prequeue_draw_is_fair_reproducible_and_auditable() {
    let (a, room, _) = prequeue_scenario(2026, 30);
    let (b, _, _) = prequeue_scenario(2026, 30);
    let (c, _, _) = prequeue_scenario(7, 30);
    assert_eq!(a, b, "same seed, same order");
    assert_ne!(a, c, "different seed, different order");
    assert_ne!(
        a[..30],
        (0..30).map(v).collect::<Vec<_>>()[..],
        "early arrival does not buy first place"
    );
    // Nobody who joined before the opening is behind anybody who joined after.
    let first_late = a.iter().position(|x| x.0 >= 30).unwrap();
    assert_eq!(first_late, 30);
    assert!(a[30..].iter().all(|x| x.0 >= 30));
    assert_eq!(
        a[30..],
        (30..35).map(v).collect::<Vec<_>>()[..],
        "later arrivals are FIFO"
    );
    // The audit: the published seed and the join order reproduce the draw.
    assert_eq!(room.stats().prequeue_seed, Some(2026));
    let drawn: Vec<VisitorId> = prequeue_order(30, 2026)
        .unwrap()
        .into_iter()
        .map(|i| v(i as u64))
        .collect();
    assert_eq!(a[..30], drawn[..]);
    room.check_invariants().unwrap();
}

#[test]
fn drawn_visitors_are_found_by_their_tokens_at_their_new_places() {
    // The draw stores the pre-queue's visitors at new places in the line, away from where their
    // tokens were drawn: polls, peeks and leaving by token must still find each of them.
    let (order, room, _) = prequeue_scenario(99, 40);
    let tickets: Vec<Ticket> = order
        .iter()
        .filter_map(|&x| match room.join(x) {
            Ok(Entry::Waiting(t)) => Some(t),
            _ => None,
        })
        .collect();
    assert!(tickets.len() >= 40, "the pre-queue's visitors still wait");
    for (k, t) in tickets.iter().enumerate() {
        assert_eq!(waiting(room.poll(t.token)).position, k as u64 + 1);
        assert_eq!(waiting(room.peek(t.token)), waiting(room.poll(t.token)));
    }
    room.finish(tickets[10].token).unwrap();
    assert_eq!(room.poll(tickets[10].token), Err(PollError::UnknownToken));
    assert_eq!(waiting(room.poll(tickets[11].token)).position, 11);
    let last = tickets.last().unwrap();
    assert_eq!(
        waiting(room.poll(last.token)).position,
        tickets.len() as u64 - 1
    );
    // A token that differs from a drawn visitor's in one bit finds nobody.
    let forged = TicketToken::from_u128(tickets[5].token.to_u128() ^ 1 << 40);
    assert_eq!(room.poll(forged), Err(PollError::UnknownToken));
    room.check_invariants().unwrap();
}

#[test]
fn a_bot_joining_a_thousand_times_has_one_prequeue_ticket() {
    let clock = ManualClock::new();
    let room = WaitingRoom::builder().clock(clock.clone()).build();
    room.open_at(Duration::from_secs(10), 1);
    let first = waiting(room.join(v(666)));
    for _ in 0..1000 {
        assert_eq!(waiting(room.join(v(666))).token, first.token);
    }
    assert_eq!(room.stats().prequeued, 1);
}

#[test]
fn a_silent_prequeued_visitor_is_dropped_before_the_draw() {
    let clock = ManualClock::new();
    let room = WaitingRoom::builder()
        .checkin_timeout(Duration::from_secs(30))
        .clock(clock.clone())
        .build();
    room.open_at(Duration::from_secs(60), 3);
    let silent = waiting(room.join(v(1)));
    let keen = waiting(room.join(v(2)));
    for _ in 0..3 {
        clock.advance(Duration::from_secs(20));
        room.poll(keen.token).unwrap();
    }
    assert_eq!(room.poll(silent.token), Err(PollError::Expired));
    let s = room.stats();
    assert_eq!(
        (s.prequeued, s.waiting, s.admitted_total, s.dropped_total),
        (0, 0, 1, 1)
    );
}

#[test]
fn limits_change_at_runtime_without_losing_the_line() {
    let (clock, room) = room(1, 1);
    admitted(room.join(v(0)));
    let tickets: Vec<Ticket> = (1..=20).map(|n| waiting(room.join(v(n)))).collect();
    room.set_rate_per_second(10).unwrap();
    clock.advance(Duration::from_secs(1));
    assert_eq!(room.stats().admitted_total, 11);
    room.set_burst(5).unwrap(); // four more tokens at once
    assert_eq!(room.stats().admitted_total, 15);
    room.set_max_active(15).unwrap();
    clock.advance(Duration::from_secs(10));
    assert_eq!(room.stats().active, 15);
    for (k, t) in tickets.iter().enumerate() {
        match room.peek(t.token).unwrap() {
            Entry::Admitted(_) => assert!(k < 14),
            Entry::Waiting(w) => assert_eq!(w.position, k as u64 - 13),
        }
    }
    assert_eq!(room.set_rate_per_second(0), Err(RoomConfigError::Rate(0)));
    assert_eq!(room.set_burst(0), Err(RoomConfigError::Burst(0)));
    assert_eq!(room.set_max_active(0), Err(RoomConfigError::MaxActive(0)));
    assert_eq!(room.stats().rate_per_second, 10);
    room.check_invariants().unwrap();
}

// Bad input.
#[test]
fn unknown_forged_finished_and_lapsed_tokens_are_clear_errors() {
    let (clock, room) = room(1, 1);
    let pass = admitted(room.join(v(0)));
    let t = waiting(room.join(v(1)));
    let forged: TicketToken = "0123456789abcdef0123456789abcdef".parse().unwrap();
    assert_eq!(room.poll(forged), Err(PollError::UnknownToken));
    assert_eq!(room.finish(forged), Err(PollError::UnknownToken));
    room.finish(pass.token).unwrap();
    assert_eq!(
        room.poll(pass.token),
        Err(PollError::UnknownToken),
        "finished"
    );
    assert_eq!(room.finish(pass.token), Err(PollError::UnknownToken));
    room.finish(t.token).unwrap();
    assert_eq!(
        room.poll(t.token),
        Err(PollError::UnknownToken),
        "left the line"
    );
    // A pass that ran out.
    clock.advance(Duration::from_secs(1));
    let p = admitted(room.join(v(2)));
    clock.advance(TTL);
    assert_eq!(room.poll(p.token), Err(PollError::Expired));
    assert_eq!(room.finish(p.token), Err(PollError::Expired));
    for junk in [
        "",
        "zz",
        &"f".repeat(31),
        &"f".repeat(33),
        "+1234567890abcdef1234567890abcde",
    ] {
        assert!(junk.parse::<TicketToken>().is_err(), "{junk:?}");
    }
}

#[test]
fn the_builder_refuses_a_zero_rate_and_a_zero_line() {
    let b = || WaitingRoom::builder();
    assert_eq!(
        b().rate_per_second(0).try_build().err(),
        Some(RoomConfigError::Rate(0))
    );
    assert_eq!(
        b().burst(0).try_build().err(),
        Some(RoomConfigError::Burst(0))
    );
    assert_eq!(
        b().max_waiting(0).try_build().err(),
        Some(RoomConfigError::MaxWaiting(0))
    );
    assert_eq!(
        b().max_active(0).try_build().err(),
        Some(RoomConfigError::MaxActive(0))
    );
    assert_eq!(
        b().checkin_timeout(Duration::ZERO).try_build().err(),
        Some(RoomConfigError::CheckinTimeout(Duration::ZERO))
    );
    assert_eq!(
        b().pass_ttl(Duration::ZERO).try_build().err(),
        Some(RoomConfigError::PassTtl(Duration::ZERO))
    );
    assert!(b().try_build().is_ok());
}

#[test]
#[should_panic(
    expected = "invalid WaitingRoom configuration: rate_per_second must be between 1 and 10000000, got 0"
)]
fn build_panics_with_a_clear_message() {
    let _ = WaitingRoom::builder().rate_per_second(0).build();
}

#[test]
fn stats_report_the_back_of_the_line() {
    let (_, room) = room(2, 1);
    assert_eq!(room.stats().back_of_line_eta, Duration::ZERO);
    admitted(room.join(v(0)));
    for n in 1..=4 {
        waiting(room.join(v(n)));
    }
    let s = room.stats();
    assert_eq!(s.back_of_line_eta, Duration::from_secs(2));
    assert_eq!((s.rate_per_second, s.burst, s.max_active), (2, 1, u32::MAX));
}

#[test]
fn a_room_is_send_sync_and_debug() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<WaitingRoom>();
    is_send_sync::<WaitingRoom<ManualClock>>();
    let (_, room) = room(1, 1);
    room.join(v(1)).unwrap();
    assert!(format!("{room:?}").contains("active: 1"));
}

#[test]
fn the_room_remembers_its_most_recent_lapses_and_forgets_the_oldest() {
    let clock = ManualClock::new();
    let room = WaitingRoom::builder()
        .checkin_timeout(Duration::from_secs(5))
        .ended_memory(3)
        .clock(clock.clone())
        .build();
    room.pause();
    let tickets: Vec<Ticket> = (0..5)
        .map(|n| {
            let t = waiting(room.join(v(n)));
            clock.advance(Duration::from_secs(1));
            t
        })
        .collect();
    clock.advance(Duration::from_secs(5)); // all five lapse, oldest first
    for (n, t) in tickets.iter().enumerate() {
        let expected = if n < 2 {
            PollError::UnknownToken
        } else {
            PollError::Expired
        };
        assert_eq!(room.poll(t.token), Err(expected), "visitor {n}");
    }
    assert_eq!(room.stats().dropped_total, 5);
}

#[test]
fn one_call_replays_a_bounded_number_of_events_and_the_room_catches_up_exactly() {
    use surgegate::room::MAX_EVENTS_PER_CALL;
    let clock = ManualClock::new();
    let build = |clock: &ManualClock| {
        WaitingRoom::builder()
            .rate_per_second(1_000)
            .burst(1)
            .max_waiting(1 << 20)
            .checkin_timeout(Duration::from_secs(30))
            .clock(clock.clone())
            .build()
    };
    let room = build(&clock);
    // The same history, replayed all at once by a reference room: the same joins at the same
    // times, observed only at the end.
    let reference_clock = ManualClock::new();
    let reference = build(&reference_clock);
    let n = 3 * MAX_EVENTS_PER_CALL as u64;
    for i in 0..n {
        room.join(v(i)).unwrap();
        reference.join(v(i)).unwrap();
    }
    let at_start = room.stats();
    let mut before = at_start.admitted_total + at_start.dropped_total;
    // An hour of silence: every waiting visitor's check-in lapses (and some are admitted first).
    clock.advance(Duration::from_secs(3_600));
    reference_clock.advance(Duration::from_secs(3_600));

    // A newcomer joins during the catch-up and checks in on time: it must never lapse.
    let newcomer = waiting(room.join(v(n)));
    let mut calls = 1;
    loop {
        room.check_invariants().unwrap();
        let s = room.stats();
        calls += 1;
        let ended = s.admitted_total + s.dropped_total;
        // Two calls (the last poll or join, and this stats) since the last look.
        assert!(
            ended - before <= 2 * MAX_EVENTS_PER_CALL as u64,
            "two calls replayed {} events",
            ended - before
        );
        before = ended;
        assert!(room.poll(newcomer.token).is_ok(), "the newcomer lapsed");
        calls += 1;
        if s.waiting <= 1 {
            break;
        }
        assert!(calls < 100, "the room does not catch up");
    }
    assert!(calls > 3, "the backlog was replayed in one call");
    // The history is the one an uninterrupted replay gives (the newcomer aside): the reference
    // room is observed only after the hour, by calls that do nothing but replay.
    let mut r = reference.stats();
    while r.waiting > 0 {
        r = reference.stats();
    }
    let s = room.stats();
    assert_eq!(s.admitted_total, r.admitted_total + 1);
    assert_eq!(s.dropped_total, r.dropped_total);
    room.check_invariants().unwrap();
}

#[test]
fn ended_memory_is_bounded() {
    let build = |n: usize| {
        WaitingRoom::builder()
            .ended_memory(n)
            .clock(ManualClock::new())
            .try_build()
    };
    assert!(build(1 << 22).is_ok());
    assert!(matches!(
        build((1 << 22) + 1),
        Err(RoomConfigError::EndedMemory(n)) if n == (1 << 22) + 1
    ));
    assert!(matches!(
        build(usize::MAX),
        Err(RoomConfigError::EndedMemory(_))
    ));
}

#[test]
fn visitors_who_leave_from_the_back_at_a_stopped_clock_leave_no_checkin_records_behind() {
    // A paused room and a clock that never moves: every join has the same deadline, and each
    // newcomer takes the line place of the one who just left from the back. The line must still
    // tell the old check-in records from the newcomer's (check_invariants counts them).
    let (_clock, room) = room(10, 1);
    room.pause();
    for n in 0..100 {
        waiting(room.join(v(n)));
    }
    for n in 100..2_100 {
        let t = waiting(room.join(v(n)));
        if n % 100 == 0 {
            room.check_invariants().unwrap();
        }
        room.finish(t.token).unwrap();
    }
    room.check_invariants().unwrap();
    assert_eq!(room.stats().waiting, 100);
}

#[test]
fn an_entry_names_its_token_whichever_it_is() {
    let (clock, room) = room(1, 1);
    let pass = room.join(v(1)).unwrap();
    let ticket = room.join(v(2)).unwrap();
    assert_eq!(pass.token(), admitted(Ok::<_, JoinError>(pass)).token);
    assert_eq!(ticket.token(), waiting(Ok::<_, JoinError>(ticket)).token);
    clock.advance(Duration::from_secs(1));
    // The ticket keeps its token when it becomes a pass.
    assert_eq!(room.poll(ticket.token()).unwrap().token(), ticket.token());
}

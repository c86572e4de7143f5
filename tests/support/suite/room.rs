//! The room's rules, once for every backend: DESIGN.md "WaitingRoom" rules 1–8, claims, pause
//! and close, set_limits, entry_of and peek, with the invariants checked after every step.

use std::time::Duration;

use surgegate::{
    ClaimError, Entry, JoinError, LimitsError, Pass, PollError, RoomBackend, RoomConfigError,
    Ticket, TicketToken, VisitorId,
};

use super::checks;
use super::{Backends, RoomSetup};

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

/// A paused room with these settings: nothing is admitted while the suite looks at the line.
async fn paused<B: Backends>(b: &B, setup: RoomSetup) -> B::Room {
    let room = b.room(&setup).await;
    room.pause().await.unwrap();
    room
}

pub async fn run_all<B: Backends>(b: &B) {
    rule1_and_2_admission_at_the_rate_first_in_first_out(b).await;
    rule3_positions_stay_exact_when_visitors_leave(b).await;
    rule4_a_refresh_keeps_the_ticket_or_the_pass(b).await;
    rule5_a_silent_visitor_leaves_the_line(b).await;
    rule6_a_full_line_refuses_newcomers_and_changes_nothing(b).await;
    rule7_live_passes_never_exceed_max_active(b).await;
    rule8_etas_grow_with_the_place_and_are_kept(b).await;
    claims_free_unused_admissions(b).await;
    pause_and_close(b).await;
    set_limits_changes_the_three_together_or_nothing(b).await;
    the_time_base_is_the_unix_epoch(b).await;
}

async fn rule1_and_2_admission_at_the_rate_first_in_first_out<B: Backends>(b: &B) {
    let (rate, burst) = (4, 2);
    let room = b
        .room(&RoomSetup {
            rate_per_second: rate,
            burst,
            ..RoomSetup::default()
        })
        .await;
    let started = b.elapsed();
    let mut tokens = Vec::new();
    for n in 0..8 {
        tokens.push(room.join(v(n)).await.unwrap().token());
    }
    // An idle room admits the burst at once, plus what the rate earned while the others
    // joined (a slow server takes a visible time over eight joins); the rest wait in order
    // behind them. The room is paused while the suite reads the line, so that no admission
    // falls between two reads on a real clock.
    room.pause().await.unwrap();
    let paused = b.elapsed();
    let mut first = 0u64;
    for (n, &t) in tokens.iter().enumerate() {
        let n = n as u64;
        match room.peek(t).await.unwrap() {
            Entry::Admitted(_) => {
                assert_eq!(n, first, "{}: {n} admitted out of order", b.name());
                first += 1;
            }
            Entry::Waiting(ticket) => assert_eq!(ticket.position, n - first + 1, "{}", b.name()),
        }
    }
    let earned = (f64::from(rate) * (paused - started).as_secs_f64()) as u64;
    assert!(
        (u64::from(burst)..=u64::from(burst) + earned + 1).contains(&first),
        "{}: {first} admitted at once, burst {burst}",
        b.name()
    );
    checks::room(b, &room, &tokens, None, "rule 1: the burst").await;
    room.resume().await.unwrap();
    let resumed = b.elapsed();
    b.pass(Duration::from_millis(1_000)).await;
    let asked = b.elapsed();
    let admitted_total = room.stats().await.unwrap().admitted_total;
    room.pause().await.unwrap();
    let ended = b.elapsed();
    // Rule 1: at most burst + rate x T over the whole run; at the full rate while nobody
    // calls (give or take one).
    let most = u64::from(burst) + (f64::from(rate) * (ended - started).as_secs_f64()) as u64;
    let least = first + (f64::from(rate) * (asked - resumed).as_secs_f64()) as u64;
    assert!(
        (least.saturating_sub(1)..=most).contains(&admitted_total),
        "{}: {admitted_total} admitted, expected {least}..={most}",
        b.name()
    );
    // Rule 2: those admitted are the first to have joined (read while paused, so the count
    // and the entries are one state).
    let admitted_total = room.stats().await.unwrap().admitted_total;
    assert!(
        admitted_total <= most,
        "{}: {admitted_total} > {most}",
        b.name()
    );
    for (n, &t) in tokens.iter().enumerate() {
        let entry = room.peek(t).await.unwrap();
        let is_pass = matches!(entry, Entry::Admitted(_));
        assert_eq!(is_pass, (n as u64) < admitted_total, "{}: {n}", b.name());
    }
    checks::room(b, &room, &tokens, None, "rule 2: in order").await;
}

async fn rule3_positions_stay_exact_when_visitors_leave<B: Backends>(b: &B) {
    let room = paused(b, RoomSetup::default()).await;
    let mut tokens = Vec::new();
    for n in 0..6 {
        let t = waiting(room.join(v(n)).await);
        assert_eq!(t.position, n + 1);
        tokens.push(t.token);
        checks::room(b, &room, &tokens, None, "rule 3: joining").await;
    }
    room.finish(tokens[2]).await.unwrap();
    room.finish(tokens[0]).await.unwrap();
    assert_eq!(room.finish(tokens[0]).await, Err(PollError::UnknownToken));
    assert_eq!(waiting(room.peek(tokens[5]).await).position, 4);
    assert_eq!(waiting(room.peek(tokens[1]).await).position, 1);
    checks::room(b, &room, &tokens, None, "rule 3: two left").await;
    let s = room.stats().await.unwrap();
    assert_eq!((s.waiting, s.left_total), (4, 2));
}

async fn rule4_a_refresh_keeps_the_ticket_or_the_pass<B: Backends>(b: &B) {
    let room = b
        .room(&RoomSetup {
            burst: 1,
            rate_per_second: 1,
            ..RoomSetup::default()
        })
        .await;
    let pass = admitted(room.join(v(1)).await);
    let ticket = waiting(room.join(v(2)).await);
    room.pause().await.unwrap();
    let behind = waiting(room.join(v(3)).await);
    for _ in 0..3 {
        assert_eq!(admitted(room.join(v(1)).await).token, pass.token);
        let again = waiting(room.join(v(2)).await);
        assert_eq!((again.token, again.position), (ticket.token, 1));
        assert_eq!(
            room.entry_of(v(3)).await.unwrap().map(|e| e.token()),
            Some(behind.token)
        );
    }
    assert_eq!(room.entry_of(v(4)).await, Ok(None), "entry_of adds nobody");
    let tokens = [pass.token, ticket.token, behind.token];
    checks::room(b, &room, &tokens, None, "rule 4: refreshes").await;
    assert_eq!(room.stats().await.unwrap().waiting, 2);
}

async fn rule5_a_silent_visitor_leaves_the_line<B: Backends>(b: &B) {
    let timeout = Duration::from_millis(1_500);
    let room = paused(
        b,
        RoomSetup {
            checkin_timeout: timeout,
            ..RoomSetup::default()
        },
    )
    .await;
    assert_eq!(room.checkin_timeout(), timeout);
    let tokens: Vec<TicketToken> = {
        let mut out = Vec::new();
        for n in 1..=4 {
            out.push(waiting(room.join(v(n)).await).token);
        }
        out
    };
    b.pass(Duration::from_millis(900)).await;
    // Visitor 1 polls, visitor 3 refreshes through entry_of, visitor 4 is only peeked at
    // (which is no check-in), visitor 2 stays silent.
    room.poll(tokens[0]).await.unwrap();
    room.entry_of(v(3)).await.unwrap();
    room.peek(tokens[3]).await.unwrap();
    b.pass(Duration::from_millis(900)).await;
    assert_eq!(room.poll(tokens[1]).await, Err(PollError::Expired));
    assert_eq!(room.peek(tokens[3]).await, Err(PollError::Expired));
    assert_eq!(waiting(room.poll(tokens[0]).await).position, 1);
    assert_eq!(waiting(room.poll(tokens[2]).await).position, 2);
    let s = room.stats().await.unwrap();
    assert_eq!((s.waiting, s.dropped_total), (2, 2), "{}", b.name());
    checks::room(b, &room, &tokens, None, "rule 5: two lapsed").await;
}

async fn rule6_a_full_line_refuses_newcomers_and_changes_nothing<B: Backends>(b: &B) {
    let room = paused(
        b,
        RoomSetup {
            max_waiting: 3,
            ..RoomSetup::default()
        },
    )
    .await;
    let mut tokens = Vec::new();
    for n in 0..3 {
        tokens.push(waiting(room.join(v(n)).await).token);
    }
    let before = room.stats().await.unwrap();
    for n in 10..13 {
        let refused = room.join(v(n)).await;
        assert!(
            matches!(refused, Err(JoinError::Full { retry_after }) if retry_after > Duration::ZERO),
            "{}: {refused:?}",
            b.name()
        );
        assert_eq!(room.entry_of(v(n)).await, Ok(None));
    }
    // A visitor already in line still refreshes.
    assert_eq!(waiting(room.join(v(1)).await).token, tokens[1]);
    let after = room.stats().await.unwrap();
    assert_eq!(
        (after.waiting, after.admitted_total, after.left_total),
        (before.waiting, before.admitted_total, before.left_total)
    );
    checks::room(b, &room, &tokens, None, "rule 6: a full line").await;
}

async fn rule7_live_passes_never_exceed_max_active<B: Backends>(b: &B) {
    let room = b
        .room(&RoomSetup {
            rate_per_second: 1_000,
            burst: 1_000,
            max_active: 2,
            ..RoomSetup::default()
        })
        .await;
    let mut tokens = Vec::new();
    for n in 0..5 {
        tokens.push(room.join(v(n)).await.unwrap().token());
        checks::room(b, &room, &tokens, Some(2), "rule 7: joining").await;
    }
    assert!(matches!(room.peek(tokens[1]).await, Ok(Entry::Admitted(_))));
    assert_eq!(waiting(room.peek(tokens[2]).await).position, 1);
    // A finished pass frees its place: the next in line is admitted.
    room.finish(tokens[0]).await.unwrap();
    assert!(matches!(room.poll(tokens[2]).await, Ok(Entry::Admitted(_))));
    assert_eq!(waiting(room.poll(tokens[3]).await).position, 1);
    checks::room(b, &room, &tokens, Some(2), "rule 7: one finished").await;
    assert_eq!(room.stats().await.unwrap().active, 2);
}

async fn rule8_etas_grow_with_the_place_and_are_kept<B: Backends>(b: &B) {
    let room = b
        .room(&RoomSetup {
            rate_per_second: 4,
            burst: 1,
            ..RoomSetup::default()
        })
        .await;
    let first = admitted(room.join(v(0)).await);
    let mut line = Vec::new();
    for n in 1..=4 {
        let at = b.elapsed();
        line.push((waiting(room.join(v(n)).await), at));
    }
    let etas: Vec<Duration> = line.iter().map(|(t, _)| t.eta).collect();
    assert!(
        etas.windows(2).all(|w| w[0] <= w[1]),
        "{}: {etas:?}",
        b.name()
    );
    assert!(
        etas[3] <= Duration::from_millis(1_000) + b.slack(),
        "{}: four places at 4/s: {etas:?}",
        b.name()
    );
    let mut tokens: Vec<TicketToken> = line.iter().map(|(t, _)| t.token).collect();
    tokens.push(first.token);
    checks::room(b, &room, &tokens, None, "rule 8: ETAs").await;
    // Each, checking in every 100 ms, is admitted no later than its ETA plus a second.
    let mut pending: Vec<(Ticket, Duration)> = line;
    while !pending.is_empty() {
        b.pass(Duration::from_millis(100)).await;
        let now = b.elapsed();
        let mut still = Vec::new();
        for (ticket, joined) in pending {
            match room.poll(ticket.token).await.unwrap() {
                Entry::Admitted(_) => {}
                Entry::Waiting(_) => {
                    let late = joined + ticket.eta + Duration::from_secs(1) + b.slack();
                    assert!(now <= late, "{}: {ticket:?} not admitted in time", b.name());
                    still.push((ticket, joined));
                }
            }
        }
        pending = still;
    }
}

async fn claims_free_unused_admissions<B: Backends>(b: &B) {
    let room = b
        .room(&RoomSetup {
            rate_per_second: 10,
            burst: 3,
            claim_timeout: Some(Duration::from_millis(800)),
            pass_ttl: Duration::from_secs(60),
            ..RoomSetup::default()
        })
        .await;
    let passes: Vec<Pass> = {
        let mut out = Vec::new();
        for n in 1..=3 {
            out.push(admitted(room.join(v(n)).await));
        }
        out
    };
    room.pause().await.unwrap();
    let ticket = waiting(room.join(v(4)).await);
    assert_eq!(room.claim(ticket.token).await, Err(ClaimError::NotAdmitted));
    let claimed = room.claim(passes[0].token).await.unwrap();
    assert_eq!(room.claim(passes[0].token).await, Ok(claimed));
    // Claimed: the pass lasts its ttl from admission, not the claim's 800 ms.
    assert!(claimed.expires_at > room.now_unix() + Duration::from_secs(50));
    let mut tokens: Vec<TicketToken> = passes.iter().map(|p| p.token).collect();
    tokens.push(ticket.token);
    checks::room(b, &room, &tokens, None, "claims: one claimed").await;
    b.pass(Duration::from_millis(800) + b.slack()).await;
    for p in &passes[1..] {
        assert_eq!(room.claim(p.token).await, Err(ClaimError::Expired));
    }
    assert_eq!(room.claim(passes[0].token).await, Ok(claimed));
    assert_eq!(room.stats().await.unwrap().active, 1);
    checks::room(b, &room, &tokens, None, "claims: unclaimed lapsed").await;
}

async fn pause_and_close<B: Backends>(b: &B) {
    let room = b
        .room(&RoomSetup {
            rate_per_second: 1_000,
            burst: 10,
            ..RoomSetup::default()
        })
        .await;
    room.pause().await.unwrap();
    let queued = waiting(room.join(v(1)).await);
    assert!(room.stats().await.unwrap().paused);
    checks::room(b, &room, &[queued.token], None, "paused").await;
    room.resume().await.unwrap();
    assert!(matches!(
        room.poll(queued.token).await,
        Ok(Entry::Admitted(_))
    ));
    room.close().await.unwrap();
    assert_eq!(room.join(v(2)).await, Err(JoinError::Closed));
    // A visitor already in the room is still known.
    assert!(matches!(room.join(v(1)).await, Ok(Entry::Admitted(_))));
    let s = room.stats().await.unwrap();
    assert!(s.closed && !s.paused);
    room.reopen().await.unwrap();
    let newcomer = room.join(v(2)).await.unwrap();
    assert!(matches!(newcomer, Entry::Admitted(_)));
    checks::room(
        b,
        &room,
        &[queued.token, newcomer.token()],
        None,
        "reopened",
    )
    .await;
}

async fn set_limits_changes_the_three_together_or_nothing<B: Backends>(b: &B) {
    let room = b
        .room(&RoomSetup {
            rate_per_second: 1_000,
            burst: 5,
            ..RoomSetup::default()
        })
        .await;
    let mut tokens = Vec::new();
    for n in 0..3 {
        tokens.push(admitted(room.join(v(n)).await).token);
    }
    let config = |e| Err(LimitsError::Config(e));
    assert_eq!(
        room.set_limits(0, 5, 5).await,
        config(RoomConfigError::Rate(0))
    );
    assert_eq!(
        room.set_limits(5, 0, 5).await,
        config(RoomConfigError::Burst(0))
    );
    assert_eq!(
        room.set_limits(5, 5, 0).await,
        config(RoomConfigError::MaxActive(0))
    );
    assert_eq!(
        room.set_limits(10_000_001, 5, 5).await,
        config(RoomConfigError::Rate(10_000_001))
    );
    let s = room.stats().await.unwrap();
    assert_eq!(
        (s.rate_per_second, s.burst, s.max_active),
        (1_000, 5, u32::MAX)
    );
    // Lowered below the live passes: they all stay, and nobody is admitted until they fit.
    room.set_limits(9, 3, 2).await.unwrap();
    let s = room.stats().await.unwrap();
    assert_eq!((s.rate_per_second, s.burst, s.max_active), (9, 3, 2));
    tokens.push(waiting(room.join(v(9)).await).token);
    assert_eq!(room.stats().await.unwrap().active, 3);
    checks::room(b, &room, &tokens, None, "set_limits: lowered").await;
    room.finish(tokens[0]).await.unwrap();
    room.finish(tokens[1]).await.unwrap();
    // Past the new schedule's next admission (9/s).
    b.pass(Duration::from_millis(200)).await;
    assert!(matches!(room.poll(tokens[3]).await, Ok(Entry::Admitted(_))));
    checks::room(b, &room, &tokens, Some(2), "set_limits: fits again").await;
}

async fn the_time_base_is_the_unix_epoch<B: Backends>(b: &B) {
    let ttl = Duration::from_secs(900);
    let room = b
        .room(&RoomSetup {
            pass_ttl: ttl,
            ..RoomSetup::default()
        })
        .await;
    let before = room.now_unix();
    let pass = admitted(room.join(v(1)).await);
    let after = room.now_unix();
    assert!(
        pass.expires_at + b.slack() >= before + ttl && pass.expires_at <= after + ttl + b.slack(),
        "{}: {:?} not within {before:?}..{after:?} + {ttl:?}",
        b.name(),
        pass.expires_at
    );
    assert_eq!(
        room.claim(pass.token).await.unwrap().expires_at,
        pass.expires_at
    );
    let s = room.stats().await.unwrap();
    assert_eq!((s.prequeued, s.opens_at), (0, None));
}

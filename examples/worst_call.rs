//! The longest single call with a million waiting or a million held: a backlog of due work
//! (admissions, lapses, expiries) is worked off in bounded steps, so no one call pays for all of
//! it. Prints one row per scenario: the calls it took to catch up, the worst single call, the
//! 99th percentile and the total.
//!
//! `cargo run --release --example worst_call` (about a minute; run it on a quiet machine).

use std::time::{Duration, Instant};

use surgegate::{
    ApplicantId, BranchId, Entry, ManualClock, SlotBook, TicketToken, VisitorId, WaitingRoom,
};

const MILLION: u64 = 1_000_000;

/// Every call's time, until `done` said the backlog is gone (at most `max_calls` calls).
fn until_done(max_calls: usize, mut call: impl FnMut() -> bool) -> Vec<Duration> {
    let mut times = Vec::new();
    for n in 1..=max_calls {
        let started = Instant::now();
        let done = call();
        let took = started.elapsed();
        if std::env::var("WORST_CALL_TRACE").is_ok() && took > Duration::from_millis(6) {
            eprintln!("call {n}: {:.1} ms", took.as_secs_f64() * 1e3);
        }
        times.push(took);
        if done {
            break;
        }
    }
    times
}

fn row(name: &str, mut times: Vec<Duration>) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let total: Duration = times.iter().sum();
    times.sort();
    let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
    println!(
        "| {name} | {} | {:.2} ms | {:.2} ms | {:.1} ms |",
        times.len(),
        ms(*times.last().expect("at least one call")),
        ms(p99),
        ms(total)
    );
}

fn room(clock: &ManualClock, rate: u32, burst: u32, checkin: Duration) -> WaitingRoom<ManualClock> {
    WaitingRoom::builder()
        .clock(clock.clone())
        .rate_per_second(rate)
        .burst(burst)
        .max_waiting(2 * MILLION as u32)
        .checkin_timeout(checkin)
        .pass_ttl(Duration::from_secs(60))
        .build()
}

/// A million waiting visitors; returns the last one's ticket.
fn fill(room: &WaitingRoom<ManualClock>) -> TicketToken {
    let mut last = None;
    for v in 0..MILLION {
        if let Ok(Entry::Waiting(t)) = room.join(VisitorId(v)) {
            last = Some(t.token);
        }
    }
    last.expect("visitors wait")
}

/// A million join; returns the tickets of those who wait.
fn join_a_million(room: &WaitingRoom<ManualClock>) -> Vec<TicketToken> {
    (0..MILLION)
        .filter_map(|v| match room.join(VisitorId(v)) {
            Ok(Entry::Waiting(t)) => Some(t.token),
            _ => None,
        })
        .collect()
}

fn stats_after_a_million_admissions_and_expiries() {
    let clock = ManualClock::new();
    let room = room(&clock, 10_000, 10_000, Duration::from_secs(86_400));
    fill(&room);
    // 1 M admissions fall due, and most of their passes expire too.
    clock.advance(Duration::from_secs(200));
    row(
        "`stats()` with 1 M admissions and pass expiries due",
        until_done(100_000, || room.stats().waiting == 0),
    );
}

fn poll_after_three_idle_hours() {
    let clock = ManualClock::new();
    let room = room(&clock, 1, 1, Duration::from_secs(60));
    let token = fill(&room);
    clock.advance(Duration::from_secs(3 * 3600));
    // The polled visitor checks in (its new deadline comes from the clock), so it stays; the
    // million before it lapse, and then it is first (and admitted at once: the room was idle).
    row(
        "`poll()` after 3 h idle, 1 M check-ins lapsed",
        until_done(
            100_000,
            || !matches!(room.poll(token), Ok(Entry::Waiting(t)) if t.position > 1),
        ),
    );
}

fn poll_after_two_in_three_abandoned() {
    let clock = ManualClock::new();
    let room = room(&clock, 1, 1, Duration::from_secs(60));
    let tokens = join_a_million(&room);
    // Every third visitor checks in; the others leave holes all along the line when they lapse.
    clock.advance(Duration::from_secs(30));
    for token in tokens.iter().step_by(3) {
        let _ = room.poll(*token);
    }
    clock.advance(Duration::from_secs(31));
    let last = tokens[(tokens.len() - 1) / 3 * 3];
    row(
        "`poll()` after 2 in 3 of 1 M waiting lapsed, all along the line",
        until_done(
            100_000,
            || matches!(room.poll(last), Ok(Entry::Waiting(t)) if t.position <= MILLION / 3 + 1),
        ),
    );
}

fn lapse_after_a_million_check_ins_at_one_instant() {
    let clock = ManualClock::new();
    let room = room(&clock, 1, 1, Duration::from_secs(60));
    let tokens = join_a_million(&room);
    // One visitor checks in at 20 s, every other one at 30 s: at 60 s their join records come
    // up and move, the first to its own bucket, the million to one bucket (deadline 90 s)...
    clock.advance(Duration::from_secs(20));
    let _ = room.poll(tokens[0]);
    clock.advance(Duration::from_secs(10));
    for token in &tokens[1..] {
        let _ = room.poll(*token);
    }
    clock.advance(Duration::from_secs(31));
    let mut times = until_done(400, || {
        room.stats();
        false
    });
    // ...which comes first at 80 s, when the first lapses; then the million lapse at 90 s.
    clock.advance(Duration::from_secs(30));
    times.extend(until_done(100_000, || room.stats().waiting == 0));
    row(
        "`stats()` while 1 M check-in records move, then lapse",
        times,
    );
}

fn resume_with_a_ten_million_burst() {
    let clock = ManualClock::new();
    let room = room(&clock, 10_000_000, 10_000_000, Duration::from_secs(86_400));
    room.pause();
    fill(&room);
    let mut first = true;
    row(
        "`resume()` with a 10 M burst, 1 M waiting",
        until_done(100_000, || {
            if first {
                room.resume();
                first = false;
                return false;
            }
            room.stats().waiting == 0
        }),
    );
}

fn joins_behind_a_million() {
    let clock = ManualClock::new();
    let room = room(&clock, 1, 1, Duration::from_secs(86_400));
    room.pause();
    fill(&room);
    // Newcomers queue behind the line under the shared lock; every 1 024th join finds the queue
    // full and appends them all under the exclusive lock.
    let mut next = MILLION;
    row(
        "`join()` of 100 000 newcomers behind 1 M waiting",
        until_done(100_000, || {
            next += 1;
            room.join(VisitorId(next)).expect("room has space");
            false
        }),
    );
}

fn book_with_a_million_holds(clock: &ManualClock) -> SlotBook<ManualClock> {
    let book = SlotBook::builder()
        .clock(clock.clone())
        .hold_ttl(Duration::from_secs(600))
        .build();
    for b in 0..10 {
        for s in 0..100 {
            book.set_capacity(BranchId(b), s, 1_000).unwrap();
        }
    }
    for a in 0..MILLION {
        let (b, s) = ((a % 10) as u32, ((a / 10) % 100) as u32);
        book.reserve(BranchId(b), s, ApplicantId(a)).unwrap();
    }
    book
}

fn slot_after_a_million_holds_expired() {
    let clock = ManualClock::new();
    let book = book_with_a_million_holds(&clock);
    clock.advance(Duration::from_secs(601));
    row(
        "`slot()` after 1 M holds expired at once",
        until_done(100_000, || {
            book.slot(BranchId(0), 0).is_some_and(|s| s.held == 0)
                && book
                    .availability(BranchId(9), ..)
                    .iter()
                    .all(|(_, s)| s.held == 0)
        }),
    );
}

fn reserve_and_confirm_with_a_million_live_holds() {
    let clock = ManualClock::new();
    let book = book_with_a_million_holds(&clock);
    book.set_capacity(BranchId(20), 0, 100_000).unwrap();
    let mut a = 10 * MILLION;
    row(
        "`reserve()` + `confirm()` with 1 M live holds (10 000 pairs)",
        until_done(10_000, || {
            a += 1;
            let hold = book.reserve(BranchId(20), 0, ApplicantId(a)).unwrap();
            book.confirm(hold.token).unwrap();
            false
        }),
    );
}

fn main() {
    // `WORST_CALL_ONLY=resume` (a part of a scenario's name) runs only the matching ones.
    let only = std::env::var("WORST_CALL_ONLY").unwrap_or_default();
    let scenarios: [(&str, fn()); 8] = [
        ("stats", stats_after_a_million_admissions_and_expiries),
        ("poll_idle", poll_after_three_idle_hours),
        ("poll_abandoned", poll_after_two_in_three_abandoned),
        (
            "checkins_moved",
            lapse_after_a_million_check_ins_at_one_instant,
        ),
        ("resume", resume_with_a_ten_million_burst),
        ("joins", joins_behind_a_million),
        ("slot", slot_after_a_million_holds_expired),
        ("reserve", reserve_and_confirm_with_a_million_live_holds),
    ];
    println!("| call | calls until caught up | worst single call | 99th percentile | all calls |");
    println!("|---|---|---|---|---|");
    for (name, run) in scenarios {
        if name.contains(only.as_str()) {
            run();
        }
    }
}

//! Threads join, poll and leave concurrently while another moves the clock and a monitor checks
//! the room's invariants in between. At the end positions are exact, each thread's visitors were
//! admitted in the order that thread enrolled them, and the rate bound held over every window.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use surgegate::{Entry, ManualClock, PollError, TicketToken, VisitorId, WaitingRoom};

const WORKERS: u64 = 4;
const JOINS_PER_WORKER: u64 = 1_500;
const RATE: u32 = 500;
const BURST: u32 = 20;
const PASS_TTL: Duration = Duration::from_secs(3600);

#[test]
fn concurrent_joins_and_polls_keep_positions_exact_fifo_and_the_rate() {
    let clock = ManualClock::new();
    let room = Arc::new(
        WaitingRoom::builder()
            .rate_per_second(RATE)
            .burst(BURST)
            .checkin_timeout(Duration::from_millis(400))
            .pass_ttl(PASS_TTL)
            .clock(clock.clone())
            .build(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    // Workers count their joins; the clock and the monitor pace themselves by that count, so the
    // simulated time and the number of checks do not depend on how fast the machine is.
    let progress = Arc::new(AtomicU64::new(0));
    let checks_done = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(WORKERS as usize + 2));

    let ticker = {
        let (clock, stop, barrier, progress) = (
            clock.clone(),
            stop.clone(),
            barrier.clone(),
            progress.clone(),
        );
        thread::spawn(move || {
            barrier.wait();
            // One simulated millisecond per two joins: about 3 s in all, 1500 admissions.
            let mut ticks = 0;
            while !stop.load(Ordering::Relaxed) {
                if progress.load(Ordering::Relaxed) / 2 > ticks {
                    clock.advance(Duration::from_millis(1));
                    ticks += 1;
                } else {
                    thread::yield_now();
                }
            }
        })
    };
    let monitor = {
        let (room, barrier, progress, checks_done) = (
            room.clone(),
            barrier.clone(),
            progress.clone(),
            checks_done.clone(),
        );
        thread::spawn(move || {
            barrier.wait();
            // A full check every 100 joins while the workers race (they wait for it, below).
            let total = WORKERS * JOINS_PER_WORKER / 100;
            for n in 0..total {
                while progress.load(Ordering::Relaxed) / 100 < n {
                    thread::yield_now();
                }
                room.check_invariants()
                    .expect("invariants while threads race");
                checks_done.store(n + 1, Ordering::Relaxed);
            }
            total
        })
    };
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (room, barrier, progress, checks_done) = (
                room.clone(),
                barrier.clone(),
                progress.clone(),
                checks_done.clone(),
            );
            thread::spawn(move || {
                let mut mine: Vec<TicketToken> = Vec::new();
                let mut left = Vec::new();
                barrier.wait();
                for i in 0..JOINS_PER_WORKER {
                    let done = progress.fetch_add(1, Ordering::Relaxed) + 1;
                    while done / 100 > checks_done.load(Ordering::Relaxed) + 1 {
                        thread::yield_now();
                    }
                    let visitor = VisitorId(w * 1_000_000 + i);
                    match room.join(visitor).unwrap() {
                        Entry::Admitted(p) => mine.push(p.token),
                        Entry::Waiting(t) => mine.push(t.token),
                    }
                    // Refresh a few recent tickets; now and then a visitor gives up.
                    for &t in mine.iter().rev().take(8) {
                        let _ = room.poll(t);
                    }
                    // Now and then a visitor far back in line gives up. (If it was admitted
                    // between the peek and the finish, a pass ends unobserved; the checks below
                    // allow for that.)
                    if i % 50 == 7 {
                        let t = mine[mine.len() / 2];
                        if matches!(room.peek(t), Ok(Entry::Waiting(w)) if w.position > 50)
                            && room.finish(t).is_ok()
                        {
                            left.push(t);
                        }
                    }
                }
                (mine, left)
            })
        })
        .collect();
    let results: Vec<_> = workers.into_iter().map(|h| h.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    ticker.join().unwrap();
    let checks = monitor.join().unwrap();
    assert_eq!(checks, WORKERS * JOINS_PER_WORKER / 100);
    room.check_invariants().unwrap();

    // Learn every admission time, and check each worker's visitors were admitted in the order
    // that worker enrolled them (its joins are sequential, so that order is real).
    let mut times = Vec::new();
    for (mine, left) in &results {
        let mut last = Duration::ZERO;
        for t in mine {
            match room.peek(*t) {
                Ok(Entry::Admitted(p)) => {
                    let at = p.expires_at - PASS_TTL;
                    assert!(
                        at >= last,
                        "a later join of the same worker was admitted first"
                    );
                    last = at;
                    times.push(at.as_nanos() as u64);
                }
                Ok(Entry::Waiting(_)) => {}
                Err(PollError::Expired) => {}
                Err(PollError::UnknownToken) => assert!(left.contains(t), "a ticket vanished"),
                Err(e) => panic!("{e}"),
            }
        }
    }
    let stats = room.stats();
    // Passes outlive the test, so every live pass was observed, and every other admission is a
    // pass some worker ended by leaving.
    let left_total: usize = results.iter().map(|(_, left)| left.len()).sum();
    assert_eq!(times.len() as u64, stats.active);
    assert!(stats.admitted_total - stats.active <= left_total as u64);
    assert!(
        stats.admitted_total > 100,
        "too few admissions to mean anything: {stats:?}"
    );

    // burst + rate × window, for every pair of admissions i <= j:
    //   (j - i + 1 - burst) * 1e9 <= rate * (t_j - t_i)
    // which, with f(k) = k * 1e9 - rate * t_k, is f(j) - min over i <= j of f(i) <= (burst - 1) * 1e9:
    // one pass with a running minimum checks every pair exactly.
    times.sort_unstable();
    let f = |k: usize, t: u64| k as i128 * 1_000_000_000 - i128::from(RATE) * i128::from(t);
    let mut lowest = i128::MAX;
    for (k, &t) in times.iter().enumerate() {
        lowest = lowest.min(f(k, t));
        assert!(
            f(k, t) - lowest <= (i128::from(BURST) - 1) * 1_000_000_000,
            "admission {k} at {t} ns breaks burst + rate x window"
        );
    }
}

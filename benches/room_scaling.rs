//! How the waiting room's throughput grows from one thread to two, as ratios from one run.
//!
//! `cargo bench --bench room_scaling`: a paused room with a line of `ROOM_SCALING_WAITING`
//! visitors (default 1 000 000), then in each of 31 rounds, back to back, about 20 ms of calls on
//! one thread and on two threads; the median over the rounds of throughput(2) / throughput(1) is
//! printed for:
//! - `polls`: check-ins of random waiting visitors (the refresh of a waiting page);
//! - `mixed`: 90% such polls, 10% joins of newcomers at the back of the line (their ids from a
//!   counter per thread);
//! - `joins`: the other way round, 90% joins of newcomers and 10% polls (the opening minute of
//!   a launch, when nearly every request is a first visit).
//!
//! Interleaving keeps the ratio steady on a shared machine whose speed drifts over seconds. On a
//! machine with two cores, 2.0 is perfect scaling.

use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use surgegate::{Entry, ManualClock, TicketToken, VisitorId, WaitingRoom};

const ROUNDS: usize = 31;
const SLICE: Duration = Duration::from_millis(20);

fn room(waiting: u64) -> (WaitingRoom<ManualClock>, Vec<TicketToken>) {
    let room = WaitingRoom::builder()
        .rate_per_second(1)
        .burst(1)
        .max_waiting(1 << 30)
        .checkin_timeout(Duration::from_secs(86_400))
        .clock(ManualClock::new())
        .build();
    room.pause();
    let tokens = (0..waiting)
        .map(|v| match room.join(VisitorId(v)).expect("room has space") {
            Entry::Waiting(t) => t.token,
            Entry::Admitted(_) => unreachable!("paused"),
        })
        .collect();
    (room, tokens)
}

/// Calls per second of `op(thread, i)` on `threads` threads, each running `per_thread` calls.
fn throughput(threads: usize, per_thread: u64, op: &(impl Fn(usize, u64) + Sync)) -> f64 {
    let barrier = Barrier::new(threads + 1);
    let start = std::thread::scope(|s| {
        for t in 0..threads {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                for i in 0..per_thread {
                    op(t, i);
                }
            });
        }
        barrier.wait();
        Instant::now()
    });
    (threads as u64 * per_thread) as f64 / start.elapsed().as_secs_f64()
}

/// Calls per thread that take about one slice on one thread.
fn calibrate(op: &(impl Fn(usize, u64) + Sync)) -> u64 {
    let mut n = 1_000u64;
    loop {
        let start = Instant::now();
        for i in 0..n {
            op(0, i);
        }
        if start.elapsed() >= SLICE || n >= 1 << 24 {
            return n;
        }
        n *= 2;
    }
}

/// Median over the rounds of throughput on two threads over throughput on one, and the median
/// time per call on one thread (ns).
fn scaling(op: &(impl Fn(usize, u64) + Sync)) -> (f64, f64) {
    let n = calibrate(op);
    let (mut ratios, mut ns): (Vec<f64>, Vec<f64>) = (0..ROUNDS)
        .map(|_| {
            let one = throughput(1, n, op);
            let two = throughput(2, n / 2, op);
            (two / one, 1e9 / one)
        })
        .unzip();
    ratios.sort_by(f64::total_cmp);
    ns.sort_by(f64::total_cmp);
    (ratios[ROUNDS / 2], ns[ROUNDS / 2])
}

fn random(thread: usize, i: u64) -> u64 {
    let mut x = (thread as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i;
    x ^= x >> 31;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^ (x >> 29)
}

fn main() {
    let waiting: u64 = std::env::var("ROOM_SCALING_WAITING")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let (room, tokens) = room(waiting);
    let poll = |thread: usize, i: u64| {
        let token = tokens[(random(thread, i) % waiting) as usize];
        black_box(room.poll(token).expect("a waiting visitor"));
    };
    let polls = scaling(&poll);
    // Newcomers' ids come from a counter per thread, each on its own cache line: the harness
    // shares no counter between the threads it measures (a portal's ids come with requests).
    let next_ids: Vec<CachePadded<AtomicU64>> = (1..=2)
        .map(|t| CachePadded::new(AtomicU64::new(t << 40)))
        .collect();
    let newcomer = |thread: usize| {
        let v = next_ids[thread].fetch_add(1, Ordering::Relaxed);
        black_box(room.join(VisitorId(v)).expect("room has space"));
    };
    let mixed = |thread: usize, i: u64| {
        if i % 10 == 9 {
            newcomer(thread);
        } else {
            poll(thread, i);
        }
    };
    let mixed = scaling(&mixed);
    let joins = |thread: usize, i: u64| {
        if i % 10 == 9 {
            poll(thread, i);
        } else {
            newcomer(thread);
        }
    };
    let joins = scaling(&joins);
    println!(
        "room scaling, {waiting} waiting, 2 threads / 1 thread (throughput, median of {ROUNDS} interleaved rounds):"
    );
    println!(
        "  polls of waiting visitors      {:.2}x   (one thread: {:.0} ns per call)",
        polls.0, polls.1
    );
    println!(
        "  joins + polls mixed 10/90      {:.2}x   (one thread: {:.0} ns per call)",
        mixed.0, mixed.1
    );
    println!(
        "  joins + polls mixed 90/10      {:.2}x   (one thread: {:.0} ns per call)",
        joins.0, joins.1
    );
}

//! loom model of the WaitingRoom: joins racing an admission step. Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release -p surgegate --lib --test loom_book --test loom_room loom`.
#![cfg(loom)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use surgegate::{Entry, ManualClock, Pass, VisitorId, WaitingRoom};

/// Two joins race an admission step (the clock reaching the next admission, observed by a third
/// call): positions stay exact and nobody is admitted twice.
#[test]
fn loom_two_joins_race_an_admission_step() {
    static EXECUTIONS: AtomicUsize = AtomicUsize::new(0);
    loom::model(|| {
        EXECUTIONS.fetch_add(1, Ordering::Relaxed);
        let clock = ManualClock::new();
        let room = Arc::new(
            WaitingRoom::builder()
                .rate_per_second(1)
                .burst(1)
                .clock(clock.clone())
                .build(),
        );
        assert!(matches!(
            room.join(VisitorId(0)).unwrap(),
            Entry::Admitted(_)
        ));
        assert!(matches!(
            room.join(VisitorId(9)).unwrap(),
            Entry::Waiting(_)
        ));
        let joiners: Vec<_> = [1u64, 2]
            .into_iter()
            .map(|v| {
                let room = room.clone();
                loom::thread::spawn(move || room.join(VisitorId(v)).unwrap())
            })
            .collect();
        let admitter = {
            let (room, clock) = (room.clone(), clock.clone());
            loom::thread::spawn(move || {
                clock.advance(Duration::from_secs(1));
                room.stats()
            })
        };
        let entries: Vec<Entry> = joiners.into_iter().map(|h| h.join().unwrap()).collect();
        admitter.join().unwrap();
        room.check_invariants().unwrap();
        let stats = room.stats();
        // Visitor 9 was first in line: it, and only it, is admitted at 1 s.
        assert_eq!(stats.admitted_total, 2);
        assert_eq!(stats.waiting, 2);
        let mut positions: Vec<u64> = [1u64, 2]
            .iter()
            .map(|&v| match room.join(VisitorId(v)).unwrap() {
                Entry::Waiting(t) => t.position,
                Entry::Admitted(p) => panic!("{p:?} admitted out of turn"),
            })
            .collect();
        positions.sort_unstable();
        assert_eq!(positions, [1, 2]);
        for e in entries {
            assert!(matches!(e, Entry::Waiting(_)));
        }
    });
    println!(
        "loom model joins vs admission: {} executions",
        EXECUTIONS.load(Ordering::Relaxed)
    );
}

/// A room admitting 1 000 a second with one active place and a 10 s check-in timeout, and the
/// pass of its first visitor, who takes that place.
fn one_active_place(clock: &ManualClock) -> (Arc<WaitingRoom<ManualClock>>, Pass) {
    let room = Arc::new(
        WaitingRoom::builder()
            .rate_per_second(1_000)
            .burst(1)
            .max_active(1)
            .checkin_timeout(Duration::from_secs(10))
            .clock(clock.clone())
            .build(),
    );
    let Entry::Admitted(pass) = room.join(VisitorId(0)).unwrap() else {
        panic!("an empty room admits at once")
    };
    (room, pass)
}

/// Two polls under the shared lock race a `finish` under the exclusive lock that admits the head
/// of the line: each poll sees the line before or after the admission, never between; the
/// check-ins made under the shared lock are not lost (the visitor outlives its join's deadline).
#[test]
fn loom_shared_polls_race_an_exclusive_admission() {
    static EXECUTIONS: AtomicUsize = AtomicUsize::new(0);
    loom::model(|| {
        EXECUTIONS.fetch_add(1, Ordering::Relaxed);
        let clock = ManualClock::new();
        let (room, pass) = one_active_place(&clock);
        let tickets: Vec<_> = [1u64, 2]
            .iter()
            .map(|&v| match room.join(VisitorId(v)).unwrap() {
                Entry::Waiting(t) => t.token,
                Entry::Admitted(p) => panic!("{p:?}: the active place is taken"),
            })
            .collect();
        // Joined at 0 s (deadline 10 s); the polls at 5 s move the deadlines to 15 s.
        clock.advance(Duration::from_secs(5));
        let pollers: Vec<_> = tickets
            .iter()
            .map(|&token| {
                let room = room.clone();
                loom::thread::spawn(move || room.poll(token).unwrap())
            })
            .collect();
        let finisher = {
            let room = room.clone();
            loom::thread::spawn(move || room.finish(pass.token).unwrap())
        };
        let polled: Vec<Entry> = pollers.into_iter().map(|h| h.join().unwrap()).collect();
        finisher.join().unwrap();
        // Visitor 1 sees itself first in line, or admitted; visitor 2 second, or first once 1
        // was admitted; never anything else.
        match &polled[0] {
            Entry::Waiting(t) => assert_eq!(t.position, 1),
            Entry::Admitted(_) => {}
        }
        match &polled[1] {
            Entry::Waiting(t) => assert!(t.position == 1 || t.position == 2, "{t:?}"),
            Entry::Admitted(p) => panic!("{p:?} admitted out of turn"),
        }
        room.check_invariants().unwrap();
        let stats = room.stats();
        assert_eq!((stats.admitted_total, stats.waiting), (2, 1));
        // Past the join's deadline, before the poll's: visitor 2 still waits, at the head.
        clock.advance(Duration::from_secs(7));
        match room.peek(tickets[1]).unwrap() {
            Entry::Waiting(t) => assert_eq!(t.position, 1),
            Entry::Admitted(p) => panic!("{p:?}: nobody finished, nothing frees a place"),
        }
        room.check_invariants().unwrap();
    });
    println!(
        "loom model shared polls vs exclusive admission: {} executions",
        EXECUTIONS.load(Ordering::Relaxed)
    );
}

/// A newcomer joins twice at once under the shared lock (an arrival behind the line) while a
/// `finish` under the exclusive lock appends the arrivals to the line and admits its head: the
/// two joins get one ticket, its place is exact before and after, and the arrival is found at its
/// place in the line afterwards.
#[test]
fn loom_shared_arrivals_race_an_exclusive_call() {
    static EXECUTIONS: AtomicUsize = AtomicUsize::new(0);
    loom::model(|| {
        EXECUTIONS.fetch_add(1, Ordering::Relaxed);
        let clock = ManualClock::new();
        let (room, pass) = one_active_place(&clock);
        assert!(matches!(
            room.join(VisitorId(1)).unwrap(),
            Entry::Waiting(_)
        ));
        // The rate allows the next admission: only the active place holds visitor 1 back.
        clock.advance(Duration::from_secs(1));
        let joiners: Vec<_> = (0..2)
            .map(|_| {
                let room = room.clone();
                loom::thread::spawn(move || room.join(VisitorId(2)).unwrap())
            })
            .collect();
        let finisher = {
            let room = room.clone();
            loom::thread::spawn(move || room.finish(pass.token).unwrap())
        };
        let tickets: Vec<_> = joiners
            .into_iter()
            .map(|h| match h.join().unwrap() {
                // Behind visitor 1, or first once 1 was admitted.
                Entry::Waiting(t) if t.position == 1 || t.position == 2 => t,
                other => panic!("the newcomer got {other:?}"),
            })
            .collect();
        finisher.join().unwrap();
        assert_eq!(
            tickets[0].token, tickets[1].token,
            "one visitor, one ticket"
        );
        room.check_invariants().unwrap();
        match room.poll(tickets[0].token).unwrap() {
            Entry::Waiting(t) => assert_eq!(t.position, 1),
            Entry::Admitted(p) => panic!("{p:?}: the active place is taken"),
        }
        let stats = room.stats();
        assert_eq!((stats.admitted_total, stats.waiting), (2, 1));
        room.check_invariants().unwrap();
    });
    println!(
        "loom model shared arrivals vs exclusive call: {} executions",
        EXECUTIONS.load(Ordering::Relaxed)
    );
}

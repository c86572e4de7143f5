//! loom model of the WaitingRoom: joins racing an admission step. Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release loom`.
#![cfg(loom)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use surgegate::{Entry, ManualClock, VisitorId, WaitingRoom};

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

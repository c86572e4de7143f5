//! A room's tables give memory back once the load has gone, and do not thrash under a steady
//! load.

use std::time::Duration;

use surgegate::{Entry, ManualClock, VisitorId, WaitingRoom};

const VISITORS: u64 = 200_000;

fn room(clock: &ManualClock) -> WaitingRoom<ManualClock> {
    WaitingRoom::builder()
        .clock(clock.clone())
        .rate_per_second(1_000)
        .burst(1_000)
        .max_waiting(1 << 20)
        .checkin_timeout(Duration::from_secs(60))
        .pass_ttl(Duration::from_secs(30))
        .ended_memory(1_000)
        .build()
}

#[test]
fn after_the_load_has_gone_the_tables_shrink() {
    let clock = ManualClock::new();
    let room = room(&clock);
    let empty = room.heap_bytes();
    for v in 0..VISITORS {
        room.join(VisitorId(v)).unwrap();
    }
    let loaded = room.heap_bytes();
    // Everyone lapses or is admitted and their passes run out; the room catches up.
    clock.advance(Duration::from_secs(3_600));
    while room.stats().waiting > 0 || room.stats().active > 0 {}
    room.check_invariants().unwrap();
    let after = room.heap_bytes();
    eprintln!("heap bytes: empty {empty}, {VISITORS} waiting {loaded}, after {after}");
    assert!(loaded > 40 * VISITORS as usize, "{loaded}");
    assert!(after < loaded / 20, "after {after}, loaded {loaded}");
    // And the room still works.
    assert!(matches!(
        room.join(VisitorId(1 << 40)),
        Ok(Entry::Admitted(_))
    ));
    room.check_invariants().unwrap();
}

#[test]
fn a_steady_load_neither_grows_nor_shrinks_its_tables() {
    let clock = ManualClock::new();
    let room = room(&clock);
    // 1 000 joins a second against 1 000 admissions a second: about a thousand waiting and 30 000
    // passes at any time, once warm.
    let mut sizes = Vec::new();
    for v in 0..150_000u64 {
        room.join(VisitorId(v)).unwrap();
        clock.advance(Duration::from_millis(1));
        if v >= 60_000 && v % 1_000 == 0 {
            sizes.push(room.heap_bytes());
        }
    }
    room.check_invariants().unwrap();
    let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
    assert!(
        max - min <= max / 4,
        "heap bytes swung from {min} to {max}: {sizes:?}"
    );
}

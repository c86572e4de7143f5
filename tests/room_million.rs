//! A million waiting visitors: positions stay exact after a block of them leaves from the middle.
//!
//! Ignored by default (it takes seconds); CI runs it after the suite, in the test profile:
//! `cargo test --test room_million -- --ignored`.

use std::time::{Duration, Instant};

use surgegate::{Entry, ManualClock, TicketToken, VisitorId, WaitingRoom};

const N: u64 = 1_000_000;

#[test]
#[ignore = "a million visitors: CI runs it after the suite"]
fn a_million_waiting_visitors_keep_exact_positions() {
    let clock = ManualClock::new();
    let room = WaitingRoom::builder()
        .rate_per_second(1)
        .burst(1)
        .max_waiting(2_000_000)
        .checkin_timeout(Duration::from_secs(3600))
        .clock(clock.clone())
        .build();
    room.pause();
    let started = Instant::now();
    let tokens: Vec<TicketToken> = (0..N)
        .map(|n| match room.join(VisitorId(n)).unwrap() {
            Entry::Waiting(t) => {
                assert_eq!(t.position, n + 1);
                t.token
            }
            Entry::Admitted(_) => panic!("paused room admitted"),
        })
        .collect();
    let joined = started.elapsed();

    // A block of 100 000 in the middle leaves, and every 7th visitor after it too.
    let leaves = |n: u64| (300_000..400_000).contains(&n) || (n >= 400_000 && n.is_multiple_of(7));
    for n in 0..N {
        if leaves(n) {
            room.finish(tokens[n as usize]).unwrap();
        }
    }
    let mut expected = 0;
    for n in 0..N {
        if leaves(n) {
            continue;
        }
        expected += 1;
        if n % 997 == 0 || (299_990..400_010).contains(&n) {
            match room.peek(tokens[n as usize]).unwrap() {
                Entry::Waiting(t) => assert_eq!(t.position, expected, "visitor {n}"),
                Entry::Admitted(_) => panic!("paused room admitted"),
            }
        }
    }
    assert_eq!(room.stats().waiting, expected);
    room.check_invariants().unwrap();

    // Resume: the head is admitted and everyone moves up by one.
    room.resume();
    assert_eq!(room.stats().admitted_total, 1);
    match room.peek(tokens[1]).unwrap() {
        Entry::Waiting(t) => assert_eq!(t.position, 1),
        Entry::Admitted(_) => panic!("only one admission is due"),
    }
    println!("{N} joins in {joined:?}; heap {} bytes", room.heap_bytes());
}

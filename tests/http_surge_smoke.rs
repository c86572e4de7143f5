//! A small launch surge over real HTTP (`examples/http_surge`): 3 000 visitors on loopback
//! through the waiting room, then through a door that rejects whatever is over the rate.
//! Nobody is turned away by the room, nobody fails, nothing is overbooked; the rejecting door
//! turns people away; the gate's CPU cost per request is measured.
#![cfg(all(
    feature = "http",
    feature = "redis",
    feature = "serde",
    feature = "hijri",
    not(loom)
))]

#[path = "../examples/http_surge/client.rs"]
mod client;
#[path = "../examples/http_surge/run.rs"]
mod run;
#[path = "../examples/portal/server/mod.rs"]
#[allow(dead_code)]
mod server;
#[path = "../examples/http_surge/visitor.rs"]
mod visitor;

use std::time::Duration;

#[test]
fn a_small_surge_over_http_keeps_every_rule() {
    let config = run::Config {
        visitors: 3_000,
        arrival_secs: 1.0,
        rate: 600,
        burst: 100,
        max_active: 300,
        max_waiting: 100_000,
        branches: 4,
        days: 3,
        windows: 8,
        capacity: 50,
        patience: 2,
        in_flight: 128,
        seed: 7,
        cpu_requests: 5_000,
        time_limit: Duration::from_secs(120),
    };
    let report = run::run(&config).expect("the surge runs");
    let (room, reject) = (&report.room, &report.reject);
    for door in [room, reject] {
        assert_eq!(door.failed + door.unfinished, 0, "{door:?}");
        assert_eq!(door.overbooked, 0, "{door:?}");
        assert_eq!(door.admitted + door.turned_away, door.visitors, "{door:?}");
        assert_eq!(door.booked + door.no_appointment, door.admitted, "{door:?}");
        assert!(door.door_p99_ms >= door.door_p50_ms && door.door_max_ms >= door.door_p99_ms);
    }
    // Tomorrow onwards: 2 days of 8 windows of 50 at each of 4 branches.
    assert!(room.booked <= 3_200 && room.booked > 2_000, "{room:?}");
    assert_eq!(
        (room.turned_away, room.refusals),
        (0, 0),
        "the room turns nobody away: {room:?}"
    );
    assert!(room.waiting_answers > 0, "{room:?}");
    assert!(reject.turned_away > 0 && reject.refusals > 0, "{reject:?}");
    assert_eq!(reject.waiting_answers, 0, "{reject:?}");
    let cpu = &report.cpu;
    assert!(
        cpu.plain_us > 0.0 && cpu.pass_us > 0.0 && cpu.waiting_us > 0.0,
        "{cpu:?}"
    );
}

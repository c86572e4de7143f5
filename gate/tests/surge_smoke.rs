//! A small launch surge through the gate (`examples/gate_surge`): 2 000 visitors arriving within
//! two seconds at the gate in front of the Python upstream, more of them than `max_active`
//! and than the appointments. Every visitor is served, nobody is turned away, nothing is
//! overbooked, and every booking the book holds is one a visitor made and confirmed.

#![cfg(not(loom))]

#[path = "../examples/gate_surge/client.rs"]
mod client;
#[path = "../examples/gate_surge/procs.rs"]
mod procs;
#[path = "../../tests/support/programs.rs"]
#[allow(dead_code)]
mod programs;
#[path = "../examples/gate_surge/report.rs"]
mod report;
#[path = "../examples/gate_surge/run.rs"]
mod run;
#[path = "../examples/gate_surge/visitor.rs"]
mod visitor;

use std::path::PathBuf;
use std::time::Duration;

#[test]
fn a_small_surge_through_the_gate_serves_everyone_and_never_overbooks() {
    let Some(python) = programs::require("python3", "python3") else {
        return;
    };
    let config = run::Config {
        gate_binary: PathBuf::from(env!("CARGO_BIN_EXE_surgegate-gate")),
        python,
        visitors: 2_000,
        arrival_secs: 2.0,
        rate: 300,
        burst: 50,
        max_active: 100,
        max_waiting: 100_000,
        checkin_timeout_secs: 6,
        branches: 4,
        days: 3,
        windows: 8,
        per_window: 20,
        connections: 500,
        patience: 0,
        seed: 7,
        time_limit: Duration::from_secs(400),
    };
    let report = run::run(&config).expect("the surge runs");
    println!("{}", report.text());
    let j = report.to_json();
    let n = |key: &str| {
        j[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} is not a count in {j}"))
    };
    assert_eq!(j["errors"], serde_json::json!([]), "{j}");
    assert_eq!(n("served"), 2_000, "every visitor served: {j}");
    assert_eq!(
        (
            n("turned_away"),
            n("refusals"),
            n("gate_refusals"),
            n("failed"),
            n("unfinished")
        ),
        (0, 0, 0, 0, 0),
        "{j}"
    );
    // 4 branches × 24 windows × 20 = 1 920 appointments for 2 000 visitors: all of them go.
    assert_eq!(n("capacity"), 1_920, "{j}");
    assert_eq!(n("booked"), 1_920, "{j}");
    assert_eq!(n("no_appointment"), 80, "{j}");
    assert_eq!(n("booked_in_book"), n("booked"), "the book recounted: {j}");
    assert_eq!(
        (
            n("held_in_book"),
            n("overbooked_slots"),
            n("wrong_capacity_slots")
        ),
        (0, 0, 0),
        "{j}"
    );
    // More visitors than passes at once: some waited on the page, and came back as it said.
    assert!(n("waiting_answers") > 0, "{j}");
    let f = |key: &str| j[key].as_f64().unwrap_or(-1.0);
    assert!(
        f("line_p99_ms") >= f("line_p50_ms") && f("line_p50_ms") >= 0.0,
        "{j}"
    );
    assert!(
        f("gated_p99_ms") >= f("gated_p50_ms") && f("gated_p50_ms") > 0.0,
        "{j}"
    );
    assert!(
        f("wall_s") > 0.0 && n("gate_peak_rss_kib") >= n("gate_rss_kib"),
        "{j}"
    );
    assert!(n("gate_rss_kib") > 0, "{j}");
    assert_eq!(j["ok"], true, "{j}");
}

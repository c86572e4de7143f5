//! `cargo run --release --example http_surge`: the launch surge over real HTTP. The example
//! portal runs on loopback; 100 000 virtual visitors arrive within a minute and go through it as
//! browsers would (keep-alive HTTP/1.1, cookies, form tokens, following `Retry-After` and
//! `refresh_seconds`): first through the waiting room, then, with the same arrivals, through a
//! door that answers `429` to whatever is over the same rate. Then the gate's CPU cost per
//! request against a plain axum handler, measured on the server's own threads.
//!
//! Loopback only, bounded in count (`--visitors`) and time (`--time-limit-secs` per door).

mod client;
mod run;
#[path = "../portal/server/mod.rs"]
#[allow(dead_code)]
mod server;
mod visitor;

use std::time::Duration;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "A launch surge over real HTTP: a waiting room against a reject-over-rate door")]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    visitors: u64,
    /// Arrivals spread evenly over this many seconds.
    #[arg(long, default_value_t = 20.0)]
    arrival_secs: f64,
    /// Registrations started per second (both doors).
    #[arg(long, default_value_t = 1_000)]
    rate: u32,
    #[arg(long, default_value_t = 1_000)]
    burst: u32,
    #[arg(long, default_value_t = 5_000)]
    max_active: u32,
    #[arg(long, default_value_t = 1_000_000)]
    max_waiting: u32,
    #[arg(long, default_value_t = 50)]
    branches: u32,
    #[arg(long, default_value_t = 7)]
    days: u32,
    #[arg(long, default_value_t = 8)]
    windows: u32,
    /// Appointments per window.
    #[arg(long, default_value_t = 25)]
    capacity: u32,
    /// Refusals a visitor retries (after `Retry-After`) before giving up.
    #[arg(long, default_value_t = 5)]
    patience: u32,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 512)]
    in_flight: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Requests per kind in the CPU comparison.
    #[arg(long, default_value_t = 50_000)]
    cpu_requests: u64,
    #[arg(long, default_value_t = 600)]
    time_limit_secs: u64,
    /// Also print the report as one JSON object on the last line.
    #[arg(long)]
    json: bool,
}

fn main() -> Result<(), String> {
    let a = Args::parse();
    let config = run::Config {
        visitors: a.visitors,
        arrival_secs: a.arrival_secs,
        rate: a.rate,
        burst: a.burst,
        max_active: a.max_active,
        max_waiting: a.max_waiting,
        branches: a.branches,
        days: a.days,
        windows: a.windows,
        capacity: a.capacity,
        patience: a.patience,
        in_flight: a.in_flight,
        seed: a.seed,
        cpu_requests: a.cpu_requests,
        time_limit: Duration::from_secs(a.time_limit_secs),
    };
    eprintln!(
        "{} visitors over {} s; rate {}/s; {} appointments",
        a.visitors,
        a.arrival_secs,
        a.rate,
        u64::from(a.branches) * u64::from(a.days) * u64::from(a.windows) * u64::from(a.capacity)
    );
    let report = run::run(&config)?;
    print(&report);
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        );
    }
    Ok(())
}

/// A row of the table: its name, and how to show it for one door.
type Row = (&'static str, Box<dyn Fn(&run::DoorReport) -> String>);

fn print(r: &run::Report) {
    let rows: [Row; 13] = [
        ("seconds", Box::new(|d| format!("{:.1}", d.seconds))),
        ("requests", Box::new(|d| d.requests.to_string())),
        (
            "requests/s",
            Box::new(|d| format!("{:.0}", d.requests_per_s)),
        ),
        (
            "door latency p50 / p99 / max (ms)",
            Box::new(|d| {
                format!(
                    "{:.2} / {:.2} / {:.1}",
                    d.door_p50_ms, d.door_p99_ms, d.door_max_ms
                )
            }),
        ),
        (
            "waiting answers",
            Box::new(|d| d.waiting_answers.to_string()),
        ),
        ("refusals (503/429)", Box::new(|d| d.refusals.to_string())),
        ("admitted", Box::new(|d| d.admitted.to_string())),
        ("booked", Box::new(|d| d.booked.to_string())),
        (
            "admitted, no appointment left",
            Box::new(|d| d.no_appointment.to_string()),
        ),
        ("turned away", Box::new(|d| d.turned_away.to_string())),
        ("failed", Box::new(|d| d.failed.to_string())),
        (
            "unfinished at the time limit",
            Box::new(|d| d.unfinished.to_string()),
        ),
        (
            "overbooked (recounted)",
            Box::new(|d| d.overbooked.to_string()),
        ),
    ];
    println!(
        "\n| {} visitors | {} | {} |",
        r.room.visitors, r.room.door, r.reject.door
    );
    println!("|---|---|---|");
    for (name, value) in &rows {
        println!("| {name} | {} | {} |", value(&r.room), value(&r.reject));
    }
    let c = &r.cpu;
    println!(
        "\nServer CPU per request ({} requests each): plain handler {:.1} µs; behind the gate with a pass {:.1} µs ({:.2}×); a waiting visitor's refresh {:.1} µs ({:.2}×)",
        c.requests_per_kind,
        c.plain_us,
        c.pass_us,
        c.pass_us / c.plain_us,
        c.waiting_us,
        c.waiting_us / c.plain_us
    );
}

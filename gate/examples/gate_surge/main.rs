//! `cargo run --release -p surgegate-gate --example gate_surge`: the launch surge through the
//! gate. The tests' Python standard-library upstream runs on a free loopback port, the release
//! `surgegate-gate` in front of it (a temporary `data_dir`, `/register` gated, the tokens in
//! files, a capacity plan of branches × days × windows loaded through `POST /admin/capacity`),
//! and virtual visitors arrive evenly over `--arrival-secs` and go through it as browsers
//! would: keep-alive HTTP/1.1, cookies, the waiting page's refresh and `Retry-After` followed.
//! Once admitted, each loads the upstream's gated form (which names it), holds the earliest
//! slot among three random branches (twice, then among every branch, up to 16) and confirms it
//! through the booking API (as the portal would for it, with an `Idempotency-Key`), and loads
//! the page on which the upstream answers `Surgegate-Command: finish`. A waiting visitor's
//! connection closes while its page waits for the refresh; an admitted one keeps one
//! connection for the rest of its visit. A visitor refused (429/503) more than `--patience`
//! times is turned away; one whose gated page fails (502/504) more than that many times has
//! failed. The room's limits default to what the single-process Python upstream serves on this
//! kind of machine: the gate is there to keep the portal within them.
//!
//! It reports visitors served, turned away, bookings against capacity (recounted slot by slot
//! through the booking API), p50/p99 of time in line and of the gated requests, the wall time
//! and the gate's RSS; `--json` adds one JSON object on the last line. The exit code is 1 when a
//! rule broke: anybody turned away, failed or unfinished, or a slot overbooked.
//!
//! ```text
//! gate_surge [--visitors 100000] [--arrival-secs 60] [--rate 250] [--burst 250]
//!            [--max-active 500] [--max-waiting 1000000] [--checkin-timeout-secs 45]
//!            [--branches 50] [--days 7] [--windows 8] [--per-window 25]
//!            [--connections 2000] [--patience 5] [--seed 42] [--time-limit-secs 1800]
//!            [--gate-binary PATH] [--python PATH] [--json]
//! ```
//!
//! Without `--gate-binary`, it first runs `cargo build --release -p surgegate-gate --bin
//! surgegate-gate` into its own target directory, so that the gate measured is the current one.

mod client;
mod procs;
mod report;
mod run;
mod visitor;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use run::Config;

fn defaults() -> Config {
    Config {
        gate_binary: PathBuf::new(),
        python: PathBuf::from("python3"),
        visitors: 100_000,
        arrival_secs: 60.0,
        rate: 250,
        burst: 250,
        max_active: 500,
        max_waiting: 1_000_000,
        checkin_timeout_secs: 45,
        branches: 50,
        days: 7,
        windows: 8,
        per_window: 25,
        connections: 2_000,
        patience: 5,
        seed: 42,
        time_limit: Duration::from_secs(1_800),
    }
}

fn number<T: std::str::FromStr>(flag: &str, text: String) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag} takes a number, not {text:?}"))
}

/// The flags; `--json` comes back apart.
fn args() -> Result<(Config, bool), String> {
    let mut c = defaults();
    let mut json = false;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--json" {
            json = true;
            continue;
        }
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--visitors" => c.visitors = number(&flag, v)?,
            "--arrival-secs" => c.arrival_secs = number(&flag, v)?,
            "--rate" => c.rate = number(&flag, v)?,
            "--burst" => c.burst = number(&flag, v)?,
            "--max-active" => c.max_active = number(&flag, v)?,
            "--max-waiting" => c.max_waiting = number(&flag, v)?,
            "--checkin-timeout-secs" => c.checkin_timeout_secs = number(&flag, v)?,
            "--branches" => c.branches = number(&flag, v)?,
            "--days" => c.days = number(&flag, v)?,
            "--windows" => c.windows = number(&flag, v)?,
            "--per-window" => c.per_window = number(&flag, v)?,
            "--connections" => c.connections = number(&flag, v)?,
            "--patience" => c.patience = number(&flag, v)?,
            "--seed" => c.seed = number(&flag, v)?,
            "--time-limit-secs" => c.time_limit = Duration::from_secs(number(&flag, v)?),
            "--gate-binary" => c.gate_binary = PathBuf::from(v),
            "--python" => c.python = PathBuf::from(v),
            other => {
                return Err(format!(
                    "unknown argument {other}: see the example's top doc"
                ));
            }
        }
    }
    if c.branches == 0 || c.days == 0 || c.windows == 0 || c.connections == 0 {
        return Err("--branches, --days, --windows and --connections must be at least 1".into());
    }
    // The gate's defaults: branch ids below 16 384, slot indices below 65 536.
    if c.branches >= 16_384 || u64::from(c.days) * u64::from(c.windows) > 65_536 {
        return Err("at most 16 383 --branches and 65 536 --days × --windows".into());
    }
    if !c.arrival_secs.is_finite() || c.arrival_secs < 0.0 {
        return Err("--arrival-secs must be a number of seconds, 0 or more".into());
    }
    Ok((c, json))
}

/// Builds the release gate into this example's target directory; its path.
fn build_gate() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // target/release/examples/gate_surge: the profile's directory is two up.
    let profile = exe
        .parent()
        .and_then(|p| p.parent())
        .ok_or("cannot tell the target directory: give --gate-binary")?;
    let target = profile
        .parent()
        .ok_or("cannot tell the target directory: give --gate-binary")?;
    let mut build = Command::new(env!("CARGO"));
    // `cargo run` gives this process the package's variables; build scripts that watch them
    // (ring's) would see them changed and build again, here and in the next `cargo run`.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        let set_by_run = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|p| name.starts_with(p))
            || name == "CARGO_PRIMARY_PACKAGE"
            || name == "OUT_DIR";
        if set_by_run {
            build.env_remove(name);
        }
    }
    let status = build
        .args([
            "build",
            "--release",
            "-p",
            "surgegate-gate",
            "--bin",
            "surgegate-gate",
        ])
        .arg("--target-dir")
        .arg(target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() {
        return Err("cargo build --release -p surgegate-gate failed (see above)".into());
    }
    Ok(target.join("release").join("surgegate-gate"))
}

fn main() -> ExitCode {
    let outcome = args().and_then(|(mut c, json)| {
        if c.gate_binary.as_os_str().is_empty() {
            c.gate_binary = build_gate()?;
        }
        run::run(&c).map(|r| (r, json))
    });
    match outcome {
        Ok((report, json)) => {
            println!("{}", report.text());
            if json {
                println!("{}", report.to_json());
            }
            if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("gate_surge: {e}");
            ExitCode::from(2)
        }
    }
}

//! `cargo run --release --example surge`: a national e-service opens, a million people arrive in
//! a spike, and surgegate's WaitingRoom and SlotBook take the surge. The same arrivals also go
//! through a "reject when over rate" front door, so the summary shows what each would do.
//!
//! Every default is a flag (`--help`); `--seed` makes a run reproducible (with any `--threads`);
//! `--json` prints the summary as one JSON object on the last line; `--chart surge.svg` draws the
//! line, the admissions, the bookings under each appointment mode (one branch, alternatives,
//! allocation rounds, standby; see `booking.rs`), fast clients' share of them and of the units
//! given back, over simulated time.

mod book_side;
mod booking;
mod calls;
mod chart;
mod counters;
mod modes;
mod sim;

use std::path::PathBuf;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser, Debug)]
#[command(about = "Simulate a launch-day surge through surgegate's WaitingRoom and SlotBook")]
struct Args {
    /// Visitors arriving.
    #[arg(long, default_value_t = 1_000_000)]
    visitors: u64,
    /// Seed of every random draw; the same seed gives the same figures.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Threads calling the library (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Signups per second the registration backend takes.
    #[arg(long, default_value_t = 2_000)]
    rate: u32,
    /// Signups admitted at once after a quiet spell.
    #[arg(long, default_value_t = 2_000)]
    burst: u32,
    /// Registrations in progress at once.
    #[arg(long, default_value_t = 20_000)]
    max_active: u32,
    /// The line's bound.
    #[arg(long, default_value_t = 2_000_000)]
    max_waiting: u32,
    /// Branches.
    #[arg(long, default_value_t = 300)]
    branches: u32,
    /// Days bookable.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Time windows per day.
    #[arg(long, default_value_t = 16)]
    windows: u32,
    /// Smallest per-window capacity a branch can draw.
    #[arg(long, default_value_t = 2)]
    capacity_min: u32,
    /// Largest per-window capacity a branch can draw.
    #[arg(long, default_value_t = 12)]
    capacity_max: u32,
    /// Zipf exponent of branch popularity.
    #[arg(long, default_value_t = 0.8)]
    zipf: f64,
    /// Length of the opening spike, in seconds.
    #[arg(long, default_value_t = 60.0)]
    spike_secs: f64,
    /// Share of visitors arriving in the spike.
    #[arg(long, default_value_t = 0.7)]
    spike_share: f64,
    /// Length of the tail of arrivals after the spike, in seconds.
    #[arg(long, default_value_t = 1800.0)]
    tail_secs: f64,
    /// Shortest registration, in seconds.
    #[arg(long, default_value_t = 3.0)]
    register_min_secs: f64,
    /// Longest registration, in seconds.
    #[arg(long, default_value_t = 12.0)]
    register_max_secs: f64,
    /// How long a pass lasts after admission, in seconds.
    #[arg(long, default_value_t = 600.0)]
    pass_ttl_secs: f64,
    /// How often a waiting visitor's page checks in (or at its ETA, if sooner), in seconds.
    #[arg(long, default_value_t = 15.0)]
    poll_secs: f64,
    /// A waiting visitor silent this long leaves the line, in seconds.
    #[arg(long, default_value_t = 45.0)]
    checkin_timeout_secs: f64,
    /// Share of visitors who give up if their wait runs long.
    #[arg(long, default_value_t = 0.1)]
    give_up_share: f64,
    /// Shortest patience of those, in seconds.
    #[arg(long, default_value_t = 60.0)]
    patience_min_secs: f64,
    /// Longest patience of those, in seconds.
    #[arg(long, default_value_t = 300.0)]
    patience_max_secs: f64,
    /// How long a hold lasts before it must be confirmed, in seconds.
    #[arg(long, default_value_t = 600.0)]
    hold_ttl_secs: f64,
    /// Shortest time between getting a hold and confirming it, in seconds.
    #[arg(long, default_value_t = 5.0)]
    think_min_secs: f64,
    /// Longest time between getting a hold and confirming it, in seconds.
    #[arg(long, default_value_t = 120.0)]
    think_max_secs: f64,
    /// Share of holds confirmed (the rest are abandoned and expire).
    #[arg(long, default_value_t = 0.9)]
    confirm_share: f64,
    /// Share of bookings cancelled later.
    #[arg(long, default_value_t = 0.05)]
    cancel_share: f64,
    /// Shortest time from booking to cancellation, in seconds.
    #[arg(long, default_value_t = 60.0)]
    cancel_after_min_secs: f64,
    /// Longest time from booking to cancellation, in seconds.
    #[arg(long, default_value_t = 1800.0)]
    cancel_after_max_secs: f64,
    /// Simulation step, in milliseconds.
    #[arg(long, default_value_t = 100)]
    tick_ms: u64,
    /// How often the reject front door's refused visitors try again (at most 4).
    #[arg(long, default_value_t = 2)]
    baseline_retries: u32,
    /// Shortest wait before such a retry, in seconds.
    #[arg(long, default_value_t = 30.0)]
    baseline_retry_min_secs: f64,
    /// Longest wait before such a retry, in seconds.
    #[arg(long, default_value_t = 120.0)]
    baseline_retry_max_secs: f64,
    /// Multiplies --visitors, --rate, --burst, --max-active, --max-waiting and --branches
    /// together, so that runs of different sizes do the same work per visitor and their costs
    /// (library calls per second) compare: `--scale 10` is ten million visitors.
    #[arg(long, default_value_t = 1)]
    scale: u32,
    /// Branches b with the same b / city-size form a city; a visitor accepts its own branch and
    /// others of its city.
    #[arg(long, default_value_t = 5)]
    city_size: u32,
    /// Most branches a visitor accepts (1 to 4; each visitor draws 1 to this many).
    #[arg(long, default_value_t = 4)]
    max_alternatives: u32,
    /// Share of visitors who are fast clients (bots): at the door from the opening, checking in
    /// and retrying every --fast-retry-ms.
    #[arg(long, default_value_t = 0.01)]
    fast_share: f64,
    /// How often a fast client checks in and retries, in milliseconds.
    #[arg(long, default_value_t = 100)]
    fast_retry_ms: u64,
    /// How long a fast client that found no appointment keeps retrying, in seconds.
    #[arg(long, default_value_t = 900.0)]
    fast_retry_secs: f64,
    /// Registrations done in this many first seconds go to the allocation round (round mode).
    #[arg(long, default_value_t = 3600.0)]
    round_secs: f64,
    /// Standby mode: how often a human on standby looks for an offer, in seconds.
    #[arg(long, default_value_t = 120.0)]
    standby_check_secs: f64,
    /// Standby mode: how long a standby request waits before its applicant gives up, in seconds.
    #[arg(long, default_value_t = 3600.0)]
    standby_secs: f64,
    /// Share of each window kept for the counters (a channel quota the web cannot take).
    #[arg(long, default_value_t = 0.2)]
    counter_share: f64,
    /// Seconds before a window starts when the counters' unused quota opens to everyone (day d's
    /// windows start (d + 1) days after the opening, an hour apart).
    #[arg(long, default_value_t = 86_400.0)]
    counter_open_secs: f64,
    /// The appointment modes to run side by side, comma-separated: one (a visitor's own branch),
    /// alternatives (any of its acceptable branches), round (allocation rounds for the first
    /// --round-secs), standby (alternatives, then the standby line). Fewer modes make a faster
    /// run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "one,alternatives,round,standby"
    )]
    modes: Vec<String>,
    /// The room's claim timeout in seconds (0: off): an admitted visitor's first request claims
    /// its pass, and one who gave up never does. When on, the same arrivals also go through a
    /// room without claims, shown beside it.
    #[arg(long, default_value_t = 30.0)]
    claim_timeout_secs: f64,
    /// Print the summary as one JSON object on the last line.
    #[arg(long)]
    json: bool,
    /// Write an SVG chart of the run to this file.
    #[arg(long)]
    chart: Option<PathBuf>,
}

impl Args {
    fn config(&self) -> Result<sim::Config, String> {
        let n = self.scale;
        let scaled = |name: &str, v: u32| {
            v.checked_mul(n)
                .ok_or_else(|| format!("--scale {n} makes {name} too large"))
        };
        let mut c = sim::Config {
            visitors: self
                .visitors
                .checked_mul(u64::from(n))
                .ok_or_else(|| format!("--scale {n} makes --visitors too large"))?,
            seed: self.seed,
            rate_per_second: scaled("--rate", self.rate)?,
            burst: scaled("--burst", self.burst)?,
            max_active: scaled("--max-active", self.max_active)?,
            max_waiting: scaled("--max-waiting", self.max_waiting)?,
            branches: scaled("--branches", self.branches)?,
            days: self.days,
            windows_per_day: self.windows,
            capacity_min: self.capacity_min,
            capacity_max: self.capacity_max,
            zipf_exponent: self.zipf,
            spike_secs: self.spike_secs,
            spike_share: self.spike_share,
            tail_secs: self.tail_secs,
            register_secs: (self.register_min_secs, self.register_max_secs),
            pass_ttl_secs: self.pass_ttl_secs,
            poll_every_secs: self.poll_secs,
            checkin_timeout_secs: self.checkin_timeout_secs,
            give_up_share: self.give_up_share,
            patience_secs: (self.patience_min_secs, self.patience_max_secs),
            hold_ttl_secs: self.hold_ttl_secs,
            think_secs: (self.think_min_secs, self.think_max_secs),
            confirm_share: self.confirm_share,
            cancel_share: self.cancel_share,
            cancel_after_secs: (self.cancel_after_min_secs, self.cancel_after_max_secs),
            tick_ms: self.tick_ms,
            baseline_retries: self.baseline_retries,
            baseline_retry_secs: (self.baseline_retry_min_secs, self.baseline_retry_max_secs),
            city_size: self.city_size,
            max_alternatives: self.max_alternatives,
            fast_share: self.fast_share,
            fast_retry_ms: self.fast_retry_ms,
            fast_retry_secs: self.fast_retry_secs,
            round_secs: self.round_secs,
            standby_check_secs: self.standby_check_secs,
            standby_secs: self.standby_secs,
            counter_share: self.counter_share,
            counter_open_secs: self.counter_open_secs,
            claim_timeout_secs: self.claim_timeout_secs,
            modes: self
                .modes
                .iter()
                .map(|w| {
                    booking::Mode::parse(w).ok_or_else(|| {
                        format!(
                            "--modes: unknown mode {w:?} (use one, alternatives, round, standby)"
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            ..sim::Config::default()
        };
        if let Some(t) = self.threads {
            c.threads = t;
        }
        validate(&c)?;
        Ok(c)
    }
}

/// Every setting in range, and the ones that depend on each other consistent.
fn validate(c: &sim::Config) -> Result<(), String> {
    let positive = [
        ("--visitors", c.visitors as f64),
        ("--threads", c.threads as f64),
        ("--rate", f64::from(c.rate_per_second)),
        ("--burst", f64::from(c.burst)),
        ("--max-active", f64::from(c.max_active)),
        ("--max-waiting", f64::from(c.max_waiting)),
        ("--branches", f64::from(c.branches)),
        ("--days", f64::from(c.days)),
        ("--windows", f64::from(c.windows_per_day)),
        ("--spike-secs", c.spike_secs),
        ("--poll-secs", c.poll_every_secs),
        ("--checkin-timeout-secs", c.checkin_timeout_secs),
        ("--hold-ttl-secs", c.hold_ttl_secs),
        ("--pass-ttl-secs", c.pass_ttl_secs),
        ("--tick-ms", c.tick_ms as f64),
        ("--city-size", f64::from(c.city_size)),
        ("--max-alternatives", f64::from(c.max_alternatives)),
        ("--fast-retry-ms", c.fast_retry_ms as f64),
        ("--round-secs", c.round_secs),
        ("--standby-check-secs", c.standby_check_secs),
        ("--standby-secs", c.standby_secs),
    ];
    for (name, value) in positive {
        if value.is_nan() || value <= 0.0 {
            return Err(format!("{name} must be positive"));
        }
    }
    let limits = [
        ("--rate", u64::from(c.rate_per_second), 10_000_000),
        ("--burst", u64::from(c.burst), 10_000_000),
        ("--max-waiting", u64::from(c.max_waiting), 1 << 30),
        ("--branches", u64::from(c.branches), 1 << 20),
        ("--max-alternatives", u64::from(c.max_alternatives), 4),
        ("--fast-retry-ms", c.fast_retry_ms, 60_000),
    ];
    for (name, value, max) in limits {
        if value > max {
            return Err(format!("{name} (after --scale) must be at most {max}"));
        }
    }
    if c.claim_timeout_secs.is_nan()
        || c.claim_timeout_secs < 0.0
        || (c.claim_timeout_secs > 0.0 && c.claim_timeout_secs < 0.001)
        || c.claim_timeout_secs > c.pass_ttl_secs
    {
        return Err(
            "--claim-timeout-secs must be 0 (off) or between 0.001 and --pass-ttl-secs".into(),
        );
    }
    if c.modes.is_empty() {
        return Err("--modes needs at least one mode".into());
    }
    if c.capacity_min > c.capacity_max {
        return Err("--capacity-min must not exceed --capacity-max".into());
    }
    if c.poll_every_secs >= c.checkin_timeout_secs {
        return Err(
            "--poll-secs must be below --checkin-timeout-secs, or every visitor lapses".into(),
        );
    }
    if c.pass_ttl_secs <= c.register_secs.1 {
        return Err("--pass-ttl-secs must exceed the longest registration".into());
    }
    if c.think_secs.1 >= c.hold_ttl_secs {
        return Err("--hold-ttl-secs must exceed --think-max-secs".into());
    }
    if !(0.0..=86_400.0).contains(&c.fast_retry_secs)
        || c.round_secs > 86_400.0
        || c.standby_secs > 86_400.0
    {
        return Err(
            "--fast-retry-secs, --round-secs and --standby-secs must be at most a day".into(),
        );
    }
    if !(0.0..=365.0 * 86_400.0).contains(&c.counter_open_secs) {
        return Err("--counter-open-secs must be between 0 and a year".into());
    }
    if c.standby_check_secs > c.standby_secs {
        return Err("--standby-check-secs must not exceed --standby-secs".into());
    }
    if c.baseline_retries > 4 {
        return Err("--baseline-retries must be at most 4".into());
    }
    for (name, share) in [
        ("--spike-share", c.spike_share),
        ("--give-up-share", c.give_up_share),
        ("--confirm-share", c.confirm_share),
        ("--cancel-share", c.cancel_share),
        ("--fast-share", c.fast_share),
        ("--counter-share", c.counter_share),
    ] {
        if !(0.0..=1.0).contains(&share) {
            return Err(format!("{name} must be between 0 and 1"));
        }
    }
    let ranges = [
        c.register_secs,
        c.patience_secs,
        c.think_secs,
        c.cancel_after_secs,
        c.baseline_retry_secs,
    ];
    if ranges
        .iter()
        .any(|&(lo, hi)| lo.is_nan() || hi.is_nan() || lo < 0.0 || lo > hi)
    {
        return Err("each --...-min must not exceed its --...-max".into());
    }
    Ok(())
}

fn main() {
    let args = Args::parse();
    let cfg = match args.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let bar = ProgressBar::new(cfg.visitors);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len} arrived")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message(format!("surge of {} visitors", cfg.visitors));
    let report = sim::run(&cfg, |arrived, _| bar.set_position(arrived));
    bar.finish_and_clear();

    print_table(&cfg, &report);
    if let Some(path) = &args.chart {
        match chart::draw(path, &report) {
            Ok(()) => println!("chart written to {}", path.display()),
            Err(e) => {
                eprintln!("error: could not write the chart: {e}");
                std::process::exit(1);
            }
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).expect("a report serialises")
        );
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn print_table(cfg: &sim::Config, r: &sim::Report) {
    println!(
        "\nLaunch surge: {} visitors, backend {} signups/s (burst {}), at most {} in progress; \
         {} branches x {} days x {} windows; seed {}, {} threads\n",
        thousands(r.visitors),
        cfg.rate_per_second,
        cfg.burst,
        thousands(u64::from(cfg.max_active)),
        cfg.branches,
        cfg.days,
        cfg.windows_per_day,
        r.seed,
        r.threads
    );
    print_rooms(r);
    println!();
    print_modes(r);
    println!();
    println!("{:<34} {:>16}", "library calls", thousands(r.library_calls));
    println!(
        "{:<34} {:>16}",
        "wall time / simulated time",
        format!("{:.1} s / {:.0} s", r.wall_secs, r.simulated_secs)
    );
    println!(
        "{:<34} {:>16}",
        "library calls per second (wall)",
        thousands(r.calls_per_sec as u64)
    );
}

/// The line: the waiting room (with claims, if on), the same without claims, and the reject
/// front door, side by side.
fn print_rooms(r: &sim::Report) {
    let pct = |n: u64| {
        format!(
            "{} ({:.1}%)",
            thousands(n),
            100.0 * n as f64 / r.visitors.max(1) as f64
        )
    };
    let row = |label: &str, ours: String, without: String, reject: String| {
        println!("{label:<34} {ours:>16} {without:>16} {reject:>18}");
    };
    // One figure of both rooms (the one without claims shows "-" when the run has none).
    let rooms = |label: &str, cell: &dyn Fn(&sim::RoomFigures) -> String, reject: String| {
        let without = r.without_claims.as_ref().map_or("-".to_string(), cell);
        row(label, cell(&r.room), without, reject);
    };
    let ours = if r.claim_timeout_secs > 0.0 {
        format!("claims {:.0} s", r.claim_timeout_secs)
    } else {
        "waiting room".to_string()
    };
    row("", ours, "no claims".into(), "reject front door".into());
    let v = thousands(r.visitors);
    rooms("visitors", &|_| v.clone(), v.clone());
    rooms(
        "admitted to register",
        &|f| thousands(f.admitted),
        thousands(r.reject_baseline_admitted),
    );
    rooms(
        "turned away",
        &|f| pct(f.rejected),
        pct(r.reject_baseline_rejected),
    );
    rooms(
        "  refusals, retries included",
        &|f| thousands(f.rejected),
        thousands(r.reject_baseline_refusals),
    );
    rooms(
        "gave up while waiting",
        &|f| thousands(f.gave_up),
        "-".into(),
    );
    rooms(
        "  admitted after giving up (unused)",
        &|f| thousands(f.unused_passes),
        "-".into(),
    );
    rooms("peak line length", &|f| thousands(f.peak_line), "-".into());
    let pair = |a: f64, b: f64| format!("{a:.1} / {b:.1}");
    rooms(
        "wait p50 / p99 (s)",
        &|f| pair(f.wait_p50_s, f.wait_p99_s),
        pair(r.reject_baseline_wait_p50_s, r.reject_baseline_wait_p99_s),
    );
    rooms(
        "wait p95 / max (s)",
        &|f| pair(f.wait_p95_s, f.wait_max_s),
        "-".into(),
    );
    rooms(
        "line empty after (s)",
        &|f| format!("{:.0}", f.line_empty_secs),
        "-".into(),
    );
    rooms(
        "slowest second of the drain",
        &|f| format!("{}/s", f.slowest_drain_admissions_per_sec),
        "-".into(),
    );
}

/// The appointment step under each mode, side by side.
fn print_modes(r: &sim::Report) {
    let pct = |n: u64, of: u64| format!("{:.1}%", 100.0 * n as f64 / of.max(1) as f64);
    let row = |label: &str, cell: &dyn Fn(&booking::ModeReport) -> String| {
        let shown = |m: &booking::ModeReport| if m.ran { cell(m) } else { "-".into() };
        let [a, b, c, d] = &r.modes;
        println!(
            "{label:<34} {:>16} {:>14} {:>14} {:>14}",
            shown(a),
            shown(b),
            shown(c),
            shown(d)
        );
    };
    println!(
        "{:<34} {:>16}",
        "appointments offered (each mode)",
        thousands(r.appointments_offered)
    );
    println!(
        "{:<34} {:>16}",
        "  kept for counters at the end",
        thousands(r.counters_kept)
    );
    println!(
        "{:<34} {:>16}",
        "  counters' part opened to all",
        thousands(r.counters_opened)
    );
    println!(
        "{:<34} {:>16}",
        "applicants (registered)",
        thousands(r.registered)
    );
    println!(
        "{:<34} {:>16} {:>14} {:>14} {:>14}",
        "", "one branch", "alternatives", "round", "standby"
    );
    row("bookings (after cancellations)", &|m| thousands(m.bookings));
    row("applicants with nothing", &|m| thousands(m.no_slot));
    row("capacity unused (counters' too)", &|m| {
        pct(m.unused_capacity, r.appointments_offered)
    });
    row("holds expired (abandoned)", &|m| thousands(m.holds_expired));
    row("cancelled", &|m| thousands(m.cancelled));
    row("overbooked slots (recounted)", &|m| thousands(m.overbooked));
    row("fast clients' share of bookings", &|m| {
        pct(m.fast_bookings, m.bookings)
    });
    row("units given back", &|m| thousands(m.given_back));
    row("  of those, taken again", &|m| {
        thousands(m.given_back_taken)
    });
    row("  fast clients' share of takers", &|m| {
        pct(m.fast_given_back, m.given_back_taken)
    });
    println!(
        "{:<34} {:>16}",
        "  their share of applicants",
        format!(
            "{} ({})",
            pct(r.fast_registered, r.registered),
            thousands(r.fast_registered)
        )
    );
}

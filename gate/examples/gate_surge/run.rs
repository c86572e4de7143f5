//! One surge: the Python upstream and the gate in front of it, a capacity plan loaded through
//! the admin API, the visitors arriving evenly over the arrival time, then every slot recounted
//! through the booking API (`capacity = remaining + held + booked`, remaining never below 0)
//! and the gate's memory read.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::client::{Ask, Browser, Site};
use super::procs::{GateSetup, Proc, Secrets};
use super::report::{Report, quantile_ms};
use super::visitor::{self, Outcome, Shared, Tally};

/// A surge's shape.
#[derive(Clone, Debug)]
pub struct Config {
    /// The `surgegate-gate` binary to run.
    pub gate_binary: PathBuf,
    pub python: PathBuf,
    pub visitors: u64,
    pub arrival_secs: f64,
    pub rate: u32,
    pub burst: u32,
    pub max_active: u32,
    pub max_waiting: u32,
    pub checkin_timeout_secs: u64,
    /// Branches `1..=branches`, each with `days × windows` slots of `per_window` appointments.
    pub branches: u32,
    pub days: u32,
    pub windows: u32,
    pub per_window: u32,
    /// Connections all visitors hold at once.
    pub connections: usize,
    pub patience: u32,
    pub seed: u64,
    pub time_limit: Duration,
}

impl Config {
    fn slots(&self) -> u32 {
        self.days * self.windows
    }

    /// The plan as the admin API takes it: `branch,slot,capacity` lines.
    fn plan_csv(&self) -> String {
        let mut csv = String::from("branch,slot,capacity\n");
        for branch in 1..=self.branches {
            for slot in 0..self.slots() {
                csv.push_str(&format!("{branch},{slot},{}\n", self.per_window));
            }
        }
        csv
    }
}

/// Runs the surge.
///
/// # Errors
/// A program that does not start, a plan the gate refuses, or a recount the booking API does
/// not answer; the message says which. A rule broken during the surge is not an error: the
/// report says so ([`Report::ok`]).
pub fn run(c: &Config) -> Result<Report, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
    let upstream = Proc::upstream(&c.python)?;
    let keys = Secrets::random();
    let setup = GateSetup {
        upstream: &upstream.addr,
        rate: c.rate,
        burst: c.burst,
        max_active: c.max_active,
        max_waiting: c.max_waiting,
        checkin_timeout_secs: c.checkin_timeout_secs,
    };
    let gate = Proc::gate(&c.gate_binary, dir.path(), &keys, &setup)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let result = runtime.block_on(surge(c, &gate, &keys));
    result.map_err(|e| format!("{e}\nthe gate's last words:\n{}", gate.log_tail()))
}

async fn surge(c: &Config, gate: &Proc, keys: &Secrets) -> Result<Report, String> {
    let site = |connections| {
        Arc::new(Site {
            addr: gate.addr.clone(),
            connections: Arc::new(Semaphore::new(connections)),
        })
    };
    let mut operator = Browser::new(site(1));
    let admin = format!("Bearer {}", keys.admin);
    let plan = operator
        .send(Ask {
            method: "POST",
            path: "/admin/capacity",
            headers: &[("authorization", &admin), ("content-type", "text/csv")],
            body: c.plan_csv(),
        })
        .await?;
    if plan.status != 200 {
        return Err(format!(
            "the plan was refused: {} {}",
            plan.status, plan.body
        ));
    }
    let shared = Arc::new(Shared {
        site: site(c.connections),
        service_auth: format!("Bearer {}", keys.service),
        branches: c.branches,
        slots: c.slots(),
        patience: c.patience,
        seed: c.seed,
        tally: Tally::default(),
    });
    let started = Instant::now();
    let outcomes = arrive(c, &shared, started).await;
    let wall_s = started.elapsed().as_secs_f64();
    let (gate_rss_kib, gate_peak_rss_kib) = gate.rss_kib();
    let mut report = tally_report(c, &shared.tally, &outcomes);
    report.wall_s = wall_s;
    report.gate_rss_kib = gate_rss_kib;
    report.gate_peak_rss_kib = gate_peak_rss_kib;
    recount(c, &mut operator, &shared.service_auth, &mut report).await?;
    room_stats(&mut operator, &admin, &mut report).await?;
    Ok(report)
}

/// What the gate itself counted: visitors dropped from the line, refusals of any kind.
async fn room_stats(b: &mut Browser, admin: &str, r: &mut Report) -> Result<(), String> {
    let reply = b
        .send(Ask {
            method: "GET",
            path: "/admin/stats",
            headers: &[("authorization", admin)],
            body: String::new(),
        })
        .await?;
    let stats = reply.json();
    let n = |v: &serde_json::Value| v.as_u64();
    let gate = &stats["gate"];
    let refusals = ["full", "closed", "limited", "unavailable"]
        .iter()
        .map(|k| n(&gate[*k]))
        .sum::<Option<u64>>();
    match (n(&stats["room"]["dropped_total"]), refusals) {
        (Some(dropped), Some(refusals)) => {
            r.dropped_from_line = dropped;
            r.gate_refusals = refusals;
            Ok(())
        }
        _ => Err(format!("/admin/stats: {} {}", reply.status, reply.body)),
    }
}

/// Every visitor arriving at its time (evenly over the arrival time), each to the end of its
/// visit or the time limit: how each ended, `None` for unfinished.
async fn arrive(c: &Config, shared: &Arc<Shared>, started: Instant) -> Vec<Option<Outcome>> {
    let spread = Duration::from_secs_f64(c.arrival_secs.max(0.0));
    let tasks: Vec<_> = (0..c.visitors)
        .map(|i| {
            let shared = shared.clone();
            let at = started + spread.mul_f64(i as f64 / c.visitors.max(1) as f64);
            tokio::spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                visitor::visit(shared, i, at).await
            })
        })
        .collect();
    let deadline = tokio::time::Instant::from(started + c.time_limit);
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        let abort = task.abort_handle();
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(outcome)) => outcomes.push(Some(outcome)),
            Ok(Err(_)) => outcomes.push(Some(Outcome::Failed)),
            Err(_) => {
                abort.abort();
                outcomes.push(None);
            }
        }
    }
    outcomes
}

fn tally_report(c: &Config, t: &Tally, outcomes: &[Option<Outcome>]) -> Report {
    let count = |o: Option<Outcome>| outcomes.iter().filter(|x| **x == o).count() as u64;
    let no_appointment = count(Some(Outcome::NoAppointment));
    let mut line = t.line_us.lock();
    let mut gated = t.gated_us.lock();
    Report {
        visitors: c.visitors,
        served: count(Some(Outcome::Booked)) + no_appointment,
        booked: t.confirmed.load(Ordering::Relaxed),
        no_appointment,
        turned_away: count(Some(Outcome::TurnedAway)),
        failed: count(Some(Outcome::Failed)),
        unfinished: count(None),
        requests: t.requests.load(Ordering::Relaxed),
        waiting_answers: t.waiting_answers.load(Ordering::Relaxed),
        refusals: t.refusals.load(Ordering::Relaxed),
        upstream_errors: t.upstream_errors.load(Ordering::Relaxed),
        capacity: u64::from(c.branches) * u64::from(c.slots()) * u64::from(c.per_window),
        line_p50_ms: quantile_ms(&mut line, 0.5),
        line_p99_ms: quantile_ms(&mut line, 0.99),
        gated_p50_ms: quantile_ms(&mut gated, 0.5),
        gated_p99_ms: quantile_ms(&mut gated, 0.99),
        errors: t.errors.lock().clone(),
        ..Report::default()
    }
}

/// Every slot of the plan as the booking API tells it after the surge: booked and held
/// summed, a slot counted overbooked when held + booked exceeds its capacity, and one whose
/// capacity is not the plan's (or that is missing) counted wrong.
async fn recount(c: &Config, b: &mut Browser, auth: &str, r: &mut Report) -> Result<(), String> {
    for branch in 1..=c.branches {
        let path = format!("/v1/branches/{branch}/availability?from=0&to={}", c.slots());
        let reply = b
            .send(Ask {
                method: "GET",
                path: &path,
                headers: &[("authorization", auth)],
                body: String::new(),
            })
            .await?;
        let serde_json::Value::Array(slots) = reply.json() else {
            return Err(format!("{path}: {} {}", reply.status, reply.body));
        };
        let listed = slots.len() as u64;
        r.wrong_capacity_slots += u64::from(c.slots()).saturating_sub(listed);
        for s in &slots {
            let n = |k: &str| s[k].as_u64().unwrap_or(u64::MAX);
            let (capacity, held, booked) = (n("capacity"), n("held"), n("booked"));
            r.booked_in_book = r.booked_in_book.saturating_add(booked);
            r.held_in_book = r.held_in_book.saturating_add(held);
            if held.saturating_add(booked) > capacity {
                r.overbooked_slots += 1;
            }
            if capacity != u64::from(c.per_window) {
                r.wrong_capacity_slots += 1;
            }
        }
    }
    Ok(())
}

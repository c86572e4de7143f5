//! The HTTP surge: the example portal on loopback, the same arrivals through two front doors
//! (the waiting room, and a door that rejects whatever is over the rate), then the gate's CPU
//! cost per request against a plain handler, all in one run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use governor::{DefaultDirectRateLimiter, Quota};
use http::Method;
use surgegate::http::WaitingRoomLayer;
use surgegate::pass::{KeyId, Keyring};
use surgegate::{BranchId, SlotIndex, WaitingRoom};

use super::client::{Http, Jar};
use super::server::{self, AdminToken, LocalState, Settings, State};
use super::visitor::{self, Outcome, Tally};

/// A run's settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub visitors: u64,
    /// Arrivals are spread evenly over this many seconds.
    pub arrival_secs: f64,
    pub rate: u32,
    pub burst: u32,
    pub max_active: u32,
    pub max_waiting: u32,
    pub branches: u32,
    pub days: u32,
    pub windows: u32,
    pub capacity: u32,
    /// Refusals a visitor retries before giving up.
    pub patience: u32,
    /// Requests in flight at once (over as many keep-alive connections).
    pub in_flight: usize,
    pub seed: u64,
    /// Requests per kind in the CPU comparison.
    pub cpu_requests: u64,
    /// A door's phase ends after this long, finished or not.
    pub time_limit: Duration,
}

/// What one door did with the arrivals.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct DoorReport {
    pub door: String,
    pub visitors: u64,
    pub seconds: f64,
    pub requests: u64,
    pub requests_per_s: f64,
    pub door_p50_ms: f64,
    pub door_p99_ms: f64,
    pub door_max_ms: f64,
    pub waiting_answers: u64,
    pub refusals: u64,
    pub admitted: u64,
    pub booked: u64,
    pub no_appointment: u64,
    pub turned_away: u64,
    pub failed: u64,
    pub unfinished: u64,
    pub overbooked: u64,
}

/// The server's CPU time per request, in microseconds.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CpuReport {
    pub requests_per_kind: u64,
    pub plain_us: f64,
    pub pass_us: f64,
    pub waiting_us: f64,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    pub room: DoorReport,
    pub reject: DoorReport,
    pub cpu: CpuReport,
}

const SERVER_THREAD: &str = "sg-server";

/// The run: builds a server runtime (threads named `sg-server`, whose CPU time is measured)
/// and a client runtime, and runs the phases one after the other.
pub fn run(config: &Config) -> Result<Report, String> {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(SERVER_THREAD)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sg-client")
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let room = door(
        &server_rt,
        &client_rt,
        config,
        &dir.path().join("room"),
        false,
    )?;
    let reject = door(
        &server_rt,
        &client_rt,
        config,
        &dir.path().join("reject"),
        true,
    )?;
    let cpu = cpu_costs(&server_rt, &client_rt, config)?;
    Ok(Report { room, reject, cpu })
}

fn settings(config: &Config, dir: &std::path::Path, reject: bool) -> Settings {
    // Behind the reject door the room admits whatever the door lets in.
    let (rate, burst, max_active) = if reject {
        (10_000_000, 10_000_000, u32::MAX)
    } else {
        (config.rate, config.burst, config.max_active)
    };
    Settings {
        rate_per_second: rate,
        burst,
        max_active,
        max_waiting: config.max_waiting,
        checkin_timeout: Duration::from_secs(45),
        pass_ttl: Duration::from_secs(900),
        claim_timeout: Duration::from_secs(30),
        hold_ttl: Duration::from_secs(300),
        data_dir: dir.to_path_buf(),
        admin_token: surgegate_portal_admin_token(),
        branches: config.branches,
        days: config.days,
        windows_per_day: config.windows,
        default_capacity: config.capacity,
        new_visitors_per_minute: 0,
        trusted_proxies: Vec::new(),
        https: false,
        secret: vec![7; 32],
        key_id: 1,
        metrics_token: None,
    }
}

/// The surge never calls `/admin/…`: a long random token nobody knows.
fn surgegate_portal_admin_token() -> AdminToken {
    let text = format!("{:032x}", rand::random::<u128>());
    AdminToken::new(text).expect("32 hex digits make a valid token")
}

/// Serves `app` on a loopback port from the server runtime.
fn serve(server_rt: &tokio::runtime::Runtime, app: Router) -> Result<SocketAddr, String> {
    let listener = server_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    server_rt.spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// Answers `429 Too Many Requests` to arrivals (the gated page without a pass) over the rate.
async fn reject_over_rate(
    limiter: Arc<DefaultDirectRateLimiter>,
    request: Request,
    next: Next,
) -> Response {
    let arriving = request.method() == Method::GET
        && request.uri().path() == "/register"
        && !request
            .headers()
            .get(header::COOKIE)
            .and_then(|c| c.to_str().ok())
            .is_some_and(|c| c.contains("sg_pass="));
    if arriving && let Err(not_until) = limiter.check() {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ));
        let retry_s = wait.as_secs() + 1;
        let body = format!("{{\"status\":\"limited\",\"retry_after_seconds\":{retry_s}}}");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_s.to_string())],
            body,
        )
            .into_response();
    }
    next.run(request).await
}

/// One door's phase: the portal behind it, every visitor's visit, and the recount.
fn door(
    server_rt: &tokio::runtime::Runtime,
    client_rt: &tokio::runtime::Runtime,
    config: &Config,
    dir: &std::path::Path,
    reject: bool,
) -> Result<DoorReport, String> {
    let state = State::open(settings(config, dir, reject))?;
    let mut app = server::router(state.clone());
    if reject {
        let quota = Quota::per_second(std::num::NonZeroU32::new(config.rate).ok_or("rate 0")?)
            .allow_burst(std::num::NonZeroU32::new(config.burst).ok_or("burst 0")?);
        let limiter = Arc::new(governor::RateLimiter::direct(quota));
        app = app.layer(middleware::from_fn(move |r, n| {
            reject_over_rate(limiter.clone(), r, n)
        }));
    }
    let addr = serve(server_rt, app)?;
    let http = Http::new(&format!("http://{addr}"), config.in_flight);
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let outcomes = client_rt.block_on(visits(&http, &tally, config));
    let seconds = started.elapsed().as_secs_f64();
    let mut report = summarize(&outcomes, &tally, config, seconds);
    report.door = if reject {
        "reject over rate (429)"
    } else {
        "waiting room"
    }
    .into();
    report.overbooked = overbooked(&state, &outcomes)?;
    Ok(report)
}

/// Every visitor, each starting at its arrival time; `None` for those unfinished at the limit.
async fn visits(http: &Http, tally: &Arc<Tally>, config: &Config) -> Vec<Option<Outcome>> {
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(config.visitors as usize);
    for i in 0..config.visitors {
        let at = start
            + Duration::from_secs_f64(config.arrival_secs * i as f64 / config.visitors as f64);
        let (http, tally, c) = (http.clone(), tally.clone(), config.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            visitor::visit(&http, &tally, i, c.seed, c.branches, c.patience).await
        }));
    }
    let deadline = start + config.time_limit;
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        let outcome = tokio::time::timeout_at(deadline, task)
            .await
            .ok()
            .and_then(Result::ok);
        outcomes.push(outcome);
    }
    outcomes
}

fn summarize(
    outcomes: &[Option<Outcome>],
    tally: &Tally,
    config: &Config,
    seconds: f64,
) -> DoorReport {
    let count =
        |f: &dyn Fn(&Option<Outcome>) -> bool| outcomes.iter().filter(|o| f(o)).count() as u64;
    let mut door_us = std::mem::take(&mut *tally.door_us.lock());
    door_us.sort_unstable();
    let pct = |p: f64| {
        door_us
            .get(((door_us.len() as f64 - 1.0) * p) as usize)
            .map_or(0.0, |&us| f64::from(us) / 1000.0)
    };
    let requests = tally.requests.load(Ordering::Relaxed);
    let booked = count(&|o| matches!(o, Some(Outcome::Booked(_))));
    let no_appointment = count(&|o| matches!(o, Some(Outcome::NoAppointment)));
    DoorReport {
        door: String::new(),
        visitors: config.visitors,
        seconds,
        requests,
        requests_per_s: requests as f64 / seconds,
        door_p50_ms: pct(0.50),
        door_p99_ms: pct(0.99),
        door_max_ms: door_us.last().map_or(0.0, |&us| f64::from(us) / 1000.0),
        waiting_answers: tally.waiting_answers.load(Ordering::Relaxed),
        refusals: tally.refusals.load(Ordering::Relaxed),
        admitted: booked + no_appointment,
        booked,
        no_appointment,
        turned_away: count(&|o| matches!(o, Some(Outcome::TurnedAway))),
        failed: count(&|o| matches!(o, Some(Outcome::Failed))),
        unfinished: count(&|o| o.is_none()),
        overbooked: 0,
    }
}

fn book_of(state: &LocalState) -> &surgegate::SlotBook {
    &state.book
}

/// Units booked beyond capacity, recounted from the bookings the visitors were given (and the
/// book's own invariant check, which must pass).
fn overbooked(state: &LocalState, outcomes: &[Option<Outcome>]) -> Result<u64, String> {
    book_of(state)
        .check_invariants()
        .map_err(|e| format!("book invariant broken: {e}"))?;
    let mut per_slot: std::collections::HashMap<(BranchId, SlotIndex), u64> = Default::default();
    for outcome in outcomes {
        if let Some(Outcome::Booked(token)) = outcome {
            let booking = book_of(state)
                .booking(*token)
                .ok_or("a confirmed booking is missing")?;
            *per_slot.entry((booking.branch, booking.slot)).or_default() += 1;
        }
    }
    let over = per_slot.iter().map(|(&(branch, slot), &n)| {
        let capacity = book_of(state)
            .slot(branch, slot)
            .map_or(0, |s| u64::from(s.capacity));
        n.saturating_sub(capacity)
    });
    Ok(over.sum())
}

/// CPU time (user + system) of the server's threads so far, in microseconds (Linux: the
/// threads' `/proc` counters, in ticks of 10 ms).
fn server_cpu_us() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    let mut ticks = 0;
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with(SERVER_THREAD) {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        ticks += field(11) + field(12);
    }
    ticks * 10_000
}

/// The server's CPU time per request for a plain handler, the same handler behind the gate with
/// a live pass, and the gate's answer to a waiting visitor's refresh.
fn cpu_costs(
    server_rt: &tokio::runtime::Runtime,
    client_rt: &tokio::runtime::Runtime,
    config: &Config,
) -> Result<CpuReport, String> {
    let room = Arc::new(
        WaitingRoom::builder()
            .rate_per_second(10_000_000)
            .burst(10_000_000)
            .build(),
    );
    let keys = Keyring::new(KeyId(1), &[9; 32]).map_err(|e| e.to_string())?;
    let gated = Router::new()
        .route("/gated", get(|| async { "ok" }))
        .layer(WaitingRoomLayer::new(room.clone(), keys));
    let app = Router::new()
        .route("/plain", get(|| async { "ok" }))
        .merge(gated);
    let http = Http::new(&format!("http://{}", serve(server_rt, app)?), 64);
    let n = config.cpu_requests;
    let per_request = |jar: Jar, path: &'static str, json: bool| -> f64 {
        let before = server_cpu_us();
        client_rt.block_on(hammer(&http, jar, path, json, n));
        (server_cpu_us() - before) as f64 / n as f64
    };
    let plain_us = per_request(Jar::default(), "/plain", false);
    let mut admitted = Jar::default();
    client_rt
        .block_on(http.send(Method::GET, "/gated", &mut admitted, None, false))
        .ok_or("no pass")?;
    let pass_us = per_request(admitted, "/gated", false);
    room.pause();
    let mut waiting = Jar::default();
    client_rt
        .block_on(http.send(Method::GET, "/gated", &mut waiting, None, true))
        .ok_or("no ticket")?;
    let waiting_us = per_request(waiting, "/gated", true);
    Ok(CpuReport {
        requests_per_kind: n,
        plain_us,
        pass_us,
        waiting_us,
    })
}

/// `n` requests for `path` with the cookies of `jar`, 64 at a time.
async fn hammer(http: &Http, jar: Jar, path: &'static str, json: bool, n: u64) {
    let jar = Arc::new(jar);
    let workers = 64;
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (http, jar) = (http.clone(), jar.clone());
            tokio::spawn(async move {
                let mut own = jar.as_ref().clone();
                for _ in (w..n).step_by(workers as usize) {
                    let _ = http.send(Method::GET, path, &mut own, None, json).await;
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
}

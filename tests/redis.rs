//! `RedisSlotBook` and `RedisWaitingRoom` against real Redis servers started by
//! `tests/redis/cluster.sh` (a standalone server and a 3-primary, 3-replica cluster,
//! `appendfsync always`): what only the shared types do (applicant counts across shards, signed
//! places after a lost entry, refusing unsynced servers), random sequences compared with the
//! in-process types, racing tasks, two nodes on one line, the HTTP layer on the shared room,
//! two portal processes, four OS processes racing through the cluster, a primary killed in the
//! middle of a booking run, and a fake server answering garbage. Every rule of the book and the
//! room, written once for both backends, is in `tests/backend_suite.rs`.
//!
//! Without `redis-server` the test says so and skips (and fails under `CI=true`).
#![cfg(all(feature = "redis", feature = "http", not(loom)))]

#[path = "support/http1.rs"]
mod http1;
#[path = "support/programs.rs"]
#[allow(dead_code)]
mod programs;
#[path = "support/redis_book.rs"]
mod redis_book;
#[path = "support/redis_model.rs"]
mod redis_model;
#[path = "support/redis_room_checks.rs"]
mod redis_room_checks;
#[path = "support/redis_room_model.rs"]
mod redis_room_model;
#[path = "support/redis_servers.rs"]
mod redis_servers;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis_book::{book, runtime, state};
use redis_servers::Servers;
use surgegate::redis::RedisSlotBook;
use surgegate::{ApplicantId, BranchId, ConfirmError, HoldToken, ReleaseError, ReserveError};

/// What only the shared book does: an applicant's count is taken before its hold and runs out
/// after it, so a lapsed hold's unit is free at once but its applicant's place in the limit
/// comes back only up to 2 s later, never before (every other rule: `tests/backend_suite.rs`).
async fn counts_outlive_lapsed_holds(urls: &[String], namespace: &str) {
    let book = book(urls, namespace, 700, 1).await;
    let (b1, a1, a2) = (BranchId(1), ApplicantId(1), ApplicantId(2));
    book.set_capacity(b1, 0, 1).await.unwrap();
    book.set_capacity(b1, 1, 1).await.unwrap();
    let lapsing = book.reserve(b1, 0, a1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(book.slot(b1, 0).await, Ok(state(1, 0, 0)));
    assert_eq!(
        book.confirm(lapsing.token).await,
        Err(ConfirmError::Expired)
    );
    // The unit is free for another applicant at once; the lapsed applicant waits out its count.
    book.reserve(b1, 0, a2).await.unwrap();
    assert_eq!(
        book.reserve(b1, 1, a1).await,
        Err(ReserveError::ApplicantLimit)
    );
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert_eq!(book.reserve(b1, 1, a1).await.map(|h| h.slot), Ok(1));
    let unknown = HoldToken::from_u128((1u128 << 96) | 12345);
    assert_eq!(book.confirm(unknown).await, Err(ConfirmError::UnknownToken));
    assert_eq!(book.release(unknown).await, Err(ReleaseError::UnknownToken));
}

/// Tasks racing for few units over several branches: exactly the capacity is booked.
async fn race(urls: &[String], namespace: &str) {
    let book = Arc::new(book(urls, namespace, 60_000, 1).await);
    let branches = [BranchId(10), BranchId(11), BranchId(12)];
    for b in branches {
        for slot in 0..4 {
            book.set_capacity(b, slot, 3).await.unwrap();
        }
    }
    let tasks: Vec<_> = (0..120u64)
        .map(|i| {
            let book = book.clone();
            tokio::spawn(async move {
                // Every applicant appears twice, at two different branches: the limit must
                // hold across them.
                let applicant = ApplicantId(i % 60);
                let branch = branches[((i % 60 + i / 60) % 3) as usize];
                match book.reserve_earliest(branch, 0..4, applicant).await {
                    Ok(hold) => Some(book.confirm(hold.token).await.unwrap()),
                    Err(ReserveError::NoneAvailable | ReserveError::ApplicantLimit) => None,
                    Err(e) => panic!("{e}"),
                }
            })
        })
        .collect();
    let mut per_applicant: HashMap<ApplicantId, u32> = HashMap::new();
    let mut per_slot: HashMap<(BranchId, u32), u32> = HashMap::new();
    for task in tasks {
        if let Some(b) = task.await.unwrap() {
            *per_applicant.entry(b.applicant).or_default() += 1;
            *per_slot.entry((b.branch, b.slot)).or_default() += 1;
        }
    }
    assert!(per_applicant.values().all(|&n| n == 1), "{per_applicant:?}");
    assert_eq!(
        per_applicant.len(),
        36,
        "36 units for 60 applicants: all taken"
    );
    for b in branches {
        for slot in 0..4 {
            let s = book.slot(b, slot).await.unwrap().unwrap();
            let counted = per_slot.get(&(b, slot)).copied().unwrap_or(0);
            assert_eq!((s.booked, s.held, counted), (3, 0, 3), "{b:?} {slot}");
        }
    }
}

#[test]
fn the_book_and_the_room_keep_every_rule_on_a_server_and_on_a_cluster() {
    let Some(servers) = Servers::start() else {
        return;
    };
    let rt = runtime();
    for (name, urls) in [
        ("single", vec![servers.standalone()]),
        ("cluster", servers.cluster()),
    ] {
        rt.block_on(counts_outlive_lapsed_holds(
            &urls,
            &format!("counts-{name}"),
        ));
        rt.block_on(race(&urls, &format!("race-{name}")));
        redis_model::compare(&rt, &urls, &format!("model-{name}"), 32);
        redis_room_model::compare(&rt, &urls, &format!("room-model-{name}"), 32);
        rt.block_on(redis_room_checks::two_nodes_and_the_layer(
            &urls,
            &format!("nodes-{name}"),
        ));
        let places = format!("places-{name}");
        rt.block_on(redis_room_checks::places_survive_a_lost_entry(
            &urls, &places,
        ));
        rt.block_on(redis_room_checks::old_places_never_come_back(
            &urls,
            &format!("old-places-{name}"),
        ));
    }
    rt.block_on(refuses_unsynced_servers(&servers));
    two_portal_nodes(&servers);
    four_processes(&servers, &rt);
    // Last: it kills a primary of the cluster.
    failover(&servers, &rt);
}

/// The port of the cluster primary that owns `key`, as node `ask` says; `None` while no
/// connected primary owns it.
fn primary_of(servers: &Servers, ask: u16, key: &str) -> Option<u16> {
    let slot: u16 = servers
        .cli(ask, &["cluster", "keyslot", key])
        .trim()
        .parse()
        .ok()?;
    for line in servers.cli(ask, &["cluster", "nodes"]).lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if !fields.get(2).is_some_and(|f| f.contains("master"))
            || fields.get(7) != Some(&"connected")
        {
            continue;
        }
        for range in &fields[8..] {
            let (lo, hi) = range.split_once('-').unwrap_or((range, range));
            let (Ok(lo), Ok(hi)) = (lo.parse::<u16>(), hi.parse::<u16>()) else {
                continue;
            };
            if (lo..=hi).contains(&slot) {
                return fields[1].split(['@', ':']).nth(1)?.parse().ok();
            }
        }
    }
    None
}

/// Confirmations race while the primary of their branch is killed with SIGKILL; its replica is
/// promoted; every confirmation acknowledged (after `WAIT`) is still there, nothing is
/// overbooked, and bookings go on after the failover.
fn failover(servers: &Servers, rt: &tokio::runtime::Runtime) {
    let urls = servers.cluster();
    let book = Arc::new(rt.block_on(book(&urls, "failover", 60_000, 1)));
    let branch = BranchId(1);
    for slot in 0..200 {
        rt.block_on(book.set_capacity(branch, slot, 500)).unwrap();
    }
    let key = "{failover:b:1}:cap";
    let victim = primary_of(servers, servers.port + 1, key).expect("a primary owns the branch");
    let stop_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let tasks: Vec<_> = (0..16u64)
        .map(|t| {
            let (book, stop_at) = (book.clone(), stop_at.clone());
            rt.spawn(async move {
                let mut acknowledged = Vec::new();
                for i in 0.. {
                    if stop_at
                        .lock()
                        .unwrap()
                        .is_some_and(|at| Instant::now() >= at)
                    {
                        break;
                    }
                    let applicant = ApplicantId(t * 1_000_000 + i);
                    let Ok(hold) = book.reserve_earliest(branch, 0..200, applicant).await else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    if let Ok(booking) = book.confirm(hold.token).await {
                        acknowledged.push((Instant::now(), booking.token));
                    }
                }
                acknowledged
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1_500));
    let pid = std::fs::read_to_string(servers.dir_of(victim).join("redis.pid")).unwrap();
    let killed_at = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .unwrap()
            .success()
    );
    // Wait until another node owns the slot (the replica was promoted) and the cluster is ok.
    let deadline = Instant::now() + Duration::from_secs(30);
    let survivor = (1..=6)
        .map(|i| servers.port + i)
        .find(|&p| p != victim)
        .unwrap();
    loop {
        let ok = servers
            .cli(survivor, &["cluster", "info"])
            .contains("cluster_state:ok");
        if ok && primary_of(servers, survivor, key).is_some_and(|p| p != victim) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no replica was promoted within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let promoted_after = killed_at.elapsed();
    // The new primary has no replica until the killed node comes back (as its replica), so
    // until then no confirmation can be acknowledged (`WAIT 1` says so: NotReplicated).
    servers.restart(victim);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !servers
        .cli(victim, &["info", "replication"])
        .contains("master_link_status:up")
    {
        assert!(
            Instant::now() < deadline,
            "the killed node did not rejoin as a replica"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let rejoined_after = killed_at.elapsed();
    *stop_at.lock().unwrap() = Some(Instant::now() + Duration::from_secs(3));
    let acknowledged: Vec<(Instant, HoldToken)> = tasks
        .into_iter()
        .flat_map(|t| rt.block_on(t).unwrap())
        .collect();
    let before = acknowledged
        .iter()
        .filter(|(at, _)| *at < killed_at)
        .count();
    let after = acknowledged
        .iter()
        .filter(|(at, _)| *at > killed_at + rejoined_after)
        .count();
    assert!(
        before > 0 && after > 0,
        "bookings before {before}, after the failover {after}"
    );
    for (_, token) in &acknowledged {
        let found = rt.block_on(book.booking(*token)).unwrap();
        assert!(
            found.is_some(),
            "an acknowledged booking was lost in the failover"
        );
    }
    let mut booked = 0;
    for slot in 0..200 {
        let s = rt.block_on(book.slot(branch, slot)).unwrap().unwrap();
        assert!(s.held + s.booked <= s.capacity, "slot {slot}: {s:?}");
        booked += s.booked as usize;
    }
    assert!(booked >= acknowledged.len());
    eprintln!(
        "failover: {} confirmations acknowledged ({before} before the kill; replica promoted {:?} after it; {after} after the old primary rejoined as a replica, {:?} after the kill), all kept; {booked} booked in all",
        acknowledged.len(),
        promoted_after,
        rejoined_after
    );
}

/// A server that does not fsync every write is refused by the book and by the room, unless
/// allowed explicitly; settings out of range are refused with the in-process builders' typed
/// errors before anything is connected.
async fn refuses_unsynced_servers(servers: &Servers) {
    let port = servers.port.to_string();
    let set = |value: &str| servers.cli(servers.port, &["config", "set", "appendfsync", value]);
    assert!(set("everysec").contains("OK"));
    let url = servers.standalone();
    let refused = RedisSlotBook::builder()
        .namespace("unsynced")
        .connect(&[url.as_str()])
        .await;
    assert!(
        matches!(refused, Err(surgegate::redis::ConnectError::NotDurable(ref at)) if at.contains(&port)),
        "{:?}",
        refused.err()
    );
    let allowed = RedisSlotBook::builder()
        .namespace("unsynced")
        .allow_unsynced()
        .connect(&[url.as_str()])
        .await;
    assert!(allowed.is_ok());
    // The room's connect checks the same, with the same opt-out.
    let room = surgegate::redis::RedisWaitingRoom::builder().namespace("unsynced");
    let refused = room.clone().connect(&[url.as_str()]).await;
    assert!(
        matches!(refused, Err(surgegate::redis::ConnectError::NotDurable(ref at)) if at.contains(&port)),
        "{:?}",
        refused.err()
    );
    assert!(room.allow_unsynced().connect(&[url.as_str()]).await.is_ok());
    assert!(set("always").contains("OK"));
    assert!(
        RedisSlotBook::builder()
            .namespace("unsynced")
            .connect(&[url.as_str()])
            .await
            .is_ok()
    );
    use surgegate::redis::{ConnectError, RedisWaitingRoom};
    use surgegate::{BookConfigError, RoomConfigError};
    let ms = Duration::from_millis;
    let book = RedisSlotBook::builder()
        .hold_ttl(ms(86_400_001))
        .connect(&[url.as_str()])
        .await;
    assert_eq!(
        book.err(),
        Some(ConnectError::Book(BookConfigError::HoldTtl(ms(86_400_001))))
    );
    let room = RedisWaitingRoom::builder()
        .claim_timeout(ms(5_000))
        .pass_ttl(ms(1_000))
        .connect(&[url.as_str()])
        .await;
    assert_eq!(
        room.err(),
        Some(ConnectError::Room(RoomConfigError::ClaimTimeout(ms(5_000))))
    );
    let room = RedisWaitingRoom::builder()
        .rate_per_second(0)
        .connect(&["not a url"])
        .await;
    assert_eq!(
        room.err(),
        Some(ConnectError::Room(RoomConfigError::Rate(0)))
    );
}

/// A portal process, stopped (SIGINT) when dropped.
struct Node(std::process::Child, String);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn start_node(urls: &[String], data: &std::path::Path) -> Node {
    let mut child = Command::new(programs::example("portal"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--rate",
            "1",
            "--burst",
            "1",
            "--max-active",
            "1",
        ])
        .args([
            "--namespace",
            "two-nodes",
            "--new-visitors-per-minute",
            "0",
            "--redis",
            &urls.join(","),
        ])
        .arg("--data")
        .arg(data)
        .env("PORTAL_SECRET", "ab".repeat(32))
        .env("PORTAL_ADMIN_TOKEN", "cd".repeat(20))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = programs::listening_address(&mut child);
    Node(child, addr)
}

/// Two portal processes on the cluster serve one line and one book: places count across both,
/// a pass from one works on the other, a booking made on one is seen on the other, and the
/// next in line on the other node is admitted when the first confirms.
fn two_portal_nodes(servers: &Servers) {
    let dir = tempfile::tempdir().unwrap();
    let urls = servers.cluster();
    let a = start_node(&urls, dir.path());
    let b = start_node(&urls, dir.path());
    let json = [("Accept", "application/json")];
    let mut x = http1::Visitor::default();
    let form = x.send(&a.1, "GET", "/register", &[], "");
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(
        form.body.contains("name=\"csrf\""),
        "admitted on node A: {}",
        form.body
    );
    let mut y = http1::Visitor::default();
    let waiting = y.send(&b.1, "GET", "/register", &json, "");
    assert!(
        waiting.body.contains("\"position\":1"),
        "first in line, on node B: {}",
        waiting.body
    );
    let mut z = http1::Visitor::default();
    let behind = z.send(&a.1, "GET", "/register", &json, "");
    assert!(
        behind.body.contains("\"position\":2"),
        "second in line, on node A: {}",
        behind.body
    );
    // X's pass, signed on A, lets it through on B.
    let on_b = x.send(&b.1, "GET", "/register", &[], "");
    assert!(on_b.body.contains("name=\"csrf\""), "{}", on_b.body);
    // X registers and books on A; the booking is seen on B.
    let csrf = form.field("csrf");
    let body = format!("csrf={csrf}&name=Amal+Haddad&national_id=1234567890&phone=0791234567");
    assert_eq!(x.send(&a.1, "POST", "/register", &[], &body).status, 303);
    let grid = x.send(&a.1, "GET", "/appointments?branch=1", &[], "");
    let csrf = grid.field("csrf");
    let held = x.send(
        &a.1,
        "POST",
        "/appointments/hold",
        &[],
        &format!("csrf={csrf}&branch=1"),
    );
    assert_eq!(held.status, 303, "{}", held.body);
    let hold_page = x.send(&a.1, "GET", "/appointments/hold", &[], "");
    let token = hold_page.field("token");
    // The confirm form's own token (the first form of the hold page).
    let csrf = hold_page.field("csrf");
    let confirmed = x.send(
        &a.1,
        "POST",
        "/appointments/confirm",
        &[],
        &format!("csrf={csrf}&token={token}"),
    );
    let booking = confirmed
        .header("location")
        .expect("a booking page")
        .to_owned();
    let seen = x.send(&b.1, "GET", &booking, &[], "");
    assert!(
        seen.body.contains("Your appointment is booked"),
        "{}",
        seen.body
    );
    // The confirmation gave X's place back: Y, waiting on B, is admitted there.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = y.send(&b.1, "GET", "/register", &json, "");
        if r.body.contains("name=\"csrf\"") {
            break;
        }
        assert!(Instant::now() < deadline, "Y was not admitted: {}", r.body);
        std::thread::sleep(Duration::from_millis(300));
    }
    let z_now = z.send(&a.1, "GET", "/register", &json, "");
    assert!(
        z_now.body.contains("\"position\":1"),
        "Z moved up: {}",
        z_now.body
    );
}

/// Set by the parent for the worker processes: the cluster's URLs.
const WORKER_ENV: &str = "SURGEGATE_REDIS_WORKER";

/// Four copies of this test binary (`worker` below) race for the same slots through the
/// cluster; the parent recounts what they report.
fn four_processes(servers: &Servers, rt: &tokio::runtime::Runtime) {
    let urls = servers.cluster();
    let book = rt.block_on(book(&urls, "procs", 60_000, 1));
    for branch in 1..=4 {
        for slot in 0..5 {
            rt.block_on(book.set_capacity(BranchId(branch), slot, 4))
                .unwrap();
        }
    }
    let children: Vec<_> = (0..4)
        .map(|w| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "worker", "--nocapture", "--test-threads", "1"])
                .env(WORKER_ENV, format!("{w};{}", urls.join(",")))
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut per_applicant: HashMap<u64, u32> = HashMap::new();
    let mut per_slot: HashMap<(u32, u32), u32> = HashMap::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // The harness prints "test worker ... " before the first line of the worker's own.
            let Some(at) = line.find("BOOKED ") else {
                continue;
            };
            let rest = &line[at + "BOOKED ".len()..];
            let token: HoldToken = rest.parse().unwrap();
            let b = rt
                .block_on(book.booking(token))
                .unwrap()
                .expect("a reported booking exists");
            *per_applicant.entry(b.applicant.0).or_default() += 1;
            *per_slot.entry((b.branch.0, b.slot)).or_default() += 1;
        }
    }
    assert!(
        per_applicant.values().all(|&n| n == 1),
        "limit broken: {per_applicant:?}"
    );
    let mut total = 0;
    for branch in 1..=4 {
        for slot in 0..5 {
            let s = rt
                .block_on(book.slot(BranchId(branch), slot))
                .unwrap()
                .unwrap();
            let counted = per_slot.get(&(branch, slot)).copied().unwrap_or(0);
            assert_eq!(s.booked, counted, "branch {branch} slot {slot}");
            assert!(s.booked + s.held <= s.capacity);
            total += s.booked;
        }
    }
    // 80 units, 300 distinct applicants trying: every unit is booked.
    assert_eq!(total, 80);
}

/// A worker process of `four_processes`: 150 applicants (shared with the other workers two by
/// two), each taking the earliest unit at its branch and confirming; prints its bookings.
#[test]
fn worker() {
    let Ok(spec) = std::env::var(WORKER_ENV) else {
        return;
    };
    let (w, urls) = spec.split_once(';').unwrap();
    let w: u64 = w.parse().unwrap();
    let urls: Vec<String> = urls.split(',').map(String::from).collect();
    runtime().block_on(async {
        let book = Arc::new(book(&urls, "procs", 60_000, 1).await);
        let tasks: Vec<_> = (0..150u64)
            .map(|i| {
                let book = book.clone();
                tokio::spawn(async move {
                    let applicant = ApplicantId((w / 2) * 150 + i);
                    let branch = BranchId(1 + ((i + w) % 4) as u32);
                    match book.reserve_earliest(branch, 0..5, applicant).await {
                        Ok(hold) => Some(book.confirm(hold.token).await.unwrap().token),
                        Err(ReserveError::NoneAvailable | ReserveError::ApplicantLimit) => None,
                        Err(e) => panic!("{e}"),
                    }
                })
            })
            .collect();
        for task in tasks {
            if let Some(token) = task.await.unwrap() {
                println!("BOOKED {token}");
            }
        }
    });
}

#[test]
fn a_server_that_answers_garbage_gives_errors_not_panics() {
    let fake = fake_server::start();
    let rt = runtime();
    rt.block_on(async {
        let url = format!("redis://{fake}");
        let book = RedisSlotBook::builder()
            .namespace("garbage")
            .timeout(Duration::from_millis(500))
            .connect(&[url.as_str()])
            .await
            .expect("the fake server passes the checks");
        let started = Instant::now();
        for round in 0..24 {
            let outcomes = [
                book.reserve(BranchId(1), 0, ApplicantId(1))
                    .await
                    .err()
                    .map(|e| format!("{e:?}")),
                book.confirm(HoldToken::from_u128(1 << 96))
                    .await
                    .err()
                    .map(|e| format!("{e:?}")),
                book.release(HoldToken::from_u128(1 << 96))
                    .await
                    .err()
                    .map(|e| format!("{e:?}")),
                book.set_capacity(BranchId(1), 0, 1)
                    .await
                    .err()
                    .map(|e| format!("{e:?}")),
                book.slot(BranchId(1), 0)
                    .await
                    .err()
                    .map(|e| format!("Backend({e:?})")),
            ];
            for outcome in outcomes {
                let text = outcome.unwrap_or_else(|| panic!("round {round}: garbage was accepted"));
                assert!(text.contains("Backend"), "{text}");
            }
        }
        assert!(started.elapsed() < Duration::from_secs(60));
    });
}

/// A RESP server on loopback that passes the connection checks and answers every script with
/// a reply of a wrong shape (a different one each time).
mod fake_server {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};

    pub fn start() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || serve(stream));
            }
        });
        addr
    }

    fn read_command(reader: &mut BufReader<TcpStream>) -> Option<Vec<String>> {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let n: usize = line.trim().strip_prefix('*')?.parse().ok()?;
        let mut args = Vec::with_capacity(n);
        for _ in 0..n {
            line.clear();
            reader.read_line(&mut line).ok()?;
            let len: usize = line.trim().strip_prefix('$')?.parse().ok()?;
            let mut buf = vec![0; len + 2];
            reader.read_exact(&mut buf).ok()?;
            args.push(String::from_utf8_lossy(&buf[..len]).into_owned());
        }
        Some(args)
    }

    const GARBAGE: [&str; 6] = [
        ":42\r\n",
        "$5\r\nhello\r\n",
        "*1\r\n$4\r\nheld\r\n",
        "*4\r\n$4\r\nheld\r\n$2\r\nzz\r\n:-1\r\n:1\r\n",
        "*2\r\n$3\r\nerr\r\n$8\r\nnonsense\r\n",
        "*3\r\n:-7\r\n:99999999999\r\n$1\r\nx\r\n",
    ];

    fn serve(stream: TcpStream) {
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        let mut n = 0;
        while let Some(args) = read_command(&mut reader) {
            let name = args
                .first()
                .map(|a| a.to_ascii_uppercase())
                .unwrap_or_default();
            let reply = match name.as_str() {
                "INFO" => "$19\r\ncluster_enabled:0\r\n\r\n".to_owned(),
                "CONFIG" => {
                    let setting = args.get(2).cloned().unwrap_or_default();
                    let value = match setting.as_str() {
                        "appendonly" => "yes",
                        "maxmemory-policy" => "noeviction",
                        _ => "always",
                    };
                    format!(
                        "*2\r\n${}\r\n{setting}\r\n${}\r\n{value}\r\n",
                        setting.len(),
                        value.len()
                    )
                }
                "EVALSHA" | "EVAL" => {
                    n += 1;
                    GARBAGE[n % GARBAGE.len()].to_owned()
                }
                "SCRIPT" => "$40\r\n0000000000000000000000000000000000000000\r\n".to_owned(),
                _ => "+OK\r\n".to_owned(),
            };
            if writer.write_all(reply.as_bytes()).is_err() {
                return;
            }
        }
    }
}

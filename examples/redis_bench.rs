//! `cargo run --release --example redis_bench --features redis`: the Redis backends' throughput
//! and latency, as ratios within one run. Starts its own servers with `tests/redis/cluster.sh`
//! (a 3-primary, 3-replica cluster with `appendfsync always`, on loopback) and stops them.
//!
//! For 1, 8 and 64 concurrent tasks: reserve → confirm → release cycles/s of `RedisSlotBook`
//! (confirm and release of a booking wait for one replica), join + poll/s of
//! `RedisWaitingRoom`, the floor (a minimal check-and-increment script called by EVALSHA the same
//! way), and the in-process `SlotBook` and `WaitingRoom` doing the same; then the book with
//! its branches on all three primaries against all on one; p99 latency per call at 64 tasks.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use parking_lot::Mutex;
use surgegate::redis::{RedisSlotBook, RedisWaitingRoom};
use surgegate::{ApplicantId, BranchId, Entry, SlotBook, VisitorId, WaitingRoom};

#[derive(Parser, Debug)]
struct Args {
    /// First port of the servers (the standalone one; the cluster's six follow).
    #[arg(long, default_value_t = 27_100)]
    port: u16,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 3.0)]
    secs: f64,
}

struct Servers(PathBuf);

impl Drop for Servers {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .args(["stop", &self.0.display().to_string()])
            .status();
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/redis/cluster.sh")
}

/// Calls and their latencies (µs) of one measurement.
#[derive(Default)]
struct Tally {
    ops: AtomicU64,
    latencies_us: Mutex<Vec<u32>>,
}

impl Tally {
    fn p99_ms(&self) -> f64 {
        let mut l = self.latencies_us.lock();
        l.sort_unstable();
        l.get(l.len() * 99 / 100)
            .map_or(0.0, |&us| f64::from(us) / 1000.0)
    }
}

/// Runs `work(task, i)` in `tasks` concurrent tasks for `secs`; operations per second.
async fn measure<F, Fut>(tasks: u64, secs: f64, work: F) -> (f64, Arc<Tally>)
where
    F: Fn(u64, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let work = Arc::new(work);
    let tally = Arc::new(Tally::default());
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (work, tally) = (work.clone(), tally.clone());
            tokio::spawn(async move {
                let mut i = 0;
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    work(t, i).await;
                    lat.push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
                    i += 1;
                }
                tally.ops.fetch_add(i, Ordering::Relaxed);
                tally.latencies_us.lock().extend(lat);
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    (tally.ops.load(Ordering::Relaxed) as f64 / secs, tally)
}

/// Branch ids whose keys live on the primary that owns hash slots `slots` (or any, if `None`).
async fn branches_on(
    conn: &mut redis::aio::MultiplexedConnection,
    ns: &str,
    slots: Option<std::ops::RangeInclusive<i64>>,
    n: usize,
) -> Vec<BranchId> {
    let mut out = Vec::new();
    for b in 1..100_000u32 {
        let key = format!("{{{ns}:b:{b}}}:cap");
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(&key)
            .query_async(conn)
            .await
            .unwrap();
        if slots.as_ref().is_none_or(|r| r.contains(&slot)) {
            out.push(BranchId(b));
        }
        if out.len() == n {
            break;
        }
    }
    out
}

async fn book_cycles(
    urls: &[&str],
    ns: &str,
    branches: Vec<BranchId>,
    tasks: u64,
    secs: f64,
) -> (f64, Arc<Tally>) {
    let book = Arc::new(
        RedisSlotBook::builder()
            .namespace(ns)
            .max_active_per_applicant(1)
            .connect(urls)
            .await
            .unwrap(),
    );
    for &b in &branches {
        book.set_capacity(b, 0, 100_000).await.unwrap();
    }
    let branches = Arc::new(branches);
    measure(tasks, secs, move |t, i| {
        let (book, branches) = (book.clone(), branches.clone());
        async move {
            let branch = branches[(t as usize + i as usize) % branches.len()];
            let hold = book
                .reserve(branch, 0, ApplicantId(t << 32 | i))
                .await
                .unwrap();
            book.confirm(hold.token).await.unwrap();
            book.release(hold.token).await.unwrap();
        }
    })
    .await
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let dir = tempfile::tempdir().unwrap();
    let ok = Command::new("bash")
        .arg(script())
        .args([
            "start",
            &dir.path().display().to_string(),
            &args.port.to_string(),
        ])
        .status()
        .unwrap();
    assert!(ok.success(), "the servers did not start");
    let _servers = Servers(dir.path().to_path_buf());
    let cluster: Vec<String> = (1..=6)
        .map(|i| format!("redis://127.0.0.1:{}", args.port + i))
        .collect();
    let urls: Vec<&str> = cluster.iter().map(String::as_str).collect();
    let mut one = redis::Client::open(urls[0])
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let cluster_conn = redis::cluster::ClusterClient::new(urls.clone())
        .unwrap()
        .get_async_connection()
        .await
        .unwrap();
    let floor = Arc::new(redis::Script::new(
        "local n = redis.call('INCR', KEYS[1]) if n < 0 then return 0 end return n",
    ));
    println!(
        "| tasks | book cycles/s (Redis) | calls/s of the floor script | in-process SlotBook cycles/s | join+poll/s (Redis) | in-process join+poll/s |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut p99 = (0.0, 0.0, 0.0);
    for tasks in [1u64, 8, 64] {
        let spread = branches_on(&mut one, &format!("b{tasks}"), None, 16).await;
        let (book_rate, book_tally) =
            book_cycles(&urls, &format!("b{tasks}"), spread, tasks, args.secs).await;
        let (floor_rate, floor_tally) = {
            let (floor, conn) = (floor.clone(), cluster_conn.clone());
            measure(tasks, args.secs, move |t, i| {
                let (floor, mut conn) = (floor.clone(), conn.clone());
                async move {
                    let _: i64 = floor
                        .key(format!("{{floor:{}}}", (t + i) % 16))
                        .invoke_async(&mut conn)
                        .await
                        .unwrap();
                }
            })
            .await
        };
        let local_book = in_process_book(tasks, args.secs).await;
        let room = Arc::new(
            RedisWaitingRoom::builder()
                .namespace(format!("r{tasks}"))
                .max_waiting(1 << 30)
                .connect(&urls)
                .await
                .unwrap(),
        );
        room.pause().await.unwrap();
        let (room_rate, room_tally) = {
            let room = room.clone();
            measure(tasks, args.secs, move |t, i| {
                let room = room.clone();
                async move {
                    let Entry::Waiting(ticket) = room.join(VisitorId(t << 32 | i)).await.unwrap()
                    else {
                        panic!()
                    };
                    room.poll(ticket.token).await.unwrap();
                }
            })
            .await
        };
        let local_room = in_process_room(tasks, args.secs).await;
        println!(
            "| {tasks} | {book_rate:.0} | {floor_rate:.0} | {local_book:.0} | {room_rate:.0} | {local_room:.0} |"
        );
        if tasks == 64 {
            p99 = (
                book_tally.p99_ms(),
                room_tally.p99_ms(),
                floor_tally.p99_ms(),
            );
        }
    }
    println!(
        "\np99 at 64 tasks: a book cycle (9 round trips, 2 WAITs) {:.2} ms; a join + poll {:.2} ms; one floor call {:.2} ms",
        p99.0, p99.1, p99.2
    );
    let spread = branches_on(&mut one, "spread", None, 30).await;
    let single = branches_on(&mut one, "single", Some(0..=5460), 30).await;
    let (spread_rate, _) = book_cycles(&urls, "spread", spread, 64, args.secs).await;
    let (single_rate, _) = book_cycles(&urls, "single", single, 64, args.secs).await;
    println!(
        "\nbook cycles/s at 64 tasks, 30 branches over 3 primaries: {spread_rate:.0}; all on one primary: {single_rate:.0} (ratio {:.2})",
        spread_rate / single_rate
    );
}

async fn in_process_book(tasks: u64, secs: f64) -> f64 {
    let book = Arc::new(SlotBook::builder().max_active_per_applicant(1).build());
    for b in 0..16 {
        book.set_capacity(BranchId(b), 0, 100_000).unwrap();
    }
    measure(tasks, secs, move |t, i| {
        let book = book.clone();
        async move {
            let hold = book
                .reserve(BranchId(((t + i) % 16) as u32), 0, ApplicantId(t << 32 | i))
                .unwrap();
            book.confirm(hold.token).unwrap();
            book.release(hold.token).unwrap();
        }
    })
    .await
    .0
}

async fn in_process_room(tasks: u64, secs: f64) -> f64 {
    let room = Arc::new(WaitingRoom::builder().max_waiting(1 << 30).build());
    room.pause();
    measure(tasks, secs, move |t, i| {
        let room = room.clone();
        async move {
            let Ok(Entry::Waiting(ticket)) = room.join(VisitorId(t << 32 | i)) else {
                panic!()
            };
            room.poll(ticket.token).unwrap();
        }
    })
    .await
    .0
}

//! `cargo bench --bench journal`: durable confirmations per second with group commit against one
//! fsync per call (`max_batch_records(1)`), and with a 100 µs `commit_delay`, at 1, 2, 8 and 32
//! threads, all with `Durability::Fsync` on a directory under `target/`. Beside them, the raw
//! latency of one small write + `fdatasync` on the same file system, measured in the same
//! rounds, gives the fsync-bound limit of each row: records per fsync / fsync latency.
//!
//! Each configuration runs for a fixed window; configurations are interleaved round by round so
//! that the machine's noise falls on all of them alike, and each ratio compares medians of the
//! same run. Writes `target/criterion/journal.json` and the table between the `journal:begin`
//! and `journal:end` markers of BENCHMARKS.md, and prints it.
//!
//! `JOURNAL_BENCH_ROUNDS` (default 5) and `JOURNAL_BENCH_WINDOW_MS` (default 1000) set the effort.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use surgegate::{ApplicantId, BranchId, Durability, SlotBook};

const THREADS: [u64; 4] = [1, 2, 8, 32];
const BRANCHES: u32 = 16;
const SLOTS: u32 = 16;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Commit {
    Group,
    GroupDelayed,
    PerCall,
}

/// The delay of [`Commit::GroupDelayed`].
const DELAY: Duration = Duration::from_micros(100);

/// A configuration and its samples: confirms per second, records per fsync.
type Series = ((Commit, u64), Vec<f64>, Vec<f64>);

struct Sample {
    confirms_per_sec: f64,
    records_per_sync: f64,
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A fresh directory with every slot open, set up without fsyncs.
fn prepared(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    let book = SlotBook::builder()
        .durable()
        .durability(Durability::None)
        .open(dir)
        .expect("open");
    for b in 0..BRANCHES {
        for s in 0..SLOTS {
            book.set_capacity(BranchId(b), s, 2_000_000)
                .expect("capacity");
        }
    }
}

fn run(dir: &Path, commit: Commit, threads: u64, window: Duration) -> Sample {
    prepared(dir);
    let book = SlotBook::builder()
        .max_live_holds(1 << 20)
        .durable()
        .durability(Durability::Fsync)
        .max_batch_records(match commit {
            Commit::Group | Commit::GroupDelayed => 4096,
            Commit::PerCall => 1,
        })
        .commit_delay(match commit {
            Commit::GroupDelayed => DELAY,
            _ => Duration::ZERO,
        })
        .checkpoint_after_bytes(0)
        .open(dir)
        .expect("open");
    let confirms = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let start = Barrier::new(threads as usize + 1);
    let before = book.journal_stats().expect("durable");
    let elapsed = std::thread::scope(|s| {
        for t in 0..threads {
            let (book, confirms, stop, start) = (&book, &confirms, &stop, &start);
            s.spawn(move || {
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (t + 1);
                start.wait();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let (b, slot) = (
                        (x % u64::from(BRANCHES)) as u32,
                        ((x >> 32) % u64::from(SLOTS)) as u32,
                    );
                    let hold = book
                        .reserve(BranchId(b), slot, ApplicantId(t << 40 | i))
                        .expect("room");
                    book.confirm(hold.token).expect("durable confirm");
                    confirms.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        start.wait();
        let began = Instant::now();
        std::thread::sleep(window);
        stop.store(true, Ordering::Relaxed);
        began.elapsed()
    });
    let after = book.journal_stats().expect("durable");
    let n = confirms.load(Ordering::Relaxed);
    let syncs = (after.syncs - before.syncs).max(1);
    let sample = Sample {
        // Confirms finished after the window closed are counted and timed as part of it: the
        // window ends when the last thread stops, which is at most one fsync later.
        confirms_per_sec: n as f64 / elapsed.as_secs_f64(),
        records_per_sync: (after.records - before.records) as f64 / syncs as f64,
    };
    drop(book);
    let _ = std::fs::remove_dir_all(dir);
    sample
}

/// The median latency of a 64-byte append + `fdatasync` on a file in `dir`, in seconds.
fn fsync_latency(dir: &Path) -> f64 {
    use std::os::unix::fs::FileExt;
    let path = dir.join("fsync-probe");
    let file = std::fs::File::create(&path).expect("probe file");
    let mut samples: Vec<f64> = (0..200u64)
        .map(|i| {
            let began = Instant::now();
            file.write_all_at(&[0x5a; 64], i * 64).expect("probe write");
            file.sync_data().expect("probe fsync");
            began.elapsed().as_secs_f64()
        })
        .collect();
    drop(file);
    let _ = std::fs::remove_file(path);
    median(&mut samples)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument (a filter from `cargo bench other`) means
    // another bench was asked for.
    if std::env::args().skip(1).any(|a| !a.starts_with("--")) {
        return;
    }
    let rounds = env_u64("JOURNAL_BENCH_ROUNDS", 5);
    let window = Duration::from_millis(env_u64("JOURNAL_BENCH_WINDOW_MS", 1000));
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/journal-bench");
    std::fs::create_dir_all(&root).expect("target dir");
    let dir = root.join("book");

    // (commit, threads) -> samples
    let mut rates: Vec<Series> = Vec::new();
    for commit in [Commit::Group, Commit::GroupDelayed, Commit::PerCall] {
        for t in THREADS {
            rates.push(((commit, t), Vec::new(), Vec::new()));
        }
    }
    let mut latencies = Vec::new();
    for round in 0..rounds {
        latencies.push(fsync_latency(&root));
        for entry in rates.iter_mut() {
            let ((commit, threads), r, b) = entry;
            let s = run(&dir, *commit, *threads, window);
            eprintln!(
                "round {}/{rounds}: {commit:?} x{threads}: {:.0} confirms/s, {:.1} records per fsync",
                round + 1,
                s.confirms_per_sec,
                s.records_per_sync
            );
            r.push(s.confirms_per_sec);
            b.push(s.records_per_sync);
        }
    }
    let latency = median(&mut latencies);
    let mut table = String::new();
    let _ = writeln!(
        table,
        "`cargo bench --bench journal` ({rounds} interleaved rounds of {} ms per configuration; \
         medians; `Durability::Fsync`, reserve + confirm per call, directory under `target/`). \
         Raw fsync latency on the same file system, same rounds: {:.0} µs. Limit: records per \
         fsync / fsync latency.\n",
        window.as_millis(),
        latency * 1e6
    );
    let _ = writeln!(
        table,
        "| threads | group commit: confirms/s | records per fsync | share of the limit | + 100 µs commit delay: confirms/s | records per fsync | one fsync per call: confirms/s | group / per call |"
    );
    let _ = writeln!(table, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut json = Vec::new();
    for t in THREADS {
        let find = |c: Commit| {
            let e = rates.iter().find(|e| e.0 == (c, t)).expect("measured");
            (median(&mut e.1.clone()), median(&mut e.2.clone()))
        };
        let (group, per_sync) = find(Commit::Group);
        let (delayed, delayed_per_sync) = find(Commit::GroupDelayed);
        let (single, _) = find(Commit::PerCall);
        let share = group / (per_sync / latency);
        let _ = writeln!(
            table,
            "| {t} | {group:.0} | {per_sync:.1} | {share:.2} | {delayed:.0} | {delayed_per_sync:.1} | {single:.0} | {:.2} |",
            group / single
        );
        json.push(format!(
            "{{\"threads\":{t},\"group_confirms_per_sec\":{group:.1},\"records_per_fsync\":{per_sync:.2},\"share_of_fsync_limit\":{share:.3},\"delayed_confirms_per_sec\":{delayed:.1},\"delayed_records_per_fsync\":{delayed_per_sync:.2},\"per_call_confirms_per_sec\":{single:.1},\"ratio\":{:.3},\"fsync_latency_s\":{latency:.7}}}",
            group / single
        ));
    }
    println!("{table}");
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/criterion");
    let _ = std::fs::create_dir_all(&out);
    let _ = std::fs::write(out.join("journal.json"), format!("[{}]\n", json.join(",")));
    let doc = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
    if let Ok(text) = std::fs::read_to_string(&doc) {
        const BEGIN: &str = "<!-- journal:begin (generated by `cargo bench --bench journal`) -->";
        const END: &str = "<!-- journal:end -->";
        if let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) {
            let updated = format!("{}{BEGIN}\n{table}{}", &text[..b], &text[e..]);
            let _ = std::fs::write(&doc, updated);
        }
    }
}

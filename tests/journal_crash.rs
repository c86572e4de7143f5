//! Crash recovery for real: a child process books and cancels as fast as it can and prints each
//! change only after its call returned `Ok`; the parent kills it with SIGKILL at a random moment,
//! reopens the directory and checks that every acknowledged booking, cancellation and capacity
//! is there, that nothing is overbooked, and that no booking exists that was never attempted.
//!
//! The child is this test binary itself, started with `--ignored --exact crash_child` and the
//! directory in `SURGEGATE_CRASH_DIR`. Rounds cycle through the three durability modes, use
//! small automatic checkpoints (so crashes also land inside checkpoints), and every fifth round
//! kills the child early, often while it is still recovering.
//!
//! `SURGEGATE_CRASH_SEED=<n>` replays a run; the seed is printed at the start.
//! `SURGEGATE_CRASH_ROUNDS=<n>` sets the number of rounds (default 20, at most 10 000); the long
//! run is `SURGEGATE_CRASH_ROUNDS=100 cargo test --test journal_crash -- --nocapture`.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use surgegate::{ApplicantId, BranchId, Durability, HoldToken, ReserveError, SlotBook};

/// Rounds when `SURGEGATE_CRASH_ROUNDS` is not set: what `cargo test` (and CI) runs.
const DEFAULT_ROUNDS: u64 = 20;
/// The most rounds one run takes (each one starts a process and reopens the journal).
const MAX_ROUNDS: u64 = 10_000;
const ROUNDS_ENV: &str = "SURGEGATE_CRASH_ROUNDS";
const BRANCHES: u32 = 4;
const SLOTS: u32 = 16;
const DIR_ENV: &str = "SURGEGATE_CRASH_DIR";
const ROUND_ENV: &str = "SURGEGATE_CRASH_ROUND";

fn durability(round: u64) -> Durability {
    match round % 3 {
        0 => Durability::Fsync,
        1 => Durability::Flush {
            every: Duration::from_millis(2),
        },
        _ => Durability::None,
    }
}

fn open(dir: &Path, round: u64) -> SlotBook {
    SlotBook::builder()
        .max_slots_per_branch(SLOTS)
        .durable()
        .durability(durability(round))
        .checkpoint_after_bytes(1 << 20)
        .open(dir)
        .expect("the journal must always reopen after a crash")
}

/// The round count: `SURGEGATE_CRASH_ROUNDS`, else [`DEFAULT_ROUNDS`]. A value that is not a
/// whole number from 1 to [`MAX_ROUNDS`] stops the test with a message, rather than quietly
/// running some other number of rounds.
fn rounds() -> u64 {
    let Ok(text) = std::env::var(ROUNDS_ENV) else {
        return DEFAULT_ROUNDS;
    };
    match text.trim().parse::<u64>() {
        Ok(n) if (1..=MAX_ROUNDS).contains(&n) => n,
        _ => panic!("{ROUNDS_ENV}={text:?}: give a whole number of rounds from 1 to {MAX_ROUNDS}"),
    }
}

/// A seeded generator, so that a seed replays a run's choices.
fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

#[test]
#[ignore = "the child of crash_recovery_keeps_every_acknowledged_change; started only by it"]
fn crash_child() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let round: u64 = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
    let book = open(Path::new(&dir), round);
    println!("@ready");
    let deadline = Instant::now() + Duration::from_secs(60); // in case the parent is gone
    std::thread::scope(|s| {
        for worker in 0..3u64 {
            let book = &book;
            s.spawn(move || {
                let mut rng = rng(round << 8 | worker);
                let mut mine: Vec<HoldToken> = Vec::new();
                let mut i = 0u64;
                while Instant::now() < deadline {
                    i += 1;
                    let (b, slot) = (rng.random_range(0..BRANCHES), rng.random_range(0..SLOTS));
                    if worker == 1 && i.is_multiple_of(300) {
                        // Often, so that kills land during checkpoints too.
                        book.checkpoint().unwrap();
                        continue;
                    }
                    if worker == 0 && i % 40 == 1 {
                        // Capacities only grow, so `booked <= capacity` must hold everywhere.
                        let cap = book.slot(BranchId(b), slot).map_or(2, |s| s.capacity + 1);
                        println!("@c {b} {slot} {cap}");
                        book.set_capacity(BranchId(b), slot, cap).unwrap();
                        println!("@C {b} {slot} {cap}");
                        continue;
                    }
                    if mine.len() >= 12 || (!mine.is_empty() && rng.random_range(0..3u32) == 0) {
                        let t = mine.swap_remove(rng.random_range(0..mine.len()));
                        println!("@r {t}");
                        book.release(t).unwrap();
                        println!("@R {t}");
                        continue;
                    }
                    let applicant = ApplicantId(round << 40 | worker << 32 | i);
                    let hold = match book.reserve(BranchId(b), slot, applicant) {
                        Ok(h) => h,
                        Err(ReserveError::UnknownSlot | ReserveError::Full) => continue,
                        Err(e) => panic!("{e}"),
                    };
                    println!("@b {} {b} {slot}", hold.token);
                    let booking = book.confirm(hold.token).unwrap();
                    println!("@B {}", booking.token);
                    mine.push(booking.token);
                }
            });
        }
    });
}

/// What the parent knows about one round's child from its output.
#[derive(Default)]
struct Heard {
    attempted: HashMap<HoldToken, (u32, u32)>,
    booked: HashSet<HoldToken>,
    cancel_attempted: HashSet<HoldToken>,
    cancelled: HashSet<HoldToken>,
    /// Per slot, in order: (capacity, acknowledged).
    capacities: HashMap<(u32, u32), Vec<(u32, bool)>>,
}

fn hear(lines: &[String]) -> Heard {
    let mut h = Heard::default();
    for line in lines {
        let Some(at) = line.find('@') else { continue };
        let f: Vec<&str> = line[at..].split_whitespace().collect();
        let token = || f[1].parse::<HoldToken>().unwrap();
        let num = |i: usize| f[i].parse::<u32>().unwrap();
        match f.first().copied() {
            Some("@b") => {
                h.attempted.insert(token(), (num(2), num(3)));
            }
            Some("@B") => {
                h.booked.insert(token());
            }
            Some("@r") => {
                h.cancel_attempted.insert(token());
            }
            Some("@R") => {
                h.cancelled.insert(token());
            }
            Some("@c") => h
                .capacities
                .entry((num(1), num(2)))
                .or_default()
                .push((num(3), false)),
            Some("@C") => {
                let v = h.capacities.get_mut(&(num(1), num(2))).unwrap();
                let last = v.last_mut().unwrap();
                assert_eq!(last.0, num(3));
                last.1 = true;
            }
            _ => {}
        }
    }
    h
}

#[test]
fn crash_recovery_keeps_every_acknowledged_change() {
    let seed: u64 = std::env::var("SURGEGATE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let rounds = rounds();
    println!("SURGEGATE_CRASH_SEED={seed} {ROUNDS_ENV}={rounds}");
    let started = Instant::now();
    let mut rng = rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // What every slot's capacity is known to be after the previous rounds.
    let mut known_capacity: HashMap<(u32, u32), u32> = HashMap::new();
    let (mut acknowledged, mut checkpoints_seen, mut torn_seen) = (0usize, 0u64, 0u64);

    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_ENV, dir.path())
            .env(ROUND_ENV, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The test harness may print its own text in front of the first line.
                if line.ends_with("@ready") {
                    let _ = tx.send(());
                }
                lines.push(line);
            }
            lines
        });
        if round % 5 == 4 {
            // Early: often during the child's own recovery.
            std::thread::sleep(Duration::from_millis(rng.random_range(0..15u64)));
        } else {
            rx.recv_timeout(Duration::from_secs(60))
                .expect("the child did not open the book");
            std::thread::sleep(Duration::from_millis(5 + rng.random_range(0..120u64)));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        let heard = hear(&lines);
        acknowledged += heard.booked.len() + heard.cancelled.len();

        let book = open(dir.path(), round);
        let stats = book.journal_stats().unwrap();
        torn_seen += stats.recovery.torn_bytes;
        checkpoints_seen += u64::from(stats.recovery.checkpoint.is_some());
        book.check_invariants()
            .unwrap_or_else(|e| panic!("round {round} (seed {seed}): {e}"));

        // Capacities: the last acknowledged value, or a later attempted one.
        for (slot, changes) in &heard.capacities {
            let last_ack = changes.iter().rposition(|c| c.1);
            // With nothing acknowledged and nothing known, the slot may still be unopened: an
            // unacknowledged first `set_capacity` may not have reached the journal.
            let floor = last_ack.map_or(known_capacity.get(slot).copied(), |i| Some(changes[i].0));
            let allowed: Vec<Option<u32>> = std::iter::once(floor)
                .chain(
                    changes[last_ack.map_or(0, |i| i + 1)..]
                        .iter()
                        .map(|c| Some(c.0)),
                )
                .collect();
            let now = book.slot(BranchId(slot.0), slot.1).map(|s| s.capacity);
            assert!(
                allowed.contains(&now),
                "round {round} (seed {seed}): slot {slot:?} has capacity {now:?}, expected one of {allowed:?}"
            );
            if let Some(now) = now {
                known_capacity.insert(*slot, now);
            }
        }
        for (slot, cap) in &known_capacity {
            if !heard.capacities.contains_key(slot) {
                let now = book.slot(BranchId(slot.0), slot.1).map(|s| s.capacity);
                assert_eq!(
                    now,
                    Some(*cap),
                    "round {round} (seed {seed}): slot {slot:?} changed"
                );
            }
        }
        // Bookings: acknowledged ones exist unless their cancellation was acknowledged.
        for (token, &(b, s)) in &heard.attempted {
            let found = book.booking(*token);
            // (A cancellation attempted but not acknowledged may or may not have happened.)
            if heard.booked.contains(token) && !heard.cancel_attempted.contains(token) {
                assert!(
                    found.is_some(),
                    "round {round} (seed {seed}): acknowledged booking {token} lost"
                );
            }
            if heard.cancelled.contains(token) {
                assert!(
                    found.is_none(),
                    "round {round} (seed {seed}): acknowledged cancellation of {token} lost"
                );
            }
            if let Some(found) = found {
                assert_eq!((found.branch, found.slot), (BranchId(b), s));
                // Cancel it, so the next round starts empty and the check below means something.
                book.release(*token).unwrap();
            }
        }
        // Nothing is booked that the child did not attempt, and nothing is overbooked.
        for b in 0..BRANCHES {
            for (s, st) in book.availability(BranchId(b), ..) {
                assert_eq!(
                    st.booked, 0,
                    "round {round} (seed {seed}): branch {b} slot {s} has bookings nobody made"
                );
                assert_eq!(st.held, 0, "holds are not restored");
            }
        }
        book.check_invariants().unwrap();
    }
    println!(
        "{rounds} rounds in {:.1} s: {acknowledged} acknowledged changes checked; recovered \
         from a checkpoint {checkpoints_seen} times; {torn_seen} torn bytes cut",
        started.elapsed().as_secs_f64()
    );
    assert!(
        acknowledged > rounds as usize,
        "the children barely ran: {acknowledged}"
    );
}

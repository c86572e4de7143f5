//! surgegate beside its alternatives, each comparison inside one criterion run.
//!
//! Groups:
//! - `book_cycle`: reserve -> confirm -> release, on 1 and 2 threads, spread over 300 branches and
//!   all on one hot slot: surgegate, a `parking_lot::Mutex` around hash maps, and `DashMap`s.
//!   The baselines do the same work: a CSPRNG token per hold, an expiry check on confirm, one
//!   active hold per applicant, ahash everywhere.
//! - `book_floor`: reserve -> release against the physical floor, a bare compare-and-swap
//!   decrement and an increment on a preallocated `AtomicU32` array, same access pattern.
//! - `earliest`: `reserve_earliest` on a branch whose first 90% of 5 000 slots are full, against
//!   a direct `reserve` of the first free slot (each followed by a release).
//! - `admission`: the admission decision of an idle room (its GCRA behind the room's lock) against
//!   governor's `check()` at the same rate and burst, both on fake clocks advanced 1 us per call;
//!   and a whole idle-room `join` + `finish`.
//! - `room`: `join` + `poll` (+ `finish`, to hold the line at N) at 1 000, 100 000 and 1 000 000
//!   waiting, and a `poll` of a random waiting visitor at each size.
//!
//! `cargo run --release --example bench_report` turns the saved estimates into BENCHMARKS.md.

use std::collections::HashMap;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group};
use dashmap::DashMap;
use rand::RngExt;
use surgegate::AllocationRound;
use surgegate::book::Preference;
use surgegate::room::Gcra;
use surgegate::{
    ApplicantId, BranchId, Clock, Entry, ManualClock, SlotBook, TicketToken, VisitorId, WaitingRoom,
};

const BRANCHES: u32 = 300;
const SLOTS: u32 = 30 * 16;
const CAPACITY: u32 = 1_000;
const TTL: Duration = Duration::from_secs(600);

type Hasher = ahash::RandomState;

/// Runs `work(thread, n)` on `threads` threads, `iters / threads` calls each, and returns the
/// wall time from the moment all are released: time per call, whatever the thread count.
fn on_threads(threads: usize, iters: u64, work: impl Fn(usize, u64) + Sync) -> Duration {
    let barrier = Barrier::new(threads + 1);
    let per = (iters / threads as u64).max(1);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (barrier, work) = (&barrier, &work);
            s.spawn(move || {
                barrier.wait();
                work(t, per);
            });
        }
        barrier.wait();
        let start = Instant::now();
        // The scope joins every thread before returning.
        (start, ())
    })
    .0
    .elapsed()
}

/// A fixed pseudo-random access pattern, so every contender sees the same slots.
fn pattern(seed: u64, hot: bool) -> Vec<(u32, u32)> {
    let mut x = seed | 1;
    (0..65_536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if hot {
                (0, 0)
            } else {
                (
                    (x % u64::from(BRANCHES)) as u32,
                    ((x >> 32) % u64::from(SLOTS)) as u32,
                )
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The contenders.

trait Book: Sync {
    fn reserve(&self, branch: u32, slot: u32, applicant: u64) -> Option<u128>;
    fn confirm(&self, token: u128) -> bool;
    fn release(&self, token: u128) -> bool;
}

struct Surgegate(SlotBook<ManualClock>);

impl Surgegate {
    fn new(clock: &ManualClock) -> Self {
        let book = SlotBook::builder()
            .hold_ttl(TTL)
            .max_slots_per_branch(8192)
            .clock(clock.clone())
            .build();
        for b in 0..BRANCHES {
            for s in 0..SLOTS {
                book.set_capacity(BranchId(b), s, CAPACITY).unwrap();
            }
        }
        Self(book)
    }
}

impl Book for Surgegate {
    fn reserve(&self, branch: u32, slot: u32, applicant: u64) -> Option<u128> {
        self.0
            .reserve(BranchId(branch), slot, ApplicantId(applicant))
            .ok()
            .map(|h| h.token.to_u128())
    }
    fn confirm(&self, token: u128) -> bool {
        self.0
            .confirm(surgegate::HoldToken::from_u128(token))
            .is_ok()
    }
    fn release(&self, token: u128) -> bool {
        self.0
            .release(surgegate::HoldToken::from_u128(token))
            .is_ok()
    }
}

#[derive(Clone, Copy)]
struct BaselineHold {
    branch: u32,
    slot: u32,
    applicant: u64,
    expires_ns: u64,
    booked: bool,
}

/// (a) What a portal developer writes first: one lock around the maps.
struct MutexBook {
    clock: ManualClock,
    inner: parking_lot::Mutex<MutexInner>,
}

struct MutexInner {
    slots: HashMap<(u32, u32), (u32, u32), Hasher>,
    holds: HashMap<u128, BaselineHold, Hasher>,
    applicants: HashMap<u64, u32, Hasher>,
}

impl MutexBook {
    fn new(clock: &ManualClock) -> Self {
        let mut slots = HashMap::with_hasher(Hasher::new());
        for b in 0..BRANCHES {
            for s in 0..SLOTS {
                slots.insert((b, s), (CAPACITY, 0));
            }
        }
        Self {
            clock: clock.clone(),
            inner: parking_lot::Mutex::new(MutexInner {
                slots,
                holds: HashMap::with_hasher(Hasher::new()),
                applicants: HashMap::with_hasher(Hasher::new()),
            }),
        }
    }
}

impl Book for MutexBook {
    fn reserve(&self, branch: u32, slot: u32, applicant: u64) -> Option<u128> {
        let now = self.clock.now().as_nanos() as u64;
        let token = rand::rng().random::<u128>();
        let mut g = self.inner.lock();
        let inner = &mut *g;
        let active = inner.applicants.entry(applicant).or_insert(0);
        if *active >= 1 {
            return None;
        }
        let (cap, taken) = inner.slots.get_mut(&(branch, slot))?;
        if *taken >= *cap {
            return None;
        }
        *taken += 1;
        *active += 1;
        let expires_ns = now + TTL.as_nanos() as u64;
        inner.holds.insert(
            token,
            BaselineHold {
                branch,
                slot,
                applicant,
                expires_ns,
                booked: false,
            },
        );
        Some(token)
    }
    fn confirm(&self, token: u128) -> bool {
        let now = self.clock.now().as_nanos() as u64;
        let mut g = self.inner.lock();
        match g.holds.get_mut(&token) {
            Some(h) if h.booked || h.expires_ns > now => {
                h.booked = true;
                true
            }
            _ => false,
        }
    }
    fn release(&self, token: u128) -> bool {
        let mut g = self.inner.lock();
        let Some(h) = g.holds.remove(&token) else {
            return false;
        };
        if let Some((_, taken)) = g.slots.get_mut(&(h.branch, h.slot)) {
            *taken -= 1;
        }
        if let Some(n) = g.applicants.get_mut(&h.applicant) {
            *n -= 1;
            if *n == 0 {
                g.applicants.remove(&h.applicant);
            }
        }
        true
    }
}

/// (b) DashMaps: counts per (branch, slot), holds by token, active holds by applicant.
struct DashBook {
    clock: ManualClock,
    slots: DashMap<(u32, u32), (u32, u32), Hasher>,
    holds: DashMap<u128, BaselineHold, Hasher>,
    applicants: DashMap<u64, u32, Hasher>,
}

impl DashBook {
    fn new(clock: &ManualClock) -> Self {
        let slots = DashMap::with_hasher(Hasher::new());
        for b in 0..BRANCHES {
            for s in 0..SLOTS {
                slots.insert((b, s), (CAPACITY, 0));
            }
        }
        Self {
            clock: clock.clone(),
            slots,
            holds: DashMap::with_hasher(Hasher::new()),
            applicants: DashMap::with_hasher(Hasher::new()),
        }
    }
}

impl Book for DashBook {
    fn reserve(&self, branch: u32, slot: u32, applicant: u64) -> Option<u128> {
        let now = self.clock.now().as_nanos() as u64;
        let token = rand::rng().random::<u128>();
        let mut active = self.applicants.entry(applicant).or_insert(0);
        if *active >= 1 {
            return None;
        }
        {
            let mut counts = self.slots.get_mut(&(branch, slot))?;
            if counts.1 >= counts.0 {
                return None;
            }
            counts.1 += 1;
        }
        *active += 1;
        drop(active);
        let expires_ns = now + TTL.as_nanos() as u64;
        self.holds.insert(
            token,
            BaselineHold {
                branch,
                slot,
                applicant,
                expires_ns,
                booked: false,
            },
        );
        Some(token)
    }
    fn confirm(&self, token: u128) -> bool {
        let now = self.clock.now().as_nanos() as u64;
        match self.holds.get_mut(&token) {
            Some(mut h) if h.booked || h.expires_ns > now => {
                h.booked = true;
                true
            }
            _ => false,
        }
    }
    fn release(&self, token: u128) -> bool {
        let Some((_, h)) = self.holds.remove(&token) else {
            return false;
        };
        if let Some(mut counts) = self.slots.get_mut(&(h.branch, h.slot)) {
            counts.1 -= 1;
        }
        self.applicants.remove_if_mut(&h.applicant, |_, n| {
            *n -= 1;
            *n == 0
        });
        true
    }
}

/// (c) The floor: remaining units per slot in a preallocated array; a hold is a CAS decrement.
struct Floor(Vec<AtomicU32>);

impl Floor {
    fn new() -> Self {
        Self(
            (0..BRANCHES * SLOTS)
                .map(|_| AtomicU32::new(CAPACITY))
                .collect(),
        )
    }
    fn reserve(&self, branch: u32, slot: u32) -> bool {
        let cell = &self.0[(branch * SLOTS + slot) as usize];
        let mut left = cell.load(Ordering::Relaxed);
        while left > 0 {
            match cell.compare_exchange_weak(left, left - 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(actual) => left = actual,
            }
        }
        false
    }
    fn release(&self, branch: u32, slot: u32) {
        self.0[(branch * SLOTS + slot) as usize].fetch_add(1, Ordering::AcqRel);
    }
}

fn cycle(book: &dyn Book, pattern: &[(u32, u32)], thread: usize, n: u64, confirm: bool) {
    let base = (thread as u64 + 1) << 40;
    for i in 0..n {
        let (b, s) = pattern[(i as usize + thread * 7919) % pattern.len()];
        let token = book.reserve(b, s, base + i).expect("room in the slot");
        if confirm {
            assert!(book.confirm(token));
        }
        assert!(book.release(token));
    }
}

/// One thread's share of reserve -> release on the CAS floor, same access pattern as `cycle`.
fn floor_cycle(floor: &Floor, pattern: &[(u32, u32)], thread: usize, n: u64) {
    for i in 0..n {
        let (b, s) = pattern[(i as usize + thread * 7919) % pattern.len()];
        assert!(floor.reserve(b, s));
        floor.release(b, s);
    }
}

/// `n` steps of arithmetic that touch no shared memory, the baseline of perfect scaling.
fn compute_alone(n: u64) {
    let mut x = 1u64;
    for i in 0..n {
        x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
    }
    black_box(x);
}

/// Slots of the `earliest` branch; the first 90% are held, so the first free one is at 90%.
const EARLIEST_SLOTS: u32 = 5_000;
const EARLIEST_FREE: u32 = EARLIEST_SLOTS * 9 / 10;

/// Branches 1 to 4, each with `EARLIEST_SLOTS` one-unit slots, all but the last 10% held.
fn earliest_book() -> SlotBook<ManualClock> {
    let book = SlotBook::builder()
        .hold_ttl(Duration::from_secs(86_400))
        .max_slots_per_branch(EARLIEST_SLOTS)
        .max_live_holds(1 << 20)
        .clock(ManualClock::new())
        .build();
    // Four branches of the same shape, for `reserve_earliest_among`.
    for b in 1..=4 {
        for s in 0..EARLIEST_SLOTS {
            book.set_capacity(BranchId(b), s, 1).unwrap();
        }
        for s in 0..EARLIEST_FREE {
            let a = ApplicantId(u64::from(b) << 40 | u64::from(s) | 1 << 50);
            book.reserve(BranchId(b), s, a).unwrap();
        }
    }
    book
}

/// As `earliest_cycle`, by `reserve_earliest_among` over `branches`.
fn among_cycle(
    book: &SlotBook<ManualClock>,
    applicant: u64,
    branches: &[BranchId],
    prefer: Preference,
) {
    let h = book
        .reserve_among(branches, 0..EARLIEST_SLOTS, ApplicantId(applicant), prefer)
        .unwrap();
    debug_assert_eq!(h.slot, EARLIEST_FREE);
    book.release(black_box(h.token)).unwrap();
}

/// A fresh applicant takes the first free slot of `earliest_book`, by `reserve_earliest` over
/// the whole branch or by a direct `reserve`, and releases it.
fn earliest_cycle(book: &SlotBook<ManualClock>, applicant: u64, direct: bool) {
    let a = ApplicantId(applicant);
    let h = if direct {
        book.reserve(BranchId(1), EARLIEST_FREE, a).unwrap()
    } else {
        book.reserve_earliest(BranchId(1), 0..EARLIEST_SLOTS, a)
            .unwrap()
    };
    debug_assert_eq!(h.slot, EARLIEST_FREE);
    book.release(black_box(h.token)).unwrap();
}

/// Rate and burst of the `admission` comparison; both fake clocks advance one step per call, so
/// every decision admits.
const ADMIT_RATE: u32 = 1_000_000;
const ADMIT_BURST: u32 = 10;
const ADMIT_STEP: Duration = Duration::from_micros(1);

/// governor's decision: advance its fake clock, `check()`.
fn governor_decision() -> impl Fn() {
    let clock = governor::clock::FakeRelativeClock::default();
    let quota = governor::Quota::per_second(NonZeroU32::new(ADMIT_RATE).unwrap())
        .allow_burst(NonZeroU32::new(ADMIT_BURST).unwrap());
    let limiter = governor::RateLimiter::direct_with_clock(quota, clock.clone());
    move || {
        clock.advance(ADMIT_STEP);
        assert!(limiter.check().is_ok());
    }
}

/// The room's decision: its GCRA behind the room's lock, lock included.
fn gcra_decision() -> impl Fn() {
    let clock = ManualClock::new();
    let gcra = parking_lot::Mutex::new(Gcra::new(ADMIT_RATE, ADMIT_BURST).unwrap());
    move || {
        clock.advance(ADMIT_STEP);
        assert!(gcra.lock().try_admit(clock.now()));
    }
}

/// A paused room with `waiting` visitors (numbered from 0) in line, and their tokens.
fn paused_room(waiting: u64) -> (WaitingRoom<ManualClock>, Vec<TicketToken>) {
    let room = WaitingRoom::builder()
        .rate_per_second(1)
        .burst(1)
        .max_waiting(2_000_000)
        .checkin_timeout(Duration::from_secs(86_400))
        .clock(ManualClock::new())
        .build();
    room.pause();
    let tokens = (0..waiting)
        .map(|v| match room.join(VisitorId(v)).unwrap() {
            Entry::Waiting(t) => t.token,
            Entry::Admitted(_) => unreachable!("paused"),
        })
        .collect();
    (room, tokens)
}

/// A new visitor joins the back of the line, polls once, and leaves, so the line keeps its length.
fn join_poll_leave(room: &WaitingRoom<ManualClock>, visitor: u64) {
    let Entry::Waiting(t) = room.join(VisitorId(visitor)).unwrap() else {
        unreachable!("paused")
    };
    black_box(room.poll(t.token).unwrap());
    room.finish(t.token).unwrap();
}

fn book_cycle(c: &mut Criterion) {
    let clock = ManualClock::new();
    let books: [(&str, Box<dyn Book>); 3] = [
        ("surgegate", Box::new(Surgegate::new(&clock))),
        ("mutex", Box::new(MutexBook::new(&clock))),
        ("dashmap", Box::new(DashBook::new(&clock))),
    ];
    let mut g = c.benchmark_group("book_cycle");
    for (pattern_name, hot) in [("spread", false), ("hot", true)] {
        let pattern = pattern(0x5eed, hot);
        for threads in [1usize, 2] {
            for (name, book) in &books {
                let id = BenchmarkId::new(format!("{name}/{pattern_name}"), threads);
                g.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        on_threads(threads, iters, |t, n| {
                            cycle(book.as_ref(), &pattern, t, n, true)
                        })
                    })
                });
            }
        }
    }
    g.finish();
}

fn book_floor(c: &mut Criterion) {
    let clock = ManualClock::new();
    let book = Surgegate::new(&clock);
    let floor = Floor::new();
    let pattern = pattern(0xf100, false);
    let mut g = c.benchmark_group("book_floor");
    for threads in [1usize, 2] {
        g.bench_function(
            BenchmarkId::new("surgegate/reserve_release", threads),
            |b| {
                b.iter_custom(|iters| {
                    on_threads(threads, iters, |t, n| cycle(&book, &pattern, t, n, false))
                })
            },
        );
        g.bench_function(
            BenchmarkId::new("cas_floor/reserve_release", threads),
            |b| {
                b.iter_custom(|iters| {
                    on_threads(threads, iters, |t, n| floor_cycle(&floor, &pattern, t, n))
                })
            },
        );
    }
    g.finish();
}

fn earliest(c: &mut Criterion) {
    let book = earliest_book();
    let mut g = c.benchmark_group("earliest");
    let mut applicant = 0u64;
    g.bench_function("reserve_earliest_90pct_full", |b| {
        b.iter(|| {
            applicant += 1;
            earliest_cycle(&book, applicant, false);
        })
    });
    g.bench_function("reserve_direct", |b| {
        b.iter(|| {
            applicant += 1;
            earliest_cycle(&book, applicant, true);
        })
    });
    let four = [BranchId(1), BranchId(2), BranchId(3), BranchId(4)];
    for (name, branches, prefer) in [
        ("among_1_branch", &four[..1], Preference::EarliestSlot),
        (
            "among_4_branches_earliest_slot",
            &four[..],
            Preference::EarliestSlot,
        ),
        (
            "among_4_branches_first_branch",
            &four[..],
            Preference::FirstBranch,
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                applicant += 1;
                among_cycle(&book, applicant, branches, prefer);
            })
        });
    }
    g.finish();
}

/// Applicants, branches and slots of the `alloc` round: a million requests for a million units.
const ROUND_APPLICANTS: u64 = 1_000_000;
const ROUND_BRANCHES: u32 = 1_000;
const ROUND_SLOTS: u32 = 100;

/// A book with `ROUND_BRANCHES × ROUND_SLOTS` slots of 10 and a round of a million requests,
/// each ranking its branch and the next one.
fn round_setup() -> (SlotBook<ManualClock>, AllocationRound) {
    let book = SlotBook::builder()
        .max_slots_per_branch(ROUND_SLOTS)
        .max_live_holds(1 << 21)
        .clock(ManualClock::new())
        .build();
    for b in 0..ROUND_BRANCHES {
        for s in 0..ROUND_SLOTS {
            book.set_capacity(BranchId(b), s, 10).unwrap();
        }
    }
    let mut round = AllocationRound::new(42);
    for a in 0..ROUND_APPLICANTS {
        let b = (a.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as u32 % ROUND_BRANCHES;
        let next = (b + 1) % ROUND_BRANCHES;
        let prefs = [
            (BranchId(b), 0..ROUND_SLOTS),
            (BranchId(next), 0..ROUND_SLOTS),
        ];
        round.request(ApplicantId(a), &prefs).unwrap();
    }
    (book, round)
}

/// Closing a round of a million requests (the draw and a million `reserve_earliest`).
fn alloc(c: &mut Criterion) {
    let mut g = c.benchmark_group("alloc");
    g.sample_size(10);
    g.bench_function("close_round_1m_requests", |b| {
        b.iter_batched(
            round_setup,
            |(book, round)| {
                let outcome = round.close(&book);
                assert!(outcome.holds.len() as u64 > ROUND_APPLICANTS / 2);
                (book, outcome)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn admission(c: &mut Criterion) {
    let mut g = c.benchmark_group("admission");
    g.bench_function("governor_check", |b| b.iter(governor_decision()));
    g.bench_function("surgegate_gcra_locked", |b| b.iter(gcra_decision()));
    {
        let clock = ManualClock::new();
        let room = WaitingRoom::builder()
            .rate_per_second(ADMIT_RATE)
            .burst(ADMIT_BURST)
            .clock(clock.clone())
            .build();
        let mut v = 0u64;
        g.bench_function("surgegate_idle_room_join_finish", |b| {
            b.iter(|| {
                clock.advance(ADMIT_STEP);
                v += 1;
                let Entry::Admitted(pass) = room.join(VisitorId(v)).unwrap() else {
                    panic!("idle room queued")
                };
                room.finish(pass.token).unwrap();
            })
        });
    }
    g.finish();
}

fn room(c: &mut Criterion) {
    let mut g = c.benchmark_group("room");
    for waiting in [1_000u64, 100_000, 1_000_000] {
        let (room, tokens) = paused_room(waiting);
        let mut v = 1u64 << 40;
        g.bench_function(BenchmarkId::new("join_poll_finish", waiting), |b| {
            b.iter(|| {
                v += 1;
                join_poll_leave(&room, v);
            })
        });
        let mut x = 0x1234_5678u64;
        g.bench_function(BenchmarkId::new("poll_random_waiting", waiting), |b| {
            b.iter(|| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                black_box(room.poll(tokens[(x % waiting) as usize]).unwrap());
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(800))
        .measurement_time(Duration::from_secs(3))
}

/// Times `n` calls of `op` on this thread.
fn timed(n: u64, mut op: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        op();
    }
    start.elapsed()
}

/// Every target comparison again, interleaved: in each of `ROUNDS` rounds both sides run a ~10 ms
/// slice, back to back, and the per-round ratio is kept. On a shared machine whose speed drifts
/// over seconds, the median of interleaved ratios is far steadier than a ratio of two criterion
/// estimates taken minutes apart. Written to `target/criterion/paired.json` for `bench_report`.
fn paired() {
    const ROUNDS: usize = 41;
    /// ns per call of one slice of about 10 ms.
    fn slice(f: &dyn Fn(u64) -> Duration) -> f64 {
        let mut n = 1_000u64;
        loop {
            let t = f(n);
            if t >= Duration::from_millis(10) || n >= 1 << 26 {
                return t.as_nanos() as f64 / n as f64;
            }
            n *= 2;
        }
    }
    /// Median over the rounds of `numerator / denominator`.
    fn ratio(numerator: &dyn Fn(u64) -> Duration, denominator: &dyn Fn(u64) -> Duration) -> f64 {
        let mut r: Vec<f64> = (0..ROUNDS)
            .map(|_| slice(numerator) / slice(denominator))
            .collect();
        median(&mut r)
    }

    let clock = ManualClock::new();
    let surgegate = Surgegate::new(&clock);
    let mutex = MutexBook::new(&clock);
    let dash = DashBook::new(&clock);
    let floor = Floor::new();
    let mut json: Vec<(String, f64)> = Vec::new();

    for (name, hot) in [("spread", false), ("hot", true)] {
        let p = pattern(0x5eed, hot);
        let ours = |n| on_threads(2, n, |t, k| cycle(&surgegate, &p, t, k, true));
        let m = |n| on_threads(2, n, |t, k| cycle(&mutex, &p, t, k, true));
        let d = |n| on_threads(2, n, |t, k| cycle(&dash, &p, t, k, true));
        json.push((
            format!("cycle_{name}_2_mutex_over_surgegate"),
            ratio(&m, &ours),
        ));
        json.push((
            format!("cycle_{name}_2_dashmap_over_surgegate"),
            ratio(&d, &ours),
        ));
    }
    let p = pattern(0xf100, false);
    for threads in [1usize, 2] {
        let ours = |n| on_threads(threads, n, |t, k| cycle(&surgegate, &p, t, k, false));
        let f = |n| on_threads(threads, n, |t, k| floor_cycle(&floor, &p, t, k));
        json.push((
            format!("reserve_release_{threads}_surgegate_over_floor"),
            ratio(&ours, &f),
        ));
    }
    // How two threads scale on this machine, per operation (2 threads / 1 thread: 1.0 is no
    // gain, 0.5 is perfect): the CAS floor, which shares cache lines between the cores, and a
    // loop that shares nothing.
    let (floor_ref, pattern_ref) = (&floor, &p);
    let floor_on = |threads: usize| {
        move |n| on_threads(threads, n, |t, k| floor_cycle(floor_ref, pattern_ref, t, k))
    };
    json.push((
        "scaling_floor_2_over_1".into(),
        ratio(&floor_on(2), &floor_on(1)),
    ));
    let alone_on = |threads: usize| move |n| on_threads(threads, n, |_, k| compute_alone(k));
    json.push((
        "scaling_no_sharing_2_over_1".into(),
        ratio(&alone_on(2), &alone_on(1)),
    ));
    drop((surgegate, mutex, dash, floor));

    {
        let book = earliest_book();
        let next = std::cell::Cell::new(0u64);
        let cycle_of = |direct: bool| {
            let (book, next) = (&book, &next);
            move |n| {
                timed(n, || {
                    next.set(next.get() + 1);
                    earliest_cycle(book, next.get(), direct);
                })
            }
        };
        json.push((
            "earliest_over_direct".into(),
            ratio(&cycle_of(false), &cycle_of(true)),
        ));
    }
    {
        let (ours, theirs) = (gcra_decision(), governor_decision());
        json.push((
            "admission_surgegate_over_governor".into(),
            ratio(&|n| timed(n, &ours), &|n| timed(n, &theirs)),
        ));
    }
    {
        let rooms: Vec<(WaitingRoom<ManualClock>, std::cell::Cell<u64>)> = [1_000u64, 1_000_000]
            .into_iter()
            .map(|waiting| (paused_room(waiting).0, std::cell::Cell::new(1 << 40)))
            .collect();
        let join_poll = |i: usize| {
            let (room, next) = &rooms[i];
            move |n| {
                timed(n, || {
                    next.set(next.get() + 1);
                    join_poll_leave(room, next.get());
                })
            }
        };
        json.push((
            "join_poll_1m_over_1k".into(),
            ratio(&join_poll(1), &join_poll(0)),
        ));
    }

    let body: Vec<String> = json
        .iter()
        .map(|(k, v)| format!("\"{k}\":{v:.4}"))
        .collect();
    let out = format!("{{{}}}\n", body.join(","));
    print!("paired medians: {out}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/criterion");
    std::fs::create_dir_all(&dir).expect("target/criterion is writable");
    std::fs::write(dir.join("paired.json"), out).expect("paired.json is writable");
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

criterion_group! {
    name = benches;
    config = config();
    targets = book_cycle, book_floor, earliest, alloc, admission, room
}

fn main() {
    benches();
    // Runs with the criterion groups, unless a filter that excludes it was given
    // (`cargo bench --bench surge -- room` runs the room group only).
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if filter.is_none_or(|f| "paired".contains(&f) || f.contains("paired")) {
        paired();
    }
    Criterion::default().configure_from_args().final_summary();
}

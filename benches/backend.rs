//! The in-memory reserve -> confirm -> release cycle called directly on `SlotBook` and through
//! `BookBackend` (generic, each future polled once with `Waker::noop()`: the in-process
//! book's futures are ready at once), in one criterion run, on 1 and 2 threads, spread over
//! 300 branches × 480 slots. What the trait costs a caller that may run on either backend.
//!
//! `cargo bench --bench backend`

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Barrier;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use surgegate::{ApplicantId, BookBackend, BranchId, ManualClock, SlotBook};

const BRANCHES: u32 = 300;
const SLOTS: u32 = 30 * 16;

fn book() -> SlotBook<ManualClock> {
    let book = SlotBook::builder()
        .hold_ttl(Duration::from_secs(600))
        .clock(ManualClock::new())
        .build();
    for b in 0..BRANCHES {
        for s in 0..SLOTS {
            book.set_capacity(BranchId(b), s, 1_000).unwrap();
        }
    }
    book
}

/// The output of a future that is ready on its first poll.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => unreachable!("the in-process book's futures are ready at once"),
    }
}

/// Where call `i` of thread `t` goes: a fixed spread over every branch and slot.
fn place(t: u64, i: u64) -> (BranchId, u32, ApplicantId) {
    let x = (t << 40 | i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let branch = BranchId((x >> 40) as u32 % BRANCHES);
    let slot = (x >> 8) as u32 % SLOTS;
    (branch, slot, ApplicantId(t << 40 | i))
}

fn direct(book: &SlotBook<ManualClock>, t: u64, n: u64) {
    for i in 0..n {
        let (branch, slot, applicant) = place(t, i);
        let hold = book.reserve(branch, slot, applicant).unwrap();
        black_box(book.confirm(hold.token).unwrap());
        book.release(hold.token).unwrap();
    }
}

async fn cycle<B: BookBackend>(book: &B, t: u64, i: u64) {
    let (branch, slot, applicant) = place(t, i);
    let hold = book.reserve(branch, slot, applicant).await.unwrap();
    black_box(book.confirm(hold.token).await.unwrap());
    book.release(hold.token).await.unwrap();
}

fn through_trait<B: BookBackend>(book: &B, t: u64, n: u64) {
    for i in 0..n {
        ready(cycle(book, t, i));
    }
}

/// `iters` calls of `work(thread, n)` over `threads` threads; the wall time from their start.
fn on_threads(threads: u64, iters: u64, work: impl Fn(u64, u64) + Sync) -> Duration {
    let barrier = Barrier::new(threads as usize + 1);
    let per = (iters / threads).max(1);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (barrier, work) = (&barrier, &work);
            s.spawn(move || {
                barrier.wait();
                work(t, per);
            });
        }
        barrier.wait();
        Instant::now()
    })
    .elapsed()
}

fn book_cycle_through_the_trait(c: &mut Criterion) {
    let book = book();
    let mut g = c.benchmark_group("book_cycle_trait");
    for threads in [1u64, 2] {
        g.bench_function(BenchmarkId::new("direct", threads), |b| {
            b.iter_custom(|iters| on_threads(threads, iters, |t, n| direct(&book, t, n)))
        });
        g.bench_function(BenchmarkId::new("book_backend", threads), |b| {
            b.iter_custom(|iters| on_threads(threads, iters, |t, n| through_trait(&book, t, n)))
        });
    }
    g.finish();
}

criterion_group!(benches, book_cycle_through_the_trait);
criterion_main!(benches);

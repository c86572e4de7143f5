//! The book half of the launch surge: the [`Books`] on their own simulated clock, driven by each
//! tick's registrations and by the follow-up events (confirmations, cancellations, retries,
//! lapses) the books schedule, with a sample of their figures once a simulated second.

use std::collections::BTreeMap;

use surgegate::ManualClock;

use crate::booking::{BookEvent, Books, Groups, MODES, Mode, ModeReport};
use crate::sim::{Config, Plan};

/// The books' figures at one tick, per mode (`Mode::ALL` order).
#[derive(Clone, Copy)]
pub struct BookSample {
    pub tick: u64,
    /// Bookings held at this tick.
    pub bookings: [u64; MODES],
    /// Of those, held by fast clients.
    pub fast_bookings: [u64; MODES],
    /// Units given back and taken again so far.
    pub given_back_taken: [u64; MODES],
    /// Of those, taken by fast clients.
    pub fast_given_back: [u64; MODES],
}

/// The book half of the simulation, on its own clock and its own events: it depends on the
/// room only through each tick's registrations, so it can run on a thread of its own, a few
/// ticks behind the room, with the same figures.
pub struct BookSide<'a> {
    books: Books<'a>,
    clock: ManualClock,
    /// Book events by the tick they fall due in, in the order they were scheduled.
    wheel: BTreeMap<u64, Vec<(u32, Mode, BookEvent)>>,
    tick_ns: u64,
    /// Ticks per simulated second: a sweep and a sample every this many.
    per_sample: u64,
    /// The tick the book side has reached.
    tick: u64,
    /// The books' figures once a simulated second.
    pub samples: Vec<BookSample>,
    pub registered: u64,
    pub fast_registered: u64,
}

impl<'a> BookSide<'a> {
    pub fn new(cfg: &'a Config, visitors: usize, tick_ns: u64, per_sample: u64) -> Self {
        let clock = ManualClock::new();
        Self {
            books: Books::new(cfg, &clock, crate::sim::capacities(cfg), visitors),
            clock,
            wheel: BTreeMap::new(),
            tick_ns,
            per_sample,
            tick: 0,
            samples: Vec::new(),
            registered: 0,
            fast_registered: 0,
        }
    }

    /// Appointments each mode's book offers.
    pub fn offered(&self) -> u64 {
        self.books.offered
    }

    /// Units the counters' quotas still keep, and those opened to everyone so far.
    pub fn counters(&self) -> (u64, u64) {
        (self.books.counters.kept, self.books.counters.opened)
    }

    /// Runs every tick of its own before `tick` (events, the round, samples), then `tick` with
    /// the visitors who finished registering then.
    pub fn step(
        &mut self,
        pool: &rayon::ThreadPool,
        plans: &[Plan],
        tick: u64,
        registered: &[u32],
    ) {
        while let Some(t) = self.next_own_tick().filter(|&t| t < tick) {
            self.run_tick(pool, plans, t, &[]);
        }
        self.run_tick(pool, plans, tick, registered);
    }

    /// Once the room is done (its last tick already stepped): runs its own ticks until nothing
    /// is left, and returns the tick it finished at.
    pub fn drain(&mut self, pool: &rayon::ThreadPool, plans: &[Plan]) -> u64 {
        while !(self.wheel.is_empty() && self.books.done()) {
            let t = self
                .next_own_tick()
                .expect("events or a round are due while not done");
            self.run_tick(pool, plans, t, &[]);
        }
        self.tick
    }

    /// The next tick with work of its own: an event, a round's close, counters' quotas to open,
    /// or a sample.
    fn next_own_tick(&self) -> Option<u64> {
        let sample = (self.tick / self.per_sample + 1) * self.per_sample;
        let event = self.wheel.first_key_value().map(|(&t, _)| t);
        let round = self
            .books
            .round_due_ns()
            .map(|at_ns| at_ns.div_ceil(self.tick_ns));
        let counters = self
            .books
            .counters
            .due_ns()
            .map(|at_ns| at_ns.div_ceil(self.tick_ns));
        [Some(sample), event, round, counters]
            .into_iter()
            .flatten()
            .min()
            .map(|t| t.max(self.tick + 1))
    }

    fn run_tick(
        &mut self,
        pool: &rayon::ThreadPool,
        plans: &[Plan],
        tick: u64,
        registered: &[u32],
    ) {
        debug_assert!(tick >= self.tick);
        self.clock.advance(std::time::Duration::from_nanos(
            self.tick_ns * (tick - self.tick),
        ));
        self.tick = tick;
        let now = tick * self.tick_ns;
        self.books.open_counters(now);
        let mut groups = Groups::new();
        for event in self.wheel.remove(&tick).unwrap_or_default() {
            self.books.add(&mut groups, plans, now, event);
        }
        self.registered += registered.len() as u64;
        self.fast_registered += registered
            .iter()
            .filter(|&&v| plans[v as usize].fast)
            .count() as u64;
        let mut follow = self
            .books
            .registered(pool, now, plans, registered, &mut groups);
        follow.extend(self.books.work(pool, now, plans, groups));
        for (at_ns, v, mode, e) in follow {
            self.wheel
                .entry(at_ns.div_ceil(self.tick_ns))
                .or_default()
                .push((v, mode, e));
        }
        if tick.is_multiple_of(self.per_sample) {
            self.books.sweep();
            let reports = &self.books.reports;
            self.samples.push(BookSample {
                tick,
                bookings: self.books.bookings_now,
                fast_bookings: self.books.fast_now,
                given_back_taken: reports.each_ref().map(|r| r.given_back_taken),
                fast_given_back: reports.each_ref().map(|r| r.fast_given_back),
            });
        }
    }

    /// Lets every abandoned hold lapse, checks each book, and returns the per-mode figures and
    /// the library calls made on this side.
    pub fn finish(
        self,
        pool: &rayon::ThreadPool,
        hold_ttl_secs: f64,
    ) -> ([ModeReport; MODES], u64) {
        self.clock
            .advance(std::time::Duration::from_secs_f64(hold_ttl_secs));
        self.books.finish(pool)
    }
}

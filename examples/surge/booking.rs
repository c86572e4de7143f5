//! The appointment step of the launch surge, four ways side by side on four `SlotBook`s with
//! the same capacities, fed by the same registrations:
//!
//! - **one branch**: `reserve_earliest` at the visitor's own branch, first come first served;
//! - **alternatives**: `reserve_earliest_among` over the visitor's 1–4 acceptable branches (all in
//!   its city), first come first served: the earliest slot with room at any of them;
//! - **round**: whoever finishes registering in the first `round_secs` joins their city's
//!   `AllocationRound` with the same branches as ranked preferences; at its close it hands out
//!   holds in an order drawn from the city's seed. (A city's applicants compete only for its
//!   branches, so a round per city is the same kind of draw as one for the country, and the
//!   cities' rounds close in parallel.) Every `hold_ttl` after that (once the last round's holds
//!   are confirmed or lapsed), a further round among those still left out hands out what lapsed
//!   or was cancelled meanwhile, up to [`ROUNDS`] rounds, or until a city's round places nobody.
//!   Round applicants never reserve directly (the portal takes their requests only through
//!   rounds); registrations after the first round's close reserve as in *alternatives*;
//! - **standby**: as *alternatives*, and an applicant who finds nothing joins the book's standby
//!   line over the same branches and days: a unit given back is held for the earliest request
//!   that covers it before any reservation can take it. Humans look for their offer every
//!   `standby_check_secs`, fast clients at every retry; a request that waited `standby_secs`
//!   leaves the line.
//!
//! Fast clients (bots) who find nothing when they reserve directly retry every `fast_retry_ms`
//! for `fast_retry_secs`, and so catch units that lapsed holds or cancellations give back.
//! Humans ask once.
//!
//! Book work runs in groups of one (mode, city): a visitor's branches all lie in its city, so
//! calls that could race for a unit are on one thread, in a fixed order, and the figures do not
//! depend on the number of threads.

use std::collections::BTreeMap;

use rayon::prelude::*;
use surgegate::{AllocationRound, BranchId, HoldToken, ManualClock, ReserveError, SlotBook};

use crate::calls::{Held, Outcome, group_work, request};
use crate::counters::Counters;
pub use crate::modes::{MODES, Mode, ModeReport};
use crate::sim::{Config, PARALLEL_MIN, Plan, par_map_if};

/// The most rounds (the first and those for units given back) in round mode.
pub const ROUNDS: u32 = 4;

/// Book events of one visitor under one mode.
#[derive(Clone, Copy, Debug)]
pub enum BookEvent {
    Confirm,
    Cancel,
    /// A fast client tries again after finding nothing.
    Retry,
    /// A hold its applicant will not confirm reaches its expiry and gives its unit back.
    Lapse,
    /// A visitor on standby looks for its offer (or leaves, once it has waited its time).
    Check,
}

/// A visitor's appointment under one mode.
#[derive(Clone, Copy, Default)]
pub struct Seat {
    pub hold: Option<HoldToken>,
    branch: u32,
    slot: u32,
    /// Until when a fast client keeps retrying (0: has not failed yet).
    retry_until_ns: u64,
    /// Until when the visitor waits on standby (0: not on standby).
    pub standby_until_ns: u64,
}

/// The work of one (mode, city) group in one tick, in the order it is done.
#[derive(Default)]
pub struct Work {
    pub cancels: Vec<u32>,
    pub confirms: Vec<u32>,
    /// Standby visitors looking for their offer.
    pub checks: Vec<u32>,
    /// Standby visitors whose waiting time is over.
    pub leaves: Vec<u32>,
    /// Fresh requests and fast clients' retries.
    pub reserves: Vec<u32>,
}

/// This tick's book work, by (mode, city).
pub type Groups = BTreeMap<(Mode, u32), Work>;

/// Follow-ups the simulation schedules: (at, visitor, mode, event).
pub type FollowUps = Vec<(u64, u32, Mode, BookEvent)>;

/// The rounds whose close is still due, one per city with applicants left.
struct Rounds {
    at_ns: u64,
    /// 0 for the first round.
    number: u32,
    by_city: BTreeMap<u32, AllocationRound>,
}

/// The published seed of a city's round.
fn round_seed(seed: u64, city: u32, number: u32) -> u64 {
    seed.wrapping_add(u64::from(number)) ^ (u64::from(city) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The books, the rounds, and the simulation's own ledger of them.
pub struct Books<'a> {
    cfg: &'a Config,
    books: [SlotBook<ManualClock>; MODES],
    caps: Vec<u32>,
    slots_per_branch: u32,
    /// The rounds whose close is still due.
    round: Option<Rounds>,
    seats: Vec<[Seat; MODES]>,
    /// Bookings per (mode, branch, slot), from confirm and release results: indexed by
    /// [`Books::booked_at`].
    booked: Vec<u32>,
    /// Units given back and not yet taken again, per (mode, branch, slot), indexed like `booked`.
    given_back: Vec<u32>,
    pub reports: [ModeReport; MODES],
    confirmed: [u64; MODES],
    pub bookings_now: [u64; MODES],
    pub fast_now: [u64; MODES],
    /// Appointments each book offers.
    pub offered: u64,
    /// Library calls made here.
    pub calls: u64,
    /// Which modes run (`Mode::ALL` order).
    ran: [bool; MODES],
    /// The counters' quotas, the same in every book.
    pub counters: Counters,
}

impl<'a> Books<'a> {
    /// The books with every slot opened at the same capacities.
    pub fn new(cfg: &'a Config, clock: &ManualClock, caps: Vec<u32>, visitors: usize) -> Self {
        let ran = Mode::ALL.map(|m| cfg.modes.contains(&m));
        let slots_per_branch = cfg.days * cfg.windows_per_day;
        let book = |shards: u32| {
            SlotBook::builder()
                .hold_ttl(std::time::Duration::from_secs_f64(cfg.hold_ttl_secs))
                .max_active_per_applicant(1)
                .max_branches(cfg.branches.max(1))
                .max_slots_per_branch(slots_per_branch.max(1))
                .shards(shards)
                .clock(clock.clone())
                .build()
        };
        // The standby book has one shard: units that lapse at the same instant pass on to the
        // line in the order of their hold tokens, which come from per-shard counters, and
        // applicants are spread over shards by a seed of each book's own; with one shard (and
        // its calls in one order, see `work`) the figures are the same in every run.
        let books = [book(64), book(64), book(64), book(1)];
        let counters = Counters::new(cfg, &caps);
        let mut offered = 0;
        let mut calls = 0;
        for b in 0..cfg.branches {
            for s in 0..slots_per_branch {
                for mode in Mode::ALL.into_iter().filter(|&m| ran[m as usize]) {
                    books[mode as usize]
                        .set_capacity(BranchId(b), s, caps[b as usize])
                        .expect("capacity within limits");
                    calls += 1 + counters.keep(&books[mode as usize], b, s);
                }
                offered += u64::from(caps[b as usize]);
            }
        }
        let booked = vec![0; Mode::ALL.len() * caps.len() * slots_per_branch as usize];
        let given_back = vec![0; booked.len()];
        Self {
            cfg,
            counters,
            given_back,
            books,
            caps,
            slots_per_branch,
            round: ran[Mode::Round as usize].then(|| Rounds {
                at_ns: (cfg.round_secs * 1e9) as u64,
                number: 0,
                by_city: BTreeMap::new(),
            }),
            seats: vec![[Seat::default(); MODES]; visitors],
            booked,
            reports: Mode::ALL.map(|m| ModeReport {
                mode: m.name(),
                ran: ran[m as usize],
                ..ModeReport::default()
            }),
            ran,
            confirmed: [0; MODES],
            bookings_now: [0; MODES],
            fast_now: [0; MODES],
            offered,
            calls,
        }
    }

    /// The modes this run runs, in `Mode::ALL` order.
    fn ran_modes(&self) -> impl Iterator<Item = Mode> + use<> {
        let ran = self.ran;
        Mode::ALL.into_iter().filter(move |&m| ran[m as usize])
    }

    /// Opens the counters' quotas that are due by `now`, in every book.
    pub fn open_counters(&mut self, now: u64) {
        let books: Vec<&SlotBook<ManualClock>> =
            self.ran_modes().map(|m| &self.books[m as usize]).collect();
        self.calls += self.counters.open_due(now, &books);
    }

    /// When the next round closes, while one is still due.
    pub fn round_due_ns(&self) -> Option<u64> {
        self.round.as_ref().map(|r| r.at_ns)
    }

    /// The city a branch lies in.
    pub fn city(&self, branch: u32) -> u32 {
        branch / self.cfg.city_size
    }

    /// Adds one event's work to its group.
    /// A lapse needs no book call: it only records the unit as given back.
    pub fn add(
        &mut self,
        groups: &mut Groups,
        plans: &[Plan],
        now: u64,
        ev: (u32, Mode, BookEvent),
    ) {
        let (v, mode, e) = ev;
        let seat = self.seats[v as usize][mode as usize];
        let branch = match e {
            BookEvent::Retry | BookEvent::Check => plans[v as usize].branches[0],
            BookEvent::Confirm | BookEvent::Cancel => seat.branch,
            BookEvent::Lapse => {
                self.give_back(mode, seat.branch, seat.slot);
                return;
            }
        };
        let work = groups.entry((mode, self.city(branch))).or_default();
        match e {
            BookEvent::Confirm => work.confirms.push(v),
            BookEvent::Cancel => work.cancels.push(v),
            BookEvent::Retry => work.reserves.push(v),
            BookEvent::Check if now >= seat.standby_until_ns => work.leaves.push(v),
            BookEvent::Check => work.checks.push(v),
            BookEvent::Lapse => unreachable!("a lapse returned above"),
        }
    }

    /// Records one unit of `(mode, branch, slot)` as given back, for its next taker to claim.
    fn give_back(&mut self, mode: Mode, branch: u32, slot: u32) {
        let (branches, slots) = (self.caps.len(), self.slots_per_branch);
        self.given_back[booked_at(branches, slots, mode, branch, slot)] += 1;
        self.reports[mode as usize].given_back += 1;
    }

    /// Counts a hold granted on `(mode, branch, slot)` as the next taker of a unit given back
    /// there, if one is waiting.
    fn take_given_back(&mut self, mode: Mode, branch: u32, slot: u32, fast: bool) {
        let (branches, slots) = (self.caps.len(), self.slots_per_branch);
        let waiting = &mut self.given_back[booked_at(branches, slots, mode, branch, slot)];
        if *waiting > 0 {
            *waiting -= 1;
            let report = &mut self.reports[mode as usize];
            report.given_back_taken += 1;
            report.fast_given_back += u64::from(fast);
        }
    }

    /// Those who just registered ask for an appointment under every mode: into the round while it
    /// is open, else into their group. Closes the round first if it is due.
    pub fn registered(
        &mut self,
        pool: &rayon::ThreadPool,
        now: u64,
        plans: &[Plan],
        registered: &[u32],
        groups: &mut Groups,
    ) -> FollowUps {
        let mut follow = FollowUps::new();
        if self.round_due_ns().is_some_and(|at_ns| now >= at_ns) {
            self.close_round(pool, now, plans, &mut follow);
        }
        for &v in registered {
            let p = &plans[v as usize];
            let city = self.city(p.branches[0]);
            for mode in self.ran_modes() {
                match (&mut self.round, mode) {
                    (Some(rounds), Mode::Round) if rounds.number == 0 => {
                        let round = rounds.by_city.entry(city).or_insert_with(|| {
                            AllocationRound::new(round_seed(self.cfg.seed, city, 0))
                        });
                        request(round, p, v, self.slots_per_branch);
                        self.calls += 1;
                    }
                    _ => groups.entry((mode, city)).or_default().reserves.push(v),
                }
            }
        }
        follow
    }

    /// Closes the due rounds, the cities' in parallel: the holds they hand out are confirmed
    /// like any other. Those a city's round leaves out go to its next round, `hold_ttl` later, if
    /// it placed anybody and rounds are left; else they have nothing.
    fn close_round(
        &mut self,
        pool: &rayon::ThreadPool,
        now: u64,
        plans: &[Plan],
        follow: &mut FollowUps,
    ) {
        let Some(rounds) = self.round.take() else {
            return;
        };
        let book = &self.books[Mode::Round as usize];
        let cities: Vec<(u32, AllocationRound)> = rounds.by_city.into_iter().collect();
        let applicants: usize = cities.iter().map(|(_, r)| r.len()).sum();
        let close = |(city, round): (u32, AllocationRound)| (city, round.close(book));
        let outcomes: Vec<_> = if applicants >= PARALLEL_MIN {
            pool.install(|| cities.into_par_iter().map(close).collect())
        } else {
            cities.into_iter().map(close).collect()
        };
        let number = rounds.number + 1;
        let mut next = BTreeMap::new();
        for (city, outcome) in outcomes {
            self.calls += outcome.order.len() as u64;
            let placed = !outcome.holds.is_empty();
            for hold in outcome.holds {
                let v = hold.applicant.0 as u32;
                let r = Ok((hold.token, hold.branch.0, hold.slot));
                self.apply(now, plans, v, Mode::Round, Outcome::Reserved(r), follow);
            }
            if placed && number < ROUNDS && !outcome.unplaced.is_empty() {
                let mut round = AllocationRound::new(round_seed(self.cfg.seed, city, number));
                for a in &outcome.unplaced {
                    let v = a.0 as u32;
                    request(&mut round, &plans[v as usize], v, self.slots_per_branch);
                    self.calls += 1;
                }
                next.insert(city, round);
            } else {
                self.reports[Mode::Round as usize].no_slot += outcome.unplaced.len() as u64;
            }
        }
        if !next.is_empty() {
            self.round = Some(Rounds {
                at_ns: now + (self.cfg.hold_ttl_secs * 1e9) as u64,
                number,
                by_city: next,
            });
        }
    }

    /// Runs the groups (in parallel on `pool`) and applies their results in group order.
    pub fn work(
        &mut self,
        pool: &rayon::ThreadPool,
        now: u64,
        plans: &[Plan],
        groups: Groups,
    ) -> FollowUps {
        let groups: Vec<((Mode, u32), Work)> = groups.into_iter().collect();
        let (books, seats, slots) = (&self.books, &self.seats, self.slots_per_branch);
        let calls: usize = groups
            .iter()
            .map(|(_, w)| {
                w.cancels.len()
                    + w.confirms.len()
                    + w.checks.len()
                    + w.leaves.len()
                    + w.reserves.len()
            })
            .sum();
        let parallel = calls >= PARALLEL_MIN;
        // Each group is a unit of parallel work, except the standby book's, which run as one
        // unit in city order: its line serves requests in the order they joined the whole book,
        // and hold tokens (which order same-instant expiries) come from per-shard counters that
        // every city shares, so only one order of their calls gives the same figures with any
        // number of threads. (Groups sort by mode: the standby ones come last.)
        let standby_from = groups
            .iter()
            .position(|((mode, _), _)| *mode == Mode::Standby)
            .unwrap_or(groups.len());
        let mut units: Vec<&[((Mode, u32), Work)]> = groups[..standby_from].chunks(1).collect();
        if standby_from < groups.len() {
            units.push(&groups[standby_from..]);
        }
        let results: Vec<Vec<(u32, Outcome)>> = par_map_if(pool, parallel, &units, |unit| {
            unit.iter()
                .map(|((mode, _), work)| {
                    group_work(&books[*mode as usize], seats, plans, slots, *mode, work)
                })
                .collect::<Vec<_>>()
        })
        .into_iter()
        .flatten()
        .collect();
        let mut follow = FollowUps::new();
        for (((mode, _), _), results) in groups.iter().zip(results) {
            for (v, r) in results {
                self.calls += 1;
                self.apply(now, plans, v, *mode, r, &mut follow);
            }
        }
        follow
    }

    /// Updates the ledger and the visitor's seat from one call, and plans what follows.
    fn apply(
        &mut self,
        now: u64,
        plans: &[Plan],
        v: u32,
        mode: Mode,
        r: Outcome,
        follow: &mut FollowUps,
    ) {
        let p = &plans[v as usize];
        let m = mode as usize;
        let (branches, slots) = (self.caps.len(), self.slots_per_branch);
        let held = self.seats[v as usize][m];
        match &r {
            // A confirmation that came after the expiry: the hold lapsed and gave its unit back.
            Outcome::Cancelled(true) | Outcome::Confirmed(None) => {
                self.give_back(mode, held.branch, held.slot)
            }
            Outcome::Reserved(Ok((_, branch, slot)))
            | Outcome::Offered(Some((_, branch, slot)))
            | Outcome::Left(Some((_, branch, slot))) => {
                self.take_given_back(mode, *branch, *slot, p.fast)
            }
            _ => {}
        }
        let report = &mut self.reports[m];
        match r {
            Outcome::Cancelled(false) | Outcome::Confirmed(None) => {}
            Outcome::Cancelled(true) => {
                let n = &mut self.booked[booked_at(branches, slots, mode, held.branch, held.slot)];
                *n = n.checked_sub(1).expect("cancelled a booking we counted");
                self.bookings_now[m] -= 1;
                self.fast_now[m] -= u64::from(p.fast);
                report.cancelled += 1;
            }
            Outcome::Confirmed(Some(slot)) => {
                debug_assert_eq!(slot, held.slot);
                self.booked[booked_at(branches, slots, mode, held.branch, slot)] += 1;
                self.bookings_now[m] += 1;
                self.fast_now[m] += u64::from(p.fast);
                self.confirmed[m] += 1;
                if p.cancels {
                    follow.push((now + p.cancel_after_ns, v, mode, BookEvent::Cancel));
                }
            }
            Outcome::Reserved(Ok(h)) | Outcome::Offered(Some(h)) | Outcome::Left(Some(h)) => {
                self.granted(now, p, v, mode, h, follow)
            }
            Outcome::Refused | Outcome::Left(None) => report.no_slot += 1,
            Outcome::Standing => {
                let until_ns = now + (self.cfg.standby_secs * 1e9) as u64;
                self.seats[v as usize][m].standby_until_ns = until_ns;
                self.found_nothing(now, p, v, mode, follow);
            }
            Outcome::Offered(None) => {
                let check_ns = (self.cfg.standby_check_secs * 1e9) as u64;
                follow.push((now + check_ns, v, mode, BookEvent::Check));
            }
            Outcome::Reserved(Err(ReserveError::NoneAvailable)) => {
                self.found_nothing(now, p, v, mode, follow)
            }
            Outcome::Reserved(Err(e)) => panic!("{}: reserve: {e}", mode.name()),
        }
    }

    /// A hold granted (by a reservation, or by standby): confirmed after the applicant's think
    /// time, or left to lapse.
    fn granted(&mut self, now: u64, p: &Plan, v: u32, mode: Mode, h: Held, f: &mut FollowUps) {
        let (token, branch, slot) = h;
        self.reports[mode as usize].holds_granted += 1;
        let seat = &mut self.seats[v as usize][mode as usize];
        (seat.hold, seat.branch, seat.slot) = (Some(token), branch, slot);
        seat.standby_until_ns = 0;
        if p.confirms {
            f.push((now + p.think_ns, v, mode, BookEvent::Confirm));
        } else {
            let ttl_ns = (self.cfg.hold_ttl_secs * 1e9) as u64;
            f.push((now + ttl_ns, v, mode, BookEvent::Lapse));
        }
    }

    /// A reservation found nothing: a fast client retries for `fast_retry_secs`; on standby,
    /// the applicant then looks for its offer now and then; otherwise it has nothing.
    fn found_nothing(&mut self, now: u64, p: &Plan, v: u32, mode: Mode, f: &mut FollowUps) {
        let retry_ns = self.cfg.fast_retry_ms * 1_000_000;
        let seat = &mut self.seats[v as usize][mode as usize];
        if p.fast && seat.retry_until_ns == 0 {
            seat.retry_until_ns = now + (self.cfg.fast_retry_secs * 1e9) as u64;
        }
        if p.fast && now + retry_ns <= seat.retry_until_ns {
            f.push((now + retry_ns, v, mode, BookEvent::Retry));
        } else if seat.standby_until_ns > 0 {
            let check_ns = (self.cfg.standby_check_secs * 1e9) as u64;
            f.push((now + check_ns, v, mode, BookEvent::Check));
        } else {
            self.reports[mode as usize].no_slot += 1;
        }
    }

    /// Reclaims lapsed holds in every book (once a simulated second).
    pub fn sweep(&mut self) {
        for mode in self.ran_modes() {
            self.books[mode as usize].sweep();
            self.calls += 1;
        }
    }

    /// Whether nothing is left to do: the round closed.
    pub fn done(&self) -> bool {
        self.round.is_none()
    }

    /// Lets every abandoned hold lapse (the clock has moved past them), checks each book end to
    /// end against the ledger, and fills in the per-mode figures.
    /// Returns the figures and the library calls made here.
    pub fn finish(mut self, pool: &rayon::ThreadPool) -> ([ModeReport; MODES], u64) {
        let modes: Vec<Mode> = self.ran_modes().collect();
        let books = &self.books;
        // The books' end-to-end checks, each O(n log n), side by side.
        let totals: Vec<_> = pool.install(|| {
            modes
                .par_iter()
                .map(|&m| {
                    books[m as usize].sweep();
                    books[m as usize]
                        .check_invariants()
                        .expect("book invariants at the end")
                })
                .collect()
        });
        for (mode, totals) in modes.into_iter().zip(totals) {
            let m = mode as usize;
            self.calls += 2;
            assert_eq!(totals.holds, 0, "every unconfirmed hold has expired");
            assert_eq!(
                totals.bookings, self.bookings_now[m],
                "the book and the simulation agree on bookings"
            );
            let caps = &self.caps;
            let report = &mut self.reports[m];
            report.bookings = self.bookings_now[m];
            report.fast_bookings = self.fast_now[m];
            report.holds_expired = report.holds_granted - self.confirmed[m];
            // The counters' part still kept counts as unused: the web did not book it.
            report.unused_capacity = self.offered - report.bookings;
            let slots = self.slots_per_branch as usize;
            let start = booked_at(caps.len(), self.slots_per_branch, mode, 0, 0);
            report.overbooked = self.booked[start..start + caps.len() * slots]
                .chunks(slots)
                .zip(caps)
                .map(|(branch, &cap)| branch.iter().filter(|&&n| n > cap).count() as u64)
                .sum();
        }
        (self.reports, self.calls)
    }
}

/// Where `Books::booked` counts the bookings of `(mode, branch, slot)`, with `branches` branches of
/// `slots` slots each.
fn booked_at(branches: usize, slots: u32, mode: Mode, branch: u32, slot: u32) -> usize {
    (mode as usize * branches + branch as usize) * slots as usize + slot as usize
}

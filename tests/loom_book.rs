//! loom models of the SlotBook's protocols: every interleaving of the atomics and locks, up to
//! `LOOM_MAX_PREEMPTIONS` preemptions. Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release -p surgegate --lib --test loom_book --test loom_room loom`.
#![cfg(loom)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use surgegate::{
    ApplicantId, BranchId, Channel, ConfirmError, ManualClock, ReserveError, SlotBook,
};

const B: BranchId = BranchId(1);

fn book(clock: &ManualClock) -> SlotBook<ManualClock> {
    book_with_shards(clock, 1)
}

fn book_with_shards(clock: &ManualClock, shards: u32) -> SlotBook<ManualClock> {
    SlotBook::builder()
        .hold_ttl(Duration::from_secs(10))
        .max_branches(1)
        .max_slots_per_branch(64)
        .shards(shards)
        .clock(clock.clone())
        .build()
}

/// The shard (0 or 1 with two shards) a hold token was issued by: a token's low bits name it.
fn shard_of(token: surgegate::HoldToken) -> u128 {
    token.to_u128() & 1
}

/// An applicant, other than those in `skip`, whose records live in `shard` (of two). Found by
/// probing with throwaway holds on slot 63, released at once; deterministic under loom.
fn applicant_in_shard(
    book: &SlotBook<ManualClock>,
    shard: u128,
    skip: &[ApplicantId],
) -> ApplicantId {
    book.set_capacity(B, 63, 1).unwrap();
    for a in (100..).map(ApplicantId).filter(|a| !skip.contains(a)) {
        let h = book.reserve(B, 63, a).unwrap();
        book.release(h.token).unwrap();
        if shard_of(h.token) == shard {
            return a;
        }
    }
    unreachable!()
}

/// An applicant whose records live in the other shard from `token`'s, so that its calls do not
/// serialise with that token's on a shard lock.
fn applicant_in_other_shard(
    book: &SlotBook<ManualClock>,
    token: surgegate::HoldToken,
) -> ApplicantId {
    applicant_in_shard(book, shard_of(token) ^ 1, &[])
}

/// Runs a model and reports how many executions loom explored.
fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    // Per model, not a static: the models of this file run in parallel.
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = executions.clone();
    // Each reservation reads the clock and the expiry hint a few times: more branch points per
    // execution than loom's default bound of 1 000.
    let mut builder = loom::model::Builder::new();
    builder.max_branches = 10_000;
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    println!(
        "loom model {name}: {} executions",
        executions.load(Ordering::Relaxed)
    );
}

/// Two reservations race for the last unit of a slot while a third thread lowers its capacity.
#[test]
fn loom_two_reservations_race_for_the_last_unit_while_capacity_is_lowered() {
    model("last unit vs lowering", || {
        let clock = ManualClock::new();
        // Two shards, the racers in different ones: their compare-and-swaps race each other,
        // not their shard locks.
        let book = Arc::new(book_with_shards(&clock, 2));
        book.set_capacity(B, 0, 2).unwrap();
        let first = book.reserve(B, 0, ApplicantId(0)).unwrap(); // one unit left
        let racer_a = applicant_in_shard(&book, 0, &[ApplicantId(0)]);
        let racer_b = applicant_in_shard(&book, 1, &[ApplicantId(0)]);
        let _ = first;
        let racers: Vec<_> = [racer_a, racer_b]
            .into_iter()
            .map(|a| {
                let book = book.clone();
                loom::thread::spawn(move || book.reserve(B, 0, a))
            })
            .collect();
        let lower = {
            let book = book.clone();
            loom::thread::spawn(move || book.set_capacity(B, 0, 1).unwrap())
        };
        let results: Vec<_> = racers.into_iter().map(|h| h.join().unwrap()).collect();
        lower.join().unwrap();
        let granted = results.iter().filter(|r| r.is_ok()).count() as u32;
        assert!(granted <= 1, "two holds for one unit: {results:?}");
        for r in &results {
            assert!(matches!(r, Ok(_) | Err(ReserveError::Full)), "{r:?}");
        }
        let st = book.slot(B, 0).unwrap();
        assert_eq!(st.capacity, 1);
        assert_eq!(st.held, 1 + granted, "every granted unit is counted once");
        // Counters, records and the full-slot bitmap agree.
        book.check_invariants().unwrap();
    });
}

/// A confirm races the expiry sweep of the same hold: exactly one of them wins, and the unit is
/// never counted twice or lost.
#[test]
fn loom_confirm_races_the_sweep_of_the_same_hold() {
    model("confirm vs sweep", || {
        let clock = ManualClock::new();
        let book = Arc::new(book(&clock));
        book.set_capacity(B, 0, 1).unwrap();
        let hold = book.reserve(B, 0, ApplicantId(7)).unwrap();
        let confirmer = {
            let book = book.clone();
            loom::thread::spawn(move || book.confirm(hold.token))
        };
        let sweeper = {
            let (book, clock) = (book.clone(), clock.clone());
            loom::thread::spawn(move || {
                clock.advance(Duration::from_secs(10)); // the hold's expiry
                book.sweep()
            })
        };
        let confirmed = confirmer.join().unwrap();
        let swept = sweeper.join().unwrap();
        let st = book.slot(B, 0).unwrap();
        match confirmed {
            Ok(_) => {
                assert_eq!(swept, 0, "a confirmed hold was also swept");
                assert_eq!((st.held, st.booked), (0, 1));
            }
            Err(ConfirmError::Expired) => {
                assert_eq!(
                    swept, 0,
                    "the confirm reclaimed it; the sweep must not again"
                );
                assert_eq!((st.held, st.booked), (0, 0));
            }
            Err(ConfirmError::UnknownToken) => {
                assert_eq!(swept, 1, "the sweep reclaimed it");
                assert_eq!((st.held, st.booked), (0, 0));
            }
            Err(e) => panic!("{e}"),
        }
        assert_eq!(book.check_invariants().unwrap().holds, 0);
    });
}

/// A release races a reservation on a full slot: the reservation succeeds only if it comes after
/// the release, the slot is never over capacity, and the full-slot bitmap ends up exact. Run with
/// both reservations: `reserve` ignores the bitmap, so it can fill the slot between the release's
/// reading and its bit write (the case the re-check in `sync_full` exists for);
/// `reserve_earliest` goes through the bitmap.
#[test]
fn loom_release_races_a_reservation_on_a_full_slot() {
    for direct in [true, false] {
        let name = if direct {
            "release vs reserve on full"
        } else {
            "release vs reserve_earliest on full"
        };
        model(name, move || {
            let clock = ManualClock::new();
            // Two shards, the two applicants in different ones: release and reserve do not
            // serialise on a lock, and their full-bit updates can interleave.
            let book = Arc::new(book_with_shards(&clock, 2));
            book.set_capacity(B, 0, 1).unwrap();
            let hold = book.reserve(B, 0, ApplicantId(1)).unwrap();
            let other = applicant_in_other_shard(&book, hold.token);
            let releaser = {
                let book = book.clone();
                loom::thread::spawn(move || book.release(hold.token))
            };
            let reserver = {
                let book = book.clone();
                loom::thread::spawn(move || {
                    if direct {
                        book.reserve(B, 0, other).map_err(|e| {
                            assert_eq!(e, ReserveError::Full);
                        })
                    } else {
                        book.reserve_earliest(B, 0..63, other).map_err(|e| {
                            assert_eq!(e, ReserveError::NoneAvailable);
                        })
                    }
                })
            };
            releaser.join().unwrap().unwrap();
            let reserved = reserver.join().unwrap();
            let st = book.slot(B, 0).unwrap();
            assert_eq!(st.held, u32::from(reserved.is_ok()));
            // Counters, records and the full bit agree once both are done.
            book.check_invariants().unwrap();
            if reserved.is_err() {
                assert_eq!(
                    book.reserve_earliest(B, 0..63, ApplicantId(3))
                        .unwrap()
                        .slot,
                    0
                );
            }
        });
    }
}

/// Two threads create the same new branch when the book has room for exactly one more: both
/// must get it (a creation in flight must not count against the limit twice).
#[test]
fn loom_two_creations_of_the_same_branch_at_the_limit_both_succeed() {
    model("same new branch at the limit", || {
        let clock = ManualClock::new();
        let book = Arc::new(book(&clock)); // max_branches(1)
        let creators: Vec<_> = (0..2)
            .map(|slot| {
                let book = book.clone();
                loom::thread::spawn(move || book.set_capacity(BranchId(9), slot, 1))
            })
            .collect();
        for h in creators {
            assert!(h.join().unwrap().is_ok(), "a false TooManyBranches");
        }
        assert_eq!(book.check_invariants().unwrap().branches, 1);
        assert!(book.set_capacity(BranchId(10), 0, 1).is_err());
    });
}

/// Two reservations among the same two branches race for the earliest unit: one gets it, the
/// other, having lost its candidate, moves on to the other branch's slot, and neither slot is
/// overbooked.
#[test]
fn loom_two_reservations_among_two_branches_race_for_the_earliest_unit() {
    use surgegate::book::Preference;
    model("two among two branches", || {
        let clock = ManualClock::new();
        let book = Arc::new(
            SlotBook::builder()
                .max_branches(2)
                .max_slots_per_branch(64)
                .shards(2)
                .clock(clock.clone())
                .build(),
        );
        let near = [BranchId(1), BranchId(2)];
        book.set_capacity(near[0], 9, 1).unwrap();
        book.set_capacity(near[1], 3, 1).unwrap();
        let racers: Vec<_> = [ApplicantId(1), ApplicantId(2)]
            .into_iter()
            .map(|a| {
                let book = book.clone();
                loom::thread::spawn(move || {
                    book.reserve_among(&near, 0..64, a, Preference::EarliestSlot)
                })
            })
            .collect();
        let mut got: Vec<(BranchId, u32)> = racers
            .into_iter()
            .map(|r| {
                let h = r.join().unwrap().unwrap();
                (h.branch, h.slot)
            })
            .collect();
        got.sort();
        assert_eq!(got, [(near[0], 9), (near[1], 3)]);
        book.check_invariants().unwrap();
    });
}

/// Two channels race for the last unit of a slot: one from its quota's last unit, the other
/// from the open part's last unit, while a third thread opens the quotas. Nobody gets more than
/// the slot has; the channel with a quota always gets its unit; the counts agree.
#[test]
fn loom_two_channels_race_for_the_last_units() {
    model("two channels, last units", || {
        let clock = ManualClock::new();
        let book = Arc::new(book_with_shards(&clock, 2));
        book.set_capacity(B, 0, 2).unwrap();
        book.set_channel_quota(B, 0, Channel(1), 1).unwrap();
        let racer_a = applicant_in_shard(&book, 0, &[]);
        let racer_b = applicant_in_shard(&book, 1, &[]);
        let on = |channel: u8, a: ApplicantId| {
            let book = book.clone();
            loom::thread::spawn(move || book.reserve_on(Channel(channel), B, 0, a))
        };
        let (one, two) = (on(1, racer_a), on(2, racer_b));
        let opener = {
            let book = book.clone();
            loom::thread::spawn(move || book.open_channel_quotas(B, 0).unwrap())
        };
        let (one, two) = (one.join().unwrap(), two.join().unwrap());
        opener.join().unwrap();
        assert!(one.is_ok(), "the quota's own channel was refused: {one:?}");
        assert!(two.is_ok(), "two units for two racers: {two:?}");
        let st = book.slot(B, 0).unwrap();
        assert_eq!((st.capacity, st.held), (2, 2));
        book.check_invariants().unwrap();
    });
}

/// A plain reservation races a channel's reservation for a slot whose only free unit is kept
/// for that channel, while a unit taken from the quota earlier is released: the plain
/// reservation never gets a kept unit, and a released quota unit goes back to the quota.
#[test]
fn loom_a_plain_reservation_never_takes_a_kept_unit() {
    model("plain vs channel", || {
        let clock = ManualClock::new();
        let book = Arc::new(book_with_shards(&clock, 2));
        book.set_capacity(B, 0, 3).unwrap();
        book.set_channel_quota(B, 0, Channel(1), 2).unwrap();
        book.reserve(B, 0, ApplicantId(50)).unwrap(); // the open part's only unit
        let earlier = book.reserve_on(Channel(1), B, 0, ApplicantId(51)).unwrap();
        let web = applicant_in_shard(&book, 0, &[ApplicantId(50), ApplicantId(51)]);
        let counter = applicant_in_shard(&book, 1, &[ApplicantId(50), ApplicantId(51)]);
        let plain = {
            let book = book.clone();
            loom::thread::spawn(move || book.reserve(B, 0, web))
        };
        let channel = {
            let book = book.clone();
            loom::thread::spawn(move || book.reserve_on(Channel(1), B, 0, counter))
        };
        let release = {
            let book = book.clone();
            loom::thread::spawn(move || book.release(earlier.token).unwrap())
        };
        let (plain, channel) = (plain.join().unwrap(), channel.join().unwrap());
        release.join().unwrap();
        assert_eq!(
            plain,
            Err(ReserveError::Full),
            "a kept unit went to the web"
        );
        assert!(channel.is_ok(), "{channel:?}");
        let q = book.channel_quotas(B, 0).unwrap();
        assert_eq!((q.channels[0].from_quota, q.channels[0].taken), (1, 1));
        assert_eq!(book.slot(B, 0).unwrap().remaining(), 0);
        book.check_invariants().unwrap();
    });
}

/// A hold is released while a standby request waits for its slot and another applicant (in
/// the other shard) reserves the slot: the freed unit goes to the request, never to the
/// reservation, in every interleaving.
#[test]
fn loom_a_freed_unit_goes_to_standby_not_to_a_racing_reserve() {
    model("release vs reserve with standby", || {
        let clock = ManualClock::new();
        let book = Arc::new(book_with_shards(&clock, 2));
        book.set_capacity(B, 0, 1).unwrap();
        let hold = book.reserve(B, 0, ApplicantId(1)).unwrap();
        let waiting = applicant_in_shard(&book, 0, &[ApplicantId(1)]);
        let racer = applicant_in_shard(&book, 1, &[ApplicantId(1), waiting]);
        book.standby(waiting, &[B], 0..1).unwrap();
        let releaser = {
            let book = book.clone();
            loom::thread::spawn(move || book.release(hold.token).unwrap())
        };
        let reserver = {
            let book = book.clone();
            loom::thread::spawn(move || book.reserve(B, 0, racer))
        };
        releaser.join().unwrap();
        assert_eq!(
            reserver.join().unwrap(),
            Err(ReserveError::Full),
            "a racing reserve took the unit freed for the line"
        );
        let offer = book.standby_offer(waiting).expect("the request's hold");
        assert_eq!((offer.branch, offer.slot), (B, 0));
        book.check_invariants().unwrap();
    });
}

/// Two requests join the line while the slot's one unit is released: whatever the order, the
/// unit goes to exactly one request, that request is the earlier of those that joined before
/// the release (a later joiner is refused with `UnitFree` only if it saw the unit free), and
/// nothing is lost.
#[test]
fn loom_two_requests_and_one_freed_unit() {
    model("two standby requests, one unit", || {
        let clock = ManualClock::new();
        let book = Arc::new(book_with_shards(&clock, 2));
        book.set_capacity(B, 0, 1).unwrap();
        let hold = book.reserve(B, 0, ApplicantId(1)).unwrap();
        let a = applicant_in_shard(&book, 0, &[ApplicantId(1)]);
        let b = applicant_in_shard(&book, 1, &[ApplicantId(1), a]);
        book.standby(a, &[B], 0..1).unwrap();
        let joiner = {
            let book = book.clone();
            loom::thread::spawn(move || book.standby(b, &[B], 0..1))
        };
        let releaser = {
            let book = book.clone();
            loom::thread::spawn(move || book.release(hold.token).unwrap())
        };
        releaser.join().unwrap();
        let joined = joiner.join().unwrap();
        // `a` joined first, so the unit is its own; `b` waits, or was refused because it saw
        // the unit free before it reached the line (then it is `a`'s anyway).
        assert!(
            book.standby_offer(a).is_some(),
            "the earliest request lost the unit"
        );
        assert_eq!(book.standby_offer(b), None);
        if joined.is_ok() {
            assert!(book.leave_standby(b));
        }
        assert_eq!(book.slot(B, 0).unwrap().remaining(), 0);
        book.check_invariants().unwrap();
    });
}

//! Allocation rounds against a model: random serial dictatorship over the drawn order, the same
//! outcome whatever order the requests arrived in, and every book rule kept.

use std::collections::HashMap;
use std::ops::Range;

use proptest::prelude::*;
use surgegate::alloc::{MAX_PREFERENCES, RequestError};
use surgegate::room::prequeue_order;
use surgegate::{AllocationRound, ApplicantId, BranchId, SlotBook};

const BRANCHES: u32 = 3;
const SLOTS: u32 = 12;

type Prefs = Vec<(BranchId, Range<u32>)>;

fn prefs() -> impl Strategy<Value = Prefs> {
    proptest::collection::vec(
        (0..BRANCHES, 0..SLOTS, 1..SLOTS)
            .prop_map(|(b, start, len)| (BranchId(b), start..(start + len).min(SLOTS + 2))),
        1..5,
    )
}

fn scenario() -> impl Strategy<Value = (u64, Vec<u32>, Vec<(u64, Prefs)>)> {
    (
        any::<u64>(),
        proptest::collection::vec(0u32..3, (BRANCHES * SLOTS) as usize),
        proptest::collection::vec((0u64..60, prefs()), 0..50),
    )
}

fn book(capacities: &[u32]) -> SlotBook {
    let book = SlotBook::builder().max_slots_per_branch(SLOTS).build();
    for (i, &c) in capacities.iter().enumerate() {
        if c > 0 {
            let (b, s) = (i as u32 / SLOTS, i as u32 % SLOTS);
            book.set_capacity(BranchId(b), s, c).unwrap();
        }
    }
    book
}

/// Each applicant's last request, as a round keeps it.
fn last_requests(requests: &[(u64, Prefs)]) -> HashMap<u64, Prefs> {
    requests.iter().cloned().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn each_applicant_gets_their_best_preference_with_room_at_their_turn(
        (seed, capacities, requests) in scenario()
    ) {
        let mut round = AllocationRound::new(seed);
        for (a, p) in &requests {
            round.request(ApplicantId(*a), p).unwrap();
        }
        let book = book(&capacities);
        let outcome = round.close(&book);
        book.check_invariants().unwrap();

        // The order: the pre-queue draw over the applicants sorted by id.
        let wanted = last_requests(&requests);
        let mut sorted: Vec<u64> = wanted.keys().copied().collect();
        sorted.sort();
        let order: Vec<ApplicantId> = prequeue_order(sorted.len(), seed)
            .unwrap()
            .into_iter()
            .map(|i| ApplicantId(sorted[i]))
            .collect();
        prop_assert_eq!(&outcome.order, &order);

        // Serial dictatorship on a model of the capacities.
        let mut room: Vec<u32> = capacities.clone();
        let mut holds = outcome.holds.iter();
        let mut unplaced = outcome.unplaced.iter();
        for a in &order {
            let pick = wanted[&a.0].iter().find_map(|(b, r)| {
                (r.start..r.end.min(SLOTS))
                    .find(|&s| room[(b.0 * SLOTS + s) as usize] > 0)
                    .map(|s| (*b, s))
            });
            match pick {
                Some((b, s)) => {
                    room[(b.0 * SLOTS + s) as usize] -= 1;
                    let h = holds.next().expect("a hold for a placed applicant");
                    prop_assert_eq!((h.applicant, h.branch, h.slot), (*a, b, s));
                }
                None => prop_assert_eq!(unplaced.next(), Some(a)),
            }
        }
        prop_assert!(holds.next().is_none() && unplaced.next().is_none());
        for (i, &left) in room.iter().enumerate() {
            let st = book.slot(BranchId(i as u32 / SLOTS), i as u32 % SLOTS);
            prop_assert_eq!(st.map_or(0, |st| st.remaining()), left);
        }
    }

    #[test]
    fn the_outcome_depends_on_the_seed_and_the_requests_not_on_their_arrival(
        (seed, capacities, requests) in scenario()
    ) {
        let outcome = |requests: &mut dyn Iterator<Item = &(u64, Prefs)>| {
            let mut round = AllocationRound::new(seed);
            for (a, p) in requests {
                round.request(ApplicantId(*a), p).unwrap();
            }
            let o = round.close(&book(&capacities));
            let holds: Vec<_> = o.holds.iter().map(|h| (h.applicant, h.branch, h.slot)).collect();
            (o.order, holds, o.unplaced)
        };
        let forward = outcome(&mut requests.iter());
        // Reversed, each applicant's last request first replaced by a throwaway one.
        let last = last_requests(&requests);
        let throwaway = vec![(BranchId(0), 0..1)];
        let decoys: Vec<(u64, Prefs)> = last.keys().map(|&a| (a, throwaway.clone())).collect();
        let finals: Vec<(u64, Prefs)> = last.into_iter().collect();
        let reversed = outcome(&mut decoys.iter().chain(finals.iter().rev()));
        prop_assert_eq!(forward, reversed);
    }
}

#[test]
fn bad_requests_are_errors_that_change_nothing() {
    let mut round = AllocationRound::new(1);
    round
        .request(ApplicantId(1), &[(BranchId(0), 0..4)])
        .unwrap();
    let too_many = vec![(BranchId(0), 0..4); MAX_PREFERENCES + 1];
    assert_eq!(
        round.request(ApplicantId(2), &[]),
        Err(RequestError::Preferences {
            max: MAX_PREFERENCES
        })
    );
    assert_eq!(
        round.request(ApplicantId(2), &too_many),
        Err(RequestError::Preferences {
            max: MAX_PREFERENCES
        })
    );
    assert_eq!(
        round.request(ApplicantId(1), &[(BranchId(0), 0..4), (BranchId(1), 3..3)]),
        Err(RequestError::EmptyRange { index: 1 })
    );
    assert_eq!(round.len(), 1);
    // Applicant 1's first request stands.
    let book = book(&[1; (BRANCHES * SLOTS) as usize]);
    let outcome = round.close(&book);
    assert_eq!(outcome.holds.len(), 1);
    assert_eq!(outcome.holds[0].slot, 0);
}

#[test]
fn an_applicant_at_their_limit_is_unplaced_and_keeps_what_they_had() {
    let book = book(&[1; (BRANCHES * SLOTS) as usize]);
    let earlier = book.reserve(BranchId(2), 5, ApplicantId(7)).unwrap();
    let mut round = AllocationRound::new(9);
    round
        .request(ApplicantId(7), &[(BranchId(0), 0..12)])
        .unwrap();
    round
        .request(ApplicantId(8), &[(BranchId(0), 0..12)])
        .unwrap();
    let outcome = round.close(&book);
    assert_eq!(outcome.unplaced, [ApplicantId(7)]);
    assert_eq!(outcome.holds.len(), 1);
    assert_eq!(book.hold(earlier.token), Some(earlier));
    book.check_invariants().unwrap();
}

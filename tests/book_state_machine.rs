//! The SlotBook as a state machine (proptest-state-machine): the reference state is the naive
//! model of `tests/support/book_model.rs`, which also drives generation (confirmations and
//! releases name holds that exist); the system under test is the real book inside the harness,
//! compared with the model after every transition.

#[path = "support/book_model.rs"]
mod book_model;

use book_model::{BookHarness, BookModel, BookOp};
use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};

struct BookReference;

impl ReferenceStateMachine for BookReference {
    type State = BookModel;
    type Transition = BookOp;

    fn init_state() -> BoxedStrategy<Self::State> {
        Just(BookModel::default()).boxed()
    }

    fn transitions(state: &Self::State) -> BoxedStrategy<Self::Transition> {
        // Holds that exist, or existed: most confirmations and releases target them.
        let ids = state.next_id.max(1) as u16;
        let open: Vec<(u8, u16)> = state
            .capacity
            .keys()
            .map(|&(b, s)| (b.0 as u8, slot_code(s)))
            .collect();
        let reserve_open = if open.is_empty() {
            Just(BookOp::Sweep).boxed()
        } else {
            (proptest::sample::select(open), any::<u8>())
                .prop_map(|((branch, slot), applicant)| BookOp::Reserve {
                    branch,
                    slot,
                    applicant,
                })
                .boxed()
        };
        prop_oneof![
            3 => (any::<u8>(), 0u16..16, 0u32..5)
                .prop_map(|(branch, slot, c)| BookOp::SetCapacity { branch, slot: slot * 8 + 2, capacity: 2 + c * 64 }),
            1 => (any::<u8>(), any::<u16>(), any::<u32>())
                .prop_map(|(branch, slot, capacity)| BookOp::SetCapacity { branch, slot, capacity }),
            5 => reserve_open,
            3 => (any::<u8>(), any::<u16>(), any::<u16>(), any::<u8>()).prop_map(
                |(branch, start, end, applicant)| BookOp::ReserveEarliest { branch, start, end, applicant }
            ),
            4 => (0..ids).prop_map(|id| BookOp::ConfirmId { id }),
            3 => (0..ids).prop_map(|id| BookOp::ReleaseId { id }),
            1 => (any::<u8>(), any::<u16>()).prop_map(|(branch, slot)| BookOp::Slot { branch, slot }),
            3 => (0u16..12_000).prop_map(|ms| BookOp::AdvanceMs { ms }),
            1 => Just(BookOp::Sweep),
        ]
        .boxed()
    }

    fn apply(mut state: Self::State, transition: &Self::Transition) -> Self::State {
        state.apply(transition);
        state
    }
}

/// The op code that `book_model::slot_of` maps to slot `s` (for slots below 16).
fn slot_code(s: u32) -> u16 {
    if s < 16 { (s as u16) * 8 + 2 } else { 0 }
}

struct BookTest;

impl StateMachineTest for BookTest {
    type SystemUnderTest = BookHarness;
    type Reference = BookReference;

    fn init_test(_: &BookModel) -> BookHarness {
        let mut h = BookHarness::new(2);
        h.read_every_step = false;
        h
    }

    fn apply(mut harness: BookHarness, _: &BookModel, transition: BookOp) -> BookHarness {
        if let Err(e) = harness.step(&transition) {
            panic!("{transition:?}: {e}");
        }
        harness
    }

    fn check_invariants(harness: &BookHarness, reference: &BookModel) {
        // The harness's model followed the same transitions as the reference state.
        assert_eq!(harness.model.holds, reference.holds);
        assert_eq!(harness.model.capacity, reference.capacity);
        assert_eq!(harness.model.now_ns, reference.now_ns);
        harness.check().unwrap();
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn book_state_machine(sequential 1..80 => BookTest);
}

//! The WaitingRoom as a state machine (proptest-state-machine): the reference state is the naive
//! model of `tests/support/room_model.rs`, which also drives generation (polls and finishes name
//! tickets that exist); the system under test is the real room inside the harness, compared with
//! the model after every transition.

#[path = "support/room_model.rs"]
mod room_model;

use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use room_model::{RoomHarness, RoomModel, RoomOp};

const RATE: u32 = 4;
const BURST: u32 = 2;
const MAX_ACTIVE: u32 = 3;

struct RoomReference;

impl ReferenceStateMachine for RoomReference {
    type State = RoomModel;
    type Transition = RoomOp;

    fn init_state() -> BoxedStrategy<Self::State> {
        Just(RoomModel::new(RATE, BURST, MAX_ACTIVE)).boxed()
    }

    fn transitions(state: &Self::State) -> BoxedStrategy<Self::Transition> {
        let ids = state.next_id.max(1) as u16;
        prop_oneof![
            6 => any::<u8>().prop_map(|visitor| RoomOp::Join { visitor }),
            1 => any::<u8>().prop_map(|visitor| RoomOp::EntryOf { visitor }),
            5 => (0..ids).prop_map(|id| RoomOp::PollId { id }),
            3 => (0..ids).prop_map(|id| RoomOp::FinishId { id }),
            5 => any::<u16>().prop_map(|ms| RoomOp::AdvanceMs { ms }),
            1 => any::<u8>().prop_map(|rate| RoomOp::SetRate { rate }),
            1 => any::<u8>().prop_map(|burst| RoomOp::SetBurst { burst }),
            1 => any::<u8>().prop_map(|max| RoomOp::SetMaxActive { max }),
            1 => Just(RoomOp::Pause),
            2 => Just(RoomOp::Resume),
            1 => Just(RoomOp::Close),
            1 => Just(RoomOp::Reopen),
            1 => (any::<u16>(), any::<u64>()).prop_map(|(in_ms, seed)| RoomOp::OpenAt { in_ms, seed }),
        ]
        .boxed()
    }

    fn apply(mut state: Self::State, transition: &Self::Transition) -> Self::State {
        state.apply(transition);
        state
    }
}

struct RoomTest;

impl StateMachineTest for RoomTest {
    type SystemUnderTest = RoomHarness;
    type Reference = RoomReference;

    fn init_test(_: &RoomModel) -> RoomHarness {
        RoomHarness::new(RATE, BURST, MAX_ACTIVE)
    }

    fn apply(mut harness: RoomHarness, _: &RoomModel, transition: RoomOp) -> RoomHarness {
        if let Err(e) = harness.step(&transition) {
            panic!("{transition:?}: {e}");
        }
        harness
    }

    fn check_invariants(harness: &RoomHarness, reference: &RoomModel) {
        // The harness's model followed the same transitions as the reference state.
        assert_eq!(harness.model.line, reference.line);
        assert_eq!(harness.model.pre, reference.pre);
        assert_eq!(harness.model.passes, reference.passes);
        assert_eq!(harness.model.now, reference.now);
        assert_eq!(
            (
                harness.model.admitted_total,
                harness.model.dropped_total,
                harness.model.left_total
            ),
            (
                reference.admitted_total,
                reference.dropped_total,
                reference.left_total
            )
        );
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn room_state_machine(sequential 1..100 => RoomTest);
}

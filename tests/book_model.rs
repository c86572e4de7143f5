//! Random sequences of book operations, applied to the SlotBook and to a naive reference model;
//! after every step every answer and every slot must agree and the invariants must hold.

#[path = "support/book_model.rs"]
mod book_model;

use book_model::{BookHarness, BookOp};
use proptest::prelude::*;

fn op() -> impl Strategy<Value = BookOp> {
    prop_oneof![
        4 => (any::<u8>(), any::<u16>(), any::<u32>())
            .prop_map(|(branch, slot, capacity)| BookOp::SetCapacity { branch, slot, capacity }),
        6 => (any::<u8>(), any::<u16>(), any::<u8>())
            .prop_map(|(branch, slot, applicant)| BookOp::Reserve { branch, slot, applicant }),
        4 => (any::<u8>(), any::<u16>(), any::<u16>(), any::<u8>()).prop_map(
            |(branch, start, end, applicant)| BookOp::ReserveEarliest { branch, start, end, applicant }
        ),
        3 => (any::<[u8; 3]>(), any::<u8>(), any::<u16>(), any::<u16>(), any::<u8>(), any::<bool>())
            .prop_map(|(branches, count, start, end, applicant, first_branch)| {
                BookOp::ReserveAmong { branches, count, start, end, applicant, first_branch }
            }),
        4 => any::<u16>().prop_map(|hold| BookOp::Confirm { hold }),
        3 => any::<u16>().prop_map(|hold| BookOp::Release { hold }),
        1 => any::<u16>().prop_map(|hold| BookOp::Booking { hold }),
        1 => any::<u128>().prop_map(|bits| BookOp::ConfirmForged { bits }),
        1 => any::<u128>().prop_map(|bits| BookOp::ReleaseForged { bits }),
        1 => (any::<u8>(), any::<u16>()).prop_map(|(branch, slot)| BookOp::Slot { branch, slot }),
        1 => (any::<u8>(), any::<u16>(), any::<u16>())
            .prop_map(|(branch, start, end)| BookOp::Availability { branch, start, end }),
        3 => (0u16..12_000).prop_map(|ms| BookOp::AdvanceMs { ms }),
        1 => Just(BookOp::Sweep),
        1 => (any::<u8>(), any::<u16>()).prop_map(|(branch, slot)| BookOp::CloseSlot { branch, slot }),
        3 => (any::<u8>(), any::<u16>(), any::<u8>(), any::<u32>())
            .prop_map(|(branch, slot, channel, quota)| BookOp::SetQuota { branch, slot, channel, quota }),
        5 => (any::<u8>(), any::<u8>(), any::<u16>(), any::<u8>())
            .prop_map(|(channel, branch, slot, applicant)| BookOp::ReserveOn { channel, branch, slot, applicant }),
        1 => (any::<u8>(), any::<u16>()).prop_map(|(branch, slot)| BookOp::OpenQuotas { branch, slot }),
        1 => (any::<u8>(), any::<u16>(), any::<u16>())
            .prop_map(|(branch, start, end)| BookOp::OpenQuotasIn { branch, start, end }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn book_agrees_with_model(ops in proptest::collection::vec(op(), 1..120)) {
        let mut h = BookHarness::default();
        for (i, op) in ops.iter().enumerate() {
            if let Err(e) = h.step(op) {
                prop_assert!(false, "step {i} {op:?}: {e}");
            }
        }
    }

    #[test]
    fn book_agrees_with_model_reading_lazily(ops in proptest::collection::vec(op(), 1..120)) {
        let mut h = BookHarness::new(1);
        h.read_every_step = false;
        for (i, op) in ops.iter().enumerate() {
            if let Err(e) = h.step(op) {
                prop_assert!(false, "step {i} {op:?}: {e}");
            }
        }
    }
}

/// One long seeded run, to show the op mix reaches every outcome that matters (a model test that
/// only ever sees errors would prove little).
#[test]
fn a_long_run_covers_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let mut h = BookHarness::new(4);
    h.read_every_step = false;
    for _ in 0..20_000 {
        let op = op().new_tree(&mut runner).unwrap().current();
        h.step(&op).unwrap_or_else(|e| panic!("{op:?}: {e}"));
    }
    for outcome in [
        "set_capacity:Ok",
        "set_capacity:Err",
        "reserve:Ok",
        "reserve:Err",
        "reserve_earliest:Ok",
        "reserve_earliest:Err",
        "reserve_among:Ok",
        "reserve_among:Err",
        "close_slot:Ok",
        "close_slot:Err",
        "confirm:Ok",
        "confirm:Err",
        "release:Ok",
        "release:Err",
        "sweep:\"reclaimed\"",
        "set_channel_quota:Ok",
        "set_channel_quota:Err",
        "reserve_on:Ok",
        "reserve_on:Err",
        "open_channel_quotas:Ok",
    ] {
        assert!(
            h.outcomes.get(outcome).copied().unwrap_or(0) > 0,
            "never saw {outcome}: {:?}",
            h.outcomes
        );
    }
    println!("{:#?}", h.outcomes);
}

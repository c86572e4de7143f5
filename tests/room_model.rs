//! Random sequences of room operations, applied to the WaitingRoom and to a naive reference
//! model; after every step positions are exactly 1..=waiting, admission order is FIFO, admissions
//! in every window stay within burst + rate × window, ETAs hold, and every answer agrees.

#[path = "support/room_model.rs"]
mod room_model;

use proptest::prelude::*;
use room_model::{RoomHarness, RoomOp};

fn op() -> impl Strategy<Value = RoomOp> {
    prop_oneof![
        8 => any::<u8>().prop_map(|visitor| RoomOp::Join { visitor }),
        2 => any::<u8>().prop_map(|visitor| RoomOp::EntryOf { visitor }),
        6 => any::<u16>().prop_map(|ticket| RoomOp::Poll { ticket }),
        3 => any::<u16>().prop_map(|ticket| RoomOp::Finish { ticket }),
        2 => any::<u16>().prop_map(|ticket| RoomOp::Claim { ticket }),
        1 => any::<u128>().prop_map(|bits| RoomOp::PollForged { bits }),
        6 => any::<u16>().prop_map(|ms| RoomOp::AdvanceMs { ms }),
        1 => any::<u8>().prop_map(|rate| RoomOp::SetRate { rate }),
        1 => any::<u8>().prop_map(|burst| RoomOp::SetBurst { burst }),
        1 => any::<u8>().prop_map(|max| RoomOp::SetMaxActive { max }),
        1 => Just(RoomOp::Pause),
        2 => Just(RoomOp::Resume),
        1 => Just(RoomOp::Close),
        1 => Just(RoomOp::Reopen),
        1 => (any::<u16>(), any::<u64>()).prop_map(|(in_ms, seed)| RoomOp::OpenAt { in_ms, seed }),
        1 => Just(RoomOp::Stats),
    ]
}

fn config() -> impl Strategy<Value = (u32, u32, u32, Option<u64>)> {
    (
        1u32..=20,
        1u32..=4,
        prop_oneof![Just(u32::MAX), 1u32..=3],
        // No claims, or a claim timeout up to the pass's whole ttl.
        prop_oneof![Just(None), (1u64..=room_model::PASS_TTL_MS).prop_map(Some)],
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn room_agrees_with_model((rate, burst, max_active, claim_ms) in config(), ops in proptest::collection::vec(op(), 1..150)) {
        let mut h = RoomHarness::with_claims(rate, burst, max_active, claim_ms);
        for (i, op) in ops.iter().enumerate() {
            if let Err(e) = h.step(op) {
                prop_assert!(false, "config ({rate}, {burst}, {max_active}, claims {claim_ms:?}), step {i} {op:?}: {e}");
            }
        }
    }
}

/// One long seeded run, to show the op mix reaches every outcome that matters.
#[test]
fn a_long_run_covers_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[11; 32]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let mut total = std::collections::BTreeMap::new();
    for (rate, burst, max_active, claim_ms) in [
        (3, 1, u32::MAX, None),
        (10, 2, 2, Some(2_000)),
        (20, 4, u32::MAX, Some(500)),
    ] {
        let mut h = RoomHarness::with_claims(rate, burst, max_active, claim_ms);
        for _ in 0..3_000 {
            let op = op().new_tree(&mut runner).unwrap().current();
            h.step(&op).unwrap_or_else(|e| panic!("{op:?}: {e}"));
        }
        for (k, v) in h.outcomes {
            *total.entry(k).or_insert(0) += v;
        }
    }
    for outcome in [
        "join:Ok",
        "join:Err",
        "poll:Ok",
        "poll:Err",
        "finish:Ok",
        "finish:Err",
        "claim:Ok",
        "claim:Err",
    ] {
        assert!(
            total.get(outcome).copied().unwrap_or(0) > 0,
            "never saw {outcome}: {total:?}"
        );
    }
    println!("{total:#?}");
}

//! Decodes the input into a room configuration (claims on or off) and a bounded sequence of room
//! operations (time advances, limit changes, pause, close, scheduled openings, claims included), applies them to the
//! WaitingRoom and to the reference model of `tests/support/room_model.rs`, and fails on the first
//! disagreement or broken rule.
//!
//! After every step the answer of the call and the room's counts and settings are compared with
//! the model's (`RoomHarness::check_stats`); every `FULL_CHECK_EVERY` steps and after the last
//! one, the whole check runs (the room's own `check_invariants`, every live ticket against the
//! model, FIFO positions, ETAs, the rate bound). After every step, the whole check took two
//! thirds of the time.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/room_model.rs"]
mod room_model;

use room_model::{RoomHarness, RoomOp};

/// Steps between two whole checks.
const FULL_CHECK_EVERY: usize = 16;

fuzz_target!(|input: (u8, u8, u8, Vec<RoomOp>)| {
    let (rate, burst, max_active, ops) = input;
    let rate = 1 + u32::from(rate) % 20;
    // Half the inputs run with a claim timeout of 3 s (a pass lasts 8 s).
    let claim_ms = (burst & 0x80 != 0).then_some(3_000);
    let burst = 1 + u32::from(burst) % 4;
    let max_active = if max_active % 2 == 0 {
        u32::MAX
    } else {
        1 + u32::from(max_active) % 3
    };
    let mut h = RoomHarness::with_claims(rate, burst, max_active, claim_ms);
    h.full_check_every = FULL_CHECK_EVERY;
    h.record_outcomes = false;
    let config = format!("config ({rate}, {burst}, {max_active}, claims {claim_ms:?})");
    for (i, op) in ops.iter().take(300).enumerate() {
        if let Err(e) = h.step(op) {
            panic!("{config} step {i} {op:?}: {e}");
        }
    }
    if let Err(e) = h.check() {
        panic!("{config} after the last step: {e}");
    }
});

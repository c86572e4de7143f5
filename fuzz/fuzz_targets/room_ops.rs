//! Decodes the input into a room configuration (claims on or off) and a bounded sequence of room
//! operations (time advances, limit changes, pause, close, scheduled openings, claims included), applies them to the
//! WaitingRoom and to the reference model of `tests/support/room_model.rs`, and fails on the first
//! disagreement or broken rule.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/room_model.rs"]
mod room_model;

use room_model::{RoomHarness, RoomOp};

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
    for (i, op) in ops.iter().take(300).enumerate() {
        if let Err(e) = h.step(op) {
            panic!(
                "config ({rate}, {burst}, {max_active}, claims {claim_ms:?}) step {i} {op:?}: {e}"
            );
        }
    }
});

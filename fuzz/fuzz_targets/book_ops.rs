//! Decodes the input into a bounded sequence of book operations (time advances included), applies
//! them to the SlotBook and to the reference model of `tests/support/book_model.rs`, and fails on
//! the first disagreement or broken invariant.
//!
//! After every step the answer of the call is compared with the model's and, with readings on,
//! the slot the step named is checked against it (`BookHarness::check_slot`); every
//! `FULL_CHECK_EVERY` steps and after the last one, the whole check runs (the book's own
//! `check_invariants`, its totals against the model's, every slot). The whole check walks every
//! slot of every allocated chunk, and after every step it took nine tenths of the time.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/book_model.rs"]
mod book_model;

use book_model::{BookHarness, BookOp};

/// Steps between two whole checks.
const FULL_CHECK_EVERY: usize = 16;

fuzz_target!(|input: (bool, bool, Vec<BookOp>)| {
    let (one_shard, read_every_step, ops) = input;
    let mut h = BookHarness::new(if one_shard { 1 } else { 4 });
    h.read_every_step = read_every_step;
    h.full_check_every = FULL_CHECK_EVERY;
    h.record_outcomes = false;
    for (i, op) in ops.iter().take(300).enumerate() {
        if let Err(e) = h.step(op) {
            panic!("step {i} {op:?}: {e}");
        }
    }
    if let Err(e) = h.check() {
        panic!("after the last step: {e}");
    }
});

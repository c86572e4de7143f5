//! Decodes the input into a bounded sequence of book operations (time advances included), applies
//! them to the SlotBook and to the reference model of `tests/support/book_model.rs`, and fails on
//! the first disagreement or broken invariant.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/book_model.rs"]
mod book_model;

use book_model::{BookHarness, BookOp};

fuzz_target!(|input: (bool, bool, Vec<BookOp>)| {
    let (one_shard, read_every_step, ops) = input;
    let mut h = BookHarness::new(if one_shard { 1 } else { 4 });
    h.read_every_step = read_every_step;
    for (i, op) in ops.iter().take(300).enumerate() {
        if let Err(e) = h.step(op) {
            panic!("step {i} {op:?}: {e}");
        }
    }
});

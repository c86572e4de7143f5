//! A million bookings through the journal: recovery by replaying the journal, then a checkpoint
//! and recovery from it, both timed. Recovery must take under 2 seconds, in the test profile
//! (opt-level 1, as CI runs it) and so in release.
//!
//! Run: `cargo test --release --test journal_million -- --ignored --nocapture`.

use std::time::Instant;

use surgegate::{ApplicantId, BranchId, Durability, HoldToken, SlotBook};

const BOOKINGS: u64 = 1_000_000;
const BRANCHES: u32 = 100;
const SLOTS: u32 = 20;
const CAPACITY: u32 = 600;

fn open(dir: &std::path::Path) -> (SlotBook, std::time::Duration) {
    let started = Instant::now();
    let book = SlotBook::builder()
        .durable()
        .durability(Durability::None)
        .checkpoint_after_bytes(0)
        .open(dir)
        .unwrap();
    (book, started.elapsed())
}

#[test]
#[ignore = "a million bookings; run in release (CI does)"]
fn a_million_bookings_recover_in_under_two_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let (book, _) = open(dir.path());
    for b in 0..BRANCHES {
        for s in 0..SLOTS {
            book.set_capacity(BranchId(b), s, CAPACITY).unwrap();
        }
    }
    let started = Instant::now();
    let mut sample: Vec<HoldToken> = Vec::new();
    for a in 0..BOOKINGS {
        let hold = book
            .reserve_earliest(
                BranchId((a % u64::from(BRANCHES)) as u32),
                0..SLOTS,
                ApplicantId(a),
            )
            .unwrap();
        let booking = book.confirm(hold.token).unwrap();
        if a % 9_973 == 0 {
            sample.push(booking.token);
        }
    }
    let booked_in = started.elapsed();
    let journal_bytes = book.journal_stats().unwrap().bytes_since_checkpoint;
    drop(book);

    let check = |book: &SlotBook| {
        let totals = book.check_invariants().unwrap();
        assert_eq!(totals.bookings, BOOKINGS);
        assert_eq!(totals.open_slots, (BRANCHES * SLOTS) as usize);
        assert!(sample.iter().all(|t| book.booking(*t).is_some()));
    };

    let (book, from_journal) = open(dir.path());
    let recovery = book.journal_stats().unwrap().recovery;
    assert_eq!(recovery.checkpoint, None);
    assert_eq!(recovery.records, BOOKINGS + u64::from(BRANCHES * SLOTS));
    assert_eq!(recovery.bookings, BOOKINGS);
    check(&book);

    let started = Instant::now();
    let info = book.checkpoint().unwrap();
    let checkpoint_in = started.elapsed();
    assert_eq!(info.bookings, BOOKINGS);
    drop(book);

    let (book, from_checkpoint) = open(dir.path());
    let recovery = book.journal_stats().unwrap().recovery;
    assert_eq!(recovery.checkpoint, Some(info.seq));
    assert_eq!(recovery.records, 0);
    assert_eq!(recovery.bookings, BOOKINGS);
    check(&book);

    println!(
        "1 000 000 bookings: booked in {:.2} s; journal {:.1} MB replayed in {:.3} s; \
         checkpoint of {:.1} MB written in {:.3} s, recovered from in {:.3} s",
        booked_in.as_secs_f64(),
        journal_bytes as f64 / 1e6,
        from_journal.as_secs_f64(),
        info.bytes as f64 / 1e6,
        checkpoint_in.as_secs_f64(),
        from_checkpoint.as_secs_f64(),
    );
    assert!(
        from_journal.as_secs_f64() < 2.0,
        "replay took {from_journal:?}"
    );
    assert!(
        from_checkpoint.as_secs_f64() < 2.0,
        "recovery took {from_checkpoint:?}"
    );
}

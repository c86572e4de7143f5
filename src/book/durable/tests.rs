//! Storage failures, injected under the journal: a failed call changes nothing.

use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;

use crate::journal::JournalError;
use crate::journal::io::faulty::{Faults, Faulty};
use crate::{
    ApplicantId, BranchId, CapacityError, ConfirmError, ManualClock, ReleaseError, SlotBook,
    SlotState,
};

fn open(dir: &std::path::Path, faults: &Arc<Faults>) -> SlotBook<ManualClock> {
    SlotBook::builder()
        .clock(ManualClock::new())
        .max_active_per_applicant(4)
        .open_with(dir, Box::new(Faulty(faults.clone())))
        .expect("open")
}

fn state(book: &SlotBook<ManualClock>) -> SlotState {
    book.slot(BranchId(1), 0).expect("open slot")
}

/// A book with a slot of 3, one booking (`kept`) and one live hold; and the slot's state.
fn booked_and_held(
    dir: &std::path::Path,
    faults: &Arc<Faults>,
) -> (
    SlotBook<ManualClock>,
    crate::Booking,
    crate::Hold,
    SlotState,
) {
    let book = open(dir, faults);
    book.set_capacity(BranchId(1), 0, 3).unwrap();
    let kept = book.reserve(BranchId(1), 0, ApplicantId(1)).unwrap();
    let kept = book.confirm(kept.token).unwrap();
    let hold = book.reserve(BranchId(1), 0, ApplicantId(2)).unwrap();
    let before = state(&book);
    (book, kept, hold, before)
}

#[test]
fn a_failed_write_changes_nothing_and_the_journal_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let (book, kept, hold, before) = booked_and_held(dir.path(), &faults);

    faults.writes.store(1, SeqCst);
    let e = book.confirm(hold.token).unwrap_err();
    assert!(
        matches!(e, ConfirmError::Journal(JournalError::Write(_))),
        "{e}"
    );
    assert_eq!(state(&book), before);
    assert_eq!(book.booking(hold.token), None);

    faults.writes.store(1, SeqCst);
    let e = book.set_capacity(BranchId(1), 0, 9).unwrap_err();
    assert!(
        matches!(e, CapacityError::Journal(JournalError::Write(_))),
        "{e}"
    );
    assert_eq!(state(&book), before);

    faults.writes.store(1, SeqCst);
    let e = book.release(kept.token).unwrap_err();
    assert!(
        matches!(e, ReleaseError::Journal(JournalError::Write(_))),
        "{e}"
    );
    assert_eq!(book.booking(kept.token), Some(kept));
    assert_eq!(state(&book), before);
    book.check_invariants().unwrap();

    // The half-written batches were cut off: the journal goes on and reopens cleanly.
    let second = book.confirm(hold.token).unwrap();
    drop(book);
    let book = open(dir.path(), &faults);
    let recovery = book.journal_stats().unwrap().recovery;
    assert_eq!(recovery.torn_bytes, 0);
    assert_eq!(recovery.records, 3);
    assert_eq!(book.booking(kept.token), Some(kept));
    assert_eq!(book.booking(second.token), Some(second));
    assert_eq!(
        state(&book),
        SlotState {
            capacity: 3,
            held: 0,
            booked: 2
        }
    );
    book.check_invariants().unwrap();
}

#[test]
fn a_failed_fsync_changes_nothing_and_stops_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let (book, kept, hold, before) = booked_and_held(dir.path(), &faults);

    faults.syncs.store(1, SeqCst);
    let e = book.confirm(hold.token).unwrap_err();
    assert!(
        matches!(e, ConfirmError::Journal(JournalError::Sync(_))),
        "{e}"
    );
    assert_eq!(state(&book), before);
    assert_eq!(book.booking(hold.token), None);

    // Stopped: durable calls fail and change nothing; holds still work in memory.
    assert_eq!(
        book.confirm(hold.token),
        Err(ConfirmError::Journal(JournalError::Stopped))
    );
    assert_eq!(
        book.release(kept.token),
        Err(ReleaseError::Journal(JournalError::Stopped))
    );
    assert_eq!(
        book.set_capacity(BranchId(1), 0, 1),
        Err(CapacityError::Journal(JournalError::Stopped))
    );
    assert_eq!(book.booking(kept.token), Some(kept));
    assert_eq!(state(&book), before);
    let other = book.reserve(BranchId(1), 0, ApplicantId(3)).unwrap();
    book.release(other.token).unwrap(); // a hold: nothing to journal
    assert!(matches!(
        book.checkpoint(),
        Err(crate::CheckpointError::Journal(JournalError::Stopped))
    ));
    book.check_invariants().unwrap();
    drop(book);

    // The failed batch was cut off too, so a reopen has exactly what was acknowledged.
    let book = open(dir.path(), &faults);
    assert_eq!(book.booking(kept.token), Some(kept));
    assert_eq!(book.booking(hold.token), None);
    assert_eq!(
        state(&book),
        SlotState {
            capacity: 3,
            held: 0,
            booked: 1
        }
    );
}

#[test]
fn a_write_that_cannot_be_rolled_back_stops_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let book = open(dir.path(), &faults);
    book.set_capacity(BranchId(1), 0, 2).unwrap();
    let hold = book.reserve(BranchId(1), 0, ApplicantId(1)).unwrap();
    faults.writes.store(1, SeqCst);
    faults.truncates.store(true, SeqCst);
    assert!(matches!(
        book.confirm(hold.token),
        Err(ConfirmError::Journal(JournalError::Write(_)))
    ));
    faults.truncates.store(false, SeqCst);
    assert_eq!(
        book.confirm(hold.token),
        Err(ConfirmError::Journal(JournalError::Stopped))
    );
    assert_eq!(
        state(&book),
        SlotState {
            capacity: 2,
            held: 1,
            booked: 0
        }
    );
    drop(book);
    // Half a record is left at the end of the file: a torn tail, cut off at the reopen.
    let book = open(dir.path(), &faults);
    assert!(book.journal_stats().unwrap().recovery.torn_bytes > 0);
    assert_eq!(
        state(&book),
        SlotState {
            capacity: 2,
            held: 0,
            booked: 0
        }
    );
}

#[test]
fn a_failed_background_fsync_stops_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let book = SlotBook::builder()
        .clock(ManualClock::new())
        .durable()
        .durability(crate::Durability::Flush {
            every: std::time::Duration::from_millis(1),
        })
        .open_with(dir.path(), Box::new(Faulty(faults.clone())))
        .unwrap();
    faults.syncs.store(1, SeqCst);
    // Acknowledged once written; the flusher's fsync then fails and stops the journal.
    book.set_capacity(BranchId(1), 0, 3).unwrap();
    let journal = book.journal.as_deref().unwrap();
    let started = std::time::Instant::now();
    while !journal.is_stopped() {
        assert!(started.elapsed().as_secs() < 10, "the flusher never synced");
        std::thread::yield_now();
    }
    let hold = book.reserve(BranchId(1), 0, ApplicantId(1)).unwrap();
    assert_eq!(
        book.confirm(hold.token),
        Err(ConfirmError::Journal(JournalError::Stopped))
    );
    assert_eq!(
        state(&book),
        SlotState {
            capacity: 3,
            held: 1,
            booked: 0
        }
    );
}

#[test]
fn every_caller_of_a_failed_batch_gets_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let book = open(dir.path(), &faults);
    book.set_capacity(BranchId(1), 0, 1000).unwrap();
    let holds: Vec<_> = (0..64)
        .map(|a| book.reserve(BranchId(1), 0, ApplicantId(a)).unwrap())
        .collect();
    // Fail a few writes while 4 threads confirm: whichever batches fail, each caller's
    // answer must match the state, and a reopen must agree with the answers.
    faults.writes.store(3, SeqCst);
    let answers: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = holds
            .chunks(16)
            .map(|chunk| {
                let book = &book;
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|h| (h.token, book.confirm(h.token).is_ok()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let confirmed = answers.iter().filter(|(_, ok)| *ok).count() as u32;
    assert!(
        confirmed < 64,
        "three writes failed, so some confirms must have failed"
    );
    for (token, ok) in &answers {
        assert_eq!(book.booking(*token).is_some(), *ok);
    }
    assert_eq!(state(&book).booked, confirmed);
    book.check_invariants().unwrap();
    drop(book);
    let book = open(dir.path(), &faults);
    for (token, ok) in &answers {
        assert_eq!(book.booking(*token).is_some(), *ok);
    }
    assert_eq!(state(&book).booked, confirmed);
}

/// A book with one lock shard (so every applicant shares it), a slot of 3 and a live hold of
/// applicant 2, on `clock`.
fn one_shard_with_a_hold(
    dir: &std::path::Path,
    faults: &Arc<Faults>,
    clock: &ManualClock,
) -> (Arc<SlotBook<ManualClock>>, crate::Hold) {
    let book = SlotBook::builder()
        .clock(clock.clone())
        .shards(1)
        .hold_ttl(std::time::Duration::from_secs(60))
        .open_with(dir, Box::new(Faulty(faults.clone())))
        .expect("open");
    book.set_capacity(BranchId(1), 0, 3).unwrap();
    let hold = book.reserve(BranchId(1), 0, ApplicantId(2)).unwrap();
    (Arc::new(book), hold)
}

/// Starts `confirm(token)` on another thread and returns once its fsync has begun (and stalls).
fn confirm_stalled_in_fsync(
    book: &Arc<SlotBook<ManualClock>>,
    faults: &Arc<Faults>,
    token: crate::HoldToken,
) -> std::thread::JoinHandle<Result<crate::Booking, ConfirmError>> {
    faults.stall.store(true, SeqCst);
    let confirming = {
        let book = book.clone();
        std::thread::spawn(move || book.confirm(token))
    };
    while faults.stalled.load(SeqCst) == 0 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    confirming
}

#[test]
fn a_durable_confirm_does_not_hold_its_shard_lock_across_the_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let clock = ManualClock::new();
    let (book, hold) = one_shard_with_a_hold(dir.path(), &faults, &clock);
    let confirming = confirm_stalled_in_fsync(&book, &faults, hold.token);

    // The confirmation is in its fsync. Another applicant of the same (only) shard is served
    // meanwhile, and readings show the confirming hold as held, not yet booked.
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let book = book.clone();
        std::thread::spawn(move || {
            let _ = tx.send(book.reserve(BranchId(1), 0, ApplicantId(3)));
        });
    }
    let other = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("a reserve on the shard waited for another call's fsync")
        .unwrap();
    let during = state(&book);
    assert_eq!((during.held, during.booked), (2, 0));
    assert_eq!(book.booking(hold.token), None);
    book.check_invariants().unwrap();

    faults.stall.store(false, SeqCst);
    let booking = confirming.join().unwrap().unwrap();
    assert_eq!(book.booking(hold.token), Some(booking));
    let after = state(&book);
    assert_eq!((after.held, after.booked), (1, 1));
    book.release(other.token).unwrap();
    book.check_invariants().unwrap();
}

#[test]
fn a_hold_does_not_lapse_while_its_confirmation_syncs() {
    for fsync_fails in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let faults = Arc::new(Faults::default());
        let clock = ManualClock::new();
        let (book, hold) = one_shard_with_a_hold(dir.path(), &faults, &clock);
        if fsync_fails {
            faults.syncs.store(1, SeqCst);
        }
        let confirming = confirm_stalled_in_fsync(&book, &faults, hold.token);
        // The hold's time runs out during the fsync: a sweep must leave it to its confirmation.
        clock.advance(std::time::Duration::from_secs(61));
        assert_eq!(book.sweep(), 0);
        assert_eq!(state(&book).held, 1);
        book.check_invariants().unwrap();

        faults.stall.store(false, SeqCst);
        let outcome = confirming.join().unwrap();
        let after = state(&book);
        if fsync_fails {
            // Refused, and lapsed meanwhile: the unit is free at once.
            assert!(matches!(
                outcome,
                Err(ConfirmError::Journal(JournalError::Sync(_)))
            ));
            assert_eq!((after.held, after.booked), (0, 0));
            assert_eq!(book.booking(hold.token), None);
        } else {
            // Decided before the hold lapsed: booked.
            assert_eq!(outcome.unwrap().token, hold.token);
            assert_eq!((after.held, after.booked), (0, 1));
        }
        book.check_invariants().unwrap();
    }
}

#[test]
fn a_refused_first_capacity_creates_no_branch_and_uses_up_no_limit() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let book = SlotBook::builder()
        .clock(ManualClock::new())
        .max_branches(2)
        .max_slot_chunks(3)
        .open_with(dir.path(), Box::new(Faulty(faults.clone())))
        .expect("open");
    book.set_capacity(BranchId(1), 0, 3).unwrap();
    // Two refused calls on new branches, one on a new chunk of an old branch.
    for (branch, slot) in [(2, 0), (3, 0), (1, 4_000)] {
        faults.writes.store(1, SeqCst);
        let e = book.set_capacity(BranchId(branch), slot, 5).unwrap_err();
        assert!(
            matches!(e, CapacityError::Journal(JournalError::Write(_))),
            "{e}"
        );
        assert_eq!(book.slot(BranchId(branch), slot), None);
    }
    let totals = book.check_invariants().unwrap();
    assert_eq!((totals.branches, totals.open_slots), (1, 1));
    // Every limit is still whole: a second branch and two more chunks fit, and no more.
    book.set_capacity(BranchId(2), 0, 5).unwrap();
    book.set_capacity(BranchId(1), 4_000, 5).unwrap();
    assert!(matches!(
        book.set_capacity(BranchId(3), 0, 5),
        Err(CapacityError::TooManyBranches { max_branches: 2 })
    ));
    assert!(matches!(
        book.set_capacity(BranchId(2), 4_000, 5),
        Err(CapacityError::TooManySlotChunks { max_slot_chunks: 3 })
    ));
    book.check_invariants().unwrap();
}

#[test]
fn a_close_refused_by_the_journal_leaves_the_slot_open() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let (book, _, _, before) = booked_and_held(dir.path(), &faults);
    faults.writes.store(1, SeqCst);
    let e = book.close_slot(BranchId(1), 0).unwrap_err();
    assert!(
        matches!(e, crate::CloseError::Journal(JournalError::Write(_))),
        "{e}"
    );
    assert!(e.is_retryable());
    assert_eq!(state(&book), before);
    assert_eq!(book.availability(BranchId(1), ..).len(), 1);
    book.check_invariants().unwrap();
    // Retried once the storage is fine: closed, and still closed after a reopen.
    book.close_slot(BranchId(1), 0).unwrap();
    drop(book);
    assert_eq!(open(dir.path(), &faults).slot(BranchId(1), 0), None);
}

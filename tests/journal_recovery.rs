//! The durable book: what a reopen restores, and what it refuses to guess.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use surgegate::{
    ApplicantId, BookConfigError, Booking, BranchId, CapacityError, ConfirmError, Durability,
    HoldToken, ManualClock, OpenError, ReserveError, SlotBook, SlotState,
};

#[path = "support/journal_files.rs"]
mod journal_files;
use journal_files::{copy_dir, segments};

type Book = SlotBook<ManualClock>;

fn open(dir: &Path) -> Result<Book, OpenError> {
    SlotBook::builder()
        .clock(ManualClock::new())
        .max_active_per_applicant(2)
        .max_slots_per_branch(64)
        .durable()
        .durability(Durability::None)
        .open(dir)
}

/// Every open slot of branches 0..8 and every booking among `tokens`.
fn state(book: &Book, tokens: &[HoldToken]) -> (BTreeMap<(u32, u32), SlotState>, Vec<Booking>) {
    let mut slots = BTreeMap::new();
    for b in 0..8 {
        for (s, st) in book.availability(BranchId(b), ..) {
            slots.insert((b, s), st);
        }
    }
    let bookings = tokens.iter().filter_map(|t| book.booking(*t)).collect();
    (slots, bookings)
}

/// A book with capacities, bookings, cancellations and capacity changes; returns the tokens of
/// every hold it confirmed.
fn fill(book: &Book, applicants: u64) -> Vec<HoldToken> {
    for b in 0..4 {
        for s in 0..8 {
            book.set_capacity(BranchId(b), s, 3 + s % 3).unwrap();
        }
    }
    let mut tokens = Vec::new();
    for a in 0..applicants {
        let hold = book
            .reserve_earliest(BranchId((a % 4) as u32), 0..8, ApplicantId(a))
            .unwrap();
        let booking = book.confirm(hold.token).unwrap();
        tokens.push(booking.token);
        if a % 5 == 0 {
            book.release(booking.token).unwrap();
        }
    }
    book.set_capacity(BranchId(0), 0, 1).unwrap(); // lowered below its bookings
    book.set_capacity(BranchId(5), 9, 7).unwrap();
    tokens
}

#[test]
fn a_reopen_restores_every_capacity_and_booking_tokens_included_but_no_hold() {
    let dir = tempfile::tempdir().unwrap();
    let book = open(dir.path()).unwrap();
    let tokens = fill(&book, 40);
    let hold = book.reserve(BranchId(3), 7, ApplicantId(999)).unwrap();
    let mut before = state(&book, &tokens);
    book.check_invariants().unwrap();
    drop(book);

    let book = open(dir.path()).unwrap();
    book.check_invariants().unwrap();
    // The hold is gone and its unit is free again; everything else is as it was.
    let held = before.0.get_mut(&(3, 7)).unwrap();
    assert_eq!(held.held, 1);
    held.held = 0;
    assert_eq!(state(&book, &tokens), before);
    assert_eq!(before.1.len(), 32);
    assert_eq!(book.confirm(hold.token), Err(ConfirmError::UnknownToken));
    let recovery = book.journal_stats().unwrap().recovery;
    assert_eq!(recovery.bookings, 32);
    assert_eq!(recovery.slots, 33);
    assert_eq!(recovery.torn_bytes, 0);
    assert_eq!(recovery.checkpoint, None);

    // Restored bookings count toward the applicant limit, and can be cancelled.
    let mine = before.1[0];
    let again = book.reserve(BranchId(5), 9, mine.applicant).unwrap();
    assert_eq!(
        book.reserve(BranchId(1), 7, mine.applicant),
        Err(ReserveError::ApplicantLimit)
    );
    book.release(again.token).unwrap();
    book.release(mine.token).unwrap();
    drop(book);
    let book = open(dir.path()).unwrap();
    assert_eq!(book.booking(mine.token), None);
    book.check_invariants().unwrap();
}

#[test]
fn a_second_open_of_the_same_directory_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path()).unwrap();
    let e = open(dir.path()).unwrap_err();
    assert!(
        matches!(&e, OpenError::Locked { path } if path.ends_with("LOCK")),
        "{e}"
    );
    assert!(e.to_string().contains("locked by another open SlotBook"));
    drop(first);
    open(dir.path()).unwrap();
}

#[test]
fn a_torn_tail_is_cut_off_and_everything_before_it_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let book = open(dir.path()).unwrap();
    // A crash leaves the meta file as the open wrote it; a clean close records the journal's
    // end in it (see `records_cut_off_a_closed_journal_are_caught`).
    let meta_at_crash = fs::read(dir.path().join("META")).unwrap();
    book.set_capacity(BranchId(1), 0, 10).unwrap();
    let mut tokens = Vec::new();
    for a in 0..5 {
        let hold = book.reserve(BranchId(1), 0, ApplicantId(a)).unwrap();
        tokens.push(book.confirm(hold.token).unwrap().token);
    }
    drop(book);
    fs::write(dir.path().join("META"), &meta_at_crash).unwrap();
    let seg = segments(dir.path()).pop().unwrap();
    let full = fs::read(&seg).unwrap();
    let last_record = 49; // a booking record

    // Every cut inside the last record, and garbage or zeros after a whole record.
    // (segment bytes, torn bytes expected, bookings expected)
    let mut tails: Vec<(Vec<u8>, u64, u32)> = (1..last_record)
        .map(|cut| {
            (
                full[..full.len() - cut].to_vec(),
                (last_record - cut) as u64,
                4,
            )
        })
        .collect();
    let mut zeros = full.clone();
    zeros.extend_from_slice(&[0; 4096]);
    tails.push((zeros, 4096, 5));
    let mut cut_then_zeros = full[..full.len() - 20].to_vec();
    cut_then_zeros.extend_from_slice(&[0; 100]);
    tails.push((cut_then_zeros, 129, 4));
    let mut cut_then_garbage = full[..full.len() - 30].to_vec();
    cut_then_garbage.extend((0..500u32).map(|i| (i * 7919 % 251) as u8));
    tails.push((cut_then_garbage, 519, 4));

    for (bytes, torn, expect_booked) in tails {
        let copy = copy_dir(dir.path());
        let seg_copy = copy.path().join(seg.file_name().unwrap());
        fs::write(&seg_copy, &bytes).unwrap();
        let book = open(copy.path()).unwrap();
        let recovery = book.journal_stats().unwrap().recovery;
        assert_eq!(recovery.torn_bytes, torn);
        assert_eq!(book.slot(BranchId(1), 0).unwrap().booked, expect_booked);
        assert_eq!(
            book.booking(tokens[4]).is_some(),
            expect_booked == 5,
            "the cut booking is gone, the rest stay"
        );
        // The tail was cut on disk too, and appending continues after the last whole record.
        let hold = book.reserve(BranchId(1), 0, ApplicantId(100)).unwrap();
        let extra = book.confirm(hold.token).unwrap();
        drop(book);
        let book = open(copy.path()).unwrap();
        assert_eq!(book.journal_stats().unwrap().recovery.torn_bytes, 0);
        assert_eq!(book.booking(extra.token), Some(extra));
        assert_eq!(book.slot(BranchId(1), 0).unwrap().booked, expect_booked + 1);
    }
}

#[test]
fn damage_before_the_tail_is_an_error_that_names_file_and_offset_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let book = open(dir.path()).unwrap();
    book.set_capacity(BranchId(1), 0, 10).unwrap(); // record at byte 32, 29 bytes
    for a in 0..3 {
        let hold = book.reserve(BranchId(1), 0, ApplicantId(a)).unwrap();
        book.confirm(hold.token).unwrap(); // records at 61, 110, 159
    }
    drop(book);
    let seg = segments(dir.path()).pop().unwrap();
    let full = fs::read(&seg).unwrap();
    assert_eq!(full.len(), 32 + 29 + 3 * 49);

    // One flipped bit in each record but the last, and in the segment header.
    for (flip, record_start) in [(40, 32), (70, 61), (130, 110), (5, 0)] {
        let copy = copy_dir(dir.path());
        let seg_copy = copy.path().join(seg.file_name().unwrap());
        let mut bytes = full.clone();
        bytes[flip] ^= 0x10;
        fs::write(&seg_copy, &bytes).unwrap();
        match open(copy.path()) {
            Err(OpenError::Corrupt {
                path,
                offset,
                reason,
            }) => {
                assert_eq!(path, seg_copy);
                assert_eq!(offset, record_start, "{reason}");
            }
            other => panic!("flip at {flip}: expected Corrupt, got {other:?}"),
        }
        assert_eq!(fs::read(&seg_copy).unwrap(), bytes, "the file was changed");
    }

    // A record cut out of the middle: the sequence numbers no longer follow.
    let copy = copy_dir(dir.path());
    let seg_copy = copy.path().join(seg.file_name().unwrap());
    let mut bytes = full[..110].to_vec();
    bytes.extend_from_slice(&full[159..]);
    fs::write(&seg_copy, &bytes).unwrap();
    let e = open(copy.path()).unwrap_err();
    assert!(
        matches!(&e, OpenError::Corrupt { offset: 110, reason, .. } if reason.contains("record number 4 where record 3")),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("restore the directory from a backup")
    );
}

#[test]
fn a_checkpoint_replaces_the_journal_before_it_and_reopens_to_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let book = open(dir.path()).unwrap();
    let mut tokens = fill(&book, 20);
    let info = book.checkpoint().unwrap();
    assert_eq!((info.seq, info.slots, info.bookings), (2, 33, 16));
    tokens.extend(fill(&book, 0)); // capacity records after the checkpoint
    let hold = book.reserve(BranchId(2), 5, ApplicantId(500)).unwrap();
    tokens.push(book.confirm(hold.token).unwrap().token);
    book.release(tokens[1]).unwrap();
    let before = state(&book, &tokens);
    drop(book);

    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("0000000000000001")),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n == "checkpoint-0000000000000002.snap")
    );

    let book = open(dir.path()).unwrap();
    let recovery = book.journal_stats().unwrap().recovery;
    assert_eq!(recovery.checkpoint, Some(2));
    assert_eq!(recovery.records, 32 + 2 + 1 + 1);
    assert_eq!(state(&book, &tokens), before);
    book.check_invariants().unwrap();
}

#[test]
fn automatic_checkpoints_keep_the_journal_short() {
    const EVERY: u64 = 1 << 20; // the smallest interval allowed
    let dir = tempfile::tempdir().unwrap();
    let book = SlotBook::builder()
        .clock(ManualClock::new())
        .durable()
        .durability(Durability::None)
        .checkpoint_after_bytes(EVERY)
        .open(dir.path())
        .unwrap();
    book.set_capacity(BranchId(1), 0, 60_000).unwrap();
    let mut tokens = Vec::new();
    for a in 0..50_000 {
        let hold = book.reserve(BranchId(1), 0, ApplicantId(a)).unwrap();
        tokens.push(book.confirm(hold.token).unwrap().token);
    }
    let stats = book.journal_stats().unwrap();
    // 49 bytes a booking record: 50 000 of them cross 1 MiB twice.
    assert_eq!(stats.checkpoints, 2, "{stats:?}");
    assert_eq!(stats.failed_checkpoints, 0);
    assert!(stats.bytes_since_checkpoint < EVERY, "{stats:?}");
    assert_eq!(segments(dir.path()).len(), 1);
    drop(book);
    let book = SlotBook::builder().open(dir.path()).unwrap();
    assert!(book.journal_stats().unwrap().recovery.records < EVERY / 49 + 1);
    assert_eq!(book.slot(BranchId(1), 0).unwrap().booked, 50_000);
    assert!(tokens.iter().all(|t| book.booking(*t).is_some()));
}

#[test]
fn a_checkpoint_interval_below_one_mebibyte_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for bytes in [1, 2_000, (1 << 20) - 1] {
        let r = SlotBook::builder()
            .durable()
            .checkpoint_after_bytes(bytes)
            .open(dir.path());
        assert!(
            matches!(r, Err(OpenError::Config(BookConfigError::CheckpointAfterBytes(b))) if b == bytes),
            "{bytes}"
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing created"
    );
    for bytes in [0, 1 << 20] {
        let book = SlotBook::builder()
            .durable()
            .checkpoint_after_bytes(bytes)
            .open(dir.path())
            .unwrap();
        drop(book);
    }
}

#[test]
fn missing_or_damaged_files_are_errors_not_guesses() {
    let dir = tempfile::tempdir().unwrap();
    let book = open(dir.path()).unwrap();
    fill(&book, 10);
    for slot in [6, 7] {
        let hold = book.reserve(BranchId(2), slot, ApplicantId(77)).unwrap();
        book.confirm(hold.token).unwrap(); // two bookings for one applicant
    }
    book.checkpoint().unwrap();
    fill(&book, 0);
    drop(book);

    // The segment after the checkpoint is gone.
    let copy = copy_dir(dir.path());
    fs::remove_file(copy.path().join("journal-0000000000000002.log")).unwrap();
    let e = open(copy.path()).unwrap_err();
    assert!(
        matches!(&e, OpenError::MissingSegment { path } if path.ends_with("journal-0000000000000002.log")),
        "{e}"
    );

    // The checkpoint is damaged.
    let copy = copy_dir(dir.path());
    let cp = copy.path().join("checkpoint-0000000000000002.snap");
    let mut bytes = fs::read(&cp).unwrap();
    bytes[60] ^= 1;
    fs::write(&cp, &bytes).unwrap();
    let e = open(copy.path()).unwrap_err();
    assert!(
        matches!(&e, OpenError::Corrupt { path, .. } if *path == cp),
        "{e}"
    );

    // The meta file is gone.
    let copy = copy_dir(dir.path());
    fs::remove_file(copy.path().join("META")).unwrap();
    let e = open(copy.path()).unwrap_err();
    assert!(
        matches!(&e, OpenError::Corrupt { path, .. } if path.ends_with("META")),
        "{e}"
    );

    // A book whose limits cannot hold the journal.
    let e = SlotBook::builder()
        .max_slots_per_branch(8)
        .open(dir.path())
        .unwrap_err();
    assert!(
        matches!(&e, OpenError::Incompatible { reason, .. } if reason.contains("max_slots_per_branch")),
        "{e}"
    );
    let e = SlotBook::builder()
        .max_branches(2)
        .open(dir.path())
        .unwrap_err();
    assert!(
        matches!(&e, OpenError::Incompatible { reason, .. } if reason.contains("max_branches")),
        "{e}"
    );
    let e = SlotBook::builder()
        .max_slots_per_branch(64)
        .max_active_per_applicant(1)
        .open(dir.path())
        .unwrap_err();
    assert!(
        matches!(&e, OpenError::Incompatible { reason, .. } if reason.contains("max_active_per_applicant")),
        "{e}"
    );
    // The refused opens changed nothing: the right limits still open it.
    open(dir.path()).unwrap().check_invariants().unwrap();
}

#[test]
fn bad_durable_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ms = std::time::Duration::from_millis;
    for (builder, expected) in [
        (
            SlotBook::builder().durable().durability(Durability::Flush {
                every: std::time::Duration::ZERO,
            }),
            BookConfigError::FlushInterval(std::time::Duration::ZERO),
        ),
        (
            SlotBook::builder().durable().durability(Durability::Flush {
                every: ms(3_600_001),
            }),
            BookConfigError::FlushInterval(ms(3_600_001)),
        ),
        (
            SlotBook::builder().durable().max_batch_records(0),
            BookConfigError::MaxBatchRecords(0),
        ),
        (
            SlotBook::builder().durable().max_batch_records(65_537),
            BookConfigError::MaxBatchRecords(65_537),
        ),
        (
            SlotBook::builder().durable().commit_delay(ms(11)),
            BookConfigError::CommitDelay(ms(11)),
        ),
        (
            // A book setting is checked before the durable ones, and nothing is created.
            SlotBook::builder()
                .hold_ttl(ms(0))
                .durable()
                .commit_delay(ms(11)),
            BookConfigError::HoldTtl(ms(0)),
        ),
    ] {
        let refused = builder.open(dir.path());
        assert!(
            matches!(refused, Err(OpenError::Config(e)) if e == expected),
            "{expected:?}"
        );
        assert!(
            !dir.path().join("META").exists(),
            "a refused setting creates nothing"
        );
    }
    assert!(matches!(
        SlotBook::builder().shards(3).open(dir.path()),
        Err(OpenError::Config(_))
    ));
    // A file where the directory should be.
    let file = dir.path().join("plain-file");
    fs::write(&file, b"x").unwrap();
    assert!(matches!(
        SlotBook::builder().open(&file),
        Err(OpenError::Io { .. })
    ));
    // Nothing was created by the refused opens.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn the_stored_shard_layout_wins_over_the_builder() {
    let dir = tempfile::tempdir().unwrap();
    let book = SlotBook::builder().shards(8).open(dir.path()).unwrap();
    book.set_capacity(BranchId(1), 0, 50).unwrap();
    let tokens: Vec<_> = (0..40)
        .map(|a| {
            let h = book.reserve(BranchId(1), 0, ApplicantId(a)).unwrap();
            book.confirm(h.token).unwrap().token
        })
        .collect();
    drop(book);
    let book = SlotBook::builder().shards(64).open(dir.path()).unwrap();
    book.check_invariants().unwrap();
    assert!(tokens.iter().all(|t| book.booking(*t).is_some()));
    for t in &tokens {
        book.release(*t).unwrap();
    }
    assert_eq!(book.slot(BranchId(1), 0).unwrap().booked, 0);
}

#[test]
fn every_durability_mode_survives_a_close_and_group_commit_batches_concurrent_calls() {
    for durability in [
        Durability::Fsync,
        Durability::Flush {
            every: std::time::Duration::from_millis(5),
        },
        Durability::None,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let book = SlotBook::builder()
            .clock(ManualClock::new())
            .durable()
            .durability(durability)
            .open(dir.path())
            .unwrap();
        book.set_capacity(BranchId(1), 0, 10_000).unwrap();
        let threads = 8;
        let per_thread = 100;
        let tokens: Vec<HoldToken> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let book = &book;
                    s.spawn(move || {
                        let mut mine = Vec::new();
                        for i in 0..per_thread {
                            let a = ApplicantId(t * 1_000 + i);
                            let hold = book.reserve(BranchId(1), 0, a).unwrap();
                            let booking = book.confirm(hold.token).unwrap();
                            if i % 4 == 0 {
                                book.release(booking.token).unwrap();
                            } else {
                                mine.push(booking.token);
                            }
                        }
                        mine
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        book.check_invariants().unwrap();
        let stats = book.journal_stats().unwrap();
        assert_eq!(
            stats.records,
            1 + threads * per_thread + threads * per_thread / 4
        );
        if durability == Durability::Fsync {
            assert_eq!(stats.syncs, stats.batches);
            // Every fsync was timed: the slowest is at most their sum, and a real fsync of a
            // written file takes some time (at least one of them a microsecond or more).
            assert!(stats.sync_us_max <= stats.sync_us_total, "{stats:?}");
            assert!(stats.sync_us_total > 0, "{stats:?}");
        }
        drop(book);
        let book = SlotBook::builder().open(dir.path()).unwrap();
        book.check_invariants().unwrap();
        assert_eq!(
            book.slot(BranchId(1), 0).unwrap().booked as usize,
            tokens.len()
        );
        assert!(tokens.iter().all(|t| book.booking(*t).is_some()));
    }
}

#[test]
fn an_in_memory_book_has_no_journal() {
    let book = SlotBook::builder().build();
    assert!(!book.is_durable());
    assert!(book.journal_stats().is_none());
    assert!(matches!(
        book.checkpoint(),
        Err(surgegate::CheckpointError::NotDurable)
    ));
    assert_eq!(
        book.set_capacity(BranchId(1), u32::MAX, 1),
        Err(CapacityError::SlotOutOfRange {
            slot: u32::MAX,
            last: 65_535
        })
    );
}

#[test]
fn a_commit_delay_keeps_every_acknowledged_booking() {
    let dir = tempfile::tempdir().unwrap();
    let tokens: Vec<_> = {
        let book = SlotBook::builder()
            .durable()
            .commit_delay(std::time::Duration::from_micros(200))
            .open(dir.path())
            .unwrap();
        book.set_capacity(BranchId(1), 0, 1_000).unwrap();
        let book = &book;
        let tokens = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4u64)
                .map(|t| {
                    s.spawn(move || {
                        (0..25u64)
                            .map(|i| {
                                let hold = book
                                    .reserve(BranchId(1), 0, ApplicantId(t * 1_000 + i))
                                    .unwrap();
                                book.confirm(hold.token).unwrap().token
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        let stats = book.journal_stats().unwrap();
        assert_eq!(stats.records, 101, "one capacity and 100 bookings");
        book.check_invariants().unwrap();
        tokens
    };
    let book = SlotBook::builder().open(dir.path()).unwrap();
    for t in tokens {
        assert!(book.booking(t).is_some());
    }
    assert_eq!(book.slot(BranchId(1), 0).unwrap().booked, 100);
}

//! A damaged durable directory is refused, never opened as a smaller book: zeroed, cut and
//! deleted files, junk after the records, records cut off a closed journal, a lost checkpoint.
//! Every refusal names the file and leaves every byte of the directory as it was.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use surgegate::{ApplicantId, BranchId, Durability, ManualClock, OpenError, SlotBook};

#[path = "support/journal_files.rs"]
mod journal_files;
use journal_files::{copy_dir, segments};

fn newest_segment(dir: &Path) -> std::path::PathBuf {
    segments(dir).pop().unwrap()
}

type Book = SlotBook<ManualClock>;

fn open(dir: &Path) -> Result<Book, OpenError> {
    SlotBook::builder()
        .clock(ManualClock::new())
        .durable()
        .durability(Durability::Fsync)
        .open(dir)
}

/// 4 capacities and 50 confirmed bookings, closed cleanly.
fn fifty_bookings(dir: &Path, checkpoint: bool) {
    let book = open(dir).unwrap();
    for b in 0..4 {
        book.set_capacity(BranchId(b), 0, 20).unwrap();
    }
    for a in 0..50u64 {
        if checkpoint && a == 25 {
            book.checkpoint().unwrap();
        }
        let hold = book
            .reserve(BranchId((a % 4) as u32), 0, ApplicantId(a))
            .unwrap();
        book.confirm(hold.token).unwrap();
    }
}

/// Every file's name and bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Damages a copy of `dir` with `damage`, opens it, and checks the open failed without
/// changing a byte (except the lock file, which every open creates).
fn refused(dir: &Path, damage: impl FnOnce(&Path)) -> OpenError {
    let copy = copy_dir(dir);
    damage(copy.path());
    let before = snapshot(copy.path());
    let e = match open(copy.path()) {
        Ok(book) => panic!(
            "a damaged directory opened with {} bookings",
            book.availability(BranchId(0), ..)[0].1.booked
        ),
        Err(e) => e,
    };
    let mut after = snapshot(copy.path());
    after.remove("LOCK");
    let mut before = before;
    before.remove("LOCK");
    assert_eq!(before, after, "a refused open changed the directory ({e})");
    e
}

#[test]
fn a_zeroed_or_cut_newest_segment_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    fifty_bookings(dir.path(), false);
    let seg = newest_segment(dir.path());
    let name = seg.file_name().unwrap().to_owned();
    let len = fs::metadata(&seg).unwrap().len();

    let zeroed = |d: &Path| fs::write(d.join(&name), vec![0u8; len as usize]).unwrap();
    let e = refused(dir.path(), zeroed);
    assert!(
        matches!(&e, OpenError::Corrupt { path, offset: 0, .. } if path.ends_with(&name)),
        "{e}"
    );
    for cut in [0, 20] {
        let e = refused(dir.path(), |d| {
            let f = fs::OpenOptions::new().write(true).open(d.join(&name));
            f.unwrap().set_len(cut).unwrap();
        });
        assert!(
            matches!(&e, OpenError::Corrupt { path, offset: 0, .. } if path.ends_with(&name)),
            "{cut}: {e}"
        );
    }
}

#[test]
fn a_directory_whose_journal_is_gone_is_damage_not_a_new_book() {
    let dir = tempfile::tempdir().unwrap();
    fifty_bookings(dir.path(), false);
    let e = refused(dir.path(), |d| {
        fs::remove_file(newest_segment(d)).unwrap();
    });
    assert!(
        matches!(&e, OpenError::MissingSegment { path } if path.ends_with("journal-0000000000000001.log")),
        "{e}"
    );
    // The meta file gone with the journal kept is damage too.
    let e = refused(dir.path(), |d| fs::remove_file(d.join("META")).unwrap());
    assert!(
        matches!(&e, OpenError::Corrupt { path, .. } if path.ends_with("META")),
        "{e}"
    );
}

#[test]
fn megabytes_of_junk_after_the_records_are_damage_not_a_torn_write() {
    let dir = tempfile::tempdir().unwrap();
    fifty_bookings(dir.path(), false);
    let seg = newest_segment(dir.path());
    let records_end = fs::metadata(&seg).unwrap().len();
    let e = refused(dir.path(), |d| {
        let mut bytes = fs::read(d.join(seg.file_name().unwrap())).unwrap();
        bytes.extend(std::iter::repeat_n(0u8, 2 << 20));
        fs::write(d.join(seg.file_name().unwrap()), bytes).unwrap();
    });
    assert!(
        matches!(&e, OpenError::Corrupt { offset, reason, .. }
            if *offset == records_end && reason.contains("not a torn write")),
        "{e}"
    );
}

#[test]
fn records_cut_off_a_closed_journal_are_caught() {
    for checkpoint in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        fifty_bookings(dir.path(), checkpoint);
        let seg = newest_segment(dir.path());
        let len = fs::metadata(&seg).unwrap().len();
        for records in [1, 3] {
            let e = refused(dir.path(), |d| {
                let f = fs::OpenOptions::new()
                    .write(true)
                    .open(d.join(seg.file_name().unwrap()));
                f.unwrap().set_len(len - 49 * records).unwrap();
            });
            assert!(
                matches!(&e, OpenError::Corrupt { reason, .. } if reason.contains("whole records were lost")),
                "{checkpoint} {records}: {e}"
            );
        }
        // Untouched, it opens with all 50.
        let book = open(dir.path()).unwrap();
        let booked: u32 = (0..4)
            .map(|b| book.slot(BranchId(b), 0).unwrap().booked)
            .sum();
        assert_eq!(booked, 50);
    }
}

#[test]
fn a_deleted_checkpoint_is_reported_as_a_missing_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    fifty_bookings(dir.path(), true);
    let e = refused(dir.path(), |d| {
        fs::remove_file(d.join("checkpoint-0000000000000002.snap")).unwrap();
    });
    assert!(
        matches!(&e, OpenError::MissingCheckpoint { path } if path.ends_with("checkpoint-0000000000000002.snap")),
        "{e}"
    );
}

#[test]
fn an_interrupted_creation_opens_as_a_new_book() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()).unwrap());
    // What a crash between writing the first segment and the meta file leaves.
    fs::remove_file(dir.path().join("META")).unwrap();
    fs::write(dir.path().join("META.tmp"), b"half").unwrap();
    let book = open(dir.path()).unwrap();
    book.set_capacity(BranchId(1), 0, 3).unwrap();
    drop(book);
    assert!(!dir.path().join("META.tmp").exists());
    assert_eq!(
        open(dir.path())
            .unwrap()
            .slot(BranchId(1), 0)
            .unwrap()
            .capacity,
        3
    );
}

#[test]
fn only_files_the_book_named_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let theirs = [
        "checkpoint-notes.tmp",
        "METAdata-backup.tmp",
        "journal-old.log",
    ];
    for name in theirs {
        fs::write(dir.path().join(name), b"an operator's file").unwrap();
    }
    fifty_bookings(dir.path(), true);
    let book = open(dir.path()).unwrap();
    book.checkpoint().unwrap();
    drop(book);
    for name in theirs {
        assert_eq!(
            fs::read(dir.path().join(name)).unwrap(),
            b"an operator's file"
        );
    }
}

#[test]
fn a_failed_checkpoint_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let book = open(dir.path()).unwrap();
    book.set_capacity(BranchId(1), 0, 3).unwrap();
    // The rename onto the checkpoint's name fails: a non-empty directory is in the way.
    let blocker = dir.path().join("checkpoint-0000000000000002.snap");
    fs::create_dir(&blocker).unwrap();
    fs::write(blocker.join("x"), b"x").unwrap();
    assert!(book.checkpoint().is_err());
    let tmps: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(tmps.is_empty(), "{tmps:?}");
    // The journal carries on.
    let hold = book.reserve(BranchId(1), 0, ApplicantId(1)).unwrap();
    book.confirm(hold.token).unwrap();
}

#[test]
fn a_read_only_open_reads_without_locking_or_changing_anything() {
    let dir = tempfile::tempdir().unwrap();
    fifty_bookings(dir.path(), true);
    // A torn tail after the records: reported, not cut.
    let seg = newest_segment(dir.path());
    let mut bytes = fs::read(&seg).unwrap();
    bytes.extend_from_slice(&[7; 30]);
    fs::write(&seg, &bytes).unwrap();
    let before = snapshot(dir.path());
    let (copy, recovery) = SlotBook::builder()
        .clock(ManualClock::new())
        .open_read_only(dir.path())
        .unwrap();
    assert_eq!(
        snapshot(dir.path()),
        before,
        "a read-only open changes nothing"
    );
    assert_eq!((recovery.bookings, recovery.torn_bytes), (50, 30));
    assert_eq!(recovery.checkpoint, Some(2));
    assert!(!copy.is_durable());
    copy.check_invariants().unwrap();

    // It takes no lock: it reads a directory an open book holds.
    let writer = open(dir.path()).unwrap(); // cuts the tail
    let (_, recovery) = SlotBook::builder().open_read_only(dir.path()).unwrap();
    assert_eq!((recovery.bookings, recovery.torn_bytes), (50, 0));
    drop(writer);

    // A missing directory is an error, not a new book.
    let e = SlotBook::builder()
        .open_read_only(dir.path().join("nothing-here"))
        .unwrap_err();
    assert!(matches!(e, OpenError::Io { .. }), "{e}");
}

#[test]
fn a_meta_file_of_format_version_2_still_opens_and_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    fifty_bookings(dir.path(), false);
    // A version-2 meta file: 32 bytes, the shard layout only.
    let meta = fs::read(dir.path().join("META")).unwrap();
    let mut v2 = meta[..32].to_vec();
    v2[8..12].copy_from_slice(&2u32.to_le_bytes());
    v2[20..24].fill(0);
    let crc = crc32c_of_header(&v2);
    v2[12..16].copy_from_slice(&crc.to_le_bytes());
    fs::write(dir.path().join("META"), &v2).unwrap();
    let book = open(dir.path()).unwrap();
    assert_eq!(book.journal_stats().unwrap().recovery.bookings, 50);
    drop(book);
    assert_eq!(fs::read(dir.path().join("META")).unwrap().len(), 48);

    // An unknown version is not damage but a format this build cannot read.
    let mut v9 = fs::read(dir.path().join("META")).unwrap();
    v9[8..12].copy_from_slice(&9u32.to_le_bytes());
    fs::write(dir.path().join("META"), &v9).unwrap();
    let e = open(dir.path()).unwrap_err();
    assert!(
        matches!(&e, OpenError::Incompatible { reason, .. } if reason.contains("format version")),
        "{e}"
    );
}

/// CRC32C of a header whose bytes 12..16 hold the checksum (the meta file's rule).
fn crc32c_of_header(b: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&b[..12]), &b[16..])
}

//! Reading a journal directory back: which files exist, and replaying a segment's records.
//!
//! Guarantee: recovery never guesses. A record is applied only if its checksum holds and its
//! sequence number is the next one. The one damage it repairs is a torn tail: at most one batch's
//! bytes at the very end of the newest segment, after its last intact record, with no intact
//! record after them. That is what a crash in the middle of a write leaves, and those bytes were
//! never acknowledged (an acknowledged batch is whole on disk before its callers return). Damage
//! anywhere else is an error naming the file and the byte offset (the book reports it as
//! `OpenError::Corrupt`).
//!
//! One limit, inherent to checksummed logs without a second copy: damage confined to the very last
//! record of the newest segment looks exactly like a torn write, and that record is cut off. It
//! was either never acknowledged or (under `Fsync`) already on stable storage, so only a fault of
//! the medium itself can put it there.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::format::{
    Change, Decoded, Meta, SEGMENT_HEADER, SegmentHeader, UNKNOWN_VERSION, decode_record,
};
use super::{IoFailure, ReplayError};

pub(crate) const LOCK_FILE: &str = "LOCK";
pub(crate) const META_FILE: &str = "META";

pub(crate) fn segment_name(seq: u64) -> String {
    format!("journal-{seq:016}.log")
}

pub(crate) fn checkpoint_name(seq: u64) -> String {
    format!("checkpoint-{seq:016}.snap")
}

fn parse_seq(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if digits.len() != 16 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether `name` is exactly a temporary name that this crate writes (and so may delete): the
/// meta file's, a checkpoint's or a segment's, each with its exact sequence-number format.
fn is_our_temporary(name: &str) -> bool {
    let Some(base) = name.strip_suffix(".tmp") else {
        return false;
    };
    base == META_FILE
        || parse_seq(base, "checkpoint-", ".snap").is_some()
        || parse_seq(base, "journal-", ".log").is_some()
}

/// An I/O failure on `path` during `action`; it becomes the `Io` variant of `OpenError` or of
/// [`CheckpointError`](super::CheckpointError), whichever operation it happened in.
pub(crate) fn io_error(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> IoFailure {
    let path = path.to_path_buf();
    move |source| IoFailure {
        path,
        action,
        source,
    }
}

/// The journal's files in a directory, by sequence number.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub(crate) segments: BTreeMap<u64, PathBuf>,
    pub(crate) checkpoints: BTreeMap<u64, PathBuf>,
    /// Temporary files of an interrupted atomic write, named exactly as this crate names them.
    pub(crate) leftovers: Vec<PathBuf>,
}

pub(crate) fn list(dir: &Path) -> Result<Listing, IoFailure> {
    let mut listing = Listing::default();
    for entry in fs::read_dir(dir).map_err(io_error(dir, "listing the directory"))? {
        let entry = entry.map_err(io_error(dir, "listing the directory"))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(seq) = parse_seq(name, "journal-", ".log") {
            listing.segments.insert(seq, entry.path());
        } else if let Some(seq) = parse_seq(name, "checkpoint-", ".snap") {
            listing.checkpoints.insert(seq, entry.path());
        } else if is_our_temporary(name) {
            listing.leftovers.push(entry.path());
        }
    }
    Ok(listing)
}

/// Why a replayed change could not be applied.
pub(crate) enum Refusal {
    /// The record contradicts the state before it: the journal is damaged.
    Corrupt(String),
    /// The record is fine but this book's configured limits cannot hold it.
    Incompatible(String),
}

/// The end state of a replayed segment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Replayed {
    /// Bytes of header and intact records: where appending continues.
    pub(crate) len: u64,
    /// The sequence number after the segment's last record.
    pub(crate) next_lsn: u64,
    /// Records applied.
    pub(crate) records: u64,
    /// Bytes of a torn tail that were cut off (only ever in the newest segment).
    pub(crate) torn_bytes: u64,
}

/// How the end of a replayed segment is treated.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Tail {
    /// Not the newest segment: bytes after its last intact record are damage.
    Older,
    /// The newest segment: a torn tail of at most `max_bytes` after its last intact record is
    /// what a crash in the middle of a batch's write leaves. It is cut off the file when `cut`,
    /// and only skipped otherwise (a read-only open).
    Newest { max_bytes: u64, cut: bool },
}

/// Replays segment `seq` at `path`, whose first record must have sequence number `first_lsn`,
/// calling `apply` for each record in order.
///
/// A header that is missing, cut short, zeroed or damaged is an error in every segment: segments
/// are created atomically (header written and synced under a temporary name, then renamed), so
/// no crash leaves one like that.
pub(crate) fn replay_segment(
    path: &Path,
    seq: u64,
    first_lsn: u64,
    tail: Tail,
    apply: &mut dyn FnMut(Change) -> Result<(), Refusal>,
) -> Result<Replayed, ReplayError> {
    let bytes = fs::read(path).map_err(io_error(path, "reading the journal segment"))?;
    match SegmentHeader::decode(&bytes) {
        Ok(header) => check_header(path, &header, seq, first_lsn)?,
        Err(reason) if reason == UNKNOWN_VERSION => {
            return Err(ReplayError::Incompatible {
                path: path.to_path_buf(),
                offset: 0,
                reason: reason.to_string(),
            });
        }
        Err(reason) => return Err(corrupt(path, 0, reason.to_string())),
    }
    let mut at = SEGMENT_HEADER;
    let mut lsn = first_lsn;
    while at < bytes.len() {
        let problem = match decode_record(&bytes[at..]) {
            Decoded::Record {
                lsn: found,
                change,
                len,
            } if found == lsn => {
                apply(change).map_err(|refusal| refused(path, at, refusal))?;
                at += len;
                lsn += 1;
                continue;
            }
            Decoded::Record { lsn: found, .. } => {
                format!("record number {found} where record {lsn} was due")
            }
            Decoded::Cut => "a record cut short".to_string(),
            Decoded::Bad(reason) => reason.to_string(),
        };
        end_of_records(path, &bytes, at, lsn, tail, problem)?;
        break;
    }
    Ok(Replayed {
        len: at as u64,
        next_lsn: lsn,
        records: lsn - first_lsn,
        torn_bytes: (bytes.len() - at) as u64,
    })
}

/// Decides what the bytes from `at` on (which are not record `lsn`) are: a torn tail, cut off
/// (when `tail` says so), or damage.
fn end_of_records(
    path: &Path,
    bytes: &[u8],
    at: usize,
    lsn: u64,
    tail: Tail,
    problem: String,
) -> Result<(), ReplayError> {
    let Tail::Newest { max_bytes, cut } = tail else {
        return Err(corrupt(path, at, problem));
    };
    let torn = (bytes.len() - at) as u64;
    if torn > max_bytes {
        let reason = format!(
            "{problem}, followed by {torn} bytes that are not records: more than one batch \
             ({max_bytes} bytes) can leave behind, so this is damage, not a torn write"
        );
        return Err(corrupt(path, at, reason));
    }
    if intact_record_after(bytes, at, lsn) {
        return Err(corrupt(path, at, problem));
    }
    if cut {
        cut_torn_tail(path, at)?;
    }
    Ok(())
}

fn corrupt(path: &Path, offset: usize, reason: String) -> ReplayError {
    ReplayError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason,
    }
}

/// The error for a record at `offset` that the book refused.
fn refused(path: &Path, offset: usize, refusal: Refusal) -> ReplayError {
    match refusal {
        Refusal::Corrupt(reason) => corrupt(path, offset, reason),
        Refusal::Incompatible(reason) => ReplayError::Incompatible {
            path: path.to_path_buf(),
            offset: offset as u64,
            reason,
        },
    }
}

/// The header names this segment and continues the record numbers of the one before it.
fn check_header(
    path: &Path,
    header: &SegmentHeader,
    seq: u64,
    first_lsn: u64,
) -> Result<(), ReplayError> {
    if header.seq != seq {
        let reason = format!(
            "the header names segment {} but the file name {seq}",
            header.seq
        );
        return Err(corrupt(path, 0, reason));
    }
    if header.first_lsn != first_lsn {
        let reason = format!(
            "the segment starts at record {} but the journal before it ends at record {}",
            header.first_lsn,
            first_lsn - 1
        );
        return Err(corrupt(path, 0, reason));
    }
    Ok(())
}

/// Cuts a torn tail off at `at`, so that appending continues after the last intact record.
fn cut_torn_tail(path: &Path, at: usize) -> Result<(), IoFailure> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_error(path, "opening the segment to cut its torn tail"))?;
    file.set_len(at as u64)
        .and_then(|()| file.sync_all())
        .map_err(io_error(path, "cutting the torn tail"))
}

/// Whether an intact record numbered `min_lsn` or later starts anywhere at or after `from`:
/// if one does, the damage before it is not a torn tail. (At `from` itself only an intact
/// record out of sequence can start: records are missing there, nothing was torn.)
fn intact_record_after(bytes: &[u8], from: usize, min_lsn: u64) -> bool {
    (from..bytes.len()).any(
        |i| matches!(decode_record(&bytes[i..]), Decoded::Record { lsn, .. } if lsn >= min_lsn),
    )
}

/// Creates segment `seq` holding only its header, atomically: written and synced under a
/// temporary name, renamed, and the directory synced. A crash leaves no segment or a whole one.
pub(crate) fn create_segment(dir: &Path, seq: u64, first_lsn: u64) -> Result<PathBuf, IoFailure> {
    let name = segment_name(seq);
    let path = dir.join(&name);
    let header = SegmentHeader { seq, first_lsn }.encode();
    super::io::write_atomically(dir, &name, &header)
        .map_err(io_error(&path, "creating a journal segment"))?;
    Ok(path)
}

/// Replaces the meta file atomically.
pub(crate) fn write_meta(dir: &Path, meta: &Meta) -> Result<(), IoFailure> {
    let path = dir.join(META_FILE);
    super::io::write_atomically(dir, META_FILE, &meta.encode())
        .map_err(io_error(&path, "writing the meta file"))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::journal::format::encode_record;

    fn segment(records: u64) -> Vec<u8> {
        let mut b = SegmentHeader {
            seq: 1,
            first_lsn: 1,
        }
        .encode()
        .to_vec();
        for lsn in 1..=records {
            encode_record(&mut b, lsn, &Change::Cancelled { token: lsn.into() });
        }
        b
    }

    fn replay(bytes: &[u8], newest: bool) -> (Result<Replayed, ReplayError>, Vec<u8>, u64) {
        let tail = if newest {
            Tail::Newest {
                max_bytes: 4 * 49,
                cut: true,
            }
        } else {
            Tail::Older
        };
        replay_as(bytes, tail)
    }

    fn replay_as(bytes: &[u8], tail: Tail) -> (Result<Replayed, ReplayError>, Vec<u8>, u64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(segment_name(1));
        fs::write(&path, bytes).unwrap();
        let mut applied = 0;
        let r = replay_segment(&path, 1, 1, tail, &mut |_| {
            applied += 1;
            Ok(())
        });
        (r, fs::read(&path).unwrap(), applied)
    }

    #[test]
    fn a_torn_tail_is_cut_only_in_the_newest_segment() {
        let whole = segment(3);
        let torn = &whole[..whole.len() - 5];
        let (r, after, applied) = replay(torn, true);
        let r = r.unwrap();
        assert_eq!((r.records, r.next_lsn, applied), (2, 3, 2));
        assert_eq!(r.torn_bytes, 33 - 5);
        assert_eq!(after.len() as u64, r.len);

        let (r, after, _) = replay(torn, false);
        assert!(matches!(r, Err(ReplayError::Corrupt { offset, .. }) if offset == 32 + 2 * 33));
        assert_eq!(after, torn, "a refused segment is left as it was");

        // Read-only: the same answer, the file untouched.
        let tail = Tail::Newest {
            max_bytes: 1 << 20,
            cut: false,
        };
        let (r, after, _) = replay_as(torn, tail);
        assert_eq!(r.unwrap().records, 2);
        assert_eq!(after, torn);
    }

    #[test]
    fn more_junk_than_one_batch_is_damage_not_a_torn_tail() {
        let mut b = segment(2);
        let records_end = b.len() as u64;
        b.extend(std::iter::repeat_n(0u8, 4 * 49));
        assert_eq!(replay(&b, true).0.unwrap().torn_bytes, 4 * 49);
        b.push(0);
        let (r, after, _) = replay(&b, true);
        assert!(
            matches!(r, Err(ReplayError::Corrupt { offset, ref reason, .. })
                if offset == records_end && reason.contains("not a torn write")),
            "{r:?}"
        );
        assert_eq!(after, b, "nothing is cut when the tail is refused");
    }

    #[test]
    fn a_missing_zeroed_or_short_header_is_damage_in_every_segment() {
        for bytes in [vec![], vec![0; 7], vec![0; 31], vec![0; 32], vec![0; 4096]] {
            for newest in [true, false] {
                let (r, after, _) = replay(&bytes, newest);
                assert!(matches!(r, Err(ReplayError::Corrupt { offset: 0, .. })));
                assert_eq!(after, bytes, "left as it was");
            }
        }
        // A damaged header in front of records is damage too.
        let mut b = segment(2);
        b[3] ^= 1;
        assert!(matches!(
            replay(&b, true).0,
            Err(ReplayError::Corrupt { offset: 0, .. })
        ));
        // Another format version is not damage but cannot be read.
        let mut b = segment(1);
        b[8] = 9;
        assert!(matches!(
            replay(&b, true).0,
            Err(ReplayError::Incompatible { offset: 0, .. })
        ));
    }

    #[test]
    fn a_segment_is_created_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = create_segment(dir.path(), 4, 77).unwrap();
        let header = SegmentHeader::decode(&fs::read(&path).unwrap()).unwrap();
        assert_eq!((header.seq, header.first_lsn), (4, 77));
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [segment_name(4)], "no temporary file is left");
    }

    #[test]
    fn only_our_own_temporary_names_count_as_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let ours = [
            "META.tmp",
            "checkpoint-0000000000000003.snap.tmp",
            "journal-0000000000000004.log.tmp",
        ];
        let theirs = [
            "checkpoint-notes.tmp",
            "METAdata-backup.tmp",
            "META.tmp.tmp",
            "checkpoint-3.snap.tmp",
            "journal-000000000000000x.log.tmp",
            "checkpoint-0000000000000003.snap.tmp.bak",
        ];
        for name in ours.iter().chain(theirs.iter()) {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        let mut found: Vec<_> = list(dir.path())
            .unwrap()
            .leftovers
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        found.sort();
        let mut want: Vec<_> = ours.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(found, want);
    }

    #[test]
    fn a_segment_must_continue_the_sequence_and_match_its_name() {
        let mut b = SegmentHeader {
            seq: 1,
            first_lsn: 5,
        }
        .encode()
        .to_vec();
        encode_record(&mut b, 5, &Change::Cancelled { token: 1 });
        assert!(matches!(
            replay(&b, true).0,
            Err(ReplayError::Corrupt { offset: 0, .. })
        ));
        let b = SegmentHeader {
            seq: 2,
            first_lsn: 1,
        }
        .encode();
        assert!(matches!(
            replay(&b, true).0,
            Err(ReplayError::Corrupt { offset: 0, .. })
        ));
    }
}

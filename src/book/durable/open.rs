//! Opening a durable book: the directory lock, the meta file, recovery
//! (the newest checkpoint, then every segment after it) and the journal that appends from there.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::builder::{DurableBookBuilder, DurableSettings};
use crate::book::{OpenError, SlotBook, SlotBookBuilder};
use crate::clock::Clock;
use crate::journal::format::{
    Checkpoint, MAX_RECORD, Meta, SEGMENT_HEADER, SegmentHeader, UNKNOWN_VERSION,
};
use crate::journal::io::{Storage, sync_dir};
use crate::journal::recover::{
    self, LOCK_FILE, Listing, META_FILE, Tail, checkpoint_name, create_segment, io_error,
    segment_name, write_meta,
};
use crate::journal::{Active, Committer, Recovery};
use crate::journal::{Durability, Journal};

impl<C: Clock> DurableBookBuilder<C> {
    /// Opens `dir` on `storage`: the durable settings checked, the directory locked, the book
    /// recovered, the journal started where recovery ended.
    pub(crate) fn open_with(
        self,
        dir: &Path,
        storage: Box<dyn Storage>,
    ) -> Result<SlotBook<C>, OpenError> {
        let started = Instant::now();
        self.book.validate()?;
        self.durable.check()?;
        let settings = self.durable;
        fs::create_dir_all(dir).map_err(io_error(dir, "creating the directory"))?;
        let lock = lock_dir(dir)?;
        let mut listing = recover::list(dir)?;
        let meta = read_or_create_meta(dir, &mut listing, self.book.settings.shards)?;
        let mut book = self.book.assemble(meta.shards, meta.shard_seed, None);
        let (end, mut recovery) = book.recover(dir, &listing, &meta, true)?;
        let io = storage.open_segment(&end.path).map_err(io_error(
            &end.path,
            "opening the newest segment for appending",
        ))?;
        remove_what_recovery_no_longer_needs(dir, &listing, end.first_seq)?;
        let meta = Meta {
            max_batch_records: torn_bound_records(&settings),
            checkpoint: recovery.checkpoint.unwrap_or(0).max(meta.checkpoint),
            min_next_lsn: end.next_lsn,
            ..meta
        };
        write_meta(dir, &meta)?;

        recovery.elapsed_us = started.elapsed().as_micros() as u64;
        let active = Active::new(io, end.seq, end.len, end.next_lsn);
        let committer = Committer::new(
            active,
            settings.durability,
            settings.max_batch_records as usize,
            settings.commit_delay,
        );
        book.journal = Some(Box::new(Journal::new(
            dir.to_path_buf(),
            lock,
            committer,
            meta,
            settings.durability,
            settings.checkpoint_after_bytes,
            storage,
            recovery,
        )?));
        Ok(book)
    }
}

impl<C: Clock> SlotBookBuilder<C> {
    /// Reads a durable book's directory into a book in memory, for auditing a backup or a copy:
    /// the same checks as [`open`](Self::open), but the directory is not locked and nothing in
    /// it is created, repaired or removed (a torn tail is skipped, not cut). The book returned
    /// is not durable: changes to it are not written anywhere. Its [`Recovery`] says what was
    /// found.
    ///
    /// Read a directory that no open book is writing (a copy, or one whose book is closed):
    /// a checkpoint running meanwhile can remove files between their listing and their reading.
    ///
    /// ```
    /// use surgegate::{ApplicantId, BranchId, SlotBook};
    ///
    /// let dir = tempfile::tempdir()?;
    /// {
    ///     let book = SlotBook::builder().open(dir.path())?;
    ///     book.set_capacity(BranchId(1), 0, 3)?;
    ///     let hold = book.reserve(BranchId(1), 0, ApplicantId(9))?;
    ///     book.confirm(hold.token)?;
    /// }
    /// let (copy, recovery) = SlotBook::builder().open_read_only(dir.path())?;
    /// assert_eq!((recovery.slots, recovery.bookings), (1, 1));
    /// assert!(!copy.is_durable());
    /// assert_eq!(copy.bookings_of(ApplicantId(9)).len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_read_only(
        self,
        dir: impl AsRef<Path>,
    ) -> Result<(SlotBook<C>, Recovery), OpenError> {
        let started = Instant::now();
        let dir = dir.as_ref();
        self.validate()?;
        let listing = recover::list(dir)?;
        let path = dir.join(META_FILE);
        let bytes = fs::read(&path).map_err(io_error(&path, "reading the meta file"))?;
        let meta = decode_meta(&path, &bytes)?;
        let book = self.assemble(meta.shards, meta.shard_seed, None);
        let (_, mut recovery) = book.recover(dir, &listing, &meta, false)?;
        recovery.elapsed_us = started.elapsed().as_micros() as u64;
        Ok((book, recovery))
    }
}

/// A journal segment: its sequence number and file.
type Segment = (u64, PathBuf);

/// Where replay ended: the newest segment, where appending continues.
struct ReplayEnd {
    /// The first segment replayed (the newest checkpoint's, or 1).
    first_seq: u64,
    seq: u64,
    path: PathBuf,
    len: u64,
    next_lsn: u64,
}

impl<C: Clock> SlotBook<C> {
    /// Restores the newest checkpoint and replays the journal after it, checking both against
    /// what `meta` says must exist. `repair`: cut a torn tail off the file.
    fn recover(
        &self,
        dir: &Path,
        listing: &Listing,
        meta: &Meta,
        repair: bool,
    ) -> Result<(ReplayEnd, Recovery), OpenError> {
        let mut recovery = Recovery::default();
        let (first_seq, next_lsn) = self.load_checkpoint(dir, listing, meta, &mut recovery)?;
        let (older, newest) = segments_to_replay(dir, listing, first_seq)?;
        let max_bytes = match meta.max_batch_records {
            0 => 65_536 * MAX_RECORD as u64,
            u32::MAX => u64::MAX,
            n => u64::from(n) * MAX_RECORD as u64,
        };
        let tail = Tail::Newest {
            max_bytes,
            cut: repair,
        };
        let end = self.replay(&older, newest, next_lsn, tail, &mut recovery)?;
        if end.next_lsn < meta.min_next_lsn {
            return Err(OpenError::Corrupt {
                path: end.path,
                offset: end.len,
                reason: format!(
                    "the journal ends before record {}, but records up to {} were written \
                     (the meta file recorded it): whole records were lost from the end",
                    end.next_lsn,
                    meta.min_next_lsn - 1
                ),
            });
        }
        (recovery.slots, recovery.bookings) = self.restored_totals();
        Ok((ReplayEnd { first_seq, ..end }, recovery))
    }

    /// Restores the newest checkpoint, if any; returns the first segment to replay after it and
    /// that segment's first record number. The checkpoint the meta file names, or a newer one,
    /// must exist.
    fn load_checkpoint(
        &self,
        dir: &Path,
        listing: &Listing,
        meta: &Meta,
        recovery: &mut Recovery,
    ) -> Result<(u64, u64), OpenError> {
        let newest = listing.checkpoints.last_key_value();
        if meta.checkpoint > 0 && newest.is_none_or(|(&seq, _)| seq < meta.checkpoint) {
            return Err(OpenError::MissingCheckpoint {
                path: dir.join(checkpoint_name(meta.checkpoint)),
            });
        }
        let Some((&seq, path)) = newest else {
            return Ok((1, 1));
        };
        let bytes = fs::read(path).map_err(io_error(path, "reading the checkpoint"))?;
        let corrupt = |offset: u64, reason: String| OpenError::Corrupt {
            path: path.clone(),
            offset,
            reason,
        };
        let cp = Checkpoint::decode(&bytes).map_err(|(offset, reason)| {
            if reason == UNKNOWN_VERSION {
                return OpenError::Incompatible {
                    path: path.clone(),
                    offset,
                    reason: reason.to_string(),
                };
            }
            corrupt(offset, reason.to_string())
        })?;
        if cp.seq != seq {
            let reason = format!(
                "the header names checkpoint {} but the file name {seq}",
                cp.seq
            );
            return Err(corrupt(0, reason));
        }
        self.restore_checkpoint(&cp, path)?;
        recovery.checkpoint = Some(seq);
        Ok((seq, cp.next_lsn))
    }

    /// Replays the older segments in order, then the newest (whose torn tail `tail` treats).
    fn replay(
        &self,
        older: &[Segment],
        (seq, path): Segment,
        mut next_lsn: u64,
        tail: Tail,
        recovery: &mut Recovery,
    ) -> Result<ReplayEnd, OpenError> {
        let mut replay_one = |seq: u64, path: &Path, tail: Tail| {
            let replayed =
                recover::replay_segment(path, seq, next_lsn, tail, &mut |c| self.restore(c))?;
            recovery.records += replayed.records;
            recovery.torn_bytes += replayed.torn_bytes;
            next_lsn = replayed.next_lsn;
            Ok::<_, OpenError>(replayed)
        };
        for (seq, path) in older {
            replay_one(*seq, path, Tail::Older)?;
        }
        let replayed = replay_one(seq, &path, tail)?;
        Ok(ReplayEnd {
            first_seq: 0,
            seq,
            path,
            len: replayed.len,
            next_lsn: replayed.next_lsn,
        })
    }
}

/// The batch size the meta file records for the torn-tail bound: under `Fsync` one batch is the
/// most a crash can leave unsynced; under `Flush` and `None` a machine crash can leave many, so
/// there is no bound (`u32::MAX`).
fn torn_bound_records(settings: &DurableSettings) -> u32 {
    match settings.durability {
        Durability::Fsync => settings.max_batch_records,
        _ => u32::MAX,
    }
}

/// The older segments from `first_seq` on and the newest, which must be consecutive. At least
/// one must exist: a directory is created with its first segment before its meta file.
fn segments_to_replay(
    dir: &Path,
    listing: &Listing,
    first_seq: u64,
) -> Result<(Vec<Segment>, Segment), OpenError> {
    let mut to_replay: Vec<Segment> = Vec::new();
    for (i, (&seq, path)) in listing.segments.range(first_seq..).enumerate() {
        let expected = first_seq + i as u64;
        if seq != expected {
            return Err(OpenError::MissingSegment {
                path: dir.join(segment_name(expected)),
            });
        }
        to_replay.push((seq, path.clone()));
    }
    match to_replay.pop() {
        Some(newest) => Ok((to_replay, newest)),
        None => Err(OpenError::MissingSegment {
            path: dir.join(segment_name(first_seq)),
        }),
    }
}

/// Removes segments and checkpoints before the newest checkpoint (a crash can interrupt their
/// removal) and temporary files.
fn remove_what_recovery_no_longer_needs(
    dir: &Path,
    listing: &Listing,
    first_seq: u64,
) -> Result<(), OpenError> {
    let stale_segments = listing.segments.range(..first_seq).map(|(_, p)| p);
    let stale_checkpoints = listing.checkpoints.range(..first_seq).map(|(_, p)| p);
    let mut removed = false;
    for p in stale_segments
        .chain(stale_checkpoints)
        .chain(listing.leftovers.iter())
    {
        match fs::remove_file(p) {
            // A temporary name may be gone already: an atomic write of this open renamed it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            r => r.map_err(io_error(p, "removing a file recovery no longer needs"))?,
        }
        removed = true;
    }
    if removed {
        sync_dir(dir).map_err(io_error(dir, "syncing the directory"))?;
    }
    Ok(())
}

fn lock_dir(dir: &Path) -> Result<fs::File, OpenError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io_error(&path, "opening the lock file"))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(OpenError::Locked { path }),
        Err(fs::TryLockError::Error(e)) => Err(io_error(&path, "locking the directory")(e).into()),
    }
}

/// The directory's meta file. A new directory gets its first segment and then its meta file,
/// each written atomically, so a directory with a meta file always has a journal. A directory
/// without one is new if it holds nothing of ours but the empty first segment that a creation
/// interrupted before writing the meta file.
fn read_or_create_meta(dir: &Path, listing: &mut Listing, shards: u32) -> Result<Meta, OpenError> {
    let path = dir.join(META_FILE);
    match fs::read(&path) {
        Ok(bytes) => decode_meta(&path, &bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !is_new(listing) {
                return Err(OpenError::Corrupt {
                    path,
                    offset: 0,
                    reason: "the meta file is missing but journal files exist".into(),
                });
            }
            if listing.segments.is_empty() {
                let first = create_segment(dir, 1, 1)?;
                listing.segments.insert(1, first);
            }
            let meta = Meta {
                shards,
                shard_seed: crate::sync::random_key(),
                max_batch_records: 0,
                checkpoint: 0,
                min_next_lsn: 1,
            };
            write_meta(dir, &meta)?;
            Ok(meta)
        }
        Err(e) => Err(io_error(&path, "reading the meta file")(e).into()),
    }
}

/// Whether a directory without a meta file holds nothing of a book but, at most, the empty
/// first segment of an interrupted creation.
fn is_new(listing: &Listing) -> bool {
    if !listing.checkpoints.is_empty() {
        return false;
    }
    match listing.segments.iter().collect::<Vec<_>>()[..] {
        [] => true,
        [(1, path)] => fs::read(path).is_ok_and(|b| {
            SegmentHeader::decode(&b)
                == Ok(SegmentHeader {
                    seq: 1,
                    first_lsn: 1,
                })
                && b.len() == SEGMENT_HEADER
        }),
        _ => false,
    }
}

fn decode_meta(path: &Path, bytes: &[u8]) -> Result<Meta, OpenError> {
    Meta::decode(bytes).map_err(|reason| {
        let (path, reason) = (path.to_path_buf(), reason.to_string());
        if reason == UNKNOWN_VERSION {
            OpenError::Incompatible {
                path,
                offset: 0,
                reason,
            }
        } else {
            OpenError::Corrupt {
                path,
                offset: 0,
                reason,
            }
        }
    })
}

//! Opening a durable book: the durable settings, the directory lock, the meta file, recovery
//! (the newest checkpoint, then every segment after it) and the journal that appends from there.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::super::*;
use crate::journal::format::{Checkpoint, META_LEN, Meta};
use crate::journal::io::{Files, Storage, sync_dir, write_atomically};
use crate::journal::recover::{
    self, LOCK_FILE, Listing, META_FILE, create_segment, io_error, segment_name,
};
use crate::journal::{Active, Committer, Recovery};

impl<C: Clock> SlotBookBuilder<C> {
    /// What `Ok` from a durable book's `set_capacity`, `confirm` and `release` promises. Default
    /// [`Durability::Fsync`].
    /// Only for [`open`](Self::open): given to [`build`](Self::build), it is an error.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.settings.durability = durability;
        self.settings.durable_only.get_or_insert("durability");
        self
    }

    /// Journal bytes after which a durable call also writes a checkpoint, so that recovery
    /// stays fast however long the book runs. Default 64 MiB (about 1.3 million bookings);
    /// 0 turns automatic checkpoints off ([`SlotBook::checkpoint`] still works). The call that
    /// crosses the threshold pays for the checkpoint.
    /// Only for [`open`](Self::open): given to [`build`](Self::build), it is an error.
    pub fn checkpoint_after_bytes(mut self, bytes: u64) -> Self {
        self.settings.checkpoint_after_bytes = bytes;
        self.settings
            .durable_only
            .get_or_insert("checkpoint_after_bytes");
        self
    }

    /// The most records one journal write (and fsync) carries. Default 4096; 1 to 65 536.
    /// 1 gives one fsync per call, without group commit.
    /// Only for [`open`](Self::open): given to [`build`](Self::build), it is an error.
    pub fn max_batch_records(mut self, n: u32) -> Self {
        self.settings.max_batch_records = n;
        self.settings
            .durable_only
            .get_or_insert("max_batch_records");
        self
    }

    /// How long the caller that writes a batch waits for other callers to join it before the
    /// write and fsync (like PostgreSQL's `commit_delay`). Default zero (no wait); at most
    /// 10 ms. A short delay (50–200 µs) makes each fsync carry more records when a few threads
    /// commit at once, at the price of that much more latency per durable call; with many
    /// threads, batches fill by themselves while the previous fsync runs.
    /// Only for [`open`](Self::open): given to [`build`](Self::build), it is an error.
    pub fn commit_delay(mut self, delay: Duration) -> Self {
        self.settings.commit_delay = delay;
        self.settings.durable_only.get_or_insert("commit_delay");
        self
    }

    /// Opens (or creates) a durable book in `dir`: every `set_capacity`, `confirm` and `release`
    /// of a booking is journaled before it returns `Ok`; see [`crate::journal`] for exactly what
    /// survives which crash.
    ///
    /// Recovery loads the newest checkpoint and replays the journal after it. A torn tail (a
    /// record cut by a crash) is cut off; any other damage is an [`OpenError`] that names the
    /// file and offset, and nothing is changed. Holds are not restored: their capacity is free.
    ///
    /// The directory is locked while the book is open: a second open, from this process or
    /// another, is [`OpenError::Locked`]. The shard count is fixed when the directory is
    /// created (tokens encode it); reopening uses the stored one, whatever
    /// [`shards`](Self::shards) says. Other limits apply as set, and a journal that needs more
    /// (slots, branches, bookings per applicant) than they allow is
    /// [`OpenError::Incompatible`].
    ///
    /// ```
    /// use surgegate::{ApplicantId, BranchId, Durability, SlotBook};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let token = {
    ///     let book = SlotBook::builder().durability(Durability::Fsync).open(dir.path())?;
    ///     book.set_capacity(BranchId(7), 0, 40)?;
    ///     let hold = book.reserve(BranchId(7), 0, ApplicantId(42))?;
    ///     book.confirm(hold.token)?.token
    /// }; // dropped: the directory is unlocked
    ///
    /// let book = SlotBook::builder().open(dir.path())?;
    /// assert_eq!(book.booking(token).map(|b| b.applicant), Some(ApplicantId(42)));
    /// assert_eq!(book.slot(BranchId(7), 0).unwrap().remaining(), 39);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(self, dir: impl AsRef<Path>) -> Result<SlotBook<C>, OpenError> {
        self.open_with(dir.as_ref(), Box::new(Files))
    }

    pub(crate) fn open_with(
        self,
        dir: &Path,
        storage: Box<dyn Storage>,
    ) -> Result<SlotBook<C>, OpenError> {
        let started = Instant::now();
        self.validate_durable()?;
        let settings = self.settings.clone();
        fs::create_dir_all(dir).map_err(io_error(dir, "creating the directory"))?;
        let lock = lock_dir(dir)?;
        let listing = recover::list(dir)?;
        let meta = read_or_create_meta(dir, &listing, settings.shards)?;
        let mut book = self.assemble(meta.shards, meta.shard_seed, None);
        let mut recovery = Recovery::default();
        let (first_seq, next_lsn) = book.load_checkpoint(&listing, &mut recovery)?;
        let (older, newest) = segments_to_replay(dir, &listing, first_seq, next_lsn, &recovery)?;
        let end = book.replay(&older, newest, next_lsn, &mut recovery)?;
        let io = storage.open_segment(&end.path).map_err(io_error(
            &end.path,
            "opening the newest segment for appending",
        ))?;
        remove_what_recovery_no_longer_needs(dir, &listing, first_seq)?;

        (recovery.slots, recovery.bookings) = book.restored_totals();
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
            settings.durability,
            settings.checkpoint_after_bytes,
            storage,
            recovery,
        )?));
        Ok(book)
    }

    /// The durable-only settings, checked.
    fn validate_durable(&self) -> Result<(), OpenError> {
        self.validate()?;
        if let Durability::Flush { every } = self.settings.durability
            && !(Duration::from_millis(1)..=Duration::from_secs(3600)).contains(&every)
        {
            return Err(OpenError::DurableConfig(
                "Durability::Flush { every } must be between 1 ms and 1 hour",
            ));
        }
        if self.settings.commit_delay > Duration::from_millis(10) {
            return Err(OpenError::DurableConfig(
                "commit_delay must be at most 10 ms",
            ));
        }
        if !(1..=65_536).contains(&self.settings.max_batch_records) {
            return Err(OpenError::DurableConfig(
                "max_batch_records must be between 1 and 65536",
            ));
        }
        Ok(())
    }
}

/// A journal segment: its sequence number and file.
type Segment = (u64, PathBuf);

/// Where replay ended: the newest segment, where appending continues.
struct ReplayEnd {
    seq: u64,
    path: PathBuf,
    len: u64,
    next_lsn: u64,
}

impl<C: Clock> SlotBook<C> {
    /// Restores the newest checkpoint, if any; returns the first segment to replay after it and
    /// that segment's first record number.
    fn load_checkpoint(
        &self,
        listing: &Listing,
        recovery: &mut Recovery,
    ) -> Result<(u64, u64), OpenError> {
        let Some((&seq, path)) = listing.checkpoints.last_key_value() else {
            return Ok((1, 1));
        };
        let bytes = fs::read(path).map_err(io_error(path, "reading the checkpoint"))?;
        let corrupt = |offset: u64, reason: String| OpenError::Corrupt {
            path: path.clone(),
            offset,
            reason,
        };
        let cp = Checkpoint::decode(&bytes)
            .map_err(|(offset, reason)| corrupt(offset, reason.to_string()))?;
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

    /// Replays the older segments in order, then the newest (whose torn tail is cut).
    fn replay(
        &self,
        older: &[Segment],
        (seq, path): Segment,
        mut next_lsn: u64,
        recovery: &mut Recovery,
    ) -> Result<ReplayEnd, OpenError> {
        let mut replay_one = |seq: u64, path: &Path, newest: bool| {
            let replayed =
                recover::replay_segment(path, seq, next_lsn, newest, &mut |c| self.restore(c))?;
            recovery.records += replayed.records;
            recovery.torn_bytes += replayed.torn_bytes;
            next_lsn = replayed.next_lsn;
            Ok::<_, OpenError>(replayed)
        };
        for (seq, path) in older {
            replay_one(*seq, path, false)?;
        }
        let replayed = replay_one(seq, &path, true)?;
        Ok(ReplayEnd {
            seq,
            path,
            len: replayed.len,
            next_lsn: replayed.next_lsn,
        })
    }
}

/// The older segments from `first_seq` on and the newest, which must be consecutive; for a new
/// directory, its first segment, created now.
fn segments_to_replay(
    dir: &Path,
    listing: &Listing,
    first_seq: u64,
    next_lsn: u64,
    recovery: &Recovery,
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
    if to_replay.is_empty() {
        if recovery.checkpoint.is_some() || !listing.segments.is_empty() {
            return Err(OpenError::MissingSegment {
                path: dir.join(segment_name(first_seq)),
            });
        }
        // A new directory.
        let path = create_segment(dir, first_seq, next_lsn)?;
        return Ok((Vec::new(), (first_seq, path)));
    }
    let newest = to_replay.remove(to_replay.len() - 1);
    Ok((to_replay, newest))
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
        fs::remove_file(p).map_err(io_error(p, "removing a file recovery no longer needs"))?;
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

fn read_or_create_meta(
    dir: &Path,
    listing: &recover::Listing,
    shards: u32,
) -> Result<Meta, OpenError> {
    let path = dir.join(META_FILE);
    match fs::read(&path) {
        Ok(bytes) => Meta::decode(&bytes).map_err(|reason| OpenError::Corrupt {
            path,
            offset: 0,
            reason: reason.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !listing.segments.is_empty() || !listing.checkpoints.is_empty() {
                return Err(OpenError::Corrupt {
                    path,
                    offset: 0,
                    reason: "the meta file is missing but journal files exist".into(),
                });
            }
            let meta = Meta {
                shards,
                shard_seed: crate::sync::random_key(),
            };
            let bytes = meta.encode();
            debug_assert_eq!(bytes.len(), META_LEN);
            write_atomically(dir, META_FILE, &bytes)
                .map_err(io_error(&path, "creating the meta file"))?;
            Ok(meta)
        }
        Err(e) => Err(io_error(&path, "reading the meta file")(e).into()),
    }
}

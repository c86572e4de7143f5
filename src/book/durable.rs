//! The book's durable mode: opening it from a directory (recovery), and checkpoints.
//!
//! Recovery rebuilds the book through the same slot words and ledger shards the live book uses,
//! with dedicated restore steps that check every record against the state before it (a booking
//! on a slot never opened, a token booked twice or a cancellation of no booking is damage, not
//! something to skip).

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering as AtomicOrdering;
use std::time::Instant;

use super::*;
use crate::journal::format::{
    BOOKING_ENTRY, CAPACITY_ENTRY, CHECKPOINT_HEADER, Checkpoint, META_LEN, Meta,
};
use crate::journal::io::{Files, Storage, sync_dir, write_atomically};
use crate::journal::recover::{
    self, LOCK_FILE, META_FILE, Refusal, checkpoint_name, create_segment, io_error, segment_name,
};
use crate::journal::{
    Active, CheckpointError, CheckpointInfo, Committer, JournalStats, OpenError, Recovery,
};

impl<C: Clock> SlotBookBuilder<C> {
    /// What `Ok` from a durable book's `set_capacity`, `confirm` and `release` promises. Default
    /// [`Durability::Fsync`]. Only used by [`open`](Self::open).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.settings.durability = durability;
        self
    }

    /// Journal bytes after which a durable call also writes a checkpoint, so that recovery
    /// stays fast however long the book runs. Default 64 MiB (about 1.3 million bookings);
    /// 0 turns automatic checkpoints off ([`SlotBook::checkpoint`] still works). The call that
    /// crosses the threshold pays for the checkpoint. Only used by [`open`](Self::open).
    pub fn checkpoint_after_bytes(mut self, bytes: u64) -> Self {
        self.settings.checkpoint_after_bytes = bytes;
        self
    }

    /// The most records one journal write (and fsync) carries. Default 4096; 1 to 65 536.
    /// 1 gives one fsync per call, without group commit. Only used by [`open`](Self::open).
    pub fn max_batch_records(mut self, n: u32) -> Self {
        self.settings.max_batch_records = n;
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
        self.validate()?;
        if let Durability::Flush { every } = self.settings.durability
            && !(Duration::from_millis(1)..=Duration::from_secs(3600)).contains(&every)
        {
            return Err(OpenError::DurableConfig(
                "Durability::Flush { every } must be between 1 ms and 1 hour",
            ));
        }
        if !(1..=65_536).contains(&self.settings.max_batch_records) {
            return Err(OpenError::DurableConfig(
                "max_batch_records must be between 1 and 65536",
            ));
        }
        let (durability, checkpoint_after_bytes, max_batch) = (
            self.settings.durability,
            self.settings.checkpoint_after_bytes,
            self.settings.max_batch_records as usize,
        );

        fs::create_dir_all(dir).map_err(io_error(dir, "creating the directory"))?;
        let lock = lock_dir(dir)?;
        let listing = recover::list(dir)?;
        let meta = read_or_create_meta(dir, &listing, self.settings.shards)?;
        let mut book = self.assemble(meta.shards, meta.shard_seed, None);
        let mut recovery = Recovery::default();

        let (first_seq, mut next_lsn) = match listing.checkpoints.last_key_value() {
            Some((&seq, path)) => {
                let bytes = fs::read(path).map_err(io_error(path, "reading the checkpoint"))?;
                let cp =
                    Checkpoint::decode(&bytes).map_err(|(offset, reason)| OpenError::Corrupt {
                        path: path.clone(),
                        offset,
                        reason: reason.to_string(),
                    })?;
                if cp.seq != seq {
                    return Err(OpenError::Corrupt {
                        path: path.clone(),
                        offset: 0,
                        reason: format!(
                            "the header names checkpoint {} but the file name {seq}",
                            cp.seq
                        ),
                    });
                }
                book.restore_checkpoint(&cp, path)?;
                recovery.checkpoint = Some(seq);
                (seq, cp.next_lsn)
            }
            None => (1, 1),
        };

        let mut to_replay: Vec<(u64, PathBuf)> = Vec::new();
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
            to_replay.push((first_seq, create_segment(dir, first_seq, next_lsn)?));
        }
        let mut end = None;
        for (i, (seq, path)) in to_replay.iter().enumerate() {
            let newest = i + 1 == to_replay.len();
            let replayed =
                recover::replay_segment(path, *seq, next_lsn, newest, &mut |c| book.restore(c))?;
            recovery.records += replayed.records;
            recovery.torn_bytes += replayed.torn_bytes;
            next_lsn = replayed.next_lsn;
            end = Some((*seq, path.clone(), replayed.len));
        }
        let (seq, path, len) = end.expect("at least one segment is replayed");
        let io = storage
            .open_segment(&path)
            .map_err(io_error(&path, "opening the newest segment for appending"))?;

        // Files that recovery no longer needs: segments and checkpoints before the newest
        // checkpoint (a crash can interrupt their removal), and temporary files.
        let mut removed = false;
        let stale_segments = listing.segments.range(..first_seq).map(|(_, p)| p);
        let stale_checkpoints = listing.checkpoints.range(..first_seq).map(|(_, p)| p);
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

        let totals = book.restored_totals();
        recovery.slots = totals.0;
        recovery.bookings = totals.1;
        recovery.elapsed_us = started.elapsed().as_micros() as u64;
        let committer = Committer::new(Active::new(io, seq, len, next_lsn), durability, max_batch);
        book.journal = Some(Box::new(Journal::new(
            dir.to_path_buf(),
            lock,
            committer,
            durability,
            checkpoint_after_bytes,
            storage,
            recovery,
        )?));
        Ok(book)
    }
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

impl<C: Clock> SlotBook<C> {
    /// Applies one journal record during recovery.
    fn restore(&self, change: Change) -> Result<(), Refusal> {
        match change {
            Change::Capacity {
                branch,
                slot,
                capacity,
            } => self.restore_capacity(branch, slot, capacity),
            Change::Booked {
                token,
                branch,
                slot,
                applicant,
            } => self.restore_booking(token, branch, slot, applicant),
            Change::Cancelled { token } => self.restore_cancellation(token),
        }
    }

    fn restore_capacity(&self, branch: u32, slot: u32, capacity: u32) -> Result<(), Refusal> {
        if slot >= self.max_slots_per_branch {
            return Err(Refusal::Incompatible(format!(
                "slot {slot} is past this book's max_slots_per_branch ({})",
                self.max_slots_per_branch
            )));
        }
        if capacity > MAX_CAPACITY {
            return Err(Refusal::Corrupt(format!(
                "capacity {capacity} is above any a slot can have"
            )));
        }
        let b = self.branches.get_or_create(BranchId(branch)).map_err(|_| {
            Refusal::Incompatible(format!(
                "the journal has more branches than this book's max_branches ({})",
                self.max_branches
            ))
        })?;
        let Some(word) = b.word_or_create(slot) else {
            return Err(Refusal::Incompatible(format!(
                "slot {slot} is past this book's max_slots_per_branch"
            )));
        };
        word.set_capacity(capacity);
        b.sync_full(slot);
        Ok(())
    }

    fn restore_booking(
        &self,
        token: u128,
        branch: u32,
        slot: u32,
        applicant: u64,
    ) -> Result<(), Refusal> {
        let index = self.shard_of_token(token);
        let applicant = ApplicantId(applicant);
        if self.shard_of_applicant(applicant) != index {
            return Err(Refusal::Corrupt(format!(
                "booking {token:032x} does not route to its applicant's shard"
            )));
        }
        let b = self.branches.get(BranchId(branch));
        let Some((b, word)) = b.and_then(|b| Some((b, b.word(slot)?))) else {
            return Err(Refusal::Corrupt(format!(
                "booking {token:032x} is on branch {branch} slot {slot}, which was never opened"
            )));
        };
        let shard = &self.shards[index];
        let mut ledger = shard.ledger.lock();
        if ledger.records.contains_key(&token) {
            return Err(Refusal::Corrupt(format!(
                "booking {token:032x} is booked twice"
            )));
        }
        if ledger.tokens_of(applicant).count() >= self.max_active_per_applicant {
            return Err(Refusal::Incompatible(format!(
                "{applicant} has more bookings than this book's max_active_per_applicant ({})",
                self.max_active_per_applicant
            )));
        }
        if word.restore_booked().is_err() {
            return Err(Refusal::Corrupt(format!(
                "booking {token:032x} is on branch {branch} slot {slot}, which is not open or cannot count more bookings"
            )));
        }
        b.sync_full(slot);
        let record = Record {
            branch: BranchId(branch),
            slot,
            applicant,
            state: State::Booked,
            at: BranchRef::new(b),
        };
        ledger.insert(token, record, &shard.front_ns, &self.hint);
        Ok(())
    }

    fn restore_cancellation(&self, token: u128) -> Result<(), Refusal> {
        let mut ledger = self.shards[self.shard_of_token(token)].ledger.lock();
        if !ledger
            .records
            .get(&token)
            .is_some_and(|r| r.state == State::Booked)
        {
            return Err(Refusal::Corrupt(format!(
                "cancels booking {token:032x}, which does not exist"
            )));
        }
        if let Some(r) = ledger.remove(token) {
            return_unit(&r);
        }
        Ok(())
    }

    fn restore_checkpoint(&self, cp: &Checkpoint, path: &Path) -> Result<(), OpenError> {
        let refused = |offset: usize, refusal: Refusal| match refusal {
            Refusal::Corrupt(reason) => OpenError::Corrupt {
                path: path.to_path_buf(),
                offset: offset as u64,
                reason,
            },
            Refusal::Incompatible(reason) => OpenError::Incompatible {
                path: path.to_path_buf(),
                offset: offset as u64,
                reason,
            },
        };
        let mut at = CHECKPOINT_HEADER;
        for &(branch, slot, capacity) in &cp.capacities {
            self.restore_capacity(branch, slot, capacity)
                .map_err(|r| refused(at, r))?;
            at += CAPACITY_ENTRY;
        }
        for &(token, branch, slot, applicant) in &cp.bookings {
            self.restore_booking(token, branch, slot, applicant)
                .map_err(|r| refused(at, r))?;
            at += BOOKING_ENTRY;
        }
        Ok(())
    }

    /// Open slots and bookings, counted after recovery.
    fn restored_totals(&self) -> (u64, u64) {
        let slots = self
            .branches
            .iter()
            .map(|b| b.open_slots(0, self.max_slots_per_branch - 1).count() as u64)
            .sum();
        let bookings = self
            .shards
            .iter()
            .map(|s| s.ledger.lock().records.len() as u64)
            .sum();
        (slots, bookings)
    }

    /// Runs a durable call's body under the shared gate, then (outside it) writes a checkpoint if
    /// the journal grew enough.
    pub(super) fn durably<T>(&self, j: &Journal, body: impl FnOnce() -> T) -> T {
        let result = {
            let _gate = j.gate.read();
            body()
        };
        self.after_durable_call(j);
        result
    }

    /// After a durable call, outside the gate: write a checkpoint if the journal grew enough.
    #[cold]
    pub(super) fn after_durable_call(&self, j: &Journal) {
        // Ordering: Acquire/Release on the busy flag only keeps two automatic checkpoints from
        // starting at once; `checkpointing` serialises the checkpoints themselves.
        if j.checkpoint_due() && !j.auto_checkpoint_busy.swap(true, AtomicOrdering::Acquire) {
            if j.checkpoint_due() && self.checkpoint().is_err() {
                j.failed_checkpoints.fetch_add(1, AtomicOrdering::Relaxed);
                // Try again only after as many bytes again, not on every call.
                j.bytes_at_checkpoint.store(
                    j.committer.counters.bytes.load(AtomicOrdering::Relaxed),
                    AtomicOrdering::Relaxed,
                );
            }
            j.auto_checkpoint_busy.store(false, AtomicOrdering::Release);
        }
    }

    /// Writes a checkpoint of a durable book: every capacity and booking, atomically (temporary
    /// file, fsync, rename, fsync of the directory); then removes the journal segments and the
    /// checkpoint it replaces, so recovery reads the checkpoint plus the journal after it.
    ///
    /// Durable calls wait while the state is copied (not while it is written). Runs by itself
    /// every [`checkpoint_after_bytes`](SlotBookBuilder::checkpoint_after_bytes) of journal.
    ///
    /// ```
    /// use surgegate::{BranchId, SlotBook};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let book = SlotBook::builder().open(dir.path())?;
    /// book.set_capacity(BranchId(1), 0, 5)?;
    /// let info = book.checkpoint()?;
    /// assert_eq!(info.slots, 1);
    /// drop(book);
    /// let book = SlotBook::builder().open(dir.path())?;
    /// assert_eq!(book.journal_stats().unwrap().recovery.checkpoint, Some(info.seq));
    /// assert_eq!(book.slot(BranchId(1), 0).unwrap().capacity, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn checkpoint(&self) -> Result<CheckpointInfo, CheckpointError> {
        let j = self.journal.as_ref().ok_or(CheckpointError::NotDurable)?;
        let _one = j.checkpointing.lock();
        let cp = {
            let _gate = j.gate.write();
            let (seq, next_lsn) = j.rotate()?;
            j.bytes_at_checkpoint.store(
                j.committer.counters.bytes.load(AtomicOrdering::Relaxed),
                AtomicOrdering::Relaxed,
            );
            self.snapshot(seq, next_lsn)
        };
        let dir = j.path();
        let name = checkpoint_name(cp.seq);
        let bytes = cp.encode();
        write_atomically(dir, &name, &bytes)
            .map_err(io_error(&dir.join(&name), "writing the checkpoint"))?;
        // The checkpoint is durable: what it replaces can go.
        let listing = recover::list(dir)?;
        let old_segments = listing.segments.range(..cp.seq).map(|(_, p)| p);
        let old_checkpoints = listing.checkpoints.range(..cp.seq).map(|(_, p)| p);
        for p in old_segments.chain(old_checkpoints) {
            fs::remove_file(p).map_err(io_error(p, "removing a replaced journal file"))?;
        }
        sync_dir(dir).map_err(io_error(dir, "syncing the directory"))?;
        j.checkpoints.fetch_add(1, AtomicOrdering::Relaxed);
        Ok(CheckpointInfo {
            seq: cp.seq,
            slots: cp.capacities.len() as u64,
            bookings: cp.bookings.len() as u64,
            bytes: bytes.len() as u64,
        })
    }

    /// Every open slot's capacity and every booking. The caller holds the gate exclusively, so
    /// no capacity or booking changes meanwhile (holds may; they are not part of it).
    fn snapshot(&self, seq: u64, next_lsn: u64) -> Checkpoint {
        let mut cp = Checkpoint {
            seq,
            next_lsn,
            ..Checkpoint::default()
        };
        for b in self.branches.iter() {
            let id = b.id().0;
            cp.capacities.extend(
                b.open_slots(0, self.max_slots_per_branch - 1)
                    .map(|(slot, p)| (id, slot, p.capacity())),
            );
        }
        for shard in self.shards.iter() {
            let ledger = shard.ledger.lock();
            cp.bookings.extend(
                ledger
                    .records
                    .iter()
                    .filter(|(_, r)| r.state == State::Booked)
                    .map(|(&t, r)| (t, r.branch.0, r.slot, r.applicant.0)),
            );
        }
        cp
    }

    /// The journal's counters and what recovery found, for a book opened from a directory.
    pub fn journal_stats(&self) -> Option<JournalStats> {
        self.journal.as_deref().map(Journal::stats)
    }

    /// Whether this book was opened from a directory (and journals its changes).
    pub fn is_durable(&self) -> bool {
        self.journal.is_some()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
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
        while journal.committer.stopped().is_none() {
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
}

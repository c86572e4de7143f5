//! A durable book's calls and checkpoints: every durable call runs inside the journal's shared
//! gate; a checkpoint takes it exclusively while it copies the state, then writes it outside.

use std::fs;

use crate::book::SlotBook;
use crate::book::branches::quota_key;
use crate::book::record::State;
use crate::book::records::pack_slot;
use crate::clock::Clock;
use crate::journal::format::{CLOSED, Checkpoint, QUOTA, QUOTA_CHANNEL_SHIFT};
use crate::journal::io::{sync_dir, write_atomically};
use crate::journal::recover::{self, checkpoint_name, io_error};
use crate::journal::{CheckpointError, CheckpointInfo, Journal, JournalStats};

impl<C: Clock> SlotBook<C> {
    /// Runs a durable call's body under the shared gate, then (outside it) writes a checkpoint if
    /// the journal grew enough.
    pub(in crate::book) fn durably<T>(&self, j: &Journal, body: impl FnOnce() -> T) -> T {
        let result = {
            let _gate = j.enter();
            body()
        };
        self.after_durable_call(j);
        result
    }

    /// After a durable call, outside the gate: write a checkpoint if the journal grew enough.
    #[cold]
    fn after_durable_call(&self, j: &Journal) {
        j.checkpoint_if_due(|| self.checkpoint().is_ok());
    }

    /// Writes a checkpoint of a durable book: every capacity and booking, atomically (temporary
    /// file, fsync, rename, fsync of the directory); then removes the journal segments and the
    /// checkpoint it replaces, so recovery reads the checkpoint plus the journal after it.
    ///
    /// Durable calls wait while the state is copied (not while it is written). Runs by itself
    /// every [`checkpoint_after_bytes`](crate::DurableBookBuilder::checkpoint_after_bytes) of journal.
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
        let _one = j.one_checkpoint();
        let cp = {
            let _gate = j.exclusive();
            let (seq, next_lsn) = j.rotate()?;
            self.snapshot(seq, next_lsn)
        };
        let dir = j.path();
        let name = checkpoint_name(cp.seq);
        let bytes = cp.encode();
        write_atomically(dir, &name, &bytes)
            .map_err(io_error(&dir.join(&name), "writing the checkpoint"))?;
        j.record_checkpoint(cp.seq, cp.next_lsn)?;
        // The checkpoint is durable and recorded: what it replaces can go.
        let listing = recover::list(dir)?;
        let old_segments = listing.segments.range(..cp.seq).map(|(_, p)| p);
        let old_checkpoints = listing.checkpoints.range(..cp.seq).map(|(_, p)| p);
        for p in old_segments.chain(old_checkpoints) {
            fs::remove_file(p).map_err(io_error(p, "removing a replaced journal file"))?;
        }
        sync_dir(dir).map_err(io_error(dir, "syncing the directory"))?;
        j.checkpoint_written();
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
            // Closed slots too (as `CLOSED`): bookings may remain on them.
            for (slot, p) in b.all_slots().filter(|(_, p)| p.is_open()) {
                let quotas = b
                    .quotas(slot)
                    .and_then(|t| t.get(&quota_key(slot)).cloned());
                let capacity = match (&quotas, b.is_closed(slot)) {
                    (_, true) => CLOSED,
                    // The word holds the open view; the entry holds the whole capacity.
                    (Some(cs), false) => cs.capacity,
                    (None, false) => p.capacity(),
                };
                cp.capacities.push((id, slot, capacity));
                // Every channel (those at 0 too, so the slot reads the same after a reopen),
                // and a closed slot's quotas too: they hold again when it is reopened.
                if let Some(cs) = quotas {
                    cp.capacities.extend(cs.channels.iter().map(|(ch, c)| {
                        let entry = QUOTA | u32::from(ch.0) << QUOTA_CHANNEL_SHIFT | c.quota;
                        (id, slot, entry)
                    }));
                }
            }
        }
        for shard in self.shards.iter() {
            let ledger = shard.ledger.lock();
            cp.bookings.extend(
                ledger
                    .records
                    .iter()
                    // No change is in flight (the gate is held exclusively), so no record is
                    // settling.
                    .filter(|(_, _, r)| r.state == State::Booked)
                    .map(|(t, _, r)| (t, r.branch.0, pack_slot(r.slot, r.part), r.applicant.0)),
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

//! Group commit: concurrent callers' records go out in one write and one fsync.
//!
//! Guarantee: [`Committer::commit`] returns `Ok` only after the caller's record was written
//! (and, under [`Durability::Fsync`], synced) behind every record acknowledged before it; it
//! returns `Err` only if the record is not in the journal (or, after a failed fsync, may be there
//! but the journal has stopped, so nothing after it is ever acknowledged).
//!
//! How: callers append their change to the *open batch* under a small mutex and wait. The first
//! caller of a batch to find no write in progress becomes its leader: it takes the whole batch,
//! releases the mutex, encodes, writes and syncs it, then publishes the outcome for everyone in
//! it. Callers arriving meanwhile gather in the next batch, so under load each fsync carries
//! every record that arrived during the previous one. There is never more than one write in
//! flight, so records reach the file in batch order and their sequence numbers stay contiguous.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex};

use super::format::{Change, encode_record};
use super::io::SegmentIo;
use super::{Durability, JournalError};

/// The segment being appended to. Only the batch leader, the flusher and a checkpoint's
/// rotation touch it, one at a time under its mutex.
pub(crate) struct Active {
    pub(crate) io: Box<dyn SegmentIo>,
    pub(crate) seq: u64,
    /// Bytes of the file that hold the header and acknowledged records.
    pub(crate) len: u64,
    /// Of `len`, how many are known to be on stable storage.
    pub(crate) synced_len: u64,
    /// The sequence number the next record gets.
    pub(crate) next_lsn: u64,
    buf: Vec<u8>,
}

impl Active {
    pub(crate) fn new(io: Box<dyn SegmentIo>, seq: u64, len: u64, next_lsn: u64) -> Self {
        Self {
            io,
            seq,
            len,
            synced_len: len,
            next_lsn,
            buf: Vec::new(),
        }
    }
}

/// Callers waiting for batches, and the outcome of each batch.
struct Gather {
    /// The batch new records join.
    open: Vec<Change>,
    /// The id `open` will have when it is written. Ids start at 1.
    open_id: u64,
    /// Every batch with an id up to this one has an outcome.
    finished_id: u64,
    /// A leader is writing a batch.
    leading: bool,
    /// Failed batches: the error and how many of their callers have yet to read it.
    failed: HashMap<u64, (JournalError, usize)>,
    /// Set once the journal can no longer tell what is on disk; every later commit fails.
    stopped: Option<JournalError>,
}

/// Counters kept by the committer. Read with `Relaxed`: they are statistics, not protocol.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) records: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) syncs: AtomicU64,
    pub(crate) bytes: AtomicU64,
}

pub(crate) struct Committer {
    gather: Mutex<Gather>,
    done: Condvar,
    pub(crate) active: Mutex<Active>,
    durability: Durability,
    max_batch: usize,
    pub(crate) counters: Counters,
}

impl Committer {
    pub(crate) fn new(active: Active, durability: Durability, max_batch: usize) -> Self {
        debug_assert!(max_batch >= 1);
        Self {
            gather: Mutex::new(Gather {
                open: Vec::new(),
                open_id: 1,
                finished_id: 0,
                leading: false,
                failed: HashMap::new(),
                stopped: None,
            }),
            done: Condvar::new(),
            active: Mutex::new(active),
            durability,
            max_batch,
            counters: Counters::default(),
        }
    }

    /// Appends `change` to the journal; returns once it is as durable as the journal's
    /// [`Durability`] promises, or with the reason it is not in the journal.
    pub(crate) fn commit(&self, change: Change) -> Result<(), JournalError> {
        let mut g = self.gather.lock();
        loop {
            if g.stopped.is_some() {
                return Err(JournalError::Stopped);
            }
            if g.open.len() < self.max_batch {
                break;
            }
            // The open batch is full: wait for a leader to take it.
            self.done.wait(&mut g);
        }
        let mine = g.open_id;
        g.open.push(change);
        loop {
            if g.finished_id >= mine {
                return match g.failed.get_mut(&mine) {
                    None => Ok(()),
                    Some((error, unread)) => {
                        let error = *error;
                        *unread -= 1;
                        if *unread == 0 {
                            g.failed.remove(&mine);
                        }
                        Err(error)
                    }
                };
            }
            if !g.leading && g.open_id == mine {
                return self.lead(g, mine);
            }
            self.done.wait(&mut g);
        }
    }

    /// Writes the open batch `id` as its leader and publishes the outcome.
    fn lead(
        &self,
        mut g: parking_lot::MutexGuard<'_, Gather>,
        id: u64,
    ) -> Result<(), JournalError> {
        g.leading = true;
        let batch = std::mem::take(&mut g.open);
        g.open_id += 1;
        // Callers waiting for room in a full batch may join the next one now.
        self.done.notify_all();
        // The journal may have stopped (a failed background fsync) after these callers joined:
        // then nothing more is written.
        let stopped = g.stopped.is_some();
        drop(g);

        let outcome = if stopped {
            Err((JournalError::Stopped, true))
        } else {
            self.write(&batch)
        };

        let mut g = self.gather.lock();
        g.leading = false;
        g.finished_id = id;
        let result = match outcome {
            Ok(()) => Ok(()),
            Err((error, stop)) => {
                if batch.len() > 1 {
                    g.failed.insert(id, (error, batch.len() - 1));
                }
                if stop {
                    g.stopped.get_or_insert(error);
                }
                Err(error)
            }
        };
        drop(g);
        self.done.notify_all();
        result
    }

    /// Encodes, writes and (under `Fsync`) syncs one batch. On failure: the error, and whether
    /// the journal must stop because it cannot tell what reached the disk.
    fn write(&self, batch: &[Change]) -> Result<(), (JournalError, bool)> {
        let mut a = self.active.lock();
        let a = &mut *a;
        a.buf.clear();
        for (i, change) in batch.iter().enumerate() {
            encode_record(&mut a.buf, a.next_lsn + i as u64, change);
        }
        let at = a.len;
        if let Err(e) = a.io.write_at(at, &a.buf) {
            // Part of the batch may be in the file: cut it off, so the file ends at the last
            // acknowledged record again. If even that fails, stop.
            let rolled_back = a.io.truncate(at).and_then(|()| a.io.sync()).is_ok();
            return Err((JournalError::Write(e.kind()), !rolled_back));
        }
        let end = at + a.buf.len() as u64;
        if self.durability == Durability::Fsync {
            self.counters.syncs.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = a.io.sync() {
                // After a failed fsync the kernel may have dropped the written pages, so what is
                // on disk is unknown. Try to cut the batch off, and stop either way.
                let _ = a.io.truncate(at).and_then(|()| a.io.sync());
                return Err((JournalError::Sync(e.kind()), true));
            }
            a.synced_len = end;
        }
        a.len = end;
        a.next_lsn += batch.len() as u64;
        self.counters
            .records
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes
            .fetch_add(a.buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Syncs whatever was written but not yet synced. A failure stops the journal: records
    /// already acknowledged may not be on stable storage.
    pub(crate) fn flush(&self) -> Result<(), JournalError> {
        let mut a = self.active.lock();
        if a.synced_len == a.len {
            return Ok(());
        }
        self.counters.syncs.fetch_add(1, Ordering::Relaxed);
        match a.io.sync() {
            Ok(()) => {
                a.synced_len = a.len;
                Ok(())
            }
            Err(e) => {
                drop(a);
                Err(self.stop(JournalError::Sync(e.kind())))
            }
        }
    }

    /// Stops the journal with `error` (the first error wins); returns the error now in force.
    pub(crate) fn stop(&self, error: JournalError) -> JournalError {
        *self.gather.lock().stopped.get_or_insert(error)
    }

    /// Whether the journal has stopped.
    pub(crate) fn stopped(&self) -> Option<JournalError> {
        self.gather.lock().stopped
    }
}

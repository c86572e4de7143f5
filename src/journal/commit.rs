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

use crate::sync::{AtomicU64, Condvar, Mutex, MutexGuard, Ordering};

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

/// A submitted change's batch, to [`Committer::wait`] for.
#[must_use = "a submitted change must be waited for"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket(u64);

/// Counters kept by the committer. Read with `Relaxed`: they are statistics, not protocol.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) records: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) syncs: AtomicU64,
    /// Microseconds spent in those syncs, in all and in the slowest one.
    pub(crate) sync_us_total: AtomicU64,
    pub(crate) sync_us_max: AtomicU64,
    pub(crate) bytes: AtomicU64,
}

impl Counters {
    /// Runs one sync, counting it and its duration (wall time: a measurement of the disk, not a
    /// decision of the book, so it does not come from the book's clock).
    fn timed_sync(&self, sync: impl FnOnce() -> std::io::Result<()>) -> std::io::Result<()> {
        let started = std::time::Instant::now();
        let result = sync();
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.sync_us_total.fetch_add(us, Ordering::Relaxed);
        self.sync_us_max.fetch_max(us, Ordering::Relaxed);
        result
    }
}

pub(crate) struct Committer {
    gather: Mutex<Gather>,
    /// Callers of batch `k` wait on `done[k % 2]`: a finished batch wakes its own callers and
    /// one caller of the next batch (its leader), not everyone.
    done: [Condvar; 2],
    /// Callers waiting for room in a full open batch.
    space: Condvar,
    pub(crate) active: Mutex<Active>,
    durability: Durability,
    max_batch: usize,
    /// How long a batch's leader waits for more callers before writing (zero: not at all).
    commit_delay: std::time::Duration,
    pub(crate) counters: Counters,
}

impl Committer {
    pub(crate) fn new(
        active: Active,
        durability: Durability,
        max_batch: usize,
        commit_delay: std::time::Duration,
    ) -> Self {
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
            done: [Condvar::new(), Condvar::new()],
            space: Condvar::new(),
            active: Mutex::new(active),
            durability,
            max_batch,
            commit_delay,
            counters: Counters::default(),
        }
    }

    /// Appends `change` to the journal; returns once it is as durable as the journal's
    /// [`Durability`] promises, or with the reason it is not in the journal.
    pub(crate) fn commit(&self, change: Change) -> Result<(), JournalError> {
        let ticket = self.submit(change)?;
        self.wait(ticket)
    }

    /// Puts `change` in the open batch and returns at once: its place in the journal (after
    /// every change submitted before it) is fixed now, its outcome is [`wait`](Self::wait)'s.
    /// The caller must wait for the ticket: a batch's leader is one of its waiters.
    pub(crate) fn submit(&self, change: Change) -> Result<Ticket, JournalError> {
        let mut g = self.gather.lock();
        loop {
            if g.stopped.is_some() {
                return Err(JournalError::Stopped);
            }
            if g.open.len() < self.max_batch {
                break;
            }
            // The open batch is full: wait for a leader to take it.
            g = self.space.wait(g);
        }
        g.open.push(change);
        Ok(Ticket(g.open_id))
    }

    /// Waits until the batch of a submitted change is written (and synced, under
    /// [`Durability::Fsync`]), leading it if no write is in flight; returns its outcome.
    pub(crate) fn wait(&self, ticket: Ticket) -> Result<(), JournalError> {
        let mine = ticket.0;
        let mut g = self.gather.lock();
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
            g = self.done[(mine % 2) as usize].wait(g);
        }
    }

    /// Writes the open batch `id` as its leader and publishes the outcome.
    fn lead<'a>(&'a self, mut g: MutexGuard<'a, Gather>, id: u64) -> Result<(), JournalError> {
        g.leading = true;
        if !self.commit_delay.is_zero() && g.open.len() < self.max_batch {
            // Give callers about to commit the time to join this batch (they append to the open
            // batch while we lead it), so that one fsync carries more records.
            drop(g);
            #[cfg(not(loom))]
            std::thread::sleep(self.commit_delay);
            g = self.gather.lock();
        }
        let batch = std::mem::take(&mut g.open);
        g.open_id += 1;
        // Callers waiting for room in a full batch may join the next one now.
        self.space.notify_all();
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
        // Whether a next batch has callers (it has, if it is open and not empty).
        let next_waiting = !g.open.is_empty();
        drop(g);
        // This batch's callers learn its outcome; one caller of the next batch leads it.
        self.done[(id % 2) as usize].notify_all();
        if next_waiting {
            self.done[((id + 1) % 2) as usize].notify_one();
        }
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
            if let Err(e) = self.counters.timed_sync(|| a.io.sync()) {
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
        match self.counters.timed_sync(|| a.io.sync()) {
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

/// loom models of group commit, over an in-memory segment that can fail its fsyncs. Run with
/// `RUSTFLAGS="--cfg loom" cargo test --release --lib loom_`.
#[cfg(all(test, loom))]
mod loom_tests {
    use std::io;
    use std::sync::{Arc, Mutex as StdMutex};

    use super::*;
    use crate::journal::format::{Decoded, decode_record};

    /// What reached the in-memory segment.
    #[derive(Default)]
    struct Disk {
        bytes: Vec<u8>,
        /// Bytes known to be on stable storage.
        synced: usize,
        /// The fsync (counting from 1) that fails, if any.
        fail_sync: Option<u32>,
        syncs: u32,
        /// Set once an fsync failed: any write after it breaks "nothing after it".
        sync_failed: bool,
        written_after_failure: bool,
    }

    struct MemSegment(Arc<StdMutex<Disk>>);

    impl SegmentIo for MemSegment {
        fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
            let mut d = self.0.lock().unwrap();
            d.written_after_failure |= d.sync_failed;
            d.bytes.truncate(offset as usize);
            d.bytes.extend_from_slice(bytes);
            Ok(())
        }
        fn sync(&mut self) -> io::Result<()> {
            let mut d = self.0.lock().unwrap();
            d.syncs += 1;
            if d.fail_sync == Some(d.syncs) {
                d.sync_failed = true;
                return Err(io::Error::other("injected fsync failure"));
            }
            if !d.sync_failed {
                d.synced = d.bytes.len();
            }
            Ok(())
        }
        fn truncate(&mut self, len: u64) -> io::Result<()> {
            let mut d = self.0.lock().unwrap();
            d.bytes.truncate(len as usize);
            d.synced = d.synced.min(len as usize);
            Ok(())
        }
    }

    /// The changes in the synced prefix of the segment.
    fn synced_changes(disk: &StdMutex<Disk>) -> Vec<Change> {
        let d = disk.lock().unwrap();
        let mut at = 0;
        let mut out = Vec::new();
        while let Decoded::Record { change, len, .. } = decode_record(&d.bytes[at..d.synced]) {
            out.push(change);
            at += len;
        }
        out
    }

    fn change(n: u32) -> Change {
        Change::Capacity {
            branch: n,
            slot: 0,
            capacity: 1,
        }
    }

    /// Three callers commit at once; the `fail_sync`-th fsync fails (or none).
    fn run(fail_sync: Option<u32>) {
        let executions = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = executions.clone();
        loom::model(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let disk = Arc::new(StdMutex::new(Disk {
                fail_sync,
                ..Disk::default()
            }));
            let segment = Box::new(MemSegment(disk.clone()));
            let committer = Arc::new(Committer::new(
                Active::new(segment, 1, 0, 1),
                Durability::Fsync,
                8,
                std::time::Duration::ZERO,
            ));
            let callers: Vec<_> = (0..3)
                .map(|n| {
                    let (committer, disk) = (committer.clone(), disk.clone());
                    loom::thread::spawn(move || {
                        let result = committer.commit(change(n));
                        // `Ok` only once the caller's batch is synced.
                        if result.is_ok() {
                            assert!(
                                synced_changes(&disk).contains(&change(n)),
                                "caller {n} got Ok before its record was synced"
                            );
                        }
                        result
                    })
                })
                .collect();
            let results: Vec<_> = callers.into_iter().map(|h| h.join().unwrap()).collect();
            let d = disk.lock().unwrap();
            assert!(
                !d.written_after_failure,
                "a batch was written after a failed fsync"
            );
            if d.sync_failed {
                // Every caller whose record is not synced failed; none after the failure got Ok.
                let synced = {
                    drop(d);
                    synced_changes(&disk)
                };
                for (n, r) in results.iter().enumerate() {
                    let in_synced = synced.contains(&change(n as u32));
                    assert_eq!(r.is_ok(), in_synced, "caller {n}: {r:?}");
                }
                assert!(
                    results
                        .iter()
                        .any(|r| matches!(r, Err(JournalError::Sync(_))))
                );
            } else {
                assert!(results.iter().all(Result::is_ok), "{results:?}");
            }
        });
        println!(
            "loom model group commit, fsync {fail_sync:?} fails: {} executions",
            executions.load(std::sync::atomic::Ordering::Relaxed)
        );
    }

    #[test]
    fn loom_group_commit_acknowledges_only_synced_batches() {
        run(None);
    }

    #[test]
    fn loom_group_commit_a_failed_first_fsync_fails_its_batch_and_everything_after() {
        run(Some(1));
    }

    #[test]
    fn loom_group_commit_a_failed_second_fsync_fails_its_batch_and_everything_after() {
        run(Some(2));
    }
}

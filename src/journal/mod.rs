//! The durable mode of a [`SlotBook`](crate::SlotBook): an append-only journal, checkpoints, and
//! recovery that refuses to guess.
//!
//! A book opened with [`SlotBookBuilder::open`](crate::SlotBookBuilder::open) writes every
//! `set_capacity`, every `confirm` and every `release` of a booking to the journal *before* the
//! call returns `Ok` and before the change is visible to any other caller. Reopening the
//! directory restores every capacity and booking, tokens included.
//!
//! **Holds are not journaled.** A hold lives for minutes and is only a promise until it is
//! confirmed; journaling it would double the writes of every booking for state that is
//! worthless after a restart (its applicant's session is gone too). After a reopen, the capacity
//! that unconfirmed holds took is free again, and confirming such a hold is `UnknownToken`.
//!
//! # What `Ok` means: [`Durability`]
//!
//! | mode | `Ok` means the change survives | fsync |
//! |---|---|---|
//! | [`Durability::Fsync`] (default) | a crash of the process or of the machine | before `Ok`, shared by concurrent callers |
//! | [`Durability::Flush`] | a crash of the process; a machine crash loses at most the last `every` | by a background thread, every `every` |
//! | [`Durability::None`] | a crash of the process | never, except at checkpoints and when the book is dropped |
//!
//! # Files
//!
//! A directory holds `LOCK` (held with `flock` while a book has it open), `META` (the shard
//! layout that tokens encode, fixed at creation), journal segments `journal-<seq>.log` and at
//! most one checkpoint `checkpoint-<seq>.snap` (the state before segment `seq`). The formats are
//! described in the `format` module; every record carries a CRC32C.
//!
//! # Failures
//!
//! If a write fails, the batch is cut off the file again and every call in it returns an error
//! and changes nothing; the journal carries on. If an fsync fails, the kernel may have dropped
//! the written pages, so the journal cannot know what is on disk: the calls in that batch return
//! an error and change nothing, and the journal *stops*: every later durable call returns
//! [`JournalError::Stopped`] until the book is reopened. (A change whose call failed this way may
//! still be found after the reopen if its bytes did reach the disk; since nothing after it was
//! ever granted, it cannot overbook.)

mod commit;
pub(crate) mod format;
pub(crate) mod io;
pub(crate) mod recover;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use thiserror::Error;

pub(crate) use commit::{Active, Committer, Ticket};
pub(crate) use format::Change;

/// When a durable book's `Ok` is on stable storage. See the [module docs](self) for the table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// `Ok` after the change is written *and* `fdatasync`ed: it survives a power loss.
    /// Concurrent callers share one write and one fsync (group commit).
    #[default]
    Fsync,
    /// `Ok` after the change is written to the operating system: it survives a crash of the
    /// process (even `SIGKILL`). A background thread fsyncs every `every`, so a crash of the
    /// machine loses at most the changes acknowledged in the last `every` plus one fsync's time.
    /// `every` must be between 1 ms and 1 hour.
    Flush {
        /// The longest time between fsyncs.
        every: Duration,
    },
    /// `Ok` after the change is written to the operating system; no fsync except at
    /// checkpoints and when the book is dropped. Survives a crash of the process, not of the
    /// machine. For tests and benchmarks.
    None,
}

/// Why the journal could not record a change. The call that returns it changed nothing.
///
/// Kept `Copy` (the operation errors that carry it are): it holds the [`std::io::ErrorKind`]
/// of the failure, not the whole error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum JournalError {
    /// Writing the journal failed (a full disk, say). The partial write was removed and the
    /// journal carries on: the call may be retried once the cause is fixed.
    #[error(
        "the journal could not be written ({0}), so the change was not made: free disk space or fix the storage, then retry"
    )]
    Write(std::io::ErrorKind),
    /// Syncing the journal failed. What reached the disk is unknown, so the journal stopped.
    #[error(
        "the journal could not be synced to stable storage ({0}), so the change was not made and the journal stopped: fix the storage and reopen the book"
    )]
    Sync(std::io::ErrorKind),
    /// An earlier storage failure stopped the journal; no durable change is possible until the
    /// book is reopened.
    #[error(
        "the journal stopped after an earlier storage failure, so the change was not made: fix the storage and reopen the book"
    )]
    Stopped,
}

impl JournalError {
    /// Whether the same call can succeed once the storage's trouble is fixed, without reopening
    /// the book: after a failed write (the journal carries on), not after a failed sync (the
    /// journal stopped).
    pub fn is_retryable(&self) -> bool {
        matches!(self, JournalError::Write(_))
    }
}

/// An I/O failure on one path during one step, shared by the steps of opening and of
/// checkpointing; it becomes the `Io` variant of [`OpenError`](crate::OpenError) or
/// [`CheckpointError`].
#[derive(Debug)]
pub(crate) struct IoFailure {
    pub(crate) path: PathBuf,
    pub(crate) action: &'static str,
    pub(crate) source: std::io::Error,
}

/// What is wrong with a journal file, found while replaying it. The book turns it into the
/// matching [`OpenError`](crate::OpenError) variant.
#[derive(Debug)]
pub(crate) enum ReplayError {
    /// Reading or repairing the file failed.
    Io(IoFailure),
    /// The file is damaged at `offset`.
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// The record at `offset` is intact, but the book's limits cannot hold it.
    Incompatible {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

impl From<IoFailure> for ReplayError {
    fn from(f: IoFailure) -> Self {
        ReplayError::Io(f)
    }
}

impl From<IoFailure> for CheckpointError {
    fn from(f: IoFailure) -> Self {
        CheckpointError::Io {
            path: f.path,
            action: f.action,
            source: f.source,
        }
    }
}

/// Why [`SlotBook::checkpoint`](crate::SlotBook::checkpoint) wrote no checkpoint. The journal is
/// unaffected (recovery just replays more of it) unless the error says it stopped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The book was built in memory (`build`), not opened from a directory.
    #[error("this book has no journal (it was built, not opened from a directory)")]
    NotDurable,
    /// The journal has stopped; see [`JournalError`].
    #[error("{0}")]
    Journal(#[from] JournalError),
    /// The file system refused an operation.
    #[error("{action} failed for {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// What [`SlotBook::checkpoint`](crate::SlotBook::checkpoint) wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckpointInfo {
    /// The checkpoint's sequence number: the journal segment that continues from it.
    pub seq: u64,
    /// Open slots it holds.
    pub slots: u64,
    /// Bookings it holds.
    pub bookings: u64,
    /// Size of the file.
    pub bytes: u64,
}

/// What recovery found when the book was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// The checkpoint the state was loaded from, if any (its sequence number).
    pub checkpoint: Option<u64>,
    /// Journal records replayed after the checkpoint.
    pub records: u64,
    /// Bytes of a torn tail (a record cut by a crash) that were cut off the newest segment.
    pub torn_bytes: u64,
    /// Open slots restored.
    pub slots: u64,
    /// Bookings restored.
    pub bookings: u64,
    /// Time spent, in microseconds.
    pub elapsed_us: u64,
}

/// Counters of a durable book's journal since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalStats {
    /// Records written.
    pub records: u64,
    /// Batches written (one write each).
    pub batches: u64,
    /// fsyncs of journal segments.
    pub syncs: u64,
    /// Microseconds spent in those fsyncs (their mean latency is this over `syncs`).
    pub sync_us_total: u64,
    /// The slowest of those fsyncs, in microseconds.
    pub sync_us_max: u64,
    /// Journal bytes written since the last checkpoint (or the open).
    pub bytes_since_checkpoint: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Automatic checkpoints that failed (the journal carries on; recovery replays more).
    pub failed_checkpoints: u64,
    /// What the open found.
    pub recovery: Recovery,
}

/// The journal of a durable book.
pub(crate) struct Journal {
    dir: PathBuf,
    committer: Arc<Committer>,
    /// Durable calls hold it shared from before their record is written until their change is
    /// applied; a checkpoint holds it exclusively, so it sees no change half done.
    gate: RwLock<()>,
    /// One checkpoint at a time.
    checkpointing: Mutex<()>,
    auto_checkpoint_busy: AtomicBool,
    /// Journal bytes after which a durable call writes a checkpoint (0: never).
    checkpoint_after_bytes: u64,
    /// The committer's byte count when the last checkpoint rotated the journal.
    bytes_at_checkpoint: AtomicU64,
    checkpoints: AtomicU64,
    failed_checkpoints: AtomicU64,
    storage: Box<dyn io::Storage>,
    recovery: Recovery,
    /// The meta file's contents, rewritten at each checkpoint and at a clean close.
    meta: Mutex<format::Meta>,
    flusher: Option<Flusher>,
    // Last: released when the journal is dropped, after the final sync.
    _lock: File,
}

struct Flusher {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Journal {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        dir: PathBuf,
        lock: File,
        committer: Committer,
        meta: format::Meta,
        durability: Durability,
        checkpoint_after_bytes: u64,
        storage: Box<dyn io::Storage>,
        recovery: Recovery,
    ) -> Result<Self, IoFailure> {
        let committer = Arc::new(committer);
        let flusher = match durability {
            Durability::Flush { every } => Some(Flusher::start(committer.clone(), every, &dir)?),
            _ => None,
        };
        Ok(Self {
            dir,
            committer,
            gate: RwLock::new(()),
            checkpointing: Mutex::new(()),
            auto_checkpoint_busy: AtomicBool::new(false),
            checkpoint_after_bytes,
            bytes_at_checkpoint: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            failed_checkpoints: AtomicU64::new(0),
            storage,
            recovery,
            meta: Mutex::new(meta),
            flusher,
            _lock: lock,
        })
    }

    /// Enters the shared side of the gate: a durable call holds it from before its record is
    /// written until its change is applied.
    pub(crate) fn enter(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read()
    }

    /// Takes the gate exclusively: no durable call is half done while the guard lives.
    pub(crate) fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.gate.write()
    }

    /// Serialises checkpoints: one at a time.
    pub(crate) fn one_checkpoint(&self) -> MutexGuard<'_, ()> {
        self.checkpointing.lock()
    }

    /// Records in the meta file that checkpoint `seq`, whose segment starts at record
    /// `next_lsn`, now exists, so that recovery refuses a directory that lost it.
    pub(crate) fn record_checkpoint(&self, seq: u64, next_lsn: u64) -> Result<(), IoFailure> {
        let mut meta = self.meta.lock();
        let updated = format::Meta {
            checkpoint: seq.max(meta.checkpoint),
            min_next_lsn: next_lsn.max(meta.min_next_lsn),
            ..*meta
        };
        recover::write_meta(&self.dir, &updated)?;
        *meta = updated;
        Ok(())
    }

    /// Counts a checkpoint written to the end.
    pub(crate) fn checkpoint_written(&self) {
        // Ordering: Relaxed: a statistic.
        self.checkpoints.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs `checkpoint` if enough journal was written since the last one and no automatic
    /// checkpoint is running; `checkpoint` says whether it succeeded. After a failure the next
    /// attempt waits for as many bytes again, not for the next call.
    pub(crate) fn checkpoint_if_due(&self, checkpoint: impl FnOnce() -> bool) {
        // Ordering: Acquire/Release on the busy flag only keeps two automatic checkpoints from
        // starting at once; `checkpointing` serialises the checkpoints themselves.
        if !self.checkpoint_due() || self.auto_checkpoint_busy.swap(true, Ordering::Acquire) {
            return;
        }
        if self.checkpoint_due() && !checkpoint() {
            // Ordering: Relaxed: a statistic and a trigger.
            self.failed_checkpoints.fetch_add(1, Ordering::Relaxed);
            self.restart_checkpoint_count();
        }
        self.auto_checkpoint_busy.store(false, Ordering::Release);
    }

    /// Counts journal bytes towards the next checkpoint from now.
    fn restart_checkpoint_count(&self) {
        // Ordering: Relaxed: a trigger; a stale value only moves a checkpoint by a few records.
        self.bytes_at_checkpoint.store(
            self.committer.counters.bytes.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
    }

    /// Whether the journal stopped after a storage failure (tests).
    #[cfg(test)]
    pub(crate) fn is_stopped(&self) -> bool {
        self.committer.stopped().is_some()
    }

    pub(crate) fn commit(&self, change: Change) -> Result<(), JournalError> {
        self.committer.commit(change)
    }

    /// Queues `change` behind every change queued before it, without waiting; see
    /// [`Committer::submit`].
    pub(crate) fn submit(&self, change: Change) -> Result<Ticket, JournalError> {
        self.committer.submit(change)
    }

    /// Waits for a submitted change to be durable; see [`Committer::wait`].
    pub(crate) fn wait(&self, ticket: Ticket) -> Result<(), JournalError> {
        self.committer.wait(ticket)
    }

    pub(crate) fn bytes_since_checkpoint(&self) -> u64 {
        // Ordering: Relaxed: a statistic and a trigger; a stale value only delays a checkpoint.
        self.committer
            .counters
            .bytes
            .load(Ordering::Relaxed)
            .saturating_sub(self.bytes_at_checkpoint.load(Ordering::Relaxed))
    }

    /// Whether enough journal was written since the last checkpoint to write another.
    pub(crate) fn checkpoint_due(&self) -> bool {
        self.checkpoint_after_bytes > 0
            && self.bytes_since_checkpoint() >= self.checkpoint_after_bytes
    }

    pub(crate) fn stats(&self) -> JournalStats {
        let c = &self.committer.counters;
        JournalStats {
            records: c.records.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            syncs: c.syncs.load(Ordering::Relaxed),
            sync_us_total: c.sync_us_total.load(Ordering::Relaxed),
            sync_us_max: c.sync_us_max.load(Ordering::Relaxed),
            bytes_since_checkpoint: self.bytes_since_checkpoint(),
            checkpoints: self.checkpoints.load(Ordering::Relaxed),
            failed_checkpoints: self.failed_checkpoints.load(Ordering::Relaxed),
            recovery: self.recovery,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    /// Starts a new segment for a checkpoint: syncs the current one, creates the next, and
    /// appends there from now on. Returns the new segment's number and first record number.
    /// The caller holds the gate exclusively, so no batch is in flight.
    pub(crate) fn rotate(&self) -> Result<(u64, u64), CheckpointError> {
        if self.committer.stopped().is_some() {
            return Err(JournalError::Stopped.into());
        }
        self.committer.flush()?;
        let mut a = self.committer.active.lock();
        let seq = a.seq + 1;
        let path = self.dir.join(recover::segment_name(seq));
        let io = recover::create_segment(&self.dir, seq, a.next_lsn).and_then(|p| {
            self.storage
                .open_segment(&p)
                .map_err(recover::io_error(&p, "opening the new segment"))
        });
        let io = match io {
            Ok(io) => io,
            Err(e) => {
                // Appending carries on in the current segment; the half-made one is in the way
                // of the next attempt and of recovery, so remove it if possible.
                let _ = std::fs::remove_file(&path);
                return Err(e.into());
            }
        };
        let next_lsn = a.next_lsn;
        *a = Active::new(io, seq, format::SEGMENT_HEADER as u64, next_lsn);
        self.restart_checkpoint_count();
        Ok((seq, next_lsn))
    }
}

impl Flusher {
    fn start(committer: Arc<Committer>, every: Duration, dir: &Path) -> Result<Self, IoFailure> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = stop.clone();
        let thread = std::thread::Builder::new()
            .name("surgegate-flush".into())
            .spawn(move || {
                let (stopped, wake) = &*signal;
                let mut stopped = stopped.lock();
                while !*stopped {
                    wake.wait_for(&mut stopped, every);
                    if *stopped {
                        break;
                    }
                    // A failure stops the journal (see `Committer::flush`); nothing to retry.
                    if committer.flush().is_err() {
                        break;
                    }
                }
            })
            .map_err(recover::io_error(dir, "starting the flush thread"))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Some(f) = &mut self.flusher {
            *f.stop.0.lock() = true;
            f.stop.1.notify_all();
            if let Some(t) = f.thread.take() {
                let _ = t.join();
            }
        }
        // A clean close leaves everything acknowledged on stable storage, whatever the mode,
        // and records in the meta file how far the journal reaches, so that records cut off its
        // end later are caught at the next open.
        if self.committer.flush().is_ok() && self.committer.stopped().is_none() {
            let next_lsn = self.committer.active.lock().next_lsn;
            let mut meta = self.meta.lock();
            let updated = format::Meta {
                min_next_lsn: next_lsn.max(meta.min_next_lsn),
                ..*meta
            };
            if recover::write_meta(&self.dir, &updated).is_ok() {
                *meta = updated;
            }
        }
    }
}

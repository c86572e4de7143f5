//! The durable builder: the settings only a book opened from a directory has (durability,
//! checkpoints, group commit), so that none of them can reach a book built in memory.

use std::path::Path;
use std::time::Duration;

use crate::book::{BookConfigError, OpenError, SlotBook, SlotBookBuilder};
use crate::clock::{Clock, SystemClock};
use crate::journal::Durability;
use crate::journal::io::Files;
#[cfg(all(test, not(loom)))]
use crate::journal::io::Storage;

/// The smallest automatic checkpoint interval: a checkpoint copies the whole book, so one every
/// few records would make every durable call pay for it.
const MIN_CHECKPOINT_AFTER_BYTES: u64 = 1 << 20;
/// The most records one journal write may carry.
const MAX_BATCH_RECORDS: u32 = 65_536;
/// The longest wait for a batch to fill.
const MAX_COMMIT_DELAY: Duration = Duration::from_millis(10);
/// The shortest and longest interval of [`Durability::Flush`].
const FLUSH_EVERY: (Duration, Duration) = (Duration::from_millis(1), Duration::from_secs(3600));

/// The settings of a durable book alone.
#[derive(Clone, Debug)]
pub(crate) struct DurableSettings {
    pub(crate) durability: Durability,
    pub(crate) checkpoint_after_bytes: u64,
    pub(crate) max_batch_records: u32,
    pub(crate) commit_delay: Duration,
}

impl Default for DurableSettings {
    fn default() -> Self {
        Self {
            durability: Durability::Fsync,
            checkpoint_after_bytes: 64 << 20,
            max_batch_records: 4096,
            commit_delay: Duration::ZERO,
        }
    }
}

impl DurableSettings {
    /// Every durable setting in its range, or the first that is not.
    pub(crate) fn check(&self) -> Result<(), BookConfigError> {
        if let Durability::Flush { every } = self.durability
            && !(FLUSH_EVERY.0..=FLUSH_EVERY.1).contains(&every)
        {
            return Err(BookConfigError::FlushInterval(every));
        }
        let bytes = self.checkpoint_after_bytes;
        if bytes != 0 && bytes < MIN_CHECKPOINT_AFTER_BYTES {
            return Err(BookConfigError::CheckpointAfterBytes(bytes));
        }
        if !(1..=MAX_BATCH_RECORDS).contains(&self.max_batch_records) {
            return Err(BookConfigError::MaxBatchRecords(self.max_batch_records));
        }
        if self.commit_delay > MAX_COMMIT_DELAY {
            return Err(BookConfigError::CommitDelay(self.commit_delay));
        }
        Ok(())
    }
}

/// Builds a durable [`SlotBook`]: a [`SlotBookBuilder`]'s settings, plus the ones only a book
/// opened from a directory has. From [`SlotBookBuilder::durable`]; every setting has a default.
///
/// ```
/// use std::time::Duration;
/// use surgegate::{Durability, SlotBook};
///
/// let dir = tempfile::tempdir()?;
/// let book = SlotBook::builder()
///     .hold_ttl(Duration::from_secs(300))
///     .durable()
///     .durability(Durability::Fsync)
///     .commit_delay(Duration::from_micros(100))
///     .open(dir.path())?;
/// assert!(book.is_durable());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A durable setting cannot reach a book built in memory: this does not compile.
///
/// ```compile_fail
/// use surgegate::{Durability, SlotBook};
///
/// let book = SlotBook::builder().durable().durability(Durability::None).build();
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct DurableBookBuilder<C = SystemClock> {
    pub(super) book: SlotBookBuilder<C>,
    pub(super) durable: DurableSettings,
}

impl<C: Clock> SlotBookBuilder<C> {
    /// The durable settings (durability, checkpoints, group commit) on top of these, for a
    /// book opened from a directory with [`DurableBookBuilder::open`].
    pub fn durable(self) -> DurableBookBuilder<C> {
        DurableBookBuilder {
            book: self,
            durable: DurableSettings::default(),
        }
    }

    /// Opens (or creates) a durable book in `dir` with the default durable settings: the same
    /// as `self.durable().open(dir)`; see [`DurableBookBuilder::open`].
    ///
    /// # Errors
    /// [`OpenError`]: a setting out of range ([`OpenError::Config`]), or what the directory
    /// holds or the file system refuses.
    pub fn open(self, dir: impl AsRef<Path>) -> Result<SlotBook<C>, OpenError> {
        self.durable().open(dir)
    }

    /// [`open`](Self::open) on a storage of the caller's (one that injects failures, in tests).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn open_with(
        self,
        dir: &Path,
        storage: Box<dyn Storage>,
    ) -> Result<SlotBook<C>, OpenError> {
        self.durable().open_with(dir, storage)
    }
}

impl<C: Clock> DurableBookBuilder<C> {
    /// What `Ok` from a durable book's `set_capacity`, `confirm` and `release` promises. Default
    /// [`Durability::Fsync`]; `Flush { every }` with `every` from 1 ms to 1 hour.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durable.durability = durability;
        self
    }

    /// Journal bytes after which a durable call also writes a checkpoint, so that recovery
    /// stays fast however long the book runs. Default 64 MiB (about 1.3 million bookings); at
    /// least 1 MiB (about 21 000 bookings), or 0, which turns automatic checkpoints off
    /// ([`SlotBook::checkpoint`] still works). The call that crosses the threshold pays for the
    /// checkpoint.
    pub fn checkpoint_after_bytes(mut self, bytes: u64) -> Self {
        self.durable.checkpoint_after_bytes = bytes;
        self
    }

    /// The most records one journal write (and fsync) carries. Default 4096; 1 to 65 536.
    /// 1 gives one fsync per call, without group commit.
    pub fn max_batch_records(mut self, n: u32) -> Self {
        self.durable.max_batch_records = n;
        self
    }

    /// How long the caller that writes a batch waits for other callers to join it before the
    /// write and fsync (like PostgreSQL's `commit_delay`). Default zero (no wait); at most
    /// 10 ms. A short delay (50–200 µs) makes each fsync carry more records when a few threads
    /// commit at once, at the price of that much more latency per durable call; with many
    /// threads, batches fill by themselves while the previous fsync runs.
    pub fn commit_delay(mut self, delay: Duration) -> Self {
        self.durable.commit_delay = delay;
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
    /// [`shards`](SlotBookBuilder::shards) says. Other limits apply as set, and a journal that
    /// needs more (slots, branches, bookings per applicant) than they allow is
    /// [`OpenError::Incompatible`].
    ///
    /// ```
    /// use surgegate::{ApplicantId, BranchId, Durability, SlotBook};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let token = {
    ///     let book = SlotBook::builder().durable().durability(Durability::Fsync).open(dir.path())?;
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
    ///
    /// # Errors
    /// [`OpenError::Config`] for a setting out of its range (checked before the directory is
    /// touched), else what the directory holds or the file system refuses.
    pub fn open(self, dir: impl AsRef<Path>) -> Result<SlotBook<C>, OpenError> {
        self.open_with(dir.as_ref(), Box::new(Files))
    }
}

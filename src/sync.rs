//! The door through which the protocols the loom models check take their atomics and locks.
//!
//! In a normal build these are `std`'s atomics, `parking_lot`'s mutex and condition variable and
//! crossbeam's sharded reader-writer lock. Built with `RUSTFLAGS="--cfg loom"`, they are loom's,
//! so the models in `tests/loom_book.rs`, `tests/loom_room.rs` and beside group commit
//! (`journal/commit.rs`) explore every interleaving of the protocols that guarantee no
//! overbooking, exact positions and acknowledged-only-when-synced. The book (slot words, chunks,
//! shards, the expiry hint), the room (its lock and arrivals) and group commit take every
//! atomic and lock from here.
//!
//! Not everything does: the journal's gate, statistics and fsync timer (`journal/mod.rs`),
//! `ManualClock`'s time and the HTTP layer's counters use `std` and `parking_lot` directly. No
//! loom model runs them (a model builds in-memory books and rooms, and group commit over an
//! in-memory segment), and under loom they stay ordinary primitives.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

/// A mutual-exclusion lock without poisoning: a panic while locked cannot leave counts half
/// changed, because no code path of this crate panics while holding one.
#[derive(Debug, Default)]
pub(crate) struct Mutex<T> {
    #[cfg(not(loom))]
    inner: parking_lot::Mutex<T>,
    #[cfg(loom)]
    inner: loom::sync::Mutex<T>,
}

#[cfg(not(loom))]
pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;
#[cfg(loom)]
pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            #[cfg(not(loom))]
            inner: parking_lot::Mutex::new(value),
            #[cfg(loom)]
            inner: loom::sync::Mutex::new(value),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        #[cfg(not(loom))]
        {
            self.inner.lock()
        }
        #[cfg(loom)]
        {
            // A poisoned lock means a model thread panicked: the model has already failed.
            self.inner.lock().unwrap_or_else(|p| p.into_inner())
        }
    }

    /// The lock if it is free now, `None` if another thread holds it.
    #[inline]
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        #[cfg(not(loom))]
        {
            self.inner.try_lock()
        }
        #[cfg(loom)]
        {
            match self.inner.try_lock() {
                Ok(guard) => Some(guard),
                Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        }
    }
}

/// A reader-writer lock without poisoning (for the same reason as [`Mutex`]): many readers at
/// once, or one writer.
///
/// Sharded (crossbeam's `ShardedLock`): a reader locks only its own thread's shard, on a cache
/// line of its own, so readers on different cores write no common cache line; a writer locks
/// every shard. The room's common calls read, and with one shared reader count (as in
/// `parking_lot`'s lock) every read moved that count's cache line between cores: measured on
/// two cores, joins and polls mixed 10/90 scaled 1.12–1.36× with it and 1.44–1.59× sharded
/// (`cargo bench --bench room_scaling`). About 1 KiB per lock: one per room.
#[derive(Debug, Default)]
pub(crate) struct RwLock<T> {
    #[cfg(not(loom))]
    inner: crossbeam_utils::sync::ShardedLock<T>,
    #[cfg(loom)]
    inner: loom::sync::RwLock<T>,
}

#[cfg(not(loom))]
pub(crate) type RwLockReadGuard<'a, T> = crossbeam_utils::sync::ShardedLockReadGuard<'a, T>;
#[cfg(loom)]
pub(crate) type RwLockReadGuard<'a, T> = loom::sync::RwLockReadGuard<'a, T>;
#[cfg(not(loom))]
pub(crate) type RwLockWriteGuard<'a, T> = crossbeam_utils::sync::ShardedLockWriteGuard<'a, T>;
#[cfg(loom)]
pub(crate) type RwLockWriteGuard<'a, T> = loom::sync::RwLockWriteGuard<'a, T>;

impl<T> RwLock<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            #[cfg(not(loom))]
            inner: crossbeam_utils::sync::ShardedLock::new(value),
            #[cfg(loom)]
            inner: loom::sync::RwLock::new(value),
        }
    }

    /// Shared access, alongside other readers.
    #[inline]
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
        #[cfg(not(loom))]
        {
            self.inner.read().unwrap_or_else(|p| p.into_inner())
        }
        #[cfg(loom)]
        {
            self.inner.read().unwrap_or_else(|p| p.into_inner())
        }
    }

    /// Exclusive access.
    #[inline]
    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
        #[cfg(not(loom))]
        {
            self.inner.write().unwrap_or_else(|p| p.into_inner())
        }
        #[cfg(loom)]
        {
            self.inner.write().unwrap_or_else(|p| p.into_inner())
        }
    }
}

/// A condition variable for [`Mutex`], loom's under `--cfg loom`.
#[derive(Debug, Default)]
pub(crate) struct Condvar {
    #[cfg(not(loom))]
    inner: parking_lot::Condvar,
    #[cfg(loom)]
    inner: loom::sync::Condvar,
}

impl Condvar {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Unlocks `guard`, sleeps until notified, and locks again. Wake-ups may be spurious: the
    /// caller re-checks its condition in a loop.
    pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        #[cfg(not(loom))]
        {
            let mut guard = guard;
            self.inner.wait(&mut guard);
            guard
        }
        #[cfg(loom)]
        {
            self.inner.wait(guard).unwrap_or_else(|p| p.into_inner())
        }
    }

    pub(crate) fn notify_all(&self) {
        self.inner.notify_all();
    }

    pub(crate) fn notify_one(&self) {
        self.inner.notify_one();
    }
}

/// A hasher state for the crate's hash tables: random keys normally; fixed keys under loom, whose
/// model checker replays schedules and needs every execution to touch the same objects.
pub(crate) fn random_state() -> ahash::RandomState {
    #[cfg(not(loom))]
    {
        ahash::RandomState::new()
    }
    #[cfg(loom)]
    {
        ahash::RandomState::with_seeds(1, 2, 3, 4)
    }
}

/// A random 64-bit key (the book's applicant-to-shard key): fixed under loom, for the same reason
/// as [`random_state`].
pub(crate) fn random_key() -> u64 {
    #[cfg(not(loom))]
    {
        crate::token::random_u128() as u64
    }
    #[cfg(loom)]
    {
        0x5eed
    }
}

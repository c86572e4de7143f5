//! The storage layer under the journal: appending to a segment file and making it durable.
//!
//! The journal reaches its active segment only through [`SegmentIo`], so that tests can put a
//! layer that fails on command underneath and check that a failed write or fsync changes
//! nothing. Everything else (reading at open, checkpoints, the directory) uses the file system
//! directly.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The operations the journal performs on the segment it appends to.
pub(crate) trait SegmentIo: Send {
    /// Writes all of `bytes` at `offset`.
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Makes every written byte durable (`fdatasync`).
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

impl SegmentIo for File {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.write_all_at(bytes, offset)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }
}

/// Opens segment files for appending. The tests' implementation wraps the files in a failing
/// layer.
pub(crate) trait Storage: Send + Sync {
    /// Opens an existing segment for writing.
    fn open_segment(&self, path: &Path) -> io::Result<Box<dyn SegmentIo>>;
}

/// Plain files.
pub(crate) struct Files;

impl Storage for Files {
    fn open_segment(&self, path: &Path) -> io::Result<Box<dyn SegmentIo>> {
        Ok(Box::new(OpenOptions::new().write(true).open(path)?))
    }
}

/// Makes the directory's entries (created, renamed, deleted files) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` atomically: a temporary file, fsync, rename, fsync of the directory.
/// A crash leaves either the old file (or none) or the whole new one, never a part. A failure
/// removes the temporary file again, so a failed attempt leaves no space taken behind it.
pub(crate) fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(temporary_name(name));
    let written = File::create(&tmp).and_then(|mut f| {
        io::Write::write_all(&mut f, bytes)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, dir.join(name))) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// The name [`write_atomically`] writes `name` under before renaming it.
pub(crate) fn temporary_name(name: &str) -> String {
    format!("{name}.tmp")
}

#[cfg(test)]
pub(crate) mod faulty {
    //! A storage layer whose writes, syncs and truncations fail when a test says so.

    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    /// Switches shared by a test and the files it opened.
    #[derive(Default)]
    pub(crate) struct Faults {
        /// Fail the next this-many writes (after writing half the bytes, like a full disk).
        pub(crate) writes: AtomicU32,
        /// Fail the next this-many syncs.
        pub(crate) syncs: AtomicU32,
        /// Fail every truncation while set.
        pub(crate) truncates: AtomicBool,
        /// Syncs wait while this is set (to catch a call in the middle of its fsync).
        pub(crate) stall: AtomicBool,
        /// Syncs waiting on `stall` now.
        pub(crate) stalled: AtomicU32,
    }

    fn take(n: &AtomicU32) -> bool {
        n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
            .is_ok()
    }

    pub(crate) struct Faulty(pub(crate) Arc<Faults>);

    struct FaultyFile {
        file: File,
        faults: Arc<Faults>,
    }

    impl Storage for Faulty {
        fn open_segment(&self, path: &Path) -> io::Result<Box<dyn SegmentIo>> {
            Ok(Box::new(FaultyFile {
                file: OpenOptions::new().write(true).open(path)?,
                faults: self.0.clone(),
            }))
        }
    }

    impl SegmentIo for FaultyFile {
        fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
            if take(&self.faults.writes) {
                // A short write, then the error: the partial bytes really are in the file.
                self.file.write_all_at(&bytes[..bytes.len() / 2], offset)?;
                return Err(io::Error::from(io::ErrorKind::StorageFull));
            }
            self.file.write_all_at(bytes, offset)
        }
        fn sync(&mut self) -> io::Result<()> {
            if self.faults.stall.load(Ordering::SeqCst) {
                self.faults.stalled.fetch_add(1, Ordering::SeqCst);
                while self.faults.stall.load(Ordering::SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                self.faults.stalled.fetch_sub(1, Ordering::SeqCst);
            }
            if take(&self.faults.syncs) {
                return Err(io::Error::other("injected fsync failure"));
            }
            self.file.sync_data()
        }
        fn truncate(&mut self, len: u64) -> io::Result<()> {
            if self.faults.truncates.load(Ordering::SeqCst) {
                return Err(io::Error::other("injected truncate failure"));
            }
            self.file.set_len(len)
        }
    }
}

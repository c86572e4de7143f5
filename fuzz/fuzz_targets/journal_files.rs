//! Damaged journal directories through recovery: one file of a real directory (its journal
//! segment, checkpoint or meta file) is cut, has bytes flipped and garbage appended. Opening must
//! answer with a book or an `OpenError`, never a panic; an opened book must pass its invariant
//! check; and a segment that was only cut short (after its header) must always open, with the
//! records before the cut. The meta file is the one a crash leaves (written by the checkpoint),
//! so that the cut records are not known to the directory.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use surgegate::{ApplicantId, BranchId, Durability, SlotBook};

#[derive(Arbitrary, Debug)]
struct Damage {
    file: u8,
    cut_to: Option<u16>,
    flips: Vec<(u16, u8)>,
    append: Vec<u8>,
}

/// The files of a real directory: a checkpoint, then a segment with records after it.
struct Base {
    files: Vec<(String, Vec<u8>)>,
    segment_records: u64,
}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let book = SlotBook::builder()
            .max_active_per_applicant(2)
            .durable()
            .durability(Durability::None)
            .open(dir.path())
            .unwrap();
        for s in 0..4 {
            book.set_capacity(BranchId(1), s, 3).unwrap();
        }
        let mut tokens = Vec::new();
        for a in 0..6 {
            let h = book
                .reserve_earliest(BranchId(1), 0..4, ApplicantId(a))
                .unwrap();
            tokens.push(book.confirm(h.token).unwrap().token);
        }
        book.checkpoint().unwrap();
        let meta_at_crash = std::fs::read(dir.path().join("META")).unwrap();
        book.set_capacity(BranchId(2), 0, 5).unwrap();
        for a in 10..14 {
            let h = book
                .reserve_earliest(BranchId(1), 0..4, ApplicantId(a))
                .unwrap();
            book.confirm(h.token).unwrap();
        }
        book.release(tokens[0]).unwrap();
        book.release(tokens[5]).unwrap();
        let segment_records = book.journal_stats().unwrap().records - 10;
        drop(book);
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name() != "LOCK")
            .map(|e| {
                (
                    e.file_name().into_string().unwrap(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        files.sort();
        for (name, bytes) in files.iter_mut() {
            if name == "META" {
                *bytes = meta_at_crash.clone();
            }
        }
        assert_eq!(
            files.len(),
            3,
            "META, a checkpoint and a segment: {files:?}"
        );
        Base {
            files,
            segment_records,
        }
    })
}

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("surgegate-fuzz-journal-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

fn reset(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
}

fuzz_target!(|damage: Damage| {
    let base = base();
    let dir = scratch();
    reset(dir);
    let target = damage.file as usize % base.files.len();
    let mut only_cut = true;
    for (i, (name, bytes)) in base.files.iter().enumerate() {
        let mut bytes = bytes.clone();
        if i == target {
            if let Some(cut) = damage.cut_to {
                bytes.truncate(cut as usize);
            }
            for &(at, mask) in &damage.flips {
                if !bytes.is_empty() && mask != 0 {
                    let at = at as usize % bytes.len();
                    bytes[at] ^= mask;
                    only_cut = false;
                }
            }
            if !damage.append.is_empty() {
                bytes.extend_from_slice(&damage.append);
                only_cut = false;
            }
        }
        std::fs::write(dir.join(name), &bytes).unwrap();
    }
    let opened = SlotBook::builder().max_active_per_applicant(2).open(dir);
    let is_segment = base.files[target].0.starts_with("journal-");
    // A segment cut inside its 32-byte header is damage: segments are created whole.
    let cut_after_header = damage.cut_to.is_none_or(|c| c >= 32);
    match opened {
        Ok(book) => {
            book.check_invariants().unwrap();
            let recovery = book.journal_stats().unwrap().recovery;
            assert!(recovery.records <= base.segment_records);
            assert!(recovery.bookings <= 10);
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert!(
                !(is_segment && only_cut && cut_after_header),
                "a segment only cut short must open, got: {e}"
            );
        }
    }
});

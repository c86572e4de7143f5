//! A chunk of 512 consecutive slots of one branch: their counter words, a bitmap of the full
//! ones and a bitmap of the closed ones; and [`SlotRef`], the pointer to its chunk that a record
//! keeps.
//!
//! Guarantees: a chunk never moves once published (it is boxed, and freed only when the book is
//! dropped), so a `SlotRef` stays valid for as long as any record can hold it; each chunk's
//! full-slot bitmap equals its words' fullness whenever no call is in flight (see
//! [`Chunk::sync_full`]), so `reserve_earliest` skips 64 full slots with one load.

use std::ptr::NonNull;

use crate::sync::{AtomicU64, Mutex, MutexGuard, Ordering};

use super::channel::QuotaTable;
use super::types::{BranchId, SlotIndex};
use super::word::{Packed, SlotWord};

/// Slots per chunk. 512 words of 8 bytes: one 4 KiB page of counts. (64 under loom, so that a
/// model creates 65 atomics per chunk rather than 520.)
#[cfg(not(loom))]
pub(crate) const CHUNK_SLOTS: u32 = 512;
#[cfg(loom)]
pub(crate) const CHUNK_SLOTS: u32 = 64;
const CHUNK_WORDS: usize = (CHUNK_SLOTS / 64) as usize;

/// 512 slot words and their full-slot and closed-slot bitmaps.
pub(crate) struct Chunk {
    words: Box<[SlotWord]>,
    /// Bit `i` of word `w` is set when slot `64 w + i` of this chunk is full or not open.
    full: [AtomicU64; CHUNK_WORDS],
    /// Bit `i` of word `w` is set when slot `64 w + i` was closed (`close_slot`): its capacity
    /// is 0 (so no hold is granted, atomically, by the word itself) and readings leave it out.
    closed: [AtomicU64; CHUNK_WORDS],
    /// The branch the chunk belongs to, so that a record pointing here need not store it.
    branch: BranchId,
    /// The channel quotas of the chunk's slots that have any, by offset (`channel.rs`). Its lock
    /// orders every change of a quota slot's capacity field and channel counts; it is taken
    /// after a shard's ledger lock and a capacity stripe, never before.
    quotas: Mutex<QuotaTable>,
}

impl Chunk {
    pub(super) fn new(branch: BranchId) -> Self {
        Self {
            branch,
            words: (0..CHUNK_SLOTS).map(|_| SlotWord::new()).collect(),
            // Every slot starts closed, and a closed slot is "full": nothing can be reserved there.
            full: std::array::from_fn(|_| AtomicU64::new(u64::MAX)),
            closed: std::array::from_fn(|_| AtomicU64::new(0)),
            quotas: Mutex::new(QuotaTable::new()),
        }
    }

    fn closed_bit(&self, slot: SlotIndex) -> (&AtomicU64, u64) {
        let offset = (slot % CHUNK_SLOTS) as usize;
        (&self.closed[offset / 64], 1u64 << (offset % 64))
    }

    /// Whether `slot` (of this chunk) was closed.
    pub(super) fn is_closed(&self, slot: SlotIndex) -> bool {
        let (bits, mask) = self.closed_bit(slot);
        // Ordering: Relaxed: the closed bit only decides what a reading shows; whether a hold can
        // be granted is decided by the slot word alone (a closed slot's capacity is 0).
        bits.load(Ordering::Relaxed) & mask != 0
    }

    /// Marks `slot` (of this chunk) closed or open again: readings only, since the word's
    /// capacity of 0 is what refuses holds.
    pub(super) fn set_closed(&self, slot: SlotIndex, closed: bool) {
        let (bits, mask) = self.closed_bit(slot);
        // Ordering: Relaxed, as in `is_closed`.
        if closed {
            bits.fetch_or(mask, Ordering::Relaxed);
        } else if bits.load(Ordering::Relaxed) & mask != 0 {
            bits.fetch_and(!mask, Ordering::Relaxed);
        }
    }

    /// The channel quotas of this chunk's slots, locked.
    pub(super) fn quotas(&self) -> MutexGuard<'_, QuotaTable> {
        self.quotas.lock()
    }

    /// The counts of the slot at `offset` in this chunk.
    pub(super) fn load(&self, offset: SlotIndex) -> Packed {
        self.words[offset as usize].load()
    }

    /// Word `w` of the full-slot bitmap: bit `i` set when slot `64 w + i` of the chunk is full
    /// or not open.
    pub(super) fn full_word(&self, w: usize) -> u64 {
        // Ordering: SeqCst, part of the `sync_full` protocol.
        self.full[w].load(Ordering::SeqCst)
    }

    /// Whether the full bit of `slot` (of this chunk) is set.
    pub(super) fn full_bit(&self, slot: SlotIndex) -> bool {
        let offset = (slot % CHUNK_SLOTS) as usize;
        self.full_word(offset / 64) & (1 << (offset % 64)) != 0
    }

    /// The word of `slot`, which must lie in this chunk (only its offset is used).
    #[inline]
    pub(super) fn word(&self, slot: SlotIndex) -> &SlotWord {
        &self.words[(slot % CHUNK_SLOTS) as usize]
    }

    /// Brings the slot's full bit in line with its word. Call after every change that may have
    /// changed whether the slot is full (a grant that filled it, a return from a full slot, a
    /// capacity change).
    ///
    /// Why this converges: every access here and to slot words is `SeqCst`, so all of them lie in
    /// one total order. Take the last bit write `W` to this slot's bit, by some thread `X`. `X`
    /// reloads the word after `W`; if it saw a fullness different from what it wrote, it would
    /// write again, contradicting `W` being last. Any word change after that reload is followed by
    /// its author's own call here, which writes the bit again, again a contradiction. So once calls
    /// stop, the bit equals the word's fullness.
    pub(super) fn sync_full(&self, slot: SlotIndex) {
        let offset = (slot % CHUNK_SLOTS) as usize;
        let word = &self.words[offset];
        let bits = &self.full[offset / 64];
        let mask = 1u64 << (offset % 64);
        let mut full = word.load().is_full();
        loop {
            if full {
                bits.fetch_or(mask, Ordering::SeqCst);
            } else {
                bits.fetch_and(!mask, Ordering::SeqCst);
            }
            let again = word.load().is_full();
            if again == full {
                return;
            }
            full = again;
        }
    }
}

/// A slot's chunk, kept in the record of a unit taken there, so that confirming and releasing
/// reach the slot's word and full bit without a lookup, and without a case for a slot that
/// does not exist: a record can only be made from a slot that does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlotRef(NonNull<Chunk>);

// SAFETY: a `SlotRef` points at a `Chunk` owned by a `Branch` of the `BranchTable` of the same
// `SlotBook` whose records hold it. Chunks are immutable apart from their atomics (which are
// `Sync`), are never moved (boxed) and are freed only when the book is dropped, after which no
// record is reachable. So sharing or sending the pointer is as safe as sharing `&Chunk`.
unsafe impl Send for SlotRef {}
// SAFETY: as above.
unsafe impl Sync for SlotRef {}

impl SlotRef {
    /// A reference to `chunk`, which its branch keeps until the book is dropped.
    pub(super) fn new(chunk: &Chunk) -> Self {
        Self(NonNull::from(chunk))
    }

    #[inline]
    fn chunk(&self) -> &Chunk {
        // SAFETY: see the `Send`/`Sync` impls: the chunk outlives every reachable record, and
        // every caller reaches the record through `&SlotBook`.
        unsafe { self.0.as_ref() }
    }

    /// The branch of the slot.
    #[inline]
    pub(crate) fn branch(&self) -> BranchId {
        self.chunk().branch
    }

    /// The channel quotas of the chunk's slots, locked.
    pub(crate) fn quotas(&self) -> MutexGuard<'_, QuotaTable> {
        self.chunk().quotas()
    }

    /// The word of `slot`, the slot this reference was made for.
    #[inline]
    pub(crate) fn word(&self, slot: SlotIndex) -> &SlotWord {
        self.chunk().word(slot)
    }

    /// Brings the full bit of `slot` (the slot this reference was made for) in line with its
    /// word.
    pub(crate) fn sync_full(&self, slot: SlotIndex) {
        self.chunk().sync_full(slot);
    }
}

//! Branches and their slot words: found without a lock, grown without moving. The words
//! themselves live in 512-slot chunks (`chunk.rs`); this file owns the table of branches and each
//! branch's directory of chunks.
//!
//! Guarantees:
//! - Looking up a branch or a slot takes no lock and writes no shared memory, so readers on a hot
//!   branch never contend with each other.
//! - A slot word never moves once created: branches, directory groups and 512-slot chunks are
//!   allocated once, published with a release store under the creation lock, and freed only when
//!   the book is dropped.
//! - Memory grows with the slots actually opened, never with `max_slots_per_branch` up front: a
//!   branch's directory has two levels (one pointer per 32 768 possible slots, then a group of 64
//!   chunk pointers where slots are opened), and the book allocates at most `max_slot_chunks`
//!   chunks.
//! - A slot is created only by [`BranchTable::with_slot`], which runs the caller's first change
//!   (a journal write, say) on the new slot *before* publishing it: a refused first change leaves
//!   no branch, no chunk and no count behind.
//! - Each chunk keeps a bitmap of full slots ([`Chunk::sync_full`]). It is exact whenever no
//!   call is in flight, so `reserve_earliest` can skip 64 full slots with one load.

use crate::sync::{AtomicPtr, AtomicUsize, Mutex, MutexGuard, Ordering};

use super::channel::QuotaTable;
use super::chunk::{CHUNK_SLOTS, Chunk, SlotRef};
use super::types::{BranchId, SlotIndex};
use super::word::{Packed, SlotWord};

/// Chunks per directory group (8 under loom, to keep models small).
#[cfg(not(loom))]
const GROUP_CHUNKS: usize = 64;
#[cfg(loom)]
const GROUP_CHUNKS: usize = 8;

/// The second level of a branch's directory: pointers to up to 64 consecutive chunks.
struct Group {
    chunks: [AtomicPtr<Chunk>; GROUP_CHUNKS],
}

impl Group {
    fn new() -> Self {
        Self {
            chunks: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
        }
    }
}

/// Frees every allocation published in `cells`. Called only from `Drop` of the cells' owner,
/// whose `&mut self` guarantees that no reference into them outlives this point; every non-null
/// pointer in a cell came from `Box::into_raw` and was published exactly once.
fn free_published<T>(cells: &mut [AtomicPtr<T>]) {
    for cell in cells.iter() {
        let ptr = cell.load(Ordering::Acquire);
        if !ptr.is_null() {
            // SAFETY: see above: owned exclusively, from `Box::into_raw`, and freed once (the
            // owner is dropped once).
            drop(unsafe { Box::from_raw(ptr) });
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        free_published(&mut self.chunks);
    }
}

/// One branch: a two-level directory of lazily created chunks.
pub(crate) struct Branch {
    id: BranchId,
    groups: Box<[AtomicPtr<Group>]>,
}

/// Loads a published pointer.
fn published<T>(ptr: &AtomicPtr<T>) -> Option<&T> {
    // Ordering: Acquire pairs with the Release store that published the pointee, so its
    // initialised contents are visible.
    let p = ptr.load(Ordering::Acquire);
    // SAFETY: a non-null pointer in a directory came from `Box::into_raw` in
    // `BranchTable::create_slot` and is freed only in `Drop`, which needs `&mut` of its owner;
    // so it is valid for as long as the reference we load it through.
    unsafe { p.as_ref() }
}

impl Branch {
    fn new(id: BranchId, max_slots: u32) -> Self {
        let chunks = max_slots.div_ceil(CHUNK_SLOTS) as usize;
        Self {
            id,
            groups: (0..chunks.div_ceil(GROUP_CHUNKS))
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
        }
    }

    fn chunk(&self, index: usize) -> Option<&Chunk> {
        let group = published(self.groups.get(index / GROUP_CHUNKS)?)?;
        published(&group.chunks[index % GROUP_CHUNKS])
    }

    /// Bytes of this branch's directory (not counting chunks).
    #[cfg(test)]
    pub(crate) fn directory_bytes(&self) -> usize {
        let groups = self
            .groups
            .iter()
            .filter(|g| published(g).is_some())
            .count();
        std::mem::size_of::<Self>()
            + self.groups.len() * std::mem::size_of::<AtomicPtr<Group>>()
            + groups * std::mem::size_of::<Group>()
    }

    /// Whether an allocated slot is closed (`false` for a slot not allocated).
    pub(crate) fn is_closed(&self, slot: SlotIndex) -> bool {
        self.chunk((slot / CHUNK_SLOTS) as usize)
            .is_some_and(|c| c.is_closed(slot))
    }

    /// Marks an allocated slot closed or open again (readings only; see [`Chunk`]).
    pub(crate) fn set_closed(&self, slot: SlotIndex, closed: bool) {
        if let Some(chunk) = self.chunk((slot / CHUNK_SLOTS) as usize) {
            chunk.set_closed(slot, closed);
        }
    }

    /// The channel quotas of the chunk of an allocated slot, locked (keyed by offset in the
    /// chunk: see [`quota_key`]).
    pub(crate) fn quotas(&self, slot: SlotIndex) -> Option<MutexGuard<'_, QuotaTable>> {
        Some(self.chunk((slot / CHUNK_SLOTS) as usize)?.quotas())
    }

    /// The slots of `first..=last` that have channel quotas, in order.
    pub(crate) fn quota_slots(&self, first: SlotIndex, last: SlotIndex) -> Vec<SlotIndex> {
        let mut out = Vec::new();
        for ci in first / CHUNK_SLOTS..=last / CHUNK_SLOTS {
            let Some(chunk) = self.chunk(ci as usize) else {
                continue;
            };
            let base = ci * CHUNK_SLOTS;
            out.extend(
                chunk
                    .quotas()
                    .keys()
                    .map(|&off| base + off)
                    .filter(|s| (first..=last).contains(s)),
            );
        }
        out
    }

    /// The word of an existing (allocated) slot.
    pub(crate) fn word(&self, slot: SlotIndex) -> Option<&SlotWord> {
        Some(self.chunk((slot / CHUNK_SLOTS) as usize)?.word(slot))
    }

    /// Brings the slot's full bit in line with its word (see [`Chunk::sync_full`]).
    pub(crate) fn sync_full(&self, slot: SlotIndex) {
        if let Some(chunk) = self.chunk((slot / CHUNK_SLOTS) as usize) {
            chunk.sync_full(slot);
        }
    }

    /// A reference to an existing (allocated) slot, for a record to keep.
    pub(crate) fn slot_ref(&self, slot: SlotIndex) -> Option<SlotRef> {
        let chunk = self.chunk((slot / CHUNK_SLOTS) as usize)?;
        Some(SlotRef::new(chunk))
    }

    /// The lowest slot in `first..=last` whose full bit is clear, if any. A hint: the caller must
    /// still win the slot's compare-and-swap.
    pub(crate) fn first_not_full(&self, first: SlotIndex, last: SlotIndex) -> Option<SlotIndex> {
        let mut from = first;
        while from <= last {
            let chunk_index = from / CHUNK_SLOTS;
            let chunk_base = chunk_index * CHUNK_SLOTS;
            let chunk_last = chunk_base.saturating_add(CHUNK_SLOTS - 1).min(last);
            if let Some(chunk) = self.chunk(chunk_index as usize) {
                let lo = (from - chunk_base) as usize;
                let hi = (chunk_last - chunk_base) as usize;
                for w in lo / 64..=hi / 64 {
                    let mut free = !chunk.full_word(w);
                    if w == lo / 64 {
                        free &= u64::MAX << (lo % 64);
                    }
                    if w == hi / 64 && hi % 64 != 63 {
                        free &= (1u64 << (hi % 64 + 1)) - 1;
                    }
                    if free != 0 {
                        return Some(chunk_base + (w * 64) as u32 + free.trailing_zeros());
                    }
                }
            }
            match chunk_last.checked_add(1) {
                Some(next) => from = next,
                None => break,
            }
        }
        None
    }

    /// Every open slot in `first..=last` that is not closed, in order, with its word.
    pub(crate) fn open_slots(
        &self,
        first: SlotIndex,
        last: SlotIndex,
    ) -> impl Iterator<Item = (SlotIndex, Packed)> + '_ {
        let first_chunk = first / CHUNK_SLOTS;
        let last_chunk = last / CHUNK_SLOTS;
        (first_chunk..=last_chunk)
            .filter_map(move |ci| self.chunk(ci as usize).map(|c| (ci, c)))
            .flat_map(move |(ci, chunk)| {
                let base = ci * CHUNK_SLOTS;
                let lo = first.max(base) - base;
                let hi = last.min(base + (CHUNK_SLOTS - 1)) - base;
                (lo..=hi).filter_map(move |off| {
                    let p = chunk.load(off);
                    (p.is_open() && !chunk.is_closed(base + off)).then_some((base + off, p))
                })
            })
    }

    /// Every allocated slot of this branch with its word, for whole-book checks.
    pub(crate) fn all_slots(&self) -> impl Iterator<Item = (SlotIndex, Packed)> + '_ {
        (0..self.groups.len() * GROUP_CHUNKS)
            .filter_map(move |ci| self.chunk(ci).map(|c| (ci as u32 * CHUNK_SLOTS, c)))
            .flat_map(|(base, chunk)| {
                (0..CHUNK_SLOTS).map(move |off| (base + off, chunk.load(off)))
            })
    }

    /// Whether the full bit of an allocated slot is set (for invariant checks).
    pub(crate) fn full_bit(&self, slot: SlotIndex) -> Option<bool> {
        let chunk = self.chunk((slot / CHUNK_SLOTS) as usize)?;
        Some(chunk.full_bit(slot))
    }
}

impl Drop for Branch {
    fn drop(&mut self) {
        free_published(&mut self.groups);
    }
}

/// The key of `slot` in its chunk's [`QuotaTable`].
pub(crate) fn quota_key(slot: SlotIndex) -> SlotIndex {
    slot % CHUNK_SLOTS
}

/// A slot index below the table's `max_slots_per_branch`, so every branch of the table has a
/// directory entry for its chunk. Made only by [`BranchTable::in_range`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct InRange(SlotIndex);

/// Why [`BranchTable::with_slot`] made no change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused<E> {
    /// The slot's branch is new and the table holds `max_branches` already.
    TooManyBranches,
    /// The slot's chunk is new and the book has `max_slot_chunks` already.
    TooManyChunks,
    /// The caller's change refused (a journal error, say).
    Change(E),
}

/// An insert-only open-addressing table of branches keyed by `ahash` of the branch id.
///
/// Lookups are lock-free loads. Inserts, once per branch, take a lock and store into an empty
/// cell; the table has at least twice as many cells as `max_branches`, so probing always ends.
pub(crate) struct BranchTable {
    cells: Box<[AtomicPtr<Branch>]>,
    mask: usize,
    hasher: ahash::RandomState,
    count: AtomicUsize,
    /// Chunks allocated, in every branch.
    chunks: AtomicUsize,
    /// Held while a branch, group or chunk is created; lookups never take it.
    creating: Mutex<()>,
    max_branches: usize,
    max_chunks: usize,
    max_slots: u32,
}

impl BranchTable {
    pub(crate) fn new(max_branches: u32, max_slots: u32, max_chunks: u32) -> Self {
        let cells = (max_branches as usize * 2).next_power_of_two().max(4);
        Self {
            cells: (0..cells)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            mask: cells - 1,
            hasher: crate::sync::random_state(),
            count: AtomicUsize::new(0),
            chunks: AtomicUsize::new(0),
            creating: Mutex::new(()),
            max_branches: max_branches as usize,
            max_chunks: max_chunks as usize,
            max_slots,
        }
    }

    fn home(&self, id: BranchId) -> usize {
        (self.hasher.hash_one(id.0) as usize) & self.mask
    }

    /// `slot`, if it is below `max_slots_per_branch`.
    pub(crate) fn in_range(&self, slot: SlotIndex) -> Option<InRange> {
        (slot < self.max_slots).then_some(InRange(slot))
    }

    /// The branch `id`, if it was ever created.
    #[inline]
    pub(crate) fn get(&self, id: BranchId) -> Option<&Branch> {
        let mut i = self.home(id);
        loop {
            // Ordering: Acquire pairs with the publishing store in `publish_branch`.
            let ptr = self.cells[i].load(Ordering::Acquire);
            // SAFETY: non-null cells hold branches published by `publish_branch` and freed only in
            // `Drop` (`&mut self`), so the reference is valid for the lifetime of `&self`.
            let branch = unsafe { ptr.as_ref() }?;
            if branch.id == id {
                return Some(branch);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Runs `change` on the word of slot `slot` of branch `id`, creating the branch, the
    /// directory group and the chunk first if the slot has none yet, and returns the branch with
    /// what `change` returned.
    ///
    /// A creation happens under the creation lock, on memory nobody else can see: `change` runs
    /// on the new word before anything is published, and if it fails (or a limit is reached)
    /// the allocations are dropped and no count changes. Creations are rare (once per chunk), so
    /// the lock costs nothing in steady state; lookups never take it.
    pub(crate) fn with_slot<T, E>(
        &self,
        id: BranchId,
        slot: InRange,
        change: impl FnOnce(&SlotWord) -> Result<T, E>,
    ) -> Result<(&Branch, T), Refused<E>> {
        if let Some(b) = self.get(id)
            && let Some(word) = b.word(slot.0)
        {
            return change(word).map(|t| (b, t)).map_err(Refused::Change);
        }
        let _only_creator = self.creating.lock();
        self.create_slot(id, slot, change)
    }

    /// The body of [`with_slot`](Self::with_slot) under the creation lock.
    fn create_slot<T, E>(
        &self,
        id: BranchId,
        slot: InRange,
        change: impl FnOnce(&SlotWord) -> Result<T, E>,
    ) -> Result<(&Branch, T), Refused<E>> {
        if let Some(b) = self.get(id) {
            return match b.word(slot.0) {
                Some(word) => change(word).map_err(Refused::Change),
                None => self.add_chunk(b, slot, change),
            }
            .map(|t| (b, t));
        }
        // Ordering: Relaxed: the count is only written under `creating`, which we hold.
        let count = self.count.load(Ordering::Relaxed);
        if count >= self.max_branches {
            return Err(Refused::TooManyBranches);
        }
        let fresh = Box::new(Branch::new(id, self.max_slots));
        // On an error `fresh` is dropped, with the group and chunk it may have received.
        let t = self.add_chunk(&fresh, slot, change)?;
        let branch = Box::into_raw(fresh);
        self.publish_branch(id, branch, count);
        // SAFETY: just published; freed only in `Drop`, which needs `&mut self`.
        Ok((unsafe { &*branch }, t))
    }

    /// Creates the chunk of `slot` in `branch` (and its directory group if needed), runs
    /// `change` on the new word and only then publishes the chunk. The caller holds the
    /// creation lock and saw no chunk there.
    fn add_chunk<T, E>(
        &self,
        branch: &Branch,
        slot: InRange,
        change: impl FnOnce(&SlotWord) -> Result<T, E>,
    ) -> Result<T, Refused<E>> {
        // Ordering: Relaxed: the count is only written under `creating`, which we hold.
        let chunks = self.chunks.load(Ordering::Relaxed);
        if chunks >= self.max_chunks {
            return Err(Refused::TooManyChunks);
        }
        let index = (slot.0 / CHUNK_SLOTS) as usize;
        // In bounds: `InRange` is below the `max_slots` every directory was sized for.
        let group_cell = &branch.groups[index / GROUP_CHUNKS];
        let chunk = Box::new(Chunk::new(branch.id));
        let t = change(chunk.word(slot.0)).map_err(Refused::Change)?;
        // Publish from the leaf up, so that a reader who finds a pointer finds it initialised.
        // Ordering: Release publishes each initialised allocation to the Acquire loads of
        // `published`; the boxes now belong to the directory, whose `Drop` frees them.
        let chunk = Box::into_raw(chunk);
        match published(group_cell) {
            Some(group) => group.chunks[index % GROUP_CHUNKS].store(chunk, Ordering::Release),
            None => {
                let group = Group::new();
                group.chunks[index % GROUP_CHUNKS].store(chunk, Ordering::Release);
                group_cell.store(Box::into_raw(Box::new(group)), Ordering::Release);
            }
        }
        self.chunks.store(chunks + 1, Ordering::Relaxed);
        Ok(t)
    }

    /// Stores a new branch in an empty cell. The caller holds the creation lock.
    fn publish_branch(&self, id: BranchId, branch: *mut Branch, count: usize) {
        // The table never holds more than `max_branches` branches in at least twice as many
        // cells, so an empty cell is always found.
        let mut i = self.home(id);
        // Ordering: Relaxed for the probe: only creators write cells, and we are the only one.
        while !self.cells[i].load(Ordering::Relaxed).is_null() {
            i = (i + 1) & self.mask;
        }
        // Ordering: Release publishes the initialised branch to the Acquire loads of `get`.
        self.cells[i].store(branch, Ordering::Release);
        self.count.store(count + 1, Ordering::Relaxed);
    }

    /// Chunks allocated.
    pub(crate) fn chunks(&self) -> usize {
        self.chunks.load(Ordering::Relaxed)
    }

    /// Every branch, in table order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Branch> + '_ {
        self.cells.iter().filter_map(|c| {
            // SAFETY: as in `get`.
            unsafe { c.load(Ordering::Acquire).as_ref() }
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

impl Branch {
    pub(crate) fn id(&self) -> BranchId {
        self.id
    }
}

impl Drop for BranchTable {
    fn drop(&mut self) {
        free_published(&mut self.cells);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn open(word: &SlotWord) -> Result<(), ()> {
        word.set_capacity(1);
        Ok(())
    }

    #[test]
    fn a_branch_costs_what_its_opened_slots_need_not_its_maximum() {
        let table = BranchTable::new(4, 1 << 22, 100);
        let slot = table.in_range((1 << 22) - 1).unwrap();
        let (b, ()) = table.with_slot(BranchId(1), slot, open).unwrap();
        // One pointer per 32 768 possible slots, then one group: 1 KiB + 0.5 KiB, where a
        // one-level directory took 64 KiB.
        assert!(b.directory_bytes() <= 1_600, "{}", b.directory_bytes());
        assert_eq!(table.chunks(), 1);
        assert_eq!(b.all_slots().filter(|(_, p)| p.is_open()).count(), 1);
        assert_eq!(b.word((1 << 22) - 1).unwrap().load().capacity(), 1);
        assert!(b.word(0).is_none());
    }

    #[test]
    fn a_refused_first_change_or_a_limit_creates_nothing() {
        let table = BranchTable::new(2, 4096, 3);
        let at = |s: u32| table.in_range(s).unwrap();
        let refused = table.with_slot(BranchId(1), at(0), |_| Err::<(), _>("journal"));
        assert_eq!(refused.err(), Some(Refused::Change("journal")));
        assert!(table.get(BranchId(1)).is_none());
        assert_eq!((table.len(), table.chunks()), (0, 0));

        for (branch, slot) in [(1, 0), (1, 600), (2, 0)] {
            table.with_slot(BranchId(branch), at(slot), open).unwrap();
        }
        assert_eq!((table.len(), table.chunks()), (2, 3));
        let e = table.with_slot(BranchId(1), at(1200), open).err();
        assert_eq!(e, Some(Refused::TooManyChunks));
        let e = table.with_slot(BranchId(3), at(0), open).err();
        assert_eq!(e, Some(Refused::TooManyBranches));
        // A slot in an existing chunk needs no new chunk.
        table.with_slot(BranchId(1), at(511), open).unwrap();
        assert_eq!((table.len(), table.chunks()), (2, 3));
        assert!(table.get(BranchId(1)).unwrap().word(1200).is_none());
    }
}

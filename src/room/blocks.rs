//! The line's entries by virtual index: blocks of 512, dense while mostly full, sparse once
//! mostly empty, dropped from the front once empty.
//!
//! Guarantees:
//! - An entry's virtual index never changes while it waits, so nothing that points at it (the
//!   hash indexes, the check-in queue) is ever renumbered.
//! - No step costs more than one block: an entry removed from the middle of the line gives its
//!   memory back when its block is re-packed (O(512), each time fewer than a quarter of the
//!   entries it stores still wait), and the front of the line is freed a block at a time. There
//!   is no whole-line compaction.
//! - The span from the first stored index to the last is at most [`MAX_SPAN`]: virtual indices
//!   are 32 bits, and the bitmap costs a bit per index of the span.
//! - Memory: 32 bytes per entry of a dense block, 34 per waiting entry of a sparse one, and one
//!   bit per index of the span from the first block to the last (the rank bitmap).

use std::collections::VecDeque;

use super::prefetch::prefetch_read;
use super::rank::RankBitmap;
use super::waiter::Waiter;

/// Entries per block: one rank-bitmap block (512 bits), so blocks are dropped whole.
pub(crate) const BLOCK: usize = 512;

/// The most indices a line spans (2^31): joins behind a visitor who has waited through two
/// billion later joins are refused as if the line were full.
pub(crate) const MAX_SPAN: usize = 1 << 31;

/// A block's entries: all its indices (dense), or only those still waiting, with their offsets.
#[derive(Debug)]
struct Block {
    items: Vec<Waiter>,
    /// `None`: dense, `items[o]` is offset `o`. `Some`: sparse, `items[k]` is offset
    /// `offsets[k]`, in increasing order.
    offsets: Option<Vec<u16>>,
}

impl Block {
    fn new() -> Self {
        Self {
            items: Vec::with_capacity(BLOCK),
            offsets: None,
        }
    }

    fn item_of(&self, offset: usize) -> Option<usize> {
        match &self.offsets {
            None => (offset < self.items.len()).then_some(offset),
            Some(offsets) => offsets.binary_search(&(offset as u16)).ok(),
        }
    }

    fn heap_bytes(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<Waiter>()
            + self.offsets.as_ref().map_or(0, |o| o.capacity() * 2)
    }
}

#[derive(Debug, Default)]
pub(crate) struct EntryBlocks {
    blocks: VecDeque<Block>,
    /// One bit per index from `base`: set while its visitor waits.
    pub(crate) live: RankBitmap,
    /// The virtual index of the first block's first entry (wrapping: only differences count).
    base: u32,
}

impl EntryBlocks {
    /// Where virtual index `v` is in the bitmap (past the end if it is not stored).
    #[inline]
    pub(crate) fn at(&self, v: u32) -> usize {
        v.wrapping_sub(self.base) as usize
    }

    /// The virtual index of bitmap position `i`.
    pub(crate) fn virtual_of(&self, i: usize) -> u32 {
        self.base.wrapping_add(i as u32)
    }

    /// Indices spanned, waiting or not.
    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether another entry would pass [`MAX_SPAN`].
    pub(crate) fn is_span_full(&self) -> bool {
        self.len() >= MAX_SPAN
    }

    #[inline]
    pub(crate) fn is_live(&self, v: u32) -> bool {
        self.live.get(self.at(v))
    }

    fn locate(&self, i: usize) -> Option<(usize, usize)> {
        let block = self.blocks.get(i / BLOCK)?;
        Some((i / BLOCK, block.item_of(i % BLOCK)?))
    }

    /// The entry at virtual index `v`, which must be waiting.
    #[inline]
    pub(crate) fn get(&self, v: u32) -> &Waiter {
        let i = self.at(v);
        let (b, k) = self.locate(i).expect("a waiting entry is stored");
        &self.blocks[b].items[k]
    }

    /// Asks the CPU to bring the entry at virtual index `v` into cache, if it is stored in a
    /// dense block: a hint for an entry the caller reads soon (no effect on any answer).
    #[inline]
    pub(crate) fn prefetch(&self, v: u32) {
        let i = self.at(v);
        if let Some(block) = self.blocks.get(i / BLOCK)
            && block.offsets.is_none()
            && let Some(w) = block.items.get(i % BLOCK)
        {
            prefetch_read(w);
        }
    }

    /// Appends a waiting entry; returns its virtual index.
    pub(crate) fn push(&mut self, w: Waiter) -> u32 {
        let i = self.live.len();
        if i / BLOCK == self.blocks.len() {
            self.blocks.push_back(Block::new());
        }
        let block = self.blocks.back_mut().expect("just ensured");
        if let Some(offsets) = &mut block.offsets {
            offsets.push((i % BLOCK) as u16);
        }
        block.items.push(w);
        self.live.push(true);
        self.virtual_of(i)
    }

    /// Marks the entry at `v` gone; returns it. Re-packs its block if few of it still wait.
    pub(crate) fn remove(&mut self, v: u32) -> Waiter {
        let i = self.at(v);
        let w = self.get(v).clone();
        let was_live = self.live.clear(i);
        debug_assert!(was_live, "removing a visitor who is not waiting");
        self.repack_if_sparse(i / BLOCK);
        w
    }

    /// Keeps only the waiting entries of block `b` once fewer than a quarter of its stored ones
    /// wait (and none of a block whose indices are all past).
    fn repack_if_sparse(&mut self, b: usize) {
        let live = self.live.ones_in_block(b);
        let block = &mut self.blocks[b];
        if live * 4 >= block.items.len().max(8) {
            return;
        }
        let first = b * BLOCK;
        let (mut items, mut offsets) = (Vec::with_capacity(live), Vec::with_capacity(live));
        for o in 0..BLOCK {
            if self.live.get(first + o)
                && let Some(k) = block.item_of(o)
            {
                items.push(block.items[k].clone());
                offsets.push(o as u16);
            }
        }
        block.items = items;
        block.offsets = Some(offsets);
    }

    /// Drops the first `n` indices (a multiple of [`BLOCK`]), none of them waiting.
    pub(crate) fn drop_front(&mut self, n: usize) {
        debug_assert!(n.is_multiple_of(BLOCK));
        self.blocks.drain(..n / BLOCK);
        self.live.drop_front(n);
        self.base = self.base.wrapping_add(n as u32);
        crate::shrink::deque(&mut self.blocks);
    }

    /// Drops every index from `n` on, none of them waiting.
    pub(crate) fn truncate(&mut self, n: usize) {
        self.live.truncate(n);
        if n == 0 {
            self.blocks.clear();
            return;
        }
        self.blocks.truncate(n.div_ceil(BLOCK));
        if let Some(last) = self.blocks.back_mut() {
            let keep = n - (n - 1) / BLOCK * BLOCK;
            match &mut last.offsets {
                None => last.items.truncate(keep),
                Some(offsets) => {
                    let k = offsets.partition_point(|&o| usize::from(o) < keep);
                    offsets.truncate(k);
                    last.items.truncate(k);
                }
            }
        }
        crate::shrink::deque(&mut self.blocks);
    }

    /// Waiting entries in order, with their virtual indices.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Waiter)> + '_ {
        (0..self.len())
            .filter(|&i| self.live.get(i))
            .filter_map(|i| {
                let (b, k) = self.locate(i)?;
                Some((self.virtual_of(i), &self.blocks[b].items[k]))
            })
    }

    /// Heap bytes in use.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.blocks.capacity() * std::mem::size_of::<Block>()
            + self.blocks.iter().map(Block::heap_bytes).sum::<usize>()
            + self.live.heap_bytes()
    }

    /// Every waiting index is stored, and every block is in its form.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.blocks.len() != self.len().div_ceil(BLOCK) {
            return Err(format!(
                "{} blocks for {} indices",
                self.blocks.len(),
                self.len()
            ));
        }
        for (b, block) in self.blocks.iter().enumerate() {
            if let Some(offsets) = &block.offsets
                && (offsets.len() != block.items.len() || !offsets.is_sorted_by(|x, y| x < y))
            {
                return Err(format!("block {b}: offsets out of order"));
            }
            for o in 0..BLOCK.min(self.len() - b * BLOCK) {
                if self.live.get(b * BLOCK + o) && block.item_of(o).is_none() {
                    return Err(format!("block {b}: waiting entry {o} not stored"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::room::VisitorId;

    fn w(n: u64) -> Waiter {
        Waiter {
            token: u128::from(n) << 64,
            visitor: VisitorId(n),
            deadline_ns: crate::room::waiter::CheckinNs::new(n),
        }
    }

    #[test]
    fn agrees_with_a_model_through_pushes_removes_repacks_and_trims() {
        let mut blocks = EntryBlocks::default();
        let mut model: std::collections::BTreeMap<u32, Waiter> = Default::default();
        let mut x = 7u64;
        for n in 0..40_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if !x.is_multiple_of(3) || model.is_empty() {
                let v = blocks.push(w(n));
                model.insert(v, w(n));
            } else {
                // Mostly from the front (admissions), sometimes from anywhere (lapses).
                let v = if x.is_multiple_of(2) {
                    *model.keys().next().unwrap()
                } else {
                    *model.keys().nth((x as usize / 5) % model.len()).unwrap()
                };
                assert_eq!(blocks.remove(v), model.remove(&v).unwrap());
            }
            // The line's own trims: the front, then the back.
            let first = blocks.live.first_set_from(0).unwrap_or(blocks.len());
            if first >= 2 * BLOCK {
                blocks.drop_front(first - first % BLOCK);
            }
            if n % 500 == 0 {
                blocks.check().unwrap();
                let got: Vec<(u32, Waiter)> = blocks.iter().map(|(v, w)| (v, w.clone())).collect();
                let want: Vec<(u32, Waiter)> = model.iter().map(|(v, w)| (*v, w.clone())).collect();
                assert_eq!(got, want);
                for (v, w) in &model {
                    assert_eq!(blocks.get(*v), w);
                }
            }
        }
        // Everyone leaves from the back: the blocks go too.
        while let Some((&v, _)) = model.iter().next_back() {
            model.remove(&v);
            blocks.remove(v);
            let mut n = blocks.len();
            while n > 0 && !blocks.live.get(n - 1) {
                n -= 1;
            }
            blocks.truncate(n);
        }
        blocks.check().unwrap();
        assert_eq!(blocks.len(), 0);
        assert!(blocks.heap_bytes() < 4096, "{}", blocks.heap_bytes());
    }

    #[test]
    fn a_block_mostly_gone_keeps_only_its_waiting_entries() {
        let mut blocks = EntryBlocks::default();
        let vs: Vec<u32> = (0..2 * BLOCK as u64).map(|n| blocks.push(w(n))).collect();
        let dense = blocks.heap_bytes();
        for &v in vs.iter().take(BLOCK).filter(|v| *v % 8 != 0) {
            blocks.remove(v);
        }
        assert!(
            blocks.heap_bytes() < dense - BLOCK * 16,
            "{} vs {dense}",
            blocks.heap_bytes()
        );
        blocks.check().unwrap();
        for &v in vs.iter().take(BLOCK).filter(|v| *v % 8 == 0) {
            assert_eq!(blocks.get(v), &w(u64::from(v)));
        }
    }
}

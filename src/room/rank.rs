//! Exact places in line: a bitmap of who is still waiting, with prefix counts.
//!
//! Guarantee: `rank(i)`, the number of set bits in `0..=i`, is exact after any sequence of
//! pushes and clears, in O(log(n / 512)) time.
//!
//! Layout: one bit per line entry (set = still waiting) and a Fenwick tree over 512-bit blocks.
//! A rank is a Fenwick prefix over whole blocks (a few thousand counters at a million entries,
//! small enough to stay in cache) plus popcounts inside one block. Clearing a bit is one bit
//! operation plus one Fenwick update. A Fenwick tree over single entries would touch about twenty
//! scattered cache lines per query at a million entries; this touches two or three.

const BLOCK_WORDS: usize = 8;
const BLOCK_BITS: usize = BLOCK_WORDS * 64;

#[derive(Debug, Default)]
pub(crate) struct RankBitmap {
    words: Vec<u64>,
    /// Number of bits (set or not).
    len: usize,
    /// Number of set bits.
    ones: usize,
    /// Fenwick tree over per-block set-bit counts, 1-based: `fen[0]` is unused.
    fen: Vec<u32>,
}

impl RankBitmap {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn ones(&self) -> usize {
        self.ones
    }

    fn blocks_capacity(&self) -> usize {
        self.fen.len().saturating_sub(1)
    }

    fn fen_add(&mut self, block: usize, delta: i32) {
        let n = self.blocks_capacity();
        let mut i = block + 1;
        while i <= n {
            self.fen[i] = self.fen[i].wrapping_add_signed(delta);
            i += i & i.wrapping_neg();
        }
    }

    /// Set bits in blocks `0..block`.
    fn fen_prefix(&self, block: usize) -> usize {
        let mut i = block;
        let mut sum = 0usize;
        while i > 0 {
            sum += self.fen[i] as usize;
            i &= i - 1;
        }
        sum
    }

    /// Rebuilds the Fenwick tree for at least `blocks` blocks, from the words.
    fn rebuild_fenwick(&mut self, blocks: usize) {
        let n = blocks.next_power_of_two().max(16);
        let mut fen = vec![0u32; n + 1];
        for (b, chunk) in self.words.chunks(BLOCK_WORDS).enumerate() {
            fen[b + 1] = chunk.iter().map(|w| w.count_ones()).sum();
        }
        // Linear-time construction: push each node's sum to its parent.
        for i in 1..=n {
            let parent = i + (i & i.wrapping_neg());
            if parent <= n {
                fen[parent] += fen[i];
            }
        }
        self.fen = fen;
    }

    /// Appends one bit.
    pub(crate) fn push(&mut self, set: bool) {
        let i = self.len;
        if i / 64 >= self.words.len() {
            self.words.push(0);
        }
        self.len += 1;
        if i / BLOCK_BITS >= self.blocks_capacity() {
            self.rebuild_fenwick(i / BLOCK_BITS + 1);
        }
        if set {
            self.words[i / 64] |= 1 << (i % 64);
            self.ones += 1;
            self.fen_add(i / BLOCK_BITS, 1);
        }
    }

    pub(crate) fn get(&self, i: usize) -> bool {
        i < self.len && self.words[i / 64] & (1 << (i % 64)) != 0
    }

    /// Clears bit `i`; returns whether it was set.
    pub(crate) fn clear(&mut self, i: usize) -> bool {
        if !self.get(i) {
            return false;
        }
        self.words[i / 64] &= !(1 << (i % 64));
        self.ones -= 1;
        self.fen_add(i / BLOCK_BITS, -1);
        true
    }

    /// Drops trailing bits down to `new_len`; they must all be clear.
    pub(crate) fn truncate(&mut self, new_len: usize) {
        debug_assert!((new_len..self.len).all(|i| !self.get(i)));
        self.len = new_len.min(self.len);
        self.words.truncate(self.len.div_ceil(64));
        crate::shrink::vec(&mut self.words);
        if crate::shrink::should_shrink(self.words.len() / BLOCK_WORDS, self.blocks_capacity()) {
            self.rebuild_fenwick(self.words.len().div_ceil(BLOCK_WORDS).max(1));
        }
    }

    /// Set bits in `0..=i`. `i < len`.
    pub(crate) fn rank(&self, i: usize) -> usize {
        debug_assert!(i < self.len);
        let block = i / BLOCK_BITS;
        let first_word = block * BLOCK_WORDS;
        let word = i / 64;
        let mut sum = self.fen_prefix(block);
        for w in &self.words[first_word..word] {
            sum += w.count_ones() as usize;
        }
        let upto = if i % 64 == 63 {
            u64::MAX
        } else {
            (1u64 << (i % 64 + 1)) - 1
        };
        sum + (self.words[word] & upto).count_ones() as usize
    }

    /// The first set bit at or after `from`.
    pub(crate) fn first_set_from(&self, from: usize) -> Option<usize> {
        if from >= self.len {
            return None;
        }
        let mut w = from / 64;
        let mut bits = self.words[w] & (u64::MAX << (from % 64));
        loop {
            if bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                return (i < self.len).then_some(i);
            }
            w += 1;
            if w >= self.words.len() {
                return None;
            }
            bits = self.words[w];
        }
    }

    /// Set bits in 512-bit block `b`.
    pub(crate) fn ones_in_block(&self, b: usize) -> usize {
        let words = &self.words[(b * BLOCK_WORDS).min(self.words.len())..];
        words
            .iter()
            .take(BLOCK_WORDS)
            .map(|w| w.count_ones() as usize)
            .sum()
    }

    /// Drops the first `n` bits, which must all be clear; `n` is a multiple of 512 (one block),
    /// so the blocks after them keep their counts and only move down. O(len / 64).
    pub(crate) fn drop_front(&mut self, n: usize) {
        debug_assert!(n.is_multiple_of(BLOCK_BITS) && n <= self.len);
        debug_assert!(self.words[..n / 64].iter().all(|&w| w == 0));
        self.words.drain(..n / 64);
        crate::shrink::vec(&mut self.words);
        self.len -= n;
        self.rebuild_fenwick(self.len.div_ceil(BLOCK_BITS).max(1));
    }

    /// Heap bytes in use.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.words.capacity() * 8 + self.fen.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_rank(bits: &[bool], i: usize) -> usize {
        bits[..=i].iter().filter(|&&b| b).count()
    }

    #[test]
    fn rank_matches_counting_through_growth_and_clears() {
        let mut r = RankBitmap::default();
        let mut bits = Vec::new();
        let mut x = 12345u64;
        for n in 0..5000usize {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let set = !x.is_multiple_of(3);
            r.push(set);
            bits.push(set);
            if x.is_multiple_of(5) && n > 0 {
                let i = (x as usize / 7) % bits.len();
                assert_eq!(r.clear(i), bits[i]);
                bits[i] = false;
            }
            if n % 97 == 0 {
                for i in (0..bits.len()).step_by(13) {
                    assert_eq!(r.rank(i), naive_rank(&bits, i), "n {n} i {i}");
                }
            }
        }
        assert_eq!(r.ones(), bits.iter().filter(|&&b| b).count());
        let first = bits.iter().position(|&b| b);
        assert_eq!(r.first_set_from(0), first);
    }

    #[test]
    fn truncate_and_drop_front_keep_ranks() {
        let mut r = RankBitmap::default();
        for i in 0..3000 {
            r.push(i >= 1024);
        }
        r.drop_front(1024);
        assert_eq!((r.len(), r.ones()), (1976, 1976));
        assert_eq!(r.rank(0), 1);
        assert_eq!(r.rank(1975), 1976);
        assert_eq!(r.ones_in_block(0), 512);
        for i in 1966..1976 {
            r.clear(i);
        }
        r.truncate(1966);
        assert_eq!((r.len(), r.ones()), (1966, 1966));
        r.push(true);
        assert_eq!(r.rank(1966), 1967);
        assert_eq!(r.first_set_from(1967), None);
        assert_eq!(r.ones_in_block(3), 1966 + 1 - 3 * 512);
    }
}

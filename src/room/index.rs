//! Finding a line entry by token or by visitor: a sharded, compact hash index.
//!
//! Guarantee: `find` returns the entry whose key matches, verified against the entry itself, or
//! nothing; O(1) expected time at any size.
//!
//! Each cell is one `u64`: a 32-bit tag (from the key's hash) and the entry index. Keys are not
//! stored (they live in the line entries; `find` checks the candidate's key), and a cell's home
//! position is computed from its tag alone, so growing a shard and deleting (backward-shift
//! deletion under linear probing) never read the entries. The index is split into 64 independent
//! shards by the top bits of the hash, so growing one rehashes 1/64 of the entries; and the shards
//! start at staggered sizes (16 to 79 cells), so that under uniform inserts they reach their load
//! limits at different times instead of all in the same call: no single call stalls for a rehash
//! of a million.

use super::prefetch::prefetch_read;

const SHARDS: usize = 64;
/// Grow when a shard would be more than 4/5 full.
const LOAD_NUM: usize = 4;
const LOAD_DEN: usize = 5;

#[derive(Debug, Default, Clone)]
struct Shard {
    /// 0 = empty; else `tag << 32 | (index + 1)`.
    cells: Vec<u64>,
    len: usize,
    /// Cells of the first allocation: 16 plus the shard's number, so that the shards' sizes,
    /// and so the inserts at which they grow, never line up.
    first_cells: usize,
}

fn pack(tag: u32, index: u32) -> u64 {
    (u64::from(tag) << 32) | (u64::from(index) + 1)
}

fn tag_of(cell: u64) -> u32 {
    (cell >> 32) as u32
}

fn index_of(cell: u64) -> u32 {
    (cell as u32).wrapping_sub(1)
}

/// Maps a 32-bit tag uniformly onto `0..n` without division.
fn home(tag: u32, n: usize) -> usize {
    ((u64::from(tag) * n as u64) >> 32) as usize
}

impl Shard {
    fn grow(&mut self) {
        let n = (self.cells.len() * 3 / 2).max(self.first_cells).max(16);
        self.rebuild(n);
    }

    /// Gives memory back once the shard is less than 1/8 full: down to 1/2 full, so that it
    /// grows again (at 4/5) only after its length has grown by 60 %.
    fn shrink_if_mostly_empty(&mut self) {
        let floor = self.first_cells.max(16);
        if self.cells.len() > floor && self.len * 8 < self.cells.len() {
            self.rebuild((self.len * 2).max(floor));
        }
    }

    /// Moves every cell into a table of `n` cells.
    fn rebuild(&mut self, n: usize) {
        let old = std::mem::replace(&mut self.cells, vec![0; n]);
        for cell in old.into_iter().filter(|&c| c != 0) {
            let mut i = home(tag_of(cell), n);
            while self.cells[i] != 0 {
                i = if i + 1 == n { 0 } else { i + 1 };
            }
            self.cells[i] = cell;
        }
    }

    fn find(&self, tag: u32, mut eq: impl FnMut(u32) -> bool) -> Option<(usize, u32)> {
        let n = self.cells.len();
        if n == 0 {
            return None;
        }
        let mut i = home(tag, n);
        loop {
            let cell = self.cells[i];
            if cell == 0 {
                return None;
            }
            if tag_of(cell) == tag && eq(index_of(cell)) {
                return Some((i, index_of(cell)));
            }
            i = if i + 1 == n { 0 } else { i + 1 };
        }
    }

    fn insert(&mut self, tag: u32, index: u32) {
        if (self.len + 1) * LOAD_DEN > self.cells.len() * LOAD_NUM {
            self.grow();
        }
        let n = self.cells.len();
        let mut i = home(tag, n);
        while self.cells[i] != 0 {
            i = if i + 1 == n { 0 } else { i + 1 };
        }
        self.cells[i] = pack(tag, index);
        self.len += 1;
    }

    /// Backward-shift deletion: pull later cells of the probe run into the hole when their home
    /// allows it, so lookups never need tombstones.
    fn remove_at(&mut self, mut hole: usize) {
        let n = self.cells.len();
        let mut j = hole;
        loop {
            j = if j + 1 == n { 0 } else { j + 1 };
            let cell = self.cells[j];
            if cell == 0 {
                break;
            }
            let h = home(tag_of(cell), n);
            // The cell may move to `hole` if `hole` lies on its probe path `h..=j` (cyclically).
            let dist_home = (j + n - h) % n;
            let dist_hole = (j + n - hole) % n;
            if dist_hole <= dist_home {
                self.cells[hole] = cell;
                hole = j;
            }
        }
        self.cells[hole] = 0;
        self.len -= 1;
        self.shrink_if_mostly_empty();
    }
}

/// The hash of a token: 64 of its CSPRNG bits.
pub(crate) fn token_hash(token: u128) -> u64 {
    (token >> 64) as u64
}

/// A hash index from some key to a line entry index.
#[derive(Debug, Clone)]
pub(crate) struct IndexTable {
    shards: Box<[Shard]>,
    len: usize,
}

impl Default for IndexTable {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|i| Shard {
                    first_cells: 16 + i,
                    ..Shard::default()
                })
                .collect(),
            len: 0,
        }
    }
}

fn split(hash: u64) -> (usize, u32) {
    ((hash >> 58) as usize, hash as u32)
}

impl IndexTable {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The entry index stored under `hash` for which `eq` is true.
    #[inline]
    pub(crate) fn find(&self, hash: u64, eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let (s, tag) = split(hash);
        self.shards[s].find(tag, eq).map(|(_, index)| index)
    }

    /// Asks the CPU to bring the cell where a lookup or insert of `hash` starts into cache: a
    /// hint for a key the caller handles soon (no effect on any answer).
    #[inline]
    pub(crate) fn prefetch(&self, hash: u64) {
        let (s, tag) = split(hash);
        let cells = &self.shards[s].cells;
        if let Some(cell) = cells.get(home(tag, cells.len())) {
            prefetch_read(cell);
        }
    }

    /// Stores `index` under `hash`. The caller has checked that the key is absent.
    pub(crate) fn insert(&mut self, hash: u64, index: u32) {
        let (s, tag) = split(hash);
        self.shards[s].insert(tag, index);
        self.len += 1;
    }

    /// Removes the cell holding exactly `index` under `hash`; returns whether it was there.
    pub(crate) fn remove(&mut self, hash: u64, index: u32) -> bool {
        let (s, tag) = split(hash);
        let shard = &mut self.shards[s];
        match shard.find(tag, |i| i == index) {
            Some((cell, _)) => {
                shard.remove_at(cell);
                self.len -= 1;
                true
            }
            None => false,
        }
    }

    /// Every stored index.
    pub(crate) fn indices(&self) -> impl Iterator<Item = u32> + '_ {
        self.shards
            .iter()
            .flat_map(|s| s.cells.iter().filter(|&&c| c != 0).map(|&c| index_of(c)))
    }

    /// Heap bytes in use.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.shards.len() * std::mem::size_of::<Shard>()
            + self
                .shards
                .iter()
                .map(|s| s.cells.capacity() * 8)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn mix(x: u64) -> u64 {
        let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn agrees_with_a_hashmap_through_inserts_and_removes() {
        let mut t = IndexTable::default();
        let mut model: HashMap<u64, u32> = HashMap::new(); // key -> index
        let mut keys: Vec<u64> = Vec::new(); // index -> key
        let mut x = 1u64;
        for step in 0..40_000u32 {
            x = mix(x);
            if !x.is_multiple_of(4) || model.is_empty() {
                let key = mix(x ^ 0xabc);
                if model.contains_key(&key) {
                    continue;
                }
                let index = keys.len() as u32;
                keys.push(key);
                t.insert(mix(key), index);
                model.insert(key, index);
            } else {
                let key = *model.keys().nth((x as usize / 4) % model.len()).unwrap();
                let index = model.remove(&key).unwrap();
                assert!(t.remove(mix(key), index));
            }
            if step % 1000 == 0 {
                for (&k, &i) in &model {
                    assert_eq!(t.find(mix(k), |j| keys[j as usize] == k), Some(i));
                }
                assert_eq!(t.len(), model.len());
            }
        }
        let absent = mix(999_999_999);
        assert_eq!(t.find(mix(absent), |j| keys[j as usize] == absent), None);
    }
}

//! A hash map split into 64 independent maps, so that no single insert rehashes them all.
//!
//! Guarantee: growing the map moves the entries of one shard (about 1/64 of them), never all of
//! them at once: a room with a million passes never stalls a call for a whole-map rehash. Under
//! uniform inserts the shards would all fill up together, so each grows early, at its own
//! fraction (between 7/16 and 7/8) of what it can hold: their rehashes fall on different calls.
//! A shard shrinks once it is less than 1/8 full (see `shrink`). A shard is chosen by bits 32..38
//! of the key's hash, bits the inner maps use neither for their bucket index (low bits) nor for
//! their control bytes (top 7 bits).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

const SHARDS: usize = 64;

#[derive(Debug)]
pub(crate) struct ShardedMap<K, V, S> {
    shards: Box<[HashMap<K, V, S>]>,
    hasher: S,
    len: usize,
}

impl<K: Hash + Eq, V, S: BuildHasher + Clone> ShardedMap<K, V, S> {
    pub(crate) fn with_hasher(hasher: S) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| HashMap::with_hasher(hasher.clone()))
                .collect(),
            hasher,
            len: 0,
        }
    }

    fn shard(&self, key: &K) -> usize {
        ((self.hasher.hash_one(key) >> 32) as usize) & (SHARDS - 1)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        self.shards[self.shard(key)].get(key)
    }

    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = self.shard(key);
        self.shards[i].get_mut(key)
    }

    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let i = self.shard(&key);
        let shard = &mut self.shards[i];
        // Shard `i` grows once it is (32 + i/2)/64 of the way to full (1/2 to 1 of 7/8 load).
        let cap = shard.capacity();
        if cap >= 64 && shard.len() * 64 >= cap * (32 + i / 2) {
            shard.reserve(cap - shard.len() + 1);
        }
        let old = shard.insert(key, value);
        self.len += usize::from(old.is_none());
        old
    }

    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.shard(key);
        let shard = &mut self.shards[i];
        let old = shard.remove(key);
        self.len -= usize::from(old.is_some());
        if crate::shrink::should_shrink(shard.len(), shard.capacity()) {
            shard.shrink_to(crate::shrink::target(shard.len()));
        }
        old
    }

    /// Entries the shards can hold without growing, together.
    pub(crate) fn capacity(&self) -> usize {
        self.shards.iter().map(HashMap::capacity).sum()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.shards.iter().flat_map(HashMap::iter)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_one_map_and_spreads_over_every_shard() {
        let mut sharded = ShardedMap::with_hasher(ahash::RandomState::with_seeds(1, 2, 3, 4));
        let mut model = HashMap::new();
        for i in 0..20_000u64 {
            let k = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 5_000;
            if i % 3 == 0 {
                assert_eq!(sharded.remove(&k), model.remove(&k));
            } else {
                assert_eq!(sharded.insert(k, i), model.insert(k, i));
            }
            assert_eq!(sharded.len(), model.len());
        }
        for (k, v) in &model {
            assert_eq!(sharded.get(k), Some(v));
        }
        assert_eq!(sharded.iter().count(), model.len());
        assert!(sharded.shards.iter().all(|s| !s.is_empty()));
        assert!(sharded.capacity() >= model.len());
    }
}

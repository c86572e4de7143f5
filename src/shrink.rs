//! Giving memory back once the load has gone, without thrashing under a steady one.
//!
//! Rule: a buffer shrinks to twice its length once it is less than 1/8 full (and above a small
//! floor). It grows back only when full, so between a shrink and the next grow its length must
//! change by a factor of 2 at least, and between a grow and the next shrink by a factor of 4:
//! a load that holds steady never resizes, and the copying is O(1) amortized per element.

use std::collections::{BinaryHeap, VecDeque};

/// Buffers at or below this capacity are left alone.
const FLOOR: usize = 64;

/// Whether a buffer of `capacity` holding `len` should shrink.
pub(crate) fn should_shrink(len: usize, capacity: usize) -> bool {
    capacity > FLOOR && len.saturating_mul(8) < capacity
}

/// The capacity to shrink to.
pub(crate) fn target(len: usize) -> usize {
    (len * 2).max(FLOOR / 2)
}

pub(crate) fn vec<T>(v: &mut Vec<T>) {
    if should_shrink(v.len(), v.capacity()) {
        v.shrink_to(target(v.len()));
    }
}

pub(crate) fn deque<T>(v: &mut VecDeque<T>) {
    if should_shrink(v.len(), v.capacity()) {
        v.shrink_to(target(v.len()));
    }
}

pub(crate) fn binary_heap<T: Ord>(v: &mut BinaryHeap<T>) {
    if should_shrink(v.len(), v.capacity()) {
        v.shrink_to(target(v.len()));
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn shrinks_only_when_mostly_empty_and_never_below_what_it_holds() {
        let mut v: Vec<u64> = (0..10_000).collect();
        v.truncate(2_000);
        vec(&mut v);
        assert_eq!(v.len(), 2_000);
        assert!(v.capacity() >= 10_000, "a fifth full: kept");
        v.truncate(1_000);
        vec(&mut v);
        assert!(
            v.capacity() >= 1_000 && v.capacity() < 2_100,
            "{}",
            v.capacity()
        );
        assert_eq!(v, (0..1_000).collect::<Vec<u64>>());
        let mut small: Vec<u8> = Vec::with_capacity(64);
        vec(&mut small);
        assert_eq!(small.capacity(), 64);
    }
}

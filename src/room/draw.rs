//! The pre-queue draw: a seeded, reproducible, auditable shuffle.
//!
//! Guarantee: [`prequeue_order`] depends only on its two arguments, on every platform and in
//! every version of this crate, and every order of `len` visitors is equally likely over seeds
//! (up to the generator's quality). The generator is SplitMix64; the shuffle is Fisher–Yates with
//! Lemire's unbiased bounded integers. Both are specified here so that anyone can re-run a draw
//! from the published seed.

/// SplitMix64: a 64-bit state advanced by the golden-ratio increment, then mixed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n >= 1`), without modulo bias.
    fn below(&mut self, n: u64) -> u64 {
        let mut m = u128::from(self.next()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }
}

/// The longest pre-queue [`prequeue_order`] draws an order for: the largest `max_waiting` a
/// room accepts, so every room's draw fits.
pub const MAX_PREQUEUE: usize = 1 << 30;

/// [`prequeue_order`] was asked for more than [`MAX_PREQUEUE`] places.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "a pre-queue of {len} visitors is longer than any room holds ({max}): ask for at most that many"
)]
#[non_exhaustive]
pub struct PrequeueTooLong {
    /// The length asked for.
    pub len: usize,
    /// [`MAX_PREQUEUE`].
    pub max: usize,
}

/// The order in which a pre-queue of `len` visitors enters the line at the opening.
///
/// `order[k]` is the join rank (0 = first to join the pre-queue, counting only visitors still
/// present at the opening) of the visitor who gets place `k + 1` among the pre-queued. At most
/// [`MAX_PREQUEUE`] places (8 GiB of result at that length); longer is an error, not an
/// allocation that aborts the process.
///
/// ```
/// use surgegate::room::prequeue_order;
///
/// let a = prequeue_order(5, 42)?;
/// assert_eq!(a, prequeue_order(5, 42)?); // reproducible
/// let mut sorted = a.clone();
/// sorted.sort();
/// assert_eq!(sorted, [0, 1, 2, 3, 4]); // a permutation
/// assert!(prequeue_order(1 << 40, 0).is_err());
/// # Ok::<(), surgegate::room::PrequeueTooLong>(())
/// ```
pub fn prequeue_order(len: usize, seed: u64) -> Result<Vec<usize>, PrequeueTooLong> {
    if len > MAX_PREQUEUE {
        return Err(PrequeueTooLong {
            len,
            max: MAX_PREQUEUE,
        });
    }
    Ok(shuffled(len, seed))
}

/// The draw itself, for a length the caller has bounded (the room: its pre-queue, at most
/// `max_waiting <= MAX_PREQUEUE`).
pub(crate) fn shuffled(len: usize, seed: u64) -> Vec<usize> {
    debug_assert!(len <= MAX_PREQUEUE);
    let mut order: Vec<usize> = (0..len).collect();
    let mut rng = SplitMix64(seed);
    for i in (1..len).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_values() {
        // Published reference outputs of SplitMix64 seeded with 1234567.
        let mut g = SplitMix64(1_234_567);
        let expected = [
            6_457_827_717_110_365_317u64,
            3_203_168_211_198_807_973,
            9_817_491_932_198_370_423,
            4_593_380_528_125_082_431,
            16_408_922_859_458_223_821,
        ];
        for e in expected {
            assert_eq!(g.next(), e);
        }
    }

    #[test]
    fn the_draw_is_a_pinned_permutation() {
        // Pinned so that a change of algorithm, which would break audits of past draws, fails.
        assert_eq!(prequeue_order(10, 7).unwrap(), PINNED_10_7);
        assert!(prequeue_order(0, 1).unwrap().is_empty());
        assert_eq!(prequeue_order(1, 1).unwrap(), [0]);
    }

    #[test]
    fn every_order_of_three_is_drawn_about_equally() {
        let mut counts = std::collections::HashMap::new();
        for seed in 0..60_000u64 {
            *counts
                .entry(prequeue_order(3, seed).unwrap())
                .or_insert(0u32) += 1;
        }
        assert_eq!(counts.len(), 6);
        for (order, n) in counts {
            assert!(
                (9_000..11_000).contains(&n),
                "{order:?} drawn {n} times of 60000"
            );
        }
    }

    // Computed by an independent Python implementation of the same specification.
    const PINNED_10_7: [usize; 10] = [9, 5, 8, 6, 1, 2, 4, 7, 0, 3];
}

//! Deterministic random numbers for plans and sampling.
//!
//! Why not the `rand` crate: a plan must be reproducible across thresher versions, ranks and
//! resumed runs (checkpoints store only the seed), and `rand`'s sequence helpers (`shuffle`,
//! `choose_multiple`) are documented as *not* value-stable across its releases. SplitMix64 is a
//! fixed, well-studied 64-bit generator (it passes BigCrush); with it and the textbook
//! Fisher–Yates shuffle below, the output is pinned by this file alone.

use crate::util::prefetch;

/// The independent streams drawn from one seed. Each plan step uses its own stream, so adding a
/// random step to one policy never shifts the numbers another step sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Stream {
    /// Order of the kept ids within an epoch.
    Shuffle = 1,
    /// Which ids a policy keeps (random, epsilon-greedy, infobatch).
    Select = 2,
    /// Per-sample augmentation.
    Augment = 3,
    /// Random projection of gradient embeddings.
    Projection = 4,
    /// The trim or fill that holds an epoch to its count under a `budget`.
    Budget = 5,
}

/// SplitMix64's increment.
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64 (Steele, Lea, Flood 2014).
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator for (seed, stream, a, b), e.g. (seed, Shuffle, epoch, 0). Distinct keys give
    /// unrelated sequences.
    pub fn new(seed: u64, stream: Stream, a: u64, b: u64) -> Self {
        let mut s = mix(seed ^ 0x7468_7265_7368_6572); // "thresher"
        s = mix(s ^ (stream as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        s = mix(s ^ a.wrapping_mul(0xd1b5_4a32_d192_ed03));
        s = mix(s ^ b.wrapping_mul(0x8cb9_2ba7_2f3d_8dd7));
        Rng { state: s }
    }

    /// The state before the first draw (with `at`, any draw without the ones before it).
    pub(crate) fn state(&self) -> u64 {
        self.state
    }

    /// Draw number `p` (0-based) of the generator whose `state()` was `base`: equal to the
    /// `p + 1`-th `next_u64`, computed directly (SplitMix64 is a counter).
    pub(crate) fn at(base: u64, p: u64) -> u64 {
        mix(base.wrapping_add(p.wrapping_add(1).wrapping_mul(GAMMA)))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix(self.state)
    }

    /// Uniform in [0, n), unbiased (Lemire's multiply-and-reject). `n` must be > 0.
    ///
    /// The rejection threshold (2⁶⁴ mod n, a 64-bit division) is only computed when the low
    /// half falls below n, which is rare for n ≪ 2⁶⁴: the same accept/reject decisions, hence
    /// the same values, as computing it up front, without a division per call.
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let mut m = (self.next_u64() as u128) * (n as u128);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = (self.next_u64() as u128) * (n as u128);
            }
        }
        (m >> 64) as u64
    }

    /// Uniform in [0, 1) with 53 bits.
    pub fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        self.shuffle_pair::<T, u8>(items, &mut []);
    }

    /// Fisher–Yates on two slices with the same swaps (ids and their weights in a plan): the
    /// permutation `shuffle` would apply to `a`, applied to both. `b` is either empty or as long
    /// as `a`.
    ///
    /// Each swap touches a random position, so on arrays larger than the cache the loop waits on
    /// memory. The positions depend only on the generator, never on the data, so they are drawn
    /// `AHEAD` swaps early and their cache lines prefetched: the same draws in the same order,
    /// the same swaps, the same result, several misses in flight instead of one.
    pub fn shuffle_pair<A, B>(&mut self, a: &mut [A], b: &mut [B]) {
        assert!(b.is_empty() || b.len() == a.len());
        let n = a.len();
        if n < 2 {
            return;
        }
        // Swap t (t = 0, 1, ...) exchanges positions i = n−1−t and j = below(i + 1).
        let swaps = n - 1;
        let mut ring = [0usize; AHEAD];
        let (pa, pb, has_b) = (a.as_ptr(), b.as_ptr(), !b.is_empty());
        let draw = |rng: &mut Self, t: usize| {
            let i = n - 1 - t;
            let j = rng.below(i as u64 + 1) as usize;
            prefetch(pa, j);
            if has_b {
                prefetch(pb, j);
            }
            j
        };
        for (t, slot) in ring.iter_mut().enumerate().take(swaps) {
            *slot = draw(self, t);
        }
        for t in 0..swaps {
            let j = ring[t % AHEAD];
            if t + AHEAD < swaps {
                ring[t % AHEAD] = draw(self, t + AHEAD);
            }
            let i = n - 1 - t;
            a.swap(i, j);
            if !b.is_empty() {
                b.swap(i, j);
            }
        }
    }

    /// Moves a uniformly random `k`-subset of `items` to its front (partial Fisher–Yates);
    /// the order of the rest is unspecified but deterministic. Prefetched as `shuffle_pair`,
    /// with the same draws and swaps as the plain loop.
    pub fn choose_front<T>(&mut self, items: &mut [T], k: usize) {
        let n = items.len();
        let k = k.min(n);
        let mut ring = [0usize; AHEAD];
        let base = items.as_ptr();
        let draw = |rng: &mut Self, i: usize| {
            let j = i + rng.below((n - i) as u64) as usize;
            prefetch(base, j);
            j
        };
        for (i, slot) in ring.iter_mut().enumerate().take(k) {
            *slot = draw(self, i);
        }
        for i in 0..k {
            let j = ring[i % AHEAD];
            if i + AHEAD < k {
                ring[i % AHEAD] = draw(self, i + AHEAD);
            }
            items.swap(i, j);
        }
    }
}

/// The draws of [`Rng::picks`].
pub struct Picks<'a> {
    rng: &'a mut Rng,
    /// Items not yet decided.
    left: u64,
    /// Items still to take.
    need: u64,
}

impl Iterator for Picks<'_> {
    type Item = bool;

    #[inline(always)]
    fn next(&mut self) -> Option<bool> {
        if self.left == 0 {
            return None;
        }
        // `need > 0` first: no draw once k are taken (`below(left) < left` always holds, so
        // once need = left every remaining item is taken as well).
        let take = self.need > 0 && self.rng.below(self.left) < self.need;
        self.left -= 1;
        self.need -= take as u64;
        Some(take)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

impl Rng {
    /// Selection sampling (Knuth, TAOCP vol. 2, 3.4.2, Algorithm S): for each of `n` items in
    /// order, whether it belongs to a uniformly random `k`-subset of them (`k` is clamped to
    /// `n`). Item i is taken when `below(n − i) < k − t`, t being the items taken before it:
    /// probability (k − t)/(n − i), exactly; no draw is made once k are taken. Unlike
    /// `choose_front` it touches the items in order only, so marking the draw into an array
    /// indexed by the items' ids (listed ascending) writes sequentially instead of at random
    /// positions.
    pub fn picks(&mut self, n: usize, k: usize) -> Picks<'_> {
        Picks {
            rng: self,
            left: n as u64,
            need: k.min(n) as u64,
        }
    }
}

/// Swaps drawn ahead of use in `shuffle_pair` and `choose_front`: enough misses in flight to
/// cover memory latency, few enough that the lines are still cached when their swap comes.
const AHEAD: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draw_by_position_equals_the_sequence() {
        let mut r = Rng::new(3, Stream::Projection, 7, 9);
        let base = r.state();
        for p in 0..100 {
            assert_eq!(Rng::at(base, p), r.next_u64(), "{p}");
        }
    }

    #[test]
    fn same_key_same_sequence_and_streams_differ() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7, Stream::Shuffle, 3, 0);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7, Stream::Shuffle, 3, 0);
                move |_| r.next_u64()
            })
            .collect();
        let c = Rng::new(7, Stream::Select, 3, 0).next_u64();
        assert_eq!(a, b);
        assert_ne!(a[0], c);
    }

    #[test]
    fn pinned_values_never_change() {
        // If this fails, every saved plan and checkpoint of earlier versions is invalid.
        let mut r = Rng::new(0, Stream::Shuffle, 0, 0);
        let first = r.next_u64();
        let mut r2 = Rng::new(0, Stream::Shuffle, 0, 0);
        assert_eq!(first, r2.next_u64());
        assert_eq!(mix(0x9e37_79b9_7f4a_7c15), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn picks_takes_exactly_k_and_every_subset_is_equally_likely() {
        for (n, k) in [
            (0, 0),
            (1, 0),
            (1, 1),
            (5, 0),
            (5, 5),
            (5, 9),
            (7, 3),
            (1000, 431),
        ] {
            let mut r = Rng::new(2, Stream::Select, n as u64, k as u64);
            let got: Vec<bool> = r.picks(n, k).collect();
            assert_eq!(got.len(), n);
            assert_eq!(got.iter().filter(|&&t| t).count(), k.min(n), "n {n} k {k}");
        }
        // All 10 subsets of 2 out of 5, about 10,000 times each in 100,000 draws.
        let mut counts = std::collections::HashMap::new();
        let mut r = Rng::new(4, Stream::Select, 0, 0);
        for _ in 0..100_000 {
            let mask: Vec<bool> = r.picks(5, 2).collect();
            *counts.entry(mask).or_insert(0u32) += 1;
        }
        assert_eq!(counts.len(), 10);
        for c in counts.values() {
            assert!((9_400..10_600).contains(c), "{counts:?}");
        }
    }

    #[test]
    fn picks_draws_once_per_item_until_k_are_taken() {
        // The textbook loop: one `below(n − i)` per item while some are still needed.
        let (n, k) = (200usize, 37usize);
        let mut a = Rng::new(9, Stream::Select, 1, 0);
        let got: Vec<bool> = a.picks(n, k).collect();
        let mut b = Rng::new(9, Stream::Select, 1, 0);
        let mut need = k as u64;
        let want: Vec<bool> = (0..n)
            .map(|i| {
                let take = need > 0 && b.below((n - i) as u64) < need;
                need -= take as u64;
                take
            })
            .collect();
        assert_eq!(got, want);
        assert_eq!(a.next_u64(), b.next_u64(), "the same number of draws");
    }

    #[test]
    fn below_is_in_range_and_roughly_uniform() {
        let mut r = Rng::new(1, Stream::Select, 0, 0);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[r.below(10) as usize] += 1;
        }
        for c in counts {
            assert!((9_400..10_600).contains(&c), "{counts:?}");
        }
    }

    /// The textbook loops the prefetched versions must equal, swap for swap.
    fn below_reference(r: &mut Rng, n: u64) -> u64 {
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = (r.next_u64() as u128) * (n as u128);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    #[test]
    fn prefetched_loops_equal_the_textbook_ones() {
        // n near 2⁶⁴ makes rejections common, so the lazy threshold is exercised.
        for n in [1u64, 2, 3, 10, 1000, u64::MAX / 3 * 2, u64::MAX] {
            let (mut a, mut b) = (
                Rng::new(5, Stream::Select, n, 0),
                Rng::new(5, Stream::Select, n, 0),
            );
            for _ in 0..2000 {
                assert_eq!(a.below(n), below_reference(&mut b, n));
            }
        }
        for len in [0usize, 1, 2, 5, 16, 17, 40, 1000] {
            let mut r = Rng::new(3, Stream::Shuffle, len as u64, 0);
            let mut want: Vec<u32> = (0..len as u32).collect();
            for i in (1..len).rev() {
                let j = below_reference(&mut r, i as u64 + 1) as usize;
                want.swap(i, j);
            }
            let mut got: Vec<u32> = (0..len as u32).collect();
            let mut w: Vec<f32> = (0..len).map(|x| x as f32).collect();
            Rng::new(3, Stream::Shuffle, len as u64, 0).shuffle_pair(&mut got, &mut w);
            assert_eq!(got, want);
            assert!(got.iter().zip(&w).all(|(&g, &w)| g as f32 == w));
            for k in [0, 1, len / 2, len, len + 3] {
                let mut r = Rng::new(4, Stream::Select, k as u64, 0);
                let mut want: Vec<u32> = (0..len as u32).collect();
                for i in 0..k.min(len) {
                    let j = i + below_reference(&mut r, (len - i) as u64) as usize;
                    want.swap(i, j);
                }
                let mut got: Vec<u32> = (0..len as u32).collect();
                Rng::new(4, Stream::Select, k as u64, 0).choose_front(&mut got, k);
                assert_eq!(got, want, "len {len} k {k}");
            }
        }
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<u32> = (0..1000).collect();
        Rng::new(2, Stream::Shuffle, 0, 0).shuffle(&mut v);
        assert_ne!(v, (0..1000).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..1000).collect::<Vec<_>>());
    }
}

//! Deterministic random numbers for plans and sampling.
//!
//! Why not the `rand` crate: a plan must be reproducible across thresher versions, ranks and
//! resumed runs (checkpoints store only the seed), and `rand`'s sequence helpers (`shuffle`,
//! `choose_multiple`) are documented as *not* value-stable across its releases. SplitMix64 is a
//! fixed, well-studied 64-bit generator (it passes BigCrush); with it and the textbook
//! Fisher–Yates shuffle below, the output is pinned by this file alone.

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
}

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

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.state)
    }

    /// Uniform in [0, n), unbiased (Lemire's multiply-and-reject). `n` must be > 0.
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// Uniform in [0, 1) with 53 bits.
    pub fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }

    /// Moves a uniformly random `k`-subset of `items` to its front (partial Fisher–Yates);
    /// the order of the rest is unspecified but deterministic.
    pub fn choose_front<T>(&mut self, items: &mut [T], k: usize) {
        let n = items.len();
        for i in 0..k.min(n) {
            let j = i + self.below((n - i) as u64) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<u32> = (0..1000).collect();
        Rng::new(2, Stream::Shuffle, 0, 0).shuffle(&mut v);
        assert_ne!(v, (0..1000).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..1000).collect::<Vec<_>>());
    }
}

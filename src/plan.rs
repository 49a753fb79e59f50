//! The plan of one epoch: the kept ids in delivery order, a loss weight per id, and its cut into
//! batches. It is fixed when the epoch begins (from the policy's Selection) and never changes;
//! its order comes from a generator seeded by (seed, epoch), never from thread timing.

use crate::policy::Selection;
use crate::rng::{Rng, Stream};

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub epoch: u64,
    /// Ids in delivery order.
    pub ids: Vec<u64>,
    /// `weights[i]` belongs to `ids[i]`.
    pub weights: Vec<f32>,
    pub batch_size: usize,
    /// N, the dataset's size (for the prune fraction).
    pub dataset_len: usize,
}

/// How a Selection becomes a Plan.
#[derive(Clone, Copy, Debug)]
pub struct PlanOptions {
    pub seed: u64,
    pub shuffle: bool,
    pub batch_size: usize,
    pub drop_last: bool,
}

impl Plan {
    /// Orders the selection (shuffled with (seed, epoch), or ascending by id) and cuts it.
    pub fn new(epoch: u64, mut sel: Selection, opts: &PlanOptions, dataset_len: usize) -> Plan {
        debug_assert_eq!(sel.ids.len(), sel.weights.len());
        if opts.shuffle {
            let mut rng = Rng::new(opts.seed, Stream::Shuffle, epoch, 0);
            // Fisher–Yates on both arrays with the same swaps.
            for i in (1..sel.ids.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                sel.ids.swap(i, j);
                sel.weights.swap(i, j);
            }
        } else if !sel.ids.windows(2).all(|w| w[0] < w[1]) {
            let mut pairs: Vec<(u64, f32)> = sel.ids.iter().copied().zip(sel.weights).collect();
            pairs.sort_unstable_by_key(|p| p.0);
            sel.ids = pairs.iter().map(|p| p.0).collect();
            sel.weights = pairs.iter().map(|p| p.1).collect();
        }
        if opts.drop_last {
            let keep = sel.ids.len() / opts.batch_size * opts.batch_size;
            sel.ids.truncate(keep);
            sel.weights.truncate(keep);
        }
        Plan {
            epoch,
            ids: sel.ids,
            weights: sel.weights,
            batch_size: opts.batch_size,
            dataset_len,
        }
    }

    /// Samples this epoch delivers.
    pub fn samples(&self) -> usize {
        self.ids.len()
    }

    /// Batches this epoch delivers.
    pub fn batches(&self) -> usize {
        self.ids.len().div_ceil(self.batch_size)
    }

    /// The index range of batch `k` within `ids`/`weights`.
    pub fn batch_range(&self, k: usize) -> std::ops::Range<usize> {
        let start = k * self.batch_size;
        start..(start + self.batch_size).min(self.ids.len())
    }

    /// 1 − samples / N: the fraction of the dataset this epoch skips.
    pub fn prune_fraction(&self) -> f64 {
        if self.dataset_len == 0 {
            0.0
        } else {
            1.0 - self.samples() as f64 / self.dataset_len as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(n: u64) -> Selection {
        Selection {
            ids: (0..n).collect(),
            weights: (0..n).map(|i| i as f32 * 0.5).collect(),
            ..Default::default()
        }
    }

    fn opts(shuffle: bool, drop_last: bool) -> PlanOptions {
        PlanOptions {
            seed: 3,
            shuffle,
            batch_size: 4,
            drop_last,
        }
    }

    #[test]
    fn shuffle_keeps_pairs_and_depends_on_epoch() {
        let a = Plan::new(0, sel(10), &opts(true, false), 20);
        let b = Plan::new(0, sel(10), &opts(true, false), 20);
        let c = Plan::new(1, sel(10), &opts(true, false), 20);
        assert_eq!(a, b);
        assert_ne!(a.ids, c.ids);
        for (id, w) in a.ids.iter().zip(&a.weights) {
            assert_eq!(*w, *id as f32 * 0.5);
        }
        assert_eq!((a.batches(), a.batch_range(2)), (3, 8..10));
        assert!((a.prune_fraction() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn no_shuffle_sorts_and_drop_last_truncates() {
        let mut s = sel(10);
        s.ids.reverse();
        s.weights.reverse();
        let p = Plan::new(0, s, &opts(false, true), 10);
        assert_eq!(p.ids, (0..8).collect::<Vec<_>>());
        assert_eq!(p.weights[3], 1.5);
        assert_eq!(p.batches(), 2);
    }
}

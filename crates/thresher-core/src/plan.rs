//! The plan of one epoch: the kept ids in delivery order, a loss weight per id, and its cut into
//! batches for this rank. It is fixed when the epoch begins (from the policy's Selection) and
//! never changes; its order comes from a generator seeded by (seed, epoch), never from thread
//! timing.
//!
//! Ranks. Every rank makes the same *global* plan (same ScoreBook, same seed). A global step
//! takes the next `world_size × batch_size` positions of the global order; rank r's batch k is
//! the positions `start + k·W·B + r + j·W` (j < B) — a strided share, so the ranks' batches of
//! one step are disjoint and together are one contiguous block of the global order. That is
//! what makes the position rank-independent: a checkpoint records how many global positions
//! were consumed, and any world size can continue from there.
//!
//! Equal batch counts. With W > 1 the rest of the global order is padded (or, with
//! `drop_last`, truncated) to a multiple of W·B, so every rank yields the same number of full
//! batches and no collective waits for a rank that has run out. Padding repeats ids from the
//! start of the global order with weight 0, so each kept sample still counts once in the
//! epoch's loss; a batch says how many of its trailing samples are padding. With W = 1 nothing
//! is padded (the last batch may be short) unless `drop_last` truncates.

use crate::policy::Selection;
use crate::rng::{Rng, Stream};
use crate::util::Fnv;

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub epoch: u64,
    /// The global order: every rank's ids, in delivery order; the same on every rank.
    pub ids: Vec<u64>,
    /// `weights[i]` belongs to `ids[i]`.
    pub weights: Vec<f32>,
    /// Samples per batch on each rank.
    pub batch_size: usize,
    /// N, the dataset's size (for the prune fraction).
    pub dataset_len: usize,
    pub rank: usize,
    pub world_size: usize,
    /// The global position this rank's batch 0 begins at: 0, or where a checkpoint taken at
    /// another world size left off.
    pub start: usize,
    /// Global positions [start, start + span) are delivered (by all ranks together); positions
    /// at or past `ids.len()` are padding.
    span: usize,
}

/// How a Selection becomes a Plan.
#[derive(Clone, Copy, Debug)]
pub struct PlanOptions {
    pub seed: u64,
    pub shuffle: bool,
    pub batch_size: usize,
    pub drop_last: bool,
    pub rank: usize,
    pub world_size: usize,
}

impl PlanOptions {
    /// Batches each rank delivers for an epoch that keeps `len` samples (a fresh epoch, from
    /// position 0): what `Plan::batches` will say, known before the plan exists.
    pub fn batches_for(&self, len: usize) -> usize {
        let step = self.batch_size * self.world_size;
        if self.drop_last {
            len / step
        } else {
            len.div_ceil(step)
        }
    }
}

/// `Rng::shuffle_pair(ids, weights)`, with the same draws and the same result, touching one
/// array at the random positions instead of two: when every weight is the same (every policy
/// but InfoBatch) only the ids move; otherwise, with ids below 2^32, each weight rides in the
/// high half of its id's u64 for the shuffle and is unpacked after it (two sequential passes
/// cost less than a second cache miss per swap on large plans).
fn shuffle_ids_weights(rng: &mut Rng, ids: &mut [u64], weights: &mut [f32]) {
    let uniform = weights.first().is_none_or(|&w0| {
        let b = w0.to_bits();
        weights.iter().all(|w| w.to_bits() == b)
    });
    if uniform && weights.len() == ids.len() {
        rng.shuffle_pair(ids, &mut [] as &mut [f32]);
    } else if weights.len() == ids.len() && ids.iter().all(|&id| id <= u32::MAX as u64) {
        for (id, w) in ids.iter_mut().zip(weights.iter()) {
            *id |= (w.to_bits() as u64) << 32;
        }
        rng.shuffle_pair(ids, &mut [] as &mut [f32]);
        for (id, w) in ids.iter_mut().zip(weights.iter_mut()) {
            *w = f32::from_bits((*id >> 32) as u32);
            *id &= 0xffff_ffff;
        }
    } else {
        rng.shuffle_pair(ids, weights);
    }
}

impl Plan {
    /// Orders the selection (shuffled with (seed, epoch), or ascending by id) and lays it out
    /// for this rank from global position 0.
    pub fn new(epoch: u64, mut sel: Selection, opts: &PlanOptions, dataset_len: usize) -> Plan {
        debug_assert_eq!(sel.ids.len(), sel.weights.len());
        if opts.shuffle {
            // Fisher–Yates on both arrays with the same swaps (prefetching the positions it
            // will swap: the same draws and result as the plain loop, see `Rng::shuffle_pair`).
            shuffle_ids_weights(
                &mut Rng::new(opts.seed, Stream::Shuffle, epoch, 0),
                &mut sel.ids,
                &mut sel.weights,
            );
        } else if !sel.ids.windows(2).all(|w| w[0] < w[1]) {
            let mut pairs: Vec<(u64, f32)> = sel.ids.iter().copied().zip(sel.weights).collect();
            pairs.sort_unstable_by_key(|p| p.0);
            sel.ids = pairs.iter().map(|p| p.0).collect();
            sel.weights = pairs.iter().map(|p| p.1).collect();
        }
        Plan::from_global(epoch, sel.ids, sel.weights, opts, dataset_len, 0)
    }

    /// Lays out an already ordered global plan for `opts.rank` of `opts.world_size`, from
    /// global position `start` on (a resumed epoch).
    pub fn from_global(
        epoch: u64,
        ids: Vec<u64>,
        weights: Vec<f32>,
        opts: &PlanOptions,
        dataset_len: usize,
        start: usize,
    ) -> Plan {
        debug_assert!(opts.world_size >= 1 && opts.rank < opts.world_size);
        let start = start.min(ids.len());
        let rest = ids.len() - start;
        let step = opts.world_size * opts.batch_size;
        let span = if opts.drop_last {
            rest / step * step
        } else if opts.world_size == 1 {
            rest
        } else {
            rest.div_ceil(step) * step
        };
        Plan {
            epoch,
            ids,
            weights,
            batch_size: opts.batch_size,
            dataset_len,
            rank: opts.rank,
            world_size: opts.world_size,
            start,
            span,
        }
    }

    /// Kept samples of the epoch over all ranks, without padding: those before `start` (already
    /// delivered) and those the ranks deliver from there.
    pub fn samples(&self) -> usize {
        self.start + self.span.min(self.ids.len() - self.start)
    }

    /// Padding entries over all ranks (W > 1 without `drop_last`).
    pub fn padding(&self) -> usize {
        (self.start + self.span).saturating_sub(self.ids.len())
    }

    /// Samples this rank delivers from `start` on, padding included.
    pub fn local_samples(&self) -> usize {
        if self.world_size == 1 {
            self.span
        } else {
            // span is a multiple of W here (padded or truncated to W·B).
            self.span / self.world_size
        }
    }

    /// Batches this rank delivers (from `start` on); the same on every rank.
    pub fn batches(&self) -> usize {
        self.local_samples().div_ceil(self.batch_size)
    }

    /// Samples in this rank's batch `k`.
    pub fn batch_len(&self, k: usize) -> usize {
        let first = k * self.batch_size;
        self.local_samples()
            .saturating_sub(first)
            .min(self.batch_size)
    }

    /// Sample `j` of this rank's batch `k`: (id, weight, is padding); padding has weight 0.
    pub fn entry(&self, k: usize, j: usize) -> (u64, f32, bool) {
        let local = k * self.batch_size + j;
        let pos = self.start + local * self.world_size + self.rank;
        match self.ids.get(pos) {
            Some(&id) => (id, self.weights[pos], false),
            None => (self.ids[(pos - self.ids.len()) % self.ids.len()], 0.0, true),
        }
    }

    /// Global positions consumed once this rank has delivered `delivered` batches (and every
    /// other rank as many): the rank-independent resume point.
    pub fn position_after(&self, delivered: usize) -> usize {
        self.start + delivered * self.batch_size * self.world_size
    }

    /// 1 − samples / N: the fraction of the dataset this epoch skips.
    pub fn prune_fraction(&self) -> f64 {
        if self.dataset_len == 0 {
            0.0
        } else {
            1.0 - self.samples() as f64 / self.dataset_len as f64
        }
    }

    /// A 64-bit FNV-1a digest of the epoch and the global order with its weights: equal on
    /// every rank when the ranks agree (whatever their rank and world size).
    pub fn digest(&self) -> u64 {
        let mut h = Fnv::default();
        h.write(&self.epoch.to_le_bytes());
        for (&id, &w) in self.ids.iter().zip(&self.weights) {
            h.write(&id.to_le_bytes());
            h.write(&w.to_bits().to_le_bytes());
        }
        h.0
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
        sharded(shuffle, drop_last, 4, 0, 1)
    }

    fn sharded(shuffle: bool, drop_last: bool, b: usize, rank: usize, w: usize) -> PlanOptions {
        PlanOptions {
            seed: 3,
            shuffle,
            batch_size: b,
            drop_last,
            rank,
            world_size: w,
        }
    }

    /// (id, weight) of every sample this rank delivers, batch by batch.
    fn delivered(p: &Plan) -> Vec<Vec<(u64, f32)>> {
        (0..p.batches())
            .map(|k| {
                (0..p.batch_len(k))
                    .map(|j| {
                        let (id, w, _) = p.entry(k, j);
                        (id, w)
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn shuffle_keeps_pairs_and_depends_on_epoch() {
        let a = Plan::new(0, sel(10), &opts(true, false), 20);
        let b = Plan::new(0, sel(10), &opts(true, false), 20);
        let c = Plan::new(1, sel(10), &opts(true, false), 20);
        assert_eq!(a, b);
        assert_eq!(a.digest(), b.digest());
        assert_ne!(a.ids, c.ids);
        assert_ne!(a.digest(), c.digest());
        for (id, w) in a.ids.iter().zip(&a.weights) {
            assert_eq!(*w, *id as f32 * 0.5);
        }
        assert_eq!((a.batches(), a.batch_len(2), a.padding()), (3, 2, 0));
        assert_eq!(a.entry(2, 1), (a.ids[9], a.weights[9], false));
        assert!((a.prune_fraction() - 0.5).abs() < 1e-12);
    }

    /// The shuffle is the plain Fisher–Yates loop with `below` draws: plans must never change
    /// under an optimisation (checkpoints and score files depend on them).
    #[test]
    fn shuffle_is_plain_fisher_yates() {
        for n in [0u64, 1, 2, 17, 1000, 70_000] {
            let p = Plan::new(5, sel(n), &opts(true, false), n as usize);
            let mut ids: Vec<u64> = (0..n).collect();
            let mut rng = Rng::new(3, Stream::Shuffle, 5, 0);
            for i in (1..ids.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                ids.swap(i, j);
            }
            assert_eq!(p.ids, ids, "n = {n}");
            assert!(p
                .ids
                .iter()
                .zip(&p.weights)
                .all(|(&i, &w)| w == i as f32 * 0.5));
        }
    }

    #[test]
    fn every_shuffle_path_equals_shuffle_pair() {
        // Uniform weights (ids alone move), varied weights packed beside ids below 2^32, and
        // ids above 2^32 (both arrays swapped): each the same as `Rng::shuffle_pair`.
        let big = u32::MAX as u64 + 5;
        let cases: [(Vec<u64>, Vec<f32>); 4] = [
            ((0..5000).collect(), vec![1.0; 5000]),
            (
                (0..5000).collect(),
                (0..5000).map(|i| i as f32 * 0.25).collect(),
            ),
            (
                (0..5000).collect(),
                (0..5000)
                    .map(|i| if i == 7 { f32::NAN } else { -0.0 })
                    .collect(),
            ),
            (
                (big..big + 5000).collect(),
                (0..5000).map(|i| i as f32).collect(),
            ),
        ];
        for (ids, weights) in cases {
            let (mut a, mut b) = (ids.clone(), weights.clone());
            Rng::new(9, Stream::Shuffle, 2, 0).shuffle_pair(&mut a, &mut b);
            let (mut c, mut d) = (ids, weights);
            shuffle_ids_weights(&mut Rng::new(9, Stream::Shuffle, 2, 0), &mut c, &mut d);
            assert_eq!(a, c);
            let bits = |v: &[f32]| v.iter().map(|w| w.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&b), bits(&d));
        }
    }

    #[test]
    fn no_shuffle_sorts_and_drop_last_truncates() {
        let mut s = sel(10);
        s.ids.reverse();
        s.weights.reverse();
        let p = Plan::new(0, s, &opts(false, true), 10);
        let got: Vec<u64> = delivered(&p).concat().iter().map(|e| e.0).collect();
        assert_eq!(got, (0..8).collect::<Vec<_>>());
        assert_eq!(p.entry(0, 3).1, 1.5);
        assert_eq!((p.batches(), p.samples()), (2, 8));
    }

    #[test]
    fn two_ranks_pad_to_whole_steps_with_weight_zero() {
        // 10 ids, W = 2, B = 4: one step is 8 positions, so 16 with 6 padding.
        let r0 = Plan::new(0, sel(10), &sharded(false, false, 4, 0, 2), 10);
        let r1 = Plan::new(0, sel(10), &sharded(false, false, 4, 1, 2), 10);
        assert_eq!((r0.batches(), r1.batches()), (2, 2));
        assert_eq!((r0.samples(), r0.padding()), (10, 6));
        let d0 = delivered(&r0);
        let d1 = delivered(&r1);
        assert_eq!(d0[0], [(0, 0.0), (2, 1.0), (4, 2.0), (6, 3.0)]);
        assert_eq!(d1[0], [(1, 0.5), (3, 1.5), (5, 2.5), (7, 3.5)]);
        // Positions 8, 10, 12, 14 and 9, 11, 13, 15; 10.. wrap to ids 0.. with weight 0.
        assert_eq!(d0[1], [(8, 4.0), (0, 0.0), (2, 0.0), (4, 0.0)]);
        assert_eq!(d1[1], [(9, 4.5), (1, 0.0), (3, 0.0), (5, 0.0)]);
        assert!(!r0.entry(1, 0).2 && r0.entry(1, 1).2 && r1.entry(1, 1).2);
        // With drop_last the step that would need padding is dropped instead.
        let t0 = Plan::new(0, sel(10), &sharded(false, true, 4, 0, 2), 10);
        assert_eq!((t0.batches(), t0.samples(), t0.padding()), (1, 8, 0));
    }

    /// Every layout: equal batch counts on all ranks, full batches when W > 1, the non-padding
    /// entries of all ranks disjoint and together exactly positions [start, samples()), each
    /// step one contiguous block of the global order.
    #[test]
    fn batches_for_matches_the_plan() {
        for n in [0u64, 1, 5, 17, 64, 100] {
            for (w, b) in [(1, 1), (1, 8), (2, 8), (3, 5), (4, 32)] {
                for drop_last in [false, true] {
                    for rank in 0..w {
                        let o = sharded(true, drop_last, b, rank, w);
                        let p = Plan::new(1, sel(n), &o, 100);
                        assert_eq!(o.batches_for(n as usize), p.batches(), "n {n} w {w} b {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_layout_shares_the_global_order_exactly() {
        for n in [0u64, 1, 5, 7, 8, 9, 16, 33, 100] {
            for w in 1..=5 {
                for b in 1..=6 {
                    for drop_last in [false, true] {
                        for start in [0, n as usize / 3] {
                            check_layout(n, w, b, drop_last, start);
                        }
                    }
                }
            }
        }
    }

    fn check_layout(n: u64, w: usize, b: usize, drop_last: bool, start: usize) {
        let what = format!("n={n} w={w} b={b} drop_last={drop_last} start={start}");
        let global = Plan::new(3, sel(n), &sharded(true, drop_last, b, 0, 1), n as usize);
        let plans: Vec<Plan> = (0..w)
            .map(|r| {
                let o = sharded(true, drop_last, b, r, w);
                Plan::from_global(3, global.ids.clone(), global.weights.clone(), &o, 99, start)
            })
            .collect();
        let batches = plans[0].batches();
        let mut seen = vec![false; n as usize];
        for (r, p) in plans.iter().enumerate() {
            assert_eq!(p.batches(), batches, "{what}");
            assert_eq!(p.digest(), plans[0].digest(), "{what}");
            for k in 0..batches {
                if w > 1 {
                    assert_eq!(p.batch_len(k), b, "{what}");
                }
                for j in 0..p.batch_len(k) {
                    let pos = start + (k * b + j) * w + r;
                    let (id, weight, padding) = p.entry(k, j);
                    if pos < n as usize {
                        assert!(!padding);
                        assert_eq!((id, weight), (global.ids[pos], global.weights[pos]));
                        assert!(!seen[pos], "{what}: position {pos} twice");
                        seen[pos] = true;
                    } else {
                        assert!(padding && weight == 0.0, "{what}");
                    }
                }
            }
        }
        let covered = seen.iter().filter(|&&s| s).count();
        assert_eq!(start + covered, plans[0].samples(), "{what}");
        assert!(seen[start..plans[0].samples()].iter().all(|&s| s), "{what}");
        if !drop_last {
            assert_eq!(plans[0].samples(), n as usize, "{what}");
        }
        let step = w * b;
        let expected_batches = match (drop_last, w) {
            (true, _) => (n as usize - start) / step,
            (false, 1) => (n as usize - start).div_ceil(b),
            (false, _) => (n as usize - start).div_ceil(step),
        };
        assert_eq!(batches, expected_batches, "{what}");
        assert_eq!(plans[0].position_after(batches), start + batches * step);
    }
}

//! The window itself, a pure function of the scores: which seen samples a static policy keeps.
//! Shared by the policies and by tools that build a coreset from a score file.
//!
//! The window: seen samples sorted ascending by score (ties by id); kept are the K_seen
//! positions [offset, offset + K_seen) with offset = |seen| − K_seen − round(drop_hardest·N),
//! so by default the hardest K. Never-seen samples are always kept (the shared guard), which is
//! why the budget is `seen_budget` and the offset counts from |seen| rather than N: with every
//! sample seen the two readings agree.
//!
//! With a random share ε (the guarded default) the window holds only ⌈(1 − ε)·K_seen⌉ ranks,
//! and the rest of the budget is drawn each epoch from the seen samples outside it
//! (`split_window`; the draw itself is the policy's). With the noise guard and a random share
//! the never-seen samples join that pool instead of being kept for good (`Unseen::Pooled`): a subset fixed
//! while many samples are unseen (a tight budget) would otherwise be those samples for the
//! rest of the run, chosen by nothing.

use super::bracket::{key, keys_at_ranks};
use super::wide::{self, in_fixed};
use crate::policy::epsilon_greedy::greedy_count;
use crate::policy::share_draw::Split;
use crate::policy::{budget, extend_where, seen_budget, split_where};

/// The static window over per-sample scores: `scores[id]`, NaN for a sample without a score
/// (never seen), which is always kept. Returns the kept ids, ascending.
///
/// The seen samples are ranked ascending by score, ties by id (so the result depends on the
/// scores alone), and the window [offset, offset + K_seen) of that ranking is kept, with
/// K_seen = `seen_budget(N, prune, unseen)` and
/// offset = max(0, |seen| − K_seen − round(drop_hardest·N)).
pub fn static_window(scores: &[f32], prune: f64, drop_hardest: f64) -> Vec<u64> {
    split_window(scores, prune, drop_hardest, 0.0, Unseen::Kept).fixed
}

/// Where a split puts the never-seen samples (NaN scores).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unseen {
    /// In the fixed part, using up the budget first (the papers' rule): K_seen = K − |U|.
    Kept,
    /// In the random share's pool (the noise guard): the window holds G = ⌈(1 − ε)·K⌉ of the
    /// seen ranks (at most every seen sample) and K − G are drawn from everything outside it.
    Pooled,
}

/// The memory a split's lists are written into. A static policy prepares it when it is built
/// (`Spare::touched`), so that the epoch fixing its subset, an epoch boundary the trainer waits
/// at, writes into memory already faulted in instead of taking a page fault per 4 KiB (most of
/// the split's time at N = 1.28M otherwise).
#[derive(Debug, Default)]
pub(crate) struct Spare {
    fixed: Vec<u64>,
    pool: Vec<u64>,
}

impl Spare {
    /// Room for a split of `n` ids, written once (huge pages where large); `pool` when the
    /// split will have a random share.
    pub(crate) fn touched(n: usize, pool: bool) -> Spare {
        // `wide::split_pass` stores whole registers: 8 ids of room past the last.
        let list = |on: bool| {
            let mut v = crate::util::huge::filled(if on { n + 8 } else { 0 }, 0u64);
            v.clear();
            v
        };
        Spare {
            fixed: list(true),
            pool: list(pool),
        }
    }
}

/// `static_window` with a random share ε (`explore`): the window holds the G = ⌈(1 − ε)·K_seen⌉
/// ranks [offset, offset + G), offset = max(0, |seen| − G − round(drop_hardest·N)), and the
/// other K_seen − G of the budget are left to a draw from the seen ids outside it. With ε = 0
/// this is `static_window`, and the pool is empty. With `Unseen::Pooled` the never-seen ids are
/// pooled instead of fixed, and K_seen is K itself (see `Unseen`).
pub(crate) fn split_window(
    scores: &[f32],
    prune: f64,
    drop_hardest: f64,
    explore: f64,
    unseen: Unseen,
) -> Split {
    let mut spare = Spare::default();
    split_window_into(scores, prune, drop_hardest, explore, unseen, &mut spare)
}

/// `split_window`, written into `spare`'s memory (the lists move into the split).
pub(crate) fn split_window_into(
    scores: &[f32],
    prune: f64,
    drop_hardest: f64,
    explore: f64,
    unseen: Unseen,
    spare: &mut Spare,
) -> Split {
    let n = scores.len();
    let bounds = |seen| window_bounds(n, seen, prune, drop_hardest, explore, unseen);
    if n <= u32::MAX as usize {
        return packed_window(scores, bounds, unseen, spare);
    }
    let mut seen: Vec<u64> = (0..n as u64)
        .filter(|&id| !scores[id as usize].is_nan())
        .collect();
    let (k, offset, fill) = bounds(seen.len());
    if k > 0 {
        let cmp = |a: &u64, b: &u64| {
            scores[*a as usize]
                .total_cmp(&scores[*b as usize])
                .then(a.cmp(b))
        };
        if offset > 0 {
            seen.select_nth_unstable_by(offset, cmp);
        }
        let rest = &mut seen[offset..];
        if k < rest.len() {
            rest.select_nth_unstable_by(k, cmp);
        }
    }
    let window = seen[offset..offset + k].iter().copied();
    collect_listed(scores, window, fill, unseen, spare)
}

/// (G, offset, fill) of the window for `seen` seen samples out of `n`: G ranks from `offset`
/// are kept, `fill` ids are left to the random share. `Unseen::Kept`: K_seen = min(K − |U|,
/// |seen|), G = ⌈(1 − ε)·K_seen⌉, fill = K_seen − G. `Unseen::Pooled`: G = min(⌈(1 − ε)·K⌉,
/// |seen|), fill = K − G.
fn window_bounds(
    n: usize,
    seen: usize,
    prune: f64,
    drop_hardest: f64,
    explore: f64,
    unseen: Unseen,
) -> (usize, usize, usize) {
    let (g, fill) = match unseen {
        Unseen::Kept => {
            let k_seen = seen_budget(n, prune, n - seen).min(seen);
            let g = greedy_count(k_seen, explore);
            (g, k_seen - g)
        }
        Unseen::Pooled => {
            let k = budget(n, prune);
            let g = greedy_count(k, explore).min(seen);
            (g, k - g)
        }
    };
    let drop = (drop_hardest * n as f64).round().max(0.0) as usize;
    (g, (seen - g).saturating_sub(drop), fill)
}

/// `split_window` for ids below 2^32: the window's bounds are the keys at its first rank and
/// just past its last, found by brackets (`bracket.rs`); the window is then every seen id whose
/// key lies between them. When a bracket misjudges, `ranked_window` ranks every key instead.
fn packed_window(
    scores: &[f32],
    bounds: impl Fn(usize) -> (usize, usize, usize),
    unseen: Unseen,
    spare: &mut Spare,
) -> Split {
    let seen = scores.iter().filter(|s| !s.is_nan()).count();
    let (k, offset, fill) = bounds(seen);
    // The window is the keys in [lo, hi): lo at rank `offset`, hi at rank `offset + k` (past
    // the last seen key when the window reaches the top).
    let found = match (k, offset + k < seen) {
        (0, _) => Some((u64::MAX, u64::MAX)),
        (_, true) => keys_at_ranks(scores, seen, [offset, offset + k]).map(|[lo, hi]| (lo, hi)),
        (_, false) => keys_at_ranks(scores, seen, [offset]).map(|[lo]| (lo, u64::MAX)),
    };
    let Some((lo, hi)) = found else {
        return ranked_window(scores, bounds, unseen, spare);
    };
    // One comparison per id (the key's offset from `lo` against the window's span), so nothing
    // branches on it: near the bounds it is a coin flip. Where the CPU has AVX-512 the split is
    // `wide::split_pass`, 16 ids per step, and the few ids past its last step are done here.
    let span = hi.wrapping_sub(lo);
    if wide::available() {
        let keep_unseen = unseen == Unseen::Kept;
        let (mut fixed, mut pool) = (
            std::mem::take(&mut spare.fixed),
            std::mem::take(&mut spare.pool),
        );
        fixed.clear();
        pool.clear();
        let pooled = (fill > 0).then_some(&mut pool);
        let done = wide::split_pass(scores, lo, span, keep_unseen, &mut fixed, pooled);
        for id in done..scores.len() {
            if in_fixed(scores, id, lo, span, keep_unseen) {
                fixed.push(id as u64);
            } else if fill > 0 {
                pool.push(id as u64);
            }
        }
        return Split { fixed, pool, fill };
    }
    collect_kept(scores, fill, unseen, spare, |id| {
        in_fixed(scores, id, lo, span, false)
    })
}

/// `packed_window` by ranking every seen key: two selections instead of a sort, O(N), and the
/// order inside the window is irrelevant. The ranking (score ascending, ties by id) is packed
/// into one u64 per seen id, built straight from the scores in one pass (no list of seen ids
/// first), so the selections compare integers in one sequential array rather than looking
/// scores up by id at random (see `top_k_front`).
fn ranked_window(
    scores: &[f32],
    bounds: impl Fn(usize) -> (usize, usize, usize),
    unseen: Unseen,
    spare: &mut Spare,
) -> Split {
    let n = scores.len();
    let mut packed: Vec<u64> = crate::util::huge::with_capacity(n);
    packed.extend(
        scores
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.is_nan())
            .map(|(id, &s)| key(s, id)),
    );
    let (k, offset, fill) = bounds(packed.len());
    if k > 0 {
        if offset > 0 {
            packed.select_nth_unstable(offset);
        }
        let rest = &mut packed[offset..];
        if k < rest.len() {
            rest.select_nth_unstable(k);
        }
    }
    let window = packed[offset..offset + k].iter().map(|p| p & 0xffff_ffff);
    collect_listed(scores, window, fill, unseen, spare)
}

/// `collect_kept` for a window given as its ids: marked in a mask first.
fn collect_listed(
    scores: &[f32],
    window: impl Iterator<Item = u64>,
    fill: usize,
    unseen: Unseen,
    spare: &mut Spare,
) -> Split {
    let mut in_window = vec![false; scores.len()];
    for id in window {
        in_window[id as usize] = true;
    }
    collect_kept(scores, fill, unseen, spare, |id| in_window[id])
}

/// The window (and with `Unseen::Kept` the never-seen), ascending, and (when `fill` > 0) the
/// other ids: collected by `in_window` in passes over the ids (O(N); sorting the window cost
/// more than the selections on large N), into `spare`'s lists.
fn collect_kept(
    scores: &[f32],
    fill: usize,
    unseen: Unseen,
    spare: &mut Spare,
    in_window: impl Fn(usize) -> bool,
) -> Split {
    let n = scores.len();
    let keep_unseen = unseen == Unseen::Kept;
    // `extend_where` reserves room for every id (none to add where the spare was prepared).
    let mut fixed = std::mem::take(&mut spare.fixed);
    fixed.clear();
    let fixed_id = |id| in_window(id) | (keep_unseen & scores[id].is_nan());
    let mut pool = std::mem::take(&mut spare.pool);
    pool.clear();
    if fill > 0 {
        split_where(&mut fixed, &mut pool, n, fixed_id);
    } else {
        extend_where(&mut fixed, n, fixed_id);
    }
    Split { fixed, pool, fill }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bracketed_window_is_the_ranked_one() {
        use crate::rng::{Rng, Stream};
        let n = 3 * super::super::bracket::MIN_IDS / 2;
        let mut rng = Rng::new(11, Stream::Select, 0, 0);
        // Scores with many ties, never-seen samples, ±∞ and ±0; then a periodic pattern the
        // strided sample sees as one value (its brackets misjudge: the fallback's case).
        let mut cases: Vec<Vec<f32>> = Vec::new();
        for levels in [3u64, 1000, 1 << 20] {
            cases.push(
                (0..n)
                    .map(|_| match rng.below(50) {
                        0 => f32::NAN,
                        1 => f32::INFINITY,
                        2 => f32::NEG_INFINITY,
                        3 => -0.0,
                        _ => rng.below(levels) as f32 - 7.0,
                    })
                    .collect(),
            );
        }
        let stride = n / (1 << 14);
        let periodic: Vec<f32> = (0..n).map(|i| (i % stride) as f32).collect();
        assert!(super::super::bracket::keys_at_ranks(&periodic, n, [n / 2]).is_none());
        cases.push(periodic);
        let mut judged = 0;
        for scores in &cases {
            for (prune, drop, explore) in [
                (0.3, 0.0, 0.0),
                (0.7, 0.0, 0.5),
                (0.5, 0.1, 0.5),
                (0.9, 0.05, 0.0),
                (0.0, 0.0, 0.0),
                (0.5, 0.6, 0.0),
            ] {
                for unseen in [Unseen::Kept, Unseen::Pooled] {
                    let bounds = |seen| window_bounds(n, seen, prune, drop, explore, unseen);
                    let fast = packed_window(scores, bounds, unseen, &mut Spare::touched(n, true));
                    let slow = ranked_window(scores, bounds, unseen, &mut Spare::default());
                    assert_eq!(
                        fast, slow,
                        "prune {prune} drop {drop} explore {explore} {unseen:?}"
                    );
                    let seen = scores.iter().filter(|s| !s.is_nan()).count();
                    let (k, offset, _) = bounds(seen);
                    if k > 0
                        && super::super::bracket::keys_at_ranks(scores, seen, [offset]).is_some()
                    {
                        judged += 1;
                    }
                }
            }
        }
        // The brackets did the work in most cases (not only the fallback).
        assert!(judged >= 24, "{judged}");
    }

    #[test]
    fn window_keeps_the_hardest_k_by_default() {
        // Scores are a permutation, so "the hardest K" is a known set.
        let scores: Vec<f32> = (0..100).map(|i| ((i * 37) % 100) as f32).collect();
        let kept = static_window(&scores, 0.3, 0.0);
        assert_eq!(kept.len(), 70);
        let mut want: Vec<u64> = (0..100u64)
            .filter(|&i| scores[i as usize] >= 30.0)
            .collect();
        want.sort_unstable();
        assert_eq!(kept, want);
    }

    #[test]
    fn window_exact_counts() {
        for (n, p, k) in [
            (10usize, 0.25, 8usize),
            (7, 0.5, 4),
            (1000, 0.9, 100),
            (3, 0.0, 3),
        ] {
            let scores: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let kept = static_window(&scores, p, 0.0);
            assert_eq!(kept.len(), k, "n={n} p={p}");
            assert_eq!(kept, ((n - k) as u64..n as u64).collect::<Vec<_>>());
        }
    }

    #[test]
    fn drop_hardest_shifts_the_window_by_round_drop_n() {
        let scores: Vec<f32> = (0..100).map(|i| i as f32).collect();
        // offset = 100 − 50 − round(0.1·100) = 40.
        assert_eq!(
            static_window(&scores, 0.5, 0.1),
            (40..90).collect::<Vec<u64>>()
        );
        // round(0.05·30) = round(1.5) = 2: the window moves by 2, not 1.
        let scores: Vec<f32> = (0..30).map(|i| i as f32).collect();
        assert_eq!(
            static_window(&scores, 0.5, 0.05),
            (13..28).collect::<Vec<u64>>()
        );
        // The offset clamps at 0: the easiest K.
        let scores: Vec<f32> = (0..10).map(|i| i as f32).collect();
        assert_eq!(
            static_window(&scores, 0.5, 0.8),
            (0..5).collect::<Vec<u64>>()
        );
    }

    #[test]
    fn never_seen_are_kept_and_use_up_the_budget() {
        // 10 samples, p = 0.5 → K = 5; ids 1 and 4 unseen → 3 seen slots, the hardest 3.
        let mut scores: Vec<f32> = (0..10).map(|i| (10 - i) as f32).collect();
        scores[1] = f32::NAN;
        scores[4] = f32::NAN;
        assert_eq!(static_window(&scores, 0.5, 0.0), vec![0, 1, 2, 3, 4]);
        // More unseen than K: all of them, no seen one.
        let mut scores = vec![f32::NAN; 10];
        scores[0] = 1.0;
        assert_eq!(
            static_window(&scores, 0.5, 0.0),
            (1..10).collect::<Vec<u64>>()
        );
    }

    #[test]
    fn ties_break_by_id() {
        let scores = [1.0f32, 1.0, 1.0, 1.0];
        assert_eq!(static_window(&scores, 0.5, 0.0), vec![2, 3]);
        // offset = 4 − 2 − round(0.25·4) = 1.
        assert_eq!(static_window(&scores, 0.5, 0.25), vec![1, 2]);
        let scores = [2.0f32, 1.0, 2.0, 1.0, 2.0];
        // K = round(0.6·5) = 3: the three 2.0s; with one dropped: 1.0 at id 3, 2.0 at ids 0, 2.
        assert_eq!(static_window(&scores, 0.4, 0.0), vec![0, 2, 4]);
        assert_eq!(static_window(&scores, 0.4, 0.2), vec![0, 2, 3]);
    }

    #[test]
    fn split_keeps_the_hardest_g_and_pools_the_other_seen() {
        // 20 ids, score = id, ids 0 and 5 never seen; p = 0.5: K = 10, K_seen = 8;
        // ε = 0.5: G = 4 (ids 16..20), 4 drawn from the 14 other seen ids.
        let mut scores: Vec<f32> = (0..20).map(|i| i as f32).collect();
        scores[0] = f32::NAN;
        scores[5] = f32::NAN;
        let split = split_window(&scores, 0.5, 0.0, 0.5, Unseen::Kept);
        assert_eq!(split.fixed, vec![0, 5, 16, 17, 18, 19]);
        let pool: Vec<u64> = (1..16).filter(|&i| i != 5).collect();
        assert_eq!(split.pool, pool);
        assert_eq!(split.fill, 4);
        // drop_hardest shifts the window; the skipped hardest are in the pool.
        let split = split_window(&scores, 0.5, 0.1, 0.5, Unseen::Kept);
        assert_eq!(split.fixed, vec![0, 5, 14, 15, 16, 17]);
        assert!(split.pool.contains(&19) && split.pool.len() == 14);
        // ε = 0: the window of `static_window`, no pool.
        let split = split_window(&scores, 0.5, 0.0, 0.0, Unseen::Kept);
        assert_eq!(split.fixed, static_window(&scores, 0.5, 0.0));
        assert!(split.pool.is_empty() && split.fill == 0);
        // ε = 1: only the never-seen are fixed; K_seen drawn from every seen id.
        let split = split_window(&scores, 0.5, 0.0, 1.0, Unseen::Kept);
        assert_eq!(
            (split.fixed, split.pool.len(), split.fill),
            (vec![0, 5], 18, 8)
        );
    }

    #[test]
    fn pooled_unseen_are_drawn_not_fixed() {
        // 20 ids, score = id, ids 0 and 5 never seen; p = 0.5: K = 10; ε = 0.5: G = 5 (ids
        // 15..20), and 5 drawn from the 15 others, the two never-seen among them.
        let mut scores: Vec<f32> = (0..20).map(|i| i as f32).collect();
        scores[0] = f32::NAN;
        scores[5] = f32::NAN;
        let split = split_window(&scores, 0.5, 0.0, 0.5, Unseen::Pooled);
        assert_eq!(split.fixed, (15..20).collect::<Vec<u64>>());
        assert_eq!(split.pool, (0..15).collect::<Vec<u64>>());
        assert_eq!(split.fill, 5);
        // Fewer seen than G: every seen sample is fixed, the rest of K drawn from the unseen.
        let mut scores = vec![f32::NAN; 20];
        for id in [3, 7, 11] {
            scores[id] = id as f32;
        }
        let split = split_window(&scores, 0.5, 0.0, 0.5, Unseen::Pooled);
        assert_eq!(split.fixed, vec![3, 7, 11]);
        assert_eq!((split.pool.len(), split.fill), (17, 7));
        // With every sample seen the two rules agree.
        let scores: Vec<f32> = (0..20).map(|i| ((i * 7) % 20) as f32).collect();
        for eps in [0.0, 0.3, 0.5, 1.0] {
            assert_eq!(
                split_window(&scores, 0.4, 0.1, eps, Unseen::Pooled),
                split_window(&scores, 0.4, 0.1, eps, Unseen::Kept),
                "ε {eps}"
            );
        }
        // Never-seen ids are pooled, and fixed part plus draw is K.
        let mut scores: Vec<f32> = (0..50).map(|i| ((i * 13) % 50) as f32).collect();
        for id in [2, 9, 40] {
            scores[id] = f32::NAN;
        }
        let bounds = |seen| window_bounds(50, seen, 0.6, 0.0, 0.5, Unseen::Pooled);
        let packed = packed_window(&scores, bounds, Unseen::Pooled, &mut Spare::default());
        assert!(packed.pool.contains(&2) && !packed.fixed.contains(&9));
        assert_eq!(packed.fixed.len() + packed.fill, budget(50, 0.6));
    }
}

//! The window itself, a pure function of the scores: which seen samples a static policy keeps.
//! Shared by the policies and by tools that build a coreset from a score file.
//!
//! The window: seen samples sorted ascending by score (ties by id); kept are the K_seen
//! positions [offset, offset + K_seen) with offset = |seen| − K_seen − round(drop_hardest·N),
//! so by default the hardest K. Never-seen samples are always kept (the shared guard), which is
//! why the budget is `seen_budget` and the offset counts from |seen| rather than N: with every
//! sample seen the two readings agree.

use crate::policy::{ascending_bits, extend_where, seen_budget};

/// The static window over per-sample scores: `scores[id]`, NaN for a sample without a score
/// (never seen), which is always kept. Returns the kept ids, ascending.
///
/// The seen samples are ranked ascending by score, ties by id (so the result depends on the
/// scores alone), and the window [offset, offset + K_seen) of that ranking is kept, with
/// K_seen = `seen_budget(N, prune, unseen)` and
/// offset = max(0, |seen| − K_seen − round(drop_hardest·N)).
pub fn static_window(scores: &[f32], prune: f64, drop_hardest: f64) -> Vec<u64> {
    let n = scores.len();
    if n <= u32::MAX as usize {
        return packed_window(scores, prune, drop_hardest);
    }
    let mut seen: Vec<u64> = (0..n as u64)
        .filter(|&id| !scores[id as usize].is_nan())
        .collect();
    let (k, offset) = window_bounds(n, seen.len(), prune, drop_hardest);
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
    collect_kept(scores, seen[offset..offset + k].iter().copied())
}

/// (K_seen, offset) of the window for `seen` seen samples out of `n`.
fn window_bounds(n: usize, seen: usize, prune: f64, drop_hardest: f64) -> (usize, usize) {
    let k = seen_budget(n, prune, n - seen).min(seen);
    let drop = (drop_hardest * n as f64).round().max(0.0) as usize;
    (k, (seen - k).saturating_sub(drop))
}

/// `static_window` for ids below 2^32. Two selections instead of a sort: O(N), and the order
/// inside the window is irrelevant. The ranking (score ascending, ties by id) is packed into one
/// u64 per seen id, built straight from the scores in one pass (no list of seen ids first), so
/// the selections compare integers in one sequential array rather than looking scores up by id
/// at random (see `top_k_front`).
fn packed_window(scores: &[f32], prune: f64, drop_hardest: f64) -> Vec<u64> {
    let n = scores.len();
    let mut packed: Vec<u64> = crate::util::huge::with_capacity(n);
    packed.extend(
        scores
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.is_nan())
            .map(|(id, &s)| ((ascending_bits(s) as u64) << 32) | id as u64),
    );
    let (k, offset) = window_bounds(n, packed.len(), prune, drop_hardest);
    if k > 0 {
        if offset > 0 {
            packed.select_nth_unstable(offset);
        }
        let rest = &mut packed[offset..];
        if k < rest.len() {
            rest.select_nth_unstable(k);
        }
    }
    collect_kept(
        scores,
        packed[offset..offset + k].iter().map(|p| p & 0xffff_ffff),
    )
}

/// The never-seen and the window, ascending: marked, then collected in one pass over the ids
/// (O(N); sorting the window cost more than the selections on large N).
fn collect_kept(scores: &[f32], window: impl Iterator<Item = u64>) -> Vec<u64> {
    let n = scores.len();
    let mut in_window = vec![false; n];
    for id in window {
        in_window[id as usize] = true;
    }
    // `extend_where` reserves room for every id.
    let mut kept = Vec::new();
    extend_where(&mut kept, n, |id| in_window[id] | scores[id].is_nan());
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

//! The window's bounds found without ranking every seen sample: the keys at two ranks of the
//! seen samples' ranking (score ascending, ties by id; packed as in `window.rs`), bracketed by
//! a strided sample of the keys and then selected among the few keys inside each bracket.
//!
//! Ranking every seen sample means writing N packed keys (8 bytes each, into memory that is
//! fresh at the one epoch that fixes the subset) and two `select_nth_unstable` passes over
//! them; at N = 1.28M that was most of the subset-fixing plan. Here the scores are read in a
//! few sequential passes and only a few % of the keys are ever stored. Keys are unique (they
//! hold the id), so a rank has exactly one key, whatever the bracket: the result is the one the
//! full ranking gives. When the sample misjudges a bracket (the rank does not fall inside it),
//! `None` tells the caller to rank every key instead.

use crate::policy::ascending_bits;

/// Keys sampled to place the brackets.
const SAMPLE: usize = 1 << 14;

/// Below this many ids the full ranking is cheap: no bracket.
pub(super) const MIN_IDS: usize = 4 * SAMPLE;

/// The packed key of a seen sample: score order in the high half, the id in the low half
/// (ids here are below 2³²).
#[inline(always)]
pub(super) fn key(score: f32, id: usize) -> u64 {
    ((ascending_bits(score) as u64) << 32) | id as u64
}

/// The keys at ranks `ranks` (0-based, each below `seen`) of the `seen` non-NaN scores'
/// ranking, or `None` when a bracket misjudged (or there are too few ids to bother).
pub(super) fn keys_at_ranks<const R: usize>(
    scores: &[f32],
    seen: usize,
    ranks: [usize; R],
) -> Option<[u64; R]> {
    let n = scores.len();
    if n < MIN_IDS || seen < MIN_IDS || n > u32::MAX as usize {
        return None;
    }
    // A strided sample of the seen keys (deterministic), sorted.
    let mut sample: Vec<u64> = (0..SAMPLE)
        .map(|j| j * n / SAMPLE)
        .filter(|&id| !scores[id].is_nan())
        .map(|id| key(scores[id], id))
        .collect();
    if sample.len() < SAMPLE / 4 {
        return None;
    }
    sample.sort_unstable();
    let s = sample.len();
    // Rank r of `seen` falls near rank r·s/seen of the sample; ±4 standard deviations of it.
    let margin = 4 * (s as f64 * 0.25).sqrt() as usize + 16;
    let brackets = ranks.map(|r| {
        let at = (r as f64 / seen as f64 * s as f64) as usize;
        let lo = at.checked_sub(margin).map_or(0, |i| sample[i]);
        let hi = sample.get(at + margin).copied().unwrap_or(u64::MAX);
        (lo, hi)
    });
    // One pass: per bracket, the keys below it and those inside it. Whether a key is below a
    // bracket is a coin flip near the middle ranks, so that is counted, not branched on; a key
    // inside one is rare (a few %), tested with one comparison, and appended. Where the CPU
    // has AVX-512 the pass is `wide::bracket_pass`, 16 ids per step.
    let mut below = [0usize; R];
    let mut bands: [Vec<u64>; R] = std::array::from_fn(|_| Vec::with_capacity(4 * n / s * margin));
    // The ids the wide pass did not do (all of them on CPUs without it).
    let done = super::wide::bracket_pass(scores, &brackets, &mut below, &mut bands);
    for (id, &sc) in scores.iter().enumerate().skip(done) {
        let k = key(sc, id);
        let seen = !sc.is_nan();
        for b in 0..R {
            let (lo, hi) = brackets[b];
            below[b] += usize::from(seen & (k < lo));
            if seen && k.wrapping_sub(lo) <= hi - lo {
                bands[b].push(k);
            }
        }
    }
    let mut out = [0u64; R];
    for b in 0..R {
        let need = ranks[b].checked_sub(below[b])?;
        let band = &mut bands[b];
        if need >= band.len() {
            return None;
        }
        out[b] = *band.select_nth_unstable(need).1;
    }
    Some(out)
}

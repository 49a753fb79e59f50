//! Choosing R, the removal set, over the influence vectors s_i (rows of an m × d matrix): both
//! problems are integer programs, solved heuristically. A greedy adds, from a pool of the
//! smallest-norm unused s_i, the one leaving the running sum smallest (`search.rs`); then local
//! search at fixed |R| — Kernighan–Lin swap passes from several first swaps, and two-for-two
//! exchanges that can bring in a pair of large, opposite vectors that cancel (`swap.rs`).
//! Guarantee mode searches the size: the greedy's longest prefix within ε, then sizes probed
//! from the top, then growth past ε repaired by swaps, then filling (single samples, then
//! pairs) while ‖Σ‖ stays within ε. The brute-force tests below bound how far from the optimum
//! it may land on small instances. At scale the local search, not the optimum, limits how
//! small ‖Σ‖ gets, so an ε below what it reaches yields a smaller R than a cardinality run that
//! reached ε.
//!
//! This file owns the driver (`choose_removal`) and the tuning constants of every phase.

mod search;
mod swap;

use self::search::Search;

/// What R must satisfy.
#[derive(Clone, Copy, Debug)]
pub(super) enum Target {
    /// |R| = k (capped at m), ‖Σ_R s_i‖ as small as found.
    Count(usize),
    /// ‖Σ_R s_i‖ ≤ ε, |R| as large as found.
    Within(f64),
}

#[derive(Clone, Debug)]
pub(super) struct Removal {
    /// Row indices into the vectors, ascending.
    pub(super) removed: Vec<usize>,
    /// ‖Σ_R s_i‖₂.
    pub(super) norm: f64,
}

/// The greedy's candidates: the POOL smallest-norm vectors not yet in R. The exact greedy would
/// scan all m vectors per step (m·|R|·d, ~5·10¹¹ for 60 000 × 512 at p = 0.3); 128 candidates
/// still leave room to steer the running sum back toward zero at 1/500 of that cost.
const POOL: usize = 128;
/// Candidates per side (leaving R, entering R) in one swap pass; a pass costs m·d for the dot
/// products with the running sum plus 3·SWAP_CANDIDATES²·d for the candidates' Gram blocks.
const SWAP_CANDIDATES: usize = 128;
/// First swaps tried per swap pass, each followed by its own Kernighan–Lin sequence: against
/// brute force on small random instances, more starts find the optimum more often, and the
/// gain had levelled off by 64.
const KL_STARTS: usize = 64;
/// A sequence stops after this many swaps without a new best: long worsening runs almost never
/// come back, and the cap bounds a pass at KL_STARTS · (KL_DEPTH + gains) · SWAP_CANDIDATES²
/// cheap evaluations.
const KL_DEPTH: usize = 16;
/// Candidates per side in a pair pass: the pass tries every two-for-two exchange among them,
/// (PAIR_CANDIDATES²/2) · (2·PAIR_CANDIDATES)²/2 ≈ 3·10⁵ cheap evaluations at 24.
const PAIR_CANDIDATES: usize = 24;
/// Passes per improvement phase. Small instances converge in a few; at scale every pass still
/// helps, and the bound caps the cost.
const MAX_SWAP_PASSES: usize = 16;
/// Sizes whose cardinality answer guarantee mode computes at most (each a local search).
const MAX_PROBES: usize = 12;
/// Passes of the short local searches of guarantee mode (probing a size, growing by one).
const PROBE_PASSES: usize = 2;
/// Scans of `fill` (m·d each) per round of guarantee mode, and at its end. Within the bound the
/// result is maximal (no single sample can be added); the bound only binds at scale, where
/// near ε each scan adds just a few samples.
const ROUND_SCANS: usize = 16;
const MAX_SCANS: usize = 256;
/// Guarantee mode tries to grow R past ε (then swaps back under it) at most this often.
const MAX_GROW_ROUNDS: usize = 8;

/// Chooses R among the rows of `s` (m × d): the pool greedy, then swap passes (and, in
/// guarantee mode, more growth whenever swaps made room under ε). Deterministic: every choice
/// breaks ties by the smaller index.
pub(super) fn choose_removal(s: &[f32], d: usize, target: Target) -> Removal {
    let mut search = Search::new(s, d);
    match target {
        Target::Count(k) => {
            let k = k.min(search.m);
            search.grow(k, &mut Vec::new());
            search.improve(MAX_SWAP_PASSES);
        }
        Target::Within(eps) => {
            let eps2 = eps * eps;
            let m = search.m;
            // f(k), the cardinality answer for size k, starts from the greedy's first k picks;
            // the greedy is deterministic, so one run to m gives every start, and the ‖S‖ along
            // the way bounds f from above: its longest prefix within ε is feasible for free.
            let mut path = Vec::with_capacity(m);
            search.grow(m, &mut path);
            let k_path = path
                .iter()
                .rposition(|&(_, s2)| s2 <= eps2)
                .map_or(0, |p| p + 1);
            let load = |search: &mut Search, k: usize| {
                search.clear();
                for &(j, _) in &path[..k] {
                    search.add(j);
                }
            };
            let probe = |search: &mut Search, k: usize, passes: usize| -> bool {
                load(search, k);
                search.improve(passes);
                search.sum2 <= eps2
            };
            // The largest k > k_path with f(k) ≤ ε. f is not monotone (f(1) is the smallest
            // norm, often over ε, while many larger sets cancel), so when there are few sizes
            // every one is tried, from the top. Otherwise, each with a short local search: a
            // grid of MAX_PROBES/2 sizes from m down to k_path finds the highest feasible grid
            // point, and bisection between it and the grid point above spends the rest.
            let mut best = None;
            if m <= MAX_PROBES {
                for k in (k_path + 1..=m).rev() {
                    if probe(&mut search, k, MAX_SWAP_PASSES) {
                        best = Some(search.snapshot());
                        break;
                    }
                }
            } else {
                let step = (m - k_path).div_ceil(MAX_PROBES / 2);
                let (mut lo, mut hi, mut probes) = (k_path, m + 1, 0);
                let mut k = m;
                while k > k_path {
                    probes += 1;
                    if probe(&mut search, k, PROBE_PASSES) {
                        lo = k;
                        best = Some(search.snapshot());
                        break;
                    }
                    hi = k;
                    k = k.saturating_sub(step);
                }
                while hi - lo > 1 && probes < MAX_PROBES {
                    let k = lo + (hi - lo) / 2;
                    probes += 1;
                    if probe(&mut search, k, PROBE_PASSES) {
                        lo = k;
                        best = Some(search.snapshot());
                    } else {
                        hi = k;
                    }
                }
            }
            match best {
                Some(state) => search.restore(state),
                None => load(&mut search, k_path),
            }
            // Then alternate: swaps shrink ‖S‖ and make room under ε, `fill` takes the room,
            // and a batch of greedy additions past ε is kept if swaps bring ‖S‖ back under it
            // (the batch doubles while that works and halves, undone, when it does not).
            let mut batch = 1;
            for _ in 0..MAX_GROW_ROUNDS {
                let before = search.size;
                search.improve(PROBE_PASSES);
                search.fill(eps2, ROUND_SCANS);
                if batch > 0 && search.size < m {
                    let saved = search.snapshot();
                    let target = (search.size + batch).min(m);
                    search.grow(target, &mut Vec::new());
                    search.improve(PROBE_PASSES);
                    if search.sum2 <= eps2 {
                        search.fill(eps2, ROUND_SCANS);
                        batch *= 2;
                    } else {
                        search.restore(saved);
                        batch /= 2;
                    }
                }
                if search.size == before && batch == 0 {
                    break;
                }
            }
            search.fill(eps2, MAX_SCANS);
        }
    }
    Removal {
        removed: (0..search.m).filter(|&j| search.member[j]).collect(),
        norm: search.sum2.max(0.0).sqrt(),
    }
}

/// The `count` ids with the smallest key, ascending by (key, id). One pass that keeps at most
/// 2·`count` entries, cutting back to the best `count` whenever the buffer fills and skipping
/// every id that cannot beat the last cut's worst: at scale (|ids| ~ 10⁶, `count` 128) the
/// ids are never collected and each key is computed once.
fn candidates(
    ids: impl IntoIterator<Item = usize>,
    key: impl Fn(usize) -> f64,
    count: usize,
) -> Vec<usize> {
    if count == 0 {
        return Vec::new();
    }
    let cmp = |a: &(f64, usize), b: &(f64, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    let cut = |kept: &mut Vec<(f64, usize)>| {
        kept.select_nth_unstable_by(count - 1, cmp);
        kept.truncate(count);
    };
    let mut kept: Vec<(f64, usize)> = Vec::with_capacity(2 * count);
    // The worst of the last cut: an id not below it cannot be among the `count` smallest.
    let mut bound: Option<(f64, usize)> = None;
    for id in ids {
        let entry = (key(id), id);
        if bound.is_some_and(|b| cmp(&entry, &b).is_ge()) {
            continue;
        }
        kept.push(entry);
        if kept.len() == 2 * count {
            cut(&mut kept);
            bound = Some(kept[count - 1]);
        }
    }
    if kept.len() > count {
        cut(&mut kept);
    }
    kept.sort_unstable_by(cmp);
    kept.into_iter().map(|(_, id)| id).collect()
}

crate::util::widest!(fn least_step(sum2: f64, c: &[f64], norm2: &[f64]) -> f64 = least_step_lanes);
crate::util::widest!(fn least_difference(gain: &[f64], row: &[f64]) -> f64 = least_difference_lanes);

/// min over the pool of ‖S + s_j‖² = ‖S‖² + 2 c_j + ‖s_j‖²: the greedy's step.
#[inline(always)]
fn least_step_lanes(sum2: f64, c: &[f64], norm2: &[f64]) -> f64 {
    least_by(c, norm2, |cj, n2| sum2 + 2.0 * cj + n2)
}

/// min over b of g_b − 2·x_b: a swap chain's row.
#[inline(always)]
fn least_difference_lanes(gain: &[f64], row: &[f64]) -> f64 {
    least_by(gain, row, |g, x| g - 2.0 * x)
}

/// The least of f(a_i, b_i) by `<` (+∞ when empty), eight lanes at a time: the vectorised
/// half of the searches' argmins, whose other half finds the first position holding it.
#[inline(always)]
fn least_by(a: &[f64], b: &[f64], f: impl Fn(f64, f64) -> f64) -> f64 {
    let mut lanes = [f64::INFINITY; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ar, br) = (a8.remainder(), b8.remainder());
    for (x, y) in a8.zip(b8) {
        for t in 0..8 {
            let v = f(x[t], y[t]);
            lanes[t] = if v < lanes[t] { v } else { lanes[t] };
        }
    }
    for (&x, &y) in ar.iter().zip(br) {
        let v = f(x, y);
        lanes[0] = if v < lanes[0] { v } else { lanes[0] };
    }
    lanes
        .into_iter()
        .fold(f64::INFINITY, |m, v| if v < m { v } else { m })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{random_vectors, sum_norm};
    use super::*;

    /// `candidates` is the first `count` of a plain sort by (key, id), whatever the count
    /// against the number of ids (0, fewer, exactly, many times over: the buffer cuts back
    /// again and again) and with many tied keys.
    #[test]
    fn candidates_are_the_smallest_by_key_then_id() {
        let mut rng = crate::Rng::new(3, crate::Stream::Select, 0, 0);
        for n in [0usize, 1, 5, 64, 257, 3000] {
            let keys: Vec<f64> = (0..n).map(|_| rng.below(40) as f64 - 20.0).collect();
            let ids: Vec<usize> = (0..n).filter(|j| j % 7 != 3).collect();
            let mut plain = ids.clone();
            plain.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]).then(a.cmp(&b)));
            for count in [0usize, 1, 2, 7, 128, 4000] {
                let got = candidates(ids.iter().copied(), |j| keys[j], count);
                assert_eq!(got, plain[..count.min(plain.len())], "n {n} count {count}");
            }
        }
    }

    /// Every subset of 0..m as a bit mask with its ‖Σ‖.
    fn all_subsets(s: &[f32], d: usize) -> Vec<(u32, f64)> {
        let m = s.len() / d;
        (0..1u32 << m)
            .map(|mask| (mask, sum_norm(s, d, (0..m).filter(|j| mask >> j & 1 == 1))))
            .collect()
    }

    #[test]
    fn cardinality_matches_brute_force_on_small_instances() {
        let (mut optimal, mut worst) = (0, 1.0f64);
        for seed in 0..30u64 {
            let m = 10 + (seed % 5) as usize;
            let k = 4 + (seed % 2) as usize;
            let d = 3;
            let s = random_vectors(seed, m, d);
            let best = all_subsets(&s, d)
                .into_iter()
                .filter(|(mask, _)| mask.count_ones() as usize == k)
                .map(|(_, n)| n)
                .fold(f64::INFINITY, f64::min);
            let r = choose_removal(&s, d, Target::Count(k));
            assert_eq!(r.removed.len(), k);
            let got = sum_norm(&s, d, r.removed.iter().copied());
            assert!(
                (got - r.norm).abs() <= 1e-9 * (1.0 + got),
                "reported norm is the real one"
            );
            if got <= best * (1.0 + 1e-9) + 1e-12 {
                optimal += 1;
            }
            worst = worst.max(got / best);
        }
        assert!(optimal >= 24, "optimal on only {optimal} of 30 instances");
        assert!(worst <= 1.5, "{worst}× the optimum");
    }

    #[test]
    fn cancellation_removes_two_large_opposite_vectors() {
        let d = 3;
        #[rustfmt::skip]
        let s: Vec<f32> = vec![
            0.5, 0.0, 0.0,
            0.0, 0.5, 0.0,
            0.0, 0.0, 0.6,
            9.0, 1.0, 0.0,
            -9.0, -1.0, 0.01,
            0.3, 0.3, 0.3,
        ];
        // Two of the small ones sum to at least ‖(0.5, 0.5, 0)‖ ≈ 0.71; the large pair to 0.01.
        let r = choose_removal(&s, d, Target::Count(2));
        assert_eq!(r.removed, vec![3, 4]);
        assert!((r.norm - 0.01).abs() < 1e-6);
        // Per-sample scores would never pick them: they are the two largest by far.
        let r = choose_removal(&s, d, Target::Count(3));
        assert!(r.removed.contains(&3) && r.removed.contains(&4), "{r:?}");
    }

    #[test]
    fn guarantee_respects_epsilon_and_is_maximal() {
        let mut at_max = 0;
        for seed in 0..30u64 {
            let m = 10 + (seed % 3) as usize;
            let d = 3;
            let s = random_vectors(100 + seed, m, d);
            let eps = 0.3 + 0.1 * (seed % 5) as f64;
            let subsets = all_subsets(&s, d);
            let max_size = subsets
                .iter()
                .filter(|(_, n)| *n <= eps)
                .map(|(mask, _)| mask.count_ones() as usize)
                .max()
                .unwrap();
            let r = choose_removal(&s, d, Target::Within(eps));
            let got = sum_norm(&s, d, r.removed.iter().copied());
            assert!(got <= eps, "seed {seed}: {got} > ε = {eps}");
            // No single further sample fits.
            for j in (0..m).filter(|j| !r.removed.contains(j)) {
                let with_j = sum_norm(&s, d, r.removed.iter().copied().chain([j]));
                assert!(with_j > eps, "seed {seed}: {j} could still be removed");
            }
            assert!(r.removed.len() <= max_size);
            if r.removed.len() == max_size {
                at_max += 1;
            }
        }
        assert!(
            at_max >= 27,
            "largest R found on only {at_max} of 30 instances"
        );
    }

    #[test]
    fn guarantee_on_a_known_instance() {
        // Pairs that cancel exactly fit under any ε; the lone vector of norm 2 does not.
        let d = 2;
        #[rustfmt::skip]
        let s: Vec<f32> = vec![
            3.0, 0.0,
            -3.0, 0.0,
            0.0, 2.0,
            1.0, 1.0,
            -1.0, -1.0,
        ];
        let r = choose_removal(&s, d, Target::Within(0.5));
        assert_eq!(r.removed, vec![0, 1, 3, 4]);
        assert_eq!(r.norm, 0.0);
        assert!(choose_removal(&s, d, Target::Within(0.0)).norm == 0.0);
    }

    #[test]
    fn guarantee_beyond_exhaustive_sizes_respects_epsilon_and_is_maximal() {
        // m > MAX_PROBES: the galloping search, checked for its promises.
        let (m, d) = (60, 4);
        let s = random_vectors(31, m, d);
        for eps in [0.25, 0.5, 2.0] {
            let r = choose_removal(&s, d, Target::Within(eps));
            let got = sum_norm(&s, d, r.removed.iter().copied());
            assert!(got <= eps, "{got} > ε = {eps}");
            for j in (0..m).filter(|j| !r.removed.contains(j)) {
                let with_j = sum_norm(&s, d, r.removed.iter().copied().chain([j]));
                assert!(with_j > eps, "ε = {eps}: {j} could still be removed");
            }
            // Random vectors leave much room for cancellation: far more than half fit.
            assert!(
                r.removed.len() > m / 2,
                "ε = {eps}: only {}",
                r.removed.len()
            );
        }
    }
}

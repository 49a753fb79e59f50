//! The selection helpers the policies share: the per-epoch budget K, the seen/unseen split,
//! the top-k by score (`top_k_front`, `mark_top_k`, on packed integer keys) and the branch-free
//! filter `extend_where`.

use crate::scores::ScoreBook;

/// K = round((1 - p) · N), the per-epoch budget.
pub fn budget(n: usize, prune: f64) -> usize {
    (((1.0 - prune) * n as f64).round() as usize).min(n)
}

/// The budget left for seen samples once every never-seen sample is kept (the guard shared by
/// the score-based policies): K − |unseen|, at least 0. Keeping the epoch at K samples whenever
/// possible keeps the promised cost; when more than K samples are unseen, all of them are kept
/// and no seen sample is.
pub fn seen_budget(n: usize, prune: f64, unseen: usize) -> usize {
    budget(n, prune).saturating_sub(unseen)
}

/// Splits 0..N into never-seen and seen ids (ascending), reusing the vectors.
pub fn partition_seen(scores: &ScoreBook, unseen: &mut Vec<u64>, seen: &mut Vec<u64>) {
    unseen.clear();
    seen.clear();
    for id in 0..scores.len() {
        if scores.is_seen(id) {
            seen.push(id as u64);
        } else {
            unseen.push(id as u64);
        }
    }
}

/// Moves the `k` ids with the highest `score` to the front of `ids` (in unspecified order), in
/// O(len) with `select_nth_unstable`. Ties break by the smaller id, so the result is a pure
/// function of the scores. NaN scores rank lowest.
///
/// The ranking is packed into one u64 per id (score bits ordered so that ascending integers are
/// descending scores, then the id), so the selection compares integers in one sequential array
/// instead of looking two scores up by id, at random, per comparison: the same order, hence
/// the same set, with no cache miss per comparison on large N.
pub fn top_k_front(ids: &mut [u64], k: usize, score: impl Fn(u64) -> f32) {
    if k == 0 || k >= ids.len() {
        return;
    }
    let key = |id: u64| {
        let s = score(id);
        if s.is_nan() {
            f32::NEG_INFINITY
        } else {
            s
        }
    };
    if ids.iter().all(|&id| id <= u32::MAX as u64) {
        // Packed in place (no buffer of N keys to allocate and page-fault each epoch), then
        // unpacked back to the ids.
        for slot in ids.iter_mut() {
            *slot |= (!ascending_bits(key(*slot)) as u64) << 32;
        }
        ids.select_nth_unstable(k - 1);
        for slot in ids.iter_mut() {
            *slot &= 0xffff_ffff;
        }
        return;
    }
    ids.select_nth_unstable_by(k - 1, |&a, &b| key(b).total_cmp(&key(a)).then(a.cmp(&b)));
}

/// Sets `mark[id]` for the `k` ids of `ids` that `top_k_front` would move to the front (highest
/// `score`, ties by the smaller id, NaN lowest), without moving `ids`. Every id must be below
/// `mark.len()` and every `mark[id]` of `ids` false on entry; `band` is scratch.
///
/// Rather than selecting over every id, a sample of the packed keys (strided, so deterministic)
/// brackets the k-th key; one pass then marks the ids certainly above the bracket and gathers
/// those inside it, and only that band (a few % of the ids) goes through `select_nth_unstable`.
/// Keys are unique (they hold the id), so the marked set is the same whatever the bracket; when
/// the sample misjudges it (the count does not fall inside), the marks are undone and every key
/// is selected, as `top_k_front` does.
pub fn mark_top_k(
    ids: &[u64],
    k: usize,
    score: impl Fn(u64) -> f32,
    mark: &mut [bool],
    band: &mut Vec<u64>,
) {
    mark_top_k_of(
        ids.len(),
        |j| ids[j],
        k,
        score,
        mark,
        band,
        |_, _, _, _| (0, 0),
    );
}

/// `mark_top_k` over the ids 0..m (m ≤ `mark.len()`, m ≤ `score.len()`), without a list of
/// them, by `score[id]`, with the ids `flagged` marks (`Some((streaks, window))`: a streak of
/// at least `window`) ranked as −∞: the judged ids of ε-greedy's and UCB's plan once every id
/// is judged, which would otherwise be read from an N-sized list. Its bracket pass runs 16 ids
/// per step with AVX-512 F where the CPU has it (`top_k_wide`; the same marks).
pub(crate) fn mark_top_k_scores(
    m: usize,
    k: usize,
    score: &[f32],
    flagged: Option<(&[u8], u8)>,
    mark: &mut [bool],
    band: &mut Vec<u64>,
) {
    let score = &score[..m];
    let wide = |lo, hi, mark: &mut [bool], band: &mut Vec<u64>| {
        super::top_k_wide::bracket_pass(score, flagged, lo, hi, mark, band)
    };
    match flagged {
        Some((streak, window)) => {
            let key = flagged_key(score, &streak[..m], window);
            mark_top_k_of(m, |j| j as u64, k, key, mark, band, wide);
        }
        None => mark_top_k_of(
            m,
            |j| j as u64,
            k,
            |id| score[id as usize],
            mark,
            band,
            wide,
        ),
    }
}

/// The ranking key of the guarded top share: `score[id]`, or −∞ where the id's streak is at
/// least `window` (`looks_unlearnable`).
pub(crate) fn flagged_key<'a>(
    score: &'a [f32],
    streak: &'a [u8],
    window: u8,
) -> impl Fn(u64) -> f32 + 'a {
    move |id| {
        if streak[id as usize] >= window {
            f32::NEG_INFINITY
        } else {
            score[id as usize]
        }
    }
}

/// `mark_top_k` over the m ids `id_at(0..m)`. `wide` may do the bracket pass's first ids (only
/// where `id_at(j) = j`): for the bracket `(lo, hi)` it marks the ids whose key is below `lo`,
/// appends the keys inside it to the band (which has room for every id plus 8), and returns
/// how many ids it did and how many were below.
fn mark_top_k_of(
    m: usize,
    id_at: impl Fn(usize) -> u64,
    k: usize,
    score: impl Fn(u64) -> f32,
    mark: &mut [bool],
    band: &mut Vec<u64>,
    wide: impl Fn(u64, u64, &mut [bool], &mut Vec<u64>) -> (usize, usize),
) {
    let ids = || (0..m).map(&id_at);
    let k = k.min(m);
    if k == 0 {
        return;
    }
    if k == m {
        ids().for_each(|id| mark[id as usize] = true);
        return;
    }
    // Every id indexes `mark` (ids below `mark.len()` is this function's contract), so a mark
    // of at most 2³² entries bounds them all: no pass over the ids to check that they fit the
    // packed keys' low half.
    debug_assert!(ids().all(|id| id < mark.len() as u64));
    if mark.len() > 1 << 32 {
        band.clear();
        band.extend(ids());
        top_k_front(band, k, score);
        band[..k].iter().for_each(|&id| mark[id as usize] = true);
        return;
    }
    let packed = |id: u64| {
        let s = score(id);
        let s = if s.is_nan() { f32::NEG_INFINITY } else { s };
        ((!ascending_bits(s) as u64) << 32) | id
    };
    const SAMPLE: usize = 1 << 14;
    if m >= 4 * SAMPLE {
        let mut sample: Vec<u64> = (0..SAMPLE).map(|j| packed(id_at(j * m / SAMPLE))).collect();
        sample.sort_unstable();
        // k-th of m falls near rank k·S/m of the sample; ±4 standard deviations of that rank.
        let r = (k as f64 / m as f64 * SAMPLE as f64) as usize;
        let margin = 4 * (SAMPLE as f64 * 0.25).sqrt() as usize + 16;
        let lo = match r.checked_sub(margin) {
            Some(i) => sample[i],
            None => 0,
        };
        let hi = sample.get(r + margin).copied().unwrap_or(u64::MAX);
        band.clear();
        band.reserve(m + 8);
        let (done, mut below) = wide(lo, hi, mark, band);
        let start = band.len();
        let spare = &mut band.spare_capacity_mut()[..m - done];
        let mut inside = 0usize;
        for id in (done..m).map(&id_at) {
            let key = packed(id);
            let is_below = key < lo;
            // Marks and appends without branching on the key (a coin flip near the bracket).
            mark[id as usize] |= is_below;
            spare[inside].write(key);
            inside += usize::from(!is_below & (key <= hi));
            below += usize::from(is_below);
        }
        // SAFETY: the first `inside` slots past `start` were written above (each append writes
        // its slot before `inside` passes it) and the capacity holds start + m - done ≥ that.
        unsafe { band.set_len(start + inside) };
        let inside = start + inside;
        if below <= k && below + inside >= k {
            let need = k - below;
            if need > 0 {
                if need < inside {
                    band.select_nth_unstable(need - 1);
                }
                band[..need]
                    .iter()
                    .for_each(|&p| mark[(p & 0xffff_ffff) as usize] = true);
            }
            return;
        }
        ids().for_each(|id| mark[id as usize] = false);
    }
    band.clear();
    band.extend(ids().map(packed));
    band.select_nth_unstable(k - 1);
    band[..k]
        .iter()
        .for_each(|&p| mark[(p & 0xffff_ffff) as usize] = true);
}

/// The bits of `x` as a u32 whose unsigned order is `f32::total_cmp`'s order.
pub(crate) fn ascending_bits(x: f32) -> u32 {
    let b = x.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// An id as a selection lists it: u64, or u32 where every id below N fits one (half the bytes
/// to write and to shuffle).
pub(crate) trait ListedId: Copy {
    fn from_id(id: usize) -> Self;
    fn index(self) -> usize;
}

impl ListedId for u64 {
    #[inline(always)]
    fn from_id(id: usize) -> u64 {
        id as u64
    }
    #[inline(always)]
    fn index(self) -> usize {
        self as usize
    }
}

impl ListedId for u32 {
    #[inline(always)]
    fn from_id(id: usize) -> u32 {
        debug_assert!(id <= u32::MAX as usize);
        id as u32
    }
    #[inline(always)]
    fn index(self) -> usize {
        self as usize
    }
}

/// Whether every id below `n` fits a u32, so that lists of ids can be u32.
pub(crate) fn fits_u32(n: usize) -> bool {
    n as u64 <= 1 << 32
}

/// Id-list buffers for a dataset of `n`: room for `n` u32 ids when they fit one (half the bytes
/// to write and to swap at random positions), else for `n` u64 ids; the other list is empty.
pub(crate) fn id_lists(n: usize) -> (Vec<u32>, Vec<u64>) {
    if fits_u32(n) {
        (crate::util::huge::with_capacity(n), Vec::new())
    } else {
        (Vec::new(), crate::util::huge::with_capacity(n))
    }
}

/// Appends to `out`, ascending, every id whose class (`classes[id]`, below 4) is not
/// `excluded`, weighing `by_class[class]`: the ids in one branch-free pass (`extend_marked`),
/// then their weights in a second sequential one, looked up by class rather than chosen by a
/// comparison (which compiles to a branch on a class that is random for drawn ids).
pub(crate) fn extend_by_class(
    out: &mut super::Selection,
    classes: &[u8],
    excluded: u8,
    by_class: [f32; 4],
) {
    let start = out.ids.len();
    super::extend_marked(&mut out.ids, classes, excluded);
    out.weights.extend(
        out.ids[start..]
            .iter()
            .map(|&id| by_class[(classes[id as usize] & 3) as usize]),
    );
}

/// Appends to `out`, ascending, the ids in 0..n for which `keep(id)` holds, with no branch on
/// `keep`: the predicates the policies filter by (below the mean, kept by a random draw) are
/// coin flips the branch predictor misses half the time, which cost more than an unconditional
/// store per id.
pub(crate) fn extend_where<T: ListedId>(out: &mut Vec<T>, n: usize, keep: impl Fn(usize) -> bool) {
    out.reserve(n);
    let start = out.len();
    let spare = &mut out.spare_capacity_mut()[..n];
    let mut k = 0;
    for id in 0..n {
        // k ≤ id < n: every slot below the final k is written before k passes it.
        spare[k].write(T::from_id(id));
        k += usize::from(keep(id));
    }
    // SAFETY: slots start..start + k were initialised above (see the loop), and the capacity
    // holds start + n ≥ start + k elements.
    unsafe { out.set_len(start + k) };
}

/// `extend_where` into two lists in one pass: the ids in 0..n for which `keep(id)` holds are
/// appended to `yes`, the others to `no`, both ascending. Each id is stored into both lists and
/// counted in one, so nothing branches on `keep` and `keep` is evaluated once per id.
pub(crate) fn split_where<T: ListedId>(
    yes: &mut Vec<T>,
    no: &mut Vec<T>,
    n: usize,
    keep: impl Fn(usize) -> bool,
) {
    yes.reserve(n);
    no.reserve(n);
    let (yes_start, no_start) = (yes.len(), no.len());
    let yes_spare = &mut yes.spare_capacity_mut()[..n];
    let no_spare = &mut no.spare_capacity_mut()[..n];
    let (mut y, mut m) = (0, 0);
    for id in 0..n {
        // y, m ≤ id < n, y + m = id: as in `extend_where`, every slot below the final count
        // of each list is written before that count passes it.
        let v = T::from_id(id);
        yes_spare[y].write(v);
        no_spare[m].write(v);
        let k = usize::from(keep(id));
        y += k;
        m += 1 - k;
    }
    // SAFETY: the slots below each final count were initialised above, and each capacity
    // holds its start + n ≥ start + count elements.
    unsafe {
        yes.set_len(yes_start + y);
        no.set_len(no_start + m);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Scores that rank awkwardly: ties, NaN, ±0 and ±∞ (tests of the selections draw from it).
    pub(crate) const AWKWARD_SCORES: [f32; 8] = [
        1.0,
        -0.0,
        0.0,
        f32::NAN,
        3.5,
        -2.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ];

    #[test]
    fn top_k_breaks_ties_by_id_and_ranks_nan_last() {
        let scores = [1.0, 5.0, f32::NAN, 5.0, 3.0, 5.0];
        let mut ids: Vec<u64> = (0..6).collect();
        top_k_front(&mut ids, 2, |i| scores[i as usize]);
        let mut top = ids[..2].to_vec();
        top.sort_unstable();
        assert_eq!(top, vec![1, 3]);
        let mut ids: Vec<u64> = (0..6).collect();
        top_k_front(&mut ids, 5, |i| scores[i as usize]);
        assert!(!ids[..5].contains(&2));
    }

    #[test]
    fn packed_top_k_equals_the_comparison_sort() {
        // Ties, NaN, ±0 and ±∞, over several k: the same set as a full sort by
        // (score desc with NaN lowest, id asc).
        let pool = AWKWARD_SCORES;
        let scores: Vec<f32> = (0..500)
            .map(|i| pool[(i * 7 + i / 3) % pool.len()])
            .collect();
        let key = |i: u64| {
            let s = scores[i as usize];
            if s.is_nan() {
                f32::NEG_INFINITY
            } else {
                s
            }
        };
        for k in [1, 2, 63, 250, 499] {
            let mut ids: Vec<u64> = (0..500).rev().collect();
            top_k_front(&mut ids, k, |i| scores[i as usize]);
            let mut got = ids[..k].to_vec();
            got.sort_unstable();
            let mut all: Vec<u64> = (0..500).collect();
            all.sort_by(|&a, &b| key(b).total_cmp(&key(a)).then(a.cmp(&b)));
            let mut want = all[..k].to_vec();
            want.sort_unstable();
            assert_eq!(got, want, "k = {k}");
            let mut every = ids.clone();
            every.sort_unstable();
            assert_eq!(every, (0..500).collect::<Vec<u64>>());
        }
    }

    #[test]
    fn mark_top_k_marks_the_set_top_k_front_moves() {
        // Large enough for the sampled bracket (and small ones for the plain path), with ties,
        // NaN and a skew; ids in scrambled order, some ids absent.
        let n = 200_000usize;
        let scores: Vec<f32> = (0..n)
            .map(|i| match i % 97 {
                0 => f32::NAN,
                1..=9 => 2.5,
                _ => ((i * 7919) % 10_007) as f32 * if i % 5 == 0 { 0.001 } else { 1.0 },
            })
            .collect();
        let score = |i: u64| scores[i as usize];
        for m in [0usize, 1, 10, 5000, 150_000] {
            let ids: Vec<u64> = (0..m as u64).map(|i| (i * 131_071) % n as u64).collect();
            for k in [0, 1, m / 3, m.saturating_sub(1), m] {
                let k = k.min(m);
                let mut front = ids.clone();
                top_k_front(&mut front, k, score);
                let mut want = vec![false; n];
                front[..k].iter().for_each(|&id| want[id as usize] = true);
                let mut got = vec![false; n];
                let mut band = Vec::new();
                mark_top_k(&ids, k, score, &mut got, &mut band);
                assert!(got == want, "m = {m}, k = {k}");
            }
        }
        // A bracket the sample misjudges (the sampled positions all score high, the rest
        // low): undone, and the plain selection gives the same set.
        let m = 100_000usize;
        let mut odd: Vec<f32> = (0..m).map(|i| (i % 13) as f32).collect();
        for j in 0..1 << 14 {
            odd[j * m / (1 << 14)] = 100.0;
        }
        let ids: Vec<u64> = (0..m as u64).collect();
        for k in [10, 5000, 50_000] {
            let mut front = ids.clone();
            top_k_front(&mut front, k, |i| odd[i as usize]);
            let mut want = vec![false; m];
            front[..k].iter().for_each(|&id| want[id as usize] = true);
            let mut got = vec![false; m];
            mark_top_k(&ids, k, |i| odd[i as usize], &mut got, &mut Vec::new());
            assert!(got == want, "k = {k}");
            // The unlisted form over 0..m marks the same set.
            let mut all = vec![false; m];
            mark_top_k_scores(m, k, &odd, None, &mut all, &mut Vec::new());
            assert!(all == want, "all, k = {k}");
        }
        for k in [0, 1, 77_777, n] {
            let ids: Vec<u64> = (0..n as u64).collect();
            let (mut want, mut got) = (vec![false; n], vec![false; n]);
            mark_top_k(&ids, k, score, &mut want, &mut Vec::new());
            mark_top_k_scores(n, k, &scores, None, &mut got, &mut Vec::new());
            assert!(got == want, "all over n, k = {k}");
        }
    }

    #[test]
    fn extend_where_keeps_matching_ids_in_order() {
        let mut out: Vec<u64> = vec![99];
        extend_where(&mut out, 10, |i| i % 3 == 1);
        assert_eq!(out, vec![99, 1, 4, 7]);
        extend_where(&mut out, 0, |_| true);
        assert_eq!(out, vec![99, 1, 4, 7]);
        let mut narrow: Vec<u32> = vec![99];
        extend_where(&mut narrow, 10, |i| i % 3 == 1);
        assert_eq!(narrow, vec![99, 1, 4, 7]);
    }

    #[test]
    fn split_where_parts_every_id_in_order() {
        let (mut yes, mut no): (Vec<u64>, Vec<u64>) = (vec![99], vec![]);
        split_where(&mut yes, &mut no, 10, |i| i % 3 == 1);
        assert_eq!((yes, no), (vec![99, 1, 4, 7], vec![0, 2, 3, 5, 6, 8, 9]));
        for keep in [true, false] {
            let (mut yes, mut no): (Vec<u32>, Vec<u32>) = (vec![], vec![5]);
            split_where(&mut yes, &mut no, 4, |_| keep);
            let all: Vec<u32> = (0..4).collect();
            if keep {
                assert_eq!((yes, no), (all, vec![5]));
            } else {
                assert_eq!((yes, no), (vec![], [vec![5], all].concat()));
            }
        }
    }

    #[test]
    fn budgets() {
        assert_eq!(budget(10, 0.25), 8); // round(7.5) = 8
        assert_eq!(budget(90, 0.9), 9);
        assert_eq!(seen_budget(100, 0.3, 20), 50);
        assert_eq!(seen_budget(100, 0.3, 80), 0);
    }
}

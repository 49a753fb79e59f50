//! The state of the removal search — R as a membership mask plus its running sum — and the
//! moves that grow R: the pool greedy, guarantee mode's `fill`, and pair additions.

use super::{candidates, least_step, PAIR_CANDIDATES, POOL};
use crate::policy::influence::kernels::{dot, dot_rows, dots_into, dots_with};
use crate::util::prefetch;

/// How many rows ahead of the greedy's refill cursor `prefetch_row` asks for: a step takes
/// about a microsecond, so this is well beyond a memory access (at 1.28M × 64, 16 and 64 were
/// level, and both ~10 % faster than no prefetch: benches/profiling.md).
const PREFETCH_AHEAD: usize = 64;

/// R as a membership mask plus its running sum S = Σ_R s_i.
pub(super) struct Search<'a> {
    s: &'a [f32],
    d: usize,
    pub(super) m: usize,
    pub(super) norm2: Vec<f64>,
    /// Row indices ascending by (‖s_j‖, j).
    by_norm: Vec<usize>,
    pub(super) member: Vec<bool>,
    pub(super) size: usize,
    sum: Vec<f64>,
    /// ‖S‖², recomputed from S after every change (never updated incrementally, so it cannot
    /// drift from the set it describes).
    pub(super) sum2: f64,
}

impl<'a> Search<'a> {
    pub(super) fn new(s: &'a [f32], d: usize) -> Self {
        let m = s.len() / d;
        let norm2: Vec<f64> = s.chunks_exact(d).map(|r| dot(r, r)).collect();
        let mut by_norm: Vec<usize> = (0..m).collect();
        by_norm.sort_unstable_by(|&a, &b| norm2[a].total_cmp(&norm2[b]).then(a.cmp(&b)));
        Search {
            s,
            d,
            m,
            norm2,
            by_norm,
            member: vec![false; m],
            size: 0,
            sum: vec![0.0; d],
            sum2: 0.0,
        }
    }

    fn row(&self, j: usize) -> &'a [f32] {
        &self.s[j * self.d..(j + 1) * self.d]
    }

    /// Asks for row j's cache lines and its membership flag ahead of use: the greedy takes
    /// rows in norm order, scattered over the m × d matrix, so without it every refill of the
    /// pool waited on memory (docs/performance.md).
    fn prefetch_row(&self, j: usize) {
        let row = self.s.as_ptr().wrapping_add(j * self.d);
        for k in (0..self.d).step_by(64 / std::mem::size_of::<f32>()) {
            prefetch(row, k);
        }
        prefetch(self.member.as_ptr(), j);
    }

    pub(super) fn add(&mut self, j: usize) {
        debug_assert!(!self.member[j]);
        self.member[j] = true;
        self.size += 1;
        let row = self.row(j);
        for (a, &b) in self.sum.iter_mut().zip(row) {
            *a += b as f64;
        }
        self.sum2 = dot(&self.sum, &self.sum);
    }

    pub(super) fn remove(&mut self, j: usize) {
        debug_assert!(self.member[j]);
        self.member[j] = false;
        self.size -= 1;
        let row = self.row(j);
        for (a, &b) in self.sum.iter_mut().zip(row) {
            *a -= b as f64;
        }
        self.sum2 = dot(&self.sum, &self.sum);
    }

    /// Adds j if the exact ‖S + s_j‖ stays within ε (the estimate from `with` can differ from
    /// it in the last bit); whether it did.
    fn add_within(&mut self, j: usize, eps2: f64) -> bool {
        self.add(j);
        if self.sum2 <= eps2 {
            return true;
        }
        self.remove(j);
        false
    }

    /// ‖S + s_j‖², from ‖S + s‖² = ‖S‖² + 2 S·s + ‖s‖².
    fn with(&self, j: usize) -> f64 {
        self.sum2 + 2.0 * dot(&self.sum, self.row(j)) + self.norm2[j]
    }

    pub(super) fn clear(&mut self) {
        self.member.fill(false);
        self.size = 0;
        self.sum.fill(0.0);
        self.sum2 = 0.0;
    }

    pub(super) fn snapshot(&self) -> (Vec<bool>, usize, Vec<f64>, f64) {
        (self.member.clone(), self.size, self.sum.clone(), self.sum2)
    }

    pub(super) fn restore(&mut self, (member, size, sum, sum2): (Vec<bool>, usize, Vec<f64>, f64)) {
        (self.member, self.size, self.sum, self.sum2) = (member, size, sum, sum2);
    }

    /// The greedy: until |R| = k, adds, of the POOL smallest-norm non-members, the one that
    /// leaves ‖S‖ smallest. Each addition and the ‖S‖² after it go to `path`.
    pub(super) fn grow(&mut self, k: usize, path: &mut Vec<(usize, f64)>) {
        let mut pool = Pool::new(self.d);
        let mut cursor = 0;
        while self.size < k {
            while pool.ids.len() < POOL && cursor < self.m {
                let j = self.by_norm[cursor];
                if let Some(&ahead) = self.by_norm.get(cursor + PREFETCH_AHEAD) {
                    self.prefetch_row(ahead);
                }
                cursor += 1;
                if !self.member[j] {
                    pool.push(j, self.row(j), self.norm2[j]);
                }
            }
            let Some((pos, _)) = best_in_pool(&pool, &self.sum, self.sum2) else {
                return;
            };
            let j = pool.swap_remove(pos);
            self.add(j);
            path.push((j, self.sum2));
        }
    }

    /// Guarantee mode's growth: one scan (m·d) ranks every non-member by ‖S + s_j‖, the POOL
    /// best become the pool of a greedy that adds, while it stays within ε, the one leaving ‖S‖
    /// smallest; then a new scan. When no single sample fits, a pair that fits together is
    /// tried. Ends maximal — no single sample can be added — unless `scans` scans run out
    /// first (near ε each scan may find only a few that fit, as every addition turns S).
    pub(super) fn fill(&mut self, eps2: f64, scans: usize) {
        for _ in 0..scans {
            let outside: Vec<usize> = (0..self.m).filter(|&j| !self.member[j]).collect();
            let c = self.dots_with_sum();
            // As `with`, from the same dot products.
            let with: Vec<f64> = outside
                .iter()
                .map(|&j| self.sum2 + 2.0 * c[j] + self.norm2[j])
                .collect();
            let mut pool: Vec<usize> = candidates(0..outside.len(), |i| with[i], POOL)
                .into_iter()
                .filter(|&i| with[i] <= eps2)
                .map(|i| outside[i])
                .collect();
            let mut added = false;
            loop {
                let mut best: Option<(usize, f64)> = None;
                for (pos, &j) in pool.iter().enumerate() {
                    let v = self.with(j);
                    if best.is_none_or(|(_, bv)| v < bv) {
                        best = Some((pos, v));
                    }
                }
                match best {
                    Some((pos, v)) if v <= eps2 => {
                        let j = pool.swap_remove(pos);
                        if !self.add_within(j, eps2) {
                            break;
                        }
                        added = true;
                    }
                    _ => break,
                }
            }
            if !(added || self.add_pair(eps2)) {
                return;
            }
        }
    }

    /// c_j = S·s_j for every row.
    pub(super) fn dots_with_sum(&self) -> Vec<f64> {
        dots_with(&self.sum, self.s, self.d)
    }

    /// Gram block: s_x·s_y for x in `a`, y in `b`, row-major |a| × |b|.
    pub(super) fn gram(&self, a: &[usize], b: &[usize]) -> Vec<f64> {
        let mut g = Vec::with_capacity(a.len() * b.len());
        for &x in a {
            for &y in b {
                g.push(dot_rows(self.row(x), self.row(y)));
            }
        }
        g
    }

    /// Non-members for the pair moves: the `count` best single additions, then the `count`
    /// largest vectors not among them. The largest are the ones a per-sample score never
    /// removes; a pair of them that cancels is the joint effect the influence policy is about,
    /// and a pair move is the only way to bring it in (each alone would blow up ‖S‖).
    pub(super) fn pair_entrants(&self, c: &[f64], count: usize) -> Vec<usize> {
        let outside = (0..self.m).filter(|&j| !self.member[j]);
        let mut list = candidates(outside, |j| self.norm2[j] + 2.0 * c[j], count);
        let best = list.len();
        for &j in self.by_norm.iter().rev() {
            if list.len() >= best + count {
                break;
            }
            if !self.member[j] && !list[..best].contains(&j) {
                list.push(j);
            }
        }
        list
    }

    /// Guarantee mode: adds the two `pair_entrants` whose joint addition leaves ‖S‖ smallest,
    /// if that stays ≤ ε (two large opposite vectors can fit together when neither fits alone).
    fn add_pair(&mut self, eps2: f64) -> bool {
        if self.m - self.size < 2 {
            return false;
        }
        let c = self.dots_with_sum();
        let inn = self.pair_entrants(&c, PAIR_CANDIDATES);
        let pi = inn.len();
        let g_ii = self.gram(&inn, &inn);
        let mut pick: Option<(usize, usize, f64)> = None;
        for b1 in 0..pi {
            for b2 in b1 + 1..pi {
                let (u1, u2) = (inn[b1], inn[b2]);
                let v = self.sum2
                    + self.norm2[u1]
                    + 2.0 * c[u1]
                    + self.norm2[u2]
                    + 2.0 * c[u2]
                    + 2.0 * g_ii[b1 * pi + b2];
                if pick.is_none_or(|p| v < p.2) {
                    pick = Some((b1, b2, v));
                }
            }
        }
        match pick {
            Some((b1, b2, v)) if v <= eps2 => {
                self.add(inn[b1]);
                self.add(inn[b2]);
                if self.sum2 <= eps2 {
                    return true;
                }
                // Rounding put the exact sum just over ε: undo.
                self.remove(inn[b2]);
                self.remove(inn[b1]);
                false
            }
            _ => false,
        }
    }
}

/// The greedy's candidates: their row indices, with their rows and squared norms copied side
/// by side, so that a step's scan reads one contiguous block (POOL·d f32, 32 KiB at d = 64,
/// within L1) instead of POOL rows scattered over the m × d matrix, a page each. (Rows
/// converted to f64 on entry, to spare the conversions in the scan, were slower: twice the
/// bytes, out of L1.)
struct Pool {
    d: usize,
    ids: Vec<usize>,
    rows: Vec<f32>,
    norm2: Vec<f64>,
}

impl Pool {
    fn new(d: usize) -> Self {
        Pool {
            d,
            ids: Vec::with_capacity(POOL),
            rows: Vec::with_capacity(POOL * d),
            norm2: Vec::with_capacity(POOL),
        }
    }

    fn push(&mut self, j: usize, row: &[f32], norm2: f64) {
        self.ids.push(j);
        self.rows.extend_from_slice(&row[..self.d]);
        self.norm2.push(norm2);
    }

    /// Removes the candidate at `pos` (the last one takes its place, as `Vec::swap_remove`);
    /// its row index.
    fn swap_remove(&mut self, pos: usize) -> usize {
        let d = self.d;
        let last = self.ids.len() - 1;
        self.rows.copy_within(last * d..(last + 1) * d, pos * d);
        self.rows.truncate(last * d);
        self.norm2.swap_remove(pos);
        self.ids.swap_remove(pos)
    }
}

/// The position in `pool` of the row j whose addition leaves ‖S‖ smallest, with ‖S + s_j‖²
/// (`Search::with`, its dot products from `dots_into`; ties: the smaller j); None for an
/// empty pool.
fn best_in_pool(pool: &Pool, sum: &[f64], sum2: f64) -> Option<(usize, f64)> {
    let n = pool.ids.len();
    if n == 0 {
        return None;
    }
    let mut c = [0.0f64; POOL];
    let c = &mut c[..n];
    dots_into(sum, &pool.rows, pool.d, c);
    let value = |pos: usize| sum2 + 2.0 * c[pos] + pool.norm2[pos];
    // What one scan keeping (value, j) smallest finds, in two passes: the least value (one
    // vectorised pass), then the smallest j holding it. A NaN (never from finite s_i) is
    // passed over by both, as by the scan, except in front, where the scan keeps it.
    if value(0).is_nan() {
        return Some((0, value(0)));
    }
    let least = least_step(sum2, c, &pool.norm2);
    let mut best: Option<usize> = None;
    for pos in 0..n {
        if value(pos) == least && best.is_none_or(|b| pool.ids[pos] < pool.ids[b]) {
            best = Some(pos);
        }
    }
    best.map(|pos| (pos, value(pos)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::influence::tests::random_vectors;

    /// The scan `best_in_pool` stands for: the first smallest value, ties to the smaller j.
    fn first_best(ids: &[usize], v: &[f64]) -> Option<(usize, f64)> {
        let mut best: Option<(usize, f64)> = None;
        for (pos, (&j, &x)) in ids.iter().zip(v).enumerate() {
            let better = match best {
                None => true,
                Some((b, bv)) => x < bv || (x == bv && j < ids[b]),
            };
            if better {
                best = Some((pos, x));
            }
        }
        best
    }

    /// The two-pass choice is the scan's, with ties (the smaller j wins, wherever it sits in
    /// the pool) and NaN (in front and further on).
    #[test]
    fn the_pool_choice_breaks_ties_as_the_scan_does() {
        let mut rng = crate::Rng::new(11, crate::Stream::Select, 0, 0);
        let d = 2;
        for n in 1..40 {
            for _ in 0..30 {
                let mut pool = Pool::new(d);
                let mut ids: Vec<usize> = (0..n).map(|j| j * 3 + 1).collect();
                rng.shuffle(&mut ids);
                for &j in &ids {
                    // Rows (1, 0) or (0, 0) and norms 0..3: many equal values.
                    let row = [rng.below(2) as f32, 0.0];
                    pool.push(j, &row, rng.below(3) as f64);
                }
                let sum = [-0.5, 0.0];
                let mut c = vec![0.0; n];
                dots_into(&sum, &pool.rows, d, &mut c);
                let v: Vec<f64> = (0..n).map(|t| 0.25 + 2.0 * c[t] + pool.norm2[t]).collect();
                let got = best_in_pool(&pool, &sum, 0.25).map(|(p, x)| (p, x.to_bits()));
                let want = first_best(&pool.ids, &v).map(|(p, x)| (p, x.to_bits()));
                assert_eq!(got, want, "n {n}");
            }
        }
        for front in [true, false] {
            let mut pool = Pool::new(1);
            let rows: [(usize, f32, f64); 3] = if front {
                [(5, f32::NAN, 0.0), (2, 1.0, 1.0), (9, -1.0, 1.0)]
            } else {
                [(2, 1.0, 1.0), (5, f32::NAN, 0.0), (9, -1.0, 1.0)]
            };
            for (j, x, n2) in rows {
                pool.push(j, &[x], n2);
            }
            let v: Vec<f64> = rows.iter().map(|&(_, x, n2)| 2.0 * x as f64 + n2).collect();
            let got = best_in_pool(&pool, &[1.0], 0.0).map(|(p, x)| (p, x.to_bits()));
            let want = first_best(&pool.ids, &v).map(|(p, x)| (p, x.to_bits()));
            assert_eq!(got, want, "NaN in front: {front}");
        }
    }

    /// The candidate chosen with the wide dot products is the one `Search::with` ranks first,
    /// with the same value to the bit: otherwise R would depend on the CPU.
    #[test]
    fn the_pool_step_agrees_with_the_plain_dot() {
        for d in [3, 13, 64] {
            let m = 300;
            let s = random_vectors(d as u64, m, d);
            let norm2: Vec<f64> = s.chunks_exact(d).map(|r| dot(r, r)).collect();
            let sum: Vec<f64> = (0..d).map(|k| (k as f64 - 5.0) * 0.37).collect();
            let sum2 = dot(&sum, &sum);
            let pool: Vec<usize> = (0..m).filter(|j| j % 3 != 1).take(POOL).collect();
            let row = |j: usize| &s[j * d..(j + 1) * d];
            let plain = pool
                .iter()
                .enumerate()
                .map(|(pos, &j)| (pos, sum2 + 2.0 * dot(&sum, row(j)) + norm2[j]))
                .min_by(|a, b| a.1.total_cmp(&b.1).then(pool[a.0].cmp(&pool[b.0])))
                .unwrap();
            let mut candidates = Pool::new(d);
            for &j in &pool {
                candidates.push(j, row(j), norm2[j]);
            }
            let got = best_in_pool(&candidates, &sum, sum2).unwrap();
            assert_eq!(
                (got.0, got.1.to_bits()),
                (plain.0, plain.1.to_bits()),
                "d {d}"
            );
            // After a removal the last candidate's row sits where the removed one was.
            let gone = candidates.swap_remove(got.0);
            assert_eq!(gone, pool[got.0]);
            let rest: Vec<usize> = pool.iter().copied().filter(|&j| j != gone).collect();
            let plain = rest
                .iter()
                .map(|&j| (j, sum2 + 2.0 * dot(&sum, row(j)) + norm2[j]))
                .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
                .unwrap();
            let got = best_in_pool(&candidates, &sum, sum2).unwrap();
            assert_eq!(
                (candidates.ids[got.0], got.1.to_bits()),
                (plain.0, plain.1.to_bits()),
                "d {d}"
            );
            assert_eq!(best_in_pool(&Pool::new(d), &sum, sum2), None);
        }
    }
}

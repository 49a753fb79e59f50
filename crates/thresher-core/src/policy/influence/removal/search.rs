//! The state of the removal search — R as a membership mask plus its running sum — and the
//! moves that grow R: the pool greedy, guarantee mode's `fill`, and pair additions.

use super::{candidates, PAIR_CANDIDATES, POOL};
use crate::policy::influence::kernels::{dot, dot_rows, dots_rows, dots_with};

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
        let mut pool: Vec<usize> = Vec::with_capacity(POOL);
        let mut cursor = 0;
        while self.size < k {
            while pool.len() < POOL && cursor < self.m {
                let j = self.by_norm[cursor];
                cursor += 1;
                if !self.member[j] {
                    pool.push(j);
                }
            }
            let best = best_in_pool(self.s, self.d, &self.sum, self.sum2, &self.norm2, &pool);
            let Some((pos, _)) = best else { return };
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
            let mut order: Vec<usize> = (0..outside.len()).collect();
            let mut pool: Vec<usize> = candidates(std::mem::take(&mut order), |i| with[i], POOL)
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
        let outside: Vec<usize> = (0..self.m).filter(|&j| !self.member[j]).collect();
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

/// The position in `pool` of the row j whose addition leaves ‖S‖ smallest, with ‖S + s_j‖²
/// (`Search::with`, its dot products from `dots_rows`; ties: the smaller j); None for an
/// empty pool.
fn best_in_pool(
    s: &[f32],
    d: usize,
    sum: &[f64],
    sum2: f64,
    norm2: &[f64],
    pool: &[usize],
) -> Option<(usize, f64)> {
    let mut c = [0.0f64; POOL];
    let c = &mut c[..pool.len()];
    dots_rows(sum, s, d, pool, c);
    let mut best: Option<(usize, f64)> = None;
    for (pos, (&j, &cj)) in pool.iter().zip(c.iter()).enumerate() {
        let v = sum2 + 2.0 * cj + norm2[j];
        let better = match best {
            None => true,
            Some((b, bv)) => v < bv || (v == bv && j < pool[b]),
        };
        if better {
            best = Some((pos, v));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::influence::tests::random_vectors;

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
            let got = best_in_pool(&s, d, &sum, sum2, &norm2, &pool).unwrap();
            assert_eq!(
                (got.0, got.1.to_bits()),
                (plain.0, plain.1.to_bits()),
                "d {d}"
            );
            assert_eq!(best_in_pool(&s, d, &sum, sum2, &norm2, &[]), None);
        }
    }
}

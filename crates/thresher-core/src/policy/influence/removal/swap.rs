//! Local search at fixed |R|: Kernighan–Lin swap passes and two-for-two pair passes, each
//! kept only when the exact ‖S‖ went down, so the search cannot cycle.

use super::search::Search;
use super::{candidates, least_difference, KL_DEPTH, KL_STARTS, PAIR_CANDIDATES, SWAP_CANDIDATES};

impl Search<'_> {
    /// Local search at fixed |R|: Kernighan–Lin swap passes, and a pair pass whenever those
    /// find nothing, until neither helps (at most `passes` passes in all). Whether ‖S‖ went
    /// down.
    pub(super) fn improve(&mut self, passes: usize) -> bool {
        let mut improved = false;
        for _ in 0..passes {
            if !(self.swap_pass() || self.pair_pass()) {
                break;
            }
            improved = true;
        }
        improved
    }

    /// Keeps the moves just applied if the exact ‖S‖² is below `start`; otherwise undoes them
    /// (the caller's estimate was computed incrementally and may be off by rounding). Checking
    /// exactly makes every kept pass strictly decrease ‖S‖, so the search cannot cycle.
    fn keep_if_better(&mut self, start: f64, outs: &[usize], ins: &[usize]) -> bool {
        if self.sum2 < start {
            return true;
        }
        for &j in ins {
            self.remove(j);
        }
        for &j in outs {
            self.add(j);
        }
        false
    }

    /// One Kernighan–Lin pass at fixed |R|. Candidates: the SWAP_CANDIDATES members whose
    /// removal alone leaves ‖S‖ smallest and the SWAP_CANDIDATES non-members whose addition
    /// alone does. From these it builds sequences of swaps, each swap the best (r out, u in)
    /// among the candidates not yet moved — taken even when it makes ‖S‖ worse, so that a bad
    /// swap can be repaired by later ones — and applies the prefix with the smallest ‖S‖ of the
    /// best sequence. The sequences start from the KL_STARTS best first swaps: a single greedy
    /// sequence too often spends its first move on the wrong pair. Returns whether ‖S‖ went
    /// down.
    fn swap_pass(&mut self) -> bool {
        if self.size == 0 || self.size == self.m {
            return false;
        }
        let c = self.dots_with_sum();
        let out = candidates(
            (0..self.m).filter(|&j| self.member[j]),
            |j| self.norm2[j] - 2.0 * c[j],
            SWAP_CANDIDATES,
        );
        let inn = candidates(
            (0..self.m).filter(|&j| !self.member[j]),
            |j| self.norm2[j] + 2.0 * c[j],
            SWAP_CANDIDATES,
        );
        let table = SwapTable {
            g_oi: self.gram(&out, &inn),
            g_oo: self.gram(&out, &out),
            g_ii: self.gram(&inn, &inn),
            c_out: out.iter().map(|&j| c[j]).collect(),
            c_in: inn.iter().map(|&j| c[j]).collect(),
            n_out: out.iter().map(|&j| self.norm2[j]).collect(),
            n_in: inn.iter().map(|&j| self.norm2[j]).collect(),
        };
        let start = self.sum2;
        let (po, pi) = (out.len(), inn.len());
        let mut firsts: Vec<(f64, usize, usize)> = Vec::with_capacity(po * pi);
        for a in 0..po {
            for b in 0..pi {
                firsts.push((
                    table.swap_value(start, &table.c_out, &table.c_in, a, b),
                    a,
                    b,
                ));
            }
        }
        let cmp = |x: &(f64, usize, usize), y: &(f64, usize, usize)| {
            x.0.total_cmp(&y.0).then((x.1, x.2).cmp(&(y.1, y.2)))
        };
        if firsts.len() > KL_STARTS {
            firsts.select_nth_unstable_by(KL_STARTS, cmp);
            firsts.truncate(KL_STARTS);
        }
        firsts.sort_unstable_by(cmp);
        let mut best: (f64, Vec<(usize, usize)>) = (start, Vec::new());
        for &(_, a, b) in &firsts {
            let (value, moves) = table.chain(start, (a, b));
            if value < best.0 {
                best = (value, moves);
            }
        }
        if best.1.is_empty() {
            return false;
        }
        let outs: Vec<usize> = best.1.iter().map(|&(a, _)| out[a]).collect();
        let ins: Vec<usize> = best.1.iter().map(|&(_, b)| inn[b]).collect();
        for (&o, &i) in outs.iter().zip(&ins) {
            self.remove(o);
            self.add(i);
        }
        self.keep_if_better(start, &outs, &ins)
    }

    /// The best exchange of two members for two non-members, over PAIR_CANDIDATES members (by
    /// single-removal gain) and the `pair_entrants`. The swap pass cannot find such a move when
    /// the first half of it is worse than some other single swap (its greedy sequence takes
    /// that one instead); this pass looks at the pair as one move.
    fn pair_pass(&mut self) -> bool {
        if self.size < 2 || self.m - self.size < 2 {
            return false;
        }
        let c = self.dots_with_sum();
        let out = candidates(
            (0..self.m).filter(|&j| self.member[j]),
            |j| self.norm2[j] - 2.0 * c[j],
            PAIR_CANDIDATES,
        );
        let inn = self.pair_entrants(&c, PAIR_CANDIDATES);
        let (po, pi) = (out.len(), inn.len());
        let g_oi = self.gram(&out, &inn);
        let g_oo = self.gram(&out, &out);
        let g_ii = self.gram(&inn, &inn);
        // ‖S − s_r1 − s_r2 + s_u1 + s_u2‖² = ‖S‖² + (n_r1 − 2c_r1) + (n_r2 − 2c_r2) + 2 s_r1·s_r2
        //   + (n_u1 + 2c_u1) + (n_u2 + 2c_u2) + 2 s_u1·s_u2 − 2 Σ s_r·s_u.
        let gain_out: Vec<f64> = out.iter().map(|&j| self.norm2[j] - 2.0 * c[j]).collect();
        let gain_in: Vec<f64> = inn.iter().map(|&j| self.norm2[j] + 2.0 * c[j]).collect();
        let start = self.sum2;
        let mut pick: Option<(usize, usize, usize, usize, f64)> = None;
        let mut cross = vec![0.0; pi];
        for a1 in 0..po {
            for a2 in a1 + 1..po {
                let base = start + gain_out[a1] + gain_out[a2] + 2.0 * g_oo[a1 * po + a2];
                for (b, x) in cross.iter_mut().enumerate() {
                    *x = g_oi[a1 * pi + b] + g_oi[a2 * pi + b];
                }
                for b1 in 0..pi {
                    let base = base + gain_in[b1] - 2.0 * cross[b1];
                    for b2 in b1 + 1..pi {
                        let v = base + gain_in[b2] + 2.0 * g_ii[b1 * pi + b2] - 2.0 * cross[b2];
                        if pick.is_none_or(|p| v < p.4) {
                            pick = Some((a1, a2, b1, b2, v));
                        }
                    }
                }
            }
        }
        let Some((a1, a2, b1, b2, v)) = pick else {
            return false;
        };
        if v >= start {
            return false;
        }
        let (outs, ins) = ([out[a1], out[a2]], [inn[b1], inn[b2]]);
        for j in outs {
            self.remove(j);
        }
        for j in ins {
            self.add(j);
        }
        self.keep_if_better(start, &outs, &ins)
    }
}

/// A swap pass's candidates (out: members, in: non-members) with their dot products with S
/// (c), squared norms (n) and Gram blocks, row-major.
struct SwapTable {
    g_oi: Vec<f64>,
    g_oo: Vec<f64>,
    g_ii: Vec<f64>,
    c_out: Vec<f64>,
    c_in: Vec<f64>,
    n_out: Vec<f64>,
    n_in: Vec<f64>,
}

impl SwapTable {
    /// ‖S − s_out[a] + s_in[b]‖² = ‖S‖² − 2c_a + n_a + 2c_b + n_b − 2 s_a·s_b.
    fn swap_value(&self, sum2: f64, c_out: &[f64], c_in: &[f64], a: usize, b: usize) -> f64 {
        let pi = self.c_in.len();
        sum2 - 2.0 * c_out[a] + self.n_out[a] + 2.0 * c_in[b] + self.n_in[b]
            - 2.0 * self.g_oi[a * pi + b]
    }

    /// The Kernighan–Lin sequence that starts with `first`: the smallest ‖S‖² reached and the
    /// moves that reach it (empty when no prefix beats `sum2`).
    fn chain(&self, sum2: f64, first: (usize, usize)) -> (f64, Vec<(usize, usize)>) {
        let (po, pi) = (self.c_out.len(), self.c_in.len());
        let (mut c_out, mut c_in) = (self.c_out.clone(), self.c_in.clone());
        let mut moved_out = vec![false; po];
        let mut moved_in = vec![false; pi];
        let mut cur = sum2;
        let (mut best, mut best_len) = (sum2, 0);
        let mut moves: Vec<(usize, usize)> = Vec::new();
        let mut gain_in = vec![0.0; pi];
        let mut next = Some(first);
        while let Some((a, b)) = next {
            cur = self.swap_value(cur, &c_out, &c_in, a, b);
            moved_out[a] = true;
            moved_in[b] = true;
            moves.push((a, b));
            // S ← S − s_out[a] + s_in[b], so every c_x gains s_in[b]·s_x − s_out[a]·s_x.
            for a2 in (0..po).filter(|&a2| !moved_out[a2]) {
                c_out[a2] += self.g_oi[a2 * pi + b] - self.g_oo[a2 * po + a];
            }
            for b2 in (0..pi).filter(|&b2| !moved_in[b2]) {
                c_in[b2] += self.g_ii[b2 * pi + b] - self.g_oi[a * pi + b2];
            }
            if cur < best {
                best = cur;
                best_len = moves.len();
            }
            if moves.len() - best_len >= KL_DEPTH {
                break;
            }
            // swap_value split into its per-candidate parts; +∞ marks the moved ones.
            for (b, g) in gain_in.iter_mut().enumerate() {
                *g = if moved_in[b] {
                    f64::INFINITY
                } else {
                    2.0 * c_in[b] + self.n_in[b]
                };
            }
            let mut pick: Option<(usize, usize, f64)> = None;
            for a in (0..po).filter(|&a| !moved_out[a]) {
                // The row's least value (one vectorised pass), and its position only when
                // the row becomes the pick (rarely, once the pick is good). A −0 least and the
                // first position's +0 compare equal, so the test is the scan's; the value kept
                // is the first position's own.
                let row = &self.g_oi[a * pi..(a + 1) * pi];
                let least = least_difference(&gain_in, row);
                if least >= f64::INFINITY {
                    continue;
                }
                let base = cur - 2.0 * c_out[a] + self.n_out[a];
                if pick.is_none_or(|(_, _, pv)| base + least < pv) {
                    if let Some((b, own)) = first_min(&gain_in, row) {
                        pick = Some((a, b, base + own));
                    }
                }
            }
            next = pick.map(|(a, b, _)| (a, b));
        }
        moves.truncate(best_len);
        (best, moves)
    }
}

/// The first b with the smallest g_b − 2·x_b below +∞, and that value: what a scan keeping
/// the first strictly smaller value finds, in two passes the compiler vectorises
/// (`least_difference`, then the first b that reaches it) instead of one that it cannot. The
/// values are computed the same way in both passes and the one returned is the first b's own,
/// so the answer is the scan's to the bit (a −0 minimum after a +0 still yields the +0 at the
/// smaller b). The inputs are never NaN: g is finite or +∞, x finite.
fn first_min(gain: &[f64], row: &[f64]) -> Option<(usize, f64)> {
    let n = gain.len().min(row.len());
    let (gain, row) = (&gain[..n], &row[..n]);
    let least = least_difference(gain, row);
    if least >= f64::INFINITY {
        return None;
    }
    let b = (0..n).find(|&b| gain[b] - 2.0 * row[b] == least)?;
    Some((b, gain[b] - 2.0 * row[b]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `first_min` answers what the plain scan answers, to the bit: ties (the first b wins),
    /// +∞ entries (moved candidates), a −0 after a +0, tails of every length, all +∞.
    #[test]
    fn first_min_is_the_first_strict_minimum() {
        let scan = |g: &[f64], x: &[f64]| {
            let (mut best, mut at) = (f64::INFINITY, None);
            for (b, (&g, &x)) in g.iter().zip(x).enumerate() {
                let v = g - 2.0 * x;
                if v < best {
                    (best, at) = (v, Some(b));
                }
            }
            at.map(|b| (b, best.to_bits()))
        };
        let mut rng = crate::Rng::new(7, crate::Stream::Select, 0, 0);
        for n in 0..40 {
            for round in 0..50 {
                let g: Vec<f64> = (0..n)
                    .map(|b| match (round + b) % 7 {
                        0 => f64::INFINITY,
                        1 => 0.0,
                        _ => (rng.below(5) as f64) - 2.0,
                    })
                    .collect();
                let x: Vec<f64> = (0..n)
                    .map(|b| match (round * 3 + b) % 5 {
                        0 => 0.0,
                        1 => -0.0,
                        _ => (rng.below(3) as f64) * 0.5,
                    })
                    .collect();
                let got = first_min(&g, &x).map(|(b, v)| (b, v.to_bits()));
                assert_eq!(got, scan(&g, &x), "n {n} round {round}");
            }
        }
        assert_eq!(first_min(&[f64::INFINITY; 9], &[1.0; 9]), None);
        // +0 at b = 0 (0 − 2·0), −0 at b = 1 (−0 − 2·0 is −0): the scan keeps b = 0 and +0.
        let got = first_min(&[0.0, -0.0], &[0.0, 0.0]).unwrap();
        assert_eq!((got.0, got.1.to_bits()), (0, 0.0f64.to_bits()));
    }
}

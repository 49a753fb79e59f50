//! The `budget` key (docs/policies.md, section "A budget fixed in advance"): the run's total
//! sample-visits, as a fraction b of `epochs`·N, fixed before training starts. The per-epoch
//! counts K_0 … K_{E−1} are a pure function of (b, E, N, the policy's full-data epochs), so the
//! run's batch count is known up front; each policy is told its epoch's K (`Policy::set_keep`)
//! and spends it by its own rule, and `Budgeted` then holds the selection to exactly K.

use super::{PlanContext, Policy, Selection};
use crate::error::{Error, Result};
use crate::rng::{Rng, Stream};
use crate::scores::ScoreFields;

/// The most epochs `policy.epochs` may name. The run's per-epoch counts (`schedule`,
/// `planned_counts`, `total_batches`) are a vector of that length, made when the loader is
/// created: without a bound, a hostile value would abort the host process on allocation.
pub const MAX_EPOCHS: u64 = 1 << 20;

/// Checks `epochs` (1 … MAX_EPOCHS when given), and a budget fraction: 0 < b ≤ 1, with
/// `epochs` given.
pub(crate) fn check_epochs_and_budget(budget: Option<f64>, epochs: Option<u64>) -> Result<()> {
    match epochs {
        Some(0) => return Err(Error::invalid("config key `policy.epochs`: must be ≥ 1")),
        Some(e) if e > MAX_EPOCHS => {
            return Err(Error::invalid(format!(
                "config key `policy.epochs`: {e} is out of range 1..={MAX_EPOCHS}"
            )))
        }
        _ => {}
    }
    let Some(b) = budget else {
        return Ok(());
    };
    if !(b > 0.0 && b <= 1.0) {
        return Err(Error::invalid(format!(
            "config key `policy.budget`: {b} is out of range (0, 1]"
        )));
    }
    match epochs {
        None => Err(Error::invalid(
            "config key `policy.epochs`: required with `policy.budget` (the budget is a share \
             of epochs·N sample-visits)",
        )),
        Some(_) => Ok(()),
    }
}

/// T = round(b·E·N), the run's sample-visits.
pub fn total_visits(n: usize, budget: f64, epochs: u64) -> u64 {
    let x = budget * epochs as f64 * n as f64;
    // Nudged like the policies' other products of config decimals (0.3·10·10 is
    // 30.000000000000004 or 29.999999999999996 depending on the order of operations).
    ((x + x.abs() * 1e-12 + 1e-9).round() as u64).min(epochs * n as u64)
}

/// The per-epoch counts: the epochs marked in `full` (the ones the policy spends on full data:
/// nothing seen yet, scoring or annealing epochs) get N each and the rest share what is left
/// evenly, the earlier epochs taking the remainder one sample each; when T cannot pay for the
/// full epochs, every epoch shares T evenly instead.
pub fn schedule(n: usize, budget: f64, epochs: u64, full: &[bool]) -> Vec<usize> {
    let e = epochs as usize;
    debug_assert_eq!(full.len(), e);
    let t = total_visits(n, budget, epochs);
    let f = full.iter().filter(|&&x| x).count() as u64;
    let even = |total: u64, slots: u64, j: u64| -> usize {
        (total / slots + u64::from(j < total % slots)) as usize
    };
    if f > 0 && t >= f * n as u64 && (f as usize) < e {
        let rest = t - f * n as u64;
        let m = e as u64 - f;
        let mut j = 0;
        full.iter()
            .map(|&is_full| {
                if is_full {
                    n
                } else {
                    j += 1;
                    even(rest, m, j - 1)
                }
            })
            .collect()
    } else {
        (0..e as u64).map(|j| even(t, e as u64, j)).collect()
    }
}

/// A policy held to the schedule's count every epoch. Epochs past the schedule repeat its last
/// count.
pub struct Budgeted {
    inner: Box<dyn Policy>,
    counts: Vec<usize>,
    positions: Vec<usize>,
    present: Vec<bool>,
}

impl Budgeted {
    pub fn new(inner: Box<dyn Policy>, counts: Vec<usize>) -> Self {
        assert!(!counts.is_empty());
        Budgeted {
            inner,
            counts,
            positions: Vec::new(),
            present: Vec::new(),
        }
    }

    fn count(&self, epoch: u64) -> usize {
        self.counts[(epoch as usize).min(self.counts.len() - 1)]
    }
}

/// Holds `out` to exactly `k` ids: a surplus is dropped uniformly at random, a shortfall filled
/// uniformly from the ids not selected (weight 1), both with (seed, budget stream, epoch); the
/// result stays ascending by id.
pub(crate) fn hold_to(
    out: &mut Selection,
    k: usize,
    n: usize,
    seed: u64,
    epoch: u64,
    positions: &mut Vec<usize>,
    present: &mut Vec<bool>,
) {
    let len = out.len();
    if len == k {
        return;
    }
    let mut rng = Rng::new(seed, Stream::Budget, epoch, 0);
    if len > k {
        positions.clear();
        positions.extend(0..len);
        rng.choose_front(positions, k);
        let keep = &mut positions[..k];
        keep.sort_unstable();
        let ids = keep.iter().map(|&p| out.ids[p]).collect();
        let weights = keep.iter().map(|&p| out.weights[p]).collect();
        out.ids = ids;
        out.weights = weights;
        return;
    }
    present.clear();
    present.resize(n, false);
    for &id in &out.ids {
        present[id as usize] = true;
    }
    let mut pool: Vec<u64> = (0..n as u64).filter(|&id| !present[id as usize]).collect();
    let fill = (k - len).min(pool.len());
    rng.choose_front(&mut pool, fill);
    let mut pairs: Vec<(u64, f32)> = out
        .ids
        .iter()
        .copied()
        .zip(out.weights.iter().copied())
        .collect();
    pairs.extend(pool[..fill].iter().map(|&id| (id, 1.0)));
    pairs.sort_unstable_by_key(|p| p.0);
    out.ids = pairs.iter().map(|p| p.0).collect();
    out.weights = pairs.iter().map(|p| p.1).collect();
}

impl Policy for Budgeted {
    fn needs(&self) -> ScoreFields {
        self.inner.needs()
    }

    fn select(&mut self, ctx: &PlanContext<'_>, out: &mut Selection) {
        let k = self.count(ctx.epoch);
        self.inner.set_keep(Some(k));
        self.inner.select(ctx, out);
        let n = ctx.scores.len();
        hold_to(
            out,
            k,
            n,
            ctx.seed,
            ctx.epoch,
            &mut self.positions,
            &mut self.present,
        );
    }

    fn set_keep(&mut self, keep: Option<usize>) {
        self.inner.set_keep(keep)
    }

    fn save_state(&self) -> Vec<u8> {
        self.inner.save_state()
    }

    fn load_state(&mut self, bytes: &[u8]) -> bool {
        self.inner.load_state(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_sums_to_the_budget() {
        for n in [1usize, 7, 100, 1001] {
            for e in [1u64, 2, 5, 8] {
                for b in [0.05, 0.3, 0.5, 0.7, 1.0] {
                    for warm in 0..=e as usize {
                        let full: Vec<bool> = (0..e as usize).map(|i| i < warm).collect();
                        let k = schedule(n, b, e, &full);
                        let t: u64 = k.iter().map(|&x| x as u64).sum();
                        assert_eq!(t, total_visits(n, b, e), "n {n} e {e} b {b} warm {warm}");
                        assert!(k.iter().all(|&x| x <= n));
                    }
                }
            }
        }
    }

    #[test]
    fn full_epochs_get_everything_when_affordable() {
        // N = 100, E = 4, b = 0.5: T = 200; epoch 0 full, 100 left over 3 epochs (34, 33, 33).
        assert_eq!(
            schedule(100, 0.5, 4, &[true, false, false, false]),
            vec![100, 34, 33, 33]
        );
        // b = 0.2: T = 80 cannot pay for the full epoch, so all four share it.
        assert_eq!(
            schedule(100, 0.2, 4, &[true, false, false, false]),
            vec![20, 20, 20, 20]
        );
        assert_eq!(schedule(10, 0.25, 2, &[false, false]), vec![3, 2]);
    }

    #[test]
    fn hold_to_trims_and_fills_exactly() {
        let mut sel = Selection::default();
        for id in [1u64, 3, 4, 8, 9] {
            sel.push(id, id as f32);
        }
        let (mut p, mut q) = (Vec::new(), Vec::new());
        let mut trimmed = sel.clone();
        hold_to(&mut trimmed, 3, 10, 7, 0, &mut p, &mut q);
        assert_eq!(trimmed.len(), 3);
        assert!(trimmed.ids.windows(2).all(|w| w[0] < w[1]));
        for (id, w) in trimmed.ids.iter().zip(&trimmed.weights) {
            assert!(sel.ids.contains(id));
            assert_eq!(*w, *id as f32, "a weight stays with its id");
        }
        let mut filled = sel.clone();
        hold_to(&mut filled, 8, 10, 7, 0, &mut p, &mut q);
        assert_eq!(filled.len(), 8);
        assert!(filled.ids.windows(2).all(|w| w[0] < w[1]));
        for id in &sel.ids {
            assert!(filled.ids.contains(id));
        }
        let mut same = sel.clone();
        hold_to(&mut same, 5, 10, 7, 0, &mut p, &mut q);
        assert_eq!(same, sel);
    }
}

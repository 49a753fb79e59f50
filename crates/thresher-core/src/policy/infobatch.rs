//! `infobatch` (Qin et al., ICLR 2024; docs/policies.md, section "infobatch"): score = `loss_last`.
//! Before the annealing epochs, a random r-share of the well-learned samples (seen, loss below the
//! mean over seen samples) is dropped and the rest of them are up-weighted by 1/(1-r), so that the
//! expected gradient matches full data; from epoch ⌊δ·E⌋ on, full data at weight 1 removes the
//! remaining bias. Never-seen samples are always kept at weight 1.

use serde::Deserialize;

use super::finite_stats::mean_std_seen_finite;
use super::{
    check_prune, extend_by_class, extend_where, fits_u32, id_lists, ListedId, PlanContext, Policy,
    Selection,
};
use crate::error::{Error, Result};
use crate::rng::{Rng, Stream};
use crate::scores::{ScoreBook, ScoreFields};

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct InfoBatchConfig {
    /// r, the fraction of the below-mean samples dropped each pruned epoch.
    #[serde(default = "default_prune")]
    pub prune: f64,
    /// δ, the fraction of the run that is pruned before full-data annealing.
    #[serde(default = "default_anneal")]
    pub anneal: f64,
    /// E, the run's total epochs. Required: the annealing point depends on it.
    pub epochs: u64,
    /// The run's total sample-visits as a share of `epochs`·N (docs/policies.md, "A budget
    /// fixed in advance"); replaces `prune`.
    #[serde(default)]
    pub budget: Option<f64>,
}

fn default_prune() -> f64 {
    0.5
}
fn default_anneal() -> f64 {
    0.875
}

impl InfoBatchConfig {
    pub fn validate(&self) -> Result<()> {
        check_prune("policy.prune", self.prune)?;
        if !(0.0..=1.0).contains(&self.anneal) {
            return Err(Error::invalid(format!(
                "config key `policy.anneal`: {} is out of range 0..=1",
                self.anneal
            )));
        }
        // The same bounds on `epochs` as every policy's (1 … MAX_EPOCHS).
        super::budget::check_epochs_and_budget(None, Some(self.epochs))
    }

    /// ⌊δ·E⌋, the first full-data epoch.
    pub fn anneal_start(&self) -> u64 {
        snap(self.anneal * self.epochs as f64).floor() as u64
    }

    /// The epochs of the run (`epochs` of them) on N = `n` samples that a `budget` pays in
    /// full: epoch 0 (nothing is seen, so nothing can be pruned) and the annealing epochs
    /// e ≥ ⌊δ·E⌋, the latter only while what is left after them still gives every pruned epoch
    /// at least (1 − r)·N samples, the least a pruned epoch keeps by the rule without a budget.
    /// A tighter budget drops the annealing epochs (they are then pruned like the others):
    /// paying for them starved the epochs between, which then trained worse than random
    /// pruning at the same visits (measured in docs/policies.md, "A budget fixed in advance").
    pub fn budget_full_epochs(&self, n: usize) -> Vec<bool> {
        let e = self.epochs;
        let a = self.anneal_start();
        let mut full: Vec<bool> = (0..e).map(|i| i == 0 || i >= a).collect();
        let Some(b) = self.budget else {
            return full;
        };
        let f = full.iter().filter(|&&x| x).count() as u64;
        let t = super::budget::total_visits(n, b, e);
        let left = t.saturating_sub(f * n as u64) as f64;
        let floor = (e - f) as f64 * (1.0 - self.prune) * n as f64;
        if f < e && left < floor {
            for (i, x) in full.iter_mut().enumerate() {
                *x = i == 0;
            }
        }
        full
    }

    /// The weight of a kept below-mean sample, 1/(1-r), rounded once from f64.
    pub fn rescale_weight(&self) -> f32 {
        (1.0f64 / (1.0 - self.prune)) as f32
    }
}

/// Nudges a product of config decimals up past float error before ⌊·⌋ or round(): 0.29·100 is
/// 28.999999999999996 in f64 and must floor to 29. The relative term covers large operands.
fn snap(x: f64) -> f64 {
    x + x.abs() * 1e-12 + 1e-9
}

/// round(r·|W|), the number of below-mean samples dropped.
fn drop_count(prune: f64, below: usize) -> usize {
    (snap(prune * below as f64).round() as usize).min(below)
}

pub struct InfoBatch {
    config: InfoBatchConfig,
    /// The epoch's count under a `budget`.
    keep: Option<usize>,
    n: usize,
    // Scratch reused across epochs.
    /// The pool W (or the budget's pool), as u32 when every id fits one (half the bytes to
    /// write and to swap at random positions), else as u64.
    below32: Vec<u32>,
    below64: Vec<u64>,
    /// Per id: 0 = not below the mean, 1 = below and kept, 2 = dropped.
    class: Vec<u8>,
}

const ABOVE: u8 = 0;
const BELOW: u8 = 1;
const DROPPED: u8 = 2;

impl InfoBatch {
    pub fn new(config: InfoBatchConfig, n: usize) -> Self {
        let (below32, below64) = id_lists(n);
        InfoBatch {
            config,
            keep: None,
            n,
            below32,
            below64,
            class: crate::util::huge::with_capacity(n),
        }
    }

    /// ⌊δ·E⌋, the first epoch of full data.
    pub fn anneal_start(&self) -> u64 {
        self.config.anneal_start()
    }
}

/// Under a `budget`, a pruned epoch drops exactly `drop` samples: from W (`below` on entry)
/// while that is at most the share r of it, otherwise from the ⌈drop/r⌉ lowest-loss seen
/// samples (W grown upward by (loss, id), at most all seen samples). `below` becomes that pool,
/// in id order; returns how many of it to drop and the weight of the rest: |pool|/(|pool| −
/// drop) (the kept share's inverse, as 1/(1 − r) is without a budget), at most 1/(1 − r). Once
/// the pool is every seen sample a tight budget drops far more than the share r of it, and
/// the inverse grows without bound (a weight of 15 made the reference trainer's loss NaN);
/// capped at 1/(1 − r), the kept samples count at most what they would without a budget.
fn budget_pool<T: ListedId>(
    below: &mut Vec<T>,
    book: &ScoreBook,
    config: &InfoBatchConfig,
    drop: usize,
) -> (usize, f32) {
    let r = config.prune;
    let loss = book.loss_last();
    let n = book.len();
    let want = if r > 0.0 {
        snap(drop as f64 / r).ceil() as usize
    } else {
        usize::MAX
    };
    if want > below.len() {
        let mut seen: Vec<T> = (0..n)
            .filter(|&i| scored(book, i))
            .map(T::from_id)
            .collect();
        let size = want.min(seen.len());
        seen.sort_unstable_by(|&a, &b| {
            loss[a.index()]
                .total_cmp(&loss[b.index()])
                .then(a.index().cmp(&b.index()))
        });
        seen.truncate(size);
        seen.sort_unstable_by_key(|&id| id.index());
        *below = seen;
    }
    let pool = below.len();
    let drop = drop.min(pool);
    let weight = if pool > drop {
        ((pool as f64 / (pool - drop) as f64) as f32).min(config.rescale_weight())
    } else {
        1.0
    };
    (drop, weight)
}

/// The pruned epoch's draw over W: marks each id of `class` ABOVE, BELOW (kept, rescaled) or
/// DROPPED, and returns the weight of the BELOW ones. W is marked by one pass over the ids,
/// then listed into `below` in id order (so the draw depends on the set alone) and drawn from
/// by selection sampling over the list, which writes the marks in id order. Generic in the
/// width of the listed ids; the same draw whatever the width.
fn mark_drops<T: ListedId>(
    below: &mut Vec<T>,
    class: &mut Vec<u8>,
    book: &ScoreBook,
    mean: f64,
    config: &InfoBatchConfig,
    keep: Option<usize>,
    rng: &mut Rng,
) -> f32 {
    let n = book.len();
    // A NaN mean (nothing seen) compares false: W is empty and the epoch is full data.
    class.clear();
    class.resize(n, ABOVE);
    below_mean_wide(book.seen(), book.loss_last(), mean, class);
    below.clear();
    extend_where(below, n, |i| class[i] == BELOW);
    let (drop, rescaled) = match keep {
        None => (
            drop_count(config.prune, below.len()),
            config.rescale_weight(),
        ),
        Some(k) => {
            let w = below.len();
            let pool = budget_pool(below, book, config, n.saturating_sub(k));
            if below.len() != w {
                // The pool grew past W (it holds W: the lowest losses): mark the rest of it.
                below.iter().for_each(|&i| class[i.index()] = BELOW);
            }
            pool
        }
    };
    // Every listed id is BELOW: each becomes DROPPED (BELOW + 1) when drawn.
    for (&i, take) in below.iter().zip(rng.picks(below.len(), drop)) {
        class[i.index()] = BELOW + u8::from(take);
    }
    rescaled
}

// The pass that marks W, as wide as the CPU allows (per id with a branch, it and the mean's
// one chain of f64 additions were most of the plan at 1.28M ids).
crate::util::widest!(fn below_mean_wide(seen: &[u32], loss: &[f32], mean: f64, class: &mut [u8]) = below_rows);

/// `class[i]` = BELOW for the ids of W (in S and below `mean`); the others are left as they
/// are (ABOVE).
#[inline(always)]
fn below_rows(seen: &[u32], loss: &[f32], mean: f64, class: &mut [u8]) {
    for ((m, &c), &v) in class.iter_mut().zip(seen).zip(loss) {
        // `< mean` is false for NaN and +∞; `is_finite` also leaves out −∞ (feedback refuses
        // it, a restored book need not).
        let w = (c > 0) & v.is_finite() & ((v as f64) < mean);
        *m |= u8::from(w) * BELOW;
    }
}

/// The ids that count as seen here: with feedback and a finite `loss_last` (a book restored
/// from elsewhere might lack the loss; such an id is treated as never seen rather than
/// poisoning the mean).
fn scored(book: &ScoreBook, id: usize) -> bool {
    book.is_seen(id) && book.loss_last()[id].is_finite()
}

impl Policy for InfoBatch {
    fn needs(&self) -> ScoreFields {
        ScoreFields::LOSS_LAST
    }

    fn set_keep(&mut self, keep: Option<usize>) {
        self.keep = keep;
    }

    fn select(&mut self, ctx: &PlanContext<'_>, out: &mut Selection) {
        let book = ctx.scores;
        let n = book.len();
        debug_assert_eq!(n, self.n);
        let loss = book.loss_last();
        // μ over S, summed in `lane_sums`' 16 interleaved lanes.
        let (mean, std) = mean_std_seen_finite(book.seen(), loss);
        (out.score_mean, out.score_std) = (mean, std);
        // ≥, not ==: a run that goes past E epochs (or resumes past ⌊δ·E⌋) stays on full data.
        // An annealing epoch that a budget does not pay in full (it could not afford it, see
        // `budget_full_epochs`) is pruned like the others.
        let paid = self.keep.is_none_or(|k| k >= n);
        if ctx.epoch >= self.anneal_start() && paid {
            out.ids.extend(0..n as u64);
            out.weights.resize(n, 1.0);
            return;
        }
        let mut rng = Rng::new(ctx.seed, Stream::Select, ctx.epoch, 0);
        let (config, keep, class) = (&self.config, self.keep, &mut self.class);
        let rescaled = if fits_u32(n) {
            mark_drops(&mut self.below32, class, book, mean, config, keep, &mut rng)
        } else {
            mark_drops(&mut self.below64, class, book, mean, config, keep, &mut rng)
        };
        // Every id but the dropped, in id order, weighted by class.
        let mut weight = [1.0f32; 4];
        weight[BELOW as usize] = rescaled;
        extend_by_class(out, &self.class, DROPPED, weight);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::policy::{mean_std, PolicyConfig};
    use crate::scores::Feedback;
    use std::collections::BTreeSet;

    fn config(prune: f64, anneal: f64, epochs: u64) -> InfoBatchConfig {
        InfoBatchConfig {
            budget: None,
            prune,
            anneal,
            epochs,
        }
    }

    /// A book fed one epoch of feedback: id i gets `loss[i]`, or nothing when it is NaN.
    fn book(loss: &[f32]) -> ScoreBook {
        let mut b = ScoreBook::new(loss.len(), ScoreFields::LOSS_LAST);
        let ids: Vec<u64> = (0..loss.len() as u64)
            .filter(|&i| !loss[i as usize].is_nan())
            .collect();
        let l: Vec<f32> = ids.iter().map(|&i| loss[i as usize]).collect();
        let fb = Feedback {
            ids: &ids,
            loss: &l,
            ..Default::default()
        };
        b.feedback(&fb, 0).unwrap();
        b
    }

    fn run(policy: &mut InfoBatch, book: &ScoreBook, epoch: u64, seed: u64) -> Selection {
        let mut out = Selection::default();
        out.clear();
        let ctx = PlanContext {
            epoch,
            seed,
            scores: book,
        };
        policy.select(&ctx, &mut out);
        out
    }

    fn weight_of(s: &Selection, id: u64) -> Option<f32> {
        s.ids.iter().position(|&i| i == id).map(|at| s.weights[at])
    }

    #[test]
    fn at_or_above_mean_always_kept_at_weight_one() {
        // Mean 3: ids 2 (= mean), 3 and 4 are never dropped.
        let b = book(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        let mut p = InfoBatch::new(config(0.9, 0.875, 1000), 5);
        for e in 0..200 {
            let s = run(&mut p, &b, e, 3);
            for id in 2..5 {
                assert_eq!(weight_of(&s, id), Some(1.0), "epoch {e} id {id}");
            }
            // r = 0.9 of |W| = 2 → round(1.8) = 2 dropped.
            assert_eq!(s.ids, vec![2, 3, 4]);
        }
    }

    #[test]
    fn drops_exactly_round_r_w_and_rescales_the_rest() {
        // (|W|, r, round(r·|W|)) with odd sizes and halves where rounding matters.
        for (w, r, dropped) in [
            (1, 0.5, 1),
            (3, 0.5, 2),
            (5, 0.3, 2),
            (7, 0.5, 4),
            (9, 0.25, 2),
            (10, 0.45, 5),
            (4, 0.9, 4),
            (11, 0.1, 1),
            (6, 0.0, 0),
            (13, 0.7, 9),
        ] {
            // |W| ids with loss 0, then 4 ids with loss 1: the mean is in between.
            let loss: Vec<f32> = (0..w + 4).map(|i| if i < w { 0.0 } else { 1.0 }).collect();
            let b = book(&loss);
            let mut p = InfoBatch::new(config(r, 0.875, 100), loss.len());
            let expected = (1.0f64 / (1.0 - r)) as f32;
            for e in 0..5 {
                let s = run(&mut p, &b, e, 1);
                assert_eq!(s.len(), w + 4 - dropped, "|W|={w} r={r}");
                for (&id, &weight) in s.ids.iter().zip(&s.weights) {
                    if id < w as u64 {
                        assert_eq!(weight, expected, "|W|={w} r={r}");
                    } else {
                        assert_eq!(weight, 1.0);
                    }
                }
                assert!(s.ids.windows(2).all(|x| x[0] < x[1]));
            }
        }
    }

    #[test]
    fn rescale_weight_is_rounded_once_from_f64() {
        for r in [0.3, 0.5, 0.7, 0.9, 0.1] {
            assert_eq!(
                config(r, 0.875, 10).rescale_weight(),
                (1.0f64 / (1.0 - r)) as f32
            );
        }
        assert_eq!(config(0.5, 0.875, 10).rescale_weight(), 2.0);
    }

    #[test]
    fn full_data_from_floor_delta_e() {
        let loss: Vec<f32> = (0..50).map(|i| i as f32).collect();
        let b = book(&loss);
        // δ·E = 78.75: epoch 77 pruned, 78 the first full epoch.
        let mut p = InfoBatch::new(config(0.5, 0.875, 90), 50);
        assert_eq!(p.anneal_start(), 78);
        for e in [0, 1, 77] {
            assert!(run(&mut p, &b, e, 0).len() < 50, "epoch {e} is pruned");
        }
        for e in [78, 79, 89, 90, 500] {
            let s = run(&mut p, &b, e, 0);
            assert_eq!(s.ids, (0..50).collect::<Vec<_>>(), "epoch {e}");
            assert!(s.weights.iter().all(|&w| w == 1.0));
            assert!((s.score_mean - 24.5).abs() < 1e-9, "stats still reported");
        }
    }

    #[test]
    fn anneal_start_survives_float_error() {
        for (delta, e, start) in [
            (0.29, 100, 29), // 0.29·100 = 28.999999999999996
            (0.57, 100, 57), // 56.99999999999999
            (0.58, 100, 58),
            (0.875, 90, 78),
            (0.875, 80, 70),
            (0.7, 10, 7),
            (0.1, 30, 3),
            (1.0, 7, 7),
            (0.0, 7, 0),
            (0.5, 1, 0),
        ] {
            assert_eq!(
                config(0.5, delta, e).anneal_start(),
                start,
                "δ={delta} E={e}"
            );
        }
        let b = book(&(0..20).map(|i| i as f32).collect::<Vec<_>>());
        let mut p = InfoBatch::new(config(0.5, 0.29, 100), 20);
        assert!(run(&mut p, &b, 28, 0).len() < 20);
        assert_eq!(run(&mut p, &b, 29, 0).len(), 20);
    }

    #[test]
    fn never_seen_kept_at_weight_one() {
        let nan = f32::NAN;
        // Seen: ids 0..6 with mean 2.5; ids 6..9 never seen.
        let b = book(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, nan, nan, nan]);
        let mut p = InfoBatch::new(config(0.9, 0.875, 100), 9);
        for e in 0..20 {
            let s = run(&mut p, &b, e, 5);
            for id in 3..9 {
                assert_eq!(weight_of(&s, id), Some(1.0), "epoch {e} id {id}");
            }
            // W = {0, 1, 2}: round(2.7) = 3 dropped.
            assert_eq!(s.len(), 6);
            assert!((s.score_mean - 2.5).abs() < 1e-9);
        }
        // Epoch 0 on a fresh book: full data.
        let fresh = ScoreBook::new(9, ScoreFields::LOSS_LAST);
        let s = run(&mut p, &fresh, 0, 5);
        assert_eq!(s.ids, (0..9).collect::<Vec<_>>());
        assert!(s.weights.iter().all(|&w| w == 1.0));
        assert!(s.score_mean.is_nan() && s.score_std.is_nan());
    }

    #[test]
    fn epochs_drop_different_subsets_deterministically() {
        let loss: Vec<f32> = (0..200).map(|i| ((i * 37) % 200) as f32).collect();
        let b = book(&loss);
        let mut p = InfoBatch::new(config(0.5, 0.875, 100), 200);
        let sets: Vec<BTreeSet<u64>> = (0..10)
            .map(|e| run(&mut p, &b, e, 2).ids.into_iter().collect())
            .collect();
        for e in 1..10 {
            assert_ne!(sets[e], sets[e - 1]);
        }
        // A fresh policy, same inputs: same plan. Another seed: another plan.
        let mut q = InfoBatch::new(config(0.5, 0.875, 100), 200);
        assert_eq!(
            run(&mut q, &b, 3, 2)
                .ids
                .into_iter()
                .collect::<BTreeSet<_>>(),
            sets[3]
        );
        assert_ne!(
            run(&mut q, &b, 3, 9)
                .ids
                .into_iter()
                .collect::<BTreeSet<_>>(),
            sets[3]
        );
    }

    /// Each member of W is dropped with probability round(r·|W|)/|W| per epoch; a chi-square
    /// test of the drop counts against that expectation.
    #[test]
    fn drops_are_uniform_over_w() {
        // |W| = 30 (loss 0), 10 above (loss 1); r = 0.3 → 9 dropped per epoch.
        let loss: Vec<f32> = (0..40)
            .map(|i| if i % 4 == 3 { 1.0 } else { 0.0 })
            .collect();
        let b = book(&loss);
        let w: Vec<usize> = (0..40).filter(|i| i % 4 != 3).collect();
        assert_eq!(w.len(), 30);
        let mut p = InfoBatch::new(config(0.3, 1.0, 100_000), 40);
        let epochs = 3000u64;
        let mut drops = vec![0f64; 40];
        for e in 0..epochs {
            let s = run(&mut p, &b, e, 8);
            assert_eq!(s.len(), 31);
            let kept: BTreeSet<u64> = s.ids.into_iter().collect();
            for &i in &w {
                if !kept.contains(&(i as u64)) {
                    drops[i] += 1.0;
                }
            }
        }
        let q = 9.0 / 30.0;
        let expected = epochs as f64 * q;
        let var = epochs as f64 * q * (1.0 - q);
        let chi2: f64 = w.iter().map(|&i| (drops[i] - expected).powi(2) / var).sum();
        // 29 degrees of freedom: mean 29, sd ≈ 7.6.
        assert!(chi2 < 29.0 + 5.0 * 7.6, "chi2 = {chi2}");
        assert!(chi2 > 5.0, "suspiciously even: chi2 = {chi2}");
    }

    fn config_err(policy: &str) -> String {
        Config::from_json(&format!(r#"{{"policy": {policy}}}"#))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn config_defaults_and_errors_name_their_key() {
        let c = Config::from_json(r#"{"policy": {"kind": "infobatch", "epochs": 10}}"#).unwrap();
        let PolicyConfig::InfoBatch(c) = c.policy else {
            panic!("wrong kind")
        };
        assert_eq!((c.prune, c.anneal, c.epochs), (0.5, 0.875, 10));
        let e = config_err(r#"{"kind": "infobatch", "epochs": 10, "explore": 0.1}"#);
        assert!(e.contains("explore"), "{e}");
        let e = config_err(r#"{"kind": "infobatch", "epochs": 10, "momentum": 0.8}"#);
        assert!(e.contains("momentum"), "{e}");
        let e = config_err(r#"{"kind": "infobatch"}"#);
        assert!(e.contains("epochs"), "{e}");
        for (bad, key) in [
            (r#""epochs": 0"#, "policy.epochs"),
            (r#""epochs": 10, "anneal": 1.5"#, "policy.anneal"),
            (r#""epochs": 10, "anneal": -0.1"#, "policy.anneal"),
            (r#""epochs": 10, "prune": 0.95"#, "policy.prune"),
        ] {
            let e = config_err(&format!(r#"{{"kind": "infobatch", {bad}}}"#));
            assert!(e.contains(key), "{bad}: {e}");
        }
        // A type error is refused too; serde's internally tagged enums report it at `policy`,
        // not at the key.
        assert!(Config::from_json(r#"{"policy": {"kind": "infobatch", "epochs": -1}}"#).is_err());
    }

    #[test]
    fn w_is_every_scored_id_below_the_mean_and_d_of_it_are_dropped() {
        // Never-seen ids (NaN), ties at a value near the mean, and more than one whole wide
        // step with a ragged tail. (Feedback refuses a non-finite loss; a restored book's
        // NaN loss on a seen id is the other case `scored` leaves out.)
        let n = 1003;
        let loss: Vec<f32> = (0..n)
            .map(|i| match i % 13 {
                0 => f32::NAN,
                1 | 2 => 0.5,
                _ => Rng::new(2, Stream::Augment, i as u64, 0).unit_f64() as f32,
            })
            .collect();
        let b = book(&loss);
        let (mean, std) = mean_std_seen_finite(b.seen(), b.loss_last());
        // The lanes' sums equal the sums in id order to rounding.
        let (want_mean, want_std) =
            mean_std((0..n).filter(|&i| scored(&b, i)).map(|i| b.loss_last()[i]));
        assert!(
            (mean - want_mean).abs() <= 1e-12 * want_mean.abs(),
            "{mean} {want_mean}"
        );
        assert!(
            (std - want_std).abs() <= 1e-9 * want_std.abs(),
            "{std} {want_std}"
        );
        let w: Vec<usize> = (0..n)
            .filter(|&i| scored(&b, i) && (b.loss_last()[i] as f64) < mean)
            .collect();
        let c = config(0.4, 0.875, 10);
        let mut class = Vec::new();
        let mut rng = Rng::new(5, Stream::Select, 1, 0);
        let weight = mark_drops(
            &mut Vec::<u32>::new(),
            &mut class,
            &b,
            mean,
            &c,
            None,
            &mut rng,
        );
        assert_eq!(weight, c.rescale_weight());
        let marked: Vec<usize> = (0..n).filter(|&i| class[i] != ABOVE).collect();
        assert_eq!(marked, w, "W");
        let dropped = (0..n).filter(|&i| class[i] == DROPPED).count();
        assert_eq!(dropped, drop_count(0.4, w.len()));
    }

    #[test]
    fn the_u32_pool_draws_what_the_u64_pool_draws() {
        let n = 5000;
        let loss: Vec<f32> = (0..n)
            .map(|i| match i % 11 {
                0 => f32::NAN,
                _ => Rng::new(1, Stream::Augment, i as u64, 0).unit_f64() as f32,
            })
            .collect();
        let b = book(&loss);
        let (mean, _) = mean_std((0..n).filter(|&i| scored(&b, i)).map(|i| b.loss_last()[i]));
        for keep in [None, Some(4000), Some(1000), Some(0)] {
            for prune in [0.0, 0.3, 0.5] {
                let c = config(prune, 0.875, 10);
                // The weight and the classes, with the pool listed at width T.
                fn draw<T: ListedId>(
                    b: &ScoreBook,
                    mean: f64,
                    c: &InfoBatchConfig,
                    keep: Option<usize>,
                ) -> (f32, Vec<u8>) {
                    let mut class = Vec::new();
                    let mut rng = Rng::new(5, Stream::Select, 1, 0);
                    let w =
                        mark_drops(&mut Vec::<T>::new(), &mut class, b, mean, c, keep, &mut rng);
                    (w, class)
                }
                let ((w32, c32), (w64, c64)) = (
                    draw::<u32>(&b, mean, &c, keep),
                    draw::<u64>(&b, mean, &c, keep),
                );
                assert_eq!((w32, &c32), (w64, &c64), "keep {keep:?} prune {prune}");
                assert!(c32.contains(&DROPPED) || prune == 0.0 && keep.is_none());
            }
        }
    }
}

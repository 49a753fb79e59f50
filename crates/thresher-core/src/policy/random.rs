//! `random`: K = round((1-p)·N) ids drawn uniformly without replacement, re-drawn every `period`
//! epochs (Raju et al.'s uniform random dynamic pruning; docs/policies.md, section "random"). With
//! `rescale` each kept sample weighs 1/(1-p) (the InfoBatch authors' "random + rescale").

use serde::Deserialize;

use super::{budget, check_period, check_prune, PlanContext, Policy, Selection};
use crate::error::Result;
use crate::rng::{Rng, Stream};
use crate::scores::ScoreFields;

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RandomConfig {
    /// p, the fraction pruned each epoch.
    #[serde(default = "default_prune")]
    pub prune: f64,
    /// Epochs between re-draws.
    #[serde(default = "default_period")]
    pub period: u64,
    #[serde(default)]
    pub rescale: bool,
    /// The run's total sample-visits as a share of `epochs`·N (docs/policies.md, "A budget
    /// fixed in advance"); replaces `prune`.
    #[serde(default)]
    pub budget: Option<f64>,
    /// The run's epochs; needed by `budget`.
    #[serde(default)]
    pub epochs: Option<u64>,
}

fn default_prune() -> f64 {
    0.3
}
fn default_period() -> u64 {
    1
}

impl RandomConfig {
    pub fn validate(&self) -> Result<()> {
        check_prune("policy.prune", self.prune)?;
        check_period("policy.period", self.period)
    }
}

pub struct Random {
    config: RandomConfig,
    /// The epoch's count under a `budget`.
    keep: Option<usize>,
}

impl Random {
    pub fn new(config: RandomConfig, _n: usize) -> Self {
        Random { config, keep: None }
    }
}

impl Policy for Random {
    fn needs(&self) -> ScoreFields {
        ScoreFields::NONE
    }

    fn set_keep(&mut self, keep: Option<usize>) {
        self.keep = keep;
    }

    fn select(&mut self, ctx: &PlanContext<'_>, out: &mut Selection) {
        let n = ctx.scores.len();
        let k = self
            .keep
            .unwrap_or_else(|| budget(n, self.config.prune))
            .min(n);
        // Reset to the identity so the draw depends only on (seed, period index), not on the
        // previous epoch's permutation.
        // Drawn in place in the selection's own buffer (no scratch array to copy from).
        let start = out.ids.len();
        out.ids.extend(0..n as u64);
        let draw = ctx.epoch / self.config.period;
        Rng::new(ctx.seed, Stream::Select, draw, 0).choose_front(&mut out.ids[start..], k);
        out.ids.truncate(start + k);
        let weight = if self.config.rescale && self.keep.is_some() {
            // 1/(1 − p) with the epoch's own fraction p = 1 − K/N.
            (n as f64 / k.max(1) as f64) as f32
        } else if self.config.rescale {
            (1.0 / (1.0 - self.config.prune)) as f32
        } else {
            1.0
        };
        out.weights.resize(start + k, weight);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scores::ScoreBook;

    fn select(config: &RandomConfig, n: usize, epoch: u64) -> Selection {
        let book = ScoreBook::new(n, ScoreFields::NONE);
        let mut out = Selection::default();
        let ctx = PlanContext {
            epoch,
            seed: 9,
            scores: &book,
        };
        Random::new(config.clone(), n).select(&ctx, &mut out);
        out
    }

    fn config(prune: f64, period: u64, rescale: bool) -> RandomConfig {
        RandomConfig {
            budget: None,
            epochs: None,
            prune,
            period,
            rescale,
        }
    }

    #[test]
    fn exact_count_distinct_ids() {
        for (n, p, k) in [(1000, 0.3, 700), (10, 0.25, 8), (7, 0.5, 4), (1, 0.9, 0)] {
            let s = select(&config(p, 1, false), n, 0);
            assert_eq!(s.len(), k, "n={n} p={p}");
            let mut ids = s.ids.clone();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), k);
            assert!(ids.iter().all(|&i| i < n as u64));
            assert!(s.weights.iter().all(|&w| w == 1.0));
        }
    }

    #[test]
    fn rescale_weight_is_one_over_one_minus_p() {
        let s = select(&config(0.3, 1, true), 100, 0);
        assert!(s.weights.iter().all(|&w| w == (1.0f64 / 0.7) as f32));
    }

    #[test]
    fn period_keeps_the_draw() {
        let c = config(0.5, 3, false);
        let sorted = |e| {
            let mut v = select(&c, 200, e).ids;
            v.sort_unstable();
            v
        };
        assert_eq!(sorted(0), sorted(1));
        assert_eq!(sorted(0), sorted(2));
        assert_ne!(sorted(2), sorted(3));
        assert_eq!(sorted(3), sorted(5));
    }

    /// Each id's inclusion count over many epochs is Binomial(E, K/N); a chi-square test of the
    /// counts against the uniform expectation at a generous threshold.
    #[test]
    fn uniform_chi_square() {
        let (n, epochs) = (100usize, 2000u64);
        let c = config(0.3, 1, false);
        let mut counts = vec![0f64; n];
        let mut policy = Random::new(c, n);
        let book = ScoreBook::new(n, ScoreFields::NONE);
        let mut out = Selection::default();
        for e in 0..epochs {
            out.clear();
            let ctx = PlanContext {
                epoch: e,
                seed: 4,
                scores: &book,
            };
            policy.select(&ctx, &mut out);
            for &id in &out.ids {
                counts[id as usize] += 1.0;
            }
        }
        let expected = epochs as f64 * 0.7;
        // Variance of a binomial count is E·q·(1-q); chi2 statistic normalised accordingly has
        // n-1 degrees of freedom: mean 99, sd ≈ 14. 99 + 5·14 = 169.
        let var = epochs as f64 * 0.7 * 0.3;
        let chi2: f64 = counts.iter().map(|c| (c - expected).powi(2) / var).sum();
        assert!(chi2 < 169.0, "chi2 = {chi2}");
        assert!(chi2 > 50.0, "suspiciously even: chi2 = {chi2}");
    }
}

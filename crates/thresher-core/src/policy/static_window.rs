//! What the static policies share (ALGORITHMS.md §6): their config, the score window, and the
//! subset that is computed once and then kept. `el2n`, `grand` and `forgetting` differ only in
//! the score they read from the ScoreBook.
//!
//! The window: seen samples sorted ascending by score (ties by id); kept are the K_seen
//! positions [offset, offset + K_seen) with offset = |seen| − K_seen − round(drop_hardest·N),
//! so by default the hardest K. Never-seen samples are always kept (the shared guard), which is
//! why the budget is `seen_budget` and the offset counts from |seen| rather than N: with every
//! sample seen the two readings agree.

use std::path::PathBuf;

use serde::Deserialize;

use super::{check_prune, mean_std, seen_budget, PlanContext, Selection};
use crate::error::{Error, Result};
use crate::scores::ScoreBook;

/// Config of `el2n`, `grand` and `forgetting`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// p, the fraction pruned once the subset is fixed.
    #[serde(default = "default_prune")]
    pub prune: f64,
    /// Full-data epochs spent collecting the score before the subset is fixed; see
    /// [`StaticConfig::score_epochs`] for the default.
    #[serde(default)]
    pub score_epochs: Option<u64>,
    /// Fraction of N, counted from the hardest end, skipped before the kept window starts.
    #[serde(default)]
    pub drop_hardest: f64,
    /// Score files of earlier runs. The loader (not the policy) reads them and seeds the
    /// ScoreBook with their average before epoch 0; the policy only reads the ScoreBook.
    #[serde(default)]
    pub scores_from: Vec<PathBuf>,
}

fn default_prune() -> f64 {
    0.5
}

impl StaticConfig {
    /// 3 when the scores are collected in this run; 0 when they come from `scores_from`, since
    /// the ScoreBook then already holds them at epoch 0.
    pub fn score_epochs(&self) -> u64 {
        self.score_epochs
            .unwrap_or(if self.scores_from.is_empty() { 3 } else { 0 })
    }

    pub fn validate(&self) -> Result<()> {
        check_prune("policy.prune", self.prune)?;
        if !(0.0..=1.0).contains(&self.drop_hardest) {
            return Err(Error::invalid(format!(
                "config key `policy.drop_hardest`: {} is out of range 0..=1",
                self.drop_hardest
            )));
        }
        if self.prune + self.drop_hardest > 1.0 {
            return Err(Error::invalid(format!(
                "config keys `policy.prune` and `policy.drop_hardest`: {} + {} exceeds 1, so \
                 no window of the kept size fits",
                self.prune, self.drop_hardest
            )));
        }
        // With nothing scored at epoch 0 every sample is never-seen, so the subset fixed then
        // would be the full data for the whole run: almost certainly not what was meant.
        if self.score_epochs() == 0 && self.scores_from.is_empty() {
            return Err(Error::invalid(
                "config key `policy.score_epochs`: 0 needs `policy.scores_from`; without score \
                 files nothing is scored at epoch 0",
            ));
        }
        Ok(())
    }
}

/// The static window over per-sample scores: `scores[id]`, NaN for a sample without a score
/// (never seen), which is always kept. Returns the kept ids, ascending. A pure function, shared
/// by the policies and by tools that build a coreset from a score file.
///
/// The seen samples are ranked ascending by score, ties by id (so the result depends on the
/// scores alone), and the window [offset, offset + K_seen) of that ranking is kept, with
/// K_seen = `seen_budget(N, prune, unseen)` and
/// offset = max(0, |seen| − K_seen − round(drop_hardest·N)).
pub fn static_window(scores: &[f32], prune: f64, drop_hardest: f64) -> Vec<u64> {
    let n = scores.len();
    let mut seen: Vec<u64> = (0..n as u64)
        .filter(|&id| !scores[id as usize].is_nan())
        .collect();
    let unseen = n - seen.len();
    let k = seen_budget(n, prune, unseen).min(seen.len());
    let drop = (drop_hardest * n as f64).round().max(0.0) as usize;
    let offset = (seen.len() - k).saturating_sub(drop);
    // Two selections instead of a sort: O(N), and the order inside the window is irrelevant.
    // The ranking (score ascending, ties by id) is packed into one u64 per id, so the
    // selections compare integers in one sequential array rather than looking scores up by id
    // at random (see `top_k_front`); beyond u32 ids, the comparison on the ids themselves.
    if k > 0 && n <= u32::MAX as usize {
        let mut packed: Vec<u64> = seen
            .iter()
            .map(|&id| ((super::ascending_bits(scores[id as usize]) as u64) << 32) | id)
            .collect();
        if offset > 0 {
            packed.select_nth_unstable(offset);
        }
        let rest = &mut packed[offset..];
        if k < rest.len() {
            rest.select_nth_unstable(k);
        }
        for (slot, p) in seen.iter_mut().zip(&packed) {
            *slot = p & 0xffff_ffff;
        }
    } else if k > 0 {
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
    // The never-seen and the window, ascending: marked, then collected in one pass over the
    // ids (O(N); sorting the window cost more than the selections on large N).
    let mut in_window = vec![false; n];
    for &id in &seen[offset..offset + k] {
        in_window[id as usize] = true;
    }
    let mut kept = Vec::with_capacity(n - seen.len() + k);
    super::extend_where(&mut kept, n, |id| in_window[id] | scores[id].is_nan());
    kept
}

/// Writes one policy's score of every sample into a slice of N NaNs, leaving NaN for the
/// samples the policy counts as never seen.
pub(super) type ScoreFn = fn(&ScoreBook, &mut [f32]);

/// The state of one static policy: full data while scoring, then the subset fixed at the first
/// epoch ≥ `score_epochs` and returned unchanged for the rest of the run.
pub(super) struct StaticSubset {
    prune: f64,
    drop_hardest: f64,
    score_epochs: u64,
    score: ScoreFn,
    n: usize,
    /// Per-sample scores of the current epoch, reused.
    scratch: Vec<f32>,
    kept: Option<Vec<u64>>,
}

impl StaticSubset {
    pub(super) fn new(config: &StaticConfig, n: usize, score: ScoreFn) -> Self {
        StaticSubset {
            prune: config.prune,
            drop_hardest: config.drop_hardest,
            score_epochs: config.score_epochs(),
            score,
            n,
            scratch: Vec::with_capacity(n),
            kept: None,
        }
    }

    /// Checkpoint bytes: the fixed subset once chosen, so a run resumed after `score_epochs`
    /// keeps it instead of re-choosing from the resumed ScoreBook.
    pub(super) fn save_state(&self, tag: u8) -> Vec<u8> {
        super::save_subset(tag, self.kept.as_deref(), &[])
    }

    pub(super) fn load_state(&mut self, bytes: &[u8], tag: u8) -> bool {
        match super::load_subset(bytes, tag, self.n) {
            Some(kept) => {
                self.kept = kept.map(|(ids, _)| ids);
                true
            }
            None => false,
        }
    }

    pub(super) fn select(&mut self, ctx: &PlanContext<'_>, out: &mut Selection) {
        let n = ctx.scores.len();
        self.scratch.clear();
        self.scratch.resize(n, f32::NAN);
        (self.score)(ctx.scores, &mut self.scratch);
        // Infinite scores (forgetting's never-correct samples) are ranked, but left out of the
        // reported mean/std, which they would make meaningless.
        (out.score_mean, out.score_std) =
            mean_std(self.scratch.iter().copied().filter(|s| s.is_finite()));
        if ctx.epoch < self.score_epochs {
            out.ids.extend(0..n as u64);
            out.weights.resize(n, 1.0);
            return;
        }
        let (scratch, prune, drop) = (&self.scratch, self.prune, self.drop_hardest);
        let kept = self
            .kept
            .get_or_insert_with(|| static_window(scratch, prune, drop));
        out.ids.extend_from_slice(kept);
        out.weights.resize(kept.len(), 1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::scores::ScoreFields;

    fn err(policy: &str) -> String {
        Config::from_json(&format!(r#"{{"policy": {policy}}}"#))
            .unwrap_err()
            .to_string()
    }

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

    fn by_id(book: &ScoreBook, out: &mut [f32]) {
        for (id, s) in out.iter_mut().enumerate() {
            if book.is_seen(id) {
                *s = book.loss_last[id];
            }
        }
    }

    #[test]
    fn subset_is_full_while_scoring_then_fixed() {
        let config = StaticConfig {
            prune: 0.5,
            score_epochs: Some(2),
            drop_hardest: 0.0,
            scores_from: vec![],
        };
        let n = 6;
        let mut book = ScoreBook::new(n, ScoreFields::LOSS_LAST);
        let mut subset = StaticSubset::new(&config, n, by_id);
        let mut run = |book: &ScoreBook, epoch| {
            let mut out = Selection::default();
            let ctx = PlanContext {
                epoch,
                seed: 1,
                scores: book,
            };
            subset.select(&ctx, &mut out);
            out
        };
        let loss = [0.1f32, 0.9, 0.2, 0.8, 0.3, 0.7];
        let ids: Vec<u64> = (0..n as u64).collect();
        let fb = crate::scores::Feedback {
            ids: &ids,
            loss: &loss,
            ..Default::default()
        };
        book.feedback(&fb, 0).unwrap();
        for e in 0..2 {
            let out = run(&book, e);
            assert_eq!(out.ids, ids, "epoch {e}");
            assert!(out.weights.iter().all(|&w| w == 1.0));
        }
        let fixed = run(&book, 2);
        assert_eq!(fixed.ids, vec![1, 3, 5]);
        assert!((fixed.score_mean - 0.5).abs() < 1e-6);
        // The scores change completely; the subset does not.
        let flipped: Vec<f32> = loss.iter().map(|l| 1.0 - l).collect();
        let fb = crate::scores::Feedback {
            loss: &flipped,
            ..fb
        };
        book.feedback(&fb, 2).unwrap();
        for e in [3, 10] {
            let out = run(&book, e);
            assert_eq!(out.ids, vec![1, 3, 5], "epoch {e}");
            assert_eq!(out.weights, vec![1.0; 3]);
        }
    }

    #[test]
    fn config_defaults() {
        let c = Config::from_json(r#"{"policy": {"kind": "el2n"}}"#).unwrap();
        let crate::policy::PolicyConfig::El2n(c) = c.policy else {
            panic!("not el2n")
        };
        assert_eq!((c.prune, c.score_epochs(), c.drop_hardest), (0.5, 3, 0.0));
        let c = Config::from_json(
            r#"{"policy": {"kind": "grand", "scores_from": ["a.scores", "b.scores"]}}"#,
        )
        .unwrap();
        let crate::policy::PolicyConfig::Grand(c) = c.policy else {
            panic!("not grand")
        };
        assert_eq!(c.score_epochs(), 0);
        assert_eq!(c.scores_from.len(), 2);
    }

    #[test]
    fn config_refuses_unknown_keys_and_bad_ranges() {
        let e = err(r#"{"kind": "el2n", "epsilon": 0.1}"#);
        assert!(e.contains("epsilon"), "{e}");
        let e = err(r#"{"kind": "forgetting", "period": 2}"#);
        assert!(e.contains("period"), "{e}");
        let e = err(r#"{"kind": "grand", "prune": 0.95}"#);
        assert!(e.contains("policy.prune"), "{e}");
        let e = err(r#"{"kind": "el2n", "drop_hardest": 1.5}"#);
        assert!(e.contains("policy.drop_hardest"), "{e}");
        let e = err(r#"{"kind": "el2n", "drop_hardest": -0.1}"#);
        assert!(e.contains("policy.drop_hardest"), "{e}");
        let e = err(r#"{"kind": "el2n", "prune": 0.6, "drop_hardest": 0.5}"#);
        assert!(
            e.contains("policy.prune") && e.contains("policy.drop_hardest"),
            "{e}"
        );
        let e = err(r#"{"kind": "el2n", "score_epochs": 0}"#);
        assert!(e.contains("policy.score_epochs"), "{e}");
        // A type error inside `policy` is reported at `policy` (serde's tagged enums buffer the
        // object and lose the inner path); the value is still named.
        let e = err(r#"{"kind": "el2n", "score_epochs": -1}"#);
        assert!(e.contains("policy") && e.contains("-1"), "{e}");
        assert!(Config::from_json(
            r#"{"policy": {"kind": "el2n", "score_epochs": 0, "scores_from": ["x"]}}"#
        )
        .is_ok());
    }
}

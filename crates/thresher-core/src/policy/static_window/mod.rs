//! The static policies `el2n`, `grand` and `forgetting` (docs/policies.md, section "el2n /
//! grand / forgetting (static window)"): one policy, `StaticWindow`, parameterised by the
//! score it ranks by (`score.rs`). Here: their config and the subset that is chosen once, by
//! the window of `window.rs`, and then kept; with a random share (the guarded default) only
//! the window's hardest part is kept for good and the rest of the budget is drawn afresh each
//! epoch from the other seen samples, rescaled.

mod bracket;
mod score;
mod wide;
mod window;

pub use score::{El2nScore, ForgettingScore, GradNormScore, StaticScore};
pub use window::static_window;
use window::{split_window_into, Spare, Unseen};

use std::marker::PhantomData;
use std::path::PathBuf;

use serde::Deserialize;

use super::greedy_share::share_weight;
use super::share_draw::{draw_share, DrawScratch, Split};
use super::{check_prune, mean_std_finite, stats_and_guard, PlanContext, Policy, Selection};
use crate::error::{Error, Result};
use crate::scores::{ScoreBook, ScoreFields};

/// Config of `el2n`, `grand` and `forgetting`.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
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
    /// The run's total sample-visits as a share of `epochs`·N (docs/policies.md, "A budget
    /// fixed in advance"); replaces `prune`.
    #[serde(default)]
    pub budget: Option<f64>,
    /// The run's epochs; needed by `budget`.
    #[serde(default)]
    pub epochs: Option<u64>,
    /// The noise guard (docs/policies.md, "The noise guard"): samples wrong at each of their
    /// last `guard_window` correctness reports rank below every other seen sample. `false`
    /// gives the paper's exact rule.
    #[serde(default = "crate::policy::default_noise_guard")]
    pub noise_guard: bool,
    /// Wrong reports in a row that make a sample look unlearnable.
    #[serde(default = "crate::policy::default_guard_window")]
    pub guard_window: u8,
    /// ε, the share of the seen budget drawn afresh each epoch from the seen samples outside
    /// the fixed window; see [`StaticConfig::explore`] for the default.
    #[serde(default)]
    pub explore: Option<f64>,
    /// Weigh the drawn samples |R|/(K_seen − G) (the inverse of their chance to be drawn)
    /// instead of 1; see [`StaticConfig::rescale_for`] for the default.
    #[serde(default)]
    pub rescale: Option<bool>,
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

    /// The scoring epochs in effect: with the noise guard on, at least `guard_window` (so that
    /// every sample can have that many correctness reports when the subset is chosen), unless
    /// the scores come from `scores_from` alone (`score_epochs` 0).
    pub fn effective_score_epochs(&self) -> u64 {
        let s = self.score_epochs();
        if self.noise_guard && s > 0 {
            s.max(self.guard_window as u64)
        } else {
            s
        }
    }

    /// The random share in effect: `explore` when given, else 0.5 with the noise guard and 0
    /// (the papers' fixed subset) without it.
    pub fn explore(&self) -> f64 {
        self.explore
            .unwrap_or(if self.noise_guard { 0.5 } else { 0.0 })
    }

    /// Whether the drawn share of policy `S` is rescaled: `rescale` when given, else
    /// `noise_guard` where `S::RESCALE_BY_DEFAULT` (el2n, grand) or under a `budget`
    /// (forgetting too), else false (forgetting without a budget).
    ///
    /// Why the budget: without one the scoring epochs are full data, so every sample has the
    /// guard's w reports when the window is fixed; under a tight budget most have one, the
    /// guard has flagged nothing, and forgetting's window is the samples wrong at their single
    /// report (+∞), mislabeled ones first. The rescaled share then carries most of the
    /// gradient and dilutes that window (docs/policies.md, "el2n / grand / forgetting").
    pub fn rescale_for<S: StaticScore>(&self) -> bool {
        self.rescale
            .unwrap_or(self.noise_guard && (S::RESCALE_BY_DEFAULT || self.budget.is_some()))
    }

    pub fn validate(&self) -> Result<()> {
        check_prune("policy.prune", self.prune)?;
        super::epsilon_greedy::check_explore(self.explore)?;
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

/// `el2n`: the mean EL2N over the scoring epochs.
pub type El2n = StaticWindow<El2nScore>;
/// `grand`: the EMA of the gradient norm over the scoring epochs.
pub type Grand = StaticWindow<GradNormScore>;
/// `forgetting`: the number of forgetting events over the scoring epochs.
pub type Forgetting = StaticWindow<ForgettingScore>;

/// A static policy: full data while scoring, then the subset fixed at the first epoch
/// ≥ `score_epochs` and returned for the rest of the run, with its random share (if any) drawn
/// afresh each epoch. `S` is the score.
pub struct StaticWindow<S: StaticScore> {
    prune: f64,
    drop_hardest: f64,
    explore: f64,
    rescale: bool,
    score_epochs: u64,
    /// The noise guard's window when it is on.
    guard: Option<u8>,
    /// Whether a `budget` sets each epoch's count (`set_keep`); the scoring epochs are then
    /// not full data.
    budgeted: bool,
    n: usize,
    /// Per-sample scores of the current epoch, reused.
    scratch: Vec<f32>,
    /// The fixed part and the random share's pool, once chosen.
    kept: Option<Split>,
    /// The memory `kept` is written into, prepared at construction (see `Spare`); released
    /// once `kept` is chosen or restored.
    spare: Spare,
    /// The random share's scratch, reused across epochs.
    draw: DrawScratch,
    /// `fn() -> S`: the score is a type-level choice, no value of it is held, so the policy is
    /// `Send` whatever `S` is.
    score: PhantomData<fn() -> S>,
}

impl<S: StaticScore> StaticWindow<S> {
    pub fn new(config: StaticConfig, n: usize) -> Self {
        StaticWindow {
            prune: config.prune,
            drop_hardest: config.drop_hardest,
            explore: config.explore(),
            rescale: config.rescale_for::<S>(),
            score_epochs: config.effective_score_epochs(),
            guard: config.noise_guard.then_some(config.guard_window),
            budgeted: false,
            n,
            scratch: crate::util::huge::with_capacity(n),
            kept: None,
            spare: Spare::touched(n, config.explore() > 0.0),
            draw: DrawScratch::touched(n, config.explore() > 0.0),
            score: PhantomData,
        }
    }

    /// Writes each sample's score into `out` (length N), NaN for the samples this score counts
    /// as never seen.
    pub fn scores(book: &ScoreBook, out: &mut [f32]) {
        S::scores(book, out)
    }
}

impl<S: StaticScore> Policy for StaticWindow<S> {
    fn needs(&self) -> ScoreFields {
        S::NEEDS.union(ScoreFields::STREAK)
    }

    /// The window's size is fixed once, at the first plan after the scoring epochs: the
    /// epoch's count then becomes the prune fraction the subset is chosen with.
    fn set_keep(&mut self, keep: Option<usize>) {
        if let Some(k) = keep {
            self.prune = 1.0 - k as f64 / self.n as f64;
            self.budgeted = true;
        }
    }

    fn select(&mut self, ctx: &PlanContext<'_>, out: &mut Selection) {
        let n = ctx.scores.len();
        // `S::scores` writes every element: no fill first.
        self.scratch.resize(n, f32::NAN);
        S::scores(ctx.scores, &mut self.scratch);
        // The noise guard, at the epoch that fixes the subset: a seen sample that looks
        // unlearnable ranks below every other seen sample (−∞ ranks first in the ascending
        // order, the easy end). Done in the same pass as the reported mean/std (one read of
        // the scores instead of two), which are of the scores before the guard. Infinite
        // scores (forgetting's never-correct samples) are ranked, but left out of the mean/std,
        // which they would make meaningless.
        let fixing = ctx.epoch >= self.score_epochs && self.kept.is_none();
        let guard = self.guard.filter(|_| fixing);
        (out.score_mean, out.score_std) = match guard {
            Some(w) => stats_and_guard(&mut self.scratch, ctx.scores.wrong_streak(), w),
            None => mean_std_finite(&self.scratch),
        };
        if ctx.epoch < self.score_epochs {
            if self.budgeted && self.guard.is_some() {
                // A scoring epoch cut by the budget: the samples without a score first (the
                // budget cuts a surplus, and fills a shortfall, uniformly), so the scoring
                // epochs are passes over the data rather than overlapping uniform draws.
                let scratch = &self.scratch;
                super::extend_where(&mut out.ids, n, |id| scratch[id].is_nan());
            } else {
                out.ids.extend(0..n as u64);
            }
            let len = out.ids.len();
            out.weights.resize(len, 1.0);
            return;
        }
        let (scratch, prune, drop) = (&self.scratch, self.prune, self.drop_hardest);
        let explore = self.explore;
        // Pooling the never-seen needs a random share to draw them; without one (ε = 0: the
        // papers' window, or a coreset) they would never be trained on again, so they are kept.
        let unseen = if self.guard.is_some() && explore > 0.0 {
            Unseen::Pooled
        } else {
            Unseen::Kept
        };
        let spare = &mut self.spare;
        let split = self.kept.get_or_insert_with(|| {
            let split = split_window_into(scratch, prune, drop, explore, unseen, spare);
            *spare = Spare::default();
            split
        });
        if split.fill == 0 {
            out.ids.extend_from_slice(&split.fixed);
            out.weights
                .resize(out.weights.len() + split.fixed.len(), 1.0);
            return;
        }
        let weight = if self.rescale {
            let k = super::budget(n, self.prune);
            share_weight(split.pool.len(), split.fill, n, k, self.explore)
        } else {
            1.0
        };
        let flagged = super::flagged_streaks(ctx.scores, self.guard);
        draw_share(split, weight, 1.0, ctx, flagged, &mut self.draw, out);
    }

    /// The fixed subset (and the random share's pool) once chosen, so a run resumed after
    /// `score_epochs` keeps it instead of re-choosing from the resumed ScoreBook. Without a
    /// random share the bytes are those of a plain fixed subset.
    fn save_state(&self) -> Vec<u8> {
        match &self.kept {
            None => Vec::new(),
            Some(s) if s.fill == 0 => super::save_subset(S::STATE_TAG, Some(&s.fixed), &[]),
            Some(s) => {
                super::save_with_pool(S::STATE_TAG, Some(&s.fixed), &[s.fill as f64], &s.pool)
            }
        }
    }

    fn load_state(&mut self, bytes: &[u8]) -> bool {
        let Some(subset) = super::load_with_pool(bytes, S::STATE_TAG, self.n) else {
            return false;
        };
        let Some(subset) = subset else {
            self.kept = None;
            self.draw = DrawScratch::default();
            return true;
        };
        let fill = match subset.extra.as_slice() {
            [] => None,
            &[fill] => Some(fill),
            _ => return false,
        };
        let Some(split) = Split::restored(subset.ids, subset.pool, fill) else {
            return false;
        };
        self.kept = Some(split);
        self.spare = Spare::default();
        self.draw = DrawScratch::default();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::collections::BTreeSet;

    fn err(policy: &str) -> String {
        Config::from_json(&format!(r#"{{"policy": {policy}}}"#))
            .unwrap_err()
            .to_string()
    }

    /// A score of the tests' own: the last loss.
    struct ByLoss;

    impl StaticScore for ByLoss {
        const NEEDS: ScoreFields = ScoreFields::LOSS_LAST;
        const STATE_TAG: u8 = 0xff;
        fn scores(book: &ScoreBook, out: &mut [f32]) {
            for (id, s) in out.iter_mut().enumerate() {
                *s = if book.is_seen(id) {
                    book.loss_last()[id]
                } else {
                    f32::NAN
                };
            }
        }
    }

    #[test]
    fn subset_is_full_while_scoring_then_fixed() {
        let config = StaticConfig {
            explore: None,
            rescale: None,
            noise_guard: false,
            guard_window: 2,
            budget: None,
            epochs: None,
            prune: 0.5,
            score_epochs: Some(2),
            drop_hardest: 0.0,
            scores_from: vec![],
        };
        let n = 6;
        let mut book = ScoreBook::new(n, ScoreFields::LOSS_LAST);
        let mut subset = StaticWindow::<ByLoss>::new(config, n);
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

    #[test]
    fn guarded_under_a_tight_budget_passes_over_the_unseen_and_never_fixes_them() {
        // 40 ids, loss = id / 40, all learnable; budget 0.25 over 6 epochs: K = 10 each epoch,
        // scoring epochs 0 and 1. Epoch 1 keeps only ids epoch 0 did not (30 unseen ≥ K). At
        // epoch 2, 20 ids are unseen: the fixed part is the hardest G = 5 seen ids only, and
        // the other 5 are drawn afresh from the 35 others, the unseen among them.
        let n = 40;
        let config: StaticConfig = serde_json::from_value(
            serde_json::json!({"budget": 0.25, "epochs": 6, "score_epochs": 2}),
        )
        .unwrap();
        let counts = crate::policy::budget::schedule(n, 0.25, 6, &[false; 6]);
        assert_eq!(counts, vec![10; 6]);
        let mut policy = crate::policy::budget::Budgeted::new(
            Box::new(StaticWindow::<ByLoss>::new(config, n)),
            counts,
        );
        let mut book = ScoreBook::new(n, ScoreFields::LOSS_LAST.union(ScoreFields::STREAK));
        let mut kept: Vec<Vec<u64>> = Vec::new();
        for epoch in 0..6 {
            let mut out = Selection::default();
            let ctx = PlanContext {
                epoch,
                seed: 5,
                scores: &book,
            };
            policy.select(&ctx, &mut out);
            assert_eq!(out.len(), 10, "epoch {epoch}");
            let loss: Vec<f32> = out.ids.iter().map(|&i| i as f32 / 40.0).collect();
            let correct = vec![1u8; out.len()];
            let fb = crate::scores::Feedback {
                ids: &out.ids,
                loss: &loss,
                correct: Some(&correct),
                ..Default::default()
            };
            book.feedback(&fb, epoch).unwrap();
            kept.push(out.ids);
        }
        let (e0, e1): (BTreeSet<u64>, BTreeSet<u64>) = (
            kept[0].iter().copied().collect(),
            kept[1].iter().copied().collect(),
        );
        assert!(
            e0.is_disjoint(&e1),
            "the second scoring epoch keeps unseen ids only"
        );
        let seen: Vec<u64> = e0.union(&e1).copied().collect();
        let hardest: Vec<u64> = seen[15..].to_vec();
        let mut drawn_unseen = false;
        for ids in &kept[2..] {
            assert!(hardest.iter().all(|id| ids.contains(id)), "{ids:?}");
            drawn_unseen |= ids.iter().any(|id| !seen.contains(id));
        }
        assert!(drawn_unseen, "never-seen ids are drawn, not fixed");
        assert!(
            kept[2..].windows(2).any(|w| w[0] != w[1]),
            "the other half is drawn afresh"
        );
    }

    #[test]
    fn guarded_default_fixes_the_hardest_half_and_draws_the_rest_afresh_rescaled() {
        // 40 ids, loss = id / 40 (id 39 hardest); ids 30..40 wrong at both reports (flagged,
        // so ranked easiest by the guard). p = 0.5: K_seen = 20; ε = 0.5: the window keeps the
        // G = 10 hardest unflagged (ids 20..30) and 10 are drawn each epoch from the other 30,
        // unflagged ones weighing 30/10 = 3.
        let n = 40;
        let config: StaticConfig =
            serde_json::from_value(serde_json::json!({"prune": 0.5, "score_epochs": 2})).unwrap();
        assert_eq!(
            (config.explore(), config.rescale_for::<ByLoss>()),
            (0.5, true)
        );
        assert!(!config.rescale_for::<ForgettingScore>() && config.rescale_for::<El2nScore>());
        // Forgetting rescales under a budget (the guard on), unless told otherwise.
        for (extra, want) in [
            ("", true),
            (r#", "rescale": false"#, false),
            (r#", "noise_guard": false"#, false),
        ] {
            let json = format!(r#"{{"budget": 0.3, "epochs": 8{extra}}}"#);
            let c: StaticConfig = serde_json::from_str(&json).unwrap();
            assert_eq!(c.rescale_for::<ForgettingScore>(), want, "{json}");
        }
        let mut policy = StaticWindow::<ByLoss>::new(config, n);
        let mut book = ScoreBook::new(n, ScoreFields::LOSS_LAST.union(ScoreFields::STREAK));
        let ids: Vec<u64> = (0..n as u64).collect();
        let loss: Vec<f32> = (0..n).map(|i| i as f32 / 40.0).collect();
        let correct: Vec<u8> = (0..n).map(|i| u8::from(i < 30)).collect();
        for step in 0..2 {
            let fb = crate::scores::Feedback {
                ids: &ids,
                loss: &loss,
                correct: Some(&correct),
                ..Default::default()
            };
            book.feedback(&fb, step).unwrap();
        }
        let select = |policy: &mut StaticWindow<ByLoss>, epoch| {
            let mut out = Selection::default();
            let ctx = PlanContext {
                epoch,
                seed: 4,
                scores: &book,
            };
            policy.select(&ctx, &mut out);
            out
        };
        let mut draws = BTreeSet::new();
        for epoch in 2..8 {
            let out = select(&mut policy, epoch);
            assert_eq!(out.len(), 20, "epoch {epoch}");
            assert!(out.ids.windows(2).all(|w| w[0] < w[1]));
            let drawn: Vec<u64> = out
                .ids
                .iter()
                .copied()
                .filter(|&id| !(20..30).contains(&id))
                .collect();
            assert!(
                (20..30).all(|id| out.ids.contains(&id)),
                "the fixed part is kept"
            );
            assert_eq!(drawn.len(), 10);
            for (&id, &w) in out.ids.iter().zip(&out.weights) {
                let want = match id {
                    20..30 => 1.0,
                    30.. => 1.0, // drawn, but flagged
                    _ => 3.0,
                };
                assert_eq!(w, want, "epoch {epoch} id {id}");
            }
            draws.insert(drawn);
        }
        assert!(draws.len() > 1, "the share is drawn afresh each epoch");
        // A restored state draws the same share; other policies' bytes are refused.
        let state = policy.save_state();
        let mut back = StaticWindow::<ByLoss>::new(
            serde_json::from_value(serde_json::json!({"prune": 0.5, "score_epochs": 2})).unwrap(),
            n,
        );
        assert!(back.load_state(&state));
        assert_eq!(select(&mut back, 9), select(&mut policy, 9));
        let mut corrupt = state.clone();
        *corrupt.last_mut().unwrap() ^= 0x7f;
        assert!(!back.load_state(&corrupt[..corrupt.len() - 8]));
        // With `rescale: false` the same ids weigh 1.
        let mut plain = StaticWindow::<ByLoss>::new(
            serde_json::from_value(
                serde_json::json!({"prune": 0.5, "score_epochs": 2, "rescale": false}),
            )
            .unwrap(),
            n,
        );
        let (a, b) = (select(&mut plain, 5), select(&mut policy, 5));
        assert_eq!(a.ids, b.ids);
        assert!(a.weights.iter().all(|&w| w == 1.0));
    }
}

//! `influence` (Yang et al., ICLR 2023, "Dataset Pruning"; docs/policies.md, section
//! "influence"): after `score_epochs` full-data epochs, one removal set R is chosen from the
//! per-sample gradient embeddings g_i and the complement is trained on for the rest of the run.
//!
//! Over the m samples that have an embedding (the others were never met while scoring: kept,
//! or with a random share put in R, its pool):
//! H = (1/m)·Σ g_i g_iᵀ + λI, s_i = H⁻¹ g_i / m, so that removing R moves the parameters by
//! about Σ_{i∈R} s_i. Cardinality mode (`prune`) removes N − K samples, K = round((1−p)·N) as
//! for every other policy, minimising ‖Σ_R s_i‖₂; guarantee mode (`epsilon`) removes the
//! largest R found with ‖Σ_R s_i‖₂ ≤ ε. With neither key, cardinality mode at p = 0.3.
//!
//! This file owns the policy: its config, when R is chosen, and its checkpoint state. The s_i
//! come from `kernels` (H, its Cholesky factor, the solves), R from `removal` (the heuristic
//! search for both problems).
//!
//! Costs, for m samples of dimension d (`sketch_dim`): m·d²/2 to accumulate H, d³/6 for its
//! Cholesky factor, m·d² for the solves, 4·m·d bytes to hold the s_i while R is chosen, then
//! the local search's m·d scans. All of it happens once, single-threaded (policies start no
//! threads); `benches/influence.rs` times it at MNIST scale.
//! The kept set, the achieved ‖Σ_R s_i‖ and λ are then fixed for the run.
//!
//! With a random share (`explore` ε > 0, the guarded default in cardinality mode) R is sized
//! for the fixed part G = ⌈(1 − ε)·K⌉ instead of K, and the other K − G ids are drawn afresh
//! each epoch from R (`share_draw`), as the static policies draw theirs from outside their
//! window: a subset fixed for the rest of the run was below random pruning at equal
//! sample-visits, which draws a new subset every epoch (docs/policies.md, "The noise guard").

mod kernels;
mod removal;

use serde::Deserialize;

use self::kernels::{dot, influence_vectors};
use self::removal::{choose_removal, Target};
use super::epsilon_greedy::{check_explore, greedy_count};
use super::greedy_share::share_weight;
use super::share_draw::{draw_share, DrawScratch, Split};
use super::{
    budget, check_prune, flagged_streaks, looks_unlearnable, mean_std, PlanContext, Policy,
    Selection,
};
use crate::error::{Error, Result};
use crate::scores::{ScoreBook, ScoreFields};

/// Prune fraction when neither `prune` nor `epsilon` is given (that of `random`), so that
/// `{"kind": "influence"}` alone is a usable config.
const DEFAULT_PRUNE: f64 = 0.3;
const MAX_SKETCH_DIM: usize = 8192;

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct InfluenceConfig {
    /// Cardinality mode: the fraction p removed. At most one of `prune` and `epsilon`; with
    /// neither, p = 0.3.
    #[serde(default)]
    pub prune: Option<f64>,
    /// Guarantee mode: the bound ε on ‖Σ_R s_i‖₂. The report's achieved norm (and the score
    /// mean, the mean ‖s_i‖) show its scale.
    #[serde(default)]
    pub epsilon: Option<f64>,
    /// Full-data epochs that collect the embeddings before R is chosen.
    #[serde(default = "default_score_epochs")]
    pub score_epochs: u64,
    /// λ; default 1e-3·trace(G)/d with G = (1/m)·Σ g gᵀ, i.e. a thousandth of G's mean
    /// eigenvalue, enough to make H safely invertible without flattening its spectrum.
    #[serde(default)]
    pub damping: Option<f64>,
    /// Embeddings longer than this are randomly projected to it on arrival.
    #[serde(default = "default_sketch_dim")]
    pub sketch_dim: usize,
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
    /// ε, the share of the kept count drawn afresh each epoch from the removal set; see
    /// [`InfluenceConfig::explore`] for the default. Cardinality mode only.
    #[serde(default)]
    pub explore: Option<f64>,
    /// Weigh the drawn samples |R|/(K − G) (the inverse of their chance to be drawn) instead
    /// of 1; default false.
    #[serde(default)]
    pub rescale: Option<bool>,
}

fn default_score_epochs() -> u64 {
    3
}
fn default_sketch_dim() -> usize {
    512
}

/// Which of the two problems (see the module header) the config asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InfluenceMode {
    /// Remove N − round((1−p)·N) samples minimising ‖Σ_R s_i‖₂.
    Cardinality { prune: f64 },
    /// Remove as many samples as possible with ‖Σ_R s_i‖₂ ≤ ε.
    Guarantee { epsilon: f64 },
}

impl InfluenceConfig {
    /// The scoring epochs in effect: with the noise guard on, at least `guard_window`.
    pub fn effective_score_epochs(&self) -> u64 {
        if self.noise_guard {
            self.score_epochs.max(self.guard_window as u64)
        } else {
            self.score_epochs
        }
    }

    /// The random share in effect: `explore` when given, else 0.8 with the noise guard in
    /// cardinality mode and 0 otherwise (the paper's fixed subset; guarantee mode has no share,
    /// its R is sized by ε).
    pub fn explore(&self) -> f64 {
        let guarded = self.noise_guard && self.epsilon.is_none();
        self.explore.unwrap_or(if guarded { 0.8 } else { 0.0 })
    }

    /// Whether the drawn share is rescaled: `rescale` when given, else false without a
    /// `budget` and `noise_guard` under one. Without a budget the rescaled share was below
    /// random pruning at equal visits on clean labels and the share at weight 1 above it
    /// (results/noise/README.md, "Influence with a random share"); under a budget R is chosen
    /// at the end of the scoring epochs and the share drawn from then on, and there the rescaled
    /// share was the better one, as forgetting's was (docs/policies.md, *influence*).
    pub fn rescale(&self) -> bool {
        self.rescale
            .unwrap_or(self.noise_guard && self.budget.is_some())
    }

    pub fn mode(&self) -> InfluenceMode {
        match (self.prune, self.epsilon) {
            (_, Some(epsilon)) => InfluenceMode::Guarantee { epsilon },
            (prune, None) => InfluenceMode::Cardinality {
                prune: prune.unwrap_or(DEFAULT_PRUNE),
            },
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.prune.is_some() && self.epsilon.is_some() {
            return Err(Error::invalid(
                "config keys `policy.prune` and `policy.epsilon`: give one, not both (prune \
                 fixes how many samples are removed, epsilon bounds their joint influence)",
            ));
        }
        if let Some(p) = self.prune {
            check_prune("policy.prune", p)?;
        }
        check_explore(self.explore)?;
        if self.epsilon.is_some() && self.explore.is_some_and(|e| e > 0.0) {
            return Err(Error::invalid(
                "config keys `policy.epsilon` and `policy.explore`: a random share needs \
                 cardinality mode (`prune`); guarantee mode's removal set is sized by epsilon",
            ));
        }
        if let Some(e) = self.epsilon {
            if !(e.is_finite() && e >= 0.0) {
                return Err(Error::invalid(format!(
                    "config key `policy.epsilon`: {e} is not a finite number ≥ 0"
                )));
            }
        }
        if let Some(l) = self.damping {
            if !(l.is_finite() && l > 0.0) {
                return Err(Error::invalid(format!(
                    "config key `policy.damping`: {l} is not a finite number > 0"
                )));
            }
        }
        if self.score_epochs == 0 {
            return Err(Error::invalid(
                "config key `policy.score_epochs`: must be ≥ 1; the embeddings come from the \
                 feedback of the first epochs",
            ));
        }
        if !(1..=MAX_SKETCH_DIM).contains(&self.sketch_dim) {
            return Err(Error::invalid(format!(
                "config key `policy.sketch_dim`: {} is out of range 1..={MAX_SKETCH_DIM}",
                self.sketch_dim
            )));
        }
        Ok(())
    }
}

pub struct Influence {
    config: InfluenceConfig,
    n: usize,
    /// The complement of R, ascending (without a random share it holds the samples without an
    /// embedding too), and with a share R as its pool; fixed once computed.
    kept: Option<Split>,
    /// The random share's scratch, reused across epochs.
    draw: DrawScratch,
    achieved: Option<f64>,
    damping: Option<f64>,
    /// Mean and std of ‖s_i‖ over the samples with an embedding.
    norm_stats: (f64, f64),
}

/// With a random share, the wrong reports in a row that keep a sample out of the fixed part.
const FIXED_PART_WINDOW: u8 = 1;

/// With the noise guard and the share at weight 1 (no `rescale`), the loss weight of a drawn
/// sample that looks unlearnable (wrong at each of its last w reports): under class-pair label
/// noise a share at weight 1 otherwise spends the noise rate of the gradient on flipped labels,
/// and the rule was below random pruning at equal visits (docs/policies.md, *influence*).
const FLAGGED_DRAW_WEIGHT: f32 = 0.5;
const _: () = assert!(FLAGGED_DRAW_WEIGHT < 1.0);

impl Influence {
    pub fn new(config: InfluenceConfig, n: usize) -> Self {
        Influence {
            config,
            n,
            kept: None,
            draw: DrawScratch::default(),
            achieved: None,
            damping: None,
            norm_stats: (f64::NAN, f64::NAN),
        }
    }

    /// ‖Σ_{i∈R} s_i‖₂ of the chosen R; None before R is chosen.
    pub fn achieved_norm(&self) -> Option<f64> {
        self.achieved
    }

    /// λ as used (the default or the configured damping, ×10 per failed factorisation); None
    /// before R is chosen or when no sample had an embedding.
    pub fn damping(&self) -> Option<f64> {
        self.damping
    }

    /// K, the ids each epoch keeps in cardinality mode, and G, those of them kept for good.
    fn counts(&self, prune: f64) -> (usize, usize) {
        let k = budget(self.n, prune);
        (k, greedy_count(k, self.config.explore()))
    }

    fn choose(&mut self, book: &ScoreBook) -> Split {
        let n = book.len();
        let d = book.embedding_dim();
        let embedded: Vec<usize> = (0..n).filter(|&id| book.embedding(id).is_some()).collect();
        // The noise guard: samples that look unlearnable are removed first and left out of
        // G and of the search; the search then chooses the rest of R among the others. With a
        // random share, G is kept every epoch for the rest of the run while R is redrawn, so
        // G is held to a stricter test: a sample misclassified at its last report (not only
        // at the last w) goes to R, from which the share can still draw it: a pair-flipped
        // sample the model half learns is right and wrong by turns, rarely w times wrong in
        // a row, yet its influence vector is large (measured: docs/policies.md, *influence*).
        let window = self.config.noise_guard.then_some(self.config.guard_window);
        let share = matches!(self.config.mode(), InfluenceMode::Cardinality { .. })
            && self.config.explore() > 0.0;
        let window = window.map(|w| if share { FIXED_PART_WINDOW } else { w });
        let flagged = |id: usize| window.is_some_and(|w| looks_unlearnable(book, id, w));
        // The removal set is sized for the fixed part G; the random share (K − G, when
        // `explore` > 0) is drawn from it each epoch.
        let (keep, wanted) = match self.config.mode() {
            InfluenceMode::Cardinality { prune } => {
                let (k, g) = self.counts(prune);
                (k, n - g)
            }
            InfluenceMode::Guarantee { .. } => (0, n),
        };
        let mut removed = vec![false; n];
        // With a random share, samples without an embedding (never met in the scoring epochs:
        // under a tight budget, a large part of the data) are put in R, the share's pool, as the
        // static policies pool their never-seen samples: G is chosen among embedded samples
        // only, and nothing is kept for the rest of the run just because it was never seen.
        // Without a share they are kept (R is never trained on).
        if share {
            removed.fill(true);
            for &id in &embedded {
                removed[id] = false;
            }
        }
        let unembedded = if share { n - embedded.len() } else { 0 };
        let wanted = wanted.saturating_sub(unembedded);
        let guarded: Vec<usize> = embedded
            .iter()
            .copied()
            .filter(|&id| flagged(id))
            .take(wanted)
            .collect();
        let rows: Vec<usize> = embedded
            .iter()
            .copied()
            .filter(|&id| !flagged(id))
            .collect();
        for &id in &guarded {
            removed[id] = true;
        }
        // The complement is kept for good; R is the pool of the random share, which fills the
        // complement up to K (nothing when the complement already holds K or more: too few
        // samples had an embedding to remove N − G).
        let complement = |removed: &[bool]| {
            let fixed: Vec<u64> = (0..n as u64).filter(|&id| !removed[id as usize]).collect();
            let fill = keep.saturating_sub(fixed.len());
            let pool = if fill > 0 {
                (0..n as u64).filter(|&id| removed[id as usize]).collect()
            } else {
                Vec::new()
            };
            Split { fixed, pool, fill }
        };
        if rows.is_empty() || d == 0 {
            self.achieved = Some(0.0);
            return complement(&removed);
        }
        let Some(vectors) = influence_vectors(book.embeddings(), &rows, d, self.config.damping)
        else {
            // Only non-finite embeddings get here, and the ScoreBook refuses those.
            return complement(&removed);
        };
        self.damping = Some(vectors.damping);
        self.norm_stats = mean_std(vectors.s.chunks_exact(d).map(|s| dot(s, s).sqrt() as f32));
        let target = match self.config.mode() {
            InfluenceMode::Cardinality { .. } => {
                Target::Count((wanted - guarded.len()).min(rows.len()))
            }
            InfluenceMode::Guarantee { epsilon } => Target::Within(epsilon),
        };
        let removal = choose_removal(&vectors.s, d, target);
        self.achieved = Some(removal.norm);
        for &r in &removal.removed {
            removed[rows[r]] = true;
        }
        complement(&removed)
    }
}

impl Policy for Influence {
    fn needs(&self) -> ScoreFields {
        ScoreFields::EMBEDDING.union(ScoreFields::STREAK)
    }

    /// R is chosen once: the count of the epoch that chooses it sizes it (cardinality mode).
    fn set_keep(&mut self, keep: Option<usize>) {
        if let Some(k) = keep {
            self.config.prune = Some(1.0 - k as f64 / self.n as f64);
        }
    }

    fn select(&mut self, ctx: &PlanContext<'_>, out: &mut Selection) {
        if ctx.epoch < self.config.effective_score_epochs() {
            let n = ctx.scores.len();
            if self.config.budget.is_some() && self.config.noise_guard {
                // A scoring epoch cut by the budget: the samples without an embedding first
                // (the budget cuts a surplus, and fills a shortfall, uniformly), so the scoring
                // epochs pass over the data, as the static policies' do, and R is chosen with
                // as many embeddings as the budget can buy.
                let book = ctx.scores;
                super::extend_where(&mut out.ids, n, |id| book.embedding(id).is_none());
            } else {
                out.ids.extend(0..n as u64);
            }
            out.weights.resize(out.ids.len(), 1.0);
            out.score_mean = f64::NAN;
            out.score_std = f64::NAN;
            return;
        }
        if self.kept.is_none() {
            self.kept = Some(self.choose(ctx.scores));
        }
        (out.score_mean, out.score_std) = self.norm_stats;
        let Some(split) = &self.kept else { return };
        if split.fill == 0 {
            out.ids.extend_from_slice(&split.fixed);
            out.weights.resize(split.fixed.len(), 1.0);
            return;
        }
        let weight = match (self.config.rescale(), self.config.mode()) {
            (true, InfluenceMode::Cardinality { prune }) => {
                let (k, _) = self.counts(prune);
                share_weight(
                    split.pool.len(),
                    split.fill,
                    self.n,
                    k,
                    self.config.explore(),
                )
            }
            _ => 1.0,
        };
        let guard = self.config.noise_guard.then_some(self.config.guard_window);
        let flagged = flagged_streaks(ctx.scores, guard);
        // Rescaled, a drawn sample that looks unlearnable weighs 1, already below the share's
        // weight (as in the other policies); at weight 1 it weighs less than 1.
        let flagged_weight = if self.config.rescale() {
            1.0
        } else {
            FLAGGED_DRAW_WEIGHT
        };
        draw_share(
            split,
            weight,
            flagged_weight,
            ctx,
            flagged,
            &mut self.draw,
            out,
        );
    }

    /// The fixed subset, its figures and (with a random share) R and the share's size, so a
    /// resumed run keeps R rather than re-solving from the resumed ScoreBook. Without a share
    /// the bytes are those of a plain fixed subset.
    fn save_state(&self) -> Vec<u8> {
        let nan = f64::NAN;
        let mut extra = vec![
            self.achieved.unwrap_or(nan),
            self.damping.unwrap_or(nan),
            self.norm_stats.0,
            self.norm_stats.1,
        ];
        let Some(split) = &self.kept else {
            return Vec::new();
        };
        if split.fill > 0 {
            extra.push(split.fill as f64);
        }
        super::save_with_pool(8, Some(&split.fixed), &extra, &split.pool)
    }

    fn load_state(&mut self, bytes: &[u8]) -> bool {
        let Some(subset) = super::load_with_pool(bytes, 8, self.n) else {
            return false;
        };
        let Some(subset) = subset else {
            self.kept = None;
            self.draw = DrawScratch::default();
            return true;
        };
        // Four figures, and the share's size when there is a pool.
        let fill = match subset.extra.as_slice() {
            [_, _, _, _] => None,
            &[_, _, _, _, fill] => Some(fill),
            _ => return false,
        };
        let extra = subset.extra;
        let Some(split) = Split::restored(subset.ids, subset.pool, fill) else {
            return false;
        };
        let some = |x: f64| (!x.is_nan()).then_some(x);
        self.achieved = some(extra[0]);
        self.damping = some(extra[1]);
        self.norm_stats = (extra[2], extra[3]);
        self.kept = Some(split);
        self.draw = DrawScratch::default();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::rng::{Rng, Stream};
    use crate::scores::Feedback;

    pub(super) fn gaussian(rng: &mut Rng) -> f64 {
        let u1 = 1.0 - rng.unit_f64();
        let u2 = rng.unit_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// m vectors in R^d with Gaussian directions and norms spread over [0.2, 3].
    pub(super) fn random_vectors(seed: u64, m: usize, d: usize) -> Vec<f32> {
        let mut rng = Rng::new(seed, Stream::Select, 77, 0);
        let mut v = Vec::with_capacity(m * d);
        for _ in 0..m {
            let scale = 0.2 + 2.8 * rng.unit_f64();
            for _ in 0..d {
                v.push((gaussian(&mut rng) * scale) as f32);
            }
        }
        v
    }

    /// ‖Σ_{j∈set} s_j‖ over rows of `s` (d per row).
    pub(super) fn sum_norm(s: &[f32], d: usize, set: impl Iterator<Item = usize>) -> f64 {
        let mut sum = vec![0.0; d];
        for j in set {
            for (a, &b) in sum.iter_mut().zip(&s[j * d..(j + 1) * d]) {
                *a += b as f64;
            }
        }
        dot(&sum, &sum).sqrt()
    }

    fn book_with_embeddings(n: usize, with: &[u64], d: usize, seed: u64) -> ScoreBook {
        let mut book = ScoreBook::with_options(n, ScoreFields::EMBEDDING, 0.8, 512, 0);
        let emb = random_vectors(seed, with.len(), d);
        let loss = vec![1.0; with.len()];
        let fb = Feedback {
            ids: with,
            loss: &loss,
            embedding: Some(&emb),
            embedding_dim: d,
            ..Default::default()
        };
        book.feedback(&fb, 0).unwrap();
        book
    }

    fn config(json: &str) -> InfluenceConfig {
        let c = Config::from_json(&format!(r#"{{"policy": {json}}}"#)).unwrap();
        match c.policy {
            crate::policy::PolicyConfig::Influence(c) => c,
            other => panic!("{other:?}"),
        }
    }

    fn select(policy: &mut Influence, book: &ScoreBook, epoch: u64) -> Selection {
        let mut out = Selection::default();
        let ctx = PlanContext {
            epoch,
            seed: 5,
            scores: book,
        };
        policy.select(&ctx, &mut out);
        out
    }

    #[test]
    fn full_data_while_scoring_then_a_fixed_subset() {
        let n = 40;
        let ids: Vec<u64> = (0..n as u64).collect();
        let mut book = book_with_embeddings(n, &ids, 4, 1);
        let json = r#"{"kind": "influence", "prune": 0.25, "explore": 0}"#;
        let mut policy = Influence::new(config(json), n);
        assert_eq!(
            policy.needs(),
            ScoreFields::EMBEDDING.union(ScoreFields::STREAK)
        );
        for e in 0..3 {
            let out = select(&mut policy, &book, e);
            assert_eq!(out.ids, ids, "epoch {e}");
            assert!(out.score_mean.is_nan());
            assert_eq!(policy.achieved_norm(), None);
        }
        let fixed = select(&mut policy, &book, 3);
        assert_eq!(fixed.len(), 30);
        assert!(fixed.weights.iter().all(|&w| w == 1.0));
        assert!(fixed.score_mean > 0.0 && fixed.score_std > 0.0);
        let achieved = policy.achieved_norm().unwrap();
        // New embeddings for everyone; R stays.
        book = book_with_embeddings(n, &ids, 4, 2);
        let later = select(&mut policy, &book, 4);
        assert_eq!(later.ids, fixed.ids);
        assert_eq!(policy.achieved_norm(), Some(achieved));
    }

    #[test]
    fn samples_without_embeddings_are_kept_without_a_share() {
        let n = 20;
        let with: Vec<u64> = (0..n as u64).filter(|i| i % 4 != 0).collect();
        let book = book_with_embeddings(n, &with, 3, 3);
        // K = 10 of 20 → 10 removed, all from the 15 with embeddings.
        let json = r#"{"kind": "influence", "prune": 0.5, "explore": 0}"#;
        let mut policy = Influence::new(config(json), n);
        let out = select(&mut policy, &book, 3);
        assert_eq!(out.len(), 10);
        assert!((0..n as u64).step_by(4).all(|i| out.ids.contains(&i)));
        // Removing more than have embeddings: all of those go, the rest stay.
        let few: Vec<u64> = vec![1, 2];
        let book = book_with_embeddings(n, &few, 3, 3);
        let out = select(&mut policy_fresh(json, n), &book, 3);
        assert_eq!(out.len(), 18);
        assert!(!out.ids.contains(&1) && !out.ids.contains(&2));
        // No embeddings at all: full data.
        let book = ScoreBook::new(n, ScoreFields::EMBEDDING);
        let mut p = policy_fresh(r#"{"kind": "influence", "explore": 0}"#, n);
        assert_eq!(select(&mut p, &book, 3).len(), n);
        assert_eq!(p.achieved_norm(), Some(0.0));
    }

    /// With a random share, samples without an embedding (never met while scoring) are in R,
    /// the share's pool: the fixed part is chosen among embedded samples, and the others are
    /// drawn, a new draw each epoch, never kept for good.
    #[test]
    fn samples_without_embeddings_join_the_share_s_pool() {
        let n = 40;
        let with: Vec<u64> = (0..n as u64).filter(|i| i % 2 == 0).collect();
        let book = book_with_embeddings(n, &with, 3, 3);
        // K = 20, G = ⌈0.5·20⌉ = 10 fixed among the 20 embedded; R = the other 30, of which
        // the 20 odd ids have no embedding.
        let json = r#"{"kind": "influence", "prune": 0.5, "explore": 0.5}"#;
        let mut policy = policy_fresh(json, n);
        let mut odd_ever = std::collections::BTreeSet::new();
        let mut every_epoch: Option<Vec<u64>> = None;
        for e in 3..15 {
            let out = select(&mut policy, &book, e);
            assert_eq!(out.len(), 20);
            odd_ever.extend(out.ids.iter().copied().filter(|i| i % 2 == 1));
            every_epoch = Some(match every_epoch {
                None => out.ids.clone(),
                Some(f) => f.into_iter().filter(|i| out.ids.contains(i)).collect(),
            });
        }
        // The fixed part (kept every epoch) is 10 embedded (even) ids and holds no unembedded
        // one; those come and go with the draws (10 of the 30 in R each epoch, a new draw
        // each), so over twelve epochs more of them were kept than a fixed part could hold.
        let every_epoch = every_epoch.unwrap();
        assert!(every_epoch.iter().all(|i| i % 2 == 0), "{every_epoch:?}");
        assert!(every_epoch.len() >= 10, "{every_epoch:?}");
        assert!(odd_ever.len() > 10, "{odd_ever:?}");
        // No embeddings at all: R is everything, and each epoch draws K from it.
        let book = ScoreBook::new(n, ScoreFields::EMBEDDING);
        let mut p = policy_fresh(r#"{"kind": "influence", "prune": 0.5}"#, n);
        assert_eq!(select(&mut p, &book, 3).len(), 20);
        assert_eq!(p.achieved_norm(), Some(0.0));
    }

    fn policy_fresh(json: &str, n: usize) -> Influence {
        Influence::new(config(json), n)
    }

    #[test]
    fn policy_reports_the_norm_of_what_it_removed() {
        let n = 30;
        let ids: Vec<u64> = (0..n as u64).collect();
        let d = 3;
        let book = book_with_embeddings(n, &ids, d, 8);
        let rows: Vec<usize> = (0..n).collect();
        let v = influence_vectors(book.embeddings(), &rows, d, None).unwrap();
        for json in [
            r#"{"kind": "influence", "prune": 0.4, "explore": 0}"#,
            r#"{"kind": "influence", "epsilon": 0.001}"#,
        ] {
            let mut p = policy_fresh(json, n);
            let out = select(&mut p, &book, 3);
            let removed = (0..n).filter(|&i| !out.ids.contains(&(i as u64)));
            let norm = sum_norm(&v.s, d, removed);
            let achieved = p.achieved_norm().unwrap();
            assert!((norm - achieved).abs() <= 1e-9 * (1.0 + norm), "{json}");
            if json.contains("epsilon") {
                assert!(achieved <= 0.001);
            } else {
                assert_eq!(out.len(), 18);
            }
        }
    }

    #[test]
    fn same_book_same_subset() {
        let n = 50;
        let ids: Vec<u64> = (0..n as u64).collect();
        let book = book_with_embeddings(n, &ids, 8, 12);
        for json in [
            r#"{"kind": "influence", "prune": 0.6, "explore": 0}"#,
            r#"{"kind": "influence", "epsilon": 0.002}"#,
        ] {
            let a = select(&mut policy_fresh(json, n), &book, 3);
            let b = select(&mut policy_fresh(json, n), &book.clone(), 7);
            assert_eq!(a, b, "{json}");
        }
        // With the random share: the same book and epoch give the same plan.
        let json = r#"{"kind": "influence", "prune": 0.6}"#;
        let a = select(&mut policy_fresh(json, n), &book, 4);
        let b = select(&mut policy_fresh(json, n), &book.clone(), 4);
        assert_eq!(a, b);
    }

    /// A book where every id has an embedding and two correctness reports (epochs 0 and 1):
    /// `wrong(epoch, id)` says which were wrong.
    fn book_with_reports(
        n: usize,
        d: usize,
        seed: u64,
        wrong: impl Fn(u64, u64) -> bool,
    ) -> ScoreBook {
        let fields = ScoreFields::EMBEDDING.union(ScoreFields::STREAK);
        let mut book = ScoreBook::with_options(n, fields, 0.8, 512, 0);
        let ids: Vec<u64> = (0..n as u64).collect();
        let emb = random_vectors(seed, n, d);
        let loss = vec![1.0; n];
        for epoch in 0..2 {
            let correct: Vec<u8> = ids.iter().map(|&i| !wrong(epoch, i) as u8).collect();
            let fb = Feedback {
                ids: &ids,
                loss: &loss,
                correct: Some(&correct),
                embedding: Some(&emb),
                embedding_dim: d,
                ..Default::default()
            };
            book.feedback(&fb, epoch).unwrap();
        }
        book
    }

    /// `flagged` wrong at both reports (they look unlearnable at w = 2), the others right.
    fn book_with_streaks(n: usize, d: usize, seed: u64, flagged: &[u64]) -> ScoreBook {
        book_with_reports(n, d, seed, |_, id| flagged.contains(&id))
    }

    /// `last_wrong` wrong at the second report only (a streak of 1: not unlearnable at w = 2).
    fn book_with_last_wrong(n: usize, d: usize, seed: u64, last_wrong: &[u64]) -> ScoreBook {
        book_with_reports(n, d, seed, |epoch, id| {
            epoch == 1 && last_wrong.contains(&id)
        })
    }

    #[test]
    fn random_share_draws_from_the_removal_set_each_epoch() {
        // N = 100, p = 0.7: K = 30, G = 15 fixed for good, R = the other 85, of which 15 are
        // drawn each epoch at weight 85/15 (the cap (N − G)/(K − G) is the same), or 1 when
        // they look unlearnable.
        let n = 100;
        let flagged = [3u64, 40, 77];
        let book = book_with_streaks(n, 6, 21, &flagged);
        let json = r#"{"kind": "influence", "prune": 0.7, "explore": 0.5, "rescale": true}"#;
        let mut policy = policy_fresh(json, n);
        let heavy = 85.0f32 / 15.0;
        let mut fixed: Option<Vec<u64>> = None;
        let mut draws = Vec::new();
        for epoch in 3..7 {
            let out = select(&mut policy, &book, epoch);
            assert_eq!(out.len(), 30, "epoch {epoch}");
            assert!(out.ids.windows(2).all(|w| w[0] < w[1]));
            let ones: Vec<u64> = out
                .ids
                .iter()
                .zip(&out.weights)
                .filter(|(id, &w)| w == 1.0 && !flagged.contains(id))
                .map(|(&id, _)| id)
                .collect();
            for (id, &w) in out.ids.iter().zip(&out.weights) {
                assert!(w == 1.0 || w == heavy, "id {id} weighs {w}");
                if flagged.contains(id) {
                    assert_eq!(w, 1.0, "a drawn unlearnable sample weighs 1");
                }
            }
            // The fixed part: the same 15 ids every epoch, none of them flagged (flagged
            // samples are removed first).
            assert_eq!(ones.len(), 15, "epoch {epoch}");
            assert!(fixed.as_ref().is_none_or(|f| *f == ones), "epoch {epoch}");
            fixed = Some(ones);
            draws.push(out.ids);
        }
        assert!(
            draws.windows(2).all(|w| w[0] != w[1]),
            "the share is drawn afresh"
        );
        // The achieved norm is that of R, the complement of the fixed part.
        let rows: Vec<usize> = (0..n).filter(|i| !flagged.contains(&(*i as u64))).collect();
        let v = influence_vectors(book.embeddings(), &rows, 6, None).unwrap();
        let fixed = fixed.unwrap();
        let removed = (0..rows.len()).filter(|&r| !fixed.contains(&(rows[r] as u64)));
        let norm = sum_norm(&v.s, 6, removed);
        let achieved = policy.achieved_norm().unwrap();
        assert!((norm - achieved).abs() <= 1e-9 * (1.0 + norm));
        // Without rescale (the default) the ids are the same and every weight is 1, but a
        // drawn sample that looks unlearnable weighs FLAGGED_DRAW_WEIGHT; with the guard off,
        // every weight is 1.
        let mut plain = policy_fresh(r#"{"kind": "influence", "prune": 0.7, "explore": 0.5}"#, n);
        let mut flagged_drawn = 0;
        for (epoch, drawn) in (3..7).zip(&draws) {
            let out = select(&mut plain, &book, epoch);
            assert_eq!(&out.ids, drawn);
            for (id, &w) in out.ids.iter().zip(&out.weights) {
                if flagged.contains(id) {
                    assert_eq!(w, FLAGGED_DRAW_WEIGHT, "id {id}");
                    flagged_drawn += 1;
                } else {
                    assert_eq!(w, 1.0, "id {id}");
                }
            }
        }
        assert!(flagged_drawn > 0, "the test draws a flagged sample");
        let json = r#"{"kind": "influence", "prune": 0.7, "explore": 0.5, "noise_guard": false}"#;
        let out = select(&mut policy_fresh(json, n), &book, 6);
        assert!(out.weights.iter().all(|&w| w == 1.0));
    }

    #[test]
    fn with_a_share_the_fixed_part_leaves_out_samples_wrong_at_their_last_report() {
        // N = 100, p = 0.7, explore 0.5, rescale: K = 30, G = 15 kept for good (weight 1),
        // 15 drawn from R at 85/15. Three ids of the fixed part chosen on a book where every
        // last report was right are wrong at their last report in a second book: they leave
        // the fixed part (G is still 15), and a draw of them weighs 85/15, since with a streak
        // of 1 they do not look unlearnable (w = 2).
        let n = 100;
        let json = r#"{"kind": "influence", "prune": 0.7, "explore": 0.5, "rescale": true}"#;
        let heavy = 85.0f32 / 15.0;
        let fixed_part = |book: &ScoreBook, epoch: u64| {
            let out = select(&mut policy_fresh(json, n), book, epoch);
            assert_eq!(out.len(), 30);
            let fixed: Vec<u64> = (out.ids.iter().zip(&out.weights))
                .filter(|(_, &w)| w == 1.0)
                .map(|(&id, _)| id)
                .collect();
            (fixed, out)
        };
        let clean = book_with_last_wrong(n, 6, 21, &[]);
        let (before, _) = fixed_part(&clean, 3);
        assert_eq!(before.len(), 15);
        let shaky: Vec<u64> = before[..3].to_vec();
        let book = book_with_last_wrong(n, 6, 21, &shaky);
        let mut drawn_shaky = 0;
        for epoch in 3..9 {
            let (after, out) = fixed_part(&book, epoch);
            assert_eq!(after.len(), 15, "epoch {epoch}");
            assert!(after.iter().all(|id| !shaky.contains(id)), "{after:?}");
            for (id, &w) in out.ids.iter().zip(&out.weights) {
                if shaky.contains(id) {
                    assert_eq!(w, heavy, "a drawn shaky sample is not unlearnable");
                    drawn_shaky += 1;
                }
            }
        }
        assert!(drawn_shaky > 0, "the share still draws them");
        // Without a share the complement is the whole kept set, and the guard's own window
        // (w = 2) applies: the same plan as on the clean book.
        let plain = r#"{"kind": "influence", "prune": 0.7, "explore": 0}"#;
        assert_eq!(
            select(&mut policy_fresh(plain, n), &book, 3),
            select(&mut policy_fresh(plain, n), &clean, 3)
        );
    }

    #[test]
    fn a_resumed_run_keeps_the_fixed_part_and_its_pool() {
        let n = 60;
        let book = book_with_streaks(n, 5, 4, &[7]);
        for json in [
            r#"{"kind": "influence", "prune": 0.5}"#,
            r#"{"kind": "influence", "prune": 0.5, "explore": 0}"#,
        ] {
            let mut first = policy_fresh(json, n);
            assert!(first.save_state().is_empty());
            select(&mut first, &book, 3);
            let bytes = first.save_state();
            let mut resumed = policy_fresh(json, n);
            assert!(resumed.load_state(&bytes), "{json}");
            // A different book: the resumed policy must not re-solve.
            let other = book_with_streaks(n, 5, 99, &[]);
            assert_eq!(
                select(&mut resumed, &other, 5),
                select(&mut first, &other, 5),
                "{json}"
            );
            assert_eq!(resumed.achieved_norm(), first.achieved_norm());
            assert_eq!(resumed.damping(), first.damping());
            // Damaged bytes are refused.
            let mut fresh = policy_fresh(json, n);
            assert!(!fresh.load_state(&bytes[..bytes.len() - 1]), "{json}");
            assert!(fresh.load_state(&[]));
        }
    }

    #[test]
    fn config_modes_defaults_and_errors() {
        let c = config(r#"{"kind": "influence"}"#);
        assert_eq!(c.mode(), InfluenceMode::Cardinality { prune: 0.3 });
        assert_eq!((c.score_epochs, c.sketch_dim, c.damping), (3, 512, None));
        assert_eq!((c.explore(), c.rescale()), (0.8, false));
        let c = config(r#"{"kind": "influence", "noise_guard": false}"#);
        assert_eq!((c.explore(), c.rescale()), (0.0, false));
        // Under a budget the share is rescaled unless asked not to (or without the guard).
        for (extra, rescale) in [
            ("", true),
            (r#", "rescale": false"#, false),
            (r#", "noise_guard": false"#, false),
        ] {
            let c = config(&format!(
                r#"{{"kind": "influence", "budget": 0.3, "epochs": 8{extra}}}"#
            ));
            assert_eq!(c.rescale(), rescale, "{extra}");
        }
        let c = config(r#"{"kind": "influence", "epsilon": 0.1}"#);
        assert_eq!(c.explore(), 0.0);
        let c = config(r#"{"kind": "influence", "epsilon": 0.1, "explore": 0}"#);
        assert_eq!(c.explore(), 0.0);
        let c = config(r#"{"kind": "influence", "epsilon": 0.01, "sketch_dim": 64}"#);
        assert_eq!(c.mode(), InfluenceMode::Guarantee { epsilon: 0.01 });
        let err = |json: &str| {
            Config::from_json(&format!(r#"{{"policy": {json}}}"#))
                .unwrap_err()
                .to_string()
        };
        let e = err(r#"{"kind": "influence", "prune": 0.3, "epsilon": 0.1}"#);
        assert!(
            e.contains("policy.prune") && e.contains("policy.epsilon"),
            "{e}"
        );
        let e = err(r#"{"kind": "influence", "drop_hardest": 0.1}"#);
        assert!(e.contains("drop_hardest"), "{e}");
        let e = err(r#"{"kind": "influence", "momentum": 0.5}"#);
        assert!(e.contains("momentum"), "{e}");
        for (json, key) in [
            (r#""prune": 0.95"#, "policy.prune"),
            (r#""epsilon": -1"#, "policy.epsilon"),
            (r#""damping": 0"#, "policy.damping"),
            (r#""score_epochs": 0"#, "policy.score_epochs"),
            (r#""sketch_dim": 0"#, "policy.sketch_dim"),
            (r#""sketch_dim": 8193"#, "policy.sketch_dim"),
            (r#""explore": 1.5"#, "policy.explore"),
            (r#""epsilon": 0.1, "explore": 0.5"#, "policy.explore"),
        ] {
            let e = err(&format!(r#"{{"kind": "influence", {json}}}"#));
            assert!(e.contains(key), "{json}: {e}");
        }
    }
}

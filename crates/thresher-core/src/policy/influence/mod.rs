//! `influence` (Yang et al., ICLR 2023, "Dataset Pruning"; docs/policies.md, section
//! "influence"): after `score_epochs` full-data epochs, one removal set R is chosen from the
//! per-sample gradient embeddings g_i and the complement is trained on for the rest of the run.
//!
//! Over the m samples that have an embedding (the others are never-seen and always kept):
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

mod kernels;
mod removal;

use serde::Deserialize;

use self::kernels::{dot, influence_vectors};
use self::removal::{choose_removal, Target};
use super::{budget, check_prune, looks_unlearnable, mean_std, PlanContext, Policy, Selection};
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
    /// The complement of R (plus the never-seen), ascending; fixed once computed.
    kept: Option<Vec<u64>>,
    achieved: Option<f64>,
    damping: Option<f64>,
    /// Mean and std of ‖s_i‖ over the samples with an embedding.
    norm_stats: (f64, f64),
}

impl Influence {
    pub fn new(config: InfluenceConfig, n: usize) -> Self {
        Influence {
            config,
            n,
            kept: None,
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

    fn choose(&mut self, book: &ScoreBook) -> Vec<u64> {
        let n = book.len();
        let d = book.embedding_dim();
        let embedded: Vec<usize> = (0..n).filter(|&id| book.embedding(id).is_some()).collect();
        // The noise guard: samples that look unlearnable are removed first and left out of
        // G and of the search; the search then chooses the rest of R among the others.
        let window = self.config.noise_guard.then_some(self.config.guard_window);
        let flagged = |id: usize| window.is_some_and(|w| looks_unlearnable(book, id, w));
        let wanted = match self.config.mode() {
            InfluenceMode::Cardinality { prune } => n - budget(n, prune),
            InfluenceMode::Guarantee { .. } => n,
        };
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
        let mut removed = vec![false; n];
        for &id in &guarded {
            removed[id] = true;
        }
        let complement =
            |removed: &[bool]| (0..n as u64).filter(|&id| !removed[id as usize]).collect();
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
            out.ids.extend(0..n as u64);
            out.weights.resize(n, 1.0);
            out.score_mean = f64::NAN;
            out.score_std = f64::NAN;
            return;
        }
        if self.kept.is_none() {
            self.kept = Some(self.choose(ctx.scores));
        }
        let kept = self.kept.as_deref().unwrap_or_default();
        out.ids.extend_from_slice(kept);
        out.weights.resize(kept.len(), 1.0);
        (out.score_mean, out.score_std) = self.norm_stats;
    }

    /// The fixed subset and its figures, so a resumed run keeps R rather than re-solving from
    /// the resumed ScoreBook.
    fn save_state(&self) -> Vec<u8> {
        let nan = f64::NAN;
        let extra = [
            self.achieved.unwrap_or(nan),
            self.damping.unwrap_or(nan),
            self.norm_stats.0,
            self.norm_stats.1,
        ];
        super::save_subset(8, self.kept.as_deref(), &extra)
    }

    fn load_state(&mut self, bytes: &[u8]) -> bool {
        match super::load_subset(bytes, 8, self.n) {
            Some(None) => {
                self.kept = None;
                true
            }
            Some(Some((ids, extra))) if extra.len() == 4 => {
                let some = |x: f64| (!x.is_nan()).then_some(x);
                self.kept = Some(ids);
                self.achieved = some(extra[0]);
                self.damping = some(extra[1]);
                self.norm_stats = (extra[2], extra[3]);
                true
            }
            _ => false,
        }
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
        let mut policy = Influence::new(config(r#"{"kind": "influence", "prune": 0.25}"#), n);
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
    fn samples_without_embeddings_are_kept() {
        let n = 20;
        let with: Vec<u64> = (0..n as u64).filter(|i| i % 4 != 0).collect();
        let book = book_with_embeddings(n, &with, 3, 3);
        // K = 10 of 20 → 10 removed, all from the 15 with embeddings.
        let mut policy = Influence::new(config(r#"{"kind": "influence", "prune": 0.5}"#), n);
        let out = select(&mut policy, &book, 3);
        assert_eq!(out.len(), 10);
        assert!((0..n as u64).step_by(4).all(|i| out.ids.contains(&i)));
        // Removing more than have embeddings: all of those go, the rest stay.
        let few: Vec<u64> = vec![1, 2];
        let book = book_with_embeddings(n, &few, 3, 3);
        let out = select(
            &mut policy_fresh(r#"{"kind": "influence", "prune": 0.5}"#, n),
            &book,
            3,
        );
        assert_eq!(out.len(), 18);
        assert!(!out.ids.contains(&1) && !out.ids.contains(&2));
        // No embeddings at all: full data.
        let book = ScoreBook::new(n, ScoreFields::EMBEDDING);
        let mut p = policy_fresh(r#"{"kind": "influence"}"#, n);
        assert_eq!(select(&mut p, &book, 3).len(), n);
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
            r#"{"kind": "influence", "prune": 0.4}"#,
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
            r#"{"kind": "influence", "prune": 0.6}"#,
            r#"{"kind": "influence", "epsilon": 0.002}"#,
        ] {
            let a = select(&mut policy_fresh(json, n), &book, 3);
            let b = select(&mut policy_fresh(json, n), &book.clone(), 7);
            assert_eq!(a, b, "{json}");
        }
    }

    #[test]
    fn config_modes_defaults_and_errors() {
        let c = config(r#"{"kind": "influence"}"#);
        assert_eq!(c.mode(), InfluenceMode::Cardinality { prune: 0.3 });
        assert_eq!((c.score_epochs, c.sketch_dim, c.damping), (3, 512, None));
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
        ] {
            let e = err(&format!(r#"{{"kind": "influence", {json}}}"#));
            assert!(e.contains(key), "{json}: {e}");
        }
    }
}

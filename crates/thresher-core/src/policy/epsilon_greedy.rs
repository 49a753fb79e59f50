//! `epsilon_greedy` (Raju et al.; docs/policies.md, section "epsilon_greedy"): score = `loss_ema`.
//! Of the seen samples' budget, the top ⌈(1-ε)·K⌉ by score are kept and the rest of the budget is
//! drawn uniformly from the remaining seen samples, so that low-loss samples still get an
//! occasional look and their stale scores can recover. Never-seen samples are always kept.
//! Weight 1, except that with `rescale` (the guarded default) the random share's samples weigh
//! the inverse of their chance to be drawn. Re-planned every `period` epochs.

use serde::Deserialize;

use super::greedy_share::{GreedyShare, Share};
use super::period_cache::PeriodCache;
use super::{
    check_momentum, check_period, check_prune, default_momentum, PlanContext, Policy, Selection,
};
use crate::error::{Error, Result};
use crate::scores::{ScoreBook, ScoreFields};

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct EpsilonGreedyConfig {
    /// p, the fraction pruned each epoch.
    #[serde(default = "default_prune")]
    pub prune: f64,
    /// ε, the share of the budget drawn at random instead of by score; see
    /// [`EpsilonGreedyConfig::explore`] for the default.
    #[serde(default)]
    pub explore: Option<f64>,
    /// Weigh the random share's samples |R|/(K_seen − G) (the inverse of their chance to be
    /// drawn) instead of 1; see [`EpsilonGreedyConfig::rescale`] for the default.
    #[serde(default)]
    pub rescale: Option<bool>,
    /// The ScoreBook's EMA momentum.
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    /// Epochs between re-plans.
    #[serde(default = "default_period")]
    pub period: u64,
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
    #[serde(default = "super::default_noise_guard")]
    pub noise_guard: bool,
    /// Wrong reports in a row that make a sample look unlearnable.
    #[serde(default = "super::default_guard_window")]
    pub guard_window: u8,
}

fn default_prune() -> f64 {
    0.3
}
fn default_period() -> u64 {
    1
}

impl EpsilonGreedyConfig {
    pub fn validate(&self) -> Result<()> {
        check_prune("policy.prune", self.prune)?;
        check_explore(self.explore)?;
        check_momentum("policy.momentum", self.momentum)?;
        check_period("policy.period", self.period)
    }

    /// The random share in effect: `explore` when given, else 0.5 with the noise guard (half
    /// the seen budget drawn at random and rescaled was at least as accurate as random pruning
    /// in `results/noise/`, where the paper's 0.1 was below it), 1 with the guard under a
    /// budget of fewer than `guard_window` + 1 visits per sample (scores arrive too late to
    /// choose: `guard::default_explore`), and 0.1 without the guard (the paper's
    /// setting).
    pub fn explore(&self) -> f64 {
        let c = self;
        c.explore.unwrap_or_else(|| {
            super::default_explore(c.noise_guard, c.guard_window, c.budget, c.epochs, 0.1)
        })
    }

    /// Whether the random share is rescaled: `rescale` when given, else `noise_guard` without
    /// a `budget` and false under one. Under a budget the guard's passes keep the samples not
    /// yet judged first, so the rescaled share would start only in the last epochs, where the
    /// learning-rate schedule anneals, and raise the epoch's summed weight there; measured, it
    /// was below the share at weight 1 under label noise (docs/policies.md, *The noise guard*,
    /// step 4).
    pub fn rescale(&self) -> bool {
        self.rescale
            .unwrap_or(self.noise_guard && self.budget.is_none())
    }
}

/// Checks an `explore` key: 0 ≤ ε ≤ 1.
pub(crate) fn check_explore(explore: Option<f64>) -> Result<()> {
    match explore {
        Some(x) if !(0.0..=1.0).contains(&x) => Err(Error::invalid(format!(
            "config key `policy.explore`: {x} is out of range 0..=1"
        ))),
        _ => Ok(()),
    }
}

/// ⌈(1-ε)·k⌉, capped at k. The slack keeps float error from adding a sample: (1-0.7)·10 is
/// 3.0000000000000004 in f64, and ⌈·⌉ of that would be 4.
pub(crate) fn greedy_count(k: usize, explore: f64) -> usize {
    let x = (1.0 - explore) * k as f64;
    ((x - x.abs() * 1e-12 - 1e-9).ceil().max(0.0) as usize).min(k)
}

const STATE_TAG: u8 = 3;

pub struct EpsilonGreedy {
    config: EpsilonGreedyConfig,
    /// The epoch's count under a `budget`.
    keep: Option<usize>,
    n: usize,
    cache: PeriodCache,
    // Scratch reused across re-plans.
    /// The selection's scratch (`greedy_share.rs`).
    share: GreedyShare,
    /// Each id's `loss_ema`, copied out of the book's (ema, var) pairs for the passes that
    /// read scores as one flat array.
    score: Vec<f32>,
}

impl EpsilonGreedy {
    /// The feedback calls after which a sample counts as seen: `guard_window` with the noise
    /// guard, else 1.
    fn window(&self) -> u32 {
        if self.config.noise_guard {
            self.config.guard_window.into()
        } else {
            1
        }
    }

    pub fn new(config: EpsilonGreedyConfig, n: usize) -> Self {
        EpsilonGreedy {
            config,
            keep: None,
            n,
            cache: PeriodCache::default(),
            share: GreedyShare::new(n),
            score: crate::util::huge::with_capacity(n),
        }
    }

    /// Fills `self.score` with the book's `loss_ema`.
    fn fill_scores(&mut self, book: &ScoreBook) {
        self.score.clear();
        self.score
            .extend(book.loss_moments().iter().map(|&[ema, _]| ema));
    }

    /// Re-plans into `self.cache` (a mask, so the kept ids come out ascending and the later
    /// shuffle does not depend on how the selection happened to permute them).
    fn plan(&mut self, book: &ScoreBook, seed: u64, draw: u64) {
        let share = Share {
            window: self.window(),
            keep: self.keep,
            prune: self.config.prune,
            explore: self.config.explore(),
            guard: self.config.noise_guard.then_some(self.config.guard_window),
            seed,
            draw,
            rescale: self.config.rescale(),
        };
        let cache = &mut self.cache;
        cache.weight =
            self.share
                .plan(book, &self.score, &share, &mut cache.kept, &mut cache.heavy);
        cache.set(seed, draw);
    }
}

impl Policy for EpsilonGreedy {
    fn needs(&self) -> ScoreFields {
        ScoreFields::LOSS_EMA.union(ScoreFields::STREAK)
    }

    fn set_keep(&mut self, keep: Option<usize>) {
        self.keep = keep;
    }

    fn select(&mut self, ctx: &PlanContext<'_>, out: &mut Selection) {
        let book = ctx.scores;
        debug_assert_eq!(book.len(), self.n);
        // Keyed by the period index, not `epoch % period == 0`: a resumed run may start
        // mid-period, and must not return a plan cached for another period.
        let draw = ctx.epoch / self.config.period;
        self.fill_scores(book);
        if !self.cache.holds(ctx.seed, draw) {
            self.plan(book, ctx.seed, draw);
        }
        (out.score_mean, out.score_std) =
            self.cache.extend_selection(book.seen(), &self.score, out);
    }

    fn save_state(&self) -> Vec<u8> {
        self.cache.save(STATE_TAG)
    }

    fn load_state(&mut self, bytes: &[u8]) -> bool {
        self.cache.load(bytes, STATE_TAG, self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::policy::PolicyConfig;
    use std::collections::BTreeSet;

    fn config(prune: f64, explore: f64, period: u64) -> EpsilonGreedyConfig {
        EpsilonGreedyConfig {
            noise_guard: false,
            guard_window: 2,
            budget: None,
            epochs: None,
            prune,
            explore: Some(explore),
            rescale: None,
            momentum: 0.8,
            period,
        }
    }

    /// A book where every id is seen and id i has EMA `score(i)`.
    fn book_with(n: usize, score: impl Fn(usize) -> f32) -> ScoreBook {
        let mut book = ScoreBook::new(n, ScoreFields::LOSS_EMA);
        for id in 0..n {
            book.seen[id] = 1;
            book.loss_moments[id][0] = score(id);
        }
        book
    }

    /// Distinct scores in a scrambled order (37 is coprime to the sizes used).
    fn scrambled(i: usize) -> f32 {
        ((i * 37) % 1009) as f32
    }

    fn run(policy: &mut EpsilonGreedy, book: &ScoreBook, epoch: u64, seed: u64) -> Selection {
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

    /// The `k` ids with the highest score, by a full sort (ties by the smaller id).
    fn top_by_sort(book: &ScoreBook, k: usize) -> BTreeSet<u64> {
        let mut ids: Vec<u64> = (0..book.len() as u64)
            .filter(|&i| book.is_seen(i as usize))
            .collect();
        ids.sort_by(|&a, &b| {
            book.loss_ema()[b as usize]
                .total_cmp(&book.loss_ema()[a as usize])
                .then(a.cmp(&b))
        });
        ids[..k].iter().copied().collect()
    }

    fn set(s: &Selection) -> BTreeSet<u64> {
        s.ids.iter().copied().collect()
    }

    #[test]
    fn greedy_count_is_a_robust_ceiling() {
        assert_eq!(greedy_count(10, 0.7), 3); // (1-0.7)·10 = 3.0000000000000004 in f64
        assert_eq!(greedy_count(10, 0.3), 7);
        assert_eq!(greedy_count(50, 0.2), 40);
        assert_eq!(greedy_count(7, 0.1), 7); // ⌈6.3⌉
        assert_eq!(greedy_count(35, 0.1), 32); // ⌈31.5⌉
        assert_eq!(greedy_count(10, 0.0), 10);
        assert_eq!(greedy_count(10, 1.0), 0);
        assert_eq!(greedy_count(0, 0.5), 0);
    }

    #[test]
    fn top_share_present_and_rest_drawn_from_outside() {
        let n = 200;
        let book = book_with(n, scrambled);
        // K = 100, greedy = ⌈0.8·100⌉ = 80, explore = 20.
        let mut policy = EpsilonGreedy::new(config(0.5, 0.2, 1), n);
        let top80 = top_by_sort(&book, 80);
        let next20 = top_by_sort(&book, 100);
        let mut explored_ever = BTreeSet::new();
        let mut counts = vec![0u32; n];
        let epochs = 600;
        for e in 0..epochs {
            let s = run(&mut policy, &book, e, 11);
            assert_eq!(s.len(), 100);
            assert_eq!(set(&s).len(), 100, "ids are distinct");
            assert!(s.weights.iter().all(|&w| w == 1.0));
            assert!(top80.is_subset(&set(&s)), "epoch {e}: a top id is missing");
            let explored: BTreeSet<u64> = set(&s).difference(&top80).copied().collect();
            assert_eq!(explored.len(), 20);
            for &id in &explored {
                counts[id as usize] += 1;
            }
            explored_ever.extend(explored);
        }
        // Not merely the next-ranked ids: the explore share ranges over all 120 others.
        assert_ne!(explored_ever, next20.difference(&top80).copied().collect());
        assert_eq!(explored_ever.len(), 120);
        // Uniform over the 120: each is drawn with probability 20/120 per epoch.
        let q = 20.0 / 120.0;
        let expected = epochs as f64 * q;
        let var = epochs as f64 * q * (1.0 - q);
        let chi2: f64 = (0..n)
            .filter(|&i| !top80.contains(&(i as u64)))
            .map(|i| (counts[i] as f64 - expected).powi(2) / var)
            .sum();
        // 119 degrees of freedom: mean 119, sd ≈ 15.4.
        assert!(chi2 < 119.0 + 5.0 * 15.4, "chi2 = {chi2}");
    }

    #[test]
    fn greedy_share_is_a_ceiling_in_the_plan() {
        let n = 20;
        let book = book_with(n, scrambled);
        // K = 7, ε = 0.1: ⌈6.3⌉ = 7 greedy, none drawn.
        let mut policy = EpsilonGreedy::new(config(0.65, 0.1, 1), n);
        for e in 0..20 {
            assert_eq!(set(&run(&mut policy, &book, e, e)), top_by_sort(&book, 7));
        }
        // K = 10, ε = 0.7: 3 greedy (not 4, as a naive ⌈3.0000000000000004⌉ gives), so the
        // fourth-ranked id is only sometimes drawn.
        let mut policy = EpsilonGreedy::new(config(0.5, 0.7, 1), n);
        let top3 = top_by_sort(&book, 3);
        let fourth = *top_by_sort(&book, 4).difference(&top3).next().unwrap();
        let mut fourth_kept = 0;
        for e in 0..60 {
            let s = set(&run(&mut policy, &book, e, 2));
            assert!(top3.is_subset(&s));
            fourth_kept += s.contains(&fourth) as u32;
        }
        assert!((5..55).contains(&fourth_kept), "{fourth_kept}");
    }

    #[test]
    fn explore_zero_is_exactly_the_top_k() {
        for (n, p) in [(200, 0.5), (101, 0.3), (10, 0.25), (7, 0.9)] {
            let book = book_with(n, scrambled);
            let mut policy = EpsilonGreedy::new(config(p, 0.0, 1), n);
            let k = crate::policy::budget(n, p);
            for e in 0..3 {
                assert_eq!(set(&run(&mut policy, &book, e, e)), top_by_sort(&book, k));
            }
        }
    }

    #[test]
    fn exact_count_and_ascending_ids() {
        for (n, p, eps, k) in [
            (1000, 0.3, 0.1, 700),
            (10, 0.25, 0.3, 8),
            (7, 0.5, 0.5, 4),
            (1, 0.9, 0.1, 0),
            (13, 0.0, 1.0, 13),
        ] {
            let book = book_with(n, scrambled);
            let s = run(&mut EpsilonGreedy::new(config(p, eps, 1), n), &book, 2, 5);
            assert_eq!(s.len(), k, "n={n} p={p} ε={eps}");
            assert!(s.ids.windows(2).all(|w| w[0] < w[1]));
            assert_eq!(s.weights.len(), k);
        }
    }

    #[test]
    fn a_budget_too_tight_to_score_draws_the_whole_seen_budget() {
        let n = 200;
        let mut book = book_with(n, scrambled);
        book.seen.iter_mut().for_each(|s| *s = 2); // every id judged (window 2)
        let policy = |budget: f64| {
            let json = format!(
                r#"{{"policy": {{"kind": "epsilon_greedy", "budget": {budget}, "epochs": 8}}}}"#
            );
            let PolicyConfig::EpsilonGreedy(c) = Config::from_json(&json).unwrap().policy else {
                panic!("wrong kind")
            };
            let mut p = EpsilonGreedy::new(c, n);
            p.set_keep(Some(60));
            p
        };
        let top30 = top_by_sort(&book, 30);
        // budget·epochs = 2.4 < 3: no top share, so over many epochs the top 30 are kept no
        // more often than the others (each 60/200 of the time) and never all at once.
        let mut tight = policy(0.3);
        let mut top_kept = 0;
        let epochs = 300;
        for e in 0..epochs {
            let s = set(&run(&mut tight, &book, e, 7));
            assert_eq!(s.len(), 60);
            assert!(
                !top30.is_subset(&s),
                "epoch {e}: the top share is kept whole"
            );
            top_kept += s.intersection(&top30).count();
        }
        let mean = top_kept as f64 / epochs as f64; // 30·60/200 = 9 expected
        assert!((8.0..10.0).contains(&mean), "{mean}");
        // budget·epochs = 4 ≥ 3: half the seen budget, the top 30, is chosen by score.
        let mut loose = policy(0.5);
        for e in 0..20 {
            assert!(top30.is_subset(&set(&run(&mut loose, &book, e, 7))));
        }
    }

    #[test]
    fn never_seen_are_kept_and_budget_goes_to_seen() {
        let n = 100;
        // Epoch 0 on a fresh book is full data.
        let fresh = ScoreBook::new(n, ScoreFields::LOSS_EMA);
        let s = run(
            &mut EpsilonGreedy::new(config(0.5, 0.1, 1), n),
            &fresh,
            0,
            1,
        );
        assert_eq!(s.ids, (0..n as u64).collect::<Vec<_>>());
        assert!(s.score_mean.is_nan() && s.score_std.is_nan());
        // 30 unseen, K = 50: the 30 plus 20 seen ones.
        let mut book = book_with(n, scrambled);
        for id in (0..n)
            .step_by(10)
            .chain((1..n).step_by(10))
            .chain((2..n).step_by(10))
        {
            book.seen[id] = 0;
        }
        let unseen: BTreeSet<u64> = (0..n as u64)
            .filter(|&i| !book.is_seen(i as usize))
            .collect();
        assert_eq!(unseen.len(), 30);
        let s = run(&mut EpsilonGreedy::new(config(0.5, 0.1, 1), n), &book, 3, 1);
        assert_eq!(s.len(), 50);
        assert!(unseen.is_subset(&set(&s)));
        assert!(s.weights.iter().all(|&w| w == 1.0));
        // The seen share is greedy too: ⌈0.9·20⌉ = 18 of the top seen ones.
        assert!(top_by_sort(&book, 18).is_subset(&set(&s)));
        // More unseen than K: all unseen, no seen.
        let s = run(&mut EpsilonGreedy::new(config(0.8, 0.1, 1), n), &book, 3, 1);
        assert_eq!(set(&s), unseen);
    }

    #[test]
    fn score_summary_is_over_seen_ema() {
        let mut book = book_with(4, |i| [1.0, 3.0, 100.0, 5.0][i]);
        book.seen[2] = 0;
        let s = run(&mut EpsilonGreedy::new(config(0.5, 0.1, 1), 4), &book, 1, 0);
        assert!((s.score_mean - 3.0).abs() < 1e-12);
        assert!((s.score_std - (8.0f64 / 3.0).sqrt()).abs() < 1e-9);
    }

    #[test]
    fn period_caches_the_plan_and_survives_resume() {
        let n = 100;
        let a = book_with(n, scrambled);
        let b = book_with(n, |i| -scrambled(i)); // the opposite ranking
        let c = config(0.5, 0.0, 3);
        let mut policy = EpsilonGreedy::new(c.clone(), n);
        let first = set(&run(&mut policy, &a, 0, 7));
        assert_eq!(first, top_by_sort(&a, 50));
        // Scores change inside the period: the plan does not.
        assert_eq!(set(&run(&mut policy, &b, 1, 7)), first);
        assert_eq!(set(&run(&mut policy, &b, 2, 7)), first);
        // The next period re-plans from the book as it then is.
        assert_eq!(set(&run(&mut policy, &b, 3, 7)), top_by_sort(&b, 50));
        // A fresh policy whose first call is mid-period (a resume) plans at once ...
        let mut fresh = EpsilonGreedy::new(c.clone(), n);
        assert_eq!(set(&run(&mut fresh, &a, 4, 7)), first);
        assert_eq!(set(&run(&mut fresh, &b, 5, 7)), first);
        assert_eq!(set(&run(&mut fresh, &b, 6, 7)), top_by_sort(&b, 50));
        // ... and a saved cache carries the period's plan across a resume.
        let mut saver = EpsilonGreedy::new(c.clone(), n);
        run(&mut saver, &a, 3, 7);
        let state = saver.save_state();
        let mut restored = EpsilonGreedy::new(c.clone(), n);
        assert!(restored.load_state(&state));
        assert_eq!(set(&run(&mut restored, &b, 4, 7)), first);
        assert!(
            !EpsilonGreedy::new(c.clone(), 10).load_state(&state),
            "ids ≥ n"
        );
        assert!(!restored.load_state(&state[..state.len() - 1]));
        assert!(restored.load_state(&[]));
        assert!(EpsilonGreedy::new(c, n).save_state().is_empty());
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        let n = 300;
        let book = book_with(n, scrambled);
        let c = config(0.5, 0.5, 1);
        let s1 = run(&mut EpsilonGreedy::new(c.clone(), n), &book, 4, 1);
        let s2 = run(&mut EpsilonGreedy::new(c.clone(), n), &book, 4, 1);
        let s3 = run(&mut EpsilonGreedy::new(c.clone(), n), &book, 4, 2);
        let s4 = run(&mut EpsilonGreedy::new(c, n), &book, 5, 1);
        assert_eq!(s1, s2);
        assert_ne!(s1.ids, s3.ids);
        assert_ne!(s1.ids, s4.ids);
    }

    fn config_err(policy: &str) -> String {
        Config::from_json(&format!(r#"{{"policy": {policy}}}"#))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn config_defaults_and_errors_name_their_key() {
        let c = Config::from_json(r#"{"policy": {"kind": "epsilon_greedy"}}"#).unwrap();
        let PolicyConfig::EpsilonGreedy(c) = c.policy else {
            panic!("wrong kind")
        };
        assert_eq!(
            (c.prune, c.explore(), c.rescale(), c.momentum, c.period),
            (0.3, 0.5, true, 0.8, 1)
        );
        // Without the noise guard: the paper's ε = 0.1, weight 1.
        let c =
            Config::from_json(r#"{"policy": {"kind": "epsilon_greedy", "noise_guard": false}}"#)
                .unwrap();
        let PolicyConfig::EpsilonGreedy(c) = c.policy else {
            panic!("wrong kind")
        };
        assert_eq!((c.explore(), c.rescale()), (0.1, false));
        // Under a budget the share weighs 1 unless asked, and is the whole seen budget when
        // budget·epochs < guard_window + 1 (2.4 < 3 here; 3.0 and 4.0 are not below 3; with a
        // window of 1 or without the guard, 2.4 is not too tight).
        for (keys, explore, rescale) in [
            (r#""budget": 0.3, "epochs": 8"#, 1.0, false),
            (r#""budget": 0.3, "epochs": 8, "rescale": true"#, 1.0, true),
            (r#""budget": 0.3, "epochs": 8, "explore": 0.5"#, 0.5, false),
            (
                r#""budget": 0.3, "epochs": 8, "guard_window": 1"#,
                0.5,
                false,
            ),
            (
                r#""budget": 0.3, "epochs": 8, "guard_window": 3"#,
                1.0,
                false,
            ),
            (
                r#""budget": 0.3, "epochs": 8, "noise_guard": false"#,
                0.1,
                false,
            ),
            (r#""budget": 0.375, "epochs": 8"#, 0.5, false),
            (r#""budget": 0.5, "epochs": 8"#, 0.5, false),
            (r#""budget": 0.5, "epochs": 4"#, 1.0, false),
        ] {
            let json = format!(r#"{{"policy": {{"kind": "epsilon_greedy", {keys}}}}}"#);
            let PolicyConfig::EpsilonGreedy(c) = Config::from_json(&json).unwrap().policy else {
                panic!("wrong kind")
            };
            assert_eq!((c.explore(), c.rescale()), (explore, rescale), "{json}");
        }
        let e = config_err(r#"{"kind": "epsilon_greedy", "c": 1.0}"#);
        assert!(e.contains("`c`"), "{e}");
        for (bad, key) in [
            (r#""explore": 1.5"#, "policy.explore"),
            (r#""explore": -0.1"#, "policy.explore"),
            (r#""prune": 0.95"#, "policy.prune"),
            (r#""momentum": 0.0"#, "policy.momentum"),
            (r#""momentum": 1.5"#, "policy.momentum"),
            (r#""period": 0"#, "policy.period"),
        ] {
            let e = config_err(&format!(r#"{{"kind": "epsilon_greedy", {bad}}}"#));
            assert!(e.contains(key), "{bad}: {e}");
        }
    }
}

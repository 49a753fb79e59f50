//! Tests of the shared ε-greedy/UCB selection (`greedy_share`).

use super::*;
use crate::policy::looks_unlearnable;
use crate::policy::select::tests::AWKWARD_SCORES;
use crate::policy::{mean_std, EpsilonGreedy, EpsilonGreedyConfig, PlanContext, Policy};
use crate::policy::{Selection, Ucb, UcbConfig};
use crate::scores::ScoreFields;

/// The selection as it was before the plan became a mask (a list of judged ids, a u64
/// pool for the random share, the kept ids collected by a pass over the seen counts), kept
/// to pin the new one to it.
fn reference(book: &ScoreBook, score: &[f32], p: &Share) -> Vec<u64> {
    reference_share(book, score, p).0
}

/// `reference`'s kept ids, its random share's drawn ids and the size of the pool they
/// were drawn from.
fn reference_share(book: &ScoreBook, score: &[f32], p: &Share) -> (Vec<u64>, Vec<u64>, usize) {
    let n = book.len();
    let (counts, need) = (book.seen(), p.window.max(1));
    let mut seen: Vec<u64> = Vec::new();
    extend_where(&mut seen, n, |id| counts[id] >= need);
    let unseen = n - seen.len();
    if let (Some(k), Some(_)) = (p.keep, p.guard) {
        if unseen > k {
            // Every unjudged id of a lower report count, then a draw at the count that
            // reaches k.
            let mut ids: Vec<u64> = Vec::new();
            for c in 0..need {
                let level: Vec<u64> = (0..n as u64)
                    .filter(|&id| counts[id as usize] == c)
                    .collect();
                let left = k - ids.len();
                if level.len() >= left {
                    let mut rng = Rng::new(p.seed, Stream::Select, p.draw, 1);
                    let picks: Vec<bool> = rng.picks(level.len(), left).collect();
                    ids.extend(level.iter().zip(picks).filter(|t| t.1).map(|t| *t.0));
                    break;
                }
                ids.extend(level);
            }
            ids.sort_unstable();
            return (ids, Vec::new(), 0);
        }
    }
    let k = match p.keep {
        Some(k) => k.saturating_sub(unseen),
        None => seen_budget(n, p.prune, unseen),
    };
    let top = greedy_count(k, p.explore);
    let guard = p.guard;
    let mut kept = vec![false; n];
    mark_top_k(
        &seen,
        top,
        |id| match guard {
            Some(w) if looks_unlearnable(book, id as usize, w) => f32::NEG_INFINITY,
            _ => score[id as usize],
        },
        &mut kept,
        &mut Vec::new(),
    );
    let mut rest: Vec<u64> = Vec::new();
    extend_where(&mut rest, n, |id| (counts[id] >= need) & !kept[id]);
    let fill = k - top;
    let mut rng = Rng::new(p.seed, Stream::Select, p.draw, 0);
    let picks: Vec<bool> = rng.picks(rest.len(), fill).collect();
    let drawn: Vec<u64> = rest
        .iter()
        .zip(picks)
        .filter(|t| t.1)
        .map(|t| *t.0)
        .collect();
    for &id in &drawn {
        kept[id as usize] = true;
    }
    let mut ids = Vec::new();
    extend_where(&mut ids, n, |id| (counts[id] < need) | kept[id]);
    (ids, drawn, rest.len())
}

/// A book of `n` ids with scores from a pool with ties, NaN, ±0 and ±∞, feedback counts
/// 0..=3 (`unjudged` of them in 0..=1 for a share of ids, else ≥ 2) and streaks 0..=3.
/// Reported figures summed in lanes against `mean_std`'s sums in id order: equal to rounding
/// (relative 1e-12), and NaN together.
fn assert_close(got: f64, want: f64) {
    assert!(
        (got.is_nan() && want.is_nan()) || (got - want).abs() <= 1e-12 * want.abs().max(1.0),
        "{got} vs {want}"
    );
}

fn random_book(n: usize, seed: u64, unjudged: f64) -> (ScoreBook, Vec<f32>) {
    let mut book = ScoreBook::new(n, ScoreFields::LOSS_EMA.union(ScoreFields::STREAK));
    let mut rng = Rng::new(seed, Stream::Augment, 0, 0);
    let pool = AWKWARD_SCORES;
    for id in 0..n {
        book.seen[id] = if rng.unit_f64() < unjudged {
            rng.below(2) as u32
        } else {
            2 + rng.below(2) as u32
        };
        book.wrong_streak[id] = rng.below(4) as u8;
        let s = if rng.below(3) == 0 {
            pool[rng.below(pool.len() as u64) as usize]
        } else {
            rng.below(1000) as f32 * 0.25
        };
        book.loss_moments[id][0] = s;
    }
    let score = book.loss_ema().to_vec();
    (book, score)
}

#[test]
fn the_mask_plan_equals_the_list_plan() {
    let mut cases = 0;
    for (n, unjudged) in [
        (0, 0.0),
        (1, 0.0),
        (7, 0.5),
        (1000, 0.0),
        (1000, 0.3),
        (70_000, 0.0),
        (70_000, 0.02),
    ] {
        let (book, score) = random_book(n, n as u64 + 1, unjudged);
        let mut share = GreedyShare::new(n);
        let mut kept = Vec::new();
        for window in [1, 2, 3] {
            for guard in [None, Some(2)] {
                for keep in [None, Some(0), Some(n / 2), Some(n)] {
                    for (prune, explore) in [(0.0, 0.1), (0.3, 0.0), (0.3, 0.1), (0.9, 1.0)] {
                        let p = Share {
                            window,
                            keep,
                            prune,
                            explore,
                            guard,
                            seed: 5,
                            draw: cases,
                            rescale: false,
                        };
                        share.plan(&book, &score, &p, &mut kept, &mut Vec::new());
                        let mut got: Vec<u64> = Vec::new();
                        extend_where(&mut got, n, |id| kept[id]);
                        assert_eq!(kept.len(), n);
                        assert!(
                            got == reference(&book, &score, &p),
                            "n {n} window {window} guard {guard:?} keep {keep:?} \
                             prune {prune} explore {explore}"
                        );
                        cases += 1;
                    }
                }
            }
        }
    }
    assert_eq!(cases, 7 * 3 * 2 * 4 * 4);
}

#[test]
fn a_tight_budget_keeps_the_fewest_reported_first() {
    // 100 ids: 30 never reported, 50 reported once, 20 judged (2 reports). K = 40 < 80
    // unjudged: all 30 never-reported ids and 10 drawn from the once-reported, nothing
    // judged, weight 1. Without the guard the mask is the unjudged ids (the budget cuts).
    let n = 100;
    let mut book = ScoreBook::new(n, ScoreFields::LOSS_EMA.union(ScoreFields::STREAK));
    for id in 0..n {
        book.seen[id] = match id {
            0..30 => 0,
            30..80 => 1,
            _ => 2,
        };
    }
    let score = vec![1.0; n];
    let mut share = GreedyShare::new(n);
    let (mut kept, mut heavy) = (Vec::new(), Vec::new());
    let mut draws = std::collections::BTreeSet::new();
    for draw in 0..4 {
        let p = Share {
            window: 2,
            keep: Some(40),
            prune: 0.0,
            explore: 0.5,
            guard: Some(2),
            seed: 3,
            draw,
            rescale: true,
        };
        let w = share.plan(&book, &score, &p, &mut kept, &mut heavy);
        assert_eq!((w, heavy.len()), (1.0, 0));
        let ids: Vec<usize> = (0..n).filter(|&id| kept[id]).collect();
        assert_eq!(ids.len(), 40);
        assert!((0..30).all(|id| kept[id]), "every never-reported id");
        assert!(ids.iter().all(|&id| id < 80), "no judged id");
        draws.insert(ids);
    }
    assert!(
        draws.len() > 1,
        "the once-reported part is drawn per period"
    );
    // K below the never-reported count: K of them.
    let p = Share {
        window: 2,
        keep: Some(12),
        prune: 0.0,
        explore: 0.5,
        guard: Some(2),
        seed: 3,
        draw: 0,
        rescale: true,
    };
    share.plan(&book, &score, &p, &mut kept, &mut heavy);
    let ids: Vec<usize> = (0..n).filter(|&id| kept[id]).collect();
    assert!(ids.len() == 12 && ids.iter().all(|&id| id < 30), "{ids:?}");
    let p = Share { guard: None, ..p };
    share.plan(&book, &score, &p, &mut kept, &mut heavy);
    assert_eq!(kept.iter().filter(|&&k| k).count(), 80);
}

#[test]
fn the_rescaled_share_weighs_its_unflagged_draws_pool_over_drawn() {
    let mut checked = 0;
    for (n, unjudged) in [(7, 0.5), (1000, 0.0), (1000, 0.3), (70_000, 0.02)] {
        let (book, score) = random_book(n, n as u64 + 2, unjudged);
        let mut share = GreedyShare::new(n);
        let (mut kept, mut heavy) = (Vec::new(), Vec::new());
        for guard in [None, Some(2)] {
            for (prune, explore) in [(0.3, 0.5), (0.5, 0.1), (0.3, 0.0), (0.9, 1.0)] {
                let p = Share {
                    window: 2,
                    keep: None,
                    prune,
                    explore,
                    guard,
                    seed: 8,
                    draw: checked,
                    rescale: true,
                };
                let weight = share.plan(&book, &score, &p, &mut kept, &mut heavy);
                let (ids, drawn, pool) = reference_share(&book, &score, &p);
                let mut got: Vec<u64> = Vec::new();
                extend_where(&mut got, n, |id| kept[id]);
                assert!(got == ids, "the weights do not change the ids");
                let flagged =
                    |id: u64| guard.is_some_and(|w| looks_unlearnable(&book, id as usize, w));
                let mut want: Vec<u64> = drawn.iter().copied().filter(|&id| !flagged(id)).collect();
                want.sort_unstable();
                let mut marked: Vec<u64> = Vec::new();
                extend_where(&mut marked, heavy.len(), |id| heavy[id]);
                assert_eq!(marked, want, "n {n} guard {guard:?} explore {explore}");
                if drawn.is_empty() {
                    assert!(heavy.is_empty() && weight == 1.0);
                } else {
                    // |R|/(K_seen − G), capped at the steady weight (N − G_all)/(K − G_all).
                    let k = budget(n, prune);
                    let g = greedy_count(k, explore);
                    let steady = (n - g) as f64 / (k - g) as f64;
                    let raw = pool as f64 / drawn.len() as f64;
                    assert_eq!(weight, raw.min(steady) as f32, "n {n} prune {prune}");
                    assert!(weight >= 1.0);
                }
                // Without `rescale`: no heavy ids, weight 1, the same kept ids.
                let plain = Share {
                    rescale: false,
                    ..p
                };
                assert_eq!(
                    share.plan(&book, &score, &plain, &mut kept, &mut heavy),
                    1.0
                );
                assert!(heavy.is_empty());
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 32);
}

#[test]
fn the_policies_report_the_same_ids_and_figures_as_the_list_plan() {
    let n = 70_000;
    let (book, score) = random_book(n, 9, 0.01);
    let finite: Vec<f32> = score
        .iter()
        .map(|&s| if s.is_finite() { s } else { 1.5 })
        .collect();
    let mut book = book;
    for (m, &f) in book.loss_moments.iter_mut().zip(&finite) {
        m[0] = f;
    }
    for noise_guard in [false, true] {
        let eg: EpsilonGreedyConfig = serde_json::from_value(serde_json::json!({
            "prune": 0.3, "explore": 0.2, "noise_guard": noise_guard, "rescale": false
        }))
        .unwrap();
        let mut policy = EpsilonGreedy::new(eg, n);
        let mut out = Selection::default();
        out.clear();
        for epoch in 0..2 {
            out.clear();
            let ctx = PlanContext {
                epoch,
                seed: 3,
                scores: &book,
            };
            policy.select(&ctx, &mut out);
            let p = Share {
                window: if noise_guard { 2 } else { 1 },
                keep: None,
                prune: 0.3,
                explore: 0.2,
                guard: noise_guard.then_some(2),
                seed: 3,
                draw: epoch,
                rescale: false,
            };
            assert!(out.ids == reference(&book, &book.loss_ema().to_vec(), &p));
            assert!(out.weights.len() == out.ids.len() && out.weights.iter().all(|&w| w == 1.0));
            let (mean, std) = mean_std(
                (0..n)
                    .filter(|&id| book.is_seen(id))
                    .map(|id| book.loss_ema()[id]),
            );
            assert_close(out.score_mean, mean);
            assert_close(out.score_std, std);
        }
        let uc: UcbConfig =
            serde_json::from_value(serde_json::json!({ "noise_guard": noise_guard })).unwrap();
        let mut policy = Ucb::new(uc, n);
        out.clear();
        let ctx = PlanContext {
            epoch: 0,
            seed: 3,
            scores: &book,
        };
        policy.select(&ctx, &mut out);
        assert!(!out.ids.is_empty() && out.ids.windows(2).all(|w| w[0] < w[1]));
        // The figures as `fill_scores` summed them before: mean_std of the seen ids'
        // scores (in id order there; in lanes here, so equal up to rounding).
        let ucb = |id: usize| {
            let (ema, var) = (book.loss_ema()[id], book.loss_var()[id]);
            (ema as f64 + (var as f64).sqrt()) as f32
        };
        let (mean, std) = mean_std((0..n).filter(|&id| book.is_seen(id)).map(ucb));
        assert_close(out.score_mean, mean);
        assert_close(out.score_std, std);
        let ucb_scores: Vec<f32> = (0..n).map(ucb).collect();
        let p = Share {
            window: if noise_guard { 2 } else { 1 },
            keep: None,
            prune: 0.3,
            explore: if noise_guard { 0.5 } else { 0.0 },
            guard: noise_guard.then_some(2),
            seed: 3,
            draw: 0,
            rescale: false,
        };
        assert!(out.ids == reference(&book, &ucb_scores, &p));
        // A restored cache gives the same ids as the plan it was saved from.
        let mut back = Ucb::new(
            serde_json::from_value(serde_json::json!({ "noise_guard": noise_guard })).unwrap(),
            n,
        );
        assert!(back.load_state(&policy.save_state()));
        let mut again = Selection::default();
        again.clear();
        back.select(&ctx, &mut again);
        assert_eq!(again.ids, out.ids);
        // And the same weights: with the guard (rescaled by default) some exceed 1.
        assert_eq!(again.weights, out.weights);
        assert_eq!(out.weights.iter().any(|&w| w > 1.0), noise_guard);
    }
}

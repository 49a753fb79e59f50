//! The noise guard of the score-based policies: samples wrong at each of their last
//! `guard_window` correctness reports (at every one, with fewer reports) rank below every other
//! seen sample, so a policy that keeps the hardest samples does not keep the mislabeled ones;
//! the guarded default draws half of the seen budget at random outside the hardest part and
//! weighs each unflagged drawn sample the inverse of its chance to be drawn;
//! `"noise_guard": false` keeps the papers' rules; the report's `unlearnable_fraction` says how
//! many of the kept samples look unlearnable.

use thresher_core::{Config, Feedback, Planner};

const N: usize = 100;

/// Ids 0..20 behave like mislabeled samples: the highest loss, wrong at every report. Ids
/// 20..40 are hard but learnable: wrong in epoch 0 only. The rest are right. Loss falls with
/// the id, so "the hardest" is "the smallest ids".
fn feedback(id: u64, epoch: u64) -> (f32, u8) {
    let loss = if id < 20 {
        5.0
    } else {
        2.0 - id as f32 / 100.0
    };
    let correct = if id < 20 {
        0
    } else {
        u8::from(id >= 40 || epoch > 0)
    };
    (loss, correct)
}

/// `plan_ahead: false`: every batch's feedback is in when the next plan is made, so the counts
/// of reports below are whole epochs (with the default the last batch's would count one plan
/// later; that timing is tested in tests/planner.rs).
fn planner(policy: &str) -> Planner {
    let json = format!(
        r#"{{"seed": 1, "batch_size": 10, "shuffle": false, "plan_ahead": false,
            "source": {{"kind": "index", "len": {N}}}, "policy": {policy}}}"#
    );
    Planner::new(&Config::from_json(&json).unwrap(), N).unwrap()
}

/// Runs `epochs` epochs feeding every signal; returns the kept ids of the next epoch and its
/// report's unlearnable fraction.
fn kept_after(policy: &str, epochs: u64) -> (Vec<u64>, f64) {
    let (kept, unlearnable) = weighed_after(policy, epochs);
    (kept.into_iter().map(|(id, _)| id).collect(), unlearnable)
}

/// `kept_after` with each kept id's weight, ascending by id.
fn weighed_after(policy: &str, epochs: u64) -> (Vec<(u64, f32)>, f64) {
    let mut p = planner(policy);
    for _ in 0..epochs {
        while let Some(b) = p.next_batch().unwrap() {
            let (loss, correct): (Vec<f32>, Vec<u8>) =
                b.ids.iter().map(|&i| feedback(i, b.epoch)).unzip();
            let emb: Vec<f32> = b
                .ids
                .iter()
                .flat_map(|&i| {
                    let s = if i < 20 { 9.0 } else { 1.0 };
                    (0..3).map(move |j| s * (((i * 5 + j * 3) % 7) as f32 - 3.0))
                })
                .collect();
            p.feedback(&Feedback {
                ids: &b.ids,
                loss: &loss,
                grad_norm: Some(&loss),
                el2n: Some(&loss),
                correct: Some(&correct),
                embedding: Some(&emb),
                embedding_dim: 3,
            })
            .unwrap();
        }
    }
    let plan = p.epoch_plan();
    let mut kept: Vec<(u64, f32)> = plan.ids.iter().copied().zip(plan.weights.clone()).collect();
    kept.sort_unstable_by_key(|k| k.0);
    (kept, p.report().unlearnable_fraction)
}

/// Checks the guarded default's split of 50 kept ids out of 100 after two epochs: the 25
/// hardest learnable (ids 20..45) at weight 1, and 25 drawn from the other 75 judged ids, each
/// weighing 75/25 = 3 unless it looks unlearnable (ids 0..20: weight 1).
fn assert_guarded_split(policy: &str) {
    let (kept, unlearnable) = weighed_after(policy, 2);
    assert_eq!(kept.len(), 50, "{policy}");
    for &(id, w) in &kept {
        // Ids 0..20 (flagged, drawn) and 20..45 (the fixed part) weigh 1.
        let want = if id < 45 { 1.0 } else { 3.0 };
        assert_eq!(w, want, "{policy}: id {id}");
    }
    assert!(
        range(20, 45).iter().all(|i| kept.iter().any(|k| k.0 == *i)),
        "{policy}: {kept:?}"
    );
    let flagged = kept.iter().filter(|k| k.0 < 20).count();
    assert!(
        (unlearnable - flagged as f64 / 50.0).abs() < 1e-12,
        "{policy}"
    );
}

fn range(a: u64, b: u64) -> Vec<u64> {
    (a..b).collect()
}

#[test]
fn greedy_policies_keep_the_hardest_learnable_samples() {
    for kind in [
        // A first period of two epochs: every sample has two reports when the plan is made.
        r#""kind": "ucb", "c": 0, "explore": 0, "period": 2"#,
        r#""kind": "epsilon_greedy", "explore": 0, "period": 2"#,
        r#""kind": "el2n", "explore": 0, "score_epochs": 2"#,
        r#""kind": "grand", "explore": 0, "score_epochs": 2"#,
    ] {
        // K = 50: the 50 hardest that are not unlearnable are ids 20..70.
        let (kept, unlearnable) = kept_after(&format!(r#"{{{kind}, "prune": 0.5}}"#), 2);
        assert_eq!(kept, range(20, 70), "{kind}");
        assert_eq!(unlearnable, 0.0, "{kind}");
        // The paper's rule: the 50 highest scores, the 20 mislabeled-looking first.
        let (kept, unlearnable) = kept_after(
            &format!(r#"{{{kind}, "prune": 0.5, "noise_guard": false}}"#),
            2,
        );
        assert_eq!(kept, range(0, 50), "{kind}");
        assert!(
            (unlearnable - 20.0 / 50.0).abs() < 1e-12,
            "{kind}: {unlearnable}"
        );
    }
}

#[test]
fn the_guarded_default_draws_half_the_seen_budget_and_rescales_it() {
    for kind in [
        r#""kind": "ucb", "c": 0, "period": 2"#,
        r#""kind": "epsilon_greedy", "period": 2"#,
        r#""kind": "el2n", "score_epochs": 2"#,
        r#""kind": "grand", "score_epochs": 2"#,
    ] {
        assert_guarded_split(&format!(r#"{{{kind}, "prune": 0.5}}"#));
        // `rescale: false`: the same split at weight 1.
        let (kept, _) = weighed_after(&format!(r#"{{{kind}, "prune": 0.5, "rescale": false}}"#), 2);
        assert!(
            kept.len() == 50 && kept.iter().all(|k| k.1 == 1.0),
            "{kind}"
        );
    }
}

#[test]
fn a_sample_is_judged_after_two_reports() {
    // After one epoch every sample has one report (ids 0..40 wrong at it): none is judged yet,
    // so the guarded UCB keeps everything once more; the paper's rule prunes at once.
    let (kept, _) = kept_after(r#"{"kind": "ucb", "c": 0, "explore": 0, "prune": 0.5}"#, 1);
    assert_eq!(kept, range(0, 100));
    let (kept, _) = kept_after(
        r#"{"kind": "ucb", "c": 0, "prune": 0.5, "noise_guard": false}"#,
        1,
    );
    assert_eq!(kept, range(0, 50));
    // After the second epoch (period 1: epoch 1 was the full one), ids 20..40 were right and
    // only 0..20 look unlearnable.
    let (kept, _) = kept_after(r#"{"kind": "ucb", "c": 0, "explore": 0, "prune": 0.5}"#, 2);
    assert_eq!(kept, range(20, 70));
    // The guarded default also draws a random share (`explore` 0.5): of the 50 kept, the top
    // ⌈0.5·50⌉ = 25 by score (ids 20..45) and 25 drawn from the other judged samples.
    assert_guarded_split(r#"{"kind": "ucb", "c": 0, "prune": 0.5}"#);
}

#[test]
fn static_policies_score_for_at_least_the_window() {
    // One scoring epoch asked for, two used: at epoch 1 the subset is not fixed yet.
    let el2n = r#"{"kind": "el2n", "score_epochs": 1, "prune": 0.5, "explore": 0}"#;
    let (kept, _) = kept_after(el2n, 1);
    assert_eq!(kept, range(0, 100));
    let (kept, _) = kept_after(el2n, 2);
    assert_eq!(kept, range(20, 70));
}

#[test]
fn forgetting_ranks_never_correct_samples_lowest_not_highest() {
    // Paper rule: never correct is +∞, kept first. Guarded: they are unlearnable-looking.
    let (kept, _) = kept_after(
        r#"{"kind": "forgetting", "score_epochs": 2, "prune": 0.8, "explore": 0}"#,
        2,
    );
    assert!(kept.iter().all(|&i| i >= 20), "{kept:?}");
    // The guarded default: none of them in the fixed part (10 of the 20 kept, all ≥ 20), and
    // the random share is not rescaled for forgetting (its default; el2n and grand rescale):
    // every weight 1.
    let (kept, _) = weighed_after(
        r#"{"kind": "forgetting", "score_epochs": 2, "prune": 0.8}"#,
        2,
    );
    assert_eq!(kept.len(), 20);
    assert!(kept.iter().all(|k| k.1 == 1.0), "{kept:?}");
    assert!(kept.iter().filter(|k| k.0 >= 20).count() >= 10, "{kept:?}");
    // Rescaled when asked: a drawn sample that looks unlearnable still weighs 1, the other
    // drawn ones more.
    let (kept, _) = weighed_after(
        r#"{"kind": "forgetting", "score_epochs": 2, "prune": 0.8, "rescale": true}"#,
        2,
    );
    assert_eq!(kept.len(), 20);
    assert!(
        kept.iter().filter(|k| k.0 < 20).all(|k| k.1 == 1.0),
        "{kept:?}"
    );
    assert!(kept.iter().any(|k| k.0 >= 20 && k.1 > 1.0), "{kept:?}");
    let (kept, _) = kept_after(
        r#"{"kind": "forgetting", "score_epochs": 2, "prune": 0.8, "noise_guard": false}"#,
        2,
    );
    assert_eq!(kept, range(0, 20));
}

#[test]
fn influence_removes_unlearnable_samples_first() {
    // Without a random share the 50 kept are all outside the 20 flagged.
    let (kept, _) = kept_after(
        r#"{"kind": "influence", "score_epochs": 2, "prune": 0.5, "explore": 0}"#,
        2,
    );
    assert_eq!(kept.len(), 50);
    assert!(kept.iter().all(|&i| i >= 20), "{kept:?}");
    // The guarded default (`explore` 0.8): the fixed ⌈0.2·50⌉ = 10 are outside them (the
    // share of 40, drawn from the removal set, may bring some back); the share is not
    // rescaled, so every weight is 1 but a drawn flagged sample's, which is 1/2.
    let (kept, _) = weighed_after(
        r#"{"kind": "influence", "score_epochs": 2, "prune": 0.5}"#,
        2,
    );
    assert_eq!(kept.len(), 50);
    assert!(
        kept.iter().all(|k| k.1 == if k.0 < 20 { 0.5 } else { 1.0 }),
        "{kept:?}"
    );
    assert!(
        kept.iter().any(|k| k.0 < 20),
        "a flagged sample is drawn: {kept:?}"
    );
    assert!(kept.iter().filter(|k| k.0 >= 20).count() >= 10, "{kept:?}");
    // With `explore` 0.5 the fixed part is 25.
    let (kept, _) = weighed_after(
        r#"{"kind": "influence", "score_epochs": 2, "prune": 0.5, "explore": 0.5}"#,
        2,
    );
    assert_eq!(kept.len(), 50);
    assert!(kept.iter().filter(|k| k.0 >= 20).count() >= 25, "{kept:?}");
}

#[test]
fn policies_without_the_guard_report_nan() {
    for policy in [
        r#"{"kind": "random", "prune": 0.5}"#,
        r#"{"kind": "infobatch", "epochs": 4}"#,
    ] {
        let (_, unlearnable) = kept_after(policy, 2);
        assert!(unlearnable.is_nan(), "{policy}");
    }
    // A guarded policy before any correctness report: NaN too.
    let p = planner(r#"{"kind": "ucb"}"#);
    assert!(p.report().unlearnable_fraction.is_nan());
}

#[test]
fn guard_window_zero_is_refused() {
    let json = format!(
        r#"{{"source": {{"kind": "index", "len": {N}}},
            "policy": {{"kind": "ucb", "guard_window": 0}}}}"#
    );
    let err = match Config::from_json(&json) {
        Err(e) => e.to_string(),
        Ok(c) => Planner::new(&c, N).err().unwrap().to_string(),
    };
    assert!(err.contains("policy.guard_window"), "{err}");
}

//! Ranks: loaders with the same config but their own `rank` share one global plan and take
//! disjoint strided shares of it with equal batch counts; fed the same (gathered) feedback they
//! hold the same ScoreBook — the same as one process would at the same global batch — and a
//! checkpoint written at one world size continues the same global plan at another.
//!
//! The collective is simulated in-process: every step, each rank's real (non-padding) samples
//! are gathered in rank order and every loader is fed the union, which is what
//! `thresher.torch.distributed.all_gather_feedback` does across processes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use thresher_core::source::{ArraySource, Source};
use thresher_core::{Batch, Config, Feedback, Loader};

const N: usize = 1000;

fn source() -> Arc<dyn Source> {
    let pixels = (0..N * 4).map(|i| (i * 31 % 251) as u8).collect();
    Arc::new(ArraySource::new(pixels, [2, 2, 1], (0..N as i64).map(|i| i % 7).collect()).unwrap())
}

const INFOBATCH: &str = r#"{"kind": "infobatch", "prune": 0.5, "epochs": 6}"#;

fn loader(
    policy: &str,
    batch: usize,
    rank: usize,
    world: usize,
    resume: Option<&Path>,
    plan_ahead: bool,
) -> Loader {
    let mut c = Config::from_json(&format!(
        r#"{{"batch_size": {batch}, "workers": 2, "seed": 7, "rank": {rank},
            "world_size": {world}, "policy": {policy}, "plan_ahead": {plan_ahead}}}"#
    ))
    .unwrap();
    c.resume_from = resume.map(Path::to_path_buf);
    Loader::with_source(c, source()).unwrap()
}

fn ranks(policy: &str, batch: usize, world: usize, resume: Option<&Path>) -> Vec<Loader> {
    ranks_planning(policy, batch, world, resume, true)
}

fn ranks_planning(
    policy: &str,
    batch: usize,
    world: usize,
    resume: Option<&Path>,
    plan_ahead: bool,
) -> Vec<Loader> {
    (0..world)
        .map(|r| loader(policy, batch, r, world, resume, plan_ahead))
        .collect()
}

/// Every signal any policy reads, a function of (id, epoch) only, so the ScoreBook after an
/// epoch does not depend on which rank saw which sample or in which order.
fn feed(l: &Loader, ids: &[u64], epoch: u64) {
    let p = epoch * 4 + 3;
    let loss: Vec<f32> = ids
        .iter()
        .map(|&i| ((i * 7 + epoch * 3) % 5) as f32)
        .collect();
    let el2n: Vec<f32> = ids.iter().map(|&i| ((i * p) % 11) as f32 / 11.0).collect();
    let grad: Vec<f32> = ids.iter().map(|&i| ((i * p) % 13) as f32).collect();
    let correct: Vec<u8> = ids
        .iter()
        .map(|&i| (i + epoch).is_multiple_of(3) as u8)
        .collect();
    let emb: Vec<f32> = ids
        .iter()
        .flat_map(|&i| (0..4).map(move |k| ((i * (k + p)) % 17) as f32 - 8.0 + epoch as f32))
        .collect();
    l.feedback(&Feedback {
        ids,
        loss: &loss,
        grad_norm: Some(&grad),
        el2n: Some(&el2n),
        correct: Some(&correct),
        embedding: Some(&emb),
        embedding_dim: 4,
    })
    .unwrap();
}

/// One global step: `next` on every rank; None at the end of the epoch (on every rank at
/// once, or the test fails). Feeds every rank the gathered real samples.
fn step(ls: &[Loader]) -> Option<Vec<Batch>> {
    let batches: Vec<Option<Batch>> = ls.iter().map(|l| l.next().unwrap()).collect();
    if batches.iter().all(Option::is_none) {
        return None;
    }
    let batches: Vec<Batch> = batches
        .into_iter()
        .map(|b| b.expect("every rank yields the same number of batches"))
        .collect();
    let len = batches[0].len();
    let mut gathered = Vec::new();
    for b in &batches {
        assert_eq!(b.len(), len, "ranks' batches of one step have one length");
        gathered.extend_from_slice(&b.ids()[..b.len() - b.padding()]);
    }
    let epoch = batches[0].epoch();
    for l in ls {
        feed(l, &gathered, epoch);
    }
    Some(batches)
}

/// The real samples of one step in global order: rank r's sample j is position j·W + r.
fn global_order(batches: &[Batch]) -> Vec<(u64, f32)> {
    let w = batches.len();
    let mut slots = BTreeMap::new();
    for (r, b) in batches.iter().enumerate() {
        for j in 0..b.len() - b.padding() {
            slots.insert(j * w + r, (b.ids()[j], b.weights()[j]));
        }
    }
    slots.into_values().collect()
}

/// Runs `ls` to the end of the current epoch; returns the global order of what it delivered.
fn finish_epoch(ls: &[Loader]) -> Vec<(u64, f32)> {
    let mut order = Vec::new();
    while let Some(batches) = step(ls) {
        order.extend(global_order(&batches));
    }
    order
}

#[test]
fn ranks_share_one_plan_with_equal_batch_counts() {
    for policy in [
        INFOBATCH,
        r#"{"kind": "random", "prune": 0.3}"#,
        r#"{"kind": "ucb", "prune": 0.3}"#,
        r#"{"kind": "el2n", "prune": 0.3, "score_epochs": 2}"#,
        r#"{"kind": "influence", "prune": 0.3, "score_epochs": 1}"#,
    ] {
        // One process at global batch 64, and two ranks of 32 each.
        let single = ranks(policy, 64, 1, None);
        let two = ranks(policy, 32, 2, None);
        for epoch in 0..4u64 {
            let info: Vec<_> = two.iter().map(Loader::epoch_info).collect();
            assert_eq!(info[0].batches, info[1].batches, "{policy}");
            assert_eq!(info[0].samples, single[0].epoch_info().samples, "{policy}");
            let samples = info[0].samples as usize;
            // Full steps of 2 × 32: padded up, never short.
            assert_eq!(info[0].batches as usize, samples.div_ceil(64), "{policy}");

            let mut seen = vec![0u32; N];
            let mut padding = 0;
            let mut steps = 0;
            while let Some(batches) = step(&two) {
                steps += 1;
                for b in &batches {
                    assert_eq!(b.len(), 32, "{policy}: every batch full");
                    let real = b.len() - b.padding();
                    padding += b.padding();
                    for (j, &id) in b.ids().iter().enumerate() {
                        if j < real {
                            seen[id as usize] += 1;
                        } else {
                            assert_eq!(b.weights()[j], 0.0, "{policy}: padding has weight 0");
                        }
                    }
                }
            }
            assert_eq!(steps, info[0].batches, "{policy}");
            assert!(seen.iter().all(|&c| c <= 1), "{policy}: shards overlap");
            assert_eq!(
                seen.iter().filter(|&&c| c == 1).count(),
                samples,
                "{policy}"
            );
            assert_eq!(padding, steps as usize * 64 - samples, "{policy}");
            finish_epoch(&single);

            let d: Vec<_> = two.iter().chain(&single).map(Loader::digest).collect();
            assert!(
                d.iter().all(|x| *x == d[0]),
                "{policy} epoch {epoch}: {d:?}"
            );
            assert_eq!(d[0].epoch, epoch);
        }
    }
}

#[test]
fn checkpoints_are_rank_independent_and_resume_at_any_world_size() {
    for plan_ahead in [true, false] {
        resume_at_other_world_sizes(plan_ahead);
    }
}

/// With `plan_ahead` the next plan is made when the last step is handed out, so it sees the
/// feedback of every step but the last: a resumed run whose global step (W·B) differs from the
/// saving run's has another last step, hence another feedback sequence before the next plan,
/// and only the epoch under way is guaranteed to continue identically. With the same global
/// step (1 × 64, 4 × 16), or without `plan_ahead`, every later epoch is identical too.
fn resume_at_other_world_sizes(plan_ahead: bool) {
    let dir = tempfile::tempdir().unwrap();
    // The reference: one process, global batch 64, 3 epochs; the global order of each epoch
    // and the digests at each epoch's end.
    let reference = ranks_planning(INFOBATCH, 64, 1, None, plan_ahead);
    let mut orders = Vec::new();
    let mut digests = Vec::new();
    for _ in 0..3 {
        orders.push(finish_epoch(&reference));
        digests.push(reference[0].digest());
    }

    // Two ranks of 32: epoch 0, then 3 steps of epoch 1, then a checkpoint on each rank.
    let two = ranks_planning(INFOBATCH, 32, 2, None, plan_ahead);
    assert_eq!(finish_epoch(&two), orders[0]);
    let mut before = Vec::new();
    for _ in 0..3 {
        before.extend(global_order(&step(&two).unwrap()));
    }
    let paths: Vec<_> = (0..2)
        .map(|r| dir.path().join(format!("rank{r}")))
        .collect();
    for (l, p) in two.iter().zip(&paths) {
        l.save_state(p).unwrap();
    }
    let bytes: Vec<_> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert_eq!(bytes[0], bytes[1], "every rank writes the same checkpoint");
    assert_eq!(before[..], orders[1][..192]);

    // Resume at 1 × 64, 4 × 16 (position 192 is a whole number of steps) and 4 × 32 (it is
    // not: the layout starts at 192), and 3 × 10.
    for (world, batch) in [(1, 64), (4, 16), (4, 32), (3, 10)] {
        let what = format!("resumed at {world} × {batch}, plan_ahead {plan_ahead}");
        let resumed = ranks_planning(INFOBATCH, batch, world, Some(&paths[0]), plan_ahead);
        let info = resumed[0].epoch_info();
        assert_eq!(info.epoch, 1, "{what}");
        let rest = finish_epoch(&resumed);
        assert_eq!(rest[..], orders[1][192..], "{what}");
        if plan_ahead && world * batch != 64 {
            continue;
        }
        assert_eq!(resumed[0].digest(), digests[1], "{what}");
        assert_eq!(finish_epoch(&resumed), orders[2], "{what}");
        let d: Vec<_> = resumed.iter().map(Loader::digest).collect();
        assert!(d.iter().all(|x| *x == digests[2]), "{what}: {d:?}");
    }
}

#[test]
fn bad_rank_and_world_size_are_named() {
    for (config, key) in [
        (r#"{"rank": 2, "world_size": 2}"#, "rank"),
        (r#"{"world_size": 0}"#, "world_size"),
        (r#"{"rank": 1}"#, "rank"),
    ] {
        let e = Config::from_json(config).unwrap_err();
        assert!(
            e.message().starts_with(&format!("config key `{key}`")),
            "{e}"
        );
    }
}

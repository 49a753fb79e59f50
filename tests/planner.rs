//! The Planner on its own (no loader, no data): it must hand out exactly the ids, weights and
//! padding the Loader delivers for the same config and feedback, resume exactly from its own
//! checkpoints, and give every rank the same number of batches.

use std::sync::Arc;

use thresher_core::source::{ArraySource, Source};
use thresher_core::{Config, Feedback, IndexBatch, Loader, Planner};

const N: usize = 1000;

fn source() -> Arc<dyn Source> {
    let pixels = (0..N * 4).map(|i| (i % 251) as u8).collect();
    let labels = (0..N as i64).map(|i| i % 10).collect();
    Arc::new(ArraySource::new(pixels, [2, 2, 1], labels).unwrap())
}

fn config(extra: &str) -> Config {
    Config::from_json(&format!(
        r#"{{"seed": 5, "batch_size": 64, "workers": 3,
            "policy": {{"kind": "infobatch", "prune": 0.5, "epochs": 6}}{extra}}}"#
    ))
    .unwrap()
}

/// A loss that differs by id and by epoch, so InfoBatch's below-mean set moves.
fn loss(id: u64, epoch: u64) -> f32 {
    ((id * 37 + epoch * 11) % 101) as f32 / 10.0
}

fn feed(ids: &[u64], epoch: u64, sink: impl FnOnce(&Feedback<'_>)) {
    let losses: Vec<f32> = ids.iter().map(|&id| loss(id, epoch)).collect();
    sink(&Feedback {
        ids,
        loss: &losses,
        ..Default::default()
    });
}

/// Every batch of `epochs` epochs from the loader: (epoch, index, ids, weights, padding).
fn loader_batches(l: &Loader, epochs: u64) -> Vec<IndexBatch> {
    let mut out = Vec::new();
    for _ in 0..epochs {
        while let Some(b) = l.next().unwrap() {
            // Padding repeats ids; feed back the real samples only (as a trainer would).
            let real = &b.ids()[..b.len() - b.padding()];
            feed(real, b.epoch(), |fb| l.feedback(fb).unwrap());
            out.push(IndexBatch {
                epoch: b.epoch(),
                index: b.index(),
                ids: b.ids().to_vec(),
                weights: b.weights().to_vec(),
                padding: b.padding(),
            });
        }
    }
    out
}

fn planner_batches(p: &mut Planner, epochs: u64) -> Vec<IndexBatch> {
    let mut out = Vec::new();
    for _ in 0..epochs {
        while let Some(b) = p.next_batch().unwrap() {
            let real = b.ids[..b.ids.len() - b.padding].to_vec();
            feed(&real, b.epoch, |fb| p.feedback(fb).unwrap());
            out.push(b);
        }
    }
    out
}

#[test]
fn the_planner_alone_hands_out_what_the_loader_delivers() {
    let loader = Loader::with_source(config(""), source()).unwrap();
    let mut planner = Planner::new(&config(""), N).unwrap();
    let a = loader_batches(&loader, 4);
    let b = planner_batches(&mut planner, 4);
    assert_eq!(a, b);
    // InfoBatch pruned something after epoch 0, so this compared pruned plans too.
    let per_epoch = |e: u64| {
        a.iter()
            .filter(|x| x.epoch == e)
            .map(|x| x.ids.len())
            .sum::<usize>()
    };
    assert_eq!(per_epoch(0), N);
    assert!(per_epoch(1) < N, "epoch 1 kept {}", per_epoch(1));
    assert!(a.iter().any(|x| x.weights.iter().any(|&w| w > 1.0)));
    assert_eq!(loader.digest(), planner.digest());
    assert_eq!(
        loader.report().saved_fraction,
        planner.report().saved_fraction
    );
}

#[test]
fn epoch_info_is_known_before_the_first_batch_and_the_end_is_reported_once() {
    let mut p = Planner::new(&config(""), N).unwrap();
    let info = p.epoch_info();
    assert_eq!((info.epoch, info.batches, info.samples), (0, 16, N as u64));
    let mut batches = 0;
    while p.next_batch().unwrap().is_some() {
        batches += 1;
    }
    assert_eq!(batches, 16);
    assert!(p.epoch_done());
    assert_eq!(p.report().delivered, 16);
    // The next call begins epoch 1.
    let b = p.next_batch().unwrap().unwrap();
    assert_eq!((b.epoch, b.index), (1, 0));
}

#[test]
fn a_planner_resumes_exactly_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("planner.ckpt");
    let mut a = Planner::new(&config(""), N).unwrap();
    planner_batches(&mut a, 1);
    // Three batches into the (pruned) epoch 1.
    for _ in 0..3 {
        let b = a.next_batch().unwrap().unwrap();
        feed(&b.ids, b.epoch, |fb| a.feedback(fb).unwrap());
    }
    a.save_state(&path).unwrap();
    let quoted = serde_json::to_string(path.to_str().unwrap()).unwrap();
    let mut b = Planner::new(&config(&format!(r#", "resume_from": {quoted}"#)), N).unwrap();
    assert_eq!(a.digest(), b.digest());
    assert_eq!(b.delivered(), 3);
    let rest_a = planner_batches(&mut a, 3);
    let rest_b = planner_batches(&mut b, 3);
    assert_eq!(rest_a, rest_b);
    assert_eq!(rest_a[0].epoch, 1);
    assert_eq!(rest_a[0].index, 3);
}

#[test]
fn ranks_share_one_plan_with_equal_batch_counts() {
    let ranks: Vec<Planner> = (0..3)
        .map(|r| Planner::new(&config(&format!(r#", "rank": {r}, "world_size": 3"#)), N).unwrap())
        .collect();
    let mut ranks = ranks;
    let mut seen = vec![0u32; N];
    let mut counts = Vec::new();
    for p in &mut ranks {
        let mut count = 0;
        while let Some(b) = p.next_batch().unwrap() {
            count += 1;
            assert_eq!(b.ids.len(), 64, "every batch is full under world_size > 1");
            for (i, &id) in b.ids.iter().enumerate() {
                let padding = i >= b.ids.len() - b.padding;
                assert_eq!(b.weights[i] == 0.0, padding);
                if !padding {
                    seen[id as usize] += 1;
                }
            }
        }
        counts.push(count);
    }
    assert!(counts.iter().all(|&c| c == counts[0]), "{counts:?}");
    // Epoch 0 keeps everything: every id exactly once over the ranks, padding aside.
    assert!(seen.iter().all(|&c| c == 1));
    let d: Vec<_> = ranks.iter().map(|p| p.digest()).collect();
    assert!(d.iter().all(|x| *x == d[0]));
}

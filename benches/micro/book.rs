//! The ScoreBook's side: `feedback` (samples/s ingested, through `ScoreBook::feedback` and
//! through `Loader::feedback`) and `book_bytes` (bytes per sample for each policy's fields).

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use thresher_core::source::ArraySource;
use thresher_core::{Config, Feedback, Loader, Rng, ScoreBook, ScoreFields, Stream};

use crate::plans::cases;
use crate::{cpu_now, load, median, policy_config, unit, Args, BATCH, IMAGENET};

/// Runs `pass` 1 + `passes` times (the first warms the caches and is not counted) and returns
/// one feedback row: median and best rate over the counted passes, and the median rate in this
/// thread's CPU time (which, on a shared machine, leaves out the time the thread was preempted).
fn feedback_row(path: &str, name: &str, n: usize, passes: usize, mut pass: impl FnMut()) -> Value {
    let (mut secs, mut cpu) = (Vec::new(), Vec::new());
    for p in 0..=passes {
        let (t, c) = (Instant::now(), cpu_now());
        pass();
        if p > 0 {
            secs.push(t.elapsed().as_secs_f64());
            cpu.push(cpu_now() - c);
        }
    }
    let best = secs.iter().cloned().fold(f64::INFINITY, f64::min);
    let (s, c) = (median(&mut secs), median(&mut cpu));
    eprintln!(
        "feedback: N = {n}, {path}, {name}: {:.1} M samples/s, {:.1} M/s of CPU time (load {:.2})",
        n as f64 / s / 1e6,
        n as f64 / c / 1e6,
        load()
    );
    json!({"path": path, "variant": name, "n": n, "batch": BATCH,
           "samples_per_s": n as f64 / s, "ns_per_sample": s / n as f64 * 1e9,
           "best_samples_per_s": n as f64 / best, "cpu_samples_per_s": n as f64 / c,
           "load": load()})
}

/// Feedback in batches of 256 ids in shuffled order, over N = 60,000 (Fashion-MNIST: the book
/// fits in cache) and N = 1.28M (ImageNet-1k: every field of every id is a cache miss).
pub(crate) fn feedback(args: &Args) -> Value {
    let mut rows = Vec::new();
    for n in [60_000, if args.quick { 200_000 } else { IMAGENET }] {
        feedback_at(args, n, &mut rows);
    }
    json!({"rows": rows})
}

/// One feedback call's ids and signals: loss, grad_norm, el2n, correct.
type Signals<'a> = (&'a [u64], Vec<f32>, Vec<f32>, Vec<f32>, Vec<u8>);

fn feedback_at(args: &Args, n: usize, rows: &mut Vec<Value>) {
    let mut order: Vec<u64> = (0..n as u64).collect();
    Rng::new(1, Stream::Shuffle, 0, 0).shuffle(&mut order);
    let loss: Vec<f32> = (0..n as u64).map(|i| unit(0, i)).collect();
    let grad: Vec<f32> = (0..n as u64).map(|i| unit(1, i)).collect();
    let el2n: Vec<f32> = (0..n as u64).map(|i| unit(2, i)).collect();
    let correct: Vec<u8> = (0..n as u64).map(|i| (unit(3, i) < 0.8) as u8).collect();
    let all = ScoreFields::LOSS_LAST
        .union(ScoreFields::LOSS_EMA)
        .union(ScoreFields::GRAD_NORM)
        .union(ScoreFields::EL2N)
        .union(ScoreFields::CORRECT);
    // At least ~6M samples a variant, so that small N is not all timer noise.
    let passes = (if args.quick { 3 } else { 6 }) * (IMAGENET / n).clamp(1, 20);
    // (name, book fields, with every signal)
    let variants: [(&str, ScoreFields, bool); 3] = [
        (
            "loss only, book of infobatch (loss_last)",
            ScoreFields::LOSS_LAST,
            false,
        ),
        (
            "loss only, book of ucb (loss_ema, loss_var)",
            ScoreFields::LOSS_EMA,
            false,
        ),
        (
            "all fields (loss, grad_norm, el2n, correct), every book field",
            all,
            true,
        ),
    ];
    for (name, fields, full) in variants {
        let mut book = ScoreBook::new(n, fields);
        // Per-batch signal slices gathered up front, so the timed loop is the ingest alone.
        let gather = |src: &[f32], ids: &[u64]| -> Vec<f32> {
            ids.iter().map(|&i| src[i as usize]).collect()
        };
        let batches: Vec<Signals> = order
            .chunks(BATCH)
            .map(|ids| {
                (
                    ids,
                    gather(&loss, ids),
                    if full { gather(&grad, ids) } else { Vec::new() },
                    if full { gather(&el2n, ids) } else { Vec::new() },
                    if full {
                        ids.iter().map(|&i| correct[i as usize]).collect()
                    } else {
                        Vec::new()
                    },
                )
            })
            .collect();
        // Each pass is booked under its own epoch, as successive epochs of training would be.
        let mut epoch = 0u64;
        rows.push(feedback_row("ScoreBook::feedback", name, n, passes, || {
            for (ids, l, g, e, c) in &batches {
                let fb = Feedback {
                    ids,
                    loss: l,
                    grad_norm: full.then_some(&g[..]),
                    el2n: full.then_some(&e[..]),
                    correct: full.then_some(&c[..]),
                    ..Default::default()
                };
                book.feedback(&fb, epoch).expect("valid feedback");
            }
            epoch += 1;
        }));
        if !full && fields == ScoreFields::LOSS_LAST {
            // The same through the loader (its mutex and epoch counter), infobatch's book.
            let source = ArraySource::new(vec![0; n], [1, 1, 1], vec![0; n]).expect("source");
            let config = Config::from_json(
                r#"{"batch_size": 256, "workers": 1, "prefetch": 1,
                    "policy": {"kind": "infobatch", "prune": 0.5, "epochs": 100},
                    "transform": {"dtype": "u8"}}"#,
            )
            .expect("config");
            let loader = Loader::with_source(config, Arc::new(source)).expect("loader");
            rows.push(feedback_row("Loader::feedback", name, n, passes, || {
                for (ids, l, _, _, _) in &batches {
                    let fb = Feedback {
                        ids,
                        loss: l,
                        ..Default::default()
                    };
                    loader.feedback(&fb).expect("valid feedback");
                }
            }));
        }
    }
}

/// ScoreBook bytes per sample for each policy's fields (embeddings counted separately).
pub(crate) fn book_bytes() -> Value {
    let rows: Vec<Value> = cases(512)
        .iter()
        .map(|case| {
            let config = policy_config(&case.config);
            let fields = config.build(1000).needs();
            let book = ScoreBook::with_options(1000, fields, 0.8, 512, 0);
            let per = book.bytes_per_sample();
            let emb = if fields.contains(ScoreFields::EMBEDDING) {
                4 * config.sketch_dim()
            } else {
                0
            };
            json!({"policy": case.name, "bytes_per_sample": per,
                   "embedding_bytes_per_sample": emb,
                   "imagenet_mb": (per + emb) as f64 * IMAGENET as f64 / 1e6})
        })
        .collect();
    json!({"rows": rows})
}

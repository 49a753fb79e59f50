//! The loader as the trainer sees it: `overhead` (consumer-side `next` + release per batch)
//! and `boundary` (the wait at an epoch boundary, in batch times).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use thresher_core::source::ArraySource;
use thresher_core::{Config, Feedback, Loader};

use crate::{load, median, percentile, unit, Args, BATCH};

/// A loader over `n` one-byte samples, u8 output, batch 256, `workers` workers.
fn tiny_loader(n: usize, workers: usize, prefetch: usize, policy: &str) -> Loader {
    let source = ArraySource::new(vec![7; n], [1, 1, 1], vec![0; n]).expect("source");
    let config = Config::from_json(&format!(
        r#"{{"batch_size": {BATCH}, "workers": {workers}, "prefetch": {prefetch},
            "policy": {policy}, "transform": {{"dtype": "u8"}}}}"#
    ))
    .expect("config");
    Loader::with_source(config, Arc::new(source)).expect("loader")
}

/// Consumer-side `next` + release per batch, with workers far enough ahead not to wait: the
/// consumer pauses 100 µs between batches (a trainer's step, off the CPU), in which the workers
/// refill the window (one-byte samples are quick to make), then times the call and the
/// release alone. The first batch of each epoch (which makes the plan) is left out; the
/// boundary has its own figure. Also back to back (no pause), where the consumer outruns the
/// workers and the figure includes waiting for them.
pub(crate) fn overhead(args: &Args) -> Value {
    let n = 1 << 18;
    let epochs = if args.quick { 1 } else { 2 };
    let mut rows = Vec::new();
    for (pause_us, workers) in [(100u64, 1usize), (100, 2), (0, 2)] {
        let loader = tiny_loader(n, workers, 32, r#"{"kind": "full"}"#);
        while loader.next().expect("next").is_some() {} // warm-up epoch
        let mut per = Vec::new();
        let mut waited = 0.0;
        let mut busy = 0.0;
        for _ in 0..epochs {
            let mut k = 0;
            loop {
                if pause_us > 0 {
                    std::thread::sleep(Duration::from_micros(pause_us));
                }
                let t = Instant::now();
                let b = loader.next().expect("next");
                let Some(b) = b else { break };
                drop(b);
                let dt = t.elapsed().as_secs_f64();
                if k > 0 {
                    per.push(dt);
                    busy += dt;
                }
                k += 1;
            }
            waited += loader.report().consumer_wait_s;
        }
        per.sort_by(f64::total_cmp);
        let row = json!({
            "workers": workers, "batch": BATCH, "batches": per.len(), "pause_us": pause_us,
            "median_us": percentile(&per, 0.5) * 1e6, "p90_us": percentile(&per, 0.9) * 1e6,
            "p99_us": percentile(&per, 0.99) * 1e6, "mean_us": busy / per.len() as f64 * 1e6,
            "waited_fraction_of_calls": waited / busy, "load": load(),
        });
        eprintln!("overhead: {row}");
        rows.push(row);
    }
    json!({"rows": rows})
}

/// The wait at the epoch boundary, in steady-state batch times: Fashion-MNIST train as f32
/// NCHW normalised, batch 256, 2 workers, prefetch 8, with per-sample loss feedback after every
/// batch. Two trainers: one that takes no time (the loader is the bottleneck: the strictest
/// case) and one whose step takes 2 ms off the CPU (sleep: a GPU step), where workers keep the
/// window full and the boundary is the only wait.
pub(crate) fn boundary(args: &Args) -> Value {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/fashion-mnist");
    let epochs = if args.quick { 3 } else { 6 };
    let mut rows = Vec::new();
    for (policy, pjson) in [
        ("full", r#"{"kind": "full"}"#),
        (
            "infobatch",
            r#"{"kind": "infobatch", "prune": 0.5, "epochs": 100}"#,
        ),
    ] {
        for step_ms in [0.0, 2.0] {
            let config = Config::from_json(&format!(
                r#"{{"source": {{"kind": "idx", "images": "{dir}/train-images-idx3-ubyte.gz",
                                 "labels": "{dir}/train-labels-idx1-ubyte.gz"}},
                    "batch_size": {BATCH}, "workers": 2, "prefetch": 8, "policy": {pjson},
                    "transform": {{"dtype": "f32", "normalize": {{"mean": [0.286], "std": [0.353]}}}}}}"#
            ));
            let Ok(config) = config else { continue };
            let loader = match Loader::new(config) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("boundary: skipped ({e}; run `make setup`)");
                    return json!({"rows": [], "skipped": e.to_string()});
                }
            };
            let mut waits = Vec::new();
            let mut steady = Vec::new();
            let mut loss = vec![0f32; BATCH];
            for epoch in 0..=epochs {
                let t_begin = Instant::now();
                let mut first = None;
                let mut last = t_begin;
                let mut k = 0usize;
                while let Some(b) = loader.next().expect("next") {
                    let now = Instant::now();
                    if first.is_none() {
                        first = Some(now - t_begin);
                    } else if k >= 4 {
                        // Steady state: the interval between deliveries (the trainer's step
                        // included), past the refill.
                        steady.push((now - last).as_secs_f64());
                    }
                    last = now;
                    for (l, &id) in loss.iter_mut().zip(b.ids()) {
                        *l = unit(epoch, id);
                    }
                    loader
                        .feedback(&Feedback {
                            ids: b.ids(),
                            loss: &loss[..b.len()],
                            ..Default::default()
                        })
                        .expect("feedback");
                    drop(b);
                    if step_ms > 0.0 {
                        std::thread::sleep(Duration::from_secs_f64(step_ms / 1e3));
                    }
                    k += 1;
                }
                // Epoch 0's first batch comes from a plan made at creation; from epoch 1 on,
                // the next `next` makes the plan and waits for the refill.
                if epoch > 0 {
                    waits.push(first.expect("a batch").as_secs_f64());
                }
            }
            let batch_time = median(&mut steady);
            // The wait is the boundary's `next` call alone: the trainer's step before it is not
            // part of it.
            let wait = median(&mut waits);
            let row = json!({
                "policy": policy, "trainer_step_ms": step_ms, "epochs": epochs,
                "boundary_wait_ms": wait * 1e3, "boundary_wait_max_ms":
                    waits.iter().cloned().fold(0.0, f64::max) * 1e3,
                "batch_time_ms": batch_time * 1e3,
                "wait_in_batches": wait / batch_time, "load": load(),
            });
            eprintln!("boundary: {row}");
            rows.push(row);
        }
    }
    json!({"rows": rows})
}

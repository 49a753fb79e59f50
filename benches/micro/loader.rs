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

/// Every per-epoch policy, with the scoring epochs short enough that the later boundaries of a
/// run (epoch ≥ 2) plan from scores: the static policies and `influence` choose their subset
/// (the one-off solve) at one boundary and return it at the others.
const BOUNDARY_POLICIES: &[(&str, &str)] = &[
    ("full", r#"{"kind": "full"}"#),
    ("random", r#"{"kind": "random", "prune": 0.5}"#),
    (
        "epsilon_greedy",
        r#"{"kind": "epsilon_greedy", "prune": 0.5}"#,
    ),
    ("ucb", r#"{"kind": "ucb", "prune": 0.5}"#),
    (
        "infobatch",
        r#"{"kind": "infobatch", "prune": 0.5, "epochs": 100}"#,
    ),
    (
        "el2n",
        r#"{"kind": "el2n", "prune": 0.5, "score_epochs": 2}"#,
    ),
    (
        "grand",
        r#"{"kind": "grand", "prune": 0.5, "score_epochs": 2}"#,
    ),
    (
        "forgetting",
        r#"{"kind": "forgetting", "prune": 0.5, "score_epochs": 2}"#,
    ),
    (
        "influence",
        r#"{"kind": "influence", "prune": 0.5, "score_epochs": 2}"#,
    ),
];

/// `plan_ahead` for a fast trainer: enough batches before the end that a worker has made the
/// next plan (a few tenths of a millisecond at 60,000 ids) before the trainer gets there.
const FAST_AHEAD: usize = 16;

/// The batches before the boundary over which the time lost around it is counted.
const AROUND: usize = 24;

/// Embedding length fed to `influence` (a last-layer gradient of a small head).
const EMBED: usize = 16;

/// The wait at the epoch boundary, in steady-state batch times: Fashion-MNIST train as f32
/// NCHW normalised, batch 256, 2 workers, prefetch 8, with feedback after every batch carrying
/// every signal the policy reads. Two trainers: one that takes no time (the loader is the
/// bottleneck: the strictest case) and one whose step takes 2 ms off the CPU (sleep: a GPU
/// step), where workers keep the window full and the boundary is the only wait.
///
/// The wait is what the boundary costs the trainer inside the loader's calls beyond steady
/// calls: the `next` that reports the end, and what the `next` returning the old epoch's last
/// batch (with `plan_ahead` 1 the plan falls due in that call) and the `next` returning the new
/// epoch's first batch each took beyond a steady `next`: the mean time a steady call spends
/// inside `next`. When the loader is the bottleneck every call waits for its batch, so the
/// first batch's own wait is no cost of the boundary; the raw sum (the first call whole, the
/// last beyond the median steady call: the record's formula until 2026-12-04) is kept as
/// `boundary_wait_raw_ms`. Since a plan made earlier (`plan_ahead` k)
/// costs its CPU time somewhere in the epoch's last batches instead, each row also has the
/// time lost around the boundary: from the delivery before the last `AROUND` batches of an
/// epoch to the next epoch's first delivery, beyond `AROUND` + 1 mean steady intervals. Rows for
/// every policy with `plan_ahead` 1 (the default) and `FAST_AHEAD`, and for `full` and
/// `infobatch` without it (the earlier rule, for comparison).
pub(crate) fn boundary(args: &Args) -> Value {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/fashion-mnist");
    // 20 boundaries: at a 0 ms step a boundary's wait is either a few µs or, when the OS runs a
    // worker instead of the trainer's thread, a ~100 µs hiccup (benches/profiling.md); the
    // median of 10 flipped between the two from run to run.
    let epochs = if args.quick { 4 } else { 20 };
    let mut rows = Vec::new();
    let mut cases = Vec::new();
    for ahead in [1, FAST_AHEAD] {
        for &(policy, pjson) in BOUNDARY_POLICIES {
            cases.push((policy, pjson, ahead));
        }
    }
    for &(policy, pjson) in BOUNDARY_POLICIES {
        if policy == "full" || policy == "infobatch" {
            cases.push((policy, pjson, 0));
        }
    }
    for (policy, pjson, plan_ahead) in cases {
        if !args.wants_policy(policy) {
            continue;
        }
        for step_ms in [0.0, 2.0] {
            let plan_ahead = match plan_ahead {
                0 => "false".to_string(),
                1 => "true".to_string(),
                k => k.to_string(),
            };
            let config = Config::from_json(&format!(
                r#"{{"source": {{"kind": "idx", "images": "{dir}/train-images-idx3-ubyte.gz",
                                 "labels": "{dir}/train-labels-idx1-ubyte.gz"}},
                    "batch_size": {BATCH}, "workers": 2, "prefetch": 8, "policy": {pjson},
                    "plan_ahead": {plan_ahead},
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
            let mut raw_waits = Vec::new();
            let mut around = Vec::new();
            let mut last_extra = Vec::new();
            let mut steady = Vec::new();
            // When each delivery of the epoch under way came (reused from epoch to epoch).
            let mut times: Vec<Instant> = Vec::new();
            let mut prev_times: Vec<Instant> = Vec::new();
            let mut calls = Vec::new();
            let mut loss = vec![0f32; BATCH];
            let mut grad = vec![0f32; BATCH];
            let mut correct = vec![0u8; BATCH];
            let mut emb = vec![0f32; BATCH * EMBED];
            let mut prev_last = None;
            for epoch in 0..=epochs as u64 {
                // Known once the epoch's first batch is out (asking before it would make the
                // plan without `plan_ahead`, outside the calls timed).
                let mut batches = usize::MAX;
                let mut first = None;
                let mut last_call = 0.0;
                let mut last = Instant::now();
                let mut k = 0usize;
                times.clear();
                let end_call;
                loop {
                    let t = Instant::now();
                    let got = loader.next().expect("next");
                    let now = Instant::now();
                    let call = (now - t).as_secs_f64();
                    let Some(b) = got else {
                        end_call = call;
                        break;
                    };
                    times.push(now);
                    if first.is_none() {
                        first = Some(call);
                        batches = loader.epoch_info().batches as usize;
                    } else if k >= 4 && k + AROUND + 1 < batches {
                        // Steady state: the interval between deliveries (the trainer's step
                        // included), past the refill, and the time inside `next`.
                        steady.push((now - last).as_secs_f64());
                        calls.push(call);
                    }
                    if k + 1 == batches {
                        last_call = call;
                    }
                    last = now;
                    let n = b.len();
                    for (j, &id) in b.ids().iter().enumerate() {
                        loss[j] = unit(epoch, id);
                        grad[j] = unit(epoch + 1000, id);
                        correct[j] = (loss[j] < 0.7) as u8;
                        for (x, e) in emb[j * EMBED..(j + 1) * EMBED].iter_mut().enumerate() {
                            *e = unit(epoch * 64 + x as u64, id) - 0.5;
                        }
                    }
                    let influence = policy == "influence";
                    loader
                        .feedback(&Feedback {
                            ids: b.ids(),
                            loss: &loss[..n],
                            grad_norm: Some(&grad[..n]),
                            el2n: Some(&loss[..n]),
                            correct: Some(&correct[..n]),
                            embedding: influence.then_some(&emb[..n * EMBED]),
                            embedding_dim: if influence { EMBED } else { 0 },
                        })
                        .expect("feedback");
                    drop(b);
                    if step_ms > 0.0 {
                        std::thread::sleep(Duration::from_secs_f64(step_ms / 1e3));
                    }
                    k += 1;
                }
                // Epoch 0's first batch comes from a plan made at creation; from epoch 1 on
                // the boundary is: the rest of the previous epoch's last call, the end, and
                // this epoch's first batch.
                if let Some((prev_last_call, prev_end_call)) = prev_last {
                    let first = first.expect("a batch");
                    let median_call = median(&mut calls.clone());
                    raw_waits
                        .push(f64::max(0.0, prev_last_call - median_call) + prev_end_call + first);
                    let steady_call = calls.iter().sum::<f64>() / calls.len().max(1) as f64;
                    let extra = f64::max(0.0, prev_last_call - steady_call);
                    last_extra.push(extra);
                    waits.push(extra + prev_end_call + f64::max(0.0, first - steady_call));
                    if prev_times.len() > AROUND {
                        let from = prev_times[prev_times.len() - AROUND - 1];
                        around.push((times[0] - from).as_secs_f64());
                    }
                }
                prev_last = Some((last_call, end_call));
                std::mem::swap(&mut times, &mut prev_times);
            }
            // The excess around the boundary is against the mean interval: deliveries come in
            // bursts (a median interval is shorter than what a batch costs on average).
            let mean_interval = steady.iter().sum::<f64>() / steady.len().max(1) as f64;
            let batch_time = median(&mut steady);
            let wait = median(&mut waits);
            let around_excess = median(&mut around) - (AROUND + 1) as f64 * mean_interval;
            let row = json!({
                "policy": policy, "plan_ahead": plan_ahead, "trainer_step_ms": step_ms,
                "epochs": epochs,
                "boundary_wait_ms": wait * 1e3, "boundary_wait_max_ms":
                    waits.iter().cloned().fold(0.0, f64::max) * 1e3,
                "boundary_wait_raw_ms": median(&mut raw_waits) * 1e3,
                "last_call_extra_ms": median(&mut last_extra) * 1e3,
                "batch_time_ms": batch_time * 1e3,
                "wait_in_batches": wait / batch_time,
                "around_batches": AROUND,
                "around_excess_ms": around_excess * 1e3,
                "around_excess_in_batches": around_excess / batch_time,
                "mean_interval_ms": mean_interval * 1e3,
                "load": load(),
            });
            eprintln!("boundary: {row}");
            rows.push(row);
        }
    }
    json!({"rows": rows})
}

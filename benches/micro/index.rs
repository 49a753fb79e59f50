//! `epoch_plan`: the whole-epoch view of an index-mode loader through the C ABI, at the
//! ImageNet-1k size — what a reader that schedules its own reads (DALI, FFCV order, a C++
//! reader) pays once per epoch: the policy's plan from a fed-back ScoreBook plus this rank's
//! ids and weights copied out.

use std::ffi::CString;
use std::time::Instant;

use serde_json::{json, Value};
use thresher::ffi::*;

use crate::{load, median, unit, Args, BATCH, IMAGENET};

pub(crate) fn epoch_plan(args: &Args) -> Value {
    let n = if args.quick { 100_000 } else { IMAGENET };
    let mut rows = Vec::new();
    for policy in [
        r#"{"kind": "full"}"#,
        r#"{"kind": "infobatch", "prune": 0.5, "epochs": 100}"#,
    ] {
        let config = CString::new(format!(
            r#"{{"source": {{"kind": "index", "len": {n}}}, "batch_size": 256, "policy": {policy}}}"#
        ))
        .expect("no NUL");
        let mut l = std::ptr::null_mut();
        // SAFETY (whole block): the C ABI used as its header says; every handle freed once.
        unsafe {
            assert_eq!(
                thresher_loader_new(config.as_ptr(), &mut l),
                thresher_status::THRESHER_OK
            );
            // One epoch of loss feedback on every id, so the policy has scores to rank.
            let ids: Vec<u64> = (0..n as u64).collect();
            let losses: Vec<f32> = ids.iter().map(|&id| unit(3, id)).collect();
            for (ids, losses) in ids.chunks(BATCH).zip(losses.chunks(BATCH)) {
                let fb = thresher_feedback {
                    len: ids.len(),
                    ids: ids.as_ptr(),
                    loss: losses.as_ptr(),
                    grad_norm: std::ptr::null(),
                    el2n: std::ptr::null(),
                    correct: std::ptr::null(),
                    embedding: std::ptr::null(),
                    embedding_dim: 0,
                };
                assert_eq!(
                    thresher_loader_feedback(l, &fb),
                    thresher_status::THRESHER_OK
                );
            }
            let mut made = Vec::new();
            let mut copied = Vec::new();
            let mut kept = 0;
            for _ in 0..7 {
                // Each round ends the epoch under way, so the view makes a new plan.
                assert_eq!(thresher_loader_end_epoch(l), thresher_status::THRESHER_OK);
                let mut plan = std::ptr::null_mut();
                let t = Instant::now();
                assert_eq!(
                    thresher_loader_epoch_plan(l, &mut plan),
                    thresher_status::THRESHER_OK
                );
                made.push(t.elapsed().as_secs_f64());
                kept = thresher_epoch_plan_len(plan);
                thresher_epoch_plan_free(plan);
                // The same epoch again: the copy alone.
                let t = Instant::now();
                assert_eq!(
                    thresher_loader_epoch_plan(l, &mut plan),
                    thresher_status::THRESHER_OK
                );
                copied.push(t.elapsed().as_secs_f64());
                thresher_epoch_plan_free(plan);
            }
            thresher_loader_free(l);
            let name = if policy.contains("infobatch") {
                "infobatch"
            } else {
                "full"
            };
            rows.push(json!({
                "policy": name, "n": n, "kept": kept,
                "plan_and_copy_ms": median(&mut made) * 1e3,
                "copy_ms": median(&mut copied) * 1e3,
                "load": load(),
            }));
        }
    }
    json!({ "rows": rows })
}

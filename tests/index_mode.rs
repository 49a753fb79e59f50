//! Index mode (source `{"kind": "index", "len": N}`): the Loader as a Planner alone. Its batches
//! must be exactly the Planner's, carry no data, and every pruning feature must behave as with a
//! data source; the whole-epoch view must equal what `next` hands out; ending an epoch early and
//! checkpointing at the consumer's position must be exact.

use std::ffi::CString;

use thresher::ffi::*;
use thresher_core::{Config, Feedback, Loader, Planner};

const N: usize = 5000;

fn config(extra: &str) -> Config {
    Config::from_json(&format!(
        r#"{{"source": {{"kind": "index", "len": {N}}}, "seed": 3, "batch_size": 100,
            "policy": {{"kind": "infobatch", "prune": 0.5, "epochs": 4}}{extra}}}"#
    ))
    .unwrap()
}

fn loss(id: u64, epoch: u64) -> f32 {
    ((id * 13 + epoch * 7) % 97) as f32 / 9.0
}

/// Runs one epoch through `l`, feeding back every real sample; returns (ids, weights) per batch.
fn epoch(l: &Loader) -> Vec<(Vec<u64>, Vec<f32>)> {
    let mut out = Vec::new();
    while let Some(b) = l.next().unwrap() {
        assert!(!b.has_data());
        assert!(b.labels().is_empty() && b.data_bytes().is_empty());
        let real = &b.ids()[..b.len() - b.padding()];
        let losses: Vec<f32> = real.iter().map(|&id| loss(id, b.epoch())).collect();
        l.feedback(&Feedback {
            ids: real,
            loss: &losses,
            ..Default::default()
        })
        .unwrap();
        out.push((b.ids().to_vec(), b.weights().to_vec()));
    }
    out
}

#[test]
fn index_batches_are_the_planners_and_pruning_works() {
    let l = Loader::new(config("")).unwrap();
    assert!(l.is_index());
    let mut p = Planner::new(&config(""), N).unwrap();
    for e in 0..3 {
        let got = epoch(&l);
        let mut want = Vec::new();
        while let Some(b) = p.next_batch().unwrap() {
            let real = &b.ids[..b.ids.len() - b.padding];
            let losses: Vec<f32> = real.iter().map(|&id| loss(id, b.epoch)).collect();
            p.feedback(&Feedback {
                ids: real,
                loss: &losses,
                ..Default::default()
            })
            .unwrap();
            want.push((b.ids, b.weights));
        }
        assert_eq!(got, want, "epoch {e}");
        let kept: usize = got.iter().map(|b| b.0.len()).sum();
        if e == 0 {
            assert_eq!(kept, N);
        } else {
            assert!(kept < N, "epoch {e} kept {kept}");
        }
    }
    assert_eq!(l.digest(), p.digest());
}

#[test]
fn the_epoch_plan_is_what_next_hands_out() {
    let l = Loader::new(config(r#", "rank": 1, "world_size": 3"#)).unwrap();
    epoch(&l);
    let plan = l.epoch_plan();
    assert_eq!(plan.epoch, 1);
    assert_eq!(plan.batches as u64, l.epoch_info().batches);
    let got = epoch(&l);
    assert_eq!(got.len(), plan.batches);
    let ids: Vec<u64> = got.iter().flat_map(|b| b.0.clone()).collect();
    let weights: Vec<f32> = got.iter().flat_map(|b| b.1.clone()).collect();
    assert_eq!(ids, plan.ids);
    assert_eq!(weights, plan.weights);
    let zero = plan.weights.iter().rev().take_while(|&&w| w == 0.0).count();
    assert!(zero >= plan.padding);
}

#[test]
fn ending_an_epoch_early_abandons_the_rest_and_begins_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.jsonl");
    let quoted = serde_json::to_string(report.to_str().unwrap()).unwrap();
    let l = Loader::new(config(&format!(r#", "report": {quoted}"#))).unwrap();
    for _ in 0..10 {
        l.next().unwrap().unwrap();
    }
    l.end_epoch().unwrap();
    let r = l.report();
    assert_eq!((r.epoch, r.delivered, r.batches), (0, 10, 50));
    // 4000 of the 5000 planned samples were never visited.
    assert!(
        (r.saved_fraction - 0.8).abs() < 1e-9,
        "{}",
        r.saved_fraction
    );
    l.end_epoch().unwrap(); // between epochs: nothing to end
    let b = l.next().unwrap().unwrap();
    assert_eq!((b.epoch(), b.index()), (1, 0));
    let lines = std::fs::read_to_string(&report).unwrap();
    assert_eq!(lines.lines().count(), 1);
    assert!(lines.contains("\"delivered\":10"));
}

#[test]
fn a_checkpoint_at_the_consumers_position_resumes_there() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("at.ckpt");
    let a = Loader::new(config("")).unwrap();
    epoch(&a);
    // The consumer has trained on 4 batches; a prefetching reader took 7.
    let taken: Vec<_> = (0..7).map(|_| a.next().unwrap().unwrap()).collect();
    assert!(a.save_state_at(&path, 8).is_err(), "only 7 were handed out");
    a.save_state_at(&path, 4).unwrap();
    let quoted = serde_json::to_string(path.to_str().unwrap()).unwrap();
    let b = Loader::new(config(&format!(r#", "resume_from": {quoted}"#))).unwrap();
    for want in &taken[4..] {
        let got = b.next().unwrap().unwrap();
        assert_eq!((got.epoch(), got.index()), (want.epoch(), want.index()));
        assert_eq!(got.ids(), want.ids());
        assert_eq!(got.weights(), want.weights());
    }
    // Between epochs, the position inside the epoch that just ended can still be saved.
    while a.next().unwrap().is_some() {}
    let batches = a.report().batches as usize;
    a.save_state_at(&path, batches - 2).unwrap();
    let c = Loader::new(config(&format!(r#", "resume_from": {quoted}"#))).unwrap();
    let got = c.next().unwrap().unwrap();
    assert_eq!((got.epoch(), got.index()), (1, batches - 2));
}

#[test]
fn bad_index_configs_name_the_key() {
    for (json, want) in [
        (r#"{"source": {"kind": "index", "len": 0}}"#, "source.len"),
        (
            r#"{"source": {"kind": "index", "len": 99999999999999}}"#,
            "source.len",
        ),
        (r#"{"source": {"kind": "index"}}"#, "source"),
        (
            r#"{"source": {"kind": "index", "len": 5, "images": "x"}}"#,
            "source",
        ),
    ] {
        let err = Config::from_json(json)
            .and_then(Loader::new)
            .err()
            .unwrap_or_else(|| panic!("{json} was accepted"));
        assert!(err.to_string().contains(want), "{json}: {err}");
    }
}

#[test]
fn through_the_c_abi_data_calls_fail_clearly_and_ids_work() {
    let cfg = CString::new(format!(
        r#"{{"source": {{"kind": "index", "len": {N}}}, "batch_size": 64}}"#
    ))
    .unwrap();
    let mut l = std::ptr::null_mut();
    unsafe {
        assert_eq!(
            thresher_loader_new(cfg.as_ptr(), &mut l),
            thresher_status::THRESHER_OK
        );
        let mut b = std::ptr::null_mut();
        assert_eq!(
            thresher_loader_next(l, &mut b),
            thresher_status::THRESHER_OK
        );
        assert_eq!(thresher_batch_has_data(b), 0);
        assert_eq!(thresher_batch_len(b), 64);
        assert!(!thresher_batch_ids(b).is_null());
        assert!(thresher_batch_labels(b).is_null());
        let mut t = std::mem::zeroed::<thresher_tensor>();
        assert_eq!(
            thresher_batch_data(b, &mut t),
            thresher_status::THRESHER_STATE
        );
        let mut buf = [0 as std::ffi::c_char; 512];
        thresher_last_error(buf.as_mut_ptr(), buf.len());
        let msg = std::ffi::CStr::from_ptr(buf.as_ptr()).to_string_lossy();
        assert!(msg.contains("index mode"), "{msg}");
        let mut dl = std::ptr::null_mut();
        assert_eq!(
            thresher_batch_dlpack(b, 2, &mut dl),
            thresher_status::THRESHER_OK
        );
        assert_eq!(
            thresher_batch_dlpack(b, 1, &mut dl),
            thresher_status::THRESHER_STATE
        );
        thresher_batch_release(b);
        let mut plan = std::ptr::null_mut();
        assert_eq!(
            thresher_loader_epoch_plan(l, &mut plan),
            thresher_status::THRESHER_OK
        );
        assert_eq!(thresher_epoch_plan_len(plan), N);
        assert_eq!(thresher_epoch_plan_batches(plan), N.div_ceil(64));
        thresher_epoch_plan_free(plan);
        thresher_epoch_plan_free(std::ptr::null_mut());
        assert_eq!(thresher_loader_end_epoch(l), thresher_status::THRESHER_OK);
        thresher_loader_free(l);
    }
}

#[test]
fn a_plan_reader_advances_and_the_report_counts_what_it_read() {
    let l = Loader::new(config("")).unwrap();
    let plan = l.epoch_plan();
    l.advance(plan.batches - 1).unwrap();
    assert!(l.advance(2).is_err(), "only one batch is left");
    assert_eq!(l.report().delivered as usize, plan.batches - 1);
    let last = l.next().unwrap().unwrap();
    assert_eq!(last.index(), plan.batches - 1);
    assert_eq!(last.ids(), &plan.ids[(plan.batches - 1) * 100..]);
    assert!(l.next().unwrap().is_none());
    assert_eq!(
        l.report().saved_fraction,
        0.0,
        "every sample of epoch 0 was read"
    );
    // Advancing between epochs begins the next one.
    l.advance(1).unwrap();
    assert_eq!((l.report().epoch, l.report().delivered), (1, 1));
    let data = Loader::with_source(
        Config::default_for_memory(),
        std::sync::Arc::new(
            thresher_core::source::ArraySource::new(vec![0; 40], [2, 2, 1], vec![0; 10]).unwrap(),
        ),
    )
    .unwrap();
    let err = data.advance(1).unwrap_err();
    assert!(err.to_string().contains("index mode"), "{err}");
}

#[test]
fn a_checkpoint_from_another_run_says_what_differs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.ckpt");
    Loader::new(config("")).unwrap().save_state(&path).unwrap();
    let quoted = serde_json::to_string(path.to_str().unwrap()).unwrap();
    let text = format!(
        r#"{{"source": {{"kind": "index", "len": 4000}}, "seed": 9, "batch_size": 100,
            "policy": {{"kind": "infobatch", "prune": 0.5, "epochs": 4}}, "resume_from": {quoted}}}"#
    );
    let err = Config::from_json(&text)
        .and_then(Loader::new)
        .err()
        .unwrap();
    let msg = err.to_string();
    for want in [
        "resume_from",
        "dataset size (N samples) 5000 in the saved run, 4000 here",
        "seed 3 in the saved run, 9 here",
        "did the dataset change?",
    ] {
        assert!(msg.contains(want), "{msg}");
    }
    assert!(
        !msg.contains("shuffle"),
        "only what differs is named: {msg}"
    );
}

//! When the next epoch's plan is made (config `plan_ahead`, docs/policies.md *When the plan of
//! epoch e is fixed*): by default when the last batch of epoch e is handed out, from the
//! feedback received until then; with `plan_ahead: k` when the k-th batch from the end is;
//! with `plan_ahead: false` at the first batch of e+1, from all of e's. The rule is the Planner's, so a loader with data (any worker count) and index mode
//! give the same batches for the same feedback calls, and a checkpoint taken between the last
//! batch and the next epoch resumes exactly.

use std::sync::Arc;

use thresher_core::source::{ArraySource, Source};
use thresher_core::{Config, Feedback, Loader, Planner};

const N: usize = 300;

fn source() -> Arc<dyn Source> {
    let pixels = (0..N * 4).map(|i| (i * 31 % 251) as u8).collect();
    Arc::new(ArraySource::new(pixels, [2, 2, 1], (0..N as i64).map(|i| i % 7).collect()).unwrap())
}

/// Every policy, set so that its plans move with the feedback within three epochs.
const POLICIES: &[&str] = &[
    r#"{"kind": "full"}"#,
    r#"{"kind": "random", "prune": 0.3}"#,
    r#"{"kind": "epsilon_greedy", "prune": 0.5, "explore": 0.2, "noise_guard": false}"#,
    r#"{"kind": "ucb", "prune": 0.5, "noise_guard": false}"#,
    r#"{"kind": "infobatch", "prune": 0.5, "epochs": 6}"#,
    r#"{"kind": "el2n", "prune": 0.5, "score_epochs": 1, "noise_guard": false}"#,
    r#"{"kind": "grand", "prune": 0.5, "score_epochs": 1, "noise_guard": false}"#,
    r#"{"kind": "forgetting", "prune": 0.5, "score_epochs": 1, "noise_guard": false}"#,
    r#"{"kind": "influence", "prune": 0.5, "score_epochs": 1, "noise_guard": false}"#,
];

fn config(policy: &str, extra: &str) -> Config {
    Config::from_json(&format!(
        r#"{{"batch_size": 32, "seed": 11, "policy": {policy}{extra}}}"#
    ))
    .unwrap()
}

/// Every signal any policy reads, a function of (id, epoch).
fn feed(l: &Loader, ids: &[u64], epoch: u64) {
    let loss: Vec<f32> = ids
        .iter()
        .map(|&i| ((i * 7 + epoch * 13) % 17) as f32 * 0.25)
        .collect();
    let grad: Vec<f32> = ids.iter().map(|&i| ((i * 5 + epoch) % 11) as f32).collect();
    let correct: Vec<u8> = ids
        .iter()
        .map(|&i| !(i + epoch).is_multiple_of(3) as u8)
        .collect();
    let emb: Vec<f32> = ids
        .iter()
        .flat_map(|&i| (0..4).map(move |k| ((i * (k + 3) + epoch) % 13) as f32 - 6.0))
        .collect();
    l.feedback(&Feedback {
        ids,
        loss: &loss,
        grad_norm: Some(&grad),
        el2n: Some(&loss),
        correct: Some(&correct),
        embedding: Some(&emb),
        embedding_dim: 4,
    })
    .unwrap();
}

type Batches = Vec<(u64, Vec<u64>, Vec<f32>)>;

/// A sequential trainer over `epochs` epochs: feedback for each batch after it is handed out.
fn train(l: &Loader, epochs: usize) -> Batches {
    let mut out = Vec::new();
    for _ in 0..epochs {
        while let Some(b) = l.next().unwrap() {
            feed(l, b.ids(), b.epoch());
            out.push((b.epoch(), b.ids().to_vec(), b.weights().to_vec()));
        }
    }
    out
}

fn index(policy: &str, extra: &str) -> Loader {
    let mut c = config(policy, extra);
    c.source = Config::from_json(&format!(r#"{{"source": {{"kind": "index", "len": {N}}}}}"#))
        .unwrap()
        .source;
    Loader::new(c).unwrap()
}

fn with_data(policy: &str, workers: usize, extra: &str) -> Loader {
    let extra = format!(r#", "workers": {workers}, "prefetch": 3{extra}"#);
    Loader::with_source(config(policy, &extra), source()).unwrap()
}

#[test]
fn index_mode_and_every_worker_count_give_the_same_batches() {
    for policy in POLICIES {
        for extra in [
            "",
            r#", "plan_ahead": false"#,
            r#", "plan_ahead": 4"#,
            r#", "plan_ahead": 200"#,
        ] {
            let reference = train(&index(policy, extra), 3);
            assert!(reference.iter().any(|b| b.0 == 2), "{policy}: three epochs");
            for workers in [1, 2, 5] {
                let got = train(&with_data(policy, workers, extra), 3);
                assert!(
                    got == reference,
                    "{policy}{extra}: {workers} workers differ from index mode"
                );
            }
        }
    }
}

/// The plan of epoch 1 of `policy` after epoch 0 with per-batch feedback, plus, when `late`,
/// one more call (high losses for the ids of epoch 0's first batch) made after the last batch
/// was handed out and before `next` reported the end.
fn plan_after_late_feedback(policy: &str, extra: &str, late: bool) -> (Vec<u64>, Loader) {
    let l = index(policy, extra);
    let mut first = None;
    while let Some(b) = l.next().unwrap() {
        feed(&l, b.ids(), 0);
        first.get_or_insert_with(|| b.ids().to_vec());
        if late && b.index() + 1 == l.epoch_info().batches as usize {
            let ids = first.clone().unwrap();
            let loss = vec![1000.0; ids.len()];
            l.feedback(&Feedback {
                ids: &ids,
                loss: &loss,
                ..Default::default()
            })
            .unwrap();
        }
    }
    let mut ids = l.epoch_plan().ids;
    ids.sort_unstable();
    (ids, l)
}

#[test]
fn feedback_after_the_last_batch_counts_one_plan_later() {
    let ucb = r#"{"kind": "ucb", "prune": 0.5, "c": 0, "noise_guard": false}"#;
    // Default: epoch 1's plan was made when epoch 0's last batch was handed out.
    let (on_time, _) = plan_after_late_feedback(ucb, "", false);
    let (with_late, l) = plan_after_late_feedback(ucb, "", true);
    assert_eq!(
        on_time, with_late,
        "late feedback changed the plan made ahead"
    );
    // It is booked (under the epoch of the most recent plan, 1) and counts for epoch 2.
    l.with_scores(|s| {
        assert!(s.loss_ema().iter().any(|&x| x > 100.0));
        let hot = s.loss_ema().iter().position(|&x| x > 100.0).unwrap();
        assert_eq!(s.last_epoch()[hot], 1);
    });
    // `plan_ahead: false`: the plan is made at the next epoch's first batch, from everything.
    let (on_time, _) = plan_after_late_feedback(ucb, r#", "plan_ahead": false"#, false);
    let (with_late, _) = plan_after_late_feedback(ucb, r#", "plan_ahead": false"#, true);
    assert_ne!(on_time, with_late, "the old rule sees the late feedback");
}

#[test]
fn the_next_plan_is_made_when_the_last_batch_is_handed_out() {
    let json = format!(
        r#"{{"batch_size": 100, "source": {{"kind": "index", "len": {N}}},
            "policy": {{"kind": "random", "prune": 0.3}}}}"#
    );
    let mut p = Planner::new(&Config::from_json(&json).unwrap(), N).unwrap();
    let batches = p.epoch_info().batches;
    for k in 0..batches {
        assert!(p.next_plan().is_none(), "batch {k}");
        p.next_batch().unwrap().unwrap();
    }
    assert_eq!(p.next_plan().map(|n| n.epoch), Some(1));
    // Epoch 0 is still the one under way until `next` reports its end.
    assert_eq!(p.epoch(), 0);
    assert_eq!(p.report().delivered, batches);
    assert!(p.next_batch().unwrap().is_none());
    assert_eq!(p.epoch(), 0);
    assert_eq!(p.next_batch().unwrap().unwrap().epoch, 1);
    assert!(p.next_plan().is_none());

    // Without it nothing is planned before the next epoch begins.
    let json = json.replace("\"batch_size\"", "\"plan_ahead\": false, \"batch_size\"");
    let mut p = Planner::new(&Config::from_json(&json).unwrap(), N).unwrap();
    while p.next_batch().unwrap().is_some() {
        assert!(p.next_plan().is_none());
    }
    assert!(p.next_plan().is_none());
}

/// With `plan_ahead: k` the plan of e+1 is made when the k-th batch from the end of e is handed
/// out (the first batch when the epoch is shorter), by a Planner on its own as by a loader.
#[test]
fn the_next_plan_is_made_k_batches_before_the_end() {
    for k in [2usize, 4, 40] {
        let json = format!(
            r#"{{"batch_size": 32, "plan_ahead": {k},
                "policy": {{"kind": "ucb", "prune": 0.5, "noise_guard": false}}}}"#
        );
        let mut p = Planner::new(&Config::from_json(&json).unwrap(), N).unwrap();
        for epoch in 0..3u64 {
            let batches = p.epoch_info().batches as usize;
            let due = batches.saturating_sub(k);
            for i in 0..batches {
                assert_eq!(p.next_plan().is_some(), i > due, "k {k}, batch {i}");
                let b = p.next_batch().unwrap().unwrap();
                assert_eq!((b.epoch, b.index), (epoch, i));
                assert_eq!(
                    p.next_plan().map(|n| n.epoch),
                    (i >= due).then_some(epoch + 1)
                );
                // The epoch handed out is still the one under way.
                assert_eq!(p.epoch(), epoch);
            }
            assert!(p.next_batch().unwrap().is_none());
        }
    }
}

/// A sequential trainer's feedback for the last k batches arrives after the plan of e+1 was
/// fixed (at the hand-out of the k-th from the end): it does not change that plan (it counts
/// from the plan after), so the plan is the one a trainer that gave no feedback for them gets.
#[test]
fn feedback_after_the_plan_fell_due_counts_one_plan_later() {
    let ucb = r#"{"kind": "ucb", "prune": 0.5, "c": 0, "noise_guard": false}"#;
    let run = |skip_last: usize, workers: Option<usize>| {
        let l = match workers {
            None => index(ucb, r#", "plan_ahead": 4"#),
            Some(w) => with_data(ucb, w, r#", "plan_ahead": 4"#),
        };
        let batches = l.epoch_info().batches as usize;
        while let Some(b) = l.next().unwrap() {
            if b.index() + skip_last < batches {
                feed(&l, b.ids(), 0);
            }
        }
        let mut ids = l.epoch_plan().ids;
        ids.sort_unstable();
        ids
    };
    let silent = run(4, None);
    assert_eq!(run(0, None), silent, "index mode");
    for w in [1, 2, 4] {
        assert_eq!(run(0, Some(w)), silent, "{w} workers");
    }
    // The feedback of the batch before is seen: silencing it too changes the plan.
    assert_ne!(run(5, None), silent);
}

/// A checkpoint taken while the plan of epoch 2 is made ahead but epoch 1 still has batches to
/// go (`plan_ahead: 4`) resumes into the same batches, also through `save_state_at` with the
/// position of a consumer that fetched ahead.
#[test]
fn a_checkpoint_inside_the_window_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let extra = r#", "plan_ahead": 4"#;
    for policy in POLICIES {
        for workers in [1, 3] {
            for (at, back) in [(2usize, 0usize), (1, 0), (3, 1), (2, 2)] {
                let path = dir.path().join("ck");
                let l = with_data(policy, workers, extra);
                train(&l, 1);
                let batches = l.epoch_info().batches as usize;
                // Hand out up to `at` batches before the end, feed all but the last `back`.
                let mut held = Vec::new();
                while let Some(b) = l.next().unwrap() {
                    held.push(b.ids().to_vec());
                    if b.index() + at == batches {
                        break;
                    }
                }
                let fed = held.len() - back;
                for ids in &held[..fed] {
                    feed(&l, ids, 1);
                }
                l.save_state_at(&path, fed).unwrap();
                for ids in &held[fed..] {
                    feed(&l, ids, 1);
                }
                let rest = train(&l, 3);

                let mut c = config(policy, &format!(r#", "workers": {workers}{extra}"#));
                c.resume_from = Some(path.clone());
                let r = Loader::with_source(c, source()).unwrap();
                let resumed = train(&r, 3);
                let what = format!("{policy}, {workers} workers, {at} from the end, {back} back");
                // Resumed at `fed` batches: the `back` batches are handed out again (and fed
                // again the same way), then the run goes on as the uninterrupted one did.
                assert!(
                    resumed[..back].iter().map(|b| &b.1).eq(held[fed..].iter()),
                    "{what}: the batches after the saved position come again"
                );
                assert!(resumed[back..] == rest[..], "{what}");
                assert_eq!(r.digest(), l.digest(), "{what}");
            }
        }
    }
}

#[test]
fn the_total_batch_count_stays_exact() {
    for extra in ["", r#", "plan_ahead": false"#] {
        let policy = r#"{"kind": "infobatch", "epochs": 4, "budget": 0.6, "prune": 0.5}"#;
        let l = index(policy, &format!(r#", "drop_last": true{extra}"#));
        let total = l.total_batches().unwrap();
        assert_eq!(train(&l, 4).len() as u64, total, "{extra}");
    }
}

/// A checkpoint taken after epoch 1's last batch was handed out (the plan of epoch 2 already
/// made, the last batch's feedback given or not yet), or after `next` reported epoch 1's end,
/// resumes into the same batches as the run that went on.
#[test]
fn a_checkpoint_in_the_overlap_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for policy in POLICIES {
        for workers in [1, 3] {
            for at in ["before feedback", "after feedback", "after the end"] {
                let path = dir.path().join("ck");
                let l = with_data(policy, workers, "");
                train(&l, 1);
                let batches = l.epoch_info().batches as usize;
                let mut saved = false;
                let mut last_ids = Vec::new();
                while let Some(b) = l.next().unwrap() {
                    let last = b.index() + 1 == batches;
                    last_ids = b.ids().to_vec();
                    if last && at == "before feedback" {
                        l.save_state(&path).unwrap();
                        saved = true;
                    }
                    feed(&l, b.ids(), b.epoch());
                    if last && at == "after feedback" {
                        l.save_state(&path).unwrap();
                        saved = true;
                    }
                }
                if at == "after the end" {
                    l.save_state(&path).unwrap();
                    saved = true;
                }
                assert!(saved);
                let uninterrupted = train(&l, 2);

                let mut c = config(policy, &format!(r#", "workers": {workers}"#));
                c.resume_from = Some(path.clone());
                let r = Loader::with_source(c, source()).unwrap();
                if at == "before feedback" {
                    // Resumed after the last batch was handed out: its feedback is still due.
                    feed(&r, &last_ids, 1);
                }
                if at != "after the end" {
                    assert!(r.next().unwrap().is_none(), "{policy} {at}: epoch 1 ends");
                }
                let resumed = train(&r, 2);
                assert!(
                    resumed == uninterrupted,
                    "{policy}, {workers} workers, checkpoint {at}"
                );
                assert_eq!(r.digest(), l.digest(), "{policy} {at}");
            }
        }
    }
}

#[test]
fn plan_ahead_must_match_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck");
    let l = index(r#"{"kind": "full"}"#, "");
    l.save_state(&path).unwrap();
    let mut c = config(r#"{"kind": "full"}"#, r#", "plan_ahead": false"#);
    c.source = Config::from_json(&format!(r#"{{"source": {{"kind": "index", "len": {N}}}}}"#))
        .unwrap()
        .source;
    c.resume_from = Some(path.to_path_buf());
    let e = Loader::new(c).err().expect("refused");
    assert!(
        e.message()
            .contains("plan_ahead true in the saved run, false here"),
        "{e}"
    );
}

/// A source whose sample 13 cannot be read.
struct Broken13(Arc<dyn Source>);
impl Source for Broken13 {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn sample_shape(&self) -> Option<[usize; 3]> {
        self.0.sample_shape()
    }
    fn read<'a>(
        &'a self,
        id: usize,
        s: &'a mut thresher_core::source::Scratch,
    ) -> thresher_core::Result<thresher_core::source::SampleView<'a>> {
        match id {
            13 => Err(thresher_core::Error::format("/data/13.png: bad magic")),
            _ => self.0.read(id, s),
        }
    }
    fn label(&self, id: usize) -> i64 {
        self.0.label(id)
    }
}

/// Under `on_error: "skip"`, a sample skipped while the workers fill the next epoch early (its
/// batch is among the first) counts in that epoch's report, not in the one still ending.
#[test]
fn skips_met_while_filling_ahead_count_in_their_own_epoch() {
    let c = Config::from_json(
        r#"{"batch_size": 10, "shuffle": false, "workers": 2, "prefetch": 4,
            "on_error": "skip"}"#,
    )
    .unwrap();
    let l = Loader::with_source(c, Arc::new(Broken13(source()))).unwrap();
    for epoch in 0..3 {
        let mut batches = 0;
        while let Some(b) = l.next().unwrap() {
            assert_eq!(b.epoch(), epoch);
            batches += 1;
            if batches == N / 10 {
                // The workers now fill the next epoch, whose batch 1 holds sample 13: give
                // them time to meet it before this epoch's end is reported (the counts below
                // hold either way).
                std::thread::sleep(std::time::Duration::from_millis(30));
            }
        }
        let r = l.report();
        assert_eq!((r.epoch, r.skipped), (epoch, 1), "epoch {epoch}");
        let skipped = l.skipped_samples();
        assert_eq!(skipped.len(), 1);
        assert_eq!((skipped[0].epoch, skipped[0].id), (epoch, 13));
    }
}

/// Dropping the loader while its workers fill the next epoch early returns promptly.
#[test]
fn drop_during_the_overlap_is_prompt() {
    let l = Loader::with_source(
        Config::from_json(r#"{"batch_size": 10, "workers": 3, "prefetch": 8}"#).unwrap(),
        source(),
    )
    .unwrap();
    let batches = l.epoch_info().batches as usize;
    for _ in 0..batches {
        drop(l.next().unwrap().unwrap());
    }
    let start = std::time::Instant::now();
    drop(l);
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
}

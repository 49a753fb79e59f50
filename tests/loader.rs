//! The loader end to end through the Rust API, on synthetic data: plan order, epochs,
//! determinism across thread counts, feedback from other threads, errors from workers,
//! shutdown with batches still lent, buffer reuse.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use thresher_core::source::{ArraySource, SampleView, Scratch, Source};
use thresher_core::{Config, ErrorKind, Feedback, Loader};

/// N samples of 4×3×2 bytes whose pixels encode the id, labels id % 10.
fn array_source(n: usize) -> Arc<dyn Source> {
    let per = 4 * 3 * 2;
    let pixels = (0..n * per)
        .map(|i| ((i / per) * 7 + i % per) as u8)
        .collect();
    let labels = (0..n as i64).map(|i| i % 10).collect();
    Arc::new(ArraySource::new(pixels, [4, 3, 2], labels).unwrap())
}

fn config(json: &str) -> Config {
    Config::from_json(json).unwrap()
}

/// Everything observable about one batch.
#[derive(Debug, PartialEq)]
struct Seen {
    epoch: u64,
    index: usize,
    ids: Vec<u64>,
    labels: Vec<i64>,
    weights: Vec<f32>,
    bytes: Vec<u8>,
}

/// Runs `epochs` epochs, feeding back a loss derived from each id after every batch.
fn run(loader: &Loader, epochs: u64) -> Vec<Seen> {
    let mut out = Vec::new();
    for _ in 0..epochs {
        while let Some(b) = loader.next().unwrap() {
            let loss: Vec<f32> = b.ids().iter().map(|&i| (i % 13) as f32 * 0.1).collect();
            loader
                .feedback(&Feedback {
                    ids: b.ids(),
                    loss: &loss,
                    ..Default::default()
                })
                .unwrap();
            out.push(Seen {
                epoch: b.epoch(),
                index: b.index(),
                ids: b.ids().to_vec(),
                labels: b.labels().to_vec(),
                weights: b.weights().to_vec(),
                bytes: b.data_bytes().to_vec(),
            });
        }
    }
    out
}

#[test]
fn full_epoch_delivers_every_id_once_in_plan_order() {
    let l = Loader::with_source(
        config(r#"{"batch_size": 64, "workers": 3, "transform": {"dtype": "u8"}}"#),
        array_source(1000),
    )
    .unwrap();
    let info = l.epoch_info();
    assert_eq!((info.epoch, info.batches, info.samples), (0, 16, 1000));
    let seen = run(&l, 1);
    assert_eq!(seen.len(), 16);
    assert_eq!(seen.last().unwrap().ids.len(), 1000 - 15 * 64);
    let mut ids = HashSet::new();
    for (k, s) in seen.iter().enumerate() {
        assert_eq!((s.epoch, s.index), (0, k));
        for (j, &id) in s.ids.iter().enumerate() {
            assert!(ids.insert(id));
            assert_eq!(s.labels[j], id as i64 % 10);
            // Data equals the source's pixels (u8 nchw: channel planes of 4×3).
            let px = |h: usize, w: usize, c: usize| ((id as usize) * 7 + (h * 3 + w) * 2 + c) as u8;
            let sample = &s.bytes[j * 24..(j + 1) * 24];
            assert_eq!(sample[0], px(0, 0, 0));
            assert_eq!(sample[12], px(0, 0, 1));
            assert_eq!(sample[12 + 5], px(1, 2, 1));
        }
        assert!(s.weights.iter().all(|&w| w == 1.0));
    }
    assert_eq!(ids.len(), 1000);
    // `run` stopped at the end of epoch 0: the next epoch's plan is made by epoch_info,
    // before its first batch.
    let info = l.epoch_info();
    assert_eq!((info.epoch, info.delivered), (1, 0));
    let b = l.next().unwrap().unwrap();
    assert_eq!((b.epoch(), b.index()), (1, 0));
}

#[test]
fn identical_for_1_2_and_8_workers() {
    let make = |workers: usize| {
        let json = format!(
            r#"{{"batch_size": 50, "workers": {workers}, "prefetch": 3, "seed": 42,
                 "transform": {{"dtype": "f32", "normalize": {{"mean": [0.3, 0.6], "std": [0.2, 0.5]}}}},
                 "policy": {{"kind": "random", "prune": 0.3, "rescale": true}}}}"#
        );
        Loader::with_source(config(&json), array_source(777)).unwrap()
    };
    let one = run(&make(1), 3);
    assert_eq!(one.len(), 3 * 11); // round(0.7 · 777) = 544 → 11 batches of 50
    assert_eq!(one, run(&make(2), 3));
    assert_eq!(one, run(&make(8), 3));
    // Epochs differ, and a different seed differs.
    assert_ne!(one[0].ids, one[11].ids);
    let other = Loader::with_source(
        config(r#"{"batch_size": 50, "seed": 43, "policy": {"kind": "random", "prune": 0.3}}"#),
        array_source(777),
    )
    .unwrap();
    assert_ne!(run(&other, 1)[0].ids, one[0].ids);
}

#[test]
fn drop_last_and_no_shuffle() {
    let l = Loader::with_source(
        config(r#"{"batch_size": 64, "drop_last": true, "shuffle": false}"#),
        array_source(1000),
    )
    .unwrap();
    let seen = run(&l, 1);
    assert_eq!(seen.len(), 15);
    assert!(seen.iter().all(|s| s.ids.len() == 64));
    assert_eq!(seen[0].ids, (0..64).collect::<Vec<u64>>());
}

#[test]
fn feedback_from_other_threads_while_next_runs() {
    let l = Arc::new(
        Loader::with_source(
            config(
                r#"{"batch_size": 32, "workers": 2, "policy": {"kind": "random", "prune": 0.5}}"#,
            ),
            array_source(500),
        )
        .unwrap(),
    );
    let calls = 4 * 300;
    let feeders: Vec<_> = (0..4u64)
        .map(|t| {
            let l = Arc::clone(&l);
            std::thread::spawn(move || {
                for i in 0..300u64 {
                    let ids = [(t * 300 + i) % 500];
                    l.feedback(&Feedback {
                        ids: &ids,
                        loss: &[1.0],
                        ..Default::default()
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    let mut batches = 0;
    for _ in 0..5 {
        while let Some(b) = l.next().unwrap() {
            batches += b.len();
        }
    }
    for f in feeders {
        f.join().unwrap();
    }
    assert_eq!(batches, 5 * 250);
    let total: u32 = l.with_scores(|s| s.seen().iter().sum());
    assert_eq!(total as usize, calls);
}

#[test]
fn rejected_feedback_changes_nothing_through_the_loader() {
    let l = Loader::with_source(Config::default_for_memory(), array_source(10)).unwrap();
    let e = l
        .feedback(&Feedback {
            ids: &[1, 2, 99],
            loss: &[0.5, 0.5, 0.5],
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.message().contains("ids[2] = 99"), "{e}");
    assert_eq!(l.with_scores(|s| s.seen().iter().sum::<u32>()), 0);
}

/// A source whose sample 13 is corrupt and whose sample 21 panics.
struct Flaky(Arc<dyn Source>);
impl Source for Flaky {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn sample_shape(&self) -> Option<[usize; 3]> {
        self.0.sample_shape()
    }
    fn read<'a>(&'a self, id: usize, s: &'a mut Scratch) -> thresher_core::Result<SampleView<'a>> {
        match id {
            13 => Err(thresher_core::Error::format("/data/broken.png: bad magic")),
            21 => panic!("decoder bug"),
            _ => self.0.read(id, s),
        }
    }
    fn label(&self, id: usize) -> i64 {
        self.0.label(id)
    }
}

#[test]
fn worker_errors_and_panics_reach_the_consumer_and_it_goes_on() {
    let l = Loader::with_source(
        config(r#"{"batch_size": 10, "shuffle": false, "workers": 2}"#),
        Arc::new(Flaky(array_source(40))),
    )
    .unwrap();
    assert_eq!(l.next().unwrap().unwrap().ids()[0], 0);
    let e = l.next().err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Format);
    assert!(e.message().contains("sample 13") && e.message().contains("broken.png"));
    let e = l.next().err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Panic);
    assert!(e.message().contains("decoder bug"), "{e}");
    assert_eq!(l.next().unwrap().unwrap().ids()[0], 30);
    assert!(l.next().unwrap().is_none());
}

#[test]
fn drop_mid_epoch_is_prompt_and_lent_batches_stay_valid() {
    let l = Loader::with_source(
        config(r#"{"batch_size": 16, "workers": 4, "prefetch": 8, "transform": {"dtype": "u8"}}"#),
        array_source(5000),
    )
    .unwrap();
    let a = l.next().unwrap().unwrap();
    let b = l.next().unwrap().unwrap();
    let a_ids = a.ids().to_vec();
    let start = Instant::now();
    drop(l);
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(a.ids(), &a_ids[..]);
    assert_eq!(b.len(), 16);
    assert_eq!(b.data_bytes().len(), 16 * 24);
    drop(a);
    drop(b);
}

#[test]
fn batch_buffers_are_reused() {
    let l = Loader::with_source(
        config(r#"{"batch_size": 8, "workers": 2, "prefetch": 2}"#),
        array_source(4000),
    )
    .unwrap();
    let mut ptrs = HashSet::new();
    for _ in 0..2 {
        while let Some(b) = l.next().unwrap() {
            ptrs.insert(b.data_ptr() as usize);
            assert_eq!(b.data_ptr() as usize % 64, 0);
        }
    }
    // 1000 batches through at most prefetch + workers + a few buffers.
    assert!(
        ptrs.len() <= 2 + 2 + 4 + 1,
        "{} distinct buffers",
        ptrs.len()
    );
}

#[test]
fn bad_configs_and_sources_are_refused() {
    let e = Loader::new(config("{}")).err().unwrap();
    assert!(e.message().contains("source"));
    let e = Loader::new(config(
        r#"{"source": {"kind": "idx", "images": "/nonexistent/img", "labels": "/nonexistent/lab"}}"#,
    ))
    .err()
    .unwrap();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(e.message().contains("/nonexistent/img"));
    let two_channel =
        config(r#"{"transform": {"normalize": {"mean": [0.1, 0.2, 0.3], "std": [1, 1, 1]}}}"#);
    assert!(Loader::with_source(two_channel, array_source(10)).is_err());
}

/// Feedback from 4 threads while the main thread calls `next` and another reads the epoch
/// report, over many epochs of a score-driven policy: the batches and the final ScoreBook equal
/// the serial run's. (Each feeder owns the ids ≡ t mod 4, so every id's updates keep their
/// order; the main thread waits for the feeders at each epoch end, as a trainer's step would.)
#[test]
fn concurrent_feedback_and_reports_equal_the_serial_run() {
    use std::sync::mpsc;
    const CONFIG: &str = r#"{"batch_size": 40, "workers": 3, "seed": 9,
        "policy": {"kind": "infobatch", "prune": 0.5, "epochs": 12, "anneal": 0.75}}"#;
    let loss_of = |id: u64, epoch: u64| ((id * 31 + epoch * 7) % 23) as f32 * 0.1;
    let serial = {
        let l = Loader::with_source(config(CONFIG), array_source(600)).unwrap();
        let mut seen = Vec::new();
        for _ in 0..12 {
            while let Some(b) = l.next().unwrap() {
                let loss: Vec<f32> = b.ids().iter().map(|&i| loss_of(i, b.epoch())).collect();
                l.feedback(&Feedback {
                    ids: b.ids(),
                    loss: &loss,
                    ..Default::default()
                })
                .unwrap();
                seen.push((b.ids().to_vec(), b.weights().to_vec()));
            }
        }
        (
            seen,
            l.with_scores(|s| (s.loss_last().to_vec(), s.seen().to_vec())),
        )
    };
    let l = Arc::new(Loader::with_source(config(CONFIG), array_source(600)).unwrap());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reporter = {
        let (l, stop) = (Arc::clone(&l), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = l.report();
                assert!(r.delivered <= r.batches);
                reads += 1;
            }
            reads
        })
    };
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let feeders: Vec<_> = (0..4)
        .map(|_| {
            let (tx, rx) = mpsc::channel::<Option<(Vec<u64>, u64)>>();
            let (l, done) = (Arc::clone(&l), done_tx.clone());
            let handle = std::thread::spawn(move || {
                while let Ok(msg) = rx.recv() {
                    match msg {
                        Some((ids, epoch)) => {
                            let loss: Vec<f32> = ids.iter().map(|&i| loss_of(i, epoch)).collect();
                            l.feedback(&Feedback {
                                ids: &ids,
                                loss: &loss,
                                ..Default::default()
                            })
                            .unwrap();
                        }
                        None => done.send(()).unwrap(),
                    }
                }
            });
            (tx, handle)
        })
        .collect();
    let sync = || {
        for (tx, _) in &feeders {
            tx.send(None).unwrap();
        }
        for _ in 0..4 {
            done_rx.recv().unwrap();
        }
    };
    let mut seen = Vec::new();
    for _ in 0..12 {
        let batches = l.epoch_info().batches as usize;
        while let Some(b) = l.next().unwrap() {
            for (t, (tx, _)) in feeders.iter().enumerate() {
                let ids: Vec<u64> = b
                    .ids()
                    .iter()
                    .copied()
                    .filter(|i| i % 4 == t as u64)
                    .collect();
                tx.send(Some((ids, b.epoch()))).unwrap();
            }
            seen.push((b.ids().to_vec(), b.weights().to_vec()));
            // The next plan is made when the last batch is handed out (`plan_ahead`): the
            // feedback of every batch before it must be in by then, as in the serial run.
            if b.index() + 2 == batches {
                sync();
            }
        }
        sync();
    }
    for (tx, handle) in feeders {
        drop(tx);
        handle.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reporter.join().unwrap() > 0);
    let scores = l.with_scores(|s| (s.loss_last().to_vec(), s.seen().to_vec()));
    assert_eq!(seen, serial.0);
    assert_eq!(format!("{scores:?}"), format!("{:?}", serial.1));
    // The policy really pruned (the plans depended on the feedback).
    assert!(seen.len() < 12 * 15);
}

/// The report line cannot be written (/dev/full): the end of the epoch returns the error once
/// and then reports the end; ending an epoch early returns it, ends the epoch anyway, and a
/// second call neither fails again nor counts the abandoned rest twice.
#[test]
fn a_failed_report_write_is_returned_once_and_counts_nothing_twice() {
    let cfg = || config(r#"{"batch_size": 4, "workers": 2, "report": "/dev/full"}"#);
    let l = Loader::with_source(cfg(), array_source(20)).unwrap();
    while let Ok(Some(_)) = l.next() {}
    assert!(
        l.next().unwrap().is_none(),
        "the end is reported after the failed write"
    );
    assert_eq!(l.next().unwrap().unwrap().epoch(), 1);

    let l = Loader::with_source(cfg(), array_source(20)).unwrap();
    let _first = l.next().unwrap().unwrap();
    let e = l.end_epoch().unwrap_err();
    assert!(e.to_string().contains("/dev/full"), "{e}");
    l.end_epoch().unwrap();
    let r = l.report();
    assert_eq!((r.epoch, r.delivered), (0, 1));
    assert!(
        (r.saved_fraction - 0.8).abs() < 1e-9,
        "{}",
        r.saved_fraction
    );
    assert_eq!(l.next().unwrap().unwrap().epoch(), 1);
}

//! Read-ahead along the plan (config `io_depth`): it changes when bytes are read, never which
//! batches come out, which errors are met or what `on_error: "skip"` leaves out; its hints stay
//! within the window the workers may fill; and a loader whose I/O threads are stuck still drops
//! promptly.

mod image_util;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use image::DynamicImage;
use image_util::*;
use serde_json::json;
use thresher_core::source::{SampleView, Scratch, Source};
use thresher_core::{Config, Loader};

/// A generous bound for what should take milliseconds (a loaded 2-core machine included).
const LIMIT: Duration = Duration::from_secs(20);

fn loader(config: &serde_json::Value) -> Loader {
    Loader::new(Config::from_json(&config.to_string()).unwrap()).unwrap()
}

/// One batch (ids, labels, bytes) or its error's text.
type Outcome = Result<(Vec<u64>, Vec<i64>, Vec<u8>), String>;

/// Every batch (or its error's text) of `epochs` epochs.
fn run(l: &Loader, epochs: usize) -> Vec<Outcome> {
    let mut out = Vec::new();
    for _ in 0..epochs {
        loop {
            match l.next() {
                Ok(Some(b)) => out.push(Ok((
                    b.ids().to_vec(),
                    b.labels().to_vec(),
                    b.data_bytes().to_vec(),
                ))),
                Ok(None) => break,
                Err(e) => out.push(Err(e.to_string())),
            }
        }
    }
    out
}

fn photo_folder(root: &Path, per: u32) {
    for class in 0..3u32 {
        let dir = root.join(format!("c{class}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per {
            let img = DynamicImage::ImageRgb8(photo(30 + 3 * i, 24 + 2 * class, class * 100 + i));
            if i % 2 == 0 {
                std::fs::write(dir.join(format!("{i}.jpg")), jpeg_bytes(&img, 90)).unwrap();
            } else {
                save_png(&img, &dir.join(format!("{i}.png")));
            }
        }
    }
}

fn with_io(mut config: serde_json::Value, io_depth: usize) -> serde_json::Value {
    config["io_depth"] = json!(io_depth);
    config
}

#[test]
fn read_ahead_on_and_off_give_the_same_batches() {
    let dir = tempfile::tempdir().unwrap();
    photo_folder(dir.path(), 10);
    // The same images as tar shards (two, so hints go to both handles).
    let files: Vec<_> = walk(dir.path());
    for (s, part) in files.chunks(files.len().div_ceil(2)).enumerate() {
        let mut members = Vec::new();
        for (i, f) in part.iter().enumerate() {
            let ext = f.extension().unwrap().to_str().unwrap();
            let key = format!("s{s}_{i:03}");
            members.push((format!("{key}.{ext}"), std::fs::read(f).unwrap()));
            members.push((format!("{key}.cls"), format!("{}", i % 3).into_bytes()));
        }
        write_tar(&dir.path().join(format!("shard-{s}.tar")), &members);
    }
    let transform = json!({"random_resized_crop": {"size": 12}, "hflip": 0.5, "dtype": "u8"});
    for source in [
        json!({"kind": "image_folder", "root": dir.path()}),
        json!({"kind": "tar", "shards": dir.path().join("shard-{0..1}.tar")}),
    ] {
        let config = json!({"source": source, "batch_size": 4, "workers": 2, "prefetch": 2,
                            "seed": 5, "transform": transform});
        let off = run(&loader(&with_io(config.clone(), 0)), 3);
        assert_eq!(off.len(), 3 * 30usize.div_ceil(4), "{source}");
        assert!(off.iter().all(|b| b.is_ok()), "{source}");
        for io in [1, 3, 16] {
            let on = run(&loader(&with_io(config.clone(), io)), 3);
            assert!(on == off, "io_depth {io} changed the batches of {source}");
        }
    }
}

/// Every file under `root`, sorted (the class folders only).
fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for class in 0..3 {
        let mut files: Vec<_> = std::fs::read_dir(root.join(format!("c{class}")))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

#[test]
fn missing_and_special_files_in_the_window_fail_and_skip_as_without_read_ahead() {
    let dir = tempfile::tempdir().unwrap();
    photo_folder(dir.path(), 8);
    // A manifest lists every file, so a missing one stays in the dataset.
    let manifest: String = walk(dir.path())
        .iter()
        .enumerate()
        .map(|(i, f)| format!("{}\t{}\n", f.display(), i / 8))
        .collect();
    std::fs::write(dir.path().join("list.tsv"), manifest).unwrap();
    let config = |on_error: &str| {
        json!({"source": {"kind": "image_folder", "manifest": dir.path().join("list.tsv")},
               "on_error": on_error, "batch_size": 4, "workers": 2, "prefetch": 3,
               "shuffle": false, "transform": {"center_crop": 16, "dtype": "u8"}})
    };
    // One file goes missing, one becomes a FIFO (whose open must not block a hint either) and
    // one is cut short: samples 11, 21 and 2, in batches 2, 5 and 0 of the unshuffled plan.
    std::fs::remove_file(dir.path().join("c1/3.png")).unwrap();
    let fifo = dir.path().join("c2/5.png");
    std::fs::remove_file(&fifo).unwrap();
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let cut = dir.path().join("c0/2.jpg");
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    for on_error in ["fail", "skip"] {
        let make = |io: usize| loader(&with_io(config(on_error), io));
        let (off, on) = (make(0), make(8));
        let (a, b) = (run(&off, 2), run(&on, 2));
        assert!(
            a == b,
            "{on_error}: read-ahead changed what the epoch gives"
        );
        if on_error == "fail" {
            let errors: Vec<&String> = a.iter().filter_map(|r| r.as_ref().err()).collect();
            assert_eq!(
                errors.len(),
                6,
                "three failing samples, two epochs: {errors:?}"
            );
            for (file, why) in [("c1/3.png", "No such file"), ("c2/5.png", "a FIFO")] {
                let e = errors.iter().find(|e| e.contains(file)).unwrap();
                assert!(e.contains("sample ") && e.contains(why), "{e}");
            }
        } else {
            assert_eq!(on.report().skipped, 3);
            assert_eq!(off.skipped_samples(), on.skipped_samples());
            let kept: usize = b.iter().map(|r| r.as_ref().unwrap().0.len()).sum();
            assert_eq!(kept, 2 * (24 - 3));
        }
    }
}

/// A source of one-pixel images that records its hints and can hold them (a hung mount).
struct Hinted {
    len: usize,
    hints: Mutex<Vec<usize>>,
    hold: AtomicBool,
    holding: AtomicBool,
}

impl Hinted {
    fn new(len: usize, hold: bool) -> Arc<Hinted> {
        Arc::new(Hinted {
            len,
            hints: Mutex::new(Vec::new()),
            hold: AtomicBool::new(hold),
            holding: AtomicBool::new(false),
        })
    }
}

impl Source for Hinted {
    fn len(&self) -> usize {
        self.len
    }
    fn sample_shape(&self) -> Option<[usize; 3]> {
        Some([1, 1, 1])
    }
    fn read<'a>(
        &'a self,
        id: usize,
        scratch: &'a mut Scratch,
    ) -> thresher_core::Result<SampleView<'a>> {
        scratch.pixels = vec![id as u8];
        Ok(SampleView {
            pixels: &scratch.pixels,
            height: 1,
            width: 1,
            channels: 1,
        })
    }
    fn label(&self, _id: usize) -> i64 {
        0
    }
    fn reads_ahead(&self) -> bool {
        true
    }
    fn will_read(&self, id: usize) -> bool {
        self.hints.lock().unwrap().push(id);
        while self.hold.load(Ordering::Acquire) {
            self.holding.store(true, Ordering::Release);
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    }
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !ok() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn hints_follow_the_plan_within_the_window() {
    let source = Hinted::new(1000, false);
    // plan_ahead off: with it, the I/O threads go on to the next epoch's plan once this one's
    // last batch is out (tested below), and its samples are the same ids again.
    let config = Config::from_json(
        r#"{"batch_size": 10, "prefetch": 3, "workers": 1, "io_depth": 4, "plan_ahead": false}"#,
    )
    .unwrap();
    let l = Loader::with_source(config, source.clone()).unwrap();
    let plan = l.epoch_plan();
    let order: Vec<usize> = plan.ids.iter().map(|&i| i as usize).collect();
    // Nothing taken yet: the window is `prefetch` + 1 batches.
    wait_for("the window is hinted", || {
        source.hints.lock().unwrap().len() >= 40
    });
    std::thread::sleep(Duration::from_millis(100));
    let mut seen = source.hints.lock().unwrap().clone();
    assert_eq!(seen.len(), 40, "hints beyond the window");
    seen.sort_unstable();
    let mut want = order[..40].to_vec();
    want.sort_unstable();
    assert_eq!(seen, want, "the window's samples, each once");
    // Taking batches moves the window along: no sample is hinted twice (a consumer faster
    // than the hints makes the I/O threads pass over what it has taken).
    while l.next().unwrap().is_some() {}
    let all = source.hints.lock().unwrap().clone();
    let mut unique = all.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), all.len());
}

#[test]
fn no_hints_for_sources_that_do_not_read_ahead() {
    // In-memory and memory-mapped sources say `reads_ahead() == false`: no I/O thread starts,
    // and `will_read` is never called.
    struct Memory(Arc<Hinted>);
    impl Source for Memory {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn sample_shape(&self) -> Option<[usize; 3]> {
            self.0.sample_shape()
        }
        fn read<'a>(
            &'a self,
            id: usize,
            scratch: &'a mut Scratch,
        ) -> thresher_core::Result<SampleView<'a>> {
            self.0.read(id, scratch)
        }
        fn label(&self, _id: usize) -> i64 {
            0
        }
        fn will_read(&self, id: usize) -> bool {
            self.0.will_read(id)
        }
    }
    let inner = Hinted::new(100, false);
    let config = Config::from_json(r#"{"batch_size": 10, "io_depth": 8}"#).unwrap();
    let l = Loader::with_source(config, Arc::new(Memory(inner.clone()))).unwrap();
    while l.next().unwrap().is_some() {}
    assert!(inner.hints.lock().unwrap().is_empty());
}

#[test]
fn drop_returns_while_io_threads_are_stuck() {
    let source = Hinted::new(64, true);
    let config = Config::from_json(r#"{"batch_size": 4, "workers": 1, "io_depth": 3}"#).unwrap();
    let l = Loader::with_source(config, source.clone()).unwrap();
    wait_for("an I/O thread is in a hint", || {
        source.holding.load(Ordering::Acquire)
    });
    // The workers still deliver: a stuck hint holds up nothing.
    assert_eq!(l.next().unwrap().unwrap().len(), 4);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        drop(l);
        let _ = tx.send(());
    });
    rx.recv_timeout(LIMIT)
        .expect("dropping the loader waited for its stuck I/O threads");
    // Released, the detached I/O threads exit and let go of the source.
    source.hold.store(false, Ordering::Release);
    wait_for("the detached I/O threads never exited", || {
        Arc::strong_count(&source) == 1
    });
}

#[test]
fn hints_go_on_to_the_next_epoch_once_its_plan_is_made_ahead() {
    let source = Hinted::new(200, false);
    let config =
        Config::from_json(r#"{"batch_size": 10, "prefetch": 3, "workers": 1, "io_depth": 2}"#)
            .unwrap();
    let l = Loader::with_source(config, source.clone()).unwrap();
    while l.next().unwrap().is_some() {}
    // Epoch 0 is over (its end was reported); epoch 1's plan was made at its last batch and
    // its first `prefetch` + 1 batches are hinted before the trainer asks for any of them.
    let next = l.epoch_info();
    assert_eq!(next.epoch, 1);
    let want: Vec<usize> = l.epoch_plan().ids[..40]
        .iter()
        .map(|&i| i as usize)
        .collect();
    let mut want = want;
    want.sort_unstable();
    wait_for("the next epoch's window is hinted", || {
        let hints = source.hints.lock().unwrap();
        let mut tail: Vec<usize> = hints.iter().rev().take(40).cloned().collect();
        tail.sort_unstable();
        tail == want
    });
}

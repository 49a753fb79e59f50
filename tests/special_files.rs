//! Hostile file-system inputs: FIFOs, sockets, /dev/zero and directories where a dataset file
//! is expected, huge files that are not what their key says, symbolic link loops in image
//! folders, concurrent consumers of one loader, and dropping a loader whose worker is stuck in
//! a read. Each is refused with a status and a message naming its cause — and none may hang:
//! every call runs on a thread of its own and the test fails when it has not returned within
//! `LIMIT` (a hang detector, not a timing assertion: the calls take milliseconds).

mod ffi_util;
mod image_util;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use ffi_util::last_error;
use image::DynamicImage;
use image_util::{cifar_bytes, image_folder, photo, write_tar};
use serde_json::json;
use thresher::ffi::*;
use thresher_core::source::{write_idx, SampleView, Scratch, Source};
use thresher_core::{Config, Loader};

use thresher_status::*;

/// How long any single call may take before it counts as hung.
const LIMIT: Duration = Duration::from_secs(20);

/// Runs `f` on its own thread; panics (naming `what`) when it has not returned within LIMIT.
/// A hung thread is left behind: the test fails and the process ends anyway.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(v) => v,
        Err(_) => panic!("{what}: no return within {LIMIT:?} (a hang)"),
    }
}

/// A loader pointer that may cross to the thread `within` starts.
struct Ptr(*mut thresher_loader);
unsafe impl Send for Ptr {}

/// `thresher_loader_new(config)` on a thread of its own: (status, message, loader).
fn new(config: serde_json::Value) -> (thresher_status, String, Ptr) {
    within("thresher_loader_new", move || {
        let c = CString::new(config.to_string()).unwrap();
        let mut l = null_mut();
        let st = unsafe { thresher_loader_new(c.as_ptr(), &mut l) };
        let msg = if st == THRESHER_OK {
            String::new()
        } else {
            last_error()
        };
        (st, msg, Ptr(l))
    })
}

/// A config is refused with `status` and a message holding every needle.
fn refused(config: serde_json::Value, status: thresher_status, needles: &[&str]) {
    let (st, msg, l) = new(config.clone());
    if st == THRESHER_OK {
        unsafe { thresher_loader_free(l.0) };
    }
    assert_eq!(st, status, "{config}: {msg}");
    for n in needles {
        assert!(msg.contains(n), "{config}: `{msg}` lacks `{n}`");
    }
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `root/<class>/NNN.png`: two classes of four 6×5 photos.
fn folder(root: &Path) {
    let imgs = || {
        (0..4)
            .map(|i| DynamicImage::ImageRgb8(photo(6, 5, i)))
            .collect::<Vec<_>>()
    };
    image_folder(root, &[("cat", imgs()), ("dog", imgs())]);
}

fn folder_config(root: &Path, on_error: &str) -> serde_json::Value {
    json!({"source": {"kind": "image_folder", "root": root}, "batch_size": 3, "workers": 2,
           "shuffle": false, "on_error": on_error,
           "transform": {"resize": [4, 4], "dtype": "u8"}})
}

/// Runs one epoch with `next`; returns (ids delivered, errors seen with their messages).
fn epoch(l: &Ptr) -> (Vec<u64>, Vec<(thresher_status, String)>) {
    let l = Ptr(l.0);
    within("an epoch of thresher_loader_next", move || {
        let l = l;
        let (mut ids, mut errors) = (Vec::new(), Vec::new());
        for _ in 0..100 {
            let mut b = null_mut();
            let st = unsafe { thresher_loader_next(l.0, &mut b) };
            match st {
                THRESHER_OK => {
                    let n = unsafe { thresher_batch_len(b) };
                    let p = unsafe { thresher_batch_ids(b) };
                    ids.extend_from_slice(unsafe { std::slice::from_raw_parts(p, n) });
                    unsafe { thresher_batch_release(b) };
                }
                THRESHER_END_OF_EPOCH => return (ids, errors),
                st => errors.push((st, last_error())),
            }
        }
        panic!("the epoch did not end");
    })
}

fn free(l: Ptr) {
    within("thresher_loader_free", move || {
        let l = l;
        unsafe { thresher_loader_free(l.0) }
    });
}

/// The sample id of `path` in a sorted two-class folder of four images each.
fn id_of(root: &Path, path: &Path) -> u64 {
    let mut all: Vec<PathBuf> = Vec::new();
    for c in ["cat", "dog"] {
        let mut v: Vec<_> = std::fs::read_dir(root.join(c))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some())
            .collect();
        v.sort();
        all.extend(v);
    }
    all.iter().position(|p| p == path).unwrap() as u64
}

/// A special file named like an image in a class folder: `next` returns an error naming the
/// path and the sample id (default on_error), or leaves the sample out (on_error "skip"); the
/// epoch ends and free returns either way.
fn special_image(make: impl Fn(&Path), status: thresher_status, needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    folder(dir.path());
    let bad = dir.path().join("cat/001.png");
    std::fs::remove_file(&bad).unwrap();
    make(&bad);
    let id = id_of(dir.path(), &bad);
    for on_error in ["fail", "skip"] {
        let (st, msg, l) = new(folder_config(dir.path(), on_error));
        assert_eq!(st, THRESHER_OK, "{msg}");
        let (ids, errors) = epoch(&l);
        assert!(
            !ids.contains(&id),
            "{on_error}: the bad sample was delivered"
        );
        if on_error == "fail" {
            assert_eq!(errors.len(), 1, "{errors:?}");
            let (st, msg) = &errors[0];
            assert_eq!(*st, status, "{msg}");
            assert!(
                msg.contains(&s(&bad))
                    && msg.contains(&format!("sample {id}"))
                    && msg.contains(needle),
                "{msg}"
            );
            // The rest of the batch holding it is lost with it; other batches arrive.
            assert!(ids.len() >= 5, "{ids:?}");
        } else {
            assert!(errors.is_empty(), "{errors:?}");
            assert_eq!(ids.len(), 7, "{ids:?}");
            let mut r = thresher_epoch_report::default();
            assert_eq!(unsafe { thresher_loader_report(l.0, &mut r) }, THRESHER_OK);
            assert_eq!(r.skipped, 1);
        }
        free(l);
    }
}

#[test]
fn a_fifo_named_like_an_image_is_an_error_not_a_hang() {
    special_image(mkfifo, THRESHER_FORMAT, "a FIFO");
}

#[test]
fn dev_zero_named_like_an_image_is_refused_before_reading() {
    special_image(
        |p| std::os::unix::fs::symlink("/dev/zero", p).unwrap(),
        THRESHER_FORMAT,
        "a character device",
    );
}

#[test]
fn a_socket_named_like_an_image_is_an_error() {
    // A listening socket: open() of it fails (ENXIO) before any type check.
    let dir = tempfile::tempdir().unwrap();
    folder(dir.path());
    let bad = dir.path().join("cat/001.png");
    std::fs::remove_file(&bad).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(&bad).unwrap();
    let (st, msg, l) = new(folder_config(dir.path(), "fail"));
    assert_eq!(st, THRESHER_OK, "{msg}");
    let (_, errors) = epoch(&l);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, THRESHER_IO, "{}", errors[0].1);
    assert!(errors[0].1.contains(&s(&bad)), "{}", errors[0].1);
    free(l);
}

#[test]
fn a_manifest_entry_that_is_a_directory_or_fifo_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    folder(dir.path());
    let fifo = dir.path().join("pipe.jpg");
    mkfifo(&fifo);
    let manifest = dir.path().join("list.tsv");
    std::fs::write(
        &manifest,
        "cat/000.png\t0\ncat\t0\npipe.jpg\t1\ndog/000.png\t1\n",
    )
    .unwrap();
    let config = |on_error: &str| {
        json!({"source": {"kind": "image_folder", "manifest": manifest}, "batch_size": 1,
               "workers": 2, "shuffle": false, "on_error": on_error,
               "transform": {"resize": [4, 4], "dtype": "u8"}})
    };
    let (st, msg, l) = new(config("fail"));
    assert_eq!(st, THRESHER_OK, "{msg}");
    let (ids, errors) = epoch(&l);
    assert_eq!(ids, [0, 3]);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].1.contains("sample 1") && errors[0].1.contains("a directory"));
    assert!(errors[1].1.contains("sample 2") && errors[1].1.contains("a FIFO"));
    free(l);
    let (st, msg, l) = new(config("skip"));
    assert_eq!(st, THRESHER_OK, "{msg}");
    let (ids, errors) = epoch(&l);
    assert_eq!((ids, errors.len()), (vec![0, 3], 0));
    free(l);
}

/// Each dataset-file key pointed at a FIFO, /dev/zero or a directory is refused at creation.
#[test]
fn dataset_files_that_are_not_regular_files_are_refused_at_creation() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let (img, lab) = (dir.path().join("img"), dir.path().join("lab"));
    write_idx(&img, &[4, 2, 2], &[7; 16]).unwrap();
    write_idx(&lab, &[4], &[1; 4]).unwrap();
    let good_shard = dir.path().join("good.tar");
    write_tar(&good_shard, &[]);
    for special in [fifo.as_path(), Path::new("/dev/zero"), dir.path()] {
        let what = if special == fifo {
            "a FIFO"
        } else if special == dir.path() {
            "a directory"
        } else {
            "a character device"
        };
        let sp = s(special);
        let cases = [
            json!({"kind": "idx", "images": special, "labels": lab}),
            json!({"kind": "idx", "images": img, "labels": special}),
            json!({"kind": "cifar", "files": [special]}),
            json!({"kind": "image_folder", "manifest": special}),
            json!({"kind": "tar", "shards": [special]}),
        ];
        for source in cases {
            refused(
                json!({"source": source, "transform": {"resize": [2, 2]}}),
                THRESHER_FORMAT,
                &[&sp, what],
            );
        }
        refused(
            json!({"source": {"kind": "idx", "images": img, "labels": lab},
                   "resume_from": special}),
            THRESHER_FORMAT,
            &[&sp, what],
        );
    }
    // A report path that is a FIFO nobody reads: opening it for writing would block.
    refused(
        json!({"source": {"kind": "idx", "images": img, "labels": lab}, "report": fifo}),
        THRESHER_IO,
        &["report", &s(&fifo)],
    );
}

/// Huge files that are not what their key says are refused from their size or first bytes,
/// not read whole (sparse files: no disk is used).
#[test]
fn huge_files_of_the_wrong_kind_are_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge");
    let f = std::fs::File::create(&huge).unwrap();
    f.set_len(64 << 30).unwrap();
    drop(f);
    let lab = dir.path().join("lab");
    write_idx(&lab, &[4], &[1; 4]).unwrap();
    // An IDX header announcing 16 bytes at the front of a 64 GiB file.
    let lying = dir.path().join("lying");
    write_idx(&lying, &[4, 2, 2], &[7; 16]).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&lying)
        .unwrap()
        .set_len(64 << 30)
        .unwrap();
    let good = dir.path().join("good");
    write_idx(&good, &[4, 2, 2], &[7; 16]).unwrap();
    let started = Instant::now();
    refused(
        json!({"source": {"kind": "idx", "images": huge, "labels": lab}}),
        THRESHER_FORMAT,
        &[&s(&huge), "not an IDX file"],
    );
    refused(
        json!({"source": {"kind": "idx", "images": lying, "labels": lab}}),
        THRESHER_FORMAT,
        &[&s(&lying), "IDX header says [4, 2, 2] = 16 bytes"],
    );
    refused(
        json!({"source": {"kind": "cifar", "files": [huge]}}),
        THRESHER_FORMAT,
        &[&s(&huge), "not a whole number"],
    );
    refused(
        json!({"source": {"kind": "image_folder", "manifest": huge},
               "transform": {"resize": [2, 2]}}),
        THRESHER_FORMAT,
        &[&s(&huge), "not a manifest"],
    );
    refused(
        json!({"source": {"kind": "idx", "images": good, "labels": lab}, "resume_from": huge}),
        THRESHER_FORMAT,
        &[&s(&huge), "checkpoint"],
    );
    // Reading any of them would take minutes; refusing takes no time worth measuring.
    assert!(started.elapsed() < LIMIT);
    // A CIFAR file is read only as far as `limit` needs.
    let cifar = dir.path().join("c.bin");
    std::fs::write(&cifar, cifar_bytes(3, false)).unwrap();
    let l = Loader::new(
        Config::from_json(
            &json!({"source": {"kind": "cifar", "files": [cifar], "limit": 2}}).to_string(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(l.dataset_len(), 2);
}

fn symlink(target: impl AsRef<Path>, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

/// Makes links in a fresh image folder.
type MakeLinks = dyn Fn(&Path);

/// Symbolic links to `.`, to a parent, to the root or to another class: refused, naming the
/// link, instead of walking 2^depth directories or counting images many times over.
#[test]
fn directory_link_loops_are_refused_not_walked() {
    let cases: [(&str, &MakeLinks); 7] = [
        ("a link to /", &|r: &Path| {
            symlink("/", &r.join("cat/everything"))
        }),
        ("a link above the root", &|r: &Path| {
            symlink("../../..", &r.join("dog/above"))
        }),
        ("two links to .", &|r: &Path| {
            symlink(".", &r.join("cat/a"));
            symlink(".", &r.join("cat/b"));
        }),
        ("a link to the parent", &|r: &Path| {
            symlink("..", &r.join("cat/up"))
        }),
        ("a deep link to the class", &|r: &Path| {
            std::fs::create_dir_all(r.join("cat/x/y")).unwrap();
            symlink("../..", &r.join("cat/x/y/back"));
        }),
        ("a link to another class", &|r: &Path| {
            symlink("../dog", &r.join("cat/dogs"))
        }),
        ("a class that is a link to another", &|r: &Path| {
            symlink("cat", &r.join("kitty"))
        }),
    ];
    for (what, make) in cases {
        let dir = tempfile::tempdir().unwrap();
        folder(dir.path());
        make(dir.path());
        let (st, msg, l) = new(folder_config(dir.path(), "fail"));
        if st == THRESHER_OK {
            free(l);
        }
        assert_eq!(st, THRESHER_FORMAT, "{what}: {msg}");
        assert!(
            msg.contains("already reached") && msg.contains("each directory is walked once"),
            "{what}: {msg}"
        );
    }
}

#[test]
fn links_that_are_not_loops_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    folder(&root);
    // A class directory elsewhere, linked in; a file linked twice; a dangling link.
    let elsewhere = dir.path().join("birds");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::copy(root.join("cat/000.png"), elsewhere.join("b.png")).unwrap();
    symlink(&elsewhere, &root.join("bird"));
    symlink("000.png", &root.join("dog/zz-again.png"));
    symlink("/nonexistent/x.png", &root.join("dog/zz-dangling.png"));
    let (st, msg, l) = new(folder_config(&root, "skip"));
    assert_eq!(st, THRESHER_OK, "{msg}");
    let (ids, errors) = epoch(&l);
    // bird (1) + cat (4) + dog (4 + the second link); the dangling link is skipped.
    assert_eq!((ids.len(), errors.len()), (10, 0), "{ids:?} {errors:?}");
    let mut r = thresher_epoch_report::default();
    assert_eq!(unsafe { thresher_loader_report(l.0, &mut r) }, THRESHER_OK);
    assert_eq!((r.dataset_len, r.skipped), (11, 1));
    free(l);
}

#[test]
fn a_tar_shard_fifo_inside_a_brace_pattern_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_tar(
        &dir.path().join("s-0.tar"),
        &[
            (
                "a.png".into(),
                image_util::png_bytes(&photo(3, 3, 0).into()),
            ),
            ("a.cls".into(), b"1".to_vec()),
        ],
    );
    mkfifo(&dir.path().join("s-1.tar"));
    let pattern = format!("{}/s-{{0..1}}.tar", s(dir.path()));
    refused(
        json!({"source": {"kind": "tar", "shards": pattern}, "transform": {"resize": [2, 2]}}),
        THRESHER_FORMAT,
        &["s-1.tar", "a FIFO", "tar shard"],
    );
}

/// A source whose reads block until released (a hung network mount, say).
struct Stuck {
    release: Arc<AtomicBool>,
}

impl Source for Stuck {
    fn len(&self) -> usize {
        8
    }
    fn sample_shape(&self) -> Option<[usize; 3]> {
        Some([1, 1, 1])
    }
    fn read<'a>(
        &'a self,
        _id: usize,
        scratch: &'a mut Scratch,
    ) -> thresher_core::Result<SampleView<'a>> {
        while !self.release.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(5));
        }
        scratch.pixels = vec![1];
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
}

/// Dropping a loader (thresher_loader_free) returns although every worker is stuck in a read;
/// the stuck workers exit on their own once their read returns.
#[test]
fn drop_returns_while_workers_are_stuck_in_reads() {
    let release = Arc::new(AtomicBool::new(false));
    let source = Arc::new(Stuck {
        release: Arc::clone(&release),
    });
    let config = Config::from_json(r#"{"workers": 3, "batch_size": 2}"#).unwrap();
    let loader = Loader::with_source(config, source.clone()).unwrap();
    // Let the workers get into their reads.
    std::thread::sleep(Duration::from_millis(50));
    within("dropping a loader with stuck workers", move || drop(loader));
    // The detached workers still hold the source; released, they finish and let go of it.
    release.store(true, Ordering::Release);
    let deadline = Instant::now() + LIMIT;
    while Arc::strong_count(&source) > 1 {
        assert!(
            Instant::now() < deadline,
            "the detached workers never exited"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Two threads taking batches from one loader: each batch goes to one of them, and the one
/// still waiting when the other takes the last batch (or ends the epoch) gets the end of the
/// epoch instead of waiting forever.
#[test]
fn concurrent_consumers_never_wait_forever() {
    let dir = tempfile::tempdir().unwrap();
    let (img, lab) = (dir.path().join("img"), dir.path().join("lab"));
    write_idx(&img, &[97, 2, 2], &[3; 97 * 4]).unwrap();
    write_idx(&lab, &[97], &[1; 97]).unwrap();
    for round in 0..20 {
        let (st, msg, l) = new(
            json!({"source": {"kind": "idx", "images": img, "labels": lab},
                                      "batch_size": 4, "workers": 2, "prefetch": 2}),
        );
        assert_eq!(st, THRESHER_OK, "{msg}");
        let consumer = |l: &Ptr| {
            let l = Ptr(l.0);
            std::thread::spawn(move || {
                let l = l;
                let mut ids = Vec::new();
                loop {
                    let mut b = null_mut();
                    match unsafe { thresher_loader_next(l.0, &mut b) } {
                        THRESHER_OK => {
                            let n = unsafe { thresher_batch_len(b) };
                            let p = unsafe { thresher_batch_ids(b) };
                            ids.extend_from_slice(unsafe { std::slice::from_raw_parts(p, n) });
                            unsafe { thresher_batch_release(b) };
                        }
                        THRESHER_END_OF_EPOCH => return ids,
                        st => panic!("{st:?}: {}", last_error()),
                    }
                }
            })
        };
        let (a, b) = (consumer(&l), consumer(&l));
        if round % 2 == 1 {
            // Ending the epoch from a third thread releases anyone waiting in it.
            let _ = unsafe { thresher_loader_end_epoch(l.0) };
        }
        let ids = within("two consumers", move || {
            let mut ids = a.join().unwrap();
            ids.extend(b.join().unwrap());
            ids
        });
        // A consumer arriving after the end may have begun the next epoch: ids of epoch 0 are
        // each delivered once, so no id occurs more than twice. With the third thread's
        // `end_epoch` landing after epoch 0's last batch but before either consumer was told
        // the end, both go on into epoch 1, and the one not told its end goes on into epoch 2:
        // then an id may occur three times (each epoch still delivers it once).
        let mut counts = vec![0; 97];
        for id in ids {
            counts[id as usize] += 1;
        }
        let most = if round % 2 == 1 { 3 } else { 2 };
        assert!(
            counts.iter().all(|&c| c <= most),
            "round {round}: {counts:?}"
        );
        free(l);
    }
}

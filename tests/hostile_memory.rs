//! Hostile sizes under a memory limit: every input that sizes an allocation (the transform's
//! output × `batch_size`, the batches in flight, an index source's N, a gradient embedding's
//! length, N × `sketch_dim`, a checkpoint's or score file's size) is refused with a message
//! naming its key or file, or works, in a process whose address space is capped. Rust aborts
//! on a failed allocation, which no panic fence catches: without the cap a machine with
//! overcommit might let an oversized request through unnoticed, with it such an abort shows as
//! a signal.
//!
//! Each test runs its case in a child process (this test binary again, selected by an
//! environment variable) with RLIMIT_AS set, and requires a clean exit.

mod ffi_util;

use std::ffi::CString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;
use std::ptr::null;

use ffi_util::{last_error, new};
use thresher::ffi::*;
use thresher_core::source::write_idx;

/// The child's address-space cap: room for the test binary, its threads' stacks and the
/// allocator's arenas, far below what any hostile case asks for.
const LIMIT: u64 = 3 << 30;

const CASE_VAR: &str = "THRESHER_HOSTILE_CASE";

/// In the parent: reruns this test alone, capped, and requires a clean exit. In the child:
/// runs `body`.
fn capped(name: &str, body: impl FnOnce()) {
    if std::env::var(CASE_VAR).as_deref() == Ok(name) {
        body();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(CASE_VAR, name);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: LIMIT,
                rlim_max: LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{name} under a {LIMIT}-byte address-space cap: {:?} (signal {:?})\n{text}",
        out.status,
        out.status.signal()
    );
}

/// `config` must be refused with INVALID_ARGUMENT (or `status`) naming every one of `needles`.
fn refused(config: &str, status: thresher_status, needles: &[&str]) {
    let (st, l) = new(config);
    assert!(l.is_null(), "{config}: accepted");
    let msg = last_error();
    assert_eq!(st, status, "{config}: {msg}");
    for needle in needles {
        assert!(msg.contains(needle), "{config}: `{msg}` lacks `{needle}`");
    }
}

/// A 50-image 2×2 IDX dataset; returns the directory and the `source` entry.
fn idx() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let (i, l) = (dir.path().join("img"), dir.path().join("lab"));
    write_idx(&i, &[50, 2, 2], &[7u8; 200]).unwrap();
    write_idx(&l, &[50], &[1u8; 50]).unwrap();
    let source = format!(
        r#""source": {{"kind": "idx", "images": "{}", "labels": "{}"}}"#,
        i.display(),
        l.display()
    );
    (dir, source)
}

use thresher_status::*;

#[test]
fn a_resize_target_in_range_on_a_tiny_dataset() {
    capped("a_resize_target_in_range_on_a_tiny_dataset", || {
        let (_d, src) = idx();
        // 256 samples of 65536 × 65536 f32: a terabyte a batch.
        refused(
            &format!(r#"{{{src}, "transform": {{"resize": [65536, 65536]}}}}"#),
            THRESHER_INVALID_ARGUMENT,
            &["max_batch_bytes", "batch_size", "transform"],
        );
        refused(
            &format!(r#"{{{src}, "transform": {{"center_crop": 65536, "dtype": "u8"}}}}"#),
            THRESHER_INVALID_ARGUMENT,
            &["max_batch_bytes"],
        );
        refused(
            &format!(r#"{{{src}, "max_batch_bytes": 0}}"#),
            THRESHER_INVALID_ARGUMENT,
            &["max_batch_bytes"],
        );
    });
}

#[test]
fn a_raised_budget_that_does_not_fit_this_process() {
    capped("a_raised_budget_that_does_not_fit_this_process", || {
        let (_d, src) = idx();
        // Within the (raised) budget, but the batches in flight cannot be allocated here.
        refused(
            &format!(
                r#"{{{src}, "max_batch_bytes": 18446744073709551615, "batch_size": 1048576,
                    "transform": {{"resize": [65536, 65536]}}}}"#
            ),
            THRESHER_INVALID_ARGUMENT,
            &["prefetch", "workers", "cannot be allocated"],
        );
        refused(
            &format!(
                r#"{{{src}, "max_batch_bytes": 8589934592, "batch_size": 2,
                    "transform": {{"resize": [32768, 32768], "dtype": "u8"}}}}"#
            ),
            THRESHER_INVALID_ARGUMENT,
            &["cannot be allocated"],
        );
        // A legitimate batch still works under the cap.
        let (st, l) = new(&format!(
            r#"{{{src}, "batch_size": 8, "transform": {{"resize": [64, 64]}}}}"#
        ));
        assert_eq!(st, THRESHER_OK, "{}", last_error());
        let mut b = std::ptr::null_mut();
        assert_eq!(unsafe { thresher_loader_next(l, &mut b) }, THRESHER_OK);
        unsafe { thresher_batch_release(b) };
        unsafe { thresher_loader_free(l) };
    });
}

#[test]
fn an_index_source_too_large_for_this_process() {
    capped("an_index_source_too_large_for_this_process", || {
        for policy in ["full", "ucb", "influence"] {
            refused(
                &format!(
                    r#"{{"source": {{"kind": "index", "len": 4294967296}},
                        "policy": {{"kind": "{policy}"}}}}"#
                ),
                THRESHER_INVALID_ARGUMENT,
                &["source.len", "4294967296"],
            );
        }
    });
}

fn feedback(l: *mut thresher_loader, ids: &[u64], emb: &[f32], dim: usize) -> thresher_status {
    let loss = vec![1.0f32; ids.len()];
    let fb = thresher_feedback {
        len: ids.len(),
        ids: ids.as_ptr(),
        loss: loss.as_ptr(),
        grad_norm: null(),
        el2n: null(),
        correct: null(),
        embedding: if emb.is_empty() && dim == 0 {
            null()
        } else {
            emb.as_ptr()
        },
        embedding_dim: dim,
    };
    unsafe { thresher_loader_feedback(l, &fb) }
}

#[test]
fn a_resnet_sized_gradient_embedding() {
    capped("a_resnet_sized_gradient_embedding", || {
        let (st, l) = new(
            r#"{"source": {"kind": "index", "len": 100}, "batch_size": 10,
                "policy": {"kind": "influence", "score_epochs": 1, "sketch_dim": 512}}"#,
        );
        assert_eq!(st, THRESHER_OK, "{}", last_error());
        // A zero-length call naming a dimension fixes nothing.
        assert_eq!(feedback(l, &[], &[], 7), THRESHER_OK, "{}", last_error());
        // ResNet-18's 11M parameters: projected to 512 on arrival (a dense projection matrix
        // would be 22 GB).
        let d = 11_000_000;
        let emb: Vec<f32> = (0..d).map(|i| (i % 13) as f32 - 6.0).collect();
        assert_eq!(feedback(l, &[3], &emb, d), THRESHER_OK, "{}", last_error());
        drop(emb);
        // The length is now fixed: another is refused by name.
        let st = feedback(l, &[5], &[1.0; 7], 7);
        assert_eq!(st, THRESHER_INVALID_ARGUMENT);
        assert!(last_error().contains("embedding_dim"), "{}", last_error());
        unsafe { thresher_loader_free(l) };
    });
}

#[test]
fn embedding_storage_too_large_for_this_process() {
    capped("embedding_storage_too_large_for_this_process", || {
        // 2^20 samples × 8192 floats = 32 GiB of stored embeddings.
        let (st, l) = new(r#"{"source": {"kind": "index", "len": 1048576},
                "policy": {"kind": "influence", "sketch_dim": 8192}}"#);
        assert_eq!(st, THRESHER_OK, "{}", last_error());
        let st = feedback(l, &[1], &[0.5; 8192], 8192);
        assert_eq!(st, THRESHER_INVALID_ARGUMENT);
        assert!(
            last_error().contains("policy.sketch_dim"),
            "{}",
            last_error()
        );
        // Refused whole: a short embedding still fixes the length afterwards.
        assert_eq!(
            feedback(l, &[1], &[0.5; 4], 4),
            THRESHER_OK,
            "{}",
            last_error()
        );
        unsafe { thresher_loader_free(l) };
    });
}

#[test]
fn state_files_that_are_huge_or_special() {
    capped("state_files_that_are_huge_or_special", || {
        let dir = tempfile::tempdir().unwrap();
        // A sparse 64 GiB regular file: refused by its size before a byte is read.
        let huge = dir.path().join("huge");
        std::fs::File::create(&huge)
            .unwrap()
            .set_len(64 << 30)
            .unwrap();
        // A FIFO with no writer: refused at once, not waited on.
        let fifo = dir.path().join("fifo");
        let c = CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // A report FIFO: refused at once (no reader: the open fails; it is never waited on).
        let (_d, src) = idx();
        let (st, l) = new(&format!(r#"{{{src}, "report": "{}"}}"#, fifo.display()));
        assert!(l.is_null());
        assert!(
            st == THRESHER_IO || st == THRESHER_INVALID_ARGUMENT,
            "{st:?}"
        );
        assert!(last_error().contains("report"), "{}", last_error());
        for path in [
            huge.as_path(),
            fifo.as_path(),
            std::path::Path::new("/dev/zero"),
        ] {
            let p = path.display();
            refused(
                &format!(r#"{{"source": {{"kind": "index", "len": 10}}, "resume_from": "{p}"}}"#),
                THRESHER_FORMAT,
                &[&p.to_string()],
            );
            let (_d, src) = idx();
            let (st, l) = new(&format!(
                r#"{{{src}, "policy": {{"kind": "el2n", "scores_from": ["{p}"]}}}}"#
            ));
            assert!(l.is_null());
            assert!(
                st == THRESHER_FORMAT || st == THRESHER_INVALID_ARGUMENT,
                "{st:?}"
            );
            let msg = last_error();
            assert!(msg.contains(&p.to_string()), "{msg}");
        }
    });
}

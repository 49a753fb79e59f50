//! A battery of bad inputs through the C ABI: each is refused with the right status and a
//! message naming its cause, the process survives, and a refused feedback call leaves the
//! ScoreBook unchanged. (Image formats have their own battery beside their sources.)
//!
//! Every bad input is its own `#[test]`, generated from one row of a table by the
//! `macro_rules!` beside it, so a failure names its input and does not hide the rest of the
//! table. Each test makes its own dataset and loader: tests run in parallel, and the error
//! message read back is the calling thread's.
//!
//! The tables, one file each: `config` (bad configs), `image_file` (bad IDX files),
//! `source_files` (bad sources of each kind), `misuse` (NULL pointers), `null_handle` (calls
//! on a NULL handle), `feedback` (bad feedback); the helpers they share are here.

#[path = "../ffi_util/mod.rs"]
mod ffi_util;

use std::ffi::CString;
use std::ptr::{null, null_mut};

use ffi_util::{last_error, new};
use tempfile::TempDir;
use thresher::ffi::*;
use thresher_core::source::write_idx;

use thresher_status::*;

const INV: thresher_status = THRESHER_INVALID_ARGUMENT;
const IO: thresher_status = THRESHER_IO;
const FORMAT: thresher_status = THRESHER_FORMAT;

fn source(i: &str, l: &str) -> String {
    format!(r#""source": {{"kind": "idx", "images": "{i}", "labels": "{l}"}}"#)
}

/// A tiny valid IDX pair, 50 images of 2×2, in a directory of its own.
struct Data {
    dir: TempDir,
    images: String,
    labels: String,
}

impl Data {
    fn new() -> Data {
        let dir = tempfile::tempdir().unwrap();
        let (i, l) = (dir.path().join("img"), dir.path().join("lab"));
        write_idx(
            &i,
            &[50, 2, 2],
            &(0..200).map(|x| x as u8).collect::<Vec<_>>(),
        )
        .unwrap();
        write_idx(
            &l,
            &[50],
            &(0..50).map(|x| x as u8 % 10).collect::<Vec<_>>(),
        )
        .unwrap();
        let (images, labels) = (i.display().to_string(), l.display().to_string());
        Data {
            dir,
            images,
            labels,
        }
    }

    /// `body` with the valid source added when it has keys but no source of its own, so only
    /// the bad key fails.
    fn with_source(&self, body: &str) -> String {
        if body.starts_with('{') && body.len() > 2 && !body.contains("\"source\"") {
            format!("{{{}, {}", source(&self.images, &self.labels), &body[1..])
        } else {
            body.to_string()
        }
    }

    /// Writes `bytes` to the file `name` in the dataset's directory; returns its path.
    fn write(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    }

    /// A loader over the dataset (3 batches of 20 per epoch), for the calls below.
    fn loader(&self) -> *mut thresher_loader {
        let (st, l) = new(&self
            .with_source(r#"{"batch_size": 20, "policy": {"kind": "infobatch", "epochs": 4}}"#));
        assert_eq!(st, THRESHER_OK, "{}", last_error());
        l
    }
}

/// Expects `config` to be refused with `status` and a message containing `needle`, and no
/// loader to be made.
fn refused(config: &str, status: thresher_status, needle: &str) {
    let (st, l) = new(config);
    assert!(l.is_null());
    assert_eq!(st, status, "{config}: {}", last_error());
    let msg = last_error();
    assert!(
        msg.contains(needle),
        "{config}: message `{msg}` lacks `{needle}`"
    );
}

/// The number of rows a table macro was given.
macro_rules! count {
    ($($name:ident)*) => { [$(stringify!($name)),*].len() };
}

mod config;
mod feedback;
mod image_file;
mod misuse;
mod null_handle;
mod source_files;

/// Guards the tables themselves: a row deleted by mistake fails here (raise the number when
/// adding cases).
#[test]
fn no_case_was_lost() {
    let n = config::CASES
        + image_file::CASES
        + source_files::CASES
        + misuse::CASES
        + null_handle::CASES
        + feedback::CASES;
    assert_eq!(n, 119, "{n} bad inputs in the tables");
}

// ---- calls after END_OF_EPOCH keep working -------------------------------------------------

#[test]
fn calls_after_end_of_epoch_keep_working() {
    let d = Data::new();
    let l = d.loader();
    let mut b = null_mut();
    let mut rep = thresher_epoch_report::default();
    unsafe {
        let mut batches = 0;
        loop {
            match thresher_loader_next(l, &mut b) {
                THRESHER_OK => {
                    batches += 1;
                    thresher_batch_release(b);
                }
                THRESHER_END_OF_EPOCH => break,
                other => panic!("{other:?}: {}", last_error()),
            }
        }
        assert_eq!(batches, 3);
        assert!(b.is_null());
        assert_eq!(thresher_loader_report(l, &mut rep), THRESHER_OK);
        assert_eq!((rep.epoch, rep.delivered), (0, 3));
        assert_eq!(thresher_loader_next(l, &mut b), THRESHER_OK);
        assert_eq!(thresher_batch_len(b), 20);
        thresher_batch_release(b);
        thresher_loader_free(l);
    }
}

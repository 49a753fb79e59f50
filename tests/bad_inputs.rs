//! A battery of bad inputs through the C ABI: each is refused with the right status and a
//! message naming its cause, the process survives, and a refused feedback call leaves the
//! ScoreBook unchanged. (Image formats have their own battery beside their sources.)
//!
//! Every bad input is its own `#[test]`, generated from one row of a table by the
//! `macro_rules!` beside it, so a failure names its input and does not hide the rest of the
//! table. Each test makes its own dataset and loader: tests run in parallel, and the error
//! message read back is the calling thread's.

use std::ffi::{c_char, CStr, CString};
use std::ptr::{null, null_mut};

use tempfile::TempDir;
use thresher::ffi::*;
use thresher_core::source::write_idx;

use thresher_status::*;

const INV: thresher_status = THRESHER_INVALID_ARGUMENT;
const IO: thresher_status = THRESHER_IO;
const FORMAT: thresher_status = THRESHER_FORMAT;

fn last_error() -> String {
    let mut buf = vec![0 as c_char; 4096];
    unsafe { thresher_last_error(buf.as_mut_ptr(), buf.len()) };
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn new(config: &str) -> (thresher_status, *mut thresher_loader) {
    let c = CString::new(config).unwrap();
    let mut l = null_mut();
    let st = unsafe { thresher_loader_new(c.as_ptr(), &mut l) };
    (st, l)
}

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

// ---- config: malformed, every key, bad values ----------------------------------------------

/// `name: body => status, needle;` — thresher_loader_new on the body (with a valid source
/// added, see `Data::with_source`) must fail with `status` naming `needle`.
macro_rules! config_cases {
    ($($name:ident: $body:expr => $status:expr, $needle:expr;)*) => {
        $(
            #[test]
            fn $name() {
                let d = Data::new();
                refused(&d.with_source($body), $status, $needle);
            }
        )*
        pub const CASES: usize = count!($($name)*);
    };
}

mod config {
    use super::*;

    config_cases! {
        malformed_json: "{" => INV, "config";
        not_an_object: "[]" => INV, "config";
        null_document: "null" => INV, "config";
        misspelt_key: r#"{"batch_sise": 1}"# => INV, "batch_sise";
        batch_size_zero: r#"{"batch_size": 0}"# => INV, "batch_size";
        batch_size_negative: r#"{"batch_size": -3}"# => INV, "batch_size";
        batch_size_fractional: r#"{"batch_size": 1.5}"# => INV, "batch_size";
        shuffle_not_a_bool: r#"{"shuffle": "yes"}"# => INV, "shuffle";
        drop_last_not_a_bool: r#"{"drop_last": 1}"# => INV, "drop_last";
        seed_negative: r#"{"seed": -1}"# => INV, "seed";
        seed_a_string: r#"{"seed": "x"}"# => INV, "seed";
        workers_zero: r#"{"workers": 0}"# => INV, "workers";
        workers_too_many: r#"{"workers": 100000}"# => INV, "workers";
        prefetch_zero: r#"{"prefetch": 0}"# => INV, "prefetch";
        transform_not_an_object: r#"{"transform": 3}"# => INV, "transform";
        transform_dtype_unknown: r#"{"transform": {"dtype": "f16"}}"# => INV, "transform.dtype";
        transform_layout_unknown: r#"{"transform": {"layout": "chw"}}"#
            => INV, "transform.layout";
        transform_unknown_key: r#"{"transform": {"colour": 1}}"# => INV, "colour";
        normalize_with_u8:
            r#"{"transform": {"dtype": "u8", "normalize": {"mean": [0.5], "std": [0.5]}}}"#
            => INV, "transform.normalize";
        normalize_std_zero: r#"{"transform": {"normalize": {"mean": [0.5], "std": [0]}}}"#
            => INV, "std";
        normalize_lengths_differ:
            r#"{"transform": {"normalize": {"mean": [0.5, 0.1], "std": [1]}}}"#
            => INV, "transform.normalize";
        normalize_without_std: r#"{"transform": {"normalize": {"mean": [0.5]}}}"# => INV, "std";
        policy_without_kind: r#"{"policy": {"prune": 0.3}}"# => INV, "policy.kind";
        policy_kind_unknown: r#"{"policy": {"kind": "nope"}}"# => INV, "nope";
        policy_kind_a_number: r#"{"policy": {"kind": 3}}"# => INV, "policy.kind";
        full_with_prune: r#"{"policy": {"kind": "full", "prune": 0.3}}"# => INV, "prune";
        prune_above_one: r#"{"policy": {"kind": "random", "prune": 1.5}}"# => INV, "policy.prune";
        prune_negative: r#"{"policy": {"kind": "random", "prune": -0.1}}"# => INV, "policy.prune";
        period_zero: r#"{"policy": {"kind": "random", "period": 0}}"# => INV, "policy.period";
        rescale_not_a_bool: r#"{"policy": {"kind": "random", "rescale": "no"}}"#
            => INV, "policy.rescale";
        random_with_explore: r#"{"policy": {"kind": "random", "explore": 0.1}}"# => INV, "explore";
        explore_above_one: r#"{"policy": {"kind": "epsilon_greedy", "explore": 2}}"#
            => INV, "policy.explore";
        momentum_zero: r#"{"policy": {"kind": "epsilon_greedy", "momentum": 0}}"#
            => INV, "policy.momentum";
        ucb_c_negative: r#"{"policy": {"kind": "ucb", "c": -1}}"# => INV, "policy.c";
        ucb_spread_unknown: r#"{"policy": {"kind": "ucb", "spread": "stdev"}}"#
            => INV, "policy.spread";
        infobatch_without_epochs: r#"{"policy": {"kind": "infobatch"}}"# => INV, "epochs";
        infobatch_epochs_zero: r#"{"policy": {"kind": "infobatch", "epochs": 0}}"#
            => INV, "policy.epochs";
        infobatch_anneal_above_one:
            r#"{"policy": {"kind": "infobatch", "epochs": 10, "anneal": 1.5}}"#
            => INV, "policy.anneal";
        drop_hardest_above_one: r#"{"policy": {"kind": "el2n", "drop_hardest": 2}}"#
            => INV, "policy.drop_hardest";
        score_epochs_zero: r#"{"policy": {"kind": "el2n", "score_epochs": 0}}"#
            => INV, "policy.score_epochs";
        grand_prune_too_high: r#"{"policy": {"kind": "grand", "prune": 0.95}}"#
            => INV, "policy.prune";
        scores_from_a_number: r#"{"policy": {"kind": "forgetting", "scores_from": 3}}"#
            => INV, "policy.scores_from";
        influence_with_epsilon: r#"{"policy": {"kind": "influence", "prune": 0.3, "epsilon": 0.1}}"#
            => INV, "epsilon";
        sketch_dim_zero: r#"{"policy": {"kind": "influence", "sketch_dim": 0}}"#
            => INV, "policy.sketch_dim";
        idx_source_without_files: r#"{"source": {"kind": "idx"}}"# => INV, "source";
        source_kind_unknown: r#"{"source": {"kind": "zip", "path": "x"}}"# => INV, "zip";
        source_without_kind: r#"{"source": {"images": "a", "labels": "b"}}"# => INV, "source.kind";
        no_source: "{}" => INV, "source";
        report_directory_missing: r#"{"report": "/nonexistent-dir/r.jsonl"}"# => IO, "report";
        resume_from_missing: r#"{"resume_from": "/nonexistent/ck"}"# => IO, "/nonexistent/ck";
        scores_from_missing: r#"{"policy": {"kind": "el2n", "scores_from": ["/nonexistent/s"]}}"#
            => IO, "/nonexistent/s";
    }
}

// ---- files ---------------------------------------------------------------------------------

/// `good` with `bytes` written over it at `at`.
fn patched(good: &[u8], at: usize, bytes: &[u8]) -> Vec<u8> {
    let mut b = good.to_vec();
    b[at..at + bytes.len()].copy_from_slice(bytes);
    b
}

/// `name: |good, gz| bytes => status, needle;` — an images file made of `bytes` (from the
/// valid images file `good` and its gzip `gz`) must be refused with `status`, the message
/// containing `needle` and the file's path.
macro_rules! image_file_cases {
    ($($name:ident: $bytes:expr => $status:expr, $needle:expr;)*) => {
        $(
            #[test]
            fn $name() {
                let d = Data::new();
                let good = std::fs::read(&d.images).unwrap();
                let gz = {
                    let mut e =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    std::io::Write::write_all(&mut e, &good).unwrap();
                    e.finish().unwrap()
                };
                let make: fn(&[u8], &[u8]) -> Vec<u8> = $bytes;
                let bad = d.write("bad", &make(&good, &gz));
                refused(&format!("{{{}}}", source(&bad, &d.labels)), $status, $needle);
                assert!(last_error().contains(&bad), "{} lacks {bad}", last_error());
            }
        )*
        pub const CASES: usize = count!($($name)*);
    };
}

mod image_file {
    use super::*;

    image_file_cases! {
        truncated: |good, _| good[..good.len() - 5].to_vec() => FORMAT, "truncated";
        trailing_bytes: |good, _| [good, &[1, 2, 3]].concat() => FORMAT, "the file has";
        header_claims_more_images: |good, _| patched(good, 7, &[51]) => FORMAT, "IDX header says";
        zero_dimension: |good, _| patched(good, 11, &[0]) => FORMAT, "bad";
        huge_dimension: |good, _| patched(good, 4, &u32::MAX.to_be_bytes()) => FORMAT, "bad";
        empty: |_, _| vec![] => FORMAT, "shorter than the header";
        three_bytes: |_, _| b"\x00\x00\x08".to_vec() => FORMAT, "shorter than the header";
        truncated_header: |_, _| vec![0, 0, 0x08, 9, 0, 0] => FORMAT, "truncated header";
        unknown_element_type: |_, _| {
            vec![0, 0, 0x0b, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0]
        } => FORMAT, "element type";
        two_dimensions: |_, _| vec![0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4]
            => FORMAT, "3 or 4 dimensions";
        truncated_gzip: |_, gz| gz[..gz.len() / 2].to_vec() => FORMAT, "gzip";
        gzip_magic_then_garbage: |_, _| b"\x1f\x8bgarbage garbage".to_vec() => FORMAT, "gzip";
    }
}

/// `name: |data| config => status, needle;` — a source the config-maker builds from the valid
/// dataset must be refused with `status` naming `needle`.
macro_rules! source_cases {
    ($($name:ident: $config:expr => $status:expr, $needle:expr;)*) => {
        $(
            #[test]
            fn $name() {
                let d = Data::new();
                let make: fn(&Data) -> String = $config;
                refused(&make(&d), $status, $needle);
            }
        )*
        pub const CASES: usize = count!($($name)*);
    };
}

mod source_files {
    use super::*;

    source_cases! {
        labels_bad_gzip: |d| {
            let bad = d.write("bad", b"\x1f\x8bgarbage garbage");
            format!("{{{}}}", source(&d.images, &bad))
        } => FORMAT, "bad";
        labels_are_images: |d| format!("{{{}}}", source(&d.images, &d.images))
            => FORMAT, "labels have dims";
        images_missing: |d| format!("{{{}}}", source("/nonexistent/i", &d.labels))
            => IO, "/nonexistent/i";
        images_a_directory: |d| {
            format!("{{{}}}", source(d.dir.path().to_str().unwrap(), &d.labels))
        } => IO, "";
        npy_y_of_the_wrong_length: |d| {
            let x = d.write("x.npy", &npy("<f4", "(4, 2)", &[0; 32]));
            let y = d.write("y.npy", &npy("<i8", "(3,)", &[0; 24]));
            format!(r#"{{"source": {{"kind": "npy", "x": "{x}", "y": "{y}"}}}}"#)
        } => FORMAT, "config key `source.y`";
        npy_x_not_the_declared_dtype: |d| {
            let x = d.write("x.npy", &npy("<f4", "(4, 2)", &[0; 32]));
            format!(r#"{{"source": {{"kind": "npy", "x": "{x}", "x_dtype": "i32"}}}}"#)
        } => INV, "config key `source.x_dtype`";
        npy_x_complex: |d| {
            let x = d.write("x.npy", &npy("<c8", "(4, 2)", &[0; 64]));
            format!(r#"{{"source": {{"kind": "npy", "x": "{x}"}}}}"#)
        } => FORMAT, "'<c8'";
        npy_header_promises_terabytes: |d| {
            let x = d.write("x.npy", &npy("<f8", "(1099511627776, 1048576)", &[0; 64]));
            format!(r#"{{"source": {{"kind": "npy", "x": "{x}"}}}}"#)
        } => FORMAT, "lying header";
        npy_transform_on_features: |d| {
            let x = d.write("x.npy", &npy("<f4", "(4, 2)", &[0; 32]));
            format!(r#"{{"source": {{"kind": "npy", "x": "{x}"}}, "transform": {{}}}}"#)
        } => INV, "config key `transform`";
        tokens_block_larger_than_the_stream: |d| {
            let t = d.write("t.bin", &[0; 20]);
            format!(r#"{{"source": {{"kind": "tokens", "path": "{t}", "dtype": "u16", "block": 10}}}}"#)
        } => INV, "config key `source.block`";
        tokens_not_a_whole_number: |d| {
            let t = d.write("t.bin", &[0; 22]);
            format!(r#"{{"source": {{"kind": "tokens", "path": "{t}", "dtype": "u32", "block": 2}}}}"#)
        } => FORMAT, "config key `source.path`";
        tokens_npy_of_another_dtype: |d| {
            let t = d.write("t.npy", &npy("<u4", "(9,)", &[0; 36]));
            format!(r#"{{"source": {{"kind": "tokens", "path": "{t}", "dtype": "u16", "block": 2}}}}"#)
        } => INV, "config key `source.dtype`";
        tokens_offsets_not_increasing: |d| {
            let t = d.write("t.bin", &[0; 40]);
            let o = d.write("o.npy", &npy("<i8", "(3,)", &offsets(&[0, 8, 8])));
            format!(r#"{{"source": {{"kind": "tokens", "path": "{t}", "dtype": "u16", "block": 4, "offsets": "{o}"}}}}"#)
        } => FORMAT, "not increasing";
        tokens_offsets_past_the_end: |d| {
            let t = d.write("t.bin", &[0; 40]);
            let o = d.write("o.npy", &npy("<i8", "(3,)", &offsets(&[0, 8, 21])));
            format!(r#"{{"source": {{"kind": "tokens", "path": "{t}", "dtype": "u16", "block": 4, "offsets": "{o}"}}}}"#)
        } => FORMAT, "past the end";
    }
}

/// A version-1 `.npy` file of `descr` and `shape` (a Python tuple) holding `data`.
fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(h.len() as u16).to_le_bytes());
    b.extend_from_slice(h.as_bytes());
    b.extend_from_slice(data);
    b
}

fn offsets(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

// ---- C misuse: NULL where a pointer is required --------------------------------------------

/// `name: |loader, path| call => needle;` — the call, given a live loader and a writable path
/// to use where it wants valid ones, must return THRESHER_INVALID_ARGUMENT naming `needle`.
macro_rules! misuse_cases {
    ($($name:ident: |$l:ident, $path:ident| $call:expr => $needle:expr;)*) => {
        $(
            #[test]
            fn $name() {
                let d = Data::new();
                let loader = d.loader();
                let path = CString::new(d.dir.path().join("x").display().to_string()).unwrap();
                let ($l, $path) = (loader, path.as_ptr());
                assert_eq!(unsafe { $call }, THRESHER_INVALID_ARGUMENT, "{}", last_error());
                assert!(
                    last_error().contains($needle),
                    "`{}` lacks `{}`",
                    last_error(),
                    $needle
                );
                unsafe { thresher_loader_free(loader) };
            }
        )*
        pub const CASES: usize = count!($($name)*);
    };
}

mod misuse {
    use super::*;
    use std::mem::MaybeUninit;

    misuse_cases! {
        new_null_config: |_l, _p| thresher_loader_new(null(), &mut null_mut()) => "config_json";
        new_null_out: |_l, _p| thresher_loader_new(c"{}".as_ptr(), null_mut()) => "out";
        new_config_not_utf8: |_l, _p| thresher_loader_new(c"\xff\xfe".as_ptr(), &mut null_mut())
            => "UTF-8";
        next_null_loader: |_l, _p| thresher_loader_next(null_mut(), &mut null_mut()) => "loader";
        next_null_out: |l, _p| thresher_loader_next(l, null_mut()) => "out";
        feedback_null_loader: |_l, _p| thresher_loader_feedback(null_mut(), null()) => "loader";
        feedback_null_fb: |l, _p| thresher_loader_feedback(l, null()) => "fb";
        epoch_info_null_loader: |_l, _p| {
            thresher_loader_epoch_info(null(), &mut thresher_epoch_info::default())
        } => "loader";
        epoch_info_null_out: |l, _p| thresher_loader_epoch_info(l, null_mut()) => "out";
        report_null_loader: |_l, _p| {
            thresher_loader_report(null(), &mut thresher_epoch_report::default())
        } => "loader";
        report_null_out: |l, _p| thresher_loader_report(l, null_mut()) => "out";
        digest_null_loader: |_l, _p| {
            thresher_loader_digest(null(), &mut thresher_digest::default())
        } => "loader";
        digest_null_out: |l, _p| thresher_loader_digest(l, null_mut()) => "out";
        save_scores_null_loader: |_l, p| thresher_loader_save_scores(null(), p) => "loader";
        save_scores_null_path: |l, _p| thresher_loader_save_scores(l, null()) => "path";
        save_state_null_loader: |_l, p| thresher_loader_save_state(null(), p) => "loader";
        save_state_null_path: |l, _p| thresher_loader_save_state(l, null()) => "path";
        batch_data_null_batch: |_l, _p| {
            thresher_batch_data(null(), MaybeUninit::<thresher_tensor>::zeroed().as_mut_ptr())
        } => "batch";
        batch_dlpack_null_batch: |_l, _p| thresher_batch_dlpack(null(), 0, &mut null_mut())
            => "batch";
    }
}

/// `name: expression;` — a call on a NULL handle that has no status to return must do
/// nothing harmful and give the documented neutral answer (the expression is true).
macro_rules! null_handle_cases {
    ($($name:ident: $ok:expr;)*) => {
        $(
            #[test]
            fn $name() {
                assert!(unsafe { $ok });
            }
        )*
        pub const CASES: usize = count!($($name)*);
    };
}

mod null_handle {
    use super::*;

    null_handle_cases! {
        batch_len_is_zero: thresher_batch_len(null()) == 0;
        batch_ids_are_null: thresher_batch_ids(null()).is_null();
        batch_labels_are_null: thresher_batch_labels(null()).is_null();
        batch_weights_are_null: thresher_batch_weights(null()).is_null();
        batch_padding_is_zero: thresher_batch_padding(null()) == 0;
        batch_release_is_a_no_op: {
            thresher_batch_release(null_mut());
            true
        };
        loader_free_is_a_no_op: {
            thresher_loader_free(null_mut());
            true
        };
    }
}

// ---- feedback: refused whole, ScoreBook unchanged ------------------------------------------

static IDS: [u64; 3] = [1, 2, 3];
static DUP: [u64; 3] = [1, 2, 1];
static FAR: [u64; 3] = [1, 2, 50]; // the dataset has 50 samples
static OK_LOSS: [f32; 3] = [0.5, 0.5, 0.5];
static NAN: [f32; 3] = [0.5, f32::NAN, 0.5];
static INF: [f32; 3] = [0.5, 0.5, f32::NEG_INFINITY];
static NEG: [f32; 3] = [1.0, -1.0, 1.0];
static CORRECT_BAD: [u8; 3] = [1, 0, 2];
static EMB: [f32; 6] = [0.0; 6];
static EMB_NAN: [f32; 6] = [0.0, 0.0, 0.0, 0.0, 0.0, f32::NAN];

/// Feedback for 3 samples with only ids and loss.
fn fb(ids: *const u64, loss: *const f32) -> thresher_feedback {
    thresher_feedback {
        len: 3,
        ids,
        loss,
        grad_norm: null(),
        el2n: null(),
        correct: null(),
        embedding: null(),
        embedding_dim: 0,
    }
}

/// Valid ids and loss, for the cases that break another field.
fn ok() -> thresher_feedback {
    fb(IDS.as_ptr(), OK_LOSS.as_ptr())
}

/// `name: feedback => needle;` — thresher_loader_feedback must refuse it with
/// THRESHER_INVALID_ARGUMENT naming `needle`, and apply none of it: the scores saved before
/// and after are the same bytes.
macro_rules! feedback_cases {
    ($($name:ident: $fb:expr => $needle:expr;)*) => {
        $(
            #[test]
            fn $name() {
                let d = Data::new();
                let l = d.loader();
                let before = CString::new(d.dir.path().join("before").to_str().unwrap()).unwrap();
                let after = CString::new(d.dir.path().join("after").to_str().unwrap()).unwrap();
                let f: thresher_feedback = $fb;
                unsafe {
                    assert_eq!(thresher_loader_save_scores(l, before.as_ptr()), THRESHER_OK);
                    assert_eq!(thresher_loader_feedback(l, &f), THRESHER_INVALID_ARGUMENT);
                    assert!(
                        last_error().contains($needle),
                        "`{}` lacks `{}`",
                        last_error(),
                        $needle
                    );
                    assert_eq!(thresher_loader_save_scores(l, after.as_ptr()), THRESHER_OK);
                    thresher_loader_free(l);
                }
                assert_eq!(
                    std::fs::read(before.to_str().unwrap()).unwrap(),
                    std::fs::read(after.to_str().unwrap()).unwrap(),
                    "a refused feedback call changed the ScoreBook"
                );
            }
        )*
        pub const CASES: usize = count!($($name)*);
    };
}

mod feedback {
    use super::*;

    feedback_cases! {
        loss_nan: fb(IDS.as_ptr(), NAN.as_ptr()) => "loss[1]";
        loss_infinite: fb(IDS.as_ptr(), INF.as_ptr()) => "loss[2]";
        id_out_of_range: fb(FAR.as_ptr(), OK_LOSS.as_ptr()) => "ids[2] = 50";
        id_twice: fb(DUP.as_ptr(), OK_LOSS.as_ptr()) => "id 1 appears twice";
        ids_null: fb(null(), OK_LOSS.as_ptr()) => "ids";
        loss_null: fb(IDS.as_ptr(), null()) => "loss";
        grad_norm_negative: thresher_feedback { grad_norm: NEG.as_ptr(), ..ok() } => "grad_norm[1]";
        grad_norm_nan: thresher_feedback { grad_norm: NAN.as_ptr(), ..ok() } => "grad_norm[1]";
        el2n_infinite: thresher_feedback { el2n: INF.as_ptr(), ..ok() } => "el2n[2]";
        correct_not_0_or_1: thresher_feedback { correct: CORRECT_BAD.as_ptr(), ..ok() }
            => "correct[2]";
        embedding_without_dim: thresher_feedback { embedding: EMB.as_ptr(), ..ok() }
            => "embedding_dim = 0";
        dim_without_embedding: thresher_feedback { embedding_dim: 2, ..ok() } => "embedding_dim";
        embedding_nan: thresher_feedback { embedding: EMB_NAN.as_ptr(), embedding_dim: 2, ..ok() }
            => "embedding[5]";
        len_too_large: thresher_feedback { len: usize::MAX, ..ok() } => "too large";
        embedding_size_overflows: thresher_feedback {
            embedding: EMB.as_ptr(),
            embedding_dim: usize::MAX,
            ..ok()
        } => "overflows";
        ids_misaligned: fb(
            (IDS.as_ptr() as *const u8).wrapping_add(1) as *const u64,
            OK_LOSS.as_ptr(),
        ) => "aligned";
    }
}

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

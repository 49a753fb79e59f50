//! A battery of bad inputs through the C ABI: each is refused with the right status and a
//! message naming its cause, the process survives, and a refused feedback call leaves the
//! ScoreBook unchanged. (Image formats have their own battery beside their sources.)

use std::ffi::{c_char, CStr, CString};
use std::path::Path;
use std::ptr::{null, null_mut};

use thresher::ffi::*;
use thresher_core::source::write_idx;

use thresher_status::*;

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

/// A tiny valid IDX pair: 50 images of 2×2.
fn dataset(dir: &Path) -> (String, String) {
    let (i, l) = (dir.join("img"), dir.join("lab"));
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
    (i.display().to_string(), l.display().to_string())
}

fn source(i: &str, l: &str) -> String {
    format!(r#""source": {{"kind": "idx", "images": "{i}", "labels": "{l}"}}"#)
}

/// Expects `config` to be refused with `status` and a message containing `needle`.
fn refused(config: &str, status: thresher_status, needle: &str, count: &mut usize) {
    let (st, l) = new(config);
    assert!(l.is_null());
    assert_eq!(st, status, "{config}: {}", last_error());
    let msg = last_error();
    assert!(
        msg.contains(needle),
        "{config}: message `{msg}` lacks `{needle}`"
    );
    *count += 1;
}

#[test]
fn battery() {
    let dir = tempfile::tempdir().unwrap();
    let (img, lab) = dataset(dir.path());
    let src = source(&img, &lab);
    let mut n = 0usize;

    // --- config: malformed, every key, bad values --------------------------------------------
    let inv = THRESHER_INVALID_ARGUMENT;
    for (body, needle) in [
        ("{", "config"),
        ("[]", "config"),
        ("null", "config"),
        (r#"{"batch_sise": 1}"#, "batch_sise"),
        (r#"{"batch_size": 0}"#, "batch_size"),
        (r#"{"batch_size": -3}"#, "batch_size"),
        (r#"{"batch_size": 1.5}"#, "batch_size"),
        (r#"{"shuffle": "yes"}"#, "shuffle"),
        (r#"{"drop_last": 1}"#, "drop_last"),
        (r#"{"seed": -1}"#, "seed"),
        (r#"{"seed": "x"}"#, "seed"),
        (r#"{"workers": 0}"#, "workers"),
        (r#"{"workers": 100000}"#, "workers"),
        (r#"{"prefetch": 0}"#, "prefetch"),
        (r#"{"transform": 3}"#, "transform"),
        (r#"{"transform": {"dtype": "f16"}}"#, "transform.dtype"),
        (r#"{"transform": {"layout": "chw"}}"#, "transform.layout"),
        (r#"{"transform": {"colour": 1}}"#, "colour"),
        (
            r#"{"transform": {"dtype": "u8", "normalize": {"mean": [0.5], "std": [0.5]}}}"#,
            "transform.normalize",
        ),
        (
            r#"{"transform": {"normalize": {"mean": [0.5], "std": [0]}}}"#,
            "std",
        ),
        (
            r#"{"transform": {"normalize": {"mean": [0.5, 0.1], "std": [1]}}}"#,
            "transform.normalize",
        ),
        (r#"{"transform": {"normalize": {"mean": [0.5]}}}"#, "std"),
        (r#"{"policy": {"prune": 0.3}}"#, "policy.kind"),
        (r#"{"policy": {"kind": "nope"}}"#, "nope"),
        (r#"{"policy": {"kind": 3}}"#, "policy.kind"),
        (r#"{"policy": {"kind": "full", "prune": 0.3}}"#, "prune"),
        (
            r#"{"policy": {"kind": "random", "prune": 1.5}}"#,
            "policy.prune",
        ),
        (
            r#"{"policy": {"kind": "random", "prune": -0.1}}"#,
            "policy.prune",
        ),
        (
            r#"{"policy": {"kind": "random", "period": 0}}"#,
            "policy.period",
        ),
        (
            r#"{"policy": {"kind": "random", "rescale": "no"}}"#,
            "policy.rescale",
        ),
        (
            r#"{"policy": {"kind": "random", "explore": 0.1}}"#,
            "explore",
        ),
        (
            r#"{"policy": {"kind": "epsilon_greedy", "explore": 2}}"#,
            "policy.explore",
        ),
        (
            r#"{"policy": {"kind": "epsilon_greedy", "momentum": 0}}"#,
            "policy.momentum",
        ),
        (r#"{"policy": {"kind": "ucb", "c": -1}}"#, "policy.c"),
        (
            r#"{"policy": {"kind": "ucb", "spread": "stdev"}}"#,
            "policy.spread",
        ),
        (r#"{"policy": {"kind": "infobatch"}}"#, "epochs"),
        (
            r#"{"policy": {"kind": "infobatch", "epochs": 0}}"#,
            "policy.epochs",
        ),
        (
            r#"{"policy": {"kind": "infobatch", "epochs": 10, "anneal": 1.5}}"#,
            "policy.anneal",
        ),
        (
            r#"{"policy": {"kind": "el2n", "drop_hardest": 2}}"#,
            "policy.drop_hardest",
        ),
        (
            r#"{"policy": {"kind": "el2n", "score_epochs": 0}}"#,
            "policy.score_epochs",
        ),
        (
            r#"{"policy": {"kind": "grand", "prune": 0.95}}"#,
            "policy.prune",
        ),
        (
            r#"{"policy": {"kind": "forgetting", "scores_from": 3}}"#,
            "policy.scores_from",
        ),
        (
            r#"{"policy": {"kind": "influence", "prune": 0.3, "epsilon": 0.1}}"#,
            "epsilon",
        ),
        (
            r#"{"policy": {"kind": "influence", "sketch_dim": 0}}"#,
            "policy.sketch_dim",
        ),
        (r#"{"source": {"kind": "idx"}}"#, "source"),
        (r#"{"source": {"kind": "zip", "path": "x"}}"#, "zip"),
        (
            r#"{"source": {"images": "a", "labels": "b"}}"#,
            "source.kind",
        ),
    ] {
        // Each refused config is also given a valid source, so only the bad key fails.
        let config = if body.starts_with('{') && body.len() > 2 && !body.contains("\"source\"") {
            format!("{{{src}, {}", &body[1..])
        } else {
            body.to_string()
        };
        refused(&config, inv, needle, &mut n);
    }
    refused("{}", inv, "source", &mut n);
    refused(
        &format!(r#"{{{src}, "report": "/nonexistent-dir/r.jsonl"}}"#),
        THRESHER_IO,
        "report",
        &mut n,
    );
    refused(
        &format!(r#"{{{src}, "resume_from": "/nonexistent/ck"}}"#),
        THRESHER_IO,
        "/nonexistent/ck",
        &mut n,
    );
    refused(
        &format!(
            r#"{{{}, "policy": {{"kind": "el2n", "scores_from": ["/nonexistent/s"]}}}}"#,
            src
        ),
        THRESHER_IO,
        "/nonexistent/s",
        &mut n,
    );

    // --- files ----------------------------------------------------------------------------------
    let bad = dir.path().join("bad");
    let bad_s = bad.display().to_string();
    let good = std::fs::read(&img).unwrap();
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, &good).unwrap();
        e.finish().unwrap()
    };
    let mut lying_dims = good.clone();
    lying_dims[7] = 51; // header says 51 images
    let mut zero_dim = good.clone();
    zero_dim[11] = 0;
    let mut big_dims = good.clone();
    big_dims[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    for (bytes, status, needle) in [
        (
            good[..good.len() - 5].to_vec(),
            THRESHER_FORMAT,
            "truncated",
        ),
        (
            [&good[..], &[1, 2, 3]].concat(),
            THRESHER_FORMAT,
            "the file has",
        ),
        (lying_dims, THRESHER_FORMAT, "IDX header says"),
        (zero_dim, THRESHER_FORMAT, "bad"),
        (big_dims, THRESHER_FORMAT, "bad"),
        (vec![], THRESHER_FORMAT, "shorter than the header"),
        (
            b"\x00\x00\x08".to_vec(),
            THRESHER_FORMAT,
            "shorter than the header",
        ),
        (
            vec![0, 0, 0x08, 9, 0, 0],
            THRESHER_FORMAT,
            "truncated header",
        ),
        (
            vec![0, 0, 0x0b, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0],
            THRESHER_FORMAT,
            "element type",
        ),
        (
            vec![0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4],
            THRESHER_FORMAT,
            "3 or 4 dimensions",
        ),
        (gz[..gz.len() / 2].to_vec(), THRESHER_FORMAT, "gzip"),
        (b"\x1f\x8bgarbage garbage".to_vec(), THRESHER_FORMAT, "gzip"),
    ] {
        std::fs::write(&bad, &bytes).unwrap();
        refused(
            &format!("{{{}}}", source(&bad_s, &lab)),
            status,
            needle,
            &mut n,
        );
        assert!(last_error().contains(&bad_s));
    }
    refused(
        &format!("{{{}}}", source(&img, &bad_s)),
        THRESHER_FORMAT,
        "bad",
        &mut n,
    ); // labels = the bad gzip
    refused(
        &format!("{{{}}}", source(&img, &img)),
        THRESHER_FORMAT,
        "labels have dims",
        &mut n,
    );
    refused(
        &format!("{{{}}}", source("/nonexistent/i", &lab)),
        THRESHER_IO,
        "/nonexistent/i",
        &mut n,
    );
    refused(
        &format!("{{{}}}", source(dir.path().to_str().unwrap(), &lab)),
        THRESHER_IO,
        "",
        &mut n,
    );

    // --- C misuse -------------------------------------------------------------------------------
    let (st, l) = new(&format!(
        r#"{{{src}, "batch_size": 20, "policy": {{"kind": "infobatch", "epochs": 4}}}}"#
    ));
    assert_eq!(st, THRESHER_OK, "{}", last_error());
    let mut b = null_mut();
    let mut info = thresher_epoch_info::default();
    let mut rep = thresher_epoch_report::default();
    let mut t = std::mem::MaybeUninit::<thresher_tensor>::zeroed();
    let path = CString::new(dir.path().join("x").display().to_string()).unwrap();
    unsafe {
        // Checked one by one: the message is this thread's last failure.
        macro_rules! misuse {
            ($call:expr, $needle:expr) => {{
                assert_eq!($call, THRESHER_INVALID_ARGUMENT);
                assert!(
                    last_error().contains($needle),
                    "{} lacks {}",
                    last_error(),
                    $needle
                );
                n += 1;
            }};
        }
        misuse!(thresher_loader_new(null(), &mut null_mut()), "config_json");
        misuse!(thresher_loader_new(c"{}".as_ptr(), null_mut()), "out");
        misuse!(
            thresher_loader_new(c"\xff\xfe".as_ptr(), &mut null_mut()),
            "UTF-8"
        );
        misuse!(thresher_loader_next(null_mut(), &mut b), "loader");
        misuse!(thresher_loader_next(l, null_mut()), "out");
        misuse!(thresher_loader_feedback(null_mut(), null()), "loader");
        misuse!(thresher_loader_feedback(l, null()), "fb");
        misuse!(thresher_loader_epoch_info(null(), &mut info), "loader");
        misuse!(thresher_loader_epoch_info(l, null_mut()), "out");
        misuse!(thresher_loader_report(null(), &mut rep), "loader");
        misuse!(thresher_loader_report(l, null_mut()), "out");
        let mut digest = thresher_digest::default();
        misuse!(thresher_loader_digest(null(), &mut digest), "loader");
        misuse!(thresher_loader_digest(l, null_mut()), "out");
        misuse!(thresher_loader_save_scores(null(), path.as_ptr()), "loader");
        misuse!(thresher_loader_save_scores(l, null()), "path");
        misuse!(thresher_loader_save_state(null(), path.as_ptr()), "loader");
        misuse!(thresher_loader_save_state(l, null()), "path");
        misuse!(thresher_batch_data(null(), t.as_mut_ptr()), "batch");
        misuse!(thresher_batch_dlpack(null(), 0, &mut null_mut()), "batch");
        assert_eq!(thresher_batch_len(null()), 0);
        assert!(thresher_batch_ids(null()).is_null());
        assert!(thresher_batch_labels(null()).is_null());
        assert!(thresher_batch_weights(null()).is_null());
        assert_eq!(thresher_batch_padding(null()), 0);
        thresher_batch_release(null_mut());
        thresher_loader_free(null_mut());
        n += 7;

        // --- feedback: refused whole, ScoreBook unchanged --------------------------------------
        let scores_before = dir.path().join("before");
        let sb = CString::new(scores_before.display().to_string()).unwrap();
        assert_eq!(thresher_loader_save_scores(l, sb.as_ptr()), THRESHER_OK);
        let ids = [1u64, 2, 3];
        let dup = [1u64, 2, 1];
        let far = [1u64, 2, 50];
        let ok_loss = [0.5f32, 0.5, 0.5];
        let nan = [0.5f32, f32::NAN, 0.5];
        let inf = [0.5f32, 0.5, f32::NEG_INFINITY];
        let neg = [1.0f32, -1.0, 1.0];
        let correct_bad = [1u8, 0, 2];
        let emb = [0.0f32; 6];
        let emb_nan = [0.0, 0.0, 0.0, 0.0, 0.0, f32::NAN];
        let fb = |ids: *const u64, loss: *const f32| thresher_feedback {
            len: 3,
            ids,
            loss,
            grad_norm: null(),
            el2n: null(),
            correct: null(),
            embedding: null(),
            embedding_dim: 0,
        };
        let cases: Vec<(thresher_feedback, &str)> = vec![
            (fb(ids.as_ptr(), nan.as_ptr()), "loss[1]"),
            (fb(ids.as_ptr(), inf.as_ptr()), "loss[2]"),
            (fb(far.as_ptr(), ok_loss.as_ptr()), "ids[2] = 50"),
            (fb(dup.as_ptr(), ok_loss.as_ptr()), "id 1 appears twice"),
            (fb(null(), ok_loss.as_ptr()), "ids"),
            (fb(ids.as_ptr(), null()), "loss"),
            (
                thresher_feedback {
                    grad_norm: neg.as_ptr(),
                    ..fb(ids.as_ptr(), ok_loss.as_ptr())
                },
                "grad_norm[1]",
            ),
            (
                thresher_feedback {
                    grad_norm: nan.as_ptr(),
                    ..fb(ids.as_ptr(), ok_loss.as_ptr())
                },
                "grad_norm[1]",
            ),
            (
                thresher_feedback {
                    el2n: inf.as_ptr(),
                    ..fb(ids.as_ptr(), ok_loss.as_ptr())
                },
                "el2n[2]",
            ),
            (
                thresher_feedback {
                    correct: correct_bad.as_ptr(),
                    ..fb(ids.as_ptr(), ok_loss.as_ptr())
                },
                "correct[2]",
            ),
            (
                thresher_feedback {
                    embedding: emb.as_ptr(),
                    ..fb(ids.as_ptr(), ok_loss.as_ptr())
                },
                "embedding_dim = 0",
            ),
            (
                thresher_feedback {
                    embedding_dim: 2,
                    ..fb(ids.as_ptr(), ok_loss.as_ptr())
                },
                "embedding_dim",
            ),
            (
                thresher_feedback {
                    embedding: emb_nan.as_ptr(),
                    embedding_dim: 2,
                    ..fb(ids.as_ptr(), ok_loss.as_ptr())
                },
                "embedding[5]",
            ),
            (
                thresher_feedback {
                    len: usize::MAX,
                    ..fb(ids.as_ptr(), ok_loss.as_ptr())
                },
                "too large",
            ),
            (
                thresher_feedback {
                    embedding: emb.as_ptr(),
                    embedding_dim: usize::MAX,
                    ..fb(ids.as_ptr(), ok_loss.as_ptr())
                },
                "overflows",
            ),
            (
                fb(
                    (ids.as_ptr() as *const u8).add(1) as *const u64,
                    ok_loss.as_ptr(),
                ),
                "aligned",
            ),
        ];
        for (f, needle) in cases {
            assert_eq!(thresher_loader_feedback(l, &f), THRESHER_INVALID_ARGUMENT);
            assert!(
                last_error().contains(needle),
                "`{}` lacks `{needle}`",
                last_error()
            );
            n += 1;
        }
        let after = dir.path().join("after");
        let sa = CString::new(after.display().to_string()).unwrap();
        assert_eq!(thresher_loader_save_scores(l, sa.as_ptr()), THRESHER_OK);
        assert_eq!(
            std::fs::read(&scores_before).unwrap(),
            std::fs::read(&after).unwrap()
        );

        // --- calls after END_OF_EPOCH keep working --------------------------------------------
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
    assert!(n >= 60, "only {n} distinct bad inputs");
    println!("{n} bad inputs refused with the right status and message");
}

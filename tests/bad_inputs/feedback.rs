//! Bad feedback: refused whole with THRESHER_INVALID_ARGUMENT, the ScoreBook unchanged (the
//! scores saved before and after are the same bytes).

use super::*;

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

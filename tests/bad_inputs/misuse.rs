//! C misuse: NULL where a pointer is required, refused with THRESHER_INVALID_ARGUMENT naming
//! the argument.

use super::*;
use std::mem::MaybeUninit;

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

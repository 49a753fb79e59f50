//! Calls on a NULL handle that have no status to return: harmless, with the documented
//! neutral answer.

use super::*;

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
